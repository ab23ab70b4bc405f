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
//! Everything written is removed at the end.

mod common;
mod data;
mod generic;
mod oci;
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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Generic(args) => runtime.block_on(generic::run(args)),
        Command::Oci(args) => runtime.block_on(oci::run(args)),
    }
}
