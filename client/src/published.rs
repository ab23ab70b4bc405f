//! [`Published`]: what an ecosystem push (npm, Python, Maven) stored, for the CLI to print.

use serde::Serialize;

/// One package version a push published, and the files it stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// `npm`, `python` or `maven`.
    pub ecosystem: &'static str,
    /// Registry name.
    pub registry: String,
    /// The package as the registry names it (npm name, Python project, Maven `group:artifact`).
    pub package: String,
    /// The version.
    pub version: String,
    /// The files uploaded, in order.
    pub files: Vec<String>,
    /// Tags set on the version (npm dist-tags).
    pub tags: Vec<String>,
}
