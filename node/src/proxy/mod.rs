//! Remote registries: fetching from an upstream into the chunk store, once per object however many
//! clients ask at the same time (single flight), verified against the digests the protocol promises,
//! with per-upstream timeouts, retries with backoff and a circuit breaker; and cached metadata
//! documents served until their time to live runs out, and served stale (with a warning) when the
//! upstream fails. A fetch that fails or does not verify leaves nothing visible.
//!
//! The protocol front-ends decide *what* to fetch and how to record it; this module owns *how*.

mod upstream;

pub use upstream::UpstreamClient;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arca_protocol::{BlobRef, CachedDocument, Command, Registry, RegistryKind};
use futures::FutureExt;
use tokio::sync::watch;

use crate::blob::ChunkStore;
use crate::breaker::CircuitBreaker;
use crate::meta::StateRead;
use futures::future::{BoxFuture, Shared};

use crate::AppState;
use crate::meta::ProposeError;

pub use self::upstream::{Arrival, Expected, Fetched};

/// How long a finished fetch is shared with requests that arrive after it.
const FLIGHT_LINGER: Duration = Duration::from_millis(500);
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
    /// The upstream's TLS certificate is not trusted (or not valid): the node's certificate store,
    /// `upstream_ca_file`, or the upstream's certificate needs fixing.
    #[error(
        "upstream TLS: {0} (the node trusts the system's certificate store and upstream_ca_file)"
    )]
    Tls(String),
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

impl From<crate::meta::StoreError> for ProxyError {
    fn from(error: crate::meta::StoreError) -> Self {
        ProxyError::Record(error.to_string())
    }
}

/// Per-registry figures for `/metrics`.
#[derive(Debug, Default, Clone)]
pub struct RemoteCounters {
    /// Requests served without an upstream request of their own: from what was cached, or by
    /// joining a fetch already under way (or just finished) for the same object.
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

/// A fetch under way, as the map of flights keeps it.
#[derive(Clone)]
struct FlightEntry {
    id: u64,
    result: Flight,
    arrival: watch::Receiver<Arrival>,
}

/// An object being fetched: wait for it whole ([`Arriving::finish`]) or stream it as it is stored
/// ([`Arriving::into_body`]).
pub struct Arriving {
    result: Flight,
    arrival: watch::Receiver<Arrival>,
    chunks: Arc<ChunkStore>,
}

impl Arriving {
    /// Waits until the object is stored, verified and recorded (a document's record may still be
    /// on its way).
    pub async fn finish(self) -> Result<Fetched, ProxyError> {
        self.result.await
    }

    /// Waits until the upstream answers with the object (its bytes then start arriving), or the fetch
    /// ends without it.
    pub async fn started(&mut self) -> Result<(), ProxyError> {
        let result = self.result.clone();
        let arrival = &mut self.arrival;
        // (The guard `wait_for` returns must not live across an await: it is dropped in the block.)
        let started = async move { arrival.wait_for(|arrival| arrival.started).await.is_ok() };
        tokio::select! {
            started = started => if started { Ok(()) } else { result.await.map(drop) },
            done = result.clone() => done.map(drop),
        }
    }

    /// The length the upstream announced, if it did.
    pub fn declared_length(&self) -> Option<u64> {
        self.arrival.borrow().declared
    }

    /// The object's bytes, each chunk as soon as it is stored (and verified on read); the stream
    /// fails, aborting the response, if the fetch fails or the object does not verify.
    pub fn into_body(
        self,
    ) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send {
        let Arriving {
            result,
            arrival,
            chunks,
        } = self;
        futures::stream::unfold(
            (arrival, result, chunks, 0usize, false),
            |(mut arrival, result, chunks, sent, ended)| async move {
                if ended {
                    return None;
                }
                loop {
                    let next = arrival.borrow().chunks.get(sent).copied();
                    if let Some(chunk) = next {
                        let piece = chunks.read(chunk).await.map_err(std::io::Error::other);
                        let failed = piece.is_err();
                        return Some((piece, (arrival, result, chunks, sent + 1, failed)));
                    }
                    tokio::select! {
                        changed = arrival.changed() => {
                            if changed.is_err() {
                                // The fetch ended: its result says whether what was sent is whole.
                                return match result.clone().await {
                                    Ok(_) if arrival.borrow().chunks.len() > sent => continue,
                                    Ok(_) => None,
                                    Err(error) => Some((
                                        Err(std::io::Error::other(error)),
                                        (arrival, result, chunks, sent, true),
                                    )),
                                };
                            }
                        }
                        done = result.clone() => match done {
                            Ok(_) if arrival.borrow().chunks.len() > sent => {}
                            Ok(_) => return None,
                            Err(error) => {
                                return Some((
                                    Err(std::io::Error::other(error)),
                                    (arrival, result, chunks, sent, true),
                                ));
                            }
                        },
                    }
                }
            },
        )
    }
}

/// What to do with a fetched object before its flight ends (requests until then join it): record
/// it, or — for a metadata document — start recording it.
pub type Record =
    Box<dyn FnOnce(Fetched) -> BoxFuture<'static, Result<Fetched, ProxyError>> + Send>;

/// A node's remote-registry machinery.
pub struct Proxy {
    client: upstream::UpstreamClient,
    flights: Arc<Mutex<HashMap<String, FlightEntry>>>,
    next_flight: std::sync::atomic::AtomicU64,
    breakers: Mutex<HashMap<String, CircuitBreaker>>,
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
    /// The machinery over `client`.
    pub fn new(client: upstream::UpstreamClient) -> Proxy {
        Proxy {
            client,
            flights: Arc::default(),
            next_flight: Default::default(),
            breakers: Mutex::default(),
            counters: Mutex::default(),
        }
    }

    /// The HTTP client upstreams are asked with (it trusts the system's store and
    /// `upstream_ca_file`), for other requests a node sends over HTTP.
    pub fn http(&self) -> reqwest::Client {
        self.client.http()
    }

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
        self.start(state, registry, url, expected, record)?
            .finish()
            .await
    }

    /// Starts fetching `url` (or joins the fetch already under way) and returns at once: the object
    /// arrives chunk by chunk ([`Arriving::into_body`] streams it while it is stored) and is recorded
    /// by `record` when complete and verified. The fetch goes on if every reader goes away.
    pub fn start(
        &self,
        state: &AppState,
        registry: &Registry,
        url: &str,
        expected: Expected,
        record: Record,
    ) -> Result<Arriving, ProxyError> {
        let mut upstream = registry
            .upstream
            .clone()
            .ok_or_else(|| ProxyError::Upstream(format!("{} has no upstream", registry.name)))?;
        if let Some(sealed) = &upstream.password {
            let password = state
                .keys
                .open(sealed)
                .map_err(|error| ProxyError::Upstream(format!("{}: {error}", registry.name)))?;
            upstream.password = Some(password);
        }
        let settings = state
            .meta
            .read(|view| view.registry_settings(&registry.name))
            .map_err(|error| ProxyError::Upstream(error.to_string()))?;
        let client = self.client.trusting(settings.upstream_ca_pem.as_deref())?;
        let url = upstream::resolve(&upstream.url, url)?;
        self.check_breaker(&upstream.url)?;
        // One flight per registry, URL and representation asked for (registries over one upstream
        // may fetch with different credentials and CAs).
        let flight_key = format!(
            "{} {} {url}",
            registry.name,
            expected.accept.as_deref().unwrap_or("*/*")
        );
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = flights.get(&flight_key) {
            self.count_hit(&registry.name);
            return Ok(Arriving {
                result: entry.result.clone(),
                arrival: entry.arrival.clone(),
                chunks: state.chunks.clone(),
            });
        }
        let id = self
            .next_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sender, arrival) = watch::channel(Arrival::default());
        let task = {
            let state = state.clone();
            let registry = registry.name.clone();
            let key = flight_key.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let proxy = state.proxy.clone();
                let started = Instant::now();
                let limit = state.config.max_upload_bytes;
                let fetched = client
                    .fetch(
                        &upstream,
                        &url,
                        expected,
                        state.chunks.clone(),
                        limit,
                        Arc::new(sender),
                    )
                    .await;
                let result = match fetched {
                    Ok(fetched) => record(fetched).await,
                    Err(error) => Err(error),
                };
                proxy.finished(&registry, &upstream.url, &url, started, &result);
                // The finished flight stays a little longer: a request that looked for the object
                // just before it was recorded joins it instead of fetching again.
                let flights = proxy.flights.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(FLIGHT_LINGER).await;
                    let mut flights = flights
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    if flights.get(&key).is_some_and(|entry| entry.id == id) {
                        flights.remove(&key);
                    }
                });
                result
            })
        };
        let result: Flight = async move {
            task.await
                .unwrap_or_else(|error| Err(ProxyError::Upstream(format!("fetch task: {error}"))))
        }
        .boxed()
        .shared();
        flights.insert(
            flight_key,
            FlightEntry {
                id,
                result: result.clone(),
                arrival: arrival.clone(),
            },
        );
        Ok(Arriving {
            result,
            arrival,
            chunks: state.chunks.clone(),
        })
    }

    /// Bookkeeping when a flight ends: the circuit breaker and the registry's counters.
    fn finished(
        &self,
        registry: &str,
        upstream: &str,
        url: &str,
        started: Instant,
        result: &Result<Fetched, ProxyError>,
    ) {
        let elapsed = started.elapsed().as_millis() as u64;
        match result {
            Ok(_) | Err(ProxyError::NotFound(_)) => {
                self.breaker_success(upstream);
                self.count(registry, |c| {
                    c.misses += 1;
                    c.upstream_millis += elapsed;
                });
            }
            Err(error) => {
                tracing::warn!(registry, url, %error, "upstream fetch failed");
                self.breaker_failure(upstream);
                self.count(registry, |c| {
                    c.misses += 1;
                    c.errors += 1;
                    c.upstream_millis += elapsed;
                });
            }
        }
    }

    /// A metadata document of a remote registry: the cached copy while it is fresh, else fetched again
    /// from `url` (asking for `accept` when given, and cached under `key`: returned once stored,
    /// recorded in the background), else — when the upstream fails — the stale copy.
    pub async fn document(
        &self,
        state: &AppState,
        registry: &Registry,
        key: &str,
        url: &str,
        accept: Option<&str>,
    ) -> Result<Document, ProxyError> {
        let cached = state.meta.read(|view| view.cached(&registry.name, key))?;
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
        // A cached document is a copy of the upstream's, not a client's write: the reader is answered
        // from the verified bytes as soon as they are stored, and the record follows off its path
        // (requests in the meantime join the lingering flight; should the node stop before the
        // record commits, the next read fetches the document again).
        let record: Record = {
            let state = state.clone();
            let registry = registry.name.clone();
            let key = key.to_string();
            Box::new(move |fetched: Fetched| {
                let document = CachedDocument {
                    blob: fetched.blob.clone(),
                    content_type: fetched.content_type.clone(),
                    fetched_at: state.now_ms(),
                };
                tokio::spawn(async move {
                    let recorded = state
                        .meta
                        .propose(Command::CacheDocument {
                            registry: registry.clone(),
                            key: key.clone(),
                            document,
                        })
                        .await;
                    if let Err(error) = recorded {
                        tracing::warn!(registry, key, %error, "recording a fetched document");
                    }
                });
                async move { Ok(fetched) }.boxed()
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
        match breakers.entry(upstream.to_string()).or_default().allows() {
            true => Ok(()),
            false => Err(ProxyError::CircuitOpen(upstream.to_string())),
        }
    }

    fn breaker_success(&self, upstream: &str) {
        let mut breakers = self
            .breakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        breakers.remove(upstream);
    }

    fn breaker_failure(&self, upstream: &str) {
        let mut breakers = self
            .breakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        breakers
            .entry(upstream.to_string())
            .or_default()
            .failed(BREAKER_COOLDOWN);
    }
}

/// An object found: stored already, or arriving from an upstream.
pub enum Content {
    /// In the chunk store and recorded.
    Stored(BlobRef),
    /// Being fetched: stream it, or wait for it.
    Arriving(Arriving),
}

/// [`find_or_start_file`], waiting for an arriving file to be stored and recorded.
pub async fn find_or_fetch_file(
    state: &AppState,
    candidates: &[Registry],
    file: (&str, &str, &str),
    locate: impl Fn(&Registry) -> Option<(String, Expected)>,
) -> Result<Option<(Registry, BlobRef)>, ProxyError> {
    match find_or_start_file(state, candidates, file, locate).await? {
        Some((registry, Content::Stored(blob))) => Ok(Some((registry, blob))),
        Some((registry, Content::Arriving(arriving))) => {
            Ok(Some((registry, arriving.finish().await?.blob)))
        }
        None => Ok(None),
    }
}

/// Finds an immutable file in the first of `candidates` (a registry's resolution order) that has it:
/// recorded there already, or — for a remote registry — being fetched from the upstream location
/// `locate` names (with the digests it must match), to be recorded as `package`/`version`/`filename`
/// with its origin once complete. Returns the registry that has it; `None` when none has it.
pub async fn find_or_start_file(
    state: &AppState,
    candidates: &[Registry],
    (package, version, filename): (&str, &str, &str),
    locate: impl Fn(&Registry) -> Option<(String, Expected)>,
) -> Result<Option<(Registry, Content)>, ProxyError> {
    let mut failure = None;
    for registry in candidates {
        let recorded = state.meta.read(|view| {
            let file = view
                .version(&registry.name, package, version)?
                .and_then(|v| v.files.get(filename).cloned());
            match file {
                Some(file) => view.blob(&file.sha256),
                None => Ok(None),
            }
        })?;
        if let Some(blob) = recorded {
            if registry.kind == RegistryKind::Remote {
                state.proxy.count_hit(&registry.name);
            }
            return Ok(Some((registry.clone(), Content::Stored(blob))));
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
        let started = match state.proxy.start(state, registry, &url, expected, record) {
            Ok(mut arriving) => arriving.started().await.map(|()| arriving),
            Err(error) => Err(error),
        };
        match started {
            Ok(arriving) => return Ok(Some((registry.clone(), Content::Arriving(arriving)))),
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
/// The version attribute in which builds before usage figures recorded when a cached version was
/// last served (unix milliseconds); still read as a last download.
pub const LAST_ACCESS: &str = "last_access";

/// The registries a read of `registry` tries, in order: itself, or a virtual registry's members.
pub fn resolution_order(state: &AppState, registry: &Registry) -> Vec<Registry> {
    match registry.kind {
        RegistryKind::Virtual => match state.meta.view() {
            Ok(view) => registry
                .members
                .iter()
                .filter_map(|member| view.registry(member).ok().flatten())
                .collect(),
            Err(error) => {
                tracing::warn!(registry = %registry.name, %error, "reading a virtual registry's members");
                Vec::new()
            }
        },
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
            state.meta.read(|view| view.registry(target)).ok().flatten()
        }
    }
}
