//! Pushing to NuGet feeds, `/nuget/{registry}/`, as `nuget push` does: the `.nupkg` streamed as the
//! one part of a `multipart/form-data` `PUT api/v2/package`; the feed reads the package's `.nuspec`
//! for its id and version.

use std::path::Path;

use reqwest::Method;
use reqwest::multipart::{Form, Part};

use crate::client::Client;
use crate::error::ClientError;
use crate::published::Published;

/// What a feed answers to a push.
#[derive(serde::Deserialize)]
struct Stored {
    id: String,
    version: String,
}

impl Client {
    /// Pushes the `.nupkg` at `package` to the NuGet registry `registry`.
    pub async fn push_nuget(
        &self,
        registry: &str,
        package: &Path,
    ) -> Result<Published, ClientError> {
        let file_name = package
            .file_name()
            .and_then(|name| name.to_str())
            .filter(|name| name.to_ascii_lowercase().ends_with(".nupkg"))
            .ok_or_else(|| ClientError::Invalid(format!("{} is not a .nupkg", package.display())))?
            .to_string();
        let file = tokio::fs::File::open(package).await?;
        let length = file.metadata().await?.len();
        let part = Part::stream_with_length(reqwest::Body::from(file), length)
            .file_name(file_name.clone())
            .mime_str("application/octet-stream")?;
        let url = self.url(&["nuget", registry, "api", "v2", "package"])?;
        let stored: Stored = self
            .send_json(
                self.request(Method::PUT, url)
                    .multipart(Form::new().part("package", part)),
            )
            .await?;
        Ok(Published {
            ecosystem: "nuget",
            registry: registry.to_string(),
            package: stored.id,
            version: stored.version,
            files: vec![file_name],
            tags: Vec::new(),
        })
    }
}
