//! Harbor frames as the link writer sends them: the payload is moved in from
//! the message (no copy), the 4-byte length and the 12-byte trailer are built
//! beside it. Layout: u32 BE length (payload + 12), payload, then source,
//! (type << 24 | destination & 0xffffff) and session, each u32 BE.

use skynet_proto::harbor::{MAX_PAYLOAD_LEN, TRAILER_LEN};

/// Local id 0 never names a service: frames to it are link heartbeats.
pub const HEARTBEAT_DEST: u32 = 0;
/// Payload of a heartbeat probe (type TEXT) and of its answer (type RESPONSE).
pub const PING: &[u8] = b"PING";
pub const PONG: &[u8] = b"PONG";

#[derive(Debug)]
pub struct OutFrame {
    pub payload: Vec<u8>,
    pub trailer: [u8; TRAILER_LEN],
}

impl OutFrame {
    /// A frame for `dest` (only its low 24 bits travel). The payload must not
    /// exceed [`MAX_PAYLOAD_LEN`]; callers check before building.
    pub fn new(source: u32, dest: u32, ptype: u8, session: i32, payload: Vec<u8>) -> OutFrame {
        debug_assert!(payload.len() <= MAX_PAYLOAD_LEN);
        let mut trailer = [0u8; TRAILER_LEN];
        trailer[0..4].copy_from_slice(&source.to_be_bytes());
        trailer[4..8]
            .copy_from_slice(&((u32::from(ptype) << 24) | (dest & 0x00ff_ffff)).to_be_bytes());
        trailer[8..12].copy_from_slice(&session.to_be_bytes());
        OutFrame { payload, trailer }
    }

    pub fn head(&self) -> [u8; 4] {
        ((self.payload.len() + TRAILER_LEN) as u32).to_be_bytes()
    }

    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = self.head().to_vec();
        v.extend_from_slice(&self.payload);
        v.extend_from_slice(&self.trailer);
        v
    }
}

/// The fields of a received trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    pub source: u32,
    /// Low 24 bits of the destination.
    pub local: u32,
    pub ptype: u8,
    pub session: i32,
}

impl Trailer {
    pub fn parse(t: &[u8]) -> Trailer {
        let word = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
        let dst = word(4);
        Trailer {
            source: word(0),
            local: dst & 0x00ff_ffff,
            ptype: (dst >> 24) as u8,
            session: word(8) as i32,
        }
    }
}

/// What is wrong with a frame length read from the wire, if anything.
pub fn check_length(head: [u8; 4], harbor: u8) -> Result<usize, String> {
    let len = u32::from_be_bytes(head);
    if head[0] != 0 {
        return Err(format!(
            "Message is too long from harbor {harbor} (frame length {len:#010x}, the limit is 0x00ffffff): dropping the link"
        ));
    }
    if (len as usize) < TRAILER_LEN {
        return Err(format!(
            "Malformed frame from harbor {harbor} (length {len} is shorter than its 12-byte trailer): dropping the link"
        ));
    }
    Ok(len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skynet_proto::harbor::HarborFrame;

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

    #[test]
    fn matches_captured_frames() {
        // harbor2 -> harbor1 lua call "REPORT", :02000006 -> :01000005, session 2
        let payload = hex("34 52 45 50 4f 52 54 22 06 00 00 02");
        let f = OutFrame::new(0x0200_0006, 0x0100_0005, 10, 2, payload);
        assert_eq!(
            f.to_vec(),
            hex("00 00 00 18 | 34 52 45 50 4f 52 54 22 06 00 00 02 | 02 00 00 06 | 0a 00 00 05 | 00 00 00 02")
        );
        // the ERROR answer to a call for the unknown :02000999
        let e = OutFrame::new(0x0200_0999, 0x0100_0031, 7, 9, Vec::new());
        assert_eq!(
            e.to_vec(),
            hex("00 00 00 0c | 02 00 09 99 | 07 00 00 31 | 00 00 00 09")
        );
        // the proto crate decodes what we write
        let mut buf = bytes::BytesMut::from(&e.to_vec()[..]);
        let d = HarborFrame::decode_from(&mut buf).unwrap().unwrap();
        assert_eq!(
            (d.source, d.destination, d.ptype, d.session),
            (0x0200_0999, 0x31, 7, 9)
        );
    }

    #[test]
    fn trailer_and_lengths() {
        let t = Trailer::parse(&hex("02 00 00 07 0a 00 00 20 ff ff ff ff"));
        assert_eq!(
            t,
            Trailer {
                source: 0x0200_0007,
                local: 0x20,
                ptype: 10,
                session: -1
            }
        );
        assert_eq!(check_length([0, 0, 0, 12], 2), Ok(12));
        assert_eq!(check_length([0, 0xff, 0xff, 0xff], 2), Ok(0xff_ffff));
        assert!(check_length([1, 0, 0, 0], 2)
            .unwrap_err()
            .starts_with("Message is too long from harbor 2"));
        assert!(check_length([0, 0, 0, 11], 2)
            .unwrap_err()
            .starts_with("Malformed frame from harbor 2"));
    }
}
