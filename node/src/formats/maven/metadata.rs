//! The `maven-metadata.xml` files the registry maintains: artifact level (every version, `latest`,
//! `release`, `lastUpdated`) and SNAPSHOT version level (the newest timestamped build and, per
//! classifier and extension, the file of that build).
//!
//! Both are built from plain descriptions of what a repository holds, not from where it is held, and
//! depend only on those inputs, so the same state always gives the same bytes (and checksums).

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::{Reader, Writer};

use super::layout::{ArtifactFile, Coordinates, is_snapshot};
use crate::ecosystems::maven_version;

/// `yyyyMMddHHmmss` (UTC) of a unix time in milliseconds, as `lastUpdated` and `updated` carry.
pub fn maven_timestamp(unix_ms: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(unix_ms);
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

type XmlWriter = Writer<Vec<u8>>;

fn text_element(writer: &mut XmlWriter, name: &str, text: &str) -> std::io::Result<()> {
    writer
        .create_element(name)
        .write_text_content(BytesText::new(text))
        .map(drop)
}

/// Writes `<metadata>`: the coordinates, the version when given, then `<versioning>`.
fn document(
    coordinates: &Coordinates,
    version: Option<&str>,
    versioning: impl FnOnce(&mut XmlWriter) -> std::io::Result<()>,
) -> std::io::Result<Vec<u8>> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    writer
        .create_element("metadata")
        .with_attribute(("modelVersion", "1.1.0"))
        .write_inner_content(|w| {
            text_element(w, "groupId", &coordinates.group_id)?;
            text_element(w, "artifactId", &coordinates.artifact_id)?;
            if let Some(version) = version {
                text_element(w, "version", version)?;
            }
            w.create_element("versioning")
                .write_inner_content(versioning)
                .map(drop)
        })?;
    let mut bytes = writer.into_inner();
    bytes.push(b'\n');
    Ok(bytes)
}

/// The artifact-level metadata of an artifact holding `versions`, last changed at `updated_ms`.
/// Versions are listed in Maven order; `latest` is the highest, `release` the highest that is not a
/// SNAPSHOT.
pub fn artifact_metadata<'a>(
    coordinates: &Coordinates,
    versions: impl IntoIterator<Item = &'a str>,
    updated_ms: u64,
) -> std::io::Result<Vec<u8>> {
    artifact_metadata_at(coordinates, versions, &maven_timestamp(updated_ms))
}

/// [`artifact_metadata`] with `lastUpdated` given as Maven writes it (`yyyyMMddHHmmss`). A version
/// listed twice is listed once.
pub fn artifact_metadata_at<'a>(
    coordinates: &Coordinates,
    versions: impl IntoIterator<Item = &'a str>,
    last_updated: &str,
) -> std::io::Result<Vec<u8>> {
    let mut versions: Vec<&str> = versions.into_iter().collect();
    versions.sort_by(|a, b| maven_version::compare(a, b).then_with(|| a.cmp(b)));
    versions.dedup();
    let latest = versions.last();
    let release = versions.iter().rev().find(|v| !is_snapshot(v));
    document(coordinates, None, |w| {
        if let Some(latest) = latest {
            text_element(w, "latest", latest)?;
        }
        if let Some(release) = release {
            text_element(w, "release", release)?;
        }
        w.create_element("versions").write_inner_content(|w| {
            versions
                .iter()
                .try_for_each(|v| text_element(w, "version", v))
        })?;
        text_element(w, "lastUpdated", last_updated)
    })
}

/// What a `maven-metadata.xml` from elsewhere (an upstream, another registry) says that merging
/// needs: the listed versions and `lastUpdated`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadMetadata {
    /// `versioning/versions/version`, in document order.
    pub versions: Vec<String>,
    /// `versioning/lastUpdated` (`yyyyMMddHHmmss`), when present.
    pub last_updated: Option<String>,
}

/// Reads a `maven-metadata.xml` (any prefix on element names is ignored); `None` when it is not
/// well-formed XML with a `<metadata>` root.
pub fn read_metadata(xml: &[u8]) -> Option<ReadMetadata> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut read = ReadMetadata::default();
    let mut root_seen = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_vec();
                if path.is_empty() {
                    if name != b"metadata" || root_seen {
                        return None;
                    }
                    root_seen = true;
                }
                path.push(name);
            }
            Event::End(_) => {
                path.pop()?;
            }
            Event::Text(text) => {
                let text = text.unescape().ok()?;
                let text = text.trim();
                let names: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
                match names.as_slice() {
                    [b"metadata", b"versioning", b"versions", b"version"] if !text.is_empty() => {
                        read.versions.push(text.to_string());
                    }
                    [b"metadata", b"versioning", b"lastUpdated"] if !text.is_empty() => {
                        read.last_updated = Some(text.to_string());
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (root_seen && path.is_empty()).then_some(read)
}

/// One stored file of a SNAPSHOT version: what its name says and when it was committed.
pub struct SnapshotFile {
    /// The parsed file name.
    pub file: ArtifactFile,
    /// Commit time, unix milliseconds.
    pub updated_ms: u64,
}

/// The version-level metadata of SNAPSHOT `version` holding `files`, last changed at `updated_ms`:
/// the newest timestamped build (timestamp and build number) and, per classifier and extension, the
/// newest file.
pub fn snapshot_metadata(
    coordinates: &Coordinates,
    version: &str,
    files: &[SnapshotFile],
    updated_ms: u64,
) -> std::io::Result<Vec<u8>> {
    let newest_build = files.iter().filter_map(|f| f.file.build.as_ref()).max();
    // Per (classifier, extension): the newest file; timestamped builds win over a plain
    // `-SNAPSHOT` file, a higher build over a lower one.
    let mut newest: BTreeMap<(Option<&str>, &str), &SnapshotFile> = BTreeMap::new();
    for file in files {
        let key = (
            file.file.classifier.as_deref(),
            file.file.extension.as_str(),
        );
        let entry = newest.entry(key).or_insert(file);
        if file.file.build > entry.file.build {
            *entry = file;
        }
    }
    document(coordinates, Some(version), |w| {
        // Without a timestamped build (only plain `-SNAPSHOT` files) there is no `<snapshot>`, and
        // clients ask for the plain file names.
        if let Some(build) = newest_build {
            w.create_element("snapshot").write_inner_content(|w| {
                text_element(w, "timestamp", &build.timestamp)?;
                text_element(w, "buildNumber", &build.number.to_string())
            })?;
        }
        text_element(w, "lastUpdated", &maven_timestamp(updated_ms))?;
        w.create_element("snapshotVersions")
            .write_inner_content(|w| {
                newest.values().try_for_each(|file| {
                    w.create_element("snapshotVersion")
                        .write_inner_content(|w| {
                            if let Some(classifier) = &file.file.classifier {
                                text_element(w, "classifier", classifier)?;
                            }
                            text_element(w, "extension", &file.file.extension)?;
                            text_element(w, "value", &file.file.snapshot_value(version))?;
                            text_element(w, "updated", &maven_timestamp(file.updated_ms))
                        })
                        .map(drop)
                })
            })?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinates() -> Coordinates {
        Coordinates {
            group_id: "org.example".into(),
            artifact_id: "lib<&>".into(),
        }
    }

    #[test]
    fn timestamps_are_utc_digits() {
        assert_eq!(maven_timestamp(0), "19700101000000");
        assert_eq!(maven_timestamp(1_704_110_400_999), "20240101120000");
    }

    #[test]
    fn artifact_metadata_orders_versions_and_escapes() {
        let xml = artifact_metadata(
            &coordinates(),
            ["1.10", "1.1-SNAPSHOT", "1.2", "2.0-SNAPSHOT"],
            0,
        )
        .expect("xml");
        let xml = String::from_utf8(xml).expect("utf-8");
        assert!(
            xml.contains("<artifactId>lib&lt;&amp;&gt;</artifactId>"),
            "{xml}"
        );
        assert!(xml.contains("<latest>2.0-SNAPSHOT</latest>"), "{xml}");
        assert!(xml.contains("<release>1.10</release>"), "{xml}");
        let order: Vec<usize> = ["1.1-SNAPSHOT", "1.2", "1.10", "2.0-SNAPSHOT"]
            .iter()
            .map(|v| {
                xml.find(&format!("<version>{v}</version>"))
                    .expect("listed")
            })
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{xml}");
        assert!(xml.contains("<lastUpdated>19700101000000</lastUpdated>"));
    }

    #[test]
    fn metadata_from_elsewhere_is_read_and_merged() {
        let upstream = br#"<?xml version="1.0" encoding="UTF-8"?>
<metadata modelVersion="1.1.0">
  <groupId>org.example</groupId>
  <artifactId>lib</artifactId>
  <versioning>
    <latest>2.0</latest>
    <release>2.0</release>
    <versions>
      <version>1.0</version>
      <version> 2.0 </version>
    </versions>
    <lastUpdated>20240102030405</lastUpdated>
  </versioning>
</metadata>
"#;
        let read = read_metadata(upstream).expect("well formed");
        assert_eq!(read.versions, ["1.0", "2.0"]);
        assert_eq!(read.last_updated.as_deref(), Some("20240102030405"));
        assert_eq!(
            read_metadata(b"<metadata><versioning/></metadata>"),
            Some(ReadMetadata::default())
        );
        assert_eq!(read_metadata(b"<html><body>not found</body></html>"), None);
        assert_eq!(read_metadata(b"<metadata><versioning>"), None);
        assert_eq!(read_metadata(b"not xml at all"), None);

        let coordinates = Coordinates {
            group_id: "org.example".into(),
            artifact_id: "lib".into(),
        };
        let xml = artifact_metadata_at(
            &coordinates,
            ["2.0", "1.0", "3.0-SNAPSHOT", "2.0", "10.0-rc1"],
            "20240102030405",
        )
        .expect("xml");
        let xml = String::from_utf8(xml).expect("utf-8");
        assert_eq!(xml.matches("<version>2.0</version>").count(), 1, "{xml}");
        assert!(xml.contains("<latest>10.0-rc1</latest>"), "{xml}");
        assert!(xml.contains("<release>10.0-rc1</release>"), "{xml}");
        assert!(
            xml.contains("<lastUpdated>20240102030405</lastUpdated>"),
            "{xml}"
        );
        let reread = read_metadata(xml.as_bytes()).expect("our own output reads back");
        assert_eq!(reread.versions, ["1.0", "2.0", "3.0-SNAPSHOT", "10.0-rc1"]);
    }

    #[test]
    fn snapshot_metadata_names_the_newest_build_per_file_kind() {
        let file = |name: &str, at| SnapshotFile {
            file: ArtifactFile::parse("lib", "1.1-SNAPSHOT", name).expect("valid"),
            updated_ms: at,
        };
        let files = [
            file("lib-1.1-20240101.120000-1.jar", 1000),
            file("lib-1.1-20240101.120000-1.pom", 1000),
            file("lib-1.1-20240102.120000-2.jar", 2000),
            file("lib-1.1-20240102.120000-2-sources.jar", 2000),
        ];
        let coordinates = Coordinates {
            group_id: "org.example".into(),
            artifact_id: "lib".into(),
        };
        let xml = snapshot_metadata(&coordinates, "1.1-SNAPSHOT", &files, 2000).expect("xml");
        let xml = String::from_utf8(xml).expect("utf-8");
        assert!(xml.contains("<version>1.1-SNAPSHOT</version>"), "{xml}");
        assert!(
            xml.contains("<timestamp>20240102.120000</timestamp>"),
            "{xml}"
        );
        assert!(xml.contains("<buildNumber>2</buildNumber>"), "{xml}");
        assert!(
            xml.contains("<value>1.1-20240101.120000-1</value>"),
            "{xml}"
        );
        assert_eq!(
            xml.matches("<value>1.1-20240102.120000-2</value>").count(),
            2,
            "{xml}"
        );
        assert!(xml.contains("<classifier>sources</classifier>"), "{xml}");
        assert_eq!(xml.matches("<snapshotVersion>").count(), 3, "{xml}");

        let plain = [file("lib-1.1-SNAPSHOT.jar", 1000)];
        let xml = snapshot_metadata(&coordinates, "1.1-SNAPSHOT", &plain, 1000).expect("xml");
        let xml = String::from_utf8(xml).expect("utf-8");
        assert!(!xml.contains("<snapshot>"), "{xml}");
        assert!(xml.contains("<value>1.1-SNAPSHOT</value>"), "{xml}");
    }
}
