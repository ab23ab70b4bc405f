//! The dependency firewall over the management API (see [`crate::policy::firewall`]):
//! `GET|PUT /api/v1/registries/{registry}/firewall-policy`,
//! `POST /api/v1/registries/{registry}/firewall/check`,
//! `GET /api/v1/registries/{registry}/firewall/explain?package=&version=`,
//! `POST|DELETE /api/v1/registries/{registry}/packages/{package}/versions/{version}/quarantine`,
//! and the vulnerability database: `POST /api/v1/firewall/db` (import OSV advisories, admin) and
//! `GET /api/v1/firewall/db` (counts).

use arca_protocol::firewall::{
    AdvisoryDbStatus, AdvisoryImport, AdvisoryImportReport, FirewallCheck, FirewallCheckRequest,
    FirewallCheckResponse, FirewallExplanation, FirewallPolicy, FirewallStatus, QuarantineRecord,
    QuarantineRequest,
};
use std::collections::{BTreeMap, BTreeSet};

use arca_protocol::firewall::Advisory;
use arca_protocol::{Command, Package, Role, Version};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::audit::AuditDetail;
use super::{ApiError, JsonBody, PathParams, QueryParams};
use crate::AppState;
use crate::auth::Caller;
use crate::meta::tables::{Table, scalar};
use crate::meta::{ReadView, StateRead, StoreError};
use crate::policy::firewall::{self, osv, versions::Ecosystem};

/// The most advisories one import takes.
const MAX_IMPORT: usize = 50_000;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/registries/{registry}/firewall-policy",
            get(fetch_policy).put(set_policy),
        )
        .route("/registries/{registry}/firewall/check", post(check))
        .route("/registries/{registry}/firewall/explain", get(explain))
        .route(
            "/registries/{registry}/packages/{package}/versions/{version}/quarantine",
            post(quarantine).delete(release),
        )
        .route("/firewall/db", get(db_status).post(import))
}

/// The registry's firewall policy (anyone who may read the registry).
async fn fetch_policy(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<FirewallPolicy>, ApiError> {
    Ok(Json(
        state.registry_for(&caller, &name, Role::Read)?.firewall,
    ))
}

/// Replaces the registry's firewall policy (admin) and re-evaluates its versions; answers the
/// stored policy.
async fn set_policy(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(policy): JsonBody<FirewallPolicy>,
) -> Result<Json<FirewallPolicy>, ApiError> {
    Ok(Json(replace_policy(&state, &caller, &name, policy).await?))
}

/// Replaces registry `name`'s firewall policy (admin) and re-evaluates its versions; the stored
/// policy.
pub async fn replace_policy(
    state: &AppState,
    caller: &Caller,
    name: &str,
    policy: FirewallPolicy,
) -> Result<FirewallPolicy, ApiError> {
    state.registry_for(caller, name, Role::Admin)?;
    firewall::validate(&policy).map_err(ApiError::invalid)?;
    state
        .meta
        .propose(Command::SetFirewallPolicy {
            registry: name.to_string(),
            policy,
            at: state.now_ms(),
        })
        .await?;
    Ok(state.registry_for(caller, name, Role::Admin)?.firewall)
}

/// A fresh id for an evaluation made on request (stored evaluations are numbered by the state
/// machine).
fn adhoc_scan_id() -> String {
    format!("check-{:016x}", rand::random::<u64>())
}

/// Evaluates coordinates against the registry's policy and the database (read). A coordinate the
/// registry holds gets its stored verdict (with the age rule applied now); one it does not hold is
/// evaluated on the fly.
async fn check(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(request): JsonBody<FirewallCheckRequest>,
) -> Result<Json<FirewallCheckResponse>, ApiError> {
    state.registry_for(&caller, &name, Role::Read)?;
    if request.packages.len() > MAX_IMPORT {
        return Err(ApiError::invalid(format!(
            "at most {MAX_IMPORT} packages per check"
        )));
    }
    let now = state.now_ms();
    let view = state.meta.view()?;
    let registry = view
        .registry(&name)?
        .ok_or_else(|| ApiError::not_found(format!("registry {name} not found")))?;
    let mut results = Vec::with_capacity(request.packages.len());
    for coordinate in &request.packages {
        let verdict = match stored(&view, &name, &coordinate.name, &coordinate.version)? {
            Some((package, version)) => {
                firewall::current_verdict(&registry, &package, &version, now)
            }
            None => firewall::evaluate_unstored(
                &view,
                &registry,
                &coordinate.name,
                &coordinate.version,
                now,
                adhoc_scan_id(),
            )?,
        };
        results.push(FirewallCheck {
            name: coordinate.name.clone(),
            version: coordinate.version.clone(),
            verdict,
        });
    }
    Ok(Json(FirewallCheckResponse {
        registry: name,
        results,
    }))
}

/// A stored version with its package, if the registry holds it.
fn stored(
    view: &ReadView,
    registry: &str,
    package: &str,
    version: &str,
) -> Result<Option<(Package, Version)>, StoreError> {
    let Some(found) = view.version(registry, package, version)? else {
        return Ok(None);
    };
    Ok(view.package(registry, package)?.map(|p| (p, found)))
}

/// `?package=&version=`.
#[derive(Debug, Deserialize)]
struct ExplainQuery {
    package: String,
    version: String,
}

/// Why a version has the verdict it has (read).
async fn explain(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<ExplainQuery>,
) -> Result<Json<FirewallExplanation>, ApiError> {
    state.registry_for(&caller, &name, Role::Read)?;
    let now = state.now_ms();
    let view = state.meta.view()?;
    let registry = view
        .registry(&name)?
        .ok_or_else(|| ApiError::not_found(format!("registry {name} not found")))?;
    let explanation = match stored(&view, &name, &query.package, &query.version)? {
        Some((package, version)) => {
            let record = version.firewall.clone().unwrap_or_default();
            FirewallExplanation {
                registry: name.clone(),
                package: query.package.clone(),
                version: query.version.clone(),
                stored: true,
                verdict: firewall::current_verdict(&registry, &package, &version, now),
                quarantine: record.quarantine,
                release: record.release,
                blocked: firewall::stored_refusal(&registry, &package, &version, now),
            }
        }
        None => {
            let verdict = firewall::evaluate_unstored(
                &view,
                &registry,
                &query.package,
                &query.version,
                now,
                adhoc_scan_id(),
            )?;
            let blocked = (verdict.status == FirewallStatus::Blocked)
                .then(|| "the registry would refuse it".to_string());
            FirewallExplanation {
                registry: name.clone(),
                package: query.package.clone(),
                version: query.version.clone(),
                stored: false,
                verdict,
                quarantine: None,
                release: None,
                blocked,
            }
        }
    };
    Ok(Json(explanation))
}

fn caller_name(caller: &Caller) -> String {
    caller
        .principal()
        .map_or_else(|| "anonymous".to_string(), |p| p.name())
}

/// Quarantines a version by hand (admin).
async fn quarantine(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((registry, package, version)): PathParams<(String, String, String)>,
    JsonBody(request): JsonBody<QuarantineRequest>,
) -> Result<Response, ApiError> {
    set_quarantine(state, caller, (registry, package, version), request, false).await
}

/// Releases a version (admin): lifts a quarantine by hand and overrides a BLOCKED verdict until an
/// evaluation gives other reasons. The body (a reason) is optional.
async fn release(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((registry, package, version)): PathParams<(String, String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        QuarantineRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("the body is not a release request: {e}")))?
    };
    set_quarantine(state, caller, (registry, package, version), request, true).await
}

async fn set_quarantine(
    state: AppState,
    caller: Caller,
    (registry, package, version): (String, String, String),
    request: QuarantineRequest,
    release: bool,
) -> Result<Response, ApiError> {
    let detail = quarantine_or_release(
        &state,
        &caller,
        (&registry, &package, &version),
        &request.reason,
        release,
    )
    .await?;
    let explanation = explain(
        State(state),
        caller,
        PathParams(registry),
        QueryParams(ExplainQuery { package, version }),
    )
    .await?;
    let mut response = explanation.into_response();
    response.extensions_mut().insert(AuditDetail(detail));
    Ok(response)
}

/// Quarantines (or releases) a version by hand (registry admin); returns what the audit trail
/// records of it.
pub async fn quarantine_or_release(
    state: &AppState,
    caller: &Caller,
    (registry, package, version): (&str, &str, &str),
    reason: &str,
    release: bool,
) -> Result<String, ApiError> {
    state.registry_for(caller, registry, Role::Admin)?;
    let reason = match reason.trim() {
        "" if release => "released by an admin".to_string(),
        "" => "quarantined by an admin".to_string(),
        reason => reason.to_string(),
    };
    let record = QuarantineRecord {
        by: caller_name(caller),
        at: state.now_ms(),
        reason: reason.clone(),
    };
    let previous = state
        .meta
        .read(|view| view.version(registry, package, version))?
        .and_then(|v| v.firewall)
        .map(|f| (f.verdict.status, f.verdict.scan_id));
    let (registry, package, version) = (
        registry.to_string(),
        package.to_string(),
        version.to_string(),
    );
    let action = if release { "release" } else { "quarantine" };
    let detail = match previous {
        Some((status, scan)) => {
            format!("{action} {package}@{version}: {reason} (verdict {status}, {scan})")
        }
        None => format!("{action} {package}@{version}: {reason}"),
    };
    let command = if release {
        Command::ReleaseVersion {
            registry,
            package,
            version,
            record,
        }
    } else {
        Command::QuarantineVersion {
            registry,
            package,
            version,
            record,
        }
    };
    state.meta.propose(command).await?;
    Ok(detail)
}

/// Imports OSV advisories into the vulnerability database (admin) and re-evaluates the versions of
/// the packages they name.
async fn import(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<AdvisoryImport>,
) -> Result<(StatusCode, Json<AdvisoryImportReport>), ApiError> {
    caller.require(Role::Admin)?;
    if request.advisories.len() > MAX_IMPORT {
        return Err(ApiError::invalid(format!(
            "at most {MAX_IMPORT} advisories per import; send them in batches"
        )));
    }
    let advisories = request
        .advisories
        .iter()
        .map(osv::normalize)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    // The counts the state machine will reach, computed on the same state it applies to (writes
    // catch up with the cluster first).
    let named = named_packages(&advisories);
    let (report, statuses_before) = {
        let view = state.meta.view()?;
        let (added, replaced, unchanged) = firewall::classify_import(&view, &advisories)?;
        let report = AdvisoryImportReport {
            added,
            replaced,
            unchanged,
            reevaluated: 0,
        };
        (report, statuses(&view, &named)?)
    };
    state
        .meta
        .propose(Command::ImportAdvisories {
            advisories,
            at: state.now_ms(),
        })
        .await?;
    let after = statuses(&state.meta.view()?, &named)?;
    let changed = after
        .iter()
        .filter(|(key, status)| statuses_before.get(*key) != Some(status))
        .count() as u64;
    Ok((
        StatusCode::OK,
        Json(AdvisoryImportReport {
            reevaluated: changed,
            ..report
        }),
    ))
}

/// The `<ecosystem>/<normalised name>` keys of the packages `advisories` name.
fn named_packages(advisories: &[arca_protocol::firewall::Advisory]) -> BTreeSet<String> {
    advisories
        .iter()
        .flat_map(|a| a.affected.iter())
        .filter_map(|a| {
            Some(firewall::index_key(
                Ecosystem::parse(&a.ecosystem)?,
                &a.name,
            ))
        })
        .collect()
}

/// The status of every evaluated version of the packages `named` (index keys) names, by
/// `registry/package@version`.
fn statuses(
    view: &ReadView,
    named: &BTreeSet<String>,
) -> Result<BTreeMap<String, FirewallStatus>, StoreError> {
    let mut all = BTreeMap::new();
    for record in view.registries()? {
        let name = &record.registry.name;
        let Some(ecosystem) = Ecosystem::of(record.registry.package_type) else {
            continue;
        };
        for package in view.package_names(name, None, usize::MAX)? {
            if !named.contains(&firewall::index_key(ecosystem, &package)) {
                continue;
            }
            for version in view.versions(name, &package)? {
                if let Some(f) = &version.firewall {
                    all.insert(
                        format!("{name}/{package}@{}", version.name),
                        f.verdict.status,
                    );
                }
            }
        }
    }
    Ok(all)
}

/// The vulnerability database's counts (read).
async fn db_status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AdvisoryDbStatus>, ApiError> {
    caller.require(Role::Read)?;
    let view = state.meta.view()?;
    let mut status = AdvisoryDbStatus {
        last_import_at: view
            .scalar::<Option<u64>>(scalar::FIREWALL_LAST_IMPORT)?
            .flatten(),
        ..AdvisoryDbStatus::default()
    };
    for (_, advisory) in view.scan::<Advisory>(Table::Advisories, &[], None, usize::MAX)? {
        status.advisories += 1;
        if advisory.withdrawn {
            status.withdrawn += 1;
        }
        let ecosystems: BTreeSet<String> = advisory
            .affected
            .iter()
            .map(|a| {
                Ecosystem::parse(&a.ecosystem)
                    .map_or_else(|| a.ecosystem.clone(), |e| e.as_str().to_string())
            })
            .collect();
        for ecosystem in ecosystems {
            *status.ecosystems.entry(ecosystem).or_default() += 1;
        }
    }
    Ok(Json(status))
}
