//! `arca token`: create (showing the secret once), list and revoke API tokens.

use anyhow::Result;
use arca_protocol::Role;
use arca_protocol::api::{CreatedToken, TokenInfo};
use clap::Subcommand;

use super::Context;
use super::output::{Deleted, Row, Subject, emit, timestamp};

/// `arca token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown only this once)
    Create {
        /// A label for the token
        name: String,
        /// What the token may do: read, write or admin
        #[arg(long, default_value_t = Role::Read)]
        role: Role,
    },
    /// List tokens (never their secrets)
    List,
    /// Revoke a token
    Revoke {
        /// Token id, as `arca token list` shows it
        id: String,
    },
}

impl TokenCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        match self {
            TokenCommand::Create { name, role } => {
                let created = client.create_token(&name, role).await?;
                emit(context.format, &created)?;
                eprintln!("store the token now: it cannot be shown again");
                Ok(())
            }
            TokenCommand::List => emit(context.format, &client.list_tokens().await?),
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

impl Row for TokenInfo {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "ROLE", "CREATED"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.role.to_string(),
            timestamp(self.created_at),
        ]
    }
}

impl Row for CreatedToken {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "ROLE", "CREATED", "TOKEN"];

    fn cells(&self) -> Vec<String> {
        let mut cells = self.info.cells();
        cells.push(self.token.clone());
        cells
    }
}
