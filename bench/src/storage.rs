//! Where the node under test keeps its chunks, for `generic` and `oci` (`--storage`).
//!
//! `local` (the default): in its data directory, the node running in this process, as these two
//! benchmarks have always measured it.
//!
//! `garage`: in a bucket of a single-node Garage (`garage`, installed by
//! `scripts/install-clients.sh`) started for the run by the tests' own helper
//! ([`arca_tests::garage::Garage`]); the node is the release `arca-node` run as a child process with
//! the bucket's flags (`--storage s3://...`, `--storage-endpoint`, `--storage-region`) and
//! credentials (`AWS_*` in its environment). Besides its own rows, the benchmark then measures the
//! limit: the same bytes PUT into and GET from the bucket directly with `object_store`, each run
//! beside Arca's push or pull of them ([`Pairs`]); and it reports what the bucket holds against what
//! was pushed through Arca, and how the node's object-store counters grew over each phase
//! ([`Limit`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use arca_tests::garage::{BUCKET, Garage};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, PutPayload};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;

use crate::common::{self, blocking};
use crate::report::{BucketHeld, GarageReport, LimitRow, StoragePhase, mib_per_second};
use crate::scale::{self, NodeProcess, Signal};

/// The prefix the node keeps its chunks under, and the one the direct objects go under.
const NODE_PREFIX: &str = "arca";
const DIRECT_PREFIX: &str = "direct";
/// Objects up to this size are sent in one PUT; larger ones as a multipart upload of [`PART`]-sized
/// parts, [`PARTS_IN_FLIGHT`] at a time (as many as the node's chunk writes of one upload).
const SINGLE_PUT_MAX: u64 = 64 << 20;
const PART: u64 = 16 << 20;
const PARTS_IN_FLIGHT: usize = 4;
/// How long one direct request may take (the GET of a whole large object included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// The `/metrics` samples a phase's counters are taken from.
const COUNTER_PREFIXES: [&str; 2] = ["arca_storage_", "arca_chunk"];

/// Options `generic` and `oci` share: where the node keeps its chunks.
#[derive(Debug, clap::Args)]
pub struct StorageArgs {
    /// Where the node keeps its chunks: `local` (its data directory; the node runs in this process)
    /// or `garage` (a bucket of a single-node Garage started for the run; the node runs as a child
    /// process, and the same bytes are also PUT to and GET from the bucket directly, the limit).
    #[arg(long, value_enum, default_value_t = Storage::Local)]
    pub storage: Storage,
    /// The `arca-node` binary run with `--storage garage` [default: the one beside this binary].
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
}

/// Where the node keeps its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Storage {
    /// Its data directory.
    Local,
    /// A Garage bucket.
    Garage,
}

/// The node under test: where its HTTP API is, its admin token, and how it runs.
pub struct Node {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
    /// The admin token it wrote on its first start.
    pub token: String,
    running: Running,
}

/// How the node under test runs.
enum Running {
    /// In this process, storing in its data directory (`--storage local`).
    InProcess(arca_node::RunningNode),
    /// A child process keeping its chunks in the bucket (`--storage garage`).
    Child(NodeProcess),
}

impl Node {
    async fn stop(self) -> anyhow::Result<()> {
        match self.running {
            Running::InProcess(node) => node.shutdown().await.context("stopping the node"),
            Running::Child(mut process) => process.stop(Signal::Term).await.map(drop),
        }
    }
}

/// The node under test and, with `--storage garage`, the bucket it keeps its chunks in.
pub struct Stand {
    /// The node.
    pub node: Node,
    /// The bucket (`None` with `--storage local`).
    pub bucket: Option<Bucket>,
}

impl Stand {
    /// Starts the node with its data in `data_dir` (and, with `--storage garage`, Garage first).
    pub async fn start(args: &StorageArgs, data_dir: PathBuf) -> anyhow::Result<Stand> {
        match args.storage {
            Storage::Local => {
                let node = common::start_node(data_dir).await?;
                let token = match common::admin_token(&node).await {
                    Ok(token) => token,
                    Err(error) => {
                        let _ = node.shutdown().await;
                        return Err(error);
                    }
                };
                Ok(Stand {
                    node: Node {
                        base: format!("http://{}", node.http_addr),
                        token,
                        running: Running::InProcess(node),
                    },
                    bucket: None,
                })
            }
            Storage::Garage => {
                let bin = scale::node_binary(args.node_bin.as_deref())?;
                let bucket = Bucket::start(&bin).await?;
                eprintln!("starting {} on the bucket ...", bin.display());
                // Dropped on an error below, the process is killed and Garage stopped.
                let (process, token) =
                    node_on_bucket(&bin, &bucket.garage, &data_dir, NODE_PREFIX).await?;
                Ok(Stand {
                    node: Node {
                        base: process.url.clone(),
                        token,
                        running: Running::Child(process),
                    },
                    bucket: Some(bucket),
                })
            }
        }
    }

    /// Stops the node, then Garage.
    pub async fn stop(self) -> anyhow::Result<()> {
        let stopped = self.node.stop().await;
        if let Some(bucket) = self.bucket {
            // Garage is killed and reaped when dropped, a blocking wait.
            blocking(move || {
                drop(bucket);
                Ok(())
            })
            .await?;
        }
        stopped
    }
}

/// Where the bytes of a direct PUT come from.
pub enum Source {
    /// A file of this many bytes, read as the upload goes (as the node's push reads it).
    File(PathBuf, u64),
    /// Bytes in memory.
    Memory(Bytes),
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::File(_, size) => *size,
            Source::Memory(bytes) => bytes.len() as u64,
        }
    }

    async fn open(self) -> anyhow::Result<Parts> {
        Ok(match self {
            Source::File(path, _) => {
                let file = tokio::fs::File::open(&path)
                    .await
                    .with_context(|| format!("opening {}", path.display()))?;
                Parts::File(file, path)
            }
            Source::Memory(bytes) => Parts::Memory(bytes),
        })
    }
}

/// A [`Source`] being read, in order.
enum Parts {
    File(tokio::fs::File, PathBuf),
    Memory(Bytes),
}

impl Parts {
    /// The next `len` bytes.
    async fn next(&mut self, len: u64) -> anyhow::Result<Bytes> {
        let len = usize::try_from(len).context("a part larger than memory")?;
        match self {
            Parts::File(file, path) => {
                let mut part = BytesMut::zeroed(len);
                file.read_exact(&mut part)
                    .await
                    .with_context(|| format!("reading {}", path.display()))?;
                Ok(part.freeze())
            }
            Parts::Memory(bytes) => {
                ensure!(len <= bytes.len(), "{len} bytes asked of {}", bytes.len());
                Ok(bytes.split_to(len))
            }
        }
    }
}

/// The Garage the node keeps its chunks in, and a client of its bucket for the direct requests.
pub struct Bucket {
    garage: Garage,
    store: AmazonS3,
    /// `garage --version`.
    version: String,
    /// The node binary run on it.
    node_bin: PathBuf,
}

impl Bucket {
    async fn start(node_bin: &Path) -> anyhow::Result<Bucket> {
        eprintln!("starting garage with a bucket and a key ...");
        let garage = blocking(|| Garage::start("arca-bench --storage garage"))
            .await?
            .context("garage is not on PATH (bash scripts/install-clients.sh installs it)")?;
        let store = client(&garage)?;
        Ok(Bucket {
            garage,
            store,
            version: garage_version().await,
            node_bin: node_bin.to_owned(),
        })
    }

    /// PUTs every object (named under the direct prefix) at once, and returns their bytes.
    pub async fn put(&self, objects: Vec<(String, Source)>) -> anyhow::Result<u64> {
        let mut uploads = JoinSet::new();
        let mut bytes = 0;
        for (name, source) in objects {
            bytes += source.len();
            let store = self.store.clone();
            uploads.spawn(async move { put_one(&store, &direct_key(&name), source).await });
        }
        while let Some(uploaded) = uploads.join_next().await {
            uploaded.context("upload task panicked")??;
        }
        Ok(bytes)
    }

    /// GETs the object `name` (under the direct prefix) into the new file `path`, fsynced, and
    /// returns its bytes.
    pub async fn get_into_file(&self, name: &str, path: &Path) -> anyhow::Result<u64> {
        let key = direct_key(name);
        let what = format!("GET {key}");
        let stream = self
            .store
            .get(&key)
            .await
            .with_context(|| what.clone())?
            .into_stream();
        common::stream_into_file(stream, path, &what).await
    }

    /// Makes `gets` GETs of `objects` (names under the direct prefix and their sizes, round-robin)
    /// from `clients` concurrent clients, reading and counting every body, and returns the bytes
    /// read.
    pub async fn get_many(
        &self,
        objects: Arc<Vec<(String, u64)>>,
        clients: usize,
        gets: u64,
    ) -> anyhow::Result<u64> {
        ensure!(!objects.is_empty(), "no objects to GET");
        let store = self.store.clone();
        common::fan_out(clients, gets, move |get| {
            let (store, objects) = (store.clone(), objects.clone());
            async move {
                let (name, size) = &objects[(get % objects.len() as u64) as usize];
                let key = direct_key(name);
                let mut body = store
                    .get(&key)
                    .await
                    .with_context(|| format!("GET {key}"))?
                    .into_stream();
                let mut read = 0u64;
                while let Some(bytes) = body.next().await {
                    read += bytes.with_context(|| format!("reading GET {key}"))?.len() as u64;
                }
                ensure!(read == *size, "GET {key} gave {read} of {size} bytes");
                Ok(read)
            }
        })
        .await
    }

    /// The size and lowercase hex sha256 of the object `name` under the direct prefix.
    pub async fn sha256(&self, name: &str) -> anyhow::Result<(u64, String)> {
        let key = direct_key(name);
        let mut body = self
            .store
            .get(&key)
            .await
            .with_context(|| format!("GET {key}"))?
            .into_stream();
        let (mut sha, mut read) = (Sha256::new(), 0u64);
        while let Some(bytes) = body.next().await {
            let bytes = bytes.with_context(|| format!("reading GET {key}"))?;
            sha.update(&bytes);
            read += bytes.len() as u64;
        }
        Ok((read, hex::encode(sha.finalize())))
    }

    /// Objects under `prefix` and their bytes.
    async fn held(&self, prefix: &str) -> anyhow::Result<(u64, u64)> {
        let objects = self
            .garage
            .objects(prefix)
            .await
            .with_context(|| format!("listing {prefix}/ in the bucket"))?;
        Ok((
            objects.len() as u64,
            objects.iter().map(|(_, size)| size).sum(),
        ))
    }
}

/// A release node keeping its chunks in `garage`'s bucket under `prefix` (its flags and
/// credentials), serving, with its admin token.
pub(crate) async fn node_on_bucket(
    bin: &Path,
    garage: &Garage,
    data_dir: &Path,
    prefix: &str,
) -> anyhow::Result<(NodeProcess, String)> {
    let env = garage
        .env()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    NodeProcess::start(bin, data_dir, "site-1", &garage.node_args(prefix), env).await
}

/// The key of the direct object `name`.
fn direct_key(name: &str) -> ObjectPath {
    ObjectPath::from(format!("{DIRECT_PREFIX}/{name}"))
}

/// A client of Garage's bucket with the key the node is given.
pub(crate) fn client(garage: &Garage) -> anyhow::Result<AmazonS3> {
    let args = garage.node_args(NODE_PREFIX);
    let region = args
        .iter()
        .skip_while(|arg| *arg != "--storage-region")
        .nth(1)
        .context("the node's Garage arguments name no region")?;
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_endpoint(garage.endpoint())
        .with_region(region)
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(true)
                .with_timeout(REQUEST_TIMEOUT),
        );
    for (name, value) in garage.env() {
        let key: AmazonS3ConfigKey = name
            .to_ascii_lowercase()
            .parse()
            .with_context(|| format!("{name} is no S3 setting"))?;
        builder = builder.with_config(key, value);
    }
    builder.build().context("building the bucket's client")
}

/// `garage --version`, e.g. `garage cargo:2.5.0 [features: ...]`.
async fn garage_version() -> String {
    match tokio::process::Command::new("garage")
        .arg("--version")
        .output()
        .await
    {
        Ok(output) => String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        Err(error) => format!("garage (version unknown: {error})"),
    }
}

/// PUTs `source` as the object `key`: one PUT up to [`SINGLE_PUT_MAX`], a multipart upload beyond
/// (aborted when it fails).
async fn put_one(store: &AmazonS3, key: &ObjectPath, source: Source) -> anyhow::Result<()> {
    let size = source.len();
    let mut parts = source.open().await?;
    if size <= SINGLE_PUT_MAX {
        let bytes = parts.next(size).await?;
        store
            .put(key, PutPayload::from(bytes))
            .await
            .with_context(|| format!("PUT {key} ({size} bytes)"))?;
        return Ok(());
    }
    let mut upload = store
        .put_multipart(key)
        .await
        .with_context(|| format!("starting the multipart upload of {key}"))?;
    let uploaded = async {
        // Tasks, so that the parts in flight go on while the next one is read.
        let mut in_flight = JoinSet::new();
        let mut left = size;
        while left > 0 {
            let len = left.min(PART);
            in_flight.spawn(upload.put_part(PutPayload::from(parts.next(len).await?)));
            left -= len;
            if in_flight.len() >= PARTS_IN_FLIGHT
                && let Some(done) = in_flight.join_next().await
            {
                done.context("part upload task panicked")?
                    .with_context(|| format!("uploading a part of {key}"))?;
            }
        }
        while let Some(done) = in_flight.join_next().await {
            done.context("part upload task panicked")?
                .with_context(|| format!("uploading a part of {key}"))?;
        }
        upload
            .complete()
            .await
            .with_context(|| format!("completing the multipart upload of {key}"))?;
        anyhow::Ok(())
    }
    .await;
    if uploaded.is_err() {
        let _ = upload.abort().await;
    }
    uploaded
}

/// The runs of one operation through Arca and directly against the bucket, in MiB/s.
#[derive(Debug, Default)]
pub struct Pairs {
    arca: Vec<f64>,
    direct: Vec<f64>,
}

impl Pairs {
    /// Times run `run` of the same work through Arca (`arca`) and directly (`direct`), one after
    /// the other: the direct side first in even runs, Arca first in odd ones, so that neither always
    /// finds the machine as the other left it. Each returns the bytes it moved.
    pub async fn time(
        &mut self,
        run: usize,
        arca: impl Future<Output = anyhow::Result<u64>>,
        direct: impl Future<Output = anyhow::Result<u64>>,
    ) -> anyhow::Result<()> {
        let (arca, direct) = (timed(arca), timed(direct));
        let (arca, direct) = if run.is_multiple_of(2) {
            let direct = direct.await?;
            (arca.await?, direct)
        } else {
            let arca = arca.await?;
            (arca, direct.await?)
        };
        self.arca.push(arca);
        self.direct.push(direct);
        Ok(())
    }
}

/// The MiB/s of `work`, from the bytes it says it moved and the time it took.
async fn timed(work: impl Future<Output = anyhow::Result<u64>>) -> anyhow::Result<f64> {
    let started = Instant::now();
    let bytes = work.await?;
    Ok(mib_per_second(bytes, started.elapsed().as_secs_f64()))
}

/// The `--storage garage` section of a benchmark's report, as it is measured: rows of Arca against
/// the direct requests, and the node's object-store counters phase by phase.
pub struct Limit<'a> {
    node: &'a Node,
    bucket: &'a Bucket,
    runs: usize,
    client: reqwest::Client,
    /// The counters at the end of the last phase (a fresh node's start at zero).
    last: BTreeMap<String, u64>,
    phases: Vec<StoragePhase>,
    rows: Vec<LimitRow>,
}

impl<'a> Limit<'a> {
    /// Starts the section of `runs` runs a row, for `node` keeping its chunks in `bucket`.
    pub fn new(node: &'a Node, bucket: &'a Bucket, runs: usize) -> Limit<'a> {
        Limit {
            node,
            bucket,
            runs,
            client: reqwest::Client::new(),
            last: BTreeMap::new(),
            phases: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Ends a phase of the benchmark: records, under `label`, how much the node's counters grew
    /// since the last.
    pub async fn phase(&mut self, label: &str) -> anyhow::Result<()> {
        let now = counters(&common::scrape(&self.client, &self.node.base).await?);
        let grown = now
            .iter()
            .map(|(name, value)| {
                let before = self.last.get(name).copied().unwrap_or(0);
                (name.clone(), value.saturating_sub(before))
            })
            .collect();
        self.phases.push(StoragePhase {
            label: label.to_owned(),
            counters: grown,
        });
        self.last = now;
        Ok(())
    }

    /// Adds the row `label` of `pairs`.
    pub fn row(&mut self, label: &str, pairs: Pairs) -> anyhow::Result<()> {
        let row = LimitRow::new(label, pairs.arca, pairs.direct)
            .with_context(|| format!("{label}: no runs"))?;
        self.rows.push(row);
        Ok(())
    }

    /// The section, with what the bucket holds after `pushed` bytes were pushed through Arca, of
    /// which `unique` distinct, and the benchmark's own `notes` before the shared ones.
    pub async fn finish(
        self,
        pushed: u64,
        unique: u64,
        mut notes: Vec<String>,
    ) -> anyhow::Result<GarageReport> {
        let (arca_objects, arca_bytes) = self.bucket.held(NODE_PREFIX).await?;
        let (direct_objects, direct_bytes) = self.bucket.held(DIRECT_PREFIX).await?;
        notes.extend(shared_notes());
        Ok(GarageReport {
            store: self.bucket.version.clone(),
            endpoint: self.bucket.garage.endpoint(),
            bucket: BUCKET.to_owned(),
            node_prefix: NODE_PREFIX.to_owned(),
            direct_prefix: DIRECT_PREFIX.to_owned(),
            node_bin: self.bucket.node_bin.display().to_string(),
            runs: self.runs,
            rows: self.rows,
            held: BucketHeld {
                pushed_bytes: pushed,
                unique_bytes: unique,
                arca_objects,
                arca_bytes,
                direct_objects,
                direct_bytes,
            },
            phases: self.phases,
            notes,
        })
    }
}

/// The samples of `/metrics` text whose names start with one of [`COUNTER_PREFIXES`], by name
/// with labels.
fn counters(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let name = parts.next()?;
            if !COUNTER_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix))
            {
                return None;
            }
            let value: f64 = parts.next()?.parse().ok()?;
            (value.is_finite() && value >= 0.0).then(|| (name.to_owned(), value as u64))
        })
        .collect()
}

/// How to read the `--storage garage` section, whatever the benchmark.
fn shared_notes() -> Vec<String> {
    [
        "garage: one node on 127.0.0.1 (replication_factor 1, sqlite metadata, data in the system's \
         temporary directory), started by the tests' helper (arca_tests::garage); its defaults are \
         in force: data and metadata are not fsynced (data_fsync, metadata_fsync false), blocks of \
         1 MiB, zstd level 1 tried on every block",
        "node: the release arca-node as a child process (with --storage local it runs in this \
         process), --storage s3://<bucket>/<node prefix>, --storage-endpoint, --storage-region, \
         credentials in its environment; it cuts content-defined chunks (0.5-8 MiB, 2 MiB on \
         average) and PUTs each as one object, a few in flight per upload",
        "direct: an object_store 0.12 S3 client in this process, with the node's key and signing \
         (payload sha256 signed): an object of up to 64 MiB is one PUT, a larger one a multipart \
         upload of 16 MiB parts, 4 in flight; a GET is one request, its body streamed",
        "each run times Arca and the direct side one after the other on fresh incompressible bytes, \
         the same on both sides, alternating which goes first",
        "bucket held: objects listed under each prefix after every push; counters: how much the \
         node's arca_storage_* and arca_chunk* samples of /metrics grew over each phase (request \
         time is summed over concurrent requests, not wall time)",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_of_the_storage_samples() {
        let text = "# HELP arca_storage_requests Requests\n\
                    # TYPE arca_storage_requests counter\n\
                    arca_storage_requests_total{request=\"put\"} 12\n\
                    arca_storage_request_microseconds_total 3456\n\
                    arca_chunks_written_total 7\n\
                    arca_http_requests_total 99\n";
        let counters = counters(text);
        assert_eq!(
            counters.get("arca_storage_requests_total{request=\"put\"}"),
            Some(&12)
        );
        assert_eq!(
            counters.get("arca_storage_request_microseconds_total"),
            Some(&3456)
        );
        assert_eq!(counters.get("arca_chunks_written_total"), Some(&7));
        assert_eq!(counters.len(), 3);
    }

    #[tokio::test]
    async fn parts_follow_the_source() -> anyhow::Result<()> {
        let mut parts = Source::Memory(Bytes::from_static(b"abcdef")).open().await?;
        assert_eq!(parts.next(4).await?, Bytes::from_static(b"abcd"));
        assert_eq!(parts.next(2).await?, Bytes::from_static(b"ef"));
        assert!(parts.next(1).await.is_err());

        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789")?;
        let mut parts = Source::File(path, 10).open().await?;
        assert_eq!(parts.next(3).await?, Bytes::from_static(b"012"));
        assert_eq!(parts.next(7).await?, Bytes::from_static(b"3456789"));
        Ok(())
    }
}
