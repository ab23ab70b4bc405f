//! The `cluster` benchmark: a three-site cluster of nodes running in this process. Replication lag from
//! one site to another, chunk transfer over the nodes' QUIC transport against plain TCP, and Raft
//! metadata commits against a single-node cluster.

use std::collections::HashMap;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use arca_node::RunningNode;
use arca_node::transfer::tls::{ClusterIdentity, NODE_SERVER_NAME};
use arca_node::transfer::{PeerNetwork, PeerService, QuicTransport, Reply};
use arca_protocol::api::{ClusterStatus, JoinTokenInfo};
use arca_protocol::cluster::{PeerError, PeerRequest, PeerResponse};
use arca_protocol::{ChunkId, ChunkRef};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::common::{self, blocking, expect_status, metric, scrape};
use crate::data;
use crate::impairment::{Impairment, Relay};
use crate::report::{
    ClusterReport, CommitRow, Compared, LagRow, Latency, Measurement, NodeSite, Rates,
    ReplicationSize, TransferPair, WanRow, mib_per_second,
};

/// The registry every write goes to (generic, replicated eagerly to every site: the default policy).
const REGISTRY: &str = "bench";
/// Nodes of the cluster, one per site.
const NODES: u64 = 3;
const MIB: u64 = 1024 * 1024;
/// Blob sizes of the replication samples, and how many of each unless `--samples` says otherwise.
const SIZES_MIB: [(u64, u64); 2] = [(1, 20), (64, 5)];
/// Size of each chunk of the transfer measurement.
const CHUNK_MIB: u64 = 4;
/// Concurrencies of the transfer measurement.
const CONCURRENCIES: [usize; 2] = [1, 8];
/// Pause between two polls of a node.
const POLL: Duration = Duration::from_millis(1);
/// How long anything awaited (a voter, a replica, a readable blob) may take before the run fails.
const WAIT_LIMIT: Duration = Duration::from_secs(120);
/// A node's counter of bytes written to its chunk store.
const BYTES_WRITTEN: &str = "arca_chunk_bytes_written_total";
/// A node's gauge of the blobs its metadata references.
const BLOBS: &str = "arca_blobs";

/// A node's gauge of the blobs that an eager policy places at `site` and that no node there is
/// recorded (in the replicated metadata) as holding.
fn pending_at(site: &str) -> String {
    format!("arca_replication_pending_blobs{{site=\"{site}\"}}")
}

/// Options of `arca-bench cluster`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Blobs timed per size and kind (default 20 of 1 MiB and 5 of 64 MiB).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    samples: Option<u64>,
    /// 4 MiB chunks moved in each run of the transfer measurement.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096))]
    chunks: u64,
    /// Runs of each transfer measurement and of each row of metadata writes (the rows interleaved).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    runs: u64,
    /// Concurrent clients of the metadata writes.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    clients: u64,
    /// Seconds each row of metadata writes lasts.
    #[arg(long, default_value_t = 5.0, value_parser = common::positive)]
    seconds: f64,
    /// Directory under which a temporary directory for the nodes' data is made (and removed at the
    /// end). Defaults to the current directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Measure chunk transfer only (no cluster is started: no replication or metadata rows).
    #[arg(long)]
    transfer_only: bool,
}

/// What the node answers to a generic upload.
#[derive(Debug, Deserialize)]
struct Uploaded {
    size: u64,
    sha256: String,
}

/// Runs the benchmark and prints its report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let (temp, root) = common::temp_root(&args.dir)?;
    let measured = measure(&args, &root).await;
    let removed = temp
        .close()
        .with_context(|| format!("removing {}", root.display()));
    let report = measured?;
    removed?;
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
        "every node runs in this process on 127.0.0.1 and shares its CPU cores and disk; the sites are \
         names, with no network latency between them, so these are the software's floors, not WAN figures",
        "PUT: generic upload at the writer, answered 201 once its chunks are fsynced there and the version \
         is committed by a Raft majority",
        "limits: the blob's size of fresh bytes sent over a new loopback TCP connection to a \
         receiver that writes them into a new file on the nodes' disk (with an fsync in the second \
         row; the third row makes two such copies at once, as both other sites copy every blob \
         onto the one disk here), timed before each pair of samples",
        "readable: GETs at the reader every ~1 ms after the 201 until a 200 whose body has the blob's size \
         and sha256 (stamped at the last byte, verified after); the reader streams bytes it lacks from a \
         peer, so this is metadata lag plus a read-through, not full replication",
        "on the reader's disk: its /metrics arca_chunk_bytes_written_total grew by the blob's size (fresh \
         incompressible blobs, no dedup). For the read-polled blob the reads may have written the bytes \
         (a node of a replicated site keeps what it fetches on read, and /metrics exports no count of \
         fetches on read), so only the unread blobs, never read at the reader, time the eager replication \
         worker alone",
        "recorded at the reader's site: the writer's /metrics counts the new blob (arca_blobs) and \
         arca_replication_pending_blobs{site=<reader's site>} is back to 0, i.e. the reader's replication \
         worker found every chunk on its disk and its RecordReplicas command is committed and applied at \
         the writer",
        "each sample waits until every other node holds the blob before the next; a warm-up blob per size \
         is not counted; p99 is the nearest rank, so with 100 samples or fewer it is the slowest",
        "transfer: two arca-node QuicTransport endpoints (mutual TLS, one connection, one bidirectional \
         stream per FetchChunk, chunks answered from memory) against plain tokio TCP (TCP_NODELAY, no TLS, \
         the same shape: a 4-byte chunk index, then a 4-byte length and the chunk; the limit) and against \
         the same over TLS 1.3 on TCP with the nodes' own rustls configuration (the like-for-like \
         encrypted limit); 8 concurrent is 8 streams on one QUIC connection against 8 TCP connections; \
         every receiver fills a fresh buffer per chunk; an untimed first pass per row warms up and checks \
         every chunk's blake3; the rows take turns, run after run",
        "metadata writes: PUT /api/v1/registries/bench/metadata with one key per client (one SetMetadata \
         command each), answered after commit and apply; the single node is a one-voter cluster, three \
         nodes need two of three to persist the entry; a follower forwards the write to the leader over \
         QUIC. The single node runs beside the idle cluster and the rows take turns, run after run; \
         commits/s is the median run, latencies are over every run",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Everything measured on the three-node cluster.
struct ClusterFigures {
    nodes: Vec<NodeSite>,
    leader: Option<u64>,
    replication: Vec<ReplicationSize>,
    /// Metadata writes at the single node, at the leader, and at a follower.
    commits: Vec<CommitRow>,
}

/// The two phases, each starting and stopping what it needs: the nodes (the cluster and the single
/// node), then the transfer endpoints.
async fn measure(args: &Args, root: &Path) -> anyhow::Result<ClusterReport> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let clients = usize::try_from(args.clients).context("--clients is too large")?;

    let cluster = if args.transfer_only {
        ClusterFigures {
            nodes: Vec::new(),
            leader: None,
            replication: Vec::new(),
            commits: Vec::new(),
        }
    } else {
        let mut nodes = Vec::new();
        let clustered = on_cluster(args, root, &client, &mut nodes).await;
        let stopped = stop_all(nodes).await;
        let cluster = clustered?;
        stopped?;
        cluster
    };

    let chunks = usize::try_from(args.chunks).context("--chunks is too large")?;
    let runs = usize::try_from(args.runs).context("--runs is too large")?;
    eprintln!("chunk transfer: QUIC and TCP, {chunks} chunks of {CHUNK_MIB} MiB ...");
    let (transfer, wan) = transfer(chunks, runs).await?;

    let (writer, reader) = (1, NODES);
    Ok(ClusterReport {
        benchmark: "cluster",
        nodes: cluster.nodes,
        leader: cluster.leader,
        writer,
        reader,
        replication: cluster.replication,
        chunks,
        chunk_mib: CHUNK_MIB,
        runs,
        transfer,
        wan,
        clients,
        seconds: args.seconds,
        commits: cluster.commits,
        dir: root.display().to_string(),
        notes: notes(),
    })
}

/// Starts the cluster and then a single node (into `nodes`, so that the caller stops whatever
/// started), measures replication on the cluster, and metadata writes on both.
async fn on_cluster(
    args: &Args,
    root: &Path,
    client: &reqwest::Client,
    nodes: &mut Vec<RunningNode>,
) -> anyhow::Result<ClusterFigures> {
    eprintln!("starting {NODES} nodes ...");
    let token = start_cluster(root, client, nodes).await?;
    let status = wait_for_voters(client, &base(&nodes[0]), &token).await?;
    eprintln!(
        "cluster ready: leader {:?}, commit index {}",
        status.leader, status.commit_index
    );
    let endpoints = Endpoints {
        client: client.clone(),
        token: token.clone(),
        writer: base(&nodes[0]),
        reader: base(&nodes[2]),
        reader_site: format!("site-{NODES}"),
        others: (2..NODES)
            .map(|id| (base(&nodes[id as usize - 1]), format!("site-{id}")))
            .collect(),
    };
    common::create_registry(client, &endpoints.writer, &token, REGISTRY, "GENERIC").await?;
    wait_for_registry(&endpoints).await?;

    let mut replication = Vec::new();
    for (size_mib, default_samples) in SIZES_MIB {
        let samples = args.samples.unwrap_or(default_samples);
        eprintln!("replication: {samples} + {samples} blobs of {size_mib} MiB ...");
        replication.push(replication_lag(&endpoints, root, size_mib, samples).await?);
    }

    let clients = usize::try_from(args.clients).context("--clients is too large")?;
    let duration = Duration::from_secs_f64(args.seconds);
    let runs = usize::try_from(args.runs).context("--runs is too large")?;
    eprintln!("starting a single node, the baseline of the metadata writes ...");
    nodes.push(common::start_node(root.join("single")).await?);
    let single = &nodes[nodes.len() - 1];
    let single_token = common::admin_token(single).await?;
    common::create_registry(client, &base(single), &single_token, REGISTRY, "GENERIC").await?;
    let leader_id = status.leader.unwrap_or(1);
    let follower_id = (1..=NODES)
        .rev()
        .find(|id| *id != leader_id)
        .unwrap_or(NODES);
    let mut targets = vec![("1 node".to_owned(), base(single), single_token)];
    for (id, role) in [(leader_id, "leader"), (follower_id, "follower")] {
        let node = nodes
            .get(usize::try_from(id - 1)?)
            .filter(|_| id <= NODES)
            .with_context(|| {
                format!("the cluster names node {id}, which this run did not start")
            })?;
        targets.push((
            format!("{NODES} nodes, at node {id} ({role})"),
            base(node),
            token.clone(),
        ));
    }
    let mut loads: Vec<Vec<CommitLoad>> = targets.iter().map(|_| Vec::new()).collect();
    for run in 1..=runs {
        for ((label, base, token), loads) in targets.iter().zip(&mut loads) {
            eprintln!("metadata writes, run {run}/{runs}: {label} ...");
            loads.push(metadata_writes(client, base, token, clients, duration).await?);
        }
    }
    let commits = commit_rows(targets.into_iter().map(|(label, _, _)| label), loads)?;
    Ok(ClusterFigures {
        nodes: status
            .nodes
            .iter()
            .map(|node| NodeSite {
                id: node.id,
                site: node.site.clone(),
            })
            .collect(),
        leader: status.leader,
        replication,
        commits,
    })
}

/// `http://` and a node's HTTP address.
fn base(node: &RunningNode) -> String {
    format!("http://{}", node.http_addr)
}

/// The configuration of node `id`, at site `site-{id}`, with its data under `root`.
fn node_config(
    root: &Path,
    id: u64,
    join: Option<(String, String)>,
) -> anyhow::Result<arca_node::config::Config> {
    let (join, join_token) = join.unzip();
    Ok(arca_node::config::Config {
        http: "127.0.0.1:0".parse()?,
        quic: "127.0.0.1:0".parse()?,
        data_dir: root.join(format!("node-{id}")),
        node_id: id,
        site: format!("site-{id}"),
        join,
        join_token,
        ..Default::default()
    })
}

/// Founds the cluster with node 1 and joins the others through it, each with its own join token.
/// Returns node 1's admin token.
async fn start_cluster(
    root: &Path,
    client: &reqwest::Client,
    nodes: &mut Vec<RunningNode>,
) -> anyhow::Result<String> {
    let first = arca_node::start(node_config(root, 1, None)?)
        .await
        .context("starting node 1")?;
    nodes.push(first);
    let token = common::admin_token(&nodes[0]).await?;
    let founder = base(&nodes[0]);
    let via = nodes[0].quic_addr.to_string();
    for id in 2..=NODES {
        let url = format!("{founder}/api/v1/cluster/join-tokens");
        let what = format!("creating a join token (POST {url})");
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .json(&serde_json::json!({ "ttl_seconds": 600 }))
            .send()
            .await
            .with_context(|| what.clone())?;
        let join_token: JoinTokenInfo = expect_status(response, StatusCode::CREATED, &what)
            .await?
            .json()
            .await
            .with_context(|| what.clone())?;
        let node = arca_node::start(node_config(
            root,
            id,
            Some((via.clone(), join_token.token)),
        )?)
        .await
        .with_context(|| format!("starting node {id}, joining through {via}"))?;
        nodes.push(node);
    }
    Ok(token)
}

/// Waits until the cluster status at `base` shows every node as a voter with no lag.
async fn wait_for_voters(
    client: &reqwest::Client,
    base: &str,
    token: &str,
) -> anyhow::Result<ClusterStatus> {
    let url = format!("{base}/api/v1/cluster");
    let what = format!("GET {url}");
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let response = client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| what.clone())?;
        let status: ClusterStatus = expect_status(response, StatusCode::OK, &what)
            .await?
            .json()
            .await
            .with_context(|| what.clone())?;
        let ready = status.nodes.len() == NODES as usize
            && status
                .nodes
                .iter()
                .all(|node| node.membership == "voter" && node.lag == Some(0));
        if ready {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            bail!(
                "the cluster did not reach {NODES} voters without lag within {WAIT_LIMIT:?}: {}",
                serde_json::to_string(&status)?
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stops every node, the last started first, and returns the first failure.
async fn stop_all(nodes: Vec<RunningNode>) -> anyhow::Result<()> {
    let mut first_error = None;
    for node in nodes.into_iter().rev() {
        let addr = node.http_addr;
        if let Err(error) = node.shutdown().await {
            first_error
                .get_or_insert(anyhow::Error::new(error).context(format!("stopping {addr}")));
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Where the replication samples write and read.
struct Endpoints {
    client: reqwest::Client,
    token: String,
    /// The node every blob is pushed to.
    writer: String,
    /// The node every blob is read (or watched) at.
    reader: String,
    /// The reader's site.
    reader_site: String,
    /// The other nodes and their sites, waited for between samples.
    others: Vec<(String, String)>,
}

/// Waits until the reader knows the registry.
async fn wait_for_registry(at: &Endpoints) -> anyhow::Result<()> {
    let url = format!("{}/api/v1/registries/{REGISTRY}", at.reader);
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let response = at.client.get(&url).bearer_auth(&at.token).send().await;
        if response.is_ok_and(|r| r.status() == StatusCode::OK) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("GET {url} did not answer 200 within {WAIT_LIMIT:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One replication sample: times from the start of the PUT.
struct Sample {
    /// The PUT answered 201.
    acked: Duration,
    /// The reader served the whole, correct blob (read-polled samples only).
    readable: Option<Duration>,
    /// The reader's chunk store held the blob's bytes.
    held: Duration,
    /// The writer's metadata recorded the reader's site as holding the blob.
    recorded: Duration,
    /// GETs sent to the reader.
    polls: u64,
    /// 200s with a wrong body.
    wrong_bodies: u64,
}

/// Pushes `samples` read-polled and `samples` unread blobs of `size_mib` (alternately, after one
/// uncounted warm-up blob) and summarises their times, beside the limits: a TCP copy of as many
/// bytes over loopback into a file under `dir` (the nodes' disk), with and without an fsync.
async fn replication_lag(
    at: &Endpoints,
    dir: &Path,
    size_mib: u64,
    samples: u64,
) -> anyhow::Result<ReplicationSize> {
    let size = size_mib * MIB;
    sample(at, &format!("warmup-{size_mib}mib"), 0, size, true).await?;
    let copied = Bytes::from(
        data::random_bytes(
            "replication limit",
            &size.to_le_bytes(),
            usize::try_from(size)?,
        )
        .0,
    );
    let mut read = Vec::new();
    let mut unread = Vec::new();
    let mut copies = Vec::new();
    let mut durable_copies = Vec::new();
    let mut paired_copies = Vec::new();
    for version in 1..=samples {
        copies.push(tcp_copy_to_file(&copied, dir, false).await?);
        durable_copies.push(tcp_copy_to_file(&copied, dir, true).await?);
        // Both other sites copy each blob at once, onto the same disk here.
        let (first, second) = tokio::join!(
            tcp_copy_to_file(&copied, dir, true),
            tcp_copy_to_file(&copied, dir, true)
        );
        paired_copies.push(first?.max(second?));
        read.push(sample(at, &format!("read-{size_mib}mib"), version, size, true).await?);
        unread.push(sample(at, &format!("unread-{size_mib}mib"), version, size, false).await?);
    }
    let micros = |times: Vec<Duration>| {
        times
            .into_iter()
            .map(|t| u32::try_from(t.as_micros()).unwrap_or(u32::MAX))
            .collect::<Vec<_>>()
    };
    let row = |label: &str, times: Vec<Duration>| -> anyhow::Result<LagRow> {
        Ok(LagRow {
            label: label.to_owned(),
            latency: Latency::from_micros(micros(times)).context("no samples")?,
        })
    };
    let readable: Vec<Duration> = read
        .iter()
        .map(|s| s.readable.context("a read-polled sample was not read"))
        .collect::<anyhow::Result<_>>()?;
    let rows = vec![
        row("limit: TCP copy into a file", copies)?,
        row("limit: TCP copy into a file + fsync", durable_copies)?,
        row("limit: 2 such copies at once (both sites)", paired_copies)?,
        row(
            "PUT at writer (start -> 201)",
            read.iter().map(|s| s.acked).collect(),
        )?,
        row("PUT start -> readable at reader", readable.clone())?,
        row(
            "201 -> readable at reader",
            read.iter()
                .zip(&readable)
                .map(|(s, r)| r.saturating_sub(s.acked))
                .collect(),
        )?,
        row(
            "201 -> on reader's disk (read-polled blob)",
            read.iter()
                .map(|s| s.held.saturating_sub(s.acked))
                .collect(),
        )?,
        row(
            "201 -> recorded at reader's site (read-polled)",
            read.iter()
                .map(|s| s.recorded.saturating_sub(s.acked))
                .collect(),
        )?,
        row(
            "201 -> on reader's disk (unread blob)",
            unread
                .iter()
                .map(|s| s.held.saturating_sub(s.acked))
                .collect(),
        )?,
        row(
            "201 -> recorded at reader's site (unread blob)",
            unread
                .iter()
                .map(|s| s.recorded.saturating_sub(s.acked))
                .collect(),
        )?,
    ];
    Ok(ReplicationSize {
        size_mib,
        samples: read.len(),
        get_polls: read.iter().map(|s| s.polls).sum(),
        wrong_bodies: read.iter().map(|s| s.wrong_bodies).sum(),
        rows,
    })
}

/// Sends `bytes` over a fresh loopback TCP connection to a receiver that writes them into a new
/// file under `dir` (and fsyncs it when `durable`); the time from connecting until the receiver is
/// done. The file is removed afterwards.
async fn tcp_copy_to_file(bytes: &Bytes, dir: &Path, durable: bool) -> anyhow::Result<Duration> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let path = dir.join(format!("tcp-copy-{}", address.port()));
    // The receiver is plain blocking code: `std::io::copy` from a socket to a file is the kernel's
    // own splice where it can be.
    let receiver = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            let (mut stream, _) = listener.accept()?;
            let mut file = std::fs::File::create(&path)?;
            std::io::copy(&mut stream, &mut file)?;
            if durable {
                file.sync_data()?;
            }
            anyhow::Ok(())
        })
    };
    let started = Instant::now();
    let mut stream = connect_tcp(address).await?;
    stream.write_all(bytes).await?;
    stream.shutdown().await?;
    receiver.await.context("the TCP receiver")??;
    let elapsed = started.elapsed();
    tokio::fs::remove_file(&path).await?;
    Ok(elapsed)
}

/// Pushes one fresh blob of `size` bytes as `{package}/{version}/blob.bin` at the writer; then, at
/// once, polls the reader's chunk store counter until it grew by `size`, the writer's metadata until
/// it records the reader's site as holding the blob, and (when `read`) GETs the blob at the reader
/// until it comes back whole and correct; then waits until every other node holds it too.
async fn sample(
    at: &Endpoints,
    package: &str,
    version: u64,
    size: u64,
    read: bool,
) -> anyhow::Result<Sample> {
    let path = format!("/generic/{REGISTRY}/{package}/{version}/blob.bin");
    let (bytes, sha256) = blocking({
        let seed = path.clone();
        let size = usize::try_from(size)?;
        move || {
            Ok(data::random_bytes(
                "arca-bench 2025 cluster blob",
                seed.as_bytes(),
                size,
            ))
        }
    })
    .await?;
    let bytes = Bytes::from(bytes);
    let reader_before = gauge(&at.client, &at.reader, BYTES_WRITTEN).await?;
    let writer_blobs_before = gauge(&at.client, &at.writer, BLOBS).await?;
    let mut others_before = Vec::new();
    for (other, _) in &at.others {
        others_before.push(gauge(&at.client, other, BYTES_WRITTEN).await?);
    }

    let url = format!("{}{path}", at.writer);
    let what = format!("PUT {url}");
    let started = Instant::now();
    let response = at
        .client
        .put(&url)
        .bearer_auth(&at.token)
        .body(bytes)
        .send()
        .await
        .with_context(|| what.clone())?;
    let uploaded: Uploaded = expect_status(response, StatusCode::CREATED, &what)
        .await?
        .json()
        .await
        .with_context(|| what.clone())?;
    let acked = started.elapsed();
    ensure!(
        uploaded.size == size && uploaded.sha256 == sha256,
        "{what}: stored {} bytes with sha256 {}, sent {size} with {sha256}",
        uploaded.size,
        uploaded.sha256
    );

    let read_url = format!("{}{path}", at.reader);
    let readable = async {
        if read {
            poll_readable(at, &read_url, size, &sha256).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let held = poll_metrics(&at.client, &at.reader, |text| {
        Ok(metric(text, BYTES_WRITTEN).context(BYTES_WRITTEN)? >= reader_before + size)
    });
    let recorded = poll_metrics(&at.client, &at.writer, |text| {
        recorded_at(text, &at.reader_site, writer_blobs_before + 1)
    });
    let (readable, held, recorded) = tokio::join!(readable, held, recorded);
    let held = held.with_context(|| format!("waiting for the reader to hold {path}"))?;
    let recorded = recorded.with_context(|| {
        format!(
            "waiting for the writer to record {} holding {path}",
            at.reader_site
        )
    })?;
    let readable = readable?;
    for ((other, site), before) in at.others.iter().zip(others_before) {
        poll_metrics(&at.client, other, |text| {
            Ok(metric(text, BYTES_WRITTEN).context(BYTES_WRITTEN)? >= before + size)
        })
        .await
        .with_context(|| format!("waiting for {other} to hold {path}"))?;
        poll_metrics(&at.client, &at.writer, |text| {
            recorded_at(text, site, writer_blobs_before + 1)
        })
        .await
        .with_context(|| format!("waiting for the writer to record {site} holding {path}"))?;
    }
    let (readable, polls, wrong_bodies) = readable.map_or((None, 0, 0), |(at, polls, wrong)| {
        (Some(at.duration_since(started)), polls, wrong)
    });
    Ok(Sample {
        acked,
        readable,
        held: held.duration_since(started),
        recorded: recorded.duration_since(started),
        polls,
        wrong_bodies,
    })
}

/// GETs `url` every [`POLL`] until it answers 200 with `size` bytes whose sha256 is `sha256`. Returns
/// when the last byte of that answer arrived, the GETs sent and the 200s with a wrong body.
async fn poll_readable(
    at: &Endpoints,
    url: &str,
    size: u64,
    sha256: &str,
) -> anyhow::Result<(Instant, u64, u64)> {
    let deadline = Instant::now() + WAIT_LIMIT;
    let (mut polls, mut wrong_bodies) = (0u64, 0u64);
    loop {
        polls += 1;
        let attempt = async {
            let response = at.client.get(url).bearer_auth(&at.token).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            anyhow::Ok((status, body, Instant::now()))
        };
        let last = match attempt.await {
            Ok((StatusCode::OK, body, arrived)) => {
                let got = body.len();
                let digest = blocking(move || Ok(hex::encode(Sha256::digest(&body)))).await?;
                if got as u64 == size && digest == sha256 {
                    return Ok((arrived, polls, wrong_bodies));
                }
                wrong_bodies += 1;
                format!("200 with {got} bytes of sha256 {digest}")
            }
            Ok((status, body, _)) => format!("{status}: {}", String::from_utf8_lossy(&body)),
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= deadline {
            bail!(
                "GET {url} gave no correct answer within {WAIT_LIMIT:?} ({polls} GETs, \
                 {wrong_bodies} wrong bodies; last: {last})"
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Scrapes the `/metrics` of the node at `base` every [`POLL`] until `done` says yes, and returns
/// when it did.
async fn poll_metrics(
    client: &reqwest::Client,
    base: &str,
    done: impl Fn(&str) -> anyhow::Result<bool>,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let text = scrape(client, base).await?;
        if done(&text).with_context(|| format!("{base}/metrics lacks a sample"))? {
            return Ok(Instant::now());
        }
        if Instant::now() >= deadline {
            bail!("{base}/metrics did not show what was awaited within {WAIT_LIMIT:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// True when metrics `text` count at least `blobs` blobs and none pending at `site`: the blob
/// committed last is recorded as held there.
fn recorded_at(text: &str, site: &str, blobs: u64) -> anyhow::Result<bool> {
    let pending = pending_at(site);
    Ok(metric(text, BLOBS).context(BLOBS)? >= blobs
        && metric(text, &pending).with_context(|| pending.clone())? == 0)
}

/// The sample `name` of the node at `base`.
async fn gauge(client: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<u64> {
    metric(&scrape(client, base).await?, name)
        .with_context(|| format!("{base}/metrics has no {name} sample"))
}

/// What one row of metadata writes produced.
struct CommitLoad {
    micros: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

/// One row per target of the metadata writes, the first (the single node) being the baseline of
/// the ratios.
fn commit_rows(
    labels: impl IntoIterator<Item = String>,
    loads: Vec<Vec<CommitLoad>>,
) -> anyhow::Result<Vec<CommitRow>> {
    let mut rows: Vec<CommitRow> = Vec::new();
    for (label, runs) in labels.into_iter().zip(loads) {
        let rates = runs
            .iter()
            .map(|run| run.micros.len() as f64 / run.elapsed.as_secs_f64().max(1e-9))
            .collect();
        let commits_per_s = Rates::new(rates).context("no runs of metadata writes")?;
        let baseline = rows
            .first()
            .map_or(commits_per_s.median, |single| single.commits_per_s.median);
        rows.push(CommitRow {
            label,
            commits: runs.iter().map(|run| run.micros.len() as u64).sum(),
            seconds: runs.iter().map(|run| run.elapsed.as_secs_f64()).sum(),
            ratio_to_single: commits_per_s.median / baseline,
            commits_per_s,
            errors: runs.iter().map(|run| run.errors).sum(),
            first_error: runs.iter().find_map(|run| run.first_error.clone()),
            latency: Latency::from_micros(runs.into_iter().flat_map(|run| run.micros).collect()),
        });
    }
    Ok(rows)
}

/// `clients` concurrent clients PUT one metadata key each (a counter) on the registry at `base`, one
/// write after the other, until `duration` has passed.
async fn metadata_writes(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<CommitLoad> {
    let url: Arc<str> = format!("{base}/api/v1/registries/{REGISTRY}/metadata").into();
    let token: Arc<str> = token.into();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = JoinSet::new();
    for id in 0..clients {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.spawn(async move {
            let key = format!("bench.client-{id}");
            let (mut micros, mut errors, mut first_error) = (Vec::new(), 0u64, None);
            let mut count = 0u64;
            while Instant::now() < deadline {
                count += 1;
                let body = serde_json::json!({ "metadata": { key.as_str(): count.to_string() } });
                let sent = Instant::now();
                let answer = async {
                    let response = client
                        .put(&*url)
                        .bearer_auth(&*token)
                        .json(&body)
                        .send()
                        .await?;
                    let status = response.status();
                    let text = response.text().await?;
                    anyhow::Ok((status, text))
                };
                match answer.await {
                    Ok((StatusCode::OK, _)) => {
                        micros.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                    }
                    Ok((status, text)) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("PUT {url}: {status}: {text}"));
                    }
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("PUT {url}: {error:#}"));
                    }
                }
            }
            (micros, errors, first_error)
        });
    }
    let mut load = CommitLoad {
        micros: Vec::new(),
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    };
    while let Some(done) = tasks.join_next().await {
        let (mut micros, errors, first_error) = done.context("write client panicked")?;
        load.micros.append(&mut micros);
        load.errors += errors;
        if load.first_error.is_none() {
            load.first_error = first_error;
        }
    }
    load.elapsed = started.elapsed();
    Ok(load)
}

/// Answers [`PeerRequest::FetchChunk`] from memory.
#[derive(Default)]
struct ChunkServer {
    chunks: HashMap<ChunkId, Bytes>,
}

impl PeerService for ChunkServer {
    fn handle(&self, request: PeerRequest) -> BoxFuture<'_, Reply> {
        Box::pin(async move {
            match request {
                PeerRequest::FetchChunk(id) => match self.chunks.get(&id) {
                    Some(bytes) => Reply::Chunk(bytes.clone()),
                    None => PeerError::NotFound(format!("chunk {id}")).into(),
                },
                PeerRequest::Ping => Reply::Message(PeerResponse::Pong),
                _ => PeerError::Invalid("this benchmark endpoint only serves chunks".to_owned())
                    .into(),
            }
        })
    }
}

/// `count` chunks of random bytes, [`CHUNK_MIB`] MiB each, with their references.
fn random_chunks(count: usize) -> anyhow::Result<Vec<(ChunkRef, Bytes)>> {
    let size = usize::try_from(CHUNK_MIB * MIB)?;
    (0..count)
        .map(|index| {
            let (bytes, _) = data::random_bytes(
                "arca-bench 2025 cluster transfer chunk",
                &(index as u64).to_le_bytes(),
                size,
            );
            let chunk = ChunkRef {
                id: ChunkId(*blake3::hash(&bytes).as_bytes()),
                size: u32::try_from(size)?,
            };
            Ok((chunk, Bytes::from(bytes)))
        })
        .collect()
}

/// Moves the same chunks over QUIC (two node transports), over plain TCP and over TLS on TCP (the
/// nodes' own TLS configuration, with rustls), at each concurrency, and stops every server whatever
/// happened.
async fn transfer(count: usize, runs: usize) -> anyhow::Result<(Vec<TransferPair>, Vec<WanRow>)> {
    let chunks = blocking(move || random_chunks(count)).await?;
    let refs: Arc<Vec<ChunkRef>> = Arc::new(chunks.iter().map(|(chunk, _)| *chunk).collect());
    let bodies: Arc<Vec<Bytes>> = Arc::new(chunks.iter().map(|(_, bytes)| bytes.clone()).collect());
    let server_identity = ClusterIdentity::create_cluster(1)?;
    let client_identity = ClusterIdentity::from_grant(server_identity.grant(2)?);
    let acceptor = TlsAcceptor::from(Arc::new(server_identity.tls_server_config()?));
    let connector = TlsConnector::from(Arc::new(client_identity.tls_client_config()?));
    let server = QuicTransport::bind("127.0.0.1:0".parse()?).context("binding a QUIC endpoint")?;
    let client = QuicTransport::bind("127.0.0.1:0".parse()?).context("binding a QUIC endpoint")?;
    let bind = || async {
        TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a TCP listener")
    };
    let (tcp_listener, tls_listener) = (bind().await?, bind().await?);
    let (tcp_addr, tls_addr) = (tcp_listener.local_addr()?, tls_listener.local_addr()?);
    let tcp_server = tokio::spawn(serve_tcp(tcp_listener, bodies.clone(), None));
    let tls_server = tokio::spawn(serve_tcp(tls_listener, bodies, Some(acceptor)));
    let measured = async {
        server.serve(
            &server_identity,
            Arc::new(ChunkServer {
                chunks: chunks
                    .into_iter()
                    .map(|(chunk, bytes)| (chunk.id, bytes))
                    .collect(),
            }),
        )?;
        client.serve(&client_identity, Arc::new(ChunkServer::default()))?;
        let quic_addr: Arc<str> = server.local_addr()?.to_string().into();
        let bytes = refs.iter().map(|chunk| u64::from(chunk.size)).sum::<u64>();
        let mut pairs = Vec::new();
        for concurrency in CONCURRENCIES {
            let (mut tcp_streams, mut tls_streams) = (Vec::new(), Vec::new());
            for _ in 0..concurrency {
                tcp_streams.push(connect_tcp(tcp_addr).await?);
                let tls = connect_tcp(tls_addr).await?;
                let name = ServerName::try_from(NODE_SERVER_NAME)?;
                tls_streams.push(connector.connect(name, tls).await?);
            }
            // Untimed: connects QUIC, and checks every chunk every way.
            tcp_streams = tcp_pass(tcp_streams, &refs, true).await?.0;
            tls_streams = tcp_pass(tls_streams, &refs, true).await?.0;
            quic_pass(&client, &quic_addr, &refs, concurrency, true).await?;
            let (mut tcp_times, mut tls_times, mut quic_times) =
                (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                let (back, took) = tcp_pass(tcp_streams, &refs, false).await?;
                tcp_streams = back;
                tcp_times.push(took);
                let (back, took) = tcp_pass(tls_streams, &refs, false).await?;
                tls_streams = back;
                tls_times.push(took);
                quic_times.push(quic_pass(&client, &quic_addr, &refs, concurrency, false).await?);
            }
            let plural = if concurrency == 1 { "" } else { "s" };
            let measurement = |label: String, times: &[Duration]| {
                Measurement::new(&label, bytes, times).context("no runs")
            };
            let tcp = measurement(format!("tcp, {concurrency} connection{plural}"), &tcp_times)?;
            let tls = measurement(
                format!("tls over tcp, {concurrency} connection{plural}"),
                &tls_times,
            )?;
            let quic = measurement(
                format!(
                    "quic, {concurrency} fetch{} at once",
                    if concurrency == 1 { "" } else { "es" }
                ),
                &quic_times,
            )?;
            pairs.push(TransferPair {
                concurrency,
                quic_to_tls_median: quic.median_mib_per_s / tls.median_mib_per_s,
                quic: Compared::new(quic, &tcp),
                tls: Compared::new(tls, &tcp),
                tcp,
            });
        }
        let wan = over_wan(&server, &client_identity, &refs, runs).await?;
        anyhow::Ok((pairs, wan))
    }
    .await;
    tcp_server.abort();
    tls_server.abort();
    client.close().await;
    server.close().await;
    measured
}

/// Impaired links the QUIC transfer is measured over: (round trip, loss).
const WAN_LINKS: [(u64, f64); 4] = [(50, 0.001), (50, 0.01), (150, 0.001), (150, 0.01)];
/// Chunks fetched over each impaired link per run (64 MiB of 4 MiB chunks).
const WAN_CHUNKS: usize = 16;
/// Fetches in flight over an impaired link, as the replication worker runs them.
const WAN_CONCURRENCY: usize = 8;

/// Fetches [`WAN_CHUNKS`] chunks from `server` through each of [`WAN_LINKS`], `runs` times, each
/// run on a new connection (a new congestion window) from a new client endpoint.
async fn over_wan(
    server: &Arc<QuicTransport>,
    identity: &ClusterIdentity,
    refs: &Arc<Vec<ChunkRef>>,
    runs: usize,
) -> anyhow::Result<Vec<WanRow>> {
    let refs: Arc<Vec<ChunkRef>> = Arc::new(refs.iter().take(WAN_CHUNKS).copied().collect());
    let bytes = refs.iter().map(|chunk| u64::from(chunk.size)).sum::<u64>();
    let mut rows = Vec::new();
    for (round_trip_ms, loss) in WAN_LINKS {
        let impairment = Impairment {
            round_trip: Duration::from_millis(round_trip_ms),
            loss,
        };
        let mut times = Vec::new();
        for run in 1..=runs {
            eprintln!(
                "chunk transfer over a {round_trip_ms} ms, {}% loss link, run {run}/{runs} ...",
                loss * 100.0
            );
            let relay = Relay::start(server.local_addr()?, impairment).await?;
            let client =
                QuicTransport::bind("127.0.0.1:0".parse()?).context("binding a QUIC endpoint")?;
            client.serve(identity, Arc::new(ChunkServer::default()))?;
            let addr: Arc<str> = relay.addr.to_string().into();
            let took = quic_pass(&client, &addr, &refs, WAN_CONCURRENCY, true).await;
            client.close().await;
            times.push(took?);
        }
        let label = format!("quic, {round_trip_ms} ms rtt, {}% loss", loss * 100.0);
        let measurement = Measurement::new(&label, bytes, &times).context("no runs")?;
        let median_seconds = mib_per_second(bytes, 1.0) / measurement.median_mib_per_s;
        rows.push(WanRow {
            round_trip_ms,
            loss_percent: loss * 100.0,
            mib: bytes / MIB,
            concurrency: WAN_CONCURRENCY,
            median_round_trips: median_seconds * 1000.0 / round_trip_ms as f64,
            median_seconds,
            measurement,
        });
    }
    Ok(rows)
}

/// A TCP connection to `addr` with Nagle's algorithm off.
async fn connect_tcp(addr: std::net::SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Serves chunks over TCP, in TLS when `tls` is given: per request, a big-endian u32 index in; a
/// u32 length and the chunk out.
async fn serve_tcp(listener: TcpListener, chunks: Arc<Vec<Bytes>>, tls: Option<TlsAcceptor>) {
    // Owned here, so that aborting this task ends every connection too.
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let (chunks, tls) = (chunks.clone(), tls.clone());
        connections.spawn(async move {
            let served = async {
                stream.set_nodelay(true)?;
                match tls {
                    Some(acceptor) => answer_chunks(acceptor.accept(stream).await?, &chunks).await,
                    None => answer_chunks(stream, &chunks).await,
                }
            };
            let result: std::io::Result<()> = served.await;
            if let Err(error) = result {
                eprintln!("tcp chunk server: {error}");
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// Answers chunk requests on one connection until the client closes it.
async fn answer_chunks<S>(mut stream: S, chunks: &[Bytes]) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let index = match stream.read_u32().await {
            Ok(index) => index as usize,
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error),
        };
        let chunk = chunks.get(index).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no such chunk")
        })?;
        stream.write_u32(chunk.len() as u32).await?;
        stream.write_all(chunk).await?;
        stream.flush().await?;
    }
}

/// Fetches every chunk once over `streams` (one request at a time on each), and hands the streams
/// back with the time it took.
async fn tcp_pass<S>(
    streams: Vec<S>,
    refs: &Arc<Vec<ChunkRef>>,
    verify: bool,
) -> anyhow::Result<(Vec<S>, Duration)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for mut stream in streams {
        let (next, refs) = (next.clone(), refs.clone());
        tasks.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = refs.get(index) else {
                    return anyhow::Ok(stream);
                };
                stream.write_u32(u32::try_from(index)?).await?;
                stream.flush().await?;
                let size = stream.read_u32().await? as usize;
                ensure!(
                    size == chunk.size as usize,
                    "tcp: chunk {index} has {size} bytes"
                );
                let mut data = BytesMut::zeroed(size);
                stream.read_exact(&mut data).await?;
                if verify {
                    ensure!(
                        blake3::hash(&data).as_bytes() == &chunk.id.0,
                        "tcp: chunk {index} has the wrong bytes"
                    );
                }
            }
        });
    }
    let mut back = Vec::new();
    while let Some(done) = tasks.join_next().await {
        back.push(done.context("tcp fetch task panicked")??);
    }
    Ok((back, started.elapsed()))
}

/// Fetches every chunk once from the QUIC endpoint at `addr` with `concurrency` fetches in flight,
/// and returns the time it took.
async fn quic_pass(
    client: &Arc<QuicTransport>,
    addr: &Arc<str>,
    refs: &Arc<Vec<ChunkRef>>,
    concurrency: usize,
    verify: bool,
) -> anyhow::Result<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        let (client, addr, next, refs) = (client.clone(), addr.clone(), next.clone(), refs.clone());
        tasks.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = refs.get(index) else {
                    return anyhow::Ok(());
                };
                let data = client
                    .fetch_chunk(&addr, *chunk)
                    .await
                    .with_context(|| format!("quic: fetching chunk {index}"))?;
                ensure!(
                    data.len() == chunk.size as usize,
                    "quic: chunk {index} has {} bytes",
                    data.len()
                );
                if verify {
                    ensure!(
                        blake3::hash(&data).as_bytes() == &chunk.id.0,
                        "quic: chunk {index} has the wrong bytes"
                    );
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("quic fetch task panicked")??;
    }
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_openmetrics_text() -> anyhow::Result<()> {
        let text = "# HELP arca_chunk_bytes_written Bytes written to the chunk store\n\
                    # TYPE arca_chunk_bytes_written counter\n\
                    arca_chunk_bytes_written_total 1048576\n\
                    arca_chunks_written_total 4\n\
                    arca_blobs 7\n\
                    arca_replication_pending_blobs{site=\"site-2\"} 1\n\
                    arca_replication_pending_blobs{site=\"site-3\"} 0\n\
                    # EOF\n";
        assert_eq!(metric(text, BYTES_WRITTEN), Some(1_048_576));
        assert_eq!(metric(text, "arca_chunks_written_total"), Some(4));
        assert_eq!(metric(text, "arca_chunks"), None);
        assert_eq!(metric(text, &pending_at("site-2")), Some(1));
        assert_eq!(metric("arca_x_total 2.0e3\n", "arca_x_total"), Some(2000));
        assert!(recorded_at(text, "site-3", 7)?);
        assert!(!recorded_at(text, "site-3", 8)?);
        assert!(!recorded_at(text, "site-2", 7)?);
        assert!(recorded_at(text, "site-9", 7).is_err());
        Ok(())
    }
}
