//! The slave <-> slave data protocol (skynet's `harbor` service).
//!
//! Two harbors talk over one TCP connection. The connecting side (the older
//! node, told to connect by the master's `C`) sends one byte, its harbor id;
//! the accepting side answers with its own id byte ([`handshake`]). After
//! that both directions carry frames ([`frame`], [`codec`]):
//!
//! ```text
//! u32 BE  L = payload length + 12     (the first byte must be 0: L < 2^24)
//! bytes   payload
//! u32 BE  source handle
//! u32 BE  message type << 24 | destination local id (24 bits)
//! u32 BE  session
//! ```
//!
//! The 12 bytes after the payload are a trailer. The destination's harbor id
//! is not on the wire: the receiver puts its own there.
//!
//! * [`frame`] — [`HarborFrame`] and its [`Trailer`].
//! * [`codec`] — [`HarborCodec`], the framing as a tokio-util codec.
//! * [`handshake`] — the one-byte id exchange.
//! * [`error`] — [`HarborCodecError`], [`HandshakeError`].

pub mod codec;
pub mod error;
pub mod frame;
pub mod handshake;

pub use codec::HarborCodec;
pub use error::{HandshakeError, HarborCodecError};
pub use frame::{HarborFrame, Trailer, MAX_FRAME_LEN, MAX_PAYLOAD_LEN, TRAILER_LEN};
pub use handshake::{check_handshake, handshake_byte, HANDSHAKE_LEN};
