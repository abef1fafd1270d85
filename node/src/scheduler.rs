//! The scheduler: the global run queue of service queues, and the loop that each
//! worker thread runs over it (taking a queue, waiting when there is none).
//!
//! Workers follow skynet's policy: a worker dispatches a share of one queue (its
//! weight), then puts the queue back only if another queue is waiting, else keeps
//! it. Workers that find nothing sleep; a worker that makes a queue runnable wakes
//! a sleeper only when more than one queue is waiting (so a ping-pong between two
//! services stays on one thread), while other threads (timer, sockets) always wake
//! one; the timer also wakes a sleeper each tick while work is waiting.
//!
//! What dispatching a share of a queue means (retirement, logs, the monitor) is
//! the kernel's: a worker is given it as a function.

use crate::context::Context;
use parking_lot::{Condvar, Mutex, RwLock};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

thread_local! {
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
    /// The service being dispatched on this thread has more messages waiting.
    static MORE_QUEUED: Cell<bool> = const { Cell::new(false) };
    /// The message being dispatched on this thread has had its one direct
    /// write to a socket (see [`claim_direct_write`]).
    static DIRECT_WRITE_CLAIMED: Cell<bool> = const { Cell::new(false) };
}

/// True on a worker whose current service has more messages queued: what it
/// sends now is likely followed by more (a reason to batch writes).
pub fn more_queued() -> bool {
    MORE_QUEUED.with(|m| m.get())
}

/// Claims the one frame that the message being dispatched on this thread may
/// write straight to a socket: true at the first call in a message, false
/// after (a second frame sent by one message is likely one of many, better
/// batched by the link's writer).
pub fn claim_direct_write() -> bool {
    !DIRECT_WRITE_CLAIMED.with(|c| c.replace(true))
}

/// A worker starts a message; `more_queued`: its service has more waiting.
pub(crate) fn begin_message(more_queued: bool) {
    MORE_QUEUED.with(|m| m.set(more_queued));
    DIRECT_WRITE_CLAIMED.with(|c| c.set(false));
}

/// How long an idle worker polls the run queue before it sleeps. A reply that
/// comes back from another thread (a socket, another node) within this window is
/// picked up without a futex wake-up and a context switch.
pub const SPIN: Duration = Duration::from_micros(100);

/// Between two looks a spinning worker pauses the CPU this many times (well
/// under a microsecond), and every [`SPIN_YIELD_EVERY`] looks (some 10 µs) it
/// offers its core to other threads (`sched_yield`), so that a spinner does
/// not keep a core that another process on the machine needs (the figures
/// behind these numbers: docs/performance.md).
const SPIN_PAUSES: usize = 20;
const SPIN_YIELD_EVERY: usize = 8;

/// How long a spinning worker leaves a waiting queue to the busy worker that
/// probably made it runnable (see `wait_for_work`).
const HANDOFF_GRACE: Duration = Duration::from_micros(8);

/// Work an idle worker may do itself while it polls (see [`SPIN`]): the
/// cluster reads its links' sockets here, and the socket layer the
/// connections that services just wrote to, so a frame or an answer that
/// arrives while a worker is spinning reaches its service without waking an
/// I/O thread.
/// `poll` must not block; it returns true if it made anything runnable.
pub trait IdlePoller: Send + Sync {
    fn poll(&self) -> bool;
    /// A worker is about to sleep (for the socket layer's poller: the last
    /// worker awake): what it polled must be watched by someone else from
    /// now on.
    fn sleeping(&self);
}

pub struct Scheduler {
    global: Mutex<VecDeque<Arc<Context>>>,
    cond: Condvar,
    sleepers: AtomicUsize,
    /// 1 while a worker polls instead of sleeping (at most one does).
    spinning: AtomicUsize,
    /// Workers not waiting for work (dispatching, or between two queues).
    busy: AtomicUsize,
    /// Workers not asleep (the socket poller is told only when the last
    /// one goes to sleep).
    awake: AtomicUsize,
    quit: AtomicBool,
    threads: usize,
    /// The cluster's links (see [`Scheduler::set_idle_poller`]).
    idle_poller: RwLock<Option<Arc<dyn IdlePoller>>>,
    /// The socket layer's connections that workers read (see
    /// [`Scheduler::set_socket_poller`]).
    socket_poller: RwLock<Option<Arc<dyn IdlePoller>>>,
}

/// skynet's weights per worker index: -1 = one message per turn, w >= 0 = the
/// queue length >> w.
fn weight(index: usize) -> i32 {
    const W: [i32; 32] = [
        -1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3,
        3, 3, 3,
    ];
    W.get(index).copied().unwrap_or(0)
}

impl Scheduler {
    pub fn new(threads: usize) -> Self {
        Scheduler {
            global: Mutex::new(VecDeque::new()),
            cond: Condvar::new(),
            sleepers: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
            busy: AtomicUsize::new(threads.max(1)),
            awake: AtomicUsize::new(threads.max(1)),
            quit: AtomicBool::new(false),
            threads: threads.max(1),
            idle_poller: RwLock::new(None),
            socket_poller: RwLock::new(None),
        }
    }

    /// Installs (or removes) the work a spinning worker does between looks at
    /// the run queue.
    pub fn set_idle_poller(&self, p: Option<Arc<dyn IdlePoller>>) {
        *self.idle_poller.write() = p;
    }

    /// The same for the socket layer, which has a slot of its own so that a
    /// node with a harbor has both polled.
    pub fn set_socket_poller(&self, p: Option<Arc<dyn IdlePoller>>) {
        *self.socket_poller.write() = p;
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Makes a context runnable.
    pub(crate) fn push(&self, ctx: Arc<Context>) {
        let len = {
            let mut g = self.global.lock();
            g.push_back(ctx);
            g.len()
        };
        if self.sleepers.load(Ordering::SeqCst) > 0
            && self.spinning.load(Ordering::SeqCst) == 0
            && (len >= 2 || !IS_WORKER.with(|w| w.get()))
        {
            self.cond.notify_one();
        }
    }

    fn pop(&self) -> Option<Arc<Context>> {
        self.global.lock().pop_front()
    }

    /// Called by the timer thread each tick.
    pub(crate) fn tick(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 && !self.global.lock().is_empty() {
            self.cond.notify_one();
        }
    }

    pub(crate) fn quit(&self) {
        self.quit.store(true, Ordering::SeqCst);
        self.cond.notify_all();
    }

    fn wait_for_work(&self) -> Option<Arc<Context>> {
        if self
            .spinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            let deadline = std::time::Instant::now() + SPIN;
            let poller = self.idle_poller.read().clone();
            let sockets = self.socket_poller.read().clone();
            let mut spins = 0usize;
            let mut seen_waiting: Option<std::time::Instant> = None;
            let found = loop {
                // A queue made runnable by a busy worker is left to it for a
                // moment: it usually takes it right after its current message,
                // with the service's memory still in its cache (a chain of
                // services then runs on one thread, as in skynet).
                let leave = self.busy.load(Ordering::Relaxed) > 0
                    && seen_waiting.is_none_or(|t| t.elapsed() < HANDOFF_GRACE);
                if !leave {
                    if let Some(c) = self.pop() {
                        break Some(c);
                    }
                    seen_waiting = None;
                } else if self.global.lock().is_empty() {
                    seen_waiting = None;
                } else if seen_waiting.is_none() {
                    seen_waiting = Some(std::time::Instant::now());
                }
                let links = poller.as_ref().is_some_and(|p| p.poll());
                if sockets.as_ref().is_some_and(|p| p.poll()) || links {
                    continue;
                }
                if self.quit.load(Ordering::SeqCst) || std::time::Instant::now() >= deadline {
                    break None;
                }
                spins += 1;
                if spins.is_multiple_of(SPIN_YIELD_EVERY) {
                    std::thread::yield_now();
                } else {
                    for _ in 0..SPIN_PAUSES {
                        std::hint::spin_loop();
                    }
                }
            };
            self.spinning.store(0, Ordering::SeqCst);
            if found.is_some() {
                return found;
            }
        }
        if let Some(p) = self.idle_poller.read().as_ref() {
            p.sleeping();
        }
        // A worker still awake polls the lent connections when it next
        // idles (and their tasks arm if it stays busy for a whole tick), so
        // only the last worker to fall asleep hands them back: each hand-back
        // costs the socket thread a wake-up and two poller changes.
        let last = self.awake.fetch_sub(1, Ordering::SeqCst) == 1;
        if last {
            if let Some(p) = self.socket_poller.read().as_ref() {
                p.sleeping();
            }
        }
        let found = self.sleep_for_work();
        self.awake.fetch_add(1, Ordering::SeqCst);
        found
    }

    fn sleep_for_work(&self) -> Option<Arc<Context>> {
        let mut g = self.global.lock();
        loop {
            if let Some(c) = g.pop_front() {
                return Some(c);
            }
            if self.quit.load(Ordering::SeqCst) {
                return None;
            }
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            self.cond.wait(&mut g);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The body of worker `index` (0-based), until [`Scheduler::quit`]:
    /// `dispatch(queue, weight)` handles a share of a runnable queue and tells
    /// whether the worker still owns it (it was not found empty).
    pub(crate) fn run_worker(
        &self,
        index: usize,
        mut dispatch: impl FnMut(&Arc<Context>, i32) -> bool,
    ) {
        IS_WORKER.with(|w| w.set(true));
        let weight = weight(index);
        let mut current: Option<Arc<Context>> = None;
        loop {
            // A queue made runnable by what this worker just ran is taken
            // here while the worker still counts as busy: a spinning worker
            // leaves such a queue to it (see `wait_for_work`) but would win
            // the race once this one had gone idle, moving a chain of
            // services to another core at every hop.
            let ctx = match current.take().or_else(|| self.pop()) {
                Some(c) => c,
                None => {
                    self.busy.fetch_sub(1, Ordering::Relaxed);
                    let next = self.wait_for_work();
                    self.busy.fetch_add(1, Ordering::Relaxed);
                    match next {
                        Some(c) => c,
                        None => return,
                    }
                }
            };
            if dispatch(&ctx, weight) {
                // The queue still has messages: keep it unless another is waiting.
                match self.pop() {
                    Some(next) => {
                        self.global.lock().push_back(ctx);
                        current = Some(next);
                    }
                    None => current = Some(ctx),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_skynets_table() {
        let w: Vec<i32> = (0..34).map(weight).collect();
        assert_eq!(&w[..4], &[-1; 4], "one message per turn");
        assert_eq!(&w[4..8], &[0; 4], "the whole queue");
        assert_eq!(&w[8..16], &[1; 8], "half");
        assert_eq!(&w[16..24], &[2; 8], "a quarter");
        assert_eq!(&w[24..32], &[3; 8], "an eighth");
        assert_eq!(&w[32..], &[0; 2], "past the table: the whole queue");
    }

    #[test]
    fn a_message_gets_one_direct_write() {
        begin_message(true);
        assert!(more_queued());
        assert!(claim_direct_write());
        assert!(!claim_direct_write());
        assert!(!claim_direct_write());
        begin_message(false);
        assert!(!more_queued());
        assert!(claim_direct_write(), "the next message gets its own");
    }

    #[test]
    fn a_quit_ends_idle_workers() {
        let s = Scheduler::new(2);
        std::thread::scope(|scope| {
            for i in 0..2 {
                let s = &s;
                scope.spawn(move || s.run_worker(i, |_, _| unreachable!("no work")));
            }
            std::thread::sleep(Duration::from_millis(20));
            s.quit();
        });
    }
}
