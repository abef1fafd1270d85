//! The write side of a harbor link: direct writes by the sending worker, and
//! the link task's batched writes.
//!
//! A worker that sends to another node writes the frame to the link's socket
//! itself (non-blocking) while the link's task has nothing pending, instead
//! of waking the harbor thread for every message. Exactly one side owns the
//! socket's write direction at a time. The task takes it as soon as anything
//! is queued for it and gives it back only with an empty queue and a flushed
//! buffer; a worker writes directly only while the task does not own it, and
//! queues (under the same lock) otherwise — so frames never interleave and
//! keep their order. A frame that the socket takes only in part leaves its
//! rest queued, and the task owns the socket from then on. Everything queued
//! (heartbeat frames and ERROR answers included) goes through that lock.
//!
//! Direct writes pay one system call per frame, which is a loss for a stream
//! of messages: the task writes a burst with one call. So a frame goes direct
//! only when it is the first one the message being dispatched sends this way
//! and the sending service has no other message waiting; otherwise it is left
//! to the task, which batches it with the ones that follow. No clock is
//! involved (see docs/performance.md, "Cluster links").
//!
//! The task's socket is registered with the harbor thread's poller only while
//! a write waits for room (`FdWriter`).

use super::beat::{HEARTBEAT_DEST, PING, PONG};
use super::end::LinkEnd;
use crate::cluster::net::LinkFd;
use crate::message::ptype;
use parking_lot::Mutex;
use skynet_proto::harbor::HarborFrame;
use skynet_proto::Handle;
use std::io::{ErrorKind, IoSlice, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter, Interest};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

const IO_BUFFER: usize = 64 * 1024;

/// What the link task is asked to write.
#[derive(Debug)]
pub enum Out {
    Frame(HarborFrame<Vec<u8>>),
    /// The rest of a frame a worker wrote in part.
    Raw(Vec<u8>),
    /// A heartbeat probe.
    Ping,
    /// The answer to the peer's probe.
    Pong,
}

/// The write direction of one link's socket.
pub struct WriteSide {
    gate: Mutex<Gate>,
    tx: UnboundedSender<Out>,
}

struct Gate {
    /// A duplicate of the link's socket (non-blocking, like the original).
    stream: Option<TcpStream>,
    /// The task owns the socket: it has frames to write.
    task_owns: bool,
}

impl WriteSide {
    /// For the socket of a link, with the receiving end of the task's queue.
    /// Without a usable duplicate every frame goes through the task.
    pub fn new(socket: &impl AsFd) -> (WriteSide, UnboundedReceiver<Out>) {
        let stream = socket
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(TcpStream::from);
        let (tx, rx) = unbounded_channel();
        let side = WriteSide {
            gate: Mutex::new(Gate {
                stream,
                task_owns: false,
            }),
            tx,
        };
        (side, rx)
    }

    /// Writes `frame` now if the socket is free, else queues it for the task.
    /// False when the task is gone (the link is being torn down).
    pub fn send(&self, frame: HarborFrame<Vec<u8>>) -> bool {
        let mut g = self.gate.lock();
        let gate = &mut *g;
        let in_burst = crate::scheduler::more_queued() || !crate::scheduler::claim_direct_write();
        let Some(stream) = gate
            .stream
            .as_mut()
            .filter(|_| !gate.task_owns && !in_burst)
        else {
            gate.task_owns = true;
            return self.tx.send(Out::Frame(frame)).is_ok();
        };
        let head = frame.head();
        let trailer = frame.trailer().to_bytes();
        let total = head.len() + frame.payload.len() + trailer.len();
        let mut done = 0;
        while done < total {
            let parts = remaining_slices(&head, &frame.payload, &trailer, done);
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
        gate.task_owns = true;
        if done == 0 {
            return self.tx.send(Out::Frame(frame)).is_ok();
        }
        let mut rest = Vec::with_capacity(total - done);
        for part in remaining_slices(&head, &frame.payload, &trailer, done) {
            rest.extend_from_slice(&part);
        }
        self.tx.send(Out::Raw(rest)).is_ok()
    }

    /// Queues `out` for the task (never written by the caller). False when
    /// the task is gone.
    pub fn queue(&self, out: Out) -> bool {
        let mut g = self.gate.lock();
        g.task_owns = true;
        self.tx.send(out).is_ok()
    }

    /// The task is about to write what it received.
    fn task_takes(&self) {
        self.gate.lock().task_owns = true;
    }

    /// The task wrote and flushed everything: it gives the socket back
    /// unless something was queued meanwhile.
    fn task_releases(&self, rx: &UnboundedReceiver<Out>) {
        let mut g = self.gate.lock();
        if rx.is_empty() {
            g.task_owns = false;
        }
    }

    /// The link is gone: close the duplicate so the peer sees the end.
    pub fn close(&self) {
        let mut g = self.gate.lock();
        if let Some(s) = g.stream.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        g.task_owns = true;
    }

    /// The task's writing, until a write fails or the queue closes: bursts
    /// of queued frames through one buffer, flushed once per burst. `own`
    /// is this node's harbor id (the source of heartbeat frames);
    /// `ping_written` is told when a probe went out.
    pub async fn run_task(
        &self,
        stream: TcpStream,
        mut rx: UnboundedReceiver<Out>,
        own: u8,
        harbor: u8,
        ping_written: impl Fn(),
    ) -> LinkEnd {
        let mut w = BufWriter::with_capacity(
            IO_BUFFER,
            FdWriter {
                waiting: None,
                stream,
            },
        );
        let own = Handle(0).with_harbor(own).raw();
        let heartbeat = |ptype, payload: &'static [u8]| HarborFrame {
            source: own,
            destination: HEARTBEAT_DEST,
            ptype,
            session: 0,
            payload,
        };
        loop {
            let Some(first) = rx.recv().await else {
                return LinkEnd::Lost("link closed".into());
            };
            self.task_takes();
            let mut next = Some(first);
            let mut pinged = false;
            while let Some(out) = next {
                let r = match out {
                    Out::Frame(f) => write_frame(&mut w, &f).await,
                    Out::Raw(bytes) => w.write_all(&bytes).await,
                    Out::Ping => {
                        pinged = true;
                        write_frame(&mut w, &heartbeat(ptype::TEXT, PING)).await
                    }
                    Out::Pong => write_frame(&mut w, &heartbeat(ptype::RESPONSE, PONG)).await,
                };
                if let Err(e) = r {
                    return LinkEnd::Lost(format!("write to harbor {harbor} failed: {e}"));
                }
                next = rx.try_recv().ok();
            }
            if let Err(e) = w.flush().await {
                return LinkEnd::Lost(format!("write to harbor {harbor} failed: {e}"));
            }
            w.get_mut().idle();
            // Workers may write directly again once nothing is left for us.
            self.task_releases(&rx);
            if pinged {
                ping_written();
            }
        }
    }
}

async fn write_frame<W: AsyncWrite + Unpin, P: AsRef<[u8]>>(
    w: &mut W,
    f: &HarborFrame<P>,
) -> std::io::Result<()> {
    w.write_all(&f.head()).await?;
    w.write_all(f.payload.as_ref()).await?;
    w.write_all(&f.trailer().to_bytes()).await
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

/// The task's end of the socket. It is registered with the harbor thread's
/// poller only while a write waits for room: a registered socket makes every
/// arriving segment walk the poller's callback, whatever it waits for.
struct FdWriter {
    /// Declared first: deregistered before `stream` closes the descriptor.
    waiting: Option<AsyncFd<LinkFd>>,
    stream: TcpStream,
}

impl FdWriter {
    /// Everything was written: stop watching the socket.
    fn idle(&mut self) {
        self.waiting = None;
    }
}

impl AsyncWrite for FdWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let FdWriter { waiting, stream } = self.get_mut();
        loop {
            if let Some(reg) = waiting.as_ref() {
                let mut guard = std::task::ready!(reg.poll_write_ready(cx))?;
                if let Ok(r) = guard.try_io(|_| (&*stream).write(buf)) {
                    return Poll::Ready(r);
                }
                continue;
            }
            match (&*stream).write(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // SAFETY: the registration is dropped before `stream`
                    // (field order, and `idle`).
                    let reg = unsafe {
                        AsyncFd::register_with_interest(
                            LinkFd(stream.as_raw_fd()),
                            Interest::WRITABLE,
                        )
                    }
                    .map_err(|e| e.into_parts().1)?;
                    *waiting = Some(reg);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.stream.shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_queued_frame_keeps_workers_off_the_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (ours, _) = l.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let (side, mut rx) = WriteSide::new(&ours);
        let frame = |session| HarborFrame {
            source: 0x0100_0001,
            destination: 0x0200_0002,
            ptype: ptype::LUA,
            session,
            payload: b"x".to_vec(),
        };
        // The first frame of a message on an idle link is written directly.
        assert!(side.send(frame(2)));
        assert!(rx.try_recv().is_err());
        let mut got = [0u8; 17];
        let mut peer = peer;
        std::io::Read::read_exact(&mut peer, &mut got).unwrap();
        assert_eq!(&got[..], &frame(2).to_bytes().unwrap()[..]);
        // Something is queued (a heartbeat answer): a send does not jump it.
        // (A fresh thread: its first frame would go direct on a free socket.)
        assert!(side.queue(Out::Pong));
        side.task_releases(&rx);
        let first_of_a_message = |session| {
            std::thread::scope(|sc| sc.spawn(|| side.send(frame(session))).join().unwrap())
        };
        assert!(first_of_a_message(1));
        assert!(matches!(rx.try_recv(), Ok(Out::Pong)));
        assert!(matches!(rx.try_recv(), Ok(Out::Frame(f)) if f.session == 1));
        // Closed: everything goes to the queue, and a gone task refuses.
        side.task_releases(&rx);
        side.close();
        assert!(first_of_a_message(3));
        assert!(matches!(rx.try_recv(), Ok(Out::Frame(f)) if f.session == 3));
        drop(rx);
        assert!(!first_of_a_message(4));
        assert!(!side.queue(Out::Ping));
    }
}
