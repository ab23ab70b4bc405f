//! The simulated network between nodes: the node's [`PeerNetwork`] (what it asks of other nodes) over
//! virtual time. Each request and each answer crosses a link with the latency of its pair of sites plus
//! jitter (so messages reorder), and may be lost, delayed by a spike, or cut by a partition (whole
//! sites, one node, or one direction only). A request to a crashed node fails to connect; one that
//! reaches a node runs there as that node's task, and a crash aborts it.
//!
//! Duplicates are delivered only for idempotent requests (Raft RPCs, read index, chunk fetches, pings):
//! QUIC streams deliver a forwarded write or a membership change exactly once, so duplicating those
//! would test a network Arca does not run on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arca_node::transfer::{PeerNetwork, PeerService, Reply, TransferError, check, unexpected};
use arca_protocol::ChunkRef;
use arca_protocol::cluster::{PeerRequest, PeerResponse};
use bytes::Bytes;
use futures::future::BoxFuture;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

/// How long a request waits when its caller set no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Fault rates in force on every link.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkFaults {
    /// Probability a message is dropped.
    pub loss: f64,
    /// Probability an idempotent request is delivered twice.
    pub duplicate: f64,
    /// Probability a message is held back by a spike.
    pub spike: f64,
    /// The longest a spike holds a message back.
    pub spike_max: Duration,
}

struct Endpoint {
    site: usize,
    service: Option<Arc<dyn PeerService>>,
    tasks: Vec<AbortHandle>,
}

struct NetState {
    rng: StdRng,
    endpoints: BTreeMap<u64, Endpoint>,
    /// Directed links that are cut: (from, to).
    cut: BTreeSet<(u64, u64)>,
    faults: LinkFaults,
    messages: u64,
    dropped: u64,
}

/// The network of one simulated cluster.
pub struct Network {
    state: Mutex<NetState>,
}

/// The address a node is known by.
pub fn address(node_id: u64) -> String {
    format!("node-{node_id}")
}

fn node_of(addr: &str) -> Option<u64> {
    addr.strip_prefix("node-")?.parse().ok()
}

/// One-way latency between two sites: 1 ms within a site, 20 to 60 ms between sites.
fn base_latency(from_site: usize, to_site: usize) -> Duration {
    if from_site == to_site {
        return Duration::from_millis(1);
    }
    let (low, high) = (from_site.min(to_site), from_site.max(to_site));
    Duration::from_millis(20 + 10 * (low + high) as u64 % 41)
}

/// What happens to one message.
enum Fate {
    /// It arrives after this long.
    Arrives(Duration),
    /// It never arrives.
    Lost,
}

impl Network {
    /// A network whose choices are drawn from `seed`.
    pub fn new(seed: u64) -> Arc<Network> {
        Arc::new(Network {
            state: Mutex::new(NetState {
                rng: StdRng::seed_from_u64(seed),
                endpoints: BTreeMap::new(),
                cut: BTreeSet::new(),
                faults: LinkFaults::default(),
                messages: 0,
                dropped: 0,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts node `id` of `site` on the network, without a service until [`Network::up`].
    pub fn attach(&self, id: u64, site: usize) {
        self.state().endpoints.insert(
            id,
            Endpoint {
                site,
                service: None,
                tasks: Vec::new(),
            },
        );
    }

    /// Node `id` answers requests with `service`.
    pub fn up(&self, id: u64, service: Arc<dyn PeerService>) {
        if let Some(endpoint) = self.state().endpoints.get_mut(&id) {
            endpoint.service = Some(service);
        }
    }

    /// Node `id` crashed: it answers nothing and what it was serving is aborted.
    pub fn down(&self, id: u64) {
        let tasks = match self.state().endpoints.get_mut(&id) {
            Some(endpoint) => {
                endpoint.service = None;
                std::mem::take(&mut endpoint.tasks)
            }
            None => Vec::new(),
        };
        for task in tasks {
            task.abort();
        }
    }

    /// Cuts the link from `from` to `to` (one direction).
    pub fn cut(&self, from: u64, to: u64) {
        self.state().cut.insert((from, to));
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.state().cut.clear();
    }

    /// The fault rates in force.
    pub fn link_faults(&self) -> LinkFaults {
        self.state().faults
    }

    /// Sets the fault rates of every link.
    pub fn set_faults(&self, faults: LinkFaults) {
        self.state().faults = faults;
    }

    /// Messages sent and dropped so far.
    pub fn counts(&self) -> (u64, u64) {
        let state = self.state();
        (state.messages, state.dropped)
    }

    /// A node's handle on the network.
    pub fn endpoint(self: &Arc<Self>, node_id: u64) -> Arc<NodeNet> {
        Arc::new(NodeNet {
            network: self.clone(),
            own: node_id,
        })
    }

    /// Decides what happens to one message from `from` to `to`.
    fn fate(&self, from: u64, to: u64) -> Fate {
        let mut state = self.state();
        state.messages += 1;
        let sites = (
            state.endpoints.get(&from).map(|e| e.site),
            state.endpoints.get(&to).map(|e| e.site),
        );
        let (Some(from_site), Some(to_site)) = sites else {
            state.dropped += 1;
            return Fate::Lost;
        };
        let faults = state.faults;
        if state.cut.contains(&(from, to))
            || (faults.loss > 0.0 && state.rng.random_bool(faults.loss))
        {
            state.dropped += 1;
            return Fate::Lost;
        }
        let base = base_latency(from_site, to_site);
        let jitter = base.mul_f64(state.rng.random_range(0.0..0.5));
        let spike = if faults.spike > 0.0 && state.rng.random_bool(faults.spike) {
            faults.spike_max.mul_f64(state.rng.random_range(0.0..1.0))
        } else {
            Duration::ZERO
        };
        Fate::Arrives(base + jitter + spike)
    }

    fn duplicate(&self) -> bool {
        let mut state = self.state();
        let rate = state.faults.duplicate;
        rate > 0.0 && state.rng.random_bool(rate)
    }

    fn service(&self, id: u64) -> Option<Arc<dyn PeerService>> {
        self.state().endpoints.get(&id)?.service.clone()
    }

    /// Runs `request` at node `to` as one of its tasks; the answer arrives on the returned channel
    /// unless the node crashes first.
    fn deliver(
        &self,
        to: u64,
        service: Arc<dyn PeerService>,
        request: PeerRequest,
    ) -> oneshot::Receiver<Reply> {
        let (answer, answered) = oneshot::channel();
        let task = tokio::spawn(async move {
            let _ = answer.send(service.handle(request).await);
        });
        let mut state = self.state();
        match state.endpoints.get_mut(&to) {
            Some(endpoint) => {
                endpoint.tasks.retain(|task| !task.is_finished());
                endpoint.tasks.push(task.abort_handle());
            }
            None => task.abort(),
        }
        answered
    }

    /// One request and its answer, across the links in both directions.
    async fn exchange(&self, from: u64, to: u64, request: PeerRequest) -> Result<Reply, Broken> {
        let Fate::Arrives(there) = self.fate(from, to) else {
            return std::future::pending().await;
        };
        tokio::time::sleep(there).await;
        let service = self.service(to).ok_or(Broken::Refused)?;
        let idempotent = matches!(
            request,
            PeerRequest::AppendEntries(_)
                | PeerRequest::Vote(_)
                | PeerRequest::InstallSnapshot(_)
                | PeerRequest::ReadIndex
                | PeerRequest::FetchChunk(_)
                | PeerRequest::Ping
        );
        if idempotent && self.duplicate() {
            drop(self.deliver(to, service.clone(), request.clone()));
        }
        let reply = self.deliver(to, service, request).await;
        let Fate::Arrives(back) = self.fate(to, from) else {
            return std::future::pending().await;
        };
        tokio::time::sleep(back).await;
        reply.map_err(|_| Broken::Reset)
    }
}

/// How an exchange failed before the caller's timeout.
enum Broken {
    /// Nothing listens at the address: the request was never handled.
    Refused,
    /// The node crashed while handling the request: it may or may not have taken effect.
    Reset,
}

/// One node's side of the network.
pub struct NodeNet {
    network: Arc<Network>,
    own: u64,
}

impl NodeNet {
    async fn request(
        &self,
        addr: &str,
        request: PeerRequest,
        timeout: Option<Duration>,
    ) -> Result<Reply, TransferError> {
        let connect = |reason: &str| TransferError::Connect {
            addr: addr.to_string(),
            reason: reason.to_string(),
        };
        let to = node_of(addr).ok_or_else(|| connect("no such node"))?;
        let after = timeout.unwrap_or(DEFAULT_TIMEOUT);
        match tokio::time::timeout(after, self.network.exchange(self.own, to, request)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(Broken::Refused)) => Err(connect("connection refused: the node is down")),
            Ok(Err(Broken::Reset)) => Err(TransferError::Stream {
                addr: addr.to_string(),
                reason: "connection reset: the node crashed".to_string(),
            }),
            Err(_) => Err(TransferError::Timeout {
                addr: addr.to_string(),
                after,
            }),
        }
    }
}

impl PeerNetwork for NodeNet {
    fn call<'a>(
        &'a self,
        addr: &'a str,
        request: PeerRequest,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<PeerResponse, TransferError>> {
        Box::pin(async move {
            match self.request(addr, request, timeout).await? {
                Reply::Message(response) => check(addr, response),
                Reply::Chunk(bytes) => Ok(PeerResponse::Chunk {
                    size: bytes.len() as u32,
                }),
            }
        })
    }

    fn fetch_chunk<'a>(
        &'a self,
        addr: &'a str,
        chunk: ChunkRef,
    ) -> BoxFuture<'a, Result<Bytes, TransferError>> {
        Box::pin(async move {
            match self
                .request(addr, PeerRequest::FetchChunk(chunk.id), None)
                .await?
            {
                Reply::Chunk(bytes) => Ok(bytes),
                Reply::Message(response) => {
                    let other = check(addr, response)?;
                    Err(unexpected(addr, &other))
                }
            }
        })
    }

    fn round_trip(&self, addr: &str) -> Option<Duration> {
        let to = node_of(addr)?;
        let state = self.network.state();
        let from_site = state.endpoints.get(&self.own)?.site;
        let to_site = state.endpoints.get(&to)?.site;
        Some(2 * base_latency(from_site, to_site))
    }
}
