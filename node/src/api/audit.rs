//! The audit trail: who changed what, from where, and how it ended; and, for registries that ask for
//! it (`audit_downloads`), who downloaded what.
//!
//! [`record`] is a middleware around every route of every surface (`/api/v1`, `/generic`, `/npm`,
//! `/pypi`, `/maven`, `/v2`). For each request with a method other than GET, HEAD or OPTIONS, and for
//! each GET of a file, blob, tarball or manifest of a registry with `audit_downloads` on, it
//! identifies the caller the way the handlers do and lets the request run. A change the request
//! commits carries the request's [`AuditEvent`] in the same Raft entry ([`RequestAudit`]), so an
//! acknowledged change always has its record, even when the node dies right after answering; when
//! the answer differs from the one recorded with it, the answer is settled afterwards. Everything
//! else (refusals, failures, downloads) goes to the node's [`AuditRecorder`], which proposes what it
//! collected as one [`Command::RecordAudit`] every [`FLUSH_EVERY`] (sooner when [`FLUSH_AT`] events
//! wait), so requests never wait for the trail and never fail because of it; when metadata is
//! unavailable the events are kept (at most [`QUEUE_LIMIT`], the oldest dropped with a warning) and
//! proposed again next round.
//!
//! What an unauthenticated caller can add is bounded, so the trail cannot be used to fill memory and
//! disk: an event's path and detail are cut at [`TEXT_MAX`] bytes; events of callers without valid
//! credentials are kept at most [`UNAUTHENTICATED_PER_SOURCE`] per source address and
//! [`UNAUTHENTICATED_PER_NODE`] per node a minute, and of those to paths no route serves only
//! [`UNROUTED_PER_SOURCE`] (a sample); the rest are counted (`arca_audit_events_skipped_total`),
//! not kept. Changes, which only valid credentials make, are always recorded.
//!
//! The state machine numbers the events and keeps what the retention says (by default the newest
//! [`AUDIT_RETENTION`](crate::meta::apply::AUDIT_RETENTION); `PUT /api/v1/audit/retention` sets a
//! count and an age). `GET /api/v1/audit` (admin) queries them, newest request first;
//! `GET /api/v1/audit/export` streams them oldest first as JSON lines. Nothing in the API writes or
//! deletes an event.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use arca_protocol::api::{AuditList, AuditQuery};
use arca_protocol::model::{AuditEvent, AuditRetention};
use arca_protocol::{Command, Role};
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::{Notify, mpsc};

use serde::Deserialize;

use super::{ApiError, JsonBody, QueryParams};
use crate::AppState;
use crate::auth::throttle::WindowCounts;
use crate::auth::{AuthError, Caller};
use crate::frontend::{FrontEnd, FrontEnds};
use crate::meta::request_audit::RequestAudit;
use crate::meta::tables::scalar;
use crate::meta::{Meta, ProposeError, StateRead};

/// How often collected events are proposed.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Events waiting that trigger a proposal before [`FLUSH_EVERY`] has passed.
pub const FLUSH_AT: usize = 256;
/// The most events one [`Command::RecordAudit`] carries.
const MAX_BATCH: usize = 1000;
/// The most events a node keeps waiting (while metadata is unavailable); beyond, the oldest go.
pub const QUEUE_LIMIT: usize = 10_000;
/// Events answered when the query names no limit.
const DEFAULT_LIMIT: u32 = 100;
/// The most events one query answers.
const MAX_LIMIT: u32 = 1000;
/// Error bodies up to this size are read for the event's detail.
const DETAIL_BODY_LIMIT: u64 = 16 * 1024;
/// The longest path and detail an event records, in bytes (longer ones are cut, marked `…`).
pub const TEXT_MAX: usize = 512;
/// Events of callers without valid credentials kept per source address a minute.
pub const UNAUTHENTICATED_PER_SOURCE: u32 = 60;
/// Of those, events for paths no route serves (a sample of the noise).
pub const UNROUTED_PER_SOURCE: u32 = 1;
/// Events of callers without valid credentials kept per node a minute, all sources together.
pub const UNAUTHENTICATED_PER_NODE: u32 = 600;
/// The largest registry-creation body read for the registry's name (axum's default JSON limit).
const CREATE_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What a handler may attach to its response (as an extension) to say why it ended as it did, for
/// example the rule and reason of a policy decision. Without it, the message of an error answer is
/// recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDetail(pub String);

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/audit", get(list))
        .route("/audit/export", get(export))
        .route("/audit/retention", get(retention).put(set_retention))
}

/// Ids read from the time index at a time while events are matched against a query.
const AUDIT_BATCH: usize = 1000;

/// Events per read of an export.
const EXPORT_PAGE: usize = 1000;

/// The largest `max_events` a retention may ask for.
const MAX_RETAINED_EVENTS: u64 = 100_000_000;

/// `?since=&until=` of an export.
#[derive(Debug, Deserialize)]
struct ExportQuery {
    since: Option<String>,
    until: Option<String>,
}

/// `GET /api/v1/audit/export?since=&until=`: every event of the window, oldest first, as JSON lines
/// (`application/x-ndjson`), read a page at a time so the answer streams whatever the trail's size.
async fn export(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ExportQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let now = state.now_ms();
    let since = query
        .since
        .as_deref()
        .map(|text| parse_time("since", text, now))
        .transpose()?
        .unwrap_or(0);
    let until = query
        .until
        .as_deref()
        .map(|text| parse_time("until", text, now))
        .transpose()?
        .unwrap_or(u64::MAX);
    let meta = state.meta.clone();
    let pages = futures::stream::try_unfold(Some((since, 0u64)), move |from| {
        let meta = meta.clone();
        async move {
            let Some(from) = from else {
                return Ok::<_, std::io::Error>(None);
            };
            let page = meta
                .read(|view| view.audit_page(from, until, EXPORT_PAGE))
                .map_err(std::io::Error::other)?;
            let next = (page.len() == EXPORT_PAGE)
                .then(|| page.last().map(|e| (e.at, e.id + 1)))
                .flatten();
            let mut lines = Vec::new();
            for event in &page {
                serde_json::to_writer(&mut lines, event).map_err(std::io::Error::other)?;
                lines.push(b'\n');
            }
            Ok(Some((axum::body::Bytes::from(lines), next)))
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(pages),
    )
        .into_response())
}

/// `GET /api/v1/audit/retention`: how much of the trail is kept.
async fn retention(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AuditRetention>, ApiError> {
    caller.require(Role::Admin)?;
    let kept = state
        .meta
        .read(|view| view.scalar::<AuditRetention>(scalar::AUDIT_RETENTION))?
        .unwrap_or_default();
    Ok(Json(kept))
}

/// `PUT /api/v1/audit/retention`: sets how much of the trail is kept; what falls outside it goes at
/// once.
async fn set_retention(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(retention): JsonBody<AuditRetention>,
) -> Result<Json<AuditRetention>, ApiError> {
    caller.require(Role::Admin)?;
    if !(1..=MAX_RETAINED_EVENTS).contains(&retention.max_events) {
        return Err(ApiError::invalid(format!(
            "max_events must be between 1 and {MAX_RETAINED_EVENTS}"
        )));
    }
    if retention.max_age_days == Some(0) {
        return Err(ApiError::invalid("max_age_days must be at least 1"));
    }
    state
        .meta
        .propose(Command::SetAuditRetention {
            retention,
            at: state.now_ms(),
        })
        .await?;
    Ok(Json(retention))
}

/// `GET /api/v1/audit?since=&until=&actor=&registry=&action=&limit=`: matching events, newest first.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    Ok(Json(AuditList {
        events: find_events(&state, &caller, &query)?,
    }))
}

/// The events `query` selects, newest first (admin).
pub fn find_events(
    state: &AppState,
    caller: &Caller,
    query: &AuditQuery,
) -> Result<Vec<AuditEvent>, ApiError> {
    caller.require(Role::Admin)?;
    let now = state.now_ms();
    let since = query
        .since
        .as_deref()
        .map(|text| parse_time("since", text, now))
        .transpose()?;
    let until = query
        .until
        .as_deref()
        .map(|text| parse_time("until", text, now))
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let action = query.action.as_deref().map(str::to_lowercase);
    let matches = |event: &AuditEvent| {
        since.is_none_or(|since| event.at >= since)
            && until.is_none_or(|until| event.at <= until)
            && query.actor.as_deref().is_none_or(|actor| {
                event.actor == actor || event.actor_id.as_deref() == Some(actor)
            })
            && query
                .registry
                .as_deref()
                .is_none_or(|registry| event.registry.as_deref() == Some(registry))
            && action
                .as_deref()
                .is_none_or(|action| event.action.to_lowercase().contains(action))
    };
    // By the time index, newest request first, a batch of ids at a time: only the events of the
    // window are looked at, and only until enough match.
    let view = state.meta.view()?;
    let mut events = Vec::new();
    let mut before = (until.unwrap_or(u64::MAX).saturating_add(1), 0);
    'walk: loop {
        let batch = view.audit_ids_before(since.unwrap_or(0), before, AUDIT_BATCH)?;
        for &(at, id) in &batch {
            if events.len() >= limit as usize {
                break 'walk;
            }
            if let Some(event) = view.audit_event(id)?
                && matches(&event)
            {
                events.push(event);
            }
            before = (at, id);
        }
        if batch.len() < AUDIT_BATCH {
            break;
        }
    }
    Ok(events)
}

/// A point in time given as unix milliseconds, an RFC 3339 time, or a duration before `now` (`1h`).
pub fn parse_time(name: &str, text: &str, now: u64) -> Result<u64, ApiError> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| ApiError::invalid(format!("{name}: {text} is out of range")));
    }
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        return Ok(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX));
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        let ago = u64::try_from(ago.as_millis()).unwrap_or(u64::MAX);
        return Ok(now.saturating_sub(ago));
    }
    Err(ApiError::invalid(format!(
        "{name}: {text:?} is neither unix milliseconds, an RFC 3339 time nor a duration such as 1h"
    )))
}

/// The state of the [`record`] middleware: the node and its recorder.
#[derive(Clone)]
pub struct Auditing {
    state: AppState,
    front_ends: FrontEnds,
    recorder: AuditRecorder,
    unauthenticated: Arc<WindowCounts<Unauthenticated>>,
}

/// Whose events without valid credentials are counted: one source, to routes or to none; or the
/// whole node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Unauthenticated {
    Source { address: String, routed: bool },
    Node,
}

impl Auditing {
    /// Starts the node's recorder (a background task that ends, after a last round, when every copy
    /// of the returned value is gone, that is when the router is).
    pub fn start(state: &AppState, front_ends: FrontEnds) -> Auditing {
        Auditing {
            state: state.clone(),
            front_ends,
            recorder: AuditRecorder::start(state.meta.clone()),
            unauthenticated: Arc::default(),
        }
    }

    /// Whether an event of a caller without valid credentials from `address` is kept (see the
    /// module documentation); one that is not is counted as skipped.
    fn keeps_unauthenticated(&self, address: &str, routed: bool) -> bool {
        let per_source = if routed {
            UNAUTHENTICATED_PER_SOURCE
        } else {
            UNROUTED_PER_SOURCE
        };
        let source = Unauthenticated::Source {
            address: address.to_string(),
            routed,
        };
        let kept = self.unauthenticated.over(&source, per_source).is_none()
            && self
                .unauthenticated
                .admit(Unauthenticated::Node, UNAUTHENTICATED_PER_NODE);
        if kept {
            self.unauthenticated.add(source);
        } else {
            self.state.metrics.audit_events_skipped.inc();
        }
        kept
    }
}

/// The audit middleware; see the module documentation.
pub async fn record(State(auditing): State<Auditing>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string());
    let mutating = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let front_end = auditing.front_ends.serving(request.uri().path());
    let download = method == Method::GET
        && route.is_some()
        && front_end.is_some_and(|front_end| front_end.is_download(request.uri().path()));
    if !mutating && !download {
        return next.run(request).await;
    }
    let state = &auditing.state;
    let (mut parts, body) = request.into_parts();
    let mut registry = match front_end {
        Some(front_end) => front_end.registry_of(parts.uri.path()),
        None => registry_param(&mut parts).await,
    };
    if download
        && !registry.as_deref().is_some_and(|name| {
            state
                .meta
                .read(|view| view.registry(name))
                .ok()
                .flatten()
                .is_some_and(|r| r.audit_downloads)
        })
    {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let at = state.now_ms();
    let target = truncate(parts.uri.path().to_string());
    let source_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(
            || "unknown".to_string(),
            |info| info.0.ip().to_canonical().to_string(),
        );
    let mut caller = identify(state, front_end, &parts.headers);
    // A token created through another node may only be known here once the request has caught up
    // with the cluster: a failure is checked again after the request ran.
    let retry = caller.is_err().then(|| parts.headers.clone());
    let body = if method == Method::POST && route.as_deref() == Some("/api/v1/registries") {
        match read_registry_name(body).await {
            Ok((name, body)) => {
                registry = name;
                Ok(body)
            }
            Err(refusal) => Err(refusal),
        }
    } else {
        Ok(body)
    };
    let action = format!(
        "{method} {}",
        route.as_deref().unwrap_or("(no matching route)")
    );
    let event = |caller: &Result<Caller, AuthError>, result: u16, detail: Option<String>| {
        let (actor, actor_id) = match caller {
            Ok(Caller::Principal(principal)) => (principal.name(), Some(principal.subject())),
            Ok(Caller::Anonymous) | Err(_) => ("anonymous".to_string(), None),
        };
        AuditEvent {
            id: 0,
            at,
            actor,
            actor_id,
            source_ip: source_ip.clone(),
            action: action.clone(),
            registry: registry.clone(),
            target: target.clone(),
            result,
            detail: detail.map(truncate),
        }
    };
    // A change the request commits carries the event in its own Raft entry.
    let scope = (mutating && caller.is_ok()).then(|| {
        let expected = match front_end {
            Some(front_end) => front_end.usual_status(&method),
            // The web UI's forms answer with a redirect.
            None if target.starts_with("/ui/") => 303,
            None => management_status(&method),
        };
        RequestAudit::new(event(&caller, expected, None))
    });
    let response = match body {
        Ok(body) => {
            let request = next.run(Request::from_parts(parts, body));
            match &scope {
                Some(scope) => scope.scope(request).await,
                None => request.await,
            }
        }
        Err(refusal) => refusal.into_response(),
    };
    if let Some(headers) = retry {
        caller = identify(state, front_end, &headers);
    }
    let (response, mut detail) = detail_of(response).await;
    let result = response.status().as_u16();
    if let Some(recorded) = scope.as_ref().and_then(|scope| scope.recorded()) {
        if recorded.result != result || recorded.detail != detail {
            auditing.recorder.settle(&recorded, result, detail);
        }
        return response;
    }
    if let Err(error) = &caller {
        detail = Some(format!("invalid credentials: {error}"));
    }
    let authenticated = matches!(caller, Ok(Caller::Principal(_)));
    if authenticated || auditing.keeps_unauthenticated(&source_ip, route.is_some()) {
        auditing.recorder.record(event(&caller, result, detail));
    }
    response
}

/// The answer a change of the management API usually gets: updates (PUT, PATCH) 200, creations
/// (POST) 201, deletions 204.
fn management_status(method: &Method) -> u16 {
    match *method {
        Method::POST => 201,
        Method::DELETE => 204,
        _ => 200,
    }
}

/// The caller, identified the way the surface's handlers do.
fn identify(
    state: &AppState,
    front_end: Option<&dyn FrontEnd>,
    headers: &HeaderMap,
) -> Result<Caller, AuthError> {
    match front_end {
        Some(front_end) => front_end.identify(state, headers),
        None => crate::auth::authenticate(state, headers),
    }
}

/// The registry a management API request's path names: its `{registry}` parameter.
async fn registry_param(parts: &mut axum::http::request::Parts) -> Option<String> {
    let params = RawPathParams::from_request_parts(parts, &()).await.ok()?;
    params
        .iter()
        .find(|(key, _)| *key == "registry")
        .map(|(_, value)| value.to_string())
}

/// Reads a registry-creation body (it is small JSON) for the new registry's name, and gives the
/// bytes back as a body for the handler.
async fn read_registry_name(body: Body) -> Result<(Option<String>, Body), ApiError> {
    let bytes = axum::body::to_bytes(body, CREATE_BODY_LIMIT)
        .await
        .map_err(|error| {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(cause) = source {
                if cause.is::<http_body_util::LengthLimitError>() {
                    return ApiError::too_large(CREATE_BODY_LIMIT as u64);
                }
                source = cause.source();
            }
            ApiError::invalid(format!("reading the request body: {error}"))
        })?;
    let name = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|json| json.get("name")?.as_str().map(str::to_string));
    Ok((name, Body::from(bytes)))
}

/// The response, and why it ended as it did: the [`AuditDetail`] a handler attached, else the message
/// of an error answer (read when its body is small and complete; the body is passed on unchanged).
async fn detail_of(response: Response) -> (Response, Option<String>) {
    if let Some(AuditDetail(detail)) = response.extensions().get::<AuditDetail>() {
        let detail = truncate(detail.clone());
        return (response, Some(detail));
    }
    let status = response.status();
    let readable = (status.is_client_error() || status.is_server_error())
        && response
            .body()
            .size_hint()
            .exact()
            .is_some_and(|size| size > 0 && size <= DETAIL_BODY_LIMIT);
    if !readable {
        return (response, None);
    }
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, DETAIL_BODY_LIMIT as usize).await {
        Ok(bytes) => {
            let detail = error_message(&parts.headers, &bytes);
            (Response::from_parts(parts, Body::from(bytes)), detail)
        }
        Err(error) => {
            tracing::debug!(%error, "reading an error answer for the audit trail");
            (Response::from_parts(parts, Body::empty()), None)
        }
    }
}

/// The message of an error answer in any of the formats' shapes: Arca's `{"error": {"message"}}`,
/// npm's `{"error": "..."}`, OCI's `{"errors": [{"message"}]}`, or plain text.
fn error_message(headers: &HeaderMap, bytes: &[u8]) -> Option<String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain");
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    if content_type.contains("json") {
        let json: serde_json::Value = serde_json::from_str(text).ok()?;
        let message = json
            .pointer("/error/message")
            .or_else(|| json.get("error").filter(|e| e.is_string()))
            .or_else(|| json.pointer("/errors/0/message"))
            .or_else(|| json.get("message"))
            .and_then(serde_json::Value::as_str)
            .map_or_else(|| text.to_string(), str::to_string);
        return Some(truncate(message));
    }
    content_type
        .starts_with("text/plain")
        .then(|| truncate(text.to_string()))
}

/// `text` cut to at most [`TEXT_MAX`] bytes, on a character boundary.
fn truncate(mut text: String) -> String {
    if text.len() > TEXT_MAX {
        let mut end = TEXT_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// A node's collector of audit events: [`AuditRecorder::record`] queues an event without waiting; a
/// background task proposes what is queued. Cloning shares the queue.
#[derive(Clone)]
pub struct AuditRecorder {
    queue: Arc<Queue>,
    /// Closed when the last copy is dropped, which ends the task after a last round.
    _alive: mpsc::Sender<()>,
}

/// What waits to be proposed: a new event, or the answer of one already committed with its change.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    /// An event to record.
    Event(AuditEvent),
    /// A [`Command::SettleAuditEvent`].
    Settle(Box<Command>),
}

/// The entries waiting to be proposed.
#[derive(Default)]
struct Queue {
    events: Mutex<VecDeque<Entry>>,
    wake: Notify,
    dropped: AtomicU64,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues one entry; true when enough wait to propose now.
    fn push(&self, entry: Entry) -> bool {
        let mut events = self.lock();
        events.push_back(entry);
        self.trim(&mut events);
        events.len() >= FLUSH_AT
    }

    /// Takes up to `max` of the oldest entries.
    fn take(&self, max: usize) -> Vec<Entry> {
        let mut events = self.lock();
        let n = events.len().min(max);
        events.drain(..n).collect()
    }

    /// Puts a batch that could not be proposed back in front of what arrived since.
    fn put_back(&self, batch: Vec<Entry>) {
        let mut events = self.lock();
        for entry in batch.into_iter().rev() {
            events.push_front(entry);
        }
        self.trim(&mut events);
    }

    /// Drops the oldest entries beyond [`QUEUE_LIMIT`], counting them.
    fn trim(&self, events: &mut VecDeque<Entry>) {
        while events.len() > QUEUE_LIMIT {
            events.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl AuditRecorder {
    /// Starts the task that proposes queued events through `meta`.
    pub fn start(meta: Meta) -> AuditRecorder {
        let queue = Arc::new(Queue::default());
        let (alive, closed) = mpsc::channel(1);
        tokio::spawn(run(meta, queue.clone(), closed));
        AuditRecorder {
            queue,
            _alive: alive,
        }
    }

    /// Queues an event; never waits for it to be recorded.
    pub fn record(&self, event: AuditEvent) {
        self.queue(Entry::Event(event));
    }

    /// Queues the answer of an event committed with its change; never waits.
    fn settle(&self, event: &AuditEvent, result: u16, detail: Option<String>) {
        self.queue(Entry::Settle(Box::new(Command::SettleAuditEvent {
            at: event.at,
            actor_id: event.actor_id.clone(),
            target: event.target.clone(),
            recorded: event.result,
            result,
            detail,
        })));
    }

    fn queue(&self, entry: Entry) {
        if self.queue.push(entry) {
            self.queue.wake.notify_one();
        }
    }

    /// Entries dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }
}

/// Proposes queued events every [`FLUSH_EVERY`], or sooner when woken, until the recorder is gone.
async fn run(meta: Meta, queue: Arc<Queue>, mut closed: mpsc::Receiver<()>) {
    let mut reported_drops = 0;
    loop {
        let last_round = tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => false,
            _ = queue.wake.notified() => false,
            _ = closed.recv() => true,
        };
        let dropped = queue.dropped.load(Ordering::Relaxed);
        if dropped > reported_drops {
            tracing::warn!(
                dropped = dropped - reported_drops,
                total = dropped,
                "audit queue full: the oldest unrecorded events were dropped"
            );
            reported_drops = dropped;
        }
        flush(&meta, &queue).await;
        if last_round {
            let left = queue.lock().len();
            if left > 0 {
                tracing::warn!(left, "stopping with audit events not recorded");
            }
            return;
        }
    }
}

/// Proposes everything queued, in batches; on failure the batch goes back for the next round.
async fn flush(meta: &Meta, queue: &Queue) {
    loop {
        let batch = queue.take(MAX_BATCH);
        if batch.is_empty() {
            return;
        }
        let mut events = Vec::new();
        let mut commands = Vec::new();
        for entry in &batch {
            match entry {
                Entry::Event(event) => events.push(event.clone()),
                Entry::Settle(settle) => commands.push((**settle).clone()),
            }
        }
        commands.insert(0, Command::RecordAudit { events });
        let command = Command::Batch { commands };
        match meta.propose(command).await {
            Ok(()) => {}
            Err(ProposeError::Unavailable(reason)) => {
                tracing::warn!(%reason, events = batch.len(), "recording audit events; will retry");
                queue.put_back(batch);
                return;
            }
            Err(ProposeError::Refused(error)) => {
                tracing::error!(%error, events = batch.len(), "audit events refused; dropped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(target: &str) -> AuditEvent {
        AuditEvent {
            id: 0,
            at: 1,
            actor: "anonymous".into(),
            actor_id: None,
            source_ip: "127.0.0.1".into(),
            action: "DELETE /x".into(),
            registry: None,
            target: target.into(),
            result: 204,
            detail: None,
        }
    }

    #[test]
    fn audit_queue_is_bounded_and_keeps_order_across_retries() {
        let queue = Queue::default();
        for i in 0..QUEUE_LIMIT + 5 {
            queue.push(Entry::Event(event(&i.to_string())));
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 5);
        let batch = queue.take(3);
        let target = |entry: &Entry| match entry {
            Entry::Event(event) => event.target.clone(),
            Entry::Settle(_) => String::new(),
        };
        assert_eq!(target(&batch[0]), "5", "the oldest were dropped");
        queue.push(Entry::Event(event("new")));
        queue.put_back(batch);
        let all = queue.take(usize::MAX);
        assert_eq!(all.len(), QUEUE_LIMIT);
        assert_eq!(
            target(&all[0]),
            "6",
            "one more dropped to make room, oldest first"
        );
        assert_eq!(all.last().map(target).as_deref(), Some("new"));
    }

    #[test]
    fn audit_downloads_are_files_not_indexes() {
        let front_ends = crate::formats::front_ends();
        let download = |path: &str| {
            front_ends
                .serving(path)
                .is_some_and(|front_end| front_end.is_download(path))
        };
        assert!(download("/generic/r/p/1/f.bin"));
        assert!(download("/npm/r/left-pad/-/left-pad-1.0.0.tgz"));
        assert!(download("/npm/r/@s%2fp/-/p-1.0.0.tgz"));
        assert!(!download("/npm/r/left-pad"));
        assert!(!download("/npm/r/-/v1/search"));
        assert!(download("/maven/r/g/a/1/a-1.jar"));
        assert!(!download("/maven/r/g/a/maven-metadata.xml.sha1"));
        assert!(download("/v2/r/app/blobs/sha256:00"));
        assert!(download("/v2/r/app/manifests/latest"));
        assert!(!download("/v2/r/app/tags/list"));
        assert!(!download("/v2/r/app/blobs/uploads/abc"));
        assert!(!download("/pypi/r/simple/x/"));
        assert!(download("/pypi/r/files/x/1.0/x-1.0.tar.gz"));
        assert!(!download("/api/v1/registries"));
    }

    #[test]
    fn front_ends_name_the_registry_a_path_addresses() {
        let front_ends = crate::formats::front_ends();
        let registry = |path: &str| front_ends.serving(path)?.registry_of(path);
        assert_eq!(registry("/npm/js/left-pad").as_deref(), Some("js"));
        assert_eq!(
            registry("/v2/images/app/manifests/1").as_deref(),
            Some("images")
        );
        assert_eq!(registry("/v2/_catalog"), None);
        assert_eq!(registry("/pypi/py/").as_deref(), Some("py"));
    }

    #[test]
    fn audit_times_are_millis_rfc3339_or_durations_ago() {
        let now = 10_000_000;
        assert_eq!(parse_time("since", "1234", now), Ok(1234));
        assert_eq!(parse_time("since", "1h", now), Ok(now - 3_600_000));
        assert_eq!(
            parse_time("since", "2023-11-14T22:13:20Z", now),
            Ok(1_700_000_000_000)
        );
        assert!(parse_time("since", "yesterday", now).is_err());
    }

    #[test]
    fn audit_details_come_from_every_error_shape() {
        let json = |body: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            error_message(&headers, body.as_bytes())
        };
        assert_eq!(
            json(r#"{"error":{"code":"X","message":"no"}}"#).as_deref(),
            Some("no")
        );
        assert_eq!(
            json(r#"{"error":"npm says no"}"#).as_deref(),
            Some("npm says no")
        );
        assert_eq!(
            json(r#"{"errors":[{"code":"DENIED","message":"oci says no"}]}"#).as_deref(),
            Some("oci says no")
        );
        assert_eq!(
            error_message(&HeaderMap::new(), b"plain no").as_deref(),
            Some("plain no")
        );
        let long = truncate("é".repeat(TEXT_MAX));
        assert!(long.len() <= TEXT_MAX + '…'.len_utf8());
    }
}
