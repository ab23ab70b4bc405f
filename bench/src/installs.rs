//! The `installs` benchmark: how long the real go command takes to download a dependency graph
//! through a Go registry of a node running in this process, against the very same module files
//! read straight from disk (`GOPROXY=file:///...`, the limit: no network, no registry). The graph:
//! `--modules` modules of two versions each, every module requiring the next three (v1.1.0 raising
//! some of them to v1.1.0), and a program requiring all, every third at v1.1.0, so minimal version
//! selection reads both versions' `go.mod` of many modules and has choices to make. Each run
//! starts from an empty module cache; runs alternate which source goes first.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use reqwest::StatusCode;
use serde::Serialize;

use crate::common::{self, expect_status};

/// Options of `arca-bench installs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Modules in the graph (each at two versions).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(4..=2000))]
    modules: u64,
    /// Downloads of the whole graph from each source.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    runs: u64,
    /// The go command to run.
    #[arg(long, default_value = "go")]
    go: PathBuf,
    /// Directory under which a temporary directory for the node's data, the module files and the
    /// go caches is made (and removed at the end). Defaults to the current directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    benchmark: &'static str,
    modules: u64,
    module_versions: u64,
    runs: u64,
    arca_seconds: Vec<f64>,
    files_seconds: Vec<f64>,
    arca_median_seconds: f64,
    files_median_seconds: f64,
    /// Median time through Arca over median time from the files (lower is better for Arca).
    ratio: f64,
    command: &'static str,
}

/// The module path of module `index`.
fn module_path(index: u64) -> String {
    format!("example.com/bench/m{index:04}")
}

/// The `go.mod` of module `index` at `version` (`v1.0.0` or `v1.1.0`): it requires the next three
/// modules, at v1.1.0 when `version` is v1.1.0 and the dependency's index is even, else v1.0.0.
fn go_mod(index: u64, version: &str, modules: u64) -> String {
    let mut text = format!("module {}\n\ngo 1.21\n", module_path(index));
    let requires: Vec<String> = (index + 1..modules.min(index + 4))
        .map(|dependency| {
            let wanted = if version == "v1.1.0" && dependency % 2 == 0 {
                "v1.1.0"
            } else {
                "v1.0.0"
            };
            format!("\t{} {wanted}\n", module_path(dependency))
        })
        .collect();
    if !requires.is_empty() {
        text.push_str(&format!("\nrequire (\n{})\n", requires.concat()));
    }
    text
}

/// The module zip of module `index` at `version`.
fn module_zip(index: u64, version: &str, modules: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let path = module_path(index);
    let root = format!("{path}@{version}");
    let package = format!("m{index:04}");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (file, text) in [
        (format!("{root}/go.mod"), go_mod(index, version, modules)),
        (
            format!("{root}/{package}.go"),
            format!("package {package}\n\nconst Version = {version:?}\n"),
        ),
    ] {
        zip.start_file(file, options)?;
        zip.write_all(text.as_bytes())?;
    }
    Ok(zip.finish()?.into_inner())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (temp, root) = common::temp_root(&args.dir)?;
    let node = common::start_node(root.join("arca")).await?;
    let measured = measure(&node, &root, &args).await;
    let stopped = node.shutdown().await.context("stopping the node");
    let removed = temp
        .close()
        .with_context(|| format!("removing {}", root.display()));
    let report = measured?;
    stopped?;
    removed?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "arca-bench installs  modules={}  module versions={}  runs={}",
            report.modules, report.module_versions, report.runs
        );
        println!("`{}` with an empty module cache", report.command);
        println!("{:<34}{:>10}   runs", "source", "median s");
        let runs = |seconds: &[f64]| {
            seconds
                .iter()
                .map(|s| format!("{s:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "{:<34}{:>10.2}   {}",
            "Arca (GOPROXY=http://...)",
            report.arca_median_seconds,
            runs(&report.arca_seconds)
        );
        println!(
            "{:<34}{:>10.2}   {}",
            "the files (GOPROXY=file://...)",
            report.files_median_seconds,
            runs(&report.files_seconds)
        );
        println!("Arca / files: {:.2}", report.ratio);
    }
    Ok(())
}

async fn measure(
    node: &arca_node::RunningNode,
    root: &Path,
    args: &Args,
) -> anyhow::Result<Report> {
    let token = common::admin_token(node).await?;
    let base = format!("http://{}", node.http_addr);
    let http = reqwest::Client::new();
    let what = "creating the GO registry gomods";
    let response = http
        .post(format!("{base}/api/v1/registries"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "name": "gomods", "package_type": "GO", "allow_anonymous_read": true,
        }))
        .send()
        .await
        .context(what)?;
    expect_status(response, StatusCode::CREATED, what).await?;

    // Publish every module version to Arca, and write the files Arca serves for it into a
    // file:// module proxy tree.
    let files_proxy = root.join("files-proxy");
    let mut requires = String::new();
    for index in 0..args.modules {
        let path = module_path(index);
        let dir = files_proxy.join(&path).join("@v");
        std::fs::create_dir_all(&dir)?;
        for version in ["v1.0.0", "v1.1.0"] {
            let what = format!("uploading {path}@{version}");
            let response = http
                .put(format!("{base}/go/gomods/{path}/@v/{version}.zip"))
                .bearer_auth(&token)
                .body(module_zip(index, version, args.modules)?)
                .send()
                .await
                .with_context(|| what.clone())?;
            expect_status(response, StatusCode::CREATED, &what).await?;
            for extension in ["info", "mod", "zip"] {
                let url = format!("{base}/go/gomods/{path}/@v/{version}.{extension}");
                let response = http.get(&url).send().await?;
                let bytes = expect_status(response, StatusCode::OK, &url)
                    .await?
                    .bytes()
                    .await?;
                std::fs::write(dir.join(format!("{version}.{extension}")), bytes)?;
            }
        }
        let list = http
            .get(format!("{base}/go/gomods/{path}/@v/list"))
            .send()
            .await?;
        let list = expect_status(list, StatusCode::OK, "the version list")
            .await?
            .bytes()
            .await?;
        std::fs::write(dir.join("list"), list)?;
        // Every third module at v1.1.0, whose requirements raise others to v1.1.0 in turn.
        let wanted = if index % 3 == 0 { "v1.1.0" } else { "v1.0.0" };
        requires.push_str(&format!("\t{path} {wanted}\n"));
    }
    let app = root.join("app");
    std::fs::create_dir_all(&app)?;
    std::fs::write(
        app.join("go.mod"),
        format!("module example.com/bench/app\n\ngo 1.21\n\nrequire (\n{requires})\n"),
    )?;

    let arca_proxy = format!("{base}/go/gomods");
    let files_url = format!("file://{}", files_proxy.display());
    let (mut arca_seconds, mut files_seconds) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        let order: [(&str, &mut Vec<f64>); 2] = if run % 2 == 0 {
            [
                (&arca_proxy, &mut arca_seconds),
                (&files_url, &mut files_seconds),
            ]
        } else {
            [
                (&files_url, &mut files_seconds),
                (&arca_proxy, &mut arca_seconds),
            ]
        };
        for (proxy, seconds) in order {
            let (go, app, root, proxy) = (
                args.go.clone(),
                app.clone(),
                root.to_path_buf(),
                proxy.to_string(),
            );
            let modules = args.modules;
            let took =
                common::blocking(move || download_graph(&go, &app, &root, &proxy, modules)).await?;
            seconds.push(took.as_secs_f64());
        }
    }
    let median = |seconds: &[f64]| {
        let mut sorted = seconds.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    let (arca_median, files_median) = (median(&arca_seconds), median(&files_seconds));
    Ok(Report {
        benchmark: "installs",
        modules: args.modules,
        module_versions: args.modules * 2,
        runs: args.runs,
        arca_median_seconds: arca_median,
        files_median_seconds: files_median,
        ratio: arca_median / files_median.max(1e-9),
        arca_seconds,
        files_seconds,
        command: "go mod download all",
    })
}

/// Empties the module cache, then times `go mod download all` in `app` through `proxy`, and
/// checks that minimal version selection picked what the graph asks for.
fn download_graph(
    go: &Path,
    app: &Path,
    root: &Path,
    proxy: &str,
    modules: u64,
) -> anyhow::Result<Duration> {
    let cache = root.join("go-cache");
    let run = |args: &[&str], proxy: &str| -> anyhow::Result<std::process::Output> {
        let output = Command::new(go)
            .args(args)
            .current_dir(app)
            .env("HOME", root)
            .env("GOPATH", cache.join("gopath"))
            .env("GOMODCACHE", cache.join("mod"))
            .env("GOCACHE", cache.join("build"))
            .env("GOPROXY", proxy)
            .env("GOFLAGS", "-mod=mod")
            .env("GOSUMDB", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GOTELEMETRY", "off")
            .env("GOENV", "off")
            .output()
            .with_context(|| format!("running {}", go.display()))?;
        if !output.status.success() {
            bail!(
                "go {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(output)
    };
    run(&["clean", "-modcache"], "off")?;
    let _ = std::fs::remove_file(app.join("go.sum"));
    let started = Instant::now();
    run(&["mod", "download", "all"], proxy)?;
    let took = started.elapsed();
    // The build list: the program and every module once, some raised to v1.1.0.
    let listed = run(&["list", "-m", "all"], "off")?;
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    ensure!(
        listed.lines().count() as u64 == modules + 1 && listed.contains(" v1.1.0"),
        "go list -m all after the download:\n{listed}"
    );
    Ok(took)
}
