//! Remote (caching proxy) and virtual Maven registries: where the files and `maven-metadata.xml` a
//! read of some registry sees come from.
//!
//! A remote registry answers the same paths as its upstream. An artifact file (jar, pom, a
//! timestamped SNAPSHOT build...) is immutable: on a miss it is fetched once from the same path under
//! the upstream, verified against the upstream's `.sha1` when the upstream has one, and recorded like
//! an upload records it (package `groupId:artifactId`, the version directory, the file name) with its
//! `origin`, so its checksums are then served from the record. Mutable content — `maven-metadata.xml`
//! (artifact and SNAPSHOT version level) and plain `-SNAPSHOT` file names — is cached as documents for
//! the registry's time to live and served as the upstream's bytes, stale (with a warning) when the
//! upstream fails; the checksums of a document are computed from the bytes served.
//!
//! A virtual registry looks files up in its members in order. Its artifact-level metadata is the
//! merge of its members' (every version any of them lists, `latest`/`release` by Maven's version
//! order, the newest `lastUpdated`); its SNAPSHOT version-level metadata is the member document with
//! the newest `lastUpdated` (the builds it names are found in that member by the in-order lookup). A
//! member that fails is logged and skipped; the read fails only when no member answers.

use std::collections::BTreeSet;

use arca_protocol::{Registry, RegistryKind};

use super::checksum::ChecksumKind;
use super::layout::{ArtifactFile, Coordinates, MavenPath, Target, is_snapshot};
use super::metadata::{self, ReadMetadata};
use super::{FoundFile, local_metadata, lookup_file};
use crate::AppState;
use crate::frontend::ApiError;
use crate::frontend::read_small_blob;
use crate::proxy::{self, Expected, ProxyError};

/// The `Warning` sent with an answer built from a stale upstream copy (RFC 7234).
pub const STALE_WARNING: &str = "110 - \"Response is Stale\"";

/// A metadata document's bytes, and whether they come from a stale upstream copy.
type Document = (Vec<u8>, bool);

/// Largest upstream `.sha1` file read.
const SHA1_FILE_LIMIT: u64 = 1024;

/// The path under a remote registry's upstream that a request's target lives at: the repository
/// path as sent, without the checksum suffix.
pub fn upstream_path(raw_path: &str, checksum: Option<ChecksumKind>) -> &str {
    checksum
        .and_then(|kind| {
            raw_path
                .strip_suffix(kind.to_string().as_str())?
                .strip_suffix('.')
        })
        .unwrap_or(raw_path)
}

/// A file of a version, as a request names it.
pub struct File<'a> {
    /// The artifact.
    pub coordinates: &'a Coordinates,
    /// The version directory.
    pub version: &'a str,
    /// The file name.
    pub filename: &'a str,
    /// Its path under an upstream (see [`upstream_path`]).
    pub upstream_path: &'a str,
}

/// The file a read of `registry` finds, with the kept checksum of `kind` when one is asked for, and
/// whether it comes from a stale upstream copy; `None` when no registry the read tries has it.
pub async fn find_file(
    state: &AppState,
    registry: &Registry,
    file: &File<'_>,
    kind: Option<ChecksumKind>,
) -> Result<Option<(FoundFile, bool)>, ApiError> {
    let mut failure = None;
    for member in proxy::resolution_order(state, registry) {
        let found = match member.kind {
            RegistryKind::Local => lookup_file(
                state,
                &member.name,
                file.coordinates,
                file.version,
                file.filename,
                kind,
            )
            .map(|found| found.map(|found| (found, false)))
            .map_err(ProxyError::from),
            RegistryKind::Remote => remote_file(state, &member, file, kind).await,
            // Virtual registries are not members of virtual registries.
            RegistryKind::Virtual => Ok(None),
        };
        match found {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(registry = %registry.name, member = %member.name,
                    path = file.upstream_path, %error, "a remote member could not give a file");
                failure = Some(error);
            }
        }
    }
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(None),
    }
}

/// True for a plain `-SNAPSHOT` file name (`lib-1.1-SNAPSHOT.jar`): it names whatever build is
/// newest, so it is not immutable.
fn is_mutable(file: &File<'_>) -> bool {
    is_snapshot(file.version)
        && ArtifactFile::parse(&file.coordinates.artifact_id, file.version, file.filename)
            .is_ok_and(|parsed| parsed.build.is_none())
}

/// A file of remote registry `member`: recorded there already, or fetched from its upstream (verified
/// against the upstream's `.sha1`) and recorded; a mutable file is a cached document instead.
async fn remote_file(
    state: &AppState,
    member: &Registry,
    file: &File<'_>,
    kind: Option<ChecksumKind>,
) -> Result<Option<(FoundFile, bool)>, ProxyError> {
    if is_mutable(file) {
        let key = format!("file/{}", file.upstream_path);
        return match state
            .proxy
            .document(state, member, &key, file.upstream_path, None)
            .await
        {
            Ok(document) => Ok(Some((
                FoundFile {
                    blob: document.cached.blob,
                    kept_checksum: None,
                    holder: None,
                },
                document.stale,
            ))),
            Err(ProxyError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        };
    }
    let recorded = lookup_file(
        state,
        &member.name,
        file.coordinates,
        file.version,
        file.filename,
        kind,
    )?;
    let package = file.coordinates.package();
    if let Some(found) = recorded {
        state.proxy.count_hit(&member.name);
        return Ok(Some((found, false)));
    }
    let sha1 = upstream_sha1(state, member, file.upstream_path).await?;
    let located = proxy::find_or_fetch_file(
        state,
        std::slice::from_ref(member),
        (&package, file.version, file.filename),
        |_| {
            let expected = Expected {
                sha1: sha1.clone(),
                ..Expected::default()
            };
            Some((file.upstream_path.to_string(), expected))
        },
    )
    .await?;
    Ok(located.map(|(holder, blob)| {
        let found = FoundFile {
            blob,
            kept_checksum: None,
            holder: Some(holder.name),
        };
        (found, false)
    }))
}

/// The sha1 the upstream states for the file at `path` (its `<path>.sha1`); `None` when it has no
/// checksum file, or one that does not hold a sha1.
async fn upstream_sha1(
    state: &AppState,
    member: &Registry,
    path: &str,
) -> Result<Option<Vec<u8>>, ProxyError> {
    let fetched = match state
        .proxy
        .fetch(state, member, &format!("{path}.sha1"), Expected::default())
        .await
    {
        Ok(fetched) => fetched,
        Err(ProxyError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error),
    };
    if fetched.blob.size > SHA1_FILE_LIMIT {
        return Ok(None);
    }
    let bytes = read_small_blob(state, &fetched.blob)
        .await
        .map_err(|e| ProxyError::Upstream(format!("reading {path}.sha1: {e}")))?;
    Ok(std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| ChecksumKind::Sha1.parse_uploaded(text))
        .and_then(|hex| hex::decode(hex).ok()))
}

/// The `maven-metadata.xml` `path` names (artifact or SNAPSHOT version level) as a read of
/// `registry` sees it, and whether it comes from a stale upstream copy; `None` when there is none.
pub async fn metadata(
    state: &AppState,
    registry: &Registry,
    path: &MavenPath,
    upstream_path: &str,
) -> Result<Option<Document>, ApiError> {
    if registry.kind != RegistryKind::Virtual {
        return member_metadata(state, registry, path, upstream_path).await;
    }
    let mut documents = Vec::new();
    let mut failure = None;
    for member in proxy::resolution_order(state, registry) {
        match member_metadata(state, &member, path, upstream_path).await {
            Ok(Some(document)) => documents.push(document),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(registry = %registry.name, member = %member.name, path = upstream_path,
                    error = %error.message, "a member could not give its maven-metadata.xml");
                failure = Some(error);
            }
        }
    }
    if documents.is_empty() {
        return match failure {
            Some(error) => Err(error),
            None => Ok(None),
        };
    }
    let merged = match &path.target {
        Target::ArtifactMetadata => merge_artifact(&path.coordinates, &documents)?,
        _ => newest(&documents),
    };
    Ok(merged)
}

/// The metadata document of one registry that is not virtual: generated by a local registry, the
/// upstream's (cached) copy for a remote one.
async fn member_metadata(
    state: &AppState,
    member: &Registry,
    path: &MavenPath,
    upstream_path: &str,
) -> Result<Option<Document>, ApiError> {
    match member.kind {
        RegistryKind::Local => {
            Ok(
                local_metadata(state, &member.name, &path.coordinates, &path.target)?
                    .map(|xml| (xml, false)),
            )
        }
        RegistryKind::Remote => {
            let key = format!("metadata/{upstream_path}");
            match state
                .proxy
                .document(state, member, &key, upstream_path, None)
                .await
            {
                Ok(document) => {
                    let bytes = read_small_blob(state, &document.cached.blob).await?;
                    Ok(Some((bytes, document.stale)))
                }
                Err(ProxyError::NotFound(_)) => Ok(None),
                Err(error) => Err(error.into()),
            }
        }
        RegistryKind::Virtual => Ok(None),
    }
}

/// `yyyyMMddHHmmss`, or nothing.
fn timestamp(read: &ReadMetadata) -> Option<&str> {
    read.last_updated
        .as_deref()
        .filter(|t| t.len() == 14 && t.bytes().all(|b| b.is_ascii_digit()))
}

/// Artifact-level metadata listing every version of `documents`, with the newest `lastUpdated`.
/// Documents that are not metadata are left out; `None` when none is.
fn merge_artifact(
    coordinates: &Coordinates,
    documents: &[Document],
) -> Result<Option<Document>, ApiError> {
    let mut versions = BTreeSet::new();
    let mut last_updated: Option<String> = None;
    let mut stale = false;
    let mut any = false;
    for (xml, was_stale) in documents {
        let Some(read) = metadata::read_metadata(xml) else {
            tracing::warn!(coordinates = %coordinates.package(), "skipping a member's maven-metadata.xml that does not parse");
            continue;
        };
        any = true;
        stale |= was_stale;
        if let Some(time) = timestamp(&read)
            && last_updated.as_deref().is_none_or(|newest| time > newest)
        {
            last_updated = Some(time.to_string());
        }
        versions.extend(read.versions);
    }
    if !any {
        return Ok(None);
    }
    // Without any `lastUpdated`, a fixed one: the document and its checksums must agree across
    // requests.
    let last_updated = last_updated.unwrap_or_else(|| metadata::maven_timestamp(0));
    let xml = metadata::artifact_metadata_at(
        coordinates,
        versions.iter().map(String::as_str),
        &last_updated,
    )
    .map_err(ApiError::internal)?;
    Ok(Some((xml, stale)))
}

/// The document of `documents` with the newest `lastUpdated` (the first of equals; the first when
/// none says).
fn newest(documents: &[Document]) -> Option<Document> {
    let mut best: Option<(Option<String>, &Document)> = None;
    for document in documents {
        let time = metadata::read_metadata(&document.0)
            .as_ref()
            .and_then(timestamp)
            .map(str::to_string);
        if best.as_ref().is_none_or(|(newest, _)| time > *newest) {
            best = Some((time, document));
        }
    }
    best.map(|(_, document)| document.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(versions: &[&str], last_updated: &str) -> Document {
        let listed: String = versions
            .iter()
            .map(|v| format!("<version>{v}</version>"))
            .collect();
        let xml = format!(
            "<?xml version=\"1.0\"?><metadata><groupId>g</groupId><artifactId>a</artifactId>\
             <versioning><versions>{listed}</versions><lastUpdated>{last_updated}</lastUpdated>\
             </versioning></metadata>"
        );
        (xml.into_bytes(), false)
    }

    #[test]
    fn checksum_suffixes_are_not_asked_of_the_upstream() {
        assert_eq!(
            upstream_path(
                "org/example/lib/1.0/lib-1.0.jar.sha1",
                Some(ChecksumKind::Sha1)
            ),
            "org/example/lib/1.0/lib-1.0.jar"
        );
        assert_eq!(
            upstream_path(
                "org/example/lib/maven-metadata.xml.md5",
                Some(ChecksumKind::Md5)
            ),
            "org/example/lib/maven-metadata.xml"
        );
        assert_eq!(
            upstream_path("org/example/lib/1.0/lib-1.0.pom", None),
            "org/example/lib/1.0/lib-1.0.pom"
        );
    }

    #[test]
    fn virtual_metadata_is_the_union_with_the_newest_time() {
        let coordinates = Coordinates {
            group_id: "g".into(),
            artifact_id: "a".into(),
        };
        let mut stale_remote = document(&["1.0", "2.0"], "20240101000000");
        stale_remote.1 = true;
        let documents = [
            document(&["3.0", "1.0"], "20240301000000"),
            stale_remote,
            (b"<html>oops</html>".to_vec(), false),
        ];
        let (xml, stale) = merge_artifact(&coordinates, &documents)
            .expect("xml")
            .expect("merged");
        assert!(stale);
        let read = metadata::read_metadata(&xml).expect("reads back");
        assert_eq!(read.versions, ["1.0", "2.0", "3.0"]);
        assert_eq!(read.last_updated.as_deref(), Some("20240301000000"));
        let xml = String::from_utf8(xml).expect("utf-8");
        assert!(xml.contains("<latest>3.0</latest>"), "{xml}");
        assert!(xml.contains("<release>3.0</release>"), "{xml}");
        assert_eq!(
            merge_artifact(&coordinates, &[(b"nope".to_vec(), false)]).expect("no error"),
            None
        );

        let older = document(&[], "20240101000000");
        let newer = document(&[], "20240201000000");
        assert_eq!(
            newest(&[older.clone(), newer.clone(), older.clone()]),
            Some(newer.clone())
        );
        assert_eq!(newest(&[older.clone(), older.clone()]), Some(older));
    }
}
