//! `.deb` files read as dpkg reads them, for the control paragraph that says what the package is:
//! an `ar` archive of `debian-binary` (`2.0`), `control.tar[.gz|.xz|.zst]` (holding `./control`)
//! and `data.tar.*`, in that order. Only the control member is unpacked, with a size limit.

use std::io::{Read, Write};

use super::control::{Paragraph, ParagraphError};

/// The most a control tar may unpack to.
const CONTROL_LIMIT: u64 = 16 * 1024 * 1024;

/// Why a file is not a usable `.deb`.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// Not an `ar` archive of the members a `.deb` holds.
    #[error("not a Debian binary package: {0}")]
    Layout(String),
    /// The control member could not be unpacked.
    #[error("its control.tar cannot be read: {0}")]
    ControlTar(String),
    /// The control file is not a valid paragraph.
    #[error("its control file is invalid: {0}")]
    Control(#[from] ParagraphError),
}

/// One member header of an `ar` archive: its name and size.
fn member_header(archive: &mut impl Read) -> Result<Option<(String, u64)>, DebError> {
    let mut header = [0u8; 60];
    let mut filled = 0;
    while filled < header.len() {
        let read = archive
            .read(&mut header[filled..])
            .map_err(|e| DebError::Layout(e.to_string()))?;
        if read == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(DebError::Layout("a member header is cut short".into()))
            };
        }
        filled += read;
    }
    if &header[58..60] != b"`\n" {
        return Err(DebError::Layout("a member header is malformed".into()));
    }
    let text = |range: std::ops::Range<usize>| {
        String::from_utf8_lossy(&header[range])
            .trim_end()
            .to_string()
    };
    let name = text(0..16);
    let name = name.strip_suffix('/').unwrap_or(&name).to_string();
    let size = text(48..58)
        .parse::<u64>()
        .map_err(|_| DebError::Layout(format!("member {name} has no valid size")))?;
    Ok(Some((name, size)))
}

/// The control paragraph of the `.deb` read from `archive`.
pub fn control_paragraph(mut archive: impl Read) -> Result<Paragraph, DebError> {
    let mut magic = [0u8; 8];
    archive
        .read_exact(&mut magic)
        .map_err(|_| DebError::Layout("it is too short".into()))?;
    if &magic != b"!<arch>\n" {
        return Err(DebError::Layout("it is not an ar archive".into()));
    }
    let mut seen_binary = false;
    while let Some((name, size)) = member_header(&mut archive)? {
        let mut skip = size % 2;
        match name.as_str() {
            "debian-binary" => {
                if size > 64 {
                    return Err(DebError::Layout("debian-binary is too long".into()));
                }
                let mut version = vec![0u8; size as usize];
                archive
                    .read_exact(&mut version)
                    .map_err(|_| DebError::Layout("debian-binary is cut short".into()))?;
                if !version.starts_with(b"2.") {
                    return Err(DebError::Layout(format!(
                        "format {:?} is not 2.x",
                        String::from_utf8_lossy(&version).trim()
                    )));
                }
                seen_binary = true;
            }
            control if control.starts_with("control.tar") => {
                if !seen_binary {
                    return Err(DebError::Layout("debian-binary does not come first".into()));
                }
                let text = control_file(control, (&mut archive).take(size))?;
                return Ok(Paragraph::parse(&text)?);
            }
            other if other.starts_with("data.tar") => {
                return Err(DebError::Layout("data.tar comes before control.tar".into()));
            }
            // dpkg ignores members starting with `_`; anything else is not a .deb.
            other if other.starts_with('_') => skip += size,
            other => {
                return Err(DebError::Layout(format!("unexpected member {other:?}")));
            }
        }
        let skipped = std::io::copy(&mut (&mut archive).take(skip), &mut std::io::sink())
            .map_err(|e| DebError::Layout(e.to_string()))?;
        if skipped < skip {
            return Err(DebError::Layout(format!("member {name} is cut short")));
        }
    }
    Err(DebError::Layout("it has no control.tar".into()))
}

/// A writer that refuses to hold more than [`CONTROL_LIMIT`] bytes.
struct Limited(Vec<u8>);

impl Write for Limited {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() as u64 + bytes.len() as u64 > CONTROL_LIMIT {
            return Err(std::io::Error::other("the control tar unpacks to too much"));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The text of `./control` in the control tar `member` named `name`.
fn control_file(name: &str, member: impl Read) -> Result<String, DebError> {
    let failed = |e: std::io::Error| DebError::ControlTar(e.to_string());
    let limited = member.take(CONTROL_LIMIT);
    let tar: Box<dyn Read> = match name {
        "control.tar" => Box::new(limited),
        "control.tar.gz" => Box::new(flate2::read::GzDecoder::new(limited)),
        "control.tar.zst" => Box::new(zstd::stream::read::Decoder::new(limited).map_err(failed)?),
        "control.tar.xz" => {
            let mut unpacked = Limited(Vec::new());
            lzma_rs::xz_decompress(&mut std::io::BufReader::new(limited), &mut unpacked)
                .map_err(|e| DebError::ControlTar(e.to_string()))?;
            Box::new(std::io::Cursor::new(unpacked.0))
        }
        other => {
            return Err(DebError::ControlTar(format!(
                "{other} is compressed in a way dpkg does not write"
            )));
        }
    };
    let mut archive = tar::Archive::new(tar.take(CONTROL_LIMIT));
    for entry in archive.entries().map_err(failed)? {
        let mut entry = entry.map_err(failed)?;
        let path = entry.path().map_err(failed)?.to_string_lossy().into_owned();
        if path.trim_start_matches("./") == "control" {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|_| DebError::ControlTar("the control file is not UTF-8 text".into()))?;
            return Ok(text);
        }
    }
    Err(DebError::ControlTar("it holds no control file".into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An `ar` archive of `members`.
    pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"!<arch>\n".to_vec();
        for (name, data) in members {
            out.extend_from_slice(
                format!(
                    "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                    name,
                    0,
                    0,
                    0,
                    100644,
                    data.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    /// A gzip'd tar holding `./control` with `control`.
    pub fn control_tar_gz(control: &str) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_size(control.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "./control", control.as_bytes())
            .expect("tar");
        builder.into_inner().expect("tar").finish().expect("gzip")
    }

    /// A `.deb` whose control file is `control`.
    pub fn deb(control: &str) -> Vec<u8> {
        ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", &control_tar_gz(control)),
            ("data.tar.gz", &control_tar_gz("")),
        ])
    }

    #[test]
    fn the_control_paragraph_is_read_from_a_deb() {
        let deb =
            deb("Package: hello\nVersion: 1:2.0-1\nArchitecture: amd64\nDescription: hi\n more\n");
        let paragraph = control_paragraph(&deb[..]).expect("valid");
        assert_eq!(paragraph.get("Package"), Some("hello"));
        assert_eq!(paragraph.get("Version"), Some("1:2.0-1"));
        assert_eq!(paragraph.get("Description"), Some("hi\n more"));
    }

    #[test]
    fn broken_debs_are_refused() {
        assert!(matches!(
            control_paragraph(&b"!<arch>\n"[..]),
            Err(DebError::Layout(_))
        ));
        assert!(control_paragraph(&b"PK\x03\x04 not an ar"[..]).is_err());
        let no_binary = ar(&[("control.tar.gz", &control_tar_gz("Package: a\n"))]);
        assert!(control_paragraph(&no_binary[..]).is_err());
        let broken = deb("Package hello\n");
        assert!(matches!(
            control_paragraph(&broken[..]),
            Err(DebError::Control(_))
        ));
        let mut truncated = deb("Package: a\nVersion: 1\nArchitecture: all\n");
        truncated.truncate(80);
        assert!(control_paragraph(&truncated[..]).is_err());
    }
}
