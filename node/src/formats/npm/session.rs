//! The npm session endpoints: `npm ping`, `npm whoami`, and `npm login` / `npm adduser` through the
//! CouchDB user document (`PUT /-/user/org.couchdb.user:<name>`).
//!
//! Arca has no npm users: the user name is free and the password must be an Arca token that may read
//! the registry. The answer hands the same token back, and npm stores it as the registry's
//! `_authToken`.

use arca_protocol::Role;
use axum::Json;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Context, NpmError};
use crate::auth::{Caller, caller_for_secret};

/// Largest login document.
const LOGIN_BODY_BYTES: usize = 64 * 1024;

/// `GET /-/ping`: `{}` for a caller that may read the registry.
pub fn ping(ctx: &Context<'_>) -> Result<Response, NpmError> {
    ctx.authorize(Role::Read)?;
    Ok(Json(json!({})).into_response())
}

/// `GET /-/whoami`: the name of the caller's token.
pub fn whoami(ctx: &Context<'_>) -> Result<Response, NpmError> {
    match &ctx.caller {
        Caller::Token(token) => Ok(Json(json!({ "username": token.name })).into_response()),
        Caller::Anonymous => Err(NpmError::new(
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

/// `PUT /-/user/org.couchdb.user:<name>`: exchanges the password (an Arca token) for itself.
pub async fn login(ctx: &Context<'_>, user: &str, body: Body) -> Result<Response, NpmError> {
    let bytes = axum::body::to_bytes(body, LOGIN_BODY_BYTES)
        .await
        .map_err(|e| NpmError::bad_request(format!("unreadable login document: {e}")))?;
    let document: UserDocument = serde_json::from_slice(&bytes)
        .map_err(|e| NpmError::bad_request(format!("malformed login document: {e}")))?;
    let caller = caller_for_secret(&ctx.state.meta, &document.password).map_err(|_| {
        NpmError::new(
            StatusCode::UNAUTHORIZED,
            "invalid login: the password must be an Arca token",
        )
    })?;
    let ctx = Context {
        caller,
        registry: ctx.registry.clone(),
        ..*ctx
    };
    ctx.authorize(Role::Read)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "ok": true,
            "id": format!("org.couchdb.user:{user}"),
            "token": document.password,
        })),
    )
        .into_response())
}
