//! The kernel: one node's state (handles and names, environment, timer,
//! modules, scheduler, monitor) and the operations every service uses: launch,
//! send, retire, log; and what a worker does with a share of a service's queue.
//!
//! A kernel is a value: [`Kernel::new`] makes one and [`Kernel::start`] starts
//! its threads (workers, monitor, timer), so tests run several in one process.
//! It lives as long as the process (its threads borrow it), as skynet's
//! globals do.
//!
//! Services reach their kernel with [`kernel()`]: each thread of a kernel, and
//! the thread running a service's `init` inside [`Kernel::launch`], knows the
//! kernel it works for. The node's own kernel is also installed process-wide
//! ([`Kernel::install`]) for the threads that belong to no kernel: signal
//! handlers, the socket and cluster I/O threads.

use crate::address::Address;
use crate::context::{Context, Service};
use crate::env::Env;
use crate::handle::HandleRegistry;
use crate::message::{is_request, ptype, Message, MAX_MESSAGE_SIZE};
use crate::module::{ModuleFactory, ModuleRegistry};
use crate::monitor::{Monitor, WorkerMonitor};
use crate::mq::Pushed;
use crate::scheduler::{self, IdlePoller, Scheduler};
use crate::timer::{hpc, Expired, Timer};
use parking_lot::{Condvar, Mutex, RwLock};
use skynet_proto::handle::Handle;
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Why a send was refused. The Lua layer turns these into skynet's results
/// (`nil` for an invalid destination, `false` for an oversized message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("invalid destination :{0:08x}")]
    InvalidDestination(u32),
    #[error("unknown name {0}")]
    UnknownName(String),
    #[error("message too large ({0} bytes)")]
    TooLarge(usize),
}

/// Where messages for other harbors and for global names go. The single-node
/// harbor (`harbor 0`) and the cluster slave implement it.
pub trait RemoteRouter: Send + Sync {
    /// A message for a handle whose harbor byte is another node's.
    fn send_handle(&self, dest: u32, msg: Message);
    /// A message for a global name (no `.`/`:` prefix).
    fn send_name(&self, name: &str, msg: Message);
    /// Figures for the metrics endpoint, if this router keeps any.
    fn metrics(&self) -> Option<RemoteMetrics> {
        None
    }
    /// The node is leaving: close every link now so that peers fail their
    /// calls at once. Returns how many were closed.
    fn close_links(&self) -> usize {
        0
    }
}

/// What a [`RemoteRouter`] reports to the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteMetrics {
    pub links_up: usize,
    pub frames_sent: u64,
    pub frames_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub pending_calls: usize,
    pub down_events: u64,
}

/// Per service label: live instances and their figures, plus what retired
/// instances had counted (so the counters never go down).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceFigures {
    pub instances: usize,
    pub messages: u64,
    pub cpu_ns: u64,
    pub queue_len: usize,
    pub memory: usize,
}

/// A kernel's figures at one moment, for the metrics endpoint.
#[derive(Debug, Clone, Default)]
pub struct KernelFigures {
    pub services: usize,
    pub by_label: std::collections::BTreeMap<String, ServiceFigures>,
    pub workers: usize,
    pub workers_busy: usize,
    pub timers_pending: usize,
    pub overload_events: u64,
    pub endless_events: u64,
    pub remote: Option<RemoteMetrics>,
}

/// What a kernel is made with.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's harbor id, the top byte of its handles.
    pub harbor: u8,
    /// Worker threads.
    pub threads: usize,
    /// Whether to measure each message's CPU time (`STAT cpu`).
    pub profile: bool,
    /// How long a message may run before the monitor reports it.
    pub monitor_period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            harbor: 0,
            threads: 1,
            profile: true,
            monitor_period: crate::monitor::PERIOD,
        }
    }
}

pub struct Kernel {
    handles: HandleRegistry<Arc<Context>>,
    env: Env,
    timer: Timer,
    modules: ModuleRegistry,
    scheduler: Scheduler,
    monitor: Monitor,
    harbor_id: u8,
    profile: bool,
    logger: AtomicU32,
    monitor_exit: AtomicU32,
    /// Live contexts, as skynet counts them: the process ends when it reaches 0.
    total: AtomicUsize,
    remote: RwLock<Option<Arc<dyn RemoteRouter>>>,
    /// What to do with the payload of an undeliverable message, by type
    /// (see [`Kernel::on_undeliverable`]).
    undeliverable: RwLock<Vec<(u8, ReleasePayload)>>,
    aborting: AtomicBool,
    exit: (Mutex<bool>, Condvar),
    /// Tells the monitor and timer threads to end (the workers have the
    /// scheduler's own flag).
    quit: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    overload_events: AtomicU64,
    endless_events: AtomicU64,
    /// Messages and CPU ns counted by retired services, by label.
    retired_figures: Mutex<std::collections::HashMap<Box<str>, (u64, u64)>>,
}

/// Gives back what the payload of an undeliverable message holds.
pub type ReleasePayload = fn(&[u8]);

thread_local! {
    /// The kernel this thread works for, if it is one of a kernel's threads
    /// or runs a service's `init`.
    static CURRENT: Cell<Option<&'static Kernel>> = const { Cell::new(None) };
}

/// The kernel of threads that belong to none (see [`Kernel::install`]).
static PROCESS: OnceLock<&'static Kernel> = OnceLock::new();

/// The kernel this thread works for: its own kernel's on a kernel thread,
/// else the process's. Panics when there is neither.
pub fn kernel() -> &'static Kernel {
    CURRENT
        .with(Cell::get)
        .or_else(|| PROCESS.get().copied())
        .expect("no kernel on this thread")
}

/// Makes `k` this thread's kernel until the guard goes.
struct Entered(Option<&'static Kernel>);

impl Entered {
    fn new(k: &'static Kernel) -> Self {
        Entered(CURRENT.with(|c| c.replace(Some(k))))
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

impl Kernel {
    /// A kernel with no service and no thread yet. It is never freed: its
    /// threads and services hold it for good.
    pub fn new(config: Config, env: Env) -> &'static Kernel {
        let threads = config.threads.max(1);
        Box::leak(Box::new(Kernel {
            handles: HandleRegistry::new(config.harbor),
            env,
            timer: Timer::new(),
            modules: ModuleRegistry::default(),
            scheduler: Scheduler::new(threads),
            monitor: Monitor::new(threads, config.monitor_period),
            harbor_id: config.harbor,
            profile: config.profile,
            logger: AtomicU32::new(0),
            monitor_exit: AtomicU32::new(0),
            total: AtomicUsize::new(0),
            remote: RwLock::new(None),
            undeliverable: RwLock::new(Vec::new()),
            aborting: AtomicBool::new(false),
            exit: (Mutex::new(false), Condvar::new()),
            quit: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            overload_events: AtomicU64::new(0),
            endless_events: AtomicU64::new(0),
            retired_figures: Mutex::new(std::collections::HashMap::new()),
        }))
    }

    /// Makes this the kernel of the threads that belong to no kernel. Fails
    /// if the process has one already.
    pub fn install(&'static self) -> Result<(), String> {
        PROCESS
            .set(self)
            .map_err(|_| "kernel already initialised".to_string())
    }

    /// Starts the worker threads, the monitor and the timer.
    pub fn start(&'static self) {
        let spawn = |name: String, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    let _entered = Entered::new(self);
                    body()
                })
                .expect("spawn a kernel thread")
        };
        let mut threads = self.threads.lock();
        for i in 0..self.scheduler.threads() {
            let mon = self.monitor.worker(i);
            threads.push(spawn(
                format!("worker-{i}"),
                Box::new(move || {
                    self.scheduler
                        .run_worker(i, |ctx, weight| self.dispatch(ctx, weight, mon))
                }),
            ));
        }
        threads.push(spawn(
            "monitor".into(),
            Box::new(move || self.monitor.run(&self.quit, |e| self.endless(e))),
        ));
        threads.push(spawn(
            "timer".into(),
            Box::new(move || {
                self.timer.run(
                    &self.quit,
                    |due| self.push_timeouts(due),
                    || self.scheduler.tick(),
                )
            }),
        ));
    }

    /// Tells the kernel's threads to end. Workers end once they are idle.
    pub fn stop(&self) {
        self.quit.store(true, Ordering::SeqCst);
        self.scheduler.quit();
    }

    /// Waits for the threads [`Kernel::start`] started (after [`Kernel::stop`]).
    #[cfg(test)]
    pub(crate) fn join(&self) {
        for t in std::mem::take(&mut *self.threads.lock()) {
            t.join().expect("a kernel thread panicked");
        }
    }

    pub fn harbor_id(&self) -> u8 {
        self.harbor_id
    }

    pub fn profile(&self) -> bool {
        self.profile
    }

    pub fn register_module(&self, name: &str, factory: ModuleFactory) {
        self.modules.register(name, factory);
    }

    /// skynet_getenv.
    pub fn getenv(&self, key: &str) -> Option<String> {
        self.env.get(key)
    }

    /// skynet_setenv: keys are written once; false (and no change) if `key`
    /// exists.
    pub fn setenv(&self, key: &str, value: &str) -> bool {
        self.env.set_new(key, value)
    }

    /// Centiseconds since the node started (skynet_now).
    pub fn now(&self) -> u64 {
        self.timer.now()
    }

    /// UTC seconds when the node started (skynet_starttime).
    pub fn starttime(&self) -> u32 {
        self.timer.starttime()
    }

    /// A RESPONSE with `session` to the service `ctx` in `ti` centiseconds,
    /// from source 0; at once (through its queue) when `ti <= 0`.
    pub fn timeout(&self, ctx: &Arc<Context>, ti: i32, session: i32) {
        if !self.timer.add(ctx.handle(), session, ti) {
            self.push_ctx(ctx, Message::new(0, session, ptype::RESPONSE, Vec::new()));
        }
    }

    /// Installs (or removes) the work a spinning worker does between looks at
    /// the run queue.
    pub fn set_idle_poller(&self, p: Option<Arc<dyn IdlePoller>>) {
        self.scheduler.set_idle_poller(p);
    }

    /// The same for the socket layer's connections (a slot of its own).
    pub fn set_socket_poller(&self, p: Option<Arc<dyn IdlePoller>>) {
        self.scheduler.set_socket_poller(p);
    }

    /// Binds the local name `name` (without its dot) to a live `handle`; false
    /// when the name is taken or the handle dead.
    pub fn bind_name(&self, name: &str, handle: u32) -> bool {
        self.handles.bind_name(name, handle)
    }

    /// The handle bound to the local name `name` (without its dot).
    pub fn find_name(&self, name: &str) -> Option<u32> {
        self.handles.find_name(name)
    }

    /// True when `handle` belongs to another node.
    pub fn is_remote(&self, handle: u32) -> bool {
        Handle(handle).is_remote(self.handles.harbor())
    }

    pub fn set_remote_router(&self, r: Option<Arc<dyn RemoteRouter>>) {
        *self.remote.write() = r;
    }

    pub fn remote_router(&self) -> Option<Arc<dyn RemoteRouter>> {
        self.remote.read().clone()
    }

    pub fn grab(&self, handle: u32) -> Option<Arc<Context>> {
        self.handles.grab(handle)
    }

    /// True when no service has a message queued and no worker is
    /// dispatching one (the drain at shutdown waits for this).
    pub fn is_quiescent(&self) -> bool {
        self.monitor.busy() == 0
            && self
                .handles
                .handles()
                .iter()
                .all(|h| self.handles.grab(*h).is_none_or(|c| c.queue_len() == 0))
    }

    /// The figures the metrics endpoint serves. Walks every live service:
    /// meant for a scrape every few seconds, not for a hot path.
    pub fn figures(&self) -> KernelFigures {
        let mut by_label = std::collections::BTreeMap::<String, ServiceFigures>::new();
        for (label, &(messages, cpu_ns)) in self.retired_figures.lock().iter() {
            let f = by_label.entry(label.to_string()).or_default();
            f.messages += messages;
            f.cpu_ns += cpu_ns;
        }
        let handles = self.handles.handles();
        for h in &handles {
            let Some(ctx) = self.handles.grab(*h) else {
                continue;
            };
            let f = by_label.entry(ctx.label().to_string()).or_default();
            f.instances += 1;
            f.messages += ctx.message_count.load(Ordering::Relaxed);
            f.cpu_ns += ctx.cpu_cost_ns.load(Ordering::Relaxed);
            f.queue_len += ctx.queue_len();
            f.memory += ctx.memory().unwrap_or(0);
        }
        KernelFigures {
            services: handles.len(),
            by_label,
            workers: self.scheduler.threads(),
            workers_busy: self.monitor.busy(),
            timers_pending: self.timer.pending(),
            overload_events: self.overload_events.load(Ordering::Relaxed),
            endless_events: self.endless_events.load(Ordering::Relaxed),
            remote: self.remote_router().and_then(|r| r.metrics()),
        }
    }

    /// Creates a service from `module` with `args`, synchronously running its
    /// `init` on this thread. Returns its handle, or None (logged) on failure.
    pub fn launch(&'static self, module: &str, args: &str) -> Option<u32> {
        let mut service = self.modules.create(module)?;
        let handle = self.handles.register(|h| Arc::new(Context::new(h)))?;
        let ctx = self.handles.grab(handle)?;
        ctx.set_label(crate::context::service_label(module, args));
        self.total.fetch_add(1, Ordering::SeqCst);
        let _entered = Entered::new(self);
        match service.init(&ctx, args) {
            Ok(()) => {
                *ctx.service.lock() = Some(service);
                // Logged before the service can run, so its own lines come after.
                if !ctx.is_retired() {
                    self.log(handle, &format!("LAUNCH {module} {args}"));
                }
                if ctx.queue.release_initial() {
                    self.scheduler.push(ctx.clone());
                } else if ctx.is_retired() {
                    // init retired itself; let a worker release it
                    self.schedule(&ctx);
                }
                Some(handle)
            }
            Err(e) => {
                if !e.is_empty() {
                    self.log(handle, &e);
                }
                self.log(handle, &format!("error: launch {module} FAILED"));
                self.handles.retire(handle);
                ctx.retired.store(true, Ordering::Release);
                for m in ctx.queue.drain() {
                    self.drop_message(handle, m);
                }
                drop(service);
                self.context_released();
                None
            }
        }
    }

    /// Delivers a message to a local handle. Gives the message back if the handle
    /// is not alive.
    pub fn push(&self, dest: u32, msg: Message) -> Result<(), Message> {
        match self.handles.grab(dest) {
            Some(ctx) => {
                self.push_ctx(&ctx, msg);
                Ok(())
            }
            None => Err(msg),
        }
    }

    pub(crate) fn push_ctx(&self, ctx: &Arc<Context>, msg: Message) {
        if ctx.queue.push(msg) == Pushed::NeedsScheduling {
            self.scheduler.push(ctx.clone());
        }
    }

    /// Delivers expired timeouts as RESPONSEs from source 0, in the given
    /// order; each run of one service's timeouts goes into its queue at once.
    /// Timeouts of services that are gone are dropped.
    pub(crate) fn push_timeouts(&self, due: &[Expired]) {
        for run in due.chunk_by(|a, b| a.handle == b.handle) {
            let Some(ctx) = self.handles.grab(run[0].handle) else {
                continue;
            };
            let msgs = run
                .iter()
                .map(|e| Message::new(0, e.session, ptype::RESPONSE, Vec::new()));
            if ctx.queue.push_batch(msgs) == Pushed::NeedsScheduling {
                self.scheduler.push(ctx);
            }
        }
    }

    fn schedule(&self, ctx: &Arc<Context>) {
        if ctx.queue.schedule() {
            self.scheduler.push(ctx.clone());
        }
    }

    /// Sends a message to a handle (local or remote). `sender` is the service
    /// calling send (it is told about failures); `source` is the source written in
    /// the message (differs from the sender for redirect).
    pub fn send(
        &self,
        sender: u32,
        source: u32,
        dest: u32,
        ptype: u8,
        session: i32,
        data: Vec<u8>,
    ) -> Result<(), SendError> {
        if data.len() > MAX_MESSAGE_SIZE {
            return Err(SendError::TooLarge(data.len()));
        }
        if dest == 0 {
            return Err(SendError::InvalidDestination(0));
        }
        let msg = Message::new(source, session, ptype, data);
        if self.is_remote(dest) {
            return match self.remote_router() {
                Some(r) => {
                    r.send_handle(dest, msg);
                    Ok(())
                }
                None => Err(SendError::InvalidDestination(dest)),
            };
        }
        match self.push(dest, msg) {
            Ok(()) => Ok(()),
            Err(msg) => {
                self.release_undeliverable(&msg);
                // A forwarded message's real origin is not the caller: tell it.
                if source != sender && source != 0 && msg.session != 0 && is_request(msg.ptype) {
                    let _ = self.push(
                        source,
                        Message::new(dest, msg.session, ptype::ERROR, Vec::new()),
                    );
                }
                Err(SendError::InvalidDestination(dest))
            }
        }
    }

    /// Registers what releases the payload of a message of type `ptype` that
    /// can never be delivered (its destination is gone, or died with it
    /// queued): a payload that names a resource, such as a multicast delivery
    /// holding a reference to its package, gives it back there.
    pub fn on_undeliverable(&self, ptype: u8, release: ReleasePayload) {
        self.undeliverable.write().push((ptype, release));
    }

    fn release_undeliverable(&self, msg: &Message) {
        for (t, release) in self.undeliverable.read().iter() {
            if *t == msg.ptype {
                release(&msg.data);
            }
        }
    }

    /// Sends to a text address: `":hex"`, `".localname"` or a global name.
    pub fn send_name(
        &self,
        sender: u32,
        source: u32,
        name: &str,
        ptype: u8,
        session: i32,
        data: Vec<u8>,
    ) -> Result<(), SendError> {
        match Address::parse(name) {
            Address::Handle(dest) => self.send(sender, source, dest, ptype, session, data),
            Address::Local(local) => match self.handles.find_name(local) {
                Some(dest) => self.send(sender, source, dest, ptype, session, data),
                None => Err(SendError::UnknownName(name.to_string())),
            },
            Address::Global(global) => {
                if data.len() > MAX_MESSAGE_SIZE {
                    return Err(SendError::TooLarge(data.len()));
                }
                match self.remote_router() {
                    Some(r) => {
                        r.send_name(global, Message::new(source, session, ptype, data));
                        Ok(())
                    }
                    None => Err(SendError::UnknownName(name.to_string())),
                }
            }
        }
    }

    /// Resolves `":hex"` or `".name"` to a handle (0 if unknown); a global
    /// name gives 0.
    pub fn query_name(&self, name: &str) -> u32 {
        self.resolve(Address::parse(name))
    }

    /// The handle of a parsed address (0 if unknown); a global name gives 0.
    pub fn resolve(&self, addr: Address) -> u32 {
        match addr {
            Address::Handle(h) => h,
            Address::Local(local) => self.handles.find_name(local).unwrap_or(0),
            Address::Global(_) => 0,
        }
    }

    /// Answers a message that can no longer be delivered: ERROR with its session
    /// back to its source, from the dead handle. Replies (RESPONSE, ERROR) and
    /// system messages (source 0) are dropped without an answer: nobody waits for
    /// them, and a stray ERROR could fail an unrelated call with the same session.
    /// A multicast delivery is not answered either (its session is a channel
    /// id, not a request); the package reference it carries is released.
    pub(crate) fn drop_message(&self, dead: u32, msg: Message) {
        self.release_undeliverable(&msg);
        if msg.source == 0 || !is_request(msg.ptype) {
            return;
        }
        let _ = self.send(
            dead,
            dead,
            msg.source,
            ptype::ERROR,
            msg.session,
            Vec::new(),
        );
    }

    /// Retires a handle: it stops receiving, its queued messages are answered with
    /// ERROR and its instance is released by a worker. Notifies the exit monitor.
    pub fn retire(&self, handle: u32) -> bool {
        let Some(ctx) = self.handles.retire(handle) else {
            return false;
        };
        ctx.retired.store(true, Ordering::Release);
        if handle == self.logger.load(Ordering::Relaxed) {
            self.logger.store(0, Ordering::Relaxed);
        }
        self.schedule(&ctx);
        true
    }

    /// skynet's `handle_exit`: logs, tells the exit monitor, retires.
    pub fn exit_service(&self, by: u32, handle: u32) {
        if handle == by {
            self.log(by, "KILL self");
        } else {
            self.log(by, &format!("KILL :{handle:x}"));
        }
        let monitor = self.monitor_exit.load(Ordering::Relaxed);
        if monitor != 0 {
            let _ = self.send(handle, handle, monitor, ptype::CLIENT, 0, Vec::new());
        }
        self.retire(handle);
    }

    /// Retires every service; the logger goes last so pending lines are written.
    pub fn abort(&self) {
        self.aborting.store(true, Ordering::SeqCst);
        let logger = self.logger.load(Ordering::Relaxed);
        for h in self.handles.handles() {
            if h != logger {
                self.retire(h);
            }
        }
        if self.total.load(Ordering::SeqCst) <= 1 && logger != 0 {
            self.retire_logger_gracefully();
        }
    }

    /// The logger goes last, after writing what it was sent.
    fn retire_logger_gracefully(&self) {
        let logger = self.logger.load(Ordering::Relaxed);
        if let Some(ctx) = self.handles.grab(logger) {
            ctx.set_graceful();
            self.retire(logger);
        }
    }

    /// Drops a retired service's instance (its Lua state, ...) once, closes
    /// its message log, and counts it gone.
    fn release(&self, service: &mut Option<Box<dyn Service>>, ctx: &Context) {
        if let Some(s) = service.take() {
            drop(s);
            ctx.logfile.lock().take();
            let mut retired = self.retired_figures.lock();
            let f = retired.entry(ctx.label().into()).or_default();
            f.0 += ctx.message_count.load(Ordering::Relaxed);
            f.1 += ctx.cpu_cost_ns.load(Ordering::Relaxed);
            drop(retired);
            self.context_released();
        }
    }

    fn context_released(&self) {
        let left = self.total.fetch_sub(1, Ordering::SeqCst) - 1;
        if self.aborting.load(Ordering::SeqCst) && left == 1 {
            self.retire_logger_gracefully();
        }
        if left == 0 {
            let (lock, cond) = &self.exit;
            *lock.lock() = true;
            cond.notify_all();
        }
    }

    /// Blocks until the last service is gone.
    pub fn wait_exit(&self) {
        let (lock, cond) = &self.exit;
        let mut done = lock.lock();
        while !*done {
            cond.wait(&mut done);
        }
    }

    pub fn set_logger(&self, handle: u32) {
        self.logger.store(handle, Ordering::Relaxed);
    }

    pub fn logger(&self) -> u32 {
        self.logger.load(Ordering::Relaxed)
    }

    pub fn set_monitor_exit(&self, handle: u32) {
        self.monitor_exit.store(handle, Ordering::Relaxed);
    }

    pub fn monitor_exit(&self) -> u32 {
        self.monitor_exit.load(Ordering::Relaxed)
    }

    /// A log line from `source`, to the logger service (skynet_error, which
    /// writes every line, errors or not); to stdout while there is no logger.
    pub fn log(&self, source: u32, text: &str) {
        self.log_bytes(source, text.as_bytes().to_vec());
    }

    /// A log line that may hold any bytes.
    pub fn log_bytes(&self, source: u32, text: Vec<u8>) {
        let logger = self.logger.load(Ordering::Relaxed);
        let text = if logger != 0 {
            match self.push(logger, Message::new(source, 0, ptype::TEXT, text)) {
                Ok(()) => return,
                Err(m) => m.data,
            }
        } else {
            text
        };
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "[:{source:08x}] ");
        let _ = out.write_all(&text);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }

    /// What the monitor's report of a message that does not end does.
    fn endless(&self, e: crate::monitor::Endless) {
        self.endless_events.fetch_add(1, Ordering::Relaxed);
        if let Some(ctx) = self.grab(e.destination) {
            ctx.set_endless();
        }
        self.log(
            0,
            &format!(
                "error: A message from [ :{:08x} ] to [ :{:08x} ] maybe in an endless loop (version = {})",
                e.source, e.destination, e.version
            ),
        );
    }

    /// Dispatches a share of `ctx`'s queue on a worker whose weight is
    /// `weight` (see the scheduler). Returns true if the worker still owns
    /// the queue, false once it found it empty.
    fn dispatch(&self, ctx: &Arc<Context>, weight: i32, mon: &WorkerMonitor) -> bool {
        let handle = ctx.handle();
        let mut service = ctx.service.lock();
        let mut n = 1usize;
        let mut i = 0usize;
        while i < n {
            let popped = ctx.queue.pop();
            // A graceful retirement (the logger at abort) handles what is queued first.
            let dropping = ctx.is_retired() && !ctx.is_graceful();
            if dropping || (ctx.is_retired() && popped.is_none()) {
                self.release(&mut service, ctx);
            }
            let Some(popped) = popped else {
                return false;
            };
            if dropping {
                self.drop_message(handle, popped.message);
                // keep draining: every late message is answered too
                continue;
            }
            if i == 0 && weight >= 0 {
                n = (ctx.queue.len() + 1) >> weight;
                n = n.max(1);
            }
            i += 1;
            if popped.overload != 0 {
                self.overload_events.fetch_add(1, Ordering::Relaxed);
                self.log(
                    handle,
                    &format!(
                        "error: May overload, message queue length = {}",
                        popped.overload
                    ),
                );
            }
            let msg = popped.message;
            scheduler::begin_message(!ctx.queue.is_empty());
            mon.trigger(msg.source, handle);
            match service.as_mut() {
                Some(s) => {
                    if let Some(log) = ctx.logfile.lock().as_mut() {
                        log.write(&msg, self.timer.now());
                    }
                    ctx.message_count.fetch_add(1, Ordering::Relaxed);
                    if self.profile {
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
}

#[cfg(test)]
mod tests;
