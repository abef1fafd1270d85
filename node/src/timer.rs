//! Time: skynet's centisecond clock (`now`, `starttime`, `hpc`) and the timer that
//! turns `TIMEOUT` requests into RESPONSE messages.
//!
//! A timeout's deadline is its registration instant + ti centiseconds, in
//! nanoseconds since boot. Registering only appends the entry to a list under a
//! short lock; the timer thread moves those entries into a hierarchical timing
//! wheel of [`SLOT`]-long slots that only it touches, where an entry waits in
//! the slot that ends at or after its deadline.
//!
//! Each time the timer thread wakes it fires every entry whose deadline has
//! passed, so a timeout never fires early, and it sleeps until the next
//! deadline, but wakes to fire at most once per [`COALESCE`]: a lone timeout
//! fires as soon as the thread wakes after its deadline (or at the end of its
//! slot, at most one slot late, in the one slot of 256 that begins a block of
//! the wheel), while under a stream of timeouts they fire in batches, each at
//! most about [`COALESCE`] late.
//! Timeouts that fire together are handed over in deadline order
//! (registration order for equal deadlines).
//!
//! The timer thread never sleeps longer than [`TICK`], which is shorter than
//! the shortest timeout (10 ms): an entry registered while it sleeps is always
//! picked up before its deadline, so registering never has to wake it.
//!
//! `now()` counts centiseconds since boot and starts at the wall clock's
//! centisecond fraction, so `starttime() + now()/100` tracks the wall clock, as
//! in skynet.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The timer thread also wakes this often to let the scheduler re-check idle workers.
pub const TICK: Duration = Duration::from_micros(2500);

/// The span of one slot of the timing wheel.
pub const SLOT: Duration = Duration::from_millis(1);

/// The timer thread fires at most once per this interval.
pub const COALESCE: Duration = Duration::from_micros(250);

const SLOT_NS: u64 = SLOT.as_nanos() as u64;
const COALESCE_NS: u64 = COALESCE.as_nanos() as u64;
const TICK_NS: u64 = TICK.as_nanos() as u64;
const CENTISECOND_NS: u64 = 10_000_000;

/// One expired timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub handle: u32,
    pub session: i32,
}

/// A registered timeout. `seq` orders entries registered in the same nanosecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    due_ns: u64,
    seq: u64,
    handle: u32,
    session: i32,
}

impl Entry {
    /// The slot that holds the deadline: slot `s` spans the deadlines in
    /// ((s - 1) × SLOT, s × SLOT].
    fn slot(&self) -> u64 {
        self.due_ns.div_ceil(SLOT_NS)
    }
}

/// Level 0 ("near") holds the slots of the current 256-slot block, one list per
/// slot; each upper level holds 64 lists, one per block of the level below.
const NEAR_BITS: u32 = 8;
const NEAR: usize = 1 << NEAR_BITS;
const LEVEL_BITS: u32 = 6;
const LEVEL: usize = 1 << LEVEL_BITS;
/// 8 + 5 × 6 = 38 bits of 1 ms slots (8.7 years) before the overflow list;
/// the longest timeout (2^31 cs) needs 35.
const LEVELS: usize = 5;

/// The lowest slot bit that level `i` indexes.
const fn level_shift(i: usize) -> u32 {
    NEAR_BITS + LEVEL_BITS * i as u32
}

const TOP_SHIFT: u32 = level_shift(LEVELS);

/// A hierarchical timing wheel over slot numbers. An entry is in the near
/// list of its slot when its slot shares every bit above the near bits with the
/// current slot; otherwise it is on the lowest level `i` whose bits above that
/// level's own share them, in the list its level-`i` bits select (and in
/// `overflow` when even the top bits differ). When the current slot enters a
/// new block of level `i`, that block's list moves down; entries therefore move
/// down only when their block begins and reach the near list before their slot.
struct Wheel {
    /// Every slot up to and including this one has fired.
    now: u64,
    near: [Vec<Entry>; NEAR],
    levels: [[Vec<Entry>; LEVEL]; LEVELS],
    overflow: Vec<Entry>,
    /// Entries whose slot had already passed when they were inserted.
    ready: Vec<Entry>,
    len: usize,
}

impl Wheel {
    fn new(now: u64) -> Self {
        Wheel {
            now,
            near: std::array::from_fn(|_| Vec::new()),
            levels: std::array::from_fn(|_| std::array::from_fn(|_| Vec::new())),
            overflow: Vec::new(),
            ready: Vec::new(),
            len: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn insert(&mut self, e: Entry) {
        self.len += 1;
        let slot = e.slot();
        if slot <= self.now {
            self.ready.push(e);
        } else {
            self.place(e, slot);
        }
    }

    /// Files `e` by its slot (at or after `now`) relative to `now`.
    fn place(&mut self, e: Entry, slot: u64) {
        if slot >> NEAR_BITS == self.now >> NEAR_BITS {
            self.near[slot as usize & (NEAR - 1)].push(e);
            return;
        }
        for i in 0..LEVELS {
            if slot >> level_shift(i + 1) == self.now >> level_shift(i + 1) {
                self.levels[i][(slot >> level_shift(i)) as usize & (LEVEL - 1)].push(e);
                return;
            }
        }
        self.overflow.push(e);
    }

    /// `now` has just entered a new near block: moves down the lists of every
    /// level whose block begins here, from the top so that what a level hands
    /// down to the block now beginning below it moves on in the same pass.
    fn cascade(&mut self) {
        let now = self.now;
        let begins = |shift: u32| now & ((1u64 << shift) - 1) == 0;
        if begins(TOP_SHIFT) && !self.overflow.is_empty() {
            for e in std::mem::take(&mut self.overflow) {
                self.place(e, e.slot());
            }
        }
        let mut top = 0;
        while top + 1 < LEVELS && begins(level_shift(top + 1)) {
            top += 1;
        }
        for i in (0..=top).rev() {
            let idx = (self.now >> level_shift(i)) as usize & (LEVEL - 1);
            let mut list = std::mem::take(&mut self.levels[i][idx]);
            for e in list.drain(..) {
                self.place(e, e.slot());
            }
            // Entries of this block go below this level, never back into it:
            // the emptied list keeps its capacity for the next round.
            self.levels[i][idx] = list;
        }
    }

    /// Fires every entry whose deadline is at or before `now_ns`: appends
    /// them to `out`, in deadline order.
    fn advance(&mut self, now_ns: u64, out: &mut Vec<Entry>) {
        let start = out.len();
        // The slots that end by `now_ns` fire whole.
        let to = now_ns / SLOT_NS;
        self.len -= self.ready.len();
        out.append(&mut self.ready);
        while self.now < to {
            if self.len == 0 {
                // Nothing left to cascade or fire on the way.
                self.now = to;
                break;
            }
            self.now += 1;
            if self.now & (NEAR as u64 - 1) == 0 {
                self.cascade();
            }
            let slot = &mut self.near[self.now as usize & (NEAR - 1)];
            self.len -= slot.len();
            out.append(slot);
        }
        // The slot under way fires the part that is due, unless it begins a
        // block (its entries are not in the near lists before it begins:
        // they fire at its end).
        let running = self.now + 1;
        if running & (NEAR as u64 - 1) != 0 {
            let slot = &mut self.near[running as usize & (NEAR - 1)];
            let mut i = 0;
            while i < slot.len() {
                if slot[i].due_ns <= now_ns {
                    out.push(slot.swap_remove(i));
                    self.len -= 1;
                } else {
                    i += 1;
                }
            }
        }
        out[start..].sort_unstable_by_key(|e| (e.due_ns, e.seq));
    }

    /// When, within the `within` slots after `now`, the wheel next has
    /// something to fire (ns since boot): the earliest deadline of the first
    /// non-empty near list, or the end of a slot that begins a block (whose
    /// entries are only moved down when it begins).
    fn next_due_ns(&self, within: u64) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        if !self.ready.is_empty() {
            return Some(0);
        }
        (self.now + 1..=self.now + within).find_map(|s| {
            if s & (NEAR as u64 - 1) == 0 {
                Some(s * SLOT_NS)
            } else {
                self.near[s as usize & (NEAR - 1)]
                    .iter()
                    .map(|e| e.due_ns)
                    .min()
            }
        })
    }
}

/// Registrations not yet moved into the wheel.
struct Incoming {
    entries: Vec<Entry>,
    seq: u64,
}

/// What the thread that fires timeouts owns.
struct Firing {
    wheel: Wheel,
    /// Swapped with `Incoming::entries` so that both keep their capacity.
    spare: Vec<Entry>,
    due: Vec<Entry>,
    /// When the thread last fired something (ns since boot).
    last_fire_ns: u64,
}

pub struct Timer {
    boot: Instant,
    boot_fraction_cs: u64,
    starttime: u32,
    incoming: Mutex<Incoming>,
    /// Locked by the one thread that fires timeouts (the timer thread).
    firing: Mutex<Firing>,
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
            incoming: Mutex::new(Incoming {
                entries: Vec::new(),
                seq: 0,
            }),
            firing: Mutex::new(Firing {
                wheel: Wheel::new(0),
                spare: Vec::new(),
                due: Vec::new(),
                last_fire_ns: 0,
            }),
        }
    }

    /// Nanoseconds since boot.
    fn elapsed_ns(&self) -> u64 {
        self.boot.elapsed().as_nanos() as u64
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
        let due_ns = self.elapsed_ns() + ti as u64 * CENTISECOND_NS;
        let mut incoming = self.incoming.lock();
        let seq = incoming.seq;
        incoming.seq += 1;
        incoming.entries.push(Entry {
            due_ns,
            seq,
            handle,
            session,
        });
        true
    }

    /// Timeouts registered and not fired yet.
    pub fn pending(&self) -> usize {
        let waiting = self.incoming.lock().entries.len();
        waiting + self.firing.lock().wheel.len()
    }

    /// Moves new registrations into the wheel.
    fn take_incoming(&self, f: &mut Firing) {
        std::mem::swap(&mut self.incoming.lock().entries, &mut f.spare);
        for e in f.spare.drain(..) {
            f.wheel.insert(e);
        }
    }

    /// Fires what is due at `now_ns`: appends it to `out`. True if anything was.
    fn fire(&self, f: &mut Firing, now_ns: u64, out: &mut Vec<Expired>) -> bool {
        f.due.clear();
        f.wheel.advance(now_ns, &mut f.due);
        if f.due.is_empty() {
            return false;
        }
        f.last_fire_ns = now_ns;
        out.extend(f.due.iter().map(|e| Expired {
            handle: e.handle,
            session: e.session,
        }));
        true
    }

    /// Appends to `out` the timeouts that are due, in deadline order; if none
    /// is, first sleeps until the next deadline (but no sooner than
    /// [`COALESCE`] after the last firing), or one tick.
    pub fn wait_expired_into(&self, out: &mut Vec<Expired>) {
        let mut f = self.firing.lock();
        self.take_incoming(&mut f);
        let now_ns = self.elapsed_ns();
        let earliest_ns = f.last_fire_ns + COALESCE_NS;
        if now_ns >= earliest_ns && self.fire(&mut f, now_ns, out) {
            return;
        }
        // COALESCE < TICK: the wake is never before `earliest_ns`.
        let tick_ns = now_ns + TICK_NS;
        let wake_ns = match f.wheel.next_due_ns(TICK_NS.div_ceil(SLOT_NS)) {
            Some(due) => due.max(earliest_ns).min(tick_ns),
            None => tick_ns,
        };
        if wake_ns > now_ns {
            std::thread::sleep(Duration::from_nanos(wake_ns - now_ns));
        }
        self.take_incoming(&mut f);
        let now_ns = self.elapsed_ns();
        self.fire(&mut f, now_ns, out);
    }

    /// [`Self::wait_expired_into`] into a new vector.
    #[cfg(test)]
    pub fn wait_expired(&self) -> Vec<Expired> {
        let mut out = Vec::new();
        self.wait_expired_into(&mut out);
        out
    }

    /// The timer thread body: hands each batch of expired timeouts to `fire`
    /// and calls `tick` after each wake-up, until `quit` is set.
    pub fn run(&self, quit: &AtomicBool, mut fire: impl FnMut(&[Expired]), mut tick: impl FnMut()) {
        let mut due = Vec::new();
        while !quit.load(Ordering::Relaxed) {
            due.clear();
            self.wait_expired_into(&mut due);
            if !due.is_empty() {
                fire(&due);
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
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_MONOTONIC exists on
    // every supported system, so the call only writes `ts`.
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

    #[test]
    fn a_stream_of_timeouts_fires_in_batches_never_early() {
        let t = Timer::new();
        // 200 timeouts of 1 tick registered over some 4 ms: deadlines 20 µs apart.
        let mut deadlines = Vec::new();
        for i in 0..200 {
            deadlines.push(Instant::now() + Duration::from_millis(10));
            assert!(t.add(1, i, 1));
            std::thread::sleep(Duration::from_micros(20));
        }
        let mut fired = Vec::new();
        let mut batches = Vec::new();
        let start = Instant::now();
        while fired.len() < 200 && start.elapsed() < Duration::from_secs(5) {
            let due = t.wait_expired();
            if !due.is_empty() {
                let at = Instant::now();
                batches.push(t.firing.lock().last_fire_ns);
                for e in due {
                    assert!(at >= deadlines[e.session as usize], "early");
                    fired.push(e.session);
                }
            }
        }
        assert_eq!(fired, (0..200).collect::<Vec<_>>());
        for pair in batches.windows(2) {
            assert!(pair[1] - pair[0] >= COALESCE_NS, "{pair:?}");
        }
        assert!(
            batches.len() < 200,
            "not batched: {} firings",
            batches.len()
        );
    }

    #[test]
    fn a_lone_timeout_fires_soon_after_its_deadline() {
        let t = Timer::new();
        let start = Instant::now();
        assert!(t.add(1, 1, 2));
        let mut fired = None;
        while fired.is_none() && start.elapsed() < Duration::from_secs(2) {
            if !t.wait_expired().is_empty() {
                fired = Some(start.elapsed());
            }
        }
        let at = fired.expect("fired");
        assert!(at >= Duration::from_millis(20), "early: {at:?}");
        // The sleep's slack; generous for a loaded machine.
        assert!(at < Duration::from_millis(30), "late: {at:?}");
        assert_eq!(t.pending(), 0);
    }

    // The wheel alone, on slot numbers (deadlines in whole slots, so that
    // `slot()` is the slot given).

    fn entry(slot: u64, seq: u64) -> Entry {
        Entry {
            due_ns: slot * SLOT_NS,
            seq,
            handle: 1,
            session: seq as i32,
        }
    }

    /// Advances one slot at a time up to `to`, checking that nothing fires
    /// before its slot; returns (slot fired at, seq) in firing order.
    fn run_wheel(w: &mut Wheel, to: u64) -> Vec<(u64, u64)> {
        let mut fired = Vec::new();
        let mut out = Vec::new();
        while w.now < to {
            let next = w.now + 1;
            out.clear();
            w.advance(next * SLOT_NS, &mut out);
            for e in &out {
                assert!(e.slot() <= next, "slot {} fired early at {next}", e.slot());
                fired.push((next, e.seq));
            }
        }
        fired
    }

    #[test]
    fn wheel_fires_each_entry_in_its_slot_across_levels() {
        let base = 1_000;
        let mut w = Wheel::new(base);
        // Near, level 0, level 1, level 2, and block boundaries.
        let delays = [
            1u64,
            2,
            255,
            256,
            257,
            300,
            1_000,
            16_383,
            16_384,
            16_385,
            70_000,
            1 << 20,
        ];
        for (i, d) in delays.iter().enumerate() {
            w.insert(entry(base + d, i as u64));
        }
        assert_eq!(w.len(), delays.len());
        let fired = run_wheel(&mut w, base + (1 << 20) + 1);
        assert_eq!(fired.len(), delays.len());
        for (i, d) in delays.iter().enumerate() {
            assert_eq!(fired[i], (base + d, i as u64), "delay {d}");
        }
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn wheel_orders_a_slot_by_deadline_then_registration() {
        let mut w = Wheel::new(0);
        let e = |due_ns, seq| Entry {
            due_ns,
            seq,
            handle: 9,
            session: seq as i32,
        };
        // All in slot 600 (599 ms < deadline <= 600 ms), some via a cascade.
        w.insert(e(600 * SLOT_NS, 0));
        w.insert(e(599 * SLOT_NS + 10, 1));
        w.insert(e(599 * SLOT_NS + 10, 2));
        w.insert(e(599 * SLOT_NS + 500, 3));
        let mut out = Vec::new();
        w.advance(599 * SLOT_NS, &mut out);
        assert!(out.is_empty());
        w.insert(e(599 * SLOT_NS + 10, 4));
        w.advance(600 * SLOT_NS, &mut out);
        let order: Vec<u64> = out.iter().map(|e| e.seq).collect();
        assert_eq!(order, vec![1, 2, 4, 3, 0]);
    }

    #[test]
    fn wheel_fires_the_due_part_of_the_slot_under_way() {
        let mut w = Wheel::new(100);
        let e = |due_ns, seq| Entry {
            due_ns,
            seq,
            handle: 3,
            session: seq as i32,
        };
        // Slot 101 spans (100 ms, 101 ms].
        w.insert(e(100 * SLOT_NS + 700_000, 0));
        w.insert(e(100 * SLOT_NS + 300_000, 1));
        w.insert(e(100 * SLOT_NS + 300_000, 2));
        assert_eq!(w.next_due_ns(3), Some(100 * SLOT_NS + 300_000));
        let mut out = Vec::new();
        w.advance(100 * SLOT_NS + 299_999, &mut out);
        assert!(out.is_empty(), "early");
        w.advance(100 * SLOT_NS + 300_000, &mut out);
        assert_eq!(out.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(w.len(), 1);
        assert_eq!(w.next_due_ns(3), Some(100 * SLOT_NS + 700_000));
        out.clear();
        w.advance(100 * SLOT_NS + 699_999, &mut out);
        assert!(out.is_empty(), "early");
        w.advance(101 * SLOT_NS, &mut out);
        assert_eq!(out.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![0]);
        assert_eq!(w.next_due_ns(3), None);
        // A slot that begins a block fires at its end, when it has begun.
        w.insert(e(255 * SLOT_NS + 1, 5));
        assert_eq!(w.next_due_ns(300), Some(256 * SLOT_NS));
        out.clear();
        w.advance(255 * SLOT_NS + 500_000, &mut out);
        assert!(out.is_empty());
        w.advance(256 * SLOT_NS, &mut out);
        assert_eq!(out.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5]);
    }

    #[test]
    fn wheel_fires_late_inserts_at_once() {
        let mut w = Wheel::new(500);
        w.insert(entry(100, 1));
        w.insert(entry(500, 2));
        assert_eq!(w.next_due_ns(3), Some(0));
        let mut out = Vec::new();
        w.advance(500 * SLOT_NS, &mut out);
        assert_eq!(out.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn wheel_jumps_over_idle_time_and_wraps_the_top_level() {
        // Start just below a top-level boundary: an entry beyond it goes to
        // the overflow list and still fires in its slot.
        let boundary = 1u64 << TOP_SHIFT;
        let mut w = Wheel::new(boundary - 3);
        w.insert(entry(boundary + 2, 1));
        w.insert(entry(boundary - 1, 0));
        assert_eq!(w.overflow.len(), 1);
        let fired = run_wheel(&mut w, boundary + 5);
        assert_eq!(fired, vec![(boundary - 1, 0), (boundary + 2, 1)]);
        // Nothing pending: a long jump costs nothing and fires nothing.
        let mut out = Vec::new();
        w.advance((boundary + (1 << 30)) * SLOT_NS, &mut out);
        assert!(out.is_empty());
        assert_eq!(w.now, boundary + (1 << 30));
        // Still consistent after the jump.
        w.insert(entry(w.now + 70_000, 7));
        let end = w.now + 70_000;
        assert_eq!(run_wheel(&mut w, end), vec![(end, 7)]);
    }

    #[test]
    fn wheel_random_load_never_early_never_late_in_order() {
        // A deterministic pseudo-random mix of delays up to ~18 minutes, with
        // inserts between advances, checked against a sorted model.
        let mut w = Wheel::new(12_345);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut model = Vec::new();
        let mut fired = Vec::new();
        let mut out = Vec::new();
        let mut seq = 0u64;
        let end = 12_345 + 2_000_000;
        while w.now < end {
            for _ in 0..(rnd() % 3) {
                let delay = match rnd() % 4 {
                    0 => 1 + rnd() % 300,
                    1 => 1 + rnd() % 20_000,
                    2 => 1 + rnd() % 1_100_000,
                    _ => 256 - (w.now % 256) + rnd() % 3,
                };
                let due_ns = (w.now + delay) * SLOT_NS - rnd() % SLOT_NS;
                let e = Entry {
                    due_ns,
                    seq,
                    handle: 1,
                    session: 0,
                };
                seq += 1;
                if e.slot() <= end {
                    model.push(e);
                }
                w.insert(e);
            }
            let from = w.now;
            let to = (from + 1 + rnd() % 700).min(end);
            out.clear();
            w.advance(to * SLOT_NS, &mut out);
            for e in &out {
                assert!(e.slot() <= to, "early");
                // Every slot was after `from` when inserted: it fires in the
                // advance that passes it.
                assert!(e.slot() > from, "late: slot {} fired at {to}", e.slot());
                fired.push(*e);
            }
        }
        assert!(model.len() > 2_000, "only {} entries", model.len());
        model.sort_by_key(|e| (e.due_ns, e.seq));
        assert_eq!(fired.len(), model.len());
        // Within each advance the order is by deadline; across advances by
        // slot; so the whole sequence is sorted like the model.
        assert_eq!(fired, model);
    }
}
