//! The `generic` benchmark: push and pull one large file through a generic registry of a node running
//! in this process, against a plain copy of the same file on the same disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use reqwest::{StatusCode, header};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::common::{self, blocking, expect_status};
use crate::data;
use crate::report::{Compared, GenericReport, Measurement};

/// Registry, package and file the benchmark pushes to and pulls from.
const REGISTRY: &str = "bench";
const PACKAGE: &str = "big";
const FILENAME: &str = "big.bin";

/// How much of the source the push reads per body frame, and the pull buffers per write.
const IO_BUFFER: usize = 2 << 20;

/// Options of `arca-bench generic`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Size of the file pushed and pulled, in MiB.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    size_mib: u64,
    /// How many times each measurement runs: the first push is cold, the others push the same bytes
    /// again as new versions (deduplicated by the chunk store).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    runs: u64,
    /// Directory under which a temporary directory for the node's data, the source file and the copies
    /// is made (and removed at the end). Defaults to the current directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
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

    let node = common::start_node(root.join("node")).await?;
    let measured = measure(&node, &files, runs).await;
    let stopped = node.shutdown().await.context("stopping the node");
    let removed = temp
        .close()
        .with_context(|| format!("removing {}", root.display()));
    let (copy, push_cold, push_dedup, pull) = measured?;
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
        push_dedup: push_dedup.map(|dedup| Compared::new(dedup, &copy)),
        pull: Compared::new(pull, &copy),
        copy,
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
        "every side reads a source the page cache most likely holds (it cannot be dropped reliably \
         without root); every side writes to the same disk and fsyncs before its clock stops",
        "plain copy: 8 MiB read()/write() into a new file, then fsync — the limit",
        "push: PUT with Content-Length from a node in this process over 127.0.0.1, timed until the 201 \
         (the node fsyncs every chunk and commits the version through Raft before answering); sha256 \
         of the answer checked against the source",
        "push (dedup): the same bytes pushed again as a new version; the chunk store already holds \
         every chunk, so only hashing and metadata remain",
        "pull: GET streamed into a new file, then fsync; size and sha256 verified after the clock stops",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Measures the copy, the pushes (versions 1.0, 1.1, ...) and the pulls (of 1.0).
async fn measure(
    node: &arca_node::RunningNode,
    files: &Files,
    runs: usize,
) -> anyhow::Result<(Measurement, Measurement, Option<Measurement>, Measurement)> {
    let token = common::admin_token(node).await?;
    let token = token.as_str();
    let base = format!("http://{}", node.http_addr);
    let client = reqwest::Client::new();
    common::create_registry(&client, &base, token, REGISTRY, "GENERIC").await?;

    let mut copies = Vec::with_capacity(runs);
    for run in 1..=runs {
        eprintln!("plain copy {run}/{runs} ...");
        let (from, to) = (files.source.clone(), files.copy.clone());
        let started = Instant::now();
        let copied = blocking(move || data::copy(&from, &to)).await?;
        copies.push(started.elapsed());
        ensure!(
            copied == files.size,
            "copied {copied} of {} bytes",
            files.size
        );
        tokio::fs::remove_file(&files.copy).await?;
    }

    let mut pushes = Vec::with_capacity(runs);
    for run in 0..runs {
        let url = file_url(&base, run);
        let kind = if run == 0 { "cold" } else { "dedup" };
        eprintln!("push {}/{runs} ({kind}) to {url} ...", run + 1);
        let started = Instant::now();
        let uploaded = push(&client, &url, token, &files.source, files.size).await?;
        pushes.push(started.elapsed());
        ensure!(
            uploaded.size == files.size && uploaded.sha256 == files.sha256,
            "the node stored {} bytes with sha256 {}, the source has {} bytes with sha256 {}",
            uploaded.size,
            uploaded.sha256,
            files.size,
            files.sha256
        );
    }

    let mut pulls = Vec::with_capacity(runs);
    let url = file_url(&base, 0);
    for run in 1..=runs {
        eprintln!("pull {run}/{runs} from {url} ...");
        let started = Instant::now();
        pull(&client, &url, token, &files.pulled).await?;
        pulls.push(started.elapsed());
        let pulled = files.pulled.clone();
        let (size, sha256) = blocking(move || data::sha256_file(&pulled)).await?;
        ensure!(
            size == files.size && sha256 == files.sha256,
            "pulled {size} bytes with sha256 {sha256}, the source has {} bytes with sha256 {}",
            files.size,
            files.sha256
        );
        tokio::fs::remove_file(&files.pulled).await?;
    }

    let size = files.size;
    let measurement = |label: &str, runs: &[Duration]| {
        Measurement::new(label, size, runs).context("a measurement without runs")
    };
    Ok((
        measurement("plain copy (limit)", &copies)?,
        measurement("arca push (cold, new bytes)", &pushes[..1])?,
        Measurement::new("arca push (dedup, same bytes)", size, &pushes[1..]),
        measurement("arca pull", &pulls)?,
    ))
}

/// The URL of the benchmark file in version `1.{run}`.
fn file_url(base: &str, run: usize) -> String {
    format!("{base}/generic/{REGISTRY}/{PACKAGE}/1.{run}/{FILENAME}")
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

/// Streams `url` into the new file `path` and fsyncs it.
async fn pull(client: &reqwest::Client, url: &str, token: &str, path: &Path) -> anyhow::Result<()> {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let mut response = expect_status(response, StatusCode::OK, &format!("GET {url}")).await?;
    let file = tokio::fs::File::create_new(path)
        .await
        .with_context(|| format!("creating {}", path.display()))?;
    let mut out = tokio::io::BufWriter::with_capacity(IO_BUFFER, file);
    while let Some(bytes) = response
        .chunk()
        .await
        .with_context(|| format!("reading the body of GET {url}"))?
    {
        out.write_all(&bytes)
            .await
            .with_context(|| format!("writing {}", path.display()))?;
    }
    out.flush()
        .await
        .with_context(|| format!("writing {}", path.display()))?;
    out.into_inner()
        .sync_all()
        .await
        .with_context(|| format!("syncing {}", path.display()))
}
