//! Byte blocks as skynet's C modules take them from Lua, and blocks shared by
//! the services of the process.
//!
//! skynet's C modules accept a message either as a string or as
//! `lightuserdata, size`, and some of them (multicast, stm) hand out pointers
//! into memory that several services read at once. Here a service's own
//! blocks live in its [`Buffers`](super::buffers::Buffers); a block shared
//! between services is a [`SharedBlock`], found by address in a process-wide
//! table ([`Live`]). [`bytes_arg`] resolves either, so a stale or forged
//! pointer is a Lua error, never a read of freed memory. A shared block that
//! a service reads is pinned in that service until its current message ends
//! ([`super::Shared::pin`]), so the block outlives every use that message
//! makes of it, even when a Lua error cuts the use short.

use super::buffers::Buffers;
use super::lua::*;
use super::Shared;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::ffi::c_int;
use std::sync::{Arc, LazyLock, Weak};

/// Native objects that Lua code passes around as lightuserdata, by address.
///
/// An object registers itself when it is made and is forgotten when its last
/// `Arc` goes; [`Live::find`] gives a new `Arc` only while the object lives.
pub struct Live<T> {
    map: RwLock<HashMap<usize, Weak<T>>>,
}

impl<T> Default for Live<T> {
    fn default() -> Self {
        Live {
            map: RwLock::new(HashMap::new()),
        }
    }
}

impl<T> Live<T> {
    /// Makes `obj` findable by its address; returns that address.
    pub fn register(&self, obj: &Arc<T>) -> usize {
        let a = Arc::as_ptr(obj) as usize;
        self.map.write().insert(a, Arc::downgrade(obj));
        a
    }

    /// The live object at `addr`.
    pub fn find(&self, addr: usize) -> Option<Arc<T>> {
        self.map.read().get(&addr).and_then(Weak::upgrade)
    }

    /// Forgets `addr` (from the object's `Drop`). An entry that a newer object
    /// at the same address replaced is kept.
    pub fn forget(&self, addr: usize) {
        let mut map = self.map.write();
        if map.get(&addr).is_some_and(|w| w.strong_count() == 0) {
            map.remove(&addr);
        }
    }

    /// How many objects are registered (tests, memory checks).
    pub fn len(&self) -> usize {
        self.map.read().len()
    }
}

/// An immutable block of bytes that several services may read at once. Lua
/// sees it as `lightuserdata` (the address of its first byte) and a size.
pub struct SharedBlock {
    bytes: Box<[u8]>,
}

static SHARED_BLOCKS: LazyLock<Live<SharedBlock>> = LazyLock::new(Live::default);

/// Blocks that a service handed to others (see [`SharedBlock::hand_over`]),
/// by address, until one of them trashes it.
static HANDED: LazyLock<Mutex<HashMap<usize, Arc<SharedBlock>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl SharedBlock {
    /// A new block, findable by [`SharedBlock::address`] until it is dropped.
    /// An empty block has no address (Lua sees NULL) and is never found.
    pub fn new(bytes: Vec<u8>) -> Arc<SharedBlock> {
        let block = Arc::new(SharedBlock {
            bytes: bytes.into_boxed_slice(),
        });
        if !block.bytes.is_empty() {
            SHARED_BLOCKS
                .map
                .write()
                .insert(block.bytes.as_ptr() as usize, Arc::downgrade(&block));
        }
        block
    }

    /// The address Lua sees (0 for an empty block).
    pub fn address(&self) -> usize {
        if self.bytes.is_empty() {
            0
        } else {
            self.bytes.as_ptr() as usize
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The live shared block whose first byte is at `addr`.
    pub fn find(addr: usize) -> Option<Arc<SharedBlock>> {
        if addr == 0 {
            return None;
        }
        SHARED_BLOCKS.find(addr)
    }

    /// Shared blocks alive in the process (tests).
    pub fn live_count() -> usize {
        SHARED_BLOCKS.len()
    }

    /// A service's own block given away inside a message: skynet code packs
    /// a `skynet.pack` pointer into a call to another service, which unpacks
    /// and trashes it (sharetable's `loadtable` does). From now on any
    /// service can read it, and the first `trash` of its address frees it.
    /// Returns its address (0 for an empty block).
    pub fn hand_over(bytes: Vec<u8>) -> usize {
        let block = SharedBlock::new(bytes);
        let a = block.address();
        if a != 0 {
            HANDED.lock().insert(a, block);
        }
        a
    }

    /// Frees the handed block at `addr` (readers that pinned it keep it
    /// until their message ends). False if there is none.
    pub fn release_handed(addr: usize) -> bool {
        let block = HANDED.lock().remove(&addr);
        block.is_some()
    }
}

impl Drop for SharedBlock {
    fn drop(&mut self) {
        if !self.bytes.is_empty() {
            SHARED_BLOCKS.forget(self.bytes.as_ptr() as usize);
        }
    }
}

/// Why (`p`, `sz`) arguments cannot hand one of the service's own blocks
/// over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnBlockError {
    /// `p` names no block of this service.
    NotOwned,
    /// The size is negative or larger than the block.
    Size { sz: i64, len: usize },
}

impl OwnBlockError {
    /// The error text: `not_owned` (each caller names its argument) or the
    /// size problem.
    pub fn text(self, not_owned: &str) -> String {
        match self {
            OwnBlockError::NotOwned => not_owned.to_string(),
            OwnBlockError::Size { sz, len } => {
                format!("invalid message size {sz} (the block has {len} bytes)")
            }
        }
    }
}

/// The check half of handing one of the service's own blocks over (a
/// message to send, data for a socket): `p` must name a block of `bufs`
/// holding at least `sz >= 0` bytes; returns the size. Callers check every
/// argument this way before anything changes hands, since a Lua error after
/// the take would lose the block, then call [`take_own_block`].
pub fn check_own_block(bufs: &Buffers, p: usize, sz: i64) -> Result<usize, OwnBlockError> {
    let len = bufs.get(p).ok_or(OwnBlockError::NotOwned)?.len();
    if sz < 0 || sz as usize > len {
        return Err(OwnBlockError::Size { sz, len });
    }
    Ok(sz as usize)
}

/// The take half: the block at `p` (checked by [`check_own_block`]) cut to
/// `sz` bytes; the service no longer owns it. Empty if there is none.
pub fn take_own_block(bufs: &mut Buffers, p: usize, sz: usize) -> Vec<u8> {
    let mut v = bufs.take(p).unwrap_or_default();
    v.truncate(sz);
    v
}

/// The bytes of a block named by the address `p` with `sz` bytes: one of the
/// service's own blocks, or a shared block (pinned until the message ends).
/// `Err` names the problem; `what` starts the text.
///
/// # Safety
/// Called on the thread running the service, with no borrow of its buffers
/// alive. The bytes of a shared block stay valid until the message ends;
/// those of one of the service's own blocks until the block is taken and
/// dropped, so a caller that runs Lua code while it reads them (a finalizer
/// may trash the block) lends the block first ([`Buffers::lend`]) or copies.
#[inline]
pub unsafe fn block_at<'a>(
    sh: &'a Shared,
    p: usize,
    sz: i64,
    what: &str,
) -> Result<&'a [u8], String> {
    if sz > 0 && p != 0 {
        // SAFETY: this thread runs the service and no other borrow of its
        // buffers is alive (contract); the slice points into the block's
        // heap memory, which outlives this borrow as the contract says.
        let own: Option<&'a [u8]> = unsafe { (*sh.buffers.get()).get(p) };
        let block = match own {
            Some(b) => Some(b),
            // SAFETY: this thread runs the service; the pin keeps the block
            // alive until the message ends, which the contract passes on.
            None => SharedBlock::find(p).map(|b| unsafe { sh.pin(b) }),
        };
        if let Some(b) = block {
            if sz as usize <= b.len() {
                return Ok(&b[..sz as usize]);
            }
        }
    } else if sz == 0 {
        return Ok(&[]);
    }
    // SAFETY: block_at's contract is block_error's.
    Err(unsafe { block_error(sh, p, sz, what) })
}

/// What is wrong with the block argument (`p`, `sz`).
///
/// # Safety
/// As for [`block_at`]: the service's thread, no borrow of its buffers
/// alive.
#[cold]
#[inline(never)]
unsafe fn block_error(sh: &Shared, p: usize, sz: i64, what: &str) -> String {
    if p == 0 {
        return format!("{what}: null pointer with size {sz}");
    }
    if sz < 0 {
        return format!("{what}: invalid size {sz}");
    }
    // SAFETY: the service's thread with no other borrow of its buffers
    // alive (contract); this one ends with the statement.
    let own = unsafe { (*sh.buffers.get()).get(p).map(<[u8]>::len) };
    let len = match own {
        Some(len) => len,
        None => match SharedBlock::find(p) {
            Some(b) => b.bytes().len(),
            None => return format!("{what}: invalid pointer (not a live message block)"),
        },
    };
    format!("{what}: invalid size {sz} (the block has {len} bytes)")
}

/// A message argument at `idx` as skynet's C modules take one: a string, or
/// a lightuserdata with its size at `idx + 1`. Raises a Lua error naming the
/// problem for anything else. The bytes stay valid while the string is on the
/// stack; for a block, as [`block_at`] says.
///
/// # Safety
/// `l` is the state calling a native function of the service whose
/// `Shared` is `sh`, and [`block_at`]'s contract holds.
pub unsafe fn bytes_arg<'a>(l: State, sh: &'a Shared, idx: c_int, what: &str) -> &'a [u8] {
    // SAFETY: `l` is the calling state (contract); lua_type accepts any
    // index.
    match unsafe { lua_type(l, idx) } {
        // SAFETY: the value at `idx` is a string: valid while on the stack.
        LUA_TSTRING => unsafe { to_bytes(l, idx) }.unwrap_or(&[]),
        LUA_TLIGHTUSERDATA => {
            // SAFETY: luaL_checkinteger raises with nothing to drop; the
            // error text is moved into raise_here, which drops it before the
            // longjmp; block_at's contract is ours.
            unsafe {
                let p = lua_touserdata(l, idx) as usize;
                let sz = luaL_checkinteger(l, idx + 1);
                match block_at(sh, p, sz, what) {
                    Ok(b) => b,
                    Err(e) => raise_here(l, e),
                }
            }
        }
        // SAFETY: nothing with a destructor is alive.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_blocks_are_found_only_while_alive() {
        let b = SharedBlock::new(vec![1, 2, 3]);
        let a = b.address();
        assert_ne!(a, 0);
        assert_eq!(SharedBlock::find(a).unwrap().bytes(), &[1, 2, 3]);
        drop(b);
        // (Another test may have a new block at the freed address.)
        assert!(
            SharedBlock::find(a).is_none_or(|b| b.bytes() != [1, 2, 3]),
            "a dropped block is gone"
        );
        let empty = SharedBlock::new(Vec::new());
        assert_eq!(empty.address(), 0);
        assert!(SharedBlock::find(0).is_none());
    }

    #[test]
    fn handed_blocks_live_until_released() {
        let a = SharedBlock::hand_over(vec![5; 32]);
        assert_ne!(a, 0);
        let b = SharedBlock::find(a).expect("a handed block is found");
        assert_eq!(b.bytes(), &[5; 32]);
        drop(b);
        assert!(SharedBlock::find(a).is_some(), "nobody released it yet");
        assert!(SharedBlock::release_handed(a));
        assert!(!SharedBlock::release_handed(a), "released once");
        assert!(SharedBlock::find(a).is_none_or(|b| b.bytes() != [5; 32]));
        assert_eq!(SharedBlock::hand_over(Vec::new()), 0);
    }

    #[test]
    fn live_objects_by_address() {
        let live: Live<String> = Live::default();
        let s = Arc::new("x".to_string());
        let a = live.register(&s);
        assert_eq!(live.find(a).as_deref().map(|s| s.as_str()), Some("x"));
        assert!(live.find(a + 1).is_none());
        drop(s);
        assert!(live.find(a).is_none(), "a dropped object cannot be found");
        live.forget(a);
        assert_eq!(live.len(), 0);
    }

    #[test]
    fn own_blocks_are_checked_then_taken() {
        let mut bufs = Buffers::default();
        let a = bufs.insert(vec![3; 10]);
        assert_eq!(check_own_block(&bufs, a, 10), Ok(10));
        assert_eq!(check_own_block(&bufs, a, 0), Ok(0));
        let e = check_own_block(&bufs, a, 11).unwrap_err();
        assert_eq!(e, OwnBlockError::Size { sz: 11, len: 10 });
        assert_eq!(
            e.text("unused"),
            "invalid message size 11 (the block has 10 bytes)"
        );
        assert!(matches!(
            check_own_block(&bufs, a, -1),
            Err(OwnBlockError::Size { sz: -1, .. })
        ));
        let e = check_own_block(&bufs, a + 1, 1).unwrap_err();
        assert_eq!(e.text("not mine"), "not mine");
        assert_eq!(check_own_block(&bufs, 0, 0), Err(OwnBlockError::NotOwned));
        assert_eq!(take_own_block(&mut bufs, a, 4), vec![3; 4]);
        assert_eq!(check_own_block(&bufs, a, 4), Err(OwnBlockError::NotOwned));
        assert!(take_own_block(&mut bufs, a, 4).is_empty(), "taken once");
    }

    #[test]
    fn block_arguments_resolve_own_and_shared_blocks() {
        let sh = Shared::detached();
        // SAFETY: this test's Shared, on this thread; no other borrow.
        let own = unsafe { (*sh.buffers.get()).insert(vec![7; 16]) };
        let shared = SharedBlock::new(vec![9; 8]);
        // SAFETY: this thread plays the service's; no borrow of its buffers
        // is alive, and the slices are compared at once.
        unsafe {
            assert_eq!(block_at(&sh, own, 4, "t").unwrap(), &[7; 4]);
            assert_eq!(block_at(&sh, shared.address(), 8, "t").unwrap(), &[9; 8]);
            assert_eq!(block_at(&sh, 0, 0, "t").unwrap(), &[] as &[u8]);
            assert!(block_at(&sh, own, 17, "t")
                .unwrap_err()
                .contains("16 bytes"));
            assert!(block_at(&sh, 0, 1, "t").unwrap_err().contains("null"));
            assert!(block_at(&sh, own + 1, 1, "t")
                .unwrap_err()
                .contains("invalid pointer"));
        }
        // The service pinned the shared block: it lives on until the message ends.
        let a = shared.address();
        drop(shared);
        assert!(SharedBlock::find(a).is_some());
        // SAFETY: the "message" is over: no slice from block_at is used again.
        unsafe { sh.unpin_all() };
        assert!(SharedBlock::find(a).is_none_or(|b| b.bytes() != [9; 8]));
    }
}
