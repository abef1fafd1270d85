//! A Lua state's own heap for its first small blocks: a few chunks taken
//! from malloc, cut into blocks by size class, with a free list per class.
//!
//! Creating a service allocates some three hundred small blocks (tables,
//! closures, strings of `skynet.lua` and its modules) and closing it frees
//! them all; glibc spends about two hundred instructions on each of those
//! (fresh memory, bins sorted and consolidated again after services close),
//! a third of the cost of a `newservice`. Here an allocation is a pop or a
//! pointer bump, a free is a push, and closing the state gives each chunk
//! back with one `free`.
//!
//! Bounds: at most [`CHUNKS`] chunks ([`RESERVE`] bytes in all). Once they
//! are cut up, small blocks come from malloc as before (through the state's
//! [`super::blockcache`]). A block freed into the arena stays with the state
//! for its later allocations of the same class until the state closes, so a
//! service holds at most [`RESERVE`] bytes this way; untouched parts of a
//! chunk cost no memory.
//!
//! Sizes: class `c` holds blocks of `16c` bytes, 16-aligned like malloc's,
//! up to [`MAX_SMALL`] bytes; larger requests never come here.
//!
//! Only the thread running the state touches its arena (as with the state
//! itself), which is what makes the unsynchronized access sound.

use super::blockcache::{list_pop, list_push};
use std::cell::UnsafeCell;
use std::ffi::c_void;

/// Largest request served from the arena.
pub const MAX_SMALL: usize = 512;
const CLASSES: usize = MAX_SMALL / 16;
/// Sizes of the chunks, taken one after the other as the previous is used up.
const CHUNK_SIZES: [usize; CHUNKS] = [16 * 1024, 16 * 1024, 32 * 1024];
pub const CHUNKS: usize = 3;
/// Bytes an arena may take from malloc in all.
pub const RESERVE: usize = 64 * 1024;
const _: () = assert!(CHUNK_SIZES[0] + CHUNK_SIZES[1] + CHUNK_SIZES[2] == RESERVE);

/// The class of a small request (1-based).
fn class(n: usize) -> usize {
    n.div_ceil(16)
}

struct Heap {
    /// Free-list heads per class; a free block's first word links the next.
    heads: [*mut c_void; CLASSES + 1],
    /// Where the next fresh block is cut, and the end of the current chunk.
    bump: *mut u8,
    end: *mut u8,
    /// The chunks taken so far: `[start, end)` each.
    chunks: [(usize, usize); CHUNKS],
    taken: usize,
}

pub struct Arena(UnsafeCell<Heap>);

// SAFETY: every method that writes the heap is `unsafe`, and its contract is
// that no other thread uses the arena during the call (the caller is the
// thread running the owning state, module doc); `owns`, the one safe method
// that reads it, therefore never runs alongside a write.
unsafe impl Sync for Arena {}
// SAFETY: the heap is raw pointers into malloc chunks that belong to the
// arena alone (no thread-local state): the thread that runs the state next
// may cut, reuse or free them.
unsafe impl Send for Arena {}

impl Default for Arena {
    fn default() -> Self {
        Arena(UnsafeCell::new(Heap {
            heads: [std::ptr::null_mut(); CLASSES + 1],
            bump: std::ptr::null_mut(),
            end: std::ptr::null_mut(),
            chunks: [(0, 0); CHUNKS],
            taken: 0,
        }))
    }
}

impl Arena {
    /// A block for `n` bytes (`0 < n`), or null when `n` is not small or the
    /// arena is used up (the caller asks malloc then).
    ///
    /// # Safety
    /// No other thread uses the arena during the call (it is the thread
    /// running the state).
    #[inline]
    pub unsafe fn take(&self, n: usize) -> *mut c_void {
        if n > MAX_SMALL {
            return std::ptr::null_mut();
        }
        // SAFETY: exclusive use during this call (contract).
        let h = unsafe { &mut *self.0.get() };
        let c = class(n);
        // SAFETY: the list of class `c` holds only arena blocks of 16c bytes
        // (16-aligned) given back by `give_owned`, unused while listed.
        let p = unsafe { list_pop(&mut h.heads[c]) };
        if !p.is_null() {
            return p;
        }
        let size = 16 * c;
        if (h.end as usize) - (h.bump as usize) < size && !h.next_chunk() {
            return std::ptr::null_mut();
        }
        let p = h.bump;
        // SAFETY: `size` bytes are left between `bump` and `end`, the end of
        // the current chunk (checked just above), so the sum stays inside
        // it or one past its end.
        h.bump = unsafe { p.add(size) };
        p as *mut c_void
    }

    /// Whether `p`, a block Lua holds with size `n`, came from the arena.
    #[inline]
    pub fn owns(&self, p: *mut c_void, n: usize) -> bool {
        if n > MAX_SMALL {
            return false;
        }
        // SAFETY: writes happen only in the `unsafe` methods, whose callers
        // guarantee no other thread uses the arena meanwhile (see the Sync
        // impl): this shared borrow cannot overlap a write.
        let h = unsafe { &*self.0.get() };
        let a = p as usize;
        h.chunks[..h.taken]
            .iter()
            .any(|&(start, end)| a >= start && a < end)
    }

    /// Takes back a block of size `n` if it came from the arena; false if it
    /// did not (it is malloc's).
    ///
    /// # Safety
    /// `p` is a live block of size `n` that Lua frees (nothing uses it
    /// after); no other thread uses the arena during the call.
    #[inline]
    pub unsafe fn give(&self, p: *mut c_void, n: usize) -> bool {
        if !self.owns(p, n) {
            return false;
        }
        // SAFETY: `p` is the arena's (just checked) and freed by its user;
        // the thread contract is ours.
        unsafe { self.give_owned(p, n) };
        true
    }

    /// Takes back a block of size `n` known to be the arena's
    /// ([`Self::owns`]).
    ///
    /// # Safety
    /// As for [`Self::give`], and `p` came from the arena (for size `n`).
    #[inline]
    pub unsafe fn give_owned(&self, p: *mut c_void, n: usize) {
        // SAFETY: exclusive use during this call (contract).
        let h = unsafe { &mut *self.0.get() };
        // SAFETY: `p` is an arena block of class(n): 16-aligned, 16c >= 16
        // bytes, and unused from now on (contract).
        unsafe { list_push(&mut h.heads[class(n)], p) };
    }

    /// Whether an arena block of size `old` can stay where it is for `new`.
    pub fn same_class(old: usize, new: usize) -> bool {
        new <= MAX_SMALL && class(old) == class(new)
    }

    /// Gives the chunks back to malloc.
    ///
    /// # Safety
    /// No block of the arena is used any more (the state is closed), and no
    /// other thread reaches it.
    pub unsafe fn release(&self) {
        // SAFETY: no other thread reaches the arena (contract).
        let h = unsafe { &mut *self.0.get() };
        for &(start, _) in &h.chunks[..h.taken] {
            // SAFETY: each recorded chunk came from malloc in `next_chunk`
            // and is freed once: the heap is reset below, with no chunks.
            unsafe { libc::free(start as *mut c_void) };
        }
        *h = Heap {
            heads: [std::ptr::null_mut(); CLASSES + 1],
            bump: std::ptr::null_mut(),
            end: std::ptr::null_mut(),
            // Counted as used up (and owning nothing): anything allocated
            // after this comes from malloc.
            chunks: [(0, 0); CHUNKS],
            taken: CHUNKS,
        };
    }
}

impl Heap {
    /// Starts cutting the next chunk; false when there is none to take.
    fn next_chunk(&mut self) -> bool {
        if self.taken == CHUNKS {
            return false;
        }
        let size = CHUNK_SIZES[self.taken];
        // SAFETY: malloc has no precondition (null is handled below); its
        // blocks are 16-aligned on the supported targets, which the blocks
        // cut from the chunk (multiples of 16) keep.
        let p = unsafe { libc::malloc(size) } as *mut u8;
        if p.is_null() {
            return false;
        }
        // The rest of the previous chunk (smaller than the block asked for)
        // is left unused.
        self.chunks[self.taken] = (p as usize, p as usize + size);
        self.taken += 1;
        self.bump = p;
        // SAFETY: `p` starts an allocation of `size` bytes: the sum is one
        // past its end.
        self.end = unsafe { p.add(size) };
        true
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: dropping means no thread can reach the arena, and the
        // state it served is closed (its owner closes it first).
        unsafe { self.release() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_cut_by_class_and_reused() {
        let arena = Arena::default();
        // SAFETY: the arena is this test's alone, on this thread; blocks are
        // given back once, with the size they were taken for or a size of
        // the same class.
        unsafe {
            let a = arena.take(1);
            let b = arena.take(16);
            let c = arena.take(17);
            assert!(!a.is_null() && !b.is_null() && !c.is_null());
            for p in [a, b, c] {
                assert_eq!(p as usize % 16, 0);
            }
            // Fresh blocks follow each other at their class size.
            assert_eq!(b as usize - a as usize, 16);
            assert_eq!(c as usize - b as usize, 16);
            assert!(arena.owns(c, 17));
            assert!(!arena.owns(c, MAX_SMALL + 1));
            // A freed block serves the next request of its class only.
            assert!(arena.give(c, 17));
            assert_ne!(arena.take(16), c);
            assert_eq!(arena.take(32), c);
            // malloc's blocks are not the arena's.
            let m = libc::malloc(64);
            assert!(!arena.owns(m, 64));
            assert!(!arena.give(m, 64));
            libc::free(m);
            assert!(arena.take(MAX_SMALL + 1).is_null());
            assert!(Arena::same_class(17, 32));
            assert!(!Arena::same_class(16, 17));
            assert!(!Arena::same_class(500, MAX_SMALL + 1));
        }
    }

    #[test]
    fn the_arena_stops_at_its_reserve() {
        let arena = Arena::default();
        // SAFETY: the arena is this test's alone, on this thread; each block
        // is written within its MAX_SMALL bytes, and none is used after
        // `release`.
        unsafe {
            let mut blocks = Vec::new();
            loop {
                let p = arena.take(MAX_SMALL);
                if p.is_null() {
                    break;
                }
                // Every byte of a block is usable.
                std::ptr::write_bytes(p as *mut u8, 0xa5, MAX_SMALL);
                blocks.push(p);
            }
            assert_eq!(blocks.len(), RESERVE / MAX_SMALL);
            let mut sorted = blocks.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), blocks.len(), "no block handed out twice");
            assert!(arena.take(16).is_null(), "used up: small ones too");
            // A freed block still comes back.
            assert!(arena.give(blocks[7], MAX_SMALL));
            assert_eq!(arena.take(MAX_SMALL - 3), blocks[7]);
            arena.release();
            assert!(!arena.owns(blocks[0], MAX_SMALL));
        }
    }
}
