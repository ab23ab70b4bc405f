//! `/api/v1/users` (users and service accounts, their role grants) and `/api/v1/login` (a user's name
//! and password for a login token). Passwords are hashed here, at the edge, with argon2id; the state
//! machine only ever sees the PHC string, and no answer ever carries a password or a hash.

use std::collections::BTreeSet;

use arca_protocol::identity::{
    CreateUserRequest, LoginRequest, UpdateUserRequest, User, UserInfo, UserKind,
};
use arca_protocol::{Command, Grant, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use super::audit::AuditDetail;
use super::{ApiError, JsonBody, PathParams};
use crate::AppState;
use crate::auth::password::{self, PasswordError};
use crate::auth::{Caller, caller_for_password};
use crate::meta::StateRead;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{name}", get(fetch).delete(remove).patch(update))
        .route("/users/{name}/roles", put(grant).delete(revoke))
        .route("/login", post(login))
}

/// A user name: 1-64 characters of `[A-Za-z0-9._@-]`, starting with a letter or digit (no `:`, which
/// Basic credentials use as the separator).
fn validate_user_name(name: &str) -> Result<(), ApiError> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "invalid user name {name:?}: 1 to 64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
        )))
    }
}

impl From<PasswordError> for ApiError {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Length(_) => ApiError::invalid(error.to_string()),
            PasswordError::Hash(_) => ApiError::internal(error),
            PasswordError::Busy => ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                error.to_string(),
            ),
        }
    }
}

/// argon2id of `password`, off the async workers.
async fn hash_password(state: &AppState, password: String) -> Result<String, ApiError> {
    password::validate(&password)?;
    let passwords = state.passwords.clone();
    crate::blocking::spawn(move || passwords.hash(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

/// True when `caller` is the user `name` itself.
fn is_self(caller: &Caller, name: &str) -> bool {
    caller
        .principal()
        .and_then(|p| p.user.as_deref())
        .is_some_and(|user| user == name)
}

fn user_info(state: &AppState, name: &str) -> Result<UserInfo, ApiError> {
    state
        .meta
        .read(|view| view.user(name))?
        .map(|user| UserInfo::from(&user))
        .ok_or_else(|| ApiError::not_found(format!("user {name} not found")))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateUserRequest>,
) -> Result<(StatusCode, Json<UserInfo>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(create_user(&state, &caller, request).await?),
    ))
}

/// Creates a user or service account (admin), its password hashed with argon2id.
pub async fn create_user(
    state: &AppState,
    caller: &Caller,
    request: CreateUserRequest,
) -> Result<UserInfo, ApiError> {
    caller.require(Role::Admin)?;
    validate_user_name(&request.name)?;
    let password_hash = match (request.kind, request.password) {
        (UserKind::Service, Some(_)) => {
            return Err(ApiError::invalid(
                "a service account has no password: it authenticates with tokens",
            ));
        }
        (_, Some(password)) => Some(hash_password(state, password).await?),
        (_, None) => None,
    };
    let now = state.now_ms();
    let user = User {
        name: request.name.clone(),
        kind: request.kind,
        password_hash,
        disabled: false,
        grants: BTreeSet::new(),
        created_at: now,
        updated_at: now,
    };
    state.meta.propose(Command::CreateUser { user }).await?;
    user_info(state, &request.name)
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(
        state
            .meta
            .read(|view| view.users())?
            .iter()
            .map(UserInfo::from)
            .collect(),
    ))
}

async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<UserInfo>, ApiError> {
    if !is_self(&caller, &name) {
        caller.require(Role::Admin)?;
    }
    Ok(Json(user_info(&state, &name)?))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    state.meta.propose(Command::DeleteUser { name }).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(request): JsonBody<UpdateUserRequest>,
) -> Result<Json<UserInfo>, ApiError> {
    // Users change their own password (proving they know it: a stolen session or token alone
    // must not take the account over); everything else is the admin's.
    let own = is_self(&caller, &name);
    if request.disabled.is_some() || !own {
        caller.require(Role::Admin)?;
    }
    if own && request.password.is_some() {
        let current = request.current_password.as_deref().ok_or_else(|| {
            ApiError::invalid("changing your own password needs current_password")
        })?;
        if caller_for_password(&state, &name, current).is_err() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "DENIED",
                "current_password is not your password",
            ));
        }
    }
    if request.password.is_none() && request.disabled.is_none() {
        return Err(ApiError::invalid(
            "nothing to change: give password or disabled",
        ));
    }
    if request.password.is_some()
        && state
            .meta
            .read(|view| view.user(&name))?
            .is_some_and(|user| user.kind == UserKind::Service)
    {
        return Err(ApiError::invalid(format!(
            "{name} is a service account: it has no password"
        )));
    }
    let password_hash = match request.password {
        Some(password) => Some(hash_password(&state, password).await?),
        None => None,
    };
    state
        .meta
        .propose(Command::UpdateUser {
            name: name.clone(),
            password_hash,
            disabled: request.disabled,
            at: state.now_ms(),
        })
        .await?;
    Ok(Json(user_info(&state, &name)?))
}

/// Allows `caller` to hand out or take away `grant`: a global admin any, a registry's admin those on
/// that registry.
fn may_manage_grant(state: &AppState, caller: &Caller, grant: &Grant) -> Result<(), ApiError> {
    match &grant.registry {
        None => Ok(caller.require(Role::Admin)?),
        Some(registry) => state.registry_for(caller, registry, Role::Admin).map(drop),
    }
}

async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(grant): JsonBody<Grant>,
) -> Result<Json<UserInfo>, ApiError> {
    change_grant(&state, &caller, name, grant, |user, grant, at| {
        Command::GrantRole { user, grant, at }
    })
    .await
    .map(Json)
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(grant): JsonBody<Grant>,
) -> Result<Json<UserInfo>, ApiError> {
    change_grant(&state, &caller, name, grant, |user, grant, at| {
        Command::RevokeRole { user, grant, at }
    })
    .await
    .map(Json)
}

/// Grants or revokes (as `command` builds it) `grant` for user `name`, when the caller may manage it.
pub async fn change_grant(
    state: &AppState,
    caller: &Caller,
    name: String,
    grant: Grant,
    command: impl FnOnce(String, Grant, u64) -> Command,
) -> Result<UserInfo, ApiError> {
    may_manage_grant(state, caller, &grant)?;
    state
        .meta
        .propose(command(name.clone(), grant, state.now_ms()))
        .await?;
    user_info(state, &name)
}

async fn login(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let checked = {
        let state = state.clone();
        let (name, password) = (request.username.clone(), request.password);
        crate::blocking::spawn(move || caller_for_password(&state, &name, &password))
            .await
            .map_err(ApiError::internal)?
    };
    let detail = match &checked {
        Ok(_) => format!("user {} logged in", request.username),
        Err(error) => format!("login of user {} refused: {error}", request.username),
    };
    let mut response = match checked {
        Ok(_) => crate::auth::issue::login_token(&state, &request.username)
            .await
            .map(|created| (StatusCode::CREATED, Json(created)))
            .map_err(ApiError::from)
            .into_response(),
        Err(error) => ApiError::from(error).into_response(),
    };
    response.extensions_mut().insert(AuditDetail(detail));
    Ok(response)
}
