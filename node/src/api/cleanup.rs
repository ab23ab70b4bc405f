//! A registry's cleanup policy and its runs (see [`crate::policy::cleanup`]):
//! `GET|PUT /api/v1/registries/{registry}/cleanup-policy` and
//! `POST /api/v1/registries/{registry}/cleanup?dry_run=true|false`.

use arca_protocol::api::{CleanupQuery, CleanupReport};
use arca_protocol::model::CleanupPolicy;
use arca_protocol::{Command, Role};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::{ApiError, JsonBody, PathParams, QueryParams};
use crate::AppState;
use crate::auth::Caller;
use crate::policy::cleanup::{self, CleanupError};

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/registries/{registry}/cleanup-policy", get(fetch).put(set))
        .route("/registries/{registry}/cleanup", post(run))
}

/// The registry's cleanup policy (anyone who may read the registry).
async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<CleanupPolicy>, ApiError> {
    let registry = state.registry_for(&caller, &name, Role::Read)?;
    Ok(Json(registry.cleanup))
}

/// Replaces the registry's cleanup policy (admin); answers the stored policy.
async fn set(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(policy): JsonBody<CleanupPolicy>,
) -> Result<Json<CleanupPolicy>, ApiError> {
    Ok(Json(replace_policy(&state, &caller, &name, policy).await?))
}

/// Replaces registry `name`'s cleanup policy (admin); the stored policy.
pub async fn replace_policy(
    state: &AppState,
    caller: &Caller,
    name: &str,
    policy: CleanupPolicy,
) -> Result<CleanupPolicy, ApiError> {
    state.registry_for(caller, name, Role::Admin)?;
    cleanup::validate(&policy).map_err(ApiError::invalid)?;
    state
        .meta
        .propose(Command::SetCleanupPolicy {
            registry: name.to_string(),
            policy,
        })
        .await?;
    Ok(state.registry_for(caller, name, Role::Admin)?.cleanup)
}

/// Runs the policy, or a dry run of it (admin). The run goes on when the caller goes away.
async fn run(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<CleanupQuery>,
) -> Result<Json<CleanupReport>, ApiError> {
    Ok(Json(run_policy(state, &caller, name, query.dry_run).await?))
}

/// Runs registry `name`'s cleanup policy, or a dry run of it (registry admin); the run goes on
/// when the caller goes away.
pub async fn run_policy(
    state: AppState,
    caller: &Caller,
    name: String,
    dry_run: bool,
) -> Result<CleanupReport, ApiError> {
    state.registry_for(caller, &name, Role::Admin)?;
    let task =
        tokio::spawn(
            async move { cleanup::run(&state.meta, state.now_ms(), &name, dry_run).await },
        );
    match task.await.map_err(ApiError::internal)? {
        Ok(report) => Ok(report),
        Err(error @ CleanupError::NotFound(_)) => Err(ApiError::not_found(error.to_string())),
        Err(CleanupError::Store(error)) => Err(error.into()),
    }
}
