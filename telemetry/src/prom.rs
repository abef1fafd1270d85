//! One Prometheus scrape, built from values read at scrape time (the
//! processes keep their own counters; nothing here is updated on a hot path)
//! and encoded in the text format by `prometheus-client`.
//!
//! Names follow Prometheus conventions: the caller passes the full name
//! (`skynet_...`, base units); a counter's `_total` suffix is added here.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;

/// The metrics of one scrape.
#[derive(Default)]
pub struct Scrape {
    registry: Registry,
}

impl Scrape {
    pub fn new() -> Self {
        Scrape::default()
    }

    /// A counter; `name` without `_total`.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        let c: Counter = Counter::default();
        c.inc_by(value);
        self.registry.register(name, help, c);
    }

    /// A counter of seconds (a float); `name` without `_total`.
    pub fn seconds_counter(&mut self, name: &str, help: &str, value: f64) {
        let c: Counter<f64, AtomicU64> = Counter::default();
        c.inc_by(value);
        self.registry.register(name, help, c);
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: i64) {
        let g: Gauge = Gauge::default();
        g.set(value);
        self.registry.register(name, help, g);
    }

    /// A counter with one label; `name` without `_total`.
    pub fn counter_by(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (String, u64)>,
    ) {
        let f: Family<Labels, Counter> = Family::default();
        for (l, v) in values {
            f.get_or_create(&vec![(label.to_string(), l)]).inc_by(v);
        }
        self.registry.register(name, help, f);
    }

    /// A counter of seconds with one label; `name` without `_total`.
    pub fn seconds_counter_by(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (String, f64)>,
    ) {
        let f: Family<Labels, Counter<f64, AtomicU64>> = Family::default();
        for (l, v) in values {
            f.get_or_create(&vec![(label.to_string(), l)]).inc_by(v);
        }
        self.registry.register(name, help, f);
    }

    /// A gauge with one label.
    pub fn gauge_by(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (String, i64)>,
    ) {
        let f: Family<Labels, Gauge> = Family::default();
        for (l, v) in values {
            f.get_or_create(&vec![(label.to_string(), l)]).set(v);
        }
        self.registry.register(name, help, f);
    }

    /// The text format (`text/plain; version=0.0.4`), ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Scrape::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_gauges_and_labels() {
        let mut s = Scrape::new();
        s.counter("skynet_x_events", "Events.", 3);
        s.gauge("skynet_services", "Services.", 7);
        s.seconds_counter("skynet_cpu_seconds", "CPU.", 1.5);
        s.counter_by(
            "skynet_service_messages",
            "Messages.",
            "service",
            vec![("agent".to_string(), 10), ("gate".to_string(), 2)],
        );
        let text = s.encode();
        assert!(text.contains("# TYPE skynet_x_events counter\n"), "{text}");
        assert!(text.contains("skynet_x_events_total 3\n"), "{text}");
        assert!(text.contains("skynet_services 7\n"), "{text}");
        assert!(text.contains("skynet_cpu_seconds_total 1.5\n"), "{text}");
        assert!(
            text.contains("skynet_service_messages_total{service=\"agent\"} 10\n"),
            "{text}"
        );
        assert!(
            text.contains("skynet_service_messages_total{service=\"gate\"} 2\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
