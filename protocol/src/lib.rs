//! Arca's shared vocabulary.
//!
//! Everything that more than one crate must agree on lives here and nowhere else: validated names, the
//! digests that identify blobs and chunks, the metadata model (registries, packages, versions, files,
//! tokens), the Raft [`Command`]s that are the only way metadata changes, and the JSON types of the
//! management API. This crate does no I/O.

pub mod api;
pub mod command;
pub mod digest;
pub mod model;
pub mod names;

pub use command::{Command, CommandError, CommandOutcome, MetadataTarget, Overwrite};
pub use digest::{ChunkId, DigestParseError, Sha256};
pub use model::{
    BlobRef, ChunkRef, FileEntry, ManifestInfo, Package, PackageType, Registry, Role, Token,
    Version,
};
pub use names::NameError;
