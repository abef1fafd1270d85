//! [`ClusterState`]: this node's view of the cluster as a state machine
//! without I/O: which harbors are linked (and by which link), the messages
//! waiting for a harbor or a name, the calls waiting for an answer from
//! another harbor, the global-name cache, the names this node owns, and who
//! waits for what (`LINK`, `CONNECT`, `LINKMASTER`, `QUERYNAME`).
//!
//! Every event (a send, a master packet, a link that came up or went down,
//! a tick of the queue sweeper) goes in; what must be done comes out as
//! [`Action`]s, in order. [`super::router::Cluster`] executes them. The link
//! type `L` is opaque here: the router stores its link objects, the tests
//! store numbers.
//!
//! # Harbor status
//!
//! ```text
//!             C id addr (master)              handshake ok
//!   Unknown ─────────────────────▶ Connecting ─────────────▶ Up
//!      │  \                           │  ▲                    │ EOF, reset, heartbeat,
//!      │   └──── accepted connection ─┼──┼──────────────────▶ │ malformed frame, D id
//!      │                give up / D   ▼  │ C id addr          ▼
//!      └────────── D id ───────────▶ Down ◀─────────────────────
//!                                     │  reconnect (the side that connected)
//!                                     └──────────────────────────▶ Up
//! ```
//! Unknown and Connecting queue messages (they expire after
//! [`QUEUE_TIMEOUT`]); Up writes frames; Down answers at once with ERROR.
//! Every status change bumps the harbor's *attempt* number: a connector
//! started for an older attempt gives up ([`ClusterState::attempt_current`]).
//!
//! # Admission of accepted links
//!
//! Only older harbors connect to us: those that were live when we joined.
//! Our master names them in `W` (a set) and `P` (their addresses); a C
//! skynet master sends only their number. [`ClusterState::admit`] decides
//! on a connection that claims harbor `id`:
//!
//! * `id` is ours, 0, or already linked: refused;
//! * our master's `W` named `id`: accepted once its `P` came (the router then
//!   checks the peer's IP against that address); not named: refused;
//! * a C skynet master's `W n`: the first `n` distinct ids are accepted (as
//!   skynet does before it closes its port), and later only those again;
//! * no `W` yet, or `id` named but its `P` not yet: the router holds the
//!   connection a little ([`ADMIT_WAIT`]) and asks again.
//!
//! `D id` from the master forgets `id` as a peer that may connect: after a
//! rejoin the order of the two is reversed and we connect to it.

use crate::message::{is_request, ptype, Message};
use skynet_proto::global_name::{self, GlobalName};
use skynet_proto::harbor::{HarborFrame, MAX_PAYLOAD_LEN};
use skynet_proto::master::{HarborSet, MasterPacket};
use skynet_proto::Handle;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// A message queued for a harbor that is not linked yet fails after this.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// An accepted connection waits at most this long for the master's word on
/// the harbor it claims to be (the master tells the older harbors about us
/// and us about them at the same time, on different connections). Shorter
/// than the connector's handshake timeout, so that it sees a refusal.
pub const ADMIT_WAIT: Duration = Duration::from_secs(2);

/// The decision on a connection that claims to be a harbor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Take it; if an address is given, the peer's IP must be that of the
    /// address the harbor announced.
    Accept { address: Option<String> },
    /// Not known yet: ask again a little later.
    Wait(&'static str),
    /// Refuse it, for this reason.
    Refuse(String),
}

/// What the first `W` of this process said about who connects to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Welcome {
    /// Our master: a set of ids (and `P` with their addresses).
    Named,
    /// A C skynet master: only a count; this many more ids may still connect.
    Counted { left: usize },
}

/// Someone waiting for an answer from the slave (a call to `.cslave`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    pub source: u32,
    pub session: i32,
}

/// Something the router must do. The first four keep their order with the
/// sends of other threads, so the router does them while it holds the state;
/// the others may send messages that come back to the router, so it does
/// them after ([`Action::in_order`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Action<L> {
    /// Push a message to a local service. If that fails, the router answers
    /// it as [`Action::bounce`] says.
    Deliver { dest: u32, msg: Message },
    /// Hand a frame to a link. If the link refuses it (its task is gone), the
    /// router reports [`ClusterState::write_failed`].
    Write {
        link: L,
        frame: HarborFrame<Vec<u8>>,
    },
    /// Close a link: the harbor it served went down or was replaced.
    CloseLink(L),
    /// Send a packet to the master, if it is connected.
    ToMaster(MasterPacket),
    /// PTYPE_ERROR with `session` from `from` to `to`.
    Bounce { from: u32, to: u32, session: i32 },
    /// PTYPE_RESPONSE from the slave service.
    Reply {
        to: u32,
        session: i32,
        data: Vec<u8>,
    },
    /// A line in the log, from the slave service.
    Log(String),
    /// Start connecting to `harbor` for the given attempt; `reconnect`: the
    /// link was lost and this side had connected it.
    Dial {
        harbor: u8,
        address: String,
        attempt: u64,
        reconnect: bool,
    },
}

impl<L> Action<L> {
    /// True for the actions the router does while it holds the state.
    pub fn in_order(&self) -> bool {
        matches!(
            self,
            Action::Deliver { .. }
                | Action::Write { .. }
                | Action::CloseLink(_)
                | Action::ToMaster(_)
        )
    }

    /// The answer to `msg` when it cannot reach `dead`: ERROR to its source
    /// if it is a request from a service (system messages and replies are
    /// not answered).
    pub fn bounce(dead: u32, msg: &Message) -> Option<Action<L>> {
        (msg.source != 0 && is_request(msg.ptype)).then_some(Action::Bounce {
            from: dead,
            to: msg.source,
            session: msg.session,
        })
    }

    fn reply_empty(w: Waiter) -> Action<L> {
        Action::Reply {
            to: w.source,
            session: w.session,
            data: Vec::new(),
        }
    }
}

/// seri `pack(handle)`: the answer to QUERYNAME.
pub fn pack_handle(handle: u32) -> Vec<u8> {
    skynet_proto::seri::pack(&[skynet_proto::seri::Value::Integer(i64::from(handle))])
        .unwrap_or_default()
}

/// The live link of a harbor.
#[derive(Debug)]
struct UpLink<L> {
    link: L,
    id: u64,
    /// We connected (we are the older node); only this side reconnects.
    initiated: bool,
}

#[derive(Debug)]
enum Status<L> {
    Unknown,
    Connecting,
    Up(UpLink<L>),
    Down,
}

struct Queued {
    dest: u32,
    msg: Message,
    at: Instant,
}

struct Peer<L> {
    status: Status<L>,
    /// The address the master announced (for connecting and reconnecting).
    address: Option<String>,
    queue: VecDeque<Queued>,
    link_waiters: Vec<Waiter>,
    connect_waiters: Vec<Waiter>,
    /// Bumped on every status change.
    attempt: u64,
    /// The master said this harbor connects to us (`W`), and where it
    /// listens (`P`; never known with a C skynet master).
    inbound: Option<Option<String>>,
}

impl<L> Default for Peer<L> {
    fn default() -> Self {
        Peer {
            status: Status::Unknown,
            address: None,
            queue: VecDeque::new(),
            link_waiters: Vec::new(),
            connect_waiters: Vec::new(),
            attempt: 0,
            inbound: None,
        }
    }
}

/// A request sent to another harbor, waiting for its RESPONSE or ERROR.
#[derive(Debug, Clone, Copy)]
struct Pending {
    harbor: u8,
    dest: u32,
}

/// The state of this node's harbor. See the module doc.
pub struct ClusterState<L> {
    own: u8,
    peers: Vec<Peer<L>>,
    /// Global name cache (from the master's `N` and local REGISTERs).
    names: HashMap<String, u32>,
    /// Messages to names not known yet.
    name_queues: HashMap<String, Vec<Message>>,
    /// Names a `Q` was sent for in this master session.
    queried: HashSet<String>,
    name_waiters: HashMap<String, Vec<Waiter>>,
    /// Names registered on this node: sent again with `R` after every
    /// (re)connection to the master.
    owned: BTreeMap<String, u32>,
    /// (local caller, session) -> outstanding remote request.
    pending: HashMap<(u32, i32), Pending>,
    master_connected: bool,
    master_waiters: Vec<Waiter>,
    /// Boot handshake: harbors announced by `W n`, and how many connected since.
    expect: Option<(usize, usize)>,
    /// What the master's `W` told us about who may connect (None: no `W` yet).
    welcome: Option<Welcome>,
    /// The election of the node that hosts the global services: whether our
    /// first `W` was `W 0` (None: no `W` yet), and who waits for it.
    elected: Option<bool>,
    elect_waiters: Vec<Waiter>,
    /// Global names waited for, and since when (for [`Self::report_waits`]).
    name_nags: HashMap<String, Nag>,
    /// The boot wait for older harbors (`W n`), while it lasts.
    harbor_nag: Option<Nag>,
    /// Times a linked harbor went down (for the metrics).
    down_events: u64,
}

/// A wait worth telling the operator about: logged after 1 s, then once a
/// second for 5 s, then at doubling intervals up to [`NAG_MAX`].
#[derive(Debug, Clone, Copy)]
pub struct Nag {
    since: Instant,
    reports: u32,
    /// The wait after which the next report is due.
    next: Duration,
}

/// The longest interval between two reports of one wait.
pub const NAG_MAX: Duration = Duration::from_secs(30);

impl Nag {
    pub fn new(since: Instant) -> Nag {
        Nag {
            since,
            reports: 0,
            next: Duration::from_secs(1),
        }
    }

    /// The wait so far, if a report is due at `now` (and counts it).
    pub fn due(&mut self, now: Instant) -> Option<Duration> {
        let waited = now.saturating_duration_since(self.since);
        if waited < self.next {
            return None;
        }
        self.reports += 1;
        let interval = if self.reports < 5 {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(1 << (self.reports - 4).min(5)).min(NAG_MAX)
        };
        self.next = waited + interval;
        Some(waited)
    }
}

impl<L: Clone> ClusterState<L> {
    /// The state of harbor `own` (1..=255) before anything happened.
    pub fn new(own: u8) -> Self {
        ClusterState {
            own,
            peers: (0..256).map(|_| Peer::default()).collect(),
            names: HashMap::new(),
            name_queues: HashMap::new(),
            queried: HashSet::new(),
            name_waiters: HashMap::new(),
            owned: BTreeMap::new(),
            pending: HashMap::new(),
            master_connected: false,
            master_waiters: Vec::new(),
            expect: None,
            welcome: None,
            elected: None,
            elect_waiters: Vec::new(),
            name_nags: HashMap::new(),
            harbor_nag: None,
            down_events: 0,
        }
    }

    fn peer(&mut self, id: u8) -> &mut Peer<L> {
        &mut self.peers[usize::from(id)]
    }

    fn is_up(&self, id: u8) -> bool {
        matches!(self.peers[usize::from(id)].status, Status::Up(_))
    }

    /// How many remote requests wait for an answer.
    pub fn pending_calls(&self) -> usize {
        self.pending.len()
    }

    /// The links up now.
    pub fn up_links(&self) -> Vec<L> {
        self.peers
            .iter()
            .filter_map(|p| match &p.status {
                Status::Up(up) => Some(up.link.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many harbors are linked now.
    pub fn links_up(&self) -> usize {
        self.peers
            .iter()
            .filter(|p| matches!(p.status, Status::Up(_)))
            .count()
    }

    /// How many times a linked harbor went down.
    pub fn down_events(&self) -> u64 {
        self.down_events
    }

    // ------------------------------------------------------------ routing

    /// A message for `dest` on any harbor. `now` is read only if the message
    /// has to wait for its harbor.
    pub fn send(
        &mut self,
        dest: u32,
        msg: Message,
        now: impl Fn() -> Instant,
        out: &mut Vec<Action<L>>,
    ) {
        let handle = Handle(dest);
        if !handle.is_remote(self.own) {
            out.push(Action::Deliver { dest, msg });
            return;
        }
        let harbor = handle.harbor();
        if msg.ptype == ptype::SYSTEM || msg.ptype == ptype::HARBOR {
            out.push(Action::Log(format!(
                "Can't send a message of type {} to remote :{dest:08x} from :{:08x}",
                msg.ptype, msg.source
            )));
            out.extend(Action::bounce(dest, &msg));
            return;
        }
        if msg.data.len() > MAX_PAYLOAD_LEN {
            out.push(Action::Log(format!(
                "remote message from :{:08x} to :{dest:08x} is too large ({} bytes, the limit is {MAX_PAYLOAD_LEN})",
                msg.source,
                msg.data.len()
            )));
            out.extend(Action::bounce(dest, &msg));
            return;
        }
        let ClusterState {
            own,
            peers,
            pending,
            ..
        } = self;
        let peer = &mut peers[usize::from(harbor)];
        match &peer.status {
            Status::Up(up) => write(*own, pending, up, harbor, dest, msg, out),
            Status::Unknown | Status::Connecting => peer.queue.push_back(Queued {
                dest,
                msg,
                at: now(),
            }),
            Status::Down => {
                out.push(Action::Log(format!(
                    "Drop message to harbor {harbor} from {:x} to {dest:x} (session = {}, msgsz = {})",
                    msg.source,
                    msg.session,
                    msg.data.len()
                )));
                out.extend(Action::bounce(dest, &msg));
            }
        }
    }

    /// A message for a global name (no `.` or `:` prefix).
    pub fn send_name(
        &mut self,
        name: &str,
        msg: Message,
        now: impl Fn() -> Instant,
        out: &mut Vec<Action<L>>,
    ) {
        if let Some(&h) = self.names.get(name) {
            self.send(h, msg, now, out);
        } else if name.is_empty() || name.len() > global_name::MAX_LEN {
            out.push(Action::Log(format!("Invalid global name {name}")));
            out.extend(Action::bounce(0, &msg));
        } else {
            self.name_queues
                .entry(name.to_string())
                .or_default()
                .push(msg);
            self.name_nags
                .entry(name.to_string())
                .or_insert_with(|| Nag::new(Instant::now()));
            self.query_master(name, out);
        }
    }

    /// The link refused a frame written for `(source, session)` to `dest`:
    /// its task is gone and its loss is being reported.
    pub fn write_failed(
        &mut self,
        source: u32,
        dest: u32,
        ptype: u8,
        session: i32,
        out: &mut Vec<Action<L>>,
    ) {
        if source != 0 && is_request(ptype) {
            self.pending.remove(&(source, session));
            out.push(Action::Bounce {
                from: dest,
                to: source,
                session,
            });
        }
    }

    /// A RESPONSE or ERROR for `(caller, session)` came from some harbor.
    pub fn answered(&mut self, caller: u32, session: i32) {
        self.pending.remove(&(caller, session));
    }

    /// Fails the messages that waited [`QUEUE_TIMEOUT`] for a harbor that
    /// never linked.
    pub fn expire_queues(&mut self, now: Instant, out: &mut Vec<Action<L>>) {
        for (id, peer) in self.peers.iter_mut().enumerate() {
            let mut n = 0;
            while let Some(q) = peer.queue.front() {
                if now.saturating_duration_since(q.at) < QUEUE_TIMEOUT {
                    break;
                }
                if let Some(q) = peer.queue.pop_front() {
                    out.extend(Action::bounce(q.dest, &q.msg));
                    n += 1;
                }
            }
            if n > 0 {
                out.push(Action::Log(format!(
                    "Drop {n} messages to harbor {id}: no link after {} s",
                    QUEUE_TIMEOUT.as_secs()
                )));
            }
        }
    }

    // ------------------------------------------------------------ names

    fn query_master(&mut self, name: &str, out: &mut Vec<Action<L>>) {
        if !self.master_connected || self.queried.contains(name) {
            return;
        }
        if let Ok(gn) = GlobalName::new(name) {
            out.push(Action::ToMaster(MasterPacket::Query { name: gn }));
            self.queried.insert(name.to_string());
        }
    }

    /// Binds `name` in the cache, answers its QUERYNAME waiters and sends
    /// the messages that waited for it.
    fn bind(
        &mut self,
        name: &str,
        handle: u32,
        now: impl Fn() -> Instant,
        out: &mut Vec<Action<L>>,
    ) {
        self.names.insert(name.to_string(), handle);
        self.queried.remove(name);
        self.name_nags.remove(name);
        if let Some(ws) = self.name_waiters.remove(name) {
            let data = pack_handle(handle);
            for w in ws {
                out.push(Action::Reply {
                    to: w.source,
                    session: w.session,
                    data: data.clone(),
                });
            }
        }
        if let Some(msgs) = self.name_queues.remove(name) {
            for m in msgs {
                self.send(handle, m, &now, out);
            }
        }
    }

    /// `N name handle` from the master.
    pub fn on_name(
        &mut self,
        name: &str,
        handle: u32,
        now: impl Fn() -> Instant,
        out: &mut Vec<Action<L>>,
    ) {
        let owned = self.owned.get(name).copied();
        if Handle(handle).harbor() == self.own && owned != Some(handle) {
            // A binding of an earlier process with this harbor id: that
            // handle may now be another service. Wait for a fresh one.
            out.push(Action::Log(format!(
                "Ignore stale global name {name} = :{handle:08x} (not registered by this node)"
            )));
            return;
        }
        if let Some(mine) = owned {
            if mine != handle {
                self.owned.remove(name);
                out.push(Action::Log(format!(
                    "Global name {name} is held by :{handle:08x}; the registration of :{mine:08x} was refused by the master"
                )));
            }
        }
        self.bind(name, handle, now, out);
    }

    /// REGISTER from a local service: bind now, tell the master. A name
    /// bound to another handle stays with it while its holder lives
    /// (`local_alive` answers for this node's handles).
    pub fn register(
        &mut self,
        name: &str,
        handle: u32,
        local_alive: impl Fn(u32) -> bool,
        now: impl Fn() -> Instant,
        out: &mut Vec<Action<L>>,
    ) {
        let gn = match GlobalName::new(name) {
            Ok(gn) => gn,
            Err(e) => {
                out.push(Action::Log(format!("Invalid global name {name:?}: {e}")));
                return;
            }
        };
        if handle == 0 {
            out.push(Action::Log(format!(
                "Invalid handle 0 for global name {name}"
            )));
            return;
        }
        if let Some(&old) = self.names.get(name) {
            let old_alive = || {
                if Handle(old).is_remote(self.own) {
                    self.is_up(Handle(old).harbor())
                } else {
                    local_alive(old)
                }
            };
            if old != handle && old_alive() {
                out.push(Action::Log(format!(
                    "Global name {name} is already registered to :{old:08x}; refusing :{handle:08x}"
                )));
                return;
            }
        }
        self.owned.insert(name.to_string(), handle);
        if self.master_connected {
            out.push(Action::ToMaster(MasterPacket::Register {
                name: gn,
                handle: Handle(handle),
            }));
        }
        self.bind(name, handle, now, out);
    }

    /// QUERYNAME for a global name: the handle now, or when it is bound.
    pub fn query_name(&mut self, name: &str, w: Waiter, out: &mut Vec<Action<L>>) {
        if let Some(&h) = self.names.get(name) {
            out.push(Action::Reply {
                to: w.source,
                session: w.session,
                data: pack_handle(h),
            });
        } else {
            self.name_waiters
                .entry(name.to_string())
                .or_default()
                .push(w);
            self.name_nags
                .entry(name.to_string())
                .or_insert_with(|| Nag::new(Instant::now()));
            self.query_master(name, out);
        }
    }

    // ------------------------------------------------------------ waiters

    /// LINK: answered when harbor `id` goes down (at once if it is not linked).
    pub fn link_waiter(&mut self, id: u8, w: Waiter, out: &mut Vec<Action<L>>) {
        if id != self.own && self.is_up(id) {
            self.peer(id).link_waiters.push(w);
        } else {
            out.push(Action::reply_empty(w));
        }
    }

    /// CONNECT: answered when harbor `id` is linked (at once if it is).
    pub fn connect_waiter(&mut self, id: u8, w: Waiter, out: &mut Vec<Action<L>>) {
        if id == self.own || self.is_up(id) {
            out.push(Action::reply_empty(w));
        } else {
            self.peer(id).connect_waiters.push(w);
        }
    }

    /// LINKMASTER: answered when the master connection is lost (at once if
    /// it is not connected).
    pub fn master_waiter(&mut self, w: Waiter, out: &mut Vec<Action<L>>) {
        if self.master_connected {
            self.master_waiters.push(w);
        } else {
            out.push(Action::reply_empty(w));
        }
    }

    // ------------------------------------------------------------ master

    /// The master answered our `H` with `W n` (`first`: the first session of
    /// this process; `peers`: the ids that will connect, from our master):
    /// `R` for every name we own, `Q` for every name still waited for.
    pub fn master_connected(
        &mut self,
        first: bool,
        n: usize,
        peers: Option<&HarborSet>,
        out: &mut Vec<Action<L>>,
    ) {
        match peers {
            Some(set) => {
                // Kept across master sessions: a link that an older harbor
                // reconnects after a master restart is still admitted.
                let own = self.own;
                for id in set.iter().filter(|&id| id != 0 && id != own) {
                    let p = self.peer(id);
                    if p.inbound.is_none() {
                        p.inbound = Some(None);
                    }
                }
                self.welcome = Some(Welcome::Named);
            }
            None => {
                if first || self.welcome.is_none() {
                    self.welcome = Some(Welcome::Counted { left: n });
                }
            }
        }
        for (name, &h) in &self.owned {
            if let Ok(gn) = GlobalName::new(name) {
                out.push(Action::ToMaster(MasterPacket::Register {
                    name: gn,
                    handle: Handle(h),
                }));
            }
        }
        if !first && !self.owned.is_empty() {
            out.push(Action::Log(format!(
                "Re-registered {} global names with the master",
                self.owned.len()
            )));
        }
        self.master_connected = true;
        self.queried.clear();
        let wanted: Vec<String> = self
            .name_queues
            .keys()
            .chain(self.name_waiters.keys())
            .cloned()
            .collect();
        for name in wanted {
            self.query_master(&name, out);
        }
        if first {
            let got = self
                .peers
                .iter()
                .filter(|p| matches!(&p.status, Status::Up(l) if !l.initiated))
                .count();
            if got >= n {
                out.push(Action::Log("Shakehand ready".into()));
            } else {
                self.expect = Some((n, got));
                self.harbor_nag = Some(Nag::new(Instant::now()));
            }
        }
        if self.elected.is_none() {
            self.elected = Some(n == 0);
            let ws = std::mem::take(&mut self.elect_waiters);
            for w in ws {
                self.answer_election(w, out);
            }
        }
    }

    /// The master connection ended: LINKMASTER waiters return.
    pub fn master_lost(&mut self, out: &mut Vec<Action<L>>) {
        self.master_connected = false;
        self.queried.clear();
        out.extend(self.master_waiters.drain(..).map(Action::reply_empty));
    }

    /// ELECTED (asked by bootstrap when no `global_services` key is set):
    /// answered `pack(true)` when this node's first `W` was `W 0` — it was
    /// the only live harbor when it joined, so it hosts DATACENTER and
    /// SERVICE. The master orders handshakes, so of nodes that boot at once
    /// exactly one gets `W 0`; a C skynet master counts the same way.
    pub fn election_waiter(&mut self, w: Waiter, out: &mut Vec<Action<L>>) {
        if self.elected.is_some() {
            self.answer_election(w, out);
        } else {
            self.elect_waiters.push(w);
        }
    }

    fn answer_election(&mut self, w: Waiter, out: &mut Vec<Action<L>>) {
        let elected = self.elected == Some(true);
        out.push(Action::Log(if elected {
            "Global services: this node hosts DATACENTER and SERVICE (no node's config has global_services, and this is the first harbor to join: W 0)".into()
        } else {
            "Global services: hosted by the first harbor that joined (no global_services key here; this node joined after others)".into()
        }));
        out.push(Action::Reply {
            to: w.source,
            session: w.session,
            data: skynet_proto::seri::pack(&[skynet_proto::seri::Value::Boolean(elected)])
                .unwrap_or_default(),
        });
    }

    /// Logs what this node is still waiting for (global names, older
    /// harbors) and how to fix it, each wait on its [`Nag`] schedule.
    /// `address` is this node's announced address, for the hint.
    pub fn report_waits(&mut self, now: Instant, address: &str, out: &mut Vec<Action<L>>) {
        let master = if self.master_connected {
            ""
        } else {
            " (and the master is not connected)"
        };
        let mut names: Vec<(&String, &mut Nag)> = self.name_nags.iter_mut().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, nag) in names {
            let Some(waited) = nag.due(now) else { continue };
            let hint = if name == "SERVICE" || name == "DATACENTER" {
                "no node hosts the global services (DATACENTER, SERVICE). Set global_services = true in one node's config, or run the master inside a node (standalone), or set the key on no node: then the first harbor to join hosts them"
            } else {
                "no service has registered it (skynet.register or harbor.globalname on some node)"
            };
            out.push(Action::Log(format!(
                "Waiting {} s for global name {name}{master}: {hint}",
                waited.as_secs()
            )));
        }
        if let (Some((want, got)), Some(nag)) = (self.expect, self.harbor_nag.as_mut()) {
            if let Some(waited) = nag.due(now) {
                let missing: Vec<String> = self
                    .peers
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.inbound.is_some() && !matches!(p.status, Status::Up(_)))
                    .map(|(id, p)| match &p.inbound {
                        Some(Some(a)) => format!("{id} ({a})"),
                        _ => id.to_string(),
                    })
                    .collect();
                let missing = if missing.is_empty() {
                    String::new()
                } else {
                    format!(", not yet: {}", missing.join(", "))
                };
                out.push(Action::Log(format!(
                    "Waiting {} s for older harbors: {got} of {want} connected{missing}; they connect to this node's address {address}: check that they can reach it and that it is this machine's",
                    waited.as_secs()
                )));
            }
        }
    }

    /// `P id addr` from our master: harbor `id`, named in `W`, listens at `addr`.
    pub fn on_peer(&mut self, id: u8, address: String, out: &mut Vec<Action<L>>) {
        if id == 0 || id == self.own {
            out.push(Action::Log(format!(
                "Ignore peer announcement of harbor {id} ({address})"
            )));
            return;
        }
        self.peer(id).inbound = Some(Some(address));
    }

    /// Whether a connection that claims to be harbor `id` may become its link
    /// (see the module doc). Accepting under a C skynet master's count uses
    /// up one place.
    pub fn admit(&mut self, id: u8) -> Admit {
        if id == 0 || id == self.own {
            return Admit::Refuse(format!("harbor id {id} is not another harbor's"));
        }
        if self.is_up(id) {
            return Admit::Refuse(format!("harbor {id} is already linked"));
        }
        let Some(welcome) = self.welcome else {
            return Admit::Wait("the master has not answered our handshake yet");
        };
        let peer = &mut self.peers[usize::from(id)];
        match (&peer.inbound, welcome) {
            (Some(Some(address)), _) => Admit::Accept {
                address: Some(address.clone()),
            },
            (Some(None), Welcome::Named) => Admit::Wait("its address (P) has not come yet"),
            (Some(None), Welcome::Counted { .. }) => Admit::Accept { address: None },
            (None, Welcome::Named) => {
                Admit::Refuse(format!("the master did not announce harbor {id} to us"))
            }
            (None, Welcome::Counted { left }) => {
                if left == 0 {
                    return Admit::Refuse(format!(
                        "the master announced no more harbors (harbor {id} is not one of those that connected)"
                    ));
                }
                peer.inbound = Some(None);
                self.welcome = Some(Welcome::Counted { left: left - 1 });
                Admit::Accept { address: None }
            }
        }
    }

    /// `C id addr`: connect to that (newer) harbor.
    pub fn on_connect(&mut self, id: u8, address: String, out: &mut Vec<Action<L>>) {
        if id == 0 || id == self.own {
            out.push(Action::Log(format!(
                "Ignore connect request to harbor {id} ({address})"
            )));
            return;
        }
        let peer = self.peer(id);
        let same = peer.address.as_deref() == Some(address.as_str());
        peer.address = Some(address.clone());
        match peer.status {
            Status::Up(_) => return,
            Status::Connecting if same => return,
            _ => {}
        }
        peer.status = Status::Connecting;
        peer.attempt += 1;
        out.push(Action::Dial {
            harbor: id,
            address,
            attempt: peer.attempt,
            reconnect: false,
        });
    }

    /// True while a connector started for `attempt` is still wanted.
    pub fn attempt_current(&self, id: u8, attempt: u64) -> bool {
        self.peers[usize::from(id)].attempt == attempt
    }

    /// A connector for a `C` gave up.
    pub fn connect_failed(&mut self, id: u8, attempt: u64, reason: &str, out: &mut Vec<Action<L>>) {
        if self.attempt_current(id, attempt) {
            self.down(id, reason, out);
        }
    }

    /// `D id` from the master.
    pub fn on_down(&mut self, id: u8, out: &mut Vec<Action<L>>) {
        if id == 0 || id == self.own {
            return;
        }
        let peer = self.peer(id);
        // After a rejoin we are the older one: it no longer connects to us.
        peer.inbound = None;
        if matches!(peer.status, Status::Down) {
            // Stop any reconnection attempt all the same.
            peer.attempt += 1;
            return;
        }
        self.down(id, "the master reports it down", out);
    }

    /// Marks harbor `id` down: its link is closed, queued messages and
    /// outstanding calls fail with ERROR, LINK waiters return.
    fn down(&mut self, id: u8, reason: &str, out: &mut Vec<Action<L>>) {
        let peer = &mut self.peers[usize::from(id)];
        let old = std::mem::replace(&mut peer.status, Status::Down);
        peer.attempt += 1;
        if let Status::Up(up) = old {
            self.down_events += 1;
            out.push(Action::CloseLink(up.link));
        }
        let queued = peer.queue.len();
        for q in peer.queue.drain(..) {
            out.extend(Action::bounce(q.dest, &q.msg));
        }
        out.extend(peer.link_waiters.drain(..).map(Action::reply_empty));
        let failed: Vec<(u32, i32)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.harbor == id)
            .map(|(k, _)| *k)
            .collect();
        for key in &failed {
            if let Some(p) = self.pending.remove(key) {
                out.push(Action::Bounce {
                    from: p.dest,
                    to: key.0,
                    session: key.1,
                });
            }
        }
        out.push(Action::Log(format!(
            "Harbor {id} down: {reason} ({} pending calls failed, {queued} queued messages dropped)",
            failed.len(),
        )));
    }

    // ------------------------------------------------------------ links

    /// A handshake with harbor `id` succeeded: `link` (numbered `link_id`)
    /// becomes its link and its queue is flushed into it. `initiated`: we
    /// connected, for the connector of `attempt`; `peer_addr` is for the log.
    /// False when the connection is not wanted any more (a stale connector):
    /// nothing changed, and the caller drops it.
    #[allow(clippy::too_many_arguments)]
    pub fn link_up(
        &mut self,
        id: u8,
        link: L,
        link_id: u64,
        initiated: bool,
        attempt: Option<u64>,
        peer_addr: &str,
        out: &mut Vec<Action<L>>,
    ) -> bool {
        if attempt.is_some_and(|a| !self.attempt_current(id, a)) {
            return false;
        }
        if self.is_up(id) {
            if !initiated {
                // Admitted while another connection for it got there first.
                out.push(Action::Log(format!(
                    "Refuse harbor link from {peer_addr} (claims harbor {id}): harbor {id} is already linked"
                )));
                return false;
            }
            self.down(id, "replaced by a new connection", out);
        }
        let up = UpLink {
            link,
            id: link_id,
            initiated,
        };
        let ClusterState {
            own,
            peers,
            pending,
            expect,
            ..
        } = self;
        let peer = &mut peers[usize::from(id)];
        peer.attempt += 1;
        let flushed = peer.queue.len();
        for q in peer.queue.drain(..) {
            write(*own, pending, &up, id, q.dest, q.msg, out);
        }
        peer.status = Status::Up(up);
        out.extend(peer.connect_waiters.drain(..).map(Action::reply_empty));
        if initiated {
            out.push(Action::Log(format!(
                "Connect to harbor {id} ({})",
                peer.address.as_deref().unwrap_or(peer_addr)
            )));
        } else {
            out.push(Action::Log(format!("Harbor {id} connected ({peer_addr})")));
        }
        if flushed > 0 {
            out.push(Action::Log(format!(
                "Sent {flushed} messages queued for harbor {id}"
            )));
        }
        if !initiated {
            if let Some((want, got)) = expect.as_mut() {
                *got += 1;
                if *got >= *want {
                    *expect = None;
                    self.harbor_nag = None;
                    out.push(Action::Log("Shakehand ready".into()));
                }
            }
        }
        true
    }

    /// The link `link_id` of harbor `id` ended by itself. `protocol`: the
    /// peer sent bytes that break the protocol (no reconnection then).
    pub fn link_lost(
        &mut self,
        id: u8,
        link_id: u64,
        reason: &str,
        protocol: bool,
        out: &mut Vec<Action<L>>,
    ) {
        let initiated = match &self.peers[usize::from(id)].status {
            Status::Up(up) if up.id == link_id => up.initiated,
            _ => return,
        };
        self.down(id, reason, out);
        let peer = &self.peers[usize::from(id)];
        if initiated && !protocol {
            if let Some(address) = peer.address.clone() {
                out.push(Action::Dial {
                    harbor: id,
                    address,
                    attempt: peer.attempt,
                    reconnect: true,
                });
            }
        }
    }
}

/// Writes `msg` to the link of harbor `harbor`, tracking it when it is a
/// call from a local service (so that it fails if the harbor goes down).
fn write<L: Clone>(
    own: u8,
    pending: &mut HashMap<(u32, i32), Pending>,
    up: &UpLink<L>,
    harbor: u8,
    dest: u32,
    msg: Message,
    out: &mut Vec<Action<L>>,
) {
    let Message {
        source,
        session,
        ptype: t,
        data,
    } = msg;
    if session != 0 && is_request(t) && source != 0 && !Handle(source).is_remote(own) {
        pending.insert((source, session), Pending { harbor, dest });
    }
    out.push(Action::Write {
        link: up.link.clone(),
        frame: HarborFrame {
            source,
            destination: dest,
            ptype: t,
            session,
            payload: data,
        },
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Links are numbers here.
    type A = Action<u64>;
    const OWN: u8 = 1;
    const CALLER: u32 = 0x0100_0010;
    const ECHO2: u32 = 0x0200_0007;

    fn t0() -> Instant {
        Instant::now()
    }

    fn call(dest: u32, session: i32) -> (u32, Message) {
        (
            dest,
            Message::new(CALLER, session, ptype::LUA, b"ping".to_vec()),
        )
    }

    /// The actions of one event (whatever the event returns).
    fn run<R>(f: impl FnOnce(&mut Vec<A>) -> R) -> Vec<A> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    fn bounce(from: u32, session: i32) -> A {
        Action::Bounce {
            from,
            to: CALLER,
            session,
        }
    }

    fn logs(actions: &[A]) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Log(l) => Some(l.as_str()),
                _ => None,
            })
            .collect()
    }

    fn frames(actions: &[A]) -> Vec<(u64, u32, i32)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Write { link, frame } => Some((*link, frame.destination, frame.session)),
                _ => None,
            })
            .collect()
    }

    fn name(s: &str) -> GlobalName {
        GlobalName::new(s).unwrap()
    }

    /// A state whose master is connected and whose harbor 2 is up on link 7
    /// (we connected to it after `C`).
    fn linked() -> ClusterState<u64> {
        let mut s = ClusterState::new(OWN);
        run(|o| s.master_connected(true, 0, None, o));
        let dial = run(|o| s.on_connect(2, "127.0.0.1:2527".into(), o));
        let Action::Dial { attempt, .. } = dial[0] else {
            panic!("{dial:?}")
        };
        assert!(
            run(|o| assert!(s.link_up(2, 7, 7, true, Some(attempt), "x", o)))
                .iter()
                .all(|a| matches!(a, Action::Log(_)))
        );
        s
    }

    #[test]
    fn local_destinations_are_delivered() {
        let mut s = ClusterState::<u64>::new(OWN);
        for dest in [0x0100_0003, 0x0000_0003] {
            let (d, m) = call(dest, 1);
            let out = run(|o| s.send(d, m, t0, o));
            assert!(matches!(&out[..], [Action::Deliver { dest: x, .. }] if *x == dest));
        }
        // An undeliverable request is answered, a reply or a system message is not.
        let m = Message::new(CALLER, 4, ptype::LUA, Vec::new());
        assert_eq!(A::bounce(9, &m), Some(bounce(9, 4)));
        let m = Message::new(CALLER, 4, ptype::RESPONSE, Vec::new());
        assert_eq!(A::bounce(9, &m), None);
        let m = Message::new(0, 4, ptype::LUA, Vec::new());
        assert_eq!(A::bounce(9, &m), None);
        let m = Message::new(CALLER, 4, ptype::MULTICAST, Vec::new());
        assert_eq!(A::bounce(9, &m), None);
    }

    #[test]
    fn join_queues_until_the_link_is_up_then_flushes_in_order() {
        let mut s = ClusterState::<u64>::new(OWN);
        let t = t0();
        // Harbor 2 is not known yet: messages wait.
        for session in 1..=3 {
            let (d, m) = call(ECHO2, session);
            assert!(run(|o| s.send(d, m, || t, o)).is_empty());
        }
        let waiter = Waiter {
            source: CALLER,
            session: 50,
        };
        assert!(run(|o| s.connect_waiter(2, waiter, o)).is_empty());
        let dial = run(|o| s.on_connect(2, "127.0.0.1:2527".into(), o));
        assert_eq!(
            dial,
            vec![Action::Dial {
                harbor: 2,
                address: "127.0.0.1:2527".into(),
                attempt: 1,
                reconnect: false
            }]
        );
        // The same `C` again while connecting starts nothing new.
        assert!(run(|o| s.on_connect(2, "127.0.0.1:2527".into(), o)).is_empty());
        assert!(s.attempt_current(2, 1));
        let up = run(|o| assert!(s.link_up(2, 7, 7, true, Some(1), "x", o)));
        assert_eq!(
            frames(&up),
            vec![(7, ECHO2, 1), (7, ECHO2, 2), (7, ECHO2, 3)]
        );
        assert!(up.contains(&Action::Reply {
            to: CALLER,
            session: 50,
            data: Vec::new()
        }));
        assert_eq!(
            logs(&up),
            vec![
                "Connect to harbor 2 (127.0.0.1:2527)",
                "Sent 3 messages queued for harbor 2"
            ]
        );
        assert_eq!(s.pending_calls(), 3);
        assert!(!s.attempt_current(2, 1), "the connector is done");
        // Once up, frames go straight to the link; CONNECT returns at once.
        let (d, m) = call(ECHO2, 4);
        assert_eq!(frames(&run(|o| s.send(d, m, t0, o))), vec![(7, ECHO2, 4)]);
        assert_eq!(run(|o| s.connect_waiter(2, waiter, o)).len(), 1);
    }

    #[test]
    fn frame_fields_and_which_calls_are_tracked() {
        let mut s = linked();
        let out = run(|o| {
            s.send(
                ECHO2,
                Message::new(CALLER, 9, ptype::LUA, b"abc".to_vec()),
                t0,
                o,
            )
        });
        assert_eq!(
            out,
            vec![Action::Write {
                link: 7,
                frame: HarborFrame {
                    source: CALLER,
                    destination: ECHO2,
                    ptype: ptype::LUA,
                    session: 9,
                    payload: b"abc".to_vec(),
                }
            }]
        );
        assert_eq!(s.pending_calls(), 1);
        // Not tracked: sends (session 0), replies, multicast, system sources,
        // and requests forwarded for another harbor's service.
        for (source, session, t) in [
            (CALLER, 0, ptype::LUA),
            (CALLER, 3, ptype::RESPONSE),
            (CALLER, 3, ptype::ERROR),
            (CALLER, 3, ptype::MULTICAST),
            (0, 3, ptype::LUA),
            (0x0300_0001, 3, ptype::LUA),
        ] {
            let out = run(|o| s.send(ECHO2, Message::new(source, session, t, Vec::new()), t0, o));
            assert_eq!(frames(&out).len(), 1);
        }
        assert_eq!(s.pending_calls(), 1);
        s.answered(CALLER, 9);
        assert_eq!(s.pending_calls(), 0);
    }

    #[test]
    fn refused_messages_fail_at_once() {
        let mut s = linked();
        let m = Message::new(CALLER, 5, ptype::SYSTEM, Vec::new());
        let out = run(|o| s.send(ECHO2, m, t0, o));
        assert_eq!(
            out,
            vec![
                Action::Log(
                    "Can't send a message of type 4 to remote :02000007 from :01000010".into()
                ),
                bounce(ECHO2, 5)
            ]
        );
        let m = Message::new(CALLER, 6, ptype::LUA, vec![0; MAX_PAYLOAD_LEN + 1]);
        let out = run(|o| s.send(ECHO2, m, t0, o));
        assert!(logs(&out)[0].contains("is too large (16777204 bytes, the limit is 16777203)"));
        assert_eq!(out[1], bounce(ECHO2, 6));
        let m = Message::new(CALLER, 7, ptype::LUA, vec![0; MAX_PAYLOAD_LEN]);
        assert_eq!(frames(&run(|o| s.send(ECHO2, m, t0, o))).len(), 1);
    }

    #[test]
    fn link_down_fails_pending_calls_queued_messages_and_link_waiters() {
        let mut s = linked();
        for session in [1, 2] {
            let (d, m) = call(ECHO2, session);
            run(|o| s.send(d, m, t0, o));
        }
        let (d, m) = call(0x0300_0001, 3);
        run(|o| s.send(d, m, t0, o)); // queued for harbor 3
        let w = Waiter {
            source: CALLER,
            session: 60,
        };
        assert!(run(|o| s.link_waiter(2, w, o)).is_empty());
        assert_eq!((s.links_up(), s.down_events()), (1, 0));
        let out = run(|o| s.link_lost(2, 7, "connection closed by the peer", false, o));
        assert_eq!((s.links_up(), s.down_events()), (0, 1));
        assert_eq!(out[0], Action::CloseLink(7));
        let mut bounces: Vec<_> = out
            .iter()
            .filter(|a| matches!(a, Action::Bounce { .. }))
            .collect();
        bounces.sort_by_key(|a| format!("{a:?}"));
        assert_eq!(bounces, vec![&bounce(ECHO2, 1), &bounce(ECHO2, 2)]);
        assert!(out.contains(&Action::Reply {
            to: CALLER,
            session: 60,
            data: Vec::new()
        }));
        assert!(logs(&out).contains(
            &"Harbor 2 down: connection closed by the peer (2 pending calls failed, 0 queued messages dropped)"
        ));
        // We had connected: we dial again.
        assert!(matches!(
            out.last(),
            Some(Action::Dial {
                harbor: 2,
                reconnect: true,
                ..
            })
        ));
        assert_eq!(s.pending_calls(), 0);
        // Down: later sends fail at once; LINK returns at once.
        let (d, m) = call(ECHO2, 4);
        let out = run(|o| s.send(d, m, t0, o));
        assert_eq!(
            out,
            vec![
                Action::Log(
                    "Drop message to harbor 2 from 1000010 to 2000007 (session = 4, msgsz = 4)"
                        .into()
                ),
                bounce(ECHO2, 4)
            ]
        );
        assert_eq!(run(|o| s.link_waiter(2, w, o)).len(), 1);
        // A report from the old link after the fact changes nothing.
        assert!(run(|o| s.link_lost(2, 7, "late", false, o)).is_empty());
    }

    #[test]
    fn a_protocol_break_or_an_accepted_link_is_not_redialled() {
        let mut s = linked();
        let out = run(|o| s.link_lost(2, 7, "Malformed frame", true, o));
        assert!(!out.iter().any(|a| matches!(a, Action::Dial { .. })));
        // Harbor 3 connected to us: when its link ends, we wait for it.
        assert!(
            run(|o| assert!(s.link_up(3, 8, 8, false, None, "1.2.3.4:5", o)))
                .contains(&Action::Log("Harbor 3 connected (1.2.3.4:5)".into()))
        );
        let out = run(|o| s.link_lost(3, 8, "reset", false, o));
        assert_eq!(out[0], Action::CloseLink(8));
        assert!(!out.iter().any(|a| matches!(a, Action::Dial { .. })));
    }

    #[test]
    fn master_down_notice_stops_reconnection() {
        let mut s = linked();
        let out = run(|o| s.link_lost(2, 7, "reset", false, o));
        let Some(Action::Dial { attempt, .. }) = out.last() else {
            panic!("{out:?}")
        };
        let attempt = *attempt;
        assert!(s.attempt_current(2, attempt));
        assert!(run(|o| s.on_down(2, o)).is_empty(), "already down");
        assert!(!s.attempt_current(2, attempt), "the redialler gives up");
        // A stale connector's connection is refused, and nothing changes.
        assert!(run(|o| assert!(!s.link_up(2, 9, 9, true, Some(attempt), "x", o))).is_empty());
        // D for an up harbor closes its link; D for us or for 0 is ignored.
        let mut s = linked();
        let out = run(|o| s.on_down(2, o));
        assert_eq!(out[0], Action::CloseLink(7));
        assert!(logs(&out)[0].starts_with("Harbor 2 down: the master reports it down"));
        assert!(run(|o| s.on_down(OWN, o)).is_empty());
        assert!(run(|o| s.on_down(0, o)).is_empty());
    }

    #[test]
    fn connect_failure_marks_the_harbor_down() {
        let mut s = ClusterState::<u64>::new(OWN);
        let (d, m) = call(ECHO2, 1);
        run(|o| s.send(d, m, t0, o));
        run(|o| s.on_connect(2, "a:1".into(), o));
        // A failure of an older attempt is ignored.
        assert!(run(|o| s.connect_failed(2, 0, "old", o)).is_empty());
        let out = run(|o| s.connect_failed(2, 1, "Can't connect to harbor 2 (a:1): refused", o));
        assert_eq!(out[0], bounce(ECHO2, 1));
        assert_eq!(
            logs(&out),
            vec!["Harbor 2 down: Can't connect to harbor 2 (a:1): refused (0 pending calls failed, 1 queued messages dropped)"]
        );
        // Our own id and 0 are never dialled.
        let out = run(|o| s.on_connect(OWN, "b:1".into(), o));
        assert_eq!(logs(&out), vec!["Ignore connect request to harbor 1 (b:1)"]);
    }

    #[test]
    fn rejoin_after_down_and_duplicate_link() {
        let mut s = linked();
        run(|o| s.on_down(2, o));
        // The harbor rejoins: `C` again, a new link; later sends flow.
        let dial = run(|o| s.on_connect(2, "127.0.0.1:2527".into(), o));
        let Action::Dial { attempt, .. } = dial[0] else {
            panic!("{dial:?}")
        };
        assert!(
            run(|o| assert!(s.link_up(2, 11, 11, true, Some(attempt), "x", o)))
                .iter()
                .all(|a| matches!(a, Action::Log(_)))
        );
        let (d, m) = call(ECHO2, 1);
        assert_eq!(frames(&run(|o| s.send(d, m, t0, o))), vec![(11, ECHO2, 1)]);
        // A second, accepted connection for a harbor that is up is refused:
        // the link stays.
        let out = run(|o| assert!(!s.link_up(2, 12, 12, false, None, "y", o)));
        assert_eq!(
            logs(&out),
            vec!["Refuse harbor link from y (claims harbor 2): harbor 2 is already linked"]
        );
        let (d, m) = call(ECHO2, 2);
        assert_eq!(frames(&run(|o| s.send(d, m, t0, o))), vec![(11, ECHO2, 2)]);
    }

    #[test]
    fn queue_expires_after_its_timeout() {
        let mut s = ClusterState::<u64>::new(OWN);
        let t = t0();
        let (d, m) = call(ECHO2, 1);
        run(|o| s.send(d, m, || t, o));
        // A reply expires without an answer.
        run(|o| {
            s.send(
                ECHO2,
                Message::new(CALLER, 5, ptype::RESPONSE, Vec::new()),
                || t,
                o,
            )
        });
        let (d, m) = call(ECHO2, 2);
        run(|o| s.send(d, m, || t + Duration::from_secs(5), o));
        assert!(
            run(|o| s.expire_queues(t + QUEUE_TIMEOUT - Duration::from_millis(1), o)).is_empty()
        );
        let out = run(|o| s.expire_queues(t + QUEUE_TIMEOUT, o));
        assert_eq!(
            out,
            vec![
                bounce(ECHO2, 1),
                Action::Log("Drop 2 messages to harbor 2: no link after 10 s".into())
            ]
        );
        let out = run(|o| s.expire_queues(t + QUEUE_TIMEOUT + Duration::from_secs(5), o));
        assert_eq!(out[0], bounce(ECHO2, 2));
        assert!(run(|o| s.expire_queues(t + Duration::from_secs(60), o)).is_empty());
    }

    #[test]
    fn names_resolve_queue_and_query_the_master_once() {
        let mut s = ClusterState::<u64>::new(OWN);
        // The master is not connected: nothing is asked yet.
        run(|o| s.master_connected(true, 0, None, o));
        run(|o| s.master_lost(o));
        let m = Message::new(CALLER, 1, ptype::LUA, Vec::new());
        assert!(run(|o| s.send_name("ECHO", m, t0, o)).is_empty());
        let w = Waiter {
            source: CALLER,
            session: 70,
        };
        assert!(run(|o| s.query_name("ECHO", w, o)).is_empty());
        // Connected: one `Q` per name still wanted.
        let out = run(|o| s.master_connected(false, 0, None, o));
        assert_eq!(
            out,
            vec![Action::ToMaster(MasterPacket::Query { name: name("ECHO") })]
        );
        let m = Message::new(CALLER, 2, ptype::LUA, Vec::new());
        assert!(
            run(|o| s.send_name("ECHO", m, t0, o)).is_empty(),
            "asked already"
        );
        // `N`: waiters are answered, queued messages go (here: queued for
        // harbor 2, which is not linked).
        let out = run(|o| s.on_name("ECHO", ECHO2, t0, o));
        assert_eq!(
            out,
            vec![Action::Reply {
                to: CALLER,
                session: 70,
                data: pack_handle(ECHO2)
            }]
        );
        let out = run(|o| s.query_name("ECHO", w, o));
        assert_eq!(out.len(), 1, "known now");
        // A name resolved to a local handle is delivered.
        run(|o| s.on_name("LOCAL", 0x0000_0042, t0, o));
        let m = Message::new(CALLER, 3, ptype::LUA, Vec::new());
        assert!(matches!(
            &run(|o| s.send_name("LOCAL", m, t0, o))[..],
            [Action::Deliver {
                dest: 0x0000_0042,
                ..
            }]
        ));
        // Invalid names fail at once.
        let m = Message::new(CALLER, 4, ptype::LUA, Vec::new());
        let out = run(|o| s.send_name("SIXTEEN_LETTERS_", m, t0, o));
        assert_eq!(
            out,
            vec![
                Action::Log("Invalid global name SIXTEEN_LETTERS_".into()),
                bounce(0, 4)
            ]
        );
    }

    #[test]
    fn names_of_this_harbor_must_be_our_own() {
        let mut s = ClusterState::<u64>::new(OWN);
        let out = run(|o| s.on_name("OLD", 0x0100_0005, t0, o));
        assert_eq!(
            logs(&out),
            vec!["Ignore stale global name OLD = :01000005 (not registered by this node)"]
        );
        let w = Waiter {
            source: CALLER,
            session: 1,
        };
        assert!(run(|o| s.query_name("OLD", w, o)).is_empty(), "not bound");
        run(|o| s.register("OLD", 0x0100_0005, |_| true, t0, o));
        assert!(run(|o| s.on_name("OLD", 0x0100_0005, t0, o)).is_empty());
    }

    #[test]
    fn register_binds_and_is_repeated_to_every_new_master() {
        let mut s = ClusterState::<u64>::new(OWN);
        let w = Waiter {
            source: CALLER,
            session: 1,
        };
        run(|o| s.query_name("SVC", w, o));
        // Before the master: bound and answered locally, sent later.
        let out = run(|o| s.register("SVC", 0x0100_0020, |_| true, t0, o));
        assert_eq!(
            out,
            vec![Action::Reply {
                to: CALLER,
                session: 1,
                data: pack_handle(0x0100_0020)
            }]
        );
        let r = || {
            Action::ToMaster(MasterPacket::Register {
                name: name("SVC"),
                handle: Handle(0x0100_0020),
            })
        };
        assert_eq!(
            run(|o| s.master_connected(true, 0, None, o)),
            vec![r(), Action::Log("Shakehand ready".into())]
        );
        // Connected: sent at once.
        let out = run(|o| s.register("OTHER", 0x0100_0021, |_| true, t0, o));
        assert!(matches!(
            &out[..],
            [Action::ToMaster(MasterPacket::Register { .. })]
        ));
        // After a master restart, every owned name again.
        run(|o| s.master_lost(o));
        let out = run(|o| s.master_connected(false, 0, None, o));
        assert_eq!(out.len(), 3);
        assert!(out.contains(&r()));
        assert_eq!(
            out[2],
            Action::Log("Re-registered 2 global names with the master".into())
        );
        // A live holder keeps its name; a dead one loses it.
        let out = run(|o| s.register("SVC", 0x0100_0030, |_| true, t0, o));
        assert_eq!(
            logs(&out),
            vec!["Global name SVC is already registered to :01000020; refusing :01000030"]
        );
        let out = run(|o| s.register("SVC", 0x0100_0030, |_| false, t0, o));
        assert!(matches!(
            &out[..],
            [Action::ToMaster(MasterPacket::Register {
                handle: Handle(0x0100_0030),
                ..
            })]
        ));
        // The master gives the name to another harbor: we stop owning it.
        let out = run(|o| s.on_name("SVC", ECHO2, t0, o));
        assert_eq!(
            logs(&out),
            vec!["Global name SVC is held by :02000007; the registration of :01000030 was refused by the master"]
        );
        // Bad registrations are logged and ignored.
        let out = run(|o| s.register(".local", 5, |_| true, t0, o));
        assert_eq!(
            logs(&out),
            vec!["Invalid global name \".local\": \".local\" is a local name, not a global one"]
        );
        let out = run(|o| s.register("ZERO", 0, |_| true, t0, o));
        assert_eq!(logs(&out), vec!["Invalid handle 0 for global name ZERO"]);
    }

    #[test]
    fn a_name_held_on_a_linked_harbor_stays_there() {
        let mut s = linked();
        run(|o| s.on_name("ECHO", ECHO2, t0, o));
        let out = run(|o| s.register("ECHO", 0x0100_0020, |_| false, t0, o));
        assert_eq!(logs(&out).len(), 1, "harbor 2 is up: refused");
        run(|o| s.on_down(2, o));
        let out = run(|o| s.register("ECHO", 0x0100_0020, |_| false, t0, o));
        assert!(logs(&out).is_empty(), "harbor 2 is down: taken over");
    }

    #[test]
    fn master_lost_answers_linkmaster_and_asks_again_later() {
        let mut s = ClusterState::<u64>::new(OWN);
        let w = Waiter {
            source: CALLER,
            session: 80,
        };
        assert_eq!(
            run(|o| s.master_waiter(w, o)).len(),
            1,
            "not connected: at once"
        );
        run(|o| s.master_connected(true, 0, None, o));
        assert!(run(|o| s.master_waiter(w, o)).is_empty());
        let q = run(|o| s.query_name("LATER", w, o));
        assert_eq!(q.len(), 1, "Q sent");
        let out = run(|o| s.master_lost(o));
        assert_eq!(
            out,
            vec![Action::Reply {
                to: CALLER,
                session: 80,
                data: Vec::new()
            }]
        );
        // The query was lost with the master: asked again on the next one.
        assert_eq!(run(|o| s.master_connected(false, 0, None, o)), q);
    }

    #[test]
    fn shakehand_ready_when_the_announced_harbors_connected() {
        let mut s = ClusterState::<u64>::new(5);
        // Harbor 2 connected before the master's `W 2` arrived.
        run(|o| s.link_up(2, 1, 1, false, None, "a", o));
        assert!(logs(&run(|o| s.master_connected(true, 3, None, o))).is_empty());
        assert!(
            !logs(&run(|o| s.link_up(3, 2, 2, false, None, "b", o))).contains(&"Shakehand ready")
        );
        // A link we initiated does not count; the second accepted one does.
        run(|o| s.on_connect(4, "c:1".into(), o));
        assert!(
            !logs(&run(|o| s.link_up(4, 3, 3, true, Some(1), "c", o))).contains(&"Shakehand ready")
        );
        let out = run(|o| s.link_up(6, 4, 4, false, None, "d", o));
        assert!(logs(&out).contains(&"Shakehand ready"));
    }

    #[test]
    fn write_failure_fails_the_call_at_once() {
        let mut s = linked();
        let (d, m) = call(ECHO2, 3);
        run(|o| s.send(d, m, t0, o));
        assert_eq!(s.pending_calls(), 1);
        let out = run(|o| s.write_failed(CALLER, ECHO2, ptype::LUA, 3, o));
        assert_eq!(out, vec![bounce(ECHO2, 3)]);
        assert_eq!(s.pending_calls(), 0);
        assert!(run(|o| s.write_failed(CALLER, ECHO2, ptype::RESPONSE, 3, o)).is_empty());
    }

    #[test]
    fn link_and_connect_waiters_for_our_own_id_return_at_once() {
        let mut s = ClusterState::<u64>::new(OWN);
        let w = Waiter {
            source: CALLER,
            session: 1,
        };
        assert_eq!(run(|o| s.link_waiter(OWN, w, o)).len(), 1);
        assert_eq!(run(|o| s.connect_waiter(OWN, w, o)).len(), 1);
        assert_eq!(run(|o| s.link_waiter(9, w, o)).len(), 1, "not linked");
        assert!(run(|o| s.connect_waiter(9, w, o)).is_empty());
    }

    #[test]
    fn our_master_names_who_may_connect() {
        let mut s = ClusterState::<u64>::new(5);
        // Before the master's `W`: wait.
        assert!(matches!(s.admit(2), Admit::Wait(_)));
        let set: HarborSet = [2, 3].into_iter().collect();
        run(|o| s.master_connected(true, 2, Some(&set), o));
        // Named, address not known yet: wait; once `P` came: accept, with it.
        assert!(matches!(s.admit(2), Admit::Wait(_)));
        run(|o| s.on_peer(2, "10.0.0.2:2526".into(), o));
        assert_eq!(
            s.admit(2),
            Admit::Accept {
                address: Some("10.0.0.2:2526".into())
            }
        );
        // Not named, ours, 0: refused.
        for (id, why) in [
            (4, "the master did not announce harbor 4 to us"),
            (5, "harbor id 5 is not another harbor's"),
            (0, "harbor id 0 is not another harbor's"),
        ] {
            assert_eq!(s.admit(id), Admit::Refuse(why.into()));
        }
        // Linked: refused.
        assert!(!run(|o| assert!(s.link_up(2, 1, 1, false, None, "x", o))).is_empty());
        assert_eq!(
            s.admit(2),
            Admit::Refuse("harbor 2 is already linked".into())
        );
        // The link ends by itself: it may reconnect (it was the connector).
        run(|o| s.link_lost(2, 1, "reset", false, o));
        assert!(matches!(s.admit(2), Admit::Accept { .. }));
        // A new master session adds to the set; it does not forget.
        run(|o| s.master_lost(o));
        run(|o| s.master_connected(false, 0, Some(&HarborSet::new()), o));
        assert!(matches!(s.admit(2), Admit::Accept { .. }));
        // `D 2`: harbor 2 is gone; if it rejoins, we connect to it.
        run(|o| s.on_down(2, o));
        assert_eq!(
            s.admit(2),
            Admit::Refuse("the master did not announce harbor 2 to us".into())
        );
    }

    #[test]
    fn a_c_master_only_bounds_the_number_of_links() {
        let mut s = ClusterState::<u64>::new(5);
        run(|o| s.master_connected(true, 2, None, o));
        assert_eq!(s.admit(2), Admit::Accept { address: None });
        assert_eq!(s.admit(7), Admit::Accept { address: None });
        assert!(matches!(s.admit(9), Admit::Refuse(_)), "only 2 announced");
        // Those that came may come again.
        assert_eq!(s.admit(7), Admit::Accept { address: None });
        run(|o| s.on_down(7, o));
        assert!(matches!(s.admit(7), Admit::Refuse(_)));
    }

    #[test]
    fn nag_schedule_is_each_second_then_backs_off() {
        let t = t0();
        let mut n = Nag::new(t);
        let at = |s: u64| t + Duration::from_secs(s);
        let fired: Vec<u64> = (0..120).filter(|&s| n.due(at(s)).is_some()).collect();
        assert_eq!(fired, vec![1, 2, 3, 4, 5, 7, 11, 19, 35, 65, 95]);
    }

    #[test]
    fn waits_are_reported_with_a_fix() {
        let mut s = ClusterState::<u64>::new(3);
        let w = Waiter {
            source: CALLER,
            session: 9,
        };
        run(|o| s.query_name("SERVICE", w, o));
        let set: HarborSet = [1, 2].into_iter().collect();
        run(|o| s.master_connected(true, 2, Some(&set), o));
        run(|o| s.on_peer(2, "10.0.0.2:2526".into(), o));
        run(|o| assert!(s.link_up(1, 1, 1, false, None, "x", o)));
        let later = Instant::now() + Duration::from_secs(2);
        let out = run(|o| s.report_waits(later, "10.0.0.3:2526", o));
        let l = logs(&out);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(l[0]
            .starts_with("Waiting 2 s for global name SERVICE: no node hosts the global services"));
        assert!(l[0].contains("global_services = true"));
        assert!(l[1].starts_with("Waiting 2 s for older harbors: 1 of 2 connected, not yet: 2 (10.0.0.2:2526); they connect to this node's address 10.0.0.3:2526"), "{}", l[1]);
        // Not again within the same second; and a bound name stops its reports.
        assert!(run(|o| s.report_waits(later, "a", o)).is_empty());
        run(|o| s.on_name("SERVICE", 0x0100_0008, t0, o));
        run(|o| assert!(s.link_up(2, 2, 2, false, None, "y", o)));
        let out = run(|o| s.report_waits(later + Duration::from_secs(60), "a", o));
        assert!(logs(&out).is_empty(), "{out:?}");
    }

    #[test]
    fn the_first_harbor_to_join_is_elected() {
        let w = Waiter {
            source: CALLER,
            session: 4,
        };
        let answer = |elected: bool| Action::Reply {
            to: CALLER,
            session: 4,
            data: skynet_proto::seri::pack(&[skynet_proto::seri::Value::Boolean(elected)]).unwrap(),
        };
        // Asked before `W`: answered by it.
        let mut s = ClusterState::<u64>::new(1);
        assert!(run(|o| s.election_waiter(w, o)).is_empty());
        let out = run(|o| s.master_connected(true, 0, None, o));
        assert!(out.contains(&answer(true)));
        // Later sessions (a new master) do not change the outcome.
        run(|o| s.master_lost(o));
        run(|o| s.master_connected(false, 0, None, o));
        assert!(run(|o| s.election_waiter(w, o)).contains(&answer(true)));
        let mut s = ClusterState::<u64>::new(2);
        run(|o| s.master_connected(true, 1, None, o));
        assert!(run(|o| s.election_waiter(w, o)).contains(&answer(false)));
    }
}
