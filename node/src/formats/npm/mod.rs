//! npm registries under `/npm/<registry>/`: the registry API the npm CLI (and pnpm, yarn) speak.
//!
//! Storage mapping: an npm package is a package (`left-pad`, `@scope/name`), a published version is
//! a version whose one file is its tarball (`<name>-<version>.tgz`); the version's package.json
//! manifest and deprecation message are version attributes, dist-tags are the package's tags. See
//! [`packument`] for what is rendered from that and [`publish`] for the writes.
//!
//! Authentication: npm sends `Authorization: Bearer <_authToken>`, an Arca token. `npm login`
//! (`--auth-type=legacy`, or the default web login, which falls back to it here) exchanges a user
//! name (any) and a password (an Arca token) for that same token. Errors are npm's
//! `{"error": "..."}`.
//!
//! `npm audit` is answered from the dependency firewall's advisory database (see [`audit`]).
//!
//! Remote and virtual npm registries serve the same API: reads of a remote registry come from its
//! upstream (cached), reads of a virtual registry from its members, merged; publishes to a virtual
//! registry land in its publish target, and remote registries take none. See [`remote`].

mod audit;
mod error;
mod names;
pub mod packument;
mod publish;
mod read;
mod remote;
mod scan;
mod session;

use crate::meta::{PackageContents, StateRead};
use arca_protocol::{PackageType, Registry, Role};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::any;

pub use self::error::NpmError;
use self::names::{Endpoint, parse_endpoint};
use crate::AppState;
use crate::auth::{Caller, authenticate};
use crate::frontend::discard_body;

/// The npm registry API at `/npm/<registry>/`.
pub struct Npm;

impl crate::frontend::FrontEnd for Npm {
    fn segment(&self) -> &'static str {
        "npm"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new().route(
            "/npm/{registry}/{*path}",
            any(crate::frontend::answering(route)),
        )
    }

    fn is_download(&self, path: &str) -> bool {
        // `/npm/<registry>/<name>/-/<file>`; registry-level endpoints are `/npm/<registry>/-/...`.
        let rest = crate::frontend::registry_and_rest(path, "npm").map_or("", |(_, rest)| rest);
        !rest.starts_with("-/") && rest.contains("/-/")
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
    /// Checks that the caller may do what `needed` allows on the registry, and that it is an npm
    /// registry.
    fn authorize(&self, needed: Role) -> Result<Registry, NpmError> {
        Ok(self
            .state
            .typed_registry(&self.caller, &self.registry, needed, PackageType::Npm)?)
    }

    /// The context writes go to: checks that the caller may write to the registry, and addresses its
    /// publish target (see [`AppState::write_target`]).
    fn for_writes(&self) -> Result<Context<'a>, NpmError> {
        let target = self.state.write_target(&self.authorize(Role::Write)?)?;
        Ok(Context {
            state: self.state,
            headers: self.headers,
            caller: self.caller.clone(),
            registry: target.name,
        })
    }

    /// A package of the registry with all its versions, or 404.
    fn package(&self, name: &str) -> Result<PackageContents, NpmError> {
        self.state
            .meta
            .read(|view| view.package_contents(&self.registry, name))?
            .ok_or_else(|| NpmError::not_found(format!("package {name} not found")))
    }

    /// 404 unless the registry has a package `name`.
    fn require_package(&self, name: &str) -> Result<(), NpmError> {
        match self
            .state
            .meta
            .read(|view| view.package(&self.registry, name))?
        {
            Some(_) => Ok(()),
            None => Err(NpmError::not_found(format!("package {name} not found"))),
        }
    }

    /// True when `name@version` is published.
    fn version_exists(&self, name: &str, version: &str) -> Result<bool, NpmError> {
        Ok(self
            .state
            .meta
            .read(|view| view.has_version(&self.registry, name, version))?)
    }

    /// The published version of `name` that is the same release as `version`: `version` itself, or
    /// one that differs from it only in build metadata (`1.0.0` and `1.0.0+build`), which npm
    /// counts as one version.
    fn same_release(&self, name: &str, version: &str) -> Result<Option<String>, NpmError> {
        let release = version.split('+').next().unwrap_or(version);
        Ok(self.state.meta.read(|view| {
            if view.has_version(&self.registry, name, release)? {
                return Ok(Some(release.to_string()));
            }
            // Versions with build metadata sort right after their release (`+` sorts before the
            // `-` of pre-releases and the digits of longer versions).
            let next = view.versions_page(&self.registry, name, Some(release), 1)?;
            Ok(next
                .into_iter()
                .map(|found| found.name)
                .find(|found| found.split('+').next() == Some(release)))
        })?)
    }

    /// The registry's URL (`https://host/npm/<registry>`), for tarball URLs.
    fn base_url(&self) -> String {
        let origin =
            crate::http_server::public_origin(self.state.config.public_url.as_ref(), self.headers);
        format!("{origin}/npm/{}", self.registry)
    }
}

async fn route(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, NpmError> {
    let (state, uri, headers) = (&state, &uri, &headers);
    let not_found = || NpmError::not_found(format!("no such endpoint {}", uri.path()));
    let (registry, path) =
        crate::frontend::registry_and_rest(uri.path(), "npm").ok_or_else(not_found)?;
    let endpoint = parse_endpoint(path).ok_or_else(not_found)?;
    // A login carries its credentials in the body; an old token in the header must not stop it.
    let caller = match endpoint {
        Endpoint::User(_) => Caller::Anonymous,
        _ => authenticate(state, headers)?,
    };
    let ctx = Context {
        state,
        headers,
        caller,
        registry: registry.to_string(),
    };
    let ctx = &ctx;
    match (endpoint, method) {
        (Endpoint::Ping, Method::GET) => session::ping(ctx),
        (Endpoint::Whoami, Method::GET) => session::whoami(ctx),
        (Endpoint::User(user), Method::PUT) => session::login(ctx, &user, body).await,
        (Endpoint::WebLogin, _) => Err(NpmError::not_found(
            "web login is not offered: log in with a user name and an Arca token as the password",
        )),
        (Endpoint::Search, Method::GET) => read::search(ctx, uri.query().unwrap_or("")).await,
        (Endpoint::AuditBulk, Method::POST) => audit::bulk(ctx, headers, body).await,
        (Endpoint::Packument(name), Method::GET | Method::HEAD) => {
            read::packument(ctx, &name).await
        }
        (Endpoint::Packument(name), Method::PUT) => match ctx.for_writes() {
            Ok(target) => publish::put(&target, &name, body).await,
            Err(error) => {
                discard_body(headers, body).await;
                Err(error)
            }
        },
        (Endpoint::Packument(name), Method::DELETE) => {
            publish::unpublish_package(&ctx.for_writes()?, &name).await
        }
        (Endpoint::Version(name, version), Method::GET | Method::HEAD) => {
            read::version(ctx, &name, &version).await
        }
        (Endpoint::Tarball(name, file), Method::GET | Method::HEAD) => {
            read::tarball(ctx, &name, &file).await
        }
        (Endpoint::Tarball(name, file), Method::DELETE) => {
            publish::unpublish_tarball(&ctx.for_writes()?, &name, &file).await
        }
        (Endpoint::DistTags(name), Method::GET) => read::list_tags(ctx, &name).await,
        (Endpoint::DistTag(name, tag), Method::PUT) => match ctx.for_writes() {
            Ok(target) => publish::set_tag(&target, &name, &tag, body).await,
            Err(error) => {
                discard_body(headers, body).await;
                Err(error)
            }
        },
        (Endpoint::DistTag(name, tag), Method::DELETE) => {
            publish::delete_tag(&ctx.for_writes()?, &name, &tag).await
        }
        (_, method) => Err(NpmError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not supported on {}", uri.path()),
        )),
    }
}
