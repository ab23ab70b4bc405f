//! HTTP to upstream registries: resolving URLs under an upstream, Basic credentials, the Docker
//! registry token handshake (a 401 with `WWW-Authenticate: Bearer realm=...` is answered by fetching a
//! token from the realm and asking again), retries with backoff, and streaming the body into the chunk
//! store while checking its length and digests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arca_protocol::{BlobRef, ChunkRef, Sha256, Upstream};
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use sha1::Digest as _;
use tokio::sync::watch;

use super::ProxyError;
use crate::blob::{BlobWriter, ChunkStore};

/// Attempts per fetch (the first and two retries).
const ATTEMPTS: u32 = 3;
/// Wait before the first retry; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// What to ask the upstream for, and what the fetched bytes must hash to (each digest that is known).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// The `Accept` header to send (for example PEP 691 JSON, or OCI manifest media types).
    pub accept: Option<String>,
    /// sha256.
    pub sha256: Option<Sha256>,
    /// sha512 (npm `integrity`).
    pub sha512: Option<Vec<u8>>,
    /// sha1 (npm `shasum`, Maven `.sha1`).
    pub sha1: Option<Vec<u8>>,
}

/// What has arrived of an object being fetched: its chunks stored so far, in order, and the length
/// the upstream announced.
#[derive(Debug, Clone, Default)]
pub struct Arrival {
    /// The upstream answered with the object (a 2xx status); its bytes are on their way.
    pub started: bool,
    /// Chunks stored so far.
    pub chunks: Vec<ChunkRef>,
    /// The upstream's `Content-Length`.
    pub declared: Option<u64>,
}

/// An object fetched into the chunk store.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its bytes.
    pub blob: BlobRef,
    /// The upstream's `Content-Type` (empty when it sent none).
    pub content_type: String,
    /// The URL it was fetched from (after redirects).
    pub url: String,
}

/// An HTTP client for upstreams, with the bearer tokens registries handed out.
#[derive(Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    tokens: Arc<Mutex<HashMap<String, String>>>,
    /// The node-wide extra CA certificates (PEM), which per-upstream clients trust too.
    extra_roots: Option<Arc<[u8]>>,
    /// Clients that also trust an upstream's own CA bundle, by the bundle's blake3 hash.
    with_ca: Arc<Mutex<HashMap<[u8; 32], reqwest::Client>>>,
}

impl UpstreamClient {
    /// A client that trusts the operating system's certificate store (with `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` when set), the bundled web roots, and the CA certificates in `extra_roots`
    /// (a PEM bundle: a private CA, or the one of a TLS-inspecting proxy).
    pub fn new(extra_roots: Option<&[u8]>) -> Result<UpstreamClient, reqwest::Error> {
        Ok(UpstreamClient {
            http: http_client(&[extra_roots.unwrap_or_default()])?,
            tokens: Arc::default(),
            extra_roots: extra_roots.map(Arc::from),
            with_ca: Arc::default(),
        })
    }

    /// The node-wide HTTP client.
    pub fn http(&self) -> reqwest::Client {
        self.http.clone()
    }

    /// A client trusting what the node-wide one trusts that follows no redirect and gives up on a
    /// request after `timeout`: for posting events to webhooks, where a redirect would turn the
    /// POST into a GET that looks delivered.
    pub fn without_redirects(&self, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
        http_client_builder(&[self.extra_roots.as_deref().unwrap_or_default()])?
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
    }

    /// This client, trusting `upstream_ca` (a PEM bundle, a registry's own setting) too.
    pub fn trusting(&self, upstream_ca: Option<&str>) -> Result<UpstreamClient, ProxyError> {
        let Some(pem) = upstream_ca else {
            return Ok(self.clone());
        };
        let key = *blake3::hash(pem.as_bytes()).as_bytes();
        let mut clients = self.with_ca.lock().unwrap_or_else(|p| p.into_inner());
        let http = match clients.get(&key) {
            Some(http) => http.clone(),
            None => {
                let node_wide = self.extra_roots.as_deref().unwrap_or_default();
                let http = http_client(&[node_wide, pem.as_bytes()]).map_err(|error| {
                    ProxyError::Tls(format!("the upstream's CA certificates: {error}"))
                })?;
                clients.insert(key, http.clone());
                http
            }
        };
        Ok(UpstreamClient {
            http,
            ..self.clone()
        })
    }
}

/// A client trusting the system's store, the bundled web roots and the CA certificates in each of
/// `bundles` (PEM).
fn http_client(bundles: &[&[u8]]) -> Result<reqwest::Client, reqwest::Error> {
    http_client_builder(bundles)?.build()
}

/// The builder of [`http_client`].
fn http_client_builder(bundles: &[&[u8]]) -> Result<reqwest::ClientBuilder, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(30))
        .user_agent(concat!("arca/", env!("CARGO_PKG_VERSION")));
    for pem in bundles.iter().filter(|pem| !pem.is_empty()) {
        for certificate in reqwest::Certificate::from_pem_bundle(pem)? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder)
}

/// True for a rustls error, also inside (nested) I/O errors, which hide what they wrap from
/// `source()`.
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    error
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .is_some_and(|inner| is_tls(inner))
}

/// What went wrong with a request to an upstream, with every cause (reqwest's own message names
/// none: "error sending request for url"); a refused TLS certificate is [`ProxyError::Tls`], which
/// no retry mends.
fn request_error(context: &str, error: &reqwest::Error) -> ProxyError {
    let message = format!("{context}{}", crate::frontend::with_causes(error));
    if crate::frontend::causes(error).skip(1).any(is_tls) {
        ProxyError::Tls(message)
    } else {
        ProxyError::Upstream(message)
    }
}

/// `path` under the upstream's base URL, or `path` itself when it is an absolute http(s) URL.
pub fn resolve(base: &str, path: &str) -> Result<String, ProxyError> {
    if path.starts_with("http://") || path.starts_with("https://") {
        return Ok(path.to_string());
    }
    let base = base.trim_end_matches('/');
    let path = path.trim_start_matches('/');
    let url = format!("{base}/{path}");
    reqwest::Url::parse(&url)
        .map(|_| url)
        .map_err(|e| ProxyError::Upstream(format!("bad upstream URL: {e}")))
}

/// `Bearer realm="...",service="...",scope="..."` as a token URL.
fn token_url(challenge: &str) -> Option<String> {
    let params = challenge.strip_prefix("Bearer ")?;
    let mut realm = None;
    let mut query = Vec::new();
    for part in params.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        let value = value.trim_matches('"');
        match key {
            "realm" => realm = Some(value.to_string()),
            "service" | "scope" => query.push((key.to_string(), value.to_string())),
            _ => {}
        }
    }
    let mut url = reqwest::Url::parse(&realm?).ok()?;
    url.query_pairs_mut().extend_pairs(query);
    Some(url.to_string())
}

impl UpstreamClient {
    /// Fetches `url` into `chunks`, publishing each stored chunk to `arrival`, and retrying what may
    /// succeed on another try — unless bytes were already published (readers have them).
    pub async fn fetch(
        &self,
        upstream: &Upstream,
        url: &str,
        expected: Expected,
        chunks: Arc<ChunkStore>,
        limit: u64,
        arrival: Arc<watch::Sender<Arrival>>,
    ) -> Result<Fetched, ProxyError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let result = self
                .fetch_once(
                    upstream,
                    url,
                    &expected,
                    chunks.clone(),
                    limit,
                    arrival.clone(),
                )
                .await;
            let published = !arrival.borrow().chunks.is_empty();
            match result {
                Err(ProxyError::Upstream(reason)) if attempt < ATTEMPTS && !published => {
                    tracing::debug!(url, attempt, reason, "retrying an upstream fetch");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn send(
        &self,
        upstream: &Upstream,
        url: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, ProxyError> {
        // Credentials go only to the upstream itself, never to other hosts its documents link to
        // (pypi.org's files live on files.pythonhosted.org).
        let origin = |text: &str| {
            reqwest::Url::parse(text).ok().map(|u| {
                (
                    u.scheme().to_string(),
                    u.host_str().map(str::to_string),
                    u.port_or_known_default(),
                )
            })
        };
        let same_origin = origin(url).is_some() && origin(url) == origin(&upstream.url);
        let request = |bearer: Option<String>| {
            let mut request = self.http.get(url);
            if let Some(accept) = accept {
                request = request.header(reqwest::header::ACCEPT, accept);
            }
            if !same_origin {
                return request;
            }
            match (bearer, &upstream.username) {
                (Some(token), _) => request = request.bearer_auth(token),
                (None, Some(user)) => {
                    request = request.basic_auth(user, upstream.password.as_ref())
                }
                (None, None) => {}
            }
            request
        };
        let cached_token = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&upstream.url)
            .cloned();
        let response = request(cached_token)
            .send()
            .await
            .map_err(|e| request_error("", &e))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let Some(token_url) = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(token_url)
        else {
            return Ok(response);
        };
        let token = self.token(upstream, &token_url).await?;
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(upstream.url.clone(), token.clone());
        request(Some(token))
            .send()
            .await
            .map_err(|e| request_error("", &e))
    }

    /// A bearer token from a registry's token endpoint (with Basic credentials when configured).
    async fn token(&self, upstream: &Upstream, url: &str) -> Result<String, ProxyError> {
        let mut request = self.http.get(url);
        if let Some(user) = &upstream.username {
            request = request.basic_auth(user, upstream.password.as_ref());
        }
        let response = request
            .send()
            .await
            .map_err(|e| request_error("token endpoint: ", &e))?;
        if !response.status().is_success() {
            return Err(ProxyError::Denied(format!(
                "token endpoint answered {}",
                response.status()
            )));
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| ProxyError::Upstream(format!("token endpoint: {e}")))?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| ProxyError::Upstream("the token endpoint sent no token".to_string()))
    }

    async fn fetch_once(
        &self,
        upstream: &Upstream,
        url: &str,
        expected: &Expected,
        chunks: Arc<ChunkStore>,
        limit: u64,
        arrival: Arc<watch::Sender<Arrival>>,
    ) -> Result<Fetched, ProxyError> {
        let response = self.send(upstream, url, expected.accept.as_deref()).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Err(ProxyError::NotFound(url.to_string()));
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ProxyError::Denied(url.to_string()));
        }
        if !status.is_success() {
            return Err(ProxyError::Upstream(format!("{url} answered {status}")));
        }
        let content_type = header(response.headers(), CONTENT_TYPE.as_str());
        // After redirects: relative links in the document resolve against where it really came from.
        let final_url = response.url().to_string();
        let declared = response.content_length();
        if declared.is_some_and(|length| length > limit) {
            return Err(ProxyError::Upstream(format!(
                "{url} is larger than {limit} bytes"
            )));
        }
        arrival.send_modify(|arrival| {
            arrival.started = true;
            arrival.declared = declared;
        });
        let publish = arrival.clone();
        let mut writer = BlobWriter::with_progress(
            chunks,
            Arc::new(move |chunk| publish.send_modify(|arrival| arrival.chunks.push(chunk))),
        );
        let mut sha512 = sha2::Sha512::new();
        let mut sha1 = sha1::Sha1::new();
        let mut body = response.bytes_stream();
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| ProxyError::Upstream(format!("reading {url}: {e}")))?;
            if expected.sha512.is_some() {
                sha512.update(&piece);
            }
            if expected.sha1.is_some() {
                sha1.update(&piece);
            }
            writer
                .write(&piece)
                .await
                .map_err(|e| ProxyError::Upstream(e.to_string()))?;
            if writer.size() > limit {
                return Err(ProxyError::Upstream(format!(
                    "{url} is larger than {limit} bytes"
                )));
            }
        }
        let received = writer.size();
        if let Some(declared) = declared
            && declared != received
        {
            return Err(ProxyError::Upstream(format!(
                "{url}: truncated ({received} of {declared} bytes)"
            )));
        }
        let blob = writer
            .finish()
            .await
            .map_err(|e| ProxyError::Upstream(e.to_string()))?;
        let mismatch = |algorithm: &str| {
            ProxyError::Upstream(format!("{url}: the {algorithm} digest does not match"))
        };
        if expected.sha256.is_some_and(|sha256| sha256 != blob.sha256) {
            return Err(mismatch("sha256"));
        }
        if expected
            .sha512
            .as_ref()
            .is_some_and(|digest| digest.as_slice() != sha512.finalize().as_slice())
        {
            return Err(mismatch("sha512"));
        }
        if expected
            .sha1
            .as_ref()
            .is_some_and(|digest| digest.as_slice() != sha1.finalize().as_slice())
        {
            return Err(mismatch("sha1"));
        }
        Ok(Fetched {
            blob,
            content_type,
            url: final_url,
        })
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_under_the_upstream_and_challenges_become_token_urls() {
        assert_eq!(
            resolve("https://registry.example/npm/", "/lodash").ok(),
            Some("https://registry.example/npm/lodash".to_string())
        );
        assert_eq!(
            resolve("https://a.example", "https://b.example/x.tgz").ok(),
            Some("https://b.example/x.tgz".to_string())
        );
        let url = token_url(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(
            url.as_deref(),
            Some(
                "https://auth.example/token?service=registry.example&scope=repository%3Alibrary%2Falpine%3Apull"
            )
        );
        assert_eq!(token_url("Basic realm=\"x\""), None);
    }
}
