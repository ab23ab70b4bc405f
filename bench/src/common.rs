//! Plumbing every benchmark shares: the temporary directory, the node started in this process, the
//! registries it is given, and checking HTTP answers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

/// How much a download buffers before each write into its file.
const WRITE_BUFFER: usize = 2 << 20;

/// Makes `dir` if needed and a temporary directory `arca-bench-*` inside it (removed when the returned
/// guard is closed or dropped), and returns the guard and the directory's canonical path.
pub fn temp_root(dir: &Path) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let temp = tempfile::Builder::new()
        .prefix("arca-bench-")
        .tempdir_in(dir)
        .with_context(|| format!("making a temporary directory in {}", dir.display()))?;
    let root = std::fs::canonicalize(temp.path())?;
    Ok((temp, root))
}

/// Starts a node in this process, serving HTTP on a free port of 127.0.0.1, with its data in
/// `data_dir`.
pub async fn start_node(data_dir: PathBuf) -> anyhow::Result<arca_node::RunningNode> {
    arca_node::start(arca_node::config::Config {
        http: "127.0.0.1:0".parse()?,
        quic: "127.0.0.1:0".parse()?,
        data_dir,
        ..Default::default()
    })
    .await
    .context("starting the node")
}

/// The admin token the node wrote on its first start.
pub async fn admin_token(node: &arca_node::RunningNode) -> anyhow::Result<String> {
    let token = tokio::fs::read_to_string(&node.admin_token_path)
        .await
        .with_context(|| format!("reading {}", node.admin_token_path.display()))?;
    Ok(token.trim().to_owned())
}

/// Creates the registry `name` of `package_type` (`"GENERIC"`, `"DOCKER"`, ...) through the management
/// API at `base` (`http://host:port`, no trailing slash).
pub async fn create_registry(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    package_type: &str,
) -> anyhow::Result<()> {
    let url = format!("{base}/api/v1/registries");
    let what = format!("creating the {package_type} registry {name:?} (POST {url})");
    let response = client
        .post(&url)
        .bearer_auth(token)
        .json(&serde_json::json!({ "name": name, "package_type": package_type }))
        .send()
        .await
        .with_context(|| what.clone())?;
    expect_status(response, StatusCode::CREATED, &what).await?;
    Ok(())
}

/// Passes `response` on when its status is `expected`, and otherwise fails with its status, headers
/// and body.
pub async fn expect_status(
    response: reqwest::Response,
    expected: StatusCode,
    what: &str,
) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status == expected {
        return Ok(response);
    }
    let headers: Vec<String> = response
        .headers()
        .iter()
        .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
        .collect();
    let body = response
        .text()
        .await
        .unwrap_or_else(|error| format!("(body unreadable: {error})"));
    bail!(
        "{what}: expected {expected}, got {status} [{}]: {body}",
        headers.join("; ")
    )
}

/// The `/metrics` text of the node at `base`.
pub async fn scrape(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let url = format!("{base}/metrics");
    let what = format!("GET {url}");
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| what.clone())?;
    expect_status(response, StatusCode::OK, &what)
        .await?
        .text()
        .await
        .with_context(|| what.clone())
}

/// The value of the sample `name` (with its labels, as the node prints them) in Prometheus or
/// OpenMetrics text.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        if parts.next()? != name {
            return None;
        }
        let value: f64 = parts.next()?.parse().ok()?;
        (value.is_finite() && value >= 0.0).then_some(value as u64)
    })
}

/// Runs blocking work off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("blocking task panicked")?
}

/// Parses a finite number above zero (a command-line value such as `--seconds`).
pub fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("{text:?} is not a number above 0")),
    }
}

/// Writes the body `stream` into the new file `path` and fsyncs it; returns the bytes written.
/// `what` names the download in errors.
pub async fn stream_into_file<E>(
    stream: impl Stream<Item = Result<Bytes, E>>,
    path: &Path,
    what: &str,
) -> anyhow::Result<u64>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let mut stream = std::pin::pin!(stream);
    let file = tokio::fs::File::create_new(path)
        .await
        .with_context(|| format!("creating {}", path.display()))?;
    let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut written = 0u64;
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.with_context(|| format!("reading the body of {what}"))?;
        out.write_all(&bytes)
            .await
            .with_context(|| format!("writing {}", path.display()))?;
        written += bytes.len() as u64;
    }
    out.flush()
        .await
        .with_context(|| format!("writing {}", path.display()))?;
    out.into_inner()
        .sync_all()
        .await
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(written)
}

/// Calls `work(i)` for every `i` in `0..total` from `workers` concurrent tasks, each taking the next
/// `i` when its call returns, and returns the sum of what the calls returned (bytes read, say).
pub async fn fan_out<F, Fut>(workers: usize, total: u64, work: F) -> anyhow::Result<u64>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<u64>> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        let (next, work) = (next.clone(), work.clone());
        tasks.spawn(async move {
            let mut sum = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(sum);
                }
                sum += work(i).await?;
            }
        });
    }
    let mut sum = 0;
    while let Some(done) = tasks.join_next().await {
        sum += done.context("a worker task panicked")??;
    }
    Ok(sum)
}
