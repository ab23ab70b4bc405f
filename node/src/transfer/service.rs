//! What a node answers on the inter-node port: Raft RPCs, forwarded writes and membership changes,
//! status, joins (checked against the join tokens in the replicated state), chunk reads, and
//! holding a blob's copy for a push that waits for its copies.

use std::sync::Arc;

use arca_protocol::cluster::{PeerError, PeerRequest, PeerResponse};
use futures::future::BoxFuture;

use super::tls::{ClusterIdentity, JoinToken};
use super::{PeerService, Reply};
use crate::blob::{BlobError, ChunkStore};
use crate::clock::Clock;
use crate::meta::Meta;
use crate::meta::StateRead;

/// The node's answers to its peers.
pub struct NodeService {
    /// Replicated metadata.
    pub meta: Meta,
    /// This node's chunks.
    pub chunks: Arc<ChunkStore>,
    /// The cluster CA and this node's certificate (to admit new nodes).
    pub identity: ClusterIdentity,
    /// The time of day (join tokens expire).
    pub clock: Arc<dyn Clock>,
}

impl PeerService for NodeService {
    fn handle(&self, request: PeerRequest) -> BoxFuture<'_, Reply> {
        Box::pin(async move {
            match request {
                request @ (PeerRequest::AppendEntries(_)
                | PeerRequest::Vote(_)
                | PeerRequest::InstallSnapshot(_)) => {
                    Reply::Message(self.meta.raft_rpc(request).await)
                }
                PeerRequest::Write(command) => {
                    Reply::Message(self.meta.write_for_peer(*command).await)
                }
                PeerRequest::ChangeMembership(change) => {
                    match self.meta.change_membership(change).await {
                        Ok(()) => Reply::Message(PeerResponse::MembershipChanged),
                        Err(error) => error.into(),
                    }
                }
                PeerRequest::ReadIndex => match self.meta.read_index_as_leader().await {
                    Ok(index) => Reply::Message(PeerResponse::ReadIndex(index)),
                    Err(error) => error.into(),
                },
                PeerRequest::Status => {
                    let status = self.meta.local_status();
                    if status.leader != Some(self.meta.node_id()) {
                        return PeerError::NotLeader {
                            leader: status.leader,
                        }
                        .into();
                    }
                    match serde_json::to_string(&status) {
                        Ok(json) => Reply::Message(PeerResponse::Status(json)),
                        Err(error) => PeerError::Unavailable(error.to_string()).into(),
                    }
                }
                PeerRequest::Join { secret, node_id } => match self.admit(&secret, node_id) {
                    Ok(reply) => reply,
                    Err(error) => error.into(),
                },
                PeerRequest::FetchChunk(id) => {
                    let chunks = self.chunks.clone();
                    let read = crate::blocking::spawn(move || chunks.read_local(&id)).await;
                    match read {
                        Ok(Ok(bytes)) => Reply::Chunk(bytes),
                        Ok(Err(BlobError::Missing(id))) => {
                            PeerError::NotFound(format!("chunk {id}")).into()
                        }
                        Ok(Err(error)) => PeerError::Unavailable(error.to_string()).into(),
                        Err(error) => PeerError::Unavailable(error.to_string()).into(),
                    }
                }
                PeerRequest::Ping => Reply::Message(PeerResponse::Pong),
                PeerRequest::HoldBlob(blob) => self.hold(&blob).await,
            }
        })
    }
}

impl NodeService {
    /// Puts every chunk of `blob` on this node's disk now, fetching what it lacks from the other
    /// members (the node that took the push has them), for a push that waits for its copies.
    async fn hold(&self, blob: &arca_protocol::BlobRef) -> Reply {
        if !self.chunks.keeps_durable_copies() {
            return PeerError::Invalid("a cache node holds no durable copies".to_string()).into();
        }
        for chunk in &blob.chunks {
            if let Err(error) = self.chunks.read(*chunk).await {
                return PeerError::Unavailable(format!("chunk {}: {error}", chunk.id)).into();
            }
        }
        Reply::Message(PeerResponse::Held)
    }

    /// Checks a join secret and, for a node id not yet in the cluster, issues its certificate.
    fn admit(&self, secret: &str, node_id: u64) -> Result<Reply, PeerError> {
        let hash = JoinToken::secret_sha256(secret);
        let expires_at = self
            .meta
            .read(|view| view.join_token(&hash))
            .map_err(|error| PeerError::Unavailable(error.to_string()))?
            .ok_or_else(|| PeerError::Forbidden("unknown join token".to_string()))?;
        if expires_at <= self.clock.now_ms() {
            return Err(PeerError::Forbidden(
                "the join token has expired".to_string(),
            ));
        }
        if self.meta.members().iter().any(|(id, _)| *id == node_id) {
            return Err(PeerError::Invalid(format!(
                "node id {node_id} is already a member; pick another id or remove that node first"
            )));
        }
        let grant = self
            .identity
            .grant(node_id)
            .map_err(|error| PeerError::Unavailable(error.to_string()))?;
        tracing::info!(node_id, "admitted a node to the cluster");
        Ok(Reply::Message(PeerResponse::Joined(Box::new(grant))))
    }
}
