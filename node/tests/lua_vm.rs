//! Behaviour of our patched Lua VM (vendor/lua-src, changes marked
//! "skynet-rs") that Lua programs can observe.

use skynet_node::snlua::testing::SeriLua;

/// Closures find their upvalues starting after the previous one
/// (`luaF_findupvalafter`): every capture order must still share one
/// variable between all closures that use it.
#[test]
fn closures_share_upvalues_in_any_capture_order() {
    let lua = SeriLua::new();
    let got = lua
        .eval(
            "local out = {}\n\
             local a, b, c, d, e, f, g, h = 1, 2, 3, 4, 5, 6, 7, 8\n\
             local function up() a = a + 10; h = h + 10; d = d + 10 end\n\
             local function down() h = h + 100; a = a + 100; e = e + 100; b = b + 100 end\n\
             local function mixed() return g + c + a + h + b + f + d + e end\n\
             local function read() return table.concat({a, b, c, d, e, f, g, h}, ',') end\n\
             up(); down(); up()\n\
             out[#out + 1] = read()\n\
             out[#out + 1] = mixed()\n\
             for i = 1, 3 do\n\
                 local x, y = i, i * 2\n\
                 local function inc() y = y + 1; x = x + 1; a = a + 1 end\n\
                 local function get() return x + y end\n\
                 inc(); inc()\n\
                 out[#out + 1] = get()\n\
             end\n\
             out[#out + 1] = a\n\
             return table.concat(out, ';')",
        )
        .unwrap();
    // a = 1+10+100+10 (+3 loops * 2 incs = +6 at the end); b = 102; d = 24;
    // e = 105; h = 8+10+100+10 = 128.
    assert_eq!(
        String::from_utf8_lossy(&got),
        "121,102,3,24,105,6,7,128;496;7;10;13;127"
    );
}

/// Open upvalues found through the per-thread slot index (`uvindex`, built
/// when a walk down the open list gets long): sharing must hold across
/// closures made in any order, loops that close upvalues each turn, open
/// upvalues the GC frees while their frame lives, a stack that grows under
/// the index, and coroutines (each with its own index).
#[test]
fn upvalue_index_keeps_sharing_through_gc_loops_stack_growth_and_coroutines() {
    let n = 40;
    let names: Vec<String> = (1..=n).map(|i| format!("v{i}")).collect();
    let values: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    // Capture order scrambled so that walks are long in both directions.
    let order: Vec<usize> = (0..n).map(|i| (i * 17 + 5) % n).collect();
    let mut src = String::from("local function body()\n");
    src += &format!("local {} = {}\n", names.join(", "), values.join(", "));
    src += "local get, set = {}, {}\n";
    for &k in &order {
        src += &format!(
            "get[{i}] = function() return {v} end\nset[{i}] = function(x) {v} = x end\n",
            i = k + 1,
            v = names[k]
        );
    }
    src += "
        for i = 1, #get do set[i](get[i]() * 10) end
        local sum = 0
        for i = 1, #get do sum = sum + get[i]() end
        -- closures made and dropped while the frame lives: the GC frees
        -- their open upvalues; new ones at the same slots must be fresh and shared
        local f = function() return v5 + v25 end
        f = nil
        collectgarbage()
        collectgarbage()
        local g = function() v5 = v5 + 1; v25 = v25 + 2 end
        local h = function() return v5 * 1000 + v25 end
        g()
        local after_gc = h()
        -- locals captured only by a dropped closure: their open upvalues go
        -- with it, and the index must not hand them out again
        local w1, w2 = 7, 8
        local drop = function() return w1 + w2 end
        drop = nil
        collectgarbage()
        collectgarbage()
        local bump = function() w1 = w1 + 1; w2 = w2 + 1 end
        local pair = function() return w1 * 100 + w2 end
        local junk = {}
        for i = 1, 200 do junk[i] = function() return i end end
        bump()
        after_gc = after_gc + pair() * 1000000
        -- the stack grows under the index
        local function deep(d) if d == 0 then return 0 end local a, b, c = d, d, d; return deep(d - 1) + 1 end
        local depth = deep(3000)
        local k = function() v39 = v39 + 1; return v39 + v1 end
        k()
        -- loops close their upvalues every turn
        local loops = 0
        for i = 1, 50 do
            local x = i
            local inc = function() x = x + 1 end
            local read = function() return x + v2 end
            inc()
            loops = loops + read()
        end
        return sum, after_gc, depth, get[39](), k(), loops
    end
    local out = {}
    local function record(...) out[#out + 1] = table.concat({...}, ',') end
    record(body())
    local co = coroutine.wrap(function()
        local r = {body()}
        coroutine.yield(table.unpack(r))
        return body()
    end)
    record(co())
    record(co())
    return table.concat(out, ';')
    ";
    let lua = SeriLua::new();
    let got = lua.eval(&src).unwrap();
    // sum = 10 * (1 + ... + 40) = 8200; after g: v5 = 51, v25 = 252, and
    // w1 = 8, w2 = 9 (809 millions);
    // k: v39 = 391 (read by get[39]), then 392 + v1 (10) = 402;
    // loops = sum(i + 1 + 20) for i = 1..50.
    let loops: i64 = (1..=50).map(|i| i + 1 + 20).sum();
    let one = format!("8200,809051252,3000,391,402,{loops}");
    assert_eq!(String::from_utf8_lossy(&got), format!("{one};{one};{one}"));
}

/// A string made from a C string when memory runs out: the collection that
/// the failed allocation runs walks the state's C-string cache, which must
/// hold no empty slot meanwhile (`luaS_new`, the skynet-rs address-cache
/// lookup). It used to crash the process; it is a memory error.
#[test]
fn a_c_string_made_when_memory_runs_out_is_a_memory_error() {
    use skynet_node::snlua::lua::*;
    use std::ffi::{c_int, c_void};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Budget {
        used: AtomicUsize,
        limit: AtomicUsize,
    }
    unsafe extern "C" fn limited(
        ud: *mut c_void,
        ptr: *mut c_void,
        osize: usize,
        nsize: usize,
    ) -> *mut c_void {
        // SAFETY: `ud` is the `Budget` given to lua_newstate below, boxed and
        // alive until after lua_close.
        let b = unsafe { &*(ud as *const Budget) };
        let old = if ptr.is_null() { 0 } else { osize };
        if nsize == 0 {
            // SAFETY: Lua frees a block this allocator returned (or null).
            unsafe { libc::free(ptr) };
            b.used.fetch_sub(old, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        let used = b.used.load(Ordering::Relaxed);
        if nsize > old && used - old + nsize > b.limit.load(Ordering::Relaxed) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` is null or a block this allocator returned.
        let p = unsafe { libc::realloc(ptr, nsize) };
        if !p.is_null() {
            b.used.store(used - old + nsize, Ordering::Relaxed);
        }
        p
    }
    static LONG: [u8; 4097] = {
        let mut s = [b'x'; 4097];
        s[4096] = 0;
        s
    };
    unsafe extern "C-unwind" fn push_long(l: State) -> c_int {
        // SAFETY: `l` is the calling state; LONG is a static NUL-terminated
        // string (lua_pushstring copies it, or raises out of memory).
        unsafe { lua_pushstring(l, LONG.as_ptr() as *const std::ffi::c_char) };
        1
    }
    let budget = Box::new(Budget {
        used: AtomicUsize::new(0),
        limit: AtomicUsize::new(usize::MAX),
    });
    // SAFETY: `l` is a state of this test alone, used on this thread and
    // closed at the end of the block; its allocator's `Budget` is boxed and
    // dropped only after that. Every call passes `l` and valid indices.
    unsafe {
        let l = lua_newstate(limited, &*budget as *const Budget as *mut c_void, 0);
        assert!(!l.is_null(), "lua_newstate failed");
        luaL_openlibs(l);
        // room for the collection, not for the 4 KiB string
        let used = budget.used.load(Ordering::Relaxed);
        budget.limit.store(used + 1024, Ordering::Relaxed);
        lua_pushcfunction(l, push_long);
        assert_eq!(lua_pcall(l, 0, 1, 0), LUA_ERRMEM);
        assert_eq!(to_bytes(l, -1), Some(&b"not enough memory"[..]));
        lua_pop(l, 1);
        budget.limit.store(usize::MAX, Ordering::Relaxed);
        lua_pushcfunction(l, push_long);
        assert_eq!(lua_pcall(l, 0, 1, 0), LUA_OK);
        assert_eq!(to_bytes(l, -1).map(|b| b.len()), Some(4096));
        lua_close(l);
    }
}
