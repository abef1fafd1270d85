//! Process-level tests of the kernel: how the process ends, the boot sequence
//! and LAUNCH lines, the file logger and its SIGHUP reopen, and a service
//! whose script is missing.

mod common;
mod live;

use common::{Node, Run};
use std::path::Path;
use std::time::{Duration, Instant};

fn run_until_done(node: Node, tag: &str) -> Run {
    let cfg = live::write_config(&node.config_text(), tag);
    live::run_until(
        &[&cfg],
        &[],
        &format!("{tag}: done"),
        Duration::from_secs(20),
    )
}

#[test]
fn abort_ends_the_process_with_status_0() {
    let t0 = Instant::now();
    let run = Node::new("t_abort").timeout(Duration::from_secs(10)).run();
    run.expect("t_abort: aborting");
    assert_eq!(run.status, Some(0), "{}", run.dump());
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "abort took {:?}",
        t0.elapsed()
    );
}

#[test]
fn process_ends_when_the_last_service_is_gone() {
    // t_killall kills every other service, the logger included, then exits.
    let run = Node::new("t_killall")
        .timeout(Duration::from_secs(10))
        .run();
    run.expect("t_killall: killing");
    assert_eq!(run.status, Some(0), "{}", run.dump());
}

#[test]
fn boot_sequence_and_launch_lines() {
    let run = run_until_done(Node::new("t_launch"), "t_launch");
    // harbor 0: the handles of the system services are fixed
    run.expect_order(&[
        "[:00000002] LAUNCH snlua bootstrap",
        "[:00000003] LAUNCH snlua launcher",
        "[:00000004] LAUNCH snlua cdummy",
        "[:00000005] LAUNCH harbor 0 4",
        "[:00000006] LAUNCH snlua datacenterd",
        "[:00000007] LAUNCH snlua service_mgr",
        "[:00000008] LAUNCH snlua t_launch",
        // LAUNCH is logged by the new service, before its own lines
        "[:00000009] LAUNCH snlua t_launch child arg1 2 three",
        // arguments arrive as strings
        "[:00000009] t_launch: child args string child arg1 2 three",
        "[:00000008] t_launch: child :00000009",
    ]);
}

#[test]
fn missing_script_fails_newservice_and_logs_the_loader_error() {
    let run = run_until_done(Node::new("t_launch"), "t_launch");
    let launched = run.expect("LAUNCH snlua t_launch_no_such_script");
    let h = &run.lines[launched][..11];
    // the loader's error lists every path it tried
    let err = run.lines[launched..]
        .iter()
        .position(|l| l.starts_with(h) && l.contains("lua loader error : "))
        .map(|i| i + launched)
        .unwrap_or_else(|| panic!("no loader error:\n{}", run.dump()));
    let text = run.lines[err..].join("\n");
    assert!(
        text.contains("cannot open") && text.contains("t_launch_no_such_script.lua"),
        "{text}"
    );
    run.expect(&format!("{h} KILL self"));
    run.expect("[:00000008] t_launch: missing script false call failed");
    run.expect("[:00000008] t_launch: done");
}

/// `dd/mm/yy HH:MM:SS.cc [:xxxxxxxx] text`
fn is_file_log_line(l: &str) -> bool {
    let b = l.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    l.len() > 33
        && digits(0..2)
        && b[2] == b'/'
        && digits(3..5)
        && b[5] == b'/'
        && digits(6..8)
        && b[8] == b' '
        && digits(9..11)
        && b[11] == b':'
        && digits(12..14)
        && b[14] == b':'
        && digits(15..17)
        && b[17] == b'.'
        && digits(18..20)
        && &l[20..23] == " [:"
        && l[23..31]
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        && &l[31..33] == "] "
}

fn wait_file_contains(path: &Path, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn file_logger_format_and_sighup_reopen() {
    let dir = std::env::temp_dir().join(format!("skynet-t-logfile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("node.log");
    let rotated = dir.join("node.log.1");
    let marker = dir.join("rotated");
    let node = Node::new("t_logfile")
        .config("logger", &format!("{:?}", log.display().to_string()))
        .config(
            "t_logfile_marker",
            &format!("{:?}", marker.display().to_string()),
        );
    let cfg = live::write_config(&node.config_text(), "t_logfile");
    let p = live::Live::spawn(&[&cfg], &[]);
    let before = wait_file_contains(&log, "t_logfile: before rotation", Duration::from_secs(15));
    let mut reopened = false;
    if before {
        std::fs::rename(&log, &rotated).unwrap();
        // SAFETY: kill(2) takes plain integers and touches no memory of ours;
        // the pid is the node this test spawned and has not reaped.
        unsafe { libc::kill(p.pid() as i32, libc::SIGHUP) };
        // the logger reopens (creates) the file at the configured path
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !log.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        reopened = log.exists();
        std::fs::write(&marker, "go").unwrap();
    }
    let done = wait_file_contains(&log, "t_logfile: done", Duration::from_secs(10));
    let run = p.finish(Duration::from_secs(1));
    let old = std::fs::read_to_string(&rotated).unwrap_or_default();
    let new = std::fs::read_to_string(&log).unwrap_or_default();
    let show = format!(
        "--- rotated ---\n{old}--- new ---\n{new}--- stdout ---\n{}",
        run.dump()
    );
    assert!(before, "no line in the log file\n{show}");
    assert!(reopened, "SIGHUP did not reopen the log file\n{show}");
    assert!(done, "{show}");
    // nothing goes to stdout
    assert!(!run.lines.iter().any(|l| l.starts_with("[:")), "{show}");
    for l in old.lines().chain(new.lines()).filter(|l| l.contains(" [:")) {
        assert!(is_file_log_line(l), "bad log line {l:?}\n{show}");
    }
    assert!(
        old.lines()
            .any(|l| l.ends_with(" [:00000002] LAUNCH snlua bootstrap")),
        "{show}"
    );
    assert!(
        old.lines()
            .any(|l| l.ends_with(" [:00000008] t_logfile: before rotation")),
        "{show}"
    );
    assert!(!old.contains("after rotation"), "{show}");
    assert!(!new.contains("before rotation"), "{show}");
    assert!(
        new.lines()
            .any(|l| l.ends_with(" [:00000008] t_logfile: after rotation")),
        "{show}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failed_native_launch_returns_nil() {
    let run = run_until_done(Node::new("t_texts"), "t_texts");
    run.expect("[:00000008] t_texts: bad logger nil");
    run.expect("[:00000008] t_texts: unknown module nil");
    // the half-born handle reports the failure
    run.expect("[:00000009] can't open log file /surely/not/a/dir/x.log");
    assert!(
        run.lines
            .iter()
            .any(|l| l.starts_with("[:00000009] ") && l.contains("FAILED")),
        "{}",
        run.dump()
    );
    // the overload warning (its exact text is checked below)
    run.expect("May overload, message queue length = ");
}

#[test]
fn log_texts_follow_skynet_1_8() {
    let run = run_until_done(Node::new("t_texts"), "t_texts");
    run.expect("[:00000009] error: launch logger FAILED");
    run.expect("[:0000000a] error: May overload, message queue length = ");
}

#[test]
fn kernel_text_commands() {
    let logdir = std::env::temp_dir().join(format!("skynet-logpath-{}", std::process::id()));
    std::fs::create_dir_all(&logdir).unwrap();
    let run = common::Node::new("t_commands")
        .config("logpath", &format!("{:?}", logdir.display().to_string()))
        .timeout(std::time::Duration::from_secs(20))
        .run();
    assert_eq!(run.status, Some(0), "{}", run.dump());
    for line in [
        "t_commands: REG true",
        "t_commands: REG.name tcmd",
        "t_commands: QUERY true",
        "t_commands: QUERY missing nil",
        "t_commands: NAME tcmd2",
        "t_commands: localname true",
        "t_commands: STARTTIME true",
        "t_commands: MONITOR unset nil",
        "t_commands: LOGON logged true",
        "recv a signal 1",
        "Current Memory",
        "recv a signal 0",
        "t_commands: spin broken false",
        "signal 0",
        "t_commands: spin answered stopped",
    ] {
        run.expect(line);
    }
    run.expect("Open log file");
    run.expect("Close log file");
    let _ = std::fs::remove_dir_all(&logdir);
}
