//! Composer repositories under `/composer/<registry>`, the `url` of a `"type": "composer"`
//! repository in `composer.json`: `packages.json` (pointing composer at `p2/%package%.json` through
//! `metadata-url`), the package metadata files (`p2/<vendor>/<name>.json` for tagged versions,
//! `p2/<vendor>/<name>~dev.json` for branches), the dist zips they name, and uploads of a package
//! zip (`PUT packages/<vendor>/<name>/<version>`, what `arca artifact push composer` sends).
//!
//! Storage mapping: a package is a package named `vendor/name`, a version a version whose one file is
//! the dist zip; the zip's `composer.json` (read at upload, see [`read_manifest`]) is a version
//! attribute from which the metadata files are rendered, with the dist's URL and sha1.
//!
//! Remote Composer registries proxy an upstream repository with `metadata-url` (such as
//! `https://repo.packagist.org`): its metadata files are cached documents, dists fetched once from the
//! URL the upstream names (see [`remote`]) and kept; virtual ones serve their members' versions
//! together, the first member holding a version giving its entry, and take uploads into their publish
//! target. Errors are Arca's own JSON, which composer prints; a 401 challenges for Basic credentials
//! (`auth.json`'s `http-basic` with an Arca token as password).

mod remote;

use std::collections::BTreeMap;
use std::io::Read;

use arca_protocol::{
    BlobRef, Command, CommandError, Overwrite, PackageType, Registry, RegistryKind, Role,
};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::{Caller, authenticate};
use crate::frontend::{ApiError, BlobCursor, receive_blob, serve_file, unless_refused};
use crate::meta::{ProposeError, StateRead};
use crate::policy::firewall;
use crate::proxy;
use crate::usage::Download;

/// The version attribute holding the version's `composer.json`, as JSON.
const MANIFEST: &str = "composer.json";
/// The version attribute holding the dist's sha1, hex.
const DIST_SHA1: &str = "composer.sha1";
/// The largest `composer.json` read.
const MANIFEST_LIMIT: u64 = 1024 * 1024;

/// Composer repositories at `/composer/<registry>/`.
pub struct Composer;

impl crate::frontend::FrontEnd for Composer {
    fn segment(&self) -> &'static str {
        "composer"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new().route(
            "/composer/{registry}/{*path}",
            any(crate::frontend::answering(route)),
        )
    }

    fn is_download(&self, path: &str) -> bool {
        path.contains("/dist/") && path.ends_with(".zip")
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
    /// Checks that the caller may do what `needed` allows on the registry, a Composer registry.
    fn authorize(&self, needed: Role) -> Result<Registry, ApiError> {
        self.state
            .typed_registry(&self.caller, &self.registry, needed, PackageType::Composer)
    }

    /// `https://host/composer/<registry>`.
    fn base_url(&self) -> String {
        let origin =
            crate::http_server::public_origin(self.state.config.public_url.as_ref(), self.headers);
        format!("{origin}/composer/{}", self.registry)
    }
}

/// A package name: `vendor/name`, lower case, as Composer's schema says.
fn check_name(name: &str) -> Result<(), ApiError> {
    let part = |text: &str| {
        !text.is_empty()
            && text.len() <= 100
            && text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && text.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && text.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
            })
    };
    match name.split_once('/') {
        Some((vendor, package)) if part(vendor) && part(package) => Ok(()),
        _ => Err(ApiError::invalid(format!(
            "invalid package name {name:?}: vendor/name, lower-case letters, digits, '_', '.' and '-'"
        ))),
    }
}

/// A version as composer names one: `1.2.3`, `v1.2.3-beta.1`, `dev-main`, `1.x-dev`.
fn check_version(version: &str) -> Result<(), ApiError> {
    let valid = !version.is_empty()
        && version.len() <= 100
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
        && (version.starts_with("dev-")
            || version
                .trim_start_matches(['v', 'V'])
                .starts_with(|c: char| c.is_ascii_digit()));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("invalid version {version:?}")))
    }
}

/// Whether composer lists `version` in the `~dev` file (a branch).
fn is_dev(version: &str) -> bool {
    version.starts_with("dev-") || version.ends_with("-dev")
}

/// What a path under `/composer/<registry>/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Root,
    /// `p2/<vendor>/<name>.json` (`dev`: `~dev.json`).
    Metadata {
        name: String,
        dev: bool,
    },
    /// `dist/<vendor>/<name>/<version>.zip`.
    Dist {
        name: String,
        version: String,
    },
    /// `packages/<vendor>/<name>/<version>`.
    Upload {
        name: String,
        version: String,
    },
}

fn parse_endpoint(path: &str) -> Option<Endpoint> {
    let segments: Vec<&str> = path.split('/').collect();
    Some(match segments.as_slice() {
        ["packages.json"] => Endpoint::Root,
        ["p2", vendor, file] => {
            let stem = file.strip_suffix(".json")?;
            let (package, dev) = match stem.strip_suffix("~dev") {
                Some(package) => (package, true),
                None => (stem, false),
            };
            let name = format!("{vendor}/{package}");
            check_name(&name).ok()?;
            Endpoint::Metadata { name, dev }
        }
        ["dist", vendor, package, file] => {
            let version = file.strip_suffix(".zip")?.to_string();
            let name = format!("{vendor}/{package}");
            check_name(&name).ok()?;
            check_version(&version).ok()?;
            Endpoint::Dist { name, version }
        }
        ["packages", vendor, package, version] => Endpoint::Upload {
            name: format!("{vendor}/{package}"),
            version: version.to_string(),
        },
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
        crate::frontend::registry_and_rest(uri.path(), "composer").ok_or_else(not_found)?;
    let endpoint = parse_endpoint(path).ok_or_else(not_found)?;
    let ctx = Context {
        state,
        headers,
        caller: authenticate(state, headers)?,
        registry: registry.to_string(),
    };
    let ctx = &ctx;
    match (endpoint, method) {
        (Endpoint::Root, Method::GET | Method::HEAD) => root(ctx).await,
        (Endpoint::Metadata { name, dev }, Method::GET | Method::HEAD) => {
            metadata(ctx, &name, dev).await
        }
        (Endpoint::Dist { name, version }, Method::GET | Method::HEAD) => {
            dist(ctx, &name, &version).await
        }
        (Endpoint::Upload { name, version }, Method::PUT) => {
            let writable = ctx
                .authorize(Role::Write)
                .and_then(|registry| ctx.state.write_target(&registry));
            let (target, body) = unless_refused(writable, headers, body).await?;
            upload(ctx, &target, &name, &version, body).await
        }
        (_, method) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "NOT_ALLOWED",
            format!("{method} is not supported on {}", uri.path()),
        )),
    }
}

/// `GET packages.json`: where composer finds each package's metadata; the names of the packages
/// hosted members hold (so composer asks no member for a name none has, unless a remote member is
/// there to ask).
async fn root(ctx: &Context<'_>) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let base = ctx.base_url();
    // Rendered once per metadata change (and origin: the document holds absolute URLs).
    let key = format!("composer.packages/{}/{base}", registry.name);
    let body = ctx
        .state
        .render_once(&key, || async {
            let members = proxy::resolution_order(ctx.state, &registry);
            let mut document = json!({
                "packages": [],
                "metadata-url": format!("{base}/p2/%package%.json"),
            });
            if members
                .iter()
                .all(|member| member.kind != RegistryKind::Remote)
            {
                let view = ctx.state.meta.view()?;
                let mut names = std::collections::BTreeSet::new();
                for member in &members {
                    names.extend(view.package_names(&member.name, None, usize::MAX)?);
                }
                document["available-packages"] = json!(names);
            }
            Ok::<_, ApiError>(bytes::Bytes::from(document.to_string()))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The metadata entries of `name` through `registry`, by version: each from the first member
/// holding it, its dist URL pointing at this registry.
async fn entries(
    ctx: &Context<'_>,
    registry: &Registry,
    name: &str,
) -> Result<BTreeMap<String, Map<String, Value>>, ApiError> {
    let mut all = BTreeMap::new();
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, registry) {
        let found = if member.kind == RegistryKind::Remote {
            match remote::entries(ctx, &member, name).await {
                Ok(found) => found,
                Err(error) => {
                    failure = Some(error);
                    continue;
                }
            }
        } else {
            stored_entries(ctx, &member, name)?
        };
        for (version, entry) in found {
            all.entry(version).or_insert(entry);
        }
    }
    for (version, entry) in all.iter_mut() {
        let mut dist = entry.get("dist").cloned().unwrap_or_else(|| json!({}));
        dist["type"] = json!("zip");
        dist["url"] = json!(format!("{}/dist/{name}/{version}.zip", ctx.base_url()));
        entry.insert("dist".into(), dist);
        entry.remove("source");
    }
    match failure {
        Some(error) if all.is_empty() => Err(error),
        _ => Ok(all),
    }
}

/// The entries a hosted member renders from what its versions recorded.
fn stored_entries(
    ctx: &Context<'_>,
    member: &Registry,
    name: &str,
) -> Result<BTreeMap<String, Map<String, Value>>, ApiError> {
    let Some(contents) = ctx
        .state
        .meta
        .read(|view| view.package_contents(&member.name, name))?
    else {
        return Ok(BTreeMap::new());
    };
    let mut entries = BTreeMap::new();
    for (version, stored) in &contents.versions {
        let Some(Value::Object(mut entry)) = stored
            .attributes
            .get(MANIFEST)
            .and_then(|json| serde_json::from_str(json).ok())
        else {
            continue;
        };
        entry.insert("name".into(), json!(name));
        entry.insert("version".into(), json!(version));
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(stored.created_at);
        entry.insert(
            "time".into(),
            json!(humantime::format_rfc3339_seconds(at).to_string()),
        );
        let shasum = stored
            .attributes
            .get(DIST_SHA1)
            .cloned()
            .unwrap_or_default();
        entry.insert("dist".into(), json!({ "type": "zip", "shasum": shasum }));
        entries.insert(version.clone(), entry);
    }
    Ok(entries)
}

/// `GET p2/<vendor>/<name>.json` (tagged versions) or `~dev.json` (branches).
async fn metadata(ctx: &Context<'_>, name: &str, dev: bool) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let versions: Vec<Value> = entries(ctx, &registry, name)
        .await?
        .into_iter()
        .filter(|(version, _)| is_dev(version) == dev)
        .map(|(_, entry)| Value::Object(entry))
        .collect();
    if versions.is_empty() {
        return Err(ApiError::not_found(format!("package {name} not found")));
    }
    Ok(axum::Json(json!({ "packages": { name: versions } })).into_response())
}

/// `GET dist/<vendor>/<name>/<version>.zip`: from the first member that has it (a remote member
/// fetches it), unless the firewall blocks the version.
async fn dist(ctx: &Context<'_>, name: &str, version: &str) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let file = dist_file(name, version);
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, &registry) {
        let now = ctx.state.now_ms();
        let held = firewall::check_member(&ctx.state.meta.view()?, &member, name, version, now)?;
        let found = if held {
            proxy::find_or_fetch_file(
                ctx.state,
                std::slice::from_ref(&member),
                (name, version, &file),
                |_| None,
            )
            .await
            .map(|found| found.map(|(_, blob)| blob))
            .map_err(ApiError::from)
        } else if member.kind == RegistryKind::Remote {
            remote::dist(ctx, &member, name, version, &file).await
        } else {
            continue;
        };
        match found {
            Ok(Some(blob)) => {
                let download = Download::of(&member.name, name, version, &ctx.caller);
                return Ok(serve_file(ctx.state, ctx.headers, &blob, Some(download)));
            }
            Ok(None) => {}
            Err(error) => failure = Some(error),
        }
    }
    Err(failure.unwrap_or_else(|| ApiError::not_found(format!("{name} {version} not found"))))
}

/// The dist zip's file name in the version.
fn dist_file(name: &str, version: &str) -> String {
    format!("{}-{version}.zip", name.replace('/', "-"))
}

/// The `composer.json` of a package zip: at its root, or in its one top directory (as GitHub's
/// archives have it); every path checked for `..` and absolute names.
fn read_manifest(archive: impl Read + std::io::Seek) -> Result<Map<String, Value>, String> {
    let mut zip = zip::ZipArchive::new(archive).map_err(|e| format!("not a zip archive: {e}"))?;
    let mut manifest = None;
    for index in 0..zip.len() {
        let entry = zip.by_index(index).map_err(|e| e.to_string())?;
        let path = entry.enclosed_name().ok_or_else(|| {
            format!(
                "{:?} lies outside the archive",
                entry.name().unwrap_or_default()
            )
        })?;
        let depth = path.components().count();
        if path.file_name().is_some_and(|f| f == "composer.json") && depth <= 2 {
            let better = manifest.as_ref().is_none_or(|(d, _)| depth < *d);
            if better {
                manifest = Some((depth, index));
            }
        }
    }
    let (_, index) = manifest.ok_or("the zip has no composer.json")?;
    let mut bytes = Vec::new();
    zip.by_index(index)
        .map_err(|e| e.to_string())?
        .take(MANIFEST_LIMIT)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("composer.json: {e}"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(manifest)) => Ok(manifest),
        Ok(_) => Err("composer.json is not an object".into()),
        Err(e) => Err(format!("composer.json is not valid JSON: {e}")),
    }
}

/// `PUT packages/<vendor>/<name>/<version>`: stores a package zip as that version; 409 when it
/// exists.
async fn upload(
    ctx: &Context<'_>,
    target: &Registry,
    name: &str,
    version: &str,
    body: Body,
) -> Result<Response, ApiError> {
    check_name(name)?;
    check_version(version)?;
    let blob = receive_blob(ctx.state, ctx.headers, body, None).await?;
    let (manifest, sha1) = {
        let state = ctx.state.clone();
        let blob = blob.clone();
        crate::blocking::spawn(move || -> Result<_, String> {
            let manifest = read_manifest(BlobCursor::new(state.chunks.clone(), blob.clone()))?;
            let mut hasher = <sha1::Sha1 as sha1::Digest>::new();
            std::io::copy(
                &mut BlobCursor::new(state.chunks.clone(), blob),
                &mut crate::frontend::DigestWriter(&mut hasher),
            )
            .map_err(|e| e.to_string())?;
            Ok((manifest, hex::encode(sha1::Digest::finalize(hasher))))
        })
        .await
        .map_err(ApiError::internal)?
    }
    .map_err(|why| ApiError::invalid(format!("not a Composer package zip: {why}")))?;
    let says = |key: &str| manifest.get(key).and_then(Value::as_str);
    if says("name") != Some(name) {
        return Err(ApiError::invalid(format!(
            "composer.json names {:?}, the upload is of {name}",
            says("name").unwrap_or("no package")
        )));
    }
    if let Some(declared) = says("version")
        && declared != version
    {
        return Err(ApiError::invalid(format!(
            "composer.json says version {declared}, the upload is of {version}"
        )));
    }
    let mut attributes = BTreeMap::from([
        (
            MANIFEST.to_string(),
            Value::Object(manifest.clone()).to_string(),
        ),
        (DIST_SHA1.to_string(), sha1),
    ]);
    if let Some(description) = says("description") {
        attributes.insert("description".into(), description.to_string());
    }
    put_version(ctx, target, name, version, blob, attributes).await
}

async fn put_version(
    ctx: &Context<'_>,
    target: &Registry,
    name: &str,
    version: &str,
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
            filename: dist_file(name, version),
            blob,
            attributes,
            tags: Vec::new(),
            overwrite: Overwrite::RefuseVersion,
            at: ctx.state.now_ms(),
        })
        .await;
    match committed {
        Ok(()) => Ok((
            StatusCode::CREATED,
            axum::Json(json!({ "name": name, "version": version })),
        )
            .into_response()),
        Err(ProposeError::Refused(CommandError::AlreadyExists(_))) => Err(ApiError::conflict(
            format!("{name} {version} already exists"),
        )),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_names_are_checked() {
        assert_eq!(parse_endpoint("packages.json"), Some(Endpoint::Root));
        assert_eq!(
            parse_endpoint("p2/acme/util~dev.json"),
            Some(Endpoint::Metadata {
                name: "acme/util".into(),
                dev: true
            })
        );
        assert_eq!(
            parse_endpoint("dist/acme/util/1.2.0.zip"),
            Some(Endpoint::Dist {
                name: "acme/util".into(),
                version: "1.2.0".into()
            })
        );
        assert_eq!(parse_endpoint("p2/Acme/util.json"), None);
        assert_eq!(parse_endpoint("dist/acme/../x.zip"), None);
        assert!(check_name("acme/util-kit").is_ok());
        assert!(check_name("acme").is_err() && check_name("acme/-x").is_err());
        assert!(check_version("v1.2.0").is_ok() && check_version("dev-main").is_ok());
        assert!(check_version("../1").is_err() && check_version("latest").is_err());
        assert!(is_dev("dev-main") && is_dev("1.x-dev") && !is_dev("1.0.0"));
    }
}
