//! debug_console over real TCP connections: a node runs `test/t_dconsole.lua`
//! (debug_console on 127.0.0.1 port 0 and a target service `.target`); the
//! test types skynet's commands as a telnet client would, and sends HTTP GET
//! and POST requests, checking each reply's shape.

mod common;
mod live;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Console {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// One command's output lines and how it ended (`true`: `<CMD OK>`).
struct Reply {
    lines: Vec<String>,
    ok: bool,
}

impl Reply {
    fn has(&self, prefix: &str) -> bool {
        self.lines.iter().any(|l| l.starts_with(prefix))
    }
    fn dump(&self) -> String {
        format!("{:#?} ok={}", self.lines, self.ok)
    }
}

impl Console {
    fn connect(port: u16) -> Console {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the console");
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut c = Console {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        };
        assert_eq!(c.line(), "Welcome to skynet console");
        c
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self
            .reader
            .read_line(&mut l)
            .expect("read from the console");
        assert!(n > 0, "console closed the connection");
        l.trim_end_matches('\n').to_string()
    }

    fn cmd(&mut self, text: &str) -> Reply {
        // telnet ends lines with \r\n
        self.writer
            .write_all(format!("{text}\r\n").as_bytes())
            .unwrap();
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            match l.as_str() {
                "<CMD OK>" => return Reply { lines, ok: true },
                "<CMD Error>" => return Reply { lines, ok: false },
                _ => lines.push(l),
            }
        }
    }

    fn ok(&mut self, text: &str) -> Reply {
        let r = self.cmd(text);
        assert!(r.ok, "{text}: {}", r.dump());
        r
    }

    /// Asserts `text` fails with a reason containing `reason`.
    fn error(&mut self, text: &str, reason: &str) {
        let r = self.cmd(text);
        assert!(!r.ok, "{text} should fail: {}", r.dump());
        assert!(
            r.lines.len() == 1 && r.lines[0].contains(reason),
            "{text}: want the reason {reason:?}, got {}",
            r.dump()
        );
    }
}

/// Everything an HTTP request gets back (the console closes after it).
fn http(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn console_commands_over_telnet_and_http() {
    let node = common::Node::new("t_dconsole").config(
        "logpath",
        &format!("\"{}\"", std::env::temp_dir().display()),
    );
    let cfg = live::write_config(&node.config_text(), "dconsole");
    let mut p = live::Live::spawn(&[&cfg], &[]);
    assert!(
        p.wait_for("t_dconsole: ready", Duration::from_secs(20)),
        "{:#?}",
        p.lines
    );
    let start = p
        .lines
        .iter()
        .find_map(|l| l.split("Start debug console at 127.0.0.1:").nth(1))
        .expect("console address logged");
    let port: u16 = start.trim().parse().unwrap();
    let target = p
        .lines
        .iter()
        .find_map(|l| l.split("t_dconsole: ready ").nth(1))
        .unwrap()
        .trim()
        .to_string();
    let hex = target.trim_start_matches(':').to_string();

    let mut c = Console::connect(port);
    let help = c.ok("help");
    for name in [
        "help",
        "list",
        "stat",
        "info",
        "exit",
        "kill",
        "mem",
        "gc",
        "start",
        "snax",
        "clearcache",
        "service",
        "log",
        "task",
        "uniqtask",
        "inject",
        "logon",
        "logoff",
        "signal",
        "cmem",
        "ping",
        "call",
        "trace",
        "netstat",
        "profactive",
        "killtask",
    ] {
        assert!(help.has(&format!("{name}\t")), "help lacks {name}");
    }

    // service lists: "address\tdescription", sorted
    let list = c.ok("list");
    assert!(
        list.has(&format!("{target}\tsnlua t_dconsole target")),
        "{}",
        list.dump()
    );
    let stat = c.ok("stat");
    let line = stat
        .lines
        .iter()
        .find(|l| l.starts_with(&format!("{target}\t")))
        .expect("target in stat");
    for field in ["cpu:", "message:", "mqlen:", "task:"] {
        assert!(line.contains(field), "{line}");
    }
    let mem = c.ok("mem");
    assert!(
        mem.lines
            .iter()
            .any(|l| l.starts_with(&format!("{target}\t"))
                && l.ends_with("Kb (snlua t_dconsole target)")),
        "{}",
        mem.dump()
    );
    assert!(c.ok("gc 100").has(&format!("{target}\t")));
    let info = c.ok("info .target a b");
    assert_eq!(info.lines, vec!["args\ta,b", "hello\tworld"]);
    // the three address forms
    for addr in [".target", target.as_str(), hex.as_str()] {
        let r = c.ok(&format!("ping {addr}"));
        assert!(
            r.lines.len() == 1 && r.lines[0].parse::<u64>().is_ok(),
            "{}",
            r.dump()
        );
    }

    // start / log / kill / exit
    let started = c.ok("start t_dconsole idle");
    let (idle, name) = started.lines[0].split_once('\t').unwrap();
    assert_eq!(name, "t_dconsole");
    assert!(c.ok("list").has(&format!("{idle}\tsnlua t_dconsole idle")));
    let killed = c.ok(&format!("kill {idle}"));
    assert_eq!(killed.lines, vec![format!("{idle}\tsnlua t_dconsole idle")]);
    assert!(!c.ok("list").has(&format!("{idle}\t")));
    let logged = c.ok("log t_dconsole idle");
    let (idle2, _) = logged.lines[0].split_once('\t').unwrap();
    let idle2 = idle2.to_string();
    c.ok(&format!("logoff {idle2}"));
    c.ok(&format!("logon {idle2}"));
    c.ok(&format!("exit {idle2}"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!c.ok("list").has(&format!("{idle2}\t")));
    c.error(
        "start no_such_service_here",
        "start: no_such_service_here failed",
    );

    // tasks: the target's parked thread, then killtask on it
    let task = c.ok("task .target");
    let thread = task
        .lines
        .iter()
        .find_map(|l| l.split('\t').next().filter(|k| k.starts_with("thread: ")))
        .unwrap_or_else(|| panic!("{}", task.dump()))
        .to_string();
    let thread = thread.split(" session").next().unwrap().to_string();
    c.ok("uniqtask .target");
    c.ok(&format!("killtask .target {thread}"));
    assert!(p.wait_for("Kill thread: ", Duration::from_secs(5)));

    // call: Lua values as arguments, results listed by position
    let call = c.ok("call .target \"echo\", 42, \"x y\", true");
    assert_eq!(call.lines, vec!["1\t42", "2\tx y", "3\ttrue", "n\t3"]);

    // inject: a file run inside the target; it changes the dispatcher's CMD
    let script = std::env::temp_dir().join(format!("dconsole-inject-{}.lua", std::process::id()));
    std::fs::write(
        &script,
        "print('args', ...)\nprint('has CMD', _P.lua.CMD ~= nil)\n\
         _P.lua.CMD.answer = function() return 99 end\n",
    )
    .unwrap();
    let inj = c.ok(&format!("inject .target {} p q", script.display()));
    assert_eq!(inj.lines, vec!["args\tp\tq", "has CMD\ttrue"]);
    assert_eq!(c.ok("call .target \"answer\"").lines, vec!["1\t99", "n\t1"]);
    std::fs::write(&script, "print('before')\nerror('boom', 0)\n").unwrap();
    let bad = c.cmd(&format!("inject .target {}", script.display()));
    assert!(
        !bad.ok && bad.lines.concat().contains("boom"),
        "{}",
        bad.dump()
    );
    let _ = std::fs::remove_file(&script);

    // memory, sockets, signals, trace, env
    let cmem = c.ok("cmem");
    let figure = |r: &Reply, key: &str| -> u64 {
        r.lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{key}\t")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {}", r.dump()))
    };
    let total = figure(&cmem, "total");
    let target_bytes = figure(&cmem, &target);
    assert!(
        target_bytes > 10_000 && total > target_bytes,
        "{}",
        cmem.dump()
    );
    assert!(figure(&cmem, "block") > 100);
    let jmem = c.ok("jmem");
    assert!(jmem.has("stats.allocated\t"), "{}", jmem.dump());
    let net = c.ok("netstat");
    assert!(
        net.lines
            .iter()
            .any(|l| l.contains("type:LISTEN") && l.contains("sock:127.0.0.1:")),
        "{}",
        net.dump()
    );
    assert!(
        net.lines.iter().any(|l| l.contains("type:TCP")
            && l.contains("peer:127.0.0.1:")
            && l.contains("read:")
            && l.contains("reading:true")
            && l.contains("writing:false")),
        "{}",
        net.dump()
    );
    c.ok("signal .target 1");
    assert!(p.wait_for("Current Memory", Duration::from_secs(5)));
    c.ok("trace .target on");
    c.ok("trace .target lua off");
    assert_eq!(
        c.ok("profactive").lines,
        vec!["heap profilling is deactive"]
    );
    c.ok("profactive off");
    c.ok("dumpheap");
    c.ok("clearcache");
    c.ok("service");
    assert_eq!(c.ok("getenv thread").lines, vec!["thread\t2"]);
    c.ok("setenv dconsole_key v1");
    assert_eq!(c.ok("getenv dconsole_key").lines, vec!["dconsole_key\tv1"]);
    assert!(c.ok("dbgcmd .target PING").lines.is_empty());

    // bad arguments: <CMD Error> with the reason
    c.error("kill", "kill: need an address");
    c.error("ping .nobody", "ping: no service named .nobody");
    c.error("ping zz", "ping: zz is not an address");
    c.error("stat soon", "stat: the timeout soon is not a number");
    c.error("call .target", "call: need arguments");
    c.error("call .target (", "call: bad arguments");
    c.error("signal .target x", "signal: x is not a signal number");
    c.error("trace .target lua maybe", "trace: maybe is not on or off");
    c.error("profactive maybe", "profactive: maybe is not on or off");
    c.error("inject .target", "inject: need a Lua file");
    c.error(
        "inject .target /no/such/file.lua",
        "inject: can't open /no/such/file.lua",
    );
    c.error("start", "start: need a service name");
    c.error("getenv", "getenv: need a name");
    c.error(
        "nosuchcommand",
        "Invalid command, type help for command list",
    );
    c.error("debug .target", "debug: not available");
    // a failing call is an error too, and the console keeps serving
    let r = c.cmd("call .target \"nothing\"");
    assert!(!r.ok, "{}", r.dump());
    c.ok(&format!("ping {target}"));

    // HTTP: GET /cmd/arg/..., POST with the command line as the body
    let got = http(port, "GET /ping/.target HTTP/1.1\r\nHost: x\r\n\r\n");
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 3, "{got}");
    assert_eq!(lines[0], "Welcome to skynet console");
    assert!(lines[1].parse::<u64>().is_ok(), "{got}");
    assert_eq!(lines[2], "<CMD OK>");
    // a path piece is %XX-decoded: an argument may hold a slash
    let got = http(port, "GET /info/.target/a%2Fb/c HTTP/1.1\r\n\r\n");
    assert!(
        got.contains("args\ta/b,c\n") && got.ends_with("<CMD OK>\n"),
        "{got}"
    );
    let got = http(port, "GET /kill HTTP/1.1\r\n\r\n");
    assert!(
        got.ends_with("kill: need an address (.name, :hex or hex)\n<CMD Error>\n"),
        "{got}"
    );
    let body = "call .target \"echo\", 7";
    let got = http(
        port,
        &format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(got.ends_with("1\t7\nn\t1\n<CMD OK>\n"), "{got}");
    let got = http(port, "GET /a b c d\r\n\r\n");
    assert!(got.ends_with("<CMD Error>\n"), "{got}");

    // the telnet session still works after all that
    c.ok("ping .target");
    drop(c);
    let run = p.finish(Duration::from_millis(300));
    assert!(run.has("connected"), "{}", run.dump());
    assert!(run.has("disconnect"), "{}", run.dump());
}

/// skynet.injectcode and the debug command RUN (skynet.inject), which the
/// console's `inject` uses.
#[test]
fn injectcode_and_debug_run() {
    let run = common::Node::new("t_inject")
        .timeout(Duration::from_secs(20))
        .run();
    run.said_exactly(
        "t_inject",
        &[
            "here true 6 3 6 11",
            "error false oops",
            "syntax false",
            "other true 20",
            "other after 20",
            "bad level false Invalid level",
            "ext true 14",
            "run true got\ta\t2|table",
            "run changed 42",
            "run error false x|bad",
            "run syntax false true",
            "done",
        ],
    );
}
