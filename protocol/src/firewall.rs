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
    /// The advisory id (OSV `id`) when the reason is a known vulnerability. Always serialised (as
    /// `null` when absent): verdicts are stored on versions in the binary Raft encoding, which needs
    /// every field.
    #[serde(default)]
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

/// How bad a vulnerability is. GHSA's `MODERATE` is read as [`Severity::Medium`]; an advisory that
/// says nothing is [`Severity::Unknown`], which a policy maps to a severity of its choosing.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub enum Severity {
    /// The advisory gives no severity (or one Arca cannot read).
    #[default]
    Unknown,
    /// CVSS 0.1–3.9.
    Low,
    /// CVSS 4.0–6.9 (GHSA: MODERATE).
    Medium,
    /// CVSS 7.0–8.9.
    High,
    /// CVSS 9.0–10.0.
    Critical,
}

impl Severity {
    /// The upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not LOW, MEDIUM (MODERATE), HIGH, CRITICAL or UNKNOWN.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown severity {0:?} (expected LOW, MEDIUM, MODERATE, HIGH, CRITICAL or UNKNOWN)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "UNKNOWN" => Ok(Severity::Unknown),
            "LOW" => Ok(Severity::Low),
            "MEDIUM" | "MODERATE" => Ok(Severity::Medium),
            "HIGH" => Ok(Severity::High),
            "CRITICAL" => Ok(Severity::Critical),
            _ => Err(UnknownSeverity(s.to_string())),
        }
    }
}

impl From<Severity> for String {
    fn from(severity: Severity) -> String {
        severity.as_str().to_string()
    }
}

impl TryFrom<String> for Severity {
    type Error = UnknownSeverity;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

/// What a rule does to the versions it objects to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallAction {
    /// The version stays usable; the objection is reported (WARN).
    Warn,
    /// The version is quarantined (BLOCKED).
    #[default]
    Block,
}

impl FirewallAction {
    /// The status a rule with this action gives.
    pub fn status(self) -> FirewallStatus {
        match self {
            FirewallAction::Warn => FirewallStatus::Warn,
            FirewallAction::Block => FirewallStatus::Blocked,
        }
    }
}

impl FromStr for FirewallAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "warn" => Ok(FirewallAction::Warn),
            "block" => Ok(FirewallAction::Block),
            other => Err(format!("unknown action {other:?} (expected warn or block)")),
        }
    }
}

/// A registry's firewall policy. Every rule is optional; an empty policy allows everything. A
/// version is evaluated when it enters the registry and again whenever the policy or the
/// vulnerability database changes; see `docs/api.md` ("Dependency firewall").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallPolicy {
    /// Known vulnerabilities at or above a severity.
    #[serde(default)]
    pub vulnerabilities: Option<VulnerabilityRule>,
    /// SPDX license allow and deny lists.
    #[serde(default)]
    pub licenses: Option<LicenseRule>,
    /// Versions matching one of these patterns get the pattern's action.
    #[serde(default)]
    pub deny: Vec<DenyPattern>,
    /// Versions matching one of these patterns are allowed whatever the other rules say.
    #[serde(default)]
    pub allow: Vec<VersionPattern>,
    /// Versions that entered the registry less than this long ago.
    #[serde(default)]
    pub age: Option<AgeRule>,
    /// `key:value` pairs: a version whose metadata (or whose package's metadata) has one of them is
    /// allowed whatever the other rules say (e.g. `approved:true`).
    #[serde(default)]
    pub exemptions: Vec<String>,
}

/// The vulnerability rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnerabilityRule {
    /// Advisories at or above this severity object.
    pub min_severity: Severity,
    /// What they do.
    #[serde(default)]
    pub action: FirewallAction,
    /// The severity an advisory without one is taken to have.
    #[serde(default = "unknown_default")]
    pub unknown_severity: Severity,
}

fn unknown_default() -> Severity {
    Severity::High
}

/// The license rule. Licenses are SPDX identifiers compared case-insensitively; an expression
/// `A OR B` passes when one side passes, `A AND B` when both do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseRule {
    /// When not empty, a license outside this list objects.
    #[serde(default)]
    pub allow: Vec<String>,
    /// A license on this list objects.
    #[serde(default)]
    pub deny: Vec<String>,
    /// What an objection does.
    #[serde(default)]
    pub action: FirewallAction,
    /// What a version without a known license gets: `None` lets it pass.
    #[serde(default)]
    pub unknown: Option<FirewallAction>,
}

/// Package and version globs (`*`, `?`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionPattern {
    /// Glob over package names.
    pub package: String,
    /// Glob over versions (an exact version is a glob without wildcards).
    #[serde(default = "any")]
    pub version: String,
}

/// A deny pattern and what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenyPattern {
    /// Glob over package names.
    pub package: String,
    /// Glob over versions.
    #[serde(default = "any")]
    pub version: String,
    /// What a match does.
    #[serde(default)]
    pub action: FirewallAction,
}

fn any() -> String {
    "*".to_string()
}

/// The age rule: versions younger than `min_days` (since they entered the registry) object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgeRule {
    /// The minimum age, in days.
    pub min_days: u32,
    /// What a younger version gets.
    #[serde(default)]
    pub action: FirewallAction,
}

/// A version's firewall state, kept on the version by the state machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionFirewall {
    /// The last evaluation against the policy and the vulnerability database (without the age
    /// rule, which depends on the time of asking).
    pub verdict: FirewallVerdict,
    /// Quarantined by hand.
    #[serde(default)]
    pub quarantine: Option<QuarantineRecord>,
    /// Released by an admin: overrides a BLOCKED verdict (and a quarantine by hand) until an
    /// evaluation gives a verdict with other reasons.
    #[serde(default)]
    pub release: Option<QuarantineRecord>,
}

/// Who quarantined or released a version, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// The caller.
    pub by: String,
    /// Unix milliseconds.
    pub at: u64,
    /// Why.
    pub reason: String,
}

/// `POST /api/v1/registries/{r}/packages/{p}/versions/{v}/quarantine`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRequest {
    /// Why (shown to clients whose downloads are refused).
    #[serde(default)]
    pub reason: String,
}

/// `GET /api/v1/registries/{r}/firewall/explain?package=&version=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallExplanation {
    /// The registry.
    pub registry: String,
    /// The package.
    pub package: String,
    /// The version.
    pub version: String,
    /// Whether the registry holds the version (if not, it was evaluated on the fly).
    pub stored: bool,
    /// The verdict in force now (the stored one with the age rule applied).
    pub verdict: FirewallVerdict,
    /// Quarantined by hand.
    pub quarantine: Option<QuarantineRecord>,
    /// Released by an admin.
    pub release: Option<QuarantineRecord>,
    /// Whether downloads, copies and promotions are refused, and why.
    pub blocked: Option<String>,
}

/// One OSV advisory (<https://ossf.github.io/osv-schema/>), the fields Arca reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsvAdvisory {
    /// `GHSA-...`, `PYSEC-...`, `CVE-...`.
    pub id: String,
    /// RFC 3339.
    pub modified: String,
    /// RFC 3339.
    #[serde(default)]
    pub published: Option<String>,
    /// RFC 3339; a withdrawn advisory matches nothing.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Other ids of the same vulnerability.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One line.
    #[serde(default)]
    pub summary: Option<String>,
    /// Scores.
    #[serde(default)]
    pub severity: Vec<OsvSeverity>,
    /// Affected packages.
    #[serde(default)]
    pub affected: Vec<OsvAffected>,
    /// Database-specific fields; GHSA's `severity` is read.
    #[serde(default)]
    pub database_specific: Option<OsvDatabaseSpecific>,
}

/// `severity[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsvSeverity {
    /// `CVSS_V3`, `CVSS_V4`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector.
    pub score: String,
}

/// `database_specific`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsvDatabaseSpecific {
    /// GHSA: LOW, MODERATE, HIGH, CRITICAL.
    #[serde(default)]
    pub severity: Option<String>,
}

/// `affected[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsvAffected {
    /// The package.
    pub package: OsvPackage,
    /// Version ranges.
    #[serde(default)]
    pub ranges: Vec<OsvRange>,
    /// Explicit versions.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Per-package severity (GHSA puts none here; others may).
    #[serde(default)]
    pub database_specific: Option<OsvDatabaseSpecific>,
}

/// `affected[].package`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsvPackage {
    /// `npm`, `PyPI`, `Maven`, `Go`, `crates.io`, `NuGet`, ...
    pub ecosystem: String,
    /// The package name as the ecosystem spells it.
    pub name: String,
}

/// `affected[].ranges[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsvRange {
    /// `SEMVER`, `ECOSYSTEM` or `GIT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The events, each with one of its fields set.
    #[serde(default)]
    pub events: Vec<OsvEvent>,
}

/// One range event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsvEvent {
    /// The first affected version (`0`: all before).
    #[serde(default)]
    pub introduced: Option<String>,
    /// The first fixed version.
    #[serde(default)]
    pub fixed: Option<String>,
    /// The last affected version.
    #[serde(default)]
    pub last_affected: Option<String>,
    /// An upper bound (GIT ranges).
    #[serde(default)]
    pub limit: Option<String>,
}

/// `POST /api/v1/firewall/db`: advisories to add to (or replace in) the vulnerability database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisoryImport {
    /// The advisories.
    pub advisories: Vec<OsvAdvisory>,
}

/// The answer to [`AdvisoryImport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisoryImportReport {
    /// Advisories that were new.
    pub added: u64,
    /// Advisories that replaced an older copy.
    pub replaced: u64,
    /// Advisories skipped because the database holds a copy modified as late or later.
    pub unchanged: u64,
    /// Versions whose verdict changed status on re-evaluation.
    pub reevaluated: u64,
}

/// `GET /api/v1/firewall/db`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisoryDbStatus {
    /// Advisories held (withdrawn ones included).
    pub advisories: u64,
    /// Withdrawn advisories.
    pub withdrawn: u64,
    /// Advisories per ecosystem (an advisory affecting two ecosystems counts in both).
    pub ecosystems: std::collections::BTreeMap<String, u64>,
    /// When the last import was applied, unix milliseconds.
    pub last_import_at: Option<u64>,
}

/// An advisory as the vulnerability database keeps it: what matching and reporting need, the
/// severity already decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    /// The OSV id.
    pub id: String,
    /// `modified`, unix milliseconds.
    pub modified: u64,
    /// Withdrawn advisories match nothing.
    pub withdrawn: bool,
    /// Other ids.
    pub aliases: Vec<String>,
    /// One line.
    pub summary: String,
    /// Decided from GHSA's `database_specific.severity`, else the CVSS vector.
    pub severity: Severity,
    /// The CVSS base score, when a vector gave one.
    pub score: Option<String>,
    /// Affected packages.
    pub affected: Vec<AffectedPackage>,
}

/// A package an advisory affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedPackage {
    /// The OSV ecosystem.
    pub ecosystem: String,
    /// The package name.
    pub name: String,
    /// Explicit versions.
    pub versions: Vec<String>,
    /// `SEMVER` and `ECOSYSTEM` ranges (GIT ranges are dropped).
    pub ranges: Vec<AffectedRange>,
}

/// A version range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedRange {
    /// True for `SEMVER`, false for `ECOSYSTEM`.
    pub semver: bool,
    /// The events.
    pub events: Vec<RangeEvent>,
}

/// One event of a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeEvent {
    /// Affected from this version on (`0`: from the start).
    Introduced(String),
    /// Not affected from this version on.
    Fixed(String),
    /// Not affected after this version.
    LastAffected(String),
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

    #[test]
    fn severities_read_ghsa_names_and_order() {
        assert_eq!("MODERATE".parse::<Severity>().ok(), Some(Severity::Medium));
        assert_eq!(
            "critical".parse::<Severity>().ok(),
            Some(Severity::Critical)
        );
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Unknown);
        assert!("severe".parse::<Severity>().is_err());
        let json = serde_json::to_string(&Severity::Medium).unwrap_or_default();
        assert_eq!(json, "\"MEDIUM\"");
    }
}
