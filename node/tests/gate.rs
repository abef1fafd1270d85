//! Gates end to end: a node runs `test/t_gate.lua` (watchdog and agent) in
//! front of our Lua gate (service/gate.lua on snax.gateserver) or our native
//! gate (`skynet.launch("gate", ...)`), and this test is the clients, over
//! real sockets on 127.0.0.1. Each scenario runs for both gates: the golden
//! stream vectors, many clients at once, the watchdog contract, a client's
//! half-close, maxclient, and bad input (oversized header, garbage, a
//! million random bytes, a slow trickle) which must cost only the sender.

mod common;
mod live;

use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn vectors_dir() -> PathBuf {
    match std::env::var("SKYNET_VECTORS") {
        Ok(d) => PathBuf::from(d),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
    }
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn frame(p: &[u8]) -> Vec<u8> {
    let mut v = (p.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(p);
    v
}

/// The answer `t_gate` gives to an ordinary frame.
fn echo_of(p: &[u8]) -> Vec<u8> {
    let h: String = Sha1::digest(p).iter().map(|b| format!("{b:02x}")).collect();
    format!("E:{}:{h}", p.len()).into_bytes()
}

struct Client {
    s: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the gate");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { s }
    }

    fn send(&mut self, p: &[u8]) {
        self.s.write_all(&frame(p)).unwrap();
    }

    /// The next frame; None at EOF (or a reset).
    fn recv(&mut self) -> Option<Vec<u8>> {
        let mut h = [0u8; 2];
        self.s.read_exact(&mut h).ok()?;
        let mut b = vec![0u8; u16::from_be_bytes(h) as usize];
        self.s.read_exact(&mut b).ok()?;
        Some(b)
    }

    fn ask(&mut self, p: &[u8]) -> Vec<u8> {
        self.send(p);
        self.recv().expect("an answer")
    }

    /// True if the gate closes this connection within `t` (EOF or reset),
    /// reading and dropping whatever comes before.
    fn closed_within(&mut self, t: Duration) -> bool {
        self.s.set_read_timeout(Some(t)).unwrap();
        let deadline = Instant::now() + t;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match self.s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
                Err(_) => return true,
            }
        }
        false
    }
}

/// How many clients the watchdog has open, asked through a fresh client
/// (which counts itself).
fn watchdog_count(port: u16) -> usize {
    let mut c = Client::connect(port);
    let a = c.ask(b"count");
    let n: usize = std::str::from_utf8(&a[2..]).unwrap().parse().unwrap();
    n - 1
}

/// Waits until the watchdog's count is `want` (closes arrive asynchronously).
fn count_becomes(port: u16, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = watchdog_count(port);
        if n == want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(kind: &str) -> (live::Live, u16, u16, u16) {
    let node = common::Node::new("t_gate").config("gate_kind", &format!("{kind:?}"));
    let cfg = live::write_config(&node.config_text(), &format!("gate-{kind}"));
    let mut p = live::Live::spawn(&[&cfg], &[]);
    assert!(
        p.wait_for("t_gate: ports ", Duration::from_secs(20)),
        "no ports line:\n{}",
        p.finish(Duration::from_secs(1)).dump()
    );
    let line = p
        .lines
        .iter()
        .find(|l| l.contains("t_gate: ports "))
        .unwrap();
    let mut it = line.rsplit("ports ").next().unwrap().split(' ');
    let port: u16 = it.next().unwrap().parse().unwrap();
    let small: u16 = it.next().unwrap().parse().unwrap();
    let strict: u16 = it.next().unwrap().parse().unwrap();
    (p, port, small, strict)
}

/// Every row of netpack_stream.tsv, each TCP write sent on its own (with a
/// pause, so they arrive as separate reads), answered frame by frame.
fn stream_vectors(port: u16) {
    let text = std::fs::read_to_string(vectors_dir().join("netpack_stream.tsv")).unwrap();
    let long = frame(&(0..65535u32).map(|i| (i % 256) as u8).collect::<Vec<_>>());
    let mut rows = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let mut at = 0;
        let writes: Vec<Vec<u8>> = cols[1]
            .split('|')
            .map(|w| match w.strip_prefix("len=") {
                Some(rest) => {
                    let n: usize = rest.split(' ').next().unwrap().parse().unwrap();
                    at += n;
                    long[at - n..at].to_vec()
                }
                None => unhex(w),
            })
            .collect();
        let mut c = Client::connect(port);
        for w in &writes {
            c.s.write_all(w).unwrap();
            std::thread::sleep(Duration::from_millis(15));
        }
        for want in cols[2].split('|') {
            let payload = if want == "(empty)" {
                Vec::new()
            } else if want.starts_with("len=") {
                long[2..].to_vec()
            } else {
                unhex(want)
            };
            assert_eq!(c.recv(), Some(echo_of(&payload)), "row {:?}", cols[0]);
        }
        rows += 1;
    }
    assert_eq!(rows, 9);
}

/// 40 clients at once, each sending 25 frames cut into odd pieces, several
/// frames to a write.
fn many_clients(port: u16) {
    let handles: Vec<_> = (0..40u32)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                let payloads: Vec<Vec<u8>> = (0..25u32)
                    .map(|j| vec![(i * 31 + j) as u8; ((i * 97 + j * 13) % 600) as usize])
                    .collect();
                let stream: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
                let step = 1 + (i as usize * 7) % 300;
                for piece in stream.chunks(step) {
                    c.s.write_all(piece).unwrap();
                }
                for p in &payloads {
                    assert_eq!(c.recv(), Some(echo_of(p)), "client {i}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

fn watchdog_contract(port: u16) {
    let mut c = Client::connect(port);
    assert_eq!(c.ask(b"hello"), echo_of(b"hello"));
    assert_eq!(c.ask(b"watchdog"), b"ok");
    assert_eq!(c.ask(b"to the watchdog"), b"W:to the watchdog");
    let mut k = Client::connect(port);
    k.send(b"kick");
    assert!(
        k.closed_within(Duration::from_secs(5)),
        "kicked client not closed"
    );
    drop(c);
    assert_eq!(count_becomes(port, 0), 0, "a close event was lost");
}

/// The client sends, then shuts its writing side: it still gets its answer,
/// then the gate closes (nothing left in CLOSE_WAIT).
fn half_close(port: u16) {
    let mut c = Client::connect(port);
    c.send(b"last words");
    c.s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.recv(), Some(echo_of(b"last words")));
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "half-closed client left open"
    );
    assert_eq!(count_becomes(port, 0), 0);
}

/// The small gate serves two clients; a third is refused; kicking one makes
/// room again (the count follows closeclient).
fn maxclient(small: u16) {
    let mut a = Client::connect(small);
    let mut b = Client::connect(small);
    assert_eq!(a.ask(b"a"), echo_of(b"a"));
    assert_eq!(b.ask(b"b"), echo_of(b"b"));
    let mut c = Client::connect(small);
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "third client not refused"
    );
    a.send(b"kick");
    assert!(a.closed_within(Duration::from_secs(5)));
    for round in 0..3 {
        let mut d = Client::connect(small);
        d.send(b"again");
        // the kick's close may still be on its way: retry briefly
        match d.recv() {
            Some(x) => {
                assert_eq!(x, echo_of(b"again"));
                d.send(b"kick");
                assert!(d.closed_within(Duration::from_secs(5)));
                assert_eq!(b.ask(b"still"), echo_of(b"still"));
                return;
            }
            None => std::thread::sleep(Duration::from_millis(100 * (round + 1))),
        }
    }
    panic!("no room after a kick: the client count is off");
}

/// Each bad client is closed; a good client beside it is served throughout
/// and gets every answer. `port` is the gate with maxpacket 4096.
fn bad_input(port: u16) {
    let mut good = Client::connect(port);
    assert_eq!(good.ask(b"before"), echo_of(b"before"));

    // a frame header over maxpacket (4096), after one good frame
    let mut c = Client::connect(port);
    let mut bytes = frame(b"remember:first");
    bytes.extend_from_slice(&[0x20, 0x00, 1, 2, 3]);
    c.s.write_all(&bytes).unwrap();
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "oversized header not closed"
    );
    // (its answer may not make it out: the gate closes it at once)
    assert_eq!(
        good.ask(b"seen:first"),
        b"yes",
        "a frame before the bad header was lost"
    );

    // garbage: an HTTP request (its first two bytes read as 18245)
    let mut c = Client::connect(port);
    c.s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "garbage not closed"
    );

    // a million random bytes (xorshift)
    let mut c = Client::connect(port);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let junk: Vec<u8> = (0..1_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let writer = {
        let mut s = c.s.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = s.write_all(&junk);
        })
    };
    assert!(
        c.closed_within(Duration::from_secs(10)),
        "random bytes not closed"
    );
    writer.join().unwrap();
    assert_eq!(good.ask(b"during"), echo_of(b"during"));

    // slow trickle: a 100-byte frame, one byte every 200 ms
    let mut c = Client::connect(port);
    c.s.write_all(&[0, 100]).unwrap();
    let t0 = Instant::now();
    let mut closed = false;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(200));
        if c.s.write_all(b"z").is_err() {
            closed = true;
            break;
        }
        assert_eq!(good.ask(b"meanwhile"), echo_of(b"meanwhile"));
    }
    assert!(
        closed || c.closed_within(Duration::from_secs(2)),
        "slow sender kept"
    );
    assert!(t0.elapsed() < Duration::from_secs(6));

    assert_eq!(good.ask(b"after"), echo_of(b"after"));
    drop(good);
    assert_eq!(count_becomes(port, 0), 0, "bad clients still counted");
}

/// 200 clients come and go at once: a third reset their connection, a
/// third close it, a third are kicked. Every one's close reaches the
/// watchdog.
fn churn(port: u16) {
    let handles: Vec<_> = (0..200u32)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                assert_eq!(c.ask(b"hi"), echo_of(b"hi"));
                match i % 3 {
                    0 => {
                        let s = socket2::SockRef::from(&c.s);
                        s.set_linger(Some(Duration::ZERO)).unwrap();
                        drop(c); // RST
                    }
                    1 => drop(c),
                    _ => {
                        c.send(b"kick");
                        assert!(c.closed_within(Duration::from_secs(5)));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(count_becomes(port, 0), 0, "a close event was lost");
}

fn run_all(kind: &str) {
    let (p, port, small, strict) = start(kind);
    let result = std::panic::catch_unwind(|| {
        stream_vectors(port);
        many_clients(port);
        watchdog_contract(port);
        churn(port);
        half_close(port);
        maxclient(small);
        bad_input(strict);
    });
    let run = p.finish(Duration::from_millis(300));
    if let Err(e) = result {
        eprintln!("{}", run.dump());
        std::panic::resume_unwind(e);
    }
    let out = run.dump();
    assert!(
        !run.has("t_gate: FAIL") && !run.has("t_gate: TIMEOUT"),
        "{out}"
    );
    assert!(!run.has("lua call [") && !run.has("traceback"), "{out}");
    run.expect("t_gate: open 127.0.0.1");
    run.expect("t_gate: close");
    let logs: &[&str] = if kind == "lua" {
        &[
            "bytes announced, over the limit of 4096 (maxpacket)",
            "packet of 18245 bytes announced",
            "a packet unfinished for more than 1.00s (slow sender)",
            ": maxclient 3 reached",
        ]
    } else {
        &[
            "bytes announced, over the limit of 4096",
            "packet of 18245 bytes announced",
            "a packet unfinished for more than 1.00s (slow sender)",
            ": max connections 2 reached",
        ]
    };
    for l in logs {
        run.expect(l);
    }
    if kind == "native" {
        let bad = run
            .said("t_gate")
            .iter()
            .filter(|l| *l == "bad launch nil")
            .count();
        assert_eq!(bad, 5, "{out}");
        for l in [
            "Invalid gate parm S :0",
            "Invalid data header style",
            "Need max connection",
            "Invalid watchdog .nobody",
            "Invalid gate maxpacket lots",
        ] {
            run.expect(l);
        }
    }
}

#[test]
fn lua_gate() {
    run_all("lua");
}

#[test]
fn native_gate() {
    run_all("native");
}

/// snax.msgserver: test/t_msgserver.lua logs a user in by command and
/// speaks the protocol to test/t_msgsrv.lua over loopback.
#[test]
fn msgserver() {
    let run = common::Node::new("t_msgserver")
        .timeout(Duration::from_secs(30))
        .run();
    let t = "t_msgserver";
    let out = run.dump();
    assert!(!run.has("t_msgserver: TIMEOUT"), "{out}");
    run.said_exactly(
        t,
        &[
            "subid 1",
            "handshake 200 OK",
            "answer alice:hello#1 ok=1 session=1",
            "answer  ok=0 session=2",
            "reconnect 200 OK",
            "cached alice:hello#1 ok=1 session=1",
            "after reconnect alice:slow#3 ok=1 session=3",
            "answer alice:again#4 ok=1 session=4",
            "old index 403 Index Expired",
            "closed nil",
            "bad hmac 401 Unauthorized",
            "unknown 404 User Not Found",
            "garbage 400 Bad Request",
            "after kick EOF",
            "done",
        ],
    );
    run.expect("t_msgsrv: registered sample");
    run.expect("handler raised on purpose");
    run.expect("t_msgsrv: afk ");
}

/// skynet.netpack's Lua API against netpack.tsv, and its edge cases.
#[test]
fn netpack_api() {
    let dir = vectors_dir().canonicalize().expect("vectors directory");
    let run = common::Node::new("t_netpack")
        .config("vectors", &format!("{:?}", dir.display().to_string()))
        .timeout(Duration::from_secs(20))
        .run();
    run.said_exactly(
        "t_netpack",
        &[
            "vectors 7 of 7",
            "65536 false Invalid size (too long) of data : 65536",
            "tostring twice false",
            "tostring nil \"\"",
            "pop nil 0",
            "filter garbage false",
            "done",
        ],
    );
}
