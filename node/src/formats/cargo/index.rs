//! The sparse index: `config.json` and one file per crate, a line of JSON per version, as cargo
//! reads them. A hosted registry renders each line from what the version recorded at publish
//! ([`INDEX_ENTRY`]) and whether it is yanked; a remote registry passes its upstream's lines
//! through; a virtual registry serves the versions of its members, the first member holding a
//! version giving its line.

use std::collections::BTreeMap;

use arca_protocol::{Registry, RegistryKind, Role};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::names::CrateName;
use super::{CargoError, Context, remote};
use crate::meta::StateRead;
use crate::proxy;

/// The version attribute holding its index entry (without `yanked`), as JSON.
pub const INDEX_ENTRY: &str = "cargo.index";
/// The version attribute set while a version is yanked.
pub const YANKED: &str = "cargo.yanked";

/// One line of an index file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The crate's name as published.
    pub name: String,
    /// The version.
    pub vers: String,
    /// Its dependencies.
    pub deps: Vec<IndexDependency>,
    /// The sha256 of the `.crate` file, hex.
    pub cksum: String,
    /// Features in the syntax every cargo reads.
    pub features: BTreeMap<String, Vec<String>>,
    /// Features that use `dep:` or `?/` (cargo 1.60+), with `v: 2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features2: Option<BTreeMap<String, Vec<String>>>,
    /// Whether the version is yanked.
    #[serde(default)]
    pub yanked: bool,
    /// The native library the crate links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
    /// The index format version (2 with `features2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<u32>,
    /// The minimum Rust version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rust_version: Option<String>,
}

/// A dependency as the index lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDependency {
    /// The name the depending crate uses (its rename, if any).
    pub name: String,
    /// The version requirement.
    pub req: String,
    /// Features enabled.
    pub features: Vec<String>,
    /// Whether it is optional.
    pub optional: bool,
    /// Whether default features are on.
    pub default_features: bool,
    /// The target platform it applies to.
    pub target: Option<String>,
    /// `normal`, `dev` or `build`.
    pub kind: Option<String>,
    /// The index URL of another registry it comes from (`None`: this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The crate's real name, when `name` is a rename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

/// `GET /index/config.json`: where crates download from and where the API is. Reads need
/// credentials unless the registry allows anonymous reads.
pub fn config(ctx: &Context<'_>) -> Result<Response, CargoError> {
    let registry = ctx.authorize(Role::Read)?;
    let base = ctx.base_url();
    let config = serde_json::json!({
        "dl": format!("{base}/api/v1/crates"),
        "api": base,
        "auth-required": !registry.allow_anonymous_read,
    });
    Ok(json_response(config.to_string()))
}

/// `GET /index/<path>`: the index file of one crate.
pub async fn file(ctx: &Context<'_>, name: &CrateName) -> Result<Response, CargoError> {
    let registry = ctx.authorize(Role::Read)?;
    let lines = lines(ctx, &registry, name).await?;
    if lines.is_empty() {
        return Err(CargoError::not_found(format!(
            "crate {} not found",
            name.as_str()
        )));
    }
    let mut body = lines.into_values().collect::<Vec<_>>().join("\n");
    body.push('\n');
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
}

/// The index lines of `name` through `registry`, by version: each version from the first member
/// that has it.
pub async fn lines(
    ctx: &Context<'_>,
    registry: &Registry,
    name: &CrateName,
) -> Result<BTreeMap<String, String>, CargoError> {
    let mut lines = BTreeMap::new();
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, registry) {
        let found = match member.kind {
            RegistryKind::Remote => match remote::index_lines(ctx, &member, name).await {
                Ok(found) => found,
                Err(error) => {
                    failure = Some(error);
                    continue;
                }
            },
            _ => stored_lines(ctx, &member, name)?,
        };
        for (version, line) in found {
            lines.entry(version).or_insert(line);
        }
    }
    match failure {
        Some(error) if lines.is_empty() => Err(error),
        _ => Ok(lines),
    }
}

/// The lines a hosted registry renders for `name`, by version.
fn stored_lines(
    ctx: &Context<'_>,
    member: &Registry,
    name: &CrateName,
) -> Result<BTreeMap<String, String>, CargoError> {
    let Some(package) = ctx
        .state
        .meta
        .read(|view| view.package_contents(&member.name, &name.package()))?
    else {
        return Ok(BTreeMap::new());
    };
    let mut lines = BTreeMap::new();
    for (version, stored) in &package.versions {
        let Some(mut entry) = stored
            .attributes
            .get(INDEX_ENTRY)
            .and_then(|json| serde_json::from_str::<IndexEntry>(json).ok())
        else {
            continue;
        };
        // The index file of one spelling is not the other's: `foo_bar` is not at `foo-bar`'s path.
        if !entry.name.eq_ignore_ascii_case(name.as_str()) {
            continue;
        }
        entry.yanked = stored.attributes.contains_key(YANKED);
        let line = serde_json::to_string(&entry).map_err(CargoError::internal)?;
        lines.insert(version.clone(), line);
    }
    Ok(lines)
}

/// A JSON answer.
pub fn json_response(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}
