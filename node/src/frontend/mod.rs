//! What every HTTP surface of the node builds on, the management API and each package-manager
//! front-end alike: errors in Arca's format ([`ApiError`]) and extractors that answer with them, the
//! calls that move bytes ([`receive_blob`], [`serve_blob`]), checks of uploaded archives, and the
//! cache of upstream documents remote registries keep. It imports no front-end; front-ends import it
//! and the core (authentication in [`crate::auth`], metadata, chunk store, policy), never each other.

pub mod archive;
mod blobs;
mod cursor;
pub mod documents;
mod error;
mod extract;
pub mod package_index;
pub mod rendered;
mod text_error;

pub use blobs::{
    RangeNotSatisfiable, UploadError, append_body, content_length, declared_length, discard_body,
    parse_range, read_small_blob, receive_blob, serve_blob, serve_file, unless_refused,
};
pub use cursor::BlobCursor;
pub use error::{ApiError, causes, with_causes};
pub use extract::{JsonBody, PathParams, QueryParams};
pub use text_error::TextError;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, Method};

use crate::AppState;
use arca_protocol::{PackageType, Registry, RegistryKind, Role};
use axum::http::StatusCode;

use crate::auth::{AuthError, Caller};
use crate::meta::StateRead;

/// A package-manager front-end as the rest of the node sees it: the routes it serves under its own
/// first path segment, and what the audit trail must know of its requests.
pub trait FrontEnd: Send + Sync + 'static {
    /// The first segment of every path it serves (`npm` for `/npm/...`, `v2` for the OCI API).
    fn segment(&self) -> &'static str;

    /// Its routes.
    fn routes(&self) -> Router<AppState>;

    /// The caller of a request, identified the way its handlers do.
    fn identify(&self, state: &AppState, headers: &HeaderMap) -> Result<Caller, AuthError> {
        crate::auth::authenticate(state, headers)
    }

    /// The registry `path` addresses: by default the segment after the front-end's own.
    fn registry_of(&self, path: &str) -> Option<String> {
        path.trim_start_matches('/')
            .split('/')
            .nth(1)
            .filter(|name| !name.is_empty())
            .map(str::to_string)
    }

    /// Whether a GET of `path` downloads a file, blob, tarball or manifest (rather than an index, a
    /// listing or metadata): what registries that audit downloads record.
    fn is_download(&self, path: &str) -> bool;

    /// The status a change made with `method` answers when it succeeds as usual: by default 201 for
    /// PUT and POST, 204 for DELETE.
    fn usual_status(&self, method: &Method) -> u16 {
        match *method {
            Method::PUT | Method::POST => 201,
            Method::DELETE => 204,
            _ => 200,
        }
    }
}

/// The axum handler of a front-end whose every request goes to `route`: errors are answered in the
/// front-end's own shape (its error type's `IntoResponse`).
pub fn answering<R, Fut, E>(
    route: R,
) -> impl Fn(
    axum::extract::State<AppState>,
    Method,
    axum::http::Uri,
    HeaderMap,
    axum::body::Body,
) -> futures::future::BoxFuture<'static, axum::response::Response>
+ Clone
+ Send
+ Sync
+ 'static
where
    R: Fn(AppState, Method, axum::http::Uri, HeaderMap, axum::body::Body) -> Fut
        + Clone
        + Send
        + Sync
        + 'static,
    Fut: Future<Output = Result<axum::response::Response, E>> + Send + 'static,
    E: axum::response::IntoResponse,
{
    move |axum::extract::State(state), method, uri, headers, body| {
        let route = route.clone();
        Box::pin(async move {
            route(state, method, uri, headers, body)
                .await
                .unwrap_or_else(axum::response::IntoResponse::into_response)
        })
    }
}

/// The public key `registry` signs its metadata with, ASCII-armoured (Debian's `key.asc`, RPM's
/// `repomd.xml.key`); 404 for a registry that signs nothing.
pub fn public_key_response(
    state: &AppState,
    registry: &Registry,
) -> Result<axum::response::Response, ApiError> {
    let key = state
        .meta
        .view()?
        .signing_key(&registry.name)?
        .ok_or_else(|| {
            ApiError::not_found(format!("registry {} has no signing key", registry.name))
        })?;
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/pgp-keys")],
        key.public_key,
    )))
}

/// Where a member of a read's resolution order holds a file: its package and version, and for a
/// remote member the SHA-256 its upstream's index lists (the fetch is checked against it).
pub struct MemberFile {
    pub package: String,
    pub version: String,
    pub upstream_sha256: Option<arca_protocol::Sha256>,
}

/// `GET` of the file at `path` (the upstream's path too) through `registry`: from the first member
/// `locate` finds it in (`Ok(None)`: not there), unless the firewall blocks its version; a remote
/// member fetches it once, checked against what its upstream lists. A member that fails is passed
/// over; its error is answered when no other member has the file. The file counts as a download by
/// `caller` of the version.
pub async fn serve_from_members<'a>(
    state: &AppState,
    (headers, caller): (&HeaderMap, &crate::auth::Caller),
    registry: &Registry,
    path: &str,
    mut locate: impl FnMut(
        Registry,
    ) -> futures::future::BoxFuture<'a, Result<Option<MemberFile>, ApiError>>,
) -> Result<axum::response::Response, ApiError> {
    let file = path.rsplit('/').next().unwrap_or_default();
    let mut failure = None;
    for member in crate::proxy::resolution_order(state, registry) {
        let found = match locate(member.clone()).await {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(error) => {
                failure = Some(error);
                continue;
            }
        };
        crate::policy::firewall::check_member(
            &state.meta.view()?,
            &member,
            &found.package,
            &found.version,
            state.now_ms(),
        )?;
        let fetched = crate::proxy::find_or_fetch_file(
            state,
            std::slice::from_ref(&member),
            (&found.package, &found.version, file),
            |candidate| {
                (candidate.kind == RegistryKind::Remote).then(|| {
                    (
                        path.to_string(),
                        crate::proxy::Expected {
                            sha256: found.upstream_sha256,
                            ..Default::default()
                        },
                    )
                })
            },
        )
        .await;
        match fetched {
            Ok(Some((_, blob))) => {
                let download = crate::usage::Download::of(
                    &member.name,
                    &found.package,
                    &found.version,
                    caller,
                );
                return Ok(serve_file(state, headers, &blob, Some(download)));
            }
            Ok(None) | Err(crate::proxy::ProxyError::NotFound(_)) => {}
            Err(error) => failure = Some(ApiError::from(error)),
        }
    }
    Err(failure.unwrap_or_else(|| ApiError::not_found(format!("{path} not found"))))
}

/// Splits a front-end's path `/<segment>/<registry>/<rest>` into the registry and the rest.
pub fn registry_and_rest<'p>(path: &'p str, segment: &str) -> Option<(&'p str, &'p str)> {
    path.strip_prefix('/')?
        .strip_prefix(segment)?
        .strip_prefix('/')?
        .split_once('/')
}

/// `text` as one path segment or query value: everything but letters, digits and `*-._`
/// percent-encoded.
pub fn percent_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// An `io::Write` feeding a digest: hashes what `io::copy` reads (a blob through a
/// [`BlobCursor`]).
pub struct DigestWriter<'a, D>(pub &'a mut D);

impl<D: sha2::Digest> std::io::Write for DigestWriter<'_, D> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decodes the `%XX` escapes of a raw request path (or one of its segments); `None` for a `%`
/// without two hex digits, or bytes that are not UTF-8.
pub fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The front-ends of a node, found by the first segment of a request's path.
#[derive(Clone)]
pub struct FrontEnds(Arc<Vec<Box<dyn FrontEnd>>>);

impl FrontEnds {
    /// The set of `front_ends`; their segments differ.
    pub fn new(front_ends: Vec<Box<dyn FrontEnd>>) -> FrontEnds {
        FrontEnds(Arc::new(front_ends))
    }

    /// The routes of all of them.
    pub fn routes(&self) -> Router<AppState> {
        self.0.iter().fold(Router::new(), |router, front_end| {
            router.merge(front_end.routes())
        })
    }

    /// The front-end serving `path`, if any.
    pub fn serving(&self, path: &str) -> Option<&dyn FrontEnd> {
        let segment = path.trim_start_matches('/').split('/').next()?;
        self.0
            .iter()
            .find(|front_end| front_end.segment() == segment)
            .map(|front_end| front_end.as_ref())
    }
}

impl AppState {
    /// The registry called `name`, after checking that `caller` may do what `needed` allows on it. An
    /// anonymous caller learns nothing about registries it may not read: it gets 401, never 404.
    pub fn registry_for(
        &self,
        caller: &Caller,
        name: &str,
        needed: Role,
    ) -> Result<Registry, ApiError> {
        let registry = self.meta.read(|view| view.registry(name))?;
        caller.require_on(name, registry.as_ref(), needed)?;
        registry.ok_or_else(|| ApiError::not_found(format!("registry {name} not found")))
    }

    /// A document rendered from the metadata, kept while the metadata is as it was when it was
    /// rendered (see [`rendered`]): `key` names it, `render` makes it.
    pub async fn render_once<E, Fut>(
        &self,
        key: &str,
        render: impl FnOnce() -> Fut,
    ) -> Result<bytes::Bytes, E>
    where
        Fut: Future<Output = Result<bytes::Bytes, E>>,
    {
        let applied = self
            .meta
            .raft_metrics()
            .last_applied
            .map_or(0, |log| log.index);
        self.rendered.get_or_render(key, applied, render).await
    }

    /// [`Self::registry_for`], refusing a registry of another type than `package_type` (400).
    pub fn typed_registry(
        &self,
        caller: &Caller,
        name: &str,
        needed: Role,
        package_type: PackageType,
    ) -> Result<Registry, ApiError> {
        let registry = self.registry_for(caller, name, needed)?;
        if registry.package_type != package_type {
            return Err(ApiError::invalid(format!(
                "registry {} holds {} packages, not {package_type}",
                registry.name, registry.package_type
            )));
        }
        Ok(registry)
    }

    /// The registry writes to `registry` land in: itself when local, a virtual registry's publish
    /// target. A remote registry, or a virtual one without a target, takes none (405).
    pub fn write_target(&self, registry: &Registry) -> Result<Registry, ApiError> {
        crate::proxy::publish_target(self, registry).ok_or_else(|| {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "NOT_ALLOWED",
                format!(
                    "registry {} is {}: it takes no publishes",
                    registry.name,
                    match registry.kind {
                        RegistryKind::Remote => "a remote (caching) registry",
                        _ => "a virtual registry without a publish target",
                    }
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_end_paths_split_into_registry_and_rest() {
        assert_eq!(
            registry_and_rest("/npm/js/left-pad/-/x.tgz", "npm"),
            Some(("js", "left-pad/-/x.tgz"))
        );
        assert_eq!(registry_and_rest("/npm/js", "npm"), None);
        assert_eq!(registry_and_rest("/npmx/js/a", "npm"), None);
    }
}
