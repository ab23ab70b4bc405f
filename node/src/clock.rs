//! Wall-clock time behind a trait, so that the simulator can run the node's logic on virtual time.
//! Timers and timeouts go through tokio's clock, which a simulation pauses and advances itself.

use std::time::{SystemTime, UNIX_EPOCH};

/// Where the node reads the time of day (timestamps it records, expiry it checks).
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}
