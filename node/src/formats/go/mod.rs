//! Go module registries under `/go/<registry>/`, the URL to put in `GOPROXY`: the module proxy
//! protocol the go command reads (`<module>/@v/list`, `<module>/@v/<version>.info|.mod|.zip`,
//! `<module>/@latest`, module paths and versions case-encoded, see [`names`]), and uploads of module
//! zips (`PUT <module>/@v/<version>.zip`, what `arca artifact push go` sends).
//!
//! Storage mapping: a module is a package named by its path, a version a version whose files are
//! the module zip (`<version>.zip`) and its `go.mod` (`<version>.mod`, taken from the zip, or
//! `module <path>` for a module without one); `.info` is rendered from the version's upload time.
//! An upload is checked as the go command checks a zip before extracting it (see [`module_zip`]).
//!
//! Remote Go registries proxy an upstream module proxy (`https://proxy.golang.org` or any
//! `GOPROXY` URL): version lists and `@latest` are cached documents, `.info`, `.mod` and `.zip`
//! files fetched once and kept (see [`remote`]). Virtual ones list their members' versions
//! together and serve each file from the first member that has it; uploads to a virtual registry
//! land in its publish target. Errors are plain text, which the go command prints; a 401
//! challenges for Basic credentials (`GOPROXY=https://<user>:<token>@host/go/<registry>` or
//! `.netrc`).

mod module_zip;
mod names;
mod remote;

use std::collections::BTreeMap;

use arca_protocol::{
    BlobRef, Command, CommandError, Overwrite, PackageType, Registry, RegistryKind, Role,
};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use self::names::{ModulePath, ModuleVersion};
use crate::AppState;
use crate::auth::{Caller, authenticate};
use crate::blob::BlobWriter;
use crate::frontend::{
    BlobCursor, TextError, discard_body, receive_blob, serve_blob, unless_refused,
};
use crate::meta::{ProposeError, StateRead};
use crate::policy::firewall;
use crate::proxy;
use crate::usage::Download;

/// Go module registries at `/go/<registry>/`.
pub struct Go;

impl crate::frontend::FrontEnd for Go {
    fn segment(&self) -> &'static str {
        "go"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new().route(
            "/go/{registry}/{*path}",
            any(crate::frontend::answering(route)),
        )
    }

    fn is_download(&self, path: &str) -> bool {
        path.contains("/@v/") && path.ends_with(".zip")
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
    /// Checks that the caller may do what `needed` allows on the registry, a Go registry.
    fn authorize(&self, needed: Role) -> Result<Registry, TextError> {
        Ok(self
            .state
            .typed_registry(&self.caller, &self.registry, needed, PackageType::Go)?)
    }
}

/// The three files of a module version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Info,
    Mod,
    Zip,
}

impl FileKind {
    fn extension(self) -> &'static str {
        match self {
            FileKind::Info => "info",
            FileKind::Mod => "mod",
            FileKind::Zip => "zip",
        }
    }

    /// The file's name in the version (`v1.2.3.zip`).
    fn file_name(self, version: &ModuleVersion) -> String {
        format!("{}.{}", version.as_str(), self.extension())
    }

    fn content_type(self) -> &'static str {
        match self {
            FileKind::Info => "application/json",
            FileKind::Mod => "text/plain; charset=utf-8",
            FileKind::Zip => "application/zip",
        }
    }
}

/// What a path under `/go/<registry>/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    List(ModulePath),
    Latest(ModulePath),
    File(ModulePath, ModuleVersion, FileKind),
}

fn parse_endpoint(path: &str) -> Result<Option<Endpoint>, TextError> {
    if let Some(module) = path.strip_suffix("/@latest") {
        return Ok(Some(Endpoint::Latest(ModulePath::from_escaped(module)?)));
    }
    let Some((module, file)) = path.split_once("/@v/") else {
        return Ok(None);
    };
    let module = ModulePath::from_escaped(module)?;
    if file == "list" {
        return Ok(Some(Endpoint::List(module)));
    }
    let Some((version, extension)) = file.rsplit_once('.') else {
        return Ok(None);
    };
    let kind = match extension {
        "info" => FileKind::Info,
        "mod" => FileKind::Mod,
        "zip" => FileKind::Zip,
        _ => return Ok(None),
    };
    Ok(Some(Endpoint::File(
        module,
        ModuleVersion::from_escaped(version)?,
        kind,
    )))
}

async fn route(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, TextError> {
    let (state, uri, headers) = (&state, &uri, &headers);
    let not_found = || TextError::not_found(format!("no such endpoint {}", uri.path()));
    let (registry, path) =
        crate::frontend::registry_and_rest(uri.path(), "go").ok_or_else(not_found)?;
    let ctx = Context {
        state,
        headers,
        caller: authenticate(state, headers)?,
        registry: registry.to_string(),
    };
    // The go command percent-encodes the `!` of case-encoded paths.
    let decoded = crate::frontend::percent_decode(path).ok_or_else(not_found)?;
    let endpoint = match parse_endpoint(&decoded) {
        Ok(Some(endpoint)) => endpoint,
        Ok(None) => return Err(not_found()),
        // A path the go command would never ask for is not found; one it could send is invalid.
        Err(error) if method == Method::PUT => {
            discard_body(headers, body).await;
            return Err(error);
        }
        Err(error) => return Err(TextError::not_found(error.message)),
    };
    let ctx = &ctx;
    match (endpoint, method) {
        (Endpoint::List(module), Method::GET | Method::HEAD) => list(ctx, &module).await,
        (Endpoint::Latest(module), Method::GET | Method::HEAD) => latest(ctx, &module).await,
        (Endpoint::File(module, version, kind), Method::GET | Method::HEAD) => {
            let registry = ctx.authorize(Role::Read)?;
            version_file(ctx, &registry, &module, &version, kind).await
        }
        (Endpoint::File(module, version, FileKind::Zip), Method::PUT) => {
            let writable = ctx
                .authorize(Role::Write)
                .and_then(|registry| Ok(ctx.state.write_target(&registry)?));
            let (target, body) = unless_refused(writable, headers, body).await?;
            upload(ctx, &target, &module, &version, body).await
        }
        (_, method) => Err(TextError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not supported on {}", uri.path()),
        )),
    }
}

/// The versions of `module` a hosted member holds (pseudo-versions too), by version.
fn stored_versions(
    ctx: &Context<'_>,
    member: &Registry,
    module: &ModulePath,
) -> Result<BTreeMap<String, ModuleVersion>, TextError> {
    let Some(contents) = ctx
        .state
        .meta
        .read(|view| view.package_contents(&member.name, module.as_str()))?
    else {
        return Ok(BTreeMap::new());
    };
    Ok(contents
        .versions
        .into_iter()
        .filter_map(|(name, version)| {
            let parsed = ModuleVersion::parse(&name).ok()?;
            version
                .files
                .contains_key(&FileKind::Zip.file_name(&parsed))
                .then_some((name, parsed))
        })
        .collect())
}

/// The versions of `module` through `registry`: what hosted members hold and remote members'
/// upstreams list. `None` when no member knows the module.
async fn versions(
    ctx: &Context<'_>,
    registry: &Registry,
    module: &ModulePath,
) -> Result<Option<BTreeMap<String, ModuleVersion>>, TextError> {
    let mut all: Option<BTreeMap<String, ModuleVersion>> = None;
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, registry) {
        let found = match member.kind {
            RegistryKind::Remote => match remote::list(ctx, &member, module).await {
                Ok(found) => found,
                Err(error) => {
                    failure = Some(error);
                    continue;
                }
            },
            _ => {
                let stored = stored_versions(ctx, &member, module)?;
                (!stored.is_empty()).then_some(stored)
            }
        };
        if let Some(found) = found {
            all.get_or_insert_default().extend(found);
        }
    }
    match failure {
        Some(error) if all.is_none() => Err(error),
        _ => Ok(all),
    }
}

/// `GET <module>/@v/list`: the module's versions, one a line, pseudo-versions left out.
async fn list(ctx: &Context<'_>, module: &ModulePath) -> Result<Response, TextError> {
    let registry = ctx.authorize(Role::Read)?;
    let versions = versions(ctx, &registry, module)
        .await?
        .ok_or_else(|| not_known(module))?;
    let mut listed: Vec<&ModuleVersion> = versions.values().filter(|v| !v.is_pseudo()).collect();
    listed.sort_by(|a, b| a.precedence(b));
    let body: String = listed
        .into_iter()
        .map(|version| format!("{}\n", version.as_str()))
        .collect();
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
}

/// `GET <module>/@latest`: the `.info` of the version the go command takes for "latest" when the
/// list has none to offer — the highest release, else the highest pre-release, else the highest
/// pseudo-version; a remote member's upstream answers for itself.
async fn latest(ctx: &Context<'_>, module: &ModulePath) -> Result<Response, TextError> {
    let registry = ctx.authorize(Role::Read)?;
    let versions = versions(ctx, &registry, module).await?.unwrap_or_default();
    let best = versions.values().max_by(|a, b| {
        let rank = |v: &ModuleVersion| (!v.is_pseudo(), !v.is_prerelease());
        rank(a).cmp(&rank(b)).then_with(|| a.precedence(b))
    });
    if let Some(best) = best {
        return version_file(ctx, &registry, module, best, FileKind::Info).await;
    }
    for member in proxy::resolution_order(ctx.state, &registry) {
        if member.kind == RegistryKind::Remote
            && let Some(info) = remote::latest(ctx, &member, module).await?
        {
            return Ok((
                [(header::CONTENT_TYPE, FileKind::Info.content_type())],
                info,
            )
                .into_response());
        }
    }
    Err(not_known(module))
}

fn not_known(module: &ModulePath) -> TextError {
    TextError::not_found(format!(
        "not found: module {} is not known here",
        module.as_str()
    ))
}

/// `GET <module>/@v/<version>.info|.mod|.zip`: from the first member that has the version (a remote
/// member fetches the file), unless the firewall blocks it.
async fn version_file(
    ctx: &Context<'_>,
    registry: &Registry,
    module: &ModulePath,
    version: &ModuleVersion,
    kind: FileKind,
) -> Result<Response, TextError> {
    let file = kind.file_name(version);
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, registry) {
        let now = ctx.state.now_ms();
        let held = firewall::check_member(
            &ctx.state.meta.view()?,
            &member,
            module.as_str(),
            version.as_str(),
            now,
        )?;
        if member.kind != RegistryKind::Remote {
            if !held {
                continue;
            }
            if let Some(response) = stored_file(ctx, &member, module, version, kind).await? {
                return Ok(response);
            }
            continue;
        }
        match remote::file(ctx, &member, module, version, &file).await {
            Ok(Some(blob)) => {
                return Ok(serve_file(ctx, (&member, module, version), &blob, kind));
            }
            Ok(None) => {}
            Err(error) => failure = Some(error),
        }
    }
    Err(failure.unwrap_or_else(|| {
        TextError::not_found(format!(
            "not found: {}@{}: no such version here",
            module.as_str(),
            version.as_str()
        ))
    }))
}

/// A file of a version a hosted member holds; `.info` is rendered from its upload time.
async fn stored_file(
    ctx: &Context<'_>,
    member: &Registry,
    module: &ModulePath,
    version: &ModuleVersion,
    kind: FileKind,
) -> Result<Option<Response>, TextError> {
    if kind == FileKind::Info {
        let Some(stored) = ctx
            .state
            .meta
            .read(|view| view.version(&member.name, module.as_str(), version.as_str()))?
            .filter(|stored| stored.files.contains_key(&FileKind::Zip.file_name(version)))
        else {
            return Ok(None);
        };
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(stored.created_at);
        let info = serde_json::json!({
            "Version": version.as_str(),
            "Time": humantime::format_rfc3339_seconds(time).to_string(),
        });
        return Ok(Some(
            (
                [(header::CONTENT_TYPE, kind.content_type())],
                info.to_string(),
            )
                .into_response(),
        ));
    }
    let found = proxy::find_or_fetch_file(
        ctx.state,
        std::slice::from_ref(member),
        (module.as_str(), version.as_str(), &kind.file_name(version)),
        |_| None,
    )
    .await?;
    Ok(found.map(|(_, blob)| serve_file(ctx, (member, module, version), &blob, kind)))
}

/// Answers with a file of `module` `version` that `holder` holds; a `.zip` counts as a download
/// (the `.info` and `.mod` the go command reads first do not).
fn serve_file(
    ctx: &Context<'_>,
    (holder, module, version): (&Registry, &ModulePath, &ModuleVersion),
    blob: &BlobRef,
    kind: FileKind,
) -> Response {
    let download = (kind == FileKind::Zip)
        .then(|| Download::of(&holder.name, module.as_str(), version.as_str(), &ctx.caller));
    let mut response = serve_blob(ctx.state, ctx.headers, blob, download, |message| {
        TextError::new(StatusCode::RANGE_NOT_SATISFIABLE, message).into_response()
    });
    if let Ok(value) = header::HeaderValue::from_str(kind.content_type()) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// `PUT <module>/@v/<version>.zip`: stores a module version; 409 when it exists.
async fn upload(
    ctx: &Context<'_>,
    target: &Registry,
    module: &ModulePath,
    version: &ModuleVersion,
    body: Body,
) -> Result<Response, TextError> {
    version.check_admitted_by(module)?;
    let zip = receive_blob(ctx.state, ctx.headers, body, None).await?;
    if zip.size > module_zip::MAX_ZIP {
        return Err(TextError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a module zip is at most {} bytes", module_zip::MAX_ZIP),
        ));
    }
    let checked = {
        let cursor = BlobCursor::new(ctx.state.chunks.clone(), zip.clone());
        let (module, version) = (module.clone(), version.clone());
        crate::blocking::spawn(move || module_zip::check(cursor, &module, &version))
            .await
            .map_err(TextError::internal)?
    }
    .map_err(|why| {
        TextError::bad_request(format!(
            "the zip of {}@{} is not a valid module zip: {why}",
            module.as_str(),
            version.as_str()
        ))
    })?;
    let go_mod = checked
        .go_mod
        .unwrap_or_else(|| format!("module {}\n", module.as_str()).into_bytes());
    let mut writer = BlobWriter::new(ctx.state.chunks.clone());
    writer.write(&go_mod).await?;
    let go_mod = writer.finish().await?;
    let at = ctx.state.now_ms();
    let put = |kind: FileKind, blob: BlobRef, overwrite| Command::PutFile {
        registry: target.name.clone(),
        package: module.as_str().to_string(),
        version: version.as_str().to_string(),
        filename: kind.file_name(version),
        blob,
        attributes: BTreeMap::new(),
        tags: Vec::new(),
        overwrite,
        at,
    };
    let commands = vec![
        put(FileKind::Zip, zip, Overwrite::RefuseVersion),
        put(FileKind::Mod, go_mod, Overwrite::RefuseFile),
    ];
    match ctx.state.meta.propose(Command::Batch { commands }).await {
        Ok(()) => Ok((
            StatusCode::CREATED,
            format!("stored {}@{}\n", module.as_str(), version.as_str()),
        )
            .into_response()),
        Err(ProposeError::Refused(CommandError::AlreadyExists(_))) => Err(TextError::new(
            StatusCode::CONFLICT,
            format!(
                "{}@{} already exists: a module version never changes",
                module.as_str(),
                version.as_str()
            ),
        )),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed_from_escaped_paths() {
        let module = |p: &str| ModulePath::parse(p).expect("valid");
        let version = |v: &str| ModuleVersion::parse(v).expect("valid");
        assert_eq!(
            parse_endpoint("github.com/!azure/x/@v/list").expect("valid"),
            Some(Endpoint::List(module("github.com/Azure/x")))
        );
        assert_eq!(
            parse_endpoint("example.com/x/@v/v1.0.0-!r!c.zip").expect("valid"),
            Some(Endpoint::File(
                module("example.com/x"),
                version("v1.0.0-RC"),
                FileKind::Zip
            ))
        );
        assert_eq!(
            parse_endpoint("example.com/x/@latest").expect("valid"),
            Some(Endpoint::Latest(module("example.com/x")))
        );
        assert_eq!(
            parse_endpoint("example.com/x/@v/v1.0.0.tar").expect("valid"),
            None
        );
        assert_eq!(
            parse_endpoint("sumdb/sum.golang.org/supported").expect("valid"),
            None
        );
        assert!(parse_endpoint("example.com/../x/@v/list").is_err());
    }
}
