//! A real S3-compatible object store for the tests: a single-node Garage (`garage server`, installed
//! by `scripts/install-clients.sh`) on free ports of 127.0.0.1, with one bucket and one key, stopped
//! when dropped. [`Garage::objects`] and [`Garage::delete`] reach the bucket directly (as an operator
//! or an accident would), behind Arca's back.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;

use crate::clients::require_client;

/// The bucket every test node keeps its chunks in (under a prefix of its own).
pub const BUCKET: &str = "arca-chunks";
/// The key the nodes use (Garage's format: `GK` and 24 hex digits; the secret 64 hex digits).
const KEY_ID: &str = "GK00a1b2c3d4e5f60718293a4b";
const SECRET: &str = "5c1e7a0f3b9d4e2c8a6f1b0d7e3c9a5f2b8d4e1c7a3f0b6d9e2c5a8f1b4d7e0c";
/// Garage's region name.
const REGION: &str = "garage";

/// A running single-node Garage.
pub struct Garage {
    dir: tempfile::TempDir,
    binary: PathBuf,
    child: Option<Child>,
    s3_port: u16,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Garage {
    /// Starts Garage with a bucket and a key allowed to read and write it; `None` (a skip) when
    /// `garage` is not installed and this is not CI.
    pub fn start(test: &str) -> Result<Option<Garage>> {
        let Some(binary) = require_client("garage", test) else {
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let (rpc, s3, admin) = (free_port()?, free_port()?, free_port()?);
        let root = dir.path().display().to_string();
        std::fs::write(
            dir.path().join("garage.toml"),
            format!(
                "metadata_dir = \"{root}/meta\"\n\
                 data_dir = \"{root}/data\"\n\
                 db_engine = \"sqlite\"\n\
                 replication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_secret = \"{SECRET}\"\n\
                 [s3_api]\n\
                 s3_region = \"{REGION}\"\n\
                 api_bind_addr = \"127.0.0.1:{s3}\"\n\
                 root_domain = \".s3.garage.localhost\"\n\
                 [admin]\n\
                 api_bind_addr = \"127.0.0.1:{admin}\"\n"
            ),
        )?;
        let mut garage = Garage {
            dir,
            binary,
            child: None,
            s3_port: s3,
        };
        garage.spawn()?;
        let id = garage.cli(&["node", "id", "-q"])?;
        let id = id.trim().split('@').next().unwrap_or_default().to_string();
        garage.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &id])?;
        garage.cli(&["layout", "apply", "--version", "1"])?;
        garage.cli(&["bucket", "create", BUCKET])?;
        garage.cli(&["key", "import", "--yes", "-n", "arca", KEY_ID, SECRET])?;
        garage.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "arca",
        ])?;
        Ok(Some(garage))
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::File::create(self.dir.path().join("garage.log"))?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting garage")?;
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.s3_port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("garage did not open its S3 port: {}", self.log())
    }

    fn cli(&self, args: &[&str]) -> Result<String> {
        let mut last = String::new();
        // The first commands may race the node's own start-up (its RPC listener, the layout).
        for _ in 0..50 {
            let output = Command::new(&self.binary)
                .arg("-c")
                .arg(self.dir.path().join("garage.toml"))
                .args(args)
                .stdin(Stdio::null())
                .output()?;
            if output.status.success() {
                return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
            }
            last = String::from_utf8_lossy(&output.stderr).into_owned();
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("garage {}: {last}", args.join(" "))
    }

    /// Garage's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The environment a node needs to reach the bucket (its credentials).
    pub fn env(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ]
    }

    /// The `arca-node` arguments that keep its chunks in the bucket under `prefix`.
    pub fn node_args(&self, prefix: &str) -> Vec<String> {
        self.node_args_at(prefix, &self.endpoint())
    }

    /// [`Garage::node_args`] reaching the store at `endpoint` (a TLS front of it, say).
    pub fn node_args_at(&self, prefix: &str, endpoint: &str) -> Vec<String> {
        vec![
            "--storage".to_string(),
            format!("s3://{BUCKET}/{prefix}"),
            "--storage-endpoint".to_string(),
            endpoint.to_string(),
            "--storage-region".to_string(),
            REGION.to_string(),
        ]
    }

    /// The port of the S3 API.
    pub fn s3_port(&self) -> u16 {
        self.s3_port
    }

    /// Stops Garage (SIGKILL), as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts Garage again on the same data and ports.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }

    fn client(&self) -> Result<AmazonS3> {
        Ok(AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_endpoint(self.endpoint())
            .with_region(REGION)
            .with_access_key_id(KEY_ID)
            .with_secret_access_key(SECRET)
            .with_allow_http(true)
            .build()?)
    }

    /// Every object under `prefix` (`site-a/chunks`, say), as key and length, sorted by key.
    pub async fn objects(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let client = self.client()?;
        let mut objects: Vec<(String, u64)> = client
            .list(Some(&ObjectPath::from(prefix)))
            .map_ok(|object| (object.location.to_string(), object.size))
            .try_collect()
            .await?;
        objects.sort();
        Ok(objects)
    }

    /// When the object `key` was last written (or copied onto itself).
    pub async fn modified(&self, key: &str) -> Result<std::time::SystemTime> {
        let meta = self.client()?.head(&ObjectPath::from(key)).await?;
        Ok(meta.last_modified.into())
    }

    /// Deletes one object behind the back of every node.
    pub async fn delete(&self, key: &str) -> Result<()> {
        Ok(self.client()?.delete(&ObjectPath::from(key)).await?)
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}
