//! `/api/v1/tokens`: the admin creates, lists and revokes API tokens.

use arca_protocol::api::{CreateTokenRequest, CreatedToken, TokenInfo};
use arca_protocol::{Command, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};

use super::{ApiError, JsonBody, PathParams};
use crate::AppState;
use crate::auth::{self, Caller};

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", delete(revoke))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    caller.require(Role::Admin)?;
    if request.name.trim().is_empty() || request.name.len() > 128 {
        return Err(ApiError::invalid("token name must be 1 to 128 characters"));
    }
    let (secret, token) = auth::generate_token(&request.name, request.role, state.now_ms());
    let info = auth::token_info(&token);
    state.meta.propose(Command::CreateToken { token }).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            info,
            token: secret,
        }),
    ))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(state.meta.read(|meta| {
        meta.tokens.values().map(auth::token_info).collect()
    })))
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    state.meta.propose(Command::RevokeToken { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
