//! Search over every registry the caller may read: `GET /api/v1/search`.

use reqwest::Method;

use crate::client::Client;
use crate::error::ClientError;

pub use arca_protocol::api::{SearchHit, SearchQuery, SearchResults};

impl Client {
    /// `GET /api/v1/search`: packages matching `query`, best first.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResults, ClientError> {
        let mut url = self.url(&["api", "v1", "search"])?;
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("q", &query.q);
            if let Some(registry) = &query.registry {
                pairs.append_pair("registry", registry);
            }
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
            if let Some(offset) = query.offset {
                pairs.append_pair("offset", &offset.to_string());
            }
        }
        self.send_json(self.request(Method::GET, url)).await
    }
}
