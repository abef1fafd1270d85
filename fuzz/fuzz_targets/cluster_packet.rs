//! Cluster packets (`skynet.cluster.core`): any body decodes as a request and
//! as a reply, or fails with an error; what decodes encodes back to the same
//! body where the encoder can make that packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_proto::cluster::{
    decode_request, decode_response, request, response, trace, Request, Response, ResponsePackets,
    Target, PART,
};

fuzz_target!(|body: &[u8]| {
    // Bodies come after a u16 size, so none is longer.
    if body.len() > usize::from(u16::MAX) {
        return;
    }
    check_request(body);
    check_response(body);
});

/// Whether the encoder can address `t`: skynet's decoder, and ours, take a
/// zero-length name, which no sender makes.
fn encodable(t: &Target<'_>) -> bool {
    !matches!(t, Target::Name(n) if n.is_empty())
}

fn check_request(body: &[u8]) {
    match decode_request(body) {
        Ok(Request::Single {
            target,
            session,
            msg,
        }) if msg.len() < PART && encodable(&target) => {
            // Session 0 is a push (the encoder then writes 0 itself).
            let push = session == 0;
            let s = if push { 7 } else { session };
            let p = request(target, s, msg, push).expect("decoded request encodes");
            assert_eq!(p.first.to_vec()[2..], *body);
            assert!(p.pieces.is_none());
        }
        Ok(Request::Begin { size, .. }) => {
            // A begin packet is only its head: type, target, session, size.
            let tail: [u8; 4] = body[body.len() - 4..].try_into().unwrap();
            assert_eq!(u32::from_le_bytes(tail), size);
        }
        Ok(Request::Trace(tag)) if tag.len() <= PART => {
            let p = trace(tag).expect("decoded tag encodes");
            assert_eq!(p.to_vec()[2..], *body);
        }
        _ => {}
    }
}

fn check_response(body: &[u8]) {
    match decode_response(body) {
        Ok(Response::Ok { session, msg }) if msg.len() <= PART => {
            let ResponsePackets::Single(p) = response(session, true, msg).expect("encodes") else {
                panic!("short reply went multipart");
            };
            assert_eq!(p.to_vec()[2..], *body);
        }
        Ok(Response::Error { session, msg }) if msg.len() <= PART => {
            let ResponsePackets::Single(p) = response(session, false, msg).expect("encodes") else {
                panic!("error reply went multipart");
            };
            assert_eq!(p.to_vec()[2..], *body);
        }
        Ok(Response::Begin { .. }) => assert_eq!(body.len(), 9),
        _ => {}
    }
}
