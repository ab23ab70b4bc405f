//! Snapshot files: the whole state as of one applied log entry, streamed table by table from a
//! read transaction into a file, and streamed back from such a file into a fresh state database.
//! Memory stays flat however large the state is: records pass through a small buffer.
//!
//! Layout (all numbers little-endian):
//!
//! ```text
//! "ARCASNAP"  u32 snapshot format  u32 state format
//! for each table:  01  u16 name length  name
//!     for each entry:  02  u32 key length  key  u32 value length  value
//! 00  blake3 of every byte before this one (32 bytes)
//! ```
//!
//! Tables are named, not numbered, and the state format travels in the header, so that a later
//! build can read an older snapshot (and migrate it) while a build that meets a newer one refuses
//! it with both formats in the message.

use std::io;

use redb::{Database, Durability};

use super::files::SnapshotFile;
use super::tables::{STATE_FORMAT, Table};
use super::view::{ReadView, Source, StoreError};

const MAGIC: &[u8; 8] = b"ARCASNAP";
/// The format of snapshot files this build writes and reads.
pub const SNAPSHOT_FORMAT: u32 = 1;

const TABLE: u8 = 1;
const ENTRY: u8 = 2;
const END: u8 = 0;

/// Bytes gathered before a write to the file, and read from it at once.
const BUFFER: usize = 1 << 20;
/// Bytes written between syncs of a snapshot being built: the file's writeback goes out in steps
/// instead of one burst at the end that would hold up the Raft log's own syncs.
const SYNC_EVERY: u64 = 16 << 20;
/// Bytes of records installed per write transaction.
const INSTALL_BATCH: usize = 32 << 20;

/// Why a snapshot could not be written or installed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read or written.
    #[error("snapshot file: {0}")]
    Io(#[from] io::Error),
    /// The state could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file is not a snapshot this build can read.
    #[error("snapshot file: {0}")]
    Format(String),
}

impl From<redb::StorageError> for SnapshotError {
    fn from(error: redb::StorageError) -> Self {
        SnapshotError::Store(error.into())
    }
}

impl From<redb::TableError> for SnapshotError {
    fn from(error: redb::TableError) -> Self {
        SnapshotError::Store(error.into())
    }
}

impl From<redb::TransactionError> for SnapshotError {
    fn from(error: redb::TransactionError) -> Self {
        SnapshotError::Store(error.into())
    }
}

impl From<redb::CommitError> for SnapshotError {
    fn from(error: redb::CommitError) -> Self {
        SnapshotError::Store(error.into())
    }
}

impl From<redb::SetDurabilityError> for SnapshotError {
    fn from(error: redb::SetDurabilityError) -> Self {
        SnapshotError::Store(error.into())
    }
}

/// Writes through a buffer, hashing everything written.
struct Writer<'a> {
    file: &'a mut SnapshotFile,
    buffer: Vec<u8>,
    hasher: blake3::Hasher,
    written: u64,
    synced: u64,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.buffer.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
        if self.buffer.len() >= BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.write_all_at_position(&self.buffer)?;
        self.buffer.clear();
        if self.written - self.synced >= SYNC_EVERY {
            self.file.sync()?;
            self.synced = self.written;
        }
        Ok(())
    }
}

fn length<T: TryFrom<usize>>(len: usize, what: &str) -> Result<T, SnapshotError> {
    T::try_from(len)
        .map_err(|_| SnapshotError::Format(format!("{what} of {len} bytes is too long")))
}

/// Writes the state `view` sees into `file` (from its start) and syncs it. Returns its length.
pub fn write(view: &ReadView, file: &mut SnapshotFile) -> Result<u64, SnapshotError> {
    file.seek_to(0);
    let mut out = Writer {
        file,
        buffer: Vec::with_capacity(BUFFER + 4096),
        hasher: blake3::Hasher::new(),
        written: 0,
        synced: 0,
    };
    out.put(MAGIC)?;
    out.put(&SNAPSHOT_FORMAT.to_le_bytes())?;
    out.put(&STATE_FORMAT.to_le_bytes())?;
    for &table in Table::ALL {
        let name = table.name().as_bytes();
        out.put(&[TABLE])?;
        out.put(&length::<u16>(name.len(), "a table name")?.to_le_bytes())?;
        out.put(name)?;
        let everything = (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded);
        for entry in view.range_raw(table, &everything)? {
            let (key, value) = entry.map_err(StoreError::from)?;
            let (key, value) = (key.value(), value.value());
            out.put(&[ENTRY])?;
            out.put(&length::<u32>(key.len(), "a key")?.to_le_bytes())?;
            out.put(key)?;
            out.put(&length::<u32>(value.len(), "a record")?.to_le_bytes())?;
            out.put(value)?;
        }
    }
    out.put(&[END])?;
    let digest = *out.hasher.finalize().as_bytes();
    out.buffer.extend_from_slice(&digest);
    out.written += digest.len() as u64;
    out.flush()?;
    let written = out.written;
    file.set_len(written)?;
    file.sync()?;
    Ok(written)
}

/// Reads through a buffer, hashing everything read.
struct Reader<'a> {
    file: &'a mut SnapshotFile,
    buffer: Vec<u8>,
    start: usize,
    hasher: blake3::Hasher,
}

impl Reader<'_> {
    fn fill(&mut self, wanted: usize) -> Result<(), SnapshotError> {
        if self.buffer.len() - self.start >= wanted {
            return Ok(());
        }
        self.buffer.drain(..self.start);
        self.start = 0;
        let mut chunk = vec![0; BUFFER.max(wanted)];
        while self.buffer.len() < wanted {
            let read = self.file.read_some(&mut chunk)?;
            if read == 0 {
                return Err(SnapshotError::Format("the file ends early".into()));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
        Ok(())
    }

    /// The next `count` bytes, hashed unless `hashed` is false.
    fn take(&mut self, count: usize, hashed: bool) -> Result<&[u8], SnapshotError> {
        self.fill(count)?;
        let bytes = &self.buffer[self.start..self.start + count];
        if hashed {
            self.hasher.update(bytes);
        }
        self.start += count;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take(1, true)?[0])
    }

    fn u16(&mut self) -> Result<u16, SnapshotError> {
        let bytes = self.take(2, true)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        let bytes = self.take(4, true)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
}

/// Streams the snapshot in `file` into `db` (a fresh, empty state database whose tables exist),
/// in write transactions of bounded size, the last one durable. Fails, leaving `db` to be thrown
/// away, when the file is not a whole snapshot of a format this build reads.
pub fn install(file: &mut SnapshotFile, db: &Database) -> Result<(), SnapshotError> {
    file.seek_to(0);
    let mut input = Reader {
        file,
        buffer: Vec::new(),
        start: 0,
        hasher: blake3::Hasher::new(),
    };
    if input.take(MAGIC.len(), true)? != MAGIC {
        return Err(SnapshotError::Format("not an Arca snapshot".into()));
    }
    let snapshot_format = input.u32()?;
    let state_format = input.u32()?;
    if snapshot_format != SNAPSHOT_FORMAT || state_format != STATE_FORMAT {
        return Err(SnapshotError::Format(format!(
            "snapshot format {snapshot_format} of state format {state_format}; this build reads \
             snapshot format {SNAPSHOT_FORMAT} of state format {STATE_FORMAT}: run the same \
             version of arca-node on every node (upgrade this one)"
        )));
    }
    let mut current: Option<Table> = None;
    let mut finished = false;
    while !finished {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::None)?;
        {
            let mut open = match current {
                Some(table) => Some(txn.open_table(table.definition())?),
                None => None,
            };
            let mut batched = 0usize;
            while batched < INSTALL_BATCH {
                match input.byte()? {
                    TABLE => {
                        let length = input.u16()? as usize;
                        let name = String::from_utf8_lossy(input.take(length, true)?).into_owned();
                        let table = Table::named(&name).ok_or_else(|| {
                            SnapshotError::Format(format!("unknown table {name:?}"))
                        })?;
                        // The table before it closes first (a table may be open once only).
                        drop(open.take());
                        open = Some(txn.open_table(table.definition())?);
                        current = Some(table);
                    }
                    ENTRY => {
                        let table = open.as_mut().ok_or_else(|| {
                            SnapshotError::Format("an entry before any table".into())
                        })?;
                        let key_length = input.u32()? as usize;
                        let key = input.take(key_length, true)?.to_vec();
                        let value_length = input.u32()? as usize;
                        table.insert(key.as_slice(), input.take(value_length, true)?)?;
                        batched += key_length + value_length;
                    }
                    END => {
                        let expected = *input.hasher.finalize().as_bytes();
                        if input.take(32, false)? != expected {
                            return Err(SnapshotError::Format(
                                "the checksum does not match: the file is damaged".into(),
                            ));
                        }
                        finished = true;
                        break;
                    }
                    other => {
                        return Err(SnapshotError::Format(format!(
                            "unexpected record type {other}"
                        )));
                    }
                }
            }
        }
        if finished {
            txn.set_durability(Durability::Immediate)?;
        }
        txn.commit()?;
    }
    Ok(())
}
