//! What the PyPI front-end knows of a project, in one shape whatever the source: releases, their
//! distributions (file, digests, `Requires-Python`, yanked state, core metadata) and the core metadata
//! fields kept per release. The indexes and the JSON API render only this; [`Project::from_package`]
//! builds it from the replicated metadata of a local registry.
//!
//! Storage mapping: package = normalised project name, version = normalised version, each
//! distribution a file of the version, a wheel's `METADATA` the file `<wheel>.metadata` beside it.
//! Release fields are version attributes `pypi.<field>`; per-file details are the attribute
//! `pypi.file/<filename>` (JSON [`FileDetails`]); yanking sets `pypi.yanked` and `pypi.yanked_reason`.

use std::collections::{BTreeMap, HashSet};

use arca_protocol::Sha256;
use serde::{Deserialize, Serialize};

use super::names::{compare_versions, is_prerelease};
use crate::meta::PackageContents;

/// Suffix of the file holding a wheel's core metadata (PEP 658).
pub const METADATA_SUFFIX: &str = ".metadata";
/// Attribute marking a yanked release (PEP 592).
pub const YANKED: &str = "pypi.yanked";
/// Attribute holding the reason a release was yanked.
pub const YANKED_REASON: &str = "pypi.yanked_reason";
/// Prefix of the per-file attributes.
const FILE_PREFIX: &str = "pypi.file/";

/// Single-valued core metadata fields kept per release. The upload form field, the attribute suffix
/// and the JSON API `info` key all use these names.
pub const TEXT_FIELDS: [&str; 14] = [
    "name",
    "summary",
    "requires_python",
    "metadata_version",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "license",
    "license_expression",
    "home_page",
    "download_url",
    "keywords",
    "description_content_type",
];

/// Multiple-use core metadata fields kept per release (stored as a JSON array).
pub const LIST_FIELDS: [&str; 4] = [
    "requires_dist",
    "classifiers",
    "project_urls",
    "provides_extra",
];

/// The attribute holding release field `field`.
pub fn field_attribute(field: &str) -> String {
    format!("pypi.{field}")
}

/// The attribute holding the details of file `filename`.
pub fn file_attribute(filename: &str) -> String {
    format!("{FILE_PREFIX}{filename}")
}

/// What the registry keeps of one uploaded distribution beyond its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDetails {
    /// `sdist` or `bdist_wheel`.
    pub packagetype: String,
    /// `source`, or the wheel's Python tag.
    pub python_version: String,
    /// The distribution's `Requires-Python`.
    #[serde(default)]
    pub requires_python: Option<String>,
    /// Hex blake2b-256 of the file.
    pub blake2_256: String,
}

/// One distribution file of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    /// File name.
    pub filename: String,
    /// Where to download it (an absolute path on this server).
    pub url: String,
    /// sha256 of the file.
    pub sha256: Sha256,
    /// Size in bytes.
    pub size: u64,
    /// Upload time, unix milliseconds.
    pub uploaded_at: u64,
    /// `Requires-Python` of this file (or of its release).
    pub requires_python: Option<String>,
    /// `Some(reason)` when yanked (the reason may be empty).
    pub yanked: Option<String>,
    /// sha256 of the core metadata file served at `<url>.metadata`, when there is one.
    pub core_metadata: Option<Sha256>,
    /// What the upload said about the file, when known.
    pub details: Option<FileDetails>,
}

/// One release (version) of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The version.
    pub version: String,
    /// `Some(reason)` when yanked.
    pub yanked: Option<String>,
    /// Its distributions, by file name.
    pub files: Vec<Distribution>,
    attributes: BTreeMap<String, String>,
}

impl Release {
    /// A single-valued field (see [`TEXT_FIELDS`]).
    pub fn text(&self, field: &str) -> Option<&str> {
        self.attributes
            .get(&field_attribute(field))
            .map(String::as_str)
    }

    /// A multiple-use field (see [`LIST_FIELDS`]); empty when not set.
    pub fn list(&self, field: &str) -> Vec<String> {
        self.attributes
            .get(&field_attribute(field))
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default()
    }

    /// A release known only by its files (as an upstream index lists them): no release fields, and
    /// yanked when every file is.
    pub fn of_files(version: String, files: Vec<Distribution>) -> Release {
        let yanked = match files.first() {
            Some(first) if files.iter().all(|f| f.yanked.is_some()) => first.yanked.clone(),
            _ => None,
        };
        Release {
            version,
            yanked,
            files,
            attributes: BTreeMap::new(),
        }
    }
}

/// A project and its releases, oldest first (PEP 440 order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The normalised name.
    pub name: String,
    /// Releases in PEP 440 order.
    pub releases: Vec<Release>,
}

impl Project {
    /// The view of a stored package; `files_base` is the URL path files are served under
    /// (`/pypi/<registry>/files`).
    pub fn from_package(package: &PackageContents, files_base: &str) -> Project {
        let mut releases: Vec<Release> = package
            .versions
            .values()
            .map(|version| {
                let yanked = version.attributes.contains_key(YANKED).then(|| {
                    version
                        .attributes
                        .get(YANKED_REASON)
                        .cloned()
                        .unwrap_or_default()
                });
                let release_requires_python =
                    version.attributes.get(&field_attribute("requires_python"));
                let files = version
                    .files
                    .iter()
                    .filter(|(name, _)| !name.ends_with(METADATA_SUFFIX))
                    .map(|(filename, entry)| {
                        let details: Option<FileDetails> = version
                            .attributes
                            .get(&file_attribute(filename))
                            .and_then(|json| serde_json::from_str(json).ok());
                        let requires_python = details
                            .as_ref()
                            .and_then(|d| d.requires_python.clone())
                            .or_else(|| release_requires_python.cloned())
                            .filter(|r| !r.is_empty());
                        Distribution {
                            filename: filename.clone(),
                            url: format!(
                                "{files_base}/{}/{}/{filename}",
                                package.name, version.name
                            ),
                            sha256: entry.sha256,
                            size: entry.size,
                            uploaded_at: entry.created_at,
                            requires_python,
                            yanked: yanked.clone(),
                            core_metadata: version
                                .files
                                .get(&format!("{filename}{METADATA_SUFFIX}"))
                                .map(|m| m.sha256),
                            details,
                        }
                    })
                    .collect();
                Release {
                    version: version.name.clone(),
                    yanked,
                    files,
                    attributes: version
                        .attributes
                        .iter()
                        .filter(|(key, _)| {
                            key.starts_with("pypi.") && !key.starts_with(FILE_PREFIX)
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                }
            })
            .collect();
        releases.sort_by(|a, b| compare_versions(&a.version, &b.version));
        Project {
            name: package.name.clone(),
            releases,
        }
    }

    /// A project known only by its files, each with its (normalised) version.
    pub fn from_files(
        name: &str,
        files: impl IntoIterator<Item = (String, Distribution)>,
    ) -> Project {
        let mut by_version: BTreeMap<String, Vec<Distribution>> = BTreeMap::new();
        for (version, file) in files {
            by_version.entry(version).or_default().push(file);
        }
        let mut releases: Vec<Release> = by_version
            .into_iter()
            .map(|(version, files)| Release::of_files(version, files))
            .collect();
        releases.sort_by(|a, b| compare_versions(&a.version, &b.version));
        Project {
            name: name.to_string(),
            releases,
        }
    }

    /// The views of one project from several sources, merged in order: a file name an earlier source
    /// lists wins; a release takes its fields from the first source that has it (and the fields it
    /// lacks from later ones). `None` when no source lists a file.
    pub fn merge(name: &str, sources: impl IntoIterator<Item = Project>) -> Option<Project> {
        let mut sources: Vec<Project> = sources.into_iter().collect();
        if sources.len() == 1 {
            return sources.pop().filter(|p| !p.releases.is_empty());
        }
        let mut seen = HashSet::new();
        let mut releases: Vec<Release> = Vec::new();
        for source in sources {
            for mut release in source.releases {
                release.files.retain(|f| seen.insert(f.filename.clone()));
                match releases.iter_mut().find(|r| r.version == release.version) {
                    Some(existing) => {
                        existing.files.extend(release.files);
                        for (key, value) in release.attributes {
                            existing.attributes.entry(key).or_insert(value);
                        }
                    }
                    None if !release.files.is_empty() => releases.push(release),
                    None => {}
                }
            }
        }
        releases.sort_by(|a, b| compare_versions(&a.version, &b.version));
        (!releases.is_empty()).then(|| Project {
            name: name.to_string(),
            releases,
        })
    }

    /// The release a plain install would pick: the newest final release that is not yanked, else the
    /// newest one not yanked, else the newest.
    pub fn latest(&self) -> Option<&Release> {
        let newest = |final_only: bool| {
            self.releases
                .iter()
                .rev()
                .find(|r| r.yanked.is_none() && !(final_only && is_prerelease(&r.version)))
        };
        newest(true)
            .or_else(|| newest(false))
            .or_else(|| self.releases.last())
    }

    /// A release by (normalised) version.
    pub fn release(&self, version: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.version == version)
    }

    /// The name as the project spells it (its newest release's `Name`), or the normalised name.
    pub fn display_name(&self) -> &str {
        self.releases
            .iter()
            .rev()
            .find_map(|r| r.text("name"))
            .unwrap_or(&self.name)
    }

    /// Every distribution, oldest release first.
    pub fn files(&self) -> impl Iterator<Item = &Distribution> {
        self.releases.iter().flat_map(|r| r.files.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_protocol::{FileEntry, Version};

    fn entry(byte: u8) -> FileEntry {
        FileEntry {
            sha256: Sha256([byte; 32]),
            size: 10,
            created_at: 1,
        }
    }

    fn version(name: &str, files: &[&str], attributes: &[(&str, &str)]) -> Version {
        Version {
            name: name.into(),
            created_at: 1,
            updated_at: 1,
            files: files.iter().map(|f| (f.to_string(), entry(1))).collect(),
            metadata: Default::default(),
            manifest: None,
            firewall: None,
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            size: 0,
        }
    }

    #[test]
    fn a_package_becomes_a_project() {
        let details = serde_json::to_string(&FileDetails {
            packagetype: "bdist_wheel".into(),
            python_version: "py3".into(),
            requires_python: Some(">=3.8".into()),
            blake2_256: "00".into(),
        })
        .expect("json");
        let wheel = "dep_a-1.10-py3-none-any.whl";
        let versions = [
            version(
                "1.10",
                &[wheel, &format!("{wheel}.metadata"), "dep_a-1.10.tar.gz"],
                &[
                    ("pypi.name", "Dep_A"),
                    ("pypi.requires_python", ">=3.7"),
                    ("pypi.requires_dist", "[\"x>=1\"]"),
                    (&file_attribute(wheel), &details),
                ],
            ),
            version("1.9", &["dep_a-1.9.tar.gz"], &[]),
            version(
                "2.0",
                &["dep_a-2.0.tar.gz"],
                &[(YANKED, "true"), (YANKED_REASON, "broken")],
            ),
            version("2.1b1", &["dep_a-2.1b1.tar.gz"], &[]),
        ];
        let package = PackageContents {
            versions: versions.into_iter().map(|v| (v.name.clone(), v)).collect(),
            ..PackageContents::empty("dep-a", 1, 1)
        };
        let project = Project::from_package(&package, "/pypi/r/files");
        let order: Vec<&str> = project
            .releases
            .iter()
            .map(|r| r.version.as_str())
            .collect();
        assert_eq!(order, ["1.9", "1.10", "2.0", "2.1b1"]);
        assert_eq!(project.latest().map(|r| r.version.as_str()), Some("1.10"));
        assert_eq!(project.display_name(), "Dep_A");
        let release = project.release("1.10").expect("release");
        assert_eq!(release.list("requires_dist"), ["x>=1"]);
        assert_eq!(
            release.files.len(),
            2,
            "the .metadata file is not a distribution"
        );
        let wheel_file = release
            .files
            .iter()
            .find(|f| f.filename == wheel)
            .expect("wheel");
        assert_eq!(wheel_file.requires_python.as_deref(), Some(">=3.8"));
        assert!(wheel_file.core_metadata.is_some());
        assert_eq!(wheel_file.url, format!("/pypi/r/files/dep-a/1.10/{wheel}"));
        let sdist = release
            .files
            .iter()
            .find(|f| f.filename != wheel)
            .expect("sdist");
        assert_eq!(sdist.requires_python.as_deref(), Some(">=3.7"));
        assert_eq!(sdist.core_metadata, None);
        let yanked = project.release("2.0").expect("2.0");
        assert_eq!(yanked.files[0].yanked.as_deref(), Some("broken"));
    }

    fn distribution(filename: &str, byte: u8, yanked: Option<&str>) -> Distribution {
        Distribution {
            filename: filename.into(),
            url: format!("/pypi/v/files/a/x/{filename}"),
            sha256: Sha256([byte; 32]),
            size: 1,
            uploaded_at: 0,
            requires_python: None,
            yanked: yanked.map(str::to_string),
            core_metadata: None,
            details: None,
        }
    }

    #[test]
    fn sources_merge_in_order_and_earlier_file_names_win() {
        let first = Project::from_files(
            "a",
            [
                ("1.10".to_string(), distribution("a-1.10.tar.gz", 1, None)),
                ("1.9".to_string(), distribution("a-1.9.tar.gz", 1, Some(""))),
            ],
        );
        assert_eq!(
            first.release("1.9").and_then(|r| r.yanked.clone()),
            Some(String::new())
        );
        assert_eq!(first.release("1.10").and_then(|r| r.yanked.clone()), None);
        let second = Project::from_files(
            "a",
            [
                ("1.10".to_string(), distribution("a-1.10.tar.gz", 2, None)),
                (
                    "1.10".to_string(),
                    distribution("a-1.10-py3-none-any.whl", 2, None),
                ),
                ("2.0".to_string(), distribution("a-2.0.tar.gz", 2, None)),
            ],
        );
        let merged = Project::merge("a", [first, second]).expect("merged");
        let versions: Vec<&str> = merged.releases.iter().map(|r| r.version.as_str()).collect();
        assert_eq!(versions, ["1.9", "1.10", "2.0"]);
        let release = merged.release("1.10").expect("1.10");
        assert_eq!(release.files.len(), 2);
        let sdist = release
            .files
            .iter()
            .find(|f| f.filename == "a-1.10.tar.gz")
            .expect("sdist");
        assert_eq!(sdist.sha256, Sha256([1; 32]), "the first source wins");
        assert_eq!(Project::merge("a", Vec::new()), None);
    }
}
