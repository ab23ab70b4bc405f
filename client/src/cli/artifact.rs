//! `arca artifact`: list, get, delete and copy packages and versions, their metadata, and (through
//! [`super::transfer`]) pushing and pulling files.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use arca_protocol::api::{
    Deployment, PackageInfo, PackageSummary, Page, PageQuery, ResolvedVersion, VersionInfo,
};
use arca_protocol::{MetadataTarget, PackageType};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::Context;
use super::metadata::MetadataCommand;
use super::output::{Deleted, Row, Subject, Tabular, bytes, emit, table, timestamp};
use super::transfer::{PullCommand, PushCommand};

/// `arca artifact` subcommands.
#[derive(Debug, Subcommand)]
pub enum ArtifactCommand {
    /// List packages of every type (with their registry's type), one page at a time
    List {
        /// Only this registry's packages
        #[arg(long)]
        registry: Option<String>,
        /// Page number, from 1
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        page: u64,
        /// Packages per page (1-1000)
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
        page_size: u64,
        /// Continue after the page that printed this cursor (instead of --page)
        #[arg(long, conflicts_with = "page")]
        cursor: Option<String>,
    },
    /// Show a package and its versions, or with --version one version and its files
    Get(ArtifactRef),
    /// Upload a file
    #[command(subcommand)]
    Push(PushCommand),
    /// Download a file
    #[command(subcommand)]
    Pull(PullCommand),
    /// Delete a package with all its versions, or with --version one version
    Delete(ArtifactRef),
    /// Copy a version into another registry
    Copy {
        /// The version to copy
        #[arg(value_name = "SRC_REGISTRY/PACKAGE/VERSION")]
        source: String,
        /// The registry to copy it into
        #[arg(value_name = "DEST_REGISTRY")]
        destination: String,
    },
    /// The one version a tag, a version, `latest` or a range picks, among versions with the given
    /// labels that the firewall and quarantine let out: what a pipeline should deploy
    Resolve {
        /// Registry name
        #[arg(long)]
        registry: String,
        /// Package name
        #[arg(long)]
        package: String,
        /// A tag, a version, `latest`, or a range (`^1.2`, `>=1.0,<2`)
        #[arg(long, default_value = "latest")]
        version: String,
        /// Only versions whose metadata holds KEY:VALUE (repeatable)
        #[arg(long, value_name = "KEY:VALUE")]
        label: Vec<String>,
    },
    /// Record that a version was deployed to an environment, or list where it was
    #[command(subcommand)]
    Deployment(DeploymentCommand),
    /// Usage figures: downloads and bytes per registry and site with the most downloaded packages;
    /// with --registry that registry's; with --package one package's versions, days and consumers;
    /// with --idle the versions nobody downloaded for --days
    Stats(super::stats::StatsArgs),
    /// Set, show or delete a package's or version's metadata
    #[command(subcommand)]
    Metadata(MetadataCommand<ArtifactTarget>),
    /// Quarantine a version: it can no longer be downloaded, copied or promoted (admin)
    Quarantine(super::firewall_admin::QuarantineArgs),
    /// Release a version from quarantine, overriding a BLOCKED firewall verdict (admin)
    Release(super::firewall_admin::QuarantineArgs),
}

/// `arca artifact deployment` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// Record a deployment of a version (who and when are recorded with it)
    Record {
        #[command(flatten)]
        version: DeployedVersion,
        /// The environment deployed to (prod, eu-staging, ...)
        #[arg(long = "env")]
        environment: String,
    },
    /// The version's last deployment to each environment
    List(DeployedVersion),
}

/// The version a deployment is of.
#[derive(Debug, Args)]
pub struct DeployedVersion {
    /// Registry name
    #[arg(long)]
    registry: String,
    /// Package name
    #[arg(long)]
    package: String,
    /// Version
    #[arg(long)]
    version: String,
}

/// A package, or one of its versions, named by a positional package and flags.
#[derive(Debug, Args)]
pub struct ArtifactRef {
    /// Package name
    package: String,
    /// Registry name
    #[arg(long)]
    registry: String,
    /// One version of the package
    #[arg(long)]
    version: Option<String>,
}

/// A package, or one of its versions, named by flags (for `artifact metadata`).
#[derive(Debug, Args)]
pub struct ArtifactTarget {
    /// Registry name
    #[arg(long)]
    registry: String,
    /// Package name
    #[arg(long)]
    package: String,
    /// One version of the package
    #[arg(long)]
    version: Option<String>,
}

impl From<ArtifactTarget> for MetadataTarget {
    fn from(target: ArtifactTarget) -> Self {
        match target.version {
            Some(version) => MetadataTarget::Version {
                registry: target.registry,
                package: target.package,
                version,
            },
            None => MetadataTarget::Package {
                registry: target.registry,
                package: target.package,
            },
        }
    }
}

impl ArtifactCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        match self {
            ArtifactCommand::List {
                registry,
                page,
                page_size,
                cursor,
            } => {
                let query = PageQuery { page, page_size };
                let listing = client
                    .list_artifacts(registry.as_deref(), query, cursor.as_deref())
                    .await?;
                let types: HashMap<String, PackageType> = client
                    .list_registries()
                    .await?
                    .into_iter()
                    .map(|info| (info.name, info.package_type))
                    .collect();
                let listing = Page {
                    items: listing
                        .items
                        .into_iter()
                        .map(|summary| ListedPackage {
                            package_type: types.get(&summary.registry).copied(),
                            summary,
                        })
                        .collect(),
                    page: listing.page,
                    page_size: listing.page_size,
                    total: listing.total,
                    next_cursor: listing.next_cursor,
                };
                emit(context.format, &listing)
            }
            ArtifactCommand::Get(ArtifactRef {
                package,
                registry,
                version,
            }) => match version {
                Some(version) => {
                    let info = client.get_version(&registry, &package, &version).await?;
                    emit(context.format, &info)
                }
                None => emit(
                    context.format,
                    &client.get_package(&registry, &package).await?,
                ),
            },
            ArtifactCommand::Push(command) => command.run(context).await,
            ArtifactCommand::Pull(command) => command.run(context).await,
            ArtifactCommand::Delete(ArtifactRef {
                package,
                registry,
                version,
            }) => {
                let deleted = match version {
                    Some(version) => {
                        client.delete_version(&registry, &package, &version).await?;
                        Subject::Version {
                            registry,
                            package,
                            version,
                        }
                    }
                    None => {
                        client.delete_package(&registry, &package).await?;
                        Subject::Package { registry, package }
                    }
                };
                emit(context.format, &Deleted { deleted })
            }
            ArtifactCommand::Copy {
                source,
                destination,
            } => {
                let (registry, package, version) = parse_version_path(&source)?;
                let copy = client
                    .copy_version(registry, package, version, &destination)
                    .await?;
                emit(context.format, &copy)
            }
            ArtifactCommand::Resolve {
                registry,
                package,
                version,
                label,
            } => emit(
                context.format,
                &client
                    .resolve(&registry, &package, &version, &label)
                    .await?,
            ),
            ArtifactCommand::Deployment(DeploymentCommand::Record {
                version: v,
                environment,
            }) => emit(
                context.format,
                &Deployments(vec![
                    client
                        .record_deployment(&v.registry, &v.package, &v.version, &environment)
                        .await?,
                ]),
            ),
            ArtifactCommand::Deployment(DeploymentCommand::List(v)) => emit(
                context.format,
                &Deployments(
                    client
                        .list_deployments(&v.registry, &v.package, &v.version)
                        .await?,
                ),
            ),
            ArtifactCommand::Stats(args) => args.run(context).await,
            ArtifactCommand::Metadata(command) => command.run(context).await,
            ArtifactCommand::Quarantine(args) => args.run(context, false).await,
            ArtifactCommand::Release(args) => args.run(context, true).await,
        }
    }
}

/// `REGISTRY/PACKAGE/VERSION` -> its parts: the registry is the first segment, the version the last,
/// the package everything between (it may contain '/').
fn parse_version_path(text: &str) -> Result<(&str, &str, &str)> {
    text.split_once('/')
        .and_then(|(registry, rest)| {
            let (package, version) = rest.rsplit_once('/')?;
            [registry, package, version]
                .iter()
                .all(|part| !part.is_empty())
                .then_some((registry, package, version))
        })
        .with_context(|| format!("invalid version {text:?}: expected REGISTRY/PACKAGE/VERSION"))
}

/// A package as `artifact list` shows it: the API's summary and its registry's package type (`None`
/// when the registry went away between the two requests).
#[derive(Debug, Serialize)]
struct ListedPackage {
    #[serde(flatten)]
    summary: PackageSummary,
    package_type: Option<PackageType>,
}

impl Row for ListedPackage {
    const HEADERS: &'static [&'static str] = &[
        "REGISTRY",
        "TYPE",
        "PACKAGE",
        "LATEST VERSION",
        "VERSIONS",
        "SIZE",
        "UPDATED",
        "METADATA",
        "ORIGIN",
        "LAST ACCESS",
    ];

    fn cells(&self) -> Vec<String> {
        let summary = &self.summary;
        let metadata: Vec<String> = summary
            .metadata
            .iter()
            .map(|(key, value)| format!("{key}:{value}"))
            .collect();
        vec![
            summary.registry.clone(),
            self.package_type
                .map(|package_type| package_type.to_string())
                .unwrap_or_default(),
            summary.name.clone(),
            summary.latest_version.clone().unwrap_or_default(),
            summary.version_count.to_string(),
            bytes(summary.size),
            timestamp(summary.updated_at),
            metadata.join(", "),
            summary.origin.clone().unwrap_or_default(),
            summary.last_access.map(timestamp).unwrap_or_default(),
        ]
    }
}

impl Tabular for PackageInfo {
    fn table(&self) -> String {
        let versions = self.versions.iter().map(|version| {
            vec![
                version.version.clone(),
                version.tags.join(", "),
                version.files.len().to_string(),
                bytes(version.size),
                timestamp(version.updated_at),
            ]
        });
        format!(
            "package {} in registry {}\n{}",
            self.name,
            self.registry,
            table(&["VERSION", "TAGS", "FILES", "SIZE", "UPDATED"], versions)
        )
    }
}

/// Deployment records, as a table.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Deployments(Vec<Deployment>);

impl Tabular for Deployments {
    fn table(&self) -> String {
        table(
            &["ENVIRONMENT", "DEPLOYED", "BY"],
            self.0.iter().map(|deployment| {
                vec![
                    deployment.environment.clone(),
                    timestamp(deployment.at),
                    deployment.by.clone(),
                ]
            }),
        )
    }
}

impl Tabular for ResolvedVersion {
    fn table(&self) -> String {
        let files = self.files.iter().map(|file| {
            vec![
                file.name.clone(),
                bytes(file.size),
                file.sha256.to_hex(),
                file.url.clone(),
            ]
        });
        let tags = if self.tags.is_empty() {
            String::new()
        } else {
            format!(" (tags: {})", self.tags.join(", "))
        };
        format!(
            "{} {}{tags} from registry {}\n{}",
            self.package,
            self.version,
            self.member,
            table(&["FILE", "SIZE", "SHA256", "URL"], files)
        )
    }
}

impl Tabular for VersionInfo {
    fn table(&self) -> String {
        let files = self.files.iter().map(|file| {
            vec![
                file.name.clone(),
                bytes(file.size),
                file.sha256.to_hex(),
                timestamp(file.created_at),
            ]
        });
        let tags = if self.tags.is_empty() {
            String::new()
        } else {
            format!(" (tags: {})", self.tags.join(", "))
        };
        let mut text = format!(
            "version {} of package {} in registry {}{tags}: {} file(s), {}\n{}",
            self.version,
            self.package,
            self.registry,
            self.files.len(),
            bytes(self.size),
            table(&["FILE", "SIZE", "SHA256", "CREATED"], files)
        );
        for (label, entries) in [
            ("metadata", &self.metadata),
            ("attributes", &self.attributes),
        ] {
            if entries.is_empty() {
                continue;
            }
            let rows = entries
                .iter()
                .map(|(key, value)| vec![key.clone(), shortened(value)]);
            text.push_str(&format!("\n{label}\n{}", table(&["KEY", "VALUE"], rows)));
        }
        text
    }
}

/// A value cut to one line of at most 80 characters for tables (`--format json` shows it whole).
fn shortened(value: &str) -> String {
    let line = value.lines().next().unwrap_or_default();
    if line.chars().count() > 80 || line.len() < value.len() {
        format!("{}…", line.chars().take(79).collect::<String>())
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_paths_keep_slashes_in_the_package() {
        assert_eq!(
            parse_version_path("reg/a/b/c/1.0").expect("valid"),
            ("reg", "a/b/c", "1.0")
        );
        assert_eq!(
            parse_version_path("reg/pkg/1.0").expect("valid"),
            ("reg", "pkg", "1.0")
        );
        for bad in ["reg/pkg", "reg//1.0", "/pkg/1.0", "reg/pkg/", "reg"] {
            assert!(
                parse_version_path(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }
}
