//! Remote (caching proxy) and virtual Maven registries end to end.
//!
//! With the real `mvn`: the upstream is a second Arca node whose local Maven registry holds a library
//! deployed in two releases; the downstream node has a remote registry over it and a virtual one over
//! [a local registry, the remote]. Consumers with empty local repositories resolve the library through
//! the remote (a fixed version and a version range, so `maven-metadata.xml` is read too) and through
//! the virtual (a release only the local member has, one only the remote has); the virtual's
//! metadata lists both; deploys go to the virtual's local member and are refused by the remote; once
//! the upstream is stopped, fresh consumers still resolve from the cache, and metadata is served stale
//! with a `Warning`.
//!
//! Over raw HTTP, against a scripted upstream: files are verified against the upstream's `.sha1`
//! (a mismatch is a 502 and leaves nothing recorded), files without one are accepted, upstream
//! failures are 502 and misses 404, a checksum of an uncached file fetches the file first, and
//! metadata keeps being served (stale) when the upstream starts failing.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arca_tests::clients::{ClientOutput, require_client};
use arca_tests::remote::{create_registry, local_registry, remote_registry, virtual_registry};
use arca_tests::remote_maven::{GROUP, GROUP_PATH, Maven, consumer, elements, library};
use arca_tests::{TestNode, http};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Digest;

const LIB: &str = "greeting-lib";

/// How long after its last fetch a cached document (time to live 1 s) is asked of the upstream
/// again: past the time to live and past the 5 s a finished upstream fetch is shared with later
/// requests.
const REVALIDATE_AFTER: Duration = Duration::from_millis(6500);

async fn get(node: &TestNode, url: &str) -> reqwest::Response {
    http()
        .get(url)
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("get")
}

async fn get_ok(node: &TestNode, url: &str) -> Vec<u8> {
    let response = get(node, url).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    response.bytes().await.expect("body").to_vec()
}

/// Every checksum served for `url` matches the bytes served.
async fn assert_checksums(node: &TestNode, url: &str) {
    let bytes = get_ok(node, url).await;
    let expected = [
        ("md5", hex::encode(md5::Md5::digest(&bytes))),
        ("sha1", hex::encode(sha1::Sha1::digest(&bytes))),
        ("sha256", hex::encode(sha2::Sha256::digest(&bytes))),
        ("sha512", hex::encode(sha2::Sha512::digest(&bytes))),
    ];
    for (extension, digest) in expected {
        let served = get_ok(node, &format!("{url}.{extension}")).await;
        assert_eq!(
            String::from_utf8_lossy(&served).trim(),
            digest,
            "{extension} of {url}"
        );
    }
}

/// The version `version` of `package` in `registry` (management API), `None` when it is not there.
async fn version_info(
    node: &TestNode,
    registry: &str,
    package: &str,
    version: &str,
) -> Option<Value> {
    let response = get(
        node,
        &format!(
            "{}/api/v1/registries/{registry}/packages/{package}/versions/{version}",
            node.url
        ),
    )
    .await;
    if response.status() == StatusCode::NOT_FOUND {
        return None;
    }
    assert_eq!(response.status(), StatusCode::OK);
    Some(response.json().await.expect("version info"))
}

fn file_names(version: &Value) -> Vec<String> {
    let mut names: Vec<String> = version["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

fn repo_url(node: &TestNode, registry: &str) -> String {
    format!("{}/maven/{registry}", node.url)
}

fn assert_success(output: &ClientOutput, nodes: &[&TestNode]) {
    let logs: String = nodes
        .iter()
        .map(|node| format!("\n--- node {} log ---\n{}", node.url, node.log()))
        .collect();
    assert!(output.success, "{}{logs}", output.describe());
}

/// Runs `mvn compile` on a consumer of `artifact` `version` (resolved from `repository` only) with a
/// fresh, empty local repository, and returns that environment.
fn resolve(
    mvn: &std::path::Path,
    token: &str,
    work: &std::path::Path,
    name: &str,
    repository: &str,
    version: &str,
    nodes: &[&TestNode],
) -> Maven {
    let maven = Maven::new(mvn.to_path_buf(), token).expect("mvn environment");
    let project = consumer(work, name, repository, LIB, version).expect("consumer project");
    let output = maven.run(&project, &["compile"]).expect("running mvn");
    assert_success(&output, nodes);
    maven
}

#[tokio::test]
async fn mvn_resolves_through_remote_and_virtual_registries_and_from_cache_once_the_upstream_is_gone()
 {
    let Some(mvn) = require_client("mvn", "mvn_resolves_through_remote_and_virtual_registries")
    else {
        return;
    };
    let work = tempfile::tempdir().expect("work dir");

    // The upstream: a local registry with two releases of the library.
    let mut upstream = TestNode::start().expect("upstream node");
    create_registry(&upstream, local_registry("libs", "MAVEN"))
        .await
        .expect("upstream registry");
    let upstream_repo = repo_url(&upstream, "libs");
    let publisher = Maven::new(mvn.clone(), &upstream.admin_token).expect("mvn environment");
    for version in ["1.0", "2.0"] {
        let project = library(work.path(), LIB, version, &upstream_repo).expect("library");
        let output = publisher.run(&project, &["deploy"]).expect("mvn deploy");
        assert_success(&output, &[&upstream]);
    }

    // The downstream: remote over it (metadata fresh for 1 s), a local registry and a virtual over
    // both that publishes to the local one.
    let node = TestNode::start().expect("downstream node");
    for body in [
        remote_registry("up", "MAVEN", &upstream_repo, &upstream.admin_token, 1),
        local_registry("mine", "MAVEN"),
        virtual_registry("all", "MAVEN", &["mine", "up"], Some("mine")),
    ] {
        create_registry(&node, body).await.expect("registry");
    }
    let nodes = [&node, &upstream];
    let token = node.admin_token.clone();
    let remote = repo_url(&node, "up");
    let virtual_repo = repo_url(&node, "all");
    let package = format!("{GROUP}:{LIB}");

    // Through the remote, with a fixed version and with a range (which reads maven-metadata.xml).
    let maven = resolve(
        &mvn,
        &token,
        work.path(),
        "app-fixed",
        &remote,
        "1.0",
        &nodes,
    );
    let (names, from_arca) = maven.resolved(LIB, "1.0");
    assert!(
        from_arca && names.contains(&format!("{LIB}-1.0.jar")),
        "{names:?}"
    );
    let maven = resolve(
        &mvn,
        &token,
        work.path(),
        "app-range",
        &remote,
        "[1.0,)",
        &nodes,
    );
    let (names, from_arca) = maven.resolved(LIB, "2.0");
    assert!(
        from_arca && names.contains(&format!("{LIB}-2.0.jar")),
        "{names:?}"
    );

    // The files are recorded downstream, with their origin, as uploads would be.
    for version in ["1.0", "2.0"] {
        let info = version_info(&node, "up", &package, version)
            .await
            .expect("cached version");
        let names = file_names(&info);
        assert!(
            names.contains(&format!("{LIB}-{version}.jar"))
                && names.contains(&format!("{LIB}-{version}.pom")),
            "{info}"
        );
        let origin = info["attributes"]["origin"].as_str().unwrap_or_default();
        assert!(
            origin.starts_with(&format!("{upstream_repo}/{GROUP_PATH}/{LIB}/{version}/")),
            "{info}"
        );
        assert!(info["attributes"]["cached_at"].is_string(), "{info}");
    }
    // They are the upstream's bytes, and every checksum matches them.
    let jar_path = format!("{GROUP_PATH}/{LIB}/2.0/{LIB}-2.0.jar");
    assert_eq!(
        get_ok(&node, &format!("{remote}/{jar_path}")).await,
        get_ok(&upstream, &format!("{upstream_repo}/{jar_path}")).await
    );
    assert_checksums(&node, &format!("{remote}/{jar_path}")).await;
    let remote_metadata = format!("{remote}/{GROUP_PATH}/{LIB}/maven-metadata.xml");
    assert_eq!(
        get_ok(&node, &remote_metadata).await,
        get_ok(
            &upstream,
            &format!("{upstream_repo}/{GROUP_PATH}/{LIB}/maven-metadata.xml")
        )
        .await
    );
    assert_checksums(&node, &remote_metadata).await;

    // A deploy to the remote is refused; a deploy to the virtual lands in its local member.
    let refused = library(&work.path().join("refused"), LIB, "3.0", &remote).expect("library");
    let output = Maven::new(mvn.clone(), &token)
        .expect("mvn environment")
        .run(&refused, &["deploy"])
        .expect("mvn deploy");
    assert!(!output.success, "{}", output.describe());
    assert!(output.all().contains("405"), "{}", output.describe());
    assert!(version_info(&node, "up", &package, "3.0").await.is_none());
    let deployed = library(work.path(), LIB, "3.0", &virtual_repo).expect("library");
    let output = Maven::new(mvn.clone(), &token)
        .expect("mvn environment")
        .run(&deployed, &["deploy"])
        .expect("mvn deploy");
    assert_success(&output, &nodes);
    let info = version_info(&node, "mine", &package, "3.0")
        .await
        .expect("deployed to the local member");
    assert!(
        file_names(&info).contains(&format!("{LIB}-3.0.jar")),
        "{info}"
    );

    // The virtual merges the members' metadata...
    let virtual_metadata = format!("{virtual_repo}/{GROUP_PATH}/{LIB}/maven-metadata.xml");
    let xml = String::from_utf8(get_ok(&node, &virtual_metadata).await).expect("utf-8");
    assert_eq!(elements(&xml, "version"), ["1.0", "2.0", "3.0"], "{xml}");
    assert_eq!(elements(&xml, "latest"), ["3.0"], "{xml}");
    assert_eq!(elements(&xml, "release"), ["3.0"], "{xml}");
    assert_eq!(elements(&xml, "lastUpdated").len(), 1, "{xml}");
    assert_checksums(&node, &virtual_metadata).await;
    // ... and resolves a release only the local member has, one only the remote has, and a range.
    for (name, version, resolved) in [
        ("virtual-local", "3.0", "3.0"),
        ("virtual-remote", "1.0", "1.0"),
        ("virtual-range", "[1.0,)", "3.0"),
    ] {
        let maven = resolve(
            &mvn,
            &token,
            work.path(),
            name,
            &virtual_repo,
            version,
            &nodes,
        );
        let (names, from_arca) = maven.resolved(LIB, resolved);
        assert!(
            from_arca && names.contains(&format!("{LIB}-{resolved}.jar")),
            "{version}: {names:?}"
        );
    }

    // The upstream goes away: once the metadata's time to live has passed it is served stale, with
    // a warning, and fresh consumers still resolve from what was cached.
    upstream.stop();
    tokio::time::sleep(REVALIDATE_AFTER).await;
    let response = get(&node, &remote_metadata).await;
    assert_eq!(response.status(), StatusCode::OK);
    let warning = response
        .headers()
        .get("warning")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(warning.starts_with("110"), "Warning: {warning:?}");
    let xml = String::from_utf8(response.bytes().await.expect("body").to_vec()).expect("utf-8");
    assert_eq!(elements(&xml, "version"), ["1.0", "2.0"], "{xml}");
    let nodes = [&node];
    for (name, repository, version, resolved) in [
        ("offline-range", &remote, "[1.0,)", "2.0"),
        ("offline-fixed", &remote, "1.0", "1.0"),
        ("offline-virtual", &virtual_repo, "2.0", "2.0"),
    ] {
        let maven = resolve(&mvn, &token, work.path(), name, repository, version, &nodes);
        let (names, from_arca) = maven.resolved(LIB, resolved);
        assert!(
            from_arca && names.contains(&format!("{LIB}-{resolved}.jar")),
            "{name}: {names:?}"
        );
    }
    // What was never cached is an upstream failure, not a miss.
    let response = get(
        &node,
        &format!("{remote}/{GROUP_PATH}/{LIB}/2.0/{LIB}-2.0-sources.jar"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
}

/// A scripted HTTP upstream on 127.0.0.1: answers each path from a table (404 for the rest), or 500
/// for everything once told to fail; counts requests per path.
struct ScriptedUpstream {
    url: String,
    failing: Arc<AtomicBool>,
    requests: Arc<Mutex<HashMap<String, u32>>>,
    stop: Arc<AtomicBool>,
}

impl ScriptedUpstream {
    fn start(files: HashMap<String, Vec<u8>>) -> ScriptedUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let failing = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (fail, count, halt) = (failing.clone(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = answer(stream, &files, &fail, &count);
            }
        });
        ScriptedUpstream {
            url,
            failing,
            requests,
            stop,
        }
    }

    fn requests(&self, path: &str) -> u32 {
        self.requests
            .lock()
            .expect("lock")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn answer(
    mut stream: TcpStream,
    files: &HashMap<String, Vec<u8>>,
    failing: &AtomicBool,
    requests: &Mutex<HashMap<String, u32>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    *requests
        .lock()
        .expect("lock")
        .entry(path.clone())
        .or_default() += 1;
    let (status, body): (&str, &[u8]) = if failing.load(Ordering::SeqCst) {
        ("500 Internal Server Error", b"down")
    } else {
        match files.get(&path) {
            Some(body) => ("200 OK", body),
            None => ("404 Not Found", b"not found"),
        }
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

#[tokio::test]
async fn remote_maven_files_are_verified_against_the_upstream_and_failures_are_mapped() {
    let sha1 = |bytes: &[u8]| hex::encode(sha1::Sha1::digest(bytes)).into_bytes();
    let metadata = b"<?xml version=\"1.0\"?>\n<metadata><groupId>org.example</groupId>\
        <artifactId>good</artifactId><versioning><release>1.0</release><versions>\
        <version>1.0</version></versions><lastUpdated>20240101000000</lastUpdated>\
        </versioning></metadata>\n"
        .to_vec();
    let snapshot_metadata = b"<?xml version=\"1.0\"?>\n<metadata><groupId>org.example</groupId>\
        <artifactId>good</artifactId><version>1.1-SNAPSHOT</version><versioning><snapshot>\
        <timestamp>20240101.000000</timestamp><buildNumber>1</buildNumber></snapshot>\
        <lastUpdated>20240101000000</lastUpdated></versioning></metadata>\n"
        .to_vec();
    let files: HashMap<String, Vec<u8>> = [
        (
            "/repo/org/example/good/1.0/good-1.0.jar",
            b"good jar".to_vec(),
        ),
        (
            "/repo/org/example/good/1.0/good-1.0.jar.sha1",
            [sha1(b"good jar"), b"  good-1.0.jar\n".to_vec()].concat(),
        ),
        (
            "/repo/org/example/good/1.0/good-1.0.pom",
            b"<project/>".to_vec(),
        ),
        ("/repo/org/example/bad/1.0/bad-1.0.jar", b"bad jar".to_vec()),
        (
            "/repo/org/example/bad/1.0/bad-1.0.jar.sha1",
            sha1(b"something else"),
        ),
        (
            "/repo/org/example/plain/1.0/plain-1.0.jar",
            b"no checksum".to_vec(),
        ),
        (
            "/repo/org/example/good/maven-metadata.xml",
            metadata.clone(),
        ),
        (
            "/repo/org/example/good/1.1-SNAPSHOT/maven-metadata.xml",
            snapshot_metadata.clone(),
        ),
        (
            "/repo/org/example/good/1.1-SNAPSHOT/good-1.1-20240101.000000-1.jar",
            b"build 1".to_vec(),
        ),
        (
            "/repo/org/example/good/1.1-SNAPSHOT/good-1.1-SNAPSHOT.jar",
            b"newest build".to_vec(),
        ),
    ]
    .into_iter()
    .map(|(path, body)| (path.to_string(), body))
    .collect();
    let upstream = ScriptedUpstream::start(files);
    let node = TestNode::start().expect("node");
    for body in [
        remote_registry(
            "up",
            "MAVEN",
            &format!("{}/repo/", upstream.url),
            "secret",
            1,
        ),
        local_registry("mine", "MAVEN"),
        virtual_registry("all", "MAVEN", &["mine", "up"], Some("mine")),
    ] {
        create_registry(&node, body).await.expect("registry");
    }
    let remote = repo_url(&node, "up");

    // A file with a matching upstream .sha1: fetched once, recorded with its origin, its checksums
    // served from the record.
    let jar = format!("{remote}/org/example/good/1.0/good-1.0.jar");
    for _ in 0..2 {
        assert_eq!(get_ok(&node, &jar).await, b"good jar");
    }
    assert_checksums(&node, &jar).await;
    assert_eq!(
        upstream.requests("/repo/org/example/good/1.0/good-1.0.jar"),
        1
    );
    assert_eq!(
        upstream.requests("/repo/org/example/good/1.0/good-1.0.jar.sha1"),
        1
    );
    let info = version_info(&node, "up", "org.example:good", "1.0")
        .await
        .expect("recorded");
    assert_eq!(
        info["attributes"]["origin"],
        format!("{}/repo/org/example/good/1.0/good-1.0.jar", upstream.url)
    );
    // A checksum of a file not cached yet fetches the file first.
    let pom_sha1 = get_ok(
        &node,
        &format!("{remote}/org/example/good/1.0/good-1.0.pom.sha1"),
    )
    .await;
    assert_eq!(pom_sha1, sha1(b"<project/>"));
    assert_eq!(
        upstream.requests("/repo/org/example/good/1.0/good-1.0.pom"),
        1
    );

    // A file whose bytes do not match the upstream's .sha1: a bad gateway, nothing recorded.
    let bad = format!("{remote}/org/example/bad/1.0/bad-1.0.jar");
    for _ in 0..2 {
        assert_eq!(get(&node, &bad).await.status(), StatusCode::BAD_GATEWAY);
    }
    assert!(
        version_info(&node, "up", "org.example:bad", "1.0")
            .await
            .is_none()
    );
    // Without an upstream checksum the file is accepted as it is.
    assert_eq!(
        get_ok(
            &node,
            &format!("{remote}/org/example/plain/1.0/plain-1.0.jar")
        )
        .await,
        b"no checksum"
    );
    // What the upstream does not have is not found, here and through the virtual registry.
    for registry in ["up", "all"] {
        let missing = format!(
            "{}/org/example/none/1.0/none-1.0.jar",
            repo_url(&node, registry)
        );
        assert_eq!(get(&node, &missing).await.status(), StatusCode::NOT_FOUND);
        let missing = format!(
            "{}/org/example/none/maven-metadata.xml",
            repo_url(&node, registry)
        );
        assert_eq!(get(&node, &missing).await.status(), StatusCode::NOT_FOUND);
    }

    // Metadata is the upstream's bytes; its checksums are computed from them.
    let metadata_url = format!("{remote}/org/example/good/maven-metadata.xml");
    assert_eq!(get_ok(&node, &metadata_url).await, metadata);
    assert_checksums(&node, &metadata_url).await;
    let merged = String::from_utf8(
        get_ok(
            &node,
            &format!(
                "{}/org/example/good/maven-metadata.xml",
                repo_url(&node, "all")
            ),
        )
        .await,
    )
    .expect("utf-8");
    assert_eq!(elements(&merged, "version"), ["1.0"], "{merged}");
    assert_eq!(
        elements(&merged, "lastUpdated"),
        ["20240101000000"],
        "{merged}"
    );

    // SNAPSHOTs: version-level metadata is the upstream's; a timestamped build is immutable and
    // recorded; a plain -SNAPSHOT name is whatever build is newest, so it is served but not recorded.
    let snapshot_dir = format!("{remote}/org/example/good/1.1-SNAPSHOT");
    assert_eq!(
        get_ok(&node, &format!("{snapshot_dir}/maven-metadata.xml")).await,
        snapshot_metadata
    );
    assert_checksums(&node, &format!("{snapshot_dir}/maven-metadata.xml")).await;
    let build = format!("{snapshot_dir}/good-1.1-20240101.000000-1.jar");
    assert_eq!(get_ok(&node, &build).await, b"build 1");
    assert_checksums(&node, &build).await;
    let plain = format!("{snapshot_dir}/good-1.1-SNAPSHOT.jar");
    assert_eq!(get_ok(&node, &plain).await, b"newest build");
    assert_checksums(&node, &plain).await;
    let info = version_info(&node, "up", "org.example:good", "1.1-SNAPSHOT")
        .await
        .expect("recorded");
    assert_eq!(
        file_names(&info),
        ["good-1.1-20240101.000000-1.jar"],
        "{info}"
    );

    // Deploys to the remote are refused before anything is stored.
    let response = http()
        .put(format!("{remote}/org/example/new/1.0/new-1.0.jar"))
        .bearer_auth(&node.admin_token)
        .body("new")
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    // The upstream starts failing: cached files and (stale) metadata are still served; what was
    // never cached is a bad gateway.
    upstream.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(REVALIDATE_AFTER).await;
    assert_eq!(get_ok(&node, &jar).await, b"good jar");
    let response = get(&node, &metadata_url).await;
    assert_eq!(response.status(), StatusCode::OK);
    let warning = response
        .headers()
        .get("warning")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(warning.starts_with("110"), "Warning: {warning:?}");
    assert_eq!(response.bytes().await.expect("body"), metadata);
    let response = get(&node, &format!("{metadata_url}.sha1")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.bytes().await.expect("body").to_vec(),
        sha1(&metadata)
    );
    let uncached = format!("{remote}/org/example/good/1.0/good-1.0-sources.jar");
    assert_eq!(
        get(&node, &uncached).await.status(),
        StatusCode::BAD_GATEWAY
    );
}
