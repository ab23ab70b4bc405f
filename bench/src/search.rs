//! The `search` benchmark: search at the scale benchmark's data set (a million versions of
//! `pkg-<n>` in a generic registry, `--versions-per-package` each), against the floor of an API
//! request.
//!
//! A release `arca-node` runs as a child process. After the fill (timed, pushes/s) and the index
//! catching up with it, `--clients` clients run for `--seconds` each:
//! - **floor**: `GET /api/v1/registries/scale`, the cheapest authenticated API request;
//! - **search**: `GET /api/v1/search` with a mix of queries: an exact package name, a type-ahead
//!   prefix of one, a name with a typo, a version, and `pkg type:generic pushed:>2000-01-01`,
//!   which every version matches;
//!
//! each as req/s and p50/p99 latency, the mix also per kind of query. Then the index lag: a new
//! package pushed, then searched for every 5 ms until found (`--lag-samples` times; p50/p99).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::common;
use crate::report::Latency;
use crate::scale::{self, GENERIC, NodeProcess, Pusher};

/// The kinds of query in the mix.
const KINDS: [&str; 5] = ["exact name", "prefix", "typo", "version", "every version"];

/// Options of `arca-bench search`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Versions pushed before searching.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    versions: u64,
    /// Versions of each package.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    versions_per_package: u64,
    /// Concurrent clients, pushing and searching.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 10.0, value_parser = common::positive)]
    seconds: f64,
    /// New packages timed from push to searchable.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    lag_samples: u64,
    /// The `arca-node` binary to run (default: the one beside this binary).
    #[arg(long, value_name = "PATH")]
    node_bin: Option<PathBuf>,
    /// Directory under which the node's data directory is made (and removed at the end).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// Requests of one kind, for a while.
#[derive(Debug, Serialize)]
struct Rate {
    requests_per_second: f64,
    latency: Latency,
}

#[derive(Debug, Serialize)]
struct Report {
    versions: u64,
    packages: u64,
    fill_pushes_per_second: f64,
    catch_up_seconds: f64,
    floor: Rate,
    search: Rate,
    by_kind: Vec<(String, Latency)>,
    lag: Latency,
}

/// The node being measured.
struct Node {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Node {
    /// GETs `path`; 200 expected, the body as JSON.
    async fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    /// The number of hits of `q`.
    async fn hits(&self, q: &str) -> anyhow::Result<usize> {
        let response = self
            .http
            .get(format!("{}/api/v1/search", self.url))
            .query(&[("q", q)])
            .bearer_auth(&self.token)
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "search {q}: {}",
            response.status()
        );
        let answer: serde_json::Value = response.json().await?;
        Ok(answer["hits"].as_array().map_or(0, Vec::len))
    }
}

/// A query of kind `kind` over `packages` packages of `per_package` versions, from `seed`.
fn query(kind: usize, seed: u64, packages: u64, per_package: u64) -> String {
    let package = seed % packages;
    match kind {
        0 => format!("pkg-{package}"),
        1 => {
            let digits = package.to_string();
            format!("pkg-{}", &digits[..digits.len().min(3)])
        }
        2 => {
            // One digit changed: a typo of one letter in the name's number.
            let mut digits: Vec<u8> = format!("{:05}", package % 100_000).into_bytes();
            digits[2] = if digits[2] == b'9' {
                b'0'
            } else {
                digits[2] + 1
            };
            format!("pkg-{}", String::from_utf8_lossy(&digits))
        }
        3 => format!("pkg-{package} 1.0.{}", seed % per_package),
        _ => "pkg type:generic pushed:>2000-01-01".to_string(),
    }
}

/// Runs `clients` clients for `seconds`, each calling `request(seed)` in turn; req/s, and each
/// request's (kind, microseconds).
async fn load<F, Fut>(
    clients: usize,
    seconds: f64,
    request: F,
) -> anyhow::Result<(f64, Vec<(usize, u32)>)>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<usize>> + Send + 'static,
{
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for client in 0..clients as u64 {
        let request = request.clone();
        tasks.spawn(async move {
            let mut timed = Vec::new();
            let mut seed = client.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            while Instant::now() < deadline {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let sent = Instant::now();
                let kind = request(seed).await?;
                timed.push((kind, sent.elapsed().as_micros() as u32));
            }
            anyhow::Ok(timed)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.context("a client panicked")??);
    }
    Ok((all.len() as f64 / started.elapsed().as_secs_f64(), all))
}

fn rate(requests_per_second: f64, timed: &[(usize, u32)]) -> anyhow::Result<Rate> {
    Ok(Rate {
        requests_per_second,
        latency: Latency::from_micros(timed.iter().map(|(_, us)| *us).collect())
            .context("no request was answered")?,
    })
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = scale::node_binary(args.node_bin.as_deref())?;
    let (temp, root) = common::temp_root(&args.dir)?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(2 * args.clients)
        .build()?;
    let (mut process, token) =
        NodeProcess::start(&bin, &root.join("node"), "site-1", &[], Vec::new()).await?;
    common::create_registry(&http, &process.url, &token, GENERIC, "GENERIC").await?;
    let node = Arc::new(Node {
        http: http.clone(),
        url: process.url.clone(),
        token: token.clone(),
    });
    let pusher = Pusher {
        client: http.clone(),
        url: process.url.as_str().into(),
        token: token.as_str().into(),
        size: 64,
        per_package: args.versions_per_package,
    };
    let never = Arc::new(AtomicBool::new(false));
    eprintln!("filling {} versions...", args.versions);
    let filled = pusher
        .run(args.clients, 0, args.versions, None, &never)
        .await?;
    ensure!(
        filled.end == args.versions,
        "the fill stopped at {}",
        filled.end
    );
    let fill_pushes_per_second = args.versions as f64 / filled.seconds;

    // The index has caught up once the last package pushed is found.
    let packages = args.versions.div_ceil(args.versions_per_package);
    let last = format!("pkg-{}", packages - 1);
    let caught_up = Instant::now();
    while node.hits(&last).await? == 0 {
        ensure!(
            caught_up.elapsed() < Duration::from_secs(3600),
            "the index never caught up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let catch_up_seconds = caught_up.elapsed().as_secs_f64();
    eprintln!(
        "filled at {fill_pushes_per_second:.0} pushes/s; the index caught up {catch_up_seconds:.1} s later"
    );

    let floor_node = node.clone();
    let (floor_rate, floor_timed) = load(args.clients, args.seconds, move |_| {
        let node = floor_node.clone();
        async move {
            node.get(&format!("/api/v1/registries/{GENERIC}")).await?;
            Ok(0)
        }
    })
    .await?;
    let per_package = args.versions_per_package;
    let search_node = node.clone();
    let (search_rate, search_timed) = load(args.clients, args.seconds, move |seed| {
        let node = search_node.clone();
        async move {
            let kind = (seed % KINDS.len() as u64) as usize;
            node.hits(&query(kind, seed >> 8, packages, per_package))
                .await?;
            Ok(kind)
        }
    })
    .await?;
    let mut by_kind = Vec::new();
    for (kind, name) in KINDS.iter().enumerate() {
        let micros = search_timed
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, us)| *us)
            .collect();
        if let Some(latency) = Latency::from_micros(micros) {
            by_kind.push((name.to_string(), latency));
        }
    }

    let mut lags = Vec::new();
    for sample in 0..args.lag_samples {
        let name = format!("lag-{sample}");
        let response = http
            .put(format!(
                "{}/generic/{GENERIC}/{name}/1.0.0/f.bin",
                process.url
            ))
            .bearer_auth(&token)
            .body("lag")
            .send()
            .await?;
        ensure!(
            response.status().as_u16() == 201,
            "push {name}: {}",
            response.status()
        );
        let pushed = Instant::now();
        while node.hits(&name).await? == 0 {
            ensure!(
                pushed.elapsed() < Duration::from_secs(60),
                "{name} never became searchable"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lags.push(pushed.elapsed().as_micros() as u32);
    }
    process.stop(scale::Signal::Term).await?;
    drop(temp);

    let report = Report {
        versions: args.versions,
        packages,
        fill_pushes_per_second,
        catch_up_seconds,
        floor: rate(floor_rate, &floor_timed)?,
        search: rate(search_rate, &search_timed)?,
        by_kind,
        lag: Latency::from_micros(lags).context("no lag sample")?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report, args.clients);
    }
    Ok(())
}

fn print_table(report: &Report, clients: usize) {
    println!(
        "search: {} versions in {} packages (pushed at {:.0}/s; the index caught up {:.1} s after the last), {clients} clients",
        report.versions, report.packages, report.fill_pushes_per_second, report.catch_up_seconds
    );
    println!();
    println!("| requests | req/s | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    let row = |what: &str, rate: Option<f64>, l: &Latency| {
        let rate = rate.map_or_else(|| "".to_string(), |r| format!("{r:.0}"));
        println!(
            "| {what} | {rate} | {:.1} | {:.1} | {:.1} |",
            l.p50_ms, l.p99_ms, l.max_ms
        );
    };
    row(
        "floor: GET /api/v1/registries/scale",
        Some(report.floor.requests_per_second),
        &report.floor.latency,
    );
    row(
        "search, the mix",
        Some(report.search.requests_per_second),
        &report.search.latency,
    );
    for (kind, latency) in &report.by_kind {
        row(&format!("search: {kind}"), None, latency);
    }
    row("index lag: push answered -> searchable", None, &report.lag);
    println!();
    println!(
        "search / floor req/s: {:.2}",
        report.search.requests_per_second / report.floor.requests_per_second
    );
}
