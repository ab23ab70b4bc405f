//! `arca storage status|migrate`: where the node keeps its chunks, and moving its local chunks
//! into the S3-compatible bucket it was started with.

use std::time::Duration;

use anyhow::{Result, bail};
use arca_client::StorageStatus;
use clap::Subcommand;

use super::Context;
use super::output::{Row, bytes, emit};

/// `arca storage` subcommands.
#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Where the node keeps its chunks, and how a move into its bucket goes (admin)
    Status,
    /// Move the node's local chunks into the bucket it was started with (`--storage`), while it
    /// serves; verified chunk by chunk, resumed after a crash (admin)
    Migrate {
        /// The bucket: `s3://<bucket>/<prefix>`, as the node was started with
        #[arg(long, value_name = "s3://BUCKET/PREFIX")]
        to: String,
        /// Wait until every local chunk has moved
        #[arg(long)]
        wait: bool,
    },
}

impl StorageCommand {
    /// Runs the subcommand.
    pub async fn run(self, context: &Context) -> Result<()> {
        match self {
            StorageCommand::Status => emit(context.format, &context.client.storage_status().await?),
            StorageCommand::Migrate { to, wait } => {
                let mut status = context.client.migrate_storage(&to).await?;
                while wait && !settled(&status)? {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    status = context.client.storage_status().await?;
                }
                emit(context.format, &status)
            }
        }
    }
}

/// True once the move has nothing left to do; an error when it stopped on one.
fn settled(status: &StorageStatus) -> Result<bool> {
    let Some(migration) = &status.migration else {
        return Ok(true);
    };
    match migration.state.as_str() {
        "finished" => Ok(true),
        "failed" => bail!(
            "the move stopped: {} (ask again to resume)",
            migration.error.as_deref().unwrap_or("unknown error")
        ),
        _ => Ok(false),
    }
}

impl Row for StorageStatus {
    const HEADERS: &'static [&'static str] = &[
        "BACKEND",
        "MIGRATION",
        "PREFIXES DONE",
        "CHUNKS MOVED",
        "BYTES MOVED",
        "CORRUPT LEFT",
    ];

    fn cells(&self) -> Vec<String> {
        let Some(migration) = &self.migration else {
            return vec![
                self.backend.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ];
        };
        vec![
            self.backend.clone(),
            migration.state.clone(),
            format!("{}/256", migration.prefixes_done),
            migration.moved_chunks.to_string(),
            bytes(migration.moved_bytes),
            migration.corrupt_chunks.to_string(),
        ]
    }
}
