//! Each simulated node's time of day: the run's virtual time (tokio's paused clock) plus the node's own
//! offset, which clock faults skew and make jump.

use std::sync::atomic::{AtomicI64, Ordering};

use arca_node::clock::Clock;
use tokio::time::Instant;

/// 2026-01-01T00:00:00Z, when every simulated run's day begins.
const EPOCH_MS: u64 = 1_767_225_600_000;

/// A node's clock.
pub struct SimClock {
    started: Instant,
    offset_ms: AtomicI64,
}

impl SimClock {
    /// A clock reading the run's virtual time, with no offset.
    pub fn new(started: Instant) -> SimClock {
        SimClock {
            started,
            offset_ms: AtomicI64::new(0),
        }
    }

    /// Moves this clock by `ms` (negative: backwards).
    pub fn shift(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// The current offset from the run's virtual time.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        let virtual_ms = EPOCH_MS + self.started.elapsed().as_millis() as u64;
        virtual_ms.saturating_add_signed(self.offset_ms())
    }
}
