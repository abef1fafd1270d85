//! Bare Lua states of our patched VM for tests that drive it through the C
//! API (no node, no service): the allocator and the setup they share.

use skynet_node::snlua::codecache;
use skynet_node::snlua::lua::*;
use std::ffi::c_void;

/// A plain `lua_Alloc` on the C heap.
///
/// # Safety
/// As any `lua_Alloc`: `ptr` is null or a block this function returned.
unsafe extern "C" fn alloc(
    _ud: *mut c_void,
    ptr: *mut c_void,
    _osize: usize,
    nsize: usize,
) -> *mut c_void {
    if nsize == 0 {
        // SAFETY: Lua frees a block this allocator returned (or null).
        unsafe { libc::free(ptr) };
        std::ptr::null_mut()
    } else {
        // SAFETY: `ptr` is null or a block this allocator returned.
        unsafe { libc::realloc(ptr, nsize) }
    }
}

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
        let l = lua_newstate(alloc, std::ptr::null_mut(), codecache::seed());
        assert!(!l.is_null());
        if gc == Gc::Stopped {
            lua_gc(l, LUA_GCSTOP);
        }
        luaL_openlibs(l);
        l
    }
}
