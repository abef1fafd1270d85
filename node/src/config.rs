//! skynet's config file: a Lua chunk run in a sandbox where only `include` is
//! visible. `$NAME` is replaced by the environment variable's raw text before the
//! chunk is loaded; every resulting value becomes a string in the node's env.

use crate::env::Env;
use mlua::{Lua, Table, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A config that cannot be used, with a one-line reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("can't open config file {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("os.getenv() failed: {0}")]
    MissingEnv(String),
    #[error("config {path}: {reason}")]
    Syntax { path: String, reason: String },
    #[error("Invalid config table key = {0}")]
    InvalidValue(String),
    #[error("Invalid config table: key {0} is not a string")]
    InvalidKey(String),
}

/// Replaces each `$NAME` (letters, digits, `_`) with that variable's value.
pub fn substitute_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if end == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        let name = &after[..end];
        let value = lookup(name).ok_or_else(|| ConfigError::MissingEnv(name.to_string()))?;
        out.push_str(&value);
        rest = &after[end..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Runs the config file at `path` and returns its keys as strings.
pub fn load_file(path: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let lua = Lua::new();
    let result = lua.create_table().map_err(lua_err(path))?;
    // The directory that relative includes resolve against, as skynet tracks it.
    let current = Arc::new(Mutex::new(PathBuf::from(".")));
    let failure: Arc<Mutex<Option<ConfigError>>> = Arc::new(Mutex::new(None));
    let include = {
        let result = result.clone();
        let current = current.clone();
        let failure = failure.clone();
        lua.create_function(move |lua, name: String| {
            match include_file(lua, &result, &current, &name) {
                Ok(()) => Ok(()),
                Err(e) => {
                    let text = e.to_string();
                    failure.lock().unwrap().get_or_insert(e);
                    Err(mlua::Error::runtime(text))
                }
            }
        })
        .map_err(lua_err(path))?
    };
    let index = lua.create_table().map_err(lua_err(path))?;
    index
        .set("include", include.clone())
        .map_err(lua_err(path))?;
    let meta = lua.create_table().map_err(lua_err(path))?;
    meta.set("__index", index).map_err(lua_err(path))?;
    result.set_metatable(Some(meta)).map_err(lua_err(path))?;
    if let Err(e) = include.call::<()>(path.to_string()) {
        if let Some(f) = failure.lock().unwrap().take() {
            return Err(f);
        }
        return Err(ConfigError::Syntax {
            path: path.to_string(),
            reason: one_line(&e.to_string()),
        });
    }
    result.set_metatable(None).map_err(lua_err(path))?;
    let tostring: mlua::Function = lua.globals().get("tostring").map_err(lua_err(path))?;
    let mut out = Vec::new();
    for pair in result.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(lua_err(path))?;
        let key = match &k {
            Value::String(s) => s.to_str().map_err(lua_err(path))?.to_string(),
            other => return Err(ConfigError::InvalidKey(format!("{other:?}"))),
        };
        let value = match v {
            Value::Boolean(b) => b.to_string(),
            Value::Integer(_) | Value::Number(_) | Value::String(_) => {
                tostring.call::<String>(v).map_err(lua_err(path))?
            }
            _ => return Err(ConfigError::InvalidValue(key)),
        };
        out.push((key, value));
    }
    out.sort();
    Ok(out)
}

fn include_file(
    lua: &Lua,
    result: &Table,
    current: &Mutex<PathBuf>,
    filename: &str,
) -> Result<(), ConfigError> {
    let last = current.lock().unwrap().clone();
    let file = Path::new(filename);
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty());
    let resolved = if file.is_absolute() {
        file.to_path_buf()
    } else {
        last.join(file)
    };
    if let Some(d) = dir {
        let next = if d.is_absolute() {
            d.to_path_buf()
        } else {
            last.join(d)
        };
        *current.lock().unwrap() = next;
    }
    let shown = printable(&resolved.display().to_string());
    let text = std::fs::read_to_string(&resolved).map_err(|e| ConfigError::Open {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let code = substitute_env(&text, |n| std::env::var(n).ok())?;
    let chunk = lua
        .load(code)
        .set_name(format!("@{}", printable(filename)))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .set_environment(result.clone());
    let run = chunk.exec();
    *current.lock().unwrap() = last;
    run.map_err(|e| ConfigError::Syntax {
        path: shown,
        reason: one_line(&e.to_string()),
    })
}

fn lua_err(path: &str) -> impl Fn(mlua::Error) -> ConfigError + '_ {
    move |e| ConfigError::Syntax {
        path: path.to_string(),
        reason: one_line(&e.to_string()),
    }
}

/// `name` with its control characters escaped (`\n`, `\u{b}`), so that an
/// error naming it stays one log line.
fn printable(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The first line of a Lua error, without the traceback.
fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Puts config keys into the env.
pub fn apply(env: &Env, keys: &[(String, String)]) {
    for (k, v) in keys {
        env.set(k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("skynet-config-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn env_substitution_is_raw() {
        let got = substitute_env("a = \"$HOME/x\" b=$N_1;c=$", |n| match n {
            "HOME" => Some("/root".into()),
            "N_1" => Some("8".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(got, "a = \"/root/x\" b=8;c=$");
        assert!(
            matches!(substitute_env("$NOPE", |_| None), Err(ConfigError::MissingEnv(n)) if n == "NOPE")
        );
    }

    #[test]
    fn values_become_strings_and_include_is_relative() {
        let d = tmpdir("inc");
        write(
            &d,
            "sub/paths.lua",
            "root = \"./\"\nlua_path = root .. \"lualib/?.lua\"\n",
        );
        let cfg = write(
            &d,
            "config",
            "include \"sub/paths.lua\"\nthread = 8\nratio = 1.5\ndaemon = false\nstart = \"main\"\nlp = lua_path\n",
        );
        let keys = load_file(&cfg).unwrap();
        let get = |k: &str| keys.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        assert_eq!(get("thread").as_deref(), Some("8"));
        assert_eq!(get("ratio").as_deref(), Some("1.5"));
        assert_eq!(get("daemon").as_deref(), Some("false"));
        assert_eq!(get("lp").as_deref(), Some("./lualib/?.lua"));
        assert_eq!(get("include"), None, "include is not a key");
    }

    #[test]
    fn sandbox_has_only_include() {
        let d = tmpdir("sandbox");
        let cfg = write(&d, "config", "x = print\n");
        // print is nil in the sandbox, so x is simply absent
        let keys = load_file(&cfg).unwrap();
        assert!(keys.is_empty());
        let cfg = write(&d, "config2", "x = string.rep('a', 2)\n");
        assert!(matches!(load_file(&cfg), Err(ConfigError::Syntax { .. })));
    }

    #[test]
    fn bad_configs_are_one_line_errors() {
        let d = tmpdir("bad");
        let e = load_file(&d.join("missing").display().to_string()).unwrap_err();
        assert!(matches!(e, ConfigError::Open { .. }), "{e}");
        let cfg = write(&d, "syntax", "thread = = 8\n");
        let e = load_file(&cfg).unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }));
        assert!(!e.to_string().contains('\n'));
        let cfg = write(&d, "table", "t = {}\n");
        assert!(matches!(load_file(&cfg), Err(ConfigError::InvalidValue(k)) if k == "t"));
        let cfg = write(&d, "env", "x = \"$SKYNET_SURELY_UNSET_VAR\"\n");
        assert!(matches!(load_file(&cfg), Err(ConfigError::MissingEnv(_))));
    }

    #[test]
    fn file_names_with_control_characters_stay_one_line() {
        let d = tmpdir("ctl");
        let cfg = write(&d, "config", "include \"a.\\v\\nlua\"\n");
        let e = load_file(&cfg).unwrap_err();
        assert!(matches!(e, ConfigError::Open { .. }), "{e}");
        let e = e.to_string();
        assert!(!e.contains('\n') && e.contains("a.\\u{b}\\nlua:"), "{e}");
        write(&d, "b\nc.lua", "x = = 1\n");
        let cfg = write(&d, "config2", "include \"b\\nc.lua\"\n");
        let e = load_file(&cfg).unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
        let e = e.to_string();
        assert!(!e.contains('\n') && e.contains("b\\nc.lua:1:"), "{e}");
    }
}
