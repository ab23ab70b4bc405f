//! Garbage collection of a node's chunks: `POST /api/v1/gc` and the report it answers.

use reqwest::Method;

use crate::client::Client;
use crate::error::ClientError;

pub use arca_protocol::api::{GcReport, GcRequest};

impl Client {
    /// `POST /api/v1/gc`: runs garbage collection on this node (admin) and answers its report.
    pub async fn run_gc(&self, request: &GcRequest) -> Result<GcReport, ClientError> {
        let url = self.url(&["api", "v1", "gc"])?;
        self.send_json(self.request(Method::POST, url).json(request))
            .await
    }
}
