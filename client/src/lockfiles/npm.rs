//! The npm family: `package.json` (declared ranges; only exact pins are coordinates),
//! `package-lock.json` / `npm-shrinkwrap.json` (lockfileVersion 1's `dependencies` tree, 2 and 3's
//! `packages` map of `node_modules/` paths), `pnpm-lock.yaml` (lockfileVersion 6's `/name@version`
//! and 9's `name@version` keys, peer suffixes stripped) and `yarn.lock` (classic v1 and berry).

use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

use super::{Found, LockfileError, Source};

/// The hint given for every range a manifest declares.
const RANGE_HINT: &str = "a range, not an exact version: audit the lockfile instead";

/// The dependency sections of a `package.json`.
const SECTIONS: [&str; 4] = [
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
];

/// `package.json`: exact pins are coordinates, everything else is listed as unresolved.
pub(super) fn package_json(source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
    let root = source.json()?;
    let root = root
        .as_object()
        .ok_or_else(|| source.field("(root)", "expected a JSON object"))?;
    for section in SECTIONS {
        let Some(deps) = root.get(section) else {
            continue;
        };
        let deps = deps
            .as_object()
            .ok_or_else(|| source.field(section, "expected an object of name: version range"))?;
        for (name, spec) in deps {
            let spec = spec.as_str().ok_or_else(|| {
                source.field(format!("{section}.{name}"), "expected a version string")
            })?;
            declared(found, name, spec);
        }
    }
    Ok(())
}

/// One `name: spec` of a manifest: an exact pin (possibly through an `npm:` alias) or unresolved.
fn declared(found: &mut Found, name: &str, spec: &str) {
    let spec = spec.trim();
    let (name, range) = match spec.strip_prefix("npm:") {
        Some(alias) => split_name_version(alias).unwrap_or((alias, "")),
        None => (name, spec),
    };
    if let Some(version) = exact_version(range) {
        found.exact(name, version);
    } else if is_registry_range(range) {
        found.unresolved(name, spec, RANGE_HINT);
    } else {
        found.unresolved(name, spec, "not a registry version (URL, git, file or tag)");
    }
}

/// The version an npm spec pins exactly (`1.2.3`, `=1.2.3`, `v1.2.3`), if it does.
fn exact_version(spec: &str) -> Option<String> {
    let bare = spec.trim().trim_start_matches('=').trim_start();
    let bare = bare.strip_prefix('v').unwrap_or(bare);
    semver::Version::parse(bare).ok().map(|v| v.to_string())
}

/// Whether an npm spec is a semver range (as opposed to a URL, git, file, workspace spec or tag).
fn is_registry_range(spec: &str) -> bool {
    !spec.is_empty()
        && spec.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    ' ' | '.' | '-' | '+' | '^' | '~' | '<' | '>' | '=' | '|' | '*'
                )
        })
        && (spec == "*"
            || spec
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || "^~<>=*vxX".contains(c)))
}

/// Splits `name@version` (the name may be scoped: `@scope/name@version`) at the version's `@`.
fn split_name_version(text: &str) -> Option<(&str, &str)> {
    let at = text.get(1..)?.find('@')? + 1;
    let (name, version) = (&text[..at], &text[at + 1..]);
    (!name.is_empty() && !version.is_empty()).then_some((name, version))
}

/// Whether a resolved location is a registry tarball (as opposed to git, a file or a link).
fn from_registry(resolved: Option<&str>) -> bool {
    resolved.is_none_or(|url| url.starts_with("https://") || url.starts_with("http://"))
}

/// `package-lock.json` / `npm-shrinkwrap.json`.
pub(super) fn package_lock(source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
    let root = source.json()?;
    let root = root
        .as_object()
        .ok_or_else(|| source.field("(root)", "expected a JSON object"))?;
    let version = root
        .get("lockfileVersion")
        .ok_or_else(|| source.field("lockfileVersion", "missing"))?;
    match version.as_u64() {
        Some(1) => {
            let deps = root.get("dependencies").unwrap_or(&Value::Null);
            lock_v1_tree(source, found, "dependencies", deps)
        }
        Some(2 | 3) => {
            let packages = root
                .get("packages")
                .ok_or_else(|| source.field("packages", "missing (lockfileVersion 2 and 3)"))?
                .as_object()
                .ok_or_else(|| source.field("packages", "expected an object"))?;
            lock_packages(source, found, packages)
        }
        _ => Err(source.unsupported(format!(
            "lockfileVersion {version} is not supported (1, 2 and 3 are)"
        ))),
    }
}

/// lockfileVersion 1: `dependencies` maps names to `{version, dependencies: {...nested}}`.
fn lock_v1_tree(
    source: &Source<'_>,
    found: &mut Found,
    path: &str,
    deps: &Value,
) -> Result<(), LockfileError> {
    if deps.is_null() {
        return Ok(());
    }
    let deps = deps
        .as_object()
        .ok_or_else(|| source.field(path, "expected an object"))?;
    for (name, entry) in deps {
        let field = format!("{path}[{name:?}]");
        let entry = entry
            .as_object()
            .ok_or_else(|| source.field(&field, "expected an object"))?;
        let version = string_field(source, entry, &field, "version")?
            .ok_or_else(|| source.field(format!("{field}.version"), "missing"))?;
        let resolved = string_field(source, entry, &field, "resolved")?;
        locked(found, name, version, resolved);
        if let Some(nested) = entry.get("dependencies") {
            lock_v1_tree(source, found, &format!("{field}.dependencies"), nested)?;
        }
    }
    Ok(())
}

/// lockfileVersion 2 and 3: `packages` maps install paths (`node_modules/a/node_modules/@s/b`) to
/// entries; the root (`""`), workspace folders and `link: true` entries are not registry packages.
fn lock_packages(
    source: &Source<'_>,
    found: &mut Found,
    packages: &Map<String, Value>,
) -> Result<(), LockfileError> {
    for (path, entry) in packages {
        let Some(at) = path.rfind("node_modules/") else {
            continue;
        };
        let field = format!("packages[{path:?}]");
        let entry = entry
            .as_object()
            .ok_or_else(|| source.field(&field, "expected an object"))?;
        if entry.get("link").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let name = match string_field(source, entry, &field, "name")? {
            Some(name) => name,
            None => &path[at + "node_modules/".len()..],
        };
        let resolved = string_field(source, entry, &field, "resolved")?;
        match string_field(source, entry, &field, "version")? {
            Some(version) => locked(found, name, version, resolved),
            None => found.unresolved(name, path.as_str(), "the lockfile gives no version"),
        }
    }
    Ok(())
}

/// An optional string field of a lockfile entry.
fn string_field<'v>(
    source: &Source<'_>,
    entry: &'v Map<String, Value>,
    field: &str,
    key: &str,
) -> Result<Option<&'v str>, LockfileError> {
    match entry.get(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(source.field(format!("{field}.{key}"), "expected a string")),
    }
}

/// A locked package: a registry version is a coordinate (through an `npm:` alias, of the real
/// package), anything else (git, file, link) is unresolved.
fn locked(found: &mut Found, name: &str, version: &str, resolved: Option<&str>) {
    let (name, version) = match version.strip_prefix("npm:") {
        Some(alias) => split_name_version(alias).unwrap_or((name, alias)),
        None => (name, version),
    };
    if from_registry(resolved) && semver::Version::parse(version).is_ok() {
        found.exact(name, version);
    } else {
        let spec = resolved.unwrap_or(version);
        found.unresolved(name, spec, "not from a registry (git, file or link)");
    }
}

/// `pnpm-lock.yaml`, lockfileVersion 6 (`/name@version(peers)` under `packages:`) and 9
/// (`name@version` under `packages:`, `name@version(peers)` under `snapshots:`).
pub(super) fn pnpm_lock(source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
    let root = source.yaml()?;
    let version = match root.get("lockfileVersion") {
        Some(Yaml::String(text)) => text.clone(),
        Some(Yaml::Number(number)) => number.to_string(),
        Some(_) => return Err(source.field("lockfileVersion", "expected a string")),
        None => return Err(source.field("lockfileVersion", "missing")),
    };
    let major = version.split('.').next().unwrap_or_default();
    if !matches!(major, "6" | "9") {
        return Err(source.unsupported(format!(
            "pnpm lockfileVersion {version} is not supported (6.0 and 9.0 are)"
        )));
    }
    for section in ["packages", "snapshots"] {
        let entries = match root.get(section) {
            None | Some(Yaml::Null) => continue,
            Some(Yaml::Mapping(entries)) => entries,
            Some(_) => return Err(source.field(section, "expected a mapping")),
        };
        for (key, entry) in entries {
            let key = key
                .as_str()
                .ok_or_else(|| source.field(section, "expected package keys to be strings"))?;
            pnpm_entry(source, found, section, key, entry)?;
        }
    }
    Ok(())
}

/// One pnpm package key (and its entry, which names tarball and git sources).
fn pnpm_entry(
    source: &Source<'_>,
    found: &mut Found,
    section: &str,
    key: &str,
    entry: &Yaml,
) -> Result<(), LockfileError> {
    let bare = key.strip_prefix('/').unwrap_or(key);
    let bare = bare.find('(').map_or(bare, |paren| &bare[..paren]);
    let Some((name, version)) = split_name_version(bare) else {
        // pnpm 6 keys git and tarball packages by their location and names them in the entry.
        let name = entry.get("name").and_then(Yaml::as_str).ok_or_else(|| {
            source.field(
                format!("{section}[{key:?}]"),
                "expected name@version or a name field",
            )
        })?;
        found.unresolved(
            name,
            key,
            "not from a registry (tarball, git, file or link)",
        );
        return Ok(());
    };
    let resolution = entry.get("resolution");
    let elsewhere =
        resolution.is_some_and(|r| r.get("tarball").is_some() || r.get("repo").is_some());
    if elsewhere || semver::Version::parse(version).is_err() {
        found.unresolved(
            name,
            version,
            "not from a registry (tarball, git, file or link)",
        );
    } else {
        found.exact(name, version);
    }
    Ok(())
}

/// `yarn.lock`: berry's YAML when it has `__metadata`, the classic v1 format otherwise.
pub(super) fn yarn_lock(source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
    if source
        .text
        .lines()
        .any(|line| line.trim_end() == "__metadata:")
    {
        yarn_berry(source, found)
    } else {
        yarn_classic(source, found)
    }
}

/// Berry: a YAML mapping of `"name@npm:range, ...": {version, resolution: "name@npm:x"}`.
fn yarn_berry(source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
    let root = source.yaml()?;
    let entries = root
        .as_mapping()
        .ok_or_else(|| source.field("(root)", "expected a mapping"))?;
    for (key, entry) in entries {
        let key = key.as_str().unwrap_or_default();
        if key == "__metadata" {
            continue;
        }
        let resolution = entry
            .get("resolution")
            .and_then(Yaml::as_str)
            .ok_or_else(|| source.field(format!("{key:?}.resolution"), "missing"))?;
        let (name, reference) = split_name_version(resolution).ok_or_else(|| {
            source.field(
                format!("{key:?}.resolution"),
                "expected name@protocol:reference",
            )
        })?;
        if let Some(version) = reference.strip_prefix("npm:") {
            // Packages from another registry carry `::__archiveUrl=...` after the version.
            let version = version.split("::").next().unwrap_or(version);
            if semver::Version::parse(version).is_err() {
                return Err(source.field(
                    format!("{key:?}.resolution"),
                    format!("{version:?} is not a version"),
                ));
            }
            found.exact(name, version);
        } else if !reference.starts_with("workspace:") && !reference.starts_with("patch:") {
            // Workspaces are the project itself; a patch also locks the npm version it patches.
            found.unresolved(
                name,
                reference,
                "not from a registry (git, file, link or URL)",
            );
        }
    }
    Ok(())
}

/// Classic (v1): unindented `"name@range", name@range:` headers, each followed by indented fields
/// such as `version "x"` and `resolved "url"`.
fn yarn_classic(source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
    let mut entry: Option<ClassicEntry<'_>> = None;
    for (index, line) in source.text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            if let Some(done) = entry.take() {
                done.finish(source, found)?;
            }
            let header = trimmed
                .strip_suffix(':')
                .ok_or_else(|| source.syntax(number, "expected an entry header ending in ':'"))?;
            let first = header.split(',').next().unwrap_or_default().trim();
            let first = first.trim_matches('"');
            let (name, range) = split_name_version(first).ok_or_else(|| {
                source.syntax(number, format!("expected name@range, got {first:?}"))
            })?;
            // An alias (`alias@npm:real@range`) locks the real package; a `file:`, `link:`, git
            // or URL range is not from a registry even when yarn records no `resolved`.
            let (name, elsewhere) = match range.strip_prefix("npm:") {
                Some(alias) => (
                    split_name_version(alias).map_or(name, |(real, _)| real),
                    None,
                ),
                None => (name, range.contains(':').then_some(range)),
            };
            entry = Some(ClassicEntry {
                name,
                line: number,
                version: None,
                resolved: elsewhere,
            });
            continue;
        }
        let Some(current) = entry.as_mut() else {
            return Err(source.syntax(number, "indented field before any entry header"));
        };
        if line.starts_with("    ") {
            continue; // a field of `dependencies:` and the like
        }
        let (key, value) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
        let value = value.trim().trim_matches('"');
        match key {
            "version" => current.version = Some(value),
            "resolved" => current.resolved = Some(value),
            _ => {}
        }
    }
    if let Some(done) = entry {
        done.finish(source, found)?;
    }
    Ok(())
}

/// A classic yarn.lock entry being read.
struct ClassicEntry<'a> {
    name: &'a str,
    line: usize,
    version: Option<&'a str>,
    resolved: Option<&'a str>,
}

impl ClassicEntry<'_> {
    fn finish(self, source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
        let version = self.version.ok_or_else(|| {
            source.syntax(self.line, format!("entry for {} has no version", self.name))
        })?;
        locked(found, self.name, version, self.resolved);
        Ok(())
    }
}
