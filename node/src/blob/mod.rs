//! The content-addressed chunk store and the blobs built from it.
//!
//! A blob is cut into content-defined chunks (FastCDC); each chunk is named by its blake3 hash and
//! written once to `<dir>/<aa>/<bb>/<hash>` (temp file, fsync, rename, fsync of the directory), or
//! to the site's S3-compatible bucket ([`BucketDisk`]) when the node is configured with one, so
//! identical chunks in any blob are stored once. The blob's sha256 is computed on the same pass, and
//! no blob is ever held whole in memory. Every read re-hashes the chunk and refuses to serve bytes that
//! do not match their name.

mod bucket;
mod disk;
mod migrate;
mod reader;
mod scrub;
mod store;
mod tiered;
mod writer;

pub use bucket::{
    BucketDisk, BucketError, BucketSettings, BucketStats, REQUEST_KINDS, StorageUnavailable, Trash,
    is_unavailable,
};
pub use disk::{ChunkDisk, LocalDisk};
pub use migrate::{LayeredDisk, MigrateError, Migration};
pub use reader::{ByteRange, read_blob};
pub use scrub::{ScrubCounts, Scrubber};
pub use store::{
    ChunkStore, ChunkStoreStats, Collection, Pins, RemoteChunks, ScrubOutcome, StoredChunk,
};
pub use tiered::{TieredCacheStats, TieredChunkCache};
pub use writer::{BlobWriter, ChunkStored, WriterCheckpoint};

/// Errors of the chunk store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The disk failed.
    #[error("chunk store i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A chunk's bytes no longer match its name.
    #[error("chunk {id} is corrupt: its content hashes to {actual}")]
    Corrupt {
        /// The chunk's name.
        id: String,
        /// What the bytes on disk hash to.
        actual: String,
    },
    /// A chunk the metadata names is not on this node.
    #[error("chunk {0} is missing")]
    Missing(String),
    /// The disk has no room for more chunks: it is full, or writing would leave less free than the
    /// floor kept for the metadata.
    #[error(
        "this node's disk is full: {available} bytes free, and {floor} are kept free for its metadata"
    )]
    NoSpace {
        /// Bytes free.
        available: u64,
        /// The free space chunk writes never go below.
        floor: u64,
    },
    /// A blocking task panicked or was cancelled.
    #[error("chunk store task failed: {0}")]
    Task(String),
}

impl BlobError {
    /// The HTTP status this failure answers with, and its error code: 507 `INSUFFICIENT_STORAGE`
    /// for a full disk, 503 `UNAVAILABLE` for an object store that is down, 500 `INTERNAL` for the
    /// rest.
    pub fn status(&self) -> (axum::http::StatusCode, &'static str) {
        use axum::http::StatusCode;
        match self {
            BlobError::NoSpace { .. } => (StatusCode::INSUFFICIENT_STORAGE, "INSUFFICIENT_STORAGE"),
            BlobError::Io(io) if is_unavailable(io) => {
                (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        }
    }
}

/// Deterministic bytes that do not repeat (xorshift), for the store's tests.
#[cfg(test)]
pub(crate) fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
