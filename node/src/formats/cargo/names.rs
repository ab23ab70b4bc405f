//! Crate names and versions as cargo and crates.io define them, and where a crate's file sits in the
//! sparse index.

use super::CargoError;

/// The longest crate name.
const MAX_NAME: usize = 64;

/// A crate name: ASCII letters, digits, `-` and `_`, starting with a letter, at most 64 characters.
/// Two names that differ only in letter case or in `-` against `_` are the same crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateName(String);

impl CrateName {
    /// Checks `name`.
    pub fn parse(name: &str) -> Result<CrateName, CargoError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(CargoError::bad_request(format!(
                "invalid crate name {name:?}: ASCII letters, digits, `-` and `_`, starting with a \
                 letter, at most {MAX_NAME} characters"
            )));
        }
        Ok(CrateName(name.to_string()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The package the crate is stored as: lower case, `_` as `-`, so that the spellings of one
    /// crate meet.
    pub fn package(&self) -> String {
        crate::ecosystems::crate_names::canonical(&self.0)
    }

    /// The directories of the crate's file in the index: `1`, `2`, `3/a`, `ab/cd`, in the name's
    /// letter case (cargo's `{prefix}`; [`Self::index_path`] is in lower case).
    pub fn prefix(&self) -> String {
        let name = &self.0;
        match name.len() {
            1 => "1".to_string(),
            2 => "2".to_string(),
            3 => format!("3/{}", &name[..1]),
            _ => format!("{}/{}", &name[..2], &name[2..4]),
        }
    }

    /// The path of the crate's file in the index: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd...`, in
    /// lower case.
    pub fn index_path(&self) -> String {
        format!("{}/{}", self.prefix(), self.0).to_ascii_lowercase()
    }

    /// The name of the `.crate` file of `version`.
    pub fn file(&self, version: &str) -> String {
        format!("{}-{version}.crate", self.0)
    }
}

/// The crate an index path (`3/s/syn`, `se/rd/serde`) is the file of, when the path is that
/// crate's own.
pub fn crate_of_index_path(path: &str) -> Option<CrateName> {
    let name = CrateName::parse(path.rsplit('/').next()?).ok()?;
    (name.index_path() == path.to_ascii_lowercase()).then_some(name)
}

/// A version: SemVer 2.0 with no leading `v`.
pub fn parse_version(version: &str) -> Result<semver::Version, CargoError> {
    semver::Version::parse(version)
        .map_err(|e| CargoError::bad_request(format!("invalid version {version:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_index_paths() {
        for (name, path) in [
            ("a", "1/a"),
            ("ab", "2/ab"),
            ("Syn", "3/s/syn"),
            ("serde_json", "se/rd/serde_json"),
        ] {
            let parsed = CrateName::parse(name).expect("valid");
            assert_eq!(parsed.index_path(), path);
            assert_eq!(
                crate_of_index_path(path).map(|n| n.package()),
                Some(parsed.package())
            );
        }
        assert_eq!(
            CrateName::parse("Serde_Json").expect("valid").package(),
            "serde-json"
        );
        for bad in ["", "1abc", "a b", "../x", "ä", &"a".repeat(65)] {
            assert!(CrateName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(crate_of_index_path("se/xx/serde").is_none());
        assert!(crate_of_index_path("1/serde").is_none());
        assert!(parse_version("1.0.0-alpha.1+build").is_ok());
        assert!(parse_version("v1.0").is_err());
    }
}
