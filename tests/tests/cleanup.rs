//! Cleanup policies on a real node: a dry run lists exactly what the real run then deletes, a
//! metadata exception keeps its version, garbage collection then frees the deleted versions' space,
//! and an immutable registry, which refuses every ad-hoc deletion, lets its cleanup policy delete.

use arca_client::{CleanupPolicy, CleanupReport, CleanupRule, GcRequest};
use arca_tests::{TestNode, http, pseudo_random_bytes};
use reqwest::StatusCode;
use serde_json::json;

async fn create_registry(node: &TestNode, name: &str, immutable: bool) {
    let response = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": name, "package_type": "GENERIC", "immutable": immutable}))
        .send()
        .await
        .expect("create registry");
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn push(node: &TestNode, registry: &str, path: &str, bytes: Vec<u8>) {
    let response = http()
        .put(format!("{}/generic/{registry}/{path}", node.url))
        .bearer_auth(&node.admin_token)
        .body(bytes)
        .send()
        .await
        .expect("push");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::CREATED, "push {path}: {body}");
}

async fn status_of(node: &TestNode, registry: &str, path: &str) -> StatusCode {
    http()
        .get(format!("{}/generic/{registry}/{path}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("pull")
        .status()
}

/// Pushes `tool` versions 1.0 to 1.4 (each its own 256 KiB), oldest first.
async fn push_versions(node: &TestNode, registry: &str) {
    for (index, version) in ["1.0", "1.1", "1.2", "1.3", "1.4"].into_iter().enumerate() {
        let bytes = pseudo_random_bytes(256 * 1024, 100 + index as u64);
        push(node, registry, &format!("tool/{version}/tool.bin"), bytes).await;
        // Distinct creation times, so "newest" is unambiguous.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn keep_two_unless_approved() -> CleanupPolicy {
    CleanupPolicy {
        rules: vec![CleanupRule {
            name: "keep-two".into(),
            keep_last: Some(2),
            keep_metadata: vec!["approved:true".into()],
            ..Default::default()
        }],
    }
}

fn versions(report: &[arca_client::PlannedDeletion]) -> Vec<(String, String)> {
    report
        .iter()
        .map(|p| (p.package.clone(), p.version.clone()))
        .collect()
}

#[tokio::test]
async fn dry_run_matches_the_real_run_and_exceptions_survive() {
    let node = TestNode::start().expect("node");
    let client = node.admin_client();
    create_registry(&node, "files", false).await;
    push_versions(&node, "files").await;
    let response = http()
        .put(format!(
            "{}/api/v1/registries/files/packages/tool/versions/1.0/metadata",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({"metadata": {"approved": "true"}}))
        .send()
        .await
        .expect("metadata");
    assert!(response.status().is_success(), "{}", response.status());

    // No policy: nothing to do.
    let empty = client.run_cleanup("files", true).await.expect("dry run");
    assert!(empty.planned.is_empty(), "{empty:?}");

    let stored = client
        .set_cleanup_policy("files", &keep_two_unless_approved())
        .await
        .expect("set policy");
    assert_eq!(stored, keep_two_unless_approved());
    assert_eq!(
        client
            .get_cleanup_policy("files")
            .await
            .expect("get policy"),
        keep_two_unless_approved()
    );

    let dry: CleanupReport = client.run_cleanup("files", true).await.expect("dry run");
    assert!(dry.dry_run);
    let expected = vec![
        ("tool".to_string(), "1.1".to_string()),
        ("tool".to_string(), "1.2".to_string()),
    ];
    assert_eq!(versions(&dry.planned), expected, "{dry:?}");
    assert!(dry.deleted.is_empty() && dry.refused.is_empty(), "{dry:?}");
    assert!(dry.planned.iter().all(|p| p.rule == "keep-two"));
    for version in ["1.0", "1.1", "1.2", "1.3", "1.4"] {
        assert_eq!(
            status_of(&node, "files", &format!("tool/{version}/tool.bin")).await,
            StatusCode::OK,
            "a dry run deleted {version}"
        );
    }

    // The CLI shows the same plan as a table.
    let output = node.cli(&["registry", "cleanup", "run", "files", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("would delete") && stdout.contains("1.1") && stdout.contains("1.2"));
    assert!(!stdout.contains("1.0 "), "{stdout}");

    let chunk_bytes_before = client
        .run_gc(&GcRequest {
            dry_run: true,
            grace_seconds: 0,
        })
        .await
        .expect("gc dry run");
    assert_eq!(chunk_bytes_before.removed, 0, "{chunk_bytes_before:?}");

    let real = client.run_cleanup("files", false).await.expect("run");
    assert!(!real.dry_run);
    assert_eq!(real.planned, dry.planned);
    assert_eq!(real.deleted, dry.planned);
    assert!(real.refused.is_empty(), "{real:?}");
    for (version, status) in [
        ("1.0", StatusCode::OK),
        ("1.1", StatusCode::NOT_FOUND),
        ("1.2", StatusCode::NOT_FOUND),
        ("1.3", StatusCode::OK),
        ("1.4", StatusCode::OK),
    ] {
        assert_eq!(
            status_of(&node, "files", &format!("tool/{version}/tool.bin")).await,
            status,
            "tool {version}"
        );
    }
    // Each deletion is an event (and in the audit trail), naming its rule.
    let events: serde_json::Value = http()
        .get(format!(
            "{}/api/v1/events?registry=files&limit=1000",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("events")
        .json()
        .await
        .expect("JSON");
    let cleaned: Vec<&serde_json::Value> = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| event["type"] == "io.arca.artifact.cleaned")
        .collect();
    assert_eq!(cleaned.len(), real.deleted.len(), "{events:#}");
    for deleted in &real.deleted {
        let subject = format!(
            "/api/v1/registries/files/packages/{}/versions/{}",
            deleted.package, deleted.version
        );
        assert!(
            cleaned
                .iter()
                .any(|event| event["subject"] == subject.as_str()
                    && event["data"]["detail"] == "cleanup rule keep-two"),
            "{subject}: {events:#}"
        );
    }
    // Nothing more to do: the plan is stable.
    let again = client.run_cleanup("files", true).await.expect("dry run");
    assert!(again.planned.is_empty(), "{again:?}");

    // Garbage collection frees the deleted versions' chunks.
    let gc = client
        .run_gc(&GcRequest {
            dry_run: false,
            grace_seconds: 0,
        })
        .await
        .expect("gc");
    assert!(gc.removed_bytes >= 2 * 256 * 1024, "{gc:?}");
    assert_eq!(
        status_of(&node, "files", "tool/1.0/tool.bin").await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn immutable_registries_delete_only_by_policy_and_policies_need_admin() {
    let node = TestNode::start().expect("node");
    let client = node.admin_client();
    create_registry(&node, "frozen", true).await;
    push_versions(&node, "frozen").await;
    let response = http()
        .delete(format!(
            "{}/api/v1/registries/frozen/packages/tool/versions/1.0",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::CONFLICT);
    client
        .set_cleanup_policy("frozen", &keep_two_unless_approved())
        .await
        .expect("set policy");
    let dry = client.run_cleanup("frozen", true).await.expect("dry run");
    let report = client.run_cleanup("frozen", false).await.expect("run");
    assert_eq!(report.planned.len(), 3, "{report:?}");
    assert!(report.refused.is_empty(), "{report:?}");
    assert_eq!(report.deleted, dry.planned);
    assert_eq!(
        status_of(&node, "frozen", "tool/1.0/tool.bin").await,
        StatusCode::NOT_FOUND
    );

    // Invalid policies and anonymous callers are refused; unknown registries are 404.
    let response = http()
        .put(format!(
            "{}/api/v1/registries/frozen/cleanup-policy",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({"rules": [{"name": ""}]}))
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = http()
        .post(format!("{}/api/v1/registries/frozen/cleanup", node.url))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = http()
        .post(format!(
            "{}/api/v1/registries/nowhere/cleanup?dry_run=true",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
