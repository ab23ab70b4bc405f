//! Reading the package coordinates a project depends on out of its lockfiles and manifests, for
//! `arca registry fw audit`. [`parse`] recognises the file by its name ([`LockfileKind::detect`]) and
//! hands it to the parser of its ecosystem family: [`npm`] (package.json, package-lock.json,
//! pnpm-lock.yaml, yarn.lock), [`python`] (requirements.txt, pyproject.toml, Pipfile.lock,
//! poetry.lock) and [`jvm`] (pom.xml, build.gradle, build.gradle.kts).
//!
//! The firewall evaluates exact versions only, so a parse yields the exact coordinates
//! ([`Lockfile::packages`]) apart from what the file names without pinning it — ranges, tags, URLs,
//! undefined properties — which are listed as [`Unresolved`] with the reason, never guessed.

mod jvm;
mod npm;
mod python;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::Serialize;

pub use arca_protocol::firewall::PackageCoordinate;

/// The ecosystem whose package names and versions a file speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// npm packages (`@scope/name`).
    Npm,
    /// Python packages, names normalised per PEP 503.
    Pypi,
    /// Maven artifacts, named `group:artifact`.
    Maven,
}

/// The kinds of file [`parse`] reads; each goes by (and serialises as) its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockfileKind {
    /// `package.json`: declared dependencies, usually ranges.
    PackageJson,
    /// `package-lock.json` or `npm-shrinkwrap.json`, lockfileVersion 1, 2 or 3.
    PackageLock,
    /// `pnpm-lock.yaml`, lockfileVersion 6 or 9.
    PnpmLock,
    /// `yarn.lock`, classic (v1) or berry.
    YarnLock,
    /// `requirements.txt` and its variants (`requirements-dev.txt`, `requirements/*.txt`, pip-tools'
    /// `requirements.in`).
    Requirements,
    /// `pyproject.toml` (PEP 621 and Poetry).
    Pyproject,
    /// `Pipfile.lock`.
    PipfileLock,
    /// `poetry.lock`.
    PoetryLock,
    /// Maven `pom.xml`.
    Pom,
    /// Gradle `build.gradle` (Groovy).
    Gradle,
    /// Gradle `build.gradle.kts` (Kotlin).
    GradleKts,
}

impl LockfileKind {
    /// Every kind, in the order they are documented.
    pub const ALL: [LockfileKind; 11] = [
        LockfileKind::PackageJson,
        LockfileKind::PackageLock,
        LockfileKind::PnpmLock,
        LockfileKind::YarnLock,
        LockfileKind::Requirements,
        LockfileKind::Pyproject,
        LockfileKind::PipfileLock,
        LockfileKind::PoetryLock,
        LockfileKind::Pom,
        LockfileKind::Gradle,
        LockfileKind::GradleKts,
    ];

    /// The kind a file is, judged by its name, or `None` for a name no parser knows.
    pub fn detect(path: &Path) -> Option<LockfileKind> {
        let name = path.file_name()?.to_str()?;
        let in_requirements_dir = path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|dir| dir == "requirements");
        let kind = match name {
            "package.json" => LockfileKind::PackageJson,
            "package-lock.json" | "npm-shrinkwrap.json" => LockfileKind::PackageLock,
            "pnpm-lock.yaml" => LockfileKind::PnpmLock,
            "yarn.lock" => LockfileKind::YarnLock,
            "pyproject.toml" => LockfileKind::Pyproject,
            "Pipfile.lock" => LockfileKind::PipfileLock,
            "poetry.lock" => LockfileKind::PoetryLock,
            "pom.xml" => LockfileKind::Pom,
            "build.gradle" => LockfileKind::Gradle,
            "build.gradle.kts" => LockfileKind::GradleKts,
            _ if name.ends_with(".pom") => LockfileKind::Pom,
            _ if (name.ends_with(".txt") || name.ends_with(".in"))
                && (name.starts_with("requirements")
                    || name.ends_with("-requirements.txt")
                    || in_requirements_dir) =>
            {
                LockfileKind::Requirements
            }
            _ => return None,
        };
        Some(kind)
    }

    /// The name the kind goes by: the file name it is detected from.
    pub fn as_str(self) -> &'static str {
        match self {
            LockfileKind::PackageJson => "package.json",
            LockfileKind::PackageLock => "package-lock.json",
            LockfileKind::PnpmLock => "pnpm-lock.yaml",
            LockfileKind::YarnLock => "yarn.lock",
            LockfileKind::Requirements => "requirements.txt",
            LockfileKind::Pyproject => "pyproject.toml",
            LockfileKind::PipfileLock => "Pipfile.lock",
            LockfileKind::PoetryLock => "poetry.lock",
            LockfileKind::Pom => "pom.xml",
            LockfileKind::Gradle => "build.gradle",
            LockfileKind::GradleKts => "build.gradle.kts",
        }
    }

    /// The ecosystem the kind's coordinates belong to.
    pub fn ecosystem(self) -> Ecosystem {
        match self {
            LockfileKind::PackageJson
            | LockfileKind::PackageLock
            | LockfileKind::PnpmLock
            | LockfileKind::YarnLock => Ecosystem::Npm,
            LockfileKind::Requirements
            | LockfileKind::Pyproject
            | LockfileKind::PipfileLock
            | LockfileKind::PoetryLock => Ecosystem::Pypi,
            LockfileKind::Pom | LockfileKind::Gradle | LockfileKind::GradleKts => Ecosystem::Maven,
        }
    }
}

impl fmt::Display for LockfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for LockfileKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::str::FromStr for LockfileKind {
    type Err = LockfileError;

    /// A kind by its file name (`pom.xml`, `yarn.lock`...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LockfileKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| LockfileError::UnknownKind {
                file: s.to_string(),
            })
    }
}

/// A dependency the file names without an exact version, so the firewall cannot evaluate it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Unresolved {
    /// The package name, spelled as the ecosystem does.
    pub name: String,
    /// What the file says instead of an exact version (`^4.17.0`, `${spring.version}`, a URL).
    pub spec: String,
    /// Why it is not an exact version, and what to audit instead.
    pub reason: String,
}

/// What [`parse`] read from one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lockfile {
    /// What kind of file it was.
    pub kind: LockfileKind,
    /// The ecosystem of its coordinates.
    pub ecosystem: Ecosystem,
    /// The exact coordinates, each once, sorted.
    pub packages: Vec<PackageCoordinate>,
    /// The dependencies without an exact version, each once, sorted.
    pub unresolved: Vec<Unresolved>,
    /// Things the parser skipped on purpose (`-r other.txt` not followed...), in file order.
    pub notes: Vec<String>,
}

/// A file that could not be read as its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockfileError {
    /// The file name is none of the supported kinds.
    #[error(
        "{file}: not a supported lockfile or manifest (expected package.json, package-lock.json, \
         npm-shrinkwrap.json, pnpm-lock.yaml, yarn.lock, requirements*.txt, pyproject.toml, \
         Pipfile.lock, poetry.lock, pom.xml, build.gradle or build.gradle.kts)"
    )]
    UnknownKind {
        /// The file.
        file: String,
    },
    /// The file is not well-formed at a line.
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A field of a well-formed file holds something the format does not allow.
    #[error("{file}: {field}: {message}")]
    Field {
        /// The file.
        file: String,
        /// Where in the document, e.g. `packages["node_modules/lodash"].version`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The file is a version of its format this parser does not read.
    #[error("{file}: {message}")]
    Unsupported {
        /// The file.
        file: String,
        /// Which version, and which are read.
        message: String,
    },
}

/// Reads the file at `path` (used for its name and in errors) whose text is `contents`, as the kind
/// its name says.
pub fn parse(path: &Path, contents: &str) -> Result<Lockfile, LockfileError> {
    let kind = LockfileKind::detect(path).ok_or_else(|| LockfileError::UnknownKind {
        file: path.display().to_string(),
    })?;
    parse_as(kind, path, contents)
}

/// Reads `contents` as `kind`, whatever the file at `path` is called.
pub fn parse_as(
    kind: LockfileKind,
    path: &Path,
    contents: &str,
) -> Result<Lockfile, LockfileError> {
    let file = path.display().to_string();
    let source = Source {
        file: &file,
        text: contents.strip_prefix('\u{feff}').unwrap_or(contents),
    };
    let mut found = Found::default();
    match kind {
        LockfileKind::PackageJson => npm::package_json(&source, &mut found)?,
        LockfileKind::PackageLock => npm::package_lock(&source, &mut found)?,
        LockfileKind::PnpmLock => npm::pnpm_lock(&source, &mut found)?,
        LockfileKind::YarnLock => npm::yarn_lock(&source, &mut found)?,
        LockfileKind::Requirements => python::requirements(&source, &mut found)?,
        LockfileKind::Pyproject => python::pyproject(&source, &mut found)?,
        LockfileKind::PipfileLock => python::pipfile_lock(&source, &mut found)?,
        LockfileKind::PoetryLock => python::poetry_lock(&source, &mut found)?,
        LockfileKind::Pom => jvm::pom(&source, &mut found)?,
        LockfileKind::Gradle | LockfileKind::GradleKts => jvm::gradle(&source, &mut found)?,
    }
    Ok(Lockfile {
        kind,
        ecosystem: kind.ecosystem(),
        packages: found.packages.into_iter().collect(),
        unresolved: found.unresolved.into_iter().collect(),
        notes: found.notes,
    })
}

/// The file being parsed: its name for errors and its text.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    /// A syntax error at 1-based `line`.
    fn syntax(&self, line: usize, message: impl Into<String>) -> LockfileError {
        LockfileError::Syntax {
            file: self.file.to_string(),
            line,
            message: message.into(),
        }
    }

    /// A syntax error at byte `offset` of the text.
    fn syntax_at(&self, offset: usize, message: impl Into<String>) -> LockfileError {
        self.syntax(self.line_of(offset), message)
    }

    /// The 1-based line holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// A field holding something its format does not allow.
    fn field(&self, field: impl Into<String>, message: impl Into<String>) -> LockfileError {
        LockfileError::Field {
            file: self.file.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// A format version this parser does not read.
    fn unsupported(&self, message: impl Into<String>) -> LockfileError {
        LockfileError::Unsupported {
            file: self.file.to_string(),
            message: message.into(),
        }
    }

    /// The text parsed as JSON, with the line of the first error.
    fn json(&self) -> Result<serde_json::Value, LockfileError> {
        serde_json::from_str(self.text)
            .map_err(|err| self.syntax(err.line(), format!("invalid JSON: {err}")))
    }

    /// The text parsed as TOML, with the line of the first error.
    fn toml(&self) -> Result<toml::Table, LockfileError> {
        self.text.parse::<toml::Table>().map_err(|err| {
            let line = err.span().map_or(1, |span| self.line_of(span.start));
            self.syntax(line, format!("invalid TOML: {}", err.message()))
        })
    }

    /// The text parsed as YAML, with the line of the first error.
    fn yaml(&self) -> Result<serde_yaml_ng::Value, LockfileError> {
        serde_yaml_ng::from_str(self.text).map_err(|err| {
            let line = err.location().map_or(1, |location| location.line());
            self.syntax(line, format!("invalid YAML: {err}"))
        })
    }
}

/// What the parsers collect, deduplicated.
#[derive(Default)]
struct Found {
    packages: BTreeSet<PackageCoordinate>,
    unresolved: BTreeSet<Unresolved>,
    notes: Vec<String>,
}

impl Found {
    /// Records an exact coordinate.
    fn exact(&mut self, name: impl Into<String>, version: impl Into<String>) {
        self.packages.insert(PackageCoordinate {
            name: name.into(),
            version: version.into(),
        });
    }

    /// Records a dependency without an exact version.
    fn unresolved(
        &mut self,
        name: impl Into<String>,
        spec: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.unresolved.insert(Unresolved {
            name: name.into(),
            spec: spec.into(),
            reason: reason.into(),
        });
    }

    /// Records something skipped on purpose.
    fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

#[cfg(test)]
mod tests;
