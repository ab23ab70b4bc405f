//! openraft storage on redb: the Raft log, the vote and the committed pointer ([`LogStore`]), and the
//! state machine with its snapshots ([`StateMachineStore`]).
//!
//! The state machine lives in memory and is made durable by the log plus snapshots: every snapshot is
//! written to redb, and on start the newest snapshot is loaded and openraft re-applies the committed log
//! entries after it, so a restarted node reaches exactly the state it had.

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::{Arc, RwLock};

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, LogState, RaftLogReader, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, StorageBackend, TableDefinition,
    WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::TypeConfig;
use super::state::MetaState;
use crate::inject::{self, Defect};
use arca_protocol::{CommandOutcome, NodeInfo};

type NodeId = u64;
type StorageResult<T> = Result<T, StorageError<NodeId>>;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const RAFT_META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";
const KEY_CURRENT_SNAPSHOT: &str = "current";

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map(|(value, _)| value)
}

/// Runs blocking redb work off the async threads and turns any failure into a storage error made by
/// `to_error`.
async fn blocking<T, F>(
    to_error: fn(AnyError) -> StorageIOError<NodeId>,
    work: F,
) -> StorageResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, AnyError> + Send + 'static,
{
    match crate::blocking::spawn(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(to_error(error).into()),
        Err(join) => Err(to_error(AnyError::new(&join)).into()),
    }
}

fn any<E: std::error::Error + 'static>(error: E) -> AnyError {
    AnyError::new(&error)
}

/// Opens (or creates) the metadata database file at `path` and makes sure every table exists.
pub fn open_database(path: &std::path::Path) -> Result<Arc<Database>, Box<redb::Error>> {
    with_tables(Database::create(path).map_err(|e| Box::new(e.into()))?)
}

/// Opens (or creates) the metadata database on `backend` (the simulator's disk) and makes sure every
/// table exists.
pub fn open_database_on(backend: impl StorageBackend) -> Result<Arc<Database>, Box<redb::Error>> {
    let db = redb::Builder::new()
        .create_with_backend(backend)
        .map_err(|e| Box::new(e.into()))?;
    with_tables(db)
}

fn with_tables(db: Database) -> Result<Arc<Database>, Box<redb::Error>> {
    let boxed = |error: redb::Error| Box::new(error);
    let txn = db.begin_write().map_err(|e| boxed(e.into()))?;
    txn.open_table(LOG).map_err(|e| boxed(e.into()))?;
    txn.open_table(RAFT_META).map_err(|e| boxed(e.into()))?;
    txn.open_table(SNAPSHOT).map_err(|e| boxed(e.into()))?;
    txn.commit().map_err(|e| boxed(e.into()))?;
    Ok(Arc::new(db))
}

fn read_key<T: DeserializeOwned>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
) -> Result<Option<T>, AnyError> {
    let txn = db.begin_read().map_err(any)?;
    let table = txn.open_table(table).map_err(any)?;
    match table.get(key).map_err(any)? {
        Some(bytes) => Ok(Some(decode(bytes.value()).map_err(any)?)),
        None => Ok(None),
    }
}

fn write_key<T: Serialize>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
    value: &T,
    durable: bool,
) -> Result<(), AnyError> {
    let bytes = encode(value).map_err(any)?;
    let txn = begin_write(db, durable)?;
    txn.open_table(table)
        .map_err(any)?
        .insert(key, bytes.as_slice())
        .map_err(any)?;
    txn.commit().map_err(any)
}

/// A write transaction that is fsynced on commit, unless `durable` is false: only when the
/// [`Defect::AckBeforeFsync`] is injected, whose log then acknowledges what a crash can still take.
fn begin_write(db: &Database, durable: bool) -> Result<WriteTransaction, AnyError> {
    let mut txn = db.begin_write().map_err(any)?;
    if !durable {
        txn.set_durability(Durability::None).map_err(any)?;
    }
    Ok(txn)
}

/// Whether the log's writes are fsynced before they are acknowledged (see [`begin_write`]).
fn log_is_durable() -> bool {
    !inject::enabled(Defect::AckBeforeFsync)
}

/// The Raft log, vote and committed pointer in redb. Cloning shares the database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    /// A log store over an open database.
    pub fn new(db: Arc<Database>) -> Self {
        LogStore { db }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let db = self.db.clone();
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        blocking(StorageIOError::read_logs, move || {
            let txn = db.begin_read().map_err(any)?;
            let table = txn.open_table(LOG).map_err(any)?;
            let mut entries = Vec::new();
            for item in table.range::<u64>(range).map_err(any)? {
                let (_, bytes) = item.map_err(any)?;
                entries.push(decode(bytes.value()).map_err(any)?);
            }
            Ok(entries)
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let db = self.db.clone();
        blocking(StorageIOError::read_logs, move || {
            let last_purged_log_id: Option<LogId<NodeId>> =
                read_key(&db, RAFT_META, KEY_LAST_PURGED)?;
            let txn = db.begin_read().map_err(any)?;
            let table = txn.open_table(LOG).map_err(any)?;
            let last_log_id = match table.last().map_err(any)? {
                Some((_, bytes)) => {
                    let entry: Entry<TypeConfig> = decode(bytes.value()).map_err(any)?;
                    Some(entry.log_id)
                }
                None => last_purged_log_id,
            };
            Ok(LogState {
                last_purged_log_id,
                last_log_id,
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        let db = self.db.clone();
        let vote = *vote;
        let durable = log_is_durable();
        blocking(StorageIOError::write_vote, move || {
            write_key(&db, RAFT_META, KEY_VOTE, &vote, durable)
        })
        .await
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        let db = self.db.clone();
        blocking(StorageIOError::read_vote, move || {
            read_key(&db, RAFT_META, KEY_VOTE)
        })
        .await
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        let db = self.db.clone();
        let durable = log_is_durable();
        blocking(StorageIOError::write, move || {
            write_key(&db, RAFT_META, KEY_COMMITTED, &committed, durable)
        })
        .await
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        let db = self.db.clone();
        blocking(StorageIOError::read, move || {
            Ok(read_key::<Option<LogId<NodeId>>>(&db, RAFT_META, KEY_COMMITTED)?.flatten())
        })
        .await
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let encoded = entries
            .into_iter()
            .map(|entry| Ok((entry.log_id.index, encode(&entry).map_err(any)?)))
            .collect::<Result<Vec<_>, AnyError>>()
            .map_err(StorageIOError::write_logs)?;
        let db = self.db.clone();
        let durable = log_is_durable();
        let result = blocking(StorageIOError::write_logs, move || {
            let txn = begin_write(&db, durable)?;
            {
                let mut table = txn.open_table(LOG).map_err(any)?;
                for (index, bytes) in &encoded {
                    table.insert(*index, bytes.as_slice()).map_err(any)?;
                }
            }
            txn.commit().map_err(any)
        })
        .await;
        callback.log_io_completed(
            result
                .as_ref()
                .map(drop)
                .map_err(|e| std::io::Error::other(e.to_string())),
        );
        result
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let db = self.db.clone();
        blocking(StorageIOError::write_logs, move || {
            let txn = db.begin_write().map_err(any)?;
            txn.open_table(LOG)
                .map_err(any)?
                .retain_in::<u64, _>(log_id.index.., |_, _| false)
                .map_err(any)?;
            txn.commit().map_err(any)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let db = self.db.clone();
        blocking(StorageIOError::write_logs, move || {
            let purged = encode(&log_id).map_err(any)?;
            let txn = db.begin_write().map_err(any)?;
            txn.open_table(RAFT_META)
                .map_err(any)?
                .insert(KEY_LAST_PURGED, purged.as_slice())
                .map_err(any)?;
            txn.open_table(LOG)
                .map_err(any)?
                .retain_in::<u64, _>(0..=log_id.index, |_, _| false)
                .map_err(any)?;
            txn.commit().map_err(any)
        })
        .await
    }
}

/// What the state machine has applied: the metadata plus Raft's own bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct AppliedState {
    /// The last log entry applied.
    pub last_applied: Option<LogId<NodeId>>,
    /// The membership in force.
    pub membership: StoredMembership<NodeId, NodeInfo>,
    /// The metadata itself.
    pub meta: MetaState,
}

/// A snapshot as stored in redb: its Raft metadata and the encoded [`MetaState`].
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, NodeInfo>,
    data: Vec<u8>,
}

/// The in-memory state machine, shared with readers, and its snapshots in redb.
#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<Database>,
    applied: Arc<RwLock<AppliedState>>,
}

impl StateMachineStore {
    /// Opens the state machine from the newest snapshot, if any. Log entries after it are re-applied by
    /// openraft when the Raft instance starts.
    pub fn open(db: Arc<Database>) -> Result<Self, AnyError> {
        let mut applied = AppliedState::default();
        if let Some(stored) = read_key::<StoredSnapshot>(&db, SNAPSHOT, KEY_CURRENT_SNAPSHOT)? {
            applied = AppliedState {
                last_applied: stored.meta.last_log_id,
                membership: stored.meta.last_membership.clone(),
                meta: decode(&stored.data).map_err(any)?,
            };
        }
        Ok(StateMachineStore {
            db,
            applied: Arc::new(RwLock::new(applied)),
        })
    }

    /// The shared applied state, for readers.
    pub fn applied(&self) -> Arc<RwLock<AppliedState>> {
        self.applied.clone()
    }

    fn read_applied(&self) -> std::sync::RwLockReadGuard<'_, AppliedState> {
        self.applied
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn save_snapshot(&self, stored: StoredSnapshot) -> StorageResult<()> {
        let db = self.db.clone();
        let signature = stored.meta.signature();
        let bytes = encode(&stored)
            .map_err(|e| StorageIOError::write_snapshot(Some(signature.clone()), any(e)))?;
        blocking(
            |e| StorageIOError::write_snapshot(None, e),
            move || {
                let txn = db.begin_write().map_err(any)?;
                txn.open_table(SNAPSHOT)
                    .map_err(any)?
                    .insert(KEY_CURRENT_SNAPSHOT, bytes.as_slice())
                    .map_err(any)?;
                txn.commit().map_err(any)
            },
        )
        .await
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let (last_applied, membership, meta) = {
            let applied = self.read_applied();
            (
                applied.last_applied,
                applied.membership.clone(),
                applied.meta.clone(),
            )
        };
        let data = encode(&meta).map_err(|e| StorageIOError::read_state_machine(any(e)))?;
        let snapshot_id = match last_applied {
            Some(log_id) => format!(
                "{}-{}-{}",
                log_id.leader_id,
                log_id.index,
                blake3::hash(&data).to_hex()
            ),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        self.save_snapshot(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        })
        .await?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = data.len(), "built metadata snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, NodeInfo>)> {
        let applied = self.read_applied();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<CommandOutcome>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut applied = self
            .applied
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut outcomes = Vec::new();
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            let outcome = match entry.payload {
                EntryPayload::Blank => Ok(()),
                EntryPayload::Normal(command) => applied.meta.apply(command),
                EntryPayload::Membership(membership) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                    Ok(())
                }
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, NodeInfo>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let data = snapshot.into_inner();
        let state: MetaState = decode(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), any(e)))?;
        self.save_snapshot(StoredSnapshot {
            meta: meta.clone(),
            data,
        })
        .await?;
        let mut applied = self
            .applied
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *applied = AppliedState {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            meta: state,
        };
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let db = self.db.clone();
        let stored: Option<StoredSnapshot> = blocking(
            |e| StorageIOError::read_snapshot(None, e),
            move || read_key(&db, SNAPSHOT, KEY_CURRENT_SNAPSHOT),
        )
        .await?;
        Ok(stored.map(|stored| Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}
