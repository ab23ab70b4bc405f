//! openraft storage: the Raft log, the vote and the committed pointer in `raft.redb` ([`LogStore`]),
//! and the state machine over the state tables in `state.redb` with its streamed snapshots
//! ([`StateMachineStore`]).
//!
//! Applying a batch of entries is one write transaction of the state database that also records
//! the last applied log id, so a crash can never apply an entry twice or lose one. Those commits are
//! made durable about once a second (and before every snapshot); a crash loses at most the last
//! non-durable ones, and openraft applies them again from the log, which is always durable. A
//! snapshot is a file streamed from a read transaction; installing one builds a fresh state
//! database beside the current one and renames it over it, then swaps the handle readers take.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arca_protocol::{Command, CommandOutcome, NodeInfo};
use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, LogState, RaftLogReader, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::TypeConfig;
use super::apply::Applier;
use super::changes::PackageChanges;
use super::files::{DynBackend, MetaFiles, SnapshotFile};
use super::format::{self, FormatError, INSTALLING_FILE, LOG_FILE, LOG_FORMAT, STATE_FILE};
use super::snapshot;
use super::tables::{STATE_FORMAT, Table, scalar};
use super::view::{ReadView, StateRead, StoreError};
use crate::inject::{self, Defect};

type NodeId = u64;
type StorageResult<T> = Result<T, StorageError<NodeId>>;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const RAFT_META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const KEY_FORMAT: &str = "format";
const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";
const KEY_SNAPSHOT: &str = "snapshot";
const KEY_SNAPSHOT_SEQUENCE: &str = "snapshot_sequence";

/// Log entries removed per transaction of a purge.
const PURGE_BATCH: usize = 10_000;

/// How long non-durable commits of the state may pile up before one is made durable.
const DURABLE_EVERY: Duration = Duration::from_secs(1);

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map(|(value, _)| value)
}

/// Runs blocking work off the async threads and turns any failure into a storage error made by
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

/// Why the metadata files could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A file could not be opened.
    #[error("opening {file}: {source}")]
    File {
        /// The file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A database could not be opened or prepared.
    #[error("opening {file}: {source}")]
    Database {
        /// The file.
        file: String,
        /// The cause.
        source: StoreError,
    },
    /// The data is of a format this build does not read.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Sizes of the databases' page caches.
#[derive(Debug, Clone, Copy)]
pub struct CacheSizes {
    /// The state database's cache, in bytes.
    pub state: usize,
    /// The Raft log database's cache, in bytes.
    pub log: usize,
}

impl Default for CacheSizes {
    fn default() -> Self {
        CacheSizes {
            state: 64 << 20,
            log: 16 << 20,
        }
    }
}

fn open_database(files: &dyn MetaFiles, name: &str, cache: usize) -> Result<Database, OpenError> {
    let backend = files.open(name).map_err(|source| OpenError::File {
        file: name.to_string(),
        source,
    })?;
    redb::Builder::new()
        .set_cache_size(cache)
        .create_with_backend(DynBackend(backend))
        .map_err(|e| OpenError::Database {
            file: name.to_string(),
            source: e.into(),
        })
}

/// Opens (or creates) the Raft log database and checks its format.
pub fn open_log(files: &dyn MetaFiles, cache: usize) -> Result<Arc<Database>, OpenError> {
    let db = open_database(files, LOG_FILE, cache)?;
    let failed = |source: StoreError| OpenError::Database {
        file: LOG_FILE.to_string(),
        source,
    };
    let txn = db.begin_write().map_err(|e| failed(e.into()))?;
    {
        txn.open_table(LOG).map_err(|e| failed(e.into()))?;
        let mut meta = txn.open_table(RAFT_META).map_err(|e| failed(e.into()))?;
        let found = match meta.get(KEY_FORMAT).map_err(|e| failed(e.into()))? {
            Some(bytes) => Some(decode::<u32>(bytes.value()).map_err(|e| {
                failed(StoreError::Record(super::tables::RecordError::Decode {
                    what: "log format",
                    source: e,
                }))
            })?),
            None => None,
        };
        format::check("the Raft log (raft.redb)", found, LOG_FORMAT)?;
        // Format 2 only added commands: an older log is migrated by recording the new format,
        // which keeps builds that cannot read the new commands from opening it.
        if found != Some(LOG_FORMAT) {
            let bytes = encode(&LOG_FORMAT).map_err(|e| {
                failed(StoreError::Record(super::tables::RecordError::Encode {
                    what: "log format",
                    source: e,
                }))
            })?;
            meta.insert(KEY_FORMAT, bytes.as_slice())
                .map_err(|e| failed(e.into()))?;
        }
    }
    txn.commit().map_err(|e| failed(e.into()))?;
    Ok(Arc::new(db))
}

/// Opens (or creates) a state database called `name`, makes sure every table exists and checks
/// its format.
pub fn open_state(files: &dyn MetaFiles, name: &str, cache: usize) -> Result<Database, OpenError> {
    let db = open_database(files, name, cache)?;
    prepare_state(&db).map_err(|source| match source {
        PrepareError::Store(source) => OpenError::Database {
            file: name.to_string(),
            source,
        },
        PrepareError::Format(error) => OpenError::Format(error),
    })?;
    Ok(db)
}

/// A state database in memory, with every table, for tests and tools that apply commands without
/// Raft.
pub fn memory_state() -> Result<Database, OpenError> {
    let db = redb::Builder::new()
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .map_err(|e| OpenError::Database {
            file: "(memory)".to_string(),
            source: e.into(),
        })?;
    prepare_state(&db).map_err(|error| match error {
        PrepareError::Store(source) => OpenError::Database {
            file: "(memory)".to_string(),
            source,
        },
        PrepareError::Format(error) => OpenError::Format(error),
    })?;
    Ok(db)
}

/// Applies one command to `db` in a transaction of its own: committed when applied, dropped (so
/// nothing changes) when refused.
pub fn apply_one(db: &Database, command: Command) -> Result<CommandOutcome, StoreError> {
    let txn = db.begin_write()?;
    let outcome = Applier::new(&txn).apply(command)?;
    match outcome {
        Ok(()) => txn.commit()?,
        Err(_) => txn.abort()?,
    }
    Ok(outcome)
}

enum PrepareError {
    Store(StoreError),
    Format(FormatError),
}

impl<E: Into<StoreError>> From<E> for PrepareError {
    fn from(error: E) -> Self {
        PrepareError::Store(error.into())
    }
}

/// Creates the tables of a state database that lacks them and records its format.
fn prepare_state(db: &Database) -> Result<(), PrepareError> {
    let txn = db.begin_write()?;
    for table in Table::ALL {
        txn.open_table(table.definition())?;
    }
    let found = {
        let applier = Applier::new(&txn);
        applier.scalar::<u32>(scalar::FORMAT)?
    };
    format::check("the state (state.redb)", found, STATE_FORMAT).map_err(PrepareError::Format)?;
    if found.is_none() {
        Applier::new(&txn).set_scalar(scalar::FORMAT, &STATE_FORMAT)?;
    }
    txn.commit()?;
    Ok(())
}

fn read_key<T: DeserializeOwned>(db: &Database, key: &str) -> Result<Option<T>, AnyError> {
    let txn = db.begin_read().map_err(any)?;
    let table = txn.open_table(RAFT_META).map_err(any)?;
    match table.get(key).map_err(any)? {
        Some(bytes) => Ok(Some(decode(bytes.value()).map_err(any)?)),
        None => Ok(None),
    }
}

fn write_key<T: Serialize>(
    db: &Database,
    key: &str,
    value: &T,
    durable: bool,
) -> Result<(), AnyError> {
    let bytes = encode(value).map_err(any)?;
    let txn = begin_write(db, durable)?;
    txn.open_table(RAFT_META)
        .map_err(any)?
        .insert(key, bytes.as_slice())
        .map_err(any)?;
    txn.commit().map_err(any)
}

fn local_key(key: &str) -> String {
    format!("local/{key}")
}

/// A value of this node's own (never replicated, never in a snapshot), kept beside the Raft log.
pub fn local_value<T: DeserializeOwned>(db: &Database, key: &str) -> Result<Option<T>, StoreError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(RAFT_META)?;
    match table.get(local_key(key).as_str())? {
        Some(bytes) => Ok(Some(super::tables::decode(bytes.value())?)),
        None => Ok(None),
    }
}

/// Sets a value of this node's own ([`local_value`]), durably.
pub fn set_local_value<T: Serialize>(
    db: &Database,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = super::tables::encode(value)?;
    let txn = db.begin_write()?;
    txn.open_table(RAFT_META)?
        .insert(local_key(key).as_str(), bytes.as_slice())?;
    txn.commit()?;
    Ok(())
}

/// A write transaction that is fsynced on commit, unless `durable` is false.
fn begin_write(db: &Database, durable: bool) -> Result<WriteTransaction, AnyError> {
    let mut txn = db.begin_write().map_err(any)?;
    if !durable {
        txn.set_durability(Durability::None).map_err(any)?;
    }
    Ok(txn)
}

/// Whether the log's writes are fsynced before they are acknowledged: always, unless the
/// [`Defect::AckBeforeFsync`] is injected, whose log then acknowledges what a crash can still take.
fn log_is_durable() -> bool {
    !inject::enabled(Defect::AckBeforeFsync)
}

/// The Raft log, vote and committed pointer in redb. Cloning shares the database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    appended: Arc<AtomicU64>,
}

impl LogStore {
    /// A log store over an open log database.
    pub fn new(db: Arc<Database>) -> Self {
        LogStore {
            db,
            appended: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Bytes of entries appended since this store was opened (what decides when to snapshot).
    pub fn appended_bytes(&self) -> Arc<AtomicU64> {
        self.appended.clone()
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
            let last_purged_log_id: Option<LogId<NodeId>> = read_key(&db, KEY_LAST_PURGED)?;
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
            write_key(&db, KEY_VOTE, &vote, durable)
        })
        .await
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        let db = self.db.clone();
        blocking(StorageIOError::read_vote, move || read_key(&db, KEY_VOTE)).await
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        let db = self.db.clone();
        let durable = log_is_durable();
        blocking(StorageIOError::write, move || {
            write_key(&db, KEY_COMMITTED, &committed, durable)
        })
        .await
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        let db = self.db.clone();
        blocking(StorageIOError::read, move || {
            Ok(read_key::<Option<LogId<NodeId>>>(&db, KEY_COMMITTED)?.flatten())
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
        let bytes: u64 = encoded.iter().map(|(_, b)| b.len() as u64).sum();
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
        if result.is_ok() {
            self.appended.fetch_add(bytes, Ordering::Relaxed);
        }
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

    /// Records the purge point first, then removes the entries up to it a batch per transaction,
    /// so appends never wait behind one long deletion (after a crash in between, entries below the
    /// purge point are left for the next purge; nothing reads them).
    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let db = self.db.clone();
        blocking(StorageIOError::write_logs, move || {
            write_key(&db, KEY_LAST_PURGED, &log_id, true)?;
            loop {
                let txn = begin_write(&db, false)?;
                let removed = {
                    let mut table = txn.open_table(LOG).map_err(any)?;
                    let batch: Vec<u64> = table
                        .range::<u64>(0..=log_id.index)
                        .map_err(any)?
                        .take(PURGE_BATCH)
                        .map(|entry| entry.map(|(index, _)| index.value()))
                        .collect::<Result<_, _>>()
                        .map_err(any)?;
                    for index in &batch {
                        table.remove(index).map_err(any)?;
                    }
                    batch.len()
                };
                txn.commit().map_err(any)?;
                if removed < PURGE_BATCH {
                    return Ok(());
                }
            }
        })
        .await
    }
}

/// The state database readers use now; replaced when a snapshot is installed.
#[derive(Clone)]
pub struct StateHandle {
    db: Arc<RwLock<Arc<Database>>>,
    changes: Arc<PackageChanges>,
}

impl StateHandle {
    fn new(db: Database) -> Result<StateHandle, StoreError> {
        let db = Arc::new(db);
        let applied = ReadView::open(db.clone())?
            .last_applied()?
            .map_or(0, |log_id| log_id.index);
        Ok(StateHandle {
            db: Arc::new(RwLock::new(db)),
            changes: Arc::new(PackageChanges::starting_at(applied)),
        })
    }

    /// The current state database.
    pub fn current(&self) -> Arc<Database> {
        self.db
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Which packages the commands this node applied lately changed.
    pub fn changes(&self) -> &PackageChanges {
        &self.changes
    }

    fn replace(&self, db: Database, applied: u64) {
        *self
            .db
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(db);
        self.changes.restart_at(applied);
    }

    /// A consistent view of the state as of now.
    pub fn view(&self) -> Result<ReadView, StoreError> {
        ReadView::open(self.current())
    }

    /// Makes every commit so far durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.current().begin_write()?.commit()?;
        Ok(())
    }
}

/// Where the current snapshot is: its Raft metadata and its file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotPointer {
    meta: SnapshotMeta<NodeId, NodeInfo>,
    file: String,
}

/// When the state was last made durable.
struct Durable {
    at: Instant,
}

/// The state machine over the state tables, and its snapshots.
#[derive(Clone)]
pub struct StateMachineStore {
    files: Arc<dyn MetaFiles>,
    log_db: Arc<Database>,
    state: StateHandle,
    cache: usize,
    durable: Arc<Mutex<Durable>>,
}

/// Applies `entries` in one transaction of `db` (durable when `durable`), recording the last one's
/// log id. When a command in the middle is refused, that transaction is dropped and the entries are
/// applied again one transaction each, so the refused one leaves nothing behind.
fn apply_entries(
    db: &Database,
    entries: &[Entry<TypeConfig>],
    durable: bool,
) -> Result<Vec<CommandOutcome>, AnyError> {
    if let Some(outcomes) = apply_in_one(db, entries, durable)? {
        return Ok(outcomes);
    }
    let mut outcomes = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let last = index + 1 == entries.len();
        let single = std::slice::from_ref(entry);
        match apply_in_one(db, single, durable && last)? {
            Some(mut applied) => outcomes.append(&mut applied),
            None => {
                let txn = begin_write(db, durable && last)?;
                let refusal = apply_entry(&mut Applier::new(&txn), entry)?;
                // Drop what the refused command wrote, then record only that it was applied.
                txn.abort().map_err(any)?;
                let txn = begin_write(db, durable && last)?;
                Applier::new(&txn)
                    .set_scalar(scalar::LAST_APPLIED, &Some(entry.log_id))
                    .map_err(any)?;
                txn.commit().map_err(any)?;
                outcomes.push(refusal);
            }
        }
    }
    Ok(outcomes)
}

/// Applies `entries` in one transaction; `None` (the transaction dropped) when one was refused.
fn apply_in_one(
    db: &Database,
    entries: &[Entry<TypeConfig>],
    durable: bool,
) -> Result<Option<Vec<CommandOutcome>>, AnyError> {
    let Some(last) = entries.last() else {
        return Ok(Some(Vec::new()));
    };
    let txn = begin_write(db, durable)?;
    let outcomes = {
        let mut applier = Applier::new(&txn);
        let mut outcomes = Vec::with_capacity(entries.len());
        for entry in entries {
            let outcome = apply_entry(&mut applier, entry)?;
            if outcome.is_err() {
                drop(applier);
                txn.abort().map_err(any)?;
                return Ok(None);
            }
            outcomes.push(outcome);
        }
        applier
            .set_scalar(scalar::LAST_APPLIED, &Some(last.log_id))
            .map_err(any)?;
        outcomes
    };
    txn.commit().map_err(any)?;
    Ok(Some(outcomes))
}

fn apply_entry(
    applier: &mut Applier<'_>,
    entry: &Entry<TypeConfig>,
) -> Result<CommandOutcome, AnyError> {
    match &entry.payload {
        EntryPayload::Blank => Ok(Ok(())),
        EntryPayload::Normal(logged) => {
            let command = logged.decode().map_err(any)?;
            applier.apply(command).map_err(any)
        }
        EntryPayload::Membership(membership) => {
            let stored = StoredMembership::new(Some(entry.log_id), membership.clone());
            applier.set_membership(&stored).map_err(any)?;
            Ok(Ok(()))
        }
    }
}

impl StateMachineStore {
    /// Opens the state machine on `files`: the state database as it was last made durable (log
    /// entries after it are applied again by openraft when Raft starts). A snapshot installation
    /// cut short by a crash is thrown away.
    pub fn open(
        files: Arc<dyn MetaFiles>,
        log_db: Arc<Database>,
        cache: usize,
    ) -> Result<Self, OpenError> {
        files
            .remove(INSTALLING_FILE)
            .map_err(|source| OpenError::File {
                file: INSTALLING_FILE.to_string(),
                source,
            })?;
        let db = open_state(files.as_ref(), STATE_FILE, cache)?;
        Ok(StateMachineStore {
            files,
            log_db,
            state: StateHandle::new(db).map_err(|source| OpenError::Database {
                file: STATE_FILE.to_string(),
                source,
            })?,
            cache,
            durable: Arc::new(Mutex::new(Durable { at: Instant::now() })),
        })
    }

    /// The handle readers take the state through.
    pub fn state(&self) -> StateHandle {
        self.state.clone()
    }

    /// True when this batch's commit should be durable (about once a second).
    fn durable_now(&self) -> bool {
        let mut durable = self.durable.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now.duration_since(durable.at) >= DURABLE_EVERY {
            durable.at = now;
            true
        } else {
            false
        }
    }

    /// A name for a new snapshot file (`snapshot-<n>.bin`, `n` counting up on this node).
    fn next_snapshot_name(&self, prefix: &str) -> Result<String, AnyError> {
        let sequence = read_key::<u64>(&self.log_db, KEY_SNAPSHOT_SEQUENCE)?.unwrap_or(0) + 1;
        write_key(&self.log_db, KEY_SNAPSHOT_SEQUENCE, &sequence, true)?;
        Ok(format!("{prefix}-{sequence}.bin"))
    }

    /// Records `file` as the current snapshot and removes every other snapshot file.
    fn keep_only(&self, pointer: &SnapshotPointer) -> Result<(), AnyError> {
        write_key(&self.log_db, KEY_SNAPSHOT, pointer, true)?;
        for name in self.files.list().map_err(any)? {
            let snapshot_file = name.starts_with("snapshot-") || name.starts_with("receiving-");
            if snapshot_file && name != pointer.file {
                self.files.remove(&name).map_err(any)?;
            }
        }
        Ok(())
    }

    fn open_snapshot_file(&self, name: &str) -> Result<SnapshotFile, AnyError> {
        SnapshotFile::open(&self.files, name).map_err(any)
    }

    /// Keeps the snapshot in `file` as this node's current one under a new name: renamed when it is
    /// one of this node's files (a snapshot received here), copied otherwise.
    fn adopt_snapshot_file(&self, file: &mut SnapshotFile) -> Result<String, AnyError> {
        let name = self.next_snapshot_name("snapshot")?;
        if file.belongs_to(&self.files) {
            self.files.rename(file.name(), &name).map_err(any)?;
            return Ok(name);
        }
        let mut copy = self.open_snapshot_file(&name)?;
        copy.set_len(0).map_err(any)?;
        file.seek_to(0);
        let mut buffer = vec![0; 1 << 20];
        loop {
            let read = file.read_some(&mut buffer).map_err(any)?;
            if read == 0 {
                break;
            }
            copy.write_all_at_position(&buffer[..read]).map_err(any)?;
        }
        copy.sync().map_err(any)?;
        Ok(name)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let store = self.clone();
        let (meta, file, bytes) = blocking(
            |e| StorageIOError::write_snapshot(None, e),
            move || {
                let db = store.state.current();
                let view = ReadView::open(db.clone()).map_err(any)?;
                // Everything the view sees becomes durable before the snapshot says it is applied:
                // the log up to there may be purged once the snapshot exists.
                let txn = db.begin_write().map_err(any)?;
                txn.commit().map_err(any)?;
                let last_log_id = view.last_applied().map_err(any)?;
                let membership = view.membership().map_err(any)?;
                let name = store.next_snapshot_name("snapshot")?;
                let mut file = store.open_snapshot_file(&name)?;
                let bytes = snapshot::write(&view, &mut file).map_err(any)?;
                let snapshot_id = match last_log_id {
                    Some(log_id) => format!("{}-{}-{name}", log_id.leader_id, log_id.index),
                    None => format!("empty-{name}"),
                };
                let meta = SnapshotMeta {
                    last_log_id,
                    last_membership: membership,
                    snapshot_id,
                };
                store.keep_only(&SnapshotPointer {
                    meta: meta.clone(),
                    file: name,
                })?;
                file.seek_to(0);
                Ok((meta, file, bytes))
            },
        )
        .await?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes, "built metadata snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, NodeInfo>)> {
        let state = self.state.clone();
        blocking(StorageIOError::read_state_machine, move || {
            let view = state.view().map_err(any)?;
            Ok((
                view.last_applied().map_err(any)?,
                view.membership().map_err(any)?,
            ))
        })
        .await
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<CommandOutcome>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let durable = self.durable_now();
        let state = self.state.clone();
        blocking(StorageIOError::write_state_machine, move || {
            let outcomes = apply_entries(&state.current(), &entries, durable)?;
            for (entry, outcome) in entries.iter().zip(&outcomes) {
                if let (EntryPayload::Normal(logged), Ok(())) = (&entry.payload, outcome) {
                    let command = logged.decode().map_err(any)?;
                    state
                        .changes()
                        .record(entry.log_id.index, &command.changed());
                }
            }
            Ok(outcomes)
        })
        .await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<SnapshotFile>> {
        let store = self.clone();
        let file = blocking(
            |e| StorageIOError::write_snapshot(None, e),
            move || {
                let name = store.next_snapshot_name("receiving")?;
                let file = store.open_snapshot_file(&name)?;
                file.set_len(0).map_err(any)?;
                Ok(file)
            },
        )
        .await?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, NodeInfo>,
        snapshot: Box<SnapshotFile>,
    ) -> StorageResult<()> {
        let store = self.clone();
        let meta = meta.clone();
        blocking(
            |e| StorageIOError::read_snapshot(None, e),
            move || {
                let mut file = *snapshot;
                store.files.remove(INSTALLING_FILE).map_err(any)?;
                {
                    let fresh = open_state(store.files.as_ref(), INSTALLING_FILE, store.cache)
                        .map_err(any)?;
                    snapshot::install(&mut file, &fresh).map_err(any)?;
                    let installed = ReadView::open(Arc::new(fresh))
                        .and_then(|view| view.last_applied())
                        .map_err(any)?;
                    if installed != meta.last_log_id {
                        return Err(AnyError::error(format!(
                            "the snapshot holds the state as of {installed:?}, not {:?}",
                            meta.last_log_id
                        )));
                    }
                }
                store
                    .files
                    .rename(INSTALLING_FILE, STATE_FILE)
                    .map_err(any)?;
                let db = open_state(store.files.as_ref(), STATE_FILE, store.cache).map_err(any)?;
                store
                    .state
                    .replace(db, meta.last_log_id.map_or(0, |log_id| log_id.index));
                let name = store.adopt_snapshot_file(&mut file)?;
                store.keep_only(&SnapshotPointer { meta, file: name })
            },
        )
        .await
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let store = self.clone();
        blocking(
            |e| StorageIOError::read_snapshot(None, e),
            move || {
                let Some(pointer) = read_key::<SnapshotPointer>(&store.log_db, KEY_SNAPSHOT)?
                else {
                    return Ok(None);
                };
                if !store.files.exists(&pointer.file).map_err(any)? {
                    return Ok(None);
                }
                let file = store.open_snapshot_file(&pointer.file)?;
                Ok(Some(Snapshot {
                    meta: pointer.meta,
                    snapshot: Box::new(file),
                }))
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::files::LocalFiles;

    fn record_log_format(db: &Database, format: u32) {
        let txn = db.begin_write().expect("write");
        txn.open_table(RAFT_META)
            .expect("table")
            .insert(KEY_FORMAT, encode(&format).expect("encode").as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }

    fn recorded_log_format(db: &Database) -> Option<u32> {
        let txn = db.begin_read().expect("read");
        let table = txn.open_table(RAFT_META).expect("table");
        let bytes = table.get(KEY_FORMAT).expect("get")?;
        Some(decode(bytes.value()).expect("decode"))
    }

    #[test]
    fn an_older_log_is_migrated_forward_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = LocalFiles::new(dir.path()).expect("files");
        let db = open_log(&files, 1 << 20).expect("new log");
        assert_eq!(recorded_log_format(&db), Some(LOG_FORMAT));
        record_log_format(&db, 1);
        drop(db);
        let db = open_log(&files, 1 << 20).expect("a format-1 log opens");
        assert_eq!(recorded_log_format(&db), Some(LOG_FORMAT), "migrated");
        record_log_format(&db, LOG_FORMAT + 1);
        drop(db);
        let Err(refused) = open_log(&files, 1 << 20) else {
            panic!("a newer log must be refused");
        };
        assert!(
            refused
                .to_string()
                .contains(&format!("up to format {LOG_FORMAT}")),
            "{refused}"
        );
    }
}
