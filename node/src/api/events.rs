//! `GET /api/v1/events`: what changed, for pollers and pipelines. The events are the changes the
//! audit trail recorded (requests other than reads that succeeded), oldest first after a cursor,
//! as CloudEvents 1.0 in JSON. The trail is replicated and numbered by the state machine, so every
//! node answers the same events with the same ids, a change is there as soon as it is applied,
//! and the cursor (`next`) carries over from one node to another. A caller sees the events of the
//! registries it may read; changes of no registry (users, tokens, the cluster) only admins see.
//! With `wait_seconds`, an answer with nothing new waits for the next applied change (long
//! polling).

use std::time::Duration;

use arca_protocol::Role;
use arca_protocol::api::{CloudEvent, EventList, EventsQuery};
use arca_protocol::model::AuditEvent;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::{ApiError, QueryParams};
use crate::AppState;
use crate::auth::Caller;
use crate::meta::StateRead;
use crate::meta::tables::Table;
use crate::meta::view::ReadResult;

/// Events answered when the query names no limit.
const DEFAULT_LIMIT: u32 = 100;
/// The most events one answer holds.
const MAX_LIMIT: u32 = 1000;
/// The longest a poll may wait.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How often a waiting poll looks for new events.
const POLL: Duration = Duration::from_millis(50);
/// Audit events read per step while looking for ones the caller may see.
const READ_PAGE: usize = 1000;
/// The most audit events one answer looks through: a caller who may see few of them gets an
/// answer (perhaps empty) with a `next` to go on from, not a scan of the whole trail.
const MAX_SCANNED: usize = 10 * READ_PAGE;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/events", get(list))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(mut query): QueryParams<EventsQuery>,
) -> Result<Json<EventList>, ApiError> {
    caller.require_login()?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let wait = Duration::from_secs(query.wait_seconds.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut changes = state.meta.watch();
    loop {
        let answer = read(&state, &caller, &query, limit as usize)?;
        if !answer.events.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(answer));
        }
        // What was looked through holds nothing for this caller: look on from where it ended.
        query.after = Some(answer.next);
        // The metrics watch may let an applied change pass without a word: look again at least
        // every POLL as well.
        let wake = deadline.min(tokio::time::Instant::now() + POLL);
        if let Ok(Err(_)) = tokio::time::timeout_at(wake, changes.changed()).await {
            return Ok(Json(read(&state, &caller, &query, limit as usize)?));
        }
    }
}

/// The events after the query's cursor the caller may see, at most `limit`.
fn read(
    state: &AppState,
    caller: &Caller,
    query: &EventsQuery,
    limit: usize,
) -> Result<EventList, ApiError> {
    let admin = caller.require(Role::Admin).is_ok();
    let after = query.after.unwrap_or(0);
    Ok(state.meta.read(|view| {
        scan(view, after, limit, |event| {
            let visible = match &event.data.registry {
                Some(name) => match view.registry(name)? {
                    Some(registry) => caller.may(&registry, Role::Read),
                    None => admin,
                },
                None => admin,
            };
            let wanted = query
                .registry
                .as_ref()
                .is_none_or(|name| event.data.registry.as_ref() == Some(name));
            Ok(visible && wanted)
        })
    })?)
}

/// The events after audit id `after` that `wanted` takes, at most `limit`, looking through at
/// most [`MAX_SCANNED`] audit events; `next` is the id of the last one looked at (the cursor to go
/// on from, past what `wanted` left out).
pub(crate) fn scan(
    view: &impl StateRead,
    after: u64,
    limit: usize,
    mut wanted: impl FnMut(&CloudEvent) -> ReadResult<bool>,
) -> ReadResult<EventList> {
    let mut next = after;
    let mut events = Vec::new();
    let mut scanned = 0;
    while events.len() < limit && scanned < MAX_SCANNED {
        let from = crate::meta::keys::Key::new().number(next).into_bytes();
        let page: Vec<(Vec<u8>, AuditEvent)> =
            view.scan(Table::Audit, &[], Some(&from), READ_PAGE)?;
        let Some((_, last)) = page.last() else {
            break;
        };
        let last_id = last.id;
        scanned += page.len();
        for (_, event) in page {
            if events.len() == limit {
                return Ok(EventList { events, next });
            }
            next = event.id;
            let Some(kind) = kind_of(&event) else {
                continue;
            };
            let event = cloud_event(kind, event);
            if wanted(&event)? {
                events.push(event);
            }
        }
        next = next.max(last_id);
    }
    Ok(EventList { events, next })
}

/// Every type of event [`kind_of`] tells.
pub const EVENT_TYPES: &[&str] = &[
    "io.arca.artifact.pushed",
    "io.arca.artifact.deleted",
    "io.arca.artifact.quarantined",
    "io.arca.artifact.released",
    "io.arca.artifact.deployed",
    "io.arca.artifact.cleaned",
    "io.arca.tag.moved",
    "io.arca.firewall.verdict",
    "io.arca.replication.completed",
    "io.arca.registry.changed",
    "io.arca.admin.changed",
];

/// What kind of change an audit event records: `None` for reads and for what did not succeed.
pub(crate) fn kind_of(event: &AuditEvent) -> Option<&'static str> {
    // A verdict is news whatever it is (a BLOCKED one is recorded with a 403).
    if event.action == crate::policy::firewall::VERDICT_ACTION {
        return Some("io.arca.firewall.verdict");
    }
    let (method, route) = event.action.split_once(' ').unwrap_or((&event.action, ""));
    if !(200..300).contains(&event.result) || matches!(method, "GET" | "HEAD" | "OPTIONS") {
        return None;
    }
    let api = route.starts_with("/api/");
    Some(if method == crate::policy::cleanup::CLEANUP_ACTION {
        "io.arca.artifact.cleaned"
    } else if method == crate::meta::apply::REPLICATED_ACTION {
        "io.arca.replication.completed"
    } else if route.ends_with("/quarantine") {
        match method {
            "DELETE" => "io.arca.artifact.released",
            _ => "io.arca.artifact.quarantined",
        }
    } else if route.ends_with("/deployments") {
        "io.arca.artifact.deployed"
    } else if route.contains("dist-tags") || route.contains("/tags/") {
        "io.arca.tag.moved"
    } else if event.registry.is_none() {
        "io.arca.admin.changed"
    } else if method == "DELETE" && (!api || route.contains("/versions/")) {
        "io.arca.artifact.deleted"
    } else if !api {
        "io.arca.artifact.pushed"
    } else {
        "io.arca.registry.changed"
    })
}

pub(crate) fn cloud_event(kind: &str, event: AuditEvent) -> CloudEvent {
    let time =
        humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(event.at));
    CloudEvent {
        specversion: "1.0".to_string(),
        id: event.id.to_string(),
        source: match &event.registry {
            Some(registry) => format!("/registries/{registry}"),
            None => "/cluster".to_string(),
        },
        kind: kind.to_string(),
        time: time.to_string(),
        subject: event.target.clone(),
        datacontenttype: "application/json".to_string(),
        data: event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, registry: Option<&str>, result: u16) -> AuditEvent {
        AuditEvent {
            id: 1,
            at: 0,
            actor: "admin".into(),
            actor_id: None,
            source_ip: "127.0.0.1".into(),
            action: action.into(),
            registry: registry.map(str::to_string),
            target: "/x".into(),
            result,
            detail: None,
        }
    }

    #[test]
    fn changes_are_told_apart_by_method_and_route_and_reads_and_refusals_are_no_events() {
        let cases = [
            (
                "PUT /generic/{registry}/{*path}",
                Some("r"),
                201,
                Some("io.arca.artifact.pushed"),
            ),
            (
                "PUT /v2/{*path}",
                Some("r"),
                201,
                Some("io.arca.artifact.pushed"),
            ),
            (
                "DELETE /generic/{registry}/{*path}",
                Some("r"),
                204,
                Some("io.arca.artifact.deleted"),
            ),
            (
                "DELETE /api/v1/registries/{registry}/packages/{package}/versions/{version}",
                Some("r"),
                204,
                Some("io.arca.artifact.deleted"),
            ),
            (
                "POST /api/v1/registries/{registry}/packages/{package}/versions/{version}/quarantine",
                Some("r"),
                200,
                Some("io.arca.artifact.quarantined"),
            ),
            (
                "DELETE /api/v1/registries/{registry}/packages/{package}/versions/{version}/quarantine",
                Some("r"),
                204,
                Some("io.arca.artifact.released"),
            ),
            (
                "PUT /npm/{registry}/-/package/{package}/dist-tags/{tag}",
                Some("r"),
                200,
                Some("io.arca.tag.moved"),
            ),
            (
                "PUT /api/v1/registries/{registry}/cleanup-policy",
                Some("r"),
                200,
                Some("io.arca.registry.changed"),
            ),
            (
                "POST /api/v1/tokens",
                None,
                201,
                Some("io.arca.admin.changed"),
            ),
            (
                "POST /api/v1/registries/{registry}/packages/{package}/versions/{version}/deployments",
                Some("r"),
                201,
                Some("io.arca.artifact.deployed"),
            ),
            (
                "CLEANUP /api/v1/registries/{registry}/packages/{package}/versions/{version}",
                Some("r"),
                200,
                Some("io.arca.artifact.cleaned"),
            ),
            (
                "FIREWALL evaluate",
                Some("r"),
                403,
                Some("io.arca.firewall.verdict"),
            ),
            (
                "FIREWALL evaluate",
                Some("r"),
                200,
                Some("io.arca.firewall.verdict"),
            ),
            (
                "REPLICATED /cluster/sites/{site}/nodes/{node}",
                None,
                200,
                Some("io.arca.replication.completed"),
            ),
            ("GET /generic/{registry}/{*path}", Some("r"), 200, None),
            ("PUT /generic/{registry}/{*path}", Some("r"), 403, None),
        ];
        for (action, registry, result, expected) in cases {
            assert!(expected.is_none_or(|kind| EVENT_TYPES.contains(&kind)));
            assert_eq!(
                kind_of(&event(action, registry, result)),
                expected,
                "{action} {result}"
            );
        }
    }
}
