//! The cluster's vocabulary: who a node is (site, role, addresses), each registry's replication policy,
//! and the messages nodes exchange on the inter-node QUIC port (encoded with bincode).
//!
//! Raft's own RPCs travel as opaque payloads: their types belong to openraft, which this crate does not
//! depend on; the node encodes them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::command::{Command, CommandOutcome};
use crate::digest::ChunkId;

/// What a node does for the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// Holds full replicas of what its site's policies say and may vote.
    #[default]
    Full,
    /// Holds no full replica: keeps the chunks it serves in a bounded memory+disk cache; never votes.
    Cache,
}

impl NodeRole {
    /// The role's name in flags and output.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Full => "full",
            NodeRole::Cache => "cache",
        }
    }
}

impl std::str::FromStr for NodeRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(NodeRole::Full),
            "cache" => Ok(NodeRole::Cache),
            other => Err(format!(
                "unknown node role {other:?} (expected full or cache)"
            )),
        }
    }
}

/// A cluster member as Raft's membership records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The site (failure and latency domain) the node is in.
    pub site: String,
    /// Full replica or cache node.
    pub role: NodeRole,
    /// Where the node serves HTTP (`host:port`).
    pub http: String,
    /// Where the node's inter-node QUIC port is (`host:port`).
    pub quic: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} node at site {} (quic {}, http {})",
            self.role.as_str(),
            self.site,
            self.quic,
            self.http
        )
    }
}

/// Which sites hold full copies of a registry's blobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReplicaSites {
    /// Every site.
    #[default]
    All,
    /// Only these sites.
    Only(Vec<String>),
}

impl ReplicaSites {
    /// True when `site` should hold full copies.
    pub fn includes(&self, site: &str) -> bool {
        match self {
            ReplicaSites::All => true,
            ReplicaSites::Only(sites) => sites.iter().any(|s| s == site),
        }
    }
}

impl std::str::FromStr for ReplicaSites {
    type Err = String;

    /// `all`, or a comma-separated list of site names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all" {
            return Ok(ReplicaSites::All);
        }
        let sites: Vec<String> = s
            .split(',')
            .map(str::trim)
            .filter(|site| !site.is_empty())
            .map(str::to_string)
            .collect();
        if sites.is_empty() {
            return Err("name at least one site, or all".to_string());
        }
        Ok(ReplicaSites::Only(sites))
    }
}

impl fmt::Display for ReplicaSites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaSites::All => f.write_str("all"),
            ReplicaSites::Only(sites) => f.write_str(&sites.join(",")),
        }
    }
}

/// JSON shows `"all"` or a list of sites; bincode stores an optional list.
impl Serialize for ReplicaSites {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let sites = match self {
            ReplicaSites::All => None,
            ReplicaSites::Only(sites) => Some(sites),
        };
        if serializer.is_human_readable() {
            match sites {
                None => serializer.serialize_str("all"),
                Some(sites) => sites.serialize(serializer),
            }
        } else {
            sites.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for ReplicaSites {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Readable {
            Word(String),
            List(Vec<String>),
        }
        if deserializer.is_human_readable() {
            match Readable::deserialize(deserializer)? {
                Readable::Word(word) => word.parse().map_err(serde::de::Error::custom),
                Readable::List(sites) if sites.is_empty() => Err(serde::de::Error::custom(
                    "name at least one site, or \"all\"",
                )),
                Readable::List(sites) => Ok(ReplicaSites::Only(sites)),
            }
        } else {
            Ok(match Option::<Vec<String>>::deserialize(deserializer)? {
                None => ReplicaSites::All,
                Some(sites) => ReplicaSites::Only(sites),
            })
        }
    }
}

/// When a site's nodes copy a registry's blobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicationMode {
    /// As soon as the version is committed.
    #[default]
    Eager,
    /// At the first read on that node.
    OnDemand,
}

impl std::str::FromStr for ReplicationMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "eager" => Ok(ReplicationMode::Eager),
            "on-demand" => Ok(ReplicationMode::OnDemand),
            other => Err(format!(
                "unknown replication mode {other:?} (expected eager or on-demand)"
            )),
        }
    }
}

impl fmt::Display for ReplicationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplicationMode::Eager => "eager",
            ReplicationMode::OnDemand => "on-demand",
        })
    }
}

/// A registry's replication policy: which sites hold full copies, and when they copy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationPolicy {
    /// Sites that hold full copies.
    #[serde(default)]
    pub sites: ReplicaSites,
    /// Eager or on-demand.
    #[serde(default)]
    pub mode: ReplicationMode,
}

impl ReplicationPolicy {
    /// True when a full node at `site` copies this registry's blobs without waiting for a read.
    pub fn copies_eagerly_to(&self, site: &str) -> bool {
        self.mode == ReplicationMode::Eager && self.sites.includes(site)
    }

    /// True when a full node at `site` keeps what it fetched for a read in its chunk store.
    pub fn keeps_at(&self, site: &str) -> bool {
        self.sites.includes(site)
    }
}

/// A membership change a node asks the leader to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add (or update) a learner.
    AddLearner {
        /// The node's id.
        node_id: u64,
        /// Who it is.
        node: NodeInfo,
    },
    /// Make a learner a voter.
    Promote {
        /// The node's id.
        node_id: u64,
    },
    /// Take a node out of the cluster.
    Remove {
        /// The node's id.
        node_id: u64,
    },
}

/// A request on the inter-node port. Every request but [`PeerRequest::Join`] and
/// [`PeerRequest::Ping`] needs a connection authenticated by a cluster certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Raft AppendEntries (an openraft request, encoded by the node).
    AppendEntries(Vec<u8>),
    /// Raft Vote.
    Vote(Vec<u8>),
    /// Raft InstallSnapshot (one segment).
    InstallSnapshot(Vec<u8>),
    /// A metadata write forwarded to the leader.
    Write(Box<Command>),
    /// A membership change forwarded to the leader.
    ChangeMembership(MembershipChange),
    /// The leader's view of the cluster (serialized [`crate::api::ClusterStatus`] as JSON).
    Status,
    /// The log index a node must have applied to read everything committed before this request
    /// (answered by the leader after confirming its leadership with a quorum).
    ReadIndex,
    /// A new node presents a join token's secret and asks for its cluster certificate.
    Join {
        /// The secret half of the join token.
        secret: String,
        /// The id the node will have.
        node_id: u64,
    },
    /// One chunk's bytes; answered with [`PeerResponse::Chunk`] followed by the raw bytes.
    FetchChunk(ChunkId),
    /// Liveness and round-trip probe.
    Ping,
    /// Hold every chunk of this blob durably now (fetching what is missing from the other
    /// members), for a push that is acknowledged only once enough nodes have its bytes; answered
    /// with [`PeerResponse::Held`].
    HoldBlob(Box<crate::model::BlobRef>),
}

/// Credentials a joining node receives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinGrant {
    /// The cluster CA certificate (PEM).
    pub ca_cert_pem: String,
    /// The cluster CA key (PEM), so that every member can admit later nodes.
    pub ca_key_pem: String,
    /// The node's certificate, signed by the CA (PEM).
    pub node_cert_pem: String,
    /// The node's private key (PEM).
    pub node_key_pem: String,
}

/// Why a peer refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PeerError {
    /// This node is not the leader; try the one named, if any.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<u64>,
    },
    /// The cluster cannot serve this now (no quorum, shutting down).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request is not allowed (no cluster certificate, bad join secret).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// What the request names is not here.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is malformed or refused.
    #[error("invalid: {0}")]
    Invalid(String),
}

/// The answer to a [`PeerRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PeerResponse {
    /// A Raft RPC's answer (an openraft response, encoded by the node).
    Raft(Vec<u8>),
    /// A forwarded write was committed at `log_index` with this outcome.
    Written {
        /// The log index of the entry.
        log_index: u64,
        /// What applying it produced.
        outcome: CommandOutcome,
    },
    /// A membership change took effect.
    MembershipChanged,
    /// Apply up to this log index to read what was committed before the request.
    ReadIndex(u64),
    /// The cluster status, as the management API's JSON.
    Status(String),
    /// The join was accepted.
    Joined(Box<JoinGrant>),
    /// The chunk follows: exactly `size` raw bytes.
    Chunk {
        /// Its length.
        size: u32,
    },
    /// Answer to [`PeerRequest::Ping`].
    Pong,
    /// Answer to [`PeerRequest::HoldBlob`]: every chunk is on this node's disk.
    Held,
    /// The request failed.
    Failed(PeerError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_sites_read_as_all_or_a_list_in_json_and_round_trip_in_bincode() {
        let all: ReplicaSites = serde_json::from_str("\"all\"").expect("all");
        assert_eq!(all, ReplicaSites::All);
        let some: ReplicaSites = serde_json::from_str("[\"eu\",\"us\"]").expect("list");
        assert_eq!(some, ReplicaSites::Only(vec!["eu".into(), "us".into()]));
        assert_eq!(serde_json::to_string(&all).expect("json"), "\"all\"");
        let one: ReplicaSites = serde_json::from_str("\"eu\"").expect("one site");
        assert_eq!(one, ReplicaSites::Only(vec!["eu".into()]));
        assert!(serde_json::from_str::<ReplicaSites>("[]").is_err());
        for sites in [all, some] {
            let bytes =
                bincode::serde::encode_to_vec(&sites, bincode::config::standard()).expect("encode");
            let (back, _): (ReplicaSites, _) =
                bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
                    .expect("decode");
            assert_eq!(back, sites);
        }
        let policy: ReplicationPolicy =
            serde_json::from_str("{\"sites\":[\"eu\"],\"mode\":\"on-demand\"}").expect("policy");
        assert!(!policy.copies_eagerly_to("eu"));
        assert!(policy.keeps_at("eu"));
        assert!(!policy.keeps_at("us"));
        assert!(ReplicationPolicy::default().copies_eagerly_to("anywhere"));
    }
}
