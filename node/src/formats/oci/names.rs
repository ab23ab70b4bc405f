//! Names of the OCI API: repository names (`<registry>/<path>`), tags and digests.

use std::fmt;

use super::OciError;

/// A repository as clients name it: the Arca registry, then the repository path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryName {
    /// The Arca registry.
    pub registry: String,
    /// The repository path, which is the package name.
    pub repository: String,
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

/// One path component: `[a-z0-9]+` runs joined by `.`, `_`, `__` or runs of `-`.
fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let allowed = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !allowed {
            return false;
        }
    }
    true
}

impl RepositoryName {
    /// Parses `<registry>/<path>`, following the distribution spec's name grammar for the path.
    pub fn parse(name: &str) -> Result<RepositoryName, OciError> {
        let (registry, repository) = name.split_once('/').ok_or_else(|| {
            OciError::name_invalid(format!(
                "repository name {name:?} must be <registry>/<repository>"
            ))
        })?;
        arca_protocol::names::validate_registry_name(registry)
            .map_err(|e| OciError::name_invalid(e.to_string()))?;
        if name.len() > 255 || !repository.split('/').all(valid_component) {
            return Err(OciError::name_invalid(format!(
                "invalid repository name {repository:?}"
            )));
        }
        Ok(RepositoryName {
            registry: registry.to_string(),
            repository: repository.to_string(),
        })
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_tag(reference: &str) -> bool {
    let mut chars = reference.chars();
    reference.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A digest algorithm this registry verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// sha256: 64 hex characters.
    Sha256,
    /// sha512: 128 hex characters.
    Sha512,
}

/// A parsed `algorithm:hex` digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The lowercase hex encoding.
    pub hex: String,
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithm = match self.algorithm {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        };
        write!(f, "{algorithm}:{}", self.hex)
    }
}

impl Digest {
    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`.
    pub fn parse(text: &str) -> Result<Digest, OciError> {
        let invalid =
            || OciError::digest_invalid(format!("invalid or unsupported digest {text:?}"));
        let (algorithm, hex) = text.split_once(':').ok_or_else(invalid)?;
        let (algorithm, len) = match algorithm {
            "sha256" => (Algorithm::Sha256, 64),
            "sha512" => (Algorithm::Sha512, 128),
            _ => return Err(invalid()),
        };
        if hex.len() != len
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid());
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The digest of `bytes` with `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        let hex = match algorithm {
            Algorithm::Sha256 => hex::encode(sha2::Sha256::digest(bytes)),
            Algorithm::Sha512 => hex::encode(sha2::Sha512::digest(bytes)),
        };
        Digest { algorithm, hex }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        let name = RepositoryName::parse("team-images/app/web").expect("valid");
        assert_eq!(name.registry, "team-images");
        assert_eq!(name.repository, "app/web");
        for good in ["r/a", "r/a.b_c__d---e/f0", "r/0"] {
            assert!(RepositoryName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "noslash", "r/", "r/A", "r/a//b", "r/-a", "r/a-", "r/a..b", "r/a___b", "../x/y",
            "r/a/../b",
        ] {
            assert!(RepositoryName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_and_digests() {
        assert!(is_tag("v1.2.3-rc_1"));
        assert!(is_tag("_x"));
        assert!(!is_tag(".x"));
        assert!(!is_tag(&"a".repeat(129)));
        assert!(!is_tag("sha256:abc"));
        let digest = Digest::of(Algorithm::Sha256, b"");
        assert_eq!(
            digest.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&digest.to_string()).expect("parses"), digest);
        assert!(Digest::parse("sha256:E3B0").is_err());
        assert!(Digest::parse("md5:00").is_err());
        let sha512 = Digest::of(Algorithm::Sha512, b"x").to_string();
        assert!(Digest::parse(&sha512).is_ok());
    }
}
