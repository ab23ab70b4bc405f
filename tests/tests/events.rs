//! The event stream (`GET /api/v1/events`, `arca events`): pushes, deletions, quarantine and release
//! as CloudEvents in the order they were applied, a cursor that resumes where the last answer
//! stopped, only the registries a caller may read, and long polling that answers as soon as a
//! change is applied.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use arca_tests::{TestNode, http};
use serde_json::{Value, json};

async fn events(node: &TestNode, token: &str, query: &str) -> Result<Value> {
    node.api_ok(
        token,
        reqwest::Method::GET,
        &format!("/api/v1/events?{query}"),
        None,
    )
    .await
}

/// The (type, subject) of each event.
fn kinds(answer: &Value) -> Vec<(String, String)> {
    answer["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    (
                        e["type"].as_str().unwrap_or("").to_string(),
                        e["subject"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_stream_as_cloud_events_after_a_cursor_to_those_who_may_read_them() -> Result<()> {
    let node = TestNode::start()?;
    let admin = node.admin_token.clone();
    for name in ["one", "two"] {
        node.api_ok(
            &admin,
            reqwest::Method::POST,
            "/api/v1/registries",
            Some(json!({"name": name, "package_type": "GENERIC"})),
        )
        .await?;
    }
    let start = events(&node, &admin, "").await?["next"]
        .as_u64()
        .unwrap_or(0);
    node.push_generic("one", "a/1/a.bin").await?;
    node.push_generic("two", "b/1/b.bin").await?;
    node.api_ok(
        &admin,
        reqwest::Method::DELETE,
        "/api/v1/registries/one/packages/a/versions/1",
        None,
    )
    .await?;
    node.api_ok(
        &admin,
        reqwest::Method::POST,
        "/api/v1/registries/two/packages/b/versions/1/quarantine",
        Some(json!({"reason": "under review"})),
    )
    .await?;
    node.api_ok(
        &admin,
        reqwest::Method::DELETE,
        "/api/v1/registries/two/packages/b/versions/1/quarantine",
        None,
    )
    .await?;

    let all = events(&node, &admin, &format!("after={start}")).await?;
    let expected: Vec<(String, String)> = [
        ("io.arca.artifact.pushed", "/generic/one/a/1/a.bin"),
        ("io.arca.artifact.pushed", "/generic/two/b/1/b.bin"),
        (
            "io.arca.artifact.deleted",
            "/api/v1/registries/one/packages/a/versions/1",
        ),
        (
            "io.arca.artifact.quarantined",
            "/api/v1/registries/two/packages/b/versions/1/quarantine",
        ),
        (
            "io.arca.artifact.released",
            "/api/v1/registries/two/packages/b/versions/1/quarantine",
        ),
    ]
    .iter()
    .map(|(kind, subject)| (kind.to_string(), subject.to_string()))
    .collect();
    ensure!(kinds(&all) == expected, "admin's events: {all:#}");
    let first = &all["events"][0];
    ensure!(
        first["specversion"] == "1.0" && first["source"] == "/registries/one",
        "{first}"
    );
    ensure!(
        first["data"]["actor"].is_string()
            && first["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{first}"
    );

    // The cursor: nothing after the last one; a page of two goes on where it stopped.
    let next = all["next"].as_u64().unwrap_or(0);
    ensure!(kinds(&events(&node, &admin, &format!("after={next}")).await?).is_empty());
    let page = events(&node, &admin, &format!("after={start}&limit=2")).await?;
    ensure!(kinds(&page) == expected[..2], "first page: {page:#}");
    let rest = events(&node, &admin, &format!("after={}&limit=10", page["next"])).await?;
    ensure!(kinds(&rest) == expected[2..], "second page: {rest:#}");

    // A viewer of registry two sees two's events only, and no admin changes.
    let token = node
        .api_ok(
            &admin,
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "two-reader", "scopes": [{"role": "viewer", "registry": "two"}]})),
        )
        .await?["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let seen = events(&node, &token, "").await?;
    ensure!(
        !kinds(&seen).is_empty()
            && seen["events"]
                .as_array()
                .is_some_and(|events| events.iter().all(|e| e["source"] == "/registries/two")),
        "the viewer of two: {seen:#}"
    );
    let anonymous = http()
        .get(format!("{}/api/v1/events", node.url))
        .send()
        .await?;
    ensure!(anonymous.status().as_u16() == 401);

    // A long poll answers as soon as the next change is applied.
    let latest = events(&node, &admin, "").await?["next"]
        .as_u64()
        .unwrap_or(0);
    let started = Instant::now();
    let waiting = format!("after={latest}&wait_seconds=20");
    let poll = events(&node, &token, &waiting);
    let change = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        node.push_generic("two", "c/1/c.bin").await
    };
    let (polled, pushed) = tokio::join!(poll, change);
    pushed?;
    let polled = polled?;
    ensure!(
        kinds(&polled)
            == [(
                "io.arca.artifact.pushed".to_string(),
                "/generic/two/c/1/c.bin".to_string()
            )],
        "long poll: {polled:#}"
    );
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "the long poll waited {:?}",
        started.elapsed()
    );

    // The CLI prints the same events.
    let output = node.cli(&[
        "--format",
        "json",
        "events",
        "--registry",
        "two",
        "--after",
        &latest.to_string(),
    ]);
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout)?;
    ensure!(
        kinds(&printed) == kinds(&polled),
        "arca events: {printed:#}"
    );
    Ok(())
}

/// Waits until the events after `after` (as `token`, at the node at `url`) hold one of type
/// `kind` whose subject starts with `subject`; all of them.
async fn wait_for_kind(
    url: &str,
    token: &str,
    after: u64,
    (kind, subject): (&str, &str),
) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer: Value = http()
            .get(format!("{url}/api/v1/events?after={after}&limit=1000"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        if kinds(&answer)
            .iter()
            .any(|(k, s)| k == kind && s.starts_with(subject))
        {
            return Ok(answer);
        }
        ensure!(Instant::now() < deadline, "no {kind} event: {answer:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_firewall_verdict_is_an_event() -> Result<()> {
    let node = TestNode::start()?;
    let admin = node.admin_token.clone();
    node.api_ok(
        &admin,
        reqwest::Method::POST,
        "/api/v1/registries",
        Some(json!({"name": "guarded", "package_type": "GENERIC"})),
    )
    .await?;
    node.push_generic("guarded", "evil-tool/1.0/tool.bin")
        .await?;
    let start = events(&node, &admin, "").await?["next"]
        .as_u64()
        .unwrap_or(0);
    // A policy that denies it: the version is evaluated again and is now BLOCKED.
    node.api_ok(
        &admin,
        reqwest::Method::PUT,
        "/api/v1/registries/guarded/firewall-policy",
        Some(json!({"deny": [{"package": "evil-*"}]})),
    )
    .await?;
    let answer = wait_for_kind(&node.url, &admin, start, ("io.arca.firewall.verdict", "")).await?;
    let verdict = answer["events"]
        .as_array()
        .and_then(|events| {
            events
                .iter()
                .find(|e| e["type"] == "io.arca.firewall.verdict")
        })
        .cloned()
        .unwrap_or_default();
    ensure!(
        verdict["subject"] == "guarded/evil-tool@1.0"
            && verdict["source"] == "/registries/guarded"
            && verdict["data"]["result"] == 403
            && verdict["data"]["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("BLOCKED")),
        "{verdict:#}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_that_has_copied_what_it_had_to_is_an_event() -> Result<()> {
    use arca_tests::cluster::{TestCluster, create_registry, put};
    let cluster = TestCluster::start(&["a", "b"]).await?;
    create_registry(&cluster, "files", "GENERIC").await?;
    let token = cluster.admin_token().to_string();
    let start: Value = http()
        .get(format!("{}/api/v1/events", cluster.url(0)))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let start = start["next"].as_u64().unwrap_or(0);
    // Large enough to be stored as chunks (small files live inline in the metadata).
    let bytes = arca_tests::pseudo_random_bytes(256 * 1024, 7);
    ensure!(put(&cluster, 0, "files", "tool/1.0/tool.bin", bytes).await? == 201);
    let answer = wait_for_kind(
        cluster.url(0),
        &token,
        start,
        ("io.arca.replication.completed", "/cluster/sites/b/"),
    )
    .await?;
    let seen = kinds(&answer);
    let pushed = seen
        .iter()
        .position(|(kind, _)| kind == "io.arca.artifact.pushed");
    let copied = seen.iter().position(|(kind, subject)| {
        kind == "io.arca.replication.completed" && subject.starts_with("/cluster/sites/b/")
    });
    ensure!(
        matches!((pushed, copied), (Some(p), Some(c)) if p < c),
        "site b's catch-up comes after the push: {seen:?}"
    );
    Ok(())
}
