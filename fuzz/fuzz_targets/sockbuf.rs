//! The socket read buffer (`socketdriver.buffer()`), driven by a script of
//! pushes and reads (by size, up to a separator, all) against a plain byte
//! vector: every read gives the same bytes and the sizes agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_node::fuzzing::SockBuf;

fn find(hay: &[u8], sep: &[u8]) -> Option<usize> {
    if hay.is_empty() || sep.len() > hay.len() {
        return None;
    }
    hay.windows(sep.len().max(1))
        .position(|w| sep.is_empty() || w == sep)
}

fuzz_target!(|data: &[u8]| {
    let mut b = SockBuf::new();
    let mut model: Vec<u8> = Vec::new();
    let mut scratch = Vec::new();
    let mut ops = data;
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        let arg = usize::from(op >> 2);
        match op & 3 {
            0 => {
                let (chunk, rest) = ops.split_at(arg.min(ops.len()));
                ops = rest;
                model.extend_from_slice(chunk);
                assert_eq!(b.push(chunk.to_vec()), model.len());
            }
            1 => {
                let n = arg.min(model.len());
                assert_eq!(b.peek(n, &mut scratch), &model[..n]);
                b.consume(n);
                model.drain(..n);
            }
            2 => {
                // A separator of 0..=3 bytes from the script.
                let (sep, rest) = ops.split_at((arg & 3).min(ops.len()));
                ops = rest;
                let at = b.find(sep);
                assert_eq!(at, find(&model, sep), "find {sep:02x?}");
                if let Some(at) = at {
                    assert_eq!(b.peek(at, &mut scratch), &model[..at]);
                    b.consume(at + sep.len());
                    model.drain(..at + sep.len());
                }
            }
            _ if arg & 1 == 0 => {
                assert_eq!(b.peek(model.len(), &mut scratch), &model[..]);
                b.clear();
                model.clear();
            }
            _ => {}
        }
        assert_eq!(b.size(), model.len());
    }
});
