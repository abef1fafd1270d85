//! `skynet.netpack`'s framing (u16 big-endian length + payload), fed a
//! script of reads, closes, pops and clears on four fds, against a plain
//! model: the same frames come out in the same order, with the event its
//! documentation names (`One` only when exactly one frame completed and no
//! byte followed it), the `maxpacket` limit and the slow-sender list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_node::fuzzing::{Fed, Framer};
use std::collections::{HashMap, HashSet, VecDeque};

#[derive(Default)]
struct Model {
    /// Bytes of an unfinished frame, and when its first byte came.
    pending: HashMap<i32, (Vec<u8>, u64)>,
    ready: VecDeque<(i32, Vec<u8>)>,
    dead: HashSet<i32>,
}

impl Model {
    fn feed(&mut self, fd: i32, data: &[u8], max: usize, now: u64) -> Fed {
        if self.dead.contains(&fd) || data.is_empty() {
            return Fed::Nothing;
        }
        let (mut buf, since) = self.pending.remove(&fd).unwrap_or((Vec::new(), now));
        buf.extend_from_slice(data);
        let mut frames = Vec::new();
        while buf.len() >= 2 {
            let size = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
            if size > max {
                self.dead.insert(fd);
                let queued = !frames.is_empty();
                self.ready.extend(frames.into_iter().map(|f| (fd, f)));
                return Fed::TooLong { size, queued };
            }
            if buf.len() < 2 + size {
                break;
            }
            frames.push(buf[2..2 + size].to_vec());
            buf.drain(..2 + size);
        }
        if !buf.is_empty() {
            let since = if frames.is_empty() { since } else { now };
            self.pending.insert(fd, (buf.clone(), since));
        }
        match frames.len() {
            0 => Fed::Nothing,
            1 if buf.is_empty() => Fed::One(frames.pop().unwrap()),
            _ => {
                self.ready.extend(frames.into_iter().map(|f| (fd, f)));
                Fed::More
            }
        }
    }

    fn incomplete(&self, before: u64) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .pending
            .iter()
            .filter(|(_, (_, since))| *since < before)
            .map(|(fd, _)| *fd)
            .collect();
        v.sort_unstable();
        v
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&m, mut ops)) = data.split_first() else {
        return;
    };
    // A small limit often, the largest sometimes.
    let max = if m == 0xff {
        0xffff
    } else {
        usize::from(m) * 4
    };
    let mut framer = Framer::default();
    let mut model = Model::default();
    let mut now = 100u64;
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        now += 1;
        let fd = i32::from(op & 3);
        match (op >> 2) & 3 {
            0 => {
                let n = usize::from(op >> 4).min(ops.len());
                let (chunk, rest) = ops.split_at(n);
                ops = rest;
                let got = framer.feed(fd, chunk.to_vec(), max, now);
                let want = model.feed(fd, chunk, max, now);
                assert_eq!(got, want, "feed of fd {fd} with {chunk:02x?}");
            }
            1 => {
                framer.close(fd);
                model.pending.remove(&fd);
                model.dead.remove(&fd);
            }
            2 => assert_eq!(framer.pop(), model.ready.pop_front()),
            _ if op & 0x10 != 0 => {
                framer.clear();
                model = Model::default();
            }
            _ => {
                let before = now - u64::from(op >> 5);
                assert_eq!(framer.incomplete(before), model.incomplete(before));
            }
        }
    }
    while let Some(want) = model.ready.pop_front() {
        assert_eq!(framer.pop(), Some(want));
    }
    assert_eq!(framer.pop(), None);
});
