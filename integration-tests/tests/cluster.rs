//! Multi-node tests: a `skynet-master` and several `skynet-node` processes on
//! loopback, each node running `test/cluster_main.lua` in some role (see
//! that file). Node 1 hosts DATACENTER and SERVICE (`global_services =
//! true`). Run with `--nocapture` to see the measured timings.

use bytes::BytesMut;
use integration_tests::*;
use skynet_proto::handle::Handle;
use skynet_proto::harbor::HarborFrame;
use skynet_proto::master::{encode_frame, MasterPacket};
use skynet_proto::seri::{self, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const BOOT: Duration = Duration::from_secs(20);
const RUN: Duration = Duration::from_secs(60);

struct Net {
    master_port: u16,
    master: Proc,
    configs: Vec<NodeConfig>,
    nodes: Vec<Proc>,
}

impl Net {
    fn all(&self) -> Vec<&Proc> {
        let mut v = vec![&self.master];
        v.extend(self.nodes.iter());
        v
    }

    fn dump(&self) -> String {
        dump(&self.all())
    }

    /// Panics with everybody's output unless `node` prints `needle` in time.
    fn expect(&self, node: usize, needle: &str, timeout: Duration) -> Line {
        match self.nodes[node].wait_for(needle, timeout) {
            Some(l) => l,
            None => panic!(
                "{}: no line containing {needle:?} within {timeout:?}\n{}",
                self.nodes[node].name,
                self.dump()
            ),
        }
    }

    fn no_failures(&self) {
        if std::env::var_os("CLUSTER_DUMP").is_some() {
            println!("{}", self.dump());
        }
        for n in &self.nodes {
            let f = failures(n);
            assert!(
                f.is_empty(),
                "{}: failed checks {f:#?}\n{}",
                n.name,
                self.dump()
            );
        }
    }
}

/// Master, then nodes 1..=roles.len() in order (node 1 hosts the global
/// services); each node's `ready` line is awaited before the next starts.
fn start_net(roles: &[&str]) -> Net {
    start_net_with(roles, |_| {})
}

/// [`start_net`], with `tune` applied to each node's config first.
fn start_net_with(roles: &[&str], tune: impl Fn(&mut NodeConfig)) -> Net {
    let master_port = free_port();
    let master = start_master(master_port);
    if master.wait_for("master listening", BOOT).is_none() {
        panic!("master did not start\n{}", master.text());
    }
    let mut net = Net {
        master_port,
        master,
        configs: Vec::new(),
        nodes: Vec::new(),
    };
    for (i, role) in roles.iter().enumerate() {
        let h = (i + 1) as u8;
        let mut c = NodeConfig::new(h, master_port, role);
        c.global_services = h == 1;
        tune(&mut c);
        let p = c.start();
        net.configs.push(c);
        net.nodes.push(p);
        net.expect(i, &format!("cluster_main: ready {h}"), BOOT);
    }
    net
}

#[test]
fn cross_node_calls_names_datacenter_and_uniqueservice() {
    let _serial = serial();
    let net = start_net(&["serve", "serve", "basic"]);
    net.expect(2, "cluster_main: done", RUN);
    report(&net.nodes[2]);
    net.no_failures();
    // The remote harbor answered the call to a missing service.
    assert!(
        net.nodes[1].has("Unknown destination :2abcdef from :3"),
        "{}",
        net.dump()
    );
}

#[test]
fn embedded_master_with_standalone() {
    let _serial = serial();
    // skynet's layout: node 1 runs the master itself (config `standalone`)
    // and therefore hosts DATACENTER and SERVICE.
    let master_port = free_port();
    let mut c1 = NodeConfig::new(1, master_port, "serve");
    c1.extra
        .push(("standalone".into(), format!("\"127.0.0.1:{master_port}\"")));
    let n1 = c1.start();
    n1.expect("cluster_main: ready 1", BOOT, &[&n1]);
    assert!(n1.has("cmaster listen on 127.0.0.1:"), "{}", n1.text());
    let n2 = NodeConfig::new(2, master_port, "serve").start();
    n2.expect("cluster_main: ready 2", BOOT, &[&n1, &n2]);
    let n3 = NodeConfig::new(3, master_port, "basic").start();
    let all = [&n1, &n2, &n3];
    n3.expect("cluster_main: done", RUN, &all);
    report(&n3);
    for n in all {
        let f = failures(n);
        assert!(
            f.is_empty(),
            "{}: failed checks {f:#?}\n{}",
            n.name,
            dump(&all)
        );
    }
}

#[test]
fn killed_node_fails_pending_calls_and_rejoins() {
    let _serial = serial();
    let mut net = start_net(&["serve", "serve", "kill"]);
    net.expect(2, "cluster_main: pending 5", RUN);
    std::thread::sleep(Duration::from_millis(200));
    let killed = net.nodes[1].kill9();
    let failed = net.expect(2, "cluster_main: all calls failed", Duration::from_secs(10));
    let dt = failed.at.duration_since(killed);
    println!(
        "kill -9 of harbor 2: 5 pending calls failed {} ms after the kill",
        dt.as_millis()
    );
    assert!(
        dt < Duration::from_secs(2),
        "pending calls failed only after {dt:?}"
    );
    net.expect(2, "cluster_main: ok link waiter returned", RUN);
    net.expect(
        2,
        "cluster_main: ok a call after the failure fails at once",
        RUN,
    );
    net.expect(0, "Harbor 2 down", RUN);
    net.expect(2, "cluster_main: waiting for rejoin", RUN);

    // Same harbor id, same address.
    let restarted = Instant::now();
    let again = net.configs[1].start();
    net.nodes[1] = again;
    let back = net.expect(2, "cluster_main: ok rejoined", RUN);
    println!(
        "harbor 2 restarted: reachable from harbor 3 {} ms after its process started",
        back.at.duration_since(restarted).as_millis()
    );
    net.expect(2, "cluster_main: done", RUN);
    net.expect(1, "cluster_main: ready 2", RUN);
    report(&net.nodes[2]);
    net.no_failures();
}

#[test]
fn master_restart_keeps_traffic_and_names() {
    let _serial = serial();
    let mut net = start_net(&["serve", "serve", "master"]);
    net.expect(2, "cluster_main: ready for master kill", RUN);
    let killed = net.master.kill9();
    let lost = net.expect(2, "cluster_main: master lost", Duration::from_secs(10));
    println!(
        "master killed: LINKMASTER returned after {} ms",
        lost.at.duration_since(killed).as_millis()
    );
    net.expect(
        2,
        "cluster_main: ok traffic between nodes while the master is down",
        RUN,
    );
    net.expect(2, "cluster_main: outage checks done", RUN);
    for i in 0..3 {
        net.expect(i, "Can't connect to master", RUN);
    }

    let restarted = Instant::now();
    net.master = start_master(net.master_port);
    for i in 0..3 {
        let l = net.expect(i, "Reconnected to master", RUN);
        net.expect(i, "Re-registered", RUN);
        println!(
            "{} reconnected to the new master {} ms after it started",
            net.nodes[i].name,
            l.at.duration_since(restarted).as_millis()
        );
    }
    // A node that joins now finds every name, so all were registered again.
    let mut c4 = NodeConfig::new(4, net.master_port, "late");
    c4.global_services = false;
    net.nodes.push(c4.start());
    net.configs.push(c4);
    net.expect(3, "cluster_main: done", RUN);
    report(&net.nodes[2]);
    report(&net.nodes[3]);
    net.no_failures();
}

#[test]
fn node_with_every_worker_busy_still_reads_its_links() {
    let _serial = serial();
    // Harbor 2 runs a single worker and keeps it in one handler for 4.5 s,
    // longer than the heartbeat allows a link to stay silent (3 s): its
    // harbor thread must go on reading (and answering probes) meanwhile.
    let net = start_net_with(&["serve", "serve", "busy"], |c| {
        if c.harbor == 2 {
            c.extra.push(("thread".into(), "1".into()));
        }
    });
    net.expect(2, "cluster_main: done", RUN);
    report(&net.nodes[2]);
    net.no_failures();
    for n in &net.nodes {
        assert!(!n.has("no heartbeat answer"), "{}", net.dump());
    }
}

#[test]
fn stopped_node_is_found_by_the_heartbeat() {
    let _serial = serial();
    let net = start_net(&["serve", "serve", "stop"]);
    net.expect(2, "cluster_main: pending 3", RUN);
    std::thread::sleep(Duration::from_millis(200));
    let stopped = Instant::now();
    net.nodes[1].signal(libc::SIGSTOP);
    let failed = net.expect(2, "cluster_main: all calls failed", Duration::from_secs(15));
    let dt = failed.at.duration_since(stopped);
    println!(
        "SIGSTOP of harbor 2 (half-open link): pending calls failed {} ms later",
        dt.as_millis()
    );
    assert!(dt < Duration::from_secs(6), "heartbeat took {dt:?}");
    net.expect(2, "no heartbeat answer from harbor 2", RUN);
    net.expect(2, "cluster_main: waiting for relink", RUN);
    let resumed = Instant::now();
    net.nodes[1].signal(libc::SIGCONT);
    let back = net.expect(2, "cluster_main: ok relinked", RUN);
    println!(
        "SIGCONT: link 2-3 back {} ms later",
        back.at.duration_since(resumed).as_millis()
    );
    net.expect(2, "cluster_main: done", RUN);
    report(&net.nodes[2]);
    net.no_failures();
}

#[test]
fn node_retries_an_unreachable_master() {
    let _serial = serial();
    let master_port = free_port();
    let mut c1 = NodeConfig::new(1, master_port, "serve");
    c1.global_services = true;
    let mut n1 = c1.start();
    for _ in 0..2 {
        if n1
            .wait_next("Can't connect to master", Duration::from_secs(10))
            .is_none()
        {
            panic!("no retry logged\n{}", n1.text());
        }
    }
    let master = start_master(master_port);
    let all = [&master, &n1];
    n1.expect("Waiting for 0 harbors", BOOT, &all);
    // The names registered before the master was reachable reach it now.
    let n2 = NodeConfig::new(2, master_port, "serve").start();
    let all = [&master, &n1, &n2];
    n2.expect("cluster_main: ready 2", BOOT, &all);
    n2.expect("Harbor 1 connected", BOOT, &all);
}

// ------------------------------------------------------------ fake harbor

fn read_frame(s: &mut TcpStream) -> HarborFrame {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).expect("frame length");
    let len = u32::from_be_bytes(head) as usize;
    let mut buf = BytesMut::from(&head[..]);
    buf.resize(4 + len, 0);
    s.read_exact(&mut buf[4..]).expect("frame body");
    HarborFrame::decode_from(&mut buf).unwrap().unwrap()
}

fn write_frame(s: &mut TcpStream, f: &HarborFrame) {
    s.write_all(&f.to_bytes().unwrap()).unwrap();
}

/// The next frame that is not a link heartbeat (heartbeats are answered).
fn next_frame(s: &mut TcpStream) -> HarborFrame {
    loop {
        let f = read_frame(s);
        if f.destination == 0 {
            if f.ptype == 0 {
                write_frame(
                    s,
                    &HarborFrame {
                        source: Handle::new(9, 0).unwrap().raw(),
                        destination: 0,
                        ptype: 1,
                        session: 0,
                        payload: bytes::Bytes::from_static(b"PONG"),
                    },
                );
            }
            continue;
        }
        return f;
    }
}

#[test]
fn malformed_frame_drops_only_that_link() {
    let _serial = serial();
    let net = start_net(&["fake", "serve"]);
    // Harbor 9 is this test: it joins through the master like a node.
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_port = fake.local_addr().unwrap().port();
    let mut m = TcpStream::connect(("127.0.0.1", net.master_port)).unwrap();
    m.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hello = MasterPacket::Handshake {
        harbor: 9,
        address: format!("127.0.0.1:{fake_port}"),
    };
    m.write_all(&encode_frame(&hello).unwrap()).unwrap();
    let mut n = [0u8; 1];
    m.read_exact(&mut n).unwrap();
    let mut body = vec![0u8; n[0] as usize];
    m.read_exact(&mut body).unwrap();
    assert_eq!(
        MasterPacket::parse(&body).unwrap(),
        MasterPacket::Wait { count: 2 }
    );

    // Both nodes are older: they connect to us and send their id first.
    let mut links = std::collections::HashMap::new();
    for _ in 0..2 {
        let (mut s, _) = fake.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut id = [0u8; 1];
        s.read_exact(&mut id).unwrap();
        s.write_all(&[9]).unwrap();
        links.insert(id[0], s);
    }
    let mut s1 = links.remove(&1).expect("harbor 1 connected");
    net.expect(0, "cluster_main: connected to 9", RUN);

    // A call to :09000005 arrives as a frame; answer it.
    let call = next_frame(&mut s1);
    assert_eq!((call.destination, call.ptype), (5, 10), "{call:?}");
    assert_eq!(Handle(call.source).harbor(), 1);
    let args = seri::unpack(&call.payload).unwrap();
    assert_eq!(args, vec![Value::string("echo"), Value::string("ping")]);
    write_frame(
        &mut s1,
        &HarborFrame {
            source: 0x0900_0005,
            destination: call.source,
            ptype: 1,
            session: call.session,
            payload: seri::pack(&[Value::string("pong")]).unwrap().into(),
        },
    );
    net.expect(0, "cluster_main: ok call answered by the fake harbor", RUN);

    // The next call stays pending.
    let hang = next_frame(&mut s1);
    assert_eq!((hang.destination, hang.ptype), (6, 10), "{hang:?}");
    net.expect(0, "cluster_main: pending on 9", RUN);

    // A frame for a service harbor 1 does not have comes back as ERROR.
    write_frame(
        &mut s1,
        &HarborFrame {
            source: 0x0900_0007,
            destination: 0xab_cdef,
            ptype: 10,
            session: 77,
            payload: seri::pack(&[Value::string("x")]).unwrap().into(),
        },
    );
    let err = next_frame(&mut s1);
    assert_eq!(
        (
            err.source,
            err.destination,
            err.ptype,
            err.session,
            err.payload.len()
        ),
        (0x01ab_cdef, 7, 7, 77, 0),
        "{err:?}"
    );
    net.expect(
        0,
        "Unknown destination :1abcdef from :9000007 type(10)",
        RUN,
    );

    // A length whose first byte is not 0: the link is dropped, the pending call fails.
    let sent = Instant::now();
    s1.write_all(&[0x01, 0, 0, 0x10]).unwrap();
    net.expect(0, "Message is too long from harbor 9", RUN);
    let failed = net.expect(
        0,
        "cluster_main: ok call pending on harbor 9 fails when its link is dropped",
        Duration::from_secs(5),
    );
    println!(
        "oversize frame: pending call failed {} ms after it was sent",
        failed.at.duration_since(sent).as_millis()
    );
    net.expect(0, "cluster_main: done", RUN);
    report(&net.nodes[0]);
    net.no_failures();
    drop(links);
}
