//! Node start-up: reads the settings skynet's main reads (with the same defaults,
//! written back to the env), starts the kernel threads, launches the logger and
//! the bootstrap service, and waits until the last service is gone.

use crate::env::Env;
use crate::kernel::{self, kernel, Kernel};
use crate::message::{ptype, Message};

/// A start-up failure, printed as one line before exiting with status 1.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Invalid thread {0} , should be in [1,1024]")]
    Thread(String),
    #[error("Invalid harbor {0} , should be in [0,255]")]
    Harbor(String),
    #[error("Can't launch {0} service")]
    Logger(String),
    #[error("Bootstrap error : {0}")]
    Bootstrap(String),
    #[error("{0}")]
    Kernel(String),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
}

/// glibc malloc settings for a process that creates many small Lua heaps: one
/// arena (worker threads otherwise each grow their own heap in small mprotect
/// steps) that grows and shrinks in large steps (its effect on `newservice`:
/// docs/performance.md).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes plain integers and only sets glibc's malloc
    // parameters (under malloc's own lock); no memory is passed to it.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}

/// Starts a node from `env` and blocks until it ends. Returns the exit status.
pub fn run(env: Env) -> Result<i32, StartError> {
    tune_malloc();
    let thread_s = env.opt("thread", "8");
    let threads: usize = match thread_s.trim().parse() {
        Ok(n) if (1..=1024).contains(&n) => n,
        _ => return Err(StartError::Thread(thread_s)),
    };
    env.opt("cpath", "./cservice/?.so");
    let harbor_s = env.opt("harbor", "1");
    let harbor: u8 = harbor_s
        .trim()
        .parse()
        .map_err(|_| StartError::Harbor(harbor_s.clone()))?;
    let bootstrap = env.opt("bootstrap", "snlua bootstrap");
    let logservice = env.opt("logservice", "logger");
    let logger_arg = env.get("logger").unwrap_or_default();
    let profile = env.opt("profile", "true") != "false";

    let config = kernel::Config {
        harbor,
        threads,
        profile,
        ..kernel::Config::default()
    };
    let k = Kernel::new(config, env);
    k.install().map_err(StartError::Kernel)?;
    crate::tracelog::install();
    crate::register_builtin_modules(k);
    let drain = crate::shutdown::drain_time(k.getenv("drain_time").as_deref())
        .map_err(StartError::Kernel)?;
    k.start();
    spawn_signal_thread(drain);
    if let Some(addr) = env_metrics(k) {
        let bound = crate::metrics::start(k, &addr)?;
        k.log(0, &format!("metrics on http://{bound}/metrics"));
    }

    k.launch(&logservice, &logger_arg)
        .ok_or_else(|| StartError::Logger(logservice.clone()))?;
    let (module, args) = match bootstrap.split_once([' ', '\t']) {
        Some((m, a)) => (m.to_string(), a.trim().to_string()),
        None => (bootstrap.clone(), String::new()),
    };
    if k.launch(&module, &args).is_none() {
        // Let the logger print what went wrong before leaving.
        std::thread::sleep(std::time::Duration::from_millis(50));
        return Err(StartError::Bootstrap(bootstrap));
    }
    k.wait_exit();
    k.stop();
    Ok(0)
}

/// The `metrics` config key, if set to something.
fn env_metrics(k: &Kernel) -> Option<String> {
    k.getenv("metrics")
        .filter(|a| !a.trim().is_empty() && a != "false")
}

/// SIGHUP asks the logger to reopen its file (log rotation); SIGTERM drains
/// the node and exits 0 ([`crate::shutdown`]), a second one exits at once.
fn spawn_signal_thread(drain: std::time::Duration) {
    use signal_hook::consts::{SIGHUP, SIGTERM};
    use signal_hook::iterator::Signals;
    let Ok(mut signals) = Signals::new([SIGHUP, SIGTERM]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut draining = false;
            for sig in signals.forever() {
                let k = kernel();
                if sig == SIGTERM {
                    if draining {
                        k.log(0, "SIGTERM again: exit 0 now");
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        std::process::exit(0);
                    }
                    draining = true;
                    let _ = std::thread::Builder::new()
                        .name("drain".into())
                        .spawn(move || {
                            crate::shutdown::drain(k, drain);
                            std::process::exit(0);
                        });
                    continue;
                }
                let logger = k.logger();
                if logger != 0 {
                    let _ = k.push(logger, Message::new(0, 0, ptype::SYSTEM, Vec::new()));
                }
            }
        });
}
