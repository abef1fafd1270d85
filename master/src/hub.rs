//! The hub: the one task that owns the [`Registry`] and the outbox of every
//! connection.
//!
//! Connection tasks report what happens on their sockets as [`Event`]s over
//! one channel, so the registry sees a single ordered history. The hub turns
//! each event into [`Action`]s and carries them out without ever blocking:
//! packets go into bounded per-connection outboxes with `try_send`, and a
//! slave whose outbox is full is not reading and gets disconnected. Closing a
//! connection means dropping its outbox; its task then flushes what was
//! queued, shuts the socket down and ends.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use skynet_proto::auth::Secret;
use skynet_proto::master::MasterPacket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::registry::{Action, ClusterView, ConnId, Registry};

/// What a connection task reports.
#[derive(Debug)]
pub enum Event {
    /// A connection was accepted; `outbox` feeds its writer.
    Opened {
        /// The connection.
        conn: ConnId,
        /// Its remote end.
        peer: SocketAddr,
        /// Where to queue packets for it.
        outbox: mpsc::Sender<MasterPacket>,
    },
    /// A well-formed packet arrived.
    Packet {
        /// The connection.
        conn: ConnId,
        /// The packet.
        packet: MasterPacket,
    },
    /// The connection ended on its own (end of stream, I/O error, malformed
    /// input, timeout).
    Closed {
        /// The connection.
        conn: ConnId,
        /// Why, for the log.
        reason: String,
    },
    /// An operator asks what the registry holds.
    View(oneshot::Sender<ClusterView>),
}

/// The registry plus the outboxes that carry its decisions out.
#[derive(Debug, Default)]
pub struct Hub {
    registry: Registry,
    outboxes: HashMap<ConnId, mpsc::Sender<MasterPacket>>,
}

impl Hub {
    /// A hub with an empty registry.
    pub fn new() -> Self {
        Hub::default()
    }

    /// A hub whose slaves must prove `secret`.
    pub fn with_secret(secret: Option<Secret>) -> Self {
        Hub {
            registry: Registry::with_secret(secret),
            outboxes: HashMap::new(),
        }
    }

    /// Handles one event.
    pub fn handle(&mut self, event: Event) {
        let actions = match event {
            Event::Opened { conn, peer, outbox } => {
                self.outboxes.insert(conn, outbox);
                self.registry.on_open(conn, peer);
                Vec::new()
            }
            Event::Packet { conn, packet } => self.registry.on_packet(conn, packet),
            Event::Closed { conn, reason } => self.registry.on_closed(conn, &reason),
            Event::View(reply) => {
                let _ = reply.send(self.registry.view());
                Vec::new()
            }
        };
        self.apply(actions);
    }

    fn apply(&mut self, actions: Vec<Action>) {
        let mut queue = VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Send(to, packet) => {
                    let Some(outbox) = self.outboxes.get(&to) else {
                        continue;
                    };
                    match outbox.try_send(packet) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            warn!(conn = %to, "slave is not reading its packets: disconnecting it");
                            queue.extend(self.registry.on_closed(to, "outbox full"));
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            // The task is ending; its Closed event is on its way.
                            debug!(conn = %to, "packet for a connection that is ending");
                        }
                    }
                }
                Action::Close(conn) => {
                    self.outboxes.remove(&conn);
                }
            }
        }
    }
}

/// Runs a hub until `stop` fires (or its sender is dropped) or every event
/// sender is gone. Dropping the hub then closes every connection.
pub async fn run(
    mut events: mpsc::Receiver<Event>,
    mut stop: oneshot::Receiver<()>,
    secret: Option<Secret>,
) {
    let mut hub = Hub::with_secret(secret);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => hub.handle(event),
                None => break,
            },
            _ = &mut stop => break,
        }
    }
}
