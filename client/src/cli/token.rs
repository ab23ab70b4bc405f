//! `arca token`: create (with scopes, an owner and an expiry, showing the secret once), list, rotate and
//! revoke API tokens.

use std::time::Duration;

use anyhow::{Result, bail};
use arca_protocol::api::{CreateTokenRequest, CreatedToken, TokenInfo};
use arca_protocol::{Grant, Role};
use clap::Subcommand;

use super::Context;
use super::output::{Deleted, Row, Subject, emit, timestamp};

/// `arca token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown only this once)
    Create {
        /// A label for the token [default: token-<unix time>]
        #[arg(long = "name", value_name = "NAME")]
        name: Option<String>,
        /// The label, as a positional argument
        #[arg(conflicts_with = "name", hide = true)]
        label: Option<String>,
        /// A global role: viewer, contributor or admin (read and write are accepted too)
        #[arg(long, conflicts_with = "scope")]
        role: Option<Role>,
        /// What the token may do: ROLE (everywhere) or REGISTRY:ROLE; repeatable
        #[arg(long = "scope", value_name = "[REGISTRY:]ROLE")]
        scope: Vec<Grant>,
        /// The user or service account the token acts for (capped by its grants)
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Lifetime, such as 30d, 12h or 90m [default: no expiry]
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
    },
    /// List tokens (never their secrets)
    List,
    /// Give a token a new secret; the old one stops working
    Rotate {
        /// Token id, as `arca token list` shows it
        id: String,
    },
    /// Revoke a token
    Revoke {
        /// Token id, as `arca token list` shows it
        id: String,
    },
}

/// The label of a token created without one: when it was made.
fn default_token_name() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    format!("token-{now}")
}

impl TokenCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        match self {
            TokenCommand::Create {
                name,
                label,
                role,
                scope,
                user,
                expires_in,
            } => {
                let expires_in_seconds = match expires_in {
                    Some(duration) if duration.as_secs() == 0 => {
                        bail!("--expires-in must be at least one second")
                    }
                    other => other.map(|d| d.as_secs()),
                };
                // Without a user, role or scope the token reads everything, as before.
                let role = match (&role, scope.is_empty(), &user) {
                    (None, true, None) => Some(Role::Read),
                    _ => role,
                };
                let request = CreateTokenRequest {
                    name: name.or(label).unwrap_or_else(default_token_name),
                    role,
                    owner: user,
                    expires_in_seconds,
                    scopes: (!scope.is_empty()).then_some(scope),
                };
                let created = client.create_token(&request).await?;
                emit(context.format, &created)?;
                eprintln!("store the token now: it cannot be shown again");
                Ok(())
            }
            TokenCommand::List => emit(context.format, &client.list_tokens().await?),
            TokenCommand::Rotate { id } => {
                let rotated = client.rotate_token(&id).await?;
                emit(context.format, &rotated)?;
                eprintln!("store the new secret now: the old one no longer works");
                Ok(())
            }
            TokenCommand::Revoke { id } => {
                client.revoke_token(&id).await?;
                emit(
                    context.format,
                    &Deleted {
                        deleted: Subject::Token { id },
                    },
                )
            }
        }
    }
}

/// Grants as one table cell: `admin`, `team-npm:contributor, viewer`.
pub fn grants_cell(grants: &[Grant]) -> String {
    if grants.is_empty() {
        return "-".to_string();
    }
    grants
        .iter()
        .map(Grant::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Row for TokenInfo {
    const HEADERS: &'static [&'static str] =
        &["ID", "NAME", "OWNER", "SCOPES", "EXPIRES", "CREATED"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.owner.clone().unwrap_or_else(|| "-".to_string()),
            grants_cell(&self.scopes),
            self.expires_at
                .map_or_else(|| "never".to_string(), timestamp),
            timestamp(self.created_at),
        ]
    }
}

impl Row for CreatedToken {
    const HEADERS: &'static [&'static str] = &[
        "ID", "NAME", "OWNER", "SCOPES", "EXPIRES", "CREATED", "TOKEN",
    ];

    fn cells(&self) -> Vec<String> {
        let mut cells = self.info.cells();
        cells.push(self.token.clone());
        cells
    }
}
