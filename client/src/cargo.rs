//! Publishing to Cargo registries, `/cargo/{registry}/`, the way `cargo publish` does: the `.crate`
//! `cargo package` made is read for its normalized `Cargo.toml`, the publish metadata (name,
//! version, dependencies with their kinds, targets, renames and registries, features) is built from
//! it, and metadata and file are sent as one `PUT /api/v1/crates/new` body, each after its length.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};
use toml::Table;

use crate::archive::tar_gz_member;
use crate::client::Client;
use crate::error::ClientError;
use crate::published::Published;

/// The index dependencies from crates.io name, as `cargo publish` writes it.
const CRATES_IO_INDEX: &str = "https://github.com/rust-lang/crates.io-index";

fn invalid(message: impl Into<String>) -> ClientError {
    ClientError::Invalid(message.into())
}

/// The dependencies of one table of the manifest (`dependencies`, `dev-dependencies`,
/// `build-dependencies`, under `target.<cfg>` or not), as publish metadata. `own_index` is the
/// index of the registry published to: dependencies from it have no `registry`.
fn dependencies(
    table: Option<&Table>,
    kind: &str,
    target: Option<&str>,
    own_index: &str,
) -> Result<Vec<Value>, ClientError> {
    let mut deps = Vec::new();
    for (key, spec) in table.into_iter().flatten() {
        let (version, spec) = match spec {
            toml::Value::String(version) => (version.clone(), Table::new()),
            toml::Value::Table(spec) => (
                spec.get("version")
                    .and_then(toml::Value::as_str)
                    .unwrap_or("*")
                    .to_string(),
                spec.clone(),
            ),
            _ => {
                return Err(invalid(format!(
                    "dependency {key}: not a version or a table"
                )));
            }
        };
        let text = |field: &str| spec.get(field).and_then(toml::Value::as_str);
        let flag = |field: &str, default: bool| {
            spec.get(field)
                .and_then(toml::Value::as_bool)
                .unwrap_or(default)
        };
        let features: Vec<&str> = spec
            .get("features")
            .and_then(toml::Value::as_array)
            .map(|list| list.iter().filter_map(toml::Value::as_str).collect())
            .unwrap_or_default();
        let registry = match text("registry-index") {
            Some(index) if index.trim_end_matches('/') == own_index.trim_end_matches('/') => None,
            Some(index) => Some(index.to_string()),
            None => Some(CRATES_IO_INDEX.to_string()),
        };
        let (name, explicit_name) = match text("package") {
            Some(package) => (package.to_string(), Some(key.clone())),
            None => (key.clone(), None),
        };
        deps.push(json!({
            "name": name,
            "version_req": version,
            "features": features,
            "optional": flag("optional", false),
            "default_features": flag("default-features", true),
            "target": target,
            "kind": kind,
            "registry": registry,
            "explicit_name_in_toml": explicit_name,
        }));
    }
    Ok(deps)
}

/// The publish metadata of a crate from its normalized manifest.
fn publish_metadata(
    manifest: &Table,
    own_index: &str,
) -> Result<(String, String, Value), ClientError> {
    let package = manifest
        .get("package")
        .and_then(toml::Value::as_table)
        .ok_or_else(|| invalid("Cargo.toml has no [package]"))?;
    let text = |field: &str| package.get(field).and_then(toml::Value::as_str);
    let name = text("name").ok_or_else(|| invalid("Cargo.toml has no package.name"))?;
    let version = text("version").ok_or_else(|| invalid("Cargo.toml has no package.version"))?;
    let kinds = [
        ("dependencies", "normal"),
        ("dev-dependencies", "dev"),
        ("build-dependencies", "build"),
    ];
    let mut deps = Vec::new();
    for (table, kind) in kinds {
        deps.extend(dependencies(
            manifest.get(table).and_then(toml::Value::as_table),
            kind,
            None,
            own_index,
        )?);
    }
    for (cfg, tables) in manifest
        .get("target")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flatten()
    {
        for (table, kind) in kinds {
            deps.extend(dependencies(
                tables.get(table).and_then(toml::Value::as_table),
                kind,
                Some(cfg),
                own_index,
            )?);
        }
    }
    let strings = |field: &str| -> Vec<String> {
        package
            .get(field)
            .and_then(toml::Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(toml::Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let features = manifest
        .get("features")
        .map(|features| serde_json::to_value(features).unwrap_or(Value::Null))
        .unwrap_or_else(|| json!({}));
    let metadata = json!({
        "name": name,
        "vers": version,
        "deps": deps,
        "features": features,
        "authors": strings("authors"),
        "description": text("description"),
        "documentation": text("documentation"),
        "homepage": text("homepage"),
        "readme": null,
        "readme_file": text("readme"),
        "keywords": strings("keywords"),
        "categories": strings("categories"),
        "license": text("license"),
        "license_file": text("license-file"),
        "repository": text("repository"),
        "badges": {},
        "links": text("links"),
        "rust_version": text("rust-version"),
    });
    Ok((name.to_string(), version.to_string(), metadata))
}

impl Client {
    /// Publishes the `.crate` at `crate_file` (made by `cargo package`) to the Cargo registry
    /// `registry`.
    pub async fn push_cargo(
        &self,
        registry: &str,
        crate_file: &Path,
    ) -> Result<Published, ClientError> {
        let bytes = tokio::fs::read(crate_file).await?;
        let manifest = tar_gz_member(bytes.as_slice(), ".crate file", |path| {
            path.split_once('/')
                .is_some_and(|(root, rest)| !root.is_empty() && rest == "Cargo.toml")
        })?
        .ok_or_else(|| invalid("the .crate file has no <name>-<version>/Cargo.toml"))?;
        let manifest: Table = String::from_utf8_lossy(&manifest)
            .parse()
            .map_err(|err| invalid(format!("Cargo.toml: {err}")))?;
        let own_index = format!("sparse+{}", self.url(&["cargo", registry, "index", ""])?);
        let (name, version, metadata) = publish_metadata(&manifest, &own_index)?;
        let metadata = serde_json::to_vec(&metadata).map_err(|err| invalid(err.to_string()))?;
        let length = |len: usize| {
            u32::try_from(len)
                .map(u32::to_le_bytes)
                .map_err(|_| invalid("the .crate file is over 4 GiB"))
        };
        let mut body = Vec::with_capacity(8 + metadata.len() + bytes.len());
        body.extend_from_slice(&length(metadata.len())?);
        body.extend_from_slice(&metadata);
        body.extend_from_slice(&length(bytes.len())?);
        body.extend_from_slice(&bytes);
        let url = self.url(&["cargo", registry, "api", "v1", "crates", "new"])?;
        self.send(self.request(Method::PUT, url).body(body)).await?;
        Ok(Published {
            ecosystem: "cargo",
            registry: registry.to_string(),
            files: vec![format!("{name}-{version}.crate")],
            package: name,
            version,
            tags: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_metadata_follows_the_normalized_manifest() {
        let own = "sparse+http://127.0.0.1:7070/cargo/crates/index/";
        let manifest: Table = format!(
            r#"
[package]
name = "app"
version = "0.2.0"
description = "demo"
license = "MIT"

[dependencies.serde]
version = "1.0"
features = ["derive"]

[dependencies.mine]
version = "^0.1"
registry-index = "{own}"
package = "my-lib"
optional = true

[target."cfg(unix)".build-dependencies]
cc = "1"

[features]
extra = ["dep:mine"]
"#
        )
        .parse()
        .expect("toml");
        let (name, version, metadata) = publish_metadata(&manifest, own).expect("metadata");
        assert_eq!((name.as_str(), version.as_str()), ("app", "0.2.0"));
        let deps = metadata["deps"].as_array().expect("deps");
        let find = |name: &str| deps.iter().find(|d| d["name"] == name).expect("dep");
        assert_eq!(find("serde")["registry"], CRATES_IO_INDEX);
        assert_eq!(find("serde")["features"], json!(["derive"]));
        assert_eq!(find("my-lib")["registry"], Value::Null);
        assert_eq!(find("my-lib")["explicit_name_in_toml"], "mine");
        assert_eq!(find("my-lib")["optional"], true);
        assert_eq!(find("cc")["kind"], "build");
        assert_eq!(find("cc")["target"], "cfg(unix)");
        assert_eq!(metadata["features"]["extra"], json!(["dep:mine"]));
    }
}
