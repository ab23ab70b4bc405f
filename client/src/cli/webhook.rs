//! `arca webhook create|list|show|enable|disable|delete|test|deliveries`: webhooks the leader
//! posts events to as signed CloudEvents, their delivery logs, and test deliveries.

use anyhow::{Result, bail};
use arca_client::{WebhookDelivery, WebhookInfo, WebhookRequest};
use clap::Subcommand;

use super::Context;
use super::output::{Row, emit, timestamp};

/// `arca webhook` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Create a webhook: events from now on are posted to its URL (admin, or a registry's admin
    /// for a webhook of that registry)
    Create {
        /// Its name
        #[arg(long)]
        name: String,
        /// Where events are posted (http or https)
        #[arg(long)]
        url: String,
        /// The signing secret (whsec_<base64>, or 16 to 256 bytes of text); default: the node
        /// makes one and prints it once
        #[arg(long, env = "ARCA_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Only events of this registry (default: every registry, and changes of none)
        #[arg(long)]
        registry: Option<String>,
        /// Only events of these types, comma-separated (artifact.pushed, artifact.deleted,
        /// artifact.quarantined, artifact.released, artifact.deployed, artifact.cleaned, tag.moved,
        /// registry.changed, admin.changed); default: all
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
    },
    /// The webhooks you may manage
    List,
    /// One webhook
    Show {
        /// Its name
        name: String,
    },
    /// Enable a webhook again (its failures are forgotten; delivery resumes where it stopped)
    Enable {
        /// Its name
        name: String,
    },
    /// Stop delivering to a webhook (events keep queueing until it is enabled again)
    Disable {
        /// Its name
        name: String,
    },
    /// Delete a webhook and its delivery log
    Delete {
        /// Its name
        name: String,
    },
    /// Post a test event now and show how it went (fails when the receiver does not take it)
    Test {
        /// Its name
        name: String,
    },
    /// The latest delivery attempts, newest first
    Deliveries {
        /// Its name
        name: String,
        /// How many (1 to 1000)
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
}

impl WebhookCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        match self {
            WebhookCommand::Create {
                name,
                url,
                secret,
                registry,
                events,
            } => {
                let request = WebhookRequest {
                    name,
                    url,
                    secret,
                    registry,
                    events,
                };
                let created = client.create_webhook(&request).await?;
                if let Some(secret) = &created.secret {
                    eprintln!(
                        "The webhook's signing secret (shown once; receivers verify with it):\n{secret}"
                    );
                }
                emit(context.format, &created)
            }
            WebhookCommand::List => emit(context.format, &client.list_webhooks().await?),
            WebhookCommand::Show { name } => emit(context.format, &client.webhook(&name).await?),
            WebhookCommand::Enable { name } => {
                emit(context.format, &client.enable_webhook(&name, true).await?)
            }
            WebhookCommand::Disable { name } => {
                emit(context.format, &client.enable_webhook(&name, false).await?)
            }
            WebhookCommand::Delete { name } => {
                client.delete_webhook(&name).await?;
                eprintln!("deleted webhook {name}");
                Ok(())
            }
            WebhookCommand::Test { name } => {
                let delivery = client.test_webhook(&name).await?;
                emit(context.format, &delivery)?;
                if !delivery.succeeded() {
                    bail!(
                        "the receiver did not take the test event: {}",
                        delivery.error.as_deref().unwrap_or("no 2xx answer")
                    );
                }
                Ok(())
            }
            WebhookCommand::Deliveries { name, limit } => emit(
                context.format,
                &client.webhook_deliveries(&name, limit).await?,
            ),
        }
    }
}

impl Row for WebhookInfo {
    const HEADERS: &'static [&'static str] = &[
        "NAME", "URL", "REGISTRY", "EVENTS", "ENABLED", "CURSOR", "FAILURES", "NOTE",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.url.clone(),
            self.registry.clone().unwrap_or_else(|| "*".into()),
            if self.events.is_empty() {
                "*".into()
            } else {
                self.events.join(",")
            },
            self.enabled.to_string(),
            self.cursor.to_string(),
            self.failures.to_string(),
            self.disabled_reason.clone().unwrap_or_default(),
        ]
    }
}

impl Row for WebhookDelivery {
    const HEADERS: &'static [&'static str] =
        &["AT", "EVENT", "TYPE", "STATUS", "MS", "NODE", "ERROR"];

    fn cells(&self) -> Vec<String> {
        vec![
            timestamp(self.at),
            self.event_id.clone(),
            self.event_type.clone(),
            self.status.map_or_else(|| "-".into(), |s| s.to_string()),
            self.duration_ms.to_string(),
            self.node_id.to_string(),
            self.error.clone().unwrap_or_default(),
        ]
    }
}
