//! Durability: a node killed with SIGKILL right after acknowledging pushes serves every acknowledged
//! file byte for byte after restart, whether its metadata comes back from the log, from a snapshot, or
//! both.

use arca_tests::{TestNode, http, pseudo_random_bytes, sha256_hex};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn acknowledged_pushes_survive_sigkill() {
    // Snapshots every few entries, so the log is purged behind them and a restart replays what
    // came after the last durable state.
    let mut node = TestNode::start_with(
        &[],
        &[
            ("ARCA_SNAPSHOT_LOG_BYTES", "2048"),
            ("ARCA_SNAPSHOT_STATE_PERCENT", "0"),
        ],
    )
    .expect("node");
    let created = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": "durable", "package_type": "GENERIC"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), StatusCode::CREATED);

    let mut files = Vec::new();
    for i in 0..9u64 {
        let size = if i == 8 {
            12 * 1024 * 1024 + 5
        } else {
            1000 + i as usize * 7919
        };
        let data = pseudo_random_bytes(size, 100 + i);
        let url = format!("{}/generic/durable/pkg{}/1.{i}/file.bin", node.url, i % 3);
        let response = http()
            .put(&url)
            .bearer_auth(&node.admin_token)
            .body(data.clone())
            .send()
            .await
            .expect("put");
        assert_eq!(response.status(), StatusCode::CREATED);
        files.push((format!("pkg{}/1.{i}/file.bin", i % 3), data));
    }
    let metadata = http()
        .put(format!("{}/api/v1/registries/durable/metadata", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"metadata": {"owner": "storage-team"}}))
        .send()
        .await
        .expect("metadata");
    assert_eq!(metadata.status(), StatusCode::OK);

    // A snapshot is built (the log grew past its threshold) and the log before it purged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !node.log().contains("built metadata snapshot") {
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot was built: {}",
            node.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The last acknowledgement has arrived: crash now, twice over.
    for round in 0..2 {
        node.kill();
        node.restart().expect("restart");
        for (path, data) in &files {
            let response = http()
                .get(format!("{}/generic/durable/{path}", node.url))
                .bearer_auth(&node.admin_token)
                .send()
                .await
                .expect("get");
            assert_eq!(response.status(), StatusCode::OK, "round {round}: {path}");
            let body = response.bytes().await.expect("body");
            assert_eq!(body.len(), data.len(), "round {round}: {path}");
            assert_eq!(sha256_hex(&body), sha256_hex(data), "round {round}: {path}");
        }
        let registry: Value = http()
            .get(format!("{}/api/v1/registries/durable", node.url))
            .bearer_auth(&node.admin_token)
            .send()
            .await
            .expect("registry")
            .json()
            .await
            .expect("json");
        assert_eq!(registry["metadata"]["owner"], "storage-team");
        assert_eq!(registry["package_count"], 3);
    }
}

/// An acknowledged change has its audit record even when the node dies the moment it answers: the
/// record travels in the change's own Raft entry.
#[tokio::test]
async fn an_acknowledged_change_keeps_its_audit_record_through_sigkill() {
    let mut node = TestNode::start().expect("node");
    for round in 0..3 {
        let name = format!("audited-{round}");
        let created = http()
            .post(format!("{}/api/v1/registries", node.url))
            .bearer_auth(&node.admin_token)
            .json(&json!({"name": name, "package_type": "GENERIC"}))
            .send()
            .await
            .expect("create");
        assert_eq!(created.status(), StatusCode::CREATED);
        node.kill();
        node.restart().expect("restart");
        let events: Value = http()
            .get(format!("{}/api/v1/audit?registry={name}", node.url))
            .bearer_auth(&node.admin_token)
            .send()
            .await
            .expect("audit")
            .json()
            .await
            .expect("json");
        let events = events["events"].as_array().cloned().unwrap_or_default();
        let creation = events
            .iter()
            .find(|e| e["action"] == "POST /api/v1/registries")
            .unwrap_or_else(|| panic!("round {round}: no creation event in {events:?}"));
        assert_eq!(creation["result"], 201, "{creation}");
        assert_eq!(creation["actor"], "admin");
    }
}
