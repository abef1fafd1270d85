//! Errors of the harbor protocol.

/// Errors of [`HarborCodec`](super::HarborCodec).
#[derive(Debug, thiserror::Error)]
pub enum HarborCodecError {
    /// The transport failed.
    #[error("harbor connection: {0}")]
    Io(#[from] std::io::Error),
    /// A received length field does not start with a 0 byte, so the frame
    /// would be 16 MiB or more (skynet: "Message is too long").
    #[error("harbor frame length {0:#010x} is too long (the first length byte must be 0)")]
    FrameTooLong(u32),
    /// A received length field is below the 12 bytes of the trailer.
    #[error("harbor frame length {0} is shorter than its 12-byte trailer")]
    FrameTooShort(u32),
    /// A payload to send is larger than a frame can carry (0xfffff3 bytes).
    #[error("harbor payload of {0} bytes is too large, the limit is 16777203")]
    PayloadTooLarge(usize),
}

/// Errors of the one-byte harbor handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Harbor id 0 means "no harbor" and cannot be exchanged.
    #[error("harbor id 0 cannot take part in a harbor handshake")]
    ZeroId,
    /// The peer announced another id than the one expected.
    #[error("Invalid shakehand id ({received}), expected harbor {expected}")]
    Mismatch {
        /// The id the master said the peer has.
        expected: u8,
        /// The id the peer sent.
        received: u8,
    },
}
