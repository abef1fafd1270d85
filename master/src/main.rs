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

    let master = match Master::bind(args.listen.as_str(), MasterConfig::default()).await {
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
