//! A simulated node's disk: the chunk files ([`ChunkDisk`]) and the metadata files ([`MetaFiles`]:
//! the Raft log and state databases and snapshot files, each a redb [`StorageBackend`]), with what a
//! real disk does wrong. A metadata file keeps what was written but not yet fsynced apart from what
//! is durable; a crash keeps the durable bytes, and with torn writes any subset of the unsynced
//! sectors. Creating, renaming and removing a metadata file is durable at once (the node syncs the
//! directory). Faults, when on, make reads and writes fail with EIO, writes fail with ENOSPC, and
//! flip bits in stored chunks.
//!
//! Every start of the node gets handles of a new generation; a crash ends the generation, so what the
//! dead incarnation's tasks still try to read or write fails instead of reaching the new one's disk.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arca_node::blob::ChunkDisk;
use arca_node::clock::Clock;
use arca_node::meta::files::MetaFiles;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redb::StorageBackend;

use crate::clock::SimClock;

/// Bytes in a sector: a torn write keeps whole sectors.
const SECTOR: usize = 512;

/// How often, while disk faults are on, an I/O fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskFaults {
    /// Probability of EIO per read or write.
    pub eio: f64,
    /// Probability of ENOSPC per write.
    pub enospc: f64,
}

/// One node's disk, shared by all its incarnations.
pub struct Disk {
    state: Mutex<DiskState>,
    clock: Arc<SimClock>,
}

struct ChunkFile {
    data: Vec<u8>,
    modified_ms: u64,
}

enum PendingWrite {
    Bytes { offset: u64, data: Vec<u8> },
    Length(u64),
}

/// One metadata file's bytes.
#[derive(Default)]
struct SimFile {
    /// As reads see it (the page cache).
    current: Vec<u8>,
    /// As a crash leaves it.
    durable: Vec<u8>,
    /// Writes since its last fsync, in order.
    pending: Vec<PendingWrite>,
    /// Handles of the running incarnation open on it.
    opened: usize,
}

struct DiskState {
    generation: u64,
    chunks: BTreeMap<String, ChunkFile>,
    /// Metadata file names, to the file each names.
    names: BTreeMap<String, u64>,
    /// Metadata files by id; an unlinked one lives on while a handle has it open.
    files: BTreeMap<u64, SimFile>,
    next_file: u64,
    faults: DiskFaults,
    rng: StdRng,
    stats: DiskStats,
}

/// What the disk did (for the trace and the report).
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskStats {
    /// I/O errors returned.
    pub errors: u64,
    /// Bits flipped in stored chunks.
    pub bit_flips: u64,
    /// Crashes that tore a write.
    pub torn_writes: u64,
}

fn apply(file: &mut Vec<u8>, write: &PendingWrite) {
    match write {
        PendingWrite::Bytes { offset, data } => {
            let start = *offset as usize;
            let end = start + data.len();
            if file.len() < end {
                file.resize(end, 0);
            }
            file[start..end].copy_from_slice(data);
        }
        PendingWrite::Length(length) => file.resize(*length as usize, 0),
    }
}

fn crashed() -> io::Error {
    io::Error::other("the node crashed: this handle's incarnation is gone")
}

impl Disk {
    /// An empty disk whose faults are drawn from `seed`, stamping files with `clock`'s time.
    pub fn new(seed: u64, clock: Arc<SimClock>) -> Arc<Disk> {
        Arc::new(Disk {
            state: Mutex::new(DiskState {
                generation: 0,
                chunks: BTreeMap::new(),
                names: BTreeMap::new(),
                files: BTreeMap::new(),
                next_file: 0,
                faults: DiskFaults::default(),
                rng: StdRng::seed_from_u64(seed),
                stats: DiskStats::default(),
            }),
            clock,
        })
    }

    fn state(&self) -> MutexGuard<'_, DiskState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Begins a new incarnation: handles of earlier ones stop working.
    pub fn next_generation(self: &Arc<Self>) -> (ChunkFiles, SimMetaFiles) {
        let generation = {
            let mut state = self.state();
            state.generation += 1;
            state.generation
        };
        (
            ChunkFiles {
                disk: self.clone(),
                generation,
            },
            SimMetaFiles {
                disk: self.clone(),
                generation,
            },
        )
    }

    /// A crash: the current incarnation's handles die and every metadata file keeps its durable
    /// bytes. When `torn`, a file also keeps any subset of the sectors written since its last fsync,
    /// in no particular order (as a disk's write cache may), while length changes, which the file
    /// system journals, are kept. Unlinked files go with the handles.
    pub fn crash(&self, torn: bool) {
        let mut state = self.state();
        state.generation += 1;
        let linked: BTreeSet<u64> = state.names.values().copied().collect();
        state.files.retain(|id, _| linked.contains(id));
        let ids: Vec<u64> = state.files.keys().copied().collect();
        for id in ids {
            let Some(file) = state.files.get_mut(&id) else {
                continue;
            };
            let pending = std::mem::take(&mut file.pending);
            let mut durable = std::mem::take(&mut file.durable);
            file.opened = 0;
            let mut tore = false;
            if torn && !pending.is_empty() {
                for write in &pending {
                    match write {
                        PendingWrite::Length(_) => apply(&mut durable, write),
                        PendingWrite::Bytes { offset, data } => {
                            for (index, sector) in data.chunks(SECTOR).enumerate() {
                                if state.rng.random_bool(0.5) {
                                    let kept = PendingWrite::Bytes {
                                        offset: offset + (index * SECTOR) as u64,
                                        data: sector.to_vec(),
                                    };
                                    apply(&mut durable, &kept);
                                }
                            }
                        }
                    }
                }
                tore = true;
            }
            if tore {
                state.stats.torn_writes += 1;
            }
            if let Some(file) = state.files.get_mut(&id) {
                file.current = durable.clone();
                file.durable = durable;
            }
        }
    }

    /// Sets the fault rates (zero turns faults off).
    pub fn set_faults(&self, faults: DiskFaults) {
        self.state().faults = faults;
    }

    /// The chunk files whose bytes still hash to their name (blake3): the copies a peer can repair
    /// from.
    pub fn intact_chunks(&self) -> BTreeSet<String> {
        self.state()
            .chunks
            .iter()
            .filter(|(name, file)| blake3::hash(&file.data).to_hex().as_str() == name.as_str())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Flips one random bit of one random stored chunk among `allowed`, if there is one; returns
    /// its name.
    pub fn flip_a_bit(&self, allowed: &BTreeSet<String>) -> Option<String> {
        let mut state = self.state();
        let candidates: Vec<String> = state
            .chunks
            .keys()
            .filter(|name| allowed.contains(*name))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let name = candidates[state.rng.random_range(0..candidates.len())].clone();
        let bit = {
            let length = state.chunks.get(&name)?.data.len();
            if length == 0 {
                return None;
            }
            state.rng.random_range(0..length * 8)
        };
        let file = state.chunks.get_mut(&name)?;
        file.data[bit / 8] ^= 1 << (bit % 8);
        state.stats.bit_flips += 1;
        Some(name)
    }

    /// True when a chunk file `name` is stored (whatever its bytes).
    pub fn has_chunk(&self, name: &str) -> bool {
        self.state().chunks.contains_key(name)
    }

    /// What the disk did so far.
    pub fn stats(&self) -> DiskStats {
        self.state().stats
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }
}

impl DiskState {
    /// Fails the I/O of `generation` when it is dead, or now and then while faults are on.
    fn check(&mut self, generation: u64, write: bool) -> io::Result<()> {
        if generation != self.generation {
            return Err(crashed());
        }
        if self.faults.eio > 0.0 && self.rng.random_bool(self.faults.eio) {
            self.stats.errors += 1;
            return Err(io::Error::other("EIO (simulated)"));
        }
        if write && self.faults.enospc > 0.0 && self.rng.random_bool(self.faults.enospc) {
            self.stats.errors += 1;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "ENOSPC (simulated)",
            ));
        }
        Ok(())
    }
}

/// The chunk files of one incarnation.
pub struct ChunkFiles {
    disk: Arc<Disk>,
    generation: u64,
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no chunk file {name}"))
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl ChunkDisk for ChunkFiles {
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let mut state = self.disk.state();
        state.check(self.generation, false)?;
        state
            .chunks
            .get(name)
            .map(|file| file.data.clone())
            .ok_or_else(|| not_found(name))
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        let mut state = self.disk.state();
        state.check(self.generation, false)?;
        state
            .chunks
            .get(name)
            .map(|file| file.data.len() as u64)
            .ok_or_else(|| not_found(name))
    }

    fn contains(&self, name: &str) -> bool {
        let state = self.disk.state();
        state.generation == self.generation && state.chunks.contains_key(name)
    }

    fn write_durable(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let now = self.disk.now();
        let mut state = self.disk.state();
        state.check(self.generation, true)?;
        state.chunks.insert(
            name.to_string(),
            ChunkFile {
                data: data.to_vec(),
                modified_ms: now,
            },
        );
        Ok(())
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<(String, SystemTime, u64)>> {
        let mut state = self.disk.state();
        state.check(self.generation, false)?;
        Ok(state
            .chunks
            .range(prefix.to_string()..)
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, file)| (name.clone(), at(file.modified_ms), file.data.len() as u64))
            .collect())
    }

    fn modified(&self, name: &str) -> io::Result<SystemTime> {
        let mut state = self.disk.state();
        state.check(self.generation, false)?;
        state
            .chunks
            .get(name)
            .map(|file| at(file.modified_ms))
            .ok_or_else(|| not_found(name))
    }

    fn touch(&self, name: &str) -> io::Result<()> {
        let now = self.disk.now();
        let mut state = self.disk.state();
        state.check(self.generation, true)?;
        let file = state.chunks.get_mut(name).ok_or_else(|| not_found(name))?;
        file.modified_ms = now;
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.disk.state();
        state.check(self.generation, true)?;
        state
            .chunks
            .remove(name)
            .map(drop)
            .ok_or_else(|| not_found(name))
    }

    /// The simulated disk has no capacity limit.
    fn available(&self) -> io::Result<u64> {
        Ok(u64::MAX)
    }
}

/// The metadata files of one incarnation.
pub struct SimMetaFiles {
    disk: Arc<Disk>,
    generation: u64,
}

impl SimMetaFiles {
    fn alive(&self, state: &DiskState) -> io::Result<()> {
        if state.generation == self.generation {
            Ok(())
        } else {
            Err(crashed())
        }
    }
}

/// Drops the file `id` when no name and no handle has it any more.
fn forget_if_unused(state: &mut DiskState, id: u64) {
    let named = state.names.values().any(|named| *named == id);
    if !named && state.files.get(&id).is_none_or(|file| file.opened == 0) {
        state.files.remove(&id);
    }
}

impl MetaFiles for SimMetaFiles {
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        let mut state = self.disk.state();
        self.alive(&state)?;
        let id = match state.names.get(name) {
            Some(id) => *id,
            None => {
                let id = state.next_file;
                state.next_file += 1;
                state.names.insert(name.to_string(), id);
                state.files.insert(id, SimFile::default());
                id
            }
        };
        if let Some(file) = state.files.get_mut(&id) {
            file.opened += 1;
        }
        Ok(Box::new(MetaFile {
            disk: self.disk.clone(),
            generation: self.generation,
            id,
        }))
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        let state = self.disk.state();
        self.alive(&state)?;
        Ok(state.names.contains_key(name))
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        let state = self.disk.state();
        self.alive(&state)?;
        Ok(state
            .names
            .get(name)
            .and_then(|id| state.files.get(id))
            .map_or(0, |file| file.current.len() as u64))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = self.disk.state();
        self.alive(&state)?;
        let id = state.names.remove(from).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no metadata file {from}"))
        })?;
        if let Some(replaced) = state.names.insert(to.to_string(), id) {
            forget_if_unused(&mut state, replaced);
        }
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.disk.state();
        self.alive(&state)?;
        if let Some(id) = state.names.remove(name) {
            forget_if_unused(&mut state, id);
        }
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let state = self.disk.state();
        self.alive(&state)?;
        Ok(state.names.keys().cloned().collect())
    }
}

/// A metadata file of one incarnation.
pub struct MetaFile {
    disk: Arc<Disk>,
    generation: u64,
    id: u64,
}

impl Drop for MetaFile {
    fn drop(&mut self) {
        let mut state = self.disk.state();
        if state.generation != self.generation {
            return;
        }
        if let Some(file) = state.files.get_mut(&self.id) {
            file.opened = file.opened.saturating_sub(1);
        }
        forget_if_unused(&mut state, self.id);
    }
}

impl std::fmt::Debug for MetaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MetaFile({} of generation {})", self.id, self.generation)
    }
}

impl MetaFile {
    /// Runs `work` on the file's bytes, after the incarnation and fault checks.
    fn with<R>(
        &self,
        write: bool,
        work: impl FnOnce(&mut SimFile) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut state = self.disk.state();
        state.check(self.generation, write)?;
        let file = state
            .files
            .get_mut(&self.id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the file is gone"))?;
        work(file)
    }
}

impl StorageBackend for MetaFile {
    fn len(&self) -> io::Result<u64> {
        let state = self.disk.state();
        if state.generation != self.generation {
            return Err(crashed());
        }
        Ok(state
            .files
            .get(&self.id)
            .map_or(0, |file| file.current.len() as u64))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.with(false, |file| {
            let start = offset as usize;
            let stored = file
                .current
                .get(start..start + out.len())
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
            out.copy_from_slice(stored);
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(true, |file| {
            let write = PendingWrite::Length(len);
            apply(&mut file.current, &write);
            file.pending.push(write);
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with(false, |file| {
            let pending = std::mem::take(&mut file.pending);
            for write in &pending {
                apply(&mut file.durable, write);
            }
            Ok(())
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.with(true, |file| {
            let write = PendingWrite::Bytes {
                offset,
                data: data.to_vec(),
            };
            apply(&mut file.current, &write);
            file.pending.push(write);
            Ok(())
        })
    }
}
