//! skynet.socketchannel end to end: the Lua test service `test/t_sockchannel.lua`
//! runs the channel against scripted servers in the same node (loopback only).

mod common;

use std::time::Duration;

#[test]
fn socketchannel_modes_failures_and_reconnect() {
    let run = common::Node::new("t_sockchannel")
        .timeout(Duration::from_secs(40))
        .run();
    let tag = "t_sockchannel";
    assert!(!run.has("t_sockchannel: FAIL"), "{}", run.dump());
    assert!(!run.has("t_sockchannel: TIMEOUT"), "{}", run.dump());
    run.says_in_order(
        tag,
        &[
            // order mode: answers matched first in, first out
            "order first second third",
            "order multi part1,part2,part3",
            "order refused false nope",
            "order padding with padding",
            "order after no-response next",
            "order bad frame false bad frame junk",
            "order after bad frame fresh",
            "order twice t 1 t 2",
            // session mode: answers out of order, each to its own caller
            "session one two three",
            "session finish order two,three,one",
            "session multi a,b,c",
            "session refused false no way",
            "session stray ok",
            "session push pushed p",
            // the peer dies with requests in flight: errors at once
            "inflight order warmup up",
            "inflight order socket_error socket_error true",
            "inflight order reconnect again",
            "inflight session warmup up",
            "inflight session socket_error socket_error true",
            "inflight session reconnect again",
            "inflight close socket_error true",
            "after close false true",
            "auth bad false true",
            "auth good a b",
            "backup backup",
            "changebackup other",
            "backup all down false true",
            "restart before one",
            "restart while down false true",
            "restart reconnected true",
            "restart after three",
            "close while connecting false true true",
            "changehost A",
            "changehost B",
            "overload on true",
            "overload server read true",
            "overload notes true,false",
            "done",
        ],
    );
    run.expect("socket: unknown session : 999");
    run.expect("socket: auth failed");
    run.expect("auth rejected: NO");
    run.expect("socket: connect to backup host 127.0.0.1");
    run.expect("socket closed by peer :");
    run.expect("socket: connect to 127.0.0.1");
}
