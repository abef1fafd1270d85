//! Master <-> slave packets: a stream of any bytes through the codec gives
//! packets or errors, consuming input each time; every packet parsed writes
//! back to a frame that parses to the same packet.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use skynet_proto::master::{encode_frame, MasterCodec, MasterPacket};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    // One packet body as given.
    if let Ok(p) = MasterPacket::parse(data) {
        check(&p);
    }
    // The bytes as a stream of frames.
    let mut codec = MasterCodec::new();
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match codec.decode(&mut buf) {
            Ok(Some(p)) => check(&p),
            Ok(None) => break,
            Err(_) => {}
        }
        assert!(buf.len() < before, "decode consumed nothing");
    }
});

fn check(p: &MasterPacket) {
    let frame = encode_frame(p).expect("a parsed packet fits a frame");
    let back = MasterPacket::parse(&frame[1..]).expect("written packet parses");
    assert_eq!(&back, p);
}
