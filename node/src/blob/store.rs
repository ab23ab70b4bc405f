//! Chunks on disk ([`ChunkDisk`]), named by their blake3 hash, with a memory tier in front; a chunk this node
//! lacks is fetched from a peer (through [`RemoteChunks`]), verified, and kept: in the chunk directory
//! on full nodes, in the bounded memory+disk cache on cache nodes.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arca_protocol::{ChunkId, ChunkRef};
use bytes::Bytes;
use futures::future::BoxFuture;

use super::{BlobError, ChunkDisk, LocalDisk, TieredChunkCache};

/// Where chunks this node lacks come from (other nodes of the cluster).
pub trait RemoteChunks: Send + Sync + 'static {
    /// The bytes of `chunk` from some peer that holds it; the store verifies them.
    fn fetch(&self, chunk: ChunkRef) -> BoxFuture<'_, Result<Bytes, BlobError>>;
}

/// Counters of what the store has done since start.
#[derive(Debug, Default)]
pub struct ChunkStoreStats {
    /// Chunks written to disk.
    pub chunks_written: AtomicU64,
    /// Chunks that were already present and not written again.
    pub chunks_deduplicated: AtomicU64,
    /// Bytes written to disk.
    pub bytes_written: AtomicU64,
    /// Chunk reads that failed verification.
    pub corrupt_reads: AtomicU64,
    /// Chunk reads served from the memory tier.
    pub cache_hits: AtomicU64,
    /// Chunk reads that had to go to a peer.
    pub remote_fetches: AtomicU64,
}

/// Verified chunks kept in memory, weighed by their size.
type ChunkCache = foyer_memory::Cache<ChunkId, Bytes>;

/// The chunk directory of one node, with a memory tier of recently read, already verified chunks in
/// front of it.
pub struct ChunkStore {
    disk: Arc<dyn ChunkDisk>,
    cache: ChunkCache,
    remote: OnceLock<Arc<dyn RemoteChunks>>,
    tiered: OnceLock<TieredChunkCache>,
    /// What the store has done since start.
    pub stats: ChunkStoreStats,
}

impl ChunkStore {
    /// Opens (creating as needed) a chunk store on the local disk under `dir` with a memory tier of
    /// `cache_bytes`, and clears temp files a crash left behind.
    pub fn open(dir: &Path, cache_bytes: usize) -> io::Result<ChunkStore> {
        Ok(ChunkStore::on(Arc::new(LocalDisk::open(dir)?), cache_bytes))
    }

    /// A chunk store on `disk` with a memory tier of `cache_bytes`.
    pub fn on(disk: Arc<dyn ChunkDisk>, cache_bytes: usize) -> ChunkStore {
        let cache = foyer_memory::CacheBuilder::new(cache_bytes.max(1))
            .with_weighter(|_: &ChunkId, chunk: &Bytes| chunk.len())
            .build();
        ChunkStore {
            disk,
            cache,
            remote: OnceLock::new(),
            tiered: OnceLock::new(),
            stats: ChunkStoreStats::default(),
        }
    }

    /// Lets reads of missing chunks go to peers.
    pub fn set_remote(&self, remote: Arc<dyn RemoteChunks>) {
        let _ = self.remote.set(remote);
    }

    /// Makes this a cache node's store: chunks fetched from peers are kept in `tiered`, not on the
    /// chunk directory.
    pub fn set_tiered(&self, tiered: TieredChunkCache) {
        let _ = self.tiered.set(tiered);
    }

    /// The cache node's tiered cache, when this is one.
    pub fn tiered(&self) -> Option<&TieredChunkCache> {
        self.tiered.get()
    }

    /// One chunk from wherever it is: the memory tier, the local disk, the tiered cache, or a peer.
    /// A chunk fetched from a peer is verified before it is served or kept.
    pub async fn read(self: &Arc<Self>, chunk: ChunkRef) -> Result<Bytes, BlobError> {
        let store = self.clone();
        let local = tokio::task::spawn_blocking(move || store.get(&chunk))
            .await
            .map_err(|e| BlobError::Task(e.to_string()))?;
        let missing = match local {
            Err(BlobError::Missing(id)) => id,
            other => return other,
        };
        if let Some(tiered) = self.tiered.get()
            && let Some(bytes) = tiered.get(&chunk).await
        {
            return Ok(bytes);
        }
        let Some(remote) = self.remote.get() else {
            return Err(BlobError::Missing(missing));
        };
        self.stats.remote_fetches.fetch_add(1, Ordering::Relaxed);
        let data = remote.fetch(chunk).await?;
        self.verify(&chunk, &data)?;
        match self.tiered.get() {
            Some(tiered) => tiered.insert(chunk.id, data.clone()),
            None => {
                let store = self.clone();
                let kept = data.clone();
                tokio::task::spawn_blocking(move || store.put(&kept))
                    .await
                    .map_err(|e| BlobError::Task(e.to_string()))??;
            }
        }
        self.cache.insert(chunk.id, data.clone());
        Ok(data)
    }

    fn verify(&self, chunk: &ChunkRef, data: &[u8]) -> Result<(), BlobError> {
        let actual = blake3::hash(data);
        if actual.as_bytes() != &chunk.id.0 || data.len() != chunk.size as usize {
            self.stats.corrupt_reads.fetch_add(1, Ordering::Relaxed);
            tracing::error!(chunk = %chunk.id, "chunk failed verification");
            return Err(BlobError::Corrupt {
                id: chunk.id.to_hex(),
                actual: actual.to_hex().to_string(),
            });
        }
        Ok(())
    }

    /// True when the chunk is stored here.
    pub fn contains(&self, id: &ChunkId) -> bool {
        self.disk.contains(&id.to_hex())
    }

    /// Stores one chunk (blocking) unless an identical one is already stored, and returns its reference.
    /// When this returns the chunk is durable ([`ChunkDisk::write_durable`]).
    pub fn put(&self, data: &[u8]) -> Result<ChunkRef, BlobError> {
        let id = ChunkId(*blake3::hash(data).as_bytes());
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "chunk larger than 4 GiB"))?;
        let name = id.to_hex();
        if self.disk.contains(&name) {
            self.stats
                .chunks_deduplicated
                .fetch_add(1, Ordering::Relaxed);
            return Ok(ChunkRef { id, size });
        }
        self.disk.write_durable(&name, data)?;
        self.stats.chunks_written.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_written
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(ChunkRef { id, size })
    }

    /// One chunk of this node: from the memory tier, or read from disk (blocking), verified against
    /// its name and kept in the memory tier. Peers are not asked.
    pub fn get(&self, chunk: &ChunkRef) -> Result<Bytes, BlobError> {
        if let Some(cached) = self.cache.get(&chunk.id) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(cached.value().clone());
        }
        let data = match self.disk.read(&chunk.id.to_hex()) {
            Ok(data) => data,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::Missing(chunk.id.to_hex()));
            }
            Err(error) => return Err(error.into()),
        };
        self.verify(chunk, &data)?;
        let data = Bytes::from(data);
        self.cache.insert(chunk.id, data.clone());
        Ok(data)
    }

    /// A chunk of this node known only by its id (a peer asking), verified (blocking).
    pub fn read_local(&self, id: &ChunkId) -> Result<Bytes, BlobError> {
        let size = match self.cache.get(id) {
            Some(cached) => return Ok(cached.value().clone()),
            None => match self.disk.size(&id.to_hex()) {
                Ok(len) => u32::try_from(len).unwrap_or(u32::MAX),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    return Err(BlobError::Missing(id.to_hex()));
                }
                Err(error) => return Err(error.into()),
            },
        };
        self.get(&ChunkRef { id: *id, size })
    }
}
