//! Writes: `npm publish` (a packument with one version and its base64 tarball), packument updates
//! (`npm deprecate`, and `npm unpublish <name>@<version>`, which sends the packument without the
//! version), unpublishing a tarball or a whole package, and dist-tags.
//!
//! A publish document streams: its tarball is decoded into the chunk store as it arrives (see
//! [`super::scan`]), computing sha512 (`integrity`) and sha1 (`shasum`) on the same pass and checking
//! that it is a gzip'd tar, while the rest of the document, at most [`METADATA_ALLOWANCE`], is kept to
//! be parsed. The tarball is refused when the manifest's `dist` says otherwise; the version, its
//! manifest and its dist-tags commit with one [`Command::PutFile`] that refuses an existing version.

use crate::meta::{PackageContents, StateRead};
use std::collections::BTreeMap;

use arca_protocol::{BlobRef, Command, CommandError, Overwrite, Role};
use axum::Json;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Digest;

use super::names::{PackageName, validate_tag, validate_version};
use super::packument::{DEPRECATED, MANIFEST};
use super::scan::{ScanError, Scanner};
use super::{Context, NpmError};
use crate::AppState;
use crate::auth::Caller;
use crate::blob::BlobWriter;
use crate::frontend::archive::{ArchiveHead, ArchiveKind};
use crate::frontend::{UploadError, content_length};
use crate::meta::ProposeError;

/// Room for the JSON around a publish's base64 tarball (manifest, readme): what is held in memory.
const METADATA_ALLOWANCE: usize = 16 * 1024 * 1024;
/// Largest body of the small requests (dist-tags).
const SMALL_BODY_BYTES: u64 = 64 * 1024;
/// Base64 characters decoded at a time (a multiple of 4).
const DECODE_STEP: usize = 4 * 64 * 1024;
/// Fields of the client's `dist` kept next to the integrity and shasum this registry computes.
const KEPT_DIST_FIELDS: [&str; 2] = ["fileCount", "unpackedSize"];

/// The largest publish document this node accepts: the base64 of its largest upload, plus room for
/// the metadata.
fn document_limit(state: &AppState) -> u64 {
    (state.config.max_upload_bytes.saturating_mul(4) / 3).saturating_add(METADATA_ALLOWANCE as u64)
}

/// A packument as clients send it to publish or update a package, its attachment's data taken out.
/// Only the fields Arca acts on.
#[derive(Debug, Deserialize)]
struct Document {
    name: String,
    #[serde(rename = "dist-tags")]
    dist_tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    versions: Map<String, Value>,
    #[serde(rename = "_attachments", default)]
    attachments: BTreeMap<String, Attachment>,
}

/// A tarball inside a publish document (its data streamed to the chunk store).
#[derive(Debug, Deserialize)]
struct Attachment {
    length: Option<u64>,
}

/// The digests of a stored tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarballSums {
    /// sha512, for `integrity`.
    pub sha512: Vec<u8>,
    /// sha1, for `shasum`.
    pub sha1: Vec<u8>,
    /// sha256 (the blob's digest), for an `integrity` that names it.
    pub sha256: Vec<u8>,
}

impl TarballSums {
    /// The SRI string npm records: `sha512-<base64>`.
    pub fn integrity(&self) -> String {
        format!("sha512-{}", STANDARD.encode(&self.sha512))
    }

    /// The hex sha1 npm records as `shasum`.
    pub fn shasum(&self) -> String {
        hex::encode(&self.sha1)
    }
}

/// Checks the `dist` a client sent against the tarball: `shasum` and every `integrity` entry with an
/// algorithm this registry computes (sha512, sha256, sha1) must match. Returns why not.
pub fn verify_dist(dist: Option<&Value>, sums: &TarballSums) -> Result<(), String> {
    if let Some(shasum) = dist.and_then(|d| d.get("shasum")).and_then(Value::as_str)
        && !shasum.eq_ignore_ascii_case(&sums.shasum())
    {
        return Err(format!(
            "shasum mismatch: the manifest says {shasum}, the tarball is {}",
            sums.shasum()
        ));
    }
    let Some(integrity) = dist
        .and_then(|d| d.get("integrity"))
        .and_then(Value::as_str)
    else {
        return Ok(());
    };
    for entry in integrity.split_whitespace() {
        let Some((algorithm, digest)) = entry.split_once('-') else {
            return Err(format!("malformed integrity {entry:?}"));
        };
        let digest = digest.split('?').next().unwrap_or_default();
        let actual = match algorithm {
            "sha512" => &sums.sha512,
            "sha256" => &sums.sha256,
            "sha1" => &sums.sha1,
            _ => continue,
        };
        if STANDARD.encode(actual) != digest {
            return Err(format!(
                "integrity mismatch: the manifest says {entry}, the tarball is {}",
                sums.integrity()
            ));
        }
    }
    Ok(())
}

/// Reads a whole request body of at most `limit` bytes.
async fn read_body(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: u64,
) -> Result<bytes::Bytes, NpmError> {
    refuse_announced_length(headers, limit)?;
    axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|error| {
            let error = error.into_inner();
            if error.is::<http_body_util::LengthLimitError>() {
                UploadError::TooLarge { limit }.into()
            } else {
                NpmError::from(UploadError::Truncated(error.to_string()))
            }
        })
}

/// Refuses a body whose `Content-Length` is over `limit` before reading it. (The document is base64
/// and may exceed the node's upload limit; only `limit` applies.)
fn refuse_announced_length(headers: &axum::http::HeaderMap, limit: u64) -> Result<(), NpmError> {
    if content_length(headers).is_some_and(|len| len > limit) {
        return Err(UploadError::TooLarge { limit }.into());
    }
    Ok(())
}

impl From<ScanError> for NpmError {
    fn from(error: ScanError) -> Self {
        match error {
            ScanError::MetadataTooLarge(_) => {
                NpmError::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
            }
            _ => NpmError::bad_request(error.to_string()),
        }
    }
}

/// A publish document as received: the document without its attachment's data, and the tarball
/// that data decoded to, stored.
struct Received {
    document: Vec<u8>,
    tarball: Option<(BlobRef, TarballSums)>,
}

/// Streams a publish document in: the attachment's data into the chunk store, the rest kept.
async fn receive_document(ctx: &Context<'_>, body: Body) -> Result<Received, NpmError> {
    let limit = document_limit(ctx.state);
    refuse_announced_length(ctx.headers, limit)?;
    let mut scanner = Scanner::new(METADATA_ALLOWANCE);
    let mut base64 = Vec::new();
    let mut tarball: Option<TarballSink> = None;
    let mut received = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| NpmError::from(UploadError::Truncated(e.to_string())))?;
        received += piece.len() as u64;
        if received > limit {
            return Err(UploadError::TooLarge { limit }.into());
        }
        scanner.feed(&piece, &mut base64)?;
        if scanner.data_seen() {
            let sink = tarball.get_or_insert_with(|| TarballSink::new(ctx.state));
            sink.decode(&mut base64).await?;
        }
    }
    let tarball = match tarball {
        Some(sink) if scanner.data_closed() => {
            if !base64.is_empty() {
                return Err(NpmError::bad_request("the attachment is not base64"));
            }
            let (blob, sums) = sink.finish().await?;
            ctx.state.metrics.upload_bytes.inc_by(blob.size);
            Some((blob, sums))
        }
        Some(_) => {
            return Err(NpmError::bad_request(
                "the publish document ends inside its data",
            ));
        }
        None => None,
    };
    Ok(Received {
        document: scanner.into_kept(),
        tarball,
    })
}

/// `PUT /<name>`: a publish when the document carries a tarball, an update of the packument
/// (deprecations, dist-tags, removed versions) otherwise.
pub async fn put(ctx: &Context<'_>, name: &str, body: Body) -> Result<Response, NpmError> {
    ctx.authorize(Role::Write)?;
    let name = PackageName::parse(name)?;
    let received = receive_document(ctx, body).await?;
    let document: Document = serde_json::from_slice(&received.document)
        .map_err(|e| NpmError::bad_request(format!("malformed packument: {e}")))?;
    if document.name != name.as_str() {
        return Err(NpmError::bad_request(format!(
            "the packument names {}, the URL {name}",
            document.name
        )));
    }
    match received.tarball {
        None if document.attachments.is_empty() => update(ctx, &name, document).await,
        None => Err(NpmError::bad_request("the attachment has no data")),
        Some(tarball) => publish(ctx, &name, document, tarball).await,
    }
}

/// The single entry of a map, or a 400 saying what was expected.
fn single<'m, V>(
    map: impl IntoIterator<Item = (&'m String, V)>,
    what: &str,
) -> Result<(&'m String, V), NpmError> {
    let mut entries = map.into_iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) => Ok(entry),
        _ => Err(NpmError::bad_request(format!(
            "a publish carries exactly one {what}"
        ))),
    }
}

/// The name the caller publishes as (`_npmUser`).
fn publisher(caller: &Caller) -> Option<String> {
    caller.principal().map(|principal| principal.name())
}

async fn publish(
    ctx: &Context<'_>,
    name: &PackageName,
    document: Document,
    (blob, sums): (BlobRef, TarballSums),
) -> Result<Response, NpmError> {
    let (version, manifest) = single(&document.versions, "version")?;
    let (_, attachment) = single(&document.attachments, "attachment")?;
    validate_version(version)?;
    let Value::Object(manifest) = manifest else {
        return Err(NpmError::bad_request(format!(
            "versions[{version}] must be a package.json object"
        )));
    };
    let says = |field: &str| manifest.get(field).and_then(Value::as_str);
    if says("name") != Some(name.as_str()) || says("version") != Some(version) {
        return Err(NpmError::bad_request(format!(
            "versions[{version}] must have name {name} and version {version}"
        )));
    }
    let cannot_publish_over = |published: &str| {
        let same = if published == version {
            String::new()
        } else {
            format!(
                " ({published} is published: versions that differ only in build metadata are one version)"
            )
        };
        NpmError::new(
            StatusCode::FORBIDDEN,
            format!(
                "You cannot publish over the previously published versions: {version}. ({name}){same}"
            ),
        )
    };
    if let Some(published) = ctx.same_release(name.as_str(), version)? {
        return Err(cannot_publish_over(&published));
    }
    let mut tags = Vec::new();
    for (tag, target) in document.dist_tags.iter().flatten() {
        validate_tag(tag)?;
        if target != version {
            return Err(NpmError::bad_request(format!(
                "dist-tag {tag} of a publish must point at the published version {version}"
            )));
        }
        tags.push(tag.clone());
    }
    if tags.is_empty() {
        tags.push("latest".to_string());
    }
    if let Some(length) = attachment.length
        && length != blob.size
    {
        return Err(NpmError::bad_request(format!(
            "the attachment says {length} bytes, its data decodes to {}",
            blob.size
        )));
    }
    verify_dist(manifest.get("dist"), &sums)
        .map_err(|why| NpmError::bad_request(format!("{name}@{version}: {why}")))?;
    let mut manifest = manifest.clone();
    let mut dist = Map::new();
    if let Some(Value::Object(sent)) = manifest.get("dist") {
        for field in KEPT_DIST_FIELDS {
            if let Some(value) = sent.get(field).filter(|v| v.is_number()) {
                dist.insert(field.into(), value.clone());
            }
        }
    }
    dist.insert("integrity".into(), json!(sums.integrity()));
    dist.insert("shasum".into(), json!(sums.shasum()));
    manifest.insert("dist".into(), Value::Object(dist));
    if let Some(user) = publisher(&ctx.caller) {
        // Tokens have no e-mail address; an empty one keeps `npm view` from printing "undefined".
        manifest.insert("_npmUser".into(), json!({ "name": user, "email": "" }));
    }
    let mut attributes = BTreeMap::new();
    if let Some(message) = manifest
        .remove("deprecated")
        .and_then(|m| m.as_str().map(str::to_string))
        .filter(|m| !m.is_empty())
    {
        attributes.insert(DEPRECATED.to_string(), message);
    }
    attributes.insert(MANIFEST.to_string(), Value::Object(manifest).to_string());
    let committed = ctx
        .state
        .meta
        .propose(Command::PutFile {
            registry: ctx.registry.clone(),
            package: name.to_string(),
            version: version.clone(),
            filename: name.tarball(version),
            blob,
            attributes,
            tags,
            overwrite: Overwrite::RefuseVersion,
            at: ctx.state.now_ms(),
        })
        .await;
    match committed {
        Ok(()) => Ok((
            StatusCode::CREATED,
            Json(json!({ "ok": true, "id": name.as_str() })),
        )
            .into_response()),
        Err(ProposeError::Refused(CommandError::AlreadyExists(_))) => {
            Err(cannot_publish_over(version))
        }
        Err(error) => Err(error.into()),
    }
}

/// A tarball arriving as base64: decoded into the chunk store, hashed, and its head kept to check
/// that it is a gzip'd tar.
struct TarballSink {
    writer: BlobWriter,
    sha512: sha2::Sha512,
    sha1: sha1::Sha1,
    head: ArchiveHead,
    limit: u64,
    /// The last characters decoded ended in padding: nothing may follow.
    padded: bool,
}

impl TarballSink {
    fn new(state: &AppState) -> Self {
        TarballSink {
            writer: BlobWriter::new(state.chunks.clone()),
            sha512: sha2::Sha512::new(),
            sha1: sha1::Sha1::new(),
            head: ArchiveHead::default(),
            limit: state.config.max_upload_bytes,
            padded: false,
        }
    }

    /// Decodes and stores the whole groups of four characters in `base64`, leaving the rest there.
    async fn decode(&mut self, base64: &mut Vec<u8>) -> Result<(), NpmError> {
        let whole = base64.len() - base64.len() % 4;
        for step in base64[..whole].chunks(DECODE_STEP) {
            let not_base64 = || NpmError::bad_request("the attachment is not base64");
            if self.padded {
                return Err(not_base64());
            }
            let bytes = STANDARD.decode(step).map_err(|_| not_base64())?;
            self.padded = step.last() == Some(&b'=');
            if self.writer.size() + bytes.len() as u64 > self.limit {
                return Err(UploadError::TooLarge { limit: self.limit }.into());
            }
            self.sha512.update(&bytes);
            self.sha1.update(&bytes);
            self.head.observe(&bytes);
            self.writer.write(&bytes).await?;
        }
        base64.drain(..whole);
        Ok(())
    }

    /// The stored tarball, once all of the data is decoded.
    async fn finish(self) -> Result<(BlobRef, TarballSums), NpmError> {
        self.head
            .check(ArchiveKind::TarGz)
            .map_err(|e| NpmError::bad_request(format!("the attachment is not a package: {e}")))?;
        let blob = self.writer.finish().await?;
        let sums = TarballSums {
            sha512: self.sha512.finalize().to_vec(),
            sha1: self.sha1.finalize().to_vec(),
            sha256: blob.sha256.0.to_vec(),
        };
        Ok((blob, sums))
    }
}

/// The deprecation a manifest in an updated packument asks for (`""` or none: not deprecated).
fn deprecation(manifest: &Value) -> Option<&str> {
    manifest
        .get("deprecated")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
}

/// Applies an updated packument: versions it no longer lists are unpublished, deprecation messages
/// and dist-tags are taken from it. Everything else in it is ignored: published manifests do not
/// change. Everything is checked before anything is changed.
async fn update(
    ctx: &Context<'_>,
    name: &PackageName,
    document: Document,
) -> Result<Response, NpmError> {
    let package = ctx.package(name.as_str())?;
    if document.versions.is_empty() {
        return Err(NpmError::bad_request(
            "an updated packument must list the versions to keep; unpublish a whole package with DELETE",
        ));
    }
    if let Some(unknown) = document
        .versions
        .keys()
        .find(|v| !package.versions.contains_key(*v))
    {
        return Err(NpmError::bad_request(format!(
            "{name}@{unknown} is not published: publish it with its tarball"
        )));
    }
    for (tag, target) in document.dist_tags.iter().flatten() {
        validate_tag(tag)?;
        if !document.versions.contains_key(target) {
            return Err(NpmError::bad_request(format!(
                "dist-tag {tag} points at {target}, which the packument does not list"
            )));
        }
    }
    let mut commands = Vec::new();
    for version in package.versions.keys() {
        if !document.versions.contains_key(version) {
            commands.push(Command::DeleteVersion {
                registry: ctx.registry.clone(),
                package: name.to_string(),
                version: version.clone(),
            });
        }
    }
    for (version, manifest) in &document.versions {
        let wanted = deprecation(manifest);
        let current = package
            .versions
            .get(version)
            .and_then(|v| v.attributes.get(DEPRECATED))
            .map(String::as_str);
        if wanted != current {
            let (set, remove) = match wanted {
                Some(message) => (
                    BTreeMap::from([(DEPRECATED.to_string(), message.to_string())]),
                    Vec::new(),
                ),
                None => (BTreeMap::new(), vec![DEPRECATED.to_string()]),
            };
            commands.push(Command::SetAttributes {
                registry: ctx.registry.clone(),
                package: name.to_string(),
                version: version.clone(),
                set,
                remove,
                at: ctx.state.now_ms(),
            });
        }
    }
    if let Some(wanted) = &document.dist_tags {
        // Tags of the versions this update unpublishes go with them.
        let current = package
            .tags
            .iter()
            .filter(|(_, target)| document.versions.contains_key(*target));
        commands.extend(tag_changes(ctx, name, current, wanted));
    }
    // The whole update commits at once, or nothing of it does.
    if !commands.is_empty() {
        ctx.state.meta.propose(Command::Batch { commands }).await?;
    }
    Ok(ok())
}

/// The commands that make the package's dist-tags, `current` now, exactly `wanted` (whose targets
/// exist).
fn tag_changes<'a>(
    ctx: &Context<'_>,
    name: &PackageName,
    current: impl Iterator<Item = (&'a String, &'a String)>,
    wanted: &BTreeMap<String, String>,
) -> Vec<Command> {
    let current: BTreeMap<&String, &String> = current.collect();
    let mut commands = Vec::new();
    for (tag, version) in wanted {
        if current.get(tag) != Some(&version) {
            commands.push(Command::SetTag {
                registry: ctx.registry.clone(),
                package: name.to_string(),
                tag: tag.clone(),
                version: version.clone(),
            });
        }
    }
    for tag in current.keys().filter(|tag| !wanted.contains_key(**tag)) {
        commands.push(Command::DeleteTag {
            registry: ctx.registry.clone(),
            package: name.to_string(),
            tag: (*tag).clone(),
        });
    }
    commands
}

fn ok() -> Response {
    Json(json!({ "ok": true })).into_response()
}

/// `DELETE /<name>/-rev/<rev>`: unpublishes every version.
pub async fn unpublish_package(ctx: &Context<'_>, name: &str) -> Result<Response, NpmError> {
    ctx.authorize(Role::Write)?;
    let name = PackageName::parse(name)?;
    ctx.require_package(name.as_str())?;
    ctx.state
        .meta
        .propose(Command::DeletePackage {
            registry: ctx.registry.clone(),
            package: name.to_string(),
        })
        .await?;
    Ok(ok())
}

/// `DELETE /<name>/-/<file>/-rev/<rev>`: unpublishes the version whose tarball `file` is.
pub async fn unpublish_tarball(
    ctx: &Context<'_>,
    name: &str,
    file: &str,
) -> Result<Response, NpmError> {
    ctx.authorize(Role::Write)?;
    let name = PackageName::parse(name)?;
    let version = ctx
        .state
        .meta
        .read(|view| stored_version_of_file(view, &ctx.registry, &name, file))?
        .ok_or_else(|| NpmError::not_found(format!("{name} has no tarball {file}")))?;
    ctx.state
        .meta
        .propose(Command::DeleteVersion {
            registry: ctx.registry.clone(),
            package: name.to_string(),
            version,
        })
        .await?;
    Ok(ok())
}

/// The version of `name` stored in `registry` whose tarball is `file`: the one its name gives
/// (`<bare name>-<version>.tgz`), if that version has that file.
pub fn stored_version_of_file(
    view: &crate::meta::ReadView,
    registry: &str,
    name: &PackageName,
    file: &str,
) -> Result<Option<String>, crate::meta::StoreError> {
    let Some(version) = name.version_of_tarball(file) else {
        return Ok(None);
    };
    Ok(view
        .version(registry, name.as_str(), version)?
        .filter(|v| v.files.contains_key(file))
        .map(|v| v.name))
}

/// The version whose tarball is `file`.
pub fn version_of_file(package: &PackageContents, file: &str) -> Option<String> {
    package
        .versions
        .values()
        .find(|v| v.files.contains_key(file))
        .map(|v| v.name.clone())
}

/// `PUT /-/package/<name>/dist-tags/<tag>` with the version as a JSON string.
pub async fn set_tag(
    ctx: &Context<'_>,
    name: &str,
    tag: &str,
    body: Body,
) -> Result<Response, NpmError> {
    ctx.authorize(Role::Write)?;
    let name = PackageName::parse(name)?;
    validate_tag(tag)?;
    let bytes = read_body(ctx.headers, body, SMALL_BODY_BYTES).await?;
    let version: String = serde_json::from_slice(&bytes).map_err(|e| {
        NpmError::bad_request(format!("the body must be a version as a JSON string: {e}"))
    })?;
    if !ctx.version_exists(name.as_str(), &version)? {
        return Err(NpmError::not_found(format!(
            "{name}@{version} is not published"
        )));
    }
    ctx.state
        .meta
        .propose(Command::SetTag {
            registry: ctx.registry.clone(),
            package: name.to_string(),
            tag: tag.to_string(),
            version,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "ok": true }))).into_response())
}

/// `DELETE /-/package/<name>/dist-tags/<tag>`. `latest` stays: installs need it.
pub async fn delete_tag(ctx: &Context<'_>, name: &str, tag: &str) -> Result<Response, NpmError> {
    ctx.authorize(Role::Write)?;
    let name = PackageName::parse(name)?;
    if tag == "latest" {
        return Err(NpmError::bad_request(
            "the latest dist-tag cannot be removed",
        ));
    }
    ctx.state
        .meta
        .propose(Command::DeleteTag {
            registry: ctx.registry.clone(),
            package: name.to_string(),
            tag: tag.to_string(),
        })
        .await?;
    Ok(ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(bytes: &[u8]) -> TarballSums {
        TarballSums {
            sha512: sha2::Sha512::digest(bytes).to_vec(),
            sha1: sha1::Sha1::digest(bytes).to_vec(),
            sha256: sha2::Sha256::digest(bytes).to_vec(),
        }
    }

    #[test]
    fn dist_is_checked_against_the_tarball() {
        let good = sums(b"tarball");
        let other = sums(b"other");
        let dist =
            |integrity: &str, shasum: &str| json!({"integrity": integrity, "shasum": shasum});
        assert!(verify_dist(None, &good).is_ok());
        assert!(verify_dist(Some(&dist(&good.integrity(), &good.shasum())), &good).is_ok());
        assert!(verify_dist(Some(&dist(&other.integrity(), &good.shasum())), &good).is_err());
        assert!(verify_dist(Some(&dist(&good.integrity(), &other.shasum())), &good).is_err());
        let sha256 = format!("sha256-{}", STANDARD.encode(&good.sha256));
        let both = format!("{} {sha256}?opt", good.integrity());
        assert!(verify_dist(Some(&json!({ "integrity": both })), &good).is_ok());
        assert!(verify_dist(Some(&json!({"integrity": "sha384-anything"})), &good).is_ok());
        assert!(verify_dist(Some(&json!({"integrity": "garbage"})), &good).is_err());
    }
}
