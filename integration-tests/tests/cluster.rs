//! Multi-node tests: a `skynet-master` and several `skynet-node` processes on
//! loopback, each node running `test/cluster_main.lua` in some role (see
//! that file). Node 1 hosts DATACENTER and SERVICE (`global_services =
//! true`). Run with `--nocapture` to see the measured timings.

use bytes::BytesMut;
use integration_tests::*;
use skynet_proto::auth::{self, LinkRole, MasterRole, Secret};
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
fn without_a_global_services_key_the_first_harbor_hosts_them() {
    let _serial = serial();
    // No node's config names the host of DATACENTER and SERVICE.
    let net = start_net_with(&["serve", "serve", "basic"], |c| c.global_services = false);
    net.expect(
        0,
        "Global services: this node hosts DATACENTER and SERVICE",
        BOOT,
    );
    for i in [1, 2] {
        net.expect(
            i,
            "Global services: hosted by the first harbor that joined",
            BOOT,
        );
    }
    net.expect(2, "cluster_main: done", RUN);
    net.no_failures();
}

#[test]
fn a_cluster_that_cannot_boot_says_why() {
    let _serial = serial();
    let master_port = free_port();
    let master = start_master(master_port);
    if master.wait_for("master listening", BOOT).is_none() {
        panic!("master did not start\n{}", master.text());
    }
    // Every node says it does not host the global services: nobody does.
    let mut c1 = NodeConfig::new(1, master_port, "serve");
    c1.extra.push(("global_services".into(), "false".into()));
    let n1 = c1.start();
    let all = [&master, &n1];
    let first = n1.expect("Waiting 1 s for global name SERVICE", BOOT, &all);
    assert!(
        first
            .text
            .contains("Set global_services = true in one node's config"),
        "{}",
        first.text
    );
    n1.expect("Waiting 2 s for global name SERVICE", BOOT, &all);
    assert!(!n1.has("cluster_main: ready"), "{}", n1.text());
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

fn recv_packet(m: &mut TcpStream) -> MasterPacket {
    let mut n = [0u8; 1];
    m.read_exact(&mut n).expect("a master packet");
    let mut body = vec![0u8; n[0] as usize];
    m.read_exact(&mut body).expect("a master packet body");
    MasterPacket::parse(&body).unwrap()
}

fn send_packet(m: &mut TcpStream, p: &MasterPacket) {
    m.write_all(&encode_frame(p).unwrap()).unwrap();
}

/// Reads `W` and its `P`s; returns the count.
fn recv_wait(m: &mut TcpStream) -> u8 {
    let MasterPacket::Wait { count, peers, .. } = recv_packet(m) else {
        panic!("expected W")
    };
    let peers = peers.expect("our master names the peers");
    for id in peers.iter() {
        assert!(
            matches!(recv_packet(m), MasterPacket::Peer { harbor, .. } if harbor == id),
            "P {id}"
        );
    }
    count
}

/// The test joins the master as harbor `id` announcing `address`, proving
/// `secret` if given; returns the master connection after `W` and its `P`s.
fn fake_join(master_port: u16, id: u8, address: &str, secret: Option<&Secret>) -> TcpStream {
    let mut m = TcpStream::connect(("127.0.0.1", master_port)).unwrap();
    m.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send_packet(
        &mut m,
        &MasterPacket::Handshake {
            harbor: id,
            address: address.into(),
        },
    );
    if let Some(secret) = secret {
        let MasterPacket::Challenge { nonce } = recv_packet(&mut m) else {
            panic!("expected K")
        };
        let mine = [0x5a; auth::NONCE_LEN];
        let mac = auth::master_proof(secret, MasterRole::Slave, id, address, &nonce, &mine);
        send_packet(&mut m, &MasterPacket::Answer { nonce: mine, mac });
    }
    recv_wait(&mut m);
    m
}

/// Reads master packets until `C id addr`; returns the address.
fn await_connect(m: &mut TcpStream, id: u8) -> String {
    loop {
        if let MasterPacket::Connect { harbor, address } = recv_packet(m) {
            if harbor == id {
                return address;
            }
        }
    }
}

/// A TEXT frame for the logger (local id 1) of the receiving node: if it is
/// delivered, `text` appears in that node's log.
fn logger_frame(text: &str) -> HarborFrame {
    HarborFrame {
        source: 0x0700_0001,
        destination: 1,
        ptype: 0,
        session: 0,
        payload: bytes::Bytes::copy_from_slice(text.as_bytes()),
    }
}

/// Connects to `port` claiming harbor `id`, and sends a forged frame right
/// behind the id byte. The connection must be closed without an answer.
fn rogue_link(port: u16, id: u8, forged: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut bytes = vec![id];
    bytes.extend(logger_frame(forged).to_bytes().unwrap());
    s.write_all(&bytes).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("a refused link got an answer: {other:?} {b:?}"),
    }
}

#[test]
fn rogue_harbor_links_are_refused() {
    let _serial = serial();
    let mut net = start_net(&["serve", "serve"]);
    // Harbor 9 (this test) joins, announcing an IP it will not connect from.
    let fake = TcpListener::bind("127.0.0.2:0").unwrap();
    let fake_port = fake.local_addr().unwrap().port();
    let mut m9 = fake_join(net.master_port, 9, &format!("127.0.0.2:{fake_port}"), None);
    // Harbor 3 joins after it: harbors 1, 2 and 9 are announced to it.
    let c3 = NodeConfig::new(3, net.master_port, "serve");
    let port3 = c3.port;
    net.nodes.push(c3.start());
    net.configs.push(c3);
    await_connect(&mut m9, 3);
    net.expect(2, "Harbor 1 connected", BOOT);
    net.expect(2, "Harbor 2 connected", BOOT);

    // Never announced; already linked; this node's own id; 0.
    rogue_link(port3, 7, "FORGED-unannounced");
    net.expect(
        2,
        "(claims harbor 7): the master did not announce harbor 7 to us",
        RUN,
    );
    rogue_link(port3, 1, "FORGED-linked");
    net.expect(2, "(claims harbor 1): harbor 1 is already linked", RUN);
    rogue_link(port3, 3, "FORGED-own");
    rogue_link(port3, 0, "FORGED-zero");
    net.expect(2, "(claims harbor 0): not another harbor's id", RUN);
    // Announced, but from another IP than harbor 9's.
    rogue_link(port3, 9, "FORGED-address");
    let l = net.expect(2, "(claims harbor 9): its IP is not that of harbor 9", RUN);
    assert!(
        l.text.contains("Refuse harbor link from 127.0.0.1:")
            && l.text.contains("it announced 127.0.0.2:"),
        "{}",
        l.text
    );

    // A link the master did announce (harbor 10, joining after harbor 3,
    // which connects to it) carries the same kind of frame to the logger:
    // that is what the rogue frames would have done.
    let fake10 = TcpListener::bind("127.0.0.1:0").unwrap();
    let port10 = fake10.local_addr().unwrap().port();
    let _m10 = fake_join(net.master_port, 10, &format!("127.0.0.1:{port10}"), None);
    let mut links = Vec::new();
    let mut to3 = None;
    for _ in 0..3 {
        let (mut s, _) = fake10.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut id = [0u8; 1];
        s.read_exact(&mut id).unwrap();
        s.write_all(&[10]).unwrap();
        if id[0] == 3 {
            to3 = Some(s);
        } else {
            links.push(s);
        }
    }
    let mut to3 = to3.expect("harbor 3 connected to harbor 10");
    write_frame(&mut to3, &logger_frame("DELIVERED-over-a-real-link"));
    net.expect(2, "DELIVERED-over-a-real-link", RUN);
    std::thread::sleep(Duration::from_millis(200));
    for n in &net.nodes {
        assert!(!n.has("FORGED"), "{}", net.dump());
    }
    net.no_failures();
    drop((links, to3, m9, fake));
}

#[test]
fn cluster_secret_guards_the_master_and_the_links() {
    let _serial = serial();
    let secret = Secret::new("s3cret-of-the-test").unwrap();
    let dir = temp_dir("secret");
    let file = dir.join("secret");
    std::fs::write(&file, "s3cret-of-the-test\n").unwrap();
    let master_port = free_port();
    let master = start_master_with(master_port, &["--secret-file", file.to_str().unwrap()]);
    if master.wait_for("master listening", BOOT).is_none() {
        panic!("master did not start\n{}", master.text());
    }
    let with_secret = |c: &mut NodeConfig, s: &str| {
        c.extra.push(("cluster_secret".into(), format!("\"{s}\"")));
    };
    let mut net = Net {
        master_port,
        master,
        configs: Vec::new(),
        nodes: Vec::new(),
    };
    for h in 1..=2u8 {
        let mut c = NodeConfig::new(h, master_port, "serve");
        c.global_services = h == 1;
        with_secret(&mut c, "s3cret-of-the-test");
        net.nodes.push(c.start());
        net.configs.push(c);
        net.expect(
            usize::from(h - 1),
            &format!("cluster_main: ready {h}"),
            BOOT,
        );
    }
    net.expect(1, "Harbor 1 connected", BOOT);

    // A node with another secret, or none, does not get in.
    let mut wrong = NodeConfig::new(4, master_port, "serve");
    with_secret(&mut wrong, "guess");
    let wrong = wrong.start();
    wrong.expect("Can't connect to master", BOOT, &[&wrong, &net.master]);
    let plain = NodeConfig::new(5, master_port, "serve").start();
    plain.expect(
        "the master asks for a cluster secret: set cluster_secret",
        BOOT,
        &[&plain],
    );
    net.master
        .expect("wrong cluster secret proof", BOOT, &[&net.master]);
    drop((wrong, plain));

    // Harbor 9 (this test, with the secret) joins; harbor 3 after it.
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_port = fake.local_addr().unwrap().port();
    let mut m9 = fake_join(
        master_port,
        9,
        &format!("127.0.0.1:{fake_port}"),
        Some(&secret),
    );
    let mut c3 = NodeConfig::new(3, master_port, "serve");
    with_secret(&mut c3, "s3cret-of-the-test");
    net.nodes.push(c3.start());
    net.configs.push(c3);
    let addr3 = await_connect(&mut m9, 3);

    // Without the proof: refused.
    let mut s = TcpStream::connect(addr3.as_str()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&[9]).unwrap();
    let mut hello = [0u8; 1 + auth::NONCE_LEN];
    s.read_exact(&mut hello).unwrap();
    assert_eq!(hello[0], 3);
    let mut junk = vec![0u8; auth::NONCE_LEN + auth::MAC_LEN];
    junk.extend(logger_frame("FORGED-no-secret").to_bytes().unwrap());
    s.write_all(&junk).unwrap();
    net.expect(2, "(claims harbor 9): wrong cluster secret proof", RUN);

    // With it: linked, both ways proved.
    let mut s = TcpStream::connect(addr3.as_str()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&[9]).unwrap();
    s.read_exact(&mut hello).unwrap();
    let theirs: [u8; auth::NONCE_LEN] = hello[1..].try_into().unwrap();
    let mine = [0x33; auth::NONCE_LEN];
    let mut msg = mine.to_vec();
    msg.extend(auth::link_proof(
        &secret,
        LinkRole::Connector,
        9,
        3,
        &theirs,
        &mine,
    ));
    s.write_all(&msg).unwrap();
    let mut proof = [0u8; auth::MAC_LEN];
    s.read_exact(&mut proof).unwrap();
    assert!(auth::check_link_proof(
        &secret,
        LinkRole::Acceptor,
        9,
        3,
        &theirs,
        &mine,
        &proof
    ));
    net.expect(2, "Harbor 9 connected", RUN);
    write_frame(&mut s, &logger_frame("DELIVERED-with-the-secret"));
    net.expect(2, "DELIVERED-with-the-secret", RUN);
    net.expect(2, "Harbor 1 connected", RUN);
    assert!(!net.nodes[2].has("FORGED"), "{}", net.dump());
    net.no_failures();
    drop((s, m9, fake));
}

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
    assert_eq!(recv_wait(&mut m), 2);

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
