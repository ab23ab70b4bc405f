//! Remote RPM registries: a caching proxy of an upstream yum/dnf repository (a distribution's
//! mirror, a static repository made by createrepo_c, another Arca registry). The upstream's
//! `repodata/repomd.xml` and the metadata files it lists are cached documents (served stale when
//! the upstream fails), each checked against the SHA-256 `repomd.xml` gives before use; their
//! packages are served under the remote registry's own `repomd.xml`, signed with its key. A
//! package is fetched once from the upstream's path and checked against the SHA-256 its upstream
//! `primary.xml` entry gives; what `primary.xml` lists is kept in memory per node
//! ([`UpstreamPackages`]).

use std::collections::HashMap;
use std::io::Read;

use arca_protocol::{Registry, Sha256};
use axum::http::StatusCode;
use bytes::Bytes;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::Context;
use super::metadata::MetadataFile;
use crate::frontend::package_index::{Served, UpstreamFiles, served_whole};
use crate::frontend::{ApiError, read_small_blob};
use crate::proxy::ProxyError;

/// A package an upstream `primary.xml` lists.
#[derive(Debug, Clone)]
pub struct ListedPackage {
    pub name: String,
    /// `[epoch:]version-release`.
    pub evr: String,
    pub sha256: Sha256,
}

/// The packages remote registries' upstreams list.
pub type UpstreamPackages = UpstreamFiles<ListedPackage>;

fn bad_upstream(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "UPSTREAM", message)
}

fn attribute(element: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    element
        .attributes()
        .filter_map(Result::ok)
        .find(|attribute| attribute.key.local_name().as_ref() == name)
        .and_then(|attribute| attribute.unescape_value().ok())
        .map(|value| value.into_owned())
}

/// A cached upstream document's bytes, or `None` when the upstream does not have it.
async fn document(
    ctx: &Context<'_>,
    member: &Registry,
    path: &str,
) -> Result<Option<Vec<u8>>, ApiError> {
    match ctx
        .state
        .proxy
        .document(ctx.state, member, &format!("rpm.{path}"), path, None)
        .await
    {
        Ok(document) => Ok(Some(
            read_small_blob(ctx.state, &document.cached.blob).await?,
        )),
        Err(ProxyError::NotFound(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The metadata files the upstream's `repomd.xml` lists: kind to location and SHA-256.
async fn upstream_repomd(
    ctx: &Context<'_>,
    member: &Registry,
) -> Result<HashMap<String, (String, String)>, ApiError> {
    let Some(bytes) = document(ctx, member, "repodata/repomd.xml").await? else {
        return Ok(HashMap::new());
    };
    let invalid =
        |e: &dyn std::fmt::Display| bad_upstream(format!("the upstream's repomd.xml: {e}"));
    let mut reader = Reader::from_reader(&bytes[..]);
    let mut listed = HashMap::new();
    let (mut kind, mut location, mut checksum, mut in_checksum) = (None, None, None, false);
    loop {
        match reader.read_event().map_err(|e| invalid(&e))? {
            Event::Start(element) | Event::Empty(element) => match element.local_name().as_ref() {
                b"data" => kind = attribute(&element, b"type"),
                b"location" => location = attribute(&element, b"href"),
                b"checksum" => {
                    in_checksum = attribute(&element, b"type").as_deref() == Some("sha256")
                }
                _ => {}
            },
            Event::Text(text) if in_checksum => {
                checksum = Some(
                    text.unescape()
                        .map_err(|e| invalid(&e))?
                        .trim()
                        .to_ascii_lowercase(),
                );
            }
            Event::End(element) => match element.local_name().as_ref() {
                b"checksum" => in_checksum = false,
                b"data" => {
                    if let (Some(kind), Some(location), Some(checksum)) =
                        (kind.take(), location.take(), checksum.take())
                    {
                        listed.insert(kind, (location, checksum));
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(listed)
}

/// The upstream's metadata `file`, unpacked, checked against its `repomd.xml`; empty when it
/// lists none.
async fn upstream_metadata(
    ctx: &Context<'_>,
    member: &Registry,
    file: MetadataFile,
) -> Result<Vec<u8>, ApiError> {
    let listed = upstream_repomd(ctx, member).await?;
    let Some((location, expected)) = listed.get(file.kind()) else {
        return Ok(Vec::new());
    };
    if location.split('/').any(|part| part == "..") {
        return Err(bad_upstream(format!("the upstream lists {location}")));
    }
    let bytes = document(ctx, member, location)
        .await?
        .ok_or_else(|| bad_upstream(format!("the upstream lists {location} but has not got it")))?;
    let actual = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
    if &actual != expected {
        return Err(bad_upstream(format!(
            "the upstream's {location} has SHA-256 {actual}, its repomd.xml lists {expected}"
        )));
    }
    let failed = |e: std::io::Error| bad_upstream(format!("the upstream's {location}: {e}"));
    let mut plain = Vec::new();
    if location.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut plain)
            .map_err(failed)?;
    } else if location.ends_with(".zst") {
        zstd::stream::read::Decoder::new(&bytes[..])
            .and_then(|mut decoder| decoder.read_to_end(&mut plain))
            .map_err(failed)?;
    } else if location.ends_with(".xz") {
        lzma_rs::xz_decompress(&mut &bytes[..], &mut plain)
            .map_err(|e| bad_upstream(format!("the upstream's {location}: {e}")))?;
    } else {
        plain = bytes;
    }
    Ok(plain)
}

/// The `<package>` elements of a metadata document (what is between its root element's tags).
fn packages_of(document: &[u8], file: MetadataFile) -> &[u8] {
    let root = match file {
        MetadataFile::Primary => &b"<metadata"[..],
        MetadataFile::Filelists => &b"<filelists"[..],
        MetadataFile::Other => &b"<otherdata"[..],
    };
    let Some(start) = memchr::memmem::find(document, root)
        .and_then(|at| memchr::memchr(b'>', &document[at..]).map(|end| at + end + 1))
    else {
        return &[];
    };
    let closing = format!("</{}>", String::from_utf8_lossy(&root[1..]));
    let end = memchr::memmem::rfind(document, closing.as_bytes()).unwrap_or(document.len());
    document.get(start..end).unwrap_or_default()
}

/// The packages a `primary.xml` lists, by location.
fn listed_packages(primary: &[u8]) -> HashMap<String, ListedPackage> {
    let mut reader = Reader::from_reader(primary);
    let mut listed = HashMap::new();
    // Name, version, SHA-256 and location of the package being read.
    type Reading = (String, String, Option<Sha256>, Option<String>);
    let mut current: Option<Reading> = None;
    let mut text_of: Option<&'static str> = None;
    while let Ok(event) = reader.read_event() {
        match event {
            Event::Start(element) | Event::Empty(element) => {
                let Some((_, evr, _, location)) = current.as_mut() else {
                    if element.local_name().as_ref() == b"package" {
                        current = Some(Reading::default());
                    }
                    continue;
                };
                match element.local_name().as_ref() {
                    b"name" => text_of = Some("name"),
                    b"checksum" => text_of = Some("checksum"),
                    b"location" => *location = attribute(&element, b"href"),
                    b"version" => {
                        let field = |name: &[u8]| attribute(&element, name).unwrap_or_default();
                        let (epoch, version, release) =
                            (field(b"epoch"), field(b"ver"), field(b"rel"));
                        *evr = match epoch.as_str() {
                            "" | "0" => format!("{version}-{release}"),
                            epoch => format!("{epoch}:{version}-{release}"),
                        };
                    }
                    _ => {}
                }
            }
            Event::Text(text) => {
                if let (Some(field), Some((name, _, sha256, _))) = (text_of, current.as_mut())
                    && let Ok(value) = text.unescape()
                {
                    match field {
                        "name" => *name = value.trim().to_string(),
                        _ => *sha256 = value.trim().parse().ok(),
                    }
                }
            }
            Event::End(element) => {
                text_of = None;
                if element.local_name().as_ref() == b"package"
                    && let Some((name, evr, Some(sha256), Some(location))) = current.take()
                {
                    listed.insert(location, ListedPackage { name, evr, sha256 });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    listed
}

/// The upstream's packages in metadata `file`, rendered once per metadata change; reading
/// `primary` remembers where each package is.
pub async fn served(
    ctx: &Context<'_>,
    member: &Registry,
    file: MetadataFile,
) -> Result<Served, ApiError> {
    let key = format!("rpm.remote/{}/{}", member.name, file.kind());
    let packages = ctx
        .state
        .render_once(&key, || async {
            let document = upstream_metadata(ctx, member, file).await?;
            if file == MetadataFile::Primary {
                ctx.state
                    .rpm
                    .remote_packages
                    .learn(member, listed_packages(&document));
            }
            Ok::<_, ApiError>(Bytes::copy_from_slice(packages_of(&document, file)))
        })
        .await?;
    let entries = memchr::memmem::find_iter(&packages, b"<package ").count() as u64;
    served_whole(ctx.state, &format!("{key}.gz"), packages, entries).await
}

/// The package at `path` as the upstream's `primary.xml` lists it; `None` when it lists none.
pub async fn package(
    ctx: &Context<'_>,
    member: &Registry,
    path: &str,
) -> Result<Option<ListedPackage>, ApiError> {
    if let Some(found) = ctx.state.rpm.remote_packages.get(member, path) {
        return Ok(Some(found));
    }
    served(ctx, member, MetadataFile::Primary).await?;
    Ok(ctx.state.rpm.remote_packages.get(member, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_read_from_primary() {
        let sha = "a".repeat(64);
        let primary = format!(
            "<?xml version=\"1.0\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" packages=\"1\">\n<package type=\"rpm\">\n  <name>testb</name>\n  <arch>x86_64</arch>\n  <version epoch=\"1\" ver=\"2.0\" rel=\"1\"/>\n  <checksum type=\"sha256\" pkgid=\"YES\">{sha}</checksum>\n  <location href=\"Packages/testb-2.0-1.x86_64.rpm\"/>\n</package>\n</metadata>\n"
        );
        let listed = listed_packages(primary.as_bytes());
        let package = &listed["Packages/testb-2.0-1.x86_64.rpm"];
        assert_eq!(
            (package.name.as_str(), package.evr.as_str()),
            ("testb", "1:2.0-1")
        );
        assert_eq!(package.sha256.to_hex(), sha);
        let inner = packages_of(primary.as_bytes(), MetadataFile::Primary);
        assert!(inner.starts_with(b"\n<package") && inner.ends_with(b"</package>\n"));
    }
}
