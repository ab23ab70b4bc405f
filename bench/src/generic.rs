//! The `generic` benchmark: push and pull one large file through a generic registry of a node running
//! in this process, against a plain copy of the same file on the same disk.
//!
//! With `--storage garage` the node keeps its chunks in a Garage bucket (see [`crate::storage`]), and
//! fresh files are also pushed and pulled through it beside the same bytes PUT into and GET from the
//! bucket directly.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use reqwest::{StatusCode, header};
use serde::Deserialize;
use tokio_util::io::ReaderStream;

use crate::common::{self, blocking, expect_status};
use crate::data;
use crate::report::{Compared, GarageReport, GenericReport, Measurement};
use crate::storage::{Bucket, Limit, Node, Pairs, Source, Stand, StorageArgs};

/// Registry, package and file the benchmark pushes to and pulls from.
const REGISTRY: &str = "bench";
const PACKAGE: &str = "big";
const FILENAME: &str = "big.bin";

/// How much of the source the push reads per body frame.
const IO_BUFFER: usize = 2 << 20;

/// Options of `arca-bench generic`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Size of the file pushed and pulled, in MiB.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    size_mib: u64,
    /// How many times each measurement runs: each run copies the source, pushes a fresh file (cold),
    /// pushes the source again as a new version (deduplicated by the chunk store) and pulls it.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    runs: u64,
    /// Directory under which a temporary directory for the node's data, the source file and the copies
    /// is made (and removed at the end). Defaults to the current directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    storage: StorageArgs,
}

/// What the node answers to a generic upload.
#[derive(Debug, Deserialize)]
struct Uploaded {
    size: u64,
    sha256: String,
}

/// Files of one benchmark run, all inside its temporary directory.
struct Files {
    source: PathBuf,
    copy: PathBuf,
    pulled: PathBuf,
    size: u64,
    sha256: String,
}

/// Runs the benchmark and prints its report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let size = args
        .size_mib
        .checked_mul(1024 * 1024)
        .context("--size-mib is too large")?;
    let runs = usize::try_from(args.runs).context("--runs is too large")?;
    let (temp, root) = common::temp_root(&args.dir)?;

    let source = root.join("source.bin");
    eprintln!(
        "generating {} MiB of incompressible data in {} ...",
        args.size_mib,
        source.display()
    );
    let sha256 = blocking({
        let source = source.clone();
        move || data::generate(&source, size)
    })
    .await?;
    let files = Files {
        copy: root.join("copy.bin"),
        pulled: root.join("pulled.bin"),
        source,
        size,
        sha256,
    };

    let stand = Stand::start(&args.storage, root.join("node")).await?;
    let measured = async {
        let table = measure(&stand.node, &files, &root, runs).await?;
        let garage = match &stand.bucket {
            Some(bucket) => Some(against_bucket(&stand.node, bucket, &files, runs, &root).await?),
            None => None,
        };
        anyhow::Ok((table, garage))
    }
    .await;
    let stopped = stand.stop().await;
    let removed = temp
        .close()
        .with_context(|| format!("removing {}", root.display()));
    let ((copy, push_cold, push_dedup, pull), garage) = measured?;
    stopped?;
    removed?;

    let report = GenericReport {
        benchmark: "generic",
        size_mib: args.size_mib,
        size_bytes: size,
        runs,
        dir: root.display().to_string(),
        sha256: files.sha256,
        push_cold: Compared::new(push_cold, &copy),
        push_dedup: Compared::new(push_dedup, &copy),
        pull: Compared::new(pull, &copy),
        copy,
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
        "every side reads a source the page cache most likely holds (it cannot be dropped reliably \
         without root); every side writes to the same disk and fsyncs before its clock stops",
        "plain copy: 8 MiB read()/write() into a new file, then fsync — the limit",
        "push: PUT with Content-Length from a node in this process over 127.0.0.1, timed until the 201 \
         (the node fsyncs every chunk and commits the version through Raft before answering); sha256 \
         of the answer checked against the source",
        "push (cold): a fresh file each run (all made before the first run, unrelated to each other), \
         so every chunk is new",
        "push (dedup): the source pushed again as a new version (after an untimed first push); the \
         chunk store already holds every chunk, so only hashing and metadata remain",
        "the rows take turns, run after run (copy, cold push, dedup push, pull), so a slow minute of \
         the disk falls on each alike; spread is the fastest run less the slowest, in percent of the \
         median",
        "pull: GET streamed into a new file, then fsync; size and sha256 verified after the clock stops",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// How to read the `--storage garage` rows; the shared notes follow them.
fn garage_notes() -> Vec<String> {
    [
        "push / PUT: each run a fresh file of --size-mib MiB (unrelated to the one above and to the \
         other runs'), PUT through the node as above (version 2.<run>) and PUT directly as one object \
         from the same file; bytes pushed count every push through the node, those of the rows above too",
        "pull / GET: each run's file streamed into a new file and fsynced on both sides, size and \
         sha256 verified after the clock stops; nothing has read the file before, so through the \
         node every chunk comes from the bucket (see the GETs in the pull phase's counters)",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Makes `<root>/<what>-<run>.bin`, `size` bytes of its own pseudo-random data; returns its path
/// and sha256.
async fn fresh_file(
    root: &Path,
    what: &str,
    run: usize,
    runs: usize,
    size: u64,
) -> anyhow::Result<(PathBuf, String)> {
    let path = root.join(format!("{what}-{run}.bin"));
    eprintln!("generating fresh file {}/{runs} ...", run + 1);
    let seed = format!("{what} {run}");
    let sha256 = blocking({
        let path = path.clone();
        move || data::generate_seeded(&path, size, seed.as_bytes())
    })
    .await?;
    Ok((path, sha256))
}

/// Measures, run after run (so that the disk's moods fall on every row alike): the copy; a cold
/// push of a fresh file (version 3.<run>); a dedup push of the source (version 1.<run + 1>, after
/// an untimed first push as 1.0); a pull of 1.0. The fresh files are all made first: the write-back
/// of a file just made slows whatever writes next.
async fn measure(
    node: &Node,
    files: &Files,
    root: &Path,
    runs: usize,
) -> anyhow::Result<(Measurement, Measurement, Measurement, Measurement)> {
    let token = node.token.as_str();
    let base = node.base.as_str();
    let client = reqwest::Client::new();
    common::create_registry(&client, base, token, REGISTRY, "GENERIC").await?;
    let size = files.size;
    let mut fresh = Vec::with_capacity(runs);
    for run in 0..runs {
        fresh.push(fresh_file(root, "cold", run, runs, size).await?);
    }
    eprintln!("first push of the source (untimed) ...");
    let first = push(&client, &file_url(base, 1, 0), token, &files.source, size).await?;
    expect_stored(&first, size, &files.sha256)?;

    let (mut copies, mut colds, mut dedups, mut pulls) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (run, (fresh, fresh_sha256)) in fresh.iter().enumerate() {
        eprintln!("run {}/{runs}: plain copy ...", run + 1);
        let (from, to) = (files.source.clone(), files.copy.clone());
        let started = Instant::now();
        let copied = blocking(move || data::copy(&from, &to)).await?;
        copies.push(started.elapsed());
        ensure!(copied == size, "copied {copied} of {size} bytes");
        tokio::fs::remove_file(&files.copy).await?;

        eprintln!("run {}/{runs}: cold push of a fresh file ...", run + 1);
        let started = Instant::now();
        let uploaded = push(&client, &file_url(base, 3, run), token, fresh, size).await?;
        colds.push(started.elapsed());
        expect_stored(&uploaded, size, fresh_sha256)?;
        tokio::fs::remove_file(fresh).await?;

        eprintln!("run {}/{runs}: dedup push of the source ...", run + 1);
        let url = file_url(base, 1, run + 1);
        let started = Instant::now();
        let uploaded = push(&client, &url, token, &files.source, size).await?;
        dedups.push(started.elapsed());
        expect_stored(&uploaded, size, &files.sha256)?;

        eprintln!("run {}/{runs}: pull ...", run + 1);
        let started = Instant::now();
        pull(&client, &file_url(base, 1, 0), token, &files.pulled).await?;
        pulls.push(started.elapsed());
        let pulled = files.pulled.clone();
        let (got_size, sha256) = blocking(move || data::sha256_file(&pulled)).await?;
        ensure!(
            got_size == size && sha256 == files.sha256,
            "pulled {got_size} bytes with sha256 {sha256}, the source has {size} bytes with sha256 {}",
            files.sha256
        );
        tokio::fs::remove_file(&files.pulled).await?;
    }

    let measurement = |label: &str, runs: &[Duration]| {
        Measurement::new(label, size, runs).context("a measurement without runs")
    };
    Ok((
        measurement("plain copy (limit)", &copies)?,
        measurement("arca push (cold, new bytes)", &colds)?,
        measurement("arca push (dedup, same bytes)", &dedups)?,
        measurement("arca pull", &pulls)?,
    ))
}

/// Fails unless the node says it stored `size` bytes with `sha256`.
fn expect_stored(uploaded: &Uploaded, size: u64, sha256: &str) -> anyhow::Result<()> {
    ensure!(
        uploaded.size == size && uploaded.sha256 == sha256,
        "the node stored {} bytes with sha256 {}, the source has {size} bytes with sha256 {sha256}",
        uploaded.size,
        uploaded.sha256
    );
    Ok(())
}

/// With `--storage garage`: per run, a fresh file pushed through the node and PUT directly into
/// its bucket, then pulled and GET back; what the bucket holds after; the node's counters over each
/// phase.
async fn against_bucket(
    node: &Node,
    bucket: &Bucket,
    files: &Files,
    runs: usize,
    root: &Path,
) -> anyhow::Result<GarageReport> {
    let mut limit = Limit::new(node, bucket, runs);
    limit
        .phase("the rows above (plain copies; pushes of one file, cold then dedup; its pulls)")
        .await?;
    let client = reqwest::Client::new();
    let size = files.size;

    // (URL in the registry, name in the bucket, sha256) of each run's file.
    let mut fresh = Vec::with_capacity(runs);
    let mut pushes = Pairs::default();
    for run in 0..runs {
        let (source, sha256) = fresh_file(root, "fresh", run, runs, size).await?;
        let (url, name) = (file_url(&node.base, 2, run), format!("generic/{run}.bin"));
        eprintln!(
            "push {}/{runs} of it: through the node and directly ...",
            run + 1
        );
        let through_arca = async {
            let uploaded = push(&client, &url, &node.token, &source, size).await?;
            expect_stored(&uploaded, size, &sha256)?;
            Ok(size)
        };
        let direct = bucket.put(vec![(name.clone(), Source::File(source.clone(), size))]);
        pushes.time(run, through_arca, direct).await?;
        tokio::fs::remove_file(&source)
            .await
            .with_context(|| format!("removing {}", source.display()))?;
        fresh.push((url, name, sha256));
    }
    limit.row("Arca push / direct PUT", pushes)?;
    limit
        .phase("pushes of the fresh files through the node, and their direct PUTs")
        .await?;

    let mut pulls = Pairs::default();
    let (through_arca, direct) = (root.join("pulled-arca.bin"), root.join("pulled-direct.bin"));
    for (run, (url, name, sha256)) in fresh.iter().enumerate() {
        eprintln!("pull {}/{runs}: through the node and directly ...", run + 1);
        pulls
            .time(
                run,
                pull(&client, url, &node.token, &through_arca),
                bucket.get_into_file(name, &direct),
            )
            .await?;
        for path in [&through_arca, &direct] {
            let pulled = path.clone();
            let (got_size, got_sha256) = blocking(move || data::sha256_file(&pulled)).await?;
            ensure!(
                got_size == size && got_sha256 == *sha256,
                "{} has {got_size} bytes with sha256 {got_sha256}, the source had {size} bytes \
                 with sha256 {sha256}",
                path.display()
            );
            tokio::fs::remove_file(path)
                .await
                .with_context(|| format!("removing {}", path.display()))?;
        }
    }
    limit.row("Arca pull / direct GET", pulls)?;
    limit
        .phase("pulls of the fresh files through the node, and their direct GETs")
        .await?;

    // The rows above pushed one file `runs` times; each fresh file was pushed once.
    let runs = runs as u64;
    let pushed = size.saturating_mul(runs.saturating_mul(2));
    let unique = size.saturating_mul(runs + 1);
    limit.finish(pushed, unique, garage_notes()).await
}

/// The URL of the benchmark file in version `{major}.{run}`.
fn file_url(base: &str, major: u32, run: usize) -> String {
    format!("{base}/generic/{REGISTRY}/{PACKAGE}/{major}.{run}/{FILENAME}")
}

/// Streams `path` to `url` and returns the node's answer.
async fn push(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    path: &Path,
    size: u64,
) -> anyhow::Result<Uploaded> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let body = reqwest::Body::wrap_stream(ReaderStream::with_capacity(file, IO_BUFFER));
    let response = client
        .put(url)
        .bearer_auth(token)
        .header(header::CONTENT_LENGTH, size)
        .body(body)
        .send()
        .await
        .with_context(|| format!("PUT {url}"))?;
    let response = expect_status(response, StatusCode::CREATED, &format!("PUT {url}")).await?;
    response
        .json()
        .await
        .with_context(|| format!("reading the answer to PUT {url}"))
}

/// Streams `url` into the new file `path`, fsyncs it, and returns the bytes written.
async fn pull(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    path: &Path,
) -> anyhow::Result<u64> {
    let what = format!("GET {url}");
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| what.clone())?;
    let response = expect_status(response, StatusCode::OK, &what).await?;
    common::stream_into_file(response.bytes_stream(), path, &what).await
}
