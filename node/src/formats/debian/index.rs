//! The `Packages` indexes of Debian registries: which index a build is in and what it puts there,
//! for the incremental indexes of [`crate::frontend::package_index`].
//!
//! Storage mapping (see the module above): a version's attribute `deb.control/<arch>` holds the
//! package's paragraph as served (with `Filename`, `Size` and hashes), and each attribute
//! `deb.dist/<suite>/<component>/<arch>` puts that build into an index.

use arca_protocol::Version;

/// The prefix of the attribute holding a build's paragraph (`deb.control/<arch>`).
pub const CONTROL: &str = "deb.control/";
/// The prefix of the attributes placing a build in an index (`deb.dist/<suite>/<component>/<arch>`).
pub const DIST: &str = "deb.dist/";

/// One index: a suite, a component and an architecture (`all` for architecture-independent
/// builds, which are served in every architecture's `Packages`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexKey {
    pub suite: String,
    pub component: String,
    pub architecture: String,
}

impl IndexKey {
    /// The key an attribute `deb.dist/<suite>/<component>/<arch>` names.
    pub fn of_attribute(attribute: &str) -> Option<IndexKey> {
        let mut parts = attribute.strip_prefix(DIST)?.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(suite), Some(component), Some(architecture), None) => Some(IndexKey {
                suite: suite.to_string(),
                component: component.to_string(),
                architecture: architecture.to_string(),
            }),
            _ => None,
        }
    }

    /// The attribute placing a build in this index.
    pub fn attribute(&self) -> String {
        format!(
            "{DIST}{}/{}/{}",
            self.suite, self.component, self.architecture
        )
    }
}

/// What a version contributes to the `Packages` indexes: for each `deb.dist/...` attribute, its
/// build's paragraph under that index.
pub fn entries(version: &Version) -> Vec<(IndexKey, String)> {
    version
        .attributes
        .keys()
        .filter_map(|attribute| {
            let key = IndexKey::of_attribute(attribute)?;
            let paragraph = version
                .attributes
                .get(&format!("{CONTROL}{}", key.architecture))?;
            Some((key, format!("{paragraph}\n")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_round_trip_through_attributes() {
        let key = IndexKey::of_attribute("deb.dist/stable/main/amd64").expect("a key");
        assert_eq!(key.attribute(), "deb.dist/stable/main/amd64");
        assert_eq!(IndexKey::of_attribute("deb.dist/stable/main"), None);
        assert_eq!(IndexKey::of_attribute("deb.control/amd64"), None);
    }
}
