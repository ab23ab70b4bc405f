//! `/api/v1/gc`: an admin runs garbage collection of this node's chunks (see [`crate::policy::gc`]).

use std::time::Duration;

use arca_protocol::Role;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

use super::ApiError;
use crate::AppState;
use crate::auth::Caller;
use arca_protocol::api::GcRequest;

use crate::policy::gc::{self, GcError, GcOptions, GcReport};

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/gc", post(run))
}

/// Runs one collection to its end (after the one running, if any), even when the caller goes away
/// meanwhile.
async fn run(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<GcReport>, ApiError> {
    caller.require(Role::Admin)?;
    let request: GcRequest = if body.iter().all(u8::is_ascii_whitespace) {
        GcRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("invalid garbage collection request: {e}")))?
    };
    Ok(Json(collect(state, &caller, request).await?))
}

/// Runs one collection to its end (admin), after the one running, if any.
pub async fn collect(
    state: AppState,
    caller: &Caller,
    request: GcRequest,
) -> Result<GcReport, ApiError> {
    caller.require(Role::Admin)?;
    let options = GcOptions {
        dry_run: request.dry_run,
        grace: Duration::from_secs(request.grace_seconds),
    };
    let task = tokio::spawn(async move {
        gc::run(&state.meta, &state.chunks, state.gc_clock.as_ref(), options).await
    });
    match task.await.map_err(ApiError::internal)? {
        Ok(report) => Ok(report),
        Err(GcError::Blob(error)) => Err(error.into()),
        Err(GcError::Unavailable(error)) => Err(error.into()),
        Err(GcError::Store(error)) => Err(error.into()),
    }
}
