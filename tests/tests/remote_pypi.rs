//! Remote (caching proxy) and virtual PyPI registries, driven by the real Python clients.
//!
//! The upstream is a second Arca node with a local PyPI registry holding two projects (one depending
//! on the other); the node under test has a remote registry over it (Basic credentials, the
//! upstream's admin token as password, metadata fresh for one second), a local registry, and a
//! virtual registry over [local, remote]. pip installs through the remote and the virtual; the cached
//! files are recorded with their origin; the upstream is stopped and a fresh install still works from
//! what was cached, the project page carrying the stale warning; twine uploads to the virtual land in
//! its local member and uploads to the remote are refused. A tiny hand-written upstream (plain tokio
//! TCP) that advertises a wrong sha256 shows a bad download failing with 502 and leaving nothing
//! recorded. Nothing but 127.0.0.1 is contacted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use arca_tests::remote::{
    create_registry, local_registry, remote_registry, request_count, virtual_registry,
};
use arca_tests::remote_pypi::{PyProject, Python, index_url};
use arca_tests::{TestNode, http, sha256_hex};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// `GET` with the node's admin token (Basic, as pip sends it); returns status, headers and body.
async fn get(
    node: &TestNode,
    path: &str,
    accept: Option<&str>,
) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>)> {
    let mut request = http()
        .get(format!("{}{path}", node.url))
        .basic_auth("__token__", Some(&node.admin_token));
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    Ok((status, headers, response.bytes().await?.to_vec()))
}

/// A version through the management API; `None` when it does not exist.
async fn version_info(
    node: &TestNode,
    registry: &str,
    package: &str,
    version: &str,
) -> Result<Option<Value>> {
    let response = http()
        .get(format!(
            "{}/api/v1/registries/{registry}/packages/{package}/versions/{version}",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    if response.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    ensure!(
        response.status() == StatusCode::OK,
        "GET version {registry}/{package}/{version}: {}",
        response.status()
    );
    Ok(Some(response.json().await?))
}

fn file_names(version: &Value) -> Vec<String> {
    let mut names: Vec<String> = version["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .filter_map(|f| f["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string()
}

fn has(names: &[String], wanted: &str) -> bool {
    names.iter().any(|n| n == wanted)
}

#[tokio::test(flavor = "multi_thread")]
async fn pip_installs_through_remote_and_virtual_registries_and_from_cache_when_the_upstream_is_gone()
-> Result<()> {
    let test = "pip_installs_through_remote_and_virtual_registries_and_from_cache_when_the_upstream_is_gone";
    let Some(python) = Python::find(test) else {
        return Ok(());
    };
    let dist = tempfile::tempdir()?;

    // Upstream: a local registry with dep_a 1.0.0 and 1.1.0, and app-b 1.0.0 needing dep-a<1.1.
    let mut upstream = TestNode::start()?;
    create_registry(&upstream, local_registry("py", "PYPI")).await?;
    let (dep_sdist, dep_wheel) = python.build(&PyProject::new("dep_a", "1.0.0"), dist.path())?;
    let (newer_sdist, newer_wheel) =
        python.build(&PyProject::new("dep_a", "1.1.0"), dist.path())?;
    let mut app = PyProject::new("app-b", "1.0.0");
    app.dependencies = vec!["dep-a>=1.0,<1.1"];
    let (app_sdist, app_wheel) = python.build(&app, dist.path())?;
    python
        .upload(
            &upstream,
            "py",
            &[
                &dep_sdist,
                &dep_wheel,
                &newer_sdist,
                &newer_wheel,
                &app_sdist,
                &app_wheel,
            ],
        )?
        .ok()?;

    // Downstream: remote over the upstream's registry, a local one, a virtual over both.
    let node = TestNode::start()?;
    let upstream_base = format!("{}/pypi/py", upstream.url);
    create_registry(
        &node,
        remote_registry("pyremote", "PYPI", &upstream_base, &upstream.admin_token, 1),
    )
    .await?;
    create_registry(&node, local_registry("pylocal", "PYPI")).await?;
    create_registry(
        &node,
        virtual_registry("pyall", "PYPI", &["pylocal", "pyremote"], Some("pylocal")),
    )
    .await?;

    // pip through the remote: app-b and the dependency version it allows.
    let remote_index = index_url(&node, "pyremote");
    let (_target, installed) = python.install(&remote_index, &["app-b"])?;
    for expected in [
        "app_b-1.0.0.dist-info",
        "app_b.py",
        "dep_a-1.0.0.dist-info",
        "dep_a.py",
    ] {
        ensure!(
            has(&installed, expected),
            "{expected} not installed: {installed:?}"
        );
    }
    ensure!(!has(&installed, "dep_a-1.1.0.dist-info"), "{installed:?}");

    // The fetched files are recorded downstream like uploads, with their origin.
    for (package, version, wheel) in [
        ("dep-a", "1.0.0", &dep_wheel),
        ("app-b", "1.0.0", &app_wheel),
    ] {
        let info = version_info(&node, "pyremote", package, version)
            .await?
            .with_context(|| format!("{package} {version} not recorded in pyremote"))?;
        let names = file_names(&info);
        ensure!(has(&names, &file_name(wheel)), "{names:?}");
        let origin = info["attributes"]["origin"].as_str().unwrap_or_default();
        ensure!(
            origin.starts_with(&upstream_base),
            "origin {origin:?} of {package} {version}: {info}"
        );
        let recorded = info["files"]
            .as_array()
            .and_then(|files| files.iter().find(|f| f["name"] == file_name(wheel)))
            .context("the wheel")?;
        assert_eq!(
            recorded["sha256"],
            sha256_hex(&std::fs::read(wheel)?),
            "the cached wheel is the uploaded one"
        );
    }
    ensure!(
        version_info(&node, "pyremote", "dep-a", "1.1.0")
            .await?
            .is_none(),
        "only what pip downloaded is cached"
    );
    let dep = version_info(&node, "pyremote", "dep-a", "1.0.0")
        .await?
        .context("dep-a")?;
    ensure!(
        has(
            &file_names(&dep),
            &format!("{}.metadata", file_name(&dep_wheel))
        ),
        "pip read the core metadata (PEP 658) through the remote: {dep}"
    );

    // The remote's page lists the upstream's files with links back at the remote, with their digests.
    let (status, headers, body) =
        get(&node, "/pypi/pyremote/simple/dep-a/", Some("text/html")).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("warning").is_none());
    let page = String::from_utf8(body)?;
    for file in [&dep_sdist, &dep_wheel, &newer_sdist, &newer_wheel] {
        let version = if file_name(file).contains("1.1.0") {
            "1.1.0"
        } else {
            "1.0.0"
        };
        let href = format!(
            "href=\"/pypi/pyremote/files/dep-a/{version}/{}#sha256={}\"",
            file_name(file),
            sha256_hex(&std::fs::read(file)?)
        );
        ensure!(page.contains(&href), "no {href} in {page}");
    }
    ensure!(page.contains("data-requires-python=\"&gt;=3.8\""), "{page}");
    ensure!(page.contains("data-core-metadata=\"sha256="), "{page}");

    // PEP 658 for a cached wheel whose metadata was never asked for: read from the cached wheel (the
    // upstream is not asked again), and the bytes the page promised.
    let newer_wheel_path = format!(
        "/pypi/pyremote/files/dep-a/1.1.0/{}",
        file_name(&newer_wheel)
    );
    let (status, _, body) = get(&node, &newer_wheel_path, None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, std::fs::read(&newer_wheel)?);
    let files_route = "/pypi/{registry}/files/{project}/{version}/{filename}";
    let upstream_file_gets = request_count(&upstream, "GET", files_route).await?;
    let (_, _, body) = get(&node, "/pypi/pyremote/simple/dep-a/", Some(SIMPLE_JSON)).await?;
    let simple: Value = serde_json::from_slice(&body)?;
    let promised = simple["files"]
        .as_array()
        .and_then(|files| {
            files
                .iter()
                .find(|f| f["filename"] == file_name(&newer_wheel))
        })
        .and_then(|f| f["core-metadata"]["sha256"].as_str())
        .context("the page promises core metadata for the wheel")?
        .to_string();
    let (status, _, metadata) = get(&node, &format!("{newer_wheel_path}.metadata"), None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sha256_hex(&metadata), promised);
    assert_eq!(
        request_count(&upstream, "GET", files_route).await?,
        upstream_file_gets,
        "the metadata came from the cached wheel"
    );
    let (status, _, _) = get(
        &node,
        &format!(
            "/pypi/pyremote/files/dep-a/1.1.0/{}.metadata",
            file_name(&newer_sdist)
        ),
        None,
    )
    .await?;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no metadata is promised for sdists"
    );
    let json = get(&node, "/pypi/pyremote/pypi/dep-a/json", None).await?;
    assert_eq!(json.0, StatusCode::OK);
    let json: Value = serde_json::from_slice(&json.2)?;
    assert_eq!(json["info"]["version"], "1.1.0");
    assert_eq!(json["releases"]["1.0.0"].as_array().map(Vec::len), Some(2));

    // A local-only project, uploaded through the virtual: it lands in the virtual's local member.
    let (local_sdist, local_wheel) =
        python.build(&PyProject::new("local-only", "2.0"), dist.path())?;
    python
        .upload(&node, "pyall", &[&local_sdist, &local_wheel])?
        .ok()?;
    let local = version_info(&node, "pylocal", "local-only", "2.0")
        .await?
        .context("the upload to the virtual registry is not in its local member")?;
    assert_eq!(
        file_names(&local),
        [
            file_name(&local_wheel),
            format!("{}.metadata", file_name(&local_wheel)),
            file_name(&local_sdist),
        ]
    );
    ensure!(
        version_info(&node, "pyremote", "local-only", "2.0")
            .await?
            .is_none()
    );

    // pip through the virtual: one project only the local member has, one only the remote has.
    let virtual_index = index_url(&node, "pyall");
    let (_target, installed) = python.install(&virtual_index, &["local-only", "app-b"])?;
    for expected in [
        "local_only-2.0.dist-info",
        "app_b-1.0.0.dist-info",
        "dep_a-1.0.0.dist-info",
    ] {
        ensure!(
            has(&installed, expected),
            "{expected} not installed: {installed:?}"
        );
    }
    let (status, _, body) = get(&node, "/pypi/pyall/simple/dep-a/", Some(SIMPLE_JSON)).await?;
    assert_eq!(status, StatusCode::OK);
    let simple: Value = serde_json::from_slice(&body)?;
    let urls: Vec<&str> = simple["files"]
        .as_array()
        .context("files")?
        .iter()
        .filter_map(|f| f["url"].as_str())
        .collect();
    assert_eq!(urls.len(), 4, "{simple}");
    ensure!(
        urls.iter()
            .all(|u| u.starts_with("/pypi/pyall/files/dep-a/")),
        "{urls:?}"
    );
    let (_, _, root) = get(&node, "/pypi/pyall/simple/", Some("text/html")).await?;
    let root = String::from_utf8(root)?;
    for project in ["local-only", "dep-a", "app-b"] {
        ensure!(
            root.contains(&format!("href=\"/pypi/pyall/simple/{project}/\"")),
            "{root}"
        );
    }

    // Uploads to the remote are refused.
    let (extra_sdist, _) = python.build(&PyProject::new("extra", "1.0"), dist.path())?;
    let refused = python
        .upload(&node, "pyremote", &[&extra_sdist])?
        .failed()?;
    ensure!(refused.all().contains("405"), "{}", refused.describe());
    ensure!(
        version_info(&node, "pyremote", "extra", "1.0")
            .await?
            .is_none()
    );

    // The upstream goes away; once the cached pages are past their time to live, a fresh install
    // through the remote still works, from the stale pages and the cached files.
    upstream.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_target, installed) = python.install(&remote_index, &["app-b"])?;
    for expected in ["app_b-1.0.0.dist-info", "dep_a-1.0.0.dist-info"] {
        ensure!(
            has(&installed, expected),
            "{expected} not installed: {installed:?}"
        );
    }
    let (status, headers, body) =
        get(&node, "/pypi/pyremote/simple/dep-a/", Some(SIMPLE_JSON)).await?;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let warning = headers
        .get("warning")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(warning, "110 - \"Response is Stale\"");
    // What was never cached cannot be fetched now: a 502, not a hang or a 404.
    let (status, _, _) = get(
        &node,
        &format!(
            "/pypi/pyremote/files/dep-a/1.1.0/{}",
            file_name(&newer_sdist)
        ),
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    Ok(())
}

/// A minimal upstream simple index on 127.0.0.1, speaking just enough HTTP/1.1 (one request per
/// connection): `GET /simple/fakepkg/` lists `fakepkg-1.0.tar.gz` with a wrong sha256 and
/// `fakepkg-1.1.tar.gz` with the right one, as PEP 503 HTML; `GET /files/<name>` serves them.
struct FakeUpstream {
    url: String,
    file_requests: Arc<AtomicUsize>,
}

const BAD_FILE: &[u8] = b"the bytes of fakepkg 1.0, which do not hash to what the index says";
const GOOD_FILE: &[u8] = b"the bytes of fakepkg 1.1, listed with their true sha256";

impl FakeUpstream {
    async fn start() -> Result<FakeUpstream> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let file_requests = Arc::new(AtomicUsize::new(0));
        let counter = file_requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&request);
                    let path = head
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_string();
                    let (status, content_type, body): (&str, &str, Vec<u8>) = match path.as_str() {
                        "/simple/fakepkg/" => (
                            "200 OK",
                            "text/html",
                            format!(
                                "<!DOCTYPE html><html><body><h1>Links for fakepkg</h1>\n\
                                 <a href=\"/files/fakepkg-1.0.tar.gz#sha256={}\">fakepkg-1.0.tar.gz</a><br/>\n\
                                 <a href=\"../../files/fakepkg-1.1.tar.gz#sha256={}\" \
                                 data-requires-python=\"&gt;=3.8\">fakepkg-1.1.tar.gz</a><br/>\n\
                                 </body></html>\n",
                                sha256_hex(b"something else entirely"),
                                sha256_hex(GOOD_FILE)
                            )
                            .into_bytes(),
                        ),
                        "/files/fakepkg-1.0.tar.gz" => {
                            counter.fetch_add(1, Ordering::SeqCst);
                            ("200 OK", "application/octet-stream", BAD_FILE.to_vec())
                        }
                        "/files/fakepkg-1.1.tar.gz" => {
                            counter.fetch_add(1, Ordering::SeqCst);
                            ("200 OK", "application/octet-stream", GOOD_FILE.to_vec())
                        }
                        _ => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(FakeUpstream { url, file_requests })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_not_matching_the_upstream_digest_fails_with_502_and_records_nothing() -> Result<()>
{
    let fake = FakeUpstream::start().await?;
    let node = TestNode::start()?;
    create_registry(
        &node,
        remote_registry("fake", "PYPI", &fake.url, "secret", 300),
    )
    .await?;

    // The HTML page is served back in this registry's own format, links rewritten.
    let (status, _, body) = get(&node, "/pypi/fake/simple/fakepkg/", Some(SIMPLE_JSON)).await?;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let simple: Value = serde_json::from_slice(&body)?;
    let files = simple["files"].as_array().context("files")?;
    assert_eq!(files.len(), 2, "{simple}");
    assert_eq!(
        files[0]["url"],
        "/pypi/fake/files/fakepkg/1.0/fakepkg-1.0.tar.gz"
    );
    assert_eq!(
        files[1]["url"],
        "/pypi/fake/files/fakepkg/1.1/fakepkg-1.1.tar.gz"
    );
    assert_eq!(files[1]["hashes"]["sha256"], sha256_hex(GOOD_FILE));
    assert_eq!(files[1]["requires-python"], ">=3.8");

    // The file whose bytes do not match the advertised sha256: 502, nothing recorded.
    let (status, _, body) = get(
        &node,
        "/pypi/fake/files/fakepkg/1.0/fakepkg-1.0.tar.gz",
        None,
    )
    .await?;
    assert_eq!(
        status,
        StatusCode::BAD_GATEWAY,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let text = String::from_utf8_lossy(&body);
    ensure!(
        text.starts_with("502 ") && text.contains("sha256"),
        "{text}"
    );
    ensure!(fake.file_requests.load(Ordering::SeqCst) >= 1);
    ensure!(
        version_info(&node, "fake", "fakepkg", "1.0")
            .await?
            .is_none(),
        "a download that failed verification was recorded"
    );

    // The file that matches is served and recorded with its origin.
    let (status, _, body) = get(
        &node,
        "/pypi/fake/files/fakepkg/1.1/fakepkg-1.1.tar.gz",
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, GOOD_FILE);
    let info = version_info(&node, "fake", "fakepkg", "1.1")
        .await?
        .context("fakepkg 1.1 not recorded")?;
    assert_eq!(
        info["attributes"]["origin"],
        format!("{}/files/fakepkg-1.1.tar.gz", fake.url)
    );
    let requests = fake.file_requests.load(Ordering::SeqCst);
    let (status, _, body) = get(
        &node,
        "/pypi/fake/files/fakepkg/1.1/fakepkg-1.1.tar.gz",
        None,
    )
    .await?;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, GOOD_FILE));
    assert_eq!(
        fake.file_requests.load(Ordering::SeqCst),
        requests,
        "a cached file is served without asking the upstream"
    );
    // Unknown files and projects are 404s.
    let (status, _, _) = get(
        &node,
        "/pypi/fake/files/fakepkg/9.9/fakepkg-9.9.tar.gz",
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(&node, "/pypi/fake/simple/nothing-here/", None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A raw upload to the remote is refused with 405, in the PyPI error shape.
    let boundary = "arca-remote-boundary";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\":action\"\r\n\r\nfile_upload\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"x-1.0.tar.gz\"\r\n\
         Content-Type: application/octet-stream\r\n\r\nxx\r\n--{boundary}--\r\n"
    );
    let refused = http()
        .post(format!("{}/pypi/fake/", node.url))
        .basic_auth("__token__", Some(&node.admin_token))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    let text = refused.text().await?;
    ensure!(
        text.starts_with("405 ") && text.contains("remote"),
        "{text}"
    );
    Ok(())
}
