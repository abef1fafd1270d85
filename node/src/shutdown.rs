//! Graceful shutdown on SIGTERM (what `docker stop` sends): the node stops
//! accepting connections, lets services finish what is queued (at most the
//! config's `drain_time` seconds, default 5), closes its harbor links so that
//! peers fail their calls to it at once, and exits with status 0. A second
//! SIGTERM during the drain exits at once.

use crate::kernel::Kernel;
use std::time::{Duration, Instant};

/// The drain bound when the config does not set `drain_time`.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(5);
/// How often the drain looks at the queues.
const LOOK: Duration = Duration::from_millis(10);

/// The config's `drain_time` (seconds, may be fractional), or why it is
/// not one.
pub fn drain_time(value: Option<&str>) -> Result<Duration, String> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_DRAIN);
    };
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=3600.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "Invalid drain_time {v} , should be seconds in [0,3600]"
        )),
    }
}

/// Waits until `quiet` holds at two looks in a row (so a message that a
/// just-finished one sent is seen), or `bound` passes. True if it held.
pub fn wait_quiet(bound: Duration, mut quiet: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    let mut streak = 0;
    loop {
        streak = if quiet() { streak + 1 } else { 0 };
        if streak >= 2 {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(LOOK.min(deadline - now));
    }
}

/// The drain; returns when the process may exit.
pub fn drain(k: &'static Kernel, bound: Duration) {
    let started = Instant::now();
    let listeners = crate::socket::started().map_or(0, |s| s.close_listeners());
    k.log(
        0,
        &format!(
            "SIGTERM: draining (closed {listeners} listening sockets, waiting at most {:.1} s for queued messages)",
            bound.as_secs_f64()
        ),
    );
    let drained = wait_quiet(bound, || k.is_quiescent());
    let links = k.remote_router().map_or(0, |r| r.close_links());
    let waited = started.elapsed().as_secs_f64();
    let line = if drained {
        format!("SIGTERM: queues drained in {waited:.3} s; closed {links} harbor links; exit 0")
    } else {
        format!("SIGTERM: drain time over after {waited:.3} s with messages still queued; closed {links} harbor links; exit 0")
    };
    k.log(0, &line);
    // Give the logger its last lines.
    wait_quiet(Duration::from_millis(500), || k.is_quiescent());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_time_defaults_parses_and_refuses_nonsense() {
        assert_eq!(drain_time(None), Ok(DEFAULT_DRAIN));
        assert_eq!(drain_time(Some(" ")), Ok(DEFAULT_DRAIN));
        assert_eq!(drain_time(Some("0.5")), Ok(Duration::from_millis(500)));
        assert_eq!(drain_time(Some("0")), Ok(Duration::ZERO));
        for bad in ["-1", "abc", "inf", "99999"] {
            let e = drain_time(Some(bad)).unwrap_err();
            assert!(e.contains(bad) && e.contains("drain_time"), "{e}");
        }
    }

    #[test]
    fn wait_quiet_needs_two_quiet_looks_and_respects_the_bound() {
        let mut looks = 0;
        assert!(wait_quiet(Duration::from_secs(5), || {
            looks += 1;
            looks >= 3
        }));
        assert_eq!(looks, 4);
        let t = Instant::now();
        assert!(!wait_quiet(Duration::from_millis(50), || false));
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(50) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }
}
