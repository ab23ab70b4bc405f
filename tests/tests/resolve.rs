//! `GET /api/v1/resolve` and `arca artifact resolve`, what a delivery pipeline asks before it
//! deploys: `latest` (releases over pre-releases), exact versions, ranges, labels (key:value
//! metadata), tags, and versions the quarantine holds back left out; the file URLs it answers
//! download the bytes; a caller without read access learns nothing.

use anyhow::{Result, ensure};
use arca_tests::remote::{create_registry, local_registry};
use arca_tests::{TestNode, http};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn resolve(node: &TestNode, query: &str) -> Result<(StatusCode, Value)> {
    let response = http()
        .get(format!("{}/api/v1/resolve?{query}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn picked(node: &TestNode, query: &str) -> Result<String> {
    let (status, answer) = resolve(node, query).await?;
    ensure!(status == StatusCode::OK, "{query}: {status} {answer}");
    Ok(answer["version"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_picks_the_version_a_pipeline_should_deploy() -> Result<()> {
    let node = TestNode::start()?;
    create_registry(&node, local_registry("builds", "GENERIC")).await?;
    for version in ["1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0"] {
        let put = http()
            .put(format!("{}/generic/builds/app/{version}/app.tar", node.url))
            .bearer_auth(&node.admin_token)
            .body(format!("app {version}"))
            .send()
            .await?;
        ensure!(put.status() == StatusCode::CREATED, "{}", put.status());
    }
    for version in ["1.0.0", "1.1.0"] {
        let labelled = http()
            .put(format!(
                "{}/api/v1/registries/builds/packages/app/versions/{version}/metadata",
                node.url
            ))
            .bearer_auth(&node.admin_token)
            .json(&json!({ "metadata": { "qa": if version == "1.0.0" { "passed" } else { "failed" } } }))
            .send()
            .await?;
        ensure!(labelled.status().is_success(), "{}", labelled.status());
    }
    let base = "registry=builds&package=app";
    ensure!(
        picked(&node, base).await? == "2.0.0",
        "latest is the highest release"
    );
    ensure!(picked(&node, &format!("{base}&version=%5E1.0")).await? == "1.1.0");
    ensure!(
        picked(&node, &format!("{base}&version=%3E%3D1.2.0-rc.1%2C%20%3C2")).await? == "1.2.0-rc.1",
        "a range naming a pre-release picks it"
    );
    ensure!(picked(&node, &format!("{base}&version=1.0.0")).await? == "1.0.0");
    ensure!(picked(&node, &format!("{base}&label=qa:passed")).await? == "1.0.0");
    let (status, _) = resolve(&node, &format!("{base}&version=%5E1.0&label=qa:missing")).await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status}");
    let (status, answer) = resolve(&node, &format!("{base}&version=not%20a%20range!")).await?;
    ensure!(status == StatusCode::BAD_REQUEST, "{status} {answer}");

    // A quarantined version is never what a pipeline gets.
    let quarantined = http()
        .post(format!(
            "{}/api/v1/registries/builds/packages/app/versions/2.0.0/quarantine",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "reason": "CVE under review" }))
        .send()
        .await?;
    ensure!(
        quarantined.status().is_success(),
        "{}",
        quarantined.status()
    );
    ensure!(
        picked(&node, base).await? == "1.1.0",
        "the quarantined 2.0.0 was picked"
    );
    let (status, _) = resolve(&node, &format!("{base}&version=2.0.0")).await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status}");

    // The answer's file URL downloads the bytes, checked against its digest.
    let (_, answer) = resolve(&node, base).await?;
    let file = &answer["files"][0];
    let bytes = http()
        .get(file["url"].as_str().unwrap_or_default())
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .bytes()
        .await?;
    ensure!(bytes.as_ref() == b"app 1.1.0", "{bytes:?}");
    ensure!(file["sha256"] == arca_tests::sha256_hex(&bytes), "{file}");
    let held = http()
        .get(format!(
            "{}/api/v1/registries/builds/packages/app/versions/2.0.0/files/app.tar",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(held.status() == StatusCode::FORBIDDEN, "{}", held.status());

    // The CLI prints the same, as JSON for scripts.
    let output = node.cli(&[
        "--format",
        "json",
        "artifact",
        "resolve",
        "--registry",
        "builds",
        "--package",
        "app",
        "--version",
        "^1.0",
        "--label",
        "qa:passed",
    ]);
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout)?;
    ensure!(printed["version"] == "1.0.0", "{printed}");

    // An anonymous caller learns nothing about a registry it may not read.
    let anonymous = http()
        .get(format!("{}/api/v1/resolve?{base}", node.url))
        .send()
        .await?;
    ensure!(
        anonymous.status() == StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.status()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_are_recorded_against_versions() -> Result<()> {
    let node = TestNode::start()?;
    create_registry(&node, local_registry("builds", "GENERIC")).await?;
    let put = http()
        .put(format!("{}/generic/builds/app/1.0.0/app.tar", node.url))
        .bearer_auth(&node.admin_token)
        .body("app")
        .send()
        .await?;
    ensure!(put.status() == StatusCode::CREATED, "{}", put.status());
    let record = |env: &str| {
        node.cli(&[
            "--format",
            "json",
            "artifact",
            "deployment",
            "record",
            "--registry",
            "builds",
            "--package",
            "app",
            "--version",
            "1.0.0",
            "--env",
            env,
        ])
    };
    for env in ["staging", "prod"] {
        let output = record(env);
        ensure!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let refused = record("no such/env");
    ensure!(
        !refused.status.success(),
        "a malformed environment was recorded"
    );
    let listed = node.cli(&[
        "--format",
        "json",
        "artifact",
        "deployment",
        "list",
        "--registry",
        "builds",
        "--package",
        "app",
        "--version",
        "1.0.0",
    ]);
    ensure!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: Value = serde_json::from_slice(&listed.stdout)?;
    let environments: Vec<&str> = listed
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|d| d["environment"].as_str())
                .collect()
        })
        .unwrap_or_default();
    ensure!(environments == ["prod", "staging"], "{listed}");
    ensure!(listed[0]["by"] == "admin", "{listed}");
    // The version shows where it went.
    let version: Value = http()
        .get(format!(
            "{}/api/v1/registries/builds/packages/app/versions/1.0.0",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        version["attributes"]["deployment/prod"].is_string(),
        "{version}"
    );
    let missing = http()
        .post(format!(
            "{}/api/v1/registries/builds/packages/app/versions/9.9.9/deployments",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "environment": "prod" }))
        .send()
        .await?;
    ensure!(
        missing.status() == StatusCode::NOT_FOUND,
        "{}",
        missing.status()
    );
    Ok(())
}
