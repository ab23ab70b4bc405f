//! `arca-bench`: measures Arca against the limits it is compared with.
//!
//! The one benchmark so far, `generic`, pushes and pulls one large file (1 GiB by default) through a real
//! Arca node started in this process, and compares both with a plain file copy on the same disk — the
//! limit a registry that writes every byte to disk (and fsyncs it) can approach. It prints the best and
//! median throughput of each, in MiB/s, and their ratios to the copy:
//!
//! ```text
//! cargo run --release -p arca-bench -- generic --size-mib 1024
//! ```
//!
//! Options: `--size-mib N` (file size), `--runs N` (repetitions of each measurement, default 3),
//! `--dir PATH` (where the temporary node data, source file and copies go; default the current
//! directory, so the work tree's disk), `--json` (machine-readable output instead of the table).
//! Everything written is removed at the end.

mod data;
mod generic;
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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Generic(args) => runtime.block_on(generic::run(args)),
    }
}
