//! Garbage collection of chunks: removes the chunk files of this node that no live blob uses any
//! more, once they are older than a grace period.
//!
//! The state machine counts, for every chunk, the live blobs that use it (a blob is live while a
//! file, a linked OCI blob or a cached document references it; one whose last reference goes is
//! forgotten, with its replicas, when the command that removed it is applied). A run therefore holds
//! no reference set: it goes through the chunk files sixteen fan-out directories (a 256th of them
//! each) at a time, and for each group it **lists** the directories, picks the **candidates** (no
//! live blob uses them in the state applied here, written or last reused before `now - grace`, not
//! held), and only when there are some, **fences**: it commits [`arca_protocol::Command::AdvanceGcEpoch`] for this
//! node through Raft (removing nothing when that fails: no leader, no quorum) and then **sweeps**
//! the candidates against the state applied after it, which holds every write the cluster
//! committed before the fence. The periodic collection goes a sixteenth of the directories at a
//! time, its steps spread over its interval, and resumes after a restart where it stopped.
//!
//! What keeps it from taking chunks a version needs:
//!
//! - *Committed blobs*: swept against a state that includes every commit before the fence.
//! - *Writes in flight*: a blob writer pins the chunks it stores until it is dropped, however long
//!   the upload takes. The write that makes a new blob part of the state ([`Meta::propose`]) pins
//!   its chunks again (finding them still stored), reads this node's collection epoch while they
//!   are pinned, and carries it ([`arca_protocol::Command::Fenced`]): the state machine refuses it once the epoch
//!   has moved on, and the node then holds the chunks and proposes it again. A step keeps every
//!   chunk pinned at any moment since it began. So a write whose epoch is still current when it
//!   commits was seen either before the step's fence (its chunks were pinned while the step ran,
//!   and kept) or by the sweep; and a write whose reply was lost (a timeout, a crash, a partition)
//!   but whose entry commits much later, after a step took its chunks, is refused instead of
//!   leaving a version whose bytes exist nowhere. The grace period only keeps the chunks of an
//!   upload between its last byte and its proposal, and young chunks a retried upload may reuse.
//! - *Reused chunks*: a write that finds its chunk already stored touches it (its age starts again)
//!   and, during a run, claims it under the lock a removal takes; a chunk found present by
//!   [`ChunkStore::contains`] (the replication worker) is claimed too.
//!
//! On an object store the nodes of a site share ([`crate::blob::BucketDisk`]) the nodes fence with
//! one epoch, the store's, and a removal moves the chunk to the store's trash: another node's write
//! may take a chunk up between the check and the removal, and no lock spans nodes. The next step
//! over those fan-out directories, fenced again, puts back what a version took up and deletes for
//! good what has been in the trash for the grace period.
//!
//! Runs on one node go one after another: a run asked for while another is going waits for it.
//! A run never blocks pushes: listing, checking and removing files run on blocking threads, against
//! a read transaction. Each node collects its own chunk directory; the bounded cache of a cache node
//! evicts by itself and is not touched.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arca_protocol::ChunkId;

use crate::blob::{BlobError, ChunkStore, Collection, StoredChunk};
use crate::clock::Clock;
use crate::inject::{self, Defect};
use crate::meta::{Meta, ProposeError, ReadView, StateRead, StoreError};

/// How old an unreferenced chunk must be before it is removed, unless a run says otherwise.
pub const DEFAULT_GRACE: Duration =
    Duration::from_secs(arca_protocol::api::DEFAULT_GC_GRACE_SECONDS);

/// How one run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Count what would be removed, remove nothing.
    pub dry_run: bool,
    /// Unreferenced chunks younger than this are kept.
    pub grace: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            grace: DEFAULT_GRACE,
        }
    }
}

pub use arca_protocol::api::GcReport;

/// Why a run did not happen.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The chunk directory could not be listed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The node could not confirm that its metadata is up to date (no leader, no quorum): nothing
    /// was removed.
    #[error("garbage collection needs up-to-date metadata and removed nothing: {0}")]
    Unavailable(#[from] ProposeError),
    /// The metadata could not be read.
    #[error("garbage collection could not read the metadata: {0}")]
    Store(#[from] StoreError),
}

/// What says whether a chunk is in use.
pub trait References: Send + 'static {
    /// True when some live blob uses the chunk.
    fn referenced(&self, id: &ChunkId) -> Result<bool, StoreError>;
}

impl References for ReadView {
    fn referenced(&self, id: &ChunkId) -> Result<bool, StoreError> {
        self.chunk_referenced(id)
    }
}

impl References for HashSet<ChunkId> {
    fn referenced(&self, id: &ChunkId) -> Result<bool, StoreError> {
        Ok(self.contains(id))
    }
}

/// The fan-out directories, in the order a run goes through them: `00` to `ff`.
pub fn prefixes() -> impl Iterator<Item = String> {
    (0..=u8::MAX).map(|byte| format!("{byte:02x}"))
}

/// One run over every chunk of `meta`'s node, fencing each step that finds something to remove.
pub async fn run(
    meta: &Meta,
    chunks: &Arc<ChunkStore>,
    clock: &dyn Clock,
    options: GcOptions,
) -> Result<GcReport, GcError> {
    let started = Instant::now();
    let prefixes: Vec<String> = prefixes().collect();
    let report = collect(chunks, options, clock, &prefixes, &MetaFence(meta)).await?;
    tracing::info!(
        scanned = report.scanned,
        referenced = report.referenced,
        removed = report.removed,
        removed_bytes = report.removed_bytes,
        kept_in_grace = report.kept_in_grace,
        dry_run = report.dry_run,
        grace_seconds = options.grace.as_secs(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "garbage collection"
    );
    Ok(report)
}

/// What a run reads the references from, and how it fences a step.
pub trait Fence {
    /// What says which chunks are referenced.
    type References: References;
    /// The state as applied on this node now.
    fn references(&self) -> Result<Self::References, GcError>;
    /// Commits an advance of this node's collection epoch and waits until it is applied here.
    fn advance(&self) -> impl Future<Output = Result<(), GcError>> + Send;
}

/// The fence of a node's own metadata.
struct MetaFence<'a>(&'a Meta);

impl Fence for MetaFence<'_> {
    type References = ReadView;

    fn references(&self) -> Result<ReadView, GcError> {
        Ok(self.0.view()?)
    }

    async fn advance(&self) -> Result<(), GcError> {
        Ok(self.0.advance_gc_epoch().await?)
    }
}

/// Where the periodic collection goes on after a restart (a node-local value).
const NEXT_PREFIX: &str = "gc_next_prefix";

/// Steps of the periodic collection per pass over every chunk (each covers 256 / this fan-out
/// directories).
const STEPS_PER_PASS: usize = 16;

/// Collects with the default grace period continuously, a sixteenth of the fan-out directories at
/// a time, going through all of them once every `every`, until the process ends.
pub async fn run_periodically(
    meta: Meta,
    chunks: Arc<ChunkStore>,
    clock: Arc<dyn Clock>,
    every: Duration,
) {
    let all: Vec<String> = prefixes().collect();
    let per_step = all.len() / STEPS_PER_PASS;
    let interval = every / STEPS_PER_PASS as u32;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next = meta
        .local_value::<u8>(NEXT_PREFIX)
        .ok()
        .flatten()
        .map_or(0, |step| usize::from(step) % STEPS_PER_PASS);
    loop {
        ticks.tick().await;
        let prefixes = &all[next * per_step..(next + 1) * per_step];
        let options = GcOptions::default();
        let step = collect(
            &chunks,
            options,
            clock.as_ref(),
            prefixes,
            &MetaFence(&meta),
        )
        .await;
        match step {
            Ok(report) => {
                if report.removed > 0 {
                    tracing::info!(
                        from = %prefixes[0],
                        removed = report.removed,
                        removed_bytes = report.removed_bytes,
                        "garbage collection step"
                    );
                }
                next = (next + 1) % STEPS_PER_PASS;
                if let Err(error) = meta.set_local_value(NEXT_PREFIX, &(next as u8)) {
                    tracing::debug!(%error, "remembering where garbage collection stopped");
                }
            }
            Err(error) => tracing::warn!(%error, "periodic garbage collection"),
        }
    }
}

/// Fan-out directories per step of a run: one fence (at most) per this many.
const PREFIXES_PER_STEP: usize = 16;

/// One run on `store` over the fan-out directories `prefixes`, once the run in progress (if any)
/// has ended: for each group of [`PREFIXES_PER_STEP`], lists their chunks, reads the references
/// and the clock, picks the candidates and, when there are any (and this is no dry run), advances
/// `fence` and sweeps them against the references read after it. A failed fence ends the run.
pub async fn collect(
    store: &Arc<ChunkStore>,
    options: GcOptions,
    clock: &dyn Clock,
    prefixes: &[String],
    fence: &impl Fence,
) -> Result<GcReport, GcError> {
    let collection = Arc::new(store.begin_collection().await);
    let unfenced = inject::enabled(Defect::GcWithoutFence);
    let grace = if unfenced {
        Duration::ZERO
    } else {
        options.grace
    };
    let mut report = GcReport {
        dry_run: options.dry_run,
        ..GcReport::default()
    };
    for group in prefixes.chunks(PREFIXES_PER_STEP) {
        let listing = collection.clone();
        let group = group.to_vec();
        let (listed, trashed) = blocking(move || {
            group.iter().try_fold(
                (Vec::new(), Vec::new()),
                |(mut listed, mut trashed), prefix| {
                    listed.extend(listing.list(prefix)?);
                    trashed.extend(listing.list_trashed(prefix)?);
                    Ok::<_, std::io::Error>((listed, trashed))
                },
            )
        })
        .await?
        .map_err(BlobError::from)?;
        report.scanned += listed.len() as u64;
        let references = fence.references()?;
        let now = UNIX_EPOCH + Duration::from_millis(clock.now_ms());
        let cutoff = now.checked_sub(grace).unwrap_or(UNIX_EPOCH);
        let picking = collection.clone();
        let picked = blocking(move || pick(&picking, listed, &references, cutoff)).await??;
        report.referenced += picked.referenced;
        report.kept_in_grace += picked.kept;
        if picked.candidates.is_empty() && trashed.is_empty() {
            continue;
        }
        if options.dry_run {
            report.removed += picked.candidates.len() as u64;
            report.removed_bytes += picked.candidates.iter().map(|c| c.size).sum::<u64>();
            report.purged += trashed.iter().filter(|c| c.modified < cutoff).count() as u64;
            continue;
        }
        if !unfenced {
            fence.advance().await?;
        }
        let references = fence.references()?;
        let sweeping = collection.clone();
        let candidates = picked.candidates;
        let (swept, settled) = blocking(move || {
            let settled = settle_trash(&sweeping, trashed, &references, cutoff)?;
            let swept = sweep(&sweeping, candidates, &references, cutoff)?;
            Ok::<_, StoreError>((swept, settled))
        })
        .await??;
        report.referenced += swept.referenced;
        report.kept_in_grace += swept.kept;
        report.removed += swept.removed;
        report.removed_bytes += swept.removed_bytes;
        report.purged += settled.purged;
        report.restored += settled.restored;
    }
    if !report.dry_run {
        let stats = &store.stats;
        stats.gc_runs.fetch_add(1, Ordering::Relaxed);
        stats
            .gc_chunks_removed
            .fetch_add(report.removed, Ordering::Relaxed);
        stats
            .gc_bytes_removed
            .fetch_add(report.removed_bytes, Ordering::Relaxed);
    }
    Ok(report)
}

async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, BlobError> {
    crate::blocking::spawn(work)
        .await
        .map_err(|e| BlobError::Task(e.to_string()))
}

/// The listed chunks a step may remove, and how many it keeps.
#[derive(Debug, Default)]
struct Picked {
    candidates: Vec<StoredChunk>,
    referenced: u64,
    kept: u64,
}

/// The listed chunks no live blob uses, older than `cutoff` and not held.
fn pick(
    collection: &Collection,
    listed: Vec<StoredChunk>,
    references: &dyn References,
    cutoff: SystemTime,
) -> Result<Picked, StoreError> {
    let mut picked = Picked::default();
    for chunk in listed {
        if references.referenced(&chunk.id)? {
            picked.referenced += 1;
        } else if chunk.modified >= cutoff || collection.is_held(&chunk.id) {
            picked.kept += 1;
        } else {
            picked.candidates.push(chunk);
        }
    }
    Ok(picked)
}

/// What a sweep did.
#[derive(Debug, Default)]
struct Swept {
    referenced: u64,
    kept: u64,
    removed: u64,
    removed_bytes: u64,
}

/// Removes the candidates still unreferenced after the fence, unless held or touched since.
fn sweep(
    collection: &Collection,
    candidates: Vec<StoredChunk>,
    references: &dyn References,
    cutoff: SystemTime,
) -> Result<Swept, StoreError> {
    let mut swept = Swept::default();
    for chunk in candidates {
        if references.referenced(&chunk.id)? {
            swept.referenced += 1;
            continue;
        }
        match collection.remove_unless_held(&chunk.id, cutoff) {
            Ok(true) => {
                swept.removed += 1;
                swept.removed_bytes += chunk.size;
            }
            Ok(false) => swept.kept += 1,
            Err(error) => {
                tracing::warn!(chunk = %chunk.id, %error, "garbage collection: removing a chunk");
                swept.kept += 1;
            }
        }
    }
    Ok(swept)
}

/// Trashed chunks deleted per request (what S3's DeleteObjects takes).
const PURGE_BATCH: usize = 1000;

/// What became of the trashed chunks of a step.
#[derive(Debug, Default)]
struct Settled {
    purged: u64,
    restored: u64,
}

/// Decides about trashed chunks against the state after the fence: one a version took up since it
/// was trashed goes back; one unreferenced and in the trash since before `cutoff` goes for good.
/// (A write that took a chunk up while it was being trashed was applied before the fence or is
/// refused by it, so the state read after it says every use a commit can still make.)
fn settle_trash(
    collection: &Collection,
    trashed: Vec<StoredChunk>,
    references: &dyn References,
    cutoff: SystemTime,
) -> Result<Settled, StoreError> {
    let mut settled = Settled::default();
    let mut expired = Vec::new();
    for chunk in trashed {
        if references.referenced(&chunk.id)? {
            match collection.restore(&chunk.id) {
                Ok(()) => settled.restored += 1,
                Err(error) => {
                    tracing::warn!(chunk = %chunk.id, %error, "garbage collection: restoring a trashed chunk");
                }
            }
        } else if chunk.modified < cutoff {
            expired.push(chunk.id);
        }
    }
    for batch in expired.chunks(PURGE_BATCH) {
        match collection.purge(batch) {
            Ok(()) => settled.purged += batch.len() as u64,
            Err(error) => tracing::warn!(%error, "garbage collection: purging trashed chunks"),
        }
    }
    Ok(settled)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs::File;

    use arca_protocol::{
        BlobRef, CachedDocument, ChunkRef, Command, Overwrite, PackageType, Registry, Sha256,
    };

    use crate::meta::testing::TestState;

    use super::*;
    use crate::blob::{BlobWriter, ChunkDisk, LocalDisk, Pins};
    use crate::clock::SystemClock;

    struct Fixture {
        _dir: tempfile::TempDir,
        disk: Arc<LocalDisk>,
        store: Arc<ChunkStore>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let disk = Arc::new(LocalDisk::open(dir.path()).expect("disk"));
        let store = Arc::new(ChunkStore::on(disk.clone(), 1 << 20));
        Fixture {
            _dir: dir,
            disk,
            store,
        }
    }

    impl Fixture {
        fn put(&self, data: &[u8]) -> ChunkId {
            self.store.put(data).expect("put").id
        }

        /// Makes the chunk look written `seconds` ago.
        fn age(&self, id: &ChunkId, seconds: u64) {
            let then = SystemTime::now() - Duration::from_secs(seconds);
            File::open(self.disk.path_of(&id.to_hex()))
                .expect("chunk file")
                .set_modified(then)
                .expect("set mtime");
        }

        fn on_disk(&self, id: &ChunkId) -> bool {
            self.disk.contains(&id.to_hex())
        }

        async fn collect(
            &self,
            dry_run: bool,
            grace: Duration,
            referenced: &[ChunkId],
        ) -> GcReport {
            let fence = Hooks::fixed(referenced);
            collect(
                &self.store,
                GcOptions { dry_run, grace },
                &SystemClock,
                &all(),
                &fence,
            )
            .await
            .expect("collect")
        }
    }

    /// A fence over a fixed set of references that runs a test's hooks when a step reads the
    /// references and when it advances the fence.
    struct Hooks<R, A> {
        referenced: HashSet<ChunkId>,
        on_references: R,
        on_advance: A,
        advances: std::sync::atomic::AtomicUsize,
    }

    type Fixed = Hooks<fn(), fn() -> Result<(), GcError>>;

    impl Fixed {
        fn fixed(referenced: &[ChunkId]) -> Fixed {
            Hooks::new(referenced, || {}, || Ok(()))
        }
    }

    impl<R, A> Hooks<R, A> {
        fn new(referenced: &[ChunkId], on_references: R, on_advance: A) -> Self {
            Hooks {
                referenced: referenced.iter().copied().collect(),
                on_references,
                on_advance,
                advances: Default::default(),
            }
        }

        fn advances(&self) -> usize {
            self.advances.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    impl<R, A> Fence for Hooks<R, A>
    where
        R: Fn() + Send + Sync,
        A: Fn() -> Result<(), GcError> + Send + Sync,
    {
        type References = HashSet<ChunkId>;

        fn references(&self) -> Result<HashSet<ChunkId>, GcError> {
            (self.on_references)();
            Ok(self.referenced.clone())
        }

        async fn advance(&self) -> Result<(), GcError> {
            self.advances
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (self.on_advance)()
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// A store several nodes would write into: removal moves a chunk into a trash directory.
    struct TrashingDisk {
        live: LocalDisk,
        trash: LocalDisk,
    }

    impl ChunkDisk for TrashingDisk {
        fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
            self.live.read(name)
        }
        fn size(&self, name: &str) -> std::io::Result<u64> {
            self.live.size(name)
        }
        fn contains(&self, name: &str) -> bool {
            self.live.contains(name)
        }
        fn write_durable(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
            self.live.write_durable(name, data)
        }
        fn list(&self, prefix: &str) -> std::io::Result<Vec<(String, SystemTime, u64)>> {
            self.live.list(prefix)
        }
        fn modified(&self, name: &str) -> std::io::Result<SystemTime> {
            self.live.modified(name)
        }
        fn touch(&self, name: &str) -> std::io::Result<()> {
            self.live.touch(name)
        }
        fn remove(&self, name: &str) -> std::io::Result<()> {
            self.trash.write_durable(name, &self.live.read(name)?)?;
            self.live.remove(name)
        }
        fn available(&self) -> std::io::Result<u64> {
            self.live.available()
        }
        fn trash(&self) -> Option<&dyn crate::blob::Trash> {
            Some(self)
        }
    }

    impl crate::blob::Trash for TrashingDisk {
        fn list(&self, prefix: &str) -> std::io::Result<Vec<(String, SystemTime, u64)>> {
            self.trash.list(prefix)
        }
        fn restore(&self, name: &str) -> std::io::Result<()> {
            self.live.write_durable(name, &self.trash.read(name)?)?;
            self.trash.remove(name)
        }
        fn purge(&self, names: &[String]) -> std::io::Result<()> {
            names.iter().try_for_each(|name| self.trash.remove(name))
        }
    }

    #[tokio::test]
    async fn a_shared_store_trashes_then_restores_what_a_version_took_up_and_purges_the_rest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let disk = Arc::new(TrashingDisk {
            live: LocalDisk::open(&dir.path().join("live")).expect("live"),
            trash: LocalDisk::open(&dir.path().join("trash")).expect("trash"),
        });
        let store = Arc::new(ChunkStore::on(disk.clone(), 1 << 20));
        let taken_up = store.put(b"taken up while trashed").expect("put").id;
        let garbage = store.put(b"garbage").expect("put").id;
        let age = |disk: &LocalDisk, id: &ChunkId| {
            File::open(disk.path_of(&id.to_hex()))
                .expect("chunk file")
                .set_modified(SystemTime::now() - 2 * HOUR)
                .expect("set mtime");
        };
        age(&disk.live, &taken_up);
        age(&disk.live, &garbage);
        let collect_with = |referenced: &'static [&'static [u8]]| {
            let store = store.clone();
            async move {
                let ids: Vec<ChunkId> = referenced
                    .iter()
                    .map(|data| ChunkId(*blake3::hash(data).as_bytes()))
                    .collect();
                let fence = Hooks::fixed(&ids);
                collect(&store, GcOptions::default(), &SystemClock, &all(), &fence)
                    .await
                    .expect("collect")
            }
        };

        let report = collect_with(&[]).await;
        assert_eq!((report.removed, report.purged), (2, 0), "{report:?}");
        assert!(!disk.live.contains(&taken_up.to_hex()) && disk.trash.contains(&taken_up.to_hex()));

        // A version took the chunk up after it was trashed: the next step puts it back. The other
        // has not been in the trash for the grace period yet.
        let report = collect_with(&[b"taken up while trashed"]).await;
        assert_eq!((report.restored, report.purged), (1, 0), "{report:?}");
        assert!(disk.live.contains(&taken_up.to_hex()));
        assert!(disk.trash.contains(&garbage.to_hex()));

        age(&disk.trash, &garbage);
        let report = collect_with(&[b"taken up while trashed"]).await;
        assert_eq!((report.removed, report.purged), (0, 1), "{report:?}");
        assert!(!disk.trash.contains(&garbage.to_hex()) && !disk.live.contains(&garbage.to_hex()));
        assert!(disk.live.contains(&taken_up.to_hex()));
    }

    fn all() -> Vec<String> {
        prefixes().collect()
    }

    #[tokio::test]
    async fn removes_old_unreferenced_chunks_and_keeps_the_rest() {
        let f = fixture();
        let kept = f.put(b"referenced");
        let old = f.put(b"old and unreferenced");
        let young = f.put(b"young and unreferenced");
        f.age(&kept, 7200);
        f.age(&old, 7200);
        f.age(&young, 60);
        let report = f.collect(false, HOUR, &[kept]).await;
        assert_eq!(
            report,
            GcReport {
                scanned: 3,
                referenced: 1,
                removed: 1,
                removed_bytes: b"old and unreferenced".len() as u64,
                kept_in_grace: 1,
                dry_run: false,
                purged: 0,
                restored: 0,
            }
        );
        assert!(f.on_disk(&kept) && f.on_disk(&young));
        assert!(!f.on_disk(&old));
        let chunk = ChunkRef { id: kept, size: 10 };
        assert_eq!(&f.store.get(&chunk).expect("kept chunk")[..], b"referenced");

        let report = f.collect(false, Duration::ZERO, &[kept]).await;
        assert_eq!((report.scanned, report.removed), (2, 1), "{report:?}");
        assert!(!f.on_disk(&young));
    }

    #[tokio::test]
    async fn only_a_step_with_something_to_remove_advances_the_fence_and_before_it_removes() {
        let f = fixture();
        let kept = f.put(b"referenced");
        f.age(&kept, 7200);
        let fence = Hooks::fixed(&[kept]);
        let options = GcOptions::default();
        let report = collect(&f.store, options, &SystemClock, &all(), &fence).await;
        assert_eq!(report.expect("collect").removed, 0);
        assert_eq!(fence.advances(), 0, "nothing to remove, nothing to fence");

        let old = f.put(b"old and unreferenced");
        f.age(&old, 7200);
        let disk = f.disk.clone();
        let fence = Hooks::new(
            &[kept],
            || {},
            move || {
                assert!(disk.contains(&old.to_hex()), "removed before the fence");
                Ok(())
            },
        );
        let report = collect(&f.store, options, &SystemClock, &all(), &fence).await;
        assert_eq!(report.expect("collect").removed, 1);
        assert_eq!(fence.advances(), 1, "one step found something to remove");
    }

    #[tokio::test]
    async fn a_dry_run_counts_what_a_real_run_removes_and_removes_nothing() {
        let f = fixture();
        let ids: Vec<ChunkId> = (0..6u8).map(|i| f.put(&[i; 100])).collect();
        for id in &ids[..4] {
            f.age(id, 7200);
        }
        let dry = f.collect(true, HOUR, &ids[..1]).await;
        assert!(
            ids.iter().all(|id| f.on_disk(id)),
            "a dry run removes nothing"
        );
        assert_eq!((dry.removed, dry.removed_bytes), (3, 300));
        let real = f.collect(false, HOUR, &ids[..1]).await;
        assert_eq!(
            GcReport {
                dry_run: true,
                ..real
            },
            dry
        );
        assert_eq!(ids.iter().filter(|id| f.on_disk(id)).count(), 3);
    }

    /// The system clock plus an offset the test moves.
    #[derive(Default)]
    struct Offset(std::sync::atomic::AtomicI64);

    impl Offset {
        fn set(&self, ms: i64) {
            self.0.store(ms, std::sync::atomic::Ordering::Relaxed);
        }
    }

    impl Clock for Offset {
        fn now_ms(&self) -> u64 {
            SystemClock
                .now_ms()
                .saturating_add_signed(self.0.load(std::sync::atomic::Ordering::Relaxed))
        }
    }

    #[tokio::test]
    async fn ages_count_from_a_reading_of_the_clock_after_the_references() {
        let f = fixture();
        let fresh = f.put(b"written a moment ago");
        // The time of day is two hours ahead when the run begins and steps back while it reads.
        let clock = Arc::new(Offset::default());
        clock.set(7_200_000);
        let stepping_back = clock.clone();
        let fence = Hooks::new(&[], move || stepping_back.set(0), || Ok(()));
        let report = collect(
            &f.store,
            GcOptions::default(),
            clock.as_ref(),
            &all(),
            &fence,
        )
        .await
        .expect("collect");
        assert_eq!((report.removed, report.kept_in_grace), (0, 1), "{report:?}");
        assert!(f.on_disk(&fresh));
    }

    #[tokio::test]
    async fn a_reput_refreshes_the_age_of_an_existing_chunk() {
        let f = fixture();
        let id = f.put(b"reused by a new upload");
        f.age(&id, 7200);
        let aged = f.disk.modified(&id.to_hex()).expect("mtime");
        assert_eq!(f.put(b"reused by a new upload"), id);
        let refreshed = f.disk.modified(&id.to_hex()).expect("mtime");
        assert!(refreshed > aged + Duration::from_secs(3600));
        assert_eq!(
            f.store
                .stats
                .chunks_deduplicated
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        let report = f.collect(false, HOUR, &[]).await;
        assert_eq!((report.removed, report.kept_in_grace), (0, 1));
        assert!(f.on_disk(&id));
    }

    #[tokio::test]
    async fn chunks_of_a_blob_being_written_are_kept_whatever_the_grace() {
        let f = fixture();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..20_000_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let mut writer = BlobWriter::new(f.store.clone());
        writer.write(&data[..12_000_000]).await.expect("write");
        // Let the chunk writes started so far land.
        for _ in 0..200 {
            if f.store
                .stats
                .chunks_written
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let during = f.collect(false, Duration::ZERO, &[]).await;
        assert!(during.scanned >= 1, "{during:?}");
        assert_eq!(during.kept_in_grace, during.scanned, "{during:?}");
        writer.write(&data[12_000_000..]).await.expect("write");
        let blob = writer.finish().await.expect("finish");
        for chunk in &blob.chunks {
            assert!(f.on_disk(&chunk.id), "chunk {} lost", chunk.id);
        }
        // Once the writer is gone (and no blob was committed), nothing holds them.
        let after = f.collect(false, Duration::ZERO, &[]).await;
        assert_eq!(after.removed as usize, blob.chunks.len(), "{after:?}");
        assert_eq!(after.removed_bytes, data.len() as u64);
    }

    #[tokio::test]
    async fn chunks_pinned_at_any_moment_of_a_run_are_kept_by_it() {
        let f = fixture();
        let before = f.put(b"pinned before the run, released during it");
        let during = f.put(b"pinned and released during the run");
        let control = f.put(b"never pinned");
        // Everything is old to a clock two hours ahead.
        let clock = Offset::default();
        clock.set(7_200_000);
        let pins = Pins::new(f.store.clone());
        f.store
            .put_pinned(b"pinned before the run, released during it", &pins)
            .expect("pin");
        let pinned = std::sync::Mutex::new(Some(pins));
        let store = f.store.clone();
        let fence = Hooks::new(
            &[],
            move || {
                // A writer finishes (its pins go) while the run reads the references; another
                // writes and finishes in between.
                pinned.lock().expect("pins").take();
                let pins = Pins::new(store.clone());
                store
                    .put_pinned(b"pinned and released during the run", &pins)
                    .expect("pin");
            },
            || Ok(()),
        );
        let options = GcOptions {
            dry_run: false,
            grace: HOUR,
        };
        let report = collect(&f.store, options, &clock, &all(), &fence)
            .await
            .expect("collect");
        assert!(f.on_disk(&before) && f.on_disk(&during), "{report:?}");
        assert!(!f.on_disk(&control), "{report:?}");
        let next = collect(&f.store, options, &clock, &all(), &Hooks::fixed(&[]))
            .await
            .expect("collect");
        assert_eq!(next.removed, 2, "pins released before a run do not hold it");
    }

    #[tokio::test]
    async fn chunks_found_present_during_a_run_are_kept_by_it() {
        let f = fixture();
        let id = f.put(b"replicated");
        f.age(&id, 7200);
        let store = f.store.clone();
        // The replication worker finds the chunk present while the run reads the references.
        let fence = Hooks::new(&[], move || assert!(store.contains(&id)), || Ok(()));
        let options = GcOptions {
            dry_run: false,
            grace: HOUR,
        };
        let report = collect(&f.store, options, &SystemClock, &all(), &fence)
            .await
            .expect("collect");
        assert_eq!((report.removed, report.kept_in_grace), (0, 1));
        assert!(f.on_disk(&id));
        let next = f.collect(false, HOUR, &[]).await;
        assert_eq!(next.removed, 1, "claims last one run only");
    }

    #[tokio::test]
    async fn one_run_at_a_time_and_removed_chunks_leave_the_memory_tier() {
        let f = fixture();
        let id = f.put(b"cached");
        let chunk = ChunkRef { id, size: 6 };
        f.store.get(&chunk).expect("read into the memory tier");
        f.age(&id, 7200);
        let second = Arc::new(std::sync::Mutex::new(None));
        let store = f.store.clone();
        let started = second.clone();
        let fence = Hooks::new(
            &[],
            move || {
                let mut slot = started.lock().expect("slot");
                if slot.is_none() {
                    let store = store.clone();
                    *slot = Some(tokio::spawn(async move {
                        let options = GcOptions::default();
                        collect(&store, options, &SystemClock, &all(), &Hooks::fixed(&[])).await
                    }));
                }
            },
            || Ok(()),
        );
        let report = collect(&f.store, GcOptions::default(), &SystemClock, &all(), &fence)
            .await
            .expect("collect");
        assert_eq!(report.removed, 1);
        assert!(matches!(f.store.get(&chunk), Err(BlobError::Missing(_))));
        let second = second.lock().expect("slot").take().expect("started");
        let second = second
            .await
            .expect("task")
            .expect("the second run, after the first");
        assert_eq!(
            second.scanned, 0,
            "it ran after the first had removed the chunk"
        );
    }

    #[tokio::test]
    async fn a_failed_fence_removes_nothing() {
        let f = fixture();
        let id = f.put(b"maybe referenced");
        f.age(&id, 7200);
        let fence = Hooks::new(
            &[],
            || {},
            || {
                Err(GcError::Unavailable(ProposeError::Unavailable(
                    "no quorum".to_string(),
                )))
            },
        );
        let result = collect(&f.store, GcOptions::default(), &SystemClock, &all(), &fence).await;
        assert!(matches!(result, Err(GcError::Unavailable(_))), "{result:?}");
        assert!(f.on_disk(&id));
        assert_eq!(f.collect(false, HOUR, &[]).await.removed, 1, "runs again");
    }

    fn registry(name: &str) -> Command {
        // From JSON, so fields other parts add (with their serde defaults) need no change here.
        let registry: Registry = serde_json::from_value(serde_json::json!({
            "name": name,
            "package_type": PackageType::Generic,
            "created_at": 1,
        }))
        .expect("registry");
        Command::CreateRegistry { registry }
    }

    fn blob(byte: u8, chunks: &[u8]) -> BlobRef {
        BlobRef {
            sha256: Sha256([byte; 32]),
            size: chunks.len() as u64,
            chunks: chunks
                .iter()
                .map(|c| ChunkRef {
                    id: ChunkId([*c; 32]),
                    size: 1,
                })
                .collect(),
            inline: None,
        }
    }

    fn put_file(version: &str, blob: BlobRef) -> Command {
        Command::PutFile {
            registry: "r".into(),
            package: "tool".into(),
            version: version.into(),
            filename: "tool.bin".into(),
            blob,
            attributes: BTreeMap::new(),
            tags: Vec::new(),
            overwrite: Overwrite::Allow,
            at: 10,
        }
    }

    #[test]
    fn chunks_are_referenced_while_a_file_link_or_cached_document_uses_them() {
        let state = TestState::new();
        assert_eq!(state.apply(registry("r")), Ok(()));
        assert_eq!(state.apply(put_file("1.0", blob(1, &[1, 2]))), Ok(()));
        assert_eq!(state.apply(put_file("2.0", blob(2, &[2, 3]))), Ok(()));
        assert_eq!(state.apply(put_file("3.0", blob(3, &[4, 4]))), Ok(()));
        let link = |byte: u8| Command::LinkBlob {
            registry: "r".into(),
            package: "image".into(),
            digest: "sha256:".to_string() + &Sha256([byte; 32]).to_hex(),
            blob: blob(byte, &[byte]),
            at: 10,
        };
        assert_eq!(state.apply(link(5)), Ok(()));
        assert_eq!(
            state.apply(Command::CacheDocument {
                registry: "r".into(),
                key: "index".into(),
                document: CachedDocument {
                    blob: blob(6, &[6]),
                    content_type: "text/html".into(),
                    fetched_at: 10,
                },
            }),
            Ok(())
        );
        assert_eq!(
            state.apply(Command::DeleteVersion {
                registry: "r".into(),
                package: "tool".into(),
                version: "2.0".into(),
            }),
            Ok(())
        );
        assert_eq!(state.apply(link(7)), Ok(()));
        assert_eq!(
            state.apply(Command::UnlinkBlob {
                registry: "r".into(),
                package: "image".into(),
                digest: "sha256:".to_string() + &Sha256([7; 32]).to_hex(),
            }),
            Ok(())
        );
        let view = state.view();
        let referenced: HashSet<u8> = (0..10u8)
            .filter(|c| view.referenced(&ChunkId([*c; 32])).expect("read"))
            .collect();
        assert_eq!(
            referenced,
            [1, 2, 4, 5, 6].into(),
            "chunk 2 is shared with a deleted version; 3 and 7 are not referenced"
        );
        assert!(
            view.blob(&Sha256([2; 32])).expect("read").is_none(),
            "a blob nobody references is forgotten"
        );
        assert!(view.blob(&Sha256([1; 32])).expect("read").is_some());

        // A blob's chunks stay referenced as long as any file still uses it.
        assert_eq!(state.apply(put_file("4.0", blob(1, &[1, 2]))), Ok(()));
        assert_eq!(
            state.apply(Command::DeleteVersion {
                registry: "r".into(),
                package: "tool".into(),
                version: "1.0".into(),
            }),
            Ok(())
        );
        assert!(state.view().referenced(&ChunkId([1; 32])).expect("read"));
    }
}
