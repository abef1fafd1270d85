//! [`MasterCodec`]: the master protocol's framing, one length byte then the
//! body, as a tokio-util [`Decoder`] and [`Encoder`].
//!
//! Decoding first checks that a whole packet is buffered ([`check`]) and only
//! then parses it, consuming exactly that packet even when it is malformed.

use bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::error::MasterCodecError;
use super::packet::MasterPacket;

/// Largest body a packet can have: its length must fit in one byte.
pub const MAX_BODY_LEN: usize = 255;

/// Length-byte framing of [`MasterPacket`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct MasterCodec;

impl MasterCodec {
    /// A codec.
    pub fn new() -> Self {
        MasterCodec
    }
}

/// If `buf` starts with a whole packet, its total size (length byte
/// included); `None` when more bytes are needed.
pub fn check(buf: &[u8]) -> Option<usize> {
    let (&len, rest) = buf.split_first()?;
    let len = usize::from(len);
    (rest.len() >= len).then_some(1 + len)
}

/// Encodes `packet` as a complete frame (length byte and body).
pub fn encode_frame(packet: &MasterPacket) -> Result<Vec<u8>, MasterCodecError> {
    let mut out = Vec::new();
    out.put_u8(0);
    packet
        .write_body(&mut out)
        .map_err(|_| MasterCodecError::TooLong(out.len().saturating_sub(1)))?;
    let body_len = out.len() - 1;
    let len = u8::try_from(body_len).map_err(|_| MasterCodecError::TooLong(body_len))?;
    out[0] = len;
    Ok(out)
}

impl Decoder for MasterCodec {
    type Item = MasterPacket;
    type Error = MasterCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<MasterPacket>, MasterCodecError> {
        let Some(total) = check(src) else {
            src.reserve(1 + MAX_BODY_LEN);
            return Ok(None);
        };
        let frame = src.split_to(total);
        let packet = MasterPacket::parse(&frame[1..])?;
        Ok(Some(packet))
    }
}

impl Encoder<MasterPacket> for MasterCodec {
    type Error = MasterCodecError;

    fn encode(&mut self, packet: MasterPacket, dst: &mut BytesMut) -> Result<(), MasterCodecError> {
        self.encode(&packet, dst)
    }
}

impl Encoder<&MasterPacket> for MasterCodec {
    type Error = MasterCodecError;

    fn encode(
        &mut self,
        packet: &MasterPacket,
        dst: &mut BytesMut,
    ) -> Result<(), MasterCodecError> {
        let start = dst.len();
        dst.put_u8(0);
        let written = packet.write_body(dst);
        let body_len = dst.len() - start - 1;
        match u8::try_from(body_len) {
            Ok(len) if written.is_ok() => {
                dst[start] = len;
                Ok(())
            }
            _ => {
                dst.truncate(start);
                Err(MasterCodecError::TooLong(body_len))
            }
        }
    }
}
