//! Process tests of the less used part of the skynet API, which a service
//! makes the first time it needs it (see "on demand" in lualib/skynet.lua):
//! when that happens, tracing, task listings, and the handlers of unknown
//! messages. The start service is test/t_ondemand.lua.

mod common;
mod live;

use common::{Node, Run};
use std::time::Duration;

/// Handles of the services launched with this exact command line, in order.
fn launched(run: &Run, command: &str) -> Vec<u32> {
    run.lines
        .iter()
        .filter(|l| l.len() > 12 && &l[12..] == command)
        .map(|l| u32::from_str_radix(&l[2..10], 16).unwrap())
        .collect()
}

/// What service `h` logged for trace `tag`, in order: the text after the
/// timestamp, without the call site (`call : file:line ...` gives `call`).
fn trace_events(run: &Run, h: u32, tag: &str) -> Vec<String> {
    let prefix = format!("[:{h:08x}] <TRACE {tag}> ");
    run.lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| {
            let text = rest.split_once(' ').map_or("", |(_, t)| t);
            text.split(" : ").next().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn on_demand_api_tracing_tasks_and_unknown_messages() {
    let run = live::run_to_done(&Node::new("t_ondemand"), Duration::from_secs(20));
    let t = "t_ondemand";
    run.said_exactly(
        t,
        &[
            "at start false true",
            "after a field read true true",
            "child false",
            "child after a debug message true",
            "tag before trace nil",
            "tag true",
            "traced call true true",
            "other thread tag nil",
            "tracecall true given-tag",
            "traceproto true true",
            "traceproto true again true",
            "traceproto false false",
            "tasks 0",
            "tasks with sleepers 3",
            "session of a thread integer true",
            "unknown session No session",
            "init true",
            "group 3 true",
            "listing 4 1",
            "untraced timer timer (not fired yet)",
            "timer type table true",
            "tasks after kills 0",
            "default handlers function function",
            "unknown request 0 3 hello",
            "unknown response 4242 late",
            "done",
        ],
    );

    let main = launched(&run, "LAUNCH snlua t_ondemand")[0];
    let plain = launched(&run, "LAUNCH snlua t_ondemand plain");
    let traced = launched(&run, "LAUNCH snlua t_ondemand traced")[0];
    assert_eq!(plain.len(), 2, "{}", run.dump());
    let (first, second) = (format!(":{main:08x}-1"), format!(":{main:08x}-2"));
    assert_eq!(
        trace_events(&run, main, &first),
        ["trace probe", "call", "resume", "end"],
        "{}",
        run.dump()
    );
    assert_eq!(
        trace_events(&run, plain[1], &first),
        ["request", "response", "end"],
        "{}",
        run.dump()
    );
    assert_eq!(
        trace_events(&run, main, "given-tag"),
        ["tracecall begin", "tracecall end"],
        "{}",
        run.dump()
    );
    assert_eq!(
        trace_events(&run, plain[1], "given-tag"),
        ["request", "response", "end"],
        "{}",
        run.dump()
    );
    // traceproto("lua", true): the callee starts a trace of its own per request
    for n in 1..=3 {
        assert_eq!(
            trace_events(&run, traced, &format!(":{traced:08x}-{n}")),
            ["trace", "response", "end"],
            "{}",
            run.dump()
        );
    }
    // traceproto("lua", false): the caller's tag is dropped by the callee
    assert_eq!(
        trace_events(&run, main, &second),
        ["trace", "call", "resume", "end"],
        "{}",
        run.dump()
    );
    assert!(
        trace_events(&run, traced, &second).is_empty(),
        "{}",
        run.dump()
    );
    assert!(
        trace_events(&run, plain[0], &first).is_empty(),
        "{}",
        run.dump()
    );
}
