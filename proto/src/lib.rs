//! skynet's wire formats, with no runtime attached.
//!
//! This crate knows bytes, not sockets, services or Lua. Every decoder in it
//! checks its input before building anything from it and reports problems as a
//! typed error; none of them panics on bad input.
//!
//! # Map of modules
//!
//! | module          | owns                                                                    |
//! |-----------------|-------------------------------------------------------------------------|
//! | [`handle`]      | [`Handle`]: the 32-bit service address (8-bit harbor id + 24-bit local id) |
//! | [`seri`]        | the `skynet.pack` value format: a token writer, a token reader, an owned [`seri::Value`] |
//! | [`global_name`] | [`GlobalName`]: the validated cluster-wide service name (1..=15 bytes)  |
//! | [`master`]      | the master <-> slave control protocol: [`master::MasterPacket`], [`master::MasterCodec`] |
//! | [`harbor`]      | the slave <-> slave data protocol: [`harbor::HarborFrame`], [`harbor::HarborCodec`], the 1-byte handshake |
//! | [`sproto`]      | sproto: schemas (binary and text), schema-driven encode/decode, 0-pack |
//! | [`auth`]        | the cluster secret's challenge-response proofs (HMAC-SHA256, ours)      |
//! | [`cluster`]     | the cluster packets of `skynet.cluster.core`: requests, pushes, trace tags, replies, multipart |
//!
//! Byte order differs between formats: seri and sproto values are little-endian, harbor
//! frame lengths and trailers are big-endian; cluster packets have a big-endian size
//! and little-endian fields.

pub mod auth;
pub mod cluster;
pub mod global_name;
pub mod handle;
pub mod harbor;
pub mod master;
pub mod seri;
pub mod sproto;

pub use global_name::{GlobalName, NameError};
pub use handle::{Handle, HandleError};
