//! The dependency firewall's administration from the command line: `arca registry fw explain` and
//! `arca registry fw policy set|get`, `arca fw db import|status` (OSV advisories from a file, a
//! directory or an OSV `.zip`), and `arca artifact quarantine|release`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use arca_client::{
    AdvisoryDbStatus, AdvisoryImportReport, FirewallExplanation, FirewallPolicy, OsvAdvisory,
};
use clap::{Args, Subcommand};

use super::Context;
use super::output::{Tabular, emit, table, timestamp as time};

/// How many advisories one import request carries.
const IMPORT_BATCH: usize = 5_000;

/// The version a firewall command is about.
#[derive(Debug, Args)]
pub struct VersionTarget {
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

/// `arca registry fw explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    target: VersionTarget,
}

impl ExplainArgs {
    /// Prints the verdict in force, its scan, its reasons and the quarantine state.
    pub async fn run(self, context: &Context) -> Result<()> {
        let explanation = context
            .client
            .firewall_explain(
                &self.target.registry,
                &self.target.package,
                &self.target.version,
            )
            .await?;
        emit(context.format, &Explanation(explanation))
    }
}

/// `arca registry fw policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Replace a registry's firewall policy from a JSON file (admin); its versions are evaluated again
    Set {
        /// Registry name
        name: String,
        /// JSON file: {"vulnerabilities": {"min_severity": "HIGH", "action": "block"}, ...}
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Show a registry's firewall policy
    Get {
        /// Registry name
        name: String,
    },
}

impl PolicyCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        let policy = match self {
            PolicyCommand::Set { name, file } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let policy: FirewallPolicy = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a firewall policy", file.display()))?;
                client.set_firewall_policy(&name, &policy).await?
            }
            PolicyCommand::Get { name } => client.get_firewall_policy(&name).await?,
        };
        emit(context.format, &Policy(policy))
    }
}

/// `arca fw` subcommands.
#[derive(Debug, Subcommand)]
pub enum FwCommand {
    /// The vulnerability database
    #[command(subcommand)]
    Db(DbCommand),
}

/// `arca fw db` subcommands.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Import OSV advisories (admin): a JSON file, a directory of them, or an OSV .zip
    Import {
        /// File, directory or .zip
        path: PathBuf,
    },
    /// Show how many advisories the database holds, per ecosystem
    Status,
}

impl FwCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        match self {
            FwCommand::Db(DbCommand::Import { path }) => {
                let advisories = read_advisories(&path)?;
                if advisories.is_empty() {
                    bail!("{} holds no OSV advisories", path.display());
                }
                let mut total = AdvisoryImportReport::default();
                let mut remaining = advisories;
                while !remaining.is_empty() {
                    let rest = remaining.split_off(remaining.len().min(IMPORT_BATCH));
                    let report = client.import_advisories(remaining).await?;
                    total.added += report.added;
                    total.replaced += report.replaced;
                    total.unchanged += report.unchanged;
                    total.reevaluated += report.reevaluated;
                    remaining = rest;
                }
                emit(context.format, &ImportReport(total))
            }
            FwCommand::Db(DbCommand::Status) => emit(
                context.format,
                &DbStatus(client.advisory_db_status().await?),
            ),
        }
    }
}

/// `arca artifact quarantine|release`.
#[derive(Debug, Args)]
pub struct QuarantineArgs {
    #[command(flatten)]
    target: VersionTarget,
    /// Why (shown to clients whose downloads are refused, and in the audit trail)
    #[arg(long, default_value = "")]
    reason: String,
}

impl QuarantineArgs {
    /// Quarantines the version or, with `release`, releases it; prints the result.
    pub async fn run(self, context: &Context, release: bool) -> Result<()> {
        let explanation = context
            .client
            .set_quarantine(
                (
                    &self.target.registry,
                    &self.target.package,
                    &self.target.version,
                ),
                &self.reason,
                release,
            )
            .await?;
        emit(context.format, &Explanation(explanation))
    }
}

/// The OSV advisories in a JSON file (one advisory, or an array of them), every `.json` file of a
/// directory (recursively), or every `.json` entry of a `.zip`.
pub fn read_advisories(path: &Path) -> Result<Vec<OsvAdvisory>> {
    let mut advisories = Vec::new();
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            if entry.is_dir() || entry.extension().is_some_and(|e| e == "json" || e == "zip") {
                advisories.extend(read_advisories(&entry)?);
            }
        }
    } else if path.extension().is_some_and(|e| e == "zip") {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut archive = zip::ZipArchive::new(file)
            .with_context(|| format!("{} is not a zip archive", path.display()))?;
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index)?;
            let entry_name = entry.name()?.to_string();
            if !entry.is_file() || !entry_name.ends_with(".json") {
                continue;
            }
            let name = format!("{}:{entry_name}", path.display());
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .with_context(|| format!("reading {name}"))?;
            advisories.extend(parse_advisories(&name, &text)?);
        }
    } else {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        advisories.extend(parse_advisories(&path.display().to_string(), &text)?);
    }
    Ok(advisories)
}

fn parse_advisories(name: &str, text: &str) -> Result<Vec<OsvAdvisory>> {
    let value: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("{name} is not JSON"))?;
    let parsed = match value {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<Vec<OsvAdvisory>, _>>(),
        single => serde_json::from_value(single).map(|a| vec![a]),
    };
    parsed.with_context(|| format!("{name} is not an OSV advisory"))
}

/// How an explanation is shown.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Explanation(FirewallExplanation);

impl Tabular for Explanation {
    fn table(&self) -> String {
        let e = &self.0;
        let mut rows = vec![
            vec!["package".into(), format!("{}@{}", e.package, e.version)],
            vec!["registry".into(), e.registry.clone()],
            vec!["status".into(), e.verdict.status.to_string()],
            vec!["scan".into(), e.verdict.scan_id.clone()],
            vec!["evaluated".into(), time(e.verdict.evaluated_at)],
            vec![
                "stored".into(),
                if e.stored {
                    "yes"
                } else {
                    "no (evaluated now)"
                }
                .into(),
            ],
        ];
        if let Some(q) = &e.quarantine {
            rows.push(vec![
                "quarantined".into(),
                format!("by {} at {}: {}", q.by, time(q.at), q.reason),
            ]);
        }
        if let Some(r) = &e.release {
            rows.push(vec![
                "released".into(),
                format!("by {} at {}: {}", r.by, time(r.at), r.reason),
            ]);
        }
        rows.push(vec![
            "downloads".into(),
            e.blocked
                .clone()
                .map_or_else(|| "allowed".to_string(), |why| format!("refused: {why}")),
        ]);
        let reasons = table(
            &["RULE", "STATUS", "ADVISORY", "REASON"],
            e.verdict.reasons.iter().map(|r| {
                vec![
                    r.rule.clone(),
                    r.status.to_string(),
                    r.advisory.clone().unwrap_or_default(),
                    r.message.clone(),
                ]
            }),
        );
        format!("{}\n{reasons}", table(&["FIELD", "VALUE"], rows))
    }
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct Policy(FirewallPolicy);

impl Tabular for Policy {
    fn table(&self) -> String {
        serde_json::to_string_pretty(&self.0).unwrap_or_default()
    }
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct ImportReport(AdvisoryImportReport);

impl Tabular for ImportReport {
    fn table(&self) -> String {
        let r = &self.0;
        table(
            &["ADDED", "REPLACED", "UNCHANGED", "RE-EVALUATED"],
            [vec![
                r.added.to_string(),
                r.replaced.to_string(),
                r.unchanged.to_string(),
                r.reevaluated.to_string(),
            ]],
        )
    }
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct DbStatus(AdvisoryDbStatus);

impl Tabular for DbStatus {
    fn table(&self) -> String {
        let s = &self.0;
        let rows = s
            .ecosystems
            .iter()
            .map(|(ecosystem, count)| vec![ecosystem.clone(), count.to_string()]);
        format!(
            "{}\n{} advisories ({} withdrawn), last import {}",
            table(&["ECOSYSTEM", "ADVISORIES"], rows),
            s.advisories,
            s.withdrawn,
            s.last_import_at.map_or_else(|| "never".to_string(), time)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisories_come_from_files_arrays_directories_and_zips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = r#"{"id": "GHSA-1", "modified": "2021-01-01T00:00:00Z"}"#;
        let two = r#"[{"id": "GHSA-2", "modified": "2021-01-01T00:00:00Z"},
                      {"id": "GHSA-3", "modified": "2021-01-01T00:00:00Z"}]"#;
        std::fs::write(dir.path().join("a.json"), one).expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/b.json"), two).expect("write");
        std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
        let ids = |list: Vec<OsvAdvisory>| list.into_iter().map(|a| a.id).collect::<Vec<_>>();
        assert_eq!(
            ids(read_advisories(dir.path()).expect("read")),
            ["GHSA-1", "GHSA-2", "GHSA-3"]
        );
        let zip_path = dir.path().join("all.zip");
        {
            let file = std::fs::File::create(&zip_path).expect("create");
            let mut zip = zip::ZipWriter::new(file);
            let options = zip::write::SimpleFileOptions::default();
            zip.start_file("GHSA-1.json", options).expect("entry");
            std::io::Write::write_all(&mut zip, one.as_bytes()).expect("write");
            zip.finish().expect("finish");
        }
        assert_eq!(ids(read_advisories(&zip_path).expect("zip")), ["GHSA-1"]);
        std::fs::write(dir.path().join("bad.json"), r#"{"modified": "x"}"#).expect("write");
        let error = read_advisories(&dir.path().join("bad.json")).expect_err("no id");
        assert!(format!("{error:#}").contains("not an OSV advisory"));
    }
}
