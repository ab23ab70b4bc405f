//! A full disk: uploads are answered 507 in each protocol's own error format, the metadata stays
//! writable, free space is exported, and the chunks of an upload that ran out of room are removed
//! at once. Once with the free-space floor set above what the disk has, and once on a real full
//! file system (a small tmpfs the test mounts, which needs root; under `CI=true` not being able to
//! mount it fails the test). And when something else fills the disk until the metadata store itself
//! cannot commit, the node answers 503 "down" and starts itself again, recovering once there is room.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use arca_tests::clients::in_ci;
use arca_tests::{TestNode, chunk_files, http, metric, pseudo_random_bytes, sha256_hex};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn create_registry(node: &TestNode, name: &str, package_type: &str) -> Result<StatusCode> {
    Ok(http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": name, "package_type": package_type}))
        .send()
        .await?
        .status())
}

async fn put_generic(
    node: &TestNode,
    path: &str,
    body: reqwest::Body,
) -> Result<(StatusCode, String)> {
    let response = http()
        .put(format!("{}/generic/{path}", node.url))
        .bearer_auth(&node.admin_token)
        .body(body)
        .send()
        .await?;
    Ok((response.status(), response.text().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_free_space_floor_uploads_get_507_and_metadata_stays_writable() -> Result<()> {
    let node = TestNode::start_with(&[], &[("ARCA_MIN_FREE_BYTES", "1000000000000000000")])?;
    ensure!(create_registry(&node, "files", "GENERIC").await? == StatusCode::CREATED);
    ensure!(create_registry(&node, "images", "DOCKER").await? == StatusCode::CREATED);

    let body = pseudo_random_bytes(100_000, 1);
    let (status, text) = put_generic(&node, "files/tool/1.0/tool.bin", body.clone().into()).await?;
    ensure!(
        status == StatusCode::INSUFFICIENT_STORAGE,
        "{status}: {text}"
    );
    let error: Value = serde_json::from_str(&text)?;
    assert_eq!(error["error"]["code"], "INSUFFICIENT_STORAGE", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("disk is full")),
        "{error}"
    );

    // The OCI API answers in its own error format.
    let digest = format!("sha256:{}", sha256_hex(&body));
    let pushed = http()
        .post(format!(
            "{}/v2/images/app/blobs/uploads/?digest={digest}",
            node.url
        ))
        .basic_auth("arca", Some(&node.admin_token))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await?;
    ensure!(
        pushed.status() == StatusCode::INSUFFICIENT_STORAGE,
        "{}",
        pushed.status()
    );
    let error: Value = pushed.json().await?;
    assert_eq!(
        error["errors"][0]["code"], "INSUFFICIENT_STORAGE",
        "{error}"
    );

    // Health says why uploads are refused (and the node still serves).
    let health: Value = http()
        .get(format!("{}/healthz", node.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("min_free_bytes")),
        "{health}"
    );

    // Metadata writes go on, and the floor and the free space are exported.
    ensure!(create_registry(&node, "more", "GENERIC").await? == StatusCode::CREATED);
    ensure!(metric(&node.url, "arca_disk_min_free_bytes", "").await? >= 1e18);
    ensure!(metric(&node.url, "arca_disk_available_bytes", "").await? > 0.0);
    Ok(())
}

/// A tmpfs of `size` mounted at `path` for as long as this lives.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .context("running mount")?;
        if !output.status.success() {
            bail!(
                "mount -t tmpfs: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Mounts a tmpfs of `size` for a test, or says why the test is skipped (outside CI only).
fn small_disk(outer: &Path, size: &str) -> Result<Option<Tmpfs>> {
    match Tmpfs::mount(&outer.join("small"), size) {
        Ok(mounted) => Ok(Some(mounted)),
        Err(error) if !in_ci() => {
            eprintln!("SKIPPED: cannot mount a tmpfs here ({error}); CI=true fails instead");
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// Fills the file system of `dir` with a file there, to its last byte.
fn fill(dir: &Path) -> Result<PathBuf> {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path)?;
    let block = vec![0x5a; 1 << 20];
    for size in [1 << 20, 4096, 1] {
        while file.write_all(&block[..size]).is_ok() {}
    }
    let _ = file.sync_all();
    Ok(path)
}

/// The registries `node` lists.
async fn registry_names(node: &TestNode) -> Result<Vec<String>> {
    let listed: Value = http()
        .get(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .json()
        .await?;
    Ok(listed
        .as_array()
        .context("a list")?
        .iter()
        .filter_map(|registry| registry["name"].as_str().map(str::to_string))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_store_that_cannot_commit_restarts_itself_once_there_is_room() -> Result<()> {
    let outer = tempfile::tempdir()?;
    let Some(_tmpfs) = small_disk(outer.path(), "24m")? else {
        return Ok(());
    };
    let small = outer.path().join("small");
    let data_dir = tempfile::tempdir_in(&small)?;
    let node = TestNode::start_in(data_dir, &[], &[("ARCA_MIN_FREE_BYTES", "0")])?;
    ensure!(create_registry(&node, "before", "GENERIC").await? == StatusCode::CREATED);
    let filler = fill(&small)?;

    // Metadata writes go on until the store has no room to commit one.
    let mut acknowledged = vec!["before".to_string()];
    let mut refused = None;
    for i in 0..2000 {
        let name = format!("r{i}");
        match create_registry(&node, &name, "GENERIC").await {
            Ok(StatusCode::CREATED) => acknowledged.push(name),
            other => {
                refused = Some(format!("{other:?}"));
                break;
            }
        }
    }
    let refused = refused.context("2000 registries fitted on a full disk")?;
    eprintln!(
        "{} registries acknowledged, then {refused}",
        acknowledged.len()
    );

    // Meanwhile the address answers, and says the node is down and why.
    let deadline = Instant::now() + Duration::from_secs(20);
    let down = loop {
        ensure!(
            Instant::now() < deadline,
            "no 'down' answer: {}",
            node.log()
        );
        if let Ok(response) = http().get(format!("{}/healthz", node.url)).send().await
            && response.status() == StatusCode::SERVICE_UNAVAILABLE
        {
            let body: Value = response.json().await?;
            if body["status"] == "down" {
                break body;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    ensure!(
        down["reason"]
            .as_str()
            .is_some_and(|r| r.contains("No space left")),
        "{down}"
    );

    // Room returns: the node is back by itself, with everything it acknowledged.
    std::fs::remove_file(&filler)?;
    let deadline = Instant::now() + Duration::from_secs(90);
    while create_registry(&node, "after", "GENERIC").await.ok() != Some(StatusCode::CREATED) {
        ensure!(Instant::now() < deadline, "not back: {}", node.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = registry_names(&node).await?;
    for name in acknowledged.iter().chain([&"after".to_string()]) {
        ensure!(listed.contains(name), "{name} is missing from {listed:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_really_full_disk_answers_507_and_keeps_nothing_of_the_failed_upload() -> Result<()> {
    let outer = tempfile::tempdir()?;
    let Some(_tmpfs) = small_disk(outer.path(), "48m")? else {
        return Ok(());
    };
    let data_dir = tempfile::tempdir_in(outer.path().join("small"))?;
    // No floor: the kernel's ENOSPC is what stops the upload.
    let node = TestNode::start_in(data_dir, &[], &[("ARCA_MIN_FREE_BYTES", "0")])?;
    ensure!(create_registry(&node, "files", "GENERIC").await? == StatusCode::CREATED);

    // 80 MiB, streamed without a length (so nothing can refuse it up front).
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = (0..80)
        .map(|i| Ok(pseudo_random_bytes(1 << 20, 100 + i)))
        .collect();
    let streamed = reqwest::Body::wrap_stream(futures::stream::iter(pieces));
    let (status, text) = put_generic(&node, "files/big/1.0/big.bin", streamed).await?;
    ensure!(
        status == StatusCode::INSUFFICIENT_STORAGE,
        "{status}: {text}"
    );
    let error: Value = serde_json::from_str(&text)?;
    assert_eq!(error["error"]["code"], "INSUFFICIENT_STORAGE", "{error}");

    // Its chunks are gone at once, not left for garbage collection.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !chunk_files(node.data_dir()).is_empty() {
        ensure!(
            Instant::now() < deadline,
            "{} chunk files of the failed upload are left",
            chunk_files(node.data_dir()).len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The node goes on: metadata writes, and an upload that fits.
    ensure!(create_registry(&node, "after", "GENERIC").await? == StatusCode::CREATED);
    let small = pseudo_random_bytes(3 << 20, 7);
    let (status, text) =
        put_generic(&node, "files/small/1.0/small.bin", small.clone().into()).await?;
    ensure!(status == StatusCode::CREATED, "{status}: {text}");
    let fetched = http()
        .get(format!("{}/generic/files/small/1.0/small.bin", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .bytes()
        .await?;
    ensure!(fetched.as_ref() == small.as_slice());
    assert!(
        !node.log().contains("metadata store stopped"),
        "{}",
        node.log()
    );
    Ok(())
}
