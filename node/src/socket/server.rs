//! The socket server: one thread running a single-threaded tokio runtime that
//! owns every socket. Each socket is one task holding the OS socket and all its
//! state (owner, read switch, write queues, close state); services talk to it
//! through the socket's command queue, in order, and it reports events to its
//! owner through the sink (in a node: PTYPE_SOCKET messages, source 0,
//! session 0).
//!
//! The calls below run on the caller's thread (a worker dispatching a service):
//! ids are handed out there, listening and UDP sockets are created there (so
//! their errors reach the caller at once, as in skynet), and commands are
//! queued to the socket's task.
//!
//! Writes to a TCP connection are the exception: while its task has nothing
//! queued to write, the caller writes to the socket itself (non-blocking), as
//! skynet does, instead of waking the socket thread for every write. One side
//! owns the write direction at a time, decided under the slot's [`Gate`]
//! lock: a caller writes only while the task does not own it, and queues
//! (under the same lock) otherwise; the task takes it with the first queued
//! write and gives it back only with its queues empty and nothing left in its
//! command queue. So writes never interleave, and each caller's writes keep
//! their order. What the socket takes only in part leaves its rest queued
//! (high priority, as when the task writes in part), and a write that fails
//! is handed to the task, which reports the error.
//!
//! Reads of a TCP connection that a caller wrote to itself are lent to idle
//! workers for a while (see [`super::read`]): the answer that the write asks
//! for is then read by a worker that is spinning anyway, not by this thread
//! after a wake-up. The connection's task registers the socket with the
//! thread's poller only for what it waits for: reading while it reads
//! (*armed*), writing while writes wait for room.

use super::addr;
use super::event::{self, kind, TRAILER};
use super::queue::Queue;
use super::read::{self, Got, ReadSide, Reader};
use crate::scheduler::IdlePoller;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Where events go: `(owner handle, encoded event)`.
pub type Sink = Arc<dyn Fn(u32, Vec<u8>) + Send + Sync>;

/// First write-buffer warning threshold (then 2x, 4x, ...).
pub const WARNING_SIZE: usize = 1024 * 1024;
/// Initial read size; it doubles when a read fills it and halves when less than
/// half is used.
pub const MIN_READ_BUFFER: usize = 64;
/// Upper bound of the adaptive read size.
pub const MAX_READ_BUFFER: usize = 1024 * 1024;
/// A write up to this size is made by the caller while the socket's task
/// has nothing queued, even when the calling service is busy (see `send`).
pub const DIRECT_SMALL: usize = 4096;
/// Largest UDP datagram.
pub const MAX_UDP_PACKAGE: usize = 65535;
/// At most this many live sockets (skynet's 2^16 slots).
pub const MAX_SOCKET: usize = 1 << 16;
/// A caller's direct write up to this size lends the connection's reads to
/// idle workers (an answer is likely to follow); bigger ones are bulk, which
/// the socket thread reads better, beside the workers.
pub const LEND_SMALL: usize = DIRECT_SMALL;
/// At most this many connections are lent at once (each costs every
/// spinning worker's look a `poll` entry).
pub const MAX_LENT: usize = 32;
/// A lent connection with no write for this long (centiseconds) is given
/// back to its task when a worker goes to sleep or room is needed.
pub const LEND_LEASE_CS: u64 = 10;
/// How many reads a worker makes of one connection in one look.
const WORKER_READS: usize = 4;
/// A disarmed task reads its socket after this long, doubling up to
/// [`DISARMED_TICK_MAX`] while workers keep looking (see [`super::read`]).
const DISARMED_TICK: Duration = Duration::from_millis(1);
const DISARMED_TICK_MAX: Duration = Duration::from_millis(8);

/// What the socket is, for `info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Tcp = 0,
    Listen = 1,
    Udp = 2,
    Bind = 3,
}

impl Kind {
    fn from_u8(v: u8) -> Kind {
        match v {
            1 => Kind::Listen,
            2 => Kind::Udp,
            3 => Kind::Bind,
            _ => Kind::Tcp,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Tcp => "TCP",
            Kind::Listen => "LISTEN",
            Kind::Udp => "UDP",
            Kind::Bind => "BIND",
        }
    }
}

/// A request to a socket's task.
#[derive(Debug)]
enum Cmd {
    Send {
        data: Vec<u8>,
        high: bool,
        /// UDP only; boxed to keep every command small.
        to: Option<Box<SocketAddr>>,
    },
    /// What a caller's direct write left: `data[pos..]`, first in line.
    Rest {
        data: Vec<u8>,
        pos: usize,
    },
    Close {
        requester: u32,
        shutdown: bool,
    },
    Start {
        requester: u32,
    },
    Pause,
    NoDelay,
    UdpConnect {
        to: SocketAddr,
    },
    /// From a worker: arm (the workers stop reading), and report the end of
    /// reading if a worker found it.
    Wake,
}

/// Who writes to a TCP connection (see the module doc).
struct Gate {
    /// The connection, once it is connected and until its task ends; the
    /// task holds the other reference.
    stream: Option<Arc<std::net::TcpStream>>,
    /// The task owns the write direction: it has writes queued or in its
    /// command queue, or writing has stopped for good.
    task_owns: bool,
}

/// The part of a socket visible from every thread.
struct Slot {
    id: i32,
    /// Commands to the socket's task, in order.
    cmds: Queue<Cmd>,
    gate: Mutex<Gate>,
    /// Set by close/shutdown: sends fail from then on.
    closing: AtomicBool,
    kind: AtomicU8,
    owner: AtomicU32,
    read: AtomicU64,
    write: AtomicU64,
    wbuffer: AtomicU64,
    /// The socket's task reads (accepts, for a listener): started and not
    /// paused. For `info`.
    reading: AtomicBool,
    rtime: AtomicU64,
    wtime: AtomicU64,
    name: Mutex<String>,
    /// TCP: who reads, the task or idle workers.
    rd: ReadSide,
}

/// One row of `info` (skynet's `socket_info`).
#[derive(Clone, Debug)]
pub struct SocketInfo {
    pub id: i32,
    pub owner: u32,
    pub kind: Kind,
    pub read: u64,
    pub write: u64,
    pub wbuffer: u64,
    /// Started and not paused.
    pub reading: bool,
    pub rtime: u64,
    pub wtime: u64,
    /// Peer address (TCP), local address (listen), or empty.
    pub name: String,
}

struct Inner {
    rt: tokio::runtime::Handle,
    next_id: AtomicI32,
    slots: Mutex<HashMap<i32, Arc<Slot>>>,
    /// The connections that idle workers read. A snapshot is swapped in on
    /// change, so workers hold no lock while they read.
    lent: RwLock<Arc<Vec<Arc<Slot>>>>,
    sink: Sink,
    epoch: Instant,
}

/// A socket server. Cheap to clone; all clones drive the same sockets.
#[derive(Clone)]
pub struct SocketServer {
    inner: Arc<Inner>,
}

impl SocketServer {
    /// Starts the socket thread; events go to `sink`.
    pub fn new(sink: Sink) -> SocketServer {
        let rt = crate::rt::io_thread("socket").expect("socket thread");
        SocketServer {
            inner: Arc::new(Inner {
                rt,
                next_id: AtomicI32::new(0),
                slots: Mutex::new(HashMap::new()),
                lent: RwLock::new(Arc::new(Vec::new())),
                sink,
                epoch: Instant::now(),
            }),
        }
    }

    /// What idle workers do for this server: read the lent connections
    /// (install it with `Kernel::set_socket_poller`).
    pub fn idle_poller(&self) -> Arc<dyn IdlePoller> {
        self.inner.clone()
    }

    /// Connects to `host:port` asynchronously; CONNECT or ERROR follows.
    /// Returns the new id, or -1 when no id is free.
    pub fn connect(&self, owner: u32, host: &str, port: u16) -> i32 {
        let Some(slot) = self.inner.reserve(Kind::Tcp, owner) else {
            return -1;
        };
        let id = slot.id;
        let inner = self.inner.clone();
        let host = host.to_string();
        self.inner
            .rt
            .spawn(connect_task(inner, slot, owner, host, port));
        id
    }

    /// Opens a listening socket now (errors are returned); its CONNECT event
    /// (ud = port, data = address) follows. It accepts only after `start`.
    pub fn listen(&self, owner: u32, host: &str, port: u16, backlog: i32) -> io::Result<i32> {
        let l = addr::listen_socket(host, port, backlog)?;
        let Some(slot) = self.inner.reserve(Kind::Listen, owner) else {
            return Err(io::Error::other("reach skynet socket number limit"));
        };
        let id = slot.id;
        if let Ok(a) = l.local_addr() {
            *slot.name.lock() = a.to_string();
        }
        self.inner
            .rt
            .spawn(listen_task(self.inner.clone(), slot, owner, l));
        Ok(id)
    }

    /// Binds an OS file descriptor (stdin is 0); it is read at once. The fd is
    /// never closed by the server.
    pub fn bind(&self, owner: u32, fd: i32) -> i32 {
        let Some(slot) = self.inner.reserve(Kind::Bind, owner) else {
            return -1;
        };
        let id = slot.id;
        self.inner
            .rt
            .spawn(bind_task(self.inner.clone(), slot, owner, fd));
        id
    }

    /// Makes `owner` the owner of `id` and turns reading on. An accepted or
    /// listening socket reports CONNECT "start", a connected one "transfer";
    /// an unknown id reports ERROR "invalid socket" to `owner`.
    pub fn start(&self, owner: u32, id: i32) {
        if let Err(Cmd::Start { requester }) =
            self.inner.command(id, Cmd::Start { requester: owner })
        {
            self.inner
                .emit_text(requester, kind::ERROR, id, 0, "invalid socket");
        }
    }

    /// Stops reading (resume with `start`).
    pub fn pause(&self, id: i32) {
        let _ = self.inner.command(id, Cmd::Pause);
    }

    pub fn nodelay(&self, id: i32) {
        let _ = self.inner.command(id, Cmd::NoDelay);
    }

    /// Closes `id`: pending writes are still sent, then the socket closes. A
    /// CLOSE event goes to `owner` unless the peer closed first.
    pub fn close(&self, owner: u32, id: i32) {
        self.close_request(owner, id, false)
    }

    /// Closes `id` at once, dropping pending writes.
    pub fn shutdown(&self, owner: u32, id: i32) {
        self.close_request(owner, id, true)
    }

    fn close_request(&self, owner: u32, id: i32, shutdown: bool) {
        if let Some(slot) = self.inner.slot(id) {
            slot.closing.store(true, Ordering::Release);
            let _ = slot.cmds.send(Cmd::Close {
                requester: owner,
                shutdown,
            });
        }
    }

    /// Sends `data` (high or low priority): written now when the socket's
    /// task has nothing queued, else queued behind what it has. False if the
    /// socket is unknown or closing.
    pub fn send(&self, id: i32, data: Vec<u8>, high: bool) -> bool {
        let Some(slot) = self.inner.slot(id) else {
            return false;
        };
        if slot.closing.load(Ordering::Acquire) {
            return false;
        }
        // A big write from a service with more messages waiting is likely
        // one of a bulk transfer: it goes to the socket thread, which copies
        // it out while the worker runs on. Small writes go at once whatever
        // follows (the hand-off would cost more than the copy).
        let burst = data.len() > DIRECT_SMALL && crate::scheduler::more_queued();
        let mut gate = slot.gate.lock();
        let direct = match &gate.stream {
            Some(stream) if !gate.task_owns && !burst => stream,
            _ => {
                gate.task_owns = true;
                let cmd = Cmd::Send {
                    data,
                    high,
                    to: None,
                };
                return slot.cmds.send(cmd).is_ok();
            }
        };
        if data.is_empty() {
            return true;
        }
        let mut pos = 0;
        while pos < data.len() {
            match (&**direct).write(&data[pos..]) {
                Ok(0) => break,
                Ok(n) => pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // no room, or an error the task will meet again and report
                Err(_) => break,
            }
        }
        if pos > 0 {
            self.inner.wrote(&slot, pos);
            // Under the gate's lock, with the stream still there: the task
            // has not ended, and takes the connection back when it does.
            if data.len() <= LEND_SMALL && !slot.rd.lent.load(Ordering::Relaxed) {
                self.inner.lend(&slot);
            }
        }
        if pos == data.len() {
            return true;
        }
        gate.task_owns = true;
        let cmd = if pos == 0 {
            Cmd::Send {
                data,
                high,
                to: None,
            }
        } else {
            Cmd::Rest { data, pos }
        };
        slot.cmds.send(cmd).is_ok()
    }

    /// A UDP socket, bound to `host:port` when a host is given.
    pub fn udp(&self, owner: u32, host: Option<&str>, port: u16) -> io::Result<i32> {
        let sock = match host {
            Some(h) => addr::udp_socket(h, port)?,
            None => {
                let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
                s.set_nonblocking(true)?;
                s
            }
        };
        self.add_udp(owner, sock, None)
    }

    /// A UDP socket bound to `host:port` (skynet's `udp_listen`).
    pub fn udp_listen(&self, owner: u32, host: &str, port: u16) -> io::Result<i32> {
        let sock = addr::udp_socket(host, port)?;
        self.add_udp(owner, sock, None)
    }

    /// A UDP socket connected to `host:port`; that is its default destination.
    pub fn udp_dial(&self, owner: u32, host: &str, port: u16) -> io::Result<i32> {
        let to = resolve_one(host, port)?;
        let local = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let sock = std::net::UdpSocket::bind(local)?;
        sock.connect(to)?;
        sock.set_nonblocking(true)?;
        self.add_udp(owner, sock, Some(to))
    }

    fn add_udp(
        &self,
        owner: u32,
        sock: std::net::UdpSocket,
        to: Option<SocketAddr>,
    ) -> io::Result<i32> {
        let Some(slot) = self.inner.reserve(Kind::Udp, owner) else {
            return Err(io::Error::other("reach skynet socket number limit"));
        };
        let id = slot.id;
        if let Ok(a) = sock.local_addr() {
            *slot.name.lock() = a.to_string();
        }
        self.inner
            .rt
            .spawn(udp_task(self.inner.clone(), slot, owner, sock, to));
        Ok(id)
    }

    /// Sets the default destination of a UDP socket (resolved here).
    pub fn udp_connect(&self, id: i32, host: &str, port: u16) -> io::Result<()> {
        let to = resolve_one(host, port)?;
        let _ = self.inner.command(id, Cmd::UdpConnect { to });
        Ok(())
    }

    /// Sends one datagram to the address in `blob`. False if the blob is not an
    /// address or the socket is unknown or closing.
    pub fn udp_send(&self, id: i32, blob: &[u8], data: Vec<u8>) -> bool {
        let Some(to) = addr::blob_to_addr(blob) else {
            return false;
        };
        match self.inner.slot(id) {
            Some(slot) if !slot.closing.load(Ordering::Acquire) => slot
                .cmds
                .send(Cmd::Send {
                    data,
                    high: true,
                    to: Some(Box::new(to)),
                })
                .is_ok(),
            _ => false,
        }
    }

    /// Closes every listening socket (a node that is shutting down accepts
    /// no more connections); their owners get the usual CLOSE. Returns how
    /// many there were.
    pub fn close_listeners(&self) -> usize {
        let listeners: Vec<(u32, i32)> = self
            .info()
            .into_iter()
            .filter(|i| i.kind == Kind::Listen)
            .map(|i| (i.owner, i.id))
            .collect();
        for &(owner, id) in &listeners {
            self.close(owner, id);
        }
        listeners.len()
    }

    /// Every live socket, by id.
    pub fn info(&self) -> Vec<SocketInfo> {
        let slots: Vec<Arc<Slot>> = self.inner.slots.lock().values().cloned().collect();
        let mut v: Vec<SocketInfo> = slots
            .iter()
            .map(|s| SocketInfo {
                id: s.id,
                owner: s.owner.load(Ordering::Relaxed),
                kind: Kind::from_u8(s.kind.load(Ordering::Relaxed)),
                read: s.read.load(Ordering::Relaxed),
                write: s.write.load(Ordering::Relaxed),
                wbuffer: s.wbuffer.load(Ordering::Relaxed),
                reading: s.reading.load(Ordering::Relaxed),
                rtime: s.rtime.load(Ordering::Relaxed),
                wtime: s.wtime.load(Ordering::Relaxed),
                name: s.name.lock().clone(),
            })
            .collect();
        v.sort_by_key(|i| i.id);
        v
    }
}

fn resolve_one(host: &str, port: u16) -> io::Result<SocketAddr> {
    let v = addr::resolve(host, port).map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))?;
    v.first()
        .copied()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
}

impl Inner {
    /// Allocates an id (positive, increasing, wrapping, skipping live ids) and
    /// registers its slot.
    fn reserve(&self, kind: Kind, owner: u32) -> Option<Arc<Slot>> {
        let mut slots = self.slots.lock();
        if slots.len() >= MAX_SOCKET {
            return None;
        }
        let id = loop {
            let next = |v: i32| if v == i32::MAX { 1 } else { v + 1 };
            let id = next(
                self.next_id
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(next(v)))
                    .unwrap(),
            );
            if !slots.contains_key(&id) {
                break id;
            }
        };
        let slot = Arc::new(Slot {
            id,
            cmds: Queue::new(),
            gate: Mutex::new(Gate {
                stream: None,
                task_owns: false,
            }),
            closing: AtomicBool::new(false),
            kind: AtomicU8::new(kind as u8),
            owner: AtomicU32::new(owner),
            read: AtomicU64::new(0),
            write: AtomicU64::new(0),
            wbuffer: AtomicU64::new(0),
            reading: AtomicBool::new(false),
            rtime: AtomicU64::new(0),
            wtime: AtomicU64::new(0),
            name: Mutex::new(String::new()),
            rd: ReadSide::new(MIN_READ_BUFFER),
        });
        slots.insert(id, slot.clone());
        Some(slot)
    }

    fn slot(&self, id: i32) -> Option<Arc<Slot>> {
        self.slots.lock().get(&id).cloned()
    }

    /// Queues a command; gives it back if the socket is gone.
    fn command(&self, id: i32, cmd: Cmd) -> Result<(), Cmd> {
        match self.slot(id) {
            Some(slot) => slot.cmds.send(cmd),
            None => Err(cmd),
        }
    }

    fn emit(&self, owner: u32, payload: Vec<u8>) {
        (self.sink)(owner, payload)
    }

    fn emit_text(&self, owner: u32, k: u8, id: i32, ud: i32, text: &str) {
        self.emit(owner, event::encode_text(k, id, ud, text));
    }

    fn now_cs(&self) -> u64 {
        (self.epoch.elapsed().as_millis() / 10) as u64
    }

    /// `n` bytes of `slot` went out.
    fn wrote(&self, slot: &Slot, n: usize) {
        slot.write.fetch_add(n as u64, Ordering::Relaxed);
        slot.wtime.store(self.now_cs(), Ordering::Relaxed);
    }

    /// `bytes` read from `slot` go to `owner` (under the read lock).
    fn deliver(&self, slot: &Slot, owner: u32, bytes: Vec<u8>) {
        let n = bytes.len();
        slot.read.fetch_add(n as u64, Ordering::Relaxed);
        slot.rtime.store(self.now_cs(), Ordering::Relaxed);
        self.emit(
            owner,
            event::encode(kind::DATA, slot.id, n as i32, bytes, &[]),
        );
    }

    /// Lends `slot`'s reads to idle workers, if there is room (made by
    /// giving back connections whose lease ran out).
    fn lend(&self, slot: &Arc<Slot>) {
        let mut g = self.lent.write();
        if slot.rd.lent.load(Ordering::Relaxed) {
            return;
        }
        let mut v: Vec<Arc<Slot>> = (**g).clone();
        if v.len() >= MAX_LENT {
            let now = self.now_cs();
            v.retain(|s| !give_back_if_stale(s, now));
        }
        if v.len() < MAX_LENT {
            slot.rd.lent.store(true, Ordering::Relaxed);
            v.push(slot.clone());
        }
        *g = Arc::new(v);
    }

    /// Takes `slot` back from the workers (its task is ending).
    fn unlend(&self, slot: &Slot) {
        let mut g = self.lent.write();
        if !slot.rd.lent.swap(false, Ordering::Relaxed) {
            return;
        }
        let v: Vec<Arc<Slot>> = g
            .iter()
            .filter(|s| !std::ptr::eq(&***s, slot))
            .cloned()
            .collect();
        *g = Arc::new(v);
    }

    /// A worker's read of a lent connection that `poll` found readable:
    /// what is there, if nobody else is reading. True if data was handed on.
    fn drain_worker(&self, slot: &Slot) -> bool {
        let rd = &slot.rd;
        let Some(mut r) = rd.lock.try_lock() else {
            return false;
        };
        rd.looked();
        if !r.open || r.end.is_some() || r.fd < 0 || slot.closing.load(Ordering::Acquire) {
            return false;
        }
        let mut delivered = false;
        for _ in 0..WORKER_READS {
            match read::read_once(&mut r, TRAILER, MAX_READ_BUFFER) {
                Got::Data { bytes, full } => {
                    self.deliver(slot, r.owner, bytes);
                    delivered = true;
                    // A read that left room emptied the socket: asking again
                    // would only hear "would block".
                    if !full {
                        break;
                    }
                }
                Got::Empty => break,
                Got::Eof => {
                    r.end = Some(0);
                    break;
                }
                Got::Failed(e) => {
                    r.end = Some(e.raw_os_error().unwrap_or(libc::EIO));
                    break;
                }
            }
        }
        if r.end.is_some() {
            // The task reports it; no worker reads from now on.
            rd.publish(&r);
            drop(r);
            let _ = slot.cmds.send(Cmd::Wake);
        }
        delivered
    }

    /// The socket is gone: unregister it, then answer what was still queued
    /// (a `start` learns the socket is invalid; the rest is dropped).
    fn release(&self, slot: &Slot) {
        {
            let mut slots = self.slots.lock();
            if slots
                .get(&slot.id)
                .is_some_and(|s| std::ptr::eq(&**s, slot))
            {
                slots.remove(&slot.id);
            }
        }
        for cmd in slot.cmds.close() {
            if let Cmd::Start { requester } = cmd {
                self.emit_text(requester, kind::ERROR, slot.id, 0, "invalid socket");
            }
        }
    }
}

/// Gives a lent connection back to its task if no write was made to it for
/// [`LEND_LEASE_CS`]; true if it did (the caller drops it from the list).
fn give_back_if_stale(slot: &Slot, now_cs: u64) -> bool {
    let stale = now_cs.saturating_sub(slot.wtime.load(Ordering::Relaxed)) > LEND_LEASE_CS;
    if stale {
        slot.rd.lent.store(false, Ordering::Relaxed);
        if slot.rd.ask_arm() {
            let _ = slot.cmds.send(Cmd::Wake);
        }
    }
    stale
}

thread_local! {
    /// A worker's `poll` array for its looks at the lent connections (kept to
    /// avoid an allocation per look).
    static POLL_SET: std::cell::RefCell<Vec<libc::pollfd>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Idle workers read the lent connections (see [`super::read`]): one `poll`
/// over all of them per look, then a read of those with something to read.
impl IdlePoller for Inner {
    fn poll(&self) -> bool {
        let lent = self.lent.read().clone();
        if lent.is_empty() {
            return false;
        }
        POLL_SET.with(|set| {
            let mut fds = set.borrow_mut();
            fds.clear();
            fds.extend(lent.iter().map(|s| libc::pollfd {
                fd: s.rd.raw_fd(),
                events: libc::POLLIN | libc::POLLRDHUP,
                revents: 0,
            }));
            let ready = read::poll_now(&mut fds);
            let mut any = false;
            for (s, p) in lent.iter().zip(fds.iter()) {
                if ready > 0 && p.revents != 0 {
                    any |= self.drain_worker(s);
                } else {
                    s.rd.looked();
                }
            }
            any
        })
    }

    /// A worker goes to sleep: every lent connection's task must read from
    /// now on; those whose lease ran out are given back.
    fn sleeping(&self) {
        let lent = self.lent.read().clone();
        if lent.is_empty() {
            return;
        }
        let now = self.now_cs();
        let mut stale = false;
        for s in lent.iter() {
            if give_back_if_stale(s, now) {
                stale = true;
            } else if s.rd.ask_arm() {
                let _ = s.cmds.send(Cmd::Wake);
            }
        }
        if stale {
            let mut g = self.lent.write();
            let v: Vec<Arc<Slot>> = g
                .iter()
                .filter(|s| s.rd.lent.load(Ordering::Relaxed))
                .cloned()
                .collect();
            *g = Arc::new(v);
        }
    }
}

/// A socket's descriptor for a registration with the socket thread's
/// poller; the connection's task owns the socket and drops the
/// registration first.
struct SockFd(RawFd);

impl AsRawFd for SockFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Carry on, or the socket is finished (force-closed).
#[derive(PartialEq, Eq)]
enum Flow {
    Go,
    Done,
}

struct WBuf {
    data: Vec<u8>,
    pos: usize,
}

/// A TCP connection (connected or accepted).
struct Conn {
    srv: Arc<Inner>,
    slot: Arc<Slot>,
    /// The socket's registration with the thread's poller: for reading and
    /// writing while armed; while disarmed for writing only, made when a
    /// write first waits for room. (Declared before `sock`, so it is
    /// dropped first.)
    reg: Option<AsyncFd<SockFd>>,
    /// Shared with the slot's [`Gate`] for callers' direct writes.
    sock: Arc<std::net::TcpStream>,
    /// `reg` includes reading.
    reg_reads: bool,
    /// The task reads when the socket is readable (else the workers do,
    /// and the task only on `tick`).
    armed: bool,
    /// The last read filled its buffer: read again without waiting.
    read_more: bool,
    /// While disarmed: the task's next read of its own, and its period.
    tick: Option<Pin<Box<tokio::time::Sleep>>>,
    tick_len: Duration,
    /// The workers' look count when the task last checked.
    looks: u32,
    owner: u32,
    /// This task owns the write direction (mirrors `Gate::task_owns`, which
    /// only the gate's lock holder changes).
    owns_write: bool,
    /// Accepted but not started yet.
    pending_start: bool,
    reading: bool,
    /// The peer closed (or we stopped reading on close): no more reads.
    read_closed: bool,
    /// A write failed: no more writes.
    write_closed: bool,
    /// A read failed: waiting for the owner to shut it down.
    broken: bool,
    /// close() with pending writes: flush, then close silently.
    closing: bool,
    /// Queued writes: the high-priority ones first (`high` of them), then
    /// the low-priority ones, each part in the order queued. One list
    /// instead of two keeps the task small.
    wq: VecDeque<WBuf>,
    high: u32,
    wb_size: usize,
    warn_size: usize,
}

enum Wake {
    Cmd(Option<Cmd>),
    /// `ready`: the poller said readable (else the last read was full).
    Read {
        ready: bool,
    },
    ReadFailed(io::Error),
    Write(io::Result<()>),
    Tick,
}

impl Conn {
    fn new(
        srv: Arc<Inner>,
        slot: Arc<Slot>,
        sock: std::net::TcpStream,
        owner: u32,
        accepted: bool,
    ) -> Conn {
        let sock = Arc::new(sock);
        {
            // Writes queued before the connection existed go first.
            let mut gate = slot.gate.lock();
            gate.stream = Some(sock.clone());
            gate.task_owns = true;
        }
        slot.reading.store(!accepted, Ordering::Relaxed);
        {
            let mut r = slot.rd.lock.lock();
            r.fd = sock.as_raw_fd();
            r.owner = owner;
            r.open = !accepted;
            slot.rd.publish(&r);
        }
        Conn {
            srv,
            slot,
            sock,
            reg: None,
            reg_reads: false,
            armed: true,
            read_more: false,
            tick: None,
            tick_len: DISARMED_TICK,
            looks: 0,
            owner,
            owns_write: true,
            pending_start: accepted,
            reading: !accepted,
            read_closed: false,
            write_closed: false,
            broken: false,
            closing: false,
            wq: VecDeque::new(),
            high: 0,
            wb_size: 0,
            warn_size: 0,
        }
    }

    fn id(&self) -> i32 {
        self.slot.id
    }

    fn queued(&self) -> bool {
        !self.wq.is_empty()
    }

    fn want_read(&self) -> bool {
        self.reading && !self.pending_start && !self.read_closed && !self.broken
    }

    /// Hands the write direction back to callers when nothing is queued here
    /// or on the way (checked under the gate's lock, which callers hold while
    /// queueing).
    fn release_write(&mut self) {
        if !self.owns_write || self.queued() || !self.slot.cmds.is_empty() {
            return;
        }
        let mut gate = self.slot.gate.lock();
        if self.slot.cmds.is_empty() {
            gate.task_owns = false;
            self.owns_write = false;
        }
    }

    /// Writing has stopped for good (closing, failed, or the task ends):
    /// callers queue from now on, and the socket is this task's alone.
    fn stop_direct(&mut self) {
        stop_direct(&self.slot);
        self.owns_write = true;
    }

    /// Registers the socket with the thread's poller, for reading and
    /// writing or for writing only.
    fn register(&mut self, reads: bool) -> io::Result<()> {
        // one registration per descriptor: the old one goes first
        self.reg = None;
        let interest = if reads {
            Interest::READABLE.add(Interest::WRITABLE)
        } else {
            Interest::WRITABLE
        };
        // SAFETY: the socket outlives the registration: the task drops
        // `reg` before the socket (see the end of `run`; `Conn`'s fields
        // drop `reg` first too).
        let reg =
            unsafe { AsyncFd::register_with_interest(SockFd(self.sock.as_raw_fd()), interest) }
                .map_err(|e| e.into_parts().1)?;
        self.reg = Some(reg);
        self.reg_reads = reads;
        Ok(())
    }

    /// The task reads from now on (the socket may already hold bytes: a new
    /// registration reports them).
    fn arm(&mut self) -> io::Result<()> {
        self.slot.rd.arm();
        self.armed = true;
        self.tick = None;
        if !(self.reg.is_some() && self.reg_reads) {
            self.register(true)?;
        }
        Ok(())
    }

    /// Leaves the reading to the workers, unless one fell asleep meanwhile.
    fn disarm(&mut self) {
        if !self.slot.rd.disarm() {
            return;
        }
        self.armed = false;
        self.reg = None;
        self.tick_len = DISARMED_TICK;
        self.tick = Some(Box::pin(tokio::time::sleep(self.tick_len)));
    }

    // Not an async fn: that would keep a second copy of `self` in the
    // future (its argument and its local), which every idle task carries.
    #[allow(clippy::manual_async_fn)]
    fn run(mut self) -> impl std::future::Future<Output = ()> {
        async move {
            if let Err(e) = self.register(true) {
                self.read_failed(e);
            }
            loop {
                self.release_write();
                let want_read = self.want_read();
                let want_write = self.queued() && !self.write_closed && !self.broken;
                if want_write && self.reg.is_none() {
                    if let Err(e) = self.register(self.armed) {
                        if self.write_failed(e) == Flow::Done {
                            break;
                        }
                        continue;
                    }
                }
                // Polled by hand rather than with select! over futures: the
                // queue and the registration keep this task's wakers
                // themselves, so an idle task holds no wait futures.
                // Commands go first, then writing, then reading, as in a
                // biased select. Readiness is cleared before the read or
                // write it announces (edge-triggered: an event after that
                // sets it again).
                let wake = std::future::poll_fn(|cx| {
                    if let Poll::Ready(c) = self.slot.cmds.poll_recv(cx) {
                        return Poll::Ready(Wake::Cmd(c));
                    }
                    if want_write {
                        if let Some(reg) = &self.reg {
                            if let Poll::Ready(r) = reg.poll_write_ready(cx) {
                                return Poll::Ready(Wake::Write(r.map(|mut g| g.clear_ready())));
                            }
                        }
                    }
                    if want_read {
                        if self.read_more {
                            // the socket's budget, as a readiness wait uses it
                            if let Poll::Ready(coop) = tokio::task::coop::poll_proceed(cx) {
                                coop.made_progress();
                                return Poll::Ready(Wake::Read { ready: false });
                            }
                        } else if self.armed {
                            if let Some(reg) = &self.reg {
                                if let Poll::Ready(r) = reg.poll_read_ready(cx) {
                                    return Poll::Ready(match r {
                                        Ok(mut g) => {
                                            g.clear_ready();
                                            Wake::Read { ready: true }
                                        }
                                        Err(e) => Wake::ReadFailed(e),
                                    });
                                }
                            }
                        }
                    }
                    if let Some(t) = self.tick.as_mut() {
                        if t.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Wake::Tick);
                        }
                    }
                    Poll::Pending
                })
                .await;
                let flow = match wake {
                    Wake::Cmd(Some(c)) => self.command(c),
                    Wake::Cmd(None) => Flow::Done,
                    Wake::Read { ready } => self.on_readable(ready),
                    Wake::ReadFailed(e) => self.read_failed(e),
                    Wake::Write(Ok(())) => self.flush(),
                    Wake::Write(Err(e)) => self.write_failed(e),
                    Wake::Tick => self.on_tick(),
                };
                if flow == Flow::Done {
                    break;
                }
            }
            // Callers stop writing first, so that none lends it again.
            self.stop_direct();
            self.srv.unlend(&self.slot);
            {
                let mut r = self.slot.rd.lock.lock();
                r.fd = -1;
                r.open = false;
                self.slot.rd.publish(&r);
            }
            // the registration goes before the socket closes
            self.reg = None;
            let srv = self.srv.clone();
            let slot = self.slot.clone();
            drop(self);
            srv.release(&slot);
        }
    }

    fn emit(&self, k: u8, ud: i32, text: &str) {
        self.srv.emit_text(self.owner, k, self.id(), ud, text);
    }

    /// Tells the workers (under the read lock `r`) who gets data and whether
    /// they may read.
    fn publish(&self, r: &mut Reader) {
        r.owner = self.owner;
        r.open = self.want_read();
        self.slot.rd.publish(r);
    }

    fn command(&mut self, c: Cmd) -> Flow {
        match c {
            Cmd::Send { data, high, .. } => {
                self.owns_write = true;
                self.send(data, high)
            }
            Cmd::Rest { data, pos } => {
                self.owns_write = true;
                if !(self.closing || self.write_closed || self.broken) {
                    self.enqueue(WBuf { data, pos }, true);
                }
                Flow::Go
            }
            Cmd::Close {
                requester,
                shutdown,
            } => {
                let nothing_to_send = !self.queued() || self.write_closed || self.broken;
                if shutdown || nothing_to_send {
                    let mut r = self.slot.rd.lock.lock();
                    r.open = false;
                    self.slot.rd.publish(&r);
                    // what a worker found is not reported after this
                    r.end = None;
                    if !self.read_closed {
                        self.srv.emit_text(requester, kind::CLOSE, self.id(), 0, "");
                    }
                    return Flow::Done;
                }
                self.closing = true;
                self.stop_direct();
                if !self.read_closed {
                    self.read_closed = true;
                    let mut r = self.slot.rd.lock.lock();
                    r.end = None;
                    self.publish(&mut r);
                    let _ = socket2::SockRef::from(&*self.sock).shutdown(Shutdown::Read);
                    self.srv.emit_text(requester, kind::CLOSE, self.id(), 0, "");
                }
                Flow::Go
            }
            Cmd::Start { requester } => {
                if self.read_closed && !self.pending_start {
                    self.srv
                        .emit_text(requester, kind::ERROR, self.id(), 0, "socket closed");
                    return Flow::Go;
                }
                self.reading = true;
                self.slot.reading.store(true, Ordering::Relaxed);
                self.owner = requester;
                self.slot.owner.store(requester, Ordering::Relaxed);
                let started = std::mem::replace(&mut self.pending_start, false);
                let mut r = self.slot.rd.lock.lock();
                self.publish(&mut r);
                // under the lock: no data for the new owner before this
                if started {
                    self.emit(kind::CONNECT, 0, "start");
                } else {
                    self.emit(kind::CONNECT, 0, "transfer");
                }
                Flow::Go
            }
            Cmd::Pause => {
                self.reading = false;
                self.slot.reading.store(false, Ordering::Relaxed);
                let mut r = self.slot.rd.lock.lock();
                self.publish(&mut r);
                Flow::Go
            }
            Cmd::NoDelay => {
                let _ = self.sock.set_nodelay(true);
                Flow::Go
            }
            Cmd::Wake => {
                if !self.armed {
                    if let Err(e) = self.arm() {
                        return self.read_failed(e);
                    }
                }
                // the end a worker found, if it did
                if self.slot.rd.lock.lock().end.is_some() {
                    return self.read();
                }
                Flow::Go
            }
            Cmd::UdpConnect { .. } => Flow::Go,
        }
    }

    fn send(&mut self, data: Vec<u8>, high: bool) -> Flow {
        if data.is_empty() || self.closing || self.write_closed || self.broken {
            return Flow::Go;
        }
        let mut pos = 0;
        if !self.queued() {
            loop {
                match (&*self.sock).write(&data[pos..]) {
                    Ok(n) => {
                        pos += n;
                        self.wrote(n);
                        if pos == data.len() {
                            return Flow::Go;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return self.write_failed(e),
                }
            }
        }
        // A partly written block goes to the high queue whatever its priority.
        self.enqueue(WBuf { data, pos }, high || pos > 0);
        Flow::Go
    }

    /// Queues what is left of `b`; warns when the queue grows past a threshold.
    fn enqueue(&mut self, b: WBuf, high: bool) {
        self.wb_size += b.data.len() - b.pos;
        if high {
            // behind the high ones, which are few: the insert moves little
            self.wq.insert(self.high as usize, b);
            self.high += 1;
        } else {
            self.wq.push_back(b);
        }
        self.slot
            .wbuffer
            .store(self.wb_size as u64, Ordering::Relaxed);
        if self.wb_size >= WARNING_SIZE && self.wb_size >= self.warn_size {
            // the next warning at twice the pending size that raised this one's threshold
            self.warn_size = if self.warn_size == 0 {
                WARNING_SIZE * 2
            } else {
                self.warn_size * 2
            };
            let kb = self.wb_size.div_ceil(1024);
            self.emit(kind::WARNING, kb.min(i32::MAX as usize) as i32, "");
        }
    }

    fn wrote(&self, n: usize) {
        self.srv.wrote(&self.slot, n);
    }

    /// Writes queued data: the high part first; a partly written low block is
    /// raised to the high part so nothing interleaves with it.
    fn flush(&mut self) -> Flow {
        while let Some(b) = self.wq.front_mut() {
            match (&*self.sock).write(&b.data[b.pos..]) {
                Ok(n) => {
                    b.pos += n;
                    let done = b.pos == b.data.len();
                    self.wb_size -= n;
                    self.slot
                        .wbuffer
                        .store(self.wb_size as u64, Ordering::Relaxed);
                    self.srv.wrote(&self.slot, n);
                    if done {
                        self.wq.pop_front();
                        self.high = self.high.saturating_sub(1);
                    } else if self.high == 0 {
                        // the front low block becomes the first high one
                        self.high = 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Go,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.write_failed(e),
            }
        }
        if self.closing {
            return Flow::Done;
        }
        if self.warn_size > 0 {
            self.warn_size = 0;
            self.emit(kind::WARNING, 0, "");
        }
        Flow::Go
    }

    fn write_failed(&mut self, e: io::Error) -> Flow {
        if self.closing || self.read_closed {
            return Flow::Done;
        }
        self.write_closed = true;
        self.stop_direct();
        self.wq.clear();
        self.high = 0;
        self.wb_size = 0;
        self.slot.wbuffer.store(0, Ordering::Relaxed);
        let _ = socket2::SockRef::from(&*self.sock).shutdown(Shutdown::Write);
        self.emit(kind::ERROR, 0, &addr::os_error_text(&e));
        Flow::Go
    }

    fn read_failed(&mut self, e: io::Error) -> Flow {
        let slot = self.slot.clone();
        let mut r = slot.rd.lock.lock();
        r.end = None;
        self.broken_by(&mut r, e);
        Flow::Go
    }

    /// Reading failed with `e` (reported under the read lock `r`).
    fn broken_by(&mut self, r: &mut Reader, e: io::Error) {
        self.broken = true;
        self.publish(r);
        stop_direct(&self.slot);
        self.owns_write = true;
        self.emit(kind::ERROR, 0, &addr::os_error_text(&e));
    }

    /// A readable wake-up (`ready`) or a read after a full one.
    fn on_readable(&mut self, ready: bool) -> Flow {
        let flow = self.read();
        if ready && self.armed && flow == Flow::Go && self.slot.rd.lent.load(Ordering::Relaxed) {
            // Workers look at the socket: leave it to them and stop being
            // woken (even when this wake-up won the race for the bytes).
            let now = self.slot.rd.looks();
            if now != self.looks {
                self.disarm();
            }
            self.looks = now;
        }
        flow
    }

    /// Disarmed: the task's own look at the socket, then arms if no worker
    /// looked at it since the last tick (or it is not lent any more).
    fn on_tick(&mut self) -> Flow {
        let flow = self.read();
        if flow == Flow::Done || self.armed {
            return flow;
        }
        let now = self.slot.rd.looks();
        if now == self.looks || !self.slot.rd.lent.load(Ordering::Relaxed) {
            if let Err(e) = self.arm() {
                return self.read_failed(e);
            }
        } else {
            // workers still look: check less often
            self.tick_len = (self.tick_len * 2).min(DISARMED_TICK_MAX);
            if let Some(t) = self.tick.as_mut() {
                t.as_mut()
                    .reset(tokio::time::Instant::now() + self.tick_len);
            }
        }
        self.looks = now;
        flow
    }

    /// One read under the read lock (or the report of the end a worker
    /// found), handed to the owner before the lock is released.
    fn read(&mut self) -> Flow {
        self.read_more = false;
        let slot = self.slot.clone();
        let mut r = slot.rd.lock.lock();
        let got = match r.end.take() {
            Some(0) => Got::Eof,
            Some(errno) => Got::Failed(io::Error::from_raw_os_error(errno)),
            None if self.want_read() => read::read_once(&mut r, TRAILER, MAX_READ_BUFFER),
            None => return Flow::Go,
        };
        match got {
            Got::Data { bytes, full } => {
                self.read_more = full;
                self.srv.deliver(&slot, r.owner, bytes);
                Flow::Go
            }
            Got::Empty => Flow::Go,
            Got::Eof => {
                if self.write_closed {
                    r.open = false;
                    slot.rd.publish(&r);
                    self.emit(kind::CLOSE, 0, "");
                    return Flow::Done;
                }
                self.read_closed = true;
                self.publish(&mut r);
                let _ = socket2::SockRef::from(&*self.sock).shutdown(Shutdown::Read);
                self.emit(kind::CLOSE, 0, "");
                Flow::Go
            }
            Got::Failed(e) => {
                self.broken_by(&mut r, e);
                Flow::Go
            }
        }
    }
}

/// Callers stop writing to `slot` themselves (see [`Conn::stop_direct`]).
fn stop_direct(slot: &Slot) {
    let mut gate = slot.gate.lock();
    gate.stream = None;
    gate.task_owns = true;
}

async fn connect_task(srv: Arc<Inner>, slot: Arc<Slot>, owner: u32, host: String, port: u16) {
    let id = slot.id;
    let lookup = tokio::task::spawn_blocking(move || addr::resolve(&host, port)).await;
    let addrs = match lookup {
        Ok(Ok(a)) => a,
        Ok(Err(text)) => {
            srv.emit_text(owner, kind::ERROR, id, 0, &text);
            srv.release(&slot);
            return;
        }
        Err(e) => {
            srv.emit_text(owner, kind::ERROR, id, 0, &e.to_string());
            srv.release(&slot);
            return;
        }
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "Name or service not known");
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let Some(stream) = stream else {
        srv.emit_text(owner, kind::ERROR, id, 0, &addr::os_error_text(&last));
        srv.release(&slot);
        return;
    };
    addr::set_keepalive(&stream);
    let peer = stream
        .peer_addr()
        .map(|a| addr::ip_text(&a))
        .unwrap_or_default();
    *slot.name.lock() = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // The connection's task registers the socket only for what it waits for.
    let stream = match stream.into_std() {
        Ok(s) => s,
        Err(e) => {
            srv.emit_text(owner, kind::ERROR, id, 0, &addr::os_error_text(&e));
            srv.release(&slot);
            return;
        }
    };
    srv.emit_text(owner, kind::CONNECT, id, 0, &peer);
    Conn::new(srv, slot, stream, owner, false).run().await
}

async fn listen_task(srv: Arc<Inner>, slot: Arc<Slot>, mut owner: u32, l: std::net::TcpListener) {
    let id = slot.id;
    let listener = match TcpListener::from_std(l) {
        Ok(l) => l,
        Err(e) => {
            srv.emit_text(owner, kind::ERROR, id, 0, &addr::os_error_text(&e));
            srv.release(&slot);
            return;
        }
    };
    match listener.local_addr() {
        Ok(a) => {
            srv.emit_text(
                owner,
                kind::CONNECT,
                id,
                a.port() as i32,
                &addr::ip_text(&a),
            );
        }
        Err(e) => {
            srv.emit_text(owner, kind::ERROR, id, 0, &addr::os_error_text(&e));
            srv.release(&slot);
            return;
        }
    }
    let mut started = false;
    let mut accepting = false;
    loop {
        enum W {
            Cmd(Option<Cmd>),
            Accept(io::Result<(TcpStream, SocketAddr)>),
        }
        let w = tokio::select! {
            biased;
            c = slot.cmds.recv() => W::Cmd(c),
            a = listener.accept(), if accepting => W::Accept(a),
        };
        match w {
            W::Cmd(None) => break,
            W::Cmd(Some(c)) => match c {
                Cmd::Start { requester } => {
                    owner = requester;
                    slot.owner.store(owner, Ordering::Relaxed);
                    accepting = true;
                    slot.reading.store(true, Ordering::Relaxed);
                    if !started {
                        started = true;
                        srv.emit_text(owner, kind::CONNECT, id, 0, "start");
                    }
                }
                Cmd::Pause => {
                    accepting = false;
                    slot.reading.store(false, Ordering::Relaxed);
                }
                Cmd::Close { requester, .. } => {
                    srv.emit_text(requester, kind::CLOSE, id, 0, "");
                    break;
                }
                Cmd::Send { .. } => eprintln!("socket-server: write to listen fd {id}."),
                Cmd::NoDelay | Cmd::UdpConnect { .. } | Cmd::Rest { .. } | Cmd::Wake => {}
            },
            W::Accept(Ok((stream, peer))) => {
                addr::set_keepalive(&stream);
                let Ok(stream) = stream.into_std() else {
                    continue;
                };
                let Some(nslot) = srv.reserve(Kind::Tcp, owner) else {
                    drop(stream);
                    continue;
                };
                let nid = nslot.id;
                *nslot.name.lock() = peer.to_string();
                tokio::spawn(Conn::new(srv.clone(), nslot, stream, owner, true).run());
                slot.read.fetch_add(1, Ordering::Relaxed);
                slot.rtime.store(srv.now_cs(), Ordering::Relaxed);
                srv.emit_text(
                    owner,
                    kind::ACCEPT,
                    id,
                    nid,
                    &format!("{}:{}", peer.ip(), peer.port()),
                );
            }
            W::Accept(Err(e)) => {
                if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) {
                    srv.emit_text(owner, kind::ERROR, id, 0, &addr::os_error_text(&e));
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    srv.release(&slot);
}

/// Blocking reader of a bound fd: sends each read (empty = end of file).
fn bound_reader(fd: i32, tx: tokio::sync::mpsc::Sender<io::Result<Vec<u8>>>) {
    let mut size = MIN_READ_BUFFER;
    loop {
        let mut v: Vec<u8> = Vec::with_capacity(size + TRAILER);
        // SAFETY: `v` has room for `size + TRAILER` bytes and read(2) writes at
        // most the `size` asked into it; reading a descriptor that is not
        // open fails (EBADF) without touching memory.
        let n = unsafe { libc::read(fd, v.as_mut_ptr() as *mut libc::c_void, size) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                _ => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        let n = n as usize;
        // SAFETY: read(2) succeeded, so it initialized the first `n <= size`
        // bytes, all within the capacity of `v`.
        unsafe { v.set_len(n) };
        if n == size {
            size = (size * 2).min(MAX_READ_BUFFER);
        } else if size > MIN_READ_BUFFER && n * 2 < size {
            size /= 2;
        }
        let eof = n == 0;
        if tx.blocking_send(Ok(v)).is_err() || eof {
            return;
        }
    }
}

/// Blocking writer of a bound fd.
fn bound_writer(fd: i32, rx: std::sync::mpsc::Receiver<Vec<u8>>) {
    for data in rx {
        let mut pos = 0;
        while pos < data.len() {
            // SAFETY: the pointer and length describe `data[pos..]`, which is
            // alive and unchanged across the call; write(2) only reads them.
            let n = unsafe {
                libc::write(
                    fd,
                    data[pos..].as_ptr() as *const libc::c_void,
                    data.len() - pos,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        continue;
                    }
                    _ => return,
                }
            }
            pos += n as usize;
        }
    }
}

async fn bind_task(srv: Arc<Inner>, slot: Arc<Slot>, mut owner: u32, fd: i32) {
    let id = slot.id;
    *slot.name.lock() = format!("fd {fd}");
    let (dtx, mut drx) = tokio::sync::mpsc::channel(1);
    let reader = std::thread::Builder::new()
        .name(format!("socket-bind-{fd}"))
        .spawn(move || bound_reader(fd, dtx));
    if let Err(e) = reader {
        srv.emit_text(owner, kind::ERROR, id, 0, &e.to_string());
        srv.release(&slot);
        return;
    }
    srv.emit_text(owner, kind::CONNECT, id, 0, "binding");
    let mut writer: Option<std::sync::mpsc::Sender<Vec<u8>>> = None;
    let mut reading = true;
    slot.reading.store(true, Ordering::Relaxed);
    let mut read_closed = false;
    loop {
        enum W {
            Cmd(Option<Cmd>),
            Data(Option<io::Result<Vec<u8>>>),
        }
        let w = tokio::select! {
            biased;
            c = slot.cmds.recv() => W::Cmd(c),
            d = drx.recv(), if reading && !read_closed => W::Data(d),
        };
        match w {
            W::Cmd(None) => break,
            W::Cmd(Some(c)) => match c {
                Cmd::Send { data, .. } => {
                    if data.is_empty() {
                        continue;
                    }
                    let w = writer.get_or_insert_with(|| {
                        let (tx, wrx) = std::sync::mpsc::channel();
                        let _ = std::thread::Builder::new()
                            .name(format!("socket-bindw-{fd}"))
                            .spawn(move || bound_writer(fd, wrx));
                        tx
                    });
                    let n = data.len() as u64;
                    if w.send(data).is_ok() {
                        slot.write.fetch_add(n, Ordering::Relaxed);
                        slot.wtime.store(srv.now_cs(), Ordering::Relaxed);
                    }
                }
                Cmd::Close { requester, .. } => {
                    if !read_closed {
                        srv.emit_text(requester, kind::CLOSE, id, 0, "");
                    }
                    break;
                }
                Cmd::Start { requester } => {
                    owner = requester;
                    slot.owner.store(owner, Ordering::Relaxed);
                    reading = true;
                    slot.reading.store(true, Ordering::Relaxed);
                }
                Cmd::Pause => {
                    reading = false;
                    slot.reading.store(false, Ordering::Relaxed);
                }
                Cmd::NoDelay | Cmd::UdpConnect { .. } | Cmd::Rest { .. } | Cmd::Wake => {}
            },
            W::Data(Some(Ok(v))) if !v.is_empty() => {
                let n = v.len();
                slot.read.fetch_add(n as u64, Ordering::Relaxed);
                slot.rtime.store(srv.now_cs(), Ordering::Relaxed);
                srv.emit(owner, event::encode(kind::DATA, id, n as i32, v, &[]));
            }
            W::Data(Some(Err(e))) => {
                read_closed = true;
                srv.emit_text(owner, kind::ERROR, id, 0, &addr::os_error_text(&e));
            }
            W::Data(_) => {
                read_closed = true;
                srv.emit_text(owner, kind::CLOSE, id, 0, "");
            }
        }
    }
    // The reader thread notices on its next read; the fd stays open.
    drop(drx);
    srv.release(&slot);
}

async fn udp_task(
    srv: Arc<Inner>,
    slot: Arc<Slot>,
    mut owner: u32,
    sock: std::net::UdpSocket,
    mut default_to: Option<SocketAddr>,
) {
    let id = slot.id;
    let sock = match UdpSocket::from_std(sock) {
        Ok(s) => s,
        Err(e) => {
            srv.emit_text(owner, kind::ERROR, id, 0, &addr::os_error_text(&e));
            srv.release(&slot);
            return;
        }
    };
    let v6 = sock.local_addr().map(|a| a.is_ipv6()).unwrap_or(false);
    let mut queue: VecDeque<(Vec<u8>, SocketAddr)> = VecDeque::new();
    let mut wb_size = 0usize;
    let mut reading = true;
    slot.reading.store(true, Ordering::Relaxed);
    let mut buf = vec![0u8; MAX_UDP_PACKAGE];
    loop {
        enum W {
            Cmd(Option<Cmd>),
            Read,
            Write,
        }
        // readiness errors surface again from the try_ call that follows
        let w = tokio::select! {
            biased;
            c = slot.cmds.recv() => W::Cmd(c),
            _ = sock.writable(), if !queue.is_empty() => W::Write,
            _ = sock.readable(), if reading => W::Read,
        };
        match w {
            W::Cmd(None) => break,
            W::Cmd(Some(c)) => match c {
                Cmd::Send { data, to, .. } => {
                    let Some(to) = to.map(|t| *t).or(default_to) else {
                        eprintln!("socket-server : udp ({id}) sendto error no destination.");
                        continue;
                    };
                    if to.is_ipv6() != v6 {
                        eprintln!("socket-server : udp ({id}) sendto error protocol mismatch.");
                        continue;
                    }
                    if queue.is_empty() {
                        match sock.try_send_to(&data, to) {
                            Ok(n) => {
                                slot.write.fetch_add(n as u64, Ordering::Relaxed);
                                slot.wtime.store(srv.now_cs(), Ordering::Relaxed);
                                continue;
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(e) => {
                                eprintln!(
                                    "socket-server : udp ({id}) sendto error {}.",
                                    addr::os_error_text(&e)
                                );
                                continue;
                            }
                        }
                    }
                    wb_size += data.len();
                    slot.wbuffer.store(wb_size as u64, Ordering::Relaxed);
                    queue.push_back((data, to));
                }
                Cmd::UdpConnect { to } => {
                    if to.is_ipv6() != v6 {
                        srv.emit_text(owner, kind::ERROR, id, 0, "protocol mismatch");
                    } else {
                        default_to = Some(to);
                    }
                }
                Cmd::Close { requester, .. } => {
                    srv.emit_text(requester, kind::CLOSE, id, 0, "");
                    break;
                }
                Cmd::Start { requester } => {
                    owner = requester;
                    slot.owner.store(owner, Ordering::Relaxed);
                    reading = true;
                    slot.reading.store(true, Ordering::Relaxed);
                    srv.emit_text(owner, kind::CONNECT, id, 0, "transfer");
                }
                Cmd::Pause => {
                    reading = false;
                    slot.reading.store(false, Ordering::Relaxed);
                }
                Cmd::NoDelay | Cmd::Rest { .. } | Cmd::Wake => {}
            },
            W::Write => {
                while let Some((data, to)) = queue.front() {
                    match sock.try_send_to(data, *to) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => eprintln!(
                            "socket-server : udp ({id}) sendto error {}.",
                            addr::os_error_text(&e)
                        ),
                    }
                    let (data, _) = queue.pop_front().unwrap();
                    wb_size -= data.len();
                    slot.write.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                slot.wbuffer.store(wb_size as u64, Ordering::Relaxed);
            }
            W::Read => match sock.try_recv_from(&mut buf) {
                Ok((n, from)) => {
                    if from.is_ipv6() != v6 {
                        continue;
                    }
                    let blob = addr::udp_blob(&from);
                    let mut v = Vec::with_capacity(n + blob.len() + TRAILER);
                    v.extend_from_slice(&buf[..n]);
                    slot.read.fetch_add(n as u64, Ordering::Relaxed);
                    slot.rtime.store(srv.now_cs(), Ordering::Relaxed);
                    srv.emit(owner, event::encode(kind::UDP, id, n as i32, v, &blob));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => srv.emit_text(owner, kind::ERROR, id, 0, &addr::os_error_text(&e)),
            },
        }
    }
    drop(sock);
    srv.release(&slot);
}
