//! arca-node: the Arca server.
//!
//! [`start`] opens a node's state under its data directory (metadata through Raft in redb, chunks on
//! disk), joins or founds its cluster on the inter-node QUIC port, makes sure the admin token exists,
//! starts the replication worker, and serves every HTTP surface: the management API, the
//! package-manager front-ends, `/healthz` and `/metrics`.

pub mod api;
pub mod auth;
pub mod blob;
pub mod blocking;
pub mod breaker;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod ecosystems;
pub mod formats;
pub mod frontend;
pub mod http_server;
pub mod https;
pub mod inject;
pub mod meta;
pub mod policy;
pub mod proxy;
pub mod search;
pub mod secrets;
pub mod signing;
pub mod transfer;
pub mod ui;
pub mod usage;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinHandle;

use arca_protocol::{NodeInfo, NodeRole};

use crate::blob::{ChunkStore, TieredChunkCache};
use crate::clock::{Clock, NeverAhead, SystemClock};
use crate::config::Config;
use crate::meta::{Meta, MetaOptions};
use crate::transfer::{PeerNetwork, QuicTransport};

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Replicated metadata.
    pub meta: Meta,
    /// This node's chunks.
    pub chunks: Arc<ChunkStore>,
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Prometheus metrics.
    pub metrics: Arc<api::metrics::Metrics>,
    /// State of the OCI front-end (upload sessions, token signer).
    pub oci: Arc<formats::oci::OciState>,
    /// The inter-node port.
    pub transport: Arc<QuicTransport>,
    /// Who this node is in the cluster.
    pub node: NodeInfo,
    /// The cluster CA and this node's certificate.
    pub identity: transfer::tls::ClusterIdentity,
    /// The time of day.
    pub clock: Arc<dyn Clock>,
    /// The time of day garbage collection counts chunk ages on (forward jumps absorbed).
    pub gc_clock: Arc<NeverAhead>,
    /// Upstream fetches of remote registries.
    pub proxy: Arc<proxy::Proxy>,
    /// Recent successful password verifications.
    pub passwords: Arc<auth::password::PasswordCache>,
    /// Failed password checks, per user name and source address.
    pub logins: Arc<auth::throttle::LoginThrottle>,
    /// Documents rendered from packages, kept until their package changes.
    pub documents: Arc<frontend::documents::Documents>,
    /// Documents front-ends render from many records, kept while the metadata is unchanged.
    pub rendered: Arc<frontend::rendered::Rendered>,
    /// What the Debian front-end keeps on this node (hosted indexes, files by hash).
    pub debian: Arc<formats::debian::DebianState>,
    /// What the RPM front-end keeps on this node (hosted metadata, signed repomd.xml).
    pub rpm: Arc<formats::rpm::RpmState>,
    /// The background scrub of this node's chunks.
    pub scrub: Arc<blob::Scrubber>,
    /// The cluster's keys: registry token signing, secrets sealed in the replicated state.
    pub keys: Arc<secrets::ClusterKeys>,
    /// What posts events to webhooks (while this node leads).
    pub webhooks: Arc<webhooks::Deliverer>,
    /// This node's search index over every registry.
    pub search: Arc<search::SearchIndex>,
    /// The downloads this node served and has not yet flushed.
    pub usage: Arc<usage::Usage>,
    /// The move of local chunks into the bucket, on a node started with a bucket over a data
    /// directory that still held local chunks.
    pub migration: Option<Arc<blob::Migration>>,
}

impl AppState {
    /// Milliseconds since the unix epoch, by the node's clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Metadata could not be opened.
    #[error(transparent)]
    Meta(#[from] meta::MetaError),
    /// The admin token could not be set up.
    #[error(transparent)]
    Bootstrap(#[from] auth::BootstrapError),
    /// The cluster could not be founded or joined.
    #[error(transparent)]
    Join(#[from] cluster::JoinError),
    /// The inter-node port could not be bound.
    #[error("inter-node port {addr}: {source}")]
    Quic {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The cache of a cache node could not be opened.
    #[error("cache: {0}")]
    Cache(#[from] blob::BlobError),
    /// The object store chunks are kept in could not be used.
    #[error(transparent)]
    Storage(#[from] blob::BucketError),
    /// The HTTPS certificate or key could not be used.
    #[error("HTTPS: {0}")]
    Tls(String),
    /// The search index could not be opened.
    #[error(transparent)]
    Search(#[from] search::SearchError),
    /// The CA bundle for upstreams could not be used.
    #[error("upstream_ca_file {path}: {reason}")]
    UpstreamCa {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP server failed.
    #[error("http server on {addr}: {source}")]
    Http {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A running node.
pub struct RunningNode {
    /// The address HTTP is served on (with the real port when 0 was asked for).
    pub http_addr: SocketAddr,
    /// The address the inter-node QUIC port is bound to.
    pub quic_addr: SocketAddr,
    /// Where the admin token is.
    pub admin_token_path: PathBuf,
    meta: Meta,
    transport: Arc<QuicTransport>,
    chunks: Arc<ChunkStore>,
    background: Vec<JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    usage: Arc<usage::Usage>,
}

/// How long a stopping node tries to flush its last download counts.
const SHUTDOWN_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

impl RunningNode {
    /// Resolves when the node's metadata store has stopped on an error it cannot go on after, with
    /// the reason: the node then serves nothing it could keep, and must be started again.
    pub async fn failed(&self) -> String {
        self.meta.stopped().await
    }

    /// Stops serving, waits for requests in flight, and closes the metadata store.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let _ = self.stop.send(true);
        let served = self.server.await;
        // The last counts: what was served up to now is not left to the next flush that never comes.
        match tokio::time::timeout(SHUTDOWN_FLUSH, self.usage.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "flushing download counts at shutdown"),
            Err(_) => tracing::warn!("flushing download counts at shutdown took too long"),
        }
        for task in &self.background {
            task.abort();
        }
        self.meta.shutdown().await;
        self.transport.close().await;
        if let Some(tiered) = self.chunks.tiered() {
            tiered.close().await;
        }
        match served {
            Ok(result) => result.map_err(|source| NodeError::Http {
                addr: self.http_addr.to_string(),
                source,
            }),
            Err(join) => Err(NodeError::Http {
                addr: self.http_addr.to_string(),
                source: std::io::Error::other(join),
            }),
        }
    }
}

/// Starts a node: opens its state, founds its cluster (or joins one with a token), creates the admin
/// token on first start, binds HTTP and writes the bound address to `<data_dir>/http.addr`.
pub async fn start(config: Config) -> Result<RunningNode, NodeError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let data_dir = config.data_dir.clone();
    let dir_error = |source| NodeError::DataDir {
        path: data_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&data_dir).map_err(dir_error)?;
    let (disk, layered): (Arc<dyn blob::ChunkDisk>, _) = match config.bucket() {
        Some(bucket) => {
            let disk = blob::BucketDisk::open(&bucket)?;
            tracing::info!(bucket = %bucket.bucket, prefix = %bucket.prefix, "chunks kept in object storage");
            let local = blob::LocalDisk::open(&data_dir).map_err(dir_error)?;
            match local.holds_chunks().map_err(dir_error)? {
                true => {
                    tracing::info!(
                        "local chunks stay readable until they are moved into the bucket"
                    );
                    let layered = Arc::new(blob::LayeredDisk::new(disk, local));
                    (layered.clone() as Arc<dyn blob::ChunkDisk>, Some(layered))
                }
                false => (Arc::new(disk) as Arc<dyn blob::ChunkDisk>, None),
            }
        }
        None => (
            Arc::new(blob::LocalDisk::open(&data_dir).map_err(dir_error)?)
                as Arc<dyn blob::ChunkDisk>,
            None,
        ),
    };
    let chunks = Arc::new(ChunkStore::on(disk, config.chunk_cache_bytes as usize));
    chunks.set_min_free(config.min_free_bytes);
    chunks.limit_writers(usize::try_from(config.max_concurrent_uploads).unwrap_or(usize::MAX));
    if config.role == NodeRole::Cache || chunks.in_object_store() {
        let tiered = TieredChunkCache::open(
            &data_dir.join("cache"),
            config.cache_memory_bytes as usize,
            config.cache_disk_bytes as usize,
        )
        .await?;
        chunks.set_tiered(tiered);
    }
    let tls = https_config(&config)?;
    let upstream = upstream_client(&config)?;
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(|source| NodeError::Http {
            addr: config.http.to_string(),
            source,
        })?;
    let http_addr = listener.local_addr().map_err(|source| NodeError::Http {
        addr: config.http.to_string(),
        source,
    })?;
    let redirect = match config.http_redirect {
        Some(_) if tls.is_none() => {
            return Err(NodeError::Tls(
                "http_redirect sends clients to HTTPS: set tls_cert and tls_key too".to_string(),
            ));
        }
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|source| NodeError::Http {
                    addr: address.to_string(),
                    source,
                })?,
        ),
        None => None,
    };
    let serving = serve_options(&config, tls);
    let quic_error = |source| NodeError::Quic {
        addr: config.quic.to_string(),
        source,
    };
    let transport = QuicTransport::bind(config.quic).map_err(quic_error)?;
    let quic_addr = transport.local_addr().map_err(quic_error)?;
    let credentials = cluster::credentials(
        &data_dir.join("cluster"),
        config.node_id,
        config.join.as_deref(),
        config.join_token.as_deref(),
        &transport,
    )
    .await?;
    let node = NodeInfo {
        site: config.site.clone(),
        role: config.role,
        http: config
            .advertise_http
            .clone()
            .unwrap_or_else(|| http_addr.to_string()),
        quic: config
            .advertise_quic
            .clone()
            .unwrap_or_else(|| quic_addr.to_string()),
    };
    let network: Arc<dyn PeerNetwork> = transport.clone();
    let meta = Meta::open(
        &data_dir,
        MetaOptions {
            node_id: config.node_id,
            node: node.clone(),
            bootstrap: credentials.founder,
            snapshot_log_bytes: config.snapshot_log_bytes,
            snapshot_state_percent: config.snapshot_state_percent,
            caches: meta::store::CacheSizes {
                state: config.meta_cache_bytes as usize,
                ..Default::default()
            },
            write_timeout: std::time::Duration::from_millis(config.write_timeout_ms),
            network: network.clone(),
        },
    )
    .await?;
    transport
        .serve(
            &credentials.identity,
            Arc::new(transfer::service::NodeService {
                meta: meta.clone(),
                chunks: chunks.clone(),
                identity: credentials.identity.clone(),
                clock: clock.clone(),
            }),
        )
        .map_err(|e| NodeError::Join(e.into()))?;
    chunks.set_remote(Arc::new(transfer::replication::PeerChunks::new(
        meta.clone(),
        network.clone(),
    )));
    meta.hold_chunks_with(Arc::new(Arc::downgrade(&chunks)));
    let mut background = Vec::new();
    if let Some(via) = config.join.clone() {
        background.push(tokio::spawn(cluster::register(
            meta.clone(),
            network.clone(),
            via,
            node.clone(),
        )));
    }
    if config.auto_promote {
        background.push(tokio::spawn(cluster::promote_learners(meta.clone())));
    }
    if config.role == NodeRole::Full {
        let replicator = transfer::replication::Replicator::new(
            meta.clone(),
            chunks.clone(),
            config.site.clone(),
        );
        background.push(tokio::spawn(replicator.run()));
    }
    let gc_clock = Arc::new(NeverAhead::new(clock.clone()));
    if config.gc_interval_seconds > 0 {
        background.push(tokio::spawn(policy::gc::run_periodically(
            meta.clone(),
            chunks.clone(),
            gc_clock.clone(),
            std::time::Duration::from_secs(config.gc_interval_seconds),
        )));
    }
    let keys = Arc::new(credentials.identity.cluster_keys());
    let uploads = formats::oci::Uploads::open(&data_dir.join("uploads"), config.node_id)
        .map_err(dir_error)?;
    let scrub = Arc::new(blob::Scrubber::new(
        chunks.clone(),
        clock.clone(),
        config.scrub_bytes_per_second,
        std::time::Duration::from_secs(config.scrub_interval_seconds.max(1)),
    ));
    background.push(tokio::spawn(scrub.clone().run()));
    let admin_token_path = auth::ensure_admin_token(&meta, &data_dir, clock.now_ms()).await?;
    tracing::info!(path = %admin_token_path.display(), "admin token (send it as 'Authorization: Bearer <token>')");

    let metrics = Arc::new(api::metrics::Metrics::new());
    background.push(tokio::spawn(count_leader_changes(
        meta.clone(),
        metrics.clone(),
    )));
    let migration = layered.map(|disk| {
        let target = config
            .storage
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        blob::Migration::open(disk, meta.clone(), target)
    });
    let deliverer = Arc::new(webhooks::Deliverer::new(
        meta.clone(),
        keys.clone(),
        upstream
            .without_redirects(webhooks::POST_TIMEOUT)
            .map_err(|error| NodeError::UpstreamCa {
                path: config
                    .upstream_ca_file
                    .as_deref()
                    .map(|path| path.display().to_string())
                    .unwrap_or_default(),
                reason: format!("the webhook client: {error}"),
            })?,
        clock.clone(),
        webhooks::RetryPolicy {
            base: std::time::Duration::from_millis(config.webhook_retry_base_ms.max(1)),
            max: std::time::Duration::from_millis(config.webhook_retry_max_ms.max(1)),
            disable_after: config.webhook_disable_after.max(1),
        },
    ));
    background.push(tokio::spawn(deliverer.clone().run()));
    let embeddings = match &config.search_embeddings {
        Some(path) => {
            Some(search::meaning::Embeddings::load(path).map_err(search::SearchError::from)?)
        }
        None => None,
    };
    let search = Arc::new(search::SearchIndex::open(
        &data_dir.join("search"),
        embeddings,
    )?);
    background.push(tokio::spawn(search.clone().run(meta.clone())));
    let usage = Arc::new(usage::Usage::new(
        meta.clone(),
        clock.clone(),
        metrics.clone(),
        usage::UsageSettings {
            enabled: config.count_downloads,
            flush_every: std::time::Duration::from_millis(config.usage_flush_ms.max(10)),
            keep_days: config.usage_keep_days.max(1),
            node_id: config.node_id,
            site: config.site.clone(),
        },
    ));
    background.push(tokio::spawn(usage.clone().run()));
    let state = AppState {
        meta: meta.clone(),
        chunks: chunks.clone(),
        config: Arc::new(config),
        metrics,
        oci: Arc::new(formats::oci::OciState::new(*keys.token_key(), uploads)),
        transport: transport.clone(),
        node,
        identity: credentials.identity,
        clock,
        gc_clock,
        proxy: Arc::new(proxy::Proxy::new(upstream)),
        passwords: Arc::new(auth::password::PasswordCache::default()),
        logins: Arc::default(),
        documents: Arc::new(frontend::documents::Documents::default()),
        rendered: Arc::default(),
        debian: Arc::default(),
        rpm: Arc::default(),
        scrub,
        migration,
        keys,
        webhooks: deliverer,
        search,
        usage: usage.clone(),
    };
    if let Some(redirect) = &redirect {
        let address = redirect.local_addr().map_err(|source| NodeError::Http {
            addr: "http_redirect".to_string(),
            source,
        })?;
        std::fs::write(data_dir.join("http-redirect.addr"), address.to_string())
            .map_err(dir_error)?;
        tracing::info!(%address, "redirecting plain HTTP to HTTPS");
    }
    let app = api::router(state);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheme = if serving.tls.is_some() {
        "HTTPS"
    } else {
        "HTTP"
    };
    let server = tokio::spawn(serve_http(listener, redirect, app, serving, stopped));
    std::fs::write(data_dir.join("http.addr"), http_addr.to_string()).map_err(dir_error)?;
    std::fs::write(data_dir.join("quic.addr"), quic_addr.to_string()).map_err(dir_error)?;
    tracing::info!(%http_addr, %quic_addr, data_dir = %data_dir.display(), scheme, "arca node serving");
    Ok(RunningNode {
        http_addr,
        quic_addr,
        admin_token_path,
        meta,
        transport,
        chunks,
        background,
        stop,
        server,
        usage,
    })
}

/// How the HTTP port accepts and bounds connections, as configured.
fn serve_options(config: &Config, tls: Option<rustls::ServerConfig>) -> http_server::ServeOptions {
    http_server::ServeOptions {
        tls: tls.map(Arc::new),
        header_read_timeout: std::time::Duration::from_millis(config.header_read_timeout_ms),
        body_idle_timeout: std::time::Duration::from_millis(config.body_idle_timeout_ms),
        max_connections_per_source: usize::try_from(config.max_connections_per_source)
            .unwrap_or(usize::MAX),
        trusted_proxies: config.trusted_proxies.iter().map(|proxy| proxy.0).collect(),
    }
}

/// The node's HTTP address while the node is down and starting itself again: every request is
/// answered 503 with `Retry-After`, `/healthz` with `"status":"down"` and the reason.
pub struct Unavailable {
    stop: tokio::sync::watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Unavailable {
    /// Answers on `config.http` (over HTTPS when configured) until stopped.
    pub async fn serve(config: &Config, reason: String) -> Result<Unavailable, NodeError> {
        let listener = tokio::net::TcpListener::bind(config.http)
            .await
            .map_err(|source| NodeError::Http {
                addr: config.http.to_string(),
                source,
            })?;
        let options = serve_options(config, https_config(config)?);
        let body = serde_json::json!({ "status": "down", "reason": reason }).to_string();
        let answer = move || {
            let body = body.clone();
            async move {
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    [
                        (axum::http::header::CONTENT_TYPE, "application/json"),
                        (axum::http::header::RETRY_AFTER, "5"),
                    ],
                    body,
                )
            }
        };
        let app = axum::Router::new().fallback(answer);
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(http_server::serve(listener, app, options, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        Ok(Unavailable { stop, server })
    }

    /// Stops answering and frees the address.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Ok(Err(error)) = self.server.await {
            tracing::warn!(%error, "the stand-in HTTP server failed");
        }
    }
}

/// Counts every change of leader this node sees.
async fn count_leader_changes(meta: Meta, metrics: Arc<api::metrics::Metrics>) {
    let mut changes = meta.watch();
    let mut leader = changes.borrow().current_leader;
    while changes.changed().await.is_ok() {
        let now = changes.borrow().current_leader;
        if now != leader {
            leader = now;
            metrics.raft_leader_changes.inc();
        }
    }
}

/// The outbound client of remote registries, trusting `upstream_ca_file` besides the system's store.
fn upstream_client(config: &Config) -> Result<proxy::UpstreamClient, NodeError> {
    let ca_error = |path: &std::path::Path, reason: String| NodeError::UpstreamCa {
        path: path.display().to_string(),
        reason,
    };
    let extra = match &config.upstream_ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| ca_error(path, e.to_string()))?),
        None => None,
    };
    proxy::UpstreamClient::new(extra.as_deref()).map_err(|error| {
        let path = config
            .upstream_ca_file
            .as_deref()
            .unwrap_or(std::path::Path::new(""));
        ca_error(path, error.to_string())
    })
}

/// The TLS configuration of the HTTP port when `tls_cert` and `tls_key` are set.
fn https_config(config: &Config) -> Result<Option<rustls::ServerConfig>, NodeError> {
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => return Ok(None),
        _ => {
            return Err(NodeError::Tls(
                "tls_cert and tls_key go together: set both, or neither".to_string(),
            ));
        }
    };
    let certificate =
        https::ReloadingCertificate::open(cert, key).map_err(|e| NodeError::Tls(e.to_string()))?;
    https::server_config(Arc::new(certificate))
        .map(Some)
        .map_err(|e| NodeError::Tls(e.to_string()))
}

/// Serves `app` on `listener` (and the redirect to it on `redirect`) until `stopped` turns true.
async fn serve_http(
    listener: tokio::net::TcpListener,
    redirect: Option<tokio::net::TcpListener>,
    app: axum::Router,
    options: http_server::ServeOptions,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let https_port = listener.local_addr()?.port();
    let redirecting = async {
        match redirect {
            Some(listener) => {
                let plain = http_server::ServeOptions {
                    tls: None,
                    ..options.clone()
                };
                let router = http_server::redirect_router(https_port);
                http_server::serve(listener, router, plain, until_stopped(stopped.clone())).await
            }
            None => Ok(()),
        }
    };
    let serving = http_server::serve(
        listener,
        app,
        options.clone(),
        until_stopped(stopped.clone()),
    );
    let (served, redirected) = tokio::join!(serving, redirecting);
    served.and(redirected)
}
