//! The dependency firewall's administration, client side: a registry's firewall policy
//! (`GET|PUT /api/v1/registries/{registry}/firewall-policy`), why a version has its verdict
//! (`GET .../firewall/explain`), quarantine and release of a version
//! (`POST|DELETE .../packages/{package}/versions/{version}/quarantine`), and the vulnerability
//! database (`POST|GET /api/v1/firewall/db`).

use reqwest::Method;

use crate::client::Client;
use crate::error::ClientError;

pub use arca_protocol::firewall::{
    AdvisoryDbStatus, AdvisoryImport, AdvisoryImportReport, AgeRule, DenyPattern, FirewallAction,
    FirewallExplanation, FirewallPolicy, LicenseRule, OsvAdvisory, QuarantineRecord,
    QuarantineRequest, Severity, VersionPattern, VulnerabilityRule,
};

impl Client {
    /// `GET /api/v1/registries/{registry}/firewall-policy`.
    pub async fn get_firewall_policy(&self, registry: &str) -> Result<FirewallPolicy, ClientError> {
        let url = self.url(&["api", "v1", "registries", registry, "firewall-policy"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `PUT /api/v1/registries/{registry}/firewall-policy` (admin): replaces the policy, re-evaluates
    /// the registry's versions, answers the stored policy.
    pub async fn set_firewall_policy(
        &self,
        registry: &str,
        policy: &FirewallPolicy,
    ) -> Result<FirewallPolicy, ClientError> {
        let url = self.url(&["api", "v1", "registries", registry, "firewall-policy"])?;
        self.send_json(self.request(Method::PUT, url).json(policy))
            .await
    }

    /// `GET /api/v1/registries/{registry}/firewall/explain?package=&version=`.
    pub async fn firewall_explain(
        &self,
        registry: &str,
        package: &str,
        version: &str,
    ) -> Result<FirewallExplanation, ClientError> {
        let mut url = self.url(&["api", "v1", "registries", registry, "firewall", "explain"])?;
        url.query_pairs_mut()
            .append_pair("package", package)
            .append_pair("version", version);
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `POST` (quarantine) or, with `release`, `DELETE` (release)
    /// `/api/v1/registries/{registry}/packages/{package}/versions/{version}/quarantine` (admin).
    pub async fn set_quarantine(
        &self,
        (registry, package, version): (&str, &str, &str),
        reason: &str,
        release: bool,
    ) -> Result<FirewallExplanation, ClientError> {
        let url = self.url(&[
            "api",
            "v1",
            "registries",
            registry,
            "packages",
            package,
            "versions",
            version,
            "quarantine",
        ])?;
        let method = if release {
            Method::DELETE
        } else {
            Method::POST
        };
        let body = QuarantineRequest {
            reason: reason.to_string(),
        };
        self.send_json(self.request(method, url).json(&body)).await
    }

    /// `POST /api/v1/firewall/db` (admin): adds OSV advisories to the vulnerability database.
    pub async fn import_advisories(
        &self,
        advisories: Vec<OsvAdvisory>,
    ) -> Result<AdvisoryImportReport, ClientError> {
        let url = self.url(&["api", "v1", "firewall", "db"])?;
        let body = AdvisoryImport { advisories };
        self.send_json(self.request(Method::POST, url).json(&body))
            .await
    }

    /// `GET /api/v1/firewall/db`: the vulnerability database's counts.
    pub async fn advisory_db_status(&self) -> Result<AdvisoryDbStatus, ClientError> {
        let url = self.url(&["api", "v1", "firewall", "db"])?;
        self.send_json(self.request(Method::GET, url)).await
    }
}
