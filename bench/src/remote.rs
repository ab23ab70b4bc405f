//! The `remote` benchmark: a remote (caching proxy) registry on one node over local registries on
//! another, both running in this process. Generic files are GET directly from the upstream, through
//! the remote on a miss and through it on a hit; npm packages are installed through the remote over and
//! over, counting what the upstream had to serve against what the clients received.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};

use crate::archives;
use crate::common::{self, blocking, expect_status, metric, scrape};
use crate::data;
use crate::packages::{self, Auth, Dataset, NPM_ACCEPT, Target};
use crate::report::{
    Compared, Latency, LatencyCompared, Measurement, RemoteGeneric, RemoteNpm, RemoteNpmMisses,
    RemoteReport,
};

/// The upstream node's local registries.
const UPSTREAM_GENERIC: &str = "generic";
const UPSTREAM_NPM: &str = "npm";
/// The proxy node's remote registries over them.
const MIRROR_GENERIC: &str = "generic-mirror";
const MIRROR_NPM: &str = "npm-mirror";
/// The remote registries' metadata time to live (the default).
const METADATA_TTL_SECONDS: u64 = 300;

const MIB: u64 = 1024 * 1024;
/// Sizes of the small and the large generic files.
const SMALL_MIB: u64 = 1;
const LARGE_MIB: u64 = 64;

/// Labels of the generic rows: the baseline is the upstream serving a file it has just served, as the
/// warm remote does.
const DIRECT: &str = "GET upstream (direct, repeat)";
const DIRECT_FIRST: &str = "GET upstream (direct, first read)";

/// Requests in flight at once while publishing and within an install round.
const CONCURRENCY: usize = 16;

/// GETs of npm paths the upstream answered 200 (packuments and tarballs share one route).
const NPM_GETS: &str =
    r#"arca_http_requests_total{method="GET",route="/npm/{registry}/{*path}",status="200"}"#;
/// Body bytes of files the upstream served (tarballs; not rendered packuments).
const DOWNLOAD_BYTES: &str = "arca_download_bytes_total";

/// Options of `arca-bench remote`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Fresh 1 MiB generic files, each GET directly, cold and warm (latency).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    files: u64,
    /// Fresh 64 MiB generic files, each GET directly, cold and warm (throughput).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    large: u64,
    /// npm packages published to the upstream (one version each).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    packages: u64,
    /// Installs through the remote: rounds of every packument, then every tarball.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    rounds: u64,
    /// Runs of the npm cold-miss rows (each through a fresh remote registry).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
    miss_runs: u64,
    /// Directory under which a temporary directory for both nodes' data is made (and removed at the
    /// end). Defaults to the current directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// One node: its HTTP base (`http://host:port`) and admin token.
struct Node {
    base: String,
    token: String,
}

impl Node {
    async fn of(node: &arca_node::RunningNode) -> anyhow::Result<Node> {
        Ok(Node {
            base: format!("http://{}", node.http_addr),
            token: common::admin_token(node).await?,
        })
    }
}

/// Runs the benchmark and prints its report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let rounds = usize::try_from(args.rounds).context("--rounds is too large")?;
    let (temp, root) = common::temp_root(&args.dir)?;
    let upstream = common::start_node(root.join("upstream")).await?;
    let (measured, proxy_stopped) = match common::start_node(root.join("proxy")).await {
        Ok(proxy) => {
            let measured = measure(&upstream, &proxy, &args, rounds).await;
            (
                measured,
                proxy.shutdown().await.context("stopping the proxy"),
            )
        }
        Err(error) => (Err(error), Ok(())),
    };
    let upstream_stopped = upstream.shutdown().await.context("stopping the upstream");
    let removed = temp
        .close()
        .with_context(|| format!("removing {}", root.display()));
    let (upstream, proxy, generic, npm, npm_misses) = measured?;
    proxy_stopped?;
    upstream_stopped?;
    removed?;

    let report = RemoteReport {
        benchmark: "remote",
        upstream,
        proxy,
        metadata_ttl_seconds: METADATA_TTL_SECONDS,
        dir: root.display().to_string(),
        generic,
        npm,
        npm_misses,
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
        "two nodes in this process on 127.0.0.1, storing on the same disk under --dir: the upstream \
         (local GENERIC and NPM registries) and the proxy (remote registries over them, with the \
         upstream's admin token as the Basic password); the clients are reqwest clients in the same \
         process, so clients and both servers share the CPUs",
        "generic: every file is fresh incompressible data PUT to the upstream first (setup); then, \
         file by file, two GETs directly from the upstream (the first reads its chunks from disk, the \
         second from the memory tier of recently read chunks: the baseline, in the same state as the \
         warm remote), one through the remote (cold: a miss, so fetch from the upstream into the \
         chunk store, record, serve) and one more (warm: a hit, served from the proxy's chunk store); \
         each timed from send to the last body byte, body \
         sha256 verified after the clock stops; the proxy's remote hit and miss counters must show \
         exactly one miss and one hit per file",
        "1 MiB rows: p99 is the nearest rank, so with 20 files it is the slowest GET; ratios above 1 \
         are slower than direct. 64 MiB rows: each file is one run; ratios below 1 are slower than \
         direct",
        "npm: --packages packages of one tiny version each, published to the upstream as npm publish \
         does (setup); an install is one round of GETs through the remote: every packument (with \
         npm's Accept, abbreviated install-v1 preferred), then every latest tarball (the URL the \
         packument names), as npm resolves the tree before fetching tarballs; every tarball is \
         compared byte for byte with what was published",
        "client bytes: the response bodies the clients received. upstream bytes: tarballs from the \
         upstream's arca_download_bytes_total, packuments as the GETs of npm paths the upstream \
         answered 200 during the packument phases (its arca_http_requests_total) times the mean size \
         of the full packuments it serves (the proxy asks for application/json), measured before the \
         first install; response headers are not counted on either side",
        "npm cold misses: a static server on 127.0.0.1 holds a packument of 3,000 versions (about \
         2 KB of manifest each, like a large public package) and 64 of 5 versions; each run GETs the \
         large one, then all small ones 16 at once, directly, through a remote registry made for the \
         run (misses: fetch, store, record, render) and through it again (hits), with npm's Accept \
         and no gzip; bodies are checked to be JSON",
        "hit ratio: the proxy's arca_remote_hits_total / (hits + arca_remote_misses_total) for the \
         npm remote over all installs; packuments stay fresh for the metadata TTL, so each is \
         fetched once unless the installs outlast it",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Sets up both nodes' registries and measures. Returns the nodes' addresses and both halves.
async fn measure(
    upstream: &arca_node::RunningNode,
    proxy: &arca_node::RunningNode,
    args: &Args,
    rounds: usize,
) -> anyhow::Result<(String, String, RemoteGeneric, RemoteNpm, RemoteNpmMisses)> {
    let (up, px) = (Node::of(upstream).await?, Node::of(proxy).await?);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")?;
    common::create_registry(&client, &up.base, &up.token, UPSTREAM_GENERIC, "GENERIC").await?;
    common::create_registry(&client, &up.base, &up.token, UPSTREAM_NPM, "NPM").await?;
    let generic_upstream = format!("{}/generic/{UPSTREAM_GENERIC}", up.base);
    let npm_upstream = format!("{}/npm/{UPSTREAM_NPM}", up.base);
    create_remote(
        &client,
        &px,
        MIRROR_GENERIC,
        "GENERIC",
        &generic_upstream,
        Some(&up),
    )
    .await?;
    create_remote(&client, &px, MIRROR_NPM, "NPM", &npm_upstream, Some(&up)).await?;

    let generic = measure_generic(&client, &up, &px, args.files, args.large).await?;
    let npm = measure_npm(&up, &px, args.packages, rounds).await?;
    let npm_misses = measure_npm_misses(&client, &px, args.miss_runs).await?;
    Ok((up.base, px.base, generic, npm, npm_misses))
}

/// Creates the remote registry `name` on `proxy` over `url`, authenticating there with `upstream`'s
/// admin token as the Basic password when it is a node.
async fn create_remote(
    client: &reqwest::Client,
    proxy: &Node,
    name: &str,
    package_type: &str,
    url: &str,
    upstream: Option<&Node>,
) -> anyhow::Result<()> {
    let api = format!("{}/api/v1/registries", proxy.base);
    let what =
        format!("creating the remote {package_type} registry {name:?} over {url} (POST {api})");
    let mut settings = serde_json::json!({
        "url": url,
        "metadata_ttl_seconds": METADATA_TTL_SECONDS,
    });
    if let Some(upstream) = upstream {
        settings["username"] = "x".into();
        settings["password"] = upstream.token.clone().into();
    }
    let response = client
        .post(&api)
        .bearer_auth(&proxy.token)
        .json(&serde_json::json!({
            "name": name,
            "package_type": package_type,
            "kind": "remote",
            "upstream": settings,
        }))
        .send()
        .await
        .with_context(|| what.clone())?;
    expect_status(response, StatusCode::CREATED, &what).await?;
    Ok(())
}

/// The proxy's remote hit and miss counters of `registry` (0 before its first request).
async fn remote_counters(
    client: &reqwest::Client,
    proxy: &Node,
    registry: &str,
) -> anyhow::Result<(u64, u64)> {
    let text = scrape(client, &proxy.base).await?;
    let counter = |name: &str| metric(&text, &format!("{name}{{registry=\"{registry}\"}}"));
    Ok((
        counter("arca_remote_hits_total").unwrap_or(0),
        counter("arca_remote_misses_total").unwrap_or(0),
    ))
}

/// Per-file times of the three ways of GETting one set of files.
#[derive(Default)]
struct Times {
    direct_first: Vec<Duration>,
    direct: Vec<Duration>,
    cold: Vec<Duration>,
    warm: Vec<Duration>,
}

/// Pushes `count` fresh files of `mib` MiB to the upstream, then GETs each directly twice, then
/// through the remote cold and warm.
async fn time_files(
    client: &reqwest::Client,
    up: &Node,
    px: &Node,
    kind: &str,
    count: u64,
    mib: u64,
) -> anyhow::Result<Times> {
    let size = mib * MIB;
    let mut files = Vec::new();
    for index in 0..count {
        let path = format!("{kind}-{index}/1.0/{kind}.bin");
        let seed = [size.to_le_bytes(), index.to_le_bytes()].concat();
        let (bytes, sha256) = blocking(move || {
            let size = usize::try_from(size).context("file too large")?;
            Ok(data::random_bytes(
                "arca-bench 2025 remote file",
                &seed,
                size,
            ))
        })
        .await?;
        let url = format!("{}/generic/{UPSTREAM_GENERIC}/{path}", up.base);
        let what = format!("PUT {url}");
        let response = client
            .put(&url)
            .bearer_auth(&up.token)
            .body(bytes)
            .send()
            .await
            .with_context(|| what.clone())?;
        expect_status(response, StatusCode::CREATED, &what).await?;
        files.push((path, sha256));
    }
    eprintln!(
        "pushed {count} files of {mib} MiB to the upstream; GETting each direct (twice), cold, warm ..."
    );
    let mut times = Times::default();
    for (path, sha256) in &files {
        let direct = format!("{}/generic/{UPSTREAM_GENERIC}/{path}", up.base);
        let mirror = format!("{}/generic/{MIRROR_GENERIC}/{path}", px.base);
        for (url, token, into) in [
            (&direct, &up.token, &mut times.direct_first),
            (&direct, &up.token, &mut times.direct),
            (&mirror, &px.token, &mut times.cold),
            (&mirror, &px.token, &mut times.warm),
        ] {
            into.push(timed_get(client, url, token, size, sha256).await?);
        }
    }
    Ok(times)
}

/// GETs `url`, timed from send to the last body byte; then checks the body's size and sha256.
async fn timed_get(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    size: u64,
    sha256: &str,
) -> anyhow::Result<Duration> {
    let what = format!("GET {url}");
    let started = Instant::now();
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| what.clone())?;
    let mut response = expect_status(response, StatusCode::OK, &what).await?;
    let mut body: Vec<Bytes> = Vec::new();
    while let Some(piece) = response.chunk().await.with_context(|| what.clone())? {
        body.push(piece);
    }
    let elapsed = started.elapsed();
    let (got_size, got_sha256) = blocking(move || {
        let mut sha = Sha256::new();
        let mut got = 0u64;
        for piece in &body {
            sha.update(piece);
            got += piece.len() as u64;
        }
        Ok((got, hex::encode(sha.finalize())))
    })
    .await?;
    ensure!(
        got_size == size && got_sha256 == sha256,
        "{what}: {got_size} bytes with sha256 {got_sha256}, pushed {size} bytes with sha256 {sha256}"
    );
    Ok(elapsed)
}

/// Microseconds of each time, for [`Latency::from_micros`].
fn micros(times: &[Duration]) -> Vec<u32> {
    times
        .iter()
        .map(|t| u32::try_from(t.as_micros()).unwrap_or(u32::MAX))
        .collect()
}

/// The generic half: small files for latency, large ones for throughput.
async fn measure_generic(
    client: &reqwest::Client,
    up: &Node,
    px: &Node,
    small_files: u64,
    large_files: u64,
) -> anyhow::Result<RemoteGeneric> {
    // Open a connection to each node before anything is timed.
    for node in [up, px] {
        let url = format!("{}/healthz", node.base);
        let response = client.get(&url).send().await.context("GET /healthz")?;
        expect_status(response, StatusCode::OK, &format!("GET {url}")).await?;
    }
    let (hits_before, misses_before) = remote_counters(client, px, MIRROR_GENERIC).await?;
    let small = time_files(client, up, px, "small", small_files, SMALL_MIB).await?;
    let large = time_files(client, up, px, "large", large_files, LARGE_MIB).await?;
    let (hits_after, misses_after) = remote_counters(client, px, MIRROR_GENERIC).await?;
    let (proxy_hits, proxy_misses) = (hits_after - hits_before, misses_after - misses_before);
    let files = small_files + large_files;
    ensure!(
        proxy_misses == files && proxy_hits == files,
        "the proxy counted {proxy_misses} misses and {proxy_hits} hits for {files} files GET cold \
         then warm: expected one of each per file"
    );

    let latency = |times: &[Duration]| Latency::from_micros(micros(times)).context("no files");
    let direct = latency(&small.direct)?;
    let small_rows = vec![
        LatencyCompared::new(DIRECT, direct.clone(), &direct),
        LatencyCompared::new(DIRECT_FIRST, latency(&small.direct_first)?, &direct),
        LatencyCompared::new("GET remote, cold (miss)", latency(&small.cold)?, &direct),
        LatencyCompared::new("GET remote, warm (hit)", latency(&small.warm)?, &direct),
    ];
    let size = LARGE_MIB * MIB;
    let measurement = |label: &str, times: &[Duration]| {
        Measurement::new(label, size, times).context("no large files")
    };
    let large_direct = measurement(DIRECT, &large.direct)?;
    Ok(RemoteGeneric {
        small_files: small.direct.len(),
        small_mib: SMALL_MIB,
        small: small_rows,
        large_files: large.direct.len(),
        large_mib: LARGE_MIB,
        large_direct_first: Compared::new(
            measurement(DIRECT_FIRST, &large.direct_first)?,
            &large_direct,
        ),
        large_cold: Compared::new(
            measurement("GET remote, cold (miss)", &large.cold)?,
            &large_direct,
        ),
        large_warm: Compared::new(
            measurement("GET remote, warm (hit)", &large.warm)?,
            &large_direct,
        ),
        large_direct,
        proxy_misses,
        proxy_hits,
    })
}

/// The upstream's GETs of npm paths answered 200, and the file bytes it served.
async fn upstream_counters(client: &reqwest::Client, up: &Node) -> anyhow::Result<(u64, u64)> {
    let text = scrape(client, &up.base).await?;
    Ok((
        metric(&text, NPM_GETS).unwrap_or(0),
        metric(&text, DOWNLOAD_BYTES)
            .with_context(|| format!("{}/metrics has no {DOWNLOAD_BYTES}", up.base))?,
    ))
}

/// What one install round received and the upstream served.
#[derive(Default)]
struct Traffic {
    client_packument_gets: u64,
    client_packument_bytes: u64,
    client_tarball_gets: u64,
    client_tarball_bytes: u64,
    upstream_packument_fetches: u64,
    /// File bytes the upstream served during packument phases (expected 0).
    upstream_packument_phase_file_bytes: u64,
    upstream_tarball_fetches: u64,
    upstream_tarball_bytes: u64,
}

/// The npm half: publish to the upstream, then install through the remote `rounds` times.
async fn measure_npm(
    up: &Node,
    px: &Node,
    packages: u64,
    rounds: usize,
) -> anyhow::Result<RemoteNpm> {
    let dataset = Dataset {
        packages,
        versions: 1,
    };
    let version = Dataset::version(0);
    let upstream = Target::new(
        "upstream",
        Url::parse(&format!("{}/npm/{UPSTREAM_NPM}/", up.base))?,
        Auth::Bearer(up.token.clone()),
        CONCURRENCY,
    )?;
    let mirror = Target::new(
        "proxy",
        Url::parse(&format!("{}/npm/{MIRROR_NPM}/", px.base))?,
        Auth::Bearer(px.token.clone()),
        CONCURRENCY,
    )?;

    eprintln!("publishing {packages} npm packages to the upstream ...");
    let tarballs: Vec<Bytes> = packages::for_every_package(dataset, CONCURRENCY, {
        let (upstream, version) = (upstream.clone(), version.clone());
        move |package| {
            let (upstream, version) = (upstream.clone(), version.clone());
            async move {
                let name = Dataset::name(package);
                let npm = archives::npm_version(&name, &version)?;
                packages::publish_npm(&upstream, &name, &version, Bytes::from(npm.publish)).await?;
                anyhow::Ok(Bytes::from(npm.tarball))
            }
        }
    })
    .await?;

    // The full packuments, as the proxy asks for them: their mean size prices each upstream fetch.
    let full_sizes: Vec<u64> = packages::for_every_package(dataset, CONCURRENCY, {
        let upstream = upstream.clone();
        move |package| {
            let upstream = upstream.clone();
            async move {
                let url = upstream.url(&Dataset::name(package))?;
                let (_, body) = upstream.get(&url, Some("application/json")).await?;
                anyhow::Ok(body.len() as u64)
            }
        }
    })
    .await?;
    let full_packument_bytes: u64 = full_sizes.iter().sum();

    let client = &mirror.client;
    let (hits_before, misses_before) = remote_counters(client, px, MIRROR_NPM).await?;
    let mut traffic = Traffic::default();
    let mut content_types = std::collections::BTreeSet::new();
    let mut round_times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        if round == 0 || (round + 1) % 25 == 0 {
            eprintln!("npm install {}/{rounds} through the remote ...", round + 1);
        }
        let before = upstream_counters(client, up).await?;
        let started = Instant::now();
        let packuments = packages::for_every_package(dataset, CONCURRENCY, {
            let (mirror, version) = (mirror.clone(), version.clone());
            move |package| {
                let (mirror, version) = (mirror.clone(), version.clone());
                async move { latest_tarball(&mirror, &Dataset::name(package), &version).await }
            }
        })
        .await?;
        let packument_time = started.elapsed();
        let between = upstream_counters(client, up).await?;
        let started = Instant::now();
        let tarball_urls: Vec<(Url, Bytes)> = packuments
            .iter()
            .zip(&tarballs)
            .map(|((_, _, url), tarball)| (url.clone(), tarball.clone()))
            .collect();
        let tarball_urls = std::sync::Arc::new(tarball_urls);
        let tarball_sizes = packages::for_every_package(dataset, CONCURRENCY, {
            let mirror = mirror.clone();
            move |package| {
                let (mirror, tarball_urls) = (mirror.clone(), tarball_urls.clone());
                async move {
                    let (url, expected) = &tarball_urls[package as usize];
                    let (_, body) = mirror.get(url, None).await?;
                    ensure!(
                        body == *expected,
                        "proxy: GET {url}: {} bytes that differ from the published tarball \
                         ({} bytes)",
                        body.len(),
                        expected.len()
                    );
                    anyhow::Ok(body.len() as u64)
                }
            }
        })
        .await?;
        round_times.push(packument_time + started.elapsed());
        let after = upstream_counters(client, up).await?;

        for (content_type, len, _) in &packuments {
            content_types.insert(content_type.clone());
            traffic.client_packument_bytes += len;
        }
        traffic.client_packument_gets += packuments.len() as u64;
        traffic.client_tarball_gets += tarball_sizes.len() as u64;
        traffic.client_tarball_bytes += tarball_sizes.iter().sum::<u64>();
        traffic.upstream_packument_fetches += between.0 - before.0;
        traffic.upstream_packument_phase_file_bytes += between.1 - before.1;
        traffic.upstream_tarball_fetches += after.0 - between.0;
        traffic.upstream_tarball_bytes += after.1 - between.1;
    }
    let (hits_after, misses_after) = remote_counters(client, px, MIRROR_NPM).await?;
    let (proxy_hits, proxy_misses) = (hits_after - hits_before, misses_after - misses_before);
    ensure!(
        traffic.upstream_packument_phase_file_bytes == 0,
        "the upstream served {} file bytes while only packuments were asked for",
        traffic.upstream_packument_phase_file_bytes
    );

    let upstream_packument_bytes =
        full_packument_bytes * traffic.upstream_packument_fetches / packages;
    let client_bytes = traffic.client_packument_bytes + traffic.client_tarball_bytes;
    let upstream_bytes = upstream_packument_bytes + traffic.upstream_tarball_bytes;
    let lookups = proxy_hits + proxy_misses;
    Ok(RemoteNpm {
        packages,
        rounds,
        concurrency: CONCURRENCY,
        client_packument_gets: traffic.client_packument_gets,
        client_tarball_gets: traffic.client_tarball_gets,
        packument_content_type: content_types.into_iter().collect::<Vec<_>>().join(" + "),
        client_packument_bytes: traffic.client_packument_bytes,
        client_tarball_bytes: traffic.client_tarball_bytes,
        client_bytes,
        upstream_packument_fetches: traffic.upstream_packument_fetches,
        upstream_packument_bytes,
        upstream_tarball_fetches: traffic.upstream_tarball_fetches,
        upstream_tarball_bytes: traffic.upstream_tarball_bytes,
        upstream_bytes,
        saving: 1.0 - upstream_bytes as f64 / client_bytes as f64,
        proxy_hits,
        proxy_misses,
        hit_ratio: if lookups == 0 {
            0.0
        } else {
            proxy_hits as f64 / lookups as f64
        },
        cold_round_ms: round_times[0].as_secs_f64() * 1000.0,
        warm_rounds: Latency::from_micros(micros(&round_times[1..])),
    })
}

/// Versions of the large synthetic packument (typescript's had about 3,500 by 2026, 10 MB in all).
const LARGE_PACKUMENT_VERSIONS: usize = 3_000;
/// The small synthetic packuments, and the versions of each.
const SMALL_PACKUMENTS: usize = 64;
const SMALL_PACKUMENT_VERSIONS: usize = 5;
/// Name of the large synthetic package.
const LARGE_PACKAGE: &str = "large-package";

/// A packument as a public registry serves it, with `versions` versions of `name`, each with a
/// manifest of about 2 KB (forty devDependencies, scripts, people, dist).
fn synthetic_packument(name: &str, versions: usize) -> anyhow::Result<Vec<u8>> {
    use serde_json::{Map, Value, json};
    let mut listed = Map::new();
    let mut times = Map::new();
    let version_of = |index: usize| format!("{}.{}.{}", index / 100, index / 10 % 10, index % 10);
    for index in 0..versions {
        let version = version_of(index);
        let dev_dependencies: Map<String, Value> = (0..40)
            .map(|d| {
                (
                    format!("@types/dev-dependency-{d}"),
                    json!(format!("^{d}.{index}.0")),
                )
            })
            .collect();
        let digest = Sha256::digest(format!("{name}@{version}"));
        let mut sha512 = digest.to_vec();
        sha512.extend_from_slice(&digest);
        listed.insert(
            version.clone(),
            json!({
                "name": name,
                "version": version,
                "description": "A synthetic package shaped like a large public one",
                "keywords": ["synthetic", "benchmark"],
                "license": "Apache-2.0",
                "homepage": "https://example.invalid/project",
                "repository": {"type": "git", "url": "git+https://example.invalid/project.git"},
                "main": "./lib/index.js",
                "bin": {"tool": "./bin/tool.js"},
                "scripts": {"build": "tsc -b", "test": "node --test", "lint": "eslint ."},
                "engines": {"node": ">=14.17"},
                "devDependencies": dev_dependencies,
                "_npmUser": {"name": "publisher", "email": "publisher@example.invalid"},
                "maintainers": [{"name": "publisher", "email": "publisher@example.invalid"}],
                "gitHead": hex::encode(&digest[..20]),
                "dist": {
                    "tarball": format!("https://example.invalid/{name}/-/{name}-{version}.tgz"),
                    "shasum": hex::encode(&digest[..20]),
                    "integrity": format!("sha512-{}", base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD, &sha512)),
                    "fileCount": 200,
                    "unpackedSize": 20_000_000,
                },
            }),
        );
        times.insert(version, json!("2024-01-01T00:00:00.000Z"));
    }
    let latest = version_of(versions.saturating_sub(1));
    times.insert("created".into(), json!("2020-01-01T00:00:00.000Z"));
    times.insert("modified".into(), json!("2024-01-01T00:00:00.000Z"));
    Ok(serde_json::to_vec(&json!({
        "_id": name,
        "name": name,
        "dist-tags": {"latest": latest},
        "versions": listed,
        "time": times,
        "readme": "# synthetic\n",
    }))?)
}

/// GETs `url` as npm asks for a packument (with `token`, which a static server ignores) and checks
/// that the body is JSON.
async fn get_packument(client: &reqwest::Client, url: &Url, token: &str) -> anyhow::Result<()> {
    let what = format!("GET {url}");
    let response = client
        .get(url.clone())
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, NPM_ACCEPT)
        .send()
        .await
        .with_context(|| what.clone())?;
    let response = expect_status(response, StatusCode::OK, &what).await?;
    let body = response.bytes().await.with_context(|| what.clone())?;
    serde_json::from_slice::<serde::de::IgnoredAny>(&body)
        .with_context(|| format!("{what}: not JSON"))?;
    Ok(())
}

/// GETs every one of `names` under `base`, [`CONCURRENCY`] at a time.
async fn get_packuments(
    client: &reqwest::Client,
    base: &Url,
    names: &[String],
    token: &str,
) -> anyhow::Result<()> {
    use futures::{StreamExt, TryStreamExt};
    futures::stream::iter(names)
        .map(|name| async move { get_packument(client, &base.join(name)?, token).await })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// The npm cold-miss rows: packuments served by a static upstream (the limit: a public registry
/// serves packuments as files), GET directly, through a fresh remote registry (every GET a miss:
/// fetch, store, record, render) and through it again (hits).
async fn measure_npm_misses(
    client: &reqwest::Client,
    px: &Node,
    runs: u64,
) -> anyhow::Result<RemoteNpmMisses> {
    let large = synthetic_packument(LARGE_PACKAGE, LARGE_PACKUMENT_VERSIONS)?;
    let large_bytes = large.len() as u64;
    let small_names: Vec<String> = (0..SMALL_PACKUMENTS)
        .map(|index| format!("small-package-{index}"))
        .collect();
    let mut copies = std::collections::HashMap::new();
    copies.insert(format!("/{LARGE_PACKAGE}"), Bytes::from(large));
    for name in &small_names {
        let packument = synthetic_packument(name, SMALL_PACKUMENT_VERSIONS)?;
        copies.insert(format!("/{name}"), Bytes::from(packument));
    }
    let small_bytes: u64 = small_names
        .iter()
        .filter_map(|name| copies.get(&format!("/{name}")))
        .map(|body| body.len() as u64)
        .sum();
    let (upstream, server) = crate::formats::serve_static(copies).await?;
    let large_name = [LARGE_PACKAGE.to_owned()];
    let mut times: [Vec<Duration>; 6] = Default::default();
    let measured = async {
        for run in 0..runs {
            eprintln!("npm cold misses, run {}/{runs} ...", run + 1);
            let registry = format!("npm-misses-{run}");
            let remote_url = format!("{}/npm/{registry}/", px.base);
            create_remote(client, px, &registry, "NPM", upstream.as_str(), None).await?;
            let remote = Url::parse(&remote_url)?;
            let ways = [
                (&upstream, &large_name[..]),
                (&remote, &large_name[..]),
                (&remote, &large_name[..]),
                (&upstream, &small_names[..]),
                (&remote, &small_names[..]),
                (&remote, &small_names[..]),
            ];
            for (row, (base, names)) in ways.into_iter().enumerate() {
                let started = Instant::now();
                get_packuments(client, base, names, &px.token).await?;
                times[row].push(started.elapsed());
            }
        }
        anyhow::Ok(())
    }
    .await;
    server.abort();
    measured?;
    let large_label = format!(
        "{:.1} MiB, {LARGE_PACKUMENT_VERSIONS} versions",
        large_bytes as f64 / MIB as f64
    );
    let small_label = format!("{SMALL_PACKUMENTS} small, {CONCURRENCY} at once");
    // Every row of a group is priced in the upstream's bytes, so that its MiB/s ratio is the
    // inverse of its time ratio (the remote answers with abbreviated packuments, which are smaller).
    let measurement = |row: usize, label: String| {
        let bytes = if row < 3 { large_bytes } else { small_bytes };
        Measurement::new(&label, bytes, &times[row]).context("no runs")
    };
    let large_direct = measurement(0, format!("{large_label}: direct"))?;
    let small_direct = measurement(3, format!("{small_label}: direct"))?;
    let compared = |row: usize, baseline: &Measurement| -> anyhow::Result<Compared> {
        let label = if row % 3 == 1 { "cold" } else { "warm" };
        let measured = measurement(row, format!("  through the remote, {label}"))?;
        Ok(Compared::new(measured, baseline))
    };
    Ok(RemoteNpmMisses {
        runs,
        large_versions: LARGE_PACKUMENT_VERSIONS,
        large_upstream_bytes: large_bytes,
        small_packuments: SMALL_PACKUMENTS,
        small_upstream_bytes: small_bytes,
        large_cold: compared(1, &large_direct)?,
        large_warm: compared(2, &large_direct)?,
        small_cold: compared(4, &small_direct)?,
        small_warm: compared(5, &small_direct)?,
        large_direct,
        small_direct,
    })
}

/// GETs the packument of `name` through `mirror` as npm does, checks that its latest version is
/// `version`, and returns its content type, its length and the latest version's tarball URL.
async fn latest_tarball(
    mirror: &Target,
    name: &str,
    version: &str,
) -> anyhow::Result<(String, u64, Url)> {
    let url = mirror.url(name)?;
    let (content_type, body) = mirror.get(&url, Some(NPM_ACCEPT)).await?;
    let doc: serde_json::Value =
        serde_json::from_slice(&body).with_context(|| format!("proxy: GET {url}: not JSON"))?;
    let latest = doc["dist-tags"]["latest"]
        .as_str()
        .with_context(|| format!("proxy: GET {url}: no latest dist-tag"))?;
    ensure!(
        latest == version,
        "proxy: GET {url}: latest is {latest}, published {version}"
    );
    let tarball = doc["versions"][latest]["dist"]["tarball"]
        .as_str()
        .with_context(|| format!("proxy: GET {url}: {latest} has no tarball"))?;
    Ok((content_type, body.len() as u64, url.join(tarball)?))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cli = Cli::parse_from(["remote"]);
        let a = &cli.args;
        assert_eq!(
            (a.files, a.large, a.packages, a.rounds, a.miss_runs),
            (20, 3, 20, 100, 5)
        );
        assert_eq!(a.dir, PathBuf::from("."));
        assert!(!a.json);
        assert!(Cli::try_parse_from(["remote", "--files", "0"]).is_err());
    }
}
