//! Arca's shared vocabulary.
//!
//! Everything that more than one crate must agree on lives here and nowhere else: validated names, the
//! digests that identify blobs and chunks, the metadata model (registries, packages, versions, files,
//! tokens), the Raft [`Command`]s that are the only way metadata changes, the messages nodes exchange, and
//! the JSON types of the management API. This crate does no I/O.

pub mod api;
pub mod client_config;
pub mod cluster;
pub mod command;
pub mod digest;
pub mod firewall;
pub mod go_mod;
pub mod identity;
pub mod model;
pub mod names;

pub use cluster::{NodeInfo, NodeRole, ReplicaSites, ReplicationMode, ReplicationPolicy};
pub use command::{
    Changed, ChunkFence, Command, CommandError, CommandOutcome, MetadataTarget, Overwrite,
};
pub use digest::{ChunkId, DigestParseError, Sha256};
pub use firewall::{FirewallReason, FirewallStatus, FirewallVerdict, PackageCoordinate};
pub use identity::{Grant, User, UserKind};
pub use model::{
    BlobRef, CachedDocument, ChunkRef, CleanupPolicy, CleanupRule, FileEntry, ManifestInfo,
    Package, PackageType, Registry, RegistryChanges, RegistryKind, RegistrySettings, Role,
    SigningKey, Token, Upstream, Version,
};
pub use names::NameError;
