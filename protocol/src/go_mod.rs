//! What the registry and `arca artifact push go` agree on about Go modules: the path a `go.mod`'s
//! `module` directive declares (what an upload is checked against and named after), and the case
//! encoding of module paths and versions in module proxy URLs.

/// The module path a `go.mod` declares (`module example.com/x`, quoted or not, comments aside).
pub fn module_path(go_mod: &str) -> Option<String> {
    for line in go_mod.lines() {
        let line = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        let Some(rest) = line.trim().strip_prefix("module") else {
            continue;
        };
        if !rest.starts_with([' ', '\t']) {
            continue;
        }
        let path = rest.trim();
        let unquoted = if let Some(quoted) = path.strip_prefix('"') {
            quoted.strip_suffix('"')?.replace("\\\"", "\"")
        } else if let Some(raw) = path.strip_prefix('`') {
            raw.strip_suffix('`')?.to_string()
        } else {
            path.to_string()
        };
        return Some(unquoted);
    }
    None
}

/// The module proxy URL spelling of a module path or version: every upper-case letter as `!` and
/// the letter in lower case (`github.com/Azure` is `github.com/!azure`).
pub fn case_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_directive_is_found_past_comments_and_quotes() {
        assert_eq!(
            module_path("// greeting\nmodule example.com/hi // the module\n\ngo 1.21\n").as_deref(),
            Some("example.com/hi")
        );
        assert_eq!(
            module_path("module \"example.com/q\"\n").as_deref(),
            Some("example.com/q")
        );
        assert_eq!(module_path("modules x\n"), None);
        assert_eq!(module_path("go 1.21\n"), None);
    }
}
