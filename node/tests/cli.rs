//! The `skynet-node` command line and its config file: help, one-line errors
//! with exit status 1, `$VAR` substitution, `include`, flags overriding keys,
//! and the embedded default config.

mod common;
mod live;

use common::{repo_root, run_binary, Run};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("skynet-t-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// The path settings every runnable config needs (what `common` writes).
fn paths() -> String {
    let root = repo_root();
    format!(
        "root = \"{}/\"\n\
         luaservice = root..\"service/?.lua;\"..root..\"test/?.lua;\"..root..\"examples/?.lua\"\n\
         lualoader = root..\"lualib/loader.lua\"\n\
         lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua;\"..root..\"test/?.lua\"\n",
        root.display()
    )
}

/// A config error: exit status 1, nothing on stdout, exactly one line on stderr.
fn config_error(args: &[&str]) -> String {
    let run = run_binary(args, None, Duration::from_secs(10));
    assert_eq!(run.status, Some(1), "{}", run.dump());
    assert!(run.lines.is_empty(), "{}", run.dump());
    let err = run.stderr.trim_end();
    assert!(
        !err.is_empty() && !err.contains('\n'),
        "not one line: {:?}",
        run.stderr
    );
    err.to_string()
}

/// What t_env printed for `getenv <key>`: "<type> <value>".
fn getenv(run: &Run, key: &str) -> Option<String> {
    let p = format!("t_env: getenv {key} ");
    run.texts()
        .into_iter()
        .find_map(|t| t.strip_prefix(&p).map(str::to_string))
}

#[test]
fn help_lists_the_flags() {
    let run = run_binary(&["--help"], None, Duration::from_secs(10));
    assert_eq!(run.status, Some(0), "{}", run.dump());
    let out = run.lines.join("\n");
    for flag in [
        "--thread",
        "--harbor",
        "--start",
        "--logger",
        "--master",
        "--address",
        "--standalone",
        "--root",
        "--help",
    ] {
        assert!(out.contains(flag), "{flag} missing from --help:\n{out}");
    }
    assert!(out.contains("CONFIG"), "{out}");
}

#[test]
fn unknown_config_file() {
    let err = config_error(&["/surely/not/here/config"]);
    assert!(err.contains("/surely/not/here/config"), "{err}");
}

#[test]
fn config_syntax_error() {
    let d = tmpdir("syntax");
    let cfg = write(&d, "config", "thread = = 8\n");
    let err = config_error(&[&cfg]);
    assert!(err.contains("config"), "{err}");
}

#[test]
fn config_table_value() {
    let d = tmpdir("table");
    let cfg = write(&d, "config", "thread = 2\nt = { 1, 2 }\n");
    let err = config_error(&[&cfg]);
    assert!(err.contains("Invalid config table key = t"), "{err}");
}

#[test]
fn config_missing_env_var() {
    let d = tmpdir("env");
    let cfg = write(&d, "config", "x = \"$SKYNET_TEST_SURELY_UNSET_VAR/x\"\n");
    let err = config_error(&[&cfg]);
    assert!(
        err.contains("os.getenv() failed: SKYNET_TEST_SURELY_UNSET_VAR"),
        "{err}"
    );
}

#[test]
fn invalid_thread_count() {
    let d = tmpdir("thread");
    let cfg = write(
        &d,
        "config",
        &format!("{}thread = 0\nharbor = 0\nstart = \"t_env\"\n", paths()),
    );
    let err = config_error(&[&cfg]);
    assert!(err.contains("Invalid thread 0"), "{err}");
}

#[test]
fn env_substitution_and_include_reach_getenv() {
    let d = tmpdir("include");
    // include paths are relative to the including file, nested includes too
    write(
        &d,
        "sub/paths.lua",
        &format!("{}include \"more.lua\"\n", paths()),
    );
    write(
        &d,
        "sub/more.lua",
        "included = \"from more\"\nnested = root .. \"x\"\n",
    );
    let cfg = write(
        &d,
        "config",
        "include \"sub/paths.lua\"\n\
         thread = 2\nharbor = 0\nstart = \"t_env\"\n\
         subst = \"$SKYNET_T_VALUE/x\"\n\
         count = $SKYNET_T_COUNT\n\
         t_env_keys = \"subst count included nested thread\"\n",
    );
    let run = live::run_until(
        &[&cfg],
        &[("SKYNET_T_VALUE", "hello world"), ("SKYNET_T_COUNT", "7")],
        "t_env: done",
        Duration::from_secs(20),
    );
    run.expect("t_env: done");
    assert_eq!(
        getenv(&run, "subst").as_deref(),
        Some("string hello world/x"),
        "{}",
        run.dump()
    );
    assert_eq!(
        getenv(&run, "count").as_deref(),
        Some("string 7"),
        "{}",
        run.dump()
    );
    assert_eq!(
        getenv(&run, "included").as_deref(),
        Some("string from more"),
        "{}",
        run.dump()
    );
    assert_eq!(
        getenv(&run, "nested").as_deref(),
        Some(format!("string {}/x", repo_root().display()).as_str())
    );
    assert_eq!(getenv(&run, "thread").as_deref(), Some("string 2"));
}

#[test]
fn flags_override_config_keys() {
    let d = tmpdir("flags");
    // harbor 1 without a master could not start: --harbor 0 makes it a single node
    let cfg = write(
        &d,
        "config",
        &format!(
            "{}thread = 2\nharbor = 1\nstart = \"main\"\nt_env_keys = \"thread harbor start\"\n",
            paths()
        ),
    );
    let run = live::run_until(
        &[&cfg, "--thread", "3", "--harbor", "0", "--start", "t_env"],
        &[],
        "t_env: done",
        Duration::from_secs(20),
    );
    run.expect("t_env: done");
    assert_eq!(
        getenv(&run, "thread").as_deref(),
        Some("string 3"),
        "{}",
        run.dump()
    );
    assert_eq!(
        getenv(&run, "harbor").as_deref(),
        Some("string 0"),
        "{}",
        run.dump()
    );
    assert_eq!(
        getenv(&run, "start").as_deref(),
        Some("string t_env"),
        "{}",
        run.dump()
    );
}

#[test]
fn logger_flag_writes_to_a_file() {
    let d = tmpdir("logger");
    let log = d.join("out.log");
    let cfg = write(
        &d,
        "config",
        &format!("{}thread = 2\nharbor = 0\nstart = \"t_env\"\n", paths()),
    );
    let p = live::Live::spawn(&[&cfg, "--logger", &log.display().to_string()], &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("t_env: done") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = p.finish(Duration::from_secs(1));
    assert!(
        text.contains("[:00000008] t_env: done"),
        "log file:\n{text}\n{}",
        run.dump()
    );
    assert!(
        text.contains("[:00000002] LAUNCH snlua bootstrap"),
        "{text}"
    );
    assert!(
        !run.lines.iter().any(|l| l.starts_with("[:")),
        "{}",
        run.dump()
    );
}

#[test]
fn no_config_runs_the_example() {
    // The example's main exits but its counter service stays: the node keeps
    // running, as skynet would, so this reads its output for a while.
    let run = live::run_until(&[], &[], "echo:", Duration::from_secs(15));
    run.expect_order(&[
        "[:00000002] LAUNCH snlua bootstrap",
        "Server start",
        "counter total 6",
        "a failing call: false",
        "echo: hello",
    ]);
    run.expect("LAUNCH snlua main");
}
