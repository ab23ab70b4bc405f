//! The tiered chunk cache of a cache node.
//!
//! A cache node holds no full replica: it keeps the chunks it has served in a memory tier and, behind
//! it, a disk tier under its own directory (e.g. `<data-dir>/cache`), both bounded by configured sizes.
//! This module owns that directory and both tiers, built on foyer's `HybridCache`. Every chunk is
//! written to the disk tier when it is inserted (chunks are immutable and content-addressed, so an entry
//! is never rewritten), and the memory tier only ever drops chunks. Entries loaded back from disk are
//! checked against their blake3 name before they are served.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arca_protocol::{ChunkId, ChunkRef};
use bytes::Bytes;
use foyer::{
    BlockEngineConfig, DeviceBuilder, Event, EventListener, FsDeviceBuilder, HybridCache,
    HybridCacheBuilder, HybridCachePolicy, PsyncIoEngineConfig, RecoverMode, Source,
};

use super::BlobError;

/// Size of one disk-tier block: the unit foyer writes and evicts, and the largest entry it can hold
/// (a chunk is at most 8 MiB).
const BLOCK_BYTES: usize = 16 << 20;
/// The disk tier needs a few blocks to rotate through.
const MIN_DISK_BYTES: usize = 4 * BLOCK_BYTES;
/// Chunks waiting to be written to the disk tier; past this, new chunks skip the disk tier.
const WRITE_QUEUE_BYTES: usize = 64 << 20;
/// Memory a shard of the memory tier should at least hold, so a large chunk does not flush a shard.
const MIN_SHARD_BYTES: usize = 64 << 20;

/// The cache key: a chunk's blake3 name (a local type, so foyer's `Code` can be implemented for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ChunkKey([u8; 32]);

impl foyer::Code for ChunkKey {
    fn encode(&self, writer: &mut impl io::Write) -> foyer::Result<()> {
        writer.write_all(&self.0).map_err(foyer::Error::io_error)
    }

    fn decode(reader: &mut impl io::Read) -> foyer::Result<Self> {
        let mut id = [0u8; 32];
        reader.read_exact(&mut id).map_err(foyer::Error::io_error)?;
        Ok(ChunkKey(id))
    }

    fn estimated_size(&self) -> usize {
        self.0.len()
    }
}

/// Counters shared with the eviction listener.
#[derive(Debug, Default)]
struct Counters {
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    inserts: AtomicU64,
}

/// Counts chunks the memory tier pushed out to make room (foyer's `Event::Evict`).
struct EvictionListener(Arc<Counters>);

impl EventListener for EvictionListener {
    type Key = ChunkKey;
    type Value = Bytes;

    fn on_leave(&self, reason: Event, _key: &ChunkKey, _value: &Bytes) {
        if reason == Event::Evict {
            self.0.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the cache has done since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TieredCacheStats {
    /// Reads served from the memory tier (including chunks still queued for the disk tier).
    pub memory_hits: u64,
    /// Reads served from the disk tier whose bytes matched their name.
    pub disk_hits: u64,
    /// Reads that found nothing usable: absent, unreadable, or failing verification.
    pub misses: u64,
    /// Chunks the memory tier dropped to stay within its size (they stay in the disk tier until it
    /// needs their space; evictions of the disk tier itself are not counted).
    pub evictions: u64,
    /// Chunks inserted.
    pub inserts: u64,
}

/// Chunks a cache node has served, in memory then on local disk, bounded by configured sizes.
pub struct TieredChunkCache {
    cache: HybridCache<ChunkKey, Bytes>,
    counters: Arc<Counters>,
}

impl TieredChunkCache {
    /// Opens the cache with a memory tier of `memory_bytes` (weighed by chunk length) and a disk tier of
    /// `disk_bytes` under `dir`, recovering what an earlier run left in the disk tier.
    pub async fn open(
        dir: &Path,
        memory_bytes: usize,
        disk_bytes: usize,
    ) -> Result<TieredChunkCache, BlobError> {
        if disk_bytes < MIN_DISK_BYTES {
            return Err(BlobError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the chunk cache's disk tier needs at least {MIN_DISK_BYTES} bytes, got {disk_bytes}"
                ),
            )));
        }
        let counters = Arc::new(Counters::default());
        let device = FsDeviceBuilder::new(dir)
            .with_capacity(disk_bytes)
            .build()
            .map_err(foyer_error)?;
        let engine = BlockEngineConfig::new(device)
            .with_block_size(BLOCK_BYTES)
            .with_submit_queue_size_threshold(WRITE_QUEUE_BYTES);
        let cache = HybridCacheBuilder::new()
            .with_name("arca-chunk-cache")
            .with_policy(HybridCachePolicy::WriteOnInsertion)
            // Every chunk reached the disk tier when it was inserted.
            .with_flush_on_close(false)
            .with_event_listener(Arc::new(EvictionListener(counters.clone())))
            .memory(memory_bytes.max(1))
            .with_shards((memory_bytes / MIN_SHARD_BYTES).clamp(1, 8))
            .with_weighter(|_: &ChunkKey, chunk: &Bytes| chunk.len())
            .storage()
            .with_io_engine_config(PsyncIoEngineConfig::new())
            .with_engine_config(engine)
            .with_recover_mode(RecoverMode::Quiet)
            .build()
            .await
            .map_err(foyer_error)?;
        tracing::info!(dir = %dir.display(), memory_bytes, disk_bytes, "chunk cache open");
        Ok(TieredChunkCache { cache, counters })
    }

    /// A chunk by id: memory tier, then disk tier. Bytes from the disk tier are re-verified against the
    /// blake3 id and length; an entry that does not match is removed and reported as a miss. The memory
    /// tier only holds bytes that were verified when they entered it.
    pub async fn get(&self, chunk: &ChunkRef) -> Option<Bytes> {
        let key = ChunkKey(chunk.id.0);
        let entry = match self.cache.get(&key).await {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Err(error) => {
                tracing::warn!(chunk = %chunk.id, %error, "chunk cache read failed");
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let data = entry.value().clone();
        let from_disk = entry.source() == Source::Disk;
        drop(entry);
        if !from_disk {
            self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Some(data);
        }
        if data.len() != chunk.size as usize || blake3::hash(&data).as_bytes() != &chunk.id.0 {
            tracing::error!(chunk = %chunk.id, "cached chunk failed verification; dropped");
            self.cache.remove(&key);
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.counters.disk_hits.fetch_add(1, Ordering::Relaxed);
        Some(data)
    }

    /// Keeps a verified chunk: in the memory tier now, and queued for the disk tier.
    pub fn insert(&self, id: ChunkId, data: Bytes) {
        self.cache.insert(ChunkKey(id.0), data);
        self.counters.inserts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counters since open.
    pub fn stats(&self) -> TieredCacheStats {
        let c = &self.counters;
        TieredCacheStats {
            memory_hits: c.memory_hits.load(Ordering::Relaxed),
            disk_hits: c.disk_hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            inserts: c.inserts.load(Ordering::Relaxed),
        }
    }

    /// Waits for queued disk-tier writes to finish and closes the cache; later inserts are not kept on
    /// disk.
    pub async fn close(&self) {
        if let Err(error) = self.cache.close().await {
            tracing::warn!(%error, "closing the chunk cache failed");
        }
    }
}

fn foyer_error(error: foyer::Error) -> BlobError {
    BlobError::Io(io::Error::other(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;

    /// Distinct 64 KiB chunks with their references.
    fn chunks(count: usize) -> Vec<(ChunkRef, Bytes)> {
        (0..count)
            .map(|i| {
                let data = Bytes::from(vec![i as u8; 64 * KIB]);
                let id = ChunkId(*blake3::hash(&data).as_bytes());
                let size = data.len() as u32;
                (ChunkRef { id, size }, data)
            })
            .collect()
    }

    #[tokio::test]
    async fn chunks_beyond_the_memory_tier_are_read_back_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TieredChunkCache::open(dir.path(), MIB, MIN_DISK_BYTES)
            .await
            .unwrap();
        let chunks = chunks(48); // 3 MiB through a 1 MiB memory tier
        for (chunk, data) in &chunks {
            cache.insert(chunk.id, data.clone());
        }
        cache.cache.storage().wait().await;
        for (chunk, data) in &chunks {
            assert_eq!(cache.get(chunk).await.as_ref(), Some(data));
        }
        let stats = cache.stats();
        assert_eq!(stats.inserts, 48);
        assert_eq!(stats.misses, 0);
        assert_eq!(stats.memory_hits + stats.disk_hits, 48);
        assert!(stats.disk_hits > 0, "{stats:?}");
        assert!(stats.evictions > 0, "{stats:?}");
        cache.close().await;
    }

    #[tokio::test]
    async fn a_miss_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TieredChunkCache::open(dir.path(), MIB, MIN_DISK_BYTES)
            .await
            .unwrap();
        let (chunk, _) = chunks(1).remove(0);
        assert_eq!(cache.get(&chunk).await, None);
        assert_eq!(cache.stats().misses, 1);
        cache.close().await;
    }

    #[tokio::test]
    async fn a_chunk_whose_length_does_not_match_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TieredChunkCache::open(dir.path(), 64 * KIB, MIN_DISK_BYTES)
            .await
            .unwrap();
        let chunks = chunks(2);
        for (chunk, data) in &chunks {
            cache.insert(chunk.id, data.clone());
        }
        cache.cache.storage().wait().await;
        // The first chunk has been pushed out of memory; asked for with the wrong length it fails
        // verification, is dropped, and stays dropped.
        let wrong = ChunkRef {
            size: chunks[0].0.size - 1,
            ..chunks[0].0
        };
        assert_eq!(cache.get(&wrong).await, None);
        assert_eq!(cache.get(&chunks[0].0).await, None);
        assert_eq!(cache.stats().misses, 2);
        cache.close().await;
    }

    #[tokio::test]
    async fn the_disk_tier_survives_close_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = chunks(4);
        let cache = TieredChunkCache::open(dir.path(), MIB, MIN_DISK_BYTES)
            .await
            .unwrap();
        for (chunk, data) in &chunks {
            cache.insert(chunk.id, data.clone());
        }
        cache.close().await;
        drop(cache);

        let cache = TieredChunkCache::open(dir.path(), MIB, MIN_DISK_BYTES)
            .await
            .unwrap();
        for (chunk, data) in &chunks {
            assert_eq!(cache.get(chunk).await.as_ref(), Some(data));
        }
        assert_eq!(cache.stats().disk_hits, 4);
        cache.close().await;
    }
}
