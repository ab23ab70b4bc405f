//! `arca search QUERY`: packages across every registry you may read, best first.

use anyhow::Result;
use arca_client::{SearchHit, SearchQuery, SearchResults};
use clap::Args;

use super::Context;
use super::output::{Row, Tabular, emit, table, timestamp};

/// `arca search` options.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words (typos forgiven, the last one a prefix) and filters among them: type:npm,
    /// registry:R, status:blocked|quarantined|warn|allowed|released, pushed:>2026-01-01, and
    /// any other key:value for metadata
    #[arg(required = true, num_args = 1..)]
    query: Vec<String>,
    /// Only this registry (a virtual one: its members)
    #[arg(long)]
    registry: Option<String>,
    /// At most this many packages (1 to 100)
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: u32,
    /// Skip this many (the next page)
    #[arg(long, default_value_t = 0)]
    offset: u32,
}

impl SearchArgs {
    /// Runs the command.
    pub async fn run(self, context: &Context) -> Result<()> {
        let query = SearchQuery {
            q: self.query.join(" "),
            registry: self.registry,
            limit: Some(self.limit),
            offset: Some(self.offset),
        };
        emit(context.format, &context.client.search(&query).await?)
    }
}

impl Row for SearchHit {
    const HEADERS: &'static [&'static str] = &[
        "REGISTRY",
        "TYPE",
        "PACKAGE",
        "VERSION",
        "STATUS",
        "PUSHED",
        "DESCRIPTION",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.registry.clone(),
            self.package_type.clone(),
            self.package.clone(),
            self.version.clone(),
            self.status.clone(),
            timestamp(self.pushed_at),
            self.description.chars().take(60).collect(),
        ]
    }
}

impl Tabular for SearchResults {
    fn table(&self) -> String {
        format!(
            "{}\n{} matching versions",
            table(SearchHit::HEADERS, self.hits.iter().map(Row::cells)),
            self.total_versions
        )
    }
}
