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
// SAFETY: a shared prototype is immutable and lives for the whole process
// (the code state keeps it referenced and never collects), so any thread may
// hold the pointer.
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
    // SAFETY: reads a process-wide counter of the vendored Lua; no state is
    // involved.
    unsafe { lua_sharedepoch() }
}

/// The shared epoch of a service's state, from its allocator's runtime.
///
/// # Safety
/// `l` is a live state.
unsafe fn state_epoch(l: State) -> Option<u32> {
    let mut ud: *mut c_void = std::ptr::null_mut();
    // SAFETY: `l` is live (contract); `ud` is a valid out-pointer.
    let f = unsafe { lua_getallocf(l, &mut ud) };
    let ours: lua_Alloc = super::allocator;
    (f as usize == ours as usize && !ud.is_null())
        // SAFETY: a state with our allocator has its Runtime as the ud
        // (Snlua::launch), alive as long as the state.
        .then(|| unsafe { (*(ud as *const super::Runtime)).shared_epoch })
}

/// The state that owns shared prototypes. Its collector never runs; it is
/// only used under this lock.
struct CodeState(State);
// SAFETY: the code state is only used under CODE_STATE's lock, by one
// thread at a time, and never closed.
unsafe impl Send for CodeState {}

static CODE_STATE: LazyLock<(u32, Option<Mutex<CodeState>>)> = LazyLock::new(open_code_state);

/// The code state's allocator (no accounting; aborts when memory runs out).
///
/// # Safety
/// A `lua_Alloc`: `ptr` is null or a block this function returned.
pub unsafe extern "C" fn plain_alloc(
    _ud: *mut c_void,
    ptr: *mut c_void,
    _osize: usize,
    nsize: usize,
) -> *mut c_void {
    if nsize == 0 {
        // SAFETY: `ptr` is null or came from realloc below (contract).
        unsafe { libc::free(ptr) };
        return std::ptr::null_mut();
    }
    // SAFETY: as above.
    let p = unsafe { libc::realloc(ptr, nsize) };
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
    // SAFETY: a new state, reached by this thread only until it is put
    // under the lock. Outside a protected call a Lua error aborts (no panic
    // function), and plain_alloc aborts rather than fail, so nothing
    // longjmps.
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
    // SAFETY: the code state is used under its lock (held in `cs`). `code`
    // is 'static and `name` outlives the call; lua_load raises nothing
    // (its parser is protected), and luaL_ref cannot fail for memory
    // (plain_alloc aborts), so no longjmp skips a destructor here.
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

/// `require "skynet.codecache"`.
///
/// # Safety
/// A Lua C function: `l` is the live state that called it.
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: `l` is live with free slots (contract); each function is
    // pushed and stored into the new table; nothing here has a destructor.
    unsafe {
        lua_createtable(l, 0, 3);
        lua_pushcfunction(l, lclear);
        lua_setfield(l, -2, c"clear".as_ptr());
        lua_pushcfunction(l, lmode);
        lua_setfield(l, -2, c"mode".as_ptr());
        lua_pushcfunction(l, lloadfile);
        lua_setfield(l, -2, c"loadfile".as_ptr());
    }
    1
}

unsafe extern "C-unwind" fn lclear(_l: State) -> c_int {
    CACHE.lock().clear();
    RESOLVED.lock().clear();
    0
}

/// The cache mode of this state: 0 OFF, 1 EXIST, 2 ON (the default).
///
/// # Safety
/// `l` is a live state with a free slot; may raise (out of memory), so the
/// caller keeps nothing with a destructor alive.
unsafe fn mode(l: State) -> usize {
    // SAFETY: `l` is live (contract); the registry field is read and popped.
    let m = unsafe {
        lua_getfield(l, LUA_REGISTRYINDEX, MODE_KEY.as_ptr());
        let m = if lua_type(l, -1) == LUA_TNUMBER {
            lua_tointeger(l, -1) as usize
        } else {
            2
        };
        lua_pop(l, 1);
        m
    };
    m.min(2)
}

/// `codecache.mode([mode])`.
///
/// # Safety
/// A Lua C function: `l` is the live state that called it.
unsafe extern "C-unwind" fn lmode(l: State) -> c_int {
    // SAFETY: `l` is the calling state; nothing with a destructor is alive.
    unsafe {
        if lua_isnoneornil(l, 1) != 0 {
            push_str(l, MODES[mode(l)]);
            return 1;
        }
    }
    // A slice of argument 1, not a Cow: nothing to drop if a call raises.
    // SAFETY: the check raises with nothing to drop; the slice is used
    // while argument 1 is on the stack.
    let want = unsafe { check_bytes(l, 1) };
    let Some(m) = MODES.iter().position(|x| x.as_bytes() == want) else {
        let msg = format!(
            "bad argument #1 to 'mode' (invalid option '{}')",
            String::from_utf8_lossy(want)
        );
        // SAFETY: `msg` is moved into raise_here; nothing else alive has a
        // destructor.
        unsafe { raise_here(l, msg) };
    };
    // SAFETY: a push and a store into the registry; nothing to drop.
    unsafe {
        lua_pushinteger(l, m as lua_Integer);
        lua_setfield(l, LUA_REGISTRYINDEX, MODE_KEY.as_ptr());
    }
    0
}

/// The `lua_Writer` of `load`'s dump: appends to the Vec at `ud`.
///
/// # Safety
/// `ud` points to a `Vec<u8>` no one else uses during the dump; `p` holds
/// `sz` bytes.
unsafe extern "C-unwind" fn dump_writer(
    _l: State,
    p: *const c_void,
    sz: usize,
    ud: *mut c_void,
) -> c_int {
    if sz == 0 || p.is_null() {
        return 0;
    }
    // SAFETY: `ud` is the dump's own Vec and `p` holds `sz` bytes
    // (contract).
    unsafe {
        let out = &mut *(ud as *mut Vec<u8>);
        out.extend_from_slice(std::slice::from_raw_parts(p as *const u8, sz));
    }
    0
}

/// A process-lifetime copy of `code`, 8-byte aligned (fixed chunks point into
/// it for their instruction and line arrays).
fn leak_aligned(code: &[u8]) -> &'static [u8] {
    let words: &'static mut [u64] =
        Box::leak(vec![0u64; code.len().div_ceil(8)].into_boxed_slice());
    // SAFETY: the leaked words hold at least `code.len()` bytes, any byte
    // value is a valid u8, and the words are never used as u64 again.
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, code.len()) };
    bytes.copy_from_slice(code);
    bytes
}

/// Loads `filename` as a chunk onto the stack (through the cache). Returns the
/// Lua status; on failure the error message is on the stack.
///
/// # Safety
/// `l` is a live state with a few free slots; `filename` stays valid while
/// Lua code may run (e.g. it is a string on the stack). May raise (out of
/// memory), so the caller keeps nothing with a destructor alive.
pub unsafe fn load(l: State, filename: &[u8]) -> c_int {
    // SAFETY: our contract.
    unsafe { load_mode(l, filename, c"bt") }
}

/// Whether the file holds a binary chunk: its first byte after a UTF-8 BOM
/// and a first line starting with '#' (both skipped by Lua) is the
/// signature's. False for a file that cannot be read (loading it says why).
fn is_binary_file(filename: &[u8]) -> bool {
    use std::io::{BufReader, Read};
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(filename));
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut bytes = BufReader::new(f).bytes().map_while(Result::ok);
    let mut c = bytes.next();
    if c == Some(0xEF) {
        // a BOM is skipped whole; a partial one is the file's text
        if bytes.next() != Some(0xBB) || bytes.next() != Some(0xBF) {
            return false;
        }
        c = bytes.next();
    }
    if c == Some(b'#') {
        c = bytes
            .by_ref()
            .find(|&b| b == b'\n')
            .and_then(|_| bytes.next());
    }
    c == Some(0x1b)
}

/// [`load`] with Lua's `mode` ("b", "t" or "bt"). Only text chunks are
/// cached: a binary file (allowed by `mode`) is loaded as Lua loads it.
///
/// # Safety
/// As [`load`].
pub unsafe fn load_mode(l: State, filename: &[u8], lmode: &std::ffi::CStr) -> c_int {
    // SAFETY: our contract; nothing of ours is alive yet.
    let m = unsafe { mode(l) };
    let text = lmode.to_bytes().contains(&b't');
    if lmode.to_bytes().contains(&b'b') && !filename.contains(&0) && is_binary_file(filename) {
        // Cannot fail: there is no zero byte.
        let mut path = ManuallyDrop::new(CString::new(filename).unwrap_or_default());
        // SAFETY: `path` is NUL-terminated and a ManuallyDrop (a raise leaks
        // it); it is dropped once, after the call.
        return unsafe {
            let status = luaL_loadfilex(l, path.as_ptr(), lmode.as_ptr());
            ManuallyDrop::drop(&mut path);
            status
        };
    }
    if m != 0 && text {
        let hit = CACHE.lock().get(filename).copied();
        if let Some(Compiled { code, proto, epoch }) = hit {
            if let Some(p) = proto {
                // SAFETY: `l` is live; `p` is a shared prototype, alive for
                // the process; what is alive (`hit`) has no destructor if
                // the closure's allocation raises.
                let cloned = unsafe {
                    let check = state_epoch(l).is_none_or(|e| e < epoch);
                    lua_cloneshared(l, p.0, check as c_int)
                };
                if cloned != 0 {
                    return LUA_OK;
                }
            }
            let name = chunk_name(filename);
            // "B": a fixed binary chunk, whose code stays in `code` (shared).
            // SAFETY: `code` is 'static and 8-aligned (leak_aligned), as a
            // fixed chunk needs; lua_load raises nothing (its parser is
            // protected), so `name` is dropped normally after the call.
            return unsafe {
                luaL_loadbufferx(
                    l,
                    code.as_ptr() as *const c_char,
                    code.len(),
                    name.as_ptr(),
                    c"B".as_ptr(),
                )
            };
        }
    }
    // luaL_loadfilex and lua_dump may raise (out of memory): what is alive
    // across them is a ManuallyDrop, which a longjmp only leaks.
    if filename.contains(&0) {
        // SAFETY: nothing with a destructor is alive if the push raises.
        unsafe { push_str(l, "file name contains a zero byte") };
        return LUA_ERRFILE;
    }
    // Cannot fail: there is no zero byte.
    let mut path = ManuallyDrop::new(CString::new(filename).unwrap_or_default());
    // SAFETY: `path` is NUL-terminated and a ManuallyDrop (a raise leaks
    // it); it is dropped once, after the call.
    let status = unsafe {
        let status = luaL_loadfilex(l, path.as_ptr(), lmode.as_ptr());
        ManuallyDrop::drop(&mut path);
        status
    };
    if status == LUA_OK && m == 2 && text {
        let mut code = ManuallyDrop::new(Vec::<u8>::new());
        // SAFETY: the loaded function is on the top; dump_writer gets the
        // dump's own Vec, a ManuallyDrop (a raise leaks it).
        let dumped =
            unsafe { lua_dump(l, dump_writer, &mut *code as *mut Vec<u8> as *mut c_void, 0) };
        let code = ManuallyDrop::into_inner(code);
        if dumped == 0 {
            let code = leak_aligned(&code);
            let proto = share(code, &chunk_name(filename));
            // SAFETY: reads a process-wide counter.
            let epoch = unsafe { lua_sharedepoch() };
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
///
/// # Safety
/// A Lua C function: `l` is the live state that called it.
pub unsafe extern "C-unwind" fn lloadfile(l: State) -> c_int {
    // The name is read from argument 1, which stays on the stack: no Vec is
    // alive across the raising calls in `load`.
    // SAFETY: `l` is the calling state; nothing with a destructor is alive
    // in this function; `name` borrows argument 1, on the stack throughout;
    // load pushes one value, within the free slots.
    unsafe {
        let name = check_bytes(l, 1);
        let lmode = luaL_optlstring(l, 2, c"bt".as_ptr(), std::ptr::null_mut());
        let has_env = lua_type(l, 3) != LUA_TNONE;
        let status = load_mode(l, name, std::ffi::CStr::from_ptr(lmode));
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
    }
    1
}

/// A replacement for Lua's file searcher (`package.searchers[2]`) that loads
/// through the cache.
///
/// The module name, `package.path` and the file found stay on the Lua stack
/// (slots 1, 3 and 4) and are read there: no Rust value with a destructor is
/// alive across `searchpath` (Lua code) or the loading, which may raise.
///
/// # Safety
/// A Lua C function: `l` is the live state that called it.
pub unsafe extern "C-unwind" fn searcher(l: State) -> c_int {
    // SAFETY: `l` is the calling state; the check raises with nothing to
    // drop; `name` borrows argument 1, on the stack until we return.
    let name = unsafe { check_bytes(l, 1) };
    // SAFETY: two pushes into the free slots; a raise skips only slices.
    unsafe {
        lua_getglobal(l, c"package".as_ptr()); // 2
        lua_getfield(l, -1, c"path".as_ptr()); // 3
        if lua_type(l, -1) != LUA_TSTRING {
            raise_here(l, "'package.path' must be a string".to_string());
        }
    }
    // SAFETY: slot 3 is a string (checked), kept there until we return.
    let path = unsafe { to_bytes(l, 3) }.unwrap_or(&[]);
    // Where a module was found is cached with its code, saving the file probes
    // of package.searchpath for every new service.
    // SAFETY: nothing with a destructor is alive; the keys are built after.
    let known = if unsafe { mode(l) } != 0 {
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
            // SAFETY: a push into a free slot; `f` is a ManuallyDrop, which
            // a raise only leaks.
            unsafe { push_bytes(l, &f) }; // 4
            drop(ManuallyDrop::into_inner(f));
        }
        None => {
            // SAFETY: slot 2 is `package`; searchpath runs as Lua code and
            // may raise: only slices into slots 1 and 3 (which it cannot
            // touch) are alive.
            let found = unsafe {
                lua_getfield(l, 2, c"searchpath".as_ptr());
                lua_pushvalue(l, 1);
                lua_pushvalue(l, 3);
                lua_call(l, 2, 2);
                if lua_isnil(l, -2) != 0 {
                    return 1; // the "no file ..." text
                }
                lua_pop(l, 1); // the file at 4
                to_bytes(l, 4).unwrap_or(&[])
            };
            // SAFETY: as for `known`; the key and value are built after.
            if unsafe { mode(l) } == 2 {
                RESOLVED
                    .lock()
                    .insert((name.to_vec(), path.to_vec()), found.to_vec());
            }
        }
    }
    // SAFETY: slot 4 is the file's name, kept there until we return, as
    // load's contract needs; only slices are alive if load raises.
    let file = unsafe { to_bytes(l, 4) }.unwrap_or(&[]);
    // SAFETY: as above.
    if unsafe { load(l, file) } == LUA_OK {
        // SAFETY: a push into a free slot.
        unsafe { lua_pushvalue(l, 4) };
        2
    } else {
        // SAFETY: load left its error message on the top.
        let err = unsafe { to_bytes(l, -1) }.unwrap_or(&[]);
        let msg = format!(
            "error loading module '{}' from file '{}':\n\t{}",
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(file),
            String::from_utf8_lossy(err)
        );
        // SAFETY: `msg` is moved in; the rest alive is slices.
        unsafe { raise_here(l, msg) }
    }
}

/// Runs `f` on the code state under its lock (None if there is none).
pub(crate) fn with_code_state<R>(f: impl FnOnce(State) -> R) -> Option<R> {
    let cs = CODE_STATE.1.as_ref()?.lock();
    Some(f(cs.0))
}
