//! `npm audit` against Arca: the bulk advisory endpoint (`POST -/npm/v1/security/advisories/bulk`)
//! answered from the dependency firewall's advisory database, so an audit sees exactly the
//! advisories the firewall blocks and warns with.
//!
//! npm sends `{"<package>": ["<version>", ...], ...}` (gzip-encoded) and wants, for each package
//! some advisory affects at one of those versions, the advisories with the npm semver range of the
//! vulnerable versions (`vulnerable_versions`); it matches the installed versions against that range
//! itself and reads the packuments of vulnerable packages from the registry to find fixes.

use std::collections::BTreeMap;
use std::io::Read;

use arca_protocol::Role;
use arca_protocol::firewall::{Advisory, AffectedPackage, RangeEvent, Severity};
use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{Context, NpmError};
use crate::policy::firewall;
use crate::policy::firewall::versions::Ecosystem;

/// The largest audit request read, compressed or not (a lockfile of 100,000 packages fits).
const BULK_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// One advisory as the npm CLI reads it from the bulk endpoint.
#[derive(Debug, Serialize)]
struct BulkAdvisory {
    /// A number, as npm's own registry gives (derived from the OSV id, stable).
    id: u64,
    url: String,
    title: String,
    /// `low`, `moderate`, `high` or `critical`.
    severity: &'static str,
    /// npm semver range syntax (`>=1.0.0 <1.2.3 || 2.0.0`).
    vulnerable_versions: String,
    cwe: Vec<String>,
    cvss: Cvss,
}

#[derive(Debug, Serialize)]
struct Cvss {
    score: f64,
    #[serde(rename = "vectorString")]
    vector_string: Option<String>,
}

/// `POST -/npm/v1/security/advisories/bulk`.
pub async fn bulk(
    ctx: &Context<'_>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, NpmError> {
    ctx.authorize(Role::Read)?;
    let installed = read_request(headers, body).await?;
    let view = ctx.state.meta.view()?;
    let mut report: BTreeMap<String, Vec<BulkAdvisory>> = BTreeMap::new();
    for (package, versions) in installed {
        let advisories = firewall::advisories_for(&view, Some(Ecosystem::Npm), &package)?;
        let mut found: Vec<BulkAdvisory> = Vec::new();
        for version in &versions {
            for (advisory, _fixed) in
                firewall::matching(&advisories, Ecosystem::Npm, &package, version)
            {
                let id = numeric_id(&advisory.id);
                if !found.iter().any(|known| known.id == id) {
                    found.push(bulk_advisory(advisory, &package));
                }
            }
        }
        if !found.is_empty() {
            report.insert(package, found);
        }
    }
    Ok((StatusCode::OK, Json(report)).into_response())
}

/// The request's `{package: [versions]}`, gunzipped when npm compressed it.
async fn read_request(
    headers: &HeaderMap,
    body: Body,
) -> Result<BTreeMap<String, Vec<String>>, NpmError> {
    let too_large = || {
        NpmError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("an audit request is at most {BULK_REQUEST_BYTES} bytes"),
        )
    };
    let bytes = axum::body::to_bytes(body, BULK_REQUEST_BYTES)
        .await
        .map_err(|_| too_large())?;
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("gzip"));
    let json = if gzipped {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .take(BULK_REQUEST_BYTES as u64 + 1)
            .read_to_end(&mut plain)
            .map_err(|e| NpmError::bad_request(format!("the request is not valid gzip: {e}")))?;
        if plain.len() > BULK_REQUEST_BYTES {
            return Err(too_large());
        }
        plain
    } else {
        bytes.to_vec()
    };
    serde_json::from_slice(&json).map_err(|e| {
        NpmError::bad_request(format!(
            "an audit request is {{\"<package>\": [\"<version>\", ...]}}: {e}"
        ))
    })
}

fn bulk_advisory(advisory: &Advisory, package: &str) -> BulkAdvisory {
    let wanted = Ecosystem::Npm.normalize_name(package);
    let ranges: Vec<String> = advisory
        .affected
        .iter()
        .filter(|affected| Ecosystem::parse(&affected.ecosystem) == Some(Ecosystem::Npm))
        .filter(|affected| Ecosystem::Npm.normalize_name(&affected.name) == wanted)
        .flat_map(semver_ranges)
        .collect();
    BulkAdvisory {
        id: numeric_id(&advisory.id),
        url: format!("https://osv.dev/vulnerability/{}", advisory.id),
        title: advisory.summary.clone(),
        severity: match advisory.severity {
            Severity::Low => "low",
            Severity::Medium => "moderate",
            Severity::High => "high",
            Severity::Critical => "critical",
            // npm treats an advisory without a severity as high; say so rather than leave it out.
            Severity::Unknown => "high",
        },
        vulnerable_versions: if ranges.is_empty() {
            "*".to_string()
        } else {
            ranges.join(" || ")
        },
        cwe: Vec::new(),
        cvss: Cvss {
            score: advisory
                .score
                .as_deref()
                .and_then(|score| score.parse().ok())
                .unwrap_or(0.0),
            vector_string: None,
        },
    }
}

/// The vulnerable versions of one affected entry as npm semver ranges: each
/// introduced..fixed/last-affected interval of its ranges, and each version it lists.
fn semver_ranges(affected: &AffectedPackage) -> Vec<String> {
    let mut out: Vec<String> = affected.versions.clone();
    for range in &affected.ranges {
        let mut introduced: Option<&str> = None;
        for event in &range.events {
            match event {
                RangeEvent::Introduced(version) => introduced = Some(version),
                RangeEvent::Fixed(version) => {
                    out.push(interval(introduced.take(), Some(format!("<{version}"))));
                }
                RangeEvent::LastAffected(version) => {
                    out.push(interval(introduced.take(), Some(format!("<={version}"))));
                }
            }
        }
        if let Some(open) = introduced {
            out.push(interval(Some(open), None));
        }
    }
    out
}

fn interval(introduced: Option<&str>, upper: Option<String>) -> String {
    let lower = introduced
        .filter(|version| *version != "0")
        .map(|version| format!(">={version}"));
    match (lower, upper) {
        (Some(lower), Some(upper)) => format!("{lower} {upper}"),
        (Some(bound), None) | (None, Some(bound)) => bound,
        (None, None) => "*".to_string(),
    }
}

/// A stable number for an OSV id (npm's own registry numbers its advisories); below 2^53, so
/// JavaScript reads it exactly.
fn numeric_id(osv_id: &str) -> u64 {
    let hash = blake3::hash(osv_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first) >> 11
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_protocol::firewall::AffectedRange;

    fn affected(versions: &[&str], events: Vec<RangeEvent>) -> AffectedPackage {
        AffectedPackage {
            ecosystem: "npm".to_string(),
            name: "pkg".to_string(),
            versions: versions.iter().map(|v| v.to_string()).collect(),
            ranges: vec![AffectedRange {
                semver: true,
                events,
            }],
        }
    }

    #[test]
    fn osv_ranges_become_npm_semver_ranges() {
        use RangeEvent::*;
        let s = |v: &str| v.to_string();
        assert_eq!(
            semver_ranges(&affected(&[], vec![Introduced(s("0")), Fixed(s("1.2.3"))])),
            vec!["<1.2.3"]
        );
        assert_eq!(
            semver_ranges(&affected(
                &["0.9.1"],
                vec![
                    Introduced(s("1.0.0")),
                    Fixed(s("1.4.0")),
                    Introduced(s("2.0.0")),
                    LastAffected(s("2.1.0")),
                    Introduced(s("3.0.0")),
                ]
            )),
            vec!["0.9.1", ">=1.0.0 <1.4.0", ">=2.0.0 <=2.1.0", ">=3.0.0"]
        );
        assert_eq!(
            semver_ranges(&affected(&[], vec![Introduced(s("0"))])),
            vec!["*"]
        );
    }

    #[test]
    fn numeric_ids_are_stable_and_exact_in_javascript() {
        let id = numeric_id("GHSA-xxxx-yyyy-zzzz");
        assert_eq!(id, numeric_id("GHSA-xxxx-yyyy-zzzz"));
        assert_ne!(id, numeric_id("GHSA-xxxx-yyyy-zzzy"));
        assert!(id < 1 << 53);
    }
}
