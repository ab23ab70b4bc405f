//! Maven's version order, as `org.apache.maven.artifact.versioning.ComparableVersion` defines it:
//! numbers compare numerically, `1.0 == 1 == 1.0.0`, qualifiers order
//! `alpha < beta < milestone < rc < snapshot < (release) < sp < anything else`, `-` opens a nested
//! list. The artifact-level `maven-metadata.xml` lists versions in this order and picks `latest` and
//! `release` by it.

use std::cmp::Ordering;

/// Known qualifiers, lowest first; the empty one is a release.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// A number, as its digits without leading zeros (`""` is zero).
    Int(String),
    /// A qualifier, with aliases resolved.
    Str(String),
    /// What follows a `-` (or a digit/letter transition).
    List(Vec<Item>),
}

impl Item {
    fn int(digits: &str) -> Item {
        Item::Int(digits.trim_start_matches('0').to_string())
    }

    fn string(text: &str, followed_by_digit: bool) -> Item {
        let text = match text {
            "a" if followed_by_digit => "alpha",
            "b" if followed_by_digit => "beta",
            "m" if followed_by_digit => "milestone",
            "ga" | "final" | "release" => "",
            "cr" => "rc",
            other => other,
        };
        Item::Str(text.to_string())
    }

    fn parse_token(is_digit: bool, token: &str) -> Item {
        if is_digit {
            Item::int(token)
        } else {
            Item::string(token, false)
        }
    }

    fn is_null(&self) -> bool {
        match self {
            Item::Int(digits) => digits.is_empty(),
            Item::Str(text) => text.is_empty(),
            Item::List(items) => items.is_empty(),
        }
    }

    /// Compares with an absent item (the shorter side of a comparison).
    fn cmp_null(&self) -> Ordering {
        match self {
            Item::Int(digits) if digits.is_empty() => Ordering::Equal,
            Item::Int(_) => Ordering::Greater,
            Item::Str(text) => qualifier_rank(text).cmp(&qualifier_rank("")),
            Item::List(items) => items.first().map_or(Ordering::Equal, Item::cmp_null),
        }
    }

    fn compare(&self, other: &Item) -> Ordering {
        match (self, other) {
            (Item::Int(a), Item::Int(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
            (Item::Int(_), _) => Ordering::Greater,
            (Item::Str(_), Item::Int(_) | Item::List(_)) => Ordering::Less,
            (Item::Str(a), Item::Str(b)) => qualifier_rank(a).cmp(&qualifier_rank(b)),
            (Item::List(_), Item::Int(_)) => Ordering::Less,
            (Item::List(_), Item::Str(_)) => Ordering::Greater,
            (Item::List(a), Item::List(b)) => compare_lists(a, b),
        }
    }
}

/// Known qualifiers by position; unknown ones after all of them, alphabetically.
fn qualifier_rank(text: &str) -> String {
    match QUALIFIERS.iter().position(|q| *q == text) {
        Some(index) => index.to_string(),
        None => format!("{}-{text}", QUALIFIERS.len()),
    }
}

fn compare_lists(a: &[Item], b: &[Item]) -> Ordering {
    for index in 0..a.len().max(b.len()) {
        let result = match (a.get(index), b.get(index)) {
            (Some(left), Some(right)) => left.compare(right),
            (Some(left), None) => left.cmp_null(),
            (None, Some(right)) => right.cmp_null().reverse(),
            (None, None) => Ordering::Equal,
        };
        if result != Ordering::Equal {
            return result;
        }
    }
    Ordering::Equal
}

/// Maven's `ListItem.normalize`: from the end, drops null items (zeros, release qualifiers, empty
/// lists), steps over non-null nested lists, and stops at the first other item.
fn normalize(items: &mut Vec<Item>) {
    let mut index = items.len();
    while index > 0 {
        index -= 1;
        if items[index].is_null() {
            items.remove(index);
        } else if !matches!(items[index], Item::List(_)) {
            break;
        }
    }
}

/// Parses a version into Maven's nested item lists.
fn parse(version: &str) -> Vec<Item> {
    let version = version.to_ascii_lowercase();
    // The innermost open list is last; each nested list belongs at the end of the one below it,
    // because nothing is added to a list after a nested list opens.
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut is_digit = false;
    let mut start = 0;
    fn push(stack: &mut [Vec<Item>], item: Item) {
        if let Some(list) = stack.last_mut() {
            list.push(item);
        }
    }
    for (index, c) in version.char_indices() {
        match c {
            '.' | '-' => {
                let item = if index == start {
                    Item::int("")
                } else {
                    Item::parse_token(is_digit, &version[start..index])
                };
                push(&mut stack, item);
                start = index + 1;
                if c == '-' {
                    stack.push(Vec::new());
                }
            }
            _ if c.is_ascii_digit() => {
                if !is_digit && index > start {
                    push(&mut stack, Item::string(&version[start..index], true));
                    start = index;
                    stack.push(Vec::new());
                }
                is_digit = true;
            }
            _ => {
                if is_digit && index > start {
                    push(&mut stack, Item::int(&version[start..index]));
                    start = index;
                    stack.push(Vec::new());
                }
                is_digit = false;
            }
        }
    }
    if version.len() > start {
        push(&mut stack, Item::parse_token(is_digit, &version[start..]));
    }
    let mut nested: Option<Vec<Item>> = None;
    while let Some(mut list) = stack.pop() {
        if let Some(inner) = nested.take() {
            list.push(Item::List(inner));
        }
        normalize(&mut list);
        nested = Some(list);
    }
    nested.unwrap_or_default()
}

/// Orders two versions the way Maven does.
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_lists(&parse(a), &parse(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_like_maven() {
        let ascending = [
            "1-alpha1",
            "1-alpha2",
            "1-beta1",
            "1-m1",
            "1-rc1",
            "1-SNAPSHOT",
            "1",
            "1-sp1",
            "1-abc",
            "1.0.1",
            "1.1-SNAPSHOT",
            "1.1",
            "1.2",
            "1.10",
            "2.0-rc1",
            "2.0",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(
                compare(pair[0], pair[1]),
                Ordering::Less,
                "{} < {}",
                pair[0],
                pair[1]
            );
            assert_eq!(
                compare(pair[1], pair[0]),
                Ordering::Greater,
                "{} > {}",
                pair[1],
                pair[0]
            );
        }
        for (a, b) in [
            ("1", "1.0"),
            ("1.0", "1.0.0"),
            ("1-ga", "1"),
            ("1-final", "1.0"),
            ("1-cr1", "1-rc1"),
            ("1.0-alpha", "1-alpha"),
            ("1.0RELEASE", "1.0"),
        ] {
            assert_eq!(compare(a, b), Ordering::Equal, "{a} == {b}");
        }
    }
}
