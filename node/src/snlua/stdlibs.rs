//! Lua's standard libraries for service states, copied from templates.
//!
//! Opening the standard libraries name by name (`luaL_openlibs`) was about a
//! fifth of the cost of a new service. The code state (see `codecache`) has
//! them open already and their names are shared strings, so the library
//! tables made only of light C functions and constants (`_G`'s base
//! functions, coroutine, debug, os, string and its metatable, table, utf8)
//! are kept there as templates, and a new state gets a node-for-node copy of
//! each (`lua_clonetemplate` in the vendored Lua). math is copied without its
//! random generator, which each state then gets its own of
//! (`luaopen_mathrandom`); io and its file handle metatable without the
//! standard files, made per state (`luaopen_iostdfiles`). package holds
//! per-state search paths and is opened the usual way. The result is what
//! `luaL_openlibs` makes: the same
//! libraries, globals, `package.loaded` entries and string metatable.
//! Any template the code state could not make falls back to Lua's opener.
//!
//! Soundness: the templates are tables of the code state that nothing
//! changes after `make` (the code state runs no Lua code and never
//! collects), so any state may copy them without its lock. The openers run
//! under `luaL_requiref` while [`open`] opens a new state (unprotected in
//! `Snlua::launch`, where an error aborts; protected in a sharetable
//! builder); nothing with a destructor is alive in them, so both are sound.

use super::codecache;
use super::lua::*;
#[cfg(test)]
use std::ffi::CString;
use std::ffi::{c_int, c_void, CStr};
use std::sync::LazyLock;

#[derive(Clone, Copy)]
struct Template(*const c_void);
// SAFETY: a template is a table of the code state that nothing changes
// after it is made, and it lives as long as the process (module doc).
unsafe impl Send for Template {}
// SAFETY: as above: concurrent readers see an immutable table.
unsafe impl Sync for Template {}

#[derive(Default)]
struct Templates {
    base: Option<Template>,
    coroutine: Option<Template>,
    debug: Option<Template>,
    io: Option<Template>,
    io_methods: Option<Template>,
    io_meta: Option<Template>,
    math: Option<Template>,
    os: Option<Template>,
    string: Option<Template>,
    string_meta: Option<Template>,
    table: Option<Template>,
    utf8: Option<Template>,
}

extern "C-unwind" {
    fn lua_tabletemplate(l: State, idx: c_int, otheridx: c_int) -> *const c_void;
    fn luaopen_mathrandom(l: State);
    fn luaopen_iostdfiles(l: State);
    fn lua_clonetemplate(
        l: State,
        tmpl: *const c_void,
        other: *const c_void,
        otheridx: c_int,
        into: c_int,
    ) -> c_int;
}

static TEMPLATES: LazyLock<Templates> =
    // SAFETY: with_code_state runs the closure under the code state's lock.
    LazyLock::new(|| codecache::with_code_state(|l| unsafe { make(l) }).unwrap_or_default());

fn template(p: *const c_void) -> Option<Template> {
    (!p.is_null()).then_some(Template(p))
}

/// Builds the templates from the code state's open libraries.
///
/// # Safety
/// `l` is the code state, used under its lock.
unsafe fn make(l: State) -> Templates {
    // SAFETY: the code state has its standard libraries open and room on
    // the stack (it is used by no one else: contract); every push is undone
    // by the settop to `top` after each library; the copies made here are
    // kept by the registry (luaL_ref), and the library tables by the globals,
    // so the templates outlive everything (the collector never runs). No
    // Lua code runs and an error would abort (unprotected, and plain_alloc
    // never fails).
    unsafe {
        let top = lua_gettop(l);
        let mut t = Templates::default();
        for (slot, name) in [
            (&mut t.coroutine, c"coroutine"),
            (&mut t.debug, c"debug"),
            (&mut t.os, c"os"),
            (&mut t.table, c"table"),
            (&mut t.utf8, c"utf8"),
        ] {
            lua_getglobal(l, name.as_ptr());
            *slot = template(lua_tabletemplate(l, -1, 0));
            lua_settop(l, top);
        }
        lua_getglobal(l, c"string".as_ptr());
        let lib = lua_gettop(l);
        t.string = template(lua_tabletemplate(l, lib, 0));
        lua_pushstring(l, c"".as_ptr());
        if lua_getmetatable(l, -1) != 0 {
            t.string_meta = template(lua_tabletemplate(l, -1, lib));
        }
        lua_settop(l, top);
        // _G minus what other libraries put there: the light C functions and
        // strings luaopen_base set, and _G itself.
        lua_pushglobaltable(l);
        let g = lua_gettop(l);
        let mut n = 0;
        lua_pushnil(l);
        while lua_next(l, g) != 0 {
            n += base_entry(l) as c_int;
            lua_pop(l, 1);
        }
        lua_createtable(l, 0, n + 1);
        let base = lua_gettop(l);
        lua_pushnil(l);
        while lua_next(l, g) != 0 {
            if base_entry(l) {
                lua_pushvalue(l, -2);
                lua_insert(l, -2);
                lua_rawset(l, base);
            } else {
                lua_pop(l, 1);
            }
        }
        lua_pushvalue(l, base);
        lua_setfield(l, base, c"_G".as_ptr());
        t.base = template(lua_tabletemplate(l, base, 0));
        // Kept referenced for the life of the process.
        luaL_ref(l, LUA_REGISTRYINDEX);
        // math minus its random generator (closures over per-state state), io
        // minus its standard files: `false` keeps their slots, which
        // luaopen_mathrandom and luaopen_iostdfiles fill in each copy.
        lua_getglobal(l, c"math".as_ptr());
        t.math = placeholder_copy(l);
        lua_settop(l, top);
        lua_getglobal(l, c"io".as_ptr());
        t.io = placeholder_copy(l);
        lua_settop(l, top);
        // The file handle metatable and its method table (its __index).
        if lua_getfield(l, LUA_REGISTRYINDEX, c"FILE*".as_ptr()) == LUA_TTABLE {
            let meta = lua_gettop(l);
            if lua_getfield(l, meta, c"__index".as_ptr()) == LUA_TTABLE {
                let methods = lua_gettop(l);
                t.io_methods = template(lua_tabletemplate(l, methods, 0));
                t.io_meta = template(lua_tabletemplate(l, meta, methods));
            }
        }
        lua_settop(l, top);
        t
    }
}

/// A template of the table on the stack top with every value that is not a
/// light C function, number or string replaced by `false` (the copy is kept
/// referenced by the code state's registry).
///
/// # Safety
/// As [`make`], with a value on the top.
unsafe fn placeholder_copy(l: State) -> Option<Template> {
    // SAFETY: as in make; the walk uses lua_next on `src` with the key on
    // the top, and rawsets only into the new table `copy`, so the walked
    // table does not change.
    unsafe {
        let src = lua_gettop(l);
        if lua_type(l, src) != LUA_TTABLE {
            return None;
        }
        lua_createtable(l, 0, 0);
        let copy = lua_gettop(l);
        lua_pushnil(l);
        while lua_next(l, src) != 0 {
            let keep = match lua_type(l, -1) {
                LUA_TNUMBER | LUA_TSTRING => true,
                _ => light_cfunction(l, -1),
            };
            if !keep {
                lua_pop(l, 1);
                lua_pushboolean(l, 0);
            }
            lua_pushvalue(l, -2);
            lua_insert(l, -2);
            lua_rawset(l, copy);
        }
        let t = template(lua_tabletemplate(l, copy, 0));
        luaL_ref(l, LUA_REGISTRYINDEX);
        t
    }
}

/// Whether the global being walked (key at -2, value at -1) is one of the
/// base library's: a string, or a C function without upvalues.
///
/// # Safety
/// As [`make`], with a key and a value on the top.
unsafe fn base_entry(l: State) -> bool {
    // SAFETY: -2 and -1 are the pair being walked (contract).
    unsafe {
        if lua_type(l, -2) != LUA_TSTRING {
            return false;
        }
        lua_type(l, -1) == LUA_TSTRING || light_cfunction(l, -1)
    }
}

/// Whether the value at `idx` is a C function without upvalues (a light C
/// function: no per-state object, so a template may hold it).
///
/// # Safety
/// `l` is a live state with a free slot; `idx` a valid index.
unsafe fn light_cfunction(l: State, idx: c_int) -> bool {
    // SAFETY: `idx` is valid (contract); lua_getupvalue pushes only when it
    // finds an upvalue, which is popped.
    unsafe {
        if lua_iscfunction(l, idx) == 0 {
            return false;
        }
        if lua_getupvalue(l, idx, 1).is_null() {
            return true;
        }
        lua_pop(l, 1);
    }
    false
}

/// Pushes a copy of `t`, or runs Lua's opener.
///
/// # Safety
/// Called as a library opener (a Lua C function) with `l`; `open` is Lua's
/// opener of the same library.
unsafe fn copy_or(
    l: State,
    t: Option<Template>,
    open: unsafe extern "C-unwind" fn(State) -> c_int,
) -> c_int {
    if let Some(t) = t {
        // SAFETY: `t` is a live, unchanging template (module doc); the
        // copy is pushed into a free slot (or nothing is done).
        if unsafe { lua_clonetemplate(l, t.0, std::ptr::null(), 0, 0) } != 0 {
            return 1;
        }
    }
    // SAFETY: an opener called as one (contract).
    unsafe { open(l) }
}

unsafe extern "C-unwind" fn open_base(l: State) -> c_int {
    // SAFETY: called by luaL_requiref as an opener, with free slots; the
    // template is live and unchanging (module doc); the copy fills the
    // (empty) global table, or nothing is done and Lua's opener runs.
    unsafe {
        if let Some(t) = TEMPLATES.base {
            lua_pushglobaltable(l);
            if lua_clonetemplate(l, t.0, std::ptr::null(), 0, -1) != 0 {
                return 1;
            }
            lua_pop(l, 1);
        }
        luaopen_base(l)
    }
}

unsafe extern "C-unwind" fn open_string(l: State) -> c_int {
    // SAFETY: as in open_base; the metatable's copy refers to the library
    // copy at `t` (the "other" table it was made with); the pushes are
    // popped on both paths.
    unsafe {
        if let (Some(lib), Some(meta)) = (TEMPLATES.string, TEMPLATES.string_meta) {
            if lua_clonetemplate(l, lib.0, std::ptr::null(), 0, 0) != 0 {
                let t = lua_gettop(l);
                if lua_clonetemplate(l, meta.0, lib.0, t, 0) != 0 {
                    lua_pushstring(l, c"".as_ptr());
                    lua_pushvalue(l, -2);
                    lua_setmetatable(l, -2);
                    lua_pop(l, 2);
                    return 1;
                }
                lua_pop(l, 1);
            }
        }
        luaopen_string(l)
    }
}

unsafe extern "C-unwind" fn open_coroutine(l: State) -> c_int {
    // SAFETY: called as an opener; the opener matches the template.
    unsafe { copy_or(l, TEMPLATES.coroutine, luaopen_coroutine) }
}

unsafe extern "C-unwind" fn open_debug(l: State) -> c_int {
    // SAFETY: as above.
    unsafe { copy_or(l, TEMPLATES.debug, luaopen_debug) }
}

unsafe extern "C-unwind" fn open_io(l: State) -> c_int {
    let t = &*TEMPLATES;
    // SAFETY: as in open_base; the metatable's copy refers to the methods'
    // copy at `lib + 1`; the stack is reset to `lib` (the library copy)
    // before luaopen_iostdfiles fills its standard files, or to below it
    // before Lua's opener runs.
    unsafe {
        if let (Some(io), Some(methods), Some(meta)) = (t.io, t.io_methods, t.io_meta) {
            if lua_clonetemplate(l, io.0, std::ptr::null(), 0, 0) != 0 {
                let lib = lua_gettop(l);
                if lua_clonetemplate(l, methods.0, std::ptr::null(), 0, 0) != 0
                    && lua_clonetemplate(l, meta.0, methods.0, lib + 1, 0) != 0
                {
                    lua_setfield(l, LUA_REGISTRYINDEX, c"FILE*".as_ptr());
                    lua_settop(l, lib);
                    luaopen_iostdfiles(l);
                    return 1;
                }
                lua_settop(l, lib - 1);
            }
        }
        luaopen_io(l)
    }
}

unsafe extern "C-unwind" fn open_math(l: State) -> c_int {
    // SAFETY: as in open_base; luaopen_mathrandom fills the generator's
    // slots of the copy on the top.
    unsafe {
        if let Some(t) = TEMPLATES.math {
            if lua_clonetemplate(l, t.0, std::ptr::null(), 0, 0) != 0 {
                luaopen_mathrandom(l);
                return 1;
            }
        }
        luaopen_math(l)
    }
}

unsafe extern "C-unwind" fn open_os(l: State) -> c_int {
    // SAFETY: called as an opener; the opener matches the template.
    unsafe { copy_or(l, TEMPLATES.os, luaopen_os) }
}

unsafe extern "C-unwind" fn open_table(l: State) -> c_int {
    // SAFETY: as above.
    unsafe { copy_or(l, TEMPLATES.table, luaopen_table) }
}

unsafe extern "C-unwind" fn open_utf8(l: State) -> c_int {
    // SAFETY: as above.
    unsafe { copy_or(l, TEMPLATES.utf8, luaopen_utf8) }
}

/// `luaL_openlibs` for a state created with the code state's seed: the same
/// libraries in the same order, each required into `package.loaded` and set
/// as a global.
///
/// # Safety
/// `l` is a new state made with the code state's seed (`codecache::seed`),
/// with free slots, used by this thread only.
pub unsafe fn open(l: State) {
    // SAFETY: a fresh state (contract); each requiref's result is popped;
    // nothing with a destructor is alive if a call raises.
    unsafe {
        luaL_getsubtable(l, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
        lua_pop(l, 1);
        // `package.loaded` made at the size a minimal service fills (the ten
        // libraries, the three native modules, `skynet` and `skynet.require`)
        // instead of growing to it through five rehashes.
        lua_createtable(l, 0, 16);
        lua_setfield(l, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        let libs: [(&CStr, unsafe extern "C-unwind" fn(State) -> c_int); 10] = [
            (c"_G", open_base),
            (c"package", luaopen_package),
            (c"coroutine", open_coroutine),
            (c"debug", open_debug),
            (c"io", open_io),
            (c"math", open_math),
            (c"os", open_os),
            (c"string", open_string),
            (c"table", open_table),
            (c"utf8", open_utf8),
        ];
        for (name, f) in libs {
            luaL_requiref(l, name.as_ptr(), f, 1);
            lua_pop(l, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::snlua::codecache::plain_alloc as alloc;

    /// Every library's names and value types, the globals, package.loaded
    /// and the string metatable, as one text.
    const DUMP: &str = r##"
        local function keys(t)
            local k = {}
            for n, v in pairs(t) do k[#k + 1] = tostring(n) .. ":" .. type(v) end
            table.sort(k)
            return table.concat(k, ",")
        end
        local out = { "G=" .. keys(_G) }
        for _, name in ipairs { "_G", "string", "table", "coroutine", "debug", "os", "utf8", "io", "math", "package" } do
            out[#out + 1] = name .. "=" .. keys(_G[name]) .. tostring(package.loaded[name] == _G[name])
        end
        local mt = getmetatable("")
        out[#out + 1] = "meta=" .. keys(mt) .. tostring(mt.__index == string)
        local fmt = getmetatable(io.stdout)
        out[#out + 1] = "file=" .. keys(fmt) .. ";" .. keys(fmt.__index) .. fmt.__name
            .. tostring(fmt == debug.getregistry()["FILE*"]) .. io.type(io.stdin) .. io.type(io.stderr)
            .. tostring(io.output() == io.stdout) .. tostring(io.input() == io.stdin)
            .. tostring(io.stdout:write("") == io.stdout)
        local f = assert(io.open("/proc/self/status"))
        out[#out + 1] = f:read("l"):match("^Name:") .. io.type(f) .. tostring(f:close()) .. io.type(f)
        out[#out + 1] = _VERSION .. ("ab"):upper() .. ("x"):rep(3) .. tostring("10" + 1) .. utf8.charpattern
            .. tostring(select("#", table.unpack { 1, 2, 3 })) .. tostring(os.time() > 0)
        return table.concat(out, "\n")
    "##;

    /// # Safety
    /// `open` opens libraries into a new state of the shared seed.
    unsafe fn dump(open: unsafe fn(State)) -> String {
        // SAFETY: a new state of this test, closed once at the end; outside
        // a protected call an error aborts (no panic function), so no
        // longjmp crosses the Rust values here.
        unsafe {
            let l = lua_newstate(alloc, std::ptr::null_mut(), codecache::seed());
            open(l);
            let text = String::from_utf8_lossy(&eval(l, &CString::new(DUMP).unwrap())).into_owned();
            lua_close(l);
            text
        }
    }

    /// # Safety
    /// `l` is a new state.
    unsafe fn stock(l: State) {
        // SAFETY: a new state (contract).
        unsafe { luaL_openlibs(l) };
    }

    #[test]
    fn copied_libraries_are_what_openlibs_makes() {
        // SAFETY: the states are this test's, each closed once; the
        // templates are live (module doc); `lib` is the string copy the
        // metatable refers to; errors abort (unprotected), never longjmp.
        unsafe {
            let ours = dump(open);
            let t = &*TEMPLATES;
            for (name, tmpl) in [
                ("_G", t.base),
                ("math", t.math),
                ("io", t.io),
                ("io methods", t.io_methods),
                ("io metatable", t.io_meta),
                ("coroutine", t.coroutine),
                ("debug", t.debug),
                ("os", t.os),
                ("string", t.string),
                ("string metatable", t.string_meta),
                ("table", t.table),
                ("utf8", t.utf8),
            ] {
                assert!(tmpl.is_some(), "no template for {name}");
            }
            // The copies are really made (no silent fallback to the openers).
            let l = lua_newstate(alloc, std::ptr::null_mut(), codecache::seed());
            lua_pushglobaltable(l);
            assert_eq!(
                lua_clonetemplate(l, t.base.unwrap().0, std::ptr::null(), 0, -1),
                1
            );
            // Only an empty table can be filled.
            assert_eq!(
                lua_clonetemplate(l, t.base.unwrap().0, std::ptr::null(), 0, -1),
                0
            );
            assert_eq!(
                lua_clonetemplate(l, t.string.unwrap().0, std::ptr::null(), 0, 0),
                1
            );
            let lib = lua_gettop(l);
            let meta = t.string_meta.unwrap().0;
            assert_eq!(lua_clonetemplate(l, meta, t.string.unwrap().0, lib, 0), 1);
            lua_close(l);
            // A state with another seed cannot use them.
            let l = lua_newstate(alloc, std::ptr::null_mut(), codecache::seed() ^ 1);
            assert_eq!(
                lua_clonetemplate(l, t.os.unwrap().0, std::ptr::null(), 0, 0),
                0
            );
            lua_close(l);
            assert_eq!(ours, dump(stock));
            assert!(ours.contains("print:function"), "{ours}");
            assert!(!ours.contains("false"), "{ours}");
        }
    }

    /// # Safety
    /// `l` is a live state of the test, not running.
    unsafe fn eval(l: State, code: &CStr) -> Vec<u8> {
        // SAFETY: loading and the call are protected; the result is copied
        // while on the stack, then popped; other errors abort.
        unsafe {
            assert_eq!(luaL_loadstring(l, code.as_ptr()), LUA_OK);
            let r = lua_pcall(l, 0, 1, 0);
            let out = to_bytes(l, -1).unwrap_or(b"").to_vec();
            assert_eq!(r, LUA_OK, "{}", String::from_utf8_lossy(&out));
            lua_pop(l, 1);
            out
        }
    }

    /// A new state with the copied libraries.
    ///
    /// # Safety
    /// The caller closes the state.
    unsafe fn opened() -> State {
        // SAFETY: a new state of the shared seed, as `open` needs.
        unsafe {
            let l = lua_newstate(alloc, std::ptr::null_mut(), codecache::seed());
            open(l);
            l
        }
    }

    /// Each copied math table has its own generator: seeding one state does
    /// not move another's sequence.
    #[test]
    fn math_random_is_per_state() {
        // SAFETY: the states are this test's, each closed once.
        unsafe {
            let a = opened();
            let b = opened();
            let first = eval(
                a,
                c"math.randomseed(42); return tostring(math.random(1, 1000000))",
            );
            let second = eval(a, c"return tostring(math.random(1, 1000000))");
            let other = eval(
                b,
                c"math.randomseed(42); return tostring(math.random(1, 1000000))",
            );
            assert_eq!(first, other);
            assert_ne!(first, second);
            let f = eval(
                b,
                c"local x = math.random(); return tostring(x >= 0 and x < 1)",
            );
            assert_eq!(f, b"true");
            lua_close(a);
            lua_close(b);
        }
    }

    /// A copy is the state's own table: changing it leaves the template and
    /// other states alone.
    #[test]
    fn copies_are_independent() {
        // SAFETY: the states are this test's, each closed once.
        unsafe {
            let a = opened();
            let b = opened();
            let changed = eval(
                a,
                c"string.upper = nil; print = 1; _G.extra = {}; return tostring(string.upper) .. type(print)",
            );
            assert_eq!(changed, b"nilnumber");
            let check =
                c"collectgarbage(); return type(string.upper) .. type(print) .. tostring(extra)";
            assert_eq!(eval(b, check), b"functionfunctionnil");
            lua_close(a);
            let c = opened();
            assert_eq!(eval(c, check), b"functionfunctionnil");
            lua_close(b);
            lua_close(c);
        }
    }
}
