//! `arca cluster`: the cluster's status (members, leader, term, commit index, replication lag), join
//! tokens for new nodes, membership changes (promote a learner, remove a node), and the background
//! scrub of a node's chunks.

use std::time::Duration;

use anyhow::Result;
use arca_protocol::api::{ClusterStatus, JoinTokenInfo, ScrubStatus};
use clap::Subcommand;

use super::Context;
use super::output::{Tabular, emit, table, timestamp};

/// `arca cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the members, the leader, the term, the commit index and each member's lag
    Status,
    /// Create a join token for a new node and print it (`arca-node --join-token`)
    JoinToken {
        /// How long the token stays valid (e.g. 30m, 1h, 2d)
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: Duration,
    },
    /// Make a learner a voter, then show the cluster
    Promote {
        /// Node id, as `arca cluster status` shows it
        id: u64,
    },
    /// Take a node out of the cluster, then show the cluster
    Remove {
        /// Node id, as `arca cluster status` shows it
        id: u64,
    },
    /// The background scrub of the node the CLI talks to (`--server`)
    #[command(subcommand)]
    Scrub(ScrubCommand),
}

/// `arca cluster scrub` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScrubCommand {
    /// What the scrub is doing and has found: chunks checked, damaged, repaired, unrepairable
    Status,
    /// Start a pass now (or right after the one running)
    Start,
}

impl ClusterCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        match self {
            ClusterCommand::Status => emit(context.format, &client.cluster_status().await?),
            ClusterCommand::JoinToken { ttl } => {
                let created = client.create_join_token(ttl.as_secs()).await?;
                emit(context.format, &created)?;
                eprintln!(
                    "the token is valid until {} UTC; treat it like a password",
                    timestamp(created.expires_at)
                );
                Ok(())
            }
            ClusterCommand::Promote { id } => emit(context.format, &client.promote_node(id).await?),
            ClusterCommand::Remove { id } => emit(context.format, &client.remove_node(id).await?),
            ClusterCommand::Scrub(ScrubCommand::Status) => {
                emit(context.format, &client.scrub_status().await?)
            }
            ClusterCommand::Scrub(ScrubCommand::Start) => {
                emit(context.format, &client.start_scrub().await?)
            }
        }
    }
}

/// A humantime duration (`90s`, `1h`, `2d`) of at least one second: the API counts whole seconds.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    if ttl.as_secs() == 0 {
        return Err("the TTL must be at least one second".to_string());
    }
    Ok(ttl)
}

/// Column titles of the member table.
const MEMBER_HEADERS: &[&str] = &[
    "ID",
    "SITE",
    "MEMBERSHIP",
    "ROLE",
    "LEADER",
    "HTTP",
    "QUIC",
    "MATCHED",
    "LAG",
];

/// One summary line, then one row per member; the leader's row is marked `*`. A matched index or lag
/// the leader has no view of shows as `-`.
impl Tabular for ClusterStatus {
    fn table(&self) -> String {
        let known = |value: Option<u64>| value.map_or_else(|| "-".to_string(), |v| v.to_string());
        let rows = self.nodes.iter().map(|node| {
            vec![
                node.id.to_string(),
                node.site.clone(),
                node.membership.clone(),
                node.role.as_str().to_string(),
                if self.leader == Some(node.id) {
                    "*"
                } else {
                    ""
                }
                .to_string(),
                node.http.clone(),
                node.quic.clone(),
                known(node.matched_index),
                known(node.lag),
            ]
        });
        let leader = match self.leader {
            Some(id) => format!("leader {id}"),
            None => "no leader".to_string(),
        };
        format!(
            "{leader}, term {}, commit index {} (answered by node {})\n{}",
            self.term,
            self.commit_index,
            self.answered_by,
            table(MEMBER_HEADERS, rows)
        )
    }
}

/// One line of state, one of counts.
impl Tabular for ScrubStatus {
    fn table(&self) -> String {
        let rate = match self.bytes_per_second {
            0 => "passes only when started".to_string(),
            rate => format!("{rate} bytes/s"),
        };
        let state = if self.running {
            format!(
                "running since {}",
                self.pass_started_at.map_or("-".to_string(), timestamp)
            )
        } else {
            match self.last_pass_finished_at {
                Some(at) => format!("idle, last pass finished {}", timestamp(at)),
                None => "idle, no pass yet".to_string(),
            }
        };
        format!(
            "node {}: {state} ({rate})\npasses {}, chunks checked {} ({} bytes), damaged {}, repaired {}, unrepairable {}",
            self.node_id,
            self.passes,
            self.chunks_checked,
            self.bytes_checked,
            self.corrupt,
            self.repaired,
            self.unrepairable
        )
    }
}

/// Just the token, so that `TOKEN=$(arca cluster join-token)` works; `--format json` adds its expiry.
impl Tabular for JoinTokenInfo {
    fn table(&self) -> String {
        self.token.clone()
    }
}

#[cfg(test)]
mod tests {
    use arca_protocol::NodeRole;
    use arca_protocol::api::ClusterNodeStatus;
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<ClusterCommand, clap::Error> {
        let cli = Cli::try_parse_from([&["arca", "cluster"], args].concat())?;
        match cli.command {
            Command::Cluster(command) => Ok(command),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn join_token_ttl_is_a_humantime_duration_of_at_least_a_second() {
        let ttl = |args: &[&str]| match parse(args) {
            Ok(ClusterCommand::JoinToken { ttl }) => Ok(ttl.as_secs()),
            Ok(other) => panic!("parsed as {other:?}"),
            Err(err) => Err(err),
        };
        assert_eq!(ttl(&["join-token"]).expect("default"), 3600);
        assert_eq!(
            ttl(&["join-token", "--ttl", "2h 30m"]).expect("valid"),
            9000
        );
        assert_eq!(ttl(&["join-token", "--ttl", "90s"]).expect("valid"), 90);
        for bad in ["500ms", "0s", "soon", "1", ""] {
            assert!(
                ttl(&["join-token", "--ttl", bad]).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn membership_changes_take_a_numeric_node_id() {
        assert!(matches!(parse(&["status"]), Ok(ClusterCommand::Status)));
        assert!(matches!(
            parse(&["promote", "3"]),
            Ok(ClusterCommand::Promote { id: 3 })
        ));
        assert!(matches!(
            parse(&["remove", "12"]),
            Ok(ClusterCommand::Remove { id: 12 })
        ));
        for bad in [&["promote"][..], &["promote", "node-3"], &["remove", "-1"]] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    fn member(id: u64, membership: &str, role: NodeRole, lag: Option<u64>) -> ClusterNodeStatus {
        ClusterNodeStatus {
            id,
            site: format!("site-{id}"),
            membership: membership.to_string(),
            role,
            http: format!("127.0.0.1:70{id}0"),
            quic: format!("127.0.0.1:70{id}1"),
            matched_index: lag.map(|lag| 42 - lag),
            lag,
        }
    }

    /// The cells of the table row whose first cell is `id`.
    fn row(text: &str, id: u64) -> Vec<String> {
        text.lines()
            .filter_map(|line| line.strip_prefix('│')?.strip_suffix('│'))
            .map(|inner| inner.split('┆').map(|cell| cell.trim().to_string()))
            .map(Vec::from_iter)
            .find(|cells: &Vec<String>| cells.first() == Some(&id.to_string()))
            .unwrap_or_else(|| panic!("no row for node {id} in\n{text}"))
    }

    #[test]
    fn status_table_heads_with_the_leader_and_marks_its_row() {
        let status = ClusterStatus {
            answered_by: 2,
            leader: Some(1),
            term: 3,
            commit_index: 42,
            nodes: vec![
                member(1, "voter", NodeRole::Full, Some(0)),
                member(2, "voter", NodeRole::Full, Some(5)),
                member(3, "learner", NodeRole::Cache, None),
            ],
        };
        let text = status.table();
        assert_eq!(
            text.lines().next(),
            Some("leader 1, term 3, commit index 42 (answered by node 2)"),
            "{text}"
        );
        for header in MEMBER_HEADERS {
            assert!(text.contains(header), "{header} missing in\n{text}");
        }
        let cells = |id| row(&text, id);
        assert_eq!(
            cells(1),
            [
                "1",
                "site-1",
                "voter",
                "full",
                "*",
                "127.0.0.1:7010",
                "127.0.0.1:7011",
                "42",
                "0"
            ]
        );
        assert_eq!(cells(2)[4], "", "only the leader is marked");
        assert_eq!(cells(2)[7..], ["37", "5"]);
        assert_eq!(cells(3)[2..5], ["learner", "cache", ""]);
        assert_eq!(cells(3)[7..], ["-", "-"], "no view of the node");
    }

    #[test]
    fn status_without_a_leader_says_so() {
        let status = ClusterStatus {
            answered_by: 4,
            leader: None,
            term: 7,
            commit_index: 0,
            nodes: vec![member(4, "voter", NodeRole::Full, None)],
        };
        let text = status.table();
        assert!(
            text.starts_with("no leader, term 7, commit index 0 (answered by node 4)\n"),
            "{text}"
        );
        assert_eq!(row(&text, 4)[4], "");
    }

    #[test]
    fn join_token_table_is_the_bare_token() {
        let info = JoinTokenInfo {
            token: "arca-join-v1:abc:def".into(),
            expires_at: 1_700_000_000_000,
        };
        assert_eq!(info.table(), "arca-join-v1:abc:def");
    }
}
