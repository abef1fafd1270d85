//! Bare Lua states of our patched VM for tests that drive it through the C
//! API (no node, no service): the setup they share, on the code state's
//! allocator.

use skynet_node::snlua::codecache;
use skynet_node::snlua::lua::*;

/// Whether a new state's collector runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Gc {
    Running,
    /// Stopped before the libraries are opened, so that memory counts are
    /// exact.
    Stopped,
}

/// A new state with the process's hash seed (as every service state) and
/// the standard libraries. The caller owns the state and closes it.
pub fn new_state(gc: Gc) -> State {
    // SAFETY: a new state, checked non-null before use and used by the
    // calling thread only; outside a protected call an error aborts (no
    // longjmp here).
    unsafe {
        let l = lua_newstate(
            codecache::plain_alloc,
            std::ptr::null_mut(),
            codecache::seed(),
        );
        assert!(!l.is_null());
        if gc == Gc::Stopped {
            lua_gc(l, LUA_GCSTOP);
        }
        luaL_openlibs(l);
        l
    }
}
