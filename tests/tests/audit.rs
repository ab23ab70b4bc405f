//! The audit trail end to end: changes on every surface are recorded through Raft with who made them,
//! from where, what they addressed and how they ended; downloads only for registries that ask for it;
//! `GET /api/v1/audit` and `arca audit list` filter them; only admins read them and nothing edits them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arca_tests::{TestNode, http, sha256_hex};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const GENERIC_ROUTE: &str = "/generic/{registry}/{package}/{version}/{filename}";

async fn admin(node: &TestNode, method: Method, path: &str, body: Option<Value>) -> StatusCode {
    let mut request = http()
        .request(method, format!("{}{path}", node.url))
        .bearer_auth(&node.admin_token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request").status()
}

/// Creates a token and answers its secret and id.
async fn token(node: &TestNode, name: &str, role: &str) -> (String, String) {
    let created: Value = http()
        .post(format!("{}/api/v1/tokens", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": name, "role": role}))
        .send()
        .await
        .expect("create token")
        .json()
        .await
        .expect("token json");
    (
        created["token"].as_str().expect("secret").to_string(),
        created["id"].as_str().expect("id").to_string(),
    )
}

async fn send(
    node: &TestNode,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> StatusCode {
    let mut request = http()
        .request(method, format!("{}{path}", node.url))
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request").status()
}

/// `GET /api/v1/audit?<query>` as the admin.
async fn audit(node: &TestNode, query: &str) -> Vec<Value> {
    let response = http()
        .get(format!("{}/api/v1/audit?{query}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("audit");
    assert_eq!(response.status(), StatusCode::OK, "audit?{query}");
    let body: Value = response.json().await.expect("audit json");
    body["events"].as_array().expect("events").clone()
}

/// Waits until an event with `target` and `result` is in the trail. A change's event commits with
/// the change; refusals, failures and downloads are recorded in the background, a moment after the
/// request, in order.
async fn wait_for(node: &TestNode, target: &str, result: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let events = audit(node, "limit=1000").await;
        if let Some(event) = events
            .iter()
            .find(|e| e["target"] == target && e["result"] == result)
        {
            return event.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no event {target} {result} in {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn find<'a>(events: &'a [Value], action: &str, target: &str, result: u16) -> &'a Value {
    events
        .iter()
        .find(|e| e["action"] == action && e["target"] == target && e["result"] == result)
        .unwrap_or_else(|| panic!("no {action} {target} {result} in {events:#?}"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

#[tokio::test]
async fn changes_are_recorded_with_actor_source_action_target_and_result() {
    let node = TestNode::start().expect("node");
    let created = admin(
        &node,
        Method::POST,
        "/api/v1/registries",
        Some(json!({"name": "files", "package_type": "GENERIC"})),
    )
    .await;
    assert_eq!(created, StatusCode::CREATED);
    let (ci, ci_id) = token(&node, "ci", "write").await;
    let (reader, _) = token(&node, "reader", "read").await;

    let file = "/generic/files/tool/1.0/tool.bin";
    let put = send(&node, Method::PUT, file, Some(&ci), b"tool".to_vec()).await;
    assert_eq!(put, StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after_upload = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let got = send(&node, Method::GET, file, Some(&ci), Vec::new()).await;
    assert_eq!(got, StatusCode::OK);
    let bad_token = send(
        &node,
        Method::PUT,
        "/generic/files/tool/2.0/tool.bin",
        Some("arca_not_a_token"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(bad_token, StatusCode::UNAUTHORIZED);
    let mismatch = http()
        .put(format!("{}/generic/files/tool/3.0/tool.bin", node.url))
        .bearer_auth(&ci)
        .header("X-Checksum-Sha256", sha256_hex(b"other"))
        .body(b"tool".to_vec())
        .send()
        .await
        .expect("put")
        .status();
    assert_eq!(mismatch, StatusCode::BAD_REQUEST);
    let deleted = send(&node, Method::DELETE, file, Some(&ci), Vec::new()).await;
    assert_eq!(deleted, StatusCode::NO_CONTENT);
    wait_for(&node, file, 204).await;
    wait_for(&node, "/generic/files/tool/2.0/tool.bin", 401).await;
    wait_for(&node, "/generic/files/tool/3.0/tool.bin", 400).await;

    let events = audit(&node, "limit=1000").await;
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    let times: Vec<u64> = events
        .iter()
        .map(|e| e["at"].as_u64().expect("at"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?} (ids {ids:?})"
    );
    for event in &events {
        assert_eq!(event["source_ip"], "127.0.0.1", "{event}");
        assert!(event["at"].as_u64().expect("at") > 0);
    }

    let creation = find(
        &events,
        "POST /api/v1/registries",
        "/api/v1/registries",
        201,
    );
    assert_eq!(creation["actor"], "admin");
    assert!(
        creation["actor_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("tok_"))
    );
    assert_eq!(creation["registry"], "files");
    let token_creation = find(&events, "POST /api/v1/tokens", "/api/v1/tokens", 201);
    assert_eq!(token_creation["registry"], Value::Null);

    let upload = find(&events, &format!("PUT {GENERIC_ROUTE}"), file, 201);
    assert_eq!(upload["actor"], "ci");
    assert_eq!(upload["actor_id"], ci_id.as_str());
    assert_eq!(upload["registry"], "files");
    assert_eq!(upload["detail"], Value::Null);

    let removal = find(&events, &format!("DELETE {GENERIC_ROUTE}"), file, 204);
    assert_eq!(removal["actor"], "ci");
    assert_eq!(removal["registry"], "files");

    let refused = find(
        &events,
        &format!("PUT {GENERIC_ROUTE}"),
        "/generic/files/tool/2.0/tool.bin",
        401,
    );
    assert_eq!(refused["actor"], "anonymous");
    assert_eq!(refused["actor_id"], Value::Null);
    assert_eq!(refused["registry"], "files");
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("invalid credentials")),
        "{refused}"
    );

    let invalid = find(
        &events,
        &format!("PUT {GENERIC_ROUTE}"),
        "/generic/files/tool/3.0/tool.bin",
        400,
    );
    assert_eq!(invalid["actor"], "ci");
    assert!(
        invalid["detail"]
            .as_str()
            .is_some_and(|d| d.contains("mismatch")),
        "the error message is the detail: {invalid}"
    );

    assert!(
        events
            .iter()
            .all(|e| !e["action"].as_str().expect("action").starts_with("GET ")),
        "downloads of a registry without audit_downloads are not recorded: {events:#?}"
    );

    // Filters.
    let by_ci = audit(&node, "actor=ci").await;
    assert_eq!(by_ci.len(), 3, "{by_ci:#?}");
    assert!(by_ci.iter().all(|e| e["actor"] == "ci"));
    assert_eq!(audit(&node, &format!("actor={ci_id}")).await, by_ci);
    let anonymous = audit(&node, "actor=anonymous").await;
    assert_eq!(anonymous.len(), 1);
    let in_files = audit(&node, "registry=files").await;
    assert_eq!(in_files.len(), 5, "{in_files:#?}");
    assert!(in_files.iter().all(|e| e["registry"] == "files"));
    let deletes = audit(&node, "action=delete").await;
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    assert_eq!(deletes[0]["target"], file);
    let since = audit(&node, &format!("since={after_upload}")).await;
    assert!(
        since
            .iter()
            .all(|e| e["at"].as_u64().expect("at") >= after_upload)
    );
    assert_eq!(
        since.len(),
        3,
        "the 401, the 400 and the delete: {since:#?}"
    );
    let until = audit(&node, &format!("until={after_upload}&registry=files")).await;
    assert_eq!(until.len(), 2, "the creation and the upload: {until:#?}");
    let newest = audit(&node, "limit=1").await;
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0]["id"], events[0]["id"]);
    for bad in ["limit=0", "limit=1001", "since=yesterday"] {
        let status = http()
            .get(format!("{}/api/v1/audit?{bad}", node.url))
            .bearer_auth(&node.admin_token)
            .send()
            .await
            .expect("audit")
            .status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }

    // The CLI.
    let output = node.cli(&[
        "audit", "list", "--actor", "ci", "--since", "1h", "--format", "json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let listed: Value = serde_json::from_slice(&output.stdout).expect("cli json");
    assert_eq!(listed["events"].as_array().expect("events"), &by_ci);
    let output = node.cli(&[
        "audit",
        "list",
        "--registry",
        "files",
        "--action",
        "DELETE",
        "--format",
        "yaml",
    ]);
    assert!(output.status.success(), "{output:?}");
    let listed: Value = serde_yaml_ng::from_slice(&output.stdout).expect("cli yaml");
    assert_eq!(listed["events"].as_array().expect("events").len(), 1);
    let output = node.cli(&["audit", "list", "--since", "2999-01-01T00:00:00Z"]);
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("ACTOR") && !table.contains("/generic/"),
        "{table}"
    );
    let output = node.cli(&["audit", "list"]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("ci (") && table.contains("127.0.0.1"),
        "{table}"
    );

    // Only admins read the trail.
    for (who, expected) in [
        (Some(ci.as_str()), StatusCode::FORBIDDEN),
        (Some(reader.as_str()), StatusCode::FORBIDDEN),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let status = send(&node, Method::GET, "/api/v1/audit", who, Vec::new()).await;
        assert_eq!(status, expected, "{who:?}");
    }
    let output = node.cli_with_token(Some(&ci), &["audit", "list"]);
    assert!(!output.status.success());

    // Nothing edits or deletes it.
    let before = audit(&node, "limit=1000").await;
    for (method, path) in [
        (Method::DELETE, "/api/v1/audit"),
        (Method::PUT, "/api/v1/audit"),
        (Method::POST, "/api/v1/audit"),
        (Method::PATCH, "/api/v1/audit"),
        (Method::DELETE, "/api/v1/audit/1"),
        (Method::PUT, "/api/v1/audit/1"),
    ] {
        let status = admin(&node, method.clone(), path, Some(json!({"events": []}))).await;
        assert!(
            status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::NOT_FOUND,
            "{method} {path}: {status}"
        );
    }
    wait_for(&node, "/api/v1/audit/1", 404).await;
    let after = audit(&node, "limit=1000").await;
    assert_eq!(
        &after[after.len() - before.len()..],
        &before[..],
        "earlier events are unchanged"
    );
    let attempt = find(&after, "DELETE /api/v1/audit", "/api/v1/audit", 405);
    assert_eq!(attempt["actor"], "admin", "the attempts are recorded too");
}

#[tokio::test]
async fn downloads_are_recorded_only_for_registries_that_ask() {
    let node = TestNode::start().expect("node");
    let output = node.cli(&[
        "registry",
        "create",
        "watched",
        "--package-type",
        "generic",
        "--audit-downloads",
        "--format",
        "json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let info: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(info["audit_downloads"], true);
    let created = admin(
        &node,
        Method::POST,
        "/api/v1/registries",
        Some(json!({"name": "quiet", "package_type": "GENERIC"})),
    )
    .await;
    assert_eq!(created, StatusCode::CREATED);
    let quiet: Value = http()
        .get(format!("{}/api/v1/registries/quiet", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(quiet["audit_downloads"], false);
    let (reader, reader_id) = token(&node, "reader", "read").await;

    let token = node.admin_token.clone();
    for registry in ["watched", "quiet"] {
        let path = format!("/generic/{registry}/app/1.0/app.bin");
        let put = send(&node, Method::PUT, &path, Some(&token), b"app".to_vec()).await;
        assert_eq!(put, StatusCode::CREATED);
        let got = send(&node, Method::GET, &path, Some(&reader), Vec::new()).await;
        assert_eq!(got, StatusCode::OK);
        let head = send(&node, Method::HEAD, &path, Some(&reader), Vec::new()).await;
        assert_eq!(head, StatusCode::OK);
        let missing = format!("/generic/{registry}/app/9.9/app.bin");
        let got = send(&node, Method::GET, &missing, Some(&reader), Vec::new()).await;
        assert_eq!(got, StatusCode::NOT_FOUND);
    }
    // A change on the OCI surface: the registry is the first segment of the repository name.
    let created = admin(
        &node,
        Method::POST,
        "/api/v1/registries",
        Some(json!({"name": "images", "package_type": "DOCKER"})),
    )
    .await;
    assert_eq!(created, StatusCode::CREATED);
    let upload = send(
        &node,
        Method::POST,
        "/v2/images/team/app/blobs/uploads/",
        Some(&token),
        Vec::new(),
    )
    .await;
    assert_eq!(upload, StatusCode::ACCEPTED);
    // Listings go by request time, in milliseconds: the next request comes a moment later.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let removed = admin(&node, Method::DELETE, "/api/v1/registries/images", None).await;
    assert_eq!(removed, StatusCode::NO_CONTENT);
    let marker = "/generic/quiet/marker/1/m.bin";
    let put = send(&node, Method::PUT, marker, Some(&token), b"m".to_vec()).await;
    assert_eq!(put, StatusCode::CREATED);
    wait_for(&node, marker, 201).await;
    wait_for(&node, "/generic/watched/app/1.0/app.bin", 200).await;
    wait_for(&node, "/generic/watched/app/9.9/app.bin", 404).await;
    wait_for(&node, "/v2/images/team/app/blobs/uploads/", 202).await;

    let watched = audit(&node, "registry=watched").await;
    let download = find(
        &watched,
        &format!("GET {GENERIC_ROUTE}"),
        "/generic/watched/app/1.0/app.bin",
        200,
    );
    assert_eq!(download["actor"], "reader");
    assert_eq!(download["actor_id"], reader_id.as_str());
    assert_eq!(download["source_ip"], "127.0.0.1");
    let missing = find(
        &watched,
        &format!("GET {GENERIC_ROUTE}"),
        "/generic/watched/app/9.9/app.bin",
        404,
    );
    assert!(missing["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(
        watched
            .iter()
            .all(|e| !e["action"].as_str().expect("action").starts_with("HEAD ")),
        "HEAD is no download: {watched:#?}"
    );
    assert_eq!(
        watched.len(),
        4,
        "creation, upload, two downloads: {watched:#?}"
    );
    let reads = audit(&node, "actor=reader").await;
    assert_eq!(
        reads.len(),
        2,
        "only the watched registry's downloads: {reads:#?}"
    );
    let quiet = audit(&node, "registry=quiet").await;
    assert!(
        quiet
            .iter()
            .all(|e| !e["action"].as_str().expect("action").starts_with("GET ")),
        "{quiet:#?}"
    );
    assert_eq!(quiet.len(), 3, "creation, upload, marker: {quiet:#?}");

    let oci = audit(&node, "action=/v2/").await;
    assert_eq!(oci.len(), 1, "{oci:#?}");
    assert_eq!(oci[0]["action"], "POST /v2/{*path}");
    assert_eq!(oci[0]["registry"], "images");
    assert_eq!(oci[0]["target"], "/v2/images/team/app/blobs/uploads/");
    assert_eq!(oci[0]["actor"], "admin");
    assert_eq!(oci[0]["result"], 202);
    let images = audit(&node, "registry=images").await;
    let actions: Vec<&str> = images
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "DELETE /api/v1/registries/{registry}",
            "POST /v2/{*path}",
            "POST /api/v1/registries"
        ],
        "{images:#?}"
    );
}

#[tokio::test]
async fn retention_keeps_the_newest_events_and_export_streams_them_oldest_first() {
    let node = TestNode::start().expect("node");
    let output = node.cli(&[
        "audit",
        "retention",
        "--max-events",
        "4",
        "--format",
        "json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let retention: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(retention["max_events"], 4);
    for i in 0..6 {
        let created = admin(
            &node,
            Method::POST,
            "/api/v1/registries",
            Some(json!({"name": format!("r{i}"), "package_type": "GENERIC"})),
        )
        .await;
        assert_eq!(created, StatusCode::CREATED);
    }
    let events = audit(&node, "limit=1000").await;
    let targets: Vec<&str> = events
        .iter()
        .filter_map(|e| e["registry"].as_str())
        .collect();
    assert_eq!(events.len(), 4, "{events:#?}");
    assert_eq!(
        targets,
        ["r5", "r4", "r3", "r2"],
        "the newest four, newest first"
    );

    let output = node.cli(&["audit", "export"]);
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let exported: Vec<&str> = lines
        .iter()
        .filter_map(|e| e["registry"].as_str())
        .collect();
    assert_eq!(exported, ["r2", "r3", "r4", "r5"], "oldest first");
    let output = node.cli(&["audit", "retention"]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("newest 4 events"),
        "{output:?}"
    );
}

/// Sends `count` copies of `request` pipelined on one connection and reads until the node has
/// answered them all (or closed).
async fn pipelined(node: &TestNode, request: &str, count: usize) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = node.url.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let batch = request.repeat(count);
    let sending = tokio::spawn(async move {
        let _ = writer.write_all(batch.as_bytes()).await;
        writer
    });
    let mut answers = 0;
    let mut buffer = vec![0; 1 << 16];
    let mut seen = String::new();
    while answers < count {
        let read = tokio::time::timeout(Duration::from_secs(30), reader.read(&mut buffer))
            .await
            .expect("answers within 30 s")
            .expect("read");
        if read == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
        answers += seen.matches("HTTP/1.1 ").count();
        seen = seen
            .rsplit("HTTP/1.1 ")
            .next()
            .unwrap_or_default()
            .to_string();
    }
    drop(sending.await);
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_noise_cannot_flood_the_trail() {
    let node = TestNode::start().expect("node");
    // 2,000 anonymous POSTs to a 10 KB path no route serves, pipelined.
    let long_path = format!("/x{}", "a".repeat(10_000));
    let noise = format!("POST {long_path} HTTP/1.1\r\nHost: arca\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(pipelined(&node, &noise, 2000).await, 2000);
    // 200 anonymous attempts at a real route: refused, and kept up to the per-source budget.
    let refused = "POST /api/v1/registries HTTP/1.1\r\nHost: arca\r\nContent-Type: application/json\r\n\
                   Content-Length: 2\r\n\r\n{}";
    assert_eq!(pipelined(&node, refused, 200).await, 200);

    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = audit(&node, "actor=anonymous&limit=1000").await;
        let skipped = arca_tests::metric(&node.url, "arca_audit_events_skipped_total", "")
            .await
            .expect("metric");
        if events.len() >= 61 || Instant::now() > deadline {
            assert!(
                skipped >= (1999 + 140) as f64,
                "skipped {skipped}, kept {}",
                events.len()
            );
            break events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let unrouted: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "POST (no matching route)")
        .collect();
    assert_eq!(unrouted.len(), 1, "one sample of the noise");
    let target = unrouted[0]["target"].as_str().expect("target");
    assert!(
        target.len() <= 512 + '…'.len_utf8() && target.ends_with('…'),
        "{} bytes",
        target.len()
    );
    let routed = events
        .iter()
        .filter(|e| e["action"] == "POST /api/v1/registries")
        .count();
    assert_eq!(routed, 60, "the per-source budget of a minute");
    // A change with credentials is still recorded.
    assert_eq!(
        admin(
            &node,
            Method::POST,
            "/api/v1/registries",
            Some(json!({"name": "after-noise", "package_type": "GENERIC"}))
        )
        .await,
        StatusCode::CREATED
    );
    assert_eq!(audit(&node, "registry=after-noise").await.len(), 1);
}
