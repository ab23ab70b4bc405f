//! `arca gc run`: garbage collection of the node's unreferenced chunks, or a dry run of it.

use std::time::Duration;

use anyhow::Result;
use arca_client::{GcReport, GcRequest};
use clap::Subcommand;

use super::Context;
use super::output::{Row, bytes, emit};

/// `arca gc` subcommands.
#[derive(Debug, Subcommand)]
pub enum GcCommand {
    /// Remove the chunks no artifact references that are older than the grace period, on the node
    /// the command talks to (admin)
    Run {
        /// Count what would be removed, remove nothing
        #[arg(long)]
        dry_run: bool,
        /// Keep unreferenced chunks younger than this (`90s`, `30m`, `1h`, `0s`); it protects uploads
        /// that have not committed yet
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        grace: Duration,
    },
}

impl GcCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        match self {
            GcCommand::Run { dry_run, grace } => {
                let request = GcRequest {
                    dry_run,
                    grace_seconds: grace.as_secs(),
                };
                emit(context.format, &context.client.run_gc(&request).await?)
            }
        }
    }
}

impl Row for GcReport {
    const HEADERS: &'static [&'static str] = &[
        "SCANNED",
        "REFERENCED",
        "REMOVED",
        "FREED",
        "KEPT IN GRACE",
        "TRASH PURGED",
        "TRASH RESTORED",
        "DRY RUN",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.scanned.to_string(),
            self.referenced.to_string(),
            self.removed.to_string(),
            bytes(self.removed_bytes),
            self.kept_in_grace.to_string(),
            self.purged.to_string(),
            self.restored.to_string(),
            self.dry_run.to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;

    fn parse(args: &[&str]) -> Option<(bool, Duration)> {
        match Cli::try_parse_from(args).ok()?.command {
            Command::Gc(GcCommand::Run { dry_run, grace }) => Some((dry_run, grace)),
            _ => None,
        }
    }

    #[test]
    fn grace_is_a_humantime_duration_with_an_hour_by_default() {
        let secs = Duration::from_secs;
        assert_eq!(parse(&["arca", "gc", "run"]), Some((false, secs(3600))));
        assert_eq!(
            parse(&["arca", "gc", "run", "--grace", "30s", "--dry-run"]),
            Some((true, secs(30)))
        );
        assert_eq!(
            parse(&["arca", "gc", "run", "--grace", "0s"]),
            Some((false, secs(0)))
        );
        assert_eq!(parse(&["arca", "gc", "run", "--grace", "soon"]), None);
    }
}
