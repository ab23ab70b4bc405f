//! Metadata consensus: every metadata change is a [`Command`] proposed to openraft, persisted in the
//! redb-backed log and applied by the deterministic state machine in [`state`]. A single node is a
//! one-member Raft cluster; reads come from the local applied state.

pub mod network;
pub mod state;
pub mod store;

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arca_protocol::{Command, CommandError, CommandOutcome};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft, RaftMetrics, SnapshotPolicy};

use self::network::NoPeers;
use self::state::MetaState;
use self::store::{AppliedState, LogStore, StateMachineStore};

openraft::declare_raft_types!(
    /// Arca's Raft type configuration.
    pub TypeConfig:
        D = Command,
        R = CommandOutcome,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Why metadata could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The redb database could not be opened.
    #[error("opening metadata database {path}: {source}")]
    Database {
        /// The database file.
        path: String,
        /// The cause.
        source: Box<redb::Error>,
    },
    /// The stored state machine could not be loaded.
    #[error("loading metadata state: {0}")]
    Load(String),
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
    /// Raft could not commit it (no leader, shutting down).
    #[error("metadata is unavailable: {0}")]
    Unavailable(String),
}

/// Settings of the Raft instance.
#[derive(Debug, Clone)]
pub struct MetaOptions {
    /// This node's Raft id.
    pub node_id: u64,
    /// Address other nodes use to reach this one.
    pub advertise_addr: String,
    /// Build a snapshot after this many applied entries.
    pub snapshot_every: u64,
}

/// Handle to the metadata: propose commands, read the applied state.
#[derive(Clone)]
pub struct Meta {
    raft: Raft<TypeConfig>,
    applied: Arc<RwLock<AppliedState>>,
    /// The database handle this instance keeps so that [`Meta::shutdown`] can close it last.
    database: Arc<Mutex<Option<Arc<redb::Database>>>>,
}

impl Meta {
    /// Opens the metadata database at `path`, starts Raft and, on first start, initialises a one-member
    /// cluster; returns once this node knows a leader.
    pub async fn open(path: &Path, options: MetaOptions) -> Result<Meta, MetaError> {
        let db = store::open_database(path).map_err(|source| MetaError::Database {
            path: path.display().to_string(),
            source,
        })?;
        let database = Arc::new(Mutex::new(Some(db.clone())));
        let log_store = LogStore::new(db.clone());
        let state_machine =
            StateMachineStore::open(db).map_err(|e| MetaError::Load(e.to_string()))?;
        let applied = state_machine.applied();
        let config = openraft::Config {
            cluster_name: "arca".to_string(),
            heartbeat_interval: 250,
            election_timeout_min: 300,
            election_timeout_max: 600,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(options.snapshot_every),
            max_in_snapshot_log_to_keep: 100,
            ..Default::default()
        }
        .validate()
        .map_err(|e| MetaError::Raft(e.to_string()))?;
        let raft = Raft::new(
            options.node_id,
            Arc::new(config),
            NoPeers,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| MetaError::Raft(e.to_string()))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| MetaError::Raft(e.to_string()))?;
        if !initialized {
            let members = std::collections::BTreeMap::from([(
                options.node_id,
                BasicNode::new(options.advertise_addr.clone()),
            )]);
            raft.initialize(members)
                .await
                .map_err(|e| MetaError::Raft(e.to_string()))?;
            tracing::info!(
                node_id = options.node_id,
                "initialised a new one-member cluster"
            );
        }
        raft.wait(Some(Duration::from_secs(30)))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .map_err(|e| MetaError::Raft(e.to_string()))?;
        Ok(Meta {
            raft,
            applied,
            database,
        })
    }

    /// Proposes a command and waits until it is committed and applied here.
    pub async fn propose(&self, command: Command) -> Result<(), ProposeError> {
        match self.raft.client_write(command).await {
            Ok(response) => Ok(response.data?),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(ProposeError::Unavailable(format!(
                    "this node is not the leader (leader: {:?})",
                    forward.leader_id
                )))
            }
            Err(error) => Err(ProposeError::Unavailable(error.to_string())),
        }
    }

    /// Runs `read` over the applied metadata.
    pub fn read<R>(&self, read: impl FnOnce(&MetaState) -> R) -> R {
        let applied = self
            .applied
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        read(&applied.meta)
    }

    /// Raft's current metrics (term, leader, log indexes).
    pub fn raft_metrics(&self) -> RaftMetrics<u64, BasicNode> {
        self.raft.metrics().borrow().clone()
    }

    /// Builds a snapshot now and waits until it is stored.
    pub async fn snapshot_now(&self) -> Result<(), MetaError> {
        let before = self.raft_metrics().snapshot;
        let target = self.raft_metrics().last_applied;
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| MetaError::Raft(e.to_string()))?;
        self.raft
            .wait(Some(Duration::from_secs(30)))
            .metrics(
                |m| m.snapshot != before && m.snapshot >= target,
                "snapshot built",
            )
            .await
            .map_err(|e| MetaError::Raft(e.to_string()))?;
        Ok(())
    }

    /// Stops Raft, waits (up to 10 s) until its tasks have released the database and closes it, so the
    /// same data directory can be opened again as soon as this returns.
    pub async fn shutdown(&self) {
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "raft shutdown");
        }
        let database = self
            .database
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(database) = database else { return };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&database) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Err(error) = tokio::task::spawn_blocking(move || drop(database)).await {
            tracing::warn!(%error, "closing the metadata database");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_protocol::model::Metadata;
    use arca_protocol::{MetadataTarget, PackageType, Registry};
    use openraft::StorageError;
    use openraft::testing::{StoreBuilder, Suite};

    struct RedbBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for RedbBuilder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<u64>> {
            let dir = tempfile::tempdir().expect("temp dir");
            let db = store::open_database(&dir.path().join("meta.redb")).expect("database");
            let state_machine = StateMachineStore::open(db.clone()).expect("state machine");
            Ok((dir, LogStore::new(db), state_machine))
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
            },
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restart_replays_log_after_snapshot_to_the_same_state() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("meta.redb");
        let options = MetaOptions {
            node_id: 1,
            advertise_addr: "127.0.0.1:1".into(),
            snapshot_every: 10_000,
        };
        let meta = Meta::open(&path, options.clone()).await.expect("open");
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
        let expected = meta.read(|state| state.clone());
        assert_eq!(expected.registries.len(), 8);
        meta.shutdown().await;
        drop(meta);

        let reopened = Meta::open(&path, options).await.expect("reopen");
        reopened
            .raft
            .wait(Some(Duration::from_secs(10)))
            .metrics(
                |m| m.last_applied.map(|l| l.index) >= m.last_log_index,
                "log replayed",
            )
            .await
            .expect("replay");
        assert_eq!(reopened.read(|state| state.clone()), expected);
        assert!(
            reopened.raft_metrics().snapshot.is_some(),
            "the snapshot was stored and loaded"
        );
        reopened.shutdown().await;
    }
}
