//! Many seeds at once: each seed runs on its own thread (a run is single-threaded), `jobs` at a time.
//! A failing seed is shrunk: fault kinds are taken away one by one and the workload halved while the
//! run still fails, which leaves the shortest failing run found and the one-line command replaying it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Report, SimConfig, SimError, run};

/// A failing seed after shrinking.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The run as first seen.
    pub original: Report,
    /// The shortest failing run found.
    pub shrunk: Report,
}

/// What a swarm found.
#[derive(Debug, Default)]
pub struct SwarmReport {
    /// Every seed's report, in seed order.
    pub runs: Vec<Report>,
    /// Failing seeds, shrunk.
    pub failures: Vec<Failure>,
    /// Seeds whose run could not happen, with why.
    pub errors: Vec<(u64, String)>,
}

/// Runs `base` with each of `seeds` on `jobs` threads; shrinks failures when `shrink`.
pub fn swarm(base: &SimConfig, seeds: &[u64], jobs: usize, shrink: bool) -> SwarmReport {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(u64, Result<Report, SimError>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(index) else {
                        break;
                    };
                    let config = SimConfig {
                        seed,
                        ..base.clone()
                    };
                    let result = run(config);
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((seed, result));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(seed, _)| *seed);
    let mut report = SwarmReport::default();
    for (seed, result) in results {
        match result {
            Ok(run) => report.runs.push(run),
            Err(error) => report.errors.push((seed, error.to_string())),
        }
    }
    let failing: Vec<Report> = report
        .runs
        .iter()
        .filter(|r| !r.passed())
        .cloned()
        .collect();
    for original in failing {
        let shrunk = if shrink {
            shrink_failure(&original)
        } else {
            original.clone()
        };
        report.failures.push(Failure { original, shrunk });
    }
    report
}

/// The shortest still-failing variant of a failing run: without each fault kind in turn, then with
/// half the operations, as long as it keeps failing.
pub fn shrink_failure(failing: &Report) -> Report {
    let mut best = failing.clone();
    let kinds: Vec<_> = best.config.faults.0.iter().copied().collect();
    for kind in kinds {
        let mut candidate = best.config.clone();
        candidate.faults.0.remove(&kind);
        if let Ok(report) = run(candidate)
            && !report.passed()
        {
            best = report;
        }
    }
    while best.config.ops_per_client > 1 {
        let mut candidate = best.config.clone();
        candidate.ops_per_client /= 2;
        match run(candidate) {
            Ok(report) if !report.passed() => best = report,
            _ => break,
        }
    }
    best
}
