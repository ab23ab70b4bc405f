//! npm registries end to end: the real npm CLI (publish plain and scoped packages, install with a
//! dependency, view, dist-tags, deprecate, unpublish, republishing refused, login, whoami, ping,
//! search) and raw HTTP for bad input that must be refused in npm's `{"error"}` format with nothing
//! stored.
//!
//! npm runs with a temporary HOME, user config, global config and cache, and only ever talks to the
//! node on 127.0.0.1 (audit, fund and the update notifier are off).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use arca_tests::clients::{ClientOutput, require_client, run_command};
use arca_tests::{TestNode, http};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

/// The npm CLI pointed at one npm registry of a node, with its own home, config and cache.
struct Npm {
    bin: PathBuf,
    home: tempfile::TempDir,
    registry_url: String,
}

impl Npm {
    /// Creates the NPM registry `registry` on `node` and a `.npmrc` for it holding `token` (none:
    /// anonymous). `None` when npm is not installed and this is not CI.
    async fn start(
        node: &TestNode,
        registry: &str,
        token: Option<&str>,
        test: &str,
    ) -> Result<Option<Npm>> {
        let Some(bin) = require_client("npm", test) else {
            return Ok(None);
        };
        create_registry(node, registry).await?;
        let npm = Npm {
            bin,
            home: tempfile::tempdir()?,
            registry_url: format!("{}/npm/{registry}/", node.url),
        };
        npm.write_npmrc(token)?;
        Ok(Some(npm))
    }

    fn npmrc(&self) -> PathBuf {
        self.home.path().join(".npmrc")
    }

    fn write_npmrc(&self, token: Option<&str>) -> Result<()> {
        let mut text = format!("registry={}\n", self.registry_url);
        if let Some(token) = token {
            let host_path = self.registry_url.trim_start_matches("http:");
            text.push_str(&format!("{host_path}:_authToken={token}\n"));
        }
        std::fs::write(self.npmrc(), text)?;
        Ok(())
    }

    /// A fresh cache directory, so tarballs are fetched from the node instead of the publish cache.
    fn fresh_cache(&self, name: &str) -> PathBuf {
        self.home.path().join("caches").join(name)
    }

    fn command(&self, dir: &Path, cache: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        for (key, _) in std::env::vars_os() {
            let lower = key.to_string_lossy().to_ascii_lowercase();
            if lower.starts_with("npm_config_") || lower == "npm_token" {
                command.env_remove(&key);
            }
        }
        command
            .args(args)
            .current_dir(dir)
            .env("HOME", self.home.path())
            .env("npm_config_userconfig", self.npmrc())
            .env(
                "npm_config_globalconfig",
                self.home.path().join("global-npmrc"),
            )
            .env("npm_config_cache", cache)
            .env("npm_config_registry", &self.registry_url)
            .env("npm_config_update_notifier", "false")
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_loglevel", "http");
        command
    }

    /// Runs npm in `dir` with the shared cache.
    fn run(&self, dir: &Path, args: &[&str]) -> Result<ClientOutput> {
        run_command(&mut self.command(dir, &self.fresh_cache("shared"), args))
    }

    /// Runs `npm login --auth-type=legacy`, answering its prompts.
    fn login(&self, user: &str, password: &str) -> Result<ClientOutput> {
        let dir = self.home.path();
        let mut child = self
            .command(
                dir,
                &self.fresh_cache("shared"),
                &["login", "--auth-type=legacy"],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning npm login")?;
        let mut stdin = child.stdin.take().context("stdin")?;
        let mut stdout = child.stdout.take().context("stdout")?;
        // Answer each prompt once it is shown: npm reads them one at a time.
        let mut answers = vec![password.to_string(), user.to_string()];
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buffer = [0u8; 256];
            let mut prompts = ["Username:", "Password:"].into_iter();
            let mut next = prompts.next();
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buffer[..n]);
                while let Some(prompt) = next {
                    if !String::from_utf8_lossy(&seen).contains(prompt) {
                        break;
                    }
                    if let Some(answer) = answers.pop() {
                        let _ = writeln!(stdin, "{answer}");
                    }
                    next = prompts.next();
                }
            }
            String::from_utf8_lossy(&seen).into_owned()
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                child.kill()?;
                bail!("npm login did not finish within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let stdout = reader
            .join()
            .map_err(|_| anyhow::anyhow!("reader panicked"))?;
        let output = child.wait_with_output()?;
        Ok(ClientOutput {
            command: "npm login --auth-type=legacy".into(),
            success: output.status.success(),
            code: output.status.code(),
            stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Writes a package directory with `package.json` and an `index.js`.
    fn package(&self, name: &str, version: &str, extra: Value) -> Result<PathBuf> {
        let dir = self
            .home
            .path()
            .join("src")
            .join(format!("{}-{version}", name.replace('/', "_")));
        std::fs::create_dir_all(&dir)?;
        let mut manifest = json!({
            "name": name,
            "version": version,
            "description": format!("{name} for the Arca npm tests"),
            "main": "index.js",
            "license": "MIT",
        });
        if let (Some(manifest), Value::Object(extra)) = (manifest.as_object_mut(), extra) {
            manifest.extend(extra);
        }
        std::fs::write(
            dir.join("package.json"),
            serde_json::to_vec_pretty(&manifest)?,
        )?;
        std::fs::write(
            dir.join("index.js"),
            format!("module.exports = {:?};\n", format!("{name}@{version}")),
        )?;
        Ok(dir)
    }

    /// Publishes a package made with [`Npm::package`].
    fn publish(&self, name: &str, version: &str, extra: Value) -> Result<ClientOutput> {
        let dir = self.package(name, version, extra)?;
        self.run(&dir, &["publish"])?.ok()
    }

    /// `npm view <spec> --json`, parsed.
    fn view(&self, args: &[&str]) -> Result<Value> {
        let mut all = vec!["view"];
        all.extend_from_slice(args);
        all.push("--json");
        let output = self.run(self.home.path(), &all)?.ok()?;
        serde_json::from_str(&output.stdout)
            .with_context(|| format!("npm view output is not JSON: {}", output.describe()))
    }
}

async fn create_registry(node: &TestNode, name: &str) -> Result<()> {
    let response = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "name": name, "package_type": "NPM" }))
        .send()
        .await?;
    ensure!(
        response.status() == StatusCode::CREATED,
        "creating registry {name}: {}",
        response.status()
    );
    Ok(())
}

/// The package names the management API lists in `registry`.
async fn stored_packages(node: &TestNode, registry: &str) -> Result<Vec<String>> {
    let page: Value = http()
        .get(format!("{}/api/v1/artifacts?registry={registry}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .json()
        .await?;
    Ok(page["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|item| item["name"].as_str().map(str::to_string))
        .collect())
}

/// The full packument of `name` as the node serves it.
async fn packument(node: &TestNode, registry: &str, escaped_name: &str) -> Result<Value> {
    let response = http()
        .get(format!("{}/npm/{registry}/{escaped_name}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(response.status() == StatusCode::OK, "{}", response.status());
    Ok(response.json().await?)
}

#[tokio::test]
async fn npm_publish_install_view_and_dist_tags() -> Result<()> {
    let node = TestNode::start_with(&[], &[("ARCA_USAGE_FLUSH_MS", "200")])?;
    let test = "npm_publish_install_view_and_dist_tags";
    let Some(npm) = Npm::start(&node, "js", Some(&node.admin_token), test).await? else {
        return Ok(());
    };
    npm.publish(
        "dep-a",
        "1.0.0",
        json!({ "keywords": ["arca", "dependency"] }),
    )?;
    npm.publish(
        "app-b",
        "1.0.0",
        json!({ "dependencies": { "dep-a": "^1.0.0" } }),
    )?;
    npm.publish("@arca-test/util", "0.1.0", json!({}))?;

    // Install into a fresh project with a fresh cache: every byte comes from the node, and npm
    // checks each tarball against the integrity the packument gives.
    let project = npm.home.path().join("project");
    std::fs::create_dir_all(&project)?;
    std::fs::write(
        project.join("package.json"),
        r#"{"name": "project", "version": "1.0.0", "private": true}"#,
    )?;
    let cache = npm.fresh_cache("install");
    let install = run_command(&mut npm.command(
        &project,
        &cache,
        &[
            "install",
            "app-b",
            "@arca-test/util",
            "--no-audit",
            "--no-fund",
        ],
    ))?
    .ok()?;
    assert!(
        install.all().contains("/npm/js/dep-a/-/dep-a-1.0.0.tgz"),
        "tarballs were fetched from the node: {}",
        install.describe()
    );
    let installed: Value = serde_json::from_slice(&std::fs::read(
        project.join("node_modules/dep-a/package.json"),
    )?)?;
    assert_eq!(installed["version"], "1.0.0");
    assert!(project.join("node_modules/app-b/index.js").exists());
    assert!(
        project
            .join("node_modules/@arca-test/util/index.js")
            .exists()
    );
    // The install counts as one download of each tarball, in the usage figures.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let top = node
            .api_ok(
                &node.admin_token,
                reqwest::Method::GET,
                "/api/v1/insights/packages?registry=js",
                None,
            )
            .await?;
        let mut counted: Vec<(String, u64)> = top["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let name = p["package"].as_str().unwrap_or_default().to_string();
                (name, p["downloads"].as_u64().unwrap_or_default())
            })
            .collect();
        counted.sort();
        let installed = [("@arca-test/util", 1), ("app-b", 1), ("dep-a", 1)];
        if counted == installed.map(|(name, n)| (name.to_string(), n)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{top:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // npm's search shows them too.
    let found: Value = http()
        .get(format!("{}/npm/js/-/v1/search?text=dep-a", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .json()
        .await?;
    let dep_a = found["objects"]
        .as_array()
        .and_then(|objects| objects.iter().find(|o| o["package"]["name"] == "dep-a"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(dep_a["downloads"]["monthly"], 1, "{found:#}");
    assert_eq!(dep_a["downloads"]["weekly"], 1, "{found:#}");
    let lock: Value = serde_json::from_slice(&std::fs::read(project.join("package-lock.json"))?)?;
    for (path, escaped, version) in [
        ("node_modules/dep-a", "dep-a", "1.0.0"),
        ("node_modules/app-b", "app-b", "1.0.0"),
        ("node_modules/@arca-test/util", "@arca-test%2futil", "0.1.0"),
    ] {
        let locked = &lock["packages"][path];
        let served = packument(&node, "js", escaped).await?;
        let dist = &served["versions"][version]["dist"];
        assert_eq!(locked["integrity"], dist["integrity"], "{path}");
        assert_eq!(locked["resolved"], dist["tarball"], "{path}");
        // The integrity is the sha512 of the bytes served.
        let tarball = http()
            .get(dist["tarball"].as_str().context("tarball URL")?)
            .bearer_auth(&node.admin_token)
            .send()
            .await?
            .bytes()
            .await?;
        let integrity = format!("sha512-{}", STANDARD.encode(sha2::Sha512::digest(&tarball)));
        assert_eq!(dist["integrity"], integrity.as_str(), "{path}");
        assert_eq!(dist["shasum"], hex::encode(sha1::Sha1::digest(&tarball)));
    }

    // npm view: the full packument.
    let view = npm.view(&["dep-a"])?;
    assert_eq!(view["name"], "dep-a");
    assert_eq!(view["version"], "1.0.0");
    assert_eq!(view["description"], "dep-a for the Arca npm tests");
    assert_eq!(view["dist-tags"]["latest"], "1.0.0");
    assert_eq!(view["keywords"], json!(["arca", "dependency"]));
    assert_eq!(npm.view(&["@arca-test/util", "version"])?, "0.1.0");
    assert_eq!(
        npm.view(&["app-b", "dependencies"])?,
        json!({ "dep-a": "^1.0.0" })
    );

    // dist-tags: a second version under `beta`, then add, list and remove a tag.
    let beta = npm.package("dep-a", "1.1.0-beta.1", json!({}))?;
    npm.run(&beta, &["publish", "--tag", "beta"])?.ok()?;
    let dir = npm.home.path();
    npm.run(dir, &["dist-tag", "add", "dep-a@1.0.0", "stable"])?
        .ok()?;
    let listed = npm.run(dir, &["dist-tag", "ls", "dep-a"])?.ok()?;
    for line in ["beta: 1.1.0-beta.1", "latest: 1.0.0", "stable: 1.0.0"] {
        assert!(listed.stdout.contains(line), "{}", listed.describe());
    }
    npm.run(dir, &["dist-tag", "rm", "dep-a", "stable"])?.ok()?;
    let listed = npm.run(dir, &["dist-tag", "ls", "dep-a"])?.ok()?;
    assert!(!listed.stdout.contains("stable"), "{}", listed.describe());
    npm.run(dir, &["dist-tag", "add", "@arca-test/util@0.1.0", "next"])?
        .ok()?;
    assert_eq!(
        npm.view(&["@arca-test/util", "dist-tags"])?,
        json!({ "latest": "0.1.0", "next": "0.1.0" })
    );
    Ok(())
}

#[tokio::test]
async fn npm_deprecate_and_unpublish() -> Result<()> {
    let node = TestNode::start()?;
    let test = "npm_deprecate_and_unpublish";
    let Some(npm) = Npm::start(&node, "js", Some(&node.admin_token), test).await? else {
        return Ok(());
    };
    npm.publish("dep-a", "1.0.0", json!({}))?;
    npm.publish("dep-a", "1.1.0", json!({}))?;
    npm.publish("@arca-test/gone", "2.0.0", json!({}))?;
    let dir = npm.home.path();

    npm.run(dir, &["deprecate", "dep-a@1.0.0", "use 1.1.0"])?
        .ok()?;
    assert_eq!(npm.view(&["dep-a@1.0.0", "deprecated"])?, "use 1.1.0");
    let latest = npm.run(dir, &["view", "dep-a@1.1.0", "deprecated"])?.ok()?;
    assert_eq!(latest.stdout.trim(), "", "{}", latest.describe());
    npm.run(dir, &["deprecate", "dep-a@1.0.0", ""])?.ok()?;
    let undeprecated = npm.run(dir, &["view", "dep-a@1.0.0", "deprecated"])?.ok()?;
    assert_eq!(
        undeprecated.stdout.trim(),
        "",
        "{}",
        undeprecated.describe()
    );

    // One version: the packument loses it and latest moves back.
    npm.run(dir, &["unpublish", "dep-a@1.1.0"])?.ok()?;
    assert_eq!(npm.view(&["dep-a", "versions"])?, json!(["1.0.0"]));
    assert_eq!(
        npm.view(&["dep-a", "dist-tags"])?,
        json!({ "latest": "1.0.0" })
    );

    // A whole (scoped) package.
    npm.run(dir, &["unpublish", "@arca-test/gone", "--force"])?
        .ok()?;
    let gone = npm.run(dir, &["view", "@arca-test/gone"])?.failed()?;
    assert!(gone.all().contains("E404"), "{}", gone.describe());
    assert_eq!(
        stored_packages(&node, "js").await?,
        vec!["dep-a".to_string()]
    );
    Ok(())
}

#[tokio::test]
async fn npm_refuses_to_publish_over_a_version() -> Result<()> {
    let node = TestNode::start()?;
    let test = "npm_refuses_to_publish_over_a_version";
    let Some(npm) = Npm::start(&node, "js", Some(&node.admin_token), test).await? else {
        return Ok(());
    };
    npm.publish("dep-a", "1.0.0", json!({}))?;
    let before = packument(&node, "js", "dep-a").await?;
    // npm checks the packument itself first; with --force the registry has to refuse.
    let dir = npm.package("dep-a", "1.0.0", json!({ "description": "changed" }))?;
    let refused = npm.run(&dir, &["publish"])?.failed()?;
    assert!(
        refused.all().contains("cannot publish over"),
        "{}",
        refused.describe()
    );
    let forced = npm.run(&dir, &["publish", "--force"])?.failed()?;
    assert!(forced.all().contains("E403"), "{}", forced.describe());
    assert!(
        forced
            .all()
            .contains("cannot publish over the previously published versions"),
        "{}",
        forced.describe()
    );
    let after = packument(&node, "js", "dep-a").await?;
    assert_eq!(before["versions"], after["versions"]);
    Ok(())
}

#[tokio::test]
async fn npm_login_whoami_ping_and_search() -> Result<()> {
    let node = TestNode::start()?;
    let test = "npm_login_whoami_ping_and_search";
    let Some(npm) = Npm::start(&node, "js", None, test).await? else {
        return Ok(());
    };
    let dir = npm.home.path();
    // Without a token npm does not even ask.
    let anonymous = npm.run(dir, &["whoami"])?.failed()?;
    assert!(
        anonymous.all().contains("ENEEDAUTH"),
        "{}",
        anonymous.describe()
    );

    let wrong = npm.login("alice", "arca_not_a_token")?.failed()?;
    assert!(wrong.all().contains("E401"), "{}", wrong.describe());
    npm.login("alice", &node.admin_token)?.ok()?;
    let npmrc = std::fs::read_to_string(npm.npmrc())?;
    assert!(
        npmrc.contains(&format!(":_authToken={}", node.admin_token)),
        "{npmrc}"
    );
    let whoami = npm.run(dir, &["whoami"])?.ok()?;
    assert_eq!(whoami.stdout.trim(), "admin", "{}", whoami.describe());
    let ping = npm.run(dir, &["ping"])?.ok()?;
    assert!(ping.all().contains("PONG"), "{}", ping.describe());

    npm.publish("dep-a", "1.0.0", json!({ "keywords": ["arca-search"] }))?;
    npm.publish(
        "@arca-test/other",
        "1.0.0",
        json!({ "description": "unrelated" }),
    )?;
    let found = npm.run(dir, &["search", "arca-search", "--json"])?.ok()?;
    let results: Value = serde_json::from_str(&found.stdout)?;
    let names: Vec<&str> = results
        .as_array()
        .context("search results")?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, vec!["dep-a"], "{}", found.describe());
    let none = npm.run(dir, &["search", "no-such-words"])?.ok()?;
    assert!(none.stdout.contains("No matches"), "{}", none.describe());
    Ok(())
}

/// A publish document as npm sends it, for `data` with the given `dist`.
fn publish_document(name: &str, version: &str, data: &[u8], dist: Value) -> Value {
    let bare = name.rsplit('/').next().unwrap_or(name);
    let file = format!("{bare}-{version}.tgz");
    json!({
        "_id": name,
        "name": name,
        "dist-tags": { "latest": version },
        "versions": { version: { "name": name, "version": version, "dist": dist } },
        "_attachments": { file: {
            "content_type": "application/octet-stream",
            "data": STANDARD.encode(data),
            "length": data.len(),
        } },
    })
}

async fn put_document(node: &TestNode, name: &str, body: Vec<u8>) -> Result<reqwest::Response> {
    Ok(http()
        .put(format!("{}/npm/js/{}", node.url, name.replace('/', "%2f")))
        .bearer_auth(&node.admin_token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?)
}

/// The `error` message of an npm error answer with status `status`.
async fn npm_error(response: reqwest::Response, status: StatusCode) -> Result<String> {
    ensure!(response.status() == status, "status {}", response.status());
    let body: Value = response.json().await.context("JSON error body")?;
    Ok(body["error"].as_str().context("error field")?.to_string())
}

#[tokio::test]
async fn bad_publishes_are_refused_and_store_nothing() -> Result<()> {
    let node = TestNode::start()?;
    create_registry(&node, "js").await?;
    let tarball = arca_tests::npm_tarball("@arca-test/bad", "1.0.0", 0)?;
    let data = tarball.as_slice();
    let sha512 = format!("sha512-{}", STANDARD.encode(sha2::Sha512::digest(data)));
    let sha1 = hex::encode(sha1::Sha1::digest(data));
    let other = format!("sha512-{}", STANDARD.encode(sha2::Sha512::digest(b"other")));
    let text = b"not really a tarball, but bytes all the same";
    let not_base64 = {
        let mut document = publish_document("@arca-test/bad", "1.0.0", data, json!({}));
        document["_attachments"]["bad-1.0.0.tgz"]["data"] = json!("a tarball?");
        document
    };

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "integrity of other bytes",
            serde_json::to_vec(&publish_document(
                "@arca-test/bad",
                "1.0.0",
                data,
                json!({ "integrity": other, "shasum": sha1 }),
            ))?,
            "integrity mismatch",
        ),
        (
            "shasum of other bytes",
            serde_json::to_vec(&publish_document(
                "@arca-test/bad",
                "1.0.0",
                data,
                json!({ "integrity": sha512, "shasum": "0".repeat(40) }),
            ))?,
            "shasum mismatch",
        ),
        (
            "an attachment that is not a gzip'd tar",
            serde_json::to_vec(&publish_document("@arca-test/bad", "1.0.0", text, json!({})))?,
            "not gzip",
        ),
        (
            "an attachment that is not base64",
            serde_json::to_vec(&not_base64)?,
            "not base64",
        ),
        (
            "an attachment without data",
            br#"{"name":"@arca-test/bad","versions":{"1.0.0":{}},"_attachments":{"bad-1.0.0.tgz":{"data":7}}}"#.to_vec(),
            "has no data",
        ),
        (
            "a document cut inside its data",
            br#"{"name":"@arca-test/bad","_attachments":{"bad-1.0.0.tgz":{"data":"H4sI"#.to_vec(),
            "ends inside its data",
        ),
        (
            "malformed JSON",
            br#"{"name": "@arca-test/bad", "versions": {"1.0.0": "#.to_vec(),
            "malformed packument",
        ),
        (
            "a version that is not semver",
            serde_json::to_vec(&publish_document("@arca-test/bad", "1.0", data, json!({})))?,
            "invalid version",
        ),
        (
            "a manifest for another package",
            serde_json::to_vec(&publish_document(
                "@arca-test/other",
                "1.0.0",
                data,
                json!({}),
            ))?,
            "the packument names",
        ),
    ];
    for (case, body, expected) in cases {
        let response = put_document(&node, "@arca-test/bad", body).await?;
        let message = npm_error(response, StatusCode::BAD_REQUEST)
            .await
            .with_context(|| case.to_string())?;
        assert!(message.contains(expected), "{case}: {message}");
        assert_eq!(
            stored_packages(&node, "js").await?,
            Vec::<String>::new(),
            "{case}"
        );
    }
    let response = put_document(&node, "Upper", b"{}".to_vec()).await?;
    let message = npm_error(response, StatusCode::BAD_REQUEST).await?;
    assert!(message.contains("invalid package name"), "{message}");

    // The same document with the right digests is accepted, so only the digests were wrong.
    let good = publish_document(
        "@arca-test/bad",
        "1.0.0",
        data,
        json!({ "integrity": sha512, "shasum": sha1 }),
    );
    let response = put_document(&node, "@arca-test/bad", serde_json::to_vec(&good)?).await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        stored_packages(&node, "js").await?,
        vec!["@arca-test/bad".to_string()]
    );
    let served = packument(&node, "js", "@arca-test%2fbad").await?;
    assert_eq!(
        served["versions"]["1.0.0"]["dist"]["integrity"],
        sha512.as_str()
    );

    // Publishing it again is npm's 403.
    let response = put_document(&node, "@arca-test/bad", serde_json::to_vec(&good)?).await?;
    let message = npm_error(response, StatusCode::FORBIDDEN).await?;
    assert!(message.contains("cannot publish over"), "{message}");
    // So is a version that differs from a published one only in build metadata, either way.
    for (published, version) in [
        ("1.0.0", "1.0.0+build"),
        ("2.0.0+a", "2.0.0+b"),
        ("3.0.0+a", "3.0.0"),
    ] {
        if published.starts_with('2') || published.starts_with('3') {
            let first = publish_document("@arca-test/bad", published, data, json!({}));
            let response =
                put_document(&node, "@arca-test/bad", serde_json::to_vec(&first)?).await?;
            ensure!(
                response.status() == StatusCode::CREATED,
                "{published}: {}",
                response.status()
            );
        }
        let document = publish_document("@arca-test/bad", version, data, json!({}));
        let response =
            put_document(&node, "@arca-test/bad", serde_json::to_vec(&document)?).await?;
        let message = npm_error(response, StatusCode::FORBIDDEN).await?;
        assert!(message.contains("build metadata"), "{version}: {message}");
    }

    // Without a token: 401 in npm's format, with a challenge.
    let response = http()
        .get(format!("{}/npm/js/@arca-test%2fbad", node.url))
        .send()
        .await?;
    assert!(response.headers().contains_key("www-authenticate"));
    npm_error(response, StatusCode::UNAUTHORIZED).await?;
    Ok(())
}

#[tokio::test]
async fn abbreviated_packument_and_version_documents() -> Result<()> {
    let node = TestNode::start()?;
    create_registry(&node, "js").await?;
    let tarball = arca_tests::npm_tarball("plain", "1.0.0", 0)?;
    let data = tarball.as_slice();
    let document = publish_document("plain", "1.0.0", data, json!({}));
    let response = put_document(&node, "plain", serde_json::to_vec(&document)?).await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = http()
        .get(format!("{}/npm/js/plain", node.url))
        .bearer_auth(&node.admin_token)
        .header(
            "accept",
            "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
        )
        .send()
        .await?;
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.npm.install-v1+json"
    );
    let corgi: Value = response.json().await?;
    assert!(corgi.get("time").is_none() && corgi.get("_rev").is_none());
    let tarball = corgi["versions"]["1.0.0"]["dist"]["tarball"]
        .as_str()
        .context("tarball")?;
    assert_eq!(
        tarball,
        format!("{}/npm/js/plain/-/plain-1.0.0.tgz", node.url)
    );
    let version: Value = http()
        .get(format!("{}/npm/js/plain/latest", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(version["version"], "1.0.0");
    assert_eq!(version["_npmUser"]["name"], "admin");
    let bytes = http()
        .get(tarball)
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .bytes()
        .await?;
    assert_eq!(&bytes[..], data);
    Ok(())
}

/// A publish document streams: its tarball goes to the chunk store as it arrives, so a large one
/// costs the node a bounded amount of memory, not the document's size (which the node used to hold
/// whole, with its decoded tarball besides).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_publish_streams_into_the_store() -> Result<()> {
    const TARBALL_MIB: usize = 64;
    let node = TestNode::start()?;
    create_registry(&node, "js").await?;
    let tarball = arca_tests::npm_tarball("large", "1.0.0", TARBALL_MIB << 20)?;
    let sha512 = format!("sha512-{}", STANDARD.encode(sha2::Sha512::digest(&tarball)));
    let document = serde_json::to_vec(&publish_document(
        "large",
        "1.0.0",
        &tarball,
        json!({ "integrity": sha512 }),
    ))?;
    let before = node.peak_memory().context("peak memory")?;
    let response = put_document(&node, "large", document).await?;
    ensure!(
        response.status() == StatusCode::CREATED,
        "{}: {}",
        response.status(),
        response.text().await?
    );
    let grown = node
        .peak_memory()
        .context("peak memory")?
        .saturating_sub(before);
    eprintln!(
        "a {TARBALL_MIB} MiB tarball's publish: peak memory grew {} MiB",
        grown >> 20
    );
    ensure!(
        grown < 40 << 20,
        "peak memory grew {} MiB for a {TARBALL_MIB} MiB tarball",
        grown >> 20
    );
    let served = http()
        .get(format!("{}/npm/js/large/-/large-1.0.0.tgz", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .bytes()
        .await?;
    ensure!(served.len() == tarball.len() && served[..] == tarball[..]);
    Ok(())
}
