//! skynet's cluster wire format (the packets of `skynet.cluster.core`): the
//! requests a clustersender writes and a clusteragent reads, the replies
//! going back, trace tags, and the multipart split of big messages.
//!
//! Every packet is a `u16` big-endian size and a body; integers inside a body
//! are `u32` little-endian. Encoders here give a packet as a fixed-size head
//! (size, type and fields) plus a borrowed slice of the message, so a caller
//! can copy both into its own buffer without an intermediate allocation.
//! Decoders take a body without its size prefix (the framing layer strips
//! it), check its layout first and only then read it, and never panic.
//!
//! Requests (body type byte, then):
//! - `00` addr, session, msg — a message of fewer than [`PART`] bytes to a
//!   numeric address; session 0 is a push.
//! - `01` / `41` addr, session, total — the start of a multipart request or
//!   push (exactly 13 bytes).
//! - `80` namelen, name, session, msg — as `00`, to a name.
//! - `81` / `c1` namelen, name, session, total — as `01` / `41`, to a name.
//! - `02` session, chunk of [`PART`] bytes — a multipart piece; `03` the last
//!   piece (at most [`PART`] bytes).
//! - `04` tag — a trace tag for the request that follows.
//!
//! Replies: session, type, data. Type `0` error (at most [`PART`] bytes), `1`
//! ok, `2` multipart begin (data = total; exactly 9 bytes), `3` a piece of
//! [`PART`] bytes, `4` the last piece. An ok reply goes multipart when it is
//! longer than [`PART`] bytes; a longer error is cut to [`PART`].

use thiserror::Error;

/// The multipart piece size, and the bound of single packets: a request
/// message of `PART` bytes or more, or a reply longer than `PART`, goes in
/// pieces.
pub const PART: usize = 0x8000;
/// The longest name a request can address.
pub const MAX_NAME: usize = 255;
/// The longest trace tag.
pub const MAX_TAG: usize = 0x8000;
/// The largest message that the 32-bit total of a multipart packet can carry.
pub const MAX_MESSAGE: usize = u32::MAX as usize;

/// Head bytes at most: size (2), type (1), name length (1), name (255),
/// session (4), total (4).
const HEAD_MAX: usize = 2 + 1 + 1 + MAX_NAME + 4 + 4;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// A numeric service address (0 is the name query of `cluster.query`).
    Id(u32),
    /// A registered name; skynet's names start with `@`, but any 1..=255
    /// bytes are carried.
    Name(&'a [u8]),
}

/// Why a packet cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("name length is invalid, must be between 1 and 255 characters (got {0} bytes)")]
    NameLength(usize),
    #[error("trace tag is too long : {0}")]
    TagTooLong(usize),
    #[error("message of {0} bytes is too large (at most 4294967295)")]
    MessageTooLarge(usize),
}

/// Why a received body is not a valid packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("Invalid req package. size == 0")]
    EmptyRequest,
    #[error("Invalid req package type {0}")]
    RequestType(u8),
    #[error("Invalid cluster message (size={size}): type {kind:#04x} needs {need} bytes")]
    RequestTooShort { kind: u8, size: usize, need: usize },
    #[error("Invalid cluster message size {size} (multi req must be {want})")]
    MultiBeginSize { size: usize, want: usize },
    #[error("Invalid cluster response (size={0}): needs at least 5 bytes")]
    ResponseTooShort(usize),
    #[error("Invalid cluster response type {0}")]
    ResponseType(u8),
    #[error("Invalid cluster response size {0} (multi begin must be 9)")]
    ResponseBeginSize(usize),
}

/// A packet's head: its size prefix and fixed fields, in a plain array.
#[derive(Clone, Copy)]
pub struct Head {
    bytes: [u8; HEAD_MAX],
    len: usize,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Head({:02x?})", self.as_bytes())
    }
}

impl Head {
    /// Starts the head of a packet of `body_len` bytes after the size.
    fn sized(body_len: usize) -> Head {
        debug_assert!(body_len <= u16::MAX as usize);
        let mut h = Head {
            bytes: [0; HEAD_MAX],
            len: 2,
        };
        h.bytes[..2].copy_from_slice(&(body_len as u16).to_be_bytes());
        h
    }

    /// A request head: size, then the type byte.
    fn request(body_len: usize, kind: u8) -> Head {
        let mut h = Head::sized(body_len);
        h.put(&[kind]);
        h
    }

    /// A reply head: size, session, then the type byte.
    fn reply(body_len: usize, session: u32, kind: u8) -> Head {
        let mut h = Head::sized(body_len);
        h.u32(session);
        h.put(&[kind]);
        h
    }

    fn put(&mut self, b: &[u8]) {
        self.bytes[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// One packet: `head` then `body` on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub head: Head,
    pub body: &'a [u8],
}

impl Packet<'_> {
    /// Bytes on the wire.
    pub fn wire_len(&self) -> usize {
        self.head.len + self.body.len()
    }

    /// The packet as one owned buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.wire_len());
        v.extend_from_slice(self.head.as_bytes());
        v.extend_from_slice(self.body);
        v
    }
}

/// The pieces of a multipart message: type `kind_more` on each piece but the
/// last, `kind_last` on the last; each head carries the session.
#[derive(Debug, Clone)]
pub struct Pieces<'a> {
    rest: &'a [u8],
    session: u32,
    kind_more: u8,
    kind_last: u8,
    /// Request pieces put the type byte before the session, replies after.
    request: bool,
    done: bool,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = Packet<'a>;

    fn next(&mut self) -> Option<Packet<'a>> {
        if self.done {
            return None;
        }
        let (chunk, kind) = if self.rest.len() > PART {
            let (c, r) = self.rest.split_at(PART);
            self.rest = r;
            (c, self.kind_more)
        } else {
            self.done = true;
            (std::mem::take(&mut self.rest), self.kind_last)
        };
        let head = if self.request {
            let mut h = Head::request(5 + chunk.len(), kind);
            h.u32(self.session);
            h
        } else {
            Head::reply(5 + chunk.len(), self.session, kind)
        };
        Some(Packet { head, body: chunk })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = if self.done {
            0
        } else {
            self.rest.len().saturating_sub(1) / PART + 1
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Pieces<'_> {}

/// A request as packets: the first one, and the pieces when it is multipart.
#[derive(Debug, Clone)]
pub struct RequestPackets<'a> {
    pub first: Packet<'a>,
    pub pieces: Option<Pieces<'a>>,
}

/// Packs a request (`push == false`) or a push of `msg` to `target`.
/// `session` goes on the wire as given, except that a single-packet push
/// carries 0 (how the receiver knows no reply is wanted).
pub fn request<'a>(
    target: Target<'_>,
    session: u32,
    msg: &'a [u8],
    push: bool,
) -> Result<RequestPackets<'a>, EncodeError> {
    if msg.len() > MAX_MESSAGE {
        return Err(EncodeError::MessageTooLarge(msg.len()));
    }
    let single = msg.len() < PART;
    let wire_session = if single && push { 0 } else { session };
    let mut head = match target {
        Target::Id(addr) => {
            let mut h = if single {
                Head::request(9 + msg.len(), 0)
            } else {
                Head::request(13, if push { 0x41 } else { 0x01 })
            };
            h.u32(addr);
            h
        }
        Target::Name(name) => {
            if name.is_empty() || name.len() > MAX_NAME {
                return Err(EncodeError::NameLength(name.len()));
            }
            let mut h = if single {
                Head::request(6 + name.len() + msg.len(), 0x80)
            } else {
                Head::request(10 + name.len(), if push { 0xc1 } else { 0x81 })
            };
            h.put(&[name.len() as u8]);
            h.put(name);
            h
        }
    };
    head.u32(wire_session);
    if single {
        return Ok(RequestPackets {
            first: Packet { head, body: msg },
            pieces: None,
        });
    }
    head.u32(msg.len() as u32);
    Ok(RequestPackets {
        first: Packet { head, body: &[] },
        pieces: Some(Pieces {
            rest: msg,
            session,
            kind_more: 2,
            kind_last: 3,
            request: true,
            done: false,
        }),
    })
}

/// The session after `session`: +1, wrapping to 1 past `i32::MAX` (a
/// sender's sessions stay positive 32-bit integers).
pub fn next_session(session: u32) -> u32 {
    let n = session.wrapping_add(1);
    if n > i32::MAX as u32 || n == 0 {
        1
    } else {
        n
    }
}

/// A trace tag packet for the request that follows it.
pub fn trace(tag: &[u8]) -> Result<Packet<'_>, EncodeError> {
    if tag.len() > MAX_TAG {
        return Err(EncodeError::TagTooLong(tag.len()));
    }
    Ok(Packet {
        head: Head::request(1 + tag.len(), 4),
        body: tag,
    })
}

/// A reply as packets.
#[derive(Debug, Clone)]
pub enum ResponsePackets<'a> {
    Single(Packet<'a>),
    Multi {
        begin: Packet<'a>,
        pieces: Pieces<'a>,
    },
}

/// Packs the reply to `session`: `msg` on success, else the error text
/// (cut to [`PART`] bytes).
pub fn response(session: u32, ok: bool, msg: &[u8]) -> Result<ResponsePackets<'_>, EncodeError> {
    fn single(session: u32, kind: u8, body: &[u8]) -> Packet<'_> {
        // The begin packet's body is its 4-byte total, put in the head.
        let len = if kind == 2 { 9 } else { 5 + body.len() };
        Packet {
            head: Head::reply(len, session, kind),
            body,
        }
    }
    if !ok {
        return Ok(ResponsePackets::Single(single(
            session,
            0,
            &msg[..msg.len().min(PART)],
        )));
    }
    if msg.len() <= PART {
        return Ok(ResponsePackets::Single(single(session, 1, msg)));
    }
    if msg.len() > MAX_MESSAGE {
        return Err(EncodeError::MessageTooLarge(msg.len()));
    }
    let mut begin = single(session, 2, &[]);
    begin.head.u32(msg.len() as u32);
    Ok(ResponsePackets::Multi {
        begin,
        pieces: Pieces {
            rest: msg,
            session,
            kind_more: 3,
            kind_last: 4,
            request: false,
            done: false,
        },
    })
}

/// A received request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// A whole message; `session` 0 is a push.
    Single {
        target: Target<'a>,
        session: u32,
        msg: &'a [u8],
    },
    /// The start of a multipart message of `size` bytes.
    Begin {
        target: Target<'a>,
        session: u32,
        size: u32,
        push: bool,
    },
    /// A piece of the multipart message of `session`; `last` on the end.
    Piece {
        session: u32,
        msg: &'a [u8],
        last: bool,
    },
    /// The trace tag of the next request.
    Trace(&'a [u8]),
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The layout of a request body whose lengths have been checked: the
/// offsets [`parse_request`] reads at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestLayout {
    Single { name: Option<usize> },
    Begin { name: Option<usize>, push: bool },
    Piece { last: bool },
    Trace,
}

/// Checks that `body` is a whole request packet of a known type.
fn check_request(body: &[u8]) -> Result<RequestLayout, DecodeError> {
    let kind = *body.first().ok_or(DecodeError::EmptyRequest)?;
    let short = |need: usize| {
        if body.len() < need {
            Err(DecodeError::RequestTooShort {
                kind,
                size: body.len(),
                need,
            })
        } else {
            Ok(())
        }
    };
    // Name packets: type, length, name; `fixed` bytes follow the name.
    let named = |fixed: usize| -> Result<usize, DecodeError> {
        short(2)?;
        let n = body[1] as usize;
        short(2 + n + fixed)?;
        Ok(n)
    };
    match kind {
        0x00 => {
            short(9)?;
            Ok(RequestLayout::Single { name: None })
        }
        0x01 | 0x41 => {
            if body.len() != 13 {
                return Err(DecodeError::MultiBeginSize {
                    size: body.len(),
                    want: 13,
                });
            }
            Ok(RequestLayout::Begin {
                name: None,
                push: kind == 0x41,
            })
        }
        0x02 | 0x03 => {
            short(5)?;
            Ok(RequestLayout::Piece { last: kind == 3 })
        }
        0x04 => Ok(RequestLayout::Trace),
        0x80 => Ok(RequestLayout::Single {
            name: Some(named(4)?),
        }),
        0x81 | 0xc1 => {
            let n = named(8)?;
            // skynet ignores bytes past the total; a begin packet with more
            // is not one a sender makes, so it is refused.
            if body.len() != 10 + n {
                return Err(DecodeError::MultiBeginSize {
                    size: body.len(),
                    want: 10 + n,
                });
            }
            Ok(RequestLayout::Begin {
                name: Some(n),
                push: kind == 0xc1,
            })
        }
        k => Err(DecodeError::RequestType(k)),
    }
}

/// Reads a body that [`check_request`] accepted with `layout`.
fn parse_request(body: &[u8], layout: RequestLayout) -> Request<'_> {
    // The target and where the fields after it start.
    let target = |name: Option<usize>| match name {
        None => (Target::Id(u32_at(body, 1)), 5),
        Some(n) => (Target::Name(&body[2..2 + n]), 2 + n),
    };
    match layout {
        RequestLayout::Single { name } => {
            let (target, at) = target(name);
            Request::Single {
                target,
                session: u32_at(body, at),
                msg: &body[at + 4..],
            }
        }
        RequestLayout::Begin { name, push } => {
            let (target, at) = target(name);
            Request::Begin {
                target,
                session: u32_at(body, at),
                size: u32_at(body, at + 4),
                push,
            }
        }
        RequestLayout::Piece { last } => Request::Piece {
            session: u32_at(body, 1),
            msg: &body[5..],
            last,
        },
        RequestLayout::Trace => Request::Trace(&body[1..]),
    }
}

/// Decodes a request body (without its size prefix).
pub fn decode_request(body: &[u8]) -> Result<Request<'_>, DecodeError> {
    let layout = check_request(body)?;
    Ok(parse_request(body, layout))
}

/// A received reply body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    Error { session: u32, msg: &'a [u8] },
    Ok { session: u32, msg: &'a [u8] },
    Begin { session: u32, size: u32 },
    Piece { session: u32, msg: &'a [u8] },
    Last { session: u32, msg: &'a [u8] },
}

/// Decodes a reply body (without its size prefix).
pub fn decode_response(body: &[u8]) -> Result<Response<'_>, DecodeError> {
    // Check: 4 bytes of session, a known type, and a begin of 9 bytes.
    if body.len() < 5 {
        return Err(DecodeError::ResponseTooShort(body.len()));
    }
    let kind = body[4];
    match kind {
        0..=4 => {}
        k => return Err(DecodeError::ResponseType(k)),
    }
    if kind == 2 && body.len() != 9 {
        return Err(DecodeError::ResponseBeginSize(body.len()));
    }
    // Parse.
    let session = u32_at(body, 0);
    let msg = &body[5..];
    Ok(match kind {
        0 => Response::Error { session, msg },
        1 => Response::Ok { session, msg },
        2 => Response::Begin {
            session,
            size: u32_at(body, 5),
        },
        3 => Response::Piece { session, msg },
        _ => Response::Last { session, msg },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn all(p: &RequestPackets) -> Vec<Vec<u8>> {
        let mut v = vec![p.first.to_vec()];
        if let Some(pieces) = &p.pieces {
            v.extend(pieces.clone().map(|p| p.to_vec()));
        }
        v
    }

    // The exchange the inventory records between a client and a real node.
    #[test]
    fn verified_exchange() {
        let (m1, m2) = (hex("1c736462"), hex("1c4745540c61"));
        let q = request(Target::Id(0), 1, &m1, false).unwrap();
        assert_eq!(all(&q), vec![hex("000d 00 00000000 01000000 1c736462")]);
        let r = request(Target::Name(b"@sdb"), 2, &m2, false).unwrap();
        assert_eq!(
            all(&r),
            vec![hex("0010 80 04 40736462 02000000 1c4745540c61")]
        );
        assert_eq!(
            decode_response(&hex("01000000 01 0a0a")).unwrap(),
            Response::Ok {
                session: 1,
                msg: &[0x0a, 0x0a]
            }
        );
    }

    #[test]
    fn single_push_carries_session_zero_multipart_push_its_own() {
        let p = request(Target::Id(7), 5, b"ab", true).unwrap();
        assert_eq!(p.first.to_vec(), hex("000b 00 07000000 00000000 6162"));
        let big = vec![9u8; PART];
        let p = request(Target::Id(7), 5, &big, true).unwrap();
        assert_eq!(p.first.to_vec(), hex("000d 41 07000000 05000000 00800000"));
        let pieces: Vec<_> = p.pieces.unwrap().collect();
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].head.as_bytes(), hex("8005 03 05000000"));
        assert_eq!(pieces[0].body, &big[..]);
    }

    #[test]
    fn multipart_boundaries() {
        for (len, n) in [
            (PART - 1, 0),
            (PART, 1),
            (PART + 1, 2),
            (2 * PART, 2),
            (2 * PART + 1, 3),
        ] {
            let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let p = request(Target::Name(b"@x"), 3, &msg, false).unwrap();
            let Some(pieces) = p.pieces else {
                assert_eq!(n, 0);
                assert_eq!(p.first.wire_len(), 2 + 6 + 2 + len);
                continue;
            };
            assert_eq!(pieces.len(), n, "len {len}");
            let mut joined = Vec::new();
            let count = pieces.len();
            for (i, piece) in pieces.enumerate() {
                let kind = piece.head.as_bytes()[2];
                assert_eq!(kind, if i + 1 == count { 3 } else { 2 });
                match decode_request(&piece.to_vec()[2..]).unwrap() {
                    Request::Piece { session, msg, last } => {
                        assert_eq!((session, last), (3, kind == 3));
                        joined.extend_from_slice(msg);
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(joined, msg);
            assert_eq!(
                decode_request(&p.first.to_vec()[2..]).unwrap(),
                Request::Begin {
                    target: Target::Name(b"@x"),
                    session: 3,
                    size: len as u32,
                    push: false
                }
            );
        }
    }

    #[test]
    fn names_and_tags_are_bounded() {
        let long = vec![b'n'; 256];
        assert_eq!(
            request(Target::Name(&long), 1, b"", false).unwrap_err(),
            EncodeError::NameLength(256)
        );
        assert_eq!(
            request(Target::Name(b""), 1, b"", false).unwrap_err(),
            EncodeError::NameLength(0)
        );
        let max = request(Target::Name(&long[..255]), 1, &[1; PART - 1], false).unwrap();
        assert_eq!(max.first.wire_len(), 2 + 6 + 255 + PART - 1);
        assert_eq!(trace(b"").unwrap().to_vec(), hex("0001 04"));
        assert_eq!(trace(&[0; MAX_TAG]).unwrap().wire_len(), MAX_TAG + 3);
        assert_eq!(
            trace(&[0; MAX_TAG + 1]).unwrap_err(),
            EncodeError::TagTooLong(MAX_TAG + 1)
        );
    }

    #[test]
    fn replies_split_above_part_and_errors_are_cut() {
        let ok = response(9, true, &[1; PART]).unwrap();
        assert!(matches!(ok, ResponsePackets::Single(p) if p.wire_len() == PART + 7));
        let msg: Vec<u8> = (0..PART * 2 + 3).map(|i| (i * 7) as u8).collect();
        let ResponsePackets::Multi { begin, pieces } = response(9, true, &msg).unwrap() else {
            panic!("multipart")
        };
        assert_eq!(begin.to_vec(), hex("0009 09000000 02 03000100"));
        assert_eq!(
            decode_response(&begin.to_vec()[2..]).unwrap(),
            Response::Begin {
                session: 9,
                size: msg.len() as u32
            }
        );
        let pieces: Vec<Vec<u8>> = pieces.map(|p| p.to_vec()).collect();
        assert_eq!(pieces.len(), 3);
        let mut joined = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            match decode_response(&p[2..]).unwrap() {
                Response::Piece { session: 9, msg } if i < 2 => joined.extend_from_slice(msg),
                Response::Last { session: 9, msg } if i == 2 => joined.extend_from_slice(msg),
                other => panic!("{i}: {other:?}"),
            }
        }
        assert_eq!(joined, msg);
        let ResponsePackets::Single(e) = response(1, false, &msg).unwrap() else {
            panic!("errors are single")
        };
        assert_eq!(e.wire_len(), PART + 7);
        assert_eq!(&e.head.as_bytes()[..7], &hex("8005 01000000 00")[..]);
    }

    #[test]
    fn sessions_wrap_to_one() {
        assert_eq!(next_session(1), 2);
        assert_eq!(next_session(i32::MAX as u32 - 1), i32::MAX as u32);
        assert_eq!(next_session(i32::MAX as u32), 1);
        assert_eq!(next_session(u32::MAX), 1);
    }

    #[test]
    fn malformed_requests_are_errors() {
        use DecodeError::*;
        for (body, want) in [
            ("", EmptyRequest),
            (
                "00 01000000 0200",
                RequestTooShort {
                    kind: 0,
                    size: 7,
                    need: 9,
                },
            ),
            (
                "01 00000000 00000000 000000",
                MultiBeginSize { size: 12, want: 13 },
            ),
            (
                "41 00000000 00000000 0000000000",
                MultiBeginSize { size: 14, want: 13 },
            ),
            (
                "02 010000",
                RequestTooShort {
                    kind: 2,
                    size: 4,
                    need: 5,
                },
            ),
            (
                "80",
                RequestTooShort {
                    kind: 0x80,
                    size: 1,
                    need: 2,
                },
            ),
            (
                "80 05 406162",
                RequestTooShort {
                    kind: 0x80,
                    size: 5,
                    need: 11,
                },
            ),
            (
                "81 01 40 01000000 008000",
                RequestTooShort {
                    kind: 0x81,
                    size: 10,
                    need: 11,
                },
            ),
            (
                "c1 01 40 01000000 00800000 00",
                MultiBeginSize { size: 12, want: 11 },
            ),
            ("05", RequestType(5)),
            ("90 00", RequestType(0x90)),
        ] {
            assert_eq!(decode_request(&hex(body)), Err(want), "{body}");
        }
        // Every truncation of a valid packet is an error or a shorter
        // valid message, never a panic.
        let p = request(Target::Name(b"@abc"), 3, b"hello", false).unwrap();
        let body = p.first.to_vec()[2..].to_vec();
        for n in 0..body.len() {
            let _ = decode_request(&body[..n]);
        }
        assert_eq!(
            decode_request(&hex("04")).unwrap(),
            Request::Trace(&[]),
            "an empty tag"
        );
        assert_eq!(
            decode_request(&hex("80 00 01000000")).unwrap(),
            Request::Single {
                target: Target::Name(b""),
                session: 1,
                msg: &[]
            },
            "skynet reads an empty name; the agent answers it"
        );
    }

    #[test]
    fn malformed_responses_are_errors() {
        use DecodeError::*;
        for (body, want) in [
            ("", ResponseTooShort(0)),
            ("01000000", ResponseTooShort(4)),
            ("01000000 05", ResponseType(5)),
            ("01000000 02", ResponseBeginSize(5)),
            ("01000000 02 0000010000", ResponseBeginSize(10)),
        ] {
            assert_eq!(decode_response(&hex(body)), Err(want), "{body}");
        }
        assert_eq!(
            decode_response(&hex("01000000 03")).unwrap(),
            Response::Piece {
                session: 1,
                msg: &[]
            }
        );
    }
}
