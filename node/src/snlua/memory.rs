//! `skynet.memory`: the memory figures of skynet's lua-memory.c, which the
//! debug console's `mem`/`cmem` show: `total`, `block`, `info` (handle ->
//! bytes), `current`, `dump`, `dumpinfo`, and the jemalloc calls `jestat`,
//! `mallctl`, `dumpheap`, `profactive`.
//!
//! skynet counts every allocation made through its malloc, per service. Here
//! the counted memory is what snlua's allocator counts for each Lua state
//! (bytes and live blocks), which is where a Lua service's memory lives. This
//! node does not use jemalloc; the jemalloc calls behave as in a skynet built
//! without it: they log `No jemalloc : ...` and return 0 or false.

use super::lua::*;
use super::{shared, Runtime};
use crate::kernel::kernel;
use std::collections::BTreeMap;
use std::ffi::{c_int, CStr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

/// The Lua states of the live snlua services, by handle.
static LIVE: Mutex<BTreeMap<u32, Weak<Runtime>>> = Mutex::new(BTreeMap::new());

/// Counts `rt` from now on (called once per service, at launch).
pub(crate) fn register(rt: &Arc<Runtime>) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.insert(rt.handle, Arc::downgrade(rt));
}

/// Stops counting `rt` (its state is closed). The entry goes only if it is
/// still `rt`'s: a handle is never reused while its service lives, but this
/// keeps a late drop from removing a newer service of the same handle.
pub(crate) fn unregister(rt: &Arc<Runtime>) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    if live
        .get(&rt.handle)
        .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(rt)))
    {
        live.remove(&rt.handle);
    }
}

/// (handle, bytes, blocks) of every live service, in handle order.
pub(crate) fn snapshot() -> Vec<(u32, usize, usize)> {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::with_capacity(live.len());
    live.retain(|&h, w| match w.upgrade() {
        Some(rt) => {
            out.push((h, rt.memory(), rt.blocks.load(Ordering::Relaxed)));
            true
        }
        None => false,
    });
    out
}

unsafe extern "C-unwind" fn ltotal(l: State) -> c_int {
    let total: usize = snapshot().iter().map(|s| s.1).sum();
    // SAFETY: a live state with room for one value.
    unsafe { lua_pushinteger(l, total as lua_Integer) };
    1
}

unsafe extern "C-unwind" fn lblock(l: State) -> c_int {
    let blocks: usize = snapshot().iter().map(|s| s.2).sum();
    // SAFETY: a live state with room for one value.
    unsafe { lua_pushinteger(l, blocks as lua_Integer) };
    1
}

unsafe extern "C-unwind" fn linfo(l: State) -> c_int {
    let all = snapshot();
    // SAFETY: a live state; `all` is dropped by Rust after the pushes, none
    // of which raise except on out-of-memory (then `all` leaks, harmlessly).
    unsafe {
        lua_createtable(l, 0, all.len() as c_int);
        for (h, bytes, _) in &all {
            lua_pushinteger(l, *bytes as lua_Integer);
            lua_rawseti(l, -2, *h as lua_Integer);
        }
    }
    1
}

unsafe extern "C-unwind" fn lcurrent(l: State) -> c_int {
    // SAFETY: the module is opened with open_bound, so upvalue 1 is this
    // service's Shared, alive while its state runs.
    unsafe {
        let mem = shared(l).runtime.memory();
        lua_pushinteger(l, mem as lua_Integer);
    }
    1
}

/// skynet's dump_c_mem: one log line per service and the total, from handle 0.
fn dump_lines() -> Vec<String> {
    let all = snapshot();
    let mut lines = vec!["dump all service mem:".to_string()];
    let mut total = 0;
    for (h, bytes, _) in &all {
        total += bytes;
        lines.push(format!(":{h:08x} -> {}kb {bytes}b", bytes >> 10));
    }
    lines.push(format!("+total: {}kb", total >> 10));
    lines
}

unsafe extern "C-unwind" fn ldump(_l: State) -> c_int {
    for line in dump_lines() {
        kernel().log(0, &line);
    }
    0
}

unsafe extern "C-unwind" fn ldumpinfo(_l: State) -> c_int {
    let all = snapshot();
    let bytes: usize = all.iter().map(|s| s.1).sum();
    let blocks: usize = all.iter().map(|s| s.2).sum();
    kernel().log(
        0,
        &format!(
            "memory: {} lua services, {bytes} bytes in {blocks} blocks",
            all.len()
        ),
    );
    for (h, bytes, blocks) in &all {
        kernel().log(0, &format!(":{h:08x} {bytes} bytes in {blocks} blocks"));
    }
    0
}

fn no_jemalloc(what: &str) {
    kernel().log(0, &format!("No jemalloc : {what}."));
}

const JESTAT_NAMES: [&CStr; 5] = [
    c"stats.allocated",
    c"stats.resident",
    c"stats.retained",
    c"stats.mapped",
    c"stats.active",
];

unsafe extern "C-unwind" fn ljestat(l: State) -> c_int {
    no_jemalloc("mallctl_int64 epoch");
    // SAFETY: a live state; the names are static C strings.
    unsafe {
        lua_createtable(l, 0, JESTAT_NAMES.len() as c_int);
        for name in JESTAT_NAMES {
            no_jemalloc(&format!("mallctl_int64 {}", name.to_string_lossy()));
            lua_pushinteger(l, 0);
            lua_setfield(l, -2, name.as_ptr());
        }
    }
    1
}

unsafe extern "C-unwind" fn lmallctl(l: State) -> c_int {
    // SAFETY: a live state; check_str raises before anything is owned.
    unsafe {
        let name = check_str(l, 1).into_owned();
        no_jemalloc(&format!("mallctl_int64 {name}"));
        lua_pushinteger(l, 0);
    }
    1
}

unsafe extern "C-unwind" fn ldumpheap(_l: State) -> c_int {
    no_jemalloc("mallctl_cmd prof.dump");
    0
}

unsafe extern "C-unwind" fn lprofactive(l: State) -> c_int {
    no_jemalloc("mallctl_bool prof.active");
    // SAFETY: a live state with room for one value.
    unsafe { lua_pushboolean(l, 0) };
    1
}

const FUNCS: &[(&CStr, lua_CFunction)] = &[
    (c"total", ltotal),
    (c"block", lblock),
    (c"dumpinfo", ldumpinfo),
    (c"jestat", ljestat),
    (c"mallctl", lmallctl),
    (c"dump", ldump),
    (c"info", linfo),
    (c"current", lcurrent),
    (c"dumpheap", ldumpheap),
    (c"profactive", lprofactive),
];

pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: called by require with a live state of a service (open_bound
    // raises if the state has no service context).
    unsafe { open_bound(l, FUNCS) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_services_are_counted_and_gone_ones_dropped() {
        let a = Arc::new(Runtime::new(0x7f00_0001, usize::MAX / 4));
        let b = Arc::new(Runtime::new(0x7f00_0002, usize::MAX / 4));
        a.mem.store(1000, Ordering::Relaxed);
        a.blocks.store(7, Ordering::Relaxed);
        b.mem.store(24, Ordering::Relaxed);
        register(&a);
        register(&b);
        let mine = |s: &[(u32, usize, usize)]| -> Vec<(u32, usize, usize)> {
            s.iter()
                .copied()
                .filter(|e| e.0 >> 8 == 0x7f_0000)
                .collect()
        };
        assert_eq!(
            mine(&snapshot()),
            vec![(0x7f00_0001, 1000, 7), (0x7f00_0002, 24, 0)]
        );
        drop(b);
        assert_eq!(mine(&snapshot()), vec![(0x7f00_0001, 1000, 7)]);
        unregister(&a);
        assert_eq!(mine(&snapshot()), vec![]);
        register(&a);
        let lines = dump_lines();
        assert!(lines.contains(&":7f000001 -> 0kb 1000b".to_string()));
        assert!(
            lines[0] == "dump all service mem:" && lines.last().unwrap().starts_with("+total: ")
        );
    }
}
