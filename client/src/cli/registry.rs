//! `arca registry`: create, list, get and delete registries, their replication policies, metadata
//! and signing keys, and (through [`super::configure`]) configuring package managers to use them.

use anyhow::{Context as _, Result};
use std::io::Write as _;

use arca_protocol::api::{CreateRegistryRequest, RegistryInfo, SigningKeyInfo};
use arca_protocol::{
    MetadataTarget, PackageType, RegistryChanges, RegistryKind, RegistrySettings, ReplicaSites,
    ReplicationMode, ReplicationPolicy, Upstream,
};
use clap::{Args, Subcommand};

use super::Context;
use super::cleanup::CleanupCommand;
use super::configure::ConfigureCommand;
use super::firewall::FirewallCommand;
use super::metadata::MetadataCommand;
use super::output::{Deleted, Row, Subject, emit, timestamp};

/// `arca registry` subcommands.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Create a registry
    Create {
        /// Registry name
        name: String,
        /// Package type: GENERIC, DOCKER (OCI images and Helm charts), NPM, PYPI, MAVEN, CARGO, HELM, GO,
        /// RUBYGEMS, COMPOSER, CONDA, NUGET, HUGGINGFACE, DEBIAN or RPM
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
        /// Sites that hold full copies: all, or a comma-separated list of sites
        #[arg(long, value_name = "all|SITE,...", default_value_t)]
        replicate_to: ReplicaSites,
        /// When those sites copy new files: eager (on commit) or on-demand (on first read)
        #[arg(long, value_name = "eager|on-demand", default_value_t)]
        replication: ReplicationMode,
        /// Make a remote (caching proxy) registry of this upstream URL
        #[arg(long, value_name = "URL", conflicts_with = "members")]
        upstream: Option<String>,
        /// User for the upstream
        #[arg(long, value_name = "USER", requires = "upstream")]
        upstream_user: Option<String>,
        /// Environment variable holding the upstream password or token
        #[arg(long, value_name = "VAR", requires = "upstream")]
        upstream_password_env: Option<String>,
        /// PEM CA certificates the upstream's certificate comes from (a private CA), trusted for
        /// this upstream besides the node's store
        #[arg(long, value_name = "FILE", requires = "upstream")]
        upstream_ca_file: Option<std::path::PathBuf>,
        /// Nodes that must hold a push's bytes before it is acknowledged (default 1; 2 suits a
        /// cluster of three sites)
        #[arg(long, value_name = "N")]
        min_copies: Option<u32>,
        /// Seconds cached upstream metadata (packuments, index pages, tags) stays fresh
        #[arg(
            long,
            value_name = "SECONDS",
            default_value_t = 300,
            requires = "upstream"
        )]
        metadata_ttl: u64,
        /// Make a virtual registry over these registries, tried in this order
        #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
        members: Vec<String>,
        /// The local member a virtual registry's publishes go to
        #[arg(long, value_name = "REGISTRY", requires = "members")]
        publish_to: Option<String>,
        /// Record every download in the audit trail, not only changes
        #[arg(long)]
        audit_downloads: bool,
    },
    /// List registries
    List,
    /// Show one registry
    Get {
        /// Registry name
        name: String,
    },
    /// Replace a registry's replication policy
    Replication {
        /// Registry name
        name: String,
        /// Sites that hold full copies: all, or a comma-separated list of sites
        #[arg(long, value_name = "all|SITE,...")]
        replicate_to: ReplicaSites,
        /// When those sites copy new files: eager (on commit) or on-demand (on first read)
        #[arg(long, value_name = "eager|on-demand")]
        replication: ReplicationMode,
    },
    /// Change the settings kept beside a registry (those not given stay as they are)
    Settings {
        /// Registry name
        name: String,
        /// Nodes that must hold a push's bytes before it is acknowledged (1: only the node that
        /// took it)
        #[arg(long, value_name = "N")]
        min_copies: Option<u32>,
        /// PEM CA certificates a remote registry's upstream is trusted by
        #[arg(long, value_name = "FILE", conflicts_with = "clear_upstream_ca")]
        upstream_ca_file: Option<std::path::PathBuf>,
        /// Trust the upstream through the node's certificate stores only again
        #[arg(long)]
        clear_upstream_ca: bool,
    },
    /// Change a registry's description, flags, upstream or members (those not given stay as
    /// they are)
    Update {
        /// Registry name
        name: String,
        /// Free text for humans
        #[arg(long)]
        description: Option<String>,
        /// Refuse overwrites of existing versions
        #[arg(long, value_name = "true|false")]
        immutable: Option<bool>,
        /// Serve reads without a token
        #[arg(long, value_name = "true|false")]
        allow_anonymous_read: Option<bool>,
        /// Allow released versions to be deployed again (Maven)
        #[arg(long, value_name = "true|false")]
        allow_redeploy: Option<bool>,
        /// Record every download in the audit trail, not only changes
        #[arg(long, value_name = "true|false")]
        audit_downloads: Option<bool>,
        /// A remote registry's new upstream URL
        #[arg(long, value_name = "URL")]
        upstream: Option<String>,
        /// User for the upstream
        #[arg(long, value_name = "USER", requires = "upstream")]
        upstream_user: Option<String>,
        /// Environment variable holding the upstream password or token (without it, the stored
        /// one is kept)
        #[arg(long, value_name = "VAR", requires = "upstream")]
        upstream_password_env: Option<String>,
        /// Seconds cached upstream metadata stays fresh (default: as it is)
        #[arg(long, value_name = "SECONDS", requires = "upstream")]
        metadata_ttl: Option<u64>,
        /// A virtual registry's new members, tried in this order
        #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
        members: Option<Vec<String>>,
        /// The local member a virtual registry's publishes go to ("" for none)
        #[arg(long, value_name = "REGISTRY")]
        publish_to: Option<String>,
    },
    /// Delete a registry and everything in it
    Delete {
        /// Registry name
        name: String,
    },
    /// Set, show or delete a registry's metadata
    #[command(subcommand)]
    Metadata(MetadataCommand<RegistryTarget>),
    /// Configure npm, pip, Maven or cargo to use a registry with this server and token
    #[command(subcommand)]
    Configure(ConfigureCommand),
    /// Show or rotate the OpenPGP key a Debian or RPM registry signs its metadata with
    #[command(subcommand, name = "signing-key")]
    SigningKey(SigningKeyCommand),
    /// Set, show and run a registry's cleanup policy
    #[command(subcommand)]
    Cleanup(CleanupCommand),
    /// Audit dependencies against a registry's dependency firewall
    #[command(subcommand, name = "fw", visible_alias = "firewall")]
    Fw(FirewallCommand),
}

/// `arca registry signing-key get|rotate`.
#[derive(Debug, Subcommand)]
pub enum SigningKeyCommand {
    /// Show a registry's signing key (its fingerprint, or with --public the ASCII-armoured public
    /// key, for apt's `signed-by` or dnf's `gpgkey`)
    Get {
        /// Registry name
        registry: String,
        /// Print the ASCII-armoured public key alone
        #[arg(long)]
        public: bool,
    },
    /// Make a new signing key for a registry; clients need its public key from then on
    Rotate {
        /// Registry name
        registry: String,
    },
}

impl SigningKeyCommand {
    async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        let (key, public) = match self {
            SigningKeyCommand::Get { registry, public } => {
                (client.signing_key(&registry).await?, public)
            }
            SigningKeyCommand::Rotate { registry } => {
                (client.rotate_signing_key(&registry).await?, false)
            }
        };
        if public {
            write!(std::io::stdout().lock(), "{}", key.public_key)?;
            return Ok(());
        }
        emit(context.format, &key)
    }
}

impl Row for SigningKeyInfo {
    const HEADERS: &'static [&'static str] = &["FINGERPRINT", "CREATED"];

    fn cells(&self) -> Vec<String> {
        vec![self.fingerprint.clone(), timestamp(self.created_at)]
    }
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
                replicate_to,
                replication,
                upstream,
                upstream_user,
                upstream_password_env,
                upstream_ca_file,
                min_copies,
                metadata_ttl,
                members,
                publish_to,
                audit_downloads,
            } => {
                let upstream_ca_pem = upstream_ca_file
                    .map(|file| {
                        std::fs::read_to_string(&file)
                            .with_context(|| format!("--upstream-ca-file {}", file.display()))
                    })
                    .transpose()?;
                let password = upstream_password(upstream_password_env)?;
                let kind = match (&upstream, members.is_empty()) {
                    (Some(_), _) => RegistryKind::Remote,
                    (None, false) => RegistryKind::Virtual,
                    (None, true) => RegistryKind::Local,
                };
                let request = CreateRegistryRequest {
                    name,
                    package_type,
                    description,
                    immutable,
                    allow_anonymous_read,
                    allow_redeploy,
                    replication: ReplicationPolicy {
                        sites: replicate_to,
                        mode: replication,
                    },
                    kind,
                    upstream: upstream.map(|url| Upstream {
                        url,
                        username: upstream_user,
                        password,
                        metadata_ttl_seconds: metadata_ttl,
                    }),
                    members,
                    publish_to,
                    audit_downloads,
                    upstream_ca_pem,
                    min_copies,
                };
                emit(context.format, &client.create_registry(&request).await?)
            }
            RegistryCommand::List => emit(context.format, &client.list_registries().await?),
            RegistryCommand::Get { name } => {
                emit(context.format, &client.get_registry(&name).await?)
            }
            RegistryCommand::Replication {
                name,
                replicate_to,
                replication,
            } => {
                let policy = ReplicationPolicy {
                    sites: replicate_to,
                    mode: replication,
                };
                emit(
                    context.format,
                    &client.set_replication(&name, &policy).await?,
                )
            }
            RegistryCommand::Settings {
                name,
                min_copies,
                upstream_ca_file,
                clear_upstream_ca,
            } => {
                let current = client.get_registry(&name).await?;
                let upstream_ca_pem = match (upstream_ca_file, clear_upstream_ca) {
                    (Some(file), _) => Some(
                        std::fs::read_to_string(&file)
                            .with_context(|| format!("--upstream-ca-file {}", file.display()))?,
                    ),
                    (None, true) => None,
                    (None, false) => current.upstream.and_then(|upstream| upstream.ca_pem),
                };
                let settings = RegistrySettings {
                    upstream_ca_pem,
                    min_copies: Some(min_copies.unwrap_or(current.min_copies)),
                };
                emit(
                    context.format,
                    &client.set_registry_settings(&name, &settings).await?,
                )
            }
            RegistryCommand::Update {
                name,
                description,
                immutable,
                allow_anonymous_read,
                allow_redeploy,
                audit_downloads,
                upstream,
                upstream_user,
                upstream_password_env,
                metadata_ttl,
                members,
                publish_to,
            } => {
                let upstream = match upstream {
                    Some(url) => {
                        let password = upstream_password(upstream_password_env)?;
                        let metadata_ttl_seconds = match metadata_ttl {
                            Some(seconds) => seconds,
                            None => client
                                .get_registry(&name)
                                .await?
                                .upstream
                                .map_or(300, |upstream| upstream.metadata_ttl_seconds),
                        };
                        Some(Upstream {
                            url,
                            username: upstream_user,
                            password,
                            metadata_ttl_seconds,
                        })
                    }
                    None => None,
                };
                let changes = RegistryChanges {
                    description,
                    immutable,
                    allow_anonymous_read,
                    allow_redeploy,
                    audit_downloads,
                    upstream,
                    members,
                    publish_to,
                };
                emit(
                    context.format,
                    &client.update_registry(&name, &changes).await?,
                )
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
            RegistryCommand::SigningKey(command) => command.run(context).await,
            RegistryCommand::Cleanup(command) => command.run(context).await,
            RegistryCommand::Fw(command) => command.run(context).await,
        }
    }
}

impl Row for RegistryInfo {
    const HEADERS: &'static [&'static str] = &[
        "NAME",
        "TYPE",
        "KIND",
        "IMMUTABLE",
        "ANONYMOUS READ",
        "REPLICATION",
        "PACKAGES",
        "CREATED",
        "DESCRIPTION",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.package_type.to_string(),
            kind(self),
            self.immutable.to_string(),
            self.allow_anonymous_read.to_string(),
            replication(&self.replication),
            self.package_count.to_string(),
            timestamp(self.created_at),
            self.description.clone(),
        ]
    }
}

/// What a registry is, in one cell: `local`, `remote <- URL`, `virtual [a, b] -> a`.
fn kind(registry: &RegistryInfo) -> String {
    match (registry.kind, &registry.upstream) {
        (RegistryKind::Remote, Some(upstream)) => format!("remote <- {}", upstream.url),
        (RegistryKind::Virtual, _) => {
            let members = registry.members.join(", ");
            match &registry.publish_to {
                Some(target) => format!("virtual [{members}] -> {target}"),
                None => format!("virtual [{members}]"),
            }
        }
        (kind, _) => kind.to_string(),
    }
}

/// A replication policy in one cell: `all/eager`, `eu,us/on-demand`.
fn replication(policy: &ReplicationPolicy) -> String {
    format!("{}/{}", policy.sites, policy.mode)
}

/// The upstream password held by the environment variable `--upstream-password-env` names.
fn upstream_password(variable: Option<String>) -> Result<Option<String>> {
    variable
        .map(|var| {
            std::env::var(&var)
                .with_context(|| format!("--upstream-password-env {var}: the variable is not set"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::output::Tabular;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<RegistryCommand, clap::Error> {
        let cli = Cli::try_parse_from([&["arca", "registry"], args].concat())?;
        match cli.command {
            Command::Registry(command) => Ok(command),
            other => panic!("parsed as {other:?}"),
        }
    }

    /// The replication flags of `registry create` (with `--package-type GENERIC`).
    fn created(flags: &[&str]) -> Result<(ReplicaSites, ReplicationMode), clap::Error> {
        let args = [&["create", "files", "--package-type", "GENERIC"], flags].concat();
        match parse(&args)? {
            RegistryCommand::Create {
                replicate_to,
                replication,
                ..
            } => Ok((replicate_to, replication)),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn create_replicates_everywhere_eagerly_unless_told() {
        assert_eq!(
            created(&[]).expect("defaults"),
            (ReplicaSites::All, ReplicationMode::Eager)
        );
        assert_eq!(
            created(&["--replicate-to", "eu,us", "--replication", "on-demand"]).expect("valid"),
            (
                ReplicaSites::Only(vec!["eu".into(), "us".into()]),
                ReplicationMode::OnDemand
            )
        );
        assert_eq!(
            created(&["--replicate-to", "all"]).expect("valid").0,
            ReplicaSites::All
        );
        for bad in [
            &["--replication", "lazy"][..],
            &["--replicate-to", ","],
            &["--replicate-to", ""],
        ] {
            assert!(created(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn replication_needs_both_flags() {
        match parse(&[
            "replication",
            "files",
            "--replicate-to",
            "eu",
            "--replication",
            "eager",
        ]) {
            Ok(RegistryCommand::Replication {
                name,
                replicate_to,
                replication,
            }) => {
                assert_eq!(name, "files");
                assert_eq!(replicate_to, ReplicaSites::Only(vec!["eu".into()]));
                assert_eq!(replication, ReplicationMode::Eager);
            }
            other => panic!("parsed as {other:?}"),
        }
        for incomplete in [
            &["replication", "files", "--replicate-to", "eu"][..],
            &["replication", "files", "--replication", "eager"],
            &[
                "replication",
                "--replicate-to",
                "eu",
                "--replication",
                "eager",
            ],
        ] {
            assert!(
                parse(incomplete).is_err(),
                "{incomplete:?} should be refused"
            );
        }
    }

    fn registry(replication: ReplicationPolicy) -> RegistryInfo {
        RegistryInfo {
            name: "files".into(),
            package_type: PackageType::Generic,
            description: String::new(),
            immutable: false,
            allow_anonymous_read: false,
            allow_redeploy: false,
            created_at: 0,
            package_count: 0,
            metadata: Default::default(),
            replication,
            kind: RegistryKind::Local,
            upstream: None,
            members: Vec::new(),
            publish_to: None,
            audit_downloads: false,
            min_copies: 1,
        }
    }

    #[test]
    fn remote_and_virtual_registries_are_created_from_their_flags() {
        let remote = parse(&[
            "create",
            "mirror",
            "--package-type",
            "npm",
            "--upstream",
            "https://registry.example",
            "--upstream-user",
            "ci",
            "--metadata-ttl",
            "60",
        ])
        .expect("remote");
        let RegistryCommand::Create {
            upstream,
            upstream_user,
            metadata_ttl,
            members,
            ..
        } = remote
        else {
            panic!("create");
        };
        assert_eq!(upstream.as_deref(), Some("https://registry.example"));
        assert_eq!(upstream_user.as_deref(), Some("ci"));
        assert_eq!(metadata_ttl, 60);
        assert!(members.is_empty());
        let virtual_registry = parse(&[
            "create",
            "all",
            "--package-type",
            "npm",
            "--members",
            "hosted,mirror",
            "--publish-to",
            "hosted",
        ])
        .expect("virtual");
        let RegistryCommand::Create {
            members,
            publish_to,
            ..
        } = virtual_registry
        else {
            panic!("create");
        };
        assert_eq!(members, ["hosted", "mirror"]);
        assert_eq!(publish_to.as_deref(), Some("hosted"));
        for refused in [
            &[
                "create",
                "x",
                "--package-type",
                "npm",
                "--upstream",
                "https://a",
                "--members",
                "b",
            ][..],
            &["create", "x", "--package-type", "npm", "--publish-to", "b"],
            &[
                "create",
                "x",
                "--package-type",
                "npm",
                "--upstream-user",
                "u",
            ],
        ] {
            assert!(parse(refused).is_err(), "{refused:?} should be refused");
        }
        let mut info = registry(ReplicationPolicy::default());
        info.kind = RegistryKind::Virtual;
        info.members = vec!["hosted".into(), "mirror".into()];
        info.publish_to = Some("hosted".into());
        assert_eq!(kind(&info), "virtual [hosted, mirror] -> hosted");
    }

    #[test]
    fn registries_show_their_replication_policy() {
        let column = RegistryInfo::HEADERS
            .iter()
            .position(|header| *header == "REPLICATION")
            .expect("a REPLICATION column");
        let default = registry(ReplicationPolicy::default());
        assert_eq!(default.cells().len(), RegistryInfo::HEADERS.len());
        assert_eq!(default.cells()[column], "all/eager");
        let some = registry(ReplicationPolicy {
            sites: ReplicaSites::Only(vec!["eu".into(), "us".into()]),
            mode: ReplicationMode::OnDemand,
        });
        assert_eq!(some.cells()[column], "eu,us/on-demand");
        let text = vec![default, some].table();
        assert!(
            text.contains("REPLICATION") && text.contains("eu,us/on-demand"),
            "{text}"
        );
    }
}
