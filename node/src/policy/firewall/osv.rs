//! Reading OSV advisories (<https://ossf.github.io/osv-schema/>) into the vulnerability database's
//! form: `modified` as unix milliseconds, GIT ranges dropped, and one severity decided — GHSA's
//! `database_specific.severity` (its `MODERATE` is MEDIUM) when present, else the base score of the
//! first CVSS v3 or v4 vector in `severity[]` (computed by RustSec's `cvss` crate), else UNKNOWN.

use std::str::FromStr;
use std::time::UNIX_EPOCH;

use arca_protocol::firewall::{
    Advisory, AffectedPackage, AffectedRange, OsvAdvisory, OsvEvent, RangeEvent, Severity,
};

/// Why an advisory could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OsvError {
    /// The id is empty.
    #[error("an advisory has no id")]
    MissingId,
    /// `modified` (or `withdrawn`) is not an RFC 3339 time.
    #[error("advisory {id}: {field} {value:?} is not an RFC 3339 time")]
    BadTime {
        /// The advisory.
        id: String,
        /// Which field.
        field: &'static str,
        /// What it said.
        value: String,
    },
    /// A range event names no version.
    #[error("advisory {0}: a range event has none of introduced, fixed, last_affected, limit")]
    EmptyEvent(String),
}

/// The advisory in the database's form.
pub fn normalize(osv: &OsvAdvisory) -> Result<Advisory, OsvError> {
    if osv.id.trim().is_empty() {
        return Err(OsvError::MissingId);
    }
    let modified = rfc3339_ms(&osv.id, "modified", &osv.modified)?;
    if let Some(withdrawn) = &osv.withdrawn {
        rfc3339_ms(&osv.id, "withdrawn", withdrawn)?;
    }
    let (severity, score) = severity(osv);
    let mut affected = Vec::new();
    for entry in &osv.affected {
        let mut ranges = Vec::new();
        for range in &entry.ranges {
            let semver = match range.kind.as_str() {
                "SEMVER" => true,
                "ECOSYSTEM" => false,
                _ => continue,
            };
            let mut events = Vec::new();
            for event in &range.events {
                if let Some(event) = range_event(&osv.id, event)? {
                    events.push(event);
                }
            }
            ranges.push(AffectedRange { semver, events });
        }
        affected.push(AffectedPackage {
            ecosystem: entry.package.ecosystem.clone(),
            name: entry.package.name.clone(),
            versions: entry.versions.clone(),
            ranges,
        });
    }
    Ok(Advisory {
        id: osv.id.clone(),
        modified,
        withdrawn: osv.withdrawn.is_some(),
        aliases: osv.aliases.clone(),
        summary: osv.summary.clone().unwrap_or_default(),
        severity,
        score,
        affected,
    })
}

fn range_event(id: &str, event: &OsvEvent) -> Result<Option<RangeEvent>, OsvError> {
    Ok(match event {
        OsvEvent {
            introduced: Some(v),
            ..
        } => Some(RangeEvent::Introduced(v.clone())),
        OsvEvent { fixed: Some(v), .. } => Some(RangeEvent::Fixed(v.clone())),
        OsvEvent {
            last_affected: Some(v),
            ..
        } => Some(RangeEvent::LastAffected(v.clone())),
        // `limit` bounds GIT ranges, which are not matched.
        OsvEvent { limit: Some(_), .. } => None,
        _ => return Err(OsvError::EmptyEvent(id.to_string())),
    })
}

fn rfc3339_ms(id: &str, field: &'static str, value: &str) -> Result<u64, OsvError> {
    humantime::parse_rfc3339_weak(value.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .ok_or_else(|| OsvError::BadTime {
            id: id.to_string(),
            field,
            value: value.to_string(),
        })
}

/// The advisory's severity and, when a CVSS vector decided it or is present, its base score.
pub fn severity(osv: &OsvAdvisory) -> (Severity, Option<String>) {
    let score = osv
        .severity
        .iter()
        .find_map(|s| cvss_score(&s.kind, &s.score));
    let named = osv
        .database_specific
        .iter()
        .chain(
            osv.affected
                .iter()
                .filter_map(|a| a.database_specific.as_ref()),
        )
        .find_map(|d| d.severity.as_deref()?.parse::<Severity>().ok())
        .filter(|s| *s != Severity::Unknown);
    match (named, score) {
        (Some(named), score) => (named, score.map(|(value, _)| format!("{value:.1}"))),
        (None, Some((value, severity))) => (severity, Some(format!("{value:.1}"))),
        (None, None) => (Severity::Unknown, None),
    }
}

/// The base score and severity of a CVSS v3.x or v4.0 vector.
fn cvss_score(kind: &str, vector: &str) -> Option<(f64, Severity)> {
    let (value, severity) = match kind {
        "CVSS_V3" => {
            let base = cvss::v3::Vector::from_str(vector).ok()?;
            let score = base.score();
            (score.value(), score.severity())
        }
        "CVSS_V4" => {
            let v4 = cvss::v4::Vector::from_str(vector).ok()?;
            let score = v4.score();
            (score.clone().value(), score.severity())
        }
        _ => return None,
    };
    let severity = match severity {
        cvss::Severity::None => Severity::Unknown,
        cvss::Severity::Low => Severity::Low,
        cvss::Severity::Medium => Severity::Medium,
        cvss::Severity::High => Severity::High,
        cvss::Severity::Critical => Severity::Critical,
    };
    Some((value, severity))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advisory(json: serde_json::Value) -> OsvAdvisory {
        serde_json::from_value(json).expect("OSV")
    }

    #[test]
    fn ghsa_severity_wins_and_moderate_is_medium() {
        let osv = advisory(serde_json::json!({
            "id": "GHSA-j8r2-6x86-q33q", "modified": "2023-11-08T05:03:05Z",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"}],
            "affected": [], "database_specific": {"severity": "MODERATE"}
        }));
        assert_eq!(severity(&osv), (Severity::Medium, Some("6.1".into())));
    }

    #[test]
    fn cvss_vectors_decide_without_a_named_severity() {
        for (vector, expected, score) in [
            (
                "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H",
                Severity::High,
                "7.2",
            ),
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                Severity::Critical,
                "9.8",
            ),
            (
                "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N",
                Severity::Low,
                "1.8",
            ),
        ] {
            let osv = advisory(serde_json::json!({
                "id": "X", "modified": "2021-01-01T00:00:00Z",
                "severity": [{"type": "CVSS_V3", "score": vector}]
            }));
            assert_eq!(severity(&osv), (expected, Some(score.into())), "{vector}");
        }
        let none = advisory(
            serde_json::json!({"id": "X", "modified": "2021-01-01T00:00:00Z",
            "severity": [{"type": "CVSS_V3", "score": "garbage"}]}),
        );
        assert_eq!(severity(&none), (Severity::Unknown, None));
    }

    #[test]
    fn normalizing_drops_git_ranges_and_reads_times() {
        let osv = advisory(serde_json::json!({
            "id": "GHSA-35jh-r3h4-6jhm", "modified": "2024-03-14T21:31:20.123Z",
            "affected": [{
                "package": {"ecosystem": "npm", "name": "lodash"},
                "ranges": [
                    {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]},
                    {"type": "GIT", "repo": "https://example.invalid/x", "events": [{"introduced": "abc"}, {"limit": "def"}]}
                ]
            }]
        }));
        let normalized = normalize(&osv).expect("normalized");
        assert_eq!(normalized.modified, 1_710_451_880_123);
        assert_eq!(normalized.affected[0].ranges.len(), 1);
        assert!(normalized.affected[0].ranges[0].semver);
        let bad = advisory(serde_json::json!({"id": "X", "modified": "yesterday"}));
        assert!(matches!(normalize(&bad), Err(OsvError::BadTime { .. })));
    }
}
