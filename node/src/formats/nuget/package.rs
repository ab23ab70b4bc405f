//! A `.nupkg` read as NuGet reads one: a zip with exactly one `.nuspec` at its root, named after
//! the package's id, whose `package/metadata` says that id, the version, authors, description and
//! dependencies (flat, or in `group`s per target framework). Every entry's path is checked to stay
//! inside the archive.

use std::io::{Read, Seek};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde::{Deserialize, Serialize};

/// The largest `.nuspec` read.
const NUSPEC_LIMIT: u64 = 4 * 1024 * 1024;

/// What a package's `.nuspec` says, as the feeds render it (stored as JSON per version).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageMetadata {
    /// The id as its author spells it (ids compare case-insensitively).
    pub id: String,
    /// The version as written in the `.nuspec`.
    pub version: String,
    pub authors: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_url: Option<String>,
    /// A license expression (`<license type="expression">`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copyright: Option<String>,
    #[serde(default)]
    pub require_license_acceptance: bool,
    #[serde(default)]
    pub dependency_groups: Vec<DependencyGroup>,
}

/// The dependencies of one target framework (`None`: every framework).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_framework: Option<String>,
    pub dependencies: Vec<Dependency>,
}

/// One dependency: an id and a version range in NuGet's syntax (`1.0`, `[1.0,2.0)`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub id: String,
    #[serde(default)]
    pub range: String,
}

/// The metadata of the `.nupkg` `archive` and its `.nuspec`'s bytes.
pub fn read_nupkg(archive: impl Read + Seek) -> Result<(PackageMetadata, Vec<u8>), String> {
    let mut zip = zip::ZipArchive::new(archive).map_err(|e| format!("not a zip archive: {e}"))?;
    let mut nuspec: Option<(usize, String)> = None;
    for index in 0..zip.len() {
        let entry = zip.by_index(index).map_err(|e| e.to_string())?;
        let path = entry.enclosed_name().ok_or_else(|| {
            format!(
                "{:?} lies outside the archive",
                entry.name().unwrap_or_default()
            )
        })?;
        let at_root = path.components().count() == 1;
        if at_root
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("nuspec"))
        {
            if nuspec.is_some() {
                return Err("it has more than one .nuspec at its root".into());
            }
            let stem = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            nuspec = Some((index, stem));
        }
    }
    let (index, stem) = nuspec.ok_or("it has no .nuspec at its root")?;
    let mut bytes = Vec::new();
    zip.by_index(index)
        .map_err(|e| e.to_string())?
        .take(NUSPEC_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("the .nuspec: {e}"))?;
    if bytes.len() as u64 > NUSPEC_LIMIT {
        return Err("the .nuspec is larger than 4 MiB".into());
    }
    let metadata = parse_nuspec(&bytes)?;
    if !stem.eq_ignore_ascii_case(&metadata.id) {
        return Err(format!(
            "its manifest {stem}.nuspec is not named after the id {} it gives",
            metadata.id
        ));
    }
    Ok((metadata, bytes))
}

/// The `.nuspec` of the `.nupkg` `archive`, as stored in it.
pub fn nuspec_bytes(archive: impl Read + Seek) -> Result<Vec<u8>, String> {
    read_nupkg(archive).map(|(_, bytes)| bytes)
}

fn attribute(element: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, String> {
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|e| format!("the .nuspec: {e}"))?;
        if attribute.key.local_name().as_ref() == name {
            let value = attribute
                .unescape_value()
                .map_err(|e| format!("the .nuspec: {e}"))?;
            return Ok(Some(value.trim().to_string()));
        }
    }
    Ok(None)
}

/// The metadata a `.nuspec` document holds; id, version, authors and description are required.
pub fn parse_nuspec(xml: &[u8]) -> Result<PackageMetadata, String> {
    let invalid = |e: &dyn std::fmt::Display| format!("the .nuspec is not valid XML: {e}");
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut metadata = PackageMetadata::default();
    let mut root_seen = false;
    loop {
        let event = reader.read_event().map_err(|e| invalid(&e))?;
        let (start, empty) = match &event {
            Event::Start(start) => (Some(start), false),
            Event::Empty(start) => (Some(start), true),
            _ => (None, false),
        };
        if let Some(start) = start {
            let name = start.local_name().as_ref().to_vec();
            if path.is_empty() {
                if name != b"package" || root_seen {
                    return Err("the .nuspec's root element is not <package>".into());
                }
                root_seen = true;
            }
            let inside: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
            match (inside.as_slice(), name.as_slice()) {
                ([b"package", b"metadata", b"dependencies"], b"group") => {
                    metadata.dependency_groups.push(DependencyGroup {
                        target_framework: attribute(start, b"targetFramework")?
                            .filter(|t| !t.is_empty()),
                        dependencies: Vec::new(),
                    });
                }
                ([b"package", b"metadata", b"dependencies", ..], b"dependency") => {
                    let id = attribute(start, b"id")?
                        .filter(|id| !id.is_empty())
                        .ok_or("a <dependency> has no id")?;
                    let range = attribute(start, b"version")?.unwrap_or_default();
                    let in_group = inside.len() == 4;
                    if !in_group
                        && metadata
                            .dependency_groups
                            .last()
                            .is_none_or(|group| group.target_framework.is_some())
                    {
                        metadata.dependency_groups.push(DependencyGroup::default());
                    }
                    if let Some(group) = metadata.dependency_groups.last_mut() {
                        group.dependencies.push(Dependency { id, range });
                    }
                }
                _ => {}
            }
            if !empty {
                path.push(name);
            }
            continue;
        }
        match event {
            Event::End(_) => {
                path.pop().ok_or("the .nuspec closes more than it opens")?;
            }
            Event::Text(text) => {
                let text = text.unescape().map_err(|e| invalid(&e))?.trim().to_string();
                let names: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
                let [b"package", b"metadata", field] = names.as_slice() else {
                    continue;
                };
                let slot = match *field {
                    b"id" => {
                        metadata.id = text;
                        continue;
                    }
                    b"version" => {
                        metadata.version = text;
                        continue;
                    }
                    b"authors" => {
                        metadata.authors = text;
                        continue;
                    }
                    b"description" => {
                        metadata.description = text;
                        continue;
                    }
                    b"requireLicenseAcceptance" => {
                        metadata.require_license_acceptance = text.eq_ignore_ascii_case("true");
                        continue;
                    }
                    b"title" => &mut metadata.title,
                    b"summary" => &mut metadata.summary,
                    b"tags" => &mut metadata.tags,
                    b"projectUrl" => &mut metadata.project_url,
                    b"licenseUrl" => &mut metadata.license_url,
                    b"license" => &mut metadata.license,
                    b"iconUrl" => &mut metadata.icon_url,
                    b"releaseNotes" => &mut metadata.release_notes,
                    b"copyright" => &mut metadata.copyright,
                    _ => continue,
                };
                *slot = Some(text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen || !path.is_empty() {
        return Err("the .nuspec is not a complete <package> document".into());
    }
    for (field, value) in [
        ("id", &metadata.id),
        ("version", &metadata.version),
        ("authors", &metadata.authors),
        ("description", &metadata.description),
    ] {
        if value.is_empty() {
            return Err(format!("the .nuspec has no <{field}>"));
        }
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nuspecs_are_read_with_grouped_and_flat_dependencies() {
        let grouped = br#"<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>Arca.Greet</id><version>1.2.0-Beta</version><authors>Arca &amp; co</authors>
    <description>Says hello.</description><tags>greet hello</tags>
    <license type="expression">MIT</license>
    <dependencies>
      <group targetFramework=".NETStandard2.0"><dependency id="Arca.Words" version="[1.0,2.0)" /></group>
      <group />
    </dependencies>
  </metadata>
</package>"#;
        let metadata = parse_nuspec(grouped).unwrap();
        assert_eq!(metadata.id, "Arca.Greet");
        assert_eq!(metadata.version, "1.2.0-Beta");
        assert_eq!(metadata.authors, "Arca & co");
        assert_eq!(metadata.license.as_deref(), Some("MIT"));
        assert_eq!(metadata.dependency_groups.len(), 2);
        assert_eq!(
            metadata.dependency_groups[0].target_framework.as_deref(),
            Some(".NETStandard2.0")
        );
        assert_eq!(
            metadata.dependency_groups[0].dependencies[0].range,
            "[1.0,2.0)"
        );

        let flat = br#"<package><metadata><id>A</id><version>1.0</version><authors>x</authors>
<description>d</description><dependencies><dependency id="B" version="1.0"/><dependency id="C"/></dependencies>
</metadata></package>"#;
        let metadata = parse_nuspec(flat).unwrap();
        assert_eq!(metadata.dependency_groups.len(), 1);
        assert_eq!(metadata.dependency_groups[0].dependencies.len(), 2);
        assert_eq!(metadata.dependency_groups[0].target_framework, None);

        assert!(parse_nuspec(b"<package><metadata><id>A</id></metadata></package>").is_err());
        assert!(parse_nuspec(b"<other/>").is_err());
        assert!(parse_nuspec(b"<package><metadata>").is_err());
    }
}
