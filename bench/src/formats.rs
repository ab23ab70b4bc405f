//! The `formats` benchmark: the Cargo, Helm, Go, RubyGems, Composer, Conda and NuGet front-ends read
//! the way their clients read them — sparse index files and `.crate` downloads, `index.yaml` and
//! chart archives, module version lists and zips, compact index info files and gems, `p2` metadata
//! files and dist zips, a subdir's `repodata.json` and `.conda` packages, v3 registration indexes
//! and `.nupkg`s from the flat container, Hugging Face repository information and files (each
//! version a commit adding one) — from a node running
//! in this process, against the very same bytes served from memory by a plain static file server
//! beside it. The static server is the limit: what answering those GETs costs with no registry
//! behind them (no authentication, no metadata reads, no rendering, no chunk reads).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;
use reqwest::{Method, StatusCode, Url};

use crate::archives;
use crate::common::{self, expect_status};
use crate::packages::{Auth, Dataset, Item, Served, Target, Timing, for_every_package};
use crate::report::PackagesReport;

/// Packages published at a time while setting up.
const PUBLISH_CONCURRENCY: usize = 16;
/// Concurrent readers of the verification pass.
const VERIFY_CONCURRENCY: usize = 32;

/// Options of `arca-bench formats`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Crates, and as many charts, Go modules, gems, Composer, conda and NuGet packages and Hugging
    /// Face repositories, to publish.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    packages: u64,
    /// Versions of each.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    versions: u64,
    /// Concurrent clients of every measurement.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    clients: u64,
    /// Seconds each run of a measurement lasts.
    #[arg(long, default_value_t = 5.0, value_parser = common::positive)]
    seconds: f64,
    /// Runs of each measurement against each server (alternating which goes first).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    runs: u64,
    /// Directory under which a temporary directory for the node's data is made (and removed at the
    /// end). Defaults to the current directory.
    #[arg(long, default_value = ".")]
    dir: std::path::PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let clients = usize::try_from(args.clients).context("--clients is too large")?;
    let timing = Timing {
        clients,
        runs: usize::try_from(args.runs).context("--runs is too large")?,
        seconds: Duration::from_secs_f64(args.seconds),
    };
    let dataset = Dataset {
        packages: args.packages,
        versions: args.versions,
    };
    let (temp, root) = common::temp_root(&args.dir)?;
    let node = common::start_node(root.join("arca")).await?;
    let measured = measure(&node, dataset, &timing).await;
    let stopped = node.shutdown().await.context("stopping the node");
    let removed = temp
        .close()
        .with_context(|| format!("removing {}", root.display()));
    let (rows, setup_seconds) = measured?;
    stopped?;
    removed?;
    let report = PackagesReport {
        benchmark: "formats",
        peers: vec!["the same bytes as static files, served from memory (axum)".to_owned()],
        packages: dataset.packages,
        versions: dataset.versions,
        clients,
        seconds: args.seconds,
        runs: timing.runs,
        setup_seconds,
        dir: root.display().to_string(),
        rows,
        notes: vec![
            "cargo index file: GET /cargo/<r>/index/<prefix>/<crate> (one line per version); \
             .crate: GET .../api/v1/crates/<crate>/<version>/download"
                .to_owned(),
            "helm index.yaml: GET /helm/<r>/index.yaml listing every chart version; chart: GET \
             /helm/<r>/charts/<chart>-<version>.tgz"
                .to_owned(),
            "go list: GET /go/<r>/<module>/@v/list (one line per version); module zip: GET \
             /go/<r>/<module>/@v/<version>.zip"
                .to_owned(),
            "gem info file: GET /rubygems/<r>/info/<gem> (one line per version); gem: GET \
             /rubygems/<r>/gems/<gem>-<version>.gem"
                .to_owned(),
            "composer p2 file: GET /composer/<r>/p2/<vendor>/<name>.json (every version); dist: \
             GET /composer/<r>/dist/<vendor>/<name>/<version>.zip"
                .to_owned(),
            "conda repodata.json: GET /conda/<r>/noarch/repodata.json listing every package; \
             package: GET /conda/<r>/noarch/<name>-<version>-0.conda"
                .to_owned(),
            "nuget registration: GET /nuget/<r>/v3/registration/<id>/index.json; .nupkg: GET \
             /nuget/<r>/v3/flatcontainer/<id>/<version>/<id>.<version>.nupkg"
                .to_owned(),
            "hf repo info: GET /hf/<r>/api/models/<id>/revision/main (its files); hf file: GET \
             /hf/<r>/<id>/resolve/main/<file> (16 KiB, one added per commit)"
                .to_owned(),
            "the static server answers the bytes Arca gave for each URL, from a hash map"
                .to_owned(),
        ],
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Publishes the dataset, reads every page and file back (checked), serves the same bytes
/// statically and measures both. Returns the rows and the setup time.
async fn measure(
    node: &arca_node::RunningNode,
    dataset: Dataset,
    timing: &Timing,
) -> anyhow::Result<(Vec<crate::report::RequestRow>, f64)> {
    let token = common::admin_token(node).await?;
    let base = format!("http://{}", node.http_addr);
    let http = reqwest::Client::new();
    common::create_registry(&http, &base, &token, "crates", "CARGO").await?;
    common::create_registry(&http, &base, &token, "charts", "HELM").await?;
    common::create_registry(&http, &base, &token, "gomods", "GO").await?;
    common::create_registry(&http, &base, &token, "gems", "RUBYGEMS").await?;
    common::create_registry(&http, &base, &token, "php", "COMPOSER").await?;
    common::create_registry(&http, &base, &token, "channel", "CONDA").await?;
    common::create_registry(&http, &base, &token, "feed", "NUGET").await?;
    common::create_registry(&http, &base, &token, "models", "HUGGINGFACE").await?;
    let arca = Target::new(
        "arca",
        Url::parse(&format!("{base}/"))?,
        Auth::Bearer(token),
        timing.clients,
    )?;

    let started = Instant::now();
    let publisher = arca.clone();
    for_every_package(dataset, PUBLISH_CONCURRENCY, move |package| {
        let arca = publisher.clone();
        async move { publish(&arca, dataset, package).await }
    })
    .await?;
    let setup_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "published {} packages of each format, {} versions each, in {setup_seconds:.1} s",
        dataset.packages, dataset.versions
    );

    let mut copies = HashMap::new();
    let cargo = read_per_package(&arca, dataset, &CARGO, &mut copies).await?;
    let helm = read_helm(&arca, dataset, &mut copies).await?;
    let go = read_per_package(&arca, dataset, &GO, &mut copies).await?;
    let gems = read_per_package(&arca, dataset, &GEMS, &mut copies).await?;
    let composer = read_per_package(&arca, dataset, &COMPOSER, &mut copies).await?;
    let conda = read_conda(&arca, dataset, &mut copies).await?;
    let nuget = read_per_package(&arca, dataset, &NUGET, &mut copies).await?;
    let hf = read_per_package(&arca, dataset, &HUGGING_FACE, &mut copies).await?;
    let (static_base, server) = serve_static(copies).await?;
    let plain = Target::new("static", static_base, Auth::None, timing.clients)?;
    let rebase = |served: &Served| -> anyhow::Result<Served> {
        let moved = |items: &[Item]| -> anyhow::Result<Vec<Item>> {
            items
                .iter()
                .map(|item| {
                    Ok(Item {
                        url: plain.url(item.url.path().trim_start_matches('/'))?,
                        len: item.len,
                    })
                })
                .collect()
        };
        Ok(Served {
            pages: moved(&served.pages)?,
            files: moved(&served.files)?,
        })
    };
    // Each format read: its metadata page row and its file row.
    let formats = [
        (&cargo, "cargo index file", "cargo .crate"),
        (&helm, "helm index.yaml", "helm chart"),
        (&go, "go @v/list", "go module zip"),
        (&gems, "gem info file", ".gem"),
        (&composer, "composer p2 file", "composer dist"),
        (&conda, "conda repodata.json", "conda package"),
        (&nuget, "nuget registration", ".nupkg"),
        (&hf, "hf repo info", "hf file"),
    ];
    let targets = [&arca, &plain];
    let mut rows = Vec::new();
    let measured = async {
        for (served, page_label, file_label) in formats {
            let same_bytes = rebase(served)?;
            for (label, files) in [(page_label, false), (file_label, true)] {
                rows.push(
                    timing
                        .row(label, targets, [served, &same_bytes], files, None)
                        .await?,
                );
            }
        }
        anyhow::Ok(())
    }
    .await;
    server.abort();
    measured?;
    Ok((rows, setup_seconds))
}

/// Publishes every version of crate and chart `package`.
async fn publish(arca: &Target, dataset: Dataset, package: u64) -> anyhow::Result<()> {
    let name = Dataset::name(package);
    let create = serde_json::json!({ "name": format!("bench/{name}") }).to_string();
    send(
        arca,
        Method::POST,
        "hf/models/api/repos/create",
        create.into_bytes(),
        StatusCode::OK,
    )
    .await?;
    for index in 0..dataset.versions {
        let version = Dataset::version(index);
        let go_version = format!("v{version}");
        // What each client sends to publish: the request, its body, the answer it expects.
        let uploads = [
            (
                Method::PUT,
                "cargo/crates/api/v1/crates/new".to_owned(),
                archives::crate_publish(&name, &version)?,
                StatusCode::OK,
            ),
            (
                Method::POST,
                "helm/charts/api/charts".to_owned(),
                archives::chart(&name, &version)?,
                StatusCode::CREATED,
            ),
            (
                Method::PUT,
                format!("go/gomods/example.com/{name}/@v/{go_version}.zip"),
                archives::go_module_zip(&name, &go_version)?,
                StatusCode::CREATED,
            ),
            (
                Method::POST,
                "rubygems/gems/api/v1/gems".to_owned(),
                archives::gem(&name, &version)?,
                StatusCode::OK,
            ),
            (
                Method::PUT,
                format!("composer/php/packages/bench/{name}/{version}"),
                archives::composer_zip(&name)?,
                StatusCode::CREATED,
            ),
            (
                Method::PUT,
                format!("conda/channel/{name}-{version}-0.conda"),
                archives::conda_package(&name, &version)?,
                StatusCode::CREATED,
            ),
            (
                Method::PUT,
                "nuget/feed/api/v2/package".to_owned(),
                archives::nupkg(&name, &version)?,
                StatusCode::CREATED,
            ),
            (
                Method::POST,
                format!("hf/models/api/models/bench/{name}/commit/main"),
                archives::hf_commit(&name, &version),
                StatusCode::OK,
            ),
        ];
        for (method, path, body, expected) in uploads {
            send(arca, method, &path, body, expected).await?;
        }
    }
    Ok(())
}

/// Sends one publishing request and checks its answer.
async fn send(
    arca: &Target,
    method: Method,
    path: &str,
    body: Vec<u8>,
    expected: StatusCode,
) -> anyhow::Result<()> {
    let what = format!("{method} {path}");
    let response = arca
        .request(method, arca.url(path)?)
        .body(body)
        .send()
        .await
        .with_context(|| what.clone())?;
    expect_status(response, expected, &what).await.map(drop)
}

/// The path of a crate's index file.
fn index_path(name: &str) -> String {
    format!("{}/{}/{name}", &name[..2], &name[2..4])
}

/// GETs `path` from Arca, keeping a copy of the bytes for the static server; the item to time.
async fn fetch(arca: &Target, path: &str) -> anyhow::Result<(Item, String, Bytes)> {
    let url = arca.url(path)?;
    let (_, body) = arca.get(&url, None).await?;
    Ok((
        Item {
            url,
            len: body.len() as u64,
        },
        path.to_owned(),
        body,
    ))
}

/// How a per-package format is read: its page of one package, how many versions that page lists,
/// and the URL of each version's file.
struct PerPackage {
    page: fn(&str) -> String,
    listed: fn(&[u8], &str) -> usize,
    file: fn(&str, &str) -> String,
}

/// Non-empty lines of a page.
fn lines(page: &[u8], _name: &str) -> usize {
    page.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count()
}

/// The cargo index file and `.crate` downloads.
const CARGO: PerPackage = PerPackage {
    page: |name| format!("cargo/crates/index/{}", index_path(name)),
    listed: lines,
    file: |name, version| format!("cargo/crates/api/v1/crates/{name}/{version}/download"),
};

/// The Go version list and module zips.
const GO: PerPackage = PerPackage {
    page: |name| format!("go/gomods/example.com/{name}/@v/list"),
    listed: lines,
    file: |name, version| format!("go/gomods/example.com/{name}/@v/v{version}.zip"),
};

/// The compact index info file (after its `---` line) and gems.
const GEMS: PerPackage = PerPackage {
    page: |name| format!("rubygems/gems/info/{name}"),
    listed: |page, name| lines(page, name).saturating_sub(1),
    file: |name, version| format!("rubygems/gems/gems/{name}-{version}.gem"),
};

/// The Composer p2 metadata file and dist zips.
const COMPOSER: PerPackage = PerPackage {
    page: |name| format!("composer/php/p2/bench/{name}.json"),
    listed: |page, name| {
        serde_json::from_slice::<serde_json::Value>(page)
            .ok()
            .and_then(|document| {
                document["packages"][format!("bench/{name}")]
                    .as_array()
                    .map(Vec::len)
            })
            .unwrap_or(0)
    },
    file: |name, version| format!("composer/php/dist/bench/{name}/{version}.zip"),
};

/// The v3 registration index (one page, every version inlined) and `.nupkg`s.
const NUGET: PerPackage = PerPackage {
    page: |name| format!("nuget/feed/v3/registration/{name}/index.json"),
    listed: |page, _| {
        serde_json::from_slice::<serde_json::Value>(page)
            .ok()
            .and_then(|document| document["items"][0]["items"].as_array().map(Vec::len))
            .unwrap_or(0)
    },
    file: |name, version| {
        format!("nuget/feed/v3/flatcontainer/{name}/{version}/{name}.{version}.nupkg")
    },
};

/// A Hugging Face repository's information at `main` (whose tree holds one file per version, each
/// added by a commit) and those files.
const HUGGING_FACE: PerPackage = PerPackage {
    page: |name| format!("hf/models/api/models/bench/{name}/revision/main"),
    listed: |page, _| {
        serde_json::from_slice::<serde_json::Value>(page)
            .ok()
            .and_then(|info| {
                info["siblings"].as_array().map(|files| {
                    files
                        .iter()
                        .filter(|f| {
                            f["rfilename"]
                                .as_str()
                                .is_some_and(|n| n.starts_with("weights-"))
                        })
                        .count()
                })
            })
            .unwrap_or(0)
    },
    file: |name, version| format!("hf/models/bench/{name}/resolve/main/weights-{version}.bin"),
};

/// Reads every package's page (which must list every version) and every version's file once.
async fn read_per_package(
    arca: &Target,
    dataset: Dataset,
    format: &'static PerPackage,
    copies: &mut HashMap<String, Bytes>,
) -> anyhow::Result<Served> {
    let reader = arca.clone();
    let read = for_every_package(dataset, VERIFY_CONCURRENCY, move |package| {
        let arca = reader.clone();
        async move {
            let name = Dataset::name(package);
            let page = fetch(&arca, &(format.page)(&name)).await?;
            let listed = (format.listed)(&page.2, &name);
            ensure!(
                listed as u64 == dataset.versions,
                "{}: lists {listed} versions",
                page.1
            );
            let mut files = Vec::new();
            for index in 0..dataset.versions {
                let version = Dataset::version(index);
                files.push(fetch(&arca, &(format.file)(&name, &version)).await?);
            }
            Ok((page, files))
        }
    })
    .await?;
    Ok(collect(read, copies))
}

/// Reads `index.yaml` (which must list every chart version) and every chart archive once.
async fn read_helm(
    arca: &Target,
    dataset: Dataset,
    copies: &mut HashMap<String, Bytes>,
) -> anyhow::Result<Served> {
    let index = fetch(arca, "helm/charts/index.yaml").await?;
    // Every entry has one digest.
    let entries = String::from_utf8_lossy(&index.2)
        .matches("digest: ")
        .count();
    ensure!(
        entries as u64 == dataset.packages * dataset.versions,
        "index.yaml lists {entries} chart versions"
    );
    let reader = arca.clone();
    let read = for_every_package(dataset, VERIFY_CONCURRENCY, move |package| {
        let arca = reader.clone();
        async move {
            let name = Dataset::name(package);
            let mut files = Vec::new();
            for index in 0..dataset.versions {
                let version = Dataset::version(index);
                files
                    .push(fetch(&arca, &format!("helm/charts/charts/{name}-{version}.tgz")).await?);
            }
            Ok(files)
        }
    })
    .await?;
    Ok(collect(
        vec![(index, read.into_iter().flatten().collect())],
        copies,
    ))
}

/// Reads `noarch/repodata.json` (which must list every package) and every package once.
async fn read_conda(
    arca: &Target,
    dataset: Dataset,
    copies: &mut HashMap<String, Bytes>,
) -> anyhow::Result<Served> {
    let repodata = fetch(arca, "conda/channel/noarch/repodata.json").await?;
    let document: serde_json::Value = serde_json::from_slice(&repodata.2)?;
    let listed = document["packages.conda"]
        .as_object()
        .map_or(0, serde_json::Map::len);
    ensure!(
        listed as u64 == dataset.packages * dataset.versions,
        "repodata.json lists {listed} packages"
    );
    let reader = arca.clone();
    let read = for_every_package(dataset, VERIFY_CONCURRENCY, move |package| {
        let arca = reader.clone();
        async move {
            let name = Dataset::name(package);
            let mut files = Vec::new();
            for index in 0..dataset.versions {
                let version = Dataset::version(index);
                files.push(
                    fetch(
                        &arca,
                        &format!("conda/channel/noarch/{name}-{version}-0.conda"),
                    )
                    .await?,
                );
            }
            Ok(files)
        }
    })
    .await?;
    Ok(collect(
        vec![(repodata, read.into_iter().flatten().collect())],
        copies,
    ))
}

type Fetched = (Item, String, Bytes);

/// The pages and files read, their bytes kept for the static server.
fn collect(read: Vec<(Fetched, Vec<Fetched>)>, copies: &mut HashMap<String, Bytes>) -> Served {
    let mut served = Served {
        pages: Vec::new(),
        files: Vec::new(),
    };
    for (page, files) in read {
        let (item, path, body) = page;
        copies.insert(format!("/{path}"), body);
        served.pages.push(item);
        for (item, path, body) in files {
            copies.insert(format!("/{path}"), body);
            served.files.push(item);
        }
    }
    served
}

/// Serves `copies` (path to bytes) on a free port of 127.0.0.1; returns its base URL and its task.
pub async fn serve_static(
    copies: HashMap<String, Bytes>,
) -> anyhow::Result<(Url, tokio::task::JoinHandle<()>)> {
    let copies = Arc::new(copies);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let copies = copies.clone();
        async move {
            match copies.get(uri.path()) {
                Some(body) => (StatusCode::OK, body.clone()),
                None => (StatusCode::NOT_FOUND, Bytes::new()),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("the static server stopped: {error}");
        }
    });
    Ok((Url::parse(&format!("http://{address}/"))?, server))
}
