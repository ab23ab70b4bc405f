//! `arca-node`: runs one Arca node. With no flags it serves HTTP on 127.0.0.1:7070 (and the inter-node
//! port on 127.0.0.1:7071) and keeps its state in `./arca-data`: a cluster of one.

use std::path::PathBuf;

use anyhow::Context;
use arca_node::config::{Config, Overrides};
use clap::Parser;

/// Runs an Arca node.
#[derive(Debug, Parser)]
#[command(name = "arca-node", version, about)]
struct Args {
    #[command(flatten)]
    overrides: Overrides,
    /// TOML configuration file (ARCA_* environment variables and flags override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .init();
    let args = Args::parse();
    let config = Config::load(
        args.config.as_deref(),
        |name| std::env::var(name).ok(),
        args.overrides,
    )?;
    let node = arca_node::start(config)
        .await
        .context("starting the node")?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    node.shutdown().await?;
    Ok(())
}

async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
