//! The operators' endpoint of the master (`skynet-master --metrics`):
//! `GET /metrics` in Prometheus text format and `GET /cluster` as JSON, both
//! from the registry's [`ClusterView`], asked of the hub at each request.

use crate::error::MasterError;
use crate::hub::Event;
use crate::registry::ClusterView;
use skynet_telemetry::http::{self, Pending, Request, Response};
use skynet_telemetry::prom::{self, Scrape};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Starts serving `listener`; the task ends when aborted.
pub fn serve(
    listener: std::net::TcpListener,
    events: mpsc::Sender<Event>,
) -> Result<JoinHandle<()>, MasterError> {
    listener
        .set_nonblocking(true)
        .map_err(MasterError::Metrics)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(MasterError::Metrics)?;
    let handler: http::Handler = Arc::new(move |req: Request| {
        let events = events.clone();
        Box::pin(async move { answer(&req, &events).await }) as Pending
    });
    Ok(tokio::spawn(http::serve(listener, handler)))
}

async fn answer(req: &Request, events: &mpsc::Sender<Event>) -> Response {
    let view = || async {
        let (tx, rx) = oneshot::channel();
        events.send(Event::View(tx)).await.ok()?;
        rx.await.ok()
    };
    match req.path.as_str() {
        "/metrics" => match view().await {
            Some(v) => Response::new(200, prom::CONTENT_TYPE, render(&v)),
            None => Response::text(503, "the master is shutting down"),
        },
        "/cluster" => match view().await {
            Some(v) => Response::new(200, "application/json", json(&v)),
            None => Response::text(503, "the master is shutting down"),
        },
        "/" => Response::text(200, "skynet-master: GET /metrics, GET /cluster"),
        other => Response::text(
            404,
            &format!("no such path {other}: try /metrics or /cluster"),
        ),
    }
}

/// `GET /cluster`'s body.
pub fn json(v: &ClusterView) -> String {
    // A view holds only strings and integers: it always serializes.
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

/// `GET /metrics`'s body.
pub fn render(v: &ClusterView) -> String {
    let mut s = Scrape::new();
    s.gauge(
        "skynet_master_harbors",
        "Harbors connected to the master.",
        v.harbors.len() as i64,
    );
    s.gauge(
        "skynet_master_global_names",
        "Global names the master knows.",
        v.names.len() as i64,
    );
    s.counter(
        "skynet_master_refusals",
        "Connections refused at their handshake (bad or duplicate harbor id, no handshake).",
        v.refusals,
    );
    s.encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{HarborView, NameView};

    fn sample() -> ClusterView {
        ClusterView {
            harbors: vec![HarborView {
                id: 2,
                address: "10.0.0.2:2526".into(),
                peer: "10.0.0.2:40000".into(),
            }],
            names: vec![NameView {
                name: "SERVICE".into(),
                handle: ":0200000a".into(),
                harbor: 2,
            }],
            refusals: 3,
        }
    }

    #[test]
    fn metrics_count_harbors_names_and_refusals() {
        let text = render(&sample());
        assert!(text.contains("skynet_master_harbors 1\n"), "{text}");
        assert!(text.contains("skynet_master_global_names 1\n"), "{text}");
        assert!(text.contains("skynet_master_refusals_total 3\n"), "{text}");
    }

    #[test]
    fn cluster_json_names_each_harbor_and_name() {
        let v: serde_json::Value = serde_json::from_str(&json(&sample())).unwrap();
        assert_eq!(v["harbors"][0]["id"], 2);
        assert_eq!(v["harbors"][0]["address"], "10.0.0.2:2526");
        assert_eq!(v["names"][0]["name"], "SERVICE");
        assert_eq!(v["names"][0]["handle"], ":0200000a");
        assert_eq!(v["refusals"], 3);
    }
}
