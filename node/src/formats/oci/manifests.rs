//! Manifests, tags, referrers and the catalog of the OCI API.
//!
//! A manifest is stored like any file (its bytes in the chunk store) as the version named by its
//! digest in the package named by the repository; tags point at versions. A manifest is accepted only
//! when every blob and child manifest it references is already in the repository
//! (`MANIFEST_BLOB_UNKNOWN` otherwise); its `subject` feeds the referrers API.

use std::collections::BTreeMap;

use arca_protocol::{Command, ManifestInfo, PackageType, Role};
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::auth::{Action, OciCaller};
use super::names::{Algorithm, Digest, RepositoryName, is_tag};
use super::remote::{self, FoundManifest};
use super::{OciError, query_param};
use crate::AppState;
use crate::blob::BlobWriter;
use crate::frontend::read_small_blob;
use crate::meta::MANIFEST_FILE;
use crate::meta::{StateRead, StoreError};
use crate::usage::Download;

/// The largest manifest accepted.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A descriptor inside a manifest.
#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    /// An int64 that must not be negative (kept as JSON to tell what was sent).
    size: Option<serde_json::Number>,
    #[serde(default)]
    urls: Vec<String>,
}

impl Descriptor {
    /// The descriptor's digest and size as the spec has them: a valid digest, and a size that is
    /// a non-negative int64.
    fn check(&self) -> Result<(), OciError> {
        Digest::parse(&self.digest)?;
        match self.size.as_ref().and_then(serde_json::Number::as_i64) {
            Some(size) if size >= 0 => Ok(()),
            _ => Err(OciError::manifest_invalid(format!(
                "descriptor {}: size must be a non-negative 64-bit integer, got {}",
                self.digest,
                self.size
                    .as_ref()
                    .map_or("none".to_string(), ToString::to_string)
            ))),
        }
    }
}

/// The parts of a manifest or index this registry looks at.
#[derive(Debug, Deserialize)]
struct ManifestDocument {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    subject: Option<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Checks a manifest's bytes and extracts what the registry keeps of it.
pub fn inspect(bytes: &[u8], content_type: Option<&str>) -> Result<ManifestInfo, OciError> {
    let document: ManifestDocument = serde_json::from_slice(bytes)
        .map_err(|e| OciError::manifest_invalid(format!("malformed manifest JSON: {e}")))?;
    if document.schema_version != Some(2) {
        return Err(OciError::manifest_invalid("schemaVersion must be 2"));
    }
    let content_type = content_type
        .map(|v| v.split(';').next().unwrap_or(v).trim())
        .filter(|v| !v.is_empty() && *v != "application/json" && *v != "application/octet-stream");
    let media_type = match (content_type, document.media_type.as_deref()) {
        (Some(header), Some(body)) if header != body => {
            return Err(OciError::manifest_invalid(format!(
                "Content-Type {header} does not match the manifest's mediaType {body}"
            )));
        }
        (Some(media_type), _) | (None, Some(media_type)) => media_type.to_string(),
        (None, None) if document.config.is_some() => OCI_MANIFEST.to_string(),
        (None, None) => OCI_INDEX.to_string(),
    };
    let descriptors_valid = |list: &[Descriptor]| list.iter().try_for_each(Descriptor::check);
    let is_index = match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        OCI_INDEX | DOCKER_MANIFEST_LIST => true,
        other => {
            return Err(OciError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "MANIFEST_INVALID",
                format!("unsupported manifest media type {other}"),
            ));
        }
    };
    descriptors_valid(&document.layers)?;
    descriptors_valid(&document.manifests)?;
    if let Some(subject) = &document.subject {
        subject.check()?;
    }
    let (blobs, manifests) = if is_index {
        let manifests = document
            .manifests
            .iter()
            .map(|d| d.digest.clone())
            .collect();
        (Vec::new(), manifests)
    } else {
        let config = document
            .config
            .as_ref()
            .ok_or_else(|| OciError::manifest_invalid("an image manifest needs a config"))?;
        config.check()?;
        // Foreign layers (with `urls`) live elsewhere and are not required here.
        let blobs = std::iter::once(config)
            .chain(document.layers.iter().filter(|d| d.urls.is_empty()))
            .map(|d| d.digest.clone())
            .collect();
        (blobs, Vec::new())
    };
    let artifact_type = document.artifact_type.clone().or_else(|| {
        document
            .config
            .as_ref()
            .map(|c| c.media_type.clone())
            .filter(|_| !is_index)
    });
    Ok(ManifestInfo {
        media_type,
        artifact_type,
        subject: document.subject.map(|s| s.digest),
        blobs,
        manifests,
        annotations: document.annotations,
    })
}

fn with_headers(mut response: Response, headers: &[(&'static str, String)]) -> Response {
    for (key, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*key, value);
        }
    }
    response
}

/// `PUT /v2/<name>/manifests/<reference>`
pub async fn put(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    name: &RepositoryName,
    reference: &str,
    body: Body,
) -> Result<Response, OciError> {
    let registry = caller.authorize(state, headers, name, Action::Push)?;
    let (tag, algorithm, expected) = if is_tag(reference) {
        (Some(reference.to_string()), Algorithm::Sha256, None)
    } else {
        let digest = Digest::parse(reference)?;
        (None, digest.algorithm, Some(digest))
    };
    let bytes = to_bytes(body, MAX_MANIFEST_BYTES).await.map_err(|_| {
        OciError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            format!("a manifest may be at most {MAX_MANIFEST_BYTES} bytes"),
        )
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let manifest = inspect(&bytes, content_type)?;
    if registry.package_type == PackageType::Helm
        && manifest.artifact_type.as_deref() != Some(crate::ecosystems::helm_oci::CHART_CONFIG)
    {
        return Err(OciError::manifest_invalid(format!(
            "registry {} is a HELM registry: it holds Helm charts (config {}) only",
            registry.name,
            crate::ecosystems::helm_oci::CHART_CONFIG
        )));
    }
    let digest = Digest::of(algorithm, &bytes);
    if let Some(expected) = expected
        && expected != digest
    {
        return Err(OciError::digest_invalid(format!(
            "the manifest's digest is {digest}, not {expected}"
        )));
    }
    let digest = digest.to_string();
    let subject = manifest.subject.clone();
    let mut writer = BlobWriter::new(state.chunks.clone());
    writer.write(&bytes).await?;
    let blob = writer.finish().await?;
    state
        .meta
        .propose(Command::PutManifest {
            registry: name.registry.clone(),
            package: name.repository.clone(),
            digest: digest.clone(),
            manifest,
            blob,
            tag,
            at: state.now_ms(),
        })
        .await?;
    let mut answer = vec![
        ("location", format!("/v2/{name}/manifests/{digest}")),
        ("docker-content-digest", digest.clone()),
    ];
    if let Some(subject) = subject {
        answer.push(("oci-subject", subject));
    }
    Ok(with_headers(StatusCode::CREATED.into_response(), &answer))
}

/// True when the `Accept` headers allow `media_type` (no header accepts anything).
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let mut values = headers.get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return true;
    }
    values
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or(v).trim())
        .any(|v| v == media_type || v == "*/*" || v == "application/*")
}

/// `GET`/`HEAD /v2/<name>/manifests/<reference>`
pub async fn fetch(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    name: &RepositoryName,
    reference: &str,
    head: bool,
) -> Result<Response, OciError> {
    caller.authorize(state, headers, name, Action::Pull)?;
    if !is_tag(reference) {
        Digest::parse(reference)?;
    }
    let found = remote::find_manifest(state, name, reference)
        .await?
        .ok_or_else(|| OciError::manifest_unknown(reference))?;
    let FoundManifest {
        holder,
        digest,
        media_type,
        blob,
        stale,
    } = found;
    let registry = state.meta.read(|view| view.registry(&name.registry))?;
    if let Some(registry) = registry {
        crate::policy::firewall::check_read(state, &registry, &name.repository, &digest)?;
    }
    if !accepts(headers, &media_type) {
        return Err(OciError::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest {reference} is a {media_type}, which the request does not accept"),
        ));
    }
    let etag = format!("\"{digest}\"");
    let mut answer = vec![
        ("content-type", media_type),
        ("docker-content-digest", digest.clone()),
        ("etag", etag),
        ("content-length", blob.size.to_string()),
    ];
    if stale {
        answer.push(("warning", "110 - \"Response is Stale\"".to_string()));
    }
    if head {
        return Ok(with_headers(StatusCode::OK.into_response(), &answer));
    }
    let bytes = read_small_blob(state, &blob).await?;
    // A pull is counted once, by its manifest (layers count as bytes served; see `blobs::fetch`).
    let download = Download::of(&holder, &name.repository, &digest, &caller.caller);
    let body = state
        .usage
        .sending(&download, Some(blob.size))
        .count(futures::stream::iter([Ok::<_, std::convert::Infallible>(
            bytes::Bytes::from(bytes),
        )]));
    Ok(with_headers(
        Body::from_stream(body).into_response(),
        &answer,
    ))
}

/// The manifest `reference` (a tag or a digest) of a repository as recorded: its digest, media type
/// and bytes.
pub fn lookup(
    state: &AppState,
    registry: &str,
    repository: &str,
    reference: &str,
) -> Result<Option<(String, String, arca_protocol::BlobRef)>, StoreError> {
    let view = state.meta.view()?;
    let digest = match view.tag(registry, repository, reference)? {
        Some(digest) => digest,
        None => reference.to_string(),
    };
    let Some(version) = view.version(registry, repository, &digest)? else {
        return Ok(None);
    };
    let (Some(file), Some(manifest)) = (version.files.get(MANIFEST_FILE), &version.manifest) else {
        return Ok(None);
    };
    Ok(view
        .blob(&file.sha256)?
        .map(|blob| (digest, manifest.media_type.clone(), blob)))
}

/// `DELETE /v2/<name>/manifests/<reference>`: a digest deletes the manifest and its tags, a tag only
/// the tag.
pub async fn delete(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    name: &RepositoryName,
    reference: &str,
) -> Result<Response, OciError> {
    caller.authorize(state, headers, name, Action::Delete)?;
    let command = if is_tag(reference) {
        Command::DeleteTag {
            registry: name.registry.clone(),
            package: name.repository.clone(),
            tag: reference.to_string(),
        }
    } else {
        Command::DeleteVersion {
            registry: name.registry.clone(),
            package: name.repository.clone(),
            version: Digest::parse(reference)?.to_string(),
        }
    };
    state
        .meta
        .propose(command)
        .await
        .map_err(|error| match error {
            crate::meta::ProposeError::Refused(arca_protocol::CommandError::NotFound(_)) => {
                OciError::manifest_unknown(reference)
            }
            other => other.into(),
        })?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Applies `n` / `last` paging to sorted `items` and adds a `Link` header for the next page.
fn paged(
    items: Vec<String>,
    query: &str,
    path: &str,
) -> Result<(Vec<String>, Option<String>), OciError> {
    let last = query_param(query, "last");
    let limit = match query_param(query, "n") {
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                "n must be a number",
            )
        })?),
        None => None,
    };
    let mut rest: Vec<String> = items
        .into_iter()
        .filter(|item| last.as_ref().is_none_or(|last| item > last))
        .collect();
    let mut link = None;
    if let Some(limit) = limit
        && rest.len() > limit
    {
        rest.truncate(limit);
        if let Some(final_item) = rest.last() {
            let last = form_urlencoded::byte_serialize(final_item.as_bytes()).collect::<String>();
            link = Some(format!("<{path}?n={limit}&last={last}>; rel=\"next\""));
        }
    }
    Ok((rest, link))
}

/// `GET /v2/<name>/tags/list`
pub async fn tags(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    name: &RepositoryName,
    query: &str,
) -> Result<Response, OciError> {
    caller.authorize(state, headers, name, Action::Pull)?;
    let tags = remote::tags(state, name)
        .await?
        .ok_or_else(|| OciError::name_unknown(&name.to_string()))?;
    let (tags, link) = paged(tags, query, &format!("/v2/{name}/tags/list"))?;
    let response = axum::Json(json!({"name": name.to_string(), "tags": tags})).into_response();
    Ok(with_headers(
        response,
        &link.map(|l| ("link", l)).into_iter().collect::<Vec<_>>(),
    ))
}

/// `GET /v2/<name>/referrers/<digest>[?artifactType=]`: an image index of the manifests whose
/// `subject` is `digest`.
pub async fn referrers(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    name: &RepositoryName,
    digest: &str,
    query: &str,
) -> Result<Response, OciError> {
    caller.authorize(state, headers, name, Action::Pull)?;
    let digest = Digest::parse(digest)?.to_string();
    let filter = query_param(query, "artifactType");
    let manifests = state
        .meta
        .read(|view| view.versions(&name.registry, &name.repository))?
        .iter()
        .filter_map(|version| {
            let manifest = version.manifest.as_ref()?;
            if manifest.subject.as_deref() != Some(digest.as_str()) {
                return None;
            }
            if filter.is_some() && manifest.artifact_type != filter {
                return None;
            }
            let size = version.files.get(MANIFEST_FILE)?.size;
            let mut descriptor = json!({
                "mediaType": manifest.media_type,
                "digest": version.name,
                "size": size,
            });
            if let Some(artifact_type) = &manifest.artifact_type {
                descriptor["artifactType"] = json!(artifact_type);
            }
            if !manifest.annotations.is_empty() {
                descriptor["annotations"] = json!(manifest.annotations);
            }
            Some(descriptor)
        })
        .collect::<Vec<_>>();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let mut answer = vec![("content-type", OCI_INDEX.to_string())];
    if filter.is_some() {
        answer.push(("oci-filters-applied", "artifactType".to_string()));
    }
    let body = serde_json::to_vec(&index).map_err(OciError::internal)?;
    Ok(with_headers(Body::from(body).into_response(), &answer))
}

/// `GET /v2/_catalog`: every repository of every OCI registry the caller may read.
pub async fn catalog(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    query: &str,
) -> Result<Response, OciError> {
    caller.require_login(state, headers)?;
    let last = query_param(query, "last");
    let limit = match query_param(query, "n") {
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                "n must be a number",
            )
        })?),
        None => None,
    };
    // Repositories by registry, then name; `last` names where the previous page ended.
    let after = last
        .as_deref()
        .map(|last| last.split_once('/').unwrap_or((last, "")));
    let wanted = limit.map_or(usize::MAX, |n| n.saturating_add(1));
    let view = state.meta.view()?;
    let mut repositories = Vec::new();
    for record in view.registries()? {
        let registry = &record.registry;
        if !super::auth::serves_oci(registry.package_type)
            || !caller.caller.may(registry, Role::Read)
        {
            continue;
        }
        let start = match after {
            Some((name, _)) if registry.name.as_str() < name => continue,
            Some((name, package)) if registry.name == name => Some(package),
            _ => None,
        };
        let mut cursor = start.map(str::to_string);
        while repositories.len() < wanted {
            let page = view.packages(&registry.name, cursor.as_deref(), 1000)?;
            let Some(last_package) = page.last() else {
                break;
            };
            cursor = Some(last_package.name.clone());
            let full = page.len() < 1000;
            repositories.extend(
                page.into_iter()
                    .filter(|p| p.version_count > 0)
                    .map(|p| format!("{}/{}", registry.name, p.name)),
            );
            if full {
                break;
            }
        }
        if repositories.len() >= wanted {
            break;
        }
    }
    let mut link = None;
    if let Some(limit) = limit
        && repositories.len() > limit
    {
        repositories.truncate(limit);
        if let Some(final_item) = repositories.last() {
            let last = form_urlencoded::byte_serialize(final_item.as_bytes()).collect::<String>();
            link = Some(format!(
                "</v2/_catalog?n={limit}&last={last}>; rel=\"next\""
            ));
        }
    }
    let response = axum::Json(json!({"repositories": repositories})).into_response();
    Ok(with_headers(
        response,
        &link.map(|l| ("link", l)).into_iter().collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    const LAYER: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    #[test]
    fn descriptor_sizes_must_be_non_negative_int64s() {
        let with_layer_size = |size: serde_json::Value| {
            json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG, "size": 2},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": LAYER, "size": size}]
            })
            .to_string()
        };
        assert!(inspect(with_layer_size(json!(3)).as_bytes(), None).is_ok());
        for bad in [
            json!(-1),
            serde_json::from_str::<serde_json::Value>("100000000000000000000000").expect("json"),
            json!(1.5),
            json!("3"),
            serde_json::Value::Null,
        ] {
            let refused = inspect(with_layer_size(bad.clone()).as_bytes(), None);
            assert!(
                refused.is_err_and(|e| e.code == "MANIFEST_INVALID"),
                "size {bad} accepted"
            );
        }
    }

    #[test]
    fn image_manifest_references_config_and_layers_but_not_foreign_layers() {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG, "size": 2},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": LAYER, "size": 3},
                {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": LAYER, "size": 3, "urls": ["https://example.invalid/layer"]}
            ]
        });
        let info = inspect(manifest.to_string().as_bytes(), Some(OCI_MANIFEST)).expect("valid");
        assert_eq!(info.blobs, vec![CONFIG.to_string(), LAYER.to_string()]);
        assert_eq!(
            info.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json"),
            "the referrers API gives an image without artifactType its config's media type"
        );
    }

    #[test]
    fn artifact_type_and_subject() {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": CONFIG, "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": LAYER, "size": 10}
        });
        let info = inspect(manifest.to_string().as_bytes(), None).expect("valid");
        assert_eq!(
            info.artifact_type.as_deref(),
            Some("application/vnd.example.sbom")
        );
        assert_eq!(info.subject.as_deref(), Some(LAYER));
    }

    #[test]
    fn index_references_children_and_bad_manifests_are_refused() {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": LAYER, "size": 1}]
        });
        let info = inspect(index.to_string().as_bytes(), Some(OCI_INDEX)).expect("valid");
        assert_eq!(info.manifests, vec![LAYER.to_string()]);
        assert!(inspect(b"{", None).is_err());
        assert!(inspect(br#"{"schemaVersion": 1}"#, None).is_err());
        assert!(
            inspect(index.to_string().as_bytes(), Some(OCI_MANIFEST)).is_err(),
            "type mismatch"
        );
        let bad_digest = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"digest": "sha256:xyz"}]});
        assert!(inspect(bad_digest.to_string().as_bytes(), None).is_err());
    }

    #[test]
    fn paging_with_link() {
        let items: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let (page, link) = paged(items.clone(), "n=2", "/v2/x/tags/list").expect("page");
        assert_eq!(page, ["a", "b"]);
        assert_eq!(
            link.as_deref(),
            Some("</v2/x/tags/list?n=2&last=b>; rel=\"next\"")
        );
        let (page, link) = paged(items.clone(), "n=2&last=b", "/v2/x/tags/list").expect("page");
        assert_eq!(page, ["c", "d"]);
        assert!(link.is_none());
        assert!(paged(items, "n=x", "/").is_err());
    }
}
