//! Moving a node's chunks from its local chunk directory into its site's bucket while it keeps
//! serving. A node started with a bucket (`storage = "s3://..."`) over a data directory that still
//! holds local chunks keeps them on a [`LayeredDisk`]: the bucket first, the local directory under
//! it, so every chunk is found wherever it is, new chunks go to the bucket and a removal takes both.
//! [`Migration`] (asked for with `arca storage migrate --to s3://...`) then goes through the local
//! chunks one fan-out prefix at a time: each chunk read, checked against its blake3 name, written
//! to the bucket unless it is there already, and only then removed from the disk. Where it got to
//! is kept as a node-local value after each prefix, so a crash resumes at the prefix it was in
//! (whose chunks already moved are found in the bucket and only removed locally).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arca_protocol::api::MigrationStatus;
use serde::{Deserialize, Serialize};

use super::{BucketDisk, BucketStats, ChunkDisk, LocalDisk, Trash};
use crate::meta::Meta;

/// The bucket over the local chunk directory (see the module docs).
pub struct LayeredDisk {
    bucket: BucketDisk,
    local: LocalDisk,
}

impl LayeredDisk {
    /// `bucket` in front of the local chunks of `local`.
    pub fn new(bucket: BucketDisk, local: LocalDisk) -> LayeredDisk {
        LayeredDisk { bucket, local }
    }
}

/// `first`, or `second` when `first` found nothing.
fn or_below<T>(first: io::Result<T>, second: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    match first {
        Err(error) if error.kind() == io::ErrorKind::NotFound => second(),
        other => other,
    }
}

impl ChunkDisk for LayeredDisk {
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        or_below(self.bucket.read(name), || self.local.read(name))
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        or_below(self.bucket.size(name), || self.local.size(name))
    }

    fn contains(&self, name: &str) -> bool {
        self.local.contains(name) || self.bucket.contains(name)
    }

    fn write_durable(&self, name: &str, data: &[u8]) -> io::Result<()> {
        self.bucket.write_durable(name, data)
    }

    /// Both layers; a chunk in both is listed once, as the bucket has it.
    fn list(&self, prefix: &str) -> io::Result<Vec<(String, SystemTime, u64)>> {
        let mut listed = ChunkDisk::list(&self.bucket, prefix)?;
        let in_bucket: std::collections::HashSet<String> =
            listed.iter().map(|(name, _, _)| name.clone()).collect();
        listed.extend(
            self.local
                .list(prefix)?
                .into_iter()
                .filter(|(name, _, _)| !in_bucket.contains(name)),
        );
        Ok(listed)
    }

    fn modified(&self, name: &str) -> io::Result<SystemTime> {
        or_below(self.bucket.modified(name), || self.local.modified(name))
    }

    fn touch(&self, name: &str) -> io::Result<()> {
        or_below(self.bucket.touch(name), || self.local.touch(name))
    }

    /// From both layers: `NotFound` only when neither held it.
    fn remove(&self, name: &str) -> io::Result<()> {
        let from_bucket = self.bucket.remove(name);
        let from_local = self.local.remove(name);
        match (from_bucket, from_local) {
            (Ok(()), _) | (_, Ok(())) => Ok(()),
            (Err(error), Err(other)) if error.kind() == io::ErrorKind::NotFound => Err(other),
            (Err(error), _) => Err(error),
        }
    }

    fn available(&self) -> io::Result<u64> {
        self.bucket.available()
    }

    fn shared_fence(&self) -> Option<u64> {
        self.bucket.shared_fence()
    }

    fn trash(&self) -> Option<&dyn Trash> {
        Some(&self.bucket)
    }

    fn bucket_stats(&self) -> Option<&BucketStats> {
        Some(&self.bucket.stats)
    }
}

/// Where a migration got to (a node-local value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Progress {
    target: String,
    /// Fan-out prefixes done, in order from `00`.
    prefixes_done: u16,
}

const PROGRESS_KEY: &str = "storage_migration";
const PREFIXES: u16 = 256;

/// Why a migration could not start.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The target is not the bucket the node is configured with.
    #[error(
        "this node keeps its chunks in {configured}: start it with --storage {wanted} (and its \
         endpoint), then ask again; it moves its local chunks into the bucket it is configured with"
    )]
    OtherTarget {
        /// The node's bucket.
        configured: String,
        /// The one asked for.
        wanted: String,
    },
}

/// The move of this node's local chunks into its bucket.
pub struct Migration {
    disk: Arc<LayeredDisk>,
    meta: Meta,
    target: String,
    running: AtomicBool,
    prefixes_done: AtomicU16,
    moved_chunks: AtomicU64,
    moved_bytes: AtomicU64,
    corrupt_chunks: AtomicU64,
    error: Mutex<Option<String>>,
}

impl Migration {
    /// The migration into `target` over `disk`, taken up where an earlier run of the node left it;
    /// resumed at once when one was under way.
    pub fn open(disk: Arc<LayeredDisk>, meta: Meta, target: String) -> Arc<Migration> {
        let progress = meta
            .local_value::<Progress>(PROGRESS_KEY)
            .ok()
            .flatten()
            .filter(|progress| progress.target == target);
        let migration = Arc::new(Migration {
            disk,
            meta,
            prefixes_done: AtomicU16::new(progress.as_ref().map_or(0, |p| p.prefixes_done)),
            target,
            running: AtomicBool::new(false),
            moved_chunks: AtomicU64::new(0),
            moved_bytes: AtomicU64::new(0),
            corrupt_chunks: AtomicU64::new(0),
            error: Mutex::new(None),
        });
        if progress.is_some_and(|p| p.prefixes_done < PREFIXES) {
            tracing::info!("resuming the move of local chunks into the bucket");
            migration.start_unchecked();
        }
        migration
    }

    /// Starts (or resumes) the move into `target`, unless it is running or finished.
    pub fn start(self: &Arc<Self>, target: &str) -> Result<(), MigrateError> {
        if target.trim_end_matches('/') != self.target.trim_end_matches('/') {
            return Err(MigrateError::OtherTarget {
                configured: self.target.clone(),
                wanted: target.to_string(),
            });
        }
        self.start_unchecked();
        Ok(())
    }

    fn start_unchecked(self: &Arc<Self>) {
        if self.prefixes_done.load(Ordering::Relaxed) >= PREFIXES
            || self.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        *self.error() = None;
        let migration = self.clone();
        tokio::spawn(async move {
            let outcome = migration.run().await;
            if let Err(error) = outcome {
                tracing::error!(%error, "moving local chunks into the bucket stopped");
                *migration.error() = Some(error.to_string());
            }
            migration.running.store(false, Ordering::Release);
        });
    }

    fn error(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn run(self: &Arc<Self>) -> io::Result<()> {
        loop {
            let done = self.prefixes_done.load(Ordering::Relaxed);
            if done >= PREFIXES {
                tracing::info!(
                    chunks = self.moved_chunks.load(Ordering::Relaxed),
                    bytes = self.moved_bytes.load(Ordering::Relaxed),
                    "moved the local chunks into the bucket"
                );
                return Ok(());
            }
            let migration = self.clone();
            crate::blocking::spawn(move || migration.move_prefix(&format!("{done:02x}")))
                .await
                .map_err(io::Error::other)??;
            self.prefixes_done.store(done + 1, Ordering::Relaxed);
            let progress = Progress {
                target: self.target.clone(),
                prefixes_done: done + 1,
            };
            self.meta
                .set_local_value(PROGRESS_KEY, &progress)
                .map_err(io::Error::other)?;
        }
    }

    /// Moves the local chunks of one fan-out prefix (blocking).
    fn move_prefix(&self, prefix: &str) -> io::Result<()> {
        let (bucket, local) = (&self.disk.bucket, &self.disk.local);
        for (name, _, _) in local.list(prefix)? {
            let data = match local.read(&name) {
                Ok(data) => data,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            let sound = blake3::hash(&data).to_hex().as_str() == name;
            let in_bucket = bucket.contains(&name);
            if !sound && !in_bucket {
                tracing::error!(chunk = %name, "a local chunk is corrupt; left for the scrub");
                self.corrupt_chunks.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !in_bucket {
                bucket.write_durable(&name, &data)?;
            }
            match local.remove(&name) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
            self.moved_chunks.fetch_add(1, Ordering::Relaxed);
            self.moved_bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        local.remove_empty_directories(prefix)
    }

    /// What the migration has done.
    pub fn status(&self) -> MigrationStatus {
        let prefixes_done = self.prefixes_done.load(Ordering::Relaxed);
        let error = self.error().clone();
        let state = if self.running.load(Ordering::Acquire) {
            "running"
        } else if prefixes_done >= PREFIXES {
            "finished"
        } else if error.is_some() {
            "failed"
        } else {
            "waiting"
        };
        MigrationStatus {
            target: self.target.clone(),
            state: state.to_string(),
            prefixes_done,
            moved_chunks: self.moved_chunks.load(Ordering::Relaxed),
            moved_bytes: self.moved_bytes.load(Ordering::Relaxed),
            corrupt_chunks: self.corrupt_chunks.load(Ordering::Relaxed),
            error,
        }
    }
}
