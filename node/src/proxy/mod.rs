//! Remote registries: fetching from an upstream into the chunk store, once per object however many
//! clients ask at the same time (single flight), verified against the digests the protocol promises,
//! with per-upstream timeouts, retries with backoff and a circuit breaker; and cached metadata
//! documents served until their time to live runs out, and served stale (with a warning) when the
//! upstream fails. A fetch that fails or does not verify leaves nothing visible.
//!
//! The protocol front-ends decide *what* to fetch and how to record it; this module owns *how*.

mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arca_protocol::{BlobRef, CachedDocument, Command, Registry, RegistryKind};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::AppState;
use crate::meta::ProposeError;

pub use self::upstream::{Expected, Fetched};

/// How long a finished fetch is shared with requests that arrive after it.
const FLIGHT_LINGER: Duration = Duration::from_millis(500);
/// Consecutive failures after which an upstream's circuit opens.
const BREAKER_THRESHOLD: u32 = 5;
/// How long an open circuit refuses requests before one is let through again.
const BREAKER_COOLDOWN: Duration = Duration::from_secs(30);

/// Why an upstream fetch failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// The upstream does not have it.
    #[error("the upstream has no {0}")]
    NotFound(String),
    /// The upstream refused our credentials.
    #[error("the upstream refused access to {0}")]
    Denied(String),
    /// The upstream failed, timed out or sent something other than what was promised.
    #[error("upstream: {0}")]
    Upstream(String),
    /// Too many recent failures: the upstream is not asked for a while.
    #[error("upstream {0} is failing; not asking it for a while")]
    CircuitOpen(String),
    /// The fetched object could not be recorded.
    #[error("recording the fetched object: {0}")]
    Record(String),
}

impl From<ProposeError> for ProxyError {
    fn from(error: ProposeError) -> Self {
        ProxyError::Record(error.to_string())
    }
}

/// One upstream's circuit breaker.
#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// Per-registry figures for `/metrics`.
#[derive(Debug, Default, Clone)]
pub struct RemoteCounters {
    /// Requests served from what was cached.
    pub hits: u64,
    /// Requests that went upstream.
    pub misses: u64,
    /// Upstream requests that failed.
    pub errors: u64,
    /// Stale documents served because the upstream failed.
    pub stale: u64,
    /// Total time spent in upstream requests, in milliseconds.
    pub upstream_millis: u64,
}

type Flight = Shared<BoxFuture<'static, Result<Fetched, ProxyError>>>;

/// What to do with a fetched object before anyone else may fetch it again: record it.
pub type Record =
    Box<dyn FnOnce(Fetched) -> BoxFuture<'static, Result<Fetched, ProxyError>> + Send>;

/// A node's remote-registry machinery.
#[derive(Default)]
pub struct Proxy {
    client: upstream::UpstreamClient,
    flights: Arc<Mutex<HashMap<String, Flight>>>,
    breakers: Mutex<HashMap<String, Breaker>>,
    counters: Mutex<HashMap<String, RemoteCounters>>,
}

/// A metadata document, and whether it is stale.
pub struct Document {
    /// The document as cached.
    pub cached: CachedDocument,
    /// True when the upstream failed and this is an older copy.
    pub stale: bool,
}

impl Proxy {
    /// The figures of every remote registry.
    pub fn counters(&self) -> HashMap<String, RemoteCounters> {
        self.counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Counts a request of `registry` served from cache.
    pub fn count_hit(&self, registry: &str) {
        self.count(registry, |c| c.hits += 1);
    }

    fn count(&self, registry: &str, change: impl FnOnce(&mut RemoteCounters)) {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(counters.entry(registry.to_string()).or_default());
    }

    /// Fetches `url` (an absolute URL, or a path under the registry's upstream) into the chunk store
    /// and verifies it. Concurrent calls for the same URL share one upstream request.
    pub async fn fetch(
        &self,
        state: &AppState,
        registry: &Registry,
        url: &str,
        expected: Expected,
    ) -> Result<Fetched, ProxyError> {
        self.fetch_and_record(
            state,
            registry,
            url,
            expected,
            Box::new(|fetched| async move { Ok(fetched) }.boxed()),
        )
        .await
    }

    /// [`Proxy::fetch`], then `record` (which makes the fetched object visible, through Raft) inside
    /// the same flight: a request that arrives while the first is being recorded waits for it instead
    /// of fetching again.
    pub async fn fetch_and_record(
        &self,
        state: &AppState,
        registry: &Registry,
        url: &str,
        expected: Expected,
        record: Record,
    ) -> Result<Fetched, ProxyError> {
        let upstream = registry
            .upstream
            .clone()
            .ok_or_else(|| ProxyError::Upstream(format!("{} has no upstream", registry.name)))?;
        let url = upstream::resolve(&upstream.url, url)?;
        self.check_breaker(&upstream.url)?;
        // One flight per URL and representation asked for.
        let flight_key = format!("{} {url}", expected.accept.as_deref().unwrap_or("*/*"));
        let flight = {
            let mut flights = self
                .flights
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            flights
                .entry(flight_key.clone())
                .or_insert_with(|| {
                    let client = self.client.clone();
                    let chunks = state.chunks.clone();
                    let limit = state.config.max_upload_bytes;
                    let url = url.clone();
                    async move {
                        let fetched = client
                            .fetch(&upstream, &url, expected, chunks, limit)
                            .await?;
                        record(fetched).await
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        let started = Instant::now();
        let result = flight.clone().await;
        // The finished flight stays a little longer: a request that looked for the object just before
        // it was recorded joins it instead of fetching again (and a miss is not asked again at once).
        let flights = self.flights.clone();
        tokio::spawn(async move {
            tokio::time::sleep(FLIGHT_LINGER).await;
            let mut flights = flights
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if flights
                .get(&flight_key)
                .is_some_and(|current| current.ptr_eq(&flight))
            {
                flights.remove(&flight_key);
            }
        });
        let upstream_url = registry
            .upstream
            .as_ref()
            .map(|u| u.url.clone())
            .unwrap_or_default();
        let elapsed = started.elapsed().as_millis() as u64;
        match &result {
            Ok(_) | Err(ProxyError::NotFound(_)) => {
                self.breaker_success(&upstream_url);
                self.count(&registry.name, |c| {
                    c.misses += 1;
                    c.upstream_millis += elapsed;
                });
            }
            Err(error) => {
                tracing::warn!(registry = %registry.name, %url, %error, "upstream fetch failed");
                self.breaker_failure(&upstream_url);
                self.count(&registry.name, |c| {
                    c.misses += 1;
                    c.errors += 1;
                    c.upstream_millis += elapsed;
                });
            }
        }
        result
    }

    /// A metadata document of a remote registry: the cached copy while it is fresh, else fetched again
    /// from `url` (asking for `accept` when given, and cached under `key`), else — when the upstream
    /// fails — the stale copy.
    pub async fn document(
        &self,
        state: &AppState,
        registry: &Registry,
        key: &str,
        url: &str,
        accept: Option<&str>,
    ) -> Result<Document, ProxyError> {
        let cached = state.meta.read(|meta| {
            meta.cached
                .get(&registry.name)
                .and_then(|documents| documents.get(key))
                .cloned()
        });
        let ttl_ms = registry
            .upstream
            .as_ref()
            .map_or(0, |u| u.metadata_ttl_seconds.saturating_mul(1000));
        if let Some(cached) = &cached
            && state.now_ms().saturating_sub(cached.fetched_at) < ttl_ms
        {
            self.count_hit(&registry.name);
            return Ok(Document {
                cached: cached.clone(),
                stale: false,
            });
        }
        let expected = Expected {
            accept: accept.map(str::to_string),
            ..Expected::default()
        };
        let record: Record = {
            let state = state.clone();
            let registry = registry.name.clone();
            let key = key.to_string();
            Box::new(move |fetched: Fetched| {
                async move {
                    let document = CachedDocument {
                        blob: fetched.blob.clone(),
                        content_type: fetched.content_type.clone(),
                        fetched_at: state.now_ms(),
                    };
                    state
                        .meta
                        .propose(Command::CacheDocument {
                            registry,
                            key,
                            document,
                        })
                        .await?;
                    Ok(fetched)
                }
                .boxed()
            })
        };
        match self
            .fetch_and_record(state, registry, url, expected, record)
            .await
        {
            Ok(fetched) => Ok(Document {
                cached: CachedDocument {
                    blob: fetched.blob,
                    content_type: fetched.content_type,
                    fetched_at: state.now_ms(),
                },
                stale: false,
            }),
            // What vanished upstream, or cannot be fetched now, keeps being served from the cache.
            Err(error) => match cached {
                Some(cached) => {
                    tracing::warn!(registry = %registry.name, key, %error, "serving a stale document");
                    self.count(&registry.name, |c| c.stale += 1);
                    Ok(Document {
                        cached,
                        stale: true,
                    })
                }
                None => Err(error),
            },
        }
    }

    fn check_breaker(&self, upstream: &str) -> Result<(), ProxyError> {
        let mut breakers = self
            .breakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let breaker = breakers.entry(upstream.to_string()).or_default();
        match breaker.open_until {
            Some(until) if Instant::now() < until => {
                Err(ProxyError::CircuitOpen(upstream.to_string()))
            }
            Some(_) => {
                // Half open: let this request through; a failure opens the circuit again.
                breaker.open_until = None;
                breaker.failures = BREAKER_THRESHOLD - 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn breaker_success(&self, upstream: &str) {
        let mut breakers = self
            .breakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        breakers.insert(upstream.to_string(), Breaker::default());
    }

    fn breaker_failure(&self, upstream: &str) {
        let mut breakers = self
            .breakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let breaker = breakers.entry(upstream.to_string()).or_default();
        breaker.failures += 1;
        if breaker.failures >= BREAKER_THRESHOLD {
            breaker.open_until = Some(Instant::now() + BREAKER_COOLDOWN);
        }
    }
}

/// Finds an immutable file in the first of `candidates` (a registry's resolution order) that has it:
/// recorded there already, or — for a remote registry — fetched from the upstream location `locate`
/// names (with the digests it must match), then recorded as `package`/`version`/`filename` with its
/// origin. Returns the registry that had it and the blob; `None` when none has it.
pub async fn find_or_fetch_file(
    state: &AppState,
    candidates: &[Registry],
    (package, version, filename): (&str, &str, &str),
    locate: impl Fn(&Registry) -> Option<(String, Expected)>,
) -> Result<Option<(Registry, BlobRef)>, ProxyError> {
    let mut failure = None;
    for registry in candidates {
        let recorded = state.meta.read(|meta| {
            let file = meta
                .version(&registry.name, package, version)?
                .files
                .get(filename)?;
            meta.blobs.get(&file.sha256).cloned()
        });
        if let Some(blob) = recorded {
            if registry.kind == RegistryKind::Remote {
                state.proxy.count_hit(&registry.name);
                touch(state, &registry.name, package, version);
            }
            return Ok(Some((registry.clone(), blob)));
        }
        if registry.kind != RegistryKind::Remote {
            continue;
        }
        let Some((url, expected)) = locate(registry) else {
            continue;
        };
        let record: Record = {
            let state = state.clone();
            let registry = registry.name.clone();
            let (package, version, filename) = (
                package.to_string(),
                version.to_string(),
                filename.to_string(),
            );
            Box::new(move |fetched: Fetched| {
                async move {
                    let attributes = [
                        (ORIGIN.to_string(), fetched.url.clone()),
                        (CACHED_AT.to_string(), state.now_ms().to_string()),
                        (LAST_ACCESS.to_string(), state.now_ms().to_string()),
                    ]
                    .into();
                    state
                        .meta
                        .propose(Command::PutFile {
                            registry,
                            package,
                            version,
                            filename,
                            blob: fetched.blob.clone(),
                            attributes,
                            tags: Vec::new(),
                            overwrite: arca_protocol::Overwrite::Allow,
                            at: state.now_ms(),
                        })
                        .await?;
                    Ok(fetched)
                }
                .boxed()
            })
        };
        match state
            .proxy
            .fetch_and_record(state, registry, &url, expected, record)
            .await
        {
            Ok(fetched) => return Ok(Some((registry.clone(), fetched.blob))),
            Err(ProxyError::NotFound(_)) => {}
            Err(error) => failure = Some(error),
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(None),
    }
}

/// The version attribute naming the upstream URL a cached file came from.
pub const ORIGIN: &str = "origin";
/// The version attribute holding when a cached file was fetched (unix milliseconds).
pub const CACHED_AT: &str = "cached_at";
/// The version attribute holding when a cached version was last served (unix milliseconds).
pub const LAST_ACCESS: &str = "last_access";
/// How stale a recorded last access may get before a read records a new one.
const LAST_ACCESS_RESOLUTION_MS: u64 = 3600 * 1000;

/// Records that a version a remote registry cached was served now, unless a recent access is already
/// recorded (at most one metadata write per version and hour; in the background, never failing the
/// read).
pub fn touch(state: &AppState, registry: &str, package: &str, version: &str) {
    let now = state.now_ms();
    let recent = state.meta.read(|meta| {
        meta.version(registry, package, version)
            .and_then(|v| v.attributes.get(LAST_ACCESS)?.parse::<u64>().ok())
            .is_some_and(|last| now.saturating_sub(last) < LAST_ACCESS_RESOLUTION_MS)
    });
    if recent {
        return;
    }
    let state = state.clone();
    let command = Command::SetAttributes {
        registry: registry.to_string(),
        package: package.to_string(),
        version: version.to_string(),
        set: [(LAST_ACCESS.to_string(), now.to_string())].into(),
        remove: Vec::new(),
        at: now,
    };
    tokio::spawn(async move {
        if let Err(error) = state.meta.propose(command).await {
            tracing::debug!(%error, "recording a last access");
        }
    });
}

/// The registries a read of `registry` tries, in order: itself, or a virtual registry's members.
pub fn resolution_order(state: &AppState, registry: &Registry) -> Vec<Registry> {
    match registry.kind {
        RegistryKind::Virtual => state.meta.read(|meta| {
            registry
                .members
                .iter()
                .filter_map(|member| meta.registry(member).map(|r| r.registry.clone()))
                .collect()
        }),
        _ => vec![registry.clone()],
    }
}

/// Where a write to `registry` goes: itself when local, a virtual registry's publish target, or
/// nowhere (remote registries and virtual ones without a target take no publishes).
pub fn publish_target(state: &AppState, registry: &Registry) -> Option<Registry> {
    match registry.kind {
        RegistryKind::Local => Some(registry.clone()),
        RegistryKind::Remote => None,
        RegistryKind::Virtual => {
            let target = registry.publish_to.as_ref()?;
            state
                .meta
                .read(|meta| meta.registry(target).map(|r| r.registry.clone()))
        }
    }
}
