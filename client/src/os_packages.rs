//! Uploading to Debian and RPM registries: a `.deb` is sent whole to `PUT
//! /debian/{registry}/upload/<suite>/<component>`, an `.rpm` to `PUT /rpm/{registry}/upload`; the
//! registry reads the package's control file or headers for its name, version and architecture.

use std::path::Path;

use reqwest::{Method, Url};

use crate::client::Client;
use crate::error::ClientError;
use crate::published::Published;

/// What a Debian or RPM registry answers to an upload.
#[derive(serde::Deserialize)]
struct Stored {
    package: String,
    version: String,
    file: String,
}

impl Client {
    /// Sends the file at `package` (which must end in `.<extension>`) whole to `url`.
    async fn upload_package_file(
        &self,
        url: Url,
        package: &Path,
        extension: &str,
    ) -> Result<Stored, ClientError> {
        if package.extension().and_then(|e| e.to_str()) != Some(extension) {
            return Err(ClientError::Invalid(format!(
                "{} is not a .{extension} package",
                package.display()
            )));
        }
        let bytes = tokio::fs::read(package).await?;
        self.send_json(self.request(Method::PUT, url).body(bytes))
            .await
    }

    /// Uploads the `.deb` at `package` into `suite` and `component` of the Debian registry
    /// `registry`.
    pub async fn push_debian(
        &self,
        registry: &str,
        package: &Path,
        suite: &str,
        component: &str,
    ) -> Result<Published, ClientError> {
        let url = self.url(&["debian", registry, "upload", suite, component])?;
        let stored = self.upload_package_file(url, package, "deb").await?;
        Ok(Published {
            ecosystem: "debian",
            registry: registry.to_string(),
            package: stored.package,
            version: stored.version,
            files: vec![stored.file],
            tags: vec![format!("{suite}/{component}")],
        })
    }

    /// Uploads the `.rpm` at `package` to the RPM registry `registry`.
    pub async fn push_rpm(&self, registry: &str, package: &Path) -> Result<Published, ClientError> {
        let url = self.url(&["rpm", registry, "upload"])?;
        let stored = self.upload_package_file(url, package, "rpm").await?;
        Ok(Published {
            ecosystem: "rpm",
            registry: registry.to_string(),
            package: stored.package,
            version: stored.version,
            files: vec![stored.file],
            tags: Vec::new(),
        })
    }
}
