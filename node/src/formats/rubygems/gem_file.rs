//! A `.gem` read as `gem install` reads it: a plain tar holding `metadata.gz` (the specification
//! as YAML with Ruby tags, gzip'd) and `data.tar.gz` (the files). What the registry keeps of the
//! specification is a [`GemSpec`], checked so that every index line it becomes can be parsed by
//! the clients (the compact index has no escaping).

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

/// The largest `metadata.gz`, unpacked.
const METADATA_LIMIT: u64 = 4 * 1024 * 1024;

/// What a dependency is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencyKind {
    Runtime,
    Development,
}

/// One dependency of a gem: a name and its requirements (`(">=", "1.0")`...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GemDependency {
    pub name: String,
    pub requirements: Vec<(String, String)>,
    pub kind: DependencyKind,
}

/// What the registry keeps of a gem's specification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GemSpec {
    pub name: String,
    /// The version number (`1.2.0`, `2.0.0.rc1`).
    pub number: String,
    /// `ruby`, or the platform of a native gem (`x86_64-linux`).
    pub platform: String,
    pub summary: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub email: Vec<String>,
    #[serde(default)]
    pub homepage: Option<String>,
    #[serde(default)]
    pub licenses: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub dependencies: Vec<GemDependency>,
    #[serde(default)]
    pub required_ruby_version: Vec<(String, String)>,
    #[serde(default)]
    pub required_rubygems_version: Vec<(String, String)>,
}

impl GemSpec {
    /// The version as the indexes name it: the number, and `-<platform>` for a native gem.
    pub fn full_version(&self) -> String {
        full_version(&self.number, &self.platform)
    }

    /// `<name>-<full version>`: the stem of the `.gem` and `.gemspec.rz` files.
    pub fn full_name(&self) -> String {
        format!("{}-{}", self.name, self.full_version())
    }

    /// Whether the version is a pre-release (its number holds a letter).
    pub fn is_prerelease(&self) -> bool {
        is_prerelease(&self.number)
    }
}

/// The version of `number` on `platform` as the indexes name it.
pub fn full_version(number: &str, platform: &str) -> String {
    if platform == "ruby" {
        number.to_string()
    } else {
        format!("{number}-{platform}")
    }
}

/// Whether a gem version number is a pre-release (it holds a letter).
pub fn is_prerelease(number: &str) -> bool {
    number.bytes().any(|b| b.is_ascii_alphabetic())
}

/// A gem name: letters, digits, `.`, `_` and `-`, with a letter or digit first.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid gem name {name:?}: letters, digits, '.', '_' and '-', starting with a letter or digit"
        ))
    }
}

/// A version number as `Gem::Version` accepts it: dot-separated segments of letters and digits,
/// starting with a number.
pub fn check_number(number: &str) -> Result<(), String> {
    let valid = number.len() <= 64
        && number.starts_with(|c: char| c.is_ascii_digit())
        && number.split('.').all(|segment| {
            !segment.is_empty() && segment.chars().all(|c| c.is_ascii_alphanumeric())
        });
    if valid {
        Ok(())
    } else {
        Err(format!("invalid version {number:?}"))
    }
}

fn check_platform(platform: &str) -> Result<(), String> {
    let valid = !platform.is_empty()
        && platform.len() <= 64
        && platform
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(format!("invalid platform {platform:?}"))
    }
}

/// Reads the `.gem` `archive` (see the module documentation).
pub fn read(archive: impl Read) -> Result<GemSpec, String> {
    let mut tar = tar::Archive::new(archive);
    let mut metadata = None;
    let mut has_data = false;
    for entry in tar
        .entries()
        .map_err(|e| format!("not a gem (a tar archive): {e}"))?
    {
        let entry = entry.map_err(|e| format!("not a gem (a tar archive): {e}"))?;
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        match path.as_str() {
            "metadata.gz" => {
                let mut yaml = Vec::new();
                flate2::read::GzDecoder::new(entry)
                    .take(METADATA_LIMIT + 1)
                    .read_to_end(&mut yaml)
                    .map_err(|e| format!("metadata.gz: {e}"))?;
                if yaml.len() as u64 > METADATA_LIMIT {
                    return Err(format!(
                        "metadata.gz unpacks to more than {METADATA_LIMIT} bytes"
                    ));
                }
                metadata = Some(yaml);
            }
            "data.tar.gz" => has_data = true,
            _ => {}
        }
    }
    let yaml = metadata.ok_or("the gem has no metadata.gz")?;
    if !has_data {
        return Err("the gem has no data.tar.gz".into());
    }
    let document: Value = serde_yaml_ng::from_slice(&yaml)
        .map_err(|e| format!("the gem's specification is not YAML: {e}"))?;
    spec_of(&untagged(document))
}

/// The value with Ruby's `!ruby/object:...` tags taken off, everywhere.
fn untagged(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => untagged(tagged.value),
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(untagged).collect()),
        Value::Mapping(map) => Value::Mapping(
            map.into_iter()
                .map(|(k, v)| (untagged(k), untagged(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A scalar as text (YAML may read `version: 1.0` as a number).
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn texts(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Sequence(items)) => items.iter().filter_map(text).collect(),
        Some(other) => text(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A `Gem::Requirement` as `(operator, version)` pairs; `>= 0` alone (no constraint) is none.
fn requirements(value: Option<&Value>, what: &str) -> Result<Vec<(String, String)>, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = value
        .get("requirements")
        .and_then(Value::as_sequence)
        .ok_or_else(|| format!("{what}: not a requirement"))?;
    let mut pairs = Vec::new();
    for pair in list {
        let (op, version) = match pair.as_sequence().map(Vec::as_slice) {
            Some([op, version]) => (
                text(op).unwrap_or_default(),
                version.get("version").and_then(text).unwrap_or_default(),
            ),
            _ => return Err(format!("{what}: a requirement is not [operator, version]")),
        };
        if !matches!(op.as_str(), "=" | "!=" | ">" | "<" | ">=" | "<=" | "~>") {
            return Err(format!("{what}: invalid operator {op:?}"));
        }
        check_number(&version).map_err(|e| format!("{what}: {e}"))?;
        pairs.push((op, version));
    }
    if pairs == [(">=".to_string(), "0".to_string())] {
        pairs.clear();
    }
    Ok(pairs)
}

fn spec_of(document: &Value) -> Result<GemSpec, String> {
    let field = |key: &str| document.get(key).filter(|v| !v.is_null());
    let name = field("name")
        .and_then(text)
        .ok_or("the specification has no name")?;
    check_name(&name)?;
    let number = field("version")
        .and_then(|v| v.get("version"))
        .and_then(text)
        .ok_or("the specification has no version")?;
    check_number(&number)?;
    let platform = field("platform")
        .and_then(text)
        .unwrap_or_else(|| "ruby".into());
    check_platform(&platform)?;
    let mut dependencies = Vec::new();
    for dependency in field("dependencies")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let dep_name = dependency
            .get("name")
            .and_then(text)
            .ok_or("a dependency has no name")?;
        check_name(&dep_name).map_err(|e| format!("dependency: {e}"))?;
        let kind = match dependency.get("type").and_then(text).as_deref() {
            Some(":development") => DependencyKind::Development,
            Some(":runtime") | None => DependencyKind::Runtime,
            Some(other) => return Err(format!("dependency {dep_name}: invalid type {other:?}")),
        };
        let requirement = dependency
            .get("requirement")
            .or_else(|| dependency.get("version_requirements"));
        dependencies.push(GemDependency {
            requirements: requirements(requirement, &format!("dependency {dep_name}"))?,
            name: dep_name,
            kind,
        });
    }
    let metadata = match field("metadata") {
        Some(Value::Mapping(map)) => map
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
            .collect(),
        _ => BTreeMap::new(),
    };
    Ok(GemSpec {
        summary: field("summary").and_then(text).unwrap_or_default(),
        description: field("description").and_then(text),
        authors: texts(field("authors")),
        email: texts(field("email")),
        homepage: field("homepage").and_then(text),
        licenses: texts(field("licenses")),
        metadata,
        dependencies,
        required_ruby_version: requirements(
            field("required_ruby_version"),
            "required_ruby_version",
        )?,
        required_rubygems_version: requirements(
            field("required_rubygems_version"),
            "required_rubygems_version",
        )?,
        name,
        number,
        platform,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The YAML `gem build` writes (trimmed) for a gem with one runtime dependency.
    pub const METADATA: &str = "--- !ruby/object:Gem::Specification
name: foo
version: !ruby/object:Gem::Version
  version: 0.1.0
platform: ruby
authors:
- A
date: 2026-12-05 00:00:00.000000000 Z
dependencies:
- !ruby/object:Gem::Dependency
  name: bar
  requirement: !ruby/object:Gem::Requirement
    requirements:
    - - \">=\"
      - !ruby/object:Gem::Version
        version: '1.0'
    - - \"<\"
      - !ruby/object:Gem::Version
        version: '2'
  type: :runtime
  prerelease: false
description:
email:
licenses:
- MIT
metadata: {}
required_ruby_version: !ruby/object:Gem::Requirement
  requirements:
  - - \">=\"
    - !ruby/object:Gem::Version
      version: '2.7'
required_rubygems_version: !ruby/object:Gem::Requirement
  requirements:
  - - \">=\"
    - !ruby/object:Gem::Version
      version: '0'
rubygems_version: 3.3.15
specification_version: 4
summary: Foo
";

    #[test]
    fn a_specification_is_read_from_gem_builds_yaml() {
        let document: Value = serde_yaml_ng::from_str(METADATA).expect("yaml");
        let spec = spec_of(&untagged(document)).expect("valid");
        assert_eq!((spec.name.as_str(), spec.number.as_str()), ("foo", "0.1.0"));
        assert_eq!(spec.full_name(), "foo-0.1.0");
        assert_eq!(
            spec.dependencies,
            [GemDependency {
                name: "bar".into(),
                requirements: vec![(">=".into(), "1.0".into()), ("<".into(), "2".into())],
                kind: DependencyKind::Runtime,
            }]
        );
        assert_eq!(
            spec.required_ruby_version,
            [(">=".to_string(), "2.7".to_string())]
        );
        assert!(spec.required_rubygems_version.is_empty());
        assert_eq!(spec.licenses, ["MIT"]);
        let broken = METADATA.replace("version: 0.1.0", "version: 0.1.0 bad|");
        let document: Value = serde_yaml_ng::from_str(&broken).expect("yaml");
        assert!(spec_of(&untagged(document)).is_err());
        assert!(check_name("../x").is_err());
        assert!(check_number("1.0.0.rc1").is_ok() && is_prerelease("1.0.0.rc1"));
    }
}
