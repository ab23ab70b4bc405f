//! Raft's network: openraft's RPCs to other members, encoded with bincode and carried by whatever
//! [`PeerNetwork`] the node runs on (QUIC between processes, a simulated network in `arca-sim`).

use std::sync::Arc;

use arca_protocol::NodeInfo;
use arca_protocol::cluster::{PeerRequest, PeerResponse};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::TypeConfig;
use crate::transfer::{PeerNetwork, TransferError, decode, encode, unexpected};

/// Makes a [`PeerConnection`] per member.
#[derive(Clone)]
pub struct RaftPeers {
    network: Arc<dyn PeerNetwork>,
}

impl RaftPeers {
    /// Raft RPCs over `network`.
    pub fn new(network: Arc<dyn PeerNetwork>) -> RaftPeers {
        RaftPeers { network }
    }
}

/// Raft's view of one member.
pub struct PeerConnection {
    network: Arc<dyn PeerNetwork>,
    target: u64,
    addr: String,
}

/// A transport failure as openraft's error: unreachable when no connection could be made.
fn transport_error<E: std::error::Error>(error: TransferError) -> RPCError<u64, NodeInfo, E> {
    match error {
        TransferError::Connect { .. } | TransferError::NotAMember => {
            RPCError::Unreachable(Unreachable::new(&error))
        }
        _ => RPCError::Network(NetworkError::new(&error)),
    }
}

impl PeerConnection {
    /// Sends one RPC (`wrap` picks the request kind) and decodes the member's `Result` answer.
    async fn rpc<Req, Resp, E>(
        &self,
        request: &Req,
        wrap: fn(Vec<u8>) -> PeerRequest,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, NodeInfo, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let payload = encode(request).map_err(|e| {
            transport_error(TransferError::Stream {
                addr: self.addr.clone(),
                reason: e,
            })
        })?;
        let response = self
            .network
            .call(&self.addr, wrap(payload), Some(option.hard_ttl()))
            .await
            .map_err(transport_error)?;
        let PeerResponse::Raft(body) = response else {
            return Err(transport_error(unexpected(&self.addr, &response)));
        };
        let answer: Result<Resp, E> = decode(&body).map_err(|e| {
            transport_error(TransferError::Stream {
                addr: self.addr.clone(),
                reason: e,
            })
        })?;
        answer.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
    }
}

impl RaftNetworkFactory<TypeConfig> for RaftPeers {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> Self::Network {
        PeerConnection {
            network: self.network.clone(),
            target,
            addr: node.quic.clone(),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        self.rpc(&rpc, PeerRequest::AppendEntries, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, NodeInfo, RaftError<u64, InstallSnapshotError>>,
    > {
        self.rpc(&rpc, PeerRequest::InstallSnapshot, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        self.rpc(&rpc, PeerRequest::Vote, &option).await
    }
}
