//! RPM (yum/dnf) repositories under `/rpm/<registry>/`, the `baseurl` of a `.repo` file:
//!
//! - `repodata/repomd.xml`, listing `primary`, `filelists` and `other` (gzip'd, named by their
//!   SHA-256: `repodata/<sha256>-primary.xml.gz`), and `repodata/repomd.xml.asc`, its detached
//!   signature by the registry's own key ([`crate::signing`]), what `repo_gpgcheck=1` checks;
//! - `repodata/<sha256>-<kind>.xml.gz`, the metadata files a recent `repomd.xml` listed (a few
//!   generations are kept, so a client that read an older `repomd.xml` still gets its files);
//! - `Packages/<name>/<file>.rpm`, the packages (a remote registry's at its upstream's paths);
//! - `key.asc` and `repodata/repomd.xml.key`, the registry's public key (the `.repo`'s `gpgkey`);
//! - `PUT upload` with an `.rpm` as the body (what `arca artifact push rpm` sends).
//!
//! Storage mapping: an RPM name is a package, `[epoch:]version-release` a version, each build
//! (one architecture, `src` for a source package) a file `<name>-<version>-<release>.<arch>.rpm`
//! of that version. The build's entries of the three metadata files, rendered on upload from its
//! headers ([`header`], [`metadata`]), are version attributes `rpm.primary/<file>`,
//! `rpm.filelists/<file>` and `rpm.other/<file>`; hosted registries keep the metadata files up to
//! date incrementally ([`crate::frontend::package_index`]). Remote registries proxy an upstream
//! repository ([`remote`]); virtual ones serve their members' packages together. Every kind's
//! `repomd.xml` is Arca's own, signed with the registry's key. Errors are Arca's JSON; a 401
//! challenges for Basic credentials, which dnf sends from the `.repo`'s `username`/`password`.

mod header;
mod metadata;
mod remote;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use arca_protocol::{Command, CommandError, Overwrite, PackageType, Registry, RegistryKind, Role};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header as http_header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;

use crate::AppState;
use crate::auth::{Caller, authenticate};
use crate::frontend::package_index::{KeptByHash, PackageIndexes, Served};
use crate::frontend::{ApiError, BlobCursor, MemberFile, receive_blob, unless_refused};
use crate::meta::{ProposeError, StateRead};
use crate::proxy;
use crate::signing::RepositoryKey;
use metadata::{Listed, MetadataFile};

/// Metadata files kept by hash, per node, for clients that read an older `repomd.xml`.
const KEPT_BY_HASH: usize = 64;

/// The prefix of the attributes holding a build's entry of `file` (`rpm.primary/<file>`...).
fn attribute_prefix(file: MetadataFile) -> String {
    format!("rpm.{}/", file.kind())
}

/// What a version contributes to the metadata files: each build's three entries.
fn entries(version: &arca_protocol::Version) -> Vec<(MetadataFile, String)> {
    let mut found = Vec::new();
    for file in MetadataFile::ALL {
        let prefix = attribute_prefix(file);
        found.extend(
            version
                .attributes
                .iter()
                .filter(|(key, _)| key.starts_with(&prefix))
                .map(|(_, entry)| (file, entry.clone())),
        );
    }
    found
}

/// RPM repositories at `/rpm/<registry>/`.
pub struct Rpm;

impl crate::frontend::FrontEnd for Rpm {
    fn segment(&self) -> &'static str {
        "rpm"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new().route(
            "/rpm/{registry}/{*path}",
            any(crate::frontend::answering(route)),
        )
    }

    fn is_download(&self, path: &str) -> bool {
        path.ends_with(".rpm")
    }
}

/// A registry's `repomd.xml` as last rendered: what it lists, its text and signature.
#[derive(Debug, Clone)]
struct Signed {
    listed: Vec<Listed>,
    /// The fingerprint of the key that signed it (a rotation signs again).
    fingerprint: String,
    repomd: Bytes,
    signature: Bytes,
}

/// What the RPM front-end keeps on each node: hosted registries' metadata, recent metadata files
/// by hash, each registry's last signed `repomd.xml`, remote registries' package lists.
#[derive(Debug)]
pub struct RpmState {
    hosted: PackageIndexes<MetadataFile>,
    by_hash: KeptByHash,
    signed: Mutex<HashMap<String, Signed>>,
    remote_packages: remote::UpstreamPackages,
}

impl Default for RpmState {
    fn default() -> Self {
        RpmState {
            hosted: PackageIndexes::new(entries),
            by_hash: KeptByHash::new(KEPT_BY_HASH),
            signed: Mutex::default(),
            remote_packages: remote::UpstreamPackages::default(),
        }
    }
}

/// One request: the node, the caller and the registry it addresses.
struct Context<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    caller: Caller,
    registry: String,
}

impl Context<'_> {
    fn authorize(&self, needed: Role) -> Result<Registry, ApiError> {
        self.state
            .typed_registry(&self.caller, &self.registry, needed, PackageType::Rpm)
    }
}

/// What a path under `/rpm/<registry>/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Repomd,
    Signature,
    PublicKey,
    /// `repodata/<sha256>-<kind>.xml.gz`.
    Metadata(String),
    /// A package, by its path.
    Package(String),
    Upload,
}

fn parse_endpoint(path: &str) -> Option<Endpoint> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts
        .iter()
        .any(|part| part.is_empty() || *part == "." || *part == "..")
    {
        return None;
    }
    Some(match parts.as_slice() {
        ["repodata", "repomd.xml"] => Endpoint::Repomd,
        ["repodata", "repomd.xml.asc"] => Endpoint::Signature,
        ["repodata", "repomd.xml.key"] | ["key.asc"] => Endpoint::PublicKey,
        ["repodata", file] => {
            let (hash, _) = file.split_once('-')?;
            (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| Endpoint::Metadata(hash.to_ascii_lowercase()))?
        }
        ["upload"] => Endpoint::Upload,
        [.., file] if file.ends_with(".rpm") => Endpoint::Package(path.to_string()),
        _ => return None,
    })
}

async fn route(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (state, uri, headers) = (&state, &uri, &headers);
    let not_found = || ApiError::not_found(format!("no such endpoint {}", uri.path()));
    let (registry, path) =
        crate::frontend::registry_and_rest(uri.path(), "rpm").ok_or_else(not_found)?;
    // dnf percent-encodes package paths (`+` as `%2b`).
    let path = crate::frontend::percent_decode(path).ok_or_else(not_found)?;
    let endpoint = parse_endpoint(&path).ok_or_else(not_found)?;
    let ctx = Context {
        state,
        headers,
        caller: authenticate(state, headers)?,
        registry: registry.to_string(),
    };
    let ctx = &ctx;
    match (endpoint, method) {
        (Endpoint::Repomd, Method::GET | Method::HEAD) => {
            let signed = signed_repomd(ctx).await?;
            Ok((
                [(http_header::CONTENT_TYPE, "application/xml")],
                signed.repomd,
            )
                .into_response())
        }
        (Endpoint::Signature, Method::GET | Method::HEAD) => {
            let signed = signed_repomd(ctx).await?;
            Ok((
                [(http_header::CONTENT_TYPE, "application/pgp-signature")],
                signed.signature,
            )
                .into_response())
        }
        (Endpoint::PublicKey, Method::GET | Method::HEAD) => {
            crate::frontend::public_key_response(ctx.state, &ctx.authorize(Role::Read)?)
        }
        (Endpoint::Metadata(sha256), Method::GET | Method::HEAD) => {
            metadata_file(ctx, &sha256).await
        }
        (Endpoint::Package(path), Method::GET | Method::HEAD) => download(ctx, &path).await,
        (Endpoint::Upload, Method::PUT | Method::POST) => upload(ctx, body).await,
        (_, method) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "NOT_ALLOWED",
            format!("{method} is not supported on {}", uri.path()),
        )),
    }
}

/// The metadata `file` through `registry`: each member's packages in resolution order.
async fn served(
    ctx: &Context<'_>,
    registry: &Registry,
    file: MetadataFile,
) -> Result<Served, ApiError> {
    let mut served = Served::default();
    for member in proxy::resolution_order(ctx.state, registry) {
        let found = if member.kind == RegistryKind::Remote {
            remote::served(ctx, &member, file).await?
        } else {
            ctx.state
                .rpm
                .hosted
                .served(ctx.state, &member.name, &file)
                .await?
        };
        served.extend(found);
    }
    let header = file.header(served.entries);
    Ok(served.enclosed(&header, file.footer()))
}

/// The registry's `repomd.xml` and its signature: rendered again after a change, signed again
/// only when what it lists changed (so `repomd.xml` and `repomd.xml.asc` agree between changes).
async fn signed_repomd(ctx: &Context<'_>) -> Result<Signed, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let mut listed = Vec::new();
    for file in MetadataFile::ALL {
        let served = served(ctx, &registry, file).await?;
        let sha256 = served.gzip.sha256();
        ctx.state
            .rpm
            .by_hash
            .remember(&registry.name, &sha256, &served.gzip);
        listed.push(Listed {
            file,
            location: format!("repodata/{sha256}-{}.xml.gz", file.kind()),
            size: served.gzip.len(),
            open_sha256: served.plain.sha256(),
            open_size: served.plain.len(),
            sha256,
        });
    }
    let stored_key = ctx
        .state
        .meta
        .view()?
        .signing_key(&registry.name)?
        .ok_or_else(|| {
            ApiError::internal(format!("registry {} has no signing key", registry.name))
        })?;
    let kept = ctx
        .state
        .rpm
        .signed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&registry.name)
        .filter(|signed| signed.listed == listed && signed.fingerprint == stored_key.fingerprint)
        .cloned();
    if let Some(signed) = kept {
        return Ok(signed);
    }
    let repomd = metadata::repomd(&listed, ctx.state.now_ms() / 1000);
    let keys = ctx.state.keys.clone();
    let text = repomd.clone();
    let fingerprint = stored_key.fingerprint.clone();
    let signature = crate::blocking::spawn(move || {
        RepositoryKey::open(&stored_key, &keys)?.sign_detached(text.as_bytes())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let signed = Signed {
        listed,
        fingerprint,
        repomd: Bytes::from(repomd),
        signature: Bytes::from(signature),
    };
    ctx.state
        .rpm
        .signed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(registry.name.clone(), signed.clone());
    Ok(signed)
}

/// `GET repodata/<sha256>-<kind>.xml.gz`: a metadata file a recent `repomd.xml` listed.
async fn metadata_file(ctx: &Context<'_>, sha256: &str) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let kept = match ctx.state.rpm.by_hash.get(&registry.name, sha256) {
        Some(parts) => Some(parts),
        None => {
            // Rendering repomd.xml keeps the files it lists.
            signed_repomd(ctx).await?;
            ctx.state.rpm.by_hash.get(&registry.name, sha256)
        }
    };
    let parts = kept.ok_or_else(|| ApiError::not_found(format!("no metadata file {sha256}")))?;
    let length = parts.len();
    Ok((
        [
            (http_header::CONTENT_TYPE, "application/gzip".to_string()),
            (http_header::CONTENT_LENGTH, length.to_string()),
        ],
        parts.into_body(),
    )
        .into_response())
}

/// The package directory of hosted registries: `Packages/<name>/`.
fn package_location(name: &str, file: &str) -> String {
    format!("Packages/{name}/{file}")
}

/// `GET <path>.rpm`: from the first member that has it (a remote member fetches it, checked
/// against the SHA-256 its upstream's `primary.xml` lists), unless the firewall blocks the
/// version.
async fn download(ctx: &Context<'_>, path: &str) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let file = path.rsplit('/').next().unwrap_or_default();
    let asked = (ctx.headers, &ctx.caller);
    crate::frontend::serve_from_members(ctx.state, asked, &registry, path, |member| {
        Box::pin(async move {
            let member = &member;
            if member.kind == RegistryKind::Remote {
                return Ok(remote::package(ctx, member, path)
                    .await?
                    .map(|listed| MemberFile {
                        package: listed.name,
                        version: listed.evr,
                        upstream_sha256: Some(listed.sha256),
                    }));
            }
            let parts: Vec<&str> = path.split('/').collect();
            let ["Packages", name, _] = parts.as_slice() else {
                return Ok(None);
            };
            Ok(ctx
                .state
                .meta
                .view()?
                .versions(&member.name, name)?
                .into_iter()
                .find(|version| version.files.contains_key(file))
                .map(|version| MemberFile {
                    package: name.to_string(),
                    version: version.name,
                    upstream_sha256: None,
                }))
        })
    })
    .await
}

/// `PUT upload`: stores an `.rpm` (its headers say what it is); 409 when its file exists.
async fn upload(ctx: &Context<'_>, body: Body) -> Result<Response, ApiError> {
    let target = ctx
        .authorize(Role::Write)
        .and_then(|registry| ctx.state.write_target(&registry));
    let (target, body) = unless_refused(target, ctx.headers, body).await?;
    let blob = receive_blob(ctx.state, ctx.headers, body, None).await?;
    let cursor = BlobCursor::new(ctx.state.chunks.clone(), blob.clone());
    let package = crate::blocking::spawn(move || header::read_package(cursor))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let file = package.file_name();
    let sha256 = blob.sha256.to_hex();
    let location = package_location(&package.name, &file);
    let entries = [
        (
            MetadataFile::Primary,
            metadata::primary(
                &package,
                &sha256,
                blob.size,
                &location,
                ctx.state.now_ms() / 1000,
            ),
        ),
        (
            MetadataFile::Filelists,
            metadata::filelists(&package, &sha256),
        ),
        (MetadataFile::Other, metadata::other(&package, &sha256)),
    ];
    let attributes: BTreeMap<String, String> = entries
        .into_iter()
        .map(|(kind, entry)| (format!("{}{file}", attribute_prefix(kind)), entry))
        .collect();
    let (name, version) = (package.name.clone(), package.evr());
    let committed = ctx
        .state
        .meta
        .propose(Command::PutFile {
            registry: target.name.clone(),
            package: name.clone(),
            version: version.clone(),
            filename: file.clone(),
            blob,
            attributes,
            tags: Vec::new(),
            overwrite: Overwrite::RefuseFile,
            at: ctx.state.now_ms(),
        })
        .await;
    match committed {
        Ok(()) => Ok((
            StatusCode::CREATED,
            axum::Json(serde_json::json!({
                "package": name,
                "version": version,
                "arch": package.arch,
                "file": file,
                "location": location,
            })),
        )
            .into_response()),
        Err(ProposeError::Refused(CommandError::AlreadyExists(_))) => Err(ApiError::conflict(
            format!("{file} already exists in {}", target.name),
        )),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed_from_paths() {
        assert_eq!(
            parse_endpoint("repodata/repomd.xml"),
            Some(Endpoint::Repomd)
        );
        assert_eq!(
            parse_endpoint("repodata/repomd.xml.asc"),
            Some(Endpoint::Signature)
        );
        assert_eq!(parse_endpoint("key.asc"), Some(Endpoint::PublicKey));
        let hash = "ab".repeat(32);
        assert_eq!(
            parse_endpoint(&format!("repodata/{hash}-primary.xml.gz")),
            Some(Endpoint::Metadata(hash))
        );
        assert_eq!(
            parse_endpoint("Packages/a/a-1-1.noarch.rpm"),
            Some(Endpoint::Package("Packages/a/a-1-1.noarch.rpm".into()))
        );
        assert_eq!(parse_endpoint("Packages/../x.rpm"), None);
        assert_eq!(parse_endpoint("repodata/short-primary.xml.gz"), None);
        assert_eq!(parse_endpoint("upload"), Some(Endpoint::Upload));
    }
}
