//! skynet.cluster.core in a real node: `test/t_cluster_core.lua` replays the
//! calls of `test/vectors/cluster.txt`, whose results C skynet gave, and
//! checks round trips, block ownership and malformed packets.

mod common;
mod live;

use common::{repo_root, Node};
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
    let r = live::run_to_done(&node, Duration::from_secs(60));
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
