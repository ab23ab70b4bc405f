//! The `scale` benchmark: what metadata costs as a registry grows to millions of versions.
//!
//! The node runs as a child process (the release `arca-node` beside this binary, or `--node-bin`) on
//! 127.0.0.1, so that its own memory and CPU can be read from `/proc`. Small files, each different,
//! are pushed to a generic registry in phases, and after each phase (pushes paused) the node is
//! measured: pushes/s and push latency, resident and peak memory, the data directory's size, a first
//! and a deep listing page, and the CPU the phase cost. Then: its CPU while idle; push latency while
//! metadata snapshots are built against without; restarts (after SIGTERM and after SIGKILL) to the
//! first GET; one npm package of many versions, published and its abbreviated packument read; and,
//! last, a second node joining and catching up (last because from then on the first node is no longer
//! a cluster of one).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use arca_protocol::api::{ClusterStatus, JoinTokenInfo};
use bytes::Bytes;
use reqwest::{StatusCode, Url};
use tokio::task::JoinSet;

use crate::archives;
use crate::common::{self, expect_status};
use crate::data;
use crate::packages::{self, Auth, Item, Target};
use crate::peer::free_port;
use crate::report::{
    CatchUp, DeepPage, GcPass, Latency, NpmPackument, PushWindow, Restart, ScalePhase, ScaleReport,
    ScaleSetup, SnapshotEffect, UiPageTime, best_and_median,
};

/// The generic registry the versions are pushed to.
pub(crate) const GENERIC: &str = "scale";
/// The npm registry of the packument measurement.
const NPM: &str = "npm-scale";
/// Its one package.
const NPM_PACKAGE: &str = "scale-pkg";
/// Concurrent publishers of the npm package's versions.
const NPM_PUBLISHERS: usize = 16;
/// Concurrent readers of its packument.
const NPM_READERS: usize = 8;
/// Media type of the abbreviated packument, sent as `Accept`.
const ABBREVIATED: &str = "application/vnd.npm.install-v1+json";
/// Publishes of one npm version answered 409 before the run fails.
const CONFLICT_RETRIES: u32 = 1000;
/// Packages per listing page.
const PAGE_SIZE: u64 = 50;
/// The page timed deep in the listing.
const DEEP_PAGE: u64 = 20;
/// GETs of each timed listing page (their median is reported).
const PAGE_GETS: usize = 5;
/// The window after the last phase in which the node's idle CPU is measured.
const IDLE: Duration = Duration::from_secs(10);
/// How often memory is sampled, and the second node's progress polled, during its catch-up.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Pause between polls for a process's exit and for the first GET after a restart.
const POLL: Duration = Duration::from_millis(5);
/// How long a node may take to bind its HTTP port.
const START_LIMIT: Duration = Duration::from_secs(300);
/// How long a node may take to exit after a signal.
const STOP_LIMIT: Duration = Duration::from_secs(120);
/// How long a restarted node may take to serve the last pushed file.
const RESTART_LIMIT: Duration = Duration::from_secs(600);
/// How long the second node may take to catch up.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(1800);
/// How long, once the second node has caught up by one sign (lag 0, or serving the last file), the
/// other is waited for.
const SECOND_SIGN_LIMIT: Duration = Duration::from_secs(10);
/// The node's log file, in its data directory.
const LOG: &str = "node.log";
/// Lines of the node's log quoted when it fails.
const LOG_TAIL_LINES: usize = 40;
/// The node's own default log filter, set so that the benchmark's environment cannot change it.
const LOG_FILTER: &str = "info,openraft=warn";
/// Key of the pseudo-random bytes that fill the pushed files.
const FILLER: &str = "arca-bench 2026 scale file filler";
const MIB: f64 = 1024.0 * 1024.0;

/// Options of `arca-bench scale`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Versions pushed in the phases, one file each.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    versions: u64,
    /// Phases the pushes are split into; the node is measured after each.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    phases: u64,
    /// Concurrent clients pushing.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    clients: u64,
    /// Bytes of each file (its version's number, then pseudo-random bytes).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(8..=1 << 30))]
    size: u64,
    /// Versions of each package.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    versions_per_package: u64,
    /// Versions of the npm package whose abbreviated packument is read.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    npm_versions: u64,
    /// Seconds the packument is read for.
    #[arg(long, default_value_t = 10.0, value_parser = common::positive)]
    npm_seconds: f64,
    /// Seconds of pushes without, and then with, snapshots being built.
    #[arg(long, default_value_t = 10.0, value_parser = common::positive)]
    snapshot_seconds: f64,
    /// Skip the npm package.
    #[arg(long)]
    skip_npm: bool,
    /// Skip the second node's catch-up.
    #[arg(long)]
    skip_learner: bool,
    /// Skip the restarts.
    #[arg(long)]
    skip_restart: bool,
    /// The `arca-node` binary to run (default: the one beside this binary).
    #[arg(long, value_name = "PATH")]
    node_bin: Option<PathBuf>,
    /// Directory under which a temporary directory for the nodes' data is made (and removed at the
    /// end). Defaults to the current directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark and prints its report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = node_binary(args.node_bin.as_deref())?;
    let (temp, root) = common::temp_root(&args.dir)?;
    // Every node is stopped when `measure` returns, before their data is removed.
    let measured = measure(&args, &bin, &root).await;
    let removed = temp
        .close()
        .with_context(|| format!("removing {}", root.display()));
    let report = measured?;
    removed?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.tail());
    }
    ensure!(
        report.errors.is_empty(),
        "{} step(s) failed; the report's errors say why",
        report.errors.len()
    );
    Ok(())
}

/// The `arca-node` binary to run: `given`, or the one beside this binary; canonical, and checked
/// to exist.
pub fn node_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let bin = match given {
        Some(bin) => bin.to_owned(),
        None => std::env::current_exe()
            .context("finding this executable")?
            .with_file_name("arca-node"),
    };
    ensure!(
        bin.is_file(),
        "{} not found: build it with `cargo build --release -p arca-node`, or pass --node-bin",
        bin.display()
    );
    std::fs::canonicalize(&bin).with_context(|| format!("resolving {}", bin.display()))
}

/// How to read the numbers; printed under the table and carried in the JSON.
fn notes() -> Vec<String> {
    [
        "the node is a child process on 127.0.0.1 sharing the machine with this benchmark's clients; \
         RSS and peak are its /proc/<pid>/status VmRSS and VmHWM (peak since the process started), CPU \
         is utime + stime of /proc/<pid>/stat (every thread)",
        "push: PUT /generic/scale/pkg-<i / per package>/1.0.<i % per package>/f.bin, answered 201; the \
         file is the number i and pseudo-random bytes, so no two are alike; each client takes the next \
         number when its push is answered, so pushes to one package overlap",
        "data MiB: the sizes of the files under the node's data directory (its log left out); page ms: \
         median of 5 GETs of /api/v1/artifacts?registry=scale&page_size=50; deep ms: median of 5 GETs \
         of page 20 (deep#), reached by following next_cursor from the first page (page=20 when the \
         node gives no cursor), or of the last page when there are fewer; CPU s: the node's CPU during \
         the phase's pushes, CPU us/p: per push",
        "snapshots: the first window asks for none (the node may still build one on its own as its \
         log grows); in the second, POST /api/v1/cluster/snapshot is sent again as soon as each \
         answers, so a build is under way for the whole window; the versions pushed in both windows \
         stay in the registry",
        "restart: the same command line (data directory, ports); from the spawn to the first GET of \
         the last pushed file answered 200 with its bytes, polled every 5 ms",
        "npm: one package, its versions published by 16 clients at once (a 409 is sent again); readers \
         GET the abbreviated packument (Accept: application/vnd.npm.install-v1+json, \
         Accept-Encoding: gzip, as npm sends) back to back",
        "second node: joins last (node 2, site-2, with a join token), since from then on the first \
         node is no longer a cluster of one; caught up when node 1's GET /api/v1/cluster shows it with \
         lag 0 (when it shows no lag: when node 2 serves the last pushed file); memory of both sampled \
         every 100 ms",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Everything, on a node started here: pushes in phases, then idle CPU, snapshots, restarts, npm and
/// the second node.
async fn measure(args: &Args, bin: &Path, root: &Path) -> anyhow::Result<ScaleReport> {
    let clients = usize::try_from(args.clients).context("--clients is too large")?;
    let size = usize::try_from(args.size).context("--size is too large")?;
    let phases = args.phases.min(args.versions);
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(2 * clients.max(NPM_PUBLISHERS))
        .build()
        .context("building the HTTP client")?;
    // Polls of a node that may be starting or stopping: a request must not hang.
    let poll_client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;

    let (mut node, token) =
        NodeProcess::start(bin, &root.join("node-1"), "site-1", &[], Vec::new()).await?;
    common::create_registry(&client, &node.url, &token, GENERIC, "GENERIC").await?;
    let setup = ScaleSetup {
        benchmark: "scale",
        node_bin: bin.display().to_string(),
        versions: args.versions,
        versions_per_package: args.versions_per_package,
        size: args.size,
        clients,
        phases,
        page_size: PAGE_SIZE,
        dir: root.display().to_string(),
    };
    // Phase rows are the table's body, printed as each phase ends; with --json they are progress.
    let show = |text: &str| {
        if args.json {
            eprint!("{text}");
        } else {
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
    };
    show(&setup.head());

    let pusher = Pusher {
        client: client.clone(),
        url: node.url.as_str().into(),
        token: token.as_str().into(),
        size,
        per_package: args.versions_per_package,
    };
    let never = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut stored = 0;
    for phase in 1..=phases {
        let end = u64::try_from(u128::from(args.versions) * u128::from(phase) / u128::from(phases))
            .context("too many versions")?;
        let before = node.usage()?;
        let pushed = pusher.run(clients, stored, end, None, &never).await?;
        let after = node.usage()?;
        let data_dir = node.data_dir.clone();
        let data_bytes = common::blocking(move || data_size(&data_dir)).await?;
        let (first_page_ms, deep_page) = listing(&client, &node.url, &token).await?;
        let pushes = pushed.end - stored;
        let cpu_seconds = after.cpu_seconds - before.cpu_seconds;
        let row = ScalePhase {
            phase,
            versions: pushed.end,
            pushes,
            seconds: pushed.seconds,
            pushes_per_s: pushes as f64 / pushed.seconds.max(1e-9),
            latency: Latency::from_micros(pushed.micros).context("a phase without pushes")?,
            rss_mib: after.rss as f64 / MIB,
            peak_rss_mib: after.peak_rss as f64 / MIB,
            data_dir_mib: data_bytes as f64 / MIB,
            first_page_ms,
            deep_page,
            cpu_seconds,
            cpu_us_per_push: cpu_seconds * 1e6 / pushes.max(1) as f64,
            elapsed_s: started.elapsed().as_secs_f64(),
        };
        show(&row.row());
        rows.push(row);
        stored = pushed.end;
    }

    eprintln!("ui: timing the web UI's pages ...");
    let ui_pages = ui_pages(
        &client,
        &node.url,
        &token,
        stored,
        args.versions_per_package,
    )
    .await?;

    eprintln!("idle: measuring the node's CPU over {IDLE:?} ...");
    let before = node.usage()?;
    let idle_started = Instant::now();
    tokio::time::sleep(IDLE).await;
    let after = node.usage()?;
    let idle_seconds = idle_started.elapsed().as_secs_f64();
    let idle_cpu_percent = (after.cpu_seconds - before.cpu_seconds) / idle_seconds * 100.0;

    // One garbage collection over every chunk file: nothing is old enough to go, so this times
    // the mark (with --size above 4 KiB, every file has a chunk file of its own).
    eprintln!("gc: one garbage collection over every chunk ...");
    let gc_started = Instant::now();
    let gc_response = client
        .post(format!("{}/api/v1/gc", node.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"dry_run": false, "grace_seconds": 3600}))
        .send()
        .await?;
    let gc_report: arca_protocol::api::GcReport =
        expect_status(gc_response, StatusCode::OK, "POST /api/v1/gc")
            .await?
            .json()
            .await?;
    let gc = GcPass {
        seconds: gc_started.elapsed().as_secs_f64(),
        scanned: gc_report.scanned,
        referenced: gc_report.referenced,
    };

    let (snapshot, stored) =
        snapshot_effect(&pusher, clients, args.snapshot_seconds, stored).await?;
    let last = LastFile {
        path: pusher.path(stored - 1),
        bytes: pusher.body(stored - 1),
    };

    let restarts = if args.skip_restart {
        None
    } else {
        let mut restarts = Vec::new();
        for signal in [Signal::Term, Signal::Kill] {
            restarts.push(restart(&mut node, &poll_client, &token, &last, signal).await?);
        }
        wait_for_leader(&poll_client, &node, &token).await?;
        Some(restarts)
    };

    // The last two steps leave the first node as it was: when one fails, the report still has
    // everything else, and says why.
    let mut skipped = Vec::new();
    let mut errors = Vec::new();
    if args.skip_restart {
        skipped.push("restart");
    }
    let npm = if args.skip_npm {
        skipped.push("npm");
        None
    } else {
        npm(
            &client,
            &node.url,
            &token,
            args.npm_versions,
            args.npm_seconds,
        )
        .await
        .map_err(|error| errors.push(format!("npm: {error:#}")))
        .ok()
    };

    let catch_up = if args.skip_learner {
        skipped.push("second node");
        None
    } else {
        catch_up(&mut node, &client, &poll_client, &token, bin, root, &last)
            .await
            .map_err(|error| errors.push(format!("second node: {error:#}")))
            .ok()
    };

    Ok(ScaleReport {
        setup,
        by_phase: rows,
        idle_cpu_percent,
        idle_seconds,
        gc,
        snapshot,
        last_file: last.path,
        versions_stored: stored,
        restarts,
        ui_pages,
        npm,
        catch_up,
        skipped,
        errors,
        notes: notes(),
    })
}

/// How a node is stopped.
#[derive(Debug, Clone, Copy)]
pub enum Signal {
    /// A clean stop: the node shuts down and exits.
    Term,
    /// A crash.
    Kill,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Kill => "SIGKILL",
        }
    }
}

/// An `arca-node` child process on 127.0.0.1, with its command line kept for restarts (same data
/// directory, same ports). Killed (SIGKILL) and reaped when dropped, so that no node outlives the
/// benchmark, however it ends.
pub struct NodeProcess {
    /// `node <id>`, for messages.
    name: String,
    bin: PathBuf,
    data_dir: PathBuf,
    args: Vec<String>,
    /// Variables set in its environment besides this process's.
    env: Vec<(String, String)>,
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its inter-node (QUIC) address.
    quic: String,
}

impl NodeProcess {
    /// Starts node `id` of `site` on `data_dir` with HTTP and QUIC on free ports of 127.0.0.1 and
    /// `extra` arguments, without waiting for it.
    pub fn spawn(
        bin: &Path,
        data_dir: &Path,
        id: u64,
        site: &str,
        extra: &[String],
    ) -> anyhow::Result<NodeProcess> {
        Self::spawn_with_env(bin, data_dir, id, site, extra, Vec::new())
    }

    /// Spawns a node ([`NodeProcess::spawn_with_env`]), waits until it serves, and reads the
    /// admin token it wrote. The process is killed if this fails.
    pub async fn start(
        bin: &Path,
        data_dir: &Path,
        site: &str,
        extra: &[String],
        env: Vec<(String, String)>,
    ) -> anyhow::Result<(NodeProcess, String)> {
        let mut node = Self::spawn_with_env(bin, data_dir, 1, site, extra, env)?;
        node.ready().await?;
        let token = node.admin_token()?;
        Ok((node, token))
    }

    /// [`NodeProcess::spawn`], with `env` set in the node's environment (the object store's
    /// credentials, say).
    pub fn spawn_with_env(
        bin: &Path,
        data_dir: &Path,
        id: u64,
        site: &str,
        extra: &[String],
        env: Vec<(String, String)>,
    ) -> anyhow::Result<NodeProcess> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let http = format!("127.0.0.1:{}", free_port()?);
        let quic = format!("127.0.0.1:{}", free_udp_port()?);
        let mut args: Vec<String> = [
            "--data-dir",
            &data_dir.display().to_string(),
            "--node-id",
            &id.to_string(),
            "--site",
            site,
            "--http",
            &http,
            "--quic",
            &quic,
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend_from_slice(extra);
        let child = launch(bin, data_dir, &args, &env)?;
        Ok(NodeProcess {
            name: format!("node {id}"),
            bin: bin.to_owned(),
            data_dir: data_dir.to_owned(),
            args,
            env,
            child,
            url: format!("http://{http}"),
            quic,
        })
    }

    /// Waits until the node has bound its HTTP port (and so written `http.addr`).
    pub async fn ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let addr_file = self.data_dir.join("http.addr");
        loop {
            if let Ok(text) = tokio::fs::read_to_string(&addr_file).await
                && !text.trim().is_empty()
            {
                let url = format!("http://{}", text.trim());
                ensure!(
                    url == self.url,
                    "{} serves {url}, not {} as it was told",
                    self.name,
                    self.url
                );
                return Ok(());
            }
            self.check_running()?;
            if started.elapsed() > START_LIMIT {
                bail!(
                    "{} did not start within {START_LIMIT:?}; the end of its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The admin token the node wrote on its first start.
    pub fn admin_token(&self) -> anyhow::Result<String> {
        let path = self.data_dir.join("admin.token");
        let token = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(token.trim().to_owned())
    }

    /// Fails, quoting the end of its log, when the process has exited.
    fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); the end of its log:\n{}",
                self.name,
                self.log_tail()
            );
        }
        Ok(())
    }

    /// The last lines of the node's log.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.data_dir.join(LOG)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// The process's memory and CPU time.
    fn usage(&self) -> anyhow::Result<Usage> {
        usage(self.child.id()).with_context(|| format!("reading /proc for {}", self.name))
    }

    /// Sends `signal`, waits for the process to exit, and returns how long that took.
    pub async fn stop(&mut self, signal: Signal) -> anyhow::Result<Duration> {
        let started = Instant::now();
        match signal {
            Signal::Term => {
                let status = Command::new("kill")
                    .args(["-TERM", &self.child.id().to_string()])
                    .status()
                    .context("running kill -TERM")?;
                ensure!(status.success(), "kill -TERM {} failed", self.child.id());
            }
            Signal::Kill => self.child.kill().context("killing the node")?,
        }
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > STOP_LIMIT {
                bail!(
                    "{} did not exit within {STOP_LIMIT:?} of {}",
                    self.name,
                    signal.name()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts the process again with the same command line, without waiting for it.
    fn respawn(&mut self) -> anyhow::Result<()> {
        self.child = launch(&self.bin, &self.data_dir, &self.args, &self.env)?;
        Ok(())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `bin` with `args` and `env`, its output appended to its log in `data_dir`; `http.addr` is
/// removed first, so that its reappearance says this process is serving.
fn launch(
    bin: &Path,
    data_dir: &Path,
    args: &[String],
    env: &[(String, String)],
) -> anyhow::Result<Child> {
    let addr_file = data_dir.join("http.addr");
    match std::fs::remove_file(&addr_file) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(error).with_context(|| format!("removing {}", addr_file.display()));
        }
        _ => {}
    }
    let log_path = data_dir.join(LOG);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .env("RUST_LOG", LOG_FILTER)
        // An error's message, not pages of backtrace or colour codes, is what the end of the log
        // must show.
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// A free UDP port of 127.0.0.1 (free when asked; the node binds it a moment later).
fn free_udp_port() -> anyhow::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .context("finding a free UDP port")?
        .port())
}

/// A process's memory and CPU time.
#[derive(Debug, Clone, Copy)]
struct Usage {
    /// Resident bytes (`VmRSS`).
    rss: u64,
    /// Peak resident bytes since the process started (`VmHWM`).
    peak_rss: u64,
    /// User and system CPU seconds of all its threads.
    cpu_seconds: f64,
}

/// Reads `/proc/<pid>/status` and `/proc/<pid>/stat`.
fn usage(pid: u32) -> anyhow::Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let bytes = |field: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .with_context(|| format!("no {field} in /proc/{pid}/status"))
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields are counted after the command name's closing parenthesis (the name may hold spaces):
    // the state (field 3) comes first, utime and stime (fields 14 and 15) are the 12th and 13th.
    let (_, after_name) = stat
        .rsplit_once(')')
        .with_context(|| format!("no command name in /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .with_context(|| format!("no CPU times in /proc/{pid}/stat"))
    };
    Ok(Usage {
        rss: bytes("VmRSS:")?,
        peak_rss: bytes("VmHWM:")?,
        cpu_seconds: (ticks(11)? + ticks(12)?) as f64 / ticks_per_second(),
    })
}

/// Clock ticks per second of the times in `/proc` (`getconf CLK_TCK`; Linux's usual 100 if that
/// cannot be run).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

/// Bytes of the files under `dir` (symbolic links not followed), its node's log left out. Files and
/// directories that vanish during the walk (the node keeps writing) are skipped.
fn data_size(dir: &Path) -> anyhow::Result<u64> {
    let log = dir.join(LOG);
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("listing {}", current.display()));
            }
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", current.display()))?;
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => {
                    return Err(error)
                        .with_context(|| format!("reading {}", entry.path().display()));
                }
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() && entry.path() != log {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// Pushes version files to the generic registry by number: version `i` is
/// `pkg-<i / per_package>/1.0.<i % per_package>/f.bin`, `size` bytes: `i`, then pseudo-random bytes.
#[derive(Clone)]
pub(crate) struct Pusher {
    pub(crate) client: reqwest::Client,
    /// The node, `http://host:port`.
    pub(crate) url: Arc<str>,
    pub(crate) token: Arc<str>,
    pub(crate) size: usize,
    pub(crate) per_package: u64,
}

/// What a run of pushes did.
pub(crate) struct Pushed {
    /// Every number below this one (from the run's first) was pushed.
    pub(crate) end: u64,
    /// Seconds from the first push to the last answer.
    pub(crate) seconds: f64,
    /// Each push's latency, in microseconds.
    micros: Vec<u32>,
}

impl Pushed {
    /// The run as a window of pushes that began at `from`.
    fn window(self, from: u64) -> PushWindow {
        let pushes = self.end - from;
        PushWindow {
            pushes,
            seconds: self.seconds,
            pushes_per_s: pushes as f64 / self.seconds.max(1e-9),
            latency: Latency::from_micros(self.micros),
        }
    }
}

impl Pusher {
    /// The URL path of version `i`'s file.
    fn path(&self, i: u64) -> String {
        format!(
            "/generic/{GENERIC}/pkg-{}/1.0.{}/f.bin",
            i / self.per_package,
            i % self.per_package
        )
    }

    /// The bytes of version `i`'s file.
    fn body(&self, i: u64) -> Bytes {
        let mut bytes = vec![0u8; self.size];
        let (number, filler) = bytes.split_at_mut(8);
        number.copy_from_slice(&i.to_le_bytes());
        data::pseudo_random(FILLER, &i.to_le_bytes()).fill(filler);
        Bytes::from(bytes)
    }

    /// PUTs version `i`'s file; 201 expected.
    async fn push(&self, i: u64) -> anyhow::Result<()> {
        let url = format!("{}{}", self.url, self.path(i));
        let response = self
            .client
            .put(&url)
            .bearer_auth(&self.token)
            .body(self.body(i))
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        let response = expect_status(response, StatusCode::CREATED, &format!("PUT {url}")).await?;
        // Read to the end, so that the connection goes back to the pool.
        response
            .bytes()
            .await
            .with_context(|| format!("PUT {url}"))?;
        Ok(())
    }

    /// Pushes versions `from`, `from + 1`, ... with `clients` concurrent clients, each taking the
    /// next number when its push is answered, until `end`, or `deadline` when there is one, or until
    /// `stop` is set. Fails on the first push not answered 201.
    pub(crate) async fn run(
        &self,
        clients: usize,
        from: u64,
        end: u64,
        deadline: Option<Instant>,
        stop: &Arc<AtomicBool>,
    ) -> anyhow::Result<Pushed> {
        let next = Arc::new(AtomicU64::new(from));
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for _ in 0..clients {
            let (pusher, next, stop) = (self.clone(), next.clone(), stop.clone());
            tasks.spawn(async move {
                let mut micros = Vec::new();
                while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        break;
                    }
                    let sent = Instant::now();
                    pusher.push(i).await?;
                    micros.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                }
                anyhow::Ok(micros)
            });
        }
        let mut micros = Vec::new();
        while let Some(done) = tasks.join_next().await {
            micros.append(&mut done.context("push task panicked")??);
        }
        Ok(Pushed {
            end: next.load(Ordering::Relaxed).min(end),
            seconds: started.elapsed().as_secs_f64(),
            micros,
        })
    }
}

/// Times the listing of the generic registry: the first page, and page [`DEEP_PAGE`] (or the last,
/// when there are fewer) reached by cursor, or by number when the node gives no cursor. Returns the
/// first page's median milliseconds and the deep page.
async fn listing(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<(f64, DeepPage)> {
    let mut first = Url::parse(&format!("{url}/api/v1/artifacts"))?;
    first
        .query_pairs_mut()
        .append_pair("registry", GENERIC)
        .append_pair("page_size", &PAGE_SIZE.to_string());
    let (first_ms, first_page) = timed_page(client, &first, token).await?;
    let (deep, page, by) = if first_page.get("next_cursor").is_none() {
        let mut deep = first.clone();
        deep.query_pairs_mut()
            .append_pair("page", &DEEP_PAGE.to_string());
        (deep, DEEP_PAGE, "page")
    } else {
        let (mut deep, mut page, mut body) = (first.clone(), 1, first_page);
        while page < DEEP_PAGE {
            let Some(cursor) = body["next_cursor"].as_str() else {
                break;
            };
            let mut next = first.clone();
            next.query_pairs_mut().append_pair("cursor", cursor);
            body = get_page(client, &next, token).await?.1;
            deep = next;
            page += 1;
        }
        (deep, page, "cursor")
    };
    let (ms, body) = timed_page(client, &deep, token).await?;
    let items = body["items"].as_array().map_or(0, Vec::len) as u64;
    Ok((
        first_ms,
        DeepPage {
            page,
            by,
            items,
            ms,
        },
    ))
}

/// GETs a listing page [`PAGE_GETS`] times; returns the median milliseconds and the page.
async fn timed_page(
    client: &reqwest::Client,
    url: &Url,
    token: &str,
) -> anyhow::Result<(f64, serde_json::Value)> {
    let mut times = Vec::with_capacity(PAGE_GETS);
    let mut page = serde_json::Value::Null;
    for _ in 0..PAGE_GETS {
        let (ms, body) = get_page(client, url, token).await?;
        times.push(ms);
        page = body;
    }
    let (_, median) = best_and_median(&times).context("no GETs")?;
    Ok((median, page))
}

/// GETs a listing page; returns the milliseconds until its last byte, and the page.
async fn get_page(
    client: &reqwest::Client,
    url: &Url,
    token: &str,
) -> anyhow::Result<(f64, serde_json::Value)> {
    let (ms, body) = timed_get(client, url.as_str(), token).await?;
    let page = serde_json::from_slice(&body).with_context(|| format!("GET {url}: not JSON"))?;
    Ok((ms, page))
}

/// GETs `url` (200 expected); returns the milliseconds until its last byte, and the body.
async fn timed_get(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<(f64, Bytes)> {
    let what = format!("GET {url}");
    let started = Instant::now();
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| what.clone())?;
    let body = expect_status(response, StatusCode::OK, &what)
        .await?
        .bytes()
        .await
        .with_context(|| what.clone())?;
    Ok((started.elapsed().as_secs_f64() * 1000.0, body))
}

/// Times the web UI's pages over the generic registry holding `versions` versions (`per_package`
/// to a package): the registry list, the registry's first and a middle page of packages, a
/// package, a version, and a search; each GET [`PAGE_GETS`] times.
async fn ui_pages(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    versions: u64,
    per_package: u64,
) -> anyhow::Result<Vec<UiPageTime>> {
    let middle = (versions / per_package.max(1) / 2).to_string();
    let package = format!("pkg-{middle}");
    let pages = [
        ("registries", "/ui/".to_string()),
        ("registry, first page", format!("/ui/{GENERIC}")),
        (
            "registry, middle page",
            format!("/ui/{GENERIC}?after={package}"),
        ),
        ("package (its versions)", format!("/ui/{GENERIC}/{package}")),
        ("version", format!("/ui/{GENERIC}/{package}/1.0.0")),
        ("search", format!("/ui/-/search?q={package}")),
    ];
    let mut timed = Vec::with_capacity(pages.len());
    for (page, path) in pages {
        let mut times = Vec::with_capacity(PAGE_GETS);
        let mut bytes = 0;
        for _ in 0..PAGE_GETS {
            let (ms, body) = timed_get(client, &format!("{url}{path}"), token).await?;
            times.push(ms);
            bytes = body.len() as u64;
        }
        let (max_ms, median_ms) = best_and_median(&times).context("no GETs")?;
        timed.push(UiPageTime {
            page,
            path,
            median_ms,
            max_ms,
            bytes,
        });
    }
    Ok(timed)
}

/// Pushes for `seconds` with no snapshot asked for, then for as long while snapshots are built back
/// to back, numbering from `from`; returns the comparison and the end of the numbers pushed.
async fn snapshot_effect(
    pusher: &Pusher,
    clients: usize,
    seconds: f64,
    from: u64,
) -> anyhow::Result<(SnapshotEffect, u64)> {
    let window = Duration::from_secs_f64(seconds);
    eprintln!("snapshots: pushing for {window:?} with none asked for ...");
    let never = Arc::new(AtomicBool::new(false));
    let plain = pusher
        .run(
            clients,
            from,
            u64::MAX,
            Some(Instant::now() + window),
            &never,
        )
        .await?;
    let (during_from, plain) = (plain.end, plain.window(from));

    eprintln!("snapshots: pushing for {window:?} while snapshots are built ...");
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + window;
    let (builds, pushed) = tokio::join!(
        build_snapshots(pusher, deadline, &stop),
        pusher.run(clients, during_from, u64::MAX, Some(deadline), &stop)
    );
    let (builds, pushed) = (builds?, pushed?);
    let end = pushed.end;
    let during = builds.available.then(|| pushed.window(during_from));
    let p99 = |window: &PushWindow| window.latency.as_ref().map(|l| l.p99_ms);
    let p99_ratio = match (&during, builds.ms.is_empty()) {
        (Some(during), false) => p99(during)
            .zip(p99(&plain))
            .map(|(with, without)| with / without),
        _ => None,
    };
    Ok((
        SnapshotEffect {
            seconds,
            plain,
            available: builds.available,
            during,
            builds_ms: builds.ms,
            error: builds.error,
            p99_ratio,
        },
        end,
    ))
}

/// What asking for snapshots back to back gave.
struct Builds {
    /// False when the node answered 404 or 405.
    available: bool,
    /// Milliseconds of each request answered 200.
    ms: Vec<f64>,
    /// The first other answer.
    error: Option<String>,
}

/// Asks the node for a snapshot, again as soon as it answers, until `deadline`. When the node has no
/// such endpoint (404 or 405), sets `stop` (ending the pushes) and says so.
async fn build_snapshots(
    pusher: &Pusher,
    deadline: Instant,
    stop: &AtomicBool,
) -> anyhow::Result<Builds> {
    let url = format!("{}/api/v1/cluster/snapshot", pusher.url);
    let mut builds = Builds {
        available: true,
        ms: Vec::new(),
        error: None,
    };
    while Instant::now() < deadline {
        let started = Instant::now();
        let response = pusher
            .client
            .post(&url)
            .bearer_auth(&pusher.token)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status == StatusCode::OK {
            builds.ms.push(started.elapsed().as_secs_f64() * 1000.0);
        } else if matches!(
            status,
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        ) {
            builds.available = false;
            stop.store(true, Ordering::Relaxed);
            break;
        } else {
            builds.error = Some(format!("POST {url}: {status}: {body}"));
            break;
        }
    }
    Ok(builds)
}

/// The last pushed file: where it is and its bytes.
struct LastFile {
    path: String,
    bytes: Bytes,
}

/// Whether the node at `url` answers a GET of `file` with 200 and its bytes.
async fn serves(client: &reqwest::Client, url: &str, token: &str, file: &LastFile) -> bool {
    match client
        .get(format!("{url}{}", file.path))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(response) if response.status() == StatusCode::OK => response
            .bytes()
            .await
            .is_ok_and(|bytes| bytes == file.bytes),
        _ => false,
    }
}

/// Stops the node with `signal`, starts it again on the same data directory and ports, and times
/// the spawn to the first GET of `last` answered with its bytes.
async fn restart(
    node: &mut NodeProcess,
    client: &reqwest::Client,
    token: &str,
    last: &LastFile,
    signal: Signal,
) -> anyhow::Result<Restart> {
    eprintln!(
        "restart: stopping the node with {} and starting it again ...",
        signal.name()
    );
    let stopped = node.stop(signal).await?;
    let spawned = Instant::now();
    node.respawn()?;
    while !serves(client, &node.url, token, last).await {
        node.check_running()?;
        if spawned.elapsed() > RESTART_LIMIT {
            bail!(
                "{} did not serve {} within {RESTART_LIMIT:?} of its restart",
                node.name,
                last.path
            );
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(Restart {
        signal: signal.name(),
        stop_ms: stopped.as_secs_f64() * 1000.0,
        first_get_ms: spawned.elapsed().as_secs_f64() * 1000.0,
    })
}

/// The cluster status as the node at `url` answers it.
async fn cluster_status(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<ClusterStatus> {
    let url = format!("{url}/api/v1/cluster");
    let what = format!("GET {url}");
    let response = client
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| what.clone())?;
    expect_status(response, StatusCode::OK, &what)
        .await?
        .json()
        .await
        .with_context(|| what.clone())
}

/// Waits until the node knows a leader (after a restart, before anything is written).
async fn wait_for_leader(
    client: &reqwest::Client,
    node: &NodeProcess,
    token: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let status = cluster_status(client, &node.url, token).await;
        if status.as_ref().is_ok_and(|s| s.leader.is_some()) {
            return Ok(());
        }
        if started.elapsed() > START_LIMIT {
            bail!(
                "{} knows no leader after {START_LIMIT:?}: {status:?}",
                node.name
            );
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// Creates the npm registry, publishes [`NPM_PACKAGE`] with `versions` versions, and GETs its
/// abbreviated packument with [`NPM_READERS`] readers for `seconds`.
async fn npm(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    versions: u64,
    seconds: f64,
) -> anyhow::Result<NpmPackument> {
    common::create_registry(client, url, token, NPM, "NPM").await?;
    let base = Url::parse(&format!("{url}/npm/{NPM}/"))?;
    let target = Target::new("arca", base, Auth::Bearer(token.to_owned()), NPM_PUBLISHERS)?;
    eprintln!(
        "npm: publishing {versions} versions of {NPM_PACKAGE} with {NPM_PUBLISHERS} clients ..."
    );
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..NPM_PUBLISHERS {
        let (target, next, conflicts) = (target.clone(), next.clone(), conflicts.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= versions {
                    return anyhow::Ok(());
                }
                let version = format!("1.0.{i}");
                let document = Bytes::from(archives::npm_version(NPM_PACKAGE, &version)?.publish);
                publish(&target, &version, document, &conflicts).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("publish task panicked")??;
    }
    let publish_seconds = started.elapsed().as_secs_f64();

    let packument = target.url(NPM_PACKAGE)?;
    let (content_type, body) = target.get(&packument, Some(ABBREVIATED)).await?;
    let document: serde_json::Value =
        serde_json::from_slice(&body).with_context(|| format!("GET {packument}: not JSON"))?;
    let listed = document["versions"].as_object().map_or(0, |v| v.len()) as u64;
    ensure!(
        listed == versions,
        "GET {packument}: the abbreviated packument lists {listed} versions, {versions} were published"
    );
    eprintln!("npm: GET the abbreviated packument with {NPM_READERS} readers for {seconds} s ...");
    // The readers ask for gzip, as npm does (and are timed to the last compressed byte).
    let mut gzip = target.clone();
    gzip.client = reqwest::Client::builder()
        .pool_max_idle_per_host(2 * NPM_READERS)
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::ACCEPT_ENCODING,
            reqwest::header::HeaderValue::from_static("gzip"),
        )]))
        .build()?;
    let (_, compressed) = gzip.get(&packument, Some(ABBREVIATED)).await?;
    let items = Arc::new(vec![Item {
        url: packument,
        len: compressed.len() as u64,
    }]);
    let read_started = Instant::now();
    let (micros, _) = packages::hammer(
        &gzip,
        &items,
        Some(ABBREVIATED),
        NPM_READERS,
        Duration::from_secs_f64(seconds),
        0,
    )
    .await?;
    let read_seconds = read_started.elapsed().as_secs_f64();
    Ok(NpmPackument {
        package: NPM_PACKAGE.to_owned(),
        versions,
        publish_seconds,
        publishers: NPM_PUBLISHERS,
        conflicts_retried: conflicts.load(Ordering::Relaxed),
        packument_bytes: body.len() as u64,
        content_type,
        readers: NPM_READERS,
        seconds: read_seconds,
        per_s: micros.len() as f64 / read_seconds,
        latency: Latency::from_micros(micros).context("no packument GET answered")?,
    })
}

/// Publishes one version of [`NPM_PACKAGE`], sending it again while the node answers 409.
async fn publish(
    target: &Target,
    version: &str,
    document: Bytes,
    conflicts: &AtomicU64,
) -> anyhow::Result<()> {
    for _ in 0..=CONFLICT_RETRIES {
        let (response, what) =
            packages::send_npm_publish(target, NPM_PACKAGE, version, document.clone()).await?;
        if response.status() != StatusCode::CONFLICT {
            expect_status(response, StatusCode::CREATED, &what).await?;
            return Ok(());
        }
        conflicts.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("publishing {NPM_PACKAGE}@{version}: still 409 after {CONFLICT_RETRIES} retries")
}

/// Starts node 2 at `site-2`, joining `node` with a join token, and times it until it has caught up,
/// sampling both nodes' memory.
async fn catch_up(
    node: &mut NodeProcess,
    client: &reqwest::Client,
    poll_client: &reqwest::Client,
    token: &str,
    bin: &Path,
    root: &Path,
    last: &LastFile,
) -> anyhow::Result<CatchUp> {
    let url = format!("{}/api/v1/cluster/join-tokens", node.url);
    let what = format!("POST {url}");
    let response = client
        .post(&url)
        .bearer_auth(token)
        .json(&serde_json::json!({ "ttl_seconds": 3600 }))
        .send()
        .await
        .with_context(|| what.clone())?;
    let join: JoinTokenInfo = expect_status(response, StatusCode::CREATED, &what)
        .await?
        .json()
        .await
        .with_context(|| what.clone())?;

    eprintln!("second node: joining and catching up ...");
    let started = Instant::now();
    let mut second = NodeProcess::spawn(
        bin,
        &root.join("node-2"),
        2,
        "site-2",
        &[
            "--join".to_owned(),
            node.quic.clone(),
            "--join-token".to_owned(),
            join.token,
        ],
    )?;
    // Memory is sampled on its own clock, while the polls below wait for answers.
    let pids = (node.child.id(), second.child.id());
    let polled = AtomicBool::new(false);
    let sampled = async {
        let mut peaks = (0, 0);
        let mut interval = tokio::time::interval(SAMPLE_EVERY);
        while !polled.load(Ordering::Relaxed) {
            interval.tick().await;
            // A process that has exited is reported by the polls.
            if let Ok(first) = usage(pids.0) {
                peaks.0 = peaks.0.max(first.rss);
            }
            if let Ok(second) = usage(pids.1) {
                peaks.1 = peaks.1.max(second.rss);
            }
        }
        peaks
    };
    let caught_up = async {
        let caught_up = poll_catch_up(node, &mut second, poll_client, token, last, started).await;
        polled.store(true, Ordering::Relaxed);
        caught_up
    };
    let (peaks, caught_up) = tokio::join!(sampled, caught_up);
    let (lag_zero, readable) = caught_up?;
    let (seconds, by) = match (lag_zero, readable) {
        (Some(at), _) => (at, "lag 0"),
        (None, Some(at)) => (at, "GET at node 2"),
        (None, None) => bail!("node 2 caught up by no sign"),
    };
    let membership = cluster_status(client, &node.url, token)
        .await?
        .nodes
        .into_iter()
        .find(|n| n.id == 2)
        .map_or_else(|| "not a member".to_owned(), |n| n.membership);
    Ok(CatchUp {
        seconds: seconds.as_secs_f64(),
        by,
        lag_zero_s: lag_zero.map(|at| at.as_secs_f64()),
        readable_s: readable.map(|at| at.as_secs_f64()),
        membership,
        node1_peak_rss_mib: peaks.0 as f64 / MIB,
        node2_peak_rss_mib: peaks.1 as f64 / MIB,
        node2_hwm_mib: second.usage()?.peak_rss as f64 / MIB,
    })
}

/// Polls node 1's cluster status and GETs the last file at node 2 until node 2 has caught up:
/// lag 0 in the status, or, when the status shows no lag for it, serving the file. Once one sign
/// is there the other is waited for a while ([`SECOND_SIGN_LIMIT`]). Returns when each was seen,
/// from `started`.
async fn poll_catch_up(
    node: &mut NodeProcess,
    second: &mut NodeProcess,
    client: &reqwest::Client,
    token: &str,
    last: &LastFile,
    started: Instant,
) -> anyhow::Result<(Option<Duration>, Option<Duration>)> {
    let (mut lag_zero, mut readable, mut lag_shown) = (None, None, false);
    loop {
        node.check_running()?;
        second.check_running()?;
        if lag_zero.is_none()
            && let Ok(status) = cluster_status(client, &node.url, token).await
            && let Some(lag) = status.nodes.iter().find(|n| n.id == 2).and_then(|n| n.lag)
        {
            lag_shown = true;
            if lag == 0 {
                lag_zero = Some(started.elapsed());
            }
        }
        if readable.is_none() && serves(client, &second.url, token, last).await {
            readable = Some(started.elapsed());
        }
        let waited = |since: Duration| started.elapsed() > since + SECOND_SIGN_LIMIT;
        let done = match (lag_zero, readable) {
            (Some(_), Some(_)) => true,
            (Some(at), None) => waited(at),
            // While the status shows a lag, only lag 0 is caught up.
            (None, Some(at)) => !lag_shown && waited(at),
            (None, None) => false,
        };
        if done {
            return Ok((lag_zero, readable));
        }
        if started.elapsed() > CATCH_UP_LIMIT {
            bail!(
                "node 2 had not caught up after {CATCH_UP_LIMIT:?} (lag shown: {lag_shown}, last \
                 file served: {}); the end of its log:\n{}",
                readable.is_some(),
                second.log_tail()
            );
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_numbered_into_packages_and_all_differ() {
        let pusher = Pusher {
            client: reqwest::Client::new(),
            url: "http://127.0.0.1:1".into(),
            token: "t".into(),
            size: 1024,
            per_package: 100,
        };
        assert_eq!(pusher.path(0), "/generic/scale/pkg-0/1.0.0/f.bin");
        assert_eq!(pusher.path(12_345), "/generic/scale/pkg-123/1.0.45/f.bin");
        let (a, b) = (pusher.body(7), pusher.body(8));
        assert_eq!((a.len(), b.len()), (1024, 1024));
        assert_eq!(a[..8], 7u64.to_le_bytes());
        assert_ne!(a[8..], b[8..]);
        assert_eq!(pusher.body(7), a);
    }

    #[test]
    fn usage_of_this_process() -> anyhow::Result<()> {
        let mine = usage(std::process::id())?;
        assert!(mine.rss > 0 && mine.peak_rss >= mine.rss);
        assert!(mine.cpu_seconds >= 0.0);
        Ok(())
    }

    #[test]
    fn data_size_counts_files_but_not_the_log() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("sub"))?;
        std::fs::write(dir.path().join("sub/a"), [0u8; 100])?;
        std::fs::write(dir.path().join("b"), [0u8; 20])?;
        std::fs::write(dir.path().join(LOG), [0u8; 5000])?;
        assert_eq!(data_size(dir.path())?, 120);
        Ok(())
    }
}
