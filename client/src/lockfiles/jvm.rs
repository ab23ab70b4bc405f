//! The JVM family, coordinates named `group:artifact`: Maven's `pom.xml` (dependencies and
//! dependencyManagement, `${property}` substitution from `<properties>` and the project's own
//! coordinates, versions filled in from the POM's own dependencyManagement) and Gradle's
//! `build.gradle` / `build.gradle.kts` (string and map notations in dependency configurations, with
//! `$var` / `${var}` resolved from variables and extra properties the script defines).
//!
//! Gradle scripts are programs; this reads the declarations written the usual ways, and lists what it
//! cannot pin (catalog aliases, variables from elsewhere, dynamic versions) as unresolved.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{Found, LockfileError, Source};

/// `pom.xml`.
pub(super) fn pom(source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
    let pom = Pom::read(source)?;
    let managed: HashMap<String, String> = pom
        .dependencies
        .iter()
        .filter(|dep| dep.managed)
        .filter_map(|dep| {
            let version = pom.substitute(dep.version.as_deref()?).ok()?;
            Some((pom.substitute(&dep.key()).ok()?, version))
        })
        .collect();
    for dep in &pom.dependencies {
        let name = match pom.substitute(&dep.key()) {
            Ok(name) => name,
            Err(property) => {
                found.unresolved(
                    dep.key(),
                    dep.version.clone().unwrap_or_default(),
                    undefined(&property),
                );
                continue;
            }
        };
        let Some(raw) = &dep.version else {
            match managed.get(&name) {
                Some(version) => maven_version(found, &name, version),
                None => found.unresolved(
                    name,
                    "(none)",
                    "no version: it is managed by a parent POM or an imported BOM",
                ),
            }
            continue;
        };
        match pom.substitute(raw) {
            Ok(version) => maven_version(found, &name, &version),
            Err(property) => found.unresolved(name, raw.as_str(), undefined(&property)),
        }
    }
    Ok(())
}

/// The reason given for a `${property}` nothing in the file defines.
fn undefined(property: &str) -> String {
    format!("property ${{{property}}} is not defined in this file")
}

/// A Maven version: exact, or a range / `LATEST` / `RELEASE`, which are unresolved.
fn maven_version(found: &mut Found, name: &str, version: &str) {
    let version = version.trim();
    if version.is_empty() {
        found.unresolved(name, "(empty)", "empty version");
    } else if version.starts_with(['[', '(']) || matches!(version, "LATEST" | "RELEASE") {
        found.unresolved(name, version, "a version range, not an exact version");
    } else {
        found.exact(name, version);
    }
}

/// What a POM says that matters here.
#[derive(Default)]
struct Pom {
    properties: HashMap<String, String>,
    group: Option<String>,
    artifact: Option<String>,
    version: Option<String>,
    parent_group: Option<String>,
    parent_version: Option<String>,
    dependencies: Vec<PomDependency>,
}

/// One `<dependency>`.
#[derive(Default)]
struct PomDependency {
    group: String,
    artifact: String,
    version: Option<String>,
    /// Inside `<dependencyManagement>`.
    managed: bool,
}

impl PomDependency {
    fn key(&self) -> String {
        format!("{}:{}", self.group, self.artifact)
    }
}

impl Pom {
    /// Reads the elements that matter, with the line of any malformed XML or incomplete dependency.
    fn read(source: &Source<'_>) -> Result<Pom, LockfileError> {
        let mut reader = Reader::from_str(source.text);
        reader.config_mut().trim_text(true);
        let mut pom = Pom::default();
        let mut path: Vec<String> = Vec::new();
        let mut text = String::new();
        let mut dependency: Option<(PomDependency, usize)> = None;
        loop {
            let offset = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            let event = reader.read_event().map_err(|err| {
                let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
                source.syntax_at(at, format!("invalid XML: {err}"))
            })?;
            let (start, end) = match &event {
                Event::Start(tag) => (Some(local_name(tag.name().as_ref())), false),
                Event::Empty(tag) => (Some(local_name(tag.name().as_ref())), true),
                Event::End(_) => (None, true),
                Event::Text(chunk) => {
                    let chunk = chunk
                        .unescape()
                        .map_err(|err| source.syntax_at(offset, format!("invalid XML: {err}")))?;
                    text.push_str(&chunk);
                    continue;
                }
                Event::CData(chunk) => {
                    text.push_str(&String::from_utf8_lossy(chunk));
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            if let Some(name) = start {
                if name == "dependency" && path.last().is_some_and(|p| p == "dependencies") {
                    let managed = path.iter().any(|p| p == "dependencyManagement");
                    // The position after the tag: the one before may be on an earlier line.
                    let after = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
                    let line = source.line_of(after);
                    dependency = Some((
                        PomDependency {
                            managed,
                            ..PomDependency::default()
                        },
                        line,
                    ));
                }
                path.push(name);
                text.clear();
            }
            if end {
                let value = std::mem::take(&mut text).trim().to_string();
                pom.element_ended(&path, value, &mut dependency);
                if path.last().is_some_and(|p| p == "dependency")
                    && let Some((dep, line)) = dependency.take()
                {
                    for (field, value) in [("groupId", &dep.group), ("artifactId", &dep.artifact)] {
                        if value.is_empty() {
                            return Err(
                                source.syntax(line, format!("<dependency> has no <{field}>"))
                            );
                        }
                    }
                    pom.dependencies.push(dep);
                }
                path.pop();
            }
        }
        if !path.is_empty() {
            return Err(source.syntax(
                source.line_of(source.text.len()),
                format!("<{}> is not closed", path.join("><")),
            ));
        }
        Ok(pom)
    }

    /// Stores the text of the element at `path` where it matters.
    fn element_ended(
        &mut self,
        path: &[String],
        value: String,
        dependency: &mut Option<(PomDependency, usize)>,
    ) {
        let names: Vec<&str> = path.iter().map(String::as_str).collect();
        match names.as_slice() {
            ["project", "properties", key] => {
                self.properties.insert((*key).to_string(), value);
            }
            ["project", "groupId"] => self.group = Some(value),
            ["project", "artifactId"] => self.artifact = Some(value),
            ["project", "version"] => self.version = Some(value),
            ["project", "parent", "groupId"] => self.parent_group = Some(value),
            ["project", "parent", "version"] => self.parent_version = Some(value),
            [.., "dependency", field] => {
                if let Some((dep, _)) = dependency.as_mut() {
                    match *field {
                        "groupId" => dep.group = value,
                        "artifactId" => dep.artifact = value,
                        "version" => dep.version = Some(value),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// The value of a property: `<properties>` first, then the project's own coordinates.
    fn property(&self, key: &str) -> Option<&str> {
        if let Some(value) = self.properties.get(key) {
            return Some(value);
        }
        let version = || self.version.as_deref().or(self.parent_version.as_deref());
        match key {
            "project.version" | "pom.version" | "version" => version(),
            "project.groupId" | "pom.groupId" | "groupId" => {
                self.group.as_deref().or(self.parent_group.as_deref())
            }
            "project.artifactId" | "pom.artifactId" | "artifactId" => self.artifact.as_deref(),
            "project.parent.version" | "parent.version" => self.parent_version.as_deref(),
            "project.parent.groupId" | "parent.groupId" => self.parent_group.as_deref(),
            _ => None,
        }
    }

    /// `text` with every `${property}` replaced (properties may refer to properties), or the name of
    /// the first property nothing defines.
    fn substitute(&self, text: &str) -> Result<String, String> {
        let mut current = text.to_string();
        // Bounded, so that properties defined in terms of each other cannot loop.
        for _ in 0..16 {
            let Some(start) = current.find("${") else {
                return Ok(current);
            };
            let Some(len) = current[start..].find('}') else {
                return Ok(current);
            };
            let key = &current[start + 2..start + len];
            let value = self.property(key).ok_or_else(|| key.to_string())?;
            current = format!(
                "{}{}{}",
                &current[..start],
                value,
                &current[start + len + 1..]
            );
        }
        match current.find("${") {
            Some(start) => Err(current[start + 2..].trim_end_matches('}').to_string()),
            None => Ok(current),
        }
    }
}

/// An element name without its namespace prefix.
fn local_name(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.rsplit_once(':') {
        Some((_, local)) => local.to_string(),
        None => name.into_owned(),
    }
}

/// Gradle configurations that take dependencies, besides the `...Implementation`-style names
/// [`is_configuration`] recognises by suffix.
const CONFIGURATIONS: [&str; 12] = [
    "implementation",
    "api",
    "compile",
    "compileOnly",
    "runtime",
    "runtimeOnly",
    "testCompile",
    "testRuntime",
    "classpath",
    "kapt",
    "ksp",
    "developmentOnly",
];

/// Whether an identifier is a dependency configuration.
fn is_configuration(name: &str) -> bool {
    CONFIGURATIONS.contains(&name)
        || [
            "Implementation",
            "Api",
            "CompileOnly",
            "RuntimeOnly",
            "AnnotationProcessor",
            "Compile",
        ]
        .iter()
        .any(|suffix| name.len() > suffix.len() && name.ends_with(suffix))
        || name == "annotationProcessor"
        || name == "providedCompile"
        || name == "providedRuntime"
}

/// `build.gradle` and `build.gradle.kts`.
pub(super) fn gradle(source: &Source<'_>, found: &mut Found) -> Result<(), LockfileError> {
    let lines = code_lines(source.text);
    let variables: HashMap<String, String> = lines
        .iter()
        .filter_map(|(_, line)| variable(line))
        .collect();
    for (number, line) in &lines {
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(line.len());
        let (configuration, rest) = line.split_at(name_end);
        if !is_configuration(configuration) || !rest.starts_with([' ', '\t', '(']) {
            continue;
        }
        let rest = before_closure(rest);
        let literals = string_literals(rest).map_err(|message| source.syntax(*number, message))?;
        if let Some(group) = map_entry(rest, "group") {
            let artifact = map_entry(rest, "name")
                .ok_or_else(|| source.syntax(*number, "map notation with a group but no name"))?;
            let version = map_entry(rest, "version");
            gradle_coordinate(found, &variables, &group, &artifact, version.as_deref());
        } else if literals.is_empty() {
            let reference = rest
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .trim();
            if reference.starts_with("libs.") {
                found.unresolved(
                    reference,
                    reference,
                    "a version catalog alias: audit gradle/libs.versions.toml",
                );
            }
        } else {
            for literal in literals {
                let mut parts = literal.split(':');
                let (Some(group), Some(artifact)) = (parts.next(), parts.next()) else {
                    continue; // a project path, file or plugin id, not a coordinate
                };
                if group.is_empty() || artifact.is_empty() {
                    continue;
                }
                let version = parts.next().map(|v| v.split('@').next().unwrap_or(v));
                let artifact = artifact.split('@').next().unwrap_or(artifact);
                gradle_coordinate(found, &variables, group, artifact, version);
            }
        }
    }
    Ok(())
}

/// One Gradle coordinate, with `$var` / `${var}` resolved from the script's variables.
fn gradle_coordinate(
    found: &mut Found,
    variables: &HashMap<String, String>,
    group: &str,
    artifact: &str,
    version: Option<&str>,
) {
    let raw_name = format!("{group}:{artifact}");
    let name = match interpolate(&raw_name, variables) {
        Ok(name) => name,
        Err(variable) => {
            found.unresolved(
                raw_name,
                version.unwrap_or("(none)"),
                undefined_variable(&variable),
            );
            return;
        }
    };
    let Some(raw) = version.filter(|v| !v.is_empty()) else {
        found.unresolved(
            name,
            "(none)",
            "no version: it is set by a platform, BOM or plugin",
        );
        return;
    };
    match interpolate(raw, variables) {
        Ok(version) if version.contains('+') || version.starts_with("latest.") => {
            found.unresolved(name, version, "a dynamic version, not an exact version")
        }
        Ok(version) => maven_version(found, &name, &version),
        Err(variable) => found.unresolved(name, raw, undefined_variable(&variable)),
    }
}

/// The reason given for a variable the script does not define.
fn undefined_variable(variable: &str) -> String {
    format!("variable {variable} is not defined in this file (gradle.properties or a plugin?)")
}

/// `text` with `$name` and `${expr}` replaced from `variables` (`project.`, `rootProject.`, `ext.`
/// and `extra` qualifiers are looked through), or the first reference nothing defines.
fn interpolate(text: &str, variables: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (expr, next) = match after.strip_prefix('{') {
            Some(inner) => {
                let close = inner.find('}').ok_or_else(|| after.to_string())?;
                (&inner[..close], &inner[close + 1..])
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        let key = variable_key(expr);
        let value = variables.get(key).ok_or_else(|| expr.to_string())?;
        out.push_str(value);
        rest = next;
    }
    out.push_str(rest);
    Ok(out)
}

/// The variable an expression names, through `project.`, `rootProject.`, `ext.`, `extra["..."]` and
/// `property("...")`.
fn variable_key(expr: &str) -> &str {
    let mut key = expr.trim();
    loop {
        let stripped = ["project.", "rootProject.", "ext.", "extra."]
            .iter()
            .find_map(|prefix| key.strip_prefix(prefix));
        match stripped {
            Some(rest) => key = rest,
            None => break,
        }
    }
    for (open, close) in [("extra[", "]"), ("property(", ")"), ("findProperty(", ")")] {
        if let Some(inner) = key.strip_prefix(open).and_then(|k| k.strip_suffix(close)) {
            return inner.trim_matches(['"', '\'']);
        }
    }
    key
}

/// A variable definition: `def v = '1'`, `val v = "1"`, `ext.v = '1'`, `v = '1'` in an `ext {}`
/// block, `extra["v"] = "1"`, `val v by extra("1")`, `set("v", "1")`.
fn variable(line: &str) -> Option<(String, String)> {
    let mut line = line.trim();
    if let Some(args) = line.strip_prefix("set(").and_then(|l| l.strip_suffix(')')) {
        let (key, value) = args.split_once(',')?;
        return Some((
            quoted(key.trim())?.to_string(),
            quoted(value.trim())?.to_string(),
        ));
    }
    if let Some((lhs, rhs)) = line.split_once(" by extra(") {
        let name = lhs.trim().strip_prefix("val ")?.trim();
        return Some((
            name.to_string(),
            quoted(rhs.strip_suffix(')')?.trim())?.to_string(),
        ));
    }
    for prefix in ["def ", "val ", "var ", "const val "] {
        if let Some(rest) = line.strip_prefix(prefix) {
            line = rest.trim_start();
        }
    }
    let (lhs, rhs) = line.split_once('=')?;
    let value = quoted(rhs.trim())?;
    let lhs = lhs.trim();
    let lhs = lhs.split_once(':').map_or(lhs, |(name, _type)| name.trim());
    let name = variable_key(lhs);
    let simple = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    simple.then(|| (name.to_string(), value.to_string()))
}

/// The content of a whole-string literal `'x'` or `"x"`.
fn quoted(text: &str) -> Option<&str> {
    ['\'', '"'].into_iter().find_map(|q| {
        let inner = text.strip_prefix(q)?.strip_suffix(q)?;
        (!inner.contains(q)).then_some(inner)
    })
}

/// The value of `key: 'x'` (Groovy) or `key = "x"` (Kotlin) in a map-notation argument list; an
/// unquoted value is a variable reference, returned as `${name}` for [`interpolate`]. Only keys
/// outside string literals count.
fn map_entry(args: &str, key: &str) -> Option<String> {
    let mut quote = None;
    for (at, c) in args.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, _) if args[at..].starts_with(key) => {
                let before_ok = args[..at]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
                let after = args[at + key.len()..].trim_start();
                if let (true, Some(value)) = (before_ok, after.strip_prefix([':', '='])) {
                    return map_value(value.trim_start());
                }
            }
            _ => {}
        }
    }
    None
}

/// A map-notation value: a quoted string, or a variable name as `${name}`.
fn map_value(value: &str) -> Option<String> {
    if let Some(q) = value.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let inner = &value[1..];
        return inner.find(q).map(|end| inner[..end].to_string());
    }
    let end = value
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(value.len());
    (end > 0).then(|| format!("${{{}}}", &value[..end]))
}

/// The text before a trailing configuration closure (`{ exclude ... }`) outside string literals.
fn before_closure(text: &str) -> &str {
    let mut quote = None;
    for (at, c) in text.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '{') => return &text[..at],
            _ => {}
        }
    }
    text
}

/// The string literals of an argument list, in order; `${...}` templates inside double quotes may
/// hold quotes of their own (`"${property("v")}"`).
fn string_literals(text: &str) -> Result<Vec<&str>, String> {
    let mut literals = Vec::new();
    let mut open: Option<(char, usize)> = None;
    let mut template_depth = 0usize;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match open {
            None if c == '\'' || c == '"' => open = Some((c, at + 1)),
            Some(('"', _)) if c == '$' && chars.peek().is_some_and(|(_, next)| *next == '{') => {
                chars.next();
                template_depth += 1;
            }
            Some(_) if template_depth > 0 => match c {
                '{' => template_depth += 1,
                '}' => template_depth -= 1,
                _ => {}
            },
            Some((q, start)) if c == q => {
                literals.push(&text[start..at]);
                open = None;
            }
            _ => {}
        }
    }
    match open {
        Some(_) => Err("unterminated string literal".to_string()),
        None => Ok(literals),
    }
}

/// The script's lines without comments (`//` outside strings, `/* ... */`), trimmed, numbered.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut in_block = false;
    for (index, raw) in text.lines().enumerate() {
        let mut code = String::new();
        let mut quote = None;
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            if in_block {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    in_block = false;
                }
                continue;
            }
            match (quote, c) {
                (None, '/') if chars.peek() == Some(&'/') => break,
                (None, '/') if chars.peek() == Some(&'*') => {
                    chars.next();
                    in_block = true;
                    continue;
                }
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                _ => {}
            }
            code.push(c);
        }
        let code = code.trim();
        if !code.is_empty() {
            lines.push((index + 1, code.to_string()));
        }
    }
    lines
}
