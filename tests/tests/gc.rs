//! Garbage collection of chunks on a real node: it frees exactly the space of what nothing references,
//! keeps what is shared with a kept file, counts the same in a dry run, keeps the chunks of an upload
//! still in flight, and loses nothing referenced while pushes, reads and deletes run concurrently.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arca_client::{GcReport, GcRequest};
use arca_tests::{TestNode, chunk_files, http, metric, pseudo_random_bytes, sha256_hex};
use reqwest::StatusCode;
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;

async fn create_registry(node: &TestNode, name: &str) {
    let response = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": name, "package_type": "GENERIC"}))
        .send()
        .await
        .expect("create registry");
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// `package/version/filename` of a generic registry.
fn file_url(node: &TestNode, registry: &str, path: &str) -> String {
    format!("{}/generic/{registry}/{path}", node.url)
}

async fn push(node: &TestNode, registry: &str, path: &str, bytes: Vec<u8>) {
    let response = http()
        .put(file_url(node, registry, path))
        .bearer_auth(&node.admin_token)
        .body(bytes)
        .send()
        .await
        .expect("push");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::CREATED, "push {path}: {body}");
}

/// The file's bytes, or the status when it could not be read.
async fn pull(node: &TestNode, registry: &str, path: &str) -> Result<Vec<u8>, String> {
    let response = http()
        .get(file_url(node, registry, path))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    if status != StatusCode::OK {
        let body = response.text().await.unwrap_or_default();
        return Err(format!("{status}: {body}"));
    }
    response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string())
}

async fn assert_intact(node: &TestNode, registry: &str, path: &str, expected: &[u8]) {
    match pull(node, registry, path).await {
        Ok(bytes) => assert!(
            bytes.len() == expected.len() && sha256_hex(&bytes) == sha256_hex(expected),
            "{path}: {} bytes that differ from the {} pushed",
            bytes.len(),
            expected.len()
        ),
        Err(error) => panic!("{path} cannot be read: {error}\nlog:\n{}", node.log()),
    }
}

async fn delete_version(node: &TestNode, registry: &str, package: &str, version: &str) {
    let response = http()
        .delete(format!(
            "{}/api/v1/registries/{registry}/packages/{package}/versions/{version}",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("delete");
    assert_eq!(
        response.status(),
        StatusCode::NO_CONTENT,
        "{package}/{version}"
    );
}

async fn gc(node: &TestNode, dry_run: bool, grace_seconds: u64) -> GcReport {
    let report = node
        .admin_client()
        .run_gc(&GcRequest {
            dry_run,
            grace_seconds,
        })
        .await
        .expect("gc");
    assert_eq!(report.dry_run, dry_run);
    assert_eq!(
        report.scanned,
        report.referenced + report.removed + report.kept_in_grace,
        "{report:?}"
    );
    report
}

fn chunk_bytes(data_dir: &Path) -> u64 {
    chunk_files(data_dir).iter().map(|(_, size)| size).sum()
}

/// Makes every chunk file look written `seconds` ago.
fn age_all_chunks(data_dir: &Path, seconds: u64) {
    let then = SystemTime::now() - Duration::from_secs(seconds);
    for (path, _) in chunk_files(data_dir) {
        match std::fs::File::open(&path).and_then(|file| file.set_modified(then)) {
            Ok(()) => {}
            // Collected meanwhile.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => panic!("aging {}: {error}", path.display()),
        }
    }
}

#[tokio::test]
async fn gc_frees_what_nothing_references_and_keeps_shared_chunks() {
    let node = TestNode::start().expect("node");
    create_registry(&node, "files").await;
    let gone = pseudo_random_bytes(6 * MIB + 17, 1);
    let kept = pseudo_random_bytes(5 * MIB + 3, 2);
    let shared = pseudo_random_bytes(3 * MIB + 5, 3);
    push(&node, "files", "gone/1.0/gone.bin", gone.clone()).await;
    push(&node, "files", "kept/1.0/kept.bin", kept.clone()).await;
    push(&node, "files", "twin-a/1.0/twin.bin", shared.clone()).await;
    push(&node, "files", "twin-b/1.0/twin.bin", shared.clone()).await;
    let full = chunk_bytes(node.data_dir());
    assert_eq!(full, (gone.len() + kept.len() + shared.len()) as u64);

    let nothing = gc(&node, false, 0).await;
    assert_eq!(
        (nothing.removed, nothing.kept_in_grace),
        (0, 0),
        "{nothing:?}"
    );
    assert_eq!(nothing.referenced, nothing.scanned);

    delete_version(&node, "files", "gone", "1.0").await;
    delete_version(&node, "files", "twin-a", "1.0").await;
    let young = gc(&node, false, 3600).await;
    assert_eq!(young.removed, 0, "younger than the grace period: {young:?}");
    assert!(young.kept_in_grace > 0, "{young:?}");

    let dry = gc(&node, true, 0).await;
    assert_eq!(
        chunk_bytes(node.data_dir()),
        full,
        "a dry run removes nothing"
    );
    assert_eq!(dry.removed_bytes, gone.len() as u64, "{dry:?}");
    let real = gc(&node, false, 0).await;
    assert_eq!(
        GcReport {
            dry_run: true,
            ..real
        },
        dry,
        "the dry run counted what the real run removed"
    );
    assert_eq!(
        chunk_bytes(node.data_dir()),
        full - gone.len() as u64,
        "exactly the deleted file's chunks are freed"
    );
    assert!(pull(&node, "files", "gone/1.0/gone.bin").await.is_err());
    // The node's metrics count the runs that removed something and what they freed.
    for (name, expected) in [
        ("arca_gc_runs_total", 3.0),
        ("arca_gc_chunks_removed_total", real.removed as f64),
        ("arca_gc_bytes_removed_total", gone.len() as f64),
    ] {
        let value = metric(&node.url, name, "").await.expect("metrics");
        assert_eq!(value, expected, "{name}");
    }
    assert_intact(&node, "files", "kept/1.0/kept.bin", &kept).await;
    assert_intact(&node, "files", "twin-b/1.0/twin.bin", &shared).await;
    let again = gc(&node, false, 0).await;
    assert_eq!((again.removed, again.referenced), (0, again.scanned));

    // Pushing the deleted bytes again stores them again.
    push(&node, "files", "gone/2.0/gone.bin", gone.clone()).await;
    assert_intact(&node, "files", "gone/2.0/gone.bin", &gone).await;
    assert_eq!(chunk_bytes(node.data_dir()), full);
}

#[tokio::test]
async fn gc_is_for_admins_and_the_cli_prints_its_report() {
    let node = TestNode::start().expect("node");
    create_registry(&node, "files").await;
    // Smaller than the smallest chunk: one chunk.
    let small = 300 * 1024;
    push(&node, "files", "a/1.0/a.bin", pseudo_random_bytes(small, 4)).await;
    delete_version(&node, "files", "a", "1.0").await;

    let created: Value = http()
        .post(format!("{}/api/v1/tokens", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": "ci", "role": "write"}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token JSON");
    let writer = created["token"].as_str().expect("secret");
    let refused = http()
        .post(format!("{}/api/v1/gc", node.url))
        .bearer_auth(writer)
        .json(&json!({"dry_run": true}))
        .send()
        .await
        .expect("gc");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let anonymous = http()
        .post(format!("{}/api/v1/gc", node.url))
        .send()
        .await
        .expect("gc");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let invalid = http()
        .post(format!("{}/api/v1/gc", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"grace": "1h"}))
        .send()
        .await
        .expect("gc");
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);

    // No body: the defaults (a real run, an hour of grace).
    let defaults: Value = http()
        .post(format!("{}/api/v1/gc", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("gc")
        .json()
        .await
        .expect("report");
    assert_eq!(defaults["dry_run"], false);
    assert_eq!(defaults["removed"], 0);
    assert_eq!(defaults["kept_in_grace"], 1);

    let output = node.cli(&[
        "gc",
        "run",
        "--dry-run",
        "--grace",
        "0s",
        "--format",
        "json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let dry: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["removed"], 1);
    assert_eq!(dry["removed_bytes"], small as u64);
    let output = node.cli(&["gc", "run", "--grace", "0s"]);
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("REMOVED") && table.contains("300.00 KiB"),
        "{table}"
    );
    assert_eq!(chunk_bytes(node.data_dir()), 0);
}

#[tokio::test]
async fn an_upload_started_before_gc_keeps_its_chunks_and_commits() {
    let node = TestNode::start().expect("node");
    create_registry(&node, "files").await;
    let data = pseudo_random_bytes(24 * MIB + 11, 5);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let body = futures::stream::unfold(receiver, |mut receiver| async move {
        let piece = receiver.recv().await?;
        Some((Ok::<_, std::io::Error>(piece), receiver))
    });
    let url = file_url(&node, "files", "slow/1.0/slow.bin");
    let token = node.admin_token.clone();
    let upload = tokio::spawn(async move {
        http()
            .put(url)
            .bearer_auth(token)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
    });
    let started = Instant::now();
    let first = 18 * MIB;
    for piece in data[..first].chunks(MIB) {
        sender.send(piece.to_vec()).await.expect("send");
    }
    // The node cuts and stores chunks as the bytes arrive.
    let deadline = Instant::now() + Duration::from_secs(30);
    while chunk_files(node.data_dir()).is_empty() {
        assert!(Instant::now() < deadline, "no chunk stored mid-upload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let written = chunk_bytes(node.data_dir());

    let grace = started.elapsed().as_secs() + 60;
    let during = gc(&node, false, grace).await;
    assert!(during.kept_in_grace >= 1, "{during:?}");
    assert_eq!((during.removed, during.referenced), (0, 0), "{during:?}");
    // Even without a grace period, a blob still being written keeps its chunks.
    let during = gc(&node, false, 0).await;
    assert!(during.kept_in_grace >= 1, "{during:?}");
    assert_eq!(during.removed, 0, "{during:?}");
    assert!(chunk_bytes(node.data_dir()) >= written);

    for piece in data[first..].chunks(MIB) {
        sender.send(piece.to_vec()).await.expect("send");
    }
    drop(sender);
    let response = upload.await.expect("task").expect("upload");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_intact(&node, "files", "slow/1.0/slow.bin", &data).await;
    let after = gc(&node, false, 0).await;
    assert_eq!((after.removed, after.kept_in_grace), (0, 0), "{after:?}");
    assert_eq!(chunk_bytes(node.data_dir()), data.len() as u64);
}

/// What the stress test's tasks pushed, and what they deleted again.
#[derive(Default)]
struct Ledger {
    /// Files present: path -> content seed.
    present: BTreeMap<String, u64>,
    /// Every content pushed, by seed.
    contents: BTreeMap<u64, Arc<Vec<u8>>>,
}

impl Ledger {
    /// Seeds of contents no present file has: their chunks are unreferenced.
    fn deleted(&self) -> Vec<u64> {
        let present: BTreeSet<u64> = self.present.values().copied().collect();
        self.contents
            .keys()
            .filter(|seed| !present.contains(seed))
            .copied()
            .collect()
    }
}

fn content(seed: u64) -> Vec<u8> {
    // 100 KiB to ~2.6 MiB: one to a few chunks.
    let len = 100 * 1024 + (seed.wrapping_mul(2_654_435_761) % (5 * MIB as u64 / 2)) as usize;
    pseudo_random_bytes(len, seed)
}

/// Four tasks push new files, push again bytes deleted earlier, read back and delete, while
/// collections with a 30 s grace period run back to back and another task keeps making every chunk
/// file look two hours old (only between pushes, so what it ages is either referenced or deleted):
/// the collections keep finding old unreferenced chunks that a push is about to reuse.
#[tokio::test]
async fn gc_under_concurrent_pushes_and_deletes_loses_nothing_referenced() {
    const TASKS: u64 = 4;
    const STRESS: Duration = Duration::from_secs(5);
    let node = Arc::new(TestNode::start().expect("node"));
    create_registry(&node, "files").await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    // Pushes hold it shared from the first byte to the answer; aging takes it exclusively.
    let pushing = Arc::new(tokio::sync::RwLock::new(()));

    for seed in 1000..1012u64 {
        let bytes = content(seed);
        let path = format!("old-{seed}/1.0/old.bin");
        push(&node, "files", &path, bytes.clone()).await;
        let kept = seed.is_multiple_of(3);
        {
            let mut book = ledger.lock().expect("ledger");
            book.contents.insert(seed, Arc::new(bytes));
            if kept {
                book.present.insert(path, seed);
            }
        }
        if !kept {
            delete_version(&node, "files", &format!("old-{seed}"), "1.0").await;
        }
    }
    age_all_chunks(node.data_dir(), 7200);

    let stop = Arc::new(AtomicBool::new(false));
    let revived = Arc::new(AtomicUsize::new(0));
    let mut pushers = Vec::new();
    for task in 0..TASKS {
        let node = node.clone();
        let ledger = ledger.clone();
        let stop = stop.clone();
        let revived = revived.clone();
        let pushing = pushing.clone();
        pushers.push(tokio::spawn(async move {
            let mut pushed: Vec<(String, String)> = Vec::new();
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                // Every other push brings back bytes deleted before (old, unreferenced chunks,
                // or already collected ones); the others are new.
                let bytes_and_seed = {
                    let book = ledger.lock().expect("ledger");
                    let deleted = book.deleted();
                    if round.is_multiple_of(2) && !deleted.is_empty() {
                        let seed = deleted[revived.fetch_add(1, Ordering::Relaxed) % deleted.len()];
                        Some((book.contents[&seed].clone(), seed))
                    } else {
                        None
                    }
                };
                let (bytes, seed) = bytes_and_seed.unwrap_or_else(|| {
                    let seed = task * 1_000_000 + round;
                    (Arc::new(content(seed)), seed)
                });
                let package = format!("t{task}-{round}");
                let path = format!("{package}/1.0/file.bin");
                {
                    let _pushing = pushing.read().await;
                    push(&node, "files", &path, bytes.to_vec()).await;
                    let mut book = ledger.lock().expect("ledger");
                    book.contents.insert(seed, bytes.clone());
                    book.present.insert(path.clone(), seed);
                }
                assert_intact(&node, "files", &path, &bytes).await;
                pushed.push((package, path));
                // Delete every other file pushed, a round after pushing it.
                if round.is_multiple_of(2) && pushed.len() >= 2 {
                    let (package, path) = pushed.remove(pushed.len() - 2);
                    ledger.lock().expect("ledger").present.remove(&path);
                    delete_version(&node, "files", &package, "1.0").await;
                }
            }
            round
        }));
    }

    let ager = {
        let node = node.clone();
        let stop = stop.clone();
        let pushing = pushing.clone();
        tokio::spawn(async move {
            let mut agings = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _alone = pushing.write().await;
                age_all_chunks(node.data_dir(), 7200);
                agings += 1;
            }
            agings
        })
    };

    let collector = {
        let node = node.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut runs = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let dry_run = runs.len() % 4 == 3;
                runs.push(gc(&node, dry_run, 30).await);
            }
            runs
        })
    };

    tokio::time::sleep(STRESS).await;
    stop.store(true, Ordering::Relaxed);
    let mut rounds = 0;
    for pusher in pushers {
        rounds += pusher.await.expect("pusher");
    }
    let agings = ager.await.expect("ager");
    let runs = collector.await.expect("collector");
    let removed: u64 = runs.iter().filter(|r| !r.dry_run).map(|r| r.removed).sum();
    eprintln!(
        "{rounds} pushes ({} of deleted bytes), {} collections, {agings} agings, {removed} chunks \
         removed during the pushes",
        revived.load(Ordering::Relaxed),
        runs.len()
    );
    assert!(rounds >= TASKS * 3, "only {rounds} pushes");
    assert!(runs.len() >= 2, "only {} collections", runs.len());
    assert!(
        removed > 0,
        "old unreferenced chunks were collected: {runs:?}"
    );

    // Everything still referenced is intact.
    let (present, contents) = {
        let book = ledger.lock().expect("ledger");
        (book.present.clone(), book.contents.clone())
    };
    for (path, seed) in &present {
        assert_intact(&node, "files", path, &contents[seed]).await;
    }

    // Once the pushes stop, a run without grace leaves exactly the referenced bytes: distinct
    // contents share no chunks, identical ones share all.
    let before = chunk_bytes(node.data_dir());
    let last = gc(&node, false, 0).await;
    let after = chunk_bytes(node.data_dir());
    assert_eq!(before - after, last.removed_bytes, "{last:?}");
    let referenced: BTreeSet<u64> = present.values().copied().collect();
    let expected: u64 = referenced
        .iter()
        .map(|seed| contents[seed].len() as u64)
        .sum();
    assert_eq!(after, expected, "{last:?}");
    let quiet = gc(&node, true, 0).await;
    assert_eq!((quiet.removed, quiet.referenced), (0, quiet.scanned));
    for (path, seed) in &present {
        assert_intact(&node, "files", path, &contents[seed]).await;
    }
}
