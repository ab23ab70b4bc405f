//! Usage figures: `GET /api/v1/insights...`.

use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::ClientError;

pub use arca_protocol::api::{
    ConsumerUsage, DayUsage, IdleVersion, IdleVersions, InsightsQuery, NamedUsage, PackageInsights,
    PackageUsage, TopPackages, UsageFigures, UsageOverview, VersionUsage,
};

impl Client {
    /// `GET /api/v1/insights`: downloads and bytes per registry and per site.
    pub async fn usage_overview(
        &self,
        query: &InsightsQuery,
    ) -> Result<UsageOverview, ClientError> {
        self.insights(None, query).await
    }

    /// `GET /api/v1/insights/packages`: the most downloaded packages.
    pub async fn top_packages(&self, query: &InsightsQuery) -> Result<TopPackages, ClientError> {
        self.insights(Some("packages"), query).await
    }

    /// `GET /api/v1/insights/package`: one package's versions, days and consumers.
    pub async fn package_insights(
        &self,
        query: &InsightsQuery,
    ) -> Result<PackageInsights, ClientError> {
        self.insights(Some("package"), query).await
    }

    /// `GET /api/v1/insights/idle`: versions nobody downloaded for the days asked.
    pub async fn idle_versions(&self, query: &InsightsQuery) -> Result<IdleVersions, ClientError> {
        self.insights(Some("idle"), query).await
    }

    async fn insights<T: DeserializeOwned>(
        &self,
        what: Option<&str>,
        query: &InsightsQuery,
    ) -> Result<T, ClientError> {
        let path: Vec<&str> = ["api", "v1", "insights"].into_iter().chain(what).collect();
        let mut url = self.url(&path)?;
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(registry) = &query.registry {
                pairs.append_pair("registry", registry);
            }
            if let Some(package) = &query.package {
                pairs.append_pair("package", package);
            }
            if let Some(days) = query.days {
                pairs.append_pair("days", &days.to_string());
            }
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
        }
        self.send_json(self.request(Method::GET, url)).await
    }
}
