//! [`Cluster`]: the state of this node's harbor (links to the other nodes,
//! the global-name cache, outstanding remote calls, waiters) and the
//! kernel's [`RemoteRouter`].
//!
//! Everything lives behind one mutex. Worker threads take it when a service
//! sends to another node; the harbor thread takes it when links, names or
//! master packets change something. Work that could re-enter the router
//! (ERROR replies to remote sources, RESPONSEs to waiters) and log lines are
//! collected as [`Effect`]s and run after the lock is released. Local
//! deliveries and frames handed to a link are done under the lock, so that
//! messages from one source keep their order whichever path they take
//! (queued, flushed, or sent directly).

use super::direct::DirectWriter;
use super::frame::OutFrame;
use super::link;
use crate::kernel::{kernel, RemoteRouter};
use crate::message::{ptype, Message};
use crate::scheduler::IdlePoller;
use parking_lot::{Mutex, RwLock};
use skynet_proto::harbor::MAX_PAYLOAD_LEN;
use skynet_proto::master::MasterPacket;
use skynet_proto::{GlobalName, Handle};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::Notify;

/// A message queued for a harbor that is not linked yet fails after this.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Someone waiting for an answer from the slave (a call to `.cslave`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    pub source: u32,
    pub session: i32,
}

/// What the link writer is asked to send.
#[derive(Debug)]
pub enum Out {
    Frame(OutFrame),
    /// The rest of a frame a worker wrote in part (see [`super::direct`]).
    Raw(Vec<u8>),
    Ping,
    Pong,
}

/// The live link to a harbor, as the state holds it.
pub struct LinkRef {
    pub id: u64,
    pub tx: UnboundedSender<Out>,
    pub direct: Arc<DirectWriter>,
    pub kill: Arc<Notify>,
    /// We connected (we are the older node); only this side reconnects.
    pub initiated: bool,
}

/// The link state of one harbor id.
///
/// ```text
///             C id addr (master)              handshake ok
///   Unknown ─────────────────────▶ Connecting ─────────────▶ Up
///      │  \                           │  ▲                    │ EOF, reset, heartbeat,
///      │   └──── accepted connection ─┼──┼──────────────────▶ │ malformed frame, D id
///      │                give up / D   ▼  │ C id addr          ▼
///      └────────── D id ───────────▶ Down ◀─────────────────────
///                                     │  reconnect (the side that connected)
///                                     └──────────────────────────▶ Up
/// ```
/// Unknown and Connecting queue messages (Unknown ones expire after
/// [`QUEUE_TIMEOUT`]); Up writes frames; Down answers at once with ERROR.
pub enum Status {
    Unknown,
    Connecting,
    Up(LinkRef),
    Down,
}

struct Queued {
    dest: u32,
    msg: Message,
    at: Instant,
}

struct Peer {
    status: Status,
    /// The address the master announced (for connecting and reconnecting).
    address: Option<String>,
    queue: VecDeque<Queued>,
    link_waiters: Vec<Waiter>,
    connect_waiters: Vec<Waiter>,
    /// Bumped on every status change; a connector task whose number is stale
    /// gives up.
    attempt: u64,
}

impl Default for Peer {
    fn default() -> Self {
        Peer {
            status: Status::Unknown,
            address: None,
            queue: VecDeque::new(),
            link_waiters: Vec::new(),
            connect_waiters: Vec::new(),
            attempt: 0,
        }
    }
}

/// A request sent to another harbor, waiting for its RESPONSE or ERROR.
#[derive(Debug, Clone, Copy)]
struct Pending {
    harbor: u8,
    dest: u32,
}

struct State {
    peers: Vec<Peer>,
    /// Global name cache (from the master's `N` and local REGISTERs).
    names: HashMap<String, u32>,
    /// Messages to names not known yet.
    name_queues: HashMap<String, Vec<Message>>,
    /// Names a `Q` was sent for in this master session.
    queried: HashSet<String>,
    name_waiters: HashMap<String, Vec<Waiter>>,
    /// Names registered on this node: re-sent with `R` after every (re)connection to the master.
    owned: BTreeMap<String, u32>,
    /// (local caller, session) -> outstanding remote request.
    pending: HashMap<(u32, i32), Pending>,
    /// Where master packets go while the master is connected.
    master: Option<UnboundedSender<MasterPacket>>,
    master_waiters: Vec<Waiter>,
    /// Boot handshake: harbors announced by `W n`, and how many connected since.
    expect: Option<(usize, usize)>,
}

/// Deferred work, run once the state lock is released.
pub enum Effect {
    /// PTYPE_ERROR with `session` from `from` to `to`.
    Bounce {
        from: u32,
        to: u32,
        session: i32,
    },
    /// PTYPE_RESPONSE from the slave service.
    Reply {
        to: u32,
        session: i32,
        data: Vec<u8>,
    },
    Log(String),
}

/// True for messages that expect an answer (as the kernel decides it). A
/// multicast message's session is its channel id: nobody waits for an answer.
pub fn is_request(t: u8) -> bool {
    t != ptype::RESPONSE && t != ptype::ERROR && t != ptype::MULTICAST
}

fn bounce(fx: &mut Vec<Effect>, dead: u32, msg: &Message) {
    if msg.source != 0 && is_request(msg.ptype) {
        fx.push(Effect::Bounce {
            from: dead,
            to: msg.source,
            session: msg.session,
        });
    }
}

pub struct Cluster {
    pub own: u8,
    /// Handle of the `cslave` service: source of its replies and log lines.
    pub slave: u32,
    pub address: String,
    pub master_addr: String,
    pub rt: tokio::runtime::Handle,
    epoch: Instant,
    next_link: AtomicU64,
    st: Mutex<State>,
    /// The receiving halves of the live links, for idle workers to poll. A
    /// snapshot is swapped in on change, so pollers hold no lock while they
    /// deliver.
    inbound: RwLock<Arc<Vec<Arc<link::Inbound>>>>,
}

impl Cluster {
    pub fn new(
        own: u8,
        slave: u32,
        address: String,
        master_addr: String,
        rt: tokio::runtime::Handle,
    ) -> Cluster {
        Cluster {
            own,
            slave,
            address,
            master_addr,
            rt,
            epoch: Instant::now(),
            next_link: AtomicU64::new(1),
            inbound: RwLock::new(Arc::new(Vec::new())),
            st: Mutex::new(State {
                peers: (0..256).map(|_| Peer::default()).collect(),
                names: HashMap::new(),
                name_queues: HashMap::new(),
                queried: HashSet::new(),
                name_waiters: HashMap::new(),
                owned: BTreeMap::new(),
                pending: HashMap::new(),
                master: None,
                master_waiters: Vec::new(),
                expect: None,
            }),
        }
    }

    /// Milliseconds since the cluster started (monotonic).
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn log(&self, text: &str) {
        kernel().log(self.slave, text);
    }

    fn is_local(&self, handle: u32) -> bool {
        let h = (handle >> 24) as u8;
        h == self.own || h == 0
    }

    /// Runs deferred work. Must be called without the lock.
    pub fn run(&self, fx: Vec<Effect>) {
        let k = kernel();
        for e in fx {
            match e {
                Effect::Bounce { from, to, session } => {
                    let _ = k.send(from, from, to, ptype::ERROR, session, Vec::new());
                }
                Effect::Reply { to, session, data } => {
                    let _ = k.send(self.slave, self.slave, to, ptype::RESPONSE, session, data);
                }
                Effect::Log(text) => self.log(&text),
            }
        }
    }

    // ------------------------------------------------------------ routing

    /// Sends `msg` to `dest` (any harbor). Local deliveries and link writes
    /// happen now; answers to undeliverable requests are deferred.
    fn route_locked(&self, st: &mut State, dest: u32, msg: Message, fx: &mut Vec<Effect>) {
        let harbor = (dest >> 24) as u8;
        if harbor == self.own || harbor == 0 {
            if let Err(m) = kernel().push(dest, msg) {
                bounce(fx, dest, &m);
            }
            return;
        }
        if msg.ptype == ptype::SYSTEM || msg.ptype == ptype::HARBOR {
            fx.push(Effect::Log(format!(
                "Can't send a message of type {} to remote :{dest:08x} from :{:08x}",
                msg.ptype, msg.source
            )));
            bounce(fx, dest, &msg);
            return;
        }
        if msg.data.len() > MAX_PAYLOAD_LEN {
            fx.push(Effect::Log(format!(
                "remote message from :{:08x} to :{dest:08x} is too large ({} bytes, the limit is {MAX_PAYLOAD_LEN})",
                msg.source,
                msg.data.len()
            )));
            bounce(fx, dest, &msg);
            return;
        }
        let State { peers, pending, .. } = st;
        let peer = &mut peers[harbor as usize];
        match &peer.status {
            Status::Up(link) => self.write_locked(pending, link, harbor, dest, msg, fx),
            Status::Unknown | Status::Connecting => peer.queue.push_back(Queued {
                dest,
                msg,
                at: Instant::now(),
            }),
            Status::Down => {
                fx.push(Effect::Log(format!(
                    "Drop message to harbor {harbor} from {:x} to {dest:x} (session = {}, msgsz = {})",
                    msg.source,
                    msg.session,
                    msg.data.len()
                )));
                bounce(fx, dest, &msg);
            }
        }
    }

    fn write_locked(
        &self,
        pending: &mut HashMap<(u32, i32), Pending>,
        link: &LinkRef,
        harbor: u8,
        dest: u32,
        msg: Message,
        fx: &mut Vec<Effect>,
    ) {
        let Message {
            source,
            session,
            ptype: t,
            data,
        } = msg;
        let track = session != 0 && is_request(t) && self.is_local(source) && source != 0;
        let frame = OutFrame::new(source, dest, t, session, data);
        if link.direct.send(frame, &link.tx) {
            if track {
                pending.insert((source, session), Pending { harbor, dest });
            }
        } else if source != 0 && is_request(t) {
            // The link task is gone; its loss is being reported.
            fx.push(Effect::Bounce {
                from: dest,
                to: source,
                session,
            });
        }
    }

    /// A RESPONSE or ERROR for `(caller, session)` came back from some harbor.
    pub fn answered(&self, caller: u32, session: i32) {
        self.st.lock().pending.remove(&(caller, session));
    }

    // ------------------------------------------------------------ names

    fn query_master_locked(st: &mut State, name: &str) {
        if st.queried.contains(name) {
            return;
        }
        if let (Some(tx), Ok(gn)) = (&st.master, GlobalName::new(name)) {
            if tx.send(MasterPacket::Query { name: gn }).is_ok() {
                st.queried.insert(name.to_string());
            }
        }
    }

    /// Binds `name` in the cache, answers its QUERYNAME waiters and sends
    /// the messages that waited for it.
    fn bind_locked(&self, st: &mut State, name: &str, handle: u32, fx: &mut Vec<Effect>) {
        st.names.insert(name.to_string(), handle);
        st.queried.remove(name);
        if let Some(ws) = st.name_waiters.remove(name) {
            let data = pack_handle(handle);
            for w in ws {
                fx.push(Effect::Reply {
                    to: w.source,
                    session: w.session,
                    data: data.clone(),
                });
            }
        }
        if let Some(msgs) = st.name_queues.remove(name) {
            for m in msgs {
                self.route_locked(st, handle, m, fx);
            }
        }
    }

    /// `N name handle` from the master.
    pub fn on_name(&self, name: &str, handle: u32) {
        let mut fx = Vec::new();
        {
            let mut st = self.st.lock();
            let st = &mut *st;
            let owned = st.owned.get(name).copied();
            if (handle >> 24) as u8 == self.own && owned != Some(handle) {
                // A binding of an earlier process with this harbor id: that
                // handle may now be another service. Wait for a fresh one.
                fx.push(Effect::Log(format!(
                    "Ignore stale global name {name} = :{handle:08x} (not registered by this node)"
                )));
            } else {
                if let Some(mine) = owned {
                    if mine != handle {
                        st.owned.remove(name);
                        fx.push(Effect::Log(format!(
                            "Global name {name} is held by :{handle:08x}; the registration of :{mine:08x} was refused by the master"
                        )));
                    }
                }
                self.bind_locked(st, name, handle, &mut fx);
            }
        }
        self.run(fx);
    }

    /// REGISTER from a local service: bind now, tell the master.
    pub fn register(&self, name: &str, handle: u32) {
        let gn = match GlobalName::new(name) {
            Ok(gn) => gn,
            Err(e) => {
                self.log(&format!("Invalid global name {name:?}: {e}"));
                return;
            }
        };
        if handle == 0 {
            self.log(&format!("Invalid handle 0 for global name {name}"));
            return;
        }
        let mut fx = Vec::new();
        {
            let mut st = self.st.lock();
            let st = &mut *st;
            match st.names.get(name) {
                Some(&old) if old != handle && self.holder_alive(st, old) => {
                    fx.push(Effect::Log(format!(
                        "Global name {name} is already registered to :{old:08x}; refusing :{handle:08x}"
                    )));
                }
                _ => {
                    st.owned.insert(name.to_string(), handle);
                    if let Some(tx) = &st.master {
                        let _ = tx.send(MasterPacket::Register {
                            name: gn,
                            handle: Handle(handle),
                        });
                    }
                    self.bind_locked(st, name, handle, &mut fx);
                }
            }
        }
        self.run(fx);
    }

    fn holder_alive(&self, st: &State, handle: u32) -> bool {
        let harbor = (handle >> 24) as u8;
        if harbor == self.own || harbor == 0 {
            kernel().grab(handle).is_some()
        } else {
            matches!(st.peers[harbor as usize].status, Status::Up(_))
        }
    }

    /// QUERYNAME for a global name: the handle now, or when it is bound.
    pub fn queryname(&self, name: &str, w: Waiter) {
        let mut fx = Vec::new();
        {
            let mut st = self.st.lock();
            if let Some(&h) = st.names.get(name) {
                fx.push(Effect::Reply {
                    to: w.source,
                    session: w.session,
                    data: pack_handle(h),
                });
            } else {
                st.name_waiters.entry(name.to_string()).or_default().push(w);
                Self::query_master_locked(&mut st, name);
            }
        }
        self.run(fx);
    }

    // ------------------------------------------------------------ waiters

    /// LINK: answered when harbor `id` goes down (at once if it is not linked).
    pub fn link_waiter(&self, id: u8, w: Waiter) {
        let mut st = self.st.lock();
        let peer = &mut st.peers[id as usize];
        if id != self.own && matches!(peer.status, Status::Up(_)) {
            peer.link_waiters.push(w);
        } else {
            drop(st);
            self.run(vec![Effect::Reply {
                to: w.source,
                session: w.session,
                data: Vec::new(),
            }]);
        }
    }

    /// CONNECT: answered when harbor `id` is linked (at once if it is).
    pub fn connect_waiter(&self, id: u8, w: Waiter) {
        let mut st = self.st.lock();
        let peer = &mut st.peers[id as usize];
        if id == self.own || matches!(peer.status, Status::Up(_)) {
            drop(st);
            self.run(vec![Effect::Reply {
                to: w.source,
                session: w.session,
                data: Vec::new(),
            }]);
        } else {
            peer.connect_waiters.push(w);
        }
    }

    /// LINKMASTER: answered when the master connection is lost (at once if
    /// it is not connected).
    pub fn master_waiter(&self, w: Waiter) {
        let mut st = self.st.lock();
        if st.master.is_some() {
            st.master_waiters.push(w);
        } else {
            drop(st);
            self.run(vec![Effect::Reply {
                to: w.source,
                session: w.session,
                data: Vec::new(),
            }]);
        }
    }

    // ------------------------------------------------------------ master

    /// The master answered our `H` with `W n` (`first`: the first session of
    /// this process). Sends `R` for every name we own and `Q` for every name
    /// still waited for, then routes packets to `tx`.
    pub fn master_connected(&self, tx: UnboundedSender<MasterPacket>, first: bool, n: usize) {
        let mut fx = Vec::new();
        {
            let mut st = self.st.lock();
            let st = &mut *st;
            for (name, &h) in &st.owned {
                if let Ok(gn) = GlobalName::new(name) {
                    let _ = tx.send(MasterPacket::Register {
                        name: gn,
                        handle: Handle(h),
                    });
                }
            }
            if !first && !st.owned.is_empty() {
                fx.push(Effect::Log(format!(
                    "Re-registered {} global names with the master",
                    st.owned.len()
                )));
            }
            st.master = Some(tx);
            st.queried.clear();
            let wanted: Vec<String> = st
                .name_queues
                .keys()
                .chain(st.name_waiters.keys())
                .cloned()
                .collect();
            for name in wanted {
                Self::query_master_locked(st, &name);
            }
            if first {
                let got = st
                    .peers
                    .iter()
                    .filter(|p| matches!(&p.status, Status::Up(l) if !l.initiated))
                    .count();
                if got >= n {
                    fx.push(Effect::Log("Shakehand ready".into()));
                } else {
                    st.expect = Some((n, got));
                }
            }
        }
        self.run(fx);
    }

    /// The master connection ended: LINKMASTER waiters return.
    pub fn master_lost(&self) {
        let mut fx = Vec::new();
        {
            let mut st = self.st.lock();
            st.master = None;
            st.queried.clear();
            for w in st.master_waiters.drain(..) {
                fx.push(Effect::Reply {
                    to: w.source,
                    session: w.session,
                    data: Vec::new(),
                });
            }
        }
        self.run(fx);
    }

    /// `C id addr`: connect to that (newer) harbor.
    pub fn on_connect(self: &Arc<Self>, id: u8, address: String) {
        if id == 0 || id == self.own {
            self.log(&format!(
                "Ignore connect request to harbor {id} ({address})"
            ));
            return;
        }
        let mut st = self.st.lock();
        let peer = &mut st.peers[id as usize];
        let same = peer.address.as_deref() == Some(address.as_str());
        peer.address = Some(address.clone());
        match peer.status {
            Status::Up(_) => return,
            Status::Connecting if same => return,
            _ => {}
        }
        peer.status = Status::Connecting;
        peer.attempt += 1;
        let gen = peer.attempt;
        drop(st);
        self.rt
            .spawn(link::connector(self.clone(), id, address, gen, false));
    }

    /// True while a connector started with `gen` is still wanted.
    pub fn attempt_current(&self, id: u8, gen: u64) -> bool {
        self.st.lock().peers[id as usize].attempt == gen
    }

    /// A connector for a `C` gave up.
    pub fn connect_failed(&self, id: u8, gen: u64, reason: &str) {
        let mut fx = Vec::new();
        {
            let mut st = self.st.lock();
            if st.peers[id as usize].attempt != gen {
                return;
            }
            self.down_locked(&mut st, id, reason, &mut fx);
        }
        self.run(fx);
    }

    /// `D id` from the master.
    pub fn on_down(&self, id: u8) {
        if id == 0 || id == self.own {
            return;
        }
        let mut fx = Vec::new();
        {
            let mut st = self.st.lock();
            if matches!(st.peers[id as usize].status, Status::Down) {
                // Stop any reconnection attempt all the same.
                st.peers[id as usize].attempt += 1;
                return;
            }
            self.down_locked(&mut st, id, "the master reports it down", &mut fx);
        }
        self.run(fx);
    }

    /// Marks harbor `id` down: its link is closed, queued messages and
    /// outstanding calls fail with ERROR, LINK waiters return.
    fn down_locked(&self, st: &mut State, id: u8, reason: &str, fx: &mut Vec<Effect>) {
        let peer = &mut st.peers[id as usize];
        let old = std::mem::replace(&mut peer.status, Status::Down);
        peer.attempt += 1;
        if let Status::Up(link) = &old {
            link.direct.close();
            link.kill.notify_one();
        }
        let queued: Vec<Queued> = peer.queue.drain(..).collect();
        for q in &queued {
            bounce(fx, q.dest, &q.msg);
        }
        for w in peer.link_waiters.drain(..) {
            fx.push(Effect::Reply {
                to: w.source,
                session: w.session,
                data: Vec::new(),
            });
        }
        let failed: Vec<(u32, i32)> = st
            .pending
            .iter()
            .filter(|(_, p)| p.harbor == id)
            .map(|(k, _)| *k)
            .collect();
        for key in &failed {
            if let Some(p) = st.pending.remove(key) {
                fx.push(Effect::Bounce {
                    from: p.dest,
                    to: key.0,
                    session: key.1,
                });
            }
        }
        fx.push(Effect::Log(format!(
            "Harbor {id} down: {reason} ({} pending calls failed, {} queued messages dropped)",
            failed.len(),
            queued.len()
        )));
    }

    // ------------------------------------------------------------ links

    /// A handshake with harbor `id` succeeded (`initiated`: we connected).
    /// Makes it the harbor's link and flushes its queue. False when the
    /// connection is not wanted any more (a stale connector).
    pub fn attach(
        self: &Arc<Self>,
        id: u8,
        stream: tokio::net::TcpStream,
        initiated: bool,
        gen: Option<u64>,
    ) -> bool {
        let peer_addr = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let mut fx = Vec::new();
        {
            let mut st = self.st.lock();
            let st = &mut *st;
            if let Some(g) = gen {
                if st.peers[id as usize].attempt != g {
                    return false;
                }
            }
            if matches!(st.peers[id as usize].status, Status::Up(_)) {
                self.down_locked(st, id, "replaced by a new connection", &mut fx);
            }
            let link_id = self.next_link.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = unbounded_channel();
            let kill = Arc::new(Notify::new());
            let direct = Arc::new(DirectWriter::new(&stream));
            let link = LinkRef {
                id: link_id,
                tx: tx.clone(),
                direct: direct.clone(),
                kill: kill.clone(),
                initiated,
            };
            let State { peers, pending, .. } = st;
            let peer = &mut peers[id as usize];
            peer.attempt += 1;
            let queued: Vec<Queued> = peer.queue.drain(..).collect();
            let flushed = queued.len();
            for q in queued {
                self.write_locked(pending, &link, id, q.dest, q.msg, &mut fx);
            }
            peer.status = Status::Up(link);
            for w in peer.connect_waiters.drain(..) {
                fx.push(Effect::Reply {
                    to: w.source,
                    session: w.session,
                    data: Vec::new(),
                });
            }
            if initiated {
                fx.push(Effect::Log(format!(
                    "Connect to harbor {id} ({})",
                    peer.address.as_deref().unwrap_or(&peer_addr)
                )));
            } else {
                fx.push(Effect::Log(format!("Harbor {id} connected ({peer_addr})")));
            }
            if flushed > 0 {
                fx.push(Effect::Log(format!(
                    "Sent {flushed} messages queued for harbor {id}"
                )));
            }
            if !initiated {
                if let Some((want, got)) = st.expect.as_mut() {
                    *got += 1;
                    if *got >= *want {
                        st.expect = None;
                        fx.push(Effect::Log("Shakehand ready".into()));
                    }
                }
            }
            self.rt.spawn(link::run_link(
                self.clone(),
                id,
                link_id,
                stream,
                link::LinkIo {
                    tx,
                    rx,
                    kill,
                    direct,
                },
            ));
        }
        self.run(fx);
        true
    }

    /// The link task of harbor `id` ended. `protocol`: the peer sent bytes
    /// that break the protocol (no reconnection then).
    pub fn link_lost(self: &Arc<Self>, id: u8, link_id: u64, reason: &str, protocol: bool) {
        let mut fx = Vec::new();
        {
            let mut st = self.st.lock();
            let initiated = match &st.peers[id as usize].status {
                Status::Up(l) if l.id == link_id => l.initiated,
                _ => return,
            };
            self.down_locked(&mut st, id, reason, &mut fx);
            let peer = &st.peers[id as usize];
            if initiated && !protocol {
                if let Some(addr) = peer.address.clone() {
                    let gen = peer.attempt;
                    self.rt
                        .spawn(link::connector(self.clone(), id, addr, gen, true));
                }
            }
        }
        self.run(fx);
    }

    /// A link task started: idle workers may read its socket from now on.
    pub fn add_inbound(&self, i: Arc<link::Inbound>) {
        let mut g = self.inbound.write();
        let mut v = (**g).clone();
        v.push(i);
        *g = Arc::new(v);
    }

    /// A link task is ending.
    pub fn remove_inbound(&self, i: &Arc<link::Inbound>) {
        let mut g = self.inbound.write();
        let v: Vec<_> = g.iter().filter(|x| !Arc::ptr_eq(x, i)).cloned().collect();
        *g = Arc::new(v);
    }

    /// Fails messages that waited too long for a harbor that never linked.
    pub fn expire_queues(&self) {
        let mut fx = Vec::new();
        {
            let mut st = self.st.lock();
            let now = Instant::now();
            for (id, peer) in st.peers.iter_mut().enumerate() {
                if peer.queue.is_empty() {
                    continue;
                }
                let mut n = 0;
                while let Some(q) = peer.queue.front() {
                    if now.duration_since(q.at) < QUEUE_TIMEOUT {
                        break;
                    }
                    let q = peer.queue.pop_front().unwrap();
                    bounce(&mut fx, q.dest, &q.msg);
                    n += 1;
                }
                if n > 0 {
                    fx.push(Effect::Log(format!(
                        "Drop {n} messages to harbor {id}: no link after {} s",
                        QUEUE_TIMEOUT.as_secs()
                    )));
                }
            }
        }
        self.run(fx);
    }
}

/// seri `pack(handle)`.
pub fn pack_handle(handle: u32) -> Vec<u8> {
    skynet_proto::seri::pack(&[skynet_proto::seri::Value::Integer(i64::from(handle))])
        .unwrap_or_default()
}

impl RemoteRouter for Cluster {
    fn send_handle(&self, dest: u32, msg: Message) {
        let mut fx = Vec::new();
        {
            let mut st = self.st.lock();
            self.route_locked(&mut st, dest, msg, &mut fx);
        }
        self.run(fx);
    }

    fn send_name(&self, name: &str, msg: Message) {
        let mut fx = Vec::new();
        {
            let mut st = self.st.lock();
            if let Some(&h) = st.names.get(name) {
                self.route_locked(&mut st, h, msg, &mut fx);
            } else if name.is_empty() || name.len() > crate::harbor::GLOBALNAME_MAX {
                fx.push(Effect::Log(format!("Invalid global name {name}")));
                bounce(&mut fx, 0, &msg);
            } else {
                st.name_queues
                    .entry(name.to_string())
                    .or_default()
                    .push(msg);
                Self::query_master_locked(&mut st, name);
            }
        }
        self.run(fx);
    }
}

thread_local! {
    /// A worker's `poll` array for its looks at the links (kept to avoid an
    /// allocation per look).
    static POLL_SET: std::cell::RefCell<Vec<libc::pollfd>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Idle workers read the links themselves (see [`super::reader`]).
///
/// With several links a look is one `poll` call over all of them (a call per
/// link made a look cost a system call per harbor in a big cluster), then a
/// read of those that have bytes.
impl IdlePoller for Cluster {
    fn poll(&self) -> bool {
        let links = self.inbound.read().clone();
        if links.len() <= 1 {
            return links.first().is_some_and(|i| i.poll_worker(self, false));
        }
        POLL_SET.with(|set| {
            let mut fds = set.borrow_mut();
            fds.clear();
            fds.extend(links.iter().map(|i| libc::pollfd {
                fd: i.reader.raw_fd(),
                events: libc::POLLIN | libc::POLLRDHUP,
                revents: 0,
            }));
            // SAFETY: `fds` is a valid array of `fds.len()` entries.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
            let mut any = false;
            for (i, p) in links.iter().zip(fds.iter()) {
                if ready > 0 && p.revents != 0 {
                    any |= i.poll_worker(self, true);
                } else {
                    i.reader.looked();
                }
            }
            any
        })
    }

    fn sleeping(&self) {
        for i in self.inbound.read().iter() {
            i.reader.request_arm();
        }
    }
}
