//! `skynet.unpack` through a Lua state (skynet.core's pointer API): any bytes
//! unpack exactly when the Rust decoder accepts them, failing with the same
//! message; lightuserdata values they carry, used as message pointers, are
//! Lua errors (never a memory fault); what unpacks packs into a block that
//! reads back, cannot be read past its end, and is gone once trashed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_node::snlua::testing::NativeLua;
use skynet_proto::seri::{pack, unpack, PackError};

const DRIVER: &str = r#"
local core = require "skynet.core"
local function ptrs(v, out, depth)
    local t = type(v)
    if t == "userdata" then
        out[#out + 1] = v
    elseif t == "table" and depth < 4 then
        local n = 0
        for k, x in next, v do
            ptrs(k, out, depth + 1)
            ptrs(x, out, depth + 1)
            n = n + 1
            if n > 64 then break end
        end
    end
end
local function drive()
    local r = table.pack(pcall(core.unpack, INPUT))
    if not r[1] then return "E" .. tostring(r[2]) end
    local n = r.n - 1
    local ps = {}
    for i = 2, r.n do ptrs(r[i], ps, 0) end
    for i = 1, math.min(#ps, 8) do
        local p = ps[i]
        pcall(core.unpack, p, 1)
        pcall(core.unpack, p, 0x7fffffff)
        pcall(core.unpack, p, -1)
        pcall(core.tostring, p, 8)
        pcall(core.trash, p, 8)
    end
    local ok, p, sz = pcall(core.pack, table.unpack(r, 2, r.n))
    if not ok then return "D" .. n .. ":" .. tostring(p) end
    local back = table.pack(core.unpack(p, sz))
    assert(back.n == n, "a packed block unpacks to another count")
    assert(not pcall(core.unpack, p, sz + 1), "read past the end of a block")
    pcall(core.unpack, p, sz - 1)
    local s = core.tostring(p, sz)
    assert(#s == sz)
    core.trash(p, sz)
    -- (Zero values pack to NULL, 0, which unpacks to nothing, as in skynet.)
    assert(sz == 0 or not pcall(core.unpack, p, sz), "read a trashed block")
    return "O" .. n .. ":" .. s
end
-- Collecting after each input frees what it made, so libFuzzer does not
-- take the state's garbage for a leak and scan the heap every run.
function DRIVE()
    local out = drive()
    collectgarbage()
    return out
end
return ""
"#;

thread_local! {
    static LUA: NativeLua = {
        let l = NativeLua::new();
        l.eval(DRIVER).expect("driver loads");
        l
    };
}

fuzz_target!(|data: &[u8]| {
    let out = LUA.with(|l| {
        l.set_global_bytes(c"INPUT", data);
        l.eval("return DRIVE()")
    });
    let out = out.unwrap_or_else(|e| panic!("driver failed: {e}"));
    let rust = unpack(data);
    let (kind, rest) = out.split_first().expect("driver answers");
    match kind {
        b'E' => {
            let err = rust.expect_err("Lua refused what Rust decodes");
            assert_eq!(String::from_utf8_lossy(rest), err.to_string());
        }
        b'O' | b'D' => {
            let values = rust.unwrap_or_else(|e| panic!("Lua decoded what Rust refuses: {e}"));
            let colon = rest.iter().position(|&b| b == b':').expect("count");
            let n: usize = std::str::from_utf8(&rest[..colon])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(n, values.len(), "value counts differ");
            let tail = &rest[colon + 1..];
            if *kind == b'O' {
                // Lua's packing decodes in Rust to as many values.
                let again = unpack(tail).expect("Lua's pack decodes");
                assert_eq!(again.len(), n);
            } else {
                // Lua's tables can only be shallower than the stream.
                let why = String::from_utf8_lossy(tail);
                assert!(why.contains("too depth"), "pack failed: {why}");
                assert_eq!(pack(&values), Err(PackError::TooDeep));
            }
        }
        _ => panic!("driver answered {out:?}"),
    }
});
