//! The `metadata set|get|delete` command shared by registries and artifacts: generic over the flags that
//! name the target, plus the parsing of `--metadata "k:v,k2:v2"`.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use arca_protocol::MetadataTarget;
use arca_protocol::api::MetadataBody;
use clap::{Args, Subcommand};

use super::Context;
use super::output::{Tabular, emit, table};

/// `metadata` subcommands; `T` holds the flags that name the registry, package or version.
#[derive(Debug, Subcommand)]
pub enum MetadataCommand<T: Args> {
    /// Set keys (other keys are kept)
    Set {
        #[command(flatten)]
        target: T,
        /// Keys and values: "key:value,key2:value2"
        #[arg(long, value_name = "K:V,...")]
        metadata: String,
    },
    /// Show all keys
    Get {
        #[command(flatten)]
        target: T,
    },
    /// Delete keys ("key,key2"; values after ':' are ignored), or all keys without --metadata
    Delete {
        #[command(flatten)]
        target: T,
        /// Keys to delete: "key,key2"
        #[arg(long, value_name = "K,...")]
        metadata: Option<String>,
    },
}

impl<T: Args + Into<MetadataTarget>> MetadataCommand<T> {
    /// Runs the command against the target `T` names and prints the metadata afterwards.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        let body = match self {
            MetadataCommand::Set { target, metadata } => {
                client
                    .set_metadata(&target.into(), parse_entries(&metadata)?)
                    .await?
            }
            MetadataCommand::Get { target } => client.get_metadata(&target.into()).await?,
            MetadataCommand::Delete { target, metadata } => {
                let keys = match metadata {
                    Some(metadata) => parse_keys(&metadata)?,
                    None => Vec::new(),
                };
                client.delete_metadata(&target.into(), keys).await?
            }
        };
        emit(context.format, &body)
    }
}

impl Tabular for MetadataBody {
    fn table(&self) -> String {
        table(
            &["KEY", "VALUE"],
            self.metadata
                .iter()
                .map(|(key, value)| vec![key.clone(), value.clone()]),
        )
    }
}

/// Splits one `key[:value]` entry on its first ':', trimming both sides; the key must not be empty.
fn split_entry(entry: &str) -> Result<(&str, Option<&str>)> {
    let (key, value) = match entry.split_once(':') {
        Some((key, value)) => (key.trim(), Some(value.trim())),
        None => (entry.trim(), None),
    };
    if key.is_empty() {
        bail!("invalid metadata entry {entry:?}: the key is empty");
    }
    Ok((key, value))
}

/// `"k:v,k2:v2"` -> `{k: v, k2: v2}`; values may contain ':'.
fn parse_entries(text: &str) -> Result<BTreeMap<String, String>> {
    text.split(',')
        .map(|entry| match split_entry(entry)? {
            (key, Some(value)) => Ok((key.to_string(), value.to_string())),
            (_, None) => bail!("invalid metadata entry {entry:?}: expected KEY:VALUE"),
        })
        .collect()
}

/// `"k,k2"` or `"k:v,k2:v2"` -> `[k, k2]`.
fn parse_keys(text: &str) -> Result<Vec<String>> {
    text.split(',')
        .map(|entry| split_entry(entry).map(|(key, _)| key.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_split_on_the_first_colon() {
        let entries = parse_entries("team:infra, url:https://x.example:8443/a").expect("valid");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries["team"], "infra");
        assert_eq!(entries["url"], "https://x.example:8443/a");
        assert_eq!(parse_entries("empty:").expect("valid")["empty"], "");
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in [":v", "k:v,", "k", " :v", ""] {
            assert!(parse_entries(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn keys_ignore_values() {
        assert_eq!(parse_keys("a,b:1").expect("valid"), ["a", "b"]);
        assert!(parse_keys("a,,b").is_err());
    }
}
