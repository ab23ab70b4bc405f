//! Follows an npm publish document as it arrives, byte by byte, to take the base64 `data` of its
//! attachment (`_attachments.<file>.data`) out of it: that string's characters go to the caller as
//! they come, and everything else is kept, the data replaced by `""`, to be parsed as JSON once the
//! body has ended. The scanner follows only the structure (strings, objects, arrays, keys); whether
//! the document is valid JSON is for the parser that reads what was kept.

/// Deepest nesting accepted (serde_json's own limit is 128).
pub const MAX_DEPTH: usize = 128;
/// Keys longer than this cannot be `_attachments` or `data`, and are not remembered.
const KEY_BYTES: usize = 64;

/// Why a document cannot be a publish document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// The document without its attachment data is larger than allowed.
    #[error("the publish document's metadata exceeds {0} bytes")]
    MetadataTooLarge(usize),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("the publish document nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A second `data` string.
    #[error("a publish carries exactly one attachment")]
    SecondAttachment,
    /// An escape other than `\/` inside the data.
    #[error("the attachment's data is not base64")]
    EscapedData,
}

/// The key a value in an object belongs to, as far as finding the data goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// No key read yet.
    None,
    /// `_attachments` (at the top level).
    Attachments,
    /// `data` (inside an attachment).
    Data,
    /// Any other.
    Other,
}

#[derive(Debug)]
enum Frame {
    Object { expect_key: bool, key: Key },
    Array,
}

/// What the string being read is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Key,
    Value,
    Data,
}

#[derive(Debug)]
enum Lex {
    /// Outside strings: punctuation, whitespace, numbers and literals.
    Between,
    /// Inside a string; `escaped` right after a backslash.
    InString { role: Role, escaped: bool },
}

/// The scanner. Feed it the body's pieces in order.
#[derive(Debug)]
pub struct Scanner {
    stack: Vec<Frame>,
    lex: Lex,
    key: Vec<u8>,
    kept: Vec<u8>,
    kept_limit: usize,
    data_seen: bool,
    data_closed: bool,
}

impl Scanner {
    /// A scanner keeping at most `kept_limit` bytes of the document besides the data.
    pub fn new(kept_limit: usize) -> Self {
        Scanner {
            stack: Vec::new(),
            lex: Lex::Between,
            key: Vec::new(),
            kept: Vec::new(),
            kept_limit,
            data_seen: false,
            data_closed: false,
        }
    }

    /// Whether the data string has begun.
    pub fn data_seen(&self) -> bool {
        self.data_seen
    }

    /// Whether the data string has ended.
    pub fn data_closed(&self) -> bool {
        self.data_closed
    }

    /// The document without its data, once the body has ended.
    pub fn into_kept(self) -> Vec<u8> {
        self.kept
    }

    /// Reads the next piece of the body: the data's characters are appended to `data`, the rest is
    /// kept.
    pub fn feed(&mut self, mut input: &[u8], data: &mut Vec<u8>) -> Result<(), ScanError> {
        while !input.is_empty() {
            let used = match self.lex {
                Lex::Between => self.between(input[0])?,
                Lex::InString { role, escaped } => self.in_string(role, escaped, input, data)?,
            };
            input = &input[used..];
        }
        Ok(())
    }

    fn keep(&mut self, bytes: &[u8]) -> Result<(), ScanError> {
        if self.kept.len() + bytes.len() > self.kept_limit {
            return Err(ScanError::MetadataTooLarge(self.kept_limit));
        }
        self.kept.extend_from_slice(bytes);
        Ok(())
    }

    /// One byte outside strings.
    fn between(&mut self, byte: u8) -> Result<usize, ScanError> {
        self.keep(&[byte])?;
        match byte {
            b'"' => {
                let role = self.role_of_next_string();
                if role == Role::Data {
                    if self.data_seen {
                        return Err(ScanError::SecondAttachment);
                    }
                    self.data_seen = true;
                }
                self.key.clear();
                self.lex = Lex::InString {
                    role,
                    escaped: false,
                };
            }
            b'{' | b'[' => {
                if self.stack.len() == MAX_DEPTH {
                    return Err(ScanError::TooDeep);
                }
                self.stack.push(if byte == b'{' {
                    Frame::Object {
                        expect_key: true,
                        key: Key::None,
                    }
                } else {
                    Frame::Array
                });
            }
            b'}' | b']' => {
                self.stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { expect_key, .. }) = self.stack.last_mut() {
                    *expect_key = false;
                }
            }
            b',' => {
                if let Some(Frame::Object { expect_key, key }) = self.stack.last_mut() {
                    *expect_key = true;
                    *key = Key::None;
                }
            }
            _ => {}
        }
        Ok(1)
    }

    /// What a string starting now is: a key, the attachment's data, or another value.
    fn role_of_next_string(&self) -> Role {
        match self.stack.as_slice() {
            [
                ..,
                Frame::Object {
                    expect_key: true, ..
                },
            ] => Role::Key,
            [
                Frame::Object {
                    key: Key::Attachments,
                    ..
                },
                Frame::Object { .. },
                Frame::Object {
                    expect_key: false,
                    key: Key::Data,
                },
            ] => Role::Data,
            _ => Role::Value,
        }
    }

    /// Reads inside a string up to its end or the end of `input`; returns the bytes used.
    fn in_string(
        &mut self,
        role: Role,
        escaped: bool,
        input: &[u8],
        data: &mut Vec<u8>,
    ) -> Result<usize, ScanError> {
        if escaped {
            if role == Role::Data {
                // Base64 holds no character JSON must escape; `\/` is an allowed spelling of `/`.
                if input[0] != b'/' {
                    return Err(ScanError::EscapedData);
                }
                data.push(b'/');
            } else {
                self.take_string_bytes(role, &input[..1], data)?;
            }
            self.lex = Lex::InString {
                role,
                escaped: false,
            };
            return Ok(1);
        }
        let Some(stop) = input.iter().position(|b| matches!(b, b'"' | b'\\')) else {
            self.take_string_bytes(role, input, data)?;
            return Ok(input.len());
        };
        self.take_string_bytes(role, &input[..stop], data)?;
        if input[stop] == b'\\' {
            if role != Role::Data {
                self.take_string_bytes(role, b"\\", data)?;
            }
            self.lex = Lex::InString {
                role,
                escaped: true,
            };
        } else {
            self.keep(b"\"")?;
            self.lex = Lex::Between;
            match role {
                Role::Key => self.key_read(),
                Role::Data => self.data_closed = true,
                Role::Value => {}
            }
        }
        Ok(stop + 1)
    }

    /// Characters of a string's body: the data's go to `data`, the others are kept.
    fn take_string_bytes(
        &mut self,
        role: Role,
        bytes: &[u8],
        data: &mut Vec<u8>,
    ) -> Result<(), ScanError> {
        match role {
            Role::Data => {
                data.extend_from_slice(bytes);
                Ok(())
            }
            Role::Key => {
                let room = (KEY_BYTES + 1).saturating_sub(self.key.len());
                self.key.extend_from_slice(&bytes[..room.min(bytes.len())]);
                self.keep(bytes)
            }
            Role::Value => self.keep(bytes),
        }
    }

    /// A key has ended: remember whether it is one on the way to the data.
    fn key_read(&mut self) {
        let depth = self.stack.len();
        let name = if self.key.len() > KEY_BYTES {
            None
        } else if self.key.contains(&b'\\') {
            let mut quoted = Vec::with_capacity(self.key.len() + 2);
            quoted.push(b'"');
            quoted.extend_from_slice(&self.key);
            quoted.push(b'"');
            serde_json::from_slice::<String>(&quoted).ok()
        } else {
            String::from_utf8(self.key.clone()).ok()
        };
        let key = match (depth, name.as_deref()) {
            (1, Some("_attachments")) => Key::Attachments,
            (3, Some("data")) => Key::Data,
            _ => Key::Other,
        };
        if let Some(Frame::Object { key: current, .. }) = self.stack.last_mut() {
            *current = key;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `document` fed in pieces of `step` bytes: (kept, data).
    fn scan(document: &str, step: usize) -> Result<(String, String, bool), ScanError> {
        let mut scanner = Scanner::new(1 << 20);
        let mut data = Vec::new();
        for piece in document.as_bytes().chunks(step) {
            scanner.feed(piece, &mut data)?;
        }
        let closed = scanner.data_closed();
        let kept = String::from_utf8(scanner.into_kept()).expect("utf-8 in, utf-8 kept");
        Ok((kept, String::from_utf8(data).expect("ascii"), closed))
    }

    #[test]
    fn the_data_is_taken_out_and_the_rest_kept_at_any_split() {
        let document = r#"{"name":"p","versions":{"1.0.0":{"name":"p","data":"not this","x":["{\"data\":"]}},"_attachments":{"p-1.0.0.tgz":{"content_type":"application/octet-stream","data":"aGVs\/bG8=","length":5}}}"#;
        for step in 1..document.len() {
            let (kept, data, closed) = scan(document, step).expect("scans");
            assert_eq!(data, "aGVs/bG8=");
            assert!(closed);
            assert_eq!(kept, document.replace(r#""aGVs\/bG8=""#, r#""""#));
            let parsed: serde_json::Value = serde_json::from_str(&kept).expect("kept is JSON");
            assert_eq!(parsed["_attachments"]["p-1.0.0.tgz"]["data"], "");
            assert_eq!(parsed["versions"]["1.0.0"]["data"], "not this");
        }
    }

    #[test]
    fn keys_are_compared_as_json_strings() {
        let (_, data, _) =
            scan(r#"{"\u005fattachments":{"f":{"d\u0061ta":"QQ=="}}}"#, 3).expect("scans");
        assert_eq!(data, "QQ==");
        let (kept, data, _) = scan(r#"{"other":{"f":{"data":"QQ=="}}}"#, 3).expect("scans");
        assert_eq!(data, "");
        assert!(kept.contains("QQ=="));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            scan(
                r#"{"_attachments":{"a":{"data":"QQ=="},"b":{"data":"QQ=="}}}"#,
                5
            ),
            Err(ScanError::SecondAttachment)
        );
        assert_eq!(
            scan(r#"{"_attachments":{"a":{"data":"Q\nQ=="}}}"#, 5),
            Err(ScanError::EscapedData)
        );
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert_eq!(scan(&deep, 7), Err(ScanError::TooDeep));
        let mut small = Scanner::new(8);
        assert_eq!(
            small.feed(br#"{"name":"long-name"}"#, &mut Vec::new()),
            Err(ScanError::MetadataTooLarge(8))
        );
        let mut big_data = Scanner::new(40);
        let document = format!(
            r#"{{"_attachments":{{"a":{{"data":"{}"}}}}}}"#,
            "A".repeat(1000)
        );
        let mut data = Vec::new();
        big_data
            .feed(document.as_bytes(), &mut data)
            .expect("data does not count");
        assert_eq!(data.len(), 1000);
    }
}
