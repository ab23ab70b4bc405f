//! What a delivery pipeline asks before it deploys: `GET /api/v1/resolve` answers the one version
//! of a package that a tag, an exact version, `latest` or a version range picks, among the versions
//! that carry the wanted labels (key:value metadata) and that the firewall and quarantine let out,
//! with its files' digests and download URLs; `GET .../versions/{version}/files/{file}` downloads a
//! file of any format by those coordinates.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use arca_protocol::api::{ResolvedFile, ResolvedVersion};
use arca_protocol::{Registry, Role, Version};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};

use super::{ApiError, PathParams};
use crate::AppState;
use crate::auth::Caller;
use crate::meta::StateRead;
use crate::policy::firewall::{self, versions::Ecosystem};
use crate::proxy;
use crate::usage::Download;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/resolve", get(resolve)).route(
        "/registries/{registry}/packages/{package}/versions/{version}/files/{file}",
        get(download),
    )
}

/// What `/resolve` was asked.
struct Wanted {
    registry: String,
    package: String,
    /// A tag, a version, `latest`, or a range.
    version: String,
    /// key:value pairs the version's metadata must hold.
    labels: Vec<(String, String)>,
}

fn wanted(query: Option<&str>) -> Result<Wanted, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let one = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let required = |key: &str| {
        one(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::invalid(format!("`{key}` is required")))
    };
    let labels = pairs
        .iter()
        .filter(|(k, _)| k == "label")
        .map(|(_, label)| {
            label
                .split_once(':')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| ApiError::invalid(format!("label {label:?} is not key:value")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Wanted {
        registry: required("registry")?,
        package: required("package")?,
        version: one("version")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "latest".into()),
        labels,
    })
}

/// A version through the registry asked: the member holding it, and the version.
#[derive(Clone)]
struct Candidate {
    member: String,
    version: Version,
}

/// Orders two version names the way `package_type`'s ecosystem does (semver, else the order they
/// were pushed in).
fn order(ecosystem: Option<Ecosystem>, a: &Candidate, b: &Candidate) -> Ordering {
    let by_ecosystem = match ecosystem {
        Some(ecosystem) => ecosystem.compare(&a.version.name, &b.version.name),
        None => {
            let parse = |v: &str| semver::Version::parse(v.trim_start_matches('v')).ok();
            match (parse(&a.version.name), parse(&b.version.name)) {
                (Some(x), Some(y)) => Some(x.cmp(&y)),
                _ => None,
            }
        }
    };
    by_ecosystem.unwrap_or_else(|| a.version.created_at.cmp(&b.version.created_at))
}

/// `GET /api/v1/resolve?registry=&package=&version=&label=k:v`.
async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<ResolvedVersion>, ApiError> {
    let wanted = wanted(query.as_deref())?;
    let registry = state.registry_for(&caller, &wanted.registry, Role::Read)?;
    let (candidates, tags) = candidates(&state, &registry, &wanted.package)?;
    if candidates.is_empty() {
        return Err(ApiError::not_found(format!(
            "package {} has no versions in registry {}",
            wanted.package, registry.name
        )));
    }
    // Versions the labels and the firewall let through.
    let now = state.now_ms();
    let view = state.meta.view()?;
    let mut eligible = Vec::new();
    for candidate in candidates {
        let labelled = wanted
            .labels
            .iter()
            .all(|(k, v)| candidate.version.metadata.get(k) == Some(v));
        let member = registry_named(&state, &candidate.member)?;
        let allowed = firewall::check_member(
            &view,
            &member,
            &wanted.package,
            &candidate.version.name,
            now,
        )
        .is_ok();
        if labelled && allowed {
            eligible.push(candidate);
        }
    }
    let ecosystem = Ecosystem::of(registry.package_type);
    let spec = wanted.version.as_str();
    let chosen = if let Some(target) = tags.get(spec) {
        eligible.into_iter().find(|c| &c.version.name == target).ok_or_else(|| {
            ApiError::not_found(format!(
                "tag {spec} points at {target}, which the labels, the firewall or quarantine rule out"
            ))
        })?
    } else if let Some(exact) = eligible.iter().position(|c| c.version.name == spec) {
        eligible.swap_remove(exact)
    } else if spec == "latest" {
        let is_pre = |c: &Candidate| match ecosystem {
            Some(ecosystem) => ecosystem.is_prerelease(&c.version.name),
            // Without an ecosystem, a semver pre-release is one.
            None => semver::Version::parse(c.version.name.trim_start_matches('v'))
                .is_ok_and(|v| !v.pre.is_empty()),
        };
        let releases: Vec<Candidate> = eligible.iter().filter(|c| !is_pre(c)).cloned().collect();
        let pool = if releases.is_empty() {
            eligible
        } else {
            releases
        };
        pool.into_iter()
            .max_by(|a, b| order(ecosystem, a, b))
            .ok_or_else(|| {
                ApiError::not_found(
                    "no version is left once the labels, the firewall and quarantine are applied",
                )
            })?
    } else {
        let ecosystem = ecosystem.unwrap_or(Ecosystem::Npm);
        if !ecosystem.is_range(spec) {
            return Err(ApiError::invalid(format!(
                "{spec:?} is no tag, version or range of package {}",
                wanted.package
            )));
        }
        eligible
            .into_iter()
            .filter(|c| ecosystem.satisfies(&c.version.name, spec) == Some(true))
            .max_by(|a, b| order(Some(ecosystem), a, b))
            .ok_or_else(|| {
                ApiError::not_found(format!("no version of {} satisfies {spec}", wanted.package))
            })?
    };
    let origin = crate::http_server::public_origin(state.config.public_url.as_ref(), &headers);
    let segment = crate::frontend::percent_encode;
    let files = chosen
        .version
        .files
        .iter()
        .map(|(name, file)| ResolvedFile {
            name: name.clone(),
            size: file.size,
            sha256: file.sha256,
            url: format!(
                "{origin}/api/v1/registries/{}/packages/{}/versions/{}/files/{}",
                segment(&chosen.member),
                segment(&wanted.package),
                segment(&chosen.version.name),
                segment(name)
            ),
        })
        .collect();
    Ok(Json(ResolvedVersion {
        registry: registry.name.clone(),
        member: chosen.member.clone(),
        package: wanted.package.clone(),
        version: chosen.version.name.clone(),
        tags: tags
            .iter()
            .filter(|(_, target)| **target == chosen.version.name)
            .map(|(tag, _)| tag.clone())
            .collect(),
        created_at: chosen.version.created_at,
        metadata: chosen.version.metadata.clone(),
        files,
    }))
}

fn registry_named(state: &AppState, name: &str) -> Result<Registry, ApiError> {
    state
        .meta
        .read(|view| view.registry(name))?
        .ok_or_else(|| ApiError::not_found(format!("registry {name} not found")))
}

/// The versions of `package` through `registry` (each from the first member holding it) and its
/// tags (each from the first member having it).
fn candidates(
    state: &AppState,
    registry: &Registry,
    package: &str,
) -> Result<(Vec<Candidate>, BTreeMap<String, String>), ApiError> {
    let mut versions: BTreeMap<String, Candidate> = BTreeMap::new();
    let mut tags = BTreeMap::new();
    for member in proxy::resolution_order(state, registry) {
        let Some(contents) = state
            .meta
            .read(|view| view.package_contents(&member.name, package))?
        else {
            continue;
        };
        for (tag, target) in contents.tags {
            tags.entry(tag).or_insert(target);
        }
        for (name, version) in contents.versions {
            versions.entry(name).or_insert(Candidate {
                member: member.name.clone(),
                version,
            });
        }
    }
    Ok((versions.into_values().collect(), tags))
}

/// `GET /api/v1/registries/{registry}/packages/{package}/versions/{version}/files/{file}`: a file
/// of any format's version, unless the firewall or quarantine holds the version back.
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    PathParams((registry, package, version, file)): PathParams<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let registry = state.registry_for(&caller, &registry, Role::Read)?;
    firewall::check_read(&state, &registry, &package, &version)?;
    let members = proxy::resolution_order(&state, &registry);
    let found =
        proxy::find_or_fetch_file(&state, &members, (&package, &version, &file), |_| None).await?;
    let (holder, blob) = found
        .ok_or_else(|| ApiError::not_found(format!("{package} {version} has no file {file}")))?;
    let download = Download::of(&holder.name, &package, &version, &caller);
    Ok(crate::frontend::serve_file(
        &state,
        &headers,
        &blob,
        Some(download),
    ))
}
