//! `arca login` and `arca whoami`: who the server takes the caller to be, and saving a checked server
//! and token (given, or issued for a user name and password) for later commands.

use anyhow::{Result, bail};
use arca_client::Client;
use arca_protocol::api::WhoAmI;
use clap::Args;

use super::Context;
use super::config::Config;
use super::output::{Tabular, emit};
use super::token::grants_cell;
use super::user::password_from_stdin;

/// `arca login` options.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Log in as this user (instead of with --token): the server issues a 12-hour token
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password from the first line of standard input
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

/// `arca whoami`.
pub async fn whoami(context: &Context) -> Result<()> {
    emit(context.format, &context.client.whoami().await?)
}

/// `arca login`: with a user name, trades the password for a login token; checks the token with
/// `whoami`, then saves server and token.
pub async fn login(context: &Context, args: LoginArgs) -> Result<()> {
    let issued;
    let client = match &args.username {
        Some(username) => {
            let password = password_from_stdin()?;
            let token = context.client.login(username, &password).await?.token;
            issued = Client::new(context.client.server(), Some(token))?;
            &issued
        }
        None => &context.client,
    };
    let identity = client.whoami().await?;
    if identity.token.is_none() {
        bail!("{} did not recognise the token", client.server());
    }
    // Loading first refuses to overwrite a file that is not an `arca` configuration.
    let mut config = Config::load()?;
    config.server = Some(client.server().to_string());
    config.token = client.token().map(str::to_string);
    let path = config.save()?;
    emit(context.format, &identity)?;
    eprintln!(
        "logged in to {}; settings saved to {}",
        client.server(),
        path.display()
    );
    Ok(())
}

impl Tabular for WhoAmI {
    fn table(&self) -> String {
        let who = match (&self.user, &self.token) {
            (None, None) => return "anonymous (no token)".to_string(),
            (Some(user), _) => format!("user {user}"),
            (None, Some(_)) => "a token of its own".to_string(),
        };
        let token = self
            .token
            .as_ref()
            .map(|token| format!("\n{}", token.table()))
            .unwrap_or_default();
        format!("{who}, allowed: {}{token}", grants_cell(&self.grants))
    }
}
