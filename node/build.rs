//! Exports the Lua C API from the `skynet-node` executable (see
//! `lua-api.dynlist`), so that C Lua modules found through `lua_cpath`
//! resolve `lua_*`/`luaL_*` against the Lua linked into the binary.

fn main() {
    let list = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lua-api.dynlist");
    println!("cargo:rerun-if-changed={}", list.display());
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!(
            "cargo:rustc-link-arg-bin=skynet-node=-Wl,--dynamic-list={}",
            list.display()
        );
    }
}
