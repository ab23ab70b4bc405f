//! A circuit breaker: after a run of failures a dependency (an upstream registry, the object store
//! chunks live in) is not asked for a while, so callers fail fast instead of queueing behind
//! timeouts; after the cooldown one request is let through, and its outcome closes or reopens it.

use std::time::{Duration, Instant};

/// Consecutive failures after which a circuit opens.
const THRESHOLD: u32 = 5;

/// One dependency's circuit.
#[derive(Debug, Default)]
pub struct CircuitBreaker {
    failures: u32,
    open_until: Option<Instant>,
}

impl CircuitBreaker {
    /// True when a request may go out now. An open circuit whose cooldown has passed lets this one
    /// through (half open): a failure opens it again at once.
    pub fn allows(&mut self) -> bool {
        match self.open_until {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                self.open_until = None;
                self.failures = THRESHOLD - 1;
                true
            }
            None => true,
        }
    }

    /// A request succeeded: the circuit closes.
    pub fn succeeded(&mut self) {
        *self = CircuitBreaker::default();
    }

    /// A request failed: after [`THRESHOLD`] in a row the circuit opens for `cooldown`.
    pub fn failed(&mut self, cooldown: Duration) {
        self.failures += 1;
        if self.failures >= THRESHOLD {
            self.open_until = Some(Instant::now() + cooldown);
        }
    }

    /// True while requests are refused.
    pub fn is_open(&self) -> bool {
        self.open_until.is_some_and(|until| Instant::now() < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_a_run_of_failures_and_lets_one_through_after_the_cooldown() {
        let mut breaker = CircuitBreaker::default();
        for _ in 0..THRESHOLD - 1 {
            breaker.failed(Duration::from_secs(60));
        }
        assert!(breaker.allows(), "below the threshold");
        breaker.failed(Duration::from_secs(60));
        assert!(!breaker.allows() && breaker.is_open());
        let mut cooled = CircuitBreaker::default();
        for _ in 0..THRESHOLD {
            cooled.failed(Duration::ZERO);
        }
        assert!(cooled.allows(), "half open after the cooldown");
        cooled.failed(Duration::from_secs(60));
        assert!(!cooled.allows(), "one more failure opens it again");
        cooled.succeeded();
        assert!(cooled.allows());
    }
}
