//! Outside servers (redis-server, mariadbd) that a test starts on loopback,
//! and the thread that SIGKILLs one while a request of the node waits there.

use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A port the kernel hands out, freed again: for servers that have no
/// port 0.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

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

/// A server child listening on `port`, with its files in `dir`; killed (and
/// `dir` removed) on drop.
pub struct Process {
    pub child: Arc<Mutex<Child>>,
    pub port: u16,
    pub dir: PathBuf,
}

impl Process {
    pub fn new(child: Child, port: u16, dir: PathBuf) -> Process {
        Process {
            child: Arc::new(Mutex::new(child)),
            port,
            dir,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
