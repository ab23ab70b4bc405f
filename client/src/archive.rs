//! Reading single members out of the archives packages ship as: gzip-compressed tar (npm tarballs,
//! Python sdists), plain tar (gems) and zip (wheels). Only what publishing needs: find one small member by its path.

use std::io::Read;

use crate::error::ClientError;

/// The largest member read into memory (a manifest or metadata file, never a payload).
const MAX_MEMBER_BYTES: u64 = 16 * 1024 * 1024;

fn invalid(what: &str, detail: impl std::fmt::Display) -> ClientError {
    ClientError::Invalid(format!("{what}: {detail}"))
}

/// Reads one member, refusing members over [`MAX_MEMBER_BYTES`].
fn read_member(
    member: impl Read,
    size: u64,
    name: &str,
    what: &str,
) -> Result<Vec<u8>, ClientError> {
    if size > MAX_MEMBER_BYTES {
        return Err(invalid(what, format!("archive member {name} is too large")));
    }
    let mut data = Vec::new();
    member
        .take(MAX_MEMBER_BYTES)
        .read_to_end(&mut data)
        .map_err(|err| invalid(what, err))?;
    Ok(data)
}

/// The contents of the first member of the gzip-compressed tar `archive` whose path satisfies
/// `wanted`, or `None` when no member does. `what` names the archive in errors.
pub(crate) fn tar_gz_member(
    archive: impl Read,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<Option<Vec<u8>>, ClientError> {
    tar_member(flate2::read::GzDecoder::new(archive), what, wanted)
}

/// [`tar_gz_member`] of an uncompressed tar (a `.gem`).
pub(crate) fn tar_member(
    archive: impl Read,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<Option<Vec<u8>>, ClientError> {
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries().map_err(|err| invalid(what, err))? {
        let entry = entry.map_err(|err| invalid(what, err))?;
        let path = entry.path().map_err(|err| invalid(what, err))?;
        let name = path.to_string_lossy().into_owned();
        if wanted(&name) {
            let size = entry.size();
            return read_member(entry, size, &name, what).map(Some);
        }
    }
    Ok(None)
}

/// The contents of the first member of the zip `archive` whose path satisfies `wanted`, or `None`.
pub(crate) fn zip_member(
    archive: impl Read + std::io::Seek,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<Option<Vec<u8>>, ClientError> {
    let mut zip = zip::ZipArchive::new(archive).map_err(|err| invalid(what, err))?;
    let mut found = None;
    for name in zip.file_names() {
        let name = name.map_err(|err| invalid(what, err))?;
        if wanted(&name) {
            found = Some(name.into_owned());
            break;
        }
    }
    let Some(name) = found else {
        return Ok(None);
    };
    let member = zip.by_name(&name).map_err(|err| invalid(what, err))?;
    let size = member.size();
    read_member(member, size, &name, what).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(encoder);
        for (name, data) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder
                .append_data(&mut header, name, *data)
                .expect("append");
        }
        builder
            .into_inner()
            .and_then(|encoder| encoder.finish())
            .expect("finish")
    }

    #[test]
    fn finds_members_by_short_and_long_names() {
        let long = format!("package/{}/package.json", "d".repeat(120));
        let archive = tar_gz(&[
            ("package/index.js", &[7u8; 700]),
            (&long, b"long"),
            ("package/package.json", b"{}"),
        ]);
        let found = |path: &str| {
            tar_gz_member(archive.as_slice(), "test", |name| name == path).expect("readable")
        };
        assert_eq!(found("package/package.json").as_deref(), Some(&b"{}"[..]));
        assert_eq!(found(&long).as_deref(), Some(&b"long"[..]));
        assert_eq!(found("package/index.js").map(|d| d.len()), Some(700));
        assert_eq!(found("missing"), None);
    }

    #[test]
    fn refuses_what_is_not_gzip() {
        assert!(tar_gz_member(&b"not gzip at all"[..], "test", |_| true).is_err());
    }
}
