//! `GET /api/v1/search`: packages across every registry the caller may read, from this node's
//! search index ([`crate::search`]).

use std::collections::BTreeSet;

use arca_protocol::api::{SearchQuery, SearchResults};
use arca_protocol::{RegistryKind, Role};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::{ApiError, QueryParams};
use crate::AppState;
use crate::auth::Caller;
use crate::meta::StateRead;
use crate::search::{MAX_LIMIT, SearchError, query};

/// Hits answered when the query names no limit.
const DEFAULT_LIMIT: u32 = 20;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::Query(error) => ApiError::invalid(error.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// The registries whose versions `caller` may find (`None`: all of them): those it may read, and
/// the members of the virtual registries it may read, which serve it through them.
pub fn readable_registries(
    state: &AppState,
    caller: &Caller,
) -> Result<Option<Vec<String>>, ApiError> {
    if caller.require(Role::Admin).is_ok() {
        return Ok(None);
    }
    let registries = state.meta.read(|view| view.registries())?;
    let mut readable = BTreeSet::new();
    for record in registries {
        let registry = record.registry;
        if !caller.may(&registry, Role::Read) {
            continue;
        }
        if registry.kind == RegistryKind::Virtual {
            readable.extend(registry.members.iter().cloned());
        }
        readable.insert(registry.name);
    }
    Ok(Some(readable.into_iter().collect()))
}

/// The registries a `registry` filter names: itself, and a virtual registry's members.
fn named_registries(state: &AppState, name: &str) -> Result<Vec<String>, ApiError> {
    let registry = state.meta.read(|view| view.registry(name))?;
    Ok(match registry {
        Some(registry) => crate::proxy::resolution_order(state, &registry)
            .into_iter()
            .map(|member| member.name)
            .chain([name.to_string()])
            .collect(),
        None => vec![name.to_string()],
    })
}

async fn search(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(request): QueryParams<SearchQuery>,
) -> Result<Json<SearchResults>, ApiError> {
    Ok(Json(find(&state, &caller, request).await?))
}

/// What a search finds among the versions `caller` may read.
pub async fn find(
    state: &AppState,
    caller: &Caller,
    request: SearchQuery,
) -> Result<SearchResults, ApiError> {
    let limit = request.limit.unwrap_or(DEFAULT_LIMIT) as usize;
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let offset = request.offset.unwrap_or(0) as usize;
    let mut parsed = query::parse(&request.q).map_err(SearchError::from)?;
    if let Some(registry) = request.registry {
        parsed.registries.push(registry);
    }
    let mut named = Vec::new();
    for registry in &parsed.registries {
        named.extend(named_registries(state, registry)?);
    }
    parsed.registries = named;
    let readable = readable_registries(state, caller)?;
    let (hits, total_versions) = state
        .search
        .clone()
        .find(state.meta.clone(), parsed, readable, (offset, limit))
        .await?;
    Ok(SearchResults {
        hits,
        total_versions,
        indexed_to: state.search.indexed_to(),
    })
}
