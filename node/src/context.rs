//! A service context: the kernel's record of one live service (its handle, queue,
//! instance, session counter and statistics), and [`Service`], what the instance
//! it runs implements. (The modules that create instances by name are in
//! [`crate::module`].)

use crate::log::MessageLog;
use crate::message::Message;
use crate::mq::MessageQueue;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// One running service instance.
pub trait Service: Send {
    /// Runs synchronously inside `LAUNCH`, on the caller's thread. An error makes
    /// the launch fail (the kernel logs it and answers queued messages with ERROR).
    fn init(&mut self, ctx: &Arc<Context>, args: &str) -> Result<(), String>;

    /// Handles one message. Only one worker at a time calls this for a service.
    fn dispatch(&mut self, ctx: &Arc<Context>, msg: Message);
}

/// Called from any thread by the `SIGNAL` command; must be thread safe.
pub type SignalHandler = Arc<dyn Fn(i32) + Send + Sync>;

/// Reports the bytes a service's instance holds (snlua: its Lua heap), from
/// any thread, for the metrics.
pub type MemoryProbe = Arc<dyn Fn() -> usize + Send + Sync>;

pub struct Context {
    handle: u32,
    pub(crate) queue: MessageQueue,
    pub(crate) service: Mutex<Option<Box<dyn Service>>>,
    session: AtomicI32,
    pub(crate) retired: AtomicBool,
    graceful: AtomicBool,
    endless: AtomicBool,
    pub(crate) message_count: AtomicU64,
    pub(crate) cpu_cost_ns: AtomicU64,
    /// hpc() at the start of the message being dispatched (0 when idle).
    pub(crate) cpu_start_ns: AtomicU64,
    /// The `LOGON` log, if one is open.
    pub(crate) logfile: Mutex<Option<MessageLog>>,
    signal: OnceLock<SignalHandler>,
    memory: OnceLock<MemoryProbe>,
    /// What the metrics call this service (see [`service_label`]).
    label: OnceLock<Box<str>>,
}

/// The metrics label of a service launched as `module args`: the script for
/// `snlua` (`snlua agent 3` is `agent`), else the module. Per name, not per
/// handle, so that thousands of player agents make one series.
pub fn service_label<'a>(module: &'a str, args: &'a str) -> &'a str {
    match args.split_whitespace().next() {
        Some(script) if module == "snlua" => script,
        _ => module,
    }
}

impl Context {
    pub(crate) fn new(handle: u32) -> Self {
        Context {
            handle,
            queue: MessageQueue::new(),
            service: Mutex::new(None),
            session: AtomicI32::new(0),
            retired: AtomicBool::new(false),
            graceful: AtomicBool::new(false),
            endless: AtomicBool::new(false),
            message_count: AtomicU64::new(0),
            cpu_cost_ns: AtomicU64::new(0),
            cpu_start_ns: AtomicU64::new(0),
            logfile: Mutex::new(None),
            signal: OnceLock::new(),
            memory: OnceLock::new(),
            label: OnceLock::new(),
        }
    }

    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// A new session: positive, increasing, wrapping from i32::MAX back to 1.
    pub fn new_session(&self) -> i32 {
        let next = |s: i32| if (0..i32::MAX).contains(&s) { s + 1 } else { 1 };
        let prev = self
            .session
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| Some(next(s)))
            .unwrap();
        next(prev)
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Retire after handling the messages already queued (used for the logger).
    pub(crate) fn set_graceful(&self) {
        self.graceful.store(true, Ordering::Release);
    }

    pub(crate) fn is_graceful(&self) -> bool {
        self.graceful.load(Ordering::Acquire)
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn set_endless(&self) {
        self.endless.store(true, Ordering::Relaxed);
    }

    /// True once after the monitor flagged this service (then reset).
    pub fn take_endless(&self) -> bool {
        self.endless.swap(false, Ordering::Relaxed)
    }

    pub fn set_signal_handler(&self, f: SignalHandler) {
        let _ = self.signal.set(f);
    }

    pub fn signal(&self, sig: i32) {
        if let Some(f) = self.signal.get() {
            f(sig)
        }
    }

    pub fn set_memory_probe(&self, f: MemoryProbe) {
        let _ = self.memory.set(f);
    }

    /// Bytes the instance reports holding, if it reports any.
    pub fn memory(&self) -> Option<usize> {
        self.memory.get().map(|f| f())
    }

    pub(crate) fn set_label(&self, label: &str) {
        let _ = self.label.set(label.into());
    }

    pub fn label(&self) -> &str {
        self.label.get().map_or("", |l| l)
    }

    #[cfg(test)]
    pub(crate) fn set_session_for_test(&self, s: i32) {
        self.session.store(s, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_positive_and_wrap_to_one() {
        let c = Context::new(1);
        assert_eq!(c.new_session(), 1);
        assert_eq!(c.new_session(), 2);
        c.set_session_for_test(i32::MAX - 1);
        assert_eq!(c.new_session(), i32::MAX);
        assert_eq!(c.new_session(), 1);
        assert_eq!(c.new_session(), 2);
    }

    #[test]
    fn labels_name_the_script_for_snlua_and_the_module_otherwise() {
        assert_eq!(service_label("snlua", "agent 3 x"), "agent");
        assert_eq!(service_label("snlua", ""), "snlua");
        assert_eq!(service_label("gate", "S 0.0.0.0:1 8"), "gate");
        assert_eq!(service_label("logger", ""), "logger");
    }
}
