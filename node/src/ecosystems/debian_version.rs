//! Debian package versions, `[epoch:]upstream_version[-debian_revision]`, checked and ordered as
//! dpkg does (deb-version(7)): the epoch as a number, then each part compared in runs of non-digits
//! (letters before everything else, `~` before even the end of the string) and runs of digits
//! (numerically).

use std::cmp::Ordering;

/// Checks `version` against dpkg's syntax; the reason when it does not hold.
pub fn check(version: &str) -> Result<(), &'static str> {
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) => (Some(epoch), rest),
        None => (None, version),
    };
    if let Some(epoch) = epoch
        && (epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the epoch is not a number");
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((upstream, revision)) => (upstream, Some(revision)),
        None => (rest, None),
    };
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("the upstream version does not start with a digit");
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"+.~".contains(&b);
    if !upstream
        .bytes()
        .all(|b| allowed(b) || (b == b'-' && revision.is_some()) || b == b':')
        || (epoch.is_none() && upstream.contains(':'))
    {
        return Err("the upstream version holds a character dpkg does not allow");
    }
    if let Some(revision) = revision
        && (revision.is_empty() || !revision.bytes().all(allowed))
    {
        return Err("the Debian revision is empty or holds a character dpkg does not allow");
    }
    Ok(())
}

/// The order of a character in a non-digit run: `~` first, then the end, letters, the rest.
fn weight(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp` over one part (upstream version or revision).
fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (x, y) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if x != y {
                return x.cmp(&y);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_difference = Ordering::Equal;
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_difference == Ordering::Equal {
                first_difference = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_difference != Ordering::Equal {
            return first_difference;
        }
    }
    Ordering::Equal
}

/// The parts of a version: epoch (0 when absent), upstream version, revision (`""` when absent).
fn parts(version: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) => (epoch.parse().unwrap_or(0), rest),
        None => (0, version),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// Orders two Debian versions as dpkg does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (parts(a.trim()), parts(b.trim()));
    a.0.cmp(&b.0)
        .then_with(|| compare_part(a.1, b.1))
        .then_with(|| compare_part(a.2, b.2))
}

/// The version as it appears in a package's file name: without its epoch.
pub fn without_epoch(version: &str) -> &str {
    version.split_once(':').map_or(version, |(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_as_dpkg_orders_them() {
        let ascending = [
            "0.9", "1.0~rc1", "1.0", "1.0-1", "1.0-1+b1", "1.0-2", "1.0a", "1.0.1", "1.2", "1.10",
            "1:0.1",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(compare(pair[0], pair[1]), Ordering::Less, "{pair:?}");
            assert_eq!(compare(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
        }
        assert_eq!(compare("1.01", "1.1"), Ordering::Equal);
        assert_eq!(compare("0:1.0", "1.0"), Ordering::Equal);
    }

    #[test]
    fn syntax_is_checked() {
        for good in [
            "1",
            "1.0-1",
            "2:1.2~rc1+dfsg-3ubuntu1",
            "1.0-rc-1",
            "3:1:2-1",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in ["", "a1", "x:1", "1.0-", "1_0", "1.0 1"] {
            assert!(check(bad).is_err(), "{bad}");
        }
        assert_eq!(without_epoch("2:1.0-1"), "1.0-1");
    }
}
