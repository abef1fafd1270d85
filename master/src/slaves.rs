//! [`SlaveTable`]: every open connection, and which of them are live slaves.
//!
//! A connection is open from accept until it closes. It becomes a live slave
//! when its `H` handshake is accepted, under a harbor id that no other live
//! slave has. When the connection closes the id is free again, so a restarted
//! node can rejoin under the same id.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;

/// Identity of one accepted connection; never reused within a master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A live slave.
#[derive(Debug, Clone)]
pub struct Slave {
    /// Its connection.
    pub conn: ConnId,
    /// The address its harbor listens on, as it announced it.
    pub address: String,
    /// The remote end of its master connection.
    pub peer: SocketAddr,
}

/// Open connections and live slaves.
#[derive(Debug, Default)]
pub struct SlaveTable {
    /// Every open connection: its peer, and its harbor id once accepted.
    conns: HashMap<ConnId, (SocketAddr, Option<u8>)>,
    /// Live slaves by harbor id.
    live: BTreeMap<u8, Slave>,
}

impl SlaveTable {
    /// Records a newly accepted connection.
    pub fn open(&mut self, conn: ConnId, peer: SocketAddr) {
        self.conns.insert(conn, (peer, None));
    }

    /// The peer of an open connection.
    pub fn peer(&self, conn: ConnId) -> Option<SocketAddr> {
        self.conns.get(&conn).map(|(peer, _)| *peer)
    }

    /// The harbor id of a connection that is a live slave.
    pub fn harbor_of(&self, conn: ConnId) -> Option<u8> {
        self.conns.get(&conn).and_then(|(_, harbor)| *harbor)
    }

    /// Whether `conn` is a live slave.
    pub fn is_live(&self, conn: ConnId) -> bool {
        self.harbor_of(conn).is_some()
    }

    /// The live slave with this harbor id.
    pub fn live_slave(&self, harbor: u8) -> Option<&Slave> {
        self.live.get(&harbor)
    }

    /// Makes an open connection the live slave `harbor`. The caller has
    /// checked that the id is free; returns false (and changes nothing) if
    /// the connection is unknown or the id taken.
    pub fn join(&mut self, conn: ConnId, harbor: u8, address: String) -> bool {
        if self.live.contains_key(&harbor) {
            return false;
        }
        let Some((peer, slot)) = self.conns.get_mut(&conn) else {
            return false;
        };
        *slot = Some(harbor);
        let peer = *peer;
        self.live.insert(
            harbor,
            Slave {
                conn,
                address,
                peer,
            },
        );
        true
    }

    /// Forgets a connection. Returns the harbor id and slave record if it
    /// was a live slave.
    pub fn close(&mut self, conn: ConnId) -> Option<(u8, Slave)> {
        let (_, harbor) = self.conns.remove(&conn)?;
        let harbor = harbor?;
        self.live.remove(&harbor).map(|slave| (harbor, slave))
    }

    /// Live slaves in harbor id order.
    pub fn live(&self) -> impl Iterator<Item = (u8, &Slave)> {
        self.live.iter().map(|(id, s)| (*id, s))
    }

    /// Connections of the live slaves, in harbor id order.
    pub fn live_conns(&self) -> Vec<ConnId> {
        self.live.values().map(|s| s.conn).collect()
    }
}
