//! Direct writes: a worker that sends to another node writes the frame to the
//! link's socket itself (non-blocking) while the link's writer task has nothing
//! pending, instead of waking the harbor thread for every message.
//!
//! Exactly one side owns the socket's write direction at a time. The task
//! takes it as soon as anything is queued for it and gives it back only with
//! an empty queue and a flushed buffer; a worker writes directly only while the
//! task does not own it, and queues (under the same lock) otherwise — so frames
//! never interleave and keep their order. A frame that the socket takes only
//! in part leaves its rest queued, and the task owns the socket from then on.
//!
//! Direct writes pay one system call per frame, which is a loss for a stream
//! of messages: the task writes a burst with one call. So a frame goes direct
//! only when it is the first one the message being dispatched sends this way
//! and the sending service has no other message waiting; otherwise it is left
//! to the task, which batches it with the ones that follow. (No clock is
//! involved: a rule on the time between direct writes would send every
//! sequential call through the task on a machine fast enough to make round
//! trips shorter than its threshold.)

use super::frame::OutFrame;
use super::state::Out;
use parking_lot::Mutex;
use std::io::{ErrorKind, IoSlice, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

pub struct DirectWriter {
    inner: Mutex<Inner>,
}

struct Inner {
    /// A duplicate of the link's socket (non-blocking, like the original).
    stream: Option<TcpStream>,
    /// The writer task owns the socket: it has frames to write.
    task_owns: bool,
}

impl DirectWriter {
    /// For the socket of a link; without a usable duplicate every frame goes
    /// through the task.
    pub fn new(socket: &tokio::net::TcpStream) -> Self {
        let stream = socket
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(TcpStream::from);
        DirectWriter {
            inner: Mutex::new(Inner {
                stream,
                task_owns: false,
            }),
        }
    }

    /// Writes `frame` now if the socket is free, else queues it for the task.
    /// False when the task is gone (the link is being torn down).
    pub fn send(&self, frame: OutFrame, tx: &UnboundedSender<Out>) -> bool {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        let in_burst = crate::scheduler::more_queued() || !crate::scheduler::claim_direct_write();
        let Some(stream) = inner
            .stream
            .as_mut()
            .filter(|_| !inner.task_owns && !in_burst)
        else {
            inner.task_owns = true;
            return tx.send(Out::Frame(frame)).is_ok();
        };
        let head = frame.head();
        let total = head.len() + frame.payload.len() + frame.trailer.len();
        let mut done = 0;
        while done < total {
            let parts = remaining_slices(&head, &frame.payload, &frame.trailer, done);
            match stream.write_vectored(&parts) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break, // WouldBlock, or an error the task will meet and report
            }
        }
        if done == total {
            return true;
        }
        inner.task_owns = true;
        if done == 0 {
            return tx.send(Out::Frame(frame)).is_ok();
        }
        let mut rest = Vec::with_capacity(total - done);
        for part in remaining_slices(&head, &frame.payload, &frame.trailer, done) {
            rest.extend_from_slice(&part);
        }
        tx.send(Out::Raw(rest)).is_ok()
    }

    /// The task is about to write what it received.
    pub fn task_takes(&self) {
        self.inner.lock().task_owns = true;
    }

    /// The task wrote and flushed everything: it gives the socket back unless
    /// something was queued meanwhile (then it keeps it and writes that next).
    pub fn task_releases(&self, rx: &UnboundedReceiver<Out>) {
        let mut g = self.inner.lock();
        if rx.is_empty() {
            g.task_owns = false;
        }
    }

    /// The link is gone: close the duplicate so the peer sees the end.
    pub fn close(&self) {
        let mut g = self.inner.lock();
        if let Some(s) = g.stream.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        g.task_owns = true;
    }
}

/// The parts of head+payload+trailer after the first `skip` bytes.
fn remaining_slices<'a>(
    head: &'a [u8],
    payload: &'a [u8],
    trailer: &'a [u8],
    mut skip: usize,
) -> Vec<IoSlice<'a>> {
    let mut out = Vec::with_capacity(3);
    for part in [head, payload, trailer] {
        if skip >= part.len() {
            skip -= part.len();
            continue;
        }
        out.push(IoSlice::new(&part[skip..]));
        skip = 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::remaining_slices;

    #[test]
    fn slices_after_a_partial_write() {
        let flat = |skip| -> Vec<u8> {
            remaining_slices(b"abcd", b"xyz", b"123", skip)
                .iter()
                .flat_map(|s| s.to_vec())
                .collect()
        };
        assert_eq!(flat(0), b"abcdxyz123");
        assert_eq!(flat(5), b"yz123");
        assert_eq!(flat(7), b"123");
        assert_eq!(flat(10), b"");
    }
}
