//! The HTTP surface of a node: the management API under `/api/v1`, `/healthz`, `/metrics`, and the
//! package-manager front-ends from [`crate::formats`], all on one router. The management API is
//! built on [`crate::frontend`] like the front-ends are.

pub mod artifacts;
pub mod audit;
pub mod cleanup;
pub mod cluster;
pub mod deployments;
pub mod events;
pub mod firewall;
pub mod gc;
pub mod insights;
pub mod metadata;
pub mod metrics;
pub mod registries;
pub mod resolve;
pub mod search;
pub mod storage;
pub mod tokens;
pub mod users;
pub mod webhooks;

use arca_protocol::api::{Page, PageQuery, WhoAmI};
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::AppState;
use crate::auth::{self, Caller};
pub use crate::frontend::{ApiError, JsonBody, PathParams, QueryParams};

/// The node's whole router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/whoami", get(whoami))
        .merge(registries::routes())
        .merge(artifacts::routes())
        .merge(metadata::routes())
        .merge(tokens::routes())
        .merge(users::routes())
        .merge(audit::routes())
        .merge(cluster::routes())
        .merge(gc::routes())
        .merge(storage::routes())
        .merge(events::routes())
        .merge(cleanup::routes())
        .merge(firewall::routes())
        .merge(resolve::routes())
        .merge(deployments::routes())
        .merge(webhooks::routes())
        .merge(search::routes())
        .merge(insights::routes());
    let front_ends = crate::formats::front_ends();
    Router::new()
        .nest("/api/v1", api)
        .merge(front_ends.routes())
        .merge(crate::ui::routes())
        .route("/", get(crate::ui::root))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::scrape))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(retry_after_unavailable))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            writes_see_the_cluster,
        ))
        .layer(axum::middleware::from_fn_with_state(
            audit::Auditing::start(&state, front_ends),
            audit::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ui::session_credentials,
        ))
        .layer(axum::middleware::from_fn(auth::throttle::remember_source))
        .with_state(state)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(auth::authenticate(state, &parts.headers)?)
    }
}

/// Cuts one page out of `items`.
pub fn paginate<T>(items: Vec<T>, query: PageQuery) -> Result<Page<T>, ApiError> {
    check_page(&query)?;
    let total = items.len() as u64;
    let skip = (query.page - 1).saturating_mul(query.page_size);
    let items = items
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(query.page_size as usize)
        .collect();
    Ok(Page {
        items,
        page: query.page,
        page_size: query.page_size,
        total,
        next_cursor: None,
    })
}

/// Refuses a page number of 0 and page sizes outside 1-1000.
pub fn check_page(query: &PageQuery) -> Result<(), ApiError> {
    if query.page == 0 {
        return Err(ApiError::invalid("page counts from 1"));
    }
    if !(1..=1000).contains(&query.page_size) {
        return Err(ApiError::invalid("page_size must be between 1 and 1000"));
    }
    Ok(())
}

async fn whoami(caller: Caller) -> Result<Json<WhoAmI>, ApiError> {
    caller.require_login()?;
    Ok(Json(caller.whoami()))
}

/// `/healthz`: 503 `no-leader` while the node cannot take writes at all; 200 `degraded` with the
/// reason while it serves but refuses uploads (its disk is below `min_free_bytes`); else 200 `ok`.
async fn healthz(State(state): State<AppState>) -> Response {
    let raft = state.meta.raft_metrics();
    let healthy = raft.current_leader.is_some();
    let (min_free, available) = state.chunks.space();
    let disk_full = available.is_some_and(|available| available <= min_free);
    let status = match (healthy, disk_full) {
        (false, _) => "no-leader",
        (true, true) => "degraded",
        (true, false) => "ok",
    };
    let problems: Vec<String> = disk_full
        .then(|| {
            format!(
                "the disk has {} bytes free, below min_free_bytes ({min_free}): uploads are refused",
                available.unwrap_or(0)
            )
        })
        .into_iter()
        .collect();
    let body = serde_json::json!({
        "status": status,
        "problems": problems,
        "disk": {"available_bytes": available, "min_free_bytes": min_free},
        "node_id": raft.id,
        "raft_state": format!("{:?}", raft.state),
        "leader": raft.current_leader,
        "last_applied": raft.last_applied.map(|l| l.index),
        "snapshot": raft.snapshot.map(|l| l.index),
        "purged": raft.purged.map(|l| l.index),
        "site": state.node.site,
        "role": state.node.role,
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// A request that changes something first catches up with the cluster (a read barrier), so that it
/// validates against everything committed before it, wherever that was written: a registry created
/// through one node can be pushed to through another at once. Reads are served from the local state.
async fn writes_see_the_cluster(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    ) && state
        .meta
        .raft_metrics()
        .membership_config
        .nodes()
        .nth(1)
        .is_some()
    {
        state.meta.catch_up().await;
    }
    next.run(request).await
}

/// Every 503 (no quorum, no leader) tells clients when to try again, whatever the protocol.
async fn retry_after_unavailable(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    if response.status() == StatusCode::SERVICE_UNAVAILABLE
        && !response
            .headers()
            .contains_key(axum::http::header::RETRY_AFTER)
    {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_count_from_one_and_report_the_total() {
        let items: Vec<u32> = (0..7).collect();
        let page = paginate(
            items.clone(),
            PageQuery {
                page: 2,
                page_size: 3,
            },
        )
        .expect("page");
        assert_eq!(page.items, vec![3, 4, 5]);
        assert_eq!(page.total, 7);
        let last = paginate(
            items.clone(),
            PageQuery {
                page: 3,
                page_size: 3,
            },
        )
        .expect("page");
        assert_eq!(last.items, vec![6]);
        let beyond = paginate(
            items.clone(),
            PageQuery {
                page: 9,
                page_size: 3,
            },
        )
        .expect("page");
        assert!(beyond.items.is_empty());
        assert!(
            paginate(
                items.clone(),
                PageQuery {
                    page: 0,
                    page_size: 3
                }
            )
            .is_err()
        );
        assert!(
            paginate(
                items,
                PageQuery {
                    page: 1,
                    page_size: 0
                }
            )
            .is_err()
        );
    }
}
