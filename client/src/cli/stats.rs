//! `arca artifact stats`: usage figures (downloads, bytes, consumers, idle versions) from
//! `GET /api/v1/insights...`.

use anyhow::{Result, bail};
use arca_client::{
    IdleVersions, InsightsQuery, NamedUsage, PackageInsights, TopPackages, UsageFigures,
    UsageOverview,
};
use clap::Args;
use serde::Serialize;

use super::Context;
use super::output::{Tabular, bytes, emit, table, timestamp};

/// `arca artifact stats` options.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only this registry
    #[arg(long)]
    registry: Option<String>,
    /// One package of --registry: its versions, days and consumers
    #[arg(long, requires = "registry")]
    package: Option<String>,
    /// Over the last this many days, today included (1 to 366); with --idle, not downloaded for
    /// more than this many days
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    days: u32,
    /// The versions of --registry nobody downloaded (nor pushed) for more than --days, longest idle
    /// first: what a cleanup rule not_downloaded_days would delete
    #[arg(long, requires = "registry", conflicts_with = "package")]
    idle: bool,
    /// At most this many entries (1 to 1000)
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
}

/// The whole cluster's figures: per registry and site, and the most downloaded packages.
#[derive(Debug, Serialize)]
struct Overview {
    #[serde(flatten)]
    overview: UsageOverview,
    top_packages: TopPackages,
}

impl StatsArgs {
    /// Runs the command.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        let query = InsightsQuery {
            registry: self.registry.clone(),
            package: self.package.clone(),
            days: Some(self.days),
            limit: Some(self.limit),
        };
        match (&self.registry, &self.package, self.idle) {
            (Some(_), Some(_), false) => {
                emit(context.format, &client.package_insights(&query).await?)
            }
            (Some(_), None, true) => emit(context.format, &client.idle_versions(&query).await?),
            (Some(_), None, false) => emit(context.format, &client.top_packages(&query).await?),
            (None, None, false) => {
                let overview = Overview {
                    overview: client.usage_overview(&query).await?,
                    top_packages: client.top_packages(&query).await?,
                };
                emit(context.format, &overview)
            }
            _ => bail!("--package and --idle need --registry, and exclude each other"),
        }
    }
}

fn last(figures: &UsageFigures) -> String {
    figures.last_download_at.map(timestamp).unwrap_or_default()
}

fn usage_table(title: &str, rows: &[NamedUsage]) -> String {
    table(
        &[title, "DOWNLOADS", "BYTES", "LAST DOWNLOAD"],
        rows.iter().map(|row| {
            vec![
                row.name.clone(),
                row.figures.downloads.to_string(),
                bytes(row.figures.bytes),
                last(&row.figures),
            ]
        }),
    )
}

impl Tabular for TopPackages {
    fn table(&self) -> String {
        format!(
            "most downloaded, {} to {}\n{}",
            self.from,
            self.to,
            table(
                &["REGISTRY", "PACKAGE", "DOWNLOADS", "BYTES", "LAST DOWNLOAD"],
                self.packages.iter().map(|package| {
                    vec![
                        package.registry.clone(),
                        package.package.clone(),
                        package.figures.downloads.to_string(),
                        bytes(package.figures.bytes),
                        last(&package.figures),
                    ]
                }),
            )
        )
    }
}

impl Tabular for Overview {
    fn table(&self) -> String {
        let mut text = format!(
            "{} to {}\n{}",
            self.overview.from,
            self.overview.to,
            usage_table("REGISTRY", &self.overview.registries)
        );
        if !self.overview.sites.is_empty() {
            text.push_str(&format!("\n{}", usage_table("SITE", &self.overview.sites)));
        }
        format!("{text}\n{}", self.top_packages.table())
    }
}

impl Tabular for PackageInsights {
    fn table(&self) -> String {
        let versions = table(
            &[
                "VERSION",
                "DOWNLOADS",
                "SINCE PUSHED",
                "BYTES",
                "LAST DOWNLOAD",
            ],
            self.versions.iter().map(|version| {
                vec![
                    version.version.clone(),
                    version.recent.downloads.to_string(),
                    version.total.downloads.to_string(),
                    bytes(version.recent.bytes),
                    last(&version.total),
                ]
            }),
        );
        let days = table(
            &["DAY", "DOWNLOADS", "BYTES"],
            self.daily.iter().map(|day| {
                vec![
                    day.date.clone(),
                    day.downloads.to_string(),
                    bytes(day.bytes),
                ]
            }),
        );
        let mut text = format!(
            "{} in {}, {} to {}\n{versions}\n{days}",
            self.package, self.registry, self.from, self.to
        );
        if !self.consumers.is_empty() {
            let consumers = table(
                &[
                    "CONSUMER",
                    "DOWNLOADS",
                    "BYTES",
                    "LAST VERSION",
                    "LAST DOWNLOAD",
                ],
                self.consumers.iter().map(|consumer| {
                    vec![
                        consumer.consumer.clone(),
                        consumer.figures.downloads.to_string(),
                        bytes(consumer.figures.bytes),
                        consumer.last_version.clone().unwrap_or_default(),
                        last(&consumer.figures),
                    ]
                }),
            );
            text.push_str(&format!("\n{consumers}"));
        }
        text
    }
}

impl Tabular for IdleVersions {
    fn table(&self) -> String {
        let mut text = format!(
            "versions of {} not downloaded for more than {} days\n{}",
            self.registry,
            self.days,
            table(
                &["PACKAGE", "VERSION", "LAST DOWNLOAD", "PUSHED"],
                self.versions.iter().map(|version| {
                    vec![
                        version.package.clone(),
                        version.version.clone(),
                        version
                            .last_download_at
                            .map(timestamp)
                            .unwrap_or_else(|| "never".to_string()),
                        timestamp(version.created_at),
                    ]
                }),
            )
        );
        if self.truncated {
            text.push_str("\n(more: raise --limit)");
        }
        text
    }
}
