//! A registry's cleanup policy and its runs: `GET|PUT /api/v1/registries/{registry}/cleanup-policy`
//! and `POST /api/v1/registries/{registry}/cleanup`.

use reqwest::Method;

use crate::client::Client;
use crate::error::ClientError;

pub use arca_protocol::api::{CleanupQuery, CleanupReport, PlannedDeletion, RefusedDeletion};
pub use arca_protocol::model::{CleanupPolicy, CleanupRule};

impl Client {
    /// `GET /api/v1/registries/{registry}/cleanup-policy`: the registry's cleanup policy.
    pub async fn get_cleanup_policy(&self, registry: &str) -> Result<CleanupPolicy, ClientError> {
        let url = self.url(&["api", "v1", "registries", registry, "cleanup-policy"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `PUT /api/v1/registries/{registry}/cleanup-policy`: replaces the registry's cleanup policy
    /// (admin) and answers the stored one.
    pub async fn set_cleanup_policy(
        &self,
        registry: &str,
        policy: &CleanupPolicy,
    ) -> Result<CleanupPolicy, ClientError> {
        let url = self.url(&["api", "v1", "registries", registry, "cleanup-policy"])?;
        self.send_json(self.request(Method::PUT, url).json(policy))
            .await
    }

    /// `POST /api/v1/registries/{registry}/cleanup?dry_run=...`: runs the registry's cleanup policy,
    /// or with `dry_run` lists what it would delete (admin).
    pub async fn run_cleanup(
        &self,
        registry: &str,
        dry_run: bool,
    ) -> Result<CleanupReport, ClientError> {
        let mut url = self.url(&["api", "v1", "registries", registry, "cleanup"])?;
        url.query_pairs_mut()
            .append_pair("dry_run", if dry_run { "true" } else { "false" });
        self.send_json(self.request(Method::POST, url)).await
    }
}
