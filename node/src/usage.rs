//! Download counting for usage insights: every node counts the downloads it serves in memory (per
//! day, registry, package, version and consumer) and flushes the counts through Raft every
//! `usage_flush_ms` as one [`Command::RecordUsage`], so a download costs a map update rather than a
//! Raft write, and a crash loses at most the counts of one flush interval. A flush whose outcome is
//! unclear is sent again with the same number, which the state applies once. What the figures are
//! kept in, and how they are read, is [`crate::meta::usage`]'s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arca_protocol::Command;
use arca_protocol::model::{UsageCount, UsageTally};
use futures::{Stream, StreamExt};

use crate::api::metrics::Metrics;
use crate::auth::Caller;
use crate::clock::Clock;
use crate::meta::usage::day_of;
use crate::meta::{Meta, ProposeError};

/// A download being sent, counted by the bytes that were sent once its body is done with (dropped):
/// a `HEAD`, whose body is never read, counts nothing, and a download cut short counts its bytes
/// but not as a download.
pub struct Sending {
    usage: Arc<Usage>,
    registry: String,
    package: String,
    version: Option<String>,
    consumer: String,
    whole_size: Option<u64>,
    sent: u64,
}

impl Sending {
    /// `stream` (a body), counting what it yields.
    pub fn count<B: AsRef<[u8]>, E>(
        mut self,
        stream: impl Stream<Item = Result<B, E>>,
    ) -> impl Stream<Item = Result<B, E>> {
        stream.inspect(move |piece| {
            // The whole of `self` moves into the closure (not just its count), so it is counted
            // when the body is dropped.
            let sending = &mut self;
            if let Ok(bytes) = piece {
                sending.sent += bytes.as_ref().len() as u64;
            }
        })
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        let usage = self.usage.clone();
        usage.count(self);
    }
}

/// What a download was of and who asked for it.
#[derive(Debug, Clone, Copy)]
pub struct Download<'a> {
    /// The registry holding what was served (a virtual registry's member).
    pub registry: &'a str,
    /// The package (an OCI repository).
    pub package: &'a str,
    /// The version, when the bytes are one version's (`None`: OCI layers, which images share).
    pub version: Option<&'a str>,
    /// Who asked.
    pub caller: &'a Caller,
}

impl<'a> Download<'a> {
    /// A download by `caller` of a file of `version` of `package`, which `registry` holds.
    pub fn of(registry: &'a str, package: &'a str, version: &'a str, caller: &'a Caller) -> Self {
        Download {
            registry,
            package,
            version: Some(version),
            caller,
        }
    }
}

/// How a node counts and flushes.
#[derive(Debug, Clone)]
pub struct UsageSettings {
    /// Whether downloads are counted at all.
    pub enabled: bool,
    /// How often counts are flushed.
    pub flush_every: Duration,
    /// How many days of daily figures the cluster keeps.
    pub keep_days: u32,
    /// This node.
    pub node_id: u64,
    /// Its site.
    pub site: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TallyKey {
    day: u32,
    registry: String,
    package: String,
    version: Option<String>,
    consumer: String,
}

/// A flush that was proposed but not known to be committed: sent again, as it is, before anything
/// newer.
struct Unsent {
    batch: u64,
    tallies: Vec<UsageTally>,
}

/// This node's download counts not yet flushed.
pub struct Usage {
    meta: Meta,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: UsageSettings,
    counts: Mutex<HashMap<TallyKey, UsageCount>>,
    /// Held while a flush is in flight; the last batch number used.
    flushing: tokio::sync::Mutex<(u64, Option<Unsent>)>,
}

/// Who a caller is, as usage figures name consumers.
pub fn consumer_of(caller: &Caller) -> String {
    let Some(principal) = caller.principal() else {
        return "anonymous".to_string();
    };
    match (&principal.user, &principal.token) {
        (Some(user), Some(token)) => format!("user:{user}/token:{}", token.name),
        (Some(user), None) => format!("user:{user}"),
        (None, Some(token)) => format!("token:{}", token.name),
        (None, None) => "anonymous".to_string(),
    }
}

impl Usage {
    /// Counts for this node, flushing into `meta`.
    pub fn new(
        meta: Meta,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: UsageSettings,
    ) -> Usage {
        Usage {
            meta,
            clock,
            metrics,
            settings,
            counts: Mutex::new(HashMap::new()),
            flushing: tokio::sync::Mutex::new((0, None)),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<TallyKey, UsageCount>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts counting a download of `download`, `whole_size` bytes when the whole file is sent
    /// (`None`: a range of it): see [`Sending`].
    pub fn sending(self: &Arc<Self>, download: &Download<'_>, whole_size: Option<u64>) -> Sending {
        Sending {
            usage: self.clone(),
            registry: download.registry.to_string(),
            package: download.package.to_string(),
            version: download.version.map(str::to_string),
            consumer: consumer_of(download.caller),
            whole_size,
            sent: 0,
        }
    }

    fn count(&self, sent: &mut Sending) {
        let whole = sent.whole_size == Some(sent.sent);
        if whole {
            self.metrics.downloads.inc();
        }
        if !self.settings.enabled || (sent.sent == 0 && !whole) {
            return;
        }
        let now = self.clock.now_ms();
        let key = TallyKey {
            day: day_of(now),
            registry: std::mem::take(&mut sent.registry),
            package: std::mem::take(&mut sent.package),
            version: sent.version.take(),
            consumer: std::mem::take(&mut sent.consumer),
        };
        self.counts().entry(key).or_default().add(&UsageCount {
            downloads: u64::from(whole),
            bytes: sent.sent,
            last_at: now,
        });
    }

    /// Sends the counts so far (and first any earlier flush not known to have committed).
    pub async fn flush(&self) -> Result<(), ProposeError> {
        let mut flushing = self.flushing.lock().await;
        let (last_batch, unsent) = &mut *flushing;
        if let Some(earlier) = unsent.take()
            && let Err(error) = self.send(earlier.batch, earlier.tallies.clone()).await
        {
            *unsent = Some(earlier);
            return Err(error);
        }
        let taken: Vec<(TallyKey, UsageCount)> = self.counts().drain().collect();
        if taken.is_empty() {
            return Ok(());
        }
        let tallies: Vec<UsageTally> = taken
            .into_iter()
            .map(|(key, count)| UsageTally {
                day: key.day,
                registry: key.registry,
                package: key.package,
                version: key.version,
                consumer: key.consumer,
                downloads: count.downloads,
                bytes: count.bytes,
                last_at: count.last_at,
            })
            .collect();
        // Above every number this node used before, in this run or (as a time) an earlier one.
        let batch = self.clock.now_ms().max(*last_batch + 1);
        *last_batch = batch;
        if let Err(error) = self.send(batch, tallies.clone()).await {
            *unsent = Some(Unsent { batch, tallies });
            return Err(error);
        }
        Ok(())
    }

    async fn send(&self, batch: u64, tallies: Vec<UsageTally>) -> Result<(), ProposeError> {
        let result = self
            .meta
            .propose(Command::RecordUsage {
                node_id: self.settings.node_id,
                batch,
                site: self.settings.site.clone(),
                tallies,
                keep_days: self.settings.keep_days,
            })
            .await;
        match &result {
            Ok(()) => self.metrics.usage_flushes.inc(),
            Err(_) => self.metrics.usage_flush_failures.inc(),
        };
        result
    }

    /// Flushes every `flush_every`, for as long as the node runs.
    pub async fn run(self: Arc<Self>) {
        if !self.settings.enabled {
            return;
        }
        let mut ticks = tokio::time::interval(self.settings.flush_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = self.flush().await {
                tracing::warn!(%error, "flushing download counts (kept, sent again next time)");
            }
        }
    }
}
