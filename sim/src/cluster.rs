//! The simulated cluster: its nodes, network and trace, what the workload did (the history the checks
//! read), and the violations found. Shared by the workload, the fault schedule and the checks, all
//! tasks on the run's one thread.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use arca_node::transfer::tls::ClusterIdentity;
use arca_protocol::cluster::MembershipChange;
use arca_protocol::{NodeRole, Sha256};
use tokio::time::{Duration, Instant};

use crate::clock::SimClock;
use crate::config::SimConfig;
use crate::disk::Disk;
use crate::history::TagOp;
use crate::net::Network;
use crate::node::{Running, SimNode};
use crate::trace::Trace;

/// The longest a membership change may take before it counts as failed.
pub const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(15);

/// A version pushed with an acknowledgement, and what it must hold.
#[derive(Debug, Clone)]
pub struct AckedPush {
    /// Package.
    pub package: String,
    /// Version.
    pub version: String,
    /// sha256 of its file.
    pub sha256: Sha256,
}

/// What the workload did, for the checks.
#[derive(Default)]
pub struct History {
    /// Acknowledged pushes to `files`.
    pub acked: Vec<AckedPush>,
    /// Every version of `files` anyone tried to delete (by hand or by cleanup), whatever came of it.
    pub deletions_tried: BTreeSet<(String, String)>,
    /// Acknowledged copies into `copies` (package, version, sha256).
    pub copies: Vec<AckedPush>,
    /// Tag operations per tag.
    pub tags: BTreeMap<String, Vec<TagOp>>,
    /// Versions pushed so far (acknowledged or not) that a client may pull, delete or copy.
    pub known: Vec<(String, String)>,
}

/// One simulated cluster.
pub struct Cluster {
    /// The run's settings.
    pub config: SimConfig,
    /// Every node ever in the cluster, by id order (ids start at 1).
    pub nodes: Vec<Arc<SimNode>>,
    /// The network between them.
    pub network: Arc<Network>,
    /// The cluster's TLS identity (the peer service needs one; the simulated network has no TLS).
    pub identity: ClusterIdentity,
    /// What happened.
    pub trace: Trace,
    history: Mutex<History>,
    violations: Mutex<Vec<String>>,
    leaders: Mutex<BTreeMap<u64, u64>>,
    /// Nodes a fault removed from the membership, or tried to (a removal whose answer was lost may
    /// still take effect), to be added back.
    pub removed: Mutex<BTreeSet<u64>>,
    /// Set when the workload is done: the fault schedule stops after the fault it is injecting.
    pub faults_stopping: AtomicBool,
}

/// Why the cluster could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The cluster TLS identity.
    #[error("cluster identity: {0}")]
    Identity(String),
    /// A node did not start.
    #[error("node {id}: {reason}")]
    Node {
        /// The node.
        id: u64,
        /// Why.
        reason: String,
    },
}

impl Cluster {
    /// The nodes of `config`'s topology (not started), on one network.
    pub fn new(config: SimConfig) -> Result<Arc<Cluster>, SetupError> {
        let identity =
            ClusterIdentity::create_cluster(1).map_err(|e| SetupError::Identity(e.to_string()))?;
        let network = Network::new(config.seed ^ 0x6e65_7477_6f72_6b00);
        let started = Instant::now();
        let topology = config.topology;
        let mut nodes = Vec::new();
        let roles = std::iter::repeat_n(NodeRole::Full, topology.full_per_site).chain(
            std::iter::repeat_n(NodeRole::Cache, topology.cache_per_site),
        );
        let roles: Vec<NodeRole> = roles.collect();
        // Full nodes of every site first, so that node 1 (the founder) and the first voters are full.
        for role in &roles {
            for site in 0..topology.sites {
                let id = nodes.len() as u64 + 1;
                let clock = Arc::new(SimClock::new(started));
                let disk = Disk::new(config.seed.wrapping_mul(31).wrapping_add(id), clock.clone());
                network.attach(id, site);
                nodes.push(Arc::new(SimNode::new(id, site, *role, disk, clock)));
            }
        }
        Ok(Arc::new(Cluster {
            trace: Trace::new(config.keep_trace),
            config,
            nodes,
            network,
            identity,
            history: Mutex::new(History::default()),
            violations: Mutex::new(Vec::new()),
            leaders: Mutex::new(BTreeMap::new()),
            removed: Mutex::new(BTreeSet::new()),
            faults_stopping: AtomicBool::new(false),
        }))
    }

    /// The history so far.
    pub fn history(&self) -> MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that an invariant does not hold.
    pub fn violation(&self, what: String) {
        self.trace.event(format!("VIOLATION {what}"));
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }

    /// The violations found so far.
    pub fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The node with id `id`.
    pub fn node(&self, id: u64) -> Option<&Arc<SimNode>> {
        self.nodes.get(id.checked_sub(1)? as usize)
    }

    /// Takes every node down and lets go of what links them: the network's services hold each
    /// node's Raft, whose peers hold the network, so a finished run would otherwise outlive itself.
    pub fn tear_down(&self) {
        for node in &self.nodes {
            drop(node.take_down(&self.network));
        }
    }

    /// Starts node `id`; a failure to start is recorded in the trace and leaves it down.
    pub async fn start(&self, id: u64) -> bool {
        let Some(node) = self.node(id) else {
            return false;
        };
        match node.start(&self.network, &self.identity).await {
            Ok(()) => {
                self.trace.event(format!("node {id} started"));
                true
            }
            Err(error) => {
                self.trace
                    .event(format!("node {id} failed to start: {error}"));
                false
            }
        }
    }

    /// Starts the founder, then every other node, added as a learner and (full nodes) promoted to voter.
    pub async fn form(&self) -> Result<(), SetupError> {
        if !self.start(1).await {
            return Err(SetupError::Node {
                id: 1,
                reason: "the founder did not start".to_string(),
            });
        }
        for node in self.nodes.iter().skip(1) {
            if !self.start(node.id).await {
                return Err(SetupError::Node {
                    id: node.id,
                    reason: "did not start".to_string(),
                });
            }
            self.add_member(node)
                .await
                .map_err(|reason| SetupError::Node {
                    id: node.id,
                    reason,
                })?;
        }
        Ok(())
    }

    /// Adds `node` to the membership through any running member: as a learner, then (full nodes) as
    /// a voter.
    pub async fn add_member(&self, node: &SimNode) -> Result<(), String> {
        match tokio::time::timeout(MEMBERSHIP_TIMEOUT, self.try_add_member(node)).await {
            Ok(result) => result,
            Err(_) => Err(format!("not done within {MEMBERSHIP_TIMEOUT:?}")),
        }
    }

    async fn try_add_member(&self, node: &SimNode) -> Result<(), String> {
        // Through a node that leads, when one does: a node removed from the membership knows no
        // leader to forward to.
        let via = self
            .leader_except(node.id)
            .or_else(|| self.any_running_except(node.id))
            .ok_or("no member is running")?;
        let add = MembershipChange::AddLearner {
            node_id: node.id,
            node: node.info(),
        };
        via.meta
            .change_membership(add)
            .await
            .map_err(|e| e.to_string())?;
        if node.role == NodeRole::Full {
            let promote = MembershipChange::Promote { node_id: node.id };
            via.meta
                .change_membership(promote)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.trace.event(format!("node {} is a member", node.id));
        Ok(())
    }

    /// The running node other than `id` that believes it leads, of the highest term if several do.
    pub fn leader_except(&self, id: u64) -> Option<Running> {
        self.nodes
            .iter()
            .filter(|node| node.id != id)
            .filter_map(|node| node.running())
            .filter(|running| {
                running.meta.raft_metrics().current_leader == Some(running.meta.node_id())
            })
            .max_by_key(|running| running.meta.raft_metrics().current_term)
    }

    /// A running node other than `id`, the lowest id first.
    pub fn any_running_except(&self, id: u64) -> Option<Running> {
        self.nodes
            .iter()
            .filter(|node| node.id != id)
            .find_map(|node| node.running())
    }

    /// The running node a client at `site` talks to: one at its site, else any.
    pub fn nearest_running(&self, site: usize, pick: usize) -> Option<(Arc<SimNode>, Running)> {
        let running: Vec<(&Arc<SimNode>, Running)> = self
            .nodes
            .iter()
            .filter_map(|node| Some((node, node.running()?)))
            .collect();
        let at_site = running.iter().filter(|(node, _)| node.site == site).count();
        let choices: Vec<&(&Arc<SimNode>, Running)> = running
            .iter()
            .filter(|(node, _)| at_site == 0 || node.site == site)
            .collect();
        let (node, parts) = choices.get(pick % choices.len().max(1))?;
        Some(((*node).clone(), parts.clone()))
    }

    /// Notes every node's claim to lead its current term; two leaders of one term is a violation.
    pub fn observe_leaders(&self) {
        for node in &self.nodes {
            let Some(running) = node.running() else {
                continue;
            };
            let metrics = running.meta.raft_metrics();
            if metrics.current_leader != Some(node.id) || !metrics.state.is_leader() {
                continue;
            }
            let term = metrics.current_term;
            let earlier = self
                .leaders
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(term, node.id);
            match earlier {
                Some(other) if other != node.id => self.violation(format!(
                    "two leaders in term {term}: node {other} and node {}",
                    node.id
                )),
                Some(_) => {}
                None => self
                    .trace
                    .event(format!("node {} leads term {term}", node.id)),
            }
        }
    }

    /// Watches for leaders every 20 ms until the task is aborted.
    pub async fn watch_leaders(self: Arc<Self>) {
        loop {
            self.observe_leaders();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
