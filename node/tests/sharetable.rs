//! Process tests of `skynet.sharetable` (lualib/skynet/sharetable.lua on
//! `skynet.sharetable.core`): a real node whose start service is
//! test/t_sharetable.lua, with reader services (t_sharetable_reader.lua).

mod common;
mod live;

use common::{Node, Run};
use std::time::Duration;

fn run(start: &str) -> Run {
    live::run_to_done(&Node::new(start), Duration::from_secs(60))
}

#[test]
fn sharetable_across_services() {
    let run = run("t_sharetable");
    let t = "t_sharetable";
    let lines = run.said(t);
    let data = format!(
        "{}/test/t_sharetable_data.lua",
        common::repo_root().display()
    );
    let mut want: Vec<String> = vec![
        // loadtable, loadstring (with its arguments), loadfile (with its
        // arguments; a shared function without upvalues runs in the reader)
        "query 1 100 100 one true true".into(),
        "loadstring 7 seven 3 true".into(),
        "loadfile file 30 12 165".into(),
        "unknown nil".into(),
        "ipairs 100 5050 pairs items,sub,version".into(),
    ];
    // assignment, new key, array growth, rawset, table.insert, setmetatable
    want.extend((0..6).map(|_| "write false attempt to change a shared table".to_string()));
    want.extend([
        "after writes 1 100 one".to_string(),
        // errors reach the caller with the loader's text
        "syntax [string \"return {\"]:1: unexpected symbol near <eof>".into(),
        "upvalue sharetable: a function with upvalues cannot be shared (at root.f)".into(),
        "not a table sharetable: a table is expected, got number".into(),
        "bad name nil".into(),
        "queryall list cfg,str true 7".into(),
        format!("queryall {data},cfg,str"),
        // a skynet.pack pointer handed to the owner service
        "handed over 2".into(),
        // the native module: a box, a clone that outlives the box's close,
        // a forged pointer, arguments that cannot reach the matrix state
        "matrix true userdata 1 two direct".into(),
        "closed box true 0 direct true".into(),
        "forged is not a live shared table".into(),
        "bad args bad argument #2 to 'matrix' (a table cannot be passed) \
         bad argument #3 to 'matrix' (a Lua function cannot be passed)"
            .into(),
        "stackvalues 1 true 0".into(),
        "reader holds 1".into(),
        "reader holds 1".into(),
        "reader holds 1".into(),
    ]);
    // the error names the reader's line that wrote
    let reader = common::repo_root().join("test/t_sharetable_reader.lua");
    let line = std::fs::read_to_string(&reader)
        .unwrap()
        .lines()
        .position(|l| l.contains("held.cfg.sub.name = \"changed\""))
        .unwrap()
        + 1;
    let write_in_reader = format!(
        "write in reader false {}:{line}: attempt to change a shared table",
        reader.display()
    );
    want.extend([
        write_in_reader,
        // after a new load the reader still reads its version everywhere
        // (field, key, __index, upvalue, coroutine local, subtable) ...
        "old version 1 1 1 1 1 one".into(),
        // ... until it updates
        "updated 2 2 2 2 2 two".into(),
        "mine still 1 2".into(),
        // readers querying, reading whole versions and collecting while
        // versions 3..8 come and go saw newer versions, never a torn one
        "churn true true".into(),
        "churn true true".into(),
    ]);
    let mem = lines
        .iter()
        .position(|l| l.starts_with("reader memory below 2 KiB"))
        .unwrap_or_else(|| panic!("no memory line:\n{}", run.dump()));
    assert_eq!(&lines[..mem], &want[..], "\n{}", run.dump());
    assert!(
        lines[mem].starts_with("reader memory below 2 KiB true "),
        "{}",
        lines[mem]
    );
    // 5 names keep their current version; this service holds cfg 1 and 2
    // and the matrix whose box it closed
    assert_eq!(lines[mem + 1], "matrices freed true 8", "\n{}", run.dump());
    assert_eq!(lines[mem + 2], "done");
    // versions 3..7, held by the churning readers, went with them
    let deleted = run
        .texts()
        .iter()
        .filter(|l| l.starts_with("Delete a version (userdata: ") && l.ends_with(") of cfg"))
        .count();
    assert_eq!(deleted, 5, "\n{}", run.dump());
}
