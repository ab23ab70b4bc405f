//! The web UI under `/ui/`: HTML pages rendered by the node itself (no client bundle, a few lines of
//! script for copy buttons), on the HTTP port every node serves, with the same RBAC as the API.
//!
//! This module owns what every page shares: the routes, the session, CSRF protection and the page
//! frame. A session is a cookie holding an Arca token secret: the token a password sign-in creates
//! (named [`WEB_SESSION_TOKEN`], owned by the user, twelve hours; sign-out revokes it), or one the
//! user signed in with. Since the token lives in the replicated state, a session opened through one
//! node is valid on every node. [`session_credentials`] turns the cookie into the request's
//! `Authorization` header for `/ui/` requests only, so the handlers, the audit trail and the request
//! metrics identify the caller exactly as they do for the API; a cookie that no longer stands for a
//! caller is cleared and the request goes on anonymous.
//!
//! Every form posts a CSRF value the page was rendered with ([`Checked`] refuses a post without the
//! right one, or from another origin): for a session, a digest of its secret, which a page from
//! another site can neither read nor compute; before sign-in, a random value also kept in a cookie.
//! The cookies are `HttpOnly`, `SameSite=Strict`, and `Secure` when the node is reached over HTTPS.

mod actions;
mod ops;
mod pages;
mod setup;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{DOCTYPE, Markup, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::Digest;

use crate::AppState;
use crate::auth::issue::WEB_SESSION_TOKEN;
use crate::auth::{self, Caller};
use crate::frontend::ApiError;

/// The cookie holding a session's token secret.
const SESSION_COOKIE: &str = "arca_session";
/// The cookie holding the CSRF value of the sign-in form.
const SIGN_IN_COOKIE: &str = "arca_signin";
/// How long a session cookie is kept (the session token's own lifetime).
const SESSION_SECONDS: u64 = auth::issue::LOGIN_TOKEN_LIFETIME_MS / 1000;

const STYLE: &str = include_str!("arca.css");
/// Where the stylesheet and the script are served (read by no session).
const STYLE_PATH: &str = "/ui/-/arca.css";
const SCRIPT_PATH: &str = "/ui/-/arca.js";
const SCRIPT: &str = include_str!("arca.js");

/// Routes of the UI, below `/ui`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(pages::home))
        .route(STYLE_PATH, get(style))
        .route(SCRIPT_PATH, get(script))
        .route("/ui/-/signin", post(actions::sign_in))
        .route("/ui/-/signout", post(actions::sign_out))
        .route("/ui/-/search", get(pages::search))
        .route(
            "/ui/-/registries",
            get(actions::new_registry_form).post(actions::create_registry),
        )
        .route("/ui/-/r/{registry}/delete", post(actions::delete_registry))
        .route("/ui/-/r/{registry}/metadata", post(actions::set_metadata))
        .route(
            "/ui/-/r/{registry}/settings",
            post(actions::update_registry),
        )
        .route("/ui/-/r/{registry}/quarantine", post(actions::quarantine))
        .route("/ui/-/r/{registry}/release", post(actions::release))
        .route("/ui/-/r/{registry}/cleanup", post(actions::cleanup))
        .route(
            "/ui/-/r/{registry}/cleanup-policy",
            post(actions::set_cleanup_policy),
        )
        .route(
            "/ui/-/r/{registry}/firewall-policy",
            post(actions::set_firewall_policy),
        )
        .route("/ui/-/cluster", get(ops::cluster))
        .route("/ui/-/gc", post(ops::garbage_collection))
        .route("/ui/-/audit", get(ops::audit))
        .route("/ui/-/access", get(ops::access))
        .route("/ui/-/users", post(ops::create_user))
        .route("/ui/-/users/grants", post(ops::change_grant))
        .route("/ui/-/tokens", post(ops::create_token))
        .route("/ui/-/tokens/revoke", post(ops::revoke_token))
        .route("/ui/{registry}", get(pages::registry))
        .route("/ui/{registry}/{package}", get(pages::package))
        .route("/ui/{registry}/{package}/{version}", get(pages::version))
}

/// `GET /`: browsers go to the UI; anything else hears that there is nothing here.
pub async fn root(headers: HeaderMap) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if browser {
        Redirect::to("/ui/").into_response()
    } else {
        ApiError::not_found("no such endpoint; the web UI is at /ui/").into_response()
    }
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The value of cookie `name` in `headers`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Whether the browser reached the node over HTTPS (the node's own TLS, or a trusted proxy's).
fn over_https(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.tls_cert.is_some()
        || crate::http_server::public_origin(state.config.public_url.as_ref(), headers)
            .starts_with("https:")
}

/// A `Set-Cookie` value for the UI's path; `None` clears the cookie.
fn set_cookie(name: &str, value: Option<&str>, max_age: u64, secure: bool) -> HeaderValue {
    let (value, max_age) = match value {
        Some(value) => (value, max_age),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("arca_invalid=; Max-Age=0"))
}

/// The middleware that lets a `/ui/` request's session cookie stand for its credentials (see the
/// module documentation). Requests elsewhere, and requests with their own `Authorization`, pass
/// untouched: the API never reads the cookie.
pub async fn session_credentials(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !path.starts_with("/ui/")
        || path == STYLE_PATH
        || path == SCRIPT_PATH
        || request.headers().contains_key(header::AUTHORIZATION)
    {
        return next.run(request).await;
    }
    let Some(secret) = cookie(request.headers(), SESSION_COOKIE).map(str::to_string) else {
        return next.run(request).await;
    };
    // A token made through another node may not have reached this one yet: a refusal is asked
    // again once this node has caught up with the cluster. Only a refusal clears the cookie; when
    // the token could not be checked at all, the handler answers why.
    let mut checked = session_check(&state, &secret).await;
    if checked == SessionCheck::Refused {
        state.meta.catch_up().await;
        checked = session_check(&state, &secret).await;
    }
    if checked != SessionCheck::Refused
        && let Ok(value) = HeaderValue::from_str(&format!("Bearer {secret}"))
    {
        request.headers_mut().insert(header::AUTHORIZATION, value);
        return next.run(request).await;
    }
    let secure = over_https(&state, request.headers());
    // Signing out of a session that already ended has nothing left to do but forget the cookie.
    let mut response = if request.uri().path() == "/ui/-/signout" {
        Redirect::to("/ui/").into_response()
    } else {
        next.run(request).await
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, None, 0, secure),
    );
    response
}

/// What a session cookie's token is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionCheck {
    /// It stands for a caller.
    Valid,
    /// It was refused: unknown, revoked, expired, or its owner gone or disabled.
    Refused,
    /// It could not be checked (the metadata could not be read).
    Unknown,
}

async fn session_check(state: &AppState, secret: &str) -> SessionCheck {
    let (state, secret) = (state.clone(), secret.to_string());
    match crate::blocking::spawn(move || auth::caller_for_secret(&state, &secret)).await {
        Ok(Ok(_)) => SessionCheck::Valid,
        Ok(Err(auth::AuthError::Unauthorized(_))) => SessionCheck::Refused,
        Ok(Err(_)) | Err(_) => SessionCheck::Unknown,
    }
}

/// Who is looking at a page, and what its forms must carry.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The caller, as the API sees it.
    pub caller: Caller,
    /// The CSRF value of this viewer's forms.
    csrf: String,
    /// Whether `csrf` is a new sign-in value, which the page sets as a cookie.
    new_sign_in: bool,
    /// Whether the browser reached the node over HTTPS.
    secure: bool,
    /// `scheme://host` as the browser reached the node.
    origin: String,
}

impl Viewer {
    /// The viewer's name in the page header.
    fn name(&self) -> Option<String> {
        self.caller.principal().map(|principal| principal.name())
    }

    /// Whether the viewer has a global grant of `role`.
    fn is(&self, role: arca_protocol::Role) -> bool {
        self.caller.require(role).is_ok()
    }

    /// The hidden field every form carries.
    fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        let caller = Caller::from_request_parts(parts, state)
            .await
            .map_err(UiError::from)?;
        let csrf = match auth::credentials(&parts.headers).ok().flatten() {
            Some(auth::Credentials::Bearer(secret)) => Some(state.keys.form_value(&secret)),
            Some(auth::Credentials::Basic { password, .. }) => {
                Some(state.keys.form_value(&password))
            }
            None => cookie(&parts.headers, SIGN_IN_COOKIE).map(str::to_string),
        };
        let new_sign_in = csrf.is_none();
        let csrf = csrf.unwrap_or_else(|| hex::encode(rand::rng().random::<[u8; 16]>()));
        Ok(Viewer {
            caller,
            csrf,
            new_sign_in,
            secure: over_https(state, &parts.headers),
            origin: crate::http_server::public_origin(
                state.config.public_url.as_ref(),
                &parts.headers,
            ),
        })
    }
}

/// A posted form of the UI whose CSRF value and origin were checked.
#[derive(Debug)]
pub struct Checked<T> {
    /// Who posted it.
    pub viewer: Viewer,
    /// The form's fields.
    pub form: T,
}

#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Checked<T> {
    type Rejection = UiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, UiError> {
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let forged = || {
            UiError::new(
                StatusCode::FORBIDDEN,
                "This form was not sent by this site's own page (CSRF check failed). Reload the page and try again.",
            )
        };
        let cross_site = parts
            .headers
            .get(header::ORIGIN)
            .and_then(|origin| origin.to_str().ok())
            .is_some_and(|origin| !own_origin(state, &parts.headers, origin))
            || parts
                .headers
                .get("sec-fetch-site")
                .is_some_and(|site| site == "cross-site");
        if cross_site {
            return Err(forged());
        }
        let Form(WithCsrf { csrf, form }) =
            Form::<WithCsrf<T>>::from_request(Request::from_parts(parts, body), state)
                .await
                .map_err(|rejection| {
                    UiError::new(StatusCode::BAD_REQUEST, rejection.body_text())
                })?;
        // A fresh value was never sent to a page. Compared as digests, so the time taken tells
        // nothing about the expected value.
        let equal = !viewer.new_sign_in
            && sha2::Sha256::digest(csrf.as_bytes())
                == sha2::Sha256::digest(viewer.csrf.as_bytes());
        if !equal {
            return Err(forged());
        }
        Ok(Checked { viewer, form })
    }
}

/// Whether `origin` (a request's `Origin`) is the node's own: the scheme and host the request was
/// sent to, or those of the configured public URL.
fn own_origin(state: &AppState, headers: &HeaderMap, origin: &str) -> bool {
    let reached = crate::http_server::public_origin(None, headers);
    let public = state.config.public_url.as_ref().map(|url| {
        let text = url.as_str();
        match text.split_once("://") {
            Some((scheme, rest)) => {
                format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest))
            }
            None => text.to_string(),
        }
    });
    origin == reached || public.is_some_and(|public| origin == public)
}

/// An error shown as a page with its status.
#[derive(Debug)]
pub struct UiError {
    status: StatusCode,
    message: String,
}

impl UiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        UiError {
            status,
            message: message.into(),
        }
    }
}

impl<E: Into<ApiError>> From<E> for UiError {
    fn from(error: E) -> Self {
        let error = error.into();
        UiError::new(error.status, error.message)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = html! {
            (DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; meta name="viewport" content="width=device-width, initial-scale=1"; title { (title) " · Arca" } link rel="stylesheet" href="/ui/-/arca.css"; }
                body { main {
                    h1 { (self.status.as_u16()) " " (title) }
                    p.error role="alert" { (self.message) }
                    @if self.status == StatusCode::UNAUTHORIZED || self.status == StatusCode::FORBIDDEN {
                        p { a href="/ui/" { "Sign in" } " with an account that may see this." }
                    } @else {
                        p { a href="/ui/" { "Back to the registries" } }
                    }
                } }
            }
        };
        let mut response = (self.status, body.into_string()).into_response();
        protect(response.headers_mut());
        response
            .extensions_mut()
            .insert(crate::api::audit::AuditDetail(self.message));
        response
    }
}

/// The headers every page is sent with: HTML, never cached, never framed, no script or style from
/// elsewhere.
fn protect(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
}

/// What a page answers.
type PageResult = Result<Response, UiError>;

/// The characters a path segment of a UI link keeps as they are.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@')
    .remove(b'+')
    .remove(b':');

/// `/<segment>/<segment>...`, each segment percent-encoded (a `/` in a package name too).
fn encoded_path(segments: &[&str]) -> String {
    let mut path = String::new();
    for segment in segments {
        path.push('/');
        path.extend(utf8_percent_encode(segment, SEGMENT));
    }
    path
}

/// `/ui/<segment>/<segment>...`, each segment percent-encoded.
fn link(segments: &[&str]) -> String {
    format!("/ui{}", encoded_path(segments))
}

/// A query string value, encoded.
fn query_value(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The page frame around `content`: header with search and the viewer, the content, and the
/// `Set-Cookie` of a sign-in form's CSRF value when the page needed a new one.
fn page(viewer: &Viewer, title: &str, crumbs: &[(&str, String)], content: Markup) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Arca" }
                link rel="stylesheet" href="/ui/-/arca.css";
                script src="/ui/-/arca.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "Arca" }
                    form.search role="search" method="get" action="/ui/-/search" {
                        label.hidden for="q" { "Search packages" }
                        input #q type="search" name="q" placeholder="Search packages, versions, metadata";
                        button type="submit" { "Search" }
                    }
                    nav aria-label="Main" {
                        a href="/ui/" { "Registries" }
                        @if viewer.is(arca_protocol::Role::Admin) {
                            a href="/ui/-/cluster" { "Cluster" }
                            a href="/ui/-/audit" { "Audit" }
                        }
                        @if viewer.name().is_some() {
                            a href="/ui/-/access" { "Access" }
                        }
                    }
                    div.who {
                        @match viewer.name() {
                            Some(name) => {
                                span.user { (name) }
                                form method="post" action="/ui/-/signout" {
                                    (viewer.csrf_field())
                                    button.link type="submit" { "Sign out" }
                                }
                            }
                            None => { a href="/ui/#signin" { "Sign in" } }
                        }
                    }
                }
                @if !crumbs.is_empty() {
                    nav.crumbs aria-label="Breadcrumb" {
                        ol {
                            li { a href="/ui/" { "Registries" } }
                            @for (label, href) in crumbs {
                                li { a href=(href) { (label) } }
                            }
                        }
                    }
                }
                main #main { (content) }
            }
        }
    };
    let mut response = body.into_string().into_response();
    let headers = response.headers_mut();
    protect(headers);
    if viewer.new_sign_in {
        headers.append(
            header::SET_COOKIE,
            set_cookie(SIGN_IN_COOKIE, Some(&viewer.csrf), 3600, viewer.secure),
        );
    }
    response
}

/// A 303 to `to` after a form, with what the audit trail records of the action.
fn done(to: &str, audit: Option<String>) -> Response {
    let mut response = Redirect::to(to).into_response();
    if let Some(detail) = audit {
        response
            .extensions_mut()
            .insert(crate::api::audit::AuditDetail(detail));
    }
    response
}

/// A byte count for people.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Unix milliseconds as an RFC 3339 time, to the second.
fn time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// A `<time>` element for unix milliseconds.
fn time_element(ms: u64) -> Markup {
    let text = time(ms);
    html! { time datetime=(text) { (text.replace('T', " ").trim_end_matches('Z')) } }
}

/// A block of text with a button that copies it.
fn copyable(label: &str, text: &str) -> Markup {
    html! {
        div.copy {
            div.copy-head {
                span { (label) }
                button.copy-button type="button" aria-label={ "Copy: " (label) } { "Copy" }
            }
            pre { code { (text) } }
        }
    }
}

/// Whether `token`, a stored token's name, is a web session's.
fn is_web_session(name: &str) -> bool {
    name == WEB_SESSION_TOKEN
}
