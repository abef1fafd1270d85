//! The socket server on its own, events collected through a channel sink.

use super::addr;
use super::event::{kind, Event};
use super::server::{SocketServer, LEND_SMALL, WARNING_SIZE};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Harness {
    srv: SocketServer,
    rx: Receiver<(u32, Event)>,
    /// Events read but not yet asked for.
    seen: Vec<(u32, Event)>,
}

impl Harness {
    fn new() -> Harness {
        let (tx, rx) = channel();
        let tx = parking_lot::Mutex::new(tx);
        let srv = SocketServer::new(Arc::new(move |owner, payload| {
            let ev = Event::decode(&payload).expect("well-formed event");
            let _ = tx.lock().send((owner, ev));
        }));
        Harness {
            srv,
            rx,
            seen: Vec::new(),
        }
    }

    /// The first event for `owner` matching `pred` (5 s at most).
    fn wait(&mut self, owner: u32, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        if let Some(i) = self.seen.iter().position(|(o, e)| *o == owner && pred(e)) {
            return self.seen.remove(i).1;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((o, e)) if o == owner && pred(&e) => return e,
                Ok(other) => self.seen.push(other),
                Err(_) => panic!("no {what} for :{owner:x}; seen {:?}", self.seen),
            }
        }
    }

    fn event(&mut self, owner: u32, k: u8, id: i32) -> Event {
        self.wait(owner, &format!("event {k} on {id}"), |e| {
            e.kind == k && e.id == id
        })
    }

    /// Collects DATA for `id` until `n` bytes arrived.
    fn read(&mut self, owner: u32, id: i32, n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        while v.len() < n {
            let e = self.event(owner, kind::DATA, id);
            assert_eq!(e.ud as usize, e.data.len());
            v.extend_from_slice(&e.data);
        }
        v
    }

    /// A listening socket owned by 1 and started; returns (id, port).
    fn listener(&mut self) -> (i32, u16) {
        let lid = self.srv.listen(1, "127.0.0.1", 0, 32).unwrap();
        let e = self.event(1, kind::CONNECT, lid);
        assert_eq!(e.text(), "127.0.0.1");
        assert!(e.ud > 0);
        self.srv.start(1, lid);
        assert_eq!(self.event(1, kind::CONNECT, lid).text(), "start");
        (lid, e.ud as u16)
    }

    /// Client (owner 2) connected to the listener; the accepted socket started by
    /// owner 3 unless `start` is false. Returns (client id, accepted id).
    fn pair(&mut self, lid: i32, port: u16, start: bool) -> (i32, i32) {
        let cid = self.srv.connect(2, "127.0.0.1", port);
        assert_eq!(self.event(2, kind::CONNECT, cid).text(), "127.0.0.1");
        let acc = self.event(1, kind::ACCEPT, lid);
        assert!(acc.text().starts_with("127.0.0.1:"), "{}", acc.text());
        let sid = acc.ud;
        if start {
            self.srv.start(3, sid);
            assert_eq!(self.event(3, kind::CONNECT, sid).text(), "start");
        }
        (cid, sid)
    }
}

#[test]
fn echo_and_close() {
    let mut h = Harness::new();
    let (lid, port) = h.listener();
    let (cid, sid) = h.pair(lid, port, true);
    assert!(
        cid > 0 && sid > cid && lid < cid,
        "ids increase: {lid} {cid} {sid}"
    );
    assert!(h.srv.send(cid, b"hello\n".to_vec(), true));
    assert_eq!(h.read(3, sid, 6), b"hello\n");
    assert!(h.srv.send(sid, b"world".to_vec(), false));
    assert_eq!(h.read(2, cid, 5), b"world");
    // the client closes: CLOSE at once for the closer, CLOSE for the peer's reader
    h.srv.close(2, cid);
    h.event(2, kind::CLOSE, cid);
    assert!(
        !h.srv.send(cid, b"late".to_vec(), true),
        "no send after close"
    );
    h.event(3, kind::CLOSE, sid);
    // the half-closed side may still be closed without another event
    h.srv.close(3, sid);
    std::thread::sleep(Duration::from_millis(50));
    assert!(!h.seen.iter().any(|(o, e)| *o == 3 && e.kind == kind::CLOSE));
    h.srv.close(1, lid);
    h.event(1, kind::CLOSE, lid);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !h.srv.info().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(h.srv.info().len(), 0, "{:?}", h.srv.info());
}

#[test]
fn connect_refused_is_an_error() {
    let mut h = Harness::new();
    // a port nobody listens on: bind one, learn it, close it
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let id = h.srv.connect(2, "127.0.0.1", port);
    let e = h.event(2, kind::ERROR, id);
    assert_eq!(e.text(), "Connection refused");
    let id = h.srv.connect(2, "no-such-host.invalid", 80);
    let e = h.event(2, kind::ERROR, id);
    assert!(!e.text().is_empty());
    h.srv.start(2, 9999);
    assert_eq!(h.event(2, kind::ERROR, 9999).text(), "invalid socket");
}

#[test]
fn write_warning_then_drained() {
    let mut h = Harness::new();
    let (lid, port) = h.listener();
    // the accepted side is not started: nobody reads, so the client's writes pile up
    let (cid, sid) = h.pair(lid, port, false);
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..128 {
        assert!(h.srv.send(cid, chunk.clone(), true));
    }
    let w = h.event(2, kind::WARNING, cid);
    assert!(
        w.ud >= (WARNING_SIZE / 1024) as i32,
        "first warning at 1 MiB: {}",
        w.ud
    );
    let w2 = h.event(2, kind::WARNING, cid);
    assert!(w2.ud >= 2048, "next warning at 2 MiB: {}", w2.ud);
    h.srv.start(3, sid);
    assert_eq!(h.event(3, kind::CONNECT, sid).text(), "start");
    let got = h.read(3, sid, 128 * 64 * 1024);
    assert_eq!(got.len(), 8 * 1024 * 1024);
    let end = h.wait(2, "drained warning", |e| {
        e.kind == kind::WARNING && e.ud == 0
    });
    assert_eq!(end.id, cid);
}

#[test]
fn close_flushes_pending_writes() {
    let mut h = Harness::new();
    let (lid, port) = h.listener();
    let (cid, sid) = h.pair(lid, port, false);
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    assert!(h.srv.send(cid, data.clone(), true));
    assert!(h.srv.send(cid, b"tail".to_vec(), false));
    h.srv.close(2, cid);
    h.event(2, kind::CLOSE, cid);
    h.srv.start(3, sid);
    let got = h.read(3, sid, data.len() + 4);
    assert_eq!(&got[..data.len()], &data[..]);
    assert_eq!(&got[data.len()..], b"tail");
    h.event(3, kind::CLOSE, sid);
}

#[test]
fn shutdown_drops_pending_writes() {
    let mut h = Harness::new();
    let (lid, port) = h.listener();
    let (cid, sid) = h.pair(lid, port, false);
    for _ in 0..64 {
        h.srv.send(cid, vec![1u8; 64 * 1024], true);
    }
    h.srv.shutdown(2, cid);
    h.event(2, kind::CLOSE, cid);
    h.srv.start(3, sid);
    // the peer sees the end (possibly a reset) well before 4 MiB
    let e = h.wait(3, "end of stream", |e| {
        e.id == sid && (e.kind == kind::CLOSE || e.kind == kind::ERROR)
    });
    assert!(e.kind == kind::CLOSE || e.kind == kind::ERROR);
}

#[test]
fn low_priority_waits_for_high() {
    let mut h = Harness::new();
    let (lid, port) = h.listener();
    let (cid, sid) = h.pair(lid, port, false);
    // Fill the socket so later writes queue up: more than the kernel buffers
    // of a loopback connection can hold, whatever their tuning.
    const BLOCKS: usize = 512;
    for _ in 0..BLOCKS {
        h.srv.send(cid, vec![b'.'; 64 * 1024], true);
    }
    h.srv.send(cid, b"L1".to_vec(), false);
    h.srv.send(cid, b"H1".to_vec(), true);
    h.srv.send(cid, b"L2".to_vec(), false);
    h.srv.start(3, sid);
    let got = h.read(3, sid, BLOCKS * 64 * 1024 + 6);
    let tail = &got[got.len() - 6..];
    assert_eq!(tail, b"H1L1L2", "high before low once queued");
}

#[test]
fn a_partly_written_low_block_finishes_before_a_high_one() {
    let mut h = Harness::new();
    let (lid, port) = h.listener();
    let (cid, sid) = h.pair(lid, port, true);
    const FILL: usize = 64 * 64 * 1024;
    const LOW: usize = 256 * 1024;
    const LOWS: usize = 64;
    h.srv.send(cid, vec![b'.'; FILL], true);
    for i in 0..LOWS {
        h.srv.send(cid, vec![b'a' + i as u8; LOW], false);
    }
    // Once the low blocks are being written, one of them is likely cut
    // short by the socket when the high write arrives.
    let mut got = h.read(3, sid, FILL + LOW / 2);
    h.srv.send(cid, b"HH".to_vec(), true);
    let total = FILL + LOWS * LOW + 2;
    got.extend(h.read(3, sid, total - got.len()));
    assert_eq!(got.len(), total);
    assert!(got[..FILL].iter().all(|b| *b == b'.'));
    let at = FILL + got[FILL..].windows(2).position(|w| w == b"HH").unwrap();
    assert_eq!((at - FILL) % LOW, 0, "the high write cut into a low block");
    let lows: Vec<u8> = [&got[FILL..at], &got[at + 2..]].concat();
    for (i, block) in lows.chunks(LOW).enumerate() {
        assert!(
            block.iter().all(|b| *b == b'a' + i as u8),
            "low block {i} intact"
        );
    }
}

#[test]
fn pause_and_transfer() {
    let mut h = Harness::new();
    let (lid, port) = h.listener();
    let (cid, sid) = h.pair(lid, port, true);
    h.srv.pause(sid);
    std::thread::sleep(Duration::from_millis(20));
    h.srv.send(cid, b"abc".to_vec(), true);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !h.seen.iter().any(|(_, e)| e.kind == kind::DATA),
        "paused: nothing read"
    );
    // another owner takes it over
    h.srv.start(4, sid);
    assert_eq!(h.event(4, kind::CONNECT, sid).text(), "transfer");
    assert_eq!(h.read(4, sid, 3), b"abc");
    h.srv.nodelay(sid);
    h.srv.send(cid, b"def".to_vec(), true);
    assert_eq!(h.read(4, sid, 3), b"def");
}

#[test]
fn udp_round_trip() {
    let mut h = Harness::new();
    let a = h.srv.udp_listen(5, "127.0.0.1", 0).unwrap();
    let port = h
        .srv
        .info()
        .into_iter()
        .find(|i| i.id == a)
        .map(|i| i.name.rsplit(':').next().unwrap().parse::<u16>().unwrap())
        .unwrap();
    let b = h.srv.udp_dial(6, "127.0.0.1", port).unwrap();
    assert!(h.srv.send(b, b"ping".to_vec(), true));
    let e = h.event(5, kind::UDP, a);
    assert_eq!(e.data, b"ping");
    assert_eq!(e.address.len(), 7);
    assert!(h.srv.udp_send(a, &e.address, b"pong".to_vec()));
    let r = h.event(6, kind::UDP, b);
    assert_eq!(r.data, b"pong");
    assert_eq!(addr::blob_to_addr(&r.address).unwrap().port(), port);
    let c = h.srv.udp(7, None, 0).unwrap();
    h.srv.udp_connect(c, "127.0.0.1", port).unwrap();
    assert!(h.srv.send(c, b"third".to_vec(), true));
    assert_eq!(h.event(5, kind::UDP, a).data, b"third");
    assert!(!h.srv.udp_send(a, &[9, 9], b"x".to_vec()), "not an address");
}

/// Threads sending on one socket at once: direct writes, writes queued behind
/// a full socket, and the rest of partial writes never reorder one thread's
/// sends (the reader starts late, so the socket fills and drains meanwhile).
#[test]
fn concurrent_senders_keep_their_order() {
    const THREADS: u8 = 6;
    const PER: u32 = 400;
    // record: thread, sequence number (LE), payload length (LE), payload
    fn record(t: u8, seq: u32) -> Vec<u8> {
        let len = 1 + (seq as usize * 997 + t as usize * 131) % 16000;
        let mut v = vec![t];
        v.extend_from_slice(&seq.to_le_bytes());
        v.extend_from_slice(&(len as u16).to_le_bytes());
        v.resize(7 + len, t);
        v
    }
    let mut h = Harness::new();
    let (lid, port) = h.listener();
    // a few rounds, each on a fresh connection: the races it is after are narrow
    for _ in 0..3 {
        one_round(&mut h, lid, port);
    }
    fn one_round(h: &mut Harness, lid: i32, port: u16) {
        let (cid, sid) = h.pair(lid, port, false);
        let total: usize = (0..THREADS)
            .flat_map(|t| (0..PER).map(move |s| record(t, s).len()))
            .sum();
        let got = std::thread::scope(|sc| {
            for t in 0..THREADS {
                let srv = h.srv.clone();
                sc.spawn(move || {
                    for seq in 0..PER {
                        assert!(srv.send(cid, record(t, seq), t % 2 == 0));
                        if seq % 10 == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                });
            }
            // reading starts while the senders are still at it
            std::thread::sleep(Duration::from_millis(15));
            h.srv.start(3, sid);
            assert_eq!(h.event(3, kind::CONNECT, sid).text(), "start");
            h.read(3, sid, total)
        });
        assert_eq!(got.len(), total);
        let mut next = [0u32; THREADS as usize];
        let mut at = 0;
        while at < got.len() {
            let t = got[at];
            let seq = u32::from_le_bytes(got[at + 1..at + 5].try_into().unwrap());
            let len = u16::from_le_bytes(got[at + 5..at + 7].try_into().unwrap()) as usize;
            assert!(t < THREADS, "record boundary lost at byte {at}");
            assert_eq!(
                seq, next[t as usize],
                "thread {t} out of order at byte {at}"
            );
            assert!(
                got[at + 7..at + 7 + len].iter().all(|&b| b == t),
                "thread {t}'s record {seq} interleaved with another"
            );
            next[t as usize] += 1;
            at += 7 + len;
        }
        assert_eq!(next, [PER; THREADS as usize]);
    }
}

/// A "worker" for the tests: a thread that polls the server's lent
/// connections until `stop`, as an idle worker does between looks at the run
/// queue; counts the looks that handed data on.
fn spinning_worker(
    srv: &SocketServer,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    let poller = srv.idle_poller();
    std::thread::spawn(move || {
        let mut delivered = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if poller.poll() {
                delivered += 1;
            }
            std::hint::spin_loop();
        }
        delivered
    })
}

/// Bytes numbered so that a loss, a duplicate or a swap shows.
fn numbered(from: usize, n: usize) -> Vec<u8> {
    (from..from + n).map(|i| (i % 251) as u8).collect()
}

#[test]
fn workers_read_lent_connections_in_order() {
    let mut h = Harness::new();
    let (lid, port) = h.listener();
    let (cid, sid) = h.pair(lid, port, true);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = spinning_worker(&h.srv, stop.clone());
    // Small writes both ways lend both ends; the peer's answers are then
    // read by the worker (or by the task, whichever gets there first), in
    // order and each byte once.
    let mut at = 0;
    for round in 0..2000 {
        let n = 1 + round % 200;
        assert!(h.srv.send(cid, numbered(at, n), true));
        assert_eq!(
            h.read(3, sid, n),
            numbered(at, n),
            "round {round} to the server"
        );
        assert!(h.srv.send(sid, numbered(at, n), true));
        assert_eq!(h.read(2, cid, n), numbered(at, n), "round {round} back");
        at += n;
    }
    // a burst bigger than one read, while the worker reads
    let burst = numbered(0, 3 << 20);
    let mut sent = 0;
    while sent < burst.len() {
        let n = (burst.len() - sent).min(LEND_SMALL);
        assert!(h.srv.send(cid, burst[sent..sent + n].to_vec(), true));
        sent += n;
    }
    assert!(
        h.read(3, sid, burst.len()) == burst,
        "the burst arrived whole"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let delivered = worker.join().unwrap();
    assert!(delivered > 0, "the worker read none of it");
    assert!(
        !h.seen.iter().any(|(_, e)| e.kind == kind::DATA),
        "no data beyond what was sent: {:?}",
        h.seen
    );
}

#[test]
fn reads_go_back_to_the_task_when_workers_stop() {
    let mut h = Harness::new();
    let (lid, port) = h.listener();
    let (cid, sid) = h.pair(lid, port, true);
    for sleeps in [false, true] {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker = spinning_worker(&h.srv, stop.clone());
        let mut delivered_before = 0;
        for i in 0..200 {
            assert!(h.srv.send(cid, vec![i as u8; 8], true));
            assert_eq!(h.read(3, sid, 8), vec![i as u8; 8]);
            assert!(h.srv.send(sid, vec![i as u8; 8], true));
            assert_eq!(h.read(2, cid, 8), vec![i as u8; 8]);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        delivered_before += worker.join().unwrap();
        assert!(delivered_before > 0, "the worker read none of it");
        if sleeps {
            // a worker that goes to sleep asks the tasks to read
            h.srv.idle_poller().sleeping();
        }
        // Nobody polls now: the tasks read again (on their tick, or armed
        // at once when a worker went to sleep).
        for i in 0..20 {
            let t0 = Instant::now();
            assert!(h.srv.send(cid, vec![i as u8; 8], true));
            assert_eq!(h.read(3, sid, 8), vec![i as u8; 8]);
            assert!(h.srv.send(sid, vec![i as u8; 8], true));
            assert_eq!(h.read(2, cid, 8), vec![i as u8; 8]);
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "a round trip without workers took {:?}",
                t0.elapsed()
            );
        }
    }
}

#[test]
fn close_while_a_worker_reads() {
    let mut h = Harness::new();
    let (lid, port) = h.listener();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = spinning_worker(&h.srv, stop.clone());
    for round in 0..20 {
        // The peer closes after its last bytes: all of them, then one CLOSE.
        let (cid, sid) = h.pair(lid, port, true);
        assert!(h.srv.send(sid, b"lend".to_vec(), true));
        assert_eq!(h.read(2, cid, 4), b"lend");
        let mut at = 0;
        for _ in 0..50 {
            assert!(h.srv.send(cid, numbered(at, 100), true));
            at += 100;
        }
        h.srv.close(2, cid);
        h.event(2, kind::CLOSE, cid);
        assert_eq!(h.read(3, sid, at), numbered(0, at), "round {round}");
        h.event(3, kind::CLOSE, sid);
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            !h.seen.iter().any(|(_, e)| e.id == sid),
            "nothing after the close: {:?}",
            h.seen
        );
        h.srv.close(3, sid);
        // The owner closes while the peer still sends: after its CLOSE, no
        // data for that socket.
        let (cid, sid) = h.pair(lid, port, true);
        assert!(h.srv.send(sid, b"lend".to_vec(), true));
        assert_eq!(h.read(2, cid, 4), b"lend");
        let srv = h.srv.clone();
        let sender = std::thread::spawn(move || {
            for i in 0..2000u32 {
                if !srv.send(cid, i.to_le_bytes().to_vec(), true) {
                    break;
                }
            }
        });
        let first = h.read(3, sid, 4);
        assert_eq!(first[..4], 0u32.to_le_bytes());
        h.srv.close(3, sid);
        loop {
            let e = h.wait(3, "close", |e| e.id == sid);
            if e.kind == kind::CLOSE {
                break;
            }
            assert_eq!(e.kind, kind::DATA);
        }
        sender.join().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        h.srv.close(2, cid);
        assert!(
            !h.seen.iter().any(|(o, e)| *o == 3 && e.id == sid),
            "an event after the owner's CLOSE: {:?}",
            h.seen
                .iter()
                .filter(|(_, e)| e.id == sid)
                .collect::<Vec<_>>()
        );
        h.seen.clear();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    worker.join().unwrap();
}

#[test]
fn many_lent_connections() {
    // More connections than can be lent at once: the rest stay with their
    // tasks, and every byte still arrives once, in order.
    const CONNS: usize = super::server::MAX_LENT + 16;
    let mut h = Harness::new();
    let (lid, port) = h.listener();
    let pairs: Vec<(i32, i32)> = (0..CONNS).map(|_| h.pair(lid, port, true)).collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| spinning_worker(&h.srv, stop.clone()))
        .collect();
    let mut at = vec![0usize; CONNS];
    for round in 0..30 {
        for (k, &(cid, sid)) in pairs.iter().enumerate() {
            let n = 1 + (round * 7 + k) % 300;
            assert!(h.srv.send(cid, numbered(at[k], n), true));
            assert!(h.srv.send(sid, numbered(at[k], n), true));
            at[k] += n;
        }
    }
    for (k, &(cid, sid)) in pairs.iter().enumerate() {
        assert_eq!(h.read(3, sid, at[k]), numbered(0, at[k]), "to server {k}");
        assert_eq!(
            h.read(2, cid, at[k]),
            numbered(0, at[k]),
            "back to client {k}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let delivered: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(delivered > 0, "the workers read none of it");
    assert!(
        !h.seen.iter().any(|(_, e)| e.kind == kind::DATA),
        "data beyond what was sent"
    );
}
