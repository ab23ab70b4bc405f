//! The `downloads` benchmark: what counting downloads for usage insights costs the downloads.
//!
//! Two nodes started side by side in this process, alike but for `count_downloads`, each holding
//! the same `--files` small files, take turns: in each of `--rounds` rounds, `--clients` clients
//! make `--gets` GETs of random files of one node, then of the other. The report gives each node's
//! GETs/s (best and median of the rounds) and counted over not counted. At the end the counting
//! node's figures must add up to every GET it answered (after its last flush), so nothing is lost.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde::Serialize;

use crate::common::{self, fan_out};
use crate::report::{Rates, SideBySide};

/// The longest the figures may take to add up after the last GET.
const PATIENCE: Duration = Duration::from_secs(60);

/// Options of `arca-bench downloads`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files each node holds (one version each).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    files: u64,
    /// Bytes per file.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    size: u64,
    /// GETs per round and node.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    gets: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    clients: u64,
    /// Rounds (each node measured once a round, in turn).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// How often the counting node flushes its counts, in milliseconds.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(10..))]
    flush_ms: u64,
    /// Directory under which the nodes' data directories are made (and removed at the end).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// What the benchmark measured.
#[derive(Debug, Serialize)]
struct Report {
    files: u64,
    file_bytes: u64,
    clients: u64,
    gets_per_round: u64,
    flush_ms: u64,
    gets: SideBySide,
    counted_downloads: u64,
    flushes: u64,
}

/// One node and how to reach it.
struct Node {
    running: arca_node::RunningNode,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Node {
    async fn start(
        root: &std::path::Path,
        name: &str,
        args: &Args,
        count: bool,
    ) -> anyhow::Result<Node> {
        let running = arca_node::start(arca_node::config::Config {
            http: "127.0.0.1:0".parse()?,
            quic: "127.0.0.1:0".parse()?,
            data_dir: root.join(name),
            count_downloads: count,
            usage_flush_ms: args.flush_ms,
            ..Default::default()
        })
        .await
        .with_context(|| format!("starting the {name} node"))?;
        let node = Node {
            base: format!("http://{}", running.http_addr),
            token: common::admin_token(&running).await?,
            http: reqwest::Client::new(),
            running,
        };
        common::create_registry(&node.http, &node.base, &node.token, "files", "GENERIC").await?;
        Ok(node)
    }

    fn url(&self, i: u64) -> String {
        format!("{}/generic/files/file-{i}/1.0/f.bin", self.base)
    }

    async fn fill(self: &Arc<Self>, files: u64, size: u64) -> anyhow::Result<()> {
        let node = self.clone();
        fan_out(16, files, move |i| {
            let node = node.clone();
            async move {
                let body = vec![(i % 251) as u8; size as usize];
                let response = node
                    .http
                    .put(node.url(i))
                    .bearer_auth(&node.token)
                    .body(body)
                    .send()
                    .await?;
                ensure!(
                    response.status().as_u16() == 201,
                    "push {i}: {}",
                    response.status()
                );
                Ok(1)
            }
        })
        .await?;
        Ok(())
    }

    /// GETs/s of `gets` GETs of random files from `clients` clients.
    async fn get_rate(self: &Arc<Self>, args: &Args) -> anyhow::Result<f64> {
        let started = Instant::now();
        let (node, files, size) = (self.clone(), args.files, args.size);
        fan_out(args.clients as usize, args.gets, move |i| {
            let node = node.clone();
            async move {
                // A fixed scatter over the files (Knuth's multiplicative hash).
                let file = i.wrapping_mul(2_654_435_761) % files;
                let response = node
                    .http
                    .get(node.url(file))
                    .bearer_auth(&node.token)
                    .send()
                    .await?;
                ensure!(
                    response.status().is_success(),
                    "GET {file}: {}",
                    response.status()
                );
                let body = response.bytes().await?;
                ensure!(
                    body.len() as u64 == size,
                    "GET {file}: {} bytes",
                    body.len()
                );
                Ok(1)
            }
        })
        .await?;
        Ok(args.gets as f64 / started.elapsed().as_secs_f64())
    }

    /// The downloads the node's figures hold for the registry `files`.
    async fn counted(&self) -> anyhow::Result<u64> {
        let answer: serde_json::Value = self
            .http
            .get(format!("{}/api/v1/insights?days=2", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .json()
            .await?;
        Ok(answer["registries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|registry| registry["name"] == "files")
            .filter_map(|registry| registry["downloads"].as_u64())
            .sum())
    }
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let (temp, root) = common::temp_root(&args.dir)?;
    let counting = Arc::new(Node::start(&root, "counting", &args, true).await?);
    let quiet = Arc::new(Node::start(&root, "not-counting", &args, false).await?);
    counting.fill(args.files, args.size).await?;
    quiet.fill(args.files, args.size).await?;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        with.push(counting.get_rate(&args).await?);
        without.push(quiet.get_rate(&args).await?);
    }
    let answered = args.gets * args.rounds;
    let deadline = Instant::now() + PATIENCE;
    let counted_downloads = loop {
        let counted = counting.counted().await?;
        if counted >= answered || Instant::now() > deadline {
            break counted;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    ensure!(
        counted_downloads == answered,
        "the figures hold {counted_downloads} downloads of the {answered} GETs answered"
    );
    ensure!(quiet.counted().await? == 0, "the node not counting counted");
    let metrics = common::scrape(&counting.http, &counting.base).await?;
    let flushes = common::metric(&metrics, "arca_usage_flushes_total").unwrap_or(0);
    let report = Report {
        files: args.files,
        file_bytes: args.size,
        clients: args.clients,
        gets_per_round: args.gets,
        flush_ms: args.flush_ms,
        gets: SideBySide::new(
            "GETs/s, counted vs not",
            "req/s",
            Rates::new(with).context("no rounds")?,
            Rates::new(without).context("no rounds")?,
        ),
        counted_downloads,
        flushes,
    };
    for node in [counting, quiet] {
        if let Ok(node) = Arc::try_unwrap(node) {
            node.running.shutdown().await?;
        }
    }
    drop(temp);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let g = &report.gets;
    println!(
        "downloads: {} files of {} B, {} clients, {} GETs a round, flush every {} ms",
        report.files, report.file_bytes, report.clients, report.gets_per_round, report.flush_ms
    );
    println!(
        "GETs/s counted      best {:>9.0}  median {:>9.0}  runs {:?}",
        g.arca.best, g.arca.median, g.arca.runs
    );
    println!(
        "GETs/s not counted  best {:>9.0}  median {:>9.0}  runs {:?}",
        g.peer.best, g.peer.median, g.peer.runs
    );
    println!(
        "counted / not: best {:.3}, median {:.3}; {} downloads counted in {} flushes",
        g.ratio_best, g.ratio_median, report.counted_downloads, report.flushes
    );
    Ok(())
}
