//! `skynet-bench`: runs the benchmarks in real `skynet-node` processes with
//! `thread = 2` and prints each figure next to its target.
//!
//! - `skynet-bench` (or `skynet-bench single`): single-node figures from
//!   bench/bench_main.lua.
//! - `skynet-bench cluster`: a `skynet-master` and two nodes on loopback;
//!   harbor 2 calls and sends to a service on harbor 1 (bench/bench_cluster_*.lua).
//!
//! Build with `cargo build --release` and run `target/release/skynet-bench`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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
        "pack_unpack",
        "pack+unpack of a nested table",
        285_000.0,
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
             lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua\"\n{extra}"
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

/// Prints the BENCH lines of `child` as they come; returns its exit status.
fn report(mut child: Child) -> i32 {
    println!("{:<28} {:>14} {:>12}  what", "figure", "measured", "target");
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        let Some(rest) = line.split("BENCH ").nth(1) else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let (Some(name), Some(value)) = (it.next(), it.next().and_then(|v| v.parse::<f64>().ok()))
        else {
            continue;
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
                    "{name:<28} {value:>14.1} {cmp}{target:>10.1}  {what} [{unit}] {}",
                    if ok { "ok" } else { "MISSED" }
                );
            }
            None => println!("{name:<28} {value:>14.1} {:>12}  [{unit}]", "-"),
        }
    }
    child.wait().ok().and_then(|s| s.code()).unwrap_or(1)
}

fn single(root: &Path, dir: &Path) -> i32 {
    let node = sibling("skynet-node");
    let cfg = config(dir, "single", root, "bench_main", "harbor = 0\n");
    println!("skynet-bench single: {} (thread = 2)", node.display());
    report(spawn(&node, &[cfg.to_str().unwrap()], Stdio::piped()))
}

fn cluster(root: &Path, dir: &Path) -> i32 {
    let node = sibling("skynet-node");
    let master_addr = format!("127.0.0.1:{}", free_port());
    let mut master = spawn(
        &sibling("skynet-master"),
        &["--listen", &master_addr],
        Stdio::null(),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let cfg1 = config(
        dir,
        "node1",
        root,
        "bench_cluster_sink",
        &format!(
            "harbor = 1\nmaster = \"{master_addr}\"\naddress = \"127.0.0.1:{}\"\nglobal_services = true\n",
            free_port()
        ),
    );
    let mut node1 = spawn(&node, &[cfg1.to_str().unwrap()], Stdio::piped());
    let out1 = node1.stdout.take().unwrap();
    let mut lines = BufReader::new(out1).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("bench_cluster_sink: ready"));
    // keep draining harbor 1's log so it never blocks on a full pipe
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let status = if ready {
        let cfg2 = config(
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
        report(spawn(&node, &[cfg2.to_str().unwrap()], Stdio::piped()))
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

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "single".into());
    let root = skynet_node::cli::find_root(None);
    let dir = std::env::temp_dir().join(format!("skynet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let status = match mode.as_str() {
        "single" => single(&root, &dir),
        "cluster" => cluster(&root, &dir),
        "all" => single(&root, &dir).max(cluster(&root, &dir)),
        other => {
            eprintln!("usage: skynet-bench [single|cluster|all] (got {other})");
            2
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(status);
}
