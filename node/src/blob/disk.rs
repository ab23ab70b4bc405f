//! Where chunk files live. [`ChunkDisk`] is the chunk store's whole view of storage (named files,
//! written durably and read whole), so the simulator can put faults (errors, torn writes, bit flips)
//! underneath the same store; [`LocalDisk`] is the real one: `<dir>/chunks/<aa>/<bb>/<name>`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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
}
