//! Process-level tests of the Lua layer: each test starts a real node whose
//! `start` service is one of the `test/t_*.lua` services, and checks what it
//! logs. Every service prints lines `<name>: ...`, ends with `<name>: done`
//! and then calls `skynet.abort()`.
//!
//! The runner stops reading once `<name>: done` has been printed (plus a short
//! grace period for the process to exit), so these tests do not depend on the
//! process ending by itself; that is checked in `kernel.rs`.

mod common;
mod live;

use common::{Node, Run};
use std::time::Duration;

/// Runs `node` until its start service prints `<start>: done` (or `timeout`).
fn run_node(node: Node, timeout: Duration) -> Run {
    live::run_to_done(&node, timeout)
}

fn run(start: &str) -> Run {
    run_node(Node::new(start), Duration::from_secs(20))
}

/// The service ran to its end.
fn finished(run: &Run, tag: &str) {
    run.says(tag, "done");
    assert!(!run.has(&format!("{tag}: FAIL")), "{}", run.dump());
}

/// No log line contains `needle`.
fn never(run: &Run, needle: &str) {
    assert!(
        !run.has(needle),
        "unexpected {needle:?} in output:\n{}",
        run.dump()
    );
}

/// Handle of the service whose line contains `needle` (from its `[:xxxxxxxx]` prefix).
fn handle_of(run: &Run, needle: &str) -> u32 {
    let line = &run.lines[run.expect(needle)];
    u32::from_str_radix(&line[2..10], 16).unwrap()
}

/// Lines (without prefix) from handle `h`.
fn lines_from(run: &Run, h: u32) -> Vec<String> {
    let p = format!("[:{h:08x}] ");
    run.lines
        .iter()
        .filter_map(|l| l.strip_prefix(&p).map(str::to_string))
        .collect()
}

// ---------------------------------------------------------------- ordering

#[test]
fn forks_timers_wakeups_and_message_order() {
    let run = run("t_order");
    let t = "t_order";
    finished(&run, t);
    // forks run FIFO once the handler suspends; a fork's fork goes to the back
    run.says(t, "fork order main f1 f2xy f3 f4 f3.child main.resumed");
    // timeout(0) is queued before our own yield; timers fire by deadline
    run.says(t, "timer order main fork t0 yielded t10 t20 t30 slept");
    run.says(
        t,
        "sleep 10: now delta >= 10 true hpc delta >= 100ms true not too late true",
    );
    run.says(t, "timeout 5 fired after >= 50ms true");
    run.says(t, "yield is quick true");
    run.says(
        t,
        "time tracks the clock true now is centiseconds since boot true",
    );
    run.says(t, "starttime true");
    run.says(t, "wakeup sleeping true");
    run.says(t, "wakeup again (already queued) true");
    run.says(t, "woken early true");
    // the woken thread runs only after the waker suspends, sleep gives "BREAK"
    run.says(t, "wakeup order wakeup after.wakeup sleep=BREAK yielded");
    run.says(t, "wakeup not sleeping nil nil");
    run.says(t, "token sleep BREAK");
    run.says(t, "wait order wait wakeup after.wakeup waited.W waited");
    // 10k sends from one service to another arrive in order
    run.says(t, "sink 10000 in order");
    // yield goes through the queue: messages already queued run first
    run.says_in_a_row(t, &["yielder a1", "yielder b", "yielder b", "yielder a2"]);
    // the early-woken sleep's timer fires later and is dropped silently
    never(&run, "Unknown session");
    never(&run, "init service failed");
}

// ---------------------------------------------------------------- call / ret

#[test]
fn call_ret_response_and_errors() {
    let run = run("t_call");
    let t = "t_call";
    finished(&run, t);
    let main = handle_of(&run, "t_call: echo");
    let callee = handle_of(&run, "LAUNCH snlua t_call callee");
    run.says(t, "echo 1 two true nil 5");
    run.says(t, "select n 2");
    run.says(t, "ret of a call true");
    run.says(t, "empty reply 0");
    run.says(t, "raise false call failed");
    // the handler error is logged by the callee, in skynet's format
    let head = format!("lua call [{main:x} to :{callee:x} : ");
    let err = run
        .lines
        .iter()
        .find(|l| l.contains(&head))
        .unwrap_or_else(|| panic!("no {head:?} line:\n{}", run.dump()));
    assert!(err.starts_with(&format!("[:{callee:08x}] ")), "{err}");
    assert!(
        err.contains(" msgsz = ") && err.contains("] error : \u{1b}[31m"),
        "{err}"
    );
    assert!(err.contains("boom in handler"), "{err}");
    run.expect("\u{1b}[0m");
    run.says(t, "callee still serves alive");
    run.says(t, "dead handle false call to invalid address :00ffff00");
    run.says(
        t,
        "unknown name false call to invalid address .no_such_name",
    );
    run.says(t, "send to dead handle");
    run.says(t, "context true true");
    run.says(t, &format!("context of a send 0 :{main:08x}"));
    run.says(t, "ret of a send false");
    // a forgotten answer is reported once; ignoreret is silent
    let forgot: Vec<_> = lines_from(&run, callee)
        .into_iter()
        .filter(|l| l.starts_with("Maybe forgot response session "))
        .collect();
    assert_eq!(forgot.len(), 1, "{forgot:?}\n{}", run.dump());
    let f = &forgot[0];
    assert!(
        f.contains(&format!(" from :{main:08x} : @")) && f.contains("test/t_call.lua:"),
        "{f}"
    );
    run.says(t, "forget answered nil ignore answered nil");
    // deferred responses
    run.says(t, "before flush nil nil");
    run.says_in_a_row(t, &["deferred, pending true", "deferred, pending true"]);
    let twice: Vec<_> = run
        .said(t)
        .into_iter()
        .filter(|l| l.starts_with("answer twice false "))
        .collect();
    assert_eq!(twice.len(), 2, "{}", run.dump());
    assert!(
        twice
            .iter()
            .all(|l| l.ends_with("Can't response more than once")),
        "{twice:?}"
    );
    assert_eq!(
        run.said(t)
            .iter()
            .filter(|l| *l == "pending after answer false")
            .count(),
        2
    );
    run.says(t, "deferred 1 true later 42");
    run.says(t, "deferred 2 false call failed");
    // raw forms and redirect
    run.says(t, "rawcall userdata true raw x 7");
    run.says(t, "rawsend 0");
    run.says(t, "redirect via relay");
}

// ---------------------------------------------------------------- exit / kill

#[test]
fn exit_kill_term_killthread_and_select() {
    let run = run("t_exit");
    let t = "t_exit";
    finished(&run, t);
    // exit: suspended requests and deferred responses fail, callees forget us
    run.says(t, "keeper pending before true");
    run.says(t, "pending hold call failed");
    run.says(t, "pending deferred call failed");
    run.says(t, "keeper pending after false");
    let w = handle_of(&run, "LAUNCH snlua t_exit worker");
    run.says(
        t,
        &format!("call after exit call to invalid address :{w:08x}"),
    );
    // exit unwinds the suspended handler: its to-be-closed variable runs first
    let from_w = lines_from(&run, w);
    let closed = from_w.iter().position(|l| l == "t_exit: hold closed");
    let gone = from_w.iter().position(|l| l == "KILL self");
    assert!(
        closed.is_some() && gone.is_some() && closed < gone,
        "{}",
        run.dump()
    );
    // a kill does not run Lua code: that is the only "hold closed"
    assert_eq!(
        run.lines
            .iter()
            .filter(|l| l.contains("hold closed"))
            .count(),
        1,
        "{}",
        run.dump()
    );
    // launch outcomes
    run.says(t, "newservice exit in start nil");
    let failinit = handle_of(&run, "LAUNCH snlua t_exit failinit");
    assert!(
        lines_from(&run, failinit)
            .iter()
            .any(|l| l.starts_with("init service failed: ") && l.contains("start refuses")),
        "{}",
        run.dump()
    );
    run.says(t, "newservice error in start false call failed");
    // kill: the service is gone at once, its suspended callers are never answered
    let main = handle_of(&run, "t_exit: keeper pending before");
    let killed = run.said(t).into_iter().find_map(|l| {
        l.strip_prefix("call after kill call to invalid address :")
            .map(str::to_string)
    });
    let killed = u32::from_str_radix(&killed.expect("call after kill line"), 16).unwrap();
    assert!(
        lines_from(&run, main).contains(&format!("KILL :{killed:x}")),
        "{}",
        run.dump()
    );
    run.says(t, "caller of a killed service answered false");
    // requests still queued in a killed service are answered with errors
    run.says(t, "queued call to a killed service call failed");
    // term fails the pending call without killing
    run.says_in_a_row(
        t,
        &[
            "before term nil",
            "after term call failed",
            "term does not kill alive",
        ],
    );
    // killthread
    run.says(t, "killthread of a fork not started true");
    run.says(t, "killthread sleeping true");
    run.says(t, "killthread calling true");
    run.says(t, "killthread unknown nil");
    run.says(t, "flags nil nil nil");
    // select: completion order, then error / invalid / timeout entries
    run.says(t, "select order P1/1 P2/2 P3/3 P4/4 P5/5");
    run.says(
        t,
        "select with timeout invalid:nobody error:fail resp:fast:n=1 timeout true",
    );
    run.says(t, "select break first");
    // replies to cancelled calls (killthread, select timeout, select break) are dropped silently
    never(&run, "Unknown session");
    never(&run, "Response message");
}

// ---------------------------------------------------------------- memory

#[test]
fn memlimit_fails_allocations_and_the_service_goes_on() {
    let run = run("t_memlimit");
    let t = "t_memlimit";
    finished(&run, t);
    run.expect_order(&[
        "[:00000008] Set memory limit to 2.00 M",
        "t_memlimit: memlimit twice false",
    ]);
    run.says(t, "big allocation false not enough memory");
    run.says(t, "after 100 123");
    run.says(t, "big string false not enough memory");
}

#[test]
fn memory_warning_past_32_mib() {
    let run = run("t_memwarn");
    let t = "t_memwarn";
    finished(&run, t);
    let warnings: Vec<String> = lines_from(&run, 8)
        .into_iter()
        .filter(|l| l.starts_with("Memory warning "))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.dump());
    let mb: f64 = warnings[0]
        .strip_prefix("Memory warning ")
        .and_then(|r| r.strip_suffix(" M"))
        .unwrap_or_else(|| panic!("{}", warnings[0]))
        .parse()
        .unwrap();
    assert!((32.0..48.0).contains(&mb), "{}", warnings[0]);
    assert!(
        warnings[0]
            .split(' ')
            .nth(2)
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .len()
            == 2,
        "%.2f: {}",
        warnings[0]
    );
    run.expect_order(&["Memory warning", "t_memwarn: allocated 41943040"]);
}

#[test]
fn small_blocks_keep_contents_and_count_across_arena_and_malloc() {
    let run = run("t_smallblocks");
    let t = "t_smallblocks";
    finished(&run, t);
    run.says(t, "strings true 3440");
    run.says(t, "tables true");
    run.says(t, "after reuse true true true");
    run.says(t, "shrunk true");
    // The allocator's count (logged by SIGNAL 1) is Lua's own count.
    let lua = run
        .said(t)
        .into_iter()
        .find_map(|l| l.strip_prefix("lua count ").map(str::to_string))
        .unwrap_or_else(|| panic!("{}", run.dump()));
    let ours = lines_from(&run, 8)
        .into_iter()
        .find_map(|l| l.strip_prefix("Current Memory ").map(str::to_string))
        .unwrap_or_else(|| panic!("{}", run.dump()));
    assert_eq!(ours, lua, "{}", run.dump());
}

// ---------------------------------------------------------------- monitor, overload, STAT

#[test]
fn endless_loop_is_reported() {
    // The monitor checks every 5 s: this test takes 5-10 s.
    let run = run_node(Node::new("t_endless"), Duration::from_secs(30));
    let t = "t_endless";
    finished(&run, t);
    run.says(t, "endless before false 0");
    let line = &run.lines[run.expect("maybe in an endless loop")];
    assert!(
        line.starts_with("[:00000000] error: A message from [ :")
            && line.contains(" ] to [ :00000008 ] maybe in an endless loop (version = "),
        "{line}"
    );
    run.says(t, "flagged true after 5s true");
    // true once, then reset
    run.says(t, "endless again false 0");
    run.says(t, "cpu while busy true");
    assert_eq!(
        run.lines
            .iter()
            .filter(|l| l.contains("maybe in an endless loop"))
            .count(),
        1,
        "{}",
        run.dump()
    );
}

#[test]
fn overload_warning_and_stat() {
    let run = run("t_overload");
    let t = "t_overload";
    finished(&run, t);
    let busy = handle_of(&run, "LAUNCH snlua t_overload busy");
    let lens: Vec<usize> = lines_from(&run, busy)
        .iter()
        // skynet 1.8 writes "error: May overload ..." (see kernel.rs)
        .filter_map(|l| {
            l.trim_start_matches("error: ")
                .strip_prefix("May overload, message queue length = ")
                .map(|n| n.parse().unwrap())
        })
        .collect();
    assert!(
        !lens.is_empty() && lens.iter().all(|n| *n > 1024 && *n <= 3001),
        "{lens:?}\n{}",
        run.dump()
    );
    // the threshold doubles after each warning
    assert!(lens.len() <= 2, "{lens:?}");
    run.says(t, "mqlen while blocked true true");
    run.says(
        t,
        "handled 3000 messages counted 3002 cpu float true mqlen 0",
    );
    run.says(t, "own stat integer true 0");
}

#[test]
fn stat_of_an_unknown_key_is_zero() {
    let run = run("t_stat");
    let t = "t_stat";
    finished(&run, t);
    run.says(t, "unknown true 0");
    run.says(t, "message integer mqlen 0");
}

// ---------------------------------------------------------------- system services

#[test]
fn launcher_list_mem_stat_gc_kill() {
    let run = run("t_launcher");
    let t = "t_launcher";
    finished(&run, t);
    let list: Vec<String> = run
        .said(t)
        .into_iter()
        .filter(|l| l.starts_with("list "))
        .collect();
    assert_eq!(
        list,
        [
            "list :00000004 snlua cdummy",
            "list :00000006 snlua datacenterd",
            "list :00000007 snlua service_mgr",
            "list :00000008 snlua t_launcher",
            "list :00000009 snlua t_launcher child a b",
        ],
        "{}",
        run.dump()
    );
    run.says(t, "self listed snlua t_launcher");
    run.says(t, "mem entries true shape true");
    run.says(t, "mem child (snlua t_launcher child a b)");
    run.says(t, "stat child integer integer number integer true");
    run.says(t, "stat self task 1");
    run.says(t, "gc returns mem string");
    // every listed service ran the debug GC command
    for h in [4u32, 6, 7, 8, 9] {
        assert!(
            lines_from(&run, h)
                .iter()
                .any(|l| l.starts_with("GC ") && l.contains(" Kb -> ") && l.ends_with(" sec")),
            "no GC line from :{h:08x}\n{}",
            run.dump()
        );
    }
    run.says(t, "mute mem TIMEOUT (snlua t_launcher mute) waited true");
    run.says(t, "mute stat TIMEOUT");
    run.says(t, "unknown command Unknown command");
    run.says(t, "kill snlua t_launcher mute");
    let mute = handle_of(&run, "LAUNCH snlua t_launcher mute");
    assert!(
        lines_from(&run, 3).contains(&format!("KILL :{mute:x}")),
        "{}",
        run.dump()
    );
    run.says(t, "listed after kill nil");
}

#[test]
fn service_mgr_unique_and_query() {
    let run = run("t_svcmgr");
    let t = "t_svcmgr";
    finished(&run, t);
    // three concurrent callers, one launch
    assert_eq!(
        run.lines
            .iter()
            .filter(|l| l.contains("LAUNCH snlua t_svcmgr uniq "))
            .count(),
        1,
        "{}",
        run.dump()
    );
    run.says(t, "concurrent true true true");
    run.says(t, "again true true");
    run.says(t, "answers uniq");
    // the query waits until the service exists
    run.says_in_a_row(t, &["global query waiting true"]);
    assert_eq!(
        run.lines
            .iter()
            .filter(|l| l.contains("LAUNCH snlua t_svcmgr global"))
            .count(),
        1
    );
    run.says(t, "global true global");
    run.says(t, "global query returned true");
    // a service that cannot start: uniqueservice and queryservice raise
    run.expect("lua loader error : ");
    run.says(t, "missing false");
    run.says(t, "query missing false");
    run.says(t, "list true true true");
}

#[test]
fn datacenter_set_get_wait() {
    let run = run("t_datacenter");
    let t = "t_datacenter";
    finished(&run, t);
    never(&run, "attempt to index");
    run.says_in_a_row(
        t,
        &[
            "set new nil",
            "get world",
            "set old world",
            "deep get 42 table table",
            "missing nil nil",
            // a path below a missing branch or a leaf is nil, not a crash
            "below missing true nil",
            "below missing top true nil",
            "below leaf true nil",
            "still serving 42",
            "wait existing 42",
            // the waiters return after the set, in the order they waited
            "wait order set waited:value waited2:value",
            // a waiter on a branch of the key being set fails
            "branch wait set branch:false:call failed 1",
            "cleared nil",
        ],
    );
}

#[test]
fn skynet_service_new_query_close() {
    let run = run("t_service");
    let t = "t_service";
    finished(&run, t);
    assert_eq!(
        run.lines
            .iter()
            .filter(|l| l.contains("LAUNCH snlua service_provider"))
            .count(),
        1
    );
    assert_eq!(
        run.lines
            .iter()
            .filter(|l| l.contains("LAUNCH snlua service_cell counter"))
            .count(),
        1,
        "{}",
        run.dump()
    );
    run.says(t, "same address true query true");
    run.says(t, "calls 11 12 12");
    run.says(t, "function with upvalues false");
    run.says(t, "body error false");
    run.says(t, "close true false");
}

// ---------------------------------------------------------------- libraries

#[test]
fn queue_critical_sections_and_mqueue() {
    let run = run("t_queue");
    let t = "t_queue";
    finished(&run, t);
    run.says(t, "cs order in1 free out1 in2 out2 in3 out3");
    run.says(t, "nested 3 inner");
    run.says(t, "error false true");
    run.says(t, "usable after error yes");
    // mqueue handles one message at a time, in arrival order
    let steps: Vec<String> = run
        .said(t)
        .into_iter()
        .filter(|l| l.starts_with("mq start") || l.starts_with("mq end"))
        .collect();
    assert_eq!(
        steps,
        [
            "mq start 1",
            "mq end 1",
            "mq start 2",
            "mq end 2",
            "mq start 3",
            "mq end 3",
            "mq start 4",
            "mq end 4"
        ],
        "{}",
        run.dump()
    );
    run.says(t, "mq results 10 20 30");
    run.says(t, "mq error false true");
    run.says(t, "mq note sent size 0");
    run.says(t, "mq after error 40");
}

#[test]
fn skynet_coroutine_blocked_status() {
    let run = run("t_coroutine");
    let t = "t_coroutine";
    finished(&run, t);
    run.says_in_a_row(t,
        &[
            "status new suspended",
            "inside, thread is main true false",
            "resume 1 true 2",
            "status suspended thread of c true false",
            "resume 2 true 20",
            "while sleeping blocked false cannot resume a skynet coroutine suspend by skynet framework",
            "resume 3 true end last",
            "status end dead",
            "resume dead false cannot resume dead coroutine",
            "wrap 1 2 3",
            "error false true dead",
            "plain coroutine false cannot resume none skynet coroutine",
        ],
    );
}

#[test]
fn skynet_require_init_order() {
    let run = run("t_require");
    let t = "t_require";
    finished(&run, t);
    run.says_in_a_row(
        t,
        &[
            "mod body",
            "main chunk mod",
            "main init 1",
            "mod init",
            "main init 2",
            "start",
            // required by two threads at once: loaded once, the other waits
            "slow body begin",
            "slow body end",
            "slow init",
            "fork got 1 slow",
            "fork got 2 slow",
            "same module true true",
            "require again true",
            "cycle false true",
            "missing false true",
        ],
    );
}

#[test]
fn getenv_and_setenv() {
    let node = Node::new("t_env")
        .config(
            "t_env_keys",
            "\"thread harbor start standalone bootstrap num float flag text\"",
        )
        .config("num", "42")
        .config("float", "1.5")
        .config("flag", "true")
        .config("text", "\"a b\"");
    let run = run_node(node, Duration::from_secs(20));
    let t = "t_env";
    finished(&run, t);
    run.says_in_a_row(
        t,
        &[
            "getenv thread string 2",
            "getenv harbor string 0",
            "getenv start string t_env",
            // set by bootstrap on a single node
            "getenv standalone string true",
            // defaults are written back
            "getenv bootstrap string snlua bootstrap",
            "getenv num string 42",
            "getenv float string 1.5",
            "getenv flag string true",
            "getenv text string a b",
            "missing nil",
            "setenv fresh value",
            "setenv again false true fresh value",
            "setenv config key false true 2",
        ],
    );
}

#[test]
fn names_and_address_formats() {
    let run = run("t_names");
    let t = "t_names";
    finished(&run, t);
    run.says_in_a_row(
        t,
        &[
            "self integer :00000008 true",
            "REG :8 true",
            "address of a string .name nil",
            "harbor 0 false",
            "harbor of a remote handle 3 true",
            "launcher 3 :3",
            "service true cslave true",
            "unknown name nil",
            "register true",
        ],
    );
    run.says(t, "name true");
    run.says(t, "duplicate name true");
    run.says(t, "call by name true");
    run.says(t, "call by :hex true");
    run.says(t, "LAUNCH result true true true");
    run.says(t, "skynet.launch true");
    run.says(t, "name dies with the handle nil");
    run.says_in_a_row(
        t,
        &[
            "queryname true",
            "call global name global got 1",
            "queryname waits true",
            "unregistered global before term nil",
            "after term false call failed",
        ],
    );
}

#[test]
fn exit_monitor_notifications() {
    let run = run("t_monitor");
    let t = "t_monitor";
    finished(&run, t);
    run.says(t, "no monitor nil");
    run.says(t, "monitor set true");
    run.says(t, "query true");
    run.says(t, "children :0000000a :0000000b");
    let watch = handle_of(&run, "LAUNCH snlua t_monitor_watch");
    let heard: Vec<String> = lines_from(&run, watch)
        .into_iter()
        .filter(|l| l.starts_with("t_monitor: exit of"))
        .collect();
    // a kill and a voluntary exit, each notified once, from the dying handle
    assert_eq!(
        heard,
        [
            "t_monitor: exit of :0000000a session 0 size 0",
            "t_monitor: exit of :0000000b session 0 size 0"
        ],
        "{}",
        run.dump()
    );
}

#[test]
fn debug_protocol_commands() {
    let run = run("t_debug");
    let t = "t_debug";
    finished(&run, t);
    run.says_in_a_row(
        t,
        &[
            "ping 0",
            "mem float true",
            "stat integer integer number true",
            "info world x,y",
            "support true false",
            "task 1 true true",
            "stat task 1",
        ],
    );
    let target = handle_of(&run, "LAUNCH snlua t_debug target");
    let from_target = lines_from(&run, target);
    assert!(
        from_target.iter().any(|l| l.starts_with("Kill thread: ")),
        "{}",
        run.dump()
    );
    assert!(
        from_target
            .iter()
            .any(|l| l.starts_with("GC ") && l.contains(" Kb -> ")),
        "{}",
        run.dump()
    );
    run.says(t, "killtask false call failed");
    assert!(
        from_target.contains(&"Kill thread: nowhere : Not found".to_string()),
        "{}",
        run.dump()
    );
    run.says(t, "killtask unknown Not found");
    run.says(t, "unknown command false call failed");
    assert!(
        from_target.contains(&"KILL self".to_string()),
        "{}",
        run.dump()
    );
    run.says(t, "after EXIT false true");
}

#[test]
fn console_starts_services_named_on_stdin() {
    let run = Node::new("t_console")
        .stdin("\nt_console child hello\n")
        .timeout(Duration::from_secs(20))
        .run();
    assert_eq!(run.status, Some(0), "{}", run.dump());
    run.says("t_console", "console started");
    run.says("t_console", "child started with hello");
    run.expect("LAUNCH snlua t_console child hello");
}

#[test]
fn shared_prototypes_behave_alike_in_every_service() {
    let run = run("t_shared");
    let t = "t_shared";
    finished(&run, t);
    run.says(t, "main 1 1");
    // by constant, by computed key, through a shared function, in a table the
    // module built, its constant key, a plain constant, a weak-keyed table
    let alike = "1 1 1 3 3 plain value true";
    // held its own copy of "zz_shared_key_42" before the module was shared
    run.says(t, &format!("early {alike}"));
    run.says(t, &format!("late {alike}"));
    run.says(t, "many 20");
}

#[test]
fn loader_sets_service_path_for_files_and_folders() {
    let node = Node::new("t_loader").config(
        "luaservice",
        "root..\"service/?.lua;\"..root..\"test/?.lua;\"..root..\"test/?/main.lua\"",
    );
    let run = run_node(node, Duration::from_secs(20));
    let t = "t_loader";
    finished(&run, t);
    run.says(t, "file t_loader test/");
    run.says(
        t,
        "dir t_loader_dir test/t_loader_dir/ helper from the service's folder",
    );
}
