//! Webhooks: events posted as CloudEvents signed the Standard Webhooks way, checked by a receiver
//! with its own HMAC; in order and complete through errors, a receiver that goes away and comes
//! back, and a node killed with SIGKILL between an event and its delivery; disabled after
//! failing too often and resumed when enabled; filtered by registry and type; managed under RBAC
//! with clear refusals of bad input; the `arca webhook` commands; and in a cluster, delivered by
//! the leader alone and carried on by the next one when it dies.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, ensure};
use arca_tests::cluster::{TestCluster, create_registry as create_cluster_registry, put};
use arca_tests::webhook_receiver::Receiver;
use arca_tests::{TestNode, http};
use reqwest::Method;
use serde_json::{Value, json};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PUSHED: &str = "io.arca.artifact.pushed";
/// Fast retries, so the tests take seconds.
const FAST_RETRIES: [(&str, &str); 2] = [
    ("ARCA_WEBHOOK_RETRY_BASE_MS", "100"),
    ("ARCA_WEBHOOK_RETRY_MAX_MS", "400"),
];
const WAIT: Duration = Duration::from_secs(30);

async fn create_registry(node: &TestNode, name: &str) -> Result<()> {
    node.api_ok(
        &node.admin_token,
        Method::POST,
        "/api/v1/registries",
        Some(json!({"name": name, "package_type": "GENERIC"})),
    )
    .await
    .map(drop)
}

/// The ids of the pushes to `registry` the event stream at `node` shows `token`.
async fn pushed_ids(node: &TestNode, token: &str, registry: &str) -> Result<BTreeSet<u64>> {
    let path = format!("/api/v1/events?registry={registry}&limit=1000");
    let answer = node.api_ok(token, Method::GET, &path, None).await?;
    Ok(answer["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| event["type"] == PUSHED)
        .filter_map(|event| event["id"].as_str()?.parse().ok())
        .collect())
}

async fn webhook(node: &TestNode, name: &str) -> Result<Value> {
    node.api_ok(
        &node.admin_token,
        Method::GET,
        &format!("/api/v1/webhooks/{name}"),
        None,
    )
    .await
}

async fn deliveries(node: &TestNode, name: &str) -> Result<Vec<Value>> {
    let answer = node
        .api_ok(
            &node.admin_token,
            Method::GET,
            &format!("/api/v1/webhooks/{name}/deliveries?limit=1000"),
            None,
        )
        .await?;
    Ok(answer.as_array().cloned().unwrap_or_default())
}

/// True for a logged attempt the receiver took.
fn succeeded(delivery: &Value) -> bool {
    delivery["status"]
        .as_u64()
        .is_some_and(|status| (200..300).contains(&status))
}

/// Waits until `done` holds of webhook `name` and its delivery log (newest first): what a
/// delivery task did is committed moments after its posts.
async fn settled(
    node: &TestNode,
    name: &str,
    done: impl Fn(&Value, &[Value]) -> bool,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let hook = webhook(node, name).await?;
        let log = deliveries(node, name).await?;
        if done(&hook, &log) {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "webhook {name} never got there: {hook} {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the receiver took every push to `registry` the event stream holds, and checks
/// that they first came in the order of their ids.
async fn all_delivered(node: &TestNode, receiver: &Receiver, registry: &str) -> Result<()> {
    let expected = pushed_ids(node, &node.admin_token, registry).await?;
    receiver
        .wait_for(WAIT, |seen| expected.is_subset(&seen.ids_of(PUSHED)))
        .await?;
    let mut first_seen = Vec::new();
    for id in receiver
        .seen()
        .taken
        .iter()
        .filter_map(|e| e["id"].as_str()?.parse::<u64>().ok())
    {
        if !first_seen.contains(&id) {
            first_seen.push(id);
        }
    }
    ensure!(
        first_seen.windows(2).all(|pair| pair[0] < pair[1]),
        "events first came out of order: {first_seen:?}"
    );
    Ok(())
}

fn receiver_ids(receiver: &Receiver) -> BTreeSet<u64> {
    receiver.seen().ids_of(PUSHED)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_complete_and_in_order_through_errors_and_an_outage() -> Result<()> {
    let node = TestNode::start_with(&[], &FAST_RETRIES)?;
    create_registry(&node, "apps").await?;
    let mut receiver = Receiver::start(SECRET).await?;
    let created = node
        .api_ok(
            &node.admin_token,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "ci", "url": receiver.url, "secret": SECRET, "registry": "apps"})),
        )
        .await?;
    ensure!(
        created["secret"].is_null(),
        "a given secret is never echoed: {created}"
    );
    ensure!(created["enabled"] == true, "{created}");

    for n in 0..5 {
        node.push_generic("apps", &format!("app/{n}/app.bin"))
            .await?;
    }
    all_delivered(&node, &receiver, "apps").await?;
    ensure!(receiver_ids(&receiver).len() == 5);

    // Errors: the receiver answers 500 three times; the event comes once it takes it.
    receiver.fail_next(3);
    node.push_generic("apps", "app/5/app.bin").await?;
    all_delivered(&node, &receiver, "apps").await?;
    // Three 500s in the delivery log, then the success.
    settled(&node, "ci", |_, log| {
        log.iter().filter(|d| d["status"] == 500).count() == 3 && succeeded(&log[0])
    })
    .await?;

    // An outage: the receiver goes away while ten pushes happen, then comes back.
    receiver.go_away();
    for n in 6..16 {
        node.push_generic("apps", &format!("app/{n}/app.bin"))
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = webhook(&node, "ci").await?;
    ensure!(
        during["failures"].as_u64() > Some(0),
        "failing while away: {during}"
    );
    receiver.resume().await?;
    all_delivered(&node, &receiver, "apps").await?;
    ensure!(
        receiver_ids(&receiver).len() == 16,
        "{:?}",
        receiver_ids(&receiver)
    );
    ensure!(
        receiver.seen().forged == 0,
        "forged posts: {:?}",
        receiver.seen()
    );
    // Connection failures are logged with their cause; once all is delivered the failures are
    // forgotten and the cursor is past the last push.
    let last = pushed_ids(&node, &node.admin_token, "apps")
        .await?
        .last()
        .copied();
    settled(&node, "ci", |hook, log| {
        let refused = log
            .iter()
            .any(|d| d["status"].is_null() && d["error"].as_str().is_some_and(|e| !e.is_empty()));
        refused
            && hook["failures"] == 0
            && hook["enabled"] == true
            && hook["cursor"].as_u64() >= last
    })
    .await?;

    // A test event is posted now, signed like the rest, and logged.
    let test = node
        .api_ok(
            &node.admin_token,
            Method::POST,
            "/api/v1/webhooks/ci/test",
            None,
        )
        .await?;
    ensure!(
        test["status"]
            .as_u64()
            .is_some_and(|s| (200..300).contains(&s)),
        "{test}"
    );
    ensure!(
        receiver
            .seen()
            .taken
            .iter()
            .any(|e| e["type"] == "io.arca.webhook.test")
    );
    ensure!(deliveries(&node, "ci").await?[0]["event_type"] == "io.arca.webhook.test");

    // Deleted: nothing more is posted.
    node.api_ok(
        &node.admin_token,
        Method::DELETE,
        "/api/v1/webhooks/ci",
        None,
    )
    .await?;
    node.push_generic("apps", "app/16/app.bin").await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure!(receiver_ids(&receiver).len() == 16);
    let (status, _) = node
        .api(&node.admin_token, Method::GET, "/api/v1/webhooks/ci", None)
        .await?;
    ensure!(status == 404, "a deleted webhook: {status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_committed_before_a_sigkill_is_delivered_after_the_restart() -> Result<()> {
    let mut node = TestNode::start_with(&[], &FAST_RETRIES)?;
    create_registry(&node, "apps").await?;
    // Reserved but not listening: every delivery fails until after the crash.
    let mut receiver = Receiver::reserved(SECRET)?;
    node.api_ok(
        &node.admin_token,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({"name": "crash", "url": receiver.url, "secret": SECRET})),
    )
    .await?;
    node.push_generic("apps", "app/1/app.bin").await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    while deliveries(&node, "crash").await?.is_empty() {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no attempt was logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.kill();
    receiver.resume().await?;
    node.restart()?;
    all_delivered(&node, &receiver, "apps").await?;
    ensure!(receiver_ids(&receiver).len() == 1);
    ensure!(receiver.seen().forged == 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_failing_too_often_is_disabled_and_resumes_where_it_stopped_when_enabled()
-> Result<()> {
    let mut settings = FAST_RETRIES.to_vec();
    settings.push(("ARCA_WEBHOOK_DISABLE_AFTER", "8"));
    let node = TestNode::start_with(&[], &settings)?;
    create_registry(&node, "apps").await?;
    let receiver = Receiver::start(SECRET).await?;
    receiver.fail_all(true);
    node.api_ok(
        &node.admin_token,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({"name": "flaky", "url": receiver.url, "secret": SECRET})),
    )
    .await?;
    node.push_generic("apps", "app/1/app.bin").await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    let disabled = loop {
        let hook = webhook(&node, "flaky").await?;
        if hook["enabled"] == false {
            break hook;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "never disabled: {hook}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ensure!(disabled["failures"] == 8, "{disabled}");
    ensure!(
        disabled["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("8 deliveries in a row failed")),
        "{disabled}"
    );
    ensure!(receiver.seen().refused == 8, "{:?}", receiver.seen());
    node.push_generic("apps", "app/2/app.bin").await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    ensure!(
        receiver.seen().refused == 8,
        "a disabled webhook is left alone"
    );

    receiver.fail_all(false);
    let enabled = node
        .api_ok(
            &node.admin_token,
            Method::PATCH,
            "/api/v1/webhooks/flaky",
            Some(json!({"enabled": true})),
        )
        .await?;
    ensure!(
        enabled["failures"] == 0 && enabled["disabled_reason"].is_null(),
        "{enabled}"
    );
    all_delivered(&node, &receiver, "apps").await?;
    ensure!(receiver_ids(&receiver).len() == 2, "both pushes, none lost");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_get_only_the_registry_and_types_they_ask_for() -> Result<()> {
    let node = TestNode::start_with(&[], &FAST_RETRIES)?;
    create_registry(&node, "one").await?;
    create_registry(&node, "two").await?;
    let receiver = Receiver::start(SECRET).await?;
    node.api_ok(
        &node.admin_token,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({
            "name": "two-deletions", "url": receiver.url, "secret": SECRET,
            "registry": "two", "events": ["artifact.deleted", "io.arca.artifact.deployed"],
        })),
    )
    .await?;
    node.push_generic("one", "a/1/a.bin").await?;
    node.push_generic("two", "b/1/b.bin").await?;
    node.api_ok(
        &node.admin_token,
        Method::POST,
        "/api/v1/registries/two/packages/b/versions/1/deployments",
        Some(json!({"environment": "prod"})),
    )
    .await?;
    for registry in ["one", "two"] {
        let package = if registry == "one" { "a" } else { "b" };
        node.api_ok(
            &node.admin_token,
            Method::DELETE,
            &format!("/api/v1/registries/{registry}/packages/{package}/versions/1"),
            None,
        )
        .await?;
    }
    receiver
        .wait_for(WAIT, |seen| seen.taken.len() >= 2)
        .await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let seen: Vec<(String, String)> = receiver
        .seen()
        .taken
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["source"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    ensure!(
        seen == [
            (
                "io.arca.artifact.deployed".to_string(),
                "/registries/two".to_string()
            ),
            (
                "io.arca.artifact.deleted".to_string(),
                "/registries/two".to_string()
            ),
        ],
        "{seen:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_managed_under_rbac_and_bad_input_is_refused() -> Result<()> {
    let node = TestNode::start()?;
    let admin = node.admin_token.clone();
    create_registry(&node, "mine").await?;
    create_registry(&node, "theirs").await?;
    let token = |name: &str, role: &str, registry: &str| json!({"name": name, "scopes": [{"role": role, "registry": registry}]});
    let mut tokens = Vec::new();
    for body in [
        token("mine-admin", "admin", "mine"),
        token("mine-viewer", "viewer", "mine"),
    ] {
        let created = node
            .api_ok(&admin, Method::POST, "/api/v1/tokens", Some(body))
            .await?;
        tokens.push(created["token"].as_str().unwrap_or_default().to_string());
    }
    let (registry_admin, viewer) = (&tokens[0], &tokens[1]);
    let hook = |name: &str, registry: Option<&str>| json!({"name": name, "url": "http://127.0.0.1:9/hook", "registry": registry});

    // A registry's admin manages webhooks of that registry only; the node makes the secret.
    let made = node
        .api_ok(
            registry_admin,
            Method::POST,
            "/api/v1/webhooks",
            Some(hook("mine-hook", Some("mine"))),
        )
        .await?;
    ensure!(
        made["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "the made secret is answered once: {made}"
    );
    ensure!(webhook(&node, "mine-hook").await?["secret"].is_null());
    for (body, expected) in [
        (hook("global", None), 403),
        (hook("theirs-hook", Some("theirs")), 403),
    ] {
        let (status, answer) = node
            .api(registry_admin, Method::POST, "/api/v1/webhooks", Some(body))
            .await?;
        ensure!(status == expected, "{status} {answer}");
    }
    node.api_ok(
        &admin,
        Method::POST,
        "/api/v1/webhooks",
        Some(hook("global", None)),
    )
    .await?;
    let listed = node
        .api_ok(registry_admin, Method::GET, "/api/v1/webhooks", None)
        .await?;
    let names: Vec<&str> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["name"].as_str())
        .collect();
    ensure!(
        names == ["mine-hook"],
        "a registry admin lists its own: {names:?}"
    );
    let all = node
        .api_ok(&admin, Method::GET, "/api/v1/webhooks", None)
        .await?;
    ensure!(all.as_array().map(Vec::len) == Some(2), "{all}");

    // A viewer manages none and is not told they exist.
    let listed = node
        .api_ok(viewer, Method::GET, "/api/v1/webhooks", None)
        .await?;
    ensure!(listed.as_array().is_some_and(Vec::is_empty), "{listed}");
    for (method, path) in [
        (Method::GET, "/api/v1/webhooks/mine-hook"),
        (Method::DELETE, "/api/v1/webhooks/mine-hook"),
        (Method::POST, "/api/v1/webhooks/mine-hook/test"),
        (Method::GET, "/api/v1/webhooks/mine-hook/deliveries"),
    ] {
        let (status, answer) = node.api(viewer, method, path, None).await?;
        ensure!(status == 404, "{path}: {status} {answer}");
    }
    let (status, _) = node
        .api(
            viewer,
            Method::POST,
            "/api/v1/webhooks",
            Some(hook("v", Some("mine"))),
        )
        .await?;
    ensure!(status == 403, "a viewer creates none: {status}");
    let (status, _) = node.api("", Method::GET, "/api/v1/webhooks", None).await?;
    ensure!(status == 401, "anonymous: {status}");

    // Bad input: a clear 400 (or 409, 404) in the API's error format, and nothing created.
    let cases = [
        (
            json!({"name": "x", "url": "ftp://127.0.0.1/hook"}),
            400,
            "http or https",
        ),
        (json!({"name": "x", "url": "not a url"}), 400, "url"),
        (
            json!({"name": "x", "url": "http://127.0.0.1:9/", "events": ["artifact.eaten"]}),
            400,
            "unknown event type",
        ),
        (
            json!({"name": "x", "url": "http://127.0.0.1:9/", "secret": "short"}),
            400,
            "16 to 256",
        ),
        (
            json!({"name": "x", "url": "http://127.0.0.1:9/", "secret": "whsec_%%%"}),
            400,
            "base64",
        ),
        (
            json!({"name": "../x", "url": "http://127.0.0.1:9/"}),
            400,
            "webhook name",
        ),
        (
            json!({"name": "x", "url": "http://127.0.0.1:9/", "registry": "nowhere"}),
            404,
            "nowhere",
        ),
        (
            json!({"name": "global", "url": "http://127.0.0.1:9/"}),
            409,
            "global",
        ),
    ];
    for (body, expected, says) in cases {
        let (status, answer) = node
            .api(&admin, Method::POST, "/api/v1/webhooks", Some(body.clone()))
            .await?;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        ensure!(
            status == expected && message.contains(says),
            "{body}: {status} {answer}"
        );
    }
    let response = http()
        .post(format!("{}/api/v1/webhooks", node.url))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await?;
    ensure!(
        response.status().as_u16() == 400,
        "malformed JSON: {}",
        response.status()
    );
    let all = node
        .api_ok(&admin, Method::GET, "/api/v1/webhooks", None)
        .await?;
    ensure!(
        all.as_array().map(Vec::len) == Some(2),
        "nothing created: {all}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_lists_tests_and_deletes_webhooks() -> Result<()> {
    let node = TestNode::start()?;
    let receiver = Receiver::start(SECRET).await?;
    let run = |args: &[&str]| {
        let output = node.cli(args);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        (output.status.success(), stdout, stderr)
    };
    let (ok, stdout, stderr) = run(&[
        "webhook",
        "create",
        "--name",
        "cd",
        "--url",
        &receiver.url,
        "--secret",
        SECRET,
        "--events",
        "artifact.pushed,tag.moved",
    ]);
    ensure!(ok, "create: {stdout} {stderr}");
    let (ok, stdout, _) = run(&["--format", "json", "webhook", "list"]);
    let listed: Value = serde_json::from_str(&stdout)?;
    ensure!(
        ok && listed[0]["name"] == "cd"
            && listed[0]["events"] == json!(["io.arca.artifact.pushed", "io.arca.tag.moved"]),
        "{listed}"
    );
    let (ok, stdout, stderr) = run(&["webhook", "test", "cd"]);
    ensure!(
        ok && stdout.contains("io.arca.webhook.test"),
        "test: {stdout} {stderr}"
    );
    let (ok, stdout, _) = run(&["--format", "json", "webhook", "deliveries", "cd"]);
    let log: Value = serde_json::from_str(&stdout)?;
    ensure!(
        ok && log[0]["event_type"] == "io.arca.webhook.test",
        "{log}"
    );
    let (ok, stdout, _) = run(&["--format", "json", "webhook", "disable", "cd"]);
    ensure!(
        ok && stdout.contains("\"enabled\": false"),
        "disable: {stdout}"
    );

    // A test against a receiver that refuses fails the command, with the cause.
    receiver.fail_all(true);
    let (ok, _, stderr) = run(&["webhook", "test", "cd"]);
    ensure!(
        !ok && stderr.contains("500"),
        "a refused test fails: {stderr}"
    );
    let (ok, _, stderr) = run(&["webhook", "delete", "cd"]);
    ensure!(ok, "delete: {stderr}");
    let (ok, _, stderr) = run(&["webhook", "show", "cd"]);
    ensure!(!ok && stderr.contains("not found"), "{stderr}");
    Ok(())
}

/// The nodes that made the logged attempts, asked at member `index`, once `done` holds of them
/// (the log is committed moments after the posts).
async fn delivering_nodes(
    cluster: &TestCluster,
    index: usize,
    done: impl Fn(&BTreeSet<u64>) -> bool,
) -> Result<BTreeSet<u64>> {
    let path = "/api/v1/webhooks/cd/deliveries?limit=1000";
    let node = &cluster.members[index].node;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = node
            .api_ok(cluster.admin_token(), Method::GET, path, None)
            .await?;
        let nodes: BTreeSet<u64> = log
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|delivery| delivery["node_id"].as_u64())
            .collect();
        if done(&nodes) || tokio::time::Instant::now() >= deadline {
            return Ok(nodes);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_delivers_and_a_new_leader_carries_on_after_a_crash() -> Result<()> {
    let mut cluster = TestCluster::start_with(&["a", "b", "c"], &FAST_RETRIES).await?;
    create_cluster_registry(&cluster, "files", "GENERIC").await?;
    let receiver = Receiver::start(SECRET).await?;
    let response = http()
        .post(format!("{}/api/v1/webhooks", cluster.url(1)))
        .bearer_auth(cluster.admin_token())
        .json(&json!({"name": "cd", "url": receiver.url, "secret": SECRET}))
        .send()
        .await?;
    ensure!(
        response.status().as_u16() == 201,
        "created at a follower: {}",
        response.status()
    );
    let leader = cluster.leader(0).await?;
    for i in 0..9usize {
        let status = put(
            &cluster,
            i % 3,
            "files",
            &format!("a/{i}/a.bin"),
            vec![i as u8; 64],
        )
        .await?;
        ensure!(status == 201, "push {i}: {status}");
    }
    let pushed = pushed_ids(
        &cluster.members[leader].node,
        cluster.admin_token(),
        "files",
    )
    .await?;
    receiver
        .wait_for(WAIT, |seen| pushed.is_subset(&seen.ids_of(PUSHED)))
        .await?;
    let nodes = delivering_nodes(&cluster, leader, |nodes| !nodes.is_empty()).await?;
    ensure!(
        nodes == BTreeSet::from([cluster.members[leader].id]),
        "only the leader delivered: {nodes:?}"
    );

    cluster.members[leader].node.kill();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    for i in 9..18usize {
        let target = survivors[i % 2];
        let deadline = tokio::time::Instant::now() + WAIT;
        while put(
            &cluster,
            target,
            "files",
            &format!("a/{i}/a.bin"),
            vec![i as u8; 64],
        )
        .await?
            != 201
        {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "push {i} never went in"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The member asked applies the last pushes (made at the other survivor) moments later.
    let deadline = tokio::time::Instant::now() + WAIT;
    let pushed = loop {
        let pushed = pushed_ids(
            &cluster.members[survivors[0]].node,
            cluster.admin_token(),
            "files",
        )
        .await?;
        if pushed.len() >= 18 {
            break pushed;
        }
        ensure!(tokio::time::Instant::now() < deadline, "{pushed:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    receiver
        .wait_for(WAIT, |seen| pushed.is_subset(&seen.ids_of(PUSHED)))
        .await?;
    let new_leader = cluster.leader(survivors[0]).await?;
    let new_leader_id = cluster.members[new_leader].id;
    let nodes = delivering_nodes(&cluster, survivors[0], |nodes| {
        nodes.contains(&new_leader_id)
    })
    .await?;
    ensure!(
        nodes.contains(&new_leader_id) && nodes.len() == 2,
        "the new leader carried on: {nodes:?}"
    );
    let seen = receiver.seen();
    let posts = seen
        .taken
        .iter()
        .filter(|event| event["type"] == PUSHED)
        .count();
    // At least once: an event posted just before the crash may come again, but no more than the
    // one batch in flight.
    ensure!(
        posts <= pushed.len() + 9,
        "{posts} posts of {} events",
        pushed.len()
    );
    ensure!(seen.forged == 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_post_over_https_to_a_receiver_with_a_private_ca() -> Result<()> {
    let pki = arca_tests::pki::TestPki::new()?;
    let receiver = Receiver::start(SECRET).await?;
    let front = pki.tls_front(receiver.port()).await?;
    let url = format!("https://127.0.0.1:{}/hook", front.port);
    let hook = json!({"name": "secure", "url": url, "secret": SECRET, "registry": "apps"});

    // A node that does not trust the receiver's CA posts nothing, and says why.
    let untrusting = TestNode::start_with(&[], &FAST_RETRIES)?;
    create_registry(&untrusting, "apps").await?;
    let admin = untrusting.admin_token.clone();
    untrusting
        .api_ok(&admin, Method::POST, "/api/v1/webhooks", Some(hook.clone()))
        .await?;
    let test = untrusting
        .api_ok(&admin, Method::POST, "/api/v1/webhooks/secure/test", None)
        .await?;
    let error = test["error"].as_str().unwrap_or_default().to_lowercase();
    ensure!(
        test["status"].is_null() && error.contains("certificate"),
        "{test}"
    );
    ensure!(receiver.seen().taken.is_empty());
    drop(untrusting);

    // Told to trust it (`--upstream-ca-file`, as for upstream registries), a node delivers.
    let ca = pki.path("ca.pem");
    let node = TestNode::start_with(&["--upstream-ca-file", &ca], &FAST_RETRIES)?;
    create_registry(&node, "apps").await?;
    let admin = node.admin_token.clone();
    node.api_ok(&admin, Method::POST, "/api/v1/webhooks", Some(hook))
        .await?;
    node.push_generic("apps", "app/1/app.bin").await?;
    receiver
        .wait_for(WAIT, |seen| {
            seen.taken
                .iter()
                .any(|e| e["type"] == PUSHED && e["subject"] == "/generic/apps/app/1/app.bin")
        })
        .await?;
    ensure!(receiver.seen().forged == 0, "every post was signed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_audit_retention_dropped_before_delivery_are_logged_as_a_gap() -> Result<()> {
    let node = TestNode::start_with(&[], &FAST_RETRIES)?;
    create_registry(&node, "apps").await?;
    let receiver = Receiver::start(SECRET).await?;
    let admin = node.admin_token.clone();
    node.api_ok(
        &admin,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({"name": "late", "url": receiver.url, "secret": SECRET, "registry": "apps"})),
    )
    .await?;
    node.api_ok(
        &admin,
        Method::PATCH,
        "/api/v1/webhooks/late",
        Some(json!({"enabled": false})),
    )
    .await?;
    // The trail keeps 5 events; 10 pushes happen while the webhook is off.
    node.api_ok(
        &admin,
        Method::PUT,
        "/api/v1/audit/retention",
        Some(json!({"max_events": 5})),
    )
    .await?;
    for i in 0..10 {
        node.push_generic("apps", &format!("app/{i}/app.bin"))
            .await?;
    }
    node.api_ok(
        &admin,
        Method::PATCH,
        "/api/v1/webhooks/late",
        Some(json!({"enabled": true})),
    )
    .await?;
    // What the trail still holds is delivered; what it dropped is one entry of the log.
    receiver
        .wait_for(WAIT, |seen| {
            seen.taken
                .iter()
                .any(|e| e["subject"] == "/generic/apps/app/9/app.bin")
        })
        .await?;
    let deadline = std::time::Instant::now() + WAIT;
    let gaps = loop {
        let gaps: Vec<Value> = deliveries(&node, "late")
            .await?
            .into_iter()
            .filter(|d| d["event_type"] == "io.arca.webhook.gap")
            .collect();
        if !gaps.is_empty() {
            break gaps;
        }
        ensure!(std::time::Instant::now() < deadline, "no gap logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ensure!(gaps.len() == 1, "reported once: {gaps:?}");
    ensure!(
        gaps[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("dropped by the audit trail's retention")),
        "{gaps:?}"
    );
    ensure!(
        !receiver
            .seen()
            .taken
            .iter()
            .any(|e| e["subject"] == "/generic/apps/app/0/app.bin"),
        "the first push was dropped before delivery"
    );
    Ok(())
}
