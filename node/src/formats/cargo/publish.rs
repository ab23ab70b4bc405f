//! Writes: `cargo publish` (`PUT /api/v1/crates/new`) and `cargo yank [--undo]`.
//!
//! A publish body is the metadata as JSON and the `.crate` file, each after its length (u32, little
//! endian). The metadata is read whole (at most [`METADATA_LIMIT`]); the `.crate` streams into the
//! chunk store, and is then read back as cargo would unpack it: a gzip'd tar whose every path lies
//! under `<name>-<version>/`, without `..`, whose `Cargo.toml` names the crate and version the
//! metadata does. The version's index entry is built from the metadata and committed with the file
//! by one [`Command::PutFile`] that refuses an existing version.

use std::collections::BTreeMap;

use arca_protocol::{BlobRef, Command, CommandError, Overwrite};
use axum::body::{Body, BodyDataStream};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::{Buf, Bytes};
use futures::StreamExt;
use serde::Deserialize;

use super::index::{INDEX_ENTRY, IndexDependency, IndexEntry, YANKED, json_response};
use super::names::{CrateName, parse_version};
use super::{CargoError, Context};
use crate::blob::BlobWriter;
use crate::frontend::archive::{ArchiveHead, ArchiveKind, read_package_archive};
use crate::frontend::{BlobCursor, UploadError, content_length};
use crate::meta::{ProposeError, StateRead};

/// The largest metadata document of a publish.
const METADATA_LIMIT: u32 = 1024 * 1024;
/// The most a `.crate` may unpack to (crates.io's limit).
const UNPACKED_LIMIT: u64 = 512 * 1024 * 1024;
/// The version attribute naming who published it.
pub const PUBLISHER: &str = "cargo.publisher";

/// What `cargo publish` says of the crate. Only the fields Arca keeps.
#[derive(Debug, Deserialize)]
struct PublishMetadata {
    name: String,
    vers: String,
    #[serde(default)]
    deps: Vec<PublishDependency>,
    #[serde(default)]
    features: BTreeMap<String, Vec<String>>,
    description: Option<String>,
    license: Option<String>,
    repository: Option<String>,
    links: Option<String>,
    rust_version: Option<String>,
}

/// A dependency as `cargo publish` sends it.
#[derive(Debug, Deserialize)]
struct PublishDependency {
    name: String,
    version_req: String,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    optional: bool,
    #[serde(default = "enabled")]
    default_features: bool,
    target: Option<String>,
    kind: Option<String>,
    registry: Option<String>,
    explicit_name_in_toml: Option<String>,
}

fn enabled() -> bool {
    true
}

impl PublishDependency {
    /// The dependency as the index lists it (a rename's name, the real one as `package`).
    fn into_index(self) -> Result<IndexDependency, CargoError> {
        CrateName::parse(&self.name)?;
        semver::VersionReq::parse(&self.version_req).map_err(|e| {
            CargoError::bad_request(format!(
                "dependency {}: invalid version requirement {:?}: {e}",
                self.name, self.version_req
            ))
        })?;
        let (name, package) = match self.explicit_name_in_toml {
            Some(rename) => (rename, Some(self.name)),
            None => (self.name, None),
        };
        Ok(IndexDependency {
            name,
            req: self.version_req,
            features: self.features,
            optional: self.optional,
            default_features: self.default_features,
            target: self.target,
            kind: self.kind,
            registry: self.registry,
            package,
        })
    }
}

/// The body of a publish, read in order.
struct PublishBody {
    stream: BodyDataStream,
    buffered: Bytes,
}

impl PublishBody {
    /// The next bytes of the body, at most `limit` of them; `None` at its end.
    async fn next(&mut self, limit: usize) -> Result<Option<Bytes>, CargoError> {
        while self.buffered.is_empty() {
            match self.stream.next().await {
                Some(Ok(piece)) => self.buffered = piece,
                Some(Err(error)) => {
                    return Err(UploadError::Truncated(error.to_string()).into());
                }
                None => return Ok(None),
            }
        }
        let take = limit.min(self.buffered.len());
        Ok(Some(self.buffered.split_to(take)))
    }

    /// Exactly `length` bytes.
    async fn exact(&mut self, length: usize) -> Result<Vec<u8>, CargoError> {
        let mut out = Vec::with_capacity(length);
        while out.len() < length {
            let piece = self.next(length - out.len()).await?.ok_or_else(|| {
                CargoError::bad_request("the publish body ends before its declared lengths")
            })?;
            out.extend_from_slice(&piece);
        }
        Ok(out)
    }

    /// A little-endian u32 length.
    async fn length(&mut self) -> Result<u32, CargoError> {
        let bytes = self.exact(4).await?;
        Ok(bytes.as_slice().get_u32_le())
    }
}

/// `PUT /api/v1/crates/new`.
pub async fn publish(ctx: &Context<'_>, body: Body) -> Result<Response, CargoError> {
    let limit = ctx.state.config.max_upload_bytes;
    if content_length(ctx.headers).is_some_and(|len| len > limit + u64::from(METADATA_LIMIT) + 8) {
        return Err(UploadError::TooLarge { limit }.into());
    }
    let mut body = PublishBody {
        stream: body.into_data_stream(),
        buffered: Bytes::new(),
    };
    let metadata_length = body.length().await?;
    if metadata_length > METADATA_LIMIT {
        return Err(CargoError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the publish metadata exceeds {METADATA_LIMIT} bytes"),
        ));
    }
    let metadata = body.exact(metadata_length as usize).await?;
    let metadata: PublishMetadata = serde_json::from_slice(&metadata)
        .map_err(|e| CargoError::bad_request(format!("malformed publish metadata: {e}")))?;
    let PublishMetadata {
        name: published_name,
        vers,
        deps,
        features,
        description,
        license,
        repository,
        links,
        rust_version,
    } = metadata;
    let name = CrateName::parse(&published_name)?;
    let version = parse_version(&vers)?;
    let deps = deps
        .into_iter()
        .map(PublishDependency::into_index)
        .collect::<Result<Vec<_>, _>>()?;
    check_new_version(ctx, &name, &version)?;
    let crate_length = u64::from(body.length().await?);
    if crate_length > limit {
        return Err(UploadError::TooLarge { limit }.into());
    }
    let blob = receive_crate(ctx, &mut body, crate_length).await?;
    check_crate(ctx, &blob, &name, &vers).await?;

    let (features, features2) = split_features(features);
    let entry = IndexEntry {
        name: published_name,
        vers,
        deps,
        cksum: blob.sha256.to_hex(),
        features,
        v: features2.as_ref().map(|_| 2),
        features2,
        yanked: false,
        links,
        rust_version,
    };
    let mut attributes = BTreeMap::from([(
        INDEX_ENTRY.to_string(),
        serde_json::to_string(&entry).map_err(CargoError::internal)?,
    )]);
    for (key, value) in [
        ("description", description),
        ("license", license),
        ("repository", repository),
        (PUBLISHER, ctx.caller.principal().map(|p| p.name())),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            attributes.insert(key.to_string(), value);
        }
    }
    let committed = ctx
        .state
        .meta
        .propose(Command::PutFile {
            registry: ctx.registry.clone(),
            package: name.package(),
            version: entry.vers.clone(),
            filename: name.file(&entry.vers),
            blob,
            attributes,
            tags: Vec::new(),
            overwrite: Overwrite::RefuseVersion,
            at: ctx.state.now_ms(),
        })
        .await;
    match committed {
        Ok(()) => Ok(json_response(
            serde_json::json!({
                "warnings": { "invalid_categories": [], "invalid_badges": [], "other": [] }
            })
            .to_string(),
        )),
        Err(ProposeError::Refused(CommandError::AlreadyExists(_))) => {
            Err(already_uploaded(&name, &entry.vers))
        }
        Err(error) => Err(error.into()),
    }
}

fn already_uploaded(name: &CrateName, version: &str) -> CargoError {
    CargoError::new(
        StatusCode::CONFLICT,
        format!(
            "crate version `{version}` of `{}` is already uploaded",
            name.as_str()
        ),
    )
}

/// Refuses a version the crate has (in SemVer's terms: build metadata does not make another
/// version) and a spelling of the name other than the crate's.
fn check_new_version(
    ctx: &Context<'_>,
    name: &CrateName,
    version: &semver::Version,
) -> Result<(), CargoError> {
    let Some(package) = ctx
        .state
        .meta
        .read(|view| view.package_contents(&ctx.registry, &name.package()))?
    else {
        return Ok(());
    };
    for stored in package.versions.values() {
        let entry = stored
            .attributes
            .get(INDEX_ENTRY)
            .and_then(|json| serde_json::from_str::<IndexEntry>(json).ok());
        if let Some(entry) = &entry
            && entry.name != name.as_str()
        {
            return Err(CargoError::bad_request(format!(
                "crate `{}` is published as `{}`: a crate keeps the spelling of its first version",
                name.as_str(),
                entry.name
            )));
        }
        if semver::Version::parse(&stored.name)
            .is_ok_and(|stored| stored.cmp_precedence(version).is_eq())
        {
            return Err(already_uploaded(name, &stored.name));
        }
    }
    Ok(())
}

/// Streams `length` bytes of the body, the `.crate`, into the chunk store; the body must end there.
async fn receive_crate(
    ctx: &Context<'_>,
    body: &mut PublishBody,
    length: u64,
) -> Result<BlobRef, CargoError> {
    let mut writer = BlobWriter::new(ctx.state.chunks.clone());
    let mut head = ArchiveHead::default();
    while writer.size() < length {
        let wanted = usize::try_from(length - writer.size()).unwrap_or(usize::MAX);
        let piece = body.next(wanted).await?.ok_or_else(|| {
            CargoError::from(UploadError::Truncated(
                "the body ends inside the .crate file".into(),
            ))
        })?;
        head.observe(&piece);
        writer.write(&piece).await?;
    }
    if body.next(1).await?.is_some() {
        return Err(CargoError::bad_request(
            "the publish body goes on after the .crate file",
        ));
    }
    head.check(ArchiveKind::TarGz)
        .map_err(|e| CargoError::bad_request(format!("the .crate file is not a crate: {e}")))?;
    ctx.state.metrics.upload_bytes.inc_by(writer.size());
    Ok(writer.finish().await?)
}

/// Reads the stored `.crate` as cargo unpacks it (see the module documentation).
async fn check_crate(
    ctx: &Context<'_>,
    blob: &BlobRef,
    name: &CrateName,
    version: &str,
) -> Result<(), CargoError> {
    let cursor = BlobCursor::new(ctx.state.chunks.clone(), blob.clone());
    let root = format!("{}-{version}", name.as_str());
    let checked = {
        let root = root.clone();
        crate::blocking::spawn(move || {
            read_package_archive(cursor, Some(&root), "Cargo.toml", UNPACKED_LIMIT)
        })
        .await
        .map_err(CargoError::internal)?
    };
    let invalid = |why: String| {
        CargoError::bad_request(format!("the .crate file of {root} is not valid: {why}"))
    };
    let manifest = checked
        .map_err(invalid)?
        .member
        .ok_or_else(|| invalid(format!("it has no {root}/Cargo.toml")))?;
    let manifest: toml::Table = String::from_utf8_lossy(&manifest)
        .parse()
        .map_err(|e| invalid(format!("Cargo.toml: {e}")))?;
    let package = manifest.get("package").and_then(toml::Value::as_table);
    let says = |key: &str| {
        package
            .and_then(|p| p.get(key))
            .and_then(toml::Value::as_str)
    };
    if says("name") != Some(name.as_str()) || says("version") != Some(version) {
        return Err(CargoError::bad_request(format!(
            "the crate's Cargo.toml says {} {}, the publish {} {version}",
            says("name").unwrap_or("(no name)"),
            says("version").unwrap_or("(no version)"),
            name.as_str()
        )));
    }
    Ok(())
}

/// Features split as the index lists them: those in the syntax every cargo reads, and those that
/// use `dep:` or `?/` (`features2`, which needs `v: 2`).
type SplitFeatures = (
    BTreeMap<String, Vec<String>>,
    Option<BTreeMap<String, Vec<String>>>,
);

fn split_features(features: BTreeMap<String, Vec<String>>) -> SplitFeatures {
    let uses_new_syntax = |values: &Vec<String>| {
        values
            .iter()
            .any(|value| value.starts_with("dep:") || value.contains("?/"))
    };
    let (newer, older): (BTreeMap<_, _>, BTreeMap<_, _>) = features
        .into_iter()
        .partition(|(_, values)| uses_new_syntax(values));
    (older, (!newer.is_empty()).then_some(newer))
}

/// `DELETE /api/v1/crates/<name>/<version>/yank` and `PUT .../unyank`.
pub async fn yank(
    ctx: &Context<'_>,
    name: &CrateName,
    version: &str,
    yanked: bool,
) -> Result<Response, CargoError> {
    let package = name.package();
    let exists = ctx
        .state
        .meta
        .read(|view| view.version(&ctx.registry, &package, version))?
        .is_some();
    if !exists {
        return Err(CargoError::not_found(format!(
            "crate `{}` has no version {version}",
            name.as_str()
        )));
    }
    let (set, remove) = if yanked {
        (
            BTreeMap::from([(YANKED.to_string(), "true".to_string())]),
            Vec::new(),
        )
    } else {
        (BTreeMap::new(), vec![YANKED.to_string()])
    };
    ctx.state
        .meta
        .propose(Command::SetAttributes {
            registry: ctx.registry.clone(),
            package,
            version: version.to_string(),
            set,
            remove,
            at: ctx.state.now_ms(),
        })
        .await?;
    Ok(json_response(serde_json::json!({ "ok": true }).to_string()))
}
