//! `arca audit list`: the audit trail, newest first, filtered by time, caller, registry and action.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use arca_protocol::api::{AuditList, AuditQuery};
use arca_protocol::model::AuditEvent;
use clap::Subcommand;

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
        }
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
