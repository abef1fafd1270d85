//! Thin helpers over the raw Lua C API (mlua's `ffi`), used by the native modules
//! that must match skynet's C argument conventions and error texts exactly.
//!
//! Functions that raise Lua errors never return.
//!
//! The rule for every native function: **no Rust value with a destructor is
//! alive across a call that may raise.** A Lua error (`luaL_check*`,
//! `luaL_error`, `lua_error`, [`raise`], and any API call that allocates or
//! may run a metamethod) unwinds the Lua way, with a longjmp to the enclosing
//! `pcall`, past the Rust frames in between; their destructors never run. A
//! `String`, `Vec`, `Box` or `Arc` alive then leaks, and a lock guard or
//! `RefCell` borrow stays taken for good. So: check and convert the arguments
//! first, build Rust values after, and drop them (or give them to Lua as
//! userdata with a `__gc`) before the next call that may raise. [`raise`] and
//! [`raise_here`] take the message by value and drop it before the longjmp.
//! `node/tests/lua_error_leaks.rs` calls every native function with wrong
//! arguments and fails when Rust memory is left behind.

pub use mlua::ffi::*;
use std::ffi::{c_char, c_int, CStr};
use std::mem::ManuallyDrop;

pub type State = *mut lua_State;

/// Pushes a Rust byte string.
#[inline]
pub unsafe fn push_bytes(l: State, s: &[u8]) {
    lua_pushlstring(l, s.as_ptr() as *const c_char, s.len());
}

#[inline]
pub unsafe fn push_str(l: State, s: &str) {
    push_bytes(l, s.as_bytes());
}

/// The bytes of the string (or number, converted in place) at `idx`.
#[inline]
pub unsafe fn to_bytes<'a>(l: State, idx: c_int) -> Option<&'a [u8]> {
    let mut len = 0usize;
    let p = lua_tolstring(l, idx, &mut len);
    if p.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(p as *const u8, len))
    }
}

/// `luaL_checklstring` as a byte slice.
#[inline]
pub unsafe fn check_bytes<'a>(l: State, idx: c_int) -> &'a [u8] {
    let mut len = 0usize;
    let p = luaL_checklstring(l, idx, &mut len);
    std::slice::from_raw_parts(p as *const u8, len)
}

/// `luaL_checklstring` as text (lossy for non-UTF-8 bytes).
#[inline]
pub unsafe fn check_str<'a>(l: State, idx: c_int) -> std::borrow::Cow<'a, str> {
    String::from_utf8_lossy(check_bytes(l, idx))
}

/// The name of the type of the value at `idx`.
pub unsafe fn type_name(l: State, idx: c_int) -> &'static str {
    let t = lua_type(l, idx);
    CStr::from_ptr(lua_typename(l, t)).to_str().unwrap_or("?")
}

/// Raises a Lua error with `msg` (no position prefix, like `lua_error`).
pub unsafe fn raise(l: State, msg: String) -> ! {
    // An out-of-memory error in the push must not skip a destructor: the
    // message is a ManuallyDrop until Lua holds its copy.
    let mut msg = ManuallyDrop::new(msg);
    push_str(l, &msg);
    ManuallyDrop::drop(&mut msg);
    lua_error(l)
}

/// Raises a Lua error with the current position prefixed (like `luaL_error`).
pub unsafe fn raise_here(l: State, msg: String) -> ! {
    let mut msg = ManuallyDrop::new(msg);
    luaL_where(l, 1);
    push_str(l, &msg);
    ManuallyDrop::drop(&mut msg);
    lua_concat(l, 2);
    lua_error(l)
}

/// Like `luaL_setfuncs`: sets `t[name] = f` for the table just below the `nup`
/// upvalues on the top of the stack, each function closing over those upvalues;
/// pops the upvalues.
pub unsafe fn set_funcs(l: State, funcs: &[(&CStr, lua_CFunction)], nup: c_int) {
    luaL_checkstack(l, nup, c"too many upvalues".as_ptr());
    for (name, f) in funcs {
        for _ in 0..nup {
            lua_pushvalue(l, -nup);
        }
        lua_pushcclosure(l, *f, nup);
        lua_setfield(l, -(nup + 2), name.as_ptr());
    }
    lua_pop(l, nup);
}

/// Opens a native module whose functions close over the service's `Shared`
/// (read from the registry field `skynet_context`), like skynet's modules that
/// need the context.
pub unsafe fn open_bound(l: State, funcs: &[(&CStr, lua_CFunction)]) -> c_int {
    lua_getfield(l, LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
    let sh = lua_touserdata(l, -1);
    lua_pop(l, 1);
    if sh.is_null() {
        raise_here(l, "Init skynet context first".to_string());
    }
    lua_createtable(l, 0, funcs.len() as c_int);
    lua_pushlightuserdata(l, sh);
    set_funcs(l, funcs, 1);
    1
}
