//! `skynet.stm`: a value one service writes and other services read without
//! copying, with the Lua API of skynet's lua-stm.c.
//!
//! - `stm.new(msg, sz | string)` makes a writer holding a first version;
//!   calling the writer (`writer(msg, sz | string)`) publishes a new one, and
//!   collecting it releases the object.
//! - `stm.copy(writer)` gives a lightuserdata naming the object: a reference
//!   for one reader, to send to another service in a message.
//! - `stm.newcopy(ptr)` turns that reference into a reader. Calling the
//!   reader, `reader(f [, ud])`, gives `false` when no version came since its
//!   last read (or the writer is gone), else `true, f(msg, sz, ud)...`.
//!
//! A version is an immutable [`SharedBlock`] (so `skynet.unpack(msg, sz)` and
//! every native reader of message arguments resolve it in the reader's
//! service), refcounted by `Arc`: it is freed when neither the object nor a
//! reader that last saw it holds it. A block handed to `new`/update is taken
//! over, as skynet's module takes its malloc'd pointer: one of the service's
//! own blocks (from `skynet.pack`) moves without a copy, a shared block is
//! shared, a string is copied.
//!
//! Unlike skynet, every pointer is checked: `newcopy` accepts only a
//! reference that `copy` made and no reader has taken yet, so a forged,
//! stale or reused pointer is a Lua error instead of a use after free.
//! A reference that is copied but never taken (its message lost) keeps the
//! small object record, not its versions, alive until the process ends (as
//! skynet's does).

use super::block::{block_at, Live, SharedBlock};
use super::lua::*;
use super::Shared;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::ptr;
use std::sync::{Arc, LazyLock};

/// One stm object: the latest version, or none once the writer is gone.
pub struct StmObject {
    current: RwLock<Option<Arc<SharedBlock>>>,
}

static OBJECTS: LazyLock<Live<StmObject>> = LazyLock::new(Live::default);

/// References made by `copy` and not yet taken by `newcopy`, by object
/// address, with how many: they keep the object alive for their readers.
type Pending = HashMap<usize, (Arc<StmObject>, usize)>;
static PENDING: LazyLock<Mutex<Pending>> = LazyLock::new(|| Mutex::new(HashMap::new()));

impl StmObject {
    pub fn new(first: Arc<SharedBlock>) -> Arc<StmObject> {
        let obj = Arc::new(StmObject {
            current: RwLock::new(Some(first)),
        });
        OBJECTS.register(&obj);
        obj
    }

    /// Publishes `v`; the previous version lives on while readers hold it.
    pub fn update(&self, v: Arc<SharedBlock>) {
        let old = self.current.write().replace(v);
        drop(old);
    }

    /// The writer is gone: readers see no new version from now on.
    pub fn close(&self) {
        let old = self.current.write().take();
        drop(old);
    }

    pub fn latest(&self) -> Option<Arc<SharedBlock>> {
        self.current.read().clone()
    }

    fn address(&self) -> usize {
        self as *const StmObject as usize
    }

    /// A reference to `obj` for one reader (skynet's `stm_grab`); returns the
    /// address that names it.
    pub fn grab(obj: &Arc<StmObject>) -> usize {
        let a = obj.address();
        PENDING
            .lock()
            .entry(a)
            .or_insert_with(|| (obj.clone(), 0))
            .1 += 1;
        a
    }

    /// Takes one reference that [`StmObject::grab`] made for `addr`.
    pub fn take_grab(addr: usize) -> Result<Arc<StmObject>, &'static str> {
        let mut pending = PENDING.lock();
        let last = match pending.get_mut(&addr) {
            Some((_, n)) => {
                *n -= 1;
                *n == 0
            }
            None => {
                drop(pending);
                return Err(if OBJECTS.find(addr).is_some() {
                    "this stm object has no copy left to take (one stm.copy serves one stm.newcopy)"
                } else {
                    "invalid pointer (not an stm copy)"
                });
            }
        };
        let obj = if last {
            pending.remove(&addr).map(|(o, _)| o)
        } else {
            pending.get(&addr).map(|(o, _)| o.clone())
        };
        drop(pending);
        obj.ok_or("invalid pointer (not an stm copy)")
    }

    /// stm objects alive in the process.
    pub fn live_count() -> usize {
        OBJECTS.len()
    }
}

impl Drop for StmObject {
    fn drop(&mut self) {
        OBJECTS.forget(self.address());
    }
}

/// Where the bytes of a block argument are: checked, nothing taken yet.
#[derive(Clone, Copy)]
pub enum BlockSource {
    /// A Lua string argument (valid while it is on the stack).
    Text(*const u8, usize),
    /// One of the service's own blocks, `size` bytes of it.
    Own(usize, usize),
    /// A live shared block (pinned for the message), `size` bytes of it.
    Shared(usize, usize),
    Empty,
}

/// Reads a block argument at `idx` (`lightuserdata, size` or a string),
/// raising a Lua error named by `what` for anything else. When it returns,
/// no Lua code has run (it allocates nothing in Lua but the error it
/// raises).
///
/// # Safety
/// `l` is the state calling a native function of the service whose
/// `Shared` is `sh`, on the service's thread, with no borrow of its buffers
/// alive.
pub unsafe fn block_source(l: State, sh: &Shared, idx: c_int, what: &str) -> BlockSource {
    // SAFETY: `l` is the calling state (contract); lua_type accepts any
    // index.
    match unsafe { lua_type(l, idx) } {
        LUA_TSTRING => {
            // SAFETY: the value at `idx` is a string (no conversion); its
            // bytes stay valid while it is on the stack, which Text says.
            let b = unsafe { to_bytes(l, idx) }.unwrap_or(&[]);
            BlockSource::Text(b.as_ptr(), b.len())
        }
        LUA_TLIGHTUSERDATA => {
            // SAFETY: luaL_checkinteger raises with nothing to drop; the
            // borrow of the buffers ends with its statement, so block_at's
            // contract (the service's thread, no borrow alive) holds; its
            // error text is moved into raise_here, which drops it before
            // the longjmp.
            unsafe {
                let p = lua_touserdata(l, idx) as usize;
                let sz = luaL_checkinteger(l, idx + 1);
                let own = p != 0 && (*sh.buffers.get()).get(p).is_some();
                match block_at(sh, p, sz, what) {
                    Ok(_) if own => BlockSource::Own(p, sz as usize),
                    Ok(_) if sz == 0 => BlockSource::Empty,
                    Ok(_) => BlockSource::Shared(p, sz as usize),
                    Err(e) => raise_here(l, e),
                }
            }
        }
        // SAFETY: nothing with a destructor is alive; the text is moved
        // into raise_here.
        _ => unsafe {
            raise_here(
                l,
                format!(
                    "{what}: need a string or a message pointer and size, got {}",
                    type_name(l, idx)
                ),
            )
        },
    }
}

/// Takes the block that `src` names as a shared block: an own block moves,
/// a shared block of the same size is shared, other bytes are copied.
/// Never raises.
///
/// # Safety
/// `src` came from [`block_source`] in the current call of a native
/// function of the service whose `Shared` is `sh`, on its thread, with no
/// borrow of its buffers alive; a `Text` string is still on the stack.
pub unsafe fn take_shared(sh: &Shared, src: BlockSource) -> Arc<SharedBlock> {
    match src {
        BlockSource::Text(p, n) => {
            // SAFETY: the string's `n` bytes at `p` are valid while it is on
            // the stack (contract).
            let b = unsafe { std::slice::from_raw_parts(p, n) };
            SharedBlock::new(b.to_vec())
        }
        BlockSource::Own(p, n) => {
            // SAFETY: the service's thread, no other borrow of its buffers
            // (contract); this one ends with the statement. A block trashed
            // meanwhile by a finalizer is simply not there (empty).
            let mut v = unsafe { (*sh.buffers.get()).take(p) }.unwrap_or_default();
            v.truncate(n);
            SharedBlock::new(v)
        }
        BlockSource::Shared(p, n) => match SharedBlock::find(p) {
            Some(b) if b.bytes().len() == n => b,
            Some(b) => SharedBlock::new(b.bytes()[..n].to_vec()),
            // Pinned by block_source, so it cannot be gone.
            None => SharedBlock::new(Vec::new()),
        },
        BlockSource::Empty => SharedBlock::new(Vec::new()),
    }
}

const WRITER: &CStr = c"skynet.stm.writer";
const READER: &CStr = c"skynet.stm.reader";

/// A writer userdata: the object (an `Arc` turned raw), null once released.
#[repr(C)]
struct WriterBox {
    obj: *const StmObject,
}

/// A reader userdata: the object and the version it read last (both `Arc`s
/// turned raw, null when none).
#[repr(C)]
struct ReaderBox {
    obj: *const StmObject,
    last: *const SharedBlock,
}

/// `require "skynet.stm"`.
///
/// # Safety
/// A Lua C function: `l` must be a live state whose registry holds the
/// service's `skynet_context`.
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: `l` is live (contract); a tight sequence of Lua API calls on
    // slots pushed here (the module table at -2 below each function, each
    // metatable at -2 below its function), raising only with nothing to
    // drop. `sh` is the registry's Shared, which outlives the state.
    unsafe {
        let sh = skynet_context(l);
        lua_createtable(l, 0, 4);
        lua_pushcfunction(l, lcopy);
        lua_setfield(l, -2, c"copy".as_ptr());
        lua_pushcfunction(l, lnewcopy);
        lua_setfield(l, -2, c"newcopy".as_ptr());
        lua_pushcfunction(l, llive);
        lua_setfield(l, -2, c"live".as_ptr());
        lua_pushlightuserdata(l, sh);
        lua_pushcclosure(l, lnew, 1);
        lua_setfield(l, -2, c"new".as_ptr());

        luaL_newmetatable(l, WRITER.as_ptr());
        lua_pushcfunction(l, lwriter_gc);
        lua_setfield(l, -2, c"__gc".as_ptr());
        lua_pushlightuserdata(l, sh);
        lua_pushcclosure(l, lupdate, 1);
        lua_setfield(l, -2, c"__call".as_ptr());
        lua_pop(l, 1);

        luaL_newmetatable(l, READER.as_ptr());
        lua_pushcfunction(l, lreader_gc);
        lua_setfield(l, -2, c"__gc".as_ptr());
        lua_pushcfunction(l, lread);
        lua_setfield(l, -2, c"__call".as_ptr());
        lua_pop(l, 1);
    }
    1
}

/// The service's `Shared`, upvalue 1 of `lnew` and `lupdate`.
///
/// # Safety
/// `l` is the state calling one of those two (their upvalue is the
/// registry's `skynet_context`, set by `open`, which outlives the state).
#[inline]
unsafe fn sh_upvalue<'a>(l: State) -> &'a Shared {
    // SAFETY: as the contract says: upvalue 1 is a live Shared.
    unsafe { &*(lua_touserdata(l, lua_upvalueindex(1)) as *const Shared) }
}

/// `stm.new(msg, sz | string)` -> writer.
unsafe extern "C-unwind" fn lnew(l: State) -> c_int {
    // SAFETY: Lua calls lnew with its upvalue (sh_upvalue's contract); the
    // thread runs the service, and no borrow of its buffers is alive.
    let src = unsafe { block_source(l, sh_upvalue(l), 1, "stm.new") };
    // SAFETY: lua_newuserdatauv returns a fresh block of the size asked,
    // aligned for pointers, initialized before the metatable (and __gc) is
    // set; allocating may raise, with nothing to drop (`src` is plain
    // data), and a GC step it runs leaves `src` usable: the string is an
    // argument, a shared block is pinned, and an own block is looked up
    // again by take_shared (one a finalizer took is not found). Nothing
    // after the metatable raises: the block is taken over and held by the
    // userdata, which is on the stack.
    unsafe {
        let sh = sh_upvalue(l);
        let ud = lua_newuserdatauv(l, std::mem::size_of::<WriterBox>(), 0) as *mut WriterBox;
        ud.write(WriterBox { obj: ptr::null() });
        luaL_setmetatable(l, WRITER.as_ptr());
        let obj = StmObject::new(take_shared(sh, src));
        (*ud).obj = Arc::into_raw(obj);
    }
    1
}

/// `writer(msg, sz | string)`: publishes a new version.
unsafe extern "C-unwind" fn lupdate(l: State) -> c_int {
    // SAFETY: Lua calls lupdate (__call) with its upvalue; luaL_checkudata
    // gives the block only for our metatable, an initialized WriterBox (see
    // lnew); the checks raise with nothing to drop. block_source runs no
    // Lua code when it returns, so the box still holds the strong reference
    // found above (only __gc clears it), and take_shared's contract holds.
    unsafe {
        let sh = sh_upvalue(l);
        let ud = luaL_checkudata(l, 1, WRITER.as_ptr()) as *mut WriterBox;
        if (*ud).obj.is_null() {
            raise_here(l, "stm writer: already released".to_string());
        }
        let src = block_source(l, sh, 2, "stm update");
        (*(*ud).obj).update(take_shared(sh, src));
    }
    0
}

unsafe extern "C-unwind" fn lwriter_gc(l: State) -> c_int {
    // SAFETY: luaL_checkudata gives an initialized WriterBox (see lnew), or
    // raises with nothing to drop. A non-null `obj` came from
    // Arc::into_raw and is released once: it is nulled first.
    unsafe {
        let ud = luaL_checkudata(l, 1, WRITER.as_ptr()) as *mut WriterBox;
        let obj = std::mem::replace(&mut (*ud).obj, ptr::null());
        if !obj.is_null() {
            let obj = Arc::from_raw(obj);
            obj.close();
        }
    }
    0
}

/// `stm.copy(writer)` -> lightuserdata: a reference for one reader.
unsafe extern "C-unwind" fn lcopy(l: State) -> c_int {
    // SAFETY: luaL_checkudata gives an initialized WriterBox (see lnew), or
    // raises with nothing to drop; a non-null `obj` is the box's strong
    // reference (from Arc::into_raw), so a new one can be made and taken
    // back; it is dropped before the push, which does not allocate.
    unsafe {
        let ud = luaL_checkudata(l, 1, WRITER.as_ptr()) as *mut WriterBox;
        let obj = (*ud).obj;
        if obj.is_null() {
            raise_here(l, "stm.copy: the writer was released".to_string());
        }
        Arc::increment_strong_count(obj);
        let obj = Arc::from_raw(obj);
        let a = StmObject::grab(&obj);
        drop(obj);
        lua_pushlightuserdata(l, a as *mut c_void);
    }
    1
}

/// `stm.newcopy(ptr)` -> reader.
unsafe extern "C-unwind" fn lnewcopy(l: State) -> c_int {
    // SAFETY: `l` is the calling state; the error text is moved into
    // raise_here. lua_newuserdatauv returns a fresh block of the size asked,
    // aligned for pointers, initialized before the metatable (and __gc) is
    // set; it and luaL_setmetatable raise only with nothing to drop. The
    // grab taken is moved into the box at once; the error is static text.
    unsafe {
        if lua_type(l, 1) != LUA_TLIGHTUSERDATA {
            raise_here(
                l,
                format!(
                    "stm.newcopy: need an stm copy (lightuserdata), got {}",
                    type_name(l, 1)
                ),
            );
        }
        let a = lua_touserdata(l, 1) as usize;
        let ud = lua_newuserdatauv(l, std::mem::size_of::<ReaderBox>(), 0) as *mut ReaderBox;
        ud.write(ReaderBox {
            obj: ptr::null(),
            last: ptr::null(),
        });
        luaL_setmetatable(l, READER.as_ptr());
        match StmObject::take_grab(a) {
            Ok(obj) => {
                (*ud).obj = Arc::into_raw(obj);
                1
            }
            Err(e) => raise_here(l, format!("stm.newcopy: {e}")),
        }
    }
}

unsafe extern "C-unwind" fn lreader_gc(l: State) -> c_int {
    // SAFETY: luaL_checkudata gives an initialized ReaderBox (see
    // lnewcopy), or raises with nothing to drop. Non-null pointers came
    // from Arc::into_raw and are released once: they are nulled first.
    unsafe {
        let ud = luaL_checkudata(l, 1, READER.as_ptr()) as *mut ReaderBox;
        let obj = std::mem::replace(&mut (*ud).obj, ptr::null());
        let last = std::mem::replace(&mut (*ud).last, ptr::null());
        if !last.is_null() {
            drop(Arc::from_raw(last));
        }
        if !obj.is_null() {
            drop(Arc::from_raw(obj));
        }
    }
    0
}

/// `reader(f [, ud])` -> false | true, f(msg, sz, ud)...
unsafe extern "C-unwind" fn lread(l: State) -> c_int {
    // SAFETY: luaL_checkudata gives an initialized ReaderBox (see
    // lnewcopy); the checks raise with nothing to drop. No Lua code runs
    // between the null check and the use, so `obj` is still the box's
    // strong reference.
    let (ud, latest) = unsafe {
        let ud = luaL_checkudata(l, 1, READER.as_ptr()) as *mut ReaderBox;
        luaL_checktype(l, 2, LUA_TFUNCTION);
        if (*ud).obj.is_null() {
            raise_here(l, "stm reader: already released".to_string());
        }
        (ud, (*(*ud).obj).latest())
    };
    // SAFETY: the box is the argument at 1, alive for the call; no Lua call
    // since it was checked.
    let last = unsafe { (*ud).last };
    let unchanged = match &latest {
        Some(v) => Arc::as_ptr(v) == last,
        None => last.is_null(),
    };
    if unchanged {
        drop(latest);
        // SAFETY: a push into the slots Lua gives a C function.
        unsafe { lua_pushboolean(l, 0) };
        return 1;
    }
    if !last.is_null() {
        // SAFETY: the box's reference to the version it read last (from
        // Arc::into_raw), released once: replaced just below.
        drop(unsafe { Arc::from_raw(last) });
    }
    let (addr, size) = latest
        .as_ref()
        .map_or((0, 0), |v| (v.address(), v.bytes().len()));
    let have = latest.is_some();
    // SAFETY: as above, the box at 1; it takes the reference over.
    unsafe { (*ud).last = latest.map_or(ptr::null(), Arc::into_raw) };
    if !have {
        // SAFETY: a push into the slots Lua gives a C function.
        unsafe { lua_pushboolean(l, 0) };
        return 1;
    }
    // SAFETY: no Rust value with a destructor is alive from here: the
    // callback may raise. The stack is cut to 3 and 5 slots are pushed
    // (within LUA_MINSTACK). The reader stays at slot 1, so it cannot be
    // collected while the callback runs; should the callback read it again
    // (dropping this version), `addr` is only a lightuserdata to Lua, which
    // every reader of blocks looks up (block_at) before use.
    unsafe {
        lua_settop(l, 3);
        lua_pushboolean(l, 1);
        lua_pushvalue(l, 2);
        lua_pushlightuserdata(l, addr as *mut c_void);
        lua_pushinteger(l, size as lua_Integer);
        lua_pushvalue(l, 3);
        lua_call(l, 3, LUA_MULTRET);
        lua_gettop(l) - 3
    }
}

/// `stm.live()` -> stm objects, shared blocks alive in the process
/// (a diagnostic for memory checks; not in skynet's module).
unsafe extern "C-unwind" fn llive(l: State) -> c_int {
    // SAFETY: pushes into the slots Lua gives a C function.
    unsafe {
        lua_pushinteger(l, StmObject::live_count() as lua_Integer);
        lua_pushinteger(l, SharedBlock::live_count() as lua_Integer);
    }
    2
}

/// Lua states standing for services in unit tests of the native modules that
/// share objects between services.
#[cfg(test)]
pub(crate) mod test_service {
    use super::super::{core, multicast, stm, Shared};
    use super::*;
    use std::ffi::CString;

    /// One service: a Lua state with `core`, `stm` and `mc` as globals, and
    /// `ptr(n)` / `addr(p)` to move pointers between states as integers.
    pub struct Svc {
        l: State,
        pub sh: Box<Shared>,
    }

    unsafe extern "C-unwind" fn lptr(l: State) -> c_int {
        // SAFETY: Lua calls it with its live state; the check raises with
        // nothing to drop.
        unsafe { lua_pushlightuserdata(l, luaL_checkinteger(l, 1) as usize as *mut c_void) };
        1
    }

    unsafe extern "C-unwind" fn laddr(l: State) -> c_int {
        // SAFETY: Lua calls it with its live state; lua_touserdata accepts
        // any value (NULL for non-userdata).
        unsafe { lua_pushinteger(l, lua_touserdata(l, 1) as usize as lua_Integer) };
        1
    }

    impl Svc {
        pub fn new() -> Svc {
            let sh = Shared::detached();
            // SAFETY: a fresh state used by this thread only; `sh` outlives it
            // (the state is closed in Drop, before `sh` is freed).
            unsafe {
                let l = luaL_newstate();
                luaL_openlibs(l);
                lua_pushlightuserdata(l, &*sh as *const Shared as *mut c_void);
                lua_setfield(l, LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
                for (name, f) in [
                    (c"core", core::open as lua_CFunction),
                    (c"stm", stm::open),
                    (c"mc", multicast::open),
                ] {
                    lua_pushcfunction(l, f);
                    lua_call(l, 0, 1);
                    lua_setglobal(l, name.as_ptr());
                }
                lua_pushcfunction(l, lptr);
                lua_setglobal(l, c"ptr".as_ptr());
                lua_pushcfunction(l, laddr);
                lua_setglobal(l, c"addr".as_ptr());
                Svc { l, sh }
            }
        }

        /// Runs `code`; its results, tostring'd and joined by spaces.
        pub fn eval(&self, code: &str) -> Result<String, String> {
            // SAFETY: the state is live and used by this thread only.
            unsafe {
                let l = self.l;
                lua_settop(l, 0);
                let c = CString::new(code).unwrap();
                if luaL_loadstring(l, c.as_ptr()) != LUA_OK
                    || lua_pcall(l, 0, LUA_MULTRET, 0) != LUA_OK
                {
                    let e = to_bytes(l, -1).map(|b| String::from_utf8_lossy(b).into_owned());
                    lua_settop(l, 0);
                    return Err(e.unwrap_or_default());
                }
                let mut out = Vec::new();
                for i in 1..=lua_gettop(l) {
                    let mut n = 0;
                    let p = luaL_tolstring(l, i, &mut n);
                    out.push(
                        String::from_utf8_lossy(std::slice::from_raw_parts(p as *const u8, n))
                            .into_owned(),
                    );
                    lua_pop(l, 1);
                }
                lua_settop(l, 0);
                Ok(out.join(" "))
            }
        }

        pub fn ok(&self, code: &str) -> String {
            self.eval(code)
                .unwrap_or_else(|e| panic!("{code}\nfailed: {e}"))
        }

        pub fn err(&self, code: &str) -> String {
            match self.eval(code) {
                Ok(r) => panic!("{code}\nshould fail, gave {r}"),
                Err(e) => e,
            }
        }

        /// Blocks the service's Lua code owns (from core.pack, ...).
        pub fn sh_owned(&self) -> usize {
            // SAFETY: no Lua code of this state runs meanwhile.
            unsafe { (*self.sh.buffers.get()).owned_count() }
        }

        /// The current message ends: shared blocks read during it are unpinned.
        pub fn end_message(&self) {
            // SAFETY: between evals no bytes of a pinned block are in use.
            unsafe { self.sh.unpin_all() }
        }
    }

    impl Drop for Svc {
        fn drop(&mut self) {
            // SAFETY: the state is closed once, before `sh` goes.
            unsafe { lua_close(self.l) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_service::Svc;
    use super::*;

    /// The block at `a` is gone (or another test's block reuses the address).
    fn freed(a: usize, was: &[u8]) -> bool {
        SharedBlock::find(a).is_none_or(|b| b.bytes() != was)
    }

    #[test]
    fn a_reader_in_another_service_sees_each_new_version_once() {
        let w = Svc::new();
        let r = Svc::new();
        let copy = w.ok("W = stm.new(core.pack(1, 2, 3)) return addr(stm.copy(W))");
        r.ok(&format!("R = stm.newcopy(ptr({copy}))"));
        assert_eq!(r.ok("return R(core.unpack)"), "true 1 2 3");
        assert_eq!(r.ok("return R(core.unpack)"), "false");
        w.ok("W(core.pack('hello', 2))");
        w.ok("W('plain string')");
        assert_eq!(
            r.ok("return R(function(m, sz) return core.tostring(m, sz) end)"),
            "true plain string"
        );
        assert_eq!(r.ok("return R(core.unpack)"), "false");
        // ud is passed through; several results come back after true
        w.ok("W(core.pack('x', 'y'))");
        assert_eq!(
            r.ok("return R(function(m, sz, ud) return ud, core.unpack(m, sz) end, 42)"),
            "true 42 x y"
        );
    }

    #[test]
    fn versions_are_freed_when_neither_writer_nor_reader_holds_them() {
        let w = Svc::new();
        let r = Svc::new();
        let copy = w.ok("W = stm.new('first version') return addr(stm.copy(W))");
        let obj = copy.parse::<usize>().unwrap();
        r.ok(&format!("R = stm.newcopy(ptr({copy}))"));
        let first: usize = r
            .ok("local _, a = R(function(m) return addr(m) end) return a")
            .parse()
            .unwrap();
        r.end_message();
        assert!(!freed(first, b"first version"), "the reader holds it");
        w.ok("W('second version')");
        assert!(!freed(first, b"first version"), "read last by the reader");
        let second: usize = r
            .ok("local _, a = R(function(m) return addr(m) end) return a")
            .parse()
            .unwrap();
        r.end_message();
        assert!(freed(first, b"first version"), "nobody holds the first");
        // The writer goes: the reader keeps what it read, sees no change.
        w.ok("W = nil collectgarbage() collectgarbage()");
        assert!(!freed(second, b"second version"));
        assert!(OBJECTS.find(obj).is_some(), "the reader holds the object");
        assert_eq!(r.ok("return R(core.unpack)"), "false");
        assert!(freed(second, b"second version"), "the writer is gone");
        r.ok("R = nil collectgarbage() collectgarbage()");
        assert!(OBJECTS.find(obj).is_none(), "the object is freed");
    }

    #[test]
    fn a_packed_block_is_taken_over_without_a_copy() {
        let w = Svc::new();
        let p = w.ok("P, SZ = core.pack('payload', 99) return addr(P)");
        assert_eq!(w.sh_owned(), 1);
        let copy = w.ok("W = stm.new(P, SZ) return addr(stm.copy(W))");
        assert_eq!(w.sh_owned(), 0, "the block left the service's buffers");
        let r = Svc::new();
        r.ok(&format!("R = stm.newcopy(ptr({copy}))"));
        let seen = r.ok("local _, a = R(function(m) return addr(m) end) return a");
        assert_eq!(seen, p, "the version is the packed block itself");
        assert_eq!(r.ok("return R(core.unpack)"), "false");
        w.ok("W(core.pack(true))");
        assert_eq!(r.ok("return R(core.unpack)"), "true true");
    }

    #[test]
    fn forged_stale_and_reused_copies_are_errors() {
        let w = Svc::new();
        let r = Svc::new();
        let copy = w.ok("W = stm.new('v') return addr(stm.copy(W))");
        r.ok(&format!("R = stm.newcopy(ptr({copy}))"));
        let e = r.err(&format!("stm.newcopy(ptr({copy}))"));
        assert!(e.contains("no copy left"), "{e}");
        let e = r.err(&format!(
            "stm.newcopy(ptr({}))",
            copy.parse::<usize>().unwrap() + 8
        ));
        assert!(e.contains("invalid pointer (not an stm copy)"), "{e}");
        let e = r.err("stm.newcopy('x')");
        assert!(e.contains("need an stm copy"), "{e}");
        // Two copies serve two readers.
        let c2 = w.ok("return addr(stm.copy(W)), addr(stm.copy(W))");
        let c2: Vec<&str> = c2.split(' ').collect();
        assert_eq!(c2[0], c2[1]);
        r.ok(&format!("R2 = stm.newcopy(ptr({}))", c2[0]));
        r.ok(&format!("R3 = stm.newcopy(ptr({}))", c2[0]));
        assert_eq!(
            r.ok("local a, b = R2(core.tostring) local c, d = R3(core.tostring) return a, b, c, d"),
            "true v true v"
        );
    }

    #[test]
    fn bad_arguments_are_errors() {
        let w = Svc::new();
        let e = w.err("stm.new({})");
        assert!(e.contains("need a string or a message pointer"), "{e}");
        let e = w.err("stm.new(ptr(4096), 3)");
        assert!(e.contains("invalid pointer"), "{e}");
        let e = w.err("local p, sz = core.pack(1) stm.new(p, sz + 100)");
        assert!(e.contains("bytes"), "{e}");
        let e = w.err("stm.copy({})");
        assert!(e.contains("skynet.stm.writer expected"), "{e}");
        let e = w.err("local w = stm.new('a') w({})");
        assert!(e.contains("need a string or a message pointer"), "{e}");
        let copy = w.ok("W = stm.new('a') return addr(stm.copy(W))");
        w.ok(&format!("R = stm.newcopy(ptr({copy}))"));
        let e = w.err("R('not a function')");
        assert!(e.contains("function expected"), "{e}");
        // A callback's error reaches the caller; the version counts as read.
        let e = w.err("R(function() error('boom') end)");
        assert!(e.contains("boom"), "{e}");
        assert_eq!(w.ok("return R(core.tostring)"), "false");
        // A released writer (its __gc called by hand) refuses further use.
        let e = w.err("local w = stm.new('a') getmetatable(w).__gc(w) w('b')");
        assert!(e.contains("already released"), "{e}");
    }
}
