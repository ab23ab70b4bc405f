//! The `rpm` benchmark: what a dnf/yum repository costs to keep current and to serve, Arca against
//! createrepo_c, the tool Fedora and RHEL build their repositories with.
//!
//! `--packages` (default 10,000) small but valid `.rpm`s are generated (in Rust, see
//! [`archives::rpm`]), pushed to an RPM registry of a release `arca-node` run as a child process on
//! 127.0.0.1 (16 at a time; then its `repodata/repomd.xml` is read once, the first, full, build),
//! and written into a directory indexed once by `createrepo_c --no-database` (setup). Then: GETs/s
//! of `primary.xml.gz` (Arca's as its `repomd.xml` lists it, against createrepo_c's served from
//! memory by a plain static server); and, `--runs` (default 3) times, one more package added: to
//! Arca, the push (answered 201) and the time until `repomd.xml` and `repomd.xml.asc` are served
//! listing a `primary.xml.gz` that holds it; to createrepo_c, the package copied in, then
//! `createrepo_c --update --no-database DIR` (its incremental mode) and `gpg --detach-sign
//! --armor repodata/repomd.xml` with a throwaway key (as `repo_gpgcheck=1` needs), timed apart:
//!
//! ```text
//! cargo build --release -p arca-node -p arca-client -p arca-bench && ./target/release/arca-bench rpm
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use reqwest::Url;
use sha2::{Digest, Sha256};

use crate::archives;
use crate::common;
use crate::debian::{self, Deb, FileGets, ms};
use crate::packages::{Auth, Target, Timing};
use crate::report::{ComparisonReport, DebianFigure, Spread};
use crate::scale::{self, NodeProcess, Signal};

/// The Arca registry the packages are pushed to.
const REGISTRY: &str = "rpms";
/// The version and release of every generated package.
const VERSION: &str = "1.0";
const RELEASE: &str = "1";
/// Pause between polls of Arca's repodata after a push.
const POLL: Duration = Duration::from_millis(2);
/// How long Arca may take to serve repodata reflecting a push.
const INDEX_LIMIT: Duration = Duration::from_secs(120);
/// How an armoured detached signature starts.
const SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";

/// Options of `arca-bench rpm`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub index: debian::IndexRuns,
    /// The createrepo_c program.
    #[arg(long, default_value = "createrepo_c")]
    createrepo: PathBuf,
}

/// Runs the benchmark and prints its report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = scale::node_binary(args.index.node_bin.as_deref())?;
    let version = createrepo_version(&args.createrepo).context(
        "createrepo_c is needed (apt-get install createrepo-c, or pass --createrepo PATH)",
    )?;
    let (temp, root) = common::temp_root(&args.index.dir)?;
    let measured = measure(&args, &bin, &root, version).await;
    debian::stop_agent(&root.join("gnupg"));
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

/// Everything: the packages, the node, createrepo_c, the GETs and the runs.
async fn measure(
    args: &Args,
    bin: &Path,
    root: &Path,
    version: String,
) -> anyhow::Result<ComparisonReport> {
    let clients = usize::try_from(args.index.clients).context("--clients is too large")?;
    let runs = usize::try_from(args.index.runs).context("--runs is too large")?;
    let packages = usize::try_from(args.index.packages).context("--packages is too large")?;

    let started = Instant::now();
    let dir = root.join("rpms");
    let total = args.index.packages + args.index.runs;
    let rpms = Arc::new(
        common::blocking(move || {
            debian::generate(&dir, total, |name| {
                Ok((
                    format!("{name}-{VERSION}-{RELEASE}.noarch.rpm"),
                    archives::rpm(name, VERSION, RELEASE)?,
                ))
            })
        })
        .await?,
    );
    let generate_seconds = started.elapsed().as_secs_f64();
    let mean_bytes = rpms.iter().map(|r| r.bytes.len() as u64).sum::<u64>() / total;
    eprintln!("generated {total} .rpms in {generate_seconds:.1} s ({mean_bytes} bytes each)");

    // Killed when dropped, should anything below fail.
    let (mut node, token) =
        NodeProcess::start(bin, &root.join("node"), "site-1", &[], Vec::new()).await?;
    common::create_registry(&reqwest::Client::new(), &node.url, &token, REGISTRY, "RPM").await?;
    let arca = Target::new(
        "arca",
        Url::parse(&format!("{}/rpm/{REGISTRY}/", node.url))?,
        Auth::Bearer(token),
        clients,
    )?;
    let push_seconds = debian::push_all(&arca, &rpms, args.index.packages, "upload").await?;
    let started = Instant::now();
    let repomd = get(&arca, "repodata/repomd.xml").await?;
    let first_repomd_ms = ms(started.elapsed());
    let (arca_primary_path, arca_primary) = primary(&arca, &repomd).await?;
    let listed = count_packages(&debian::gunzip(&arca_primary)?);
    ensure!(
        listed == packages,
        "Arca's primary.xml lists {listed} packages, not {packages}"
    );
    eprintln!("Arca's first repomd.xml in {first_repomd_ms:.0} ms");

    let peer = Createrepo::create(&args.createrepo, root, &rpms[..packages])?;
    let peer_primary = peer.primary()?;
    let peer_primary_len = peer_primary.1.len();
    let listed = count_packages(&debian::gunzip(&peer_primary.1)?);
    ensure!(
        listed == packages,
        "createrepo_c's primary.xml lists {listed} packages, not {packages}"
    );

    let timing = Timing {
        clients,
        runs,
        seconds: Duration::from_secs_f64(args.index.seconds),
    };
    let gets = debian::measure_file_gets(
        &timing,
        &arca,
        "createrepo_c",
        vec![FileGets {
            label: "GET primary.xml.gz",
            arca_path: arca_primary_path,
            arca_len: arca_primary.len() as u64,
            peer: Some(peer_primary),
        }],
    )
    .await?;

    let (mut push_ms, mut index_ms, mut total_ms) = (Vec::new(), Vec::new(), Vec::new());
    let (mut update_ms, mut sign_ms, mut peer_ms) = (Vec::new(), Vec::new(), Vec::new());
    for (run, rpm) in rpms[packages..].iter().enumerate() {
        let (pushed, served) = add_to_arca(&arca, rpm).await?;
        push_ms.push(ms(pushed));
        index_ms.push(ms(served - pushed));
        total_ms.push(ms(served));
        let (update, sign) = peer.add(rpm)?;
        update_ms.push(ms(update));
        peer_ms.push(ms(update) + sign.map_or(0.0, ms));
        if let Some(sign) = sign {
            sign_ms.push(ms(sign));
        }
        eprintln!(
            "run {}/{runs}: arca push {:.1} ms, then repodata served {:.1} ms; createrepo_c \
             --update {:.1} ms, gpg sign {}",
            run + 1,
            ms(pushed),
            ms(served - pushed),
            ms(update),
            sign.map_or_else(|| "-".to_owned(), |sign| format!("{:.1} ms", ms(sign)))
        );
    }
    node.stop(Signal::Term).await.context("stopping the node")?;

    let spread = |runs: Vec<f64>| Spread::new(runs).context("no runs");
    let mut rows = vec![
        DebianFigure::new(
            "add one .rpm: push answered 201",
            "ms",
            spread(push_ms)?,
            None,
        ),
        DebianFigure::new(
            "add one .rpm: then repodata served",
            "ms",
            spread(index_ms)?,
            None,
        ),
        DebianFigure::new(
            "add one .rpm: total",
            "ms",
            spread(total_ms)?,
            Spread::new(peer_ms),
        ),
    ];
    rows.extend(gets);
    let cell = |runs: Vec<f64>| {
        Spread::new(runs).map_or_else(
            || "-".to_owned(),
            |s| format!("{:.1} ({:.1}-{:.1}) ms", s.median, s.min, s.max),
        )
    };
    let signing = if peer.gnupghome.is_some() {
        "repomd.xml signed (gpg --detach-sign --armor) with a throwaway Ed25519 GnuPG key"
    } else {
        "repomd.xml unsigned (no GnuPG key could be made)"
    };
    Ok(ComparisonReport {
        benchmark: "rpm",
        parameters: format!(
            "packages={}  runs={runs}  clients={clients}  seconds={}  dir={}",
            args.index.packages,
            args.index.seconds,
            root.display()
        ),
        peer_name: "createrepo_c",
        rows,
        setup: vec![
            format!(
                "{total} .rpms generated in {generate_seconds:.1} s ({mean_bytes} bytes each); \
                 pushed to Arca {} at a time in {push_seconds:.1} s ({:.0}/s); first repomd.xml \
                 {first_repomd_ms:.0} ms",
                debian::PUSH_CONCURRENCY,
                args.index.packages as f64 / push_seconds.max(1e-9)
            ),
            format!(
                "createrepo_c --no-database of {} packages: {:.1} s",
                args.index.packages, peer.setup_seconds
            ),
            format!(
                "createrepo_c's total split: createrepo_c --update {} + gpg sign {}",
                cell(update_ms),
                cell(sign_ms)
            ),
            format!(
                "primary.xml.gz bytes with {} packages: arca {} | createrepo_c {}",
                args.index.packages,
                arca_primary.len(),
                peer_primary_len
            ),
        ],
        node_bin: bin.display().to_string(),
        peer: format!("createrepo_c {version}, {signing}"),
        notes: vec![
            "arca: a release arca-node run as a child process on 127.0.0.1; push: PUT \
             /rpm/rpms/upload with the .rpm, answered 201; then repodata served: from the 201 \
             until GET repodata/repomd.xml, repodata/repomd.xml.asc and the primary.xml.gz that \
             repomd.xml lists are answered 200, the primary's SHA-256 the one listed and holding \
             <name>NEW</name> (polled every 2 ms); that the .asc signs this repomd.xml is not \
             verified, only that it is an armoured signature"
                .to_owned(),
            "createrepo_c: the .rpm copied into its directory (not timed), then `createrepo_c \
             --update --no-database DIR` (reuses the previous primary for unchanged files, \
             rewrites primary, filelists, other and repomd.xml) and `gpg --detach-sign --armor \
             repodata/repomd.xml`, each timed from spawn to exit; its total is their sum"
                .to_owned(),
            format!(
                "GETs: {} clients for {} s per run of the whole primary.xml.gz, checked by \
                 length; Arca with its bearer token, createrepo_c's file from memory through a \
                 plain static server (axum) in this process",
                args.index.clients, args.index.seconds
            ),
            "arca/peer: the ratio of the medians; for ms lower is better for Arca, for req/s \
             higher"
                .to_owned(),
        ],
    })
}

/// GETs `path` under `target`; it must be answered 200.
async fn get(target: &Target, path: &str) -> anyhow::Result<Bytes> {
    Ok(target.get(&target.url(path)?, None).await?.1)
}

/// The `location href` and `sha256` checksum of the primary that `repomd` lists.
fn primary_of(repomd: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(repomd);
    let data = text
        .split("<data ")
        .find(|d| d.starts_with("type=\"primary\""))?;
    let between = |start: &str, end: &str| -> Option<String> {
        let rest = &data[data.find(start)? + start.len()..];
        Some(rest[..rest.find(end)?].to_owned())
    };
    let checksum = data
        .split("<checksum ")
        .nth(1)
        .and_then(|c| Some(c[c.find('>')? + 1..c.find('<')?].to_owned()))?;
    Some((between("<location href=\"", "\"")?, checksum))
}

/// The primary that `repomd` lists, read from `target`: its path and bytes, checked against the
/// listed SHA-256.
async fn primary(target: &Target, repomd: &[u8]) -> anyhow::Result<(String, Bytes)> {
    let (href, checksum) = primary_of(repomd).context("repomd.xml lists no primary")?;
    let bytes = get(target, &href).await?;
    ensure!(
        hex::encode(Sha256::digest(&bytes)) == checksum,
        "{href} does not have the SHA-256 repomd.xml lists"
    );
    Ok((href, bytes))
}

/// Packages in a `primary.xml`.
fn count_packages(primary: &[u8]) -> usize {
    String::from_utf8_lossy(primary)
        .matches("<package type=\"rpm\"")
        .count()
}

/// Whether a `primary.xml` lists `name`.
fn contains_package(primary: &[u8], name: &str) -> bool {
    String::from_utf8_lossy(primary).contains(&format!("<name>{name}</name>"))
}

/// Pushes `rpm` and reads Arca's repodata until it reflects it; returns the time from the start to
/// the push's 201 and to the repodata's answers.
async fn add_to_arca(arca: &Target, rpm: &Deb) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    debian::push(arca, "upload", rpm).await?;
    let pushed = started.elapsed();
    loop {
        let repomd = get(arca, "repodata/repomd.xml").await?;
        let signature = get(arca, "repodata/repomd.xml.asc").await?;
        let (_, primary_gz) = primary(arca, &repomd).await?;
        let served = started.elapsed();
        if signature.starts_with(SIGNATURE.as_bytes())
            && contains_package(&debian::gunzip(&primary_gz)?, &rpm.name)
        {
            return Ok((pushed, served));
        }
        if started.elapsed() > INDEX_LIMIT {
            bail!(
                "Arca's repodata did not reflect {} within {INDEX_LIMIT:?}",
                rpm.name
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The version `createrepo_c --version` prints (and so, that it runs).
fn createrepo_version(bin: &Path) -> anyhow::Result<String> {
    let output = Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", bin.display()))?;
    ensure!(
        output.status.success(),
        "{} --version failed",
        bin.display()
    );
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .split_whitespace()
        .nth(1)
        .unwrap_or(text.trim())
        .to_owned())
}

/// A createrepo_c repository (a directory of `.rpm`s and its `repodata/`), signing `repomd.xml`
/// with a throwaway key when one can be made.
struct Createrepo {
    bin: PathBuf,
    dir: PathBuf,
    /// The key's home, when signing.
    gnupghome: Option<PathBuf>,
    /// Seconds the first `createrepo_c` took.
    setup_seconds: f64,
}

impl Createrepo {
    /// Links `rpms` into a new directory under `root` and runs `createrepo_c --no-database` on it.
    fn create(bin: &Path, root: &Path, rpms: &[Deb]) -> anyhow::Result<Createrepo> {
        let dir = root.join("createrepo");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for rpm in rpms {
            link(&rpm.path, &dir)?;
        }
        let home = root.join("gnupg");
        let gnupghome = match debian::throwaway_key(&home) {
            Ok(_) => Some(home),
            Err(error) => {
                eprintln!("no GnuPG key ({error:#}): createrepo_c's repomd.xml is left unsigned");
                None
            }
        };
        let mut repo = Createrepo {
            bin: bin.to_owned(),
            dir,
            gnupghome,
            setup_seconds: 0.0,
        };
        repo.setup_seconds = repo.createrepo(false)?.as_secs_f64();
        repo.sign()?;
        eprintln!(
            "createrepo_c indexed {} packages in {:.1} s",
            rpms.len(),
            repo.setup_seconds
        );
        Ok(repo)
    }

    /// `createrepo_c [--update] --no-database DIR`; returns how long it ran.
    fn createrepo(&self, update: bool) -> anyhow::Result<Duration> {
        let mut command = Command::new(&self.bin);
        if update {
            command.arg("--update");
        }
        command.args(["--no-database", "--quiet"]).arg(&self.dir);
        run_timed(&mut command, "createrepo_c")
    }

    /// Signs `repodata/repomd.xml` (detached, armoured); returns how long gpg ran (`None`: no key).
    fn sign(&self) -> anyhow::Result<Option<Duration>> {
        let Some(home) = &self.gnupghome else {
            return Ok(None);
        };
        let repodata = self.dir.join("repodata");
        let mut command = Command::new("gpg");
        command
            .args(["--batch", "--yes", "--detach-sign", "--armor", "-o"])
            .arg(repodata.join("repomd.xml.asc"))
            .arg(repodata.join("repomd.xml"))
            .env("GNUPGHOME", home);
        run_timed(&mut command, "gpg --detach-sign").map(Some)
    }

    /// Copies `rpm` in, then updates and signs; returns the two times.
    fn add(&self, rpm: &Deb) -> anyhow::Result<(Duration, Option<Duration>)> {
        let to = self.dir.join(rpm.path.file_name().context("no file name")?);
        std::fs::copy(&rpm.path, &to).with_context(|| format!("copying to {}", to.display()))?;
        let update = self.createrepo(true)?;
        let sign = self.sign()?;
        ensure!(
            contains_package(&debian::gunzip(&self.primary()?.1)?, &rpm.name),
            "createrepo_c's primary lacks {} after --update",
            rpm.name
        );
        Ok((update, sign))
    }

    /// The primary its `repomd.xml` lists: its path and bytes.
    fn primary(&self) -> anyhow::Result<(String, Bytes)> {
        let path = self.dir.join("repodata/repomd.xml");
        let repomd = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let (href, _) =
            primary_of(&repomd).context("createrepo_c's repomd.xml lists no primary")?;
        let path = self.dir.join(&href);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok((href, bytes.into()))
    }
}

/// Hard-links `file` into `dir` (copies it when that fails).
fn link(file: &Path, dir: &Path) -> anyhow::Result<()> {
    let to = dir.join(file.file_name().context("no file name")?);
    if std::fs::hard_link(file, &to).is_err() {
        std::fs::copy(file, &to).with_context(|| format!("copying to {}", to.display()))?;
    }
    Ok(())
}

/// Runs `command` to its end, which must succeed; returns how long it ran.
pub(crate) fn run_timed(command: &mut Command, what: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = command
        .output()
        .with_context(|| format!("running {what}"))?;
    let took = started.elapsed();
    ensure!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_is_found_in_a_repomd() {
        let repomd = br#"<repomd><data type="other"><checksum type="sha256">bb</checksum><location href="repodata/bb-other.xml.gz"/></data><data type="primary"><checksum type="sha256">aa</checksum><open-checksum type="sha256">cc</open-checksum><location href="repodata/aa-primary.xml.gz"/></data></repomd>"#;
        assert_eq!(
            primary_of(repomd),
            Some(("repodata/aa-primary.xml.gz".to_owned(), "aa".to_owned()))
        );
    }
}
