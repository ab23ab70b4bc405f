//! Garbage collection of a node's chunks: `POST /api/v1/gc` and the report it answers.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::ClientError;

/// The body of `POST /api/v1/gc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcRequest {
    /// Count what would be removed, remove nothing.
    pub dry_run: bool,
    /// Unreferenced chunks younger than this many seconds are kept.
    pub grace_seconds: u64,
}

/// What one collection found and did on the node that ran it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// Chunk files listed.
    pub scanned: u64,
    /// Of those, the ones a referenced blob uses.
    pub referenced: u64,
    /// Unreferenced chunks removed (in a dry run: that would have been).
    pub removed: u64,
    /// Their bytes.
    pub removed_bytes: u64,
    /// Unreferenced chunks kept: younger than the grace period, or held by an upload in flight.
    pub kept_in_grace: u64,
    /// Whether nothing was removed on purpose.
    pub dry_run: bool,
}

impl Client {
    /// `POST /api/v1/gc`: runs garbage collection on this node (admin) and answers its report.
    pub async fn run_gc(&self, request: &GcRequest) -> Result<GcReport, ClientError> {
        let url = self.url(&["api", "v1", "gc"])?;
        self.send_json(self.request(Method::POST, url).json(request))
            .await
    }
}
