//! `arca audit list`: the audit trail, newest first, filtered by time, caller, registry and action;
//! `arca audit export` (JSON lines, oldest first) and `arca audit retention`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use arca_protocol::api::{AuditList, AuditQuery};
use arca_protocol::model::{AuditEvent, AuditRetention};
use clap::Subcommand;
use futures::TryStreamExt;
use tokio::io::AsyncWriteExt;

use super::Context;
use super::output::{Row, Tabular, emit, table, timestamp};

/// `arca audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events (changes, and downloads of registries that audit them), newest first
    List {
        /// Only events since then: a duration before now (30m, 1h, 7d) or an RFC 3339 time
        #[arg(long, value_name = "DURATION|TIME")]
        since: Option<String>,
        /// Only events until then: a duration before now or an RFC 3339 time
        #[arg(long, value_name = "DURATION|TIME")]
        until: Option<String>,
        /// Only events of this caller: a token name, a token id, or `anonymous`
        #[arg(long)]
        actor: Option<String>,
        /// Only events addressing this registry
        #[arg(long)]
        registry: Option<String>,
        /// Only events whose action (method and route) contains this text, e.g. DELETE or /generic/
        #[arg(long)]
        action: Option<String>,
        /// At most this many events (1 to 1000)
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Write every event of a window to standard output, oldest first, one JSON object a line
    Export {
        /// Only events since then: a duration before now (30m, 1h, 7d) or an RFC 3339 time
        #[arg(long, value_name = "DURATION|TIME")]
        since: Option<String>,
        /// Only events until then: a duration before now or an RFC 3339 time
        #[arg(long, value_name = "DURATION|TIME")]
        until: Option<String>,
    },
    /// Show how much of the trail is kept, or set it with --max-events and --max-age-days
    Retention {
        /// Keep at most this many events
        #[arg(long)]
        max_events: Option<u64>,
        /// Drop events older than this many days (0: keep them whatever their age)
        #[arg(long)]
        max_age_days: Option<u32>,
    },
}

impl AuditCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        match self {
            AuditCommand::List {
                since,
                until,
                actor,
                registry,
                action,
                limit,
            } => {
                let now = now_ms();
                let query = AuditQuery {
                    since: since
                        .map(|text| point_in_time("--since", &text, now))
                        .transpose()?,
                    until: until
                        .map(|text| point_in_time("--until", &text, now))
                        .transpose()?,
                    actor,
                    registry,
                    action,
                    limit: Some(limit),
                };
                emit(context.format, &context.client.list_audit(&query).await?)
            }
            AuditCommand::Export { since, until } => {
                let now = now_ms();
                let since = since
                    .map(|text| point_in_time("--since", &text, now))
                    .transpose()?;
                let until = until
                    .map(|text| point_in_time("--until", &text, now))
                    .transpose()?;
                let response = context
                    .client
                    .export_audit(since.as_deref(), until.as_deref())
                    .await?;
                let mut body = response.bytes_stream();
                let mut out = tokio::io::stdout();
                while let Some(piece) = body.try_next().await? {
                    out.write_all(&piece).await?;
                }
                out.flush().await?;
                Ok(())
            }
            AuditCommand::Retention {
                max_events,
                max_age_days,
            } => {
                let client = &context.client;
                let mut retention = client.audit_retention().await?;
                if max_events.is_some() || max_age_days.is_some() {
                    if let Some(max_events) = max_events {
                        retention.max_events = max_events;
                    }
                    if let Some(days) = max_age_days {
                        retention.max_age_days = (days > 0).then_some(days);
                    }
                    retention = client.set_audit_retention(&retention).await?;
                }
                emit(context.format, &retention)
            }
        }
    }
}

impl Tabular for AuditRetention {
    fn table(&self) -> String {
        let age = self
            .max_age_days
            .map_or_else(|| "any age".to_string(), |days| format!("{days} days"));
        format!(
            "keeps the newest {} events, up to {age} old",
            self.max_events
        )
    }
}

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// `text` (a duration before `now`, an RFC 3339 time or unix milliseconds) as unix milliseconds, the
/// form the server is sent.
fn point_in_time(flag: &str, text: &str, now: u64) -> Result<String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(text.to_string());
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(now.saturating_sub(millis(ago)).to_string());
    }
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        return Ok(millis(time.duration_since(UNIX_EPOCH).unwrap_or_default()).to_string());
    }
    bail!("{flag} {text:?}: expected a duration before now (such as 1h or 30m) or an RFC 3339 time")
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Row for AuditEvent {
    const HEADERS: &'static [&'static str] = &[
        "ID", "TIME", "ACTOR", "SOURCE", "ACTION", "REGISTRY", "TARGET", "RESULT", "DETAIL",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            timestamp(self.at),
            match &self.actor_id {
                Some(id) => format!("{} ({id})", self.actor),
                None => self.actor.clone(),
            },
            self.source_ip.clone(),
            self.action.clone(),
            self.registry.clone().unwrap_or_default(),
            self.target.clone(),
            self.result.to_string(),
            self.detail.clone().unwrap_or_default(),
        ]
    }
}

impl Tabular for AuditList {
    fn table(&self) -> String {
        table(AuditEvent::HEADERS, self.events.iter().map(Row::cells))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_times_and_milliseconds() {
        let now = 10_000_000;
        assert_eq!(point_in_time("--since", "1h", now).unwrap(), "6400000");
        assert_eq!(
            point_in_time("--since", "2023-11-14T22:13:20Z", now).unwrap(),
            "1700000000000"
        );
        assert_eq!(point_in_time("--since", "42", now).unwrap(), "42");
        assert!(point_in_time("--since", "last week", now).is_err());
    }

    #[test]
    fn events_show_actor_with_token_id() {
        let event = AuditEvent {
            id: 7,
            at: 0,
            actor: "ci".into(),
            actor_id: Some("tok_1".into()),
            source_ip: "127.0.0.1".into(),
            action: "DELETE /generic/{registry}/{package}/{version}/{filename}".into(),
            registry: Some("files".into()),
            target: "/generic/files/p/1/f".into(),
            result: 204,
            detail: None,
        };
        let text = AuditList {
            events: vec![event],
        }
        .table();
        assert!(
            text.contains("ci (tok_1)") && text.contains("204"),
            "{text}"
        );
    }
}
