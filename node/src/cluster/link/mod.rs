//! [`Link`]: one live connection to another harbor, after its handshake. It
//! owns the socket's read side ([`read`]: read by its task or by idle
//! workers), its write side ([`write`](mod@write): written by the sending worker or by
//! its task) and its heartbeat ([`beat`]). One task per link (on the harbor
//! thread) reads, writes and beats until the link ends.
//!
//! A link knows frames, not services: frames for services go to its
//! [`LinkHost`] (the router), which also hears how the link ended. Heartbeat
//! frames (to local id 0) are handled here.

pub mod beat;
pub mod end;
pub mod read;
pub mod write;

use beat::{Beat, BeatCheck, BeatReply, HEARTBEAT_DEST, HEARTBEAT_TICK};
use end::LinkEnd;
use parking_lot::Mutex;
use read::ReadSide;
use skynet_proto::harbor::{HarborFrame, Trailer};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::Notify;
use write::{Out, WriteSide};

/// What a link needs from the node it belongs to.
pub trait LinkHost: Send + Sync + 'static {
    /// This node's harbor id.
    fn own(&self) -> u8;
    /// Milliseconds on the cluster's monotonic clock.
    fn now_ms(&self) -> u64;
    fn log(&self, text: &str);
    /// A frame for a local service arrived on `link`.
    fn frame(&self, link: &Link, trailer: Trailer, payload: Vec<u8>);
    /// The link's task starts reading: idle workers may read it too.
    fn lend_to_workers(&self, link: &Arc<Link>);
    /// The link's task is ending: workers must stop reading it.
    fn take_from_workers(&self, link: &Arc<Link>);
    /// The link ended by itself (not by [`Link::close`]).
    fn ended(&self, link: &Link, end: LinkEnd);
}

/// A live link to harbor [`Link::harbor`].
pub struct Link {
    harbor: u8,
    id: u64,
    read: ReadSide,
    write: WriteSide,
    beat: Beat,
    /// Set by [`Link::close`]: the task stops without reporting.
    kill: Notify,
    /// The socket and the write queue's receiver, until the task takes them.
    task: Mutex<Option<(TcpStream, UnboundedReceiver<Out>)>>,
}

impl Link {
    /// A link over `stream` (handshake done) to `harbor`, numbered `id`, not
    /// running yet ([`Link::run`]).
    pub fn new(harbor: u8, id: u64, stream: TcpStream, now_ms: u64) -> Arc<Link> {
        let read = ReadSide::new(harbor, &stream);
        let (write, rx) = WriteSide::new(&stream);
        Arc::new(Link {
            harbor,
            id,
            read,
            write,
            beat: Beat::new(now_ms),
            kill: Notify::new(),
            task: Mutex::new(Some((stream, rx))),
        })
    }

    pub fn harbor(&self) -> u8 {
        self.harbor
    }

    /// The link's number, unique in the process.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends a frame: written by the caller when the socket is free and the
    /// frame does not start a burst, else queued for the task (see
    /// [`write`](mod@write)). False when the task is gone.
    pub fn send(&self, frame: HarborFrame<Vec<u8>>) -> bool {
        self.write.send(frame)
    }

    /// Queues a frame for the task, behind everything queued before it.
    pub fn queue(&self, frame: HarborFrame<Vec<u8>>) -> bool {
        self.write.queue(Out::Frame(frame))
    }

    /// Closes the link: the peer sees the end, the task stops without
    /// reporting it.
    pub fn close(&self) {
        self.write.close();
        self.kill.notify_one();
    }

    /// An idle worker's look at the link (see [`read`]); `polled`: the
    /// worker's `poll` already found it readable. True if frames were
    /// delivered.
    pub fn poll_worker<H: LinkHost>(&self, host: &H, polled: bool) -> bool {
        self.read.drain_worker(
            polled,
            || self.beat.received(host.now_ms()),
            |t, payload| self.deliver(host, t, payload),
        )
    }

    /// The descriptor a worker's `poll` asks about (-1 once closing).
    pub fn raw_fd(&self) -> i32 {
        self.read.raw_fd()
    }

    /// A worker's `poll` found nothing to read here.
    pub fn looked(&self) {
        self.read.looked();
    }

    /// A worker is about to sleep: the task must read from now on.
    pub fn request_arm(&self) {
        self.read.request_arm();
    }

    /// Hands a received frame to the host, or answers a heartbeat.
    fn deliver<H: LinkHost>(&self, host: &H, t: Trailer, payload: Vec<u8>) {
        if t.destination != HEARTBEAT_DEST {
            host.frame(self, t, payload);
            return;
        }
        match self.beat.on_frame(&t) {
            BeatReply::Pong => {
                self.write.queue(Out::Pong);
            }
            BeatReply::LegacyPeer => host.log(&format!(
                "Harbor {} does not answer link heartbeats (a skynet 1.8 node?); relying on TCP keepalive",
                self.harbor
            )),
            BeatReply::Nothing => {}
        }
    }

    /// Runs the link until it ends, then reports the end (unless the link
    /// was closed). Does nothing on a second call.
    pub async fn run<H: LinkHost>(self: Arc<Self>, host: Arc<H>) {
        let Some((stream, rx)) = self.task.lock().take() else {
            return;
        };
        host.lend_to_workers(&self);
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                host.take_from_workers(&self);
                self.read.close();
                host.ended(&self, LinkEnd::Lost(format!("link setup failed: {e}")));
                return;
            }
        };
        let host_ref = &*host;
        let beat = &self.beat;
        let end = tokio::select! {
            e = self.read.run_task(
                || beat.received(host_ref.now_ms()),
                |t, payload| self.deliver(host_ref, t, payload),
            ) => Some(e),
            e = self.write.run_task(stream, rx, host.own(), self.harbor, || {
                beat.ping_written(host_ref.now_ms())
            }) => Some(e),
            e = self.heartbeat(host_ref) => Some(e),
            () = self.kill.notified() => None,
        };
        host.take_from_workers(&self);
        self.read.close();
        if let Some(end) = end {
            host.ended(&self, end);
        }
    }

    async fn heartbeat<H: LinkHost>(&self, host: &H) -> LinkEnd {
        loop {
            tokio::time::sleep(HEARTBEAT_TICK).await;
            match self.beat.check(host.now_ms()) {
                BeatCheck::Wait => {}
                BeatCheck::Ping => {
                    self.write.queue(Out::Ping);
                }
                BeatCheck::Dead { silent_ms } => {
                    return LinkEnd::Lost(format!(
                        "no heartbeat answer from harbor {} (silent for {silent_ms} ms)",
                        self.harbor
                    ))
                }
            }
        }
    }
}

/// Runs `f` in a tokio runtime with both ends of a loopback connection:
/// the peer's (plain, blocking) and the link's (for this module's tests and
/// those of [`read`]).
#[cfg(test)]
fn on_a_socket_pair<F, Fut>(f: F)
where
    F: FnOnce(std::net::TcpStream, tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().await.unwrap();
        f(client, server).await
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ptype;
    use bytes::{Bytes, BytesMut};
    use std::io::{Read, Write};
    use std::time::Instant;

    /// Records what the link tells it.
    struct Host {
        epoch: Instant,
        frames: Mutex<Vec<(Trailer, Vec<u8>)>>,
        lent: Mutex<usize>,
        ends: Mutex<Vec<(u64, LinkEnd)>>,
        done: Notify,
    }

    impl Host {
        fn new() -> Arc<Host> {
            Arc::new(Host {
                epoch: Instant::now(),
                frames: Mutex::new(Vec::new()),
                lent: Mutex::new(0),
                ends: Mutex::new(Vec::new()),
                done: Notify::new(),
            })
        }
    }

    impl LinkHost for Host {
        fn own(&self) -> u8 {
            1
        }
        fn now_ms(&self) -> u64 {
            self.epoch.elapsed().as_millis() as u64
        }
        fn log(&self, _: &str) {}
        fn frame(&self, _: &Link, trailer: Trailer, payload: Vec<u8>) {
            self.frames.lock().push((trailer, payload));
        }
        fn lend_to_workers(&self, _: &Arc<Link>) {
            *self.lent.lock() += 1;
        }
        fn take_from_workers(&self, _: &Arc<Link>) {
            *self.lent.lock() -= 1;
        }
        fn ended(&self, link: &Link, end: LinkEnd) {
            self.ends.lock().push((link.id(), end));
            self.done.notify_one();
        }
    }

    fn read_frame(s: &mut std::net::TcpStream) -> HarborFrame {
        let mut head = [0u8; 4];
        s.read_exact(&mut head).unwrap();
        let mut buf = BytesMut::from(&head[..]);
        buf.resize(4 + u32::from_be_bytes(head) as usize, 0);
        s.read_exact(&mut buf[4..]).unwrap();
        HarborFrame::decode_from(&mut buf).unwrap().unwrap()
    }

    fn frame(destination: u32, ptype: u8, session: i32, payload: &'static [u8]) -> Vec<u8> {
        HarborFrame {
            source: 0x0200_0005,
            destination,
            ptype,
            session,
            payload: Bytes::from_static(payload),
        }
        .to_bytes()
        .unwrap()
        .to_vec()
    }

    #[test]
    fn a_link_delivers_frames_answers_probes_and_reports_its_end() {
        on_a_socket_pair(|mut peer, ours| async move {
            let host = Host::new();
            let link = Link::new(2, 42, ours, 0);
            tokio::spawn(link.clone().run(host.clone()));
            // A probe, then two frames for services.
            let mut bytes = frame(HEARTBEAT_DEST, ptype::TEXT, 0, beat::PING);
            bytes.extend(frame(7, ptype::LUA, 1, b"one"));
            bytes.extend(frame(8, ptype::LUA, 2, b"two"));
            peer.write_all(&bytes).unwrap();
            let mut peer = tokio::task::spawn_blocking(move || {
                let pong = read_frame(&mut peer);
                assert_eq!(
                    (pong.source, pong.destination, pong.ptype, &pong.payload[..]),
                    (0x0100_0000, HEARTBEAT_DEST, ptype::RESPONSE, beat::PONG)
                );
                peer
            })
            .await
            .unwrap();
            while host.frames.lock().len() < 2 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            {
                let frames = host.frames.lock();
                assert_eq!(
                    (
                        frames[0].0.destination,
                        frames[0].0.session,
                        &frames[0].1[..]
                    ),
                    (7, 1, &b"one"[..])
                );
                assert_eq!(
                    (
                        frames[1].0.destination,
                        frames[1].0.session,
                        &frames[1].1[..]
                    ),
                    (8, 2, &b"two"[..])
                );
            }
            assert_eq!(*host.lent.lock(), 1);
            // Frames sent on the link reach the peer.
            assert!(link.queue(HarborFrame {
                source: 0x0100_0003,
                destination: 0x0200_0009,
                ptype: ptype::ERROR,
                session: 4,
                payload: Vec::new(),
            }));
            let mut peer = tokio::task::spawn_blocking(move || {
                let f = read_frame(&mut peer);
                assert_eq!(
                    (f.source, f.destination, f.ptype, f.session),
                    (0x0100_0003, 9, 7, 4)
                );
                peer
            })
            .await
            .unwrap();
            // The peer breaks the protocol: the link reports it and lets go.
            peer.write_all(&[1, 0, 0, 0]).unwrap();
            host.done.notified().await;
            let ends = host.ends.lock();
            assert!(
                matches!(&ends[..], [(42, LinkEnd::Protocol(e))] if e.starts_with("Message is too long from harbor 2"))
            );
            assert_eq!(*host.lent.lock(), 0);
            assert_eq!(link.raw_fd(), -1);
        });
    }

    #[test]
    fn a_closed_link_stops_without_a_report() {
        on_a_socket_pair(|mut peer, ours| async move {
            let host = Host::new();
            let link = Link::new(2, 1, ours, 0);
            // Closed before its task starts: the task stops at once.
            link.close();
            link.clone().run(host.clone()).await;
            assert!(host.ends.lock().is_empty());
            assert_eq!(*host.lent.lock(), 0);
            // The peer sees the end.
            let mut b = [0u8; 1];
            assert_eq!(peer.read(&mut b).unwrap(), 0);
        });
    }
}
