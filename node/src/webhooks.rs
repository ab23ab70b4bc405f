//! Webhook delivery: the leader posts each webhook the events it asked for, in order, as signed
//! CloudEvents, at least once.
//!
//! - **Outbox.** The replicated audit trail is the outbox and each webhook's cursor (the last
//!   event id delivered or passed over) is replicated with it, so an event committed before a
//!   crash, a restart or a change of leader is delivered afterwards by whichever node leads. The
//!   cursor advances through Raft when the task goes idle, after a failure, and every
//!   [`RECORD_EVERY`] (or [`BATCH`] posts) while events keep coming: an event delivered just
//!   before a crash may be posted again (receivers deduplicate on `webhook-id`), none is lost
//!   while the trail keeps it.
//! - **One sender.** Only the leader delivers, one task per webhook; a node that stops leading
//!   stops its tasks.
//! - **Signature.** As Standard Webhooks: `webhook-id` (the event id), `webhook-timestamp` (unix
//!   seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`; a
//!   receiver refuses old timestamps and ids it has seen, which makes a replay useless.
//! - **Failure.** A failed attempt (no 2xx answer in time) is retried after a wait that doubles
//!   with each failure in a row, with jitter, up to a ceiling; after `webhook_disable_after`
//!   failures in a row the webhook is disabled with the reason. Every attempt goes in the
//!   webhook's delivery log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arca_protocol::Command;
use arca_protocol::api::CloudEvent;
use arca_protocol::model::{Webhook, WebhookDelivery};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use ring::hmac;

use crate::clock::Clock;
use crate::meta::keys;
use crate::meta::tables::Table;
use crate::meta::webhooks::{webhook, webhooks};
use crate::meta::{Meta, StateRead};
use crate::secrets::ClusterKeys;

/// Events posted per batch: the cursor is committed after each.
const BATCH: usize = 100;
/// How long one post may take.
pub const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the leader looks for webhooks created, deleted or enabled.
const RECONCILE_EVERY: Duration = Duration::from_millis(500);
/// While events keep coming, a webhook's cursor (and its log) is committed this often, or after
/// [`BATCH`] attempts.
const RECORD_EVERY: Duration = Duration::from_millis(250);
/// The longest an idle delivery task waits for a change before it looks again.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// A cursor moved past events a webhook did not ask for is committed once it is this far ahead
/// of the committed one, or [`PASSED_OVER_AGE`] after it moved.
const PASSED_OVER_EVENTS: u64 = 1000;
/// See [`PASSED_OVER_EVENTS`].
const PASSED_OVER_AGE: Duration = Duration::from_secs(10);
/// The type a delivery-log entry of events lost before delivery is given.
pub const GAP_EVENT: &str = "io.arca.webhook.gap";
/// The prefix of a secret in Standard Webhooks' form, whose rest is the key in base64.
const STANDARD_SECRET_PREFIX: &str = "whsec_";

/// When to retry and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The wait after the first failure.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Failures in a row that disable a webhook.
    pub disable_after: u32,
}

impl RetryPolicy {
    /// The wait after `failures` failures in a row: doubling from `base` up to `max`, then a
    /// random half to all of it, so that receivers coming back are not met by every sender at
    /// once.
    fn backoff(&self, failures: u32) -> Duration {
        let doubled = self
            .base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        let ceiling = doubled.min(self.max);
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// The key a webhook's secret signs with: a `whsec_<base64>` secret's decoded bytes, any other
/// secret's own bytes.
pub fn signing_key(secret: &str) -> Result<Vec<u8>, String> {
    match secret.strip_prefix(STANDARD_SECRET_PREFIX) {
        Some(encoded) => STANDARD
            .decode(encoded)
            .map_err(|error| format!("a whsec_ secret is base64 after the prefix: {error}")),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// A new secret in Standard Webhooks' form (24 random bytes).
pub fn new_secret() -> String {
    format!(
        "{STANDARD_SECRET_PREFIX}{}",
        STANDARD.encode(rand::rng().random::<[u8; 24]>())
    )
}

/// The `webhook-signature` header value of `body` sent as event `id` at `timestamp`.
pub fn signature(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut context = hmac::Context::with_key(&key);
    context.update(format!("{id}.{timestamp}.").as_bytes());
    context.update(body);
    format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
}

/// What posts events to webhooks.
pub struct Deliverer {
    meta: Meta,
    keys: Arc<ClusterKeys>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
}

impl Deliverer {
    /// A deliverer posting with `http` (which should follow no redirect).
    pub fn new(
        meta: Meta,
        keys: Arc<ClusterKeys>,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
    ) -> Deliverer {
        Deliverer {
            meta,
            keys,
            http,
            clock,
            retry,
        }
    }

    fn leading(&self) -> bool {
        self.meta.raft_metrics().current_leader == Some(self.meta.node_id())
    }

    /// Runs for as long as the node does: while this node leads, one delivery task per enabled
    /// webhook.
    pub async fn run(self: Arc<Self>) {
        let mut running: HashMap<(String, u64), tokio::task::JoinHandle<()>> = HashMap::new();
        loop {
            let wanted: Vec<(String, u64)> = if self.leading() {
                match self.meta.read(webhooks) {
                    Ok(all) => all
                        .into_iter()
                        .filter(|webhook| webhook.enabled)
                        .map(|webhook| (webhook.name, webhook.id))
                        .collect(),
                    Err(error) => {
                        tracing::warn!(%error, "reading webhooks");
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            running.retain(|key, task| {
                let keep = wanted.contains(key) && !task.is_finished();
                if !keep {
                    task.abort();
                }
                keep
            });
            for key in wanted {
                if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(key) {
                    let (name, id) = slot.key().clone();
                    slot.insert(tokio::spawn(self.clone().deliver(name, id)));
                }
            }
            tokio::time::sleep(RECONCILE_EVERY).await;
        }
    }

    /// Delivers to one webhook until it is deleted, disabled or this node stops leading.
    async fn deliver(self: Arc<Self>, name: String, id: u64) {
        let mut changes = self.meta.watch();
        // How far this task delivered or passed over, perhaps past the committed cursor; the
        // attempts not committed yet; and when the cursor was last committed.
        let mut reached = 0;
        let mut unrecorded: Vec<WebhookDelivery> = Vec::new();
        let mut recorded_at = Instant::now();
        loop {
            if !self.leading() {
                return;
            }
            let found = self.meta.read(|view| {
                let Some(hook) = webhook(view, &name)? else {
                    return Ok(None);
                };
                let after = hook.cursor.max(reached);
                let oldest = view
                    .scan_keys(Table::Audit, &[], None, 1)?
                    .first()
                    .map(|key| keys::number_part(key, 0))
                    .transpose()?;
                let batch = crate::api::events::scan(view, after, BATCH, |event| {
                    Ok(wanted_by(&hook, event))
                })?;
                Ok(Some((hook, after, oldest, batch)))
            });
            let (hook, after, batch) = match found {
                Ok(Some((hook, after, oldest, batch))) if hook.id == id && hook.enabled => {
                    if let Some((gap, last_lost)) = self.gap(after, oldest) {
                        tracing::warn!(webhook = %name, error = ?gap.error, "events lost before delivery");
                        unrecorded.push(gap);
                        // Reported once: the lost ones count as passed over.
                        reached = reached.max(last_lost);
                    }
                    (hook, after, batch)
                }
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(webhook = %name, %error, "reading events to deliver");
                    tokio::time::sleep(RECONCILE_EVERY).await;
                    continue;
                }
            };
            if batch.events.is_empty() {
                reached = reached.max(batch.next);
                // Idle: what was delivered is committed now; a cursor only moved past events
                // the webhook did not ask for is committed now and then.
                let due = !unrecorded.is_empty()
                    || (reached > hook.cursor
                        && (reached - hook.cursor >= PASSED_OVER_EVENTS
                            || recorded_at.elapsed() >= PASSED_OVER_AGE));
                if due {
                    self.commit(
                        &hook,
                        reached,
                        &mut unrecorded,
                        &mut recorded_at,
                        Some(0),
                        None,
                    )
                    .await;
                }
                if batch.next == after {
                    let _ = tokio::time::timeout(IDLE_POLL, changes.changed()).await;
                }
                continue;
            }
            let key = match self
                .keys
                .open(&hook.sealed_secret)
                .map_err(|error| error.to_string())
                .and_then(|secret| signing_key(&secret))
            {
                Ok(key) => key,
                Err(reason) => {
                    let reason = format!("its secret cannot be read: {reason}");
                    self.record(&hook, reached, unrecorded, None, Some(reason))
                        .await;
                    return;
                }
            };
            let mut failed = false;
            for event in &batch.events {
                let delivery = self.post(&hook.url, &key, event).await;
                let succeeded = delivery.succeeded();
                unrecorded.push(delivery);
                if !succeeded {
                    failed = true;
                    break;
                }
                reached = event.id.parse().unwrap_or(reached);
            }
            if !failed {
                reached = batch.next;
                // Under a stream of events the cursor is committed every so often, not after
                // each post: a crash posts again at most that much (at least once).
                let due = unrecorded.len() >= BATCH || recorded_at.elapsed() >= RECORD_EVERY;
                if due {
                    self.commit(
                        &hook,
                        reached,
                        &mut unrecorded,
                        &mut recorded_at,
                        Some(0),
                        None,
                    )
                    .await;
                }
                continue;
            }
            let failures = hook.failures + 1;
            let disable = (failures >= self.retry.disable_after).then(|| {
                format!("{failures} deliveries in a row failed; enable it again once the receiver is back")
            });
            let disabled = disable.is_some();
            self.commit(
                &hook,
                reached,
                &mut unrecorded,
                &mut recorded_at,
                Some(failures),
                disable,
            )
            .await;
            if disabled {
                return;
            }
            tokio::time::sleep(self.retry.backoff(failures)).await;
        }
    }

    /// A delivery-log entry for the events after `after` that the audit trail's retention dropped
    /// before they were delivered (the trail now begins at `oldest`), with the last of them, when
    /// there are any: they cannot be delivered any more, and the log says which.
    fn gap(&self, after: u64, oldest: Option<u64>) -> Option<(WebhookDelivery, u64)> {
        let oldest = oldest?;
        let first_lost = after + 1;
        if oldest <= first_lost {
            return None;
        }
        let last_lost = oldest - 1;
        let entry = WebhookDelivery {
            event_id: format!("{first_lost}-{last_lost}"),
            event_type: GAP_EVENT.to_string(),
            at: self.clock.now_ms(),
            status: None,
            error: Some(format!(
                "events {first_lost} to {last_lost} were dropped by the audit trail's retention \
                 before they were delivered"
            )),
            duration_ms: 0,
            node_id: self.meta.node_id(),
        };
        Some((entry, last_lost))
    }

    /// Commits a delivery task's progress: the cursor `reached` and the attempts in `unrecorded`,
    /// which are then forgotten and `recorded_at` set to now; when that fails they are kept for the
    /// next commit.
    async fn commit(
        &self,
        hook: &Webhook,
        reached: u64,
        unrecorded: &mut Vec<WebhookDelivery>,
        recorded_at: &mut Instant,
        failures: Option<u32>,
        disable: Option<String>,
    ) {
        if self
            .record(hook, reached, unrecorded.clone(), failures, disable)
            .await
        {
            unrecorded.clear();
            *recorded_at = Instant::now();
        }
    }

    /// Commits a webhook's progress; false when that failed (the deliveries are then made again).
    async fn record(
        &self,
        hook: &Webhook,
        cursor: u64,
        deliveries: Vec<WebhookDelivery>,
        failures: Option<u32>,
        disable: Option<String>,
    ) -> bool {
        let command = Command::RecordWebhookDeliveries {
            name: hook.name.clone(),
            id: hook.id,
            cursor,
            deliveries,
            failures,
            disable,
        };
        match self.meta.propose(command).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(webhook = %hook.name, %error, "recording webhook deliveries");
                false
            }
        }
    }

    /// Posts `event` to `url`, signed with `key`, and says how that went.
    pub async fn post(&self, url: &str, key: &[u8], event: &CloudEvent) -> WebhookDelivery {
        let at = self.clock.now_ms();
        let started = Instant::now();
        let (status, error) = match serde_json::to_vec(event) {
            Ok(body) => {
                let timestamp = at / 1000;
                let request = self
                    .http
                    .post(url)
                    .header(
                        "content-type",
                        "application/cloudevents+json; charset=utf-8",
                    )
                    .header("webhook-id", &event.id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header(
                        "webhook-signature",
                        signature(key, &event.id, timestamp, &body),
                    )
                    .body(body);
                match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let error = (!status.is_success())
                            .then(|| format!("the receiver answered {status}"));
                        (Some(status.as_u16()), error)
                    }
                    Err(error) => (None, Some(crate::frontend::with_causes(&error))),
                }
            }
            Err(error) => (None, Some(format!("encoding the event: {error}"))),
        };
        if let Some(error) = &error {
            tracing::debug!(%url, event = %event.id, %error, "webhook delivery failed");
        }
        WebhookDelivery {
            event_id: event.id.clone(),
            event_type: event.kind.clone(),
            at,
            status,
            error,
            duration_ms: started.elapsed().as_millis() as u64,
            node_id: self.meta.node_id(),
        }
    }
}

/// True when `hook` asked for `event`: of its registry (any, for a webhook of none) and of one of
/// its types (any, when it named none).
pub fn wanted_by(hook: &Webhook, event: &CloudEvent) -> bool {
    let registry = hook
        .registry
        .as_ref()
        .is_none_or(|registry| event.data.registry.as_ref() == Some(registry));
    let kind = hook.events.is_empty() || hook.events.contains(&event.kind);
    registry && kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference implementations.
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("key");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn waits_double_up_to_the_ceiling_with_jitter() {
        let retry = RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            disable_after: 5,
        };
        for (failures, ceiling) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            let wait = retry.backoff(failures);
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "{failures}: {wait:?}"
            );
        }
    }

    #[test]
    fn secrets_are_standard_or_raw() {
        assert_eq!(signing_key("plain secret").expect("raw"), b"plain secret");
        assert!(signing_key("whsec_!!").is_err());
        let made = new_secret();
        assert_eq!(signing_key(&made).expect("made").len(), 24);
    }
}
