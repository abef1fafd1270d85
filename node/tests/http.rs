//! http.* and skynet.dns in real nodes, on 127.0.0.1 only: `test/t_http.lua`
//! (httpd served to httpc and to raw sockets), `test/t_dns.lua` (skynet.dns
//! against a DNS responder in the test service).

mod common;

use std::time::Duration;

fn node(start: &str) -> common::Node {
    common::Node::new(start).timeout(Duration::from_secs(20))
}

/// Asserts the service reached its end without failing or timing out.
fn clean(run: &common::Run, tag: &str) {
    let out = run.dump();
    assert!(!run.has(&format!("{tag}: FAIL")), "{out}");
    assert!(!run.has(&format!("{tag}: TIMEOUT")), "{out}");
    run.expect(&format!("{tag}: done"));
}

#[test]
fn httpd_and_httpc() {
    let run = node("t_http").run();
    clean(&run, "t_http");
    let t = "t_http";
    for line in [
        "get 200 hello x=1 y=a b /hello 15",
        "get 404 404 no /nothing",
        "get by name 200 hello x=local y=nil",
        "post 200 POST a=1%202 ct=application/x-www-form-urlencoded te=nil",
        "put 200 PUT raw body ct=text/plain te=nil",
        "chunked 200 onetwothree",
        "stream chunked 200 one,two,three nil",
        "stream big 200 100000 nil",
        "big 200 100000",
        "head 200",
        "multi table a=1;b=2",
        "chunked request 200 POST abcdefg ct=nil te=chunked",
        "keep-alive 200 hello x=k1 y=nil 200 POST hello ct=nil te=nil true",
        "timeout false true true true",
        "refused false true true",
        "bare v6 false true",
        // bad requests: answered, and the half-sent client is served after
        "garbage 400 ",
        "bad header line 400 ",
        "bad length 400 ",
        "version 505 ",
        "coding 501 ",
        "bad chunk 400 ",
        "huge header 413 ",
        "huge body 413 ",
        "huge chunk 413 ",
        "slow client 200 hello x=slow y=nil",
        "after bad 200 hello x=after y=nil",
        "no limit 200 50000",
        "url /a b c k=1&k=2&e=&flag&sp=x%2By+z table 1 2   x+y z",
        "url none /plain ",
        "url bad escape /100%zz ",
        "parseheader 1 3 2 x y []",
        "parseheader bad nil nil",
    ] {
        run.says(t, line);
    }
    for code in ["400", "413", "501", "505"] {
        run.says(t, &format!("server answered {code}"));
    }
}

#[test]
fn dns_against_a_local_responder() {
    let run = node("t_dns").run();
    clean(&run, "t_dns");
    let t = "t_dns";
    run.says_in_order(
        t,
        &[
            "web 127.0.0.1 127.0.0.1",
            // cached: one query; after flush, asked again
            "web again 127.0.0.1 1",
            "web after flush 127.0.0.1 2",
            "two 10.0.0.1 10.0.0.1,10.0.0.2",
            "v6 0:0:0:0:0:0:0:1 0:0:0:0:0:0:0:1",
            "short 10.1.1.1 10.1.1.1",
            // ttl 1 s passed: asked again
            "short expired 10.1.1.1 2",
            "noisy 10.2.2.2 10.2.2.2",
            "hosts 10.7.7.7 10.7.7.7",
            "hosts v6 ::7 ::7",
            "hosts alias 10.7.7.7 10.7.7.7",
            "ip 192.168.1.1 nil",
            "ip v6 as v4 nil illegal ip address",
            "illegal nil illegal name",
            "illegal label nil illegal name",
            // names from the hosts file and addresses never reach the server
            "queries nil nil",
            "httpc missing false true",
        ],
    );
    let said = run.said(t);
    let starts = |p: &str| said.iter().any(|l| l.starts_with(p));
    assert!(starts("httpc 200 host web.test:"), "{}", run.dump());
    for p in ["missing error ", "silent error ", "loop error "] {
        let line = said
            .iter()
            .find(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("{p}\n{}", run.dump()));
        assert!(line.contains("timeout or no answer"), "{line}");
    }
    assert!(
        starts("missing error ") && said.iter().any(|l| l.ends_with("(missing.test: rcode 3)"))
    );
    assert!(said.iter().any(|l| l.ends_with("(silent.test: timeout)")));
    run.expect("DNS query silent.test timeout");
    for bad in [
        "short packet",
        "not an answer",
        "bad address length",
        "name pointer loop",
    ] {
        run.expect(&format!("Recv an invalid package when dns query: {bad}"));
    }
    run.expect("Udp server open 127.0.0.1:");
}

#[test]
fn websocket_server_and_client() {
    let run = node("t_websocket").run();
    clean(&run, "t_websocket");
    let t = "t_websocket";
    run.says_in_order(
        t,
        &[
            "server handshake /path?x=1 t true",
            "client text echo text 5 hello text",
            "client binary binary 17",
            "client large text echo text 100000 xxxxxxxxxxxx",
            "server ping ",
            "client after ping echo text 10 after ping text",
            "client closed by server false bye 4000",
        ],
    );
    for line in [
        "server close 1000 done",
        "client duplicate header false",
        "client bad url false true",
        // RFC 6455's example key; server frames are never masked
        "raw handshake HTTP/1.1 101 Switching Protocols s3pPLMBiTxaQ9kYGzzhZRbK+xOo= websocket",
        "server ping pp",
        "raw pong 10 false pp",
        "raw fragmented 1 false echo text 11 Hello world",
        "server close 1001 going",
        "raw close echo 8 false 1001  true",
        // protocol errors: a close frame with the code, then the end
        "raw unmasked 8 1002 unmasked client frame true",
        "server close 1002 unmasked client frame",
        "server accept false websocket protocol error 1002: unmasked client frame",
        "raw too large 8 1009 payload_len is too large",
        "raw stray continuation 1002 continuation frame without a message",
        "raw fragmented ping 1002 bad control frame",
        "raw no upgrade HTTP/1.1 426 Upgrade Required",
        "raw no key HTTP/1.1 400 Bad Request",
        "raw post HTTP/1.1 400 Bad Request",
        // the client: fragments joined, a masked server frame refused;
        // its own frames (pong, close) are masked
        "client fragmented abcd binary",
        "client masked frame false masked server frame 1002",
        "raw server saw 10 true hi, 8 true 1002 masked server frame",
    ] {
        run.says(t, line);
    }
}
