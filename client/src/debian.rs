//! Uploading to Debian registries, `/debian/{registry}/`: a `.deb` is sent whole to
//! `PUT upload/<suite>/<component>`; the registry reads the package's control file for its name,
//! version and architecture.

use std::path::Path;

use reqwest::Method;

use crate::client::Client;
use crate::error::ClientError;
use crate::published::Published;

/// What a Debian registry answers to an upload.
#[derive(serde::Deserialize)]
struct Stored {
    package: String,
    version: String,
    file: String,
}

impl Client {
    /// Uploads the `.deb` at `package` into `suite` and `component` of the Debian registry
    /// `registry`.
    pub async fn push_debian(
        &self,
        registry: &str,
        package: &Path,
        suite: &str,
        component: &str,
    ) -> Result<Published, ClientError> {
        if package.extension().and_then(|e| e.to_str()) != Some("deb") {
            return Err(ClientError::Invalid(format!(
                "{} is not a Debian package (.deb)",
                package.display()
            )));
        }
        let bytes = tokio::fs::read(package).await?;
        let url = self.url(&["debian", registry, "upload", suite, component])?;
        let stored: Stored = self
            .send_json(self.request(Method::PUT, url).body(bytes))
            .await?;
        Ok(Published {
            ecosystem: "debian",
            registry: registry.to_string(),
            package: stored.package,
            version: stored.version,
            files: vec![stored.file],
            tags: vec![format!("{suite}/{component}")],
        })
    }
}
