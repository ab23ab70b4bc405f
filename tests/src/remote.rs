//! Helpers for tests of remote (caching proxy) and virtual registries: creating registries of any
//! kind through the management API, reading a node's request counters from `/metrics`, and the npm
//! CLI pointed at one registry of a node with its own home, config and cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::clients::{ClientOutput, require_client, run_command};
use crate::{TestNode, http};

/// Creates a registry on `node` from a `CreateRegistryRequest` body (`name`, `package_type`, `kind`,
/// `upstream`, `members`, `publish_to`).
pub async fn create_registry(node: &TestNode, body: Value) -> Result<()> {
    create_registry_with(&http(), node, body).await
}

/// [`create_registry`] through `client` (one that trusts an HTTPS node's CA, say).
pub async fn create_registry_with(
    client: &reqwest::Client,
    node: &TestNode,
    body: Value,
) -> Result<()> {
    let response = client
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    if status != reqwest::StatusCode::CREATED {
        bail!(
            "creating registry {body}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// The body creating a local registry of `package_type`.
pub fn local_registry(name: &str, package_type: &str) -> Value {
    json!({ "name": name, "package_type": package_type })
}

/// The body creating a remote registry of `package_type` over `upstream_url`, authenticating with
/// Basic credentials whose password is `password`, its metadata fresh for `ttl_seconds`.
pub fn remote_registry(
    name: &str,
    package_type: &str,
    upstream_url: &str,
    password: &str,
    ttl_seconds: u64,
) -> Value {
    json!({
        "name": name,
        "package_type": package_type,
        "kind": "remote",
        "upstream": {
            "url": upstream_url,
            "username": "x",
            "password": password,
            "metadata_ttl_seconds": ttl_seconds,
        },
    })
}

/// The body creating a virtual registry of `package_type` over `members`, publishing to
/// `publish_to`.
pub fn virtual_registry(
    name: &str,
    package_type: &str,
    members: &[&str],
    publish_to: Option<&str>,
) -> Value {
    json!({
        "name": name,
        "package_type": package_type,
        "kind": "virtual",
        "members": members,
        "publish_to": publish_to,
    })
}

/// The sum of `arca_http_requests_total` on `node` for `method` on `route` (as axum matched it, e.g.
/// `/npm/{registry}/{*path}`), every status.
pub async fn request_count(node: &TestNode, method: &str, route: &str) -> Result<u64> {
    let text = http()
        .get(format!("{}/metrics", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let wanted = [format!("method=\"{method}\""), format!("route=\"{route}\"")];
    let mut total = 0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("arca_http_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let labels: Vec<&str> = labels.split(',').collect();
        if wanted.iter().all(|w| labels.contains(&w.as_str())) {
            total += value
                .trim()
                .parse::<f64>()
                .with_context(|| format!("metric line {line:?}"))? as u64;
        }
    }
    Ok(total)
}

/// The npm CLI pointed at one npm registry of a node, with its own home, config and caches. npm only
/// ever talks to that registry (audit, fund and the update notifier are off).
pub struct NpmClient {
    bin: PathBuf,
    home: tempfile::TempDir,
    /// `http://host/npm/<registry>/`
    pub registry_url: String,
}

impl NpmClient {
    /// npm for the registry `registry` of `node`, with a `.npmrc` holding `token` (none: anonymous).
    /// `None` when npm is not installed and this is not CI.
    pub fn new(
        node: &TestNode,
        registry: &str,
        token: Option<&str>,
        test: &str,
    ) -> Result<Option<NpmClient>> {
        let Some(bin) = require_client("npm", test) else {
            return Ok(None);
        };
        let npm = NpmClient {
            bin,
            home: tempfile::tempdir()?,
            registry_url: format!("{}/npm/{registry}/", node.url),
        };
        let mut text = format!("registry={}\n", npm.registry_url);
        if let Some(token) = token {
            let host_path = npm.registry_url.trim_start_matches("http:");
            text.push_str(&format!("{host_path}:_authToken={token}\n"));
        }
        std::fs::write(npm.npmrc(), text)?;
        Ok(Some(npm))
    }

    /// The client's home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    fn npmrc(&self) -> PathBuf {
        self.home.path().join(".npmrc")
    }

    /// A cache directory of its own, so nothing is taken from an earlier run's cache.
    pub fn cache(&self, name: &str) -> PathBuf {
        self.home.path().join("caches").join(name)
    }

    /// npm with `args` in `dir`, using the cache `cache`, and no npm settings from the environment.
    pub fn command(&self, dir: &Path, cache: &Path, args: &[&str]) -> Command {
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

    /// Writes a package directory with `package.json` (`extra` merged in) and an `index.js`.
    pub fn package(&self, name: &str, version: &str, extra: Value) -> Result<PathBuf> {
        let dir = self
            .home
            .path()
            .join("src")
            .join(format!("{}-{version}", name.replace('/', "_")));
        std::fs::create_dir_all(&dir)?;
        let mut manifest = json!({
            "name": name,
            "version": version,
            "description": format!("{name} for the Arca remote registry tests"),
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

    /// `npm publish` of a package made with [`NpmClient::package`]; the output, whether it worked or
    /// not.
    pub fn try_publish(&self, name: &str, version: &str, extra: Value) -> Result<ClientOutput> {
        let dir = self.package(name, version, extra)?;
        run_command(&mut self.command(&dir, &self.cache("publish"), &["publish"]))
    }

    /// `npm publish` of a package made with [`NpmClient::package`], which must work.
    pub fn publish(&self, name: &str, version: &str, extra: Value) -> Result<ClientOutput> {
        self.try_publish(name, version, extra)?.ok()
    }

    /// A fresh project directory `name` with a private `package.json`.
    pub fn project(&self, name: &str) -> Result<PathBuf> {
        let dir = self.home.path().join("projects").join(name);
        ensure!(!dir.exists(), "project {name} exists already");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("package.json"),
            r#"{"name": "project", "version": "1.0.0", "private": true}"#,
        )?;
        Ok(dir)
    }

    /// `npm install <specs>` in `project` with the empty cache `cache`, so every byte comes from the
    /// registry; the output, whether it worked or not.
    pub fn install(&self, project: &Path, cache: &str, specs: &[&str]) -> Result<ClientOutput> {
        let cache = self.cache(cache);
        ensure!(!cache.exists(), "cache {} was used before", cache.display());
        let mut args = vec!["install", "--no-audit", "--no-fund"];
        args.extend_from_slice(specs);
        run_command(&mut self.command(project, &cache, &args))
    }
}

/// The `version` of the package installed at `node_modules/<name>` of `project`.
pub fn installed_version(project: &Path, name: &str) -> Result<String> {
    let path = project.join("node_modules").join(name).join("package.json");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    manifest["version"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{} has no version", path.display()))
}
