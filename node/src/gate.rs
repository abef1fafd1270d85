//! The native `gate` service (skynet's C gate, service_gate.c): one service
//! that listens, splits each client stream into packets by a 2-byte (`S`) or
//! 4-byte (`L`) big-endian length, and passes them on without Lua.
//!
//! Launch: `gate S|L <watchdog|!> <[host:]port> <client_tag|0> <max>
//! [maxpacket [timeout]]` (the last two are ours: the largest packet, by
//! default 65535 for `S` and 16 MiB - 1 for `L`; and the centiseconds an
//! unfinished packet may wait, 3000 by default, 0 for no limit). Port 0 picks
//! a free port.
//!
//! Packets go to the broker if set, else to the connection's agent (type
//! `client_tag`, default CLIENT; session = fd; source = the client handle, or
//! the gate when 0), else to the watchdog as TEXT `"<fd> data <bytes>"`.
//! Watchdog events (TEXT): `"<fd> open <fd> <ip:port>:0"` and `"<fd> close"`.
//! TEXT commands: `kick <fd>`, `forward <fd> :<agent> :<client>`, `broker
//! <name>`, `start <fd>`, `close`, and ours: `address` answered (when sent
//! as a call) with the listening `ip:port`. A CLIENT message to the gate is
//! bytes plus a 4-byte little-endian fd: the bytes are written to that fd.
//!
//! Where skynet's C gate has faults, this one guarantees: every "open" is
//! followed by exactly one "close" whatever ends the client (peer close,
//! error, kick, bad input); a client that half-closes is reported at once
//! and closed by its kick or at the latest 1 s later, answers written
//! meanwhile still go out (no CLOSE_WAIT); a client refused because the gate
//! is full is not reported; a packet over the limit or unfinished for too
//! long closes that client only, with a log line.

use crate::context::Context;
use crate::kernel::kernel;
use crate::message::{ptype, Message};
use crate::module::Service;
use crate::socket::event::{self, kind};
use crate::socket::{self, SocketServer};
use std::collections::HashMap;
use std::sync::Arc;

const BACKLOG: i32 = 128;
/// Centiseconds a half-closed client stays open for answers on their way.
const LINGER: u64 = 100;
/// The session of the gate's own sweep timer.
const SWEEP_SESSION: i32 = 0x7fff_fff0;

struct Conn {
    agent: u32,
    client: u32,
    remote: String,
    /// Bytes of an unfinished packet (its header included).
    pending: Vec<u8>,
    /// When the unfinished packet began (centiseconds).
    since: u64,
}

#[derive(Default)]
pub struct Gate {
    listen_id: i32,
    listen_addr: Option<String>,
    /// Calls of `address` made before the listener reported its address.
    address_waiting: Vec<(u32, i32)>,
    watchdog: u32,
    broker: u32,
    client_tag: u8,
    header: usize,
    max_conn: usize,
    max_packet: usize,
    timeout: u64,
    conns: HashMap<i32, Conn>,
    /// Half-closed fds and when they are closed.
    lingering: HashMap<i32, u64>,
    handle: u32,
}

fn server() -> &'static SocketServer {
    socket::global()
}

/// The size announced by a big-endian header.
fn header_size(h: &[u8]) -> usize {
    h.iter().fold(0usize, |a, b| a << 8 | *b as usize)
}

impl Gate {
    fn log(&self, text: &str) {
        kernel().log(self.handle, text);
    }

    fn report(&self, text: String) {
        if self.watchdog != 0 {
            let _ = kernel().send(
                self.handle,
                self.handle,
                self.watchdog,
                ptype::TEXT,
                0,
                text.into_bytes(),
            );
        }
    }

    /// Ends `fd` once: reports the close, closes the socket now or (half
    /// close) after the linger.
    fn finish(&mut self, fd: i32, linger: bool, shutdown: bool) -> bool {
        if self.conns.remove(&fd).is_none() {
            if self.lingering.remove(&fd).is_some() {
                server().close(self.handle, fd);
            }
            return false;
        }
        self.report(format!("{fd} close"));
        if linger {
            self.lingering.insert(fd, kernel().now() + LINGER);
        } else if shutdown {
            server().shutdown(self.handle, fd);
        } else {
            server().close(self.handle, fd);
        }
        true
    }

    /// Closes a client for `why`, with a log line naming it.
    fn drop_client(&mut self, fd: i32, why: &str) {
        let remote = self.conns.get(&fd).map(|c| c.remote.as_str()).unwrap_or("");
        self.log(&format!("gate: close fd {fd} ({remote}): {why}"));
        self.finish(fd, false, true);
    }

    fn forward(&self, fd: i32, agent: u32, client: u32, packet: Vec<u8>) {
        let k = kernel();
        if self.broker != 0 {
            let _ = k.send(
                self.handle,
                self.handle,
                self.broker,
                self.client_tag,
                fd,
                packet,
            );
        } else if agent != 0 {
            let src = if client == 0 { self.handle } else { client };
            let _ = k.send(self.handle, src, agent, self.client_tag, fd, packet);
        } else if self.watchdog != 0 {
            let mut t = format!("{fd} data ").into_bytes();
            t.extend_from_slice(&packet);
            let _ = k.send(self.handle, self.handle, self.watchdog, ptype::TEXT, fd, t);
        }
    }

    /// Splits a read of `fd` into packets; closes the client on a packet
    /// over the limit.
    fn on_data(&mut self, fd: i32, data: Vec<u8>) {
        let hs = self.header;
        let max = self.max_packet;
        let Some(c) = self.conns.get_mut(&fd) else {
            return;
        };
        let (agent, client) = (c.agent, c.client);
        let mut packets = Vec::new();
        let mut bad = None;
        // Bytes to parse: the unfinished packet's, then this read.
        let mut buf = std::mem::take(&mut c.pending);
        let from_pending = !buf.is_empty();
        let data = if from_pending {
            buf.extend_from_slice(&data);
            buf
        } else {
            data
        };
        let mut pos = 0;
        while data.len() - pos >= hs {
            let size = header_size(&data[pos..pos + hs]);
            if size > max {
                bad = Some(size);
                break;
            }
            if data.len() - pos - hs < size {
                break;
            }
            packets.push(data[pos + hs..pos + hs + size].to_vec());
            pos += hs + size;
        }
        if bad.is_none() && pos < data.len() {
            if !from_pending || pos > 0 {
                c.since = kernel().now();
            }
            c.pending = data[pos..].to_vec();
        }
        for p in packets {
            self.forward(fd, agent, client, p);
        }
        if let Some(size) = bad {
            self.drop_client(
                fd,
                &format!("packet of {size} bytes announced, over the limit of {max}"),
            );
        }
    }

    fn on_socket(&mut self, data: Vec<u8>) {
        let Some(h) = event::decode_header(&data) else {
            self.log("gate: invalid socket message");
            return;
        };
        let text = || String::from_utf8_lossy(&data[..h.body_len]).into_owned();
        match h.kind {
            kind::DATA => {
                if self.conns.contains_key(&h.id) {
                    let mut d = data;
                    d.truncate(h.body_len);
                    self.on_data(h.id, d);
                } else if !self.lingering.contains_key(&h.id) {
                    self.log(&format!("Drop unknown connection {} message", h.id));
                    server().close(self.handle, h.id);
                }
            }
            kind::CONNECT => {
                if h.id == self.listen_id {
                    if self.listen_addr.is_none() && h.ud != 0 {
                        let a = format!("{}:{}", text(), h.ud);
                        for (src, session) in std::mem::take(&mut self.address_waiting) {
                            let _ = kernel().send(
                                self.handle,
                                self.handle,
                                src,
                                ptype::RESPONSE,
                                session,
                                a.clone().into_bytes(),
                            );
                        }
                        self.listen_addr = Some(a);
                    }
                } else if !self.conns.contains_key(&h.id) && !self.lingering.contains_key(&h.id) {
                    self.log(&format!("Close unknown connection {}", h.id));
                    server().close(self.handle, h.id);
                }
            }
            kind::CLOSE => {
                if h.id == self.listen_id {
                    self.listen_id = -1;
                } else {
                    self.finish(h.id, true, false);
                }
            }
            kind::ERROR => {
                if h.id == self.listen_id {
                    self.log(&format!("gate: accept error: {}", text()));
                } else {
                    if self.conns.contains_key(&h.id) {
                        self.drop_client(h.id, &text());
                    } else {
                        self.finish(h.id, false, true);
                    }
                }
            }
            kind::ACCEPT => {
                let fd = h.ud;
                let remote = text();
                if self.conns.len() >= self.max_conn {
                    self.log(&format!(
                        "gate: refuse fd {fd} ({remote}): max connections {} reached",
                        self.max_conn
                    ));
                    server().close(self.handle, fd);
                    return;
                }
                self.report(format!("{fd} open {fd} {remote}:0"));
                self.log(&format!("socket open: {fd:x}"));
                self.conns.insert(
                    fd,
                    Conn {
                        agent: 0,
                        client: 0,
                        remote,
                        pending: Vec::new(),
                        since: 0,
                    },
                );
            }
            kind::WARNING => {
                self.log(&format!("fd ({}) send buffer ({})K", h.id, h.ud));
            }
            _ => {}
        }
    }

    fn control(&mut self, msg: &Message) {
        let text = String::from_utf8_lossy(&msg.data).into_owned();
        let text = text.trim_end_matches('\0');
        let (cmd, rest) = match text.split_once(' ') {
            Some((c, r)) => (c, r.trim_start()),
            None => (text, ""),
        };
        let fd_arg = || rest.trim().parse::<i32>().ok();
        match cmd {
            "" => {}
            "kick" => {
                if let Some(fd) = fd_arg() {
                    self.finish(fd, false, false);
                }
            }
            "forward" => {
                let mut it = rest.split_whitespace();
                let fd = it.next().and_then(|s| s.parse::<i32>().ok());
                let agent = it
                    .next()
                    .map(|s| u32::from_str_radix(s.trim_start_matches(':'), 16).unwrap_or(0));
                let client = it
                    .next()
                    .map(|s| u32::from_str_radix(s.trim_start_matches(':'), 16).unwrap_or(0));
                if let (Some(fd), Some(agent), Some(client)) = (fd, agent, client) {
                    if let Some(c) = self.conns.get_mut(&fd) {
                        c.agent = agent;
                        c.client = client;
                    }
                }
            }
            "broker" => self.broker = kernel().query_name(rest.trim()),
            "start" => {
                if let Some(fd) = fd_arg() {
                    if self.conns.contains_key(&fd) {
                        server().start(self.handle, fd);
                    }
                }
            }
            "close" => {
                if self.listen_id >= 0 {
                    server().close(self.handle, self.listen_id);
                    self.listen_id = -1;
                }
            }
            "address" if msg.session != 0 => match &self.listen_addr {
                Some(a) => {
                    let _ = kernel().send(
                        self.handle,
                        self.handle,
                        msg.source,
                        ptype::RESPONSE,
                        msg.session,
                        a.clone().into_bytes(),
                    );
                }
                None => self.address_waiting.push((msg.source, msg.session)),
            },
            _ => self.log(&format!("[gate] Unknown command : {text}")),
        }
    }

    /// Closes clients whose packet stays unfinished too long, and lingering
    /// half-closed ones whose time is up.
    fn sweep(&mut self, ctx: &Arc<Context>) {
        let now = kernel().now();
        if self.timeout > 0 {
            let slow: Vec<i32> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    !c.pending.is_empty() && now.saturating_sub(c.since) > self.timeout
                })
                .map(|(fd, _)| *fd)
                .collect();
            let why = format!(
                "a packet unfinished for more than {:.2}s (slow sender)",
                self.timeout as f64 / 100.0
            );
            for fd in slow {
                self.drop_client(fd, &why);
            }
        }
        let due: Vec<i32> = self
            .lingering
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(fd, _)| *fd)
            .collect();
        for fd in due {
            self.lingering.remove(&fd);
            server().close(self.handle, fd);
        }
        let every = if self.timeout > 0 {
            (self.timeout / 4).clamp(10, 100)
        } else {
            100
        };
        kernel().timeout(ctx, every.min(LINGER / 2) as i32, SWEEP_SESSION);
    }
}

/// `host:port` or `port`; port 0 is allowed (any free port).
fn parse_binding(b: &str) -> Option<(String, u16)> {
    match b.rsplit_once(':') {
        Some((h, p)) => Some((
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().ok()?,
        )),
        None => Some((String::new(), b.parse().ok()?)),
    }
}

impl Service for Gate {
    fn init(&mut self, ctx: &Arc<Context>, args: &str) -> Result<(), String> {
        self.handle = ctx.handle();
        let a: Vec<&str> = args.split_whitespace().collect();
        if a.len() < 4 {
            return Err(format!("Invalid gate parm {args}"));
        }
        self.header = match a[0] {
            "S" => 2,
            "L" => 4,
            _ => return Err("Invalid data header style".to_string()),
        };
        let max: i64 = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(0);
        if max <= 0 {
            return Err("Need max connection".to_string());
        }
        self.max_conn = max as usize;
        let tag: i64 = a[3].parse().unwrap_or(0);
        self.client_tag = if tag == 0 {
            ptype::CLIENT
        } else {
            (tag & 0xff) as u8
        };
        let limit = if self.header == 2 { 0xffff } else { 0xff_ffff };
        self.max_packet = match a.get(5).map(|s| s.parse::<usize>()) {
            Some(Ok(n)) if n > 0 => n.min(limit),
            Some(_) => return Err(format!("Invalid gate maxpacket {}", a[5])),
            None => limit,
        };
        self.timeout = match a.get(6).map(|s| s.parse::<u64>()) {
            Some(Ok(n)) => n,
            Some(Err(_)) => return Err(format!("Invalid gate timeout {}", a[6])),
            None => 3000,
        };
        if a[1].starts_with('!') {
            self.watchdog = 0;
        } else {
            self.watchdog = kernel().query_name(a[1]);
            if self.watchdog == 0 {
                return Err(format!("Invalid watchdog {}", a[1]));
            }
        }
        let (host, port) =
            parse_binding(a[2]).ok_or_else(|| format!("Invalid gate address {}", a[2]))?;
        let id = server()
            .listen(self.handle, &host, port, BACKLOG)
            .map_err(|e| format!("gate: listen {}: {e}", a[2]))?;
        self.listen_id = id;
        server().start(self.handle, id);
        self.sweep(ctx);
        Ok(())
    }

    fn dispatch(&mut self, ctx: &Arc<Context>, msg: Message) {
        match msg.ptype {
            ptype::TEXT => self.control(&msg),
            ptype::SOCKET => self.on_socket(msg.data),
            ptype::RESPONSE if msg.session == SWEEP_SESSION && msg.source == 0 => self.sweep(ctx),
            ptype::CLIENT => {
                let n = msg.data.len();
                if n <= 4 {
                    self.log(&format!("Invalid client message from {:x}", msg.source));
                    return;
                }
                let fd = i32::from_le_bytes(msg.data[n - 4..].try_into().unwrap());
                if self.conns.contains_key(&fd) || self.lingering.contains_key(&fd) {
                    let mut d = msg.data;
                    d.truncate(n - 4);
                    server().send(fd, d, false);
                } else {
                    self.log(&format!("Invalid client id {fd} from {:x}", msg.source));
                }
            }
            _ => {}
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        for fd in self.conns.keys().chain(self.lingering.keys()) {
            server().close(self.handle, *fd);
        }
        if self.listen_id >= 0 {
            server().close(self.handle, self.listen_id);
        }
    }
}
