//! The node's metrics endpoint (config key `metrics = "host:port"`):
//! Prometheus text on `GET /metrics`, gathered from [`Kernel::figures`] at
//! each scrape, served on a thread of its own (`metrics`) so that a slow
//! scraper never touches the workers or the socket thread.
//!
//! Services are labelled by name (`service="agent"`, see
//! [`crate::context::service_label`]), never by handle.

use crate::kernel::{Kernel, KernelFigures};
use parking_lot::Mutex;
use skynet_telemetry::http::{self, Request, Response};
use skynet_telemetry::prom::{self, Scrape};
use std::collections::HashMap;
use std::sync::Arc;

/// Why the endpoint could not start (a start-up error).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics: can't listen on {addr}: {error}")]
    Listen { addr: String, error: std::io::Error },
    #[error("metrics: {0}")]
    Thread(String),
}

/// Starts serving `addr`; returns the bound address (port 0 picks one).
pub fn start(k: &'static Kernel, addr: &str) -> Result<std::net::SocketAddr, MetricsError> {
    let listen_err = |error| MetricsError::Listen {
        addr: addr.to_string(),
        error,
    };
    let std_listener = std::net::TcpListener::bind(addr).map_err(listen_err)?;
    std_listener.set_nonblocking(true).map_err(listen_err)?;
    let bound = std_listener.local_addr().map_err(listen_err)?;
    let rt = crate::rt::io_thread("metrics").map_err(MetricsError::Thread)?;
    let counters = Arc::new(Monotonic::default());
    let handler = http::sync_handler(move |req: &Request| match req.path.as_str() {
        "/metrics" => Response::new(
            200,
            prom::CONTENT_TYPE,
            render(&counters.apply(k.figures())),
        ),
        "/" => Response::text(200, "skynet-node: GET /metrics"),
        other => Response::text(404, &format!("no such path {other}: try /metrics")),
    });
    rt.spawn(async move {
        match tokio::net::TcpListener::from_std(std_listener) {
            Ok(l) => http::serve(l, handler).await,
            Err(e) => tracing::error!(error = %e, "metrics endpoint: can't register the listener"),
        }
    });
    Ok(bound)
}

/// Keeps per-label counters from going down between scrapes (a service can
/// be out of the handle table and not yet counted as retired for a moment).
#[derive(Default)]
struct Monotonic {
    last: Mutex<HashMap<String, (u64, u64)>>,
}

impl Monotonic {
    fn apply(&self, mut f: KernelFigures) -> KernelFigures {
        let mut last = self.last.lock();
        for (label, s) in f.by_label.iter_mut() {
            let l = last.entry(label.clone()).or_default();
            l.0 = l.0.max(s.messages);
            l.1 = l.1.max(s.cpu_ns);
            (s.messages, s.cpu_ns) = *l;
        }
        f
    }
}

/// One scrape's text.
pub fn render(f: &KernelFigures) -> String {
    let mut s = Scrape::new();
    let labels = || f.by_label.iter();
    s.gauge("skynet_services", "Live services.", f.services as i64);
    s.gauge_by(
        "skynet_service_instances",
        "Live services by name.",
        "service",
        labels().map(|(l, v)| (l.clone(), v.instances as i64)),
    );
    s.counter_by(
        "skynet_service_messages",
        "Messages dispatched, by service name (retired services included).",
        "service",
        labels().map(|(l, v)| (l.clone(), v.messages)),
    );
    s.gauge_by(
        "skynet_service_queue_length",
        "Messages waiting in the queues of the services with this name.",
        "service",
        labels().map(|(l, v)| (l.clone(), v.queue_len as i64)),
    );
    s.seconds_counter_by(
        "skynet_service_cpu_seconds",
        "CPU time spent dispatching, by service name (config profile = true).",
        "service",
        labels().map(|(l, v)| (l.clone(), v.cpu_ns as f64 / 1e9)),
    );
    s.gauge_by(
        "skynet_service_lua_memory_bytes",
        "Bytes of Lua heap held by the services with this name.",
        "service",
        labels().map(|(l, v)| (l.clone(), v.memory as i64)),
    );
    s.gauge("skynet_workers", "Worker threads.", f.workers as i64);
    s.gauge(
        "skynet_workers_busy",
        "Workers dispatching a message now.",
        f.workers_busy as i64,
    );
    s.gauge(
        "skynet_timer_pending",
        "Timeouts registered and not fired yet.",
        f.timers_pending as i64,
    );
    s.counter(
        "skynet_overload_events",
        "\"May overload\" reports (a queue passed its overload threshold).",
        f.overload_events,
    );
    s.counter(
        "skynet_endless_loop_events",
        "Messages the monitor reported as maybe in an endless loop.",
        f.endless_events,
    );
    if let Some(r) = f.remote {
        s.gauge(
            "skynet_harbor_links_up",
            "Harbors linked now.",
            r.links_up as i64,
        );
        s.counter(
            "skynet_harbor_frames_sent",
            "Message frames written to harbor links.",
            r.frames_sent,
        );
        s.counter(
            "skynet_harbor_frames_received",
            "Message frames read from harbor links.",
            r.frames_received,
        );
        s.counter(
            "skynet_harbor_sent_bytes",
            "Bytes of message frames written to harbor links.",
            r.bytes_sent,
        );
        s.counter(
            "skynet_harbor_received_bytes",
            "Bytes of message frames read from harbor links.",
            r.bytes_received,
        );
        s.gauge(
            "skynet_harbor_pending_calls",
            "Calls to other harbors waiting for their answer.",
            r.pending_calls as i64,
        );
        s.counter(
            "skynet_harbor_down_events",
            "Times a linked harbor went down.",
            r.down_events,
        );
    }
    s.encode()
}
