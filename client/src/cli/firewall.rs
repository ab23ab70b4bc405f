//! `arca registry fw`: the dependency firewall from the command line. `audit` reads a lockfile or
//! manifest ([`arca_client::lockfiles`]), asks the registry for its verdict on every exact
//! coordinate, prints one row per package (dependencies without an exact version as UNRESOLVED) and
//! fails when any package is BLOCKED, so CI can gate on it.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use arca_client::lockfiles::{self, Ecosystem, LockfileKind, Unresolved};
use arca_client::{FirewallCheck, FirewallCheckRequest, FirewallStatus};
use arca_protocol::PackageType;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::Context;
use super::output::{Tabular, emit, table};

/// How many coordinates one check request carries; longer lockfiles take several requests.
const CHECK_BATCH: usize = 500;

/// `arca registry fw` subcommands.
#[derive(Debug, Subcommand)]
pub enum FirewallCommand {
    /// Check a lockfile's or manifest's packages against a registry's firewall policy; exits with 1
    /// when any is BLOCKED
    Audit(AuditArgs),
    /// Show a version's verdict: status, scan, when evaluated, reasons, quarantine state
    Explain(super::firewall_admin::ExplainArgs),
    /// Set or show a registry's firewall policy
    #[command(subcommand)]
    Policy(super::firewall_admin::PolicyCommand),
}

impl FirewallCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        match self {
            FirewallCommand::Audit(args) => args.run(context).await,
            FirewallCommand::Explain(args) => args.run(context).await,
            FirewallCommand::Policy(command) => command.run(context).await,
        }
    }
}

/// The flags of `arca registry fw audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Lockfile or manifest: package-lock.json, npm-shrinkwrap.json, pnpm-lock.yaml, yarn.lock,
    /// package.json, requirements*.txt, pyproject.toml, Pipfile.lock, poetry.lock, pom.xml,
    /// build.gradle or build.gradle.kts
    #[arg(long, value_name = "PATH")]
    file: PathBuf,
    /// Registry whose firewall policy applies
    #[arg(long)]
    registry: String,
    /// Read the file as this kind (one of the file names above) whatever it is called
    #[arg(long, value_name = "KIND")]
    kind: Option<LockfileKind>,
}

impl AuditArgs {
    async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        let text = tokio::fs::read_to_string(&self.file)
            .await
            .with_context(|| format!("reading {}", self.file.display()))?;
        let lockfile = match self.kind {
            Some(kind) => lockfiles::parse_as(kind, &self.file, &text),
            None => lockfiles::parse(&self.file, &text),
        }?;
        let registry = client.get_registry(&self.registry).await?;
        let expected = package_type(lockfile.ecosystem);
        if registry.package_type != expected {
            bail!(
                "registry {} holds {} packages but {} lists {expected} packages",
                self.registry,
                registry.package_type,
                self.file.display()
            );
        }
        let mut results = Vec::with_capacity(lockfile.packages.len());
        for batch in lockfile.packages.chunks(CHECK_BATCH) {
            let request = FirewallCheckRequest {
                packages: batch.to_vec(),
            };
            results.extend(
                client
                    .firewall_check(&self.registry, &request)
                    .await?
                    .results,
            );
        }
        let report = AuditReport::new(
            self.registry,
            self.file.display().to_string(),
            lockfile.kind,
            results,
            lockfile.unresolved,
            lockfile.notes,
        );
        emit(context.format, &report)?;
        if report.summary.blocked > 0 {
            bail!(
                "{} of {} packages in {} are BLOCKED by registry {}'s firewall",
                report.summary.blocked,
                report.results.len(),
                report.file,
                report.registry
            );
        }
        Ok(())
    }
}

/// The registry package type whose packages a lockfile's ecosystem names.
fn package_type(ecosystem: Ecosystem) -> PackageType {
    match ecosystem {
        Ecosystem::Npm => PackageType::Npm,
        Ecosystem::Pypi => PackageType::Pypi,
        Ecosystem::Maven => PackageType::Maven,
    }
}

/// What `fw audit` prints: the verdicts, the dependencies it could not check, and the counts.
#[derive(Debug, Serialize)]
struct AuditReport {
    /// The registry whose policy applied.
    registry: String,
    /// The audited file.
    file: String,
    /// What kind of file it was read as.
    kind: LockfileKind,
    /// One verdict per exact coordinate.
    results: Vec<FirewallCheck>,
    /// Dependencies without an exact version.
    unresolved: Vec<Unresolved>,
    /// What the parser skipped on purpose.
    notes: Vec<String>,
    /// How many of each.
    summary: Summary,
}

/// The counts of an audit.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
struct Summary {
    allowed: usize,
    warn: usize,
    blocked: usize,
    unresolved: usize,
}

impl AuditReport {
    fn new(
        registry: String,
        file: String,
        kind: LockfileKind,
        results: Vec<FirewallCheck>,
        unresolved: Vec<Unresolved>,
        notes: Vec<String>,
    ) -> AuditReport {
        let mut summary = Summary {
            unresolved: unresolved.len(),
            ..Summary::default()
        };
        for result in &results {
            match result.verdict.status {
                FirewallStatus::Allowed => summary.allowed += 1,
                FirewallStatus::Warn => summary.warn += 1,
                FirewallStatus::Blocked => summary.blocked += 1,
            }
        }
        AuditReport {
            registry,
            file,
            kind,
            results,
            unresolved,
            notes,
            summary,
        }
    }
}

impl Tabular for AuditReport {
    fn table(&self) -> String {
        let checked = self.results.iter().map(|result| {
            let reasons: Vec<&str> = result
                .verdict
                .reasons
                .iter()
                .map(|reason| reason.message.as_str())
                .collect();
            vec![
                result.name.clone(),
                result.version.clone(),
                result.verdict.status.to_string(),
                reasons.join("; "),
            ]
        });
        let unresolved = self.unresolved.iter().map(|dep| {
            vec![
                dep.name.clone(),
                dep.spec.clone(),
                "UNRESOLVED".to_string(),
                dep.reason.clone(),
            ]
        });
        let mut text = table(
            &["PACKAGE", "VERSION", "STATUS", "REASON"],
            checked.chain(unresolved),
        );
        for note in &self.notes {
            text.push_str(&format!("\nnote: {note}"));
        }
        let Summary {
            allowed,
            warn,
            blocked,
            unresolved,
        } = self.summary;
        text.push_str(&format!(
            "\n{} ({}) against registry {}: {allowed} allowed, {warn} warn, {blocked} blocked, \
             {unresolved} unresolved",
            self.file, self.kind, self.registry
        ));
        text
    }
}

#[cfg(test)]
mod tests {
    use arca_client::{FirewallReason, FirewallVerdict};
    use clap::Parser;

    use super::*;
    use crate::cli::registry::RegistryCommand;
    use crate::cli::{Cli, Command};

    fn check(name: &str, status: FirewallStatus, message: &str) -> FirewallCheck {
        FirewallCheck {
            name: name.into(),
            version: "1.0.0".into(),
            verdict: FirewallVerdict {
                status,
                reasons: (!message.is_empty())
                    .then(|| FirewallReason {
                        rule: "vulnerability".into(),
                        status,
                        message: message.into(),
                        advisory: Some("GHSA-test".into()),
                    })
                    .into_iter()
                    .collect(),
                scan_id: "scan".into(),
                evaluated_at: 0,
            },
        }
    }

    #[test]
    fn audit_parses_under_registry_fw() {
        let cli = Cli::try_parse_from([
            "arca",
            "registry",
            "fw",
            "audit",
            "--file",
            "web/package-lock.json",
            "--registry",
            "npm-remote",
            "--kind",
            "yarn.lock",
        ])
        .expect("parses");
        let Command::Registry(RegistryCommand::Fw(FirewallCommand::Audit(args))) = cli.command
        else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.file, PathBuf::from("web/package-lock.json"));
        assert_eq!(args.registry, "npm-remote");
        assert_eq!(args.kind, Some(LockfileKind::YarnLock));
        let refused = Cli::try_parse_from([
            "arca",
            "registry",
            "fw",
            "audit",
            "--file",
            "x",
            "--registry",
            "r",
            "--kind",
            "Gemfile",
        ]);
        assert!(refused.is_err(), "an unknown --kind is refused");
        assert!(
            Cli::try_parse_from(["arca", "registry", "fw", "audit", "--file", "x"]).is_err(),
            "--registry is required"
        );
    }

    #[test]
    fn report_counts_and_shows_every_dependency() {
        let report = AuditReport::new(
            "npm".into(),
            "package.json".into(),
            LockfileKind::PackageJson,
            vec![
                check("lodash", FirewallStatus::Blocked, "GHSA-test (HIGH): bad"),
                check("ms", FirewallStatus::Allowed, ""),
                check("debug", FirewallStatus::Warn, "too new"),
            ],
            vec![Unresolved {
                name: "react".into(),
                spec: "^18.2.0".into(),
                reason: "a range".into(),
            }],
            vec!["line 3: -r other.txt not followed".into()],
        );
        assert_eq!(
            report.summary,
            Summary {
                allowed: 1,
                warn: 1,
                blocked: 1,
                unresolved: 1
            }
        );
        let text = report.table();
        for expected in [
            "PACKAGE",
            "BLOCKED",
            "GHSA-test (HIGH): bad",
            "UNRESOLVED",
            "^18.2.0",
            "note: line 3: -r other.txt not followed",
            "1 allowed, 1 warn, 1 blocked, 1 unresolved",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
        let json = serde_json::to_value(&report).expect("serialises");
        assert_eq!(json["results"][0]["verdict"]["status"], "BLOCKED");
        assert_eq!(json["unresolved"][0]["spec"], "^18.2.0");
        assert_eq!(json["kind"], "package.json");
        assert_eq!(json["summary"]["blocked"], 1);
    }
}
