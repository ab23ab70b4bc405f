//! A simulated node's disk: the chunk files ([`ChunkDisk`]) and the metadata database file (a redb
//! [`StorageBackend`]), with what a real disk does wrong. The database file keeps what was written
//! but not yet fsynced apart from what is durable; a crash keeps the durable bytes, and with torn
//! writes any subset of the unsynced sectors. Faults, when on, make reads and writes
//! fail with EIO, writes fail with ENOSPC, and flip bits in stored chunks.
//!
//! Every start of the node gets handles of a new generation; a crash ends the generation, so what the
//! dead incarnation's tasks still try to read or write fails instead of reaching the new one's disk.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arca_node::blob::ChunkDisk;
use arca_node::clock::Clock;
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

struct DiskState {
    generation: u64,
    chunks: BTreeMap<String, ChunkFile>,
    /// The metadata file as reads see it (the page cache).
    meta_current: Vec<u8>,
    /// The metadata file as a crash leaves it.
    meta_durable: Vec<u8>,
    /// Writes to the metadata file since its last fsync, in order.
    meta_pending: Vec<PendingWrite>,
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
                meta_current: Vec::new(),
                meta_durable: Vec::new(),
                meta_pending: Vec::new(),
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
    pub fn next_generation(self: &Arc<Self>) -> (ChunkFiles, MetaFile) {
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
            MetaFile {
                disk: self.clone(),
                generation,
            },
        )
    }

    /// A crash: the current incarnation's handles die and the metadata file keeps its durable bytes.
    /// When `torn`, it also keeps any subset of the sectors written since the last fsync, in no
    /// particular order (as a disk's write cache may), while length changes, which the file system
    /// journals, are kept.
    pub fn crash(&self, torn: bool) {
        let mut state = self.state();
        state.generation += 1;
        let pending = std::mem::take(&mut state.meta_pending);
        let mut durable = std::mem::take(&mut state.meta_durable);
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
            state.stats.torn_writes += 1;
        }
        state.meta_current = durable.clone();
        state.meta_durable = durable;
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

    fn list(&self) -> io::Result<Vec<(String, SystemTime, u64)>> {
        let mut state = self.disk.state();
        state.check(self.generation, false)?;
        Ok(state
            .chunks
            .iter()
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
}

/// The metadata database file of one incarnation.
pub struct MetaFile {
    disk: Arc<Disk>,
    generation: u64,
}

impl std::fmt::Debug for MetaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MetaFile(generation {})", self.generation)
    }
}

impl StorageBackend for MetaFile {
    fn len(&self) -> io::Result<u64> {
        let state = self.disk.state();
        if state.generation != self.generation {
            return Err(crashed());
        }
        Ok(state.meta_current.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let mut state = self.disk.state();
        state.check(self.generation, false)?;
        let start = offset as usize;
        let stored = state
            .meta_current
            .get(start..start + out.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        out.copy_from_slice(stored);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.disk.state();
        state.check(self.generation, true)?;
        let write = PendingWrite::Length(len);
        apply(&mut state.meta_current, &write);
        state.meta_pending.push(write);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.disk.state();
        state.check(self.generation, false)?;
        let pending = std::mem::take(&mut state.meta_pending);
        for write in &pending {
            apply(&mut state.meta_durable, write);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.disk.state();
        state.check(self.generation, true)?;
        let write = PendingWrite::Bytes {
            offset,
            data: data.to_vec(),
        };
        apply(&mut state.meta_current, &write);
        state.meta_pending.push(write);
        Ok(())
    }
}
