//! Remote Helm registries: a caching proxy of a chart repository. Its `index.yaml` is a cached
//! document (served stale when the upstream fails); a chart is fetched once from the URL the index
//! lists for it (relative URLs resolved against the repository), checked against the index's
//! `digest`, and stored as a version of the remote registry.

use std::collections::BTreeMap;

use arca_protocol::{BlobRef, Registry, Sha256};
use serde_json::Value;

use crate::AppState;
use crate::frontend::{ApiError, read_small_blob};
use crate::proxy::{Expected, ProxyError};

/// The cache key of the upstream's `index.yaml`.
const INDEX_KEY: &str = "helm.index";

/// The upstream's index entries, by chart and version, as it wrote them.
pub async fn entries(
    state: &AppState,
    member: &Registry,
) -> Result<BTreeMap<String, BTreeMap<String, Value>>, ApiError> {
    let document = match state
        .proxy
        .document(state, member, INDEX_KEY, "index.yaml", None)
        .await
    {
        Ok(document) => document,
        Err(ProxyError::NotFound(_)) => return Ok(BTreeMap::new()),
        Err(error) => return Err(error.into()),
    };
    let bytes = read_small_blob(state, &document.cached.blob).await?;
    let index: Value = serde_yaml_ng::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("the upstream's index.yaml: {e}")))?;
    let mut all = BTreeMap::new();
    for (name, versions) in index
        .get("entries")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let versions: BTreeMap<String, Value> = versions
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let version = entry.get("version")?.as_str()?.to_string();
                Some((version, entry.clone()))
            })
            .collect();
        all.insert(name.clone(), versions);
    }
    Ok(all)
}

/// The chart archive (or provenance file, `file`) of `name` `version` in the remote registry
/// `member`: stored already, or fetched from where the upstream's index says. `None` when the
/// index does not list the version.
pub async fn chart(
    state: &AppState,
    member: &Registry,
    name: &str,
    version: &str,
    file: &str,
) -> Result<Option<BlobRef>, ApiError> {
    let entries = entries(state, member).await?;
    let Some(entry) = entries.get(name).and_then(|versions| versions.get(version)) else {
        return Ok(None);
    };
    let Some(url) = entry
        .get("urls")
        .and_then(Value::as_array)
        .and_then(|urls| urls.first())
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let prov = file.ends_with(".prov");
    let url = if prov {
        format!("{url}.prov")
    } else {
        url.to_string()
    };
    // The digest is the archive's; a provenance file is taken as the upstream serves it.
    let sha256 = entry
        .get("digest")
        .and_then(Value::as_str)
        .filter(|_| !prov)
        .and_then(|digest| digest.parse::<Sha256>().ok());
    let found = crate::proxy::find_or_fetch_file(
        state,
        std::slice::from_ref(member),
        (name, version, file),
        |_| {
            Some((
                url.clone(),
                Expected {
                    sha256,
                    ..Expected::default()
                },
            ))
        },
    )
    .await?;
    Ok(found.map(|(_, blob)| blob))
}
