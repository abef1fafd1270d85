//! [`Beat`]: the link heartbeat's bookkeeping and decisions.
//!
//! Two layers find a peer that is gone without closing its socket:
//!
//! * TCP: keepalive probes after 2 s of silence, every 1 s, 3 tries; and
//!   TCP_USER_TIMEOUT 5 s for data left unacknowledged (see
//!   [`crate::cluster::net`]). This works with any peer, including skynet
//!   1.8 nodes.
//! * Application: when nothing has been received for [`PING_IDLE`], the
//!   link sends a probe frame to local id 0 (type TEXT, payload [`PING`]; no
//!   service ever has id 0). This runtime answers it with a frame to id 0
//!   (type RESPONSE, [`PONG`]) from the link itself, without involving any
//!   service. If nothing at all arrives within [`PONG_TIMEOUT`] after the
//!   probe was actually written, the link is declared dead. A skynet 1.8
//!   peer answers the probe with an ERROR frame (and logs one "Unknown
//!   destination" line); the link then stops probing and relies on TCP.
//!
//! So a silent peer (host down, process stopped, harbor thread stuck) is
//! detected in about PING_IDLE + PONG_TIMEOUT ≈ 3 s; a killed process is
//! detected at once by its EOF/RST.
//!
//! The readers, the writer and the heartbeat timer of one link share a
//! [`Beat`] (atomics: workers read links too); the clock is the cluster's,
//! in milliseconds, passed in by the caller.

use crate::message::ptype;
use skynet_proto::harbor::Trailer;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Silence on a link before a heartbeat probe is sent.
pub const PING_IDLE: Duration = Duration::from_millis(1000);
/// Time allowed for any byte to arrive after a probe was written.
pub const PONG_TIMEOUT: Duration = Duration::from_millis(2000);
/// How often the heartbeat looks at the link.
pub const HEARTBEAT_TICK: Duration = Duration::from_millis(250);
/// Local id 0 never names a service: frames to it are link heartbeats.
pub const HEARTBEAT_DEST: u32 = 0;
/// Payload of a heartbeat probe (type TEXT).
pub const PING: &[u8] = b"PING";
/// Payload of the answer to a probe (type RESPONSE).
pub const PONG: &[u8] = b"PONG";

/// What the heartbeat timer should do now.
#[derive(Debug, PartialEq, Eq)]
pub enum BeatCheck {
    Wait,
    /// Queue a probe.
    Ping,
    /// The probe went unanswered: the link is dead.
    Dead {
        silent_ms: u64,
    },
}

/// What a heartbeat frame from the peer asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum BeatReply {
    Nothing,
    /// Answer the peer's probe.
    Pong,
    /// The peer answered our probe with ERROR: it does not speak the
    /// heartbeat (the first time only; probing stops).
    LegacyPeer,
}

/// Heartbeat state of one link.
pub struct Beat {
    /// ms (cluster clock) of the last byte received.
    last_rx: AtomicU64,
    /// ms when the last probe was written (0: none yet).
    ping_written: AtomicU64,
    ping_queued: AtomicBool,
    /// The peer does not speak the heartbeat (a skynet 1.8 node).
    legacy: AtomicBool,
}

impl Beat {
    /// A link that just came up at `now_ms`.
    pub fn new(now_ms: u64) -> Beat {
        Beat {
            last_rx: AtomicU64::new(now_ms),
            ping_written: AtomicU64::new(0),
            ping_queued: AtomicBool::new(false),
            legacy: AtomicBool::new(false),
        }
    }

    /// Bytes arrived.
    pub fn received(&self, now_ms: u64) {
        self.last_rx.store(now_ms, Ordering::Relaxed);
    }

    /// The writer wrote (and flushed) a probe.
    pub fn ping_written(&self, now_ms: u64) {
        self.ping_written.store(now_ms.max(1), Ordering::Relaxed);
        self.ping_queued.store(false, Ordering::Relaxed);
    }

    /// A heartbeat tick. `Ping` is returned once per probe: the caller
    /// queues it, and the next one comes after the writer wrote it.
    pub fn check(&self, now_ms: u64) -> BeatCheck {
        if self.legacy.load(Ordering::Relaxed) {
            return BeatCheck::Wait;
        }
        let idle = PING_IDLE.as_millis() as u64;
        let patience = PONG_TIMEOUT.as_millis() as u64;
        let last = self.last_rx.load(Ordering::Relaxed);
        let written = self.ping_written.load(Ordering::Relaxed);
        let unanswered = written != 0 && last < written;
        if unanswered && now_ms.saturating_sub(written) >= patience {
            return BeatCheck::Dead {
                silent_ms: now_ms.saturating_sub(last),
            };
        }
        if !unanswered
            && now_ms.saturating_sub(last) >= idle
            && !self.ping_queued.swap(true, Ordering::Relaxed)
        {
            return BeatCheck::Ping;
        }
        BeatCheck::Wait
    }

    /// A frame to [`HEARTBEAT_DEST`] arrived.
    pub fn on_frame(&self, t: &Trailer) -> BeatReply {
        match t.ptype {
            ptype::TEXT => BeatReply::Pong,
            ptype::ERROR if !self.legacy.swap(true, Ordering::Relaxed) => BeatReply::LegacyPeer,
            _ => BeatReply::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: u64 = PING_IDLE.as_millis() as u64;
    const PATIENCE: u64 = PONG_TIMEOUT.as_millis() as u64;

    #[test]
    fn a_silent_peer_is_probed_then_declared_dead() {
        let b = Beat::new(100);
        assert_eq!(b.check(100 + IDLE - 1), BeatCheck::Wait);
        assert_eq!(b.check(100 + IDLE), BeatCheck::Ping);
        // One probe at a time, however long the writer takes.
        assert_eq!(b.check(100 + IDLE + 500), BeatCheck::Wait);
        let written = 100 + IDLE + 600;
        b.ping_written(written);
        assert_eq!(b.check(written + PATIENCE - 1), BeatCheck::Wait);
        assert_eq!(
            b.check(written + PATIENCE),
            BeatCheck::Dead {
                silent_ms: IDLE + 600 + PATIENCE
            }
        );
    }

    #[test]
    fn any_byte_answers_the_probe() {
        let b = Beat::new(0);
        assert_eq!(b.check(IDLE), BeatCheck::Ping);
        b.ping_written(IDLE);
        b.received(IDLE + 10);
        assert_eq!(b.check(IDLE + 500), BeatCheck::Wait);
        // Silent again for PING_IDLE: a new probe, not the end.
        assert_eq!(b.check(2 * IDLE + 10), BeatCheck::Ping);
        assert_eq!(b.check(IDLE + PATIENCE), BeatCheck::Wait);
    }

    #[test]
    fn traffic_keeps_the_probe_away() {
        let b = Beat::new(0);
        for t in (0..10 * IDLE).step_by(100) {
            b.received(t);
            assert_eq!(b.check(t + 50), BeatCheck::Wait);
        }
    }

    #[test]
    fn a_legacy_peer_is_not_probed_again() {
        let b = Beat::new(0);
        let frame = |ptype| Trailer {
            source: 0x0200_0000,
            destination: HEARTBEAT_DEST,
            ptype,
            session: 0,
        };
        assert_eq!(b.on_frame(&frame(ptype::TEXT)), BeatReply::Pong);
        assert_eq!(b.on_frame(&frame(ptype::RESPONSE)), BeatReply::Nothing);
        assert_eq!(b.check(IDLE), BeatCheck::Ping);
        b.ping_written(IDLE);
        assert_eq!(b.on_frame(&frame(ptype::ERROR)), BeatReply::LegacyPeer);
        assert_eq!(b.on_frame(&frame(ptype::ERROR)), BeatReply::Nothing);
        assert_eq!(b.check(IDLE + 10 * PATIENCE), BeatCheck::Wait);
    }
}
