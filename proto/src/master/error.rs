//! Errors of the master protocol.

use crate::global_name::NameError;
use crate::seri::DecodeError;

/// Why a packet body is not a valid master packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// The body is not a valid seri stream.
    #[error("packet body: {0}")]
    Seri(#[from] DecodeError),
    /// The body holds no value at all.
    #[error("empty packet")]
    Empty,
    /// The first value is not a one-byte string.
    #[error("packet does not start with a one-letter string")]
    BadLetter,
    /// The letter is not one of H, W, C, R, Q, N, D (skynet's) or P, K, A (ours).
    #[error("unknown packet letter {:?}", char::from(*.0))]
    UnknownLetter(u8),
    /// An argument has the wrong type.
    #[error("packet {}: {what} must be {expected}", char::from(*.letter))]
    WrongType {
        /// The packet letter.
        letter: u8,
        /// Which argument.
        what: &'static str,
        /// The type it must have.
        expected: &'static str,
    },
    /// An argument is missing.
    #[error("packet {}: missing {what}", char::from(*.letter))]
    MissingArgument {
        /// The packet letter.
        letter: u8,
        /// Which argument.
        what: &'static str,
    },
    /// More values follow the last argument.
    #[error("packet {}: unexpected values after the arguments", char::from(*.letter))]
    ExtraArguments {
        /// The packet letter.
        letter: u8,
    },
    /// An integer argument is outside its range.
    #[error("packet {}: {what} {value} is out of range", char::from(*.letter))]
    OutOfRange {
        /// The packet letter.
        letter: u8,
        /// Which argument.
        what: &'static str,
        /// The value received.
        value: i64,
    },
    /// A name argument is not a valid global name.
    #[error("packet {}: {source}", char::from(*.letter))]
    Name {
        /// The packet letter.
        letter: u8,
        /// What is wrong with the name.
        source: NameError,
    },
    /// A fixed-size argument (nonce, mac) has the wrong length.
    #[error("packet {}: {what} must be {expected} bytes, got {got}", char::from(*.letter))]
    BadLength {
        /// The packet letter.
        letter: u8,
        /// Which argument.
        what: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// An address argument is not UTF-8 text.
    #[error("packet {}: address is not UTF-8", char::from(*.letter))]
    AddressNotUtf8 {
        /// The packet letter.
        letter: u8,
    },
}

/// Errors of [`MasterCodec`](super::MasterCodec).
#[derive(Debug, thiserror::Error)]
pub enum MasterCodecError {
    /// The transport failed.
    #[error("master connection: {0}")]
    Io(#[from] std::io::Error),
    /// A received packet is malformed.
    #[error("malformed master packet: {0}")]
    Packet(#[from] PacketError),
    /// A packet to send is longer than the 255 bytes its length byte allows
    /// (skynet: "too long").
    #[error("master packet too long: {0} bytes, the limit is 255")]
    TooLong(usize),
}
