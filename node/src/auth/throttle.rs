//! Throttling of password guessing. Failed password checks are counted per user name and per source
//! address over a fixed window; once either count reaches its limit, further password attempts for
//! that name or from that address are refused at once (429, with the time left), without the argon2
//! work, until the window ends. A correct password clears its name's count. Tokens are not
//! throttled: they are 256-bit random secrets, looked up by hash, and cost nothing to refuse.
//!
//! [`WindowCounts`] (events per key over fixed windows) serves the audit trail's budget for callers
//! without credentials too.
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

/// How long events are counted for, and how long a throttled name or address waits.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Failed passwords per user name within [`WINDOW`] before that name is throttled.
pub const NAME_LIMIT: u32 = 10;
/// Failed passwords per source address within [`WINDOW`] before that address is throttled.
pub const SOURCE_LIMIT: u32 = 30;
/// Keys tracked at most by a [`WindowCounts`] (beyond, windows that ended are dropped; then all).
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
    count: u32,
}

/// Events counted per key over fixed windows of [`WINDOW`] (at most [`TRACKED`] keys: beyond,
/// windows that ended are dropped, then all).
#[derive(Debug)]
pub struct WindowCounts<K> {
    windows: Mutex<HashMap<K, Window>>,
}

impl<K> Default for WindowCounts<K> {
    fn default() -> Self {
        WindowCounts {
            windows: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: std::hash::Hash + Eq> WindowCounts<K> {
    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<K, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Some(time left)` when `key` has reached `limit` in its current window.
    pub fn over(&self, key: &K, limit: u32) -> Option<Duration> {
        let windows = self.windows();
        let window = windows.get(key)?;
        let age = window.started.elapsed();
        (age < WINDOW && window.count >= limit).then(|| WINDOW - age)
    }

    /// Counts one more event of `key`.
    pub fn add(&self, key: K) {
        let now = Instant::now();
        let mut windows = self.windows();
        if windows.len() >= TRACKED {
            windows.retain(|_, window| now.duration_since(window.started) < WINDOW);
            if windows.len() >= TRACKED {
                windows.clear();
            }
        }
        let window = windows.entry(key).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                count: 0,
            };
        }
        window.count += 1;
    }

    /// Forgets `key`'s count.
    pub fn clear(&self, key: &K) {
        self.windows().remove(key);
    }

    /// Counts one more event of `key` unless it reached `limit` already: true when counted.
    pub fn admit(&self, key: K, limit: u32) -> bool {
        if self.over(&key, limit).is_some() {
            return false;
        }
        self.add(key);
        true
    }
}

/// Failed password checks per name and per source address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: WindowCounts<Guesser>,
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

    /// `Err(wait)` when a password attempt for `name` (from the current request's source) is to
    /// be refused unchecked.
    pub fn check(&self, name: &str) -> Result<(), Duration> {
        for (guesser, limit) in Self::guessers(name) {
            if let Some(wait) = self.failures.over(&guesser, limit) {
                return Err(wait);
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
        for (guesser, _) in Self::guessers(name) {
            self.failures.add(guesser);
        }
    }

    /// A right password for `name`: its count starts again (its source's does not).
    pub fn succeeded(&self, name: &str) {
        self.failures.clear(&Guesser::Name(name.to_string()));
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
