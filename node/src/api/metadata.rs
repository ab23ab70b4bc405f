//! `key:value` metadata on registries, packages and versions: get, set (merge) and delete, one set of
//! handlers for all three levels.

use std::collections::BTreeMap;

use arca_protocol::api::{DeleteMetadataRequest, MetadataBody};
use arca_protocol::names::{validate_metadata_key, validate_metadata_value};
use arca_protocol::{Command, MetadataTarget, Role};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::{ApiError, JsonBody, PathParams};
use crate::meta::StateRead;
use crate::{AppState, auth::Caller};

/// Routes of this module: `<registry|package|version path>/metadata`.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for scope in [
        "/registries/{registry}",
        "/registries/{registry}/packages/{package}",
        "/registries/{registry}/packages/{package}/versions/{version}",
    ] {
        router = router.route(
            &format!("{scope}/metadata"),
            get(fetch).put(set).delete(remove),
        );
    }
    router
}

/// The target a set of path parameters names.
fn target(mut params: BTreeMap<String, String>) -> Result<MetadataTarget, ApiError> {
    let registry = params
        .remove("registry")
        .ok_or_else(|| ApiError::invalid("missing registry"))?;
    Ok(match (params.remove("package"), params.remove("version")) {
        (None, _) => MetadataTarget::Registry { registry },
        (Some(package), None) => MetadataTarget::Package { registry, package },
        (Some(package), Some(version)) => MetadataTarget::Version {
            registry,
            package,
            version,
        },
    })
}

fn describe(target: &MetadataTarget) -> String {
    match target {
        MetadataTarget::Registry { registry } => format!("registry {registry}"),
        MetadataTarget::Package { registry, package } => format!("package {registry}/{package}"),
        MetadataTarget::Version {
            registry,
            package,
            version,
        } => format!("version {registry}/{package}/{version}"),
    }
}

fn registry_of(target: &MetadataTarget) -> &str {
    match target {
        MetadataTarget::Registry { registry }
        | MetadataTarget::Package { registry, .. }
        | MetadataTarget::Version { registry, .. } => registry,
    }
}

fn current(state: &AppState, target: &MetadataTarget) -> Result<Json<MetadataBody>, ApiError> {
    let metadata = state
        .meta
        .read(|view| view.metadata(target))?
        .ok_or_else(|| ApiError::not_found(format!("{} not found", describe(target))))?;
    Ok(Json(MetadataBody { metadata }))
}

async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(params): PathParams<BTreeMap<String, String>>,
) -> Result<Json<MetadataBody>, ApiError> {
    let target = target(params)?;
    state.registry_for(&caller, registry_of(&target), Role::Read)?;
    current(&state, &target)
}

async fn set(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(params): PathParams<BTreeMap<String, String>>,
    JsonBody(body): JsonBody<MetadataBody>,
) -> Result<Json<MetadataBody>, ApiError> {
    let target = target(params)?;
    state.registry_for(&caller, registry_of(&target), Role::Write)?;
    if body.metadata.is_empty() {
        return Err(ApiError::invalid("no metadata to set"));
    }
    for (key, value) in &body.metadata {
        validate_metadata_key(key)?;
        validate_metadata_value(value)?;
    }
    state
        .meta
        .propose(Command::SetMetadata {
            target: target.clone(),
            entries: body.metadata,
        })
        .await?;
    current(&state, &target)
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(params): PathParams<BTreeMap<String, String>>,
    body: Bytes,
) -> Result<Json<MetadataBody>, ApiError> {
    let target = target(params)?;
    state.registry_for(&caller, registry_of(&target), Role::Write)?;
    // The body is optional: none means every key.
    let keys = if body.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice::<DeleteMetadataRequest>(&body)
            .map_err(|e| ApiError::invalid(format!("malformed JSON body: {e}")))?
            .keys
    };
    state
        .meta
        .propose(Command::DeleteMetadata {
            target: target.clone(),
            keys,
        })
        .await?;
    current(&state, &target)
}
