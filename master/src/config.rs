//! [`MasterConfig`]: the master's tunables.

use skynet_proto::auth::Secret;
use std::time::Duration;

/// Timeouts and queue sizes of a [`Master`](crate::Master).
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// How long a new connection may take to send its `H` packet before it
    /// is dropped.
    pub handshake_timeout: Duration,
    /// How long writing one packet to a slave may block before the slave is
    /// considered dead.
    pub write_timeout: Duration,
    /// Packets queued for one slave before it is considered stuck and
    /// disconnected.
    pub outbox_capacity: usize,
    /// The cluster secret slaves must prove before they join (off: any
    /// slave may join, C skynet ones included).
    pub secret: Option<Secret>,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            outbox_capacity: 4096,
            secret: None,
        }
    }
}
