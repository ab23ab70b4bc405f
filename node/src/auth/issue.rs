//! Issuing Arca tokens: storing a new one (its secret is shown once, only its hash is kept), and the
//! login token a user gets for its name and password (`/api/v1/login`, `npm login`).

use arca_protocol::api::CreatedToken;
use arca_protocol::{Command, Grant, Role};

use super::TokenSpec;
use crate::AppState;
use crate::meta::ProposeError;

/// How long a login token lasts: twelve hours.
pub const LOGIN_TOKEN_LIFETIME_MS: u64 = 12 * 3600 * 1000;

/// Records a new token and returns it with its secret.
pub async fn store(state: &AppState, spec: TokenSpec) -> Result<CreatedToken, ProposeError> {
    let (secret, token) = spec.generate(state.now_ms());
    let info = super::token_info(&token);
    state.meta.propose(Command::CreateToken { token }).await?;
    Ok(CreatedToken {
        info,
        token: secret,
    })
}

/// The name of the token behind a web UI session (sign-out revokes tokens named so).
pub const WEB_SESSION_TOKEN: &str = "web session";

/// Records a login token for `user`: owned by it, everything it may do, for twelve hours.
pub async fn login_token(state: &AppState, user: &str) -> Result<CreatedToken, ProposeError> {
    user_token(state, user, format!("login {user}")).await
}

/// Records the token of a web UI session `user` signed in to with its password: as a login token,
/// named [`WEB_SESSION_TOKEN`].
pub async fn web_session_token(state: &AppState, user: &str) -> Result<CreatedToken, ProposeError> {
    user_token(state, user, WEB_SESSION_TOKEN.to_string()).await
}

async fn user_token(
    state: &AppState,
    user: &str,
    name: String,
) -> Result<CreatedToken, ProposeError> {
    let spec = TokenSpec {
        name,
        scopes: vec![Grant::global(Role::Admin)],
        owner: Some(user.to_string()),
        expires_at: Some(state.now_ms().saturating_add(LOGIN_TOKEN_LIFETIME_MS)),
    };
    store(state, spec).await
}
