//! A bare Lua state with this crate's seri functions (`packstring`, `unpack`,
//! `pack`, `trash`, and skynet.core's `tostring` as `msgtostring`) as globals, for conformance tests that need no running node.

use super::lua::*;
use super::{core, Shared};
use std::ffi::{c_void, CString};

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
        unsafe {
            let l = self.l;
            lua_settop(l, 0);
            let c = CString::new(code).map_err(|e| e.to_string())?;
            if luaL_loadstring(l, c.as_ptr()) != LUA_OK {
                return Err(pop_string(l));
            }
            if lua_pcall(l, 0, 1, 0) != LUA_OK {
                return Err(pop_string(l));
            }
            Ok(to_bytes(l, -1).map(|b| b.to_vec()).unwrap_or_default())
        }
    }
}

unsafe fn pop_string(l: State) -> String {
    let s = to_bytes(l, -1)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    lua_pop(l, 1);
    s
}

impl Drop for SeriLua {
    fn drop(&mut self) {
        unsafe { lua_close(self.l) };
    }
}
