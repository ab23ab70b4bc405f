//! `/api/v1/webhooks`: webhooks, which the leader posts events to (see [`crate::webhooks`]), their
//! delivery logs, and test deliveries. A webhook of one registry is managed by that registry's
//! admins and is given that registry's events; a webhook of every registry (and of changes of
//! none) by the cluster's admins.

use arca_protocol::api::{DeliveriesQuery, WebhookInfo, WebhookRequest, WebhookUpdate};
use arca_protocol::model::{AuditEvent, Webhook, WebhookDelivery};
use arca_protocol::names::validate_webhook_name;
use arca_protocol::{Command, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::events::{EVENT_TYPES, cloud_event};
use super::{ApiError, JsonBody, PathParams, QueryParams};
use crate::AppState;
use crate::auth::Caller;
use crate::meta::webhooks::{newest_deliveries, webhook, webhooks};
use crate::webhooks::{new_secret, signing_key};

/// The type of a test event.
const TEST_EVENT: &str = "io.arca.webhook.test";
/// Deliveries answered when the query names no limit.
const DEFAULT_DELIVERIES: u32 = 50;
/// The shortest and longest signing key a secret may give, in bytes.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 16..=256;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", post(create).get(list))
        .route("/webhooks/{name}", get(show).patch(update).delete(remove))
        .route("/webhooks/{name}/test", post(test))
        .route("/webhooks/{name}/deliveries", get(deliveries))
}

/// Refused unless `caller` may manage webhooks of `registry` (of every registry: `None`).
fn require_manager(
    state: &AppState,
    caller: &Caller,
    registry: Option<&str>,
) -> Result<(), ApiError> {
    match registry {
        Some(name) => state.registry_for(caller, name, Role::Admin).map(|_| ()),
        None => Ok(caller.require(Role::Admin)?),
    }
}

/// The webhook called `name`, when the caller may manage it.
fn managed(state: &AppState, caller: &Caller, name: &str) -> Result<Webhook, ApiError> {
    caller.require_login()?;
    let found = state.meta.read(|view| webhook(view, name))?;
    let not_found = || ApiError::not_found(format!("webhook {name} not found"));
    let hook = found.ok_or_else(not_found)?;
    // Someone who may not manage it is not told it exists.
    require_manager(state, caller, hook.registry.as_deref()).map_err(|_| not_found())?;
    Ok(hook)
}

fn info(hook: Webhook, secret: Option<String>) -> WebhookInfo {
    WebhookInfo {
        name: hook.name,
        url: hook.url,
        registry: hook.registry,
        events: hook.events,
        enabled: hook.enabled,
        disabled_reason: hook.disabled_reason,
        created_by: hook.created_by,
        created_at: hook.created_at,
        cursor: hook.cursor,
        failures: hook.failures,
        secret,
    }
}

/// An event type as asked for (`artifact.pushed` or `io.arca.artifact.pushed`), in full.
fn event_type(asked: &str) -> Result<String, ApiError> {
    let full = if asked.starts_with("io.arca.") {
        asked.to_string()
    } else {
        format!("io.arca.{asked}")
    };
    if EVENT_TYPES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(ApiError::invalid(format!(
            "unknown event type {asked:?}; the types are {}",
            EVENT_TYPES.join(", ")
        )))
    }
}

/// `POST /api/v1/webhooks`.
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<WebhookRequest>,
) -> Result<(StatusCode, Json<WebhookInfo>), ApiError> {
    caller.require_login()?;
    validate_webhook_name(&request.name)?;
    require_manager(&state, &caller, request.registry.as_deref())?;
    let url = reqwest::Url::parse(&request.url)
        .map_err(|error| ApiError::invalid(format!("url {:?}: {error}", request.url)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ApiError::invalid(format!(
            "url {:?}: an http or https URL with a host",
            request.url
        )));
    }
    let mut events = request
        .events
        .iter()
        .map(|asked| event_type(asked))
        .collect::<Result<Vec<_>, _>>()?;
    events.sort();
    events.dedup();
    let made = request.secret.is_none();
    let secret = request.secret.unwrap_or_else(new_secret);
    let key = signing_key(&secret).map_err(ApiError::invalid)?;
    if !SECRET_BYTES.contains(&key.len()) {
        return Err(ApiError::invalid(format!(
            "the secret gives a {}-byte key; it must give {} to {} bytes",
            key.len(),
            SECRET_BYTES.start(),
            SECRET_BYTES.end()
        )));
    }
    let hook = Webhook {
        name: request.name,
        id: rand::random(),
        url: url.to_string(),
        sealed_secret: state.keys.seal(&secret),
        registry: request.registry,
        events,
        enabled: true,
        disabled_reason: None,
        created_by: caller.principal().map(|p| p.name()).unwrap_or_default(),
        created_at: state.now_ms(),
        cursor: 0,
        failures: 0,
        logged: 0,
    };
    let name = hook.name.clone();
    state
        .meta
        .propose(Command::CreateWebhook { webhook: hook })
        .await?;
    let created = state
        .meta
        .read(|view| webhook(view, &name))?
        .ok_or_else(|| ApiError::internal(format!("webhook {name} vanished")))?;
    Ok((
        StatusCode::CREATED,
        Json(info(created, made.then_some(secret))),
    ))
}

/// `GET /api/v1/webhooks`: the webhooks the caller may manage.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<WebhookInfo>>, ApiError> {
    caller.require_login()?;
    let all = state.meta.read(webhooks)?;
    Ok(Json(
        all.into_iter()
            .filter(|hook| require_manager(&state, &caller, hook.registry.as_deref()).is_ok())
            .map(|hook| info(hook, None))
            .collect(),
    ))
}

/// `GET /api/v1/webhooks/{name}`.
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<WebhookInfo>, ApiError> {
    Ok(Json(info(managed(&state, &caller, &name)?, None)))
}

/// `PATCH /api/v1/webhooks/{name}` `{"enabled": true}`.
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(update): JsonBody<WebhookUpdate>,
) -> Result<Json<WebhookInfo>, ApiError> {
    managed(&state, &caller, &name)?;
    let who = caller.principal().map(|p| p.name()).unwrap_or_default();
    state
        .meta
        .propose(Command::SetWebhookEnabled {
            name: name.clone(),
            enabled: update.enabled,
            reason: (!update.enabled).then(|| format!("disabled by {who}")),
        })
        .await?;
    Ok(Json(info(managed(&state, &caller, &name)?, None)))
}

/// `DELETE /api/v1/webhooks/{name}`.
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    managed(&state, &caller, &name)?;
    state.meta.propose(Command::DeleteWebhook { name }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/webhooks/{name}/test`: posts a test event from the answering node now, logs
/// the attempt, and answers how it went (whether or not the receiver took it).
async fn test(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<WebhookDelivery>, ApiError> {
    let hook = managed(&state, &caller, &name)?;
    let secret = state
        .keys
        .open(&hook.sealed_secret)
        .map_err(ApiError::internal)?;
    let key = signing_key(&secret).map_err(ApiError::internal)?;
    let at = state.now_ms();
    let event = AuditEvent {
        id: 0,
        at,
        actor: caller.principal().map(|p| p.name()).unwrap_or_default(),
        actor_id: None,
        source_ip: String::new(),
        action: "POST /api/v1/webhooks/{name}/test".to_string(),
        registry: hook.registry.clone(),
        target: format!("/api/v1/webhooks/{name}/test"),
        result: 200,
        detail: None,
    };
    let mut event = cloud_event(TEST_EVENT, event);
    event.id = format!("test-{at}");
    let delivery = state.webhooks.post(&hook.url, &key, &event).await;
    state
        .meta
        .propose(Command::RecordWebhookDeliveries {
            name,
            id: hook.id,
            cursor: 0,
            deliveries: vec![delivery.clone()],
            failures: None,
            disable: None,
        })
        .await?;
    Ok(Json(delivery))
}

/// `GET /api/v1/webhooks/{name}/deliveries?limit=`: the newest attempts first.
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<DeliveriesQuery>,
) -> Result<Json<Vec<WebhookDelivery>>, ApiError> {
    let hook = managed(&state, &caller, &name)?;
    let limit = query.limit.unwrap_or(DEFAULT_DELIVERIES);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    Ok(Json(state.meta.read(|view| {
        newest_deliveries(view, &hook, limit as usize)
    })?))
}
