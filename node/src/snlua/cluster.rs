//! `skynet.cluster.core`: the Lua face of the cluster wire format
//! ([`skynet_proto::cluster`]) with the API of skynet's lua-cluster.c, for
//! skynet's clusterd, clustersender and clusteragent.
//!
//! - `packrequest(addr, session, msg, sz)` / `packpush(...)` -> `packet,
//!   next_session[, pieces]`: `addr` a number or a name; `msg, sz` a message
//!   block, which is consumed (freed) as skynet does, or a string. A message
//!   of 32 KiB or more gives a begin packet and a table of pieces.
//! - `packtrace(tag)` -> packet.
//! - `unpackrequest(msg[, sz])` -> by kind: `addr, session, msg, sz[, nil,
//!   true]` (a push has session 0); `addr, session, nil, total, true,
//!   is_push` (a multipart begin); `false, session, msg, sz, more` (a
//!   piece); `tag` (a trace). `msg` is a new block of this service. The input
//!   (a string, or a block, which is not freed) has no size prefix.
//! - `packresponse(session, ok, msg[, sz])` -> packet, or a table of
//!   packets when an ok reply is over 32 KiB; an error is cut to 32 KiB. The
//!   message is not freed.
//! - `unpackresponse(body)` -> `session, ok, data[, more]`; a multipart
//!   begin gives `session, true, total, true`.
//! - `append(t, msg, sz)`: appends the block as a string and frees it; with
//!   `msg == nil` it appends `sz` itself (a multipart total).
//! - `concat(t)` -> `msg, sz`: joins `t[2..]` into a new block when their
//!   length is `t[1]`; nothing otherwise.
//! - `isname(addr)` -> true for a string starting with `@`, else nothing.
//! - `nodename()` -> host name (bytes up to space and non-ASCII as `_`)
//!   followed by the process id.
//!
//! Where skynet answers a malformed reply with no values, or crashes on a
//! null message with a size, this module raises an error naming the problem.

use super::block::{self, SharedBlock};
use super::lua::*;
use super::{shared, Shared};
use skynet_proto::cluster::{self as wire, Packet, Request, Response, ResponsePackets, Target};
use std::ffi::{c_int, c_void};

/// `require "skynet.cluster.core"`
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: `l` is the live state calling this loader; open_bound leaves
    // the module table on its stack.
    unsafe {
        open_bound(
            l,
            &[
                (c"packrequest", lpackrequest),
                (c"packpush", lpackpush),
                (c"packtrace", lpacktrace),
                (c"unpackrequest", lunpackrequest),
                (c"packresponse", lpackresponse),
                (c"unpackresponse", lunpackresponse),
                (c"append", lappend),
                (c"concat", lconcat),
                (c"isname", lisname),
                (c"nodename", lnodename),
            ],
        )
    }
}

/// Where the bytes of a message argument live, so they can be let go after.
#[derive(Clone, Copy)]
enum Source {
    /// A Lua string on the stack (or no bytes at all).
    Lua,
    /// One of the service's own blocks, lent until [`Message::finish`].
    Own(usize),
    /// A shared block (pinned until the message ends).
    Shared(usize),
}

/// A message argument: bytes valid until [`Message::finish`] (or the end
/// of the current message, if a Lua error cuts the call short), whatever Lua
/// code runs meanwhile.
#[derive(Clone, Copy)]
struct Message {
    ptr: *const u8,
    len: usize,
    source: Source,
}

impl Message {
    const EMPTY: Message = Message {
        ptr: std::ptr::null(),
        len: 0,
        source: Source::Lua,
    };

    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: (ptr, len) is a string on the stack, a lent block or a
        // pinned block, all valid until finish() (see the type's doc).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Ends the loan; with `consume`, frees the block as skynet's
    /// functions that take ownership of a message do.
    ///
    /// # Safety
    /// The service's thread, no borrow of its buffers alive, and the bytes
    /// are not used afterwards.
    unsafe fn finish(self, sh: &Shared, consume: bool) {
        match self.source {
            Source::Lua => {}
            Source::Own(p) => {
                // SAFETY: the only borrow of the buffers (contract); the
                // taken block is dropped here, after the loan ended.
                unsafe {
                    let bufs = &mut *sh.buffers.get();
                    bufs.end_loan(p);
                    if consume {
                        drop(bufs.take(p));
                    }
                }
            }
            Source::Shared(p) => {
                if consume {
                    SharedBlock::release_handed(p);
                }
            }
        }
    }
}

/// The block `p` with `sz` bytes (an argument pair), lent or pinned. Raises
/// a Lua error naming the problem for a bad pair.
///
/// # Safety
/// `l` is the calling state of a function of this module, `sh` its Shared.
unsafe fn block_message(l: State, sh: &Shared, p: usize, sz: lua_Integer, what: &str) -> Message {
    if sz == 0 {
        return Message::EMPTY;
    }
    if sz > 0 {
        // SAFETY: the only borrow of the buffers; it ends with the statement.
        if let Some((ptr, len)) = unsafe { (*sh.buffers.get()).lend(p, sz as usize) } {
            return Message {
                ptr,
                len,
                source: Source::Own(p),
            };
        }
    }
    // Not one of ours (or a bad size): a shared block, pinned, or an error.
    // SAFETY: the service's thread with no borrow of its buffers alive.
    match unsafe { block::block_at(sh, p, sz, what) } {
        Ok(b) => Message {
            ptr: b.as_ptr(),
            len: b.len(),
            source: Source::Shared(p),
        },
        // SAFETY: nothing with a destructor is alive; raise_here drops the text.
        Err(e) => unsafe { raise_here(l, e) },
    }
}

/// A message at `idx` as skynet's cluster functions take one: a string, or
/// a lightuserdata with its size at `idx + 1` (skynet's `pack` of nothing is
/// a null pointer with size 0). With `null_other`, any other value is read
/// as a null pointer (what C's `lua_touserdata` gives), else it is an error.
///
/// # Safety
/// As for [`block_message`].
unsafe fn message_arg(l: State, sh: &Shared, idx: c_int, what: &str, null_other: bool) -> Message {
    // SAFETY: lua_type accepts any index.
    let ty = unsafe { lua_type(l, idx) };
    if ty == LUA_TSTRING {
        // SAFETY: a string argument stays on the stack until return.
        let s = unsafe { to_bytes(l, idx) }.unwrap_or(&[]);
        return Message {
            ptr: s.as_ptr(),
            len: s.len(),
            source: Source::Lua,
        };
    }
    if ty != LUA_TLIGHTUSERDATA && !null_other {
        // SAFETY: nothing with a destructor is alive.
        unsafe {
            raise_here(
                l,
                format!(
                    "Invalid request message (need a string or a message pointer and size, got {})",
                    type_name(l, idx)
                ),
            )
        }
    }
    // SAFETY: lua_touserdata accepts any index (NULL for non-userdata);
    // luaL_checkinteger raises with nothing to drop.
    let (p, sz) = unsafe {
        (
            lua_touserdata(l, idx) as usize,
            luaL_checkinteger(l, idx + 1),
        )
    };
    if p == 0 && sz != 0 {
        // SAFETY: nothing with a destructor is alive.
        unsafe { raise_here(l, format!("{what}: null pointer with size {sz}")) }
    }
    // SAFETY: our contract is block_message's.
    unsafe { block_message(l, sh, p, sz, what) }
}

/// Pushes one packet as a Lua string.
///
/// # Safety
/// `l` is a live state; the packet's body stays valid across Lua calls.
unsafe fn push_packet(l: State, pkt: &Packet<'_>) {
    let n = pkt.wire_len();
    let head = pkt.head.as_bytes();
    let mut b = std::mem::MaybeUninit::<luaL_Buffer>::uninit();
    // SAFETY: luaL_buffinitsize initialises `b` with room for n bytes; we
    // write exactly n (head then body) and push them. `b` is a plain C
    // struct, so a raise from Lua's allocator leaks nothing of ours.
    unsafe {
        let p = luaL_buffinitsize(l, b.as_mut_ptr(), n) as *mut u8;
        std::ptr::copy_nonoverlapping(head.as_ptr(), p, head.len());
        std::ptr::copy_nonoverlapping(pkt.body.as_ptr(), p.add(head.len()), pkt.body.len());
        luaL_pushresultsize(b.as_mut_ptr(), n);
    }
}

/// Pushes the packets of `pieces` as a new array.
///
/// # Safety
/// As for [`push_packet`].
unsafe fn push_pieces<'a>(
    l: State,
    pieces: impl ExactSizeIterator<Item = Packet<'a>>,
    first: Option<Packet<'a>>,
) {
    let n = pieces.len() + first.is_some() as usize;
    // SAFETY: a table, then each packet pushed and moved into it; the
    // packets borrow bytes that stay valid (contract).
    unsafe {
        lua_createtable(l, n.min(c_int::MAX as usize) as c_int, 0);
        for (i, pkt) in first.into_iter().chain(pieces).enumerate() {
            push_packet(l, &pkt);
            lua_rawseti(l, -2, i as lua_Integer + 1);
        }
    }
}

/// Where a request goes, from argument 1 as skynet reads it: a number is an
/// address (cut to 32 bits; 0 when it has no integer value), anything else
/// must be a name.
///
/// # Safety
/// `l` is the calling state; a name borrows argument 1, on the stack until
/// return.
unsafe fn target_arg<'a>(l: State) -> Result<Target<'a>, String> {
    // SAFETY: lua_type / lua_tointegerx / to_bytes accept any index.
    unsafe {
        if lua_type(l, 1) == LUA_TNUMBER {
            return Ok(Target::Id(lua_tointegerx(l, 1, std::ptr::null_mut()) as u32));
        }
        match to_bytes(l, 1) {
            Some(name) => Ok(Target::Name(name)),
            None => Err(format!("name is not a string, it's a {}", type_name(l, 1))),
        }
    }
}

unsafe fn pack_request(l: State, push: bool) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (open_bound).
    let sh = unsafe { shared(l) };
    // SAFETY: this module's function on its own state.
    let msg = unsafe { message_arg(l, sh, 3, "packrequest", false) };
    // skynet reads the session as a C int: larger values wrap.
    // SAFETY: luaL_checkinteger raises with nothing to drop (a lent block
    // is given back when the message ends).
    let session = unsafe { luaL_checkinteger(l, 2) } as i32;
    let packets = if session <= 0 {
        Err(format!("Invalid request session {session}"))
    } else {
        // SAFETY: argument 1 stays on the stack until return.
        unsafe { target_arg(l) }.and_then(|target| {
            wire::request(target, session as u32, msg.bytes(), push).map_err(|e| e.to_string())
        })
    };
    let packets = match packets {
        Ok(p) => p,
        Err(e) => {
            // skynet frees the message on these errors too.
            // SAFETY: the bytes are not used after; raise_here drops `e`.
            unsafe {
                msg.finish(sh, true);
                raise_here(l, e)
            }
        }
    };
    // SAFETY: the packets borrow the message's bytes, valid until finish;
    // the pushes only allocate.
    unsafe {
        push_packet(l, &packets.first);
        lua_pushinteger(l, wire::next_session(session as u32) as lua_Integer);
    }
    let n = match packets.pieces {
        Some(pieces) => {
            // SAFETY: as above.
            unsafe { push_pieces(l, pieces, None) };
            3
        }
        None => 2,
    };
    // SAFETY: the packets are not used after this.
    unsafe { msg.finish(sh, true) };
    n
}

unsafe extern "C-unwind" fn lpackrequest(l: State) -> c_int {
    // SAFETY: called by Lua on this module's state.
    unsafe { pack_request(l, false) }
}

unsafe extern "C-unwind" fn lpackpush(l: State) -> c_int {
    // SAFETY: called by Lua on this module's state.
    unsafe { pack_request(l, true) }
}

unsafe extern "C-unwind" fn lpacktrace(l: State) -> c_int {
    // SAFETY: argument 1 stays on the stack until return.
    let tag = unsafe { check_bytes(l, 1) };
    match wire::trace(tag) {
        // SAFETY: the tag is on the stack.
        Ok(pkt) => unsafe { push_packet(l, &pkt) },
        // SAFETY: nothing with a destructor is alive.
        Err(e) => unsafe { raise_here(l, e.to_string()) },
    }
    1
}

/// Copies `bytes` into a new block of this service and pushes it as
/// `lightuserdata, size` (NULL for no bytes).
///
/// # Safety
/// The service's thread, no borrow of its buffers alive.
unsafe fn push_new_block(l: State, sh: &Shared, bytes: &[u8]) {
    let len = bytes.len();
    // SAFETY: the only borrow of the buffers; the Vec moves into them
    // before any Lua call.
    let p = unsafe { (*sh.buffers.get()).insert(bytes.to_vec()) };
    // SAFETY: plain pushes.
    unsafe {
        lua_pushlightuserdata(l, p as *mut c_void);
        lua_pushinteger(l, len as lua_Integer);
    }
}

/// Pushes a request's target: the address, or the name.
unsafe fn push_target(l: State, t: Target<'_>) {
    // SAFETY: plain pushes on a live state.
    unsafe {
        match t {
            Target::Id(a) => lua_pushinteger(l, a as lua_Integer),
            Target::Name(n) => push_bytes(l, n),
        }
    }
}

unsafe extern "C-unwind" fn lunpackrequest(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (open_bound).
    let sh = unsafe { shared(l) };
    // SAFETY: this module's function on its own state.
    let msg = unsafe { message_arg(l, sh, 1, "unpackrequest", false) };
    let req = match wire::decode_request(msg.bytes()) {
        Ok(r) => r,
        // SAFETY: the bytes are not used after; raise_here drops the text.
        Err(e) => unsafe {
            msg.finish(sh, false);
            raise_here(l, e.to_string())
        },
    };
    // SAFETY: `req` borrows the message's bytes, valid until finish; the
    // pushes only allocate; lua_checkstack makes room for six values.
    let n = unsafe {
        luaL_checkstack(l, 6, std::ptr::null());
        match req {
            Request::Single {
                target,
                session,
                msg,
            } => {
                push_target(l, target);
                lua_pushinteger(l, session as lua_Integer);
                push_new_block(l, sh, msg);
                if session == 0 {
                    lua_pushnil(l);
                    lua_pushboolean(l, 1);
                    6
                } else {
                    4
                }
            }
            Request::Begin {
                target,
                session,
                size,
                push,
            } => {
                push_target(l, target);
                lua_pushinteger(l, session as lua_Integer);
                lua_pushnil(l);
                lua_pushinteger(l, size as lua_Integer);
                lua_pushboolean(l, 1);
                lua_pushboolean(l, push as c_int);
                6
            }
            Request::Piece { session, msg, last } => {
                lua_pushboolean(l, 0);
                lua_pushinteger(l, session as lua_Integer);
                push_new_block(l, sh, msg);
                lua_pushboolean(l, !last as c_int);
                5
            }
            Request::Trace(tag) => {
                push_bytes(l, tag);
                1
            }
        }
    };
    // SAFETY: `req` is not used after this.
    unsafe { msg.finish(sh, false) };
    n
}

unsafe extern "C-unwind" fn lpackresponse(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (open_bound).
    let sh = unsafe { shared(l) };
    // SAFETY: luaL_checkinteger raises with nothing to drop; lua_toboolean
    // accepts any index.
    let (session, ok) = unsafe { (luaL_checkinteger(l, 1) as u32, lua_toboolean(l, 2) != 0) };
    // SAFETY: this module's function on its own state.
    let msg = unsafe { message_arg(l, sh, 3, "packresponse", true) };
    let packets = match wire::response(session, ok, msg.bytes()) {
        Ok(p) => p,
        // SAFETY: the bytes are not used after; raise_here drops the text.
        Err(e) => unsafe {
            msg.finish(sh, false);
            raise_here(l, e.to_string())
        },
    };
    // SAFETY: the packets borrow the message's bytes, valid until finish.
    unsafe {
        match packets {
            ResponsePackets::Single(p) => push_packet(l, &p),
            ResponsePackets::Multi { begin, pieces } => push_pieces(l, pieces, Some(begin)),
        }
        msg.finish(sh, false);
    }
    1
}

unsafe extern "C-unwind" fn lunpackresponse(l: State) -> c_int {
    // SAFETY: argument 1 stays on the stack until return.
    let body = unsafe { check_bytes(l, 1) };
    let r = match wire::decode_response(body) {
        Ok(r) => r,
        // SAFETY: nothing with a destructor is alive.
        Err(e) => unsafe { raise_here(l, e.to_string()) },
    };
    // SAFETY: plain pushes; the data borrows argument 1; room for 4 values.
    unsafe {
        luaL_checkstack(l, 4, std::ptr::null());
        let data = |session: u32, ok: bool, msg: &[u8]| {
            lua_pushinteger(l, session as lua_Integer);
            lua_pushboolean(l, ok as c_int);
            push_bytes(l, msg);
        };
        match r {
            Response::Error { session, msg } => {
                data(session, false, msg);
                3
            }
            Response::Ok { session, msg } | Response::Last { session, msg } => {
                data(session, true, msg);
                3
            }
            Response::Begin { session, size } => {
                lua_pushinteger(l, session as lua_Integer);
                lua_pushboolean(l, 1);
                lua_pushinteger(l, size as lua_Integer);
                lua_pushboolean(l, 1);
                4
            }
            Response::Piece { session, msg } => {
                data(session, true, msg);
                lua_pushboolean(l, 1);
                4
            }
        }
    }
}

unsafe extern "C-unwind" fn lappend(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (open_bound).
    let sh = unsafe { shared(l) };
    // SAFETY: luaL_checktype raises with nothing to drop; the others accept
    // any index.
    unsafe {
        luaL_checktype(l, 1, LUA_TTABLE);
        let n = lua_rawlen(l, 1) as lua_Integer;
        if lua_isnil(l, 2) != 0 {
            lua_settop(l, 3);
            lua_seti(l, 1, n + 1);
            return 0;
        }
        if lua_type(l, 2) != LUA_TLIGHTUSERDATA {
            raise_here(l, format!("Need lightuserdata, got {}", type_name(l, 2)));
        }
    }
    // SAFETY: this module's function on its own state.
    let msg = unsafe { message_arg(l, sh, 2, "append", false) };
    // SAFETY: the bytes are valid until finish; lua_seti may run a
    // metamethod, with nothing of ours needing a destructor alive.
    unsafe {
        let n = lua_rawlen(l, 1) as lua_Integer;
        push_bytes(l, msg.bytes());
        msg.finish(sh, true);
        lua_seti(l, 1, n + 1);
    }
    0
}

unsafe extern "C-unwind" fn lconcat(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (open_bound).
    let sh = unsafe { shared(l) };
    // The pieces are pushed and kept on the stack while they are counted,
    // then copied with no Lua call in between.
    // SAFETY: lua_istable/lua_geti accept any index; lua_geti may run an
    // __index metamethod, with nothing of ours needing a destructor alive.
    let (total, count) = unsafe {
        if lua_istable(l, 1) == 0 {
            return 0;
        }
        lua_settop(l, 1);
        if lua_geti(l, 1, 1) != LUA_TNUMBER {
            return 0;
        }
        let total = lua_tointegerx(l, -1, std::ptr::null_mut());
        lua_pop(l, 1);
        let mut sum: u64 = 0;
        let mut count = 0;
        loop {
            luaL_checkstack(l, 1, c"too many pieces".as_ptr());
            if lua_geti(l, 1, count as lua_Integer + 2) != LUA_TSTRING {
                lua_pop(l, 1);
                break;
            }
            sum += lua_rawlen(l, -1) as u64;
            count += 1;
            if sum > total.max(0) as u64 {
                return 0;
            }
        }
        if sum != total.max(0) as u64 || total < 0 {
            return 0;
        }
        (total as usize, count)
    };
    let mut joined = Vec::with_capacity(total);
    for i in 0..count {
        // SAFETY: the pieces are strings at stack slots 2..=count+1.
        joined.extend_from_slice(unsafe { to_bytes(l, i + 2) }.unwrap_or(&[]));
    }
    // SAFETY: the only borrow of the buffers; the Vec moves into them
    // before any Lua call; then plain pushes.
    unsafe {
        let p = (*sh.buffers.get()).insert(joined);
        lua_settop(l, 1);
        lua_pushlightuserdata(l, p as *mut c_void);
        lua_pushinteger(l, total as lua_Integer);
    }
    2
}

unsafe extern "C-unwind" fn lisname(l: State) -> c_int {
    // SAFETY: to_bytes accepts any index (numbers convert, as in skynet).
    match unsafe { to_bytes(l, 1) } {
        Some(name) if name.first() == Some(&b'@') => {
            // SAFETY: a plain push.
            unsafe { lua_pushboolean(l, 1) };
            1
        }
        _ => 0,
    }
}

/// The node name skynet's clusterd uses to tag traces, into `out`: the host
/// name, with bytes up to space and above ASCII (negative as C chars) as
/// `_`, then the process id; `noname<pid>` without a host name. Its length.
fn node_name(out: &mut [u8; 280]) -> usize {
    use std::io::Write;
    let mut host = [0u8; 256];
    // SAFETY: gethostname writes at most host.len() bytes into `host`.
    let r = unsafe { libc::gethostname(host.as_mut_ptr() as *mut libc::c_char, host.len()) };
    let len = if r == 0 {
        host.iter().position(|&b| b == 0).unwrap_or(host.len())
    } else {
        host[..6].copy_from_slice(b"noname");
        6
    };
    for b in &mut host[..len] {
        if *b <= b' ' || *b >= 0x80 {
            *b = b'_';
        }
    }
    out[..len].copy_from_slice(&host[..len]);
    let mut rest = &mut out[len..];
    let room = rest.len();
    // 24 bytes always hold a u32 in decimal.
    let _ = write!(rest, "{}", std::process::id());
    len + room - rest.len()
}

unsafe extern "C-unwind" fn lnodename(l: State) -> c_int {
    let mut buf = [0u8; 280];
    let n = node_name(&mut buf);
    // SAFETY: pushes a copy of a plain array.
    unsafe { push_bytes(l, &buf[..n]) };
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_name_is_host_and_pid() {
        let mut buf = [0u8; 280];
        let len = node_name(&mut buf);
        let n = std::str::from_utf8(&buf[..len]).unwrap();
        let pid = std::process::id().to_string();
        assert!(n.ends_with(&pid), "{n}");
        assert!(n.len() > pid.len(), "{n}");
        assert!(n.bytes().all(|b| b > b' ' && b < 0x80), "{n}");
    }
}
