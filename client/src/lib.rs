//! Typed client of an Arca node's HTTP API.
//!
//! [`Client`] holds the server URL and token; its methods map one-to-one onto the routes of
//! `docs/api.md` and speak the JSON types of [`arca_protocol::api`]. Generic-registry files stream in
//! both directions through [`Client::push_generic`] and [`Client::pull_generic`]. Every failure is a
//! [`ClientError`].

mod api;
mod client;
mod error;
mod generic;

pub use arca_protocol::api::UploadedFile;
pub use client::Client;
pub use error::ClientError;
pub use generic::{CHECKSUM_HEADER, GenericFile, Progress, sha256_file};

#[cfg(test)]
mod tests;
