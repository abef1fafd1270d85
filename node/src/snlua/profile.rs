//! `skynet.profile`: time accounting per coroutine, and the `resume`/`wrap` that
//! snlua installs as `coroutine.resume`/`coroutine.wrap`.
//!
//! skynet reads the thread CPU clock (a system call) on every resume. Here time
//! is read only for coroutines being profiled (after `profile.start`), from the
//! monotonic clock (vDSO, no system call); a resume of any other coroutine costs
//! one table lookup more than the stock one. While a coroutine runs on a worker
//! its monotonic time equals its CPU time unless the OS preempts the worker.
//!
//! Every function here is a Lua C function whose upvalues are set by `open`:
//! 1 the service's `Shared` (or null in a state without one), 2 and 3 the
//! weak-keyed tables of start times and totals (and 4, in `auxwrap`, its
//! coroutine). Nothing with a destructor is ever alive here, so the calls
//! that may raise (allocation, argument checks) are sound; a coroutine's
//! errors are caught by lua_resume, so `enter`/`leave` always pair.

use super::lua::*;
use super::{shared, Runtime};
use crate::timer::hpc;
use std::ffi::c_int;

const STARTS: c_int = 2; // upvalue: coroutine -> start time of the current run
const TOTALS: c_int = 3; // upvalue: coroutine -> time accumulated so far

fn now() -> f64 {
    hpc() as f64 / 1e9
}

/// `require "skynet.profile"`; also used to replace `coroutine.resume`/`wrap`.
///
/// # Safety
/// A Lua C function: `l` is the live state that called it.
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: `l` is live with LUA_MINSTACK free slots (contract), enough
    // for the table, the three upvalues and a metatable; the registry's
    // `skynet_context` is the service's Shared or absent (null, then no
    // signal accounting: see signal_state); set_funcs pops the upvalues.
    unsafe {
        lua_getfield(l, LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
        let sh = lua_touserdata(l, -1);
        lua_pop(l, 1);
        lua_createtable(l, 0, 4);
        lua_pushlightuserdata(l, sh);
        for _ in 0..2 {
            lua_createtable(l, 0, 0);
            lua_createtable(l, 0, 1);
            push_str(l, "k");
            lua_setfield(l, -2, c"__mode".as_ptr());
            lua_setmetatable(l, -2);
        }
        set_funcs(
            l,
            &[
                (c"start", lstart),
                (c"stop", lstop),
                (c"resume", lresume),
                (c"wrap", lwrap),
            ],
            3,
        );
    }
    1
}

/// Leaves only the thread argument (or the running thread) at index 1.
///
/// # Safety
/// Called from a function of this module with its state.
unsafe fn thread_arg(l: State) -> c_int {
    // SAFETY: `l` is the calling state with a free slot; luaL_checktype
    // raises with nothing to drop.
    unsafe {
        if lua_isnoneornil(l, 1) != 0 {
            lua_settop(l, 0);
            lua_pushthread(l);
        } else {
            luaL_checktype(l, 1, LUA_TTHREAD);
            lua_settop(l, 1);
        }
    }
    1
}

unsafe extern "C-unwind" fn lstart(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module (module doc):
    // upvalues 2 and 3 are tables; index 1 is the thread (thread_arg); each
    // push is consumed by the following rawget/rawset. The raise's message
    // holds only a pointer's text, moved in.
    unsafe {
        thread_arg(l);
        lua_pushvalue(l, 1);
        if lua_rawget(l, lua_upvalueindex(STARTS)) != LUA_TNIL {
            raise_here(
                l,
                format!(
                    "Thread {:p} start profile more than once",
                    lua_topointer(l, 1)
                ),
            );
        }
        lua_pop(l, 1);
        lua_pushvalue(l, 1);
        lua_pushnumber(l, 0.0);
        lua_rawset(l, lua_upvalueindex(TOTALS));
        lua_pushvalue(l, 1);
        lua_pushnumber(l, now());
        lua_rawset(l, lua_upvalueindex(STARTS));
    }
    0
}

unsafe extern "C-unwind" fn lstop(l: State) -> c_int {
    // SAFETY: as in lstart.
    unsafe {
        thread_arg(l);
        lua_pushvalue(l, 1);
        if lua_rawget(l, lua_upvalueindex(STARTS)) == LUA_TNIL {
            raise_here(l, "Call profile.start() before profile.stop()".to_string());
        }
        let started = lua_tonumber(l, -1);
        lua_pop(l, 1);
        lua_pushvalue(l, 1);
        lua_rawget(l, lua_upvalueindex(TOTALS));
        let total = lua_tonumber(l, -1);
        lua_pop(l, 1);
        for t in [STARTS, TOTALS] {
            lua_pushvalue(l, 1);
            lua_pushnil(l);
            lua_rawset(l, lua_upvalueindex(t));
        }
        lua_pushnumber(l, now() - started + total);
    }
    1
}

/// Is `co` suspended (resumable)? Mirrors lcorolib's status rules.
///
/// # Safety
/// `co` is a live thread of `l`'s state.
unsafe fn resumable(l: State, co: State) -> Result<(), &'static str> {
    if l == co {
        return Err("cannot resume non-suspended coroutine");
    }
    // SAFETY: `co` is live (contract).
    match unsafe { lua_status(co) } {
        LUA_YIELD => Ok(()),
        LUA_OK => {
            // SAFETY: lua_Debug is plain C data (integers, raw pointers, a
            // char array), valid all zero.
            let mut ar: lua_Debug = unsafe { std::mem::zeroed() };
            // SAFETY: `co` is live; `ar` is a valid lua_Debug to fill.
            if unsafe { lua_getstack(co, 0, &mut ar) } != 0 {
                Err("cannot resume non-suspended coroutine")
            // SAFETY: `co` is live.
            } else if unsafe { lua_gettop(co) } == 0 {
                Err("cannot resume dead coroutine")
            } else {
                Ok(())
            }
        }
        _ => Err("cannot resume dead coroutine"),
    }
}

/// Resumes `co` with `narg` values from `l`; returns the number of results moved
/// to `l`, or -1 with the error object on `l`'s top.
///
/// # Safety
/// Called from a function of this module with its state `l`, which has
/// `narg` arguments on its top; `co` is a live thread of the same state,
/// kept referenced by the caller (a stack slot or an upvalue).
unsafe fn aux_resume(l: State, co: State, narg: c_int) -> c_int {
    // SAFETY: as the contract says; the pushes and moves stay within the
    // room lua_checkstack grants; lua_resume catches the coroutine's errors
    // (so `leave` always follows `enter`); `sig` is the service's Runtime,
    // alive as long as the state.
    unsafe {
        if let Err(msg) = resumable(l, co) {
            push_str(l, msg);
            return -1;
        }
        if lua_checkstack(co, narg) == 0 {
            push_str(l, "too many arguments to resume");
            return -1;
        }
        lua_xmove(l, co, narg);
        let sig = signal_state(l);
        let previous = sig.map(|s| s.enter(co));
        let mut nres: c_int = 0;
        let status = lua_resume(co, l, narg, &mut nres);
        if let (Some(s), Some(p)) = (sig, previous) {
            s.leave(p);
        }
        if status == LUA_OK || status == LUA_YIELD {
            if lua_checkstack(l, nres + 1) == 0 {
                lua_pop(co, nres);
                push_str(l, "too many results to resume");
                return -1;
            }
            lua_xmove(co, l, nres);
            nres
        } else {
            lua_xmove(co, l, 1);
            -1
        }
    }
}

/// The service's Runtime, if the state has a Shared (upvalue 1).
///
/// # Safety
/// Called from a function of this module with its state.
unsafe fn signal_state<'a>(l: State) -> Option<&'a Runtime> {
    // SAFETY: upvalue 1 is the light userdata `open` found (module doc).
    let p = unsafe { lua_touserdata(l, lua_upvalueindex(1)) };
    if p.is_null() {
        None
    } else {
        // SAFETY: non-null, it is the service's Shared, which outlives the
        // state.
        Some(unsafe { &shared(l).runtime })
    }
}

/// aux_resume with time accounting for profiled coroutines. `co_index` holds
/// the coroutine on `l`'s stack.
///
/// # Safety
/// As [`aux_resume`], `co` being the thread at `co_index`.
unsafe fn timed_resume(l: State, co_index: c_int, co: State, narg: c_int) -> c_int {
    // SAFETY: upvalues 2 and 3 are tables (module doc); each push is
    // consumed by the next rawget/rawset, so the arguments stay on the top
    // for aux_resume, whose contract is ours.
    unsafe {
        lua_pushvalue(l, co_index);
        let profiled = lua_rawget(l, lua_upvalueindex(STARTS)) != LUA_TNIL;
        lua_pop(l, 1);
        if !profiled {
            return aux_resume(l, co, narg);
        }
        let start = now();
        lua_pushvalue(l, co_index);
        lua_pushnumber(l, start);
        lua_rawset(l, lua_upvalueindex(STARTS));
        // The arguments must stay on top for aux_resume.
        let r = aux_resume(l, co, narg);
        let spent = now() - start;
        lua_pushvalue(l, co_index);
        if lua_rawget(l, lua_upvalueindex(TOTALS)) == LUA_TNUMBER {
            let total = lua_tonumber(l, -1) + spent;
            lua_pop(l, 1);
            lua_pushvalue(l, co_index);
            lua_pushnumber(l, total);
            lua_rawset(l, lua_upvalueindex(TOTALS));
        } else {
            lua_pop(l, 1);
        }
        r
    }
}

unsafe extern "C-unwind" fn lresume(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module (module doc). `co`
    // is the thread at index 1, which stays there, so it lives through the
    // resume; the raise's message is built before the call; the results
    // fit (aux_resume checked the room for them and one more).
    unsafe {
        let co = lua_tothread(l, 1);
        if co.is_null() {
            raise_here(
                l,
                format!(
                    "bad argument #1 to 'resume' (coroutine expected, got {})",
                    type_name(l, 1)
                ),
            );
        }
        let narg = lua_gettop(l) - 1;
        let r = timed_resume(l, 1, co, narg);
        if r < 0 {
            lua_pushboolean(l, 0);
            lua_insert(l, -2);
            2
        } else {
            lua_pushboolean(l, 1);
            lua_insert(l, -(r + 1));
            r + 1
        }
    }
}

unsafe extern "C-unwind" fn lwrap(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module (module doc), so
    // upvalues 1..=3 exist; the check raises with nothing to drop; five
    // pushes fit in the free slots; the new closure keeps the thread.
    unsafe {
        luaL_checktype(l, 1, LUA_TFUNCTION);
        let nl = lua_newthread(l);
        lua_pushvalue(l, 1);
        lua_xmove(l, nl, 1);
        // upvalues: shared, starts, totals, the coroutine
        lua_pushvalue(l, lua_upvalueindex(1));
        lua_pushvalue(l, lua_upvalueindex(2));
        lua_pushvalue(l, lua_upvalueindex(3));
        lua_pushvalue(l, -4);
        lua_pushcclosure(l, auxwrap, 4);
    }
    1
}

unsafe extern "C-unwind" fn auxwrap(l: State) -> c_int {
    // SAFETY: a closure made by lwrap: upvalues 1..=3 as in the module doc,
    // 4 the coroutine, which the closure keeps alive and which is also put
    // at index 1 for the resume. The error path raises with nothing to
    // drop.
    unsafe {
        let co = lua_tothread(l, lua_upvalueindex(4));
        let narg = lua_gettop(l);
        lua_pushvalue(l, lua_upvalueindex(4));
        lua_insert(l, 1);
        let r = timed_resume(l, 1, co, narg);
        if r < 0 {
            let mut stat = lua_status(co);
            if stat != LUA_OK && stat != LUA_YIELD {
                stat = lua_closethread(co, l);
                lua_xmove(co, l, 1);
            }
            if stat != LUA_ERRMEM && lua_type(l, -1) == LUA_TSTRING {
                luaL_where(l, 1);
                lua_insert(l, -2);
                lua_concat(l, 2);
            }
            lua_error(l)
        }
        lua_remove(l, 1);
        r
    }
}
