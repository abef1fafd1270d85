//! Regression tests for our patch of Lua (vendor/lua-src, changes marked
//! "skynet-rs"; see vendor/README.md) where the other test files do not
//! already pin it down: the string hash, and the strings and prototypes
//! shared by every state of the process (lshared.c, through
//! `skynet.codecache`). Each test fails when its part of the patch is
//! broken; README.md ("Lua's test suite") lists which break shows it.

mod common;

use common::lua_state::{new_state, Gc};
use skynet_node::snlua::codecache;
use skynet_node::snlua::lua::*;
use std::ffi::CString;

/// A state with the process's hash seed (as every service state) and the
/// standard libraries, its collector stopped so that memory counts are
/// exact.
struct Lua(State);

impl Lua {
    fn new() -> Lua {
        Lua(new_state(Gc::Stopped))
    }

    /// Bytes the state holds.
    fn bytes(&self) -> i64 {
        // SAFETY: the state is live and not running.
        unsafe { lua_gc(self.0, LUA_GCCOUNT) as i64 * 1024 + lua_gc(self.0, LUA_GCCOUNTB) as i64 }
    }

    /// Runs `code` (returning one string) and returns that string.
    fn eval(&self, code: &str) -> String {
        let c = CString::new(code).unwrap();
        // SAFETY: the state is live; loading and the call are protected;
        // the result is copied while on the stack.
        unsafe {
            lua_settop(self.0, 0);
            let ok = luaL_loadstring(self.0, c.as_ptr()) == LUA_OK
                && lua_pcall(self.0, 0, 1, 0) == LUA_OK;
            let s = to_bytes(self.0, -1)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            lua_settop(self.0, 0);
            assert!(ok, "Lua error: {s}");
            s
        }
    }
}

impl Drop for Lua {
    fn drop(&mut self) {
        // SAFETY: the state is ours, closed once.
        unsafe { lua_close(self.0) };
    }
}

/// The string hash (lstring.c `luaS_hash`, eight bytes per step) must
/// depend on a string's bytes only: equal strings made from different
/// buffers, of every length around the 8-byte steps and the short/long
/// limit (40), are one key and compare equal.
#[test]
fn equal_strings_from_different_buffers_are_one_key() {
    let lua = Lua::new();
    let got = lua.eval(
        r#"
        local t, n, bad = {}, 0, {}
        for len = 0, 50 do
            -- the same bytes, cut from buffers whose next bytes differ
            local a = string.sub(string.rep("k", len) .. "XYZWVUTSRQPONMLK", 1, len)
            local b = string.sub(string.rep("k", len) .. "abcdefghijklmnop", 1, len)
            local c = string.rep("k", len)
            local d = table.concat({string.rep("k", len), "123456789"}):sub(1, len)
            if not (a == b and b == c and c == d) then bad[#bad + 1] = len end
            t[a] = len
            if t[b] ~= len or t[c] ~= len or t[d] ~= len then bad[#bad + 1] = len end
            -- strings that differ only in their last byte are other keys
            local e = string.rep("k", len) .. "x"
            if t[e] ~= nil and t[e] ~= len + 1 then bad[#bad + 1] = -len end
        end
        for _ in pairs(t) do n = n + 1 end
        return n .. ":" .. table.concat(bad, ",")
        "#,
    );
    assert_eq!(got, "51:");
}

/// Writes `src` to a new file and returns its name.
fn temp_file(tag: &str, src: &str) -> String {
    let dir = std::env::temp_dir().join(format!("lua_patch_{}_{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("chunk.lua");
    std::fs::write(&file, src).unwrap();
    file.to_str().unwrap().to_string()
}

/// Loads the file `name` in `lua` through the code cache, as the global
/// `chunk`; returns the bytes that cost the state.
fn cache_load(lua: &Lua, name: &str) -> i64 {
    let before = lua.bytes();
    // SAFETY: the state is live and not running; `name` outlives the call;
    // a raise inside load aborts the test (no pcall), dropping nothing.
    let status = unsafe { codecache::load(lua.0, name.as_bytes()) };
    let cost = lua.bytes() - before;
    assert_eq!(status, LUA_OK);
    // SAFETY: the loaded function is on the top.
    unsafe { lua_setglobal(lua.0, c"chunk".as_ptr()) };
    cost
}

/// A string the code state shares (here a constant of a cached chunk) is
/// adopted by other states (lstring.c looks in lshared.c's table when its
/// own misses): making it costs a state nothing, making a string no state
/// shares costs a new string.
#[test]
fn a_state_adopts_shared_strings_instead_of_copies() {
    let name = temp_file("adopt", "return 'lua_patch shared', 'constant'\n");
    cache_load(&Lua::new(), &name);
    let lua = Lua::new();
    // the pieces are constants of this chunk, made when it loads
    let got = lua.eval(
        r#"
        local a, b, c = "lua_patch ", "shared", "sharex"
        local before = collectgarbage("count")
        local shared = a .. b          -- a constant of the cached chunk
        local mid = collectgarbage("count")
        local own = a .. c             -- nobody's
        local after = collectgarbage("count")
        -- (no literal of the shared string here: loading made it then)
        assert(#shared == 16 and own ~= shared)
        return string.format("%d %d", (mid - before) * 1024, (after - mid) * 1024)
        "#,
    );
    let _ = std::fs::remove_dir_all(std::path::Path::new(&name).parent().unwrap());
    let mut it = got.split(' ').map(|x| x.parse::<i64>().unwrap());
    let (shared, own) = (it.next().unwrap(), it.next().unwrap());
    assert_eq!(shared, 0, "a shared string was copied ({got})");
    assert!(own > 0, "a new string cost nothing? ({got})");
}

/// A chunk loaded through the code cache by a second state is a closure of
/// the prototype the first load shared (`lua_shareproto`,
/// `lua_cloneshared`): it runs the same, and costs the state a closure, not
/// a copy of the code.
#[test]
fn a_cached_chunk_is_a_closure_of_the_shared_prototype() {
    let mut src = String::from("local t = {}\n");
    for i in 0..300 {
        src += &format!("t[{i}] = function(x) return x + {i}, 'constant number {i}' end\n");
    }
    src += "return function(i) return (t[i](1000)) end, select(2, t[7](0))\n";
    let name = temp_file("proto", &src);
    let load = |lua: &Lua| -> (i64, String) {
        let cost = cache_load(lua, &name);
        (
            cost,
            lua.eval("local f, s = chunk(); return f(42) .. ' ' .. s"),
        )
    };
    let first = Lua::new();
    let (private_cost, r1) = load(&first);
    let second = Lua::new();
    let (shared_cost, r2) = load(&second);
    let _ = std::fs::remove_dir_all(std::path::Path::new(&name).parent().unwrap());
    assert_eq!(r1, "1042 constant number 7");
    assert_eq!(r2, r1);
    assert!(
        private_cost > 20_000,
        "the first load compiles the chunk itself ({private_cost} bytes)"
    );
    assert!(
        shared_cost < 200,
        "the second load copied the chunk ({shared_cost} bytes, first {private_cost})"
    );
}

/// Open upvalues found through the per-thread slot index (lfunc.c
/// `uvindex`, built once a search walks 16 open upvalues): two closures
/// capturing one local share one upvalue, which shows once the frame has
/// returned (while it is open, two upvalues of one slot would both read the
/// stack and look shared).
#[test]
fn upvalues_found_through_the_index_stay_shared_after_the_frame_returns() {
    let n = 24;
    let names: Vec<String> = (1..=n).map(|i| format!("v{i}")).collect();
    let mut src = String::from("local function make()\n");
    src += &format!(
        "local {} = {}\n",
        names.join(", "),
        (1..=n)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    src += "local keep = {}\n";
    // highest first: each new one walks past all those above it
    for i in (5..=n).rev() {
        src += &format!("keep[{i}] = function() return v{i} end\n");
    }
    src += "local set, get = {}, {}\n";
    for i in (1..=4).rev() {
        src += &format!(
            "set[{i}] = function(x) v{i} = x end\nget[{i}] = function() return v{i} end\n"
        );
    }
    src += "return set, get, keep\nend\n\
        local set, get, keep = make()\n\
        local out = {}\n\
        for i = 1, 4 do set[i](i * 100) out[i] = get[i]() end\n\
        out[5] = keep[5]() + keep[24]()\n\
        return table.concat(out, ',')";
    let lua = Lua::new();
    assert_eq!(lua.eval(&src), "100,200,300,400,29");
}

/// `loadfile` of the code cache takes Lua's `mode` and loads binary chunks
/// (as Lua's and skynet's do; the test suite's files.lua needs it). Binary
/// files are not cached.
#[test]
fn cached_loadfile_takes_binary_chunks_and_the_mode() {
    let bin = temp_file("bin", "");
    let lua = Lua::new();
    // SAFETY: the state is live; a C function is set as a global.
    unsafe {
        lua_pushcfunction(lua.0, codecache::lloadfile);
        lua_setglobal(lua.0, c"cloadfile".as_ptr());
    }
    let code = format!(
        r##"
        local name = "{bin}"
        local out = {{}}
        for round = 1, 2 do
            local f = assert(io.open(name, "wb"))
            f:write("# comment line\n", string.dump(load("return " .. 10 * round)))
            f:close()
            out[#out + 1] = assert(cloadfile(name))()
        end
        local f, err = cloadfile(name, "t")
        out[#out + 1] = tostring(f) .. " " .. tostring(err):match("binary chunk")
        return table.concat(out, ",")
        "##
    );
    let got = lua.eval(&code);
    let _ = std::fs::remove_dir_all(std::path::Path::new(&bin).parent().unwrap());
    // each round's file loaded anew (not cached); mode "t" refuses binary
    assert_eq!(got, "10,20,nil binary chunk");
}
