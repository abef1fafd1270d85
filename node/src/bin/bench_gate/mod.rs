//! `skynet-bench gate`: 10,000 concurrent clients on loopback against a node
//! running bench/bench_gate.lua, first with our Lua gate, then with our
//! native gate. Figures: the node's RSS per idle connection, and echo
//! round trips per second (client -> gate -> agent -> client) with every
//! client keeping a few frames in flight.
//!
//! `SKYNET_C=/path/to/skynet` (a built C skynet tree) adds the same runs on
//! C skynet with its own Lua gate and C gate, for comparison.

use super::{free_port, logged_config, print_figure, sibling, spawn, LogTail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLIENTS: usize = 10_000;
/// Frames each client keeps in flight while measuring throughput.
const WINDOW: usize = 4;
const PAYLOAD: usize = 32;
const MEASURE: Duration = Duration::from_secs(5);

/// Raises the soft limit of open files to the hard one (the node inherits
/// it); returns the limit now in force.
fn raise_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct behind a valid pointer to a local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return 0;
    }
    if r.rlim_cur < r.rlim_max {
        r.rlim_cur = r.rlim_max;
        // SAFETY: setrlimit reads the struct behind a valid pointer; the soft
        // limit asked for is within the hard one.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) };
        // SAFETY: as above.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    }
    r.rlim_cur
}

/// Resident set of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn frame(p: &[u8]) -> Vec<u8> {
    let mut v = (p.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(p);
    v
}

async fn open_client(port: u16) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    s.write_all(&frame(b"hello")).await?;
    let mut back = [0u8; 7];
    s.read_exact(&mut back).await?;
    Ok(s)
}

/// Connects `CLIENTS` clients (each one answered once), at most 256
/// connecting at a time.
async fn connect_all(port: u16) -> std::io::Result<Vec<TcpStream>> {
    let mut out = Vec::with_capacity(CLIENTS);
    while out.len() < CLIENTS {
        let batch = (CLIENTS - out.len()).min(256);
        let tasks: Vec<_> = (0..batch)
            .map(|_| tokio::spawn(open_client(port)))
            .collect();
        for t in tasks {
            out.push(t.await.expect("client task")?);
        }
    }
    Ok(out)
}

async fn echo_load(clients: Vec<TcpStream>) -> (u64, Duration) {
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + MEASURE;
    let burst: Vec<u8> = (0..WINDOW).flat_map(|_| frame(&[7u8; PAYLOAD])).collect();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut s| {
            let count = count.clone();
            let burst = burst.clone();
            tokio::spawn(async move {
                let mut back = vec![0u8; burst.len()];
                while Instant::now() < deadline {
                    if s.write_all(&burst).await.is_err() || s.read_exact(&mut back).await.is_err()
                    {
                        return;
                    }
                    count.fetch_add(WINDOW as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    (count.load(Ordering::Relaxed), start.elapsed())
}

/// A config for C skynet at `c` running our bench/bench_gate.lua.
fn c_config(dir: &Path, root: &Path, c: &Path, name: &str, extra: &str) -> (PathBuf, LogTail) {
    let log = dir.join(format!("{name}.log"));
    let path = dir.join(name);
    let c = c.display();
    std::fs::write(
        &path,
        format!(
            "root = \"{c}/\"\nthread = 2\nharbor = 0\nstart = \"bench_gate\"\n\
             bootstrap = \"snlua bootstrap\"\n\
             luaservice = root..\"service/?.lua;{}/bench/?.lua\"\n\
             lualoader = root..\"lualib/loader.lua\"\n\
             lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua\"\n\
             lua_cpath = root..\"luaclib/?.so\"\ncpath = root..\"cservice/?.so\"\n\
             logger = \"{}\"\n{extra}",
            root.display(),
            log.display()
        ),
    )
    .expect("write config");
    (path, LogTail::new(log))
}

/// `kind` is "lua" or "native"; `c` a C skynet tree to run instead of ours.
fn one(root: &Path, dir: &Path, kind: &str, c: Option<&Path>) -> i32 {
    let gate_port = free_port();
    let extra = format!("gate_kind = \"{kind}\"\ngate_port = {gate_port}\n");
    let label = if c.is_some() {
        format!("c_{kind}")
    } else {
        kind.to_string()
    };
    let (node, cfg, mut log) = match c {
        Some(c) => {
            let (cfg, log) = c_config(dir, root, c, &format!("gate-{label}"), &extra);
            (c.join("skynet"), cfg, log)
        }
        None => {
            let (cfg, log) = logged_config(
                dir,
                &format!("gate-{label}"),
                root,
                "bench_gate",
                &format!("harbor = 0\n{extra}"),
            );
            (sibling("skynet-node"), cfg, log)
        }
    };
    let kind = label.as_str();
    let mut child = spawn(&node, &[cfg.to_str().unwrap()], Stdio::null());
    let start = Instant::now();
    let port = loop {
        if let Some(p) = log.lines().iter().find_map(|l| {
            l.split("bench_gate: port ")
                .nth(1)?
                .trim()
                .parse::<u16>()
                .ok()
        }) {
            break Some(p);
        }
        if start.elapsed() > Duration::from_secs(30) || !matches!(child.try_wait(), Ok(None)) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let Some(port) = port else {
        eprintln!("skynet-bench gate: the {kind} gate did not start");
        let _ = child.kill();
        return 1;
    };
    std::thread::sleep(Duration::from_millis(300));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let before = rss_kib(child.id());
    let status = match rt.block_on(connect_all(port)) {
        Ok(clients) => {
            std::thread::sleep(Duration::from_secs(1));
            let after = rss_kib(child.id());
            print_figure(&format!(
                "BENCH gate_{kind}_idle_conn_rss {:.2} KiB/conn",
                (after.saturating_sub(before)) as f64 / CLIENTS as f64
            ));
            print_figure(&format!("BENCH gate_{kind}_node_rss_10k {} KiB", after));
            let (n, took) = rt.block_on(echo_load(clients));
            print_figure(&format!(
                "BENCH gate_{kind}_echo {:.0} msgs/s",
                n as f64 / took.as_secs_f64()
            ));
            0
        }
        Err(e) => {
            eprintln!("skynet-bench gate: connecting {CLIENTS} clients to the {kind} gate: {e}");
            1
        }
    };
    for line in log.lines() {
        if (line.contains("error") && !line.contains("May overload")) || line.contains("refuse") {
            eprintln!("{line}");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    status
}

pub fn run(root: &Path, dir: &Path) -> i32 {
    let limit = raise_nofile();
    println!(
        "skynet-bench gate: {CLIENTS} clients on loopback, {WINDOW} frames of {PAYLOAD} bytes in flight each (thread = 2, open files {limit})"
    );
    if limit < (CLIENTS + 200) as u64 {
        eprintln!("skynet-bench gate: the open-file limit {limit} is below {CLIENTS} clients");
        return 1;
    }
    let kinds: Vec<String> = match std::env::args().nth(2) {
        Some(k) => vec![k],
        None => vec!["lua".into(), "native".into()],
    };
    println!("{:<28} {:>14} {:>12}  what", "figure", "measured", "target");
    let c = std::env::var_os("SKYNET_C").map(PathBuf::from);
    let mut status = 0;
    for k in &kinds {
        status = status.max(one(root, dir, k, None));
        if let Some(c) = &c {
            status = status.max(one(root, dir, k, Some(c)));
        }
    }
    status
}
