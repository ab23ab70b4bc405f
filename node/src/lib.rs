//! arca-node: the Arca server.
//!
//! [`start`] opens a node's state under its data directory (metadata through Raft in redb, chunks on
//! disk), makes sure the admin token exists, and serves every HTTP surface: the management API, the
//! package-manager front-ends, `/healthz` and `/metrics`.

pub mod api;
pub mod auth;
pub mod blob;
pub mod config;
pub mod formats;
pub mod meta;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::serve::ListenerExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::blob::ChunkStore;
use crate::config::Config;
use crate::meta::{Meta, MetaOptions};

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
    /// Node-local state of the OCI front-end (upload sessions, token signing key).
    pub oci: Arc<formats::oci::OciState>,
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
    /// Where the admin token is.
    pub admin_token_path: PathBuf,
    meta: Meta,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

impl RunningNode {
    /// Stops serving, waits for requests in flight, and closes the metadata store.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let _ = self.stop.send(());
        let served = self.server.await;
        self.meta.shutdown().await;
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

/// Milliseconds since the unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Starts a node: opens its state, creates the admin token on first start, binds HTTP and writes the
/// bound address to `<data_dir>/http.addr`.
pub async fn start(config: Config) -> Result<RunningNode, NodeError> {
    let data_dir = config.data_dir.clone();
    let dir_error = |source| NodeError::DataDir {
        path: data_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&data_dir).map_err(dir_error)?;
    let chunks = Arc::new(
        ChunkStore::open(&data_dir, config.chunk_cache_bytes as usize).map_err(dir_error)?,
    );
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
    let meta = Meta::open(
        &data_dir.join("meta.redb"),
        MetaOptions {
            node_id: config.node_id,
            advertise_addr: http_addr.to_string(),
            snapshot_every: config.snapshot_every,
        },
    )
    .await?;
    let admin_token_path = auth::ensure_admin_token(&meta, &data_dir, now_ms()).await?;
    tracing::info!(path = %admin_token_path.display(), "admin token (send it as 'Authorization: Bearer <token>')");

    let state = AppState {
        meta: meta.clone(),
        chunks,
        config: Arc::new(config),
        metrics: Arc::new(api::metrics::Metrics::new()),
        oci: Arc::new(formats::oci::OciState::default()),
    };
    let app = api::router(state);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        // Without TCP_NODELAY, Nagle's algorithm meeting delayed ACKs adds ~40 ms to responses whose
        // last segment is small.
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(%error, "setting TCP_NODELAY");
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    std::fs::write(data_dir.join("http.addr"), http_addr.to_string()).map_err(dir_error)?;
    tracing::info!(%http_addr, data_dir = %data_dir.display(), "arca node serving HTTP");
    Ok(RunningNode {
        http_addr,
        admin_token_path,
        meta,
        stop,
        server,
    })
}
