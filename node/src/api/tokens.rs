//! `/api/v1/tokens`: creating (with scopes, an owner and an expiry), listing, rotating and revoking API
//! tokens. Admins manage every token; a user manages the tokens it owns and may create more for itself,
//! each no stronger than the credentials it uses to ask.

use arca_protocol::api::{CreateTokenRequest, CreatedToken, TokenInfo};
use arca_protocol::{Command, Grant, Role, Token};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::{ApiError, JsonBody, PathParams};
use crate::AppState;
use crate::auth::{self, AuthError, Caller, TokenSpec};
use crate::meta::StateRead;

/// Longest lifetime a token may be given: ten years.
const MAX_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", delete(revoke))
        .route("/tokens/{id}/rotate", post(rotate))
}

/// Allows `caller` to act for `owner`: admins act for anyone, a user for itself.
fn act_for(caller: &Caller, owner: Option<&str>) -> Result<(), AuthError> {
    let admin = caller.require(Role::Admin);
    let own = owner.is_some_and(|owner| {
        caller
            .principal()
            .and_then(|p| p.user.as_deref())
            .is_some_and(|user| user == owner)
    });
    if own { Ok(()) } else { admin }
}

/// The scopes a request asks for, checked.
fn requested_scopes(
    state: &AppState,
    caller: &Caller,
    request: &CreateTokenRequest,
) -> Result<Vec<Grant>, ApiError> {
    let scopes = match (&request.role, &request.scopes) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("give either role or scopes, not both"));
        }
        (Some(role), None) => vec![Grant::global(*role)],
        (None, Some(scopes)) if scopes.is_empty() => {
            return Err(ApiError::invalid("scopes must not be empty"));
        }
        (None, Some(scopes)) => scopes.clone(),
        // An owned token may do what its owner may (an admin's) or what the asking credentials may.
        (None, None) if request.owner.is_some() => match caller.require(Role::Admin) {
            Ok(()) => vec![Grant::global(Role::Admin)],
            Err(_) => caller
                .principal()
                .map(|p| p.grants.clone())
                .unwrap_or_default(),
        },
        (None, None) => {
            return Err(ApiError::invalid(
                "a token without an owner needs a role or scopes",
            ));
        }
    };
    for scope in &scopes {
        if let Some(registry) = &scope.registry
            && state.meta.read(|view| view.registry(registry))?.is_none()
        {
            return Err(ApiError::invalid(format!(
                "scope {scope} names registry {registry}, which does not exist"
            )));
        }
        // Nobody hands out more than the credentials they ask with allow.
        match &scope.registry {
            None => caller.require(scope.role)?,
            Some(registry) => {
                state.registry_for(caller, registry, scope.role)?;
            }
        }
    }
    Ok(scopes)
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(create_token(&state, &caller, request).await?),
    ))
}

/// Creates a token for the caller itself, or (admin) for anyone; its secret is answered once.
pub async fn create_token(
    state: &AppState,
    caller: &Caller,
    request: CreateTokenRequest,
) -> Result<CreatedToken, ApiError> {
    caller.require_login()?;
    act_for(caller, request.owner.as_deref())?;
    if request.name.trim().is_empty() || request.name.len() > 128 {
        return Err(ApiError::invalid("token name must be 1 to 128 characters"));
    }
    let now = state.now_ms();
    let expires_at = match request.expires_in_seconds {
        None => None,
        Some(seconds) if (1..=MAX_LIFETIME_SECS).contains(&seconds) => {
            Some(now.saturating_add(seconds * 1000))
        }
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "expires_in_seconds must be between 1 and {MAX_LIFETIME_SECS}"
            )));
        }
    };
    let scopes = requested_scopes(state, caller, &request)?;
    let spec = TokenSpec {
        name: request.name,
        scopes,
        owner: request.owner,
        expires_at,
    };
    Ok(auth::issue::store(state, spec).await?)
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    Ok(Json(visible_tokens(&state, &caller)?))
}

/// The tokens `caller` may see: every token for an admin, a user's own tokens otherwise.
pub fn visible_tokens(state: &AppState, caller: &Caller) -> Result<Vec<TokenInfo>, ApiError> {
    let admin = admin_or_user(caller)?;
    let user = caller.principal().and_then(|p| p.user.clone());
    Ok(state
        .meta
        .read(|view| view.tokens())?
        .iter()
        .filter(|token| admin || token.owner == user)
        .map(auth::token_info)
        .collect())
}

/// True for an admin, false for a user (who manages only its own tokens); refuses everyone else.
fn admin_or_user(caller: &Caller) -> Result<bool, AuthError> {
    match caller.require(Role::Admin) {
        Ok(()) => Ok(true),
        Err(_) if caller.principal().is_some_and(|p| p.user.is_some()) => Ok(false),
        Err(refused) => Err(refused),
    }
}

/// The token `id`, after checking that `caller` may manage it. Others' tokens are reported as
/// missing to non-admins.
fn managed_token(state: &AppState, caller: &Caller, id: &str) -> Result<Token, ApiError> {
    let admin = admin_or_user(caller)?;
    let user = caller.principal().and_then(|p| p.user.clone());
    state
        .meta
        .read(|view| view.token(id))?
        .filter(|token| admin || token.owner == user)
        .ok_or_else(|| ApiError::not_found(format!("token {id} not found")))
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    revoke_token(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes token `id` (its owner, or an admin).
pub async fn revoke_token(state: &AppState, caller: &Caller, id: String) -> Result<(), ApiError> {
    managed_token(state, caller, &id)?;
    state.meta.propose(Command::RevokeToken { id }).await?;
    Ok(())
}

async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<CreatedToken>, ApiError> {
    let mut token = managed_token(&state, &caller, &id)?;
    let (secret, secret_sha256) = auth::new_secret();
    state
        .meta
        .propose(Command::RotateToken {
            id: id.clone(),
            secret_sha256,
        })
        .await?;
    token.secret_sha256 = secret_sha256;
    Ok(Json(CreatedToken {
        info: auth::token_info(&token),
        token: secret,
    }))
}
