//! Operations: the metrics endpoints of `skynet-node` (config `metrics`) and
//! `skynet-master` (`--metrics`), scraped and parsed; and the drain on
//! SIGTERM (config `drain_time`): queued work finishes, the bound holds,
//! peers fail their calls at once, the exit status is 0.

use integration_tests::*;
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

const BOOT: Duration = Duration::from_secs(20);

/// Parses a scrape in the text format: every sample line is `name{labels}
/// value`, names are Prometheus names, values numbers, and it ends with
/// `# EOF`. Returns series (name with labels) -> value.
fn parse_scrape(text: &str) -> HashMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "no # EOF:\n{text}");
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name in {line:?}"
        );
        assert!(name.starts_with("skynet_"), "{line:?}");
        if series.contains('{') {
            assert!(series.ends_with('}'), "bad labels in {line:?}");
        }
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        out.insert(series.to_string(), v);
    }
    out
}

fn scrape(port: u16) -> HashMap<String, f64> {
    let (status, body) = http_get(port, "/metrics").expect("scrape");
    assert_eq!(status, 200, "{body}");
    parse_scrape(&body)
}

/// Waits (bounded) until `pred` holds for a scrape of `port`.
fn scrape_until(
    port: u16,
    what: &str,
    pred: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = scrape(port);
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} never held: {s:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port_of(line: &Line) -> u16 {
    let after = line.text.rsplit_once("127.0.0.1:").unwrap().1;
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn nodes_and_the_master_serve_metrics_and_the_cluster_view() {
    let _serial = serial();
    let master_port = free_port();
    let master_metrics = free_port();
    let mut cmd = Command::new(bin("skynet-master"));
    cmd.arg("--listen")
        .arg(format!("127.0.0.1:{master_port}"))
        .arg("--metrics")
        .arg(format!("127.0.0.1:{master_metrics}"));
    let master = Proc::spawn("master", cmd);
    master.expect("master listening", BOOT, &[&master]);
    let mut nodes = Vec::new();
    for h in 1..=2u8 {
        let mut c = NodeConfig::new(h, master_port, "serve");
        c.global_services = h == 1;
        c.extra.push(("metrics".into(), "\"127.0.0.1:0\"".into()));
        let p = c.start();
        p.expect(&format!("cluster_main: ready {h}"), BOOT, &[&p, &master]);
        nodes.push(p);
    }
    let ports: Vec<u16> = nodes
        .iter()
        .map(|n| port_of(&n.expect("metrics on http://", BOOT, &[n])))
        .collect();

    // Node 1: linked to harbor 2, its services counted by name.
    let s = scrape_until(ports[0], "harbor 2 linked", |s| {
        s.get("skynet_harbor_links_up") == Some(&1.0)
    });
    assert_eq!(s["skynet_workers"], 2.0);
    assert!(s["skynet_services"] >= 5.0, "{s:#?}");
    assert!(s["skynet_service_instances{service=\"cluster_echo\"}"] >= 1.0);
    assert!(s["skynet_service_messages_total{service=\"launcher\"}"] >= 1.0);
    assert!(s["skynet_service_lua_memory_bytes{service=\"launcher\"}"] > 10_000.0);
    assert!(s.contains_key("skynet_service_cpu_seconds_total{service=\"launcher\"}"));
    assert!(s.contains_key("skynet_service_queue_length{service=\"launcher\"}"));
    assert!(s.contains_key("skynet_timer_pending"));
    assert!(s.contains_key("skynet_workers_busy"));
    assert_eq!(s["skynet_overload_events_total"], 0.0);
    assert_eq!(s["skynet_endless_loop_events_total"], 0.0);
    assert_eq!(s["skynet_harbor_pending_calls"], 0.0);
    assert_eq!(s["skynet_harbor_down_events_total"], 0.0);
    // Node 2 booted by calling SERVICE on node 1: frames went both ways.
    let s2 = scrape(ports[1]);
    assert!(s2["skynet_harbor_frames_sent_total"] >= 1.0, "{s2:#?}");
    assert!(s2["skynet_harbor_received_bytes_total"] >= 16.0, "{s2:#?}");
    // Counters never go down.
    let again = scrape(ports[0]);
    assert!(
        again["skynet_service_messages_total{service=\"launcher\"}"]
            >= s["skynet_service_messages_total{service=\"launcher\"}"]
    );

    // The master: two harbors, their names, nothing refused yet.
    let m = scrape(master_metrics);
    assert_eq!(m["skynet_master_harbors"], 2.0, "{m:#?}");
    assert!(m["skynet_master_global_names"] >= 2.0, "{m:#?}");
    assert_eq!(m["skynet_master_refusals_total"], 0.0);
    let (status, body) = http_get(master_metrics, "/cluster").unwrap();
    assert_eq!(status, 200);
    for needle in [
        "\"id\": 1",
        "\"id\": 2",
        "\"name\": \"ECHO1\"",
        "\"name\": \"ECHO2\"",
        "\"address\": \"127.0.0.1:",
    ] {
        assert!(body.contains(needle), "{needle} not in {body}");
    }
    // A duplicate harbor id is refused and counted.
    let dup = NodeConfig::new(2, master_port, "serve").start();
    master.expect(
        "rejecting handshake: harbor id is already connected",
        BOOT,
        &[&master, &dup],
    );
    let m = scrape(master_metrics);
    assert_eq!(m["skynet_master_refusals_total"], 1.0, "{m:#?}");
    drop(dup);
    // Wrong paths and methods get errors; the endpoint keeps serving.
    assert_eq!(http_get(ports[0], "/nope").unwrap().0, 404);
    assert_eq!(http_get(master_metrics, "/nope").unwrap().0, 404);
    scrape(ports[0]);
}

/// A single node (harbor 0) running `test/drain_main.lua`.
fn drain_node(jobs: u32, job_ms: u32, drain_time: &str) -> Proc {
    let root = repo_root();
    let dir = temp_dir("drain");
    let cfg = dir.join("config");
    std::fs::write(
        &cfg,
        format!(
            "root = \"{}/\"\nthread = 2\nharbor = 0\nstart = \"drain_main\"\n\
             luaservice = root..\"service/?.lua;\"..root..\"test/?.lua\"\n\
             lualoader = root..\"lualib/loader.lua\"\n\
             lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua\"\n\
             drain_jobs = {jobs}\ndrain_job_ms = {job_ms}\ndrain_time = {drain_time}\n",
            root.display()
        ),
    )
    .unwrap();
    start_node("drain", &cfg)
}

#[test]
fn sigterm_lets_queued_work_finish_then_exits_0() {
    let _serial = serial();
    // 100 jobs of 10 ms: about 1 s of queued work, within a 5 s drain.
    let mut node = drain_node(100, 10, "5");
    node.expect("drain_main: queued 100", BOOT, &[&node]);
    let sent = Instant::now();
    node.signal(libc::SIGTERM);
    let status = node.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{status:?}\n{}",
        node.text()
    );
    let took = sent.elapsed();
    let handled = node.expect("drain_main: handled 100", BOOT, &[&node]);
    let drained = node.expect("SIGTERM: queues drained", BOOT, &[&node]);
    assert!(handled.at <= drained.at, "{}", node.text());
    assert!(node.has("SIGTERM: draining (closed 0 listening sockets"));
    println!(
        "SIGTERM with ~1 s of queued work: exit 0 after {} ms",
        took.as_millis()
    );
}

#[test]
fn sigterm_drain_is_bounded_by_drain_time() {
    let _serial = serial();
    // 1000 jobs of 10 ms (10 s of work) against a 0.3 s drain.
    let mut node = drain_node(1000, 10, "0.3");
    node.expect("drain_main: queued 1000", BOOT, &[&node]);
    node.signal(libc::SIGTERM);
    let status = node.wait_exit(Duration::from_secs(5));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{status:?}\n{}",
        node.text()
    );
    assert!(node.has("SIGTERM: drain time over"), "{}", node.text());
    assert!(!node.has("drain_main: handled 1000"), "{}", node.text());
}

#[test]
fn a_bad_drain_time_is_a_start_error() {
    let _serial = serial();
    let mut node = drain_node(1, 1, "\"soon\"");
    let status = node.wait_exit(BOOT);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{}", node.text());
    assert!(node.has("Invalid drain_time soon"), "{}", node.text());
}

#[test]
fn sigterm_closes_harbor_links_so_peers_fail_calls_at_once() {
    let _serial = serial();
    let master_port = free_port();
    let master = start_master(master_port);
    master.expect("master listening", BOOT, &[&master]);
    let mut nodes = Vec::new();
    for (h, role) in [(1u8, "serve"), (2, "serve"), (3, "kill")] {
        let mut c = NodeConfig::new(h, master_port, role);
        c.global_services = h == 1;
        let p = c.start();
        p.expect(&format!("cluster_main: ready {h}"), BOOT, &[&p, &master]);
        nodes.push(p);
    }
    nodes[2].expect("cluster_main: pending 5", BOOT, &[&nodes[2]]);
    let sent = Instant::now();
    nodes[1].signal(libc::SIGTERM);
    let status = nodes[1].wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        nodes[1].text()
    );
    assert!(nodes[1].has("closed 2 harbor links"), "{}", nodes[1].text());
    let failed = nodes[2].expect(
        "cluster_main: all calls failed",
        Duration::from_secs(10),
        &[&nodes[2]],
    );
    let dt = failed.at.duration_since(sent);
    println!(
        "SIGTERM of harbor 2: its peers' 5 pending calls failed {} ms later",
        dt.as_millis()
    );
    assert!(
        dt < Duration::from_secs(3),
        "pending calls failed only after {dt:?}"
    );
}
