//! In-process tests of the kernel and the scheduler: each test makes its own
//! kernel with test services (closures), so what is asserted is the kernel's
//! own behaviour: launch, sends, retirement, names, the exit monitor, abort,
//! the order and share of dispatching, and the endless-loop monitor.

use super::*;
use crate::command::command;
use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Instant;

/// One message a test service received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    at: u32,
    source: u32,
    session: i32,
    ptype: u8,
    data: Vec<u8>,
}

type InitFn = Arc<dyn Fn(&Arc<Context>, &str) -> Result<(), String> + Send + Sync>;
type MessageFn = Arc<dyn Fn(&Arc<Context>, &Message) + Send + Sync>;

/// A service made of closures; it records every message it receives and
/// its own release.
struct TestService {
    handle: u32,
    init: InitFn,
    on_message: MessageFn,
    seen: Arc<Mutex<Vec<Seen>>>,
    released: Arc<Mutex<Vec<u32>>>,
}

impl Service for TestService {
    fn init(&mut self, ctx: &Arc<Context>, args: &str) -> Result<(), String> {
        self.handle = ctx.handle();
        (self.init)(ctx, args)
    }

    fn dispatch(&mut self, ctx: &Arc<Context>, msg: Message) {
        (self.on_message)(ctx, &msg);
        self.seen.lock().push(Seen {
            at: ctx.handle(),
            source: msg.source,
            session: msg.session,
            ptype: msg.ptype,
            data: msg.data,
        });
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        self.released.lock().push(self.handle);
    }
}

/// A test's kernel, with a `probe` module (records messages), a
/// `collector` module (a logger that keeps the lines) and helpers to wait.
struct Node {
    k: &'static Kernel,
    seen: Arc<Mutex<Vec<Seen>>>,
    released: Arc<Mutex<Vec<u32>>>,
    lines: Arc<Mutex<Vec<String>>>,
    // The test's own thread works for this kernel (commands reach it).
    _entered: Entered,
}

const WAIT: Duration = Duration::from_secs(10);

impl Node {
    fn new(threads: usize) -> Node {
        let k = Kernel::new(
            Config {
                threads,
                monitor_period: Duration::from_millis(50),
                ..Config::default()
            },
            Env::new(),
        );
        let node = Node {
            k,
            seen: Arc::default(),
            released: Arc::default(),
            lines: Arc::default(),
            _entered: Entered::new(k),
        };
        node.module("probe", |_, _| Ok(()), |_, _| {});
        let lines = node.lines.clone();
        node.module(
            "collector",
            |ctx, _| {
                kernel().set_logger(ctx.handle());
                Ok(())
            },
            move |_, msg| {
                if msg.ptype == ptype::TEXT {
                    let text = String::from_utf8_lossy(&msg.data);
                    lines.lock().push(format!("[:{:08x}] {text}", msg.source));
                }
            },
        );
        node
    }

    /// Registers a module whose instances run `init` and `on_message`.
    fn module(
        &self,
        name: &str,
        init: impl Fn(&Arc<Context>, &str) -> Result<(), String> + Send + Sync + 'static,
        on_message: impl Fn(&Arc<Context>, &Message) + Send + Sync + 'static,
    ) {
        let init: InitFn = Arc::new(init);
        let on_message: MessageFn = Arc::new(on_message);
        let (seen, released) = (self.seen.clone(), self.released.clone());
        self.k.register_module(
            name,
            Arc::new(move || {
                Box::new(TestService {
                    handle: 0,
                    init: init.clone(),
                    on_message: on_message.clone(),
                    seen: seen.clone(),
                    released: released.clone(),
                })
            }),
        );
    }

    fn launch(&self, module: &str) -> u32 {
        self.k.launch(module, "").expect("launch")
    }

    fn ctx(&self, h: u32) -> Arc<Context> {
        self.k.grab(h).expect("a live service")
    }

    fn seen_by(&self, h: u32) -> Vec<Seen> {
        self.seen
            .lock()
            .iter()
            .filter(|s| s.at == h)
            .cloned()
            .collect()
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().clone()
    }

    fn until(&self, what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn until_line(&self, line: &str) {
        self.until(line, || self.lines().iter().any(|l| l == line));
    }

    /// Sends a TEXT "marker" to `h` and waits until `h` has it: whatever was
    /// queued for `h` before has been dispatched by then.
    fn flush(&self, h: u32) {
        self.k
            .send(0, 0, h, ptype::TEXT, 0, b"marker".to_vec())
            .unwrap();
        self.until("the marker", || {
            self.seen_by(h).iter().any(|s| s.data == b"marker")
        });
    }

    /// What `h` received, the marker of [`Node::flush`] left out.
    fn received(&self, h: u32) -> Vec<Seen> {
        self.seen_by(h)
            .into_iter()
            .filter(|s| s.data != b"marker")
            .collect()
    }

    fn wait_exit(&self) {
        let (tx, rx) = mpsc::channel();
        let k = self.k;
        std::thread::spawn(move || {
            k.wait_exit();
            let _ = tx.send(());
        });
        rx.recv_timeout(WAIT).expect("the kernel did not exit");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.k.stop();
        // A failed test may have left a worker in a service; don't hang on it.
        if !std::thread::panicking() {
            self.k.join();
        }
    }
}

fn seen(at: u32, source: u32, session: i32, ptype: u8, data: &[u8]) -> Seen {
    Seen {
        at,
        source,
        session,
        ptype,
        data: data.to_vec(),
    }
}

#[test]
fn launch_runs_init_logs_launch_and_then_dispatches_what_init_queued() {
    let n = Node::new(2);
    let logger = n.launch("collector");
    assert_eq!(logger, 1, "harbor 0: ids start at 1");
    n.module(
        "selfsend",
        |ctx, args| {
            let h = ctx.handle();
            assert!(ctx.queue_len() == 0);
            kernel()
                .send(h, h, h, ptype::LUA, 0, format!("init {args}").into_bytes())
                .unwrap();
            Ok(())
        },
        |ctx, msg| {
            let text = String::from_utf8_lossy(&msg.data).into_owned();
            kernel().log(ctx.handle(), &format!("got {text}"));
        },
    );
    n.k.start();
    let h = n.k.launch("selfsend", "a b").unwrap();
    assert_eq!(h, 2);
    n.until_line("[:00000002] got init a b");
    let lines = n.lines();
    let launch = lines
        .iter()
        .position(|l| l == "[:00000002] LAUNCH selfsend a b");
    let got = lines.iter().position(|l| l == "[:00000002] got init a b");
    assert!(launch < got && launch.is_some(), "{lines:?}");
    // An unknown module takes no handle.
    assert_eq!(n.k.launch("no_such_module", ""), None);
    assert_eq!(n.launch("probe"), 3);
}

#[test]
fn a_failed_init_is_logged_and_answers_what_was_queued_meanwhile() {
    let n = Node::new(2);
    n.launch("collector");
    let asker = n.launch("probe");
    n.module(
        "bad",
        move |ctx, _| {
            // A request lands in the queue while init runs.
            let h = ctx.handle();
            kernel()
                .send(asker, asker, h, ptype::LUA, 9, b"req".to_vec())
                .unwrap();
            Err("boom".into())
        },
        |_, _| {},
    );
    n.k.start();
    assert_eq!(n.k.launch("bad", ""), None);
    let bad = 3;
    assert!(n.k.grab(bad).is_none());
    n.flush(asker);
    assert_eq!(
        n.received(asker),
        vec![seen(asker, bad, 9, ptype::ERROR, b"")]
    );
    n.until_line("[:00000003] error: launch bad FAILED");
    let lines = n.lines();
    let boom = lines.iter().position(|l| l == "[:00000003] boom");
    let failed = lines
        .iter()
        .position(|l| l == "[:00000003] error: launch bad FAILED");
    assert!(boom.is_some() && boom < failed, "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("LAUNCH bad")), "{lines:?}");
    assert!(n.released.lock().contains(&bad));
}

#[test]
fn sends_to_a_dead_handle_fail_and_tell_a_forwarded_request_source() {
    let n = Node::new(2);
    let p = n.launch("probe");
    let t = n.launch("probe");
    let forwarder = n.launch("probe");
    n.k.start();
    assert!(n.k.retire(t));
    n.until("the target's release", || n.released.lock().contains(&t));
    let dead = Err(SendError::InvalidDestination(t));
    // The sender itself learns it from the result; nothing is queued for it.
    assert_eq!(n.k.send(p, p, t, ptype::LUA, 5, b"x".to_vec()), dead);
    // A request forwarded for `p` (redirect): `p` is told with ERROR.
    assert_eq!(n.k.send(forwarder, p, t, ptype::LUA, 6, Vec::new()), dead);
    // ... but not for a reply, nor for a one-way send.
    assert_eq!(
        n.k.send(forwarder, p, t, ptype::RESPONSE, 7, Vec::new()),
        dead
    );
    assert_eq!(n.k.send(forwarder, p, t, ptype::LUA, 0, Vec::new()), dead);
    n.flush(p);
    assert_eq!(n.received(p), vec![seen(p, t, 6, ptype::ERROR, b"")]);
    assert_eq!(n.received(forwarder), vec![]);
    assert_eq!(
        n.k.send(p, p, 0, ptype::LUA, 1, Vec::new()),
        Err(SendError::InvalidDestination(0))
    );
    // Another harbor's handle, with no router installed.
    assert_eq!(
        n.k.send(p, p, 0x0200_0001, ptype::LUA, 1, Vec::new()),
        Err(SendError::InvalidDestination(0x0200_0001))
    );
}

static UNDELIVERED: Mutex<Vec<Vec<u8>>> = parking_lot::const_mutex(Vec::new());

fn record_undelivered(payload: &[u8]) {
    UNDELIVERED.lock().push(payload.to_vec());
}

#[test]
fn retire_answers_each_queued_request_once_and_releases_the_instance() {
    let n = Node::new(1);
    n.k.on_undeliverable(ptype::MULTICAST, record_undelivered);
    let p = n.launch("probe");
    let t = n.launch("probe");
    assert!(n.k.bind_name("target", t));
    // Queued before any worker runs, then the target is retired.
    let queued: [(u32, u8, i32, &[u8]); 6] = [
        (p, ptype::LUA, 1, b"request"),
        (p, ptype::RESPONSE, 2, b"a reply"),
        (0, ptype::LUA, 3, b"from the system"),
        (p, ptype::ERROR, 4, b"an error"),
        (p, ptype::MULTICAST, 5, b"retire-test delivery"),
        (p, ptype::LUA, 6, b"second request"),
    ];
    for (source, ty, session, data) in queued {
        n.k.send(source, source, t, ty, session, data.to_vec())
            .unwrap();
    }
    assert!(n.k.retire(t));
    assert!(!n.k.retire(t), "retired once");
    assert_eq!(n.k.find_name("target"), None, "its names go with it");
    assert_eq!(
        n.k.send(p, p, t, ptype::LUA, 7, Vec::new()),
        Err(SendError::InvalidDestination(t))
    );
    n.k.start();
    n.until("the release", || n.released.lock().contains(&t));
    n.flush(p);
    // Requests from a service are answered; replies, errors, system
    // messages and multicast deliveries are not.
    assert_eq!(
        n.received(p),
        vec![
            seen(p, t, 1, ptype::ERROR, b""),
            seen(p, t, 6, ptype::ERROR, b"")
        ]
    );
    assert_eq!(n.received(t), vec![], "nothing dispatched once retired");
    assert_eq!(n.released.lock().iter().filter(|h| **h == t).count(), 1);
    let undelivered = UNDELIVERED.lock();
    assert_eq!(
        undelivered
            .iter()
            .filter(|d| d.as_slice() == b"retire-test delivery")
            .count(),
        1,
        "the multicast payload is given back once"
    );
}

#[test]
fn names_bind_resolve_and_address_sends() {
    let n = Node::new(2);
    n.launch("collector");
    let a = n.launch("probe");
    let b = n.launch("probe");
    n.k.start();
    let (ca, cb) = (n.ctx(a), n.ctx(b));
    assert_eq!(command(&ca, "REG", None), Some(format!(":{a:x}")));
    assert_eq!(command(&ca, "REG", Some(".alpha")), Some("alpha".into()));
    assert_eq!(command(&cb, "REG", Some(".alpha")), None, "taken");
    assert_eq!(command(&ca, "REG", Some("GLOBAL")), None);
    n.until_line("[:00000002] error: Can't register global name GLOBAL in C");
    assert_eq!(
        command(&cb, "QUERY", Some(".alpha")),
        Some(format!(":{a:x}"))
    );
    assert_eq!(command(&cb, "QUERY", Some(".nobody")), None);
    let named = format!(".beta :{b:08x}");
    assert_eq!(command(&ca, "NAME", Some(&named)), Some("beta".into()));
    assert_eq!(command(&ca, "NAME", Some(".gamma :0")), None);
    assert_eq!(command(&ca, "NAME", Some(&format!(".gamma {b}"))), None);
    assert_eq!(command(&ca, "NAME", Some(&format!("delta :{b:x}"))), None);
    n.until_line("[:00000002] error: Can't set global name delta in C");

    assert_eq!(n.k.query_name(".alpha"), a);
    assert_eq!(n.k.query_name(".beta"), b);
    assert_eq!(n.k.query_name(&format!(":{b:x}")), b);
    assert_eq!(n.k.query_name(".gamma"), 0);
    assert_eq!(n.k.query_name("GLOBAL"), 0);

    n.k.send_name(a, a, ".beta", ptype::LUA, 3, b"by name".to_vec())
        .unwrap();
    n.k.send_name(
        a,
        a,
        &format!(":{b:08x}"),
        ptype::LUA,
        4,
        b"by hex".to_vec(),
    )
    .unwrap();
    assert_eq!(
        n.k.send_name(a, a, ".gamma", ptype::LUA, 5, Vec::new()),
        Err(SendError::UnknownName(".gamma".into()))
    );
    assert_eq!(
        n.k.send_name(a, a, "GLOBAL", ptype::LUA, 6, Vec::new()),
        Err(SendError::UnknownName("GLOBAL".into())),
        "no router for global names"
    );
    n.flush(b);
    assert_eq!(
        n.received(b),
        vec![
            seen(b, a, 3, ptype::LUA, b"by name"),
            seen(b, a, 4, ptype::LUA, b"by hex")
        ]
    );
    n.k.retire(a);
    n.until("a's release", || n.released.lock().contains(&a));
    assert_eq!(n.k.query_name(".alpha"), 0, "names die with their handle");
}

#[test]
fn the_exit_monitor_hears_of_every_exit() {
    let n = Node::new(2);
    n.launch("collector");
    let m = n.launch("probe");
    let a = n.launch("probe");
    let b = n.launch("probe");
    n.k.start();
    let cm = n.ctx(m);
    assert_eq!(command(&cm, "MONITOR", None), None);
    assert_eq!(command(&cm, "MONITOR", Some(&format!(":{m:x}"))), None);
    assert_eq!(command(&cm, "MONITOR", None), Some(format!(":{m:x}")));
    assert_eq!(command(&n.ctx(a), "EXIT", None), None);
    assert_eq!(command(&cm, "KILL", Some(&format!(":{b:08x}"))), None);
    assert_eq!(command(&cm, "KILL", Some(".nobody")), None);
    assert_eq!(command(&cm, "KILL", Some("garbage")), None);
    n.flush(m);
    assert_eq!(
        n.received(m),
        vec![
            seen(m, a, 0, ptype::CLIENT, b""),
            seen(m, b, 0, ptype::CLIENT, b"")
        ]
    );
    n.until_line("[:00000002] Can't convert garbage to handle");
    let lines = n.lines();
    let kills: Vec<&String> = lines.iter().filter(|l| l.contains("KILL")).collect();
    assert_eq!(kills, ["[:00000003] KILL self", "[:00000002] KILL :4"]);
    n.until("both released", || {
        let r = n.released.lock();
        r.contains(&a) && r.contains(&b)
    });
    assert!(n.k.grab(m).is_some());
}

#[test]
fn abort_retires_every_service_and_the_logger_last_after_its_lines() {
    let n = Node::new(2);
    let logger = n.launch("collector");
    let services: Vec<u32> = (0..5).map(|_| n.launch("probe")).collect();
    n.k.start();
    for i in 0..200 {
        n.k.log(0, &format!("line {i}"));
    }
    n.k.abort();
    n.wait_exit();
    let released = n.released.lock().clone();
    assert_eq!(released.len(), 6, "{released:?}");
    assert_eq!(released.last(), Some(&logger), "{released:?}");
    for h in services {
        assert!(released.contains(&h));
    }
    let expected: Vec<String> = (0..200).map(|i| format!("[:00000000] line {i}")).collect();
    let got: Vec<String> = n
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("[:00000000] line "))
        .collect();
    assert_eq!(got, expected, "every line written, in order");
}

#[test]
fn one_worker_at_a_time_dispatches_a_service_in_send_order() {
    let n = Node::new(3);
    let busy = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let (b, o) = (busy.clone(), overlaps.clone());
    n.module(
        "exclusive",
        |_, _| Ok(()),
        move |_, _| {
            if b.swap(true, Ordering::SeqCst) {
                o.fetch_add(1, Ordering::SeqCst);
            }
            for _ in 0..200 {
                std::hint::spin_loop();
            }
            b.store(false, Ordering::SeqCst);
        },
    );
    let s = n.launch("exclusive");
    n.k.start();
    const SENDERS: u32 = 4;
    const EACH: u32 = 2000;
    std::thread::scope(|scope| {
        for i in 0..SENDERS {
            let k = n.k;
            scope.spawn(move || {
                let source = 0x100 + i;
                for seq in 0..EACH {
                    k.send(source, source, s, ptype::LUA, 0, seq.to_le_bytes().to_vec())
                        .unwrap();
                }
            });
        }
    });
    n.until("every message", || {
        n.seen_by(s).len() == (SENDERS * EACH) as usize
    });
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "two workers at once");
    let mut by_source: HashMap<u32, Vec<u32>> = HashMap::new();
    for m in n.seen_by(s) {
        let seq = u32::from_le_bytes(m.data.try_into().unwrap());
        by_source.entry(m.source).or_default().push(seq);
    }
    assert_eq!(by_source.len(), SENDERS as usize);
    for (source, seqs) in by_source {
        assert_eq!(seqs, (0..EACH).collect::<Vec<_>>(), "order from {source:x}");
    }
}

#[test]
fn a_long_queue_gives_way_to_another_after_each_message() {
    // One worker: weight -1, one message per turn while another queue waits.
    let n = Node::new(1);
    let a = n.launch("probe");
    let b = n.launch("probe");
    for i in 0..100u8 {
        n.k.send(0, 0, a, ptype::LUA, 0, vec![i]).unwrap();
    }
    n.k.send(0, 0, b, ptype::LUA, 0, vec![0]).unwrap();
    n.k.start();
    n.until("every message", || n.seen.lock().len() == 101);
    let order: Vec<(u32, u8)> = n.seen.lock().iter().map(|s| (s.at, s.data[0])).collect();
    let mut expected = vec![(a, 0), (b, 0)];
    expected.extend((1..100).map(|i| (a, i)));
    assert_eq!(order, expected);
}

#[test]
fn a_worker_takes_its_weights_share_of_a_queue() {
    let n = Node::new(1);
    let s = n.launch("probe");
    let ctx = n.ctx(s);
    for i in 0..16u8 {
        n.k.send(0, 0, s, ptype::LUA, 0, vec![i]).unwrap();
    }
    let mon = n.k.monitor.worker(0);
    let count = || n.seen_by(s).len();
    // weight 2: a quarter of what is queued (16 >> 2).
    assert!(n.k.dispatch(&ctx, 2, mon));
    assert_eq!(count(), 4);
    // weight -1: one message.
    assert!(n.k.dispatch(&ctx, -1, mon));
    assert_eq!(count(), 5);
    // weight 0: everything queued (11).
    assert!(n.k.dispatch(&ctx, 0, mon));
    assert_eq!(count(), 16);
    // Found empty: the worker lets the queue go.
    assert!(!n.k.dispatch(&ctx, 0, mon));
    let order: Vec<u8> = n.seen_by(s).iter().map(|m| m.data[0]).collect();
    assert_eq!(order, (0..16).collect::<Vec<_>>());
    assert_eq!(command(&ctx, "STAT", Some("message")), Some("16".into()));
}

#[test]
fn an_endless_message_is_reported_and_flagged_once_taken() {
    let n = Node::new(2);
    n.launch("collector");
    let release = Arc::new(AtomicBool::new(false));
    let r = release.clone();
    n.module(
        "stuck",
        |_, _| Ok(()),
        move |_, _| {
            while !r.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        },
    );
    let stuck = n.launch("stuck");
    let quick = n.launch("probe");
    n.k.start();
    n.k.send(0x77, 0x77, stuck, ptype::LUA, 0, Vec::new())
        .unwrap();
    let prefix = format!(
        "[:00000000] error: A message from [ :00000077 ] to [ :{stuck:08x} ] maybe in an endless loop (version = "
    );
    n.until("the monitor's report", || {
        n.lines().iter().any(|l| l.starts_with(&prefix))
    });
    release.store(true, Ordering::SeqCst);
    n.until("the end of the message", || !n.seen_by(stuck).is_empty());
    // Two periods: the monitor has seen the worker move on.
    std::thread::sleep(Duration::from_millis(150));
    let cs = n.ctx(stuck);
    assert_eq!(command(&cs, "STAT", Some("endless")), Some("1".into()));
    assert_eq!(command(&cs, "STAT", Some("endless")), Some("0".into()));
    for _ in 0..5 {
        n.flush(quick);
        std::thread::sleep(Duration::from_millis(20));
    }
    let cq = n.ctx(quick);
    assert_eq!(command(&cq, "STAT", Some("endless")), Some("0".into()));
    let reports = n.lines().iter().filter(|l| l.contains("endless")).count();
    std::thread::sleep(Duration::from_millis(150));
    let later = n.lines().iter().filter(|l| l.contains("endless")).count();
    assert_eq!(reports, later, "no report once the message ended");
}

#[test]
fn timeouts_come_back_as_responses_from_the_kernels_timer() {
    let n = Node::new(1);
    let p = n.launch("probe");
    n.k.start();
    let ctx = n.ctx(p);
    let t0 = Instant::now();
    let later = command(&ctx, "TIMEOUT", Some("2")).unwrap();
    let now = command(&ctx, "TIMEOUT", Some("0")).unwrap();
    let (later, now): (i32, i32) = (later.parse().unwrap(), now.parse().unwrap());
    n.until("both timeouts", || n.seen_by(p).len() == 2);
    assert!(t0.elapsed() >= Duration::from_millis(20), "never early");
    assert_eq!(
        n.seen_by(p),
        vec![
            seen(p, 0, now, ptype::RESPONSE, b""),
            seen(p, 0, later, ptype::RESPONSE, b"")
        ]
    );
}

#[test]
fn each_kernel_thread_reaches_its_own_kernel() {
    let nodes = [Node::new(1), Node::new(2)];
    let hits = Arc::new(AtomicUsize::new(0));
    for node in &nodes {
        let me = node.k as *const Kernel as usize;
        let h = hits.clone();
        node.module(
            "whoami",
            move |_, _| {
                assert_eq!(kernel() as *const Kernel as usize, me, "in init");
                Ok(())
            },
            move |_, _| {
                if kernel() as *const Kernel as usize == me {
                    h.fetch_add(1, Ordering::SeqCst);
                }
            },
        );
        node.k.start();
    }
    // Each launch on this thread enters that node's kernel for its init.
    let services: Vec<u32> = nodes.iter().map(|n| n.launch("whoami")).collect();
    for (node, s) in nodes.iter().zip(&services) {
        for _ in 0..10 {
            node.k.send(0, 0, *s, ptype::LUA, 0, Vec::new()).unwrap();
        }
    }
    for (node, s) in nodes.iter().zip(&services) {
        node.until("10 messages", || node.seen_by(*s).len() == 10);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 20);
    // Leave this thread's kernel as it was: the last entered goes first.
    let [first, second] = nodes;
    drop(second);
    drop(first);
    assert!(CURRENT.with(Cell::get).is_none());
}
