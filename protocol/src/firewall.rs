//! The dependency firewall's vocabulary, shared by the node that evaluates and the CLI that asks: the
//! status an evaluation gives a package version, the reasons behind it, and the body of checking a
//! list of package coordinates against a registry's policy (what `arca registry fw audit` sends after
//! reading a lockfile).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The outcome of evaluating one package version against a registry's firewall policy. Ordered by
/// severity, so the status of several reasons is the greatest of them.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum FirewallStatus {
    /// Nothing in the policy objects.
    #[default]
    Allowed,
    /// A rule objects, but only warns: the version may be used.
    Warn,
    /// A rule blocks the version: it is quarantined and cannot be downloaded, copied or promoted.
    Blocked,
}

impl FirewallStatus {
    /// The upper-case name shown in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FirewallStatus::Allowed => "ALLOWED",
            FirewallStatus::Warn => "WARN",
            FirewallStatus::Blocked => "BLOCKED",
        }
    }
}

impl fmt::Display for FirewallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not ALLOWED, WARN or BLOCKED.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown firewall status {0:?} (expected ALLOWED, WARN or BLOCKED)")]
pub struct UnknownFirewallStatus(pub String);

impl FromStr for FirewallStatus {
    type Err = UnknownFirewallStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "ALLOWED" => Ok(FirewallStatus::Allowed),
            "WARN" => Ok(FirewallStatus::Warn),
            "BLOCKED" => Ok(FirewallStatus::Blocked),
            _ => Err(UnknownFirewallStatus(s.to_string())),
        }
    }
}

/// One rule's objection (or, for an allow rule, its explicit approval).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallReason {
    /// Which rule: `vulnerability`, `license`, `deny`, `allow`, `age`, `metadata`...
    pub rule: String,
    /// What this rule alone says.
    pub status: FirewallStatus,
    /// For humans, e.g. "GHSA-xxxx (HIGH): Prototype pollution in lodash; fixed in 4.17.21".
    pub message: String,
    /// The advisory id (OSV `id`) when the reason is a known vulnerability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory: Option<String>,
}

/// The result of one evaluation of a package version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallVerdict {
    /// The greatest status among the reasons (ALLOWED when there is none).
    pub status: FirewallStatus,
    /// Why.
    #[serde(default)]
    pub reasons: Vec<FirewallReason>,
    /// Identifies this evaluation (shown by `fw explain`, recorded in the audit trail).
    pub scan_id: String,
    /// When it was evaluated, unix milliseconds.
    pub evaluated_at: u64,
}

/// A package version named by a lockfile or manifest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PackageCoordinate {
    /// The package name as its ecosystem spells it (`@scope/name`, `requests`, `group:artifact`).
    pub name: String,
    /// The exact version.
    pub version: String,
}

/// `POST /api/v1/registries/{registry}/firewall/check`: evaluate these coordinates against the
/// registry's policy and the vulnerability database, whether or not the registry holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallCheckRequest {
    /// What to evaluate.
    pub packages: Vec<PackageCoordinate>,
}

/// The answer to [`FirewallCheckRequest`]: one entry per requested coordinate, in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallCheckResponse {
    /// The registry whose policy was applied.
    pub registry: String,
    /// The evaluations.
    pub results: Vec<FirewallCheck>,
}

/// One coordinate's evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallCheck {
    /// The package.
    pub name: String,
    /// The version.
    pub version: String,
    /// What the policy says.
    pub verdict: FirewallVerdict,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_order_and_round_trip() {
        assert!(FirewallStatus::Blocked > FirewallStatus::Warn);
        assert!(FirewallStatus::Warn > FirewallStatus::Allowed);
        for status in [
            FirewallStatus::Allowed,
            FirewallStatus::Warn,
            FirewallStatus::Blocked,
        ] {
            let json = serde_json::to_string(&status).unwrap_or_default();
            assert_eq!(json, format!("\"{status}\""));
            assert_eq!(status.as_str().parse::<FirewallStatus>().ok(), Some(status));
        }
        assert!("maybe".parse::<FirewallStatus>().is_err());
    }
}
