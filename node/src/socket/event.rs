//! The payload of a PTYPE_SOCKET message: our own encoding of skynet's socket
//! event `{type, id, ud, data}`.
//!
//! Layout (all integers little endian):
//!
//! ```text
//! body | extra | body_len u32 | ud i32 | id i32 | kind u8 | MAGIC u8
//! ```
//!
//! The fixed part sits at the *end* so that, for DATA and UDP events, the
//! message block itself can be handed to Lua as the data block: the receiver
//! truncates it to `body_len` (no reallocation, the address stays the same)
//! and keeps it. `body` is the received bytes (DATA, UDP) or the event's text
//! (CONNECT, ACCEPT, ERROR; empty for CLOSE and WARNING). `extra` is the UDP
//! address blob of a UDP event, empty otherwise.

/// Event kinds, numbered as skynet's `SKYNET_SOCKET_TYPE_*`.
pub mod kind {
    pub const DATA: u8 = 1;
    pub const CONNECT: u8 = 2;
    pub const CLOSE: u8 = 3;
    pub const ACCEPT: u8 = 4;
    pub const ERROR: u8 = 5;
    pub const UDP: u8 = 6;
    pub const WARNING: u8 = 7;
}

/// Size of the fixed trailer.
pub const TRAILER: usize = 14;
const MAGIC: u8 = 0xa7;
/// Texts (addresses, error messages) are cut to this many bytes, as in skynet.
pub const MAX_TEXT: usize = 128;

/// The fixed part of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    pub id: i32,
    pub ud: i32,
    pub body_len: usize,
    pub extra_len: usize,
}

/// True for the kinds whose body is a data block handed over to the receiver.
pub fn carries_block(kind: u8) -> bool {
    kind == kind::DATA || kind == kind::UDP
}

/// Builds an event around `body` (reusing its allocation when it has room).
pub fn encode(kind: u8, id: i32, ud: i32, mut body: Vec<u8>, extra: &[u8]) -> Vec<u8> {
    let body_len = body.len() as u32;
    body.reserve_exact(extra.len() + TRAILER);
    body.extend_from_slice(extra);
    body.extend_from_slice(&body_len.to_le_bytes());
    body.extend_from_slice(&ud.to_le_bytes());
    body.extend_from_slice(&id.to_le_bytes());
    body.push(kind);
    body.push(MAGIC);
    body
}

/// An event whose body is a text, cut to [`MAX_TEXT`] bytes.
pub fn encode_text(kind: u8, id: i32, ud: i32, text: &str) -> Vec<u8> {
    let t = text.as_bytes();
    let t = &t[..t.len().min(MAX_TEXT)];
    let mut v = Vec::with_capacity(t.len() + TRAILER);
    v.extend_from_slice(t);
    encode(kind, id, ud, v, &[])
}

/// Reads the fixed part of an event; None if `msg` is not one.
pub fn decode_header(msg: &[u8]) -> Option<Header> {
    let n = msg.len();
    if n < TRAILER || msg[n - 1] != MAGIC {
        return None;
    }
    let t = &msg[n - TRAILER..];
    let body_len = u32::from_le_bytes(t[0..4].try_into().unwrap()) as usize;
    let ud = i32::from_le_bytes(t[4..8].try_into().unwrap());
    let id = i32::from_le_bytes(t[8..12].try_into().unwrap());
    let kind = t[12];
    if !(kind::DATA..=kind::WARNING).contains(&kind) || body_len > n - TRAILER {
        return None;
    }
    Some(Header {
        kind,
        id,
        ud,
        body_len,
        extra_len: n - TRAILER - body_len,
    })
}

/// A decoded event, as the tests read them (the node's consumers are Lua
/// services, which decode events in `socketdriver.unpack`).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: u8,
    pub id: i32,
    pub ud: i32,
    pub data: Vec<u8>,
    /// The UDP address blob of a UDP event.
    pub address: Vec<u8>,
}

#[cfg(test)]
impl Event {
    pub fn decode(msg: &[u8]) -> Option<Event> {
        let h = decode_header(msg)?;
        Some(Event {
            kind: h.kind,
            id: h.id,
            ud: h.ud,
            data: msg[..h.body_len].to_vec(),
            address: msg[h.body_len..h.body_len + h.extra_len].to_vec(),
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = encode(kind::DATA, 7, 3, b"abc".to_vec(), &[]);
        assert_eq!(m.len(), 3 + TRAILER);
        let h = decode_header(&m).unwrap();
        assert_eq!(
            h,
            Header {
                kind: kind::DATA,
                id: 7,
                ud: 3,
                body_len: 3,
                extra_len: 0
            }
        );
        let m = encode(kind::UDP, 9, 2, b"hi".to_vec(), &[1, 0, 80, 127, 0, 0, 1]);
        let e = Event::decode(&m).unwrap();
        assert_eq!(e.data, b"hi");
        assert_eq!(e.address, vec![1, 0, 80, 127, 0, 0, 1]);
        let m = encode_text(kind::ERROR, -1, 0, &"x".repeat(300));
        assert_eq!(Event::decode(&m).unwrap().data.len(), MAX_TEXT);
        let m = encode_text(kind::CLOSE, 5, 0, "");
        assert_eq!(Event::decode(&m).unwrap().text(), "");
    }

    #[test]
    fn data_block_is_not_reallocated() {
        let mut body = Vec::with_capacity(64 + TRAILER);
        body.extend_from_slice(&[5u8; 64]);
        let p = body.as_ptr();
        let m = encode(kind::DATA, 1, 64, body, &[]);
        assert_eq!(m.as_ptr(), p);
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode_header(b"").is_none());
        assert!(decode_header(&[0u8; 20]).is_none());
        let mut m = encode(kind::DATA, 1, 1, b"a".to_vec(), &[]);
        let n = m.len();
        m[n - 2] = 42;
        assert!(decode_header(&m).is_none());
    }
}
