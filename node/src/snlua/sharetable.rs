//! `skynet.sharetable.core`: tables shared by the services of the process
//! without copying, with the API of skynet's lua-sharetable.c (`matrix`,
//! `clone`, `is_sharedtable`, `stackvalues`) that `skynet.sharetable` is
//! built on.
//!
//! `matrix(source, ...)` runs a chunk in a Lua state of its own (the
//! *matrix state*), which must return a table; our vendored Lua then marks
//! that table and everything it reaches shared (`lua_sharetable`,
//! lshared.c): immutable, never marked or freed by any collector. The
//! matrix state's collector is stopped and it runs nothing more. Any
//! service's state can then push the table (`clone`): readers share the
//! one copy, and every write raises `attempt to change a shared table`.
//!
//! Lifetime: a [`Matrix`] (the matrix state) is behind an `Arc`. The box
//! that `matrix` returns holds one until it is closed or collected; every
//! service that pushed the table holds one in its `Shared` until its state
//! is closed, because its Lua values may reach the shared objects anywhere
//! (stacks, upvalues, other tables) until then. The matrix state is closed
//! when the last holder lets go, so no state can reach freed memory, however
//! the Lua code that hands pointers around behaves. A pointer given to
//! `clone` is looked up in a process-wide table of live matrices, so a stale
//! or forged one is a Lua error.

use super::lua::*;
use super::{codecache, core, shared, stdlibs};
use crate::snlua::block::Live;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

extern "C-unwind" {
    fn lua_sharetable(l: State, idx: c_int);
    fn lua_clonetable(l: State, t: *const c_void) -> c_int;
    fn lua_issharedtable(l: State, idx: c_int) -> c_int;
    fn lua_sharedfingerprint(l: State, idx: c_int) -> lua_Unsigned;
}

pub const FUNCS: &[(&CStr, lua_CFunction)] = &[
    (c"matrix", lmatrix),
    (c"clone", lclone),
    (c"is_sharedtable", lis_sharedtable),
    (c"stackvalues", lstackvalues),
    (c"matrices", lmatrices),
];

/// `require "skynet.sharetable.core"`.
///
/// # Safety
/// A Lua C function: `l` must be a live state whose registry holds the
/// service's `skynet_context`.
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: `l` is live (contract); open_bound raises if the registry has
    // no `skynet_context`.
    unsafe { open_bound(l, FUNCS) }
}

/// Byte count of a matrix state, kept by its allocator.
struct StateBytes(AtomicUsize);

/// A shared table and the Lua state that built it and holds its memory.
pub struct Matrix {
    state: State,
    /// The shared table (a `Table *` of `state`, at its stack index 1).
    root: *const c_void,
    /// The state's memory once the table was shared (it never changes then).
    bytes: usize,
    /// The allocator's counter; outlives the state (dropped after it).
    _alloc: Box<StateBytes>,
}

// SAFETY: after `build` the matrix state is never run again: its shared
// objects are only read, by any thread, and the state is closed once, by
// `Drop`, when no other state can reach them (see the module doc).
unsafe impl Send for Matrix {}
// SAFETY: as for Send: through a shared `Matrix` other threads only read
// (push the root, fingerprint), never run the matrix state.
unsafe impl Sync for Matrix {}

static MATRICES: LazyLock<Live<Matrix>> = LazyLock::new(Live::default);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Matrix states alive in the process and the bytes they hold.
pub fn live() -> (usize, usize) {
    (MATRICES.len(), LIVE_BYTES.load(Ordering::Acquire))
}

unsafe extern "C" fn matrix_alloc(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: `ud` is the state's `StateBytes`, alive as long as the state.
    let bytes = unsafe { &(*(ud as *const StateBytes)).0 };
    let old = if ptr.is_null() { 0 } else { osize };
    if nsize == 0 {
        // SAFETY: Lua frees only blocks this allocator gave (or NULL).
        unsafe { libc::free(ptr) };
        bytes.fetch_sub(old, Ordering::Relaxed);
        return std::ptr::null_mut();
    }
    // SAFETY: `ptr` is NULL or a block this allocator gave, not used by Lua
    // after it is reallocated.
    let p = unsafe { libc::realloc(ptr, nsize) };
    if !p.is_null() {
        bytes.fetch_add(nsize, Ordering::Relaxed);
        bytes.fetch_sub(old, Ordering::Relaxed);
    }
    p
}

/// A value passed to the chunk that builds a matrix.
enum Arg<'a> {
    Nil,
    Bool(bool),
    Int(lua_Integer),
    Num(lua_Number),
    Light(*mut c_void),
    Str(&'a [u8]),
    /// A light C function.
    Func(lua_CFunction),
    /// `skynet.unpack` of the calling service (its `Shared`), which the
    /// chunk may call while it runs.
    Unpack(*mut c_void),
}

/// What the matrix state runs (read by `build_in_state`).
struct Job<'a> {
    /// A file name (source `@name`) or the chunk's text.
    file: Option<CString>,
    text: &'a [u8],
    chunkname: CString,
    args: Vec<Arg<'a>>,
}

impl Matrix {
    /// Runs `source` (Lua code, or `@filename`) with `args` in a new matrix
    /// state and shares the table it returns.
    fn build(source: &[u8], args: Vec<Arg<'_>>) -> Result<Arc<Matrix>, String> {
        let file = match source.strip_prefix(b"@") {
            Some(name) => {
                Some(CString::new(name).map_err(|_| "file name contains a zero byte".to_string())?)
            }
            None => None,
        };
        // Like luaL_loadstring: the source names the chunk.
        let chunkname = CString::new(
            source
                .iter()
                .copied()
                .filter(|b| *b != 0)
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        let job = Job {
            file,
            text: source,
            chunkname,
            args,
        };
        let alloc = Box::new(StateBytes(AtomicUsize::new(0)));
        // SAFETY: the state is used by this thread only until it is shared;
        // the allocator's counter lives in `alloc`, kept in the Matrix.
        unsafe {
            let ml = lua_newstate(
                matrix_alloc,
                &*alloc as *const StateBytes as *mut c_void,
                codecache::seed(),
            );
            if ml.is_null() {
                return Err("sharetable: cannot create a Lua state".to_string());
            }
            lua_pushcfunction(ml, build_in_state);
            lua_pushlightuserdata(ml, &job as *const Job as *mut c_void);
            if lua_pcall(ml, 1, 1, 0) != LUA_OK {
                let msg = to_bytes(ml, -1)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_else(|| "(error object is not a string)".to_string());
                lua_close(ml);
                return Err(msg);
            }
            // The table, alone on the stack (index 1), is the state's root.
            lua_settop(ml, 1);
            let root = lua_topointer(ml, 1);
            let bytes = alloc.0.load(Ordering::Relaxed);
            let m = Arc::new(Matrix {
                state: ml,
                root,
                bytes,
                _alloc: alloc,
            });
            MATRICES.register(&m);
            LIVE_BYTES.fetch_add(bytes, Ordering::AcqRel);
            Ok(m)
        }
    }

    /// Shares the table that `source` (Lua code, or `@filename`) returns.
    pub fn from_source(source: &[u8]) -> Result<Arc<Matrix>, String> {
        Matrix::build(source, Vec::new())
    }

    /// The live matrix whose address (`getptr`) is `addr`.
    pub fn find(addr: usize) -> Option<Arc<Matrix>> {
        MATRICES.find(addr)
    }

    /// The address Lua code passes around for this matrix (`getptr`).
    pub fn address(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    /// Memory of the matrix state, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Pushes the shared table onto `l`. False (nothing pushed) if `l` does
    /// not use the process's hash seed.
    ///
    /// # Safety
    /// `l` is a live state run by this thread, and the caller keeps this
    /// matrix alive until `l` is closed.
    pub unsafe fn push(&self, l: State) -> bool {
        // SAFETY: `l` is live and this thread's (contract); `root` is the
        // shared table of this live matrix state. lua_clonetable neither
        // allocates nor raises: it pushes into a slot of the caller's.
        unsafe { lua_clonetable(l, self.root) != 0 }
    }

    /// A hash of every byte of the shared table and all it reaches: equal
    /// before and after any amount of reading if readers write nothing.
    pub fn fingerprint(&self) -> u64 {
        // SAFETY: the matrix state only reads here (its stack slot 1 and the
        // shared objects), as every reader does.
        unsafe { lua_sharedfingerprint(self.state, 1) }
    }
}

impl Drop for Matrix {
    fn drop(&mut self) {
        MATRICES.forget(self as *const Matrix as usize);
        LIVE_BYTES.fetch_sub(self.bytes, Ordering::AcqRel);
        // SAFETY: the last holder is gone: no state can reach the shared
        // objects any more.
        unsafe { lua_close(self.state) };
    }
}

/// `skynet.unpack` of the calling service as the matrix state sees it:
/// upvalue 1 is that service's `Shared` (core's lunpack reads it), upvalue
/// 2 is true while the matrix is built. The chunk may keep the function (a
/// global, a finalizer) beyond that, and the matrix state is closed, running
/// its finalizers, on whichever thread drops it last, maybe after that
/// service is gone: then it is an error instead of a use of its `Shared`.
unsafe extern "C-unwind" fn lbuild_unpack(l: State) -> c_int {
    // SAFETY: Lua calls it with the matrix state (build_in_state made the
    // closure with both upvalues); the raise has nothing to drop. While
    // upvalue 2 is true the chunk runs inside `matrix`, on the thread of the
    // service whose Shared upvalue 1 is: core's lunpack's contract holds.
    unsafe {
        if lua_toboolean(l, lua_upvalueindex(2)) == 0 {
            raise_here(
                l,
                "skynet.unpack was passed to a sharetable chunk: it works only while the chunk runs"
                    .to_string(),
            );
        }
        core::lunpack(l)
    }
}

/// Runs in the matrix state, protected: opens the standard libraries, loads
/// and calls the chunk with the job's arguments, shares its result.
unsafe extern "C-unwind" fn build_in_state(l: State) -> c_int {
    // SAFETY: Matrix::build calls it through lua_pcall with a pointer to
    // its Job, alive (with the strings the arguments borrow) until the call
    // returns. A tight sequence of Lua API calls on the new state, on slots
    // pushed here (the stack is checked for the arguments plus two); errors
    // unwind to that lua_pcall, and only references are alive meanwhile.
    unsafe {
        let job = &*(lua_touserdata(l, 1) as *const Job);
        lua_settop(l, 0);
        // Index 1: the lbuild_unpack closures made for the arguments, closed
        // once the chunk returned.
        lua_createtable(l, 0, 0);
        stdlibs::open(l);
        let status = match &job.file {
            Some(name) => luaL_loadfilex(l, name.as_ptr(), std::ptr::null()),
            None => luaL_loadbufferx(
                l,
                job.text.as_ptr() as *const c_char,
                job.text.len(),
                job.chunkname.as_ptr(),
                std::ptr::null(),
            ),
        };
        if status != LUA_OK {
            lua_error(l);
        }
        luaL_checkstack(
            l,
            job.args.len() as c_int + 2,
            c"too many arguments".as_ptr(),
        );
        let mut bound = 0;
        for a in &job.args {
            match *a {
                Arg::Nil => lua_pushnil(l),
                Arg::Bool(b) => lua_pushboolean(l, b as c_int),
                Arg::Int(i) => lua_pushinteger(l, i),
                Arg::Num(n) => lua_pushnumber(l, n),
                Arg::Light(p) => lua_pushlightuserdata(l, p),
                Arg::Str(s) => push_bytes(l, s),
                Arg::Func(f) => lua_pushcfunction(l, f),
                Arg::Unpack(up) => {
                    lua_pushlightuserdata(l, up);
                    lua_pushboolean(l, 1);
                    lua_pushcclosure(l, lbuild_unpack, 2);
                    lua_pushvalue(l, -1);
                    bound += 1;
                    lua_rawseti(l, 1, bound);
                }
            }
        }
        lua_call(l, job.args.len() as c_int, 1);
        for i in 1..=bound {
            lua_rawgeti(l, 1, i);
            lua_pushboolean(l, 0);
            lua_setupvalue(l, -2, 2);
            lua_pop(l, 1);
        }
        lua_sharetable(l, -1);
    }
    1
}

/// The arguments at stack indexes 2 to `top`, as `matrix` takes them.
///
/// # Safety
/// `l` is the calling state with `top` slots of arguments, and the strings
/// borrowed (`'a`) are used only while those arguments are on the stack.
/// Never raises: the problem is the `Err`.
unsafe fn matrix_args<'a>(l: State, top: c_int) -> Result<Vec<Arg<'a>>, String> {
    let mut args = Vec::with_capacity(top.max(1) as usize - 1);
    for i in 2..=top {
        // SAFETY: reads of the argument slot `i` (none converts, allocates
        // or raises); lua_getupvalue of a C function pushes its upvalue
        // into a slot checked by the caller, popped on every path. The
        // upvalue of core's lunpack is its service's Shared (open_bound).
        let a = unsafe {
            match lua_type(l, i) {
                LUA_TNIL => Arg::Nil,
                LUA_TBOOLEAN => Arg::Bool(lua_toboolean(l, i) != 0),
                LUA_TNUMBER => {
                    let mut isint = 0;
                    let n = lua_tointegerx(l, i, &mut isint);
                    if isint != 0 {
                        Arg::Int(n)
                    } else {
                        Arg::Num(lua_tonumberx(l, i, std::ptr::null_mut()))
                    }
                }
                LUA_TLIGHTUSERDATA => Arg::Light(lua_touserdata(l, i)),
                LUA_TSTRING => Arg::Str(to_bytes(l, i).unwrap_or(&[])),
                LUA_TFUNCTION => match lua_tocfunction(l, i) {
                    Some(f) if lua_getupvalue(l, i, 1).is_null() => Arg::Func(f),
                    Some(f) if f as *const () == core::lunpack as *const () => {
                        // skynet.unpack (the upvalue just pushed is the
                        // service's Shared): the chunk may call it while it
                        // runs, on this thread, for this service.
                        let up = lua_touserdata(l, -1);
                        lua_pop(l, 1);
                        Arg::Unpack(up)
                    }
                    Some(_) => {
                        lua_pop(l, 1);
                        return Err(format!(
                        "bad argument #{i} to 'matrix' (only light C functions and skynet.unpack can be passed)"
                    ));
                    }
                    None => {
                        return Err(format!(
                            "bad argument #{i} to 'matrix' (a Lua function cannot be passed)"
                        ))
                    }
                },
                _ => {
                    return Err(format!(
                        "bad argument #{i} to 'matrix' (a {} cannot be passed)",
                        type_name(l, i)
                    ))
                }
            }
        };
        args.push(a);
    }
    Ok(args)
}

const BOX_META: &CStr = c"skynet.sharetable.matrix";

type MatrixBox = Option<Arc<Matrix>>;

/// `core.matrix(source, ...)`: a box owning a new matrix, with methods
/// `getptr()` (the address `clone` takes; nothing once closed), `size()`
/// (bytes of the matrix state) and `close()`.
unsafe extern "C-unwind" fn lmatrix(l: State) -> c_int {
    // SAFETY: `l` is the calling state; `source` borrows argument 1, on the
    // stack for the whole call. Every Lua allocation comes first, while
    // nothing with a destructor is alive, so that nothing raises while the
    // matrix is only held by Rust: lua_newuserdatauv returns a fresh block
    // of the size asked, aligned for a pointer, initialized (None) before
    // the metatable (and __gc) is set. matrix_args reads the arguments
    // below the box (`top` was taken first) and never raises; the build
    // runs Lua code in the matrix state only, so the box is untouched until
    // it takes the matrix; the error text is moved into raise_here.
    unsafe {
        let source = check_bytes(l, 1);
        let top = lua_gettop(l);
        luaL_checkstack(l, 4, std::ptr::null());
        let ud = lua_newuserdatauv(l, std::mem::size_of::<MatrixBox>(), 0) as *mut MatrixBox;
        ud.write(None);
        if luaL_newmetatable(l, BOX_META.as_ptr()) != 0 {
            let methods: [(&CStr, lua_CFunction); 4] = [
                (c"close", lbox_close),
                (c"getptr", lbox_getptr),
                (c"size", lbox_size),
                (c"__gc", lbox_close),
            ];
            for (name, f) in methods {
                lua_pushcfunction(l, f);
                lua_setfield(l, -2, name.as_ptr());
            }
            lua_pushvalue(l, -1);
            lua_setfield(l, -2, c"__index".as_ptr());
        }
        lua_setmetatable(l, -2);
        let built = matrix_args(l, top).and_then(|args| Matrix::build(source, args));
        match built {
            Ok(m) => {
                *ud = Some(m);
                1
            }
            Err(e) => raise_here(l, e),
        }
    }
}

/// The box at argument 1, or a Lua error.
///
/// # Safety
/// `l` is the calling state; the reference is used only until the next Lua
/// call that may run Lua code (a finalizer could reach the box).
unsafe fn matrix_box<'a>(l: State) -> &'a mut MatrixBox {
    // SAFETY: luaL_checkudata gives the block only for our metatable: an
    // initialized MatrixBox (see lmatrix), or raises with nothing to drop.
    unsafe { &mut *(luaL_checkudata(l, 1, BOX_META.as_ptr()) as *mut MatrixBox) }
}

unsafe extern "C-unwind" fn lbox_close(l: State) -> c_int {
    // SAFETY: `l` is the calling state; the borrow ends with the take.
    let m = unsafe { matrix_box(l) }.take();
    // Closing the matrix state runs Lua code in that state only.
    drop(m);
    0
}

unsafe extern "C-unwind" fn lbox_getptr(l: State) -> c_int {
    // SAFETY: `l` is the calling state; the push does not allocate, so the
    // borrow is not used across Lua code.
    unsafe {
        match matrix_box(l) {
            Some(m) => {
                lua_pushlightuserdata(l, m.address() as *mut c_void);
                1
            }
            None => 0,
        }
    }
}

unsafe extern "C-unwind" fn lbox_size(l: State) -> c_int {
    // SAFETY: `l` is the calling state; the borrow ends before the push.
    unsafe {
        let n = matrix_box(l).as_ref().map_or(0, |m| m.bytes);
        lua_pushinteger(l, n as lua_Integer);
    }
    1
}

/// `core.clone(ptr)`: the shared table of the live matrix `ptr`. The
/// service holds the matrix until it exits.
unsafe extern "C-unwind" fn lclone(l: State) -> c_int {
    // SAFETY: `l` is the calling state; lua_type and lua_touserdata accept
    // any index; the error text is moved into raise_here.
    let addr = unsafe {
        match lua_type(l, 1) {
            LUA_TLIGHTUSERDATA => lua_touserdata(l, 1) as usize,
            _ => raise_here(
                l,
                format!(
                    "bad argument #1 to 'clone' (pointer expected, got {})",
                    type_name(l, 1)
                ),
            ),
        }
    };
    let pushed = match Matrix::find(addr) {
        None => None,
        Some(m) => {
            // SAFETY: upvalue 1 is the service's Shared (open_bound), on its
            // thread; the only borrow of its held tables, and push runs no
            // Lua code while it lives. The service holds the matrix until
            // its state is closed, as push asks.
            let ok = unsafe {
                let held = &mut *shared(l).shared_tables.get();
                let ok = m.push(l);
                if ok && !held.iter().any(|h| Arc::ptr_eq(h, &m)) {
                    held.push(m);
                }
                ok
            };
            Some(ok)
        }
    };
    // SAFETY: nothing with a destructor is alive (the matrix is held or
    // dropped); the texts are moved into raise_here.
    unsafe {
        match pushed {
            Some(true) => 1,
            Some(false) => raise_here(
                l,
                "sharetable: this state cannot hold shared tables (another hash seed)".to_string(),
            ),
            None => raise_here(
                l,
                format!("sharetable: {addr:#x} is not a live shared table"),
            ),
        }
    }
}

unsafe extern "C-unwind" fn lis_sharedtable(l: State) -> c_int {
    // SAFETY: `l` is the calling state; lua_issharedtable reads slot 1
    // (none is not a table); the push does not allocate.
    unsafe { lua_pushboolean(l, lua_issharedtable(l, 1)) };
    1
}

/// `core.stackvalues(co, t)`: copies the values on the stack of coroutine
/// `co` (not the running one) into `t[1..n]`; returns n.
unsafe extern "C-unwind" fn lstackvalues(l: State) -> c_int {
    // SAFETY: `l` is the calling state and `co` a thread of the same Lua
    // state, not running (it is not `l`), so its stack may be read through
    // the API; every raise has nothing to drop. The slots are checked on
    // both stacks first. No call in the loop runs Lua code (a raw set
    // takes no GC step; it may raise, e.g. into a shared table), so `co`
    // stays as it was when its top was read.
    unsafe {
        let co = lua_tothread(l, 1);
        if co.is_null() {
            raise_here(
                l,
                format!(
                    "bad argument #1 to 'stackvalues' (thread expected, got {})",
                    type_name(l, 1)
                ),
            );
        }
        let mut n = 0;
        if co != l {
            luaL_checktype(l, 2, LUA_TTABLE);
            n = lua_gettop(co);
            if n > 0 && lua_checkstack(co, 1) == 0 {
                raise_here(l, "stackvalues: the coroutine's stack is full".to_string());
            }
            luaL_checkstack(l, 2, std::ptr::null());
            // A copy of each value, one at a time: the coroutine's stack is left
            // as it was even if storing into `t` raises.
            for i in 1..=n {
                lua_pushvalue(co, i);
                lua_xmove(co, l, 1);
                lua_rawseti(l, 2, i as lua_Integer);
            }
        }
        lua_pushinteger(l, n as lua_Integer);
    }
    1
}

/// `core.matrices()`: how many matrix states are alive in the process, and
/// the bytes they hold (this module's addition, for tests and `info`).
unsafe extern "C-unwind" fn lmatrices(l: State) -> c_int {
    let (n, bytes) = live();
    // SAFETY: pushes into the slots Lua gives a C function.
    unsafe {
        lua_pushinteger(l, n as lua_Integer);
        lua_pushinteger(l, bytes as lua_Integer);
    }
    2
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// record(ok, msg): what a pcall in the matrix state gave.
    unsafe extern "C-unwind" fn record(l: State) -> c_int {
        // SAFETY: Lua calls it with its live state; to_bytes accepts any
        // index and the bytes are copied at once.
        let (ok, msg) = unsafe {
            let msg = to_bytes(l, 2).map(|b| String::from_utf8_lossy(b).into_owned());
            (lua_toboolean(l, 1) != 0, msg.unwrap_or_default())
        };
        SEEN.lock().push(format!("{ok} {msg}"));
        0
    }

    #[test]
    fn unpack_kept_by_the_chunk_is_refused_after_the_build() {
        let sh = super::super::Shared::detached();
        let up = &*sh as *const super::super::Shared as *mut c_void;
        let chunk = b"local unpack, record = ...
            record(pcall(unpack))
            KEEP = setmetatable({}, { __gc = function() record(pcall(unpack)) end })
            return { x = 1 }";
        let m = Matrix::build(chunk, vec![Arg::Unpack(up), Arg::Func(record)]).unwrap();
        assert_eq!(SEEN.lock().as_slice(), ["true "], "usable while built");
        // The last holder goes: closing the matrix state runs the finalizer.
        drop(m);
        let seen = SEEN.lock();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(
            seen[1].starts_with("false ") && seen[1].contains("only while the chunk runs"),
            "{seen:?}"
        );
    }
}
