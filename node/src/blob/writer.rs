//! Streams bytes into the chunk store: content-defined cutting, sha256 of the whole blob on the same
//! pass, and chunk writes running in the background while more bytes arrive. The chunks a writer
//! stores are pinned until it is dropped: garbage collection never takes the chunks of a blob still
//! being written, however long the upload takes.

use std::collections::VecDeque;
use std::sync::Arc;

use arca_protocol::{BlobRef, ChunkRef, Sha256};
use bytes::{Bytes, BytesMut};
use sha2::Digest;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{BlobError, ChunkStore, Pins};

/// Smallest chunk FastCDC cuts (except the last of a blob).
const MIN_CHUNK: u32 = 512 * 1024;
/// Chunk size FastCDC aims at.
const AVG_CHUNK: u32 = 2 * 1024 * 1024;
/// Largest chunk; also the most a writer buffers before cutting.
const MAX_CHUNK: u32 = 8 * 1024 * 1024;
/// Chunk writes that may run while more bytes are received.
const WRITES_IN_FLIGHT: usize = 4;
/// Blobs up to this size live in the metadata ([`BlobRef::inline`]): a file of their own would cost
/// a whole file-system block and an inode, and two fsyncs, for a few bytes.
pub const INLINE_MAX: usize = 4096;

/// Writes one blob. Feed it with [`BlobWriter::write`], then call [`BlobWriter::finish`]; dropping it
/// unfinished leaves only unreferenced chunks behind, never a blob.
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
        self.sha256.update(data);
        self.size += data.len() as u64;
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
        if self.on_stored.is_none() && self.in_flight.is_empty() && rest.len() <= INLINE_MAX {
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
        Ok(BlobRef {
            sha256: Sha256(self.sha256.finalize().into()),
            size: self.size,
            chunks: self.written,
            inline: None,
        })
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
