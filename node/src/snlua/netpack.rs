//! `skynet.netpack`: client framing for gates (a u16 big-endian length, then
//! that many bytes), with the API and event names of skynet's lua-netpack.c.
//!
//! - `filter(queue, msg, sz [, maxpacket])` takes a PTYPE_SOCKET message and
//!   returns `queue, type, ...`: `"data", fd, ptr, sz` (exactly one frame
//!   completed), `"more"` (frames wait in the queue for `pop`), `"open", fd,
//!   addr` (accept), `"close", fd`, `"error", fd, text`, `"warning", fd, kb`,
//!   `"init", id, addr, port` (connect / listen). `queue` may be nil at first:
//!   filter makes one and returns it. Data that completes no frame returns
//!   only the queue.
//! - `pop(queue)` -> `fd, ptr, sz` of the oldest queued frame, or nothing.
//! - `pack(str | ptr, sz)` -> `ptr, sz` of the framed bytes (at most 65535).
//! - `tostring(ptr, sz)` -> string, and frees the block.
//! - `clear(queue)` drops every queued and incomplete frame.
//!
//! Beyond skynet (our gateserver uses them): the optional `maxpacket` of
//! `filter` turns a frame header announcing more bytes into an `"error"`
//! event for that fd (frames completed before it stay queued) and drops the
//! fd's later data until its close; `incomplete(queue, cs)` lists the fds
//! whose unfinished frame started more than `cs` centiseconds ago (slow
//! senders).
//!
//! Frames handed to Lua are blocks owned by the service (see `buffers`), so
//! `skynet.redirect` passes them on without a copy. The framing itself is
//! [`Framer`], plain Rust.

use super::lua::*;
use super::{block, shared};
use crate::kernel::kernel;
use crate::socket::event::{self, kind};
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{c_int, c_void, CStr};

const QUEUE_META: &CStr = c"skynet.netpack.queue";
/// Largest payload the u16 header can announce.
pub const MAX_PACKET: usize = 0xffff;

/// A frame being received on one fd.
#[derive(Debug)]
enum Partial {
    /// Only the first header byte has come.
    Header { high: u8, since: u64 },
    /// The header has come; `buf` holds what came of the body.
    Body {
        buf: Vec<u8>,
        size: usize,
        since: u64,
    },
}

/// What one read of an fd produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Fed {
    /// No frame completed (or the fd's data is being dropped).
    Nothing,
    /// Exactly one frame completed and no byte followed it.
    One(Vec<u8>),
    /// Frames were queued (see [`Framer::pop`]).
    More,
    /// A header announced more than the limit; frames completed before it
    /// are queued, and later data of the fd is dropped.
    TooLong { size: usize, queued: bool },
}

/// Splits the byte streams of many fds into frames.
#[derive(Debug, Default)]
pub struct Framer {
    partial: HashMap<i32, Partial>,
    ready: VecDeque<(i32, Vec<u8>)>,
    /// Fds whose data is dropped until they close (after `TooLong`).
    dead: HashSet<i32>,
}

impl Framer {
    /// Feeds one read of `fd`. `now` (centiseconds) stamps a frame left
    /// unfinished; `max` bounds the announced payload size.
    pub fn feed(&mut self, fd: i32, data: Vec<u8>, max: usize, now: u64) -> Fed {
        if self.dead.contains(&fd) || data.is_empty() {
            return Fed::Nothing;
        }
        let mut pos = 0usize;
        let mut done: Option<Vec<u8>> = None;
        let mut queued = false;
        // A frame started in an earlier read.
        let mut cur = self.partial.remove(&fd);
        loop {
            // Finish the current frame, if any, else start one at `pos`.
            let (mut buf, size, since) = match cur.take() {
                Some(Partial::Header { high, since }) => {
                    let size = (high as usize) << 8 | data[pos] as usize;
                    pos += 1;
                    (None, size, since)
                }
                Some(Partial::Body { buf, size, since }) => (Some(buf), size, since),
                None => {
                    if pos == data.len() {
                        break;
                    }
                    if data.len() - pos == 1 {
                        self.partial.insert(
                            fd,
                            Partial::Header {
                                high: data[pos],
                                since: now,
                            },
                        );
                        break;
                    }
                    let size = (data[pos] as usize) << 8 | data[pos + 1] as usize;
                    pos += 2;
                    (None, size, now)
                }
            };
            if buf.is_none() && size > max {
                self.partial.remove(&fd);
                self.dead.insert(fd);
                if let Some(f) = done.take() {
                    self.ready.push_back((fd, f));
                    queued = true;
                }
                return Fed::TooLong { size, queued };
            }
            let have = buf.as_ref().map_or(0, Vec::len);
            let need = size - have;
            let avail = data.len() - pos;
            if avail < need {
                let mut b = buf.take().unwrap_or_else(|| Vec::with_capacity(size));
                b.extend_from_slice(&data[pos..]);
                self.partial.insert(
                    fd,
                    Partial::Body {
                        buf: b,
                        size,
                        since,
                    },
                );
                break;
            }
            let frame = match buf.take() {
                Some(mut b) => {
                    b.extend_from_slice(&data[pos..pos + need]);
                    b
                }
                None => data[pos..pos + need].to_vec(),
            };
            pos += need;
            if let Some(prev) = done.replace(frame) {
                self.ready.push_back((fd, prev));
                queued = true;
            }
            if pos == data.len() {
                break;
            }
        }
        // Any partial frame of `fd` now began after `done`, in this read: a
        // byte followed the frame, which makes it "more" (as in skynet),
        // even when that byte is a whole header ending the read.
        match done {
            Some(f) if !queued && !self.partial.contains_key(&fd) => Fed::One(f),
            Some(f) => {
                self.ready.push_back((fd, f));
                Fed::More
            }
            None if queued => Fed::More,
            None => Fed::Nothing,
        }
    }

    /// The oldest queued frame.
    pub fn pop(&mut self) -> Option<(i32, Vec<u8>)> {
        self.ready.pop_front()
    }

    /// `fd` is gone: forget its unfinished frame (queued frames stay).
    pub fn close(&mut self, fd: i32) {
        self.partial.remove(&fd);
        self.dead.remove(&fd);
    }

    pub fn clear(&mut self) {
        self.partial.clear();
        self.ready.clear();
        self.dead.clear();
    }

    /// Fds whose unfinished frame started before `before` (centiseconds).
    pub fn incomplete(&self, before: u64) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .partial
            .iter()
            .filter(|(_, p)| match p {
                Partial::Header { since, .. } | Partial::Body { since, .. } => *since < before,
            })
            .map(|(fd, _)| *fd)
            .collect();
        v.sort_unstable();
        v
    }
}

/// Frames `payload`; None if it is longer than [`MAX_PACKET`].
pub fn frame(payload: &[u8]) -> Option<Vec<u8>> {
    if payload.len() > MAX_PACKET {
        return None;
    }
    let mut v = Vec::with_capacity(payload.len() + 2);
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(payload);
    Some(v)
}

/// `require "skynet.netpack"`
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: `l` is the live state calling this loader; open_bound raises
    // if the registry has no `skynet_context`.
    unsafe {
        open_bound(
            l,
            &[
                (c"filter", lfilter),
                (c"pop", lpop),
                (c"pack", lpack),
                (c"tostring", ltostring),
                (c"clear", lclear),
                (c"incomplete", lincomplete),
            ],
        )
    }
}

unsafe extern "C-unwind" fn queue_gc(l: State) -> c_int {
    // SAFETY: Lua calls __gc with the object at index 1; luaL_testudata
    // gives its block only for our metatable, which holds an initialized
    // Framer (queue_arg writes one before setting the metatable); a fresh
    // one is left should the object be resurrected.
    unsafe {
        let p = luaL_testudata(l, 1, QUEUE_META.as_ptr()) as *mut Framer;
        if !p.is_null() {
            std::ptr::drop_in_place(p);
            std::ptr::write(p, Framer::default());
        }
    }
    0
}

/// The queue at index 1, or a new one put there. The pointer stays valid
/// while the queue is on the stack; take a `&mut` only between Lua calls.
///
/// # Safety
/// `l` is the calling state.
unsafe fn queue_arg(l: State, create: bool) -> *mut Framer {
    // SAFETY: luaL_testudata accepts any index and gives the block only for
    // our metatable (an initialized Framer).
    let p = unsafe { luaL_testudata(l, 1, QUEUE_META.as_ptr()) as *mut Framer };
    if !p.is_null() || !create {
        return p;
    }
    // SAFETY: a fresh userdata block of the size asked, aligned for any
    // object, initialized before its metatable (and __gc) is set; it
    // replaces argument 1, so it stays on the stack for the call.
    unsafe {
        let p = lua_newuserdatauv(l, std::mem::size_of::<Framer>(), 0) as *mut Framer;
        std::ptr::write(p, Framer::default());
        if luaL_newmetatable(l, QUEUE_META.as_ptr()) != 0 {
            lua_pushcfunction(l, queue_gc);
            lua_setfield(l, -2, c"__gc".as_ptr());
        }
        lua_setmetatable(l, -2);
        lua_replace(l, 1);
        p
    }
}

/// Pushes a frame as `ptr, sz` (a block owned by the service).
///
/// # Safety
/// `l` is the calling state; no borrow of the service's buffers is alive.
unsafe fn push_frame(l: State, f: Vec<u8>) {
    let n = f.len();
    // SAFETY: the only borrow of the buffers; it ends with the statement.
    // Pushing a pointer and an integer does not raise.
    unsafe {
        let a = (*shared(l).buffers.get()).insert(f);
        lua_pushlightuserdata(l, a as *mut c_void);
        lua_pushinteger(l, n as lua_Integer);
    }
}

unsafe extern "C-unwind" fn lfilter(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (open_bound); the checks
    // raise with nothing to drop; queue_arg's block stays at index 1.
    let (sh, p, sz, max, q) = unsafe {
        let sh = shared(l);
        let p = lua_touserdata(l, 2) as usize;
        let sz = luaL_checkinteger(l, 3);
        let max = luaL_optinteger(l, 4, MAX_PACKET as lua_Integer).clamp(0, MAX_PACKET as i64);
        let q = queue_arg(l, true);
        lua_settop(l, 1);
        (sh, p, sz, max as usize, q)
    };
    // SAFETY: the only borrow of the buffers; it ends with the statement.
    let header = unsafe {
        match (*sh.buffers.get()).get(p) {
            Some(b) if sz >= 0 && sz as usize <= b.len() => event::decode_header(&b[..sz as usize]),
            _ => None,
        }
    };
    let Some(h) = header else {
        // SAFETY: nothing with a destructor is alive.
        unsafe { raise_here(l, "netpack.filter: not a socket message".to_string()) };
    };
    // Text of a non-data event, copied out before anything is pushed.
    let text = || -> Vec<u8> {
        // SAFETY: the only borrow of the buffers, ended in the closure.
        unsafe { (*sh.buffers.get()).get(p) }
            .map(|b| b[..h.body_len].to_vec())
            .unwrap_or_default()
    };
    match h.kind {
        kind::DATA => {
            // SAFETY: a fresh, only borrow of the buffers, ended in the
            // statement; no Lua code runs meanwhile.
            let data = unsafe { block::take_own_block(&mut *sh.buffers.get(), p, h.body_len) };
            let now = kernel().now();
            // SAFETY: `q` is the queue at index 1; no Lua call runs while
            // this borrow lives (it ends with the statement).
            let fed = unsafe { (*q).feed(h.id, data, max, now) };
            match fed {
                Fed::Nothing => 1,
                Fed::One(f) => {
                    // SAFETY: pushing literals and integers; push_frame's
                    // contract holds (no borrow alive).
                    unsafe {
                        lua_pushstring(l, c"data".as_ptr());
                        lua_pushinteger(l, h.id as lua_Integer);
                        push_frame(l, f);
                    }
                    5
                }
                Fed::More => {
                    // SAFETY: pushing a literal.
                    unsafe { lua_pushstring(l, c"more".as_ptr()) };
                    2
                }
                Fed::TooLong { size, .. } => {
                    let msg = format!(
                        "packet of {size} bytes announced, over the limit of {max} (maxpacket)"
                    );
                    // SAFETY: pushing; a Lua error (out of memory) leaks `msg`.
                    unsafe {
                        lua_pushstring(l, c"error".as_ptr());
                        lua_pushinteger(l, h.id as lua_Integer);
                        push_str(l, &msg);
                    }
                    4
                }
            }
        }
        kind::CONNECT => {
            let t = text();
            // SAFETY: pushing; out of memory leaks `t` (tolerated).
            unsafe {
                lua_pushstring(l, c"init".as_ptr());
                lua_pushinteger(l, h.id as lua_Integer);
                push_bytes(l, &t);
                lua_pushinteger(l, h.ud as lua_Integer);
            }
            5
        }
        kind::CLOSE | kind::ERROR => {
            // SAFETY: `q` is the queue at index 1; the borrow ends with the
            // statement.
            unsafe { (*q).close(h.id) };
            let t = text();
            let close = h.kind == kind::CLOSE;
            // SAFETY: pushing, as above.
            unsafe {
                lua_pushstring(
                    l,
                    if close {
                        c"close".as_ptr()
                    } else {
                        c"error".as_ptr()
                    },
                );
                lua_pushinteger(l, h.id as lua_Integer);
                if !close {
                    push_bytes(l, &t);
                }
            }
            if close {
                3
            } else {
                4
            }
        }
        kind::ACCEPT => {
            let t = text();
            // SAFETY: pushing, as above. The new socket is `ud`.
            unsafe {
                lua_pushstring(l, c"open".as_ptr());
                lua_pushinteger(l, h.ud as lua_Integer);
                push_bytes(l, &t);
            }
            4
        }
        kind::WARNING => {
            // SAFETY: pushing.
            unsafe {
                lua_pushstring(l, c"warning".as_ptr());
                lua_pushinteger(l, h.id as lua_Integer);
                lua_pushinteger(l, h.ud as lua_Integer);
            }
            4
        }
        // UDP: not for gates; skynet's filter returns the queue alone.
        _ => 1,
    }
}

unsafe extern "C-unwind" fn lpop(l: State) -> c_int {
    // SAFETY: queue_arg without creating only reads index 1.
    let q = unsafe { queue_arg(l, false) };
    if q.is_null() {
        return 0;
    }
    // SAFETY: the queue is argument 1; the borrow ends with the statement.
    let Some((fd, f)) = (unsafe { (*q).pop() }) else {
        return 0;
    };
    // SAFETY: pushing an integer; push_frame's contract holds.
    unsafe {
        lua_pushinteger(l, fd as lua_Integer);
        push_frame(l, f);
    }
    3
}

unsafe extern "C-unwind" fn lpack(l: State) -> c_int {
    // SAFETY: lua_type accepts any index.
    let framed = match unsafe { lua_type(l, 1) } {
        LUA_TLIGHTUSERDATA | LUA_TUSERDATA => {
            // SAFETY: upvalue 1 is the Shared; block_at resolves the
            // pointer (own or shared block) or names the problem; the
            // slice is used before any Lua call.
            let r = unsafe {
                let sz = luaL_checkinteger(l, 2);
                let p = lua_touserdata(l, 1) as usize;
                block::block_at(shared(l), p, sz, "netpack.pack").map(frame)
            };
            match r {
                Ok(f) => f,
                // SAFETY: raising drops nothing that matters (`e` moves in).
                Err(e) => unsafe { raise_here(l, e) },
            }
        }
        // SAFETY: the string stays on the stack during the statement.
        _ => frame(unsafe { check_bytes(l, 1) }),
    };
    match framed {
        // SAFETY: push_frame's contract holds.
        Some(f) => unsafe { push_frame(l, f) },
        None => {
            // SAFETY: nothing with a destructor is alive; the length is
            // read again from the argument.
            unsafe {
                let len = if lua_type(l, 1) == LUA_TSTRING {
                    lua_rawlen(l, 1) as i64
                } else {
                    luaL_checkinteger(l, 2)
                };
                raise_here(l, format!("Invalid size (too long) of data : {len}"))
            }
        }
    }
    2
}

unsafe extern "C-unwind" fn ltostring(l: State) -> c_int {
    // SAFETY: upvalue 1 is the Shared; the checks raise with nothing to
    // drop; the only borrow of the buffers ends with the statement.
    let taken = unsafe {
        let p = lua_touserdata(l, 1) as usize;
        let sz = luaL_checkinteger(l, 2);
        if p == 0 {
            None
        } else {
            let bufs = &mut *shared(l).buffers.get();
            match block::check_own_block(bufs, p, sz) {
                Ok(n) => Some(Ok(block::take_own_block(bufs, p, n))),
                Err(e) => Some(Err(e.text("netpack.tostring: not a block of this service"))),
            }
        }
    };
    match taken {
        // SAFETY: pushing a literal.
        None => unsafe { push_bytes(l, b"") },
        // SAFETY: a Lua error (out of memory) leaks the block (tolerated).
        Some(Ok(b)) => unsafe { push_bytes(l, &b) },
        // SAFETY: raising drops nothing that matters.
        Some(Err(e)) => unsafe { raise_here(l, e) },
    };
    1
}

unsafe extern "C-unwind" fn lclear(l: State) -> c_int {
    // SAFETY: reads index 1 only; the borrow ends with the statement.
    unsafe {
        let q = queue_arg(l, false);
        if !q.is_null() {
            (*q).clear();
        }
    }
    0
}

unsafe extern "C-unwind" fn lincomplete(l: State) -> c_int {
    // SAFETY: the check raises with nothing to drop; queue_arg reads index 1.
    let (q, age) = unsafe { (queue_arg(l, false), luaL_checkinteger(l, 2)) };
    let fds = if q.is_null() {
        Vec::new()
    } else {
        let before = kernel().now().saturating_sub(age.max(0) as u64);
        // SAFETY: the queue is argument 1; the borrow ends with the statement.
        unsafe { (*q).incomplete(before) }
    };
    // SAFETY: building a table of integers; out of memory leaks `fds`.
    unsafe {
        lua_createtable(l, fds.len() as c_int, 0);
        for (i, fd) in fds.iter().enumerate() {
            lua_pushinteger(l, *fd as lua_Integer);
            lua_rawseti(l, -2, i as lua_Integer + 1);
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(f: &mut Framer, fd: i32, writes: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for w in writes {
            match f.feed(fd, w.to_vec(), MAX_PACKET, 0) {
                Fed::One(x) => out.push(x),
                Fed::More => {
                    while let Some((g, x)) = f.pop() {
                        assert_eq!(g, fd);
                        out.push(x);
                    }
                }
                Fed::Nothing => {}
                Fed::TooLong { .. } => panic!("no limit here"),
            }
        }
        out
    }

    #[test]
    fn every_split_point() {
        let stream: Vec<u8> = [
            frame(b"ab").unwrap(),
            frame(b"").unwrap(),
            frame(b"xyz").unwrap(),
        ]
        .concat();
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let mut f = Framer::default();
                let got = feed_all(&mut f, 3, &[&stream[..i], &stream[i..j], &stream[j..]]);
                assert_eq!(
                    got,
                    vec![b"ab".to_vec(), vec![], b"xyz".to_vec()],
                    "{i} {j}"
                );
                assert!(f.partial.is_empty());
            }
        }
    }

    #[test]
    fn fds_do_not_mix() {
        let mut f = Framer::default();
        assert_eq!(f.feed(1, vec![0, 3, b'a'], MAX_PACKET, 0), Fed::Nothing);
        assert_eq!(f.feed(2, vec![0], MAX_PACKET, 5), Fed::Nothing);
        assert_eq!(
            f.feed(2, vec![1, b'z'], MAX_PACKET, 6),
            Fed::One(b"z".to_vec())
        );
        assert_eq!(f.incomplete(1), vec![1]);
        assert_eq!(
            f.feed(1, vec![b'b', b'c'], MAX_PACKET, 0),
            Fed::One(b"abc".to_vec())
        );
        assert!(f.incomplete(100).is_empty());
    }

    #[test]
    fn one_frame_then_a_partial_is_more() {
        let mut f = Framer::default();
        assert_eq!(f.feed(1, vec![0, 1, b'a', 0], MAX_PACKET, 0), Fed::More);
        assert_eq!(f.pop(), Some((1, b"a".to_vec())));
        assert_eq!(f.pop(), None);
        assert_eq!(
            f.feed(1, vec![1, b'b'], MAX_PACKET, 0),
            Fed::One(b"b".to_vec())
        );
    }

    #[test]
    fn one_frame_then_a_whole_header_is_more() {
        // Found by the netpack_framer fuzz target: a read ending in exactly
        // a header after a frame was reported as the only frame.
        let mut f = Framer::default();
        assert_eq!(
            f.feed(2, vec![0, 2, b'c', b'd', 8, 0x62], MAX_PACKET, 0),
            Fed::More
        );
        assert_eq!(f.pop(), Some((2, b"cd".to_vec())));
        assert_eq!(f.pop(), None);
        assert_eq!(f.incomplete(1), vec![2]);
    }

    #[test]
    fn over_the_limit() {
        let mut f = Framer::default();
        let r = f.feed(4, vec![0, 1, b'a', 0x10, 0], 100, 0);
        assert_eq!(
            r,
            Fed::TooLong {
                size: 4096,
                queued: true
            }
        );
        assert_eq!(f.pop(), Some((4, b"a".to_vec())));
        assert_eq!(
            f.feed(4, vec![0, 1, b'b'], 100, 0),
            Fed::Nothing,
            "dropped until close"
        );
        f.close(4);
        assert_eq!(f.feed(4, vec![0, 1, b'b'], 100, 0), Fed::One(b"b".to_vec()));
        // A split header is checked when its second byte comes.
        assert_eq!(f.feed(5, vec![1], 100, 0), Fed::Nothing);
        assert_eq!(
            f.feed(5, vec![0], 100, 0),
            Fed::TooLong {
                size: 256,
                queued: false
            }
        );
        assert_eq!(
            f.feed(6, vec![0, 100], 100, 0),
            Fed::Nothing,
            "at the limit is fine"
        );
    }

    #[test]
    fn frame_limits() {
        assert_eq!(frame(b"").unwrap(), vec![0, 0]);
        assert_eq!(frame(&vec![7; MAX_PACKET]).unwrap().len(), MAX_PACKET + 2);
        assert!(frame(&vec![7; MAX_PACKET + 1]).is_none());
    }

    // ---- the golden vectors (SKYNET_VECTORS, default ../shared/vectors)

    use sha2::{Digest, Sha256};

    fn vector_rows(file: &str) -> Vec<Vec<String>> {
        let dir = std::env::var("SKYNET_VECTORS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors")
            });
        let text =
            std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    fn unhex(h: &str) -> Vec<u8> {
        (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    fn sha_hex(b: &[u8]) -> String {
        Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    }

    /// True if `b` matches a cell: hex bytes, or `len=N sha256=H ...`.
    fn matches_cell(b: &[u8], cell: &str) -> bool {
        match cell.strip_prefix("len=") {
            Some(rest) => {
                let mut it = rest.split_whitespace();
                let len: usize = it.next().unwrap().parse().unwrap();
                let sha = it.next().unwrap().strip_prefix("sha256=").unwrap();
                b.len() == len && sha_hex(b) == sha
            }
            None => b == unhex(cell).as_slice(),
        }
    }

    /// The one long payload of the vectors: bytes i % 256 for i in 0..65535.
    fn long_payload() -> Vec<u8> {
        (0..65535u32).map(|i| (i % 256) as u8).collect()
    }

    #[test]
    fn vectors_pack() {
        let rows = vector_rows("netpack.tsv");
        assert_eq!(rows.len(), 7);
        for r in &rows {
            let len: usize = r[1].parse().unwrap();
            let payload = if r[2].starts_with("(function") {
                long_payload()
            } else {
                unhex(&r[2])
            };
            assert_eq!(payload.len(), len, "{}", r[0]);
            let f = frame(&payload).unwrap();
            assert!(matches_cell(&f, &r[3]), "{}: frame differs", r[0]);
            // and back through the framer, in one read
            let mut fr = Framer::default();
            assert_eq!(fr.feed(1, f, MAX_PACKET, 0), Fed::One(payload), "{}", r[0]);
        }
        assert!(frame(&[0; 65536]).is_none(), "65536 bytes are refused");
    }

    #[test]
    fn vectors_stream() {
        let rows = vector_rows("netpack_stream.tsv");
        assert_eq!(rows.len(), 9);
        for r in &rows {
            // Long writes are pieces of the frame of the long payload, in order.
            let long = frame(&long_payload()).unwrap();
            let mut at = 0;
            let writes: Vec<Vec<u8>> = r[1]
                .split('|')
                .map(|w| match w.strip_prefix("len=") {
                    Some(rest) => {
                        let n: usize = rest.split_whitespace().next().unwrap().parse().unwrap();
                        let piece = long[at..at + n].to_vec();
                        at += n;
                        assert!(matches_cell(&piece, w), "{}: write differs", r[0]);
                        piece
                    }
                    None => unhex(w),
                })
                .collect();
            let refs: Vec<&[u8]> = writes.iter().map(Vec::as_slice).collect();
            let got = feed_all(&mut Framer::default(), 9, &refs);
            let want: Vec<&str> = r[2].split('|').collect();
            assert_eq!(got.len(), want.len(), "{}: {got:?}", r[0]);
            for (g, w) in got.iter().zip(&want) {
                let ok = if *w == "(empty)" {
                    g.is_empty()
                } else {
                    matches_cell(g, w)
                };
                assert!(ok, "{}: payload differs", r[0]);
            }
            // The same bytes split at every point of a short stream.
            let all = writes.concat();
            if all.len() < 64 {
                for i in 0..=all.len() {
                    let got2 = feed_all(&mut Framer::default(), 9, &[&all[..i], &all[i..]]);
                    assert_eq!(got2, got, "{}: split at {i}", r[0]);
                }
            }
        }
    }
}
