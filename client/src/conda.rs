//! Uploading to Conda channels, `/conda/{registry}/`: a `.conda` or `.tar.bz2` package is sent
//! whole to `PUT <file>`; the channel reads the package's `info/index.json` for its name, version,
//! build and subdir.

use std::path::Path;

use reqwest::Method;

use crate::client::Client;
use crate::error::ClientError;
use crate::published::Published;

/// What a channel answers to an upload.
#[derive(serde::Deserialize)]
struct Stored {
    name: String,
    version: String,
}

impl Client {
    /// Uploads the `.conda` or `.tar.bz2` package at `package` to the Conda registry `registry`.
    pub async fn push_conda(
        &self,
        registry: &str,
        package: &Path,
    ) -> Result<Published, ClientError> {
        let file = package
            .file_name()
            .and_then(|name| name.to_str())
            .filter(|name| name.ends_with(".conda") || name.ends_with(".tar.bz2"))
            .ok_or_else(|| {
                ClientError::Invalid(format!(
                    "{} is not a conda package (.conda or .tar.bz2)",
                    package.display()
                ))
            })?
            .to_string();
        let bytes = tokio::fs::read(package).await?;
        let url = self.url(&["conda", registry, &file])?;
        let stored: Stored = self
            .send_json(self.request(Method::PUT, url).body(bytes))
            .await?;
        Ok(Published {
            ecosystem: "conda",
            registry: registry.to_string(),
            package: stored.name,
            version: stored.version,
            files: vec![file],
            tags: Vec::new(),
        })
    }
}
