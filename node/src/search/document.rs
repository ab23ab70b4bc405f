//! What the search index takes from a version: the words each ecosystem keeps where it keeps them
//! (a description in an attribute, npm's version manifest, PyPI's core metadata, a NuGet
//! `.nuspec`, OCI annotations, a Debian control file), file names, tags, key:value metadata and the
//! firewall's status.

use arca_protocol::firewall::FirewallStatus;
use arca_protocol::model::Version;
use serde_json::Value;

/// The attribute npm keeps a version's manifest in.
const NPM_MANIFEST: &str = "npm.manifest";
/// The attribute NuGet keeps what a version's `.nuspec` says in, as JSON.
const NUGET_METADATA: &str = "nuget.metadata";
/// The prefix of a Debian version's control files, one per architecture.
const DEBIAN_CONTROL: &str = "deb.control/";
/// OCI annotations that describe an image.
const OCI_DESCRIPTION: &str = "org.opencontainers.image.description";
const OCI_TITLE: &str = "org.opencontainers.image.title";
/// The most of a README (or any long text) indexed, in bytes.
const LONG_TEXT: usize = 64 * 1024;
/// The most of a description kept to show with a hit, in characters.
pub const SHOWN_DESCRIPTION: usize = 300;

/// The searchable text of one version.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VersionText {
    /// Its description (the first found of the ecosystem's places).
    pub description: String,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Longer text: a README, annotations, file names, tags, metadata values.
    pub body: Vec<String>,
    /// `key:value` of its metadata, lower-cased, for filters.
    pub metadata: Vec<String>,
    /// The firewall's word: `allowed`, `warn`, `blocked`, and `quarantined` or `released` where
    /// one was recorded (a quarantined version is also `blocked`, a released one `allowed`).
    pub statuses: Vec<&'static str>,
}

/// A string cut to at most `limit` bytes at a character boundary.
fn cut(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The README a version carries, where its format keeps one (npm's version manifest).
pub fn readme(version: &Version) -> Option<String> {
    let manifest = version.attributes.get(NPM_MANIFEST)?;
    let manifest: Value = serde_json::from_str(manifest).ok()?;
    manifest
        .get("readme")
        .and_then(Value::as_str)
        .filter(|readme| !readme.trim().is_empty())
        .map(str::to_string)
}

/// What `version` (tagged `tags`) gives the index.
pub fn version_text(version: &Version, tags: &[String]) -> VersionText {
    let mut text = VersionText::default();
    let attribute = |key: &str| version.attributes.get(key).filter(|v| !v.is_empty());
    let mut descriptions: Vec<String> = Vec::new();
    if let Some(description) = attribute("description") {
        descriptions.push(description.clone());
    }
    if let Some(summary) = attribute("pypi.summary") {
        descriptions.push(summary.clone());
    }
    if let Some(keywords) = attribute("pypi.keywords") {
        text.keywords.extend(split_keywords(keywords));
    }
    if let Some(manifest) =
        attribute(NPM_MANIFEST).and_then(|json| serde_json::from_str::<Value>(json).ok())
    {
        if let Some(description) = manifest.get("description").and_then(Value::as_str) {
            descriptions.push(description.to_string());
        }
        match manifest.get("keywords") {
            Some(Value::Array(keywords)) => text.keywords.extend(
                keywords
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string),
            ),
            Some(Value::String(keywords)) => text.keywords.extend(split_keywords(keywords)),
            _ => {}
        }
        if let Some(readme) = manifest.get("readme").and_then(Value::as_str) {
            text.body.push(cut(readme, LONG_TEXT).to_string());
        }
    }
    if let Some(nuspec) =
        attribute(NUGET_METADATA).and_then(|json| serde_json::from_str::<Value>(json).ok())
    {
        for field in ["description", "summary", "title"] {
            if let Some(text) = nuspec.get(field).and_then(Value::as_str)
                && !text.is_empty()
            {
                descriptions.push(text.to_string());
            }
        }
        if let Some(tags) = nuspec.get("tags").and_then(Value::as_str) {
            text.keywords
                .extend(tags.split_whitespace().map(str::to_string));
        }
    }
    for (key, control) in &version.attributes {
        if key.starts_with(DEBIAN_CONTROL) {
            if let Some(description) = control_description(control) {
                descriptions.push(description);
            }
            break;
        }
    }
    if let Some(manifest) = &version.manifest {
        for (key, value) in &manifest.annotations {
            if key == OCI_DESCRIPTION || key == OCI_TITLE {
                descriptions.push(value.clone());
            } else {
                text.body.push(cut(value, LONG_TEXT).to_string());
            }
        }
        if let Some(kind) = &manifest.artifact_type {
            text.body.push(kind.clone());
        }
    }
    text.description = descriptions.first().cloned().unwrap_or_default();
    text.body.extend(descriptions.into_iter().skip(1));
    text.body.extend(version.files.keys().cloned());
    text.body.extend(tags.iter().cloned());
    for (key, value) in &version.metadata {
        text.body.push(format!("{key} {value}"));
        text.metadata.push(format!("{key}:{value}").to_lowercase());
    }
    text.statuses = statuses(version);
    text
}

/// Keywords written as one string, separated by commas or spaces.
fn split_keywords(keywords: &str) -> impl Iterator<Item = String> + '_ {
    keywords
        .split([',', ' '])
        .filter(|k| !k.is_empty())
        .map(str::to_string)
}

/// The first paragraph of a Debian control file's `Description` field.
fn control_description(control: &str) -> Option<String> {
    let mut lines = control.lines();
    let first = lines.find_map(|line| line.strip_prefix("Description:"))?;
    let mut description = first.trim().to_string();
    for line in lines {
        let Some(continued) = line.strip_prefix(' ') else {
            break;
        };
        if continued.trim() == "." {
            break;
        }
        description.push(' ');
        description.push_str(continued.trim());
    }
    Some(description)
}

fn statuses(version: &Version) -> Vec<&'static str> {
    let Some(firewall) = &version.firewall else {
        return vec!["allowed"];
    };
    if firewall.quarantine.is_some() {
        return vec!["quarantined", "blocked"];
    }
    if firewall.release.is_some() {
        return vec!["released", "allowed"];
    }
    vec![match firewall.verdict.status {
        FirewallStatus::Allowed => "allowed",
        FirewallStatus::Warn => "warn",
        FirewallStatus::Blocked => "blocked",
    }]
}

/// A package name as compared for an exact match: lower case, runs of `-`, `_` and `.` as one
/// `-` (PEP 503's normalisation, which also fits npm, Cargo and the rest).
pub fn normalized_name(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                normalized.push('-');
            }
            in_separator = true;
        } else {
            normalized.extend(c.to_lowercase());
            in_separator = false;
        }
    }
    normalized
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn version(attributes: &[(&str, &str)]) -> Version {
        Version {
            name: "1.0.0".into(),
            created_at: 0,
            updated_at: 0,
            files: BTreeMap::new(),
            metadata: BTreeMap::from([("Team".to_string(), "Payments".to_string())]),
            manifest: None,
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            firewall: None,
            size: 0,
        }
    }

    #[test]
    fn each_ecosystem_s_description_and_keywords_are_found() {
        let npm = version(&[(
            NPM_MANIFEST,
            r##"{"description":"Pads strings","keywords":["pad","string"],"readme":"# left-pad"}"##,
        )]);
        let text = version_text(&npm, &["latest".to_string()]);
        assert_eq!(text.description, "Pads strings");
        assert_eq!(text.keywords, ["pad", "string"]);
        assert!(text.body.contains(&"# left-pad".to_string()));
        assert!(text.body.contains(&"latest".to_string()));
        assert_eq!(text.metadata, ["team:payments"]);
        assert_eq!(text.statuses, ["allowed"]);

        let pypi = version(&[
            ("pypi.summary", "HTTP for humans"),
            ("pypi.keywords", "http,client"),
        ]);
        let text = version_text(&pypi, &[]);
        assert_eq!(text.description, "HTTP for humans");
        assert_eq!(text.keywords, ["http", "client"]);

        let debian = version(&[(
            "deb.control/amd64",
            "Package: hello\nDescription: example package\n based on GNU hello\n .\n more\n",
        )]);
        assert_eq!(
            version_text(&debian, &[]).description,
            "example package based on GNU hello"
        );

        let nuget = version(&[(
            NUGET_METADATA,
            r#"{"id":"Arca.Words","description":"Counts words","title":"Words","tags":"text nlp"}"#,
        )]);
        let text = version_text(&nuget, &[]);
        assert_eq!(text.description, "Counts words");
        assert!(text.body.contains(&"Words".to_string()));
        assert_eq!(text.keywords, ["text", "nlp"]);
    }

    #[test]
    fn names_normalize_as_pep_503_does() {
        assert_eq!(normalized_name("Foo__Bar.baz-Qux"), "foo-bar-baz-qux");
        assert_eq!(normalized_name("@scope/left-pad"), "@scope/left-pad");
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let text = "é".repeat(10);
        assert_eq!(cut(&text, 5), "éé");
    }
}
