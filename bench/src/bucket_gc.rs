//! The `bucket-gc` benchmark: garbage collection of a node whose chunks live in a Garage bucket,
//! at a million chunk objects.
//!
//! Two nodes (release `arca-node` child processes) on one single-node Garage, each under its own
//! prefix. The *scan* node's prefix is filled with `--chunks` small chunk objects written straight
//! into the bucket (named by the blake3 of their bytes, as the node names chunks; no version refers
//! to them). Timed there: a collection with a grace period longer than their age (every object
//! listed and looked up, none old enough: the steady state of a bucket whose chunks are in use or
//! young), and a dry run with no grace period (every object a candidate, nothing removed). The
//! *removal* node's prefix gets `--garbage` objects; timed there: a collection with no grace period
//! (each moved to the trash: a copy and a delete) and the next one (the trash deleted in batches of
//! 1,000). The filling rate is Garage's own PUT rate for small objects, the limit of any writer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use arca_tests::garage::Garage;
use bytes::Bytes;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use serde_json::{Value, json};

use crate::common::{self, blocking};
use crate::scale::{self, NodeProcess, Signal};
use crate::storage;

/// Options of `arca-bench bucket-gc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Chunk objects in the scanned node's prefix.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    chunks: u64,
    /// Chunk objects the removal node collects.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    garbage: u64,
    /// Concurrent PUTs while filling the bucket.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// The `arca-node` binary [default: the one beside this binary].
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// Directory under which the nodes' data directories are made (and removed at the end).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

/// One node on its own prefix of the bucket.
struct PrefixNode {
    process: NodeProcess,
    token: String,
    prefix: &'static str,
}

impl PrefixNode {
    async fn start(
        bin: &std::path::Path,
        garage: &Garage,
        data_dir: PathBuf,
        prefix: &'static str,
    ) -> anyhow::Result<PrefixNode> {
        let (process, token) = storage::node_on_bucket(bin, garage, &data_dir, prefix).await?;
        Ok(PrefixNode {
            process,
            token,
            prefix,
        })
    }

    /// One collection, timed: its report and how long the request took.
    async fn collect(&self, body: Value) -> anyhow::Result<(Value, Duration)> {
        let started = Instant::now();
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/gc", self.process.url))
            .bearer_auth(&self.token)
            .json(&body)
            .timeout(Duration::from_secs(6 * 3600))
            .send()
            .await?;
        let elapsed = started.elapsed();
        ensure!(response.status().is_success(), "gc: {}", response.status());
        Ok((response.json().await?, elapsed))
    }
}

/// Writes `count` chunk objects under `prefix`'s chunk area, `writers` at a time, starting at
/// `first` (so two fillings never write the same bytes); returns how long it took.
async fn fill(
    store: &AmazonS3,
    prefix: &'static str,
    first: u64,
    count: u64,
    writers: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let store = Arc::new(store.clone());
    common::fan_out(writers, count, move |i| {
        let store = store.clone();
        async move {
            let mut data = vec![0u8; 64];
            data[..8].copy_from_slice(&(first + i).to_le_bytes());
            let name = blake3::hash(&data).to_hex().to_string();
            let key = ObjectPath::from(format!("{prefix}/chunks/{}/{name}", &name[..2]));
            store
                .put(&key, PutPayload::from(Bytes::from(data)))
                .await
                .with_context(|| format!("PUT {key}"))?;
            Ok(1)
        }
    })
    .await?;
    Ok(started.elapsed())
}

fn field(report: &Value, name: &str) -> u64 {
    report[name].as_u64().unwrap_or(0)
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = scale::node_binary(args.node_bin.as_deref())?;
    let (_root, dir) = common::temp_root(&args.dir)?;
    eprintln!("starting garage ...");
    let garage = blocking(|| Garage::start("arca-bench bucket-gc"))
        .await?
        .context("garage is not on PATH (bash scripts/install-clients.sh installs it)")?;
    let store = storage::client(&garage)?;

    eprintln!("writing {} chunk objects into the bucket ...", args.chunks);
    let filled = fill(&store, "scan", 0, args.chunks, args.writers).await?;
    let mut scan = PrefixNode::start(&bin, &garage, dir.join("scan"), "scan").await?;
    let (kept, kept_time) = scan.collect(json!({"grace_seconds": 86_400})).await?;
    ensure!(
        field(&kept, "scanned") == args.chunks && field(&kept, "kept_in_grace") == args.chunks,
        "a collection that keeps everything: {kept}"
    );
    let (dry, dry_time) = scan
        .collect(json!({"grace_seconds": 0, "dry_run": true}))
        .await?;
    ensure!(field(&dry, "removed") == args.chunks, "dry run: {dry}");
    scan.process.stop(Signal::Term).await?;

    eprintln!("writing {} garbage objects ...", args.garbage);
    fill(&store, "removal", args.chunks, args.garbage, args.writers).await?;
    let mut removal = PrefixNode::start(&bin, &garage, dir.join("removal"), "removal").await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (trashed, trash_time) = removal.collect(json!({"grace_seconds": 0})).await?;
    ensure!(
        field(&trashed, "removed") == args.garbage,
        "trashing: {trashed}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (purged, purge_time) = removal.collect(json!({"grace_seconds": 0})).await?;
    ensure!(
        field(&purged, "purged") == args.garbage,
        "purging: {purged}"
    );
    let left = garage.objects(&format!("{}/trash", removal.prefix)).await?;
    ensure!(left.is_empty(), "{} objects left in the trash", left.len());
    removal.process.stop(Signal::Term).await?;

    println!(
        "arca-bench bucket-gc  chunks={}  garbage={}  garage={}",
        args.chunks,
        args.garbage,
        garage.endpoint()
    );
    println!("{:<58} {:>10} {:>14}", "step", "seconds", "objects/s");
    let rows = [
        (
            "fill: PUT of small objects straight into Garage (the limit)",
            args.chunks,
            filled,
        ),
        (
            "collect, grace 1 day: every object listed and looked up",
            args.chunks,
            kept_time,
        ),
        (
            "dry run, no grace: every object a candidate",
            args.chunks,
            dry_time,
        ),
        (
            "collect, no grace: moved to the trash (copy + delete)",
            args.garbage,
            trash_time,
        ),
        (
            "next collect: the trash deleted, 1,000 a request",
            args.garbage,
            purge_time,
        ),
    ];
    for (step, count, elapsed) in rows {
        println!(
            "{step:<58} {:>10.2} {:>14.0}",
            elapsed.as_secs_f64(),
            per_second(count, elapsed)
        );
    }
    println!(
        "note: one node per prefix, release arca-node as a child process; Garage single-node \
         (sqlite metadata, defaults: no fsync); objects of 64 bytes named by their blake3, as chunks are"
    );
    drop(
        blocking(move || {
            drop(garage);
            Ok(())
        })
        .await,
    );
    Ok(())
}
