//! `arca events`: the changes (pushes, deletions, tag moves, quarantine and release, registry and
//! admin changes) after a cursor, as CloudEvents; `--follow` keeps asking (long polls) and prints
//! each event as it comes.

use anyhow::Result;
use arca_protocol::api::{CloudEvent, EventList, EventsQuery};
use clap::Args;

use super::Context;
use super::output::{Format, Row, Tabular, emit, table};

/// `arca events` options.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events after this cursor (the `next` an earlier answer gave; default: from the oldest
    /// kept)
    #[arg(long)]
    after: Option<u64>,
    /// Only events of this registry
    #[arg(long)]
    registry: Option<String>,
    /// At most this many events an answer (1 to 1000)
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
    /// Keep asking, printing events as they come (one JSON object a line with --format json)
    #[arg(long)]
    follow: bool,
}

impl EventsArgs {
    /// Runs the command.
    pub async fn run(self, context: &Context) -> Result<()> {
        let mut query = EventsQuery {
            after: self.after,
            limit: Some(self.limit),
            registry: self.registry,
            wait_seconds: None,
        };
        if !self.follow {
            return emit(context.format, &context.client.events(&query).await?);
        }
        query.wait_seconds = Some(25);
        loop {
            let answer = context.client.events(&query).await?;
            for event in &answer.events {
                match context.format {
                    Format::Json | Format::Yaml => println!("{}", serde_json::to_string(event)?),
                    Format::Table => println!("{}", event.cells().join("  ")),
                }
            }
            query.after = Some(answer.next);
        }
    }
}

impl Row for CloudEvent {
    const HEADERS: &'static [&'static str] = &["ID", "TIME", "TYPE", "SOURCE", "SUBJECT", "ACTOR"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.time.clone(),
            self.kind.clone(),
            self.source.clone(),
            self.subject.clone(),
            self.data.actor.clone(),
        ]
    }
}

impl Tabular for EventList {
    fn table(&self) -> String {
        format!(
            "{}\nnext: {}",
            table(CloudEvent::HEADERS, self.events.iter().map(Row::cells)),
            self.next
        )
    }
}
