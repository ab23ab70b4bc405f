//! The `oci` benchmark: push an image, pull its layers and GET its manifest through the OCI
//! Distribution API (Docker Registry V2) of a node running in this process, against the CNCF
//! distribution registry (`docker-registry`) running beside it on the same disk.
//!
//! With `--storage garage` the node keeps its chunks in a Garage bucket (see [`crate::storage`]), and
//! fresh images are also pushed and their layers pulled through it beside the same blobs PUT into
//! and GET from the bucket directly.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use reqwest::{Method, StatusCode, Url, header};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::common::{self, blocking, expect_status};
use crate::data;
use crate::report::{GarageReport, OciReport, Rates, SideBySide, mib_per_second};
use crate::storage::{Bucket, Limit, Node, Pairs, Source, Stand, StorageArgs};

/// The Arca registry the benchmark creates, and the repository it pushes to on both registries.
const REGISTRY: &str = "bench";
const REPOSITORY: &str = "bench/img";
/// The tag the manifest is pushed under and fetched by.
const TAG: &str = "v1";

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// Keys the pseudo-random layer contents.
const LAYER_CONTEXT: &str = "arca-bench 2025 oci layer";
/// How much of a layer each frame of an upload body carries.
const IO_BUFFER: usize = 2 << 20;

/// Pulls per run of the single client, and of the concurrent clients together, before `--scale`.
const PULLS_ONE_CLIENT: u64 = 8;
const PULLS_MANY_CLIENTS: u64 = 64;
/// Concurrent clients of the concurrent pull and of the manifest GETs.
const PULL_CLIENTS: usize = 32;
const MANIFEST_CLIENTS: usize = 64;

/// How long the peer may take to start answering.
const PEER_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Options of `arca-bench oci`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Size of each layer, in MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    layer_mib: u64,
    /// Layers in the image, pushed concurrently.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    layers: u64,
    /// How many times each measurement runs against each registry; every push run pushes fresh layers.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    runs: u64,
    /// Multiplies the number of pulls per run (8 by one client, 64 by 32 clients); the concurrent pull
    /// always makes at least one pull per client.
    #[arg(long, default_value_t = 1.0, value_parser = common::positive)]
    scale: f64,
    /// Seconds each run of the manifest GETs lasts.
    #[arg(long, default_value_t = 5.0, value_parser = common::positive)]
    seconds: f64,
    /// Directory under which a temporary directory for both registries' data is made (and removed at
    /// the end). Defaults to the current directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    storage: StorageArgs,
}

/// One registry under test: where its V2 API is and how to authenticate to it.
#[derive(Clone)]
struct Target {
    name: &'static str,
    /// `http://host:port/`.
    base: Url,
    /// HTTP Basic credentials, or none for a registry without auth.
    basic: Option<(String, String)>,
    client: reqwest::Client,
}

impl Target {
    fn new(name: &'static str, base: Url, basic: Option<(String, String)>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(2 * MANIFEST_CLIENTS)
            .build()
            .context("building the HTTP client")?;
        Ok(Target {
            name,
            base,
            basic,
            client,
        })
    }

    /// The URL of `path` (absolute, from `/v2/`).
    fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base
            .join(path)
            .with_context(|| format!("joining {path:?} to {}", self.base))
    }

    /// A request with the target's credentials.
    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match &self.basic {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }
}

/// A blob: its bytes and `sha256:<hex>` digest.
struct Blob {
    bytes: Bytes,
    digest: String,
}

impl Blob {
    fn descriptor(&self, media_type: &str) -> serde_json::Value {
        serde_json::json!({
            "mediaType": media_type,
            "digest": self.digest,
            "size": self.bytes.len(),
        })
    }
}

/// An image one push run pushes: the config, the layers and the manifest referencing them.
struct Image {
    config: Blob,
    layers: Vec<Blob>,
    manifest: Bytes,
}

impl Image {
    /// What the pulls and the manifest GETs need of it.
    fn pushed(&self) -> Pushed {
        Pushed {
            layers: self
                .layers
                .iter()
                .map(|l| (l.digest.clone(), l.bytes.len() as u64))
                .collect(),
            manifest: self.manifest.clone(),
        }
    }

    /// The bytes of its layers.
    fn layer_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.bytes.len() as u64).sum()
    }
}

/// What stays of the last image pushed, for the pulls and the manifest GETs.
struct Pushed {
    /// Digest and size of every layer.
    layers: Vec<(String, u64)>,
    manifest: Bytes,
}

/// The peer, `docker-registry`, as a child process.
struct Peer {
    child: tokio::process::Child,
    base: Url,
    log: PathBuf,
}

impl Peer {
    /// Writes a config storing under `dir` and serving on a free port of 127.0.0.1, starts the
    /// registry, and waits until `GET /v2/` answers.
    async fn start(dir: &Path) -> anyhow::Result<Peer> {
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage)
            .with_context(|| format!("creating {}", storage.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("finding a free port")?
            .port();
        // JSON strings are YAML strings: the path needs no further quoting.
        let root = serde_json::to_string(&storage.display().to_string())?;
        let config = format!(
            "version: 0.1\n\
             log:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n  \
             cache:\n    blobdescriptor: inmemory\n\
             http:\n  addr: 127.0.0.1:{port}\n"
        );
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let log = dir.join("registry.log");
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = tokio::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .context("starting docker-registry (apt-get install docker-registry)")?;
        let mut peer = Peer {
            child,
            base: Url::parse(&format!("http://127.0.0.1:{port}/"))?,
            log,
        };
        peer.wait_ready().await?;
        Ok(peer)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = self.base.join("/v2/")?;
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("docker-registry exited with {status}: {}", self.log_text());
            }
            if let Ok(response) = client.get(url.clone()).send().await
                && response.status() == StatusCode::OK
            {
                return Ok(());
            }
            if started.elapsed() > PEER_START_TIMEOUT {
                bail!(
                    "docker-registry did not answer GET {url} within {PEER_START_TIMEOUT:?}: {}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the registry and fails with its log if it had exited (crashed) before.
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "docker-registry exited early with {status}: {}",
                self.log_text()
            );
        }
        self.child.kill().await.context("killing docker-registry")
    }
}

/// `docker-registry --version`, e.g. `docker-registry github.com/docker/distribution 2.8.2+ds1`.
async fn peer_version() -> String {
    match tokio::process::Command::new("docker-registry")
        .arg("--version")
        .output()
        .await
    {
        Ok(output) => String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        Err(error) => format!("docker-registry (version unknown: {error})"),
    }
}

/// Runs the benchmark and prints its report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let runs = usize::try_from(args.runs).context("--runs is too large")?;
    let layers = usize::try_from(args.layers).context("--layers is too large")?;
    let layer_size = usize::try_from(args.layer_mib * 1024 * 1024).context("--layer-mib")?;
    let scaled = |pulls: u64| (pulls as f64 * args.scale).round().max(1.0) as u64;
    let pulls_one = scaled(PULLS_ONE_CLIENT);
    let pulls_many = scaled(PULLS_MANY_CLIENTS).max(PULL_CLIENTS as u64);
    let seconds = Duration::from_secs_f64(args.seconds);

    let (temp, root) = common::temp_root(&args.dir)?;
    let peer_dir = root.join("distribution");
    let peer = Peer::start(&peer_dir).await?;
    let stand = match Stand::start(&args.storage, root.join("arca")).await {
        Ok(stand) => stand,
        Err(error) => {
            let _ = peer.stop().await;
            return Err(error);
        }
    };

    let setup = Setup {
        runs,
        layers,
        layer_size,
        pulls_one,
        pulls_many,
        seconds,
        nonce: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()),
    };
    let measured = async {
        let arca_target = arca_target(&stand.node).await?;
        let peer_target = Target::new("distribution", peer.base.clone(), None)?;
        let rows = setup.measure(&arca_target, &peer_target).await?;
        let garage = match &stand.bucket {
            Some(bucket) => Some(
                setup
                    .against_bucket(&arca_target, &stand.node, bucket)
                    .await?,
            ),
            None => None,
        };
        anyhow::Ok((rows, garage))
    }
    .await;
    let peer_stopped = peer.stop().await;
    let arca_stopped = stand.stop().await;
    let removed = temp
        .close()
        .with_context(|| format!("removing {}", root.display()));
    let ([push, pull_one_client, pull_many_clients, manifest_get], garage) = measured?;
    peer_stopped?;
    arca_stopped?;
    removed?;

    let report = OciReport {
        benchmark: "oci",
        peer: peer_version().await,
        layer_mib: args.layer_mib,
        layers,
        runs,
        pulls_one_client: pulls_one,
        pull_clients: PULL_CLIENTS,
        pulls_many_clients: pulls_many,
        manifest_clients: MANIFEST_CLIENTS,
        manifest_seconds: args.seconds,
        dir: root.display().to_string(),
        push,
        pull_one_client,
        pull_many_clients,
        manifest_get,
        notes: notes(),
        garage,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// How to read the numbers; printed under the table and carried in the JSON.
fn notes() -> Vec<String> {
    [
        "both registries run on 127.0.0.1 on this machine and store on the same disk under --dir; the \
         node runs in this process, docker-registry (filesystem driver, in-memory blob descriptor \
         cache, access log off) as a child; every client is a reqwest client in this process",
        "each run measures both registries back to back, alternating which goes first",
        "push: a fresh image per run (new incompressible layers, the same for both registries): the \
         config and every layer uploaded concurrently (POST uploads/, then one streamed PUT with \
         Content-Length and ?digest=), then the manifest PUT under the tag; MiB/s = layer bytes / \
         wall time of all of it",
        "blob pull: GET of the last image's layers round-robin, bodies read and counted, not stored; \
         every layer's sha256 is verified once before the timed pulls; MiB/s = bytes / wall time",
        "manifest GET: GET of the manifest by tag with the OCI Accept type for a fixed time; every \
         answer must be 200 with the pushed manifest's length; req/s = answers / wall time",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// How to read the `--storage garage` rows; the shared notes follow them.
fn garage_notes() -> Vec<String> {
    [
        "push / PUT: each run a fresh image (new layers, unrelated to those of the rows above), pushed \
         through the node as above, and its config and layers PUT directly at once, one object \
         each (no manifest); MiB/s = layer bytes / wall time",
        "pull / GET, first read: after every push, each run's layers GET once, all at once, bodies \
         read and counted, not stored: nothing has read them yet, so through the node every chunk \
         comes from the bucket",
        "pull / GET, 1 client and 32 clients: the last image's layers round-robin, as many pulls as \
         above, after every layer's sha256 was verified once on both sides: through the node they \
         are read again, from its memory tier of chunks (see the counters), so these rows compare \
         its cache with the bucket",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Connects to the node's V2 API as `arca` with the admin token, after creating the DOCKER registry.
async fn arca_target(node: &Node) -> anyhow::Result<Target> {
    let base = Url::parse(&format!("{}/", node.base))?;
    let target = Target::new("arca", base, Some(("arca".to_owned(), node.token.clone())))?;
    common::create_registry(&target.client, &node.base, &node.token, REGISTRY, "DOCKER").await?;
    Ok(target)
}

/// The name in the bucket of the blob `digest` (`sha256:<hex>`) PUT directly.
fn direct_name(digest: &str) -> String {
    format!("oci/{}", digest.replace(':', "/"))
}

/// The names in the bucket and sizes of the layers of `pushed`, PUT directly.
fn direct_objects(pushed: &Pushed) -> Arc<Vec<(String, u64)>> {
    Arc::new(
        pushed
            .layers
            .iter()
            .map(|(digest, size)| (direct_name(digest), *size))
            .collect(),
    )
}

/// The shape of the benchmark.
struct Setup {
    runs: usize,
    layers: usize,
    layer_size: usize,
    pulls_one: u64,
    pulls_many: u64,
    seconds: Duration,
    /// Seeds every image's layers, so that no two runs or invocations share one.
    nonce: u64,
}

impl Setup {
    /// Measures push, pulls with one and with many clients, and manifest GETs, each `runs` times
    /// against each target, and returns them in that order.
    async fn measure(&self, arca: &Target, peer: &Target) -> anyhow::Result<[SideBySide; 4]> {
        let targets = [arca, peer];
        // rates[measurement][target][run]
        let mut rates = vec![vec![Vec::new(); 2]; 4];
        let order = |run: usize| {
            if run.is_multiple_of(2) {
                [1, 0]
            } else {
                [0, 1]
            }
        };

        let mut pushed = None;
        for run in 0..self.runs {
            eprintln!(
                "generating {} layers of {} MiB ...",
                self.layers,
                self.layer_size >> 20
            );
            let image = self.image(run).await?;
            for t in order(run) {
                let target = targets[t];
                eprintln!("push {}/{} to {} ...", run + 1, self.runs, target.name);
                let started = Instant::now();
                push_image(target, &image).await?;
                let elapsed = started.elapsed().as_secs_f64();
                rates[0][t].push(mib_per_second(image.layer_bytes(), elapsed));
            }
            pushed = Some(image.pushed());
        }
        let pushed = Arc::new(pushed.context("no runs")?);
        for target in targets {
            eprintln!("verifying the image on {} ...", target.name);
            verify(target, &pushed).await?;
        }

        for (m, clients, pulls) in [(1, 1, self.pulls_one), (2, PULL_CLIENTS, self.pulls_many)] {
            for run in 0..self.runs {
                for t in order(run) {
                    let target = targets[t];
                    eprintln!(
                        "pull {}/{} from {}: {pulls} pulls by {clients} clients ...",
                        run + 1,
                        self.runs,
                        target.name
                    );
                    let started = Instant::now();
                    let bytes = pull_blobs(target, &pushed, clients, pulls).await?;
                    rates[m][t].push(mib_per_second(bytes, started.elapsed().as_secs_f64()));
                }
            }
        }

        for run in 0..self.runs {
            for t in order(run) {
                let target = targets[t];
                eprintln!(
                    "manifest GET {}/{} on {}: {MANIFEST_CLIENTS} clients for {:?} ...",
                    run + 1,
                    self.runs,
                    target.name,
                    self.seconds
                );
                let started = Instant::now();
                let answers = get_manifests(target, &pushed, self.seconds).await?;
                rates[3][t].push(answers as f64 / started.elapsed().as_secs_f64());
            }
        }

        let labels = [
            ("push", "MiB/s"),
            ("blob pull 1 client", "MiB/s"),
            ("blob pull 32 clients", "MiB/s"),
            ("manifest GET 64 conc", "req/s"),
        ];
        let mut measured = Vec::with_capacity(4);
        for ((label, unit), mut by_target) in labels.into_iter().zip(rates) {
            let peer = Rates::new(by_target.pop().unwrap_or_default()).context("no runs")?;
            let arca = Rates::new(by_target.pop().unwrap_or_default()).context("no runs")?;
            measured.push(SideBySide::new(label, unit, arca, peer));
        }
        measured
            .try_into()
            .map_err(|_| anyhow::anyhow!("four measurements"))
    }

    /// With `--storage garage`: per run, a fresh image pushed through the node and its blobs PUT
    /// directly into its bucket; then the last one's layers pulled and GET back, by one client and
    /// by many; what the bucket holds after; the node's counters over each phase.
    async fn against_bucket(
        &self,
        arca: &Target,
        node: &Node,
        bucket: &Bucket,
    ) -> anyhow::Result<GarageReport> {
        let mut limit = Limit::new(node, bucket, self.runs);
        limit
            .phase("the rows above (pushes of fresh images, blob pulls, manifest GETs)")
            .await?;
        let mut pushes = Pairs::default();
        // What each run pushed, for the first reads.
        let mut images = Vec::with_capacity(self.runs);
        for run in 0..self.runs {
            eprintln!(
                "generating {} layers of {} MiB ...",
                self.layers,
                self.layer_size >> 20
            );
            // Numbered after the runs of the rows above, so that its layers are new to the node.
            let image = self.image(self.runs + run).await?;
            let bytes = image.layer_bytes();
            let objects = std::iter::once(&image.config)
                .chain(&image.layers)
                .map(|blob| {
                    (
                        direct_name(&blob.digest),
                        Source::Memory(blob.bytes.clone()),
                    )
                })
                .collect();
            eprintln!(
                "push {}/{}: through the node and directly ...",
                run + 1,
                self.runs
            );
            let through_arca = async {
                push_image(arca, &image).await?;
                Ok(bytes)
            };
            let direct = async {
                bucket.put(objects).await?;
                Ok(bytes)
            };
            pushes.time(run, through_arca, direct).await?;
            images.push(Arc::new(image.pushed()));
        }
        limit.row("Arca push / direct PUT", pushes)?;
        limit
            .phase("pushes of the fresh images through the node, and direct PUTs of their blobs")
            .await?;

        // Every layer once, all at once, as nothing has read them yet: through the node, every
        // chunk comes from the bucket.
        let mut first_reads = Pairs::default();
        for (run, pushed) in images.iter().enumerate() {
            eprintln!(
                "first read {}/{} of the image's layers: through the node and directly ...",
                run + 1,
                self.runs
            );
            let layers = pushed.layers.len();
            first_reads
                .time(
                    run,
                    pull_blobs(arca, pushed, layers, layers as u64),
                    bucket.get_many(direct_objects(pushed), layers, layers as u64),
                )
                .await?;
        }
        limit.row("Arca pull / direct GET, first read", first_reads)?;
        limit
            .phase("first reads of each image's layers through the node, and their direct GETs")
            .await?;

        let pushed = images.pop().context("no runs")?;
        eprintln!("verifying the last image through the node and directly ...");
        verify(arca, &pushed).await?;
        for (digest, size) in &pushed.layers {
            let (got_size, got) = bucket.sha256(&direct_name(digest)).await?;
            ensure!(
                got_size == *size && format!("sha256:{got}") == *digest,
                "the bucket's {} has {got_size} bytes with sha256 {got}, expected {size} bytes of \
                 {digest}",
                direct_name(digest)
            );
        }
        let objects = direct_objects(&pushed);
        for (clients, pulls) in [(1, self.pulls_one), (PULL_CLIENTS, self.pulls_many)] {
            let mut pairs = Pairs::default();
            for run in 0..self.runs {
                eprintln!(
                    "pull {}/{}: {pulls} pulls by {clients} clients through the node and directly \
                     ...",
                    run + 1,
                    self.runs
                );
                pairs
                    .time(
                        run,
                        pull_blobs(arca, &pushed, clients, pulls),
                        bucket.get_many(objects.clone(), clients, pulls),
                    )
                    .await?;
            }
            let who = if clients == 1 {
                "1 client".to_owned()
            } else {
                format!("{clients} clients")
            };
            limit.row(&format!("Arca pull / direct GET, {who}"), pairs)?;
            limit
                .phase(&format!(
                    "pulls of the last image's layers through the node and direct GETs, {who}"
                ))
                .await?;
        }

        // Every image, those of the rows above and these, was new.
        let pushed = (self.layers as u64)
            .saturating_mul(self.layer_size as u64)
            .saturating_mul(2 * self.runs as u64);
        limit.finish(pushed, pushed, garage_notes()).await
    }

    /// Generates the image of push run `run`: fresh layers (unrelated to every other run's and
    /// invocation's), a config naming them, and the manifest.
    async fn image(&self, run: usize) -> anyhow::Result<Image> {
        let (nonce, count, size) = (self.nonce, self.layers, self.layer_size);
        let layers = blocking(move || {
            Ok((0..count)
                .map(|index| {
                    let mut seed = nonce.to_le_bytes().to_vec();
                    seed.extend_from_slice(&(run as u64).to_le_bytes());
                    seed.extend_from_slice(&(index as u64).to_le_bytes());
                    let (bytes, sha256) = data::random_bytes(LAYER_CONTEXT, &seed, size);
                    Blob {
                        bytes: Bytes::from(bytes),
                        digest: format!("sha256:{sha256}"),
                    }
                })
                .collect::<Vec<_>>())
        })
        .await?;
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|l| l.digest.as_str()).collect::<Vec<_>>(),
            },
        }))?;
        let config = Blob {
            digest: format!("sha256:{}", hex::encode(Sha256::digest(&config))),
            bytes: Bytes::from(config),
        };
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": config.descriptor(CONFIG_TYPE),
            "layers": layers.iter().map(|l| l.descriptor(LAYER_TYPE)).collect::<Vec<_>>(),
        }))?;
        Ok(Image {
            config,
            layers,
            manifest: Bytes::from(manifest),
        })
    }
}

/// Pushes the config and the layers concurrently, then the manifest under [`TAG`].
async fn push_image(target: &Target, image: &Image) -> anyhow::Result<()> {
    let mut uploads = JoinSet::new();
    for blob in std::iter::once(&image.config).chain(&image.layers) {
        let (target, bytes, digest) = (target.clone(), blob.bytes.clone(), blob.digest.clone());
        uploads.spawn(async move { push_blob(&target, bytes, &digest).await });
    }
    while let Some(uploaded) = uploads.join_next().await {
        uploaded.context("upload task panicked")??;
    }
    let url = target.url(&format!("/v2/{REPOSITORY}/manifests/{TAG}"))?;
    let what = format!("{}: PUT {url} ({MANIFEST_TYPE})", target.name);
    let response = target
        .request(Method::PUT, url)
        .header(header::CONTENT_TYPE, MANIFEST_TYPE)
        .body(image.manifest.clone())
        .send()
        .await
        .with_context(|| what.clone())?;
    expect_status(response, StatusCode::CREATED, &what).await?;
    Ok(())
}

/// Uploads one blob: `POST /v2/<name>/blobs/uploads/`, then one `PUT <location>?digest=` streaming
/// the whole blob with `Content-Length`.
async fn push_blob(target: &Target, bytes: Bytes, digest: &str) -> anyhow::Result<()> {
    let start = target.url(&format!("/v2/{REPOSITORY}/blobs/uploads/"))?;
    let what = format!("{}: POST {start}", target.name);
    let response = target
        .request(Method::POST, start)
        .header(header::CONTENT_LENGTH, 0)
        .send()
        .await
        .with_context(|| what.clone())?;
    let response = expect_status(response, StatusCode::ACCEPTED, &what).await?;
    let location = response
        .headers()
        .get(header::LOCATION)
        .with_context(|| format!("{what}: 202 without Location"))?
        .to_str()
        .with_context(|| format!("{what}: Location is not text"))?;
    let location = target.url(location)?;
    let separator = if location.query().is_some() { '&' } else { '?' };
    let url = Url::parse(&format!("{location}{separator}digest={digest}"))?;

    let size = bytes.len();
    let frames = (0..size)
        .step_by(IO_BUFFER)
        .map(move |at| Ok::<_, std::io::Error>(bytes.slice(at..size.min(at + IO_BUFFER))));
    let what = format!("{}: PUT {url} ({size} bytes)", target.name);
    let response = target
        .request(Method::PUT, url)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(frames)))
        .send()
        .await
        .with_context(|| what.clone())?;
    let response = expect_status(response, StatusCode::CREATED, &what).await?;
    if let Some(stored) = response.headers().get("docker-content-digest") {
        ensure!(
            stored.as_bytes() == digest.as_bytes(),
            "{what}: Docker-Content-Digest is {stored:?}"
        );
    }
    Ok(())
}

/// GETs `/v2/<name>/<path>`, following redirects, and fails unless the answer is 200.
async fn get(
    target: &Target,
    path: &str,
    accept: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    let url = target.url(&format!("/v2/{REPOSITORY}/{path}"))?;
    let what = format!("{}: GET {url}", target.name);
    let mut request = target.request(Method::GET, url);
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    let response = request.send().await.with_context(|| what.clone())?;
    expect_status(response, StatusCode::OK, &what).await
}

/// Checks that the manifest by tag is the one pushed, and that every layer's bytes have its digest.
async fn verify(target: &Target, pushed: &Pushed) -> anyhow::Result<()> {
    let manifest = get(target, &format!("manifests/{TAG}"), Some(MANIFEST_TYPE))
        .await?
        .bytes()
        .await?;
    ensure!(
        manifest == pushed.manifest,
        "{}: GET manifests/{TAG} answered {:?}, not the manifest pushed",
        target.name,
        String::from_utf8_lossy(&manifest)
    );
    for (digest, size) in &pushed.layers {
        let mut response = get(target, &format!("blobs/{digest}"), None).await?;
        let mut sha = Sha256::new();
        let mut read = 0u64;
        while let Some(bytes) = response.chunk().await? {
            sha.update(&bytes);
            read += bytes.len() as u64;
        }
        let got = format!("sha256:{}", hex::encode(sha.finalize()));
        ensure!(
            read == *size && got == *digest,
            "{}: GET blobs/{digest} gave {read} bytes with digest {got}, expected {size} bytes",
            target.name
        );
    }
    Ok(())
}

/// Makes `pulls` GETs of the layers (round-robin) with `clients` concurrent clients, reading and
/// counting every body, and returns the bytes read.
async fn pull_blobs(
    target: &Target,
    pushed: &Arc<Pushed>,
    clients: usize,
    pulls: u64,
) -> anyhow::Result<u64> {
    ensure!(!pushed.layers.is_empty(), "an image without layers");
    let (target, pushed) = (target.clone(), pushed.clone());
    common::fan_out(clients, pulls, move |pull| {
        let (target, pushed) = (target.clone(), pushed.clone());
        async move {
            let (digest, size) = &pushed.layers[(pull % pushed.layers.len() as u64) as usize];
            let mut response = get(&target, &format!("blobs/{digest}"), None).await?;
            let mut read = 0u64;
            while let Some(bytes) = response.chunk().await? {
                read += bytes.len() as u64;
            }
            ensure!(
                read == *size,
                "{}: GET blobs/{digest} gave {read} of {size} bytes",
                target.name
            );
            Ok(read)
        }
    })
    .await
}

/// GETs the manifest by tag with [`MANIFEST_CLIENTS`] concurrent clients until `duration` has passed,
/// and returns how many 200s with the pushed manifest's length came back.
async fn get_manifests(
    target: &Target,
    pushed: &Arc<Pushed>,
    duration: Duration,
) -> anyhow::Result<u64> {
    let deadline = Instant::now() + duration;
    let mut tasks = JoinSet::new();
    for _ in 0..MANIFEST_CLIENTS {
        let (target, pushed) = (target.clone(), pushed.clone());
        tasks.spawn(async move {
            let mut answers = 0u64;
            while Instant::now() < deadline {
                let body = get(&target, &format!("manifests/{TAG}"), Some(MANIFEST_TYPE))
                    .await?
                    .bytes()
                    .await?;
                ensure!(
                    body.len() == pushed.manifest.len(),
                    "{}: GET manifests/{TAG} answered {} bytes, expected {}",
                    target.name,
                    body.len(),
                    pushed.manifest.len()
                );
                answers += 1;
            }
            anyhow::Ok(answers)
        });
    }
    let mut answers = 0;
    while let Some(counted) = tasks.join_next().await {
        answers += counted.context("manifest task panicked")??;
    }
    Ok(answers)
}
