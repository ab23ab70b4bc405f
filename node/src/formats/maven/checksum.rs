//! Maven checksum files (`.md5 .sha1 .sha256 .sha512`): which file a checksum path is about, the
//! digests of an upload computed while its body streams into the chunk store (so nothing is read
//! twice), where they are kept (version attributes `<algorithm>:<filename>`; sha256 is the blob's own
//! digest), and what a client's uploaded checksum file says.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use futures::StreamExt;
use sha2::Digest as _;

/// A checksum algorithm Maven repositories carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumKind {
    /// `.md5`
    Md5,
    /// `.sha1`
    Sha1,
    /// `.sha256`
    Sha256,
    /// `.sha512`
    Sha512,
}

impl ChecksumKind {
    /// Every kind.
    const ALL: [ChecksumKind; 4] = [
        ChecksumKind::Md5,
        ChecksumKind::Sha1,
        ChecksumKind::Sha256,
        ChecksumKind::Sha512,
    ];

    /// The file name suffix, without the dot.
    fn extension(self) -> &'static str {
        match self {
            ChecksumKind::Md5 => "md5",
            ChecksumKind::Sha1 => "sha1",
            ChecksumKind::Sha256 => "sha256",
            ChecksumKind::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding.
    fn hex_len(self) -> usize {
        match self {
            ChecksumKind::Md5 => 32,
            ChecksumKind::Sha1 => 40,
            ChecksumKind::Sha256 => 64,
            ChecksumKind::Sha512 => 128,
        }
    }

    /// Splits `lib-1.0.jar.sha1` into `lib-1.0.jar` and [`ChecksumKind::Sha1`]; a name without a
    /// checksum suffix comes back whole.
    pub fn split(filename: &str) -> (&str, Option<ChecksumKind>) {
        Self::ALL
            .into_iter()
            .find_map(|kind| {
                let name = filename.strip_suffix(kind.extension())?.strip_suffix('.')?;
                (!name.is_empty()).then_some((name, Some(kind)))
            })
            .unwrap_or((filename, None))
    }

    /// The version attribute that keeps this checksum of `filename`; `None` for sha256, which is the
    /// digest every blob is known by.
    pub fn attribute(self, filename: &str) -> Option<String> {
        (self != ChecksumKind::Sha256).then(|| format!("{}:{filename}", self.extension()))
    }

    /// The attributes of every checksum kept for `filename`.
    pub fn attributes_of(filename: &str) -> impl Iterator<Item = String> + '_ {
        Self::ALL
            .into_iter()
            .filter_map(|kind| kind.attribute(filename))
    }

    /// A hasher for this kind.
    pub fn hasher(self) -> Hasher {
        match self {
            ChecksumKind::Md5 => Hasher::Md5(md5::Md5::new()),
            ChecksumKind::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            ChecksumKind::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            ChecksumKind::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// The lowercase hex checksum of `bytes`.
    pub fn of(self, bytes: &[u8]) -> String {
        let mut hasher = self.hasher();
        hasher.update(bytes);
        hasher.finish()
    }

    /// The checksum a client's checksum file states: the first word of the right length made of
    /// hex digits (`<hex>`, `<hex>  <filename>` and similar all work), lowercased.
    pub fn parse_uploaded(self, text: &str) -> Option<String> {
        text.split_whitespace()
            .find(|word| {
                word.len() == self.hex_len() && word.bytes().all(|b| b.is_ascii_hexdigit())
            })
            .map(str::to_ascii_lowercase)
    }
}

impl std::fmt::Display for ChecksumKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

/// An incremental checksum of one kind.
#[derive(Clone)]
pub enum Hasher {
    /// md5
    Md5(md5::Md5),
    /// sha1
    Sha1(sha1::Sha1),
    /// sha256
    Sha256(sha2::Sha256),
    /// sha512
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The lowercase hex digest.
    pub fn finish(self) -> String {
        match self {
            Hasher::Md5(h) => hex::encode(h.finalize()),
            Hasher::Sha1(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// The checksums of an upload that are kept as attributes (every kind but sha256, which the chunk
/// store computes), filled in as the body streams past.
#[derive(Clone)]
pub struct BodyChecksums(Arc<Mutex<Vec<(ChecksumKind, Hasher)>>>);

impl BodyChecksums {
    fn lock(&self) -> MutexGuard<'_, Vec<(ChecksumKind, Hasher)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wraps `body` so every frame that passes is hashed; the returned body is what the chunk store
    /// reads.
    pub fn wrap(body: Body) -> (Body, BodyChecksums) {
        let hashers = ChecksumKind::ALL
            .into_iter()
            .filter(|kind| *kind != ChecksumKind::Sha256)
            .map(|kind| (kind, kind.hasher()))
            .collect();
        let checksums = BodyChecksums(Arc::new(Mutex::new(hashers)));
        let feed = checksums.clone();
        let stream = body.into_data_stream().map(move |frame| {
            if let Ok(data) = &frame {
                for (_, hasher) in feed.lock().iter_mut() {
                    hasher.update(data);
                }
            }
            frame
        });
        (Body::from_stream(stream), checksums)
    }

    /// The version attributes recording these checksums for `filename`.
    pub fn attributes(&self, filename: &str) -> BTreeMap<String, String> {
        self.lock()
            .iter()
            .filter_map(|(kind, hasher)| Some((kind.attribute(filename)?, hasher.clone().finish())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_paths_split_off_their_suffix() {
        assert_eq!(
            ChecksumKind::split("lib-1.0.jar.sha1"),
            ("lib-1.0.jar", Some(ChecksumKind::Sha1))
        );
        assert_eq!(
            ChecksumKind::split("maven-metadata.xml.sha512"),
            ("maven-metadata.xml", Some(ChecksumKind::Sha512))
        );
        assert_eq!(ChecksumKind::split("lib-1.0.jar"), ("lib-1.0.jar", None));
        assert_eq!(ChecksumKind::split(".md5"), (".md5", None));
        assert_eq!(ChecksumKind::split("libmd5"), ("libmd5", None));
    }

    #[test]
    fn uploaded_checksums_are_read_leniently() {
        let sha1 = ChecksumKind::Sha1.of(b"abc");
        assert_eq!(sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            ChecksumKind::Sha1.parse_uploaded(&format!("{}  lib.jar\n", sha1.to_uppercase())),
            Some(sha1.clone())
        );
        assert_eq!(ChecksumKind::Sha1.parse_uploaded("xyz"), None);
        assert_eq!(ChecksumKind::Md5.parse_uploaded(&sha1), None);
        assert_eq!(
            ChecksumKind::Md5.of(b"abc"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
    }

    #[tokio::test]
    async fn wrapped_bodies_are_hashed_as_they_stream() {
        let (body, checksums) = BodyChecksums::wrap(Body::from("abc"));
        let bytes = axum::body::to_bytes(body, 1024).await.expect("body");
        assert_eq!(&bytes[..], b"abc");
        let attributes = checksums.attributes("f.jar");
        assert_eq!(attributes["sha1:f.jar"], ChecksumKind::Sha1.of(b"abc"));
        assert_eq!(attributes["md5:f.jar"], ChecksumKind::Md5.of(b"abc"));
        assert_eq!(attributes["sha512:f.jar"], ChecksumKind::Sha512.of(b"abc"));
        assert_eq!(attributes.len(), 3);
    }
}
