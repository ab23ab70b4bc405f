//! Python names: project names normalised per PEP 503, versions normalised and ordered per PEP 440,
//! and the project and version encoded in a distribution's file name (sdist and wheel).

use std::cmp::Ordering;
use std::str::FromStr;

pub use crate::ecosystems::pypi_names::normalize_project;

/// True for a valid project name (the core metadata specification's rule): ASCII letters and
/// digits, with `.`, `_` and `-` inside.
pub fn is_valid_project(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 200
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The PEP 440 normal form of a version (`1.0.0RC1` -> `1.0.0rc1`, `v2` -> `2`), or `None` when it
/// is not a PEP 440 version.
pub fn normalize_version(version: &str) -> Option<String> {
    pep440_rs::Version::from_str(version.trim())
        .ok()
        .map(|v| v.to_string())
}

/// Orders versions per PEP 440; strings that are not PEP 440 versions sort first, by text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let parse = |v: &str| pep440_rs::Version::from_str(v).ok();
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// True when `version` is a pre-release or development release.
pub fn is_prerelease(version: &str) -> bool {
    pep440_rs::Version::from_str(version).is_ok_and(|v| v.any_prerelease())
}

/// The kinds of distribution this registry accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistributionKind {
    /// A source distribution (`.tar.gz`, or the legacy `.zip`).
    Sdist,
    /// A built distribution (`.whl`).
    Wheel,
}

impl DistributionKind {
    /// The `filetype` an upload announces.
    pub fn from_filetype(filetype: &str) -> Option<Self> {
        match filetype {
            "sdist" => Some(DistributionKind::Sdist),
            "bdist_wheel" => Some(DistributionKind::Wheel),
            _ => None,
        }
    }

    /// The JSON API's `packagetype`.
    pub fn packagetype(self) -> &'static str {
        match self {
            DistributionKind::Sdist => "sdist",
            DistributionKind::Wheel => "bdist_wheel",
        }
    }
}

/// What a distribution's file name says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributionName {
    /// The kind, from the extension.
    pub kind: DistributionKind,
    /// The project part, as written.
    pub project: String,
    /// The version part, as written.
    pub version: String,
    /// The wheel's Python tag (`py3`), or `source` for an sdist.
    pub python_tag: String,
}

/// Parses `name-version.tar.gz`, `name-version.zip` and
/// `name-version(-build)?-python-abi-platform.whl`; `None` for anything else.
pub fn parse_distribution(filename: &str) -> Option<DistributionName> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        let parts: Vec<&str> = stem.split('-').collect();
        if !(parts.len() == 5 || parts.len() == 6) || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        return Some(DistributionName {
            kind: DistributionKind::Wheel,
            project: parts[0].to_string(),
            version: parts[1].to_string(),
            python_tag: parts[parts.len() - 3].to_string(),
        });
    }
    let stem = filename
        .strip_suffix(".tar.gz")
        .or_else(|| filename.strip_suffix(".zip"))?;
    let (project, version) = stem.rsplit_once('-')?;
    (!project.is_empty() && !version.is_empty()).then(|| DistributionName {
        kind: DistributionKind::Sdist,
        project: project.to_string(),
        version: version.to_string(),
        python_tag: "source".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_normalise() {
        assert_eq!(normalize_project("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(normalize_project("dep_a"), "dep-a");
        assert_eq!(normalize_project("A-._-b"), "a-b");
        assert!(is_valid_project("dep_a"));
        assert!(!is_valid_project("-dep"));
        assert!(!is_valid_project("a/b"));
        assert!(!is_valid_project(""));
    }

    #[test]
    fn versions_normalise_and_order() {
        assert_eq!(normalize_version("1.0.0RC1").as_deref(), Some("1.0.0rc1"));
        assert_eq!(normalize_version("v2").as_deref(), Some("2"));
        assert_eq!(normalize_version("1.0-post1").as_deref(), Some("1.0.post1"));
        assert_eq!(normalize_version("not a version"), None);
        assert_eq!(compare_versions("1.10", "1.9"), Ordering::Greater);
        assert_eq!(compare_versions("1.0rc1", "1.0"), Ordering::Less);
        assert!(is_prerelease("2.0b1"));
        assert!(!is_prerelease("2.0"));
    }

    #[test]
    fn distribution_file_names_parse() {
        let wheel = parse_distribution("dep_a-1.0.0-py3-none-any.whl").expect("wheel");
        assert_eq!(wheel.kind, DistributionKind::Wheel);
        assert_eq!(
            (wheel.project.as_str(), wheel.version.as_str()),
            ("dep_a", "1.0.0")
        );
        assert_eq!(wheel.python_tag, "py3");
        let built = parse_distribution("x-1-1build-cp311-cp311-linux_x86_64.whl").expect("wheel");
        assert_eq!(built.python_tag, "cp311");
        let sdist = parse_distribution("dep-a-1.0.0.tar.gz").expect("sdist");
        assert_eq!(sdist.kind, DistributionKind::Sdist);
        assert_eq!(
            (sdist.project.as_str(), sdist.version.as_str()),
            ("dep-a", "1.0.0")
        );
        assert_eq!(parse_distribution("dep-a-1.0.0.egg"), None);
        assert_eq!(parse_distribution("a-b.whl"), None);
    }
}
