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

fn main() -> anyhow::Result<()> {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

/// glibc gives threads malloc arenas of their own, up to eight per core; the node's blocking
/// threads (metadata applies, chunk writes) each fill one and keep its fragments, which in a long
/// run costs more resident memory than the caches it is configured with. Two arenas keep memory in
/// step with what is in use (measured with `arca-bench scale`: 205 MiB against 145 MiB at 150,000
/// versions).
///
/// A fixed mmap threshold of 1 MiB: glibc otherwise raises the threshold to the size of the
/// largest block freed (up to 32 MiB), after which blocks that size (an argon2 run's 19 MiB, an
/// 8 MiB chunk buffer) come from the arenas and stay resident when freed. Measured with 240 wrong
/// passwords from 64 parallel clients: peak 1.89 GB and 3.7 GB resident afterwards with the
/// dynamic threshold, 125 MB peak and 47 MB afterwards with this one. Called before any thread
/// starts.
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator settings; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Open files (sockets, chunk files, the metadata store) the node asks for at start: the soft limit
/// is raised this far, or to the hard limit if that is lower. Below [`FEW_OPEN_FILES`] it warns: a
/// busy node would refuse connections (the systemd units set `LimitNOFILE=65536`).
const WANTED_OPEN_FILES: u64 = 65_536;
/// The open-file limit under which the node warns at start.
const FEW_OPEN_FILES: u64 = 4_096;

/// Raises the soft open-file limit towards [`WANTED_OPEN_FILES`] and logs where it stands.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct passed to them.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "reading the open-file limit");
            return;
        }
        let wanted = WANTED_OPEN_FILES.min(limit.rlim_max);
        if limit.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = wanted;
            }
        }
        limit.rlim_cur
    };
    if soft < FEW_OPEN_FILES {
        tracing::warn!(
            open_files = soft,
            hard_limit = limit.rlim_max,
            "the open-file limit is low: under load connections will be refused; raise it \
             (LimitNOFILE=65536 in the systemd unit, ulimit -n)"
        );
    } else {
        tracing::info!(open_files = soft, "open-file limit");
    }
}

async fn run() -> anyhow::Result<()> {
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
    raise_open_file_limit();
    let node = arca_node::start(config)
        .await
        .context("starting the node")?;
    let failure = tokio::select! {
        () = shutdown_signal() => None,
        reason = node.failed() => Some(reason),
    };
    match &failure {
        None => tracing::info!("shutting down"),
        Some(reason) => tracing::error!(%reason, "the metadata store stopped; shutting down"),
    }
    let stopped = node.shutdown().await;
    if let Some(reason) = failure {
        // Exits non-zero so that a supervisor (systemd, Kubernetes) starts the node again, which
        // opens the store afresh.
        anyhow::bail!("the metadata store stopped ({reason}); start the node again");
    }
    stopped?;
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
