//! Metadata consensus: every metadata change is a [`Command`] proposed to openraft, persisted in the
//! redb-backed log and applied by the deterministic state machine ([`apply`]) to the state tables
//! ([`tables`]). Reads go through read transactions ([`view`]): a consistent view of the applied
//! state that never waits for the apply loop. A write on a follower is forwarded to the leader, and
//! answered once this node has applied it too (read-after-write on the node that wrote). Membership
//! changes (add a learner, promote, remove) run on the leader, wherever they are asked for.
//! Snapshots are files streamed from a read transaction ([`snapshot`]), built when the log has
//! grown by a share of the state's size; the formats of everything written are in [`format`].

pub mod apply;
pub mod changes;
mod copies;
pub mod files;
pub mod format;
mod identity;
pub mod keys;
pub mod network;
pub mod request_audit;
pub mod runtime;
pub mod snapshot;
pub mod store;
pub mod tables;
pub mod usage;
pub mod view;
pub mod webhooks;

pub use self::apply::MANIFEST_FILE;
pub use self::view::{PackageContents, ReadView, StateRead, StoreError};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arca_protocol::api::{ClusterNodeStatus, ClusterStatus};
use arca_protocol::cluster::{MembershipChange, PeerError, PeerRequest, PeerResponse};
use arca_protocol::{
    BlobRef, ChunkFence, Command, CommandError, CommandOutcome, NodeInfo, NodeRole,
};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, Raft, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::time::Instant;

use self::files::{LocalFiles, MetaFiles, SnapshotFile};
use self::format::{FormatError, LogCommand, UNVERSIONED_FILE};
use self::network::RaftPeers;
use self::store::{CacheSizes, LogStore, OpenError, StateHandle, StateMachineStore};
use self::view::ReadResult;
use crate::inject::{self, Defect};
use crate::transfer::{PeerNetwork, TransferError, decode, encode, unexpected};
openraft::declare_raft_types!(
    /// Arca's Raft type configuration.
    pub TypeConfig:
        D = LogCommand,
        R = CommandOutcome,
        NodeId = u64,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotFile,
        AsyncRuntime = runtime::SeededTokio,
);

/// Why metadata could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The metadata files could not be opened, or are of another format.
    #[error("metadata in {path}: {source}")]
    Open {
        /// The metadata directory.
        path: String,
        /// The cause.
        source: OpenError,
    },
    /// Raft could not start or elect a leader.
    #[error("raft: {0}")]
    Raft(String),
}

/// Why a proposed command did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// The state machine refused it; nothing changed.
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// Raft could not commit it (no leader, shutting down), or the state could not be read.
    #[error("metadata is unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for ProposeError {
    fn from(error: StoreError) -> Self {
        ProposeError::Unavailable(error.to_string())
    }
}

/// The longest a follower waits to catch up with the leader before serving a write request.
const READ_BARRIER_LIMIT: Duration = Duration::from_secs(3);

/// Bytes of a snapshot sent per install-snapshot RPC.
const SNAPSHOT_CHUNK_BYTES: u64 = 8 << 20;
/// How long one install-snapshot RPC (the last one installs the snapshot) may take.
const SNAPSHOT_CHUNK_TIMEOUT_MS: u64 = 10 * 60 * 1000;

/// How often the snapshot trigger looks at the log's growth.
const SNAPSHOT_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Settings of the Raft instance.
#[derive(Clone)]
pub struct MetaOptions {
    /// This node's Raft id.
    pub node_id: u64,
    /// Who this node is, as the membership records it.
    pub node: NodeInfo,
    /// Start a new one-member cluster when the store holds none (false for a node that joins).
    pub bootstrap: bool,
    /// Build a snapshot (and purge the log) once the log has grown by this many bytes, or by
    /// `snapshot_state_percent` of the state's size when that is more.
    pub snapshot_log_bytes: u64,
    /// The share of the state's size (in percent; 0: none) the log must grow by before a snapshot.
    pub snapshot_state_percent: u64,
    /// How long a write may wait for a quorum before it is refused.
    pub write_timeout: Duration,
    /// How Raft reaches other members.
    pub network: Arc<dyn PeerNetwork>,
    /// The databases' page caches.
    pub caches: CacheSizes,
}

/// Handle to the metadata: propose commands, read the applied state, manage membership.
#[derive(Clone)]
pub struct Meta {
    raft: Raft<TypeConfig>,
    node_id: u64,
    write_timeout: Duration,
    network: Arc<dyn PeerNetwork>,
    state: StateHandle,
    /// The log database this instance keeps so that [`Meta::shutdown`] can close it last.
    database: Arc<Mutex<Option<Arc<redb::Database>>>>,
    /// Where the chunks of blobs being committed are held ([`Meta::hold_chunks_with`]).
    chunks: Arc<OnceLock<Arc<dyn HoldChunks>>>,
}

/// Holds the chunks of blobs against garbage collection while a write that carries them commits.
pub trait HoldChunks: Send + Sync + 'static {
    /// Pins every chunk of `blobs` here; `None` (holding nothing) when one is not stored here.
    fn hold(&self, blobs: &[&BlobRef]) -> Option<Box<dyn Send>>;
    /// The collection epoch writes are fenced with when the chunks live in a store several nodes
    /// write into; `None`: this node's own.
    fn shared_fence(&self) -> Option<u64>;
}

/// Fenced proposals of one write (each after a collection step refused the one before) before it
/// is refused for the client to retry.
const FENCE_ATTEMPTS: u32 = 4;

fn unavailable(error: impl std::fmt::Display) -> ProposeError {
    ProposeError::Unavailable(error.to_string())
}

/// The range openraft draws a node's election timeout from, in milliseconds.
const ELECTION_TIMEOUT_MS: std::ops::Range<u64> = 1000..2000;

/// Calls an election on this node when no leader has been known for two waits in a row, each drawn
/// afresh from twice [`ELECTION_TIMEOUT_MS`].
///
/// Raft draws a new random election timeout for every election; openraft 0.9 draws one per node,
/// when it starts, and checks it on a periodic tick. Two voters that start at the same moment with
/// timeouts in the same tick then stand against each other at every election, forever, each voting
/// for itself. The simulator found that livelock after a whole-cluster power loss, and a real cluster
/// can fall into it when two nodes' ticks lie closer than the time a vote request takes between them.
/// A wait that is new each time breaks the tie. Stops with Raft.
async fn break_election_ties(raft: Raft<TypeConfig>) {
    use rand_08::Rng;
    let mut leaderless_before = false;
    loop {
        let wait_ms = runtime::ThreadGenerator
            .gen_range(ELECTION_TIMEOUT_MS.start * 2..ELECTION_TIMEOUT_MS.end * 2);
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        let watch = raft.metrics();
        let metrics = watch.borrow().clone();
        if metrics.running_state.is_err() || watch.has_changed().is_err() {
            return;
        }
        let voter = metrics
            .membership_config
            .voter_ids()
            .any(|id| id == metrics.id);
        let leaderless = metrics.current_leader.is_none() && voter;
        if leaderless && leaderless_before {
            tracing::info!(
                term = metrics.current_term,
                "no leader for a while: calling an election"
            );
            if raft.trigger().elect().await.is_err() {
                return;
            }
        }
        leaderless_before = leaderless;
    }
}

/// Builds a snapshot whenever the log has grown by `log_bytes` since the last one, or by
/// `state_percent` of the state database's size when that is more, so the cost of snapshots stays a
/// fixed share of the cost of writes whatever the size of the state. Stops with Raft.
async fn trigger_snapshots(
    raft: Raft<TypeConfig>,
    files: Arc<dyn MetaFiles>,
    appended: Arc<std::sync::atomic::AtomicU64>,
    (log_bytes, state_percent): (u64, u64),
) {
    let mut since = appended.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(SNAPSHOT_CHECK_EVERY).await;
        let watch = raft.metrics();
        if watch.borrow().running_state.is_err() || watch.has_changed().is_err() {
            return;
        }
        let grown = appended.load(Ordering::Relaxed).saturating_sub(since);
        if grown < log_bytes {
            continue;
        }
        let state_bytes = files.size(format::STATE_FILE).unwrap_or(0);
        if grown < state_bytes.saturating_mul(state_percent) / 100 {
            continue;
        }
        since = appended.load(Ordering::Relaxed);
        tracing::debug!(grown, state_bytes, "log grown: building a snapshot");
        if raft.trigger().snapshot().await.is_err() {
            return;
        }
    }
}

fn raft_error(error: impl std::fmt::Display) -> MetaError {
    MetaError::Raft(error.to_string())
}

impl Meta {
    /// Opens the metadata in the data directory `data_dir` (its `meta/` folder) and starts Raft. A
    /// node told to bootstrap initialises a one-member cluster on first start; a cluster of one
    /// waits until it has elected itself. Metadata of a format this build does not read is refused.
    pub async fn open(data_dir: &Path, options: MetaOptions) -> Result<Meta, MetaError> {
        let dir = data_dir.join("meta");
        let failed = |source: OpenError| MetaError::Open {
            path: dir.display().to_string(),
            source,
        };
        let unversioned = data_dir.join(UNVERSIONED_FILE);
        if unversioned.exists() && !dir.join(format::LOG_FILE).exists() {
            return Err(failed(OpenError::Format(FormatError::Unversioned {
                path: unversioned.display().to_string(),
                supported: format::STATE_FORMAT,
            })));
        }
        let files = LocalFiles::new(&dir).map_err(|source| {
            failed(OpenError::File {
                file: dir.display().to_string(),
                source,
            })
        })?;
        Meta::open_in(Arc::new(files), options)
            .await
            .map_err(|error| match error {
                MetaError::Open { source, .. } => failed(source),
                other => other,
            })
    }

    /// [`Meta::open`] on any metadata files (the simulator's disk).
    pub async fn open_in(
        files: Arc<dyn MetaFiles>,
        options: MetaOptions,
    ) -> Result<Meta, MetaError> {
        let failed = |source: OpenError| MetaError::Open {
            path: "metadata files".to_string(),
            source,
        };
        let log_db = store::open_log(files.as_ref(), options.caches.log).map_err(failed)?;
        let database = Arc::new(Mutex::new(Some(log_db.clone())));
        let log_store = LogStore::new(log_db.clone());
        let appended = log_store.appended_bytes();
        let state_machine =
            StateMachineStore::open(files.clone(), log_db, options.caches.state).map_err(failed)?;
        let state = state_machine.state();
        let config = openraft::Config {
            cluster_name: "arca".to_string(),
            heartbeat_interval: 250,
            election_timeout_min: ELECTION_TIMEOUT_MS.start,
            election_timeout_max: ELECTION_TIMEOUT_MS.end,
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: 100,
            // A snapshot travels in chunks; the last one's answer waits until the receiver has
            // written the whole state into a fresh database, which takes seconds per million
            // versions: a chunk may take that long before it is sent again (from the start).
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            install_snapshot_timeout: SNAPSHOT_CHUNK_TIMEOUT_MS,
            ..Default::default()
        }
        .validate()
        .map_err(raft_error)?;
        let raft = Raft::new(
            options.node_id,
            Arc::new(config),
            RaftPeers::new(options.network.clone()),
            log_store,
            state_machine,
        )
        .await
        .map_err(raft_error)?;
        let initialized = raft.is_initialized().await.map_err(raft_error)?;
        if !initialized && options.bootstrap {
            let members = BTreeMap::from([(options.node_id, options.node.clone())]);
            raft.initialize(members).await.map_err(raft_error)?;
            tracing::info!(
                node_id = options.node_id,
                "initialised a new one-member cluster"
            );
        }
        tokio::spawn(break_election_ties(raft.clone()));
        tokio::spawn(trigger_snapshots(
            raft.clone(),
            files,
            appended,
            (options.snapshot_log_bytes, options.snapshot_state_percent),
        ));
        let meta = Meta {
            raft,
            node_id: options.node_id,
            write_timeout: options.write_timeout,
            network: options.network,
            state,
            database,
            chunks: Arc::default(),
        };
        let alone = meta
            .raft_metrics()
            .membership_config
            .voter_ids()
            .eq([options.node_id]);
        if alone {
            // The only voter need not wait an election timeout to find nobody else leads.
            if meta.raft_metrics().current_leader.is_none()
                && let Err(error) = meta.raft.trigger().elect().await
            {
                tracing::debug!(%error, "calling an election at start");
            }
            meta.raft
                .wait(Some(Duration::from_secs(30)))
                .metrics(|m| m.current_leader.is_some(), "a leader is known")
                .await
                .map_err(raft_error)?;
        }
        Ok(meta)
    }

    /// This node's Raft id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Proposes a command and waits until it is committed and applied here. On a follower the command
    /// is forwarded to the leader. Without a quorum within the write timeout the write is refused as
    /// unavailable. Within an audited request, the request's audit event travels with its first
    /// change, in the same entry ([`request_audit`]).
    pub async fn propose(&self, command: Command) -> Result<(), ProposeError> {
        let (command, audited) = request_audit::attach(command);
        let result = self.propose_fenced(command).await;
        if let Some((request, event)) = audited {
            request_audit::settle(&request, event, result.is_ok());
        }
        result
    }

    /// Lets writes that carry blobs hold their chunks in `chunks` while they commit (see
    /// [`Meta::propose`]); without it (a metadata-only test) they are proposed unfenced.
    pub fn hold_chunks_with(&self, chunks: Arc<dyn HoldChunks>) {
        let _ = self.chunks.set(chunks);
    }

    /// Proposes `command`; when it carries blobs with chunks, fences it against garbage collection
    /// ([`Command::Fenced`]): their chunks are pinned here (found still stored) and this node's
    /// collection epoch read while they are, and the write is applied only if no collection step
    /// that may remove chunks began here in between. When one did, the chunks are held (and the
    /// epoch read) again and the write proposed again, a few times. A write whose chunks are not
    /// all here is proposed unfenced only when the state holds all its blobs already (a
    /// cross-repository mount of a blob stored elsewhere); otherwise it is refused with
    /// [`CommandError::Retry`] (the client sends the bytes again).
    async fn propose_fenced(&self, command: Command) -> Result<(), ProposeError> {
        let Some(chunks) = self.chunks.get() else {
            return self.propose_command(command).await;
        };
        let blobs: Vec<BlobRef> = command
            .blobs()
            .into_iter()
            .filter(|blob| !blob.chunks.is_empty())
            .cloned()
            .collect();
        if blobs.is_empty() {
            return self.propose_command(command).await;
        }
        self.place_copies(&command).await?;
        let blobs: Vec<&BlobRef> = blobs.iter().collect();
        let mut attempt = 1;
        loop {
            let held = chunks.hold(&blobs);
            let proposal = match &held {
                Some(_) => Command::Fenced {
                    fence: self.chunk_fence()?,
                    command: Box::new(command.clone()),
                },
                None if self.state_holds(&blobs)? => command.clone(),
                None => {
                    return Err(ProposeError::Refused(CommandError::Retry(format!(
                        "a chunk of blob {} is not on this node (garbage collection took it before \
                         the write was proposed): nothing was written; send it again",
                        blobs[0].sha256
                    ))));
                }
            };
            let outcome = self.propose_command(proposal).await;
            drop(held);
            match outcome {
                Err(ProposeError::Refused(CommandError::Retry(_))) if attempt < FENCE_ATTEMPTS => {
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// The collection epoch of this node's chunks as applied here.
    fn chunk_fence(&self) -> Result<ChunkFence, ProposeError> {
        use self::view::StateRead;
        let view = self.view().map_err(unavailable)?;
        let fence = self.fence_id();
        Ok(ChunkFence {
            node_id: fence,
            gc_epoch: view.gc_epoch(fence).map_err(unavailable)?,
        })
    }

    /// Whose collection epoch fences this node's writes: the shared store's when its chunks live
    /// in one several nodes write into (they all fence with it), else this node's.
    fn fence_id(&self) -> u64 {
        self.chunks
            .get()
            .and_then(|chunks| chunks.shared_fence())
            .unwrap_or(self.node_id)
    }

    /// True when the state applied here holds every one of `blobs`.
    fn state_holds(&self, blobs: &[&BlobRef]) -> Result<bool, ProposeError> {
        use self::view::StateRead;
        let view = self.view().map_err(unavailable)?;
        for blob in blobs {
            if view.blob(&blob.sha256).map_err(unavailable)?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn propose_command(&self, command: Command) -> Result<(), ProposeError> {
        let deadline = Instant::now() + self.write_timeout;
        loop {
            match self.write_here_or_find_leader(&command, deadline).await? {
                Ok(outcome) => return Ok(outcome?),
                Err(Some(leader)) => match self.forward(&leader, &command, deadline).await {
                    Ok(outcome) => return Ok(outcome?),
                    Err(Retry::Later) => {}
                    Err(Retry::Never(reason)) => return Err(ProposeError::Unavailable(reason)),
                },
                Err(None) => {}
            }
            if Instant::now() >= deadline {
                return Err(ProposeError::Unavailable(
                    "no leader with a quorum could be reached; try again".to_string(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes on this node when it leads: `Ok(outcome)`. Otherwise `Err(Some(leader))` to forward to,
    /// or `Err(None)` when no leader is known yet.
    async fn write_here_or_find_leader(
        &self,
        command: &Command,
        deadline: Instant,
    ) -> Result<Result<CommandOutcome, Option<NodeInfo>>, ProposeError> {
        let logged = LogCommand::encode(command)
            .map_err(|e| ProposeError::Refused(CommandError::Invalid(e.to_string())))?;
        match tokio::time::timeout_at(deadline, self.raft.client_write(logged)).await {
            Err(_) => Err(ProposeError::Unavailable(format!(
                "the write was not committed within {:?}: no quorum",
                self.write_timeout
            ))),
            Ok(Ok(response)) => Ok(Ok(response.data)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                Ok(Err(forward.leader_node))
            }
            Ok(Err(error)) => Err(ProposeError::Unavailable(error.to_string())),
        }
    }

    /// Sends a write to the leader and waits until this node has applied it.
    async fn forward(
        &self,
        leader: &NodeInfo,
        command: &Command,
        deadline: Instant,
    ) -> Result<CommandOutcome, Retry> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let answer = self
            .network
            .call(
                &leader.quic,
                PeerRequest::Write(Box::new(command.clone())),
                Some(remaining),
            )
            .await;
        let (log_index, outcome) = match answer {
            Ok(PeerResponse::Written { log_index, outcome }) => (log_index, outcome),
            Ok(other) => return Err(Retry::Never(unexpected(&leader.quic, &other).to_string())),
            // The request never left, or the leader has moved on: nothing was written.
            Err(TransferError::Connect { .. })
            | Err(TransferError::Peer {
                error: PeerError::NotLeader { .. },
                ..
            }) => return Err(Retry::Later),
            Err(TransferError::Peer {
                error: PeerError::Unavailable(reason),
                ..
            }) => return Err(Retry::Never(reason)),
            Err(error) => return Err(Retry::Never(error.to_string())),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(remaining.max(Duration::from_millis(100))))
            .applied_index_at_least(Some(log_index), "the forwarded write is applied here")
            .await
            .map_err(|e| Retry::Never(format!("committed, but not yet applied here: {e}")))?;
        Ok(outcome)
    }

    /// On a follower, waits until this node has applied everything the cluster committed before the
    /// call (a read barrier: one round trip to the leader). The leader itself proposed every committed
    /// entry and needs no barrier. Gives up quietly after [`READ_BARRIER_LIMIT`]: what follows then
    /// reads this node's own, possibly older, state.
    pub async fn catch_up(&self) {
        if self.raft_metrics().current_leader == Some(self.node_id) {
            return;
        }
        let limit = READ_BARRIER_LIMIT.min(self.write_timeout);
        let deadline = Instant::now() + limit;
        let Ok(addr) = self.leader_addr() else { return };
        let request = PeerRequest::ReadIndex;
        let Ok(PeerResponse::ReadIndex(index)) =
            self.network.call(&addr, request, Some(limit)).await
        else {
            return;
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let applied = self
            .raft
            .wait(Some(remaining.max(Duration::from_millis(10))))
            .applied_index_at_least(Some(index), "read barrier")
            .await;
        if let Err(error) = applied {
            tracing::debug!(%error, "read barrier");
        }
    }

    /// A view of the applied state taken linearizably: it includes every write the cluster
    /// acknowledged before this call. The leader confirms with a quorum that it still leads; a
    /// follower asks the leader for its read index and waits until it has applied that far. Without a
    /// quorum the view is refused rather than served stale.
    pub async fn view_linearizable(&self) -> Result<ReadView, ProposeError> {
        let unavailable = |reason: String| ProposeError::Unavailable(reason);
        let index = if self.raft_metrics().current_leader == Some(self.node_id) {
            self.read_index_as_leader()
                .await
                .map_err(|e| unavailable(e.to_string()))?
        } else if inject::enabled(Defect::StaleFollowerRead) {
            0
        } else {
            let addr = self.leader_addr().map_err(|e| unavailable(e.to_string()))?;
            let limit = READ_BARRIER_LIMIT.min(self.write_timeout);
            match self
                .network
                .call(&addr, PeerRequest::ReadIndex, Some(limit))
                .await
            {
                Ok(PeerResponse::ReadIndex(index)) => index,
                Ok(other) => return Err(unavailable(unexpected(&addr, &other).to_string())),
                Err(error) => return Err(unavailable(error.to_string())),
            }
        };
        self.raft
            .wait(Some(READ_BARRIER_LIMIT))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        Ok(self.view()?)
    }

    /// Reads the applied state linearizably (see [`Meta::view_linearizable`]).
    pub async fn read_linearizable<R>(
        &self,
        read: impl FnOnce(&ReadView) -> ReadResult<R>,
    ) -> Result<R, ProposeError> {
        let view = self.view_linearizable().await?;
        Ok(read(&view)?)
    }

    /// The leader's side of a read barrier: confirms leadership with a quorum and returns the index a
    /// reader must have applied.
    pub async fn read_index_as_leader(&self) -> Result<u64, PeerError> {
        match tokio::time::timeout(self.write_timeout, self.raft.ensure_linearizable()).await {
            Ok(Ok(read_log_id)) => Ok(read_log_id.map_or(0, |log| log.index)),
            Ok(Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
                forward,
            )))) => Err(PeerError::NotLeader {
                leader: forward.leader_id,
            }),
            Ok(Err(error)) => Err(PeerError::Unavailable(error.to_string())),
            Err(_) => Err(PeerError::Unavailable(
                "no quorum confirmed the leader".to_string(),
            )),
        }
    }

    /// Serves a write forwarded by another node: commits it if this node leads.
    pub async fn write_for_peer(&self, command: Command) -> PeerResponse {
        let logged = match LogCommand::encode(&command) {
            Ok(logged) => logged,
            Err(error) => return PeerResponse::Failed(PeerError::Invalid(error.to_string())),
        };
        let write = self.raft.client_write(logged);
        match tokio::time::timeout(self.write_timeout, write).await {
            Ok(Ok(response)) => PeerResponse::Written {
                log_index: response.log_id.index,
                outcome: response.data,
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                PeerResponse::Failed(PeerError::NotLeader {
                    leader: forward.leader_id,
                })
            }
            Ok(Err(error)) => PeerResponse::Failed(PeerError::Unavailable(error.to_string())),
            Err(_) => PeerResponse::Failed(PeerError::Unavailable(format!(
                "not committed within {:?}: no quorum",
                self.write_timeout
            ))),
        }
    }

    /// Answers a Raft RPC from another member (`request` is one of the Raft kinds).
    pub async fn raft_rpc(&self, request: PeerRequest) -> PeerResponse {
        let encoded = match request {
            PeerRequest::AppendEntries(body) => match decode(&body) {
                Ok(rpc) => encode(&self.raft.append_entries(rpc).await),
                Err(e) => Err(e),
            },
            PeerRequest::Vote(body) => match decode(&body) {
                Ok(rpc) => encode(&self.raft.vote(rpc).await),
                Err(e) => Err(e),
            },
            PeerRequest::InstallSnapshot(body) => match decode(&body) {
                Ok(rpc) => encode(&self.raft.install_snapshot(rpc).await),
                Err(e) => Err(e),
            },
            _ => Err("not a raft request".to_string()),
        };
        match encoded {
            Ok(body) => PeerResponse::Raft(body),
            Err(reason) => PeerResponse::Failed(PeerError::Invalid(reason)),
        }
    }

    /// Makes a membership change: on the leader directly, otherwise by asking the leader.
    pub async fn change_membership(&self, change: MembershipChange) -> Result<(), PeerError> {
        let leader = self.raft_metrics().current_leader;
        if leader == Some(self.node_id) {
            return self.change_membership_as_leader(change).await;
        }
        let addr = self.leader_addr()?;
        match self
            .network
            .call(&addr, PeerRequest::ChangeMembership(change), None)
            .await
        {
            Ok(PeerResponse::MembershipChanged) => Ok(()),
            Ok(other) => Err(PeerError::Unavailable(
                unexpected(&addr, &other).to_string(),
            )),
            Err(TransferError::Peer { error, .. }) => Err(error),
            Err(error) => Err(PeerError::Unavailable(error.to_string())),
        }
    }

    /// The leader's part of [`Meta::change_membership`].
    pub async fn change_membership_as_leader(
        &self,
        change: MembershipChange,
    ) -> Result<(), PeerError> {
        let metrics = self.raft_metrics();
        if metrics.current_leader != Some(self.node_id) {
            return Err(PeerError::NotLeader {
                leader: metrics.current_leader,
            });
        }
        let mut membership = metrics.membership_config.membership().clone();
        if membership.get_joint_config().len() > 1 {
            // A change whose leader failed between its two steps left the joint configuration:
            // finish it (an empty change moves to the configuration it was heading for) first.
            if let Some(finished) = self
                .change_raft_membership(ChangeMembers::AddVoterIds(BTreeSet::new()), true)
                .await?
            {
                membership = finished;
            }
        }
        let known = |id: u64| {
            membership
                .nodes()
                .find(|(node, _)| **node == id)
                .map(|(_, n)| n.clone())
        };
        let is_voter = |id: u64| membership.voter_ids().any(|voter| voter == id);
        match change {
            MembershipChange::AddLearner { node_id, node } => match known(node_id) {
                Some(current) if current == node => Ok(()),
                Some(_) => {
                    let nodes = ChangeMembers::SetNodes(BTreeMap::from([(node_id, node)]));
                    self.change_raft_membership(nodes, true).await.map(drop)
                }
                // One step: adding a learner cannot be cut off half way.
                None => self
                    .raft
                    .add_learner(node_id, node, false)
                    .await
                    .map(drop)
                    .map_err(|error| PeerError::Unavailable(error.to_string())),
            },
            MembershipChange::Promote { node_id } => {
                let node =
                    known(node_id).ok_or_else(|| PeerError::NotFound(format!("node {node_id}")))?;
                if node.role == NodeRole::Cache {
                    return Err(PeerError::Invalid(format!(
                        "node {node_id} is a cache node; cache nodes do not vote"
                    )));
                }
                if is_voter(node_id) {
                    return Ok(());
                }
                let voters = ChangeMembers::AddVoterIds(BTreeSet::from([node_id]));
                self.change_raft_membership(voters, true).await.map(drop)
            }
            MembershipChange::Remove { node_id } => {
                if known(node_id).is_none() {
                    return Err(PeerError::NotFound(format!("node {node_id}")));
                }
                if node_id == self.node_id {
                    return Err(PeerError::Invalid(
                        "the leader cannot remove itself; remove it from another node after a new leader is elected".to_string(),
                    ));
                }
                let change = if is_voter(node_id) {
                    ChangeMembers::RemoveVoters(BTreeSet::from([node_id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([node_id]))
                };
                self.change_raft_membership(change, false).await?;
                if let Err(error) = self.propose(Command::ForgetNode { node_id }).await {
                    tracing::warn!(%error, node_id, "forgetting the removed node's replicas");
                }
                Ok(())
            }
        }
    }

    /// Runs one openraft membership change to its end on a task of its own, and answers the
    /// configuration it reached. openraft commits the joint configuration and then the final one
    /// in the caller's future: a caller that gave up between the two (a timeout, a client that
    /// went away) would leave the cluster in the joint configuration.
    async fn change_raft_membership(
        &self,
        changes: ChangeMembers<u64, NodeInfo>,
        retain: bool,
    ) -> Result<Option<openraft::Membership<u64, NodeInfo>>, PeerError> {
        let raft = self.raft.clone();
        let change = tokio::spawn(async move { raft.change_membership(changes, retain).await });
        match change.await {
            Ok(Ok(response)) => Ok(response.membership),
            Ok(Err(error)) => Err(PeerError::Unavailable(error.to_string())),
            Err(error) => Err(PeerError::Unavailable(error.to_string())),
        }
    }

    fn leader_addr(&self) -> Result<String, PeerError> {
        let metrics = self.raft_metrics();
        let leader = metrics
            .current_leader
            .ok_or_else(|| PeerError::Unavailable("no leader is known".to_string()))?;
        metrics
            .membership_config
            .nodes()
            .find(|(id, _)| **id == leader)
            .map(|(_, node)| node.quic.clone())
            .ok_or_else(|| PeerError::Unavailable(format!("leader {leader} has no address")))
    }

    /// The cluster as the leader sees it (asked of the leader when this node is not it; this node's
    /// own view, without lag, when no leader can be reached).
    pub async fn cluster_status(&self) -> ClusterStatus {
        let metrics = self.raft_metrics();
        if metrics.current_leader != Some(self.node_id)
            && let Ok(addr) = self.leader_addr()
            && let Ok(PeerResponse::Status(json)) =
                self.network.call(&addr, PeerRequest::Status, None).await
            && let Ok(mut status) = serde_json::from_str::<ClusterStatus>(&json)
        {
            status.answered_by = self.node_id;
            return status;
        }
        self.local_status()
    }

    /// This node's own view of the cluster; lag figures only when it leads.
    pub fn local_status(&self) -> ClusterStatus {
        let metrics = self.raft_metrics();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let last_index = metrics.last_log_index.unwrap_or(0);
        let matched = |id: u64| -> Option<u64> {
            if id == self.node_id && metrics.state == ServerState::Leader {
                return Some(last_index);
            }
            let replication = metrics.replication.as_ref()?;
            Some(replication.get(&id)?.as_ref().map_or(0, |log| log.index))
        };
        let nodes = membership
            .nodes()
            .map(|(id, node)| {
                let matched_index = matched(*id);
                ClusterNodeStatus {
                    id: *id,
                    site: node.site.clone(),
                    membership: if voters.contains(id) {
                        "voter"
                    } else {
                        "learner"
                    }
                    .to_string(),
                    role: node.role,
                    http: node.http.clone(),
                    quic: node.quic.clone(),
                    matched_index,
                    lag: matched_index.map(|m| last_index.saturating_sub(m)),
                }
            })
            .collect();
        ClusterStatus {
            answered_by: self.node_id,
            leader: metrics.current_leader,
            term: metrics.current_term,
            commit_index: metrics.last_applied.map_or(0, |log| log.index),
            nodes,
        }
    }

    /// The members and what they are.
    pub fn members(&self) -> Vec<(u64, NodeInfo)> {
        self.raft_metrics()
            .membership_config
            .nodes()
            .map(|(id, node)| (*id, node.clone()))
            .collect()
    }

    /// Runs `read` over a consistent view of the applied metadata (a read transaction: it sees
    /// every command applied before it began, and none of those after).
    pub fn read<R>(&self, read: impl FnOnce(&ReadView) -> ReadResult<R>) -> ReadResult<R> {
        read(&self.view()?)
    }

    fn log_database(&self) -> ReadResult<Arc<redb::Database>> {
        self.database
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Storage(Box::new(redb::StorageError::DatabaseClosed.into())))
    }

    /// A value of this node's own, kept beside the Raft log (never replicated).
    pub fn local_value<T: serde::de::DeserializeOwned>(&self, key: &str) -> ReadResult<Option<T>> {
        store::local_value(self.log_database()?.as_ref(), key)
    }

    /// Sets a value of this node's own ([`Meta::local_value`]).
    pub fn set_local_value<T: serde::Serialize>(&self, key: &str, value: &T) -> ReadResult<()> {
        store::set_local_value(self.log_database()?.as_ref(), key, value)
    }

    /// A consistent view of the applied metadata, to read several things from one point in time.
    pub fn view(&self) -> ReadResult<ReadView> {
        self.state.view()
    }

    /// Which packages the commands this node applied lately changed (see [`changes`]).
    pub fn changes(&self) -> &changes::PackageChanges {
        self.state.changes()
    }

    /// Begins a garbage-collection step that may remove chunks of this node: once this returns,
    /// every write fenced with an earlier epoch of this node is refused, and every write committed
    /// before it is applied here.
    pub async fn advance_gc_epoch(&self) -> Result<(), ProposeError> {
        self.propose_command(Command::AdvanceGcEpoch {
            node_id: self.fence_id(),
        })
        .await
    }

    /// A digest of the whole applied state (every table, in order): two nodes that applied the
    /// same log have the same digest.
    pub fn state_digest(&self) -> ReadResult<(Option<openraft::LogId<u64>>, String)> {
        use self::view::{Source, StateRead};
        let view = self.state.view()?;
        let mut hasher = blake3::Hasher::new();
        for &table in tables::Table::ALL {
            hasher.update(table.name().as_bytes());
            let everything = (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded);
            for entry in view.range_raw(table, &everything)? {
                let (key, value) = entry.map_err(StoreError::from)?;
                hasher.update(&(key.value().len() as u64).to_le_bytes());
                hasher.update(key.value());
                hasher.update(&(value.value().len() as u64).to_le_bytes());
                hasher.update(value.value());
            }
        }
        Ok((view.last_applied()?, hasher.finalize().to_hex().to_string()))
    }

    /// Raft's current metrics (term, leader, log indexes, membership).
    pub fn raft_metrics(&self) -> RaftMetrics<u64, NodeInfo> {
        self.raft.metrics().borrow().clone()
    }

    /// Resolves when Raft has stopped by itself (a storage error it cannot go on after: redb refuses
    /// every transaction after an I/O error until the database is opened again), with the reason.
    pub async fn stopped(&self) -> String {
        let mut watch = self.raft.metrics();
        loop {
            if let Err(fatal) = &watch.borrow_and_update().running_state {
                return fatal.to_string();
            }
            if watch.changed().await.is_err() {
                return "raft stopped".to_string();
            }
        }
    }

    /// A receiver that changes whenever Raft's metrics do (for example when entries are applied).
    pub fn watch(&self) -> tokio::sync::watch::Receiver<RaftMetrics<u64, NodeInfo>> {
        self.raft.metrics()
    }

    /// Builds a snapshot now and waits until it is stored.
    pub async fn snapshot_now(&self) -> Result<(), MetaError> {
        let before = self.raft_metrics().snapshot;
        let target = self.raft_metrics().last_applied;
        self.raft.trigger().snapshot().await.map_err(raft_error)?;
        self.raft
            .wait(Some(Duration::from_secs(30)))
            .metrics(
                |m| m.snapshot != before && m.snapshot >= target,
                "snapshot built",
            )
            .await
            .map_err(raft_error)?;
        Ok(())
    }

    /// Stops Raft, makes the applied state durable, waits (up to 10 s) until Raft's tasks have
    /// released the log database and closes it, so the same data directory can be opened again as
    /// soon as this returns.
    pub async fn shutdown(&self) {
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "raft shutdown");
        }
        let state = self.state.clone();
        match crate::blocking::spawn(move || state.sync()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "making the state durable at shutdown"),
            Err(error) => tracing::warn!(%error, "making the state durable at shutdown"),
        }
        let database = self
            .database
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(database) = database else { return };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&database) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Err(error) = crate::blocking::spawn(move || drop(database)).await {
            tracing::warn!(%error, "closing the metadata database");
        }
    }
}

/// What a failed forward means for the write.
enum Retry {
    /// Nothing was written; try again (a new leader, or a leader not reached yet).
    Later,
    /// The write may or may not have happened, or cannot happen: give up.
    Never(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_protocol::model::Metadata;
    use arca_protocol::{MetadataTarget, PackageType, Registry};
    use openraft::StorageError;
    use openraft::testing::{StoreBuilder, Suite};

    use self::view::StateRead;

    struct RedbBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for RedbBuilder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<u64>> {
            let dir = tempfile::tempdir().expect("temp dir");
            let files: Arc<dyn MetaFiles> = Arc::new(LocalFiles::new(dir.path()).expect("files"));
            let log = store::open_log(files.as_ref(), 1 << 20).expect("log database");
            let state_machine =
                StateMachineStore::open(files, log.clone(), 1 << 20).expect("state machine");
            Ok((dir, LogStore::new(log), state_machine))
        }
    }

    #[test]
    fn redb_storage_passes_the_openraft_suite() {
        Suite::test_all(RedbBuilder).expect("openraft storage suite");
    }

    fn create_registry(name: &str) -> Command {
        Command::CreateRegistry {
            registry: Registry {
                name: name.to_string(),
                package_type: PackageType::Generic,
                description: String::new(),
                immutable: false,
                allow_anonymous_read: false,
                allow_redeploy: false,
                created_at: 1,
                metadata: Metadata::new(),
                replication: Default::default(),
                kind: Default::default(),
                upstream: None,
                members: Vec::new(),
                publish_to: None,
                audit_downloads: false,
                cleanup: Default::default(),
                firewall: Default::default(),
            },
        }
    }

    fn options() -> MetaOptions {
        MetaOptions {
            node_id: 1,
            node: NodeInfo::default(),
            bootstrap: true,
            snapshot_log_bytes: u64::MAX,
            snapshot_state_percent: 50,
            write_timeout: Duration::from_secs(5),
            network: Arc::new(crate::transfer::NoNetwork),
            caches: CacheSizes::default(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restart_replays_log_after_snapshot_to_the_same_state() {
        let dir = tempfile::tempdir().expect("temp dir");
        let meta = Meta::open(dir.path(), options()).await.expect("open");
        for i in 0..5 {
            meta.propose(create_registry(&format!("before-{i}")))
                .await
                .expect("create");
        }
        meta.snapshot_now().await.expect("snapshot");
        for i in 0..3 {
            meta.propose(create_registry(&format!("after-{i}")))
                .await
                .expect("create");
        }
        meta.propose(Command::SetMetadata {
            target: MetadataTarget::Registry {
                registry: "after-2".into(),
            },
            entries: [("owner".to_string(), "ops".to_string())].into(),
        })
        .await
        .expect("metadata");
        let refused = meta.propose(create_registry("before-0")).await;
        assert!(matches!(
            refused,
            Err(ProposeError::Refused(CommandError::AlreadyExists(_)))
        ));
        assert_eq!(meta.read(|view| view.registries()).expect("read").len(), 8);
        let expected = meta.state_digest().expect("digest");
        meta.shutdown().await;
        drop(meta);

        let reopened = Meta::open(dir.path(), options()).await.expect("reopen");
        reopened
            .raft
            .wait(Some(Duration::from_secs(10)))
            .metrics(
                |m| m.last_applied.map(|l| l.index) >= m.last_log_index,
                "log replayed",
            )
            .await
            .expect("replay");
        assert_eq!(reopened.state_digest().expect("digest"), expected);
        let owner = reopened
            .read(|view| view.registry("after-2"))
            .expect("read")
            .and_then(|r| r.metadata.get("owner").cloned());
        assert_eq!(owner.as_deref(), Some("ops"));
        assert!(
            reopened.raft_metrics().snapshot.is_some(),
            "the snapshot was stored and loaded"
        );
        reopened.shutdown().await;
    }

    /// Holds chunks as a test says: advancing the collection epoch on the first hold (a collection
    /// step beginning while the write is on its way), or finding the chunks gone.
    struct TestHolder {
        meta: Meta,
        holds: std::sync::atomic::AtomicUsize,
        chunks_gone: bool,
        advance: Mutex<Option<tokio::task::JoinHandle<Result<(), ProposeError>>>>,
    }

    impl HoldChunks for TestHolder {
        fn shared_fence(&self) -> Option<u64> {
            None
        }

        fn hold(&self, blobs: &[&BlobRef]) -> Option<Box<dyn Send>> {
            assert!(blobs.iter().all(|blob| !blob.chunks.is_empty()));
            let holds = self.holds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.chunks_gone {
                return None;
            }
            if holds == 0 {
                let meta = self.meta.clone();
                // Proposed as the fence is read: applied before the write, unless the machine is
                // busy enough for the write to overtake it.
                let advance = tokio::spawn(async move { meta.advance_gc_epoch().await });
                *self.advance.lock().unwrap_or_else(|p| p.into_inner()) = Some(advance);
            }
            Some(Box::new(()))
        }
    }

    fn put_chunked(version: &str) -> Command {
        let chunk = arca_protocol::ChunkRef {
            id: arca_protocol::ChunkId([7; 32]),
            size: 5000,
        };
        Command::PutFile {
            registry: "r".into(),
            package: "p".into(),
            version: version.into(),
            filename: "f".into(),
            blob: BlobRef {
                sha256: arca_protocol::Sha256([version.len() as u8; 32]),
                size: 5000,
                chunks: vec![chunk],
                inline: None,
            },
            attributes: Default::default(),
            tags: Vec::new(),
            overwrite: arca_protocol::Overwrite::Allow,
            at: 1,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_refused_by_a_collection_step_is_fenced_again_and_one_without_chunks_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let meta = Meta::open(dir.path(), options()).await.expect("open");
        meta.propose(create_registry("r")).await.expect("create");
        let holder = Arc::new(TestHolder {
            meta: meta.clone(),
            holds: Default::default(),
            chunks_gone: false,
            advance: Mutex::new(None),
        });
        meta.hold_chunks_with(holder.clone());
        // The step's advance races the first proposal; whichever way it goes, the write commits
        // once, under a fence of the epoch it met.
        meta.propose(put_chunked("1.0")).await.expect("committed");
        let advance = holder
            .advance
            .lock()
            .expect("slot")
            .take()
            .expect("advanced");
        advance
            .await
            .expect("task")
            .expect("the step's fence committed");
        let (has, epoch) = meta
            .read(|view| Ok((view.has_version("r", "p", "1.0")?, view.gc_epoch(1)?)))
            .expect("read");
        assert!(has);
        assert_eq!(epoch, 1, "the collection step began");
        let holds = holder.holds.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..=2).contains(&holds), "held {holds} times");

        let gone = Meta::open(tempfile::tempdir().expect("dir").path(), options())
            .await
            .expect("open");
        gone.propose(create_registry("r")).await.expect("create");
        gone.hold_chunks_with(Arc::new(TestHolder {
            meta: gone.clone(),
            holds: Default::default(),
            chunks_gone: true,
            advance: Mutex::new(None),
        }));
        let refused = gone.propose(put_chunked("2.0")).await;
        assert!(
            matches!(refused, Err(ProposeError::Refused(CommandError::Retry(_)))),
            "{refused:?}"
        );
        assert!(
            !gone
                .read(|view| view.has_version("r", "p", "2.0"))
                .expect("read")
        );
        meta.shutdown().await;
        gone.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_metadata_and_the_chunk_store_it_holds_chunks_in_are_freed_together() {
        let dir = tempfile::tempdir().expect("temp dir");
        let meta = Meta::open(dir.path(), options()).await.expect("open");
        let chunks = Arc::new(
            crate::blob::ChunkStore::open(&dir.path().join("chunks"), 1 << 20).expect("store"),
        );
        let network: Arc<dyn PeerNetwork> = Arc::new(crate::transfer::NoNetwork);
        chunks.set_remote(Arc::new(crate::transfer::replication::PeerChunks::new(
            meta.clone(),
            network,
        )));
        meta.hold_chunks_with(Arc::new(Arc::downgrade(&chunks)));
        let store = Arc::downgrade(&chunks);
        drop(chunks);
        meta.shutdown().await;
        drop(meta);
        assert!(
            store.upgrade().is_none(),
            "the store (and the metadata it reaches) outlived every handle"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_data_directory_from_before_formats_is_refused_not_emptied() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(UNVERSIONED_FILE), b"old").expect("old file");
        let error = match Meta::open(dir.path(), options()).await {
            Ok(_) => panic!("an unversioned data directory must be refused"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("format 0"), "{error}");
        assert!(
            error.contains(&format!("format {}", format::STATE_FORMAT)),
            "{error}"
        );
        assert!(!dir.path().join("meta").join(format::STATE_FILE).exists());
    }
}

/// A state machine without Raft, for unit tests of what commands do.
#[cfg(test)]
pub mod testing {
    use std::sync::Arc;

    use arca_protocol::{Command, CommandOutcome};

    use super::ReadView;
    use super::store::{apply_one, memory_state};

    /// A state database in memory that applies commands one at a time.
    pub struct TestState(Arc<redb::Database>);

    impl Default for TestState {
        fn default() -> Self {
            Self::new()
        }
    }

    impl TestState {
        /// An empty state.
        pub fn new() -> TestState {
            TestState(Arc::new(memory_state().expect("state in memory")))
        }

        /// Applies `command`: applied, or refused with nothing changed.
        pub fn apply(&self, command: Command) -> CommandOutcome {
            apply_one(&self.0, command).expect("storage works")
        }

        /// Runs `change` on an applier of a transaction that is then committed.
        pub fn with_applier<R>(
            &self,
            change: impl FnOnce(&mut super::apply::Applier<'_>) -> Result<R, super::StoreError>,
        ) -> Result<R, super::StoreError> {
            let txn = self.0.begin_write()?;
            let result = change(&mut super::apply::Applier::new(&txn))?;
            txn.commit()?;
            Ok(result)
        }

        /// A view of the state as it is now.
        pub fn view(&self) -> ReadView {
            ReadView::open(self.0.clone()).expect("read transaction")
        }

        /// The newest `limit` audit events (by the time they were recorded), newest first.
        pub fn newest_events(&self, limit: usize) -> Vec<arca_protocol::model::AuditEvent> {
            use super::view::StateRead;
            let view = self.view();
            view.audit_ids_between(0, u64::MAX, limit)
                .expect("read")
                .into_iter()
                .filter_map(|id| view.audit_event(id).expect("read"))
                .collect()
        }

        /// A digest of every table.
        pub fn digest(&self) -> String {
            use super::view::Source;
            let view = self.view();
            let mut hasher = blake3::Hasher::new();
            for &table in super::tables::Table::ALL {
                let everything = (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded);
                for entry in view.range_raw(table, &everything).expect("range") {
                    let (key, value) = entry.expect("entry");
                    hasher.update(key.value());
                    hasher.update(value.value());
                }
            }
            hasher.finalize().to_hex().to_string()
        }
    }
}
