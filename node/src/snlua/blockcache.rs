//! Small blocks a Lua state freed while one message was being dispatched,
//! kept for its next allocations of the same size class.
//!
//! Lua code that builds and drops many small objects in one message (tables
//! and strings of `skynet.unpack`, say) sends malloc down its slower paths on
//! every free; a state's own free lists serve those allocations with a few
//! loads and stores. The cache holds at most [`BUDGET`] bytes and is emptied
//! back to malloc after every message ([`BlockCache::flush`]), so an idle
//! service keeps nothing in it and memory per service does not change.
//!
//! Sizes: class `c` holds blocks of capacity `16c - 8` bytes (malloc's usable
//! sizes), up to [`MAX_SMALL`]. Every small block is allocated (and
//! reallocated) with its class capacity, so any block freed with a size of
//! class `c` can serve any later request of class `c`.
//!
//! Only the thread running the state touches its cache (as with the state
//! itself), which is what makes the unsynchronized access sound.

use std::cell::UnsafeCell;
use std::ffi::c_void;

/// Largest request served from the cache.
pub const MAX_SMALL: usize = 504;
const CLASSES: usize = (MAX_SMALL + 8) / 16;
const _: () = assert!(CLASSES < 64, "class bits must fit the `used` mask");
/// Bytes the cache may hold at once.
pub const BUDGET: usize = 64 * 1024;

/// The class of a small request (1-based).
fn class(n: usize) -> usize {
    (n + 23) / 16
}

/// What a block of class `c` can hold.
fn capacity(c: usize) -> usize {
    16 * c - 8
}

/// The size to ask malloc for when Lua asks for `n` bytes.
pub fn request_size(n: usize) -> usize {
    if n <= MAX_SMALL {
        capacity(class(n))
    } else {
        n
    }
}

/// Pops the first block of an intrusive free list (a free block's first
/// word links the next one); null when the list is empty. Shared with
/// [`super::arena`].
///
/// # Safety
/// `head` heads a list of free blocks of at least a word each, word-aligned,
/// that nothing else uses.
#[inline]
pub(super) unsafe fn list_pop(head: &mut *mut c_void) -> *mut c_void {
    let p = *head;
    if !p.is_null() {
        // SAFETY: `p` is the list's first free block (caller's contract): at
        // least a word, aligned, and its first word holds the next link.
        *head = unsafe { *(p as *mut *mut c_void) };
    }
    p
}

/// Pushes the free block `p` on the intrusive list `head`.
///
/// # Safety
/// `p` is a word-aligned block of at least a word that nothing else uses.
#[inline]
pub(super) unsafe fn list_push(head: &mut *mut c_void, p: *mut c_void) {
    // SAFETY: `p` is ours, aligned and a word long at least (caller's
    // contract); its first word becomes the link.
    unsafe { *(p as *mut *mut c_void) = *head };
    *head = p;
}

struct Lists {
    /// Free-list heads per class; a free block's first word links the next.
    heads: [*mut c_void; CLASSES + 1],
    /// Bit `c` set: class `c` may hold blocks (flush visits only those).
    used: u64,
    bytes: usize,
}

pub struct BlockCache(UnsafeCell<Lists>);

// SAFETY: every method that reads or writes the lists is `unsafe`, and its
// contract is that no other thread uses the cache during the call (the
// caller is the thread running the owning state, module doc); so a shared
// `&BlockCache` on other threads can do nothing that races.
unsafe impl Sync for BlockCache {}
// SAFETY: the lists hold raw pointers to malloc blocks that belong to the
// cache alone (no thread-local state): the thread that runs the state next
// may free or reuse them.
unsafe impl Send for BlockCache {}

impl Default for BlockCache {
    fn default() -> Self {
        BlockCache(UnsafeCell::new(Lists {
            heads: [std::ptr::null_mut(); CLASSES + 1],
            used: 0,
            bytes: 0,
        }))
    }
}

impl BlockCache {
    /// A cached block for `n` bytes, if one is there.
    ///
    /// # Safety
    /// No other thread uses the cache during the call (it is the thread
    /// running the state).
    #[inline]
    pub unsafe fn take(&self, n: usize) -> *mut c_void {
        if n > MAX_SMALL {
            return std::ptr::null_mut();
        }
        // SAFETY: exclusive use during this call (contract); the reference
        // ends with the call.
        let l = unsafe { &mut *self.0.get() };
        let c = class(n);
        // SAFETY: the list of class `c` holds only blocks kept by `keep`,
        // each of capacity(c) >= 8 bytes from malloc, unused while listed.
        let p = unsafe { list_pop(&mut l.heads[c]) };
        if !p.is_null() {
            l.bytes -= capacity(c);
        }
        p
    }

    /// Keeps a block Lua freed with size `n`; false if it must go to malloc.
    ///
    /// # Safety
    /// `p` was allocated with [`request_size`]`(n)` bytes by malloc and
    /// nothing uses it any more; no other thread uses the cache during the
    /// call.
    #[inline]
    pub unsafe fn keep(&self, p: *mut c_void, n: usize) -> bool {
        if n > MAX_SMALL {
            return false;
        }
        // SAFETY: exclusive use during this call (contract).
        let l = unsafe { &mut *self.0.get() };
        let c = class(n);
        if l.bytes + capacity(c) > BUDGET {
            return false;
        }
        // SAFETY: `p` is an unused malloc block (16-aligned) of
        // request_size(n) = capacity(c) >= 8 bytes (contract).
        unsafe { list_push(&mut l.heads[c], p) };
        l.used |= 1 << c;
        l.bytes += capacity(c);
        true
    }

    /// Whether a block of size `old` can stay where it is for `new` bytes.
    pub fn same_class(old: usize, new: usize) -> bool {
        old <= MAX_SMALL && new <= MAX_SMALL && class(old) == class(new)
    }

    /// Gives every cached block back to malloc.
    ///
    /// # Safety
    /// No other thread uses the cache during the call (it is the thread
    /// running the state, or owning it when it is closed).
    pub unsafe fn flush(&self) {
        // SAFETY: exclusive use during this call (contract).
        let l = unsafe { &mut *self.0.get() };
        if l.bytes == 0 {
            return;
        }
        while l.used != 0 {
            let c = l.used.trailing_zeros() as usize;
            l.used &= l.used - 1;
            let mut p = l.heads[c];
            while !p.is_null() {
                // SAFETY: `p` is a listed block (from `keep`): malloc's,
                // unused, its first word the link; it is read before the
                // free and never touched after.
                let next = unsafe { *(p as *mut *mut c_void) };
                // SAFETY: as above; each listed block is freed exactly once
                // (the head is reset below).
                unsafe { libc::free(p) };
                p = next;
            }
            l.heads[c] = std::ptr::null_mut();
        }
        l.bytes = 0;
    }
}

impl Drop for BlockCache {
    fn drop(&mut self) {
        // SAFETY: dropping means no thread can reach the cache any more.
        unsafe { self.flush() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_their_requests() {
        for n in 1..=MAX_SMALL {
            let c = class(n);
            assert!(capacity(c) >= n, "{n}");
            assert!(c == 1 || capacity(c - 1) < n, "{n}");
            assert!(c <= CLASSES);
        }
        assert_eq!(request_size(40), 40);
        assert_eq!(request_size(41), 56);
        assert_eq!(request_size(MAX_SMALL + 1), MAX_SMALL + 1);
    }

    #[test]
    fn blocks_come_back_by_class_within_the_budget() {
        let cache = BlockCache::default();
        // SAFETY: the cache is this test's alone, on this thread; every block
        // kept is a fresh malloc block of request_size of its size, and each
        // is freed once (by flush or by the test).
        unsafe {
            let a = libc::malloc(request_size(30));
            let b = libc::malloc(request_size(100));
            assert!(cache.keep(a, 30));
            assert!(cache.keep(b, 100));
            // 30 and 40 share a class; 100 does not serve 30.
            assert_eq!(cache.take(40), a);
            assert!(cache.take(30).is_null());
            assert_eq!(cache.take(97), b);
            assert!(!cache.keep(a, MAX_SMALL + 1));
            // Fill to the budget: the next block is refused.
            let mut kept = Vec::new();
            loop {
                let p = libc::malloc(request_size(MAX_SMALL));
                if !cache.keep(p, MAX_SMALL) {
                    libc::free(p);
                    break;
                }
                kept.push(p);
            }
            assert_eq!(kept.len(), BUDGET / capacity(class(MAX_SMALL)));
            cache.flush();
            assert!(cache.take(MAX_SMALL).is_null());
            libc::free(a);
            libc::free(b);
        }
    }
}
