//! Debian control data (deb822): paragraphs of `Field: value` lines, a value going on over lines
//! that start with a space or a tab. Read from a package's `control` file and an upstream's
//! `Packages` index, and written into the `Packages` index Arca serves.

use crate::ecosystems::debian_version;

/// Why control data cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParagraphError {
    /// A line is neither `Field: value` nor a continuation.
    #[error("line {0} is not a `Field: value` line")]
    Malformed(usize),
    /// There is no field at all.
    #[error("it holds no fields")]
    Empty,
    /// A field a package must have is missing.
    #[error("it has no {0} field")]
    Missing(&'static str),
    /// A field's value is not valid.
    #[error("its {field} {value:?} is not valid: {why}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A field appears twice.
    #[error("its {0} field appears twice")]
    Repeated(String),
}

/// One paragraph: its fields in order, each value as written (continuation lines keep their
/// leading space).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    fields: Vec<(String, String)>,
}

impl Paragraph {
    /// The one paragraph of `text` (blank lines around it are allowed, a second paragraph is not).
    pub fn parse(text: &str) -> Result<Paragraph, ParagraphError> {
        let mut paragraphs = Paragraph::parse_all(text);
        match (paragraphs.next(), paragraphs.next()) {
            (Some(first), None) => first,
            (Some(_), Some(_)) => Err(ParagraphError::Malformed(0)),
            (None, _) => Err(ParagraphError::Empty),
        }
    }

    /// Every paragraph of `text` (a `Packages` index), each read on its own.
    pub fn parse_all(text: &str) -> impl Iterator<Item = Result<Paragraph, ParagraphError>> + '_ {
        let mut lines = text.lines().enumerate().peekable();
        std::iter::from_fn(move || {
            while lines.peek().is_some_and(|(_, line)| line.trim().is_empty()) {
                lines.next();
            }
            lines.peek()?;
            let mut paragraph = Paragraph::default();
            while let Some((number, line)) = lines.next_if(|(_, line)| !line.trim().is_empty()) {
                if line.starts_with('#') {
                    continue;
                }
                if line.starts_with([' ', '\t']) {
                    match paragraph.fields.last_mut() {
                        Some((_, value)) => {
                            value.push('\n');
                            value.push_str(line);
                        }
                        None => return Some(Err(ParagraphError::Malformed(number + 1))),
                    }
                    continue;
                }
                let Some((name, value)) = line.split_once(':') else {
                    return Some(Err(ParagraphError::Malformed(number + 1)));
                };
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                    return Some(Err(ParagraphError::Malformed(number + 1)));
                }
                if paragraph.get(name).is_some() {
                    return Some(Err(ParagraphError::Repeated(name.to_string())));
                }
                paragraph
                    .fields
                    .push((name.to_string(), value.trim().to_string()));
            }
            Some(Ok(paragraph))
        })
    }

    /// The value of field `name` (names are compared without regard to case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Sets field `name`, in place when present, else at the end.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .fields
            .iter_mut()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
        {
            Some((_, old)) => *old = value,
            None => self.fields.push((name.to_string(), value)),
        }
    }

    /// Removes field `name`.
    pub fn remove(&mut self, name: &str) {
        self.fields
            .retain(|(field, _)| !field.eq_ignore_ascii_case(name));
    }

    /// The paragraph as control text, ending in a newline.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (name, value) in &self.fields {
            text.push_str(name);
            text.push(':');
            if !value.is_empty() && !value.starts_with('\n') {
                text.push(' ');
            }
            text.push_str(value);
            text.push('\n');
        }
        text
    }

    /// The package's name, version and architecture, checked as dpkg checks them.
    pub fn identity(&self) -> Result<(&str, &str, &str), ParagraphError> {
        let field = |name: &'static str| self.get(name).ok_or(ParagraphError::Missing(name));
        let (package, version, architecture) =
            (field("Package")?, field("Version")?, field("Architecture")?);
        if !is_package_name(package) {
            return Err(ParagraphError::Invalid {
                field: "Package",
                value: package.to_string(),
                why: "a name is two or more of a-z, 0-9, +, - and ., starting with a letter or digit",
            });
        }
        if let Err(why) = debian_version::check(version) {
            return Err(ParagraphError::Invalid {
                field: "Version",
                value: version.to_string(),
                why,
            });
        }
        if !is_architecture(architecture) {
            return Err(ParagraphError::Invalid {
                field: "Architecture",
                value: architecture.to_string(),
                why: "an architecture is one word of a-z, 0-9 and -",
            });
        }
        Ok((package, version, architecture))
    }
}

/// A Debian package name: `[a-z0-9][a-z0-9+.-]+`.
pub fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b))
}

/// An architecture name (`amd64`, `arm64`, `all`, `musl-linux-amd64`).
pub fn is_architecture(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_are_read_and_written_back() {
        let text = "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nDepends: libc6 (>= 2.34)\nDescription: example\n A longer\n .\n text\n";
        let paragraph = Paragraph::parse(text).expect("valid");
        assert_eq!(
            paragraph.identity().expect("valid"),
            ("hello", "2.10-3", "amd64")
        );
        assert_eq!(paragraph.render(), text);
        assert_eq!(paragraph.get("depends"), Some("libc6 (>= 2.34)"));
        let all: Vec<_> = Paragraph::parse_all(&format!("{text}\n\n{text}\n"))
            .collect::<Result<_, _>>()
            .expect("valid");
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn invalid_paragraphs_are_refused() {
        assert_eq!(
            Paragraph::parse(" continued\n"),
            Err(ParagraphError::Malformed(1))
        );
        assert_eq!(Paragraph::parse("\n\n"), Err(ParagraphError::Empty));
        assert!(matches!(
            Paragraph::parse("A: 1\nA: 2\n"),
            Err(ParagraphError::Repeated(_))
        ));
        let missing = Paragraph::parse("Package: hello\nVersion: 1.0\n").expect("parses");
        assert_eq!(
            missing.identity(),
            Err(ParagraphError::Missing("Architecture"))
        );
        for bad in [
            "Package: Hello\nVersion: 1\nArchitecture: all\n",
            "Package: hello\nVersion: a1\nArchitecture: all\n",
            "Package: hello\nVersion: 1\nArchitecture: amd64 i386\n",
            "Package: ../x\nVersion: 1\nArchitecture: all\n",
        ] {
            assert!(
                Paragraph::parse(bad).expect("parses").identity().is_err(),
                "{bad}"
            );
        }
    }
}
