//! The simulator's own proof: one seed replays to the same trace hash; a hundred seeds under every
//! kind of fault, and every seed that once failed, keep every invariant; and each deliberate defect
//! is caught within a stated number of seeds.

use arca_node::inject::Defect;
use arca_sim::swarm::swarm;
use arca_sim::{FaultSet, SimConfig, run};

/// Seeds a defect must be caught within.
const CATCH_WITHIN: u64 = 20;

#[test]
fn one_seed_replays_to_the_same_trace_hash() {
    let config = SimConfig {
        topology: "3x2".parse().expect("topology"),
        ops_per_client: 25,
        ..SimConfig::new(7)
    };
    let first = run(config.clone()).expect("first run");
    let second = run(config).expect("second run");
    assert!(
        first.events > 100,
        "a run records its events: {}",
        first.events
    );
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.events, second.events);
    let other = run(SimConfig {
        ops_per_client: 25,
        ..SimConfig::new(8)
    })
    .expect("another seed");
    assert_ne!(
        first.trace_hash, other.trace_hash,
        "another seed, another run"
    );
}

/// Every fault kind: network (loss, delay, duplicates, partitions), crashes with torn writes, disk
/// errors and bit flips, clock skew and jumps, and membership changes.
const HOLDING_FAULTS: &str = "all";

#[test]
fn a_hundred_seeds_under_faults_keep_every_invariant() {
    let base = SimConfig {
        ops_per_client: 20,
        faults: HOLDING_FAULTS.parse().expect("faults"),
        ..SimConfig::new(0)
    };
    let seeds: Vec<u64> = (1000..1100).collect();
    let report = swarm(&base, &seeds, 2, false);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.runs.len(), 100);
    let failures: Vec<String> = report
        .failures
        .iter()
        .map(|failure| {
            format!(
                "{}: {}",
                failure.original.config.replay_command(),
                failure.original.violations.join(" | ")
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Seeds that once failed (found by swarms over fresh seed ranges; see `scripts/fresh-seeds.sh`),
/// each with the ops per client it failed with: they must stay clean.
const REGRESSION_SEEDS: &[(u64, usize)] = &[
    // A push whose outcome was unknown committed after the uploading node's garbage collection
    // had taken its chunks: a version whose bytes existed nowhere (before chunk fences).
    (3144, 40),
    (20837, 40),
    (21638, 40),
];

#[test]
fn seeds_that_once_failed_keep_every_invariant() {
    let failures: Vec<String> = REGRESSION_SEEDS
        .iter()
        .filter_map(|&(seed, ops_per_client)| {
            let config = SimConfig {
                ops_per_client,
                faults: HOLDING_FAULTS.parse().expect("faults"),
                ..SimConfig::new(seed)
            };
            let report = run(config.clone()).expect("run");
            (!report.violations.is_empty()).then(|| {
                format!(
                    "{}: {}",
                    config.replay_command(),
                    report.violations.join(" | ")
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The first seed (from 0) whose run with `defect` and `faults` reports a violation mentioning one of
/// `symptoms`, if any within [`CATCH_WITHIN`].
fn first_catch(defect: Defect, faults: &str, symptoms: &[&str]) -> Option<(u64, Vec<String>)> {
    (0..CATCH_WITHIN).find_map(|seed| {
        let config = SimConfig {
            faults: faults.parse::<FaultSet>().expect("faults"),
            defects: vec![defect],
            ..SimConfig::new(seed)
        };
        let report = run(config).expect("run");
        let caught = report
            .violations
            .iter()
            .any(|violation| symptoms.iter().any(|symptom| violation.contains(symptom)));
        caught.then_some((seed, report.violations))
    })
}

#[test]
fn acknowledging_before_fsync_is_caught() {
    // Acknowledged log entries lost by a crash: the cluster cannot agree again, or openraft itself
    // finds a follower's log gone backwards.
    let symptoms = [
        "no write was committed",
        "did not reach one state",
        "panicked",
        "is gone",
    ];
    let caught = first_catch(Defect::AckBeforeFsync, "crash", &symptoms);
    assert!(caught.is_some(), "not caught within {CATCH_WITHIN} seeds");
}

#[test]
fn skipping_chunk_verification_is_caught() {
    let caught = first_catch(Defect::SkipChunkVerification, "disk", &["served"]);
    assert!(caught.is_some(), "not caught within {CATCH_WITHIN} seeds");
}

#[test]
fn collecting_garbage_without_a_fence_is_caught() {
    let symptoms = ["bytes exist nowhere", "lacks blob", "is gone", "unreadable"];
    let caught = first_catch(Defect::GcWithoutFence, "delay", &symptoms);
    assert!(caught.is_some(), "not caught within {CATCH_WITHIN} seeds");
}

#[test]
fn a_stale_follower_read_is_caught() {
    let caught = first_catch(Defect::StaleFollowerRead, "all", &["not linearizable"]);
    assert!(caught.is_some(), "not caught within {CATCH_WITHIN} seeds");
}
