//! Remote and virtual OCI registries. A remote registry pulls manifests and blobs from its upstream
//! (Docker Hub style: the token handshake, `library/` for official images) the first time they are
//! asked for and keeps them; a tag's manifest is a metadata document, fetched again when its time to
//! live runs out and served stale when the upstream fails. A virtual registry resolves reads over its
//! members in order and merges their tags; pushes go to its publish target.

use arca_protocol::{BlobRef, Command, Registry, RegistryKind};
use futures::FutureExt;

use super::OciError;
use super::manifests;
use super::names::{Algorithm, Digest, RepositoryName, is_tag};
use crate::AppState;
use crate::frontend::read_small_blob;
use crate::meta::{StateRead, StoreError};
use crate::proxy::{self, Content, Expected, Fetched, ProxyError, Record};

/// A manifest found for a reference: its digest, media type and bytes, the registry that holds it,
/// and whether it is a stale copy.
pub struct FoundManifest {
    /// The registry that holds it (a virtual registry's member).
    pub holder: String,
    /// `sha256:...`
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub blob: BlobRef,
    /// True when the upstream failed and this tag resolution is an older copy.
    pub stale: bool,
}

impl From<ProxyError> for OciError {
    fn from(error: ProxyError) -> Self {
        match error {
            ProxyError::NotFound(_) => OciError::new(
                axum::http::StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                error.to_string(),
            ),
            ProxyError::Record(_) => OciError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                error.to_string(),
            ),
            _ => OciError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "UPSTREAM",
                error.to_string(),
            ),
        }
    }
}

/// The manifest media types a pull asks an upstream for.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

fn registry_of(state: &AppState, name: &str) -> Option<Registry> {
    state.meta.read(|view| view.registry(name)).ok().flatten()
}

/// The repository path on the upstream: Docker Hub keeps official images under `library/`.
fn upstream_repository(registry: &Registry, repository: &str) -> String {
    let hub = registry.upstream.as_ref().is_some_and(|upstream| {
        reqwest::Url::parse(&upstream.url).is_ok_and(|url| {
            matches!(
                url.host_str(),
                Some("registry-1.docker.io" | "docker.io" | "index.docker.io")
            )
        })
    });
    if hub && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_string()
    }
}

/// Where a push to `name` goes: the same repository of a local registry, of a virtual registry's
/// publish target; remote registries take no pushes.
pub fn push_target(state: &AppState, name: &RepositoryName) -> Result<RepositoryName, OciError> {
    let Some(registry) = registry_of(state, &name.registry) else {
        return Ok(name.clone());
    };
    let target = proxy::publish_target(state, &registry).ok_or_else(|| {
        OciError::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!(
                "registry {} is a {} registry: it takes no pushes",
                registry.name, registry.kind
            ),
        )
    })?;
    Ok(RepositoryName {
        registry: target.name,
        repository: name.repository.clone(),
    })
}

/// The registries a pull of `name` tries.
fn candidates(state: &AppState, name: &RepositoryName) -> Vec<Registry> {
    registry_of(state, &name.registry)
        .map(|registry| proxy::resolution_order(state, &registry))
        .unwrap_or_default()
}

/// Finds a manifest by tag or digest in `name`'s registry or, for remote and virtual registries, in
/// their members and upstreams.
pub async fn find_manifest(
    state: &AppState,
    name: &RepositoryName,
    reference: &str,
) -> Result<Option<FoundManifest>, OciError> {
    let mut failure = None;
    for registry in candidates(state, name) {
        let local = manifests::lookup(state, &registry.name, &name.repository, reference)?;
        let remote = registry.kind == RegistryKind::Remote;
        // A tag of a remote registry is a metadata document: refreshed when its time to live ends.
        if let Some((digest, media_type, blob)) = local
            && !(remote && is_tag(reference))
        {
            if remote {
                state.proxy.count_hit(&registry.name);
            }
            return Ok(Some(FoundManifest {
                holder: registry.name.clone(),
                digest,
                media_type,
                blob,
                stale: false,
            }));
        }
        if !remote {
            continue;
        }
        match remote_manifest(state, &registry, &name.repository, reference).await {
            Ok(found) => return Ok(Some(found)),
            Err(ProxyError::NotFound(_)) => {}
            Err(error) => failure = Some(error),
        }
    }
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(None),
    }
}

/// A manifest from a remote registry's upstream, recorded in the registry (with the tag, for a tag).
async fn remote_manifest(
    state: &AppState,
    registry: &Registry,
    repository: &str,
    reference: &str,
) -> Result<FoundManifest, ProxyError> {
    let url = format!(
        "v2/{}/manifests/{reference}",
        upstream_repository(registry, repository)
    );
    if is_tag(reference) {
        let key = format!("manifest/{repository}:{reference}");
        let document = state
            .proxy
            .document(state, registry, &key, &url, Some(MANIFEST_TYPES))
            .await?;
        let blob = document.cached.blob;
        let digest = record_manifest(
            state,
            registry,
            repository,
            Some(reference),
            &blob,
            &document.cached.content_type,
        )
        .await?;
        let media_type = manifests::lookup(state, &registry.name, repository, &digest)?
            .map(|(_, media_type, _)| media_type)
            .unwrap_or(document.cached.content_type);
        return Ok(FoundManifest {
            holder: registry.name.clone(),
            digest,
            media_type,
            blob,
            stale: document.stale,
        });
    }
    let wanted = Digest::parse(reference).map_err(|e| ProxyError::Upstream(e.message))?;
    let expected = Expected {
        accept: Some(MANIFEST_TYPES.to_string()),
        sha256: (wanted.algorithm == Algorithm::Sha256)
            .then(|| reference.strip_prefix("sha256:")?.parse().ok())
            .flatten(),
        ..Expected::default()
    };
    let record: Record = {
        let state = state.clone();
        let registry = registry.clone();
        let repository = repository.to_string();
        Box::new(move |fetched: Fetched| {
            async move {
                record_manifest(
                    &state,
                    &registry,
                    &repository,
                    None,
                    &fetched.blob,
                    &fetched.content_type,
                )
                .await?;
                Ok(fetched)
            }
            .boxed()
        })
    };
    state
        .proxy
        .fetch_and_record(state, registry, &url, expected, record)
        .await?;
    let (digest, media_type, blob) =
        manifests::lookup(state, &registry.name, repository, reference)?
            .ok_or_else(|| ProxyError::Record(format!("manifest {reference} was not recorded")))?;
    Ok(FoundManifest {
        holder: registry.name.clone(),
        digest,
        media_type,
        blob,
        stale: false,
    })
}

/// Checks fetched manifest bytes and records them (and the tag) unless already recorded so; returns
/// the manifest's digest.
async fn record_manifest(
    state: &AppState,
    registry: &Registry,
    repository: &str,
    tag: Option<&str>,
    blob: &BlobRef,
    content_type: &str,
) -> Result<String, ProxyError> {
    let bytes = read_small_blob(state, blob)
        .await
        .map_err(|e| ProxyError::Upstream(e.to_string()))?;
    let digest = Digest::of(Algorithm::Sha256, &bytes).to_string();
    let already = state.meta.read(|view| {
        Ok(view.has_version(&registry.name, repository, &digest)?
            && match tag {
                Some(tag) => view.tag(&registry.name, repository, tag)?.as_ref() == Some(&digest),
                None => true,
            })
    })?;
    if already {
        return Ok(digest);
    }
    let manifest = manifests::inspect(&bytes, Some(content_type))
        .map_err(|e| ProxyError::Upstream(format!("the upstream's manifest: {}", e.message)))?;
    state
        .meta
        .propose(Command::PutManifest {
            registry: registry.name.clone(),
            package: repository.to_string(),
            digest: digest.clone(),
            manifest,
            blob: blob.clone(),
            tag: tag.map(str::to_string),
            at: state.now_ms(),
        })
        .await?;
    Ok(digest)
}

/// Finds a blob of `name` in its registry or, for remote and virtual registries, in their members and
/// upstreams (a blob fetched from an upstream streams while it arrives, and is linked once verified
/// against its digest).
pub async fn find_blob(
    state: &AppState,
    name: &RepositoryName,
    digest: &str,
    linked: impl Fn(&str) -> Result<Option<BlobRef>, StoreError>,
) -> Result<Option<(Registry, Content)>, OciError> {
    let mut failure = None;
    for registry in candidates(state, name) {
        if let Some(blob) = linked(&registry.name)? {
            if registry.kind == RegistryKind::Remote {
                state.proxy.count_hit(&registry.name);
            }
            return Ok(Some((registry, Content::Stored(blob))));
        }
        if registry.kind != RegistryKind::Remote {
            continue;
        }
        let url = format!(
            "v2/{}/blobs/{digest}",
            upstream_repository(&registry, &name.repository)
        );
        let expected = Expected {
            sha256: digest
                .strip_prefix("sha256:")
                .and_then(|hex| hex.parse().ok()),
            ..Expected::default()
        };
        let record: Record = {
            let state = state.clone();
            let registry = registry.name.clone();
            let package = name.repository.clone();
            let digest = digest.to_string();
            Box::new(move |fetched: Fetched| {
                async move {
                    state
                        .meta
                        .propose(Command::LinkBlob {
                            registry,
                            package,
                            digest,
                            blob: fetched.blob.clone(),
                            at: state.now_ms(),
                        })
                        .await?;
                    Ok(fetched)
                }
                .boxed()
            })
        };
        let started = match state.proxy.start(state, &registry, &url, expected, record) {
            Ok(mut arriving) => arriving.started().await.map(|()| arriving),
            Err(error) => Err(error),
        };
        match started {
            Ok(arriving) => return Ok(Some((registry, Content::Arriving(arriving)))),
            Err(ProxyError::NotFound(_)) => {}
            Err(error) => failure = Some(error),
        }
    }
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(None),
    }
}

/// The tags of `name`: its own, or, for a virtual registry, the union over its members; a remote
/// registry adds the upstream's list (cached like any metadata document).
pub async fn tags(
    state: &AppState,
    name: &RepositoryName,
) -> Result<Option<Vec<String>>, OciError> {
    let mut found = false;
    let mut tags = std::collections::BTreeSet::new();
    for registry in candidates(state, name) {
        if let Some(local) = state.meta.read(|view| {
            Ok(match view.package(&registry.name, &name.repository)? {
                Some(_) => Some(view.tags(&registry.name, &name.repository)?.into_keys()),
                None => None,
            })
        })? {
            found = true;
            tags.extend(local);
        }
        if registry.kind != RegistryKind::Remote {
            continue;
        }
        let url = format!(
            "v2/{}/tags/list",
            upstream_repository(&registry, &name.repository)
        );
        let key = format!("tags/{}", name.repository);
        match state
            .proxy
            .document(state, &registry, &key, &url, None)
            .await
        {
            Ok(document) => {
                let bytes = read_small_blob(state, &document.cached.blob).await?;
                let list: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                if let Some(upstream) = list.get("tags").and_then(|t| t.as_array()) {
                    found = true;
                    tags.extend(
                        upstream
                            .iter()
                            .filter_map(|t| t.as_str().map(str::to_string)),
                    );
                }
            }
            Err(ProxyError::NotFound(_)) => {}
            Err(error) => tracing::warn!(registry = %registry.name, %error, "upstream tag list"),
        }
    }
    Ok(found.then(|| tags.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(url: &str) -> Registry {
        Registry {
            name: "hub".into(),
            package_type: arca_protocol::PackageType::Docker,
            description: String::new(),
            immutable: false,
            allow_anonymous_read: false,
            allow_redeploy: false,
            created_at: 0,
            metadata: Default::default(),
            replication: Default::default(),
            kind: RegistryKind::Remote,
            upstream: Some(arca_protocol::Upstream {
                url: url.into(),
                username: None,
                password: None,
                metadata_ttl_seconds: 300,
            }),
            members: Vec::new(),
            publish_to: None,
            audit_downloads: false,
            cleanup: Default::default(),
            firewall: Default::default(),
        }
    }

    #[test]
    fn official_docker_hub_images_live_under_library() {
        let hub = remote("https://registry-1.docker.io");
        assert_eq!(upstream_repository(&hub, "alpine"), "library/alpine");
        assert_eq!(upstream_repository(&hub, "grafana/loki"), "grafana/loki");
        let other = remote("https://ghcr.io");
        assert_eq!(upstream_repository(&other, "alpine"), "alpine");
    }
}
