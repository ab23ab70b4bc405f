//! The Maven 2 repository layout: what a path under `/maven/<registry>/` names (artifact-level
//! metadata, SNAPSHOT version-level metadata, or a file of a version, each possibly as a checksum),
//! and what an artifact file's name says (timestamped SNAPSHOT build, classifier, extension).
//!
//! Everything here is pure string work on raw (not percent-decoded) paths: a segment must be made of
//! Maven-safe characters, so an encoded `/` or `..` never reaches storage.

use super::checksum::ChecksumKind;

/// The metadata file Maven keeps per artifact and per SNAPSHOT version.
pub const METADATA_FILE: &str = "maven-metadata.xml";

/// The suffix of SNAPSHOT versions.
const SNAPSHOT: &str = "-SNAPSHOT";

/// Longest path segment accepted.
const MAX_SEGMENT: usize = 255;

/// Why a path is not part of the repository layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A segment is empty, `.`/`..`, too long or has a character outside `[A-Za-z0-9._+-]`.
    #[error(
        "path segment {0:?} is not valid in a Maven repository (1-255 of letters, digits, '.', '_', \
         '+', '-'; not '.' or '..')"
    )]
    Segment(String),
    /// Too few segments for `<group>/<artifact>/<version>/<file>`.
    #[error(
        "a Maven path is <group path>/<artifactId>/<version>/<file> or <group path>/<artifactId>/maven-metadata.xml"
    )]
    TooShort,
    /// The file name does not belong to the artifact and version of its directory.
    #[error("file name {filename:?} does not belong to {artifact_id} {version}")]
    FileName {
        /// The file name.
        filename: String,
        /// The artifact of the directory.
        artifact_id: String,
        /// The version of the directory.
        version: String,
    },
}

/// `groupId:artifactId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinates {
    /// Dotted group id (`org.example`).
    pub group_id: String,
    /// Artifact id.
    pub artifact_id: String,
}

impl Coordinates {
    /// The package name Arca stores the artifact under: `groupId:artifactId`.
    pub fn package(&self) -> String {
        format!("{}:{}", self.group_id, self.artifact_id)
    }
}

/// What a path names, apart from a checksum suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `<group>/<artifact>/maven-metadata.xml`
    ArtifactMetadata,
    /// `<group>/<artifact>/<version>-SNAPSHOT/maven-metadata.xml`
    VersionMetadata {
        /// The SNAPSHOT version.
        version: String,
    },
    /// `<group>/<artifact>/<version>/<file>`
    File {
        /// The version directory.
        version: String,
        /// The file name.
        filename: String,
    },
}

/// A parsed repository path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MavenPath {
    /// The artifact.
    pub coordinates: Coordinates,
    /// What of it.
    pub target: Target,
    /// Set when the path names the target's checksum rather than the target.
    pub checksum: Option<ChecksumKind>,
}

/// True for a SNAPSHOT version (`1.0-SNAPSHOT`).
pub fn is_snapshot(version: &str) -> bool {
    version.ends_with(SNAPSHOT)
}

fn validate_segment(segment: &str) -> Result<(), LayoutError> {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-');
    if segment.is_empty()
        || segment.len() > MAX_SEGMENT
        || segment == "."
        || segment == ".."
        || !segment.chars().all(safe)
    {
        return Err(LayoutError::Segment(segment.chars().take(100).collect()));
    }
    Ok(())
}

impl MavenPath {
    /// Parses the path below `/maven/<registry>/`, as sent (not percent-decoded).
    pub fn parse(path: &str) -> Result<MavenPath, LayoutError> {
        let segments: Vec<&str> = path.split('/').collect();
        segments.iter().try_for_each(|s| validate_segment(s))?;
        let (last, dirs) = segments.split_last().ok_or(LayoutError::TooShort)?;
        let (name, checksum) = ChecksumKind::split(last);
        let coordinates_of = |group: &[&str], artifact: &str| Coordinates {
            group_id: group.join("."),
            artifact_id: artifact.to_string(),
        };
        let (coordinates, target) = match dirs {
            [group @ .., artifact, version]
                if name == METADATA_FILE && is_snapshot(version) && !group.is_empty() =>
            {
                (
                    coordinates_of(group, artifact),
                    Target::VersionMetadata {
                        version: version.to_string(),
                    },
                )
            }
            [group @ .., artifact] if name == METADATA_FILE && !group.is_empty() => {
                (coordinates_of(group, artifact), Target::ArtifactMetadata)
            }
            [group @ .., artifact, version] if !group.is_empty() => {
                ArtifactFile::parse(artifact, version, name)?;
                (
                    coordinates_of(group, artifact),
                    Target::File {
                        version: version.to_string(),
                        filename: name.to_string(),
                    },
                )
            }
            _ => return Err(LayoutError::TooShort),
        };
        Ok(MavenPath {
            coordinates,
            target,
            checksum,
        })
    }
}

/// A timestamped SNAPSHOT build: `20240101.120000-3`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Build {
    /// The build number (first, so builds order by it).
    pub number: u32,
    /// `yyyyMMdd.HHmmss`, UTC.
    pub timestamp: String,
}

/// What an artifact file's name says, relative to its artifact and version directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// The SNAPSHOT build, for a timestamped file of a SNAPSHOT version.
    pub build: Option<Build>,
    /// The classifier (`sources`, `javadoc`...).
    pub classifier: Option<String>,
    /// The extension (`jar`, `pom`, `tar.gz`, `jar.asc`...).
    pub extension: String,
}

/// `yyyyMMdd.HHmmss-N` at the start of `text`, and what follows it.
fn parse_build(text: &str) -> Option<(Build, &str)> {
    let (timestamp, rest) = text.split_at_checked(15)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (date, time) = timestamp.split_once('.')?;
    if date.len() != 8 || !digits(date) || time.len() != 6 || !digits(time) {
        return None;
    }
    let rest = rest.strip_prefix('-')?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let number = rest[..end].parse().ok()?;
    Some((
        Build {
            number,
            timestamp: timestamp.to_string(),
        },
        &rest[end..],
    ))
}

impl ArtifactFile {
    /// Parses `filename` as a file of `artifact_id` `version`: `<artifactId>-<version>[-<classifier>].<ext>`,
    /// or for a SNAPSHOT version also `<artifactId>-<base>-<yyyyMMdd.HHmmss>-<build>[-<classifier>].<ext>`.
    pub fn parse(
        artifact_id: &str,
        version: &str,
        filename: &str,
    ) -> Result<ArtifactFile, LayoutError> {
        let mismatch = || LayoutError::FileName {
            filename: filename.to_string(),
            artifact_id: artifact_id.to_string(),
            version: version.to_string(),
        };
        let rest = filename
            .strip_prefix(artifact_id)
            .and_then(|r| r.strip_prefix('-'))
            .ok_or_else(mismatch)?;
        let timestamped = version
            .strip_suffix(SNAPSHOT)
            .and_then(|base| rest.strip_prefix(base)?.strip_prefix('-'))
            .and_then(parse_build);
        let (build, rest) = match timestamped {
            Some((build, rest)) => (Some(build), rest),
            None => (None, rest.strip_prefix(version).ok_or_else(mismatch)?),
        };
        let (classifier, extension) = match rest.strip_prefix('-') {
            Some(classified) => {
                let (classifier, extension) = classified.split_once('.').ok_or_else(mismatch)?;
                (Some(classifier.to_string()), extension)
            }
            None => (None, rest.strip_prefix('.').ok_or_else(mismatch)?),
        };
        if extension.split('.').any(str::is_empty) || classifier.as_deref() == Some("") {
            return Err(mismatch());
        }
        Ok(ArtifactFile {
            build,
            classifier,
            extension: extension.to_string(),
        })
    }

    /// The file name of this file in another build of the same SNAPSHOT version.
    pub fn snapshot_value(&self, version: &str) -> String {
        match &self.build {
            Some(build) => format!(
                "{}-{}-{}",
                version.strip_suffix(SNAPSHOT).unwrap_or(version),
                build.timestamp,
                build.number
            ),
            None => version.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(version: &str, filename: &str) -> MavenPath {
        MavenPath {
            coordinates: Coordinates {
                group_id: "org.example".into(),
                artifact_id: "lib".into(),
            },
            target: Target::File {
                version: version.into(),
                filename: filename.into(),
            },
            checksum: None,
        }
    }

    #[test]
    fn paths_name_files_metadata_and_checksums() {
        assert_eq!(
            MavenPath::parse("org/example/lib/1.0/lib-1.0.jar"),
            Ok(file("1.0", "lib-1.0.jar"))
        );
        let mut sha1 = file("1.0", "lib-1.0.pom");
        sha1.checksum = Some(ChecksumKind::Sha1);
        assert_eq!(
            MavenPath::parse("org/example/lib/1.0/lib-1.0.pom.sha1"),
            Ok(sha1)
        );
        let artifact = MavenPath::parse("org/example/lib/maven-metadata.xml.md5").expect("valid");
        assert_eq!(artifact.target, Target::ArtifactMetadata);
        assert_eq!(artifact.coordinates.package(), "org.example:lib");
        assert_eq!(artifact.checksum, Some(ChecksumKind::Md5));
        let version =
            MavenPath::parse("org/example/lib/1.1-SNAPSHOT/maven-metadata.xml").expect("valid");
        assert_eq!(
            version.target,
            Target::VersionMetadata {
                version: "1.1-SNAPSHOT".into()
            }
        );
        assert_eq!(
            MavenPath::parse("org/example/lib/1.1-SNAPSHOT/lib-1.1-20240101.120000-3-sources.jar"),
            Ok(file(
                "1.1-SNAPSHOT",
                "lib-1.1-20240101.120000-3-sources.jar"
            ))
        );
    }

    #[test]
    fn paths_outside_the_layout_are_refused() {
        for bad in [
            "org/../lib/1.0/lib-1.0.jar",
            "org/example/lib/1.0/../lib-1.0.jar",
            "org%2F..%2Fexample/lib/1.0/lib-1.0.jar",
            "org/%2e%2e/lib/1.0/lib-1.0.jar",
            "org//lib/1.0/lib-1.0.jar",
            "org/example/lib/1.0/",
            "org/ex ample/lib/1.0/lib-1.0.jar",
            "lib/1.0/lib-1.0.jar",
            "lib/maven-metadata.xml",
            "org/example/lib/1.0/other-1.0.jar",
            "org/example/lib/1.0/lib-1.1.jar",
            "org/example/lib/1.0/lib-1.0",
            "org/example/lib/1.0/lib-1.0-.jar",
            "org/example/lib/1.0/lib-1.0.jar.",
            "org/example/lib/1.1-SNAPSHOT/lib-1.1-2024.jar",
            "",
        ] {
            assert!(MavenPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_names_give_build_classifier_and_extension() {
        let parsed = ArtifactFile::parse(
            "lib",
            "1.1-SNAPSHOT",
            "lib-1.1-20240101.120000-3-sources.jar",
        )
        .expect("valid");
        assert_eq!(
            parsed.build,
            Some(Build {
                number: 3,
                timestamp: "20240101.120000".into()
            })
        );
        assert_eq!(parsed.classifier.as_deref(), Some("sources"));
        assert_eq!(parsed.extension, "jar");
        assert_eq!(
            parsed.snapshot_value("1.1-SNAPSHOT"),
            "1.1-20240101.120000-3"
        );
        let plain =
            ArtifactFile::parse("lib", "1.1-SNAPSHOT", "lib-1.1-SNAPSHOT.tar.gz").expect("valid");
        assert_eq!(plain.build, None);
        assert_eq!(plain.extension, "tar.gz");
        assert_eq!(plain.snapshot_value("1.1-SNAPSHOT"), "1.1-SNAPSHOT");
        let release = ArtifactFile::parse("lib", "1.0", "lib-1.0.pom").expect("valid");
        assert_eq!((release.build, release.classifier), (None, None));
    }
}
