//! The invariants checked once the faults have healed: every node reaches the same state; every
//! version in it has all its chunks on at least one node; replicas reach each registry's policy
//! within a bound; every acknowledged write is readable, byte-identical,
//! at every node; no chunk a node is recorded to hold has been collected; the tag history is
//! linearizable. (Two leaders in one term and bytes that do not match their digest are caught while
//! the run goes on.)

use std::collections::BTreeSet;

use arca_protocol::{BlobRef, Command, MetadataTarget, NodeRole, ReplicationPolicy};
use tokio::time::{Duration, Instant};

use arca_node::meta::{Meta, StateRead};

use crate::cluster::Cluster;
use crate::faults;
use crate::history;
use crate::workload::{self, COPIES, FILES, RELEASE_VERSIONS, RELEASES};

/// How long after healing the nodes have to agree on one state.
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);
/// How long after agreeing the replicas have to match each registry's policy.
const REPLICATE_WITHIN: Duration = Duration::from_secs(60);

/// Runs every final check, recording violations on `cluster`.
pub async fn after_healing(cluster: &Cluster) {
    if !converge(cluster).await {
        return;
    }
    versions_have_their_bytes(cluster);
    replicas_follow_policy(cluster).await;
    acknowledged_writes_are_readable(cluster).await;
    collected_chunks_were_unreferenced(cluster);
    tags_are_linearizable(cluster);
}

/// A final write through every node's leader, then waits until every node applied the same log and
/// holds the same state. Returns false (with a violation) when they do not within the bound.
async fn converge(cluster: &Cluster) -> bool {
    let deadline = Instant::now() + CONVERGE_WITHIN;
    let marker = Command::SetMetadata {
        target: MetadataTarget::Registry {
            registry: FILES.to_string(),
        },
        entries: [("healed".to_string(), cluster.config.seed.to_string())].into(),
    };
    loop {
        faults::restart_failed(cluster).await;
        if let Some(node) = cluster.any_running_except(0)
            && node.meta.propose(marker.clone()).await.is_ok()
        {
            break;
        }
        if Instant::now() >= deadline {
            cluster.violation(format!(
                "no write was committed within 60 s of healing: {}",
                describe_nodes(cluster)
            ));
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        faults::restart_failed(cluster).await;
        let hashes: BTreeSet<String> = cluster
            .nodes
            .iter()
            .filter_map(|node| node.running())
            .map(|running| state_hash(&running.meta))
            .collect();
        let all_running = cluster.nodes.iter().all(|node| node.running().is_some());
        if all_running && hashes.len() == 1 {
            let hash = hashes.into_iter().next().unwrap_or_default();
            cluster
                .trace
                .event(format!("every node's state hash is {hash}"));
            return true;
        }
        if Instant::now() >= deadline {
            cluster.violation(format!(
                "nodes did not reach one state within 60 s of healing: {}",
                describe_nodes(cluster)
            ));
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each node's state hash, applied index, term, leader and membership, for a violation's message.
fn describe_nodes(cluster: &Cluster) -> String {
    let nodes: Vec<String> = cluster
        .nodes
        .iter()
        .map(|node| match node.running() {
            Some(running) => {
                let metrics = running.meta.raft_metrics();
                format!(
                    "node {} {} (applied {:?}, term {}, leader {:?}, membership {:?})",
                    node.id,
                    state_hash(&running.meta),
                    metrics.last_applied.map(|id| id.index),
                    metrics.current_term,
                    metrics.current_leader,
                    metrics.membership_config.membership().get_joint_config()
                )
            }
            None => format!("node {} down", node.id),
        })
        .collect();
    nodes.join("; ")
}

/// A digest of every table of the node's applied state.
pub fn state_hash(meta: &Meta) -> String {
    match meta.state_digest() {
        Ok((_, digest)) => digest[..16].to_string(),
        Err(error) => format!("unreadable state: {error}"),
    }
}

/// Every full node at a site a registry copies eagerly to holds every chunk of its blobs, within
/// [`REPLICATE_WITHIN`].
async fn replicas_follow_policy(cluster: &Cluster) {
    let deadline = Instant::now() + REPLICATE_WITHIN;
    loop {
        let missing = missing_replicas(cluster);
        if missing.is_empty() {
            cluster
                .trace
                .event("replicas match every registry's policy");
            return;
        }
        if Instant::now() >= deadline {
            cluster.violation(format!(
                "replicas not at policy within 60 s of healing: {}",
                missing.join("; ")
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A stored (not inline) blob of a version, with where it is.
struct VersionBlob {
    /// `registry/package/version`.
    version: String,
    /// The policy of the version's registry.
    policy: ReplicationPolicy,
    /// The blob.
    blob: BlobRef,
}

/// The stored blobs of every version in the state, as a running node reads it.
fn version_blobs(cluster: &Cluster) -> Result<Vec<VersionBlob>, String> {
    let reader = cluster
        .any_running_except(0)
        .ok_or_else(|| "no node is running".to_string())?;
    let found = reader.meta.read(|view| {
        let mut found = Vec::new();
        for record in view.registries()? {
            let name = &record.registry.name;
            for package in view.package_names(name, None, usize::MAX)? {
                for version in view.versions(name, &package)? {
                    for file in version.files.values() {
                        let Some(blob) = view.blob(&file.sha256)? else {
                            continue;
                        };
                        if blob.inline.is_none() {
                            found.push(VersionBlob {
                                version: format!("{name}/{package}/{}", version.name),
                                policy: record.registry.replication.clone(),
                                blob,
                            });
                        }
                    }
                }
            }
        }
        Ok(found)
    });
    found.map_err(|error| format!("the state could not be read: {error}"))
}

/// Every version in the state has every chunk of its files on at least one node's disk: a version
/// never becomes visible without its bytes somewhere.
fn versions_have_their_bytes(cluster: &Cluster) {
    let blobs = match version_blobs(cluster) {
        Ok(blobs) => blobs,
        Err(error) => return cluster.violation(error),
    };
    let mut lost = Vec::new();
    for found in &blobs {
        let nowhere = found.blob.chunks.iter().find(|chunk| {
            let name = chunk.id.to_hex();
            !cluster.nodes.iter().any(|node| node.disk.has_chunk(&name))
        });
        if let Some(chunk) = nowhere {
            lost.push(format!(
                "{} (blob {}) has chunk {} on no node",
                found.version, found.blob.sha256, chunk.id
            ));
        }
    }
    if lost.is_empty() {
        cluster.trace.event(format!(
            "every chunk of {} stored version files is on some node",
            blobs.len()
        ));
    } else {
        lost.truncate(5);
        cluster.violation(format!(
            "versions whose bytes exist nowhere: {}",
            lost.join("; ")
        ));
    }
}

fn missing_replicas(cluster: &Cluster) -> Vec<String> {
    let blobs = match version_blobs(cluster) {
        Ok(blobs) => blobs,
        Err(error) => return vec![error],
    };
    let mut missing = Vec::new();
    for node in cluster.nodes.iter().filter(|n| n.role == NodeRole::Full) {
        let site = node.info().site;
        for found in blobs.iter().filter(|b| b.policy.copies_eagerly_to(&site)) {
            if found
                .blob
                .chunks
                .iter()
                .any(|c| !node.disk.has_chunk(&c.id.to_hex()))
            {
                missing.push(format!(
                    "node {} lacks blob {} of {}",
                    node.id, found.blob.sha256, found.version
                ));
            }
        }
    }
    missing.truncate(5);
    missing
}

/// Every acknowledged push not deleted since, and every acknowledged copy, reads back byte-identical
/// at every node.
async fn acknowledged_writes_are_readable(cluster: &Cluster) {
    let (acked, copies, deleted) = {
        let history = cluster.history();
        (
            history.acked.clone(),
            history.copies.clone(),
            history.deletions_tried.clone(),
        )
    };
    let expected = acked
        .iter()
        .filter(|push| !deleted.contains(&(push.package.clone(), push.version.clone())))
        .map(|push| (FILES, push))
        .chain(copies.iter().map(|copy| (COPIES, copy)));
    let mut checked = 0;
    for (registry, push) in expected {
        for node in &cluster.nodes {
            let Some(running) = node.running() else {
                continue;
            };
            let found =
                workload::pull_at(cluster, &running, registry, &push.package, &push.version).await;
            match found {
                Ok(Some(sha256)) if sha256 == push.sha256 => checked += 1,
                Ok(Some(sha256)) => cluster.violation(format!(
                    "node {}: acknowledged {registry}/{}/{} holds {sha256}, {} was written",
                    node.id, push.package, push.version, push.sha256
                )),
                Ok(None) => cluster.violation(format!(
                    "node {}: acknowledged {registry}/{}/{} is gone",
                    node.id, push.package, push.version
                )),
                Err(error) => cluster.violation(format!(
                    "node {}: acknowledged {registry}/{}/{} is unreadable: {error}",
                    node.id, push.package, push.version
                )),
            }
        }
    }
    cluster.trace.event(format!(
        "{checked} acknowledged writes read back byte-identical"
    ));
}

/// A node recorded (in the replicated state) as holding a blob still has every chunk of it on disk:
/// garbage collection never took a referenced chunk.
fn collected_chunks_were_unreferenced(cluster: &Cluster) {
    let Some(reader) = cluster.any_running_except(0) else {
        return;
    };
    // Every blob record is referenced (the state machine forgets a blob with its last reference).
    let held = reader.meta.read(|view| {
        let mut held: Vec<(u64, BlobRef)> = Vec::new();
        for record in view.blobs_page(None, usize::MAX)? {
            for holder in view.replicas(&record.blob.sha256)? {
                held.push((holder, record.blob.clone()));
            }
        }
        Ok(held)
    });
    let held = match held {
        Ok(held) => held,
        Err(error) => {
            cluster.violation(format!("the state could not be read: {error}"));
            return;
        }
    };
    for (holder, blob) in held {
        let Some(node) = cluster.node(holder) else {
            continue;
        };
        if let Some(chunk) = blob
            .chunks
            .iter()
            .find(|chunk| !node.disk.has_chunk(&chunk.id.to_hex()))
        {
            cluster.violation(format!(
                "node {holder} is recorded to hold blob {} but chunk {} is gone from its disk",
                blob.sha256, chunk.id
            ));
        }
    }
}

fn tags_are_linearizable(cluster: &Cluster) {
    let tags = cluster.history().tags.clone();
    for (tag, ops) in tags {
        match history::check(Some(RELEASE_VERSIONS[0]), &ops) {
            Ok(()) => cluster.trace.event(format!(
                "tag {RELEASES}/{tag}: {} operations, linearizable",
                ops.len()
            )),
            Err(found) => {
                let shown: Vec<String> = found
                    .ops
                    .iter()
                    .map(|op| {
                        format!(
                            "c{} {:?} [{}..{}]",
                            op.client,
                            op.kind,
                            op.invoked / 1000,
                            op.completed
                                .map_or("?".to_string(), |c| (c / 1000).to_string())
                        )
                    })
                    .collect();
                cluster.violation(format!(
                    "tag {RELEASES}/{tag} is not linearizable: {}",
                    shown.join(", ")
                ));
            }
        }
    }
}
