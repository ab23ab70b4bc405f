//! Remote (caching proxy) and virtual npm registries end to end, with the real npm CLI: the upstream is
//! a second Arca node with a local npm registry; the downstream node has a remote registry over it
//! (Basic credentials, metadata fresh for one second) and a virtual registry over a local registry
//! and the remote.
//!
//! Installs through the remote get the right versions and leave the tarballs recorded with their
//! origin; 100 concurrent requests for one uncached tarball make one upstream request; the virtual
//! registry merges its members, serves what only one of them has, and publishes to its local member;
//! the remote refuses publishes; and once the upstream is stopped, installs through the remote still
//! work from what it cached, its packuments served stale with a warning.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use arca_tests::remote::{
    NpmClient, create_registry, installed_version, local_registry, remote_registry, request_count,
    virtual_registry,
};
use arca_tests::{TestNode, http, sha256_hex};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The route npm requests are counted under in `arca_http_requests_total`.
const NPM_ROUTE: &str = "/npm/{registry}/{*path}";

/// A GET of `path` on `node` with the admin token.
async fn get(node: &TestNode, path: &str) -> Result<reqwest::Response> {
    Ok(http()
        .get(format!("{}{path}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?)
}

/// A GET that must answer 200 with JSON.
async fn get_json(node: &TestNode, path: &str) -> Result<Value> {
    let response = get(node, path).await?;
    ensure!(
        response.status() == StatusCode::OK,
        "GET {path}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

/// The `{"error": "..."}` message of an npm error answer with `status`.
async fn npm_error(response: reqwest::Response, status: StatusCode) -> Result<String> {
    ensure!(
        response.status() == status,
        "expected {status}, got {}",
        response.status()
    );
    let body: Value = response.json().await?;
    body["error"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no error message in {body}"))
}

/// The package names the management API lists in `registry`.
async fn stored_packages(node: &TestNode, registry: &str) -> Result<Vec<String>> {
    let page = get_json(node, &format!("/api/v1/artifacts?registry={registry}")).await?;
    let mut names: Vec<String> = page["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|item| item["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

#[tokio::test]
async fn npm_through_remote_and_virtual_registries() -> Result<()> {
    let test = "npm_through_remote_and_virtual_registries";

    // The upstream: a local registry with a scoped package, a package with two versions, a package
    // depending on the older one, and one only the virtual registry will install.
    let mut upstream = TestNode::start()?;
    create_registry(&upstream, local_registry("up", "NPM")).await?;
    let Some(publisher) = NpmClient::new(&upstream, "up", Some(&upstream.admin_token), test)?
    else {
        return Ok(());
    };
    publisher.publish("up-dep", "1.0.0", json!({}))?;
    publisher.publish("up-dep", "2.0.0", json!({}))?;
    publisher.publish(
        "up-app",
        "1.0.0",
        json!({ "dependencies": { "up-dep": "^1.0.0" } }),
    )?;
    publisher.publish("@up/util", "0.1.0", json!({}))?;
    publisher.publish("up-extra", "1.0.0", json!({}))?;

    // The downstream: a remote registry over it, a local one, and a virtual one over both.
    let node = TestNode::start()?;
    let upstream_registry = format!("{}/npm/up", upstream.url);
    create_registry(
        &node,
        remote_registry(
            "npm-remote",
            "NPM",
            &upstream_registry,
            &upstream.admin_token,
            1,
        ),
    )
    .await?;
    create_registry(&node, local_registry("npm-local", "NPM")).await?;
    create_registry(
        &node,
        virtual_registry(
            "npm-all",
            "NPM",
            &["npm-local", "npm-remote"],
            Some("npm-local"),
        ),
    )
    .await?;
    let token = Some(node.admin_token.as_str());
    let remote = NpmClient::new(&node, "npm-remote", token, test)?.context("npm")?;
    let all = NpmClient::new(&node, "npm-all", token, test)?.context("npm")?;

    // An install through the remote registry: the dependency range picks the older version, and
    // every tarball comes from the downstream node.
    let project = remote.project("first")?;
    let install = remote
        .install(&project, "first", &["up-app", "@up/util"])?
        .ok()?;
    assert!(
        install
            .all()
            .contains("/npm/npm-remote/up-dep/-/up-dep-1.0.0.tgz"),
        "tarballs come from the remote registry: {}",
        install.describe()
    );
    assert!(
        !install.all().contains(&upstream.url),
        "{}",
        install.describe()
    );
    assert_eq!(installed_version(&project, "up-app")?, "1.0.0");
    assert_eq!(installed_version(&project, "up-dep")?, "1.0.0");
    assert_eq!(installed_version(&project, "@up/util")?, "0.1.0");

    // The packument is the upstream's, with tarball URLs pointing at the remote registry.
    let response = get(&node, "/npm/npm-remote/up-dep").await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("warning").is_none());
    let packument: Value = response.json().await?;
    assert_eq!(packument["dist-tags"]["latest"], "2.0.0");
    assert_eq!(
        packument["versions"]["2.0.0"]["dist"]["tarball"],
        format!("{}/npm/npm-remote/up-dep/-/up-dep-2.0.0.tgz", node.url)
    );
    let scoped = get_json(&node, "/npm/npm-remote/@up%2futil").await?;
    assert_eq!(
        scoped["versions"]["0.1.0"]["dist"]["tarball"],
        format!("{}/npm/npm-remote/@up/util/-/util-0.1.0.tgz", node.url)
    );

    // The fetched tarballs are recorded in the remote registry, named as a publish names them,
    // with where they came from; versions nobody asked for are not.
    assert_eq!(
        stored_packages(&node, "npm-remote").await?,
        ["@up/util", "up-app", "up-dep"]
    );
    let version = get_json(
        &node,
        "/api/v1/registries/npm-remote/packages/up-dep/versions/1.0.0",
    )
    .await?;
    assert_eq!(version["files"][0]["name"], "up-dep-1.0.0.tgz");
    assert_eq!(
        version["attributes"]["origin"],
        format!("{upstream_registry}/up-dep/-/up-dep-1.0.0.tgz")
    );
    assert!(version["attributes"]["cached_at"].is_string());
    let missing = get(
        &node,
        "/api/v1/registries/npm-remote/packages/up-dep/versions/2.0.0",
    )
    .await?;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // 100 concurrent requests for one uncached tarball: one upstream request, the same bytes for
    // all, and the bytes are the upstream's.
    let before = request_count(&upstream, "GET", NPM_ROUTE).await?;
    let url = format!("{}/npm/npm-remote/up-dep/-/up-dep-2.0.0.tgz", node.url);
    let client = http();
    let downloads = futures::future::join_all((0..100).map(|_| {
        let request = client.get(&url).bearer_auth(&node.admin_token).send();
        async move {
            let response = request.await?;
            ensure!(response.status() == StatusCode::OK, "{}", response.status());
            Ok(response.bytes().await?)
        }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let after = request_count(&upstream, "GET", NPM_ROUTE).await?;
    assert_eq!(
        after - before,
        1,
        "upstream requests for 100 concurrent misses"
    );
    let upstream_bytes = get(&upstream, "/npm/up/up-dep/-/up-dep-2.0.0.tgz")
        .await?
        .bytes()
        .await?;
    let digest = sha256_hex(&upstream_bytes);
    assert!(downloads.iter().all(|bytes| sha256_hex(bytes) == digest));

    // Publishes through the virtual registry land in its local member.
    all.publish("local-only", "1.0.0", json!({}))?;
    all.publish("up-dep", "3.0.0", json!({}))?;
    assert_eq!(
        stored_packages(&node, "npm-local").await?,
        ["local-only", "up-dep"]
    );

    // The virtual packument merges the members: the local member's versions and dist-tags first,
    // then the remote's, every tarball URL under the virtual registry.
    let merged = get_json(&node, "/npm/npm-all/up-dep").await?;
    let versions: Vec<&String> = merged["versions"]
        .as_object()
        .context("versions")?
        .keys()
        .collect();
    assert_eq!(versions, ["1.0.0", "2.0.0", "3.0.0"]);
    assert_eq!(merged["dist-tags"]["latest"], "3.0.0");
    for (version, manifest) in merged["versions"].as_object().context("versions")? {
        assert_eq!(
            manifest["dist"]["tarball"],
            format!("{}/npm/npm-all/up-dep/-/up-dep-{version}.tgz", node.url)
        );
    }

    // An install through the virtual registry gets what only the local member has and what only
    // the remote has (up-extra was never fetched before: it comes from the upstream now).
    let project = all.project("virtual")?;
    let install = all
        .install(&project, "virtual", &["local-only", "up-extra", "up-app"])?
        .ok()?;
    assert!(
        install
            .all()
            .contains("/npm/npm-all/up-extra/-/up-extra-1.0.0.tgz"),
        "{}",
        install.describe()
    );
    assert_eq!(installed_version(&project, "local-only")?, "1.0.0");
    assert_eq!(installed_version(&project, "up-extra")?, "1.0.0");
    assert_eq!(installed_version(&project, "up-dep")?, "1.0.0");
    let extra = get_json(
        &node,
        "/api/v1/registries/npm-remote/packages/up-extra/versions/1.0.0",
    )
    .await?;
    assert_eq!(
        extra["attributes"]["origin"],
        format!("{upstream_registry}/up-extra/-/up-extra-1.0.0.tgz")
    );

    // A version published upstream shows once the remote's copy of the packument is older than
    // its time to live (and the proxy's memory of the last fetch has passed): what was rendered
    // from the older copy is not served again.
    publisher.publish("up-later", "1.0.0", json!({}))?;
    let before = get_json(&node, "/npm/npm-remote/up-later").await?;
    assert_eq!(before["dist-tags"]["latest"], "1.0.0");
    publisher.publish("up-later", "1.1.0", json!({}))?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = get_json(&node, "/npm/npm-remote/up-later").await?;
    assert_eq!(after["dist-tags"]["latest"], "1.1.0");
    assert!(after["versions"]["1.1.0"].is_object(), "{after}");

    // The remote registry takes no publishes, in npm's error format.
    let refused = remote
        .try_publish("no-publish", "1.0.0", json!({}))?
        .failed()?;
    assert!(refused.all().contains("405"), "{}", refused.describe());
    let response = http()
        .put(format!("{}/npm/npm-remote/no-publish", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "name": "no-publish", "versions": {} }))
        .send()
        .await?;
    let message = npm_error(response, StatusCode::METHOD_NOT_ALLOWED).await?;
    assert!(message.contains("remote"), "{message}");
    assert!(
        !stored_packages(&node, "npm-remote")
            .await?
            .contains(&"no-publish".to_string())
    );

    // The upstream goes away. Once the cached packuments are older than their time to live (and
    // the proxy no longer hands out the result of a fetch that just finished, which it keeps for a
    // few seconds), they are served stale, with a warning, and installs still work from what the
    // remote cached.
    upstream.stop();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let response = get(&node, "/npm/npm-remote/up-app").await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("warning")
            .and_then(|v| v.to_str().ok()),
        Some("110 - \"Response is Stale\"")
    );
    let project = remote.project("offline")?;
    remote
        .install(&project, "offline", &["up-app", "@up/util"])?
        .ok()?;
    assert_eq!(installed_version(&project, "up-dep")?, "1.0.0");
    assert_eq!(installed_version(&project, "@up/util")?, "0.1.0");
    let project = all.project("virtual-offline")?;
    all.install(&project, "virtual-offline", &["local-only", "up-extra"])?
        .ok()?;
    assert_eq!(installed_version(&project, "up-extra")?, "1.0.0");

    // What was never cached fails as an upstream failure, in npm's error format.
    let response = get(&node, "/npm/npm-remote/never-fetched").await?;
    npm_error(response, StatusCode::BAD_GATEWAY).await?;
    // Through the virtual registry, a member that is down does not turn "not found" into an error
    // (npm publish looks the package up first): the members that answer decide, at once.
    let started = std::time::Instant::now();
    let response = get(&node, "/npm/npm-all/never-fetched").await?;
    npm_error(response, StatusCode::NOT_FOUND).await?;
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    Ok(())
}
