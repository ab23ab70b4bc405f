//! `arca registry cleanup`: set and show a registry's cleanup policy, and run it (or a dry run).

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use arca_client::{CleanupPolicy, CleanupReport, CleanupRule};
use clap::{Args, Subcommand};

use super::Context;
use super::output::{Tabular, emit, table};

/// `arca registry cleanup` subcommands.
#[derive(Debug, Subcommand)]
pub enum CleanupCommand {
    /// Replace a registry's cleanup policy: from a JSON file, or one rule from flags (admin)
    Set {
        /// Registry name
        name: String,
        /// JSON file holding the policy: {"rules": [{"name": ..., "keep_last": 5, ...}]}
        #[arg(long, value_name = "FILE", conflicts_with = "rule")]
        file: Option<PathBuf>,
        #[command(flatten)]
        rule: RuleFlags,
    },
    /// Show a registry's cleanup policy
    Get {
        /// Registry name
        name: String,
    },
    /// Delete the versions the policy selects, or with --dry-run list them (admin)
    Run {
        /// Registry name
        name: String,
        /// List what would be deleted, delete nothing
        #[arg(long)]
        dry_run: bool,
    },
}

/// One rule given as flags.
#[derive(Debug, Args)]
pub struct RuleFlags {
    /// The rule's name (a policy of this one rule)
    #[arg(long, value_name = "NAME")]
    rule: Option<String>,
    /// Keep the newest N versions of each package
    #[arg(long, value_name = "N", requires = "rule")]
    keep_last: Option<u32>,
    /// Delete versions created longer ago than this (`30d`, or days)
    #[arg(long, value_name = "DAYS", value_parser = parse_days, requires = "rule")]
    older_than: Option<u32>,
    /// Delete versions not downloaded for this long (`90d`, or days)
    #[arg(long, value_name = "DAYS", value_parser = parse_days, requires = "rule")]
    not_downloaded: Option<u32>,
    /// Glob over package names
    #[arg(long, value_name = "PATTERN", default_value = "*", requires = "rule")]
    package: String,
    /// Glob over version names
    #[arg(long, value_name = "PATTERN", default_value = "*", requires = "rule")]
    version: String,
    /// Also delete versions a tag points at
    #[arg(long, requires = "rule")]
    include_tagged: bool,
    /// Keep versions a tag matching this glob points at (repeatable)
    #[arg(long, value_name = "PATTERN", requires = "rule")]
    keep_tag: Vec<String>,
    /// Keep versions with this key:value metadata (repeatable)
    #[arg(long, value_name = "KEY:VALUE", requires = "rule")]
    keep_metadata: Vec<String>,
}

impl RuleFlags {
    fn into_policy(self) -> Option<CleanupPolicy> {
        Some(CleanupPolicy {
            rules: vec![CleanupRule {
                name: self.rule?,
                package_pattern: self.package,
                version_pattern: self.version,
                keep_last: self.keep_last,
                older_than_days: self.older_than,
                not_downloaded_days: self.not_downloaded,
                keep_tagged: !self.include_tagged,
                keep_tags: self.keep_tag,
                keep_metadata: self.keep_metadata,
            }],
        })
    }
}

/// Days from `30d`, `30`, or a humantime duration of whole days (`4w`).
fn parse_days(text: &str) -> Result<u32, String> {
    if let Ok(days) = text.parse::<u32>() {
        return Ok(days);
    }
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    let secs = duration.as_secs();
    if secs % 86_400 != 0 || duration.subsec_nanos() != 0 {
        return Err(format!("{text} is not a whole number of days"));
    }
    u32::try_from(secs / 86_400).map_err(|_| format!("{text} is too long"))
}

impl CleanupCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        match self {
            CleanupCommand::Set { name, file, rule } => {
                let policy = match (file, rule.into_policy()) {
                    (Some(path), _) => {
                        let text = std::fs::read_to_string(&path)
                            .with_context(|| format!("reading {}", path.display()))?;
                        serde_json::from_str(&text).with_context(|| {
                            format!("{} is not a cleanup policy", path.display())
                        })?
                    }
                    (None, Some(policy)) => policy,
                    (None, None) => bail!("give the policy with --file, or one rule with --rule"),
                };
                emit(
                    context.format,
                    &client.set_cleanup_policy(&name, &policy).await?,
                )
            }
            CleanupCommand::Get { name } => {
                emit(context.format, &client.get_cleanup_policy(&name).await?)
            }
            CleanupCommand::Run { name, dry_run } => {
                emit(context.format, &client.run_cleanup(&name, dry_run).await?)
            }
        }
    }
}

impl Tabular for CleanupPolicy {
    fn table(&self) -> String {
        let days = |d: Option<u32>| d.map(|d| format!("{d}d")).unwrap_or_default();
        table(
            &[
                "RULE",
                "PACKAGE",
                "VERSION",
                "KEEP LAST",
                "OLDER THAN",
                "NOT DOWNLOADED",
                "KEEP TAGGED",
                "KEEP TAGS",
                "KEEP METADATA",
            ],
            self.rules.iter().map(|rule| {
                vec![
                    rule.name.clone(),
                    rule.package_pattern.clone(),
                    rule.version_pattern.clone(),
                    rule.keep_last.map(|n| n.to_string()).unwrap_or_default(),
                    days(rule.older_than_days),
                    days(rule.not_downloaded_days),
                    rule.keep_tagged.to_string(),
                    rule.keep_tags.join(", "),
                    rule.keep_metadata.join(", "),
                ]
            }),
        )
    }
}

impl Tabular for CleanupReport {
    fn table(&self) -> String {
        let rows = self.planned.iter().map(|planned| {
            let refused = self.refused.iter().find(|r| {
                r.planned.package == planned.package && r.planned.version == planned.version
            });
            let action = match refused {
                Some(refused) => format!("refused: {}", refused.refused),
                None if self.dry_run => "would delete".to_string(),
                None if self.deleted.contains(planned) => "deleted".to_string(),
                None => "kept".to_string(),
            };
            vec![
                planned.package.clone(),
                planned.version.clone(),
                planned.rule.clone(),
                planned.reason.clone(),
                action,
            ]
        });
        let summary = if self.dry_run {
            format!(
                "dry run of {}: {} version(s) would be deleted",
                self.registry,
                self.planned.len() - self.refused.len()
            )
        } else {
            format!(
                "{}: {} version(s) deleted, {} refused",
                self.registry,
                self.deleted.len(),
                self.refused.len()
            )
        };
        format!(
            "{}\n{summary}",
            table(&["PACKAGE", "VERSION", "RULE", "REASON", "ACTION"], rows)
        )
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::registry::RegistryCommand;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<CleanupCommand, clap::Error> {
        let cli = Cli::try_parse_from([&["arca", "registry", "cleanup"], args].concat())?;
        match cli.command {
            Command::Registry(RegistryCommand::Cleanup(command)) => Ok(command),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn days_accept_plain_numbers_and_whole_day_durations() {
        assert_eq!(parse_days("30"), Ok(30));
        assert_eq!(parse_days("30d"), Ok(30));
        assert_eq!(parse_days("2w"), Ok(14));
        assert!(parse_days("36h").is_err());
        assert!(parse_days("soon").is_err());
    }

    #[test]
    fn one_rule_from_flags() {
        let command = parse(&[
            "set",
            "files",
            "--rule",
            "trim",
            "--keep-last",
            "2",
            "--older-than",
            "30d",
            "--not-downloaded",
            "90d",
            "--package",
            "app-*",
            "--keep-metadata",
            "approved:true",
        ])
        .expect("parses");
        let CleanupCommand::Set { name, file, rule } = command else {
            panic!("not set");
        };
        assert_eq!(name, "files");
        assert!(file.is_none());
        let policy = rule.into_policy().expect("a rule");
        assert_eq!(
            policy.rules,
            vec![CleanupRule {
                name: "trim".into(),
                package_pattern: "app-*".into(),
                version_pattern: "*".into(),
                keep_last: Some(2),
                older_than_days: Some(30),
                not_downloaded_days: Some(90),
                keep_tagged: true,
                keep_tags: Vec::new(),
                keep_metadata: vec!["approved:true".into()],
            }]
        );
        assert!(parse(&["set", "files", "--keep-last", "2"]).is_err());
        assert!(parse(&["set", "files", "--file", "p.json", "--rule", "x"]).is_err());
        assert!(matches!(
            parse(&["run", "files", "--dry-run"]),
            Ok(CleanupCommand::Run { dry_run: true, .. })
        ));
    }
}
