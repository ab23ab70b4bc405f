//! `arca login` and `arca whoami`: who the server takes the caller to be, and saving a checked server
//! and token for later commands.

use anyhow::{Result, bail};
use arca_protocol::api::WhoAmI;

use super::Context;
use super::config::Config;
use super::output::{Tabular, emit};

/// `arca whoami`.
pub async fn whoami(context: &Context) -> Result<()> {
    emit(context.format, &context.client.whoami().await?)
}

/// `arca login`: checks the token with `whoami`, then saves server and token.
pub async fn login(context: &Context) -> Result<()> {
    let client = &context.client;
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
        match &self.token {
            Some(token) => token.table(),
            None => "anonymous (no token)".to_string(),
        }
    }
}
