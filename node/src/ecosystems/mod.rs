//! Rules of package ecosystems that the core (the firewall, cleanup) needs as much as the
//! front-ends do: how names normalise and versions order. Pure functions; they import nothing of the
//! node.

pub mod crate_names;
pub mod debian_version;
pub mod gem_version;
pub mod helm_oci;
pub mod maven_version;
pub mod nuget_version;
pub mod pypi_names;
pub mod rpm_version;
