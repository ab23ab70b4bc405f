//! Order-preserving composite keys for the state tables.
//!
//! A key is a sequence of parts (names, digests, big-endian numbers). Each part is written with its
//! zero bytes escaped (`00` becomes `00 FF`) and ends with `00 01`, so that comparing two encoded keys
//! byte by byte orders them exactly as comparing their parts one after the other would, and every
//! key that starts with the parts `p` sorts in one contiguous run right after [`prefix`]`(p)`. That is
//! what lets a listing of the versions of one package (or the packages of one registry) be one range
//! read that stops where the prefix ends, at any size.

use std::ops::Bound;

const ESCAPE: u8 = 0xFF;
const END: u8 = 0x01;

/// A key being built part by part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    /// An empty key.
    pub fn new() -> Key {
        Key(Vec::new())
    }

    /// Appends a part.
    pub fn part(mut self, part: impl AsRef<[u8]>) -> Key {
        for &byte in part.as_ref() {
            self.0.push(byte);
            if byte == 0 {
                self.0.push(ESCAPE);
            }
        }
        self.0.push(0);
        self.0.push(END);
        self
    }

    /// Appends a number so that numbers sort in numeric order.
    pub fn number(self, number: u64) -> Key {
        self.part(number.to_be_bytes())
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The encoded bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// The key of `parts` (each a string or bytes).
pub fn of<P: AsRef<[u8]>>(parts: &[P]) -> Vec<u8> {
    parts
        .iter()
        .fold(Key::new(), |key, part| key.part(part))
        .into_bytes()
}

/// The bytes every key beginning with `parts` starts with (the same as the key of `parts`: a key's
/// own parts are all terminated).
pub fn prefix<P: AsRef<[u8]>>(parts: &[P]) -> Vec<u8> {
    of(parts)
}

/// A malformed stored key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed key {0}")]
pub struct BadKey(String);

impl BadKey {
    /// The error for the stored key `key`.
    pub fn of(key: &[u8]) -> BadKey {
        BadKey(hex::encode(key))
    }
}

fn bad(key: &[u8]) -> BadKey {
    BadKey::of(key)
}

/// The parts of an encoded key.
pub fn parts(key: &[u8]) -> Result<Vec<Vec<u8>>, BadKey> {
    let mut parts = Vec::new();
    let mut current = Vec::new();
    let mut bytes = key.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != 0 {
            current.push(byte);
            continue;
        }
        match bytes.next() {
            Some(ESCAPE) => current.push(0),
            Some(END) => parts.push(std::mem::take(&mut current)),
            _ => return Err(bad(key)),
        }
    }
    if !current.is_empty() {
        return Err(bad(key));
    }
    Ok(parts)
}

/// Part `index` of an encoded key, as text.
pub fn text_part(key: &[u8], index: usize) -> Result<String, BadKey> {
    let mut all = parts(key)?;
    if index >= all.len() {
        return Err(bad(key));
    }
    String::from_utf8(all.swap_remove(index)).map_err(|_| bad(key))
}

/// Part `index` of an encoded key, as a number written by [`Key::number`].
pub fn number_part(key: &[u8], index: usize) -> Result<u64, BadKey> {
    let all = parts(key)?;
    let bytes: [u8; 8] = all
        .get(index)
        .and_then(|part| part.as_slice().try_into().ok())
        .ok_or_else(|| bad(key))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The range of keys that start with `prefix`, beginning after `after` (a full key) when given.
pub fn range_after(prefix: &[u8], after: Option<&[u8]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let start = match after {
        Some(after) => Bound::Excluded(after.to_vec()),
        None => Bound::Included(prefix.to_vec()),
    };
    (start, end_of(prefix))
}

/// The first key after every key that starts with `prefix`.
pub fn end_of(prefix: &[u8]) -> Bound<Vec<u8>> {
    // Every part ends in `00 01`, so a prefix never ends in FF and incrementing its last byte gives
    // the first key past every key it begins.
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_keys_sort_like_their_parts() {
        let mut tuples: Vec<Vec<&[u8]>> = vec![
            vec![b"a", b"b"],
            vec![b"a", b""],
            vec![b"a\0", b"x"],
            vec![b"a", b"b\0"],
            vec![b"", b"z"],
            vec![b"ab", b""],
            vec![b"a\0\xff", b""],
            vec![b"a\x01", b""],
        ];
        let mut encoded: Vec<Vec<u8>> = tuples.iter().map(|t| of(t)).collect();
        tuples.sort();
        encoded.sort();
        let decoded: Vec<Vec<Vec<u8>>> =
            encoded.iter().map(|k| parts(k).expect("decodes")).collect();
        let expected: Vec<Vec<Vec<u8>>> = tuples
            .iter()
            .map(|t| t.iter().map(|p| p.to_vec()).collect())
            .collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn a_prefix_range_holds_exactly_the_keys_that_begin_with_it() {
        let prefix = prefix(&["reg", "pkg"]);
        let (start, end) = range_after(&prefix, None);
        let inside = [of(&["reg", "pkg", ""]), of(&["reg", "pkg", "\u{ff}zz"])];
        let outside = [
            of(&["reg", "pkg"]),
            of(&["reg", "pkg\0", "1"]),
            of(&["reg", "pkh", "1"]),
            of(&["reg", "pk", "1"]),
        ];
        let contains = |key: &Vec<u8>| {
            let after_start = match &start {
                Bound::Included(s) => key >= s,
                Bound::Excluded(s) => key > s,
                Bound::Unbounded => true,
            };
            let before_end = match &end {
                Bound::Excluded(e) => key < e,
                _ => true,
            };
            after_start && before_end && key.len() > prefix.len()
        };
        assert!(inside.iter().all(contains));
        assert!(!outside.iter().any(contains));
        assert_eq!(number_part(&Key::new().number(7).into_bytes(), 0), Ok(7));
        assert_eq!(text_part(&of(&["a", "b"]), 1).as_deref(), Ok("b"));
        assert!(parts(b"a\0").is_err());
    }
}
