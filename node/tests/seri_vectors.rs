//! skynet.pack conformance: every row of the golden seri vector files, run
//! through our Lua binding (packstring / unpack) in a real Lua 5.5 state.

use sha2::{Digest, Sha256};
use skynet_node::snlua::testing::SeriLua;
use std::path::PathBuf;

fn vectors_dir() -> PathBuf {
    if let Ok(d) = std::env::var("SKYNET_VECTORS") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors")
}

fn rows(file: &str) -> Vec<Vec<String>> {
    let text =
        std::fs::read_to_string(vectors_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

const PRELUDE: &str = r#"
local function tohex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
function fromhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end
USERDATA = setmetatable({}, {__name = "USERDATA"})
local eq
local function numeq(a, b)
    if math.type(a) ~= math.type(b) then return false end
    if math.type(a) == "float" then return string.pack("<d", a) == string.pack("<d", b) end
    return a == b
end
local function find_key(t, k)
    for k2, v2 in pairs(t) do if eq(k, k2) then return true, v2 end end
    return false
end
eq = function(a, b)
    if a == USERDATA then return type(b) == "userdata" end
    if type(a) ~= type(b) then return false end
    if type(a) == "number" then return numeq(a, b) end
    if type(a) ~= "table" then return a == b end
    local n = 0
    for k, v in pairs(a) do
        n = n + 1
        local found, v2
        if type(k) == "table" or (type(k) == "number" and k ~= k) then
            found, v2 = find_key(b, k)
        else
            v2 = rawget(b, k); found = v2 ~= nil
        end
        if not found or not eq(v, v2) then return false end
    end
    for _ in pairs(b) do n = n - 1 end
    return n == 0
end
function listeq(a, b)
    if a.n ~= b.n then return false, string.format("count %d vs %d", a.n, b.n) end
    for i = 1, a.n do if not eq(a[i], b[i]) then return false, "value " .. i end end
    return true
end
"#;

fn lua_string(s: &str) -> String {
    format!("{s:?}")
}

#[test]
fn seri_tsv_encodes_and_decodes() {
    let lua = SeriLua::new();
    let mut checked = 0;
    for row in rows("seri.tsv") {
        let (id, expr, hex) = (&row[0], &row[1], &row[2]);
        let canonical = row.get(3).map(String::as_str) == Some("yes");
        let packed = lua
            .eval(&format!("{PRELUDE}\nreturn packstring({expr})"))
            .unwrap_or_else(|e| panic!("{id}: pack failed: {e}"));
        if canonical {
            if let Some(spec) = hex.strip_prefix("len=") {
                let (len, sha) = spec.split_once(" sha256=").unwrap();
                assert_eq!(packed.len(), len.parse::<usize>().unwrap(), "{id}: length");
                let digest: String = Sha256::digest(&packed)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(&digest, sha, "{id}: sha256");
            } else {
                let got: String = packed.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(&got, hex, "{id}: bytes");
            }
        }
        // Decoding the reference bytes (or our own, for rows given by hash)
        // gives the values back.
        let source = if hex.starts_with("len=") {
            format!("packstring({expr})")
        } else {
            format!("fromhex({})", lua_string(hex))
        };
        let verdict = lua
            .eval(&format!(
                "{PRELUDE}\nlocal got = table.pack(unpack({source}))\nlocal want = table.pack({expr})\nlocal ok, why = listeq(want, got)\nreturn ok and 'ok' or why"
            ))
            .unwrap_or_else(|e| panic!("{id}: decode failed: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&verdict),
            "ok",
            "{id}: decoded values differ"
        );
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} rows");
}

#[test]
fn errors_tsv_refused_with_exact_text() {
    let lua = SeriLua::new();
    let all = rows("errors.tsv");
    assert!(!all.is_empty());
    for row in all {
        let (id, expr, want) = (&row[0], &row[1], &row[2]);
        let got = lua
            .eval(&format!(
                "local ok, e = pcall(packstring, {expr})\nreturn ok and 'packed!' or tostring(e)"
            ))
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&got), *want, "{id}");
    }
}

#[test]
fn decode_errors_tsv_exact_text() {
    let lua = SeriLua::new();
    let all = rows("seri_decode_errors.tsv");
    assert!(all.len() >= 40);
    for row in all {
        let (id, hex, want) = (&row[0], &row[2], &row[3]);
        let got = lua
            .eval(&format!(
                "{PRELUDE}\nlocal ok, e = pcall(unpack, fromhex({}))\nreturn ok and 'decoded!' or tostring(e)",
                lua_string(hex)
            ))
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&got), *want, "{id}");
    }
}

/// Found by the lua_unpack fuzz target: a NaN key is refused only after its
/// value is read (as by C skynet, in lua_rawset), so a broken value after it
/// is the stream error; small and large tables alike.
#[test]
fn nan_key_then_a_broken_value() {
    let lua = SeriLua::new();
    let nan = "42000000000000f8ff";
    // n pairs k = 1 for k in 1..=n (keys as u8 integers).
    let pairs = |n: usize| {
        (1..=n)
            .map(|k| format!("0a{k:02x}0a01"))
            .collect::<String>()
    };
    for (case, hex, want) in [
        (
            "small",
            format!("06{nan}ff"),
            "Invalid serialize stream 0 (line:527)",
        ),
        (
            "small, valid value",
            format!("06{nan}0a0100"),
            "table index is NaN",
        ),
        (
            "large",
            format!("06{}{nan}ff", pairs(64)),
            "Invalid serialize stream 0 (line:527)",
        ),
        (
            "large, valid value",
            format!("06{}{nan}0a0100", pairs(64)),
            "table index is NaN",
        ),
    ] {
        let got = lua
            .eval(&format!(
                "{PRELUDE}\nlocal ok, e = pcall(unpack, fromhex({}))\nreturn ok and 'decoded!' or tostring(e)",
                lua_string(&hex)
            ))
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&got), want, "{case}");
        let rust = skynet_proto::seri::unpack(&hex_bytes(&hex)).unwrap_err();
        assert_eq!(rust.to_string(), want, "{case} (proto)");
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn decode_lenient_tsv_values() {
    let lua = SeriLua::new();
    let all = rows("seri_decode_lenient.tsv");
    assert!(all.len() >= 28);
    for row in all {
        let (id, hex, count) = (&row[0], &row[2], &row[3]);
        let values = row
            .get(4)
            .cloned()
            .unwrap_or_default()
            .replace("<userdata>", "USERDATA");
        let got = lua
            .eval(&format!(
                "{PRELUDE}\nlocal got = table.pack(unpack(fromhex({})))\nlocal want = table.pack({values})\nassert(got.n == {count}, 'count ' .. got.n)\nlocal ok, why = listeq(want, got)\nreturn ok and 'ok' or why",
                lua_string(hex)
            ))
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(String::from_utf8_lossy(&got), "ok", "{id}");
    }
}

#[test]
fn pack_and_unpack_through_message_pointers() {
    let lua = SeriLua::new();
    let got = lua
        .eval(
            "local p, sz = pack('hello', {1, 2, x = true}, 3.5)\n\
             local a, b, c = unpack(p, sz)\n\
             local s = msgtostring(p, sz)\n\
             trash(p, sz)\n\
             local ok, e = pcall(unpack, p, sz)\n\
             return table.concat({a, tostring(b.x), tostring(c), tostring(#s == sz), tostring(ok), e}, ',')",
        )
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        "hello,true,3.5,true,false,deserialize invalid pointer"
    );
}

/// The packer describes scalars without pushing them. A `__pairs` proxy met
/// halfway through a table runs Lua code that may empty that table and collect
/// its strings: what is packed must still be what was there when read.
#[test]
fn proxy_that_empties_the_outer_table_while_packed() {
    let lua = SeriLua::new();
    let got = lua
        .eval(
            "local outer = {}\n\
             local proxy = setmetatable({}, {__pairs = function()\n\
                 for k in pairs(outer) do if k ~= 'p' then outer[k] = nil end end\n\
                 collectgarbage()\n\
                 return next, {y = 2}, nil\n\
             end})\n\
             for i = 1, 20 do outer['key' .. i] = string.rep('v', 40) .. i end\n\
             outer.p = proxy\n\
             local t = unpack(packstring(outer))\n\
             local n = 0\n\
             for k, v in pairs(t) do\n\
                 if k == 'p' then assert(v.y == 2)\n\
                 else assert(v == string.rep('v', 40) .. k:sub(4)) end\n\
                 n = n + 1\n\
             end\n\
             return tostring(t.p ~= nil) .. ',' .. tostring(n >= 1)",
        )
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got), "true,true");
}

/// `__pairs` proxies nested in proxies (sharedata's proxies are): after an
/// inner proxy is packed, the outer iteration goes on where it was.
#[test]
fn proxies_nested_in_proxies() {
    let lua = SeriLua::new();
    let got = lua
        .eval(
            "local function proxy(t)\n\
                 return setmetatable({}, {__pairs = function() return next, t, nil end})\n\
             end\n\
             local inner = proxy({x = 1, y = 2})\n\
             local outer = proxy({a = inner, b = proxy({z = 3}), c = 'end'})\n\
             local t = unpack(packstring(outer, 'after'))\n\
             local _, after = unpack(packstring(outer, 'after'))\n\
             return t.a.x + t.a.y + t.b.z .. ',' .. t.c .. ',' .. after",
        )
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got), "6,end,after");
}
