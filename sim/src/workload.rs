//! The clients: one per site, each talking to a node of its site through the node's core API (the
//! same calls the HTTP front-ends make): push files, pull them back and check their bytes, move and
//! read tags linearizably, delete and copy versions, run the cleanup policy and garbage collection.
//! Every outcome goes into the trace and the history the checks read.

use std::collections::BTreeMap;
use std::sync::Arc;

use arca_node::blob::BlobWriter;
use arca_node::clock::Clock;
use arca_node::meta::{ProposeError, StateRead};
use arca_node::policy::cleanup;
use arca_protocol::model::{CleanupPolicy, CleanupRule, Metadata};
use arca_protocol::{
    BlobRef, Command, Overwrite, PackageType, Registry, ReplicaSites, ReplicationMode,
    ReplicationPolicy, Sha256,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::Digest;
use tokio::time::Duration;

use crate::cluster::{AckedPush, Cluster};
use crate::history::{TagOp, TagOpKind};
use crate::node::{Running, collect_garbage};

/// Versions pushed and tags moved in: replicated eagerly everywhere, cleaned up by policy.
pub const FILES: &str = "files";
/// Where tags move: replicated on demand.
pub const RELEASES: &str = "releases";
/// Where versions are copied: replicated eagerly to the first site only.
pub const COPIES: &str = "copies";
/// The package whose tags move.
pub const APP: &str = "app";
/// The tags that move.
pub const TAGS: [&str; 2] = ["stable", "latest"];
/// The versions tags point at.
pub const RELEASE_VERSIONS: [&str; 3] = ["r1", "r2", "r3"];
/// How long one operation may take before its outcome counts as unknown.
const OP_TIMEOUT: Duration = Duration::from_secs(20);

fn registry(name: &str, replication: ReplicationPolicy) -> Registry {
    Registry {
        name: name.to_string(),
        package_type: PackageType::Generic,
        description: String::new(),
        immutable: false,
        allow_anonymous_read: false,
        allow_redeploy: true,
        created_at: 0,
        metadata: Metadata::new(),
        replication,
        kind: Default::default(),
        upstream: None,
        members: Vec::new(),
        publish_to: None,
        audit_downloads: false,
        cleanup: CleanupPolicy::default(),
        firewall: Default::default(),
    }
}

/// Creates the registries, the release versions and their tags.
pub async fn set_up(cluster: &Cluster, rng: &mut StdRng) -> Result<(), String> {
    let node = cluster.any_running_except(0).ok_or("no node is running")?;
    let eager_everywhere = ReplicationPolicy {
        sites: ReplicaSites::All,
        mode: ReplicationMode::Eager,
    };
    let on_demand = ReplicationPolicy {
        sites: ReplicaSites::All,
        mode: ReplicationMode::OnDemand,
    };
    let first_site_only = ReplicationPolicy {
        sites: ReplicaSites::Only(vec!["site-0".to_string()]),
        mode: ReplicationMode::Eager,
    };
    let registries = [
        registry(FILES, eager_everywhere),
        registry(RELEASES, on_demand),
        registry(COPIES, first_site_only),
    ];
    for created in registries {
        propose(&node, Command::CreateRegistry { registry: created }).await?;
    }
    let keep_three = CleanupPolicy {
        rules: vec![CleanupRule {
            name: "keep-three".to_string(),
            package_pattern: "*".to_string(),
            version_pattern: "*".to_string(),
            keep_last: Some(3),
            older_than_days: None,
            not_downloaded_days: None,
            keep_tagged: false,
            keep_tags: Vec::new(),
            keep_metadata: Vec::new(),
        }],
    };
    propose(
        &node,
        Command::SetCleanupPolicy {
            registry: FILES.to_string(),
            policy: keep_three,
        },
    )
    .await?;
    for version in RELEASE_VERSIONS {
        let data = random_bytes(rng);
        let blob = store(&node, &data).await?;
        propose(&node, put_file(RELEASES, APP, version, blob, 0)).await?;
    }
    for tag in TAGS {
        let set = Command::SetTag {
            registry: RELEASES.to_string(),
            package: APP.to_string(),
            tag: tag.to_string(),
            version: RELEASE_VERSIONS[0].to_string(),
        };
        propose(&node, set).await?;
    }
    cluster.trace.event("registries, releases and tags set up");
    Ok(())
}

async fn propose(node: &Running, command: Command) -> Result<(), String> {
    node.meta.propose(command).await.map_err(|e| e.to_string())
}

fn put_file(registry: &str, package: &str, version: &str, blob: BlobRef, at: u64) -> Command {
    Command::PutFile {
        registry: registry.to_string(),
        package: package.to_string(),
        version: version.to_string(),
        filename: "data.bin".to_string(),
        blob,
        attributes: BTreeMap::new(),
        tags: Vec::new(),
        overwrite: Overwrite::RefuseVersion,
        at,
    }
}

fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
    let size = rng.random_range(1..48 * 1024);
    let mut data = vec![0u8; size];
    rng.fill(&mut data[..]);
    data
}

async fn store(node: &Running, data: &[u8]) -> Result<BlobRef, String> {
    let mut writer = BlobWriter::new(node.chunks.clone());
    writer.write(data).await.map_err(|e| e.to_string())?;
    writer.finish().await.map_err(|e| e.to_string())
}

/// How a write ended.
enum Outcome {
    /// Acknowledged.
    Done,
    /// Refused by the state machine: it did not happen.
    Refused(String),
    /// Unknown: it may happen or have happened.
    Unknown(String),
}

fn outcome(result: Result<(), ProposeError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Done,
        Err(ProposeError::Refused(error)) => Outcome::Refused(error.to_string()),
        Err(error) => Outcome::Unknown(error.to_string()),
    }
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Done => "ok".to_string(),
            Outcome::Refused(why) => format!("refused ({why})"),
            Outcome::Unknown(why) => format!("unknown ({why})"),
        }
    }
}

/// One client: `ops` operations against a node of `site`, with think time between them.
pub async fn client(cluster: Arc<Cluster>, site: usize, ops: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for step in 0..ops {
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..400))).await;
        let Some((sim_node, node)) = cluster.nearest_running(site, rng.random_range(0..8)) else {
            cluster
                .trace
                .event(format!("client {site} op {step}: no node running"));
            continue;
        };
        let label = format!("client {site} op {step} at node {}", sim_node.id);
        let clock = sim_node.clock.as_ref();
        let choice = rng.random_range(0..100);
        let op = async {
            match choice {
                0..30 => push(&cluster, &node, &mut rng, &label, site, step).await,
                30..48 => pull(&cluster, &node, &mut rng, &label).await,
                48..60 => move_tag(&cluster, &node, &mut rng, &label, site).await,
                60..75 => read_tag(&cluster, &node, &mut rng, &label, site).await,
                75..82 => delete(&cluster, &node, &mut rng, &label).await,
                82..89 => copy(&cluster, &node, &mut rng, &label).await,
                89..93 => clean_up(&cluster, &node, clock.now_ms(), &label).await,
                _ => {
                    let result = collect_garbage(&node).await;
                    cluster.trace.event(format!("{label} gc: {result:?}"));
                }
            }
        };
        if tokio::time::timeout(OP_TIMEOUT, op).await.is_err() {
            cluster.trace.event(format!("{label}: timed out"));
        }
    }
}

async fn push(
    cluster: &Cluster,
    node: &Running,
    rng: &mut StdRng,
    label: &str,
    site: usize,
    step: usize,
) {
    let package = format!("pkg-{}", rng.random_range(0..3));
    let version = format!("c{site}-{step}");
    let data = random_bytes(rng);
    let sha256 = Sha256(sha2::Sha256::digest(&data).into());
    cluster
        .history()
        .known
        .push((package.clone(), version.clone()));
    let blob = match store(node, &data).await {
        Ok(blob) => blob,
        Err(error) => {
            cluster.trace.event(format!(
                "{label} push {package}/{version}: store failed ({error})"
            ));
            return;
        }
    };
    if blob.sha256 != sha256 {
        cluster.violation(format!(
            "{label}: the chunk store computed {} for bytes whose sha256 is {sha256}",
            blob.sha256
        ));
    }
    let at = cluster.trace.now_ms();
    let result = node
        .meta
        .propose(put_file(FILES, &package, &version, blob, at))
        .await;
    let result = outcome(result);
    cluster.trace.event(format!(
        "{label} push {package}/{version} ({} bytes): {}",
        data.len(),
        result.describe()
    ));
    if let Outcome::Done = result {
        cluster.history().acked.push(AckedPush {
            package,
            version,
            sha256,
        });
    }
}

fn pick_known(cluster: &Cluster, rng: &mut StdRng) -> Option<(String, String)> {
    let history = cluster.history();
    if history.known.is_empty() {
        return None;
    }
    Some(history.known[rng.random_range(0..history.known.len())].clone())
}

/// Reads every byte of `blob` through `node` (fetching from peers what it lacks).
pub async fn read_bytes(node: &Running, blob: &BlobRef) -> Result<Vec<u8>, String> {
    if let Some(inline) = &blob.inline {
        return Ok(inline.clone());
    }
    let mut bytes = Vec::with_capacity(blob.size as usize);
    for chunk in &blob.chunks {
        let data = node.chunks.read(*chunk).await.map_err(|e| e.to_string())?;
        bytes.extend_from_slice(&data);
    }
    Ok(bytes)
}

/// Pulls `registry`'s `package`/`version` at `node`: `Ok(None)` when the node does not know it, the
/// bytes' sha256 otherwise (served bytes that do not match their digest are a violation).
pub async fn pull_at(
    cluster: &Cluster,
    node: &Running,
    registry: &str,
    package: &str,
    version: &str,
) -> Result<Option<Sha256>, String> {
    let blob = node
        .meta
        .read(|view| {
            let file = view
                .version(registry, package, version)?
                .and_then(|v| v.files.get("data.bin").cloned());
            match file {
                Some(file) => view.blob(&file.sha256),
                None => Ok(None),
            }
        })
        .map_err(|error| error.to_string())?;
    let Some(blob) = blob else {
        return Ok(None);
    };
    let bytes = read_bytes(node, &blob).await?;
    let served = Sha256(sha2::Sha256::digest(&bytes).into());
    if served != blob.sha256 || bytes.len() as u64 != blob.size {
        cluster.violation(format!(
            "{registry}/{package}/{version}: served {} bytes with sha256 {served}, the digest is {}",
            bytes.len(),
            blob.sha256
        ));
    }
    Ok(Some(served))
}

async fn pull(cluster: &Cluster, node: &Running, rng: &mut StdRng, label: &str) {
    let Some((package, version)) = pick_known(cluster, rng) else {
        return;
    };
    let result = pull_at(cluster, node, FILES, &package, &version).await;
    let shown = match result {
        Ok(Some(sha256)) => format!("ok {sha256}"),
        Ok(None) => "not there".to_string(),
        Err(error) => format!("failed ({error})"),
    };
    cluster
        .trace
        .event(format!("{label} pull {package}/{version}: {shown}"));
}

async fn move_tag(cluster: &Cluster, node: &Running, rng: &mut StdRng, label: &str, client: usize) {
    let tag = TAGS[rng.random_range(0..TAGS.len())];
    let version = RELEASE_VERSIONS[rng.random_range(0..RELEASE_VERSIONS.len())];
    let invoked = cluster.trace.now_us();
    let result = outcome(
        node.meta
            .propose(Command::SetTag {
                registry: RELEASES.to_string(),
                package: APP.to_string(),
                tag: tag.to_string(),
                version: version.to_string(),
            })
            .await,
    );
    let completed = cluster.trace.now_us();
    cluster.trace.event(format!(
        "{label} move {tag} to {version}: {}",
        result.describe()
    ));
    let completed = match result {
        Outcome::Done => Some(completed),
        Outcome::Unknown(_) => None,
        Outcome::Refused(_) => return,
    };
    let kind = TagOpKind::Move(version.to_string());
    record_tag_op(cluster, tag, client, kind, invoked, completed);
}

fn record_tag_op(
    cluster: &Cluster,
    tag: &str,
    client: usize,
    kind: TagOpKind,
    invoked: u64,
    completed: Option<u64>,
) {
    let op = TagOp {
        client,
        kind,
        invoked,
        completed,
    };
    cluster
        .history()
        .tags
        .entry(tag.to_string())
        .or_default()
        .push(op);
}

async fn read_tag(cluster: &Cluster, node: &Running, rng: &mut StdRng, label: &str, client: usize) {
    let tag = TAGS[rng.random_range(0..TAGS.len())];
    let invoked = cluster.trace.now_us();
    let read = node
        .meta
        .read_linearizable(|view| view.tag(RELEASES, APP, tag))
        .await;
    let completed = cluster.trace.now_us();
    match read {
        Ok(seen) => {
            cluster.trace.event(format!("{label} read {tag}: {seen:?}"));
            let kind = TagOpKind::Read(seen);
            record_tag_op(cluster, tag, client, kind, invoked, Some(completed));
        }
        Err(error) => cluster
            .trace
            .event(format!("{label} read {tag}: failed ({error})")),
    }
}

async fn delete(cluster: &Cluster, node: &Running, rng: &mut StdRng, label: &str) {
    let Some((package, version)) = pick_known(cluster, rng) else {
        return;
    };
    cluster
        .history()
        .deletions_tried
        .insert((package.clone(), version.clone()));
    let result = outcome(
        node.meta
            .propose(Command::DeleteVersion {
                registry: FILES.to_string(),
                package: package.clone(),
                version: version.clone(),
            })
            .await,
    );
    cluster.trace.event(format!(
        "{label} delete {package}/{version}: {}",
        result.describe()
    ));
}

async fn copy(cluster: &Cluster, node: &Running, rng: &mut StdRng, label: &str) {
    let Some((package, version)) = pick_known(cluster, rng) else {
        return;
    };
    let source = node
        .meta
        .read(|view| view.version(FILES, &package, &version))
        .ok()
        .flatten()
        .and_then(|v| Some(v.files.get("data.bin")?.sha256));
    let result = outcome(
        node.meta
            .propose(Command::CopyVersion {
                from_registry: FILES.to_string(),
                package: package.clone(),
                version: version.clone(),
                to_registry: COPIES.to_string(),
                at: cluster.trace.now_ms(),
            })
            .await,
    );
    cluster.trace.event(format!(
        "{label} copy {package}/{version}: {}",
        result.describe()
    ));
    // What the copy holds is the source as the node saw it before proposing: a copy committed later
    // than a delete of the source is refused, so an acknowledged copy copied these bytes.
    if let (Outcome::Done, Some(sha256)) = (result, source) {
        cluster.history().copies.push(AckedPush {
            package,
            version,
            sha256,
        });
    }
}

async fn clean_up(cluster: &Cluster, node: &Running, now: u64, label: &str) {
    // The plan is recorded before the run makes it again from the same state (no await between).
    let planned = node
        .meta
        .view()
        .map_err(cleanup::CleanupError::from)
        .and_then(|view| cleanup::plan(&view, FILES, now));
    match planned {
        Ok(planned) => {
            let mut history = cluster.history();
            for deletion in planned {
                history
                    .deletions_tried
                    .insert((deletion.package, deletion.version));
            }
        }
        Err(error) => {
            cluster.trace.event(format!("{label} cleanup: {error}"));
            return;
        }
    }
    match cleanup::run(&node.meta, now, FILES, false).await {
        Ok(report) => cluster.trace.event(format!(
            "{label} cleanup: {} deleted, {} refused",
            report.deleted.len(),
            report.refused.len()
        )),
        Err(error) => cluster.trace.event(format!("{label} cleanup: {error}")),
    }
}
