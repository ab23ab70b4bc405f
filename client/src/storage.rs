//! Where a node keeps its chunks, and the move of its local chunks into its bucket:
//! `GET /api/v1/storage` and `POST /api/v1/storage/migrate`.

use reqwest::Method;

use crate::client::Client;
use crate::error::ClientError;

pub use arca_protocol::api::{MigrateRequest, MigrationStatus, StorageStatus};

impl Client {
    /// `GET /api/v1/storage` (admin).
    pub async fn storage_status(&self) -> Result<StorageStatus, ClientError> {
        let url = self.url(&["api", "v1", "storage"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `POST /api/v1/storage/migrate` (admin): starts or resumes the move into `to`.
    pub async fn migrate_storage(&self, to: &str) -> Result<StorageStatus, ClientError> {
        let url = self.url(&["api", "v1", "storage", "migrate"])?;
        let request = MigrateRequest { to: to.to_string() };
        self.send_json(self.request(Method::POST, url).json(&request))
            .await
    }
}
