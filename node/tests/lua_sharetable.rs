//! Shared tables in our patched Lua VM (vendor/lua-src, lshared.c and the
//! changes marked "skynet-rs"): a table built in one state, pushed into
//! other states without copying, read by several threads at once, never
//! written, and freed when the last state that may reach it is closed.

mod common;

use common::lua_state::{new_state, Gc};
use skynet_node::snlua::lua::*;
use skynet_node::snlua::sharetable::Matrix;
use std::ffi::{c_int, CString};
use std::sync::{Arc, Mutex, Weak};

extern "C-unwind" {
    fn lua_sharetable(l: State, idx: c_int);
    fn lua_issharedtable(l: State, idx: c_int) -> c_int;
}

unsafe extern "C-unwind" fn is_shared(l: State) -> c_int {
    // SAFETY: `l` is the calling state; index 1 is an argument or none, which
    // lua_issharedtable answers 0 for, and the push has a free slot.
    unsafe { lua_pushboolean(l, lua_issharedtable(l, 1)) };
    1
}

/// `share(t)` in a test state: lua_sharetable on its argument.
unsafe extern "C-unwind" fn share(l: State) -> c_int {
    // SAFETY: `l` is the calling state; after settop index 1 exists (nil at
    // worst), and lua_sharetable raises a Lua error for what it cannot share.
    unsafe {
        lua_settop(l, 1);
        lua_sharetable(l, 1);
    }
    1
}

/// A state of its own (with the process's hash seed, as every service
/// state) that holds the matrices it was given until it is closed.
struct Reader {
    l: State,
    held: Vec<Arc<Matrix>>,
}

// SAFETY: a Lua state may move between threads as long as one thread at a
// time uses it; a Reader owns its state (no other handle to it escapes) and
// `&mut`/`&self` use happens on the thread that holds the Reader. It is not
// Sync.
unsafe impl Send for Reader {}

impl Reader {
    fn new() -> Reader {
        let l = new_state(Gc::Running);
        // SAFETY: the new state is ours alone; the functions registered are
        // this file's C functions.
        unsafe {
            lua_pushcfunction(l, is_shared);
            lua_setglobal(l, c"is_shared".as_ptr());
            lua_pushcfunction(l, share);
            lua_setglobal(l, c"share".as_ptr());
            Reader {
                l,
                held: Vec::new(),
            }
        }
    }

    /// Makes the shared table of `m` the global `name`.
    fn give(&mut self, name: &str, m: &Arc<Matrix>) {
        let name = CString::new(name).unwrap();
        // SAFETY: `self.l` is this Reader's live state; `name` outlives the
        // call, and the matrix is held (`held`) until after the state closes.
        unsafe {
            assert!(m.push(self.l), "the reader uses the shared seed");
            lua_setglobal(self.l, name.as_ptr());
        }
        self.held.push(m.clone());
    }

    /// Runs `code`; its results joined by spaces, or the error message.
    fn eval(&self, code: &str) -> Result<String, String> {
        let c = CString::new(code).unwrap();
        // SAFETY: `self.l` is this Reader's live state; the code's errors are
        // caught by lua_pcall (a failing __tostring of a result would end in
        // Lua's panic, an abort), and each string slice is copied out before
        // its value is popped.
        unsafe {
            let l = self.l;
            lua_settop(l, 0);
            if luaL_loadstring(l, c.as_ptr()) != LUA_OK || lua_pcall(l, 0, LUA_MULTRET, 0) != LUA_OK
            {
                let e = to_bytes(l, -1)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                lua_settop(l, 0);
                return Err(e);
            }
            let mut out = Vec::new();
            for i in 1..=lua_gettop(l) {
                let mut len = 0usize;
                let p = luaL_tolstring(l, i, &mut len);
                let b = std::slice::from_raw_parts(p as *const u8, len);
                out.push(String::from_utf8_lossy(b).into_owned());
                lua_pop(l, 1);
            }
            lua_settop(l, 0);
            Ok(out.join(" "))
        }
    }

    fn ok(&self, code: &str) -> String {
        self.eval(code)
            .unwrap_or_else(|e| panic!("{e}\nin:\n{code}"))
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // The state first, then what it held (as a service's `Shared`).
        // SAFETY: the state is this Reader's and is closed once, here.
        unsafe { lua_close(self.l) };
        self.held.clear();
    }
}

fn matrix(src: &str) -> Arc<Matrix> {
    Matrix::from_source(src.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

const CONFIG: &str = r#"
    local t = {
        name = "config",
        list = { 10, 20, 30 },
        nested = { deep = { x = 1, label = "deep label" } },
        [1.5] = "float key",
        [true] = "boolean key",
        long = string.rep("long value ", 20),
        ["with space"] = "spaced",
        add = function(a, b) return a + b end,
        counter = function(n)
            local fs = {}
            for i = 1, n do fs[i] = function() return i * 10 end end
            return fs
        end,
        fail = function() local none = nil return none.field end,
        lib = print,
    }
    t.self = t
    t.nested.up = t
    for i = 1, 100 do t["k" .. i] = i end
    return t
"#;

/// Reads go through the index, `#`, pairs, ipairs, next, nested tables,
/// shared functions; keys and values compare equal to the reader's own
/// strings although they were made by another state.
#[test]
fn a_shared_table_reads_like_a_plain_table() {
    let mut r = Reader::new();
    // The reader makes its own copies of these strings before the table
    // exists: its lookups and comparisons must still match the table's.
    r.ok(r#"MINE = { "config", "name", "list", "deep", "label", "k50", "with space" }"#);
    let m = matrix(CONFIG);
    r.give("T", &m);
    assert_eq!(
        r.ok("return is_shared(T), is_shared(T.nested.deep), is_shared({})"),
        "true true false"
    );
    assert_eq!(
        r.ok(
            "return T.name, T.name == 'config', rawequal(T.name, MINE[1]), #T.name, T.name:upper()"
        ),
        "config true true 6 CONFIG"
    );
    assert_eq!(
        r.ok("return #T.list, T.list[2], table.concat(T.list, ','), select('#', table.unpack(T.list))"),
        "3 20 10,20,30 3"
    );
    assert_eq!(
        r.ok("local s = 0 for i, v in ipairs(T.list) do s = s + i * v end return s"),
        "140"
    );
    assert_eq!(
        r.ok("local n, s = 0, 0 for k, v in pairs(T) do n = n + 1 if type(v) == 'number' then s = s + v end end return n, s"),
        // 11 named fields, self and the 100 k's
        format!("{} {}", 12 + 100, (1..=100).sum::<i32>())
    );
    assert_eq!(
        r.ok("return T.nested.deep.x, T.nested.deep.label, T.self == T, T.nested.up.nested == T.nested"),
        "1 deep label true true"
    );
    assert_eq!(
        r.ok("return T[1.5], T[3/2], T[true], T['with space'], T['k' .. (49 + 1)], T.long == string.rep('long value ', 20)"),
        "float key float key boolean key spaced 50 true"
    );
    assert_eq!(
        r.ok("local k = next(T.nested.deep, nil) local k2 = next(T.nested.deep, k) return (k == 'x' or k == 'label') and (k2 == 'x' or k2 == 'label') and k ~= k2, next(T.nested.deep, k2)"),
        "true nil"
    );
    // Shared keys and values used with the reader's own tables.
    assert_eq!(
        r.ok(r#"
            local copy = {}
            for k, v in pairs(T) do copy[k] = v end
            local byname = { config = "found" }
            local keys = 0
            local merged = { name = 1 }
            merged[next({ [T.name] = 0 })] = nil
            for k in pairs(T.nested.deep) do merged[k] = true end
            merged.x = "mine"
            for _ in pairs(merged) do keys = keys + 1 end
            return copy.name, copy.k50, byname[T.name], keys, merged.x, merged.label
        "#),
        "config 50 found 3 mine true"
    );
    // Functions without upvalues are shared and run in the reader.
    assert_eq!(
        r.ok("local fs = T.counter(3) return T.add(2, 3), fs[1]() + fs[3](), #fs"),
        "5 40 3"
    );
    let e = r.eval("T.fail()").unwrap_err();
    // an error in a shared function names its chunk, line and variable
    assert!(
        e.contains("]:16: attempt to index a nil value (local 'none')"),
        "{e}"
    );
    assert_eq!(r.ok("return T.lib == print"), "true");
    // A shared table as an __index and as a metatable.
    assert_eq!(
        r.ok("local o = setmetatable({}, { __index = T }) local p = setmetatable({}, T) return o.name, o.list[3], p.name, rawlen(T.list)"),
        "config 30 nil 3"
    );
    assert_eq!(
        r.ok("return string.format('%s', T.nested.deep.label)"),
        "deep label"
    );
}

/// Every kind of write raises the same error, before anything is written.
#[test]
fn every_write_to_a_shared_table_raises() {
    let mut r = Reader::new();
    let m = matrix(CONFIG);
    let before = m.fingerprint();
    assert_ne!(before, 0);
    r.give("T", &m);
    let writes = [
        "T.name = 'changed'",
        "T.newkey = 1",
        "T.name = nil",
        "T[1.5] = 2",
        "T[false] = 1",
        "T[{}] = 1",
        "T.list[1] = 5",
        "T.list[4] = 40",
        "T.list[100] = 1",
        "T.nested.deep.x = 2",
        "rawset(T, 'name', 'changed')",
        "rawset(T, 'zzz', 1)",
        "rawset(T.list, 1, 0)",
        "rawset(T.list, 4, 0)",
        "table.insert(T.list, 40)",
        "table.insert(T.list, 1, 0)",
        "table.remove(T.list)",
        "table.remove(T.list, 1)",
        "table.sort(T.list, function(a, b) return a > b end)",
        "table.move({ 1, 2 }, 1, 2, 1, T.list)",
        "setmetatable(T, {})",
        "debug.setmetatable(T, nil)",
        "setmetatable({}, { __newindex = T }).x = 1",
        "setmetatable({}, { __newindex = setmetatable({}, { __newindex = T.nested }) }).x = 1",
        "local _ENV = T; newglobal = 1",
        "for k in pairs(T) do T[k] = nil end",
        "for k, v in next, T.list do rawset(T.list, k, v + 1) end",
    ];
    for w in writes {
        let e = r
            .eval(w)
            .err()
            .unwrap_or_else(|| panic!("{w} did not raise"));
        assert!(e.ends_with("attempt to change a shared table"), "{w}: {e}");
    }
    assert_eq!(
        r.ok(
            "return T.name, #T.list, T.list[1], T.newkey, T[1.5], T.nested.deep.x, getmetatable(T)"
        ),
        "config 3 10 nil float key 1 nil"
    );
    assert_eq!(m.fingerprint(), before, "a failed write changed the table");
}

/// The same from C: lua_setfield, lua_rawseti, lua_setmetatable.
#[test]
fn c_api_writes_to_a_shared_table_raise() {
    // Called as f(T) with the shared table T at index 1: each write raises.
    unsafe extern "C-unwind" fn setfield(l: State) -> c_int {
        // SAFETY: `l` is the calling state and index 1 holds the table.
        unsafe {
            lua_pushinteger(l, 1);
            lua_setfield(l, 1, c"name".as_ptr());
        }
        0
    }
    unsafe extern "C-unwind" fn rawseti(l: State) -> c_int {
        // SAFETY: `l` is the calling state and index 1 holds the table.
        unsafe {
            lua_pushinteger(l, 1);
            lua_rawseti(l, 1, 1);
        }
        0
    }
    unsafe extern "C-unwind" fn setmeta(l: State) -> c_int {
        // SAFETY: `l` is the calling state and index 1 holds the table.
        unsafe {
            lua_createtable(l, 0, 0);
            lua_setmetatable(l, 1);
        }
        0
    }
    let mut r = Reader::new();
    let m = matrix("return { name = 'n', 1 }");
    r.give("T", &m);
    for f in [setfield as lua_CFunction, rawseti, setmeta] {
        // SAFETY: `r.l` is the Reader's live state; `f` is a C function.
        unsafe {
            lua_pushcfunction(r.l, f);
            lua_setglobal(r.l, c"f".as_ptr());
        }
        assert_eq!(
            r.eval("f(T)").unwrap_err(),
            "attempt to change a shared table"
        );
    }
    assert_eq!(r.ok("return T.name, T[1]"), "n 1");
}

/// What cannot be shared is named with where it was found, and a failed
/// share leaves the table as it was.
#[test]
fn unshareable_values_are_refused_with_their_path() {
    let cases = [
        (
            "local up = 1 return { a = { b = function() return up end } }",
            "a function with upvalues cannot be shared (at root.a.b)",
        ),
        (
            "return { list = { [3] = { g = string.gmatch('a', 'a') } } }",
            "a C function with upvalues cannot be shared (at root.list[3].g)",
        ),
        (
            "return { co = coroutine.create(print) }",
            "a thread cannot be shared (at root.co)",
        ),
        (
            "return { f = io.stdout }",
            "a userdata cannot be shared (at root.f)",
        ),
        (
            "return { ['not a name'] = { io.stdout } }",
            "a userdata cannot be shared (at root[\"not a name\"][1])",
        ),
        (
            "return { [io.stdout] = 1 }",
            "a userdata cannot be shared (a key in root)",
        ),
        (
            "return setmetatable({}, {})",
            "a table with a metatable cannot be shared (at root)",
        ),
        (
            "return { x = { y = setmetatable({}, {}) } }",
            "a table with a metatable cannot be shared (at root.x.y)",
        ),
        (
            "return function() end",
            "sharetable: a table is expected, got function",
        ),
        ("return {", "unexpected symbol near <eof>"),
        ("error('in the chunk')", "in the chunk"),
    ];
    for (src, want) in cases {
        let e = Matrix::from_source(src.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{src} was shared"));
        assert!(e.contains(want), "{src}: {e}");
    }
    // light C functions and functions without upvalues are fine
    assert!(Matrix::from_source(b"return { print, function(a) return a end }").is_ok());

    // In one state: the failed share is undone.
    let r = Reader::new();
    assert_eq!(
        r.ok(r#"
            local inner = { 1, 2, name = "inner" }
            local t = { inner = inner, s = "text", bad = io.stdout }
            local ok, e = pcall(share, t)
            t.after = 1
            inner[3] = 3
            return ok, e, is_shared(t), is_shared(inner), t.after, #inner
        "#),
        "false sharetable: a userdata cannot be shared (at root.bad) false false 1 3"
    );
    // and a share that works makes everything reached shared
    assert_eq!(
        r.ok(r#"
            local t = share({ a = { b = { c = {} } }, f = function() return 1 end })
            local ok, e = pcall(function() t.a.b.c.d = 1 end)
            return is_shared(t), is_shared(t.a.b.c), ok, e:match("attempt to change a shared table$")
        "#),
        "true true false attempt to change a shared table"
    );
}

fn big_source(version: u32, entries: u32) -> String {
    format!(
        r#"
        local t = {{ version = {version}, list = {{}}, names = {{}} }}
        for i = 1, {entries} do
            t["k" .. i] = {{ i, tostring(i), sq = i * i }}
            t.list[i] = i * {version}
        end
        t.names.first, t.names.last = "k1", "k{entries}"
        return t
        "#
    )
}

/// What a reader computes from a version of `big_source`.
const READ_ALL: &str = r#"
    local t = T
    local n, s = 0, 0
    for k, v in pairs(t) do
        if type(v) == "table" and v.sq then
            n = n + 1
            s = s + v[1] + #v[2] + v.sq
            assert(t["k" .. v[1]] == v)
        end
    end
    local l = 0
    for i, v in ipairs(t.list) do l = l + v end
    assert(#t.list == n)
    assert(t[t.names.last][1] == n)
    local probe = setmetatable({}, t)   -- t as a metatable: its caches are read
    assert(probe.version == nil and #probe == 0)
    return t.version, n, s, l
"#;

fn expected(version: u32, entries: u64) -> String {
    let s: u64 = (1..=entries)
        .map(|i| i + i.to_string().len() as u64 + i * i)
        .sum();
    let l: u64 = (1..=entries).map(|i| i * version as u64).sum();
    format!("{version} {entries} {s} {l}")
}

/// Several threads, each with its own state, read the current version over
/// and over with full and generational collections in between, while the
/// owner builds new versions and lets go of the old ones. Every read sees
/// a whole version, no byte of any version changes, and every version is
/// freed once its last reader is closed.
#[test]
fn concurrent_readers_with_gc_while_the_owner_updates() {
    const ENTRIES: u32 = 2000;
    const READERS: usize = 4;
    const ROUNDS: usize = 12;
    let first = matrix(&big_source(1, ENTRIES));
    let current: Arc<Mutex<(u32, Arc<Matrix>)>> = Arc::new(Mutex::new((1, first)));
    // every version made: its number, the matrix, its fingerprint when made
    type Versions = Vec<(u32, Weak<Matrix>, u64)>;
    let all: Arc<Mutex<Versions>> = Arc::new(Mutex::new(Vec::new()));
    {
        let c = current.lock().unwrap();
        all.lock()
            .unwrap()
            .push((1, Arc::downgrade(&c.1), c.1.fingerprint()));
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|id| {
            let current = current.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut r = Reader::new();
                if id % 2 == 0 {
                    r.ok("collectgarbage('generational')");
                } else {
                    r.ok("collectgarbage('incremental')");
                }
                let mut seen = Vec::new();
                let mut round = 0;
                while round < ROUNDS || !done.load(std::sync::atomic::Ordering::Acquire) {
                    let (version, m) = {
                        let c = current.lock().unwrap();
                        (c.0, c.1.clone())
                    };
                    r.give("T", &m);
                    drop(m);
                    assert_eq!(r.ok(READ_ALL), expected(version, ENTRIES as u64));
                    // garbage of its own, referencing shared objects, then
                    // collections of every kind
                    r.ok("local keep = {} for k, v in pairs(T) do keep[#keep + 1] = { k, v } end KEEP = keep collectgarbage() collectgarbage('step', 0)");
                    r.ok("KEEP = nil T = nil collectgarbage()");
                    seen.push(version);
                    round += 1;
                }
                seen
            })
        })
        .collect();
    for v in 2..=6u32 {
        let m = matrix(&big_source(v, ENTRIES));
        all.lock()
            .unwrap()
            .push((v, Arc::downgrade(&m), m.fingerprint()));
        // the owner replaces its version: the old one lives on in readers
        *current.lock().unwrap() = (v, m);
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    // Fingerprints while the readers still hold their versions.
    let mut saw_old = false;
    let seen: Vec<Vec<u32>> = readers.into_iter().map(|h| h.join().unwrap()).collect();
    for s in &seen {
        assert!(s.len() >= ROUNDS);
        saw_old |= s.iter().any(|v| *v < 6);
    }
    assert!(saw_old, "readers only ever saw the last version: {seen:?}");
    // Readers are closed (they joined); only the current version is held.
    for (v, weak, print) in all.lock().unwrap().iter() {
        if *v == 6 {
            let m = weak.upgrade().expect("the current version is held");
            assert_eq!(m.fingerprint(), *print, "version {v} was written to");
        } else {
            assert!(weak.upgrade().is_none(), "version {v} was not freed");
        }
    }
    let last = Arc::downgrade(&current.lock().unwrap().1);
    drop(current);
    assert!(last.upgrade().is_none());
}

/// While readers hold it, reading writes no byte; a version lives while a
/// reader holds it after the owner let go, and is freed (the pointer is
/// then unknown) when that reader is closed.
#[test]
fn a_version_lives_until_its_last_reader_is_closed() {
    let m = matrix(&big_source(7, 500));
    let print = m.fingerprint();
    let addr = m.address();
    let weak = Arc::downgrade(&m);
    let mut r = Reader::new();
    r.give("T", &m);
    drop(m);
    assert!(Matrix::find(addr).is_some(), "a reader still holds it");
    for _ in 0..3 {
        assert_eq!(r.ok(READ_ALL), expected(7, 500));
        r.ok("collectgarbage()");
    }
    assert_eq!(weak.upgrade().unwrap().fingerprint(), print);
    drop(r);
    assert!(weak.upgrade().is_none());
    // (another test may have a new matrix at the same address)
    assert!(
        Matrix::find(addr).is_none_or(|m| m.fingerprint() != print),
        "a freed version is not found"
    );
}

/// A reader pays for a reference, not for the table: its own memory grows
/// by a few bytes whatever the size of the table.
#[test]
fn a_reader_does_not_copy_the_table() {
    let small = matrix(&big_source(1, 10));
    let big = matrix(&big_source(1, 10_000));
    assert!(big.bytes() > 1_000_000, "{}", big.bytes());
    let mut r = Reader::new();
    let kib = |r: &Reader| -> f64 {
        r.ok("collectgarbage() collectgarbage() return collectgarbage('count')")
            .parse()
            .unwrap()
    };
    r.ok("HOLD = { false, false } T = false");
    let base = kib(&r);
    r.give("T", &small);
    r.ok("HOLD[1] = T T = nil");
    let after_small = kib(&r);
    r.give("T", &big);
    r.ok("HOLD[2] = T T = nil");
    let after_big = kib(&r);
    assert!(after_small - base < 1.0, "{base} -> {after_small}");
    assert!(
        after_big - after_small < 1.0,
        "{after_small} -> {after_big}"
    );
    assert_eq!(
        r.ok("return HOLD[2].version, #HOLD[2].list, HOLD[2].k10000.sq"),
        "1 10000 100000000"
    );
}
