//! Remote (caching proxy) and virtual npm registries: where the [`PackageContents`] a read renders comes
//! from, and where a tarball's bytes come from.
//!
//! A remote registry's packuments are its upstream's, cached as documents (`packument/<name>`) for the
//! registry's time to live and served stale when the upstream fails (see [`crate::proxy`]). A cached
//! packument is turned into a [`PackageContents`] shaped like the ones local publishes store — each version
//! with its manifest and one tarball named `<bare name>-<version>.tgz` — so it is rendered by the same
//! [`packument`](super::packument) functions, with tarball URLs pointing back at this registry. Where
//! each tarball lives upstream (its URL, `dist.integrity` and `dist.shasum`) stays in the cached
//! document, which a tarball request reads again. Tarballs are fetched once, verified, and recorded as
//! the version's file like a publish records it, with `origin` and `cached_at` attributes.
//!
//! A virtual registry merges its members' packages in member order: a version an earlier member has
//! wins, and each dist-tag comes from the first member that has it. Its tarballs are looked up in the
//! members in the same order.

use crate::meta::{PackageContents, StateRead};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arca_protocol::{BlobRef, FileEntry, Registry, RegistryKind, Sha256, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::NpmError;
use super::names::PackageName;
use super::packument::{DEPRECATED, MANIFEST};
use super::publish::{stored_version_of_file, version_of_file};
use crate::AppState;
use crate::frontend::documents::ParsedKey;
use crate::frontend::read_small_blob;
use crate::policy::firewall;
use crate::proxy::{self, Expected, ProxyError};

/// A package as a read of some registry sees it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The first member's package: stored (local), or from the upstream's packument (remote,
    /// shared with the parsed packument the node keeps).
    first: Arc<PackageContents>,
    /// The later members' packages (a virtual registry's), merged into the first when asked for.
    rest: Vec<Arc<PackageContents>>,
    merged: OnceLock<Arc<PackageContents>>,
    /// True when an upstream failed and an older copy of its packument went into this.
    pub stale: bool,
    /// What the package was made of: each member that had it, with the generation of its record
    /// (local) or the digest of its upstream's packument (remote). A document rendered from one
    /// resolution is the same for another with the same sources.
    pub sources: String,
}

impl Resolved {
    /// The package: the first member's, with what later members add merged in (once, and only
    /// when asked for: a packument already rendered from the same sources needs no merge).
    pub fn package(&self) -> &PackageContents {
        self.merged
            .get_or_init(|| merge(self.first.clone(), self.rest.iter().cloned()))
    }
}

/// Where a version's tarball is upstream, and what it must hash to.
#[derive(Debug, Clone)]
pub struct Location {
    /// The upstream tarball URL (`dist.tarball`).
    pub url: String,
    /// The digests `dist.integrity` (sha512) and `dist.shasum` (sha1) promise.
    pub expected: Expected,
}

/// An upstream packument: the package it describes and where each version's tarball lives.
#[derive(Debug, Clone)]
pub struct UpstreamPackument {
    /// The package, with each version's tarball under this registry's file name.
    pub package: Arc<PackageContents>,
    /// Upstream tarball location by version.
    pub locations: BTreeMap<String, Location>,
}

/// The key a remote registry caches `name`'s packument under.
fn document_key(name: &PackageName) -> String {
    format!("packument/{name}")
}

/// `name` as a path under the upstream registry: a scoped name's `/` is `%2f`.
fn upstream_path(name: &PackageName) -> String {
    name.as_str().replacen('/', "%2f", 1)
}

/// Unix milliseconds of an RFC 3339 time.
fn unix_ms(time: &str) -> Option<u64> {
    let time = humantime::parse_rfc3339_weak(time).ok()?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

/// The digests a version's `dist` promises: the sha512 of `integrity` and the sha1 of `shasum`.
fn expected_digests(dist: &Map<String, Value>) -> Expected {
    let sha512 = dist
        .get("integrity")
        .and_then(Value::as_str)
        .into_iter()
        .flat_map(str::split_whitespace)
        .filter_map(|entry| entry.strip_prefix("sha512-"))
        .find_map(|digest| STANDARD.decode(digest.split('?').next()?).ok())
        .filter(|digest| digest.len() == 64);
    let sha1 = dist
        .get("shasum")
        .and_then(Value::as_str)
        .and_then(|hex| hex::decode(hex).ok())
        .filter(|digest| digest.len() == 20);
    Expected {
        sha512,
        sha1,
        ..Expected::default()
    }
}

/// An object's members, each left as its JSON text.
type RawMembers<'a> = BTreeMap<String, &'a RawValue>;

/// `raw` read as `T`, or `None` when it is not one (an upstream's odd field is left out, not an
/// error).
fn read_as<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Option<T> {
    serde_json::from_str(raw?.get()).ok()
}

/// Reads an upstream packument (`{"name", "dist-tags", "versions", "time", ...}`). Versions without a
/// tarball are left out: they could not be installed from here. Fails only when the document is not
/// a JSON object.
pub fn from_upstream(
    name: &PackageName,
    document: &[u8],
) -> Result<UpstreamPackument, serde_json::Error> {
    // Each top-level field is left as its text: the document is scanned once, and each version's
    // manifest is kept as the text the upstream sent.
    let document: RawMembers = serde_json::from_slice(document)?;
    let field = |name: &str| document.get(name).copied();
    let times: BTreeMap<String, Value> = read_as(field("time")).unwrap_or_default();
    let time_of = |key: &str| unix_ms(times.get(key)?.as_str()?);
    let mut versions = BTreeMap::new();
    let mut locations = BTreeMap::new();
    let listed: RawMembers = read_as(field("versions")).unwrap_or_default();
    for (version, manifest) in listed {
        let Some(fields) = read_as::<RawMembers>(Some(manifest)) else {
            continue;
        };
        let Some(dist) = read_as::<Map<String, Value>>(fields.get("dist").copied()) else {
            continue;
        };
        let Some(url) = dist.get("tarball").and_then(Value::as_str) else {
            continue;
        };
        locations.insert(
            version.clone(),
            Location {
                url: url.to_string(),
                expected: expected_digests(&dist),
            },
        );
        let mut attributes = BTreeMap::new();
        if let Some(message) = read_as::<String>(fields.get("deprecated").copied())
            .filter(|message| !message.is_empty())
        {
            attributes.insert(DEPRECATED.to_string(), message);
        }
        // Kept as the upstream wrote it: its `deprecated` and `dist.tarball` are replaced when
        // it is rendered.
        attributes.insert(MANIFEST.to_string(), manifest.get().to_string());
        let created_at = time_of(&version).unwrap_or_default();
        let file = FileEntry {
            sha256: Sha256([0; 32]),
            size: 0,
            created_at,
        };
        versions.insert(
            version.clone(),
            Version {
                name: version.clone(),
                created_at,
                updated_at: created_at,
                files: BTreeMap::from([(name.tarball(&version), file)]),
                metadata: Default::default(),
                manifest: None,
                attributes,
                firewall: None,
                size: 0,
            },
        );
    }
    let listed_tags: BTreeMap<String, Value> = read_as(field("dist-tags")).unwrap_or_default();
    let tags = listed_tags
        .into_iter()
        .filter_map(|(tag, target)| {
            let target = target.as_str()?;
            versions
                .contains_key(target)
                .then(|| (tag, target.to_string()))
        })
        .collect();
    let newest = versions
        .values()
        .map(|v| v.created_at)
        .max()
        .unwrap_or_default();
    let oldest = versions
        .values()
        .map(|v| v.created_at)
        .min()
        .unwrap_or_default();
    let package = PackageContents {
        name: name.to_string(),
        created_at: time_of("created").unwrap_or(oldest),
        updated_at: time_of("modified").unwrap_or(newest),
        versions,
        metadata: Default::default(),
        tags,
    };
    Ok(UpstreamPackument {
        package: Arc::new(package),
        locations,
    })
}

/// A cached packument document, parsed (or as the node's documents keep it parsed already).
async fn parse_cached(
    state: &AppState,
    name: &PackageName,
    blob: &BlobRef,
) -> Result<Arc<UpstreamPackument>, ProxyError> {
    let key = ParsedKey {
        what: format!("npm packument {name}"),
        sha256: blob.sha256,
    };
    let source_bytes = usize::try_from(blob.size).unwrap_or(usize::MAX);
    state
        .documents
        .parsed(key, source_bytes, async {
            let bytes = read_small_blob(state, blob).await.map_err(|e| {
                ProxyError::Record(format!("reading the cached packument of {name}: {e}"))
            })?;
            from_upstream(name, &bytes).map_err(|e| {
                ProxyError::Upstream(format!("the packument of {name} is not a JSON object: {e}"))
            })
        })
        .await
}

/// The packument of `name` in the remote registry `registry`, as [`proxy::Proxy::document`] gives
/// it (fresh, fetched again, or stale when the upstream fails); `None` when the upstream has no such
/// package.
async fn upstream_packument(
    state: &AppState,
    registry: &Registry,
    name: &PackageName,
) -> Result<Option<(Arc<UpstreamPackument>, bool, Sha256)>, ProxyError> {
    let document = state
        .proxy
        .document(
            state,
            registry,
            &document_key(name),
            &upstream_path(name),
            Some("application/json"),
        )
        .await;
    match document {
        Ok(document) => {
            let blob = &document.cached.blob;
            let packument = parse_cached(state, name, blob).await?;
            Ok(Some((packument, document.stale, blob.sha256)))
        }
        Err(ProxyError::NotFound(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The packument of `name` in the remote registry `registry` that names `file`: the cached copy
/// whatever its age when it does (a tarball's location does not change), else the one
/// [`upstream_packument`] gives.
async fn packument_naming(
    state: &AppState,
    registry: &Registry,
    name: &PackageName,
    file: &str,
) -> Result<Option<Arc<UpstreamPackument>>, ProxyError> {
    let cached = state
        .meta
        .read(|view| view.cached(&registry.name, &document_key(name)))
        .map_err(|error| ProxyError::Record(error.to_string()))?
        .map(|document| document.blob);
    if let Some(blob) = cached
        && let Ok(packument) = parse_cached(state, name, &blob).await
        && version_of_file(&packument.package, file).is_some()
    {
        return Ok(Some(packument));
    }
    Ok(upstream_packument(state, registry, name)
        .await?
        .map(|(packument, _, _)| packument))
}

/// Merges packages in order: a version an earlier one has wins, each dist-tag comes from the first
/// one that has it. A single package comes back as it is (not copied).
pub fn merge(
    first: Arc<PackageContents>,
    rest: impl IntoIterator<Item = Arc<PackageContents>>,
) -> Arc<PackageContents> {
    let mut rest = rest.into_iter().peekable();
    if rest.peek().is_none() {
        return first;
    }
    let mut merged = Arc::unwrap_or_clone(first);
    for package in rest {
        for (name, version) in &package.versions {
            merged
                .versions
                .entry(name.clone())
                .or_insert_with(|| version.clone());
        }
        for (tag, target) in &package.tags {
            merged
                .tags
                .entry(tag.clone())
                .or_insert_with(|| target.clone());
        }
        merged.created_at = merged.created_at.min(package.created_at);
        merged.updated_at = merged.updated_at.max(package.updated_at);
    }
    Arc::new(merged)
}

/// The package `name` as a read of `registry` sees it; `None` when no registry it reads has it.
///
/// A virtual registry whose remote member fails still answers with what its other members have (the
/// failure is logged); when none of them has the package it is not found there (a member that is
/// down does not turn "not found" into an error: `npm publish` looks the package up first). A remote
/// registry read directly fails with its upstream.
pub async fn resolve(
    state: &AppState,
    registry: &Registry,
    name: &PackageName,
) -> Result<Option<Resolved>, NpmError> {
    let mut packages = Vec::new();
    let mut stale = false;
    let mut failure = None;
    let mut sources = Vec::new();
    for member in proxy::resolution_order(state, registry) {
        match member.kind {
            RegistryKind::Local => {
                let stored = state.meta.read(|view| {
                    let Some(record) = view.package(&member.name, name.as_str())? else {
                        return Ok(None);
                    };
                    Ok(view
                        .package_contents(&member.name, name.as_str())?
                        .map(|contents| (record.generation, contents)))
                })?;
                if let Some((generation, contents)) = stored {
                    sources.push(format!("{}@{generation}", member.name));
                    packages.push(Arc::new(contents));
                }
            }
            RegistryKind::Remote => match upstream_packument(state, &member, name).await {
                Ok(Some((packument, was_stale, sha256))) => {
                    stale |= was_stale;
                    sources.push(format!("{}#{sha256}", member.name));
                    packages.push(packument.package.clone());
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(registry = %registry.name, member = %member.name, package = %name,
                        %error, "a remote member could not give its packument");
                    failure = Some(error);
                }
            },
            // Virtual registries are not members of virtual registries.
            RegistryKind::Virtual => {}
        }
    }
    let mut packages = packages.into_iter();
    match (packages.next(), failure) {
        (Some(first), _) => Ok(Some(Resolved {
            first,
            rest: packages.collect(),
            merged: OnceLock::new(),
            stale,
            sources: sources.join(" "),
        })),
        (None, Some(error)) if registry.kind != RegistryKind::Virtual => Err(error.into()),
        (None, _) => Ok(None),
    }
}

/// The tarball `file` of `name` in the first registry a read of `registry` tries that has it:
/// recorded there, or fetched from a remote member's upstream (verified against the packument's
/// digests) and recorded there as `name`/`<version>`/`file`. `None` when none has it.
pub async fn tarball(
    state: &AppState,
    registry: &Registry,
    name: &PackageName,
    file: &str,
) -> Result<Option<(Registry, String, BlobRef)>, NpmError> {
    let mut failure = None;
    for member in proxy::resolution_order(state, registry) {
        let recorded = state
            .meta
            .read(|view| stored_version_of_file(view, &member.name, name, file))?;
        let (version, location) = match (recorded, member.kind) {
            (Some(version), _) => (version, None),
            (None, RegistryKind::Remote) => {
                match packument_naming(state, &member, name, file).await {
                    Ok(Some(packument)) => {
                        let Some(version) = version_of_file(&packument.package, file) else {
                            continue;
                        };
                        let location = packument.locations.get(&version).cloned();
                        (version, location)
                    }
                    Ok(None) => continue,
                    Err(error) => {
                        failure = Some(error);
                        continue;
                    }
                }
            }
            (None, _) => continue,
        };
        let now = state.now_ms();
        firewall::check_member(&state.meta.view()?, &member, name.as_str(), &version, now)?;
        let found = proxy::find_or_fetch_file(
            state,
            std::slice::from_ref(&member),
            (name.as_str(), &version, file),
            |_| {
                location
                    .as_ref()
                    .map(|l| (l.url.clone(), l.expected.clone()))
            },
        )
        .await;
        match found {
            Ok(Some((holder, blob))) => return Ok(Some((holder, version, blob))),
            Ok(None) => {}
            Err(error) => failure = Some(error),
        }
    }
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::formats::npm::packument;

    fn upstream() -> Vec<u8> {
        serde_json::to_vec(&json!({
            "_id": "@s/pkg",
            "name": "@s/pkg",
            "dist-tags": {"latest": "2.0.0", "old": "1.0.0", "gone": "9.9.9"},
            "time": {
                "created": "2020-01-01T00:00:00.000Z",
                "modified": "2021-01-01T00:00:00.000Z",
                "1.0.0": "2020-01-01T00:00:00.000Z",
                "2.0.0": "2021-01-01T00:00:00.000Z",
            },
            "versions": {
                "1.0.0": {
                    "name": "@s/pkg", "version": "1.0.0", "deprecated": "use 2",
                    "dist": {
                        "tarball": "https://up.example/@s/pkg/-/pkg-1.0.0.tgz",
                        "shasum": "a9993e364706816aba3e25717850c26c9cd0d89d",
                        "integrity": format!("sha512-{}", STANDARD.encode([7u8; 64])),
                    },
                },
                "2.0.0": {
                    "name": "@s/pkg", "version": "2.0.0",
                    "dependencies": {"dep": "^1.0.0"},
                    "dist": {"tarball": "https://up.example/@s/pkg/-/pkg-2.0.0.tgz"},
                },
                "3.0.0": {"name": "@s/pkg", "version": "3.0.0"},
            },
        }))
        .expect("JSON")
    }

    #[test]
    fn upstream_packuments_render_with_local_tarball_urls() {
        let name = PackageName::parse("@s/pkg").expect("valid");
        let read = from_upstream(&name, &upstream()).expect("an object");
        assert_eq!(
            read.package.versions.keys().collect::<Vec<_>>(),
            ["1.0.0", "2.0.0"]
        );
        assert_eq!(
            read.package.tags.len(),
            2,
            "tags of unknown versions are dropped"
        );
        let one = &read.locations["1.0.0"];
        assert_eq!(one.url, "https://up.example/@s/pkg/-/pkg-1.0.0.tgz");
        assert_eq!(one.expected.sha512.as_deref(), Some(&[7u8; 64][..]));
        assert_eq!(one.expected.sha1.as_ref().map(Vec::len), Some(20));
        assert!(read.locations["2.0.0"].expected.sha512.is_none());
        assert_eq!(read.package.created_at, 1_577_836_800_000);

        let render = |document: Result<Vec<u8>, serde_json::Error>| -> Value {
            serde_json::from_slice(&document.expect("renders")).expect("JSON")
        };
        let full = render(packument::full(&read.package, "http://h/npm/remote"));
        assert_eq!(
            full["versions"]["1.0.0"]["dist"]["tarball"],
            "http://h/npm/remote/@s/pkg/-/pkg-1.0.0.tgz"
        );
        assert_eq!(full["versions"]["1.0.0"]["deprecated"], "use 2");
        assert_eq!(full["dist-tags"]["latest"], "2.0.0");
        let short = render(packument::abbreviated(&read.package, "http://h/npm/remote"));
        assert_eq!(short["versions"]["2.0.0"]["dependencies"]["dep"], "^1.0.0");
        assert_eq!(
            version_of_file(&read.package, "pkg-2.0.0.tgz").as_deref(),
            Some("2.0.0")
        );
    }

    #[test]
    fn upstream_manifests_are_kept_as_sent_and_odd_fields_left_out() {
        let name = PackageName::parse("pkg").expect("valid");
        let document = br#"{"name": "pkg", "time": "not an object", "dist-tags": ["latest"],
            "versions": {
                "1.0.0": {"version": "1.0.0", "description": "says \"hi\" \u00e9", "deprecated": "",
                          "scripts": {"postinstall": "x"}, "nested": {"deep": [1, {"a": null}]},
                          "dist": {"tarball": "https://up.example/pkg/-/pkg-1.0.0.tgz"}},
                "2.0.0": "not an object",
                "3.0.0": {"dist": "not an object"}
            }}"#;
        let read = from_upstream(&name, document).expect("an object");
        assert_eq!(read.package.versions.keys().collect::<Vec<_>>(), ["1.0.0"]);
        assert!(
            read.package.tags.is_empty(),
            "dist-tags that are not an object"
        );
        assert_eq!(read.package.versions["1.0.0"].created_at, 0);
        let full: Value = serde_json::from_slice(
            &packument::full(&read.package, "http://h/npm/r").expect("renders"),
        )
        .expect("JSON");
        let one = &full["versions"]["1.0.0"];
        assert_eq!(one["description"], "says \"hi\" \u{e9}");
        assert_eq!(one["nested"]["deep"][1]["a"], Value::Null);
        assert_eq!(one["name"], "pkg", "the name is the package's");
        assert!(
            one.get("deprecated").is_none(),
            "an empty deprecation is none"
        );
        assert_eq!(one["dist"]["tarball"], "http://h/npm/r/pkg/-/pkg-1.0.0.tgz");
        let short: Value = serde_json::from_slice(
            &packument::abbreviated(&read.package, "http://h/npm/r").expect("renders"),
        )
        .expect("JSON");
        assert_eq!(short["versions"]["1.0.0"]["hasInstallScript"], true);
        assert!(short["versions"]["1.0.0"].get("nested").is_none());
        assert!(from_upstream(&name, b"[1, 2]").is_err());
    }

    #[test]
    fn merges_prefer_earlier_members() {
        let name = PackageName::parse("@s/pkg").expect("valid");
        let remote = from_upstream(&name, &upstream())
            .expect("an object")
            .package;
        let mut local = (*remote).clone();
        local.versions.remove("2.0.0");
        local
            .versions
            .get_mut("1.0.0")
            .expect("1.0.0")
            .attributes
            .insert(MANIFEST.into(), json!({"local": true}).to_string());
        local.tags = BTreeMap::from([("latest".into(), "1.0.0".into())]);
        let merged = merge(Arc::new(local.clone()), [remote.clone()]);
        assert_eq!(merged.versions.len(), 2);
        assert!(merged.versions["1.0.0"].attributes[MANIFEST].contains("local"));
        assert_eq!(merged.tags["latest"], "1.0.0");
        assert_eq!(merged.tags["old"], "1.0.0");
        let resolved = Resolved {
            first: Arc::new(local),
            rest: vec![remote.clone()],
            merged: OnceLock::new(),
            stale: false,
            sources: "local@1 remote#0".into(),
        };
        assert!(
            resolved.merged.get().is_none(),
            "nothing merged until asked"
        );
        assert_eq!(resolved.package(), &*merged);
        let alone = merge(remote.clone(), []);
        assert!(
            Arc::ptr_eq(&alone, &remote),
            "a single package is not copied"
        );
    }
}
