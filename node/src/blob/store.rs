//! Chunks on disk ([`ChunkDisk`]), named by their blake3 hash, with a memory tier in front; a chunk this node
//! lacks is fetched from a peer (through [`RemoteChunks`]), verified, and kept: in the chunk directory
//! on full nodes, in the bounded memory+disk cache on cache nodes.
//!
//! Garbage collection ([`crate::policy::gc`]) removes chunks through a [`Collection`]; the store keeps
//! what must survive it whatever the metadata say: the chunks of blobs being written ([`Pins`]), and,
//! while a collection runs, every chunk someone reused or asked for (a reused chunk is also touched,
//! so its age restarts and the grace period protects it until its blob is committed).
//!
//! A writer that fails (a full disk, a client gone mid-upload) takes its chunks with it at once: a
//! chunk a writer created is *fresh* until anyone else pins or reuses it, and the fresh chunks of a
//! writer dropped unfinished are removed when its pins go (nothing can refer to them: every write
//! that commits a chunk pins or reuses it first). New chunks are written only while the disk keeps
//! [`ChunkStore::set_min_free`] bytes free, so the metadata always has room; below that, writes fail
//! with [`BlobError::NoSpace`] (507). At most [`ChunkStore::limit_writers`] writers buffer bytes at
//! once.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use arca_protocol::{BlobRef, ChunkId, ChunkRef};
use bytes::Bytes;
use futures::future::BoxFuture;

use super::{BlobError, ChunkDisk, LocalDisk, TieredChunkCache};
use crate::inject::{self, Defect};

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
    /// Garbage collections completed (dry runs excluded).
    pub gc_runs: AtomicU64,
    /// Chunks garbage collection removed.
    pub gc_chunks_removed: AtomicU64,
    /// Bytes of the chunks garbage collection removed.
    pub gc_bytes_removed: AtomicU64,
}

/// Verified chunks kept in memory, weighed by their size.
type ChunkCache = foyer_memory::Cache<ChunkId, Bytes>;

/// What garbage collection must not remove, whatever the chunks' age and the metadata say.
#[derive(Debug, Default)]
struct Held {
    /// Chunks of blobs being written, with how many writers hold each.
    pins: HashMap<ChunkId, usize>,
    /// While a collection runs: the chunks pinned, reused or asked for at any moment since it
    /// began (a writer reads its fence while its chunks are pinned: see [`crate::policy::gc`]).
    claims: Option<HashSet<ChunkId>>,
    /// Chunks a writer created that no one else has pinned or reused since, with the serial of the
    /// writer's [`Pins`].
    fresh: HashMap<ChunkId, u64>,
}

impl Held {
    fn holds(&self, id: &ChunkId) -> bool {
        if inject::enabled(Defect::GcWithoutFence) {
            return false;
        }
        self.pins.contains_key(id) || self.claims.as_ref().is_some_and(|c| c.contains(id))
    }

    fn claim(&mut self, id: ChunkId) {
        if let Some(claims) = &mut self.claims {
            claims.insert(id);
        }
    }
}

/// The chunk directory of one node, with a memory tier of recently read, already verified chunks in
/// front of it.
pub struct ChunkStore {
    disk: Arc<dyn ChunkDisk>,
    cache: ChunkCache,
    remote: OnceLock<Arc<dyn RemoteChunks>>,
    tiered: OnceLock<TieredChunkCache>,
    held: Mutex<Held>,
    /// Held by the collection in progress: collections run one after another.
    collecting: Arc<tokio::sync::Mutex<()>>,
    /// New chunks are not written when fewer bytes than this would be left free.
    min_free: AtomicU64,
    /// Turns of blob writers buffering bytes at once (each holds up to a chunk and the chunk
    /// writes in flight), when bounded.
    writer_turns: OnceLock<Arc<tokio::sync::Semaphore>>,
    /// What the store has done since start.
    pub stats: ChunkStoreStats,
}

/// What a scrub found in one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrubOutcome {
    /// Its bytes match its name.
    Sound,
    /// It was damaged, and a peer's verified copy replaced it.
    Repaired,
    /// It was damaged, and no peer had a good copy.
    Unrepairable,
    /// It was removed (by garbage collection) before it was read.
    Gone,
}

/// One chunk file, as a collection lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredChunk {
    /// The chunk.
    pub id: ChunkId,
    /// When it was written, or last reused by a write.
    pub modified: SystemTime,
    /// Its length in bytes.
    pub size: u64,
}

/// The chunks one blob writer has stored, held against garbage collection until the writer and every
/// write it started are gone (each holds an `Arc` of this). When they go without
/// [`Pins::keep_written`], the chunks the writer created that no one else took up are removed.
pub struct Pins {
    store: Arc<ChunkStore>,
    ids: Mutex<Vec<ChunkId>>,
    serial: u64,
    keep: std::sync::atomic::AtomicBool,
}

/// Serials of [`Pins`], to tell whose fresh chunks are whose.
static PIN_SERIALS: AtomicU64 = AtomicU64::new(1);

impl Pins {
    /// An empty set of pins on `store`.
    pub fn new(store: Arc<ChunkStore>) -> Pins {
        Pins {
            store,
            ids: Mutex::new(Vec::new()),
            serial: PIN_SERIALS.fetch_add(1, Ordering::Relaxed),
            keep: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The writer finished its blob: the chunks it created stay when the pins go (garbage
    /// collection decides about them once they are unreferenced and old).
    pub fn keep_written(&self) {
        self.keep.store(true, Ordering::Relaxed);
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let ids = std::mem::take(self.ids.get_mut().unwrap_or_else(|p| p.into_inner()));
        let discard = !*self.keep.get_mut();
        let mut held = self.store.held();
        let mut discarded = 0u64;
        for id in ids {
            let mut unpinned = false;
            if let Some(count) = held.pins.get_mut(&id) {
                *count -= 1;
                if *count == 0 {
                    held.pins.remove(&id);
                    unpinned = true;
                }
            }
            if held.fresh.get(&id) != Some(&self.serial) {
                continue;
            }
            held.fresh.remove(&id);
            // Fresh and unpinned: no one else ever took this chunk up, so nothing refers to it.
            if discard && unpinned {
                match self.store.disk.remove(&id.to_hex()) {
                    Ok(()) => discarded += 1,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => {
                        tracing::warn!(chunk = %id, %error, "removing a failed write's chunk")
                    }
                }
                self.store.cache.remove(&id);
            }
        }
        if discarded > 0 {
            tracing::info!(
                chunks = discarded,
                "removed the chunks of a write that did not finish"
            );
        }
    }
}

/// The metadata holds the chunks of a write that carries new blobs here while it commits. It keeps
/// the store weakly: the store reaches the metadata (to fetch from peers), and a strong reference
/// back would keep both alive forever. A store already gone holds nothing.
impl crate::meta::HoldChunks for std::sync::Weak<ChunkStore> {
    fn hold(&self, blobs: &[&BlobRef]) -> Option<Box<dyn Send>> {
        let store = self.upgrade()?;
        ChunkStore::hold(&store, blobs).map(|pins| Box::new(pins) as Box<dyn Send>)
    }

    fn shared_fence(&self) -> Option<u64> {
        self.upgrade()?.disk.shared_fence()
    }
}

/// A garbage collection in progress on a store; at most one exists at a time. While it lives, every
/// chunk reused by a write or found by [`ChunkStore::contains`] is kept by it.
pub struct Collection {
    store: Arc<ChunkStore>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Collection {
    /// The chunk files of the store whose ids start with the hex digits `prefix` (blocking).
    pub fn list(&self, prefix: &str) -> io::Result<Vec<StoredChunk>> {
        self.store.list(prefix)
    }

    /// True when a writer holds the chunk or it was reused or asked for since the collection began.
    pub fn is_held(&self, id: &ChunkId) -> bool {
        self.store.held().holds(id)
    }

    /// Removes the chunk from disk and from the memory tier (blocking), unless it is held or was
    /// written or reused at or after `cutoff`; answers whether it was removed. Checked and removed
    /// under the same lock a reusing write takes, so a chunk is never reused and removed at once.
    pub fn remove_unless_held(&self, id: &ChunkId, cutoff: SystemTime) -> Result<bool, BlobError> {
        let name = id.to_hex();
        let held = self.store.held();
        if held.holds(id) {
            return Ok(false);
        }
        // Where removal is final the age is read again; where it goes to a trash, the age the
        // listing gave stands (a reuse here since is claimed; one at another node sharing the
        // store is put back from the trash) and the request is saved.
        if self.store.disk.trash().is_none() {
            match self.store.disk.modified(&name) {
                Ok(modified) if modified < cutoff => {}
                Ok(_) => return Ok(false),
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(error) => return Err(error.into()),
            }
        }
        match self.store.disk.remove(&name) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(error.into()),
        }
        self.store.cache.remove(id);
        drop(held);
        Ok(true)
    }
}

/// Trashed chunks, on a store whose removals wait for a later collection ([`super::Trash`]).
impl Collection {
    /// The trashed chunks whose ids start with `prefix`, each with when it was trashed (blocking);
    /// none where removal is final.
    pub fn list_trashed(&self, prefix: &str) -> io::Result<Vec<StoredChunk>> {
        match self.store.disk.trash() {
            Some(trash) => Ok(stored_chunks(trash.list(prefix)?)),
            None => Ok(Vec::new()),
        }
    }

    /// Puts a trashed chunk back: a version took it up after it was trashed (blocking).
    pub fn restore(&self, id: &ChunkId) -> io::Result<()> {
        match self.store.disk.trash() {
            Some(trash) => trash.restore(&id.to_hex()),
            None => Ok(()),
        }
    }

    /// Deletes trashed chunks for good, in batches (blocking).
    pub fn purge(&self, ids: &[ChunkId]) -> io::Result<()> {
        match self.store.disk.trash() {
            Some(trash) => trash.purge(&ids.iter().map(ChunkId::to_hex).collect::<Vec<_>>()),
            None => Ok(()),
        }
    }
}

/// The listed names that are chunk names, as chunks.
fn stored_chunks(listed: Vec<(String, SystemTime, u64)>) -> Vec<StoredChunk> {
    listed
        .into_iter()
        .filter_map(|(name, modified, size)| {
            let id: ChunkId = name.parse().ok()?;
            (id.to_hex() == name).then_some(StoredChunk { id, modified, size })
        })
        .collect()
}

impl Drop for Collection {
    fn drop(&mut self) {
        self.store.held().claims = None;
    }
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
            held: Mutex::new(Held::default()),
            collecting: Arc::default(),
            min_free: AtomicU64::new(0),
            writer_turns: OnceLock::new(),
            stats: ChunkStoreStats::default(),
        }
    }

    /// Lets at most `writers` blob writers buffer bytes at once (see [`crate::blob::BlobWriter`]);
    /// the others wait for a turn, so the memory of uploads in progress stays bounded however many
    /// arrive. Set once, at start.
    pub fn limit_writers(&self, writers: usize) {
        let _ = self
            .writer_turns
            .set(Arc::new(tokio::sync::Semaphore::new(writers.max(1))));
    }

    /// A turn to buffer bytes in, waited for when writers are bounded (`None`: unbounded).
    pub(super) async fn writer_turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let turns = self.writer_turns.get()?.clone();
        turns.acquire_owned().await.ok()
    }

    /// Keeps `bytes` of the disk free: new chunks that would leave less are refused with
    /// [`BlobError::NoSpace`].
    pub fn set_min_free(&self, bytes: u64) {
        self.min_free.store(bytes, Ordering::Relaxed);
    }

    /// The free space kept for the metadata, and the bytes the disk has free now (`None` when the
    /// file system cannot say).
    pub fn space(&self) -> (u64, Option<u64>) {
        (
            self.min_free.load(Ordering::Relaxed),
            self.disk.available().ok(),
        )
    }

    /// Refuses, with [`BlobError::NoSpace`], `incoming` bytes that would leave less free than the
    /// floor (an upload that announces its length is refused before it is read).
    pub fn check_room(&self, incoming: u64) -> Result<(), BlobError> {
        let (floor, available) = self.space();
        match available {
            Some(available)
                if available.saturating_sub(incoming) < floor || available < incoming =>
            {
                Err(BlobError::NoSpace { available, floor })
            }
            _ => Ok(()),
        }
    }

    /// The chunk files whose ids start with the hex digits `prefix` (blocking).
    pub fn list(&self, prefix: &str) -> io::Result<Vec<StoredChunk>> {
        Ok(stored_chunks(self.disk.list(prefix)?))
    }

    /// The requests made to the object store the chunks live in, when they live in one.
    pub fn bucket_stats(&self) -> Option<&super::BucketStats> {
        self.disk.bucket_stats()
    }

    /// Checks the stored copy of a chunk against its name, read from disk (not the memory tier); a
    /// damaged or unreadable copy is replaced by a peer's verified one when a peer has it.
    pub async fn scrub(self: &Arc<Self>, chunk: ChunkRef) -> ScrubOutcome {
        let store = self.clone();
        let read = crate::blocking::spawn(move || store.disk.read(&chunk.id.to_hex())).await;
        match read {
            Ok(Ok(data)) if blake3::hash(&data).as_bytes() == &chunk.id.0 => {
                return ScrubOutcome::Sound;
            }
            Ok(Err(error)) if error.kind() == io::ErrorKind::NotFound => return ScrubOutcome::Gone,
            Ok(Ok(_)) => tracing::error!(chunk = %chunk.id, "scrub: the stored chunk is corrupt"),
            Ok(Err(error)) => {
                tracing::error!(chunk = %chunk.id, %error, "scrub: the stored chunk is unreadable");
            }
            Err(error) => {
                tracing::warn!(chunk = %chunk.id, %error, "scrub: reading a chunk");
                return ScrubOutcome::Sound;
            }
        }
        self.stats.corrupt_reads.fetch_add(1, Ordering::Relaxed);
        self.cache.remove(&chunk.id);
        let Some(remote) = self.remote.get() else {
            return ScrubOutcome::Unrepairable;
        };
        let repaired = match remote.fetch(chunk).await {
            Ok(data) if blake3::hash(&data).as_bytes() == &chunk.id.0 => {
                let store = self.clone();
                crate::blocking::spawn(move || store.keep_fetched(chunk, &data, true)).await
            }
            Ok(_) => return ScrubOutcome::Unrepairable,
            Err(error) => {
                tracing::error!(chunk = %chunk.id, %error, "scrub: no peer could give a good copy");
                return ScrubOutcome::Unrepairable;
            }
        };
        match repaired {
            Ok(Ok(())) => ScrubOutcome::Repaired,
            Ok(Err(error)) => {
                tracing::error!(chunk = %chunk.id, %error, "scrub: writing the peer's copy");
                ScrubOutcome::Unrepairable
            }
            Err(error) => {
                tracing::error!(chunk = %chunk.id, %error, "scrub: writing the peer's copy");
                ScrubOutcome::Unrepairable
            }
        }
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a garbage collection once the one running (if any) has ended.
    pub async fn begin_collection(self: &Arc<Self>) -> Collection {
        let turn = self.collecting.clone().lock_owned().await;
        let mut held = self.held();
        held.claims = Some(held.pins.keys().copied().collect());
        drop(held);
        Collection {
            store: self.clone(),
            _turn: turn,
        }
    }

    /// Lets reads of missing chunks go to peers.
    pub fn set_remote(&self, remote: Arc<dyn RemoteChunks>) {
        let _ = self.remote.set(remote);
    }

    /// Pins every chunk of `blobs` again, for a command about to make them part of the state
    /// (see [`crate::policy::gc`]): `None`, holding nothing, when one of them is no longer stored
    /// here. Each chunk is pinned before it is looked for, so a collection either removed it
    /// before (and it is found missing) or keeps it.
    pub fn hold(self: &Arc<Self>, blobs: &[&BlobRef]) -> Option<Pins> {
        let pins = Pins::new(self.clone());
        for chunk in blobs.iter().flat_map(|blob| &blob.chunks) {
            self.pin(chunk.id, &pins);
            if !self.disk.contains(&chunk.id.to_hex()) {
                return None;
            }
        }
        Some(pins)
    }

    /// Pins the stored chunk `id` for as long as `pins` lives (a writer taking up chunks another
    /// wrote); false, pinning nothing lasting, when it is not stored.
    pub fn pin_stored(&self, id: ChunkId, pins: &Pins) -> bool {
        self.pin(id, pins);
        self.disk.contains(&id.to_hex())
    }

    /// Gives the store its tiered (memory and local disk) cache. On a cache node chunks fetched
    /// from peers are kept there, not in the chunk directory; in front of an object store it keeps
    /// the chunks read from the bucket, so hot chunks are served from this machine.
    pub fn set_tiered(&self, tiered: TieredChunkCache) {
        let _ = self.tiered.set(tiered);
    }

    /// True when what this store keeps is durable: a full node's chunk directory or bucket, not a
    /// cache node's bounded cache.
    pub fn keeps_durable_copies(&self) -> bool {
        self.tiered.get().is_none() || self.in_object_store()
    }

    /// True when the chunks live in an object store rather than on this machine's disk.
    pub fn in_object_store(&self) -> bool {
        self.disk.bucket_stats().is_some()
    }

    /// The cache node's tiered cache, when this is one.
    pub fn tiered(&self) -> Option<&TieredChunkCache> {
        self.tiered.get()
    }

    /// One chunk from wherever it is: the memory tier, the local disk, the tiered cache, or a peer.
    /// A chunk fetched from a peer is verified before it is served or kept. A local copy that fails
    /// verification (a bit flipped at rest) is replaced by a peer's good one when a peer has it.
    pub async fn read(self: &Arc<Self>, chunk: ChunkRef) -> Result<Bytes, BlobError> {
        // In front of an object store, the tiered cache is asked before it (and keeps what it
        // gives); on a cache node it is asked instead of the chunk directory.
        let in_front = self.tiered.get().filter(|_| self.in_object_store());
        if let Some(front) = in_front
            && !self.cache.contains(&chunk.id)
            && let Some(bytes) = front.get(&chunk).await
        {
            return Ok(bytes);
        }
        let store = self.clone();
        let local = crate::blocking::spawn(move || store.get(&chunk))
            .await
            .map_err(|e| BlobError::Task(e.to_string()))?;
        let (missing, corrupt) = match local {
            Ok(bytes) => {
                if let Some(front) = in_front {
                    front.insert(chunk.id, bytes.clone());
                }
                return Ok(bytes);
            }
            Err(BlobError::Missing(id)) => (id, None),
            Err(corrupt @ BlobError::Corrupt { .. }) => (chunk.id.to_hex(), Some(corrupt)),
            Err(other) => return Err(other),
        };
        let instead = self.tiered.get().filter(|_| in_front.is_none());
        if let Some(tiered) = instead
            && let Some(bytes) = tiered.get(&chunk).await
        {
            return Ok(bytes);
        }
        let Some(remote) = self.remote.get() else {
            return Err(corrupt.unwrap_or(BlobError::Missing(missing)));
        };
        self.stats.remote_fetches.fetch_add(1, Ordering::Relaxed);
        let data = match remote.fetch(chunk).await {
            Ok(data) => data,
            Err(error) => return Err(corrupt.unwrap_or(error)),
        };
        self.verify(&chunk, &data)?;
        match instead {
            Some(tiered) => tiered.insert(chunk.id, data.clone()),
            None => {
                let store = self.clone();
                let kept = data.clone();
                let repair = corrupt.is_some();
                crate::blocking::spawn(move || store.keep_fetched(chunk, &kept, repair))
                    .await
                    .map_err(|e| BlobError::Task(e.to_string()))??;
            }
        }
        self.cache.insert(chunk.id, data.clone());
        Ok(data)
    }

    /// Keeps a verified chunk fetched from a peer; `repair` overwrites a corrupt local copy.
    fn keep_fetched(&self, chunk: ChunkRef, data: &[u8], repair: bool) -> Result<(), BlobError> {
        if !repair {
            return self.put(data).map(drop);
        }
        self.disk.write_durable(&chunk.id.to_hex(), data)?;
        tracing::warn!(chunk = %chunk.id, "replaced a corrupt chunk with a peer's copy");
        Ok(())
    }

    fn verify(&self, chunk: &ChunkRef, data: &[u8]) -> Result<(), BlobError> {
        if inject::enabled(Defect::SkipChunkVerification) {
            return Ok(());
        }
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

    /// True when the chunk is stored here. Callers ask because they are about to rely on it, so a
    /// garbage collection running now keeps the chunk, and a failed writer leaves it.
    pub fn contains(&self, id: &ChunkId) -> bool {
        let mut held = self.held();
        held.claim(*id);
        held.fresh.remove(id);
        self.disk.contains(&id.to_hex())
    }

    /// Stores one chunk (blocking) unless an identical one is already stored, and returns its reference.
    /// When this returns the chunk is durable ([`ChunkDisk::write_durable`]). A chunk already stored
    /// is touched: its age, which garbage collection's grace period counts from, starts again.
    pub fn put(&self, data: &[u8]) -> Result<ChunkRef, BlobError> {
        let id = ChunkId(*blake3::hash(data).as_bytes());
        self.store(id, data, None)
    }

    /// [`ChunkStore::put`], holding the chunk against garbage collection for as long as `pins` lives.
    /// The pin comes first, so no collection can remove the chunk between its write and the pin.
    pub fn put_pinned(&self, data: &[u8], pins: &Pins) -> Result<ChunkRef, BlobError> {
        let id = ChunkId(*blake3::hash(data).as_bytes());
        self.pin(id, pins);
        self.store(id, data, Some(pins))
    }

    /// Pins `id` for as long as `pins` lives; a collection running now keeps it too. A chunk another
    /// writer created is no longer only that writer's.
    fn pin(&self, id: ChunkId, pins: &Pins) {
        let mut held = self.held();
        *held.pins.entry(id).or_default() += 1;
        held.claim(id);
        if held
            .fresh
            .get(&id)
            .is_some_and(|owner| *owner != pins.serial)
        {
            held.fresh.remove(&id);
        }
        drop(held);
        pins.ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(id);
    }

    /// Reuses the stored chunk `id` if there is one (blocking): touches it and, while a collection
    /// runs, claims it, under the lock a collection removes under, so no collection takes it within
    /// the grace period. False when it is not (or no longer) stored. For whoever commits a new
    /// reference to chunks without writing them (a cross-repository mount of a blob, say).
    pub fn reuse(&self, id: &ChunkId) -> bool {
        let mut held = self.held();
        match self.disk.touch(&id.to_hex()) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return false,
            // The chunk is there; a collection running now still keeps it (claimed below), a later
            // one may take it once it is older than the grace period and unreferenced.
            Err(error) => tracing::warn!(chunk = %id, %error, "refreshing a reused chunk's age"),
        }
        held.claim(*id);
        held.fresh.remove(id);
        true
    }

    /// Writes the chunk unless it is stored already. A chunk `writer` creates, and that only it
    /// has pinned, is fresh: it goes again if the writer fails.
    fn store(
        &self,
        id: ChunkId,
        data: &[u8],
        writer: Option<&Pins>,
    ) -> Result<ChunkRef, BlobError> {
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "chunk larger than 4 GiB"))?;
        let name = id.to_hex();
        if self.disk.contains(&name) && self.reuse(&id) {
            self.stats
                .chunks_deduplicated
                .fetch_add(1, Ordering::Relaxed);
            return Ok(ChunkRef { id, size });
        }
        self.check_room(data.len() as u64)?;
        if let Some(writer) = writer {
            let mut held = self.held();
            if held.pins.get(&id) == Some(&1) {
                held.fresh.insert(id, writer.serial);
            }
        }
        self.disk
            .write_durable(&name, data)
            .map_err(|error| match error.kind() {
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => BlobError::NoSpace {
                    available: self.disk.available().unwrap_or(0),
                    floor: self.min_free.load(Ordering::Relaxed),
                },
                _ => error.into(),
            })?;
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
