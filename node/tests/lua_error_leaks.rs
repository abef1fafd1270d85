//! The contract of `snlua/lua.rs`: a native function keeps no Rust value with a
//! destructor alive across a call that may raise a Lua error, because the error
//! longjmps over the Rust frames and the destructor never runs.
//!
//! A break leaks: a `String`, `Vec` or `Box` alive when the error is raised is
//! never freed. This test counts the blocks of Rust's allocator that are alive
//! (Lua's own memory comes from C malloc in these states and is not counted),
//! calls every function of the native modules with many wrong argument lists
//! inside `pcall`, and asserts that repeating those calls leaves no more Rust
//! blocks alive than the first round did.

use skynet_node::snlua::lua::{lua_Integer, lua_pushinteger, State};
use skynet_node::snlua::testing::NativeLua;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::c_int;

/// The system allocator, counting the blocks alive by the thread that made
/// them (each test runs on its own thread; a block freed by another thread is
/// counted there, which these single-threaded probes never do).
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // A thread being torn down has no counter any more; its blocks do not
    // matter to the probes.
    let _ = LIVE.try_with(|c| c.set(c.get() + delta));
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// GlobalAlloc contract; the counter has no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-1);
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(1);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the block count does not change.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// `live_blocks()`: the number of Rust heap blocks alive now.
unsafe extern "C-unwind" fn live_blocks(l: State) -> c_int {
    // SAFETY: Lua calls this with its live state; one push, with room for it
    // (a C function gets LUA_MINSTACK slots).
    unsafe { lua_pushinteger(l, LIVE.with(Cell::get) as lua_Integer) };
    1
}

/// The native modules probed: all that work without a running kernel
/// (`skynet.socketdriver` needs the socket server).
const MODULES: &str = r#""skynet.core", "skynet.profile", "skynet.codecache", "skynet.stm",
    "skynet.multicast.core", "sproto.core", "sprotoparser.core",
    "skynet.sharedata.core", "skynet.sharetable.core", "http.websocket.core",
    "skynet.crypt", "md5.core""#;

fn probe(modules: &str) -> String {
    PROBE.replace("MODULES", modules).replace("ROUNDS", "4")
}

/// Calls each function of each module with every argument list, `rounds` + 1
/// times; returns "module.function +n" for each function after which more Rust
/// blocks were alive than after its first round, one line each, and a count of
/// the calls made that raised.
const PROBE: &str = r#"
local modules = { MODULES }
-- Functions that are not probed, with the reason.
local skip = {
    -- need a running kernel (they send, log, read the clock or sockets)
    ["skynet.core"] = { send = 1, redirect = 1, genid = 1, command = 1,
        intcommand = 1, addresscommand = 1, error = 1, callback = 1,
        harbor = 1, self = 1, now = 1, hpc = 1, trace = 1, context = 1,
        isremote = 1, selfaddress = 1,
        -- return a message block that the caller owns and frees later
        pack = 1 },
    -- make a package that lives until it is bound and closed
    ["skynet.multicast.core"] = { pack = 1, packremote = 1 },
    -- makes an object that lives until `delete`
    ["skynet.sharedata.core"] = { new = 1 },
    -- changes the process-wide code cache mode for every later state
    ["skynet.codecache"] = { mode = 1 },
}
local values = { false, 0, -1, 1 << 40, 1.5, "", "abcdefgh",
    string.rep("x", 300), {}, {1, 2, x = "y"}, true, print }
local lists = { {} }
for _, a in ipairs(values) do
    lists[#lists + 1] = { a }
    for _, b in ipairs(values) do
        lists[#lists + 1] = { a, b }
    end
end
for i = 1, #values, 2 do
    for j = 2, #values, 3 do
        for k = 1, #values, 4 do
            lists[#lists + 1] = { values[i], values[j], values[k] }
        end
    end
end
local raised = 0
local function round(f)
    for _, args in ipairs(lists) do
        local ok = pcall(f, table.unpack(args, 1, 3))
        if not ok then raised = raised + 1 end
    end
end
local function settle()
    collectgarbage() collectgarbage()
    return live_blocks()
end
local leaks, probed = {}, 0
for _, name in ipairs(modules) do
    local ok, mod = pcall(require, name)
    assert(ok, name .. ": " .. tostring(mod))
    local names = {}
    for k, v in pairs(mod) do
        if type(v) == "function" and not (skip[name] and skip[name][k]) then
            names[#names + 1] = k
        end
    end
    table.sort(names)
    for _, k in ipairs(names) do
        local f = mod[k]
        round(f)
        local before = settle()
        for _ = 1, ROUNDS do round(f) end
        local grown = settle() - before
        if grown >= ROUNDS then
            leaks[#leaks + 1] = string.format("%s.%s +%d", name, k, grown)
        end
        probed = probed + 1
    end
end
return string.format("probed=%d raised=%d\n", probed, raised) .. table.concat(leaks, "\n")
"#;

#[test]
fn native_errors_leave_no_rust_memory_behind() {
    let lua = NativeLua::new();
    lua.register(c"live_blocks", live_blocks);
    let out = lua.eval(&probe(MODULES)).expect("the probe runs");
    let out = String::from_utf8_lossy(&out).into_owned();
    let mut lines = out.lines();
    let summary = lines.next().unwrap_or_default();
    let leaks: Vec<&str> = lines.collect();
    let num = |key: &str| -> usize {
        summary
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // The probe must reach the modules and make them raise, or it proves nothing.
    assert!(num("probed=") >= 80, "too few functions probed: {summary}");
    assert!(num("raised=") >= 50_000, "too few errors raised: {summary}");
    assert!(
        leaks.is_empty(),
        "Rust blocks left alive by raising calls ({summary}):\n{}",
        leaks.join("\n")
    );
}

/// The probe can fail: a native function that holds a `String` across
/// `luaL_checkinteger` leaks one block per raising call, and is reported.
#[test]
fn the_probe_reports_a_leaking_function() {
    use skynet_node::snlua::lua::{luaL_checkinteger, lua_pushcfunction};

    unsafe extern "C-unwind" fn leaky(l: State) -> c_int {
        let held = String::from("alive across the error");
        // SAFETY: Lua calls this with its live state; the check raises for a
        // non-integer argument, leaking `held` on purpose.
        let n = unsafe { luaL_checkinteger(l, 1) };
        drop(held);
        // SAFETY: as above, one push.
        unsafe { lua_pushinteger(l, n) };
        1
    }
    unsafe extern "C-unwind" fn open_leaky(l: State) -> c_int {
        // SAFETY: as above, one push.
        unsafe { lua_pushcfunction(l, leaky) };
        1
    }
    let lua = NativeLua::new();
    lua.register(c"live_blocks", live_blocks);
    lua.register(c"open_leaky", open_leaky);
    lua.eval("package.preload.leaky = function() return { f = open_leaky() } end return ''")
        .expect("preload");
    let out = lua.eval(&probe(r#""leaky""#)).expect("the probe runs");
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.lines().any(|l| l.starts_with("leaky.f +")),
        "the leak was not reported: {out}"
    );
}
