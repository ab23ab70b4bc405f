//! The dependency firewall, client side: `POST /api/v1/registries/{registry}/firewall/check`, which
//! evaluates package coordinates (read from a lockfile by [`crate::lockfiles`]) against a registry's
//! firewall policy and vulnerability database.

use reqwest::Method;

use crate::client::Client;
use crate::error::ClientError;

pub use arca_protocol::firewall::{
    FirewallCheck, FirewallCheckRequest, FirewallCheckResponse, FirewallReason, FirewallStatus,
    FirewallVerdict, PackageCoordinate,
};

impl Client {
    /// `POST /api/v1/registries/{registry}/firewall/check`: the registry's verdict on each
    /// coordinate, in request order.
    pub async fn firewall_check(
        &self,
        registry: &str,
        request: &FirewallCheckRequest,
    ) -> Result<FirewallCheckResponse, ClientError> {
        let url = self.url(&["api", "v1", "registries", registry, "firewall", "check"])?;
        self.send_json(self.request(Method::POST, url).json(request))
            .await
    }
}
