//! [`Cluster`]: this node's harbor at run time. It holds the
//! [`ClusterState`] behind one mutex and does what the state machine decides:
//! it is the kernel's [`RemoteRouter`], the host of every [`Link`], the
//! idle workers' [`IdlePoller`], and it dials and accepts links.
//!
//! Worker threads take the lock when a service sends to another node; the
//! harbor thread takes it when links, names or master packets change
//! something. Local deliveries, frames handed to a link, link closes and
//! master packets are done under the lock, so that messages from one source
//! keep their order whichever path they take (queued, flushed, or sent
//! directly). Work that could re-enter the router (ERROR replies to remote
//! sources, RESPONSEs to waiters), log lines and dials are done after it is
//! released ([`Action::in_order`]).

use super::link::end::LinkEnd;
use super::link::{Link, LinkHost};
use super::net;
use super::state::{Action, Admit, ClusterState, Waiter, ADMIT_WAIT};
use crate::kernel::{kernel, RemoteMetrics, RemoteRouter};
use crate::message::{is_request, ptype, Message};
use crate::scheduler::IdlePoller;
use parking_lot::{Mutex, RwLock};
use skynet_proto::auth::Secret;
use skynet_proto::harbor::{HarborFrame, Trailer};
use skynet_proto::master::{HarborSet, MasterPacket};
use skynet_proto::Handle;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedSender;

/// A connector for a `C` gives up (the harbor is marked down) after this.
pub const CONNECT_GIVE_UP: Duration = Duration::from_secs(10);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

type Act = Action<Arc<Link>>;

struct Inner {
    state: ClusterState<Arc<Link>>,
    /// Where master packets go while the master is connected.
    master: Option<UnboundedSender<MasterPacket>>,
    /// The state machine's output, kept to reuse its room.
    actions: Vec<Act>,
}

pub struct Cluster {
    pub own: u8,
    /// Handle of the `cslave` service: source of its replies and log lines.
    pub slave: u32,
    pub address: String,
    pub master_addr: String,
    pub rt: tokio::runtime::Handle,
    /// Config `harbor_check_address` (default on): an accepted link's peer
    /// IP must be that of the address its harbor announced.
    pub check_address: bool,
    /// Config `cluster_secret`: proved to the master and on every link.
    pub secret: Option<Secret>,
    /// This cluster, for the tasks it starts.
    me: Weak<Cluster>,
    epoch: Instant,
    next_link: AtomicU64,
    inner: Mutex<Inner>,
    /// The live links, for idle workers to poll. A snapshot is swapped in on
    /// change, so pollers hold no lock while they deliver.
    polled: RwLock<Arc<Vec<Arc<Link>>>>,
    traffic: Traffic,
}

/// Message frames (not heartbeats) and their bytes on the wire, each way.
#[derive(Default)]
struct Traffic {
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    frames_received: AtomicU64,
    bytes_received: AtomicU64,
}

/// A frame's bytes on the wire: the 4-byte length, the payload, the 12-byte
/// trailer.
fn wire_len(payload: usize) -> u64 {
    (4 + payload + 12) as u64
}

impl Cluster {
    /// `check_address` and `secret`: the admission settings of the config.
    pub fn new(
        own: u8,
        slave: u32,
        address: String,
        master_addr: String,
        rt: tokio::runtime::Handle,
        check_address: bool,
        secret: Option<Secret>,
    ) -> Arc<Cluster> {
        Arc::new_cyclic(|me| Cluster {
            own,
            slave,
            address,
            master_addr,
            rt,
            check_address,
            secret,
            me: me.clone(),
            epoch: Instant::now(),
            next_link: AtomicU64::new(1),
            polled: RwLock::new(Arc::new(Vec::new())),
            traffic: Traffic::default(),
            inner: Mutex::new(Inner {
                state: ClusterState::new(own),
                master: None,
                actions: Vec::new(),
            }),
        })
    }

    /// Milliseconds since the cluster started (monotonic).
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn log(&self, text: &str) {
        kernel().log(self.slave, text);
    }

    /// Feeds one event to the state machine and does what comes out.
    /// Returns what `event` returns.
    fn update<R>(&self, event: impl FnOnce(&mut ClusterState<Arc<Link>>, &mut Vec<Act>) -> R) -> R {
        let mut later = Vec::new();
        let r = {
            let mut g = self.inner.lock();
            let inner = &mut *g;
            let mut actions = std::mem::take(&mut inner.actions);
            let r = event(&mut inner.state, &mut actions);
            for a in actions.drain(..) {
                if a.in_order() {
                    self.do_in_order(inner, a, &mut later);
                } else {
                    later.push(a);
                }
            }
            inner.actions = actions;
            r
        };
        self.do_later(later);
        r
    }

    /// Does an action that keeps its order with other threads' sends.
    fn do_in_order(&self, inner: &mut Inner, a: Act, later: &mut Vec<Act>) {
        match a {
            Action::Deliver { dest, msg } => {
                if let Err(m) = kernel().push(dest, msg) {
                    later.extend(Action::bounce(dest, &m));
                }
            }
            Action::Write { link, frame } => {
                let (source, dest, t, session) =
                    (frame.source, frame.destination, frame.ptype, frame.session);
                let bytes = wire_len(frame.payload.len());
                if link.send(frame) {
                    self.traffic.frames_sent.fetch_add(1, Ordering::Relaxed);
                    self.traffic.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
                } else {
                    inner.state.write_failed(source, dest, t, session, later);
                }
            }
            Action::CloseLink(link) => link.close(),
            Action::ToMaster(p) => {
                if let Some(tx) = &inner.master {
                    let _ = tx.send(p);
                }
            }
            other => later.push(other),
        }
    }

    /// Does the actions left for after the lock.
    fn do_later(&self, later: Vec<Act>) {
        if later.is_empty() {
            return;
        }
        let k = kernel();
        for a in later {
            match a {
                Action::Bounce { from, to, session } => {
                    let _ = k.send(from, from, to, ptype::ERROR, session, Vec::new());
                }
                Action::Reply { to, session, data } => {
                    let _ = k.send(self.slave, self.slave, to, ptype::RESPONSE, session, data);
                }
                Action::Log(text) => self.log(&text),
                Action::Dial {
                    harbor,
                    address,
                    attempt,
                    reconnect,
                } => {
                    // The cluster outlives its own actions.
                    if let Some(me) = self.me.upgrade() {
                        self.rt
                            .spawn(connector(me, harbor, address, attempt, reconnect));
                    }
                }
                // Done under the lock (`in_order`).
                Action::Deliver { .. }
                | Action::Write { .. }
                | Action::CloseLink(_)
                | Action::ToMaster(_) => {}
            }
        }
    }

    /// PTYPE_RESPONSE from the slave service.
    pub fn reply(&self, to: u32, session: i32, data: Vec<u8>) {
        self.do_later(vec![Action::Reply { to, session, data }]);
    }

    // ------------------------------------------------------------ services

    /// REGISTER from a local service: bind now, tell the master.
    pub fn register(&self, name: &str, handle: u32) {
        self.update(|st, out| {
            st.register(
                name,
                handle,
                |h| kernel().grab(h).is_some(),
                Instant::now,
                out,
            )
        });
    }

    /// QUERYNAME for a global name: the handle now, or when it is bound.
    pub fn queryname(&self, name: &str, w: Waiter) {
        self.update(|st, out| st.query_name(name, w, out));
    }

    /// LINK: answered when harbor `id` goes down (at once if it is not linked).
    pub fn link_waiter(&self, id: u8, w: Waiter) {
        self.update(|st, out| st.link_waiter(id, w, out));
    }

    /// CONNECT: answered when harbor `id` is linked (at once if it is).
    pub fn connect_waiter(&self, id: u8, w: Waiter) {
        self.update(|st, out| st.connect_waiter(id, w, out));
    }

    /// LINKMASTER: answered when the master connection is lost (at once if
    /// it is not connected).
    pub fn master_waiter(&self, w: Waiter) {
        self.update(|st, out| st.master_waiter(w, out));
    }

    /// Fails messages that waited too long for a harbor that never linked,
    /// and logs what the node still waits for.
    pub fn expire_queues(&self) {
        let now = Instant::now();
        self.update(|st, out| {
            st.expire_queues(now, out);
            st.report_waits(now, &self.address, out);
        });
    }

    /// ELECTED: whether this node hosts the global services when no config
    /// says which does.
    pub fn election_waiter(&self, w: Waiter) {
        self.update(|st, out| st.election_waiter(w, out));
    }

    // ------------------------------------------------------------ master

    /// The master answered our `H` with `W n` (`first`: the first session of
    /// this process). Packets go to `tx` from now on, starting with `R` for
    /// every name we own and `Q` for every name still waited for.
    pub fn master_connected(
        &self,
        tx: UnboundedSender<MasterPacket>,
        first: bool,
        n: usize,
        peers: Option<&HarborSet>,
    ) {
        self.inner.lock().master = Some(tx);
        self.update(|st, out| st.master_connected(first, n, peers, out));
    }

    /// `P id addr` from our master: harbor `id` will connect to us from `addr`.
    pub fn on_peer(&self, id: u8, address: String) {
        self.update(|st, out| st.on_peer(id, address, out));
    }

    /// The master connection ended: LINKMASTER waiters return.
    pub fn master_lost(&self) {
        self.inner.lock().master = None;
        self.update(|st, out| st.master_lost(out));
    }

    /// `C id addr`: connect to that (newer) harbor.
    pub fn on_connect(&self, id: u8, address: String) {
        self.update(|st, out| st.on_connect(id, address, out));
    }

    /// `N name handle` from the master.
    pub fn on_name(&self, name: &str, handle: u32) {
        self.update(|st, out| st.on_name(name, handle, Instant::now, out));
    }

    /// `D id` from the master.
    pub fn on_down(&self, id: u8) {
        self.update(|st, out| st.on_down(id, out));
    }

    // ------------------------------------------------------------ links

    /// A handshake with harbor `id` succeeded on `stream` (`initiated`: we
    /// connected, for `attempt`). Makes it the harbor's link and starts it.
    /// False when the connection is not wanted any more (a stale connector):
    /// it is dropped.
    fn attach(
        self: &Arc<Self>,
        id: u8,
        stream: TcpStream,
        initiated: bool,
        attempt: Option<u64>,
    ) -> bool {
        let peer_addr = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let link_id = self.next_link.fetch_add(1, Ordering::Relaxed);
        let link = Link::new(id, link_id, stream, self.now_ms());
        let up = self.update(|st, out| {
            st.link_up(
                id,
                link.clone(),
                link_id,
                initiated,
                attempt,
                &peer_addr,
                out,
            )
        });
        if up {
            self.rt.spawn(link.run(self.clone()));
        }
        up
    }
}

/// Connects to harbor `id` until it works, the attempt is superseded, or
/// (for a first connection) [`CONNECT_GIVE_UP`] passes. `reconnect`: the
/// link was lost and we were its connecting side; retries until the master
/// says the harbor is down or a new link replaces it.
async fn connector(cluster: Arc<Cluster>, id: u8, addr: String, attempt: u64, reconnect: bool) {
    let current = || cluster.inner.lock().state.attempt_current(id, attempt);
    let started = tokio::time::Instant::now();
    let mut delay = RETRY_MIN;
    let mut failures = 0u32;
    if reconnect {
        // A killed peer's master connection breaks at the same moment: give
        // the master's `D` a chance to arrive first.
        tokio::time::sleep(delay).await;
    }
    loop {
        if !current() {
            return;
        }
        match net::dial(cluster.own, id, &addr, cluster.secret.as_ref()).await {
            Ok(stream) => {
                if reconnect && current() {
                    cluster.log(&format!("Reconnected to harbor {id} ({addr})"));
                }
                cluster.attach(id, stream, true, Some(attempt));
                return;
            }
            Err(e) => {
                failures += 1;
                if e.fatal || (!reconnect && started.elapsed() >= CONNECT_GIVE_UP) {
                    let reason = format!("Can't connect to harbor {id} ({addr}): {}", e.reason);
                    cluster.update(|st, out| st.connect_failed(id, attempt, &reason, out));
                    return;
                }
                if !current() {
                    return;
                }
                if failures == 1 || failures.is_multiple_of(10) {
                    cluster.log(&format!(
                        "Can't connect to harbor {id} ({addr}): {}; retrying (attempt {failures})",
                        e.reason
                    ));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Accepts connections from older harbors for the life of the node.
pub async fn accept_loop(cluster: Arc<Cluster>, listener: std::net::TcpListener) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            cluster.log(&format!("Can't listen on {}: {e}", cluster.address));
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((s, peer)) => {
                tokio::spawn(admit_link(cluster.clone(), s, peer));
            }
            Err(e) => {
                cluster.log(&format!("accept on {} failed: {e}", cluster.address));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// An accepted connection becomes a link only if the master announced the
/// harbor it claims, that harbor is not linked, the peer's IP is that of
/// the harbor's announced address (unless `harbor_check_address = false`)
/// and, with a cluster secret, it proves the secret. Anything else is
/// closed with a log line naming the peer and the id it claimed.
async fn admit_link(cluster: Arc<Cluster>, mut s: TcpStream, peer: SocketAddr) {
    let shown = peer.to_string();
    let id = match net::read_hello(cluster.own, &mut s, &shown).await {
        Ok(id) => id,
        Err(why) => return cluster.log(&why),
    };
    let refuse = |why: &str| {
        cluster.log(&format!(
            "Refuse harbor link from {shown} (claims harbor {id}): {why}"
        ))
    };
    let deadline = tokio::time::Instant::now() + ADMIT_WAIT;
    let address = loop {
        let verdict = cluster.inner.lock().state.admit(id);
        match verdict {
            Admit::Accept { address } => break address,
            Admit::Refuse(why) => return refuse(&why),
            Admit::Wait(why) => {
                if tokio::time::Instant::now() >= deadline {
                    return refuse(&format!(
                        "not announced by the master within {} s ({why})",
                        ADMIT_WAIT.as_secs()
                    ));
                }
                tokio::time::sleep(ADMIT_POLL).await;
            }
        }
    };
    if let (true, Some(address)) = (cluster.check_address, &address) {
        if let Err(why) = net::peer_matches(peer.ip(), address).await {
            return refuse(&format!(
                "its IP is not that of harbor {id}: {why} (behind NAT set harbor_check_address = false)"
            ));
        }
    }
    if let Err(why) = net::answer_hello(cluster.own, id, &mut s, cluster.secret.as_ref()).await {
        return refuse(&why);
    }
    cluster.attach(id, s, false, None);
}

/// How often a held connection asks again whether its harbor is announced.
const ADMIT_POLL: Duration = Duration::from_millis(20);

impl RemoteRouter for Cluster {
    fn send_handle(&self, dest: u32, msg: Message) {
        self.update(|st, out| st.send(dest, msg, Instant::now, out));
    }

    fn send_name(&self, name: &str, msg: Message) {
        self.update(|st, out| st.send_name(name, msg, Instant::now, out));
    }

    fn close_links(&self) -> usize {
        let links = self.inner.lock().state.up_links();
        for l in &links {
            l.close();
        }
        links.len()
    }

    fn metrics(&self) -> Option<RemoteMetrics> {
        let (links_up, pending_calls, down_events) = {
            let g = self.inner.lock();
            (
                g.state.links_up(),
                g.state.pending_calls(),
                g.state.down_events(),
            )
        };
        let t = &self.traffic;
        Some(RemoteMetrics {
            links_up,
            pending_calls,
            down_events,
            frames_sent: t.frames_sent.load(Ordering::Relaxed),
            bytes_sent: t.bytes_sent.load(Ordering::Relaxed),
            frames_received: t.frames_received.load(Ordering::Relaxed),
            bytes_received: t.bytes_received.load(Ordering::Relaxed),
        })
    }
}

impl LinkHost for Cluster {
    fn own(&self) -> u8 {
        self.own
    }

    fn now_ms(&self) -> u64 {
        Cluster::now_ms(self)
    }

    fn log(&self, text: &str) {
        Cluster::log(self, text);
    }

    /// Pushes the frame to its local service. A request for a service that
    /// does not exist is answered on the link with ERROR.
    fn frame(&self, link: &Link, t: Trailer, payload: Vec<u8>) {
        let tr = &self.traffic;
        tr.frames_received.fetch_add(1, Ordering::Relaxed);
        tr.bytes_received
            .fetch_add(wire_len(payload.len()), Ordering::Relaxed);
        let dest = Handle(t.destination).with_harbor(self.own).raw();
        if t.ptype == ptype::RESPONSE || t.ptype == ptype::ERROR {
            self.inner.lock().state.answered(dest, t.session);
        }
        if kernel()
            .push(dest, Message::new(t.source, t.session, t.ptype, payload))
            .is_err()
        {
            if is_request(t.ptype) {
                link.queue(HarborFrame {
                    source: dest,
                    destination: t.source,
                    ptype: ptype::ERROR,
                    session: t.session,
                    payload: Vec::new(),
                });
            }
            self.log(&format!(
                "Unknown destination :{dest:x} from :{:x} type({})",
                t.source, t.ptype
            ));
        }
    }

    fn lend_to_workers(&self, link: &Arc<Link>) {
        let mut g = self.polled.write();
        let mut v = (**g).clone();
        v.push(link.clone());
        *g = Arc::new(v);
    }

    fn take_from_workers(&self, link: &Arc<Link>) {
        let mut g = self.polled.write();
        let v: Vec<_> = g
            .iter()
            .filter(|x| !Arc::ptr_eq(x, link))
            .cloned()
            .collect();
        *g = Arc::new(v);
    }

    fn ended(&self, link: &Link, end: LinkEnd) {
        let (reason, protocol) = match end {
            LinkEnd::Lost(r) => (r, false),
            LinkEnd::Protocol(r) => (r, true),
        };
        self.update(|st, out| st.link_lost(link.harbor(), link.id(), &reason, protocol, out));
    }
}

thread_local! {
    /// A worker's `poll` array for its looks at the links (kept to avoid an
    /// allocation per look).
    static POLL_SET: std::cell::RefCell<Vec<libc::pollfd>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Idle workers read the links themselves (see [`super::link::read`]).
///
/// With several links a look is one `poll` call over all of them, then a
/// read of those that have bytes.
impl IdlePoller for Cluster {
    fn poll(&self) -> bool {
        let links = self.polled.read().clone();
        if links.len() <= 1 {
            return links.first().is_some_and(|l| l.poll_worker(self, false));
        }
        POLL_SET.with(|set| {
            let mut fds = set.borrow_mut();
            fds.clear();
            fds.extend(links.iter().map(|l| libc::pollfd {
                fd: l.raw_fd(),
                events: libc::POLLIN | libc::POLLRDHUP,
                revents: 0,
            }));
            // SAFETY: `fds` is a valid array of `fds.len()` entries.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
            let mut any = false;
            for (l, p) in links.iter().zip(fds.iter()) {
                if ready > 0 && p.revents != 0 {
                    any |= l.poll_worker(self, true);
                } else {
                    l.looked();
                }
            }
            any
        })
    }

    fn sleeping(&self) {
        for l in self.polled.read().iter() {
            l.request_arm();
        }
    }
}
