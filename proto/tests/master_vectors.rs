//! The master protocol against master.tsv and hand-made malformed packets.

mod support;

use bytes::BytesMut;
use skynet_proto::master::{
    encode_frame, MasterCodec, MasterCodecError, MasterPacket, PacketError,
};
use skynet_proto::seri::{self, Value};
use skynet_proto::{GlobalName, Handle, NameError};
use support::lua::{self, Lua};
use support::{hex, read_tsv, Lcg};
use tokio_util::codec::{Decoder, Encoder};

fn expected_packet(letter: &str, args: &[Lua]) -> MasterPacket {
    let int = |i: usize| match &args[i] {
        Lua::Int(v) => *v,
        other => panic!("argument {i} is not an integer: {other:?}"),
    };
    let text = |i: usize| match &args[i] {
        Lua::Str(s) => s.clone(),
        other => panic!("argument {i} is not a string: {other:?}"),
    };
    let name = |i: usize| GlobalName::new(text(i)).unwrap();
    let addr = |i: usize| String::from_utf8(text(i)).unwrap();
    match letter {
        "H" => MasterPacket::Handshake {
            harbor: int(0) as u8,
            address: addr(1),
        },
        "W" => MasterPacket::Wait {
            count: int(0) as u8,
            peers: None,
            proof: None,
        },
        "C" => MasterPacket::Connect {
            harbor: int(0) as u8,
            address: addr(1),
        },
        "R" => MasterPacket::Register {
            name: name(0),
            handle: Handle(int(1) as u32),
        },
        "Q" => MasterPacket::Query { name: name(0) },
        "N" => MasterPacket::Name {
            name: name(0),
            handle: Handle(int(1) as u32),
        },
        "D" => MasterPacket::Down {
            harbor: int(0) as u8,
        },
        other => panic!("unknown letter {other}"),
    }
}

fn decode_all(codec: &mut MasterCodec, buf: &mut BytesMut) -> Vec<MasterPacket> {
    let mut out = Vec::new();
    while let Some(p) = codec.decode(buf).expect("valid stream") {
        out.push(p);
    }
    out
}

fn vector_packets() -> Vec<(MasterPacket, Vec<u8>)> {
    read_tsv("master.tsv")
        .iter()
        .map(|row| {
            let args = lua::parse_list(&row[2]).unwrap();
            (expected_packet(&row[1], &args), hex(&row[3]))
        })
        .collect()
}

#[test]
fn every_vector_decodes_and_encodes_identically() {
    let rows = vector_packets();
    assert!(
        rows.len() >= 49,
        "expected at least 49 rows, got {}",
        rows.len()
    );
    for (packet, bytes) in &rows {
        let mut buf = BytesMut::from(&bytes[..]);
        let decoded = MasterCodec.decode(&mut buf).unwrap();
        assert_eq!(decoded.as_ref(), Some(packet));
        assert!(buf.is_empty());

        let mut out = BytesMut::new();
        MasterCodec.encode(packet, &mut out).unwrap();
        assert_eq!(&out[..], &bytes[..], "{packet}");
        assert_eq!(encode_frame(packet).unwrap(), *bytes, "{packet}");
    }
}

#[test]
fn split_and_merged_reads() {
    let rows = vector_packets();
    let packets: Vec<MasterPacket> = rows.iter().map(|(p, _)| p.clone()).collect();
    let stream: Vec<u8> = rows.iter().flat_map(|(_, b)| b.clone()).collect();

    // All in one read.
    let mut buf = BytesMut::from(&stream[..]);
    assert_eq!(decode_all(&mut MasterCodec, &mut buf), packets);
    assert!(buf.is_empty());

    // One byte per read: every split position.
    let mut codec = MasterCodec::new();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &b in &stream {
        buf.extend_from_slice(&[b]);
        got.extend(decode_all(&mut codec, &mut buf));
    }
    assert_eq!(got, packets);

    // Random chunk sizes.
    let mut rng = Lcg(7);
    for _ in 0..50 {
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let n = 1 + rng.next_below(40);
            let end = (at + n).min(stream.len());
            buf.extend_from_slice(&stream[at..end]);
            at = end;
            got.extend(decode_all(&mut codec, &mut buf));
        }
        assert_eq!(got, packets);
    }
}

fn decode_error(bytes: &[u8]) -> PacketError {
    let mut buf = BytesMut::from(bytes);
    match MasterCodec.decode(&mut buf) {
        Err(MasterCodecError::Packet(e)) => {
            assert!(buf.is_empty(), "the bad packet must be consumed");
            e
        }
        other => panic!("expected a packet error for {bytes:02x?}, got {other:?}"),
    }
}

fn framed(values: &[Value]) -> Vec<u8> {
    let body = seri::pack(values).unwrap();
    let mut out = vec![u8::try_from(body.len()).unwrap()];
    out.extend(body);
    out
}

#[test]
fn malformed_packets_are_typed_errors() {
    use Value as V;
    let s = |x: &str| V::from(x);

    // Bad seri after the length byte.
    assert!(matches!(decode_error(&[1, 0x07]), PacketError::Seri(_)));
    assert_eq!(
        decode_error(&[2, 0x0c, 0x07]),
        PacketError::UnknownLetter(7)
    );
    assert!(matches!(
        decode_error(&[3, 0x0c, 0x48, 0x07]),
        PacketError::Seri(_)
    ));
    assert!(matches!(
        decode_error(&[2, 0x1c, 0x48]),
        PacketError::Seri(_)
    ));
    // Empty body, letter of the wrong type or length, unknown letter.
    assert_eq!(decode_error(&[0]), PacketError::Empty);
    assert_eq!(
        decode_error(&framed(&[V::Integer(1)])),
        PacketError::BadLetter
    );
    assert_eq!(
        decode_error(&framed(&[s("HH"), V::Integer(1), s("a:1")])),
        PacketError::BadLetter
    );
    assert_eq!(
        decode_error(&framed(&[s("X")])),
        PacketError::UnknownLetter(b'X')
    );
    assert_eq!(
        decode_error(&framed(&[s("h"), V::Integer(1), s("a:1")])),
        PacketError::UnknownLetter(b'h')
    );
    // Wrong argument types and counts.
    assert!(matches!(
        decode_error(&framed(&[s("H"), s("1"), s("a:1")])),
        PacketError::WrongType { letter: b'H', .. }
    ));
    assert!(matches!(
        decode_error(&framed(&[s("H"), V::Real(1.0), s("a:1")])),
        PacketError::WrongType { .. }
    ));
    assert!(matches!(
        decode_error(&framed(&[s("H"), V::Integer(1)])),
        PacketError::MissingArgument { letter: b'H', .. }
    ));
    assert!(matches!(
        decode_error(&framed(&[s("H"), V::Integer(1), V::table()])),
        PacketError::WrongType { .. }
    ));
    assert!(matches!(
        decode_error(&framed(&[s("D"), V::Integer(1), V::Nil])),
        PacketError::ExtraArguments { letter: b'D' }
    ));
    assert!(matches!(
        decode_error(&framed(&[s("R"), s("LOG")])),
        PacketError::MissingArgument { letter: b'R', .. }
    ));
    assert!(matches!(
        decode_error(&framed(&[s("R"), s("LOG"), s(":01000001")])),
        PacketError::WrongType { .. }
    ));
    // Out of range numbers.
    assert_eq!(
        decode_error(&framed(&[s("H"), V::Integer(256), s("a:1")])),
        PacketError::OutOfRange {
            letter: b'H',
            what: "harbor id",
            value: 256
        }
    );
    assert!(matches!(
        decode_error(&framed(&[s("D"), V::Integer(-1)])),
        PacketError::OutOfRange { .. }
    ));
    assert!(matches!(
        decode_error(&framed(&[s("W"), V::Integer(1000)])),
        PacketError::OutOfRange { .. }
    ));
    assert!(matches!(
        decode_error(&framed(&[s("N"), s("A"), V::Integer(1 << 32)])),
        PacketError::OutOfRange { .. }
    ));
    assert!(matches!(
        decode_error(&framed(&[s("R"), s("A"), V::Integer(-1)])),
        PacketError::OutOfRange { .. }
    ));
    // Invalid names and addresses.
    let name_err = |p: &[Value]| match decode_error(&framed(p)) {
        PacketError::Name { source, .. } => source,
        other => panic!("{other:?}"),
    };
    assert_eq!(name_err(&[s("Q"), s("")]), NameError::Empty);
    assert_eq!(
        name_err(&[s("Q"), s("ABCDEFGHIJKLMNOP")]),
        NameError::TooLong(16)
    );
    assert!(matches!(
        name_err(&[s("Q"), s(".local")]),
        NameError::LocalName(_)
    ));
    assert!(matches!(
        name_err(&[s("R"), s(":1"), V::Integer(1)]),
        NameError::HandlePrefix(_)
    ));
    assert!(matches!(
        name_err(&[s("R"), s("42"), V::Integer(1)]),
        NameError::Numeric(_)
    ));
    assert_eq!(
        decode_error(&framed(&[
            s("C"),
            V::Integer(2),
            V::String(vec![0xff, 0xfe])
        ])),
        PacketError::AddressNotUtf8 { letter: b'C' }
    );
}

#[test]
fn a_bad_packet_does_not_swallow_the_next_one() {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&framed(&[Value::from("X")]));
    buf.extend_from_slice(&hex("040c570a01"));
    assert!(MasterCodec.decode(&mut buf).is_err());
    assert_eq!(
        MasterCodec.decode(&mut buf).unwrap(),
        Some(MasterPacket::Wait {
            count: 1,
            peers: None,
            proof: None
        })
    );
}

#[test]
fn incomplete_packets_wait_for_more() {
    let full = hex("140c480a017c3132372e302e302e313a3231353236");
    for cut in 0..full.len() {
        let mut buf = BytesMut::from(&full[..cut]);
        assert!(MasterCodec.decode(&mut buf).unwrap().is_none());
        assert_eq!(buf.len(), cut, "nothing consumed before a whole packet");
    }
}

#[test]
fn encoding_refuses_bodies_over_255_bytes() {
    // Letter (2 bytes) + harbor id (2) + long-string header (3) + address.
    let packet = |len: usize| MasterPacket::Handshake {
        harbor: 1,
        address: "x".repeat(len),
    };
    let mut out = BytesMut::from(&b"keep"[..]);
    MasterCodec.encode(packet(248), &mut out).unwrap();
    assert_eq!(out[4], 255);
    assert_eq!(out.len(), 4 + 256);

    let mut out = BytesMut::from(&b"keep"[..]);
    match MasterCodec.encode(packet(249), &mut out) {
        Err(MasterCodecError::TooLong(256)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        &out[..],
        b"keep",
        "a refused packet leaves the buffer as it was"
    );
    assert!(matches!(
        encode_frame(&packet(1000)),
        Err(MasterCodecError::TooLong(_))
    ));
}

#[test]
fn display_is_readable() {
    let p = MasterPacket::Name {
        name: GlobalName::new("LOG").unwrap(),
        handle: Handle(0x0100_0008),
    };
    assert_eq!(p.to_string(), "N \"LOG\" :01000008");
    assert_eq!(
        MasterPacket::Wait {
            count: 1,
            peers: None,
            proof: None
        }
        .to_string(),
        "W 1"
    );
}
