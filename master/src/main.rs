//! The `skynet-master` binary: a standalone cluster master.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use skynet_master::{Master, MasterConfig};
use tracing_subscriber::EnvFilter;

/// Master of a multi-harbor skynet cluster (the `cmaster` of skynet 1.8).
///
/// Slaves (nodes with `harbor` set to 1..255 and `master` pointing here)
/// connect to it to learn about each other and to share global names.
/// Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to change the level.
#[derive(Debug, Parser)]
#[command(name = "skynet-master", version)]
struct Args {
    /// Address to listen on for slaves (skynet's `standalone`).
    #[arg(long, value_name = "HOST:PORT", default_value = "0.0.0.0:2013")]
    listen: String,
    /// File whose content (trailing newline removed) is the cluster secret:
    /// slaves must prove they know it before they join (the nodes' config
    /// key `cluster_secret`). Without it any slave may join, C skynet ones
    /// included.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let mut config = MasterConfig::default();
    if let Some(path) = &args.secret_file {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("can't read the secret file {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        };
        let text = text.strip_suffix(b"\n").unwrap_or(&text);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        match skynet_proto::auth::Secret::new(text) {
            Some(s) => config.secret = Some(s),
            None => {
                tracing::error!("the secret file {} is empty", path.display());
                return ExitCode::FAILURE;
            }
        }
        tracing::info!("slaves must prove the cluster secret");
    }
    let master = match Master::bind(args.listen.as_str(), config).await {
        Ok(master) => master,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot wait for Ctrl-C; running until killed");
            std::future::pending::<()>().await;
        }
    };
    match master.run_until(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
