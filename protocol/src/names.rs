//! Validation of the names that reach paths and keys: registries, packages, versions, file names and
//! metadata keys. Anything that could escape a directory, hide a control character or collide with
//! another name after normalisation is refused here, before it touches storage.

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct NameError {
    /// Which kind of name ("registry name", "package name", ...).
    pub what: &'static str,
    /// The refused value, shortened for display.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn refuse(what: &'static str, value: &str, reason: &'static str) -> NameError {
    NameError {
        what,
        value: value.chars().take(100).collect(),
        reason,
    }
}

/// A registry name: 1-64 characters of `[A-Za-z0-9._-]`, starting with a letter or digit.
pub fn validate_registry_name(name: &str) -> Result<(), NameError> {
    validate_plain_name("registry name", name)
}

/// A webhook name: the same rules as [`validate_registry_name`].
pub fn validate_webhook_name(name: &str) -> Result<(), NameError> {
    validate_plain_name("webhook name", name)
}

/// A name of 1-64 characters of `[A-Za-z0-9._-]`, starting with a letter or digit.
fn validate_plain_name(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > 64 {
        return Err(refuse(what, name, "must be 1 to 64 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(refuse(what, name, "must start with a letter or digit"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(refuse(
            what,
            name,
            "may only contain letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(())
}

/// One path segment of a package name, a version or a file name: printable, no separators, not `.` or
/// `..`, no leading or trailing whitespace.
pub fn validate_segment(what: &'static str, value: &str, max_len: usize) -> Result<(), NameError> {
    if value.is_empty() || value.len() > max_len {
        return Err(refuse(what, value, "has an empty or too long segment"));
    }
    if value == "." || value == ".." {
        return Err(refuse(what, value, "must not be '.' or '..'"));
    }
    if value
        .chars()
        .any(|c| c.is_control() || matches!(c, '/' | '\\'))
    {
        return Err(refuse(
            what,
            value,
            "must not contain '/', '\\' or control characters",
        ));
    }
    if value.trim() != value {
        return Err(refuse(what, value, "must not start or end with whitespace"));
    }
    Ok(())
}

/// A name a write brings in (a new file, package or version): besides [`validate_segment`]'s rules,
/// no invisible formatting characters (bidirectional overrides and isolates, zero-width characters),
/// which make a name read as another, and in Unicode NFC, so that `café` typed on any system names
/// one file. (Names already stored are read as they are.)
pub fn validate_new_segment(
    what: &'static str,
    value: &str,
    max_len: usize,
) -> Result<(), NameError> {
    validate_segment(what, value, max_len)?;
    if value.chars().any(is_invisible_format) {
        return Err(refuse(
            what,
            value,
            "must not contain invisible formatting characters (bidirectional controls, \
             zero-width characters)",
        ));
    }
    if !unicode_normalization::is_nfc(value) {
        return Err(refuse(
            what,
            value,
            "must be in Unicode normalization form C (composed characters)",
        ));
    }
    Ok(())
}

/// Characters that change how text around them reads without showing themselves.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// A package name: one or more `/`-separated segments (repositories such as `app/web`, npm scopes),
/// at most 256 characters in all.
pub fn validate_package_name(name: &str) -> Result<(), NameError> {
    const WHAT: &str = "package name";
    if name.is_empty() || name.len() > 256 {
        return Err(refuse(WHAT, name, "must be 1 to 256 characters"));
    }
    name.split('/')
        .try_for_each(|segment| validate_segment(WHAT, segment, 256))
}

/// A version: a single segment of at most 128 characters.
pub fn validate_version(version: &str) -> Result<(), NameError> {
    validate_segment("version", version, 128)
}

/// A file name inside a version: a single segment of at most 255 bytes.
pub fn validate_filename(filename: &str) -> Result<(), NameError> {
    validate_segment("file name", filename, 255)
}

/// A metadata key: 1-128 characters of `[A-Za-z0-9._/-]`.
pub fn validate_metadata_key(key: &str) -> Result<(), NameError> {
    const WHAT: &str = "metadata key";
    if key.is_empty() || key.len() > 128 {
        return Err(refuse(WHAT, key, "must be 1 to 128 characters"));
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
    {
        return Err(refuse(
            WHAT,
            key,
            "may only contain letters, digits, '.', '_', '-' and '/'",
        ));
    }
    Ok(())
}

/// A metadata value: at most 1024 characters and no control characters.
pub fn validate_metadata_value(value: &str) -> Result<(), NameError> {
    const WHAT: &str = "metadata value";
    if value.len() > 1024 {
        return Err(refuse(WHAT, value, "must be at most 1024 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(refuse(WHAT, value, "must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names() {
        assert!(validate_registry_name("team-files_1.0").is_ok());
        for bad in ["", "-x", "a/b", "a b", "..", &"x".repeat(65)] {
            assert!(validate_registry_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn traversal_and_control_characters_are_refused() {
        for bad in ["..", ".", "a/b", "a\\b", "a\0b", "a\nb", " a", ""] {
            assert!(validate_filename(bad).is_err(), "{bad:?} accepted");
            assert!(validate_version(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_filename("tool-1.2.tar.gz").is_ok());
        assert!(validate_new_segment("file name", "café.txt", 255).is_ok());
        for lookalike in ["cafe\u{301}.txt", "evil\u{202E}txt.exe", "a\u{200B}b"] {
            assert!(
                validate_new_segment("file name", lookalike, 255).is_err(),
                "{lookalike:?} accepted"
            );
            assert!(validate_segment("file name", lookalike, 255).is_ok());
        }
        assert!(validate_package_name("app/web").is_ok());
        assert!(validate_package_name("app/../web").is_err());
        assert!(validate_package_name("/abs").is_err());
        assert!(validate_package_name("app//web").is_err());
    }

    #[test]
    fn metadata_keys_and_values() {
        assert!(validate_metadata_key("owner").is_ok());
        assert!(validate_metadata_key("team/owner.v2").is_ok());
        assert!(validate_metadata_key("a:b").is_err());
        assert!(validate_metadata_value("platform team").is_ok());
        assert!(validate_metadata_value("a\u{7}").is_err());
    }
}
