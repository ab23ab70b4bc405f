//! Cargo registries under `/cargo/<registry>/`: the sparse index cargo reads
//! (`sparse+<server>/cargo/<registry>/index/`, see [`index`]) and the web API it publishes, yanks,
//! lists owners and searches with (`<server>/cargo/<registry>/api/v1/...`).
//!
//! Storage mapping: a crate is a package named by its canonical spelling (lower case, `_` as `-`:
//! `Serde_Json` and `serde-json` are one crate), a version is a version whose one file is its
//! `.crate`; the version's index entry, whether it is yanked, its publisher, description and
//! license are version attributes.
//!
//! Authentication: cargo sends the token of `cargo login` (or `CARGO_REGISTRIES_<NAME>_TOKEN`), an
//! Arca token, as the whole `Authorization` header. A registry that allows anonymous reads says
//! `"auth-required": false` in its `config.json`, and cargo sends the token only to publish. Errors
//! are cargo's `{"errors": [{"detail": ...}]}`.
//!
//! Remote and virtual Cargo registries serve the same index and downloads: a remote registry's come
//! from its upstream (cached, see [`remote`]), a virtual registry's from its members; publishes to
//! a virtual registry land in its publish target.

mod error;
mod index;
mod names;
mod publish;
mod remote;

use arca_protocol::{PackageType, Registry, RegistryKind, Role};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

pub use self::error::CargoError;
use self::index::{INDEX_ENTRY, IndexEntry, YANKED, json_response};
use self::names::{CrateName, crate_of_index_path};
use crate::AppState;
use crate::auth::{Caller, authenticate};
use crate::frontend::{serve_blob, unless_refused};
use crate::meta::{PackageContents, StateRead};
use crate::policy::firewall;
use crate::proxy;
use crate::usage::Download;

/// Search results answered when the query names no `per_page`, and the most answered.
const SEARCH_PAGE: (usize, usize) = (10, 100);

/// Cargo registries at `/cargo/<registry>/`.
pub struct Cargo;

impl crate::frontend::FrontEnd for Cargo {
    fn segment(&self) -> &'static str {
        "cargo"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new().route(
            "/cargo/{registry}/{*path}",
            any(crate::frontend::answering(route)),
        )
    }

    fn is_download(&self, path: &str) -> bool {
        path.ends_with("/download") && path.contains("/api/v1/crates/")
    }

    fn usual_status(&self, _method: &Method) -> u16 {
        200
    }
}

/// One request: the node, the caller and the registry it addresses.
pub struct Context<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    caller: Caller,
    registry: String,
}

impl<'a> Context<'a> {
    /// Checks that the caller may do what `needed` allows on the registry, and that it is a Cargo
    /// registry.
    fn authorize(&self, needed: Role) -> Result<Registry, CargoError> {
        Ok(self
            .state
            .typed_registry(&self.caller, &self.registry, needed, PackageType::Cargo)?)
    }

    /// The context writes go to (see [`AppState::write_target`]).
    fn for_writes(&self) -> Result<Context<'a>, CargoError> {
        let target = self.state.write_target(&self.authorize(Role::Write)?)?;
        Ok(Context {
            state: self.state,
            headers: self.headers,
            caller: self.caller.clone(),
            registry: target.name,
        })
    }

    /// The registry's URL (`https://host/cargo/<registry>`): the API's, and the downloads' base.
    fn base_url(&self) -> String {
        let origin =
            crate::http_server::public_origin(self.state.config.public_url.as_ref(), self.headers);
        format!("{origin}/cargo/{}", self.registry)
    }
}

/// What a path under `/cargo/<registry>/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Config,
    IndexFile(CrateName),
    Publish,
    Search,
    Download(CrateName, String),
    Yank(CrateName, String),
    Unyank(CrateName, String),
    Owners(CrateName),
}

fn parse_endpoint(path: &str) -> Option<Endpoint> {
    if path == "index/config.json" {
        return Some(Endpoint::Config);
    }
    if let Some(index_path) = path.strip_prefix("index/") {
        return crate_of_index_path(index_path).map(Endpoint::IndexFile);
    }
    let rest = path.strip_prefix("api/v1/crates")?;
    let segments: Vec<&str> = rest.split('/').skip(1).collect();
    let name = |s: &str| CrateName::parse(s).ok();
    Some(match segments.as_slice() {
        [] => Endpoint::Search,
        ["new"] => Endpoint::Publish,
        [crate_name, "owners"] => Endpoint::Owners(name(crate_name)?),
        [crate_name, version, "download"] => {
            Endpoint::Download(name(crate_name)?, version.to_string())
        }
        [crate_name, version, "yank"] => Endpoint::Yank(name(crate_name)?, version.to_string()),
        [crate_name, version, "unyank"] => Endpoint::Unyank(name(crate_name)?, version.to_string()),
        _ => return None,
    })
}

async fn route(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, CargoError> {
    let (state, uri, headers) = (&state, &uri, &headers);
    let not_found = || CargoError::not_found(format!("no such endpoint {}", uri.path()));
    let (registry, path) =
        crate::frontend::registry_and_rest(uri.path(), "cargo").ok_or_else(not_found)?;
    let endpoint = parse_endpoint(path).ok_or_else(not_found)?;
    let ctx = Context {
        state,
        headers,
        caller: authenticate(state, headers)?,
        registry: registry.to_string(),
    };
    let ctx = &ctx;
    match (endpoint, method) {
        (Endpoint::Config, Method::GET | Method::HEAD) => index::config(ctx),
        (Endpoint::IndexFile(name), Method::GET | Method::HEAD) => index::file(ctx, &name).await,
        (Endpoint::Publish, Method::PUT) => {
            let (target, body) = unless_refused(ctx.for_writes(), headers, body).await?;
            publish::publish(&target, body).await
        }
        (Endpoint::Download(name, version), Method::GET | Method::HEAD) => {
            download(ctx, &name, &version).await
        }
        (Endpoint::Yank(name, version), Method::DELETE) => {
            publish::yank(&ctx.for_writes()?, &name, &version, true).await
        }
        (Endpoint::Unyank(name, version), Method::PUT) => {
            publish::yank(&ctx.for_writes()?, &name, &version, false).await
        }
        (Endpoint::Owners(name), Method::GET) => owners(ctx, &name),
        (Endpoint::Owners(_), Method::PUT | Method::DELETE) => Err(CargoError::bad_request(
            "owners are not kept per crate here: who may publish is given by Arca's role grants \
             (arca user grant / arca token create)",
        )),
        (Endpoint::Search, Method::GET) => search(ctx, uri.query().unwrap_or("")).await,
        (_, method) => Err(CargoError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not supported on {}", uri.path()),
        )),
    }
}

/// `GET /api/v1/crates/<name>/<version>/download`: the `.crate` from the first member that has it
/// (a remote member fetches it), unless the firewall blocks it.
async fn download(
    ctx: &Context<'_>,
    name: &CrateName,
    version: &str,
) -> Result<Response, CargoError> {
    let registry = ctx.authorize(Role::Read)?;
    let package = name.package();
    let file = name.file(version);
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, &registry) {
        let now = ctx.state.now_ms();
        let held =
            firewall::check_member(&ctx.state.meta.view()?, &member, &package, version, now)?;
        let found = if held {
            proxy::find_or_fetch_file(
                ctx.state,
                std::slice::from_ref(&member),
                (&package, version, &file),
                |_| None,
            )
            .await
            .map(|found| found.map(|(_, blob)| blob))
            .map_err(CargoError::from)
        } else if member.kind == RegistryKind::Remote {
            remote::crate_file(ctx, &member, name, version).await
        } else {
            continue;
        };
        match found {
            Ok(Some(blob)) => {
                let download = Download::of(&member.name, &package, version, &ctx.caller);
                return Ok(serve_blob(
                    ctx.state,
                    ctx.headers,
                    &blob,
                    Some(download),
                    |message| {
                        CargoError::new(StatusCode::RANGE_NOT_SATISFIABLE, message).into_response()
                    },
                ));
            }
            Ok(None) => {}
            Err(error) => failure = Some(error),
        }
    }
    Err(failure.unwrap_or_else(|| {
        CargoError::not_found(format!(
            "crate `{}` has no version {version}",
            name.as_str()
        ))
    }))
}

/// `GET /api/v1/crates/<name>/owners`: who published the crate's versions here.
fn owners(ctx: &Context<'_>, name: &CrateName) -> Result<Response, CargoError> {
    ctx.authorize(Role::Read)?;
    let package = ctx
        .state
        .meta
        .read(|view| view.package_contents(&ctx.registry, &name.package()))?
        .ok_or_else(|| CargoError::not_found(format!("crate `{}` not found", name.as_str())))?;
    let publishers: std::collections::BTreeSet<&String> = package
        .versions
        .values()
        .filter_map(|version| version.attributes.get(publish::PUBLISHER))
        .collect();
    let users: Vec<serde_json::Value> = publishers
        .into_iter()
        .enumerate()
        .map(|(id, login)| serde_json::json!({ "id": id + 1, "login": login, "name": login }))
        .collect();
    Ok(json_response(
        serde_json::json!({ "users": users }).to_string(),
    ))
}

/// `GET /api/v1/crates?q=&per_page=`: crates matching `q` (names, descriptions, keywords; typos
/// forgiven, the last word a prefix; see [`crate::search`]), best first, each with its highest
/// version that is not yanked, answered from the node's search index. A virtual registry searches
/// what its members hold (a remote registry: the crates it has cached), a crate of an earlier member
/// hiding a later one's.
async fn search(ctx: &Context<'_>, query: &str) -> Result<Response, CargoError> {
    let registry = ctx.authorize(Role::Read)?;
    let param = |key: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    let per_page = match param("per_page") {
        Some(value) => value
            .parse::<usize>()
            .map_err(|_| CargoError::bad_request("per_page must be a number"))?,
        None => SEARCH_PAGE.0,
    }
    .clamp(1, SEARCH_PAGE.1);
    let members: Vec<String> = proxy::resolution_order(ctx.state, &registry)
        .into_iter()
        .map(|member| member.name)
        .collect();
    let words = param("q")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    // The most a page holds is asked for, so that `meta.total` counts every crate found up to it.
    let (hits, _) = ctx
        .state
        .search
        .clone()
        .find_in_members(ctx.state.meta.clone(), members, words, (0, SEARCH_PAGE.1))
        .await
        .map_err(CargoError::internal)?;
    let view = ctx.state.meta.view()?;
    let mut crates = Vec::new();
    for hit in hits {
        let Some(contents) = view.package_contents(&hit.registry, &hit.package)? else {
            continue;
        };
        crates.extend(search_hit(&contents));
    }
    let total = crates.len();
    crates.truncate(per_page);
    Ok(json_response(
        serde_json::json!({ "crates": crates, "meta": { "total": total } }).to_string(),
    ))
}

/// A crate as search lists it: its name, its highest version that is not yanked, its description.
fn search_hit(contents: &PackageContents) -> Option<serde_json::Value> {
    let newest = contents
        .versions
        .values()
        .filter(|version| !version.attributes.contains_key(YANKED))
        .filter_map(|version| {
            let entry: IndexEntry =
                serde_json::from_str(version.attributes.get(INDEX_ENTRY)?).ok()?;
            Some((semver::Version::parse(&version.name).ok()?, entry, version))
        })
        .max_by(|a, b| a.0.cmp(&b.0))?;
    let (max_version, entry, version) = newest;
    let description = version
        .attributes
        .get("description")
        .cloned()
        .unwrap_or_default();
    Some(serde_json::json!({
        "name": entry.name,
        "max_version": max_version.to_string(),
        "description": description,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed_from_paths() {
        let name = |s: &str| CrateName::parse(s).expect("valid");
        assert_eq!(parse_endpoint("index/config.json"), Some(Endpoint::Config));
        assert_eq!(
            parse_endpoint("index/se/rd/serde"),
            Some(Endpoint::IndexFile(name("serde")))
        );
        assert_eq!(parse_endpoint("index/xx/rd/serde"), None);
        assert_eq!(parse_endpoint("api/v1/crates/new"), Some(Endpoint::Publish));
        assert_eq!(parse_endpoint("api/v1/crates"), Some(Endpoint::Search));
        assert_eq!(
            parse_endpoint("api/v1/crates/serde/1.0.0/download"),
            Some(Endpoint::Download(name("serde"), "1.0.0".into()))
        );
        assert_eq!(
            parse_endpoint("api/v1/crates/serde/1.0.0/unyank"),
            Some(Endpoint::Unyank(name("serde"), "1.0.0".into()))
        );
        assert_eq!(
            parse_endpoint("api/v1/crates/serde/owners"),
            Some(Endpoint::Owners(name("serde")))
        );
        assert_eq!(parse_endpoint("api/v1/crates/../x/download"), None);
    }
}
