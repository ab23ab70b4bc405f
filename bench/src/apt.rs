//! The `apt-install` benchmark: the real apt-get fetching a real package and its dependencies
//! through a Debian registry of Arca, against the same `.deb`s in a reprepro repository served as
//! plain files.
//!
//! The dependency closure of `--package` (default `git`, about 50 packages on Debian 12:
//! `apt-cache depends --recurse` without recommends, suggests, conflicts, breaks, replaces and
//! enhances) is downloaded once with `apt-get download` from the machine's own apt sources into
//! `--cache` (kept between runs; at most `--max-packages`). Every `.deb` is pushed to a DEBIAN
//! registry of a release `arca-node` run as a child process on 127.0.0.1 (suite `stable`,
//! component `main`) and included into a reprepro repository signed with a throwaway key, whose
//! `dists/` and `pool/` are served from memory by a plain static server on 127.0.0.1. Then,
//! `--runs` (default 3) times, alternating, in a fresh throwaway apt root each (only the given
//! source, signature checking on with the repository's key as `signed-by`, Arca's token in an
//! `auth.conf`): `apt-get update`, then `apt-get install -y --download-only --no-install-recommends
//! PKG`, each timed from spawn to exit; the files fetched are counted:
//!
//! ```text
//! cargo build --release -p arca-node -p arca-client -p arca-bench && ./target/release/arca-bench apt-install
//! ```

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use bytes::Bytes;
use reqwest::Url;

use crate::common;
use crate::debian::{self, Deb, Reprepro, ms};
use crate::formats::serve_static;
use crate::packages::{Auth, Target};
use crate::report::{ComparisonReport, DebianFigure, Spread};
use crate::rpm::run_timed;
use crate::scale::{self, NodeProcess, Signal};

/// The Arca registry the packages are pushed to.
const REGISTRY: &str = "apt";

/// Options of `arca-bench apt-install`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package installed (with its dependencies).
    #[arg(long, default_value = "git")]
    package: String,
    /// Runs of each measurement, against each repository.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    runs: u64,
    /// Where the real `.deb`s are downloaded once and kept (default: `arca-bench-apt-cache` under
    /// `--dir`).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// The most packages the closure may have (they are downloaded from the machine's sources).
    #[arg(long, default_value_t = 60)]
    max_packages: usize,
    /// The reprepro program.
    #[arg(long, default_value = "reprepro")]
    reprepro: PathBuf,
    /// The `arca-node` binary to run (default: the one beside this binary).
    #[arg(long, value_name = "PATH")]
    node_bin: Option<PathBuf>,
    /// Directory under which a temporary directory for the node's data, the reprepro repository
    /// and the apt roots is made (and removed at the end). Defaults to the current directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark and prints its report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = scale::node_binary(args.node_bin.as_deref())?;
    let version = debian::reprepro_version(&args.reprepro)
        .context("reprepro is needed (apt-get install reprepro)")?;
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(|| args.dir.join("arca-bench-apt-cache"));
    let (package, cache_dir, max) = (args.package.clone(), cache.clone(), args.max_packages);
    let debs = common::blocking(move || fetch_closure(&package, &cache_dir, max)).await?;
    let (temp, root) = common::temp_root(&args.dir)?;
    let measured = measure(&args, &bin, &root, version, debs, &cache).await;
    let removed = temp
        .close()
        .with_context(|| format!("removing {}", root.display()));
    let report = measured?;
    removed?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// The dependency closure of `package` as apt-cache resolves it (real packages only).
fn closure(package: &str) -> anyhow::Result<Vec<String>> {
    let output = Command::new("apt-cache")
        .args([
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            package,
        ])
        .output()
        .context("running apt-cache depends")?;
    ensure!(
        output.status.success(),
        "apt-cache depends {package}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let names: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()))
        .map(|line| line.trim().to_owned())
        .collect();
    Ok(names.into_iter().collect())
}

/// The `.deb`s of `package`'s closure in `cache`, downloaded with `apt-get download` first when
/// any is missing.
fn fetch_closure(package: &str, cache: &Path, max: usize) -> anyhow::Result<Vec<Deb>> {
    let names = closure(package)?;
    eprintln!(
        "{package}: {} packages in its dependency closure",
        names.len()
    );
    ensure!(
        names.len() <= max,
        "{package}'s closure has {} packages, more than --max-packages {max}",
        names.len()
    );
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let cached = |cache: &Path| -> anyhow::Result<HashMap<String, PathBuf>> {
        let mut found = HashMap::new();
        for entry in std::fs::read_dir(cache)? {
            let path = entry?.path();
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            if let (Some((name, _)), true) = (file.split_once('_'), file.ends_with(".deb")) {
                found.insert(name.to_owned(), path.clone());
            }
        }
        Ok(found)
    };
    let mut found = cached(cache)?;
    let missing: Vec<&String> = names.iter().filter(|n| !found.contains_key(*n)).collect();
    if !missing.is_empty() {
        eprintln!(
            "downloading {} packages into {} with apt-get download",
            missing.len(),
            cache.display()
        );
        let mut command = Command::new("apt-get");
        command.arg("download").args(&missing).current_dir(cache);
        run_timed(&mut command, "apt-get download")?;
        found = cached(cache)?;
    }
    names
        .iter()
        .map(|name| {
            let path = found
                .get(name)
                .with_context(|| format!("{name} was not downloaded"))?
                .clone();
            let bytes = std::fs::read(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .into();
            Ok(Deb {
                name: name.clone(),
                path,
                bytes,
            })
        })
        .collect()
}

/// Everything: the node, reprepro and its static server, and the runs.
async fn measure(
    args: &Args,
    bin: &Path,
    root: &Path,
    version: String,
    debs: Vec<Deb>,
    cache: &Path,
) -> anyhow::Result<ComparisonReport> {
    let runs = usize::try_from(args.runs).context("--runs is too large")?;
    let count = debs.len();
    let bytes: u64 = debs.iter().map(|d| d.bytes.len() as u64).sum();
    let debs = Arc::new(debs);

    // Killed when dropped, should anything below fail.
    let (mut node, token) =
        NodeProcess::start(bin, &root.join("node"), "site-1", &[], Vec::new()).await?;
    common::create_registry(
        &reqwest::Client::new(),
        &node.url,
        &token,
        REGISTRY,
        "DEBIAN",
    )
    .await?;
    let base = format!("{}/debian/{REGISTRY}/", node.url);
    let arca = Target::new("arca", Url::parse(&base)?, Auth::Bearer(token.clone()), 1)?;
    let push_seconds = debian::push_all(&arca, &debs, count as u64, &debian::upload_path()).await?;
    let key = arca.get(&arca.url("key.asc")?, None).await?.1;
    let arca_key = root.join("arca-key.asc");
    std::fs::write(&arca_key, &key)?;
    let auth = root.join("arca-auth.conf");
    std::fs::write(
        &auth,
        format!("machine {base}\nlogin x\npassword {token}\n"),
    )?;

    let repo = Reprepro::create(&args.reprepro, root)?;
    let files: Vec<PathBuf> = debs.iter().map(|d| d.path.clone()).collect();
    let include = repo.include(&files)?;
    let peer_key = match &repo.gnupghome {
        Some(home) => {
            let path = root.join("reprepro-key.gpg");
            let mut command = Command::new("gpg");
            command
                .args(["--batch", "--export", "-o"])
                .arg(&path)
                .env("GNUPGHOME", home);
            run_timed(&mut command, "gpg --export")?;
            Some(path)
        }
        None => None,
    };
    let mut copies = HashMap::new();
    read_tree(&repo.base, &repo.base.join("dists"), &mut copies)?;
    read_tree(&repo.base, &repo.base.join("pool"), &mut copies)?;
    let (peer_url, server) = serve_static(copies).await?;

    let sources = [
        Source {
            name: "arca",
            line: format!(
                "deb [signed-by={}] {base} stable main\n",
                arca_key.display()
            ),
            auth: Some(auth),
        },
        Source {
            name: "files",
            line: format!(
                "deb [{}] {peer_url} stable main\n",
                peer_key.as_ref().map_or_else(
                    || "trusted=yes".to_owned(),
                    |key| format!("signed-by={}", key.display())
                )
            ),
            auth: None,
        },
    ];
    let measured = async {
        // [source][update, install]
        let mut times = vec![[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
        let mut fetched = [0usize; 2];
        for run in 0..runs {
            for (index, source) in sources.iter().enumerate() {
                let dir = root.join(format!("apt-{}-{run}", source.name));
                let (package, source) = (args.package.clone(), source.clone());
                let (update, install, files) =
                    common::blocking(move || source.install(&dir, &package)).await?;
                eprintln!(
                    "run {}/{runs} {}: apt-get update {:.0} ms, install --download-only {:.0} ms \
                     ({files} files)",
                    run + 1,
                    sources[index].name,
                    ms(update),
                    ms(install)
                );
                times[index][0].push(ms(update));
                times[index][1].push(ms(install));
                fetched[index] = files;
            }
        }
        anyhow::Ok((times, fetched))
    }
    .await;
    server.abort();
    let (times, fetched) = measured?;
    node.stop(Signal::Term).await.context("stopping the node")?;

    let spread = |runs: &Vec<f64>| Spread::new(runs.clone()).context("no runs");
    let sum = |index: usize| -> Vec<f64> {
        times[index][0]
            .iter()
            .zip(&times[index][1])
            .map(|(a, b)| a + b)
            .collect()
    };
    let package = &args.package;
    let rows = vec![
        DebianFigure::new(
            "apt-get update",
            "ms",
            spread(&times[0][0])?,
            Spread::new(times[1][0].clone()),
        ),
        DebianFigure::new(
            &format!("apt-get install --download-only {package}"),
            "ms",
            spread(&times[0][1])?,
            Spread::new(times[1][1].clone()),
        ),
        DebianFigure::new(
            "update + install",
            "ms",
            spread(&sum(0))?,
            Spread::new(sum(1)),
        ),
    ];
    Ok(ComparisonReport {
        benchmark: "apt-install",
        parameters: format!("package={package}  runs={runs}  dir={}", root.display()),
        peer_name: "files",
        rows,
        setup: vec![
            format!(
                "{count} real .debs of {package}'s closure ({bytes} bytes) from {}; pushed to Arca \
                 {} at a time in {push_seconds:.1} s; reprepro includedeb of them {:.1} s",
                cache.display(),
                debian::PUSH_CONCURRENCY,
                include.as_secs_f64()
            ),
            format!(
                "files fetched by install --download-only: arca {} | files {}",
                fetched[0], fetched[1]
            ),
        ],
        node_bin: bin.display().to_string(),
        peer: format!(
            "reprepro {version} repository ({}), dists/ and pool/ served from memory by a plain \
             static server (axum) on 127.0.0.1",
            if peer_key.is_some() {
                "signed with a throwaway Ed25519 GnuPG key"
            } else {
                "unsigned, trusted=yes"
            }
        ),
        notes: vec![
            "each run: a fresh apt root (Dir=, empty dpkg status, only the one source, \
             Dir::Etc::SourceParts=/dev/null, Dir::Etc::Parts=/dev/null, netrc the auth.conf), \
             `apt-get update` then `apt-get install -y --download-only --no-install-recommends \
             PKG`, each timed from spawn to exit; Arca and the files take turns"
                .to_owned(),
            "arca: a release arca-node run as a child process on 127.0.0.1, the registry's key \
             (GET key.asc) as signed-by, its admin token as password in an auth.conf"
                .to_owned(),
            "files: the peer is served over HTTP rather than as a file: source because apt \
             does not copy packages of file: sources into its archives (nothing would be \
             downloaded); the static server reads from memory, the limit of serving the files"
                .to_owned(),
            "arca/peer: the ratio of the medians (lower is better for Arca)".to_owned(),
        ],
    })
}

/// Reads every file under `dir` into `copies`, keyed by `/` and its path relative to `base`.
fn read_tree(base: &Path, dir: &Path, copies: &mut HashMap<String, Bytes>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            read_tree(base, &path, copies)?;
        } else {
            let relative = path.strip_prefix(base)?.to_string_lossy().into_owned();
            let bytes: Bytes = std::fs::read(&path)?.into();
            // apt percent-encodes `+` and `~` in the paths it asks for; the static server
            // compares paths as they come.
            for encoded in [
                relative.clone(),
                relative.replace('+', "%2b").replace('~', "%7e"),
                relative.replace('+', "%2B").replace('~', "%7E"),
            ] {
                copies.insert(format!("/{encoded}"), bytes.clone());
            }
        }
    }
    Ok(())
}

/// An apt source to install from.
#[derive(Clone)]
struct Source {
    name: &'static str,
    /// Its `sources.list` line.
    line: String,
    /// Its auth.conf, when it needs one.
    auth: Option<PathBuf>,
}

impl Source {
    /// In a fresh apt root `dir`: `apt-get update`, then `install --download-only` of `package`;
    /// returns both times and the `.deb`s fetched.
    fn install(&self, dir: &Path, package: &str) -> anyhow::Result<(Duration, Duration, usize)> {
        for sub in [
            "etc/apt/preferences.d",
            "etc/apt/apt.conf.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
        ] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        std::fs::write(dir.join("var/lib/dpkg/status"), "")?;
        let list = dir.join("sources.list");
        std::fs::write(&list, &self.line)?;
        let netrc = self
            .auth
            .clone()
            .unwrap_or_else(|| PathBuf::from("/dev/null"));
        let root = dir.display();
        let options = [
            format!("Dir={root}"),
            format!("Dir::State::status={root}/var/lib/dpkg/status"),
            format!("Dir::Etc::SourceList={}", list.display()),
            "Dir::Etc::SourceParts=/dev/null".into(),
            format!("Dir::Etc::netrc={}", netrc.display()),
            "Dir::Etc::Parts=/dev/null".into(),
            "Debug::NoLocking=1".into(),
            "APT::Sandbox::User=root".into(),
            "Acquire::http::Proxy=DIRECT".into(),
            "Acquire::Retries=0".into(),
            "APT::Install-Recommends=false".into(),
        ];
        let apt = |args: &[&str]| {
            let mut command = Command::new("apt-get");
            for option in &options {
                command.arg("-o").arg(option);
            }
            command
                .args(args)
                .env_remove("http_proxy")
                .env_remove("HTTP_PROXY")
                .env("DEBIAN_FRONTEND", "noninteractive");
            command
        };
        let update = run_timed(&mut apt(&["update"]), "apt-get update")?;
        let install = run_timed(
            &mut apt(&["install", "-y", "--download-only", package]),
            "apt-get install --download-only",
        )?;
        let fetched = std::fs::read_dir(dir.join("var/cache/apt/archives"))?
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().extension().is_some_and(|e| e == "deb"))
            .count();
        ensure!(
            fetched > 0,
            "{}: apt-get install --download-only fetched nothing",
            self.name
        );
        Ok((update, install, fetched))
    }
}
