//! Generic registries end to end over HTTP: upload, download, ranges, ETags, checksums, immutability,
//! anonymous reads, and bad input that must be refused without leaving anything behind.

use arca_tests::{TestNode, http, pseudo_random_bytes, raw_http, raw_http_abandoned, sha256_hex};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn create_registry(node: &TestNode, body: Value) {
    let response = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&body)
        .send()
        .await
        .expect("create registry");
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
}

fn file_url(node: &TestNode, registry: &str, path: &str) -> String {
    format!("{}/generic/{registry}/{path}", node.url)
}

async fn put(node: &TestNode, url: &str, bytes: Vec<u8>) -> reqwest::Response {
    http()
        .put(url)
        .bearer_auth(&node.admin_token)
        .body(bytes)
        .send()
        .await
        .expect("put")
}

async fn get(node: &TestNode, url: &str) -> reqwest::Response {
    http()
        .get(url)
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("get")
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("JSON error body");
    body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_string()
}

async fn package_count(node: &TestNode, registry: &str) -> u64 {
    let page: Value = http()
        .get(format!("{}/api/v1/artifacts?registry={registry}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("page");
    page["total"].as_u64().expect("total")
}

async fn metric(node: &TestNode, name: &str) -> u64 {
    let text = http()
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
}

#[tokio::test]
async fn push_pull_range_head_etag_and_checksums() {
    let node = TestNode::start().expect("node");
    create_registry(&node, json!({"name": "files", "package_type": "GENERIC"})).await;
    let data = pseudo_random_bytes(9 * 1024 * 1024 + 3, 1);
    let url = file_url(&node, "files", "tool/1.0/tool.bin");

    let response = http()
        .put(&url)
        .bearer_auth(&node.admin_token)
        .header("X-Checksum-Sha256", sha256_hex(&data))
        .body(data.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), StatusCode::CREATED);
    let uploaded: Value = response.json().await.expect("json");
    assert_eq!(uploaded["sha256"], sha256_hex(&data));
    assert_eq!(uploaded["size"], data.len() as u64);

    let response = get(&node, &url).await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_string();
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&data)));
    assert_eq!(
        response.headers()["content-length"].to_str().expect("len"),
        data.len().to_string()
    );
    assert_eq!(
        response.bytes().await.expect("body").as_ref(),
        data.as_slice()
    );

    let ranged = http()
        .get(&url)
        .bearer_auth(&node.admin_token)
        .header("Range", "bytes=5000000-5000099")
        .send()
        .await
        .expect("range");
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        ranged.headers()["content-range"].to_str().expect("cr"),
        format!("bytes 5000000-5000099/{}", data.len())
    );
    assert_eq!(
        ranged.bytes().await.expect("body").as_ref(),
        &data[5_000_000..5_000_100]
    );

    let suffix = http()
        .get(&url)
        .bearer_auth(&node.admin_token)
        .header("Range", "bytes=-10")
        .send()
        .await
        .expect("suffix");
    assert_eq!(
        suffix.bytes().await.expect("body").as_ref(),
        &data[data.len() - 10..]
    );

    let unsatisfiable = http()
        .get(&url)
        .bearer_auth(&node.admin_token)
        .header("Range", format!("bytes={}-", data.len()))
        .send()
        .await
        .expect("416");
    assert_eq!(unsatisfiable.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        unsatisfiable.headers()["content-range"]
            .to_str()
            .expect("cr"),
        format!("bytes */{}", data.len())
    );

    let head = http()
        .head(&url)
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-length"].to_str().expect("len"),
        data.len().to_string()
    );
    assert!(head.bytes().await.expect("body").is_empty());

    let cached = http()
        .get(&url)
        .bearer_auth(&node.admin_token)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    // A wrong checksum is refused and leaves nothing behind.
    let bad_url = file_url(&node, "files", "tool/2.0/tool.bin");
    let response = http()
        .put(&bad_url)
        .bearer_auth(&node.admin_token)
        .header("X-Checksum-Sha256", sha256_hex(b"something else"))
        .body(data.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "DIGEST_MISMATCH");
    assert_eq!(get(&node, &bad_url).await.status(), StatusCode::NOT_FOUND);

    // Delete removes the file; the emptied version and package go with it.
    let deleted = http()
        .delete(&url)
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(get(&node, &url).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(package_count(&node, "files").await, 0);
}

#[tokio::test]
async fn identical_bytes_are_stored_once_and_copies_share_them() {
    let node = TestNode::start().expect("node");
    create_registry(&node, json!({"name": "a", "package_type": "GENERIC"})).await;
    create_registry(&node, json!({"name": "b", "package_type": "GENERIC"})).await;
    let data = pseudo_random_bytes(6 * 1024 * 1024, 2);
    let first = put(
        &node,
        &file_url(&node, "a", "lib/1.0/lib.tgz"),
        data.clone(),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let written = metric(&node, "arca_chunk_bytes_written_total").await;
    assert!(written >= data.len() as u64);
    let second = put(
        &node,
        &file_url(&node, "b", "other/9/copy.tgz"),
        data.clone(),
    )
    .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(
        metric(&node, "arca_chunk_bytes_written_total").await,
        written,
        "the same bytes pushed again wrote no chunk"
    );

    // Copy a version to another registry, then delete the source: the copy still serves the bytes.
    create_registry(&node, json!({"name": "release", "package_type": "GENERIC"})).await;
    let copied = http()
        .post(format!(
            "{}/api/v1/registries/a/packages/lib/versions/1.0/copy",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({"destination_registry": "release"}))
        .send()
        .await
        .expect("copy");
    assert_eq!(copied.status(), StatusCode::CREATED);
    assert_eq!(
        metric(&node, "arca_chunk_bytes_written_total").await,
        written,
        "copying moved no bytes"
    );
    let removed = http()
        .delete(format!("{}/api/v1/registries/a/packages/lib", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("delete package");
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let response = get(&node, &file_url(&node, "release", "lib/1.0/lib.tgz")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.bytes().await.expect("body").as_ref(),
        data.as_slice()
    );
}

#[tokio::test]
async fn immutable_registry_refuses_overwrite() {
    let node = TestNode::start().expect("node");
    create_registry(
        &node,
        json!({"name": "frozen", "package_type": "GENERIC", "immutable": true}),
    )
    .await;
    let url = file_url(&node, "frozen", "app/1.0/app.bin");
    assert_eq!(
        put(&node, &url, b"first".to_vec()).await.status(),
        StatusCode::CREATED
    );
    let again = put(&node, &url, b"second".to_vec()).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(again).await, "CONFLICT");
    assert_eq!(
        get(&node, &url).await.bytes().await.expect("body").as_ref(),
        b"first"
    );
    // New files and versions are still welcome.
    let other = file_url(&node, "frozen", "app/1.1/app.bin");
    assert_eq!(
        put(&node, &other, b"next".to_vec()).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn credentials_and_anonymous_reads() {
    let node = TestNode::start().expect("node");
    create_registry(&node, json!({"name": "private", "package_type": "GENERIC"})).await;
    create_registry(
        &node,
        json!({"name": "public", "package_type": "GENERIC", "allow_anonymous_read": true}),
    )
    .await;
    for registry in ["private", "public"] {
        let url = file_url(&node, registry, "doc/1/readme.txt");
        assert_eq!(
            put(&node, &url, b"secret words".to_vec()).await.status(),
            StatusCode::CREATED
        );
    }
    let private = file_url(&node, "private", "doc/1/readme.txt");
    let public = file_url(&node, "public", "doc/1/readme.txt");

    let anonymous = http().get(&private).send().await.expect("get");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let body = anonymous.text().await.expect("body");
    assert!(!body.contains("secret words"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["error"]["code"],
        "UNAUTHORIZED"
    );

    let wrong = http()
        .get(&private)
        .bearer_auth("arca_not-a-token")
        .send()
        .await
        .expect("get");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(!wrong.text().await.expect("body").contains("secret words"));

    let open = http().get(&public).send().await.expect("get");
    assert_eq!(open.status(), StatusCode::OK);
    assert_eq!(open.text().await.expect("body"), "secret words");
    let anonymous_write = http().put(&public).body("x").send().await.expect("put");
    assert_eq!(anonymous_write.status(), StatusCode::UNAUTHORIZED);

    // A nonexistent registry is not revealed to anonymous callers.
    let ghost = http()
        .get(file_url(&node, "ghost", "doc/1/readme.txt"))
        .send()
        .await
        .expect("get");
    assert_eq!(ghost.status(), StatusCode::UNAUTHORIZED);

    // A read-only token may read but not write.
    let created: Value = http()
        .post(format!("{}/api/v1/tokens", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": "reader", "role": "read"}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let reader = created["token"].as_str().expect("secret").to_string();
    let read = http()
        .get(&private)
        .bearer_auth(&reader)
        .send()
        .await
        .expect("get");
    assert_eq!(read.status(), StatusCode::OK);
    let write = http()
        .put(&private)
        .bearer_auth(&reader)
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(write.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(write).await, "FORBIDDEN");
}

#[tokio::test]
async fn bad_paths_names_and_registries_are_refused_cleanly() {
    let node = TestNode::start().expect("node");
    create_registry(&node, json!({"name": "files", "package_type": "GENERIC"})).await;
    create_registry(&node, json!({"name": "npmjs", "package_type": "NPM"})).await;
    let auth = format!("Authorization: Bearer {}\r\n", node.admin_token);
    for path in [
        "/generic/files/tool/../x.bin",
        "/generic/files/tool/1.0/..",
        "/generic/files/tool/1.0/%2e%2e",
        "/generic/files/tool/1.0/a%2Fb",
        "/generic/files/tool/1.0/..%2F..%2Fetc%2Fpasswd",
        "/generic/files/tool/1.0/a%00b",
        "/generic/files/%2Fetc/1.0/passwd",
        "/generic/files/tool/1.0/a%5Cb",
        "/generic/files/tool/%20/x",
    ] {
        let request = format!(
            "PUT {path} HTTP/1.1\r\nHost: arca\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let (status, answer) =
            raw_http(&node.url, request.as_bytes()).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(status, 400, "{path} gave {answer}");
        assert!(
            answer.contains("\"code\":\"INVALID\""),
            "{path} gave {answer}"
        );
    }
    assert_eq!(package_count(&node, "files").await, 0, "nothing was stored");

    let unknown = put(
        &node,
        &file_url(&node, "nope", "tool/1.0/x.bin"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(unknown).await, "NOT_FOUND");

    let wrong_type = put(
        &node,
        &file_url(&node, "npmjs", "tool/1.0/x.bin"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(wrong_type.status(), StatusCode::BAD_REQUEST);

    let bad_checksum = http()
        .put(file_url(&node, "files", "tool/1.0/x.bin"))
        .bearer_auth(&node.admin_token)
        .header("X-Checksum-Sha256", "not-hex")
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(bad_checksum.status(), StatusCode::BAD_REQUEST);

    let extra_segment = put(
        &node,
        &file_url(&node, "files", "tool/1.0/dir/x.bin"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(extra_segment.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(extra_segment).await, "NOT_FOUND");
    assert_eq!(package_count(&node, "files").await, 0, "nothing was stored");
}

#[tokio::test]
async fn truncated_longer_and_oversized_bodies() {
    let node = TestNode::start_with(&[], &[("ARCA_MAX_UPLOAD_BYTES", "100000")]).expect("node");
    create_registry(&node, json!({"name": "files", "package_type": "GENERIC"})).await;
    let auth = format!("Authorization: Bearer {}\r\n", node.admin_token);

    // The connection closes after 500 of the 1000 announced bytes.
    let mut request = format!(
        "PUT /generic/files/cut/1.0/cut.bin HTTP/1.1\r\nHost: arca\r\n{auth}Content-Length: 1000\r\n\r\n"
    )
    .into_bytes();
    request.extend(pseudo_random_bytes(500, 4));
    raw_http_abandoned(&node.url, &request).expect("partial upload");
    // Give the node a moment to see the connection end.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        get(&node, &file_url(&node, "files", "cut/1.0/cut.bin"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // More bytes than announced: the body is what Content-Length framed; with a checksum of everything
    // sent, the mismatch is caught and nothing is stored.
    let sent = b"hello, and then some more";
    let request = format!(
        "PUT /generic/files/long/1.0/long.bin HTTP/1.1\r\nHost: arca\r\n{auth}X-Checksum-Sha256: {}\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{}",
        sha256_hex(sent),
        String::from_utf8_lossy(sent)
    );
    let (status, answer) = raw_http(&node.url, request.as_bytes()).expect("raw");
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("DIGEST_MISMATCH"), "{answer}");
    assert_eq!(
        get(&node, &file_url(&node, "files", "long/1.0/long.bin"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Over the node's limit, announced up front.
    let too_big = put(
        &node,
        &file_url(&node, "files", "big/1.0/big.bin"),
        vec![7; 200_000],
    )
    .await;
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(too_big).await, "PAYLOAD_TOO_LARGE");

    // Over the limit without Content-Length (chunked): caught while streaming.
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![1; 60_000]), Ok(vec![2; 60_000])];
    let stream = futures::stream::iter(pieces);
    let chunked = http()
        .put(file_url(&node, "files", "big/1.0/big.bin"))
        .bearer_auth(&node.admin_token)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("put");
    assert_eq!(chunked.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(package_count(&node, "files").await, 0, "nothing was stored");
}

#[tokio::test]
async fn lookalike_names_are_refused() {
    let node = TestNode::start().expect("node");
    create_registry(&node, json!({"name": "files", "package_type": "GENERIC"})).await;
    // `café.txt` composed is a file; decomposed, or with a right-to-left override or a zero-width
    // space, it would be another file that reads the same.
    let composed = "caf\u{e9}.txt";
    let response = put(
        &node,
        &file_url(&node, "files", &format!("menu/1.0/{composed}")),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    for lookalike in [
        "cafe\u{301}.txt",
        "caf\u{e9}\u{202E}txt.exe",
        "caf\u{e9}\u{200B}.txt",
    ] {
        let response = put(
            &node,
            &file_url(&node, "files", &format!("menu/1.0/{lookalike}")),
            b"y".to_vec(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{lookalike:?}");
        assert_eq!(error_code(response).await, "INVALID");
    }
    // Registry names are lower case: `Docker` (not an OCI name) and `Files` beside `files` are
    // refused.
    for (name, package_type) in [("Docker", "DOCKER"), ("Files", "GENERIC")] {
        let response = http()
            .post(format!("{}/api/v1/registries", node.url))
            .bearer_auth(&node.admin_token)
            .json(&json!({"name": name, "package_type": package_type}))
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name}");
    }
}
