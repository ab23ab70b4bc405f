//! Remote Debian registries: a caching proxy of an upstream archive (a Debian mirror, a local
//! static repository, another Arca registry). The upstream's `dists/<suite>/Release` and the
//! `Packages` files it lists are cached documents (served stale when the upstream fails); each
//! `Packages` file is checked against the SHA-256 the `Release` lists before it is used. A remote
//! registry serves the upstream's `Release` again, its hash lists cut to the `Packages` files Arca
//! serves, signed with the registry's own key. A pool file is fetched once and checked against the
//! SHA-256 its upstream `Packages` paragraph lists; what each `Packages` lists is kept in memory
//! per node ([`PoolFiles`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;

use arca_protocol::{Registry, Sha256};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;

use super::control::Paragraph;
use super::index::IndexKey;
use super::{Context, parts_response};
use crate::frontend::package_index::{Parts, Served, UpstreamFiles, served_whole};
use crate::frontend::{ApiError, read_small_blob};
use crate::meta::StateRead;
use crate::proxy::ProxyError;

/// The hash lists of a `Release`, which Arca writes again (SHA-256 only).
const HASH_FIELDS: [&str; 4] = ["MD5Sum", "SHA1", "SHA256", "SHA512"];

/// The `Packages` files Arca serves, by name.
const SERVED_NAMES: [&str; 2] = ["Packages", "Packages.gz"];

/// A pool file an upstream `Packages` lists.
#[derive(Debug, Clone)]
pub struct PoolFile {
    pub version: String,
    pub sha256: Sha256,
}

/// The pool files remote registries' upstreams list.
pub type PoolFiles = UpstreamFiles<PoolFile>;

/// An upstream `Release`: its fields, and the files its `SHA256` list gives (path to hash and
/// size).
struct UpstreamRelease {
    paragraph: Paragraph,
    files: BTreeMap<String, (String, u64)>,
}

fn bad_upstream(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "UPSTREAM", message)
}

/// A cached upstream document's bytes, or `None` when the upstream does not have it.
async fn document(
    ctx: &Context<'_>,
    member: &Registry,
    key: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, ApiError> {
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

/// The upstream's `Release` of `suite`, or `None` when it has no such suite.
async fn upstream_release(
    ctx: &Context<'_>,
    member: &Registry,
    suite: &str,
) -> Result<Option<UpstreamRelease>, ApiError> {
    let path = format!("dists/{suite}/Release");
    let Some(bytes) = document(ctx, member, &format!("debian.{path}"), &path).await? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| bad_upstream(format!("the upstream's {path} is not text")))?;
    let paragraph =
        Paragraph::parse(&text).map_err(|e| bad_upstream(format!("the upstream's {path}: {e}")))?;
    let mut files = BTreeMap::new();
    for line in paragraph.get("SHA256").unwrap_or_default().lines() {
        let mut fields = line.split_whitespace();
        if let (Some(hash), Some(size), Some(file), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
            && let Ok(size) = size.parse::<u64>()
        {
            files.insert(file.to_string(), (hash.to_ascii_lowercase(), size));
        }
    }
    Ok(Some(UpstreamRelease { paragraph, files }))
}

/// The upstream's file `<component>/binary-<arch>/<name>` of the index `key`, checked against the
/// hash its `Release` lists; `None` when the `Release` does not list it (or the upstream lacks it).
async fn index_bytes(
    ctx: &Context<'_>,
    member: &Registry,
    key: &IndexKey,
    release: &UpstreamRelease,
    name: &str,
) -> Result<Option<Vec<u8>>, ApiError> {
    let file = format!("{}/binary-{}/{name}", key.component, key.architecture);
    let Some((expected, _)) = release.files.get(&file) else {
        return Ok(None);
    };
    let path = format!("dists/{}/{file}", key.suite);
    let Some(bytes) = document(ctx, member, &format!("debian.{path}"), &path).await? else {
        return Ok(None);
    };
    let actual = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
    if &actual != expected {
        return Err(bad_upstream(format!(
            "the upstream's {path} has SHA-256 {actual}, its Release lists {expected}"
        )));
    }
    Ok(Some(bytes))
}

/// The upstream's `Packages` of `key`, plain and gzip'd, read from the first form its `Release`
/// lists (gzip, xz or plain); `None` when it has no such index. The pool files it lists are
/// remembered.
pub async fn served(
    ctx: &Context<'_>,
    member: &Registry,
    key: &IndexKey,
) -> Result<Option<Served>, ApiError> {
    let cache_key = format!(
        "debian.remote/{}/{}/{}/{}",
        member.name, key.suite, key.component, key.architecture
    );
    let plain = ctx
        .state
        .render_once(&cache_key, || async {
            let Some(release) = upstream_release(ctx, member, &key.suite).await? else {
                return Ok(Bytes::new());
            };
            let mut plain = None;
            for name in ["Packages.gz", "Packages.xz", "Packages"] {
                if let Some(bytes) = index_bytes(ctx, member, key, &release, name).await? {
                    plain = Some(unpack(name, bytes)?);
                    break;
                }
            }
            let plain = plain.unwrap_or_default();
            ctx.state
                .debian
                .remote_pool
                .learn(member, listed_pool_files(&plain));
            Ok::<_, ApiError>(Bytes::from(plain))
        })
        .await?;
    if plain.is_empty() {
        return Ok(None);
    }
    let entries = plain
        .split(|byte| *byte == b'\n')
        .filter(|line| line.starts_with(b"Package:"))
        .count() as u64;
    let gzip_key = format!("{cache_key}.gz");
    Ok(Some(
        served_whole(ctx.state, &gzip_key, plain, entries).await?,
    ))
}

/// The text of a `Packages` file fetched as `name`.
fn unpack(name: &str, bytes: Vec<u8>) -> Result<Vec<u8>, ApiError> {
    let failed = |e: String| bad_upstream(format!("the upstream's {name} cannot be unpacked: {e}"));
    let mut plain = Vec::new();
    match name {
        "Packages.gz" => {
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut plain)
                .map_err(|e| failed(e.to_string()))?;
        }
        "Packages.xz" => {
            lzma_rs::xz_decompress(&mut &bytes[..], &mut plain)
                .map_err(|e| failed(e.to_string()))?;
        }
        _ => plain = bytes,
    }
    Ok(plain)
}

/// The pool files a `Packages` text lists, by path.
fn listed_pool_files(text: &[u8]) -> HashMap<String, PoolFile> {
    let text = String::from_utf8_lossy(text);
    Paragraph::parse_all(&text)
        .filter_map(Result::ok)
        .filter_map(|paragraph| {
            let path = paragraph.get("Filename")?.to_string();
            let sha256 = paragraph.get("SHA256")?.parse::<Sha256>().ok()?;
            let version = paragraph.get("Version")?.to_string();
            Some((path, PoolFile { version, sha256 }))
        })
        .collect()
}

/// The pool file at `path` as the upstream lists it (reading the `Packages` files this registry
/// has cached when this node has not read them yet); `None` when none lists it.
pub async fn pool_file(
    ctx: &Context<'_>,
    member: &Registry,
    path: &str,
) -> Result<Option<PoolFile>, ApiError> {
    if let Some(found) = ctx.state.debian.remote_pool.get(member, path) {
        return Ok(Some(found));
    }
    let cached = ctx
        .state
        .meta
        .view()?
        .cached_keys(&member.name, "debian.dists/")?;
    let indexes: BTreeSet<IndexKey> = cached
        .iter()
        .filter_map(|key| {
            let parts: Vec<&str> = key.strip_prefix("debian.dists/")?.split('/').collect();
            match parts.as_slice() {
                [suite, component, binary, _] => Some(IndexKey {
                    suite: suite.to_string(),
                    component: component.to_string(),
                    architecture: binary.strip_prefix("binary-")?.to_string(),
                }),
                _ => None,
            }
        })
        .collect();
    for key in indexes {
        served(ctx, member, &key).await?;
    }
    Ok(ctx.state.debian.remote_pool.get(member, path))
}

/// The components of the upstream's `suite` (no architectures: a virtual registry lists those of
/// its hosted members and the usual ones, not every one of a mirror's).
pub async fn layout(
    ctx: &Context<'_>,
    member: &Registry,
    suite: &str,
) -> Result<BTreeMap<String, BTreeSet<String>>, ApiError> {
    let Some(release) = upstream_release(ctx, member, suite).await? else {
        return Ok(BTreeMap::new());
    };
    Ok(release
        .paragraph
        .get("Components")
        .unwrap_or_default()
        .split_whitespace()
        .map(|component| (component.to_string(), BTreeSet::new()))
        .collect())
}

/// The `Release` a remote registry serves for `suite`: the upstream's, its hash lists cut to the
/// `Packages` files served (SHA-256), without the upstream's `Signed-By`.
pub async fn release_text(
    ctx: &Context<'_>,
    registry: &Registry,
    suite: &str,
) -> Result<Option<String>, ApiError> {
    let Some(release) = upstream_release(ctx, registry, suite).await? else {
        return Ok(None);
    };
    let mut paragraph = release.paragraph.clone();
    for field in HASH_FIELDS.iter().chain(&["Signed-By"]) {
        paragraph.remove(field);
    }
    let listed: String = release
        .files
        .iter()
        .filter(|(path, _)| {
            let mut parts = path.rsplitn(3, '/');
            let (name, binary) = (parts.next(), parts.next());
            name.is_some_and(|name| SERVED_NAMES.contains(&name))
                && binary.is_some_and(|binary| binary.starts_with("binary-"))
        })
        .map(|(path, (hash, size))| format!("\n {hash} {size:>16} {path}"))
        .collect();
    paragraph.set("SHA256", listed);
    Ok(Some(paragraph.render()))
}

/// `GET dists/<suite>/<component>/binary-<arch>/<name>` of a remote registry: the upstream's file,
/// checked against its `Release`.
pub async fn index_file(
    ctx: &Context<'_>,
    registry: &Registry,
    key: &IndexKey,
    name: &str,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("{name} of {key:?} not found upstream"));
    let release = upstream_release(ctx, registry, &key.suite)
        .await?
        .ok_or_else(not_found)?;
    // Reading the index remembers the pool files it lists.
    let unpacked = served(ctx, registry, key).await?.ok_or_else(not_found)?;
    let parts = if name == "Packages" {
        // Mirrors list the plain file's hash but serve only compressed forms: the plain file
        // is the one unpacked, checked against that hash.
        let path = format!("{}/binary-{}/Packages", key.component, key.architecture);
        let (expected, _) = release.files.get(&path).ok_or_else(not_found)?;
        let actual = unpacked.plain.sha256();
        if &actual != expected {
            return Err(bad_upstream(format!(
                "the upstream's {path} unpacks to SHA-256 {actual}, its Release lists {expected}"
            )));
        }
        unpacked.plain
    } else {
        let bytes = index_bytes(ctx, registry, key, &release, name)
            .await?
            .ok_or_else(not_found)?;
        Parts(vec![Bytes::from(bytes)])
    };
    Ok(parts_response(parts, "application/octet-stream"))
}

/// `GET .../by-hash/SHA256/<hex>` of a remote registry: the file of the index its upstream's
/// `Release` lists with that hash.
pub async fn by_hash(
    ctx: &Context<'_>,
    registry: &Registry,
    key: &IndexKey,
    sha256: &str,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no file with SHA-256 {sha256}"));
    let release = upstream_release(ctx, registry, &key.suite)
        .await?
        .ok_or_else(not_found)?;
    let directory = format!("{}/binary-{}/", key.component, key.architecture);
    let name = release
        .files
        .iter()
        .find(|(path, (hash, _))| hash == sha256 && path.starts_with(&directory))
        .and_then(|(path, _)| path.strip_prefix(&directory))
        .filter(|name| SERVED_NAMES.contains(name))
        .ok_or_else(not_found)?
        .to_string();
    index_file(ctx, registry, key, &name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_files_are_read_from_packages() {
        let listed = listed_pool_files(
            format!(
                "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nFilename: pool/main/h/hello/hello_2.10-3_amd64.deb\nSHA256: {}\n\nPackage: broken\n",
                "a".repeat(64)
            )
            .as_bytes(),
        );
        assert_eq!(listed.len(), 1);
        let file = &listed["pool/main/h/hello/hello_2.10-3_amd64.deb"];
        assert_eq!(file.version, "2.10-3");
        assert_eq!(file.sha256.to_hex(), "a".repeat(64));
    }
}
