//! Outside servers (redis-server, mariadbd; [`Process`] lives in
//! `skynet_node::outside`) that a test starts on loopback,
//! and the thread that SIGKILLs one while a request of the node waits there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use skynet_node::outside::Process;

/// Whether the server a test needs is installed (`found`). When it is not,
/// the test fails under CI=true and otherwise says it skips.
pub fn installed_or_skip(found: bool, test: &str, package: &str) -> bool {
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{package} is not installed (scripts/test.sh installs it)"
        );
        eprintln!("SKIPPED {test} test: {package} is not installed");
    }
    found
}

/// A thread that SIGKILLs a server once a request waits on it.
pub struct Killer {
    thread: JoinHandle<bool>,
    stop: Arc<AtomicBool>,
}

impl Killer {
    /// Asks `waiting` every `every`, for at most `within`, whether a request
    /// of the node is waiting on `server`; at the first yes kills it.
    pub fn start(
        server: &Process,
        within: Duration,
        every: Duration,
        mut waiting: impl FnMut() -> bool + Send + 'static,
    ) -> Killer {
        let victim = server.child.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + within;
            while Instant::now() < deadline && !stopped.load(Ordering::SeqCst) {
                if waiting() {
                    let mut c = victim.lock().unwrap();
                    c.kill().unwrap();
                    c.wait().unwrap();
                    return true;
                }
                std::thread::sleep(every);
            }
            false
        });
        Killer { thread, stop }
    }

    /// Stops asking (the node has ended); true if the server was killed.
    pub fn finish(self) -> bool {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}
