//! [`MasterError`]: what can stop the master.

/// Errors that stop a [`Master`](crate::Master). Problems with a single
/// slave never do: they are logged and only that slave is disconnected.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The listen socket could not be set up.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The listener's local address could not be read.
    #[error("cannot read the listen address: {0}")]
    LocalAddr(std::io::Error),
    /// The metrics listener could not be used.
    #[error("cannot serve metrics: {0}")]
    Metrics(std::io::Error),
}
