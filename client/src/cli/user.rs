//! `arca user` (create, list, show, delete, change the password of, disable and enable users and
//! service accounts) and `arca role` (grant, revoke and list a user's roles, globally or on one
//! registry). Passwords are only ever read from standard input, never from the command line.

use anyhow::{Context as _, Result, bail};
use arca_protocol::identity::{CreateUserRequest, UpdateUserRequest, UserInfo, UserKind};
use arca_protocol::{Grant, Role};
use clap::Subcommand;

use super::Context;
use super::output::{Deleted, Row, Subject, Tabular, emit, table, timestamp};
use super::token::grants_cell;

/// Reads a password: the first line of standard input, without its line ending.
pub fn password_from_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

/// `arca user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (or, with --service, a service account that only uses tokens)
    Create {
        /// User name
        name: String,
        /// A service account: no password, authenticates with tokens only
        #[arg(long, conflicts_with = "password_stdin")]
        service: bool,
        /// Read the user's password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users and service accounts
    List,
    /// Show one user
    Get {
        /// User name
        name: String,
    },
    /// Delete a user and its tokens
    Delete {
        /// User name
        name: String,
    },
    /// Set a user's password, read from the first line of standard input
    Passwd {
        /// User name
        name: String,
        /// Changing your own password: standard input gives the current password on its first
        /// line and the new one on the second
        #[arg(long)]
        current: bool,
    },
    /// Disable a user: it cannot log in and its tokens stop working
    Disable {
        /// User name
        name: String,
    },
    /// Enable a disabled user again
    Enable {
        /// User name
        name: String,
    },
}

impl UserCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        let updated = |password: Option<String>, disabled: Option<bool>| UpdateUserRequest {
            password,
            disabled,
            ..UpdateUserRequest::default()
        };
        match self {
            UserCommand::Create {
                name,
                service,
                password_stdin,
            } => {
                let request = CreateUserRequest {
                    name,
                    kind: if service {
                        UserKind::Service
                    } else {
                        UserKind::Human
                    },
                    password: if password_stdin {
                        Some(password_from_stdin()?)
                    } else {
                        None
                    },
                };
                emit(context.format, &client.create_user(&request).await?)
            }
            UserCommand::List => emit(context.format, &client.list_users().await?),
            UserCommand::Get { name } => emit(context.format, &client.get_user(&name).await?),
            UserCommand::Delete { name } => {
                client.delete_user(&name).await?;
                emit(
                    context.format,
                    &Deleted {
                        deleted: Subject::User { name },
                    },
                )
            }
            UserCommand::Passwd { name, current } => {
                let current_password = if current {
                    Some(password_from_stdin()?)
                } else {
                    None
                };
                let request = UpdateUserRequest {
                    current_password,
                    ..updated(Some(password_from_stdin()?), None)
                };
                emit(context.format, &client.update_user(&name, &request).await?)
            }
            UserCommand::Disable { name } => emit(
                context.format,
                &client
                    .update_user(&name, &updated(None, Some(true)))
                    .await?,
            ),
            UserCommand::Enable { name } => emit(
                context.format,
                &client
                    .update_user(&name, &updated(None, Some(false)))
                    .await?,
            ),
        }
    }
}

/// `arca role` subcommands.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Grant a role to a user or service account
    Grant {
        /// viewer, contributor or admin
        role: Role,
        /// The user or service account
        #[arg(long)]
        user: String,
        /// Only on this registry [default: everywhere]
        #[arg(long)]
        registry: Option<String>,
    },
    /// Take a granted role away
    Revoke {
        /// viewer, contributor or admin
        role: Role,
        /// The user or service account
        #[arg(long)]
        user: String,
        /// The registry it was granted on [default: the global grant]
        #[arg(long)]
        registry: Option<String>,
    },
    /// List a user's roles
    List {
        /// The user or service account
        #[arg(long)]
        user: String,
    },
}

/// A user's grants, for `arca role list`.
#[derive(Debug, serde::Serialize)]
struct Grants {
    user: String,
    grants: Vec<Grant>,
}

impl Tabular for Grants {
    fn table(&self) -> String {
        table(
            &["ROLE", "REGISTRY"],
            self.grants.iter().map(|grant| {
                vec![
                    grant.role.to_string(),
                    grant
                        .registry
                        .clone()
                        .unwrap_or_else(|| "(all)".to_string()),
                ]
            }),
        )
    }
}

impl RoleCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        let (user, grant, give) = match self {
            RoleCommand::Grant {
                role,
                user,
                registry,
            } => (user, Grant { role, registry }, true),
            RoleCommand::Revoke {
                role,
                user,
                registry,
            } => (user, Grant { role, registry }, false),
            RoleCommand::List { user } => {
                let info = client.get_user(&user).await?;
                return emit(
                    context.format,
                    &Grants {
                        user: info.name,
                        grants: info.grants,
                    },
                );
            }
        };
        emit(
            context.format,
            &client.change_role(&user, &grant, give).await?,
        )
    }
}

impl Row for UserInfo {
    const HEADERS: &'static [&'static str] =
        &["NAME", "KIND", "PASSWORD", "DISABLED", "ROLES", "CREATED"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.kind.to_string(),
            if self.has_password { "set" } else { "-" }.to_string(),
            if self.disabled { "yes" } else { "no" }.to_string(),
            grants_cell(&self.grants),
            timestamp(self.created_at),
        ]
    }
}
