//! The endless-loop monitor (skynet's `skynet_monitor.c`): each worker records
//! which message it is dispatching and bumps a version at every start and end;
//! a monitor thread that finds a worker busy with the same version at two checks
//! a period apart reports that message. The kernel decides what a report does
//! (flag the service for `STAT endless`, log a line).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// How often skynet's monitor checks the workers.
pub const PERIOD: Duration = Duration::from_secs(5);

/// What one worker is dispatching.
#[derive(Default)]
pub struct WorkerMonitor {
    version: AtomicU32,
    source: AtomicU32,
    destination: AtomicU32,
}

impl WorkerMonitor {
    /// The worker starts a message from `source` to `destination`, or ends
    /// one (`0, 0`).
    pub fn trigger(&self, source: u32, destination: u32) {
        self.source.store(source, Ordering::Relaxed);
        self.destination.store(destination, Ordering::Relaxed);
        self.version.fetch_add(1, Ordering::Release);
    }
}

/// A message that was being dispatched at two checks in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endless {
    pub source: u32,
    pub destination: u32,
    pub version: u32,
}

/// The workers' records and the period between two checks.
pub struct Monitor {
    workers: Vec<WorkerMonitor>,
    period: Duration,
}

impl Monitor {
    pub fn new(workers: usize, period: Duration) -> Self {
        Monitor {
            workers: (0..workers).map(|_| WorkerMonitor::default()).collect(),
            period,
        }
    }

    pub fn worker(&self, index: usize) -> &WorkerMonitor {
        &self.workers[index]
    }

    /// How many workers are dispatching a message now.
    pub fn busy(&self) -> usize {
        self.workers
            .iter()
            .filter(|w| w.destination.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// One check. `checked` holds each worker's version at the previous
    /// check and is updated where it moved.
    fn check(&self, checked: &mut [u32], report: &mut impl FnMut(Endless)) {
        for (w, last) in self.workers.iter().zip(checked.iter_mut()) {
            let version = w.version.load(Ordering::Acquire);
            let destination = w.destination.load(Ordering::Relaxed);
            if version == *last {
                if destination != 0 {
                    report(Endless {
                        source: w.source.load(Ordering::Relaxed),
                        destination,
                        version,
                    });
                }
            } else {
                *last = version;
            }
        }
    }

    /// The monitor thread's body: a check every period until `quit` is set
    /// (looked at every 100 ms at most).
    pub fn run(&self, quit: &AtomicBool, mut report: impl FnMut(Endless)) {
        let mut checked = vec![0; self.workers.len()];
        let step = self.period.min(Duration::from_millis(100));
        loop {
            let mut waited = Duration::ZERO;
            while waited < self.period {
                if quit.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(step);
                waited += step;
            }
            self.check(&mut checked, &mut report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(m: &Monitor, checked: &mut [u32]) -> Vec<Endless> {
        let mut got = Vec::new();
        m.check(checked, &mut |e| got.push(e));
        got
    }

    #[test]
    fn a_message_seen_at_two_checks_is_reported_until_it_ends() {
        let m = Monitor::new(2, PERIOD);
        let mut checked = vec![0; 2];
        m.worker(1).trigger(0x10, 0x20);
        assert_eq!(check(&m, &mut checked), vec![], "first sight: moved");
        let stuck = Endless {
            source: 0x10,
            destination: 0x20,
            version: 1,
        };
        assert_eq!(check(&m, &mut checked), vec![stuck]);
        assert_eq!(check(&m, &mut checked), vec![stuck], "reported each period");
        m.worker(1).trigger(0, 0);
        assert_eq!(check(&m, &mut checked), vec![], "ended");
        assert_eq!(check(&m, &mut checked), vec![], "idle is not endless");
    }

    #[test]
    fn a_worker_that_moves_on_is_not_reported() {
        let m = Monitor::new(1, PERIOD);
        let mut checked = vec![0; 1];
        for i in 1..5 {
            m.worker(0).trigger(i, 7);
            m.worker(0).trigger(0, 0);
            m.worker(0).trigger(i, 8);
            assert_eq!(check(&m, &mut checked), vec![]);
        }
    }

    #[test]
    fn run_checks_each_period_and_stops_on_quit() {
        let m = Monitor::new(1, Duration::from_millis(20));
        m.worker(0).trigger(3, 4);
        let quit = AtomicBool::new(false);
        let mut reports = 0;
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                quit.store(true, Ordering::SeqCst);
            });
            m.run(&quit, |e| {
                assert_eq!((e.source, e.destination), (3, 4));
                reports += 1;
            });
        });
        // ~10 periods: the first moves the version, the others report.
        assert!((3..=10).contains(&reports), "{reports} reports");
    }
}
