//! Search (`GET /api/v1/search`, `arca search`, npm's `/-/v1/search`): packages found by name,
//! description and keywords, typos forgiven, the last word as a prefix, one hit per package with
//! its newest version first, filters (type, registry, status, pushed, key:value metadata), kept
//! current as versions come and go, across a restart, and never a registry the caller cannot read.

use std::time::Duration;

use anyhow::{Result, ensure};
use arca_tests::{TestNode, http, npm_tarball};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Publishes npm package `name` at `version` with `description` and `keywords`.
async fn publish(
    node: &TestNode,
    name: &str,
    version: &str,
    description: &str,
    keywords: &[&str],
) -> Result<()> {
    let tarball = npm_tarball(name, version, 0)?;
    let bare = name.rsplit('/').next().unwrap_or(name);
    let file = format!("{bare}-{version}.tgz");
    let document = json!({
        "_id": name,
        "name": name,
        "dist-tags": { "latest": version },
        "versions": { version: {
            "name": name, "version": version, "description": description, "keywords": keywords,
            "dist": { "tarball": format!("http://x/{file}") },
        } },
        "_attachments": { file: {
            "content_type": "application/octet-stream",
            "data": STANDARD.encode(&tarball),
            "length": tarball.len(),
        } },
    });
    let response = http()
        .put(format!("{}/npm/js/{}", node.url, name.replace('/', "%2f")))
        .bearer_auth(&node.admin_token)
        .json(&document)
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "publish {name}@{version}: {}",
        response.status()
    );
    Ok(())
}

/// Creates the npm registry `js` the tests publish to.
async fn create_npm_registry(node: &TestNode) -> Result<()> {
    node.api_ok(
        &node.admin_token,
        Method::POST,
        "/api/v1/registries",
        Some(json!({"name": "js", "package_type": "NPM"})),
    )
    .await?;
    Ok(())
}

/// The search API's path asking for `q`.
fn search_path(q: &str) -> String {
    let url = reqwest::Url::parse_with_params("http://node/api/v1/search", [("q", q)]);
    let query = url.map(|url| url.query().unwrap_or_default().to_string());
    format!("/api/v1/search?{}", query.unwrap_or_default())
}

/// The (package, version) of each hit of `q` for `token`.
async fn found(node: &TestNode, token: &str, q: &str) -> Result<Vec<(String, String)>> {
    let (status, answer) = node.api(token, Method::GET, &search_path(q), None).await?;
    ensure!(status == 200, "{q}: {status} {answer}");
    Ok(answer["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|hit| {
            (
                hit["package"].as_str().unwrap_or("").to_string(),
                hit["version"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect())
}

fn names(hits: &[(String, String)]) -> Vec<&str> {
    hits.iter().map(|(name, _)| name.as_str()).collect()
}

/// Waits until `q` finds what `done` wants (the index takes changes in within moments).
async fn eventually(
    node: &TestNode,
    q: &str,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Result<Vec<(String, String)>> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let hits = found(node, &node.admin_token, q).await?;
        if done(&hits) {
            return Ok(hits);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{q}: still {hits:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_are_found_ranked_filtered_and_kept_current() -> Result<()> {
    let mut node = TestNode::start()?;
    for (name, package_type) in [("js", "NPM"), ("files", "GENERIC"), ("secret", "GENERIC")] {
        node.api_ok(
            &node.admin_token,
            Method::POST,
            "/api/v1/registries",
            Some(json!({"name": name, "package_type": package_type})),
        )
        .await?;
    }
    publish(
        &node,
        "left-pad",
        "1.0.0",
        "Pads strings on the left",
        &["pad", "string"],
    )
    .await?;
    publish(
        &node,
        "left-pad",
        "1.1.0",
        "Pads strings on the left",
        &["pad", "string"],
    )
    .await?;
    publish(
        &node,
        "right-pad",
        "1.0.0",
        "Pads strings on the right",
        &["pad"],
    )
    .await?;
    publish(
        &node,
        "express-helpers",
        "2.0.0",
        "Routing helpers for web servers",
        &["router"],
    )
    .await?;
    publish(&node, "@acme/logger", "0.3.0", "Structured logging", &[]).await?;
    node.push_generic("files", "terraform/1.9.0/terraform.zip")
        .await?;
    node.api_ok(
        &node.admin_token,
        Method::PUT,
        "/api/v1/registries/files/packages/terraform/versions/1.9.0/metadata",
        Some(json!({"metadata": {"team": "Platform"}})),
    )
    .await?;
    node.push_generic("secret", "hidden-tool/1.0/tool.bin")
        .await?;

    // The last change searchable means every earlier one is (the index takes them in order).
    eventually(&node, "hidden", |h| !h.is_empty()).await?;
    // By name: one hit per package, its newest version; an exact name first.
    let hits = found(&node, &node.admin_token, "left-pad").await?;
    ensure!(hits[0] == ("left-pad".into(), "1.1.0".into()), "{hits:?}");
    ensure!(
        names(&hits).iter().filter(|n| **n == "left-pad").count() == 1,
        "{hits:?}"
    );
    let hits = found(&node, &node.admin_token, "team:platform").await?;
    ensure!(names(&hits) == ["terraform"], "metadata filter: {hits:?}");

    // Description, keywords, typos, prefixes.
    ensure!(names(&found(&node, &node.admin_token, "routing").await?) == ["express-helpers"]);
    ensure!(names(&found(&node, &node.admin_token, "router").await?) == ["express-helpers"]);
    ensure!(
        names(&found(&node, &node.admin_token, "loger").await?) == ["@acme/logger"],
        "a typo"
    );
    ensure!(
        names(&found(&node, &node.admin_token, "expr").await?) == ["express-helpers"],
        "a prefix"
    );
    ensure!(
        names(&found(&node, &node.admin_token, "lfet pad").await?)[0] == "left-pad",
        "a swap"
    );
    let pads = found(&node, &node.admin_token, "pad").await?;
    ensure!(
        names(&pads).len() == 2 && names(&pads).contains(&"right-pad"),
        "{pads:?}"
    );
    ensure!(found(&node, &node.admin_token, "zebra").await?.is_empty());
    ensure!(
        found(&node, &node.admin_token, "journal").await?.is_empty(),
        "no model: no match by meaning"
    );

    // Filters.
    ensure!(names(&found(&node, &node.admin_token, "type:generic").await?).len() == 2);
    ensure!(names(&found(&node, &node.admin_token, "pad registry:files").await?).is_empty());
    ensure!(
        found(&node, &node.admin_token, "pushed:<2000-01-01")
            .await?
            .is_empty()
    );
    ensure!(
        names(&found(&node, &node.admin_token, "type:npm pushed:>2000-01-01").await?).len() == 4
    );
    node.api_ok(
        &node.admin_token,
        Method::POST,
        "/api/v1/registries/js/packages/right-pad/versions/1.0.0/quarantine",
        Some(json!({"reason": "under review"})),
    )
    .await?;
    let blocked = eventually(&node, "status:quarantined", |h| !h.is_empty()).await?;
    ensure!(names(&blocked) == ["right-pad"], "{blocked:?}");
    ensure!(names(&found(&node, &node.admin_token, "status:blocked").await?) == ["right-pad"]);

    // Bad queries get a clear 400.
    for (q, says) in [
        ("type:zip", "unknown package type"),
        ("status:fine", "statuses are"),
        ("pushed:>soon", "YYYY-MM-DD"),
    ] {
        let (status, answer) = node
            .api(&node.admin_token, Method::GET, &search_path(q), None)
            .await?;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        ensure!(
            status == 400 && message.contains(says),
            "{q}: {status} {answer}"
        );
    }
    let (status, _) = node
        .api(
            &node.admin_token,
            Method::GET,
            "/api/v1/search?q=pad&limit=0",
            None,
        )
        .await?;
    ensure!(status == 400, "limit 0: {status}");

    // Only what the caller may read: a viewer of js never sees files or secret.
    let viewer = node
        .api_ok(
            &node.admin_token,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "js-reader", "scopes": [{"role": "viewer", "registry": "js"}]})),
        )
        .await?["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(names(&found(&node, &node.admin_token, "hidden").await?) == ["hidden-tool"]);
    ensure!(
        found(&node, &viewer, "hidden").await?.is_empty(),
        "a registry the viewer cannot read"
    );
    ensure!(found(&node, &viewer, "type:generic").await?.is_empty());
    ensure!(names(&found(&node, &viewer, "left").await?) == ["left-pad"]);
    ensure!(
        found(&node, "", "left").await?.is_empty(),
        "anonymous reads nothing here"
    );

    // npm's own search answers from the same index.
    let npm: Value = http()
        .get(format!("{}/npm/js/-/v1/search?text=pad", node.url))
        .bearer_auth(&viewer)
        .send()
        .await?
        .json()
        .await?;
    let npm_names: Vec<&str> = npm["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["package"]["name"].as_str())
        .collect();
    ensure!(
        npm_names.len() == 2 && npm_names.contains(&"left-pad"),
        "{npm:#}"
    );

    // The CLI.
    let output = node.cli(&["--format", "json", "search", "express"]);
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cli: Value = serde_json::from_slice(&output.stdout)?;
    ensure!(cli["hits"][0]["package"] == "express-helpers", "{cli}");

    // Deletions leave the index; a restart keeps it.
    node.api_ok(
        &node.admin_token,
        Method::DELETE,
        "/api/v1/registries/js/packages/express-helpers/versions/2.0.0",
        None,
    )
    .await?;
    eventually(&node, "routing", <[(String, String)]>::is_empty).await?;
    node.restart()?;
    let hits = eventually(&node, "left-pad", |h| !h.is_empty()).await?;
    ensure!(
        hits[0] == ("left-pad".into(), "1.1.0".into()),
        "after a restart: {hits:?}"
    );
    node.push_generic("files", "packer/1.0.0/packer.zip")
        .await?;
    eventually(&node, "packer", |h| names(h) == ["packer"]).await?;
    ensure!(found(&node, &node.admin_token, "routing").await?.is_empty());
    Ok(())
}

/// A word-embedding model in word2vec's text format, made by the test: `journal` lies near
/// `logging` and `logger`, `padding` near `pad`.
const MODEL: &str = "\
6 3
logging 1 0 0
journal 0.95 0.05 0
logger 0.9 0.1 0
pad 0 1 0
padding 0.05 0.97 0
zebra 0 0 1
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_word_embedding_model_finds_packages_by_meaning_behind_lexical_matches() -> Result<()> {
    let model = tempfile::NamedTempFile::new()?;
    std::fs::write(model.path(), MODEL)?;
    let path = model.path().display().to_string();
    let node = TestNode::start_with(&[], &[("ARCA_SEARCH_EMBEDDINGS", path.as_str())])?;
    create_npm_registry(&node).await?;
    publish(&node, "@acme/logger", "0.3.0", "Structured logging", &[]).await?;
    publish(
        &node,
        "left-pad",
        "1.0.0",
        "Pads strings on the left",
        &["pad"],
    )
    .await?;
    publish(
        &node,
        "journal-viewer",
        "1.0.0",
        "Reads systemd journal files",
        &[],
    )
    .await?;
    eventually(&node, "journal", |h| h.len() == 2).await?;

    // "journal" is in one package's name and description, and means what another's says.
    let hits = found(&node, &node.admin_token, "journal").await?;
    ensure!(
        names(&hits) == ["journal-viewer", "@acme/logger"],
        "the word itself first: {hits:?}"
    );
    ensure!(names(&found(&node, &node.admin_token, "padding").await?) == ["left-pad"]);
    ensure!(
        found(&node, &node.admin_token, "zebra").await?.is_empty(),
        "nothing near"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_that_moves_is_found_on_the_version_it_moved_to_only() -> Result<()> {
    let node = TestNode::start()?;
    create_npm_registry(&node).await?;
    publish(&node, "tagged-tool", "1.0.0", "A tool", &[]).await?;
    publish(&node, "tagged-tool", "1.1.0", "A tool", &[]).await?;
    let tag = |version: &'static str| {
        let node = &node;
        async move {
            let response = http()
                .put(format!(
                    "{}/npm/js/-/package/tagged-tool/dist-tags/canary",
                    node.url
                ))
                .bearer_auth(&node.admin_token)
                .json(&version)
                .send()
                .await?;
            ensure!(response.status().is_success(), "{}", response.status());
            anyhow::Ok(())
        }
    };
    tag("1.1.0").await?;
    eventually(&node, "canary", |hits| {
        hits == [("tagged-tool".to_string(), "1.1.0".to_string())]
    })
    .await?;
    // Moved to the older version: the newer one no longer holds the tag's word, so one version
    // matches, the one the tag names now.
    tag("1.0.0").await?;
    eventually(&node, "canary", |hits| {
        hits == [("tagged-tool".to_string(), "1.0.0".to_string())]
    })
    .await?;
    let (_, answer) = node
        .api(&node.admin_token, Method::GET, &search_path("canary"), None)
        .await?;
    ensure!(answer["total_versions"] == 1, "{answer}");
    Ok(())
}
