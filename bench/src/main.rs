//! `arca-bench`: measures Arca against the limits and peers it is compared with.
//!
//! `generic` pushes and pulls one large file (1 GiB by default) through a real Arca node started in this
//! process, and compares both with a plain file copy on the same disk — the limit a registry that writes
//! every byte to disk (and fsyncs it) can approach. It prints the best and median throughput of each, in
//! MiB/s, and their ratios to the copy:
//!
//! ```text
//! cargo run --release -p arca-bench -- generic --size-mib 1024
//! ```
//!
//! Options: `--size-mib N` (file size), `--runs N` (repetitions of each measurement, default 3),
//! `--dir PATH` (where the temporary node data, source file and copies go; default the current
//! directory, so the work tree's disk), `--json` (machine-readable output instead of the table),
//! `--storage local|garage` and `--node-bin PATH` (below).
//!
//! `--storage garage` (for `generic` and `oci`; the default is `local`) keeps the node's chunks in
//! an S3 bucket: a single-node Garage (`garage`, installed by `scripts/install-clients.sh`) is
//! started on 127.0.0.1 and the release `arca-node` (beside this binary, or `--node-bin`) runs as a
//! child process with `--storage s3://...` and the bucket's credentials. The benchmark's own rows
//! are measured as with `local`; then, each run on fresh bytes, Arca's push and pull are timed
//! beside the same bytes PUT into and GET from the bucket directly with `object_store` (the limit),
//! and it prints "Arca push / direct PUT" and "Arca pull / direct GET" (median and min-max of the
//! runs, and the ratio of the medians), the bytes the bucket holds against the bytes pushed, and how
//! the node's `arca_storage_*` counters (requests by kind, their time, bytes) grew in each phase:
//!
//! ```text
//! cargo build --release -p arca-node -p arca-bench
//! ./target/release/arca-bench generic --storage garage --size-mib 256
//! ./target/release/arca-bench oci --storage garage
//! ```
//!
//! `oci` compares the OCI Distribution API (Docker Registry V2) of a node started in this process with
//! the CNCF distribution registry (`docker-registry`, 2.8 from Debian, started as a child process), both
//! on 127.0.0.1 and storing on the same disk. Against each it measures, `--runs` times (default 3),
//! pushing an image of 4 fresh 64 MiB incompressible layers (uploaded concurrently, POST then one
//! streamed PUT each, then the manifest; MiB/s), pulling layers with 1 client (8 pulls) and with 32
//! concurrent clients (64 pulls; MiB/s), and GETting the manifest by tag with 64 concurrent clients for
//! `--seconds` (default 5; req/s), and prints the medians and their ratio Arca/distribution (higher is
//! better for Arca):
//!
//! ```text
//! cargo run --release -p arca-bench -- oci
//! ```
//!
//! Options: `--layer-mib N`, `--layers N`, `--runs N`, `--scale F` (multiplies the number of pulls, for
//! shorter runs), `--seconds S`, `--dir PATH`, `--json`, `--storage local|garage`, `--node-bin PATH`.
//!
//! `packages` compares the npm and PyPI registries of a node started in this process with verdaccio
//! 6.5.2 (npm) and pypiserver (PyPI), both child processes on 127.0.0.1 storing under `--dir` (install
//! them with `scripts/install-bench-peers.sh`, into `/opt/arca-bench-peers` or `ARCA_BENCH_PEERS`). It
//! publishes `--packages` (default 1000) npm packages and as many PyPI projects of `--versions`
//! (default 10) tiny versions each (npm publish documents to Arca and verdaccio, twine-style uploads to
//! Arca, the same wheels written into pypiserver's directory; setup, not timed), reads every packument
//! and simple-index page back once, and then, with `--clients` (default 64) concurrent clients for
//! `--seconds` (default 5) per row, GETs random abbreviated packuments, tarballs, simple-index pages and
//! wheels. It prints req/s of each, their ratio Arca/peer, and p50/p99 latencies:
//!
//! ```text
//! bash scripts/install-bench-peers.sh
//! cargo run --release -p arca-bench -- packages
//! cargo run --release -p arca-bench -- packages --packages 100 --seconds 3   # quicker
//! ```
//!
//! Options: `--packages N`, `--versions N`, `--clients N`, `--seconds S`, `--runs N` (default 1),
//! `--peers PATH`, `--dir PATH`, `--json`.
//!
//! `formats` publishes `--packages` (default 1000) crates and as many Helm charts, Go modules, gems
//! and Composer packages of `--versions` (default 10) versions each to a node started in this
//! process, reads every Cargo index file, `.crate`, `index.yaml`, chart, module version list and
//! zip, gem info file, `.gem`, Composer metadata file and dist back, serves the same bytes from memory with a plain static server,
//! and times random GETs of each against both:
//!
//! ```text
//! cargo run --release -p arca-bench -- formats
//! cargo run --release -p arca-bench -- formats --packages 100 --seconds 3   # quicker
//! ```
//!
//! `installs` times the real go command (`go mod download all`, empty module cache) fetching a
//! graph of `--modules` (default 60) modules of two versions each through a Go registry of a node
//! started in this process, against the same files read from disk with `GOPROXY=file://` (the
//! limit), `--runs` (default 3) times each, alternating:
//!
//! ```text
//! cargo run --release -p arca-bench -- installs
//! ```
//!
//! `debian` pushes `--packages` (default 10,000) generated `.deb`s to a Debian registry of a node
//! run as a child process and includes them into a reprepro repository (`reprepro`, installed by
//! `scripts/install-clients.sh`), then times, `--runs` (default 3) times, adding one more package:
//! Arca's push and the time until its `InRelease` and `Packages.gz` reflect it, against one
//! `reprepro includedeb`; and GETs/s of `Packages.gz` and `Packages` against reprepro's files served
//! by a static server:
//!
//! ```text
//! cargo build --release -p arca-node -p arca-client -p arca-bench && ./target/release/arca-bench debian
//! ```
//!
//! Options: `--packages N`, `--runs N`, `--clients N`, `--seconds S`, `--batch N`, `--reprepro
//! PATH`, `--node-bin PATH`, `--dir PATH`, `--json`.
//!
//! `rpm` does the same for dnf/yum repositories: `--packages` (default 10,000) generated `.rpm`s
//! pushed to an RPM registry and indexed by `createrepo_c --no-database`; `--runs` times one more
//! package: Arca's push and the time until `repodata/repomd.xml`, its `.asc` and the primary it
//! lists reflect it, against `createrepo_c --update` plus `gpg --detach-sign` of `repomd.xml`; and
//! GETs/s of `primary.xml.gz` against createrepo_c's served by a static server:
//!
//! ```text
//! ./target/release/arca-bench rpm
//! ```
//!
//! `apt-install` runs the real apt-get: `apt-get update` and `apt-get install --download-only` of
//! `--package` (default `git`, ~50 real packages downloaded once from the machine's apt sources)
//! through a Debian registry, against the same `.deb`s in a reprepro repository served as plain
//! files, `--runs` (default 3) fresh apt roots each:
//!
//! ```text
//! ./target/release/arca-bench apt-install
//! ```
//!
//! `cluster` starts a cluster of three nodes in this process (sites `site-1` to `site-3`, one node
//! each, all on 127.0.0.1, data under `--dir`) and measures three things. Replication: fresh
//! incompressible blobs of 1 MiB (`--samples`, default 20) and 64 MiB (default 5) are PUT at node 1
//! and GET at node 3 until it serves them whole and sha256-correct; it prints p50/p99/max of the PUT,
//! of "201 -> readable at node 3", of "201 -> on node 3's disk" (its `/metrics`
//! `arca_chunk_bytes_written_total`) and of "201 -> recorded at site-3" (node 1's `/metrics`
//! `arca_replication_pending_blobs{site="site-3"}` back to 0), the last two also for as many blobs
//! never read at node 3, which only the replication worker can have copied. Chunk transfer: `--chunks`
//! (default 128) random 4 MiB chunks fetched between two of the node's QUIC transports, 1 and 8 at a
//! time (`--runs`, default 3), against a plain TCP copy of the same bytes with 1 and 8 connections
//! (MiB/s, ratio QUIC/TCP). Raft commits:
//! `--clients` (default 32) clients PUT registry metadata for `--seconds` (default 5) at the leader and
//! at a follower of the three nodes, and at a single node started beside them, the three rows taking
//! turns `--runs` times (median commits/s, p50/p99 latency, ratio to the single node):
//!
//! ```text
//! cargo run --release -p arca-bench -- cluster
//! ```
//!
//! Options: `--samples N`, `--chunks N`, `--runs N`, `--clients N`, `--seconds S`, `--dir PATH`,
//! `--json`.
//!
//! `remote` starts two nodes in this process on 127.0.0.1: an upstream with a local GENERIC and a local
//! NPM registry, and a proxy with a remote (caching proxy) registry over each, authenticating with the
//! upstream's admin token. Generic: `--files` (default 20) fresh 1 MiB files and `--large` (default 3)
//! fresh 64 MiB files are PUT to the upstream, then each is GET directly from the upstream, through the
//! remote cold (a miss: fetch, store, serve) and through the remote warm (a hit); it prints p50/p99
//! latency of the 1 MiB GETs and MiB/s of the 64 MiB GETs, with ratios cold/direct and warm/direct.
//! npm: `--packages` (default 20) small packages are published to the upstream, then installed through
//! the remote `--rounds` (default 100) times (each install: every abbreviated packument, then every
//! latest tarball); it prints the bytes the clients received against the bytes the upstream served
//! (the saving), the proxy's hit ratio, and install times:
//!
//! ```text
//! cargo run --release -p arca-bench -- remote
//! ```
//!
//! Options: `--files N`, `--large N`, `--packages N`, `--rounds N`, `--dir PATH`, `--json`.
//!
//! `scale` runs a node as a child process (the release `arca-node` beside this binary, or
//! `--node-bin`; on 127.0.0.1, data under `--dir`, its log in its data directory), so that its own
//! memory and CPU can be read from `/proc`, and pushes `--versions` (default 1,000,000) files of
//! `--size` bytes (default 1024, each different) to a generic registry, `--versions-per-package`
//! (default 100) versions a package, with `--clients` (default 16) concurrent clients, in `--phases`
//! (default 10) phases. After each phase, pushes paused, it prints a row: pushes/s, push p50/p99/max,
//! the node's RSS (VmRSS) and peak RSS (VmHWM), the data directory's size, the median time of the
//! first listing page and of the 20th (by cursor), the node's CPU seconds in the phase and the
//! elapsed time. Then: the node's CPU while idle (10 s); push p99 while metadata snapshots are built
//! against without (`--snapshot-seconds` each, default 10; target at most 2x); restart to the first
//! GET of the last file after SIGTERM and after SIGKILL; an npm package of `--npm-versions` (default
//! 20,000) versions published by 16 clients and its abbreviated packument read by 8 for
//! `--npm-seconds` (default 10; req/s, p50/p99; target 1,000/s); and last, a second node joining
//! with a join token: the time until the first shows it with lag 0 (target 2 minutes at 1,000,000
//! versions) and both nodes' peak RSS meanwhile:
//!
//! ```text
//! cargo build --release -p arca-node -p arca-bench
//! ./target/release/arca-bench scale
//! ./target/release/arca-bench scale --versions 20000 --phases 4 --npm-versions 500   # quicker
//! ```
//!
//! Options: `--versions N`, `--phases N`, `--clients N`, `--size BYTES`, `--versions-per-package N`,
//! `--snapshot-seconds S`, `--npm-versions N`, `--npm-seconds S`, `--skip-restart`, `--skip-npm`,
//! `--skip-learner`, `--node-bin PATH`, `--dir PATH`, `--json`.
//!
//! Everything written is removed at the end.
//!
//! `search` fills a generic registry with the scale benchmark's data set (`--versions`, default a
//! million, of `pkg-<n>`) on a release `arca-node` child process, waits for the search index to
//! catch up, then with `--clients` (32) clients for `--seconds` each times the cheapest API request
//! (the floor) and a mix of searches (an exact name, a type-ahead prefix, a typo, a version, and a
//! query every version matches): req/s, p50/p99, per kind too; then the index lag, push answered to
//! searchable:
//!
//! ```text
//! cargo build --release -p arca-node -p arca-bench
//! ./target/release/arca-bench search --versions 1000000
//! ```
//!
//! `webhooks` measures webhook delivery on a node started in this process, against a receiver
//! that checks every signature: signed POSTs sent one after another straight to the receiver (the
//! limit of an in-order sender), the time from a push's request to its event's arrival
//! (p50/p99 of `--latency-events` pushes at `--rate` a second), a backlog of `--events` (10,000)
//! queued while the webhook is disabled and drained once it is enabled (events/s and its ratio to
//! the limit), and pushes/s with no webhook against one webhook given every push:
//!
//! ```text
//! cargo run --release -p arca-bench -- webhooks
//! ```

mod apt;
mod archives;
mod bucket_gc;
mod cluster;
mod common;
mod data;
mod debian;
mod downloads;
mod formats;
mod generic;
mod impairment;
mod installs;
mod oci;
mod packages;
mod peer;
mod remote;
mod report;
mod rpm;
mod scale;
mod search;
mod storage;
mod webhooks;

use clap::{Parser, Subcommand};

/// Benchmarks of Arca against the limits and peers it is compared with.
#[derive(Debug, Parser)]
#[command(name = "arca-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Push and pull one large file through a generic registry, against a plain file copy.
    Generic(generic::Args),
    /// Garbage collection of a node whose chunks are in a Garage bucket, at a million chunk objects.
    BucketGc(bucket_gc::Args),
    /// Push an image, pull its layers and GET its manifest over the OCI Distribution API, against the
    /// CNCF distribution registry (docker-registry).
    Oci(oci::Args),
    /// GET npm packuments and tarballs and PyPI simple-index pages and wheels of many small packages,
    /// against verdaccio (npm) and pypiserver (PyPI).
    Packages(packages::Args),
    /// GET Cargo index files and .crate files, Helm index.yaml and charts, of many small packages,
    /// against the same bytes served as static files.
    Formats(formats::Args),
    /// Downloads of a Go module graph by the real go command through a Go registry, against the
    /// same module files read from disk (GOPROXY=file://).
    Installs(installs::Args),
    /// Adding one package to an apt repository (push, then the signed index served) and GETs of
    /// its Packages files, against reprepro.
    Debian(debian::Args),
    /// Adding one package to a dnf/yum repository (push, then the signed repodata served) and GETs
    /// of its primary.xml.gz, against createrepo_c.
    Rpm(rpm::Args),
    /// apt-get update and install --download-only of a real package and its dependencies through a
    /// Debian registry, against the same .debs in a reprepro repository served as plain files.
    AptInstall(apt::Args),
    /// Replication lag across three sites, chunk transfer over QUIC against TCP, and Raft metadata
    /// commits on three nodes against one, on a cluster started in this process.
    Cluster(cluster::Args),
    /// Generic GETs direct from an upstream node against through a remote registry (cold and warm),
    /// and the upstream traffic a remote registry saves over repeated npm installs.
    Remote(remote::Args),
    /// Millions of versions pushed to a node run as a child process: pushes/s, latency, memory,
    /// disk, listing pages and CPU as the registry grows, then idle CPU, pushes during snapshots,
    /// restarts, an npm packument of many versions and a second node's catch-up.
    Scale(scale::Args),
    /// Search at a million versions with 32 clients (a mix of queries) against the cheapest API
    /// request, and the index lag from push to searchable.
    Search(search::Args),
    /// Webhook delivery: latency from push to receiver, a 10,000-event backlog drained against
    /// signed POSTs straight to the receiver, and pushes/s with and without a webhook.
    Webhooks(webhooks::Args),
    /// What counting downloads for usage insights costs: GETs/s of two nodes side by side, one
    /// counting and one not, and the counted figures checked against the GETs answered.
    Downloads(downloads::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Generic(args) => runtime.block_on(generic::run(args)),
        Command::BucketGc(args) => runtime.block_on(bucket_gc::run(args)),
        Command::Oci(args) => runtime.block_on(oci::run(args)),
        Command::Packages(args) => runtime.block_on(packages::run(args)),
        Command::Formats(args) => runtime.block_on(formats::run(args)),
        Command::Installs(args) => runtime.block_on(installs::run(args)),
        Command::Debian(args) => runtime.block_on(debian::run(args)),
        Command::Rpm(args) => runtime.block_on(rpm::run(args)),
        Command::AptInstall(args) => runtime.block_on(apt::run(args)),
        Command::Cluster(args) => runtime.block_on(cluster::run(args)),
        Command::Remote(args) => runtime.block_on(remote::run(args)),
        Command::Scale(args) => runtime.block_on(scale::run(args)),
        Command::Search(args) => runtime.block_on(search::run(args)),
        Command::Webhooks(args) => runtime.block_on(webhooks::run(args)),
        Command::Downloads(args) => runtime.block_on(downloads::run(args)),
    }
}
