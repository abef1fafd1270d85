//! skynet-node: a skynet 1.8 compatible runtime.
//!
//! Map of the crate (kernel first, then services, then start-up). Only `cli`
//! and `snlua` are public: the binaries and the tests outside use them.
//! - `message`: messages and skynet's message types.
//! - `handle`: handle registry and local names.
//! - `address`: text addresses (`:hex`, `.name`, global names).
//! - `mq`: per-service queues and their scheduling flag.
//! - `context`: the kernel's record of one service, and the `Service` trait.
//! - `kernel`: a node's state; launch, send, retire, log, dispatch.
//! - `scheduler`: the run queue and the worker threads' loop.
//! - `monitor`: the endless-loop monitor.
//! - `log`: message logs (`LOGON`/`LOGOFF`).
//! - `timer`: centisecond time and timeouts.
//! - `command`: kernel text commands (TIMEOUT, REG, LAUNCH, STAT, ...).
//! - `env`, `config`: the config environment and skynet's config file format.
//! - `module`: the service modules the kernel launches by name.
//! - `logger`: the `logger` service.
//! - `harbor`: global names and remote routing (`harbor` module).
//! - `cluster`: multi-node harbors (`cslave`, `cmaster` modules).
//! - `gate`: the native `gate` module (skynet's C gate).
//! - [`snlua`]: the Lua service module (`snlua`) and its native Lua modules.
//! - `rt`: the tokio I/O threads (sockets, harbor, embedded master).
//! - `socket`: the socket layer behind `skynet.socketdriver`.
//! - `tracelog`: `tracing` events (embedded master) into the skynet log.
//! - `metrics`: the Prometheus endpoint (config key `metrics`).
//! - `shutdown`: the drain on SIGTERM (config key `drain_time`).
//! - `start`: node start-up.
//! - [`fuzzing`]: the pure decoders above, re-exported for the fuzz crate.
//! - [`outside`]: servers (`redis-server`) started for the tests and
//!   `skynet-bench redis` (not part of the runtime).

#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

pub(crate) mod address;
pub mod cli;
pub(crate) mod cluster;
pub(crate) mod command;
pub(crate) mod config;
pub(crate) mod context;
pub(crate) mod env;
pub(crate) mod gate;
pub(crate) mod handle;
pub(crate) mod harbor;
pub(crate) mod kernel;
pub(crate) mod log;
pub(crate) mod logger;
pub(crate) mod message;
pub(crate) mod metrics;
pub(crate) mod module;
pub(crate) mod monitor;
pub(crate) mod mq;
pub mod outside;
pub(crate) mod rt;
pub(crate) mod scheduler;
pub(crate) mod shutdown;
pub mod snlua;
pub(crate) mod socket;
pub(crate) mod start;
pub(crate) mod timer;
pub(crate) mod tracelog;

/// The byte-level pieces of this crate that take untrusted input and need no
/// running node, made reachable for `fuzz/` (a separate crate). Not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::config::{load_file, substitute_env, ConfigError};
    pub use crate::snlua::netpack::{Fed, Framer, MAX_PACKET};
    pub use crate::socket::buffer::SockBuf;
}

use std::sync::Arc;

/// Registers the service modules built into the node binary.
pub(crate) fn register_builtin_modules(k: &kernel::Kernel) {
    k.register_module("logger", Arc::new(|| Box::new(logger::Logger::default())));
    k.register_module("snlua", Arc::new(|| Box::new(snlua::Snlua::new())));
    k.register_module(
        "harbor",
        Arc::new(|| Box::new(harbor::LocalHarbor::default())),
    );
    k.register_module("cslave", Arc::new(|| Box::new(cluster::Slave::default())));
    k.register_module("cmaster", Arc::new(|| Box::new(cluster::CMaster)));
    k.register_module("gate", Arc::new(|| Box::new(gate::Gate::default())));
    k.on_undeliverable(
        message::ptype::MULTICAST,
        snlua::multicast::release_undelivered,
    );
}
