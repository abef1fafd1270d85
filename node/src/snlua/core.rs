//! `skynet.core`: the native module every Lua service talks to the kernel with.
//! Argument conventions, results and error texts follow skynet's lua-skynet.c.

use super::lua::*;
use super::{block, seri, shared, Shared, CALLBACK_KEY};
use crate::address::Address;
use crate::command;
use crate::kernel::{kernel, SendError};
use crate::timer::hpc;
use std::ffi::{c_int, c_void};

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
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    open_bound(l, FUNCS)
}

enum Dest<'a> {
    Handle(u32),
    Name(&'a [u8]),
}

/// Shared body of send and redirect. `idx_type` is the stack index of the type.
unsafe fn send_message(l: State, sh: &Shared, source: u32, idx_type: c_int) -> c_int {
    let dest = match lua_type(l, 1) {
        LUA_TNUMBER => {
            let d = lua_tointegerx(l, 1, std::ptr::null_mut()) as u32;
            if d == 0 {
                raise_here(l, "Invalid service address 0".to_string());
            }
            Dest::Handle(d)
        }
        LUA_TSTRING => Dest::Name(to_bytes(l, 1).unwrap_or(&[])),
        _ => raise_here(
            l,
            format!(
                "dest address type ({}) must be a string or number.",
                type_name(l, 1)
            ),
        ),
    };
    let ty = luaL_checkinteger(l, idx_type);
    let idx_session = idx_type + 1;
    let session_arg = if lua_isnil(l, idx_session) != 0 {
        None
    } else {
        Some(luaL_checkinteger(l, idx_session) as i32)
    };
    let idx_msg = idx_type + 2;
    enum Payload<'a> {
        Copy(&'a [u8]),
        Owned(usize, usize),
    }
    let payload = match lua_type(l, idx_msg) {
        LUA_TSTRING => Payload::Copy(to_bytes(l, idx_msg).unwrap_or(&[])),
        LUA_TLIGHTUSERDATA => {
            let p = lua_touserdata(l, idx_msg) as usize;
            let sz = luaL_checkinteger(l, idx_msg + 1);
            if p != 0 {
                if let Err(e) = block::check_own_block(&*sh.buffers.get(), p, sz) {
                    raise_here(l, e.text("invalid param (not a message of this service)"));
                }
            }
            Payload::Owned(p, sz.max(0) as usize)
        }
        _ => raise_here(l, format!("invalid param {}", type_name(l, idx_msg))),
    };
    // No Lua error can happen past this point: the payload may now be owned.
    let data = match payload {
        Payload::Copy(s) => s.to_vec(),
        Payload::Owned(0, _) => Vec::new(),
        Payload::Owned(p, sz) => block::take_own_block(&mut *sh.buffers.get(), p, sz),
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
            lua_pushinteger(l, session as lua_Integer);
            1
        }
        Err(SendError::TooLarge(_)) => {
            lua_pushboolean(l, 0);
            1
        }
        Err(_) => 0,
    }
}

unsafe extern "C-unwind" fn lsend(l: State) -> c_int {
    send_message(l, shared(l), 0, 2)
}

unsafe extern "C-unwind" fn lredirect(l: State) -> c_int {
    let source = luaL_checkinteger(l, 2) as u32;
    send_message(l, shared(l), source, 3)
}

unsafe extern "C-unwind" fn lgenid(l: State) -> c_int {
    lua_pushinteger(l, shared(l).ctx.new_session() as lua_Integer);
    1
}

/// The optional parameter of a command, as text.
unsafe fn command_param(l: State) -> Option<String> {
    if lua_gettop(l) >= 2 && lua_isnil(l, 2) == 0 {
        to_bytes(l, 2).map(|b| String::from_utf8_lossy(b).into_owned())
    } else {
        None
    }
}

unsafe extern "C-unwind" fn lcommand(l: State) -> c_int {
    let sh = shared(l);
    let cmd = check_str(l, 1).into_owned();
    let param = command_param(l);
    match command::command(&sh.ctx, &cmd, param.as_deref()) {
        Some(r) => {
            push_str(l, &r);
            1
        }
        None => 0,
    }
}

unsafe extern "C-unwind" fn lintcommand(l: State) -> c_int {
    let sh = shared(l);
    // What every skynet.timeout and skynet.sleep sends; same result as the
    // text command below, without the text round trip.
    if check_bytes(l, 1) == b"TIMEOUT" && lua_gettop(l) >= 2 && lua_isnumber(l, 2) != 0 {
        let ti = luaL_checkinteger(l, 2) as i32;
        lua_pushinteger(l, command::timeout_session(&sh.ctx, ti) as lua_Integer);
        return 1;
    }
    let cmd = check_str(l, 1).into_owned();
    let param = if lua_gettop(l) >= 2 {
        if lua_isnumber(l, 2) != 0 {
            Some((luaL_checkinteger(l, 2) as i32).to_string())
        } else {
            Some(check_str(l, 2).into_owned())
        }
    } else {
        None
    };
    let Some(result) = command::command(&sh.ctx, &cmd, param.as_deref()) else {
        return 0;
    };
    if let Some(i) = parse_c_integer(&result) {
        lua_pushinteger(l, i);
    } else if let Ok(f) = result.trim().parse::<f64>() {
        lua_pushnumber(l, f);
    } else {
        raise_here(l, format!("Invalid result {result}"));
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
    let sh = shared(l);
    let cmd = check_str(l, 1).into_owned();
    let param = command_param(l);
    let Some(result) = command::command(&sh.ctx, &cmd, param.as_deref()) else {
        return 0;
    };
    match Address::parse(&result) {
        Address::Handle(h) => {
            lua_pushinteger(l, h as lua_Integer);
            1
        }
        _ => 0,
    }
}

unsafe extern "C-unwind" fn lerror(l: State) -> c_int {
    let sh = shared(l);
    let n = lua_gettop(l).max(1);
    let mut line: Vec<u8> = Vec::new();
    for i in 1..=n {
        let mut len = 0usize;
        let p = luaL_tolstring(l, i, &mut len);
        line.extend_from_slice(std::slice::from_raw_parts(p as *const u8, len));
        lua_pop(l, 1);
        if i < n {
            line.push(b' ');
        }
    }
    kernel().log_bytes(sh.handle, line);
    0
}

unsafe extern "C-unwind" fn lharbor(l: State) -> c_int {
    let h = luaL_checkinteger(l, 1) as u32;
    lua_pushinteger(l, (h >> 24) as lua_Integer);
    lua_pushboolean(l, kernel().is_remote(h) as c_int);
    2
}

unsafe extern "C-unwind" fn lcallback(l: State) -> c_int {
    let sh = shared(l);
    luaL_checktype(l, 1, LUA_TFUNCTION);
    let forward = lua_toboolean(l, 2) != 0;
    lua_settop(l, 1);
    lua_rawsetp(
        l,
        LUA_REGISTRYINDEX,
        &CALLBACK_KEY as *const u8 as *const c_void,
    );
    sh.forward.set(forward);
    0
}

unsafe extern "C-unwind" fn ltrace(l: State) -> c_int {
    let sh = shared(l);
    let tag = check_str(l, 1).into_owned();
    let user = check_str(l, 2).into_owned();
    let mut text = format!("<TRACE {tag}> {} {user}", hpc());
    if lua_isnoneornil(l, 3) == 0 {
        let (co, mut level) = if lua_type(l, 3) == LUA_TTHREAD {
            (lua_tothread(l, 3), luaL_optinteger(l, 4, 1) as c_int)
        } else {
            (l, luaL_optinteger(l, 3, 1) as c_int)
        };
        let mut frames = Vec::new();
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
        if !frames.is_empty() {
            text.push_str(" : ");
            text.push_str(&frames.join(" "));
        }
    }
    kernel().log(sh.handle, &text);
    0
}

/// The block behind (`ptr`, `sz`) arguments at `idx`, `idx+1`: one of the
/// service's own blocks or a shared block (see [`block`]).
unsafe fn message_arg<'a>(l: State, sh: &'a Shared, idx: c_int, what: &str) -> &'a [u8] {
    let p = lua_touserdata(l, idx) as usize;
    let sz = luaL_checkinteger(l, idx + 1);
    match block::block_at(sh, p, sz, what) {
        Ok(b) => b,
        Err(e) => raise_here(l, e),
    }
}

unsafe extern "C-unwind" fn ltostring(l: State) -> c_int {
    if lua_isnoneornil(l, 1) != 0 {
        return 0;
    }
    let bytes = message_arg(l, shared(l), 1, "tostring");
    push_bytes(l, bytes);
    1
}

/// A pointer to one of the service's own blocks among the arguments of
/// `pack` hands that block over (see [`block::SharedBlock::hand_over`]): the
/// message carries it to a service that reads and trashes it. Returns the
/// address to write for `p`.
unsafe fn hand_over_block(sh: &Shared, p: usize) -> usize {
    if p == 0 {
        return 0;
    }
    match (*sh.buffers.get()).take(p) {
        Some(v) => block::SharedBlock::hand_over(v),
        None => p,
    }
}

unsafe extern "C-unwind" fn lpack(l: State) -> c_int {
    let sh = shared(l);
    let scratch = &mut *sh.scratch.get();
    scratch.clear();
    if let Err(e) = seri::pack_args(l, 1, scratch, &mut |p| hand_over_block(sh, p)) {
        scratch.clear();
        raise_here(l, e.to_string());
    }
    let block = scratch.as_slice().to_vec();
    scratch.clear();
    let sz = block.len();
    let p = (*sh.buffers.get()).insert(block);
    lua_pushlightuserdata(l, p as *mut c_void);
    lua_pushinteger(l, sz as lua_Integer);
    2
}

unsafe extern "C-unwind" fn lpackstring(l: State) -> c_int {
    let sh = shared(l);
    let scratch = &mut *sh.scratch.get();
    scratch.clear();
    if let Err(e) = seri::pack_args(l, 1, scratch, &mut |p| hand_over_block(sh, p)) {
        scratch.clear();
        raise_here(l, e.to_string());
    }
    lua_settop(l, 0);
    push_bytes(l, scratch);
    scratch.clear();
    1
}

pub(crate) unsafe extern "C-unwind" fn lunpack(l: State) -> c_int {
    if lua_isnoneornil(l, 1) != 0 {
        return 0;
    }
    let sh = shared(l);
    let (ptr, len) = if lua_type(l, 1) == LUA_TSTRING {
        let b = to_bytes(l, 1).unwrap_or(&[]);
        (b.as_ptr(), b.len())
    } else {
        let p = lua_touserdata(l, 1) as usize;
        let sz = luaL_checkinteger(l, 2);
        if sz == 0 {
            return 0;
        }
        if p == 0 {
            raise(l, "deserialize null pointer".to_string());
        }
        match block::block_at(sh, p, sz, "deserialize") {
            Ok(b) => (b.as_ptr(), b.len()),
            Err(_) => raise(l, "deserialize invalid pointer".to_string()),
        }
    };
    if len == 0 {
        return 0;
    }
    lua_settop(l, 1);
    let input = std::slice::from_raw_parts(ptr, len);
    match seri::unpack_all(l, input) {
        Ok(n) => n,
        Err(e) => {
            lua_settop(l, 1);
            raise(l, e)
        }
    }
}

unsafe extern "C-unwind" fn ltrash(l: State) -> c_int {
    match lua_type(l, 1) {
        LUA_TLIGHTUSERDATA => {
            let p = lua_touserdata(l, 1) as usize;
            if (*shared(l).buffers.get()).take(p).is_none() {
                block::SharedBlock::release_handed(p);
            }
            0
        }
        LUA_TSTRING => 0,
        _ => raise_here(l, format!("skynet.trash invalid param {}", type_name(l, 1))),
    }
}

unsafe extern "C-unwind" fn lnow(l: State) -> c_int {
    lua_pushinteger(l, kernel().now() as lua_Integer);
    1
}

unsafe extern "C-unwind" fn lhpc(l: State) -> c_int {
    lua_pushinteger(l, hpc() as lua_Integer);
    1
}

#[cfg(test)]
mod tests {
    use super::parse_c_integer;

    #[test]
    fn c_integer_results() {
        assert_eq!(parse_c_integer("12"), Some(12));
        assert_eq!(parse_c_integer("-3"), Some(-3));
        assert_eq!(parse_c_integer("0x10"), Some(16));
        assert_eq!(parse_c_integer("1.5"), None);
        assert_eq!(parse_c_integer(""), Some(0));
    }
}
