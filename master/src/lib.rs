//! `skynet-master`: the master of a multi-harbor skynet cluster, compatible
//! with skynet's `cmaster` service and its `cslave` clients.
//!
//! The master keeps the list of live slaves (harbors) and the table of global
//! names. Slaves connect to it, introduce themselves with `H`, register names
//! with `R` and ask for them with `Q`; the master tells slaves whom to connect
//! to (`C`, `W`), which names are bound (`N`) and who went down (`D`). The
//! wire format lives in [`skynet_proto::master`].
//!
//! # Map of modules
//!
//! | module         | owns                                                                 |
//! |----------------|----------------------------------------------------------------------|
//! | [`config`]     | [`MasterConfig`]: timeouts and queue sizes                           |
//! | [`server`]     | [`Master`]: the listener, the accept loop, start and shutdown        |
//! | [`connection`] | one task per slave connection: framing, reading, writing, timeouts   |
//! | [`hub`]        | the single task that owns the [`Registry`] and every connection's outbox |
//! | [`registry`]   | [`Registry`]: the protocol state machine (no I/O), decides every reply |
//! | [`slaves`]     | [`slaves::SlaveTable`]: connections and the live harbor ids          |
//! | [`names`]      | [`names::NameTable`]: global names, their owners, waiting queries    |
//! | [`view`]       | the operators' endpoint: `GET /metrics` and `GET /cluster`            |
//! | [`error`]      | [`MasterError`]                                                      |
//!
//! A node embeds the master (config `standalone`) with [`Master::bind`] or
//! [`run`]; the `skynet-master` binary is a thin wrapper around the same.

pub mod config;
pub mod connection;
pub mod error;
pub mod hub;
pub mod names;
pub mod registry;
pub mod server;
pub mod slaves;
pub mod view;

pub use config::MasterConfig;
pub use error::MasterError;
pub use registry::{Action, ConnId, Registry};
pub use server::Master;

use tokio::net::TcpListener;

/// Serves the master protocol on `listener` with the default configuration
/// until the process ends.
pub async fn run(listener: TcpListener) -> Result<(), MasterError> {
    Master::new(listener, MasterConfig::default()).run().await
}
