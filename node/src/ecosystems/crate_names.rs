//! Crate names as crates.io compares them: letter case and `-` against `_` do not tell two crates
//! apart.

/// The one spelling all the spellings of a crate's name share: lower case, `_` as `-`.
pub fn canonical(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}
