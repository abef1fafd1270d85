//! [`LinkEnd`]: how a link ended, as its reader, writer or heartbeat found it.

/// How a link ended.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkEnd {
    /// EOF, reset, write failure, heartbeat timeout.
    Lost(String),
    /// The peer broke the protocol (oversize or malformed frame).
    Protocol(String),
}
