//! [`Registry`]: the master protocol as a state machine without I/O.
//!
//! Every event (a connection opened, a packet arrived, a connection closed)
//! goes in; the packets to send and the connections to close come out as
//! [`Action`]s, in the order they must happen. The hub executes them. Keeping
//! the decisions here makes them testable without sockets and keeps their
//! order deterministic.
//!
//! # Behaviour
//!
//! * `H id addr` from a new connection: id 0 is refused, and so is an id
//!   that another live connection already uses (the newcomer is closed; the
//!   live slave is untouched). Otherwise the newcomer gets `W n set` (n =
//!   number of live slaves, set = their ids), then `P id addr` for each of
//!   them (so that it can admit exactly those links), then one
//!   `N name handle` for every known name, so it starts with the whole table;
//!   then every live slave gets `C id addr`. An id whose connection went down
//!   may join again; it is treated as new. A C skynet slave reads only `W n`
//!   and ignores `P`.
//! * With a cluster secret, `H` is answered with `K nonce` instead, and the
//!   slave is only admitted as above after an `A nonce mac` that proves the
//!   secret; `W` then carries the master's own proof (see
//!   [`skynet_proto::auth`]). A wrong or missing answer closes the
//!   connection. Every refusal is logged with the peer and the claimed id.
//! * `R name handle`: see [`crate::names`] for who wins. The winner is
//!   broadcast as `N name winner` to every live slave, the sender included,
//!   and to anyone still waiting for the name.
//! * `Q name`: answered with `N` at once if the name is bound; otherwise the
//!   query is remembered and answered when the name is registered.
//! * A closed connection that was a live slave: every remaining live slave
//!   gets `D id`. Its names are kept (see [`crate::names`]).
//! * Anything else from a connection (a packet before `H`, a second `H`, a
//!   master-to-slave letter) is a protocol violation: the connection is
//!   closed, which for a live slave also broadcasts `D`. Malformed bytes are
//!   caught by the connection task and end up the same way.

use std::net::SocketAddr;

use std::collections::HashMap;

use skynet_proto::auth::{self, MasterRole, Secret, MAC_LEN, NONCE_LEN};
use skynet_proto::master::{HarborSet, MasterPacket};
use skynet_proto::{GlobalName, Handle};
use tracing::{debug, info, warn};

use crate::names::{NameTable, Registration};
use crate::slaves::SlaveTable;

pub use crate::slaves::ConnId;

/// Something the hub must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Queue a packet for a connection.
    Send(ConnId, MasterPacket),
    /// Close a connection after the packets already queued for it.
    Close(ConnId),
}

/// A slave that sent `H` and was sent `K`: what it claimed, and our nonce.
#[derive(Debug)]
struct Challenged {
    harbor: u8,
    address: String,
    nonce: [u8; NONCE_LEN],
}

/// Why a connection was refused at (or before) its handshake. The text is
/// the log line's message; [`Refusal::reason`] is the short close reason.
#[derive(Debug)]
enum Refusal {
    /// A first packet that is not `H` (or not `A` after our `K`).
    NoHandshake {
        packet: String,
    },
    /// No nonce could be made for the challenge.
    NoChallenge {
        harbor: u8,
        error: String,
    },
    /// `A` from a connection we did not challenge.
    AnswerWithoutChallenge,
    WrongProof {
        harbor: u8,
        address: String,
    },
    HarborZero {
        address: String,
    },
    /// The id is live from another connection (which is left alone).
    HarborLive {
        harbor: u8,
        address: String,
        live_conn: ConnId,
        live_peer: SocketAddr,
        live_address: String,
    },
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Refusal::NoHandshake { .. } => "no valid handshake",
            Refusal::NoChallenge { .. } => "no challenge",
            Refusal::AnswerWithoutChallenge => "answer without a challenge",
            Refusal::WrongProof { .. } => "wrong cluster secret proof",
            Refusal::HarborZero { .. } => "handshake with harbor id 0",
            Refusal::HarborLive { .. } => "harbor id already connected",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoHandshake { packet } => write!(
                f,
                "rejecting connection: expected a handshake (H, or A after K), got {packet}"
            ),
            Refusal::NoChallenge { harbor, error } => write!(
                f,
                "rejecting handshake of harbor {harbor}: cannot make a challenge: {error}"
            ),
            Refusal::AnswerWithoutChallenge => {
                write!(f, "rejecting connection: an answer (A) without a challenge")
            }
            Refusal::WrongProof { harbor, address } => write!(
                f,
                "rejecting handshake of harbor {harbor} at {address}: wrong cluster secret proof"
            ),
            Refusal::HarborZero { address } => write!(
                f,
                "rejecting handshake at {address}: harbor id 0 is reserved for single-node mode"
            ),
            Refusal::HarborLive {
                harbor,
                address,
                live_conn,
                live_peer,
                live_address,
            } => write!(
                f,
                "rejecting handshake: harbor id is already connected \
                 (harbor {harbor} claimed for {address}; live on {live_conn} from {live_peer}, at {live_address})"
            ),
        }
    }
}

/// The master's state: connections, live slaves, global names.
#[derive(Debug, Default)]
pub struct Registry {
    slaves: SlaveTable,
    names: NameTable,
    /// The cluster secret slaves must prove, if any.
    secret: Option<Secret>,
    challenged: HashMap<ConnId, Challenged>,
    /// Connections refused at their handshake (or before it).
    refusals: u64,
}

/// What operators see of the master (`GET /cluster`, the metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterView {
    pub harbors: Vec<HarborView>,
    pub names: Vec<NameView>,
    pub refusals: u64,
}

/// A live harbor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HarborView {
    pub id: u8,
    /// The address its harbor listens on, as announced.
    pub address: String,
    /// The remote end of its master connection.
    pub peer: String,
}

/// A global name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NameView {
    pub name: String,
    /// `:hex`, as skynet prints handles.
    pub handle: String,
    pub harbor: u8,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// An empty registry whose slaves must prove `secret`.
    pub fn with_secret(secret: Option<Secret>) -> Self {
        Registry {
            secret,
            ..Registry::default()
        }
    }

    /// The live slaves (harbor id, announced address), in id order.
    pub fn live_slaves(&self) -> Vec<(u8, String)> {
        self.slaves
            .live()
            .map(|(id, s)| (id, s.address.clone()))
            .collect()
    }

    /// The operators' view of the state now.
    pub fn view(&self) -> ClusterView {
        ClusterView {
            harbors: self
                .slaves
                .live()
                .map(|(id, s)| HarborView {
                    id,
                    address: s.address.clone(),
                    peer: s.peer.to_string(),
                })
                .collect(),
            names: self
                .names
                .iter()
                .map(|(n, e)| NameView {
                    name: n.to_string(),
                    handle: format!(":{:08x}", e.handle.0),
                    harbor: e.owner_harbor,
                })
                .collect(),
            refusals: self.refusals,
        }
    }

    /// The handle bound to `name`.
    pub fn lookup(&self, name: &GlobalName) -> Option<Handle> {
        self.names.get(name).map(|e| e.handle)
    }

    /// A connection was accepted.
    pub fn on_open(&mut self, conn: ConnId, peer: SocketAddr) {
        self.slaves.open(conn, peer);
    }

    /// A packet arrived on `conn`.
    pub fn on_packet(&mut self, conn: ConnId, packet: MasterPacket) -> Vec<Action> {
        let Some(peer) = self.slaves.peer(conn) else {
            // Already closed; a late packet from its reader.
            return Vec::new();
        };
        match (self.slaves.harbor_of(conn), packet) {
            (None, MasterPacket::Handshake { harbor, address })
                if !self.challenged.contains_key(&conn) =>
            {
                match &self.secret {
                    None => self.handshake(conn, peer, harbor, address, None),
                    Some(_) => self.challenge(conn, peer, harbor, address),
                }
            }
            (None, MasterPacket::Answer { nonce, mac }) if self.challenged.contains_key(&conn) => {
                self.answer(conn, peer, nonce, &mac)
            }
            (None, other) => self.refuse(
                conn,
                peer,
                Refusal::NoHandshake {
                    packet: other.to_string(),
                },
            ),
            (Some(harbor), MasterPacket::Register { name, handle }) => {
                self.register(conn, harbor, name, handle)
            }
            (Some(harbor), MasterPacket::Query { name }) => self.query(conn, harbor, name),
            (Some(harbor), other) => {
                warn!(harbor, %conn, packet = %other, "disconnecting slave: a slave may only send R or Q after its handshake");
                self.close(conn, "protocol violation")
            }
        }
    }

    /// `conn` closed (or was found broken). `reason` is for the log.
    pub fn on_closed(&mut self, conn: ConnId, reason: &str) -> Vec<Action> {
        if self.slaves.peer(conn).is_some() && !self.slaves.is_live(conn) {
            debug!(%conn, reason, "connection closed before its handshake");
        }
        self.close(conn, reason)
    }

    /// `H` with a secret: ask for its proof.
    fn challenge(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        harbor: u8,
        address: String,
    ) -> Vec<Action> {
        let nonce = match auth::nonce() {
            Ok(n) => n,
            Err(e) => {
                let why = Refusal::NoChallenge {
                    harbor,
                    error: e.to_string(),
                };
                return self.refuse(conn, peer, why);
            }
        };
        self.challenged.insert(
            conn,
            Challenged {
                harbor,
                address,
                nonce,
            },
        );
        vec![Action::Send(conn, MasterPacket::Challenge { nonce })]
    }

    /// `A` after our `K`: admit the slave if it knows the secret.
    fn answer(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        slave_nonce: [u8; NONCE_LEN],
        mac: &[u8; MAC_LEN],
    ) -> Vec<Action> {
        let (Some(c), Some(secret)) = (self.challenged.remove(&conn), self.secret.clone()) else {
            return self.refuse(conn, peer, Refusal::AnswerWithoutChallenge);
        };
        let ok = auth::check_master_proof(
            &secret,
            MasterRole::Slave,
            c.harbor,
            &c.address,
            &c.nonce,
            &slave_nonce,
            mac,
        );
        if !ok {
            let why = Refusal::WrongProof {
                harbor: c.harbor,
                address: c.address,
            };
            return self.refuse(conn, peer, why);
        }
        let proof = auth::master_proof(
            &secret,
            MasterRole::Master,
            c.harbor,
            &c.address,
            &c.nonce,
            &slave_nonce,
        );
        self.handshake(conn, peer, c.harbor, c.address, Some(proof))
    }

    fn handshake(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        harbor: u8,
        address: String,
        proof: Option<[u8; MAC_LEN]>,
    ) -> Vec<Action> {
        if harbor == 0 {
            return self.refuse(conn, peer, Refusal::HarborZero { address });
        }
        if let Some(existing) = self.slaves.live_slave(harbor) {
            let why = Refusal::HarborLive {
                harbor,
                address,
                live_conn: existing.conn,
                live_peer: existing.peer,
                live_address: existing.address.clone(),
            };
            return self.refuse(conn, peer, why);
        }
        let mut actions = Vec::new();
        let others: Vec<(u8, ConnId, String)> = self
            .slaves
            .live()
            .map(|(id, s)| (id, s.conn, s.address.clone()))
            .collect();
        // At most 254 other harbors can be live (ids 1..=255).
        let count = u8::try_from(others.len()).unwrap_or(u8::MAX);
        // The newcomer hears who will connect before they are told to, so
        // that it can usually admit their links at once.
        actions.push(Action::Send(
            conn,
            MasterPacket::Wait {
                count,
                peers: Some(others.iter().map(|(id, _, _)| *id).collect::<HarborSet>()),
                proof,
            },
        ));
        for (id, _, addr) in &others {
            actions.push(Action::Send(
                conn,
                MasterPacket::Peer {
                    harbor: *id,
                    address: addr.clone(),
                },
            ));
        }
        for (name, entry) in self.names.iter() {
            actions.push(Action::Send(
                conn,
                MasterPacket::Name {
                    name: *name,
                    handle: entry.handle,
                },
            ));
        }
        let connect = MasterPacket::Connect {
            harbor,
            address: address.clone(),
        };
        for (_, other, _) in &others {
            actions.push(Action::Send(*other, connect.clone()));
        }
        self.slaves.join(conn, harbor, address.clone());
        info!(
            harbor, %conn, %peer, %address, waits_for = count, names_sent = self.names.len(),
            "harbor joined"
        );
        actions
    }

    fn register(
        &mut self,
        conn: ConnId,
        harbor: u8,
        name: GlobalName,
        handle: Handle,
    ) -> Vec<Action> {
        let slaves = &self.slaves;
        let outcome = self
            .names
            .register(name, handle, conn, harbor, |c| slaves.is_live(c));
        let winner = match outcome {
            Registration::New => {
                info!(%name, %handle, harbor, "global name registered");
                handle
            }
            Registration::Unchanged => {
                debug!(%name, %handle, harbor, "global name registered again with the same handle");
                handle
            }
            Registration::Refused { winner } => {
                warn!(
                    %name, refused = %handle, from_harbor = harbor,
                    winner = %winner.handle, owner_harbor = winner.owner_harbor,
                    "duplicate global name refused: it stays with its live owner"
                );
                winner.handle
            }
            Registration::TakenOver { previous } => {
                info!(
                    %name, %handle, harbor, previous = %previous.handle, previous_harbor = previous.owner_harbor,
                    "global name taken over from a harbor that went down"
                );
                handle
            }
        };
        let notice = MasterPacket::Name {
            name,
            handle: winner,
        };
        let mut targets = self.slaves.live_conns();
        for waiter in self.names.take_waiters(&name) {
            if !targets.contains(&waiter) && self.slaves.is_live(waiter) {
                targets.push(waiter);
            }
        }
        targets
            .into_iter()
            .map(|to| Action::Send(to, notice.clone()))
            .collect()
    }

    fn query(&mut self, conn: ConnId, harbor: u8, name: GlobalName) -> Vec<Action> {
        match self.names.get(&name) {
            Some(entry) => {
                debug!(%name, handle = %entry.handle, harbor, "query answered");
                vec![Action::Send(
                    conn,
                    MasterPacket::Name {
                        name,
                        handle: entry.handle,
                    },
                )]
            }
            None => {
                if self.names.wait(name, conn) {
                    debug!(%name, harbor, "query for an unknown name: waiting for its registration");
                }
                Vec::new()
            }
        }
    }

    /// The one way a connection is refused: logged with the peer, counted,
    /// closed.
    fn refuse(&mut self, conn: ConnId, peer: SocketAddr, why: Refusal) -> Vec<Action> {
        warn!(%conn, %peer, "{why}");
        self.refusals += 1;
        self.close(conn, why.reason())
    }

    /// Forgets `conn` and tells the others if it was a live slave.
    fn close(&mut self, conn: ConnId, reason: &str) -> Vec<Action> {
        self.names.forget_waiter(conn);
        self.challenged.remove(&conn);
        let mut actions = vec![Action::Close(conn)];
        if let Some((harbor, slave)) = self.slaves.close(conn) {
            info!(harbor, %conn, address = %slave.address, reason, "harbor left");
            let down = MasterPacket::Down { harbor };
            actions.extend(
                self.slaves
                    .live_conns()
                    .into_iter()
                    .map(|to| Action::Send(to, down.clone())),
            );
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    fn name(s: &str) -> GlobalName {
        GlobalName::new(s).unwrap()
    }

    fn wait(ids: &[u8]) -> MasterPacket {
        MasterPacket::Wait {
            count: ids.len() as u8,
            peers: Some(ids.iter().copied().collect()),
            proof: None,
        }
    }

    fn hello(r: &mut Registry, conn: u64, harbor: u8) -> Vec<Action> {
        r.on_open(ConnId(conn), peer());
        r.on_packet(
            ConnId(conn),
            MasterPacket::Handshake {
                harbor,
                address: format!("127.0.0.1:{}", 2525 + u16::from(harbor)),
            },
        )
    }

    #[test]
    fn join_order_is_wait_peers_names_then_connects() {
        let mut r = Registry::new();
        assert_eq!(
            hello(&mut r, 1, 1),
            vec![Action::Send(ConnId(1), wait(&[]))]
        );
        r.on_packet(
            ConnId(1),
            MasterPacket::Register {
                name: name("A"),
                handle: Handle(0x0100_0005),
            },
        );
        let actions = hello(&mut r, 2, 2);
        assert_eq!(
            actions,
            vec![
                Action::Send(ConnId(2), wait(&[1])),
                Action::Send(
                    ConnId(2),
                    MasterPacket::Peer {
                        harbor: 1,
                        address: "127.0.0.1:2526".into()
                    }
                ),
                Action::Send(
                    ConnId(2),
                    MasterPacket::Name {
                        name: name("A"),
                        handle: Handle(0x0100_0005)
                    }
                ),
                Action::Send(
                    ConnId(1),
                    MasterPacket::Connect {
                        harbor: 2,
                        address: "127.0.0.1:2527".into()
                    }
                ),
            ]
        );
        assert_eq!(r.live_slaves().len(), 2);
    }

    #[test]
    fn rejects_zero_and_live_duplicates_but_allows_rejoin() {
        let mut r = Registry::new();
        assert_eq!(hello(&mut r, 1, 0), vec![Action::Close(ConnId(1))]);
        hello(&mut r, 2, 3);
        assert_eq!(hello(&mut r, 3, 3), vec![Action::Close(ConnId(3))]);
        assert_eq!(r.live_slaves(), vec![(3, "127.0.0.1:2528".to_string())]);
        hello(&mut r, 4, 4);
        assert_eq!(
            r.on_closed(ConnId(2), "eof"),
            vec![
                Action::Close(ConnId(2)),
                Action::Send(ConnId(4), MasterPacket::Down { harbor: 3 })
            ]
        );
        let rejoin = hello(&mut r, 5, 3);
        assert_eq!(rejoin[0], Action::Send(ConnId(5), wait(&[4])));
        assert_eq!(
            rejoin.last(),
            Some(&Action::Send(
                ConnId(4),
                MasterPacket::Connect {
                    harbor: 3,
                    address: "127.0.0.1:2528".into()
                }
            ))
        );
        assert_eq!(r.view().refusals, 2);
    }

    #[test]
    fn the_view_lists_live_harbors_names_and_refusals() {
        let mut r = Registry::new();
        hello(&mut r, 1, 2);
        r.on_packet(
            ConnId(1),
            MasterPacket::Register {
                name: name("SERVICE"),
                handle: Handle(0x0200_000a),
            },
        );
        r.on_open(ConnId(2), peer());
        r.on_packet(ConnId(2), MasterPacket::Query { name: name("X") });
        let v = r.view();
        assert_eq!(
            v.harbors,
            vec![HarborView {
                id: 2,
                address: "127.0.0.1:2527".into(),
                peer: "127.0.0.1:1".into()
            }]
        );
        assert_eq!(
            v.names,
            vec![NameView {
                name: "SERVICE".into(),
                handle: ":0200000a".into(),
                harbor: 2
            }]
        );
        assert_eq!(v.refusals, 1, "a query before the handshake is refused");
    }

    #[test]
    fn protocol_violations_close_only_the_offender() {
        let mut r = Registry::new();
        r.on_open(ConnId(1), peer());
        assert_eq!(
            r.on_packet(ConnId(1), MasterPacket::Query { name: name("A") }),
            vec![Action::Close(ConnId(1))]
        );
        hello(&mut r, 2, 2);
        hello(&mut r, 3, 3);
        assert_eq!(
            r.on_packet(ConnId(3), wait(&[])),
            vec![
                Action::Close(ConnId(3)),
                Action::Send(ConnId(2), MasterPacket::Down { harbor: 3 })
            ]
        );
        // Late events for closed connections are ignored.
        assert!(r
            .on_packet(ConnId(3), MasterPacket::Query { name: name("A") })
            .is_empty());
    }

    #[test]
    fn duplicate_names_have_one_winner_and_waiters_are_answered() {
        let mut r = Registry::new();
        hello(&mut r, 1, 1);
        hello(&mut r, 2, 2);
        assert!(r
            .on_packet(ConnId(2), MasterPacket::Query { name: name("X") })
            .is_empty());
        let n1 = MasterPacket::Name {
            name: name("X"),
            handle: Handle(0x0100_0001),
        };
        assert_eq!(
            r.on_packet(
                ConnId(1),
                MasterPacket::Register {
                    name: name("X"),
                    handle: Handle(0x0100_0001)
                }
            ),
            vec![
                Action::Send(ConnId(1), n1.clone()),
                Action::Send(ConnId(2), n1.clone())
            ]
        );
        assert_eq!(
            r.on_packet(
                ConnId(2),
                MasterPacket::Register {
                    name: name("X"),
                    handle: Handle(0x0200_0001)
                }
            ),
            vec![
                Action::Send(ConnId(1), n1.clone()),
                Action::Send(ConnId(2), n1.clone())
            ]
        );
        assert_eq!(r.lookup(&name("X")), Some(Handle(0x0100_0001)));
        // The owner leaves: the name stays, and the next registration wins.
        r.on_closed(ConnId(1), "eof");
        assert_eq!(
            r.on_packet(ConnId(2), MasterPacket::Query { name: name("X") }),
            vec![Action::Send(ConnId(2), n1)]
        );
        let n2 = MasterPacket::Name {
            name: name("X"),
            handle: Handle(0x0200_0001),
        };
        assert_eq!(
            r.on_packet(
                ConnId(2),
                MasterPacket::Register {
                    name: name("X"),
                    handle: Handle(0x0200_0001)
                }
            ),
            vec![Action::Send(ConnId(2), n2)]
        );
    }

    #[test]
    fn with_a_secret_only_a_correct_answer_joins() {
        let secret = Secret::new("s3cret").unwrap();
        let mut r = Registry::with_secret(Some(secret.clone()));
        let challenge = |r: &mut Registry, conn: u64| -> [u8; NONCE_LEN] {
            match &hello(r, conn, 2)[..] {
                [Action::Send(c, MasterPacket::Challenge { nonce })] if *c == ConnId(conn) => {
                    *nonce
                }
                other => panic!("{other:?}"),
            }
        };
        // A wrong proof: closed, not joined.
        let k = challenge(&mut r, 1);
        let bad = auth::master_proof(
            &Secret::new("guess").unwrap(),
            MasterRole::Slave,
            2,
            "127.0.0.1:2527",
            &k,
            &[7; NONCE_LEN],
        );
        assert_eq!(
            r.on_packet(
                ConnId(1),
                MasterPacket::Answer {
                    nonce: [7; NONCE_LEN],
                    mac: bad
                }
            ),
            vec![Action::Close(ConnId(1))]
        );
        // Anything but `A` after `K`: closed.
        challenge(&mut r, 2);
        assert_eq!(
            r.on_packet(ConnId(2), MasterPacket::Query { name: name("X") }),
            vec![Action::Close(ConnId(2))]
        );
        assert!(r.live_slaves().is_empty());
        assert_eq!(r.view().refusals, 2, "each refusal is counted");
        // The right proof: `W` with the master's proof of the same exchange.
        let k = challenge(&mut r, 3);
        let mine = [9; NONCE_LEN];
        let mac = auth::master_proof(&secret, MasterRole::Slave, 2, "127.0.0.1:2527", &k, &mine);
        let out = r.on_packet(ConnId(3), MasterPacket::Answer { nonce: mine, mac });
        let Some(Action::Send(_, MasterPacket::Wait { proof: Some(p), .. })) = out.first() else {
            panic!("{out:?}")
        };
        assert!(auth::check_master_proof(
            &secret,
            MasterRole::Master,
            2,
            "127.0.0.1:2527",
            &k,
            &mine,
            p
        ));
        assert_eq!(r.live_slaves().len(), 1);
    }
}
