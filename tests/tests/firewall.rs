//! The dependency firewall end to end: real OSV advisories (tests/fixtures/osv: GHSA-35jh-r3h4-6jhm
//! for lodash < 4.17.21, GHSA-j8r2-6x86-q33q for requests >= 2.3.0, < 2.31.0, GHSA-v845-jxx5-vc9f
//! for urllib3) imported with `arca fw db import`; locally built packages with those names published
//! to local registries; the real npm and pip refused the vulnerable versions with a readable error
//! naming the advisory and installing the fixed ones; re-evaluation after the import and after a
//! policy change; license rules over the licenses npm and PyPI uploads record; explain, check,
//! quarantine and release over HTTP and the CLI; copies of refused versions refused; exemptions by
//! metadata, deny and allow patterns; a remote registry that refuses to fetch a vulnerable version;
//! OCI manifests of a quarantined image denied in the OCI error format; and the audit trail.
//!
//! npm and pip run with temporary homes and caches and only ever talk to the node on 127.0.0.1. A
//! missing client fails the test under `CI=true` and skips it loudly elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::clients::{ClientOutput, build_wheel, require_client, run_command};
use arca_tests::{TestNode, http};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/osv")
}

async fn create_registry(node: &TestNode, name: &str, package_type: &str) -> Result<()> {
    create_registry_body(node, json!({ "name": name, "package_type": package_type })).await
}

async fn create_registry_body(node: &TestNode, body: Value) -> Result<()> {
    let response = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    ensure!(
        status == StatusCode::CREATED,
        "creating {body}: {status} {}",
        response.text().await?
    );
    Ok(())
}

/// Sends `method path` with the admin token and an optional JSON body; returns status and JSON.
async fn api(
    node: &TestNode,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<(StatusCode, Value)> {
    let mut request = http()
        .request(method, format!("{}/api/v1/{path}", node.url))
        .bearer_auth(&node.admin_token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

async fn set_policy(node: &TestNode, registry: &str, policy: Value) -> Result<()> {
    let (status, body) = api(
        node,
        reqwest::Method::PUT,
        &format!("registries/{registry}/firewall-policy"),
        Some(policy),
    )
    .await?;
    ensure!(
        status == StatusCode::OK,
        "setting the policy: {status} {body}"
    );
    Ok(())
}

async fn explain(node: &TestNode, registry: &str, package: &str, version: &str) -> Result<Value> {
    let (status, body) = api(
        node,
        reqwest::Method::GET,
        &format!("registries/{registry}/firewall/explain?package={package}&version={version}"),
        None,
    )
    .await?;
    ensure!(status == StatusCode::OK, "explain: {status} {body}");
    Ok(body)
}

fn cli_ok(node: &TestNode, args: &[&str]) -> Result<String> {
    let output = node.cli(args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    ensure!(
        output.status.success(),
        "arca {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}

// ---------------------------------------------------------------------------------------------------
// npm

/// `npm pack` of a package `name@version` with `license`; returns the tarball.
fn npm_pack(npm: &Path, home: &Path, name: &str, version: &str, license: &str) -> Result<PathBuf> {
    let dir = home.join(format!("{name}-{version}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("package.json"),
        serde_json::to_string_pretty(&json!({
            "name": name, "version": version, "license": license, "main": "index.js"
        }))?,
    )?;
    std::fs::write(
        dir.join("index.js"),
        format!("module.exports = '{version}';\n"),
    )?;
    let mut command = npm_command(npm, home, &dir, None);
    command.args(["pack", "--pack-destination", &home.display().to_string()]);
    run_command(&mut command)?.ok()?;
    Ok(home.join(format!("{name}-{version}.tgz")))
}

fn npm_command(npm: &Path, home: &Path, dir: &Path, registry: Option<&str>) -> Command {
    let mut command = Command::new(npm);
    for (key, _) in std::env::vars_os() {
        let lower = key.to_string_lossy().to_ascii_lowercase();
        if lower.starts_with("npm_config_") || lower == "npm_token" {
            command.env_remove(&key);
        }
    }
    command
        .current_dir(dir)
        .env("HOME", home)
        .env("npm_config_userconfig", home.join(".npmrc"))
        .env("npm_config_globalconfig", home.join("global-npmrc"))
        .env("npm_config_cache", home.join("cache"))
        .env("npm_config_update_notifier", "false")
        .env("npm_config_audit", "false")
        .env("npm_config_fund", "false");
    if let Some(registry) = registry {
        command.env("npm_config_registry", registry);
    }
    command
}

/// A fresh project directory (an empty `package.json`) in `home`, with npm's `.npmrc` pointing at
/// registry `registry` of `node` with the admin token; answers the project and the registry URL.
fn npm_project(
    home: &Path,
    node: &TestNode,
    registry: &str,
) -> Result<(tempfile::TempDir, String)> {
    let registry = format!("{}/npm/{registry}/", node.url);
    let host_path = registry.trim_start_matches("http:");
    std::fs::write(
        home.join(".npmrc"),
        format!(
            "registry={registry}\n{host_path}:_authToken={}\n",
            node.admin_token
        ),
    )?;
    let project = tempfile::tempdir_in(home)?;
    std::fs::write(
        project.path().join("package.json"),
        r#"{"name":"app","version":"1.0.0"}"#,
    )?;
    Ok((project, registry))
}

/// `npm install name@version` into a fresh project.
fn npm_install(npm: &Path, home: &Path, node: &TestNode, spec: &str) -> Result<ClientOutput> {
    let (project, registry) = npm_project(home, node, "npm-fw")?;
    let mut command = npm_command(npm, home, project.path(), Some(&registry));
    // A fresh cache: the tarball must come from the node, not from what `npm pack` cached.
    command
        .env("npm_config_cache", project.path().join(".cache"))
        .args(["install", "--no-package-lock", spec]);
    run_command(&mut command)
}

/// `npm audit --json` in a project whose lockfile holds `lodash@version`, installed from registry
/// `npm-audit` of `node`.
fn npm_audit(npm: &Path, home: &Path, node: &TestNode, version: &str) -> Result<(bool, Value)> {
    let (project, registry) = npm_project(home, node, "npm-audit")?;
    let mut install = npm_command(npm, home, project.path(), Some(&registry));
    install.args(["install", &format!("lodash@{version}")]);
    run_command(&mut install)?.ok()?;
    let mut audit = npm_command(npm, home, project.path(), Some(&registry));
    audit.args(["audit", "--json"]);
    let output = run_command(&mut audit)?;
    let report: Value = serde_json::from_str(&output.stdout)
        .with_context(|| format!("npm audit --json: {}", output.describe()))?;
    Ok((output.success, report))
}

// ---------------------------------------------------------------------------------------------------
// Python

fn pip_install(python: &Path, home: &Path, node: &TestNode, spec: &str) -> Result<ClientOutput> {
    let index = format!(
        "http://__token__:{}@{}/pypi/py-fw/simple/",
        node.admin_token,
        node.url.trim_start_matches("http://")
    );
    let target = tempfile::tempdir_in(home)?;
    let mut command = Command::new(python);
    command
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_NO_INPUT", "1")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring");
    for name in [
        "PIP_FIND_LINKS",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
    ] {
        command.env_remove(name);
    }
    command
        .args([
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--no-deps",
            "--index-url",
            &index,
        ])
        .args(["--target", &target.path().display().to_string(), spec]);
    run_command(&mut command)
}

// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn npm_and_pip_refuse_vulnerable_versions_and_install_fixed_ones() -> Result<()> {
    let test = "npm_and_pip_refuse_vulnerable_versions_and_install_fixed_ones";
    let (Some(npm), Some(python)) = (require_client("npm", test), require_client("python3", test))
    else {
        return Ok(());
    };
    let node = TestNode::start()?;
    let client = node.admin_client();
    let home = tempfile::tempdir()?;
    create_registry(&node, "npm-fw", "NPM").await?;
    create_registry(&node, "py-fw", "PYPI").await?;
    set_policy(
        &node,
        "npm-fw",
        json!({"vulnerabilities": {"min_severity": "HIGH", "action": "block"}}),
    )
    .await?;
    set_policy(
        &node,
        "py-fw",
        json!({"vulnerabilities": {"min_severity": "MEDIUM", "action": "block"}}),
    )
    .await?;

    // Published before the database knows anything: allowed.
    for version in ["4.17.20", "4.17.21"] {
        let tarball = npm_pack(&npm, home.path(), "lodash", version, "MIT")?;
        client.push_npm("npm-fw", &tarball, "latest").await?;
    }
    for version in ["2.30.0", "2.31.0"] {
        let wheel = build_wheel(&python, home.path(), "requests", version)?;
        client.push_python("py-fw", &wheel).await?;
    }
    let before = explain(&node, "npm-fw", "lodash", "4.17.20").await?;
    assert_eq!(before["verdict"]["status"], "ALLOWED", "{before}");

    // The import re-evaluates what it names.
    let imported = cli_ok(
        &node,
        &[
            "--format",
            "json",
            "fw",
            "db",
            "import",
            &fixtures().display().to_string(),
        ],
    )?;
    let report: Value = serde_json::from_str(&imported)?;
    assert_eq!(report["added"], 3, "{report}");
    assert_eq!(
        report["reevaluated"], 2,
        "lodash 4.17.20 and requests 2.30.0: {report}"
    );
    let status = cli_ok(&node, &["--format", "json", "fw", "db", "status"])?;
    let status: Value = serde_json::from_str(&status)?;
    assert_eq!(
        status["ecosystems"],
        json!({"npm": 1, "PyPI": 2}),
        "{status}"
    );
    // Importing the same again changes nothing.
    let again: Value = serde_json::from_str(&cli_ok(
        &node,
        &[
            "--format",
            "json",
            "fw",
            "db",
            "import",
            &fixtures().display().to_string(),
        ],
    )?)?;
    assert_eq!(
        (again["added"].clone(), again["unchanged"].clone()),
        (json!(0), json!(3))
    );

    let blocked = explain(&node, "npm-fw", "lodash", "4.17.20").await?;
    assert_eq!(blocked["verdict"]["status"], "BLOCKED", "{blocked}");
    assert_eq!(
        blocked["verdict"]["reasons"][0]["advisory"],
        "GHSA-35jh-r3h4-6jhm"
    );
    assert!(
        blocked["verdict"]["scan_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("scan-"))
    );

    // The real npm: the vulnerable version fails with the advisory in its error, the fix installs.
    let refused = npm_install(&npm, home.path(), &node, "lodash@4.17.20")?.failed()?;
    assert!(
        refused.all().contains("GHSA-35jh-r3h4-6jhm"),
        "{}",
        refused.describe()
    );
    assert!(refused.all().contains("403"), "{}", refused.describe());
    npm_install(&npm, home.path(), &node, "lodash@4.17.21")?.ok()?;

    // The real pip: the same.
    let refused = pip_install(&python, home.path(), &node, "requests==2.30.0")?.failed()?;
    assert!(refused.all().contains("403"), "{}", refused.describe());
    pip_install(&python, home.path(), &node, "requests==2.31.0")?.ok()?;
    // The refusal names the advisory in PyPI's error text too.
    let file = http()
        .get(format!(
            "{}/pypi/py-fw/files/requests/2.30.0/requests-2.30.0-py3-none-any.whl",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    assert_eq!(file.status(), StatusCode::FORBIDDEN);
    assert!(file.text().await?.contains("GHSA-j8r2-6x86-q33q"));

    // A policy change re-evaluates: only CRITICAL blocks now, so requests 2.30.0 installs.
    set_policy(
        &node,
        "py-fw",
        json!({"vulnerabilities": {"min_severity": "CRITICAL"}}),
    )
    .await?;
    let relaxed = explain(&node, "py-fw", "requests", "2.30.0").await?;
    assert_eq!(relaxed["verdict"]["status"], "ALLOWED", "{relaxed}");
    pip_install(&python, home.path(), &node, "requests==2.30.0")?.ok()?;

    // PyPI's `License` field, recorded at upload, meets a deny list.
    set_policy(
        &node,
        "py-fw",
        json!({"licenses": {"deny": ["apache-2.0"]}}),
    )
    .await?;
    let denied = explain(&node, "py-fw", "requests", "2.31.0").await?;
    assert_eq!(denied["verdict"]["status"], "BLOCKED", "{denied}");
    assert_eq!(denied["verdict"]["reasons"][0]["rule"], "license");
    pip_install(&python, home.path(), &node, "requests==2.31.0")?.failed()?;

    // An admin release lets npm install the blocked version; the audit trail keeps why.
    cli_ok(
        &node,
        &[
            "artifact",
            "release",
            "--registry",
            "npm-fw",
            "--package",
            "lodash",
            "--version",
            "4.17.20",
            "--reason",
            "risk accepted",
        ],
    )?;
    npm_install(&npm, home.path(), &node, "lodash@4.17.20")?.ok()?;
    let explained = cli_ok(
        &node,
        &[
            "registry",
            "fw",
            "explain",
            "--registry",
            "npm-fw",
            "--package",
            "lodash",
            "--version",
            "4.17.20",
        ],
    )?;
    assert!(
        explained.contains("risk accepted") && explained.contains("BLOCKED"),
        "{explained}"
    );
    let (_, audit) = api(&node, reqwest::Method::GET, "audit?limit=1000", None).await?;
    let events = audit["events"].as_array().cloned().unwrap_or_default();
    assert!(
        events.iter().any(|e| e["actor"] == "firewall"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("GHSA-35jh-r3h4-6jhm"))),
        "{audit}"
    );
    assert!(
        events.iter().any(|e| e["detail"]
            .as_str()
            .is_some_and(|d| d.contains("release lodash@4.17.20: risk accepted"))),
        "{audit}"
    );

    // The license recorded at publish (npm's package.json `license`) meets the license rule.
    set_policy(
        &node,
        "npm-fw",
        json!({"licenses": {"allow": ["Apache-2.0"], "action": "warn"}}),
    )
    .await?;
    let licensed = explain(&node, "npm-fw", "lodash", "4.17.21").await?;
    assert_eq!(licensed["verdict"]["status"], "WARN", "{licensed}");
    assert_eq!(licensed["verdict"]["reasons"][0]["rule"], "license");
    assert!(
        licensed["verdict"]["reasons"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("MIT"))
    );

    // A remote registry evaluates what it does not hold before fetching it: the vulnerable tarball
    // is refused and never recorded, the fixed one is fetched, recorded and evaluated.
    create_registry_body(
        &node,
        json!({"name": "npm-remote", "package_type": "NPM", "kind": "remote",
               "upstream": {"url": format!("{}/npm/npm-fw", node.url), "username": "admin",
                            "password": node.admin_token, "metadata_ttl_seconds": 1}}),
    )
    .await?;
    set_policy(
        &node,
        "npm-remote",
        json!({"vulnerabilities": {"min_severity": "HIGH"}}),
    )
    .await?;
    let tarball = |version: &str| {
        http()
            .get(format!(
                "{}/npm/npm-remote/lodash/-/lodash-{version}.tgz",
                node.url
            ))
            .bearer_auth(&node.admin_token)
            .send()
    };
    let refused = tarball("4.17.20").await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await?;
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("GHSA-35jh-r3h4-6jhm")),
        "{body}"
    );
    assert_eq!(
        explain(&node, "npm-remote", "lodash", "4.17.20").await?["stored"],
        false
    );
    assert_eq!(tarball("4.17.21").await?.status(), StatusCode::OK);
    let cached = explain(&node, "npm-remote", "lodash", "4.17.21").await?;
    assert_eq!(
        (
            cached["stored"].clone(),
            cached["verdict"]["status"].clone()
        ),
        (json!(true), json!("ALLOWED"))
    );
    Ok(())
}

async fn push_generic(node: &TestNode, registry: &str, path: &str) -> Result<()> {
    let response = http()
        .put(format!("{}/generic/{registry}/{path}", node.url))
        .bearer_auth(&node.admin_token)
        .body(path.to_string())
        .send()
        .await?;
    ensure!(
        response.status() == StatusCode::CREATED,
        "push {path}: {}",
        response.status()
    );
    Ok(())
}

async fn download_status(
    node: &TestNode,
    registry: &str,
    path: &str,
) -> Result<(StatusCode, String)> {
    let response = http()
        .get(format!("{}/generic/{registry}/{path}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    Ok((response.status(), response.text().await?))
}

#[tokio::test]
async fn quarantine_release_patterns_exemptions_check_and_copy() -> Result<()> {
    let node = TestNode::start()?;
    create_registry(&node, "files", "GENERIC").await?;
    create_registry(&node, "promoted", "GENERIC").await?;
    set_policy(
        &node,
        "files",
        json!({
            "deny": [{"package": "evil-*"}, {"package": "legacy", "version": "1.*", "action": "warn"}],
            "allow": [{"package": "evil-but-vetted", "version": "2.0"}],
            "exemptions": ["approved:true"]
        }),
    )
    .await?;
    push_generic(&node, "files", "evil-tool/1.0/tool.bin").await?;
    push_generic(&node, "files", "evil-but-vetted/2.0/tool.bin").await?;
    push_generic(&node, "files", "legacy/1.5/lib.bin").await?;
    push_generic(&node, "files", "good/1.0/good.bin").await?;

    // Deny blocks, allow overrides, warn only warns.
    let (status, body) = download_status(&node, "files", "evil-tool/1.0/tool.bin").await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let error: Value = serde_json::from_str(&body)?;
    assert_eq!(error["error"]["code"], "BLOCKED");
    assert!(body.contains("deny pattern evil-*"), "{body}");
    assert_eq!(
        download_status(&node, "files", "evil-but-vetted/2.0/tool.bin")
            .await?
            .0,
        StatusCode::OK
    );
    assert_eq!(
        download_status(&node, "files", "legacy/1.5/lib.bin")
            .await?
            .0,
        StatusCode::OK
    );
    assert_eq!(
        explain(&node, "files", "legacy", "1.5").await?["verdict"]["status"],
        "WARN"
    );

    // A copy (promotion) of a blocked version is refused; of a good one, allowed.
    let copy = |package: &'static str, version: &'static str| {
        let node = &node;
        async move {
            api(
                node,
                reqwest::Method::POST,
                &format!("registries/files/packages/{package}/versions/{version}/copy"),
                Some(json!({"destination_registry": "promoted"})),
            )
            .await
        }
    };
    let (status, body) = copy("evil-tool", "1.0").await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(copy("good", "1.0").await?.0, StatusCode::CREATED);

    // The metadata exemption allows it (the metadata change re-evaluates).
    let (status, _) = api(
        &node,
        reqwest::Method::PUT,
        "registries/files/packages/evil-tool/versions/1.0/metadata",
        Some(json!({"metadata": {"approved": "true"}})),
    )
    .await?;
    assert!(status.is_success(), "{status}");
    let exempt = explain(&node, "files", "evil-tool", "1.0").await?;
    assert_eq!(exempt["verdict"]["status"], "ALLOWED", "{exempt}");
    assert_eq!(exempt["verdict"]["reasons"][0]["rule"], "metadata");
    assert_eq!(
        download_status(&node, "files", "evil-tool/1.0/tool.bin")
            .await?
            .0,
        StatusCode::OK
    );

    // Quarantine by hand (CLI), refused everywhere, then released.
    cli_ok(
        &node,
        &[
            "artifact",
            "quarantine",
            "--registry",
            "files",
            "--package",
            "good",
            "--version",
            "1.0",
            "--reason",
            "under review",
        ],
    )?;
    let (status, body) = download_status(&node, "files", "good/1.0/good.bin").await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("under review"), "{body}");
    assert_eq!(copy("good", "1.0").await?.0, StatusCode::FORBIDDEN);
    let explained = cli_ok(
        &node,
        &[
            "--format",
            "json",
            "registry",
            "fw",
            "explain",
            "--registry",
            "files",
            "--package",
            "good",
            "--version",
            "1.0",
        ],
    )?;
    let explained: Value = serde_json::from_str(&explained)?;
    assert_eq!(explained["quarantine"]["reason"], "under review");
    assert!(
        explained["blocked"]
            .as_str()
            .is_some_and(|b| b.contains("under review"))
    );
    let (status, _) = api(
        &node,
        reqwest::Method::DELETE,
        "registries/files/packages/good/versions/1.0/quarantine",
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        download_status(&node, "files", "good/1.0/good.bin")
            .await?
            .0,
        StatusCode::OK
    );

    // Check: stored versions get their verdict, others are evaluated on the fly.
    let (status, checked) = api(
        &node,
        reqwest::Method::POST,
        "registries/files/firewall/check",
        Some(json!({"packages": [{"name": "evil-new", "version": "3.0"}, {"name": "legacy", "version": "1.5"}, {"name": "fine", "version": "1"}]})),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{checked}");
    let statuses: Vec<&str> = checked["results"]
        .as_array()
        .context("results")?
        .iter()
        .filter_map(|r| r["verdict"]["status"].as_str())
        .collect();
    assert_eq!(statuses, ["BLOCKED", "WARN", "ALLOWED"]);
    let unstored = explain(&node, "files", "evil-new", "3.0").await?;
    assert_eq!(unstored["stored"], false);
    assert_eq!(unstored["verdict"]["status"], "BLOCKED");

    // Bad input is refused in Arca's error format.
    let (status, body) = api(
        &node,
        reqwest::Method::PUT,
        "registries/files/firewall-policy",
        Some(json!({"exemptions": ["no-colon"]})),
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api(
        &node,
        reqwest::Method::PUT,
        "registries/files/firewall-policy",
        Some(json!({"vulnerabilities": {"min_severity": "SEVERE"}})),
    )
    .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = api(
        &node,
        reqwest::Method::POST,
        "firewall/db",
        Some(json!({"advisories": [{"id": "X", "modified": "yesterday"}]})),
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("RFC 3339")),
        "{body}"
    );
    let (status, _) = api(
        &node,
        reqwest::Method::POST,
        "registries/files/packages/none/versions/1/quarantine",
        Some(json!({"reason": "x"})),
    )
    .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}

/// `sha256:<hex>` of bytes.
fn oci_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", arca_tests::sha256_hex(bytes))
}

#[tokio::test]
async fn oci_manifests_of_quarantined_versions_are_denied() -> Result<()> {
    let node = TestNode::start()?;
    create_registry(&node, "images", "DOCKER").await?;
    let v2 = |method: reqwest::Method, path: &str| {
        http()
            .request(method, format!("{}/v2/images/app/{path}", node.url))
            .basic_auth("arca", Some(&node.admin_token))
    };
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"layer bytes".to_vec();
    for blob in [&config, &layer] {
        let response = v2(
            reqwest::Method::POST,
            &format!("blobs/uploads/?digest={}", oci_digest(blob)),
        )
        .body(blob.clone())
        .send()
        .await?;
        ensure!(
            response.status() == StatusCode::CREATED,
            "blob: {}",
            response.status()
        );
    }
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": oci_digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": oci_digest(&layer), "size": layer.len()}]
    }))?;
    let digest = oci_digest(&manifest);
    let response = v2(reqwest::Method::PUT, "manifests/v1")
        .header("content-type", media_type)
        .body(manifest)
        .send()
        .await?;
    ensure!(
        response.status() == StatusCode::CREATED,
        "manifest: {}",
        response.status()
    );
    let pull = || {
        v2(reqwest::Method::GET, "manifests/v1")
            .header("accept", media_type)
            .send()
    };
    assert_eq!(pull().await?.status(), StatusCode::OK);

    let quarantine = format!("registries/images/packages/app/versions/{digest}/quarantine");
    let (status, body) = api(
        &node,
        reqwest::Method::POST,
        &quarantine,
        Some(json!({"reason": "CVE triage"})),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let denied = pull().await?;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let error: Value = denied.json().await?;
    assert_eq!(error["errors"][0]["code"], "DENIED", "{error}");
    assert!(
        error["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("CVE triage"))
    );
    let (status, _) = api(&node, reqwest::Method::DELETE, &quarantine, None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pull().await?.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_audit_reports_what_the_firewall_database_holds() -> Result<()> {
    let test = "npm_audit_reports_what_the_firewall_database_holds";
    let Some(npm) = require_client("npm", test) else {
        return Ok(());
    };
    let node = TestNode::start()?;
    let client = node.admin_client();
    let home = tempfile::tempdir()?;
    // No firewall policy: the vulnerable version installs, and the audit says what is wrong with it.
    create_registry(&node, "npm-audit", "NPM").await?;
    for version in ["4.17.20", "4.17.21"] {
        let tarball = npm_pack(&npm, home.path(), "lodash", version, "MIT")?;
        client.push_npm("npm-audit", &tarball, "latest").await?;
    }
    let (clean, report) = npm_audit(&npm, home.path(), &node, "4.17.20")?;
    ensure!(clean, "nothing is known before the import: {report}");
    cli_ok(
        &node,
        &["fw", "db", "import", &fixtures().display().to_string()],
    )?;

    let (clean, report) = npm_audit(&npm, home.path(), &node, "4.17.20")?;
    ensure!(!clean, "npm audit exits non-zero: {report}");
    let lodash = &report["vulnerabilities"]["lodash"];
    assert_eq!(lodash["severity"], "high", "{report}");
    assert_eq!(lodash["via"][0]["range"], "<4.17.21", "{report}");
    // npm matched the range against the packument: of the versions there, 4.17.20 is vulnerable.
    assert_eq!(lodash["range"], "4.17.20", "{report}");
    assert_eq!(
        lodash["via"][0]["url"], "https://osv.dev/vulnerability/GHSA-35jh-r3h4-6jhm",
        "{report}"
    );
    assert_eq!(lodash["via"][0]["title"], "Command Injection in lodash");
    // npm found the fix (4.17.21) in the registry's packument.
    assert_eq!(lodash["fixAvailable"], true, "{report}");
    assert_eq!(report["metadata"]["vulnerabilities"]["high"], 1, "{report}");

    let (clean, report) = npm_audit(&npm, home.path(), &node, "4.17.21")?;
    ensure!(clean, "the fixed version audits clean: {report}");
    assert_eq!(report["metadata"]["vulnerabilities"]["total"], 0);

    // Bad input is refused in npm's error format.
    let malformed = http()
        .post(format!(
            "{}/npm/npm-audit/-/npm/v1/security/advisories/bulk",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .header("content-encoding", "gzip")
        .body("not gzip")
        .send()
        .await?;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let error: Value = malformed.json().await?;
    assert!(
        error["error"].as_str().is_some_and(|e| e.contains("gzip")),
        "{error}"
    );
    let anonymous = http()
        .post(format!(
            "{}/npm/npm-audit/-/npm/v1/security/advisories/bulk",
            node.url
        ))
        .json(&json!({"lodash": ["4.17.20"]}))
        .send()
        .await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}
