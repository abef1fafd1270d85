//! `skynet.socketdriver`: the native half of `skynet.socket`. Argument
//! conventions, results and error texts follow skynet's lua-socket.c.
//!
//! Buffer operations work on a socket buffer (full userdata holding a
//! [`SockBuf`]) and on data blocks (lightuserdata + size, owned by the service
//! through `Shared.buffers`); the second argument of the buffer operations is
//! skynet's node pool table, which is only type-checked here. Context
//! operations talk to the node's socket server ([`crate::socket::global`]) on
//! behalf of this service.
//!
//! Every `l*` function is a Lua C function: Lua calls it with `l`, the
//! running state, whose upvalue 1 is the service's [`Shared`] (set by
//! `open_bound`), which outlives the state. The SAFETY notes name what else
//! each step relies on. Nothing with a destructor is alive across a call that
//! may raise (a Lua error is a longjmp); Rust text pushed as a result may
//! raise only out of memory, which leaks it (tolerated). Lua code may run
//! inside any call that allocates (a GC step runs finalizers, which may call
//! these functions on the same buffer): no Rust reference into a socket
//! buffer, the service's blocks or its scratch is used after such a call;
//! they are borrowed again, and bytes are pushed from raw pointers
//! (lua_pushlstring copies them before it can run a GC step).

use super::lua::*;
use super::{block, shared, Shared};
use crate::socket::buffer::SockBuf;
use crate::socket::{self, addr, event, SocketServer};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::mem::ManuallyDrop;

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
    // SAFETY: `l` is live (contract); open_bound raises if the registry has
    // no `skynet_context`.
    unsafe { open_bound(l, FUNCS) }
}

fn server() -> &'static SocketServer {
    socket::global()
}

/// Pushes `len` bytes at `ptr` as a string.
///
/// # Safety
/// `l` is the calling state; the bytes are readable now. They may be freed
/// by Lua code run during the call: lua_pushlstring copies them first (GC
/// steps, and with them finalizers, come after the copy), and a raw pointer
/// holds no Rust borrow across that.
unsafe fn push_copy(l: State, ptr: *const u8, len: usize) {
    // SAFETY: as the contract says.
    unsafe { lua_pushlstring(l, ptr as *const c_char, len) };
}

// ------------------------------------------------------------------ buffers

unsafe extern "C-unwind" fn sockbuf_gc(l: State) -> c_int {
    // SAFETY: Lua calls __gc with the object at index 1; luaL_testudata
    // gives its block only if it is a socket buffer (our metatable), which
    // holds an initialized SockBuf (lbuffer writes one before setting the
    // metatable, and this function leaves one).
    unsafe {
        let p = luaL_testudata(l, 1, SB_META.as_ptr()) as *mut SockBuf;
        if !p.is_null() {
            std::ptr::drop_in_place(p);
            // stays valid (and empty) should the object be resurrected, or
            // __gc be called again from Lua
            std::ptr::write(p, SockBuf::new());
        }
    }
    0
}

unsafe extern "C-unwind" fn lbuffer(l: State) -> c_int {
    // SAFETY: lua_newuserdatauv returns a fresh block of the size asked,
    // aligned for any object (Lua's LUAI_MAXALIGN covers SockBuf's
    // pointers and integers), which is initialized before the metatable
    // (and with it __gc) is set; the userdata is on the stack meanwhile.
    unsafe {
        let p = lua_newuserdatauv(l, std::mem::size_of::<SockBuf>(), 0) as *mut SockBuf;
        std::ptr::write(p, SockBuf::new());
        if luaL_newmetatable(l, SB_META.as_ptr()) != 0 {
            lua_pushcfunction(l, sockbuf_gc);
            lua_setfield(l, -2, c"__gc".as_ptr());
        }
        lua_setmetatable(l, -2);
    }
    1
}

/// The socket buffer at `idx`, or a Lua error `err`. The pointer stays valid
/// while the buffer is on the stack (an argument: for the whole call); take
/// a `&mut` from it only between Lua calls that may run Lua code.
///
/// # Safety
/// `l` is the calling state.
unsafe fn sockbuf(l: State, idx: c_int, err: &str) -> *mut SockBuf {
    // SAFETY: luaL_testudata gives the block only for our metatable: an
    // initialized SockBuf (see lbuffer); raise_here drops its message.
    unsafe {
        let p = luaL_testudata(l, idx, SB_META.as_ptr()) as *mut SockBuf;
        if p.is_null() {
            raise_here(l, err.to_string());
        }
        p
    }
}

/// Pushes the first `n` bytes of the buffer as a string and consumes
/// `consume` bytes (`n <= consume <= size`).
///
/// # Safety
/// `l` is the calling state, `sh` its `Shared`, `sb` from [`sockbuf`]; no
/// reference into the buffer or the scratch is alive.
unsafe fn push_front(l: State, sh: &Shared, sb: *mut SockBuf, n: usize, consume: usize) {
    // SAFETY: no other reference to the buffer or the scratch is alive
    // (contract); both borrows end with the block.
    let (ptr, len) = unsafe {
        let s = (*sb).peek(n, &mut *sh.scratch.get());
        (s.as_ptr(), s.len())
    };
    // SAFETY: the bytes are in the buffer's first block or the scratch,
    // untouched since (push_copy's contract).
    unsafe { push_copy(l, ptr, len) };
    // SAFETY: fresh borrows after the push: a finalizer it ran may have used
    // the buffer or the scratch, but none is using them now. Should one
    // have read from this buffer, less may be left than `consume`.
    unsafe {
        let scratch = &mut *sh.scratch.get();
        scratch.clear();
        if scratch.capacity() > SCRATCH_KEEP {
            *scratch = Vec::with_capacity(256);
        }
        let sb = &mut *sb;
        sb.consume(consume.min(sb.size()));
    }
}

/// push(buffer, pool, msg, sz) → size: the buffer takes the data block over.
unsafe extern "C-unwind" fn lpush(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); the arguments
    // are checked in skynet's order, each check raising with nothing to
    // drop.
    let (sh, sb, p, sz) = unsafe {
        let sh = shared(l);
        let sb = sockbuf(l, 1, "need buffer object at param 1");
        let p = lua_touserdata(l, 3) as usize;
        if p == 0 {
            raise_here(l, "need message block at param 3".to_string());
        }
        luaL_checktype(l, 2, LUA_TTABLE);
        (sh, sb, p, luaL_checkinteger(l, 4))
    };
    // SAFETY: the only borrow of the service's buffers; no Lua call while
    // it lives, except the raise, after which it is not used.
    let bufs = unsafe { &mut *sh.buffers.get() };
    let sz = match block::check_own_block(bufs, p, sz) {
        Ok(sz) => sz,
        // SAFETY: nothing with a destructor is alive (the text is moved).
        Err(e) => unsafe { raise_here(l, e.text("need message block at param 3")) },
    };
    let block = block::take_own_block(bufs, p, sz);
    // SAFETY: the buffer is argument 1 (alive); no other reference to it is
    // alive and no Lua call happens while this one lives.
    let size = unsafe { (*sb).push(block) };
    // SAFETY: pushing an integer uses a free slot and does not raise.
    unsafe { lua_pushinteger(l, size as lua_Integer) };
    1
}

/// pop(buffer, pool, sz) → string | nil, size
unsafe extern "C-unwind" fn lpop(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared; the checks raise with
    // nothing to drop.
    let (sh, sb, sz) = unsafe {
        let sh = shared(l);
        let sb = sockbuf(l, 1, "Need buffer object at param 1");
        luaL_checktype(l, 2, LUA_TTABLE);
        (sh, sb, luaL_checkinteger(l, 3))
    };
    // SAFETY: the buffer is argument 1; this borrow ends with the statement.
    let size = unsafe { (*sb).size() };
    if sz <= 0 || sz as usize > size {
        // SAFETY: pushing nil does not raise.
        unsafe { lua_pushnil(l) };
    } else {
        // SAFETY: no reference into the buffer or the scratch is alive.
        unsafe { push_front(l, sh, sb, sz as usize, sz as usize) };
    }
    // SAFETY: a fresh borrow of the buffer (argument 1) after the push;
    // pushing an integer does not raise.
    unsafe { lua_pushinteger(l, (*sb).size() as lua_Integer) };
    2
}

/// readall(buffer, pool) → string (everything buffered)
unsafe extern "C-unwind" fn lreadall(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared; the checks raise with
    // nothing to drop; the size is read through a borrow that ends at once,
    // and push_front finds no reference alive.
    unsafe {
        let sh = shared(l);
        let sb = sockbuf(l, 1, "Need buffer object at param 1");
        luaL_checktype(l, 2, LUA_TTABLE);
        let n = (*sb).size();
        push_front(l, sh, sb, n, n);
    }
    1
}

/// clear(buffer, pool); a nil buffer is ignored.
unsafe extern "C-unwind" fn lclear(l: State) -> c_int {
    // SAFETY: lua_isnil accepts any index; the checks raise with nothing to
    // drop; the buffer (argument 1) is borrowed once no Lua call is left.
    unsafe {
        if lua_isnil(l, 1) != 0 {
            return 0;
        }
        let sb = sockbuf(l, 1, "Need buffer object at param 1");
        luaL_checktype(l, 2, LUA_TTABLE);
        (*sb).clear();
    }
    0
}

/// readline(buffer, pool | nil, sep): with a pool, removes and returns the text
/// before `sep`; without, only tells (true) whether a line is there.
unsafe extern "C-unwind" fn lreadline(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared; the checks raise with
    // nothing to drop; `sep` is argument 3's bytes, valid while it is on the
    // stack (for the whole call).
    let (sh, sb, check, sep) = unsafe {
        let sh = shared(l);
        let sb = sockbuf(l, 1, "Need buffer object at param 1");
        let check = lua_istable(l, 2) == 0;
        (sh, sb, check, check_bytes(l, 3))
    };
    // SAFETY: the buffer is argument 1; this borrow ends with the statement.
    let Some(at) = (unsafe { (*sb).find(sep) }) else {
        return 0;
    };
    if check {
        // SAFETY: pushing a boolean does not raise.
        unsafe { lua_pushboolean(l, 1) };
    } else {
        // SAFETY: no reference into the buffer or the scratch is alive.
        unsafe { push_front(l, sh, sb, at, at + sep.len()) };
    }
    1
}

/// drop(msg, sz): frees a data block.
unsafe extern "C-unwind" fn ldrop(l: State) -> c_int {
    // SAFETY: lua_touserdata accepts any index; luaL_checkinteger raises with
    // nothing to drop; the borrow of the service's buffers is the only one
    // and ends with the statement (the block is dropped after it, with no
    // Lua call).
    unsafe {
        let p = lua_touserdata(l, 1) as usize;
        luaL_checkinteger(l, 2);
        if p != 0 {
            drop((*shared(l).buffers.get()).take(p));
        }
    }
    0
}

/// str2p(str) → msg, sz: a data block holding a copy of the string.
unsafe extern "C-unwind" fn lstr2p(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared; check_bytes raises with
    // nothing to drop, and its bytes (argument 1) are copied before any
    // other Lua call.
    let (sh, s) = unsafe { (shared(l), check_bytes(l, 1)) };
    let len = s.len();
    // SAFETY: the only borrow of the buffers; it ends with the statement.
    let p = unsafe { (*sh.buffers.get()).insert(s.to_vec()) };
    // SAFETY: two pushes of plain values use free slots and do not raise.
    unsafe {
        lua_pushlightuserdata(l, p as *mut c_void);
        lua_pushinteger(l, len as lua_Integer);
    }
    2
}

/// header(str) → integer: 1 to 4 bytes, big endian.
unsafe extern "C-unwind" fn lheader(l: State) -> c_int {
    // SAFETY: check_bytes raises with nothing to drop; the bytes are
    // argument 1's.
    let s = unsafe { check_bytes(l, 1) };
    if s.is_empty() || s.len() > 4 {
        let msg = format!("Invalid read {}", String::from_utf8_lossy(s));
        // SAFETY: only the message is alive, and raise_here drops it.
        unsafe { raise_here(l, msg) };
    }
    let v = s.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
    // SAFETY: pushing an integer does not raise.
    unsafe { lua_pushinteger(l, v as lua_Integer) };
    1
}

/// Sets `t[key] = v` on the table on the top.
///
/// # Safety
/// `l` is the calling state with a table on the top.
unsafe fn set_int(l: State, key: &CStr, v: i64) {
    // SAFETY: the table is at -2 once the value is pushed (contract).
    unsafe {
        lua_pushinteger(l, v as lua_Integer);
        lua_setfield(l, -2, key.as_ptr());
    }
}

/// As [`set_int`], for a boolean.
///
/// # Safety
/// As [`set_int`].
unsafe fn set_bool(l: State, key: &CStr, v: bool) {
    // SAFETY: the table is at -2 once the value is pushed (contract).
    unsafe {
        lua_pushboolean(l, v as c_int);
        lua_setfield(l, -2, key.as_ptr());
    }
}

/// As [`set_int`], for text.
///
/// # Safety
/// As for [`set_int`].
unsafe fn set_str(l: State, key: &CStr, v: &str) {
    // SAFETY: the table is at -2 once the value is pushed (contract).
    unsafe {
        push_str(l, v);
        lua_setfield(l, -2, key.as_ptr());
    }
}

/// info() → list of { id, address (owner), type, read, write, wbuffer, rtime,
/// wtime, reading, writing, peer (TCP) | sock (UDP, LISTEN), accept (LISTEN) }
unsafe extern "C-unwind" fn linfo(l: State) -> c_int {
    let list = server().info();
    // SAFETY: each entry's table is on the top while its fields are set,
    // then stored in the list table below it; the calls may raise only out
    // of memory, which leaks `list` (tolerated, module doc).
    unsafe {
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
                set_bool(l, c"reading", si.reading);
                set_bool(l, c"writing", si.wbuffer > 0);
                if !si.name.is_empty() {
                    set_str(l, key, &si.name);
                }
            }
            lua_rawseti(l, -2, (i + 1) as lua_Integer);
        }
    }
    1
}

/// unpack(msg, sz) → type, id, ud, data [, udp_address]. For DATA and UDP
/// events `data` is a data block: the message block itself, cut to the data,
/// which the service now owns.
unsafe extern "C-unwind" fn lunpack(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared; lua_touserdata accepts any
    // index; luaL_checkinteger raises with nothing to drop.
    let (sh, p, sz) = unsafe {
        (
            shared(l),
            lua_touserdata(l, 1) as usize,
            luaL_checkinteger(l, 2),
        )
    };
    // SAFETY: the only borrow of the service's buffers; it ends with the
    // statement (the header is plain data).
    let header = unsafe {
        match (*sh.buffers.get()).get(p) {
            Some(b) if sz >= 0 && sz as usize <= b.len() => event::decode_header(&b[..sz as usize]),
            _ => None,
        }
    };
    let Some(h) = header else {
        // SAFETY: nothing with a destructor is alive.
        unsafe { raise_here(l, "invalid socket message".to_string()) };
    };
    // SAFETY: pushing integers uses free slots and does not raise.
    unsafe {
        lua_pushinteger(l, h.kind as lua_Integer);
        lua_pushinteger(l, h.id as lua_Integer);
        lua_pushinteger(l, h.ud as lua_Integer);
    }
    // The block holds the header's lengths (decode_header checked them); a
    // pointer into it is read before any Lua code can run.
    let part = |from: usize, to: usize| -> (*const u8, usize) {
        // SAFETY: the only borrow of the buffers; it ends in the closure.
        match unsafe { (*sh.buffers.get()).get(p) } {
            Some(b) if to <= b.len() => (b[from..to].as_ptr(), to - from),
            _ => (std::ptr::null(), 0),
        }
    };
    if !event::carries_block(h.kind) {
        let (ptr, len) = part(0, h.body_len);
        // SAFETY: the bytes are the block's, untouched since `part`.
        unsafe { push_copy(l, ptr, len) };
        return 4;
    }
    let with_address = h.kind == event::kind::UDP;
    if with_address {
        let (ptr, len) = part(h.body_len, h.body_len + h.extra_len);
        // SAFETY: as above.
        unsafe { push_copy(l, ptr, len) };
    }
    // No Lua error past this point: the block changes hands. (A finalizer
    // run by the push above may have taken it: then the data is empty.)
    // SAFETY: a fresh borrow of the buffers after the push, the only one; it
    // ends with the block.
    let data = unsafe {
        let bufs = &mut *sh.buffers.get();
        let block = block::take_own_block(bufs, p, h.body_len);
        bufs.insert(block)
    };
    // SAFETY: pushing a pointer does not raise; lua_insert moves the data
    // below the address pushed before it.
    unsafe {
        lua_pushlightuserdata(l, data as *mut c_void);
        if with_address {
            lua_insert(l, -2);
        }
    }
    if with_address {
        5
    } else {
        4
    }
}

// ------------------------------------------------------------------ context

/// skynet's address forms: "host:port", "[v6]:port", or host plus port at
/// `port_idx`. Returns (host, port); the port is 0 when absent or invalid.
///
/// # Safety
/// `l` is the calling state; `addr` stays valid while it runs (an
/// argument's bytes).
unsafe fn address_port(l: State, addr: &[u8], port_idx: c_int) -> (&[u8], i64) {
    // SAFETY: lua_isnoneornil accepts any index; luaL_optinteger raises
    // with nothing to drop.
    unsafe {
        if lua_isnoneornil(l, port_idx) == 0 {
            return (addr, luaL_optinteger(l, port_idx, 0));
        }
    }
    let invalid = || format!("Invalid address {}.", String::from_utf8_lossy(addr));
    // SAFETY (each raise below): only the message is alive, and raise_here
    // drops it before the longjmp.
    let (host, rest) = if let Some(open) = addr.iter().position(|b| *b == b'[') {
        let Some(close) = addr.iter().position(|b| *b == b']') else {
            // SAFETY: see above.
            unsafe { raise_here(l, invalid()) };
        };
        if close < open {
            // SAFETY: see above.
            unsafe { raise_here(l, invalid()) };
        }
        let Some(colon) = addr[close + 1..].iter().position(|b| *b == b':') else {
            // SAFETY: see above.
            unsafe { raise_here(l, invalid()) };
        };
        (&addr[open + 1..close], &addr[close + 1 + colon + 1..])
    } else {
        let Some(colon) = addr.iter().position(|b| *b == b':') else {
            // SAFETY: see above.
            unsafe { raise_here(l, invalid()) };
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

/// Pushes the id of a new socket, or raises `err` if there is none.
///
/// # Safety
/// `l` is the calling state; nothing with a destructor is alive in the
/// caller.
unsafe fn push_id_or_raise(l: State, id: Option<i32>, err: &str) -> c_int {
    // SAFETY: pushing an integer does not raise; raise_here drops its
    // message, and the caller has nothing else to drop (contract).
    unsafe {
        match id {
            Some(id) => {
                lua_pushinteger(l, id as lua_Integer);
                1
            }
            None => raise_here(l, err.to_string()),
        }
    }
}

/// connect(addr [, port]) → id
unsafe extern "C-unwind" fn lconnect(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared; the argument reads raise
    // with nothing to drop, and the address bytes stay on the stack.
    let (sh, host, port) = unsafe {
        let sh = shared(l);
        let (host, port) = address_port(l, check_bytes(l, 1), 2);
        (sh, host, port)
    };
    let port = match port_of(port) {
        Some(p) if p != 0 => p,
        // SAFETY: nothing with a destructor is alive.
        _ => unsafe { raise_here(l, "Invalid port".to_string()) },
    };
    let id = server().connect(sh.handle, &text(host), port);
    // SAFETY: pushing an integer does not raise.
    unsafe { lua_pushinteger(l, id as lua_Integer) };
    1
}

unsafe extern "C-unwind" fn lclose(l: State) -> c_int {
    // SAFETY: luaL_checkinteger raises with nothing to drop; upvalue 1 is
    // the service's Shared.
    let (id, sh) = unsafe { (luaL_checkinteger(l, 1) as i32, shared(l)) };
    server().close(sh.handle, id);
    0
}

unsafe extern "C-unwind" fn lshutdown(l: State) -> c_int {
    // SAFETY: as in lclose.
    let (id, sh) = unsafe { (luaL_checkinteger(l, 1) as i32, shared(l)) };
    server().shutdown(sh.handle, id);
    0
}

/// listen(host, port [, backlog]) or listen("host:port") → id; "Listen
/// error" on failure.
unsafe extern "C-unwind" fn llisten(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared; the argument reads raise
    // with nothing to drop, and the host bytes stay on the stack.
    let (sh, host, port, backlog) = unsafe {
        let sh = shared(l);
        let (host, port) = address_port(l, check_bytes(l, 1), 2);
        (sh, host, port, luaL_optinteger(l, 3, BACKLOG))
    };
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
    // SAFETY: nothing with a destructor is alive.
    unsafe { push_id_or_raise(l, r, "Listen error") }
}

/// What a send argument designates, validated, before anything changes hands.
enum Payload {
    /// Bytes of an argument (a string or full userdata): valid while it is
    /// on the stack.
    Bytes(*const u8, usize),
    /// One of the service's blocks, checked: (address, size).
    Block(usize, usize),
    /// A table's strings, gathered into a buffer of this call's own (a
    /// ManuallyDrop: see [`gather_strings`]).
    Gathered(ManuallyDrop<Vec<u8>>),
}

/// The strings of the table at `idx`, concatenated. The shared scratch is
/// taken out for the gathering: the `__index` metamethods that lua_geti may
/// call can run any Lua code, sends included, and would otherwise write into
/// it meanwhile. A Lua error leaks the buffer (ManuallyDrop: no destructor
/// may be pending across the longjmp); the next user of the scratch starts a
/// new one.
///
/// # Safety
/// `l` is the calling state, `sh` its `Shared`, with no reference into the
/// scratch alive.
unsafe fn gather_strings(l: State, sh: &Shared, idx: c_int) -> ManuallyDrop<Vec<u8>> {
    // SAFETY: this thread runs the service; the borrow ends with the
    // statement.
    let mut buf = ManuallyDrop::new(std::mem::take(unsafe { &mut *sh.scratch.get() }));
    buf.clear();
    let mut i: lua_Integer = 1;
    // SAFETY: lua_geti pushes t[i] (a Lua error out of it leaks only `buf`,
    // above); the value's bytes are copied before it is popped; `buf` is
    // this call's own, out of reach of Lua code.
    unsafe {
        while lua_geti(l, idx, i) != LUA_TNIL {
            let t = lua_type(l, -1);
            if t != LUA_TSTRING && t != LUA_TNUMBER {
                give_scratch_back(sh, buf);
                raise_here(l, "Invalid strings table".to_string());
            }
            buf.extend_from_slice(to_bytes(l, -1).unwrap_or(&[]));
            lua_pop(l, 1);
            i += 1;
        }
        lua_pop(l, 1);
    }
    buf
}

/// Makes `buf` (emptied) the shared scratch again; the one it replaces
/// (empty, or made by Lua code run meanwhile) is dropped.
fn give_scratch_back(sh: &Shared, mut buf: ManuallyDrop<Vec<u8>>) {
    buf.clear();
    if buf.capacity() > SCRATCH_KEEP {
        *buf = Vec::with_capacity(256);
    }
    // SAFETY: this thread runs the service; no other borrow of the scratch
    // is alive (callers hold none).
    unsafe { *sh.scratch.get() = ManuallyDrop::into_inner(buf) };
}

/// skynet's `get_buffer`: a string, a data block (lightuserdata + size), a
/// full userdata (its bytes, or the first `sz`), or a table of strings.
///
/// # Safety
/// `l` is the calling state, `sh` its `Shared`, with no reference into its
/// buffers or scratch alive.
unsafe fn get_buffer(l: State, sh: &Shared, idx: c_int) -> Payload {
    // SAFETY: lua_type accepts any index.
    match unsafe { lua_type(l, idx) } {
        LUA_TUSERDATA => {
            // SAFETY: a full userdata: lua_touserdata gives its block of
            // lua_rawlen bytes (valid while it is an argument); the size is
            // checked against that length before use.
            unsafe {
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
        }
        LUA_TLIGHTUSERDATA => {
            // SAFETY: plain reads of arguments.
            let (p, sz) = unsafe {
                let p = lua_touserdata(l, idx) as usize;
                let sz = if lua_isinteger(l, idx + 1) != 0 {
                    lua_tointegerx(l, idx + 1, std::ptr::null_mut())
                } else {
                    -1
                };
                (p, sz)
            };
            // SAFETY (each raise below): nothing with a destructor is alive;
            // the text is moved into raise_here, which drops it.
            if sz < 0 {
                // SAFETY: see above.
                unsafe { raise_here(l, "socket object buffers are not supported".to_string()) };
            }
            if p == 0 {
                if sz == 0 {
                    return Payload::Bytes(std::ptr::null(), 0);
                }
                // SAFETY: see above.
                unsafe { raise_here(l, "invalid message block (null)".to_string()) };
            }
            // SAFETY: the only borrow of the buffers; it ends with the
            // statement.
            let checked = block::check_own_block(unsafe { &*sh.buffers.get() }, p, sz);
            match checked {
                Ok(sz) => Payload::Block(p, sz),
                // SAFETY: see above.
                Err(e) => unsafe {
                    raise_here(
                        l,
                        e.text("invalid message block (not owned by this service)"),
                    )
                },
            }
        }
        // SAFETY: no reference into the scratch is alive (contract).
        LUA_TTABLE => Payload::Gathered(unsafe { gather_strings(l, sh, idx) }),
        _ => {
            // SAFETY: check_bytes raises with nothing to drop; the bytes are
            // the argument's, valid while it is on the stack.
            let b = unsafe { check_bytes(l, idx) };
            Payload::Bytes(b.as_ptr(), b.len())
        }
    }
}

/// The bytes to send (taking a data block over). No Lua call happens here.
///
/// # Safety
/// `p` comes from [`get_buffer`] in this call, with no Lua call since; no
/// reference into `sh`'s buffers or scratch is alive.
unsafe fn payload_bytes(sh: &Shared, p: Payload) -> Vec<u8> {
    match p {
        Payload::Bytes(_, 0) => Vec::new(),
        // SAFETY: the argument's bytes, still on the stack (contract).
        Payload::Bytes(ptr, n) => unsafe { std::slice::from_raw_parts(ptr, n) }.to_vec(),
        // SAFETY: the only borrow of the buffers; the block was checked
        // (contract).
        Payload::Block(a, n) => block::take_own_block(unsafe { &mut *sh.buffers.get() }, a, n),
        Payload::Gathered(buf) => {
            let v = buf.as_slice().to_vec();
            give_scratch_back(sh, buf);
            v
        }
    }
}

/// send and lsend: (id, buffer...) → boolean.
///
/// # Safety
/// `l` is the state calling a function of this module.
unsafe fn send_common(l: State, high: bool) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared; luaL_checkinteger raises
    // with nothing to drop; get_buffer then payload_bytes with no Lua call
    // in between, and no reference into the service's state alive.
    let (id, data) = unsafe {
        let sh = shared(l);
        let id = luaL_checkinteger(l, 1) as i32;
        let p = get_buffer(l, sh, 2);
        (id, payload_bytes(sh, p))
    };
    let ok = server().send(id, data, high);
    // SAFETY: pushing a boolean does not raise.
    unsafe { lua_pushboolean(l, ok as c_int) };
    1
}

/// send(id, buffer...) → boolean (high priority)
unsafe extern "C-unwind" fn lsend(l: State) -> c_int {
    // SAFETY: Lua calls it as a function of this module.
    unsafe { send_common(l, true) }
}

/// lsend(id, buffer...) → boolean (low priority)
unsafe extern "C-unwind" fn llsend(l: State) -> c_int {
    // SAFETY: Lua calls it as a function of this module.
    unsafe { send_common(l, false) }
}

/// bind(fd) → id
unsafe extern "C-unwind" fn lbind(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared; luaL_checkinteger raises
    // with nothing to drop.
    let (sh, fd) = unsafe { (shared(l), luaL_checkinteger(l, 1) as i32) };
    let id = server().bind(sh.handle, fd);
    // SAFETY: pushing an integer does not raise.
    unsafe { lua_pushinteger(l, id as lua_Integer) };
    1
}

unsafe extern "C-unwind" fn lstart(l: State) -> c_int {
    // SAFETY: as in lclose.
    let (id, sh) = unsafe { (luaL_checkinteger(l, 1) as i32, shared(l)) };
    server().start(sh.handle, id);
    0
}

unsafe extern "C-unwind" fn lpause(l: State) -> c_int {
    // SAFETY: luaL_checkinteger raises with nothing to drop.
    let id = unsafe { luaL_checkinteger(l, 1) } as i32;
    server().pause(id);
    0
}

unsafe extern "C-unwind" fn lnodelay(l: State) -> c_int {
    // SAFETY: luaL_checkinteger raises with nothing to drop.
    let id = unsafe { luaL_checkinteger(l, 1) } as i32;
    server().nodelay(id);
    0
}

/// udp([addr [, port]]) → id
unsafe extern "C-unwind" fn ludp(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared; lua_type accepts any index,
    // and to_bytes is read only for a string or number (converted in
    // place, which stays on the stack); address_port raises with nothing to
    // drop.
    let (sh, addr) = unsafe {
        let sh = shared(l);
        let t = lua_type(l, 1);
        let addr = if t == LUA_TSTRING || t == LUA_TNUMBER {
            to_bytes(l, 1).map(|a| address_port(l, a, 2))
        } else {
            None
        };
        (sh, addr)
    };
    let r = match addr {
        Some((host, port)) => match port_of(port) {
            Some(p) => server().udp(sh.handle, Some(&text(host)), p).ok(),
            None => None,
        },
        None => server().udp(sh.handle, None, 0).ok(),
    };
    // SAFETY: nothing with a destructor is alive.
    unsafe { push_id_or_raise(l, r, "udp init failed") }
}

/// udp_connect(id, addr [, port]): sets the default destination.
unsafe extern "C-unwind" fn ludp_connect(l: State) -> c_int {
    // SAFETY: the argument reads raise with nothing to drop; the address
    // bytes stay on the stack.
    let (id, host, port) = unsafe {
        let id = luaL_checkinteger(l, 1) as i32;
        let (host, port) = address_port(l, check_bytes(l, 2), 3);
        (id, host, port)
    };
    let ok = match port_of(port) {
        Some(p) => server().udp_connect(id, &text(host), p).is_ok(),
        None => false,
    };
    if !ok {
        // SAFETY: nothing with a destructor is alive.
        unsafe { raise_here(l, "udp connect failed".to_string()) };
    }
    0
}

/// udp_dial(addr [, port]) → id: a UDP socket connected to addr.
unsafe extern "C-unwind" fn ludp_dial(l: State) -> c_int {
    // SAFETY: as in lconnect.
    let (sh, host, port) = unsafe {
        let sh = shared(l);
        let (host, port) = address_port(l, check_bytes(l, 1), 2);
        (sh, host, port)
    };
    let r = port_of(port).and_then(|p| server().udp_dial(sh.handle, &text(host), p).ok());
    // SAFETY: nothing with a destructor is alive.
    unsafe { push_id_or_raise(l, r, "udp dial host failed") }
}

/// udp_listen(addr [, port]) → id: a UDP socket bound to addr.
unsafe extern "C-unwind" fn ludp_listen(l: State) -> c_int {
    // SAFETY: as in lconnect.
    let (sh, host, port) = unsafe {
        let sh = shared(l);
        let (host, port) = address_port(l, check_bytes(l, 1), 2);
        (sh, host, port)
    };
    let r = port_of(port).and_then(|p| server().udp_listen(sh.handle, &text(host), p).ok());
    // SAFETY: nothing with a destructor is alive.
    unsafe { push_id_or_raise(l, r, "udp listen host failed") }
}

/// udp_send(id, address, buffer...) → boolean
unsafe extern "C-unwind" fn ludp_send(l: State) -> c_int {
    // SAFETY: as in send_common; the address bytes (argument 2) stay on the
    // stack until this function returns.
    let (id, address, data) = unsafe {
        let sh = shared(l);
        let id = luaL_checkinteger(l, 1) as i32;
        let address = check_bytes(l, 2);
        let p = get_buffer(l, sh, 3);
        (id, address, payload_bytes(sh, p))
    };
    let ok = server().udp_send(id, address, data);
    // SAFETY: pushing a boolean does not raise.
    unsafe { lua_pushboolean(l, ok as c_int) };
    1
}

/// udp_address(blob) → ip, port
unsafe extern "C-unwind" fn ludp_address(l: State) -> c_int {
    // SAFETY: check_bytes raises with nothing to drop.
    let b = unsafe { check_bytes(l, 1) };
    let a = match b.len() {
        7 | 19 => addr::blob_to_addr(b).filter(|a| a.is_ipv4() == (b.len() == 7)),
        _ => None,
    };
    let Some(a) = a else {
        // SAFETY: nothing with a destructor is alive.
        unsafe { raise_here(l, "Invalid udp address".to_string()) };
    };
    // SAFETY: the pushes may raise only out of memory (tolerated, module
    // doc).
    unsafe {
        push_str(l, &a.ip().to_string());
        lua_pushinteger(l, a.port() as lua_Integer);
    }
    2
}

/// resolve(host) → { address strings }
unsafe extern "C-unwind" fn lresolve(l: State) -> c_int {
    // SAFETY: check_bytes raises with nothing to drop.
    let host = unsafe { check_bytes(l, 1) };
    let r = addr::resolve(&text(host), 0);
    let list = match r {
        Ok(v) => v,
        // SAFETY: only the error text is alive, and raise_here drops it.
        Err(e) => unsafe { raise_here(l, e) },
    };
    // SAFETY: the list table is below each string pushed; the calls may
    // raise only out of memory, which leaks `list` (tolerated, module doc).
    unsafe {
        lua_createtable(l, list.len() as c_int, 0);
        for (i, a) in list.iter().enumerate() {
            push_str(l, &a.ip().to_string());
            lua_rawseti(l, -2, (i + 1) as lua_Integer);
        }
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
        // SAFETY: upvalue 1 is the test's Shared; the checks raise before
        // anything with a destructor exists; the argument bytes are copied
        // at once.
        let (sh, k, id, ud, body, extra) = unsafe {
            let sh = shared(l);
            let k = luaL_checkinteger(l, 1) as u8;
            let id = luaL_checkinteger(l, 2) as i32;
            let ud = luaL_checkinteger(l, 3) as i32;
            let body = check_bytes(l, 4);
            (sh, k, id, ud, body, to_bytes(l, 5))
        };
        let msg = event::encode(k, id, ud, body.to_vec(), extra.unwrap_or(&[]));
        let sz = msg.len();
        // SAFETY: the only borrow of the buffers; it ends with the statement.
        let p = unsafe { (*sh.buffers.get()).insert(msg) };
        // SAFETY: pushes of plain values do not raise.
        unsafe {
            lua_pushlightuserdata(l, p as *mut c_void);
            lua_pushinteger(l, sz as lua_Integer);
        }
        2
    }

    /// The number of blocks the service owns.
    unsafe extern "C-unwind" fn owned(l: State) -> c_int {
        // SAFETY: upvalue 1 is the test's Shared; the borrow of its buffers
        // ends before the push, which does not raise.
        unsafe {
            let n = (*shared(l).buffers.get()).owned_count();
            lua_pushinteger(l, n as lua_Integer);
        }
        1
    }

    impl TestLua {
        fn new() -> TestLua {
            let shared = Shared::detached();
            // SAFETY: a new state of this test alone (checked non-null); the
            // functions' upvalue is `shared`, boxed and kept in the TestLua,
            // which closes the state before dropping it.
            unsafe {
                let l = luaL_newstate();
                assert!(!l.is_null());
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
            // SAFETY: the TestLua's live state, used on this thread; errors
            // are caught by lua_pcall, and the result is copied out.
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
            // SAFETY: the state is this TestLua's and is closed once, here,
            // before `shared` (which its functions reach) is dropped.
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
