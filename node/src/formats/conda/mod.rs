//! Conda channels under `/conda/<registry>`, the channel URL conda, mamba and rattler take:
//! `channeldata.json`, each subdir's `repodata.json` and its zstd'd `repodata.json.zst` (`linux-64`,
//! `noarch`, ...: every subdir name is a subdir, empty until a package lands in it), the package
//! files, and uploads of `.conda` and `.tar.bz2` packages (`PUT [<subdir>/]<file>`; `arca artifact
//! push conda` sends the file alone and the package's `index.json` says its subdir). Neither
//! `current_repodata.json` nor sharded repodata is served: clients that ask for them take the
//! 404 as "not offered" and read `repodata.json`.
//!
//! Storage mapping: a conda package name is a package, its version a version, and each build of it
//! (one subdir, one build string) a file of that version named `<subdir>__<file>`; the package's
//! `info/index.json`, read from the upload (see [`package_file`]) with the file's md5, sha256 and
//! size added, is a version attribute `conda.index/<subdir>/<file>` from which `repodata.json` is
//! rendered (once per metadata change).
//!
//! Remote Conda channels proxy an upstream channel (its `repodata.json` per subdir a cached
//! document, a package fetched once and checked against the sha256 the upstream lists); virtual ones
//! serve their members' packages together, the first member listing a file giving its record, and
//! take uploads into their publish target. Errors are Arca's JSON; a 401 challenges for Basic
//! and Bearer credentials.

mod package_file;

use std::collections::BTreeMap;

use arca_protocol::{
    BlobRef, Command, CommandError, Overwrite, PackageType, Registry, RegistryKind, Role, Sha256,
};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::{Caller, authenticate};
use crate::frontend::{
    ApiError, BlobCursor, read_small_blob, receive_blob, serve_file, unless_refused,
};
use crate::meta::{ProposeError, StateRead};
use crate::policy::firewall;
use crate::proxy::{self, Expected, ProxyError};
use crate::usage::Download;
use package_file::PackageForm;

/// The prefix of the version attributes holding a build's record (`conda.index/<subdir>/<file>`).
const RECORD: &str = "conda.index/";

/// Conda channels at `/conda/<registry>/`.
pub struct Conda;

impl crate::frontend::FrontEnd for Conda {
    fn segment(&self) -> &'static str {
        "conda"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new().route(
            "/conda/{registry}/{*path}",
            any(crate::frontend::answering(route)),
        )
    }

    fn is_download(&self, path: &str) -> bool {
        path.ends_with(".conda") || path.ends_with(".tar.bz2")
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
            .typed_registry(&self.caller, &self.registry, needed, PackageType::Conda)
    }
}

/// A subdir name: `noarch`, or `<os>-<arch>` (`linux-64`, `osx-arm64`, `win-64`...).
fn is_subdir(name: &str) -> bool {
    name == "noarch"
        || name.split_once('-').is_some_and(|(os, arch)| {
            !os.is_empty()
                && !arch.is_empty()
                && os.chars().all(|c| c.is_ascii_lowercase())
                && arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// A package file name: `<name>-<version>-<build>.conda` (or `.tar.bz2`), of safe characters.
fn is_package_file(file: &str) -> bool {
    PackageForm::of(file).is_some()
        && !file.starts_with('.')
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '!'))
}

/// What a path under `/conda/<registry>/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    ChannelData,
    /// `<subdir>/repodata.json`, zstd'd when the flag says so.
    RepoData(String, bool),
    File(String, String),
    /// `PUT <file>`: an upload to the subdir the package's `index.json` names.
    Upload(String),
}

fn parse_endpoint(path: &str) -> Option<Endpoint> {
    Some(match path.split('/').collect::<Vec<_>>().as_slice() {
        ["channeldata.json"] => Endpoint::ChannelData,
        [subdir, "repodata.json"] if is_subdir(subdir) => {
            Endpoint::RepoData(subdir.to_string(), false)
        }
        [subdir, "repodata.json.zst"] if is_subdir(subdir) => {
            Endpoint::RepoData(subdir.to_string(), true)
        }
        [subdir, file] if is_subdir(subdir) && is_package_file(file) => {
            Endpoint::File(subdir.to_string(), file.to_string())
        }
        [file] if is_package_file(file) => Endpoint::Upload(file.to_string()),
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
        crate::frontend::registry_and_rest(uri.path(), "conda").ok_or_else(not_found)?;
    let endpoint = parse_endpoint(path).ok_or_else(not_found)?;
    let ctx = Context {
        state,
        headers,
        caller: authenticate(state, headers)?,
        registry: registry.to_string(),
    };
    let ctx = &ctx;
    match (endpoint, method) {
        (Endpoint::ChannelData, Method::GET | Method::HEAD) => channel_data(ctx).await,
        (Endpoint::RepoData(subdir, compressed), Method::GET | Method::HEAD) => {
            repodata(ctx, &subdir, compressed).await
        }
        (Endpoint::File(subdir, file), Method::GET | Method::HEAD) => {
            download(ctx, &subdir, &file).await
        }
        (Endpoint::File(subdir, file), Method::PUT) => {
            upload(ctx, Some(&subdir), &file, body).await
        }
        (Endpoint::Upload(file), Method::PUT) => upload(ctx, None, &file, body).await,
        (_, method) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "NOT_ALLOWED",
            format!("{method} is not supported on {}", uri.path()),
        )),
    }
}

/// The records of `subdir` a hosted member holds, by file name.
fn stored_records(
    state: &AppState,
    member: &Registry,
    subdir: &str,
) -> Result<BTreeMap<String, Value>, ApiError> {
    let view = state.meta.view()?;
    let prefix = format!("{RECORD}{subdir}/");
    let mut records = BTreeMap::new();
    for package in view.packages(&member.name, None, usize::MAX)? {
        let Some(contents) = view.package_contents(&member.name, &package.name)? else {
            continue;
        };
        for version in contents.versions.values() {
            for (key, json) in &version.attributes {
                if let Some(file) = key.strip_prefix(&prefix)
                    && let Ok(record) = serde_json::from_str::<Value>(json)
                {
                    records.insert(file.to_string(), record);
                }
            }
        }
    }
    Ok(records)
}

/// The records of `subdir` through `registry`, by file name, each from the first member listing it.
async fn records(
    ctx: &Context<'_>,
    registry: &Registry,
    subdir: &str,
) -> Result<BTreeMap<String, Value>, ApiError> {
    let mut all = BTreeMap::new();
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, registry) {
        let found = if member.kind == RegistryKind::Remote {
            match upstream_records(ctx, &member, subdir).await {
                Ok(found) => found,
                Err(error) => {
                    failure = Some(error);
                    continue;
                }
            }
        } else {
            stored_records(ctx.state, &member, subdir)?
        };
        for (file, record) in found {
            all.entry(file).or_insert(record);
        }
    }
    match failure {
        Some(error) if all.is_empty() => Err(error),
        _ => Ok(all),
    }
}

/// A remote member's upstream records of `subdir` (`packages` and `packages.conda` together).
async fn upstream_records(
    ctx: &Context<'_>,
    member: &Registry,
    subdir: &str,
) -> Result<BTreeMap<String, Value>, ApiError> {
    let path = format!("{subdir}/repodata.json");
    let document = match ctx
        .state
        .proxy
        .document(ctx.state, member, &format!("conda.{path}"), &path, None)
        .await
    {
        Ok(document) => document,
        Err(ProxyError::NotFound(_)) => return Ok(BTreeMap::new()),
        Err(error) => return Err(error.into()),
    };
    let bytes = read_small_blob(ctx.state, &document.cached.blob).await?;
    let repodata: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "UPSTREAM",
            format!("the upstream's {path}: {e}"),
        )
    })?;
    let mut records = BTreeMap::new();
    for key in ["packages", "packages.conda"] {
        if let Some(Value::Object(listed)) = repodata.get(key) {
            records.extend(
                listed
                    .iter()
                    .map(|(file, record)| (file.clone(), record.clone())),
            );
        }
    }
    Ok(records)
}

/// `GET <subdir>/repodata.json[.zst]`: every package file of the subdir, rendered (and
/// compressed) once per metadata change.
async fn repodata(ctx: &Context<'_>, subdir: &str, compressed: bool) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    if compressed {
        let key = format!("conda.repodata.zst/{}/{subdir}", registry.name);
        let body = ctx
            .state
            .render_once(&key, || async {
                let json = repodata_json(ctx, &registry, subdir).await?;
                crate::blocking::spawn(move || zstd::bulk::compress(&json, 3))
                    .await
                    .map_err(ApiError::internal)?
                    .map(bytes::Bytes::from)
                    .map_err(ApiError::internal)
            })
            .await?;
        return Ok(([(header::CONTENT_TYPE, "application/zstd")], body).into_response());
    }
    let body = repodata_json(ctx, &registry, subdir).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The `repodata.json` of `subdir` through `registry`, rendered once per metadata change.
async fn repodata_json(
    ctx: &Context<'_>,
    registry: &Registry,
    subdir: &str,
) -> Result<bytes::Bytes, ApiError> {
    ctx.state
        .render_once(
            &format!("conda.repodata/{}/{subdir}", registry.name),
            || async {
                let (mut tar_bz2, mut conda) = (Map::new(), Map::new());
                for (file, record) in records(ctx, registry, subdir).await? {
                    if file.ends_with(".conda") {
                        conda.insert(file, record);
                    } else {
                        tar_bz2.insert(file, record);
                    }
                }
                let document = json!({
                    "info": { "subdir": subdir },
                    "packages": tar_bz2,
                    "packages.conda": conda,
                    "removed": [],
                    "repodata_version": 1,
                });
                Ok::<_, ApiError>(bytes::Bytes::from(document.to_string()))
            },
        )
        .await
}

/// `GET channeldata.json`: the packages of the channel's hosted members and the subdirs they are in.
async fn channel_data(ctx: &Context<'_>) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let body = ctx
        .state
        .render_once(&format!("conda.channeldata/{}", registry.name), || async {
            let mut packages: BTreeMap<String, std::collections::BTreeSet<String>> =
                BTreeMap::new();
            let mut subdirs = std::collections::BTreeSet::new();
            let view = ctx.state.meta.view()?;
            for member in proxy::resolution_order(ctx.state, &registry) {
                if member.kind == RegistryKind::Remote {
                    continue;
                }
                for package in view.packages(&member.name, None, usize::MAX)? {
                    let Some(contents) = view.package_contents(&member.name, &package.name)? else {
                        continue;
                    };
                    let builds = contents.versions.values().flat_map(|v| v.attributes.keys());
                    for key in builds {
                        if let Some((subdir, _)) = key
                            .strip_prefix(RECORD)
                            .and_then(|rest| rest.split_once('/'))
                        {
                            packages
                                .entry(package.name.clone())
                                .or_default()
                                .insert(subdir.to_string());
                            subdirs.insert(subdir.to_string());
                        }
                    }
                }
            }
            let packages: Map<String, Value> = packages
                .into_iter()
                .map(|(name, subdirs)| (name, json!({ "subdirs": subdirs })))
                .collect();
            let document =
                json!({ "channeldata_version": 1, "packages": packages, "subdirs": subdirs });
            Ok::<_, ApiError>(bytes::Bytes::from(document.to_string()))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The stored file name of a package file of `subdir`.
fn stored_file(subdir: &str, file: &str) -> String {
    format!("{subdir}__{file}")
}

/// `GET <subdir>/<file>`: from the first member that has it (a remote member fetches it), unless
/// the firewall blocks the version.
async fn download(ctx: &Context<'_>, subdir: &str, file: &str) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let not_found = || ApiError::not_found(format!("{subdir}/{file} not found"));
    // A version and a build string hold no `-`: the name is what comes before them.
    let (stem, _) = PackageForm::of(file).ok_or_else(not_found)?;
    let mut parts = stem.rsplitn(3, '-');
    let (_build, version, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(build), Some(version), Some(name)) => (build, version, name),
        _ => return Err(not_found()),
    };
    let stored = stored_file(subdir, file);
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, &registry) {
        let now = ctx.state.now_ms();
        let held = firewall::check_member(&ctx.state.meta.view()?, &member, name, version, now)?;
        // A hosted member's own file, or a remote member's kept one; else the upstream's, checked
        // against the sha256 its repodata lists.
        let sha256 = if held || member.kind != RegistryKind::Remote {
            None
        } else {
            match upstream_records(ctx, &member, subdir).await {
                Ok(records) => match records.get(file) {
                    Some(record) => record
                        .get("sha256")
                        .and_then(Value::as_str)
                        .and_then(|hex| hex.parse::<Sha256>().ok()),
                    None => continue,
                },
                Err(error) => {
                    failure = Some(error);
                    continue;
                }
            }
        };
        if !held && member.kind != RegistryKind::Remote {
            continue;
        }
        let url = format!("{subdir}/{file}");
        let found = proxy::find_or_fetch_file(
            ctx.state,
            std::slice::from_ref(&member),
            (name, version, &stored),
            |candidate| {
                (candidate.kind == RegistryKind::Remote).then(|| {
                    (
                        url.clone(),
                        Expected {
                            sha256,
                            ..Expected::default()
                        },
                    )
                })
            },
        )
        .await;
        match found {
            Ok(Some((_, blob))) => {
                let download = Download::of(&member.name, name, version, &ctx.caller);
                return Ok(serve_file(ctx.state, ctx.headers, &blob, Some(download)));
            }
            Ok(None) | Err(ProxyError::NotFound(_)) => {}
            Err(error) => failure = Some(ApiError::from(error)),
        }
    }
    Err(failure.unwrap_or_else(not_found))
}

/// `PUT [<subdir>/]<file>`: stores a package build, `.conda` or `.tar.bz2` (in the subdir its
/// `index.json` names, which must be the URL's when it gives one); 409 when the file exists.
async fn upload(
    ctx: &Context<'_>,
    subdir: Option<&str>,
    file: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let (_, form) = PackageForm::of(file)
        .ok_or_else(|| ApiError::invalid(format!("{file} is not a conda package file name")))?;
    let target = ctx
        .authorize(Role::Write)
        .and_then(|registry| ctx.state.write_target(&registry));
    let (target, body) = unless_refused(target, ctx.headers, body).await?;
    let target = &target;
    let blob = receive_blob(ctx.state, ctx.headers, body, None).await?;
    let (mut index, md5) = {
        let cursor = BlobCursor::new(ctx.state.chunks.clone(), blob.clone());
        let md5_cursor = BlobCursor::new(ctx.state.chunks.clone(), blob.clone());
        crate::blocking::spawn(move || -> Result<_, String> {
            Ok((form.index_json(cursor)?, package_file::md5_hex(md5_cursor)?))
        })
        .await
        .map_err(ApiError::internal)?
    }
    .map_err(|why| ApiError::invalid(format!("not a conda package: {why}")))?;
    let field = |key: &str| {
        index
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (name, version, build) = (field("name"), field("version"), field("build"));
    let expected = format!("{name}-{version}-{build}{}", form.extension());
    if name.is_empty() || version.is_empty() || build.is_empty() || expected != file {
        return Err(ApiError::invalid(format!(
            "info/index.json names {expected}, the upload is {file}"
        )));
    }
    let declared = field("subdir");
    if !is_subdir(&declared) || subdir.is_some_and(|subdir| subdir != declared) {
        return Err(ApiError::invalid(format!(
            "info/index.json is for subdir {declared:?}, the upload is to {}",
            subdir.unwrap_or("(none)")
        )));
    }
    let subdir = declared.as_str();
    index.insert("md5".into(), json!(md5));
    index.insert("sha256".into(), json!(blob.sha256.to_hex()));
    index.insert("size".into(), json!(blob.size));
    let attributes = BTreeMap::from([(
        format!("{RECORD}{subdir}/{file}"),
        Value::Object(index).to_string(),
    )]);
    put_build(
        ctx,
        target,
        &name,
        &version,
        stored_file(subdir, file),
        blob,
        attributes,
    )
    .await
}

async fn put_build(
    ctx: &Context<'_>,
    target: &Registry,
    name: &str,
    version: &str,
    filename: String,
    blob: BlobRef,
    attributes: BTreeMap<String, String>,
) -> Result<Response, ApiError> {
    let committed = ctx
        .state
        .meta
        .propose(Command::PutFile {
            registry: target.name.clone(),
            package: name.to_string(),
            version: version.to_string(),
            filename: filename.clone(),
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
            axum::Json(json!({ "name": name, "version": version })),
        )
            .into_response()),
        Err(ProposeError::Refused(CommandError::AlreadyExists(_))) => {
            Err(ApiError::conflict(format!("{filename} already exists")))
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed_from_paths() {
        assert_eq!(
            parse_endpoint("channeldata.json"),
            Some(Endpoint::ChannelData)
        );
        assert_eq!(
            parse_endpoint("linux-64/repodata.json"),
            Some(Endpoint::RepoData("linux-64".into(), false))
        );
        assert_eq!(
            parse_endpoint("noarch/repodata.json.zst"),
            Some(Endpoint::RepoData("noarch".into(), true))
        );
        assert_eq!(
            parse_endpoint("noarch/arca-a-1.0-py_0.conda"),
            Some(Endpoint::File(
                "noarch".into(),
                "arca-a-1.0-py_0.conda".into()
            ))
        );
        assert_eq!(parse_endpoint("../repodata.json"), None);
        assert_eq!(
            parse_endpoint("arca-a-1.0-0.conda"),
            Some(Endpoint::Upload("arca-a-1.0-0.conda".into()))
        );
        assert_eq!(parse_endpoint("noarch/..conda"), None);
        assert!(is_subdir("osx-arm64") && is_subdir("win-64") && !is_subdir("Linux-64"));
    }
}
