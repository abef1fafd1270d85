//! The operators' view of a process: a small HTTP endpoint ([`http`]) that
//! answers `GET` requests from a handler, and a builder for one scrape in
//! Prometheus text format ([`prom`]). `skynet-node` (config key `metrics`) and
//! `skynet-master` (`--metrics`) both serve through it; what they measure is
//! theirs.
//!
//! - `http`: request-head parsing (`check` before `parse`, bounded) and the
//!   accept loop.
//! - `prom`: [`prom::Scrape`], metrics gathered at scrape time and encoded
//!   with `prometheus-client`.

pub mod http;
pub mod prom;
