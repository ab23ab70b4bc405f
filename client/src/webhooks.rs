//! Webhooks: `/api/v1/webhooks` (create, list, show, enable or disable, delete), test deliveries
//! and delivery logs.

use reqwest::Method;

use crate::client::Client;
use crate::error::ClientError;

pub use arca_protocol::api::{DeliveriesQuery, WebhookInfo, WebhookRequest, WebhookUpdate};
pub use arca_protocol::model::WebhookDelivery;

impl Client {
    /// `POST /api/v1/webhooks`: the new webhook (with the secret the node made, when the request
    /// named none).
    pub async fn create_webhook(
        &self,
        request: &WebhookRequest,
    ) -> Result<WebhookInfo, ClientError> {
        let url = self.url(&["api", "v1", "webhooks"])?;
        self.send_json(self.request(Method::POST, url).json(request))
            .await
    }

    /// `GET /api/v1/webhooks`: the webhooks the caller may manage.
    pub async fn list_webhooks(&self) -> Result<Vec<WebhookInfo>, ClientError> {
        let url = self.url(&["api", "v1", "webhooks"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `GET /api/v1/webhooks/{name}`.
    pub async fn webhook(&self, name: &str) -> Result<WebhookInfo, ClientError> {
        let url = self.url(&["api", "v1", "webhooks", name])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `PATCH /api/v1/webhooks/{name}`: enable (forgetting its failures) or disable it.
    pub async fn enable_webhook(
        &self,
        name: &str,
        enabled: bool,
    ) -> Result<WebhookInfo, ClientError> {
        let url = self.url(&["api", "v1", "webhooks", name])?;
        let update = WebhookUpdate { enabled };
        self.send_json(self.request(Method::PATCH, url).json(&update))
            .await
    }

    /// `DELETE /api/v1/webhooks/{name}`.
    pub async fn delete_webhook(&self, name: &str) -> Result<(), ClientError> {
        let url = self.url(&["api", "v1", "webhooks", name])?;
        self.send_empty(Method::DELETE, url).await
    }

    /// `POST /api/v1/webhooks/{name}/test`: how posting a test event went.
    pub async fn test_webhook(&self, name: &str) -> Result<WebhookDelivery, ClientError> {
        let url = self.url(&["api", "v1", "webhooks", name, "test"])?;
        self.send_json(self.request(Method::POST, url)).await
    }

    /// `GET /api/v1/webhooks/{name}/deliveries`: the newest `limit` attempts, newest first.
    pub async fn webhook_deliveries(
        &self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, ClientError> {
        let mut url = self.url(&["api", "v1", "webhooks", name, "deliveries"])?;
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        self.send_json(self.request(Method::GET, url)).await
    }
}
