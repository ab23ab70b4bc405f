//! An upstream's simple-index project page, PEP 691 JSON or PEP 503 HTML (whichever it answered),
//! read into the files it lists: name, absolute URL, sha256, `Requires-Python`, yanked state and the
//! sha256 of the core metadata file (PEP 658/714). Files this registry cannot serve faithfully are
//! left out: names that are not a wheel or sdist, names outside warehouse's character set, links
//! that are not http(s), and files without a sha256 (nothing to verify the download against).

use std::time::UNIX_EPOCH;

use arca_protocol::Sha256;
use reqwest::Url;
use serde_json::Value;

use super::names::{normalize_version, parse_distribution};
use super::upload::is_valid_filename;

/// One file an upstream lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamFile {
    /// File name.
    pub filename: String,
    /// Its version (normalised when it has a PEP 440 normal form), from the file name.
    pub version: String,
    /// Where the upstream serves it (absolute, without fragment).
    pub url: String,
    /// Its sha256, as the upstream promises.
    pub sha256: Sha256,
    /// `Requires-Python`.
    pub requires_python: Option<String>,
    /// `Some(reason)` when yanked (the reason may be empty).
    pub yanked: Option<String>,
    /// sha256 of the core metadata file at `<url>.metadata`, when the upstream offers one with a
    /// digest.
    pub core_metadata: Option<Sha256>,
    /// Size in bytes, when listed (PEP 700).
    pub size: Option<u64>,
    /// Upload time in unix milliseconds, when listed (PEP 700).
    pub uploaded_at: Option<u64>,
}

/// A file as the page lists it, before it is checked.
#[derive(Debug, Default)]
struct Listed {
    filename: String,
    href: String,
    sha256: Option<String>,
    requires_python: Option<String>,
    yanked: Option<String>,
    core_metadata: Option<String>,
    size: Option<u64>,
    upload_time: Option<String>,
}

impl Listed {
    fn check(self, page: &Url) -> Option<UpstreamFile> {
        let mut url = page.join(self.href.trim()).ok()?;
        let fragment_hash = url
            .fragment()
            .and_then(|f| f.strip_prefix("sha256="))
            .map(str::to_string);
        url.set_fragment(None);
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let filename = if self.filename.is_empty() {
            url.path_segments()?.next_back()?.to_string()
        } else {
            self.filename
        };
        if !is_valid_filename(&filename) {
            return None;
        }
        let parsed = parse_distribution(&filename)?;
        let version = normalize_version(&parsed.version).unwrap_or(parsed.version);
        let sha256 = self.sha256.or(fragment_hash)?.trim().parse().ok()?;
        Some(UpstreamFile {
            filename,
            version,
            url: url.to_string(),
            sha256,
            requires_python: self.requires_python.filter(|r| !r.trim().is_empty()),
            yanked: self.yanked,
            core_metadata: self.core_metadata.and_then(|hex| hex.trim().parse().ok()),
            size: self.size,
            uploaded_at: self
                .upload_time
                .and_then(|t| humantime::parse_rfc3339_weak(t.trim()).ok())
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64),
        })
    }
}

/// The files a project page lists; `content_type` (the upstream's) tells JSON from HTML, and
/// relative links resolve against `page`, the page's URL.
pub fn parse(body: &[u8], content_type: &str, page: &Url) -> Vec<UpstreamFile> {
    let text = String::from_utf8_lossy(body);
    let is_json =
        content_type.to_ascii_lowercase().contains("json") || text.trim_start().starts_with('{');
    let listed = if is_json {
        parse_json(&text)
    } else {
        parse_html(&text)
    };
    listed
        .into_iter()
        .filter_map(|file| file.check(page))
        .collect()
}

/// PEP 691: `{"files": [{"filename", "url", "hashes", "requires-python", "yanked", "core-metadata",
/// "size", "upload-time"}]}`.
fn parse_json(text: &str) -> Vec<Listed> {
    let Ok(page) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let Some(files) = page.get("files").and_then(Value::as_array) else {
        return Vec::new();
    };
    files
        .iter()
        .filter_map(|file| {
            let text = |key: &str| file.get(key).and_then(Value::as_str).map(str::to_string);
            let core_metadata = [
                "core-metadata",
                "dist-info-metadata",
                "data-dist-info-metadata",
            ]
            .iter()
            .filter_map(|key| file.get(*key))
            .find_map(|value| value.get("sha256").and_then(Value::as_str))
            .map(str::to_string);
            Some(Listed {
                filename: text("filename")?,
                href: text("url")?,
                sha256: file
                    .get("hashes")
                    .and_then(|h| h.get("sha256"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                requires_python: text("requires-python"),
                yanked: match file.get("yanked") {
                    Some(Value::Bool(true)) => Some(String::new()),
                    Some(Value::String(reason)) => Some(reason.clone()),
                    _ => None,
                },
                core_metadata,
                size: file.get("size").and_then(Value::as_u64),
                upload_time: text("upload-time"),
            })
        })
        .collect()
}

/// PEP 503: one `<a href="URL#sha256=..." data-requires-python=".." data-yanked=".."
/// data-core-metadata="sha256=..">FILENAME</a>` per file.
fn parse_html(text: &str) -> Vec<Listed> {
    // ASCII lowercasing keeps every byte offset, so positions found in `lower` index `text`.
    let lower = text.to_ascii_lowercase();
    let mut files = Vec::new();
    let mut at = 0;
    while let Some(found) = lower[at..].find("<a") {
        let start = at + found + 2;
        at = start;
        if !lower[start..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_whitespace() || c == '>')
        {
            continue;
        }
        let Some(end) = tag_end(text, start) else {
            break;
        };
        let attributes = attributes(&text[start..end]);
        let content_end = lower[end + 1..]
            .find("</a")
            .map_or(text.len(), |i| end + 1 + i);
        at = content_end;
        let attribute = |name: &str| {
            attributes
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let Some(href) = attribute("href") else {
            continue;
        };
        let core_metadata = attribute("data-core-metadata")
            .or_else(|| attribute("data-dist-info-metadata"))
            .and_then(|value| value.trim().strip_prefix("sha256=").map(str::to_string));
        files.push(Listed {
            filename: unescape(strip_tags(&text[end + 1..content_end]).trim()),
            href,
            sha256: None,
            requires_python: attribute("data-requires-python"),
            yanked: attribute("data-yanked"),
            core_metadata,
            size: None,
            upload_time: None,
        });
    }
    files
}

/// The position of the `>` closing a tag whose attributes start at `start` (quotes respected).
fn tag_end(text: &str, start: usize) -> Option<usize> {
    let mut quote = None;
    for (i, c) in text[start..].char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(start + i),
            _ => {}
        }
    }
    None
}

/// The attributes of a tag (names lowercased, values unescaped; a bare name has an empty value).
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = tag;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if rest.is_empty() {
            return out;
        }
        let name_end = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        if name_end == 0 {
            // A stray `=`: skip it.
            rest = &rest[1..];
            continue;
        }
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let value = match rest.strip_prefix('=') {
            Some(after) => {
                let after = after.trim_start();
                match after.chars().next() {
                    Some(q @ ('"' | '\'')) => {
                        let body = &after[1..];
                        let close = body.find(q).unwrap_or(body.len());
                        rest = body.get(close + 1..).unwrap_or_default();
                        &body[..close]
                    }
                    _ => {
                        let end = after
                            .find(|c: char| c.is_ascii_whitespace())
                            .unwrap_or(after.len());
                        rest = &after[end..];
                        &after[..end]
                    }
                }
            }
            None => "",
        };
        out.push((name, unescape(value)));
    }
}

/// Text without any tags inside it.
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Decodes HTML character references (`&amp;`, `&#39;`, `&#x27;`, ...); unknown ones stay as written.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let mut end = rest.len().min(12);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let decoded = Some(&rest[1..end]).and_then(|window| {
            let semicolon = window.find(';')?;
            let entity = &window[..semicolon];
            let c = match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = entity.strip_prefix('#')?;
                    let value = match code.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => code.parse().ok()?,
                    };
                    char::from_u32(value)?
                }
            };
            Some((c, semicolon + 2))
        });
        match decoded {
            Some((c, length)) => {
                out.push(c);
                rest = &rest[length..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("http://up.example/pypi/py/simple/dep-a/").expect("url")
    }

    #[test]
    fn html_pages_are_read_with_their_attributes() {
        let a = "aa".repeat(32);
        let m = "cd".repeat(32);
        let html = format!(
            "<!DOCTYPE html><html><body><h1>Links for dep-a</h1>\n\
             <a href=\"/pypi/py/files/dep-a/1.0.0/dep_a-1.0.0-py3-none-any.whl#sha256={a}\" \
             data-requires-python=\"&lt;4,&gt;=3.8\" data-dist-info-metadata=\"sha256={m}\" \
             data-core-metadata=\"sha256={m}\">dep_a-1.0.0-py3-none-any.whl</a><br />\n\
             <A HREF='../../files/dep_a-1.0.0.tar.gz#sha256={a}' data-yanked>dep_a-1.0.0.tar.gz</A>\n\
             <a href=\"https://other.example/dep_a-2.0.tar.gz#sha256={a}\" data-yanked=\"bad &quot;one&quot;\">\
             <span>dep_a-2.0.tar.gz</span></a>\n\
             <a href=\"/nohash/dep_a-3.0.tar.gz\">dep_a-3.0.tar.gz</a>\n\
             <a href=\"/x/dep_a-1.0.egg#sha256={a}\">dep_a-1.0.egg</a>\n\
             <abbr>not a link</abbr><a href=\"ftp://x/dep_a-4.0.tar.gz#sha256={a}\">dep_a-4.0.tar.gz</a>\n\
             </body></html>"
        );
        let files = parse(html.as_bytes(), "text/html; charset=utf-8", &page());
        assert_eq!(files.len(), 3, "{files:#?}");
        let wheel = &files[0];
        assert_eq!(wheel.filename, "dep_a-1.0.0-py3-none-any.whl");
        assert_eq!(wheel.version, "1.0.0");
        assert_eq!(
            wheel.url,
            "http://up.example/pypi/py/files/dep-a/1.0.0/dep_a-1.0.0-py3-none-any.whl"
        );
        assert_eq!(wheel.sha256, Sha256([0xaa; 32]));
        assert_eq!(wheel.requires_python.as_deref(), Some("<4,>=3.8"));
        assert_eq!(wheel.yanked, None);
        assert_eq!(wheel.core_metadata, Some(Sha256([0xcd; 32])));
        assert_eq!(
            files[1].url,
            "http://up.example/pypi/py/files/dep_a-1.0.0.tar.gz"
        );
        assert_eq!(files[1].yanked.as_deref(), Some(""));
        assert_eq!(files[1].core_metadata, None);
        assert_eq!(files[2].filename, "dep_a-2.0.tar.gz");
        assert_eq!(files[2].yanked.as_deref(), Some("bad \"one\""));
        assert_eq!(files[2].url, "https://other.example/dep_a-2.0.tar.gz");
    }

    #[test]
    fn json_pages_are_read() {
        let json = serde_json::json!({
            "meta": {"api-version": "1.1"},
            "name": "dep-a",
            "files": [
                {
                    "filename": "dep_a-1.0.0-py3-none-any.whl",
                    "url": "/pypi/py/files/dep-a/1.0.0/dep_a-1.0.0-py3-none-any.whl",
                    "hashes": {"sha256": "AB".repeat(32)},
                    "requires-python": ">=3.8",
                    "yanked": "broken",
                    "core-metadata": {"sha256": "cd".repeat(32)},
                    "size": 1234,
                    "upload-time": "1970-01-01T00:00:01.500000Z",
                },
                {
                    "filename": "dep_a-1.0.0.tar.gz",
                    "url": "https://files.example/dep_a-1.0.0.tar.gz",
                    "hashes": {"sha256": "ab".repeat(32)},
                    "requires-python": null,
                    "yanked": false,
                    "core-metadata": true,
                },
                {"filename": "dep_a-2.0.tar.gz", "url": "x", "hashes": {}},
            ],
        });
        let files = parse(
            json.to_string().as_bytes(),
            "application/vnd.pypi.simple.v1+json",
            &page(),
        );
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].sha256, Sha256([0xab; 32]));
        assert_eq!(files[0].yanked.as_deref(), Some("broken"));
        assert_eq!(files[0].core_metadata, Some(Sha256([0xcd; 32])));
        assert_eq!(files[0].size, Some(1234));
        assert_eq!(files[0].uploaded_at, Some(1500));
        assert_eq!(
            files[0].url,
            "http://up.example/pypi/py/files/dep-a/1.0.0/dep_a-1.0.0-py3-none-any.whl"
        );
        assert_eq!(files[1].requires_python, None);
        assert_eq!(files[1].yanked, None);
        assert_eq!(files[1].core_metadata, None);
    }

    #[test]
    fn character_references_decode() {
        assert_eq!(
            unescape("a &amp; b &lt;&#62; &#x27;c&#39; &bogus; &é &gt;"),
            "a & b <> 'c' &bogus; &é >"
        );
    }
}
