//! Debian (apt) repositories under `/debian/<registry>`, the URL of an apt `deb` line
//! (`deb [signed-by=...] $SERVER/debian/<registry> <suite> <component>`):
//!
//! - `dists/<suite>/InRelease` (cleartext-signed), `Release` and `Release.gpg` (detached
//!   signature), signed with the registry's own key ([`crate::signing`]), listing the SHA-256 of
//!   every `Packages` file and saying `Acquire-By-Hash: yes`;
//! - `dists/<suite>/<component>/binary-<arch>/Packages` and `Packages.gz`, and the same files by
//!   hash under `by-hash/SHA256/<hex>` (a few generations are kept, so a client that read an older
//!   `InRelease` still gets the files it lists);
//! - `pool/...`, the package files;
//! - `key.asc`, the registry's public key;
//! - `PUT upload/<suite>/<component>` with a `.deb` as the body (what `arca artifact push debian`
//!   sends).
//!
//! Storage mapping: a Debian package is a package, its version a version, each build of it (one
//! architecture) a file `<name>_<version without epoch>_<arch>.deb` of that version. The build's
//! paragraph as `Packages` serves it (the control file with `Filename`, `Size`, `MD5sum` and
//! `SHA256` added) is the version attribute `deb.control/<arch>`; each suite and component the build
//! is in is an attribute `deb.dist/<suite>/<component>/<arch>` (pushing the same file to another
//! suite adds one; pushing other bytes under an existing file name is refused). The `Packages`
//! indexes of hosted registries are kept up to date incrementally ([`index`]).
//!
//! A `Release` lists the architectures its suite's builds have, and always `amd64` and `arm64`
//! (an `Architecture: all` build is in every architecture's `Packages`, so a suite of them serves
//! those machines). Remote registries proxy an upstream archive ([`remote`]); virtual ones serve
//! their members' indexes together, signed with their own key. Errors are Arca's JSON (apt prints
//! the status line); a 401 challenges for Basic credentials, which apt takes from `auth.conf`.

mod control;
mod deb_file;
pub mod index;
mod remote;

use std::collections::{BTreeMap, BTreeSet};

use arca_protocol::{Command, CommandError, Overwrite, PackageType, Registry, RegistryKind, Role};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use md5::Digest as _;

use crate::AppState;
use crate::auth::{Caller, authenticate};
use crate::ecosystems::debian_version;
use crate::frontend::package_index::{KeptByHash, PackageIndexes, Parts, Served};
use crate::frontend::{ApiError, BlobCursor, MemberFile, receive_blob, unless_refused};
use crate::meta::{ProposeError, StateRead};
use crate::proxy;
use crate::signing::RepositoryKey;
use index::{CONTROL, IndexKey};

/// Architectures every `Release` lists, besides those its builds have.
const ALWAYS_LISTED: [&str; 2] = ["amd64", "arm64"];

/// `Packages` files kept by hash, per node, for clients that read an older `InRelease`.
const KEPT_BY_HASH: usize = 256;

/// Debian repositories at `/debian/<registry>/`.
pub struct Debian;

impl crate::frontend::FrontEnd for Debian {
    fn segment(&self) -> &'static str {
        "debian"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new().route(
            "/debian/{registry}/{*path}",
            any(crate::frontend::answering(route)),
        )
    }

    fn is_download(&self, path: &str) -> bool {
        path.ends_with(".deb")
    }
}

/// What the Debian front-end keeps on each node: the hosted registries' indexes and recent
/// `Packages` files by hash.
#[derive(Debug)]
pub struct DebianState {
    hosted: PackageIndexes<IndexKey>,
    by_hash: KeptByHash,
    remote_pool: remote::PoolFiles,
}

impl Default for DebianState {
    fn default() -> Self {
        DebianState {
            hosted: PackageIndexes::new(index::entries),
            by_hash: KeptByHash::new(KEPT_BY_HASH),
            remote_pool: remote::PoolFiles::default(),
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
            .typed_registry(&self.caller, &self.registry, needed, PackageType::Debian)
    }
}

/// A suite or component name: letters, digits and `._+-`, starting with a letter or digit.
fn is_dist_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// The three files of a suite's signed description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReleaseFile {
    Release,
    InRelease,
    Signature,
}

/// What a path under `/debian/<registry>/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    PublicKey,
    Release(String, ReleaseFile),
    /// A `Packages` file by name (gzip'd when the flag says so).
    Packages(IndexKey, bool),
    /// A file of an index directory by its SHA-256.
    ByHash(IndexKey, String),
    /// A package file under `pool/`.
    Pool(String),
    Upload(String, String),
}

fn parse_endpoint(path: &str) -> Option<Endpoint> {
    let parts: Vec<&str> = path.split('/').collect();
    let key = |suite: &str, component: &str, binary: &str| {
        let architecture = binary.strip_prefix("binary-")?;
        (is_dist_name(suite) && is_dist_name(component) && control::is_architecture(architecture))
            .then(|| IndexKey {
                suite: suite.to_string(),
                component: component.to_string(),
                architecture: architecture.to_string(),
            })
    };
    Some(match parts.as_slice() {
        ["key.asc"] => Endpoint::PublicKey,
        ["dists", suite, file] if is_dist_name(suite) => Endpoint::Release(
            suite.to_string(),
            match *file {
                "Release" => ReleaseFile::Release,
                "InRelease" => ReleaseFile::InRelease,
                "Release.gpg" => ReleaseFile::Signature,
                _ => return None,
            },
        ),
        ["dists", suite, component, binary, "Packages"] => {
            Endpoint::Packages(key(suite, component, binary)?, false)
        }
        ["dists", suite, component, binary, "Packages.gz"] => {
            Endpoint::Packages(key(suite, component, binary)?, true)
        }
        ["dists", suite, component, binary, "by-hash", "SHA256", hex]
            if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Endpoint::ByHash(key(suite, component, binary)?, hex.to_ascii_lowercase())
        }
        ["pool", rest @ ..]
            if !rest.is_empty()
                && rest
                    .iter()
                    .all(|part| !part.is_empty() && *part != "." && *part != "..") =>
        {
            Endpoint::Pool(path.to_string())
        }
        ["upload", suite, component] if is_dist_name(suite) && is_dist_name(component) => {
            Endpoint::Upload(suite.to_string(), component.to_string())
        }
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
        crate::frontend::registry_and_rest(uri.path(), "debian").ok_or_else(not_found)?;
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
        (Endpoint::PublicKey, Method::GET | Method::HEAD) => {
            crate::frontend::public_key_response(ctx.state, &ctx.authorize(Role::Read)?)
        }
        (Endpoint::Release(suite, file), Method::GET | Method::HEAD) => {
            release(ctx, &suite, file).await
        }
        (Endpoint::Packages(key, gzipped), Method::GET | Method::HEAD) => {
            packages(ctx, &key, gzipped).await
        }
        (Endpoint::ByHash(key, sha256), Method::GET | Method::HEAD) => {
            by_hash(ctx, &key, &sha256).await
        }
        (Endpoint::Pool(path), Method::GET | Method::HEAD) => download(ctx, &path).await,
        (Endpoint::Upload(suite, component), Method::PUT | Method::POST) => {
            upload(ctx, &suite, &component, body).await
        }
        (_, method) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "NOT_ALLOWED",
            format!("{method} is not supported on {}", uri.path()),
        )),
    }
}

/// A `Packages` file as a response.
fn parts_response(parts: Parts, content_type: &'static str) -> Response {
    let length = parts.len();
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        parts.into_body(),
    )
        .into_response()
}

/// The `Packages` of `key` through `registry`: each member's in resolution order (a hosted
/// member's own architecture's, then its `all` builds'; a remote member's upstream file).
async fn served(
    ctx: &Context<'_>,
    registry: &Registry,
    key: &IndexKey,
) -> Result<Served, ApiError> {
    let mut served = Served::default();
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, registry) {
        if member.kind == RegistryKind::Remote {
            match remote::served(ctx, &member, key).await {
                Ok(Some(upstream)) => served.extend(upstream),
                Ok(None) => {}
                Err(error) => failure = Some(error),
            }
            continue;
        }
        let hosted = &ctx.state.debian.hosted;
        served.extend(hosted.served(ctx.state, &member.name, key).await?);
        if key.architecture != "all" {
            let all = IndexKey {
                architecture: "all".into(),
                ..key.clone()
            };
            served.extend(hosted.served(ctx.state, &member.name, &all).await?);
        }
    }
    match failure {
        Some(error) if served.plain.is_empty() => Err(error),
        _ => Ok(served),
    }
}

/// `GET dists/<suite>/<component>/binary-<arch>/Packages[.gz]`.
async fn packages(ctx: &Context<'_>, key: &IndexKey, gzipped: bool) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    if registry.kind == RegistryKind::Remote {
        let name = if gzipped { "Packages.gz" } else { "Packages" };
        return remote::index_file(ctx, &registry, key, name).await;
    }
    let served = served(ctx, &registry, key).await?;
    Ok(if gzipped {
        parts_response(served.gzip_or_empty(), "application/gzip")
    } else {
        parts_response(served.plain, "text/plain; charset=utf-8")
    })
}

/// `GET .../by-hash/SHA256/<hex>`: a `Packages` file a recent `Release` listed.
async fn by_hash(ctx: &Context<'_>, key: &IndexKey, sha256: &str) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    if registry.kind == RegistryKind::Remote {
        return remote::by_hash(ctx, &registry, key, sha256).await;
    }
    let kept = match ctx.state.debian.by_hash.get(&registry.name, sha256) {
        Some(parts) => Some(parts),
        None => {
            // Rendering the suite's Release keeps what it lists.
            release_text(ctx, &registry, &key.suite).await?;
            ctx.state.debian.by_hash.get(&registry.name, sha256)
        }
    };
    let parts =
        kept.ok_or_else(|| ApiError::not_found(format!("no file with SHA-256 {sha256}")))?;
    Ok(parts_response(parts, "application/octet-stream"))
}

/// The components of `suite` through `registry`, each with its architectures (`all` among them
/// when it has such builds).
async fn layout(
    ctx: &Context<'_>,
    registry: &Registry,
    suite: &str,
) -> Result<BTreeMap<String, BTreeSet<String>>, ApiError> {
    let mut layout: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for member in proxy::resolution_order(ctx.state, registry) {
        let found = if member.kind == RegistryKind::Remote {
            match remote::layout(ctx, &member, suite).await {
                Ok(found) => found,
                Err(error) => {
                    tracing::warn!(registry = %member.name, error = %error.message, "upstream Release unavailable");
                    continue;
                }
            }
        } else {
            let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for key in ctx
                .state
                .debian
                .hosted
                .keys(ctx.state, &member.name)
                .await?
            {
                if key.suite == suite {
                    found
                        .entry(key.component)
                        .or_default()
                        .insert(key.architecture);
                }
            }
            found
        };
        for (component, architectures) in found {
            layout.entry(component).or_default().extend(architectures);
        }
    }
    Ok(layout)
}

/// An RFC 2822 date of `ms` (unix milliseconds), as `Release` files carry.
fn release_date(ms: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    httpdate::fmt_http_date(time).replace("GMT", "UTC")
}

/// The `Release` of `suite` through a hosted or virtual `registry`; `None` when the suite holds
/// nothing. The `Packages` files it lists are kept by hash.
async fn release_text(
    ctx: &Context<'_>,
    registry: &Registry,
    suite: &str,
) -> Result<Option<String>, ApiError> {
    let layout = layout(ctx, registry, suite).await?;
    if layout.is_empty() {
        return Ok(None);
    }
    let mut architectures: BTreeSet<String> = ALWAYS_LISTED.iter().map(|a| a.to_string()).collect();
    architectures.extend(
        layout
            .values()
            .flatten()
            .filter(|architecture| *architecture != "all")
            .cloned(),
    );
    let mut listed = String::new();
    for component in layout.keys() {
        for architecture in &architectures {
            let key = IndexKey {
                suite: suite.to_string(),
                component: component.clone(),
                architecture: architecture.clone(),
            };
            let files = served(ctx, registry, &key).await?;
            let gzipped = files.gzip_or_empty();
            for (name, parts) in [("Packages", files.plain), ("Packages.gz", gzipped)] {
                let sha256 = parts.sha256();
                listed.push_str(&format!(
                    " {sha256} {:>16} {component}/binary-{architecture}/{name}\n",
                    parts.len()
                ));
                ctx.state
                    .debian
                    .by_hash
                    .remember(&registry.name, &sha256, &parts);
            }
        }
    }
    let components: Vec<&str> = layout.keys().map(String::as_str).collect();
    let architectures: Vec<&str> = architectures.iter().map(String::as_str).collect();
    Ok(Some(format!(
        "Origin: Arca\nLabel: {name}\nSuite: {suite}\nCodename: {suite}\nDate: {date}\n\
         Architectures: {architectures}\nComponents: {components}\n\
         Description: Arca registry {name}\nAcquire-By-Hash: yes\nSHA256:\n{listed}",
        name = registry.name,
        date = release_date(ctx.state.now_ms()),
        architectures = architectures.join(" "),
        components = components.join(" "),
    )))
}

/// `GET dists/<suite>/{Release,InRelease,Release.gpg}`, signed with the registry's key.
async fn release(ctx: &Context<'_>, suite: &str, file: ReleaseFile) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let stored_key = ctx
        .state
        .meta
        .view()?
        .signing_key(&registry.name)?
        .ok_or_else(|| {
            ApiError::internal(format!("registry {} has no signing key", registry.name))
        })?;
    let cache_key = format!("debian.release/{}/{suite}", registry.name);
    let text = ctx
        .state
        .render_once(&cache_key, || async {
            let text = if registry.kind == RegistryKind::Remote {
                remote::release_text(ctx, &registry, suite).await?
            } else {
                release_text(ctx, &registry, suite).await?
            };
            Ok::<_, ApiError>(Bytes::from(text.unwrap_or_default()))
        })
        .await?;
    if text.is_empty() {
        return Err(ApiError::not_found(format!(
            "suite {suite} of {} holds nothing",
            registry.name
        )));
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    let keys = ctx.state.keys.clone();
    let signed = crate::blocking::spawn(move || {
        let key = RepositoryKey::open(&stored_key, &keys)?;
        match file {
            ReleaseFile::Release => Ok(text),
            ReleaseFile::InRelease => key.clearsign(&text),
            ReleaseFile::Signature => key.sign_detached(text.as_bytes()),
        }
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let content_type = match file {
        ReleaseFile::Signature => "application/pgp-signature",
        _ => "text/plain; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], signed).into_response())
}

/// The package name, version (without epoch) and architecture a pool file name gives.
fn pool_file_parts(file: &str) -> Option<(&str, &str, &str)> {
    let stem = file.strip_suffix(".deb")?;
    let mut parts = stem.split('_');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(name), Some(version), Some(architecture), None) => {
            Some((name, version, architecture))
        }
        _ => None,
    }
}

/// The version of `package` in `member` whose file is `file` (versions in file names have no
/// epoch).
fn hosted_version(
    view: &impl StateRead,
    member: &Registry,
    package: &str,
    version_in_name: &str,
    file: &str,
) -> Result<Option<String>, ApiError> {
    for version in view.versions(&member.name, package)? {
        if debian_version::without_epoch(&version.name) == version_in_name
            && version.files.contains_key(file)
        {
            return Ok(Some(version.name));
        }
    }
    Ok(None)
}

/// `GET pool/...`: from the first member that has it (a remote member fetches it, checked against
/// the SHA-256 its upstream's `Packages` lists), unless the firewall blocks the version.
async fn download(ctx: &Context<'_>, path: &str) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let file = path.rsplit('/').next().unwrap_or_default();
    let (package, version_in_name, _) =
        pool_file_parts(file).ok_or_else(|| ApiError::not_found(format!("{path} not found")))?;
    let asked = (ctx.headers, &ctx.caller);
    crate::frontend::serve_from_members(ctx.state, asked, &registry, path, |member| {
        Box::pin(async move {
            let member = &member;
            let found = if member.kind == RegistryKind::Remote {
                remote::pool_file(ctx, member, path)
                    .await?
                    .map(|listed| (listed.version, Some(listed.sha256)))
            } else {
                hosted_version(
                    &ctx.state.meta.view()?,
                    member,
                    package,
                    version_in_name,
                    file,
                )?
                .map(|version| (version, None))
            };
            Ok(found.map(|(version, upstream_sha256)| MemberFile {
                package: package.to_string(),
                version,
                upstream_sha256,
            }))
        })
    })
    .await
}

/// The pool directory of a package: `pool/<first letter>/<name>/`, or `pool/lib<letter>/...` for
/// the many `lib` packages, as Debian's archive spreads them.
fn pool_directory(package: &str) -> String {
    let prefix = if package.starts_with("lib") && package.len() > 3 {
        &package[..4]
    } else {
        &package[..1]
    };
    format!("pool/{prefix}/{package}")
}

/// `PUT upload/<suite>/<component>`: stores a `.deb` (its control file says what it is) in the
/// suite and component; the same file again puts it into another suite or component, other bytes
/// under an existing file name are refused (409).
async fn upload(
    ctx: &Context<'_>,
    suite: &str,
    component: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let target = ctx
        .authorize(Role::Write)
        .and_then(|registry| ctx.state.write_target(&registry));
    let (target, body) = unless_refused(target, ctx.headers, body).await?;
    let blob = receive_blob(ctx.state, ctx.headers, body, None).await?;
    let (paragraph, md5) = {
        let cursor = BlobCursor::new(ctx.state.chunks.clone(), blob.clone());
        let mut md5_cursor = BlobCursor::new(ctx.state.chunks.clone(), blob.clone());
        crate::blocking::spawn(move || -> Result<_, String> {
            let paragraph = deb_file::control_paragraph(cursor).map_err(|e| e.to_string())?;
            let mut md5 = md5::Md5::new();
            std::io::copy(
                &mut md5_cursor,
                &mut crate::frontend::DigestWriter(&mut md5),
            )
            .map_err(|e| e.to_string())?;
            Ok((paragraph, hex::encode(md5.finalize())))
        })
        .await
        .map_err(ApiError::internal)?
    }
    .map_err(ApiError::invalid)?;
    let (package, version, architecture) = paragraph
        .identity()
        .map_err(|e| ApiError::invalid(format!("its control file is invalid: {e}")))?;
    let (package, version, architecture) = (
        package.to_string(),
        version.to_string(),
        architecture.to_string(),
    );
    let file = format!(
        "{package}_{}_{architecture}.deb",
        debian_version::without_epoch(&version)
    );
    let mut served = paragraph;
    for computed in ["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"] {
        served.remove(computed);
    }
    served.set("Filename", format!("{}/{file}", pool_directory(&package)));
    served.set("Size", blob.size.to_string());
    served.set("MD5sum", md5);
    served.set("SHA256", blob.sha256.to_hex());
    let dist = IndexKey {
        suite: suite.to_string(),
        component: component.to_string(),
        architecture: architecture.clone(),
    }
    .attribute();
    let existing = ctx
        .state
        .meta
        .view()?
        .version(&target.name, &package, &version)?;
    let command = match existing {
        Some(existing) if existing.files.contains_key(&file) => {
            if existing.files[&file].sha256 != blob.sha256 {
                return Err(ApiError::conflict(format!(
                    "{file} already exists in {} with other contents",
                    target.name
                )));
            }
            if existing.attributes.contains_key(&dist) {
                return Err(ApiError::conflict(format!(
                    "{file} is already in {suite}/{component}"
                )));
            }
            Command::SetAttributes {
                registry: target.name.clone(),
                package: package.clone(),
                version: version.clone(),
                set: BTreeMap::from([(dist, String::new())]),
                remove: Vec::new(),
                at: ctx.state.now_ms(),
            }
        }
        _ => Command::PutFile {
            registry: target.name.clone(),
            package: package.clone(),
            version: version.clone(),
            filename: file.clone(),
            blob,
            attributes: BTreeMap::from([
                (format!("{CONTROL}{architecture}"), served.render()),
                (dist, String::new()),
            ]),
            tags: Vec::new(),
            overwrite: Overwrite::RefuseFile,
            at: ctx.state.now_ms(),
        },
    };
    match ctx.state.meta.propose(command).await {
        Ok(()) => Ok((
            StatusCode::CREATED,
            axum::Json(serde_json::json!({
                "package": package,
                "version": version,
                "architecture": architecture,
                "suite": suite,
                "component": component,
                "file": file,
            })),
        )
            .into_response()),
        Err(ProposeError::Refused(CommandError::AlreadyExists(_))) => {
            Err(ApiError::conflict(format!("{file} already exists")))
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed_from_paths() {
        assert_eq!(parse_endpoint("key.asc"), Some(Endpoint::PublicKey));
        assert_eq!(
            parse_endpoint("dists/stable/InRelease"),
            Some(Endpoint::Release("stable".into(), ReleaseFile::InRelease))
        );
        let key = IndexKey {
            suite: "stable".into(),
            component: "main".into(),
            architecture: "amd64".into(),
        };
        assert_eq!(
            parse_endpoint("dists/stable/main/binary-amd64/Packages.gz"),
            Some(Endpoint::Packages(key.clone(), true))
        );
        let hex = "ab".repeat(32);
        assert_eq!(
            parse_endpoint(&format!(
                "dists/stable/main/binary-amd64/by-hash/SHA256/{hex}"
            )),
            Some(Endpoint::ByHash(key, hex))
        );
        assert_eq!(
            parse_endpoint("pool/h/hello/hello_1.0_amd64.deb"),
            Some(Endpoint::Pool("pool/h/hello/hello_1.0_amd64.deb".into()))
        );
        assert_eq!(parse_endpoint("pool/../x.deb"), None);
        assert_eq!(parse_endpoint("dists/../Release"), None);
        assert_eq!(
            parse_endpoint("upload/stable/main"),
            Some(Endpoint::Upload("stable".into(), "main".into()))
        );
        assert_eq!(parse_endpoint("upload/stable/.."), None);
    }

    #[test]
    fn pool_paths_follow_debian_archive_layout() {
        assert_eq!(pool_directory("hello"), "pool/h/hello");
        assert_eq!(pool_directory("libssl3"), "pool/libs/libssl3");
        assert_eq!(
            pool_file_parts("hello_2.10-3_amd64.deb"),
            Some(("hello", "2.10-3", "amd64"))
        );
        assert_eq!(pool_file_parts("hello.deb"), None);
    }
}
