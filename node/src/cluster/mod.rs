//! Multi-node networking (harbor ids 1..255): the native `cslave` and
//! `cmaster` service modules that replace skynet's `service/cslave.lua`,
//! `service/cmaster.lua` and `service-src/service_harbor.c`, wire-compatible
//! with them, plus failure handling that skynet does not have.
//!
//! # Threads
//!
//! * Worker threads run services. A send to another node calls the
//!   [`Cluster`] router directly (no hop through a harbor service): it
//!   encodes the frame and hands it to the link's writer queue, or queues the
//!   message, or answers it with ERROR, all under one state lock.
//! * The `harbor` thread (a single-threaded tokio runtime, started by the
//!   `cslave` launch) runs the listener, the master connection, one task per
//!   link (reader + writer + heartbeat) and the queue-expiry sweeper. Frames
//!   read there are pushed straight into local service queues. A worker with
//!   nothing to run also reads the links for a moment before it sleeps
//!   ([`link::read`]), which takes the harbor thread off the path of a reply.
//! * With `standalone` set, the `cmaster` thread runs the `skynet-master`
//!   library.
//!
//! `cslave`'s launch returns at once; the master connection and links come
//! up in the background while bootstrap continues. Messages for a harbor
//! that is not linked yet wait in that harbor's queue.
//!
//! # Failure semantics (beyond skynet)
//!
//! A harbor is *down* when its link reports EOF/reset, a write fails, the
//! heartbeat finds it silent ([`link::beat`]), it sends an oversize or
//! malformed frame, or the master sends `D`. Then at once: every outstanding
//! call from a local service to that harbor gets PTYPE_ERROR with its session
//! (so `skynet.call` raises "call failed"), queued messages are answered the
//! same way, `LINK` waiters return, and later sends get ERROR immediately. A
//! harbor that rejoins (`C` from the master) is connected again; when a link
//! is lost without the master's `D`, the side that had connected keeps
//! reconnecting. The master connection is retried forever with backoff and
//! every owned global name is registered again after each reconnection.
//!
//! # Configuration
//!
//! * `harbor` (1..255), `master` (`host:port` of the master), `address`
//!   (`host:port` this node listens on and announces) — as in skynet.
//! * `standalone = "host:port"`: this node also runs the master (`cmaster`)
//!   and hosts DATACENTER and SERVICE, as in skynet.
//! * `global_services = true`: with a separate `skynet-master` no node is
//!   standalone; the node with this key hosts DATACENTER and SERVICE
//!   (bootstrap sets `standalone = "true"` in its env after `cslave` is up,
//!   which is what `service_mgr` looks at). Exactly one node should have it;
//!   the others block in bootstrap (`service_mgr` REPORT) until it is up,
//!   and say so in the log ([`state::Nag`]). `false`: never host them;
//!   unset: bootstrap asks `ELECTED`, true when the first `W` was `W 0`.
//! * `harbor_check_address` (default true) and `cluster_secret`: the
//!   admission of accepted links and the secret's exchanges (see
//!   [`state`]'s "Admission" and [`net`]).
//!
//! # Differences from skynet 1.8 worth knowing
//!
//! * Outstanding calls fail when their harbor goes down (skynet: they hang).
//! * A RESPONSE for a local service that no longer exists is dropped with the
//!   `Unknown destination` log but no ERROR frame back (skynet sends one,
//!   which can fail an unrelated call with the same session in the callee).
//!   The logged `type(%d)` is the plain message type (skynet adds 0x10000).
//! * `Q name` goes to the master once per name until it is answered (skynet:
//!   once per message).
//! * `N name handle` with one of this node's handles that this process did
//!   not register (left over from an earlier process with the same harbor id)
//!   is ignored, so that the handle cannot reach an unrelated new service.
//! * The listen socket stays open: older harbors may connect at any time
//!   (rejoin, reconnection); `W n` drives the `Shakehand ready` log, and the
//!   admission of those links (only announced harbors, see [`state`]).
//! * A second accepted link for a harbor that is linked is refused (skynet:
//!   `Slave %d exist`), where we used to replace the first.
//!
//! # Modules
//!
//! | module          | owns                                                          |
//! |-----------------|---------------------------------------------------------------|
//! | [`state`]       | [`state::ClusterState`]: the state machine (events in, actions out, no I/O) |
//! | [`router`]      | [`Cluster`]: runs the state machine; kernel router, link host, idle poller, dialing and accepting |
//! | [`link`]        | [`link::Link`]: one live link, its read side, write side and heartbeat |
//! | [`master_link`] | the connection to the master                                  |
//! | [`net`]         | socket options, dialing and the one-byte handshake            |
//! | [`slave`]       | the `cslave` service                                          |
//! | [`cmaster`]     | the `cmaster` service                                         |
//!
//! Frames, handles, global names and master packets are [`skynet_proto`]'s.
//! The modules use each other in that table's order, bottom-up: `state`,
//! `link` and `net` know nothing of the others; `router` uses them;
//! `master_link` and `slave` use `router`.

pub mod cmaster;
pub mod link;
pub mod master_link;
pub mod net;
pub mod router;
pub mod slave;
pub mod state;

pub use cmaster::CMaster;
pub use slave::Slave;
