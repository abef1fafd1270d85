//! `skynet.core`: the native module every Lua service talks to the kernel with.
//! Argument conventions, results and error texts follow skynet's lua-skynet.c.
//!
//! Every function here is a Lua C function: Lua calls it with `l`, the running
//! state, whose upvalue 1 is the service's [`Shared`] (set by `open_bound`),
//! which outlives the state. The SAFETY notes name what else each step relies
//! on. Two rules keep errors sound: nothing with a destructor is alive across
//! a call that may raise (a Lua error is a longjmp), and no Rust reference
//! into the service's state (`Shared`'s cells) is used after a Lua call that
//! may run Lua code (an allocation may run a finalizer, which may call these
//! functions again).

use super::lua::*;
use super::{block, seri, shared, Shared, CALLBACK_KEY};
use crate::address::Address;
use crate::command;
use crate::kernel::{kernel, SendError};
use crate::timer::hpc;
use skynet_proto::handle::Handle;
use std::ffi::{c_char, c_int, c_void};
use std::mem::ManuallyDrop;

pub const FUNCS: &[(&std::ffi::CStr, lua_CFunction)] = &[
    (c"send", lsend),
    (c"redirect", lredirect),
    (c"genid", lgenid),
    (c"command", lcommand),
    (c"intcommand", lintcommand),
    (c"addresscommand", laddresscommand),
    (c"error", lerror),
    (c"harbor", lharbor),
    (c"callback", lcallback),
    (c"trace", ltrace),
    (c"tostring", ltostring),
    (c"pack", lpack),
    (c"unpack", lunpack),
    (c"packstring", lpackstring),
    (c"trash", ltrash),
    (c"now", lnow),
    (c"hpc", lhpc),
];

/// `require "skynet.core"`: a table of closures bound to this service.
///
/// # Safety
/// A Lua C function: `l` must be a live state whose registry holds the
/// service's `skynet_context`.
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: `l` is live (contract); open_bound raises if the registry has
    // no `skynet_context`.
    unsafe { open_bound(l, FUNCS) }
}

enum Dest<'a> {
    Handle(u32),
    Name(&'a [u8]),
}

/// Shared body of send and redirect. `idx_type` is the stack index of the type.
///
/// # Safety
/// Called from a function of this module (see the module doc), `sh` its
/// `Shared`.
unsafe fn send_message(l: State, sh: &Shared, source: u32, idx_type: c_int) -> c_int {
    // SAFETY: `l` is the calling state; lua_type accepts any index.
    let dest = match unsafe { lua_type(l, 1) } {
        LUA_TNUMBER => {
            // SAFETY: argument 1 is a number.
            let d = unsafe { lua_tointegerx(l, 1, std::ptr::null_mut()) } as u32;
            if d == 0 {
                // SAFETY: nothing with a destructor is alive (raise_here
                // drops its message before the longjmp).
                unsafe { raise_here(l, "Invalid service address 0".to_string()) };
            }
            Dest::Handle(d)
        }
        // SAFETY: argument 1 is a string, whose bytes stay valid while it is
        // on the stack: until this function returns.
        LUA_TSTRING => Dest::Name(unsafe { to_bytes(l, 1) }.unwrap_or(&[])),
        // SAFETY: nothing with a destructor is alive; the message is built
        // before the call.
        _ => unsafe {
            raise_here(
                l,
                format!(
                    "dest address type ({}) must be a string or number.",
                    type_name(l, 1)
                ),
            )
        },
    };
    // SAFETY: luaL_checkinteger raises for a non-integer, with nothing to
    // drop; lua_isnil accepts any index.
    let (ty, session_arg) = unsafe {
        let ty = luaL_checkinteger(l, idx_type);
        let idx_session = idx_type + 1;
        let session_arg = if lua_isnil(l, idx_session) != 0 {
            None
        } else {
            Some(luaL_checkinteger(l, idx_session) as i32)
        };
        (ty, session_arg)
    };
    let idx_msg = idx_type + 2;
    enum Payload<'a> {
        Copy(&'a [u8]),
        Owned(usize, usize),
    }
    // SAFETY: lua_type accepts any index.
    let payload = match unsafe { lua_type(l, idx_msg) } {
        // SAFETY: a string argument: valid while on the stack (above).
        LUA_TSTRING => Payload::Copy(unsafe { to_bytes(l, idx_msg) }.unwrap_or(&[])),
        LUA_TLIGHTUSERDATA => {
            // SAFETY: lua_touserdata reads the argument; luaL_checkinteger
            // raises with nothing to drop.
            let (p, sz) = unsafe {
                (
                    lua_touserdata(l, idx_msg) as usize,
                    luaL_checkinteger(l, idx_msg + 1),
                )
            };
            if p != 0 {
                // SAFETY: this thread runs the service; the borrow of its
                // buffers ends before any Lua call.
                let checked = block::check_own_block(unsafe { &*sh.buffers.get() }, p, sz);
                if let Err(e) = checked {
                    // SAFETY: nothing with a destructor is alive (`e` is
                    // plain data, the text is moved into the call).
                    unsafe {
                        raise_here(l, e.text("invalid param (not a message of this service)"))
                    };
                }
            }
            Payload::Owned(p, sz.max(0) as usize)
        }
        // SAFETY: nothing with a destructor is alive.
        _ => unsafe { raise_here(l, format!("invalid param {}", type_name(l, idx_msg))) },
    };
    // No Lua error can happen past this point: the payload may now be owned.
    let data = match payload {
        Payload::Copy(s) => s.to_vec(),
        Payload::Owned(0, _) => Vec::new(),
        // SAFETY: this thread runs the service; no other borrow of its
        // buffers is alive (no Lua call since the check).
        Payload::Owned(p, sz) => block::take_own_block(unsafe { &mut *sh.buffers.get() }, p, sz),
    };
    let session = match session_arg {
        Some(s) => s,
        None => sh.ctx.new_session(),
    };
    let ptype = (ty & 0xff) as u8;
    let src = if source == 0 { sh.handle } else { source };
    let k = kernel();
    let r = match dest {
        Dest::Handle(d) => k.send(sh.handle, src, d, ptype, session, data),
        Dest::Name(n) => match std::str::from_utf8(n) {
            Ok(name) => k.send_name(sh.handle, src, name, ptype, session, data),
            Err(_) => Err(SendError::UnknownName(
                String::from_utf8_lossy(n).into_owned(),
            )),
        },
    };
    match r {
        Ok(()) => {
            // SAFETY: a C function has LUA_MINSTACK free slots; pushing an
            // integer does not raise.
            unsafe { lua_pushinteger(l, session as lua_Integer) };
            1
        }
        Err(SendError::TooLarge(_)) => {
            // SAFETY: as above.
            unsafe { lua_pushboolean(l, 0) };
            1
        }
        Err(_) => 0,
    }
}

unsafe extern "C-unwind" fn lsend(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module (module doc).
    unsafe { send_message(l, shared(l), 0, 2) }
}

unsafe extern "C-unwind" fn lredirect(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module (module doc);
    // luaL_checkinteger raises with nothing to drop.
    unsafe {
        let source = luaL_checkinteger(l, 2) as u32;
        send_message(l, shared(l), source, 3)
    }
}

unsafe extern "C-unwind" fn lgenid(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); the push uses
    // one of the free slots.
    unsafe { lua_pushinteger(l, shared(l).ctx.new_session() as lua_Integer) };
    1
}

/// The arguments of a text command: its name, and the optional parameter
/// at index 2 unless nil. Raises (before anything is allocated) if the name
/// is not a string.
///
/// # Safety
/// `l` is the state calling a function of this module.
unsafe fn command_args(l: State) -> (String, Option<String>) {
    // SAFETY: luaL_checklstring raises with nothing to drop; the bytes of
    // both arguments stay valid while they are on the stack, and are copied
    // into Strings only once no call that may raise is left.
    let (cmd, param) = unsafe {
        let cmd = check_bytes(l, 1);
        let param = if lua_gettop(l) >= 2 && lua_isnil(l, 2) == 0 {
            to_bytes(l, 2)
        } else {
            None
        };
        (cmd, param)
    };
    (
        String::from_utf8_lossy(cmd).into_owned(),
        param.map(|b| String::from_utf8_lossy(b).into_owned()),
    )
}

unsafe extern "C-unwind" fn lcommand(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module (module doc).
    let (sh, (cmd, param)) = unsafe { (shared(l), command_args(l)) };
    match command::command(&sh.ctx, &cmd, param.as_deref()) {
        Some(r) => {
            // SAFETY: pushing may raise only out of memory, which leaks the
            // Strings alive here (tolerated, as for every push of Rust text).
            unsafe { push_str(l, &r) };
            1
        }
        None => 0,
    }
}

unsafe extern "C-unwind" fn lintcommand(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc).
    let sh = unsafe { shared(l) };
    // What every skynet.timeout and skynet.sleep sends; same result as the
    // text command below, without the text round trip.
    // SAFETY: the checks raise with nothing to drop; lua_gettop and
    // lua_isnumber accept any index.
    let timeout =
        unsafe { check_bytes(l, 1) == b"TIMEOUT" && lua_gettop(l) >= 2 && lua_isnumber(l, 2) != 0 };
    if timeout {
        // SAFETY: as above; the push uses one of the free slots.
        unsafe {
            let ti = luaL_checkinteger(l, 2) as i32;
            lua_pushinteger(l, command::timeout_session(&sh.ctx, ti) as lua_Integer);
        }
        return 1;
    }
    enum Param<'a> {
        None,
        Int(i32),
        Text(&'a [u8]),
    }
    // SAFETY: every argument is read (and may raise) before any String
    // exists; the bytes stay valid while the arguments are on the stack.
    let (cmd, param) = unsafe {
        let cmd = check_bytes(l, 1);
        let param = if lua_gettop(l) >= 2 {
            if lua_isnumber(l, 2) != 0 {
                Param::Int(luaL_checkinteger(l, 2) as i32)
            } else {
                Param::Text(check_bytes(l, 2))
            }
        } else {
            Param::None
        };
        (cmd, param)
    };
    let cmd = String::from_utf8_lossy(cmd).into_owned();
    let param = match param {
        Param::None => None,
        Param::Int(i) => Some(i.to_string()),
        Param::Text(b) => Some(String::from_utf8_lossy(b).into_owned()),
    };
    let Some(result) = command::command(&sh.ctx, &cmd, param.as_deref()) else {
        return 0;
    };
    if let Some(i) = parse_c_integer(&result) {
        // SAFETY: pushing a number does not raise.
        unsafe { lua_pushinteger(l, i) };
    } else if let Ok(f) = result.trim().parse::<f64>() {
        // SAFETY: as above.
        unsafe { lua_pushnumber(l, f) };
    } else {
        let msg = format!("Invalid result {result}");
        drop((cmd, param, result));
        // SAFETY: every String of this function was dropped just above; the
        // message is dropped by raise_here before the longjmp.
        unsafe { raise_here(l, msg) };
    }
    1
}

/// strtoll(s, base 0) accepting the whole string only ("" is 0, as in C).
fn parse_c_integer(s: &str) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

unsafe extern "C-unwind" fn laddresscommand(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module (module doc).
    let (sh, (cmd, param)) = unsafe { (shared(l), command_args(l)) };
    let Some(result) = command::command(&sh.ctx, &cmd, param.as_deref()) else {
        return 0;
    };
    match Address::parse(&result) {
        Address::Handle(h) => {
            // SAFETY: pushing an integer does not raise.
            unsafe { lua_pushinteger(l, h as lua_Integer) };
            1
        }
        _ => 0,
    }
}

unsafe extern "C-unwind" fn lerror(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc).
    let sh = unsafe { shared(l) };
    let mut buf = std::mem::MaybeUninit::<luaL_Buffer>::uninit();
    let b = buf.as_mut_ptr();
    // SAFETY: the line is built in a luaL_Buffer, on the Lua stack: a
    // __tostring that raises (or runs any Lua code) leaves no Rust value
    // behind. luaL_buffinit initializes `buf`, which stays in place (it
    // points into itself) until luaL_pushresult; each luaL_tolstring result
    // is added (and popped) by luaL_addvalue. With no argument, argument 1
    // is made nil (as skynet does) so that it is not the buffer's
    // placeholder.
    unsafe {
        if lua_gettop(l) == 0 {
            lua_settop(l, 1);
        }
        let n = lua_gettop(l);
        luaL_buffinit(l, b);
        for i in 1..=n {
            luaL_tolstring(l, i, std::ptr::null_mut());
            luaL_addvalue(b);
            if i < n {
                luaL_addlstring(b, c" ".as_ptr(), 1);
            }
        }
        luaL_pushresult(b);
    }
    // SAFETY: the line is the string on the top; it is copied out before
    // anything else touches the stack.
    let line = unsafe { to_bytes(l, -1) }.unwrap_or(&[]).to_vec();
    kernel().log_bytes(sh.handle, line);
    0
}

unsafe extern "C-unwind" fn lharbor(l: State) -> c_int {
    // SAFETY: luaL_checkinteger raises with nothing to drop.
    let h = unsafe { luaL_checkinteger(l, 1) } as u32;
    // SAFETY: two pushes of plain values use free slots and do not raise.
    unsafe {
        lua_pushinteger(l, Handle(h).harbor() as lua_Integer);
        lua_pushboolean(l, kernel().is_remote(h) as c_int);
    }
    2
}

unsafe extern "C-unwind" fn lcallback(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc).
    let sh = unsafe { shared(l) };
    // SAFETY: luaL_checktype raises with nothing to drop; after settop the
    // function is the top value, which lua_rawsetp stores in the registry
    // under the address of CALLBACK_KEY (a static: stable and unique).
    let forward = unsafe {
        luaL_checktype(l, 1, LUA_TFUNCTION);
        let forward = lua_toboolean(l, 2) != 0;
        lua_settop(l, 1);
        lua_rawsetp(
            l,
            LUA_REGISTRYINDEX,
            &CALLBACK_KEY as *const u8 as *const c_void,
        );
        forward
    };
    sh.forward.set(forward);
    0
}

unsafe extern "C-unwind" fn ltrace(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc).
    let sh = unsafe { shared(l) };
    // SAFETY: every argument is checked (and may raise) before any Rust
    // value with a destructor exists; the string bytes stay valid while the
    // arguments are on the stack. A thread argument stays alive there too.
    let (tag, user, stack) = unsafe {
        let tag = check_bytes(l, 1);
        let user = check_bytes(l, 2);
        let stack = if lua_isnoneornil(l, 3) == 0 {
            Some(if lua_type(l, 3) == LUA_TTHREAD {
                (lua_tothread(l, 3), luaL_optinteger(l, 4, 1) as c_int)
            } else {
                (l, luaL_optinteger(l, 3, 1) as c_int)
            })
        } else {
            None
        };
        (tag, user, stack)
    };
    let mut text = format!(
        "<TRACE {}> {} {}",
        String::from_utf8_lossy(tag),
        hpc(),
        String::from_utf8_lossy(user)
    );
    if let Some((co, mut level)) = stack {
        let mut frames = Vec::new();
        // SAFETY: lua_Debug is plain data (integers and pointers), valid
        // all-zero; lua_getstack and lua_getinfo do not raise, and `co` is a
        // live thread (argument 3, or `l`). `ar.source` is a NUL-terminated
        // string that Lua keeps while the function runs; it is copied at
        // once.
        unsafe {
            let mut ar: lua_Debug = std::mem::zeroed();
            while frames.len() < 3 && lua_getstack(co, level, &mut ar) != 0 {
                lua_getinfo(co, c"Sl".as_ptr(), &mut ar);
                level += 1;
                if ar.currentline >= 0 {
                    let src = std::ffi::CStr::from_ptr(ar.source)
                        .to_string_lossy()
                        .into_owned();
                    frames.push(format!("{src}:{}", ar.currentline));
                }
            }
        }
        if !frames.is_empty() {
            text.push_str(" : ");
            text.push_str(&frames.join(" "));
        }
    }
    kernel().log(sh.handle, &text);
    0
}

/// The block behind (`ptr`, `sz`) arguments at `idx`, `idx+1`: one of the
/// service's own blocks or a shared block (see [`block`]). Valid until the
/// service's block is taken, or the message ends (a shared block).
///
/// # Safety
/// Called from a function of this module (see the module doc), `sh` its
/// `Shared`.
unsafe fn message_arg<'a>(l: State, sh: &'a Shared, idx: c_int, what: &str) -> &'a [u8] {
    // SAFETY: lua_touserdata accepts any index; the checks raise with
    // nothing to drop (the error text is moved into raise_here); block_at
    // runs on the thread of the service.
    unsafe {
        let p = lua_touserdata(l, idx) as usize;
        let sz = luaL_checkinteger(l, idx + 1);
        match block::block_at(sh, p, sz, what) {
            Ok(b) => b,
            Err(e) => raise_here(l, e),
        }
    }
}

unsafe extern "C-unwind" fn ltostring(l: State) -> c_int {
    // SAFETY: lua_isnoneornil accepts any index.
    if unsafe { lua_isnoneornil(l, 1) } != 0 {
        return 0;
    }
    // SAFETY: called by Lua as a function of this module (module doc).
    let bytes = unsafe { message_arg(l, shared(l), 1, "tostring") };
    // SAFETY: the block is alive now; lua_pushlstring copies the bytes
    // before it can run a GC step (the only way Lua code, a finalizer that
    // trashes the block, could run), and a raw pointer keeps no Rust borrow
    // alive across that step.
    unsafe { lua_pushlstring(l, bytes.as_ptr() as *const c_char, bytes.len()) };
    1
}

/// A pointer to one of the service's own blocks among the arguments of
/// `pack` hands that block over (see [`block::SharedBlock::hand_over`]): the
/// message carries it to a service that reads and trashes it. Returns the
/// address to write for `p`.
///
/// # Safety
/// Called on the thread running the service, with no borrow of its
/// buffers alive.
unsafe fn hand_over_block(sh: &Shared, p: usize) -> usize {
    if p == 0 {
        return 0;
    }
    // SAFETY: the borrow of the buffers is the only one and ends here
    // (contract).
    match unsafe { (*sh.buffers.get()).take(p) } {
        Some(v) => block::SharedBlock::hand_over(v),
        None => p,
    }
}

/// Packs the arguments into a buffer of this call's own: `pack_args` may
/// call `__pairs` metamethods, which may pack too, so the shared scratch is
/// taken out for the call and given back after. A Lua error out of
/// `pack_args` leaks the buffer (ManuallyDrop: no destructor may be pending
/// across the longjmp); the next pack starts a new one. On a pack error the
/// message is returned with the buffer given back.
///
/// # Safety
/// Called from a function of this module (see the module doc), `sh` its
/// `Shared`.
unsafe fn pack_into_own_buffer(l: State, sh: &Shared) -> Result<ManuallyDrop<Vec<u8>>, String> {
    // SAFETY: this thread runs the service; the borrow of the scratch ends
    // with the statement.
    let mut buf = ManuallyDrop::new(std::mem::take(unsafe { &mut *sh.scratch.get() }));
    buf.clear();
    // SAFETY: `buf` belongs to this call alone, so Lua code run by
    // pack_args (metamethods) cannot reach it; the closure borrows the
    // buffers only while it runs, from pack_args, with no other borrow
    // alive.
    let r = unsafe { seri::pack_args(l, 1, &mut buf, &mut |p| hand_over_block(sh, p)) };
    match r {
        Ok(()) => Ok(buf),
        Err(e) => {
            let msg = e.to_string();
            drop(e);
            give_scratch_back(sh, buf);
            Err(msg)
        }
    }
}

/// Makes `buf` (emptied) the shared scratch again.
fn give_scratch_back(sh: &Shared, mut buf: ManuallyDrop<Vec<u8>>) {
    buf.clear();
    // SAFETY: this thread runs the service (only it reaches `sh`); no other
    // borrow of the scratch is alive. The replaced one (empty, or made by a
    // nested pack) is dropped.
    unsafe { *sh.scratch.get() = ManuallyDrop::into_inner(buf) };
}

unsafe extern "C-unwind" fn lpack(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc).
    let sh = unsafe { shared(l) };
    // SAFETY: called from this module's function.
    let buf = match unsafe { pack_into_own_buffer(l, sh) } {
        Ok(buf) => buf,
        // SAFETY: the buffer was given back; only the message is alive, and
        // raise_here drops it.
        Err(msg) => unsafe { raise_here(l, msg) },
    };
    let block = buf.as_slice().to_vec();
    give_scratch_back(sh, buf);
    let sz = block.len();
    // SAFETY: the only borrow of the buffers; it ends with the statement.
    let p = unsafe { (*sh.buffers.get()).insert(block) };
    // SAFETY: two pushes of plain values use free slots and do not raise.
    unsafe {
        lua_pushlightuserdata(l, p as *mut c_void);
        lua_pushinteger(l, sz as lua_Integer);
    }
    2
}

unsafe extern "C-unwind" fn lpackstring(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc).
    let sh = unsafe { shared(l) };
    // SAFETY: called from this module's function.
    let buf = match unsafe { pack_into_own_buffer(l, sh) } {
        Ok(buf) => buf,
        // SAFETY: the buffer was given back; raise_here drops the message.
        Err(msg) => unsafe { raise_here(l, msg) },
    };
    // SAFETY: `buf` is this call's own (Lua code cannot reach it) and is a
    // ManuallyDrop, so an out-of-memory error in the push only leaks it.
    unsafe {
        lua_settop(l, 0);
        lua_pushlstring(l, buf.as_ptr() as *const c_char, buf.len());
    }
    give_scratch_back(sh, buf);
    1
}

pub(crate) unsafe extern "C-unwind" fn lunpack(l: State) -> c_int {
    // SAFETY: lua_isnoneornil accepts any index.
    if unsafe { lua_isnoneornil(l, 1) } != 0 {
        return 0;
    }
    // SAFETY: upvalue 1 is the service's Shared (module doc).
    let sh = unsafe { shared(l) };
    // The bytes to read stay valid and unchanged while unpack_all runs Lua
    // code: a string argument stays on the stack, one of the service's
    // blocks is lent (a finalizer that trashes it meanwhile frees a copy),
    // and a shared block is pinned until the message ends.
    let mut loan = 0;
    // SAFETY: lua_type accepts any index.
    let (ptr, len) = if unsafe { lua_type(l, 1) } == LUA_TSTRING {
        // SAFETY: argument 1 is a string, kept on the stack by settop(1).
        let b = unsafe { to_bytes(l, 1) }.unwrap_or(&[]);
        (b.as_ptr(), b.len())
    } else {
        // SAFETY: lua_touserdata accepts any index; luaL_checkinteger
        // raises with nothing to drop.
        let (p, sz) = unsafe { (lua_touserdata(l, 1) as usize, luaL_checkinteger(l, 2)) };
        if sz == 0 {
            return 0;
        }
        if p == 0 {
            // SAFETY: nothing with a destructor is alive.
            unsafe { raise(l, "deserialize null pointer".to_string()) };
        }
        let lent = if sz > 0 {
            // SAFETY: the only borrow of the buffers; it ends with the
            // statement.
            unsafe { (*sh.buffers.get()).lend(p, sz as usize) }
        } else {
            None
        };
        match lent {
            Some(r) => {
                loan = p;
                r
            }
            // SAFETY: block_at runs on the service's thread with no borrow
            // of the buffers alive; only a shared block (pinned) can be
            // found here, the service's own were tried above.
            None => match unsafe { block::block_at(sh, p, sz, "deserialize") }.ok() {
                Some(b) => (b.as_ptr(), b.len()),
                // SAFETY: nothing with a destructor is alive (`ok` dropped
                // the error text).
                None => unsafe { raise(l, "deserialize invalid pointer".to_string()) },
            },
        }
    };
    if len == 0 {
        return 0;
    }
    // SAFETY: (ptr, len) stay valid and unchanged during the call (above);
    // unpack_all returns its errors (a Lua error out of it cuts the loan
    // short, which the end of the message ends).
    let r = unsafe {
        lua_settop(l, 1);
        let input = std::slice::from_raw_parts(ptr, len);
        seri::unpack_all(l, input)
    };
    if loan != 0 {
        // SAFETY: the only borrow of the buffers; it ends with the statement.
        unsafe { (*sh.buffers.get()).end_loan(loan) };
    }
    match r {
        Ok(n) => n,
        // SAFETY: raise drops the message before the longjmp; settop does
        // not raise.
        Err(e) => unsafe {
            lua_settop(l, 1);
            raise(l, e)
        },
    }
}

unsafe extern "C-unwind" fn ltrash(l: State) -> c_int {
    // SAFETY: lua_type accepts any index.
    match unsafe { lua_type(l, 1) } {
        LUA_TLIGHTUSERDATA => {
            // SAFETY: upvalue 1 is the service's Shared (module doc); the
            // borrow of its buffers is the only one and ends with the
            // statement (the block is dropped after it).
            let taken = unsafe {
                let p = lua_touserdata(l, 1) as usize;
                (p, (*shared(l).buffers.get()).take(p))
            };
            if taken.1.is_none() {
                block::SharedBlock::release_handed(taken.0);
            }
            0
        }
        LUA_TSTRING => 0,
        // SAFETY: nothing with a destructor is alive.
        _ => unsafe { raise_here(l, format!("skynet.trash invalid param {}", type_name(l, 1))) },
    }
}

unsafe extern "C-unwind" fn lnow(l: State) -> c_int {
    // SAFETY: pushing an integer uses a free slot and does not raise.
    unsafe { lua_pushinteger(l, kernel().now() as lua_Integer) };
    1
}

unsafe extern "C-unwind" fn lhpc(l: State) -> c_int {
    // SAFETY: as in lnow.
    unsafe { lua_pushinteger(l, hpc() as lua_Integer) };
    1
}

#[cfg(test)]
mod tests {
    use super::super::Shared;
    use super::*;
    use std::ffi::{CStr, CString};

    /// A bare Lua state with core's pure functions as global `core`.
    struct TestLua {
        l: State,
        _shared: Box<Shared>,
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
                lua_createtable(l, 0, 8);
                lua_pushlightuserdata(l, &*shared as *const Shared as *mut c_void);
                let pure: Vec<(&CStr, lua_CFunction)> = FUNCS
                    .iter()
                    .copied()
                    .filter(|(n, _)| {
                        matches!(
                            n.to_bytes(),
                            b"pack" | b"unpack" | b"packstring" | b"trash" | b"tostring"
                        )
                    })
                    .collect();
                set_funcs(l, &pure, 1);
                lua_setglobal(l, c"core".as_ptr());
                TestLua { l, _shared: shared }
            }
        }

        fn run(&self, code: &str) -> Result<String, String> {
            let c = CString::new(code).unwrap();
            // SAFETY: the TestLua's live state, on this thread; errors are
            // caught by lua_pcall, and the result is copied out.
            unsafe {
                let l = self.l;
                lua_settop(l, 0);
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
            // SAFETY: the state is this TestLua's and is closed once, here.
            unsafe { lua_close(self.l) };
        }
    }

    #[test]
    fn a_pack_inside_pairs_leaves_the_outer_pack_whole() {
        let t = TestLua::new();
        let r = t.run(
            r#"
            local inner
            local proxy = setmetatable({}, { __pairs = function()
                inner = core.packstring(1, "two", 3, { deep = true })
                return next, { a = 1, b = "x" }, nil
            end })
            local r, after = core.unpack(core.packstring(proxy, "after"))
            assert(r.a == 1 and r.b == "x" and after == "after", tostring(after))
            local n1, n2, n3, n4 = core.unpack(inner)
            assert(n1 == 1 and n2 == "two" and n3 == 3 and n4.deep == true)
            local p, sz = core.pack("first", proxy)
            local first, r2 = core.unpack(p, sz)
            assert(first == "first" and r2.b == "x")
            core.trash(p, sz)
            return "ok"
        "#,
        );
        assert_eq!(r, Ok("ok".to_string()));
    }

    #[test]
    fn a_block_trashed_by_a_finalizer_during_unpack_is_read_whole() {
        let t = TestLua::new();
        let r = t.run(
            r#"
            collectgarbage("incremental")
            collectgarbage("param", "pause", 0)
            collectgarbage("param", "stepmul", 1000)
            local big = {}
            for i = 1, 20000 do big[i] = { i, tostring(i) } end
            local inside, hits = false, 0
            for attempt = 1, 20 do
                local p, sz = core.pack(big)
                local seen
                setmetatable({}, { __gc = function()
                    seen = inside
                    core.trash(p, sz)
                end })
                inside = true
                local ok, r = pcall(core.unpack, p, sz)
                inside = false
                if seen then
                    hits = hits + 1
                    assert(ok, r)
                    assert(#r == 20000 and r[12345][2] == "12345", "the block changed under unpack")
                    -- trashed during the read: gone now
                    assert(not pcall(core.unpack, p, sz))
                elseif ok then
                    core.trash(p, sz)
                end
                collectgarbage()
            end
            collectgarbage("param", "pause", 200)
            assert(hits > 0, "no finalizer ran during an unpack")
            return "ok"
        "#,
        );
        assert_eq!(r, Ok("ok".to_string()));
    }

    #[test]
    fn c_integer_results() {
        assert_eq!(parse_c_integer("12"), Some(12));
        assert_eq!(parse_c_integer("-3"), Some(-3));
        assert_eq!(parse_c_integer("0x10"), Some(16));
        assert_eq!(parse_c_integer("1.5"), None);
        assert_eq!(parse_c_integer(""), Some(0));
    }
}
