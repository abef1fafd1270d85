//! skynet.crypt and md5 in a real node: `test/t_crypt.lua` replays the calls
//! of `test/vectors/crypt.txt`, whose results C skynet gave, and checks what
//! vectors can't (random keys, big inputs, client.crypt, the clock seed).

mod common;
mod live;

use common::{repo_root, Node};
use std::time::Duration;

#[test]
fn crypt_and_md5_match_skynet() {
    let vectors = repo_root().join("test/vectors/crypt.txt");
    let lines = std::fs::read_to_string(&vectors).unwrap().lines().count();
    let node = Node::new("t_crypt").config("crypt_vectors", &format!("\"{}\"", vectors.display()));
    let r = live::run_to_done(&node, Duration::from_secs(60));
    let t = "t_crypt";
    let out = r.dump();
    assert!(!r.has("t_crypt: MISMATCH"), "{out}");
    assert!(!r.has("t_crypt: FAIL"), "{out}");
    r.says(t, &format!("vectors {lines} passed {lines}"));
    for line in [
        "randomkey distinct 200 zero 0",
        "padding 0 1",
        "client.crypt a9993e364706816aba3e25717850c26c9cd0d89d 1",
        "hex g Invalid hex text Invalid hex text",
        "hex upper Invalid hex text",
        "big base64 true",
        "big hex true",
        "big des 1048584 true",
        "big xor true",
        "big md5 14d785daab3823736c981ca82a750c98 1048581",
        "big sha1 7b961ac18d33b99122ed5d88d1ce62dd19fc8c69",
        "dh agree true 8",
        "hmac64 len 8",
        "md5 crypt no seed 8 14 hello",
        "md5 info MD5 1.2 Basic cryptographic facilities",
        "hmacmd5 750c783e6ab0b503eaa86e310a5db738",
        "done",
    ] {
        r.says(t, line);
    }
}
