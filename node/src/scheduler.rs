//! The scheduler: worker threads taking service queues from the global run queue,
//! and the monitor thread that spots endless loops.
//!
//! Workers follow skynet's policy: a worker dispatches a share of one queue (its
//! weight), then puts the queue back only if another queue is waiting, else keeps
//! it. Workers that find nothing sleep; a worker that makes a queue runnable wakes
//! a sleeper only when more than one queue is waiting (so a ping-pong between two
//! services stays on one thread), while other threads (timer, sockets) always wake
//! one; the timer also wakes a sleeper each tick while work is waiting.

use crate::context::Context;
use crate::kernel::kernel;
use crate::timer::hpc;
use parking_lot::{Condvar, Mutex, RwLock};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

thread_local! {
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
    /// The service being dispatched on this thread has more messages waiting.
    static MORE_QUEUED: Cell<bool> = const { Cell::new(false) };
    /// The message being dispatched on this thread already wrote a frame
    /// straight to a socket (see [`wrote_directly`]).
    static WROTE_DIRECTLY: Cell<bool> = const { Cell::new(false) };
}

/// True on a worker whose current service has more messages queued: what it
/// sends now is likely followed by more (a reason to batch writes).
pub fn more_queued() -> bool {
    MORE_QUEUED.with(|m| m.get())
}

/// Whether the message being dispatched on this thread already wrote a frame
/// straight to a socket; the first call in a message says no and records it.
/// (A second frame sent by one message is likely one of many.)
pub fn wrote_directly() -> bool {
    WROTE_DIRECTLY.with(|w| w.replace(true))
}

/// How often the monitor checks workers for a message that never ends.
pub const MONITOR_PERIOD: Duration = Duration::from_secs(5);

/// What a worker is dispatching, for the endless-loop monitor.
#[derive(Default)]
pub(crate) struct WorkerMonitor {
    version: AtomicU32,
    source: AtomicU32,
    destination: AtomicU32,
}

impl WorkerMonitor {
    fn trigger(&self, source: u32, destination: u32) {
        self.source.store(source, Ordering::Relaxed);
        self.destination.store(destination, Ordering::Relaxed);
        self.version.fetch_add(1, Ordering::Release);
    }
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
/// cluster reads its links' sockets here, so a frame that arrives while a
/// worker is spinning reaches its service without waking the I/O thread.
/// `poll` must not block; it returns true if it made anything runnable.
pub trait IdlePoller: Send + Sync {
    fn poll(&self) -> bool;
    /// A worker is about to sleep: what it polled must be watched by
    /// someone else from now on.
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
    quit: AtomicBool,
    monitors: Vec<WorkerMonitor>,
    idle_poller: RwLock<Option<Arc<dyn IdlePoller>>>,
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

/// Drops a retired service's instance (its Lua state, ...) once; counts it gone.
fn release(service: &mut Option<Box<dyn crate::module::Service>>, ctx: &Context) {
    if let Some(s) = service.take() {
        drop(s);
        ctx.logfile.lock().take();
        kernel().context_released();
    }
}

impl Scheduler {
    pub fn new(threads: usize) -> Self {
        Scheduler {
            global: Mutex::new(VecDeque::new()),
            cond: Condvar::new(),
            sleepers: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
            busy: AtomicUsize::new(threads.max(1)),
            quit: AtomicBool::new(false),
            monitors: (0..threads.max(1))
                .map(|_| WorkerMonitor::default())
                .collect(),
            idle_poller: RwLock::new(None),
        }
    }

    /// Installs (or removes) the work a spinning worker does between looks at
    /// the run queue.
    pub fn set_idle_poller(&self, p: Option<Arc<dyn IdlePoller>>) {
        *self.idle_poller.write() = p;
    }

    pub fn threads(&self) -> usize {
        self.monitors.len()
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
                if let Some(p) = &poller {
                    if p.poll() {
                        continue;
                    }
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

    fn worker_loop(&self, index: usize) {
        IS_WORKER.with(|w| w.set(true));
        let mon = &self.monitors[index];
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
            if self.dispatch(&ctx, weight, mon) {
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

    /// Dispatches a share of `ctx`'s queue. Returns true if the worker still owns
    /// the queue (it is non-empty), false once the queue was found empty.
    fn dispatch(&self, ctx: &Arc<Context>, weight: i32, mon: &WorkerMonitor) -> bool {
        let k = kernel();
        let handle = ctx.handle();
        let mut service = ctx.service.lock();
        let mut n = 1usize;
        let mut i = 0usize;
        while i < n {
            let popped = ctx.queue.pop();
            // A graceful retirement (the logger at abort) handles what is queued first.
            let dropping = ctx.is_retired() && !ctx.is_graceful();
            if dropping || (ctx.is_retired() && popped.is_none()) {
                release(&mut service, ctx);
            }
            let Some(popped) = popped else {
                return false;
            };
            if dropping {
                k.drop_message(handle, popped.message);
                // keep draining: every late message is answered too
                continue;
            }
            if i == 0 && weight >= 0 {
                n = (ctx.queue.len() + 1) >> weight;
                n = n.max(1);
            }
            i += 1;
            if popped.overload != 0 {
                k.error(
                    handle,
                    &format!(
                        "error: May overload, message queue length = {}",
                        popped.overload
                    ),
                );
            }
            let msg = popped.message;
            MORE_QUEUED.with(|m| m.set(!ctx.queue.is_empty()));
            WROTE_DIRECTLY.with(|w| w.set(false));
            mon.trigger(msg.source, handle);
            match service.as_mut() {
                Some(s) => {
                    if let Some(f) = ctx.logfile.lock().as_mut() {
                        crate::command::log_message(f, &msg);
                    }
                    ctx.message_count.fetch_add(1, Ordering::Relaxed);
                    if k.profile() {
                        let start = hpc();
                        ctx.cpu_start_ns.store(start, Ordering::Relaxed);
                        s.dispatch(ctx, msg);
                        ctx.cpu_cost_ns.fetch_add(hpc() - start, Ordering::Relaxed);
                        ctx.cpu_start_ns.store(0, Ordering::Relaxed);
                    } else {
                        s.dispatch(ctx, msg);
                    }
                }
                None => drop(msg),
            }
            mon.trigger(0, 0);
            if ctx.is_retired() {
                // Released and drained on the next loop turns.
                n = usize::MAX;
            }
        }
        true
    }

    /// Starts the workers and the monitor thread.
    pub(crate) fn start(&'static self) -> Vec<JoinHandle<()>> {
        let mut threads = Vec::new();
        for i in 0..self.threads() {
            threads.push(
                std::thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .spawn(move || self.worker_loop(i))
                    .expect("spawn worker"),
            );
        }
        threads.push(
            std::thread::Builder::new()
                .name("monitor".into())
                .spawn(move || self.monitor_loop())
                .expect("spawn monitor"),
        );
        threads
    }

    fn monitor_loop(&self) {
        let mut checked: Vec<u32> = vec![0; self.monitors.len()];
        let step = Duration::from_millis(100);
        loop {
            let mut waited = Duration::ZERO;
            while waited < MONITOR_PERIOD {
                if self.quit.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(step);
                waited += step;
            }
            for (i, m) in self.monitors.iter().enumerate() {
                let version = m.version.load(Ordering::Acquire);
                let dest = m.destination.load(Ordering::Relaxed);
                if version == checked[i] && dest != 0 {
                    let source = m.source.load(Ordering::Relaxed);
                    if let Some(ctx) = kernel().grab(dest) {
                        ctx.set_endless();
                    }
                    kernel().error(
                        0,
                        &format!(
                            "error: A message from [ :{source:08x} ] to [ :{dest:08x} ] maybe in an endless loop (version = {version})"
                        ),
                    );
                } else {
                    checked[i] = version;
                }
            }
        }
    }
}
