//! Harbor frames and the one-byte handshake: any stream of bytes through the
//! codec gives frames until an error or the end; each frame re-encodes to
//! exactly the bytes it was cut from.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use skynet_proto::harbor::{check_handshake, handshake_byte, HarborCodec, HarborFrame};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    // Handshake: the byte names the peer, or is refused.
    let expected = rest.first().copied();
    match check_handshake(first, expected) {
        Ok(id) => {
            assert_eq!(id, first);
            assert_eq!(handshake_byte(id).expect("a valid id"), [id]);
        }
        Err(_) => assert!(first == 0 || expected.is_some_and(|e| e != first)),
    }
    let mut codec = HarborCodec::new();
    let mut buf = BytesMut::from(rest);
    loop {
        let before = buf.clone();
        match codec.decode(&mut buf) {
            Ok(Some(f)) => {
                let used = before.len() - buf.len();
                let wire = f.to_bytes().expect("a decoded frame encodes");
                assert_eq!(&wire[..], &before[..used], "frame re-encodes differently");
                assert_eq!(HarborFrame::check(&before).ok().flatten(), Some(used));
            }
            Ok(None) => {
                assert_eq!(buf.len(), before.len(), "consumed without a frame");
                break;
            }
            // The stream cannot be resynchronised after a bad length.
            Err(_) => break,
        }
    }
});
