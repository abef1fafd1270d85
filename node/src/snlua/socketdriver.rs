//! `skynet.socketdriver`: the native half of `skynet.socket`. Argument
//! conventions, results and error texts follow skynet's lua-socket.c.
//!
//! Buffer operations work on a socket buffer (full userdata holding a
//! [`SockBuf`]) and on data blocks (lightuserdata + size, owned by the service
//! through `Shared.buffers`); the second argument of the buffer operations is
//! skynet's node pool table, which is only type-checked here. Context
//! operations talk to the node's socket server ([`crate::socket::global`]) on
//! behalf of this service.

use super::lua::*;
use super::{block, shared, Shared};
use crate::socket::buffer::SockBuf;
use crate::socket::{self, addr, event, SocketServer};
use std::ffi::{c_int, c_void, CStr};

const SB_META: &CStr = c"skynet.socketbuffer";
const BACKLOG: lua_Integer = 32;
/// The shared scratch buffer is released when a read left it larger than this.
const SCRATCH_KEEP: usize = 64 * 1024;

pub const FUNCS: &[(&CStr, lua_CFunction)] = &[
    (c"buffer", lbuffer),
    (c"push", lpush),
    (c"pop", lpop),
    (c"drop", ldrop),
    (c"readall", lreadall),
    (c"clear", lclear),
    (c"readline", lreadline),
    (c"str2p", lstr2p),
    (c"header", lheader),
    (c"info", linfo),
    (c"unpack", lunpack),
    (c"connect", lconnect),
    (c"close", lclose),
    (c"shutdown", lshutdown),
    (c"listen", llisten),
    (c"send", lsend),
    (c"lsend", llsend),
    (c"bind", lbind),
    (c"start", lstart),
    (c"pause", lpause),
    (c"nodelay", lnodelay),
    (c"udp", ludp),
    (c"udp_connect", ludp_connect),
    (c"udp_dial", ludp_dial),
    (c"udp_listen", ludp_listen),
    (c"udp_send", ludp_send),
    (c"udp_address", ludp_address),
    (c"resolve", lresolve),
];

/// `require "skynet.socketdriver"`.
///
/// # Safety
/// A Lua C function: `l` must be a live state whose registry holds the
/// service's `skynet_context`.
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    open_bound(l, FUNCS)
}

fn server() -> &'static SocketServer {
    socket::global()
}

// ------------------------------------------------------------------ buffers

unsafe extern "C-unwind" fn sockbuf_gc(l: State) -> c_int {
    let p = luaL_testudata(l, 1, SB_META.as_ptr()) as *mut SockBuf;
    if !p.is_null() {
        std::ptr::drop_in_place(p);
        // stays valid (and empty) should the object be resurrected
        std::ptr::write(p, SockBuf::new());
    }
    0
}

unsafe extern "C-unwind" fn lbuffer(l: State) -> c_int {
    let p = lua_newuserdatauv(l, std::mem::size_of::<SockBuf>(), 0) as *mut SockBuf;
    std::ptr::write(p, SockBuf::new());
    if luaL_newmetatable(l, SB_META.as_ptr()) != 0 {
        lua_pushcfunction(l, sockbuf_gc);
        lua_setfield(l, -2, c"__gc".as_ptr());
    }
    lua_setmetatable(l, -2);
    1
}

unsafe fn sockbuf<'a>(l: State, idx: c_int, err: &str) -> &'a mut SockBuf {
    let p = luaL_testudata(l, idx, SB_META.as_ptr()) as *mut SockBuf;
    if p.is_null() {
        raise_here(l, err.to_string());
    }
    &mut *p
}

/// Pushes the first `n` bytes of `sb` as a string and consumes `consume` bytes.
unsafe fn push_front(l: State, sh: &Shared, sb: &mut SockBuf, n: usize, consume: usize) {
    let scratch = &mut *sh.scratch.get();
    let s = sb.peek(n, scratch);
    push_bytes(l, s);
    scratch.clear();
    if scratch.capacity() > SCRATCH_KEEP {
        *scratch = Vec::with_capacity(256);
    }
    sb.consume(consume);
}

/// push(buffer, pool, msg, sz) → size: the buffer takes the data block over.
unsafe extern "C-unwind" fn lpush(l: State) -> c_int {
    let sh = shared(l);
    let sb = sockbuf(l, 1, "need buffer object at param 1");
    let p = lua_touserdata(l, 3) as usize;
    if p == 0 {
        raise_here(l, "need message block at param 3".to_string());
    }
    luaL_checktype(l, 2, LUA_TTABLE);
    let sz = luaL_checkinteger(l, 4);
    let bufs = &mut *sh.buffers.get();
    let sz = match block::check_own_block(bufs, p, sz) {
        Ok(sz) => sz,
        Err(e) => raise_here(l, e.text("need message block at param 3")),
    };
    let size = sb.push(block::take_own_block(bufs, p, sz));
    lua_pushinteger(l, size as lua_Integer);
    1
}

/// pop(buffer, pool, sz) → string | nil, size
unsafe extern "C-unwind" fn lpop(l: State) -> c_int {
    let sh = shared(l);
    let sb = sockbuf(l, 1, "Need buffer object at param 1");
    luaL_checktype(l, 2, LUA_TTABLE);
    let sz = luaL_checkinteger(l, 3);
    if sz <= 0 || sz as usize > sb.size() {
        lua_pushnil(l);
    } else {
        push_front(l, sh, sb, sz as usize, sz as usize);
    }
    lua_pushinteger(l, sb.size() as lua_Integer);
    2
}

/// readall(buffer, pool) → string (everything buffered)
unsafe extern "C-unwind" fn lreadall(l: State) -> c_int {
    let sh = shared(l);
    let sb = sockbuf(l, 1, "Need buffer object at param 1");
    luaL_checktype(l, 2, LUA_TTABLE);
    let n = sb.size();
    push_front(l, sh, sb, n, n);
    1
}

/// clear(buffer, pool); a nil buffer is ignored.
unsafe extern "C-unwind" fn lclear(l: State) -> c_int {
    if lua_isnil(l, 1) != 0 {
        return 0;
    }
    let sb = sockbuf(l, 1, "Need buffer object at param 1");
    luaL_checktype(l, 2, LUA_TTABLE);
    sb.clear();
    0
}

/// readline(buffer, pool | nil, sep): with a pool, removes and returns the text
/// before `sep`; without, only tells (true) whether a line is there.
unsafe extern "C-unwind" fn lreadline(l: State) -> c_int {
    let sh = shared(l);
    let sb = sockbuf(l, 1, "Need buffer object at param 1");
    let check = lua_istable(l, 2) == 0;
    let sep = check_bytes(l, 3);
    let Some(at) = sb.find(sep) else { return 0 };
    if check {
        lua_pushboolean(l, 1);
    } else {
        push_front(l, sh, sb, at, at + sep.len());
    }
    1
}

/// drop(msg, sz): frees a data block.
unsafe extern "C-unwind" fn ldrop(l: State) -> c_int {
    let p = lua_touserdata(l, 1) as usize;
    luaL_checkinteger(l, 2);
    if p != 0 {
        drop((*shared(l).buffers.get()).take(p));
    }
    0
}

/// str2p(str) → msg, sz: a data block holding a copy of the string.
unsafe extern "C-unwind" fn lstr2p(l: State) -> c_int {
    let sh = shared(l);
    let s = check_bytes(l, 1);
    let len = s.len();
    let p = (*sh.buffers.get()).insert(s.to_vec());
    lua_pushlightuserdata(l, p as *mut c_void);
    lua_pushinteger(l, len as lua_Integer);
    2
}

/// header(str) → integer: 1 to 4 bytes, big endian.
unsafe extern "C-unwind" fn lheader(l: State) -> c_int {
    let s = check_bytes(l, 1);
    if s.is_empty() || s.len() > 4 {
        raise_here(l, format!("Invalid read {}", String::from_utf8_lossy(s)));
    }
    let v = s.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
    lua_pushinteger(l, v as lua_Integer);
    1
}

unsafe fn set_int(l: State, key: &CStr, v: i64) {
    lua_pushinteger(l, v as lua_Integer);
    lua_setfield(l, -2, key.as_ptr());
}

unsafe fn set_str(l: State, key: &CStr, v: &str) {
    push_str(l, v);
    lua_setfield(l, -2, key.as_ptr());
}

/// info() → list of { id, address (owner), type, read, write, wbuffer, rtime,
/// wtime, peer (TCP) | sock (UDP, LISTEN), accept (LISTEN) }
unsafe extern "C-unwind" fn linfo(l: State) -> c_int {
    let list = server().info();
    lua_createtable(l, list.len() as c_int, 0);
    for (i, si) in list.iter().enumerate() {
        lua_createtable(l, 0, 9);
        set_int(l, c"id", si.id as i64);
        set_int(l, c"address", si.owner as i64);
        set_str(l, c"type", si.kind.name());
        if si.kind == socket::server::Kind::Listen {
            set_int(l, c"accept", si.read as i64);
            set_int(l, c"rtime", si.rtime as i64);
            if !si.name.is_empty() {
                set_str(l, c"sock", &si.name);
            }
        } else {
            // TCP: the peer's address; UDP: the local one
            let key = if si.kind == socket::server::Kind::Udp {
                c"sock"
            } else {
                c"peer"
            };
            set_int(l, c"read", si.read as i64);
            set_int(l, c"write", si.write as i64);
            set_int(l, c"wbuffer", si.wbuffer as i64);
            set_int(l, c"rtime", si.rtime as i64);
            set_int(l, c"wtime", si.wtime as i64);
            if !si.name.is_empty() {
                set_str(l, key, &si.name);
            }
        }
        lua_rawseti(l, -2, (i + 1) as lua_Integer);
    }
    1
}

/// unpack(msg, sz) → type, id, ud, data [, udp_address]. For DATA and UDP
/// events `data` is a data block: the message block itself, cut to the data,
/// which the service now owns.
unsafe extern "C-unwind" fn lunpack(l: State) -> c_int {
    let sh = shared(l);
    let p = lua_touserdata(l, 1) as usize;
    let sz = luaL_checkinteger(l, 2);
    let bufs = &mut *sh.buffers.get();
    let header = match bufs.get(p) {
        Some(b) if sz >= 0 && sz as usize <= b.len() => event::decode_header(&b[..sz as usize]),
        _ => None,
    };
    let Some(h) = header else {
        raise_here(l, "invalid socket message".to_string());
    };
    lua_pushinteger(l, h.kind as lua_Integer);
    lua_pushinteger(l, h.id as lua_Integer);
    lua_pushinteger(l, h.ud as lua_Integer);
    if !event::carries_block(h.kind) {
        let b = bufs.get(p).unwrap_or(&[]);
        push_bytes(l, &b[..h.body_len]);
        return 4;
    }
    let with_address = h.kind == event::kind::UDP;
    if with_address {
        let b = bufs.get(p).unwrap_or(&[]);
        push_bytes(l, &b[h.body_len..h.body_len + h.extra_len]);
    }
    // No Lua error past this point: the block changes hands.
    let block = block::take_own_block(bufs, p, h.body_len);
    let data = bufs.insert(block);
    lua_pushlightuserdata(l, data as *mut c_void);
    if with_address {
        lua_insert(l, -2);
        5
    } else {
        4
    }
}

// ------------------------------------------------------------------ context

/// skynet's address forms: "host:port", "[v6]:port", or host plus port at
/// `port_idx`. Returns (host, port); the port is 0 when absent or invalid.
unsafe fn address_port(l: State, addr: &[u8], port_idx: c_int) -> (&[u8], i64) {
    if lua_isnoneornil(l, port_idx) == 0 {
        return (addr, luaL_optinteger(l, port_idx, 0));
    }
    let invalid = || format!("Invalid address {}.", String::from_utf8_lossy(addr));
    let (host, rest) = if let Some(open) = addr.iter().position(|b| *b == b'[') {
        let Some(close) = addr.iter().position(|b| *b == b']') else {
            raise_here(l, invalid());
        };
        if close < open {
            raise_here(l, invalid());
        }
        let Some(colon) = addr[close + 1..].iter().position(|b| *b == b':') else {
            raise_here(l, invalid());
        };
        (&addr[open + 1..close], &addr[close + 1 + colon + 1..])
    } else {
        let Some(colon) = addr.iter().position(|b| *b == b':') else {
            raise_here(l, invalid());
        };
        (&addr[..colon], &addr[colon + 1..])
    };
    (host, parse_port(rest))
}

/// strtoul-like: leading blanks, then the leading digits (0 if none).
fn parse_port(s: &[u8]) -> i64 {
    let s = match s.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) => &s[i..],
        None => return 0,
    };
    let mut v: i64 = 0;
    for b in s.iter().take_while(|b| b.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add((b - b'0') as i64);
    }
    v
}

fn port_of(p: i64) -> Option<u16> {
    u16::try_from(p).ok()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// connect(addr [, port]) → id
unsafe extern "C-unwind" fn lconnect(l: State) -> c_int {
    let sh = shared(l);
    let addr = check_bytes(l, 1);
    let (host, port) = address_port(l, addr, 2);
    let port = match port_of(port) {
        Some(p) if p != 0 => p,
        _ => raise_here(l, "Invalid port".to_string()),
    };
    let id = server().connect(sh.handle, &text(host), port);
    lua_pushinteger(l, id as lua_Integer);
    1
}

unsafe extern "C-unwind" fn lclose(l: State) -> c_int {
    let id = luaL_checkinteger(l, 1) as i32;
    server().close(shared(l).handle, id);
    0
}

unsafe extern "C-unwind" fn lshutdown(l: State) -> c_int {
    let id = luaL_checkinteger(l, 1) as i32;
    server().shutdown(shared(l).handle, id);
    0
}

/// listen(host, port [, backlog]) or listen("host:port") → id; "Listen
/// error" on failure.
unsafe extern "C-unwind" fn llisten(l: State) -> c_int {
    let sh = shared(l);
    let (host, port) = address_port(l, check_bytes(l, 1), 2);
    let backlog = luaL_optinteger(l, 3, BACKLOG);
    let r = match port_of(port) {
        Some(p) => server()
            .listen(
                sh.handle,
                &text(host),
                p,
                backlog.clamp(0, i32::MAX as lua_Integer) as i32,
            )
            .ok(),
        None => None,
    };
    match r {
        Some(id) => {
            lua_pushinteger(l, id as lua_Integer);
            1
        }
        None => raise_here(l, "Listen error".to_string()),
    }
}

/// What a send argument designates, validated, before anything changes hands.
enum Payload {
    Bytes(*const u8, usize),
    Block(usize, usize),
    Scratch,
}

/// skynet's `get_buffer`: a string, a data block (lightuserdata + size), a
/// full userdata (its bytes, or the first `sz`), or a table of strings.
unsafe fn get_buffer(l: State, sh: &Shared, idx: c_int) -> Payload {
    match lua_type(l, idx) {
        LUA_TUSERDATA => {
            let p = lua_touserdata(l, idx) as *const u8;
            let raw = lua_rawlen(l, idx);
            let sz = if lua_isinteger(l, idx + 1) != 0 {
                lua_tointegerx(l, idx + 1, std::ptr::null_mut())
            } else {
                raw as lua_Integer
            };
            if sz < 0 || sz as usize > raw {
                raise_here(l, format!("invalid userdata size {sz}"));
            }
            Payload::Bytes(p, sz as usize)
        }
        LUA_TLIGHTUSERDATA => {
            let p = lua_touserdata(l, idx) as usize;
            let sz = if lua_isinteger(l, idx + 1) != 0 {
                lua_tointegerx(l, idx + 1, std::ptr::null_mut())
            } else {
                -1
            };
            if sz < 0 {
                raise_here(l, "socket object buffers are not supported".to_string());
            }
            if p == 0 {
                if sz == 0 {
                    return Payload::Bytes(std::ptr::null(), 0);
                }
                raise_here(l, "invalid message block (null)".to_string());
            }
            match block::check_own_block(&*sh.buffers.get(), p, sz) {
                Ok(sz) => Payload::Block(p, sz),
                Err(e) => raise_here(
                    l,
                    e.text("invalid message block (not owned by this service)"),
                ),
            }
        }
        LUA_TTABLE => {
            let scratch = &mut *sh.scratch.get();
            scratch.clear();
            let mut i: lua_Integer = 1;
            while lua_geti(l, idx, i) != LUA_TNIL {
                let t = lua_type(l, -1);
                if t != LUA_TSTRING && t != LUA_TNUMBER {
                    scratch.clear();
                    raise_here(l, "Invalid strings table".to_string());
                }
                scratch.extend_from_slice(to_bytes(l, -1).unwrap_or(&[]));
                lua_pop(l, 1);
                i += 1;
            }
            lua_pop(l, 1);
            Payload::Scratch
        }
        _ => {
            let b = check_bytes(l, idx);
            Payload::Bytes(b.as_ptr(), b.len())
        }
    }
}

/// The bytes to send (taking a data block over). No Lua call happens here.
unsafe fn payload_bytes(sh: &Shared, p: Payload) -> Vec<u8> {
    match p {
        Payload::Bytes(_, 0) => Vec::new(),
        Payload::Bytes(ptr, n) => std::slice::from_raw_parts(ptr, n).to_vec(),
        Payload::Block(a, n) => block::take_own_block(&mut *sh.buffers.get(), a, n),
        Payload::Scratch => {
            let scratch = &mut *sh.scratch.get();
            let v = scratch.clone();
            scratch.clear();
            if scratch.capacity() > SCRATCH_KEEP {
                *scratch = Vec::with_capacity(256);
            }
            v
        }
    }
}

unsafe fn send_common(l: State, high: bool) -> c_int {
    let sh = shared(l);
    let id = luaL_checkinteger(l, 1) as i32;
    let p = get_buffer(l, sh, 2);
    let data = payload_bytes(sh, p);
    let ok = server().send(id, data, high);
    lua_pushboolean(l, ok as c_int);
    1
}

/// send(id, buffer...) → boolean (high priority)
unsafe extern "C-unwind" fn lsend(l: State) -> c_int {
    send_common(l, true)
}

/// lsend(id, buffer...) → boolean (low priority)
unsafe extern "C-unwind" fn llsend(l: State) -> c_int {
    send_common(l, false)
}

/// bind(fd) → id
unsafe extern "C-unwind" fn lbind(l: State) -> c_int {
    let sh = shared(l);
    let fd = luaL_checkinteger(l, 1) as i32;
    let id = server().bind(sh.handle, fd);
    lua_pushinteger(l, id as lua_Integer);
    1
}

unsafe extern "C-unwind" fn lstart(l: State) -> c_int {
    let id = luaL_checkinteger(l, 1) as i32;
    server().start(shared(l).handle, id);
    0
}

unsafe extern "C-unwind" fn lpause(l: State) -> c_int {
    let id = luaL_checkinteger(l, 1) as i32;
    server().pause(id);
    0
}

unsafe extern "C-unwind" fn lnodelay(l: State) -> c_int {
    let id = luaL_checkinteger(l, 1) as i32;
    server().nodelay(id);
    0
}

/// udp([addr [, port]]) → id
unsafe extern "C-unwind" fn ludp(l: State) -> c_int {
    let sh = shared(l);
    let r = match to_bytes(l, 1) {
        Some(addr) if lua_type(l, 1) == LUA_TSTRING || lua_type(l, 1) == LUA_TNUMBER => {
            let (host, port) = address_port(l, addr, 2);
            match port_of(port) {
                Some(p) => server().udp(sh.handle, Some(&text(host)), p).ok(),
                None => None,
            }
        }
        _ => server().udp(sh.handle, None, 0).ok(),
    };
    match r {
        Some(id) => {
            lua_pushinteger(l, id as lua_Integer);
            1
        }
        None => raise_here(l, "udp init failed".to_string()),
    }
}

/// udp_connect(id, addr [, port]): sets the default destination.
unsafe extern "C-unwind" fn ludp_connect(l: State) -> c_int {
    let id = luaL_checkinteger(l, 1) as i32;
    let addr = check_bytes(l, 2);
    let (host, port) = address_port(l, addr, 3);
    let ok = match port_of(port) {
        Some(p) => server().udp_connect(id, &text(host), p).is_ok(),
        None => false,
    };
    if !ok {
        raise_here(l, "udp connect failed".to_string());
    }
    0
}

/// udp_dial(addr [, port]) → id: a UDP socket connected to addr.
unsafe extern "C-unwind" fn ludp_dial(l: State) -> c_int {
    let sh = shared(l);
    let addr = check_bytes(l, 1);
    let (host, port) = address_port(l, addr, 2);
    let r = port_of(port).and_then(|p| server().udp_dial(sh.handle, &text(host), p).ok());
    match r {
        Some(id) => {
            lua_pushinteger(l, id as lua_Integer);
            1
        }
        None => raise_here(l, "udp dial host failed".to_string()),
    }
}

/// udp_listen(addr [, port]) → id: a UDP socket bound to addr.
unsafe extern "C-unwind" fn ludp_listen(l: State) -> c_int {
    let sh = shared(l);
    let addr = check_bytes(l, 1);
    let (host, port) = address_port(l, addr, 2);
    let r = port_of(port).and_then(|p| server().udp_listen(sh.handle, &text(host), p).ok());
    match r {
        Some(id) => {
            lua_pushinteger(l, id as lua_Integer);
            1
        }
        None => raise_here(l, "udp listen host failed".to_string()),
    }
}

/// udp_send(id, address, buffer...) → boolean
unsafe extern "C-unwind" fn ludp_send(l: State) -> c_int {
    let sh = shared(l);
    let id = luaL_checkinteger(l, 1) as i32;
    let address = check_bytes(l, 2);
    let p = get_buffer(l, sh, 3);
    let data = payload_bytes(sh, p);
    let ok = server().udp_send(id, address, data);
    lua_pushboolean(l, ok as c_int);
    1
}

/// udp_address(blob) → ip, port
unsafe extern "C-unwind" fn ludp_address(l: State) -> c_int {
    let b = check_bytes(l, 1);
    let a = match b.len() {
        7 | 19 => addr::blob_to_addr(b).filter(|a| a.is_ipv4() == (b.len() == 7)),
        _ => None,
    };
    let Some(a) = a else {
        raise_here(l, "Invalid udp address".to_string());
    };
    push_str(l, &a.ip().to_string());
    lua_pushinteger(l, a.port() as lua_Integer);
    2
}

/// resolve(host) → { address strings }
unsafe extern "C-unwind" fn lresolve(l: State) -> c_int {
    let host = check_bytes(l, 1);
    let r = addr::getaddrinfo(Some(&text(host)), None, addr::Want::Any);
    let list = match r {
        Ok(v) => v,
        Err(e) => raise_here(l, e),
    };
    lua_createtable(l, list.len() as c_int, 0);
    for (i, a) in list.iter().enumerate() {
        push_str(l, &a.ip().to_string());
        lua_rawseti(l, -2, (i + 1) as lua_Integer);
    }
    1
}

#[cfg(test)]
mod tests {
    use super::super::Shared;
    use super::*;
    use std::ffi::CString;

    /// A bare Lua state with the buffer operations as global `driver`, plus
    /// `event(kind, id, ud, body [, extra])` returning a message block as the
    /// socket thread would build it.
    struct TestLua {
        l: State,
        shared: Box<Shared>,
    }

    unsafe extern "C-unwind" fn make_event(l: State) -> c_int {
        let sh = shared(l);
        let k = luaL_checkinteger(l, 1) as u8;
        let id = luaL_checkinteger(l, 2) as i32;
        let ud = luaL_checkinteger(l, 3) as i32;
        let body = check_bytes(l, 4).to_vec();
        let extra = to_bytes(l, 5).map(|b| b.to_vec()).unwrap_or_default();
        let msg = event::encode(k, id, ud, body, &extra);
        let sz = msg.len();
        let p = (*sh.buffers.get()).insert(msg);
        lua_pushlightuserdata(l, p as *mut c_void);
        lua_pushinteger(l, sz as lua_Integer);
        2
    }

    /// The number of blocks the service owns.
    unsafe extern "C-unwind" fn owned(l: State) -> c_int {
        lua_pushinteger(l, (*shared(l).buffers.get()).owned_count() as lua_Integer);
        1
    }

    impl TestLua {
        fn new() -> TestLua {
            let shared = Shared::detached();
            unsafe {
                let l = luaL_newstate();
                luaL_openlibs(l);
                let sh = &*shared as *const Shared as *mut c_void;
                lua_createtable(l, 0, 16);
                lua_pushlightuserdata(l, sh);
                let pure: Vec<(&CStr, lua_CFunction)> = FUNCS
                    .iter()
                    .copied()
                    .filter(|(n, _)| {
                        matches!(
                            n.to_bytes(),
                            b"buffer"
                                | b"push"
                                | b"pop"
                                | b"drop"
                                | b"readall"
                                | b"clear"
                                | b"readline"
                                | b"str2p"
                                | b"header"
                                | b"unpack"
                                | b"udp_address"
                        )
                    })
                    .chain([
                        (c"event", make_event as lua_CFunction),
                        (c"owned", owned as lua_CFunction),
                    ])
                    .collect();
                set_funcs(l, &pure, 1);
                lua_setglobal(l, c"driver".as_ptr());
                TestLua { l, shared }
            }
        }

        fn run(&self, code: &str) -> Result<String, String> {
            unsafe {
                let l = self.l;
                lua_settop(l, 0);
                let c = CString::new(code).unwrap();
                if luaL_loadstring(l, c.as_ptr()) != LUA_OK || lua_pcall(l, 0, 1, 0) != LUA_OK {
                    return Err(
                        String::from_utf8_lossy(to_bytes(l, -1).unwrap_or(b"?")).into_owned()
                    );
                }
                Ok(String::from_utf8_lossy(to_bytes(l, -1).unwrap_or(b"")).into_owned())
            }
        }
    }

    impl Drop for TestLua {
        fn drop(&mut self) {
            unsafe { lua_close(self.l) };
            let _ = &self.shared;
        }
    }

    #[test]
    fn buffer_ops_follow_skynet() {
        let t = TestLua::new();
        let r = t.run(r#"local b = driver.buffer(); driver.push(b, {}, (driver.str2p("x")))"#);
        assert!(
            r.unwrap_err().contains("number expected"),
            "push needs the size argument"
        );
        let t = TestLua::new();
        let r = t.run(
            r#"
            local b, pool = driver.buffer(), {}
            local p, n = driver.str2p("hello world")
            assert(driver.push(b, pool, p, n) == 11)
            local p2, n2 = driver.str2p("second data!")
            assert(driver.push(b, pool, p2, n2) == 23)
            local s, left = driver.pop(b, pool, 11)
            assert(s == "hello world" and left == 12, tostring(s))
            assert(driver.pop(b, pool, 0) == nil)
            assert(select(2, driver.pop(b, pool, 100)) == 12)
            assert(driver.readall(b, pool) == "second data!")
            assert(driver.readall(b, pool) == "")
            local p3, n3 = driver.str2p("line1\nline2\r\nline3")
            driver.push(b, pool, p3, n3)
            assert(driver.readline(b, nil, "\n") == true)
            assert(driver.readline(b, pool, "\n") == "line1")
            assert(driver.readline(b, pool, "\r\n") == "line2")
            assert(driver.readline(b, pool, "\n") == nil)
            assert(driver.readline(b, nil, "\n") == nil)
            driver.clear(b, pool)
            driver.clear(nil, pool)
            assert(driver.readall(b, pool) == "")
            for i = 1, 20 do
                local p, n = driver.str2p(string.format("chunk%03d_", i))
                driver.push(b, pool, p, n)
            end
            local all, rest = driver.pop(b, pool, 180)
            assert(#all == 180 and rest == 0 and all:sub(1, 18) == "chunk001_chunk002_")
            assert(driver.header("\x05") == 5)
            assert(driver.header("\x01\x00") == 256)
            assert(driver.header("\x01\x00\x00") == 65536)
            assert(driver.header("\x00\x01\x00\x00") == 65536)
            assert(not pcall(driver.header, ""))
            assert(not pcall(driver.header, "12345"))
            local ok, err = pcall(driver.pop, {}, pool, 1)
            assert(not ok and err:find("Need buffer object at param 1"), err)
            local p4, n4 = driver.str2p("x")
            driver.drop(p4, n4)
            assert(driver.owned() == 0, "blocks leaked: " .. driver.owned())
            return "ok"
        "#,
        );
        assert_eq!(r, Ok("ok".to_string()));
    }

    #[test]
    fn push_checks_the_block_before_taking_it() {
        let t = TestLua::new();
        let r = t.run(
            r#"
            local b, pool = driver.buffer(), {}
            local p, n = driver.str2p("abc")
            local ok, err = pcall(driver.push, b, pool, p, 4)
            assert(not ok and err:find("invalid message size 4 (the block has 3 bytes)", 1, true), err)
            ok, err = pcall(driver.push, b, pool, p, -1)
            assert(not ok and err:find("invalid message size -1", 1, true), err)
            assert(driver.owned() == 1, "a refused block stays the service's")
            driver.drop(p, n)
            ok, err = pcall(driver.push, b, pool, p, n)
            assert(not ok and err:find("need message block at param 3", 1, true), err)
            assert(driver.readall(b, pool) == "")
            return "ok"
        "#,
        );
        assert_eq!(r, Ok("ok".to_string()));
    }

    #[test]
    fn unpack_hands_data_blocks_over() {
        let t = TestLua::new();
        let r = t.run(
            r#"
            local msg, sz = driver.event(1, 7, 5, "hello")
            local ty, id, ud, data = driver.unpack(msg, sz)
            assert(ty == 1 and id == 7 and ud == 5 and type(data) == "userdata")
            assert(data == msg, "the message block itself carries the data")
            local b, pool = driver.buffer(), {}
            assert(driver.push(b, pool, data, ud) == 5)
            assert(driver.owned() == 0)
            assert(driver.readall(b, pool) == "hello")
            local m2, s2 = driver.event(2, 3, 8001, "127.0.0.1")
            local t2, i2, u2, d2 = driver.unpack(m2, s2)
            assert(t2 == 2 and i2 == 3 and u2 == 8001 and d2 == "127.0.0.1")
            driver.drop(m2, s2)
            local m3, s3 = driver.event(3, 3, 0, "")
            assert(select(4, driver.unpack(m3, s3)) == "")
            driver.drop(m3, s3)
            local m4, s4 = driver.event(6, 9, 2, "hi", "\1\0\80\127\0\0\1")
            local t4, i4, u4, d4, a4 = driver.unpack(m4, s4)
            assert(t4 == 6 and u4 == 2 and type(d4) == "userdata" and #a4 == 7)
            local ip, port = driver.udp_address(a4)
            assert(ip == "127.0.0.1" and port == 80, ip .. port)
            assert(driver.readall((function() local bb = driver.buffer(); driver.push(bb, pool, d4, u4); return bb end)(), pool) == "hi")
            assert(not pcall(driver.udp_address, "\1\0"))
            assert(not pcall(driver.unpack, driver.str2p("garbage")))
            return "ok"
        "#,
        );
        assert_eq!(r, Ok("ok".to_string()));
    }
}
