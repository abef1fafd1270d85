//! Harbor links: dialing (older node → newer node), accepting, the 1-byte
//! id handshake, and one task per live link that reads frames (sharing the
//! read side with idle workers, see [`super::reader`]), writes frames and
//! watches the link with a heartbeat.
//!
//! # Heartbeat
//!
//! Two layers find a peer that is gone without closing its socket:
//!
//! * TCP: keepalive probes after 2 s of silence, every 1 s, 3 tries; and
//!   TCP_USER_TIMEOUT 5 s for data left unacknowledged (see [`super::net`]).
//!   This works with any peer, including skynet 1.8 nodes.
//! * Application: when nothing has been received for [`PING_IDLE`], the
//!   link sends a probe frame to local id 0 (type TEXT, payload `PING`; no
//!   service ever has id 0). This runtime answers it with a frame to id 0
//!   (type RESPONSE, `PONG`) from its harbor thread, without involving any
//!   service. If nothing at all arrives within [`PONG_TIMEOUT`] after the
//!   probe was actually written, the link is declared dead. A skynet 1.8
//!   peer answers the probe with an ERROR frame (and logs one "Unknown
//!   destination" line); the link then stops probing and relies on TCP.
//!
//! So a silent peer (host down, process stopped, harbor thread stuck) is
//! detected in about PING_IDLE + PONG_TIMEOUT ≈ 3 s; a killed process is
//! detected at once by its EOF/RST.

use super::frame::{OutFrame, Trailer, HEARTBEAT_DEST, PING, PONG};
use super::net;
use super::state::{is_request, Cluster, Out};
use crate::kernel::kernel;
use crate::message::{ptype, Message};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;

use super::direct::DirectWriter;
use super::reader::{Drained, LinkReader, DISARMED_TICK, DISARMED_TICK_MAX};
use tokio::time::timeout;

/// Silence on a link before a heartbeat probe is sent.
pub const PING_IDLE: Duration = Duration::from_millis(1000);
/// Time allowed for any byte to arrive after a probe was written.
pub const PONG_TIMEOUT: Duration = Duration::from_millis(2000);
const HEARTBEAT_TICK: Duration = Duration::from_millis(250);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A connector for a `C` gives up (the harbor is marked down) after this.
pub const CONNECT_GIVE_UP: Duration = Duration::from_secs(10);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
const IO_BUFFER: usize = 64 * 1024;

/// How a link ended.
pub enum LinkEnd {
    /// EOF, reset, write failure, heartbeat timeout.
    Lost(String),
    /// The peer broke the protocol (oversize or malformed frame).
    Protocol(String),
}

/// Heartbeat bookkeeping shared by the parts of one link task.
struct Beat {
    /// ms (cluster clock) of the last byte received.
    last_rx: AtomicU64,
    /// ms when the last probe was written (0: none yet).
    ping_written: AtomicU64,
    ping_queued: AtomicBool,
    /// The peer does not speak the heartbeat (a skynet 1.8 node).
    legacy: AtomicBool,
}

/// Connects to harbor `id` at `addr` and does the handshake: our id byte
/// out, theirs back.
async fn dial(cluster: &Cluster, id: u8, addr: &str) -> Result<TcpStream, (String, bool)> {
    let mut s = match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err((e.to_string(), false)),
        Err(_) => return Err(("connect timed out".into(), false)),
    };
    net::tune(&s);
    if let Err(e) = s.write_all(&[cluster.own]).await {
        return Err((format!("handshake write failed: {e}"), false));
    }
    let mut b = [0u8; 1];
    match timeout(HANDSHAKE_TIMEOUT, s.read_exact(&mut b)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err((format!("handshake failed: {e}"), false)),
        Err(_) => return Err(("handshake timed out".into(), false)),
    }
    if b[0] != id {
        return Err((
            format!("Invalid shakehand id ({}) from harbor {id} at {addr}", b[0]),
            true,
        ));
    }
    Ok(s)
}

/// Connects to harbor `id` until it works, the attempt is superseded, or
/// (for a first connection) [`CONNECT_GIVE_UP`] passes. `reconnect`: the
/// link was lost and we were its connecting side; retries until the master
/// says the harbor is down or a new link replaces it.
pub async fn connector(cluster: Arc<Cluster>, id: u8, addr: String, gen: u64, reconnect: bool) {
    let started = tokio::time::Instant::now();
    let mut delay = RETRY_MIN;
    let mut failures = 0u32;
    if reconnect {
        // A killed peer's master connection breaks at the same moment: give
        // the master's `D` a chance to arrive first.
        tokio::time::sleep(delay).await;
    }
    loop {
        if !cluster.attempt_current(id, gen) {
            return;
        }
        match dial(&cluster, id, &addr).await {
            Ok(stream) => {
                if reconnect && cluster.attempt_current(id, gen) {
                    cluster.log(&format!("Reconnected to harbor {id} ({addr})"));
                }
                cluster.attach(id, stream, true, Some(gen));
                return;
            }
            Err((e, fatal)) => {
                failures += 1;
                if fatal || (!reconnect && started.elapsed() >= CONNECT_GIVE_UP) {
                    cluster.connect_failed(
                        id,
                        gen,
                        &format!("Can't connect to harbor {id} ({addr}): {e}"),
                    );
                    return;
                }
                if !cluster.attempt_current(id, gen) {
                    return;
                }
                if failures == 1 || failures.is_multiple_of(10) {
                    cluster.log(&format!(
                        "Can't connect to harbor {id} ({addr}): {e}; retrying (attempt {failures})"
                    ));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Accepts connections from older harbors for the life of the node.
pub async fn accept_loop(cluster: Arc<Cluster>, listener: std::net::TcpListener) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            cluster.log(&format!("Can't listen on {}: {e}", cluster.address));
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((s, peer)) => {
                tokio::spawn(accept_one(cluster.clone(), s, peer.to_string()));
            }
            Err(e) => {
                cluster.log(&format!("accept on {} failed: {e}", cluster.address));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn accept_one(cluster: Arc<Cluster>, mut s: TcpStream, peer: String) {
    net::tune(&s);
    let mut b = [0u8; 1];
    match timeout(HANDSHAKE_TIMEOUT, s.read_exact(&mut b)).await {
        Ok(Ok(_)) => {}
        _ => {
            cluster.log(&format!(
                "Connection from {peer} closed before its handshake"
            ));
            return;
        }
    }
    let id = b[0];
    if id == 0 || id == cluster.own {
        cluster.log(&format!("Invalid harbor id {id} from {peer}"));
        return;
    }
    if s.write_all(&[cluster.own]).await.is_err() {
        return;
    }
    cluster.attach(id, s, false, None);
}

/// What a link task is handed besides its socket: its writer queue (both
/// ends), the state's kill switch and the direct-write gate.
pub struct LinkIo {
    pub tx: UnboundedSender<Out>,
    pub rx: UnboundedReceiver<Out>,
    pub kill: Arc<Notify>,
    pub direct: Arc<DirectWriter>,
}

/// The receiving half of a live link, as the link task and idle workers
/// share it.
pub struct Inbound {
    pub reader: LinkReader,
    tx: UnboundedSender<Out>,
    beat: Beat,
}

impl Inbound {
    /// An idle worker's look at the link (see [`super::reader`]); `polled`:
    /// the worker's `poll` already found it readable.
    pub fn poll_worker(&self, cluster: &Cluster, polled: bool) -> bool {
        self.reader.drain_worker(
            polled,
            || self.beat.last_rx.store(cluster.now_ms(), Ordering::Relaxed),
            |t, payload| {
                deliver(
                    cluster,
                    self.reader.harbor,
                    &self.tx,
                    &self.beat,
                    t,
                    payload,
                )
            },
        )
    }
}

/// Runs one live link until it ends, then reports the loss (unless the
/// state closed it: `kill`).
pub async fn run_link(
    cluster: Arc<Cluster>,
    harbor: u8,
    link_id: u64,
    stream: TcpStream,
    io: LinkIo,
) {
    let LinkIo {
        tx,
        rx,
        kill,
        direct,
    } = io;
    let inbound = Arc::new(Inbound {
        reader: LinkReader::new(harbor, &stream),
        tx: tx.clone(),
        beat: Beat {
            last_rx: AtomicU64::new(cluster.now_ms()),
            ping_written: AtomicU64::new(0),
            ping_queued: AtomicBool::new(false),
            legacy: AtomicBool::new(false),
        },
    });
    cluster.add_inbound(inbound.clone());
    let wr = match stream.into_std() {
        Ok(stream) => FdWriter {
            waiting: None,
            stream,
        },
        Err(e) => {
            cluster.remove_inbound(&inbound);
            inbound.reader.close();
            cluster.link_lost(harbor, link_id, &format!("link setup failed: {e}"), false);
            return;
        }
    };
    let beat = &inbound.beat;
    let end = tokio::select! {
        e = read_loop(&cluster, &inbound) => Some(e),
        e = write_loop(&cluster, harbor, wr, rx, beat, &direct) => Some(e),
        e = heartbeat(&cluster, harbor, &tx, beat) => Some(e),
        () = kill.notified() => None,
    };
    cluster.remove_inbound(&inbound);
    inbound.reader.close();
    let Some(end) = end else { return };
    let (reason, protocol) = match end {
        LinkEnd::Lost(r) => (r, false),
        LinkEnd::Protocol(r) => (r, true),
    };
    cluster.link_lost(harbor, link_id, &reason, protocol);
}

/// A link socket's raw descriptor, registered with the harbor thread's poller
/// for a while (reading while the task is armed, writing while a write waits
/// for room). Whoever owns the descriptor drops the registration first.
struct LinkFd(std::os::fd::RawFd);

impl std::os::fd::AsRawFd for LinkFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0
    }
}

/// Reads the link whenever idle workers do not (see [`super::reader`] for
/// when it is armed), until the link is over.
async fn read_loop(cluster: &Arc<Cluster>, inbound: &Inbound) -> LinkEnd {
    use std::os::fd::AsRawFd;
    use tokio::io::unix::AsyncFd;
    let Inbound { reader, tx, beat } = inbound;
    let Some(fd) = reader.dup_fd() else {
        return LinkEnd::Lost("link socket could not be duplicated".into());
    };
    // Registers for readability; sleeps seen until now are answered by it.
    let arm = || {
        // SAFETY: `fd` outlives every registration made here (they are
        // dropped before it at the end of this function, or sooner).
        let r =
            unsafe { AsyncFd::register_with_interest(LinkFd(fd.as_raw_fd()), Interest::READABLE) }
                .map_err(|e| {
                    LinkEnd::Lost(format!(
                        "link socket registration failed: {}",
                        e.into_parts().1
                    ))
                })?;
        reader.set_armed(true);
        reader.take_sleep_seen();
        Ok(r)
    };
    let mut registration = match arm() {
        Ok(r) => Some(r),
        Err(end) => return end,
    };
    let mut looks = reader.looks();
    let mut tick = DISARMED_TICK;
    let on_rx = || beat.last_rx.store(cluster.now_ms(), Ordering::Relaxed);
    let on_frame = |t, payload| deliver(cluster, reader.harbor, tx, beat, t, payload);
    loop {
        let Some(r) = &registration else {
            let asked = tokio::select! {
                () = tokio::time::sleep(tick) => false,
                () = reader.wake.notified() => true,
            };
            let now = reader.looks();
            // Workers still look: check less often (a node with many links
            // would otherwise wake its harbor thread a thousand times a
            // second per link).
            tick = (tick * 2).min(DISARMED_TICK_MAX);
            if asked || now == looks {
                match arm() {
                    Ok(r) => registration = Some(r),
                    Err(end) => return end,
                }
            }
            looks = now;
            // Whatever is there now (or the end a worker found).
            if let Drained::End(end) = reader.drain_task(on_rx, on_frame) {
                return end;
            }
            continue;
        };
        let mut guard = tokio::select! {
            g = r.readable() => match g {
                Ok(g) => Some(g),
                Err(e) => return LinkEnd::Lost(format!("read failed: {e}")),
            },
            () = reader.wake.notified() => None,
        };
        if let Drained::End(end) = reader.drain_task(on_rx, on_frame) {
            return end;
        }
        let woke_readable = guard.is_some();
        if let Some(g) = guard.as_mut() {
            g.clear_ready();
        }
        let now = reader.looks();
        if woke_readable && now != looks && !reader.take_sleep_seen() {
            // Workers look at the link: leave it to them and stop being
            // woken (even when this wake-up won the race for the bytes),
            // unless one of them fell asleep meanwhile (see
            // `LinkReader::request_arm`).
            reader.set_armed(false);
            if reader.take_sleep_seen() {
                reader.set_armed(true);
            } else {
                registration = None;
                tick = DISARMED_TICK;
            }
        }
        looks = now;
    }
}

/// Hands a received frame to its local destination.
fn deliver(
    cluster: &Cluster,
    harbor: u8,
    tx: &UnboundedSender<Out>,
    beat: &Beat,
    t: Trailer,
    payload: Vec<u8>,
) {
    if t.local == HEARTBEAT_DEST {
        match t.ptype {
            ptype::TEXT => {
                let _ = tx.send(Out::Pong);
            }
            ptype::ERROR if !beat.legacy.swap(true, Ordering::Relaxed) => {
                cluster.log(&format!(
                    "Harbor {harbor} does not answer link heartbeats (a skynet 1.8 node?); relying on TCP keepalive"
                ));
            }
            _ => {}
        }
        return;
    }
    let dest = ((cluster.own as u32) << 24) | t.local;
    if t.ptype == ptype::RESPONSE || t.ptype == ptype::ERROR {
        cluster.answered(dest, t.session);
    }
    if kernel()
        .push(dest, Message::new(t.source, t.session, t.ptype, payload))
        .is_err()
    {
        if is_request(t.ptype) {
            let _ = tx.send(Out::Frame(OutFrame::new(
                dest,
                t.source,
                ptype::ERROR,
                t.session,
                Vec::new(),
            )));
        }
        cluster.log(&format!(
            "Unknown destination :{dest:x} from :{:x} type({})",
            t.source, t.ptype
        ));
    }
}

/// The write direction of a link's socket. It is registered with the harbor
/// thread's poller only while a write waits for room: a registered socket
/// makes every arriving segment walk the poller's callback with interrupts
/// off (on a small VM a measurable part of each send), whatever it waits for.
struct FdWriter {
    /// Declared first: deregistered before `stream` closes the descriptor.
    waiting: Option<tokio::io::unix::AsyncFd<LinkFd>>,
    stream: std::net::TcpStream,
}

impl FdWriter {
    /// Everything was written: stop watching the socket.
    fn idle(&mut self) {
        self.waiting = None;
    }
}

impl AsyncWrite for FdWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        use std::task::Poll;
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
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // SAFETY: the registration is dropped before `stream`
                    // (field order, and `idle`).
                    let reg = unsafe {
                        tokio::io::unix::AsyncFd::register_with_interest(
                            LinkFd(stream.as_raw_fd()),
                            Interest::WRITABLE,
                        )
                    }
                    .map_err(|e| e.into_parts().1)?;
                    *waiting = Some(reg);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                r => return Poll::Ready(r),
            }
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(self.stream.shutdown(std::net::Shutdown::Write))
    }
}

async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, f: &OutFrame) -> std::io::Result<()> {
    w.write_all(&f.head()).await?;
    w.write_all(&f.payload).await?;
    w.write_all(&f.trailer).await
}

async fn write_loop(
    cluster: &Cluster,
    harbor: u8,
    wr: FdWriter,
    mut rx: UnboundedReceiver<Out>,
    beat: &Beat,
    direct: &DirectWriter,
) -> LinkEnd {
    let mut w = BufWriter::with_capacity(IO_BUFFER, wr);
    let own = (cluster.own as u32) << 24;
    loop {
        let Some(first) = rx.recv().await else {
            return LinkEnd::Lost("link closed".into());
        };
        direct.task_takes();
        let mut next = Some(first);
        let mut pinged = false;
        while let Some(out) = next {
            let r = match out {
                Out::Frame(f) => write_frame(&mut w, &f).await,
                Out::Raw(bytes) => w.write_all(&bytes).await,
                Out::Ping => {
                    pinged = true;
                    let f = OutFrame::new(own, HEARTBEAT_DEST, ptype::TEXT, 0, PING.to_vec());
                    write_frame(&mut w, &f).await
                }
                Out::Pong => {
                    let f = OutFrame::new(own, HEARTBEAT_DEST, ptype::RESPONSE, 0, PONG.to_vec());
                    write_frame(&mut w, &f).await
                }
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
        direct.task_releases(&rx);
        if pinged {
            beat.ping_written
                .store(cluster.now_ms().max(1), Ordering::Relaxed);
            beat.ping_queued.store(false, Ordering::Relaxed);
        }
    }
}

async fn heartbeat(
    cluster: &Cluster,
    harbor: u8,
    tx: &UnboundedSender<Out>,
    beat: &Beat,
) -> LinkEnd {
    let idle = PING_IDLE.as_millis() as u64;
    let patience = PONG_TIMEOUT.as_millis() as u64;
    loop {
        tokio::time::sleep(HEARTBEAT_TICK).await;
        if beat.legacy.load(Ordering::Relaxed) {
            continue;
        }
        let now = cluster.now_ms();
        let last = beat.last_rx.load(Ordering::Relaxed);
        let written = beat.ping_written.load(Ordering::Relaxed);
        let unanswered = written != 0 && last < written;
        if unanswered && now.saturating_sub(written) >= patience {
            return LinkEnd::Lost(format!(
                "no heartbeat answer from harbor {harbor} (silent for {} ms)",
                now.saturating_sub(last)
            ));
        }
        if !unanswered
            && now.saturating_sub(last) >= idle
            && !beat.ping_queued.swap(true, Ordering::Relaxed)
        {
            let _ = tx.send(Out::Ping);
        }
    }
}
