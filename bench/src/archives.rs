//! Tiny but well-formed packages for the `packages` and `formats` benchmarks: npm tarballs (a gzip'd tar holding
//! `package/package.json` and `package/index.js`) with the publish document npm sends, and pure-Python
//! wheels (`<module>/__init__.py` and a `.dist-info` with `METADATA`, `WHEEL` and `RECORD`), and the
//! packages of the other formats (crates, charts, Go module zips, conda packages, Composer zips,
//! `.nupkg`s, Hugging Face commits, gems and Debian `.deb`s).

use std::io::{Cursor, Write};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// A generated npm version: its tarball and the document that publishes it.
pub struct NpmVersion {
    /// The gzip'd tar.
    pub tarball: Vec<u8>,
    /// The body of `PUT /<name>`: the packument npm sends to publish this one version.
    pub publish: Vec<u8>,
}

/// Builds version `version` of the unscoped npm package `name`.
pub fn npm_version(name: &str, version: &str) -> anyhow::Result<NpmVersion> {
    let description = format!("arca-bench package {name}");
    let manifest = serde_json::json!({
        "name": name,
        "version": version,
        "description": description,
        "main": "index.js",
        "license": "MIT",
    });
    let package_json = serde_json::to_vec_pretty(&manifest)?;
    let index_js = format!("module.exports = {{ name: {name:?}, version: {version:?} }};\n");
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, bytes) in [
        ("package/package.json", package_json.as_slice()),
        ("package/index.js", index_js.as_bytes()),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        // mtime stays 0, as npm pack uses a fixed date.
        tar.append_data(&mut header, path, bytes)?;
    }
    let tarball = tar.into_inner()?.finish()?;

    let filename = format!("{name}-{version}.tgz");
    let integrity = format!("sha512-{}", STANDARD.encode(Sha512::digest(&tarball)));
    let shasum = hex::encode(Sha1::digest(&tarball));
    let mut version_manifest = manifest.clone();
    version_manifest["_id"] = format!("{name}@{version}").into();
    version_manifest["dist"] = serde_json::json!({
        "integrity": integrity,
        "shasum": shasum,
        "tarball": format!("http://registry.invalid/{name}/-/{filename}"),
    });
    let publish = serde_json::to_vec(&serde_json::json!({
        "_id": name,
        "name": name,
        "description": description,
        "dist-tags": { "latest": version },
        "versions": { version: version_manifest },
        "readme": "",
        "_attachments": {
            &filename: {
                "content_type": "application/octet-stream",
                "data": STANDARD.encode(&tarball),
                "length": tarball.len(),
            },
        },
    }))?;
    Ok(NpmVersion { tarball, publish })
}

/// A generated wheel.
pub struct Wheel {
    /// `<dist>-<version>-py3-none-any.whl`.
    pub filename: String,
    /// The zip.
    pub bytes: Vec<u8>,
    /// Lowercase hex sha256 of the zip.
    pub sha256: String,
    /// The core metadata's `Summary`.
    pub summary: String,
}

/// Builds a pure-Python wheel of version `version` of the project `project` (a normalised name:
/// lower case, `-` between words).
pub fn wheel(project: &str, version: &str) -> anyhow::Result<Wheel> {
    let dist = project.replace('-', "_");
    let summary = format!("arca-bench project {project}");
    let info = format!("{dist}-{version}.dist-info");
    let files = [
        (
            format!("{dist}/__init__.py"),
            format!("__version__ = {version:?}\n"),
        ),
        (
            format!("{info}/METADATA"),
            format!(
                "Metadata-Version: 2.1\nName: {project}\nVersion: {version}\nSummary: {summary}\n\
                 License: MIT\nRequires-Python: >=3.8\n"
            ),
        ),
        (
            format!("{info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: arca-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_owned(),
        ),
    ];
    let mut record = String::new();
    for (path, text) in &files {
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()));
        record.push_str(&format!("{path},sha256={digest},{}\n", text.len()));
    }
    record.push_str(&format!("{info}/RECORD,,\n"));

    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (path, text) in files.iter().chain([&(format!("{info}/RECORD"), record)]) {
        zip.start_file(path.as_str(), options)
            .with_context(|| format!("adding {path} to the wheel"))?;
        zip.write_all(text.as_bytes())?;
    }
    let bytes = zip.finish().context("finishing the wheel")?.into_inner();
    Ok(Wheel {
        filename: format!("{dist}-{version}-py3-none-any.whl"),
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes,
        summary,
    })
}

/// A gzip'd tar of `files` (path, content).
fn tar_gz(files: &[(String, String)]) -> anyhow::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, text) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, text.as_bytes())?;
    }
    Ok(tar.into_inner()?.finish()?)
}

/// The body `cargo publish` sends for version `version` of the crate `name` (a library with one
/// function): the metadata and the `.crate`, each after its u32 length.
pub fn crate_publish(name: &str, version: &str) -> anyhow::Result<Vec<u8>> {
    let root = format!("{name}-{version}");
    let crate_file = tar_gz(&[
        (
            format!("{root}/Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\
                 description = \"arca-bench crate {name}\"\nlicense = \"MIT\"\n"
            ),
        ),
        (
            format!("{root}/src/lib.rs"),
            format!("pub const VERSION: &str = {version:?};\n"),
        ),
    ])?;
    let metadata = serde_json::to_vec(&serde_json::json!({
        "name": name, "vers": version, "deps": [], "features": {}, "authors": [],
        "description": format!("arca-bench crate {name}"), "license": "MIT",
    }))?;
    let mut body = Vec::with_capacity(8 + metadata.len() + crate_file.len());
    body.extend_from_slice(&u32::try_from(metadata.len())?.to_le_bytes());
    body.extend_from_slice(&metadata);
    body.extend_from_slice(&u32::try_from(crate_file.len())?.to_le_bytes());
    body.extend_from_slice(&crate_file);
    Ok(body)
}

/// The archive `helm package` makes for version `version` of the chart `name` (one ConfigMap).
pub fn chart(name: &str, version: &str) -> anyhow::Result<Vec<u8>> {
    tar_gz(&[
        (
            format!("{name}/Chart.yaml"),
            format!(
                "apiVersion: v2\nname: {name}\nversion: {version}\n\
                 description: arca-bench chart {name}\ntype: application\n"
            ),
        ),
        (
            format!("{name}/values.yaml"),
            "greeting: hello\n".to_owned(),
        ),
        (
            format!("{name}/templates/configmap.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}\n".to_owned(),
        ),
    ])
}

/// The module zip of version `version` (`v1.2.0`) of the Go module `example.com/<name>`, as `go
/// mod` makes it: `go.mod` and one package file under `<module>@<version>/`.
pub fn go_module_zip(name: &str, version: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let root = format!("example.com/{name}@{version}");
    let package = name.replace('-', "_");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (path, text) in [
        (
            format!("{root}/go.mod"),
            format!("module example.com/{name}\n\ngo 1.21\n"),
        ),
        (
            format!("{root}/{package}.go"),
            format!("package {package}\n\nconst Version = {version:?}\n"),
        ),
    ] {
        zip.start_file(path, options)?;
        zip.write_all(text.as_bytes())?;
    }
    Ok(zip.finish()?.into_inner())
}

/// A `.conda` package of `name` `version` (build `0`, noarch) as conda-package-handling makes
/// one: a zip of `metadata.json` and two zstd'd tars, `info-...` (with `info/index.json`) and
/// `pkg-...` (one file).
pub fn conda_package(name: &str, version: &str) -> anyhow::Result<Vec<u8>> {
    let stem = format!("{name}-{version}-0");
    let tar_zst = |files: &[(String, String)]| -> anyhow::Result<Vec<u8>> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, text) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            tar.append_data(&mut header, path, text.as_bytes())?;
        }
        Ok(zstd::encode_all(tar.into_inner()?.as_slice(), 3)?)
    };
    let index = serde_json::json!({
        "name": name, "version": version, "build": "0", "build_number": 0, "depends": [],
        "subdir": "noarch", "noarch": "generic", "license": "MIT",
    });
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (path, bytes) in [
        (
            "metadata.json".to_owned(),
            b"{\"conda_pkg_format_version\": 2}".to_vec(),
        ),
        (
            format!("info-{stem}.tar.zst"),
            tar_zst(&[("info/index.json".to_owned(), index.to_string())])?,
        ),
        (
            format!("pkg-{stem}.tar.zst"),
            tar_zst(&[(format!("share/bench/{name}.txt"), version.to_owned())])?,
        ),
    ] {
        zip.start_file(path, stored)?;
        zip.write_all(&bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// The zip `composer archive` makes for the package `bench/<name>`: `composer.json` and one class.
pub fn composer_zip(name: &str) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    let manifest = serde_json::json!({
        "name": format!("bench/{name}"),
        "description": format!("arca-bench package {name}"),
        "autoload": { "psr-4": { "Bench\\": "src/" } },
    });
    for (path, text) in [
        ("composer.json".to_owned(), manifest.to_string()),
        (
            "src/Bench.php".to_owned(),
            format!("<?php\nnamespace Bench;\nclass Bench {{ const NAME = '{name}'; }}\n"),
        ),
    ] {
        zip.start_file(path, options)?;
        zip.write_all(text.as_bytes())?;
    }
    Ok(zip.finish()?.into_inner())
}

/// A `.nupkg` of version `version` of the package `name`: its `.nuspec` (named after the id) and
/// one content file.
pub fn nupkg(name: &str, version: &str) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    let nuspec = format!(
        "<?xml version=\"1.0\"?>\n<package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\">\
         <metadata><id>{name}</id><version>{version}</version><authors>arca-bench</authors>\
         <description>arca-bench package {name}</description></metadata></package>\n"
    );
    for (path, text) in [
        (format!("{name}.nuspec"), nuspec),
        (format!("content/{name}.txt"), format!("{name} {version}\n")),
    ] {
        zip.start_file(path, options)?;
        zip.write_all(text.as_bytes())?;
    }
    Ok(zip.finish()?.into_inner())
}

/// The NDJSON body of a Hugging Face commit adding `weights-<version>.bin` (16 KiB, sent inline as
/// the client sends regular files) to repository `bench/<name>`.
pub fn hf_commit(name: &str, version: &str) -> Vec<u8> {
    use base64::Engine as _;
    let weights: Vec<u8> = format!("{name} {version} ")
        .bytes()
        .cycle()
        .take(16 * 1024)
        .collect();
    let lines = [
        serde_json::json!({ "key": "header", "value": { "summary": format!("{name} {version}") } }),
        serde_json::json!({ "key": "file", "value": {
            "path": format!("weights-{version}.bin"),
            "content": base64::engine::general_purpose::STANDARD.encode(&weights),
            "encoding": "base64",
        } }),
    ];
    lines
        .iter()
        .map(|line| format!("{line}\n"))
        .collect::<String>()
        .into_bytes()
}

/// The `.gem` `gem build` makes for version `version` of the gem `name` (one Ruby file): a tar of
/// `metadata.gz` (the YAML specification) and `data.tar.gz`.
pub fn gem(name: &str, version: &str) -> anyhow::Result<Vec<u8>> {
    let metadata = format!(
        "--- !ruby/object:Gem::Specification\nname: {name}\nversion: !ruby/object:Gem::Version\n  \
         version: {version}\nplatform: ruby\nauthors:\n- arca-bench\ndependencies: []\n\
         licenses:\n- MIT\nsummary: arca-bench gem {name}\n"
    );
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(metadata.as_bytes())?;
    let metadata = gzip.finish()?;
    let data = tar_gz(&[(
        format!("lib/{name}.rb"),
        format!("module Bench\n  VERSION = {version:?}\nend\n"),
    )])?;
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in [("metadata.gz", metadata), ("data.tar.gz", data)] {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o444);
        tar.append_data(&mut header, path, bytes.as_slice())?;
    }
    Ok(tar.into_inner()?)
}

/// The mtime of every member of a generated `.deb`, so that the same package is the same bytes.
const DEB_MTIME: u64 = 1_700_000_000;

/// A `.deb` as `dpkg-deb --build` makes it, of version `version` of the package `name`
/// (architecture amd64) holding one small file: an `ar` archive of `debian-binary` (`2.0`),
/// `control.tar.gz` (`./control`) and `data.tar.gz` (`./usr/share/doc/<name>/README` and its
/// directories).
pub fn deb(name: &str, version: &str) -> anyhow::Result<Vec<u8>> {
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\n\
         Maintainer: Bench <b@example.invalid>\nSection: misc\nPriority: optional\n\
         Description: bench package {name}\n a benchmark package\n"
    );
    let control_tar = dot_tar_gz(&[("./", None), ("./control", Some(control.as_bytes()))])?;
    let doc = format!("./usr/share/doc/{name}/");
    let readme = format!("{doc}README");
    let text = format!("{name} {version}: a package of arca-bench debian\n");
    let data_tar = dot_tar_gz(&[
        ("./", None),
        ("./usr/", None),
        ("./usr/share/", None),
        ("./usr/share/doc/", None),
        (&doc, None),
        (&readme, Some(text.as_bytes())),
    ])?;
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &control_tar),
        ("data.tar.gz", &data_tar),
    ])
}

/// A gzip'd tar of `entries` (a path, and the content of a file or `None` for a directory), their
/// paths kept as given (`./...`, as dpkg-deb writes them; the tar crate's path setters drop `./`).
fn dot_tar_gz(entries: &[(&str, Option<&[u8]>)]) -> anyhow::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        let field = &mut header.as_old_mut().name;
        anyhow::ensure!(
            path.len() < field.len(),
            "{path:?} is too long for a tar name"
        );
        field[..path.len()].copy_from_slice(path.as_bytes());
        let content = content.unwrap_or_default();
        header.set_entry_type(if path.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        header.set_mode(if path.ends_with('/') { 0o755 } else { 0o644 });
        header.set_size(content.len() as u64);
        header.set_mtime(DEB_MTIME);
        header.set_username("root")?;
        header.set_groupname("root")?;
        header.set_cksum();
        tar.append(&header, content)?;
    }
    Ok(tar.into_inner()?.finish()?)
}

/// A Unix `ar` archive of `members` (name, bytes), in the common format dpkg reads: the magic, then
/// each member after its 60-byte header, padded to an even length with `\n`.
fn ar(members: &[(&str, &[u8])]) -> anyhow::Result<Vec<u8>> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, bytes) in members {
        anyhow::ensure!(
            name.len() <= 16,
            "{name:?} is too long for an ar member name"
        );
        let header = format!(
            "{name:<16}{DEB_MTIME:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            "100644",
            bytes.len()
        );
        debug_assert_eq!(header.len(), 60);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(bytes);
        if bytes.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    Ok(out)
}

/// rpm's header types used by [`rpm`].
const RPM_INT32: u32 = 4;
const RPM_STRING: u32 = 6;
const RPM_BIN: u32 = 7;
const RPM_STRING_ARRAY: u32 = 8;
const RPM_I18NSTRING: u32 = 9;

/// One entry of an rpm header: its tag, type, count and data.
struct RpmEntry {
    tag: u32,
    kind: u32,
    count: u32,
    data: Vec<u8>,
}

impl RpmEntry {
    fn string(tag: u32, value: &str) -> RpmEntry {
        RpmEntry::strings(tag, RPM_STRING, &[value])
    }

    fn i18n(tag: u32, value: &str) -> RpmEntry {
        RpmEntry::strings(tag, RPM_I18NSTRING, &[value])
    }

    fn array(tag: u32, values: &[&str]) -> RpmEntry {
        RpmEntry::strings(tag, RPM_STRING_ARRAY, values)
    }

    fn strings(tag: u32, kind: u32, values: &[&str]) -> RpmEntry {
        let mut data = Vec::new();
        for value in values {
            data.extend_from_slice(value.as_bytes());
            data.push(0);
        }
        RpmEntry {
            tag,
            kind,
            count: values.len() as u32,
            data,
        }
    }

    fn int32(tag: u32, value: u32) -> RpmEntry {
        RpmEntry {
            tag,
            kind: RPM_INT32,
            count: 1,
            data: value.to_be_bytes().to_vec(),
        }
    }
}

/// An rpm header (intro, index, store) of `entries` within an immutable region tagged `region`
/// (62 for the signature header, 63 for the main one): the region's entry comes first and points
/// at a 16-byte trailer ending the store, `{region, BIN, -(entries * 16), 16}`.
fn rpm_header(region: u32, mut entries: Vec<RpmEntry>) -> Vec<u8> {
    entries.sort_by_key(|entry| entry.tag);
    let count = entries.len() as u32 + 1;
    let mut index = Vec::new();
    let mut store = Vec::new();
    let mut entry = |tag: u32, kind: u32, offset: u32, count: u32| {
        for field in [tag, kind, offset, count] {
            index.extend_from_slice(&field.to_be_bytes());
        }
    };
    let mut rest = Vec::new();
    for e in &entries {
        if e.kind == RPM_INT32 {
            while !store.len().is_multiple_of(4) {
                store.push(0);
            }
        }
        rest.push((e.tag, e.kind, store.len() as u32, e.count));
        store.extend_from_slice(&e.data);
    }
    let trailer = store.len() as u32;
    for field in [region, RPM_BIN, (-(count as i32 * 16)) as u32, 16] {
        store.extend_from_slice(&field.to_be_bytes());
    }
    entry(region, RPM_BIN, trailer, 16);
    for (tag, kind, offset, count) in rest {
        entry(tag, kind, offset, count);
    }
    let mut out = vec![0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&(store.len() as u32).to_be_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&store);
    out
}

/// A gzip'd `newc` cpio archive holding only its `TRAILER!!!` entry: the payload of [`rpm`].
fn empty_cpio_gz() -> anyhow::Result<Vec<u8>> {
    let name = b"TRAILER!!!\0";
    let mut cpio = b"070701".to_vec();
    // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
    // namesize, check.
    for field in [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, name.len(), 0] {
        cpio.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    cpio.extend_from_slice(name);
    while !cpio.len().is_multiple_of(4) {
        cpio.push(0);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&cpio)?;
    Ok(gz.finish()?)
}

/// A binary `.rpm` (arch `noarch`, no files) of version `version`, release `release` of the
/// package `name`, as rpm reads it: a 96-byte lead, a signature header (its region, `SIZE` and the
/// `SHA256` of the main header) padded to 8 bytes, the main header (its region, name, version,
/// release, summary, description, build time, size, license, group, OS, arch, source rpm, payload
/// format and compressor, and the package's `Provides` of itself) and an empty cpio payload.
pub fn rpm(name: &str, version: &str, release: &str) -> anyhow::Result<Vec<u8>> {
    let evr = format!("{version}-{release}");
    let header = rpm_header(
        63,
        vec![
            RpmEntry::array(100, &["C"]),
            RpmEntry::string(1000, name),
            RpmEntry::string(1001, version),
            RpmEntry::string(1002, release),
            RpmEntry::i18n(1004, &format!("bench package {name}")),
            RpmEntry::i18n(1005, &format!("{name}: a package of arca-bench rpm")),
            RpmEntry::int32(1006, DEB_MTIME as u32),
            RpmEntry::int32(1009, 0),
            RpmEntry::string(1014, "MIT"),
            RpmEntry::i18n(1016, "Unspecified"),
            RpmEntry::string(1021, "linux"),
            RpmEntry::string(1022, "noarch"),
            RpmEntry::string(1044, &format!("{name}-{evr}.src.rpm")),
            RpmEntry::array(1047, &[name]),
            RpmEntry::int32(1112, 8),
            RpmEntry::array(1113, &[&evr]),
            RpmEntry::string(1124, "cpio"),
            RpmEntry::string(1125, "gzip"),
        ],
    );
    let payload = empty_cpio_gz()?;
    let size = u32::try_from(header.len() + payload.len()).context("rpm too large")?;
    let digest = hex::encode(Sha256::digest(&header));
    let mut signature = rpm_header(
        62,
        vec![RpmEntry::string(273, &digest), RpmEntry::int32(1000, size)],
    );
    while !signature.len().is_multiple_of(8) {
        signature.push(0);
    }
    let mut lead = vec![0u8; 96];
    lead[..4].copy_from_slice(&[0xed, 0xab, 0xee, 0xdb]);
    lead[4] = 3;
    lead[8..10].copy_from_slice(&1u16.to_be_bytes());
    let full = format!("{name}-{evr}");
    let len = full.len().min(65);
    lead[10..10 + len].copy_from_slice(&full.as_bytes()[..len]);
    lead[76..78].copy_from_slice(&1u16.to_be_bytes());
    lead[78..80].copy_from_slice(&5u16.to_be_bytes());
    let mut out = lead;
    out.extend_from_slice(&signature);
    out.extend_from_slice(&header);
    out.extend_from_slice(&payload);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn an_rpm_has_a_lead_two_headers_and_the_digest_of_its_main_header() -> anyhow::Result<()> {
        let rpm = rpm("bench-pkg-0001", "1.0", "1")?;
        assert_eq!(&rpm[..4], &[0xed, 0xab, 0xee, 0xdb]);
        assert_eq!(&rpm[78..80], &[0, 5]);
        let header_at = |at: usize| -> (usize, usize) {
            let word = |i: usize| u32::from_be_bytes(rpm[at + i..at + i + 4].try_into().unwrap());
            (word(8) as usize, word(12) as usize)
        };
        assert_eq!(&rpm[96..100], &[0x8e, 0xad, 0xe8, 0x01]);
        let (entries, size) = header_at(96);
        let main = (96 + 16 + entries * 16 + size).next_multiple_of(8);
        assert_eq!(&rpm[main..main + 4], &[0x8e, 0xad, 0xe8, 0x01]);
        let (entries, size) = header_at(main);
        let end = main + 16 + entries * 16 + size;
        let digest = hex::encode(Sha256::digest(&rpm[main..end]));
        let signature = String::from_utf8_lossy(&rpm[96..main]);
        assert!(signature.contains(&digest));
        // `ARCA_BENCH_RPM_OUT=DIR cargo test -p arca-bench rpm` writes a few, for `rpm -qpi`.
        if let Some(dir) = std::env::var_os("ARCA_BENCH_RPM_OUT") {
            for index in 0..3 {
                let name = format!("bench-pkg-{index:04}");
                let path = std::path::Path::new(&dir).join(format!("{name}-1.0-1.noarch.rpm"));
                std::fs::write(path, super::rpm(&name, "1.0", "1")?)?;
            }
        }
        Ok(())
    }

    #[test]
    fn npm_tarball_holds_the_package_json_and_the_publish_document_matches() -> anyhow::Result<()> {
        let v = npm_version("bench-pkg-0001", "1.2.0")?;
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(v.tarball.as_slice()).read_to_end(&mut tar)?;
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut names = Vec::new();
        let mut manifest = serde_json::Value::Null;
        for entry in archive.entries()? {
            let mut entry = entry?;
            let name = entry.path()?.to_string_lossy().into_owned();
            if name == "package/package.json" {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes)?;
                manifest = serde_json::from_slice(&bytes)?;
            }
            names.push(name);
        }
        assert_eq!(names, ["package/package.json", "package/index.js"]);
        assert_eq!(manifest["version"], "1.2.0");

        let doc: serde_json::Value = serde_json::from_slice(&v.publish)?;
        let attachment = &doc["_attachments"]["bench-pkg-0001-1.2.0.tgz"];
        assert_eq!(
            STANDARD.decode(attachment["data"].as_str().unwrap_or_default())?,
            v.tarball
        );
        assert_eq!(
            doc["versions"]["1.2.0"]["dist"]["shasum"],
            hex::encode(Sha1::digest(&v.tarball))
        );
        Ok(())
    }

    #[test]
    fn deb_is_an_ar_archive_of_the_three_members() -> anyhow::Result<()> {
        let deb = deb("bench-pkg-00042", "1.0-1")?;
        let mut rest = deb
            .strip_prefix(b"!<arch>\n".as_slice())
            .context("no ar magic")?;
        let mut members = Vec::new();
        while !rest.is_empty() {
            let (header, after) = rest.split_at(60);
            assert_eq!(&header[58..], b"`\n");
            let name = String::from_utf8_lossy(&header[..16]).trim_end().to_owned();
            let size: usize = String::from_utf8_lossy(&header[48..58]).trim().parse()?;
            members.push((name, after[..size].to_vec()));
            rest = &after[size + size % 2..];
        }
        let names: Vec<&str> = members.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["debian-binary", "control.tar.gz", "data.tar.gz"]);
        assert_eq!(members[0].1, b"2.0\n");
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(members[1].1.as_slice()).read_to_end(&mut tar)?;
        let mut control = String::new();
        for entry in tar::Archive::new(tar.as_slice()).entries()? {
            let mut entry = entry?;
            if entry.path_bytes().as_ref() == b"./control" {
                entry.read_to_string(&mut control)?;
            }
        }
        assert!(control.starts_with("Package: bench-pkg-00042\nVersion: 1.0-1\n"));
        Ok(())
    }

    #[test]
    fn wheel_has_metadata_and_a_record() -> anyhow::Result<()> {
        let w = wheel("bench-pkg-0001", "1.2.0")?;
        assert_eq!(w.filename, "bench_pkg_0001-1.2.0-py3-none-any.whl");
        assert_eq!(w.sha256, hex::encode(Sha256::digest(&w.bytes)));
        let mut zip = zip::ZipArchive::new(Cursor::new(w.bytes))?;
        let mut metadata = String::new();
        zip.by_name("bench_pkg_0001-1.2.0.dist-info/METADATA")?
            .read_to_string(&mut metadata)?;
        assert!(metadata.contains("Name: bench-pkg-0001\nVersion: 1.2.0\n"));
        let mut record = String::new();
        zip.by_name("bench_pkg_0001-1.2.0.dist-info/RECORD")?
            .read_to_string(&mut record)?;
        assert_eq!(record.lines().count(), 4);
        Ok(())
    }
}
