//! Remote Composer registries: a caching proxy of a Composer repository with `metadata-url` (such as
//! `https://repo.packagist.org`). A package's metadata files (`p2/<name>.json` and `~dev.json`) are
//! cached documents (served stale when the upstream fails), expanded when the upstream minifies
//! them; a dist zip is fetched once from the URL the upstream names, checked against its `shasum`
//! when it gives one, and kept as a version of the remote registry.

use std::collections::BTreeMap;

use arca_protocol::{BlobRef, Registry};
use serde_json::{Map, Value};

use super::{Context, dist_file, is_dev};
use crate::frontend::{ApiError, read_small_blob};
use crate::proxy::{Expected, ProxyError};

/// The upstream's entries of `name` (tagged versions and branches), by version, as it wrote them.
pub async fn entries(
    ctx: &Context<'_>,
    member: &Registry,
    name: &str,
) -> Result<BTreeMap<String, Map<String, Value>>, ApiError> {
    let mut all = BTreeMap::new();
    for suffix in ["", "~dev"] {
        let path = format!("p2/{name}{suffix}.json");
        let document = match ctx
            .state
            .proxy
            .document(ctx.state, member, &format!("composer.{path}"), &path, None)
            .await
        {
            Ok(document) => document,
            Err(ProxyError::NotFound(_)) => continue,
            Err(error) => return Err(error.into()),
        };
        let bytes = read_small_blob(ctx.state, &document.cached.blob).await?;
        let document: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "UPSTREAM",
                format!("the upstream's {path}: {e}"),
            )
        })?;
        let minified = document.get("minified").is_some();
        let listed = document
            .get("packages")
            .and_then(|packages| packages.get(name))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for entry in expand(listed, minified) {
            if let Some(version) = entry.get("version").and_then(Value::as_str) {
                all.insert(version.to_string(), entry);
            }
        }
    }
    Ok(all)
}

/// Composer 2's minified lists: each entry holds only what differs from the one before it, and
/// `"__unset"` removes a key.
fn expand(listed: Vec<Value>, minified: bool) -> Vec<Map<String, Value>> {
    let mut expanded = Vec::with_capacity(listed.len());
    let mut previous = Map::new();
    for entry in listed {
        let Value::Object(entry) = entry else {
            continue;
        };
        let full = if minified {
            let mut full = previous.clone();
            for (key, value) in entry {
                if value == Value::String("__unset".into()) {
                    full.remove(&key);
                } else {
                    full.insert(key, value);
                }
            }
            previous = full.clone();
            full
        } else {
            entry
        };
        expanded.push(full);
    }
    expanded
}

/// The dist zip of `name` `version` in the remote registry `member`: kept already, or fetched from
/// the URL the upstream's metadata names. `None` when the upstream does not list the version.
pub async fn dist(
    ctx: &Context<'_>,
    member: &Registry,
    name: &str,
    version: &str,
    file: &str,
) -> Result<Option<BlobRef>, ApiError> {
    debug_assert_eq!(file, dist_file(name, version));
    let entries = entries(ctx, member, name).await?;
    let Some(entry) = entries.get(version) else {
        return Ok(None);
    };
    let Some(url) = entry
        .get("dist")
        .and_then(|dist| dist.get("url"))
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Ok(None);
    };
    let sha1 = entry
        .get("dist")
        .and_then(|dist| dist.get("shasum"))
        .and_then(Value::as_str)
        .filter(|shasum| !shasum.is_empty() && !is_dev(version))
        .and_then(|shasum| hex::decode(shasum).ok());
    let found = crate::proxy::find_or_fetch_file(
        ctx.state,
        std::slice::from_ref(member),
        (name, version, file),
        |_| {
            Some((
                url.clone(),
                Expected {
                    sha1: sha1.clone(),
                    ..Expected::default()
                },
            ))
        },
    )
    .await;
    match found {
        Ok(found) => Ok(found.map(|(_, blob)| blob)),
        Err(ProxyError::NotFound(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minified_lists_expand_entry_by_entry() {
        let listed = vec![
            json!({ "name": "a/b", "version": "2.0.0", "require": { "php": ">=8" } }),
            json!({ "version": "1.0.0", "require": "__unset" }),
        ];
        let expanded = expand(listed, true);
        assert_eq!(expanded[1]["name"], "a/b");
        assert_eq!(expanded[1]["version"], "1.0.0");
        assert!(expanded[1].get("require").is_none());
        assert_eq!(expanded[0]["require"]["php"], ">=8");
    }
}
