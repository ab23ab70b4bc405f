//! The `oci` benchmark: push an image, pull its layers and GET its manifest through the OCI
//! Distribution API (Docker Registry V2) of a node running in this process, against the CNCF
//! distribution registry (`docker-registry`) running beside it on the same disk.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use reqwest::{Method, StatusCode, Url, header};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::common::{self, blocking, expect_status};
use crate::data;
use crate::report::{OciReport, Rates, SideBySide, mib_per_second};

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
    let node = match common::start_node(root.join("arca")).await {
        Ok(node) => node,
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
    };
    let measured = async {
        let arca_target = arca_target(&node).await?;
        let peer_target = Target::new("distribution", peer.base.clone(), None)?;
        setup.measure(&arca_target, &peer_target).await
    }
    .await;
    let peer_stopped = peer.stop().await;
    let arca_stopped = node.shutdown().await.context("stopping the node");
    let removed = temp
        .close()
        .with_context(|| format!("removing {}", root.display()));
    let [push, pull_one_client, pull_many_clients, manifest_get] = measured?;
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

/// Connects to the node's V2 API as `arca` with the admin token, after creating the DOCKER registry.
async fn arca_target(node: &arca_node::RunningNode) -> anyhow::Result<Target> {
    let token = common::admin_token(node).await?;
    let base = Url::parse(&format!("http://{}/", node.http_addr))?;
    let target = Target::new("arca", base, Some(("arca".to_owned(), token.clone())))?;
    let management = format!("http://{}", node.http_addr);
    common::create_registry(&target.client, &management, &token, REGISTRY, "DOCKER").await?;
    Ok(target)
}

/// The shape of the benchmark.
struct Setup {
    runs: usize,
    layers: usize,
    layer_size: usize,
    pulls_one: u64,
    pulls_many: u64,
    seconds: Duration,
}

impl Setup {
    /// Measures push, pulls with one and with many clients, and manifest GETs, each `runs` times
    /// against each target, and returns them in that order.
    async fn measure(&self, arca: &Target, peer: &Target) -> anyhow::Result<[SideBySide; 4]> {
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
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
            let image = self.image(nonce, run).await?;
            for t in order(run) {
                let target = targets[t];
                eprintln!("push {}/{} to {} ...", run + 1, self.runs, target.name);
                let started = Instant::now();
                push_image(target, &image).await?;
                let elapsed = started.elapsed().as_secs_f64();
                let bytes = image.layers.iter().map(|l| l.bytes.len() as u64).sum();
                rates[0][t].push(mib_per_second(bytes, elapsed));
            }
            pushed = Some(Pushed {
                layers: image
                    .layers
                    .iter()
                    .map(|l| (l.digest.clone(), l.bytes.len() as u64))
                    .collect(),
                manifest: image.manifest.clone(),
            });
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

    /// Generates the image of push run `run`: fresh layers (unrelated to every other run's and
    /// invocation's), a config naming them, and the manifest.
    async fn image(&self, nonce: u64, run: usize) -> anyhow::Result<Image> {
        let (count, size) = (self.layers, self.layer_size);
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
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let (target, pushed, next) = (target.clone(), pushed.clone(), next.clone());
        tasks.spawn(async move {
            let mut total = 0u64;
            loop {
                let pull = next.fetch_add(1, Ordering::Relaxed);
                if pull >= pulls {
                    return anyhow::Ok(total);
                }
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
                total += read;
            }
        });
    }
    let mut total = 0;
    while let Some(read) = tasks.join_next().await {
        total += read.context("pull task panicked")??;
    }
    Ok(total)
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
