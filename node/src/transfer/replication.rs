//! Blob replication: where a missing chunk is fetched from ([`PeerChunks`]: the other members, nearest
//! first by measured round trip), and the worker ([`Replicator`]) that makes a full node hold every
//! blob of each registry whose policy copies eagerly to its site, then records that it does. The
//! worker learns what to copy from the state machine (the blobs pending at this node), so its work
//! follows what changed, never the size of the registry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arca_protocol::{
    BlobRef, CachedDocument, ChunkRef, Command, NodeInfo, NodeRole, Registry, Sha256, Version,
};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::PeerNetwork;
use crate::blob::{BlobError, ChunkStore, RemoteChunks};
use crate::meta::keys;
use crate::meta::tables::{Table, scalar};
use crate::meta::view::{ReadResult, registry_key};
use crate::meta::{Meta, ReadView, StateRead, StoreError};

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

/// Per site with full nodes: the most blobs any of its full nodes still has to copy (what its
/// eager policies place there that the node is not recorded as holding).
pub fn pending_blobs_per_site(
    view: &ReadView,
    members: &[(u64, NodeInfo)],
) -> ReadResult<BTreeMap<String, u64>> {
    let mut sites: BTreeMap<String, u64> = BTreeMap::new();
    for (id, node) in members {
        if node.role == NodeRole::Full {
            let pending = view.pending_count(*id)?;
            let site = sites.entry(node.site.clone()).or_default();
            *site = (*site).max(pending);
        }
    }
    Ok(sites)
}

/// Files and linked blobs read per step of a full check.
const CHECK_PAGE: usize = 1000;

/// The replication worker of a full node.
pub struct Replicator {
    meta: Meta,
    chunks: Arc<ChunkStore>,
    site: String,
}

/// What a full check was made for: the cluster's replication epoch and how often this node joined
/// the membership. A node checks everything again when either changes (or it never checked): the
/// state machine makes blobs pending only at the members of the moment, by the policies of the
/// moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Checked {
    epoch: u64,
    joined: u64,
}

const CHECKED_KEY: &str = "replication_checked";

impl Replicator {
    /// A worker for the node of `meta` at `site`, storing into `chunks` (whose remote source fetches).
    pub fn new(meta: Meta, chunks: Arc<ChunkStore>, site: String) -> Replicator {
        Replicator { meta, chunks, site }
    }

    /// Runs until the process ends or Raft stops. The state machine keeps, for every full node,
    /// the blobs its site's policies want that it does not hold yet; after every change of the
    /// applied state (and every few seconds, to retry what failed) the worker copies those and
    /// records them. When the node (re)joined the membership, or a replication policy changed, it
    /// first checks every blob its site's policies want.
    pub async fn run(self) {
        let mut changes = self.meta.watch();
        loop {
            if let Err(error) = self.check_everything_if_needed().await {
                tracing::warn!(%error, "checking every replicated blob");
            }
            if let Err(error) = self.copy_pending().await {
                tracing::warn!(%error, "copying pending blobs");
            }
            if let Ok(Err(_closed)) =
                tokio::time::timeout(Duration::from_secs(2), changes.changed()).await
            {
                tracing::warn!("raft stopped; the replication worker stops with it");
                return;
            }
        }
    }

    fn checked_now(&self) -> ReadResult<Checked> {
        let own = self.meta.node_id();
        self.meta.read(|view| {
            Ok(Checked {
                epoch: view.counter(scalar::REPLICATION_EPOCH)?,
                joined: view.counter(&format!("{}{own}", scalar::JOINED))?,
            })
        })
    }

    /// The full check, when the node never made one for the current epoch.
    async fn check_everything_if_needed(&self) -> Result<(), ReplicationError> {
        let now = self.checked_now()?;
        if self.meta.local_value::<Checked>(CHECKED_KEY)? == Some(now) {
            return Ok(());
        }
        let registries: Vec<Registry> = self
            .meta
            .read(|view| view.registries())?
            .into_iter()
            .map(|record| record.registry)
            .filter(|r| r.replication.copies_eagerly_to(&self.site))
            .collect();
        let mut complete = true;
        for registry in &registries {
            complete &= self.check_registry(&registry.name).await?;
        }
        if complete {
            self.meta.set_local_value(CHECKED_KEY, &now)?;
            tracing::info!(
                registries = registries.len(),
                "checked every replicated blob"
            );
        }
        Ok(())
    }

    /// Copies and records every blob of `registry` this node does not hold, a page at a time.
    /// True when nothing failed.
    async fn check_registry(&self, registry: &str) -> Result<bool, ReplicationError> {
        let own = self.meta.node_id();
        let mut complete = true;
        for table in [Table::Versions, Table::PackageBlobs, Table::Cached] {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let (last, missing) = self.meta.read(|view| {
                    let keys = view.scan_keys(
                        table,
                        &registry_key(registry),
                        after.as_deref(),
                        CHECK_PAGE,
                    )?;
                    let mut missing = Vec::new();
                    for key in &keys {
                        for blob in blobs_under(view, table, key)? {
                            if blob.inline.is_none() && !view.has_replica(&blob.sha256, own)? {
                                missing.push(blob);
                            }
                        }
                    }
                    Ok((keys.last().cloned(), missing))
                })?;
                complete &= self.copy_and_record(missing).await;
                match last {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
        }
        Ok(complete)
    }

    /// Copies what the state machine says this node still has to copy. True when nothing failed.
    async fn copy_pending(&self) -> Result<bool, ReplicationError> {
        let own = self.meta.node_id();
        let mut after: Option<Sha256> = None;
        let mut complete = true;
        loop {
            let (read, blobs) = self.meta.read(|view| {
                let pending = view.pending(own, after.as_ref(), CHECK_PAGE)?;
                let mut blobs = Vec::new();
                for sha256 in &pending {
                    if let Some(blob) = view.blob(sha256)? {
                        blobs.push(blob);
                    }
                }
                after = pending.last().copied().or(after);
                Ok((pending.len(), blobs))
            })?;
            complete &= self.copy_and_record(blobs).await;
            if read < CHECK_PAGE {
                return Ok(complete);
            }
        }
    }

    /// Copies `blobs` and records the ones now held. True when every one was.
    async fn copy_and_record(&self, blobs: Vec<BlobRef>) -> bool {
        let own = self.meta.node_id();
        let mut held = Vec::new();
        let mut complete = true;
        for blob in blobs {
            match self.copy(&blob).await {
                Ok(()) => held.push(blob.sha256),
                Err(error) => {
                    tracing::warn!(blob = %blob.sha256, %error, "replicating a blob");
                    complete = false;
                }
            }
        }
        for blobs in held.chunks(RECORD_BATCH) {
            let command = Command::RecordReplicas {
                node_id: own,
                blobs: blobs.to_vec(),
            };
            if let Err(error) = self.meta.propose(command).await {
                tracing::debug!(%error, "recording replicas");
                return false;
            }
        }
        complete
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

/// The blobs the entry `key` of `table` references: a version's files, a linked blob, a cached
/// document.
fn blobs_under(view: &ReadView, table: Table, key: &[u8]) -> ReadResult<Vec<BlobRef>> {
    Ok(match table {
        Table::Versions => match view.get::<Version>(table, key)? {
            Some(version) => {
                let mut blobs = Vec::new();
                for file in version.files.values() {
                    blobs.extend(view.blob(&file.sha256)?);
                }
                blobs
            }
            None => Vec::new(),
        },
        Table::PackageBlobs => {
            let digest = keys::text_part(key, 2)?;
            view.blob_by_digest(&digest)?.into_iter().collect()
        }
        Table::Cached => match view.get::<CachedDocument>(table, key)? {
            Some(document) => view.blob(&document.blob.sha256)?.into_iter().collect(),
            None => Vec::new(),
        },
        _ => Vec::new(),
    })
}

/// Why the worker could not read what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// The state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}
