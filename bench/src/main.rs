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
//! directory, so the work tree's disk), `--json` (machine-readable output instead of the table).
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
//! shorter runs), `--seconds S`, `--dir PATH`, `--json`.
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
//! Everything written is removed at the end.

mod archives;
mod common;
mod data;
mod generic;
mod oci;
mod packages;
mod peer;
mod report;

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
    /// Push an image, pull its layers and GET its manifest over the OCI Distribution API, against the
    /// CNCF distribution registry (docker-registry).
    Oci(oci::Args),
    /// GET npm packuments and tarballs and PyPI simple-index pages and wheels of many small packages,
    /// against verdaccio (npm) and pypiserver (PyPI).
    Packages(packages::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Generic(args) => runtime.block_on(generic::run(args)),
        Command::Oci(args) => runtime.block_on(oci::run(args)),
        Command::Packages(args) => runtime.block_on(packages::run(args)),
    }
}
