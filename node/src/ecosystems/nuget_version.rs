//! NuGet's version rules: a version is two to four dot-separated numbers, then an optional
//! semver pre-release (`-beta.1`) and build metadata (`+sha`). The normalized form, the one
//! servers and `packages.config` agree on, drops leading zeros and the build metadata, always has
//! three numbers and keeps a fourth only when it is not zero (`1.0` → `1.0.0`, `1.02.3.0` → `1.2.3`,
//! `1.0.0.4-Beta+x` → `1.0.0.4-Beta`). Versions compare case-insensitively; the feeds show the
//! normalized form lower-cased in URLs.

/// The normalized form of `version`, in its own letter case; `None` when it is not a NuGet
/// version.
pub fn normalize(version: &str) -> Option<String> {
    let without_metadata = match version.split_once('+') {
        Some((version, metadata)) => {
            if metadata.is_empty() || !metadata.split('.').all(is_identifier) {
                return None;
            }
            version
        }
        None => version,
    };
    let (numbers, prerelease) = match without_metadata.split_once('-') {
        Some((numbers, prerelease)) => (numbers, Some(prerelease)),
        None => (without_metadata, None),
    };
    let parts: Vec<u64> = numbers
        .split('.')
        .map(|part| {
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) && part.len() <= 9)
                .then(|| part.parse().ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    if !(2..=4).contains(&parts.len()) {
        return None;
    }
    let mut normalized = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        parts.get(2).copied().unwrap_or(0)
    );
    if let Some(&revision) = parts.get(3)
        && revision != 0
    {
        normalized.push_str(&format!(".{revision}"));
    }
    if let Some(prerelease) = prerelease {
        if prerelease.is_empty() || !prerelease.split('.').all(is_identifier) {
            return None;
        }
        normalized.push('-');
        normalized.push_str(prerelease);
    }
    Some(normalized)
}

/// A dot-separated part of a pre-release or build metadata: letters, digits and `-`.
fn is_identifier(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A package id: letters, digits, `.`, `_` and `-`, at most 100 characters, starting with a letter,
/// digit or `_`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && !id.contains("..")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_normalize_as_nuget_does() {
        for (given, normalized) in [
            ("1.0", "1.0.0"),
            ("1.02.3.0", "1.2.3"),
            ("1.0.0.4-Beta+git.abc", "1.0.0.4-Beta"),
            ("2.1.0-rc.1", "2.1.0-rc.1"),
            ("010.0.1", "10.0.1"),
        ] {
            assert_eq!(normalize(given).as_deref(), Some(normalized), "{given}");
        }
        for bad in [
            "1",
            "1.2.3.4.5",
            "1.a",
            "1.0-",
            "1.0-beta..1",
            "1.0+",
            "v1.0",
            "../1.0",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
        assert!(is_valid_id("Newtonsoft.Json") && is_valid_id("_x-y"));
        assert!(!is_valid_id("../x") && !is_valid_id("a/b") && !is_valid_id(".x"));
    }
}
