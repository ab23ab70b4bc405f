//! The node's front door: the accept loop every HTTP(S) request comes through, and what a connection
//! may cost before the router sees a request.
//!
//! - TLS handshakes run in each connection's own task, bounded by [`https::HANDSHAKE_TIMEOUT`], so a
//!   silent client holds nothing but itself.
//! - A client has [`ServeOptions::header_read_timeout`] to send each request's head (an idle
//!   keep-alive connection is closed after the same time), so connections that trickle header lines
//!   forever are dropped; a request body that sends nothing for [`ServeOptions::body_idle_timeout`]
//!   ends in an error (the upload is refused as truncated, and its connection and buffers go).
//! - A source address may hold [`ServeOptions::max_connections_per_source`] connections; more are
//!   answered `429 Too Many Requests` and closed. Trusted proxies are exempt (every client behind a
//!   load balancer shares its address).
//! - `X-Forwarded-For` and `X-Forwarded-Proto` are believed only from [`ServeOptions::trusted_proxies`]:
//!   the request reaches the router with `ConnectInfo` holding the client's address (what the audit
//!   trail and login throttling see) and with `X-Forwarded-Proto` set to the scheme the client used,
//!   which is what handlers build absolute URLs from.
//! - [`redirect_router`] is the whole of the optional plain-HTTP port of an HTTPS node: every request
//!   is sent to the same path over HTTPS.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::PublicUrl;
use crate::https;

/// The header that carries the scheme the client used, as handlers read it.
pub const FORWARDED_PROTO: &str = "x-forwarded-proto";
const FORWARDED_FOR: &str = "x-forwarded-for";

/// Where clients reach this node, for the absolute URLs answers carry (append an absolute path):
/// the configured public URL, or else the request's scheme (as the front door resolved it) and
/// `Host`.
pub fn public_origin(public_url: Option<&PublicUrl>, headers: &HeaderMap) -> String {
    if let Some(url) = public_url {
        return url.as_str().to_string();
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = header(FORWARDED_PROTO).unwrap_or("http");
    let host = header(header::HOST.as_str()).unwrap_or("127.0.0.1");
    format!("{scheme}://{host}")
}

/// How connections are accepted and bounded.
#[derive(Clone)]
pub struct ServeOptions {
    /// Serve HTTPS with this configuration (plain HTTP when `None`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The time a client has to send a request's head.
    pub header_read_timeout: Duration,
    /// The longest a request body may send nothing.
    pub body_idle_timeout: Duration,
    /// Connections one source address may hold at once (0: no limit).
    pub max_connections_per_source: usize,
    /// Peers whose `X-Forwarded-For`/`X-Forwarded-Proto` are believed.
    pub trusted_proxies: Arc<[IpNet]>,
}

impl ServeOptions {
    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.trusted_proxies
            .iter()
            .any(|proxy| proxy.contains(&address))
    }
}

/// Serves `app` on `listener` until `stopped` resolves, then waits for the connections still open to
/// finish the requests they are serving.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    stopped: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let (closing, closed) = watch::channel(false);
    let counts = Arc::new(SourceCounts::default());
    let acceptor = options.tls.clone().map(TlsAcceptor::from);
    tokio::pin!(stopped);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Without TCP_NODELAY, Nagle's algorithm meeting delayed ACKs adds ~40 ms to responses
        // whose last segment is small.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "setting TCP_NODELAY");
        }
        let admission = if options.max_connections_per_source == 0 || options.trusts(peer.ip()) {
            Admission::Unlimited
        } else {
            counts.admit(peer.ip(), options.max_connections_per_source)
        };
        let connection = Connection {
            app: app.clone(),
            options: options.clone(),
            peer,
            closed: closed.clone(),
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => connection.serve(tcp, admission).await,
                Some(acceptor) => connection.serve_tls(acceptor, tcp, admission).await,
            }
        });
    }
    drop(closed);
    let _ = closing.send(true);
    closing.closed().await;
    Ok(())
}

/// One accepted connection, and what serving it needs.
struct Connection {
    app: Router,
    options: ServeOptions,
    peer: SocketAddr,
    closed: watch::Receiver<bool>,
}

impl Connection {
    async fn serve_tls(self, acceptor: TlsAcceptor, tcp: TcpStream, admission: Admission) {
        match tokio::time::timeout(https::HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => self.serve(stream, admission).await,
            Ok(Err(error)) => tracing::debug!(peer = %self.peer, %error, "TLS handshake"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn serve<I>(self, io: I, admission: Admission)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            app,
            options,
            peer,
            mut closed,
        } = self;
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let header_read_timeout = options.header_read_timeout;
        let body_idle_timeout = options.body_idle_timeout;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request =
                request.map(|body| Body::new(StallLimitedBody::new(body, body_idle_timeout)));
            let answer = match &admission {
                Admission::Refused => Err(too_many_connections(peer)),
                Admission::Unlimited | Admission::Counted { .. } => {
                    resolve_origin(&mut request, peer, scheme, &options);
                    Ok(app.clone())
                }
            };
            async move {
                match answer {
                    Ok(mut app) => tower_service::Service::call(&mut app, request).await,
                    Err(refusal) => Ok::<_, Infallible>(refusal),
                }
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "serving a connection");
                }
                return;
            }
            _ = closed.changed() => connection.as_mut().graceful_shutdown(),
        }
        if let Err(error) = connection.await {
            tracing::debug!(%peer, %error, "serving a connection");
        }
    }
}

/// A request body that fails when no bytes arrive for `limit` (counted from the first time it is
/// read, so a handler that reads it late is not charged for its own delay).
struct StallLimitedBody {
    inner: Incoming,
    limit: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl StallLimitedBody {
    fn new(inner: Incoming, limit: Duration) -> StallLimitedBody {
        StallLimitedBody {
            inner,
            limit,
            deadline: None,
        }
    }
}

/// A body that sent nothing for too long.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {0:?}")]
struct BodyStalled(Duration);

impl hyper::body::Body for StallLimitedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.deadline = None;
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => {
                let limit = this.limit;
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyStalled(limit).into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a connection may be served, and the count it holds while it is.
enum Admission {
    /// Not counted (no limit, or a trusted proxy).
    Unlimited,
    /// Within its source's limit; the guard gives the place back when the connection ends.
    Counted { _place: SourceGuard },
    /// Over its source's limit: every request on it is answered 429.
    Refused,
}

/// Open connections per source address.
#[derive(Default)]
struct SourceCounts {
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl SourceCounts {
    fn admit(self: &Arc<Self>, source: IpAddr, limit: usize) -> Admission {
        let source = source.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(source).or_default();
        if *count >= limit {
            return Admission::Refused;
        }
        *count += 1;
        Admission::Counted {
            _place: SourceGuard {
                counts: self.clone(),
                source,
            },
        }
    }
}

/// One counted connection of `source`.
struct SourceGuard {
    counts: Arc<SourceCounts>,
    source: IpAddr,
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.source) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.source);
            }
        }
    }
}

fn too_many_connections(peer: SocketAddr) -> Response {
    tracing::debug!(%peer, "over the connection limit of its source address");
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONNECTION, "close"), (header::RETRY_AFTER, "1")],
        "too many connections from this address\n",
    )
        .into_response()
}

/// Gives `request` the client's address as `ConnectInfo` and the scheme the client used as
/// `X-Forwarded-Proto`: the peer's own, unless the peer is a trusted proxy that says otherwise.
fn resolve_origin(
    request: &mut Request,
    peer: SocketAddr,
    scheme: &'static str,
    options: &ServeOptions,
) {
    let (client, scheme) = if options.trusts(peer.ip()) {
        let headers = request.headers();
        let client = forwarded_client(headers, options).map_or(peer, |ip| SocketAddr::new(ip, 0));
        let scheme = first_value(headers, FORWARDED_PROTO)
            .filter(|proto| *proto == "http" || *proto == "https")
            .map_or(
                scheme,
                |proto| if proto == "https" { "https" } else { "http" },
            );
        (client, scheme)
    } else {
        (peer, scheme)
    };
    request
        .headers_mut()
        .insert(FORWARDED_PROTO, HeaderValue::from_static(scheme));
    request.extensions_mut().insert(ConnectInfo(client));
}

/// The client behind a chain of proxies: the right-most `X-Forwarded-For` address that is not a
/// trusted proxy (addresses further left were written by the client or by proxies it chose).
fn forwarded_client(headers: &HeaderMap, options: &ServeOptions) -> Option<IpAddr> {
    let mut chain: Vec<IpAddr> = Vec::new();
    for value in headers.get_all(FORWARDED_FOR) {
        let value = value.to_str().ok()?;
        for address in value.split(',') {
            chain.push(address.trim().parse().ok()?);
        }
    }
    chain
        .iter()
        .rev()
        .find(|address| !options.trusts(**address))
        .or(chain.first())
        .copied()
}

fn first_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(name)?.to_str().ok()?;
    value.split(',').next().map(str::trim)
}

/// The router of the plain-HTTP port of an HTTPS node: `308 Permanent Redirect` to the same host
/// and path over HTTPS on `https_port`, for every method (308 keeps the method and body).
pub fn redirect_router(https_port: u16) -> Router {
    Router::new()
        .fallback(redirect_to_https)
        .with_state(https_port)
}

async fn redirect_to_https(State(https_port): State<u16>, request: Request) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<axum::http::uri::Authority>().ok());
    let Some(host) = host else {
        return (StatusCode::BAD_REQUEST, "a Host header is required\n").into_response();
    };
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let host = host.host();
    let location = if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    };
    match HeaderValue::try_from(location) {
        Ok(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            "the request's path cannot be redirected\n",
        )
            .into_response(),
    }
}
