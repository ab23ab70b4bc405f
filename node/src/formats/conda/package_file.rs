//! A `.conda` package read as conda reads one: a zip holding `metadata.json` and two zstd'd tars,
//! `info-<name>-<version>-<build>.tar.zst` (whose `info/index.json` says what the package is) and
//! `pkg-...tar.zst` (its files).

use std::io::{Read, Seek};

use serde_json::{Map, Value};

/// The most the info tar may unpack to, and the largest `index.json`.
const INFO_LIMIT: u64 = 64 * 1024 * 1024;

/// The `info/index.json` of the `.conda` package `archive`.
pub fn index_json(archive: impl Read + Seek) -> Result<Map<String, Value>, String> {
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
    let mut tar = tar::Archive::new(decoder.take(INFO_LIMIT));
    for entry in tar.entries().map_err(|e| format!("{info_name}: {e}"))? {
        let entry = entry.map_err(|e| format!("{info_name}: {e}"))?;
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
    Err(format!("{info_name} has no info/index.json"))
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
