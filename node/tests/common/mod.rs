//! Runs real `skynet-node` processes for tests: writes a config for a single
//! node (harbor 0) whose `start` service is one of the Lua test services in the
//! repository's `test/` directory, and collects what the node prints.
//! `lua_state` makes bare Lua states for the tests that drive the VM itself.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod lua_state;
pub mod server;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// What a node printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    /// stdout lines, in order.
    pub lines: Vec<String>,
    pub stderr: String,
    /// Exit status, None if it had to be killed at the deadline.
    pub status: Option<i32>,
}

impl Run {
    /// The log lines without their `[:xxxxxxxx] ` prefix.
    pub fn texts(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|l| strip_prefix(l).to_string())
            .collect()
    }

    /// True if some line contains `needle`.
    pub fn has(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }

    /// Index of the first line containing `needle`.
    pub fn find(&self, needle: &str) -> Option<usize> {
        self.lines.iter().position(|l| l.contains(needle))
    }

    /// Panics (showing the output) unless `needle` was printed.
    pub fn expect(&self, needle: &str) -> usize {
        self.find(needle)
            .unwrap_or_else(|| panic!("missing {needle:?} in output:\n{}", self.dump()))
    }

    /// Panics unless the needles appear in this order.
    pub fn expect_order(&self, needles: &[&str]) {
        let mut from = 0;
        for n in needles {
            match self.lines[from..].iter().position(|l| l.contains(n)) {
                Some(i) => from += i + 1,
                None => panic!(
                    "missing {n:?} (in order {needles:?}) in output:\n{}",
                    self.dump()
                ),
            }
        }
    }

    /// Lines whose text (after the prefix) starts with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> Vec<String> {
        self.texts()
            .into_iter()
            .filter(|t| t.starts_with(prefix))
            .collect()
    }

    /// The texts `<tag>: ...` printed by the services, without the tag.
    pub fn said(&self, tag: &str) -> Vec<String> {
        let prefix = format!("{tag}: ");
        self.texts()
            .into_iter()
            .filter_map(|t| t.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    /// Panics unless `tag` printed exactly `line` (after its tag).
    pub fn says(&self, tag: &str, line: &str) {
        let all = self.said(tag);
        assert!(
            all.iter().any(|l| l == line),
            "{tag} did not say {line:?}; it said:\n{}\n--- full output ---\n{}",
            all.join("\n"),
            self.dump()
        );
    }

    /// Panics unless `tag` printed these lines, in this order, with nothing
    /// else of its own in between.
    pub fn says_in_a_row(&self, tag: &str, lines: &[&str]) {
        let all = self.said(tag);
        let ok = all.windows(lines.len()).any(|w| w == lines);
        assert!(
            ok,
            "{tag} did not say {lines:#?} in a row; it said:\n{}\n--- full output ---\n{}",
            all.join("\n"),
            self.dump()
        );
    }

    /// Panics unless `tag` printed these lines in this order (other lines
    /// may come between).
    pub fn says_in_order(&self, tag: &str, lines: &[&str]) {
        let all = self.said(tag);
        let mut at = 0;
        for want in lines {
            match all[at..].iter().position(|l| l == want) {
                Some(i) => at += i + 1,
                None => panic!(
                    "{tag} did not say {want:?} (after line {at}); it said:\n{}\n--- full output ---\n{}",
                    all.join("\n"),
                    self.dump()
                ),
            }
        }
    }

    /// Panics unless `tag` printed exactly `lines` and nothing else.
    pub fn said_exactly(&self, tag: &str, lines: &[&str]) {
        let got = self.said(tag);
        if got != lines {
            let first = got
                .iter()
                .zip(lines)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(lines.len()));
            panic!(
                "{tag}: line {first} differs\n got: {:?}\nwant: {:?}\n--- full output ---\n{}",
                got.get(first),
                lines.get(first),
                self.dump()
            );
        }
    }

    pub fn dump(&self) -> String {
        format!(
            "{}\n--- stderr ---\n{}\nstatus {:?}",
            self.lines.join("\n"),
            self.stderr,
            self.status
        )
    }
}

pub fn strip_prefix(line: &str) -> &str {
    if line.starts_with("[:") && line.len() >= 12 && &line[10..12] == "] " {
        &line[12..]
    } else {
        line
    }
}

/// A node configuration for tests.
pub struct Node {
    pub start: String,
    pub extra: Vec<(String, String)>,
    pub timeout: Duration,
    pub stdin: Option<String>,
}

impl Node {
    pub fn new(start: &str) -> Self {
        Node {
            start: start.to_string(),
            extra: Vec::new(),
            timeout: Duration::from_secs(30),
            stdin: None,
        }
    }

    /// Adds a raw config line `key = value` (value is Lua source).
    pub fn config(mut self, key: &str, lua_value: &str) -> Self {
        self.extra.push((key.to_string(), lua_value.to_string()));
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.to_string());
        self
    }

    pub fn config_text(&self) -> String {
        let root = repo_root();
        let mut s = format!(
            "root = \"{}/\"\nthread = 2\nharbor = 0\nstart = \"{}\"\n\
             luaservice = root..\"service/?.lua;\"..root..\"test/?.lua;\"..root..\"examples/?.lua\"\n\
             lualoader = root..\"lualib/loader.lua\"\n\
             lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua;\"..root..\"test/?.lua\"\n",
            root.display(),
            self.start
        );
        for (k, v) in &self.extra {
            s.push_str(&format!("{k} = {v}\n"));
        }
        s
    }

    /// Runs the node until it exits or the deadline passes.
    pub fn run(&self) -> Run {
        let dir =
            std::env::temp_dir().join(format!("skynet-test-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("config");
        std::fs::write(&cfg, self.config_text()).unwrap();
        run_binary(
            &[cfg.to_str().unwrap()],
            self.stdin.as_deref(),
            self.timeout,
        )
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Runs `skynet-node` with `args`, collecting output until it exits or `timeout`.
pub fn run_binary(args: &[&str], stdin: Option<&str>, timeout: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_skynet-node"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start skynet-node");
    if let Some(text) = stdin {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        let text = text.to_string();
        std::thread::spawn(move || {
            let _ = input.write_all(text.as_bytes());
            // keep stdin open a little so the console can read before EOF
            std::thread::sleep(Duration::from_millis(500));
        });
    }
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    let err = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(err), &mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    let status = loop {
        while let Ok(l) = rx.try_recv() {
            lines.push(l);
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // drain what is left
    let drain_until = Instant::now() + Duration::from_secs(2);
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(l) => lines.push(l),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(_) if Instant::now() > drain_until => break,
            Err(_) => {}
        }
    }
    let stderr = err_reader.join().unwrap_or_default();
    Run {
        lines,
        stderr,
        status,
    }
}
