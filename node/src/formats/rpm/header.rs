//! `.rpm` files read as rpm reads them, for what a repository's metadata says of a package: the
//! 96-byte lead (its magic), the signature header (padded to 8 bytes), then the main header, each
//! an index of `{tag, type, offset, count}` entries over a data store, big-endian. Every entry is
//! checked against rpm's own limits (types, alignment, bounds) before it is read.

use std::io::Read;

/// The most entries a header may have, and the largest data store (rpm's own limits).
const MAX_ENTRIES: u32 = 0xffff;
const MAX_STORE: u32 = 256 * 1024 * 1024;
/// The most entries of the signature header, and its largest store.
const MAX_SIGNATURE_ENTRIES: u32 = 32;
const MAX_SIGNATURE_STORE: u32 = 64 * 1024 * 1024;

/// Why a file is not a usable `.rpm`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpmError {
    /// The file is not laid out as an rpm.
    #[error("not an RPM package: {0}")]
    Layout(String),
    /// The main header does not match the digest its signature header gives.
    #[error("its header does not match the digest {0} its signature header gives")]
    Digest(String),
    /// A tag a package must have is missing or malformed.
    #[error("its header lacks a valid {0}")]
    Missing(&'static str),
}

fn layout(message: impl Into<String>) -> RpmError {
    RpmError::Layout(message.into())
}

/// Main-header tags read.
mod tag {
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const SUMMARY: u32 = 1004;
    pub const DESCRIPTION: u32 = 1005;
    pub const BUILDTIME: u32 = 1006;
    pub const BUILDHOST: u32 = 1007;
    pub const SIZE: u32 = 1009;
    pub const VENDOR: u32 = 1011;
    pub const LICENSE: u32 = 1014;
    pub const PACKAGER: u32 = 1015;
    pub const GROUP: u32 = 1016;
    pub const URL: u32 = 1020;
    pub const ARCH: u32 = 1022;
    pub const OLDFILENAMES: u32 = 1027;
    pub const FILEMODES: u32 = 1030;
    pub const FILEFLAGS: u32 = 1037;
    pub const SOURCERPM: u32 = 1044;
    pub const ARCHIVESIZE: u32 = 1046;
    pub const PROVIDENAME: u32 = 1047;
    pub const REQUIREFLAGS: u32 = 1048;
    pub const REQUIRENAME: u32 = 1049;
    pub const REQUIREVERSION: u32 = 1050;
    pub const CONFLICTFLAGS: u32 = 1053;
    pub const CONFLICTNAME: u32 = 1054;
    pub const CONFLICTVERSION: u32 = 1055;
    pub const CHANGELOGTIME: u32 = 1080;
    pub const CHANGELOGNAME: u32 = 1081;
    pub const CHANGELOGTEXT: u32 = 1082;
    pub const OBSOLETENAME: u32 = 1090;
    pub const SOURCEPACKAGE: u32 = 1106;
    pub const PROVIDEFLAGS: u32 = 1112;
    pub const PROVIDEVERSION: u32 = 1113;
    pub const OBSOLETEFLAGS: u32 = 1114;
    pub const OBSOLETEVERSION: u32 = 1115;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
    pub const LONGSIZE: u32 = 5009;
    pub const RECOMMENDNAME: u32 = 5046;
    pub const RECOMMENDVERSION: u32 = 5047;
    pub const RECOMMENDFLAGS: u32 = 5048;
    pub const SUGGESTNAME: u32 = 5049;
    pub const SUGGESTVERSION: u32 = 5050;
    pub const SUGGESTFLAGS: u32 = 5051;
    pub const SUPPLEMENTNAME: u32 = 5052;
    pub const SUPPLEMENTVERSION: u32 = 5053;
    pub const SUPPLEMENTFLAGS: u32 = 5054;
    pub const ENHANCENAME: u32 = 5055;
    pub const ENHANCEVERSION: u32 = 5056;
    pub const ENHANCEFLAGS: u32 = 5057;
    /// Signature header: the digests of the main header.
    pub const SIG_SHA1: u32 = 269;
    pub const SIG_SHA256: u32 = 273;
    /// Signature header: the uncompressed payload's size, 32 and 64 bits.
    pub const SIG_PAYLOADSIZE: u32 = 1007;
    pub const SIG_LONGARCHIVESIZE: u32 = 271;
}

/// One header: its entries and data store, and the digests of its bytes (what the signature
/// header's `SHA256` and `SHA1` tags give of the main header).
struct Header {
    entries: Vec<(u32, u32, u32, u32)>,
    store: Vec<u8>,
    sha256: String,
    sha1: String,
}

/// A tag's value.
enum Value<'a> {
    Numbers(Vec<u64>),
    Strings(Vec<&'a str>),
}

impl Header {
    /// Reads a header (intro, index, store) from `file`: its length in bytes too.
    fn read(
        file: &mut impl Read,
        max_entries: u32,
        max_store: u32,
    ) -> Result<(Header, u64), RpmError> {
        let mut intro = [0u8; 16];
        file.read_exact(&mut intro)
            .map_err(|_| layout("a header is cut short"))?;
        if intro[..4] != [0x8e, 0xad, 0xe8, 0x01] {
            return Err(layout("a header has no header magic"));
        }
        let count = u32::from_be_bytes([intro[8], intro[9], intro[10], intro[11]]);
        let store_len = u32::from_be_bytes([intro[12], intro[13], intro[14], intro[15]]);
        if count == 0 || count > max_entries || store_len > max_store {
            return Err(layout("a header is larger than rpm allows"));
        }
        let mut index = vec![0u8; count as usize * 16];
        file.read_exact(&mut index)
            .map_err(|_| layout("a header's index is cut short"))?;
        let mut store = vec![0u8; store_len as usize];
        file.read_exact(&mut store)
            .map_err(|_| layout("a header's data is cut short"))?;
        let word = |bytes: &[u8], at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let mut entries = Vec::with_capacity(count as usize);
        for entry in index.chunks_exact(16) {
            let (tag, kind, offset, items) = (
                word(entry, 0),
                word(entry, 4),
                word(entry, 8),
                word(entry, 12),
            );
            let alignment = match kind {
                3 => 2,
                4 => 4,
                5 => 8,
                0..=9 => 1,
                _ => return Err(layout(format!("tag {tag} has unknown type {kind}"))),
            };
            // The region tag's offset points at its trailer, at the store's end.
            if !matches!(tag, 62 | 63)
                && (offset >= store_len.max(1) || offset % alignment != 0 || items > 0xfffff)
            {
                return Err(layout(format!("tag {tag} points outside its header")));
            }
            entries.push((tag, kind, offset, items));
        }
        let digest = |algorithm| {
            let mut context = ring::digest::Context::new(algorithm);
            for bytes in [&intro[..], &index, &store] {
                context.update(bytes);
            }
            hex::encode(context.finish())
        };
        let (sha256, sha1) = (
            digest(&ring::digest::SHA256),
            digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY),
        );
        Ok((
            Header {
                entries,
                store,
                sha256,
                sha1,
            },
            16 + u64::from(count) * 16 + u64::from(store_len),
        ))
    }

    fn value(&self, wanted: u32) -> Option<Value<'_>> {
        let &(_, kind, offset, count) = self.entries.iter().find(|entry| entry.0 == wanted)?;
        let data = self.store.get(offset as usize..)?;
        let count = count as usize;
        let numbers = |size: usize| -> Option<Value<'_>> {
            let bytes = data.get(..count.checked_mul(size)?)?;
            Some(Value::Numbers(
                bytes
                    .chunks_exact(size)
                    .map(|chunk| chunk.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
                    .collect(),
            ))
        };
        match kind {
            2 => numbers(1),
            3 => numbers(2),
            4 => numbers(4),
            5 => numbers(8),
            6 | 8 | 9 => {
                let wanted = if kind == 6 { 1 } else { count };
                let mut strings = Vec::with_capacity(wanted);
                let mut rest = data;
                for _ in 0..wanted {
                    let end = rest.iter().position(|b| *b == 0)?;
                    strings.push(std::str::from_utf8(&rest[..end]).unwrap_or(""));
                    rest = &rest[end + 1..];
                }
                Some(Value::Strings(strings))
            }
            _ => None,
        }
    }

    fn string(&self, tag: u32) -> Option<String> {
        match self.value(tag)? {
            Value::Strings(strings) => strings.first().map(|s| s.to_string()),
            _ => None,
        }
    }

    fn strings(&self, tag: u32) -> Vec<String> {
        match self.value(tag) {
            Some(Value::Strings(strings)) => strings.into_iter().map(str::to_string).collect(),
            _ => Vec::new(),
        }
    }

    fn numbers(&self, tag: u32) -> Vec<u64> {
        match self.value(tag) {
            Some(Value::Numbers(numbers)) => numbers,
            _ => Vec::new(),
        }
    }

    fn number(&self, tag: u32) -> Option<u64> {
        self.numbers(tag).first().copied()
    }

    fn has(&self, tag: u32) -> bool {
        self.entries.iter().any(|entry| entry.0 == tag)
    }
}

/// One dependency: a name, rpm's sense flags and a version (`[epoch:]version[-release]`, or empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub flags: u64,
    pub version: String,
}

/// One file of a package: its path, and whether it is a directory or a ghost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    pub path: String,
    pub directory: bool,
    pub ghost: bool,
}

/// One changelog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub time: u64,
    pub author: String,
    pub text: String,
}

/// What a repository's metadata says of a package, as its headers give it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RpmPackage {
    pub name: String,
    pub epoch: Option<u64>,
    pub version: String,
    pub release: String,
    /// `src` for a source package.
    pub arch: String,
    pub summary: String,
    pub description: String,
    pub packager: String,
    pub url: String,
    pub build_time: u64,
    pub installed_size: u64,
    pub archive_size: u64,
    pub license: String,
    pub vendor: String,
    pub group: String,
    pub build_host: String,
    pub source_rpm: String,
    /// Where the main header starts and ends in the file.
    pub header_range: (u64, u64),
    pub provides: Vec<Dependency>,
    pub requires: Vec<Dependency>,
    pub conflicts: Vec<Dependency>,
    pub obsoletes: Vec<Dependency>,
    pub recommends: Vec<Dependency>,
    pub suggests: Vec<Dependency>,
    pub supplements: Vec<Dependency>,
    pub enhances: Vec<Dependency>,
    pub files: Vec<PackageFile>,
    /// Newest first, as the header holds them.
    pub changelog: Vec<Change>,
}

impl RpmPackage {
    /// `[epoch:]version-release`, the version Arca stores it under.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) => format!("{epoch}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }

    /// The file name a repository gives it: `<name>-<version>-<release>.<arch>.rpm`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}.{}.rpm",
            self.name, self.version, self.release, self.arch
        )
    }
}

/// The dependencies whose names, flags and versions are `tags`.
fn dependencies(header: &Header, (names, flags, versions): (u32, u32, u32)) -> Vec<Dependency> {
    let (flags, versions) = (header.numbers(flags), header.strings(versions));
    header
        .strings(names)
        .into_iter()
        .enumerate()
        .map(|(i, name)| Dependency {
            name,
            flags: flags.get(i).copied().unwrap_or(0),
            version: versions.get(i).cloned().unwrap_or_default(),
        })
        .collect()
}

/// A name, version, release or architecture: printable, without spaces or `/`.
fn is_plain_word(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 256
        && !text.starts_with('.')
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | '\\' | '<' | '>' | '&' | '"'))
}

/// Reads the package described by the `.rpm` in `file`.
pub fn read_package(mut file: impl Read) -> Result<RpmPackage, RpmError> {
    let mut lead = [0u8; 96];
    file.read_exact(&mut lead)
        .map_err(|_| layout("it is shorter than an rpm lead"))?;
    if lead[..4] != [0xed, 0xab, 0xee, 0xdb] {
        return Err(layout("it has no rpm lead magic"));
    }
    let (signature, signature_len) =
        Header::read(&mut file, MAX_SIGNATURE_ENTRIES, MAX_SIGNATURE_STORE)?;
    let padding = (8 - signature_len % 8) % 8;
    std::io::copy(&mut (&mut file).take(padding), &mut std::io::sink())
        .map_err(|_| layout("the signature's padding is cut short"))?;
    let start = 96 + signature_len + padding;
    let (header, header_len) = Header::read(&mut file, MAX_ENTRIES, MAX_STORE)?;
    for (tag, actual) in [
        (tag::SIG_SHA256, &header.sha256),
        (tag::SIG_SHA1, &header.sha1),
    ] {
        if let Some(expected) = signature.string(tag)
            && !expected.eq_ignore_ascii_case(actual)
        {
            return Err(RpmError::Digest(expected));
        }
    }
    let text = |tag: u32| header.string(tag).unwrap_or_default();
    let required = |tag: u32, what: &'static str| {
        header
            .string(tag)
            .filter(|value| is_plain_word(value))
            .ok_or(RpmError::Missing(what))
    };
    let name = required(tag::NAME, "name")?;
    let version = required(tag::VERSION, "version")?;
    let release = required(tag::RELEASE, "release")?;
    let source = header.has(tag::SOURCEPACKAGE) || !header.has(tag::SOURCERPM);
    let arch = if source {
        "src".to_string()
    } else {
        required(tag::ARCH, "arch")?
    };
    if version.contains('-') || release.contains('-') {
        return Err(RpmError::Missing("version and release without '-'"));
    }
    let files = match header.strings(tag::BASENAMES) {
        basenames if !basenames.is_empty() => {
            let (directories, indexes) = (
                header.strings(tag::DIRNAMES),
                header.numbers(tag::DIRINDEXES),
            );
            basenames
                .into_iter()
                .enumerate()
                .map(|(i, base)| {
                    let directory = indexes
                        .get(i)
                        .and_then(|&index| directories.get(index as usize))
                        .cloned()
                        .unwrap_or_default();
                    format!("{directory}{base}")
                })
                .collect()
        }
        _ => header.strings(tag::OLDFILENAMES),
    };
    let (modes, file_flags) = (
        header.numbers(tag::FILEMODES),
        header.numbers(tag::FILEFLAGS),
    );
    let files = files
        .into_iter()
        .enumerate()
        .map(|(i, path)| PackageFile {
            path,
            directory: modes.get(i).is_some_and(|mode| mode & 0o170000 == 0o040000),
            ghost: file_flags.get(i).is_some_and(|flags| flags & 64 != 0),
        })
        .collect();
    let (times, authors, texts) = (
        header.numbers(tag::CHANGELOGTIME),
        header.strings(tag::CHANGELOGNAME),
        header.strings(tag::CHANGELOGTEXT),
    );
    let changelog = times
        .iter()
        .zip(authors)
        .zip(texts)
        .map(|((time, author), text)| Change {
            time: *time,
            author: author.trim_end().to_string(),
            text,
        })
        .collect();
    Ok(RpmPackage {
        epoch: header.number(tag::EPOCH),
        summary: text(tag::SUMMARY),
        description: text(tag::DESCRIPTION),
        packager: text(tag::PACKAGER),
        url: text(tag::URL),
        build_time: header.number(tag::BUILDTIME).unwrap_or(0),
        installed_size: header
            .number(tag::LONGSIZE)
            .or_else(|| header.number(tag::SIZE))
            .unwrap_or(0),
        archive_size: signature
            .number(tag::SIG_LONGARCHIVESIZE)
            .or_else(|| signature.number(tag::SIG_PAYLOADSIZE))
            .or_else(|| header.number(tag::ARCHIVESIZE))
            .unwrap_or(0),
        license: text(tag::LICENSE),
        vendor: text(tag::VENDOR),
        group: text(tag::GROUP),
        build_host: text(tag::BUILDHOST),
        source_rpm: if source {
            String::new()
        } else {
            text(tag::SOURCERPM)
        },
        header_range: (start, start + header_len),
        provides: dependencies(
            &header,
            (tag::PROVIDENAME, tag::PROVIDEFLAGS, tag::PROVIDEVERSION),
        ),
        requires: dependencies(
            &header,
            (tag::REQUIRENAME, tag::REQUIREFLAGS, tag::REQUIREVERSION),
        ),
        conflicts: dependencies(
            &header,
            (tag::CONFLICTNAME, tag::CONFLICTFLAGS, tag::CONFLICTVERSION),
        ),
        obsoletes: dependencies(
            &header,
            (tag::OBSOLETENAME, tag::OBSOLETEFLAGS, tag::OBSOLETEVERSION),
        ),
        recommends: dependencies(
            &header,
            (
                tag::RECOMMENDNAME,
                tag::RECOMMENDFLAGS,
                tag::RECOMMENDVERSION,
            ),
        ),
        suggests: dependencies(
            &header,
            (tag::SUGGESTNAME, tag::SUGGESTFLAGS, tag::SUGGESTVERSION),
        ),
        supplements: dependencies(
            &header,
            (
                tag::SUPPLEMENTNAME,
                tag::SUPPLEMENTFLAGS,
                tag::SUPPLEMENTVERSION,
            ),
        ),
        enhances: dependencies(
            &header,
            (tag::ENHANCENAME, tag::ENHANCEFLAGS, tag::ENHANCEVERSION),
        ),
        files,
        changelog,
        name,
        version,
        release,
        arch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header of `entries` (tag, type, data, count), stored in order with rpm's alignment.
    fn header(entries: &[(u32, u32, Vec<u8>, u32)]) -> Vec<u8> {
        let mut store = Vec::new();
        let mut index = Vec::new();
        for (tag, kind, data, count) in entries {
            let alignment = match kind {
                3 => 2,
                4 => 4,
                5 => 8,
                _ => 1,
            };
            while store.len() % alignment != 0 {
                store.push(0);
            }
            for word in [*tag, *kind, store.len() as u32, *count] {
                index.extend_from_slice(&word.to_be_bytes());
            }
            store.extend_from_slice(data);
        }
        let mut out = vec![0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        out.extend_from_slice(&(store.len() as u32).to_be_bytes());
        out.extend_from_slice(&index);
        out.extend_from_slice(&store);
        out
    }

    fn text(value: &str) -> Vec<u8> {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        bytes
    }

    fn texts(values: &[&str]) -> Vec<u8> {
        values.iter().flat_map(|value| text(value)).collect()
    }

    /// An rpm of `main` entries (with a small signature header).
    pub fn rpm(main: &[(u32, u32, Vec<u8>, u32)]) -> Vec<u8> {
        let mut file = vec![0xed, 0xab, 0xee, 0xdb, 3, 0];
        file.resize(96, 0);
        let signature = header(&[(1007, 4, 396u32.to_be_bytes().to_vec(), 1)]);
        file.extend_from_slice(&signature);
        while file.len() % 8 != 0 {
            file.push(0);
        }
        file.extend_from_slice(&header(main));
        file.extend_from_slice(b"payload");
        file
    }

    #[test]
    fn packages_are_read_from_their_headers() {
        let file = rpm(&[
            (1000, 6, text("testa"), 1),
            (1001, 6, text("1.2.3"), 1),
            (1002, 6, text("4.fc39"), 1),
            (1003, 4, 1u32.to_be_bytes().to_vec(), 1),
            (1004, 9, text("Test A"), 1),
            (1022, 6, text("noarch"), 1),
            (
                1030,
                3,
                [0o040755u16.to_be_bytes(), 0o100644u16.to_be_bytes()].concat(),
                2,
            ),
            (
                1037,
                4,
                [0u32.to_be_bytes(), 64u32.to_be_bytes()].concat(),
                2,
            ),
            (1044, 6, text("testa-1.2.3-4.fc39.src.rpm"), 1),
            (
                1048,
                4,
                [12u32.to_be_bytes(), 16777226u32.to_be_bytes()].concat(),
                2,
            ),
            (1049, 8, texts(&["testb", "rpmlib(X)"]), 2),
            (1050, 8, texts(&["1:2.0-1", "4.0-1"]), 2),
            (
                1116,
                4,
                [0u32.to_be_bytes(), 1u32.to_be_bytes()].concat(),
                2,
            ),
            (1117, 8, texts(&["testa", "testa.log"]), 2),
            (1118, 8, texts(&["/etc/", "/var/log/"]), 2),
        ]);
        let package = read_package(&file[..]).expect("a package");
        assert_eq!(package.file_name(), "testa-1.2.3-4.fc39.noarch.rpm");
        assert_eq!(package.evr(), "1:1.2.3-4.fc39");
        assert_eq!(package.archive_size, 396);
        assert_eq!(package.requires[0].name, "testb");
        assert_eq!(package.requires[0].flags, 12);
        assert_eq!(package.requires[0].version, "1:2.0-1");
        assert_eq!(
            package.files,
            vec![
                PackageFile {
                    path: "/etc/testa".into(),
                    directory: true,
                    ghost: false
                },
                PackageFile {
                    path: "/var/log/testa.log".into(),
                    directory: false,
                    ghost: true
                },
            ]
        );
        let (start, end) = package.header_range;
        assert_eq!(start, 96 + 32 + 4 + 4);
        assert_eq!(&file[end as usize..], b"payload");
    }

    #[test]
    fn broken_packages_are_refused() {
        assert!(read_package(&b"not an rpm"[..]).is_err());
        let good = rpm(&[
            (1000, 6, text("a"), 1),
            (1001, 6, text("1"), 1),
            (1002, 6, text("1"), 1),
            (1022, 6, text("x86_64"), 1),
            (1044, 6, text("a-1-1.src.rpm"), 1),
        ]);
        assert!(read_package(&good[..]).is_ok());
        assert!(read_package(&good[..good.len() - 12]).is_err());
        let nameless = rpm(&[(1001, 6, text("1"), 1), (1044, 6, text("x"), 1)]);
        assert_eq!(read_package(&nameless[..]), Err(RpmError::Missing("name")));
        let traversal = rpm(&[
            (1000, 6, text("../x"), 1),
            (1001, 6, text("1"), 1),
            (1002, 6, text("1"), 1),
            (1022, 6, text("x86_64"), 1),
            (1044, 6, text("a"), 1),
        ]);
        assert!(read_package(&traversal[..]).is_err());
        let mut misaligned = rpm(&[(1000, 6, text("a"), 1), (1003, 4, vec![0, 0, 0, 1], 1)]);
        // The EPOCH entry's offset (after "a\0" and two bytes of alignment) made odd.
        let at = 96 + 32 + 4 + 4 + 16 + 16 + 8;
        misaligned[at + 3] = 3;
        assert!(read_package(&misaligned[..]).is_err());
    }
}
