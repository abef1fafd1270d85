//! skynet.cluster.core in a real node: `test/t_cluster_core.lua` replays the
//! calls of `test/vectors/cluster.txt`, whose results C skynet gave, and
//! checks round trips, block ownership and malformed packets. An ignored
//! test sends our packets to a C skynet cluster node (needs a built C
//! skynet: `SKYNET_C_ROOT=/path/to/skynet cargo test --test cluster_core --
//! --ignored`).

mod common;
mod live;

use common::{repo_root, Node};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn cluster_core_matches_skynet() {
    let vectors = repo_root().join("test/vectors/cluster.txt");
    let rows = std::fs::read_to_string(&vectors)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    let node = Node::new("t_cluster_core")
        .config("cluster_vectors", &format!("\"{}\"", vectors.display()));
    let r = live::run_to_done(&node, Duration::from_secs(120));
    let t = "t_cluster_core";
    let out = r.dump();
    assert!(!r.has("t_cluster_core: MISMATCH"), "{out}");
    assert!(!r.has("t_cluster_core: FAIL"), "{out}");
    assert!(!r.has("ROUND TRIP FAIL"), "{out}");
    r.says(t, &format!("vectors {rows} passed {rows}"));
    for line in [
        "round trips 32 failed 0",
        "100000 bytes in packets 5",
        "reply pieces 5 true 100001 true",
        "error reply 32775 3 false 32768",
        "request frees block true",
        "stale false packrequest: invalid pointer (not a live message block)",
        "append frees block true again",
        "response keeps block kept",
        "multipart request frees block true",
        "empty push 0009000400000000000000",
        "truncated errors 46 values 19",
        "malformed: Invalid cluster message (size=3): type 0x80 needs 11 bytes",
        "malformed: Invalid cluster message size 12 (multi req must be 13)",
        "malformed: Invalid cluster response type 7",
        "malformed: Invalid cluster response size 6 (multi begin must be 9)",
        "malformed: Invalid req package type 255",
        "malformed: Invalid req package. size == 0",
        "bad size false unpackrequest: invalid size 5 (the block has 2 bytes)",
        "null with size false packresponse: null pointer with size 3",
        "handed 10 2 1 1 @far 1 hand true",
        "handed 70000 2 4 1 @far 1 hand true",
        "nodename true true",
        "isname true nil",
        "done",
    ] {
        r.says(t, line);
    }
}

/// C skynet kills itself when the test ends, whatever happens.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs a built C skynet in SKYNET_C_ROOT"]
fn packets_are_understood_by_c_skynet() {
    let c_root = std::env::var("SKYNET_C_ROOT").expect("SKYNET_C_ROOT: a built C skynet");
    let dir = std::env::temp_dir().join(format!("skynet-c-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config");
    let ours = repo_root().join("test/c_skynet");
    std::fs::write(
        &cfg,
        format!(
            "root = \"{c_root}/\"\nthread = 2\nharbor = 0\nstart = \"c_cluster_main\"\n\
             bootstrap = \"snlua bootstrap\"\n\
             luaservice = \"{}/?.lua;\" .. root .. \"service/?.lua\"\n\
             lualoader = root .. \"lualib/loader.lua\"\n\
             lua_path = root .. \"lualib/?.lua;\" .. root .. \"lualib/?/init.lua\"\n\
             lua_cpath = root .. \"luaclib/?.so\"\ncpath = root .. \"cservice/?.so\"\n",
            ours.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(format!("{c_root}/skynet"))
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start C skynet");
    let out = child.stdout.take().unwrap();
    let _c = Killed(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let port = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("C skynet printed no port");
        if let Some(p) = line.split("c_cluster_main: port ").nth(1) {
            break p.trim().to_string();
        }
    };
    let node = Node::new("t_cluster_c").config("cport", &format!("\"{port}\""));
    let r = live::run_to_done(&node, Duration::from_secs(30));
    let t = "t_cluster_c";
    let out = r.dump();
    assert!(!r.has("t_cluster_c: FAIL"), "{out}");
    for line in [
        "query 1 true integer",
        "by name 2 true echo hi 1",
        "by address after a trace tag 3 true echo num 2",
        "multipart 4 true echo true 4",
        "pushes 6 true 5,100000",
        "error 7 false",
        "unknown name 8 false Invalid name",
        "done",
    ] {
        r.says(t, line);
    }
}
