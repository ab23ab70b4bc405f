//! The fault schedule: while the workload runs, every few hundred milliseconds of virtual time it may
//! start or end a fault of an allowed kind, each choice drawn from the run's seed; [`heal`] ends them
//! all. A node whose Raft stopped on a storage error is restarted, as a supervisor would.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arca_protocol::NodeRole;
use arca_protocol::cluster::{MembershipChange, PeerError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Duration;

use crate::cluster::{Cluster, MEMBERSHIP_TIMEOUT};
use crate::config::FaultKind;
use crate::disk::DiskFaults;
use crate::net::LinkFaults;

/// Runs the schedule until the cluster's `faults_stopping` is set, finishing the fault under way.
pub async fn schedule(cluster: Arc<Cluster>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let kinds: Vec<FaultKind> = cluster.config.faults.0.iter().copied().collect();
    loop {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..800))).await;
        if cluster.faults_stopping.load(Ordering::Relaxed) {
            return;
        }
        restart_failed(&cluster).await;
        if kinds.is_empty() || !rng.random_bool(0.5) {
            continue;
        }
        let kind = kinds[rng.random_range(0..kinds.len())];
        inject(&cluster, kind, &mut rng).await;
    }
}

/// Starts again every node whose Raft stopped on a storage error, as the node's supervisor does
/// (the node exits then). A storage error of the fault window can surface after the heal, at the
/// node's next write, so the checks after healing call this while they wait.
pub async fn restart_failed(cluster: &Cluster) {
    for node in &cluster.nodes {
        if node.raft_failed() {
            cluster.trace.event(format!(
                "node {} stopped on a storage error; restarting it",
                node.id
            ));
            node.crash(&cluster.network, false);
            cluster.start(node.id).await;
        }
    }
}

fn random_node(cluster: &Cluster, rng: &mut StdRng) -> u64 {
    rng.random_range(1..=cluster.nodes.len() as u64)
}

async fn inject(cluster: &Cluster, kind: FaultKind, rng: &mut StdRng) {
    let trace = &cluster.trace;
    match kind {
        FaultKind::Loss => {
            let loss = if rng.random_bool(0.5) {
                rng.random_range(0.01..0.2)
            } else {
                0.0
            };
            update_links(cluster, |faults| faults.loss = loss);
            trace.event(format!("fault: message loss {loss:.3}"));
        }
        FaultKind::Delay => {
            let (spike, max) = if rng.random_bool(0.5) {
                (rng.random_range(0.01..0.2), rng.random_range(50..2000))
            } else {
                (0.0, 0)
            };
            update_links(cluster, |faults| {
                faults.spike = spike;
                faults.spike_max = Duration::from_millis(max);
            });
            trace.event(format!("fault: delay spikes {spike:.3} up to {max} ms"));
        }
        FaultKind::Duplicate => {
            let duplicate = if rng.random_bool(0.5) {
                rng.random_range(0.01..0.3)
            } else {
                0.0
            };
            update_links(cluster, |faults| faults.duplicate = duplicate);
            trace.event(format!("fault: duplicates {duplicate:.3}"));
        }
        FaultKind::Partition => partition(cluster, rng),
        FaultKind::Crash => crash(cluster, rng).await,
        FaultKind::Disk => disk(cluster, rng),
        FaultKind::Clock => {
            let node = random_node(cluster, rng);
            let shift: i64 = if rng.random_bool(0.7) {
                rng.random_range(-5_000..5_000)
            } else {
                rng.random_range(-3_600_000..3_600_000)
            };
            if let Some(target) = cluster.node(node) {
                target.clock.shift(shift);
            }
            trace.event(format!("fault: node {node} clock moves {shift} ms"));
        }
        FaultKind::Membership => membership(cluster, rng).await,
    }
}

fn update_links(cluster: &Cluster, change: impl FnOnce(&mut LinkFaults)) {
    let mut faults = cluster.network.link_faults();
    change(&mut faults);
    cluster.network.set_faults(faults);
}

fn partition(cluster: &Cluster, rng: &mut StdRng) {
    let trace = &cluster.trace;
    let nodes: Vec<(u64, usize)> = cluster.nodes.iter().map(|n| (n.id, n.site)).collect();
    // One partition at a time: a new one replaces the last.
    cluster.network.heal();
    match rng.random_range(0..4) {
        0 => trace.event("fault: partitions healed"),
        1 => {
            let site = rng.random_range(0..cluster.config.topology.sites);
            for &(a, site_a) in &nodes {
                for &(b, site_b) in &nodes {
                    if (site_a == site) != (site_b == site) {
                        cluster.network.cut(a, b);
                    }
                }
            }
            trace.event(format!("fault: site {site} cut off from the others"));
        }
        2 => {
            let node = random_node(cluster, rng);
            for &(other, _) in &nodes {
                if other != node {
                    cluster.network.cut(node, other);
                    cluster.network.cut(other, node);
                }
            }
            trace.event(format!("fault: node {node} isolated"));
        }
        _ => {
            let from = random_node(cluster, rng);
            let to = random_node(cluster, rng);
            if from != to {
                cluster.network.cut(from, to);
                trace.event(format!("fault: link {from} -> {to} cut (one way)"));
            }
        }
    }
}

async fn crash(cluster: &Cluster, rng: &mut StdRng) {
    let torn = cluster.config.faults.has(FaultKind::Disk) && rng.random_bool(0.5);
    let victims: Vec<u64> = match rng.random_range(0..10) {
        0 => cluster.nodes.iter().map(|n| n.id).collect(),
        1 | 2 => {
            let site = rng.random_range(0..cluster.config.topology.sites);
            cluster
                .nodes
                .iter()
                .filter(|n| n.site == site)
                .map(|n| n.id)
                .collect()
        }
        _ => vec![random_node(cluster, rng)],
    };
    let down_for = Duration::from_millis(rng.random_range(10..3000));
    for &id in &victims {
        if let Some(node) = cluster.node(id) {
            node.crash(&cluster.network, torn);
        }
    }
    cluster.trace.event(format!(
        "fault: nodes {victims:?} crash{} for {} ms",
        if torn { " tearing writes" } else { "" },
        down_for.as_millis()
    ));
    tokio::time::sleep(down_for).await;
    for id in victims {
        cluster.start(id).await;
    }
}

fn disk(cluster: &Cluster, rng: &mut StdRng) {
    let node = random_node(cluster, rng);
    let Some(target) = cluster.node(node) else {
        return;
    };
    match rng.random_range(0..3) {
        0 => {
            // Like a fault atlas: never corrupt the last intact copy of a chunk, which no system
            // could recover from.
            let intact_elsewhere: BTreeSet<String> = cluster
                .nodes
                .iter()
                .filter(|other| other.id != node)
                .flat_map(|other| other.disk.intact_chunks())
                .collect();
            let flipped = target.disk.flip_a_bit(&intact_elsewhere);
            cluster
                .trace
                .event(format!("fault: node {node} bit flip in chunk {flipped:?}"));
        }
        1 => {
            let faults = DiskFaults {
                eio: rng.random_range(0.0..0.05),
                enospc: rng.random_range(0.0..0.05),
            };
            target.disk.set_faults(faults);
            cluster.trace.event(format!(
                "fault: node {node} disk errors eio {:.3} enospc {:.3}",
                faults.eio, faults.enospc
            ));
        }
        _ => {
            target.disk.set_faults(DiskFaults::default());
            cluster
                .trace
                .event(format!("fault: node {node} disk healthy"));
        }
    }
}

async fn membership(cluster: &Cluster, rng: &mut StdRng) {
    let node = random_node(cluster, rng);
    let Some(target) = cluster.node(node) else {
        return;
    };
    let removed = cluster
        .removed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&node);
    if removed {
        let result = cluster.add_member(target).await;
        if result.is_ok() {
            cluster
                .removed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&node);
        }
        cluster
            .trace
            .event(format!("fault: node {node} added back: {result:?}"));
        return;
    }
    // Keep a majority of the full nodes as voters: remove at most one at a time.
    let already = !cluster
        .removed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_empty();
    if already || target.role != NodeRole::Full {
        return;
    }
    let Some(via) = cluster.any_running_except(node) else {
        return;
    };
    // Recorded before asking: a removal that times out or whose answer is lost may still commit.
    cluster
        .removed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(node);
    let remove = via
        .meta
        .change_membership(MembershipChange::Remove { node_id: node });
    let result = tokio::time::timeout(MEMBERSHIP_TIMEOUT, remove).await;
    if let Ok(Err(PeerError::Invalid(_))) = result {
        cluster
            .removed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node);
    }
    cluster.trace.event(format!(
        "fault: node {node} removed from the membership: {result:?}"
    ));
}

/// Ends every fault: links restored, disks healthy, crashed nodes restarted, removed members back.
pub async fn heal(cluster: &Cluster) {
    cluster.network.heal();
    cluster.network.set_faults(LinkFaults::default());
    for node in &cluster.nodes {
        node.disk.set_faults(DiskFaults::default());
    }
    restart_failed(cluster).await;
    for node in &cluster.nodes {
        if node.running().is_none() {
            cluster.start(node.id).await;
        }
    }
    restore_membership(cluster).await;
    cluster.trace.event("every fault healed");
}

/// Adds back whoever is missing from the membership until the leader's configuration holds every
/// node in its role. It checks rather than trusts the record of removals: a removal whose answer was
/// lost can still commit after the node was added back.
async fn restore_membership(cluster: &Cluster) {
    // Whole twice in a row: a deposed leader that has not yet heard of its successor may look whole.
    let mut whole_in_a_row = 0;
    let deadline = tokio::time::Instant::now() + RESTORE_WITHIN;
    while tokio::time::Instant::now() < deadline {
        restart_failed(cluster).await;
        match membership_view(cluster) {
            Some(view) if view.missing.is_empty() && view.settled => {
                whole_in_a_row += 1;
                if whole_in_a_row == 2 {
                    cluster
                        .removed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clear();
                    return;
                }
            }
            Some(view) => {
                whole_in_a_row = 0;
                // Adding a node that is already there still finishes a joint configuration a
                // change cut off half way left behind.
                let to_add = if view.missing.is_empty() {
                    vec![view.leader]
                } else {
                    view.missing
                };
                for id in to_add {
                    if let Some(node) = cluster.node(id) {
                        let _ = cluster.add_member(node).await;
                    }
                }
            }
            None => whole_in_a_row = 0,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cluster.trace.event(format!(
        "the membership was not whole within {RESTORE_WITHIN:?} of healing"
    ));
}

/// How long healing tries to add back the nodes missing from the membership.
const RESTORE_WITHIN: Duration = Duration::from_secs(60);

/// The membership as the leader of the highest term sees it.
struct MembershipView {
    leader: u64,
    /// Nodes its (latest) configuration lacks: full nodes as voters, cache nodes at all.
    missing: Vec<u64>,
    /// Committed, and not a joint configuration.
    settled: bool,
}

/// None while no node leads.
fn membership_view(cluster: &Cluster) -> Option<MembershipView> {
    // Node ids start at 1: no node is excluded.
    let metrics = cluster.leader_except(0)?.meta.raft_metrics();
    let membership = metrics.membership_config.membership();
    let latest = membership.get_joint_config().last()?;
    let missing = cluster
        .nodes
        .iter()
        .filter(|node| match node.role {
            NodeRole::Full => !latest.contains(&node.id),
            NodeRole::Cache => !membership.nodes().any(|(id, _)| *id == node.id),
        })
        .map(|node| node.id)
        .collect();
    let committed = metrics.membership_config.log_id() <= &metrics.last_applied;
    Some(MembershipView {
        leader: metrics.id,
        missing,
        settled: committed && membership.get_joint_config().len() == 1,
    })
}
