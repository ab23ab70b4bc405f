//! `arca-sim`: `run --seed S` runs one simulation and prints its trace hash and verdict; `swarm --seeds N`
//! runs many in parallel and prints each failing seed with its replay command.

use std::process::ExitCode;

use anyhow::Context;
use arca_node::inject::Defect;
use arca_sim::swarm::swarm;
use arca_sim::{FaultSet, Report, SimConfig, Topology};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "arca-sim",
    about = "Deterministic simulation of Arca clusters under faults"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one seed and prints its trace hash.
    Run {
        /// The seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        shape: Shape,
        /// Print every event of the trace.
        #[arg(long)]
        trace: bool,
    },
    /// Runs many seeds in parallel and prints the failing ones.
    Swarm {
        /// How many seeds.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        first: u64,
        /// Threads (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Do not shrink failing seeds.
        #[arg(long)]
        no_shrink: bool,
        #[command(flatten)]
        shape: Shape,
    },
}

#[derive(Args)]
struct Shape {
    /// Sites x full nodes per site [+ cache nodes per site].
    #[arg(long, default_value = "3x1")]
    topology: Topology,
    /// Operations per client (one client per site).
    #[arg(long, default_value_t = 40)]
    ops: usize,
    /// Fault kinds to inject: all, none, or a list of loss, delay, duplicate, partition, crash, disk,
    /// clock, membership.
    #[arg(long, default_value = "all")]
    faults: FaultSet,
    /// Deliberate defects to switch on: ack-before-fsync, skip-chunk-verification,
    /// gc-without-fence, stale-follower-read (repeatable).
    #[arg(long = "inject")]
    defects: Vec<Defect>,
}

impl Shape {
    fn config(&self, seed: u64) -> SimConfig {
        SimConfig {
            topology: self.topology,
            ops_per_client: self.ops,
            faults: self.faults.clone(),
            defects: self.defects.clone(),
            ..SimConfig::new(seed)
        }
    }
}

fn summary(report: &Report) -> String {
    format!(
        "seed {} trace {} ({} events, {:.1} s simulated on {} nodes in {:.2} s: {:.0} node-seconds per second)",
        report.config.seed,
        report.trace_hash,
        report.events,
        report.simulated.as_secs_f64(),
        report.nodes,
        report.wall.as_secs_f64(),
        report.speedup()
    )
}

fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Run { seed, shape, trace } => {
            let config = SimConfig {
                keep_trace: trace,
                ..shape.config(seed)
            };
            let report = arca_sim::run(config).context("running the simulation")?;
            for line in &report.trace {
                println!("{line}");
            }
            println!("{}", summary(&report));
            for violation in &report.violations {
                println!("VIOLATION {violation}");
            }
            if report.passed() {
                println!("PASS");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("FAIL: replay with `{}`", report.config.replay_command());
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Swarm {
            seeds,
            first,
            jobs,
            no_shrink,
            shape,
        } => {
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let list: Vec<u64> = (first..first + seeds).collect();
            let started = std::time::Instant::now();
            let report = swarm(&shape.config(0), &list, jobs, !no_shrink);
            let wall = started.elapsed().as_secs_f64();
            let node_seconds: f64 = report
                .runs
                .iter()
                .map(|r| r.nodes as f64 * r.simulated.as_secs_f64())
                .sum();
            println!(
                "{} seeds in {wall:.1} s on {jobs} threads: {:.0} seeds per minute, {:.0} simulated node-seconds per wall second",
                report.runs.len(),
                report.runs.len() as f64 * 60.0 / wall.max(1e-9),
                node_seconds / wall.max(1e-9)
            );
            for (seed, error) in &report.errors {
                println!("seed {seed}: could not run: {error}");
            }
            for failure in &report.failures {
                println!(
                    "FAIL seed {}: {}",
                    failure.original.config.seed,
                    failure
                        .original
                        .violations
                        .first()
                        .map_or("", String::as_str)
                );
                println!(
                    "  shortest failing run: {} events; replay: {}",
                    failure.shrunk.events,
                    failure.shrunk.config.replay_command()
                );
            }
            if report.failures.is_empty() && report.errors.is_empty() {
                println!("PASS");
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
