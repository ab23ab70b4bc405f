//! `arca-node`: runs one Arca node. With no flags it serves HTTP on 127.0.0.1:7070 and keeps its state
//! in `./arca-data`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use arca_node::config::{Config, Overrides};
use clap::Parser;

/// Runs an Arca node.
#[derive(Debug, Parser)]
#[command(name = "arca-node", version, about)]
struct Args {
    /// Address to serve HTTP on [default: 127.0.0.1:7070; env ARCA_HTTP].
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Directory for all state [default: ./arca-data; env ARCA_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
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
        Overrides {
            http: args.http,
            data_dir: args.data_dir,
        },
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
