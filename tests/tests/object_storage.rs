//! Chunks kept in a real S3-compatible object store (Garage, started by the tests): the nodes of a
//! site share one bucket (a push at one node is read at the other with no copy between them, and
//! the bucket holds the bytes once) while another site keeps its own copy on disk; a chunk deleted
//! behind Arca's back is put back from the other site; garbage collection trashes, then deletes,
//! exactly the objects no version uses; the store going away mid-push is a 503 that commits
//! nothing.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use arca_tests::cluster::{
    MemberSpec, TestCluster, create_registry, create_registry_with, expect_file, get, put,
    wait_replicated,
};
use arca_tests::garage::Garage;
use arca_tests::{TestNode, chunk_files, http, pseudo_random_bytes};
use serde_json::json;

/// Creates the GENERIC registry `files` on `node`.
async fn create_files_registry(node: &TestNode) -> Result<()> {
    let created = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": "files", "package_type": "GENERIC"}))
        .send()
        .await?;
    ensure!(
        created.status().as_u16() == 201,
        "create files: {}",
        created.status()
    );
    Ok(())
}

/// A node keeping its chunks in the bucket under `prefix`, with the registry `files`.
async fn node_on_bucket(garage: &Garage, prefix: &str) -> Result<TestNode> {
    let args = garage.node_args(prefix);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = TestNode::start_with(&args, &garage.env())?;
    create_files_registry(&node).await?;
    Ok(node)
}

/// Total bytes of `objects`.
fn bytes_of(objects: &[(String, u64)]) -> u64 {
    objects.iter().map(|(_, size)| size).sum()
}

/// Runs a garbage collection at `url` with no grace period.
async fn collect(url: &str, token: &str) -> Result<serde_json::Value> {
    // Object stores keep modification times to the millisecond or second: let "now" pass them.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = http()
        .post(format!("{url}/api/v1/gc"))
        .bearer_auth(token)
        .json(&json!({"grace_seconds": 0}))
        .send()
        .await?;
    ensure!(response.status().is_success(), "gc: {}", response.status());
    Ok(response.json().await?)
}

async fn delete_version(url: &str, token: &str, path: &str) -> Result<()> {
    let response = http()
        .delete(format!("{url}/api/v1/registries/{path}"))
        .bearer_auth(token)
        .send()
        .await?;
    ensure!(
        response.status().as_u16() == 204,
        "delete {path}: {}",
        response.status()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_shares_one_bucket_and_another_site_keeps_its_own_copy() -> Result<()> {
    let Some(garage) = Garage::start("a_site_shares_one_bucket")? else {
        return Ok(());
    };
    let env = garage.env();
    let in_bucket = |site: &'static str| MemberSpec {
        site,
        args: garage.node_args("site-a"),
        env: env.clone(),
    };
    let mut cluster = TestCluster::start_members(&[
        in_bucket("a"),
        in_bucket("a"),
        MemberSpec {
            site: "b",
            args: Vec::new(),
            env: Vec::new(),
        },
    ])
    .await?;
    let token = cluster.admin_token().to_string();
    create_registry(&cluster, "files", "GENERIC").await?;

    // A push at A1 is read at A2 straight from the bucket, and copied to site B's disk.
    let first = pseudo_random_bytes(6 << 20, 11);
    ensure!(put(&cluster, 0, "files", "one/1/one.bin", first.clone()).await? == 201);
    expect_file(&cluster, 1, "files", "one/1/one.bin", &first).await?;
    expect_file(&cluster, 2, "files", "one/1/one.bin", &first).await?;
    wait_replicated(&cluster, 1).await?;
    wait_replicated(&cluster, 2).await?;
    let fetched_by_a2 = cluster
        .metric(1, "arca_peer_bytes_received_total", "")
        .await?;
    ensure!(
        fetched_by_a2 == 0.0,
        "A2 shares A1's bucket, yet fetched {fetched_by_a2} bytes from peers"
    );
    for index in [0, 1] {
        let local = chunk_files(cluster.members[index].node.data_dir());
        ensure!(
            local.is_empty(),
            "member {index} kept chunks on its disk: {local:?}"
        );
    }
    let site_a = garage.objects("site-a/chunks").await?;
    ensure!(
        bytes_of(&site_a) == first.len() as u64,
        "site A's bucket holds {} bytes for a {}-byte file: one copy for the site, not one per node",
        bytes_of(&site_a),
        first.len()
    );
    let site_b: u64 = chunk_files(cluster.members[2].node.data_dir())
        .iter()
        .map(|(_, size)| size)
        .sum();
    ensure!(site_b == first.len() as u64, "site B holds {site_b} bytes");
    let written = cluster
        .metric(0, "arca_storage_bytes_written_total", "")
        .await?;
    ensure!(
        written >= first.len() as f64,
        "storage metrics: {written} bytes written"
    );

    // An object deleted behind Arca's back is found missing on read and put back from site B
    // (A2, the other holder of the same bucket, is down; A1 restarts with an empty memory tier,
    // which site B's replication had filled).
    cluster.members[1].node.stop();
    let (lost, _) = site_a.first().context("site A's bucket is empty")?.clone();
    garage.delete(&lost).await?;
    cluster.members[0].node.restart()?;
    let (status, body) = get(&cluster, 0, "files", "one/1/one.bin").await?;
    ensure!(
        status == 200 && body == first,
        "GET after an object was deleted: {status}, {} bytes",
        body.len()
    );
    let after_read = garage.objects("site-a/chunks").await?;
    ensure!(
        after_read == site_a,
        "the deleted object {lost} was not put back: {after_read:?}\n{}",
        cluster.members[0].node.log()
    );

    // Garbage collection trashes exactly the objects of a deleted version, then deletes them.
    let second = pseudo_random_bytes(3 << 20, 12);
    ensure!(put(&cluster, 0, "files", "two/1/two.bin", second.clone()).await? == 201);
    let with_second = garage.objects("site-a/chunks").await?;
    ensure!(bytes_of(&with_second) == (first.len() + second.len()) as u64);
    delete_version(cluster.url(0), &token, "files/packages/two/versions/1").await?;
    let report = collect(cluster.url(0), &token).await?;
    ensure!(
        report["removed_bytes"] == json!(second.len()),
        "first collection: {report}"
    );
    ensure!(
        garage.objects("site-a/chunks").await? == site_a,
        "chunks left: not exactly the first file's"
    );
    let trashed = garage.objects("site-a/trash").await?;
    ensure!(
        bytes_of(&trashed) == second.len() as u64,
        "trash: {trashed:?}"
    );
    let report = collect(cluster.url(0), &token).await?;
    ensure!(
        report["purged"] == json!(trashed.len()),
        "second collection: {report}"
    );
    ensure!(
        garage.objects("site-a/trash").await?.is_empty(),
        "the trash was not emptied"
    );
    ensure!(garage.objects("site-a/chunks").await? == site_a);
    expect_file(&cluster, 0, "files", "one/1/one.bin", &first).await?;

    // The bucket is one copy: a registry that wants two is refused while site B is down, though
    // A2 is up.
    cluster.members[1].node.restart()?;
    cluster.members[2].node.stop();
    create_registry_with(
        &cluster,
        json!({"name": "twice", "package_type": "GENERIC", "min_copies": 2}),
    )
    .await?;
    let status = put(
        &cluster,
        0,
        "twice",
        "t/1/t.bin",
        pseudo_random_bytes(1 << 20, 13),
    )
    .await?;
    ensure!(
        status == 503,
        "a push with min_copies 2 and only the bucket: {status}"
    );
    Ok(())
}

/// A request body that sends `parts` MiB, one every 25 ms.
fn slow_body(parts: usize) -> reqwest::Body {
    let stream = futures::stream::unfold(0usize, move |sent| async move {
        if sent == parts {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        let part = bytes::Bytes::from(pseudo_random_bytes(1 << 20, 100 + sent as u64));
        Some((Ok::<_, std::io::Error>(part), sent + 1))
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_going_away_mid_push_is_a_503_that_commits_nothing() -> Result<()> {
    let Some(mut garage) = Garage::start("the_store_going_away")? else {
        return Ok(());
    };
    let node = node_on_bucket(&garage, "solo").await?;
    let url = |path: &str| format!("{}/generic/files/{path}", node.url);

    let push = http()
        .put(url("big/1/big.bin"))
        .bearer_auth(&node.admin_token)
        .body(slow_body(64))
        .send();
    let outage = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        garage.stop();
    };
    let (pushed, ()) = tokio::join!(push, outage);
    // The node answers 503 as soon as a chunk cannot be stored and may close the connection
    // while the client still sends: then the client sees its send fail instead. Either way the
    // client gets an error, and nothing may be committed.
    if let Ok(response) = pushed {
        let status = response.status().as_u16();
        ensure!(
            status == 503,
            "a push while the store went away: {status}\n{}",
            node.log()
        );
    }
    let missing = http()
        .get(url("big/1/big.bin"))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(
        missing.status().as_u16() == 404,
        "the refused push left a version"
    );

    garage.restart()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let data = pseudo_random_bytes(2 << 20, 5);
    loop {
        let response = http()
            .put(url("after/1/after.bin"))
            .bearer_auth(&node.admin_token)
            .body(data.clone())
            .send()
            .await?;
        match response.status().as_u16() {
            201 => break,
            503 if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            other => bail!(
                "push once the store is back: {other} {}",
                response.text().await?
            ),
        }
    }
    let read = http()
        .get(url("after/1/after.bin"))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(read.status().as_u16() == 200 && read.bytes().await? == data);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_moves_its_local_chunks_into_the_bucket_while_serving_and_after_a_crash()
-> Result<()> {
    let Some(garage) = Garage::start("a_node_moves_its_local_chunks")? else {
        return Ok(());
    };
    let mut node = TestNode::start()?;
    create_files_registry(&node).await?;
    // Files of one chunk each, so the move takes long enough to be cut short.
    let files: Vec<Vec<u8>> = (1..=120)
        .map(|seed| pseudo_random_bytes(48 << 10, seed))
        .collect();
    for (index, data) in files.iter().enumerate() {
        let response = http()
            .put(format!("{}/generic/files/f/1/{index}.bin", node.url))
            .bearer_auth(&node.admin_token)
            .body(data.clone())
            .send()
            .await?;
        ensure!(response.status().as_u16() == 201, "push {index}");
    }
    let local_bytes: u64 = chunk_files(node.data_dir())
        .iter()
        .map(|(_, size)| size)
        .sum();
    ensure!(local_bytes == (files.len() * files[0].len()) as u64);

    let args = garage.node_args("moved");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    node.restart_with(&args, &garage.env())?;
    let read_all = |node: &TestNode| {
        let (url, token) = (node.url.clone(), node.admin_token.clone());
        let files = files.clone();
        async move {
            for (index, data) in files.iter().enumerate() {
                let response = http()
                    .get(format!("{url}/generic/files/f/1/{index}.bin"))
                    .bearer_auth(&token)
                    .send()
                    .await?;
                ensure!(response.status().as_u16() == 200, "GET {index}");
                ensure!(
                    response.bytes().await?[..] == data[..],
                    "GET {index}: other bytes"
                );
            }
            Ok::<_, anyhow::Error>(())
        }
    };
    read_all(&node)
        .await
        .context("local chunks before the move")?;
    let target = "s3://arca-chunks/moved";
    let wrong = node.cli(&["storage", "migrate", "--to", "s3://arca-chunks/elsewhere"]);
    ensure!(
        !wrong.status.success(),
        "a move into another bucket than the node's was accepted"
    );

    // Cut the move short with SIGKILL once it has begun; the restarted node resumes it.
    let started = node.cli(&["storage", "migrate", "--to", target, "--format", "json"]);
    ensure!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let client = node.admin_client();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .storage_status()
        .await?
        .migration
        .map_or(0, |m| m.moved_chunks)
        == 0
    {
        ensure!(Instant::now() < deadline, "the move never began");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.kill();
    node.restart()?;
    let status = node.cli(&[
        "storage", "migrate", "--to", target, "--wait", "--format", "json",
    ]);
    ensure!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout)?;
    ensure!(status["migration"]["state"] == "finished", "{status}");
    ensure!(
        chunk_files(node.data_dir()).is_empty(),
        "local chunks left after the move"
    );
    let in_bucket = garage.objects("moved/chunks").await?;
    ensure!(
        bytes_of(&in_bucket) == local_bytes,
        "the bucket holds {} bytes",
        bytes_of(&in_bucket)
    );
    read_all(&node).await.context("after the move")?;

    // The next start finds no local chunks and reads the bucket alone.
    node.restart()?;
    read_all(&node)
        .await
        .context("after a restart on the bucket alone")?;
    let storage = node.admin_client().storage_status().await?;
    ensure!(
        storage.migration.is_none() && storage.backend == target,
        "{storage:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_pushed_again_is_touched_in_the_bucket() -> Result<()> {
    let Some(garage) = Garage::start("a_chunk_pushed_again")? else {
        return Ok(());
    };
    let node = node_on_bucket(&garage, "touched").await?;
    let data = pseudo_random_bytes(1 << 20, 21);
    let push = |version: &'static str| {
        http()
            .put(format!(
                "{}/generic/files/same/{version}/same.bin",
                node.url
            ))
            .bearer_auth(&node.admin_token)
            .body(data.clone())
            .send()
    };
    ensure!(push("1").await?.status().as_u16() == 201);
    let objects = garage.objects("touched/chunks").await?;
    let (key, _) = objects.first().context("no chunk in the bucket")?;
    let written = garage.modified(key).await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ensure!(push("2").await?.status().as_u16() == 201);
    ensure!(
        garage.objects("touched/chunks").await? == objects,
        "the bytes were stored twice"
    );
    let touched = garage.modified(key).await?;
    ensure!(
        touched > written,
        "the reused chunk's age did not start again"
    );
    let errors = arca_tests::metric(&node.url, "arca_storage_errors_total", "").await?;
    ensure!(
        errors == 0.0,
        "{errors} object-store requests failed\n{}",
        node.log()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_behind_tls_from_a_private_ca_is_trusted_through_the_ca_file_alone() -> Result<()>
{
    let Some(garage) = Garage::start("a_bucket_behind_tls")? else {
        return Ok(());
    };
    let pki = arca_tests::pki::TestPki::new()?;
    let front = pki.tls_front(garage.s3_port()).await?;
    let endpoint = format!("https://127.0.0.1:{}", front.port);
    let args = garage.node_args_at("tls", &endpoint);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut node = TestNode::start_with(&args, &garage.env())?;
    create_files_registry(&node).await?;
    let data = pseudo_random_bytes(1 << 20, 31);
    let push = |node: &TestNode| {
        http()
            .put(format!("{}/generic/files/t/1/t.bin", node.url))
            .bearer_auth(&node.admin_token)
            .body(data.clone())
            .send()
    };
    let untrusted = push(&node).await?;
    let status = untrusted.status().as_u16();
    let body = untrusted.text().await?;
    ensure!(
        status == 503,
        "a store whose certificate is not trusted: {status} {body}"
    );
    ensure!(
        body.to_lowercase().contains("certificate"),
        "the answer names the certificate: {body}"
    );

    let ca = pki.path("ca.pem");
    let mut trusted = args.clone();
    trusted.extend(["--storage-ca-file", ca.as_str()]);
    node.restart_with(&trusted, &garage.env())?;
    ensure!(
        push(&node).await?.status().as_u16() == 201,
        "{}",
        node.log()
    );
    let read = http()
        .get(format!("{}/generic/files/t/1/t.bin", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(read.status().as_u16() == 200 && read.bytes().await? == data);
    ensure!(bytes_of(&garage.objects("tls/chunks").await?) == data.len() as u64);
    Ok(())
}
