//! Streams bytes into the chunk store: content-defined cutting, sha256 of the whole blob on the same
//! pass, and chunk writes running in the background while more bytes arrive. The chunks a writer
//! stores are pinned until it is dropped: garbage collection never takes the chunks of a blob still
//! being written, however long the upload takes. A writer dropped before it finished (the client
//! went, the disk filled up) removes the chunks it created that no other write took up. A writer
//! takes one of the store's writer turns from its first byte to its end, so the memory that uploads
//! in progress hold is bounded (the writers beyond wait, and their clients with them).

use std::collections::VecDeque;
use std::sync::Arc;

use arca_protocol::{BlobRef, ChunkRef, Sha256};
use bytes::{Bytes, BytesMut};
use sha2::Digest;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{BlobError, ChunkStore, Pins};

/// Smallest chunk FastCDC cuts (except the last of a blob). The gear hash skips the first
/// `MIN_CHUNK` bytes of every chunk, so a larger minimum is less hashing per byte. It was 512 KiB
/// until December 2026: bytes stored before then and pushed again are cut anew, and share few
/// chunks with their earlier copy.
const MIN_CHUNK: u32 = 1024 * 1024;
/// Chunk size FastCDC aims at.
const AVG_CHUNK: u32 = 2 * 1024 * 1024;
/// Largest chunk; also the most a writer buffers before cutting.
const MAX_CHUNK: u32 = 8 * 1024 * 1024;
/// Bytes a writer's buffer holds per allocation: room for the uncut rest and at least one more
/// chunk.
const BUFFER_BYTES: usize = 2 * MAX_CHUNK as usize;
/// Chunk writes that may run while more bytes are received.
const WRITES_IN_FLIGHT: usize = 4;
/// Blobs up to this size live in the metadata ([`BlobRef::inline`]): a file of their own would cost
/// a whole file-system block and an inode, and two fsyncs, for a few bytes.
pub const INLINE_MAX: usize = 4096;

/// Writes one blob. Feed it with [`BlobWriter::write`], then call [`BlobWriter::finish`]; dropping it
/// unfinished leaves no blob, and removes the chunks only it wrote.
pub struct BlobWriter {
    store: Arc<ChunkStore>,
    buffer: BytesMut,
    sha256: sha2::Sha256,
    size: u64,
    written: Vec<ChunkRef>,
    in_flight: VecDeque<JoinHandle<Result<ChunkRef, BlobError>>>,
    on_stored: Option<ChunkStored>,
    /// Resolves when the previous chunk was announced to `on_stored` (dropped unsent if it failed).
    last_announced: Option<oneshot::Receiver<()>>,
    pins: Arc<Pins>,
    /// The store's writer turn, held from the first byte until the bytes are all stored (or the
    /// writer checkpoints, with nothing buffered).
    turn: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A blob being written, as far as it is durable: its chunks in order and its length.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WriterCheckpoint {
    /// The chunks so far.
    pub chunks: Vec<ChunkRef>,
    /// The bytes so far.
    pub size: u64,
}

/// Told of each chunk, in order, as soon as it is durable (so readers can serve a blob still
/// arriving); after a chunk fails, no later one is announced.
pub type ChunkStored = Arc<dyn Fn(ChunkRef) + Send + Sync>;

impl BlobWriter {
    /// A writer for a new blob.
    pub fn new(store: Arc<ChunkStore>) -> Self {
        BlobWriter {
            pins: Arc::new(Pins::new(store.clone())),
            store,
            buffer: BytesMut::new(),
            sha256: sha2::Sha256::new(),
            size: 0,
            written: Vec::new(),
            in_flight: VecDeque::new(),
            on_stored: None,
            last_announced: None,
            turn: None,
        }
    }

    /// A writer that tells `on_stored` of each chunk, in order, once it is durable.
    pub fn with_progress(store: Arc<ChunkStore>, on_stored: ChunkStored) -> Self {
        BlobWriter {
            on_stored: Some(on_stored),
            ..BlobWriter::new(store)
        }
    }

    fn stored(&mut self, chunk: ChunkRef) {
        self.written.push(chunk);
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends bytes to the blob.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), BlobError> {
        if self.turn.is_none() {
            self.turn = self.store.writer_turn().await;
        }
        self.sha256.update(data);
        self.size += data.len() as u64;
        if self.buffer.capacity() - self.buffer.len() < data.len() {
            // A new allocation, into which only the bytes not yet cut move (the chunks cut keep
            // the old one until they are written). Left to grow by itself, the buffer would move
            // the uncut rest (up to a whole chunk) after every cut. Small blobs double it as they
            // grow, up to the full size.
            let needed = self.buffer.len() + data.len();
            let mut fresh =
                BytesMut::with_capacity(needed.max(needed.saturating_mul(2).min(BUFFER_BYTES)));
            fresh.extend_from_slice(&self.buffer);
            self.buffer = fresh;
        }
        self.buffer.extend_from_slice(data);
        while self.buffer.len() >= MAX_CHUNK as usize {
            let cut = first_cut(&self.buffer);
            let chunk = self.buffer.split_to(cut).freeze();
            self.spawn_write(chunk).await?;
        }
        Ok(())
    }

    /// Cuts and stores what is left, waits for every chunk to be durable and returns the blob. A
    /// blob of at most [`INLINE_MAX`] bytes is returned with its bytes inline, and stores no chunk
    /// (unless chunks are announced as they arrive: a reader may be streaming it).
    pub async fn finish(mut self) -> Result<BlobRef, BlobError> {
        let rest = self.buffer.split().freeze();
        if self.on_stored.is_none()
            && self.in_flight.is_empty()
            && self.written.is_empty()
            && rest.len() <= INLINE_MAX
        {
            self.pins.keep_written();
            return Ok(BlobRef {
                sha256: Sha256(self.sha256.finalize().into()),
                size: self.size,
                chunks: Vec::new(),
                inline: Some(rest.to_vec()),
            });
        }
        let cuts: Vec<(usize, usize)> =
            fastcdc::v2020::FastCDC::new(&rest, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
                .map(|chunk| (chunk.offset, chunk.length))
                .collect();
        for (offset, length) in cuts {
            self.spawn_write(rest.slice(offset..offset + length))
                .await?;
        }
        while let Some(pending) = self.in_flight.pop_front() {
            let chunk = join(pending).await?;
            self.stored(chunk);
        }
        self.pins.keep_written();
        Ok(BlobRef {
            sha256: Sha256(self.sha256.finalize().into()),
            size: self.size,
            chunks: self.written,
            inline: None,
        })
    }

    /// Stores what is buffered as a chunk of its own and waits until every chunk is durable: the
    /// blob so far is then wholly in the chunk store, and [`BlobWriter::resume`] can go on with it
    /// after a restart.
    pub async fn checkpoint(&mut self) -> Result<WriterCheckpoint, BlobError> {
        let rest = self.buffer.split().freeze();
        if !rest.is_empty() {
            self.spawn_write(rest).await?;
        }
        while let Some(pending) = self.in_flight.pop_front() {
            let chunk = join(pending).await?;
            self.stored(chunk);
        }
        // Nothing is buffered now: the turn goes back until more bytes come.
        self.turn = None;
        Ok(WriterCheckpoint {
            chunks: self.written.clone(),
            size: self.size,
        })
    }

    /// A writer that goes on with a blob begun by another writer (before a restart, say): its
    /// chunks are pinned again and read once to take up the sha256. `None` when one of them is no
    /// longer stored.
    pub async fn resume(
        store: Arc<ChunkStore>,
        checkpoint: WriterCheckpoint,
    ) -> Result<Option<BlobWriter>, BlobError> {
        let mut writer = BlobWriter::new(store.clone());
        for chunk in &checkpoint.chunks {
            if !store.pin_stored(chunk.id, &writer.pins) {
                return Ok(None);
            }
            writer.sha256.update(&store.read(*chunk).await?);
        }
        writer.size = checkpoint.size;
        writer.written = checkpoint.chunks;
        // The chunks are the earlier writer's: they stay if this one fails (collection decides).
        Ok(Some(writer))
    }

    async fn spawn_write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        if self.in_flight.len() >= WRITES_IN_FLIGHT
            && let Some(oldest) = self.in_flight.pop_front()
        {
            let chunk = join(oldest).await?;
            self.stored(chunk);
        }
        let store = self.store.clone();
        let pins = self.pins.clone();
        let put = crate::blocking::spawn(move || store.put_pinned(&chunk, &pins));
        let Some(on_stored) = self.on_stored.clone() else {
            self.in_flight.push_back(put);
            return Ok(());
        };
        // Announce each chunk as soon as it is durable, in order: after the one before it.
        let previous = self.last_announced.take();
        let (announced, next) = oneshot::channel();
        self.last_announced = Some(next);
        self.in_flight.push_back(tokio::spawn(async move {
            let result = join(put).await;
            let in_order = match previous {
                Some(previous) => previous.await.is_ok(),
                None => true,
            };
            if let (Ok(chunk), true) = (&result, in_order) {
                on_stored(*chunk);
                let _ = announced.send(());
            }
            result
        }));
        Ok(())
    }
}

/// Length of the first content-defined chunk of `data`, which holds at least `MAX_CHUNK` bytes.
fn first_cut(data: &[u8]) -> usize {
    fastcdc::v2020::FastCDC::new(data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
        .next()
        .map_or(data.len(), |chunk| chunk.length)
}

async fn join(handle: JoinHandle<Result<ChunkRef, BlobError>>) -> Result<ChunkRef, BlobError> {
    handle.await.map_err(|e| BlobError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::pseudo_random;

    /// How many chunk files the store holds.
    fn chunk_files(store: &ChunkStore) -> usize {
        (0..=255u8)
            .map(|prefix| {
                store
                    .list(&format!("{prefix:02x}"))
                    .map_or(0, |found| found.len())
            })
            .sum()
    }

    /// Writes `data` and, unless `finish`, drops the writer unfinished once every chunk cut so far
    /// is on disk.
    async fn write(store: &Arc<ChunkStore>, data: &[u8], finish: bool) -> Option<BlobRef> {
        let mut writer = BlobWriter::new(store.clone());
        writer.write(data).await.expect("write");
        if finish {
            return Some(writer.finish().await.expect("finish"));
        }
        while let Some(pending) = writer.in_flight.pop_front() {
            let chunk = join(pending).await.expect("chunk");
            writer.stored(chunk);
        }
        None
    }

    #[tokio::test]
    async fn a_writer_dropped_unfinished_removes_the_chunks_only_it_wrote() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(ChunkStore::open(dir.path(), 1 << 20).expect("store"));
        let shared = pseudo_random(3 * MAX_CHUNK as usize, 1);
        let finished = write(&store, &shared, true).await.expect("blob");
        let kept = chunk_files(&store);
        assert!(kept >= 2, "{kept} chunks");

        // Only new bytes: all of its chunks go with it.
        write(&store, &pseudo_random(3 * MAX_CHUNK as usize, 2), false).await;
        assert_eq!(chunk_files(&store), kept);

        // Bytes another blob holds too: those chunks stay.
        let mut mixed = shared.clone();
        mixed.extend(pseudo_random(2 * MAX_CHUNK as usize, 3));
        write(&store, &mixed, false).await;
        assert_eq!(chunk_files(&store), kept);
        for chunk in &finished.chunks {
            store.get(chunk).expect("a finished blob keeps its chunks");
        }
    }

    #[tokio::test]
    async fn a_chunk_another_writer_took_up_stays_when_its_creator_fails() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(ChunkStore::open(dir.path(), 1 << 20).expect("store"));
        let data = pseudo_random(2 * MAX_CHUNK as usize, 4);
        let mut first = BlobWriter::new(store.clone());
        first.write(&data).await.expect("write");
        while let Some(pending) = first.in_flight.pop_front() {
            let chunk = join(pending).await.expect("chunk");
            first.stored(chunk);
        }
        // A second writer of the same bytes reuses the first one's chunks, and finishes.
        let second = write(&store, &data, true).await.expect("blob");
        drop(first);
        for chunk in &second.chunks {
            store.get(chunk).expect("the finished blob's chunks stay");
        }
        // A chunk looked up (a replication deciding what it has) is no longer anyone's alone.
        let mut third = BlobWriter::new(store.clone());
        let fresh = pseudo_random(2 * MAX_CHUNK as usize, 5);
        third.write(&fresh).await.expect("write");
        while let Some(pending) = third.in_flight.pop_front() {
            let chunk = join(pending).await.expect("chunk");
            third.stored(chunk);
        }
        let looked_up = third.written[0];
        assert!(store.contains(&looked_up.id));
        drop(third);
        store
            .get(&looked_up)
            .expect("a chunk someone relied on stays");
    }

    #[tokio::test]
    async fn chunks_are_not_written_below_the_free_space_floor() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(ChunkStore::open(dir.path(), 1 << 20).expect("store"));
        let (_, available) = store.space();
        let available = available.expect("the local disk says what is free");
        store.set_min_free(available + (1 << 30));
        let mut writer = BlobWriter::new(store.clone());
        let refused = match writer
            .write(&pseudo_random(2 * MAX_CHUNK as usize, 6))
            .await
        {
            Err(error) => error,
            Ok(()) => writer.finish().await.expect_err("refused at the floor"),
        };
        assert!(matches!(refused, BlobError::NoSpace { .. }), "{refused}");
        assert!(matches!(
            store.check_room(1),
            Err(BlobError::NoSpace { .. })
        ));
        store.set_min_free(0);
        store.check_room(1).expect("room again");
    }
}
