//! The Python family: `requirements.txt` (pip's line format), `pyproject.toml` (PEP 621
//! `[project]` and Poetry's `[tool.poetry]` tables), `Pipfile.lock` and `poetry.lock`. Requirement
//! strings are read by a small PEP 508 parser ([`Requirement::parse`]); only `==` (or `===`) pins
//! without wildcards are exact, and names are normalised per PEP 503.

use std::str::FromStr;

use serde_json::Value;
use toml::Value as Toml;

use super::{Found, LockfileError, Source};

/// The hint given for every requirement that is not pinned.
const RANGE_HINT: &str = "not pinned with ==: audit a lockfile or `pip freeze` output instead";

/// A name normalised per PEP 503: lower case, runs of `-`, `_` and `.` as one `-`.
pub(super) fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// A PEP 508 requirement, as far as the firewall needs it.
#[derive(Debug, PartialEq, Eq)]
struct Requirement {
    /// The name, PEP 503-normalised.
    name: String,
    /// What stands in for a version: the specifier text (`==2.31.0`, `>=2,<3`), `@ URL`, or empty.
    spec: String,
    /// The version an `==`/`===` clause pins, if one does.
    pinned: Option<String>,
    /// Whether the requirement is a direct URL (`name @ https://...`).
    url: bool,
}

impl Requirement {
    /// Parses `name [extras] (specifiers | @ url) ; markers`; markers are not evaluated (every
    /// requirement is audited whatever environment it applies to).
    fn parse(text: &str) -> Result<Requirement, String> {
        let text = text
            .split_once(';')
            .map_or(text, |(req, _markers)| req)
            .trim();
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(text.len());
        let raw_name = &text[..name_end];
        if raw_name.is_empty()
            || !raw_name.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !raw_name.ends_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err(format!("{text:?} does not start with a package name"));
        }
        let mut rest = text[name_end..].trim_start();
        if let Some(extras) = rest.strip_prefix('[') {
            let close = extras
                .find(']')
                .ok_or_else(|| format!("unclosed extras in {text:?}"))?;
            rest = extras[close + 1..].trim_start();
        }
        let name = normalize(raw_name);
        if let Some(url) = rest.strip_prefix('@') {
            return Ok(Requirement {
                name,
                spec: format!("@ {}", url.trim()),
                pinned: None,
                url: true,
            });
        }
        let spec = rest
            .strip_prefix('(')
            .and_then(|inner| inner.strip_suffix(')'))
            .unwrap_or(rest)
            .trim();
        let mut pinned = None;
        if !spec.is_empty() {
            for clause in spec.split(',') {
                let clause = clause.trim();
                let op_end = clause
                    .find(|c: char| !matches!(c, '=' | '!' | '<' | '>' | '~'))
                    .unwrap_or(clause.len());
                let (op, version) = (&clause[..op_end], clause[op_end..].trim());
                if !matches!(op, "==" | "===" | "!=" | "<=" | ">=" | "<" | ">" | "~=") {
                    return Err(format!("{clause:?} is not a version specifier"));
                }
                if version.is_empty() {
                    return Err(format!("{clause:?} has no version"));
                }
                match op {
                    "===" => pinned = Some(version.to_string()),
                    "==" if !version.ends_with(".*") => {
                        pep440_rs::Version::from_str(version).map_err(|err| {
                            format!("{version:?} is not a PEP 440 version: {err}")
                        })?;
                        pinned = Some(version.to_string());
                    }
                    _ => {}
                }
            }
        }
        Ok(Requirement {
            name,
            spec: spec.to_string(),
            pinned,
            url: false,
        })
    }

    /// Records the requirement: its pin as a coordinate, else as unresolved.
    fn record(self, found: &mut Found) {
        match self.pinned {
            Some(version) => found.exact(self.name, version),
            None if self.url => {
                found.unresolved(self.name, self.spec, "a direct URL, not a registry version")
            }
            None if self.spec.is_empty() => found.unresolved(self.name, "*", RANGE_HINT),
            None => found.unresolved(self.name, self.spec, RANGE_HINT),
        }
    }
}

/// pip options that take the rest of the line and name no requirement.
const IGNORED_OPTIONS: [&str; 14] = [
    "-i",
    "--index-url",
    "--extra-index-url",
    "--no-index",
    "-f",
    "--find-links",
    "--trusted-host",
    "--pre",
    "--prefer-binary",
    "--require-hashes",
    "--only-binary",
    "--no-binary",
    "--use-feature",
    "--config-settings",
];

/// `requirements.txt`: one requirement per logical line (`\` continues a line), `#` comments,
/// per-requirement options such as `--hash=...` ignored; `-r`/`-c` includes are noted, not followed.
pub(super) fn requirements(source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
    let mut logical = String::new();
    let mut start = 0;
    for (index, raw) in source.text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if logical.is_empty() {
            start = index + 1;
        }
        match raw.strip_suffix('\\') {
            Some(continued) => {
                logical.push_str(continued);
                logical.push(' ');
                continue;
            }
            None => logical.push_str(raw),
        }
        let line = std::mem::take(&mut logical);
        requirement_line(source, found, start, &line)?;
    }
    if !logical.is_empty() {
        requirement_line(source, found, start, &logical)?;
    }
    Ok(())
}

/// One logical line of a requirements file, starting at line `number`.
fn requirement_line(
    source: &Source<'_>,
    found: &mut Found,
    number: usize,
    line: &str,
) -> Result<(), LockfileError> {
    let line = strip_comment(line).trim();
    if line.is_empty() {
        return Ok(());
    }
    if line.starts_with('-') {
        let (option, value) = line
            .split_once(|c: char| c == '=' || c.is_whitespace())
            .map_or((line, ""), |(option, value)| (option, value.trim()));
        match option {
            "-r" | "--requirement" | "-c" | "--constraint" => found.note(format!(
                "line {number}: {option} {value} not followed; audit that file separately"
            )),
            "-e" | "--editable" => {
                let name = value
                    .split_once("#egg=")
                    .map_or_else(|| value.to_string(), |(_, egg)| normalize(egg));
                found.unresolved(name, value, "an editable install, not a registry version")
            }
            _ if IGNORED_OPTIONS.contains(&option) => {}
            _ => return Err(source.syntax(number, format!("unknown option {option}"))),
        }
        return Ok(());
    }
    // Per-requirement options (`--hash=sha256:...`) follow the requirement.
    let requirement = line.split(" --").next().unwrap_or(line).trim();
    if requirement.contains("://") && !requirement.contains('@')
        || requirement.starts_with(['.', '/'])
    {
        found.unresolved(
            requirement,
            requirement,
            "a path or URL, not a registry version",
        );
        return Ok(());
    }
    Requirement::parse(requirement)
        .map_err(|message| source.syntax(number, message))?
        .record(found);
    Ok(())
}

/// A line without its `#` comment (a `#` at the start or after whitespace; URLs keep `#egg=`).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (at, &byte) in bytes.iter().enumerate() {
        if byte == b'#' && (at == 0 || bytes[at - 1].is_ascii_whitespace()) {
            return &line[..at];
        }
    }
    line
}

/// `pyproject.toml`: PEP 621 `[project]` dependencies and optional-dependencies, PEP 735
/// `[dependency-groups]`, and Poetry's `[tool.poetry.dependencies]`, dev-dependencies and groups.
pub(super) fn pyproject(source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
    let root = source.toml()?;
    if let Some(project) = root.get("project") {
        if let Some(deps) = project.get("dependencies") {
            pep508_list(source, found, "project.dependencies", deps)?;
        }
        if let Some(optional) = project.get("optional-dependencies") {
            let optional = optional
                .as_table()
                .ok_or_else(|| source.field("project.optional-dependencies", "expected a table"))?;
            for (extra, deps) in optional {
                pep508_list(
                    source,
                    found,
                    &format!("project.optional-dependencies.{extra}"),
                    deps,
                )?;
            }
        }
    }
    if let Some(groups) = root.get("dependency-groups") {
        let groups = groups
            .as_table()
            .ok_or_else(|| source.field("dependency-groups", "expected a table"))?;
        for (group, deps) in groups {
            pep508_list(source, found, &format!("dependency-groups.{group}"), deps)?;
        }
    }
    if let Some(poetry) = root.get("tool").and_then(|tool| tool.get("poetry")) {
        for section in ["dependencies", "dev-dependencies"] {
            if let Some(deps) = poetry.get(section) {
                poetry_table(source, found, &format!("tool.poetry.{section}"), deps)?;
            }
        }
        if let Some(groups) = poetry.get("group").and_then(Toml::as_table) {
            for (group, table) in groups {
                if let Some(deps) = table.get("dependencies") {
                    let field = format!("tool.poetry.group.{group}.dependencies");
                    poetry_table(source, found, &field, deps)?;
                }
            }
        }
    }
    Ok(())
}

/// An array of PEP 508 strings (PEP 735 `{include-group = ...}` tables are skipped).
fn pep508_list(
    source: &Source<'_>,
    found: &mut Found,
    field: &str,
    deps: &Toml,
) -> Result<(), LockfileError> {
    let deps = deps
        .as_array()
        .ok_or_else(|| source.field(field, "expected an array of requirement strings"))?;
    for (index, dep) in deps.iter().enumerate() {
        match dep {
            Toml::String(text) => Requirement::parse(text)
                .map_err(|message| source.field(format!("{field}[{index}]"), message))?
                .record(found),
            Toml::Table(_) => {}
            _ => return Err(source.field(format!("{field}[{index}]"), "expected a string")),
        }
    }
    Ok(())
}

/// A Poetry dependency table: `name = "constraint"`, `name = {version = ..., ...}`, a git, path or
/// URL table, or an array of those; `python` is the interpreter, not a package.
fn poetry_table(
    source: &Source<'_>,
    found: &mut Found,
    field: &str,
    deps: &Toml,
) -> Result<(), LockfileError> {
    let deps = deps
        .as_table()
        .ok_or_else(|| source.field(field, "expected a table"))?;
    for (name, spec) in deps {
        if name == "python" {
            continue;
        }
        let entry = format!("{field}.{name}");
        let constraints = match spec {
            Toml::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for constraint in constraints {
            poetry_constraint(source, found, &entry, name, constraint)?;
        }
    }
    Ok(())
}

/// One Poetry constraint of `name`.
fn poetry_constraint(
    source: &Source<'_>,
    found: &mut Found,
    field: &str,
    name: &str,
    spec: &Toml,
) -> Result<(), LockfileError> {
    let name = normalize(name);
    let version = match spec {
        Toml::String(version) => version.as_str(),
        Toml::Table(table) => match table.get("version") {
            Some(Toml::String(version)) => version.as_str(),
            Some(_) => return Err(source.field(format!("{field}.version"), "expected a string")),
            None => {
                let location = ["git", "path", "url", "file"]
                    .into_iter()
                    .find_map(|key| table.get(key).and_then(Toml::as_str))
                    .unwrap_or("(no version)");
                found.unresolved(name, location, "not from a registry (git, path or URL)");
                return Ok(());
            }
        },
        _ => return Err(source.field(field, "expected a version string or a table")),
    };
    let version = version.trim();
    // Poetry reads a bare version as an exact pin.
    let pinned = version.strip_prefix("==").unwrap_or(version).trim();
    if pinned.chars().next().is_some_and(|c| c.is_ascii_digit())
        && pep440_rs::Version::from_str(pinned).is_ok()
    {
        found.exact(name, pinned);
    } else {
        found.unresolved(name, version, RANGE_HINT);
    }
    Ok(())
}

/// `Pipfile.lock`: JSON `default` and `develop` maps of `name: {version: "==x"}`; git, path and
/// editable entries have no version.
pub(super) fn pipfile_lock(source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
    let root = source.json()?;
    for section in ["default", "develop"] {
        let Some(deps) = root.get(section) else {
            continue;
        };
        let deps = deps
            .as_object()
            .ok_or_else(|| source.field(section, "expected an object"))?;
        for (name, entry) in deps {
            let field = format!("{section}.{name}");
            let version = match entry.get("version") {
                Some(Value::String(version)) => version,
                Some(_) => {
                    return Err(source.field(format!("{field}.version"), "expected a string"));
                }
                None => {
                    let location = ["git", "path", "file"]
                        .into_iter()
                        .find_map(|key| entry.get(key).and_then(Value::as_str))
                        .unwrap_or("(no version)");
                    found.unresolved(
                        normalize(name),
                        location,
                        "not from a registry (git, path or file)",
                    );
                    continue;
                }
            };
            let requirement = Requirement::parse(&format!("{name}{version}"))
                .map_err(|message| source.field(format!("{field}.version"), message))?;
            requirement.record(found);
        }
    }
    Ok(())
}

/// `poetry.lock`: TOML `[[package]]` tables with `name` and `version`; packages from a git
/// repository, a directory, a file or a URL are not registry versions.
pub(super) fn poetry_lock(source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
    let root = source.toml()?;
    let Some(packages) = root.get("package") else {
        return Ok(());
    };
    let packages = packages
        .as_array()
        .ok_or_else(|| source.field("package", "expected an array of tables"))?;
    for (index, package) in packages.iter().enumerate() {
        let field = format!("package[{index}]");
        let text = |key: &str| -> Result<&str, LockfileError> {
            package
                .get(key)
                .and_then(Toml::as_str)
                .ok_or_else(|| source.field(format!("{field}.{key}"), "missing or not a string"))
        };
        let name = normalize(text("name")?);
        let version = text("version")?;
        let kind = package
            .get("source")
            .and_then(|source| source.get("type"))
            .and_then(Toml::as_str);
        match kind {
            Some(kind @ ("git" | "directory" | "file" | "url")) => {
                let url = package
                    .get("source")
                    .and_then(|source| source.get("url"))
                    .and_then(Toml::as_str)
                    .unwrap_or(kind);
                found.unresolved(name, url, format!("not from a registry ({kind} source)"));
            }
            _ => found.exact(name, version),
        }
    }
    Ok(())
}
