//! `/api/v1/cluster`: the cluster's status, join tokens, membership changes (promote, remove),
//! metadata snapshots, and the background scrub of the answering node's chunks. Everything here is
//! for admins.

use arca_protocol::api::{
    ClusterStatus, CreateJoinTokenRequest, JoinTokenInfo, ScrubStatus, SnapshotInfo,
};
use arca_protocol::cluster::{MembershipChange, PeerError};
use arca_protocol::{Command, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::{ApiError, JsonBody, PathParams};
use crate::AppState;
use crate::auth::Caller;
use crate::transfer::tls::JoinToken;

/// The longest a join token may live: a week.
const MAX_JOIN_TOKEN_TTL_SECONDS: u64 = 7 * 24 * 3600;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cluster", get(status))
        .route("/cluster/join-tokens", post(create_join_token))
        .route("/cluster/nodes/{id}/promote", post(promote))
        .route("/cluster/nodes/{id}", delete(remove))
        .route("/cluster/snapshot", post(snapshot))
        .route("/cluster/scrub", get(scrub_status).post(start_scrub))
}

/// What this node's background scrub is doing and has found.
async fn scrub_status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ScrubStatus>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(state.scrub.status(state.config.node_id)))
}

/// Starts a scrub pass on this node now (or right after the one running): 202 with the status.
async fn start_scrub(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<ScrubStatus>), ApiError> {
    caller.require(Role::Admin)?;
    state.scrub.start_pass();
    Ok((
        StatusCode::ACCEPTED,
        Json(state.scrub.status(state.config.node_id)),
    ))
}

/// Builds a metadata snapshot on this node now (and so lets its log be purged up to it); answers
/// what the snapshot holds. Snapshots are otherwise built as the log grows.
async fn snapshot(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SnapshotInfo>, ApiError> {
    caller.require(Role::Admin)?;
    state
        .meta
        .snapshot_now()
        .await
        .map_err(|error| ApiError::unavailable(error.to_string()))?;
    let built = state.meta.raft_metrics().snapshot;
    Ok(Json(SnapshotInfo {
        last_log_index: built.map_or(0, |log| log.index),
    }))
}

async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ClusterStatus>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(state.meta.cluster_status().await))
}

async fn create_join_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateJoinTokenRequest>,
) -> Result<(StatusCode, Json<JoinTokenInfo>), ApiError> {
    caller.require(Role::Admin)?;
    if !(1..=MAX_JOIN_TOKEN_TTL_SECONDS).contains(&request.ttl_seconds) {
        return Err(ApiError::invalid(format!(
            "ttl_seconds must be between 1 and {MAX_JOIN_TOKEN_TTL_SECONDS}"
        )));
    }
    let fingerprint = state
        .identity
        .ca_fingerprint()
        .map_err(ApiError::internal)?;
    let token = JoinToken::generate(fingerprint);
    let expires_at = state.now_ms() + request.ttl_seconds * 1000;
    state
        .meta
        .propose(Command::CreateJoinToken {
            secret_sha256: JoinToken::secret_sha256(&token.secret),
            expires_at,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(JoinTokenInfo {
            token: token.to_string(),
            expires_at,
        }),
    ))
}

async fn promote(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(node_id): PathParams<u64>,
) -> Result<Json<ClusterStatus>, ApiError> {
    change(state, caller, MembershipChange::Promote { node_id }).await
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(node_id): PathParams<u64>,
) -> Result<Json<ClusterStatus>, ApiError> {
    change(state, caller, MembershipChange::Remove { node_id }).await
}

async fn change(
    state: AppState,
    caller: Caller,
    change: MembershipChange,
) -> Result<Json<ClusterStatus>, ApiError> {
    caller.require(Role::Admin)?;
    state
        .meta
        .change_membership(change)
        .await
        .map_err(|error| match &error {
            PeerError::NotFound(_) => ApiError::not_found(error.to_string()),
            PeerError::Invalid(_) => ApiError::invalid(error.to_string()),
            PeerError::Forbidden(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", error.to_string())
            }
            PeerError::NotLeader { .. } | PeerError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                error.to_string(),
            ),
        })?;
    Ok(Json(state.meta.cluster_status().await))
}
