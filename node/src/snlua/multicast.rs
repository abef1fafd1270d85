//! `skynet.multicast.core`: refcounted packages that carry one published
//! message to many subscribers without a copy per subscriber, with the Lua
//! API of skynet's lua-multicast.c (pack, unpack, bind, close, remote,
//! packremote, nextid).
//!
//! The flow, as skynet's multicast library and multicastd use it:
//! - the publisher's `pack(msg, sz)` takes its message over as a
//!   [`Package`] (payload in a [`SharedBlock`], references not set yet) and
//!   returns a *holder*: a shared block of 8 bytes that names the package,
//!   with its size;
//! - multicastd reads the holder (`skynet.tostring(holder, 8)`, a string of
//!   those 8 bytes, sent to each subscriber), and `bind(holder, n)` sets the
//!   package's references to the number of deliveries and frees the holder;
//! - each subscriber's `unpack(msg, 8)` finds the package named by its
//!   message and gives `package, data, size` (data is the shared payload, so
//!   `skynet.unpack(data, size)` reads it in place), and `close(package)`
//!   drops its reference: the last one frees the payload.
//! - `remote(holder)` turns an unbound package back into a message block of
//!   the service (to forward to another harbor), `packremote(msg, sz)` makes
//!   a package of a message that came from one.
//!
//! Packages are named by ids that are never reused, found in a process-wide
//! table: a forged id, a package closed more times than it was bound, a
//! second bind, or a holder already used is a Lua error, never a read of
//! freed memory. A delivery that can never be handled (its subscriber died
//! with it queued, or was gone before it was sent) gives its reference back
//! through [`release_undelivered`], which the kernel calls for every
//! undeliverable `PTYPE_MULTICAST` message (registered with
//! `Kernel::on_undeliverable` at start-up).

use super::block::SharedBlock;
use super::lua::*;
use super::stm::{block_source, take_shared, BlockSource};
use super::Shared;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

/// The size of a holder block (skynet's `sizeof(struct mc_package *)`).
pub const HOLDER_SIZE: usize = 8;

/// One published message on its way to its subscribers.
pub struct Package {
    data: Arc<SharedBlock>,
    /// Deliveries not yet closed; 0 until `bind` sets them.
    refs: AtomicI64,
    /// The block naming this package, from `pack` until `bind` or `remote`.
    holder: Mutex<Option<Arc<SharedBlock>>>,
}

static PACKAGES: LazyLock<RwLock<HashMap<u64, Arc<Package>>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// Package ids start at a per-process value with the top bit set, so that a
/// stray 8-byte message (not a delivery) is most unlikely to name a package.
static NEXT_ID: LazyLock<AtomicU64> = LazyLock::new(|| {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let salt = (t ^ (std::process::id() as u64).rotate_left(40)) << 24;
    AtomicU64::new(salt | (1 << 63))
});

/// Makes a package of `data`; returns its id and its holder block.
pub fn new_package(data: Arc<SharedBlock>) -> (u64, Arc<SharedBlock>) {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let holder = SharedBlock::new(id.to_ne_bytes().to_vec());
    let pkg = Arc::new(Package {
        data,
        refs: AtomicI64::new(0),
        holder: Mutex::new(Some(holder.clone())),
    });
    PACKAGES.write().insert(id, pkg);
    (id, holder)
}

fn find(id: u64) -> Option<Arc<Package>> {
    PACKAGES.read().get(&id).cloned()
}

const UNKNOWN: &str = "unknown package (already released, or not a multicast package)";

/// Sets the references of the package named by a holder: `n` deliveries.
/// The holder is freed.
pub fn bind(id: u64, n: i64) -> Result<(), String> {
    let pkg = find(id).ok_or(UNKNOWN)?;
    if n <= 0 {
        return Err(format!("Invalid multicast package reference {n}"));
    }
    let holder = pkg.holder.lock().take();
    if holder.is_none() || pkg.refs.load(Ordering::Acquire) != 0 {
        return Err("Can't bind a multicast package more than once".into());
    }
    pkg.refs.store(n, Ordering::Release);
    Ok(())
}

/// Drops one reference of package `id`; the last frees it.
pub fn close(id: u64) -> Result<(), String> {
    let gone = {
        let pkgs = PACKAGES.read();
        let pkg = pkgs.get(&id).ok_or(UNKNOWN)?;
        let prev = pkg.refs.fetch_sub(1, Ordering::AcqRel);
        if prev <= 0 {
            pkg.refs.fetch_add(1, Ordering::AcqRel);
            return Err(if prev == 0 && pkg.holder.lock().is_some() {
                "the package was never bound (mc.bind)".into()
            } else {
                format!("Invalid multicast package reference {}", prev - 1)
            });
        }
        prev == 1
    };
    if gone {
        let pkg = PACKAGES.write().remove(&id);
        drop(pkg);
    }
    Ok(())
}

/// Takes an unbound package out of the table (to forward its payload).
pub fn unbind_remote(id: u64) -> Result<Arc<SharedBlock>, String> {
    let pkg = find(id).ok_or(UNKNOWN)?;
    let holder = pkg.holder.lock().take();
    if holder.is_none() {
        return Err("the package was bound already (mc.bind) or sent (mc.remote)".into());
    }
    let pkg = PACKAGES.write().remove(&id).unwrap_or(pkg);
    Ok(pkg.data.clone())
}

/// The payload of package `id`: its address (0 when empty) and size.
pub fn payload(id: u64) -> Option<(usize, usize)> {
    let pkgs = PACKAGES.read();
    pkgs.get(&id)
        .map(|p| (p.data.address(), p.data.bytes().len()))
}

/// A `PTYPE_MULTICAST` message that can never be handled: when it is a
/// delivery (8 bytes naming a bound package), its reference is dropped.
pub fn release_undelivered(data: &[u8]) {
    if let Ok(b) = <[u8; HOLDER_SIZE]>::try_from(data) {
        let id = u64::from_ne_bytes(b);
        let bound = PACKAGES
            .read()
            .get(&id)
            .is_some_and(|p| p.refs.load(Ordering::Acquire) > 0);
        if bound {
            let _ = close(id);
        }
    }
}

/// Packages alive in the process.
pub fn live_count() -> usize {
    PACKAGES.read().len()
}

/// The package id in the first 8 bytes of the block `p` (a holder, or a
/// delivery message) of the running service.
///
/// # Safety
/// As for [`block_at`](super::block::block_at): the service's thread, no
/// borrow of its buffers alive.
unsafe fn id_at(sh: &Shared, p: usize, what: &str) -> Result<u64, String> {
    // SAFETY: block_at's contract is ours; the bytes are copied out at once.
    let b = unsafe { super::block::block_at(sh, p, HOLDER_SIZE as i64, what) }?;
    Ok(u64::from_ne_bytes(
        b[..HOLDER_SIZE].try_into().unwrap_or_default(),
    ))
}

pub const FUNCS: &[(&std::ffi::CStr, lua_CFunction)] = &[
    (c"pack", lpack),
    (c"packremote", lpackremote),
    (c"unpack", lunpack),
    (c"bind", lbind),
    (c"close", lclose),
    (c"remote", lremote),
    (c"nextid", lnextid),
    (c"live", llive),
];

/// `require "skynet.multicast.core"`.
///
/// # Safety
/// A Lua C function: `l` must be a live state whose registry holds the
/// service's `skynet_context`.
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: `l` is live (contract); open_bound raises if the registry has
    // no `skynet_context`.
    unsafe { open_bound(l, FUNCS) }
}

fn source_len(src: &BlockSource) -> usize {
    match *src {
        BlockSource::Text(_, n) | BlockSource::Own(_, n) | BlockSource::Shared(_, n) => n,
        BlockSource::Empty => 0,
    }
}

/// pack / packremote: the message at 1 (`ptr, size` or a string) becomes a
/// package -> holder, 8.
///
/// # Safety
/// `l` is the state calling one of this module's functions (upvalue 1 is
/// the service's `Shared`, set by `open_bound`), on the service's thread.
unsafe fn pack_message(l: State, what: &str) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared, which outlives the state
    // (contract); no borrow of its buffers is alive. The size check raises
    // with nothing to drop (`src` is plain data). take_shared follows
    // block_source with no Lua call between; the package keeps its holder,
    // so the address pushed stays a live block after `holder` is dropped,
    // and the pushes do not allocate.
    unsafe {
        let sh = super::shared(l);
        let src = block_source(l, sh, 1, what);
        if source_len(&src) > u32::MAX as usize {
            raise_here(l, "Size should be 32bit integer".to_string());
        }
        let (_, holder) = new_package(take_shared(sh, src));
        let a = holder.address();
        drop(holder);
        lua_pushlightuserdata(l, a as *mut c_void);
        lua_pushinteger(l, HOLDER_SIZE as lua_Integer);
    }
    2
}

unsafe extern "C-unwind" fn lpack(l: State) -> c_int {
    // SAFETY: Lua calls it as a function of this module (open_bound set its
    // upvalue), on the service's thread.
    unsafe { pack_message(l, "multicast pack") }
}

unsafe extern "C-unwind" fn lpackremote(l: State) -> c_int {
    // SAFETY: as for lpack.
    unsafe { pack_message(l, "multicast packremote") }
}

/// The lightuserdata at `idx`, or a Lua error naming `what`.
///
/// # Safety
/// `l` is the calling state; nothing with a destructor is alive in the
/// caller (this may raise).
unsafe fn pointer_arg(l: State, idx: c_int, what: &str) -> usize {
    // SAFETY: `l` is the calling state (contract); lua_type and
    // lua_touserdata accept any index; the error text is moved into
    // raise_here.
    unsafe {
        if lua_type(l, idx) != LUA_TLIGHTUSERDATA {
            raise_here(
                l,
                format!("{what}: need a lightuserdata, got {}", type_name(l, idx)),
            );
        }
        lua_touserdata(l, idx) as usize
    }
}

/// `unpack(msg, 8)` -> package, data, size.
unsafe extern "C-unwind" fn lunpack(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (open_bound); the argument
    // checks raise before any Rust value with a destructor exists; a string
    // argument's bytes are copied out while it is on the stack; id_at runs
    // on the service's thread with no borrow of the buffers alive.
    let id = unsafe {
        let sh = super::shared(l);
        let sz = luaL_checkinteger(l, 2);
        if sz != HOLDER_SIZE as i64 {
            raise_here(l, format!("Invalid multicast package size {sz}"));
        }
        if lua_type(l, 1) == LUA_TSTRING {
            match to_bytes(l, 1).and_then(|b| <[u8; HOLDER_SIZE]>::try_from(b).ok()) {
                Some(b) => Ok(u64::from_ne_bytes(b)),
                None => Err("multicast unpack: need 8 bytes".to_string()),
            }
        } else {
            let p = pointer_arg(l, 1, "multicast unpack");
            id_at(sh, p, "multicast unpack")
        }
    };
    let found = match id {
        Ok(id) => payload(id)
            .map(|p| (id, p))
            .ok_or_else(|| format!("multicast unpack: {UNKNOWN}")),
        Err(e) => Err(e),
    };
    match found {
        Ok((id, (addr, size))) => {
            // SAFETY: three pushes into the slots Lua gives a C function;
            // none allocates.
            unsafe {
                lua_pushlightuserdata(l, id as usize as *mut c_void);
                lua_pushlightuserdata(l, addr as *mut c_void);
                lua_pushinteger(l, size as lua_Integer);
            }
            3
        }
        // SAFETY: nothing with a destructor is alive (the text is moved).
        Err(e) => unsafe { raise_here(l, e) },
    }
}

/// `bind(holder, n)` -> package.
unsafe extern "C-unwind" fn lbind(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (open_bound); the argument
    // checks raise with nothing to drop; id_at runs on the service's thread
    // with no borrow of the buffers alive.
    let r = unsafe {
        let sh = super::shared(l);
        let p = pointer_arg(l, 1, "multicast bind");
        let n = luaL_checkinteger(l, 2);
        id_at(sh, p, "multicast bind").and_then(|id| bind(id, n).map(|()| id))
    };
    match r {
        Ok(id) => {
            // SAFETY: a push into the slots Lua gives a C function.
            unsafe { lua_pushlightuserdata(l, id as usize as *mut c_void) };
            1
        }
        // SAFETY: nothing with a destructor is alive (the text is moved).
        Err(e) => unsafe { raise_here(l, e) },
    }
}

/// `close(package)`.
unsafe extern "C-unwind" fn lclose(l: State) -> c_int {
    // SAFETY: `l` is the calling state; nothing with a destructor is alive.
    let id = unsafe { pointer_arg(l, 1, "multicast close") } as u64;
    match close(id) {
        Ok(()) => 0,
        Err(e) => {
            let msg = format!("multicast close: {e}");
            drop(e);
            // SAFETY: nothing with a destructor is alive (`e` is dropped,
            // the text is moved).
            unsafe { raise_here(l, msg) }
        }
    }
}

/// `remote(holder)` -> msg, size: the payload as a block of this service
/// (to send on), the package released.
unsafe extern "C-unwind" fn lremote(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (open_bound); the argument
    // check raises with nothing to drop; id_at runs on the service's thread
    // with no borrow of the buffers alive.
    let (sh, id) = unsafe {
        let sh = super::shared(l);
        let p = pointer_arg(l, 1, "multicast remote");
        (sh, id_at(sh, p, "multicast remote"))
    };
    let r = id.and_then(|id| {
        unbind_remote(id).map(|data| {
            let v = data.bytes().to_vec();
            let n = v.len();
            // SAFETY: the service's thread, and the only borrow of its
            // buffers, ended with the statement; no Lua call meanwhile.
            (unsafe { (*sh.buffers.get()).insert(v) }, n)
        })
    });
    match r {
        Ok((a, n)) => {
            // SAFETY: two pushes into the slots Lua gives a C function;
            // neither allocates.
            unsafe {
                lua_pushlightuserdata(l, a as *mut c_void);
                lua_pushinteger(l, n as lua_Integer);
            }
            2
        }
        // SAFETY: nothing with a destructor is alive (the text is moved).
        Err(e) => unsafe { raise_here(l, e) },
    }
}

/// `nextid(id)`: the next channel id of the same harbor (+256, 31 bits).
unsafe extern "C-unwind" fn lnextid(l: State) -> c_int {
    // SAFETY: Lua calls it with its live state; the check raises with
    // nothing to drop.
    unsafe {
        let id = luaL_checkinteger(l, 1) as u32;
        lua_pushinteger(l, (id.wrapping_add(256) & 0x7fff_ffff) as lua_Integer);
    }
    1
}

/// `live()` -> packages alive in the process (a diagnostic for memory
/// checks; not in skynet's module).
unsafe extern "C-unwind" fn llive(l: State) -> c_int {
    // SAFETY: a push into the slots Lua gives a C function.
    unsafe { lua_pushinteger(l, live_count() as lua_Integer) };
    1
}

#[cfg(test)]
mod tests {
    use super::super::stm::test_service::Svc;
    use super::*;

    /// A delivery as multicastd sends it: the holder's 8 bytes, now a block
    /// of the subscriber's own (the message being dispatched).
    fn deliver(to: &Svc, holder_bytes: &[u8]) -> usize {
        // SAFETY: no Lua code of that state runs meanwhile.
        unsafe { (*to.sh.buffers.get()).insert(holder_bytes.to_vec()) }
    }

    fn id_of(hub: &Svc, holder: &str) -> u64 {
        let s = hub.ok(&format!(
            "return string.unpack('=I8', core.tostring(ptr({holder}), 8))"
        ));
        s.split(' ').next().unwrap().parse::<i64>().unwrap() as u64
    }

    #[test]
    fn one_package_reaches_every_subscriber_and_is_freed_by_the_last() {
        let publisher = Svc::new();
        let hub = Svc::new();
        let subs = [Svc::new(), Svc::new(), Svc::new()];
        let holder =
            publisher.ok("local h, sz = mc.pack(core.pack('hello', 7)) return addr(h), sz");
        let (holder, sz) = holder.split_once(' ').unwrap();
        assert_eq!(sz, "8");
        assert_eq!(publisher.sh_owned(), 0, "the packed message was taken over");
        // multicastd: read the holder, bind one reference per subscriber
        let id = id_of(&hub, holder);
        let bytes = id.to_ne_bytes();
        let pkg = hub.ok(&format!("return addr(mc.bind(ptr({holder}), 3))"));
        assert_eq!(pkg.parse::<i64>().unwrap() as u64, id);
        hub.end_message();
        let (data, size) = payload(id).unwrap();
        for s in &subs {
            let m = deliver(s, &bytes);
            let got = s.ok(&format!(
                "local pkg, msg, sz = mc.unpack(ptr({m}), 8)
                 assert(addr(msg) == {data} and sz == {size})
                 local r = table.pack(core.unpack(msg, sz))
                 mc.close(pkg)
                 return r[1], r[2]"
            ));
            assert_eq!(got, "hello 7");
        }
        assert!(payload(id).is_none(), "the last close frees the package");
        // Each subscriber pinned the payload for its message only.
        assert!(SharedBlock::find(data).is_some());
        for s in &subs {
            s.end_message();
        }
        assert!(SharedBlock::find(data).is_none_or(|b| b.bytes().len() != size));
    }

    #[test]
    fn misuse_is_an_error_not_a_crash() {
        let p = Svc::new();
        let h = p.ok("return addr((mc.pack('abc')))");
        let id = id_of(&p, &h);
        let e = p.err(&format!("mc.bind(ptr({h}), 0)"));
        assert!(e.contains("Invalid multicast package reference 0"), "{e}");
        let e = p.err(&format!("mc.close(ptr({}))", id as i64));
        assert!(e.contains("never bound"), "{e}");
        p.ok(&format!("mc.bind(ptr({h}), 1)"));
        let e = p.err(&format!("mc.bind(ptr({h}), 1)"));
        assert!(e.contains("more than once"), "{e}");
        let e = p.err(&format!("mc.remote(ptr({h}))"));
        assert!(e.contains("bound already"), "{e}");
        p.ok(&format!("mc.close(ptr({}))", id as i64));
        let e = p.err(&format!("mc.close(ptr({}))", id as i64));
        assert!(e.contains("unknown package"), "{e}");
        let e = p.err("mc.close(ptr(12345))");
        assert!(e.contains("unknown package"), "{e}");
        let e = p.err("mc.close('x')");
        assert!(e.contains("need a lightuserdata"), "{e}");
        let e = p.err(&format!("mc.unpack(ptr({h}), 4)"));
        assert!(e.contains("Invalid multicast package size 4"), "{e}");
        let e = p.err("mc.unpack(ptr(4096), 8)");
        assert!(e.contains("invalid pointer"), "{e}");
        let e = p.err(&format!("mc.unpack({:?}, 8)", "\0".repeat(8)));
        assert!(e.contains("unknown package"), "{e}");
        let e = p.err("mc.pack({})");
        assert!(e.contains("need a string or a message pointer"), "{e}");
        let e = p.err("mc.bind(ptr(4096), 1)");
        assert!(e.contains("invalid pointer"), "{e}");
    }

    #[test]
    fn remote_gives_the_payload_back_as_a_block_of_the_service() {
        let p = Svc::new();
        let h = p.ok("H = mc.pack(core.pack('far', 1)) return addr(H)");
        let id = id_of(&p, &h);
        assert_eq!(
            p.ok("local m, sz = mc.remote(H) M, SZ = m, sz return core.unpack(m, sz)"),
            "far 1"
        );
        assert!(payload(id).is_none(), "remote releases the package");
        assert_eq!(p.sh_owned(), 1, "the payload is the service's to send");
        p.ok("core.trash(M, SZ)");
        let e = p.err("mc.remote(H)");
        assert!(
            e.contains("unknown package") || e.contains("invalid pointer"),
            "{e}"
        );
        // packremote takes the current message over (no copy)
        let m = deliver(&p, b"raw bytes from afar");
        let h = p.ok(&format!("return addr((mc.packremote(ptr({m}), 19)))"));
        assert_eq!(p.sh_owned(), 0);
        let id = id_of(&p, &h);
        assert_eq!(payload(id).unwrap().0, m, "same bytes, same address");
    }

    #[test]
    fn undeliverable_deliveries_give_their_reference_back() {
        let p = Svc::new();
        let h = p.ok("return addr((mc.pack('x')))");
        let id = id_of(&p, &h);
        p.ok(&format!("mc.bind(ptr({h}), 3)"));
        release_undelivered(&id.to_ne_bytes());
        release_undelivered(&(id ^ 1).to_ne_bytes());
        release_undelivered(b"not a delivery");
        assert!(payload(id).is_some());
        p.ok(&format!("mc.close(ptr({}))", id as i64));
        release_undelivered(&id.to_ne_bytes());
        assert!(payload(id).is_none());
        // an unbound package is not touched (its holder is still in use)
        let h = p.ok("return addr((mc.pack('y')))");
        let id = id_of(&p, &h);
        release_undelivered(&id.to_ne_bytes());
        assert!(payload(id).is_some());
    }

    #[test]
    fn channel_ids_keep_their_harbor_byte() {
        let p = Svc::new();
        assert_eq!(p.ok("return mc.nextid(2)"), "258");
        assert_eq!(p.ok("return mc.nextid(0x7fffff02)"), "2");
        assert_eq!(p.ok("return mc.nextid(0xffffff01)"), "1");
    }
}
