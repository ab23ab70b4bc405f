//! Deployment records: a pipeline says it deployed a version to an environment
//! (`POST .../versions/{version}/deployments`), and the version keeps, per environment, when and by
//! whom it was last deployed there (version attributes `deployment/<environment>`, shown wherever
//! the version is; every record is also in the audit trail, which keeps the history).

use std::collections::BTreeMap;

use arca_protocol::api::{Deployment, DeploymentRequest};
use arca_protocol::{Command, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use super::{ApiError, JsonBody, PathParams};
use crate::AppState;
use crate::auth::Caller;
use crate::meta::StateRead;

/// The attribute prefix of deployment records.
const DEPLOYMENT: &str = "deployment/";

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/registries/{registry}/packages/{package}/versions/{version}/deployments",
        post(record).get(list),
    )
}

/// An environment name: 1-64 letters, digits, `.`, `_` and `-`.
fn check_environment(environment: &str) -> Result<(), ApiError> {
    let valid = !environment.is_empty()
        && environment.len() <= 64
        && environment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "environment {environment:?}: 1-64 letters, digits, '.', '_' and '-'"
        )))
    }
}

/// `POST .../versions/{version}/deployments` `{"environment": "prod"}`.
async fn record(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((registry, package, version)): PathParams<(String, String, String)>,
    JsonBody(request): JsonBody<DeploymentRequest>,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    check_environment(&request.environment)?;
    let registry = state.registry_for(&caller, &registry, Role::Write)?;
    let exists = state
        .meta
        .read(|view| view.has_version(&registry.name, &package, &version))?;
    if !exists {
        return Err(ApiError::not_found(format!(
            "{package} {version} not found in registry {}",
            registry.name
        )));
    }
    let deployment = Deployment {
        environment: request.environment,
        at: state.now_ms(),
        by: caller.principal().map(|p| p.name()).unwrap_or_default(),
    };
    state
        .meta
        .propose(Command::SetAttributes {
            registry: registry.name.clone(),
            package,
            version,
            set: BTreeMap::from([(
                format!("{DEPLOYMENT}{}", deployment.environment),
                serde_json::to_string(&deployment).map_err(ApiError::internal)?,
            )]),
            remove: Vec::new(),
            at: deployment.at,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(deployment)))
}

/// `GET .../versions/{version}/deployments`: the last deployment to each environment.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((registry, package, version)): PathParams<(String, String, String)>,
) -> Result<Json<Vec<Deployment>>, ApiError> {
    let registry = state.registry_for(&caller, &registry, Role::Read)?;
    let stored = state
        .meta
        .read(|view| view.version(&registry.name, &package, &version))?
        .ok_or_else(|| ApiError::not_found(format!("{package} {version} not found")))?;
    Ok(Json(
        stored
            .attributes
            .iter()
            .filter(|(key, _)| key.starts_with(DEPLOYMENT))
            .filter_map(|(_, json)| serde_json::from_str(json).ok())
            .collect(),
    ))
}
