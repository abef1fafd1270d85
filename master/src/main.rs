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
    /// Also serve Prometheus metrics on `GET /metrics` and the harbors and
    /// global names as JSON on `GET /cluster`.
    #[arg(long, value_name = "HOST:PORT")]
    metrics: Option<String>,
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
    let mut master = match Master::bind(args.listen.as_str(), config).await {
        Ok(master) => master,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(addr) = &args.metrics {
        match std::net::TcpListener::bind(addr) {
            Ok(l) => {
                let shown = l.local_addr().map_or(addr.clone(), |a| a.to_string());
                tracing::info!(metrics = %shown, "metrics on /metrics, cluster view on /cluster");
                master = master.with_metrics(l);
            }
            Err(e) => {
                tracing::error!("cannot listen for metrics on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Ctrl-C or SIGTERM (docker stop): close every connection and exit 0.
    let shutdown = async {
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot wait for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            r = tokio::signal::ctrl_c() => if let Err(e) = r {
                tracing::error!(error = %e, "cannot wait for Ctrl-C; running until killed");
                std::future::pending::<()>().await;
            },
            () = term => tracing::info!("SIGTERM: shutting down"),
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
