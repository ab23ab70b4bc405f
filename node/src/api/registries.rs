//! `/api/v1/registries`: create, list, get and delete registries.

use arca_protocol::api::{CreateRegistryRequest, RegistryInfo, SetReplicationRequest};
use arca_protocol::names::validate_registry_name;
use arca_protocol::{Command, Registry, Role};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};

use super::{ApiError, JsonBody, PathParams};
use crate::meta::state::RegistryState;
use crate::{AppState, auth::Caller};
use axum::Json;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/registries", get(list).post(create))
        .route("/registries/{registry}", get(fetch).delete(remove))
        .route("/registries/{registry}/replication", put(set_replication))
}

/// How the API shows a registry.
pub fn registry_info(state: &RegistryState) -> RegistryInfo {
    let registry = &state.registry;
    RegistryInfo {
        name: registry.name.clone(),
        package_type: registry.package_type,
        description: registry.description.clone(),
        immutable: registry.immutable,
        allow_anonymous_read: registry.allow_anonymous_read,
        allow_redeploy: registry.allow_redeploy,
        created_at: registry.created_at,
        package_count: state.packages.len() as u64,
        metadata: registry.metadata.clone(),
        replication: registry.replication.clone(),
    }
}

fn info_of(state: &AppState, name: &str) -> Result<RegistryInfo, ApiError> {
    state
        .meta
        .read(|meta| meta.registry(name).map(registry_info))
        .ok_or_else(|| ApiError::not_found(format!("registry {name} not found")))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateRegistryRequest>,
) -> Result<(StatusCode, Json<RegistryInfo>), ApiError> {
    caller.require(Role::Admin)?;
    validate_registry_name(&request.name)?;
    if request.description.len() > 4096 {
        return Err(ApiError::invalid("description must be at most 4096 bytes"));
    }
    let registry = Registry {
        name: request.name.clone(),
        package_type: request.package_type,
        description: request.description,
        immutable: request.immutable,
        allow_anonymous_read: request.allow_anonymous_read,
        allow_redeploy: request.allow_redeploy,
        created_at: state.now_ms(),
        metadata: Default::default(),
        replication: request.replication,
    };
    state
        .meta
        .propose(Command::CreateRegistry { registry })
        .await?;
    Ok((StatusCode::CREATED, Json(info_of(&state, &request.name)?)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<RegistryInfo>>, ApiError> {
    caller.require(Role::Read)?;
    Ok(Json(state.meta.read(|meta| {
        meta.registries.values().map(registry_info).collect()
    })))
}

async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<RegistryInfo>, ApiError> {
    state.registry_for(&caller, &name, Role::Read)?;
    Ok(Json(info_of(&state, &name)?))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    state.meta.propose(Command::DeleteRegistry { name }).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_replication(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(policy): JsonBody<SetReplicationRequest>,
) -> Result<Json<RegistryInfo>, ApiError> {
    caller.require(Role::Admin)?;
    state
        .meta
        .propose(Command::SetReplication {
            registry: name.clone(),
            policy,
        })
        .await?;
    Ok(Json(info_of(&state, &name)?))
}
