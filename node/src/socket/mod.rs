//! skynet's socket layer, natively: a socket server on its own thread (a
//! single-threaded tokio runtime) owning every TCP, UDP and bound-fd socket,
//! identified by skynet-style ids (positive, increasing). Events reach the
//! owning service as PTYPE_SOCKET messages (source 0, session 0) whose payload
//! is [`event`]'s encoding of skynet's `{type, id, ud, data}`.
//!
//! - [`server`]: the thread, the per-socket tasks and the calls services make.
//! - [`event`]: the event payload.
//! - [`buffer`]: the read buffer behind `socketdriver.buffer()`.
//! - [`queue`]: a socket's command queue (empty ones hold no memory).
//! - [`read`]: a connection's read side, shared with idle workers.
//! - [`addr`]: name resolution, listening/UDP socket creation, UDP address blobs.
//!
//! The node's server starts lazily, on the first socket call ([`global`]).

pub mod addr;
pub mod buffer;
pub mod event;
pub mod queue;
mod read;
pub mod server;

#[cfg(test)]
mod tests;

pub use server::SocketServer;

use crate::message::{ptype, Message};
use std::sync::{Arc, OnceLock};

static GLOBAL: OnceLock<SocketServer> = OnceLock::new();

/// The node's socket server if a service has used it.
pub fn started() -> Option<&'static SocketServer> {
    GLOBAL.get()
}

/// The node's socket server, delivering events through the kernel.
pub fn global() -> &'static SocketServer {
    GLOBAL.get_or_init(|| {
        let srv = SocketServer::new(Arc::new(|owner, payload| {
            // An owner that is gone loses the event (skynet frees it too).
            let _ = crate::kernel::kernel().push(owner, Message::new(0, 0, ptype::SOCKET, payload));
        }));
        // Idle workers read the connections that services wrote to.
        crate::kernel::kernel().set_socket_poller(Some(srv.idle_poller()));
        srv
    })
}
