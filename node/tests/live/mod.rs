//! A node process the test drives while it runs: read its stdout until some
//! line shows up, signal it, then collect everything and let it end. Used by
//! tests that must not wait for the process to end by itself (see
//! `kernel.rs` for the tests of process exit). Needs `mod common;` next to
//! `mod live;` in the test crate.

#![allow(dead_code)]

use super::common::{repo_root, Node, Run};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub struct Live {
    child: Child,
    rx: Receiver<String>,
    pub lines: Vec<String>,
    err: Option<std::thread::JoinHandle<String>>,
}

impl Live {
    pub fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Live {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skynet-node"));
        cmd.args(args)
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start skynet-node");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(l) = line else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(err), &mut s);
            s
        });
        Live {
            child,
            rx,
            lines: Vec::new(),
            err: Some(err),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Collects stdout until a line contains `needle`; false at the deadline
    /// or when the process ends first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> bool {
        if self.lines.iter().any(|l| l.contains(needle)) {
            return true;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    self.lines.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Gives the process `grace` to end by itself, kills it otherwise, and
    /// returns everything it printed. `status` is None when it was killed.
    pub fn finish(mut self, grace: Duration) -> Run {
        let deadline = Instant::now() + grace;
        let status = loop {
            while let Ok(l) = self.rx.try_recv() {
                self.lines.push(l);
            }
            if let Some(st) = self.child.try_wait().unwrap() {
                break st.code();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        while let Ok(l) = self.rx.recv_timeout(Duration::from_millis(200)) {
            self.lines.push(l);
        }
        let stderr = self.err.take().unwrap().join().unwrap_or_default();
        Run {
            lines: std::mem::take(&mut self.lines),
            stderr,
            status,
        }
    }
}

/// A test that panics before `finish` must not leave its node running.
impl Drop for Live {
    fn drop(&mut self) {
        if self.err.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Writes the node's config to a fresh directory and returns its path.
pub fn write_config(text: &str, tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "skynet-t-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config");
    std::fs::write(&cfg, text).unwrap();
    cfg.display().to_string()
}

/// Runs the binary with `args` (and extra environment variables) until a
/// line contains `marker` or `timeout` passes, then allows one second for the
/// process to end by itself before killing it.
pub fn run_until(args: &[&str], envs: &[(&str, &str)], marker: &str, timeout: Duration) -> Run {
    let mut p = Live::spawn(args, envs);
    p.wait_for(marker, timeout);
    p.finish(Duration::from_secs(1))
}

/// Runs `node` until its start service prints `<start>: done` (or `timeout`).
pub fn run_to_done(node: &Node, timeout: Duration) -> Run {
    let cfg = write_config(&node.config_text(), &node.start);
    run_until(&[&cfg], &[], &format!("{}: done", node.start), timeout)
}
