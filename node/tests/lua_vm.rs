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
