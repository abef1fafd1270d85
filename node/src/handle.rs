//! The handle registry: which local id belongs to which service, and local `.names`.
//!
//! Ids run from 1 to 0xFFFFFF, increase monotonically and wrap back to 1, skipping
//! ids still in use, so a handle is not reused until the id space wraps (as in
//! skynet). The harbor id of this node fills the top 8 bits of every handle.

use parking_lot::RwLock;
use skynet_proto::handle::{Handle, HARBOR_SHIFT, LOCAL_MASK};
use std::collections::{BTreeMap, HashMap};

/// Maps handles to entries of type `T` (the kernel stores its service contexts).
pub struct HandleRegistry<T> {
    harbor: u32,
    inner: RwLock<Inner<T>>,
}

struct Inner<T> {
    next: u32,
    slots: HashMap<u32, T>,
    names: BTreeMap<String, u32>,
}

impl<T: Clone> HandleRegistry<T> {
    /// A registry for node `harbor` (0..=255).
    pub fn new(harbor: u8) -> Self {
        HandleRegistry {
            harbor: (harbor as u32) << HARBOR_SHIFT,
            inner: RwLock::new(Inner {
                next: 1,
                slots: HashMap::new(),
                names: BTreeMap::new(),
            }),
        }
    }

    /// This node's harbor id, the high byte of every handle it registers.
    pub fn harbor(&self) -> u8 {
        Handle(self.harbor).harbor()
    }

    /// Allocates a handle and stores the entry `make(handle)` under it.
    /// Returns `None` only when all 16 M ids are taken.
    pub fn register(&self, make: impl FnOnce(u32) -> T) -> Option<u32> {
        let mut inner = self.inner.write();
        if inner.slots.len() >= LOCAL_MASK as usize {
            return None;
        }
        let mut id = inner.next;
        while inner.slots.contains_key(&(id | self.harbor)) {
            id = if id >= LOCAL_MASK { 1 } else { id + 1 };
        }
        inner.next = if id >= LOCAL_MASK { 1 } else { id + 1 };
        let handle = id | self.harbor;
        let entry = make(handle);
        inner.slots.insert(handle, entry);
        Some(handle)
    }

    /// The entry of `handle`, if it is alive.
    pub fn grab(&self, handle: u32) -> Option<T> {
        self.inner.read().slots.get(&handle).cloned()
    }

    /// Removes `handle` and every local name bound to it; returns its entry.
    pub fn retire(&self, handle: u32) -> Option<T> {
        let mut inner = self.inner.write();
        let entry = inner.slots.remove(&handle)?;
        inner.names.retain(|_, h| *h != handle);
        Some(entry)
    }

    /// Every live handle, in no particular order.
    pub fn handles(&self) -> Vec<u32> {
        self.inner.read().slots.keys().copied().collect()
    }

    /// Handle bound to the local name (without its leading '.').
    pub fn find_name(&self, name: &str) -> Option<u32> {
        self.inner.read().names.get(name).copied()
    }

    /// Binds a local name (without the '.'). Fails (returns false) when the name is
    /// taken or the handle is not alive; skynet fails silently in both cases.
    pub fn bind_name(&self, name: &str, handle: u32) -> bool {
        let mut inner = self.inner.write();
        if !inner.slots.contains_key(&handle) || inner.names.contains_key(name) {
            return false;
        }
        inner.names.insert(name.to_string(), handle);
        true
    }

    #[cfg(test)]
    fn set_next(&self, next: u32) {
        self.inner.write().next = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_carry_the_harbor() {
        let r = HandleRegistry::<u32>::new(2);
        let a = r.register(|h| h).unwrap();
        let b = r.register(|h| h).unwrap();
        assert_eq!(a, 0x0200_0001);
        assert_eq!(b, 0x0200_0002);
        assert_eq!(r.grab(a), Some(a));
    }

    #[test]
    fn retired_ids_are_not_reused_before_wrap() {
        let r = HandleRegistry::<u32>::new(0);
        let a = r.register(|h| h).unwrap();
        r.retire(a);
        let b = r.register(|h| h).unwrap();
        assert_ne!(a, b);
        assert_eq!(r.grab(a), None);
    }

    #[test]
    fn wraps_to_one_and_skips_live_ids() {
        let r = HandleRegistry::<u32>::new(0);
        let first = r.register(|h| h).unwrap();
        assert_eq!(first, 1);
        r.set_next(LOCAL_MASK);
        assert_eq!(r.register(|h| h).unwrap(), LOCAL_MASK);
        // 1 is still live, so the wrap lands on 2.
        assert_eq!(r.register(|h| h).unwrap(), 2);
    }

    #[test]
    fn names_bind_once_and_die_with_the_handle() {
        let r = HandleRegistry::<u32>::new(0);
        let a = r.register(|h| h).unwrap();
        let b = r.register(|h| h).unwrap();
        assert!(r.bind_name("launcher", a));
        assert!(!r.bind_name("launcher", b), "duplicate names fail");
        assert!(r.bind_name("other", a), "one handle may have several names");
        assert_eq!(r.find_name("launcher"), Some(a));
        r.retire(a);
        assert_eq!(r.find_name("launcher"), None);
        assert_eq!(r.find_name("other"), None);
        assert!(!r.bind_name("x", a), "a dead handle cannot be named");
    }
}
