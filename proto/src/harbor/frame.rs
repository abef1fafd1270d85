//! [`HarborFrame`]: one message between two harbors, and its byte layout.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::HarborCodecError;
use crate::handle::{Handle, LOCAL_MASK};

/// Size of the trailer (source, type and destination, session).
pub const TRAILER_LEN: usize = 12;
/// Largest value of the length field: its first byte must be 0.
pub const MAX_FRAME_LEN: u32 = 0x00ff_ffff;
/// Largest payload a frame can carry.
pub const MAX_PAYLOAD_LEN: usize = MAX_FRAME_LEN as usize - TRAILER_LEN;

/// One message between harbors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarborFrame {
    /// The sender's full handle (its harbor id included).
    pub source: u32,
    /// The destination handle. When encoding, only the low 24 bits are sent;
    /// a decoded frame holds just those 24 bits, and the receiver adds its
    /// own harbor id.
    pub destination: u32,
    /// The message type (PTYPE): 10 lua, 1 response, 0 text, 7 error, ...
    pub ptype: u8,
    /// The session; 0 for a plain send.
    pub session: i32,
    /// The message bytes.
    pub payload: Bytes,
}

impl HarborFrame {
    /// The handle a received frame is for on the node whose harbor id is
    /// `own_harbor`: the 24 bits from the wire under the receiver's harbor id.
    pub fn delivered_to(&self, own_harbor: u8) -> Handle {
        Handle(self.destination).with_harbor(own_harbor)
    }

    /// Size of the encoded frame, length field included.
    pub fn encoded_len(&self) -> usize {
        4 + self.payload.len() + TRAILER_LEN
    }

    /// Appends the encoded frame to `dst`; refuses payloads over
    /// [`MAX_PAYLOAD_LEN`].
    pub fn encode_into<B: BufMut>(&self, dst: &mut B) -> Result<(), HarborCodecError> {
        if self.payload.len() > MAX_PAYLOAD_LEN {
            return Err(HarborCodecError::PayloadTooLarge(self.payload.len()));
        }
        // Bounded by MAX_FRAME_LEN just above.
        let len = (self.payload.len() + TRAILER_LEN) as u32;
        dst.put_u32(len);
        dst.put_slice(&self.payload);
        dst.put_u32(self.source);
        dst.put_u32((u32::from(self.ptype) << 24) | (self.destination & LOCAL_MASK));
        dst.put_i32(self.session);
        Ok(())
    }

    /// The encoded frame as bytes.
    pub fn to_bytes(&self) -> Result<Bytes, HarborCodecError> {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut out)?;
        Ok(out.freeze())
    }

    /// If `buf` starts with a whole frame, its total size (length field
    /// included); `None` when more bytes are needed. A length field that no
    /// frame may have is an error as soon as its 4 bytes are there.
    pub fn check(buf: &[u8]) -> Result<Option<usize>, HarborCodecError> {
        let Some((len_bytes, _)) = buf.split_first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*len_bytes);
        if len > MAX_FRAME_LEN {
            return Err(HarborCodecError::FrameTooLong(len));
        }
        if (len as usize) < TRAILER_LEN {
            return Err(HarborCodecError::FrameTooShort(len));
        }
        let total = 4 + len as usize;
        Ok((buf.len() >= total).then_some(total))
    }

    /// Parses one complete frame that [`check`](Self::check) measured as
    /// `frame.len()` bytes.
    fn parse(mut frame: BytesMut) -> HarborFrame {
        let payload_len = frame.len() - 4 - TRAILER_LEN;
        frame.advance(4);
        let payload = frame.split_to(payload_len).freeze();
        let source = frame.get_u32();
        let type_and_destination = frame.get_u32();
        let session = frame.get_i32();
        HarborFrame {
            source,
            destination: type_and_destination & LOCAL_MASK,
            ptype: (type_and_destination >> 24) as u8,
            session,
            payload,
        }
    }

    /// Takes one frame off the front of `src` if it is complete.
    pub fn decode_from(src: &mut BytesMut) -> Result<Option<HarborFrame>, HarborCodecError> {
        match Self::check(src)? {
            Some(total) => Ok(Some(Self::parse(src.split_to(total)))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_rebuilds_the_destination() {
        // Captured: :02000007 -> :01000009, lua, session 8, pack("ping", 42).
        let wire = [
            0x00, 0x00, 0x00, 0x13, 0x24, 0x70, 0x69, 0x6e, 0x67, 0x0a, 0x2a, 0x02, 0x00, 0x00,
            0x07, 0x0a, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08,
        ];
        let mut buf = BytesMut::from(&wire[..]);
        let frame = HarborFrame::decode_from(&mut buf).unwrap().unwrap();
        assert_eq!(frame.destination, 0x0000_0009);
        assert_eq!(frame.delivered_to(1), Handle(0x0100_0009));
        assert_eq!(
            (frame.source, frame.ptype, frame.session),
            (0x0200_0007, 10, 8)
        );
        assert_eq!(&frame.payload[..], &wire[4..11]);
    }
}
