//! Chunks on local disk, named by their blake3 hash.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arca_protocol::{ChunkId, ChunkRef};
use bytes::Bytes;

use super::BlobError;

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
}

/// Verified chunks kept in memory, weighed by their size.
type ChunkCache = foyer_memory::Cache<ChunkId, Bytes>;

/// The chunk directory of one node, with a memory tier of recently read, already verified chunks in
/// front of it.
pub struct ChunkStore {
    root: PathBuf,
    tmp: PathBuf,
    cache: ChunkCache,
    /// What the store has done since start.
    pub stats: ChunkStoreStats,
}

impl ChunkStore {
    /// Opens (creating as needed) a chunk store under `dir` with a memory tier of `cache_bytes`, and
    /// clears temp files a crash left behind.
    pub fn open(dir: &Path, cache_bytes: usize) -> io::Result<ChunkStore> {
        let root = dir.join("chunks");
        let tmp = dir.join("tmp");
        fs::create_dir_all(&root)?;
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        let cache = foyer_memory::CacheBuilder::new(cache_bytes.max(1))
            .with_weighter(|_: &ChunkId, chunk: &Bytes| chunk.len())
            .build();
        Ok(ChunkStore {
            root,
            tmp,
            cache,
            stats: ChunkStoreStats::default(),
        })
    }

    fn chunk_path(&self, id: &ChunkId) -> PathBuf {
        let name = id.to_hex();
        self.root.join(&name[0..2]).join(&name[2..4]).join(name)
    }

    /// True when the chunk is stored here.
    pub fn contains(&self, id: &ChunkId) -> bool {
        self.chunk_path(id).exists()
    }

    /// Stores one chunk (blocking) unless an identical one is already stored, and returns its reference.
    /// When this returns the chunk is durable: its file was fsynced before the rename made it visible,
    /// and the directories holding the new name were fsynced after.
    pub fn put(&self, data: &[u8]) -> Result<ChunkRef, BlobError> {
        let id = ChunkId(*blake3::hash(data).as_bytes());
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "chunk larger than 4 GiB"))?;
        let path = self.chunk_path(&id);
        if path.exists() {
            self.stats
                .chunks_deduplicated
                .fetch_add(1, Ordering::Relaxed);
            return Ok(ChunkRef { id, size });
        }
        let dir = path.parent().unwrap_or(&self.root);
        // The fan-out directories created here must reach the disk too.
        let mut created = Vec::new();
        let mut missing = Some(dir);
        while let Some(candidate) = missing.filter(|d| !d.exists() && *d != self.root) {
            created.push(candidate);
            missing = candidate.parent();
        }
        fs::create_dir_all(dir)?;
        let temp = tempfile::NamedTempFile::new_in(&self.tmp)?;
        let mut file: &File = temp.as_file();
        file.write_all(data)?;
        file.sync_data()?;
        temp.persist(&path).map_err(|e| e.error)?;
        File::open(dir)?.sync_all()?;
        for new_dir in created {
            if let Some(parent) = new_dir.parent() {
                File::open(parent)?.sync_all()?;
            }
        }
        self.stats.chunks_written.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_written
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(ChunkRef { id, size })
    }

    /// One chunk: from the memory tier, or read from disk (blocking), verified against its name and
    /// kept in the memory tier.
    pub fn get(&self, chunk: &ChunkRef) -> Result<Bytes, BlobError> {
        if let Some(cached) = self.cache.get(&chunk.id) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(cached.value().clone());
        }
        let data = match fs::read(self.chunk_path(&chunk.id)) {
            Ok(data) => data,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::Missing(chunk.id.to_hex()));
            }
            Err(error) => return Err(error.into()),
        };
        let actual = blake3::hash(&data);
        if actual.as_bytes() != &chunk.id.0 || data.len() != chunk.size as usize {
            self.stats.corrupt_reads.fetch_add(1, Ordering::Relaxed);
            tracing::error!(chunk = %chunk.id, "chunk failed verification");
            return Err(BlobError::Corrupt {
                id: chunk.id.to_hex(),
                actual: actual.to_hex().to_string(),
            });
        }
        let data = Bytes::from(data);
        self.cache.insert(chunk.id, data.clone());
        Ok(data)
    }

    /// Where a chunk lives on disk (for tests that damage it on purpose).
    pub fn path_of(&self, id: &ChunkId) -> PathBuf {
        self.chunk_path(id)
    }
}
