//! `skynet-bench`: runs the benchmarks in real `skynet-node` processes with
//! `thread = 2` and prints each figure next to its target.
//!
//! - `skynet-bench` (or `skynet-bench single`): single-node figures from
//!   bench/bench_main.lua.
//! - `skynet-bench timer`: the timer figures of bench/bench_main.lua only
//!   (burst, spread, and the hold-out load of bench/bench_holdout.lua).
//! - `skynet-bench cluster`: a `skynet-master` and two nodes on loopback;
//!   harbor 2 calls and sends to a service on harbor 1 (bench/bench_cluster_*.lua).
//! - `skynet-bench cluster-mode`: two standalone nodes (harbor 0, no
//!   master) on loopback; one calls and pushes to a service on the other
//!   through skynet.cluster (bench/bench_cmode_*.lua).
//! - `skynet-bench libs`: the libraries (sproto, sharedata, ...): one node
//!   per `bench/bench_lib_*.lua`, which prints its figures and aborts.
//! - `skynet-bench socket`: `skynet.socket` over loopback. A node runs an echo
//!   server (bench/bench_socket_echo.lua) and Lua clients (bench/bench_socket.lua:
//!   64-byte echo round trips, sequential and on 16 connections, and bulk
//!   echo); then this program's own client threads (`outside_*` figures) measure
//!   the same server. `SKYNET_BENCH_NODE` names another `skynet-node` binary
//!   (a baseline build, say); `SKYNET_BENCH_SOCKET` = `outside` skips the
//!   Lua clients, `sequential`, `concurrent` or `bulk` runs only that one.
//! - `skynet-bench socket-client HOST:PORT [sequential|concurrent|bulk]`: only
//!   the outside client (all three figures, or the one named), against any
//!   echo server (C skynet running bench/bench_socket.lua, say).
//!
//! - `skynet-bench socketchannel`: skynet.socketchannel round trips (order and
//!   session mode) to an echo service in the same node (bench/bench_socketchannel.lua).
//! - `skynet-bench redis`: skynet.db.redis SET and GET round trips to a
//!   `redis-server` this program starts on a free loopback port (temp dir,
//!   no persistence, killed at the end), bench/bench_redis.lua: one caller,
//!   16 coroutines sharing one connection (`_concurrent_16`), 16
//!   connections with a coroutine each (`_16_connections`), and pipelines
//!   of 100 commands per round trip. Then `redis-benchmark -t set,get -n 100000` with `-c 1` and
//!   `-c 16` against the same server, for comparison (when installed).
//! - `skynet-bench gate [lua|native]`: 10,000 clients through our Lua gate
//!   and our native gate (bench/bench_gate.lua; see `bench_gate`).
//!
//! Build with `cargo build --release` and run `target/release/skynet-bench`.
//!
//! The nodes log to files (config `logger`) that this program reads every
//! 50 ms, rather than to pipes: a reader woken for every log line (one per
//! `newservice`, say) competed for the machine's two cores with the node it
//! measured.

mod bench_gate;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// 1.5 times the hold-out scheduling rate of commit 2b0cc6d (the heap timer)
/// measured on the 2-core development machine (k timeouts/s).
const TIMER_HOLDOUT_SCHEDULE_TARGET: f64 = 444.0;

/// (name printed by the bench services, what it measures, target, higher is better)
const TARGETS: &[(&str, &str, f64, bool)] = &[
    (
        "send_one_way",
        "one-way sends between two Lua services (1 M)",
        540_000.0,
        true,
    ),
    (
        "call_sequential",
        "sequential call round trips (200 k)",
        260_000.0,
        true,
    ),
    (
        "call_concurrent_8",
        "call round trips, 8 concurrent callers",
        260_000.0,
        true,
    ),
    (
        "newservice",
        "newservice of a minimal service",
        8_000.0,
        true,
    ),
    (
        "memory_per_service",
        "RSS per minimal service (KiB)",
        40.0,
        false,
    ),
    (
        "timer_burst_callbacks",
        "100 k timeouts due together: callbacks/s",
        130_000.0,
        true,
    ),
    (
        "timer_spread_callbacks",
        "100 k timeouts spread over 0.5 s: callbacks/s",
        130_000.0,
        true,
    ),
    ("timer_lateness_min", "minimum lateness (ms)", 0.0, true),
    ("timer_lateness_p99", "p99 lateness (ms)", 5.0, false),
    ("timer_early", "timeouts that fired early", 0.0, false),
    (
        "timer_holdout_schedule",
        "hold-out load: timeouts registered/s (1.5x 2b0cc6d)",
        TIMER_HOLDOUT_SCHEDULE_TARGET,
        true,
    ),
    (
        "timer_holdout_p99",
        "hold-out load: p99 lateness (ms)",
        5.0,
        false,
    ),
    (
        "timer_holdout_early",
        "hold-out load: timeouts that fired early",
        0.0,
        false,
    ),
    (
        "pack_unpack",
        "pack+unpack of a nested table",
        285_000.0,
        true,
    ),
    (
        "socket_echo_sequential",
        "64-byte skynet.socket echo round trips, one in flight (2x 7098f35's 15 k)",
        30_000.0,
        true,
    ),
    (
        "socket_bulk_echo",
        "bulk echo through skynet.socket, each way (7098f35: 562-648)",
        562.0,
        true,
    ),
    (
        "cluster_call_sequential",
        "cross-node sequential calls",
        50_000.0,
        true,
    ),
    (
        "cluster_call_concurrent_16",
        "cross-node calls, 16 concurrent callers",
        110_000.0,
        true,
    ),
    (
        "cluster_send_one_way",
        "cross-node one-way sends (1 M)",
        470_000.0,
        true,
    ),
];

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .expect("own path")
        .with_file_name(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Writes a node config for `root` with extra `key = value` lines.
fn config(dir: &Path, name: &str, root: &Path, start: &str, extra: &str) -> PathBuf {
    let r = format!("{}/", root.display());
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "root = \"{r}\"\nthread = 2\nstart = \"{start}\"\n\
             luaservice = root..\"service/?.lua;\"..root..\"bench/?.lua\"\n\
             lualoader = root..\"lualib/loader.lua\"\n\
             lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua;\"..root..\"bench/?.lua\"\n{extra}"
        ),
    )
    .expect("write config");
    path
}

fn spawn(program: &Path, args: &[&str], stdout: Stdio) -> Child {
    Command::new(program)
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("can't start {}: {e}", program.display()))
}

/// The lines a node appends to its log file, as they come.
struct LogTail {
    path: PathBuf,
    /// Opened once the node has created the file; read on from where the
    /// last call stopped.
    file: Option<std::fs::File>,
    partial: Vec<u8>,
}

impl LogTail {
    fn new(path: PathBuf) -> Self {
        LogTail {
            path,
            file: None,
            partial: Vec::new(),
        }
    }

    /// Complete lines appended since the last call.
    fn lines(&mut self) -> Vec<String> {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        if let Some(f) = self.file.as_mut() {
            let _ = f.read_to_end(&mut self.partial);
        }
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        String::from_utf8_lossy(&done)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits (up to `limit`) for a line containing `needle`.
    fn wait_for(&mut self, needle: &str, child: &mut Child, limit: Duration) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if self.lines().iter().any(|l| l.contains(needle)) {
                return true;
            }
            if !matches!(child.try_wait(), Ok(None)) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

/// Prints the BENCH lines of `child`'s log as they come, until it exits;
/// returns its exit status, or 1 if a bench service logged `BENCH FAILED`
/// (printed too).
fn report(mut child: Child, mut log: LogTail) -> i32 {
    println!("{:<28} {:>14} {:>12}  what", "figure", "measured", "target");
    let mut failed = false;
    let mut show = |line: &str| {
        if line.contains("BENCH FAILED") {
            failed = true;
            println!("{line}");
        } else {
            print_figure(line);
        }
    };
    let status = loop {
        let exited = child.try_wait().ok().flatten();
        for line in log.lines() {
            show(&line);
        }
        if let Some(s) = exited {
            break s.code().unwrap_or(1);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for line in log.lines() {
        show(&line);
    }
    if failed {
        1
    } else {
        status
    }
}

/// Prints a `BENCH name value unit` line next to its target.
fn print_figure(line: &str) {
    let Some(rest) = line.split("BENCH ").nth(1) else {
        return;
    };
    let mut it = rest.split_whitespace();
    let (Some(name), Some(value)) = (it.next(), it.next().and_then(|v| v.parse::<f64>().ok()))
    else {
        return;
    };
    let unit = it.next().unwrap_or("");
    match TARGETS.iter().find(|t| t.0 == name) {
        Some((_, what, target, higher)) => {
            let ok = if *higher {
                value >= *target
            } else {
                value <= *target
            };
            let cmp = if *higher { ">=" } else { "<=" };
            println!(
                "{name:<28} {:>14} {cmp}{target:>10.1}  {what} [{unit}] {}",
                shown(value),
                if ok { "ok" } else { "MISSED" }
            );
        }
        None => println!("{name:<28} {:>14} {:>12}  [{unit}]", shown(value), "-"),
    }
}

/// A figure with the decimals it needs (small ones, such as a query in
/// milliseconds, would print as 0.0 with one).
fn shown(v: f64) -> String {
    if v.abs() >= 100.0 || v == 0.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// A config whose node logs to `<dir>/<name>.log`, and that log.
fn logged_config(
    dir: &Path,
    name: &str,
    root: &Path,
    start: &str,
    extra: &str,
) -> (PathBuf, LogTail) {
    let log = dir.join(format!("{name}.log"));
    let extra = format!("{extra}logger = \"{}\"\n", log.display());
    (config(dir, name, root, start, &extra), LogTail::new(log))
}

fn single(root: &Path, dir: &Path) -> i32 {
    let node = sibling("skynet-node");
    let (cfg, log) = logged_config(dir, "single", root, "bench_main", "harbor = 0\n");
    println!("skynet-bench single: {} (thread = 2)", node.display());
    report(spawn(&node, &[cfg.to_str().unwrap()], Stdio::null()), log)
}

fn timer(root: &Path, dir: &Path) -> i32 {
    let node = sibling("skynet-node");
    let (cfg, log) = logged_config(
        dir,
        "timer",
        root,
        "bench_main",
        "harbor = 0\nbench = \"timer\"\n",
    );
    println!("skynet-bench timer: {} (thread = 2)", node.display());
    report(spawn(&node, &[cfg.to_str().unwrap()], Stdio::null()), log)
}

fn cluster(root: &Path, dir: &Path) -> i32 {
    let node = sibling("skynet-node");
    let master_addr = format!("127.0.0.1:{}", free_port());
    let mut master = spawn(
        &sibling("skynet-master"),
        &["--listen", &master_addr],
        Stdio::null(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let (cfg1, mut log1) = logged_config(
        dir,
        "node1",
        root,
        "bench_cluster_sink",
        &format!(
            "harbor = 1\nmaster = \"{master_addr}\"\naddress = \"127.0.0.1:{}\"\nglobal_services = true\n",
            free_port()
        ),
    );
    let mut node1 = spawn(&node, &[cfg1.to_str().unwrap()], Stdio::null());
    let ready = log1.wait_for(
        "bench_cluster_sink: ready",
        &mut node1,
        Duration::from_secs(30),
    );
    let status = if ready {
        let (cfg2, log2) = logged_config(
            dir,
            "node2",
            root,
            "bench_cluster_main",
            &format!(
                "harbor = 2\nmaster = \"{master_addr}\"\naddress = \"127.0.0.1:{}\"\n",
                free_port()
            ),
        );
        println!("skynet-bench cluster: master + 2 nodes on loopback (thread = 2 each)");
        report(spawn(&node, &[cfg2.to_str().unwrap()], Stdio::null()), log2)
    } else {
        eprintln!("skynet-bench: harbor 1 did not start");
        1
    };
    let _ = node1.kill();
    let _ = master.kill();
    let _ = node1.wait();
    let _ = master.wait();
    status
}

/// Cluster mode: node "sink" serves on a port, the other node's cluster
/// config maps "sink" to it.
fn cluster_mode(root: &Path, dir: &Path) -> i32 {
    let node = node_binary();
    let port = free_port();
    let (cfg1, mut log1) = logged_config(
        dir,
        "cmode_sink",
        root,
        "bench_cmode_sink",
        &format!("harbor = 0\nbench_cmode_port = {port}\n"),
    );
    let mut sink = spawn(&node, &[cfg1.to_str().unwrap()], Stdio::null());
    let status = if log1.wait_for(
        "bench_cmode_sink: ready",
        &mut sink,
        Duration::from_secs(30),
    ) {
        let names = dir.join("cmode_names.lua");
        std::fs::write(&names, format!("sink = \"127.0.0.1:{port}\"\n")).expect("write names");
        let (cfg2, log2) = logged_config(
            dir,
            "cmode_main",
            root,
            "bench_cmode_main",
            &format!("harbor = 0\ncluster = \"{}\"\n", names.display()),
        );
        println!(
            "skynet-bench cluster-mode: {} x2, harbor 0, loopback (thread = 2 each)",
            node.display()
        );
        report(spawn(&node, &[cfg2.to_str().unwrap()], Stdio::null()), log2)
    } else {
        eprintln!("skynet-bench: the cluster-mode sink did not start");
        1
    };
    let _ = sink.kill();
    let _ = sink.wait();
    status
}

/// One single node per `bench/bench_lib_*.lua` (in name order), each
/// started with that file as its `start` service.
fn libs(root: &Path, dir: &Path) -> i32 {
    let node = sibling("skynet-node");
    let mut starts: Vec<String> = std::fs::read_dir(root.join("bench"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|n| {
                    n.strip_suffix(".lua")
                        .filter(|s| s.starts_with("bench_lib_"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    starts.sort();
    println!("skynet-bench libs: {} (thread = 2)", node.display());
    let mut status = 0;
    for start in &starts {
        let (cfg, log) = logged_config(dir, start, root, start, "harbor = 0\n");
        println!("-- {start}");
        status = status.max(report(
            spawn(&node, &[cfg.to_str().unwrap()], Stdio::null()),
            log,
        ));
    }
    status
}

/// The node binary: `SKYNET_BENCH_NODE` or the sibling `skynet-node`.
fn node_binary() -> PathBuf {
    std::env::var_os("SKYNET_BENCH_NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| sibling("skynet-node"))
}

fn socket(root: &Path, dir: &Path) -> i32 {
    let node = node_binary();
    let only = std::env::var("SKYNET_BENCH_SOCKET").unwrap_or_default();
    let (cfg, mut log) = logged_config(
        dir,
        "socket",
        root,
        "bench_socket",
        &format!("harbor = 0\nbench_socket_only = \"{only}\"\n"),
    );
    println!("skynet-bench socket: {} (thread = 2)", node.display());
    println!("{:<28} {:>14} {:>12}  what", "figure", "measured", "target");
    let mut child = spawn(&node, &[cfg.to_str().unwrap()], Stdio::null());
    let start = Instant::now();
    let mut port: Option<u16> = None;
    while port.is_none() && start.elapsed() < Duration::from_secs(600) {
        for line in log.lines() {
            match line.split("BENCH socket_echo_port ").nth(1) {
                Some(p) => port = p.split_whitespace().next().and_then(|p| p.parse().ok()),
                None => print_figure(&line),
            }
        }
        if !matches!(child.try_wait(), Ok(None)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = match port {
        Some(p) => outside_client(&format!("127.0.0.1:{p}"), None),
        None => {
            eprintln!("skynet-bench: the echo server did not report its port");
            1
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    status
}

/// `n` 64-byte round trips on `s`, one in flight.
fn echo_loop(s: &mut TcpStream, n: usize) -> std::io::Result<()> {
    let msg = [b'x'; 64];
    let mut back = [0u8; 64];
    for _ in 0..n {
        s.write_all(&msg)?;
        s.read_exact(&mut back)?;
    }
    Ok(())
}

fn echo_conn(addr: &str) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(s)
}

/// The median of `k` runs of `run` (and the best beside it), as BENCH lines.
fn outside_rounds(
    name: &str,
    unit: &str,
    k: usize,
    mut run: impl FnMut() -> std::io::Result<f64>,
) -> std::io::Result<()> {
    let mut got = Vec::with_capacity(k);
    for _ in 0..k {
        got.push(run()?);
    }
    got.sort_by(f64::total_cmp);
    print_figure(&format!("BENCH {name} {} {unit}", got[(k - 1) / 2]));
    print_figure(&format!("BENCH {name}_best {} {unit}", got[k - 1]));
    Ok(())
}

/// Client threads of this program against the echo server at `addr`: the
/// same three measurements as bench_socket.lua.
fn outside_client(addr: &str, only: Option<&str>) -> i32 {
    match outside_figures(addr, only) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("skynet-bench: outside client to {addr}: {e}");
            1
        }
    }
}

fn outside_figures(addr: &str, only: Option<&str>) -> std::io::Result<()> {
    const SEQ: usize = 30_000;
    const CONNS: usize = 16;
    const PER: usize = 4_000;
    let wanted = |what: &str| only.is_none_or(|o| o == what);
    if wanted("sequential") {
        let mut s = echo_conn(addr)?;
        echo_loop(&mut s, 1000)?;
        outside_rounds("outside_echo_sequential", "rt/s", 3, || {
            let t0 = Instant::now();
            echo_loop(&mut s, SEQ)?;
            Ok(SEQ as f64 / t0.elapsed().as_secs_f64())
        })?;
    }
    if wanted("concurrent") {
        outside_concurrent(addr, CONNS, PER)?;
    }
    if wanted("bulk") {
        outside_rounds("outside_bulk_echo", "MiB/s", 3, || bulk_echo(addr))?;
    }
    Ok(())
}

fn outside_concurrent(addr: &str, conns: usize, per: usize) -> std::io::Result<()> {
    let mut conns = (0..conns)
        .map(|_| echo_conn(addr))
        .collect::<std::io::Result<Vec<_>>>()?;
    let n = conns.len();
    outside_rounds(&format!("outside_echo_concurrent_{n}"), "rt/s", 3, || {
        let t0 = Instant::now();
        std::thread::scope(|sc| {
            let runs: Vec<_> = conns
                .iter_mut()
                .map(|c| sc.spawn(move || echo_loop(c, per)))
                .collect();
            runs.into_iter()
                .try_for_each(|r| r.join().expect("client thread"))
        })?;
        Ok((n * per) as f64 / t0.elapsed().as_secs_f64())
    })
}

/// 256 MiB written in 64 KiB blocks by one thread, at most 512 KiB in
/// flight (so the server's write queue stays short, as in bench_socket.lua),
/// and read back by another: MiB/s of payload each way.
fn bulk_echo(addr: &str) -> std::io::Result<f64> {
    use std::sync::{Arc, Condvar, Mutex};
    const TOTAL: usize = 256 << 20;
    const CHUNK: usize = 64 << 10;
    const WINDOW: usize = 512 << 10;
    let s = echo_conn(addr)?;
    let mut r = s.try_clone()?;
    let mut w = s;
    // bytes read back so far, and the writer's wake-up
    let got = Arc::new((Mutex::new(0usize), Condvar::new()));
    let t0 = Instant::now();
    let writer = {
        let got = got.clone();
        std::thread::spawn(move || -> std::io::Result<TcpStream> {
            let block = vec![b'b'; CHUNK];
            let mut sent = 0;
            while sent < TOTAL {
                let (lock, cv) = &*got;
                let mut g = lock.lock().expect("bulk counter");
                while sent - *g >= WINDOW {
                    g = cv.wait(g).expect("bulk counter");
                }
                drop(g);
                w.write_all(&block)?;
                sent += CHUNK;
            }
            Ok(w)
        })
    };
    let mut buf = vec![0u8; CHUNK];
    let mut n_got = 0;
    while n_got < TOTAL {
        match r.read(&mut buf)? {
            0 => return Err(std::io::Error::other("echo server closed during bulk")),
            n => {
                n_got += n;
                let (lock, cv) = &*got;
                *lock.lock().expect("bulk counter") = n_got;
                cv.notify_one();
            }
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    writer.join().expect("writer thread")?;
    Ok(TOTAL as f64 / dt / (1024.0 * 1024.0))
}

fn socketchannel(root: &Path, dir: &Path) -> i32 {
    let node = sibling("skynet-node");
    let (cfg, log) = logged_config(dir, "sc", root, "bench_socketchannel", "harbor = 0\n");
    println!(
        "skynet-bench socketchannel: {} (thread = 2)",
        node.display()
    );
    report(spawn(&node, &[cfg.to_str().unwrap()], Stdio::null()), log)
}

/// skynet.db.redis against a redis-server started here, then
/// redis-benchmark (when installed) against the same server.
fn redis(root: &Path, dir: &Path) -> i32 {
    use skynet_node::outside::{redis_available, start_redis};
    if !redis_available() {
        eprintln!("skynet-bench redis: redis-server is not installed (Debian: redis-server)");
        return 1;
    }
    let server = match start_redis(&[]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skynet-bench redis: {e}");
            return 1;
        }
    };
    let node = node_binary();
    let (cfg, log) = logged_config(
        dir,
        "redis",
        root,
        "bench_redis",
        &format!("harbor = 0\nbench_redis_port = {}\n", server.port),
    );
    println!(
        "skynet-bench redis: {} (thread = 2), redis-server on 127.0.0.1:{}",
        node.display(),
        server.port
    );
    let status = report(spawn(&node, &[cfg.to_str().unwrap()], Stdio::null()), log);
    for clients in ["1", "16"] {
        let port = server.port.to_string();
        let args = [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "set,get",
            "-n",
            "100000",
            "-c",
            clients,
            "-q",
        ];
        println!("-- redis-benchmark {}", args.join(" "));
        match Command::new("redis-benchmark").args(args).output() {
            Ok(out) => {
                // -q prints progress with carriage returns before each result
                for line in String::from_utf8_lossy(&out.stdout).split(['\r', '\n']) {
                    if line.contains("requests per second") {
                        println!("{}", line.trim());
                    }
                }
            }
            Err(e) => println!("redis-benchmark not run: {e} (Debian: redis-tools)"),
        }
    }
    status
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "single".into());
    let root = skynet_node::cli::find_root(None);
    let dir = std::env::temp_dir().join(format!("skynet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let status = match mode.as_str() {
        "single" => single(&root, &dir),
        "timer" => timer(&root, &dir),
        "cluster" => cluster(&root, &dir),
        "cluster-mode" => cluster_mode(&root, &dir),
        "libs" => libs(&root, &dir),
        "gate" => bench_gate::run(&root, &dir),
        "socket" => socket(&root, &dir),
        "socket-client" => match std::env::args().nth(2) {
            Some(addr) => outside_client(&addr, std::env::args().nth(3).as_deref()),
            None => {
                eprintln!("usage: skynet-bench socket-client HOST:PORT");
                2
            }
        },
        "socketchannel" => socketchannel(&root, &dir),
        "redis" => redis(&root, &dir),
        "all" => single(&root, &dir)
            .max(cluster(&root, &dir))
            .max(libs(&root, &dir))
            .max(socketchannel(&root, &dir)),
        other => {
            eprintln!(
                "usage: skynet-bench [single|timer|cluster|cluster-mode|libs|gate|socket|socketchannel|redis|socket-client ADDR|all] (got {other})"
            );
            2
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(status);
}
