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
use std::ffi::{c_char, c_int, c_void, CStr};
use std::mem::ManuallyDrop;

pub type State = *mut lua_State;

/// Pushes a Rust byte string.
///
/// # Safety
/// `l` must be a live state with a free stack slot.
#[inline]
pub unsafe fn push_bytes(l: State, s: &[u8]) {
    // SAFETY: `l` is live with a free slot (contract); the pointer and length
    // describe `s`, which Lua copies before returning.
    unsafe { lua_pushlstring(l, s.as_ptr() as *const c_char, s.len()) };
}

/// Pushes a Rust string.
///
/// # Safety
/// As [`push_bytes`].
#[inline]
pub unsafe fn push_str(l: State, s: &str) {
    // SAFETY: same contract as ours.
    unsafe { push_bytes(l, s.as_bytes()) };
}

/// The bytes of the string (or number, converted in place) at `idx`.
///
/// # Safety
/// `l` must be a live state and `idx` an acceptable index. The slice borrows
/// Lua's string: the caller must not use it after that value may have been
/// collected (popped or replaced on the stack).
#[inline]
pub unsafe fn to_bytes<'a>(l: State, idx: c_int) -> Option<&'a [u8]> {
    let mut len = 0usize;
    // SAFETY: `l` is live and `idx` acceptable (contract); `len` is a valid
    // out-pointer.
    let p = unsafe { lua_tolstring(l, idx, &mut len) };
    if p.is_null() {
        None
    } else {
        // SAFETY: a non-null result points at `len` bytes of a Lua string,
        // alive as long as the caller keeps the value (contract).
        Some(unsafe { std::slice::from_raw_parts(p as *const u8, len) })
    }
}

/// `luaL_checklstring` as a byte slice.
///
/// # Safety
/// As [`to_bytes`]; also, this raises a Lua error (longjmp) for a
/// non-string, so nothing with a destructor may be alive in the caller.
#[inline]
pub unsafe fn check_bytes<'a>(l: State, idx: c_int) -> &'a [u8] {
    let mut len = 0usize;
    // SAFETY: `l` is live (contract); `len` is a valid out-pointer; a raise
    // skips only plain locals here.
    let p = unsafe { luaL_checklstring(l, idx, &mut len) };
    // SAFETY: luaL_checklstring returns only with a non-null pointer to
    // `len` bytes of a Lua string, alive while the caller keeps the value.
    unsafe { std::slice::from_raw_parts(p as *const u8, len) }
}

/// `luaL_checklstring` as text (lossy for non-UTF-8 bytes).
///
/// # Safety
/// As [`check_bytes`].
#[inline]
pub unsafe fn check_str<'a>(l: State, idx: c_int) -> std::borrow::Cow<'a, str> {
    // SAFETY: same contract as ours; the Cow is built after the check.
    String::from_utf8_lossy(unsafe { check_bytes(l, idx) })
}

/// The name of the type of the value at `idx`.
///
/// # Safety
/// `l` must be a live state and `idx` an acceptable index.
pub unsafe fn type_name(l: State, idx: c_int) -> &'static str {
    // SAFETY: `l` is live, `idx` acceptable (contract); lua_typename returns
    // a static NUL-terminated name for every type lua_type reports.
    unsafe {
        let t = lua_type(l, idx);
        CStr::from_ptr(lua_typename(l, t)).to_str().unwrap_or("?")
    }
}

/// Raises a Lua error with `msg` (no position prefix, like `lua_error`).
///
/// # Safety
/// `l` must be a live state with a free stack slot, inside a protected call;
/// nothing with a destructor may be alive in the callers (longjmp).
pub unsafe fn raise(l: State, msg: String) -> ! {
    // An out-of-memory error in the push must not skip a destructor: the
    // message is a ManuallyDrop until Lua holds its copy.
    let mut msg = ManuallyDrop::new(msg);
    // SAFETY: `l` is live (contract); the push copies the message, which is
    // then dropped once, before the longjmp; an error in the push only leaks
    // it (ManuallyDrop).
    unsafe {
        push_str(l, &msg);
        ManuallyDrop::drop(&mut msg);
        lua_error(l)
    }
}

/// Raises a Lua error with the current position prefixed (like `luaL_error`).
///
/// # Safety
/// As [`raise`], with two free stack slots.
pub unsafe fn raise_here(l: State, msg: String) -> ! {
    let mut msg = ManuallyDrop::new(msg);
    // SAFETY: as in `raise` (an error in luaL_where or the push only leaks
    // the message); luaL_where and lua_concat use the two slots.
    unsafe {
        luaL_where(l, 1);
        push_str(l, &msg);
        ManuallyDrop::drop(&mut msg);
        lua_concat(l, 2);
        lua_error(l)
    }
}

/// Like `luaL_setfuncs`: sets `t[name] = f` for the table just below the `nup`
/// upvalues on the top of the stack, each function closing over those upvalues;
/// pops the upvalues.
///
/// # Safety
/// `l` must be a live state with a table at `-(nup + 1)` and `nup` values
/// above it. May raise (out of memory, stack overflow).
pub unsafe fn set_funcs(l: State, funcs: &[(&CStr, lua_CFunction)], nup: c_int) {
    // SAFETY: the stack holds the table and `nup` upvalues (contract);
    // luaL_checkstack makes room for the copies; each name is a C string
    // that outlives the call (Lua interns it); nothing here has a destructor.
    unsafe {
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
}

/// The service's `Shared` pointer that snlua keeps in the registry as
/// `skynet_context`; raises "Init skynet context first" when it is missing.
///
/// # Safety
/// `l` must be the live state of a Lua C function call.
pub unsafe fn skynet_context(l: State) -> *mut c_void {
    // SAFETY: `l` is live with LUA_MINSTACK free slots (contract); the field
    // is read and popped, and the raise has nothing to drop.
    unsafe {
        lua_getfield(l, LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
        let sh = lua_touserdata(l, -1);
        lua_pop(l, 1);
        if sh.is_null() {
            raise_here(l, "Init skynet context first".to_string());
        }
        sh
    }
}

/// Opens a native module whose functions close over the service's `Shared`
/// (read from the registry field `skynet_context`), like skynet's modules that
/// need the context.
///
/// # Safety
/// `l` must be the live state of a Lua C function call (a `require` opener).
pub unsafe fn open_bound(l: State, funcs: &[(&CStr, lua_CFunction)]) -> c_int {
    // SAFETY: `l` is live with LUA_MINSTACK free slots (contract);
    // skynet_context raises with nothing to drop; the table then gets the
    // light userdata as the one upvalue.
    unsafe {
        let sh = skynet_context(l);
        lua_createtable(l, 0, funcs.len() as c_int);
        lua_pushlightuserdata(l, sh);
        set_funcs(l, funcs, 1);
    }
    1
}
