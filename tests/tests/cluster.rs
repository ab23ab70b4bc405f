//! Multi-site clusters of real `arca-node` processes on 127.0.0.1: replication across sites, writes from
//! any node, a leader killed mid-stream, a site down and back, a learner catching up by snapshot, a
//! cache node, a five-node cluster that loses two nodes, and the scrub repairing a flipped bit.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use arca_tests::cluster::{
    TestCluster, create_registry, create_registry_with, expect_file, file_url, get, put,
    wait_replicated,
};
use arca_tests::oci::{Layout, Skopeo, host_of, sample_layers};
use arca_tests::{clients::require_client, http, pseudo_random_bytes, sha256_hex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sites_serve_what_one_site_pushed() -> Result<()> {
    let cluster = TestCluster::start(&["a", "b", "c"]).await?;
    create_registry(&cluster, "files", "GENERIC").await?;

    // A generic file pushed at site A is byte-identical at site C, and is copied there eagerly.
    let big = pseudo_random_bytes(6 * 1024 * 1024, 1);
    assert_eq!(
        put(&cluster, 0, "files", "app/1.0/app.bin", big.clone()).await?,
        201
    );
    expect_file(&cluster, 2, "files", "app/1.0/app.bin", &big).await?;
    wait_replicated(&cluster, 2).await?;
    assert!(
        cluster
            .metric(2, "arca_peer_bytes_received_total", "")
            .await?
            >= big.len() as f64,
        "site C received the chunks over QUIC"
    );

    // An on-demand registry is not copied ahead of time: site C fetches the bytes at the first read.
    create_registry_with(
        &cluster,
        serde_json::json!({"name": "lazy", "package_type": "GENERIC",
            "replication": {"sites": ["a"], "mode": "on-demand"}}),
    )
    .await?;
    let lazy = pseudo_random_bytes(3 * 1024 * 1024, 3);
    let received_before = cluster
        .metric(2, "arca_peer_bytes_received_total", "")
        .await?;
    assert_eq!(
        put(&cluster, 0, "lazy", "tool/1.0/tool.bin", lazy.clone()).await?,
        201
    );
    wait_replicated(&cluster, 2).await?;
    assert_eq!(
        cluster
            .metric(2, "arca_peer_bytes_received_total", "")
            .await?,
        received_before,
        "nothing copied before the first read"
    );
    expect_file(&cluster, 2, "lazy", "tool/1.0/tool.bin", &lazy).await?;
    assert_eq!(
        cluster
            .metric(2, "arca_peer_bytes_received_total", "")
            .await?,
        received_before + lazy.len() as f64,
        "the first read fetched the blob from a peer"
    );

    // A write at a follower is forwarded to the leader, readable where it was written at once, and
    // everywhere after replication.
    let leader = cluster.leader(0).await?;
    let follower = (leader + 1) % 3;
    let small = pseudo_random_bytes(4096, 2);
    assert_eq!(
        put(
            &cluster,
            follower,
            "files",
            "app/2.0/app.bin",
            small.clone()
        )
        .await?,
        201
    );
    expect_file(&cluster, follower, "files", "app/2.0/app.bin", &small).await?;
    expect_file(&cluster, leader, "files", "app/2.0/app.bin", &small).await?;

    // An OCI image pushed with skopeo at site A is pulled, digest for digest, at site C.
    create_registry(&cluster, "images", "DOCKER").await?;
    if let (Some(skopeo), Some(umoci)) = (
        Skopeo::find("three_sites_serve_what_one_site_pushed"),
        require_client("umoci", "three_sites_serve_what_one_site_pushed"),
    ) {
        let work = tempfile::tempdir()?;
        let layout = Layout::init(&umoci, &work.path().join("src"))?;
        let source = layout.build_image("v1", "amd64", &sample_layers(3, 2 * 1024 * 1024))?;
        let creds = format!("admin:{}", cluster.admin_token());
        let at = |index: usize| format!("docker://{}/images/app", host_of(cluster.url(index)));
        skopeo
            .copy(
                &layout.reference("v1"),
                &format!("{}:v1", at(0)),
                Some(&creds),
                &["--preserve-digests"],
            )?
            .ok()
            .context("push at site A")?;
        let out = Layout::open(&work.path().join("out"));
        skopeo
            .copy(
                &format!("{}:v1", at(2)),
                &out.reference("v1"),
                Some(&creds),
                &["--preserve-digests"],
            )?
            .ok()
            .context("pull at site C")?;
        let pulled = out.manifest("v1")?;
        assert_eq!(pulled.digest, source.digest);
        let layers = out.layers(&pulled.digest)?;
        assert_eq!(layers, layout.layers(&source.digest)?);
        for layer in &layers {
            out.blob(layer)
                .context("the layer pulled at site C verifies")?;
        }
    }

    // `arca cluster status` shows the three sites, their roles and the leader.
    let output = cluster.members[1].node.cli(&["cluster", "status"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for site in ["a", "b", "c"] {
        assert!(text.contains(site), "{text}");
    }
    assert_eq!(text.matches("voter").count(), 3, "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_during_pushes_loses_no_acknowledged_write() -> Result<()> {
    let mut cluster = TestCluster::start(&["a", "b", "c"]).await?;
    create_registry(&cluster, "files", "GENERIC").await?;
    let leader = cluster.leader(0).await?;
    let term_before = cluster.status(0).await?.term;
    let mut acknowledged: Vec<(String, Vec<u8>)> = Vec::new();
    let mut after_kill = 0;
    for i in 0..60u64 {
        if i == 20 {
            cluster.members[leader].node.kill();
        }
        let body = pseudo_random_bytes(2048 + i as usize, 100 + i);
        let path = format!("stream/{i}/f.bin");
        let target = (i as usize) % 3;
        if i >= 20 && target == leader {
            continue;
        }
        // Writes during the election may be refused (503) or fail; only acknowledged ones count.
        if let Ok(201) = put(&cluster, target, "files", &path, body.clone()).await {
            if i >= 20 {
                after_kill += 1;
            }
            acknowledged.push((path, body));
        }
    }
    ensure!(
        after_kill >= 10,
        "writes resumed under a new leader: {after_kill}"
    );
    let survivor = (leader + 1) % 3;
    let status = cluster.status(survivor).await?;
    assert!(status.term > term_before, "a new term: {status:?}");
    assert_ne!(status.leader, Some(cluster.members[leader].id));
    for index in (0..3).filter(|i| *i != leader) {
        for (path, body) in &acknowledged {
            expect_file(&cluster, index, "files", path, body).await?;
        }
    }
    // The old leader comes back as a follower and catches up.
    cluster.members[leader].node.restart()?;
    let last = status.commit_index;
    cluster
        .wait_for_status(survivor, "the old leader caught up", |s| {
            s.nodes.iter().all(|n| n.lag == Some(0)) && s.commit_index >= last
        })
        .await?;
    for (path, body) in &acknowledged {
        expect_file(&cluster, leader, "files", path, body).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_that_was_down_catches_up_and_a_cut_off_node_refuses_writes() -> Result<()> {
    let mut cluster = TestCluster::start(&["a", "b", "c"]).await?;
    create_registry(&cluster, "files", "GENERIC").await?;
    cluster.members[2].node.stop();
    let mut files = Vec::new();
    for i in 0..5u64 {
        let body = pseudo_random_bytes(300_000 + i as usize, 200 + i);
        let path = format!("eager/{i}/f.bin");
        assert_eq!(put(&cluster, 0, "files", &path, body.clone()).await?, 201);
        expect_file(&cluster, 1, "files", &path, &body).await?;
        files.push((path, body));
    }
    // Site C comes back, catches up, and holds the bytes itself: with A and B gone it still serves them.
    cluster.members[2].node.restart()?;
    wait_replicated(&cluster, 2).await?;
    cluster.members[0].node.stop();
    cluster.members[1].node.stop();
    for (path, body) in &files {
        expect_file(&cluster, 2, "files", path, body).await?;
    }
    // Cut off from the quorum, it refuses writes with 503 and Retry-After.
    let response = http()
        .put(file_url(&cluster, 2, "files", "late/1/f.bin"))
        .bearer_auth(cluster.admin_token())
        .body(vec![1u8; 10])
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let (status, _) = get(&cluster, 2, "files", "late/1/f.bin").await?;
    assert_eq!(status, 404, "the refused write left nothing behind");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_added_after_1000_versions_catches_up_by_snapshot() -> Result<()> {
    let env = [
        ("ARCA_SNAPSHOT_LOG_BYTES", "65536"),
        ("ARCA_SNAPSHOT_STATE_PERCENT", "0"),
        ("ARCA_AUTO_PROMOTE", "false"),
    ];
    let mut cluster = TestCluster::start_with(&["a"], &env).await?;
    create_registry(&cluster, "files", "GENERIC").await?;
    let versions: Vec<u64> = (0..1000).collect();
    for batch in versions.chunks(16) {
        let paths: Vec<(String, Vec<u8>)> = batch
            .iter()
            .map(|v| {
                (
                    format!("lib/{v}/lib.txt"),
                    format!("version {v}").into_bytes(),
                )
            })
            .collect();
        let puts = paths
            .iter()
            .map(|(path, body)| put(&cluster, 0, "files", path, body.clone()));
        for status in futures::future::join_all(puts).await {
            ensure!(status? == 201, "push");
        }
    }
    // A join token's secret is checked: a wrong one is refused and the node does not start.
    let wrong = cluster
        .join_token()
        .rsplit_once(':')
        .map(|(head, _)| format!("{head}:0000"))
        .context("token")?;
    let quic = cluster.members[0].quic.clone();
    let refused = arca_tests::TestNode::start_with(
        &["--node-id", "7", "--join", &quic, "--join-token", &wrong],
        &[],
    );
    let error = format!("{:#}", refused.err().context("a wrong secret is refused")?);
    assert!(error.contains("unknown join token"), "{error}");
    // The founder has purged the start of its log before the learner joins, so the learner can only
    // catch up from a snapshot (the founder may snapshot and purge again meanwhile).
    let health = |base: String| {
        let url = format!("{base}/healthz");
        async move {
            http()
                .get(url)
                .send()
                .await?
                .json::<serde_json::Value>()
                .await
        }
    };
    let founder = health(cluster.url(0).to_string()).await?;
    let purged = founder["purged"]
        .as_u64()
        .filter(|purged| *purged > 0)
        .context("the founder purged its log")?;
    let learner = cluster.join("b", &[], &env)?;
    let learner_id = cluster.members[learner].id;
    cluster
        .wait_for_status(0, "the learner caught up", |s| {
            s.nodes
                .iter()
                .any(|n| n.id == learner_id && n.lag == Some(0) && n.membership == "learner")
        })
        .await?;
    let learned = health(cluster.url(learner).to_string()).await?;
    assert!(
        learned["snapshot"]
            .as_u64()
            .is_some_and(|index| index >= purged),
        "the learner installed a snapshot past the founder's purged log ({purged}): {learned}"
    );
    for v in [0u64, 499, 999] {
        expect_file(
            &cluster,
            learner,
            "files",
            &format!("lib/{v}/lib.txt"),
            format!("version {v}").as_bytes(),
        )
        .await?;
    }
    // Promote it with the CLI, then take it out again.
    let output = cluster.members[0]
        .node
        .cli(&["cluster", "promote", &learner_id.to_string()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    cluster
        .wait_for_status(0, "the learner is a voter", |s| {
            s.nodes
                .iter()
                .any(|n| n.id == learner_id && n.membership == "voter")
        })
        .await?;
    let output = cluster.members[0]
        .node
        .cli(&["cluster", "remove", &learner_id.to_string()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    cluster
        .wait_for_status(0, "the node is gone", |s| {
            s.nodes.iter().all(|n| n.id != learner_id)
        })
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_node_serves_a_blob_twice_and_fetches_it_once() -> Result<()> {
    let mut cluster = TestCluster::start(&["a"]).await?;
    create_registry(&cluster, "files", "GENERIC").await?;
    let cache = cluster.join(
        "edge",
        &["--role", "cache"],
        &[
            ("ARCA_CACHE_MEMORY_BYTES", "1048576"),
            ("ARCA_CACHE_DISK_BYTES", "268435456"),
            ("ARCA_CHUNK_CACHE_BYTES", "1"),
        ],
    )?;
    let body = pseudo_random_bytes(12 * 1024 * 1024, 9);
    assert_eq!(
        put(&cluster, 0, "files", "big/1/big.bin", body.clone()).await?,
        201
    );
    cluster
        .wait_for_status(0, "the cache node has the metadata", |s| {
            s.nodes.iter().all(|n| n.lag == Some(0))
        })
        .await?;
    expect_file(&cluster, cache, "files", "big/1/big.bin", &body).await?;
    expect_file(&cluster, cache, "files", "big/1/big.bin", &body).await?;
    let received = cluster
        .metric(cache, "arca_peer_bytes_received_total", "")
        .await?;
    assert_eq!(
        received,
        body.len() as f64,
        "every byte fetched exactly once"
    );
    let hits = cluster.metric(cache, "arca_cache_hits_total", "").await?;
    assert!(hits > 0.0, "the second read was served by the tiered cache");
    assert_eq!(
        cluster
            .metric(cache, "arca_chunks_written_total", "")
            .await?,
        0.0,
        "a cache node keeps no replica in its chunk store"
    );
    let status = cluster.status(0).await?;
    let node = status
        .nodes
        .iter()
        .find(|n| n.site == "edge")
        .context("cache node")?;
    assert_eq!(node.membership, "learner", "cache nodes never vote");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_over_three_sites_survive_losing_two() -> Result<()> {
    let mut cluster = TestCluster::start(&["a", "a", "b", "b", "c"]).await?;
    create_registry(&cluster, "files", "GENERIC").await?;
    let body = pseudo_random_bytes(1024 * 1024, 5);
    assert_eq!(
        put(&cluster, 4, "files", "x/1/x.bin", body.clone()).await?,
        201
    );
    expect_file(&cluster, 0, "files", "x/1/x.bin", &body).await?;
    let leader = cluster.leader(0).await?;
    let other = (0..5).find(|i| *i != leader).context("another node")?;
    cluster.members[leader].node.kill();
    cluster.members[other].node.kill();
    let alive: Vec<usize> = (0..5).filter(|i| *i != leader && *i != other).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let second = pseudo_random_bytes(4096, 6);
    loop {
        if put(&cluster, alive[0], "files", "x/2/x.bin", second.clone()).await? == 201 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "three of five nodes accept writes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for index in alive {
        expect_file(&cluster, index, "files", "x/1/x.bin", &body).await?;
        expect_file(&cluster, index, "files", "x/2/x.bin", &second).await?;
    }
    Ok(())
}

/// Flips one bit in the middle of `file`, as bit rot would.
fn flip_a_bit(file: &std::path::Path) -> Result<()> {
    let mut bytes = std::fs::read(file)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(file, bytes)?;
    Ok(())
}

/// Runs `arca cluster scrub start` at member `index`, then waits for the pass to end; answers
/// `arca cluster scrub status --format json`.
async fn scrub(cluster: &TestCluster, index: usize) -> Result<serde_json::Value> {
    let node = &cluster.members[index].node;
    let cli = |args: &[&str]| -> Result<serde_json::Value> {
        let output = node.cli_with_token(Some(cluster.admin_token()), args);
        ensure!(
            output.status.success(),
            "arca {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(serde_json::from_slice(&output.stdout)?)
    };
    let before = cli(&["--format", "json", "cluster", "scrub", "status"])?;
    cli(&["--format", "json", "cluster", "scrub", "start"])?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = cli(&["--format", "json", "cluster", "scrub", "status"])?;
        if status["passes"].as_u64() > before["passes"].as_u64() {
            return Ok(status);
        }
        ensure!(Instant::now() < deadline, "no scrub pass ended: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrub_finds_a_flipped_bit_and_repairs_it_from_a_peer() -> Result<()> {
    // Passes only when asked, so the test decides when they run.
    let mut cluster =
        TestCluster::start_with(&["a", "b"], &[("ARCA_SCRUB_BYTES_PER_SECOND", "0")]).await?;
    create_registry(&cluster, "files", "GENERIC").await?;
    let body = pseudo_random_bytes(5 * 1024 * 1024, 11);
    assert_eq!(
        put(&cluster, 0, "files", "app/1.0/app.bin", body.clone()).await?,
        201
    );
    wait_replicated(&cluster, 1).await?;

    // A sound disk: every chunk checked, nothing found.
    let clean = scrub(&cluster, 1).await?;
    let chunks: Vec<std::path::PathBuf> =
        arca_tests::chunk_files(cluster.members[1].node.data_dir())
            .into_iter()
            .map(|(path, _)| path)
            .collect();
    ensure!(!chunks.is_empty(), "site b holds the chunks");
    assert_eq!(clean["chunks_checked"], chunks.len() as u64, "{clean}");
    assert_eq!(clean["corrupt"], 0, "{clean}");

    // A flipped bit at site b is found, and site a's copy replaces it.
    let damaged = &chunks[0];
    let good = std::fs::read(damaged)?;
    flip_a_bit(damaged)?;
    let found = scrub(&cluster, 1).await?;
    assert_eq!(
        (found["corrupt"].clone(), found["repaired"].clone()),
        (serde_json::json!(1), serde_json::json!(1)),
        "{found}"
    );
    ensure!(
        std::fs::read(damaged)? == good,
        "the chunk file holds its good bytes again"
    );
    assert_eq!(
        cluster
            .metric(1, "arca_scrub_repaired_chunks_total", "")
            .await?,
        1.0
    );

    // With the only other copy damaged too, nothing can repair it: counted, not hidden.
    let only_copies: Vec<std::path::PathBuf> =
        arca_tests::chunk_files(cluster.members[0].node.data_dir())
            .into_iter()
            .map(|(path, _)| path)
            .collect();
    let name = damaged.file_name().context("a chunk file name")?;
    let twin = only_copies
        .iter()
        .find(|path| path.file_name() == Some(name))
        .context("site a holds the same chunk")?;
    flip_a_bit(twin)?;
    flip_a_bit(damaged)?;
    // (Site a restarts: it served the repair from memory, and a good copy there would do again.)
    cluster.members[0].node.restart()?;
    let lost = scrub(&cluster, 1).await?;
    assert_eq!(lost["unrepairable"], 1, "{lost}");
    assert_eq!(
        cluster
            .metric(1, "arca_scrub_unrepairable_chunks_total", "")
            .await?,
        1.0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_token_from_one_node_is_accepted_at_another() -> Result<()> {
    let cluster = TestCluster::start(&["a", "b"]).await?;
    create_registry(&cluster, "images", "DOCKER").await?;
    let issued: serde_json::Value = http()
        .get(format!(
            "{}/v2/token?service=arca&scope=repository:images/app:pull,push",
            cluster.url(0)
        ))
        .basic_auth("arca", Some(cluster.admin_token()))
        .send()
        .await?
        .json()
        .await?;
    let token = issued["token"].as_str().context("a token")?;
    // Node b knows the registry once it has applied its creation.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answered = http()
            .get(format!("{}/v2/images/app/tags/list", cluster.url(1)))
            .bearer_auth(token)
            .send()
            .await?;
        let status = answered.status().as_u16();
        let body = answered.text().await?;
        ensure!(status != 401, "node b refused node a's token: {body}");
        if body.contains("NAME_UNKNOWN") {
            break;
        }
        ensure!(Instant::now() < deadline, "{status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A token signed with any other key is refused.
    let forged = format!("{}x", token);
    let refused = http()
        .get(format!("{}/v2/images/app/tags/list", cluster.url(1)))
        .bearer_auth(forged)
        .send()
        .await?;
    assert_eq!(refused.status().as_u16(), 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_with_min_copies_survives_losing_the_writer_and_its_disk() -> Result<()> {
    let mut cluster = TestCluster::start(&["a", "b", "c"]).await?;
    // On demand: nothing is copied in the background, so only min_copies puts bytes elsewhere.
    let on_demand = serde_json::json!({"sites": ["a"], "mode": "on-demand"});
    for (name, copies) in [("durable", 2), ("fragile", 1), ("triple", 3)] {
        create_registry_with(
            &cluster,
            serde_json::json!({"name": name, "package_type": "GENERIC",
                "replication": on_demand, "min_copies": copies}),
        )
        .await?;
    }
    // Settings change after creation too (the CLI keeps what it is not told to change).
    create_registry(&cluster, "later", "GENERIC").await?;
    let settings = |args: &[&str]| {
        let mut all = vec!["--format", "json", "registry", "settings", "later"];
        all.extend_from_slice(args);
        cluster.members[0]
            .node
            .cli_with_token(Some(cluster.admin_token()), &all)
    };
    let changed = settings(&["--min-copies", "2"]);
    ensure!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&changed.stdout)?;
    assert_eq!(shown["min_copies"], 2, "{shown}");
    ensure!(!settings(&["--min-copies", "4"]).status.success());
    ensure!(
        !settings(&["--upstream-ca-file", "/etc/hostname"])
            .status
            .success(),
        "a local registry has no upstream to trust"
    );
    let too_many = http()
        .post(format!("{}/api/v1/registries", cluster.url(0)))
        .bearer_auth(cluster.admin_token())
        .json(&serde_json::json!({"name": "four", "package_type": "GENERIC", "min_copies": 4}))
        .send()
        .await?;
    assert_eq!(
        too_many.status().as_u16(),
        400,
        "three full nodes hold at most three copies"
    );

    let kept = pseudo_random_bytes(3 * 1024 * 1024, 21);
    let lost = pseudo_random_bytes(3 * 1024 * 1024, 22);
    assert_eq!(
        put(&cluster, 0, "durable", "app/1.0/app.bin", kept.clone()).await?,
        201
    );
    assert_eq!(
        put(&cluster, 0, "fragile", "app/1.0/app.bin", lost.clone()).await?,
        201
    );

    // The writer dies right after the 201s, and its disk with it.
    cluster.members[0].node.kill();
    let data = cluster.members[0].node.data_dir().to_path_buf();
    for entry in std::fs::read_dir(&data)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    cluster
        .wait_for_status(1, "a leader among the survivors", |status| {
            status
                .leader
                .is_some_and(|leader| leader != cluster.members[0].id)
        })
        .await?;
    for survivor in [1, 2] {
        expect_file(&cluster, survivor, "durable", "app/1.0/app.bin", &kept).await?;
    }
    // Without min_copies, the bytes were only where the writer was.
    // (The answer starts before the missing bytes are found, so the body breaks off.)
    let survived = matches!(
        get(&cluster, 1, "fragile", "app/1.0/app.bin").await,
        Ok((200, body)) if body == lost
    );
    ensure!(
        !survived,
        "the fragile push cannot have survived its only copy"
    );

    // Three copies with one of three nodes gone: refused, with the reason, and nothing recorded.
    let response = http()
        .put(file_url(&cluster, 1, "triple", "app/1.0/app.bin"))
        .bearer_auth(cluster.admin_token())
        .body(kept.clone())
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 503);
    let text = response.text().await?;
    ensure!(text.contains("3 copies"), "{text}");
    let (status, _) = get(&cluster, 1, "triple", "app/1.0/app.bin").await?;
    assert_eq!(status, 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_session_goes_on_at_any_node() -> Result<()> {
    let cluster = TestCluster::start(&["a", "b"]).await?;
    create_registry(&cluster, "images", "DOCKER").await?;
    let at = |index: usize, method: reqwest::Method, path: &str| {
        http()
            .request(method, format!("{}{path}", cluster.url(index)))
            .basic_auth("arca", Some(cluster.admin_token()))
    };
    let layer = pseudo_random_bytes(5 * 1024 * 1024, 31);
    let (first, second) = layer.split_at(2 * 1024 * 1024);
    // Started at node a, as a load balancer might send it...
    let started = at(0, reqwest::Method::POST, "/v2/images/app/blobs/uploads/")
        .send()
        .await?;
    ensure!(started.status() == 202, "{}", started.status());
    let session = started.headers()["location"].to_str()?.to_string();
    // ...then the parts and the end at node b, which forwards them to node a.
    for (offset, part) in [(0, first), (first.len(), second)] {
        let sent = at(1, reqwest::Method::PATCH, &session)
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{offset}-{}", offset + part.len() - 1),
            )
            .body(part.to_vec())
            .send()
            .await?;
        ensure!(
            sent.status() == 202,
            "{}: {}",
            sent.status(),
            sent.text().await?
        );
    }
    let digest = format!("sha256:{}", sha256_hex(&layer));
    let separator = if session.contains('?') { '&' } else { '?' };
    let done = at(
        1,
        reqwest::Method::PUT,
        &format!("{session}{separator}digest={digest}"),
    )
    .send()
    .await?;
    ensure!(
        done.status() == 201,
        "{}: {}",
        done.status(),
        done.text().await?
    );
    for index in [0, 1] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let fetched = at(
                index,
                reqwest::Method::GET,
                &format!("/v2/images/app/blobs/{digest}"),
            )
            .send()
            .await?;
            if fetched.status() == 200 {
                let body = fetched.bytes().await?;
                ensure!(sha256_hex(&body) == sha256_hex(&layer));
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "node {index}: {}",
                fetched.status()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
