//! One simulated node: the node's real metadata (openraft, the redb store, the state machine), chunk
//! store, peer service, replication worker and periodic garbage collection, on a simulated disk,
//! network and clock. Crashing it drops everything in memory at once; starting it again opens what its
//! disk kept.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arca_node::blob::ChunkStore;
use arca_node::clock::{Clock, NeverAhead};
use arca_node::meta::store::CacheSizes;
use arca_node::meta::{Meta, MetaError, MetaOptions};
use arca_node::policy::gc::{self, GcOptions};
use arca_node::transfer::PeerNetwork;
use arca_node::transfer::replication::{PeerChunks, Replicator};
use arca_node::transfer::service::NodeService;
use arca_node::transfer::tls::ClusterIdentity;
use arca_protocol::{NodeInfo, NodeRole};
use tokio::task::JoinHandle;

use crate::clock::SimClock;
use crate::disk::Disk;
use crate::net::{Network, address};

/// How long unreferenced chunks are kept: longer than any upload takes to commit in a run (the write
/// timeout is 10 s), so that collection may only take what nothing refers to.
pub const GC_GRACE: Duration = Duration::from_secs(30);
/// How often each node collects garbage by itself.
const GC_EVERY: Duration = Duration::from_secs(4);
/// Memory tier of the chunk store: small, so that reads reach the disk and its faults.
const CHUNK_CACHE_BYTES: usize = 64 * 1024;
/// Log growth between snapshots: a few dozen commands, so runs install and send snapshots often.
const SNAPSHOT_LOG_BYTES: u64 = 32 * 1024;

/// A node and, while it runs, its parts.
pub struct SimNode {
    /// Raft id.
    pub id: u64,
    /// Index of its site.
    pub site: usize,
    /// Full or cache.
    pub role: NodeRole,
    /// Its disk, kept across crashes.
    pub disk: Arc<Disk>,
    /// Its clock.
    pub clock: Arc<SimClock>,
    running: Mutex<Option<Running>>,
    /// True until the first start has initialised the cluster (the founder only).
    founds: AtomicBool,
}

/// The parts of a running node.
#[derive(Clone)]
pub struct Running {
    /// Replicated metadata.
    pub meta: Meta,
    /// Chunks.
    pub chunks: Arc<ChunkStore>,
    /// The time of day garbage collection counts chunk ages on.
    gc_clock: Arc<NeverAhead>,
    tasks: Arc<Vec<JoinHandle<()>>>,
}

impl SimNode {
    /// A node that has not started; node 1 initialises the cluster on its first start.
    pub fn new(
        id: u64,
        site: usize,
        role: NodeRole,
        disk: Arc<Disk>,
        clock: Arc<SimClock>,
    ) -> Self {
        SimNode {
            id,
            site,
            role,
            disk,
            clock,
            running: Mutex::new(None),
            founds: AtomicBool::new(id == 1),
        }
    }

    /// Who this node is, as the membership records it.
    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            site: format!("site-{}", self.site),
            role: self.role,
            http: String::new(),
            quic: address(self.id),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running parts, unless the node is down.
    pub fn running(&self) -> Option<Running> {
        self.slot().clone()
    }

    /// Starts the node on a new generation of its disk.
    pub async fn start(
        &self,
        network: &Arc<Network>,
        identity: &ClusterIdentity,
    ) -> Result<(), MetaError> {
        let (chunk_files, meta_files) = self.disk.next_generation();
        let peer_network: Arc<dyn PeerNetwork> = network.endpoint(self.id);
        let meta = Meta::open_in(
            Arc::new(meta_files),
            MetaOptions {
                node_id: self.id,
                node: self.info(),
                bootstrap: self.founds.load(Ordering::Relaxed),
                snapshot_log_bytes: SNAPSHOT_LOG_BYTES,
                snapshot_state_percent: 0,
                write_timeout: Duration::from_secs(10),
                network: peer_network.clone(),
                caches: CacheSizes {
                    state: 4 << 20,
                    log: 1 << 20,
                },
            },
        )
        .await?;
        self.founds.store(false, Ordering::Relaxed);
        let chunks = Arc::new(ChunkStore::on(Arc::new(chunk_files), CHUNK_CACHE_BYTES));
        chunks.set_remote(Arc::new(PeerChunks::new(meta.clone(), peer_network)));
        meta.hold_chunks_with(Arc::new(Arc::downgrade(&chunks)));
        let clock: Arc<dyn Clock> = self.clock.clone();
        let gc_clock = Arc::new(NeverAhead::new(clock.clone()));
        network.up(
            self.id,
            Arc::new(NodeService {
                meta: meta.clone(),
                chunks: chunks.clone(),
                identity: identity.clone(),
                clock: clock.clone(),
            }),
        );
        let mut tasks = vec![tokio::spawn(gc::run_periodically(
            meta.clone(),
            chunks.clone(),
            gc_clock.clone(),
            GC_EVERY,
        ))];
        if self.role == NodeRole::Full {
            let replicator = Replicator::new(meta.clone(), chunks.clone(), self.info().site);
            tasks.push(tokio::spawn(replicator.run()));
        }
        *self.slot() = Some(Running {
            meta,
            chunks,
            gc_clock,
            tasks: Arc::new(tasks),
        });
        Ok(())
    }

    /// Crashes the node: its network, disk and tasks stop at once and Raft shuts down; what was
    /// not fsynced is lost (`torn`: any subset of the unsynced sectors kept).
    pub fn crash(&self, network: &Network, torn: bool) {
        let running = self.take_down(network);
        self.disk.crash(torn);
        if let Some(running) = running {
            let meta = running.meta;
            tokio::spawn(async move { meta.shutdown().await });
        }
    }

    /// Cuts the node off the network and aborts its tasks; answers its running parts, if it was up.
    pub fn take_down(&self, network: &Network) -> Option<Running> {
        network.down(self.id);
        let running = self.slot().take()?;
        for task in running.tasks.iter() {
            task.abort();
        }
        Some(running)
    }

    /// True when Raft stopped by itself (a storage error is fatal to it): the node must restart.
    pub fn raft_failed(&self) -> bool {
        self.slot()
            .as_ref()
            .is_some_and(|running| running.meta.raft_metrics().running_state.is_err())
    }
}

/// One garbage collection on `running` now, with the simulation's grace period.
pub async fn collect_garbage(running: &Running) -> Result<u64, String> {
    let options = GcOptions {
        dry_run: false,
        grace: GC_GRACE,
    };
    gc::run(
        &running.meta,
        &running.chunks,
        running.gc_clock.as_ref(),
        options,
    )
    .await
    .map(|report| report.removed)
    .map_err(|e| e.to_string())
}
