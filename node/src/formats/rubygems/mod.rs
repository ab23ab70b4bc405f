//! RubyGems registries under `/rubygems/<registry>/`, the URL of `gem install --source`,
//! `gem push --host` and a Gemfile's `source`: the compact index (`versions`, `info/<gem>`,
//! `names`), the legacy Marshal indexes `gem` falls back to (see [`index`]), the `.gem` files, and
//! the push and yank API (`POST api/v1/gems`, `DELETE api/v1/gems/yank`).
//!
//! Storage mapping: a gem is a package, a version a version named as the indexes name it (`1.2.0`,
//! or `1.2.0-x86_64-linux` for a native gem) whose one file is the `.gem`; the specification read
//! from it at push (see [`gem_file`]) is a version attribute from which every index is rendered.
//! A yank sets an attribute: the version leaves the indexes, its file stays for audit.
//!
//! Authentication: `gem push` sends an Arca token as the whole `Authorization` header
//! (`GEM_HOST_API_KEY`); `gem` and bundler send Basic credentials (from the source URL, or
//! bundler's `BUNDLE_<HOST>` setting) with the token as password. Remote RubyGems registries proxy
//! an upstream gem server's compact index and files (see [`remote`]); virtual ones serve their
//! members together, the first member holding a version giving its line, and take pushes into
//! their publish target.

mod gem_file;
mod index;
mod marshal;
mod remote;

use std::collections::BTreeMap;

use arca_protocol::{Command, CommandError, Overwrite, PackageType, Registry, RegistryKind, Role};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use self::index::{SPEC, SpecList, StoredGem, YANKED};
use crate::AppState;
use crate::auth::{Caller, authenticate};
use crate::frontend::{BlobCursor, TextError, receive_blob, serve_blob, unless_refused};
use crate::meta::{ProposeError, StateRead};
use crate::policy::firewall;
use crate::proxy;
use crate::usage::Download;

/// The largest form body of a yank.
const YANK_FORM_LIMIT: usize = 64 * 1024;

/// RubyGems registries at `/rubygems/<registry>/`.
pub struct RubyGems;

impl crate::frontend::FrontEnd for RubyGems {
    fn segment(&self) -> &'static str {
        "rubygems"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new()
            .route(
                "/rubygems/{registry}/",
                any(crate::frontend::answering(route)),
            )
            .route(
                "/rubygems/{registry}/{*path}",
                any(crate::frontend::answering(route)),
            )
    }

    fn is_download(&self, path: &str) -> bool {
        path.contains("/gems/") && path.ends_with(".gem")
    }

    fn usual_status(&self, _method: &Method) -> u16 {
        200
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
    /// Checks that the caller may do what `needed` allows on the registry, a RubyGems registry.
    fn authorize(&self, needed: Role) -> Result<Registry, TextError> {
        Ok(self.state.typed_registry(
            &self.caller,
            &self.registry,
            needed,
            PackageType::Rubygems,
        )?)
    }
}

/// What a path under `/rubygems/<registry>/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Root,
    Versions,
    Names,
    Info(String),
    Specs(SpecList, String),
    Gemspec(String),
    Gem(String),
    Push,
    Yank,
}

fn parse_endpoint(path: &str) -> Option<Endpoint> {
    // `gem push --host <url>/` asks for `<url>//api/v1/gems`.
    let path = path.trim_start_matches('/');
    Some(match path {
        "" => Endpoint::Root,
        "versions" => Endpoint::Versions,
        "names" => Endpoint::Names,
        "api/v1/gems" => Endpoint::Push,
        "api/v1/gems/yank" => Endpoint::Yank,
        _ => {
            if let Some(name) = path.strip_prefix("info/") {
                gem_file::check_name(name).ok()?;
                Endpoint::Info(name.to_string())
            } else if let Some(which) = SpecList::of_file(path) {
                Endpoint::Specs(which, path.to_string())
            } else if let Some(full) = path
                .strip_prefix("quick/Marshal.4.8/")
                .and_then(|file| file.strip_suffix(".gemspec.rz"))
            {
                Endpoint::Gemspec(checked_full_name(full)?)
            } else if let Some(full) = path
                .strip_prefix("gems/")
                .and_then(|file| file.strip_suffix(".gem"))
            {
                Endpoint::Gem(checked_full_name(full)?)
            } else {
                return None;
            }
        }
    })
}

/// A `<gem>-<version>[-<platform>]` file stem of safe characters.
fn checked_full_name(full: &str) -> Option<String> {
    (!full.contains('/') && !split_full_name(full).is_empty()).then(|| full.to_string())
}

/// The ways `<gem>-<version>[-<platform>]` splits into a gem name and a version (which starts
/// with a digit); a name may hold `-` and digits, so there can be several.
fn split_full_name(full: &str) -> Vec<(&str, &str)> {
    full.match_indices('-')
        .map(|(at, _)| (&full[..at], &full[at + 1..]))
        .filter(|(name, version)| {
            gem_file::check_name(name).is_ok() && version.starts_with(|c: char| c.is_ascii_digit())
        })
        .collect()
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
        crate::frontend::registry_and_rest(uri.path(), "rubygems").ok_or_else(not_found)?;
    let endpoint = parse_endpoint(path).ok_or_else(not_found)?;
    let ctx = Context {
        state,
        headers,
        caller: authenticate(state, headers)?,
        registry: registry.to_string(),
    };
    let ctx = &ctx;
    match (endpoint, method) {
        (Endpoint::Root, Method::GET | Method::HEAD) => {
            ctx.authorize(Role::Read)?;
            Ok(StatusCode::OK.into_response())
        }
        (Endpoint::Versions, Method::GET | Method::HEAD) => versions(ctx).await,
        (Endpoint::Names, Method::GET | Method::HEAD) => names(ctx).await,
        (Endpoint::Info(name), Method::GET | Method::HEAD) => info(ctx, &name).await,
        (Endpoint::Specs(which, file), Method::GET | Method::HEAD) => {
            spec_list(ctx, which, &file).await
        }
        (Endpoint::Gemspec(full), Method::GET | Method::HEAD) => gemspec(ctx, &full).await,
        (Endpoint::Gem(full), Method::GET | Method::HEAD) => download(ctx, &full).await,
        (Endpoint::Push, Method::POST) => {
            let writable = ctx
                .authorize(Role::Write)
                .and_then(|registry| Ok(ctx.state.write_target(&registry)?));
            let (target, body) = unless_refused(writable, headers, body).await?;
            push(ctx, &target, body).await
        }
        (Endpoint::Yank, Method::DELETE) => {
            let target = ctx.state.write_target(&ctx.authorize(Role::Write)?)?;
            yank(ctx, &target, body).await
        }
        (_, method) => Err(TextError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not supported on {}", uri.path()),
        )),
    }
}

fn text_response(content_type: &'static str, body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body.into()).into_response()
}

/// `GET versions`: every gem with its versions and the md5 of its info file; remote members'
/// upstream lines follow the hosted members' (later lines add versions, as the format says).
async fn versions(ctx: &Context<'_>) -> Result<Response, TextError> {
    let registry = ctx.authorize(Role::Read)?;
    let body = ctx
        .state
        .render_once(&format!("rubygems.versions/{}", registry.name), || async {
            let now = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ctx.state.now_ms());
            let mut body = format!(
                "created_at: {}\n---\n",
                humantime::format_rfc3339_seconds(now)
            );
            for member in proxy::resolution_order(ctx.state, &registry) {
                if member.kind == RegistryKind::Remote {
                    body.push_str(&remote::versions_lines(ctx, &member).await?);
                } else {
                    body.push_str(&index::versions_lines(&index::stored_gems(
                        ctx, &member, None,
                    )?));
                }
            }
            Ok::<_, TextError>(bytes::Bytes::from(body))
        })
        .await?;
    Ok(text_response("text/plain; charset=utf-8", body))
}

/// `GET names`: every gem's name, rendered once per metadata change.
async fn names(ctx: &Context<'_>) -> Result<Response, TextError> {
    let registry = ctx.authorize(Role::Read)?;
    let body = ctx
        .state
        .render_once(&format!("rubygems.names/{}", registry.name), || async {
            let mut names = std::collections::BTreeSet::new();
            for member in proxy::resolution_order(ctx.state, &registry) {
                if member.kind == RegistryKind::Remote {
                    names.extend(remote::names(ctx, &member).await?);
                } else {
                    names.extend(index::stored_gems(ctx, &member, None)?.into_keys());
                }
            }
            let mut body = String::from("---\n");
            for name in names {
                body.push_str(&name);
                body.push('\n');
            }
            Ok::<_, TextError>(bytes::Bytes::from(body))
        })
        .await?;
    Ok(text_response("text/plain; charset=utf-8", body))
}

/// The info lines of `name` through `registry`, by version: each version from the first member
/// that has it.
async fn info_lines(
    ctx: &Context<'_>,
    registry: &Registry,
    name: &str,
) -> Result<BTreeMap<String, String>, TextError> {
    let mut lines = BTreeMap::new();
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, registry) {
        let found = if member.kind == RegistryKind::Remote {
            match remote::info_lines(ctx, &member, name).await {
                Ok(found) => found,
                Err(error) => {
                    failure = Some(error);
                    continue;
                }
            }
        } else {
            index::stored_gems(ctx, &member, Some(name))?
                .remove(name)
                .unwrap_or_default()
                .iter()
                .map(|gem| (gem.spec.full_version(), index::info_line(gem)))
                .collect()
        };
        for (version, line) in found {
            lines.entry(version).or_insert(line);
        }
    }
    match failure {
        Some(error) if lines.is_empty() => Err(error),
        _ => Ok(lines),
    }
}

/// `GET info/<gem>`: one line per version, oldest first.
async fn info(ctx: &Context<'_>, name: &str) -> Result<Response, TextError> {
    let registry = ctx.authorize(Role::Read)?;
    let lines = info_lines(ctx, &registry, name).await?;
    if lines.is_empty() {
        return Err(TextError::not_found(format!("gem {name} not found")));
    }
    let mut ordered: Vec<(&String, &String)> = lines.iter().collect();
    ordered.sort_by(|(a, _), (b, _)| {
        crate::ecosystems::gem_version::compare(a, b).then_with(|| a.cmp(b))
    });
    let body = index::info_body(ordered.into_iter().map(|(_, line)| line));
    Ok(text_response("text/plain; charset=utf-8", body))
}

/// `GET specs.4.8.gz`, `latest_specs.4.8.gz`, `prerelease_specs.4.8.gz`: the hosted members'
/// gems; a remote registry passes its upstream's file on (a virtual registry's remote members
/// are read through the compact index only).
async fn spec_list(ctx: &Context<'_>, which: SpecList, file: &str) -> Result<Response, TextError> {
    let registry = ctx.authorize(Role::Read)?;
    if registry.kind == RegistryKind::Remote {
        let bytes = remote::document(ctx, &registry, &format!("rubygems.{file}"), file)
            .await?
            .ok_or_else(|| TextError::not_found(format!("the upstream has no {file}")))?;
        return Ok(text_response("application/octet-stream", bytes));
    }
    let mut gems = BTreeMap::new();
    for member in proxy::resolution_order(ctx.state, &registry) {
        if member.kind != RegistryKind::Remote {
            for (name, versions) in index::stored_gems(ctx, &member, None)? {
                gems.entry(name).or_insert(versions);
            }
        }
    }
    Ok(text_response(
        "application/octet-stream",
        index::spec_list(&gems, which)?,
    ))
}

/// The version `full` (`<gem>-<version>`) names in the hosted `member`, if it holds it.
fn stored_gem(
    ctx: &Context<'_>,
    member: &Registry,
    full: &str,
) -> Result<Option<StoredGem>, TextError> {
    for (name, version) in split_full_name(full) {
        let found = index::stored_gems(ctx, member, Some(name))?
            .remove(name)
            .unwrap_or_default()
            .into_iter()
            .find(|gem| gem.spec.full_version() == version);
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// `GET quick/Marshal.4.8/<gem>-<version>.gemspec.rz`: rendered from a hosted member's stored
/// specification, or a remote member's upstream file.
async fn gemspec(ctx: &Context<'_>, full: &str) -> Result<Response, TextError> {
    let registry = ctx.authorize(Role::Read)?;
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, &registry) {
        if member.kind != RegistryKind::Remote {
            if let Some(gem) = stored_gem(ctx, &member, full)? {
                return Ok(text_response(
                    "application/octet-stream",
                    index::gemspec_rz(&gem)?,
                ));
            }
            continue;
        }
        match remote::gem_file(ctx, &member, full, remote::GemFile::Gemspec).await {
            Ok(Some((_, blob))) => return Ok(serve_gem_blob(ctx, &blob, None)),
            Ok(None) => {}
            Err(error) => failure = Some(error),
        }
    }
    Err(failure.unwrap_or_else(|| TextError::not_found(format!("{full} not found"))))
}

/// Answers with a gem's file, counted as a download of the version `download` names (a `.gem`;
/// not the specification a client reads first).
fn serve_gem_blob(
    ctx: &Context<'_>,
    blob: &arca_protocol::BlobRef,
    download: Option<(&Registry, &str, &str)>,
) -> Response {
    let download = download
        .map(|(holder, name, version)| Download::of(&holder.name, name, version, &ctx.caller));
    serve_blob(ctx.state, ctx.headers, blob, download, |message| {
        TextError::new(StatusCode::RANGE_NOT_SATISFIABLE, message).into_response()
    })
}

/// `GET gems/<gem>-<version>.gem`: from the first member that has it (a remote member fetches it,
/// checked against its upstream's checksum), unless the firewall blocks the version.
async fn download(ctx: &Context<'_>, full: &str) -> Result<Response, TextError> {
    let registry = ctx.authorize(Role::Read)?;
    let file = format!("{full}.gem");
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, &registry) {
        for (name, version) in split_full_name(full) {
            let now = ctx.state.now_ms();
            let held =
                firewall::check_member(&ctx.state.meta.view()?, &member, name, version, now)?;
            if held {
                let found = proxy::find_or_fetch_file(
                    ctx.state,
                    std::slice::from_ref(&member),
                    (name, version, &file),
                    |_| None,
                )
                .await?;
                if let Some((_, blob)) = found {
                    return Ok(serve_gem_blob(ctx, &blob, Some((&member, name, version))));
                }
            }
        }
        if member.kind == RegistryKind::Remote {
            match remote::gem_file(ctx, &member, full, remote::GemFile::Gem).await {
                Ok(Some(((name, version), blob))) => {
                    return Ok(serve_gem_blob(ctx, &blob, Some((&member, name, version))));
                }
                Ok(None) => {}
                Err(error) => failure = Some(error),
            }
        }
    }
    Err(failure.unwrap_or_else(|| TextError::not_found(format!("{file} not found"))))
}

/// `POST api/v1/gems`: stores a gem version; 409 when it exists.
async fn push(ctx: &Context<'_>, target: &Registry, body: Body) -> Result<Response, TextError> {
    let blob = receive_blob(ctx.state, ctx.headers, body, None).await?;
    let spec = {
        let cursor = BlobCursor::new(ctx.state.chunks.clone(), blob.clone());
        crate::blocking::spawn(move || gem_file::read(cursor))
            .await
            .map_err(TextError::internal)?
    }
    .map_err(|why| {
        TextError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the gem is not valid: {why}"),
        )
    })?;
    let version = spec.full_version();
    let mut attributes = BTreeMap::from([(
        SPEC.to_string(),
        serde_json::to_string(&spec).map_err(TextError::internal)?,
    )]);
    if !spec.summary.is_empty() {
        attributes.insert("description".into(), spec.summary.clone());
    }
    if let Some(license) = spec.licenses.first() {
        attributes.insert("license".into(), license.clone());
    }
    let committed = ctx
        .state
        .meta
        .propose(Command::PutFile {
            registry: target.name.clone(),
            package: spec.name.clone(),
            version: version.clone(),
            filename: format!("{}.gem", spec.full_name()),
            blob,
            attributes,
            tags: Vec::new(),
            overwrite: Overwrite::RefuseVersion,
            at: ctx.state.now_ms(),
        })
        .await;
    match committed {
        Ok(()) => Ok(text_response(
            "text/plain; charset=utf-8",
            format!("Successfully registered gem: {} ({version})", spec.name),
        )),
        Err(ProposeError::Refused(CommandError::AlreadyExists(_))) => Err(TextError::new(
            StatusCode::CONFLICT,
            format!(
                "Repushing of gem versions is not allowed: {} ({version}) exists.",
                spec.name
            ),
        )),
        Err(error) => Err(error.into()),
    }
}

/// `DELETE api/v1/gems/yank` with the form `gem_name`, `version`, `platform`.
async fn yank(ctx: &Context<'_>, target: &Registry, body: Body) -> Result<Response, TextError> {
    let form = axum::body::to_bytes(body, YANK_FORM_LIMIT)
        .await
        .map_err(|e| TextError::bad_request(format!("the yank form: {e}")))?;
    let field = |key: &str| {
        form_urlencoded::parse(&form)
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    };
    let name = field("gem_name").ok_or_else(|| TextError::bad_request("gem_name is missing"))?;
    let number = field("version").ok_or_else(|| TextError::bad_request("version is missing"))?;
    let platform = field("platform").unwrap_or_else(|| "ruby".into());
    let version = gem_file::full_version(&number, &platform);
    let exists = ctx
        .state
        .meta
        .read(|view| view.version(&target.name, &name, &version))?
        .is_some_and(|stored| !stored.attributes.contains_key(YANKED));
    if !exists {
        return Err(TextError::not_found(format!(
            "The version {version} of {name} does not exist."
        )));
    }
    ctx.state
        .meta
        .propose(Command::SetAttributes {
            registry: target.name.clone(),
            package: name.clone(),
            version: version.clone(),
            set: BTreeMap::from([(YANKED.to_string(), "true".to_string())]),
            remove: Vec::new(),
            at: ctx.state.now_ms(),
        })
        .await?;
    Ok(text_response(
        "text/plain; charset=utf-8",
        format!("Successfully deleted gem: {name} ({version})"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed_from_paths() {
        assert_eq!(parse_endpoint(""), Some(Endpoint::Root));
        assert_eq!(parse_endpoint("/api/v1/gems"), Some(Endpoint::Push));
        assert_eq!(
            parse_endpoint("info/foo"),
            Some(Endpoint::Info("foo".into()))
        );
        assert_eq!(parse_endpoint("info/../x"), None);
        assert_eq!(
            parse_endpoint("gems/net-http2-0.1.0-x86_64-linux.gem"),
            Some(Endpoint::Gem("net-http2-0.1.0-x86_64-linux".into()))
        );
        assert_eq!(parse_endpoint("gems/../x-1.0.gem"), None);
        assert_eq!(
            parse_endpoint("quick/Marshal.4.8/foo-1.0.gemspec.rz"),
            Some(Endpoint::Gemspec("foo-1.0".into()))
        );
        assert_eq!(
            split_full_name("rails-5-compat-1.0.0"),
            [("rails", "5-compat-1.0.0"), ("rails-5-compat", "1.0.0")]
        );
    }
}
