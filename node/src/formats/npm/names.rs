//! npm names and paths: package names (npm's rules for new packages, scoped or not), versions
//! (strict semver), dist-tag names, tarball file names, and what a path under `/npm/<registry>/`
//! addresses.

use super::NpmError;

/// Longest package name npm accepts, scope included.
const MAX_NAME_LEN: usize = 214;

/// A valid npm package name: `name` or `@scope/name`, lower case and URL-safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageName(String);

impl PackageName {
    /// Checks `name` against npm's rules for new packages.
    pub fn parse(name: &str) -> Result<PackageName, NpmError> {
        Self::check(name, false)
    }

    /// Checks the name of a package to read, which may be one npm accepted before its current rules
    /// (upper case letters and `~'!()*`, as in `JSONStream`): remote registries serve such packages.
    pub fn parse_existing(name: &str) -> Result<PackageName, NpmError> {
        Self::check(name, true)
    }

    fn check(name: &str, legacy: bool) -> Result<PackageName, NpmError> {
        let invalid =
            |why: &str| NpmError::bad_request(format!("invalid package name {name:?}: {why}"));
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(invalid("must be 1 to 214 characters"));
        }
        let parts: Vec<&str> = match name.strip_prefix('@') {
            Some(scoped) => match scoped.split_once('/') {
                Some((scope, bare)) => vec![scope, bare],
                None => return Err(invalid("a scoped name is @scope/name")),
            },
            None => vec![name],
        };
        for part in &parts {
            if part.is_empty() {
                return Err(invalid("scope and name must not be empty"));
            }
            if part.starts_with(['.', '_']) {
                return Err(invalid("must not start with '.' or '_'"));
            }
            if !part.chars().all(|c| {
                c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || matches!(c, '-' | '.' | '_')
                    || (legacy && (c.is_ascii_uppercase() || "~'!()*".contains(c)))
            }) {
                return Err(invalid(
                    "may only contain lower-case letters, digits, '-', '.' and '_'",
                ));
            }
        }
        if matches!(name, "node_modules" | "favicon.ico") {
            return Err(invalid("is a reserved name"));
        }
        Ok(PackageName(name.to_string()))
    }

    /// The name as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name without its scope (`@scope/x` -> `x`).
    pub fn bare(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The file name of a version's tarball: `<bare name>-<version>.tgz`.
    pub fn tarball(&self, version: &str) -> String {
        format!("{}-{version}.tgz", self.bare())
    }

    /// The version a tarball file name of this package names (`<bare name>-<version>.tgz`).
    pub fn version_of_tarball<'a>(&self, file: &'a str) -> Option<&'a str> {
        file.strip_prefix(self.bare())?
            .strip_prefix('-')?
            .strip_suffix(".tgz")
            .filter(|version| !version.is_empty())
    }
}

impl std::fmt::Display for PackageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks that `version` is a semver version in its canonical form (as npm publishes it).
pub fn validate_version(version: &str) -> Result<semver::Version, NpmError> {
    semver::Version::parse(version)
        .ok()
        .filter(|parsed| parsed.to_string() == version)
        .ok_or_else(|| {
            NpmError::bad_request(format!("invalid version {version:?}: not a semver version"))
        })
}

/// Checks a dist-tag name: URL-safe, and not something npm would read as a version range.
pub fn validate_tag(tag: &str) -> Result<(), NpmError> {
    let url_safe = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !url_safe || semver::VersionReq::parse(tag).is_ok() {
        return Err(NpmError::bad_request(format!(
            "invalid dist-tag {tag:?}: tags are letters, digits, '-', '.', '_' and not a version range"
        )));
    }
    Ok(())
}

/// What a path under `/npm/<registry>/` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `-/ping`
    Ping,
    /// `-/whoami`
    Whoami,
    /// `-/v1/search`
    Search,
    /// `-/v1/login` (web login, not offered)
    WebLogin,
    /// `-/npm/v1/security/advisories/bulk` (`npm audit`)
    AuditBulk,
    /// `-/user/org.couchdb.user:<name>`
    User(String),
    /// `-/package/<name>/dist-tags`
    DistTags(String),
    /// `-/package/<name>/dist-tags/<tag>`
    DistTag(String, String),
    /// `<name>`, or `<name>/-rev/<rev>` (revisions are not checked)
    Packument(String),
    /// `<name>/-/<file>`, or `<name>/-/<file>/-rev/<rev>`
    Tarball(String, String),
    /// `<name>/<version or tag>`
    Version(String, String),
}

/// Splits a package name off the front of `segments`: `@scope%2fname` is one segment, `@scope/name`
/// two.
fn split_name(segments: &[String]) -> Option<(String, &[String])> {
    let first = segments.first()?;
    if first.starts_with('@') && !first.contains('/') {
        let bare = segments.get(1)?;
        Some((format!("{first}/{bare}"), &segments[2..]))
    } else {
        Some((first.clone(), &segments[1..]))
    }
}

/// Parses a raw (still percent-encoded) path below `/npm/<registry>/`.
pub fn parse_endpoint(raw: &str) -> Option<Endpoint> {
    let segments = raw
        .trim_end_matches('/')
        .split('/')
        .map(crate::frontend::percent_decode)
        .collect::<Option<Vec<String>>>()?;
    let words: Vec<&str> = segments.iter().map(String::as_str).collect();
    if words.first() == Some(&"-") {
        return match &words[1..] {
            ["ping"] => Some(Endpoint::Ping),
            ["whoami"] => Some(Endpoint::Whoami),
            ["v1", "search"] => Some(Endpoint::Search),
            ["v1", "login"] => Some(Endpoint::WebLogin),
            ["npm", "v1", "security", "advisories", "bulk"] => Some(Endpoint::AuditBulk),
            ["user", id] => id
                .strip_prefix("org.couchdb.user:")
                .map(|user| Endpoint::User(user.to_string())),
            ["package", ..] => {
                let (name, rest) = split_name(&segments[2..])?;
                match rest {
                    [tags] if tags == "dist-tags" => Some(Endpoint::DistTags(name)),
                    [tags, tag] if tags == "dist-tags" => {
                        Some(Endpoint::DistTag(name, tag.clone()))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
    }
    let (name, rest) = split_name(&segments)?;
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match rest.as_slice() {
        [] | ["-rev", _] => Some(Endpoint::Packument(name)),
        ["-", file] | ["-", file, "-rev", _] => Some(Endpoint::Tarball(name, file.to_string())),
        [version] => Some(Endpoint::Version(name, version.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_follow_npm_rules() {
        for good in ["left-pad", "@scope/pkg", "a.b_c-1", "@my-org/x.y"] {
            assert!(PackageName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Upper",
            ".hidden",
            "_under",
            "@scope",
            "@/x",
            "@scope/",
            "a/b",
            "sp ace",
            "node_modules",
            "caf\u{e9}",
            "a~b",
            "@scope/.x",
            &"x".repeat(215),
        ] {
            assert!(PackageName::parse(bad).is_err(), "{bad}");
        }
        assert!(PackageName::parse_existing("JSONStream").is_ok());
        assert!(PackageName::parse_existing("a/b").is_err());
        assert!(PackageName::parse_existing("sp ace").is_err());
        let scoped = PackageName::parse("@scope/pkg").expect("valid");
        assert_eq!(scoped.bare(), "pkg");
        assert_eq!(scoped.tarball("1.0.0"), "pkg-1.0.0.tgz");
    }

    #[test]
    fn versions_and_tags() {
        assert!(validate_version("1.2.3-beta.1+build.5").is_ok());
        assert!(validate_version("v1.2.3").is_err());
        assert!(validate_version("1.2").is_err());
        assert!(validate_version("01.2.3").is_err());
        assert!(validate_tag("beta").is_ok());
        assert!(validate_tag("next-2").is_ok());
        assert!(validate_tag("1.x").is_err());
        assert!(validate_tag("^1.0.0").is_err());
        assert!(validate_tag("a/b").is_err());
    }

    #[test]
    fn paths() {
        let p = |raw| parse_endpoint(raw);
        let s = String::from;
        assert_eq!(p("left-pad"), Some(Endpoint::Packument(s("left-pad"))));
        assert_eq!(
            p("@scope%2fpkg"),
            Some(Endpoint::Packument(s("@scope/pkg")))
        );
        assert_eq!(
            p("@scope%2Fpkg"),
            Some(Endpoint::Packument(s("@scope/pkg")))
        );
        assert_eq!(p("@scope/pkg"), Some(Endpoint::Packument(s("@scope/pkg"))));
        assert_eq!(p("pkg/-rev/3-abc"), Some(Endpoint::Packument(s("pkg"))));
        assert_eq!(
            p("@scope/pkg/-/pkg-1.0.0.tgz"),
            Some(Endpoint::Tarball(s("@scope/pkg"), s("pkg-1.0.0.tgz")))
        );
        assert_eq!(
            p("pkg/-/pkg-1.0.0.tgz/-rev/1-0"),
            Some(Endpoint::Tarball(s("pkg"), s("pkg-1.0.0.tgz")))
        );
        assert_eq!(
            p("pkg/1.0.0"),
            Some(Endpoint::Version(s("pkg"), s("1.0.0")))
        );
        assert_eq!(p("-/ping"), Some(Endpoint::Ping));
        assert_eq!(p("-/v1/search"), Some(Endpoint::Search));
        assert_eq!(
            p("-/npm/v1/security/advisories/bulk"),
            Some(Endpoint::AuditBulk)
        );
        assert_eq!(
            p("-/user/org.couchdb.user:bob%40x"),
            Some(Endpoint::User(s("bob@x")))
        );
        assert_eq!(
            p("-/package/@scope%2fpkg/dist-tags"),
            Some(Endpoint::DistTags(s("@scope/pkg")))
        );
        assert_eq!(
            p("-/package/pkg/dist-tags/beta"),
            Some(Endpoint::DistTag(s("pkg"), s("beta")))
        );
        assert_eq!(p("-/other"), None);
        assert_eq!(p("pkg/a/b"), None);
        assert_eq!(p("bad%zz"), None);
    }
}
