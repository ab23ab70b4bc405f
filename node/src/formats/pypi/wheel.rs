//! The core metadata of a wheel (PEP 658): the `<name>.dist-info/METADATA` member of the zip archive,
//! read from a blob in the chunk store through a seekable cursor, so only the chunks holding the zip's
//! central directory and that one member are read, never the whole wheel.

use std::io::{self, Read, Seek};

/// The largest `METADATA` member accepted.
pub const MAX_METADATA_BYTES: u64 = 8 * 1024 * 1024;

/// Why a wheel's metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    /// Not a zip archive, or a damaged one.
    #[error("the wheel is not a valid zip archive: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// No `*.dist-info/METADATA` at the top of the archive.
    #[error("the wheel has no .dist-info/METADATA file")]
    NoMetadata,
    /// Several `.dist-info` directories.
    #[error("the wheel has more than one .dist-info/METADATA file")]
    AmbiguousMetadata,
    /// `METADATA` is larger than [`MAX_METADATA_BYTES`].
    #[error("the wheel's METADATA is larger than {MAX_METADATA_BYTES} bytes")]
    MetadataTooLarge,
    /// Reading the archive failed.
    #[error("reading the wheel: {0}")]
    Io(#[from] io::Error),
}

/// The bytes of the archive's top-level `<something>.dist-info/METADATA`.
pub fn read_metadata(archive: impl Read + Seek) -> Result<Vec<u8>, WheelError> {
    let mut zip = zip::ZipArchive::new(archive)?;
    let is_metadata = |name: &str| {
        name.strip_suffix("/METADATA")
            .is_some_and(|dir| dir.ends_with(".dist-info") && !dir.contains('/'))
    };
    let mut found = Vec::new();
    for name in zip.file_names() {
        let name = name?;
        if is_metadata(&name) {
            found.push(name.into_owned());
        }
    }
    let name = match found.as_slice() {
        [] => return Err(WheelError::NoMetadata),
        [name] => name.clone(),
        _ => return Err(WheelError::AmbiguousMetadata),
    };
    let member = zip.by_name(&name)?;
    if member.size() > MAX_METADATA_BYTES {
        return Err(WheelError::MetadataTooLarge);
    }
    let mut bytes = Vec::with_capacity(member.size() as usize);
    member
        .take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_METADATA_BYTES {
        return Err(WheelError::MetadataTooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::ChunkStore;
    use crate::frontend::BlobCursor;
    use std::io::{Cursor, SeekFrom, Write};
    use std::sync::Arc;

    fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in members {
            writer
                .start_file(
                    *name,
                    zip::write::SimpleFileOptions::default()
                        .compression_method(zip::CompressionMethod::Stored),
                )
                .expect("member");
            writer.write_all(bytes).expect("write");
        }
        writer.finish().expect("finish").into_inner()
    }

    #[test]
    fn finds_the_top_level_dist_info_metadata() {
        let wheel = archive(&[
            ("pkg/__init__.py", b""),
            ("pkg/sub.dist-info/METADATA", b"decoy"),
            (
                "pkg-1.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: pkg\n",
            ),
            ("pkg-1.0.dist-info/RECORD", b""),
        ]);
        assert_eq!(
            read_metadata(Cursor::new(wheel)).expect("metadata"),
            b"Metadata-Version: 2.1\nName: pkg\n"
        );
        let none = archive(&[("pkg/__init__.py", b"")]);
        assert!(matches!(
            read_metadata(Cursor::new(none)),
            Err(WheelError::NoMetadata)
        ));
        assert!(matches!(
            read_metadata(Cursor::new(b"not a zip".to_vec())),
            Err(WheelError::Zip(_))
        ));
    }

    #[tokio::test]
    async fn a_blob_cursor_reads_across_chunks() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(ChunkStore::open(dir.path(), 1 << 20).expect("store"));
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let wheel = archive(&[
            ("pkg/data.bin", &big),
            ("pkg-1.0.dist-info/METADATA", b"Name: pkg\n"),
        ]);
        let mut writer = crate::blob::BlobWriter::new(store.clone());
        writer.write(&wheel).await.expect("write");
        let blob = writer.finish().await.expect("blob");
        let mut cursor = BlobCursor::new(store, blob);
        let mut all = Vec::new();
        cursor.read_to_end(&mut all).expect("read");
        assert_eq!(all, wheel);
        cursor.seek(SeekFrom::Start(0)).expect("seek");
        assert_eq!(read_metadata(cursor).expect("metadata"), b"Name: pkg\n");
    }
}
