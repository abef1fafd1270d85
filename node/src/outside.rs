//! Outside servers started on loopback for the tests (`node/tests/`) and
//! `skynet-bench redis`; not part of the runtime. A [`Process`] is a server
//! child with its own temp dir, killed (and the dir removed) on drop;
//! [`start_redis`] starts a `redis-server` without persistence.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A port the kernel hands out, freed again: for servers that have no
/// port 0.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("its address").port()
}

/// A server child listening on `port`, with its files in `dir`; killed (and
/// `dir` removed) on drop.
pub struct Process {
    /// Shared so that a test can kill the server from another thread.
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

/// Whether a `redis-server` program can be run.
pub fn redis_available() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Starts a redis-server on a free loopback port with `extra` arguments
/// (`--save "" --appendonly no`, its dir a new temp dir) and waits (up to
/// 10 s) until it answers PING, or NOAUTH for a server with a password.
pub fn start_redis(extra: &[&str]) -> Result<Process, String> {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("skynet-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start redis-server: {e}"))?;
    let server = Process::new(child, port, dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(reply) = redis_query(port, &["PING"]) {
            if reply.starts_with("+PONG") || reply.starts_with("-NOAUTH") {
                return Ok(server);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("redis-server on port {port} did not come up"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One redis command in the protocol's form (an array of bulk strings).
pub fn redis_command(args: &[&str]) -> String {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    req
}

/// Sends one redis command on a new connection and returns the raw reply
/// (what one read brings).
pub fn redis_query(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(redis_command(args).as_bytes())?;
    let mut buf = vec![0u8; 16384];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}
