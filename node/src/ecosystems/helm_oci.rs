//! Helm charts as OCI artifacts (`helm push oci://`): the media types of the chart's config (its
//! `Chart.yaml` as JSON) and content (the chart archive) layers, and where a chart manifest names
//! them. The OCI front-end stores such manifests in HELM registries; the Helm front-end lists and
//! serves the charts they hold.

/// The config media type of a chart manifest.
pub const CHART_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// The media type of the layer holding the chart archive.
pub const CHART_CONTENT: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// The digests of a chart manifest's config and chart archive layer.
pub fn chart_digests(manifest: &[u8]) -> Option<(String, String)> {
    let manifest: serde_json::Value = serde_json::from_slice(manifest).ok()?;
    let config = manifest.get("config")?;
    if config.get("mediaType")?.as_str()? != CHART_CONFIG {
        return None;
    }
    let layer = manifest
        .get("layers")?
        .as_array()?
        .iter()
        .find(|layer| layer.get("mediaType").and_then(|t| t.as_str()) == Some(CHART_CONTENT))?;
    Some((
        config.get("digest")?.as_str()?.to_string(),
        layer.get("digest")?.as_str()?.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_manifest_names_its_config_and_archive() {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "config": { "mediaType": CHART_CONFIG, "digest": "sha256:c", "size": 1 },
            "layers": [{ "mediaType": CHART_CONTENT, "digest": "sha256:l", "size": 2 }],
        });
        let bytes = serde_json::to_vec(&manifest).expect("json");
        assert_eq!(
            chart_digests(&bytes),
            Some(("sha256:c".into(), "sha256:l".into()))
        );
        assert_eq!(chart_digests(b"{\"config\": {\"mediaType\": \"x\"}}"), None);
    }
}
