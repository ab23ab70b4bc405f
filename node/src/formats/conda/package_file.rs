//! Conda package files read as conda reads them, for the `info/index.json` that says what the
//! package is. Two forms: `.conda`, a zip holding `metadata.json` and two zstd'd tars,
//! `info-<name>-<version>-<build>.tar.zst` (the metadata) and `pkg-...tar.zst` (its files); and the
//! older `.tar.bz2`, one bzip2'd tar whose `info/` directory sits beside the files.

use std::io::{Read, Seek};

use serde_json::{Map, Value};

/// The most an info tar may unpack to, and the largest `index.json`.
const INFO_LIMIT: u64 = 64 * 1024 * 1024;

/// The two package file forms, by their file name extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageForm {
    Conda,
    TarBz2,
}

impl PackageForm {
    /// The form of `file` by its extension, and the name before it.
    pub fn of(file: &str) -> Option<(&str, PackageForm)> {
        file.strip_suffix(".conda")
            .map(|stem| (stem, PackageForm::Conda))
            .or_else(|| {
                file.strip_suffix(".tar.bz2")
                    .map(|stem| (stem, PackageForm::TarBz2))
            })
    }

    pub fn extension(self) -> &'static str {
        match self {
            PackageForm::Conda => ".conda",
            PackageForm::TarBz2 => ".tar.bz2",
        }
    }

    /// The `info/index.json` of a package file of this form.
    pub fn index_json(self, archive: impl Read + Seek) -> Result<Map<String, Value>, String> {
        match self {
            PackageForm::Conda => conda_index_json(archive),
            PackageForm::TarBz2 => index_in_tar(
                bzip2::read::BzDecoder::new(archive),
                "the bzip2'd tar",
                u64::MAX,
            ),
        }
    }
}

fn conda_index_json(archive: impl Read + Seek) -> Result<Map<String, Value>, String> {
    let mut zip = zip::ZipArchive::new(archive).map_err(|e| format!("not a zip archive: {e}"))?;
    let info_name = zip
        .file_names()
        .filter_map(Result::ok)
        .find(|name| name.starts_with("info-") && name.ends_with(".tar.zst") && !name.contains('/'))
        .map(|name| name.into_owned())
        .ok_or("it has no info-*.tar.zst")?;
    if !zip
        .file_names()
        .filter_map(Result::ok)
        .any(|name| name.starts_with("pkg-"))
    {
        return Err("it has no pkg-*.tar.zst".into());
    }
    let entry = zip.by_name(&info_name).map_err(|e| e.to_string())?;
    let decoder =
        zstd::stream::read::Decoder::new(entry).map_err(|e| format!("{info_name}: {e}"))?;
    index_in_tar(decoder, &info_name, INFO_LIMIT)
}

/// `info/index.json` from the tar `stream` (named `label` in errors), reading at most `limit`
/// bytes of it.
fn index_in_tar(stream: impl Read, label: &str, limit: u64) -> Result<Map<String, Value>, String> {
    let mut tar = tar::Archive::new(stream.take(limit));
    for entry in tar.entries().map_err(|e| format!("{label}: {e}"))? {
        let entry = entry.map_err(|e| format!("{label}: {e}"))?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        if path == std::path::Path::new("info/index.json") {
            let mut bytes = Vec::new();
            entry
                .take(INFO_LIMIT)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("info/index.json: {e}"))?;
            return match serde_json::from_slice(&bytes) {
                Ok(Value::Object(index)) => Ok(index),
                Ok(_) => Err("info/index.json is not an object".into()),
                Err(e) => Err(format!("info/index.json is not valid JSON: {e}")),
            };
        }
    }
    Err(format!("{label} has no info/index.json"))
}

/// The md5 of `bytes`, hex (repodata lists it beside the sha256).
pub fn md5_hex(mut bytes: impl Read) -> Result<String, String> {
    use md5::Digest;
    let mut hasher = md5::Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = bytes.read(&mut buffer).map_err(|e| e.to_string())?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}
