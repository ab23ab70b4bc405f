//! Uploading to Helm registries, `/helm/{registry}/`, the way `helm cm-push` does: the chart
//! archive `helm package` made is read for its `Chart.yaml` (the name and version the registry
//! will file it under) and posted whole to ChartMuseum's `POST /api/charts`.

use std::path::Path;

use reqwest::Method;

use crate::archive::tar_gz_member;
use crate::client::Client;
use crate::error::ClientError;
use crate::published::Published;

impl Client {
    /// Uploads the chart archive at `chart` to the Helm registry `registry`.
    pub async fn push_helm(&self, registry: &str, chart: &Path) -> Result<Published, ClientError> {
        let bytes = tokio::fs::read(chart).await?;
        let chart_yaml = tar_gz_member(bytes.as_slice(), "chart archive", |path| {
            path.split_once('/')
                .is_some_and(|(root, rest)| !root.is_empty() && rest == "Chart.yaml")
        })?
        .ok_or_else(|| {
            ClientError::Invalid("the chart archive has no <chart>/Chart.yaml".into())
        })?;
        let metadata: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&chart_yaml)
            .map_err(|err| ClientError::Invalid(format!("Chart.yaml: {err}")))?;
        let field = |key: &str| {
            metadata
                .get(key)
                .and_then(serde_yaml_ng::Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ClientError::Invalid(format!("Chart.yaml has no {key}")))
        };
        let (name, version) = (field("name")?, field("version")?);
        let url = self.url(&["helm", registry, "api", "charts"])?;
        self.send(self.request(Method::POST, url).body(bytes))
            .await?;
        Ok(Published {
            ecosystem: "helm",
            registry: registry.to_string(),
            files: vec![format!("{name}-{version}.tgz")],
            package: name,
            version,
            tags: Vec::new(),
        })
    }
}
