//! skynet.multicast across two harbors: a `skynet-master` and two nodes on
//! loopback, both running `test/cluster_mc.lua`; node 1 (which hosts
//! DATACENTER) drives: channels made on either harbor are subscribed and
//! published from both, unsubscribe stops a node's copies, delete reaches
//! the owner, and no package is left alive on either node.

use integration_tests::*;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(20);
const RUN: Duration = Duration::from_secs(60);

fn node(harbor: u8, master_port: u16, role: &str) -> NodeConfig {
    let mut c = NodeConfig::new(harbor, master_port, role);
    c.global_services = harbor == 1;
    c.extra.push(("start".into(), "\"cluster_mc\"".into()));
    c
}

/// The `cluster_mc: ...` texts of `p`, without the tag.
fn said(p: &Proc) -> Vec<String> {
    p.lines()
        .into_iter()
        .filter_map(|l| {
            l.text
                .find("cluster_mc: ")
                .map(|i| l.text[i + "cluster_mc: ".len()..].to_string())
        })
        .collect()
}

#[test]
fn channels_of_either_harbor_are_used_from_the_other() {
    let _serial = serial();
    let master_port = free_port();
    let master = start_master(master_port);
    master.expect("master listening", BOOT, &[&master]);
    let n1 = node(1, master_port, "driver").start();
    n1.expect("cluster_mc: ready 1", BOOT, &[&master, &n1]);
    let n2 = node(2, master_port, "serve").start();
    let all = [&master, &n1, &n2];
    n2.expect("cluster_mc: ready 2", BOOT, &all);
    n1.expect("cluster_mc: done", RUN, &all);
    let want = [
        "ready 1",
        "channel of harbor 2 low byte 2",
        "harbor 1 publishes to harbor 2's channel 6 of 6",
        "harbor 2 publishes to its channel 6 of 6",
        "channel of harbor 1 low byte 1",
        "harbor 2 publishes to harbor 1's channel 6 of 6",
        "harbor 1 publishes to its channel 6 of 6",
        "after delivery packages 0 0",
        "harbor 2's subscribers still get c2 3 of 3",
        "harbor 1's subscribers get nothing 3 of 3",
        "publish on harbor 2 after delete false multicast: channel 2 does not exist (deleted?)",
        "subscribe on harbor 1 after delete false multicast: channel 2 does not exist (deleted?)",
        "at the end packages 0 0",
        "done",
    ];
    assert_eq!(said(&n1), want, "\n{}", dump(&all));
    assert!(!n1.has("panicked") && !n2.has("panicked"), "{}", dump(&all));
}
