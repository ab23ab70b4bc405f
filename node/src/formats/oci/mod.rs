//! OCI / Docker registries: the OCI Distribution Specification v1.1 (pull, push, content discovery,
//! content management) and the Docker Registry HTTP API V2 behaviour its clients rely on.
//!
//! Repository names are `<registry>/<repository path>`: `host/team-images/app/web:1.2` is repository
//! `app/web` (the package) in registry `team-images`. Layers are blobs in the chunk store, linked into
//! repositories; manifests are versions named by their digest; tags point at versions.

mod auth;
mod blobs;
mod error;
mod manifests;
mod names;
mod remote;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

pub use self::auth::{OciCaller, TokenSigner, authenticate};
pub use self::blobs::Uploads;
pub use self::error::OciError;
use self::names::RepositoryName;
use crate::AppState;
use crate::auth::{AuthError, Caller};

/// Node-local state of the OCI front-end.
pub struct OciState {
    /// Signs registry tokens.
    pub signer: TokenSigner,
    /// Upload sessions in progress.
    pub uploads: Uploads,
}

impl OciState {
    /// The front-end's state: registry tokens signed with the cluster's `token_key`, and the
    /// upload sessions `uploads` holds.
    pub fn new(token_key: [u8; 32], uploads: Uploads) -> OciState {
        OciState {
            signer: TokenSigner::new(token_key),
            uploads,
        }
    }
}

/// The OCI distribution API at `/v2/`, with the Docker token flow.
pub struct Oci;

impl crate::frontend::FrontEnd for Oci {
    fn segment(&self) -> &'static str {
        "v2"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new()
            .route("/v2", get(base))
            .route("/v2/", get(base))
            .route("/v2/token", get(token))
            .route("/v2/_catalog", get(catalog))
            .route("/v2/{*path}", any(dispatch))
    }

    fn identify(&self, state: &AppState, headers: &HeaderMap) -> Result<Caller, AuthError> {
        authenticate(state, headers).map(|oci| oci.caller)
    }

    /// The first segment of the repository name.
    fn registry_of(&self, path: &str) -> Option<String> {
        let name = path.strip_prefix("/v2/")?;
        let first = name.split('/').next()?;
        (!first.is_empty() && !matches!(first, "_catalog" | "token")).then(|| first.to_string())
    }

    fn usual_status(&self, method: &Method) -> u16 {
        match *method {
            Method::PUT => 201,
            // Uploads started or continued, and deletions, are accepted (202).
            Method::POST | Method::PATCH | Method::DELETE => 202,
            _ => 200,
        }
    }

    fn is_download(&self, path: &str) -> bool {
        (path.contains("/blobs/") && !path.contains("/blobs/uploads"))
            || path.contains("/manifests/")
    }
}

/// The first value of query parameter `key`.
pub fn query_param(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Every answer of the API carries the protocol version header.
fn versioned(result: Result<Response, OciError>) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// `GET /v2/`: 200 for any authenticated caller, 401 with the challenge otherwise.
async fn base(State(state): State<AppState>, headers: HeaderMap) -> Response {
    versioned((|| {
        let caller =
            auth::authenticate(&state, &headers).map_err(|e| unauthorized(&state, &headers, e))?;
        caller.require_login(&state, &headers)?;
        Ok(axum::Json(serde_json::json!({})).into_response())
    })())
}

fn unauthorized(state: &AppState, headers: &HeaderMap, error: crate::auth::AuthError) -> OciError {
    if let crate::auth::AuthError::Throttled(_) = error {
        return OciError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            error.to_string(),
        );
    }
    OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", error.to_string())
        .with_challenge(auth::challenge(state, headers, None))
}

/// `GET /v2/token`: the Docker token endpoint.
async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    versioned(
        auth::authenticate(&state, &headers)
            .map_err(|e| unauthorized(&state, &headers, e))
            .map(|caller| {
                axum::Json(auth::issue_token(
                    &state,
                    &caller.caller,
                    query.as_deref().unwrap_or(""),
                ))
                .into_response()
            }),
    )
}

async fn catalog(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let caller =
            auth::authenticate(&state, &headers).map_err(|e| unauthorized(&state, &headers, e))?;
        manifests::catalog(&state, &caller, &headers, query.as_deref().unwrap_or("")).await
    };
    versioned(result.await)
}

/// What a `/v2/<name>/...` path addresses.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint<'a> {
    Upload(&'a str),
    Blob(&'a str),
    Manifest(&'a str),
    Referrers(&'a str),
    Tags,
}

/// Builds an endpoint from what follows its marker.
type EndpointOf = for<'p> fn(&'p str) -> Endpoint<'p>;

/// Splits `<name>/<endpoint>` at the last endpoint marker, so repository paths may contain any
/// segment names.
fn parse_path(path: &str) -> Option<(&str, Endpoint<'_>)> {
    if let Some(name) = path.strip_suffix("/tags/list") {
        return Some((name, Endpoint::Tags));
    }
    if let Some(name) = path
        .strip_suffix("/blobs/uploads")
        .or_else(|| path.strip_suffix("/blobs/uploads/"))
    {
        return Some((name, Endpoint::Upload("")));
    }
    let markers: [(&str, EndpointOf); 4] = [
        ("/blobs/uploads/", |id| Endpoint::Upload(id)),
        ("/blobs/", |digest| Endpoint::Blob(digest)),
        ("/manifests/", |reference| Endpoint::Manifest(reference)),
        ("/referrers/", |digest| Endpoint::Referrers(digest)),
    ];
    markers.iter().find_map(|(marker, endpoint)| {
        let (name, rest) = path.rsplit_once(marker)?;
        (!rest.contains('/')).then(|| (name, endpoint(rest)))
    })
}

async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    versioned(
        route(
            &state,
            method,
            &path,
            query.as_deref().unwrap_or(""),
            &headers,
            body,
        )
        .await,
    )
}

async fn route(
    state: &AppState,
    method: Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, OciError> {
    let (name, endpoint) = parse_path(path).ok_or_else(|| {
        OciError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("no such endpoint /v2/{path}"),
        )
    })?;
    if let Endpoint::Upload(id) = endpoint
        && state.oci.uploads.is_foreign(id)
        && !headers.contains_key(FORWARDED_BY)
    {
        return forward(state, id, method, path, query, headers, body).await;
    }
    let asked = RepositoryName::parse(name)?;
    let name = match method {
        Method::GET | Method::HEAD => asked.clone(),
        _ => remote::push_target(state, &asked)?,
    };
    let caller = match auth::authenticate(state, headers) {
        Ok(caller) => caller.acting_on(&asked, &name),
        Err(error) => {
            crate::frontend::discard_body(headers, body).await;
            return Err(unauthorized(state, headers, error));
        }
    };
    // A push refused before its body is read: the body is read (up to a bound) and dropped first,
    // or a client still sending (a large manifest) sees a broken pipe instead of the 401.
    if matches!(method, Method::POST | Method::PUT | Method::PATCH)
        && let Err(refused) = caller.authorize(state, headers, &name, auth::Action::Push)
    {
        crate::frontend::discard_body(headers, body).await;
        return Err(refused);
    }
    let call = Call {
        endpoint,
        method,
        query,
        headers,
        body,
    };
    let mut response = serve(state, &caller, &name, call).await?;
    // The client keeps talking to the repository it asked for.
    if name != asked {
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.replacen(&format!("/v2/{name}/"), &format!("/v2/{asked}/"), 1));
        if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    Ok(response)
}

/// Marks a request one node forwarded to another (which never forwards it again).
const FORWARDED_BY: &str = "x-arca-forwarded-by";

/// Headers that belong to one connection, not to the request or answer they carry.
fn hop_by_hop(name: &header::HeaderName) -> bool {
    [
        header::CONNECTION,
        header::HOST,
        header::TRANSFER_ENCODING,
        header::TE,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
}

/// Sends a request for upload session `id` to the node that issued it (through a load balancer, a
/// client's parts may reach any node of the site), and answers what it answers.
async fn forward(
    state: &AppState,
    id: &str,
    method: Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, OciError> {
    let owner = Uploads::owner(id).ok_or_else(OciError::upload_unknown)?;
    let Some((_, node)) = state.meta.members().into_iter().find(|(m, _)| *m == owner) else {
        crate::frontend::discard_body(headers, body).await;
        return Err(OciError::upload_unknown());
    };
    let scheme = if state.config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let url = format!("{scheme}://{}/v2/{path}{query}", node.http);
    let mut request = state
        .proxy
        .http()
        .request(method, url)
        .header(FORWARDED_BY, state.config.node_id.to_string())
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    for (name, value) in headers.iter().filter(|(name, _)| !hop_by_hop(name)) {
        request = request.header(name, value);
    }
    let answer = request.send().await.map_err(|error| {
        OciError::new(
            StatusCode::BAD_GATEWAY,
            "UNKNOWN",
            format!("node {owner}, which holds this upload session, did not answer: {error}"),
        )
    })?;
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer
        .headers()
        .iter()
        .filter(|(name, _)| !hop_by_hop(name))
    {
        response = response.header(name, value);
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .map_err(OciError::internal)
}

/// One request to a repository's endpoint.
struct Call<'a> {
    endpoint: Endpoint<'a>,
    method: Method,
    query: &'a str,
    headers: &'a HeaderMap,
    body: Body,
}

/// Runs the handler of the call's endpoint and method on repository `name`.
async fn serve(
    state: &AppState,
    caller: &auth::OciCaller,
    name: &RepositoryName,
    call: Call<'_>,
) -> Result<Response, OciError> {
    let Call {
        endpoint,
        method,
        query,
        headers,
        body,
    } = call;
    let path = name.to_string();
    let name = name.clone();
    match (endpoint, method) {
        (Endpoint::Blob(digest), Method::GET | Method::HEAD) => {
            blobs::fetch(state, caller, headers, &name, digest).await
        }
        (Endpoint::Blob(digest), Method::DELETE) => {
            blobs::delete(state, caller, headers, &name, digest).await
        }
        (Endpoint::Upload(""), Method::POST) => {
            blobs::start(state, caller, headers, &name, query, body).await
        }
        (Endpoint::Upload(id), Method::GET) if !id.is_empty() => {
            blobs::status(state, caller, headers, &name, id).await
        }
        (Endpoint::Upload(id), Method::PATCH) if !id.is_empty() => {
            blobs::patch(state, caller, headers, &name, id, body).await
        }
        (Endpoint::Upload(id), Method::PUT) if !id.is_empty() => {
            blobs::finish(state, caller, headers, &name, id, query, body).await
        }
        (Endpoint::Upload(id), Method::DELETE) if !id.is_empty() => {
            blobs::cancel(state, caller, headers, &name, id).await
        }
        (Endpoint::Manifest(reference), Method::GET) => {
            manifests::fetch(state, caller, headers, &name, reference, false).await
        }
        (Endpoint::Manifest(reference), Method::HEAD) => {
            manifests::fetch(state, caller, headers, &name, reference, true).await
        }
        (Endpoint::Manifest(reference), Method::PUT) => {
            manifests::put(state, caller, headers, &name, reference, body).await
        }
        (Endpoint::Manifest(reference), Method::DELETE) => {
            manifests::delete(state, caller, headers, &name, reference).await
        }
        (Endpoint::Referrers(digest), Method::GET) => {
            manifests::referrers(state, caller, headers, &name, digest, query).await
        }
        (Endpoint::Tags, Method::GET) => {
            manifests::tags(state, caller, headers, &name, query).await
        }
        (_, method) => Err(OciError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{method} is not supported on /v2/{path}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_the_endpoint() {
        assert_eq!(
            parse_path("r/app/web/tags/list"),
            Some(("r/app/web", Endpoint::Tags))
        );
        assert_eq!(
            parse_path("r/a/blobs/uploads/"),
            Some(("r/a", Endpoint::Upload("")))
        );
        assert_eq!(
            parse_path("r/a/blobs/uploads"),
            Some(("r/a", Endpoint::Upload("")))
        );
        assert_eq!(
            parse_path("r/a/blobs/uploads/abc"),
            Some(("r/a", Endpoint::Upload("abc")))
        );
        assert_eq!(
            parse_path("r/a/blobs/sha256:00"),
            Some(("r/a", Endpoint::Blob("sha256:00")))
        );
        assert_eq!(
            parse_path("r/manifests/x/manifests/v1"),
            Some(("r/manifests/x", Endpoint::Manifest("v1")))
        );
        assert_eq!(
            parse_path("r/a/referrers/sha256:00"),
            Some(("r/a", Endpoint::Referrers("sha256:00")))
        );
        assert_eq!(parse_path("r/a/other"), None);
    }
}
