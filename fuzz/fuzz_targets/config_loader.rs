//! The config loader: up to three files (the input split at NUL bytes: the
//! config and two files it may `include`), with `$VAR` references, load to
//! string keys and values or fail with a one-line error. Inputs that could
//! loop or grow without end (loops, functions, `rep`, `gsub`, much
//! concatenation) or reach device files are skipped: the config is trusted
//! Lua, and the interpreter's own limits are not what is tested here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_node::fuzzing::{load_file, substitute_env};
use std::sync::OnceLock;

const FILES: [&str; 3] = ["config", "a.lua", "sub/b.lua"];
const BANNED: [&[u8]; 11] = [
    b"while",
    b"repeat",
    b"for",
    b"goto",
    b"function",
    b"rep",
    b"gsub",
    b"dev",
    b"proc",
    b"sys",
    b"\\z",
];

fn setup() {
    static DIR: OnceLock<()> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::var("FUZZ_CONFIG_DIR").unwrap_or_else(|_| "/dev/shm".into());
        let dir =
            std::path::Path::new(&base).join(format!("skynet-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::env::set_current_dir(&dir).unwrap();
        std::env::set_var("FUZZ_A", "1");
        std::env::set_var("FUZZ_B", "\"text\"");
        std::env::set_var("FUZZ_C", "include \"a.lua\"");
    });
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // $VAR substitution alone: text without `$` is unchanged; an unset
    // variable is an error naming it.
    let lookup = |n: &str| (n.len() % 2 == 0).then(|| n.to_ascii_lowercase());
    match substitute_env(text, lookup) {
        Ok(s) if !text.contains('$') => assert_eq!(s, text),
        Ok(_) => {}
        Err(e) => assert!(e.to_string().starts_with("os.getenv() failed: ")),
    }
    if BANNED.iter().any(|b| contains(data, b))
        || data.windows(2).filter(|w| w == b"..").count() > 6
    {
        return;
    }
    setup();
    let mut parts = data.split(|&b| b == 0);
    for f in FILES {
        std::fs::write(f, parts.next().unwrap_or_default()).unwrap();
    }
    match load_file("config") {
        Ok(keys) => {
            for w in keys.windows(2) {
                assert!(w[0].0 < w[1].0, "keys not sorted and unique");
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(
                !text.contains('\n'),
                "error of more than one line: {text:?}"
            );
        }
    }
});
