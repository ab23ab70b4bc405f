//! Remote NuGet registries: a caching proxy of a v3 feed, the upstream URL being its service index
//! (`https://api.nuget.org/v3/index.json`). The service index, and a package's registration index
//! (and any page it does not inline), are cached documents, served stale when the upstream fails;
//! a `.nupkg` is fetched once from the upstream's package base address, checked against the
//! SHA-512 the registration gives where it gives one (an Arca upstream does), and kept as a version
//! of the remote registry.

use std::io::Read;

use arca_protocol::Registry;
use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::Value;

use super::package::{Dependency, DependencyGroup, PackageMetadata};
use super::{Context, Entry, nupkg_file};
use crate::ecosystems::nuget_version;
use crate::frontend::{ApiError, read_small_blob};
use crate::proxy::{Expected, ProxyError};

fn upstream_error(what: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "UPSTREAM",
        format!("the upstream's {what}: {why}"),
    )
}

/// The JSON document at `url` (absolute, or under the upstream) cached under `key`; `None` when
/// the upstream has none. Gzip'd documents (nuget.org stores some so) are unpacked.
async fn document(
    ctx: &Context<'_>,
    member: &Registry,
    key: &str,
    url: &str,
) -> Result<Option<Value>, ApiError> {
    let document = match ctx
        .state
        .proxy
        .document(ctx.state, member, key, url, Some("application/json"))
        .await
    {
        Ok(document) => document,
        Err(ProxyError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let mut bytes = read_small_blob(ctx.state, &document.cached.blob).await?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .take(256 * 1024 * 1024)
            .read_to_end(&mut unpacked)
            .map_err(|e| upstream_error(url, e))?;
        bytes = unpacked;
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| upstream_error(url, e))
}

/// The upstream resource of the first of `types` its service index lists, as a base URL ending
/// in `/`.
async fn resource(
    ctx: &Context<'_>,
    member: &Registry,
    types: &[&str],
) -> Result<String, ApiError> {
    let url = member
        .upstream
        .as_ref()
        .map(|upstream| upstream.url.clone())
        .ok_or_else(|| upstream_error("service index", "the registry has no upstream"))?;
    let index = document(ctx, member, "nuget.index", &url)
        .await?
        .ok_or_else(|| upstream_error("service index", format!("{url} was not found")))?;
    let resources = index
        .get("resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    types
        .iter()
        .find_map(|wanted| {
            resources.iter().find_map(|resource| {
                (resource.get("@type").and_then(Value::as_str) == Some(wanted))
                    .then(|| resource.get("@id").and_then(Value::as_str))
                    .flatten()
            })
        })
        .map(|id| format!("{}/", id.trim_end_matches('/')))
        .ok_or_else(|| upstream_error("service index", format!("it lists no {}", types[0])))
}

/// The upstream's versions of `id` (lower case), from its registration index.
pub(super) async fn entries(
    ctx: &Context<'_>,
    member: &Registry,
    id: &str,
) -> Result<Vec<Entry>, ApiError> {
    let base = resource(
        ctx,
        member,
        &[
            "RegistrationsBaseUrl/3.6.0",
            "RegistrationsBaseUrl/3.4.0",
            "RegistrationsBaseUrl",
        ],
    )
    .await?;
    let key = format!("nuget.registration/{id}");
    let Some(index) = document(ctx, member, &key, &format!("{base}{id}/index.json")).await? else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for page in index
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let inlined = page.get("items").and_then(Value::as_array).cloned();
        let leaves = match inlined {
            Some(leaves) => leaves,
            None => {
                let url = page.get("@id").and_then(Value::as_str).unwrap_or_default();
                let bounds = ["lower", "upper"]
                    .map(|bound| page.get(bound).and_then(Value::as_str).unwrap_or_default());
                let page_key = format!("{key}/{}-{}", bounds[0], bounds[1]);
                document(ctx, member, &page_key, url)
                    .await?
                    .and_then(|page| page.get("items").and_then(Value::as_array).cloned())
                    .unwrap_or_default()
            }
        };
        found.extend(
            leaves
                .iter()
                .filter_map(|leaf| leaf.get("catalogEntry"))
                .filter_map(entry_of),
        );
    }
    Ok(found)
}

/// A registration leaf's catalog entry as a feed entry; `None` when it is not one.
fn entry_of(catalog: &Value) -> Option<Entry> {
    let text = |key: &str| -> Option<String> {
        match catalog.get(key)? {
            Value::String(text) if !text.is_empty() => Some(text.clone()),
            Value::Array(items) => Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(if key == "tags" { " " } else { ", " }),
            ),
            _ => None,
        }
    };
    let version = nuget_version::normalize(&text("version")?)?;
    let dependency_groups = catalog
        .get("dependencyGroups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|group| DependencyGroup {
            target_framework: group
                .get("targetFramework")
                .and_then(Value::as_str)
                .map(str::to_string),
            dependencies: group
                .get("dependencies")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|dependency| {
                    Some(Dependency {
                        id: dependency.get("id")?.as_str()?.to_string(),
                        range: dependency
                            .get("range")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    })
                })
                .collect(),
        })
        .collect();
    let published_ms = text("published")
        .and_then(|at| humantime::parse_rfc3339_weak(at.trim_end_matches('Z')).ok())
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_millis() as u64);
    Some(Entry {
        metadata: PackageMetadata {
            id: text("id")?,
            version: version.clone(),
            authors: text("authors").unwrap_or_default(),
            description: text("description").unwrap_or_default(),
            title: text("title"),
            summary: text("summary"),
            tags: text("tags"),
            project_url: text("projectUrl"),
            license_url: text("licenseUrl"),
            license: text("licenseExpression"),
            icon_url: text("iconUrl"),
            release_notes: text("releaseNotes"),
            copyright: text("copyright"),
            require_license_acceptance: catalog
                .get("requireLicenseAcceptance")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            dependency_groups,
        },
        version,
        listed: catalog
            .get("listed")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        published_ms,
        size: catalog.get("packageSize").and_then(Value::as_u64),
        sha512: (text("packageHashAlgorithm").as_deref() == Some("SHA512"))
            .then(|| text("packageHash"))
            .flatten(),
        downloads: 0,
    })
}

/// Where the upstream keeps the `.nupkg` of `id` `version` (both lower case) and the SHA-512 it
/// must have where the upstream says; `None` when the upstream does not list that version.
pub(super) async fn locate(
    ctx: &Context<'_>,
    member: &Registry,
    id: &str,
    version: &str,
) -> Result<Option<(String, Expected)>, ApiError> {
    let Some(entry) = entries(ctx, member, id)
        .await?
        .into_iter()
        .find(|entry| entry.key() == version)
    else {
        return Ok(None);
    };
    let base = resource(ctx, member, &["PackageBaseAddress/3.0.0"]).await?;
    let url = format!("{base}{id}/{version}/{}", nupkg_file(id, version));
    let sha512 = entry
        .sha512
        .and_then(|hash| base64::engine::general_purpose::STANDARD.decode(hash).ok());
    Ok(Some((
        url,
        Expected {
            sha512,
            ..Expected::default()
        },
    )))
}
