//! skynet.socket end to end: real nodes running the Lua test services
//! `test/sock_*.lua` (loopback only).

mod common;

use std::time::Duration;

/// A node for test service `start`. The services stop themselves with
/// skynet.abort() (their own watchdog fires at 15 s); the deadline is a backstop.
fn node(start: &str) -> common::Node {
    common::Node::new(start).timeout(Duration::from_secs(20))
}

#[test]
fn tcp_echo_and_close() {
    let run = node("sock_echo").run();
    clean(&run, "sock_echo");
    run.expect_order(&[
        "sock_echo: listen 127.0.0.1 true",
        "sock_echo: connected",
        "sock_echo: readline hello",
        "sock_echo: readline GOT 10 01234",
        "sock_echo: read some abc",
        "sock_echo: read after server close false bye",
    ]);
    run.expect("sock_echo: accept 127.0.0.1:port");
    run.expect("sock_echo: server closed");
    run.expect("sock_echo: readline x");
    run.expect("sock_echo: server saw close, rest=partial data");
    run.expect("sock_echo: server readall 300000 zzz");
    run.expect("socket buffer overflow: fd=");
    run.expect("sock_echo: server after limit, disconnected true");
    run.expect("sock_echo: read after limit false");
    run.expect("sock_echo: done");
}

/// Asserts the service reached its end without failing or timing out.
fn clean(run: &common::Run, tag: &str) {
    let out = run.dump();
    assert!(!run.has(&format!("{tag}: FAIL")), "{out}");
    assert!(!run.has(&format!("{tag}: TIMEOUT")), "{out}");
    run.expect(&format!("{tag}: done"));
}

#[test]
fn write_warnings_and_flow_control() {
    let run = node("sock_warning").run();
    clean(&run, "sock_warning");
    run.expect("sock_warning: a read 524288");
    run.expect("sock_warning: b read 8388608 true");
    // the writer's queue passes 1 MiB, then the default handler's drained notice
    let warnings: Vec<u64> = run
        .texts()
        .iter()
        .filter_map(|t| {
            let rest = t.strip_prefix("WARNING: ")?;
            rest.split(' ').next()?.parse().ok()
        })
        .collect();
    assert!(
        warnings.first().is_some_and(|k| *k >= 1024),
        "{warnings:?}\n{}",
        run.dump()
    );
    assert_eq!(warnings.last(), Some(&0), "{warnings:?}\n{}", run.dump());
    assert!(run.has("K bytes need to send out (fd = "));
    // The first reader paused past 128 KiB. Its read resumes the socket unless
    // the data read before the pause took effect already covers it.
    let i = run.expect(" size : ");
    assert!(run.lines[i].contains("Pause socket ("), "{}", run.dump());
    let id = run.lines[i]
        .split("Pause socket (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap()
        .to_string();
    let read = run.expect("sock_warning: a read");
    if let Some(resume) = run.find(&format!("Resume socket ({id})")) {
        assert!(i < resume && resume < read, "{}", run.dump());
    }
}

#[test]
fn stdin_lines() {
    let run = node("sock_stdin")
        .stdin("first\nsecond line\nno newline")
        .run();
    clean(&run, "sock_stdin");
    run.expect_order(&[
        "sock_stdin: bound true",
        "sock_stdin: line first",
        "sock_stdin: line second line",
        "sock_stdin: eof, rest=no newline",
    ]);
}

#[test]
fn connect_failures() {
    let run = node("sock_refused").run();
    clean(&run, "sock_refused");
    run.expect("sock_refused: closed port nil Connection refused");
    run.expect("sock_refused: bad host nil string");
    run.expect("sock_refused: no port false");
    run.expect("Invalid address 127.0.0.1.");
    run.expect("sock_refused: port 0 false");
    run.expect("Invalid port");
    run.expect("sock_refused: listen twice false");
    run.expect("Listen error");
    run.expect("sock_refused: invalid after close true");
    run.expect("sock_refused: write to unknown false");
    run.expect("sock_refused: driver listen host:port integer");
    run.expect("sock_refused: driver listen no port false");
}

#[test]
fn abandon_and_start_elsewhere() {
    let run = node("sock_transfer").run();
    clean(&run, "sock_transfer");
    run.expect_order(&[
        "sock_transfer: main got hello main",
        "sock_transfer_agent: started true nil",
        "sock_transfer: client got agent ready",
        "sock_transfer: client got agent: hello agent",
        "sock_transfer_agent: saw close",
    ]);
    run.expect_order(&[
        "sock_transfer: client got from main",
        "sock_transfer: client got agent ready",
    ]);
    run.expect("sock_transfer: main abandoned, invalid true");
    run.expect("sock_transfer: agent took true");
}

#[test]
fn udp() {
    let run = node("sock_udp").run();
    clean(&run, "sock_udp");
    run.expect("sock_udp: netstat UDP");
    run.expect_order(&[
        "sock_udp: server got ping 127.0.0.1",
        "sock_udp: client got echo ping 127.0.0.1 true",
        "sock_udp: server got pong 127.0.0.1",
        "sock_udp: other got echo pong",
    ]);
    run.expect("sock_udp: resolve 127.0.0.1");
}
