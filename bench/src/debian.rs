//! The `debian` benchmark: what an apt repository costs to keep current and to serve, Arca against
//! reprepro, Debian's own repository tool.
//!
//! `--packages` (default 10,000) small but valid `.deb`s are generated (in Rust: an `ar` archive of
//! `debian-binary`, `control.tar.gz` and `data.tar.gz`), pushed to a DEBIAN registry of a release
//! `arca-node` run as a child process on 127.0.0.1 (16 at a time; then its `InRelease` and
//! `Packages.gz` are read once, the first, full, index build), and included into a reprepro
//! repository in a temporary directory (500 per `reprepro includedeb`; signed with a throwaway GnuPG
//! key when one can be made, unsigned otherwise). Then, with the same packages in both: GETs/s of
//! `Packages.gz` and of `Packages` of `main/binary-amd64` by `--clients` (default 64) clients for
//! `--seconds` (default 5), against reprepro's files served from memory by a plain static server;
//! and, `--runs` (default 3) times, one more package added: to Arca, the push (answered 201) and the
//! time until `InRelease` and `Packages.gz` are served reflecting it; to reprepro, one
//! `reprepro includedeb`, which rewrites `Packages`, `Packages.gz` and `Release`. It prints the
//! medians of the runs with their spread (min-max) and the ratios Arca/reprepro:
//!
//! ```text
//! cargo build --release -p arca-node -p arca-client -p arca-bench && ./target/release/arca-bench debian
//! ./target/release/arca-bench debian --packages 2000 --runs 3   # quicker
//! ```
//!
//! Without reprepro (`apt-get install reprepro`, or `bash scripts/install-clients.sh`) it says so and
//! measures Arca alone.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use reqwest::{Method, StatusCode, Url};
use sha2::{Digest, Sha256};

use crate::archives;
use crate::common::{self, expect_status};
use crate::formats::serve_static;
use crate::packages::{Auth, Dataset, Item, Target, Timing, for_every_package};
use crate::report::{DebianFigure, DebianReport, DebianSetup, GetsOf, Latency, Spread};
use crate::scale::{self, NodeProcess, Signal};

/// The Arca registry the packages are pushed to.
const REGISTRY: &str = "debs";
/// The suite (reprepro's codename) and component everything goes into.
const SUITE: &str = "stable";
const COMPONENT: &str = "main";
/// The index measured, under `dists/<suite>/`.
const PACKAGES: &str = "main/binary-amd64/Packages";
/// The version of every generated package.
const VERSION: &str = "1.0-1";
/// Concurrent pushes while loading Arca.
pub(crate) const PUSH_CONCURRENCY: usize = 16;
/// Pause between polls of Arca's index after a push.
const POLL: Duration = Duration::from_millis(2);
/// How long Arca may take to serve an index reflecting a push.
const INDEX_LIMIT: Duration = Duration::from_secs(120);
/// How a cleartext-signed `InRelease` starts.
const SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----";

/// The options `arca-bench debian` and `rpm` share: how many packages, runs and clients, and
/// where the node and the files are.
#[derive(Debug, clap::Args)]
pub struct IndexRuns {
    /// Packages in the repositories before the measured runs.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub packages: u64,
    /// Runs of each measurement (each run adds one package).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub runs: u64,
    /// Concurrent clients of the GETs.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub clients: u64,
    /// Seconds each run of the GETs lasts.
    #[arg(long, default_value_t = 5.0, value_parser = common::positive)]
    pub seconds: f64,
    /// The `arca-node` binary to run (default: the one beside this binary).
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,
    /// Directory under which a temporary directory for the packages, the node's data and the
    /// peer's repository is made (and removed at the end). Defaults to the current directory.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `arca-bench debian`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub index: IndexRuns,
    /// Packages per `reprepro includedeb` while loading reprepro (setup, not measured).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    batch: u64,
    /// The reprepro program.
    #[arg(long, default_value = "reprepro")]
    reprepro: PathBuf,
}

/// Runs the benchmark and prints its report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = scale::node_binary(args.index.node_bin.as_deref())?;
    let reprepro = match reprepro_version(&args.reprepro) {
        Ok(version) => Some(version),
        Err(error) => {
            eprintln!(
                "reprepro is missing ({error:#}): install it with `apt-get install reprepro` (or \
                 `bash scripts/install-clients.sh`); measuring Arca alone"
            );
            None
        }
    };
    let (temp, root) = common::temp_root(&args.index.dir)?;
    let measured = measure(&args, &bin, &root, reprepro).await;
    let removed = temp
        .close()
        .with_context(|| format!("removing {}", root.display()));
    let report = measured?;
    removed?;
    if args.index.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// A generated (or downloaded) package.
pub(crate) struct Deb {
    pub(crate) name: String,
    /// Its file, for the peer.
    pub(crate) path: PathBuf,
    /// The same bytes, for Arca.
    pub(crate) bytes: Bytes,
}

/// Writes packages `0..count` into `dir`, `make` giving each name's file name and bytes.
pub(crate) fn generate(
    dir: &Path,
    count: u64,
    make: impl Fn(&str) -> anyhow::Result<(String, Vec<u8>)>,
) -> anyhow::Result<Vec<Deb>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    (0..count)
        .map(|index| {
            let name = Dataset::name(index);
            let (file, bytes) = make(&name)?;
            let path = dir.join(file);
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            Ok(Deb {
                name,
                path,
                bytes: bytes.into(),
            })
        })
        .collect()
}

/// Everything: the packages, the node, reprepro, the GETs and the runs.
async fn measure(
    args: &Args,
    bin: &Path,
    root: &Path,
    reprepro_version: Option<String>,
) -> anyhow::Result<DebianReport> {
    let clients = usize::try_from(args.index.clients).context("--clients is too large")?;
    let runs = usize::try_from(args.index.runs).context("--runs is too large")?;
    let batch = usize::try_from(args.batch).context("--batch is too large")?;
    let packages = usize::try_from(args.index.packages).context("--packages is too large")?;

    let started = Instant::now();
    let dir = root.join("debs");
    let total = args.index.packages + args.index.runs;
    let debs = Arc::new(
        common::blocking(move || {
            generate(&dir, total, |name| {
                Ok((
                    format!("{name}_{VERSION}_amd64.deb"),
                    archives::deb(name, VERSION)?,
                ))
            })
        })
        .await?,
    );
    let generate_seconds = started.elapsed().as_secs_f64();
    let deb_mean_bytes = debs.iter().map(|d| d.bytes.len() as u64).sum::<u64>() / total;
    eprintln!(
        "generated {total} .debs in {generate_seconds:.1} s ({deb_mean_bytes} bytes each on \
         average)"
    );

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
    let arca = Target::new(
        "arca",
        Url::parse(&format!("{}/debian/{REGISTRY}/", node.url))?,
        Auth::Bearer(token),
        clients,
    )?;
    let loaded = load_arca(&arca, &debs, args.index.packages).await?;
    let peer = match reprepro_version {
        Some(version) => {
            let files: Vec<PathBuf> = debs[..packages].iter().map(|d| d.path.clone()).collect();
            Some(load_reprepro(&args.reprepro, root, version, files, batch).await?)
        }
        None => None,
    };

    let timing = Timing {
        clients,
        runs,
        seconds: Duration::from_secs_f64(args.index.seconds),
    };
    let gets = measure_gets(&timing, &arca, &loaded.index, peer.as_ref()).await?;
    let added = add_one_by_one(&arca, peer.as_ref(), &debs[packages..]).await?;
    node.stop(Signal::Term).await.context("stopping the node")?;

    let spread = |runs: Vec<f64>| Spread::new(runs).context("no runs");
    let mut rows = vec![
        DebianFigure::new(
            "add one .deb: push answered 201",
            "ms",
            spread(added.push_ms)?,
            None,
        ),
        DebianFigure::new(
            "add one .deb: then index served",
            "ms",
            spread(added.index_ms)?,
            None,
        ),
        DebianFigure::new(
            "add one .deb: total",
            "ms",
            spread(added.total_ms)?,
            Spread::new(added.peer_ms),
        ),
    ];
    rows.extend(gets);
    Ok(DebianReport {
        benchmark: "debian",
        packages: args.index.packages,
        runs,
        clients,
        seconds: args.index.seconds,
        node_bin: bin.display().to_string(),
        peer: peer.as_ref().map_or_else(
            || "missing (apt-get install reprepro)".to_owned(),
            |peer| peer.description.clone(),
        ),
        dir: root.display().to_string(),
        setup: DebianSetup {
            generate_seconds,
            deb_mean_bytes,
            push_concurrency: PUSH_CONCURRENCY,
            arca_push_seconds: loaded.push_seconds,
            arca_first_inrelease_ms: loaded.first_inrelease_ms,
            arca_first_packages_gz_ms: loaded.first_packages_gz_ms,
            peer_batch: batch,
            peer_include_seconds: peer.as_ref().map(|peer| peer.include_seconds),
            arca_index_bytes: loaded.index.sizes(),
            peer_index_bytes: peer.as_ref().map(|peer| peer.index.sizes()),
        },
        rows,
        notes: notes(args),
    })
}

/// A `Packages` file and its `Packages.gz`.
struct Packages {
    plain: Bytes,
    gz: Bytes,
}

impl Packages {
    /// Their sizes in bytes.
    fn sizes(&self) -> (u64, u64) {
        (self.plain.len() as u64, self.gz.len() as u64)
    }
}

/// Arca loaded with the packages.
struct ArcaLoaded {
    /// Seconds the pushes took.
    push_seconds: f64,
    first_inrelease_ms: f64,
    first_packages_gz_ms: f64,
    /// Its index with every package.
    index: Packages,
}

/// Pushes the first `count` packages to Arca, `PUSH_CONCURRENCY` at a time, then reads its
/// `InRelease` and `Packages.gz` (the first, full, index build) and checks them.
async fn load_arca(arca: &Target, debs: &Arc<Vec<Deb>>, count: u64) -> anyhow::Result<ArcaLoaded> {
    let push_seconds = push_all(arca, debs, count, &upload_path()).await?;

    let started = Instant::now();
    let release = get(arca, "InRelease").await?;
    let first_inrelease_ms = ms(started.elapsed());
    let started = Instant::now();
    let packages_gz = get(arca, &format!("{PACKAGES}.gz")).await?;
    let first_packages_gz_ms = ms(started.elapsed());
    eprintln!(
        "first InRelease in {first_inrelease_ms:.0} ms, then Packages.gz in \
         {first_packages_gz_ms:.0} ms"
    );
    ensure!(
        release.starts_with(SIGNED.as_bytes()),
        "Arca's InRelease is not cleartext-signed"
    );
    let index = Index {
        release,
        packages_gz,
    };
    ensure!(index.consistent(), "{}", index.inconsistency());
    let listed = count_packages(&gunzip(&index.packages_gz)?);
    ensure!(
        listed as u64 == count,
        "Arca's Packages.gz lists {listed} packages, not {count}"
    );
    Ok(ArcaLoaded {
        push_seconds,
        first_inrelease_ms,
        first_packages_gz_ms,
        index: Packages {
            plain: get(arca, PACKAGES).await?,
            gz: index.packages_gz,
        },
    })
}

/// reprepro loaded with the packages.
struct Peer {
    repo: Arc<Reprepro>,
    /// Its version and how it signs.
    description: String,
    /// Seconds including the packages took.
    include_seconds: f64,
    /// Its index with every package.
    index: Packages,
}

/// Makes a reprepro repository and includes `files`, `batch` per invocation; checks its index.
async fn load_reprepro(
    bin: &Path,
    root: &Path,
    version: String,
    files: Vec<PathBuf>,
    batch: usize,
) -> anyhow::Result<Peer> {
    let repo = Arc::new(Reprepro::create(bin, root)?);
    let description = format!("reprepro {version}, {}", repo.signing);
    let started = Instant::now();
    for chunk in files.chunks(batch) {
        let (repo, chunk) = (repo.clone(), chunk.to_vec());
        common::blocking(move || repo.include(&chunk)).await?;
    }
    let include_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "reprepro included {} packages in {include_seconds:.1} s",
        files.len()
    );
    if repo.gnupghome.is_some() {
        let path = repo.base.join(format!("dists/{SUITE}/InRelease"));
        let release =
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        ensure!(
            release.starts_with(SIGNED.as_bytes()),
            "reprepro's InRelease is not cleartext-signed"
        );
    }
    let index = repo.index()?;
    let listed = count_packages(&index.plain);
    ensure!(
        listed == files.len(),
        "reprepro's Packages lists {listed} packages, not {}",
        files.len()
    );
    Ok(Peer {
        repo,
        description,
        include_seconds,
        index,
    })
}

/// The runs of adding one package.
struct Added {
    push_ms: Vec<f64>,
    index_ms: Vec<f64>,
    total_ms: Vec<f64>,
    peer_ms: Vec<f64>,
}

/// Adds each of `debs` to Arca (timing the push and the index) and to reprepro (timing
/// `includedeb`), one run each.
async fn add_one_by_one(arca: &Target, peer: Option<&Peer>, debs: &[Deb]) -> anyhow::Result<Added> {
    let mut added = Added {
        push_ms: Vec::new(),
        index_ms: Vec::new(),
        total_ms: Vec::new(),
        peer_ms: Vec::new(),
    };
    for (run, deb) in debs.iter().enumerate() {
        let (pushed, served) = add_to_arca(arca, deb).await?;
        added.push_ms.push(ms(pushed));
        added.index_ms.push(ms(served - pushed));
        added.total_ms.push(ms(served));
        let mut line = format!(
            "run {}/{}: arca push {:.1} ms, then index served {:.1} ms",
            run + 1,
            debs.len(),
            ms(pushed),
            ms(served - pushed)
        );
        if let Some(peer) = peer {
            let (repo, files) = (peer.repo.clone(), vec![deb.path.clone()]);
            let took = common::blocking(move || repo.include(&files)).await?;
            ensure!(
                contains_package(&peer.repo.index()?.plain, &deb.name),
                "reprepro's Packages lacks {} after includedeb",
                deb.name
            );
            added.peer_ms.push(ms(took));
            line.push_str(&format!("; reprepro includedeb {:.1} ms", ms(took)));
        }
        eprintln!("{line}");
    }
    Ok(added)
}

/// How to read the numbers; printed under the table and carried in the JSON.
fn notes(args: &Args) -> Vec<String> {
    vec![
        "arca: a release arca-node run as a child process on 127.0.0.1; push: PUT \
         /debian/debs/upload/stable/main with the .deb, answered 201; then index served: from the \
         201 until GET dists/stable/InRelease and then GET dists/stable/main/binary-amd64/\
         Packages.gz are answered 200 with the InRelease listing that Packages.gz's SHA256 and the \
         Packages.gz holding the new package (polled every 2 ms; the clock stops at the answer, \
         before the check)"
            .to_owned(),
        "reprepro: `reprepro -b DIR includedeb stable <one .deb>` timed from spawn to exit: it \
         copies the .deb into its pool, records it in its database and writes Packages, \
         Packages.gz and Release (and InRelease and Release.gpg when signed); its total is set \
         against Arca's push + index served"
            .to_owned(),
        format!(
            "GETs: {} clients for {} s per run, each GET the whole file, checked by its length; \
             Arca with its bearer token, reprepro's files (the same {} packages, each tool writing \
             its own paragraphs) from memory through a plain static server (axum), the limit of \
             serving them; measured before the runs add their packages; the clients, the static \
             server (in this process) and the node share the machine's cores",
            args.index.clients, args.index.seconds, args.index.packages
        ),
        "the files differ: reprepro's paragraphs carry SHA1 besides MD5sum and SHA256, so its \
         files are larger; MiB/s is the median req/s times the file's bytes"
            .to_owned(),
        "arca/peer: the ratio of the medians; for ms lower is better for Arca, for req/s higher"
            .to_owned(),
    ]
}

/// Pushes the first `count` of `packages` to `arca`'s `upload` path, `PUSH_CONCURRENCY` at a
/// time (each answered 201); returns the seconds it took.
pub(crate) async fn push_all(
    arca: &Target,
    packages: &Arc<Vec<Deb>>,
    count: u64,
    upload: &str,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let (pusher, all, upload) = (arca.clone(), packages.clone(), Arc::new(upload.to_owned()));
    let dataset = Dataset {
        packages: count,
        versions: 1,
    };
    for_every_package(dataset, PUSH_CONCURRENCY, move |index| {
        let (arca, debs, upload) = (pusher.clone(), all.clone(), upload.clone());
        async move {
            let deb = usize::try_from(index)
                .ok()
                .and_then(|index| debs.get(index))
                .context("no such package")?;
            push(&arca, &upload, deb).await
        }
    })
    .await?;
    let push_seconds = started.elapsed().as_secs_f64();
    eprintln!("pushed {count} packages to Arca in {push_seconds:.1} s");
    Ok(push_seconds)
}

/// Where `.deb`s are pushed, under the registry's URL.
pub(crate) fn upload_path() -> String {
    format!("upload/{SUITE}/{COMPONENT}")
}

/// Milliseconds of `duration`.
pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Pushes `deb` to Arca's registry at `upload`; it must be answered 201.
pub(crate) async fn push(arca: &Target, upload: &str, deb: &Deb) -> anyhow::Result<()> {
    let url = arca.url(upload)?;
    let what = format!("{}: PUT {url} ({})", arca.name, deb.name);
    let response = arca
        .request(Method::PUT, url)
        .body(deb.bytes.clone())
        .send()
        .await
        .with_context(|| what.clone())?;
    expect_status(response, StatusCode::CREATED, &what).await?;
    Ok(())
}

/// GETs `dists/<suite>/<path>` from `target`; it must be answered 200.
async fn get(target: &Target, path: &str) -> anyhow::Result<Bytes> {
    let url = target.url(&format!("dists/{SUITE}/{path}"))?;
    Ok(target.get(&url, None).await?.1)
}

/// Pushes `deb` and reads Arca's index until it reflects it; returns the time from the start to the
/// push's 201 and to the index's answers.
async fn add_to_arca(arca: &Target, deb: &Deb) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    push(arca, &upload_path(), deb).await?;
    let pushed = started.elapsed();
    loop {
        let release = get(arca, "InRelease").await?;
        let packages_gz = get(arca, &format!("{PACKAGES}.gz")).await?;
        let served = started.elapsed();
        let index = Index {
            release,
            packages_gz,
        };
        if index.consistent() && contains_package(&gunzip(&index.packages_gz)?, &deb.name) {
            return Ok((pushed, served));
        }
        if started.elapsed() > INDEX_LIMIT {
            bail!(
                "Arca's index did not reflect {} within {INDEX_LIMIT:?}: {}",
                deb.name,
                index.inconsistency()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// An `InRelease` and the `Packages.gz` read after it.
struct Index {
    release: Bytes,
    packages_gz: Bytes,
}

impl Index {
    /// Whether the `InRelease` lists the `Packages.gz`'s SHA256 (and size).
    fn consistent(&self) -> bool {
        let digest = hex::encode(Sha256::digest(&self.packages_gz));
        let size = self.packages_gz.len().to_string();
        let path = format!("{PACKAGES}.gz");
        String::from_utf8_lossy(&self.release).lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields == [digest.as_str(), size.as_str(), path.as_str()]
        })
    }

    /// Why the two do not match, for messages.
    fn inconsistency(&self) -> String {
        format!(
            "InRelease ({} bytes) does not list the SHA256 of {PACKAGES}.gz ({} bytes, {})",
            self.release.len(),
            self.packages_gz.len(),
            hex::encode(Sha256::digest(&self.packages_gz))
        )
    }
}

/// The text of a `Packages.gz` (every gzip member: Arca writes one per bucket).
pub(crate) fn gunzip(gz: &[u8]) -> anyhow::Result<Bytes> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_end(&mut out)
        .context("Packages.gz is not gzip")?;
    Ok(out.into())
}

/// The paragraphs of a `Packages` file.
fn count_packages(packages: &[u8]) -> usize {
    packages
        .split(|b| *b == b'\n')
        .filter(|line| line.starts_with(b"Package: "))
        .count()
}

/// Whether a `Packages` file has a paragraph of `name`.
fn contains_package(packages: &[u8], name: &str) -> bool {
    let line = format!("Package: {name}");
    packages
        .split(|b| *b == b'\n')
        .any(|l| l == line.as_bytes())
}

/// Times GETs of `Packages.gz` and `Packages` on Arca (`arca_index` is what it served) and, when
/// there is a peer, on a static server of the peer's files.
async fn measure_gets(
    timing: &Timing,
    arca: &Target,
    arca_index: &Packages,
    peer: Option<&Peer>,
) -> anyhow::Result<Vec<DebianFigure>> {
    let files = [(true, "GET Packages.gz"), (false, "GET Packages")]
        .into_iter()
        .map(|(gz, label)| {
            let path = format!("dists/{SUITE}/{PACKAGES}{}", if gz { ".gz" } else { "" });
            let pick = |index: &Packages| {
                if gz {
                    index.gz.clone()
                } else {
                    index.plain.clone()
                }
            };
            FileGets {
                label,
                arca_path: path.clone(),
                arca_len: pick(arca_index).len() as u64,
                peer: peer.map(|peer| (path, pick(&peer.index))),
            }
        })
        .collect();
    measure_file_gets(timing, arca, "reprepro", files).await
}

/// One file whose GETs are measured: where Arca serves it and its length, and the peer's copy.
pub(crate) struct FileGets {
    /// The row's label.
    pub(crate) label: &'static str,
    /// Its path under Arca's target.
    pub(crate) arca_path: String,
    /// The length of Arca's answer.
    pub(crate) arca_len: u64,
    /// The peer's path (no leading `/`) and bytes, served by a static server.
    pub(crate) peer: Option<(String, Bytes)>,
}

/// Times GETs of each of `files` on Arca and, when it has the peer's, on a static server of them
/// (named `peer_name`); one row each.
pub(crate) async fn measure_file_gets(
    timing: &Timing,
    arca: &Target,
    peer_name: &'static str,
    files: Vec<FileGets>,
) -> anyhow::Result<Vec<DebianFigure>> {
    let copies: HashMap<String, Bytes> = files
        .iter()
        .filter_map(|file| {
            let (path, bytes) = file.peer.as_ref()?;
            Some((format!("/{path}"), bytes.clone()))
        })
        .collect();
    let server = if copies.is_empty() {
        None
    } else {
        let (base, server) = serve_static(copies).await?;
        match Target::new(peer_name, base, Auth::None, timing.clients) {
            Ok(target) => Some((target, server)),
            Err(error) => {
                server.abort();
                return Err(error);
            }
        }
    };
    let measured = async {
        let mut rows = Vec::new();
        for file in &files {
            let mut targets = vec![arca];
            let mut items = vec![Arc::new(vec![Item {
                url: arca.url(&file.arca_path)?,
                len: file.arca_len,
            }])];
            if let (Some((target, _)), Some((path, bytes))) = (&server, &file.peer) {
                targets.push(target);
                items.push(Arc::new(vec![Item {
                    url: target.url(path)?,
                    len: bytes.len() as u64,
                }]));
            }
            let mut gets = timing
                .each(file.label, &targets, &items, None)
                .await?
                .into_iter();
            let arca_gets = gets.next().context("no GETs of Arca")?;
            let peer_gets = gets.next();
            let mut row = DebianFigure::new(
                file.label,
                "req/s",
                Spread::new(arca_gets.rates).context("no runs")?,
                peer_gets
                    .as_ref()
                    .and_then(|gets| Spread::new(gets.rates.clone())),
            );
            let of = |items: &[Item], micros: Vec<u32>| {
                Some(GetsOf {
                    bytes: items.first()?.len,
                    latency: Latency::from_micros(micros)?,
                })
            };
            row.arca_gets = of(&items[0], arca_gets.micros);
            row.peer_gets = peer_gets.and_then(|gets| of(items.get(1)?, gets.micros));
            rows.push(row);
        }
        anyhow::Ok(rows)
    }
    .await;
    if let Some((_, server)) = server {
        server.abort();
    }
    measured
}

/// The version `reprepro --version` prints (and so, that it runs).
pub(crate) fn reprepro_version(bin: &Path) -> anyhow::Result<String> {
    let output = Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", bin.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success(),
        "{} --version: {}",
        bin.display(),
        text.trim()
    );
    Ok(text
        .split("version ")
        .nth(1)
        .map_or_else(|| text.trim().to_owned(), |v| v.trim().to_owned()))
}

/// A reprepro repository in a temporary directory, signing with a throwaway key in its own
/// `GNUPGHOME` when one could be made. Dropping it stops that home's gpg-agent.
pub(crate) struct Reprepro {
    bin: PathBuf,
    /// The repository (`conf/`, `db/`, `dists/`, `pool/`).
    pub(crate) base: PathBuf,
    /// The key's home, when signing.
    pub(crate) gnupghome: Option<PathBuf>,
    /// How the `Release` is signed, for the report.
    signing: String,
}

impl Reprepro {
    /// Makes the repository under `root`: codename `stable`, component `main`, architecture
    /// amd64, `Packages` and `Packages.gz` (reprepro's default), signed when a key can be made.
    pub(crate) fn create(bin: &Path, root: &Path) -> anyhow::Result<Reprepro> {
        let base = root.join("reprepro");
        let conf = base.join("conf");
        std::fs::create_dir_all(&conf).with_context(|| format!("creating {}", conf.display()))?;
        let home = root.join("gnupg");
        let (gnupghome, sign_with, signing) = match throwaway_key(&home) {
            Ok(fingerprint) => (
                Some(home),
                format!("SignWith: {fingerprint}\n"),
                "Release signed (InRelease, Release.gpg) with a throwaway Ed25519 GnuPG key"
                    .to_owned(),
            ),
            Err(error) => {
                // An agent the failed attempt may have started.
                stop_agent(&home);
                (
                    None,
                    String::new(),
                    format!("unsigned (no GnuPG key: {error:#})"),
                )
            }
        };
        let distributions = format!(
            "Codename: {SUITE}\nSuite: {SUITE}\nComponents: {COMPONENT}\nArchitectures: amd64\n\
             {sign_with}"
        );
        let path = conf.join("distributions");
        std::fs::write(&path, distributions)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Reprepro {
            bin: bin.to_owned(),
            base,
            gnupghome,
            signing,
        })
    }

    /// `reprepro -b <base> includedeb stable <files>`; returns how long it ran.
    pub(crate) fn include(&self, files: &[PathBuf]) -> anyhow::Result<Duration> {
        let mut command = Command::new(&self.bin);
        command
            .arg("-b")
            .arg(&self.base)
            .args(["includedeb", SUITE])
            .args(files);
        if let Some(home) = &self.gnupghome {
            command.env("GNUPGHOME", home);
        }
        let started = Instant::now();
        let output = command
            .output()
            .with_context(|| format!("running {}", self.bin.display()))?;
        let took = started.elapsed();
        ensure!(
            output.status.success(),
            "reprepro includedeb of {} files failed ({}): {}",
            files.len(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(took)
    }

    /// Its `Packages` and `Packages.gz` of `main/binary-amd64`.
    fn index(&self) -> anyhow::Result<Packages> {
        let read = |name: &str| -> anyhow::Result<Bytes> {
            let path = self.base.join(format!("dists/{SUITE}/{name}"));
            Ok(std::fs::read(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .into())
        };
        Ok(Packages {
            plain: read(PACKAGES)?,
            gz: read(&format!("{PACKAGES}.gz"))?,
        })
    }
}

impl Drop for Reprepro {
    fn drop(&mut self) {
        if let Some(home) = &self.gnupghome {
            stop_agent(home);
        }
    }
}

/// Stops the gpg-agent of the GnuPG home `home`, if one runs.
pub(crate) fn stop_agent(home: &Path) {
    let _ = Command::new("gpgconf")
        .args(["--kill", "gpg-agent"])
        .env("GNUPGHOME", home)
        .output();
}

/// Makes an Ed25519 signing key without a passphrase in a new GnuPG home `home`; returns its
/// fingerprint.
pub(crate) fn throwaway_key(home: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700))?;
    let gpg = |args: &[&str]| -> anyhow::Result<String> {
        let output = Command::new("gpg")
            .args([
                "--batch",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .env("GNUPGHOME", home)
            .output()
            .context("running gpg")?;
        ensure!(
            output.status.success(),
            "gpg {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    gpg(&[
        "--quick-gen-key",
        "arca-bench reprepro <bench@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ])?;
    let listed = gpg(&["--with-colons", "--list-secret-keys"])?;
    listed
        .lines()
        .find_map(|line| line.strip_prefix("fpr:"))
        .and_then(|rest| rest.split(':').find(|field| !field.is_empty()))
        .map(str::to_owned)
        .context("gpg listed no fingerprint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_is_consistent_when_the_release_lists_its_hash() {
        let gz = Bytes::from_static(b"not really gzip");
        let digest = hex::encode(Sha256::digest(&gz));
        let release = format!("SHA256:\n {digest} {} {PACKAGES}.gz\n", gz.len());
        let index = Index {
            release: release.into(),
            packages_gz: gz.clone(),
        };
        assert!(index.consistent());
        let other = Index {
            release: format!("SHA256:\n {digest} 1 {PACKAGES}.gz\n").into(),
            packages_gz: gz,
        };
        assert!(!other.consistent());
    }

    #[test]
    fn packages_are_found_by_name() {
        let packages = b"Package: a\nVersion: 1\n\nPackage: ab\nVersion: 1\n";
        assert_eq!(count_packages(packages), 2);
        assert!(contains_package(packages, "ab"));
        assert!(!contains_package(packages, "b"));
    }
}
