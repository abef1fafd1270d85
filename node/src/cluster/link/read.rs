//! The read side of a harbor link, shared by the link's task and idle
//! workers.
//!
//! A worker that has nothing to run polls the run queue for a short while
//! before it sleeps ([`crate::scheduler::SPIN`]); meanwhile it also reads the
//! links itself, without blocking ([`ReadSide::drain_worker`]). A reply from
//! another node that arrives in that window goes from the socket to its
//! service's queue on the worker that will run it, with no I/O-thread and no
//! worker wake-up on the way.
//!
//! The link task reads when workers do not ([`ReadSide::run_task`]). It is
//! *armed* (the socket is registered with the harbor thread's poller for
//! reading) or *disarmed* (not registered, so arriving bytes wake nobody).
//! It disarms after a readiness wake-up when workers looked at the link since
//! the previous one and none of them fell asleep meanwhile, whether or not the
//! wake-up found bytes. Disarmed, it still reads the link every tick
//! ([`DISARMED_TICK`], growing to [`DISARMED_TICK_MAX`] while workers keep
//! looking), and it arms again when a worker goes to sleep
//! ([`ReadSide::request_arm`]) or when no worker looked at the link for a
//! whole tick (all of them busy). So a frame waits for nobody while a worker
//! is idle (awake or asleep), and for at most one tick (8 ms) while every
//! worker is busy. Why these rules, with measurements: docs/performance.md,
//! "Cluster links".
//!
//! One lock covers the socket's read direction and the partial frame: whoever
//! holds it reads and delivers complete frames in order, so frames are never
//! split between readers nor reordered. Workers only `try_lock`; the task
//! waits for it. A worker that meets the end of the link (EOF, an error, a
//! malformed frame) records it and wakes the task, which reports it.

use super::end::LinkEnd;
use crate::cluster::net::LinkFd;
use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use skynet_proto::harbor::{HarborCodecError, HarborFrame, Trailer, MAX_FRAME_LEN, TRAILER_LEN};
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Notify;

/// While the task is disarmed it reads the link and checks that workers
/// still look at it after this long, then twice as long each time they did,
/// up to [`DISARMED_TICK_MAX`]; as soon as no worker looked, it arms.
pub const DISARMED_TICK: Duration = Duration::from_millis(1);
pub const DISARMED_TICK_MAX: Duration = Duration::from_millis(8);

/// Read buffer growth step; also the most a worker reads in one poll.
const READ_CHUNK: usize = 64 * 1024;

/// The read direction of one link's socket.
pub struct ReadSide {
    harbor: u8,
    inner: Mutex<Locked>,
    /// The link is over (or closing): workers skip it.
    ended: AtomicBool,
    /// A worker found the end of the link, or asks the task to arm.
    wake: Notify,
    /// How many times workers looked at the socket (a disarmed task arms
    /// when this stops moving).
    looks: AtomicU64,
    /// The task is registered for readability.
    armed: AtomicBool,
    /// A worker went to sleep since the task last asked.
    sleep_seen: AtomicBool,
    /// The workers' duplicate's descriptor while it is open, else -1: what
    /// a worker looking at several links at once asks `poll` about.
    raw_fd: AtomicI32,
}

/// What the reading thread holds.
struct Locked {
    /// A duplicate of the link's socket (non-blocking) for workers.
    fd: Option<OwnedFd>,
    /// Bytes read and not yet delivered (at most a partial frame between
    /// drains).
    buf: BytesMut,
    /// How the link ended, when a worker found out.
    end: Option<LinkEnd>,
}

/// What one drain did.
pub enum Drained {
    /// The socket has no more bytes for now; `bool`: something was delivered.
    Idle(bool),
    /// The link is over.
    End(LinkEnd),
}

impl ReadSide {
    /// For the socket of a link. Without a duplicate nobody can read it:
    /// the task reports the link lost.
    pub fn new(harbor: u8, socket: &impl AsFd) -> ReadSide {
        let fd = socket.as_fd().try_clone_to_owned().ok();
        ReadSide {
            harbor,
            raw_fd: AtomicI32::new(fd.as_ref().map_or(-1, |f| f.as_raw_fd())),
            inner: Mutex::new(Locked {
                fd,
                buf: BytesMut::with_capacity(READ_CHUNK),
                end: None,
            }),
            ended: AtomicBool::new(false),
            wake: Notify::new(),
            looks: AtomicU64::new(0),
            armed: AtomicBool::new(false),
            sleep_seen: AtomicBool::new(false),
        }
    }

    /// A worker is about to sleep: the task must read from now on.
    ///
    /// `sleep_seen` and `armed` are written then read in opposite orders here
    /// and in the task's disarming (all SeqCst), so a worker that falls asleep
    /// while the task disarms is seen by one side or the other.
    pub fn request_arm(&self) {
        self.sleep_seen.store(true, Ordering::SeqCst);
        if !self.armed.load(Ordering::SeqCst) && !self.ended.load(Ordering::Acquire) {
            self.wake.notify_one();
        }
    }

    /// Whether a worker went to sleep since the last call.
    fn take_sleep_seen(&self) -> bool {
        self.sleep_seen.swap(false, Ordering::SeqCst)
    }

    /// The task records whether it is registered for readability.
    fn set_armed(&self, armed: bool) {
        self.armed.store(armed, Ordering::SeqCst);
    }

    /// How many times workers have looked at the socket so far.
    fn looks(&self) -> u64 {
        self.looks.load(Ordering::Relaxed)
    }

    /// Another duplicate of the socket, for the task's registration.
    fn dup_fd(&self) -> Option<OwnedFd> {
        self.inner.lock().fd.as_ref()?.try_clone().ok()
    }

    /// The task's turn: reads the socket until it would block, or returns
    /// the end a worker found.
    fn drain_task(&self, on_rx: impl FnMut(), on_frame: impl FnMut(Trailer, Vec<u8>)) -> Drained {
        let mut side = self.inner.lock();
        if let Some(end) = side.end.take() {
            return Drained::End(end);
        }
        let side = &mut *side;
        let Some(fd) = side.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return Drained::Idle(false);
        };
        let r = drain(
            &mut side.buf,
            self.harbor,
            usize::MAX,
            |b| read_fd(fd, b),
            on_rx,
            on_frame,
        );
        if matches!(r, Drained::End(_)) {
            self.ended.store(true, Ordering::Release);
        }
        r
    }

    /// The task's reading, until the link is over: it waits for the socket
    /// while armed, ticks while disarmed (see the module doc), and drains
    /// whenever it wakes.
    pub async fn run_task(
        &self,
        mut on_rx: impl FnMut(),
        mut on_frame: impl FnMut(Trailer, Vec<u8>),
    ) -> LinkEnd {
        let Some(fd) = self.dup_fd() else {
            return LinkEnd::Lost("link socket could not be duplicated".into());
        };
        // Registers for readability; sleeps seen until now are answered by it.
        let arm = || {
            // SAFETY: `fd` outlives every registration made here (they are
            // dropped before it at the end of this function, or sooner).
            let r = unsafe {
                AsyncFd::register_with_interest(LinkFd(fd.as_raw_fd()), Interest::READABLE)
            }
            .map_err(|e| {
                LinkEnd::Lost(format!(
                    "link socket registration failed: {}",
                    e.into_parts().1
                ))
            })?;
            self.set_armed(true);
            self.take_sleep_seen();
            Ok(r)
        };
        let mut registration = match arm() {
            Ok(r) => Some(r),
            Err(end) => return end,
        };
        let mut looks = self.looks();
        let mut tick = DISARMED_TICK;
        loop {
            let Some(r) = &registration else {
                let asked = tokio::select! {
                    () = tokio::time::sleep(tick) => false,
                    () = self.wake.notified() => true,
                };
                let now = self.looks();
                // Workers still look: check less often.
                tick = (tick * 2).min(DISARMED_TICK_MAX);
                if asked || now == looks {
                    match arm() {
                        Ok(r) => registration = Some(r),
                        Err(end) => return end,
                    }
                }
                looks = now;
                // Whatever is there now (or the end a worker found).
                if let Drained::End(end) = self.drain_task(&mut on_rx, &mut on_frame) {
                    return end;
                }
                continue;
            };
            let mut guard = tokio::select! {
                g = r.readable() => match g {
                    Ok(g) => Some(g),
                    Err(e) => return LinkEnd::Lost(format!("read failed: {e}")),
                },
                () = self.wake.notified() => None,
            };
            if let Drained::End(end) = self.drain_task(&mut on_rx, &mut on_frame) {
                return end;
            }
            let woke_readable = guard.is_some();
            if let Some(g) = guard.as_mut() {
                g.clear_ready();
            }
            let now = self.looks();
            if woke_readable && now != looks && !self.take_sleep_seen() {
                // Workers look at the link: leave it to them and stop being
                // woken (even when this wake-up won the race for the bytes),
                // unless one of them fell asleep meanwhile (see
                // `request_arm`).
                self.set_armed(false);
                if self.take_sleep_seen() {
                    self.set_armed(true);
                } else {
                    registration = None;
                    tick = DISARMED_TICK;
                }
            }
            looks = now;
        }
    }

    /// The descriptor to ask `poll` about for a worker's look, -1 once the
    /// link is closing. (A look that raced with the closing may ask about a
    /// closed or reused number: it then finds the link ended, or nothing.)
    pub fn raw_fd(&self) -> i32 {
        self.raw_fd.load(Ordering::Acquire)
    }

    /// A worker looked at the socket (through a `poll` of several links) and
    /// found nothing to read.
    pub fn looked(&self) {
        self.looks.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker's turn: reads what is there without waiting, if nobody else is
    /// reading. True if frames were delivered. `polled`: the caller's `poll`
    /// just found the socket readable (no need to ask again).
    pub fn drain_worker(
        &self,
        polled: bool,
        on_rx: impl FnMut(),
        on_frame: impl FnMut(Trailer, Vec<u8>),
    ) -> bool {
        if self.ended.load(Ordering::Acquire) {
            return false;
        }
        let Some(mut side) = self.inner.try_lock() else {
            return false;
        };
        let side = &mut *side;
        let Some(fd) = side.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return false;
        };
        self.looks.fetch_add(1, Ordering::Relaxed);
        if !polled && !readable(fd) {
            return false;
        }
        // A read that left room in the buffer emptied the socket: asking
        // again would only hear "would block" (a system call on the way to
        // the service). Bytes that arrive after it are seen at the next look,
        // or by the task once no worker looks.
        let mut emptied = false;
        let read = |b: &mut BytesMut| {
            if emptied {
                return Err(ErrorKind::WouldBlock.into());
            }
            let room = b.capacity() - b.len();
            let n = read_fd(fd, b)?;
            emptied = n < room;
            Ok(n)
        };
        match drain(
            &mut side.buf,
            self.harbor,
            READ_CHUNK,
            read,
            on_rx,
            on_frame,
        ) {
            Drained::Idle(delivered) => delivered,
            Drained::End(end) => {
                side.end = Some(end);
                self.ended.store(true, Ordering::Release);
                self.wake.notify_one();
                true
            }
        }
    }

    /// The link task is finishing: workers stop reading and the duplicate
    /// socket is closed.
    pub fn close(&self) {
        self.ended.store(true, Ordering::Release);
        self.raw_fd.store(-1, Ordering::Release);
        self.inner.lock().fd = None;
    }
}

/// Whether `fd` has bytes, an end or an error to read, asked without taking
/// the socket's lock: `recv` on an idle link would contend for that lock with
/// the kernel delivering the peer's frames, while `poll` with no timeout reads
/// the socket's state without it. (`drain` delivers every complete frame
/// before it returns, so nothing buffered waits when this says no.)
fn readable(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd and the count says 1.
    unsafe { libc::poll(&mut p, 1, 0) != 0 }
}

/// One non-blocking `read(2)` into the spare capacity of `buf`.
fn read_fd(fd: i32, buf: &mut BytesMut) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    // SAFETY: `spare` is writable memory of `spare.len()` bytes that `buf`
    // owns; recv writes at most that many.
    let n = unsafe {
        libc::recv(
            fd,
            spare.as_mut_ptr() as *mut libc::c_void,
            spare.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: recv initialized the first n bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// The log text for a frame length no frame may have.
fn frame_error(e: &HarborCodecError, harbor: u8) -> String {
    match e {
        HarborCodecError::FrameTooLong(len) => format!(
            "Message is too long from harbor {harbor} (frame length {len:#010x}, the limit is {MAX_FRAME_LEN:#010x}): dropping the link"
        ),
        HarborCodecError::FrameTooShort(len) => format!(
            "Malformed frame from harbor {harbor} (length {len} is shorter than its {TRAILER_LEN}-byte trailer): dropping the link"
        ),
        other => format!("Malformed frame from harbor {harbor} ({other}): dropping the link"),
    }
}

/// Delivers the complete frames in `buf`, reads (up to `budget` bytes) and
/// delivers again, until the socket has nothing more or the link is over.
fn drain(
    buf: &mut BytesMut,
    harbor: u8,
    budget: usize,
    mut read: impl FnMut(&mut BytesMut) -> io::Result<usize>,
    mut on_rx: impl FnMut(),
    mut on_frame: impl FnMut(Trailer, Vec<u8>),
) -> Drained {
    let mut delivered = false;
    let mut taken = 0usize;
    loop {
        loop {
            let total = match HarborFrame::measure(buf) {
                Ok(Some(total)) => total,
                Ok(None) => break,
                Err(e) => return Drained::End(LinkEnd::Protocol(frame_error(&e, harbor))),
            };
            if buf.len() < total {
                // Room for the whole frame, so its rest arrives in few reads.
                buf.reserve(total - buf.len());
                break;
            }
            let payload_end = total - TRAILER_LEN;
            let mut trailer = [0u8; TRAILER_LEN];
            trailer.copy_from_slice(&buf[payload_end..total]);
            let payload = buf[4..payload_end].to_vec();
            buf.advance(total);
            on_frame(Trailer::from_bytes(&trailer), payload);
            delivered = true;
        }
        if taken >= budget {
            return Drained::Idle(delivered);
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        if buf.is_empty() && buf.capacity() > 4 * READ_CHUNK {
            // A big frame went through: do not keep its room for the link's life.
            *buf = BytesMut::with_capacity(READ_CHUNK);
        }
        match read(buf) {
            Ok(0) => {
                let why = if buf.is_empty() {
                    "connection closed by the peer"
                } else {
                    "connection closed in the middle of a frame"
                };
                return Drained::End(LinkEnd::Lost(why.into()));
            }
            Ok(n) => {
                taken += n;
                on_rx();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Drained::Idle(delivered),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Drained::End(LinkEnd::Lost(format!("read failed: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::link::on_a_socket_pair;

    /// A frame's bytes.
    fn frame(source: u32, dest: u32, ptype: u8, session: i32, payload: Vec<u8>) -> Vec<u8> {
        HarborFrame {
            source,
            destination: dest,
            ptype,
            session,
            payload,
        }
        .to_bytes()
        .unwrap()
        .to_vec()
    }

    /// Reads from a script of chunks; WouldBlock when the script is used up
    /// (unless it ends with EOF, an empty chunk).
    fn scripted(chunks: Vec<Vec<u8>>) -> impl FnMut(&mut BytesMut) -> io::Result<usize> {
        let mut chunks = chunks.into_iter();
        move |b: &mut BytesMut| match chunks.next() {
            Some(c) => {
                b.extend_from_slice(&c);
                Ok(c.len())
            }
            None => Err(ErrorKind::WouldBlock.into()),
        }
    }

    fn run(chunks: Vec<Vec<u8>>, buf: &mut BytesMut) -> (Vec<(Trailer, Vec<u8>)>, Drained) {
        let mut got = Vec::new();
        let r = drain(
            buf,
            3,
            usize::MAX,
            scripted(chunks),
            || {},
            |t, p| got.push((t, p)),
        );
        (got, r)
    }

    #[test]
    fn frames_split_and_joined_across_reads() {
        let a = frame(0x0300_0001, 0x0100_0002, 10, 5, b"hello".to_vec());
        let b = frame(0x0300_0001, 0x0100_0002, 1, 6, vec![7u8; 70_000]);
        let c = frame(0x0300_0009, 0x0100_0004, 7, -2, Vec::new());
        let mut all = a.clone();
        all.extend_from_slice(&b);
        all.extend_from_slice(&c);
        // Cut the stream at awkward places: inside a length, a payload, a trailer.
        let cuts = [
            2,
            9,
            a.len() + 3,
            a.len() + 40_000,
            all.len() - 5,
            all.len(),
        ];
        let mut chunks = Vec::new();
        let mut at = 0;
        for cut in cuts {
            chunks.push(all[at..cut].to_vec());
            at = cut;
        }
        let mut buf = BytesMut::new();
        let (got, r) = run(chunks, &mut buf);
        assert!(matches!(r, Drained::Idle(true)));
        assert!(buf.is_empty());
        assert_eq!(got.len(), 3);
        let (_, _) = run(vec![frame(1, 2, 10, 1, vec![1u8; 1 << 20])], &mut buf);
        assert!(
            buf.capacity() <= 4 * READ_CHUNK,
            "the room of a 1 MiB frame is given back"
        );
        assert_eq!(got[0].1, b"hello");
        assert_eq!(
            (got[0].0.destination, got[0].0.ptype, got[0].0.session),
            (2, 10, 5)
        );
        assert_eq!(got[1].1, vec![7u8; 70_000]);
        assert_eq!(
            (got[2].0.source, got[2].0.ptype, got[2].0.session),
            (0x0300_0009, 7, -2)
        );
        assert!(got[2].1.is_empty());
    }

    #[test]
    fn partial_frame_waits_for_the_next_drain() {
        let a = frame(1, 2, 10, 1, b"abc".to_vec());
        let mut buf = BytesMut::new();
        let (got, r) = run(vec![a[..10].to_vec()], &mut buf);
        assert!(got.is_empty());
        assert!(matches!(r, Drained::Idle(false)));
        let (got, _) = run(vec![a[10..].to_vec()], &mut buf);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, b"abc");
    }

    #[test]
    fn end_of_stream_and_bad_lengths() {
        let mut buf = BytesMut::new();
        let eof = |b: &mut BytesMut| -> io::Result<usize> {
            let _ = b;
            Ok(0)
        };
        match drain(&mut buf, 3, usize::MAX, eof, || {}, |_, _| {}) {
            Drained::End(LinkEnd::Lost(why)) => assert_eq!(why, "connection closed by the peer"),
            _ => panic!("expected the end"),
        }
        let mut buf = BytesMut::from(&[0u8, 0, 0, 20, 1, 2][..]);
        match drain(&mut buf, 3, usize::MAX, eof, || {}, |_, _| {}) {
            Drained::End(LinkEnd::Lost(why)) => {
                assert_eq!(why, "connection closed in the middle of a frame")
            }
            _ => panic!("expected the end"),
        }
        let (_, r) = run(vec![vec![1, 0, 0, 0, 9, 9]], &mut BytesMut::new());
        match r {
            Drained::End(LinkEnd::Protocol(e)) => {
                assert!(e.starts_with("Message is too long from harbor 3"))
            }
            _ => panic!("expected a protocol error"),
        }
        let (_, r) = run(vec![vec![0, 0, 0, 5, 9, 9, 9, 9, 9]], &mut BytesMut::new());
        assert!(matches!(r, Drained::End(LinkEnd::Protocol(_))));
    }

    #[test]
    fn bad_length_texts() {
        let text = |head: [u8; 4]| match HarborFrame::measure(&head) {
            Ok(len) => Ok(len),
            Err(e) => Err(frame_error(&e, 2)),
        };
        assert_eq!(text([0, 0, 0, 12]), Ok(Some(16)));
        assert_eq!(text([0, 0xff, 0xff, 0xff]), Ok(Some(0x0100_0003)));
        assert_eq!(
            text([1, 0, 0, 0]).unwrap_err(),
            "Message is too long from harbor 2 (frame length 0x01000000, the limit is 0x00ffffff): dropping the link"
        );
        assert_eq!(
            text([0, 0, 0, 11]).unwrap_err(),
            "Malformed frame from harbor 2 (length 11 is shorter than its 12-byte trailer): dropping the link"
        );
    }

    #[test]
    fn a_worker_reads_a_real_socket_and_leaves_the_end_to_the_task() {
        on_a_socket_pair(|mut client, server| async move {
            let reader = ReadSide::new(3, &server);
            let mut got = Vec::new();
            // Nothing there yet: the worker returns at once.
            assert!(!reader.drain_worker(false, || {}, |t, p| got.push((t, p))));
            use std::io::Write;
            client
                .write_all(&frame(1, 2, 10, 1, b"x".to_vec()))
                .unwrap();
            let mut tries = 0;
            while got.is_empty() && tries < 1000 {
                reader.drain_worker(false, || {}, |t, p| got.push((t, p)));
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            assert_eq!(got.len(), 1);
            drop(client);
            let mut tries = 0;
            while !reader.ended.load(Ordering::Acquire) && tries < 1000 {
                reader.drain_worker(false, || {}, |_, _| {});
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            // The worker found the EOF; the task is woken and gets it.
            reader.wake.notified().await;
            let r = reader.drain_task(|| {}, |_, _| {});
            assert!(
                matches!(r, Drained::End(LinkEnd::Lost(ref w)) if w == "connection closed by the peer")
            );
            // After close, workers leave the socket alone.
            reader.close();
            assert_eq!(reader.raw_fd(), -1);
            assert!(!reader.drain_worker(true, || {}, |_, _| {}));
        });
    }

    #[test]
    fn a_worker_reads_frames_bigger_than_its_buffer_in_order() {
        on_a_socket_pair(|mut client, server| async move {
            let reader = ReadSide::new(3, &server);
            assert!(reader.raw_fd() >= 0);
            let mut got = Vec::new();
            // Told readable by a poll that raced: nothing there, nothing read.
            assert!(!reader.drain_worker(true, || {}, |t, p| got.push((t, p))));
            let big: Vec<u8> = (0..3 * READ_CHUNK + 17).map(|i| (i % 251) as u8).collect();
            let writer = std::thread::spawn(move || {
                use std::io::Write;
                client.write_all(&frame(1, 2, 10, 1, big)).unwrap();
                client
                    .write_all(&frame(1, 2, 10, 2, b"after".to_vec()))
                    .unwrap();
                client
            });
            let mut tries = 0;
            while got.len() < 2 && tries < 5000 {
                if !reader.drain_worker(false, || {}, |t, p| got.push((t, p))) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                tries += 1;
            }
            let _client = writer.join().unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].0.session, 1);
            assert_eq!(got[0].1.len(), 3 * READ_CHUNK + 17);
            assert!(got[0]
                .1
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i % 251) as u8));
            assert_eq!((got[1].0.session, &got[1].1[..]), (2, &b"after"[..]));
        });
    }
}
