//! Typed client of an Arca node's HTTP API.
//!
//! [`Client`] holds the server URL and token; its methods map one-to-one onto the routes of
//! `docs/api.md` and speak the JSON types of [`arca_protocol::api`]. Generic-registry files stream in
//! both directions through [`Client::push_generic`] and [`Client::pull_generic`]. Every failure is a
//! [`ClientError`]. Packages of the npm, PyPI and Maven front-ends are published the way those
//! ecosystems' own tools do it: [`Client::push_npm`], [`Client::push_python`] and
//! [`Client::push_maven`], each answering what it [`Published`].

mod api;
mod archive;
mod cargo;
mod cleanup;
mod client;
mod composer;
mod conda;
mod error;
mod firewall;
mod firewall_admin;
mod gc;
mod generic;
mod go;
mod helm;
mod insights;
pub mod lockfiles;
mod maven;
mod npm;
mod nuget;
mod os_packages;
mod published;
mod pypi;
mod rubygems;
mod search;
mod storage;
mod webhooks;

pub use arca_protocol::api::UploadedFile;
pub use cleanup::{
    CleanupPolicy, CleanupQuery, CleanupReport, CleanupRule, PlannedDeletion, RefusedDeletion,
};
pub use client::Client;
pub use error::ClientError;
pub use firewall::{
    FirewallCheck, FirewallCheckRequest, FirewallCheckResponse, FirewallReason, FirewallStatus,
    FirewallVerdict, PackageCoordinate,
};
pub use firewall_admin::{
    AdvisoryDbStatus, AdvisoryImport, AdvisoryImportReport, AgeRule, DenyPattern, FirewallAction,
    FirewallExplanation, FirewallPolicy, LicenseRule, OsvAdvisory, QuarantineRecord,
    QuarantineRequest, Severity, VersionPattern, VulnerabilityRule,
};
pub use gc::{GcReport, GcRequest};
pub use generic::{CHECKSUM_HEADER, GenericFile, Progress, sha256_file};
pub use insights::{
    ConsumerUsage, DayUsage, IdleVersion, IdleVersions, InsightsQuery, NamedUsage, PackageInsights,
    PackageUsage, TopPackages, UsageFigures, UsageOverview, VersionUsage,
};
pub use maven::{MavenCoordinates, xml_escape};
pub use published::Published;
pub use search::{SearchHit, SearchQuery, SearchResults};
pub use storage::{MigrateRequest, MigrationStatus, StorageStatus};
pub use webhooks::{DeliveriesQuery, WebhookDelivery, WebhookInfo, WebhookRequest, WebhookUpdate};

#[cfg(test)]
mod tests;
