//! Wall-clock time behind a trait, so that the simulator can run the node's logic on virtual time.
//! Timers and timeouts go through tokio's clock, which a simulation pauses and advances itself.
//! [`NeverAhead`] is the time of day as garbage collection must see it: jumps forward are absorbed.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

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

/// How much faster than the monotonic clock a [`NeverAhead`] clock may run while it catches up with
/// a time of day that jumped ahead of it: a tenth, so an hour's jump is absorbed over ten hours.
const CATCH_UP_RATE: f64 = 1.1;

/// A time of day that may go back at once but goes forward at most a tenth faster than the monotonic
/// clock. A forward jump of the underlying clock (an NTP step, an operator's change) therefore shows
/// only gradually. Garbage collection counts chunk ages on it, so no jump can make a chunk written a
/// moment ago look older than the grace period; after a backward jump chunks look younger (kept
/// longer), which is safe.
pub struct NeverAhead {
    inner: Arc<dyn Clock>,
    /// The last reading, and when (monotonic) it was taken.
    last: Mutex<(u64, Instant)>,
}

impl NeverAhead {
    /// Starts at `inner`'s current time.
    pub fn new(inner: Arc<dyn Clock>) -> NeverAhead {
        let now = inner.now_ms();
        NeverAhead {
            inner,
            last: Mutex::new((now, Instant::now())),
        }
    }
}

impl Clock for NeverAhead {
    fn now_ms(&self) -> u64 {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let (last_ms, last_at) = *last;
        let elapsed_ms = last_at.elapsed().as_millis() as f64;
        let furthest = last_ms.saturating_add((elapsed_ms * CATCH_UP_RATE) as u64);
        let now = self.inner.now_ms().min(furthest);
        *last = (now, Instant::now());
        now
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::time::Duration;

    use super::*;

    /// Virtual time plus an offset a test moves.
    struct Jumpy {
        start: Instant,
        offset_ms: AtomicI64,
    }

    impl Clock for Jumpy {
        fn now_ms(&self) -> u64 {
            let base = 1_000_000_000 + self.start.elapsed().as_millis() as u64;
            base.saturating_add_signed(self.offset_ms.load(Ordering::Relaxed))
        }
    }

    const HOUR_MS: i64 = 3_600_000;

    #[tokio::test(start_paused = true)]
    async fn jumps_forward_are_absorbed_and_jumps_back_pass_through() {
        let jumpy = Arc::new(Jumpy {
            start: Instant::now(),
            offset_ms: AtomicI64::new(0),
        });
        let clock = NeverAhead::new(jumpy.clone());
        let start = clock.now_ms();
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(clock.now_ms(), start + 10_000, "no jump: the same time");

        jumpy.offset_ms.store(HOUR_MS, Ordering::Relaxed);
        tokio::time::advance(Duration::from_secs(10)).await;
        let after_jump = clock.now_ms();
        assert_eq!(
            after_jump,
            start + 20_000 + 1_000,
            "ten seconds at 1.1x, not an hour"
        );

        jumpy.offset_ms.store(-HOUR_MS, Ordering::Relaxed);
        let back = clock.now_ms();
        assert_eq!(back, jumpy.now_ms(), "a jump back shows at once");
        jumpy.offset_ms.store(0, Ordering::Relaxed);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            clock.now_ms(),
            back + 11_000,
            "back and forth again: still only 1.1x"
        );

        tokio::time::advance(Duration::from_secs(20 * 3600)).await;
        assert_eq!(clock.now_ms(), jumpy.now_ms(), "caught up at last");
    }
}
