//! PyPI project names as PEP 503 compares them.

/// The normalised form of a project name (PEP 503): lower case, every run of `-`, `_` and `.`
/// replaced by one `-`.
pub fn normalize_project(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    let mut in_separator_run = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator_run {
                normalized.push('-');
            }
            in_separator_run = true;
        } else {
            normalized.extend(c.to_lowercase());
            in_separator_run = false;
        }
    }
    normalized
}
