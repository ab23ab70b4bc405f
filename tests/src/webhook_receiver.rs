//! A webhook receiver on 127.0.0.1 for tests: it checks each post's Standard Webhooks signature
//! with its own HMAC-SHA256 (ring's, not the node's code), keeps what it took, can be told to
//! answer errors, and can go away and come back on the same port.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// How far a timestamp may be from the receiver's clock (Standard Webhooks suggests 5 minutes).
const TOLERANCE_SECONDS: u64 = 300;

/// What the receiver saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Events taken (signature good, answered 2xx), in the order they came, duplicates included.
    pub taken: Vec<Value>,
    /// When each of `taken` came.
    pub taken_at: Vec<Instant>,
    /// Posts whose signature, id or timestamp did not check out.
    pub forged: usize,
    /// Posts answered with an error on purpose.
    pub refused: usize,
    /// Posts to answer with 500 before taking any again.
    fail_next: usize,
    /// Answer every post with 500.
    fail_all: bool,
}

impl Seen {
    /// The distinct ids of events taken of type `kind`.
    pub fn ids_of(&self, kind: &str) -> BTreeSet<u64> {
        self.taken
            .iter()
            .filter(|event| event["type"] == kind)
            .filter_map(|event| event["id"].as_str()?.parse().ok())
            .collect()
    }
}

struct Shared {
    key: Vec<u8>,
    seen: Mutex<Seen>,
}

/// A receiver, stopped when dropped.
pub struct Receiver {
    shared: Arc<Shared>,
    port: u16,
    server: Option<tokio::task::JoinHandle<()>>,
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
}

impl Receiver {
    /// A receiver verifying with `secret` (`whsec_<base64>` or raw), listening.
    pub async fn start(secret: &str) -> Result<Receiver> {
        let mut receiver = Receiver::reserved(secret)?;
        receiver.resume().await?;
        Ok(receiver)
    }

    /// A receiver verifying with `secret` whose port is chosen but which does not listen yet
    /// ([`Receiver::resume`] starts it).
    pub fn reserved(secret: &str) -> Result<Receiver> {
        let key = match secret.strip_prefix("whsec_") {
            Some(encoded) => STANDARD.decode(encoded)?,
            None => secret.as_bytes().to_vec(),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        Ok(Receiver {
            shared: Arc::new(Shared {
                key,
                seen: Mutex::default(),
            }),
            port,
            server: None,
            url: format!("http://127.0.0.1:{port}/hook"),
        })
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Listens again on its port.
    pub async fn resume(&mut self) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await?;
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(take))
            .with_state(self.shared.clone());
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
        Ok(())
    }

    /// Stops listening: posts are refused at the TCP level until [`Receiver::resume`]. (Every
    /// answer closes its connection, so none stays open to reach it through.)
    pub fn go_away(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// What it saw so far.
    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.shared.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers the next `count` posts with 500.
    pub fn fail_next(&self, count: usize) {
        self.seen().fail_next = count;
    }

    /// Answers every post with 500 (`true`) or takes them again (`false`).
    pub fn fail_all(&self, fail: bool) {
        self.seen().fail_all = fail;
    }

    /// Waits until `done` holds of what it saw, for at most `limit`.
    pub async fn wait_for(&self, limit: Duration, done: impl Fn(&Seen) -> bool) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.seen()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the receiver did not see what was expected: {:?}",
                    self.seen()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.go_away();
    }
}

/// True when the headers carry a valid signature of `body` under `key`, with a timestamp near
/// now.
fn verified(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        text("webhook-id"),
        text("webhook-timestamp"),
        text("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(sent_at) = timestamp.parse::<u64>() else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now.abs_diff(sent_at) > TOLERANCE_SECONDS {
        return false;
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    signatures.split(' ').any(|signature| {
        signature
            .strip_prefix("v1,")
            .and_then(|encoded| STANDARD.decode(encoded).ok())
            .is_some_and(|tag| ring::hmac::verify(&key, &signed, &tag).is_ok())
    })
}

async fn take(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let close = [(header::CONNECTION, "close")];
    let mut seen = shared.seen.lock().unwrap_or_else(|p| p.into_inner());
    if !verified(&shared.key, &headers, &body) {
        seen.forged += 1;
        return (StatusCode::UNAUTHORIZED, close);
    }
    if seen.fail_all || seen.fail_next > 0 {
        seen.fail_next = seen.fail_next.saturating_sub(1);
        seen.refused += 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, close);
    }
    let id_matches = |event: &Value| {
        headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|id| event["id"] == id)
    };
    match serde_json::from_slice::<Value>(&body) {
        Ok(event) if id_matches(&event) => {
            seen.taken.push(event);
            seen.taken_at.push(Instant::now());
            (StatusCode::NO_CONTENT, close)
        }
        _ => {
            seen.forged += 1;
            (StatusCode::BAD_REQUEST, close)
        }
    }
}
