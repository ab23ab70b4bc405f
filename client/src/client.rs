//! The [`Client`] handle: the server's base URL, the bearer token, and the request plumbing every route
//! shares (URL building with per-segment percent-encoding, authentication, error decoding).

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;

use crate::error::ClientError;

/// A typed client of one Arca node's HTTP API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    /// A client of the node at `server` (`http://host:port`, optionally with a path prefix), sending
    /// `token` as `Authorization: Bearer` when given.
    pub fn new(server: &str, token: Option<String>) -> Result<Client, ClientError> {
        let mut base = Url::parse(server)
            .map_err(|err| ClientError::Invalid(format!("invalid server URL {server:?}: {err}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::Invalid(format!(
                "invalid server URL {server:?}: expected http:// or https://"
            )));
        }
        base.set_query(None);
        base.set_fragment(None);
        base.path_segments_mut()
            .map_err(|()| ClientError::Invalid(format!("invalid server URL {server:?}")))?
            .pop_if_empty();
        let http = reqwest::Client::builder()
            .user_agent(concat!("arca-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Client { http, base, token })
    }

    /// The base URL requests are made against, without a trailing slash.
    pub fn server(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The token sent with every request, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The base URL followed by `segments`, each percent-encoded as one path segment (so a package name
    /// containing `/` stays one segment, as `%2F`). An empty last segment gives a trailing slash.
    pub fn url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::Invalid(format!("server URL {} has no path", self.base)))?
            .extend(segments);
        Ok(url)
    }

    /// A request to `url` carrying the bearer token, if any.
    pub(crate) fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A request to `url` carrying the token as the password of Basic credentials for `user` (how
    /// pip and twine authenticate), if there is a token.
    pub(crate) fn request_basic(&self, method: Method, url: Url, user: &str) -> RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.basic_auth(user, Some(token)),
            None => request,
        }
    }

    /// Sends a request; any non-success status becomes [`ClientError::Api`].
    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let response = request.send().await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(ClientError::from_response(response).await)
        }
    }

    /// Sends a request and decodes its JSON answer.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T, ClientError> {
        Ok(self.send(request).await?.json().await?)
    }
}
