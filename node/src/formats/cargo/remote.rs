//! Remote Cargo registries: a caching proxy of a sparse index (`https://index.crates.io/`, or any
//! registry's `sparse+` URL without the prefix). Its `config.json` and each crate's index file are
//! cached documents (served stale when the upstream fails); a `.crate` is fetched once from the
//! upstream's `dl` location, checked against the index's `cksum`, and stored as a version of the
//! remote registry.

use std::collections::BTreeMap;

use arca_protocol::{BlobRef, Registry, Sha256};
use serde::Deserialize;

use super::names::CrateName;
use super::{CargoError, Context};
use crate::frontend::read_small_blob;
use crate::proxy::{Expected, ProxyError};

/// The cache key of the upstream's `config.json`.
const CONFIG_KEY: &str = "cargo.config";

/// The part of an upstream index line a download needs.
#[derive(Debug, Deserialize)]
struct UpstreamEntry {
    vers: String,
    cksum: String,
}

/// The part of an upstream `config.json` a download needs.
#[derive(Debug, Deserialize)]
struct UpstreamConfig {
    dl: String,
}

/// A cached upstream document's bytes, or `None` when the upstream does not have it.
async fn document(
    ctx: &Context<'_>,
    member: &Registry,
    key: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, CargoError> {
    match ctx
        .state
        .proxy
        .document(ctx.state, member, key, path, None)
        .await
    {
        Ok(document) => Ok(Some(
            read_small_blob(ctx.state, &document.cached.blob).await?,
        )),
        Err(ProxyError::NotFound(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The upstream's index lines of `name`, by version, as the upstream wrote them.
pub async fn index_lines(
    ctx: &Context<'_>,
    member: &Registry,
    name: &CrateName,
) -> Result<BTreeMap<String, String>, CargoError> {
    let path = name.index_path();
    let Some(bytes) = document(ctx, member, &format!("cargo.index/{path}"), &path).await? else {
        return Ok(BTreeMap::new());
    };
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .lines()
        .filter_map(|line| {
            let entry: UpstreamEntry = serde_json::from_str(line).ok()?;
            Some((entry.vers, line.to_string()))
        })
        .collect())
}

/// The `.crate` of `name` `version` in the remote registry `member`: stored already, or fetched from
/// the upstream's download location and checked against its index's checksum. `None` when the
/// upstream's index does not list the version.
pub async fn crate_file(
    ctx: &Context<'_>,
    member: &Registry,
    name: &CrateName,
    version: &str,
) -> Result<Option<BlobRef>, CargoError> {
    let lines = index_lines(ctx, member, name).await?;
    let Some(line) = lines.get(version) else {
        return Ok(None);
    };
    let entry: UpstreamEntry = serde_json::from_str(line)
        .map_err(|e| CargoError::bad_request(format!("the upstream's index line: {e}")))?;
    let cksum: Sha256 = entry
        .cksum
        .parse()
        .map_err(|e| CargoError::bad_request(format!("the upstream's index line: {e}")))?;
    let config = document(ctx, member, CONFIG_KEY, "config.json")
        .await?
        .ok_or_else(|| CargoError::not_found("the upstream index has no config.json"))?;
    let config: UpstreamConfig = serde_json::from_slice(&config)
        .map_err(|e| CargoError::bad_request(format!("the upstream's config.json: {e}")))?;
    let url = download_url(&config.dl, name, version, &entry.cksum);
    let found = crate::proxy::find_or_fetch_file(
        ctx.state,
        std::slice::from_ref(member),
        (&name.package(), version, &name.file(version)),
        |_| {
            Some((
                url.clone(),
                Expected {
                    sha256: Some(cksum),
                    ..Expected::default()
                },
            ))
        },
    )
    .await?;
    Ok(found.map(|(_, blob)| blob))
}

/// Where a `.crate` downloads from, per the registry's `dl` template: its markers replaced, or
/// `/{crate}/{version}/download` appended when it has none.
fn download_url(dl: &str, name: &CrateName, version: &str, cksum: &str) -> String {
    const MARKERS: [&str; 5] = [
        "{crate}",
        "{version}",
        "{prefix}",
        "{lowerprefix}",
        "{sha256-checksum}",
    ];
    if !MARKERS.iter().any(|marker| dl.contains(marker)) {
        return format!(
            "{}/{}/{version}/download",
            dl.trim_end_matches('/'),
            name.as_str()
        );
    }
    let prefix = name.prefix();
    let lower_prefix = prefix.to_ascii_lowercase();
    dl.replace("{crate}", name.as_str())
        .replace("{version}", version)
        .replace("{prefix}", &prefix)
        .replace("{lowerprefix}", &lower_prefix)
        .replace("{sha256-checksum}", cksum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_urls_follow_the_dl_template() {
        let name = CrateName::parse("Serde").expect("valid");
        assert_eq!(
            download_url("https://static.crates.io/crates", &name, "1.0.0", "ab"),
            "https://static.crates.io/crates/Serde/1.0.0/download"
        );
        assert_eq!(
            download_url(
                "https://x.example/{prefix}/{lowerprefix}/{crate}-{version}.crate?c={sha256-checksum}",
                &name,
                "1.0.0",
                "ab"
            ),
            "https://x.example/Se/rd/se/rd/Serde-1.0.0.crate?c=ab"
        );
        let short = CrateName::parse("syn").expect("valid");
        assert_eq!(
            download_url("https://x.example/{prefix}/{crate}", &short, "2.0.0", ""),
            "https://x.example/3/s/syn"
        );
    }
}
