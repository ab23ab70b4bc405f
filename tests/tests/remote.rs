//! Remote and virtual generic registries against real upstreams on 127.0.0.1: a second Arca node, and a
//! deliberately broken server. Cached files keep being served when the upstream is gone; concurrent
//! misses make one upstream request; a truncated upstream body leaves nothing behind.

use std::io::{Read, Write};
use std::net::TcpListener;

use anyhow::{Result, ensure};
use arca_tests::{TestNode, http, metric, pseudo_random_bytes, sha256_hex};

async fn create_registry(node: &TestNode, body: serde_json::Value) -> Result<()> {
    let response = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&body)
        .send()
        .await?;
    ensure!(
        response.status().as_u16() == 201,
        "create registry: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(())
}

async fn put(node: &TestNode, path: &str, body: Vec<u8>) -> Result<u16> {
    Ok(http()
        .put(format!("{}/generic/{path}", node.url))
        .bearer_auth(&node.admin_token)
        .body(body)
        .send()
        .await?
        .status()
        .as_u16())
}

async fn get(node: &TestNode, path: &str) -> Result<(u16, Vec<u8>)> {
    let response = http()
        .get(format!("{}/generic/{path}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.bytes().await?.to_vec()))
}

/// GETs of generic files the node answered with 200, from its metrics.
async fn generic_downloads(node: &TestNode) -> Result<f64> {
    let text = http()
        .get(format!("{}/metrics", node.url))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| {
            line.starts_with("arca_http_requests_total{")
                && line.contains("method=\"GET\"")
                && line.contains("/generic/")
                && line.contains("status=\"200\"")
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum())
}

/// The files under `dir` whose bytes contain `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|window| window == needle))
            {
                found.push(path);
            }
        }
    }
    found
}

fn remote(name: &str, upstream: &TestNode, upstream_registry: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "package_type": "GENERIC",
        "kind": "remote",
        "upstream": {
            "url": format!("{}/generic/{upstream_registry}", upstream.url),
            "username": "arca",
            "password": upstream.admin_token,
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_registry_caches_and_keeps_serving_when_the_upstream_is_gone() -> Result<()> {
    let mut upstream = TestNode::start()?;
    create_registry(
        &upstream,
        serde_json::json!({"name": "up", "package_type": "GENERIC"}),
    )
    .await?;
    let files: Vec<(String, Vec<u8>)> = (0..3u64)
        .map(|i| {
            (
                format!("tool/{i}.0/tool.bin"),
                pseudo_random_bytes(700_000 + i as usize, i),
            )
        })
        .collect();
    for (path, body) in &files {
        ensure!(put(&upstream, &format!("up/{path}"), body.clone()).await? == 201);
    }
    let node = TestNode::start()?;
    create_registry(&node, remote("mirror", &upstream, "up")).await?;

    // A miss fetches from the upstream, streaming; the copy is recorded with its origin once the
    // whole file has arrived and verified (just after the client has its last byte).
    let (status, body) = get(&node, &format!("mirror/{}", files[0].0)).await?;
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&body), sha256_hex(&files[0].1));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let version: serde_json::Value = loop {
        let response = http()
            .get(format!(
                "{}/api/v1/registries/mirror/packages/tool/versions/0.0",
                node.url
            ))
            .bearer_auth(&node.admin_token)
            .send()
            .await?;
        if response.status().is_success() || std::time::Instant::now() > deadline {
            break response.json().await?;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let origin = version["attributes"]["origin"].as_str().unwrap_or_default();
    assert!(
        origin.ends_with("/generic/up/tool/0.0/tool.bin"),
        "{version}"
    );

    // The upstream password (the upstream's admin token here) is kept sealed: no file of the
    // node — its metadata, Raft log, a snapshot — holds it in the clear.
    let snapshot = http()
        .post(format!("{}/api/v1/cluster/snapshot", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(snapshot.status().is_success(), "{}", snapshot.status());
    ensure!(
        files_holding(node.data_dir(), upstream.admin_token.as_bytes()).is_empty(),
        "the upstream password in the clear in {:?}",
        files_holding(node.data_dir(), upstream.admin_token.as_bytes())
    );

    // 100 concurrent requests for one uncached file make exactly one upstream request: one miss,
    // and 99 hits (served from the cache or by joining the fetch under way).
    let counter = |name: &'static str| metric(&node.url, name, "registry=\"mirror\"");
    let before = generic_downloads(&upstream).await?;
    let (hits_before, misses_before) = (
        counter("arca_remote_hits_total").await?,
        counter("arca_remote_misses_total").await?,
    );
    let path = format!("mirror/{}", files[1].0);
    let gets = (0..100).map(|_| get(&node, &path));
    for result in futures::future::join_all(gets).await {
        let (status, body) = result?;
        assert_eq!(status, 200);
        assert_eq!(body.len(), files[1].1.len());
    }
    assert_eq!(
        generic_downloads(&upstream).await? - before,
        1.0,
        "one upstream fetch"
    );
    assert_eq!(
        counter("arca_remote_misses_total").await? - misses_before,
        1.0
    );
    assert_eq!(counter("arca_remote_hits_total").await? - hits_before, 99.0);

    // A file that is not upstream is a 404; a remote registry takes no publishes.
    assert_eq!(get(&node, "mirror/tool/9.0/tool.bin").await?.0, 404);
    assert_eq!(
        put(&node, "mirror/tool/5.0/tool.bin", vec![1; 10]).await?,
        405
    );

    // With the upstream gone, what was cached is still served; what was not is a gateway error.
    upstream.stop();
    for (path, body) in &files[..2] {
        let (status, served) = get(&node, &format!("mirror/{path}")).await?;
        assert_eq!(status, 200);
        assert_eq!(sha256_hex(&served), sha256_hex(body));
    }
    assert_eq!(get(&node, &format!("mirror/{}", files[2].0)).await?.0, 502);
    let metrics = http()
        .get(format!("{}/metrics", node.url))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("arca_remote_hits_total{registry=\"mirror\"}"),
        "hit metrics per registry"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_registry_resolves_in_order_and_publishes_to_its_local_member() -> Result<()> {
    let upstream = TestNode::start()?;
    create_registry(
        &upstream,
        serde_json::json!({"name": "up", "package_type": "GENERIC"}),
    )
    .await?;
    let upstream_only = pseudo_random_bytes(5000, 1);
    ensure!(put(&upstream, "up/lib/1.0/lib.bin", upstream_only.clone()).await? == 201);
    ensure!(put(&upstream, "up/both/1.0/f.bin", b"from upstream".to_vec()).await? == 201);

    let node = TestNode::start()?;
    create_registry(
        &node,
        serde_json::json!({"name": "hosted", "package_type": "GENERIC"}),
    )
    .await?;
    create_registry(&node, remote("mirror", &upstream, "up")).await?;
    create_registry(
        &node,
        serde_json::json!({"name": "all", "package_type": "GENERIC", "kind": "virtual",
            "members": ["hosted", "mirror"], "publish_to": "hosted"}),
    )
    .await?;
    ensure!(put(&node, "hosted/both/1.0/f.bin", b"from hosted".to_vec()).await? == 201);

    // The first member that has a file wins; the remote fills in the rest.
    assert_eq!(
        get(&node, "all/both/1.0/f.bin").await?,
        (200, b"from hosted".to_vec())
    );
    assert_eq!(
        get(&node, "all/lib/1.0/lib.bin").await?,
        (200, upstream_only)
    );
    assert_eq!(get(&node, "all/none/1.0/x.bin").await?.0, 404);

    // A publish through the virtual registry lands in its local member.
    assert_eq!(put(&node, "all/new/1.0/n.bin", b"new".to_vec()).await?, 201);
    assert_eq!(
        get(&node, "hosted/new/1.0/n.bin").await?,
        (200, b"new".to_vec())
    );

    // Members must exist and share the type; a virtual registry does not take an upstream.
    for bad in [
        serde_json::json!({"name": "v2", "package_type": "GENERIC", "kind": "virtual", "members": ["nope"]}),
        serde_json::json!({"name": "v3", "package_type": "NPM", "kind": "virtual", "members": ["hosted"]}),
        serde_json::json!({"name": "v4", "package_type": "GENERIC", "kind": "remote"}),
        serde_json::json!({"name": "v5", "package_type": "GENERIC", "kind": "virtual",
            "members": ["hosted"], "publish_to": "mirror"}),
    ] {
        let response = http()
            .post(format!("{}/api/v1/registries", node.url))
            .bearer_auth(&node.admin_token)
            .json(&bad)
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 400, "{bad}");
    }
    Ok(())
}

/// Serves every request with a 200 that promises 1000 bytes and sends 500, until the test ends.
fn truncating_upstream() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(&[7u8; 500]);
        }
    });
    Ok(format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_upstream_body_is_an_error_and_leaves_nothing_cached() -> Result<()> {
    let upstream = truncating_upstream()?;
    let node = TestNode::start()?;
    create_registry(
        &node,
        serde_json::json!({"name": "flaky", "package_type": "GENERIC", "kind": "remote",
            "upstream": {"url": upstream}}),
    )
    .await?;
    // The answer starts while the bytes arrive; the client sees the transfer fail (or a 502 when the
    // upstream failed before answering), never a complete body.
    let response = http()
        .get(format!("{}/generic/flaky/pkg/1.0/f.bin", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    let status = response.status().as_u16();
    let body = response.bytes().await;
    assert!(
        status == 502 || body.is_err(),
        "the client gets an error: {status} {body:?}"
    );
    let packages: serde_json::Value = http()
        .get(format!("{}/api/v1/artifacts?registry=flaky", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(packages["total"], 0, "nothing recorded: {packages}");
    Ok(())
}

/// Serves one 20 MiB file: half at once, the other half three seconds later.
fn stalling_upstream(body: Vec<u8>) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let half = body.len() / 2;
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body[..half]);
            std::thread::sleep(std::time::Duration::from_secs(3));
            let _ = stream.write_all(&body[half..]);
        }
    });
    Ok(format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_streams_to_the_client_while_the_upstream_is_still_sending() -> Result<()> {
    let body = pseudo_random_bytes(20 * 1024 * 1024, 77);
    let upstream = stalling_upstream(body.clone())?;
    let node = TestNode::start()?;
    create_registry(
        &node,
        serde_json::json!({"name": "slow", "package_type": "GENERIC", "kind": "remote",
            "upstream": {"url": upstream}}),
    )
    .await?;
    let started = std::time::Instant::now();
    let mut response = http()
        .get(format!("{}/generic/slow/big/1.0/big.bin", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    let first = response.chunk().await?.map(|c| c.len()).unwrap_or_default();
    let first_after = started.elapsed();
    assert!(first > 0);
    assert!(
        first_after < std::time::Duration::from_millis(2500),
        "the first bytes came after {first_after:?}, not before the upstream finished"
    );
    let mut received = first;
    let mut hasher_input = Vec::with_capacity(body.len());
    hasher_input.extend_from_slice(&body[..first]);
    while let Some(chunk) = response.chunk().await? {
        received += chunk.len();
        hasher_input.extend_from_slice(&chunk);
    }
    assert!(started.elapsed() >= std::time::Duration::from_secs(3));
    assert_eq!(received, body.len());
    assert_eq!(sha256_hex(&hasher_input), sha256_hex(&body));
    // Once complete it is recorded, and served from the cache with ranges.
    let (status, cached) = get(&node, "slow/big/1.0/big.bin").await?;
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&cached), sha256_hex(&body));
    Ok(())
}
