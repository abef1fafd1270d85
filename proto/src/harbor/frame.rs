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

/// The 12 bytes after a frame's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// The sender's full handle.
    pub source: u32,
    /// The low 24 bits of the destination handle (all that travels).
    pub destination: u32,
    /// The message type (PTYPE).
    pub ptype: u8,
    /// The session.
    pub session: i32,
}

impl Trailer {
    /// The trailer's bytes: source, `type << 24 | destination & 0xffffff`
    /// and session, each big-endian. Destination bits above the low 24 are
    /// not sent.
    pub fn to_bytes(&self) -> [u8; TRAILER_LEN] {
        let mut out = [0u8; TRAILER_LEN];
        out[0..4].copy_from_slice(&self.source.to_be_bytes());
        let type_and_destination = (u32::from(self.ptype) << 24) | (self.destination & LOCAL_MASK);
        out[4..8].copy_from_slice(&type_and_destination.to_be_bytes());
        out[8..12].copy_from_slice(&self.session.to_be_bytes());
        out
    }

    /// Reads a received trailer.
    pub fn from_bytes(bytes: &[u8; TRAILER_LEN]) -> Trailer {
        let word =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let type_and_destination = word(4);
        Trailer {
            source: word(0),
            destination: type_and_destination & LOCAL_MASK,
            ptype: (type_and_destination >> 24) as u8,
            session: word(8) as i32,
        }
    }
}

/// One message between harbors. The payload is [`Bytes`] for frames this
/// crate decodes; a sender may carry any byte container (`Vec<u8>` moves a
/// message's buffer in without a copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarborFrame<P = Bytes> {
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
    pub payload: P,
}

impl<P: AsRef<[u8]>> HarborFrame<P> {
    /// The handle a received frame is for on the node whose harbor id is
    /// `own_harbor`: the 24 bits from the wire under the receiver's harbor id.
    pub fn delivered_to(&self, own_harbor: u8) -> Handle {
        Handle(self.destination).with_harbor(own_harbor)
    }

    /// Size of the encoded frame, length field included.
    pub fn encoded_len(&self) -> usize {
        4 + self.payload.as_ref().len() + TRAILER_LEN
    }

    /// Appends the encoded frame to `dst`; refuses payloads over
    /// [`MAX_PAYLOAD_LEN`].
    pub fn encode_into<B: BufMut>(&self, dst: &mut B) -> Result<(), HarborCodecError> {
        let payload = self.payload.as_ref();
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(HarborCodecError::PayloadTooLarge(payload.len()));
        }
        dst.put_slice(&self.head());
        dst.put_slice(payload);
        dst.put_slice(&self.trailer().to_bytes());
        Ok(())
    }

    /// The length field: payload length + 12, big-endian. Meaningful for a
    /// payload of at most [`MAX_PAYLOAD_LEN`] bytes, which a writer that
    /// sends the parts itself checks first ([`encode_into`](Self::encode_into)
    /// does).
    pub fn head(&self) -> [u8; 4] {
        let len = self.payload.as_ref().len();
        debug_assert!(len <= MAX_PAYLOAD_LEN);
        ((len + TRAILER_LEN) as u32).to_be_bytes()
    }

    /// The frame's trailer.
    pub fn trailer(&self) -> Trailer {
        Trailer {
            source: self.source,
            destination: self.destination & LOCAL_MASK,
            ptype: self.ptype,
            session: self.session,
        }
    }

    /// The encoded frame as bytes.
    pub fn to_bytes(&self) -> Result<Bytes, HarborCodecError> {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut out)?;
        Ok(out.freeze())
    }
}

impl HarborFrame {
    /// If `buf` starts with a whole frame, its total size (length field
    /// included); `None` when more bytes are needed. A length field that no
    /// frame may have is an error as soon as its 4 bytes are there.
    pub fn check(buf: &[u8]) -> Result<Option<usize>, HarborCodecError> {
        Ok(Self::measure(buf)?.filter(|&total| buf.len() >= total))
    }

    /// The total size (length field included) of the frame `buf` starts
    /// with, as soon as its length field is there, whole frame or not; `None`
    /// before. A length field that no frame may have is an error.
    pub fn measure(buf: &[u8]) -> Result<Option<usize>, HarborCodecError> {
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
        Ok(Some(4 + len as usize))
    }

    /// Parses one complete frame that [`check`](Self::check) measured as
    /// `frame.len()` bytes.
    fn parse(mut frame: BytesMut) -> HarborFrame {
        let payload_len = frame.len() - 4 - TRAILER_LEN;
        frame.advance(4);
        let payload = frame.split_to(payload_len).freeze();
        let mut trailer = [0u8; TRAILER_LEN];
        frame.copy_to_slice(&mut trailer);
        let t = Trailer::from_bytes(&trailer);
        HarborFrame {
            source: t.source,
            destination: t.destination,
            ptype: t.ptype,
            session: t.session,
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

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '|')
            .collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The frame as a writer that sends its parts itself puts it on the wire.
    fn parts(f: &HarborFrame) -> Vec<u8> {
        let mut v = f.head().to_vec();
        v.extend_from_slice(&f.payload);
        v.extend_from_slice(&f.trailer().to_bytes());
        v
    }

    #[test]
    fn matches_captured_frames() {
        // harbor2 -> harbor1 lua call "REPORT", :02000006 -> :01000005, session 2
        let call = HarborFrame {
            source: 0x0200_0006,
            destination: 0x0100_0005,
            ptype: 10,
            session: 2,
            payload: Bytes::from(hex("34 52 45 50 4f 52 54 22 06 00 00 02")),
        };
        let wire = hex("00 00 00 18 | 34 52 45 50 4f 52 54 22 06 00 00 02 | 02 00 00 06 | 0a 00 00 05 | 00 00 00 02");
        assert_eq!(parts(&call), wire);
        assert_eq!(call.to_bytes().unwrap(), wire);
        // the ERROR answer to a call for the unknown :02000999
        let error = HarborFrame {
            source: 0x0200_0999,
            destination: 0x0100_0031,
            ptype: 7,
            session: 9,
            payload: Bytes::new(),
        };
        let wire = hex("00 00 00 0c | 02 00 09 99 | 07 00 00 31 | 00 00 00 09");
        assert_eq!(parts(&error), wire);
        let mut buf = BytesMut::from(&wire[..]);
        let d = HarborFrame::decode_from(&mut buf).unwrap().unwrap();
        assert_eq!(
            (d.source, d.destination, d.ptype, d.session),
            (0x0200_0999, 0x31, 7, 9)
        );
    }

    #[test]
    fn trailer_and_lengths() {
        let bytes: [u8; TRAILER_LEN] = hex("02 00 00 07 0a 00 00 20 ff ff ff ff")
            .try_into()
            .unwrap();
        let t = Trailer::from_bytes(&bytes);
        assert_eq!(
            t,
            Trailer {
                source: 0x0200_0007,
                destination: 0x20,
                ptype: 10,
                session: -1
            }
        );
        assert_eq!(t.to_bytes(), bytes);
        assert_eq!(HarborFrame::measure(&[0, 0, 0, 12]).unwrap(), Some(16));
        assert_eq!(
            HarborFrame::measure(&[0, 0xff, 0xff, 0xff]).unwrap(),
            Some(0x0100_0003)
        );
        assert_eq!(HarborFrame::measure(&[0, 0, 0]).unwrap(), None);
        assert_eq!(HarborFrame::check(&[0, 0, 0, 12, 1]).unwrap(), None);
        assert!(matches!(
            HarborFrame::measure(&[1, 0, 0, 0]),
            Err(HarborCodecError::FrameTooLong(0x0100_0000))
        ));
        assert!(matches!(
            HarborFrame::measure(&[0, 0, 0, 11]),
            Err(HarborCodecError::FrameTooShort(11))
        ));
    }

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
