//! Remote RubyGems registries: a caching proxy of a gem server with a compact index (such as
//! `https://rubygems.org`). `versions`, `names`, `info/<gem>` and the Marshal spec lists are cached
//! documents (served stale when the upstream fails); a `.gem` is fetched once, checked against the
//! `checksum` its upstream info line gives, and kept as a version of the remote registry, and so is
//! its `.gemspec.rz`.

use std::collections::BTreeMap;

use arca_protocol::{BlobRef, Registry, Sha256};

use super::Context;
use crate::frontend::{TextError, read_small_blob};
use crate::proxy::{Expected, ProxyError};

/// A cached upstream document's bytes, or `None` when the upstream does not have it.
pub async fn document(
    ctx: &Context<'_>,
    member: &Registry,
    key: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, TextError> {
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

/// The lines after a compact index file's `---` header.
fn body_lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    if text.contains("---") {
        for line in lines.by_ref() {
            if line.trim_end() == "---" {
                break;
            }
        }
    }
    lines
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The upstream's `versions` lines (after its header), each ending in a newline.
pub async fn versions_lines(ctx: &Context<'_>, member: &Registry) -> Result<String, TextError> {
    let Some(bytes) = document(ctx, member, "rubygems.versions", "versions").await? else {
        return Ok(String::new());
    };
    Ok(body_lines(&bytes)
        .into_iter()
        .map(|line| line + "\n")
        .collect())
}

/// The gem names the upstream lists.
pub async fn names(ctx: &Context<'_>, member: &Registry) -> Result<Vec<String>, TextError> {
    Ok(document(ctx, member, "rubygems.names", "names")
        .await?
        .map(|bytes| body_lines(&bytes))
        .unwrap_or_default())
}

/// The upstream's info lines of `name`, by version (`<number>[-<platform>]`).
pub async fn info_lines(
    ctx: &Context<'_>,
    member: &Registry,
    name: &str,
) -> Result<BTreeMap<String, String>, TextError> {
    let path = format!("info/{name}");
    let Some(bytes) = document(ctx, member, &format!("rubygems.info/{name}"), &path).await? else {
        return Ok(BTreeMap::new());
    };
    Ok(body_lines(&bytes)
        .into_iter()
        .filter_map(|line| {
            let version = line.split(' ').next()?.to_string();
            Some((version, line))
        })
        .collect())
}

/// Which file of a gem version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemFile {
    /// `gems/<full name>.gem`.
    Gem,
    /// `quick/Marshal.4.8/<full name>.gemspec.rz`.
    Gemspec,
}

/// The `.gem` or `.gemspec.rz` of the version `full` (`<gem>-<version>`) in the remote registry
/// `member`: kept already, or fetched from the upstream, with the gem's name and version as `full`
/// splits into them. `None` when the upstream's info does not list the version.
pub async fn gem_file<'f>(
    ctx: &Context<'_>,
    member: &Registry,
    full: &'f str,
    which: GemFile,
) -> Result<Option<((&'f str, &'f str), BlobRef)>, TextError> {
    for (name, version) in super::split_full_name(full) {
        let lines = info_lines(ctx, member, name).await?;
        let Some(line) = lines.get(version) else {
            continue;
        };
        let (file, path, sha256) = match which {
            GemFile::Gem => {
                let checksum = line
                    .rsplit('|')
                    .next()
                    .into_iter()
                    .flat_map(|requirements| requirements.split(','))
                    .find_map(|pair| pair.strip_prefix("checksum:"))
                    .and_then(|hex| hex.parse::<Sha256>().ok());
                (format!("{full}.gem"), format!("gems/{full}.gem"), checksum)
            }
            GemFile::Gemspec => (
                format!("{full}.gemspec.rz"),
                format!("quick/Marshal.4.8/{full}.gemspec.rz"),
                None,
            ),
        };
        let found = crate::proxy::find_or_fetch_file(
            ctx.state,
            std::slice::from_ref(member),
            (name, version, &file),
            |_| {
                Some((
                    path.clone(),
                    Expected {
                        sha256,
                        ..Expected::default()
                    },
                ))
            },
        )
        .await;
        return match found {
            Ok(found) => Ok(found.map(|(_, blob)| ((name, version), blob))),
            Err(ProxyError::NotFound(_)) => Ok(None),
            Err(error) => Err(error.into()),
        };
    }
    Ok(None)
}
