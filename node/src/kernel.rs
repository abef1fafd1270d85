//! The kernel: the process-wide node state (handles, environment, timer, modules,
//! scheduler) and the operations every service uses: launch, send, retire, log.
//!
//! There is one kernel per process, as in skynet; [`kernel()`] reaches it.

use crate::context::Context;
use crate::env::Env;
use crate::handle::{HandleRegistry, HARBOR_SHIFT};
use crate::message::{ptype, Message, MAX_MESSAGE_SIZE};
use crate::module::{ModuleFactory, ModuleRegistry};
use crate::mq::Pushed;
use crate::scheduler::Scheduler;
use crate::timer::Timer;
use parking_lot::{Condvar, Mutex, RwLock};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

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
}

pub struct Kernel {
    pub handles: HandleRegistry<Arc<Context>>,
    pub env: Env,
    pub timer: Timer,
    pub modules: ModuleRegistry,
    pub(crate) scheduler: Scheduler,
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
}

/// Gives back what the payload of an undeliverable message holds.
pub type ReleasePayload = fn(&[u8]);

static KERNEL: OnceLock<Kernel> = OnceLock::new();

/// The process's kernel. Panics if [`init`] has not run.
pub fn kernel() -> &'static Kernel {
    KERNEL.get().expect("kernel not initialised")
}

/// Creates the process's kernel. Fails if one exists already.
pub fn init(
    harbor_id: u8,
    threads: usize,
    profile: bool,
    env: Env,
) -> Result<&'static Kernel, String> {
    let k = Kernel {
        handles: HandleRegistry::new(harbor_id),
        env,
        timer: Timer::new(),
        modules: ModuleRegistry::default(),
        scheduler: Scheduler::new(threads),
        harbor_id,
        profile,
        logger: AtomicU32::new(0),
        monitor_exit: AtomicU32::new(0),
        total: AtomicUsize::new(0),
        remote: RwLock::new(None),
        undeliverable: RwLock::new(Vec::new()),
        aborting: AtomicBool::new(false),
        exit: (Mutex::new(false), Condvar::new()),
    };
    KERNEL
        .set(k)
        .map_err(|_| "kernel already initialised".to_string())?;
    Ok(kernel())
}

impl Kernel {
    pub fn harbor_id(&self) -> u8 {
        self.harbor_id
    }

    pub fn profile(&self) -> bool {
        self.profile
    }

    pub fn register_module(&self, name: &str, factory: ModuleFactory) {
        self.modules.register(name, factory);
    }

    /// True when `handle` belongs to another node.
    pub fn is_remote(&self, handle: u32) -> bool {
        let h = handle & 0xff00_0000;
        h != 0 && h != self.handles.harbor_bits()
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

    /// Creates a service from `module` with `args`, synchronously running its
    /// `init`. Returns its handle, or None (logged) on failure.
    pub fn launch(&self, module: &str, args: &str) -> Option<u32> {
        let mut service = self.modules.create(module)?;
        let handle = self.handles.register(|h| Arc::new(Context::new(h)))?;
        let ctx = self.handles.grab(handle)?;
        self.total.fetch_add(1, Ordering::SeqCst);
        match service.init(&ctx, args) {
            Ok(()) => {
                *ctx.service.lock() = Some(service);
                // Logged before the service can run, so its own lines come after.
                if !ctx.is_retired() {
                    self.error(handle, &format!("LAUNCH {module} {args}"));
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
                    self.error(handle, &e);
                }
                self.error(handle, &format!("error: launch {module} FAILED"));
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

    /// Sends to a string address: `":hex"`, `".localname"` or a global name.
    pub fn send_name(
        &self,
        sender: u32,
        source: u32,
        name: &str,
        ptype: u8,
        session: i32,
        data: Vec<u8>,
    ) -> Result<(), SendError> {
        if let Some(hex) = name.strip_prefix(':') {
            let dest = u32::from_str_radix(hex, 16).unwrap_or(0);
            return self.send(sender, source, dest, ptype, session, data);
        }
        if let Some(local) = name.strip_prefix('.') {
            return match self.handles.find_name(local) {
                Some(dest) => self.send(sender, source, dest, ptype, session, data),
                None => Err(SendError::UnknownName(name.to_string())),
            };
        }
        if data.len() > MAX_MESSAGE_SIZE {
            return Err(SendError::TooLarge(data.len()));
        }
        match self.remote_router() {
            Some(r) => {
                r.send_name(name, Message::new(source, session, ptype, data));
                Ok(())
            }
            None => Err(SendError::UnknownName(name.to_string())),
        }
    }

    /// Resolves `":hex"` or `".name"` to a handle (0 if unknown).
    pub fn query_name(&self, name: &str) -> u32 {
        if let Some(hex) = name.strip_prefix(':') {
            u32::from_str_radix(hex.trim(), 16).unwrap_or(0)
        } else if let Some(local) = name.strip_prefix('.') {
            self.handles.find_name(local).unwrap_or(0)
        } else {
            0
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
            self.error(by, "KILL self");
        } else {
            self.error(by, &format!("KILL :{handle:x}"));
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

    /// Called by a worker after releasing a retired instance.
    pub(crate) fn context_released(&self) {
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

    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
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

    /// skynet_error: a log line from `source` to the logger service.
    pub fn error(&self, source: u32, text: &str) {
        self.error_bytes(source, text.as_bytes().to_vec());
    }

    /// A log line that may hold any bytes.
    pub fn error_bytes(&self, source: u32, text: Vec<u8>) {
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

    /// The full handle of local id `id` on this node.
    pub fn local_handle(&self, id: u32) -> u32 {
        (id & crate::handle::HANDLE_MASK) | ((self.harbor_id as u32) << HARBOR_SHIFT)
    }
}

/// Requests expect an answer; replies and notifications do not, nor does a
/// multicast message (its session is a channel id).
fn is_request(t: u8) -> bool {
    t != ptype::RESPONSE && t != ptype::ERROR && t != ptype::MULTICAST
}
