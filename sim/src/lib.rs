//! arca-sim: deterministic simulation of whole Arca clusters. One seed drives a run: a cluster of real
//! node logic (openraft with the redb store, the state machine, the chunk store, the replication worker,
//! garbage collection and cleanup) on a simulated network, disk and clock, a workload of clients at
//! every site, and a schedule of faults; then every fault heals and the invariants are checked.
//!
//! Determinism: the run is one tokio current-thread runtime with paused (virtual) time, its scheduler's
//! randomness and openraft's election timeouts seeded from the run's seed, and every choice the
//! simulator makes drawn from generators seeded from it too, so a seed replays the same run, event for
//! event; the trace hash shows it.

pub mod checks;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod disk;
pub mod faults;
pub mod history;
pub mod net;
pub mod node;
pub mod swarm;
pub mod trace;
pub mod workload;

use std::sync::Arc;
use std::time::Instant as WallInstant;

use arca_node::inject;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::Duration;

use crate::cluster::Cluster;
pub use crate::config::{FaultKind, FaultSet, SimConfig, Topology};

/// What one run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The run's settings.
    pub config: SimConfig,
    /// Hash of the trace.
    pub trace_hash: String,
    /// Events in the trace.
    pub events: usize,
    /// The trace's lines, when kept.
    pub trace: Vec<String>,
    /// Invariants that did not hold.
    pub violations: Vec<String>,
    /// Virtual time the run took.
    pub simulated: Duration,
    /// Wall-clock time it took.
    pub wall: std::time::Duration,
    /// Nodes in the cluster.
    pub nodes: usize,
}

impl Report {
    /// True when every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// Simulated node-seconds per wall-clock second.
    pub fn speedup(&self) -> f64 {
        self.nodes as f64 * self.simulated.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Why a run could not happen at all.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The runtime could not be built.
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The cluster could not be set up.
    #[error(transparent)]
    Setup(#[from] cluster::SetupError),
}

/// Derives the seed of one part of a run (the network, a client, the fault schedule...).
fn derive(seed: u64, part: u64) -> u64 {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..].copy_from_slice(&part.to_le_bytes());
    u64::from_le_bytes(
        blake3::hash(&bytes).as_bytes()[..8]
            .try_into()
            .unwrap_or_default(),
    )
}

thread_local! {
    /// The first panic of a task on this thread during the current run (tokio keeps the run going).
    static PANICKED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Makes panics on this thread (in any node task: openraft's assertions, redb's) count as violations
/// of the current run; the process's panic hook is wrapped once.
fn record_panics_on_this_thread() {
    static WRAP_HOOK: std::sync::Once = std::sync::Once::new();
    WRAP_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info.to_string();
            let _ = PANICKED.try_with(|panicked| {
                if let Ok(mut slot) = panicked.try_borrow_mut() {
                    slot.get_or_insert(message);
                }
            });
            previous(info);
        }));
    });
    PANICKED.with(|panicked| panicked.borrow_mut().take());
}

/// Runs one simulation on the current thread.
pub fn run(config: SimConfig) -> Result<Report, SimError> {
    let wall = WallInstant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .rng_seed(tokio::runtime::RngSeed::from_bytes(
            &config.seed.to_le_bytes(),
        ))
        .build()?;
    arca_node::meta::runtime::seed_this_thread(derive(config.seed, 1));
    record_panics_on_this_thread();
    inject::enable_on_this_thread(&config.defects);
    let cluster = runtime.block_on(async { Cluster::new(config.clone()) })?;
    let simulation = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            match tokio::time::timeout(RUN_LIMIT, simulate(cluster.clone())).await {
                Ok(result) => result,
                Err(_) => {
                    cluster.violation(format!(
                        "the run did not finish within {RUN_LIMIT:?} of virtual time"
                    ));
                    Ok(RUN_LIMIT)
                }
            }
        })
    }));
    let outcome = match simulation {
        Ok(outcome) => outcome,
        Err(panic) => {
            // A runtime unwound mid-poll cannot be dropped safely (its destructor panics): leak it.
            std::mem::forget(runtime);
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            cluster.violation(format!("a task panicked: {message}"));
            Ok(Duration::ZERO)
        }
    };
    inject::enable_on_this_thread(&[]);
    cluster.tear_down();
    let simulated = outcome?;
    if let Some(message) = PANICKED.with(|panicked| panicked.borrow_mut().take()) {
        cluster.violation(format!("a task panicked: {message}"));
    }
    Ok(Report {
        trace_hash: cluster.trace.hash(),
        events: cluster.trace.events(),
        trace: cluster.trace.lines(),
        violations: cluster.violations(),
        simulated,
        wall: wall.elapsed(),
        nodes: config.topology.nodes(),
        config,
    })
}

/// The most virtual time a run may take: past it the cluster is stuck, which is a violation too.
const RUN_LIMIT: Duration = Duration::from_secs(1800);

async fn simulate(cluster: Arc<Cluster>) -> Result<Duration, SimError> {
    let started = tokio::time::Instant::now();
    let seed = cluster.config.seed;
    cluster.trace.event(format!(
        "seed {seed}, topology {}, {} ops per client, faults {}, defects {:?}",
        cluster.config.topology,
        cluster.config.ops_per_client,
        cluster.config.faults,
        cluster.config.defects
    ));
    cluster.form().await?;
    let mut setup_rng = StdRng::seed_from_u64(derive(seed, 2));
    if let Err(error) = workload::set_up(&cluster, &mut setup_rng).await {
        cluster.violation(format!(
            "setting up the workload on a healthy cluster: {error}"
        ));
        return Ok(started.elapsed());
    }
    let leaders = tokio::spawn(cluster.clone().watch_leaders());
    let faults = tokio::spawn(faults::schedule(cluster.clone(), derive(seed, 3)));
    let clients: Vec<_> = (0..cluster.config.topology.sites)
        .map(|site| {
            tokio::spawn(workload::client(
                cluster.clone(),
                site,
                cluster.config.ops_per_client,
                derive(seed, 100 + site as u64),
            ))
        })
        .collect();
    for client in clients {
        let _ = client.await;
    }
    // Not aborted: a fault cut off half way (a restart, a membership change) would leave a node
    // the schedule no longer knows about.
    cluster
        .faults_stopping
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = faults.await;
    faults::heal(&cluster).await;
    checks::after_healing(&cluster).await;
    leaders.abort();
    cluster.observe_leaders();
    Ok(started.elapsed())
}
