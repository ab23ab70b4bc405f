//! The repository metadata of RPM packages as createrepo_c writes it: each package's entry of
//! `primary.xml` (name, version, checksum, sizes, location, dependencies, the "primary" files),
//! `filelists.xml` (every file) and `other.xml` (the newest changelog entries), and the
//! `repomd.xml` that lists the three files with their checksums.

use super::header::{Dependency, RpmPackage};

/// Changelog entries `other.xml` keeps per package (createrepo_c's default).
const CHANGELOG_LIMIT: usize = 10;

/// Requires flags that make a dependency needed before install (`pre="1"`): PREREQ, SCRIPT_PRE
/// and SCRIPT_POST.
const PRE_FLAGS: u64 = 64 | 512 | 1024;

/// `text` escaped for XML text and attribute values, without the control characters XML 1.0
/// does not allow.
pub fn escape(text: &str) -> String {
    let allowed: String = text
        .chars()
        .filter(|c| (*c as u32) >= 0x20 || matches!(c, '\t' | '\n' | '\r'))
        .collect();
    quick_xml::escape::escape(allowed.as_str()).into_owned()
}

/// The three metadata files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetadataFile {
    Primary,
    Filelists,
    Other,
}

impl MetadataFile {
    pub const ALL: [MetadataFile; 3] = [
        MetadataFile::Primary,
        MetadataFile::Filelists,
        MetadataFile::Other,
    ];

    /// `primary`, `filelists`, `other`: its `data type` in `repomd.xml`.
    pub fn kind(self) -> &'static str {
        match self {
            MetadataFile::Primary => "primary",
            MetadataFile::Filelists => "filelists",
            MetadataFile::Other => "other",
        }
    }

    /// The file's text before its packages, given how many there are.
    pub fn header(self, packages: u64) -> String {
        let root = match self {
            MetadataFile::Primary => {
                "metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\""
            }
            MetadataFile::Filelists => {
                "filelists xmlns=\"http://linux.duke.edu/metadata/filelists\""
            }
            MetadataFile::Other => "otherdata xmlns=\"http://linux.duke.edu/metadata/other\"",
        };
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} packages=\"{packages}\">\n")
    }

    /// The file's text after its packages.
    pub fn footer(self) -> &'static str {
        match self {
            MetadataFile::Primary => "</metadata>\n",
            MetadataFile::Filelists => "</filelists>\n",
            MetadataFile::Other => "</otherdata>\n",
        }
    }
}

/// `[epoch:]version[-release]` split as createrepo_c splits it (epoch `0` when absent); `None`
/// for an epoch that is not a number.
fn split_evr(evr: &str) -> Option<(String, String, Option<String>)> {
    let (epoch, rest) = match evr.split_once(':') {
        Some((epoch, rest)) if epoch.bytes().all(|b| b.is_ascii_digit()) && !epoch.is_empty() => {
            (epoch.to_string(), rest)
        }
        Some(_) => return None,
        None => ("0".to_string(), evr),
    };
    Some(match rest.split_once('-') {
        Some((version, release)) => (epoch, version.to_string(), Some(release.to_string())),
        None => (epoch, rest.to_string(), None),
    })
}

/// rpm's comparison flags as the metadata spells them.
fn flag_name(flags: u64) -> Option<&'static str> {
    match flags & 0xf {
        2 => Some("LT"),
        4 => Some("GT"),
        8 => Some("EQ"),
        10 => Some("LE"),
        12 => Some("GE"),
        _ => None,
    }
}

/// One `<rpm:entry>`, or `None` for a dependency createrepo_c drops (an epoch that is not a
/// number).
fn entry(dependency: &Dependency, pre: bool) -> Option<String> {
    let mut text = format!("      <rpm:entry name=\"{}\"", escape(&dependency.name));
    if let Some(flags) = flag_name(dependency.flags)
        && !dependency.version.is_empty()
    {
        let (epoch, version, release) = split_evr(&dependency.version)?;
        text.push_str(&format!(
            " flags=\"{flags}\" epoch=\"{}\" ver=\"{}\"",
            escape(&epoch),
            escape(&version)
        ));
        if let Some(release) = release {
            text.push_str(&format!(" rel=\"{}\"", escape(&release)));
        }
    }
    if pre {
        text.push_str(" pre=\"1\"");
    }
    text.push_str("/>\n");
    Some(text)
}

/// A dependency list element (nothing when empty).
fn dependency_list(element: &str, entries: Vec<String>) -> String {
    if entries.is_empty() {
        return String::new();
    }
    format!(
        "    <rpm:{element}>\n{}    </rpm:{element}>\n",
        entries.concat()
    )
}

/// Whether `path` is a "primary" file (listed in `primary.xml`, so that file requirements on it
/// resolve without `filelists.xml`).
fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path == "/usr/lib/sendmail" || path.contains("bin/")
}

/// A `<file>` element.
fn file_element(path: &str, directory: bool, ghost: bool) -> String {
    let kind = if directory {
        " type=\"dir\""
    } else if ghost {
        " type=\"ghost\""
    } else {
        ""
    };
    format!("  <file{kind}>{}</file>\n", escape(path))
}

/// The `<version>` element.
fn version_element(package: &RpmPackage) -> String {
    format!(
        "<version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>",
        package.epoch.unwrap_or(0),
        escape(&package.version),
        escape(&package.release)
    )
}

/// The package's requirements as the metadata lists them: without `rpmlib(...)` ones, those it
/// satisfies itself (its own primary files, its own provides) and exact duplicates.
fn listed_requires(package: &RpmPackage) -> Vec<String> {
    let own_files: std::collections::HashSet<&str> = package
        .files
        .iter()
        .map(|file| file.path.as_str())
        .filter(|path| is_primary_file(path))
        .collect();
    let own_provides: std::collections::HashSet<(&str, u64, &str)> = package
        .provides
        .iter()
        .map(|p| (p.name.as_str(), p.flags & 0xf, p.version.as_str()))
        .collect();
    let mut seen = std::collections::HashSet::new();
    package
        .requires
        .iter()
        .filter(|r| !r.name.starts_with("rpmlib("))
        .filter(|r| !own_files.contains(r.name.as_str()))
        .filter(|r| !own_provides.contains(&(r.name.as_str(), r.flags & 0xf, r.version.as_str())))
        .filter_map(|r| entry(r, r.flags & PRE_FLAGS != 0))
        .filter(|text| seen.insert(text.clone()))
        .collect()
}

/// The entries of one dependency kind.
fn entries(dependencies: &[Dependency]) -> Vec<String> {
    dependencies
        .iter()
        .filter_map(|d| entry(d, false))
        .collect()
}

/// The package's entry of `primary.xml`: `sha256` and `size` are the file's, `location` its path
/// from the repository root, `time` when it was stored (unix seconds).
pub fn primary(package: &RpmPackage, sha256: &str, size: u64, location: &str, time: u64) -> String {
    let mut files = String::new();
    for file in package.files.iter().filter(|f| is_primary_file(&f.path)) {
        files.push_str("  ");
        files.push_str(&file_element(&file.path, file.directory, file.ghost));
    }
    format!(
        "<package type=\"rpm\">\n  <name>{name}</name>\n  <arch>{arch}</arch>\n  {version}\n  \
         <checksum type=\"sha256\" pkgid=\"YES\">{sha256}</checksum>\n  <summary>{summary}</summary>\n  \
         <description>{description}</description>\n  <packager>{packager}</packager>\n  <url>{url}</url>\n  \
         <time file=\"{time}\" build=\"{build}\"/>\n  \
         <size package=\"{size}\" installed=\"{installed}\" archive=\"{archive}\"/>\n  \
         <location href=\"{location}\"/>\n  <format>\n    <rpm:license>{license}</rpm:license>\n    \
         <rpm:vendor>{vendor}</rpm:vendor>\n    <rpm:group>{group}</rpm:group>\n    \
         <rpm:buildhost>{host}</rpm:buildhost>\n    <rpm:sourcerpm>{source}</rpm:sourcerpm>\n    \
         <rpm:header-range start=\"{start}\" end=\"{end}\"/>\n{provides}{requires}{conflicts}{obsoletes}\
         {suggests}{enhances}{recommends}{supplements}{files}  </format>\n</package>\n",
        name = escape(&package.name),
        arch = escape(&package.arch),
        version = version_element(package),
        summary = escape(&package.summary),
        description = escape(&package.description),
        packager = escape(&package.packager),
        url = escape(&package.url),
        build = package.build_time,
        installed = package.installed_size,
        archive = package.archive_size,
        location = escape(location),
        license = escape(&package.license),
        vendor = escape(&package.vendor),
        group = escape(&package.group),
        host = escape(&package.build_host),
        source = escape(&package.source_rpm),
        start = package.header_range.0,
        end = package.header_range.1,
        provides = dependency_list("provides", entries(&package.provides)),
        requires = dependency_list("requires", listed_requires(package)),
        conflicts = dependency_list("conflicts", entries(&package.conflicts)),
        obsoletes = dependency_list("obsoletes", entries(&package.obsoletes)),
        suggests = dependency_list("suggests", entries(&package.suggests)),
        enhances = dependency_list("enhances", entries(&package.enhances)),
        recommends = dependency_list("recommends", entries(&package.recommends)),
        supplements = dependency_list("supplements", entries(&package.supplements)),
    )
}

/// The `<package>` opening of `filelists.xml` and `other.xml`.
fn package_opening(package: &RpmPackage, sha256: &str) -> String {
    format!(
        "<package pkgid=\"{sha256}\" name=\"{}\" arch=\"{}\">\n  {}\n",
        escape(&package.name),
        escape(&package.arch),
        version_element(package)
    )
}

/// The package's entry of `filelists.xml`: every file.
pub fn filelists(package: &RpmPackage, sha256: &str) -> String {
    let mut text = package_opening(package, sha256);
    for file in &package.files {
        text.push_str(&file_element(&file.path, file.directory, file.ghost));
    }
    text.push_str("</package>\n");
    text
}

/// The package's entry of `other.xml`: its newest changelog entries, oldest first.
pub fn other(package: &RpmPackage, sha256: &str) -> String {
    let mut text = package_opening(package, sha256);
    for change in package.changelog.iter().take(CHANGELOG_LIMIT).rev() {
        text.push_str(&format!(
            "  <changelog author=\"{}\" date=\"{}\">{}</changelog>\n",
            escape(&change.author),
            change.time,
            escape(&change.text)
        ));
    }
    text.push_str("</package>\n");
    text
}

/// One metadata file as `repomd.xml` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub file: MetadataFile,
    /// Its path from the repository root (`repodata/<sha256>-primary.xml.gz`).
    pub location: String,
    pub sha256: String,
    pub size: u64,
    pub open_sha256: String,
    pub open_size: u64,
}

/// `repomd.xml` over `listed`, at `revision` (unix seconds).
pub fn repomd(listed: &[Listed], revision: u64) -> String {
    let mut text = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" \
         xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n  <revision>{revision}</revision>\n"
    );
    for data in listed {
        text.push_str(&format!(
            "  <data type=\"{kind}\">\n    <checksum type=\"sha256\">{sha256}</checksum>\n    \
             <open-checksum type=\"sha256\">{open}</open-checksum>\n    <location href=\"{location}\"/>\n    \
             <timestamp>{revision}</timestamp>\n    <size>{size}</size>\n    <open-size>{open_size}</open-size>\n  \
             </data>\n",
            kind = data.file.kind(),
            sha256 = data.sha256,
            open = data.open_sha256,
            location = escape(&data.location),
            size = data.size,
            open_size = data.open_size,
        ));
    }
    text.push_str("</repomd>\n");
    text
}

#[cfg(test)]
mod tests {
    use super::super::header::{Change, PackageFile};
    use super::*;

    fn package() -> RpmPackage {
        let dependency = |name: &str, flags: u64, version: &str| Dependency {
            name: name.into(),
            flags,
            version: version.into(),
        };
        RpmPackage {
            name: "testa".into(),
            version: "1.2.3".into(),
            release: "4".into(),
            arch: "noarch".into(),
            summary: "Test A & <friends>".into(),
            provides: vec![dependency("testa", 8, "1.2.3-4")],
            requires: vec![
                dependency("/bin/sh", 512, ""),
                dependency("/bin/sh", 768, ""),
                dependency("testb", 12, "1:2.0-1"),
                dependency("rpmlib(CompressedFileNames)", 16777226, "3.0.4-1"),
                dependency("testa", 8, "1.2.3-4"),
                dependency("/usr/bin/testa", 0, ""),
            ],
            files: vec![
                PackageFile {
                    path: "/usr/bin/testa".into(),
                    directory: false,
                    ghost: false,
                },
                PackageFile {
                    path: "/usr/share/testa/data.txt".into(),
                    directory: false,
                    ghost: false,
                },
            ],
            changelog: vec![
                Change {
                    time: 2,
                    author: "B".into(),
                    text: "- second".into(),
                },
                Change {
                    time: 1,
                    author: "A".into(),
                    text: "- first".into(),
                },
            ],
            ..RpmPackage::default()
        }
    }

    #[test]
    fn primary_entries_follow_createrepo_c() {
        let text = primary(&package(), "ab", 10, "Packages/testa-1.2.3-4.noarch.rpm", 5);
        assert!(text.contains("<summary>Test A &amp; &lt;friends&gt;</summary>"));
        assert!(text.contains("<version epoch=\"0\" ver=\"1.2.3\" rel=\"4\"/>"));
        assert!(text.contains(
            "<rpm:entry name=\"testa\" flags=\"EQ\" epoch=\"0\" ver=\"1.2.3\" rel=\"4\"/>"
        ));
        assert!(text.contains(
            "<rpm:entry name=\"testb\" flags=\"GE\" epoch=\"1\" ver=\"2.0\" rel=\"1\"/>"
        ));
        // Once, with pre; no rpmlib(), no self-provided or self-contained requirement.
        assert_eq!(text.matches("name=\"/bin/sh\" pre=\"1\"").count(), 1);
        assert!(!text.contains("rpmlib("));
        assert!(!text.contains("name=\"/usr/bin/testa\""));
        assert_eq!(text.matches("name=\"testa\"").count(), 1);
        assert!(text.contains("<file>/usr/bin/testa</file>"));
        assert!(!text.contains("data.txt"));
        let files = filelists(&package(), "ab");
        assert!(files.contains("data.txt") && files.contains("pkgid=\"ab\""));
        let other = other(&package(), "ab");
        assert!(other.find("- first").expect("first") < other.find("- second").expect("second"));
    }

    #[test]
    fn versions_split_as_createrepo_c_splits_them() {
        assert_eq!(
            split_evr("1:2.0-1"),
            Some(("1".into(), "2.0".into(), Some("1".into())))
        );
        assert_eq!(split_evr("1.2"), Some(("0".into(), "1.2".into(), None)));
        assert_eq!(split_evr("x:1"), None);
        assert_eq!(escape("a\u{1}\"<b"), "a&quot;&lt;b");
    }
}
