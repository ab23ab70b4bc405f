//! `arca-node`: runs one Arca node. With no flags it serves HTTP on 127.0.0.1:7070 (and the inter-node
//! port on 127.0.0.1:7071) and keeps its state in `./arca-data`: a cluster of one. When its metadata
//! store fails (a disk filled to the last byte), it answers 503 and starts itself again.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use arca_node::config::{Config, Overrides};
use clap::Parser;

/// Runs an Arca node.
#[derive(Debug, Parser)]
#[command(name = "arca-node", version, about, args_override_self = true)]
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
        // A log that cannot be written (its disk is full) must not stop the node: the default
        // reports the failure with `eprintln!`, which panics when stderr fails too.
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .init();
    let args = Args::parse();
    let mut config = Config::load(
        args.config.as_deref(),
        |name| std::env::var(name).ok(),
        args.overrides,
    )?;
    raise_open_file_limit();
    let restarted_after = std::env::var(RESTART_PAUSE_VARIABLE)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    let started = Instant::now();
    let node = match (arca_node::start(config.clone()).await, restarted_after) {
        (Ok(node), _) => node,
        // A node starting itself again keeps trying (the disk may still be full).
        (Err(error), Some(pause)) => {
            return restart(&config, error.to_string(), next_pause(pause)).await;
        }
        (Err(error), None) => return Err(error).context("starting the node"),
    };
    // A restart binds the addresses this start did, a port asked for as 0 included.
    config.http = node.http_addr;
    config.quic = node.quic_addr;
    let failure = tokio::select! {
        () = shutdown_signal() => None,
        reason = node.failed() => Some(reason),
    };
    let stopped = node.shutdown().await;
    let Some(reason) = failure else {
        tracing::info!("shut down");
        return Ok(stopped?);
    };
    if let Err(error) = stopped {
        tracing::warn!(%error, "stopping the failed node");
    }
    tracing::error!(%reason, "the metadata store stopped; the node starts itself again");
    let pause = match restarted_after {
        Some(pause) if started.elapsed() < STABLE_RUN => next_pause(pause),
        _ => FIRST_RESTART_PAUSE,
    };
    restart(&config, reason, pause).await
}

/// Set in the environment of a node that started itself again: the pause it waited, in ms.
const RESTART_PAUSE_VARIABLE: &str = "ARCA_RESTART_PAUSE_MS";
/// The first wait before a failed node starts again.
const FIRST_RESTART_PAUSE: Duration = Duration::from_secs(1);
/// The longest: each failure soon after a restart doubles the wait up to this.
const LONGEST_RESTART_PAUSE: Duration = Duration::from_secs(30);
/// A node that ran this long before failing waits only the first pause.
const STABLE_RUN: Duration = Duration::from_secs(60);

fn next_pause(pause: Duration) -> Duration {
    (pause * 2).clamp(FIRST_RESTART_PAUSE, LONGEST_RESTART_PAUSE)
}

/// Starts the node again, as a fresh process (the same binary and arguments, on the addresses
/// `config` holds), after `pause`; meanwhile its address answers 503, so health checks see it down
/// and why. Returns early only on a shutdown signal. A fresh process, rather than a node rebuilt in
/// this one, is certain to hold nothing of the failed node (its sockets, its open store).
async fn restart(config: &Config, reason: String, pause: Duration) -> anyhow::Result<()> {
    let stand_in = arca_node::Unavailable::serve(config, reason)
        .await
        .context("answering on the node's address while it restarts")?;
    let signalled = tokio::select! {
        () = shutdown_signal() => true,
        () = tokio::time::sleep(pause) => false,
    };
    stand_in.stop().await;
    if signalled {
        tracing::info!("shut down while restarting");
        return Ok(());
    }
    tracing::info!(after = ?pause, "starting the node again");
    let error = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .arg("--http")
        .arg(config.http.to_string())
        .arg("--quic")
        .arg(config.quic.to_string())
        .env(RESTART_PAUSE_VARIABLE, pause.as_millis().to_string())
        .exec();
    Err(error).context("starting the node again")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A restart appends `--http` and `--quic` to the arguments it was given: the later ones count,
    /// and repeatable flags keep every value.
    #[test]
    fn later_addresses_override_earlier_ones() {
        let args = Args::try_parse_from([
            "arca-node",
            "--http",
            "127.0.0.1:0",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "10.1.0.0/16",
            "--http",
            "127.0.0.1:7443",
        ])
        .expect("parses");
        assert_eq!(
            args.overrides.http,
            Some("127.0.0.1:7443".parse().expect("address"))
        );
        assert_eq!(args.overrides.trusted_proxies.len(), 2);
    }
}
