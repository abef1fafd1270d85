//! snax.loginserver end to end: `test/t_login.lua` logs in over loopback
//! TCP against the login server of `test/t_logind.lua`, speaking skynet's
//! line protocol (challenge, DH exchange, hmac64, DES token).

mod common;

use std::time::Duration;

#[test]
fn login_handshake_answers_and_refusals() {
    let run = common::Node::new("t_login")
        .timeout(Duration::from_secs(30))
        .run();
    let t = "t_login";
    let out = run.dump();
    assert!(!run.has("t_login: FAIL"), "{out}");
    assert!(!run.has("t_login: TIMEOUT"), "{out}");
    // each result line, then whether the server closed the connection
    run.says_in_order(
        t,
        &[
            "port true",
            "good 200 alice#1 true",
            "secret agrees true",
            "again 200 alice#2 true",
            "bad password 401 Unauthorized true",
            "bad hmac 401 Unauthorized true",
            "bad key 401 Unauthorized true",
            "unknown server 403 Forbidden true",
            "multi 200 carol#3 406 Not Acceptable",
            "after multi 200 carol#4 true",
            "quit nil true",
            "overlong false true",
            "done",
        ],
    );
    // the server's own log lines, as skynet's loginserver writes them
    run.expect("login server listen at : 127.0.0.1 ");
    run.expect("connect from 127.0.0.1:");
    for reason in [
        "Invalid password",
        "challenge failed",
        "Invalid client key",
        "Unknown server nowhere",
        "User carol is already login",
        "socket error",
    ] {
        let hit = run
            .texts()
            .iter()
            .any(|l| l.starts_with("invalid client (fd = ") && l.ends_with(reason));
        assert!(hit, "no 'invalid client' line for {reason}\n{out}");
    }
    run.expect("auth failed: socket (fd = ");
    run.expect("socket buffer overflow: fd=");
    // both slaves took connections (round robin)
    let slaves: std::collections::HashSet<String> = run
        .dump()
        .lines()
        .filter(|l| l.contains("] connect from "))
        .map(|l| l[..11].to_string())
        .collect();
    assert_eq!(slaves.len(), 2, "{out}");
}
