//! Helpers for multi-node tests: run `skynet-master` and `skynet-node`
//! processes on loopback, write their configs, watch their output.
//!
//! The binaries are looked up next to the test executable's directory
//! (`target/<profile>/`), so build them first: `cargo build --workspace`
//! (scripts/test.sh does). `SKYNET_NODE_BIN` / `SKYNET_MASTER_BIN` override
//! the paths.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The repository root (where `service/`, `lualib/` and `test/` are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Path of a workspace binary (`skynet-node`, `skynet-master`).
pub fn bin(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Ok(p) = std::env::var(&var) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not found: build the workspace first (cargo build --workspace) or set {var}",
        p.display()
    );
    p
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "skynet-cluster-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Cluster tests measure timings on a small machine: run them one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// One output line and when the test saw it.
#[derive(Clone, Debug)]
pub struct Line {
    pub at: Instant,
    pub text: String,
}

#[derive(Default)]
struct Output {
    lines: Vec<Line>,
    /// Pipes (stdout, stderr) not yet at their end.
    open: usize,
}

/// A child process whose stdout and stderr are collected line by line.
/// Killed (SIGKILL) when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    out: Arc<(Mutex<Output>, Condvar)>,
    /// Lines before this index have been consumed by `wait_for_next`.
    cursor: usize,
}

fn pump(r: impl Read + Send + 'static, out: Arc<(Mutex<Output>, Condvar)>, prefix: &'static str) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(l) = line else { break };
            let (m, c) = &*out;
            m.lock().unwrap().lines.push(Line {
                at: Instant::now(),
                text: format!("{prefix}{l}"),
            });
            c.notify_all();
        }
        let (m, c) = &*out;
        m.lock().unwrap().open -= 1;
        c.notify_all();
    });
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        let out = Arc::new((
            Mutex::new(Output {
                open: 2,
                ..Output::default()
            }),
            Condvar::new(),
        ));
        pump(child.stdout.take().unwrap(), out.clone(), "");
        pump(child.stderr.take().unwrap(), out.clone(), "[stderr] ");
        Proc {
            name: name.to_string(),
            child,
            out,
            cursor: 0,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<Line> {
        self.out.0.lock().unwrap().lines.clone()
    }

    /// Count of lines containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.text.contains(needle))
            .count()
    }

    pub fn has(&self, needle: &str) -> bool {
        self.count(needle) > 0
    }

    /// The first line containing `needle` (waiting up to `timeout`).
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<Line> {
        self.wait_from(0, needle, timeout).map(|(_, l)| l)
    }

    /// The first line after the last one returned by `wait_next` that
    /// contains `needle`.
    pub fn wait_next(&mut self, needle: &str, timeout: Duration) -> Option<Line> {
        let (i, l) = self.wait_from(self.cursor, needle, timeout)?;
        self.cursor = i + 1;
        Some(l)
    }

    fn wait_from(&self, from: usize, needle: &str, timeout: Duration) -> Option<(usize, Line)> {
        let deadline = Instant::now() + timeout;
        let (m, c) = &*self.out;
        let mut g = m.lock().unwrap();
        loop {
            if let Some((i, l)) = g
                .lines
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, l)| l.text.contains(needle))
            {
                return Some((i, l.clone()));
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            g = c.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Like `wait_for`, but panics with every process's output on timeout.
    pub fn expect(&self, needle: &str, timeout: Duration, all: &[&Proc]) -> Line {
        match self.wait_for(needle, timeout) {
            Some(l) => l,
            None => panic!(
                "{}: no line containing {needle:?} within {timeout:?}\n{}",
                self.name,
                dump(all)
            ),
        }
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // What it wrote before exiting may still be in the pipes.
                self.wait_output_closed(Instant::now() + Duration::from_secs(2));
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until both pipes are at their end (every line is read), or
    /// `until` (a child of the process may hold them open).
    fn wait_output_closed(&self, until: Instant) {
        let (m, c) = &*self.out;
        let mut o = m.lock().unwrap();
        while o.open > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            o = c.wait_timeout(o, left).unwrap().0;
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill9(&mut self) -> Instant {
        let at = Instant::now();
        let _ = self.child.kill();
        let _ = self.child.wait();
        at
    }

    pub fn text(&self) -> String {
        let mut s = format!("===== {} =====\n", self.name);
        for l in self.lines() {
            s.push_str(&l.text);
            s.push('\n');
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.pid(), libc::SIGCONT);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` from `127.0.0.1:port` over plain HTTP/1.0: the status and the
/// body (bounded by a 10 s timeout).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {out:?}")))?;
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

/// All the output of `procs`, for failure messages.
pub fn dump(procs: &[&Proc]) -> String {
    procs.iter().map(|p| p.text()).collect()
}

/// Starts `skynet-master --listen 127.0.0.1:<port>`.
pub fn start_master(port: u16) -> Proc {
    start_master_with(port, &[])
}

/// [`start_master`] with more arguments.
pub fn start_master_with(port: u16, args: &[&str]) -> Proc {
    let mut cmd = Command::new(bin("skynet-master"));
    cmd.arg("--listen").arg(format!("127.0.0.1:{port}"));
    cmd.args(args);
    Proc::spawn("master", cmd)
}

/// A node's configuration.
#[derive(Clone)]
pub struct NodeConfig {
    pub harbor: u8,
    pub master_port: u16,
    pub port: u16,
    pub role: String,
    /// Host DATACENTER and SERVICE (`global_services = true`).
    pub global_services: bool,
    /// Extra `key = value` lines (value is Lua source).
    pub extra: Vec<(String, String)>,
}

impl NodeConfig {
    pub fn new(harbor: u8, master_port: u16, role: &str) -> NodeConfig {
        NodeConfig {
            harbor,
            master_port,
            port: free_port(),
            role: role.to_string(),
            global_services: false,
            extra: Vec::new(),
        }
    }

    pub fn text(&self) -> String {
        let root = repo_root();
        let mut s = format!(
            "root = \"{}/\"\nthread = 2\nharbor = {}\nmaster = \"127.0.0.1:{}\"\n\
             address = \"127.0.0.1:{}\"\nstart = \"cluster_main\"\ncluster_role = \"{}\"\n\
             luaservice = root..\"service/?.lua;\"..root..\"test/?.lua\"\n\
             lualoader = root..\"lualib/loader.lua\"\n\
             lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua\"\n",
            root.display(),
            self.harbor,
            self.master_port,
            self.port,
            self.role
        );
        if self.global_services {
            s.push_str("global_services = true\n");
        }
        for (k, v) in &self.extra {
            s.push_str(&format!("{k} = {v}\n"));
        }
        s
    }

    /// Writes the config to a fresh directory and starts the node.
    pub fn start(&self) -> Proc {
        let dir = temp_dir(&format!("h{}", self.harbor));
        let cfg = dir.join("config");
        std::fs::write(&cfg, self.text()).unwrap();
        start_node(&format!("node{}", self.harbor), &cfg)
    }
}

pub fn start_node(name: &str, config: &Path) -> Proc {
    let mut cmd = Command::new(bin("skynet-node"));
    cmd.arg(config);
    Proc::spawn(name, cmd)
}

/// Lines of `p` whose text contains "cluster_main: FAIL".
pub fn failures(p: &Proc) -> Vec<String> {
    p.lines()
        .into_iter()
        .filter(|l| l.text.contains("cluster_main: FAIL"))
        .map(|l| l.text)
        .collect()
}

/// Prints the `cluster_main: ok ...` lines of `p` (visible with --nocapture).
pub fn report(p: &Proc) {
    for l in p.lines() {
        if let Some(i) = l.text.find("cluster_main: ") {
            println!("{}: {}", p.name, &l.text[i + 14..]);
        }
    }
}
