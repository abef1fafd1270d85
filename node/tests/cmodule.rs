//! C Lua modules: a module compiled by the system's C compiler against the
//! Lua 5.5 headers loads through `lua_cpath` and works, because
//! `skynet-node` exports the Lua C API (node/build.rs).

mod common;

use common::Node;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds test/cmod/ctest.c into `<dir>/ctest.so`, and a file that is not
/// a shared object as `<dir>/ctest_broken.so`.
fn build_modules(dir: &Path) -> PathBuf {
    let root = common::repo_root();
    std::fs::create_dir_all(dir).unwrap();
    let so = dir.join("ctest.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
        .arg(&so)
        .arg("-I")
        .arg(root.join("vendor/lua-src/lua-5.5.1"))
        .arg(root.join("test/cmod/ctest.c"))
        .output()
        .unwrap_or_else(|e| panic!("can't run the C compiler {cc}: {e}"));
    assert!(
        out.status.success(),
        "compiling ctest.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.join("ctest_broken.so"), b"not an ELF file").unwrap();
    so
}

#[test]
fn c_module_loads_through_lua_cpath_and_uses_the_c_api() {
    let dir = std::env::temp_dir().join(format!("skynet-cmod-{}", std::process::id()));
    build_modules(&dir);
    let run = Node::new("t_cmodule")
        .config("lua_cpath", &format!("\"{}/?.so\"", dir.display()))
        .run();
    let said: Vec<String> = run
        .texts()
        .into_iter()
        .filter_map(|t| t.strip_prefix("t_cmodule: ").map(str::to_string))
        .collect();
    let expect = |line: &str| {
        assert!(
            said.iter().any(|l| l == line),
            "t_cmodule did not say {line:?}:\n{}",
            run.dump()
        )
    };
    expect("version Lua 5.5");
    expect("add 42");
    expect("describe n:5 number string table nil boolean");
    expect("bad argument false bad argument #1 to 'ctest.add' (number expected, got string)");
    expect("error false ctest failed: on purpose");
    expect("map 10,20,30");
    assert!(
        said.iter()
            .any(|l| l.starts_with("callback error false") && l.contains("inside callback")),
        "an error raised in a Lua callback called from C reaches pcall:\n{}",
        run.dump()
    );
    expect("counter 7 7");
    expect("collected true");
    expect("same module true");
    expect("missing module false true");
    let broken = said
        .iter()
        .find(|l| l.starts_with("broken module false"))
        .unwrap_or_else(|| panic!("no broken-module line:\n{}", run.dump()));
    assert!(
        broken.contains("ctest_broken.so") && broken.contains("error loading module"),
        "a file that is not a shared object is a clear require error: {broken}"
    );
    expect("done");
    let _ = std::fs::remove_dir_all(&dir);
}
