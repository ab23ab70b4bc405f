//! Publishing to npm registries, `/npm/{registry}/`, the way `npm publish` does: the tarball `npm pack`
//! made is read for its `package/package.json`, and one JSON document carrying that manifest (with
//! `dist` digests), the dist-tag and the base64 tarball is `PUT` to `/npm/{registry}/{name}`.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Map, Value, json};
use sha2::Digest;

use crate::archive::tar_gz_member;
use crate::client::Client;
use crate::error::ClientError;
use crate::published::Published;

/// Where `npm pack` puts the manifest inside a tarball.
const MANIFEST_PATH: &str = "package/package.json";

/// The publish document of `tarball` (the bytes of a `.tgz`) tagged `tag`, and the package name and
/// version it publishes. `registry_url` is the registry's URL with a trailing slash, for `dist.tarball`.
fn publish_document(
    tarball: &[u8],
    tag: &str,
    registry_url: &str,
) -> Result<(String, String, Value), ClientError> {
    let manifest = tar_gz_member(tarball, "npm tarball", |path| path == MANIFEST_PATH)?
        .ok_or_else(|| ClientError::Invalid(format!("the tarball has no {MANIFEST_PATH}")))?;
    let Value::Object(mut manifest) = serde_json::from_slice::<Value>(&manifest)
        .map_err(|err| ClientError::Invalid(format!("{MANIFEST_PATH} is not JSON: {err}")))?
    else {
        return Err(ClientError::Invalid(format!(
            "{MANIFEST_PATH} is not a JSON object"
        )));
    };
    let field = |name: &str| {
        manifest
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
            .ok_or_else(|| ClientError::Invalid(format!("{MANIFEST_PATH} has no {name}")))
    };
    let name = field("name")?;
    let version = field("version")?;
    let description = manifest.get("description").cloned();
    let basename = name.rsplit('/').next().unwrap_or(&name);
    let tarball_url = format!("{registry_url}{name}/-/{basename}-{version}.tgz");
    let integrity = format!("sha512-{}", STANDARD.encode(sha2::Sha512::digest(tarball)));
    let shasum = hex::encode(sha1::Sha1::digest(tarball));
    manifest.insert("_id".into(), json!(format!("{name}@{version}")));
    manifest.insert(
        "dist".into(),
        json!({ "integrity": integrity, "shasum": shasum, "tarball": tarball_url }),
    );
    let mut document = Map::new();
    document.insert("_id".into(), json!(name));
    document.insert("name".into(), json!(name));
    if let Some(description) = description {
        document.insert("description".into(), description);
    }
    document.insert("dist-tags".into(), json!({ tag: version }));
    document.insert("versions".into(), json!({ version.clone(): manifest }));
    document.insert("access".into(), Value::Null);
    document.insert(
        "_attachments".into(),
        json!({
            format!("{name}-{version}.tgz"): {
                "content_type": "application/octet-stream",
                "data": STANDARD.encode(tarball),
                "length": tarball.len(),
            }
        }),
    );
    Ok((name, version, Value::Object(document)))
}

impl Client {
    /// Publishes the `npm pack` tarball at `tarball` to the npm registry `registry`, tagging the
    /// version `tag` (npm's default is `latest`).
    pub async fn push_npm(
        &self,
        registry: &str,
        tarball: &Path,
        tag: &str,
    ) -> Result<Published, ClientError> {
        let bytes = tokio::fs::read(tarball).await?;
        let registry_url = self.url(&["npm", registry, ""])?;
        let (name, version, document) = publish_document(&bytes, tag, registry_url.as_str())?;
        let url = self.url(&["npm", registry, &name])?;
        self.send(self.request(Method::PUT, url).json(&document))
            .await?;
        let basename = name.rsplit('/').next().unwrap_or(&name);
        Ok(Published {
            ecosystem: "npm",
            registry: registry.to_string(),
            files: vec![format!("{basename}-{version}.tgz")],
            package: name,
            version,
            tags: vec![tag.to_string()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzip-compressed tar holding only `package/package.json` with `manifest`.
    fn tarball(manifest: &str) -> Vec<u8> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(encoder);
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, MANIFEST_PATH, manifest.as_bytes())
            .expect("append");
        builder
            .into_inner()
            .and_then(|encoder| encoder.finish())
            .expect("compress")
    }

    #[test]
    fn documents_look_like_npm_publish() {
        let bytes = tarball(r#"{"name":"@org/lib","version":"1.2.3","description":"d"}"#);
        let (name, version, document) =
            publish_document(&bytes, "beta", "http://h:1/npm/js/").expect("document");
        assert_eq!((name.as_str(), version.as_str()), ("@org/lib", "1.2.3"));
        assert_eq!(document["dist-tags"], json!({ "beta": "1.2.3" }));
        let dist = &document["versions"]["1.2.3"]["dist"];
        assert_eq!(
            dist["tarball"],
            "http://h:1/npm/js/@org/lib/-/lib-1.2.3.tgz"
        );
        assert_eq!(dist["shasum"], hex::encode(sha1::Sha1::digest(&bytes)));
        assert!(
            dist["integrity"]
                .as_str()
                .is_some_and(|i| i.starts_with("sha512-"))
        );
        let attachment = &document["_attachments"]["@org/lib-1.2.3.tgz"];
        assert_eq!(attachment["length"], bytes.len());
        assert_eq!(attachment["data"], STANDARD.encode(&bytes));
    }

    #[test]
    fn manifests_need_a_name_and_version() {
        let bytes = tarball(r#"{"name":"lib"}"#);
        assert!(publish_document(&bytes, "latest", "http://h/").is_err());
    }
}
