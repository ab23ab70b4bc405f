//! What npm reads, rendered from a package's stored versions: version manifests, the full and the
//! abbreviated ("corgi") packument, dist-tags and search results.
//!
//! These functions only read a [`PackageContents`]; they do not know where it came from, so a registry that
//! fills its packages from elsewhere renders them the same way. Each version keeps the manifest its
//! publisher sent in [`MANIFEST`] (with `dist` holding the integrity and shasum this registry
//! computed) and a deprecation message in [`DEPRECATED`]; tarball URLs are added on the way out,
//! from the base URL the client used.

use crate::meta::PackageContents;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use arca_protocol::Version;
use serde::Serialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// Version attribute holding the version's package.json manifest (JSON).
pub const MANIFEST: &str = "npm.manifest";
/// Version attribute holding the deprecation message.
pub const DEPRECATED: &str = "npm.deprecated";

/// Media type of the abbreviated packument.
pub const ABBREVIATED: &str = "application/vnd.npm.install-v1+json";

/// Manifest fields the abbreviated packument keeps (npm's "corgi" document).
const ABBREVIATED_FIELDS: [&str; 20] = [
    "name",
    "version",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "acceptDependencies",
    "bin",
    "directories",
    "dist",
    "engines",
    "cpu",
    "os",
    "libc",
    "_hasShrinkwrap",
    "funding",
];

/// Package-level fields of the full packument, taken from the latest version's manifest.
const PACKAGE_FIELDS: [&str; 11] = [
    "description",
    "readme",
    "readmeFilename",
    "license",
    "homepage",
    "repository",
    "bugs",
    "keywords",
    "author",
    "contributors",
    "maintainers",
];

/// Install scripts that make npm mark a version `hasInstallScript`.
const INSTALL_SCRIPTS: [&str; 3] = ["preinstall", "install", "postinstall"];

/// An RFC 3339 time, as npm's `time` fields carry them.
pub fn iso_time(unix_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(unix_ms)).to_string()
}

/// The revision clients echo back in `-rev/<rev>` paths. It is informative only: updates are not
/// refused for an old revision.
pub fn revision(package: &PackageContents) -> String {
    format!("{}-{:x}", package.versions.len(), package.updated_at)
}

/// The manifest stored with a version, as an object.
pub fn stored_manifest(version: &Version) -> Map<String, Value> {
    match version
        .attributes
        .get(MANIFEST)
        .and_then(|text| serde_json::from_str(text).ok())
    {
        Some(Value::Object(manifest)) => manifest,
        _ => Map::new(),
    }
}

/// A manifest's top-level fields, each kept as the JSON text it has in the manifest: reading them
/// costs one scan of the text and an allocation per field name, not a tree of values, and writing
/// them out copies the text as it is.
pub type ManifestFields<'a> = BTreeMap<String, Cow<'a, RawValue>>;

/// The top-level fields of the manifest stored with a version (none when it has no manifest, or
/// one that is not a JSON object).
fn stored_fields(version: &Version) -> ManifestFields<'_> {
    let parsed: Option<BTreeMap<String, &RawValue>> = version
        .attributes
        .get(MANIFEST)
        .and_then(|text| serde_json::from_str(text).ok());
    parsed
        .unwrap_or_default()
        .into_iter()
        .map(|(field, value)| (field, Cow::Borrowed(value)))
        .collect()
}

/// `value` as JSON text.
fn json_text(value: &impl Serialize) -> Result<Cow<'static, RawValue>, serde_json::Error> {
    serde_json::value::to_raw_value(value).map(Cow::Owned)
}

/// A version's manifest as clients see it: the stored manifest with its tarball URL under `base`
/// (`http://host/npm/<registry>`) and its deprecation.
fn manifest_fields<'a>(
    package: &PackageContents,
    version: &'a Version,
    base: &str,
) -> Result<ManifestFields<'a>, serde_json::Error> {
    let mut manifest = stored_fields(version);
    manifest.insert("name".into(), json_text(&package.name)?);
    manifest.insert("version".into(), json_text(&version.name)?);
    if let Some(file) = version.files.keys().next() {
        // A `dist` that is not an object is left as it is.
        let dist = manifest.get("dist").map_or(Some(Map::new()), |dist| {
            serde_json::from_str::<Map<String, Value>>(dist.get()).ok()
        });
        if let Some(mut dist) = dist {
            dist.insert(
                "tarball".into(),
                json!(format!("{base}/{}/-/{file}", package.name)),
            );
            manifest.insert("dist".into(), json_text(&dist)?);
        }
    }
    match version.attributes.get(DEPRECATED) {
        Some(message) => manifest.insert("deprecated".into(), json_text(message)?),
        None => manifest.remove("deprecated"),
    };
    Ok(manifest)
}

/// One version's manifest as clients see it (`GET /<name>/<version>`), as JSON.
pub fn version_manifest(
    package: &PackageContents,
    version: &Version,
    base: &str,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&manifest_fields(package, version, base)?)
}

/// The version `latest` points at, or else the highest version.
pub fn latest(package: &PackageContents) -> Option<&Version> {
    package
        .tags
        .get("latest")
        .and_then(|name| package.versions.get(name))
        .or_else(|| {
            package
                .versions
                .values()
                .max_by_key(|v| semver::Version::parse(&v.name).ok())
        })
}

/// The `time` object: creation and modification of the package, publication of each version.
fn times(package: &PackageContents) -> BTreeMap<&str, String> {
    let mut time = BTreeMap::new();
    time.insert("created", iso_time(package.created_at));
    time.insert("modified", iso_time(package.updated_at));
    for version in package.versions.values() {
        time.insert(version.name.as_str(), iso_time(version.created_at));
    }
    time
}

/// The full packument (`application/json`).
#[derive(Serialize)]
struct FullPackument<'a> {
    /// The latest version's description, readme and other package-level fields.
    #[serde(flatten)]
    package_fields: ManifestFields<'a>,
    #[serde(rename = "_id")]
    id: &'a str,
    #[serde(rename = "_rev")]
    revision: String,
    name: &'a str,
    #[serde(rename = "dist-tags")]
    tags: &'a BTreeMap<String, String>,
    versions: BTreeMap<&'a str, ManifestFields<'a>>,
    time: BTreeMap<&'a str, String>,
}

/// The full packument (`application/json`), as JSON: every version's manifest, dist-tags, times,
/// and the latest version's description, readme and other package-level fields.
pub fn full(package: &PackageContents, base: &str) -> Result<Vec<u8>, serde_json::Error> {
    let mut package_fields = latest(package).map(stored_fields).unwrap_or_default();
    package_fields.retain(|field, _| PACKAGE_FIELDS.contains(&field.as_str()));
    let versions = package
        .versions
        .values()
        .map(|v| Ok((v.name.as_str(), manifest_fields(package, v, base)?)))
        .collect::<Result<_, serde_json::Error>>()?;
    serde_json::to_vec(&FullPackument {
        package_fields,
        id: &package.name,
        revision: revision(package),
        name: &package.name,
        tags: &package.tags,
        versions,
        time: times(package),
    })
}

/// The abbreviated packument (`application/vnd.npm.install-v1+json`).
#[derive(Serialize)]
struct AbbreviatedPackument<'a> {
    name: &'a str,
    modified: String,
    #[serde(rename = "dist-tags")]
    tags: &'a BTreeMap<String, String>,
    versions: BTreeMap<&'a str, ManifestFields<'a>>,
}

/// The names of the scripts a manifest declares.
type ScriptNames = BTreeMap<String, IgnoredAny>;

/// The abbreviated packument (`application/vnd.npm.install-v1+json`), as JSON: what an install
/// needs of each version.
pub fn abbreviated(package: &PackageContents, base: &str) -> Result<Vec<u8>, serde_json::Error> {
    let versions = package
        .versions
        .values()
        .map(|version| {
            let mut manifest = manifest_fields(package, version, base)?;
            let install_script = manifest
                .get("scripts")
                .and_then(|scripts| serde_json::from_str::<ScriptNames>(scripts.get()).ok())
                .is_some_and(|scripts| INSTALL_SCRIPTS.iter().any(|s| scripts.contains_key(*s)));
            manifest.retain(|field, _| ABBREVIATED_FIELDS.contains(&field.as_str()));
            if install_script {
                manifest.insert("hasInstallScript".into(), json_text(&true)?);
            }
            Ok((version.name.as_str(), manifest))
        })
        .collect::<Result<_, serde_json::Error>>()?;
    serde_json::to_vec(&AbbreviatedPackument {
        name: &package.name,
        modified: iso_time(package.updated_at),
        tags: &package.tags,
        versions,
    })
}

fn keywords(manifest: &Map<String, Value>) -> Vec<String> {
    match manifest.get("keywords") {
        Some(Value::Array(words)) => words
            .iter()
            .filter_map(|w| w.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(words)) => words
            .split([',', ' '])
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The people a manifest names as maintainers, as search results list them.
fn maintainers(manifest: &Map<String, Value>) -> Vec<Value> {
    let named = manifest
        .get("maintainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(manifest.get("_npmUser"))
        .filter_map(|person| {
            let name = person.get("name").and_then(Value::as_str)?;
            let email = person.get("email").and_then(Value::as_str).unwrap_or("");
            Some(json!({ "username": name, "email": email }))
        });
    let mut people: Vec<Value> = Vec::new();
    for person in named {
        if !people.contains(&person) {
            people.push(person);
        }
    }
    people
}

/// A package's downloads over the last week and the last 30 days, as npm's search shows them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecentDownloads {
    /// The last 7 days, today included.
    pub weekly: u64,
    /// The last 30 days, today included.
    pub monthly: u64,
}

/// The search result object of a package (its latest version) with the score search gave it and
/// its downloads; its popularity is the monthly downloads on a log scale (1 at a million). `None`
/// for a package without versions.
pub fn search_object(
    package: &PackageContents,
    score: f32,
    downloads: RecentDownloads,
) -> Option<Value> {
    let latest = latest(package)?;
    let manifest = stored_manifest(latest);
    let scope = package
        .name
        .strip_prefix('@')
        .and_then(|scoped| scoped.split_once('/'))
        .map_or("unscoped", |(scope, _)| scope);
    let publisher = manifest
        .get("_npmUser")
        .and_then(|user| user.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(json!({
        "package": {
            "name": package.name,
            "scope": scope,
            "version": latest.name,
            "description": manifest.get("description").cloned().unwrap_or(json!("")),
            "keywords": keywords(&manifest),
            "date": iso_time(latest.created_at),
            "links": {},
            "publisher": { "username": publisher },
            "maintainers": maintainers(&manifest),
        },
        "downloads": { "weekly": downloads.weekly, "monthly": downloads.monthly },
        "score": {
            "final": score,
            "detail": { "popularity": ((1.0 + downloads.monthly as f64).log10() / 6.0).min(1.0) },
        },
        "searchScore": score,
    }))
}

#[cfg(test)]
mod tests {
    use arca_protocol::{FileEntry, Sha256};

    use super::*;

    fn version(name: &str, manifest: Value, deprecated: Option<&str>) -> Version {
        let mut attributes = BTreeMap::from([(MANIFEST.to_string(), manifest.to_string())]);
        if let Some(message) = deprecated {
            attributes.insert(DEPRECATED.to_string(), message.to_string());
        }
        Version {
            name: name.into(),
            created_at: 1_000,
            updated_at: 1_000,
            files: BTreeMap::from([(
                format!("pkg-{name}.tgz"),
                FileEntry {
                    sha256: Sha256([0; 32]),
                    size: 1,
                    created_at: 1_000,
                },
            )]),
            metadata: Default::default(),
            manifest: None,
            attributes,
            firewall: None,
            size: 0,
        }
    }

    fn package() -> PackageContents {
        let one = version(
            "1.0.0",
            json!({"name": "@s/pkg", "version": "1.0.0", "description": "old", "dist": {"shasum": "aa"}}),
            Some("use 2"),
        );
        let two = version(
            "2.0.0",
            json!({"name": "@s/pkg", "version": "2.0.0", "description": "Fast Thing",
                   "keywords": ["speed"], "readme": "# pkg", "scripts": {"install": "x"},
                   "dependencies": {"dep": "^1.0.0"}, "_npmUser": {"name": "ci"},
                   "dist": {"shasum": "bb"}}),
            None,
        );
        PackageContents {
            name: "@s/pkg".into(),
            created_at: 1_000,
            updated_at: 2_000,
            versions: BTreeMap::from([("1.0.0".into(), one), ("2.0.0".into(), two)]),
            metadata: Default::default(),
            tags: BTreeMap::from([("latest".into(), "2.0.0".into())]),
        }
    }

    #[test]
    fn full_packument_takes_package_fields_from_latest() {
        let doc: Value =
            serde_json::from_slice(&full(&package(), "http://h/npm/r").expect("renders"))
                .expect("JSON");
        assert_eq!(doc["name"], "@s/pkg");
        assert_eq!(doc["description"], "Fast Thing");
        assert_eq!(doc["readme"], "# pkg");
        assert_eq!(doc["dist-tags"]["latest"], "2.0.0");
        assert_eq!(
            doc["versions"]["1.0.0"]["dist"]["tarball"],
            "http://h/npm/r/@s/pkg/-/pkg-1.0.0.tgz"
        );
        assert_eq!(doc["versions"]["1.0.0"]["deprecated"], "use 2");
        assert_eq!(doc["time"]["2.0.0"], "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn abbreviated_packument_keeps_install_fields() {
        let doc: Value =
            serde_json::from_slice(&abbreviated(&package(), "http://h/npm/r").expect("renders"))
                .expect("JSON");
        let two = &doc["versions"]["2.0.0"];
        assert_eq!(two["dependencies"]["dep"], "^1.0.0");
        assert_eq!(two["hasInstallScript"], true);
        assert_eq!(two["dist"]["shasum"], "bb");
        assert!(two.get("readme").is_none());
        assert!(two.get("description").is_none());
        assert_eq!(doc["versions"]["1.0.0"]["deprecated"], "use 2");
    }

    #[test]
    fn a_dist_that_is_not_an_object_is_left_as_it_is() {
        let mut package = package();
        package.versions.insert(
            "3.0.0".into(),
            version("3.0.0", json!({"dist": "odd", "readme": "x"}), None),
        );
        let doc: Value =
            serde_json::from_slice(&full(&package, "http://h/npm/r").expect("renders"))
                .expect("JSON");
        assert_eq!(doc["versions"]["3.0.0"]["dist"], "odd");
        assert_eq!(doc["versions"]["2.0.0"]["dist"]["shasum"], "bb");
    }

    #[test]
    fn a_search_object_shows_the_latest_version() {
        let pkg = package();
        let downloads = RecentDownloads {
            weekly: 9,
            monthly: 99,
        };
        let hit = search_object(&pkg, 2.5, downloads).expect("has versions");
        assert_eq!(hit["package"]["version"], "2.0.0");
        assert_eq!(hit["downloads"]["monthly"], 99);
        assert_eq!(hit["score"]["detail"]["popularity"], 2.0 / 6.0);
        assert_eq!(hit["package"]["scope"], "s");
        assert_eq!(hit["package"]["maintainers"][0]["username"], "ci");
        assert_eq!(hit["searchScore"], 2.5);
    }
}
