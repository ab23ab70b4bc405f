//! Blocking a package with the dependency firewall, as a test does it: a registry policy that
//! blocks HIGH vulnerabilities, and an OSV advisory (critical, CVSS 9.8) naming the package,
//! imported with `arca fw db import`.

use anyhow::{Context, Result, ensure};
use serde_json::json;

use crate::{TestNode, http};

/// Makes `registry` block versions of `package` before `fixed` in OSV `ecosystem`, by importing
/// advisory `id` (an `ECOSYSTEM` range from `0` to `fixed`).
pub async fn block_before(
    node: &TestNode,
    registry: &str,
    id: &str,
    (ecosystem, package, fixed): (&str, &str, &str),
) -> Result<()> {
    let policy = http()
        .put(format!(
            "{}/api/v1/registries/{registry}/firewall-policy",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "vulnerabilities": { "min_severity": "HIGH", "action": "block" } }))
        .send()
        .await?;
    ensure!(policy.status().is_success(), "{}", policy.status());
    let advisories = tempfile::tempdir()?;
    std::fs::write(
        advisories.path().join("advisory.json"),
        serde_json::to_vec(&json!({
            "id": id,
            "modified": "2099-01-02T00:00:00Z",
            "published": "2099-01-01T00:00:00Z",
            "summary": format!("{package} before {fixed} is vulnerable"),
            "severity": [{ "type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" }],
            "affected": [{
                "package": { "ecosystem": ecosystem, "name": package },
                "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "fixed": fixed }] }],
            }],
        }))?,
    )?;
    let imported = node.cli(&[
        "fw",
        "db",
        "import",
        advisories.path().to_str().context("a UTF-8 path")?,
    ]);
    ensure!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    Ok(())
}
