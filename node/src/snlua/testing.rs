//! Bare Lua states for tests that need no running node: [`SeriLua`] has this
//! crate's seri functions (`packstring`, `unpack`, `pack`, `trash`, and
//! skynet.core's `tostring` as `msgtostring`) as globals; [`NativeLua`] finds
//! the native modules through `require`, as a service's state does.

use super::lua::*;
use super::{core, Shared};
use std::ffi::{c_char, c_void, CStr, CString};

pub struct SeriLua {
    l: State,
    _shared: Box<Shared>,
}

impl Default for SeriLua {
    fn default() -> Self {
        Self::new()
    }
}

impl SeriLua {
    pub fn new() -> Self {
        let shared = Shared::detached();
        // SAFETY: a new state used by this thread only; outside a protected
        // call a Lua error goes to luaL_newstate's panic function and aborts,
        // never longjmps. The light userdata is the boxed Shared, which the
        // SeriLua keeps until after lua_close (Drop), as `core`'s functions
        // require of their upvalue.
        unsafe {
            let l = luaL_newstate();
            luaL_openlibs(l);
            // skynet.core's tostring is exposed as `msgtostring`, keeping Lua's.
            for (name, f) in core::FUNCS {
                let global = match name.to_bytes() {
                    b"pack" | b"unpack" | b"packstring" | b"trash" => *name,
                    b"tostring" => c"msgtostring",
                    _ => continue,
                };
                lua_pushlightuserdata(l, &*shared as *const Shared as *mut c_void);
                lua_pushcclosure(l, *f, 1);
                lua_setglobal(l, global.as_ptr());
            }
            SeriLua { l, _shared: shared }
        }
    }

    /// Runs `code` (a chunk that returns one string) and returns that string, or
    /// the error message.
    pub fn eval(&self, code: &str) -> Result<Vec<u8>, String> {
        eval_chunk(self.l, code)
    }
}

/// A state with the standard libraries and the native modules found by
/// `require` (skynet.core among them, bound to a service of handle 0). What
/// needs a running kernel (sending, timers, sockets, logging) is not usable.
pub struct NativeLua {
    l: State,
    _shared: Box<Shared>,
}

impl Default for NativeLua {
    fn default() -> Self {
        Self::new()
    }
}

impl NativeLua {
    pub fn new() -> Self {
        let shared = Shared::detached();
        // SAFETY: a fresh state used only by this thread; `shared` is boxed
        // and kept with the state, so the registry's pointer to it stays valid
        // until the state is closed.
        unsafe {
            let l = luaL_newstate();
            luaL_openlibs(l);
            lua_pushlightuserdata(l, &*shared as *const Shared as *mut c_void);
            lua_setfield(l, LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
            super::install_native_modules(l);
            NativeLua { l, _shared: shared }
        }
    }

    /// Sets the global `name` to the C function `f`, for test probes.
    pub fn register(&self, name: &CStr, f: lua_CFunction) {
        // SAFETY: the state is live; pushing a function and setting a global
        // raise only on memory exhaustion, with nothing to drop here.
        unsafe {
            lua_pushcfunction(self.l, f);
            lua_setglobal(self.l, name.as_ptr());
        }
    }

    /// Sets the global `name` to a Lua string of `bytes` (any bytes, NULs
    /// included), so a chunk can read input that no source text can carry.
    pub fn set_global_bytes(&self, name: &CStr, bytes: &[u8]) {
        // SAFETY: the state is live and not running; lua_pushlstring copies
        // the bytes, and these calls raise only on memory exhaustion, which
        // outside a protected call aborts through the panic function.
        unsafe {
            lua_pushlstring(self.l, bytes.as_ptr() as *const c_char, bytes.len());
            lua_setglobal(self.l, name.as_ptr());
        }
    }

    /// Runs `code` (a chunk that returns one string) and returns that string, or
    /// the error message.
    pub fn eval(&self, code: &str) -> Result<Vec<u8>, String> {
        eval_chunk(self.l, code)
    }
}

impl Drop for NativeLua {
    fn drop(&mut self) {
        // SAFETY: the state is live and is not used after this.
        unsafe { lua_close(self.l) };
    }
}

/// Loads and runs `code` in protected mode; the one string it returns, or the
/// error message.
fn eval_chunk(l: State, code: &str) -> Result<Vec<u8>, String> {
    let c = CString::new(code).map_err(|e| e.to_string())?;
    // SAFETY: `l` is a live state of the caller's, used by this thread only
    // and not running now. Loading and the call are protected; the other
    // calls abort on an error rather than longjmp past `c`. The result is
    // copied while on the stack.
    unsafe {
        lua_settop(l, 0);
        if luaL_loadstring(l, c.as_ptr()) != LUA_OK {
            return Err(pop_string(l));
        }
        if lua_pcall(l, 0, 1, 0) != LUA_OK {
            return Err(pop_string(l));
        }
        Ok(to_bytes(l, -1).map(|b| b.to_vec()).unwrap_or_default())
    }
}

/// Pops the value on the top as text (empty if not a string or number).
///
/// # Safety
/// `l` is a live state with a value on the top, outside a protected call.
unsafe fn pop_string(l: State) -> String {
    // SAFETY: the top is a valid index (contract); the bytes are copied
    // before the pop.
    unsafe {
        let s = to_bytes(l, -1)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        lua_pop(l, 1);
        s
    }
}

impl Drop for SeriLua {
    fn drop(&mut self) {
        // SAFETY: the state is ours, closed once, before the Shared its
        // functions point at is dropped (fields drop after this).
        unsafe { lua_close(self.l) };
    }
}
