//! Throttling of password guessing. Failed password checks are counted per user name and per source
//! address over a fixed window; once either count reaches its limit, further password attempts for
//! that name or from that address are refused at once (429, with the time left), without the argon2
//! work, until the window ends. A correct password clears its name's count. Tokens are not
//! throttled: they are 256-bit random secrets, looked up by hash, and cost nothing to refuse.
//!
//! The source address of the request being served is kept in a task-local by [`remember_source`],
//! the router's outermost layer, so the password check deep in any front-end's authentication sees
//! it without every caller passing it along.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;

/// How long failures are counted for, and how long a throttled name or address waits.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Failed passwords per user name within [`WINDOW`] before that name is throttled.
pub const NAME_LIMIT: u32 = 10;
/// Failed passwords per source address within [`WINDOW`] before that address is throttled.
pub const SOURCE_LIMIT: u32 = 30;
/// Names and addresses tracked at most (beyond, windows that ended are dropped; then all).
const TRACKED: usize = 100_000;

/// The request being served: where it comes from, and whether a failure was counted for it
/// already (a request may be authenticated more than once: by the audit layer and its handler).
#[derive(Debug)]
struct RequestSource {
    address: IpAddr,
    counted: AtomicBool,
}

tokio::task_local! {
    static SOURCE: Arc<RequestSource>;
}

/// Runs the request with its source address known to [`LoginThrottle`].
pub async fn remember_source(request: Request, next: Next) -> Response {
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_canonical());
    match source {
        Some(address) => {
            let source = Arc::new(RequestSource {
                address,
                counted: AtomicBool::new(false),
            });
            SOURCE.scope(source, next.run(request)).await
        }
        None => next.run(request).await,
    }
}

/// Who is guessing: a user name or a source address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Guesser {
    Name(String),
    Source(IpAddr),
}

#[derive(Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failed password checks per name and per source address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    windows: Mutex<HashMap<Guesser, Window>>,
}

impl LoginThrottle {
    fn guessers(name: &str) -> [(Guesser, u32); 2] {
        let source = SOURCE
            .try_with(|source| source.address)
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        [
            (Guesser::Name(name.to_string()), NAME_LIMIT),
            (Guesser::Source(source), SOURCE_LIMIT),
        ]
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<Guesser, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Err(wait)` when a password attempt for `name` (from the current request's source) is to
    /// be refused unchecked.
    pub fn check(&self, name: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let windows = self.windows();
        for (guesser, limit) in Self::guessers(name) {
            if let Some(window) = windows.get(&guesser) {
                let age = now.duration_since(window.started);
                if age < WINDOW && window.failures >= limit {
                    return Err(WINDOW - age);
                }
            }
        }
        Ok(())
    }

    /// Counts a wrong password for `name` from the current request's source (once per request).
    pub fn failed(&self, name: &str) {
        let already = SOURCE
            .try_with(|source| source.counted.swap(true, Ordering::Relaxed))
            .unwrap_or(false);
        if already {
            return;
        }
        let now = Instant::now();
        let mut windows = self.windows();
        if windows.len() >= TRACKED {
            windows.retain(|_, window| now.duration_since(window.started) < WINDOW);
            if windows.len() >= TRACKED {
                windows.clear();
            }
        }
        for (guesser, _) in Self::guessers(name) {
            let window = windows.entry(guesser).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(window.started) >= WINDOW {
                *window = Window {
                    started: now,
                    failures: 0,
                };
            }
            window.failures += 1;
        }
    }

    /// A right password for `name`: its count starts again (its source's does not).
    pub fn succeeded(&self, name: &str) {
        self.windows().remove(&Guesser::Name(name.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_and_sources_are_throttled_past_their_limits() {
        let throttle = LoginThrottle::default();
        let from = |last: u8| {
            Arc::new(RequestSource {
                address: IpAddr::from([10, 0, 0, last]),
                counted: AtomicBool::new(false),
            })
        };
        SOURCE
            .scope(from(1), async {
                for _ in 0..NAME_LIMIT {
                    assert!(throttle.check("alice").is_ok());
                    // Each attempt is a request of its own.
                    SOURCE.with(|source| source.counted.store(false, Ordering::Relaxed));
                    throttle.failed("alice");
                    throttle.failed("alice");
                }
                let wait = throttle.check("alice").expect_err("throttled");
                assert!(wait <= WINDOW && wait > WINDOW / 2, "{wait:?}");
                assert!(throttle.check("bob").is_ok(), "other names are not");
            })
            .await;
        // From elsewhere, the name is still throttled.
        SOURCE
            .scope(from(2), async {
                assert!(throttle.check("alice").is_err());
                throttle.succeeded("alice");
                assert!(
                    throttle.check("alice").is_ok(),
                    "a right password clears it"
                );
            })
            .await;
        // One address guessing many names is throttled by its own count.
        SOURCE
            .scope(from(3), async {
                for attempt in 0..SOURCE_LIMIT {
                    SOURCE.with(|source| source.counted.store(false, Ordering::Relaxed));
                    throttle.failed(&format!("user-{attempt}"));
                }
                assert!(throttle.check("carol").is_err());
            })
            .await;
        SOURCE
            .scope(from(4), async { assert!(throttle.check("carol").is_ok()) })
            .await;
    }
}
