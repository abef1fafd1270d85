//! Helpers for the container tests (`tests/containers.rs`): a skynet-rs
//! cluster (one `skynet-master` and N `skynet-node` containers from the
//! image `skynet-rs:latest`) on a private Docker network made for one test,
//! log followers with Docker's own timestamps, and fault injection (kill,
//! restart, network disconnect/connect) through testcontainers' bollard.
//!
//! Every container and network carries the label `skynet-rs-test=<pid>`;
//! everything is removed when the test ends (also on panic), and leftovers of
//! test processes that died are removed by the next run.

#![allow(dead_code)]

use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use testcontainers::bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptions, ListContainersOptions, ListNetworksOptions,
    LogsOptions, RemoveContainerOptions, StatsOptions, StopContainerOptions,
};
use testcontainers::bollard::Docker;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt};
use tokio::sync::watch;

/// The image under test: `skynet-rs:latest`, or `$SKYNET_TEST_IMAGE`.
pub fn image() -> (String, String) {
    let full = std::env::var("SKYNET_TEST_IMAGE").unwrap_or_else(|_| "skynet-rs:latest".into());
    match full.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_string(), tag.to_string()),
        _ => (full, "latest".to_string()),
    }
}

pub const LABEL: &str = "skynet-rs-test";
/// The master's port and every node's harbor port inside the network.
pub const MASTER_PORT: u16 = 2013;
pub const HARBOR_PORT: u16 = 2527;

/// Time allowed for a container to start and print its first line.
pub const BOOT: Duration = Duration::from_secs(30);
/// Upper bound for any single wait in a test.
pub const LONG: Duration = Duration::from_secs(60);
/// How long Docker may take to deliver a fault (kill, network change).
const FAULT_LIMIT: Duration = Duration::from_secs(20);
/// Upper bound for a whole test.
pub const TEST_LIMIT: Duration = Duration::from_secs(240);

/// The tests measure timings on a 2-core machine: one at a time. (An async
/// lock: each test has its own runtime and holds it across awaits.)
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A line that libtest does not capture (visible without --nocapture).
pub fn say(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{text}");
}

fn required() -> bool {
    matches!(
        std::env::var("SKYNET_CONTAINER_TESTS").as_deref(),
        Ok("require") | Ok("required") | Ok("1")
    )
}

/// A Docker client, or None (after printing why) when Docker or the image is
/// missing: the test then passes without doing anything. With
/// `SKYNET_CONTAINER_TESTS=require` (CI, after building the image) a missing
/// Docker or image fails the test instead.
pub async fn docker_or_skip(test: &str) -> Option<Docker> {
    match check_docker().await {
        Ok(d) => {
            remove_leftovers(&d).await;
            Some(d)
        }
        Err(reason) => {
            if required() {
                panic!("{test}: SKYNET_CONTAINER_TESTS=require, but {reason}");
            }
            say(&format!("SKIPPED {test}: {reason}"));
            None
        }
    }
}

async fn check_docker() -> Result<Docker, String> {
    let d = Docker::connect_with_local_defaults().map_err(|e| format!("no Docker client ({e})"))?;
    match tokio::time::timeout(Duration::from_secs(5), d.ping()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("Docker is not reachable ({e})")),
        Err(_) => return Err("Docker did not answer a ping within 5 s".into()),
    }
    let (name, tag) = image();
    let image = format!("{name}:{tag}");
    match tokio::time::timeout(Duration::from_secs(10), d.inspect_image(&image)).await {
        Ok(Ok(_)) => Ok(d),
        Ok(Err(e)) => Err(format!(
            "the image {image} is missing ({e}); build it with deploy/build-image.sh"
        )),
        Err(_) => Err(format!("inspecting the image {image} took over 10 s")),
    }
}

fn pid_alive(pid: &str) -> bool {
    std::path::Path::new("/proc").join(pid).exists()
}

/// True for a container or network (with these labels) that another test
/// process left and that process is gone.
fn left_by_a_dead_test(labels: Option<&HashMap<String, String>>, mine: &str) -> bool {
    let owner = labels
        .and_then(|l| l.get(LABEL))
        .map(String::as_str)
        .unwrap_or_default();
    owner != mine && !pid_alive(owner)
}

/// Removes containers and networks left by test processes that are gone.
async fn remove_leftovers(d: &Docker) {
    let mine = std::process::id().to_string();
    let filters = HashMap::from([("label".to_string(), vec![LABEL.to_string()])]);
    let listed = d
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await;
    for c in listed.unwrap_or_default() {
        if left_by_a_dead_test(c.labels.as_ref(), &mine) {
            if let Some(id) = c.id {
                let _ = d
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptions {
                            force: true,
                            v: true,
                            ..Default::default()
                        }),
                    )
                    .await;
            }
        }
    }
    let nets = d
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await;
    for n in nets.unwrap_or_default() {
        if left_by_a_dead_test(n.labels.as_ref(), &mine) {
            if let Some(name) = n.name {
                let _ = d.remove_network(&name).await;
            }
        }
    }
}

// ------------------------------------------------------------ timestamps

/// Parses Docker's RFC 3339 UTC timestamp ("2026-11-26T19:51:25.697509123Z").
pub fn parse_ts(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next()?.parse().ok()?;
    let ss: i64 = t.next()?.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos: u32 = format!("{digits:0<9}").parse().ok()?;
    // Days from 1970-01-01 (H. Hinnant's days_from_civil).
    let yy = if m <= 2 { y - 1 } else { y };
    let era = if yy >= 0 { yy } else { yy - 399 } / 400;
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::new(u64::try_from(secs).ok()?, nanos))
}

/// `b - a` in milliseconds (negative when b is earlier).
pub fn ms_between(a: SystemTime, b: SystemTime) -> i64 {
    match b.duration_since(a) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

// ------------------------------------------------------------ logs

/// One log line and the time Docker stamped on it.
#[derive(Clone, Debug)]
pub struct Line {
    pub at: SystemTime,
    pub text: String,
}

/// Follows a container's stdout and stderr for as long as it exists, across
/// restarts (a stopped container's stream ends; it is opened again).
pub struct Logs {
    pub name: String,
    lines: Arc<Mutex<Vec<Line>>>,
    rx: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Logs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Logs {
    pub fn follow(docker: &Docker, id: &str, name: &str) -> Logs {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = watch::channel(0usize);
        let task = tokio::spawn(pump(docker.clone(), id.to_string(), lines.clone(), tx));
        Logs {
            name: name.to_string(),
            lines,
            rx,
            task,
        }
    }

    pub fn lines(&self) -> Vec<Line> {
        self.lines.lock().unwrap().clone()
    }

    /// The first line at or after `after` that contains `needle`.
    pub fn find(&self, needle: &str, after: SystemTime) -> Option<Line> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.at >= after && l.text.contains(needle))
            .cloned()
    }

    /// Lines at or after `after` that contain `needle`.
    pub fn all(&self, needle: &str, after: SystemTime) -> Vec<Line> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.at >= after && l.text.contains(needle))
            .cloned()
            .collect()
    }

    /// Waits (at most `timeout`) for a line at or after `after` containing `needle`.
    pub async fn wait_for(
        &self,
        needle: &str,
        after: SystemTime,
        timeout: Duration,
    ) -> Option<Line> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.rx.clone();
        loop {
            rx.borrow_and_update();
            if let Some(l) = self.find(needle, after) {
                return Some(l);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(_) => return self.find(needle, after),
            }
            if tokio::time::Instant::now() >= deadline {
                return self.find(needle, after);
            }
        }
    }

    /// The last `n` lines, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        let skip = lines.len().saturating_sub(n);
        let mut s = format!("===== {} ({} lines", self.name, lines.len());
        if skip > 0 {
            s.push_str(&format!(", the last {n}"));
        }
        s.push_str(") =====\n");
        for l in &lines[skip..] {
            let t = l.at.duration_since(UNIX_EPOCH).unwrap_or_default();
            s.push_str(&format!(
                "{:02}:{:02}:{:02}.{:03} {}\n",
                t.as_secs() / 3600 % 24,
                t.as_secs() / 60 % 60,
                t.as_secs() % 60,
                t.subsec_millis(),
                l.text
            ));
        }
        s
    }
}

async fn pump(docker: Docker, id: String, lines: Arc<Mutex<Vec<Line>>>, tx: watch::Sender<usize>) {
    // Docker's `since` has a resolution of seconds: lines are fetched again
    // after a reconnection and dropped here by timestamp and text.
    let mut last: Option<SystemTime> = None;
    let mut at_last: HashSet<String> = HashSet::new();
    loop {
        let since = last
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i32)
            .unwrap_or(0);
        let mut stream = docker.logs(
            &id,
            Some(LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                timestamps: true,
                since,
                ..Default::default()
            }),
        );
        while let Some(item) = stream.next().await {
            let Ok(out) = item else { break };
            let bytes = match out {
                LogOutput::StdOut { message }
                | LogOutput::StdErr { message }
                | LogOutput::Console { message } => message,
                LogOutput::StdIn { .. } => continue,
            };
            let text = String::from_utf8_lossy(&bytes);
            let mut added = false;
            for raw in text.lines() {
                let Some((ts, rest)) = raw.split_once(' ') else {
                    continue;
                };
                let Some(at) = parse_ts(ts) else { continue };
                if let Some(l) = last {
                    if at < l || (at == l && at_last.contains(rest)) {
                        continue;
                    }
                }
                if last != Some(at) {
                    last = Some(at);
                    at_last.clear();
                }
                at_last.insert(rest.to_string());
                lines.lock().unwrap().push(Line {
                    at,
                    text: rest.to_string(),
                });
                added = true;
            }
            if added {
                let n = lines.lock().unwrap().len();
                let _ = tx.send(n);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ------------------------------------------------------------ the network

/// A private (internal: no route out) bridge network, removed on drop after
/// the containers that use it (declare it after them).
pub struct Net {
    pub name: String,
}

impl Net {
    pub async fn create(docker: &Docker, name: &str) -> Net {
        let labels = HashMap::from([(LABEL.to_string(), std::process::id().to_string())]);
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            internal: Some(true),
            labels: Some(labels),
            ..Default::default()
        };
        match tokio::time::timeout(Duration::from_secs(30), docker.create_network(req)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("can't create the network {name}: {e}"),
            Err(_) => panic!("creating the network {name} took over 30 s"),
        }
        Net {
            name: name.to_string(),
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Drop can't await: a thread with its own runtime, bounded in time.
        let name = self.name.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let (Ok(rt), Ok(d)) = (rt, Docker::connect_with_local_defaults()) {
                rt.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_secs(20), d.remove_network(&name))
                        .await;
                });
            }
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(Duration::from_secs(25));
    }
}

// ------------------------------------------------------------ the cluster

/// One container and its log.
pub struct Node {
    /// Container name = its DNS name on the test network.
    pub name: String,
    /// "master", "node1", ...
    pub role: String,
    pub container: ContainerAsync<GenericImage>,
    pub logs: Logs,
}

impl Node {
    pub fn id(&self) -> String {
        self.container.id().to_string()
    }
}

/// A master and nodes (harbor i+1 = `nodes[i]`), each node running
/// `ct_probe` (deploy/test/ct_probe.lua) for the harbors in `watch`.
/// Fields drop in order: containers first, then the network.
pub struct Cluster {
    pub docker: Docker,
    pub prefix: String,
    pub watch: Vec<u8>,
    pub master: Node,
    pub nodes: Vec<Node>,
    pub net: Net,
    started: Instant,
}

fn request(
    prefix: &str,
    net: &str,
    role: &str,
    cmd: Vec<String>,
) -> ContainerRequest<GenericImage> {
    let (name, tag) = image();
    GenericImage::new(name, tag)
        .with_cmd(cmd)
        .with_network(net)
        .with_container_name(format!("{prefix}-{role}"))
        .with_label(LABEL, std::process::id().to_string())
        .with_startup_timeout(BOOT)
}

async fn start_container(
    docker: &Docker,
    prefix: &str,
    net: &str,
    role: &str,
    cmd: Vec<String>,
) -> Node {
    let name = format!("{prefix}-{role}");
    let req = request(prefix, net, role, cmd);
    let container = match tokio::time::timeout(BOOT, req.start()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!("can't start the container {name}: {e}"),
        Err(_) => panic!("starting the container {name} took over {BOOT:?}"),
    };
    let logs = Logs::follow(docker, container.id(), role);
    Node {
        name,
        role: role.to_string(),
        container,
        logs,
    }
}

impl Cluster {
    /// Creates the network and starts the master and `n` nodes, waiting for
    /// each to come up (`master listening`, `ct: ready H`).
    pub async fn start(docker: &Docker, tag: &str, n: u8, watch: &[u8]) -> Cluster {
        let started = Instant::now();
        let prefix = format!("skct-{}-{tag}", std::process::id());
        let net = Net::create(docker, &format!("{prefix}-net")).await;
        let cmd = vec![
            "skynet-master".to_string(),
            "--listen".into(),
            format!("0.0.0.0:{MASTER_PORT}"),
        ];
        let master = start_container(docker, &prefix, &net.name, "master", cmd).await;
        let mut c = Cluster {
            docker: docker.clone(),
            prefix,
            watch: watch.to_vec(),
            master,
            nodes: Vec::new(),
            net,
            started,
        };
        c.expect(&c.master.logs, "master listening", UNIX_EPOCH, BOOT)
            .await;
        for h in 1..=n {
            c.add_node(h).await;
        }
        c
    }

    /// The command line of harbor `h`: harbor 1 uses the compose cluster's
    /// node1.conf (it hosts DATACENTER and SERVICE); the others the common
    /// paths. Flags put it on this test's network.
    pub fn node_cmd(&self, h: u8) -> Vec<String> {
        let conf = if h == 1 {
            "/skynet/etc/node1.conf"
        } else {
            "/skynet/etc/common.conf"
        };
        let watch: Vec<String> = self.watch.iter().map(|h| h.to_string()).collect();
        vec![
            "skynet-node".into(),
            conf.into(),
            "--harbor".into(),
            h.to_string(),
            "--master".into(),
            format!("{}-master:{MASTER_PORT}", self.prefix),
            "--address".into(),
            format!("{}-node{h}:{HARBOR_PORT}", self.prefix),
            "--start".into(),
            format!("ct_probe {}", watch.join(" ")),
        ]
    }

    /// Starts harbor `h` (the next one) and waits for its `ct: ready`.
    pub async fn add_node(&mut self, h: u8) {
        assert_eq!(h as usize, self.nodes.len() + 1, "harbors start in order");
        let cmd = self.node_cmd(h);
        let role = format!("node{h}");
        let node = start_container(&self.docker, &self.prefix, &self.net.name, &role, cmd).await;
        self.nodes.push(node);
        let logs = &self.nodes[h as usize - 1].logs;
        self.expect(logs, &format!("ct: ready {h}"), UNIX_EPOCH, BOOT)
            .await;
    }

    pub fn node(&self, h: u8) -> &Node {
        &self.nodes[h as usize - 1]
    }

    pub fn all(&self) -> Vec<&Node> {
        let mut v = vec![&self.master];
        v.extend(self.nodes.iter());
        v
    }

    /// The recent output of every container.
    pub fn dump(&self) -> String {
        self.all().iter().map(|n| n.logs.tail(150)).collect()
    }

    /// Panics with everybody's output.
    pub fn fail(&self, what: &str) -> ! {
        panic!("{what}\n{}", self.dump())
    }

    /// Waits for a line or fails the test with every container's output.
    pub async fn expect(
        &self,
        logs: &Logs,
        needle: &str,
        after: SystemTime,
        timeout: Duration,
    ) -> Line {
        match logs.wait_for(needle, after, timeout).await {
            Some(l) => l,
            None => self.fail(&format!(
                "{}: no line containing {needle:?} within {timeout:?}",
                logs.name
            )),
        }
    }

    /// Harbor `h`'s line about ECHO`target` containing `what` ("up", "all pending failed", ...).
    pub async fn expect_echo(
        &self,
        h: u8,
        target: u8,
        what: &str,
        after: SystemTime,
        timeout: Duration,
    ) -> Line {
        let needle = format!("ct: ECHO{target} {what}");
        self.expect(&self.node(h).logs, &needle, after, timeout)
            .await
    }

    /// Waits until every node has reached every other running node.
    pub async fn all_up(&self, after: SystemTime) {
        let n = self.nodes.len() as u8;
        for h in 1..=n {
            for t in 1..=n {
                if t != h {
                    self.expect_echo(h, t, "up", after, LONG).await;
                }
            }
        }
    }

    /// Fails on any `ct: FAIL` line.
    pub fn no_failures(&self) {
        for n in &self.nodes {
            let f = n.logs.all("ct: FAIL", UNIX_EPOCH);
            if !f.is_empty() {
                self.fail(&format!("{}: failed checks {f:#?}", n.role));
            }
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    // -------------------------------------------------------- faults

    /// Runs the Docker request `op` (`what`: "kill node2", ...) for at most
    /// `limit`; fails the test with everybody's output when Docker refuses
    /// or takes longer.
    async fn docker_step<T, E: std::fmt::Display>(
        &self,
        what: &str,
        limit: Duration,
        op: impl std::future::Future<Output = Result<T, E>>,
    ) -> T {
        match tokio::time::timeout(limit, op).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => self.fail(&format!("{what}: {e}")),
            Err(_) => self.fail(&format!("{what} took over {limit:?}")),
        }
    }

    /// SIGKILL; returns when Docker has delivered it.
    pub async fn kill(&self, node: &Node) -> SystemTime {
        let at = SystemTime::now();
        let opts = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        let id = node.id();
        let kill = self.docker.kill_container(&id, Some(opts));
        self.docker_step(&format!("kill {}", node.role), FAULT_LIMIT, kill)
            .await;
        at
    }

    /// `docker stop`: SIGTERM, then SIGKILL after `grace`. Returns when the
    /// container is gone, with the time that took.
    pub async fn stop(&self, node: &Node, grace: Duration) -> (SystemTime, Duration) {
        let at = SystemTime::now();
        let t = Instant::now();
        let opts = StopContainerOptions {
            t: Some(grace.as_secs() as i32),
            signal: None,
        };
        let id = node.id();
        let stop = self.docker.stop_container(&id, Some(opts));
        self.docker_step(&format!("stop {}", node.role), grace + FAULT_LIMIT, stop)
            .await;
        (at, t.elapsed())
    }

    /// The container's anonymous memory (its processes' heap and stacks,
    /// the cgroup's `anon`; `usage` where that is missing), in bytes.
    pub async fn memory(&self, node: &Node) -> Option<u64> {
        let opts = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let mut stream = Box::pin(self.docker.stats(&node.id(), Some(opts)));
        let stats = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .ok()??
            .ok()?;
        let m = stats.memory_stats?;
        m.stats
            .as_ref()
            .and_then(|s| s.get("anon").copied())
            .or(m.usage)
    }

    /// The exit code of a stopped container.
    pub async fn exit_code(&self, node: &Node) -> Option<i64> {
        self.docker
            .inspect_container(&node.id(), None::<InspectContainerOptions>)
            .await
            .ok()?
            .state?
            .exit_code
    }

    /// Starts a stopped container again (same name, same command).
    pub async fn restart(&self, node: &Node) -> SystemTime {
        let at = SystemTime::now();
        let start = node.container.start();
        self.docker_step(&format!("start {} again", node.role), BOOT, start)
            .await;
        at
    }

    /// Takes the container off the test network (its links go silent).
    pub async fn disconnect(&self, node: &Node) -> SystemTime {
        let at = SystemTime::now();
        let req = NetworkDisconnectRequest {
            container: node.id(),
            force: Some(true),
        };
        let cut = self.docker.disconnect_network(&self.net.name, req);
        self.docker_step(&format!("disconnect {}", node.role), FAULT_LIMIT, cut)
            .await;
        at
    }

    /// Puts the container back on the test network.
    pub async fn connect(&self, node: &Node) -> SystemTime {
        let at = SystemTime::now();
        let req = NetworkConnectRequest {
            container: node.id(),
            ..Default::default()
        };
        let heal = self.docker.connect_network(&self.net.name, req);
        self.docker_step(&format!("connect {}", node.role), FAULT_LIMIT, heal)
            .await;
        at
    }
}

/// Runs a test body with an overall time limit.
pub async fn limited<F: std::future::Future<Output = ()>>(test: &str, f: F) {
    if tokio::time::timeout(TEST_LIMIT, f).await.is_err() {
        panic!("{test} did not finish within {TEST_LIMIT:?}");
    }
}

// ------------------------------------------------------------ commands

/// Runs a command to completion within `timeout` (killed after it);
/// returns its exit status and combined output.
pub fn run_cmd(
    cmd: &mut std::process::Command,
    timeout: Duration,
) -> Result<(bool, String), String> {
    use std::process::Stdio;
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{shown}: {e}"))?;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown}: still running after {timeout:?}; killed"));
            }
            Err(e) => return Err(format!("{shown}: {e}")),
        }
    };
    let text = t_out.join().unwrap_or_default() + &t_err.join().unwrap_or_default();
    Ok((status.success(), text))
}
