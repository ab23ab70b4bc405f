//! The files the metadata lives in, behind one small trait so the simulator can run the real store on
//! its simulated disk: the Raft log database, the state database, and snapshot files.
//!
//! [`MetaFiles`] opens a named file as a random-access [`StorageBackend`] (what redb runs on, and
//! what snapshot files are read and written through), renames one file over another atomically and
//! durably (how an installed snapshot replaces the state), and removes and lists files.
//! [`LocalFiles`] is a directory on the local disk. [`SnapshotFile`] is a file seen as the
//! asynchronous stream openraft sends and receives snapshots through, a chunk at a time.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use redb::{BackendError, StorageBackend};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

/// The named files of a node's metadata.
pub trait MetaFiles: Send + Sync + 'static {
    /// Opens the file `name`, creating it empty when it does not exist.
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>>;

    /// True when the file `name` exists.
    fn exists(&self, name: &str) -> io::Result<bool>;

    /// The length of the file `name` (0 when it does not exist).
    fn size(&self, name: &str) -> io::Result<u64>;

    /// Replaces `to` with `from` in one step that survives a crash: afterwards `to` has `from`'s
    /// durable contents and `from` is gone. The caller syncs `from` first.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;

    /// Removes the file `name`, if it exists.
    fn remove(&self, name: &str) -> io::Result<()>;

    /// The names of the files.
    fn list(&self) -> io::Result<Vec<String>>;
}

/// Metadata files in a directory of the local disk.
#[derive(Debug, Clone)]
pub struct LocalFiles {
    dir: PathBuf,
}

impl LocalFiles {
    /// The files under `dir` (created when missing).
    pub fn new(dir: &Path) -> io::Result<LocalFiles> {
        std::fs::create_dir_all(dir)?;
        Ok(LocalFiles {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

impl MetaFiles for LocalFiles {
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        let path = self.path(name);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if !existed {
            self.sync_dir()?;
        }
        let backend = redb::backends::FileBackend::new(file).map_err(|error| match error {
            redb::DatabaseError::Storage(redb::StorageError::Io(io)) => io,
            other => io::Error::other(other.to_string()),
        })?;
        Ok(Box::new(backend))
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        self.path(name).try_exists()
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        match std::fs::metadata(self.path(name)) {
            Ok(metadata) => Ok(metadata.len()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(error) => Err(error),
        }
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path(from), self.path(to))?;
        self.sync_dir()
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(name)) {
            Ok(()) => self.sync_dir(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// A boxed backend as a backend (redb takes backends by value).
#[derive(Debug)]
pub struct DynBackend(pub Box<dyn StorageBackend>);

impl StorageBackend for DynBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.0.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.0.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.0.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.0.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        self.0.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.0.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.0.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.0.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.0.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.0.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.0.query_lock_range(start, end)
    }
}

fn origin_of(files: &Arc<dyn MetaFiles>) -> usize {
    Arc::as_ptr(files).cast::<()>() as usize
}

/// A file read and written at a position, as the stream openraft moves snapshots through. Reads and
/// writes go straight to the backend: snapshot chunks are a few MiB and the backend is a local file
/// (or the simulator's memory).
pub struct SnapshotFile {
    name: String,
    io: Box<dyn StorageBackend>,
    position: u64,
    origin: usize,
}

impl Debug for SnapshotFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SnapshotFile({} at {})", self.name, self.position)
    }
}

impl SnapshotFile {
    /// The file `name` of `files`, positioned at its start.
    pub fn open(files: &Arc<dyn MetaFiles>, name: &str) -> io::Result<SnapshotFile> {
        Ok(SnapshotFile {
            name: name.to_string(),
            io: files.open(name)?,
            position: 0,
            origin: origin_of(files),
        })
    }

    /// True when the file is one of `files` (and not of another node's, as a test may hand over).
    pub fn belongs_to(&self, files: &Arc<dyn MetaFiles>) -> bool {
        self.origin == origin_of(files)
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's length.
    pub fn len(&self) -> io::Result<u64> {
        self.io.len()
    }

    /// True when the file is empty.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Cuts the file (or extends it with zeros) to `len` bytes.
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.io.set_len(len)
    }

    /// Makes what was written durable.
    pub fn sync(&self) -> io::Result<()> {
        self.io.sync_data()
    }

    /// Reads up to `out.len()` bytes at the position; 0 at the end.
    pub fn read_some(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let remaining = self.io.len()?.saturating_sub(self.position);
        let count = out
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        if count == 0 {
            return Ok(0);
        }
        self.io.read(self.position, &mut out[..count])?;
        self.position += count as u64;
        Ok(count)
    }

    /// Writes `data` at the position.
    pub fn write_all_at_position(&mut self, data: &[u8]) -> io::Result<()> {
        let end = self.position + data.len() as u64;
        if end > self.io.len()? {
            self.io.set_len(end)?;
        }
        self.io.write(self.position, data)?;
        self.position = end;
        Ok(())
    }

    /// Moves the position.
    pub fn seek_to(&mut self, position: u64) {
        self.position = position;
    }
}

impl AsyncRead for SnapshotFile {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let count = this.read_some(buf.initialize_unfilled())?;
        buf.advance(count);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SnapshotFile {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write_all_at_position(data)?;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.sync())
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        let target = match position {
            io::SeekFrom::Start(offset) => Some(offset),
            io::SeekFrom::End(delta) => this.io.len()?.checked_add_signed(delta),
            io::SeekFrom::Current(delta) => this.position.checked_add_signed(delta),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )
        })?;
        this.seek_to(target);
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.position))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn snapshot_files_read_back_what_was_written_at_any_position() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files: Arc<dyn MetaFiles> = Arc::new(LocalFiles::new(dir.path()).expect("files"));
        let mut file = SnapshotFile::open(&files, "s").expect("open");
        assert!(file.belongs_to(&files));
        file.write_all(b"hello world").await.expect("write");
        file.seek(io::SeekFrom::Start(6)).await.expect("seek");
        file.write_all(b"there").await.expect("write");
        file.shutdown().await.expect("sync");
        file.seek(io::SeekFrom::Start(0)).await.expect("seek");
        let mut read = String::new();
        file.read_to_string(&mut read).await.expect("read");
        assert_eq!(read, "hello there");
        assert_eq!(files.list().expect("list"), vec!["s".to_string()]);
        files.rename("s", "t").expect("rename");
        assert!(!files.exists("s").expect("exists") && files.exists("t").expect("exists"));
        files.remove("t").expect("remove");
        files.remove("t").expect("removing a missing file is fine");
    }
}
