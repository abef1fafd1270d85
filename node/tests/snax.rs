//! Process tests of snax (`skynet.snax`, `snaxd`, `snax.interface`,
//! `snax.hotfix`): real nodes whose start service is `test/t_snax*.lua`,
//! with the config key `snax` pointing at the snax services in `test/snax/`.
//! The global-service test runs two harbors (harbor 1 runs the master).

mod common;
mod live;

use common::{repo_root, Node, Run};
use skynet_node::outside::free_port;
use std::time::Duration;

const SNAX_PATH: &str = "root..\"test/snax/?.lua\"";

fn run_node(node: Node, timeout: Duration) -> Run {
    live::run_to_done(&node, timeout)
}

/// How many log lines contain `needle`.
fn count(run: &Run, needle: &str) -> usize {
    run.lines.iter().filter(|l| l.contains(needle)).count()
}

#[test]
fn snax_methods_errors_profile_hotfix_and_unique_services() {
    let run = run_node(
        Node::new("t_snax")
            .config("snax", SNAX_PATH)
            .config("snax_loader", "root..\"test/snax_loader.lua\""),
        Duration::from_secs(30),
    );
    let t = "t_snax";
    let root = repo_root().display().to_string();
    run.says(t, "done");

    // method ids: system 1..4, then accept/response in definition order
    run.says_in_a_row(
        t,
        &[
            "interface snax_counter true",
            "system exit=2 hotfix=3 init=1 profile=4",
            "accept add=5 fail=9 quit=11",
            "response echo=7 fail=8 get=6 helper=13 slow=12 whoami=10",
        ],
    );
    // a bad snax file is an error that points at its line
    run.says(
        t,
        &format!(
            "bad type error {root}/test/snax/snax_bad_type.lua:2: accept.broken must be function"
        ),
    );
    run.says(t,
        &format!("bad dup error {root}/test/snax/snax_bad_dup.lua:3: response.twice duplicate definition"),
    );
    run.says(
        t,
        &format!("bad init error {root}/test/snax/snax_bad_init.lua:2: init must be a function"),
    );
    run.says(t, "missing file false true");
    run.says(t, "printf 7 x");
    // snaxd loaded every snax file through the config's snax_loader
    assert_eq!(
        count(&run, "snax_loader: snax_counter"),
        count(&run, "LAUNCH snlua snaxd snax_counter"),
        "{}",
        run.dump()
    );
    assert_eq!(
        count(&run, "LAUNCH snlua snaxd snax_counter"),
        5,
        "{}",
        run.dump()
    );
    assert!(
        run.said(t)
            .iter()
            .any(|l| l.starts_with("missing service false ")
                && l.ends_with(&format!(
                    "cannot open {root}/test/snax/snax_missing.lua: No such file or directory"
                ))),
        "{}",
        run.dump()
    );

    // objects: post sends (no results), req calls; messages stay in order;
    // init got all its arguments, nil included
    run.expect("snax_counter: init first 3");
    run.says_in_a_row(
        t,
        &[
            "tostring true snax_counter",
            "post returns 0",
            "req get 5",
            "after 100 posts 105",
            "echo 4:1,nil,x,false",
            "echo none 0:",
            // the wrong kind of method, or an unknown one, fails at once
            "req on accept error request snax_counter:add no exist",
            "post on response error post snax_counter:get no exist",
            "unknown method error request snax_counter:nothing no exist",
            // an error in a response method reaches the caller as skynet's
            // "call failed"; the service logs it and goes on
            "response error error call failed",
            "alive after errors 105",
            "whoami 3:true,snax_counter,snax_counter",
            "whoami matches true",
            "helper helper here snax_counter/",
            "lua protocol 105",
            "bind cached true",
            "bind other type error snax.bind: <handle> is bound as snax_counter, not snax_plain",
            // add: 1 + 100 posts; get: 4 reqs; fail: one post and one req
            "profile 101 4 2 2 1 2 1",
            // the sleep of slow(10) is not counted as its time
            "profile times true true true true",
            "debug info 101 4",
        ],
    );
    run.expect("snax_counter failed: boom");
    run.expect("snax_counter accept failed: quiet");
    // kill runs exit with its arguments before the caller goes on
    run.expect_order(&["snax_counter: exit first bye 1", "t_snax: killed"]);
    assert!(
        run.said(t)
            .iter()
            .any(|l| l.starts_with("after kill false ")),
        "{}",
        run.dump()
    );

    // hotfix: the counter survives a patch that changes accept.add
    run.says_in_a_row(
        t,
        &[
            "before hotfix 5",
            "hotfix returns 2:5,3",
            "after hotfix 25 hot",
            "mismatch error Patch mismatch response.nothere",
            "syntax false true",
            "patch error error nope",
            "no hotfix function 0:",
            "echo patched 2:25,e",
            "recursive patch ok",
            "echo recursive 3:24,25,r",
            "state kept 25 hot",
            "profile after hotfix 2 3",
        ],
    );
    // snax.exit from inside the service
    run.expect_order(&[
        "snax_counter: exit hot by itself",
        "t_snax: after exit false",
    ]);

    // a raw snaxd before init
    run.says_in_a_row(
        t,
        &[
            "before init error call failed",
            "post before init ok",
            "init later 0",
            "init twice error call failed",
            "bad id error call failed",
            "bound 0 true",
            "plain pong x 1",
        ],
    );
    assert_eq!(count(&run, "Init first"), 2, "{}", run.dump());
    run.expect("Already init");
    run.expect("snax snax_counter: no method with id 99");
    run.expect("snax_counter: exit late");
    assert!(
        run.said(t)
            .iter()
            .any(|l| l.starts_with("plain killed false ")),
        "{}",
        run.dump()
    );

    // unique services: one per name, found by query (which waits), by
    // other services, and apart from the global one
    run.says_in_a_row(
        t,
        &[
            "unique same true true",
            "query true",
            "query waiting true",
            "query woke true",
            "peer true",
            "peer read 8",
        ],
    );
    run.expect("snax_counter: init unique 1");
    assert!(!run.has("snax_counter: init ignored"), "{}", run.dump());
    for which in ["unique missing error ", "query missing error "] {
        assert!(
            run.said(t).iter().any(|l| l.starts_with(which)
                && l.ends_with("snax_missing.lua: No such file or directory")),
            "{which}\n{}",
            run.dump()
        );
    }
    run.says_in_a_row(t, &["global distinct true true", "list true true true"]);
    assert_eq!(
        count(&run, "LAUNCH snlua snaxd snax_plain"),
        2,
        "one raw, one unique: {}",
        run.dump()
    );
}

#[test]
fn snax_without_config_key() {
    let run = run_node(Node::new("t_snax_noconf"), Duration::from_secs(20));
    run.says_in_a_row("t_snax_noconf", &["newservice false true", "done"]);
}

#[test]
fn snax_global_services_across_two_harbors() {
    let master = free_port();
    let harbor = |h: u8, role: &str| {
        let mut n = Node::new("t_snax_global")
            .config("snax", SNAX_PATH)
            .config("snax_role", &format!("\"{role}\""))
            .config("harbor", &h.to_string())
            .config("master", &format!("\"127.0.0.1:{master}\""))
            .config("address", &format!("\"127.0.0.1:{}\"", free_port()));
        if h == 1 {
            n = n.config("standalone", &format!("\"127.0.0.1:{master}\""));
        }
        live::write_config(&n.config_text(), &format!("snax-h{h}"))
    };
    let cfg1 = harbor(1, "host");
    let mut host = live::Live::spawn(&[&cfg1], &[]);
    if !host.wait_for("t_snax_global: ready 1 7", Duration::from_secs(20)) {
        panic!("host not ready:\n{}", host.finish(Duration::ZERO).dump());
    }
    let cfg2 = harbor(2, "guest");
    let mut guest = live::Live::spawn(&[&cfg2], &[]);
    let done = guest.wait_for("t_snax_global: done", Duration::from_secs(30));
    let guest = guest.finish(Duration::from_secs(2));
    let host = host.finish(Duration::ZERO);
    let both = format!("{}\n===== host =====\n{}", guest.dump(), host.dump());
    assert!(done, "{both}");
    let t = "t_snax_global";
    guest.says_in_a_row(
        t,
        &[
            // the global one lives on harbor 1 and keeps its state
            "queryglobal 1 7",
            "globalservice same true",
            "after post 8",
            "hotfix remote 8",
            "profile remote 2",
            "unique is local 2 true 0",
            // a waiting queryglobal does not block a globalservice launched
            // from the same harbor; global services start on the master's node
            "query waiting true",
            "launched on 1 pong hi 1",
            "query woke true",
            "global missing false true",
            "query missing false true",
        ],
    );
    assert!(
        guest.said(t).iter().any(|l| l.starts_with("killed false ")),
        "{both}"
    );
    // init ran once, on harbor 1; the kill from harbor 2 ran its exit there
    assert_eq!(count(&host, "snax_counter: init "), 1, "{both}");
    assert!(host.has("snax_counter: exit global1 from 2"), "{both}");
    assert!(host.has("LAUNCH snlua snaxd snax_plain"), "{both}");
    assert!(!guest.has("LAUNCH snlua snaxd snax_plain"), "{both}");
}
