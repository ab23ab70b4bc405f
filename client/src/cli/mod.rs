//! The command tree of `arca`: global flags, the top-level subcommands, where the server URL and token
//! come from (flag, environment, then the file `arca login` wrote), and dispatch to the command modules.

mod artifact;
mod audit;
mod cleanup;
mod cluster;
mod config;
mod configure;
mod events;
mod firewall;
mod firewall_admin;
mod gc;
mod metadata;
mod output;
mod registry;
mod search;
mod session;
mod stats;
mod storage;
mod token;
mod transfer;
mod user;
mod webhook;

use anyhow::{Result, bail};
use arca_client::Client;
use clap::{Parser, Subcommand};

use self::config::Config;
use self::output::Format;

/// The server used when neither a flag, the environment nor `arca login` names one.
const DEFAULT_SERVER: &str = "http://127.0.0.1:7070";

/// Command-line client of an Arca artifact registry.
#[derive(Debug, Parser)]
#[command(name = "arca", version)]
pub struct Cli {
    /// Server URL [default: the one saved by `arca login`, else http://127.0.0.1:7070]
    #[arg(long, global = true, env = "ARCA_SERVER", value_name = "URL")]
    server: Option<String>,

    /// API token [default: the one saved by `arca login`]
    #[arg(long, global = true, env = "ARCA_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a server URL and token (--server, --token), or log in with a user name and password, and
    /// save them for later commands
    Login(session::LoginArgs),
    /// Show who the server takes the caller to be: user, token and effective grants
    Whoami,
    /// Create, list, inspect, delete and configure clients for registries
    #[command(subcommand, visible_alias = "reg")]
    Registry(registry::RegistryCommand),
    /// List, inspect, push, pull, copy and delete artifacts
    #[command(subcommand, visible_alias = "art")]
    Artifact(artifact::ArtifactCommand),
    /// Create, list, rotate and revoke API tokens
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Create, list, change and delete users and service accounts (admin)
    #[command(subcommand)]
    User(user::UserCommand),
    /// Grant, revoke and list users' roles, globally or per registry
    #[command(subcommand)]
    Role(user::RoleCommand),
    /// Show the cluster, create join tokens for new nodes, promote and remove nodes
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Query the audit trail (admin)
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Remove chunks no artifact references any more (admin)
    #[command(subcommand)]
    Gc(gc::GcCommand),
    /// Where the node keeps its chunks; move local chunks into its bucket (admin)
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    /// The changes (pushes, deletions, tag moves, quarantine) after a cursor, as CloudEvents;
    /// --follow to wait for new ones
    Events(events::EventsArgs),
    /// Find packages across every registry you may read (names, descriptions, keywords, files,
    /// tags, metadata), with filters such as type:npm or status:blocked
    Search(search::SearchArgs),
    /// Webhooks: events posted as signed CloudEvents as they happen, delivery logs, tests
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// The dependency firewall's vulnerability database
    #[command(subcommand)]
    Fw(firewall_admin::FwCommand),
}

/// What every command runs with: a client of the chosen server and the output format.
pub struct Context {
    /// Client of the chosen server, with the chosen token.
    pub client: Client,
    /// How to print results.
    pub format: Format,
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let Cli {
        server,
        token,
        format,
        command,
    } = cli;
    if let Command::Login(args) = &command
        && args.username.is_none()
        && token.is_none()
    {
        bail!(
            "`arca login` needs a token (--token or ARCA_TOKEN) or a user name (--username with --password-stdin)"
        );
    }
    let context = Context {
        client: connect(server, token)?,
        format,
    };
    match command {
        Command::Login(args) => session::login(&context, args).await,
        Command::Whoami => session::whoami(&context).await,
        Command::Registry(command) => command.run(&context).await,
        Command::Artifact(command) => command.run(&context).await,
        Command::Token(command) => command.run(&context).await,
        Command::User(command) => command.run(&context).await,
        Command::Role(command) => command.run(&context).await,
        Command::Cluster(command) => command.run(&context).await,
        Command::Audit(command) => command.run(&context).await,
        Command::Gc(command) => command.run(&context).await,
        Command::Storage(command) => command.run(&context).await,
        Command::Events(args) => args.run(&context).await,
        Command::Search(args) => args.run(&context).await,
        Command::Webhook(command) => command.run(&context).await,
        Command::Fw(command) => command.run(&context).await,
    }
}

/// A client of the server and token given by flag or environment, completed from the saved
/// configuration, with the default server last. The saved token is only ever sent to the saved server.
fn connect(server: Option<String>, token: Option<String>) -> Result<Client> {
    let saved = if server.is_none() || token.is_none() {
        Config::load()?
    } else {
        Config::default()
    };
    let server = server
        .or_else(|| saved.server.clone())
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let token = token.or_else(|| {
        let same_server = |saved: &str| saved.trim_end_matches('/') == server.trim_end_matches('/');
        saved
            .token
            .filter(|_| saved.server.as_deref().is_none_or(same_server))
    });
    Ok(Client::new(&server, token)?)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "arca",
            "art",
            "get",
            "pkg",
            "--registry",
            "r",
            "--version",
            "1",
            "--format",
            "json",
        ])
        .expect("parses");
        assert_eq!(cli.format, Format::Json);
        let cli = Cli::try_parse_from(["arca", "--format", "yaml", "reg", "list"]).expect("parses");
        assert_eq!(cli.format, Format::Yaml);
    }
}
