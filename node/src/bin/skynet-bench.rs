//! `skynet-bench`: runs the single-node benchmarks (bench/bench_main.lua) in a
//! real `skynet-node` with `thread = 2` and prints each figure next to its
//! target. Build with `cargo build --release` and run
//! `target/release/skynet-bench`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// (name printed by bench_main.lua, what it measures, target, higher is better)
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
];

fn main() {
    let root =
        skynet_node::cli::find_root(std::env::args().nth(1).as_deref().map(std::path::Path::new));
    let node = std::env::current_exe()
        .expect("own path")
        .with_file_name("skynet-node");
    let dir = std::env::temp_dir().join(format!("skynet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("config");
    let r = format!("{}/", root.display());
    std::fs::write(
        &config,
        format!(
            "root = \"{r}\"\nthread = 2\nharbor = 0\nstart = \"bench_main\"\n\
             luaservice = root..\"service/?.lua;\"..root..\"bench/?.lua\"\n\
             lualoader = root..\"lualib/loader.lua\"\n\
             lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua\"\n"
        ),
    )
    .expect("write config");
    let mut child = Command::new(&node)
        .arg(&config)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("can't start {}: {e}", node.display()));
    println!(
        "skynet-bench: {} threads = 2, root {}",
        node.display(),
        root.display()
    );
    println!("{:<24} {:>14} {:>12}  what", "figure", "measured", "target");
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        let Some(rest) = line.split("BENCH ").nth(1) else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let (Some(name), Some(value), unit) = (
            it.next(),
            it.next().and_then(|v| v.parse::<f64>().ok()),
            it.next(),
        ) else {
            continue;
        };
        let unit = unit.unwrap_or("");
        match TARGETS.iter().find(|t| t.0 == name) {
            Some((_, what, target, higher)) => {
                let ok = if *higher {
                    value >= *target
                } else {
                    value <= *target
                };
                let cmp = if *higher { ">=" } else { "<=" };
                println!(
                    "{name:<24} {value:>14.1} {cmp}{target:>10.1}  {what} [{unit}] {}",
                    if ok { "ok" } else { "MISSED" }
                );
            }
            None => println!("{name:<24} {value:>14.1} {:>12}  [{unit}]", "-"),
        }
    }
    let status = child.wait().expect("wait");
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(status.code().unwrap_or(1));
}
