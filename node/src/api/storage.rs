//! `/api/v1/storage`: where this node keeps its chunks, and (admins) the move of its local chunks
//! into the bucket it was started with (see [`crate::blob::Migration`]).

use arca_protocol::Role;
use arca_protocol::api::{MigrateRequest, StorageStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::ApiError;
use crate::AppState;
use crate::auth::Caller;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/storage", get(status))
        .route("/storage/migrate", post(migrate))
}

fn current(state: &AppState) -> StorageStatus {
    StorageStatus {
        backend: state
            .config
            .storage
            .as_ref()
            .map_or_else(|| "local".to_string(), ToString::to_string),
        migration: state.migration.as_ref().map(|m| m.status()),
    }
}

async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<StorageStatus>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(current(&state)))
}

/// Starts (or resumes) the move, answering 202 with where it stands; 409 when the node keeps its
/// chunks elsewhere than the target.
async fn migrate(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<MigrateRequest>,
) -> Result<(StatusCode, Json<StorageStatus>), ApiError> {
    caller.require(Role::Admin)?;
    let Some(storage) = &state.config.storage else {
        return Err(ApiError::conflict(format!(
            "this node keeps its chunks on its local disk: start it with --storage {} (and \
             --storage-endpoint), then ask again; the local chunks stay readable while they move",
            request.to
        )));
    };
    match &state.migration {
        Some(migration) => migration
            .start(&request.to)
            .map_err(|error| ApiError::conflict(error.to_string()))?,
        None if storage.to_string().trim_end_matches('/') == request.to.trim_end_matches('/') => {}
        None => {
            return Err(ApiError::conflict(format!(
                "this node keeps its chunks in {storage}, not {}",
                request.to
            )));
        }
    }
    Ok((StatusCode::ACCEPTED, Json(current(&state))))
}
