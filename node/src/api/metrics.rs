//! Prometheus metrics: request counters kept by a middleware, a leader-change counter kept by a watcher,
//! and gauges and counters read from Raft, the metadata, the chunk store, the inter-node transport and
//! a cache node's tiered cache when `/metrics` is scraped.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::AppState;
use crate::meta::StateRead;
use crate::meta::tables::scalar;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// Labels of per-node replication figures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
    site: String,
}

/// Labels of per-site replication figures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteLabels {
    site: String,
}

/// Labels of remote-registry figures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryLabels {
    registry: String,
}

/// Labels of cache hits.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    tier: &'static str,
}

/// Labels of object-storage requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StorageRequestLabels {
    request: &'static str,
}

/// Every metric a node exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    /// Bytes accepted in uploads.
    pub upload_bytes: Counter,
    /// Bytes served in downloads (as planned when the response starts).
    pub download_bytes: Counter,
    /// Whole downloads served (what usage insights count; a ranged read is bytes only).
    pub downloads: Counter,
    /// Download counts flushed into the replicated state.
    pub usage_flushes: Counter,
    /// Flushes of download counts that failed (the counts are sent again).
    pub usage_flush_failures: Counter,
    /// Audit events of callers without valid credentials not kept (over their budget).
    pub audit_events_skipped: Counter,
    raft_term: Gauge,
    raft_last_log_index: Gauge,
    raft_last_applied: Gauge,
    raft_is_leader: Gauge,
    registries: Gauge,
    packages: Gauge,
    blobs: Gauge,
    disk_available_bytes: Gauge,
    scrub_passes: Counter<u64, AtomicU64>,
    scrub_chunks_checked: Counter<u64, AtomicU64>,
    scrub_bytes_checked: Counter<u64, AtomicU64>,
    scrub_corrupt: Counter<u64, AtomicU64>,
    scrub_repaired: Counter<u64, AtomicU64>,
    scrub_unrepairable: Counter<u64, AtomicU64>,
    disk_min_free_bytes: Gauge,
    chunks_written: Counter<u64, AtomicU64>,
    chunks_deduplicated: Counter<u64, AtomicU64>,
    chunk_bytes_written: Counter<u64, AtomicU64>,
    corrupt_chunk_reads: Counter<u64, AtomicU64>,
    chunk_cache_hits: Counter<u64, AtomicU64>,
    gc_runs: Counter<u64, AtomicU64>,
    gc_chunks_removed: Counter<u64, AtomicU64>,
    gc_bytes_removed: Counter<u64, AtomicU64>,
    /// Times this node saw the leader change.
    pub raft_leader_changes: Counter,
    raft_log_lag: Family<NodeLabels, Gauge>,
    replication_pending_blobs: Family<SiteLabels, Gauge>,
    peer_chunk_fetches: Counter<u64, AtomicU64>,
    peer_bytes_received: Counter<u64, AtomicU64>,
    peer_bytes_sent: Counter<u64, AtomicU64>,
    cache_hits: Family<TierLabels, Counter>,
    cache_misses: Counter,
    cache_evictions: Counter,
    cache_hit_ratio: Gauge<f64, AtomicU64>,
    remote_hits: Family<RegistryLabels, Counter>,
    remote_misses: Family<RegistryLabels, Counter>,
    remote_errors: Family<RegistryLabels, Counter>,
    remote_stale: Family<RegistryLabels, Counter>,
    remote_upstream_millis: Family<RegistryLabels, Counter>,
    storage_requests: Family<StorageRequestLabels, Counter>,
    storage_errors: Counter,
    storage_refused: Counter,
    storage_request_micros: Counter,
    storage_bytes_read: Counter,
    storage_bytes_written: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let metrics = Metrics {
            registry: Mutex::new(Registry::with_prefix("arca")),
            requests: Family::default(),
            upload_bytes: Counter::default(),
            download_bytes: Counter::default(),
            downloads: Counter::default(),
            usage_flushes: Counter::default(),
            usage_flush_failures: Counter::default(),
            audit_events_skipped: Counter::default(),
            raft_term: Gauge::default(),
            raft_last_log_index: Gauge::default(),
            raft_last_applied: Gauge::default(),
            raft_is_leader: Gauge::default(),
            registries: Gauge::default(),
            packages: Gauge::default(),
            blobs: Gauge::default(),
            disk_available_bytes: Gauge::default(),
            scrub_passes: Counter::default(),
            scrub_chunks_checked: Counter::default(),
            scrub_bytes_checked: Counter::default(),
            scrub_corrupt: Counter::default(),
            scrub_repaired: Counter::default(),
            scrub_unrepairable: Counter::default(),
            disk_min_free_bytes: Gauge::default(),
            chunks_written: Counter::default(),
            chunks_deduplicated: Counter::default(),
            chunk_bytes_written: Counter::default(),
            corrupt_chunk_reads: Counter::default(),
            chunk_cache_hits: Counter::default(),
            storage_requests: Family::default(),
            storage_errors: Counter::default(),
            storage_refused: Counter::default(),
            storage_request_micros: Counter::default(),
            storage_bytes_read: Counter::default(),
            storage_bytes_written: Counter::default(),
            gc_runs: Counter::default(),
            gc_chunks_removed: Counter::default(),
            gc_bytes_removed: Counter::default(),
            raft_leader_changes: Counter::default(),
            raft_log_lag: Family::default(),
            replication_pending_blobs: Family::default(),
            peer_chunk_fetches: Counter::default(),
            peer_bytes_received: Counter::default(),
            peer_bytes_sent: Counter::default(),
            cache_hits: Family::default(),
            cache_misses: Counter::default(),
            cache_evictions: Counter::default(),
            cache_hit_ratio: Gauge::default(),
            remote_hits: Family::default(),
            remote_misses: Family::default(),
            remote_errors: Family::default(),
            remote_stale: Family::default(),
            remote_upstream_millis: Family::default(),
        };
        {
            let mut registry = metrics
                .registry
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            registry.register(
                "http_requests",
                "HTTP requests answered",
                metrics.requests.clone(),
            );
            registry.register(
                "upload_bytes",
                "Bytes accepted in uploads",
                metrics.upload_bytes.clone(),
            );
            registry.register(
                "download_bytes",
                "Bytes served in downloads",
                metrics.download_bytes.clone(),
            );
            registry.register(
                "downloads",
                "Whole downloads served",
                metrics.downloads.clone(),
            );
            registry.register(
                "usage_flushes",
                "Download counts flushed into the replicated state",
                metrics.usage_flushes.clone(),
            );
            registry.register(
                "usage_flush_failures",
                "Flushes of download counts that failed and are sent again",
                metrics.usage_flush_failures.clone(),
            );
            registry.register(
                "audit_events_skipped",
                "Audit events of callers without valid credentials not kept (over their budget)",
                metrics.audit_events_skipped.clone(),
            );
            registry.register("raft_term", "Current Raft term", metrics.raft_term.clone());
            registry.register(
                "raft_last_log_index",
                "Index of the last Raft log entry",
                metrics.raft_last_log_index.clone(),
            );
            registry.register(
                "raft_last_applied",
                "Index of the last applied Raft log entry",
                metrics.raft_last_applied.clone(),
            );
            registry.register(
                "raft_is_leader",
                "1 when this node is the Raft leader",
                metrics.raft_is_leader.clone(),
            );
            registry.register("registries", "Registries", metrics.registries.clone());
            registry.register(
                "packages",
                "Packages in all registries",
                metrics.packages.clone(),
            );
            registry.register(
                "blobs",
                "Distinct blobs referenced by metadata",
                metrics.blobs.clone(),
            );
            registry.register(
                "disk_available_bytes",
                "Bytes free on the disk of the data directory",
                metrics.disk_available_bytes.clone(),
            );
            registry.register(
                "disk_min_free_bytes",
                "Free space chunk writes never take the disk below (uploads get 507)",
                metrics.disk_min_free_bytes.clone(),
            );
            for (name, help, counter) in [
                (
                    "scrub_passes",
                    "Scrub passes completed",
                    &metrics.scrub_passes,
                ),
                (
                    "scrub_chunks_checked",
                    "Chunks the scrub read and checked",
                    &metrics.scrub_chunks_checked,
                ),
                (
                    "scrub_bytes_checked",
                    "Bytes the scrub read and checked",
                    &metrics.scrub_bytes_checked,
                ),
                (
                    "scrub_corrupt_chunks",
                    "Chunks the scrub found damaged",
                    &metrics.scrub_corrupt,
                ),
                (
                    "scrub_repaired_chunks",
                    "Damaged chunks the scrub replaced with a peer's copy",
                    &metrics.scrub_repaired,
                ),
                (
                    "scrub_unrepairable_chunks",
                    "Damaged chunks no peer could replace",
                    &metrics.scrub_unrepairable,
                ),
            ] {
                registry.register(name, help, counter.clone());
            }
            registry.register(
                "chunks_written",
                "Chunks written to disk",
                metrics.chunks_written.clone(),
            );
            registry.register(
                "chunks_deduplicated",
                "Chunks not written because already stored",
                metrics.chunks_deduplicated.clone(),
            );
            registry.register(
                "chunk_bytes_written",
                "Bytes written to the chunk store",
                metrics.chunk_bytes_written.clone(),
            );
            registry.register(
                "storage_requests",
                "Requests sent to the object store chunks live in, by kind",
                metrics.storage_requests.clone(),
            );
            for (name, help, counter) in [
                (
                    "storage_errors",
                    "Object-store requests that failed after their retries",
                    &metrics.storage_errors,
                ),
                (
                    "storage_refused",
                    "Object-store requests refused at once while its circuit was open",
                    &metrics.storage_refused,
                ),
                (
                    "storage_request_microseconds",
                    "Time spent in object-store requests, in microseconds",
                    &metrics.storage_request_micros,
                ),
                (
                    "storage_bytes_read",
                    "Bytes read from the object store",
                    &metrics.storage_bytes_read,
                ),
                (
                    "storage_bytes_written",
                    "Bytes written to the object store",
                    &metrics.storage_bytes_written,
                ),
            ] {
                registry.register(name, help, counter.clone());
            }
            registry.register(
                "chunk_cache_hits",
                "Chunk reads served from the memory tier",
                metrics.chunk_cache_hits.clone(),
            );
            registry.register(
                "gc_runs",
                "Garbage collections completed on this node (dry runs excluded)",
                metrics.gc_runs.clone(),
            );
            registry.register(
                "gc_chunks_removed",
                "Unreferenced chunks garbage collection removed",
                metrics.gc_chunks_removed.clone(),
            );
            registry.register(
                "gc_bytes_removed",
                "Bytes of the chunks garbage collection removed",
                metrics.gc_bytes_removed.clone(),
            );
            registry.register(
                "corrupt_chunk_reads",
                "Chunk reads that failed verification",
                metrics.corrupt_chunk_reads.clone(),
            );
            registry.register(
                "raft_leader_changes",
                "Leader changes this node has seen",
                metrics.raft_leader_changes.clone(),
            );
            registry.register(
                "raft_replication_lag_entries",
                "Log entries each member is behind the leader (exported by the leader)",
                metrics.raft_log_lag.clone(),
            );
            registry.register(
                "replication_pending_blobs",
                "Blobs an eager policy places at a site that no node there holds yet",
                metrics.replication_pending_blobs.clone(),
            );
            registry.register(
                "peer_chunk_fetches",
                "Chunk reads this node had to fetch from a peer",
                metrics.peer_chunk_fetches.clone(),
            );
            registry.register(
                "peer_bytes_received",
                "Chunk bytes received from peers over QUIC",
                metrics.peer_bytes_received.clone(),
            );
            registry.register(
                "peer_bytes_sent",
                "Chunk bytes sent to peers over QUIC",
                metrics.peer_bytes_sent.clone(),
            );
            registry.register(
                "cache_hits",
                "Cache node: chunk reads served by the tiered cache, by tier",
                metrics.cache_hits.clone(),
            );
            registry.register(
                "cache_misses",
                "Cache node: chunk reads the tiered cache could not serve",
                metrics.cache_misses.clone(),
            );
            registry.register(
                "cache_evictions",
                "Cache node: chunks the memory tier dropped to stay in bounds",
                metrics.cache_evictions.clone(),
            );
            for (name, help, family) in [
                (
                    "remote_hits",
                    "Remote registry: requests served without an upstream request of their own \
                     (from the cache, or joining a fetch under way)",
                    &metrics.remote_hits,
                ),
                (
                    "remote_misses",
                    "Remote registry: requests that went upstream",
                    &metrics.remote_misses,
                ),
                (
                    "remote_upstream_errors",
                    "Remote registry: upstream requests that failed",
                    &metrics.remote_errors,
                ),
                (
                    "remote_stale_served",
                    "Remote registry: stale documents served because the upstream failed",
                    &metrics.remote_stale,
                ),
                (
                    "remote_upstream_milliseconds",
                    "Remote registry: time spent waiting for the upstream",
                    &metrics.remote_upstream_millis,
                ),
            ] {
                registry.register(name, help, family.clone());
            }
            registry.register(
                "cache_hit_ratio",
                "Cache node: hits / (hits + misses) since start",
                metrics.cache_hit_ratio.clone(),
            );
        }
        metrics
    }

    fn refresh(&self, state: &AppState) {
        let raft = state.meta.raft_metrics();
        self.raft_term.set(raft.current_term as i64);
        self.raft_last_log_index
            .set(raft.last_log_index.unwrap_or(0) as i64);
        self.raft_last_applied
            .set(raft.last_applied.map_or(0, |l| l.index) as i64);
        self.raft_is_leader
            .set(i64::from(raft.current_leader == Some(raft.id)));
        let counts = state.meta.read(|view| {
            Ok((
                view.registries()?.len() as u64,
                view.counter(scalar::PACKAGE_COUNT)?,
                view.counter(scalar::BLOB_COUNT)?,
            ))
        });
        match counts {
            Ok((registries, packages, blobs)) => {
                self.registries.set(registries as i64);
                self.packages.set(packages as i64);
                self.blobs.set(blobs as i64);
            }
            Err(error) => tracing::warn!(%error, "reading the metadata counts for /metrics"),
        }
        let (floor, available) = state.chunks.space();
        self.disk_min_free_bytes
            .set(i64::try_from(floor).unwrap_or(i64::MAX));
        if let Some(available) = available {
            self.disk_available_bytes
                .set(i64::try_from(available).unwrap_or(i64::MAX));
        }
        let stats = &state.chunks.stats;
        let transfer = &state.transport.stats;
        let scrub = &state.scrub.counts;
        for (counter, source) in [
            (&self.chunks_written, &stats.chunks_written),
            (&self.chunks_deduplicated, &stats.chunks_deduplicated),
            (&self.chunk_bytes_written, &stats.bytes_written),
            (&self.corrupt_chunk_reads, &stats.corrupt_reads),
            (&self.chunk_cache_hits, &stats.cache_hits),
            (&self.peer_chunk_fetches, &stats.remote_fetches),
            (&self.gc_runs, &stats.gc_runs),
            (&self.gc_chunks_removed, &stats.gc_chunks_removed),
            (&self.gc_bytes_removed, &stats.gc_bytes_removed),
            (&self.peer_bytes_received, &transfer.chunk_bytes_received),
            (&self.scrub_passes, &scrub.passes),
            (&self.scrub_chunks_checked, &scrub.chunks_checked),
            (&self.scrub_bytes_checked, &scrub.bytes_checked),
            (&self.scrub_corrupt, &scrub.corrupt),
            (&self.scrub_repaired, &scrub.repaired),
            (&self.scrub_unrepairable, &scrub.unrepairable),
            (&self.peer_bytes_sent, &transfer.chunk_bytes_sent),
        ] {
            catch_up(counter, source.load(Ordering::Relaxed));
        }
        if let Some(bucket) = state.chunks.bucket_stats() {
            for (request, count) in crate::blob::REQUEST_KINDS.iter().zip(&bucket.requests) {
                let labels = StorageRequestLabels { request };
                catch_up(
                    &self.storage_requests.get_or_create(&labels),
                    count.load(Ordering::Relaxed),
                );
            }
            for (counter, source) in [
                (&self.storage_errors, &bucket.errors),
                (&self.storage_refused, &bucket.refused),
                (&self.storage_request_micros, &bucket.micros),
                (&self.storage_bytes_read, &bucket.bytes_read),
                (&self.storage_bytes_written, &bucket.bytes_written),
            ] {
                catch_up(counter, source.load(Ordering::Relaxed));
            }
        }
        self.refresh_replication(state);
        for (registry, counters) in state.proxy.counters() {
            let labels = RegistryLabels { registry };
            for (family, value) in [
                (&self.remote_hits, counters.hits),
                (&self.remote_misses, counters.misses),
                (&self.remote_errors, counters.errors),
                (&self.remote_stale, counters.stale),
                (&self.remote_upstream_millis, counters.upstream_millis),
            ] {
                catch_up(&family.get_or_create(&labels), value);
            }
        }
        if let Some(tiered) = state.chunks.tiered() {
            let cache = tiered.stats();
            for (tier, hits) in [("memory", cache.memory_hits), ("disk", cache.disk_hits)] {
                catch_up(&self.cache_hits.get_or_create(&TierLabels { tier }), hits);
            }
            catch_up(&self.cache_misses, cache.misses);
            catch_up(&self.cache_evictions, cache.evictions);
            let hits = cache.memory_hits + cache.disk_hits;
            let lookups = hits + cache.misses;
            if lookups > 0 {
                self.cache_hit_ratio.set(hits as f64 / lookups as f64);
            }
        }
    }

    /// Log lag per member (as the leader sees it) and, per site, the blobs still to be copied there.
    fn refresh_replication(&self, state: &AppState) {
        let status = state.meta.local_status();
        self.raft_log_lag.clear();
        for node in &status.nodes {
            if let Some(lag) = node.lag {
                self.raft_log_lag
                    .get_or_create(&NodeLabels {
                        node: node.id.to_string(),
                        site: node.site.clone(),
                    })
                    .set(lag as i64);
            }
        }
        let members = state.meta.members();
        let pending = state
            .meta
            .read(|view| crate::transfer::replication::pending_blobs_per_site(view, &members));
        self.replication_pending_blobs.clear();
        match pending {
            Ok(pending) => {
                for (site, count) in pending {
                    self.replication_pending_blobs
                        .get_or_create(&SiteLabels { site })
                        .set(count as i64);
                }
            }
            Err(error) => tracing::warn!(%error, "reading the replication backlog for /metrics"),
        }
    }
}

/// Raises a counter mirroring a monotonic source to the source's value.
fn catch_up<A: prometheus_client::metrics::counter::Atomic<u64>>(
    counter: &Counter<u64, A>,
    now: u64,
) {
    let seen = counter.get();
    if now > seen {
        counter.inc_by(now - seen);
    }
}

/// Counts every request by method, matched route and status.
pub async fn track_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // Only known methods become label values, so callers cannot create series at will.
    let method = match *request.method() {
        Method::GET
        | Method::HEAD
        | Method::POST
        | Method::PUT
        | Method::PATCH
        | Method::DELETE
        | Method::OPTIONS => request.method().to_string(),
        _ => "OTHER".to_string(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`
pub async fn scrape(State(state): State<AppState>) -> Response {
    let mut text = String::new();
    let registry = state
        .metrics
        .registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Refreshed under the registry lock, so concurrent scrapes never count a stat twice.
    state.metrics.refresh(&state);
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        return super::ApiError::internal(error).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
