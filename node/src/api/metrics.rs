//! Prometheus metrics: request counters kept by a middleware, plus gauges read from Raft, the metadata
//! and the chunk store when `/metrics` is scraped.

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

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// Every metric a node exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    /// Bytes accepted in uploads.
    pub upload_bytes: Counter,
    /// Bytes served in downloads (as planned when the response starts).
    pub download_bytes: Counter,
    raft_term: Gauge,
    raft_last_log_index: Gauge,
    raft_last_applied: Gauge,
    raft_is_leader: Gauge,
    registries: Gauge,
    packages: Gauge,
    blobs: Gauge,
    chunks_written: Counter<u64, AtomicU64>,
    chunks_deduplicated: Counter<u64, AtomicU64>,
    chunk_bytes_written: Counter<u64, AtomicU64>,
    corrupt_chunk_reads: Counter<u64, AtomicU64>,
    chunk_cache_hits: Counter<u64, AtomicU64>,
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
            raft_term: Gauge::default(),
            raft_last_log_index: Gauge::default(),
            raft_last_applied: Gauge::default(),
            raft_is_leader: Gauge::default(),
            registries: Gauge::default(),
            packages: Gauge::default(),
            blobs: Gauge::default(),
            chunks_written: Counter::default(),
            chunks_deduplicated: Counter::default(),
            chunk_bytes_written: Counter::default(),
            corrupt_chunk_reads: Counter::default(),
            chunk_cache_hits: Counter::default(),
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
                "chunk_cache_hits",
                "Chunk reads served from the memory tier",
                metrics.chunk_cache_hits.clone(),
            );
            registry.register(
                "corrupt_chunk_reads",
                "Chunk reads that failed verification",
                metrics.corrupt_chunk_reads.clone(),
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
        let (registries, packages, blobs) = state.meta.read(|meta| {
            (
                meta.registries.len(),
                meta.registries
                    .values()
                    .map(|r| r.packages.len())
                    .sum::<usize>(),
                meta.blobs.len(),
            )
        });
        self.registries.set(registries as i64);
        self.packages.set(packages as i64);
        self.blobs.set(blobs as i64);
        let stats = &state.chunks.stats;
        for (counter, source) in [
            (&self.chunks_written, &stats.chunks_written),
            (&self.chunks_deduplicated, &stats.chunks_deduplicated),
            (&self.chunk_bytes_written, &stats.bytes_written),
            (&self.corrupt_chunk_reads, &stats.corrupt_reads),
            (&self.chunk_cache_hits, &stats.cache_hits),
        ] {
            let now = source.load(Ordering::Relaxed);
            let seen = counter.get();
            if now > seen {
                counter.inc_by(now - seen);
            }
        }
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
