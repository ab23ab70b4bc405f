//! How a node becomes and stays a member: the cluster credentials it creates (first node) or receives
//! by joining with a token, registering itself as a learner, and the leader's upkeep that promotes
//! caught-up learners to voters, spreading voters over sites.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use arca_protocol::cluster::{MembershipChange, PeerRequest, PeerResponse};
use arca_protocol::{NodeInfo, NodeRole};

use crate::meta::Meta;
use crate::transfer::tls::{ClusterIdentity, JoinToken, TlsError};
use crate::transfer::{PeerNetwork, QuicTransport, TransferError, unexpected};

/// The most voters the upkeep promotes to.
const MAX_VOTERS: usize = 5;
/// A learner this many entries behind the leader (or closer) counts as caught up.
const CAUGHT_UP_ENTRIES: u64 = 64;

/// Why a node could not get its cluster credentials.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Certificates could not be made, read or written.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The member asked to admit this node refused or could not be reached.
    #[error("joining through {addr}: {source}")]
    Refused {
        /// The member.
        addr: String,
        /// Its answer.
        source: TransferError,
    },
    /// `--join` was given without `--join-token`.
    #[error("--join needs --join-token (from `arca cluster join-token`)")]
    MissingToken,
}

/// Where a node's cluster credentials come from on this start.
pub struct Credentials {
    /// The CA and this node's certificate.
    pub identity: ClusterIdentity,
    /// True when this node created the cluster (it starts a one-member cluster if none is stored).
    pub founder: bool,
}

/// Loads this node's credentials from `<data-dir>/cluster`, or makes them: by joining through
/// `join` with `token`, or, with no `join`, by creating a new cluster CA.
pub async fn credentials(
    dir: &Path,
    node_id: u64,
    join: Option<&str>,
    token: Option<&str>,
    transport: &QuicTransport,
) -> Result<Credentials, JoinError> {
    let founder_marker = dir.join("founder");
    if let Some(identity) = ClusterIdentity::load(dir)? {
        return Ok(Credentials {
            identity,
            founder: founder_marker.exists(),
        });
    }
    let Some(addr) = join else {
        let identity = ClusterIdentity::create_cluster(node_id)?;
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        crate::auth::write_private_file(&founder_marker, "this node created the cluster").map_err(
            |source| TlsError::Io {
                path: founder_marker.display().to_string(),
                source,
            },
        )?;
        identity.save(dir)?;
        tracing::info!("created a new cluster CA");
        return Ok(Credentials {
            identity,
            founder: true,
        });
    };
    let token: JoinToken = token.ok_or(JoinError::MissingToken)?.parse()?;
    let request = PeerRequest::Join {
        secret: token.secret.clone(),
        node_id,
    };
    let refused = |source| JoinError::Refused {
        addr: addr.to_string(),
        source,
    };
    let grant = match transport
        .join(addr, token.ca_fingerprint, request)
        .await
        .map_err(refused)?
    {
        PeerResponse::Joined(grant) => *grant,
        other => return Err(refused(unexpected(addr, &other))),
    };
    let identity = ClusterIdentity::from_grant(grant);
    identity.save(dir)?;
    tracing::info!(%addr, node_id, "joined the cluster: received a node certificate");
    Ok(Credentials {
        identity,
        founder: false,
    })
}

/// Until it succeeds, asks the member at `via` to add this node as a learner (or to update its
/// addresses). Harmless when the node is already a member as described.
pub async fn register(
    meta: Meta,
    network: std::sync::Arc<dyn PeerNetwork>,
    via: String,
    node: NodeInfo,
) {
    let change = MembershipChange::AddLearner {
        node_id: meta.node_id(),
        node,
    };
    loop {
        let request = PeerRequest::ChangeMembership(change.clone());
        match network.call(&via, request, None).await {
            Ok(PeerResponse::MembershipChanged) => {
                tracing::info!(%via, "registered as a learner");
                return;
            }
            Ok(other) => tracing::warn!(answer = ?unexpected(&via, &other), "registering"),
            Err(error) => tracing::warn!(%error, "registering with the cluster; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The leader's upkeep, run on every node (it acts only while the node leads): promotes caught-up
/// full learners to voters, up to five, choosing the learner whose site has the fewest voters.
pub async fn promote_learners(meta: Meta) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(node_id) = learner_to_promote(&meta) {
            match meta
                .change_membership_as_leader(MembershipChange::Promote { node_id })
                .await
            {
                Ok(()) => tracing::info!(node_id, "promoted a caught-up learner to voter"),
                Err(error) => tracing::debug!(node_id, %error, "promoting a learner"),
            }
        }
    }
}

fn learner_to_promote(meta: &Meta) -> Option<u64> {
    let metrics = meta.raft_metrics();
    if metrics.current_leader != Some(meta.node_id()) {
        return None;
    }
    let membership = metrics.membership_config.membership();
    if membership.get_joint_config().len() > 1 {
        return None;
    }
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    if voters.len() >= MAX_VOTERS {
        return None;
    }
    let nodes: BTreeMap<u64, NodeInfo> = membership
        .nodes()
        .map(|(id, node)| (*id, node.clone()))
        .collect();
    let mut voters_per_site: BTreeMap<&str, usize> = BTreeMap::new();
    for voter in &voters {
        if let Some(node) = nodes.get(voter) {
            *voters_per_site.entry(node.site.as_str()).or_default() += 1;
        }
    }
    let last = metrics.last_log_index.unwrap_or(0);
    let replication = metrics.replication.as_ref()?;
    nodes
        .iter()
        .filter(|(id, node)| !voters.contains(id) && node.role == NodeRole::Full)
        .filter(|(id, _)| {
            replication
                .get(id)
                .and_then(|matched| matched.as_ref())
                .is_some_and(|matched| matched.index + CAUGHT_UP_ENTRIES >= last)
        })
        .min_by_key(|(id, node)| {
            (
                voters_per_site
                    .get(node.site.as_str())
                    .copied()
                    .unwrap_or(0),
                **id,
            )
        })
        .map(|(id, _)| *id)
}
