//! skynet-node: a skynet 1.8 compatible runtime.
//!
//! Map of the crate (kernel first, then services, then start-up):
//! - [`message`]: messages and skynet's message types.
//! - [`handle`]: handle registry and local names.
//! - [`mq`]: per-service queues and their scheduling flag.
//! - [`context`]: the kernel's record of one service.
//! - [`kernel`]: the process-wide node state; launch, send, retire, log.
//! - [`scheduler`]: worker threads and the endless-loop monitor.
//! - [`timer`]: centisecond time and timeouts.
//! - [`command`]: kernel text commands (TIMEOUT, REG, LAUNCH, STAT, ...).
//! - [`env`], [`config`]: the config environment and skynet's config file format.
//! - [`module`]: the service-module trait the kernel launches by name.
//! - [`logger`]: the `logger` service.
//! - [`harbor`]: global names and remote routing (`harbor` module).
//! - [`cluster`]: multi-node harbors (`cslave`, `cmaster` modules).
//! - [`snlua`]: the Lua service module (`snlua`) and its native Lua modules.
//! - [`rt`]: the tokio I/O threads (sockets, harbor, embedded master).
//! - [`socket`]: the socket layer behind `skynet.socketdriver`.
//! - [`tracelog`]: `tracing` events (embedded master) into the skynet log.
//! - [`start`]: node start-up.

pub mod cli;
pub mod cluster;
pub mod command;
pub mod config;
pub mod context;
pub mod env;
pub mod handle;
pub mod harbor;
pub mod kernel;
pub mod logger;
pub mod message;
pub mod module;
pub mod mq;
pub mod rt;
pub mod scheduler;
pub mod snlua;
pub mod socket;
pub mod start;
pub mod timer;
pub mod tracelog;

use std::sync::Arc;

/// Registers the service modules built into the node binary.
pub fn register_builtin_modules(k: &kernel::Kernel) {
    k.register_module("logger", Arc::new(|| Box::new(logger::Logger::default())));
    k.register_module("snlua", Arc::new(|| Box::new(snlua::Snlua::new())));
    k.register_module(
        "harbor",
        Arc::new(|| Box::new(harbor::LocalHarbor::default())),
    );
    k.register_module("cslave", Arc::new(|| Box::new(cluster::Slave::default())));
    k.register_module("cmaster", Arc::new(|| Box::new(cluster::CMaster)));
    k.on_undeliverable(
        message::ptype::MULTICAST,
        snlua::multicast::release_undelivered,
    );
}
