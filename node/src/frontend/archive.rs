//! Checks that an uploaded archive is what its format says it is, from its first bytes: a gzip'd tar
//! (npm tarballs, PyPI source distributions) or a zip (legacy source distributions). Uploads keep
//! their first [`HEAD_BYTES`] in an [`ArchiveHead`] while they stream into the chunk store, so the
//! check costs the same at any size. (A wheel is read whole elsewhere: its metadata is extracted.)

use std::io::Read;
use std::path::{Component, Path};

/// How much of an upload's start is kept for the check.
pub const HEAD_BYTES: usize = 64 * 1024;

/// The archive an upload must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A gzip'd tar.
    TarGz,
    /// A zip.
    Zip,
}

/// Why an upload is not the archive it should be.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    /// No gzip header.
    #[error("the file is not gzip-compressed")]
    NotGzip,
    /// Gzip, but what it holds is not a tar archive with at least one entry.
    #[error("the file is not a gzip'd tar archive: {0}")]
    NotTar(String),
    /// No zip local-file header.
    #[error("the file is not a zip archive")]
    NotZip,
}

/// The first bytes of an upload.
#[derive(Debug, Default)]
pub struct ArchiveHead(Vec<u8>);

impl ArchiveHead {
    /// Keeps what `bytes` adds to the first [`HEAD_BYTES`].
    pub fn observe(&mut self, bytes: &[u8]) {
        let room = HEAD_BYTES.saturating_sub(self.0.len());
        self.0.extend_from_slice(&bytes[..room.min(bytes.len())]);
    }

    /// Whether the upload starts as an archive of `kind` does.
    pub fn check(&self, kind: ArchiveKind) -> Result<(), ArchiveError> {
        match kind {
            ArchiveKind::TarGz => check_tar_gz(&self.0),
            ArchiveKind::Zip => {
                if self.0.starts_with(b"PK\x03\x04") {
                    Ok(())
                } else {
                    Err(ArchiveError::NotZip)
                }
            }
        }
    }
}

/// A gzip member (magic and the deflate method) whose content starts with a valid tar header.
fn check_tar_gz(head: &[u8]) -> Result<(), ArchiveError> {
    if !head.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Err(ArchiveError::NotGzip);
    }
    // The first entry's headers (with a pax or long-name extension before them) are what is read.
    // A head cut inside the gzip stream ends in an error after what it decoded; that is kept.
    let mut block = Vec::with_capacity(HEAD_BYTES);
    let decoded = flate2::read::GzDecoder::new(head)
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut block);
    if let Err(error) = decoded
        && head.len() < HEAD_BYTES
    {
        return Err(ArchiveError::NotTar(error.to_string()));
    }
    let mut archive = tar::Archive::new(block.as_slice());
    let mut entries = archive
        .entries()
        .map_err(|e| ArchiveError::NotTar(e.to_string()))?;
    match entries.next() {
        Some(Ok(_)) => Ok(()),
        Some(Err(error)) => Err(ArchiveError::NotTar(error.to_string())),
        None => Err(ArchiveError::NotTar("it has no entries".into())),
    }
}

/// The largest member [`read_package_archive`] reads.
const MEMBER_LIMIT: u64 = 1024 * 1024;

/// A package archive as a package manager unpacks it (see [`read_package_archive`]).
#[derive(Debug)]
pub struct PackageArchive {
    /// The top directory every path lies under.
    pub root: String,
    /// The contents of the member asked for, when the archive has it.
    pub member: Option<Vec<u8>>,
}

/// Walks the gzip'd tar `archive` as a package manager unpacks it: every path lies under one top
/// directory (`root`, or the one the first entry names), none is absolute or has `..`, and it
/// unpacks to at most `unpacked_limit` bytes. Returns the top directory and the contents of
/// `<root>/<member>` (at most 1 MiB). Reads the whole archive: run it on a blocking thread.
pub fn read_package_archive(
    archive: impl Read,
    root: Option<&str>,
    member: &str,
    unpacked_limit: u64,
) -> Result<PackageArchive, String> {
    let mut unpacked = flate2::read::GzDecoder::new(archive).take(unpacked_limit + 1);
    let mut root = root.map(str::to_string);
    let mut found = None;
    {
        let mut tar = tar::Archive::new(&mut unpacked);
        for entry in tar.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            let path = entry.path().map_err(|e| e.to_string())?.into_owned();
            let mut components = path.components();
            let top = match components.next() {
                Some(Component::Normal(top)) => top.to_string_lossy().into_owned(),
                _ => return Err(format!("{} is not under a top directory", path.display())),
            };
            let expected = root.get_or_insert_with(|| top.clone());
            if top != *expected || components.any(|c| !matches!(c, Component::Normal(_))) {
                return Err(format!("{} lies outside {expected}/", path.display()));
            }
            if path == Path::new(expected.as_str()).join(member) {
                let mut bytes = Vec::new();
                (&mut entry)
                    .take(MEMBER_LIMIT)
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("{member}: {e}"))?;
                found = Some(bytes);
            }
        }
    }
    if unpacked.limit() == 0 {
        return Err(format!("it unpacks to more than {unpacked_limit} bytes"));
    }
    let root = root.ok_or("it has no entries")?;
    Ok(PackageArchive {
        root,
        member: found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn head_of(bytes: &[u8]) -> ArchiveHead {
        let mut head = ArchiveHead::default();
        for piece in bytes.chunks(7) {
            head.observe(piece);
        }
        head
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("in memory");
        encoder.finish().expect("in memory")
    }

    fn tar_of(path: &str, content: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, path, content)
            .expect("in memory");
        builder.into_inner().expect("in memory")
    }

    #[test]
    fn gzipped_tars_pass_and_lookalikes_do_not() {
        let tarball = gzip(&tar_of("package/package.json", b"{}"));
        assert_eq!(head_of(&tarball).check(ArchiveKind::TarGz), Ok(()));
        assert_eq!(
            head_of(b"not really a tarball").check(ArchiveKind::TarGz),
            Err(ArchiveError::NotGzip)
        );
        let gzipped_text = gzip(&[b'x'; 2048]);
        assert!(matches!(
            head_of(&gzipped_text).check(ArchiveKind::TarGz),
            Err(ArchiveError::NotTar(_))
        ));
        let empty_tar = gzip(&[0; 1024]);
        assert!(matches!(
            head_of(&empty_tar).check(ArchiveKind::TarGz),
            Err(ArchiveError::NotTar(_))
        ));
        assert_eq!(
            head_of(&tarball).check(ArchiveKind::Zip),
            Err(ArchiveError::NotZip)
        );
    }

    #[test]
    fn a_large_tarball_is_checked_from_its_head() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let tarball = gzip(&tar_of(
            &format!("package/{}.bin", "long".repeat(40)),
            &noise,
        ));
        assert!(tarball.len() > HEAD_BYTES);
        let head = head_of(&tarball);
        assert_eq!(head.0.len(), HEAD_BYTES);
        assert_eq!(head.check(ArchiveKind::TarGz), Ok(()));
    }

    #[test]
    fn zips_start_with_a_local_file_header() {
        assert_eq!(head_of(b"PK\x03\x04rest").check(ArchiveKind::Zip), Ok(()));
        assert_eq!(
            head_of(b"MZ\x90\x00").check(ArchiveKind::Zip),
            Err(ArchiveError::NotZip)
        );
    }

    #[test]
    fn package_archives_stay_under_one_directory() {
        let archive = gzip(&tar_of("demo/Chart.yaml", b"name: demo"));
        let read =
            read_package_archive(archive.as_slice(), None, "Chart.yaml", 1 << 20).expect("valid");
        assert_eq!(read.root, "demo");
        assert_eq!(read.member.as_deref(), Some(b"name: demo".as_slice()));
        assert!(
            read_package_archive(archive.as_slice(), Some("other"), "Chart.yaml", 1 << 20).is_err()
        );
        let big = gzip(&tar_of("demo/big", &[0; 4096]));
        assert!(read_package_archive(big.as_slice(), None, "Chart.yaml", 1024).is_err());
    }
}
