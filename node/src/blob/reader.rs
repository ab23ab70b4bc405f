//! Streams a blob (or a byte range of it) out of the chunk store, verifying every chunk it reads and
//! reading ahead so disk and network overlap.

use std::sync::Arc;

use arca_protocol::{BlobRef, ChunkRef};
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::{BlobError, ChunkStore};

/// Chunk reads that may run ahead of the consumer.
const READ_AHEAD: usize = 4;

/// An inclusive byte range within a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range (at least one).
    pub fn byte_count(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// The bytes of `blob` within `range` (the whole blob when `None`), chunk by chunk.
pub fn read_blob(
    store: Arc<ChunkStore>,
    blob: &BlobRef,
    range: Option<ByteRange>,
) -> impl Stream<Item = Result<Bytes, BlobError>> + Send + 'static {
    let range = range.unwrap_or(ByteRange {
        start: 0,
        end: blob.size.saturating_sub(1),
    });
    if let Some(inline) = &blob.inline {
        let end = usize::try_from(range.end + 1)
            .unwrap_or(usize::MAX)
            .min(inline.len());
        let start = usize::try_from(range.start).unwrap_or(usize::MAX).min(end);
        let bytes = Bytes::copy_from_slice(&inline[start..end]);
        return futures::stream::iter([Ok(bytes)]).left_stream();
    }
    let mut plan: Vec<(ChunkRef, usize, usize)> = Vec::new();
    let mut chunk_start = 0u64;
    for chunk in &blob.chunks {
        let chunk_end = chunk_start + u64::from(chunk.size);
        if blob.size > 0 && chunk_end > range.start && chunk_start <= range.end {
            let from = range.start.saturating_sub(chunk_start) as usize;
            let to = (range.end + 1).min(chunk_end) - chunk_start;
            plan.push((*chunk, from, to as usize));
        }
        chunk_start = chunk_end;
    }
    futures::stream::iter(plan)
        .map(move |(chunk, from, to)| {
            let store = store.clone();
            async move {
                let bytes = store.read(chunk).await?;
                Ok(bytes.slice(from..to))
            }
        })
        .buffered(READ_AHEAD)
        .right_stream()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::{BlobWriter, LocalDisk, pseudo_random};
    use sha2::Digest;

    async fn store_bytes(store: &Arc<ChunkStore>, data: &[u8]) -> BlobRef {
        let mut writer = BlobWriter::new(store.clone());
        for piece in data.chunks(100_003) {
            writer.write(piece).await.expect("write");
        }
        writer.finish().await.expect("finish")
    }

    async fn collect(
        store: &Arc<ChunkStore>,
        blob: &BlobRef,
        range: Option<ByteRange>,
    ) -> Result<Vec<u8>, BlobError> {
        let mut out = Vec::new();
        let mut stream = std::pin::pin!(read_blob(store.clone(), blob, range));
        while let Some(piece) = stream.next().await {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn round_trip_ranges_and_sha256() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(ChunkStore::open(dir.path(), 1 << 20).expect("store"));
        let data = pseudo_random(20 * 1024 * 1024 + 17, 7);
        let blob = store_bytes(&store, &data).await;
        assert_eq!(blob.size, data.len() as u64);
        assert_eq!(blob.sha256.0, <[u8; 32]>::from(sha2::Sha256::digest(&data)));
        assert!(blob.chunks.len() >= 3, "20 MiB is cut into several chunks");
        assert_eq!(
            blob.chunks.iter().map(|c| u64::from(c.size)).sum::<u64>(),
            blob.size
        );
        assert_eq!(collect(&store, &blob, None).await.expect("read"), data);
        for (start, end) in [(0, 0), (5, 3_000_000), (9_000_000, data.len() as u64 - 1)] {
            let got = collect(&store, &blob, Some(ByteRange { start, end }))
                .await
                .expect("range");
            assert_eq!(got, &data[start as usize..=end as usize]);
        }
    }

    #[tokio::test]
    async fn identical_content_is_stored_once() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(ChunkStore::open(dir.path(), 1 << 20).expect("store"));
        let data = pseudo_random(12 * 1024 * 1024, 3);
        let first = store_bytes(&store, &data).await;
        let written = store
            .stats
            .chunks_written
            .load(std::sync::atomic::Ordering::Relaxed);
        let second = store_bytes(&store, &data).await;
        assert_eq!(first, second);
        assert_eq!(
            store
                .stats
                .chunks_written
                .load(std::sync::atomic::Ordering::Relaxed),
            written,
            "no chunk written twice"
        );
        // A shifted copy shares most content-defined chunks with the original.
        let mut shifted = b"prefix".to_vec();
        shifted.extend_from_slice(&data);
        let third = store_bytes(&store, &shifted).await;
        let shared = third
            .chunks
            .iter()
            .filter(|c| first.chunks.contains(c))
            .count();
        assert!(
            shared >= first.chunks.len() - 1,
            "content-defined chunks survive a shift"
        );
    }

    #[tokio::test]
    async fn corrupt_chunk_is_never_served() {
        let dir = tempfile::tempdir().expect("dir");
        let disk = Arc::new(LocalDisk::open(dir.path()).expect("disk"));
        let store = Arc::new(ChunkStore::on(disk.clone(), 1 << 20));
        let data = pseudo_random(1024 * 1024, 11);
        let blob = store_bytes(&store, &data).await;
        let path = disk.path_of(&blob.chunks[0].id.to_hex());
        let mut damaged = std::fs::read(&path).expect("read chunk");
        damaged[100] ^= 0xff;
        std::fs::write(&path, damaged).expect("damage chunk");
        assert!(matches!(
            collect(&store, &blob, None).await,
            Err(BlobError::Corrupt { .. })
        ));
        std::fs::remove_file(&path).expect("remove chunk");
        assert!(matches!(
            collect(&store, &blob, None).await,
            Err(BlobError::Missing(_))
        ));
    }

    #[tokio::test]
    async fn verified_chunks_are_served_from_the_memory_tier() {
        let dir = tempfile::tempdir().expect("dir");
        let disk = Arc::new(LocalDisk::open(dir.path()).expect("disk"));
        let store = Arc::new(ChunkStore::on(disk.clone(), 64 << 20));
        let data = pseudo_random(3 * 1024 * 1024, 5);
        let blob = store_bytes(&store, &data).await;
        assert_eq!(collect(&store, &blob, None).await.expect("read"), data);
        let hits = || {
            store
                .stats
                .cache_hits
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        assert_eq!(hits(), 0, "the first read comes from disk");
        for chunk in &blob.chunks {
            std::fs::remove_file(disk.path_of(&chunk.id.to_hex())).expect("remove");
        }
        assert_eq!(collect(&store, &blob, None).await.expect("read"), data);
        assert_eq!(hits(), blob.chunks.len() as u64);
    }

    #[tokio::test]
    async fn empty_blob() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(ChunkStore::open(dir.path(), 1 << 20).expect("store"));
        let blob = store_bytes(&store, b"").await;
        assert_eq!(blob.size, 0);
        assert!(collect(&store, &blob, None).await.expect("read").is_empty());
    }
}
