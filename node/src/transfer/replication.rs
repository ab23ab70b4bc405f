//! Blob replication: where a missing chunk is fetched from ([`PeerChunks`]: the other members, nearest
//! first by measured round trip), and the worker ([`Replicator`]) that makes a full node hold every
//! blob of each registry whose policy copies eagerly to its site, then records that it does.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arca_protocol::{BlobRef, ChunkRef, Command, NodeInfo, NodeRole, Sha256};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;

use super::PeerNetwork;
use crate::blob::{BlobError, ChunkStore, RemoteChunks};
use crate::meta::Meta;
use crate::meta::state::MetaState;

/// Chunks fetched in parallel by the replication worker.
const PARALLEL_FETCHES: usize = 8;
/// Blobs recorded per [`Command::RecordReplicas`].
const RECORD_BATCH: usize = 512;

/// Fetches chunks from the other members: full nodes before cache nodes, nearest first.
pub struct PeerChunks {
    meta: Meta,
    network: Arc<dyn PeerNetwork>,
}

impl PeerChunks {
    /// Chunk fetches over `network` to the members `meta` knows.
    pub fn new(meta: Meta, network: Arc<dyn PeerNetwork>) -> PeerChunks {
        PeerChunks { meta, network }
    }

    /// The other members' QUIC addresses, in the order to ask them.
    pub fn peers_by_distance(&self) -> Vec<String> {
        let own = self.meta.node_id();
        let mut peers: Vec<(bool, Duration, String)> = self
            .meta
            .members()
            .into_iter()
            .filter(|(id, _)| *id != own)
            .map(|(_, node)| {
                let rtt = self.network.round_trip(&node.quic).unwrap_or(Duration::MAX);
                (node.role == NodeRole::Cache, rtt, node.quic)
            })
            .collect();
        peers.sort();
        peers.into_iter().map(|(_, _, addr)| addr).collect()
    }
}

impl RemoteChunks for PeerChunks {
    fn fetch(&self, chunk: ChunkRef) -> BoxFuture<'_, Result<Bytes, BlobError>> {
        Box::pin(async move {
            let mut last_error = None;
            for addr in self.peers_by_distance() {
                match self.network.fetch_chunk(&addr, chunk).await {
                    Ok(bytes) => return Ok(bytes),
                    Err(error) => {
                        tracing::debug!(%addr, chunk = %chunk.id, %error, "chunk fetch");
                        last_error = Some(error);
                    }
                }
            }
            tracing::warn!(chunk = %chunk.id, error = ?last_error, "no peer could provide a chunk");
            Err(BlobError::Missing(chunk.id.to_hex()))
        })
    }
}

/// The blobs a full node at `site` must hold: every blob of every registry whose policy copies eagerly
/// to the site (files of versions, and blobs linked into OCI repositories).
pub fn blobs_wanted_at(state: &MetaState, site: &str) -> Vec<BlobRef> {
    let mut wanted: Vec<BlobRef> = Vec::new();
    let mut seen: HashSet<Sha256> = HashSet::new();
    for registry in state.registries.values() {
        if !registry.registry.replication.copies_eagerly_to(site) {
            continue;
        }
        for blob in crate::policy::gc::registry_blobs(state, registry) {
            if seen.insert(blob.sha256) {
                wanted.push(blob.clone());
            }
        }
    }
    wanted
}

/// Per site with full nodes: how many blobs its eager policies place there that no node of the site
/// is recorded as holding.
pub fn pending_blobs_per_site(
    state: &MetaState,
    members: &[(u64, NodeInfo)],
) -> BTreeMap<String, usize> {
    let mut sites: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (id, node) in members {
        if node.role == NodeRole::Full {
            sites.entry(node.site.clone()).or_default().insert(*id);
        }
    }
    sites
        .into_iter()
        .map(|(site, nodes)| {
            let pending = blobs_wanted_at(state, &site)
                .iter()
                .filter(|blob| {
                    state
                        .replicas
                        .get(&blob.sha256)
                        .is_none_or(|holders| holders.is_disjoint(&nodes))
                })
                .count();
            (site, pending)
        })
        .collect()
}

/// The replication worker of a full node.
pub struct Replicator {
    meta: Meta,
    chunks: Arc<ChunkStore>,
    site: String,
}

impl Replicator {
    /// A worker for the node of `meta` at `site`, storing into `chunks` (whose remote source fetches).
    pub fn new(meta: Meta, chunks: Arc<ChunkStore>, site: String) -> Replicator {
        Replicator { meta, chunks, site }
    }

    /// Runs until the process ends or Raft stops: after every change of the applied state (and every
    /// few seconds, to retry what failed) copies what is missing here and records what this node holds.
    pub async fn run(self) {
        let mut changes = self.meta.watch();
        let mut held: HashSet<Sha256> = HashSet::new();
        loop {
            self.pass(&mut held).await;
            if let Ok(Err(_closed)) =
                tokio::time::timeout(Duration::from_secs(2), changes.changed()).await
            {
                tracing::warn!("raft stopped; the replication worker stops with it");
                return;
            }
        }
    }

    /// One pass: fetch the chunks of wanted blobs this node lacks, then record the blobs now held.
    pub async fn pass(&self, held: &mut HashSet<Sha256>) {
        let own = self.meta.node_id();
        let (wanted, recorded): (Vec<BlobRef>, HashSet<Sha256>) = self.meta.read(|state| {
            let wanted = blobs_wanted_at(state, &self.site);
            let recorded = wanted
                .iter()
                .filter(|blob| {
                    state
                        .replicas
                        .get(&blob.sha256)
                        .is_some_and(|holders| holders.contains(&own))
                })
                .map(|blob| blob.sha256)
                .collect();
            (wanted, recorded)
        });
        let mut to_record = Vec::new();
        for blob in wanted {
            if !held.contains(&blob.sha256) {
                match self.copy(&blob).await {
                    Ok(()) => {
                        held.insert(blob.sha256);
                    }
                    Err(error) => {
                        tracing::warn!(blob = %blob.sha256, %error, "replicating a blob");
                        continue;
                    }
                }
            }
            if !recorded.contains(&blob.sha256) {
                to_record.push(blob.sha256);
            }
        }
        for blobs in to_record.chunks(RECORD_BATCH) {
            let command = Command::RecordReplicas {
                node_id: own,
                blobs: blobs.to_vec(),
            };
            if let Err(error) = self.meta.propose(command).await {
                tracing::debug!(%error, "recording replicas");
                break;
            }
        }
    }

    /// Makes every chunk of `blob` present here, fetching what is missing in parallel.
    async fn copy(&self, blob: &BlobRef) -> Result<(), BlobError> {
        let missing: Vec<ChunkRef> = blob
            .chunks
            .iter()
            .filter(|chunk| !self.chunks.contains(&chunk.id))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let results: Vec<Result<Bytes, BlobError>> = futures::stream::iter(missing)
            .map(|chunk| self.chunks.read(chunk))
            .buffer_unordered(PARALLEL_FETCHES)
            .collect()
            .await;
        results.into_iter().try_for_each(|result| result.map(drop))
    }
}
