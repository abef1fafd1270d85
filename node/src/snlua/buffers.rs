//! Ownership of message buffers that Lua code sees as `lightuserdata, size`.
//!
//! skynet hands Lua raw C pointers: the kernel frees an incoming message after
//! the callback returns, `pack` returns a malloc'd block that `send` hands over
//! and `trash` frees. Here every such block is a `Vec<u8>` owned by the service,
//! keyed by its address. Lua only ever holds the address; `send`, `redirect`,
//! `unpack`, `tostring` and `trash` look it up, so a stale or forged pointer is
//! an error, never a use-after-free. Blocks still owned when the service dies are
//! freed with it.

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
    /// to the Lua code, which must redirect or trash it.
    pub fn finish_current(&mut self, keep: bool) {
        if let Some((a, v)) = self.current.take() {
            if keep {
                self.owned.insert(a, v);
            }
        }
    }

    /// Borrows the block at `a`.
    pub fn get(&self, a: usize) -> Option<&[u8]> {
        match &self.current {
            Some((c, v)) if *c == a => Some(v),
            _ => self.owned.get(&a).map(|v| v.as_slice()),
        }
    }

    /// Takes the block at `a` out (send / redirect / trash).
    pub fn take(&mut self, a: usize) -> Option<Vec<u8>> {
        if matches!(&self.current, Some((c, _)) if *c == a) {
            return self.current.take().map(|(_, v)| v);
        }
        self.owned.remove(&a)
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
