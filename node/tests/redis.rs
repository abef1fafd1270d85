//! skynet.db.redis end to end: the Lua test service `test/t_redis.lua` talks
//! to real `redis-server` processes this test starts on loopback (their own
//! temp dirs, no persistence). One of them is SIGKILLed while a request of
//! the service is blocked there, to check that callers fail at once.
//! Without redis-server the test fails under CI=true and skips otherwise.

mod common;

use common::server::{installed_or_skip, Killer};
use skynet_node::outside::{redis_available, redis_command as command, start_redis};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// True while a client of the server on `port` is blocked (our BLPOP).
fn client_blocked(port: u16) -> bool {
    let blocked = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let req = command(&["AUTH", "sekret"]) + &command(&["INFO", "clients"]);
        s.write_all(req.as_bytes())?;
        let mut got = String::new();
        let mut buf = [0u8; 4096];
        while !got.contains("blocked_clients:") || !got.ends_with("\r\n") {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        Ok(got.contains("blocked_clients:1"))
    });
    matches!(blocked, Ok(true))
}

#[test]
fn redis_client_against_real_server() {
    if !installed_or_skip(redis_available(), "redis", "redis-server") {
        return;
    }
    let plain = start_redis(&[]).unwrap();
    let authed = start_redis(&["--requirepass", "sekret"]).unwrap();

    // The killer: once a client of the service is blocked (its BLPOP is in
    // flight), SIGKILL the auth server.
    let auth_port = authed.port;
    let killer = Killer::start(
        &authed,
        Duration::from_secs(60),
        Duration::from_millis(20),
        move || client_blocked(auth_port),
    );

    let run = common::Node::new("t_redis")
        .config("redis_port", &plain.port.to_string())
        .config("redis_auth_port", &auth_port.to_string())
        .timeout(Duration::from_secs(60))
        .run();
    let killed = killer.finish();
    let tag = "t_redis";
    assert!(!run.has("t_redis: FAIL"), "{}", run.dump());
    assert!(!run.has("t_redis: TIMEOUT"), "{}", run.dump());
    assert!(
        killed,
        "the BLPOP never blocked on the server:\n{}",
        run.dump()
    );
    run.says_in_order(
        tag,
        &[
            "set OK",
            "get v",
            "get missing nil",
            "binary true 10",
            "big true",
            "incr 1 integer",
            "incrby 42",
            "negative -7",
            "exists true false",
            "sismember true false",
            "lrange a,b,c",
            "hget v3 3",
            "mget v nil 42",
            "nested 1 two 3 four five",
            "empty array table 0",
            "exec v,43",
            "ping PONG",
            "wide hmset OK 250000 250000",
            "wide hmset list OK 250000",
            "error incr ERR value is not an integer or out of range",
            "error unknown ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' ",
            "error wrongtype WRONGTYPE Operation against a key holding the wrong kind of value",
            "error nil arg redis: argument 2 of SET is nil",
            "after errors abc",
            "exec with error false table OK ERR value is not an integer or out of range",
            "select zero one",
            "select after one",
            "select bad ERR DB index is out of range",
            "noauth NOAUTH Authentication required.",
            "auth wrong WRONGPASS invalid username-password pair or user is disabled.",
            "auth method OK OK",
            "auth connect wrong false",
            "auth connect two",
            "auth username 1",
            "pipeline last 15",
            "pipeline resp true 4 true 16 false WRONGTYPE Operation against a key holding the wrong kind of value",
            "pipeline resp tail true 0 true nil",
            "pipeline error ERR wrong number of arguments for 'incr' command",
            "pipeline empty redis: pipeline needs a non-empty list of commands",
            "pipeline after 16",
            "watch subscribed true",
            "watch publish 1 1 1",
            "watch got hello news|world ev.x ev.*|42 sport",
            "watch unsubscribed true",
            "watch after unsubscribe kept sport 4",
            "watch reader ended true",
            "watch disconnect true",
            "malformed 1 true OK true",
            "malformed 2 false redis: malformed reply: unknown reply type \"?\" (\"?what\") true",
            "malformed 3 false redis: malformed reply: bad number (\"$abc\") true",
            "malformed 4 false redis: malformed reply: bulk string not ended by CRLF (\"abcd\\13\") true",
            "malformed 5 false redis: malformed reply: negative bulk length (\"$-5\") true",
            "malformed 6 false redis: malformed reply: bad number (\":12x\") true",
            "malformed 7 false redis: malformed reply: unknown reply type \"!\" (\"!x\") true",
            "malformed 8 false redis: malformed reply: empty line (\"\") true",
            "malformed 9 false redis: malformed reply: bulk length over 512 MB (\"$99999999999\") true",
            "malformed 10 false redis: malformed reply: arrays nested deeper than 128 (\"*1\") true",
            "malformed 11 false [Error: socket] true",
            "malformed 12 false [Error: socket] true",
            "malformed 13 false redis: malformed reply: negative array length (\"*-2\") true",
            "malformed 14 true nil true",
            "kill warmup PONG",
            "kill blocked",
            "kill all failed true false false false",
            "kill error [Error: socket] true",
            "kill after false true",
            "done",
        ],
    );
    // a wrong password is reported with the server's text
    run.expect("WRONGPASS");
}
