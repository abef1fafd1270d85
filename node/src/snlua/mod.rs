//! snlua: the service module that runs one Lua 5.5 state per service, and the
//! native Lua modules it provides (`skynet.core`, `skynet.profile`,
//! `skynet.codecache`, `skynet.socketdriver` and the others listed in
//! `NATIVE_MODULES`), all found by `require` without any `.so`.
//!
//! Start-up follows skynet's snlua: `init` sends the argument string to the
//! service itself as its first message; that message creates the state, sets
//! `LUA_PATH`/`LUA_CPATH`/`LUA_SERVICE`/`LUA_PRELOAD` and runs `lualoader`. A
//! failure is logged, reported to `.launcher` as TEXT "ERROR", and the service
//! exits. Afterwards each message goes to the callback installed by
//! `skynet.core.callback`.
//!
//! Memory is counted per state by our allocator: `Memory warning` when usage
//! passes 32 MiB (then 64, 128 ...), and the limit set by `skynet.memlimit`
//! makes allocations fail with "not enough memory" while the state survives.

// Every unsafe function in snlua takes a raw `lua_State` that must be a live
// state of this service, used by the one thread dispatching it; where that is
// the whole safety contract it is stated here once, not on each function.

pub(crate) mod arena;
pub(crate) mod block;
pub(crate) mod blockcache;
pub(crate) mod buffers;
pub(crate) mod cluster;
pub mod codecache;
pub(crate) mod core;
pub(crate) mod crypt;
pub mod lua;
pub(crate) mod md5core;
pub(crate) mod memory;
pub(crate) mod multicast;
pub(crate) mod netpack;
pub(crate) mod profile;
pub(crate) mod seri;
pub(crate) mod sharedata;
pub mod sharetable;
pub(crate) mod socketdriver;
pub(crate) mod sproto;
pub(crate) mod stdlibs;
pub(crate) mod stm;
pub mod testing;
pub(crate) mod websocket;

use crate::context::Context;
use crate::kernel::kernel;
use crate::message::{ptype, Message};
use crate::module::Service;
use arena::Arena;
use blockcache::{request_size, BlockCache};
use buffers::Buffers;
use lua::*;
use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_int, c_void, CString};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

/// Registry key of the message callback.
pub static CALLBACK_KEY: u8 = 0;

/// `Runtime::active` while `signal` sets the hook on the thread it read: no
/// lua_State lives at address 1.
const HOOKING: State = std::ptr::without_provenance_mut(1);

/// First `Memory warning` threshold.
pub const MEMORY_WARNING_REPORT: usize = 32 * 1024 * 1024;

/// State shared by the allocator, the signal handler (any thread) and the
/// running Lua code.
pub struct Runtime {
    handle: u32,
    /// Shared strings when the state was created (see `codecache`).
    pub(crate) shared_epoch: u32,
    mem: AtomicUsize,
    /// Live allocation blocks of the state (`skynet.memory.block`).
    blocks: AtomicUsize,
    mem_report: AtomicUsize,
    mem_limit: AtomicUsize,
    /// 0: no trap; 1: being set; -1: set (a signal 0 is pending).
    trap: AtomicI32,
    /// The Lua thread running now (main state or a coroutine).
    active: AtomicPtr<lua_State>,
    /// The state's first small blocks (see [`arena`]).
    arena: Arena,
    /// Small blocks from malloc freed during the current message (see
    /// [`blockcache`]).
    cache: BlockCache,
}

impl Runtime {
    fn new(handle: u32, mem_report: usize) -> Self {
        Runtime {
            handle,
            shared_epoch: codecache::shared_epoch(),
            mem: AtomicUsize::new(0),
            blocks: AtomicUsize::new(0),
            mem_report: AtomicUsize::new(mem_report),
            mem_limit: AtomicUsize::new(0),
            trap: AtomicI32::new(0),
            active: AtomicPtr::new(std::ptr::null_mut()),
            arena: Arena::default(),
            cache: BlockCache::default(),
        }
    }

    /// A coroutine starts running; returns the previous active thread.
    pub(crate) fn enter(&self, co: State) -> State {
        let prev = self.set_active(co);
        if self.trap.load(Ordering::Acquire) != 0 {
            // SAFETY: `co` is the thread this service thread is about to
            // resume, alive (the resumer holds it); signal_hook reads the
            // allocator's ud, which is this Runtime for every state of ours.
            unsafe { lua_sethook(co, Some(signal_hook), LUA_MASKCOUNT, 1) };
        }
        prev
    }

    pub(crate) fn leave(&self, prev: State) {
        self.set_active(prev);
    }

    /// Makes `l` the active thread (null: none, the state is closing);
    /// returns the one before. Waits while `signal` holds the slot, so the
    /// thread it is hooking stays the active one, alive, until it is done.
    fn set_active(&self, l: State) -> State {
        loop {
            let cur = self.active.load(Ordering::Acquire);
            if cur != HOOKING
                && self
                    .active
                    .compare_exchange_weak(cur, l, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                return cur;
            }
            std::hint::spin_loop();
        }
    }

    pub fn memory(&self) -> usize {
        self.mem.load(Ordering::Relaxed)
    }

    /// skynet's snlua signal: 0 interrupts the running Lua code with the error
    /// "signal 0"; 1 logs the memory in use.
    fn signal(&self, sig: i32) {
        let k = kernel();
        k.log(self.handle, &format!("recv a signal {sig}"));
        if sig == 0 {
            if self
                .trap
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // Hold the slot (HOOKING) while hooking: the service thread
                // cannot switch away from, let alone free, the thread read.
                let active = loop {
                    let cur = self.active.swap(HOOKING, Ordering::AcqRel);
                    if cur != HOOKING {
                        break cur;
                    }
                    std::hint::spin_loop();
                };
                if !active.is_null() {
                    // SAFETY: while the slot holds HOOKING the service thread
                    // cannot leave `active` (set_active waits), so it is a
                    // live thread of this state, which Drop only closes after
                    // clearing the slot. lua_sethook is Lua's entry for
                    // setting a hook asynchronously (ldebug.c), as skynet's
                    // snlua uses it.
                    unsafe { lua_sethook(active, Some(signal_hook), LUA_MASKCOUNT, 1) };
                }
                self.active.store(active, Ordering::Release);
                let _ = self
                    .trap
                    .compare_exchange(1, -1, Ordering::AcqRel, Ordering::Acquire);
            }
        } else if sig == 1 {
            k.log(
                self.handle,
                &format!("Current Memory {:.3}K", self.memory() as f64 / 1024.0),
            );
        }
    }
}

/// The count hook `signal` sets: raises "signal 0" in the running code.
///
/// # Safety
/// Called by Lua as a hook of a state made by `Snlua::launch`.
unsafe extern "C-unwind" fn signal_hook(l: State, _ar: *mut lua_Debug) {
    let mut ud: *mut c_void = std::ptr::null_mut();
    // SAFETY: `l` is the running thread Lua called the hook with; clearing
    // its own hook from inside it is allowed.
    unsafe {
        lua_getallocf(l, &mut ud);
        lua_sethook(l, None, 0, 0);
    }
    // SAFETY: the allocator's ud of our states is the Runtime, which the
    // Snlua keeps alive until after lua_close.
    let rt = unsafe { &*(ud as *const Runtime) };
    if rt.trap.load(Ordering::Acquire) != 0 {
        rt.trap.store(0, Ordering::Release);
        // SAFETY: a count hook may raise; nothing with a destructor is alive.
        unsafe { raise_here(l, "signal 0".to_string()) };
    }
}

/// The `lua_Alloc` of every service state.
///
/// # Safety
/// Called by Lua on the thread running the state, `ud` its Runtime, `ptr` a
/// block this function returned for `osize` bytes (or null).
unsafe extern "C" fn allocator(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: `ud` is the Runtime given to lua_newstate, alive until after
    // lua_close (Snlua keeps it).
    let rt = unsafe { &*(ud as *const Runtime) };
    let old = if ptr.is_null() { 0 } else { osize };
    // Only the thread running the service allocates for its state, so the
    // counter is read and written without a locked instruction; other threads
    // only read it (`stat`, memory reports).
    let mem = rt.mem.load(Ordering::Relaxed);
    if nsize == 0 {
        if !ptr.is_null() {
            // SAFETY: Lua frees `ptr`, a block of `osize` from us, and only
            // this thread allocates for the state. A block that is not the
            // arena's came from malloc/realloc at request_size of its size
            // (fresh_block, realloc below, or kept in the same class).
            let kept = unsafe { rt.arena.give(ptr, osize) || rt.cache.keep(ptr, osize) };
            if !kept {
                // SAFETY: neither took it: a block from malloc/realloc.
                unsafe { libc::free(ptr) };
            }
            rt.mem.store(mem - old, Ordering::Relaxed);
            let blocks = rt.blocks.load(Ordering::Relaxed);
            rt.blocks.store(blocks.wrapping_sub(1), Ordering::Relaxed);
        }
        return std::ptr::null_mut();
    }
    let new_mem = mem - old + nsize;
    let limit = rt.mem_limit.load(Ordering::Relaxed);
    if limit != 0 && new_mem > limit && nsize > old {
        return std::ptr::null_mut();
    }
    let p = if ptr.is_null() {
        // SAFETY: only this thread allocates for the state.
        unsafe { fresh_block(rt, nsize) }
    } else if rt.arena.owns(ptr, osize) {
        if Arena::same_class(osize, nsize) {
            ptr
        } else {
            // SAFETY: as above.
            let q = unsafe { fresh_block(rt, nsize) };
            if !q.is_null() {
                // SAFETY: `ptr` holds `osize` bytes and `q` at least
                // `nsize`, distinct blocks; `ptr` is the arena's (checked),
                // unused once copied (Lua takes `q` instead).
                unsafe {
                    std::ptr::copy_nonoverlapping(ptr as *const u8, q as *mut u8, osize.min(nsize));
                    rt.arena.give_owned(ptr, osize);
                }
            }
            q
        }
    } else if BlockCache::same_class(osize, nsize) {
        ptr
    } else {
        // SAFETY: `ptr` is not the arena's, so it came from malloc/realloc
        // (see the free above); on failure it stays valid, as Lua expects.
        unsafe { libc::realloc(ptr, request_size(nsize)) }
    };
    if p.is_null() {
        return p;
    }
    rt.mem.store(new_mem, Ordering::Relaxed);
    if ptr.is_null() {
        let blocks = rt.blocks.load(Ordering::Relaxed);
        rt.blocks.store(blocks + 1, Ordering::Relaxed);
    }
    let report = rt.mem_report.load(Ordering::Relaxed);
    if new_mem > report {
        rt.mem_report.store(report * 2, Ordering::Relaxed);
        kernel().log(
            rt.handle,
            &format!("Memory warning {:.2} M", new_mem as f64 / (1024.0 * 1024.0)),
        );
    }
    p
}

/// A new block for `n` bytes: from the arena while it lasts, else from the
/// message's block cache or malloc. Small blocks are asked of malloc at
/// their class size, so the cache can hand any freed one to a later request
/// of the same class.
///
/// # Safety
/// Only the thread running the state calls it.
#[inline]
unsafe fn fresh_block(rt: &Runtime, n: usize) -> *mut c_void {
    // SAFETY: no other thread uses the arena or the cache (contract).
    let p = unsafe { rt.arena.take(n) };
    if !p.is_null() {
        return p;
    }
    // SAFETY: as above.
    let p = unsafe { rt.cache.take(n) };
    if !p.is_null() {
        return p;
    }
    // SAFETY: malloc has no precondition.
    unsafe { libc::malloc(request_size(n)) }
}

/// What the native functions of one service reach through their upvalue.
pub struct Shared {
    pub ctx: Arc<Context>,
    pub handle: u32,
    pub buffers: UnsafeCell<Buffers>,
    pub scratch: UnsafeCell<Vec<u8>>,
    pub forward: Cell<bool>,
    pub runtime: Arc<Runtime>,
    /// Shared blocks read during the current message (see [`block`]).
    pins: UnsafeCell<Vec<Arc<block::SharedBlock>>>,
    /// sharedata objects read or let go during the current message (see
    /// [`sharedata`]).
    pub(crate) sd_pins: UnsafeCell<Vec<Arc<sharedata::SdObject>>>,
    /// Shared tables this service pushed (see [`sharetable`]): held until
    /// the `Shared` is dropped, after the state is closed.
    pub shared_tables: UnsafeCell<Vec<Arc<sharetable::Matrix>>>,
}

impl Shared {
    fn new(ctx: Arc<Context>, runtime: Arc<Runtime>) -> Self {
        Shared {
            handle: ctx.handle(),
            ctx,
            buffers: UnsafeCell::new(Buffers::default()),
            scratch: UnsafeCell::new(Vec::with_capacity(256)),
            forward: Cell::new(false),
            runtime,
            pins: UnsafeCell::new(Vec::new()),
            sd_pins: UnsafeCell::new(Vec::new()),
            shared_tables: UnsafeCell::new(Vec::new()),
        }
    }

    /// Keeps `b` alive until the current message ends; returns its bytes.
    ///
    /// # Safety
    /// Only the thread running the service calls it, and the bytes must not
    /// be used after [`Shared::unpin_all`].
    pub unsafe fn pin(&self, b: Arc<block::SharedBlock>) -> &[u8] {
        // SAFETY: only the service's thread reaches `pins` (contract), and
        // no other borrow of it is alive.
        let pins = unsafe { &mut *self.pins.get() };
        // SAFETY: the Arc is kept in `pins` until unpin_all, and a
        // SharedBlock's bytes never move or change.
        let bytes = unsafe { std::slice::from_raw_parts(b.bytes().as_ptr(), b.bytes().len()) };
        // A loop reading one block many times in a message pins it once.
        if !pins.last().is_some_and(|last| Arc::ptr_eq(last, &b)) {
            pins.push(b);
        }
        bytes
    }

    /// Releases the shared blocks pinned during the message.
    ///
    /// # Safety
    /// Called by the thread running the service, once no bytes that
    /// [`Shared::pin`] returned are in use (between messages).
    pub unsafe fn unpin_all(&self) {
        // SAFETY: only the service's thread reaches the pins, and nothing
        // borrows them or their bytes now (contract).
        unsafe {
            (*self.pins.get()).clear();
            (*self.sd_pins.get()).clear();
        }
    }

    /// A `Shared` bound to no running service (handle 0), for states that only
    /// use the pure native functions (tests).
    pub fn detached() -> Box<Shared> {
        Box::new(Shared::new(
            Arc::new(Context::new(0)),
            Arc::new(Runtime::new(0, usize::MAX / 4)),
        ))
    }
}

/// The `Shared` of the function being run (upvalue 1).
///
/// # Safety
/// `l` is the state a C function made by `open_bound` (or
/// `testing::SeriLua`) was called with; the `Shared` outlives the state.
#[inline]
pub unsafe fn shared<'a>(l: State) -> &'a Shared {
    // SAFETY: upvalue 1 of such a function is the light userdata of the
    // service's Shared (contract), boxed and alive until after lua_close.
    unsafe { &*(lua_touserdata(l, lua_upvalueindex(1)) as *const Shared) }
}

pub struct Snlua {
    state: State,
    shared: Option<Box<Shared>>,
    runtime: Option<Arc<Runtime>>,
    args: String,
}

// SAFETY: the Lua state is only ever touched by the one worker dispatching
// this service (the kernel runs a service on one thread at a time), and the
// Shared/Runtime it points into move with it.
unsafe impl Send for Snlua {}

impl Default for Snlua {
    fn default() -> Self {
        Self::new()
    }
}

impl Snlua {
    pub fn new() -> Self {
        Snlua {
            state: std::ptr::null_mut(),
            shared: None,
            runtime: None,
            args: String::new(),
        }
    }

    /// Creates the state and runs the loader (skynet's `launch_cb`).
    fn launch(&mut self, ctx: &Arc<Context>) -> Result<(), String> {
        let k = kernel();
        let runtime = Arc::new(Runtime::new(ctx.handle(), MEMORY_WARNING_REPORT));
        // SAFETY: the allocator's ud is the Runtime, which `self` keeps until
        // after lua_close (Drop); the seed is any number.
        let l = unsafe {
            lua_newstate(
                allocator,
                Arc::as_ptr(&runtime) as *mut c_void,
                codecache::seed(),
            )
        };
        if l.is_null() {
            return Err("lua_newstate failed".into());
        }
        runtime.active.store(l, Ordering::Release);
        memory::register(&runtime);
        self.state = l;
        let shared = Box::new(Shared::new(ctx.clone(), runtime.clone()));
        let sh_ptr = &*shared as *const Shared as *mut c_void;
        self.shared = Some(shared);
        {
            let rt = runtime.clone();
            ctx.set_signal_handler(Arc::new(move |sig| rt.signal(sig)));
            let rt = runtime.clone();
            ctx.set_memory_probe(Arc::new(move || rt.memory()));
        }
        self.runtime = Some(runtime);
        let env = |key: &str, default: &str| k.getenv(key).unwrap_or_else(|| default.to_string());
        let lua_path = env("lua_path", "./lualib/?.lua;./lualib/?/init.lua");
        let lua_cpath = env("lua_cpath", "./luaclib/?.so");
        let lua_service = env("luaservice", "./service/?.lua");
        let preload = k.getenv("preload");
        let loader = env("lualoader", "./lualib/loader.lua");
        // SAFETY: `l` is the new state, used by this thread only. Outside a
        // protected call a Lua error aborts the process (no panic function
        // is set), so no longjmp crosses the Strings alive here; the loader
        // and the main chunk run protected (codecache::load, lua_pcall).
        // `sh_ptr` is the boxed Shared in `self`, alive until after
        // lua_close.
        unsafe {
            lua_gc(l, LUA_GCSTOP);
            lua_pushboolean(l, 1);
            lua_setfield(l, LUA_REGISTRYINDEX, c"LUA_NOENV".as_ptr());
            stdlibs::open(l);
            lua_pushlightuserdata(l, sh_ptr);
            lua_setfield(l, LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
            install_native_modules(l);
            for (name, value) in [
                (c"LUA_PATH", Some(lua_path)),
                (c"LUA_CPATH", Some(lua_cpath)),
                (c"LUA_SERVICE", Some(lua_service)),
                (c"LUA_PRELOAD", preload),
            ] {
                match value {
                    Some(v) => push_str(l, &v),
                    None => lua_pushnil(l),
                }
                lua_setglobal(l, name.as_ptr());
            }
            lua_pushcfunction(l, traceback);
            let r = codecache::load(l, loader.as_bytes());
            if r != LUA_OK {
                let msg = top_string(l);
                return Err(format!("Can't load {loader} : {msg}"));
            }
            push_str(l, &self.args);
            let r = lua_pcall(l, 1, 0, 1);
            if r != LUA_OK {
                let msg = top_string(l);
                return Err(format!("lua loader error : {msg}"));
            }
            lua_settop(l, 0);
            lua_getfield(l, LUA_REGISTRYINDEX, c"memlimit".as_ptr());
            let limit = lua_tointegerx(l, -1, std::ptr::null_mut());
            lua_pop(l, 1);
            if limit > 0 {
                self.runtime
                    .as_ref()
                    .unwrap()
                    .mem_limit
                    .store(limit as usize, Ordering::Relaxed);
                k.log(
                    ctx.handle(),
                    &format!(
                        "Set memory limit to {:.2} M",
                        limit as f64 / (1024.0 * 1024.0)
                    ),
                );
            }
            lua_gc(l, LUA_GCRESTART);
            lua_gc(l, LUA_GCGEN);
        }
        Ok(())
    }

    fn call_callback(&mut self, ctx: &Arc<Context>, msg: Message) {
        let l = self.state;
        let Some(sh) = self.shared.as_deref() else {
            return;
        };
        let sz = msg.data.len();
        // SAFETY: this thread runs the service; no other borrow of its
        // buffers is alive.
        let ptr = unsafe { (*sh.buffers.get()).set_current(msg.data) };
        // SAFETY: `l` is the service's state, used by this thread only. The
        // calls before lua_pcall are unprotected (an error would abort, not
        // longjmp); the callback runs protected with `traceback` as handler.
        // The buffers are borrowed again only when no Lua code runs.
        let r = unsafe {
            lua_settop(l, 0);
            lua_pushcfunction(l, traceback);
            if lua_rawgetp(
                l,
                LUA_REGISTRYINDEX,
                &CALLBACK_KEY as *const u8 as *const c_void,
            ) != LUA_TFUNCTION
            {
                // No callback installed: skynet drops the message.
                lua_settop(l, 0);
                (*sh.buffers.get()).finish_current(false);
                return;
            }
            lua_pushinteger(l, msg.ptype as lua_Integer);
            lua_pushlightuserdata(l, ptr as *mut c_void);
            lua_pushinteger(l, sz as lua_Integer);
            lua_pushinteger(l, msg.session as lua_Integer);
            lua_pushinteger(l, msg.source as lua_Integer);
            let r = lua_pcall(l, 5, 0, 1);
            (
                r,
                if r == LUA_OK {
                    String::new()
                } else {
                    top_string(l)
                },
            )
        };
        // SAFETY: as above; the Lua call is over, so no other borrow of the
        // buffers is alive.
        unsafe {
            lua_settop(l, 0);
            (*sh.buffers.get()).finish_current(sh.forward.get());
        }
        let (status, err) = r;
        if status != LUA_OK {
            let me = ctx.handle();
            let text = match status {
                LUA_ERRMEM => format!(
                    "lua memory error : [{:x} to :{me:x} : {}]",
                    msg.source, msg.session
                ),
                LUA_ERRERR => format!(
                    "lua error in error : [{:x} to :{me:x} : {}]",
                    msg.source, msg.session
                ),
                _ => format!(
                    "lua call [{:x} to :{me:x} : {} msgsz = {}] error : \x1b[31m{}\x1b[0m",
                    msg.source, msg.session, sz, err
                ),
            };
            kernel().log(me, &text);
        }
    }
}

/// The error object on the top of the stack as text.
///
/// # Safety
/// `l` is a live state with a value on the top, outside a protected call
/// (an error in the conversion aborts rather than longjmps).
unsafe fn top_string(l: State) -> String {
    // SAFETY: the top is a valid index (contract); the bytes are copied
    // while the value stays on the stack.
    unsafe {
        to_bytes(l, -1)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_else(|| format!("(error object is a {} value)", type_name(l, -1)))
    }
}

/// The message handler of the callback's pcall.
///
/// # Safety
/// Called by Lua as a message handler (a C function, argument 1 the error).
unsafe extern "C-unwind" fn traceback(l: State) -> c_int {
    // SAFETY: `l` is the calling state, index 1 its argument; the slice is
    // used while the argument is on the stack.
    match unsafe { to_bytes(l, 1) } {
        Some(msg) => {
            // luaL_traceback may raise (out of memory): the copy is a
            // ManuallyDrop so the longjmp skips no destructor (it leaks).
            let mut c = ManuallyDrop::new(
                CString::new(msg.iter().copied().filter(|b| *b != 0).collect::<Vec<u8>>())
                    .unwrap_or_default(),
            );
            // SAFETY: `c` is NUL-terminated and outlives the call (Lua
            // copies it); if the call raises only the ManuallyDrop leaks.
            unsafe {
                luaL_traceback(l, l, c.as_ptr(), 1);
                ManuallyDrop::drop(&mut c);
            }
        }
        // SAFETY: a C function has free slots; nothing with a destructor is
        // alive if the push raises.
        None => unsafe { push_str(l, "(no error message)") },
    }
    1
}

/// The native Lua modules, by the name `require` takes.
const NATIVE_MODULES: &[(&[u8], lua_CFunction)] = &[
    (b"skynet.core", core::open),
    (b"skynet.profile", profile::open),
    (b"skynet.codecache", codecache::open),
    (b"skynet.socketdriver", socketdriver::open),
    (b"skynet.stm", stm::open),
    (b"skynet.multicast.core", multicast::open),
    (b"sproto.core", sproto::open),
    (b"sprotoparser.core", sproto::open_parser),
    (b"skynet.sharedata.core", sharedata::open),
    (b"skynet.sharetable.core", sharetable::open),
    (b"http.websocket.core", websocket::open),
    (b"skynet.crypt", crypt::open),
    (b"client.crypt", crypt::open),
    (b"md5.core", md5core::open),
    (b"skynet.netpack", netpack::open),
    (b"skynet.cluster.core", cluster::open),
    (b"skynet.memory", memory::open),
];

/// `package.searchers[2]`: a native module, else a Lua file through the code
/// cache. (A table of loaders in `package.preload` would be built again in
/// every new state, and makes the state bigger.) Finding no native module
/// adds nothing to `require`'s "not found" message.
///
/// # Safety
/// Called by Lua as a searcher (a C function) in a service state.
unsafe extern "C-unwind" fn searcher(l: State) -> c_int {
    // SAFETY: `l` is the calling state; the check raises with nothing to
    // drop; the name is used while argument 1 is on the stack.
    let name = unsafe { check_bytes(l, 1) };
    match NATIVE_MODULES.iter().find(|(n, _)| *n == name) {
        Some((_, open)) => {
            // SAFETY: two pushes into a C function's free slots.
            unsafe {
                lua_pushcfunction(l, *open);
                lua_pushstring(l, c":native:".as_ptr());
            }
            2
        }
        // SAFETY: the same call, handed on with its contract.
        None => unsafe { codecache::searcher(l) },
    }
}

/// Installs the searcher of native modules and Lua files, and swaps in the
/// profiling resume/wrap and the code cache.
///
/// # Safety
/// `l` is a live state with the standard libraries open and room on the
/// stack, outside a protected call (launch).
unsafe fn install_native_modules(l: State) {
    // SAFETY: `l` is live (contract) with `package.searchers` and
    // `coroutine` from the standard libraries; every push is popped again,
    // and nothing with a destructor is alive if a call raises.
    unsafe {
        lua_getglobal(l, c"package".as_ptr());
        lua_getfield(l, -1, c"searchers".as_ptr());
        lua_pushcfunction(l, searcher);
        lua_rawseti(l, -2, 2);
        lua_pop(l, 2);
        lua_pushcfunction(l, codecache::lloadfile);
        lua_setglobal(l, c"loadfile".as_ptr());
        // skynet.profile replaces coroutine.resume / coroutine.wrap
        luaL_requiref(l, c"skynet.profile".as_ptr(), profile::open, 0);
        lua_getglobal(l, c"coroutine".as_ptr());
        lua_getfield(l, -2, c"resume".as_ptr());
        lua_setfield(l, -2, c"resume".as_ptr());
        lua_getfield(l, -2, c"wrap".as_ptr());
        lua_setfield(l, -2, c"wrap".as_ptr());
        lua_pop(l, 2);
        luaL_requiref(l, c"skynet.codecache".as_ptr(), codecache::open, 0);
        lua_pop(l, 1);
    }
}

impl Service for Snlua {
    fn init(&mut self, ctx: &Arc<Context>, args: &str) -> Result<(), String> {
        self.args = args.to_string();
        // The first message builds the Lua state, on a worker thread.
        kernel()
            .push(ctx.handle(), Message::new(0, 0, ptype::TEXT, Vec::new()))
            .map_err(|_| "snlua: can't reach itself".to_string())
    }

    fn dispatch(&mut self, ctx: &Arc<Context>, msg: Message) {
        if self.state.is_null() {
            if let Err(e) = self.launch(ctx) {
                let k = kernel();
                k.log(ctx.handle(), &e);
                let _ = k.send_name(
                    ctx.handle(),
                    ctx.handle(),
                    ".launcher",
                    ptype::TEXT,
                    0,
                    b"ERROR".to_vec(),
                );
                k.exit_service(ctx.handle(), ctx.handle());
            }
        } else {
            self.call_callback(ctx, msg);
        }
        if let Some(sh) = &self.shared {
            // SAFETY: this thread runs the service and the message is done.
            unsafe { sh.unpin_all() };
        }
        if let Some(rt) = &self.runtime {
            // SAFETY: this thread is the one running the state.
            unsafe { rt.cache.flush() };
        }
    }
}

impl Drop for Snlua {
    fn drop(&mut self) {
        if !self.state.is_null() {
            // The signal handler (kept by the context) must not hook the
            // state once it is freed.
            if let Some(rt) = &self.runtime {
                rt.set_active(std::ptr::null_mut());
            }
            // SAFETY: the state is ours, not running (Drop has `&mut self`),
            // and closed once; Shared and Runtime outlive the call.
            unsafe { lua_close(self.state) };
            self.state = std::ptr::null_mut();
        }
        if let Some(rt) = &self.runtime {
            memory::unregister(rt);
            // SAFETY: the state is closed; nothing else reaches the cache or
            // the arena, and no block of either is in use.
            unsafe {
                rt.cache.flush();
                rt.arena.release();
            }
        }
        // `shared` and `runtime` outlive the state: the allocator and the native
        // functions reach them until lua_close returns.
    }
}
