//! Module paths and versions as the go command defines them (`golang.org/x/mod/module`): which
//! paths and versions are valid, the case encoding of both in proxy URLs (`!` before a lower-case
//! letter stands for its upper case), a path's major-version suffix and what versions it admits.

use crate::frontend::TextError;

/// The longest module path accepted.
const MAX_PATH: usize = 256;

/// A module path: `/`-separated elements, the first a host name with a dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModulePath(String);

impl ModulePath {
    /// Checks `path` (already decoded) as `module.CheckPath` does.
    pub fn parse(path: &str) -> Result<ModulePath, TextError> {
        let invalid =
            |why: &str| TextError::bad_request(format!("malformed module path {path:?}: {why}"));
        if path.is_empty() || path.len() > MAX_PATH {
            return Err(invalid("must be 1 to 256 characters"));
        }
        let mut elements = path.split('/');
        let host = elements.next().unwrap_or_default();
        if !host.contains('.') {
            return Err(invalid(
                "the first path element must be a host name with a dot",
            ));
        }
        if host.starts_with('-') {
            return Err(invalid("leading dash in the first path element"));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        {
            return Err(invalid("invalid character in the host name"));
        }
        for element in path.split('/') {
            check_element(element, false).map_err(|why| invalid(&why))?;
        }
        Ok(ModulePath(path.to_string()))
    }

    /// Decodes the case-encoded path of a proxy URL and checks it.
    pub fn from_escaped(escaped: &str) -> Result<ModulePath, TextError> {
        Self::parse(&unescape(escaped).ok_or_else(|| {
            TextError::bad_request(format!("invalid escaped module path {escaped:?}"))
        })?)
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path in a proxy URL.
    pub fn escaped(&self) -> String {
        arca_protocol::go_mod::case_encode(&self.0)
    }

    /// The major version the path's suffix names: 2 and up for `/v2`... (`.v2` for `gopkg.in`),
    /// `None` for a path without one (which admits v0 and v1).
    pub fn major_suffix(&self) -> Option<u64> {
        let path = &self.0;
        let digits = if path.starts_with("gopkg.in/") {
            path.rsplit_once(".v")?.1
        } else {
            path.rsplit_once("/v")?.1
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if path.starts_with("gopkg.in/") {
            return digits.parse().ok();
        }
        digits
            .parse()
            .ok()
            .filter(|&major| major >= 2 && !digits.starts_with('0'))
    }
}

/// Checks one element of a module path (`file == false`) or of a file path inside a module zip
/// (`file == true`), as `module.CheckPath` / `CheckFilePath` do.
pub fn check_element(element: &str, file: bool) -> Result<(), String> {
    if element.is_empty() {
        return Err("empty path element".into());
    }
    if element.bytes().all(|b| b == b'.') {
        return Err(format!("invalid path element {element:?}"));
    }
    if !file && element.starts_with('.') {
        return Err(format!("leading dot in path element {element:?}"));
    }
    if element.ends_with('.') {
        return Err(format!("trailing dot in path element {element:?}"));
    }
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '-' | '.' | '_' | '~')
            || (file
                && matches!(
                    c,
                    '!' | '#'
                        | '$'
                        | '%'
                        | '&'
                        | '('
                        | ')'
                        | '+'
                        | ','
                        | '='
                        | '@'
                        | '['
                        | ']'
                        | '^'
                        | '{'
                        | '}'
                        | ' '
                ))
    };
    if let Some(bad) = element.chars().find(|&c| !allowed(c)) {
        return Err(format!(
            "invalid character {bad:?} in path element {element:?}"
        ));
    }
    // Windows reserves these names, with any extension.
    let stem = element
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    const RESERVED: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    if RESERVED.contains(&stem.as_str()) {
        return Err(format!("{element:?} is a reserved file name on Windows"));
    }
    Ok(())
}

/// A module version: canonical semantic versioning with a `v` (`v1.2.3`, `v1.2.3-pre.1`,
/// `v2.0.0+incompatible`), no other build metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleVersion {
    text: String,
    semver: semver::Version,
}

impl ModuleVersion {
    /// Checks `version` (already decoded).
    pub fn parse(version: &str) -> Result<ModuleVersion, TextError> {
        let invalid =
            |why: &str| TextError::bad_request(format!("invalid version {version:?}: {why}"));
        let bare = version
            .strip_prefix('v')
            .ok_or_else(|| invalid("a module version starts with v"))?;
        let semver = semver::Version::parse(bare)
            .map_err(|e| invalid(&format!("not canonical semantic versioning: {e}")))?;
        if !semver.build.is_empty() && semver.build.as_str() != "incompatible" {
            return Err(invalid("build metadata other than +incompatible"));
        }
        Ok(ModuleVersion {
            text: version.to_string(),
            semver,
        })
    }

    /// Decodes the case-encoded version of a proxy URL and checks it.
    pub fn from_escaped(escaped: &str) -> Result<ModuleVersion, TextError> {
        Self::parse(&unescape(escaped).ok_or_else(|| {
            TextError::bad_request(format!("invalid escaped version {escaped:?}"))
        })?)
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The version in a proxy URL.
    pub fn escaped(&self) -> String {
        arca_protocol::go_mod::case_encode(&self.text)
    }

    /// Whether it is `+incompatible` (a v2+ version of a module without a go.mod).
    pub fn is_incompatible(&self) -> bool {
        !self.semver.build.is_empty()
    }

    /// Whether it is a pseudo-version (`v0.0.0-20240101120000-abcdefabcdef` and its kin), which
    /// version lists leave out.
    pub fn is_pseudo(&self) -> bool {
        let pre = self.semver.pre.as_str();
        let Some((time, revision)) = pre.rsplit_once('-') else {
            return false;
        };
        let time = time.rsplit(['.', '-']).next().unwrap_or_default();
        time.len() == 14
            && time.bytes().all(|b| b.is_ascii_digit())
            && revision.len() == 12
            && revision.bytes().all(|b| b.is_ascii_hexdigit())
    }

    /// Whether it is a pre-release.
    pub fn is_prerelease(&self) -> bool {
        !self.semver.pre.is_empty()
    }

    /// Semantic-versioning order.
    pub fn precedence(&self, other: &ModuleVersion) -> std::cmp::Ordering {
        self.semver.cmp_precedence(&other.semver)
    }

    /// Refuses a version the module path does not admit: `vN` for a path ending in `/vN`, v0 or
    /// v1 for a path without a suffix (or `+incompatible` above that).
    pub fn check_admitted_by(&self, path: &ModulePath) -> Result<(), TextError> {
        let major = self.semver.major;
        let admitted = match path.major_suffix() {
            Some(suffix) => major == suffix,
            None => major <= 1 || self.is_incompatible(),
        };
        if self.is_incompatible() && (major < 2 || path.major_suffix().is_some()) {
            return Err(TextError::bad_request(format!(
                "version {} of {}: +incompatible is only for v2 and up of a path without a major \
                 version suffix",
                self.text,
                path.as_str()
            )));
        }
        if !admitted {
            return Err(TextError::bad_request(format!(
                "version {} does not match module path {}: {}",
                self.text,
                path.as_str(),
                match path.major_suffix() {
                    Some(suffix) => format!("its versions are v{suffix}"),
                    None => "its versions are v0 or v1 (a v2+ module path ends in /vN)".into(),
                }
            )));
        }
        Ok(())
    }
}

/// The text a proxy URL spelling stands for; `None` for an upper-case letter, or a `!` not before
/// a lower-case letter.
fn unescape(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut bang = false;
    for c in escaped.chars() {
        if bang {
            if !c.is_ascii_lowercase() {
                return None;
            }
            out.push(c.to_ascii_uppercase());
            bang = false;
        } else if c == '!' {
            bang = true;
        } else if c.is_ascii_uppercase() {
            return None;
        } else {
            out.push(c);
        }
    }
    (!bang).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_versions_round_trip_their_case_encoding() {
        let path = ModulePath::from_escaped("github.com/!azure/azure-sdk").expect("valid");
        assert_eq!(path.as_str(), "github.com/Azure/azure-sdk");
        assert_eq!(path.escaped(), "github.com/!azure/azure-sdk");
        assert!(ModulePath::from_escaped("github.com/Azure/x").is_err());
        assert!(ModulePath::from_escaped("github.com/!/x").is_err());
        let version = ModuleVersion::from_escaped("v1.0.0-!r!c1").expect("valid");
        assert_eq!(version.as_str(), "v1.0.0-RC1");
        assert_eq!(version.escaped(), "v1.0.0-!r!c1");
    }

    #[test]
    fn module_paths_are_checked_as_the_go_command_does() {
        for good in [
            "example.com/x",
            "golang.org/x/mod",
            "gopkg.in/yaml.v3",
            "example.com/a/v2",
        ] {
            assert!(ModulePath::parse(good).is_ok(), "{good} refused");
        }
        for bad in [
            "x",
            "example.com/../x",
            "example.com//x",
            "example.com/x.",
            "Example.com/x",
            "example.com/.x",
            "example.com/a b",
            "example.com/con",
        ] {
            assert!(ModulePath::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(check_element(".gitignore", true).is_ok());
        assert!(check_element("..", true).is_err());
    }

    #[test]
    fn versions_must_fit_their_path() {
        let path = |p: &str| ModulePath::parse(p).expect("valid");
        let version = |v: &str| ModuleVersion::parse(v).expect("valid");
        assert_eq!(path("example.com/a/v2").major_suffix(), Some(2));
        assert_eq!(path("example.com/a/v1").major_suffix(), None);
        assert_eq!(path("gopkg.in/yaml.v3").major_suffix(), Some(3));
        assert!(
            version("v2.1.0")
                .check_admitted_by(&path("example.com/a/v2"))
                .is_ok()
        );
        assert!(
            version("v1.1.0")
                .check_admitted_by(&path("example.com/a/v2"))
                .is_err()
        );
        assert!(
            version("v2.1.0")
                .check_admitted_by(&path("example.com/a"))
                .is_err()
        );
        assert!(
            version("v2.1.0+incompatible")
                .check_admitted_by(&path("example.com/a"))
                .is_ok()
        );
        assert!(
            version("v1.1.0+incompatible")
                .check_admitted_by(&path("example.com/a"))
                .is_err()
        );
        assert!(
            version("v0.3.0")
                .check_admitted_by(&path("example.com/a"))
                .is_ok()
        );
        for bad in ["1.0.0", "v1.0", "v1.0.0+build", "v01.0.0"] {
            assert!(ModuleVersion::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(version("v0.0.0-20240101120000-abcdefabcdef").is_pseudo());
        assert!(version("v1.2.4-0.20240101120000-abcdefabcdef").is_pseudo());
        assert!(!version("v1.2.4-rc.1").is_pseudo());
    }
}
