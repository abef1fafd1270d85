//! `skynet.codecache`: a process-wide cache of compiled Lua chunks.
//!
//! As in skynet, function prototypes are shared between states. Our vendored
//! Lua 5.5 (changes marked "skynet-rs" in `vendor/lua-src`) lets one *code
//! state* own each cached chunk's prototypes and their strings, marked shared:
//! no collector ever touches them. A service that loads a cached file gets a
//! new closure of the shared prototype (`lua_cloneshared`): nothing is parsed
//! or copied, and the code, constants and debug info exist once per process.
//! The code state also shares its library names, so that states opened after
//! it use those strings instead of private copies. All states use the code
//! state's hash seed ([`seed`]).
//!
//! A state that made a private copy of a string before it became shared
//! cannot use a prototype that refers to it (short strings are compared by
//! address); it then loads the cached bytecode itself, "fixed" (mode `B`):
//! code and line information stay in the cache's buffer. Buffers and shared
//! prototypes live as long as the process; `clear()` only forgets them.
//!
//! It backs the global `loadfile` and `require`'s Lua-file searcher. Like
//! skynet's cache it never re-reads a cached file: call `codecache.clear()`
//! after editing code (hot reload).

use super::lua::*;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::mem::ManuallyDrop;
use std::sync::LazyLock;

/// (module name, package.path) -> the file `require` found for it.
type Resolved = HashMap<(Vec<u8>, Vec<u8>), Vec<u8>>;
static RESOLVED: LazyLock<Mutex<Resolved>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// A cached chunk: its bytecode, and its prototype in the code state.
#[derive(Clone, Copy)]
struct Compiled {
    code: &'static [u8],
    proto: Option<SharedProto>,
    /// Shared strings once `proto` was shared: a state created later needs
    /// no conflict check for it.
    epoch: u32,
}

#[derive(Clone, Copy)]
struct SharedProto(*const c_void);
// A shared prototype is immutable and lives for the whole process.
unsafe impl Send for SharedProto {}

/// file name -> compiled chunk
static CACHE: LazyLock<Mutex<HashMap<Vec<u8>, Compiled>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

extern "C-unwind" {
    fn lua_sharestrings(l: State) -> c_int;
    fn lua_shareproto(l: State, idx: c_int) -> *const c_void;
    fn lua_cloneshared(l: State, proto: *const c_void, check: c_int) -> c_int;
    fn lua_sharedepoch() -> std::ffi::c_uint;
}

/// How many strings are shared now (read before creating a state).
pub fn shared_epoch() -> u32 {
    LazyLock::force(&CODE_STATE);
    unsafe { lua_sharedepoch() }
}

/// The shared epoch of a service's state, from its allocator's runtime.
unsafe fn state_epoch(l: State) -> Option<u32> {
    let mut ud: *mut c_void = std::ptr::null_mut();
    let f = lua_getallocf(l, &mut ud);
    let ours: lua_Alloc = super::allocator;
    (f as usize == ours as usize && !ud.is_null())
        .then(|| (*(ud as *const super::Runtime)).shared_epoch)
}

/// The state that owns shared prototypes. Its collector never runs; it is
/// only used under this lock.
struct CodeState(State);
unsafe impl Send for CodeState {}

static CODE_STATE: LazyLock<(u32, Option<Mutex<CodeState>>)> = LazyLock::new(open_code_state);

/// The code state's allocator (no accounting; aborts when memory runs out).
pub(crate) unsafe extern "C" fn plain_alloc(
    _ud: *mut c_void,
    ptr: *mut c_void,
    _osize: usize,
    nsize: usize,
) -> *mut c_void {
    if nsize == 0 {
        libc::free(ptr);
        return std::ptr::null_mut();
    }
    let p = libc::realloc(ptr, nsize);
    if p.is_null() {
        // The code state must never collect (its objects are shared): an
        // emergency collection on a failed allocation is not an option.
        std::process::abort();
    }
    p
}

fn open_code_state() -> (u32, Option<Mutex<CodeState>>) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let seed = (t ^ (t >> 32)) as u32 ^ std::process::id().rotate_left(16);
    unsafe {
        let l = lua_newstate(plain_alloc, std::ptr::null_mut(), seed);
        if l.is_null() {
            return (seed, None);
        }
        lua_gc(l, LUA_GCSTOP);
        luaL_openlibs(l);
        if lua_sharestrings(l) == 0 {
            return (seed, None);
        }
        (seed, Some(Mutex::new(CodeState(l))))
    }
}

/// The hash seed every Lua state of a service must be created with.
pub fn seed() -> u32 {
    CODE_STATE.0
}

/// Loads `code` into the code state and shares its prototype.
fn share(code: &'static [u8], name: &CString) -> Option<SharedProto> {
    let cs = CODE_STATE.1.as_ref()?.lock();
    let l = cs.0;
    unsafe {
        if luaL_loadbufferx(
            l,
            code.as_ptr() as *const c_char,
            code.len(),
            name.as_ptr(),
            c"B".as_ptr(),
        ) != LUA_OK
        {
            lua_pop(l, 1);
            return None;
        }
        let p = lua_shareproto(l, -1);
        // Kept referenced for the life of the process.
        luaL_ref(l, LUA_REGISTRYINDEX);
        (!p.is_null()).then_some(SharedProto(p))
    }
}

const MODE_KEY: &std::ffi::CStr = c"skynet.codecache.mode";
const MODES: [&str; 3] = ["OFF", "EXIST", "ON"];

pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    lua_createtable(l, 0, 3);
    lua_pushcfunction(l, lclear);
    lua_setfield(l, -2, c"clear".as_ptr());
    lua_pushcfunction(l, lmode);
    lua_setfield(l, -2, c"mode".as_ptr());
    lua_pushcfunction(l, lloadfile);
    lua_setfield(l, -2, c"loadfile".as_ptr());
    1
}

unsafe extern "C-unwind" fn lclear(_l: State) -> c_int {
    CACHE.lock().clear();
    RESOLVED.lock().clear();
    0
}

unsafe fn mode(l: State) -> usize {
    lua_getfield(l, LUA_REGISTRYINDEX, MODE_KEY.as_ptr());
    let m = if lua_type(l, -1) == LUA_TNUMBER {
        lua_tointeger(l, -1) as usize
    } else {
        2
    };
    lua_pop(l, 1);
    m.min(2)
}

unsafe extern "C-unwind" fn lmode(l: State) -> c_int {
    if lua_isnoneornil(l, 1) != 0 {
        push_str(l, MODES[mode(l)]);
        return 1;
    }
    // A slice of argument 1, not a Cow: nothing to drop if a call raises.
    let want = check_bytes(l, 1);
    let Some(m) = MODES.iter().position(|x| x.as_bytes() == want) else {
        let msg = format!(
            "bad argument #1 to 'mode' (invalid option '{}')",
            String::from_utf8_lossy(want)
        );
        raise_here(l, msg);
    };
    lua_pushinteger(l, m as lua_Integer);
    lua_setfield(l, LUA_REGISTRYINDEX, MODE_KEY.as_ptr());
    0
}

unsafe extern "C-unwind" fn dump_writer(
    _l: State,
    p: *const c_void,
    sz: usize,
    ud: *mut c_void,
) -> c_int {
    if sz == 0 || p.is_null() {
        return 0;
    }
    let out = &mut *(ud as *mut Vec<u8>);
    out.extend_from_slice(std::slice::from_raw_parts(p as *const u8, sz));
    0
}

/// A process-lifetime copy of `code`, 8-byte aligned (fixed chunks point into
/// it for their instruction and line arrays).
fn leak_aligned(code: &[u8]) -> &'static [u8] {
    let words: &'static mut [u64] =
        Box::leak(vec![0u64; code.len().div_ceil(8)].into_boxed_slice());
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, code.len()) };
    bytes.copy_from_slice(code);
    bytes
}

/// Loads `filename` as a chunk onto the stack (through the cache). Returns the
/// Lua status; on failure the error message is on the stack.
pub unsafe fn load(l: State, filename: &[u8]) -> c_int {
    let m = mode(l);
    if m != 0 {
        let hit = CACHE.lock().get(filename).copied();
        if let Some(Compiled { code, proto, epoch }) = hit {
            if let Some(p) = proto {
                let check = state_epoch(l).is_none_or(|e| e < epoch);
                if lua_cloneshared(l, p.0, check as c_int) != 0 {
                    return LUA_OK;
                }
            }
            let name = chunk_name(filename);
            // "B": a fixed binary chunk, whose code stays in `code` (shared).
            return luaL_loadbufferx(
                l,
                code.as_ptr() as *const c_char,
                code.len(),
                name.as_ptr(),
                c"B".as_ptr(),
            );
        }
    }
    // luaL_loadfilex and lua_dump may raise (out of memory): what is alive
    // across them is a ManuallyDrop, which a longjmp only leaks.
    if filename.contains(&0) {
        push_str(l, "file name contains a zero byte");
        return LUA_ERRFILE;
    }
    // Cannot fail: there is no zero byte.
    let mut path = ManuallyDrop::new(CString::new(filename).unwrap_or_default());
    let status = luaL_loadfilex(l, path.as_ptr(), c"t".as_ptr());
    ManuallyDrop::drop(&mut path);
    if status == LUA_OK && m == 2 {
        let mut code = ManuallyDrop::new(Vec::<u8>::new());
        let dumped = lua_dump(l, dump_writer, &mut *code as *mut Vec<u8> as *mut c_void, 0);
        let code = ManuallyDrop::into_inner(code);
        if dumped == 0 {
            let code = leak_aligned(&code);
            let proto = share(code, &chunk_name(filename));
            let epoch = lua_sharedepoch();
            CACHE
                .lock()
                .insert(filename.to_vec(), Compiled { code, proto, epoch });
        }
    }
    status
}

fn chunk_name(filename: &[u8]) -> CString {
    let mut n = Vec::with_capacity(filename.len() + 1);
    n.push(b'@');
    n.extend(filename.iter().copied().filter(|b| *b != 0));
    CString::new(n).unwrap_or_default()
}

/// `loadfile(filename [, mode [, env]])` through the cache.
pub unsafe extern "C-unwind" fn lloadfile(l: State) -> c_int {
    // The name is read from argument 1, which stays on the stack: no Vec is
    // alive across the raising calls in `load`.
    let name = check_bytes(l, 1);
    let has_env = lua_type(l, 3) != LUA_TNONE;
    let status = load(l, name);
    if status != LUA_OK {
        lua_pushnil(l);
        lua_insert(l, -2);
        return 2;
    }
    if has_env {
        lua_pushvalue(l, 3);
        if lua_setupvalue(l, -2, 1).is_null() {
            lua_pop(l, 1);
        }
    }
    1
}

/// A replacement for Lua's file searcher (`package.searchers[2]`) that loads
/// through the cache.
///
/// The module name, `package.path` and the file found stay on the Lua stack
/// (slots 1, 3 and 4) and are read there: no Rust value with a destructor is
/// alive across `searchpath` (Lua code) or the loading, which may raise.
pub unsafe extern "C-unwind" fn searcher(l: State) -> c_int {
    let name = check_bytes(l, 1);
    lua_getglobal(l, c"package".as_ptr()); // 2
    lua_getfield(l, -1, c"path".as_ptr()); // 3
    if lua_type(l, -1) != LUA_TSTRING {
        raise_here(l, "'package.path' must be a string".to_string());
    }
    let path = to_bytes(l, 3).unwrap_or(&[]);
    // Where a module was found is cached with its code, saving the file probes
    // of package.searchpath for every new service.
    let known = if mode(l) != 0 {
        RESOLVED
            .lock()
            .get(&(name.to_vec(), path.to_vec()))
            .cloned()
    } else {
        None
    };
    match known {
        Some(f) => {
            let f = ManuallyDrop::new(f);
            push_bytes(l, &f); // 4
            drop(ManuallyDrop::into_inner(f));
        }
        None => {
            lua_getfield(l, 2, c"searchpath".as_ptr());
            lua_pushvalue(l, 1);
            lua_pushvalue(l, 3);
            lua_call(l, 2, 2);
            if lua_isnil(l, -2) != 0 {
                return 1; // the "no file ..." text
            }
            lua_pop(l, 1); // the file at 4
            let found = to_bytes(l, 4).unwrap_or(&[]);
            if mode(l) == 2 {
                RESOLVED
                    .lock()
                    .insert((name.to_vec(), path.to_vec()), found.to_vec());
            }
        }
    }
    let file = to_bytes(l, 4).unwrap_or(&[]);
    if load(l, file) == LUA_OK {
        lua_pushvalue(l, 4);
        2
    } else {
        let err = to_bytes(l, -1).unwrap_or(&[]);
        let msg = format!(
            "error loading module '{}' from file '{}':\n\t{}",
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(file),
            String::from_utf8_lossy(err)
        );
        raise_here(l, msg)
    }
}

/// Runs `f` on the code state under its lock (None if there is none).
pub(crate) fn with_code_state<R>(f: impl FnOnce(State) -> R) -> Option<R> {
    let cs = CODE_STATE.1.as_ref()?.lock();
    Some(f(cs.0))
}
