//! The `skynet-node` command line: `skynet-node [CONFIG] [--key value ...]`, like
//! `./skynet CONFIG`. Flags override config keys. Without a config file the node
//! runs an embedded default: a single node (harbor 0) starting `main` from
//! `examples/`.

use crate::config;
use crate::env::Env;
use clap::Parser;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "skynet-node",
    version,
    about = "Runs skynet Lua services: a skynet 1.8 compatible node",
    long_about = "Runs skynet Lua services from a skynet config file, like `./skynet CONFIG`.\n\
        Without CONFIG it runs a single node (harbor 0) with the example `main` service.\n\
        Flags override the config's keys."
)]
pub(crate) struct Args {
    /// skynet config file (a Lua chunk; only `include` and `$ENV` substitution)
    pub config: Option<String>,
    /// worker threads (config key `thread`)
    #[arg(long)]
    pub thread: Option<u32>,
    /// this node's harbor id, 0 for a single node (config key `harbor`)
    #[arg(long)]
    pub harbor: Option<u32>,
    /// master address HOST:PORT (config key `master`)
    #[arg(long)]
    pub master: Option<String>,
    /// this node's harbor listen address HOST:PORT (config key `address`)
    #[arg(long)]
    pub address: Option<String>,
    /// run a master inside this node, listening on HOST:PORT (config key `standalone`)
    #[arg(long)]
    pub standalone: Option<String>,
    /// the main service to start (config key `start`)
    #[arg(long)]
    pub start: Option<String>,
    /// log file instead of stdout (config key `logger`)
    #[arg(long)]
    pub logger: Option<String>,
    /// directory holding lualib/, service/ and examples/ (default: found from the binary)
    #[arg(long)]
    pub root: Option<PathBuf>,
}

/// The directory with `lualib/loader.lua`: `--root`, `$SKYNET_ROOT`, a parent of
/// the executable, the working directory, or `/skynet` (the container layout).
pub fn find_root(explicit: Option<&Path>) -> PathBuf {
    let has_lualib = |p: &Path| p.join("lualib").join("loader.lua").is_file();
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Ok(p) = std::env::var("SKYNET_ROOT") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if has_lualib(&d) {
                return d;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
    }
    if let Ok(cwd) = std::env::current_dir() {
        if has_lualib(&cwd) {
            return cwd;
        }
    }
    PathBuf::from("/skynet")
}

/// The embedded default config for a root directory.
pub(crate) fn default_config(root: &Path) -> Vec<(String, String)> {
    let r = format!("{}/", root.display());
    vec![
        ("root".into(), r.clone()),
        ("thread".into(), "2".into()),
        ("harbor".into(), "0".into()),
        ("start".into(), "main".into()),
        ("bootstrap".into(), "snlua bootstrap".into()),
        (
            "luaservice".into(),
            format!("{r}service/?.lua;{r}examples/?.lua;{r}test/?.lua"),
        ),
        ("lualoader".into(), format!("{r}lualib/loader.lua")),
        (
            "lua_path".into(),
            format!("{r}lualib/?.lua;{r}lualib/?/init.lua;{r}examples/?.lua"),
        ),
        ("lua_cpath".into(), format!("{r}luaclib/?.so")),
    ]
}

pub(crate) fn build_env(args: &Args) -> Result<Env, String> {
    let env = Env::new();
    match &args.config {
        Some(path) => {
            let keys = config::load_file(path).map_err(|e| e.to_string())?;
            config::apply(&env, &keys);
        }
        None => config::apply(&env, &default_config(&find_root(args.root.as_deref()))),
    }
    let overrides = [
        ("thread", args.thread.map(|v| v.to_string())),
        ("harbor", args.harbor.map(|v| v.to_string())),
        ("master", args.master.clone()),
        ("address", args.address.clone()),
        ("standalone", args.standalone.clone()),
        ("start", args.start.clone()),
        ("logger", args.logger.clone()),
    ];
    for (k, v) in overrides {
        if let Some(v) = v {
            env.set(k, &v);
        }
    }
    Ok(env)
}

/// Runs the binary; returns the process exit status.
pub fn main() -> i32 {
    let args = Args::parse();
    let env = match build_env(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("skynet-node: {e}");
            return 1;
        }
    };
    match crate::start::run(env) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skynet-node: {e}");
            1
        }
    }
}
