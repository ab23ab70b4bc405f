//! Formats of what the metadata writes, and what a node does with data of another format.
//!
//! - The data directory: `<data>/meta/` holds `raft.redb` (the Raft log, vote and snapshot
//!   pointer, [`LOG_FORMAT`]), `state.redb` (the state tables, [`STATE_FORMAT`]) and snapshot
//!   files ([`super::snapshot::SNAPSHOT_FORMAT`]). Each database records its format when created.
//! - Log entries: a command travels through Raft as a [`LogCommand`], its format beside its
//!   bincode bytes, so a node meets an entry of a newer format with a clear refusal (at apply)
//!   instead of a decoding failure of the whole message, and a later build decodes every older
//!   format it knows.
//!
//! On open, a database of an older format is migrated forward; one of a newer format, or a data
//! directory from before formats were recorded (a `meta.redb` beside `meta/`), is refused with an
//! error naming both formats and what to do. Nothing here ever starts a node on empty metadata
//! when data of another format is present.

use arca_protocol::Command;
use serde::{Deserialize, Serialize};

use super::tables::{RecordError, decode, encode};

/// The format of the Raft log database and of the commands in it that this build writes. Format 2
/// added [`Command::Fenced`] and [`Command::AdvanceGcEpoch`], format 3
/// [`Command::SetRegistrySettings`], format 4 [`Command::SetSigningKey`], format 5 the webhook
/// commands ([`Command::CreateWebhook`] and the three after it), format 6
/// [`Command::RecordUsage`], format 7 [`Command::UpdateRegistry`] and [`Command::SettleAuditEvent`]; entries of formats 1 to 6
/// decode as they are (commands were only added, at the end).
pub const LOG_FORMAT: u32 = 7;

pub use super::tables::STATE_FORMAT;

/// The file name of the Raft log database in `<data>/meta/`.
pub const LOG_FILE: &str = "raft.redb";
/// The file name of the state database in `<data>/meta/`.
pub const STATE_FILE: &str = "state.redb";
/// Where a snapshot being installed is built before it replaces [`STATE_FILE`].
pub const INSTALLING_FILE: &str = "state.redb.installing";
/// The metadata file of builds from before data formats were recorded, in `<data>/`.
pub const UNVERSIONED_FILE: &str = "meta.redb";

/// Why metadata of some format cannot be used by this build.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The data was written by a newer build.
    #[error(
        "{what} is of format {found}, newer than this build reads (up to format {supported}): \
         run a newer arca-node on this data directory"
    )]
    Newer {
        /// What was read.
        what: String,
        /// Its format.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// The data directory predates recorded formats.
    #[error(
        "{path} holds metadata written by an Arca build from before data formats were recorded \
         (format 0); this build reads format {supported} and cannot convert it: start this node \
         on a new data directory (or keep running the build that wrote it)"
    )]
    Unversioned {
        /// The old file.
        path: String,
        /// The format this build reads.
        supported: u32,
    },
    /// A record could not be decoded.
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// A command as a Raft log entry carries it: its format and its encoded bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCommand {
    /// The format the bytes are in.
    pub format: u32,
    /// The bincode encoding of the [`Command`] in that format.
    pub bytes: Vec<u8>,
}

impl LogCommand {
    /// `command` in this build's format.
    pub fn encode(command: &Command) -> Result<LogCommand, RecordError> {
        Ok(LogCommand {
            format: LOG_FORMAT,
            bytes: encode(command)?,
        })
    }

    /// The command, read from its format.
    pub fn decode(&self) -> Result<Command, FormatError> {
        if self.format > LOG_FORMAT {
            return Err(FormatError::Newer {
                what: "a Raft log entry".into(),
                found: self.format,
                supported: LOG_FORMAT,
            });
        }
        Ok(decode(&self.bytes)?)
    }
}

/// Checks the format a database recorded: `None` (a new database) and this build's format pass;
/// a newer one is refused. (Format 1 is the first; a later build adds its migrations here.)
pub fn check(what: &str, found: Option<u32>, supported: u32) -> Result<(), FormatError> {
    match found {
        Some(found) if found > supported => Err(FormatError::Newer {
            what: what.to_string(),
            found,
            supported,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_a_newer_format_are_refused_by_name() {
        let command = Command::ForgetNode { node_id: 3 };
        let entry = LogCommand::encode(&command).expect("encodes");
        assert_eq!(entry.decode().expect("decodes"), command);
        let newer = LogCommand {
            format: LOG_FORMAT + 1,
            ..entry
        };
        let refusal = newer
            .decode()
            .expect_err("a newer format is refused")
            .to_string();
        assert!(
            refusal.contains(&format!("format {}", LOG_FORMAT + 1)),
            "{refusal}"
        );
        assert!(
            refusal.contains(&format!("up to format {LOG_FORMAT}")),
            "{refusal}"
        );
        assert!(check("x", Some(LOG_FORMAT + 1), LOG_FORMAT).is_err());
        assert!(check("x", Some(LOG_FORMAT), LOG_FORMAT).is_ok());
        assert!(check("x", None, LOG_FORMAT).is_ok());
    }
}
