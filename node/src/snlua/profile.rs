//! `skynet.profile`: time accounting per coroutine, and the `resume`/`wrap` that
//! snlua installs as `coroutine.resume`/`coroutine.wrap`.
//!
//! skynet reads the thread CPU clock (a system call) on every resume. Here time
//! is read only for coroutines being profiled (after `profile.start`), from the
//! monotonic clock (vDSO, no system call); a resume of any other coroutine costs
//! one table lookup more than the stock one. While a coroutine runs on a worker
//! its monotonic time equals its CPU time unless the OS preempts the worker.

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
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
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
    1
}

unsafe fn thread_arg(l: State) -> c_int {
    if lua_isnoneornil(l, 1) != 0 {
        lua_settop(l, 0);
        lua_pushthread(l);
    } else {
        luaL_checktype(l, 1, LUA_TTHREAD);
        lua_settop(l, 1);
    }
    1
}

unsafe extern "C-unwind" fn lstart(l: State) -> c_int {
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
    0
}

unsafe extern "C-unwind" fn lstop(l: State) -> c_int {
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
    1
}

/// Is `co` suspended (resumable)? Mirrors lcorolib's status rules.
unsafe fn resumable(l: State, co: State) -> Result<(), &'static str> {
    if l == co {
        return Err("cannot resume non-suspended coroutine");
    }
    match lua_status(co) {
        LUA_YIELD => Ok(()),
        LUA_OK => {
            let mut ar: lua_Debug = std::mem::zeroed();
            if lua_getstack(co, 0, &mut ar) != 0 {
                Err("cannot resume non-suspended coroutine")
            } else if lua_gettop(co) == 0 {
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
unsafe fn aux_resume(l: State, co: State, narg: c_int) -> c_int {
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

unsafe fn signal_state<'a>(l: State) -> Option<&'a Runtime> {
    let p = lua_touserdata(l, lua_upvalueindex(1));
    if p.is_null() {
        None
    } else {
        Some(&shared(l).runtime)
    }
}

/// aux_resume with time accounting for profiled coroutines. `co_index` holds
/// the coroutine on `l`'s stack.
unsafe fn timed_resume(l: State, co_index: c_int, co: State, narg: c_int) -> c_int {
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

unsafe extern "C-unwind" fn lresume(l: State) -> c_int {
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

unsafe extern "C-unwind" fn lwrap(l: State) -> c_int {
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
    1
}

unsafe extern "C-unwind" fn auxwrap(l: State) -> c_int {
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
