//! `arca registry`: create, list, get and delete registries, their metadata, and (through
//! [`super::configure`]) configuring package managers to use them.

use anyhow::Result;
use arca_protocol::api::{CreateRegistryRequest, RegistryInfo};
use arca_protocol::{MetadataTarget, PackageType};
use clap::{Args, Subcommand};

use super::Context;
use super::configure::ConfigureCommand;
use super::metadata::MetadataCommand;
use super::output::{Deleted, Row, Subject, emit, timestamp};

/// `arca registry` subcommands.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Create a registry
    Create {
        /// Registry name
        name: String,
        /// Package type: GENERIC, DOCKER, HELM, NPM, PYPI, MAVEN, GO, CARGO or NUGET
        #[arg(long, value_name = "TYPE")]
        package_type: PackageType,
        /// Free text for humans
        #[arg(long, default_value = "")]
        description: String,
        /// Refuse overwrites of existing versions
        #[arg(long)]
        immutable: bool,
        /// Serve reads without a token
        #[arg(long)]
        allow_anonymous_read: bool,
        /// Allow released versions to be deployed again (Maven)
        #[arg(long)]
        allow_redeploy: bool,
    },
    /// List registries
    List,
    /// Show one registry
    Get {
        /// Registry name
        name: String,
    },
    /// Delete a registry and everything in it
    Delete {
        /// Registry name
        name: String,
    },
    /// Set, show or delete a registry's metadata
    #[command(subcommand)]
    Metadata(MetadataCommand<RegistryTarget>),
    /// Configure npm, pip or Maven to use a registry with this server and token
    #[command(subcommand)]
    Configure(ConfigureCommand),
}

/// The flag naming a registry for `registry metadata`.
#[derive(Debug, Args)]
pub struct RegistryTarget {
    /// Registry name
    #[arg(long)]
    registry: String,
}

impl From<RegistryTarget> for MetadataTarget {
    fn from(target: RegistryTarget) -> Self {
        MetadataTarget::Registry {
            registry: target.registry,
        }
    }
}

impl RegistryCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        match self {
            RegistryCommand::Create {
                name,
                package_type,
                description,
                immutable,
                allow_anonymous_read,
                allow_redeploy,
            } => {
                let request = CreateRegistryRequest {
                    name,
                    package_type,
                    description,
                    immutable,
                    allow_anonymous_read,
                    allow_redeploy,
                };
                emit(context.format, &client.create_registry(&request).await?)
            }
            RegistryCommand::List => emit(context.format, &client.list_registries().await?),
            RegistryCommand::Get { name } => {
                emit(context.format, &client.get_registry(&name).await?)
            }
            RegistryCommand::Delete { name } => {
                client.delete_registry(&name).await?;
                emit(
                    context.format,
                    &Deleted {
                        deleted: Subject::Registry { registry: name },
                    },
                )
            }
            RegistryCommand::Metadata(command) => command.run(context).await,
            RegistryCommand::Configure(command) => command.run(context).await,
        }
    }
}

impl Row for RegistryInfo {
    const HEADERS: &'static [&'static str] = &[
        "NAME",
        "TYPE",
        "IMMUTABLE",
        "ANONYMOUS READ",
        "PACKAGES",
        "CREATED",
        "DESCRIPTION",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.package_type.to_string(),
            self.immutable.to_string(),
            self.allow_anonymous_read.to_string(),
            self.package_count.to_string(),
            timestamp(self.created_at),
            self.description.clone(),
        ]
    }
}
