//! Cluster mode (skynet.cluster, no master): `skynet-node` processes with
//! `harbor = 0` on loopback, each running `test/cmode_main.lua` in some role
//! (see that file), plus scripted peers speaking the cluster wire format
//! (inventory §5.4) byte for byte. Node "srv" is a server; the client's
//! cluster config maps the other node names the checks need.

use integration_tests::*;
use skynet_proto::seri::{self, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BOOT: Duration = Duration::from_secs(20);
/// The client's `cluster_timeout` (seconds) in these tests.
const TIMEOUT_S: u64 = 2;

/// A node config for role `role` with extra `key = value` lines (Lua source).
fn config(dir: &Path, name: &str, role: &str, extra: &[(&str, String)]) -> PathBuf {
    let root = repo_root();
    let mut s = format!(
        "root = \"{}/\"\nthread = 2\nharbor = 0\nstart = \"cmode_main\"\n\
         cmode_role = \"{role}\"\ncluster_timeout = {TIMEOUT_S}\n\
         luaservice = root..\"service/?.lua;\"..root..\"test/?.lua\"\n\
         lualoader = root..\"lualib/loader.lua\"\n\
         lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua\"\n\
         snax = root..\"test/snax/?.lua\"\n",
        root.display()
    );
    for (k, v) in extra {
        s.push_str(&format!("{k} = {v}\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, s).unwrap();
    path
}

/// Writes a cluster config (node -> address or false) and returns its path.
fn names(dir: &Path, entries: &[(&str, Option<u16>)]) -> PathBuf {
    let mut s = String::new();
    for (node, port) in entries {
        match port {
            Some(p) => s.push_str(&format!("{node} = \"127.0.0.1:{p}\"\n")),
            None => s.push_str(&format!("{node} = false\n")),
        }
    }
    let path = dir.join("clustername.lua");
    std::fs::write(&path, s).unwrap();
    path
}

fn quoted(p: &Path) -> String {
    format!("\"{}\"", p.display())
}

/// Starts a server node ("cmode: ready") serving on `port`, answering
/// `whoami` with `id`.
fn server(dir: &Path, id: &str, port: u16) -> Proc {
    server_with(dir, id, port, &[])
}

/// [`server`] with extra config lines (`cmode_errpeer_port`, `cmode_snax`).
fn server_with(dir: &Path, id: &str, port: u16, extra: &[(&str, String)]) -> Proc {
    let mut keys = vec![
        ("cmode_port", port.to_string()),
        ("cmode_id", format!("\"{id}\"")),
    ];
    keys.extend_from_slice(extra);
    let cfg = config(dir, &format!("server{id}"), "server", &keys);
    let mut cmd = Command::new(bin("skynet-node"));
    cmd.arg(cfg);
    let p = Proc::spawn(&format!("server{id}"), cmd);
    p.expect("cmode: ready", BOOT, &[&p]);
    p
}

fn client(dir: &Path, role: &str, extra: &[(&str, String)]) -> Proc {
    let cfg = config(dir, role, role, extra);
    let mut cmd = Command::new(bin("skynet-node"));
    cmd.arg(cfg);
    Proc::spawn(role, cmd)
}

fn fails(p: &Proc) -> Vec<String> {
    p.lines()
        .into_iter()
        .filter(|l| l.text.contains("cmode: FAIL"))
        .map(|l| l.text)
        .collect()
}

/// A listener that accepts connections and never answers (a silent peer).
fn silent_listener() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

/// Every call path of `test/cmode_main.lua`'s client role: names and
/// addresses, 1 B to 4 MiB both ways, 10,000 ordered sends, 100 concurrent
/// calls, errors, unknown names and nodes, a node mapped to false, a refused
/// and a silent peer, proxies, status and INFO, reload, trace tags.
#[test]
fn every_call_path() {
    let _g = serial();
    let dir = temp_dir("cmode-all");
    let (pa, pb) = (free_port(), free_port());
    let a = server(&dir, "A", pa);
    let b = server(&dir, "B", pb);
    let silent = silent_listener();
    let cluster = names(
        &dir,
        &[
            ("srv", Some(pa)),
            ("mv", Some(pa)),
            ("down", None),
            ("refused", Some(free_port())),
            ("silent", Some(silent)),
        ],
    );
    let c = client(
        &dir,
        "client",
        &[
            ("cluster", quoted(&cluster)),
            ("cmode_b", format!("\"127.0.0.1:{pb}\"")),
        ],
    );
    c.expect("cmode: done", Duration::from_secs(120), &[&c, &a, &b]);
    let f = fails(&c);
    assert!(
        f.is_empty(),
        "failed checks {f:#?}\n{}",
        dump(&[&c, &a, &b])
    );
    // every check ran (a check that silently vanished would pass otherwise)
    assert_eq!(c.count("cmode: ok"), 32, "{}", c.text());
    // the trace tag went over the wire with the node name and session
    assert!(
        a.lines()
            .iter()
            .any(|l| l.text.contains("cmode-trace") || l.text.contains("tracecall begin")),
        "no trace on the server\n{}",
        a.text()
    );
}

/// Runs client role `role` against a server started with `extra`, with the
/// cluster config `nodes` (besides "srv", the server), until "cmode: done";
/// checks that `oks` checks passed and none failed. Returns (client, server).
fn run_role(
    tag: &str,
    role: &str,
    extra: &[(&str, String)],
    nodes: &[(&str, Option<u16>)],
) -> (Proc, Proc) {
    let dir = temp_dir(tag);
    let port = free_port();
    let a = server_with(&dir, "A", port, extra);
    let mut all = vec![("srv", Some(port))];
    all.extend_from_slice(nodes);
    let cluster = names(&dir, &all);
    let c = client(&dir, role, &[("cluster", quoted(&cluster))]);
    c.expect("cmode: done", Duration::from_secs(60), &[&c, &a]);
    let f = fails(&c);
    assert!(f.is_empty(), "failed checks {f:#?}\n{}", dump(&[&c, &a]));
    (c, a)
}

/// Errors over 32 KiB between processes, as skynet's clusteragent and
/// packresponse give them: a handler's own 100 KB error stays on its node
/// (the caller gets "call failed"); an error text of the peer (cmode_errpeer
/// on the server node, answering with packresponse) reaches the caller cut
/// to exactly 32 KiB: 100,000 and 32,769 bytes are cut, 32,767 and 32,768
/// arrive whole. Both peers serve normal calls afterwards.
#[test]
fn errors_over_32_kib_are_cut() {
    let _g = serial();
    let errport = free_port();
    let (c, a) = run_role(
        "cmode-cut",
        "cut",
        &[("cmode_errpeer_port", errport.to_string())],
        &[("errp", Some(errport))],
    );
    assert_eq!(c.count("cmode: ok"), 7, "{}", c.text());
    for n in [100000, 32767, 32768, 32769] {
        let want = format!("cmode: ok error of {n} bytes cut {}", n.min(0x8000));
        assert!(c.has(&want), "no {want:?}\n{}", c.text());
    }
    // the handler's error was logged, whole, where it was raised
    let long = "E".repeat(100000);
    assert!(
        a.lines().iter().any(|l| l.text.contains(&long)),
        "the 100 KB handler error is not in the server's log"
    );
}

/// cluster.snax: a snax service on the server node called from the client
/// by name (through the server's .service), by address and by registered
/// name; `post` sends and `req` calls, in order.
#[test]
fn snax_across_nodes() {
    let _g = serial();
    let (c, a) = run_role("cmode-snax", "snax", &[("cmode_snax", "true".into())], &[]);
    assert_eq!(c.count("cmode: ok"), 8, "{}", c.text());
    // the objects reached the services on the server, not local ones
    assert!(a.has("snax_counter: init unique 1"), "{}", a.text());
    assert!(a.has("snax_counter: init byaddr 1"), "{}", a.text());
    assert!(!c.has("snax_counter: init"), "{}", c.text());
}

/// Parses "cmode: probe ok|fail <ms> ..." lines.
fn probe_lines(p: &Proc) -> Vec<(Instant, bool, u64, String)> {
    p.lines()
        .into_iter()
        .filter_map(|l| {
            let i = l.text.find("cmode: probe ")?;
            let rest = &l.text[i + 13..];
            let mut it = rest.splitn(3, ' ');
            let ok = it.next()? == "ok";
            let ms = it.next()?.parse().ok()?;
            Some((l.at, ok, ms, it.next().unwrap_or("").to_string()))
        })
        .collect()
}

/// Waits until a probe line after `after` satisfies `f`.
fn wait_probe(
    p: &Proc,
    after: Instant,
    timeout: Duration,
    f: impl Fn(bool, u64, &str) -> bool,
) -> Option<(Instant, bool, u64, String)> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(x) = probe_lines(p)
            .into_iter()
            .find(|(at, ok, ms, e)| *at > after && f(*ok, *ms, e))
        {
            return Some(x);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A killed node fails calls at once; restarted at the same address it is
/// called again without cluster.reload.
#[test]
fn node_death_and_restart() {
    let _g = serial();
    let dir = temp_dir("cmode-kill");
    let port = free_port();
    let mut a = server(&dir, "A", port);
    let cluster = names(&dir, &[("srv", Some(port))]);
    let c = client(&dir, "probe", &[("cluster", quoted(&cluster))]);
    wait_probe(&c, Instant::now() - BOOT, BOOT, |ok, _, _| ok)
        .unwrap_or_else(|| panic!("no successful probe\n{}", dump(&[&c, &a])));
    let killed = a.kill9();
    let (at, _, ms, err) = wait_probe(&c, killed, Duration::from_secs(5), |ok, _, _| !ok)
        .unwrap_or_else(|| panic!("no failure after the kill\n{}", c.text()));
    println!(
        "after kill: failed {:?} later, in {ms} ms: {err}",
        at - killed
    );
    assert!(ms < 1000, "a call to a dead node took {ms} ms: {err}");
    assert!(err.contains("cluster node [srv]"), "unclear error {err}");
    // still down: calls keep failing fast (connection refused)
    let (_, _, ms, err) = wait_probe(&c, at, Duration::from_secs(5), |ok, _, e| {
        !ok && e.contains("connect failed")
    })
    .unwrap_or_else(|| panic!("no refused connect\n{}", c.text()));
    assert!(ms < 1000, "refused connect took {ms} ms");
    println!("while down: {err}");
    let again = Instant::now();
    let a2 = server(&dir, "A", port);
    wait_probe(&c, again, BOOT, |ok, _, _| ok)
        .unwrap_or_else(|| panic!("not called again after the restart\n{}", dump(&[&c, &a2])));
}

/// A stopped node (SIGSTOP: connected, silent) fails calls within the
/// timeout; the heartbeat closes the connection; after SIGCONT calls work.
#[test]
fn stopped_node_fails_within_bound_and_recovers() {
    let _g = serial();
    let dir = temp_dir("cmode-stop");
    let port = free_port();
    let a = server(&dir, "A", port);
    let cluster = names(&dir, &[("srv", Some(port))]);
    let c = client(&dir, "probe", &[("cluster", quoted(&cluster))]);
    wait_probe(&c, Instant::now() - BOOT, BOOT, |ok, _, _| ok)
        .unwrap_or_else(|| panic!("no successful probe\n{}", dump(&[&c, &a])));
    let stopped = Instant::now();
    a.signal(libc::SIGSTOP);
    let bound = Duration::from_secs(TIMEOUT_S) + Duration::from_millis(1500);
    let (at, _, ms, err) = wait_probe(&c, stopped, bound + Duration::from_secs(2), |ok, _, _| !ok)
        .unwrap_or_else(|| {
            a.signal(libc::SIGCONT);
            panic!("no failure while stopped\n{}", c.text())
        });
    println!("stopped: failed {:?} later ({ms} ms): {err}", at - stopped);
    assert!(at - stopped <= bound, "took {:?}", at - stopped);
    assert!(err.contains("no answer within"), "unclear error {err}");
    // the heartbeat gives up on the connection
    c.expect("no answer to a heartbeat", bound * 2, &[&c]);
    std::thread::sleep(Duration::from_millis(500));
    let cont = Instant::now();
    a.signal(libc::SIGCONT);
    wait_probe(&c, cont, Duration::from_secs(10), |ok, _, _| ok)
        .unwrap_or_else(|| panic!("no success after SIGCONT\n{}", dump(&[&c, &a])));
}

fn read_packet(s: &mut TcpStream) -> Vec<u8> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).expect("packet header");
    let mut body = vec![0u8; u16::from_be_bytes(h) as usize];
    s.read_exact(&mut body).expect("packet body");
    body
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn bytes(h: &str) -> Vec<u8> {
    h.split_whitespace()
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect()
}

/// A scripted peer sends the VERIFIED requests of §5.4 to our clusterd and
/// gets the VERIFIED answers byte for byte.
#[test]
fn wire_scripted_peer_to_our_clusterd() {
    let _g = serial();
    let dir = temp_dir("cmode-wire-in");
    let port = free_port();
    let a = server(&dir, "A", port);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // query name "sdb", session 1
    s.write_all(&bytes("00 0d 00 00 00 00 00 01 00 00 00 1c 73 64 62"))
        .unwrap();
    let r = read_packet(&mut s);
    assert_eq!(&r[..5], &bytes("01 00 00 00 01")[..], "{}", hex(&r));
    let handle = match seri::unpack(&r[5..]).unwrap().as_slice() {
        [Value::Integer(h)] => *h,
        v => panic!("query answer {v:?}"),
    };
    assert!(handle > 0);
    // "@sdb" GET "a", session 2
    s.write_all(&bytes(
        "00 10 80 04 40 73 64 62 02 00 00 00 1c 47 45 54 0c 61",
    ))
    .unwrap();
    assert_eq!(
        hex(&read_packet(&mut s)),
        hex(&bytes("02 00 00 00 01 2c 76 61 6c 3a 61"))
    );
    // "@nope": session 3, type 0, "Invalid name"
    s.write_all(&bytes(
        "00 11 80 05 40 6e 6f 70 65 03 00 00 00 1c 47 45 54 0c 61",
    ))
    .unwrap();
    let mut want = bytes("03 00 00 00 00");
    want.extend_from_slice(b"Invalid name");
    assert_eq!(hex(&read_packet(&mut s)), hex(&want));
    // the 40000-char reply: begin (total 40003), one full part, the last
    let big = seri::pack(&[Value::String(b"BIG".to_vec())]).unwrap();
    let mut req = vec![0x80, 4];
    req.extend_from_slice(b"@sdb");
    req.extend_from_slice(&4u32.to_le_bytes());
    req.extend_from_slice(&big);
    let mut pkt = (req.len() as u16).to_be_bytes().to_vec();
    pkt.extend_from_slice(&req);
    s.write_all(&pkt).unwrap();
    let begin = read_packet(&mut s);
    assert_eq!(hex(&begin), hex(&bytes("04 00 00 00 02 43 9c 00 00")));
    let part = read_packet(&mut s);
    assert_eq!(part.len(), 0x8005);
    assert_eq!(&part[..5], &bytes("04 00 00 00 03")[..]);
    let last = read_packet(&mut s);
    assert_eq!(last.len(), 7240);
    assert_eq!(&last[..5], &bytes("04 00 00 00 04")[..]);
    let mut payload = part[5..].to_vec();
    payload.extend_from_slice(&last[5..]);
    assert_eq!(
        seri::unpack(&payload).unwrap(),
        vec![Value::String(vec![b'x'; 40000])]
    );
    drop(a);
}

/// Our clustersender talks to a scripted listener: its requests are the
/// VERIFIED bytes of §5.4, and it understands the VERIFIED answers.
#[test]
fn wire_our_sender_to_scripted_listener() {
    let _g = serial();
    let dir = temp_dir("cmode-wire-out");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let cluster = names(&dir, &[("sdb", Some(port))]);
    let c = client(&dir, "wire", &[("cluster", quoted(&cluster))]);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = (|| -> Result<(), String> {
            let (mut s, _) = l.accept().map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let expect = |s: &mut TcpStream, want: &str| -> Result<(), String> {
                let mut got = vec![0u8; bytes(want).len()];
                s.read_exact(&mut got).map_err(|e| e.to_string())?;
                if got != bytes(want) {
                    return Err(format!("got {} want {want}", hex(&got)));
                }
                Ok(())
            };
            expect(&mut s, "00 0d 00 00 00 00 00 01 00 00 00 1c 73 64 62")?;
            s.write_all(&bytes("00 07 01 00 00 00 01 0a 0a")).unwrap();
            expect(
                &mut s,
                "00 10 80 04 40 73 64 62 02 00 00 00 1c 47 45 54 0c 61",
            )?;
            s.write_all(&bytes("00 0b 02 00 00 00 01 2c 76 61 6c 3a 61"))
                .unwrap();
            expect(
                &mut s,
                "00 11 80 05 40 6e 6f 70 65 03 00 00 00 1c 47 45 54 0c 61",
            )?;
            let mut e = bytes("00 11 03 00 00 00 00");
            e.extend_from_slice(b"Invalid name");
            s.write_all(&e).unwrap();
            expect(&mut s, "00 0e 80 04 40 73 64 62 04 00 00 00 1c 42 49 47")?;
            let payload = seri::pack(&[Value::String(vec![b'x'; 40000])]).unwrap();
            assert_eq!(payload.len(), 40003);
            s.write_all(&bytes("00 09 04 00 00 00 02 43 9c 00 00"))
                .unwrap();
            let mut p = bytes("80 05 04 00 00 00 03");
            p.extend_from_slice(&payload[..0x8000]);
            s.write_all(&p).unwrap();
            let rest = &payload[0x8000..];
            let mut p = ((rest.len() + 5) as u16).to_be_bytes().to_vec();
            p.extend_from_slice(&bytes("04 00 00 00 04"));
            p.extend_from_slice(rest);
            s.write_all(&p).unwrap();
            // hold the connection until the node is done
            std::thread::sleep(Duration::from_secs(3));
            Ok(())
        })();
        let _ = tx.send(r);
    });
    c.expect("cmode: done", Duration::from_secs(30), &[&c]);
    if let Ok(Err(e)) = rx.recv_timeout(Duration::from_secs(10)) {
        panic!("scripted listener: {e}\n{}", c.text());
    }
    assert!(c.has("cmode: wire query 10"), "{}", c.text());
    assert!(c.has("cmode: wire get val:a"), "{}", c.text());
    assert!(
        c.lines()
            .iter()
            .any(|l| l.text.contains("cmode: wire nope false") && l.text.contains("Invalid name")),
        "{}",
        c.text()
    );
    assert!(c.has("cmode: wire big 40000 true"), "{}", c.text());
    assert!(fails(&c).is_empty(), "{}", c.text());
}
