//! Uploading to Composer registries, `/composer/{registry}/`: a package zip (`composer archive`, or
//! a Git host's archive) is read for its `composer.json` (the package name, and the version when it
//! says one) and sent to `PUT packages/<vendor>/<name>/<version>`.

use std::io::Cursor;
use std::path::Path;

use reqwest::Method;

use crate::archive::zip_member;
use crate::client::Client;
use crate::error::ClientError;
use crate::published::Published;

impl Client {
    /// Uploads the package zip at `zip` to the Composer registry `registry`, as `version` (or the
    /// version its `composer.json` says).
    pub async fn push_composer(
        &self,
        registry: &str,
        zip: &Path,
        version: Option<&str>,
    ) -> Result<Published, ClientError> {
        let bytes = tokio::fs::read(zip).await?;
        // composer.json at the root, or in the archive's one top directory.
        let manifest = zip_member(Cursor::new(&bytes), "package zip", |path| {
            path == "composer.json"
                || path
                    .split_once('/')
                    .is_some_and(|(top, rest)| !top.is_empty() && rest == "composer.json")
        })?
        .ok_or_else(|| ClientError::Invalid("the zip has no composer.json".into()))?;
        let manifest: serde_json::Value = serde_json::from_slice(&manifest)
            .map_err(|err| ClientError::Invalid(format!("composer.json: {err}")))?;
        let name = manifest
            .get("name")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| ClientError::Invalid("composer.json has no name".into()))?
            .to_string();
        let version = match (
            version,
            manifest.get("version").and_then(serde_json::Value::as_str),
        ) {
            (Some(given), _) => given.to_string(),
            (None, Some(declared)) => declared.to_string(),
            (None, None) => {
                return Err(ClientError::Invalid(
                    "composer.json says no version: give one with --version".into(),
                ));
            }
        };
        let (vendor, package) = name.split_once('/').ok_or_else(|| {
            ClientError::Invalid(format!("package name {name:?} is not vendor/name"))
        })?;
        let url = self.url(&["composer", registry, "packages", vendor, package, &version])?;
        self.send(self.request(Method::PUT, url).body(bytes))
            .await?;
        Ok(Published {
            ecosystem: "composer",
            registry: registry.to_string(),
            files: vec![format!("{}-{version}.zip", name.replace('/', "-"))],
            package: name,
            version,
            tags: Vec::new(),
        })
    }
}
