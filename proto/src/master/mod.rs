//! The master <-> slave control protocol (skynet's `cmaster` / `cslave`).
//!
//! Each slave keeps one TCP connection to the master. Every packet on it is
//! one length byte `N` followed by `N` bytes of seri values: a one-letter
//! string naming the packet, then its arguments. `N` cannot exceed 255, which
//! bounds addresses and names. There is no other framing.
//!
//! | letter | direction      | arguments                        |
//! |--------|----------------|----------------------------------|
//! | `H`    | slave → master | harbor id, listen address        |
//! | `W`    | master → slave | number of slaves that will connect to it |
//! | `C`    | master → slave | harbor id and address of a newcomer to connect to |
//! | `R`    | slave → master | global name, handle              |
//! | `Q`    | slave → master | global name                      |
//! | `N`    | master → slave | global name, handle              |
//! | `D`    | master → slave | harbor id of a slave that went down |
//!
//! Ours (a C skynet slave ignores them, a C skynet master never sends them):
//!
//! | letter | direction      | arguments                        |
//! |--------|----------------|----------------------------------|
//! | `W`    | master → slave | as above, then the 32-byte set of the harbors that will connect, then (with a cluster secret) the master's proof |
//! | `P`    | master → slave | harbor id and address of one of those harbors (after `W`) |
//! | `K`    | master → slave | 16-byte nonce: the master's challenge, instead of `W`, when it has a cluster secret |
//! | `A`    | slave → master | 16-byte nonce and 32-byte mac: the slave's answer (see [`crate::auth`]) |
//!
//! * [`packet`] — [`MasterPacket`], parsing and writing one packet body.
//! * [`codec`] — [`MasterCodec`], the length-byte framing as a tokio-util codec.
//! * [`error`] — [`PacketError`] and [`MasterCodecError`].

pub mod codec;
pub mod error;
pub mod packet;

pub use codec::{encode_frame, MasterCodec, MAX_BODY_LEN};
pub use error::{MasterCodecError, PacketError};
pub use packet::{HarborSet, MasterPacket};
