//! Where chunk files live. [`ChunkDisk`] is the chunk store's whole view of storage (named files,
//! written durably and read whole), so the simulator can put faults (errors, torn writes, bit flips)
//! underneath the same store; [`LocalDisk`] is the real one: `<dir>/chunks/<aa>/<bb>/<name>`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::bucket::{BucketStats, Trash};

/// Durable named files.
pub trait ChunkDisk: Send + Sync + 'static {
    /// The bytes stored under `name` (`NotFound` when there are none).
    fn read(&self, name: &str) -> io::Result<Vec<u8>>;
    /// The length of what is stored under `name`.
    fn size(&self, name: &str) -> io::Result<u64>;
    /// True when something is stored under `name`.
    fn contains(&self, name: &str) -> bool;
    /// Stores `data` under `name`. When this returns the bytes survive a crash, and a crash before
    /// never leaves a partial file under `name`.
    fn write_durable(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// What is stored under names that start with `prefix` (two hex digits: one 256th of the
    /// chunks): each name with when it was last written or [touched](ChunkDisk::touch) and its
    /// length. Names that vanish while the listing runs may or may not appear.
    fn list(&self, prefix: &str) -> io::Result<Vec<(String, SystemTime, u64)>>;
    /// When what is stored under `name` was last written or touched (`NotFound` when nothing is).
    fn modified(&self, name: &str) -> io::Result<SystemTime>;
    /// Marks what is stored under `name` as written now, without changing its bytes (`NotFound` when
    /// nothing is stored there).
    fn touch(&self, name: &str) -> io::Result<()>;
    /// Removes what is stored under `name` (`NotFound` when nothing is).
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Bytes that can still be written (what the file system offers unprivileged writers).
    fn available(&self) -> io::Result<u64>;
    /// Where removed chunks wait for a later collection, on a store several nodes write into
    /// ([`Trash`]); `None`: removal is final.
    fn trash(&self) -> Option<&dyn Trash> {
        None
    }
    /// The collection epoch the writes into this store are fenced with, when several nodes write
    /// into it (see [`crate::policy::gc`]); `None`: the node's own.
    fn shared_fence(&self) -> Option<u64> {
        None
    }
    /// The requests made to an object store, when the chunks live in one.
    fn bucket_stats(&self) -> Option<&BucketStats> {
        None
    }
}

/// Chunk files in a local directory, fanned out over two levels of subdirectories.
pub struct LocalDisk {
    root: PathBuf,
    tmp: PathBuf,
}

impl LocalDisk {
    /// Opens (creating as needed) the chunk directory under `dir` and clears the temp files a crash
    /// left behind.
    pub fn open(dir: &Path) -> io::Result<LocalDisk> {
        let root = dir.join("chunks");
        let tmp = dir.join("tmp");
        fs::create_dir_all(&root)?;
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        Ok(LocalDisk { root, tmp })
    }

    /// True when any chunk file is stored here (a node that starts with a bucket then keeps them
    /// readable until they are moved into it).
    pub fn holds_chunks(&self) -> io::Result<bool> {
        for first in read_dir_if_exists(&self.root)? {
            for second in read_dir_if_exists(&first)? {
                if !read_dir_if_exists(&second)?.is_empty() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Removes the fan-out directories of `prefix` that hold nothing any more.
    pub fn remove_empty_directories(&self, prefix: &str) -> io::Result<()> {
        let first = self.root.join(prefix);
        for second in read_dir_if_exists(&first)? {
            if read_dir_if_exists(&second)?.is_empty() {
                fs::remove_dir(&second)?;
            }
        }
        if first.exists() && read_dir_if_exists(&first)?.is_empty() {
            fs::remove_dir(&first)?;
        }
        Ok(())
    }

    /// The file that holds `name` (tests damage it on purpose).
    pub fn path_of(&self, name: &str) -> PathBuf {
        let fan_out = |range: std::ops::Range<usize>| name.get(range).unwrap_or("_");
        self.root.join(fan_out(0..2)).join(fan_out(2..4)).join(name)
    }
}

impl ChunkDisk for LocalDisk {
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path_of(name))
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        Ok(fs::metadata(self.path_of(name))?.len())
    }

    fn contains(&self, name: &str) -> bool {
        self.path_of(name).exists()
    }

    /// Temp file, fsync, rename, then fsync of the directory and of any fan-out directory created.
    fn write_durable(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let path = self.path_of(name);
        let dir = path.parent().unwrap_or(&self.root);
        let mut created = Vec::new();
        let mut missing = Some(dir);
        while let Some(candidate) = missing.filter(|d| !d.exists() && *d != self.root) {
            created.push(candidate);
            missing = candidate.parent();
        }
        fs::create_dir_all(dir)?;
        let temp = tempfile::NamedTempFile::new_in(&self.tmp)?;
        let mut file: &File = temp.as_file();
        file.write_all(data)?;
        file.sync_data()?;
        temp.persist(&path).map_err(|e| e.error)?;
        File::open(dir)?.sync_all()?;
        for new_dir in created {
            if let Some(parent) = new_dir.parent() {
                File::open(parent)?.sync_all()?;
            }
        }
        Ok(())
    }

    /// Walks the fan-out directory of `prefix`; files that are not at a chunk's place (strays,
    /// foreign files) are left out.
    fn list(&self, prefix: &str) -> io::Result<Vec<(String, SystemTime, u64)>> {
        let mut found = Vec::new();
        for second in read_dir_if_exists(&self.root.join(prefix))? {
            for file in read_dir_if_exists(&second)? {
                let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if self.path_of(name) != file || !name.starts_with(prefix) {
                    continue;
                }
                match fs::symlink_metadata(&file) {
                    Ok(meta) if meta.is_file() => {
                        found.push((name.to_string(), meta.modified()?, meta.len()));
                    }
                    Ok(_) => {}
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(found)
    }

    fn modified(&self, name: &str) -> io::Result<SystemTime> {
        fs::metadata(self.path_of(name))?.modified()
    }

    fn touch(&self, name: &str) -> io::Result<()> {
        File::open(self.path_of(name))?.set_modified(SystemTime::now())
    }

    /// Not made durable: a removal a crash undoes only leaves an unreferenced chunk for the next
    /// collection.
    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path_of(name))
    }

    fn available(&self) -> io::Result<u64> {
        fs4::available_space(&self.root)
    }
}

/// The paths in `dir`, or none when `dir` does not exist (or stopped existing).
fn read_dir_if_exists(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => paths.push(entry.path()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(paths)
}
