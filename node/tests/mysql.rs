//! skynet.db.mysql end to end: the Lua test service `test/t_mysql.lua` talks
//! to a real `mariadbd` this test starts on loopback (its own temp data dir,
//! a user with a password made by an init file). The server is SIGKILLed
//! while a `SELECT SLEEP(30)` of the service runs there, to check that
//! callers fail at once. Without MariaDB the test fails under CI=true and
//! skips otherwise.

mod common;

use common::server::{installed_or_skip, Killer, Process};
use skynet_node::outside::free_port;
use std::io::Read;
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The first of `names` found on PATH or in the sbin folders.
fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    let dirs: Vec<PathBuf> = dirs.collect();
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

struct Tools {
    install_db: PathBuf,
    server: PathBuf,
    client: PathBuf,
}

fn tools() -> Option<Tools> {
    Some(Tools {
        install_db: find_binary(&["mariadb-install-db", "mysql_install_db"])?,
        server: find_binary(&["mariadbd", "mysqld"])?,
        client: find_binary(&["mariadb", "mysql"])?,
    })
}

const INIT_SQL: &str = "CREATE DATABASE IF NOT EXISTS skt;\n\
    CREATE USER IF NOT EXISTS 'sk'@'%' IDENTIFIED BY 'sekret';\n\
    GRANT ALL ON *.* TO 'sk'@'%';\n";

/// Makes a data dir, starts a mariadbd on it and waits for its greeting.
fn start_server(t: &Tools) -> Process {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("skynet-mysql-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // mariadbd refuses to run as root unless told to.
    let as_root = std::fs::metadata(&dir).unwrap().uid() == 0;
    let user: &[&str] = if as_root { &["--user=root"] } else { &[] };
    let status = Command::new(&t.install_db)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .args(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run mariadb-install-db");
    assert!(status.success(), "mariadb-install-db failed: {status}");
    let init = dir.join("init.sql");
    std::fs::write(&init, INIT_SQL).unwrap();
    let child = Command::new(&t.server)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.join("sock").display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .arg(format!("--log-error={}", dir.join("err.log").display()))
        .arg(format!("--init-file={}", init.display()))
        .arg(format!("--port={port}"))
        .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
        .arg("--max-allowed-packet=64M")
        .args(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mariadbd");
    let server = Process::new(child, port, dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !greets(port) {
        if let Ok(Some(status)) = server.child.lock().unwrap().try_wait() {
            panic!("mariadbd exited ({status}): {}", log(&server));
        }
        assert!(
            Instant::now() < deadline,
            "mariadbd on port {port} did not come up: {}",
            log(&server)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// The server's error log.
fn log(server: &Process) -> String {
    std::fs::read_to_string(server.dir.join("err.log")).unwrap_or_default()
}

/// True once the server sends a protocol-10 handshake on `port`.
fn greets(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = [0u8; 5];
    s.read_exact(&mut head).is_ok() && head[4] == 10
}

/// Asks the server (through its own client) whether our SLEEP is running.
fn sleep_running(client: &Path, port: u16) -> bool {
    Command::new(client)
        .arg("--no-defaults")
        .args(["-h", "127.0.0.1", "-P", &port.to_string()])
        .args(["-u", "sk", "-psekret", "-N", "-e"])
        .arg("SELECT COUNT(*) FROM information_schema.processlist WHERE info = 'SELECT SLEEP(30)'")
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "1")
        .unwrap_or(false)
}

#[test]
fn mysql_client_against_real_server() {
    let tools = tools();
    if !installed_or_skip(tools.is_some(), "mysql", "mariadb-server") {
        return;
    }
    let t = tools.unwrap();
    let server = start_server(&t);

    // The killer: once the service's SELECT SLEEP(30) runs, SIGKILL the server.
    let port = server.port;
    let client = t.client.clone();
    let killer = Killer::start(
        &server,
        Duration::from_secs(90),
        Duration::from_millis(50),
        move || sleep_running(&client, port),
    );

    let run = common::Node::new("t_mysql")
        .config("mysql_port", &server.port.to_string())
        .timeout(Duration::from_secs(90))
        .run();
    let killed = killer.finish();
    let tag = "t_mysql";
    assert!(!run.has("t_mysql: FAIL"), "{}", run.dump());
    assert!(!run.has("t_mysql: TIMEOUT"), "{}", run.dump());
    assert!(
        killed,
        "the SLEEP never showed in the process list:\n{}",
        run.dump()
    );
    run.said_exactly(
        tag,
        &[
            "sha256 empty e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256 abc ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "sha256 two blocks 248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            "sha256 55/56/64 9f4390f8 b35439a4 ffe054fe",
            "server MariaDB",
            "on_connect hello",
            "ping table 0 2",
            "wrong password false [Error: socket]",
            r#"bad charset false mysql: unknown charset "klingon""#,
            "create 0 nil",
            "insert 1 1",
            "insert2 2 2 Records: 2  Duplicates: 0  Warnings: 0",
            "int 1 integer 9007199254740993 integer",
            "double 2.5 float 0.5",
            "string hé true 8",
            "null nil 2024-02-29 13:14:15 12.34 -5 -01:02:03 2024-01-02",
            "unsigned 1.8446744073709552e+19 float",
            r#"quote 'a\0z\Z\'\"\\\t\r\n\b'"#,
            "rows 3 0",
            "compact 1 nil hé",
            "multi true 3 1 2 x 1 nil",
            "multi bad true 1 1 true 1146 42S02 Table 'skt.nope' doesn't exist",
            "multi after 4",
            "syntax true 1064 42000 SQL syntax",
            "missing true 1146 42S02 Table 'skt.nope' doesn't exist",
            "duplicate 1062 23000",
            "after errors 5",
            "prepare nil 5 5 5 5",
            "execute 42 integer hi nil 1.25 1",
            "execute arity false mysql: statement takes 5 parameters, got 1",
            "execute type false mysql: invalid parameter type table",
            "closed true 1243",
            "binary int 1 integer 9007199254740993 -5 1.8446744073709552e+19 float",
            "binary float 2.5 0.5 12.34",
            "binary string hé true nil",
            "binary time 2024-02-29 13:14:15 -01:02:03 2024-01-02",
            "binary none 0",
            "binary insert 1 4",
            "stmt_reset nil",
            "prepare bad true 1064 42000",
            "execute bad stmt false true",
            "procedure true true 3 1 2 0",
            "big nil nil 17600000 true",
            "big text nil 17600000 true",
            "fake switch me true mysql_native_password true 3",
            "fake query 3 SELECT 1 0",
            "fake plugin false [Error: socket]",
            "fake sha2 caching_sha2_password true 2",
            "fake sha2 full false [Error: socket] true",
            "fake version false [Error: socket]",
            "fake truncated false mysql: bad packet: string of 5 bytes past the end of a 3-byte packet true",
            "fake dies false [Error: socket] true",
            "kill warmup 1",
            "kill blocked",
            "kill all failed true false false",
            "kill error [Error: socket] true",
            "kill after false true",
            "done",
        ],
    );
    // a login refused by the server is logged with its errno and sqlstate
    run.expect("errno:1045, msg:Access denied for user 'sk'@'127.0.0.1' (using password: YES),sqlstate:28000");
    run.expect("socket: auth failed mysql: server wants auth plugin client_ed25519");
    run.expect("socket: auth failed mysql: caching_sha2_password wants full authentication");
}
