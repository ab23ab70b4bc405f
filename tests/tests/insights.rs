//! Usage insights (`GET /api/v1/insights...`, `arca artifact stats`): downloads counted by version,
//! day, consumer, registry and site at the node that serves them, flushed through Raft without a
//! write per download; a `HEAD` counts nothing and a range only its bytes; figures a caller may not
//! read stay hidden; counts survive SIGKILL once flushed, and a clean stop flushes what is left.

use std::time::Duration;

use anyhow::{Result, ensure};
use arca_tests::cluster::{TestCluster, create_registry, expect_file, file_url, put};
use arca_tests::{TestNode, http};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
/// How often the nodes of these tests flush their counts.
const FLUSH: (&str, &str) = ("ARCA_USAGE_FLUSH_MS", "200");

/// Waits until `token`'s answer at `path` (of the node at `url`) satisfies `done`; the answer.
async fn eventually(
    url: &str,
    token: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let response = http()
            .get(format!("{url}{path}"))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or_default();
        if status.is_success() && done(&answer) {
            return Ok(answer);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{path}: still {status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The figures of `version` in a package's insights.
fn version_figures<'a>(insights: &'a Value, version: &str) -> &'a Value {
    insights["versions"]
        .as_array()
        .and_then(|versions| versions.iter().find(|v| v["version"] == version))
        .unwrap_or(&Value::Null)
}

/// GETs a generic file (`<registry>/<path>`) as `token`, of a range when given; the status.
async fn download(node: &TestNode, token: &str, path: &str, range: Option<&str>) -> Result<u16> {
    let mut request = http()
        .get(format!("{}/generic/{path}", node.url))
        .bearer_auth(token);
    if let Some(range) = range {
        request = request.header("Range", range);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    response.bytes().await?;
    Ok(status)
}

async fn token_for(node: &TestNode, name: &str, role: &str, registry: &str) -> Result<String> {
    let answer = node
        .api_ok(
            &node.admin_token,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": name, "scopes": [{"role": role, "registry": registry}]})),
        )
        .await?;
    Ok(answer["token"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_are_counted_by_version_consumer_day_and_site() -> Result<()> {
    let node = TestNode::start_with(&["--site", "eu-west"], &[FLUSH])?;
    for name in ["files", "other"] {
        node.api_ok(
            &node.admin_token,
            Method::POST,
            "/api/v1/registries",
            Some(json!({"name": name, "package_type": "GENERIC"})),
        )
        .await?;
    }
    node.push_generic("files", "tool/1.0/tool.bin").await?;
    node.push_generic("files", "tool/2.0/tool.bin").await?;
    node.push_generic("other", "hidden/1.0/hidden.bin").await?;
    let size = "bytes of tool/1.0/tool.bin".len() as u64;
    let reader = token_for(&node, "ci-reader", "viewer", "files").await?;

    for _ in 0..3 {
        ensure!(download(&node, &node.admin_token, "files/tool/1.0/tool.bin", None).await? == 200);
    }
    ensure!(download(&node, &reader, "files/tool/1.0/tool.bin", None).await? == 200);
    let refused = download(&node, &reader, "other/hidden/1.0/hidden.bin", None).await?;
    ensure!(refused == 403 || refused == 404, "{refused}");
    // A range is bytes served, not a download; a HEAD is neither.
    ensure!(download(&node, &reader, "files/tool/1.0/tool.bin", Some("bytes=0-4")).await? == 206);
    let head = http()
        .head(format!("{}/generic/files/tool/1.0/tool.bin", node.url))
        .bearer_auth(&reader)
        .send()
        .await?;
    ensure!(head.status() == 200);
    ensure!(
        download(
            &node,
            &node.admin_token,
            "other/hidden/1.0/hidden.bin",
            None
        )
        .await?
            == 200
    );

    let package = "/api/v1/insights/package?registry=files&package=tool&days=7";
    let insights = eventually(&node.url, &node.admin_token, package, |answer| {
        version_figures(answer, "1.0")["recent"]["downloads"] == 4
            && answer["consumers"].as_array().is_some_and(|c| c.len() == 2)
    })
    .await?;
    let one = version_figures(&insights, "1.0");
    ensure!(one["total"]["downloads"] == 4, "{insights:#}");
    ensure!(one["recent"]["bytes"] == 4 * size + 5, "{insights:#}");
    ensure!(one["total"]["last_download_at"].as_u64().is_some());
    let two = version_figures(&insights, "2.0");
    ensure!(
        two["total"]["downloads"] == 0,
        "never downloaded: {insights:#}"
    );
    ensure!(two["total"]["last_download_at"].is_null(), "{insights:#}");
    ensure!(insights["daily"].as_array().map(Vec::len) == Some(1));
    ensure!(insights["daily"][0]["downloads"] == 4, "{insights:#}");
    let consumers = insights["consumers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(
        consumers[0]["downloads"] == 3,
        "most downloads first: {insights:#}"
    );
    ensure!(
        consumers[1]["consumer"] == "token:ci-reader",
        "{insights:#}"
    );
    ensure!(consumers[1]["downloads"] == 1 && consumers[1]["bytes"] == size + 5);
    ensure!(consumers[1]["last_version"] == "1.0");

    // The cluster's figures: per registry and per site; the most downloaded packages.
    let overview = eventually(&node.url, &node.admin_token, "/api/v1/insights", |answer| {
        answer["registries"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
    })
    .await?;
    ensure!(overview["registries"][0]["name"] == "files", "{overview:#}");
    ensure!(overview["registries"][0]["downloads"] == 4, "{overview:#}");
    ensure!(overview["sites"][0]["name"] == "eu-west", "{overview:#}");
    ensure!(overview["sites"][0]["downloads"] == 5, "{overview:#}");
    let top = node
        .api_ok(
            &node.admin_token,
            Method::GET,
            "/api/v1/insights/packages",
            None,
        )
        .await?;
    let top_names: Vec<&str> = top["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["package"].as_str())
        .collect();
    ensure!(top_names == ["tool", "hidden"], "{top:#}");

    // A reader of `files` sees its figures, not other registries', nor who downloaded.
    let seen = node
        .api_ok(&reader, Method::GET, "/api/v1/insights", None)
        .await?;
    ensure!(
        seen["registries"].as_array().map(Vec::len) == Some(1),
        "{seen:#}"
    );
    ensure!(
        seen["sites"].as_array().is_some_and(Vec::is_empty),
        "{seen:#}"
    );
    let top = node
        .api_ok(&reader, Method::GET, "/api/v1/insights/packages", None)
        .await?;
    ensure!(
        top["packages"].as_array().map(Vec::len) == Some(1),
        "{top:#}"
    );
    let theirs = node.api_ok(&reader, Method::GET, package, None).await?;
    ensure!(
        theirs["consumers"].as_array().is_some_and(Vec::is_empty),
        "{theirs:#}"
    );
    let hidden = "/api/v1/insights/package?registry=other&package=hidden";
    let (status, _) = node.api(&reader, Method::GET, hidden, None).await?;
    ensure!(
        status == 403 || status == 404,
        "another registry's package: {status}"
    );
    for (path, why) in [
        ("/api/v1/insights?days=0", "days"),
        ("/api/v1/insights/package?registry=files", "package"),
        ("/api/v1/insights/idle", "registry"),
        ("/api/v1/insights/packages?limit=5000", "limit"),
    ] {
        let (status, answer) = node.api(&node.admin_token, Method::GET, path, None).await?;
        ensure!(status == 400, "{path}: {status} {answer}");
        ensure!(answer.to_string().contains(why), "{path}: {answer}");
    }
    // Nothing here is idle for a day yet.
    let idle = node
        .api_ok(
            &node.admin_token,
            Method::GET,
            "/api/v1/insights/idle?registry=files&days=1",
            None,
        )
        .await?;
    ensure!(
        idle["versions"].as_array().is_some_and(Vec::is_empty),
        "{idle:#}"
    );

    // The CLI.
    let output = node.cli(&[
        "--format",
        "json",
        "artifact",
        "stats",
        "--registry",
        "files",
        "--package",
        "tool",
    ]);
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cli: Value = serde_json::from_slice(&output.stdout)?;
    ensure!(
        version_figures(&cli, "1.0")["recent"]["downloads"] == 4,
        "{cli:#}"
    );
    let output = node.cli(&["artifact", "stats"]);
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success() && text.contains("eu-west") && text.contains("tool"),
        "{text}"
    );
    let output = node.cli(&["artifact", "stats", "--idle"]);
    ensure!(!output.status.success(), "--idle needs --registry");

    // Downloads lift a package in search among those that match as well.
    node.push_generic("files", "alpha-popular/1.0/a.bin")
        .await?;
    node.push_generic("files", "alpha-fresh/1.0/a.bin").await?;
    for _ in 0..9 {
        let path = "files/alpha-popular/1.0/a.bin";
        ensure!(download(&node, &node.admin_token, path, None).await? == 200);
    }
    let search = "/api/v1/search?q=alpha";
    let found = eventually(&node.url, &node.admin_token, search, |answer| {
        let score = |name: &str| {
            answer["hits"]
                .as_array()
                .and_then(|hits| hits.iter().find(|hit| hit["package"] == name))
                .and_then(|hit| hit["score"].as_f64())
        };
        // Ten downloads: ×1.1 (1 + 0.1 × log10 10).
        matches!((score("alpha-popular"), score("alpha-fresh")),
            (Some(popular), Some(fresh)) if popular / fresh > 1.09)
    })
    .await?;
    ensure!(found["hits"][0]["package"] == "alpha-popular", "{found:#}");

    // Metrics count downloads with no per-package labels.
    let downloads = arca_tests::metric(&node.url, "arca_downloads_total", "").await?;
    ensure!(downloads == 14.0, "arca_downloads_total {downloads}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_counts_survive_sigkill_and_a_clean_stop_flushes_the_rest() -> Result<()> {
    let mut node = TestNode::start_with(&[], &[FLUSH])?;
    node.api_ok(
        &node.admin_token,
        Method::POST,
        "/api/v1/registries",
        Some(json!({"name": "files", "package_type": "GENERIC"})),
    )
    .await?;
    node.push_generic("files", "tool/1.0/tool.bin").await?;
    for _ in 0..5 {
        ensure!(download(&node, &node.admin_token, "files/tool/1.0/tool.bin", None).await? == 200);
    }
    let package = "/api/v1/insights/package?registry=files&package=tool";
    eventually(&node.url, &node.admin_token, package, |answer| {
        version_figures(answer, "1.0")["total"]["downloads"] == 5
    })
    .await?;
    node.kill();
    node.restart()?;
    let after = node
        .api_ok(&node.admin_token, Method::GET, package, None)
        .await?;
    ensure!(
        version_figures(&after, "1.0")["total"]["downloads"] == 5,
        "acknowledged counts survive SIGKILL: {after:#}"
    );

    // With a flush a minute away, only a clean stop can save these three.
    node.restart_with(&[], &[("ARCA_USAGE_FLUSH_MS", "60000")])?;
    for _ in 0..3 {
        ensure!(download(&node, &node.admin_token, "files/tool/1.0/tool.bin", None).await? == 200);
    }
    node.stop();
    node.restart()?;
    let after = node
        .api_ok(&node.admin_token, Method::GET, package, None)
        .await?;
    ensure!(
        version_figures(&after, "1.0")["total"]["downloads"] == 8,
        "a clean stop flushes: {after:#}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_counts_what_it_serves_and_the_cluster_adds_them_up() -> Result<()> {
    let cluster = TestCluster::start_with(&["eu", "us"], &[FLUSH]).await?;
    create_registry(&cluster, "files", "GENERIC").await?;
    ensure!(
        put(
            &cluster,
            0,
            "files",
            "tool/1.0/tool.bin",
            b"tool bytes".to_vec()
        )
        .await?
            == 201
    );
    // The check that the file arrived at the second site is its first download there.
    expect_file(&cluster, 1, "files", "tool/1.0/tool.bin", b"tool bytes").await?;
    for (index, times) in [(0, 2), (1, 3)] {
        for _ in 0..times {
            let response = http()
                .get(file_url(&cluster, index, "files", "tool/1.0/tool.bin"))
                .bearer_auth(cluster.admin_token())
                .send()
                .await?;
            ensure!(response.status() == 200);
            response.bytes().await?;
        }
    }
    // Either node answers with everyone's figures.
    for index in [1, 0] {
        let overview = eventually(
            cluster.url(index),
            cluster.admin_token(),
            "/api/v1/insights",
            |answer| {
                let sites = answer["sites"].as_array().cloned().unwrap_or_default();
                sites.len() == 2
                    && sites[0]["name"] == "us"
                    && sites[0]["downloads"] == 4
                    && sites[1]["name"] == "eu"
                    && sites[1]["downloads"] == 2
            },
        )
        .await?;
        ensure!(overview["registries"][0]["downloads"] == 6, "{overview:#}");
    }
    let insights = eventually(
        cluster.url(1),
        cluster.admin_token(),
        "/api/v1/insights/package?registry=files&package=tool",
        |answer| version_figures(answer, "1.0")["total"]["downloads"] == 6,
    )
    .await?;
    ensure!(
        insights["consumers"].as_array().map(Vec::len) == Some(1),
        "{insights:#}"
    );
    Ok(())
}
