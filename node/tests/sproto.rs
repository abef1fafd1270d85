//! sproto in real nodes: `test/t_sproto.lua` runs the golden vectors and the
//! whole Lua API through our lualib (sproto, sprotoparser, sprotoloader);
//! `test/t_sproto_skynet.lua` does the same through skynet's own sproto.lua
//! and sprotoloader.lua, found first on lua_path, on our sproto.core.

mod common;
mod live;

use common::{repo_root, Node, Run};
use std::path::PathBuf;
use std::time::Duration;

fn vectors_dir() -> PathBuf {
    match std::env::var_os("SKYNET_VECTORS") {
        Some(d) => PathBuf::from(d),
        None => repo_root().join("../shared/vectors"),
    }
}

fn run(node: Node) -> Run {
    let node = node.config(
        "sproto_vectors",
        &format!("\"{}\"", vectors_dir().join("sproto").display()),
    );
    live::run_to_done(&node, Duration::from_secs(60))
}

#[test]
fn sproto_lua_api_vectors_rpc_loader_and_errors() {
    let r = run(Node::new("t_sproto"));
    let t = "t_sproto";
    for line in [
        "compiled schema matches 1046",
        "type rows 47 rpc rows 16",
        "pack rows 16",
        // RPC: sessions, ud, one-way requests, no types, response nil
        "request REQUEST lookup {id=7,name=x} function 3",
        "response RESPONSE 11 {id=7,name=Bob,phone={1={number=1,type=2}}} 5",
        "one-way REQUEST lookup {id=8} nil nil",
        "ping REQUEST ping nil function",
        "ping response RESPONSE 12 nil nil",
        "notify REQUEST notify {msg=hi} function",
        "notify with value bad argument #2 to 'encode' (nil expected, got table)",
        "notify response RESPONSE 13 nil nil",
        "stale session Unknown session",
        "request_encode 2 {others={1={id=1}}} update",
        "response_decode {count=2,ok=true}",
        "ping encode true nil ping",
        "queryproto 4 notify true false true false",
        "decode into true {id=3,stale=true} 6",
        // default
        "default {1=,2=0,3=F0.0,4=F0.0,5=false,6=,7={__array=Person.PhoneNumber},8={__array=Person}}",
        "default types integer float float",
        "default request {id=0,name=} nil",
        "default response {count=0,ok=false}",
        "default bad Invalid type",
        // metamethods and an encode nested in another
        "nested encode true 020001000c00",
        "pairs {friends={3={id=3}}}",
        "metamethod error boom",
        "after error 020001000400",
        // errors: bad values, bad arguments, forged objects, malformed input
        "type error Person.id[0] is not an integer (Is a string)",
        "array error Person.scores[3] is not an integer (Is a string)",
        "bool error Person.flags[1] is not a boolean (Is a number)",
        "string error Person.name[0] is not a string (Is a number)",
        "struct error Person.phone[1] is not a table (Is a number)",
        "container error Person.tags(1) should be a table or an userdata with metamethods (Is a string)",
        "not a table bad argument #2 to 'encode' (table expected, got nil)",
        "too deep The table is too deep",
        "too large object is too large (>16777216)",
        "bad type arg bad argument #1 to 'sproto.core.encode' (Need a sproto_type object)",
        "forged type bad argument #1 to 'sproto.core.encode' (Need a sproto_type object)",
        "sproto as type bad argument #1 to 'sproto.core.decode' (Need a sproto_type object)",
        "type as sproto bad argument #1 to 'sproto.core.querytype' (Need a sproto object)",
        "decode short decode error (truncated header)",
        "decode overrun decode error (data item overruns the message)",
        "decode arg sproto.decode: need a string or a message pointer and size, got table",
        "unpack short Invalid unpack stream",
        "unpack arg sproto.unpack: need a string or a message pointer and size, got nil",
        "dispatch garbage decode error (data item overruns the message)",
        "unknown session Unknown session",
        "newproto garbage invalid sproto schema: the group: 3 field words in 3 bytes",
        "bad schema redefine tag 0 in type A at [=text] line (3)",
        "syntax syntax error at [a.sproto] line (2): expected ':' after the tag of field a, found 'integer'",
        "slot range Invalid global slot index 16",
        "empty slot nil sproto at index 15",
        "stale pointer invalid pointer (not a live message block)",
        // deleteproto: the object refuses, types already handed out work
        "same type object true",
        "deleted bad argument #1 to 'sproto.core.querytype' (Need a sproto object)",
        "type survives 020001000400",
        // sprotoloader slots, read by another service
        "peer loads slot 1 020000000400010000006e",
        "peer loads slot 2 020000000600010000006e",
        "shared here 020001000600",
        "peer sees replaced slot types: true",
        "old shared object still works 020001000600",
        // packets handed over as message pointers
        "peer got REQUEST lookup 9 function 2; REQUEST notify m nil nil",
    ] {
        r.says(t, line);
    }
    let unknown = r.said(t);
    assert!(unknown
        .iter()
        .any(|l| l.starts_with("unknown type ") && l.ends_with("type not found")));
    assert!(unknown
        .iter()
        .any(|l| l.starts_with("unknown proto ") && l.ends_with("nope not found")));
    // dumpproto and sprotoparser.dump print on stdout
    for line in [
        "=== 8 types ===",
        "\theight (4) decimal(100)",
        "\tattrs (15) *Attr key[0] value[1]",
        "=== 4 protocol ===",
        "\tnotify (4) request:notify.request response nil",
        "02 00 00 00 00 00 AC 03 - 00 00 4F 00 00 00 02 00 ",
        "00 00 00 00 ",
    ] {
        assert!(
            r.lines.iter().any(|l| l == line),
            "no stdout line {line:?}:\n{}",
            r.dump()
        );
    }
    assert!(!r.has("init service failed"), "{}", r.dump());
}

/// skynet's lualib, for its own sproto.lua and sprotoloader.lua.
fn skynet_lualib() -> Option<PathBuf> {
    let dir = std::env::var_os("SKYNET_LUALIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/scratch/skynet/lualib"));
    dir.join("sproto.lua").is_file().then_some(dir)
}

#[test]
fn skynet_sproto_lua_runs_on_our_core() {
    let Some(lib) = skynet_lualib() else {
        eprintln!("skynet's lualib not found (set SKYNET_LUALIB): test skipped");
        return;
    };
    // Only these two files come from skynet: its sprotoparser.lua needs lpeg.
    let dir = std::env::temp_dir().join(format!("skynet-sproto-lib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["sproto.lua", "sprotoloader.lua"] {
        std::fs::copy(lib.join(f), dir.join(f)).unwrap();
    }
    let root = repo_root();
    let node = Node::new("t_sproto_skynet").config(
        "lua_path",
        &format!(
            "\"{d}/?.lua;{r}/lualib/?.lua;{r}/lualib/?/init.lua;{r}/test/?.lua\"",
            d = dir.display(),
            r = root.display()
        ),
    );
    let r = run(node);
    let t = "t_sproto_skynet";
    for line in [
        format!("sproto.lua {}/sproto.lua", dir.display()),
        format!("sprotoloader.lua {}/sprotoloader.lua", dir.display()),
    ] {
        r.says(t, &line);
    }
    for line in [
        "compiled schema matches 1046",
        "type rows 47 rpc rows 16",
        "pack rows 16",
        "request REQUEST lookup {id=7} function 3",
        "response RESPONSE 11 {id=7,name=Bob} 5",
        "notify response RESPONSE 13 nil nil",
        "default {number=,type=0} {count=0,ok=false}",
        "decode error false decode error (truncated header)",
        "peer loads slot 1 020000000400010000006e",
        "peer loads slot 2 020000000600010000006e",
        "shared here 020001000600",
        "peer got REQUEST lookup 9 function 2",
    ] {
        r.says(t, line);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
