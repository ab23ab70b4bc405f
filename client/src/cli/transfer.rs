//! `arca artifact push|pull <format>`: moving files between the local disk and a registry, with a
//! progress bar on stderr when stderr is a terminal (and silence when it is not). Generic files move
//! as they are; npm tarballs, Python distributions, Maven artifacts, Go modules, crates, gems,
//! Composer zips, conda packages, NuGet packages, Debian and RPM packages and charts are published the way their ecosystems'
//! tools do it (see [`arca_client::Client::push_npm`] and its siblings).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use arca_client::{GenericFile, MavenCoordinates, Progress, Published, UploadedFile, sha256_file};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::Context;
use super::output::{Row, bytes, emit};

/// `arca artifact push` formats.
#[derive(Debug, Subcommand)]
pub enum PushCommand {
    /// Upload a file to a generic registry
    Generic {
        /// Registry name
        registry: String,
        /// The file to upload
        file: PathBuf,
        /// Package name
        #[arg(long)]
        package: String,
        /// Version
        #[arg(long)]
        version: String,
        /// File name in the registry [default: FILE's base name]
        #[arg(long)]
        filename: Option<String>,
    },
    /// Publish an `npm pack` tarball to an npm registry, as `npm publish` does
    Npm {
        /// Registry name
        registry: String,
        /// The tarball (.tgz) `npm pack` made
        tarball: PathBuf,
        /// The dist-tag to point at the version
        #[arg(long, default_value = "latest")]
        tag: String,
    },
    /// Upload wheels and sdists to a PyPI registry, as `twine upload` does
    Python {
        /// Registry name
        registry: String,
        /// Wheels (.whl) and sdists (.tar.gz)
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Publish a crate to a Cargo registry, as `cargo publish` does
    Cargo {
        /// Registry name
        registry: String,
        /// The .crate file `cargo package` made
        #[arg(required_unless_present = "dir", conflicts_with = "dir")]
        crate_file: Option<PathBuf>,
        /// Package the crate in this directory first (runs `cargo package`)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Zip a Go module the way the go command does and upload it to a Go registry
    Go {
        /// Registry name
        registry: String,
        /// The module version (v1.2.3, v2.0.0-rc.1, ...)
        version: String,
        /// The module's directory, holding its go.mod
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Upload a package zip (its composer.json inside) to a Composer registry
    Composer {
        /// Registry name
        registry: String,
        /// The package zip
        zip: PathBuf,
        /// The version [default: the one composer.json says]
        #[arg(long)]
        version: Option<String>,
    },
    /// Upload a conda package to a Conda channel (its info/index.json says where it goes)
    Conda {
        /// Registry name
        registry: String,
        /// The .conda or .tar.bz2 package
        package: PathBuf,
    },
    /// Upload a .deb into a suite and component of a Debian registry (its control file says what
    /// it is)
    Debian {
        /// Registry name
        registry: String,
        /// The .deb file
        package: PathBuf,
        /// The suite (distribution) it goes into: `stable`, `bookworm`...
        #[arg(long)]
        suite: String,
        /// The component within the suite
        #[arg(long, default_value = "main")]
        component: String,
    },
    /// Upload an .rpm to an RPM registry (its headers say what it is)
    Rpm {
        /// Registry name
        registry: String,
        /// The .rpm file
        package: PathBuf,
    },
    /// Push a .nupkg (`nuget pack`, `dotnet pack`) to a NuGet registry, as `nuget push` does
    Nuget {
        /// Registry name
        registry: String,
        /// The .nupkg file
        package: PathBuf,
    },
    /// Push a gem (`gem build`) to a RubyGems registry, as `gem push` does
    Gem {
        /// Registry name
        registry: String,
        /// The .gem file
        gem: PathBuf,
    },
    /// Upload a chart archive (`helm package`) to a Helm registry, as `helm cm-push` does
    Helm {
        /// Registry name
        registry: String,
        /// The chart archive (.tgz)
        chart: PathBuf,
    },
    /// Deploy a file and its POM to a Maven registry, as `mvn deploy` does
    Maven {
        /// Registry name
        registry: String,
        /// The file to deploy (jar, war, zip, ...)
        file: PathBuf,
        /// groupId
        #[arg(long)]
        group: String,
        /// artifactId
        #[arg(long)]
        artifact: String,
        /// Version
        #[arg(long)]
        version: String,
        /// Classifier (sources, javadoc, ...)
        #[arg(long)]
        classifier: Option<String>,
        /// The POM to deploy with it [default: a minimal generated one]
        #[arg(long)]
        pom: Option<PathBuf>,
    },
}

/// `arca artifact pull` formats.
#[derive(Debug, Subcommand)]
pub enum PullCommand {
    /// Download a file from a generic registry
    Generic {
        /// Registry name
        registry: String,
        /// The file to download
        #[arg(value_name = "PACKAGE/VERSION/FILENAME")]
        file: String,
        /// Where to write it; a directory means DEST/FILENAME
        dest: PathBuf,
    },
}

/// The answer of a pull: where the file went and how big it is.
#[derive(Debug, Serialize)]
struct PulledFile {
    path: PathBuf,
    size: u64,
}

impl PushCommand {
    /// Runs the upload.
    pub async fn run(self, context: &Context) -> Result<()> {
        let client = &context.client;
        match self {
            PushCommand::Generic {
                registry,
                file,
                package,
                version,
                filename,
            } => {
                let target = GenericFile {
                    registry,
                    package,
                    version,
                    filename: file_name(&file, filename)?,
                };
                push_generic(context, &target, &file).await
            }
            PushCommand::Npm {
                registry,
                tarball,
                tag,
            } => {
                let published = client.push_npm(&registry, &tarball, &tag).await;
                emit(
                    context.format,
                    &published.with_context(|| tarball.display().to_string())?,
                )
            }
            PushCommand::Python { registry, files } => {
                let mut published = Vec::with_capacity(files.len());
                for file in &files {
                    let pushed = client.push_python(&registry, file).await;
                    published.push(pushed.with_context(|| file.display().to_string())?);
                }
                emit(context.format, &published)
            }
            PushCommand::Cargo {
                registry,
                crate_file,
                dir,
            } => {
                let packaged = tempfile_dir()?;
                let crate_file = match (crate_file, dir) {
                    (Some(file), _) => file,
                    (None, Some(dir)) => package_crate(&dir, packaged.path())?,
                    (None, None) => bail!("give a .crate file or --dir"),
                };
                let published = client.push_cargo(&registry, &crate_file).await;
                emit(
                    context.format,
                    &published.with_context(|| crate_file.display().to_string())?,
                )
            }
            PushCommand::Go {
                registry,
                version,
                dir,
            } => {
                let published = client.push_go(&registry, &version, &dir).await;
                emit(
                    context.format,
                    &published.with_context(|| dir.display().to_string())?,
                )
            }
            PushCommand::Composer {
                registry,
                zip,
                version,
            } => {
                let published = client
                    .push_composer(&registry, &zip, version.as_deref())
                    .await;
                emit(
                    context.format,
                    &published.with_context(|| zip.display().to_string())?,
                )
            }
            PushCommand::Conda { registry, package } => {
                let published = client.push_conda(&registry, &package).await;
                emit(
                    context.format,
                    &published.with_context(|| package.display().to_string())?,
                )
            }
            PushCommand::Debian {
                registry,
                package,
                suite,
                component,
            } => {
                let published = client
                    .push_debian(&registry, &package, &suite, &component)
                    .await;
                emit(
                    context.format,
                    &published.with_context(|| package.display().to_string())?,
                )
            }
            PushCommand::Rpm { registry, package } => {
                let published = client.push_rpm(&registry, &package).await;
                emit(
                    context.format,
                    &published.with_context(|| package.display().to_string())?,
                )
            }
            PushCommand::Nuget { registry, package } => {
                let published = client.push_nuget(&registry, &package).await;
                emit(
                    context.format,
                    &published.with_context(|| package.display().to_string())?,
                )
            }
            PushCommand::Gem { registry, gem } => {
                let published = client.push_gem(&registry, &gem).await;
                emit(
                    context.format,
                    &published.with_context(|| gem.display().to_string())?,
                )
            }
            PushCommand::Helm { registry, chart } => {
                let published = client.push_helm(&registry, &chart).await;
                emit(
                    context.format,
                    &published.with_context(|| chart.display().to_string())?,
                )
            }
            PushCommand::Maven {
                registry,
                file,
                group,
                artifact,
                version,
                classifier,
                pom,
            } => {
                let coordinates = MavenCoordinates {
                    group,
                    artifact,
                    version,
                    classifier,
                };
                let published = client
                    .push_maven(&registry, &file, &coordinates, pom.as_deref())
                    .await;
                emit(
                    context.format,
                    &published.with_context(|| file.display().to_string())?,
                )
            }
        }
    }
}

/// A directory for `cargo package` to write into, removed afterwards.
fn tempfile_dir() -> Result<tempfile::TempDir> {
    tempfile::tempdir().context("making a directory for cargo package")
}

/// Runs `cargo package` for the crate in `dir`, its output in `target_dir`; returns the `.crate`.
fn package_crate(dir: &Path, target_dir: &Path) -> Result<PathBuf> {
    let status = std::process::Command::new("cargo")
        .arg("package")
        .arg("--no-verify")
        .arg("--allow-dirty")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .context("running cargo package (is cargo installed?)")?;
    if !status.success() {
        bail!("cargo package failed in {}", dir.display());
    }
    let packaged = target_dir.join("package");
    let mut crates = std::fs::read_dir(&packaged)
        .with_context(|| format!("reading {}", packaged.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "crate"));
    match (crates.next(), crates.next()) {
        (Some(file), None) => Ok(file),
        _ => bail!(
            "cargo package left no single .crate in {}",
            packaged.display()
        ),
    }
}

/// The registry file name of a generic push: `--filename`, else the local file's base name.
fn file_name(file: &Path, filename: Option<String>) -> Result<String> {
    Ok(match filename {
        Some(filename) => filename,
        None => file
            .file_name()
            .and_then(|name| name.to_str())
            .map(str::to_string)
            .with_context(|| {
                format!(
                    "{} has no usable file name: pass --filename",
                    file.display()
                )
            })?,
    })
}

/// A generic push: hashes the file, then streams it with its sha256 for the server to verify.
async fn push_generic(context: &Context, target: &GenericFile, file: &Path) -> Result<()> {
    let bar = progress_bar()?;
    bar.set_message("hashing");
    let sha256 = sha256_file(file, follow(&bar))
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    bar.reset();
    bar.set_message("uploading");
    let pushed = context
        .client
        .push_generic(target, file, Some(sha256), follow(&bar))
        .await;
    bar.finish_and_clear();
    emit(context.format, &pushed?)
}

impl PullCommand {
    /// Runs the download into `dest`, or into `dest/FILENAME` when `dest` is a directory or ends
    /// with a slash (a directory created, with its parents, when missing).
    pub async fn run(self, context: &Context) -> Result<()> {
        let PullCommand::Generic {
            registry,
            file,
            dest,
        } = self;
        let (package, version, filename) = parse_file_path(&file)?;
        let names_a_directory = dest.as_os_str().to_string_lossy().ends_with('/');
        if names_a_directory && !dest.is_dir() {
            std::fs::create_dir_all(&dest)
                .with_context(|| format!("creating directory {}", dest.display()))?;
        }
        let path = if dest.is_dir() {
            dest.join(filename)
        } else {
            dest
        };
        let source = GenericFile {
            registry,
            package: package.to_string(),
            version: version.to_string(),
            filename: filename.to_string(),
        };
        let bar = progress_bar()?;
        bar.set_message("downloading");
        let pulled = context
            .client
            .pull_generic(&source, &path, follow(&bar))
            .await;
        bar.finish_and_clear();
        let size = pulled.with_context(|| format!("writing {}", path.display()))?;
        emit(context.format, &PulledFile { path, size })
    }
}

/// `PACKAGE/VERSION/FILENAME` -> its parts: the file name is the last segment, the version the one
/// before, the package everything before that (it may contain '/').
fn parse_file_path(text: &str) -> Result<(&str, &str, &str)> {
    let parts = text.rsplit_once('/').and_then(|(rest, filename)| {
        let (package, version) = rest.rsplit_once('/')?;
        Some((package, version, filename))
    });
    match parts {
        Some((package, version, filename))
            if !package.is_empty() && !version.is_empty() && !filename.is_empty() =>
        {
            if matches!(filename, "." | "..") {
                bail!("invalid file name {filename:?}");
            }
            Ok((package, version, filename))
        }
        _ => bail!("invalid file {text:?}: expected PACKAGE/VERSION/FILENAME"),
    }
}

/// A byte progress bar on stderr when stderr is a terminal; a hidden one otherwise.
fn progress_bar() -> Result<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let style = ProgressStyle::with_template(
        "{msg:>11} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )?
    .progress_chars("=> ");
    Ok(ProgressBar::no_length().with_style(style))
}

/// A progress callback that moves `bar`.
fn follow(bar: &ProgressBar) -> impl Fn(Progress) + Send + Sync + 'static {
    let bar = bar.clone();
    move |progress| {
        if let Some(total) = progress.total {
            bar.set_length(total);
        }
        bar.set_position(progress.done);
    }
}

impl Row for UploadedFile {
    const HEADERS: &'static [&'static str] =
        &["REGISTRY", "PACKAGE", "VERSION", "FILE", "SIZE", "SHA256"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.registry.clone(),
            self.package.clone(),
            self.version.clone(),
            self.filename.clone(),
            bytes(self.size),
            self.sha256.to_hex(),
        ]
    }
}

impl Row for Published {
    const HEADERS: &'static [&'static str] = &[
        "ECOSYSTEM",
        "REGISTRY",
        "PACKAGE",
        "VERSION",
        "TAGS",
        "FILES",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.ecosystem.to_string(),
            self.registry.clone(),
            self.package.clone(),
            self.version.clone(),
            self.tags.join(", "),
            self.files.join("\n"),
        ]
    }
}

impl Row for PulledFile {
    const HEADERS: &'static [&'static str] = &["PATH", "SIZE"];

    fn cells(&self) -> Vec<String> {
        vec![self.path.display().to_string(), bytes(self.size)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths_keep_slashes_in_the_package() {
        assert_eq!(
            parse_file_path("org/tool/1.0/tool.tar.gz").expect("valid"),
            ("org/tool", "1.0", "tool.tar.gz")
        );
        for bad in ["pkg/1.0", "pkg/1.0/", "/1.0/f", "pkg//f", "pkg/1.0/.."] {
            assert!(parse_file_path(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
