//! [`Master`]: the listen socket, the accept loop, startup and shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::config::MasterConfig;
use crate::connection;
use crate::error::MasterError;
use crate::hub;
use crate::registry::ConnId;

/// Events queued from connection tasks to the hub before readers wait.
const EVENT_QUEUE: usize = 1024;
/// Pause after a failed accept (for example when out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A master bound to its listen socket.
#[derive(Debug)]
pub struct Master {
    listener: TcpListener,
    config: MasterConfig,
    /// Where operators read the metrics and `GET /cluster`, if anywhere.
    metrics: Option<std::net::TcpListener>,
}

impl Master {
    /// Binds the listen socket (`"0.0.0.0:2013"`, `"127.0.0.1:0"`, ...).
    pub async fn bind(
        address: impl ToSocketAddrs + std::fmt::Display,
        config: MasterConfig,
    ) -> Result<Self, MasterError> {
        let shown = address.to_string();
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| MasterError::Bind {
                address: shown,
                source,
            })?;
        Ok(Master::new(listener, config))
    }

    /// A master on an already bound listener.
    pub fn new(listener: TcpListener, config: MasterConfig) -> Self {
        Master {
            listener,
            config,
            metrics: None,
        }
    }

    /// Also serves the metrics endpoint ([`crate::view`]) on `listener`.
    pub fn with_metrics(mut self, listener: std::net::TcpListener) -> Self {
        self.metrics = Some(listener);
        self
    }

    /// The address actually listened on.
    pub fn local_addr(&self) -> Result<SocketAddr, MasterError> {
        self.listener.local_addr().map_err(MasterError::LocalAddr)
    }

    /// Serves until the process ends.
    pub async fn run(self) -> Result<(), MasterError> {
        self.run_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes, then closes every connection
    /// (after the packets already queued for it) and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), MasterError> {
        let local = self.local_addr()?;
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (stop_tx, stop_rx) = oneshot::channel();
        let hub = tokio::spawn(hub::run(events_rx, stop_rx, self.config.secret.clone()));
        let metrics = match self.metrics {
            Some(l) => Some(crate::view::serve(l, events_tx.clone())?),
            None => None,
        };
        let mut connections = JoinSet::new();
        let mut next_conn = 0u64;
        info!(listen = %local, "master listening");

        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        next_conn += 1;
                        let conn = ConnId(next_conn);
                        info!(%conn, %peer, "connection accepted");
                        connections.spawn(connection::serve(
                            stream, conn, peer, events_tx.clone(), self.config.clone(),
                        ));
                    }
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }

        info!(listen = %local, "master shutting down");
        if let Some(m) = metrics {
            m.abort();
        }
        drop(self.listener);
        let _ = stop_tx.send(());
        drop(events_tx);
        if let Err(e) = hub.await {
            warn!(error = %e, "hub task failed");
        }
        // Every outbox is gone now, so each connection flushes and ends.
        let drained = tokio::time::timeout(self.config.write_timeout, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!("some connections did not close in time; aborting them");
            connections.shutdown().await;
        }
        Ok(())
    }
}
