//! Harness for workspace-level integration tests: starts real `arca-node` processes on 127.0.0.1 with a
//! random port and a temporary data directory, runs the real `arca` CLI against them, and stops every
//! node when its handle is dropped.
//!
//! The binaries are found beside the test executable (`target/<profile>/`); the README's test command
//! builds them before the tests run.

pub mod advisories;
pub mod clients;
pub mod cluster;
pub mod garage;
pub mod oci;
pub mod pki;
pub mod remote;
pub mod remote_maven;
pub mod remote_pypi;
pub mod static_server;
pub mod webhook_receiver;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Path of a workspace binary built next to the running test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins`",
        path.display()
    );
    path
}

/// A running `arca-node` process with its own data directory.
pub struct TestNode {
    child: Option<Child>,
    data_dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// `http://127.0.0.1:PORT` (`https://` when started with `--tls-cert`)
    pub url: String,
    /// The admin token the node created on first start.
    pub admin_token: String,
}

impl TestNode {
    /// Starts a node on a fresh data directory.
    pub fn start() -> Result<TestNode> {
        Self::start_with_args(&[])
    }

    /// Starts a node on a fresh data directory with extra command-line arguments.
    pub fn start_with_args(extra: &[&str]) -> Result<TestNode> {
        Self::start_with(extra, &[])
    }

    /// Starts a node on a fresh data directory with extra arguments and environment variables (both
    /// kept for restarts). Unless the arguments say otherwise, HTTP and QUIC take free ports.
    pub fn start_with(extra: &[&str], env: &[(&str, &str)]) -> Result<TestNode> {
        Self::start_in(tempfile::tempdir()?, extra, env)
    }

    /// Starts a node on `data_dir`, which may hold a node's data already (its admin token is the
    /// one there).
    pub fn start_in(
        data_dir: tempfile::TempDir,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<TestNode> {
        let mut node = TestNode {
            child: None,
            data_dir,
            args: extra.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            url: String::new(),
            admin_token: String::new(),
        };
        node.spawn()?;
        Ok(node)
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    fn spawn(&mut self) -> Result<()> {
        let addr_file = self.data_dir.path().join("http.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.path().join("node.log"))?;
        let mut command = Command::new(binary("arca-node"));
        command.arg("--data-dir").arg(self.data_dir.path());
        for flag in ["--http", "--quic"] {
            if !self.args.iter().any(|arg| arg == flag) {
                command.arg(flag).arg("127.0.0.1:0");
            }
        }
        // A small free-space floor (the default is 1 GiB), so a machine whose disk is nearly
        // full runs the tests the same; a test that sets its own overrides it.
        let child = command
            .args(&self.args)
            .env("ARCA_MIN_FREE_BYTES", (64u64 << 20).to_string())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning arca-node")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file)
                && !text.trim().is_empty()
            {
                break text.trim().to_string();
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("arca-node exited early ({status}); log:\n{}", self.log());
            }
            if Instant::now() > deadline {
                bail!("arca-node did not start within 30 s; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let scheme = if self.args.iter().any(|arg| arg == "--tls-cert") {
            "https"
        } else {
            "http"
        };
        self.url = format!("{scheme}://{addr}");
        self.admin_token = std::fs::read_to_string(self.data_dir.path().join("admin.token"))
            .context("reading admin.token")?
            .trim()
            .to_string();
        Ok(())
    }

    /// The node's peak resident memory so far (`VmHWM`), in bytes (Linux).
    pub fn peak_memory(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("node.log")).unwrap_or_default()
    }

    /// Sends a management API request to `path` as `token` (no token when empty): the status and
    /// the answer as JSON (`Null` when it is empty or not JSON).
    pub async fn api(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let mut request = http().request(method, format!("{}{path}", self.url));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or_default()))
    }

    /// [`TestNode::api`], which must be answered with a 2xx: the answer.
    pub async fn api_ok(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let (status, answer) = self.api(token, method, path, body).await?;
        anyhow::ensure!((200..300).contains(&status), "{path}: {status} {answer}");
        Ok(answer)
    }

    /// PUTs a small file (`bytes of <path>`) at `path` of generic registry `registry` as the admin;
    /// 201 expected.
    pub async fn push_generic(&self, registry: &str, path: &str) -> Result<()> {
        let response = http()
            .put(format!("{}/generic/{registry}/{path}", self.url))
            .bearer_auth(&self.admin_token)
            .body(format!("bytes of {path}"))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().as_u16() == 201,
            "push {path}: {}",
            response.status()
        );
        Ok(())
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node again on the same data directory, with the same arguments.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    /// Starts the node again on the same data directory with other arguments and environment
    /// (kept for later restarts).
    pub fn restart_with(&mut self, extra: &[&str], env: &[(&str, &str)]) -> Result<()> {
        self.kill();
        self.args = extra.iter().map(|a| a.to_string()).collect();
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.spawn()
    }

    /// Sends SIGTERM and waits for the process to end (a clean stop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    /// A typed API client authenticated with the admin token.
    pub fn admin_client(&self) -> arca_client::Client {
        arca_client::Client::new(&self.url, Some(self.admin_token.clone()))
            .expect("client for a local node")
    }

    /// Runs the `arca` CLI against this node with the admin token; `HOME` points into the data directory
    /// so no user configuration is read or written.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_token(Some(&self.admin_token), args)
    }

    /// Runs the `arca` CLI against this node with the given token (or none).
    pub fn cli_with_token(&self, token: Option<&str>, args: &[&str]) -> Output {
        self.cli_command(token, args)
            .output()
            .expect("running arca")
    }

    /// The `arca` CLI command [`TestNode::cli_with_token`] runs, for a test to change before it
    /// runs it (its environment, say).
    pub fn cli_command(&self, token: Option<&str>, args: &[&str]) -> Command {
        let home = self.data_dir.path().join("cli-home");
        let _ = std::fs::create_dir_all(&home);
        let mut command = Command::new(binary("arca"));
        command
            .args(args)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("ARCA_SERVER", &self.url)
            .env_remove("ARCA_TOKEN")
            .stdin(Stdio::null());
        if let Some(token) = token {
            command.env("ARCA_TOKEN", token);
        }
        command
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every chunk file under a node's data directory, with its length, sorted by path.
pub fn chunk_files(data_dir: &Path) -> Vec<(PathBuf, u64)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => walk(&path, out),
                Ok(meta) => out.push((path, meta.len())),
                Err(_) => {}
            }
        }
    }
    let mut files = Vec::new();
    walk(&data_dir.join("chunks"), &mut files);
    files.sort();
    files
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no random source and can be replayed.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.max(1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A gzip'd tar of `files` (path, content), each path written as given — even one a package
/// manager would refuse (`../x`), which the tar crate's own path setters do not allow. Paths are at
/// most 100 bytes.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        let name = &mut header.as_gnu_mut().context("a GNU header")?.name;
        anyhow::ensure!(path.len() <= name.len(), "{path} is longer than 100 bytes");
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append(&header, *bytes)?;
    }
    Ok(tar.into_inner()?.finish()?)
}

/// A zip of `files` (path, content).
pub fn zip_of(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, bytes) in files {
        zip.start_file(*path, zip::write::SimpleFileOptions::default())?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// A well-formed npm tarball (`package/package.json`) for version `version` of `name`, with
/// `padding` bytes of pseudo-random content in `package/padding.bin` to make it as large as a test
/// needs.
pub fn npm_tarball(name: &str, version: &str, padding: usize) -> Result<Vec<u8>> {
    let package_json =
        serde_json::to_vec(&serde_json::json!({ "name": name, "version": version }))?;
    let padding_bytes = pseudo_random_bytes(padding, padding as u64 + 1);
    let mut files = vec![("package/package.json", package_json.as_slice())];
    if padding > 0 {
        files.push(("package/padding.bin", padding_bytes.as_slice()));
    }
    tar_gz(&files)
}

/// A PyPI source distribution of `name` `version` (`<name>-<version>/PKG-INFO`), as a `.tar.gz`
/// or, with `zip`, the legacy `.zip`.
pub fn sdist(name: &str, version: &str, zip: bool) -> Result<Vec<u8>> {
    let path = format!("{name}-{version}/PKG-INFO");
    let pkg_info = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    let files = [(path.as_str(), pkg_info.as_bytes())];
    if zip { zip_of(&files) } else { tar_gz(&files) }
}

/// A minimal HTTP/1.1 exchange over a raw socket, for requests a well-behaved client library refuses
/// to send (literal `..` segments, bodies longer than announced). The request should carry
/// `Connection: close`. Returns the status code and the whole answer (headers and body).
pub fn raw_http(url: &str, request: &[u8]) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request)?;
    let mut answer = Vec::new();
    // A reset after the answer was written is fine: what was read is the answer.
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no HTTP status in answer {text:?}"))?;
    Ok((status, text))
}

/// Sends the start of a request and closes the connection, as a client that dies mid-upload would.
pub fn raw_http_abandoned(url: &str, partial_request: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(url.trim_start_matches("http://"))?;
    stream.write_all(partial_request)?;
    stream.shutdown(std::net::Shutdown::Both)?;
    Ok(())
}

/// An HTTP client for tests.
pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// The value of a metric on the node at `base_url` (summed over its series whose labels contain
/// `labels`; `""` for all of them).
pub async fn metric(base_url: &str, name: &str, labels: &str) -> Result<f64> {
    let text = http()
        .get(format!("{base_url}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let series_name = series.split('{').next()?;
            (series_name == name && series.contains(labels)).then(|| value.parse::<f64>().ok())?
        })
        .sum())
}
