//! RubyGems' version order (`Gem::Version#<=>`): a version is split into segments at dots and at
//! every change between digits and letters (`1.0.0.rc1` is `1 0 0 rc 1`); segments compare as
//! numbers, or as text when both are letters, a letter segment (a pre-release) sorting before any
//! number; trailing zero segments do not count (`1.0` equals `1`).

use std::cmp::Ordering;

#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    Number(u64),
    Text(&'a str),
}

fn segments(version: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in version.trim().split(['.', '-']) {
        let mut start = 0;
        let bytes = part.as_bytes();
        for i in 1..=bytes.len() {
            let boundary =
                i == bytes.len() || bytes[i].is_ascii_digit() != bytes[i - 1].is_ascii_digit();
            if boundary {
                let piece = &part[start..i];
                out.push(match piece.parse::<u64>() {
                    Ok(n) => Segment::Number(n),
                    Err(_) => Segment::Text(piece),
                });
                start = i;
            }
        }
    }
    // `1.0` is `1`: trailing zeros (before any pre-release text) do not count.
    while out.len() > 1 && out.last() == Some(&Segment::Number(0)) {
        out.pop();
    }
    out
}

/// Orders two gem version numbers as `Gem::Version#<=>` does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (x, y) = (segments(a), segments(b));
    for i in 0..x.len().max(y.len()) {
        let order = match (x.get(i), y.get(i)) {
            (Some(Segment::Number(p)), Some(Segment::Number(q))) => p.cmp(q),
            (Some(Segment::Text(p)), Some(Segment::Text(q))) => p.cmp(q),
            (Some(Segment::Text(_)), Some(Segment::Number(_))) => Ordering::Less,
            (Some(Segment::Number(_)), Some(Segment::Text(_))) => Ordering::Greater,
            (Some(Segment::Number(p)), None) => p.cmp(&0),
            (None, Some(Segment::Number(q))) => 0.cmp(q),
            (Some(Segment::Text(_)), None) => Ordering::Less,
            (None, Some(Segment::Text(_))) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_as_rubygems_orders_them() {
        let ascending = [
            "0.9",
            "1.0.0.a",
            "1.0.0.rc1",
            "1.0.0.rc2",
            "1.0",
            "1.0.1",
            "1.2",
            "1.10",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(compare(pair[0], pair[1]), Ordering::Less, "{pair:?}");
            assert_eq!(compare(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
        }
        assert_eq!(compare("1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(compare("1.0.0.rc1", "1.0.0rc1"), Ordering::Equal);
    }
}
