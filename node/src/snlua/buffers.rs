//! Ownership of message buffers that Lua code sees as `lightuserdata, size`.
//!
//! skynet hands Lua raw C pointers: the kernel frees an incoming message after
//! the callback returns, `pack` returns a malloc'd block that `send` hands over
//! and `trash` frees. Here every such block is a `Vec<u8>` owned by the service,
//! keyed by its address. Lua only ever holds the address; `send`, `redirect`,
//! `unpack`, `tostring` and `trash` look it up, so a stale or forged pointer is
//! an error, never a use-after-free. Blocks still owned when the service dies are
//! freed with it.
//!
//! A native reader that runs Lua code while it reads a block (`unpack` builds
//! tables and strings, and any allocation may run a finalizer) lends the block
//! first ([`Buffers::lend`]): a finalizer that sends or trashes it meanwhile
//! gets a copy, and the original stays in place until the loan ends.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Addresses are already well spread; hashing them again is wasted time.
#[derive(Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | *b as u64;
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

#[derive(Default)]
pub struct Buffers {
    /// The message being dispatched (the common case, kept out of the map).
    current: Option<(usize, Vec<u8>)>,
    owned: HashMap<usize, Vec<u8>, BuildHasherDefault<AddrHasher>>,
    /// Addresses of blocks lent to native readers (a stack: loans nest).
    lent: Vec<usize>,
    /// Lent blocks that were taken during their loan: kept, unchanged, until
    /// no loan is left.
    retired: Vec<Vec<u8>>,
}

fn addr(v: &[u8]) -> usize {
    v.as_ptr() as usize
}

impl Buffers {
    /// Takes ownership of a block and returns its address (0 for an empty block,
    /// which Lua sees as NULL).
    pub fn insert(&mut self, v: Vec<u8>) -> usize {
        if v.is_empty() {
            return 0;
        }
        let a = addr(&v);
        self.owned.insert(a, v);
        a
    }

    /// Makes `v` the message being dispatched; returns its address.
    pub fn set_current(&mut self, v: Vec<u8>) -> usize {
        if v.is_empty() {
            self.current = None;
            return 0;
        }
        let a = addr(&v);
        self.current = Some((a, v));
        a
    }

    /// After the callback: frees the current message, or (forward mode) leaves it
    /// to the Lua code, which must redirect or trash it. No native read spans
    /// two messages: loans that a Lua error cut short end here.
    pub fn finish_current(&mut self, keep: bool) {
        if let Some((a, v)) = self.current.take() {
            if keep {
                self.owned.insert(a, v);
            }
        }
        self.lent.clear();
        self.retired.clear();
    }

    /// Borrows the block at `a`.
    pub fn get(&self, a: usize) -> Option<&[u8]> {
        match &self.current {
            Some((c, v)) if *c == a => Some(v),
            _ => self.owned.get(&a).map(|v| v.as_slice()),
        }
    }

    /// Takes the block at `a` out (send / redirect / trash). A lent block
    /// is taken as a copy; its bytes stay where they are until the loan ends.
    pub fn take(&mut self, a: usize) -> Option<Vec<u8>> {
        let v = (if matches!(&self.current, Some((c, _)) if *c == a) {
            self.current.take().map(|(_, v)| v)
        } else {
            self.owned.remove(&a)
        })?;
        if !self.lent.is_empty() && self.lent.contains(&a) {
            let copy = v.clone();
            self.retired.push(v);
            return Some(copy);
        }
        Some(v)
    }

    /// Lends the block at `a` to a native reader: its bytes (`sz` at most)
    /// stay valid and unchanged until [`Buffers::end_loan`] (or the end of
    /// the message), whatever Lua code runs meanwhile. None if there is no
    /// such block or it is shorter than `sz`.
    pub fn lend(&mut self, a: usize, sz: usize) -> Option<(*const u8, usize)> {
        let b = self.get(a)?;
        if sz > b.len() {
            return None;
        }
        let ptr = b.as_ptr();
        self.lent.push(a);
        Some((ptr, sz))
    }

    /// Ends the latest loan of `a`; once no loan is left, blocks taken during
    /// loans are freed.
    pub fn end_loan(&mut self, a: usize) {
        if let Some(i) = self.lent.iter().rposition(|x| *x == a) {
            self.lent.remove(i);
        }
        if self.lent.is_empty() {
            self.retired.clear();
        }
    }

    /// Blocks owned by Lua code (not counting the current message).
    pub fn owned_count(&self) -> usize {
        self.owned.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_moves_once() {
        let mut b = Buffers::default();
        let a = b.insert(vec![1, 2, 3]);
        assert_eq!(b.get(a), Some(&[1u8, 2, 3][..]));
        assert_eq!(b.take(a), Some(vec![1, 2, 3]));
        assert_eq!(b.take(a), None, "a block cannot be taken twice");
        assert_eq!(b.get(a), None);
        assert_eq!(b.insert(Vec::new()), 0);
    }

    #[test]
    fn a_lent_block_outlives_its_taking() {
        let mut b = Buffers::default();
        let a = b.set_current(vec![5; 8]);
        let (ptr, n) = b.lend(a, 8).unwrap();
        assert_eq!((ptr as usize, n), (a, 8));
        assert!(b.lend(a, 9).is_none(), "longer than the block");
        b.end_loan(a);
        let (ptr, _) = b.lend(a, 8).unwrap();
        // Taken during the loan: the taker gets a copy, the bytes stay.
        let taken = b.take(a).unwrap();
        assert_eq!(taken, vec![5; 8]);
        assert_ne!(taken.as_ptr(), ptr, "a copy");
        assert!(b.get(a).is_none(), "taken all the same");
        assert!(b.take(a).is_none());
        // SAFETY: the loan of `a` is still open: its bytes are retired, not freed.
        assert_eq!(unsafe { std::slice::from_raw_parts(ptr, 8) }, &[5; 8]);
        b.end_loan(a);
        assert!(b.retired.is_empty());
        // A loan that was never ended ends with the message.
        let a = b.insert(vec![1; 4]);
        b.lend(a, 4).unwrap();
        drop(b.take(a));
        assert_eq!(b.retired.len(), 1);
        b.finish_current(false);
        assert!(b.retired.is_empty() && b.lent.is_empty());
        // Unlent blocks move out as they are.
        let a = b.insert(vec![2; 4]);
        assert_eq!(b.take(a).map(|v| v.as_ptr() as usize), Some(a));
    }

    #[test]
    fn current_message_is_freed_unless_kept() {
        let mut b = Buffers::default();
        let a = b.set_current(vec![9; 4]);
        assert!(b.get(a).is_some());
        b.finish_current(false);
        assert!(b.get(a).is_none());
        let a = b.set_current(vec![7; 4]);
        b.finish_current(true);
        assert_eq!(b.get(a), Some(&[7u8; 4][..]));
        assert_eq!(b.owned_count(), 1);
    }
}
