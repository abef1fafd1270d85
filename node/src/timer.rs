//! Time: skynet's centisecond clock (`now`, `starttime`, `hpc`) and the timer that
//! turns `TIMEOUT` requests into RESPONSE messages.
//!
//! Deadlines are kept as monotonic instants (registration time + ti centiseconds),
//! so a timeout never fires early, whatever the tick phase. `now()` counts
//! centiseconds since boot and starts at the wall clock's centisecond fraction, so
//! `starttime() + now()/100` tracks the wall clock, as in skynet.

use parking_lot::{Condvar, Mutex};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The timer thread also wakes this often to let the scheduler re-check idle workers.
pub const TICK: Duration = Duration::from_micros(2500);

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    deadline: Instant,
    seq: u64,
    handle: u32,
    session: i32,
}

/// One expired timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub handle: u32,
    pub session: i32,
}

pub struct Timer {
    boot: Instant,
    boot_fraction_cs: u64,
    starttime: u32,
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    cond: Condvar,
    seq: AtomicU64,
}

impl Default for Timer {
    fn default() -> Self {
        Self::new()
    }
}

impl Timer {
    pub fn new() -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timer {
            boot: Instant::now(),
            boot_fraction_cs: (wall.subsec_millis() / 10) as u64,
            starttime: wall.as_secs() as u32,
            heap: Mutex::new(BinaryHeap::new()),
            cond: Condvar::new(),
            seq: AtomicU64::new(0),
        }
    }

    /// Centiseconds since boot, starting at the wall clock's centisecond fraction.
    pub fn now(&self) -> u64 {
        self.boot_fraction_cs + (self.boot.elapsed().as_millis() / 10) as u64
    }

    /// UTC seconds at boot.
    pub fn starttime(&self) -> u32 {
        self.starttime
    }

    /// Schedules a RESPONSE for (`handle`, `session`) after `ti` centiseconds.
    /// Returns false when `ti <= 0`: the caller must deliver it at once.
    pub fn add(&self, handle: u32, session: i32, ti: i32) -> bool {
        if ti <= 0 {
            return false;
        }
        let deadline = Instant::now() + Duration::from_millis(ti as u64 * 10);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut heap = self.heap.lock();
        let earliest = heap.peek().map(|Reverse(e)| e.deadline);
        heap.push(Reverse(Entry {
            deadline,
            seq,
            handle,
            session,
        }));
        drop(heap);
        if earliest.is_none_or(|e| deadline < e) {
            self.cond.notify_one();
        }
        true
    }

    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.heap.lock().len()
    }

    /// Waits at most one tick (less if a deadline is nearer) and returns the
    /// timeouts that are due, in deadline order.
    pub fn wait_expired(&self) -> Vec<Expired> {
        let mut heap = self.heap.lock();
        let now = Instant::now();
        let wait = match heap.peek() {
            Some(Reverse(e)) if e.deadline <= now => Duration::ZERO,
            Some(Reverse(e)) => (e.deadline - now).min(TICK),
            None => TICK,
        };
        if !wait.is_zero() {
            self.cond.wait_for(&mut heap, wait);
        }
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse(e)) = heap.peek() {
            if e.deadline > now {
                break;
            }
            let Reverse(e) = heap.pop().unwrap();
            due.push(Expired {
                handle: e.handle,
                session: e.session,
            });
        }
        due
    }

    /// The timer thread body: delivers expired timeouts and calls `tick` after
    /// each wake-up, until `quit` is set.
    pub fn run(&self, quit: &AtomicBool, mut fire: impl FnMut(Expired), mut tick: impl FnMut()) {
        while !quit.load(Ordering::Relaxed) {
            for e in self.wait_expired() {
                fire(e);
            }
            tick();
        }
    }
}

/// Monotonic clock in nanoseconds (skynet's `hpc`).
pub fn hpc() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_starts_below_one_second_and_tracks_wall_clock() {
        let t = Timer::new();
        assert!(t.now() < 100 + 5);
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let est = t.starttime() as u64 * 100 + t.now();
        let real = wall.as_millis() as u64 / 10;
        assert!(est.abs_diff(real) <= 2, "est {est} real {real}");
    }

    #[test]
    fn non_positive_timeouts_are_immediate() {
        let t = Timer::new();
        assert!(!t.add(1, 1, 0));
        assert!(!t.add(1, 1, -5));
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn timeouts_fire_in_deadline_order_and_never_early() {
        let t = Timer::new();
        let start = Instant::now();
        assert!(t.add(7, 2, 3));
        assert!(t.add(7, 1, 1));
        let mut got = Vec::new();
        let mut at = Vec::new();
        for _ in 0..100 {
            for e in t.wait_expired() {
                got.push(e.session);
                at.push(start.elapsed());
            }
            if got.len() == 2 {
                break;
            }
        }
        assert_eq!(got, vec![1, 2]);
        assert!(at[0] >= Duration::from_millis(10));
        assert!(at[1] >= Duration::from_millis(30));
    }
}
