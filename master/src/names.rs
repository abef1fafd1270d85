//! [`NameTable`]: the global names, who owns them, and who is waiting for
//! them.
//!
//! # Rules
//!
//! skynet's master keeps the first handle registered for a name in its table
//! but broadcasts every later registration as it comes, so nodes end up
//! disagreeing. This table keeps **one winner per name** instead:
//!
//! * The first registration wins while the connection that made it (its
//!   owner) is alive. A different handle registered later for the same name
//!   loses, and everyone is told the winner again.
//! * When the owner's connection has gone down, the name is kept (skynet
//!   keeps it too, and queries are still answered with it), but it is only
//!   held for a dead owner: the next registration of that name, from any
//!   slave, including the same harbor after it rejoined, takes it over.
//! * A registration of the handle the name already has just refreshes the
//!   ownership when the previous owner is dead.
//!
//! A query for an unknown name is remembered and answered when the name gets
//! bound.

use std::collections::{BTreeMap, HashMap};

use skynet_proto::{GlobalName, Handle};

use crate::slaves::ConnId;

/// A bound name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameEntry {
    /// The handle the name stands for.
    pub handle: Handle,
    /// The connection that registered it.
    pub owner: ConnId,
    /// The harbor id of that connection.
    pub owner_harbor: u8,
}

/// The outcome of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// The name was unknown and is now bound.
    New,
    /// The name already had this handle.
    Unchanged,
    /// The name is held by a live owner with another handle: the new
    /// registration lost.
    Refused {
        /// The binding that stays.
        winner: NameEntry,
    },
    /// The name's owner was dead: the new registration replaced it.
    TakenOver {
        /// The binding that was replaced.
        previous: NameEntry,
    },
}

/// Global names and pending queries.
#[derive(Debug, Default)]
pub struct NameTable {
    names: BTreeMap<GlobalName, NameEntry>,
    waiting: HashMap<GlobalName, Vec<ConnId>>,
}

impl NameTable {
    /// Applies a registration of `name` as `handle` by `owner` (harbor
    /// `owner_harbor`), following the rules in the module docs. `is_alive`
    /// tells whether a connection is still a live slave.
    pub fn register(
        &mut self,
        name: GlobalName,
        handle: Handle,
        owner: ConnId,
        owner_harbor: u8,
        is_alive: impl Fn(ConnId) -> bool,
    ) -> Registration {
        let fresh = NameEntry {
            handle,
            owner,
            owner_harbor,
        };
        match self.names.get_mut(&name) {
            None => {
                self.names.insert(name, fresh);
                Registration::New
            }
            Some(entry) if entry.handle == handle => {
                if !is_alive(entry.owner) {
                    *entry = fresh;
                }
                Registration::Unchanged
            }
            Some(entry) if is_alive(entry.owner) => Registration::Refused { winner: *entry },
            Some(entry) => {
                let previous = std::mem::replace(entry, fresh);
                Registration::TakenOver { previous }
            }
        }
    }

    /// The binding of `name`.
    pub fn get(&self, name: &GlobalName) -> Option<&NameEntry> {
        self.names.get(name)
    }

    /// Every binding, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&GlobalName, &NameEntry)> {
        self.names.iter()
    }

    /// Number of bound names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name is bound.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Remembers that `conn` waits for `name`. Returns false if it already
    /// did.
    pub fn wait(&mut self, name: GlobalName, conn: ConnId) -> bool {
        let waiters = self.waiting.entry(name).or_default();
        if waiters.contains(&conn) {
            false
        } else {
            waiters.push(conn);
            true
        }
    }

    /// Takes the connections waiting for `name`.
    pub fn take_waiters(&mut self, name: &GlobalName) -> Vec<ConnId> {
        self.waiting.remove(name).unwrap_or_default()
    }

    /// Forgets every query of a connection that went away.
    pub fn forget_waiter(&mut self, conn: ConnId) {
        self.waiting.retain(|_, waiters| {
            waiters.retain(|c| *c != conn);
            !waiters.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> GlobalName {
        GlobalName::new(s).unwrap()
    }

    #[test]
    fn first_registration_wins_while_its_owner_lives() {
        let mut t = NameTable::default();
        let alive = |_: ConnId| true;
        assert_eq!(
            t.register(name("A"), Handle(0x0100_0001), ConnId(1), 1, alive),
            Registration::New
        );
        assert_eq!(
            t.register(name("A"), Handle(0x0100_0001), ConnId(1), 1, alive),
            Registration::Unchanged
        );
        let r = t.register(name("A"), Handle(0x0200_0001), ConnId(2), 2, alive);
        assert!(
            matches!(r, Registration::Refused { winner } if winner.handle == Handle(0x0100_0001))
        );
        assert_eq!(t.get(&name("A")).unwrap().owner, ConnId(1));
    }

    #[test]
    fn a_dead_owner_is_taken_over() {
        let mut t = NameTable::default();
        t.register(name("A"), Handle(0x0100_0001), ConnId(1), 1, |_| true);
        let dead_1 = |c: ConnId| c != ConnId(1);
        let r = t.register(name("A"), Handle(0x0200_0001), ConnId(2), 2, dead_1);
        assert!(matches!(r, Registration::TakenOver { previous } if previous.owner == ConnId(1)));
        assert_eq!(t.get(&name("A")).unwrap().handle, Handle(0x0200_0001));
        // Same handle, dead owner: ownership moves to the new connection.
        let dead_2 = |c: ConnId| c != ConnId(2);
        assert_eq!(
            t.register(name("A"), Handle(0x0200_0001), ConnId(3), 2, dead_2),
            Registration::Unchanged
        );
        assert_eq!(t.get(&name("A")).unwrap().owner, ConnId(3));
    }

    #[test]
    fn waiters() {
        let mut t = NameTable::default();
        assert!(t.wait(name("A"), ConnId(1)));
        assert!(!t.wait(name("A"), ConnId(1)));
        assert!(t.wait(name("A"), ConnId(2)));
        t.forget_waiter(ConnId(1));
        assert_eq!(t.take_waiters(&name("A")), vec![ConnId(2)]);
        assert!(t.take_waiters(&name("A")).is_empty());
    }
}
