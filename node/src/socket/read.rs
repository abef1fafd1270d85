//! The read direction of a TCP connection, shared by the connection's task
//! on the socket thread and by idle workers.
//!
//! A worker that writes to a connection itself (a direct write, see
//! [`super::server`]) expects an answer on it soon, so the connection is
//! *lent* to the workers: while they spin for work
//! ([`crate::scheduler::SPIN`]) they `poll` the lent connections and read
//! those that have bytes, so that the answer goes from the socket to its
//! service's queue on the worker that will run it, with no wake-up of the
//! socket thread on the way. The task then takes the socket out of its
//! poller's read interest (*disarmed*): arriving bytes wake nobody. It reads
//! the socket itself on a tick (1 ms doubling to 8 ms) while disarmed, and
//! *arms* again (registers for reading) when a worker goes to sleep, when no
//! worker looked at the socket for a whole tick (all of them busy), or when
//! the connection is given back. These are the cluster links' rules
//! (docs/performance.md, "Cluster links"), with the same reasons.
//!
//! One lock covers the socket's read direction: whoever holds it (the task
//! waits for it, workers only `try_lock`) reads and hands the bytes to the
//! owner while holding it, so data events keep the order of the bytes and
//! none is read twice. The task also changes what workers must know (the
//! owner, whether reading is on) and reports the end of reading (CLOSE,
//! ERROR) under it, so nothing read by a worker follows those events. A
//! worker that finds the end (EOF, an error) records it, stops reading and
//! wakes the task, which reports it.

use parking_lot::Mutex;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

/// What the holder of the read lock may use.
pub(super) struct Reader {
    /// The socket's descriptor while the task holds the socket, else -1.
    pub fd: i32,
    /// Where data events go.
    pub owner: u32,
    /// Reading is on (started, not paused, not closed, not failed); workers
    /// read only while it is.
    pub open: bool,
    /// The next read asks for this much: it doubles when a read fills it and
    /// halves when less than half is used.
    pub size: u32,
    /// How reading ended, when a worker found out: 0 for EOF, else the OS
    /// error number. The task reports it.
    pub end: Option<i32>,
}

/// The shared read side of one TCP connection (part of every socket slot;
/// unused by the other kinds).
pub(super) struct ReadSide {
    pub lock: Mutex<Reader>,
    /// The descriptor workers `poll`, -1 while they must not read. (A look
    /// that races with a change may ask about a stale number: the read under
    /// the lock checks again.)
    raw_fd: AtomicI32,
    /// In the server's list of connections that workers read.
    pub lent: AtomicBool,
    /// The task is registered for readability.
    armed: AtomicBool,
    /// A worker went to sleep since the task last asked.
    sleep_seen: AtomicBool,
    /// How many times workers looked at the socket.
    looks: AtomicU32,
}

impl ReadSide {
    pub fn new(size: usize) -> ReadSide {
        ReadSide {
            lock: Mutex::new(Reader {
                fd: -1,
                owner: 0,
                open: false,
                size: size as u32,
                end: None,
            }),
            raw_fd: AtomicI32::new(-1),
            lent: AtomicBool::new(false),
            armed: AtomicBool::new(true),
            sleep_seen: AtomicBool::new(false),
            looks: AtomicU32::new(0),
        }
    }

    /// Publishes, under the lock `r`, whether workers may read now.
    pub fn publish(&self, r: &Reader) {
        let fd = if r.open && r.end.is_none() { r.fd } else { -1 };
        self.raw_fd.store(fd, Ordering::Release);
    }

    pub fn raw_fd(&self) -> i32 {
        self.raw_fd.load(Ordering::Acquire)
    }

    /// A worker looked at the socket.
    pub fn looked(&self) {
        self.looks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn looks(&self) -> u32 {
        self.looks.load(Ordering::Relaxed)
    }

    /// A worker is about to sleep (or the connection is given back): true if
    /// the task must be woken to arm.
    ///
    /// `sleep_seen` and `armed` are written then read in opposite orders here
    /// and in [`ReadSide::disarm`] (all SeqCst), so a worker that falls asleep
    /// while the task disarms is seen by one side or the other.
    pub fn ask_arm(&self) -> bool {
        self.sleep_seen.store(true, Ordering::SeqCst);
        !self.armed.load(Ordering::SeqCst)
    }

    /// The task registers for readability; sleeps seen until now are
    /// answered by that.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
        self.sleep_seen.store(false, Ordering::SeqCst);
    }

    /// The task would stop reading: false (and still armed) if a worker went
    /// to sleep since it last armed or asked.
    pub fn disarm(&self) -> bool {
        if self.sleep_seen.swap(false, Ordering::SeqCst) {
            return false;
        }
        self.armed.store(false, Ordering::SeqCst);
        if self.sleep_seen.swap(false, Ordering::SeqCst) {
            self.armed.store(true, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// What one read did.
pub(super) enum Got {
    /// Bytes, handed over as they are; `full`: the read filled its buffer, so
    /// more may be waiting.
    Data {
        bytes: Vec<u8>,
        full: bool,
    },
    /// Nothing there now.
    Empty,
    /// The peer closed its direction.
    Eof,
    Failed(io::Error),
}

/// One non-blocking `recv` of up to `r.size` bytes into a buffer with
/// `trailer` bytes of room after them (for the event's encoding); adapts the
/// size.
pub(super) fn read_once(r: &mut Reader, trailer: usize, max: usize) -> Got {
    let size = r.size as usize;
    let mut buf: Vec<u8> = Vec::with_capacity(size + trailer);
    let n = loop {
        // SAFETY: `buf` has room for `size + trailer` bytes and recv writes at
        // most `size` into it; a descriptor that is not a socket (or no
        // longer open) fails without touching memory. The caller holds the
        // read lock, and the task closes the socket only after clearing
        // `r.fd` under it, so `r.fd` is this connection's socket.
        let n = unsafe {
            libc::recv(
                r.fd,
                buf.as_mut_ptr() as *mut libc::c_void,
                size,
                libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Got::Empty,
            _ => return Got::Failed(e),
        }
    };
    if n == 0 {
        return Got::Eof;
    }
    // SAFETY: recv initialized the first `n <= size` bytes of `buf`.
    unsafe { buf.set_len(n) };
    let min = super::server::MIN_READ_BUFFER;
    if n == size {
        r.size = (size * 2).min(max) as u32;
    } else if size > min && n * 2 < size {
        r.size = (size / 2) as u32;
    }
    Got::Data {
        bytes: buf,
        full: n == size,
    }
}

/// `poll` with no timeout over `fds` (negative ones are skipped by the OS);
/// the count of those with events.
pub(super) fn poll_now(fds: &mut [libc::pollfd]) -> i32 {
    // SAFETY: `fds` is a valid array of `fds.len()` entries that poll may write.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) }
}
