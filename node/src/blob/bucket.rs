//! Chunks in an S3-compatible bucket ([`BucketDisk`]): the chunk backend the nodes of a site share
//! when they are started with `storage = "s3://<bucket>/<prefix>"`. This module owns the bucket's
//! layout, the requests made to it (through the `object_store` crate, retried with backoff), the
//! circuit breaker in front of it and its counters.
//!
//! Layout: a chunk is the object `<prefix>/chunks/<aa>/<blake3 hex>`, so one fan-out prefix lists
//! as one "directory". An object store answers a PUT only once the object is stored whole, so a
//! returned PUT is the durable write [`ChunkDisk::write_durable`] promises, and a crash never
//! leaves a partial chunk.
//!
//! Removal is deferred ([`Trash`]): several nodes write into the bucket and none sees the others'
//! uploads in flight, so garbage collection moves a chunk to `<prefix>/trash/<aa>/<hex>` instead of
//! deleting it. A read that misses a chunk finds it there and puts it back, and the next
//! collection, fenced again, puts back every trashed chunk a version took up in between and
//! deletes the rest once they have been in the trash for the grace period.
//!
//! [`ChunkDisk`]'s calls are blocking; the requests run on a runtime of this module's own, so a
//! call may come from any thread, a blocking one or an async worker.

use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, S3CopyIfNotExists};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, PutPayload, RetryConfig};

use super::ChunkDisk;
use crate::breaker::CircuitBreaker;

/// How long the bucket is not asked after a run of failures.
const BREAKER_COOLDOWN: Duration = Duration::from_secs(5);
/// How long one request may take, retries included.
const REQUEST_DEADLINE: Duration = Duration::from_secs(20);

/// Where the bucket is and how to reach it (from the node's configuration); the credentials come
/// from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSettings {
    /// The bucket's name.
    pub bucket: String,
    /// The key prefix every object of this cluster's chunks goes under (may be empty).
    pub prefix: String,
    /// The S3 endpoint (`https://s3.example.com:3900`); `None`: AWS, by region.
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    pub region: Option<String>,
    /// Bucket in the host name (`bucket.endpoint`) rather than in the path.
    pub virtual_hosted: bool,
    /// PEM CA certificates trusted besides the system's store.
    pub ca_file: Option<PathBuf>,
}

impl BucketSettings {
    /// The collection epoch of this bucket and prefix, the same at every node that shares them: a
    /// hash of where they are, with the top bit set so it is no node's id.
    pub fn fence(&self) -> u64 {
        let place = format!(
            "s3|{}|{}|{}",
            self.endpoint.as_deref().unwrap_or("aws"),
            self.bucket,
            self.prefix.trim_matches('/')
        );
        let hash = blake3::hash(place.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        u64::from_le_bytes(first) | 1 << 63
    }
}

/// Why the bucket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The settings do not make a usable client.
    #[error("object storage settings: {0}")]
    Settings(String),
    /// The CA file could not be read.
    #[error("reading the storage CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

/// The object store failed (after its retries) or its circuit is open: the chunk store answers
/// 503, and nothing is acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("object storage is unavailable: {0}")]
pub struct StorageUnavailable(pub String);

/// True when `error` is the object store being down rather than a chunk's own fault.
pub fn is_unavailable(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<StorageUnavailable>())
}

/// What the bucket has been asked since start (for `/metrics`).
#[derive(Debug, Default)]
pub struct BucketStats {
    /// Requests sent, by what they did: GET, PUT, HEAD, LIST, COPY, DELETE.
    pub requests: [AtomicU64; 6],
    /// Requests that failed (a missing object is no failure).
    pub errors: AtomicU64,
    /// Requests refused at once because the circuit was open.
    pub refused: AtomicU64,
    /// Time spent in requests, in microseconds.
    pub micros: AtomicU64,
    /// Bytes read from the bucket.
    pub bytes_read: AtomicU64,
    /// Bytes written to the bucket.
    pub bytes_written: AtomicU64,
}

/// The request kinds [`BucketStats::requests`] counts, in its order.
pub const REQUEST_KINDS: [&str; 6] = ["get", "put", "head", "list", "copy", "delete"];

#[derive(Debug, Clone, Copy)]
enum Request {
    Get,
    Put,
    Head,
    List,
    Copy,
    Delete,
}

/// Removed chunks kept aside until a later, fenced collection decides about them (see the module
/// docs). Only stores that several nodes write into have one.
pub trait Trash: Send + Sync {
    /// Trashed chunks whose names start with `prefix`: name, when it was trashed, length.
    fn list(&self, prefix: &str) -> io::Result<Vec<(String, SystemTime, u64)>>;
    /// Puts a trashed chunk back in the store (`NotFound` when it is not in the trash).
    fn restore(&self, name: &str) -> io::Result<()>;
    /// Deletes trashed chunks for good, in as few requests as the store allows (S3's
    /// DeleteObjects takes 1,000 keys).
    fn purge(&self, names: &[String]) -> io::Result<()>;
}

/// How long a chunk seen in the bucket is taken as there without asking again.
const PRESENT_FOR: Duration = Duration::from_secs(60);
/// The most chunks remembered as seen.
const PRESENT_MAX: usize = 100_000;

/// Chunks this node saw in the bucket lately (wrote, touched, or found), so the checks a write
/// makes again before it commits, and the replication worker's after it, cost no request. A
/// removal forgets the chunk; another node's collection may trash one meanwhile, and the trash
/// puts it back when a version uses it (see the module docs).
#[derive(Default)]
struct Present(Mutex<std::collections::HashMap<String, Instant>>);

impl Present {
    fn names(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Instant>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn knows(&self, name: &str) -> bool {
        self.names()
            .get(name)
            .is_some_and(|seen| seen.elapsed() < PRESENT_FOR)
    }

    fn saw(&self, name: &str) {
        let mut names = self.names();
        if names.len() >= PRESENT_MAX {
            names.retain(|_, seen| seen.elapsed() < PRESENT_FOR);
            if names.len() >= PRESENT_MAX {
                names.clear();
            }
        }
        names.insert(name.to_string(), Instant::now());
    }

    fn forget(&self, name: &str) {
        self.names().remove(name);
    }
}

/// Chunk objects in one bucket under one prefix.
pub struct BucketDisk {
    store: AmazonS3,
    prefix: String,
    /// The collection epoch every node of the bucket fences with.
    fence: u64,
    runtime: Option<tokio::runtime::Runtime>,
    breaker: Mutex<CircuitBreaker>,
    present: Present,
    /// What the bucket has been asked.
    pub stats: BucketStats,
}

impl BucketDisk {
    /// A client for the bucket of `settings`, tried with one listing.
    pub fn open(settings: &BucketSettings) -> Result<BucketDisk, BucketError> {
        let settings_error = |error: object_store::Error| BucketError::Settings(error.to_string());
        let mut options = ClientOptions::new()
            .with_timeout(Duration::from_secs(30))
            .with_connect_timeout(Duration::from_secs(5))
            .with_allow_http(true);
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|source| BucketError::CaFile {
                path: path.display().to_string(),
                source,
            })?;
            for certificate in
                object_store::Certificate::from_pem_bundle(&pem).map_err(settings_error)?
            {
                options = options.with_root_certificate(certificate);
            }
        }
        let builder = |options: ClientOptions| {
            // A touch is a copy of the object onto itself, allowed only with
            // `x-amz-metadata-directive: REPLACE`; like every x-amz-* header it must be signed,
            // and object_store signs the header it sends with a conditional copy, so a touch is
            // one ([`BucketDisk::touch`]).
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(&settings.bucket)
                .with_copy_if_not_exists(S3CopyIfNotExists::Header(
                    "x-amz-metadata-directive".to_string(),
                    "REPLACE".to_string(),
                ))
                .with_virtual_hosted_style_request(settings.virtual_hosted)
                .with_client_options(options)
                .with_retry(RetryConfig {
                    backoff: BackoffConfig {
                        init_backoff: Duration::from_millis(50),
                        max_backoff: Duration::from_secs(2),
                        base: 2.0,
                    },
                    max_retries: 3,
                    retry_timeout: Duration::from_secs(10),
                });
            if let Some(endpoint) = &settings.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(region) = &settings.region {
                builder = builder.with_region(region);
            }
            builder.build().map_err(settings_error)
        };
        let store = builder(options)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("arca-bucket")
            .enable_all()
            .build()
            .map_err(|error| BucketError::Settings(format!("starting its runtime: {error}")))?;
        let disk = BucketDisk {
            store,
            prefix: settings.prefix.trim_matches('/').to_string(),
            fence: settings.fence(),
            runtime: Some(runtime),
            breaker: Mutex::default(),
            present: Present::default(),
            stats: BucketStats::default(),
        };
        // A store that is down (or refuses these credentials) does not keep the node from its
        // other duties (Raft votes, metadata reads): chunk reads and writes answer 503 until it
        // answers.
        if let Err(error) = disk.list_under("chunks", "00") {
            tracing::error!(
                bucket = %settings.bucket,
                %error,
                "object storage does not answer; chunk reads and writes fail until it does"
            );
        }
        Ok(disk)
    }

    fn key(&self, area: &str, name: &str) -> ObjectPath {
        let fan_out = name.get(0..2).unwrap_or("_");
        let key = format!("{area}/{fan_out}/{name}");
        match self.prefix.is_empty() {
            true => ObjectPath::from(key),
            false => ObjectPath::from(format!("{}/{key}", self.prefix)),
        }
    }

    /// Runs one request on the bucket's runtime and waits for it, through the circuit breaker,
    /// counting it. A missing object is `NotFound`; any other failure is [`StorageUnavailable`].
    fn call<T, F>(&self, kind: Request, request: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: Future<Output = object_store::Result<T>> + Send + 'static,
    {
        if !self.breaker().allows() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(io::Error::other(StorageUnavailable(
                "too many recent failures; not asking it for a few seconds".to_string(),
            )));
        }
        self.stats.requests[kind as usize].fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let Some(runtime) = &self.runtime else {
            return Err(io::Error::other(StorageUnavailable("closed".to_string())));
        };
        runtime.spawn(async move {
            let outcome = tokio::time::timeout(REQUEST_DEADLINE, request).await;
            let _ = sender.send(outcome);
        });
        let outcome = receiver.recv();
        self.stats.micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let failure = match outcome {
            Ok(Ok(Ok(value))) => {
                self.breaker().succeeded();
                return Ok(value);
            }
            Ok(Ok(Err(object_store::Error::NotFound { path, .. }))) => {
                self.breaker().succeeded();
                return Err(io::Error::new(io::ErrorKind::NotFound, path));
            }
            Ok(Ok(Err(error))) => crate::frontend::with_causes(&error),
            Ok(Err(_elapsed)) => format!("no answer within {}s", REQUEST_DEADLINE.as_secs()),
            Err(_dropped) => "the request was dropped".to_string(),
        };
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.breaker().failed(BREAKER_COOLDOWN);
        tracing::warn!(request = ?kind, error = %failure, "object storage request failed");
        Err(io::Error::other(StorageUnavailable(failure)))
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, CircuitBreaker> {
        self.breaker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, key: ObjectPath) -> io::Result<Bytes> {
        let store = self.store.clone();
        let bytes = self.call(
            Request::Get,
            async move { store.get(&key).await?.bytes().await },
        )?;
        self.stats
            .bytes_read
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    fn put(&self, key: ObjectPath, data: Bytes) -> io::Result<()> {
        let store = self.store.clone();
        let len = data.len() as u64;
        self.call(Request::Put, async move {
            store.put(&key, PutPayload::from(data)).await
        })?;
        self.stats.bytes_written.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    fn head(&self, key: ObjectPath) -> io::Result<object_store::ObjectMeta> {
        let store = self.store.clone();
        self.call(Request::Head, async move { store.head(&key).await })
    }

    /// Copies `from` to `to`; onto itself, with the header that makes the store take it (a new
    /// modification time, the same bytes).
    fn copy(&self, from: ObjectPath, to: ObjectPath) -> io::Result<()> {
        let store = self.store.clone();
        self.call(Request::Copy, async move {
            match from == to {
                true => store.copy_if_not_exists(&from, &to).await,
                false => store.copy(&from, &to).await,
            }
        })
    }

    fn delete(&self, key: ObjectPath) -> io::Result<()> {
        let store = self.store.clone();
        self.call(Request::Delete, async move { store.delete(&key).await })
    }

    /// The objects of `area` (`chunks` or `trash`) under one fan-out prefix.
    fn list_under(&self, area: &str, prefix: &str) -> io::Result<Vec<(String, SystemTime, u64)>> {
        let store = self.store.clone();
        let directory = match self.prefix.is_empty() {
            true => ObjectPath::from(format!("{area}/{prefix}")),
            false => ObjectPath::from(format!("{}/{area}/{prefix}", self.prefix)),
        };
        let listed = self.call(Request::List, async move {
            store.list(Some(&directory)).try_collect::<Vec<_>>().await
        })?;
        Ok(listed
            .into_iter()
            .filter_map(|object| {
                let name = object.location.filename()?.to_string();
                name.starts_with(prefix)
                    .then(|| (name, SystemTime::from(object.last_modified), object.size))
            })
            .collect())
    }
}

impl Drop for BucketDisk {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl ChunkDisk for BucketDisk {
    /// The chunk, or its trashed copy put back (a version took it up after a collection moved it).
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        match self.get(self.key("chunks", name)) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let trashed = self.get(self.key("trash", name))?;
                self.put(self.key("chunks", name), trashed.clone())?;
                tracing::info!(chunk = name, "put back a trashed chunk that was read");
                Ok(trashed.to_vec())
            }
            other => other.map(|bytes| bytes.to_vec()),
        }
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        Ok(self.head(self.key("chunks", name))?.size)
    }

    /// A failure to ask counts as absent: the caller writes the chunk (and fails the same way) or
    /// refuses the write.
    /// Chunks seen in the bucket in the last [`PRESENT_FOR`] are taken as there without asking.
    fn contains(&self, name: &str) -> bool {
        if self.present.knows(name) {
            return true;
        }
        let found = self.head(self.key("chunks", name)).is_ok();
        if found {
            self.present.saw(name);
        }
        found
    }

    fn write_durable(&self, name: &str, data: &[u8]) -> io::Result<()> {
        self.put(self.key("chunks", name), Bytes::copy_from_slice(data))?;
        self.present.saw(name);
        Ok(())
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<(String, SystemTime, u64)>> {
        self.list_under("chunks", prefix)
    }

    fn modified(&self, name: &str) -> io::Result<SystemTime> {
        Ok(SystemTime::from(
            self.head(self.key("chunks", name))?.last_modified,
        ))
    }

    /// A copy of the object onto itself: the store gives it a new modification time.
    fn touch(&self, name: &str) -> io::Result<()> {
        let key = self.key("chunks", name);
        self.copy(key.clone(), key)?;
        self.present.saw(name);
        Ok(())
    }

    /// Moves the chunk to the trash (see the module docs).
    fn remove(&self, name: &str) -> io::Result<()> {
        self.present.forget(name);
        self.copy(self.key("chunks", name), self.key("trash", name))?;
        self.delete(self.key("chunks", name))
    }

    /// A bucket has no free-space figure.
    fn available(&self) -> io::Result<u64> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "object storage has no free-space figure",
        ))
    }

    fn shared_fence(&self) -> Option<u64> {
        Some(self.fence)
    }

    fn trash(&self) -> Option<&dyn Trash> {
        Some(self)
    }

    fn bucket_stats(&self) -> Option<&BucketStats> {
        Some(&self.stats)
    }
}

impl Trash for BucketDisk {
    fn list(&self, prefix: &str) -> io::Result<Vec<(String, SystemTime, u64)>> {
        self.list_under("trash", prefix)
    }

    fn restore(&self, name: &str) -> io::Result<()> {
        self.copy(self.key("trash", name), self.key("chunks", name))?;
        self.delete(self.key("trash", name))
    }

    fn purge(&self, names: &[String]) -> io::Result<()> {
        let keys: Vec<object_store::Result<ObjectPath>> = names
            .iter()
            .map(|name| Ok(self.key("trash", name)))
            .collect();
        let store = self.store.clone();
        self.call(Request::Delete, async move {
            store
                .delete_stream(futures::stream::iter(keys).boxed())
                .try_collect::<Vec<_>>()
                .await
        })
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(prefix: &str) -> BucketSettings {
        BucketSettings {
            bucket: "arca-chunks".into(),
            prefix: prefix.into(),
            endpoint: Some("http://127.0.0.1:3900".into()),
            region: Some("garage".into()),
            virtual_hosted: false,
            ca_file: None,
        }
    }

    #[test]
    fn nodes_of_one_bucket_and_prefix_fence_alike_and_never_as_a_node() {
        let a = settings("site-a").fence();
        assert_eq!(
            a,
            settings("/site-a/").fence(),
            "the same place however written"
        );
        assert_ne!(
            a,
            settings("site-b").fence(),
            "another prefix is another store"
        );
        assert!(
            a >= 1 << 63,
            "node ids are small numbers; a store's epoch is none of them"
        );
    }

    #[test]
    fn a_failure_to_reach_the_store_is_told_apart_from_a_missing_chunk() {
        let down = io::Error::other(StorageUnavailable("connection refused".into()));
        assert!(is_unavailable(&down));
        assert!(!is_unavailable(&io::Error::new(
            io::ErrorKind::NotFound,
            "x"
        )));
        let (status, code) = crate::blob::BlobError::Io(down).status();
        assert_eq!((status.as_u16(), code), (503, "UNAVAILABLE"));
    }
}
