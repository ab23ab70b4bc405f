//! The inter-node port: one QUIC endpoint (quinn + rustls, mutual TLS under the cluster CA) that
//! carries Raft RPCs, forwarded writes, membership changes, joins and chunk transfers as bincode
//! messages, one bidirectional stream per request. Also the replication worker that makes each site
//! hold what its registries' policies say.
//!
//! The rest of the node sees the network only through [`PeerNetwork`] (calls out) and [`PeerService`]
//! (calls in), so the simulator can put its own network underneath the same logic.

pub mod replication;
pub mod service;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use arca_protocol::ChunkRef;
use arca_protocol::cluster::{PeerError, PeerRequest, PeerResponse};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use self::tls::{NODE_SERVER_NAME, TlsError};

/// The largest message frame accepted (a snapshot segment or a batch of log entries).
const MAX_FRAME_BYTES: usize = 256 * 1024 * 1024;
/// Receive and send buffer asked for the inter-node UDP socket.
const UDP_SOCKET_BUFFER: usize = 16 * 1024 * 1024;
/// The most connections to one member that chunk fetches spread over.
const MAX_CHUNK_LANES: usize = 4;
/// How long a request may take unless the caller says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransferError {
    /// No connection could be made.
    #[error("connecting to {addr}: {reason}")]
    Connect {
        /// The peer.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The connection or stream failed mid-request.
    #[error("talking to {addr}: {reason}")]
    Stream {
        /// The peer.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The peer answered with an error.
    #[error("{addr} refused: {error}")]
    Peer {
        /// The peer.
        addr: String,
        /// Its answer.
        error: PeerError,
    },
    /// The request took too long.
    #[error("{addr} did not answer within {after:?}")]
    Timeout {
        /// The peer.
        addr: String,
        /// The limit.
        after: Duration,
    },
    /// This node has no cluster credentials yet.
    #[error("this node has no cluster certificate")]
    NotAMember,
}

/// Requests to other nodes: what the node's logic needs of the network.
pub trait PeerNetwork: Send + Sync + 'static {
    /// Sends `request` to the node at `addr` and returns its answer; an error answer
    /// ([`PeerResponse::Failed`]) comes back as [`TransferError::Peer`].
    fn call<'a>(
        &'a self,
        addr: &'a str,
        request: PeerRequest,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<PeerResponse, TransferError>>;

    /// One chunk's bytes from the node at `addr` (not yet verified: the caller checks them).
    fn fetch_chunk<'a>(
        &'a self,
        addr: &'a str,
        chunk: ChunkRef,
    ) -> BoxFuture<'a, Result<Bytes, TransferError>>;

    /// The measured round trip to `addr`, when there is a connection to measure it on.
    fn round_trip(&self, addr: &str) -> Option<Duration>;
}

/// The network of a node that talks to no one: every request fails to connect.
pub struct NoNetwork;

impl PeerNetwork for NoNetwork {
    fn call<'a>(
        &'a self,
        addr: &'a str,
        _request: PeerRequest,
        _timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<PeerResponse, TransferError>> {
        Box::pin(async move { Err(no_route(addr)) })
    }

    fn fetch_chunk<'a>(
        &'a self,
        addr: &'a str,
        _chunk: ChunkRef,
    ) -> BoxFuture<'a, Result<Bytes, TransferError>> {
        Box::pin(async move { Err(no_route(addr)) })
    }

    fn round_trip(&self, _addr: &str) -> Option<Duration> {
        None
    }
}

fn no_route(addr: &str) -> TransferError {
    TransferError::Connect {
        addr: addr.to_string(),
        reason: "this node has no network".to_string(),
    }
}

/// What a request handler answers.
pub enum Reply {
    /// A message.
    Message(PeerResponse),
    /// A chunk's bytes (sent as [`PeerResponse::Chunk`] and the raw bytes).
    Chunk(Bytes),
}

impl From<PeerError> for Reply {
    fn from(error: PeerError) -> Self {
        Reply::Message(PeerResponse::Failed(error))
    }
}

/// Requests from other nodes: what the node's logic offers to the network.
pub trait PeerService: Send + Sync + 'static {
    /// Answers one request (the transport has already refused what the peer may not ask).
    fn handle(&self, request: PeerRequest) -> BoxFuture<'_, Reply>;
}

/// Bytes and chunks moved over the inter-node port since start.
#[derive(Debug, Default)]
pub struct TransferStats {
    /// Chunk bytes received from peers.
    pub chunk_bytes_received: AtomicU64,
    /// Chunk bytes sent to peers.
    pub chunk_bytes_sent: AtomicU64,
    /// Chunks received from peers.
    pub chunks_received: AtomicU64,
    /// Chunks sent to peers.
    pub chunks_sent: AtomicU64,
}

/// The QUIC endpoint of a node.
pub struct QuicTransport {
    endpoint: quinn::Endpoint,
    client: RwLock<Option<quinn::ClientConfig>>,
    /// Open connections to members, by address and lane.
    connections: Mutex<HashMap<(String, usize), quinn::Connection>>,
    /// Connections per member that chunk fetches take turns on (each connection's packets are
    /// sealed and opened by one task, so one connection keeps one core busy at most).
    chunk_lanes: usize,
    /// The lane of the next chunk fetch.
    next_lane: AtomicU64,
    service: OnceLock<Arc<dyn PeerService>>,
    /// Bytes and chunks moved since start.
    pub stats: TransferStats,
}

impl QuicTransport {
    /// Binds the UDP socket at `addr`. The endpoint serves nothing until [`QuicTransport::serve`].
    pub fn bind(addr: SocketAddr) -> std::io::Result<Arc<QuicTransport>> {
        let socket = std::net::UdpSocket::bind(addr)?;
        // The default buffers (~200 KiB) overflow at once when several chunks arrive together, and
        // each datagram dropped there is a loss that halves the congestion window. The kernel caps
        // the size at net.core.rmem_max / wmem_max.
        let buffers = socket2::SockRef::from(&socket);
        let sized = buffers
            .set_recv_buffer_size(UDP_SOCKET_BUFFER)
            .and_then(|()| buffers.set_send_buffer_size(UDP_SOCKET_BUFFER));
        if let Err(error) = sized {
            tracing::warn!(%error, "sizing the inter-node socket's buffers");
        }
        let endpoint = quinn::Endpoint::new(
            tls::endpoint_config(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        Ok(Arc::new(QuicTransport {
            endpoint,
            client: RwLock::new(None),
            connections: Mutex::new(HashMap::new()),
            chunk_lanes: std::thread::available_parallelism()
                .map_or(1, |cores| cores.get())
                .clamp(1, MAX_CHUNK_LANES),
            next_lane: AtomicU64::new(0),
            service: OnceLock::new(),
            stats: TransferStats::default(),
        }))
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Starts accepting connections with this node's credentials and answering with `service`.
    pub fn serve(
        self: &Arc<Self>,
        identity: &tls::ClusterIdentity,
        service: Arc<dyn PeerService>,
    ) -> Result<(), TlsError> {
        self.endpoint
            .set_server_config(Some(identity.server_config()?));
        *self
            .client
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(identity.client_config()?);
        let _ = self.service.set(service);
        let transport = self.clone();
        tokio::spawn(async move { transport.accept_loop().await });
        Ok(())
    }

    /// Asks the node at `addr` to admit this one, trusting it only if it holds the CA `ca_fingerprint`
    /// names. Used before this node has credentials of its own.
    pub async fn join(
        &self,
        addr: &str,
        ca_fingerprint: [u8; 32],
        request: PeerRequest,
    ) -> Result<PeerResponse, TransferError> {
        let config =
            tls::joining_client_config(ca_fingerprint).map_err(|e| TransferError::Connect {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        let connection = self.connect(addr, config).await?;
        let result = exchange(&connection, addr, &request).await;
        connection.close(quinn::VarInt::from_u32(0), b"joined");
        check(addr, result?.0)
    }

    /// Closes every connection and the endpoint.
    pub async fn close(&self) {
        self.endpoint.close(quinn::VarInt::from_u32(0), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }

    async fn accept_loop(self: Arc<Self>) {
        while let Some(incoming) = self.endpoint.accept().await {
            let transport = self.clone();
            tokio::spawn(async move {
                let remote = incoming.remote_address();
                match incoming.await {
                    Ok(connection) => transport.serve_connection(connection).await,
                    Err(error) => tracing::debug!(%remote, %error, "inter-node handshake failed"),
                }
            });
        }
    }

    async fn serve_connection(self: Arc<Self>, connection: quinn::Connection) {
        let member = connection.peer_identity().is_some();
        while let Ok((send, recv)) = connection.accept_bi().await {
            let transport = self.clone();
            tokio::spawn(async move {
                if let Err(error) = transport.serve_stream(member, send, recv).await {
                    tracing::debug!(%error, "inter-node request");
                }
            });
        }
    }

    async fn serve_stream(
        &self,
        member: bool,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) -> Result<(), String> {
        let request: PeerRequest = read_frame(&mut recv).await?;
        let reply = match (&request, self.service.get()) {
            (PeerRequest::Join { .. } | PeerRequest::Ping, Some(service)) => {
                service.handle(request).await
            }
            (_, Some(service)) if member => service.handle(request).await,
            (_, Some(_)) => PeerError::Forbidden(
                "this request needs a cluster certificate; join the cluster first".to_string(),
            )
            .into(),
            (_, None) => PeerError::Unavailable("this node is starting".to_string()).into(),
        };
        match reply {
            Reply::Message(response) => write_frame(&mut send, &response).await?,
            Reply::Chunk(bytes) => {
                let size = u32::try_from(bytes.len()).map_err(|e| e.to_string())?;
                write_frame(&mut send, &PeerResponse::Chunk { size }).await?;
                // Handed over as it is: the stream keeps the bytes until they are acknowledged,
                // with no copy into a send buffer.
                let sent = bytes.len() as u64;
                send.write_chunk(bytes).await.map_err(|e| e.to_string())?;
                self.stats
                    .chunk_bytes_sent
                    .fetch_add(sent, Ordering::Relaxed);
                self.stats.chunks_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        send.finish().map_err(|e| e.to_string())?;
        // Wait until the peer has the whole answer (or went away) before the stream is dropped.
        let _ = send.stopped().await;
        Ok(())
    }

    async fn connect(
        &self,
        addr: &str,
        config: quinn::ClientConfig,
    ) -> Result<quinn::Connection, TransferError> {
        let failed = |reason: String| TransferError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let target = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| failed(e.to_string()))?
            .next()
            .ok_or_else(|| failed("the name resolves to no address".to_string()))?;
        self.endpoint
            .connect_with(config, target, NODE_SERVER_NAME)
            .map_err(|e| failed(e.to_string()))?
            .await
            .map_err(|e| failed(e.to_string()))
    }

    /// An open connection to a member at `addr` on `lane`, made (with this node's certificate) if
    /// needed. Requests go on lane 0; chunk fetches take turns on every lane.
    async fn member_connection(
        &self,
        addr: &str,
        lane: usize,
    ) -> Result<quinn::Connection, TransferError> {
        let key = (addr.to_string(), lane);
        let existing = self
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
            .filter(|connection| connection.close_reason().is_none())
            .cloned();
        if let Some(connection) = existing {
            return Ok(connection);
        }
        let config = self
            .client
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or(TransferError::NotAMember)?;
        let connection = self.connect(addr, config).await?;
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key, connection.clone());
        Ok(connection)
    }

    /// Sends one request to a member on `lane` and returns the answer and the stream the rest
    /// arrives on. A connection that turns out to be dead is replaced once.
    async fn request(
        &self,
        addr: &str,
        lane: usize,
        request: &PeerRequest,
    ) -> Result<(PeerResponse, quinn::RecvStream), TransferError> {
        let connection = self.member_connection(addr, lane).await?;
        match exchange(&connection, addr, request).await {
            Err(TransferError::Stream { .. }) if connection.close_reason().is_some() => {
                let fresh = self.member_connection(addr, lane).await?;
                exchange(&fresh, addr, request).await
            }
            other => other,
        }
    }
}

impl PeerNetwork for QuicTransport {
    fn call<'a>(
        &'a self,
        addr: &'a str,
        request: PeerRequest,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<PeerResponse, TransferError>> {
        Box::pin(async move {
            let after = timeout.unwrap_or(DEFAULT_TIMEOUT);
            let (response, _) = tokio::time::timeout(after, self.request(addr, 0, &request))
                .await
                .map_err(|_| TransferError::Timeout {
                    addr: addr.to_string(),
                    after,
                })??;
            check(addr, response)
        })
    }

    fn fetch_chunk<'a>(
        &'a self,
        addr: &'a str,
        chunk: ChunkRef,
    ) -> BoxFuture<'a, Result<Bytes, TransferError>> {
        Box::pin(async move {
            let lane = self.next_lane.fetch_add(1, Ordering::Relaxed) as usize % self.chunk_lanes;
            let fetch = async {
                let (response, mut recv) = self
                    .request(addr, lane, &PeerRequest::FetchChunk(chunk.id))
                    .await?;
                let size = match check(addr, response)? {
                    PeerResponse::Chunk { size } => size as usize,
                    other => return Err(unexpected(addr, &other)),
                };
                let data = read_body(&mut recv, size)
                    .await
                    .map_err(|e| stream_error(addr, e))?;
                self.stats
                    .chunk_bytes_received
                    .fetch_add(size as u64, Ordering::Relaxed);
                self.stats.chunks_received.fetch_add(1, Ordering::Relaxed);
                Ok(data)
            };
            tokio::time::timeout(DEFAULT_TIMEOUT, fetch)
                .await
                .map_err(|_| TransferError::Timeout {
                    addr: addr.to_string(),
                    after: DEFAULT_TIMEOUT,
                })?
        })
    }

    fn round_trip(&self, addr: &str) -> Option<Duration> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&(addr.to_string(), 0))
            .filter(|connection| connection.close_reason().is_none())
            .map(quinn::Connection::rtt)
    }
}

fn stream_error(addr: &str, error: impl std::fmt::Display) -> TransferError {
    TransferError::Stream {
        addr: addr.to_string(),
        reason: error.to_string(),
    }
}

/// The error a response that does not fit the request becomes.
pub fn unexpected(addr: &str, response: &PeerResponse) -> TransferError {
    let kind = format!("{response:?}");
    let kind = kind.split(['(', ' ', '{']).next().unwrap_or_default();
    TransferError::Stream {
        addr: addr.to_string(),
        reason: format!("unexpected answer {kind}"),
    }
}

/// A peer's answer as a result: [`PeerResponse::Failed`] becomes [`TransferError::Peer`].
pub fn check(addr: &str, response: PeerResponse) -> Result<PeerResponse, TransferError> {
    match response {
        PeerResponse::Failed(error) => Err(TransferError::Peer {
            addr: addr.to_string(),
            error,
        }),
        other => Ok(other),
    }
}

async fn exchange(
    connection: &quinn::Connection,
    addr: &str,
    request: &PeerRequest,
) -> Result<(PeerResponse, quinn::RecvStream), TransferError> {
    let (mut send, mut recv) = connection
        .open_bi()
        .await
        .map_err(|e| stream_error(addr, e))?;
    write_frame(&mut send, request)
        .await
        .map_err(|e| stream_error(addr, e))?;
    send.finish().map_err(|e| stream_error(addr, e))?;
    let response = read_frame(&mut recv)
        .await
        .map_err(|e| stream_error(addr, e))?;
    Ok((response, recv))
}

/// Encodes a value the way every inter-node message is encoded.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| e.to_string())
}

/// Decodes a value encoded by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|e| e.to_string())
}

async fn write_frame<T: Serialize>(send: &mut quinn::SendStream, value: &T) -> Result<(), String> {
    let body = encode(value)?;
    let length = u32::try_from(body.len()).map_err(|_| "message too large".to_string())?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&body);
    send.write_chunk(Bytes::from(frame))
        .await
        .map_err(|e| e.to_string())
}

/// The next `size` bytes of `recv`, gathered from the stream's received pieces into one buffer
/// (one copy, no zeroing first).
async fn read_body(recv: &mut quinn::RecvStream, size: usize) -> Result<Bytes, String> {
    let mut data = BytesMut::with_capacity(size);
    while data.len() < size {
        match recv
            .read_chunk(size - data.len(), true)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(piece) => data.extend_from_slice(&piece.bytes),
            None => {
                return Err(format!(
                    "the stream ended after {} of {size} bytes",
                    data.len()
                ));
            }
        }
    }
    Ok(data.freeze())
}

async fn read_frame<T: DeserializeOwned>(recv: &mut quinn::RecvStream) -> Result<T, String> {
    let mut length = [0u8; 4];
    recv.read_exact(&mut length)
        .await
        .map_err(|e| e.to_string())?;
    let length = u32::from_be_bytes(length) as usize;
    if length > MAX_FRAME_BYTES {
        return Err(format!("message of {length} bytes is over the limit"));
    }
    let mut body = vec![0u8; length];
    recv.read_exact(&mut body)
        .await
        .map_err(|e| e.to_string())?;
    decode(&body)
}

#[cfg(test)]
mod tests {
    use super::tls::ClusterIdentity;
    use super::*;

    /// Answers pings and status requests, and serves one chunk.
    struct TestService(Bytes);

    impl PeerService for TestService {
        fn handle(&self, request: PeerRequest) -> BoxFuture<'_, Reply> {
            Box::pin(async move {
                match request {
                    PeerRequest::Ping => Reply::Message(PeerResponse::Pong),
                    PeerRequest::FetchChunk(_) => Reply::Chunk(self.0.clone()),
                    _ => Reply::Message(PeerResponse::Status("member".to_string())),
                }
            })
        }
    }

    fn endpoint(identity: &ClusterIdentity) -> Arc<QuicTransport> {
        let transport = QuicTransport::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        transport
            .serve(
                identity,
                Arc::new(TestService(Bytes::from_static(b"chunk"))),
            )
            .expect("serve");
        transport
    }

    /// A bulk transfer on loopback (MTU 65,536) runs in datagrams larger than an Ethernet frame's,
    /// and stays there: none of its sends is refused by the kernel (which the transport would take
    /// for losses, until black-hole detection brought the path down to 1,200 bytes).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunks_travel_in_large_datagrams() {
        let founder = ClusterIdentity::create_cluster(1).expect("cluster");
        let member = ClusterIdentity::from_grant(founder.grant(2).expect("grant"));
        let chunk = Bytes::from(crate::blob::pseudo_random(4 << 20, 9));
        let server = QuicTransport::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        server
            .serve(&founder, Arc::new(TestService(chunk.clone())))
            .expect("serve");
        let client = endpoint(&member);
        let addr = server.local_addr().expect("addr").to_string();
        let reference = ChunkRef {
            id: arca_protocol::ChunkId(*blake3::hash(&chunk).as_bytes()),
            size: chunk.len() as u32,
        };
        // Let path MTU discovery finish before the bulk of the bytes.
        client.fetch_chunk(&addr, reference).await.expect("chunk");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let fetches = (0..32).map(|_| client.fetch_chunk(&addr, reference));
        for fetched in futures::future::join_all(fetches).await {
            assert_eq!(fetched.expect("chunk"), chunk);
        }
        let connections = client
            .connections
            .lock()
            .expect("connections")
            .values()
            .cloned()
            .collect::<Vec<_>>();
        assert!(!connections.is_empty());
        let (mut bytes, mut datagrams) = (0, 0);
        for connection in connections {
            let received = connection.stats().udp_rx;
            bytes += received.bytes;
            datagrams += received.datagrams;
        }
        let average = bytes / datagrams.max(1);
        assert!(
            average > 1500,
            "{datagrams} datagrams of {average} bytes on average carried {bytes} bytes"
        );
    }

    #[tokio::test]
    async fn members_talk_and_everyone_else_is_refused() {
        let founder = ClusterIdentity::create_cluster(1).expect("cluster");
        let member = ClusterIdentity::from_grant(founder.grant(2).expect("grant"));
        let server = endpoint(&founder);
        let addr = server.local_addr().expect("addr").to_string();

        // A member with a certificate from the cluster CA may ask anything.
        let client = endpoint(&member);
        let status = client.call(&addr, PeerRequest::Status, None).await;
        assert!(matches!(status, Ok(PeerResponse::Status(_))), "{status:?}");
        let chunk = ChunkRef {
            id: arca_protocol::ChunkId([1; 32]),
            size: 5,
        };
        let bytes = client.fetch_chunk(&addr, chunk).await.expect("chunk");
        assert_eq!(&bytes[..], b"chunk");
        assert!(
            client.round_trip(&addr).is_some(),
            "the connection measures its RTT"
        );

        // A node of another cluster cannot even complete the handshake.
        let stranger = endpoint(&ClusterIdentity::create_cluster(1).expect("other cluster"));
        let refused = stranger.call(&addr, PeerRequest::Ping, None).await;
        assert!(
            matches!(refused, Err(TransferError::Connect { .. })),
            "{refused:?}"
        );

        // A node without a certificate (joining) reaches the cluster only if it trusts the right CA,
        // and may only ask to join or ping.
        let joining = QuicTransport::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let fingerprint = founder.ca_fingerprint().expect("fingerprint");
        let pong = joining.join(&addr, fingerprint, PeerRequest::Ping).await;
        assert!(matches!(pong, Ok(PeerResponse::Pong)), "{pong:?}");
        let forbidden = joining.join(&addr, fingerprint, PeerRequest::Status).await;
        assert!(
            matches!(
                forbidden,
                Err(TransferError::Peer {
                    error: PeerError::Forbidden(_),
                    ..
                })
            ),
            "{forbidden:?}"
        );
        let wrong_ca = joining.join(&addr, [0; 32], PeerRequest::Ping).await;
        assert!(
            matches!(wrong_ca, Err(TransferError::Connect { .. })),
            "{wrong_ca:?}"
        );
        // Without credentials it cannot make member connections at all.
        let not_member = joining.call(&addr, PeerRequest::Ping, None).await;
        assert!(
            matches!(not_member, Err(TransferError::NotAMember)),
            "{not_member:?}"
        );
    }
}
