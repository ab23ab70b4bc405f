//! The node's one [`Config`]: defaults that make a single node just run, overridden by a TOML file,
//! then by `ARCA_*` environment variables, then by command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use arca_protocol::NodeRole;
use serde::Deserialize;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a config.
    #[error("parsing config file {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: toml::de::Error,
    },
    /// An environment variable has a value that does not parse.
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        /// Variable name.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// Everything a node needs to know to run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds (`127.0.0.1:0` picks a free port).
    pub http: SocketAddr,
    /// Directory holding all state: metadata database, chunks, admin token.
    pub data_dir: PathBuf,
    /// This node's Raft id.
    pub node_id: u64,
    /// Largest accepted upload body, in bytes.
    pub max_upload_bytes: u64,
    /// Build a metadata snapshot (and purge the Raft log) once the log has grown by this many
    /// bytes, or by `snapshot_state_percent` of the metadata's size when that is more.
    pub snapshot_log_bytes: u64,
    /// The share of the metadata's size, in percent, the log grows by between snapshots (0: only
    /// `snapshot_log_bytes` counts).
    pub snapshot_state_percent: u64,
    /// Memory the state database keeps its hot pages in, in bytes.
    pub meta_cache_bytes: u64,
    /// Bytes of verified chunks kept in memory.
    pub chunk_cache_bytes: u64,
    /// The site (failure and latency domain) this node is in.
    pub site: String,
    /// Address the inter-node QUIC port binds (`127.0.0.1:0` picks a free port; when not set, the
    /// port after the HTTP port, on its address).
    pub quic: SocketAddr,
    /// `host:port` other nodes and clients use for this node's HTTP (default: the bound address).
    pub advertise_http: Option<String>,
    /// `host:port` other nodes use for this node's QUIC port (default: the bound address).
    pub advertise_quic: Option<String>,
    /// QUIC address of a member to join through (only needed on a node's first start).
    pub join: Option<String>,
    /// The join token `arca cluster join-token` printed.
    pub join_token: Option<String>,
    /// `full` (holds replicas, may vote) or `cache` (keeps what it serves in a bounded cache).
    pub role: NodeRole,
    /// Memory tier of a cache node, in bytes.
    pub cache_memory_bytes: u64,
    /// Disk tier of a cache node, in bytes.
    pub cache_disk_bytes: u64,
    /// How long a write may wait for a quorum before it is refused with 503, in milliseconds.
    pub write_timeout_ms: u64,
    /// The leader promotes caught-up learners to voters (up to five voters, spread over sites).
    pub auto_promote: bool,
    /// Collect unreferenced chunks (with the default grace period of an hour) this often, in
    /// seconds; 0 runs garbage collection only when asked (`POST /api/v1/gc`).
    pub gc_interval_seconds: u64,
    /// The wait before a webhook's first retry after a failed delivery, in milliseconds; each
    /// failure in a row doubles it (with jitter), up to `webhook_retry_max_ms`.
    pub webhook_retry_base_ms: u64,
    /// The longest wait between retries of a webhook, in milliseconds.
    pub webhook_retry_max_ms: u64,
    /// A webhook is disabled after this many failed deliveries in a row.
    pub webhook_disable_after: u32,
    /// Whether the node counts the downloads it serves for usage insights.
    pub count_downloads: bool,
    /// How often the node flushes its download counts into the replicated state, in milliseconds:
    /// a crash loses at most this long's counts.
    pub usage_flush_ms: u64,
    /// How many days of daily download figures the cluster keeps (totals are kept for good).
    pub usage_keep_days: u32,
    /// A word-embedding model (word2vec's text format) search widens queries with by meaning;
    /// without one, search is lexical.
    pub search_embeddings: Option<PathBuf>,
    /// PEM certificate chain to serve HTTPS with on the HTTP port (with `tls_key`; read again when
    /// the files change).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM bundle of CA certificates remote registries' upstreams are trusted by, besides the
    /// system's certificate store (a private CA, or a TLS-inspecting proxy's).
    pub upstream_ca_file: Option<PathBuf>,
    /// A plain-HTTP address that answers every request with a redirect to the same URL over HTTPS
    /// (needs `tls_cert`).
    pub http_redirect: Option<SocketAddr>,
    /// Load balancers and reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed; from anyone else they are ignored.
    pub trusted_proxies: Vec<TrustedProxy>,
    /// The URL clients reach this node by (`https://registry.example.com`), for the absolute URLs
    /// answers carry (npm tarballs, the OCI token realm); without it they follow the request's
    /// `Host` and scheme.
    pub public_url: Option<PublicUrl>,
    /// The time a client has to send a request's head (and an idle connection is kept), in
    /// milliseconds.
    pub header_read_timeout_ms: u64,
    /// Connections one source address may hold at once (trusted proxies are exempt; 0: no limit).
    pub max_connections_per_source: u64,
    /// The longest a request body may send nothing before the request is refused, in
    /// milliseconds.
    pub body_idle_timeout_ms: u64,
    /// Uploads (and upstream fetches) that buffer bytes at once; more wait their turn. Each holds
    /// up to 48 MiB (the bytes being cut, and the chunk writes in flight).
    pub max_concurrent_uploads: u64,
    /// Free space, in bytes, chunk writes never take the data directory's disk below (uploads
    /// are answered 507 instead), so the metadata always has room.
    pub min_free_bytes: u64,
    /// The rate the background scrub reads chunks at, in bytes per second (0: no passes but those
    /// asked for with `POST /api/v1/cluster/scrub`).
    pub scrub_bytes_per_second: u64,
    /// How often a scrub pass starts, in seconds.
    pub scrub_interval_seconds: u64,
    /// Where chunks are kept: `s3://<bucket>/<prefix>`, an S3-compatible bucket the nodes of a
    /// site share (credentials from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`); not set,
    /// the local chunk directory under `data_dir`.
    pub storage: Option<StorageUrl>,
    /// The object store's endpoint (`https://s3.example.com`); not set, AWS by region.
    pub storage_endpoint: Option<String>,
    /// The region requests to the object store are signed for.
    pub storage_region: Option<String>,
    /// PEM CA certificates the object store is trusted by, besides the system's store.
    pub storage_ca_file: Option<PathBuf>,
    /// Address the bucket in the host name (`<bucket>.<endpoint>`) instead of the path.
    pub storage_virtual_hosted: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 7070)),
            data_dir: PathBuf::from("./arca-data"),
            node_id: 1,
            max_upload_bytes: 64 * 1024 * 1024 * 1024,
            snapshot_log_bytes: 64 * 1024 * 1024,
            snapshot_state_percent: 50,
            meta_cache_bytes: 64 * 1024 * 1024,
            chunk_cache_bytes: 256 * 1024 * 1024,
            site: "local".to_string(),
            quic: SocketAddr::from(([127, 0, 0, 1], 7071)),
            advertise_http: None,
            advertise_quic: None,
            join: None,
            join_token: None,
            role: NodeRole::Full,
            cache_memory_bytes: 256 * 1024 * 1024,
            cache_disk_bytes: 4 * 1024 * 1024 * 1024,
            write_timeout_ms: 10_000,
            auto_promote: true,
            gc_interval_seconds: 0,
            webhook_retry_base_ms: 1_000,
            webhook_retry_max_ms: 10 * 60 * 1_000,
            webhook_disable_after: 50,
            count_downloads: true,
            usage_flush_ms: 10_000,
            usage_keep_days: 400,
            search_embeddings: None,
            tls_cert: None,
            tls_key: None,
            upstream_ca_file: None,
            http_redirect: None,
            trusted_proxies: Vec::new(),
            public_url: None,
            header_read_timeout_ms: 30_000,
            max_connections_per_source: 256,
            body_idle_timeout_ms: 60_000,
            max_concurrent_uploads: 64,
            min_free_bytes: 1024 * 1024 * 1024,
            scrub_bytes_per_second: 16 * 1024 * 1024,
            scrub_interval_seconds: 7 * 24 * 3600,
            storage: None,
            storage_endpoint: None,
            storage_region: None,
            storage_ca_file: None,
            storage_virtual_hosted: false,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Address to serve HTTP on [default: 127.0.0.1:7070; env ARCA_HTTP].
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Directory for all state [default: ./arca-data; env ARCA_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// This node's id in the cluster [default: 1; env ARCA_NODE_ID].
    #[arg(long, value_name = "N")]
    pub node_id: Option<u64>,
    /// The site this node is in [default: local; env ARCA_SITE].
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// Address of the inter-node QUIC port [default: the HTTP port + 1 on its address; env ARCA_QUIC].
    #[arg(long, value_name = "ADDR")]
    pub quic: Option<SocketAddr>,
    /// HTTP address others should use [default: the bound one; env ARCA_ADVERTISE_HTTP].
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise_http: Option<String>,
    /// QUIC address others should use [default: the bound one; env ARCA_ADVERTISE_QUIC].
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise_quic: Option<String>,
    /// Join the cluster through the member at this QUIC address.
    #[arg(long, value_name = "ADDR")]
    pub join: Option<String>,
    /// Token from `arca cluster join-token` [env ARCA_JOIN_TOKEN].
    #[arg(long, value_name = "TOKEN")]
    pub join_token: Option<String>,
    /// full or cache [default: full; env ARCA_ROLE].
    #[arg(long, value_name = "ROLE")]
    pub role: Option<NodeRole>,
    /// Serve HTTPS with this PEM certificate chain [env ARCA_TLS_CERT].
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert [env ARCA_TLS_KEY].
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also trust these PEM CA certificates for upstreams [env ARCA_UPSTREAM_CA_FILE].
    #[arg(long, value_name = "FILE")]
    pub upstream_ca_file: Option<PathBuf>,
    /// Plain-HTTP address that redirects every request to HTTPS [env ARCA_HTTP_REDIRECT].
    #[arg(long, value_name = "ADDR")]
    pub http_redirect: Option<SocketAddr>,
    /// A load balancer or proxy (address or CIDR) whose X-Forwarded-* headers are believed
    /// (repeatable) [env ARCA_TRUSTED_PROXIES, comma-separated].
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<TrustedProxy>,
    /// The URL clients reach this node by, for absolute URLs in answers [env ARCA_PUBLIC_URL].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<PublicUrl>,
    /// Keep chunks in this S3-compatible bucket, shared by the site's nodes [default: the local
    /// chunk directory; env ARCA_STORAGE].
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub storage: Option<StorageUrl>,
    /// The object store's endpoint URL [env ARCA_STORAGE_ENDPOINT].
    #[arg(long, value_name = "URL")]
    pub storage_endpoint: Option<String>,
    /// The region object-store requests are signed for [env ARCA_STORAGE_REGION].
    #[arg(long, value_name = "REGION")]
    pub storage_region: Option<String>,
    /// Also trust these PEM CA certificates for the object store [env ARCA_STORAGE_CA_FILE].
    #[arg(long, value_name = "FILE")]
    pub storage_ca_file: Option<PathBuf>,
}

impl Config {
    /// Builds the configuration: defaults, then `file`, then the environment (`ARCA_HTTP`,
    /// `ARCA_DATA_DIR`, `ARCA_NODE_ID`, `ARCA_MAX_UPLOAD_BYTES`, `ARCA_SNAPSHOT_LOG_BYTES`,
    /// `ARCA_SNAPSHOT_STATE_PERCENT`, `ARCA_META_CACHE_BYTES`,
    /// `ARCA_CHUNK_CACHE_BYTES`, `ARCA_SITE`, `ARCA_QUIC`, `ARCA_ROLE`, `ARCA_CACHE_MEMORY_BYTES`,
    /// `ARCA_CACHE_DISK_BYTES`, `ARCA_WRITE_TIMEOUT_MS`, `ARCA_AUTO_PROMOTE`, `ARCA_ADVERTISE_HTTP`,
    /// `ARCA_ADVERTISE_QUIC`, `ARCA_JOIN`, `ARCA_JOIN_TOKEN`, `ARCA_GC_INTERVAL_SECONDS`,
    /// `ARCA_TLS_CERT`, `ARCA_TLS_KEY`, `ARCA_UPSTREAM_CA_FILE`, `ARCA_HTTP_REDIRECT`,
    /// `ARCA_TRUSTED_PROXIES` (comma-separated), `ARCA_PUBLIC_URL`, `ARCA_HEADER_READ_TIMEOUT_MS`,
    /// `ARCA_MAX_CONNECTIONS_PER_SOURCE`, `ARCA_BODY_IDLE_TIMEOUT_MS`,
    /// `ARCA_MAX_CONCURRENT_UPLOADS`, `ARCA_MIN_FREE_BYTES`,
    /// `ARCA_SCRUB_BYTES_PER_SECOND`,
    /// `ARCA_SCRUB_INTERVAL_SECONDS`, `ARCA_STORAGE`, `ARCA_STORAGE_ENDPOINT`,
    /// `ARCA_STORAGE_REGION`, `ARCA_STORAGE_CA_FILE`, `ARCA_STORAGE_VIRTUAL_HOSTED`), then `flags`.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: Overrides,
    ) -> Result<Config, ConfigError> {
        let mut quic_given = false;
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                let parse_error = |source| ConfigError::Parse {
                    path: path.display().to_string(),
                    source,
                };
                let table: toml::Table = toml::from_str(&text).map_err(parse_error)?;
                quic_given = table.contains_key("quic");
                toml::from_str(&text).map_err(parse_error)?
            }
            None => Config::default(),
        };
        quic_given |= env("ARCA_QUIC").is_some() || flags.quic.is_some();
        env_override(&env, "ARCA_HTTP", &mut config.http)?;
        env_override(&env, "ARCA_DATA_DIR", &mut config.data_dir)?;
        env_override(&env, "ARCA_NODE_ID", &mut config.node_id)?;
        env_override(&env, "ARCA_MAX_UPLOAD_BYTES", &mut config.max_upload_bytes)?;
        env_override(
            &env,
            "ARCA_SNAPSHOT_LOG_BYTES",
            &mut config.snapshot_log_bytes,
        )?;
        env_override(
            &env,
            "ARCA_SNAPSHOT_STATE_PERCENT",
            &mut config.snapshot_state_percent,
        )?;
        env_override(&env, "ARCA_META_CACHE_BYTES", &mut config.meta_cache_bytes)?;
        env_override(
            &env,
            "ARCA_CHUNK_CACHE_BYTES",
            &mut config.chunk_cache_bytes,
        )?;
        env_override(&env, "ARCA_SITE", &mut config.site)?;
        env_override(&env, "ARCA_QUIC", &mut config.quic)?;
        env_override(&env, "ARCA_ROLE", &mut config.role)?;
        env_override(
            &env,
            "ARCA_CACHE_MEMORY_BYTES",
            &mut config.cache_memory_bytes,
        )?;
        env_override(&env, "ARCA_CACHE_DISK_BYTES", &mut config.cache_disk_bytes)?;
        env_override(&env, "ARCA_WRITE_TIMEOUT_MS", &mut config.write_timeout_ms)?;
        env_override(&env, "ARCA_AUTO_PROMOTE", &mut config.auto_promote)?;
        env_override(
            &env,
            "ARCA_GC_INTERVAL_SECONDS",
            &mut config.gc_interval_seconds,
        )?;
        env_override(
            &env,
            "ARCA_WEBHOOK_RETRY_BASE_MS",
            &mut config.webhook_retry_base_ms,
        )?;
        env_override(
            &env,
            "ARCA_WEBHOOK_RETRY_MAX_MS",
            &mut config.webhook_retry_max_ms,
        )?;
        env_override(
            &env,
            "ARCA_WEBHOOK_DISABLE_AFTER",
            &mut config.webhook_disable_after,
        )?;
        env_override(&env, "ARCA_COUNT_DOWNLOADS", &mut config.count_downloads)?;
        env_override(&env, "ARCA_USAGE_FLUSH_MS", &mut config.usage_flush_ms)?;
        env_override(&env, "ARCA_USAGE_KEEP_DAYS", &mut config.usage_keep_days)?;
        env_override(
            &env,
            "ARCA_HEADER_READ_TIMEOUT_MS",
            &mut config.header_read_timeout_ms,
        )?;
        env_override(
            &env,
            "ARCA_MAX_CONNECTIONS_PER_SOURCE",
            &mut config.max_connections_per_source,
        )?;
        env_override(&env, "ARCA_MIN_FREE_BYTES", &mut config.min_free_bytes)?;
        env_override(
            &env,
            "ARCA_BODY_IDLE_TIMEOUT_MS",
            &mut config.body_idle_timeout_ms,
        )?;
        env_override(
            &env,
            "ARCA_MAX_CONCURRENT_UPLOADS",
            &mut config.max_concurrent_uploads,
        )?;
        env_override(
            &env,
            "ARCA_SCRUB_BYTES_PER_SECOND",
            &mut config.scrub_bytes_per_second,
        )?;
        env_override(
            &env,
            "ARCA_SCRUB_INTERVAL_SECONDS",
            &mut config.scrub_interval_seconds,
        )?;
        env_override(
            &env,
            "ARCA_STORAGE_VIRTUAL_HOSTED",
            &mut config.storage_virtual_hosted,
        )?;
        if let Some(value) = env("ARCA_STORAGE") {
            config.storage =
                Some(
                    value
                        .parse()
                        .map_err(|e: StorageUrlError| ConfigError::Env {
                            name: "ARCA_STORAGE",
                            value: value.clone(),
                            reason: e.to_string(),
                        })?,
                );
        }
        if env("ARCA_PUBLIC_URL").is_some() {
            let mut url = PublicUrl(String::new());
            env_override(&env, "ARCA_PUBLIC_URL", &mut url)?;
            config.public_url = Some(url);
        }
        if env("ARCA_HTTP_REDIRECT").is_some() {
            let mut address = config.http;
            env_override(&env, "ARCA_HTTP_REDIRECT", &mut address)?;
            config.http_redirect = Some(address);
        }
        if let Some(value) = env("ARCA_TRUSTED_PROXIES") {
            config.trusted_proxies = value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|reason: ProxyAddressError| ConfigError::Env {
                    name: "ARCA_TRUSTED_PROXIES",
                    value: value.clone(),
                    reason: reason.to_string(),
                })?;
        }
        for (name, target) in [
            ("ARCA_ADVERTISE_HTTP", &mut config.advertise_http),
            ("ARCA_ADVERTISE_QUIC", &mut config.advertise_quic),
            ("ARCA_JOIN", &mut config.join),
            ("ARCA_JOIN_TOKEN", &mut config.join_token),
            ("ARCA_STORAGE_ENDPOINT", &mut config.storage_endpoint),
            ("ARCA_STORAGE_REGION", &mut config.storage_region),
        ] {
            if let Some(value) = env(name) {
                *target = Some(value);
            }
        }
        for (name, target) in [
            ("ARCA_TLS_CERT", &mut config.tls_cert),
            ("ARCA_TLS_KEY", &mut config.tls_key),
            ("ARCA_UPSTREAM_CA_FILE", &mut config.upstream_ca_file),
            ("ARCA_STORAGE_CA_FILE", &mut config.storage_ca_file),
            ("ARCA_SEARCH_EMBEDDINGS", &mut config.search_embeddings),
        ] {
            if let Some(value) = env(name) {
                *target = Some(PathBuf::from(value));
            }
        }
        let Overrides {
            http,
            data_dir,
            node_id,
            site,
            quic,
            advertise_http,
            advertise_quic,
            join,
            join_token,
            role,
            tls_cert,
            tls_key,
            upstream_ca_file,
            http_redirect,
            trusted_proxies,
            public_url,
            storage,
            storage_endpoint,
            storage_region,
            storage_ca_file,
        } = flags;
        if storage.is_some() {
            config.storage = storage;
        }
        if public_url.is_some() {
            config.public_url = public_url;
        }
        if http_redirect.is_some() {
            config.http_redirect = http_redirect;
        }
        if !trusted_proxies.is_empty() {
            config.trusted_proxies = trusted_proxies;
        }
        set_if_some(&mut config.http, http);
        set_if_some(&mut config.data_dir, data_dir);
        set_if_some(&mut config.node_id, node_id);
        set_if_some(&mut config.site, site);
        set_if_some(&mut config.quic, quic);
        set_if_some(&mut config.role, role);
        for (target, value) in [
            (&mut config.advertise_http, advertise_http),
            (&mut config.advertise_quic, advertise_quic),
            (&mut config.join, join),
            (&mut config.join_token, join_token),
            (&mut config.storage_endpoint, storage_endpoint),
            (&mut config.storage_region, storage_region),
        ] {
            if value.is_some() {
                *target = value;
            }
        }
        if !quic_given {
            config.quic = quic_beside(config.http);
        }
        for (target, value) in [
            (&mut config.tls_cert, tls_cert),
            (&mut config.tls_key, tls_key),
            (&mut config.upstream_ca_file, upstream_ca_file),
            (&mut config.storage_ca_file, storage_ca_file),
        ] {
            if value.is_some() {
                *target = value;
            }
        }
        Ok(config)
    }
}

/// A load balancer or reverse proxy whose `X-Forwarded-*` headers are believed: an address
/// (`10.0.0.5`) or a CIDR range (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy(pub ipnet::IpNet);

/// A trusted proxy that is neither an address nor a CIDR range.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is neither an IP address nor a CIDR range (10.0.0.0/8)")]
pub struct ProxyAddressError(String);

impl std::str::FromStr for TrustedProxy {
    type Err = ProxyAddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(TrustedProxy)
            .map_err(|_| ProxyAddressError(text.to_string()))
    }
}

impl<'de> Deserialize<'de> for TrustedProxy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The URL clients reach a node by: `http` or `https`, a host, perhaps a port and a path prefix (a
/// proxy in front strips it), no query; kept without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// The URL, without a trailing `/`: append absolute paths to it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A public URL that is not an http(s) URL of a host.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an http:// or https:// URL of a host, without query or fragment")]
pub struct PublicUrlError(String);

impl std::str::FromStr for PublicUrl {
    type Err = PublicUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || PublicUrlError(text.to_string());
        let url = reqwest::Url::parse(text).map_err(|_| invalid())?;
        let usable = matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some()
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !usable {
            return Err(invalid());
        }
        Ok(PublicUrl(url.as_str().trim_end_matches('/').to_string()))
    }
}

impl<'de> Deserialize<'de> for PublicUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An object store location: `s3://<bucket>/<prefix>` (the prefix may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageUrl {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without leading or trailing `/`.
    pub prefix: String,
}

impl std::fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// A storage location that is not `s3://<bucket>/<prefix>`.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} is not an object store location: s3://<bucket>/<prefix> (leave it out for the local chunk directory)"
)]
pub struct StorageUrlError(String);

impl std::str::FromStr for StorageUrl {
    type Err = StorageUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || StorageUrlError(text.to_string());
        let rest = text.strip_prefix("s3://").ok_or_else(invalid)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        let prefix = prefix.trim_matches('/');
        let prefix_ok = prefix
            .split('/')
            .all(|part| part != "." && part != ".." && (prefix.is_empty() || !part.is_empty()));
        if !bucket_ok || !prefix_ok {
            return Err(invalid());
        }
        Ok(StorageUrl {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl<'de> Deserialize<'de> for StorageUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Config {
    /// The bucket chunks are kept in, when `storage` names one (credentials from the
    /// environment).
    pub fn bucket(&self) -> Option<crate::blob::BucketSettings> {
        let storage = self.storage.as_ref()?;
        Some(crate::blob::BucketSettings {
            bucket: storage.bucket.clone(),
            prefix: storage.prefix.clone(),
            endpoint: self.storage_endpoint.clone(),
            region: self.storage_region.clone(),
            virtual_hosted: self.storage_virtual_hosted,
            ca_file: self.storage_ca_file.clone(),
        })
    }
}

/// The inter-node port a node uses when none is configured: the one after its HTTP port, on the
/// same address (7071 beside the default 7070), so nodes given only distinct HTTP ports on one
/// machine do not collide; a free one when the HTTP port is picked freely too.
fn quic_beside(http: SocketAddr) -> SocketAddr {
    let port = match http.port() {
        0 | u16::MAX => 0,
        port => port + 1,
    };
    SocketAddr::new(http.ip(), port)
}

fn set_if_some<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

fn env_override<T>(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    target: &mut T,
) -> Result<(), ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    if let Some(value) = env(name) {
        *target = value.parse().map_err(|e: T::Err| ConfigError::Env {
            name,
            value: value.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_file_env_flags_in_that_order() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("arca.toml");
        std::fs::write(
            &file,
            "http = \"127.0.0.1:8080\"\ndata_dir = \"/srv/arca\"\nnode_id = 3\n",
        )
        .expect("write");
        let defaults = Config::load(None, |_| None, Overrides::default()).expect("defaults");
        assert_eq!(defaults, Config::default());
        assert_eq!(defaults.http, SocketAddr::from(([127, 0, 0, 1], 7070)));
        assert_eq!(defaults.data_dir, PathBuf::from("./arca-data"));
        let from_file = Config::load(Some(&file), |_| None, Overrides::default()).expect("file");
        assert_eq!(from_file.http.port(), 8080);
        assert_eq!(from_file.node_id, 3);
        let env = |name: &str| (name == "ARCA_HTTP").then(|| "127.0.0.1:9090".to_string());
        let from_env = Config::load(Some(&file), env, Overrides::default()).expect("env");
        assert_eq!(from_env.http.port(), 9090);
        assert_eq!(from_env.data_dir, PathBuf::from("/srv/arca"));
        let flags = Overrides {
            http: Some("127.0.0.1:1".parse().expect("addr")),
            ..Overrides::default()
        };
        assert_eq!(
            Config::load(Some(&file), env, flags)
                .expect("flags")
                .http
                .port(),
            1
        );
    }

    #[test]
    fn the_inter_node_port_follows_the_http_port_unless_set() {
        let http = |addr: &str| Overrides {
            http: Some(addr.parse().expect("addr")),
            ..Overrides::default()
        };
        let load = |flags| Config::load(None, |_| None, flags).expect("config");
        assert_eq!(load(http("127.0.0.1:8080")).quic.port(), 8081);
        assert_eq!(load(http("127.0.0.1:0")).quic.port(), 0);
        assert_eq!(load(Overrides::default()).quic.port(), 7071);
        let both = Overrides {
            quic: Some("127.0.0.1:9999".parse().expect("addr")),
            ..http("127.0.0.1:8080")
        };
        assert_eq!(load(both).quic.port(), 9999);
        let env = |name: &str| (name == "ARCA_QUIC").then(|| "127.0.0.1:7777".to_string());
        let from_env = Config::load(None, env, http("127.0.0.1:8080")).expect("config");
        assert_eq!(from_env.quic.port(), 7777);
    }

    #[test]
    fn bad_values_are_reported() {
        let env = |name: &str| (name == "ARCA_NODE_ID").then(|| "one".to_string());
        assert!(matches!(
            Config::load(None, env, Overrides::default()),
            Err(ConfigError::Env {
                name: "ARCA_NODE_ID",
                ..
            })
        ));
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("arca.toml");
        std::fs::write(&file, "htp = 1").expect("write");
        assert!(matches!(
            Config::load(Some(&file), |_| None, Overrides::default()),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn public_urls_are_http_urls_of_a_host() {
        let parse = |text: &str| {
            text.parse::<PublicUrl>()
                .map(|url| url.as_str().to_string())
        };
        assert_eq!(
            parse("https://registry.example.com/").expect("valid"),
            "https://registry.example.com"
        );
        assert_eq!(
            parse("http://10.0.0.5:8080/arca/").expect("valid"),
            "http://10.0.0.5:8080/arca"
        );
        for invalid in [
            "registry.example.com",
            "ftp://registry.example.com",
            "https://registry.example.com/?a=b",
            "https://user:pass@registry.example.com",
        ] {
            assert!(parse(invalid).is_err(), "{invalid}");
        }
        let env = |name: &str| (name == "ARCA_PUBLIC_URL").then(|| "https://r.example".to_string());
        let config = Config::load(None, env, Overrides::default()).expect("config");
        assert_eq!(
            config.public_url.map(|url| url.0),
            Some("https://r.example".into())
        );
    }

    #[test]
    fn storage_is_an_s3_location_from_file_env_or_flags_and_local_without_one() {
        assert!(
            Config::default().bucket().is_none(),
            "local chunks by default"
        );
        let parsed: StorageUrl = "s3://arca-chunks/site-a/".parse().expect("valid");
        assert_eq!(
            (parsed.bucket.as_str(), parsed.prefix.as_str()),
            ("arca-chunks", "site-a")
        );
        let bare: StorageUrl = "s3://arca-chunks".parse().expect("no prefix");
        assert_eq!(bare.prefix, "");
        for invalid in [
            "arca-chunks",
            "gs://b/p",
            "s3://Bad_Bucket/p",
            "s3://b/p",
            "s3://bucket/a/../b",
        ] {
            assert!(invalid.parse::<StorageUrl>().is_err(), "{invalid}");
        }
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("arca.toml");
        std::fs::write(
            &file,
            "storage = \"s3://from-file/p\"\nstorage_endpoint = \"http://127.0.0.1:3900\"\n",
        )
        .expect("write");
        let env = |name: &str| match name {
            "ARCA_STORAGE_REGION" => Some("garage".to_string()),
            "ARCA_STORAGE_VIRTUAL_HOSTED" => Some("true".to_string()),
            _ => None,
        };
        let config = Config::load(Some(&file), env, Overrides::default()).expect("config");
        let bucket = config.bucket().expect("a bucket");
        assert_eq!(bucket.bucket, "from-file");
        assert_eq!(bucket.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(bucket.region.as_deref(), Some("garage"));
        assert!(bucket.virtual_hosted);
        let flags = Overrides {
            storage: Some("s3://from-flag/q".parse().expect("valid")),
            ..Overrides::default()
        };
        let config = Config::load(Some(&file), |_: &str| None, flags).expect("config");
        assert_eq!(
            config.bucket().map(|b| b.bucket),
            Some("from-flag".to_string())
        );
        let bad = |name: &str| (name == "ARCA_STORAGE").then(|| "/srv/chunks".to_string());
        assert!(Config::load(None, bad, Overrides::default()).is_err());
    }
}
