//! The npm session endpoints: `npm ping`, `npm whoami`, and `npm login` / `npm adduser` through the
//! CouchDB user document (`PUT /-/user/org.couchdb.user:<name>`).
//!
//! The password is either an Arca token that may read the registry (the user name is then free), which
//! the answer hands back, or an Arca user's own password, for which the answer carries a new login
//! token owned by that user (as `POST /api/v1/login` issues). npm stores it as the registry's
//! `_authToken`.

use arca_protocol::Role;
use axum::Json;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Context, NpmError};
use crate::auth::{caller_for_password, caller_for_secret};

/// Largest login document.
const LOGIN_BODY_BYTES: usize = 64 * 1024;

/// `GET /-/ping`: `{}` for a caller that may read the registry.
pub fn ping(ctx: &Context<'_>) -> Result<Response, NpmError> {
    ctx.authorize(Role::Read)?;
    Ok(Json(json!({})).into_response())
}

/// `GET /-/whoami`: the caller's user name, or its token's name.
pub fn whoami(ctx: &Context<'_>) -> Result<Response, NpmError> {
    match ctx.caller.principal() {
        Some(principal) => Ok(Json(json!({ "username": principal.name() })).into_response()),
        None => Err(NpmError::new(
            StatusCode::UNAUTHORIZED,
            "authentication required: log in with an Arca token",
        )),
    }
}

/// The CouchDB user document npm sends to log in.
#[derive(Debug, Deserialize)]
struct UserDocument {
    password: String,
}

/// `PUT /-/user/org.couchdb.user:<name>`: exchanges an Arca token for itself, or a user's password for
/// a new login token of that user.
pub async fn login(ctx: &Context<'_>, user: &str, body: Body) -> Result<Response, NpmError> {
    let bytes = axum::body::to_bytes(body, LOGIN_BODY_BYTES)
        .await
        .map_err(|e| NpmError::bad_request(format!("unreadable login document: {e}")))?;
    let document: UserDocument = serde_json::from_slice(&bytes)
        .map_err(|e| NpmError::bad_request(format!("malformed login document: {e}")))?;
    let (caller, token) = match caller_for_secret(ctx.state, &document.password) {
        Ok(caller) => (caller, None),
        Err(_) => {
            let caller =
                caller_for_password(ctx.state, user, &document.password).map_err(|_| {
                    NpmError::new(
                        StatusCode::UNAUTHORIZED,
                        "invalid login: the password must be an Arca token or the user's password",
                    )
                })?;
            (caller, Some(user))
        }
    };
    let ctx = Context {
        caller,
        registry: ctx.registry.clone(),
        ..*ctx
    };
    ctx.authorize(Role::Read)?;
    let token = match token {
        None => document.password,
        Some(user) => {
            crate::auth::issue::login_token(ctx.state, user)
                .await?
                .token
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "ok": true,
            "id": format!("org.couchdb.user:{user}"),
            "token": token,
        })),
    )
        .into_response())
}
