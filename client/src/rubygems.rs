//! Pushing to RubyGems registries, `/rubygems/{registry}/`, the way `gem push` does: the `.gem` is
//! read for its specification (`metadata.gz`: the name, version and platform the registry will file
//! it under) and posted whole to `POST api/v1/gems`.

use std::io::Read;
use std::path::Path;

use reqwest::Method;

use crate::archive::tar_member;
use crate::client::Client;
use crate::error::ClientError;
use crate::published::Published;

fn invalid(message: impl Into<String>) -> ClientError {
    ClientError::Invalid(message.into())
}

/// The name and the version (`<number>[-<platform>]`) a `.gem`'s specification gives.
fn gem_identity(gem: &[u8]) -> Result<(String, String), ClientError> {
    let metadata = tar_member(gem, "gem", |path| path == "metadata.gz")?
        .ok_or_else(|| invalid("the gem has no metadata.gz"))?;
    let mut yaml = String::new();
    flate2::read::GzDecoder::new(metadata.as_slice())
        .read_to_string(&mut yaml)
        .map_err(|err| invalid(format!("metadata.gz: {err}")))?;
    let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml)
        .map_err(|err| invalid(format!("the gem's specification: {err}")))?;
    let untag = |value: &serde_yaml_ng::Value| match value {
        serde_yaml_ng::Value::Tagged(tagged) => tagged.value.clone(),
        other => other.clone(),
    };
    let spec = untag(&spec);
    let text = |value: Option<&serde_yaml_ng::Value>| match value.map(untag) {
        Some(serde_yaml_ng::Value::String(text)) => Some(text),
        Some(serde_yaml_ng::Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    let name =
        text(spec.get("name")).ok_or_else(|| invalid("the gem's specification has no name"))?;
    let number = spec
        .get("version")
        .map(untag)
        .and_then(|version| text(version.get("version")))
        .ok_or_else(|| invalid("the gem's specification has no version"))?;
    let version = match text(spec.get("platform")).as_deref() {
        None | Some("ruby") => number,
        Some(platform) => format!("{number}-{platform}"),
    };
    Ok((name, version))
}

impl Client {
    /// Pushes the `.gem` at `gem` to the RubyGems registry `registry`.
    pub async fn push_gem(&self, registry: &str, gem: &Path) -> Result<Published, ClientError> {
        let bytes = tokio::fs::read(gem).await?;
        let (name, version) = gem_identity(&bytes)?;
        let url = self.url(&["rubygems", registry, "api", "v1", "gems"])?;
        self.send(
            self.request(Method::POST, url)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(bytes),
        )
        .await?;
        Ok(Published {
            ecosystem: "rubygems",
            registry: registry.to_string(),
            files: vec![format!("{name}-{version}.gem")],
            package: name,
            version,
            tags: Vec::new(),
        })
    }
}
