//! Harbor frames against harbor.tsv and harbor_transcript.tsv, plus split,
//! merged and hostile streams.

mod support;

use bytes::{Bytes, BytesMut};
use skynet_proto::harbor::{
    check_handshake, handshake_byte, HarborCodec, HarborCodecError, HarborFrame, MAX_PAYLOAD_LEN,
};
use skynet_proto::master::MasterCodec;
use support::{hex, read_tsv, to_hex, Lcg};
use tokio_util::codec::{Decoder, Encoder};

struct FrameRow {
    description: String,
    frame: HarborFrame,
    bytes: Vec<u8>,
}

fn frame_rows() -> (Vec<FrameRow>, Vec<Vec<u8>>) {
    let mut frames = Vec::new();
    let mut handshakes = Vec::new();
    for row in read_tsv("harbor.tsv") {
        if row[1] == "-" {
            handshakes.push(hex(&row[6]));
            continue;
        }
        let u32_of = |s: &str| u32::from_str_radix(s, 16).unwrap();
        let ptype: u8 = row[3].split_whitespace().next().unwrap().parse().unwrap();
        frames.push(FrameRow {
            description: row[0].clone(),
            frame: HarborFrame {
                source: u32_of(&row[1]),
                destination: u32_of(&row[2]),
                ptype,
                session: row[4].parse().unwrap(),
                payload: Bytes::from(hex(&row[5])),
            },
            bytes: hex(&row[6]),
        });
    }
    (frames, handshakes)
}

fn decode_all(codec: &mut HarborCodec, buf: &mut BytesMut) -> Vec<HarborFrame> {
    let mut out = Vec::new();
    while let Some(f) = codec.decode(buf).expect("valid stream") {
        out.push(f);
    }
    out
}

/// What a decoder returns for a frame: the destination's low 24 bits.
fn as_received(f: &HarborFrame) -> HarborFrame {
    HarborFrame {
        destination: f.destination & 0x00ff_ffff,
        ..f.clone()
    }
}

#[test]
fn every_vector_encodes_and_decodes_identically() {
    let (frames, handshakes) = frame_rows();
    assert!(
        frames.len() >= 37,
        "expected at least 37 frames, got {}",
        frames.len()
    );
    assert_eq!(handshakes.len(), 2);
    for row in &frames {
        let mut out = BytesMut::new();
        HarborCodec.encode(&row.frame, &mut out).unwrap();
        assert!(out[..] == row.bytes[..], "{}: encode", row.description);
        assert_eq!(
            row.frame.to_bytes().unwrap(),
            row.bytes,
            "{}",
            row.description
        );

        let mut buf = BytesMut::from(&row.bytes[..]);
        let decoded = HarborCodec
            .decode(&mut buf)
            .unwrap()
            .expect("a whole frame");
        assert!(buf.is_empty());
        assert_eq!(
            decoded,
            as_received(&row.frame),
            "{}: decode",
            row.description
        );
    }
    for (i, h) in handshakes.iter().enumerate() {
        assert_eq!(h.len(), 1);
        let id = (i + 1) as u8;
        assert_eq!(handshake_byte(id).unwrap(), [h[0]]);
        assert_eq!(check_handshake(h[0], Some(id)), Ok(id));
    }
}

#[test]
fn transcript_units_replay_identically() {
    let rows = read_tsv("harbor_transcript.tsv");
    assert!(
        rows.len() >= 60,
        "expected at least 60 rows, got {}",
        rows.len()
    );
    let (mut frames, mut packets, mut handshakes, mut eofs) = (0, 0, 0, 0);
    // Frames per direction, to replay as continuous streams below.
    let mut streams: std::collections::BTreeMap<String, (Vec<u8>, Vec<HarborFrame>)> =
        Default::default();
    for row in &rows {
        let (seq, direction, unit, bytes) = (&row[0], &row[3], &row[4], hex(&row[5]));
        match unit.as_str() {
            "harbor_frame" => {
                let mut buf = BytesMut::from(&bytes[..]);
                let f = HarborCodec.decode(&mut buf).unwrap().expect("whole frame");
                assert!(buf.is_empty(), "seq {seq}");
                let mut out = BytesMut::new();
                HarborCodec.encode(&f, &mut out).unwrap();
                assert_eq!(to_hex(&out), row[5], "seq {seq}");
                let s = streams.entry(direction.clone()).or_default();
                s.0.extend_from_slice(&bytes);
                s.1.push(f);
                frames += 1;
            }
            "master_packet" => {
                let mut buf = BytesMut::from(&bytes[..]);
                let p = MasterCodec.decode(&mut buf).unwrap().expect("whole packet");
                assert!(buf.is_empty(), "seq {seq}");
                let mut out = BytesMut::new();
                MasterCodec.encode(&p, &mut out).unwrap();
                assert_eq!(to_hex(&out), row[5], "seq {seq}");
                assert_eq!(format!("{}", p.letter() as char), row[6][..1], "seq {seq}");
                packets += 1;
            }
            "handshake" => {
                assert_eq!(bytes.len(), 1, "seq {seq}");
                assert_eq!(check_handshake(bytes[0], None), Ok(bytes[0]));
                handshakes += 1;
            }
            "eof" => {
                assert!(bytes.is_empty(), "seq {seq}");
                eofs += 1;
            }
            other => panic!("seq {seq}: unknown unit {other}"),
        }
    }
    assert_eq!((handshakes, eofs), (2, 6));
    assert!(
        frames >= 24 && packets >= 28,
        "{frames} frames, {packets} packets"
    );

    // Each direction as one continuous stream: one read, then byte by byte.
    for (direction, (stream, expected)) in &streams {
        let mut buf = BytesMut::from(&stream[..]);
        assert_eq!(
            &decode_all(&mut HarborCodec, &mut buf),
            expected,
            "{direction}"
        );
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in stream {
            buf.extend_from_slice(&[b]);
            got.extend(decode_all(&mut HarborCodec, &mut buf));
        }
        assert_eq!(&got, expected, "{direction}: byte by byte");
    }
}

#[test]
fn frames_split_at_every_position_and_merged() {
    let (frames, _) = frame_rows();
    let expected: Vec<HarborFrame> = frames.iter().map(|r| as_received(&r.frame)).collect();
    let stream: Vec<u8> = frames.iter().flat_map(|r| r.bytes.clone()).collect();

    // Every frame cut in two at every position (small frames), then the rest.
    for row in frames.iter().filter(|r| r.bytes.len() < 2048) {
        for cut in 0..row.bytes.len() {
            let mut buf = BytesMut::from(&row.bytes[..cut]);
            assert!(
                HarborCodec.decode(&mut buf).unwrap().is_none(),
                "{} cut {cut}",
                row.description
            );
            assert_eq!(buf.len(), cut);
            buf.extend_from_slice(&row.bytes[cut..]);
            let f = HarborCodec.decode(&mut buf).unwrap().expect("whole frame");
            assert_eq!(f, as_received(&row.frame));
            assert!(buf.is_empty());
        }
    }

    // The whole stream (including the 65 KiB frame) byte by byte.
    let mut codec = HarborCodec::new();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &b in &stream {
        buf.extend_from_slice(&[b]);
        got.extend(decode_all(&mut codec, &mut buf));
    }
    assert_eq!(got, expected);

    // Random chunks, and everything in one buffer.
    let mut rng = Lcg(11);
    for _ in 0..20 {
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let end = (at + 1 + rng.next_below(3000)).min(stream.len());
            buf.extend_from_slice(&stream[at..end]);
            at = end;
            got.extend(decode_all(&mut codec, &mut buf));
        }
        assert_eq!(got, expected);
    }
    let mut buf = BytesMut::from(&stream[..]);
    assert_eq!(decode_all(&mut codec, &mut buf), expected);
}

#[test]
fn bad_lengths_are_typed_errors() {
    type Expect = fn(&HarborCodecError) -> bool;
    let cases: &[(&str, Expect)] = &[
        ("01000000", |e| {
            matches!(e, HarborCodecError::FrameTooLong(0x0100_0000))
        }),
        ("ffffffff", |e| {
            matches!(e, HarborCodecError::FrameTooLong(0xffff_ffff))
        }),
        ("0000000b", |e| {
            matches!(e, HarborCodecError::FrameTooShort(11))
        }),
        ("00000000", |e| {
            matches!(e, HarborCodecError::FrameTooShort(0))
        }),
        // The length is judged as soon as its 4 bytes are there.
        ("1000000c0102", |e| {
            matches!(e, HarborCodecError::FrameTooLong(_))
        }),
    ];
    for (input, ok) in cases {
        let mut buf = BytesMut::from(&hex(input)[..]);
        let err = HarborCodec.decode(&mut buf).expect_err(input);
        assert!(ok(&err), "{input}: {err}");
    }
    // A valid frame followed by garbage: the frame comes out, then the error.
    let mut buf = BytesMut::from(&hex("0000000c010009990700000700000016ff")[..]);
    assert!(HarborCodec.decode(&mut buf).unwrap().is_some());
    assert!(
        HarborCodec.decode(&mut buf).unwrap().is_none(),
        "1 byte: wait"
    );
    buf.extend_from_slice(&[0, 0, 0]);
    assert!(matches!(
        HarborCodec.decode(&mut buf),
        Err(HarborCodecError::FrameTooLong(_))
    ));
    // Fewer than 4 bytes: wait.
    for n in 0..4 {
        let mut buf = BytesMut::from(&[0u8; 3][..n]);
        assert!(HarborCodec.decode(&mut buf).unwrap().is_none());
    }
}

#[test]
fn largest_payload_is_accepted_and_one_more_refused() {
    let frame = |len: usize| HarborFrame {
        source: 0x0100_0001,
        destination: 0x0200_0002,
        ptype: 10,
        session: 0,
        payload: Bytes::from(vec![0x5a; len]),
    };
    let big = frame(MAX_PAYLOAD_LEN);
    let mut out = BytesMut::new();
    HarborCodec.encode(&big, &mut out).unwrap();
    assert_eq!(&out[..4], &[0x00, 0xff, 0xff, 0xff]);
    let decoded = HarborCodec.decode(&mut out).unwrap().unwrap();
    assert_eq!(decoded.payload.len(), MAX_PAYLOAD_LEN);

    let mut out = BytesMut::new();
    match HarborCodec.encode(frame(MAX_PAYLOAD_LEN + 1), &mut out) {
        Err(HarborCodecError::PayloadTooLarge(n)) => assert_eq!(n, 0xfffff4),
        other => panic!("{other:?}"),
    }
    assert!(out.is_empty());
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = Lcg(3);
    for _ in 0..5_000 {
        let len = rng.next_below(40);
        let mut buf: BytesMut = (0..len)
            .map(|_| rng.next_below(256) as u8)
            .collect::<Vec<u8>>()[..]
            .into();
        if rng.next_below(2) == 0 && len >= 4 {
            buf[0] = 0;
            buf[1] = 0;
        }
        while let Ok(Some(_)) = HarborCodec.decode(&mut buf) {}
    }
}
