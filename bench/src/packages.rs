//! The `packages` benchmark: many small packages read the way npm and pip read them — abbreviated
//! packuments and tarballs, simple-index pages and wheels — from the npm and PyPI registries of a node
//! running in this process, against verdaccio (npm) and pypiserver (PyPI) running beside it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use reqwest::{Method, StatusCode, Url, header};
use tokio::task::JoinSet;

use crate::archives;
use crate::common::{self, expect_status};
use crate::peer::{ChildPeer, free_port};
use crate::report::{Latency, PackagesReport, Rates, RequestRow, SideBySide};

/// The Arca registries the benchmark creates.
const NPM_REGISTRY: &str = "npm";
const PYPI_REGISTRY: &str = "pypi";

/// What npm 10 sends for a packument: the abbreviated form, if the registry has it.
pub const NPM_ACCEPT: &str =
    "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";
/// What pip 24 sends for a simple-index page: JSON (PEP 691) if the index has it, HTML otherwise.
const PIP_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, \
                          application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";

/// Packages published at a time while setting up.
const PUBLISH_CONCURRENCY: usize = 16;
/// Concurrent readers of the verification pass.
const VERIFY_CONCURRENCY: usize = 32;

/// Options of `arca-bench packages`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// npm packages, and as many PyPI projects, to publish.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    packages: u64,
    /// Versions of each package and project (one tarball or one wheel each).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    versions: u64,
    /// Concurrent clients of every measurement.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    clients: u64,
    /// Seconds each run of a measurement lasts.
    #[arg(long, default_value_t = 5.0, value_parser = common::positive)]
    seconds: f64,
    /// Runs of each measurement against each registry (alternating which goes first).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    runs: u64,
    /// Where scripts/install-bench-peers.sh installed verdaccio and pypiserver.
    #[arg(
        long,
        env = "ARCA_BENCH_PEERS",
        default_value = "/opt/arca-bench-peers"
    )]
    peers: PathBuf,
    /// Directory under which a temporary directory for every registry's data is made (and removed at
    /// the end). Defaults to the current directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// The shape of the dataset: `packages` names of `versions` versions each.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    pub packages: u64,
    pub versions: u64,
}

impl Dataset {
    /// The npm package name and PyPI project name (already normalised) of package `index`.
    pub fn name(index: u64) -> String {
        format!("bench-pkg-{index:05}")
    }

    /// Version `index`: `1.<index>.0`, valid semver and PEP 440 in normal form.
    pub fn version(index: u64) -> String {
        format!("1.{index}.0")
    }
}

/// How a target authenticates.
#[derive(Clone)]
pub enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

/// One registry under test, and the HTTP client every request to it goes through.
#[derive(Clone)]
pub struct Target {
    pub name: &'static str,
    /// Where its API starts, with a trailing slash.
    pub base: Url,
    auth: Auth,
    pub client: reqwest::Client,
}

impl Target {
    pub fn new(name: &'static str, base: Url, auth: Auth, clients: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(2 * clients)
            // Every answer must be the 200 itself: a redirect would be two requests counted as one.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        Ok(Target {
            name,
            base,
            auth,
            client,
        })
    }

    pub fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base
            .join(path)
            .with_context(|| format!("joining {path:?} to {}", self.base))
    }

    /// A request with the target's credentials.
    pub fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match &self.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
        }
    }

    /// GETs `url` and fails unless the answer is 200; returns the content type and the body.
    pub async fn get(&self, url: &Url, accept: Option<&str>) -> anyhow::Result<(String, Bytes)> {
        let mut request = self.request(Method::GET, url.clone());
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        let what = || format!("{}: GET {url}", self.name);
        let response = request.send().await.with_context(what)?;
        let response = expect_status(response, StatusCode::OK, &what()).await?;
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        Ok((content_type, response.bytes().await.with_context(what)?))
    }
}

/// Something the timed clients GET: its URL and the length its body must have.
pub struct Item {
    /// Where it is.
    pub url: Url,
    /// The length of its body.
    pub len: u64,
}

/// What a target serves, found by reading every package's metadata once: the metadata pages (with
/// their lengths, the same on every later GET) and every file.
pub struct Served {
    pub pages: Vec<Item>,
    pub files: Vec<Item>,
}

/// Runs the benchmark and prints its report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let clients = usize::try_from(args.clients).context("--clients is too large")?;
    let runs = usize::try_from(args.runs).context("--runs is too large")?;
    let dataset = Dataset {
        packages: args.packages,
        versions: args.versions,
    };
    let seconds = Duration::from_secs_f64(args.seconds);
    let peer_versions = vec![
        verdaccio_version(&args.peers),
        pypiserver_version(&args.peers).await,
    ];

    let (temp, root) = common::temp_root(&args.dir)?;
    let node = common::start_node(root.join("arca")).await?;
    let mut peers = Vec::new();
    let measured = measure_all(
        &node,
        &root,
        &args.peers,
        &mut peers,
        dataset,
        clients,
        runs,
        seconds,
    )
    .await;
    let mut stopped = Vec::new();
    for peer in peers {
        stopped.push(peer.stop().await);
    }
    let arca_stopped = node.shutdown().await.context("stopping the node");
    let removed = temp
        .close()
        .with_context(|| format!("removing {}", root.display()));
    let (rows, setup_seconds, notes) = measured?;
    stopped.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    arca_stopped?;
    removed?;

    let report = PackagesReport {
        benchmark: "packages",
        peers: peer_versions,
        packages: dataset.packages,
        versions: dataset.versions,
        clients,
        seconds: args.seconds,
        runs,
        setup_seconds,
        dir: root.display().to_string(),
        rows,
        notes,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Starts the peers (pushing them onto `peers`, which the caller stops), publishes the dataset
/// everywhere, reads it back, and measures. Returns the rows, the setup time and the notes.
#[allow(clippy::too_many_arguments)]
async fn measure_all(
    node: &arca_node::RunningNode,
    root: &Path,
    installed: &Path,
    peers: &mut Vec<ChildPeer>,
    dataset: Dataset,
    clients: usize,
    runs: usize,
    seconds: Duration,
) -> anyhow::Result<(Vec<RequestRow>, f64, Vec<String>)> {
    let token = common::admin_token(node).await?;
    let management = format!("http://{}", node.http_addr);
    let arca_npm = Target::new(
        "arca",
        Url::parse(&format!("{management}/npm/{NPM_REGISTRY}/"))?,
        Auth::Bearer(token.clone()),
        clients,
    )?;
    let arca_pypi = Target::new(
        "arca",
        Url::parse(&format!("{management}/pypi/{PYPI_REGISTRY}/"))?,
        Auth::Basic("__token__".to_owned(), token.clone()),
        clients,
    )?;
    common::create_registry(&arca_npm.client, &management, &token, NPM_REGISTRY, "NPM").await?;
    common::create_registry(
        &arca_pypi.client,
        &management,
        &token,
        PYPI_REGISTRY,
        "PYPI",
    )
    .await?;

    eprintln!("starting verdaccio ...");
    peers.push(start_verdaccio(installed, &root.join("verdaccio")).await?);
    let verdaccio = Target::new("verdaccio", peers[0].base.clone(), Auth::None, clients)?;

    let wheels_dir = root.join("pypiserver").join("packages");
    std::fs::create_dir_all(&wheels_dir)
        .with_context(|| format!("creating {}", wheels_dir.display()))?;
    let started = Instant::now();
    let wheel_sizes = publish(dataset, &arca_npm, &verdaccio, &arca_pypi, &wheels_dir).await?;
    let setup_seconds = started.elapsed().as_secs_f64();
    eprintln!("published everything in {setup_seconds:.1} s");

    eprintln!("starting pypiserver ...");
    peers.push(start_pypiserver(installed, &root.join("pypiserver"), &wheels_dir).await?);
    let pypiserver = Target::new("pypiserver", peers[1].base.clone(), Auth::None, clients)?;

    let wheel_sizes = Arc::new(wheel_sizes);
    let mut served = Vec::new();
    for target in [&arca_npm, &verdaccio] {
        eprintln!("reading every packument from {} ...", target.name);
        served.push(read_npm(target, dataset).await?);
    }
    for target in [&arca_pypi, &pypiserver] {
        eprintln!("reading every simple-index page from {} ...", target.name);
        served.push(read_pypi(target, dataset, &wheel_sizes).await?);
    }
    let [
        arca_npm_served,
        verdaccio_served,
        arca_pypi_served,
        pypiserver_served,
    ] = <[Served; 4]>::try_from(served).map_err(|_| anyhow::anyhow!("four targets"))?;

    let timing = Timing {
        clients,
        runs,
        seconds,
    };
    let rows = vec![
        timing
            .row(
                "npm packument GET (abbr.)",
                [&arca_npm, &verdaccio],
                [&arca_npm_served, &verdaccio_served],
                false,
                Some(NPM_ACCEPT),
            )
            .await?,
        timing
            .row(
                "npm tarball GET",
                [&arca_npm, &verdaccio],
                [&arca_npm_served, &verdaccio_served],
                true,
                None,
            )
            .await?,
        timing
            .row(
                "PyPI simple-index GET",
                [&arca_pypi, &pypiserver],
                [&arca_pypi_served, &pypiserver_served],
                false,
                Some(PIP_ACCEPT),
            )
            .await?,
        timing
            .row(
                "PyPI file GET",
                [&arca_pypi, &pypiserver],
                [&arca_pypi_served, &pypiserver_served],
                true,
                None,
            )
            .await?,
    ];
    Ok((rows, setup_seconds, notes()))
}

/// How to read the numbers; printed under the table and carried in the JSON.
fn notes() -> Vec<String> {
    [
        "every registry runs on 127.0.0.1 on this machine and stores on the same disk under --dir; the \
         node runs in this process, verdaccio (node, uplinks none, web UI off, log level error) and \
         pypiserver (--server auto, which picks waitress, --backend cached-dir, fallback off) as children; every client \
         is a reqwest client in this process, so clients and servers share the CPUs",
        "Arca is read with the admin token (npm: Bearer, PyPI: Basic __token__), verdaccio and \
         pypiserver anonymously (their packages are public)",
        "dataset: --packages npm packages and as many PyPI projects, --versions versions each; each \
         version one tiny tarball (package/package.json, package/index.js) or one tiny pure-Python \
         wheel; published as npm publish and twine upload do (PUT packument with base64 attachment; \
         multipart POST) to Arca and verdaccio, wheels written into pypiserver's directory; setup, \
         not timed",
        "before timing, every packument and simple-index page is read once from each registry (which \
         also warms their caches): it must list every version, and gives the tarball and file URLs",
        "each row: --clients concurrent clients GET random items (packuments / simple pages: a random \
         package; tarballs / files: a random version) for --seconds; any answer but 200 (redirects \
         included) fails the run, and every body must have the expected length; req/s = answers / \
         wall time; latency = send to last body byte, p50/p99 over every answer of every run",
        "packuments are fetched with npm's Accept (abbreviated install-v1 preferred) and simple-index \
         pages with pip's (PEP 691 JSON preferred, HTML accepted): each registry answers with the \
         form it prefers; the JSON report's *_content_type fields say which",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// `version` of verdaccio's package.json in the peers directory.
fn verdaccio_version(installed: &Path) -> String {
    let path = installed.join("node_modules/verdaccio/package.json");
    std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|json| json["version"].as_str().map(str::to_owned))
        .map_or_else(
            || format!("verdaccio (version unknown: {} unreadable)", path.display()),
            |version| format!("verdaccio {version}"),
        )
}

/// `pypi-server --version`.
async fn pypiserver_version(installed: &Path) -> String {
    match tokio::process::Command::new(installed.join("pypiserver/bin/pypi-server"))
        .arg("--version")
        .output()
        .await
    {
        Ok(output) => format!(
            "pypiserver {}",
            String::from_utf8_lossy(&output.stdout).trim()
        ),
        Err(error) => format!("pypiserver (version unknown: {error})"),
    }
}

/// Quotes `text` as a YAML string (JSON strings are YAML strings).
fn yaml_string(text: &str) -> anyhow::Result<String> {
    Ok(serde_json::to_string(text)?)
}

/// Starts verdaccio storing under `dir`: no uplinks (nothing is proxied), anyone may read and publish.
async fn start_verdaccio(installed: &Path, dir: &Path) -> anyhow::Result<ChildPeer> {
    let storage = dir.join("storage");
    std::fs::create_dir_all(&storage).with_context(|| format!("creating {}", storage.display()))?;
    let port = free_port()?;
    let config = format!(
        "storage: {storage}\n\
         auth:\n  htpasswd:\n    file: {htpasswd}\n    max_users: -1\n\
         uplinks: {{}}\n\
         packages:\n  '**':\n    access: $all\n    publish: $anonymous $authenticated\n    \
         unpublish: $anonymous $authenticated\n\
         server:\n  keepAliveTimeout: 60\n\
         web:\n  enable: false\n\
         max_body_size: 100mb\n\
         log: {{ type: stdout, format: pretty, level: error }}\n",
        storage = yaml_string(&storage.display().to_string())?,
        htpasswd = yaml_string(&dir.join("htpasswd").display().to_string())?,
    );
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, config)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let mut command = tokio::process::Command::new("node");
    command
        .arg(installed.join("node_modules/verdaccio/bin/verdaccio"))
        .arg("--config")
        .arg(&config_path)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(dir);
    ChildPeer::start(
        "verdaccio",
        command,
        Url::parse(&format!("http://127.0.0.1:{port}/"))?,
        "/-/ping",
        &dir.join("verdaccio.log"),
        "run scripts/install-bench-peers.sh, or point --peers / ARCA_BENCH_PEERS at its directory",
    )
    .await
}

/// Starts pypiserver serving `packages`, without authentication and without falling back to pypi.org.
async fn start_pypiserver(
    installed: &Path,
    dir: &Path,
    packages: &Path,
) -> anyhow::Result<ChildPeer> {
    let port = free_port()?;
    let mut command = tokio::process::Command::new(installed.join("pypiserver/bin/pypi-server"));
    command
        .arg("run")
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-a", ".", "-P", "."])
        .args([
            "--disable-fallback",
            "--server",
            "auto",
            "--backend",
            "cached-dir",
        ])
        .arg(packages)
        .current_dir(dir);
    ChildPeer::start(
        "pypiserver",
        command,
        Url::parse(&format!("http://127.0.0.1:{port}/"))?,
        "/health",
        &dir.join("pypiserver.log"),
        "run scripts/install-bench-peers.sh, or point --peers / ARCA_BENCH_PEERS at its directory",
    )
    .await
}

/// Publishes every version of every package to Arca's npm registry and verdaccio, uploads every
/// wheel to Arca's PyPI registry and writes it into `wheels_dir` (pypiserver's directory), with
/// [`PUBLISH_CONCURRENCY`] packages at a time (each package's versions in order). Returns every
/// wheel's size by file name.
async fn publish(
    dataset: Dataset,
    arca_npm: &Target,
    verdaccio: &Target,
    arca_pypi: &Target,
    wheels_dir: &Path,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let step = (dataset.packages / 20).max(1);
    let mut tasks = JoinSet::new();
    for _ in 0..PUBLISH_CONCURRENCY {
        let (next, done) = (next.clone(), done.clone());
        let (arca_npm, verdaccio, arca_pypi) =
            (arca_npm.clone(), verdaccio.clone(), arca_pypi.clone());
        let wheels_dir = wheels_dir.to_owned();
        tasks.spawn(async move {
            let mut sizes = BTreeMap::new();
            loop {
                let package = next.fetch_add(1, Ordering::Relaxed);
                if package >= dataset.packages {
                    return anyhow::Ok(sizes);
                }
                let name = Dataset::name(package);
                for version in (0..dataset.versions).map(Dataset::version) {
                    let npm = archives::npm_version(&name, &version)?;
                    let publish = Bytes::from(npm.publish);
                    for target in [&arca_npm, &verdaccio] {
                        publish_npm(target, &name, &version, publish.clone()).await?;
                    }
                    let wheel = archives::wheel(&name, &version)?;
                    upload_wheel(&arca_pypi, &name, &version, &wheel).await?;
                    let path = wheels_dir.join(&wheel.filename);
                    tokio::fs::write(&path, &wheel.bytes)
                        .await
                        .with_context(|| format!("writing {}", path.display()))?;
                    sizes.insert(wheel.filename, wheel.bytes.len() as u64);
                }
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if finished.is_multiple_of(step) || finished == dataset.packages {
                    eprintln!(
                        "published {finished}/{} packages ({} versions each) everywhere",
                        dataset.packages, dataset.versions
                    );
                }
            }
        });
    }
    let mut sizes = BTreeMap::new();
    while let Some(published) = tasks.join_next().await {
        sizes.append(&mut published.context("publish task panicked")??);
    }
    Ok(sizes)
}

/// `PUT /<name>` with the publish document of one version; 201 expected.
pub async fn publish_npm(
    target: &Target,
    name: &str,
    version: &str,
    document: Bytes,
) -> anyhow::Result<()> {
    let (response, what) = send_npm_publish(target, name, version, document).await?;
    expect_status(response, StatusCode::CREATED, &what).await?;
    Ok(())
}

/// Sends `PUT /<name>` with the publish document of one version, and returns the answer whatever
/// its status, with a description of the request for errors.
pub async fn send_npm_publish(
    target: &Target,
    name: &str,
    version: &str,
    document: Bytes,
) -> anyhow::Result<(reqwest::Response, String)> {
    let url = target.url(name)?;
    let what = format!("{}: publish {name}@{version} (PUT {url})", target.name);
    let response = target
        .request(Method::PUT, url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(document)
        .send()
        .await
        .with_context(|| what.clone())?;
    Ok((response, what))
}

/// Uploads a wheel as twine does (multipart `POST /` with `:action=file_upload`); 200 expected.
async fn upload_wheel(
    target: &Target,
    project: &str,
    version: &str,
    wheel: &archives::Wheel,
) -> anyhow::Result<()> {
    let content = reqwest::multipart::Part::bytes(wheel.bytes.clone())
        .file_name(wheel.filename.clone())
        .mime_str("application/octet-stream")?;
    let form = reqwest::multipart::Form::new()
        .text(":action", "file_upload")
        .text("protocol_version", "1")
        .text("metadata_version", "2.1")
        .text("name", project.to_owned())
        .text("version", version.to_owned())
        .text("filetype", "bdist_wheel")
        .text("pyversion", "py3")
        .text("summary", wheel.summary.clone())
        .text("license", "MIT")
        .text("requires_python", ">=3.8")
        .text("sha256_digest", wheel.sha256.clone())
        .part("content", content);
    let url = target.base.clone();
    let what = format!("{}: upload {} (POST {url})", target.name, wheel.filename);
    let response = target
        .request(Method::POST, url)
        .multipart(form)
        .send()
        .await
        .with_context(|| what.clone())?;
    expect_status(response, StatusCode::OK, &what).await?;
    Ok(())
}

/// Runs `read(package)` for every package with `concurrency` concurrent readers, and returns what
/// each gave, in package order.
pub async fn for_every_package<T, F, Fut>(
    dataset: Dataset,
    concurrency: usize,
    read: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (next, read) = (next.clone(), read.clone());
        tasks.spawn(async move {
            let mut out = Vec::new();
            loop {
                let package = next.fetch_add(1, Ordering::Relaxed);
                if package >= dataset.packages {
                    return anyhow::Ok(out);
                }
                out.push((package, read(package).await?));
            }
        });
    }
    let mut all = Vec::new();
    while let Some(read) = tasks.join_next().await {
        all.append(&mut read.context("reading task panicked")??);
    }
    all.sort_by_key(|(package, _)| *package);
    Ok(all.into_iter().map(|(_, value)| value).collect())
}

/// Reads every abbreviated packument once: each must list exactly the published versions, with a
/// tarball URL each.
async fn read_npm(target: &Target, dataset: Dataset) -> anyhow::Result<Served> {
    let target_for_read = target.clone();
    let pages = for_every_package(dataset, VERIFY_CONCURRENCY, move |package| {
        let target = target_for_read.clone();
        async move {
            let name = Dataset::name(package);
            let url = target.url(&name)?;
            let (content_type, body) = target.get(&url, Some(NPM_ACCEPT)).await?;
            let doc: serde_json::Value = serde_json::from_slice(&body)
                .with_context(|| format!("{}: GET {url}: not JSON", target.name))?;
            let versions = doc["versions"]
                .as_object()
                .with_context(|| format!("{}: GET {url}: no versions", target.name))?;
            let expected: BTreeSet<String> = (0..dataset.versions).map(Dataset::version).collect();
            let listed: BTreeSet<String> = versions.keys().cloned().collect();
            ensure!(
                listed == expected,
                "{}: GET {url} lists versions {listed:?}, expected {expected:?}",
                target.name
            );
            let mut tarballs = Vec::new();
            for (version, manifest) in versions {
                let tarball = manifest["dist"]["tarball"].as_str().with_context(|| {
                    format!("{}: GET {url}: {version} has no tarball", target.name)
                })?;
                let tarball_url = url.join(tarball)?;
                let size = archives::npm_version(&name, version)?.tarball.len() as u64;
                tarballs.push(Item {
                    url: tarball_url,
                    len: size,
                });
            }
            let page = Item {
                url,
                len: body.len() as u64,
            };
            anyhow::Ok((content_type, page, tarballs))
        }
    })
    .await?;
    served(pages)
}

/// Reads every simple-index page once: each must list exactly the published wheels.
async fn read_pypi(
    target: &Target,
    dataset: Dataset,
    sizes: &Arc<BTreeMap<String, u64>>,
) -> anyhow::Result<Served> {
    let (target_for_read, sizes) = (target.clone(), sizes.clone());
    let pages = for_every_package(dataset, VERIFY_CONCURRENCY, move |package| {
        let (target, sizes) = (target_for_read.clone(), sizes.clone());
        async move {
            let project = Dataset::name(package);
            let url = target.url(&format!("simple/{project}/"))?;
            let (content_type, body) = target.get(&url, Some(PIP_ACCEPT)).await?;
            let links = simple_links(&content_type, &body)
                .with_context(|| format!("{}: GET {url}", target.name))?;
            let mut files = Vec::new();
            let mut listed = BTreeSet::new();
            for link in links {
                let mut file_url = url.join(&link)?;
                file_url.set_fragment(None);
                let filename = file_url
                    .path_segments()
                    .and_then(|mut segments| segments.next_back())
                    .unwrap_or_default()
                    .to_owned();
                let len = *sizes.get(&filename).with_context(|| {
                    format!(
                        "{}: GET {url} lists {filename:?}, never uploaded",
                        target.name
                    )
                })?;
                listed.insert(filename);
                files.push(Item { url: file_url, len });
            }
            let dist = project.replace('-', "_");
            let expected: BTreeSet<String> = (0..dataset.versions)
                .map(|v| format!("{dist}-{}-py3-none-any.whl", Dataset::version(v)))
                .collect();
            ensure!(
                listed == expected,
                "{}: GET {url} lists {listed:?}, expected {expected:?}",
                target.name
            );
            let page = Item {
                url,
                len: body.len() as u64,
            };
            anyhow::Ok((content_type, page, files))
        }
    })
    .await?;
    served(pages)
}

/// Gathers the pages and files of every package; every page must have had the same content type.
fn served(pages: Vec<(String, Item, Vec<Item>)>) -> anyhow::Result<Served> {
    let mut content_types = BTreeSet::new();
    let mut served = Served {
        pages: Vec::with_capacity(pages.len()),
        files: Vec::new(),
    };
    for (content_type, page, mut files) in pages {
        content_types.insert(content_type);
        served.pages.push(page);
        served.files.append(&mut files);
    }
    ensure!(
        content_types.len() == 1,
        "pages came as several content types: {content_types:?}"
    );
    Ok(served)
}

/// The file links of a simple-index page: `files[].url` of PEP 691 JSON, or the `href`s of PEP 503
/// HTML.
fn simple_links(content_type: &str, body: &[u8]) -> anyhow::Result<Vec<String>> {
    if content_type.contains("json") {
        let doc: serde_json::Value = serde_json::from_slice(body).context("not JSON")?;
        let files = doc["files"].as_array().context("no files")?;
        return files
            .iter()
            .map(|file| {
                file["url"]
                    .as_str()
                    .map(str::to_owned)
                    .context("a file without url")
            })
            .collect();
    }
    let html = std::str::from_utf8(body).context("not UTF-8")?;
    let mut links = Vec::new();
    for piece in html.split("href=").skip(1) {
        let Some(quote) = piece.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            bail!("an unquoted href");
        };
        let rest = &piece[1..];
        let end = rest.find(quote).context("an unterminated href")?;
        links.push(rest[..end].replace("&amp;", "&"));
    }
    Ok(links)
}

/// How every row is timed.
pub struct Timing {
    pub clients: usize,
    pub runs: usize,
    pub seconds: Duration,
}

/// One target's GETs over every run of a measurement.
pub struct Gets {
    /// Requests per second of each run, in the order they ran.
    pub rates: Vec<f64>,
    /// Every answer's latency in microseconds, over every run.
    pub micros: Vec<u32>,
    /// The `Content-Type`s answered.
    pub content_types: BTreeSet<String>,
}

impl Timing {
    /// Times GETs of random pages (or, with `files`, random files) of `served[0]` on `targets[0]`
    /// (Arca) and of `served[1]` on `targets[1]` (the peer), `runs` times each, alternating which
    /// goes first.
    pub async fn row(
        &self,
        label: &str,
        targets: [&Target; 2],
        served: [&Served; 2],
        files: bool,
        accept: Option<&'static str>,
    ) -> anyhow::Result<RequestRow> {
        let items: [Arc<Vec<Item>>; 2] = [0, 1].map(|t| {
            let from = if files {
                &served[t].files
            } else {
                &served[t].pages
            };
            Arc::new(
                from.iter()
                    .map(|item| Item {
                        url: item.url.clone(),
                        len: item.len,
                    })
                    .collect(),
            )
        });
        let mut measured = self.each(label, &targets, &items, accept).await?;
        let (Some(peer), Some(arca)) = (measured.pop(), measured.pop()) else {
            bail!("{label}: measured fewer than two targets");
        };
        let joined = |types: BTreeSet<String>| types.into_iter().collect::<Vec<_>>().join(" + ");
        Ok(RequestRow {
            rate: SideBySide::new(
                label,
                "req/s",
                Rates::new(arca.rates).context("no runs")?,
                Rates::new(peer.rates).context("no runs")?,
            ),
            peer_name: targets[1].name,
            arca_content_type: joined(arca.content_types),
            peer_content_type: joined(peer.content_types),
            arca_latency: Latency::from_micros(arca.micros).context("no answers from arca")?,
            peer_latency: Latency::from_micros(peer.micros)
                .with_context(|| format!("no answers from {}", targets[1].name))?,
        })
    }

    /// Times GETs of random `items[t]` on `targets[t]`, `runs` times each, alternating the order of
    /// the targets (the last first in even runs); one result per target, in `targets`' order.
    pub async fn each(
        &self,
        label: &str,
        targets: &[&Target],
        items: &[Arc<Vec<Item>>],
        accept: Option<&'static str>,
    ) -> anyhow::Result<Vec<Gets>> {
        ensure!(
            targets.len() == items.len(),
            "{label}: {} targets but {} item lists",
            targets.len(),
            items.len()
        );
        let mut all: Vec<Gets> = targets
            .iter()
            .map(|_| Gets {
                rates: Vec::new(),
                micros: Vec::new(),
                content_types: BTreeSet::new(),
            })
            .collect();
        for run in 0..self.runs {
            let order: Vec<usize> = if run.is_multiple_of(2) {
                (0..targets.len()).rev().collect()
            } else {
                (0..targets.len()).collect()
            };
            for t in order {
                eprintln!(
                    "{label} {}/{} on {}: {} clients for {:?} over {} items ...",
                    run + 1,
                    self.runs,
                    targets[t].name,
                    self.clients,
                    self.seconds,
                    items[t].len()
                );
                let seed = (run as u64) << 32 | t as u64;
                let started = Instant::now();
                let (mut micros, mut types) = hammer(
                    targets[t],
                    &items[t],
                    accept,
                    self.clients,
                    self.seconds,
                    seed,
                )
                .await?;
                let gets = &mut all[t];
                gets.rates
                    .push(micros.len() as f64 / started.elapsed().as_secs_f64());
                gets.micros.append(&mut micros);
                gets.content_types.append(&mut types);
            }
        }
        Ok(all)
    }
}

/// A small, fast pseudo-random generator (splitmix64): picking items must not cost more than the
/// requests.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0; the bias is negligible for the sizes used here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// GETs random `items` with `clients` concurrent clients until `duration` has passed; every answer
/// must be 200 with the item's length. Returns each answer's latency in microseconds, and the
/// `Content-Type`s of the clients' first answers.
pub async fn hammer(
    target: &Target,
    items: &Arc<Vec<Item>>,
    accept: Option<&'static str>,
    clients: usize,
    duration: Duration,
    seed: u64,
) -> anyhow::Result<(Vec<u32>, BTreeSet<String>)> {
    let deadline = Instant::now() + duration;
    let mut tasks = JoinSet::new();
    for client in 0..clients {
        let (target, items) = (target.clone(), items.clone());
        let mut rng = SplitMix(seed ^ (client as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        tasks.spawn(async move {
            let mut micros = Vec::new();
            let mut content_type = None;
            while Instant::now() < deadline {
                let item = &items[rng.below(items.len())];
                let started = Instant::now();
                let mut request = target.request(Method::GET, item.url.clone());
                if let Some(accept) = accept {
                    request = request.header(header::ACCEPT, accept);
                }
                let what = || format!("{}: GET {}", target.name, item.url);
                let response = request.send().await.with_context(what)?;
                // The description of the request is only formatted when it is needed.
                let response = if response.status() == StatusCode::OK {
                    response
                } else {
                    expect_status(response, StatusCode::OK, &what()).await?
                };
                let response_type = content_type
                    .is_none()
                    .then(|| response.headers().get(header::CONTENT_TYPE).cloned())
                    .flatten();
                let body = response.bytes().await.with_context(what)?;
                let elapsed = started.elapsed();
                ensure!(
                    body.len() as u64 == item.len,
                    "{}: answered {} bytes, expected {}",
                    what(),
                    body.len(),
                    item.len
                );
                micros.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                if content_type.is_none() {
                    content_type = Some(
                        response_type
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                            .unwrap_or_default(),
                    );
                }
            }
            anyhow::Ok((micros, content_type))
        });
    }
    let (mut all, mut content_types) = (Vec::new(), BTreeSet::new());
    while let Some(answered) = tasks.join_next().await {
        let (mut micros, content_type) = answered.context("client task panicked")??;
        all.append(&mut micros);
        content_types.extend(content_type);
    }
    Ok((all, content_types))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_of_html_and_json_simple_pages() -> anyhow::Result<()> {
        let html = br#"<html><body><a href="/packages/a-1.0-py3-none-any.whl#sha256=ab">a</a>
            <a href='../../files/a/2.0/a-2.0.tar.gz?x=1&amp;y=2'>b</a></body></html>"#;
        assert_eq!(
            simple_links("text/html", html)?,
            [
                "/packages/a-1.0-py3-none-any.whl#sha256=ab",
                "../../files/a/2.0/a-2.0.tar.gz?x=1&y=2"
            ]
        );
        let json =
            br#"{"meta":{"api-version":"1.1"},"name":"a","files":[{"filename":"a","url":"/f/a"}]}"#;
        assert_eq!(
            simple_links("application/vnd.pypi.simple.v1+json", json)?,
            ["/f/a"]
        );
        Ok(())
    }

    #[test]
    fn random_picks_cover_the_range() {
        let mut rng = SplitMix(7);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[rng.below(10)] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
