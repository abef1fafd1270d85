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
//! * [`packet`] — [`MasterPacket`], parsing and writing one packet body.
//! * [`codec`] — [`MasterCodec`], the length-byte framing as a tokio-util codec.
//! * [`error`] — [`PacketError`] and [`MasterCodecError`].

pub mod codec;
pub mod error;
pub mod packet;

pub use codec::{encode_frame, MasterCodec, MAX_BODY_LEN};
pub use error::{MasterCodecError, PacketError};
pub use packet::MasterPacket;
