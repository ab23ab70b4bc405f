//! The background scrub: passes over every chunk file of this node at a bounded rate, each chunk read
//! from disk and checked against its blake3 name, a damaged one replaced by a peer's verified copy
//! (see [`ChunkStore::scrub`]). Bit rot is found and repaired before a reader meets it, while the
//! other copies still exist. What the passes found is counted ([`Scrubber::status`], and the
//! `arca_scrub_*` metrics).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arca_protocol::ChunkRef;
use arca_protocol::api::ScrubStatus;
use tokio::sync::Notify;

use super::{ChunkStore, ScrubOutcome};
use crate::clock::Clock;

/// How long after the node starts its first pass begins (a restart does not start with a full read
/// of the disk).
const FIRST_PASS_DELAY: Duration = Duration::from_secs(600);

/// Runs scrub passes and keeps what they found.
pub struct Scrubber {
    store: Arc<ChunkStore>,
    clock: Arc<dyn Clock>,
    bytes_per_second: u64,
    interval: Duration,
    asked: Notify,
    running: AtomicBool,
    /// 0 when no pass began yet.
    pass_started_at: AtomicU64,
    /// 0 when no pass ended yet.
    last_pass_finished_at: AtomicU64,
    /// Counts since start.
    pub counts: ScrubCounts,
}

/// What scrub passes found since the node started.
#[derive(Debug, Default)]
pub struct ScrubCounts {
    /// Passes completed.
    pub passes: AtomicU64,
    /// Chunks read and checked.
    pub chunks_checked: AtomicU64,
    /// Bytes read and checked.
    pub bytes_checked: AtomicU64,
    /// Chunks found damaged.
    pub corrupt: AtomicU64,
    /// Damaged chunks replaced from a peer.
    pub repaired: AtomicU64,
    /// Damaged chunks no peer could replace.
    pub unrepairable: AtomicU64,
}

impl Scrubber {
    /// A scrubber of `store` reading at most `bytes_per_second` (0: passes only when asked, at
    /// full speed), starting a pass every `interval`.
    pub fn new(
        store: Arc<ChunkStore>,
        clock: Arc<dyn Clock>,
        bytes_per_second: u64,
        interval: Duration,
    ) -> Scrubber {
        Scrubber {
            store,
            clock,
            bytes_per_second,
            interval,
            asked: Notify::new(),
            running: AtomicBool::new(false),
            pass_started_at: AtomicU64::new(0),
            last_pass_finished_at: AtomicU64::new(0),
            counts: ScrubCounts::default(),
        }
    }

    /// Runs passes for as long as the node runs: every `interval` when a rate is set, and whenever
    /// one is asked for.
    pub async fn run(self: Arc<Self>) {
        let mut wait = FIRST_PASS_DELAY;
        loop {
            if self.bytes_per_second > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.asked.notified() => {}
                }
            } else {
                self.asked.notified().await;
            }
            let started = Instant::now();
            self.pass().await;
            wait = self.interval.saturating_sub(started.elapsed());
        }
    }

    /// Starts a pass now, or right after the one running.
    pub fn start_pass(&self) {
        self.asked.notify_one();
    }

    /// One pass over every chunk file, at the configured rate.
    async fn pass(&self) {
        self.running.store(true, Ordering::Relaxed);
        self.pass_started_at
            .store(self.clock.now_ms(), Ordering::Relaxed);
        let started = Instant::now();
        let mut bytes = 0u64;
        for prefix in 0..=255u8 {
            let prefix = format!("{prefix:02x}");
            let store = self.store.clone();
            let listed = crate::blocking::spawn(move || store.list(&prefix)).await;
            let chunks = match listed {
                Ok(Ok(chunks)) => chunks,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "scrub: listing chunks");
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "scrub: listing chunks");
                    continue;
                }
            };
            for stored in chunks {
                let size = u32::try_from(stored.size).unwrap_or(u32::MAX);
                let outcome = self
                    .store
                    .scrub(ChunkRef {
                        id: stored.id,
                        size,
                    })
                    .await;
                self.count(outcome, stored.size);
                bytes += stored.size;
                self.throttle(started, bytes).await;
            }
        }
        self.counts.passes.fetch_add(1, Ordering::Relaxed);
        self.last_pass_finished_at
            .store(self.clock.now_ms(), Ordering::Relaxed);
        self.running.store(false, Ordering::Relaxed);
        tracing::info!(
            bytes,
            seconds = started.elapsed().as_secs_f64(),
            "scrub pass finished"
        );
    }

    fn count(&self, outcome: ScrubOutcome, size: u64) {
        let counts = &self.counts;
        let damaged = match outcome {
            ScrubOutcome::Gone => return,
            ScrubOutcome::Sound => None,
            ScrubOutcome::Repaired => Some(&counts.repaired),
            ScrubOutcome::Unrepairable => Some(&counts.unrepairable),
        };
        counts.chunks_checked.fetch_add(1, Ordering::Relaxed);
        counts.bytes_checked.fetch_add(size, Ordering::Relaxed);
        if let Some(how) = damaged {
            counts.corrupt.fetch_add(1, Ordering::Relaxed);
            how.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sleeps until `bytes` read since `started` are within the rate.
    async fn throttle(&self, started: Instant, bytes: u64) {
        if self.bytes_per_second == 0 {
            return;
        }
        let due = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(ahead).await;
        }
    }

    /// What the scrub is doing and has found, as node `node_id`.
    pub fn status(&self, node_id: u64) -> ScrubStatus {
        let at = |value: &AtomicU64| Some(value.load(Ordering::Relaxed)).filter(|ms| *ms > 0);
        let count = |value: &AtomicU64| value.load(Ordering::Relaxed);
        ScrubStatus {
            node_id,
            bytes_per_second: self.bytes_per_second,
            running: self.running.load(Ordering::Relaxed),
            pass_started_at: at(&self.pass_started_at),
            last_pass_finished_at: at(&self.last_pass_finished_at),
            passes: count(&self.counts.passes),
            chunks_checked: count(&self.counts.chunks_checked),
            bytes_checked: count(&self.counts.bytes_checked),
            corrupt: count(&self.counts.corrupt),
            repaired: count(&self.counts.repaired),
            unrepairable: count(&self.counts.unrepairable),
        }
    }
}
