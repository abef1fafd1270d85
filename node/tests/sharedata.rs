//! Process tests of skynet.sharedata: a real node runs test/t_sharedata.lua,
//! first on our sharedata.lua, corelib.lua and sharedatad.lua, then on
//! skynet's own three files (when skynet's source is at hand) over the same
//! native `skynet.sharedata.core`.

mod common;
mod live;

use common::{Node, Run};
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: &str = "t_sharedata";

fn run_node(node: Node) -> Run {
    live::run_to_done(&node, Duration::from_secs(40))
}

fn finished(run: &Run) {
    assert!(run.said(T).iter().any(|l| l == "done"), "{}", run.dump());
    assert!(!run.has("init service failed"), "{}", run.dump());
}

/// What both library versions do alike.
const COMMON: &[&str] = &[
    "stat start 0 0",
    "index 1 1.5 true str nil",
    "nested 3 true table",
    "len 2 0",
    "ipairs 1:hello 2:world",
    "pairs contents -1=neg 10=10 a=1 b=table c=table f=1.5 s=str t=true",
    "write a true",
    "write nested true",
    "after writes 1 nil",
    "packed 1 3 nil",
    "source 42 3 xxx nil",
    "source return 2",
    "file file A y",
    "readers 3 world 42",
    "updated 2 4 yes nil",
    "readers updated 2 4",
    "deepcopy nil 2 4",
    "deepcopy path y=4 2 nil",
    "deepcopy uncached arg=A from=file list=table",
    "old refs 0",
    "flushed 3 3",
    "second old refs 0",
    "deleted 3 false",
    "core cycle new: a table contains itself at self",
    "core not a table bad argument #1 to 'skynet.sharedata.core.new' (table expected, got string)",
    "core type index: need a sharedata object, got string",
    "core forged index: invalid sharedata object 0x7fff00000000 (freed, or not a sharedata object)",
    "core box box: need a sharedata object, got nil",
    "core needupdate needupdate: need a sharedata box, got table",
    "core float key Invalid key 1.500000",
    "last refs 0",
];

#[test]
fn sharedata_on_our_library() {
    let run = run_node(Node::new(T));
    finished(&run);
    run.says_in_order(T, COMMON);
    run.says_in_order(T, &[
            // array part, integers ascending, then strings in byte order
            "pairs order -1=neg 10=10 a=1 b=table c=table f=1.5 s=str t=true",
            "write error attempt to modify read-only sharedata (key [cfg.c.x.z])",
            "orphan The key [cfg.b] doesn't exist after update",
            // the two replaced versions of cfg are freed; 4 objects remain
            // (cfg, src, ret, file)
            "collect 2 0",
            "stale index: invalid sharedata object 0x100000000 (freed, or not a sharedata object)",
            "stat live 4",
            "lone read 1",
            "lone held 2",
            "lone dropped 1",
            "lone refs 0 1",
            "query deleted sharedata.query: no data named \"cfg\"",
            "bad name sharedata.new: the name must be a string, got number",
            "bad value sharedata.new: the value must be a table, Lua source or \"@file\", got function",
            "bad type sharedata.new x: unsupported value type function at f",
            "bad nested sharedata.new x: unsupported value type thread at a.b[1]",
            "bad syntax sharedata.new x: x:1: unexpected symbol near '='",
            "bad run sharedata.new x: boom",
            "bad file sharedata.new x: /nonexistent/data.lua: No such file or directory",
            "bad binary sharedata.new x: attempt to load a binary chunk (mode is 't')",
            "bad key sharedata.new x: invalid key 1.5 (keys must be integers or strings) at t",
            "exists sharedata.new src: the name exists (use update)",
            // a failed update keeps the version that was there
            "update bad sharedata.update src: src:1: unexpected symbol near '=' 42",
            "delete missing sharedata.delete: no data named \"nope\"",
            "core delete foreign delete: sharedata object 2 was not made by this service, or is deleted",
            // cfg's last version, lone's two, src, ret and file
            "final collect 6 0",
            "stat end 0 0",
        ],
    );
    let deep = run
        .said(T)
        .into_iter()
        .find(|l| l.starts_with("core deep "))
        .unwrap_or_default();
    assert!(
        deep.starts_with("core deep new: tables nested deeper than 256 at [1][1]")
            && deep.ends_with("... (256 keys deep)"),
        "{deep}"
    );
}

/// skynet's source tree: $SKYNET_SOURCE, else /work/scratch/skynet.
fn skynet_source() -> Option<PathBuf> {
    let dir = std::env::var_os("SKYNET_SOURCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/scratch/skynet"));
    dir.join("service/sharedatad.lua").is_file().then_some(dir)
}

const SKYNET_FILES: &[&str] = &[
    "lualib/skynet/sharedata.lua",
    "lualib/skynet/sharedata/corelib.lua",
    "service/sharedatad.lua",
];

fn copy_skynet_files(src: &Path, dst: &Path) {
    for f in SKYNET_FILES {
        let to = dst.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(f), &to).unwrap();
    }
}

#[test]
fn sharedata_on_skynets_own_lua_files() {
    let Some(src) = skynet_source() else {
        eprintln!("skipped: skynet's source not found (set SKYNET_SOURCE)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("skynet-t-sharedata-lua-{}", std::process::id()));
    copy_skynet_files(&src, &dir);
    let root = common::repo_root();
    let d = dir.display();
    let r = root.display();
    let node = Node::new(T)
        .config("sharedata_mode", "\"skynet\"")
        .config(
            "luaservice",
            &format!("\"{d}/service/?.lua;{r}/service/?.lua;{r}/test/?.lua\""),
        )
        .config(
            "lua_path",
            &format!("\"{d}/lualib/?.lua;{r}/lualib/?.lua;{r}/lualib/?/init.lua;{r}/test/?.lua\""),
        );
    let run = run_node(node);
    finished(&run);
    // skynet's files were the ones loaded
    assert!(
        run.has(&format!("{d}/service/sharedatad.lua")),
        "skynet's sharedatad did not run:\n{}",
        run.dump()
    );
    run.says_in_order(T, COMMON);
    run.says_in_order(T, &["orphan The key [.b] doesn't exist after update"]);
}
