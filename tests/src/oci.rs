//! Helpers for the OCI tests that drive real clients (skopeo, umoci, helm, the ORAS Python SDK):
//! finding a client (and refusing to skip under CI), building OCI image layouts offline with umoci
//! (single images and multi-arch indexes), running clients with an isolated home and readable failure
//! messages, and a reference registry (Debian's `docker-registry`, the CNCF distribution) to check the
//! same client flows against.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::sha256_hex;

/// Media type of an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation that names a manifest in a layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

use crate::clients::loud;
pub use crate::clients::{ClientOutput, in_ci, require_client, run, which};

/// True when `python3` can import the ORAS Python SDK; under CI a missing SDK panics, elsewhere it is
/// reported loudly and the caller skips.
pub fn require_oras_python(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import oras.client, oras.oci"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    if in_ci() {
        panic!(
            "{test}: python3 cannot import the ORAS SDK (`oras`) and CI=true; \
             `bash scripts/install-clients.sh` installs it"
        );
    }
    loud(&format!(
        "SKIPPED {test}: python3 cannot import the ORAS SDK (run `bash scripts/install-clients.sh`; \
         under CI=true this is a failure)"
    ));
    false
}

/// A client run with its own temporary `HOME` (and XDG and Helm directories inside it), so no user
/// configuration or stored credential is read and nothing is left behind.
pub struct IsolatedClient {
    /// The binary.
    pub bin: PathBuf,
    home: tempfile::TempDir,
}

impl IsolatedClient {
    /// Wraps `bin` with a fresh temporary home.
    pub fn new(bin: PathBuf) -> Result<IsolatedClient> {
        Ok(IsolatedClient {
            bin,
            home: tempfile::tempdir()?,
        })
    }

    /// The temporary home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Runs the client with the isolated environment.
    pub fn run(&self, args: &[&str]) -> Result<ClientOutput> {
        let home = self.home.path();
        let dirs = [
            ("XDG_CONFIG_HOME", home.join(".config")),
            ("XDG_CACHE_HOME", home.join(".cache")),
            ("XDG_DATA_HOME", home.join(".local/share")),
            ("XDG_RUNTIME_DIR", home.join("run")),
            ("HELM_CONFIG_HOME", home.join("helm/config")),
            ("HELM_CACHE_HOME", home.join("helm/cache")),
            ("HELM_DATA_HOME", home.join("helm/data")),
            ("REGISTRY_AUTH_FILE", home.join("auth.json")),
            ("DOCKER_CONFIG", home.join(".docker")),
        ];
        for (_, dir) in &dirs[..4] {
            std::fs::create_dir_all(dir)?;
        }
        let mut envs: Vec<(&str, &Path)> = vec![("HOME", home)];
        envs.extend(dirs.iter().map(|(k, v)| (*k, v.as_path())));
        run(&self.bin, args, &envs)
    }
}

/// `host:port` of a node or registry URL (`http://127.0.0.1:PORT` -> `127.0.0.1:PORT`).
pub fn host_of(url: &str) -> &str {
    url.trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
}

/// A file inserted into an image as its own layer.
#[derive(Debug, Clone)]
pub struct LayerFile {
    /// Absolute path inside the image, e.g. `/data/a.bin`.
    pub path: String,
    /// The file's bytes.
    pub content: Vec<u8>,
}

impl LayerFile {
    /// A layer holding one file.
    pub fn new(path: &str, content: impl Into<Vec<u8>>) -> LayerFile {
        LayerFile {
            path: path.to_string(),
            content: content.into(),
        }
    }
}

/// A manifest as a layout's `index.json` (or an index) names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

impl Descriptor {
    fn from_json(value: &Value) -> Result<Descriptor> {
        Ok(Descriptor {
            media_type: value["mediaType"]
                .as_str()
                .context("descriptor without mediaType")?
                .to_string(),
            digest: value["digest"]
                .as_str()
                .context("descriptor without digest")?
                .to_string(),
            size: value["size"].as_u64().context("descriptor without size")?,
        })
    }
}

/// An OCI image layout on disk, built with umoci.
pub struct Layout {
    /// The layout directory.
    pub dir: PathBuf,
    umoci: Option<PathBuf>,
}

/// A fixed modification time for generated files, so the same content gives the same layer.
const FIXED_MTIME: Duration = Duration::from_secs(1_700_000_000);
const FIXED_CREATED: &str = "2024-01-01T00:00:00Z";

impl Layout {
    /// Creates an empty layout at `dir` (which must not exist yet) with `umoci init`.
    pub fn init(umoci: &Path, dir: &Path) -> Result<Layout> {
        run(umoci, &["init", "--layout", &dir.to_string_lossy()], &[])?.ok()?;
        Ok(Layout {
            dir: dir.to_path_buf(),
            umoci: Some(umoci.to_path_buf()),
        })
    }

    /// A layout someone else wrote (e.g. `skopeo copy ... oci:DIR:tag`); read-only use.
    pub fn open(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
            umoci: None,
        }
    }

    fn umoci(&self, args: &[&str]) -> Result<ClientOutput> {
        let umoci = self
            .umoci
            .as_ref()
            .context("layout opened read-only: no umoci")?;
        run(umoci, args, &[])?.ok()
    }

    fn image_arg(&self, tag: &str) -> String {
        format!("{}:{tag}", self.dir.display())
    }

    /// `oci:DIR:tag`, the reference skopeo takes.
    pub fn reference(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }

    /// Builds image `tag` for `linux/<architecture>`: one layer per file (in order), config with the
    /// architecture, os and a fixed creation time. Returns the manifest's descriptor.
    pub fn build_image(
        &self,
        tag: &str,
        architecture: &str,
        files: &[LayerFile],
    ) -> Result<Descriptor> {
        let image = self.image_arg(tag);
        self.umoci(&["new", "--image", &image])?;
        let sources = tempfile::tempdir()?;
        for (i, file) in files.iter().enumerate() {
            let source = sources.path().join(format!("layer-{i}"));
            std::fs::write(&source, &file.content)?;
            std::fs::File::options()
                .write(true)
                .open(&source)?
                .set_modified(SystemTime::UNIX_EPOCH + FIXED_MTIME)?;
            self.umoci(&[
                "insert",
                "--rootless",
                "--image",
                &image,
                "--history.created",
                FIXED_CREATED,
                &source.to_string_lossy(),
                &file.path,
            ])?;
        }
        self.umoci(&[
            "config",
            "--image",
            &image,
            "--architecture",
            architecture,
            "--os",
            "linux",
            "--created",
            FIXED_CREATED,
            "--history.created",
            FIXED_CREATED,
            "--config.cmd",
            "/bin/true",
            "--config.label",
            &format!("org.arca.test.tag={tag}"),
        ])?;
        self.manifest(tag)
    }

    /// Writes an image index over images already in the layout (`(tag, architecture)` pairs, all
    /// `linux`) into `blobs/sha256` and names it `tag` in `index.json`. Returns the index descriptor.
    pub fn build_index(&self, tag: &str, images: &[(&str, &str)]) -> Result<Descriptor> {
        let mut manifests = Vec::new();
        for (image_tag, architecture) in images {
            let d = self.manifest(image_tag)?;
            manifests.push(json!({
                "mediaType": d.media_type,
                "digest": d.digest,
                "size": d.size,
                "platform": {"architecture": architecture, "os": "linux"},
            }));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
            "annotations": {"org.opencontainers.image.description": "arca multi-arch test"},
        });
        let bytes = serde_json::to_vec(&index)?;
        let descriptor = Descriptor {
            media_type: OCI_INDEX.to_string(),
            digest: format!("sha256:{}", sha256_hex(&bytes)),
            size: bytes.len() as u64,
        };
        std::fs::write(self.blob_path(&descriptor.digest)?, &bytes)?;
        let index_path = self.dir.join("index.json");
        let mut top: Value = serde_json::from_slice(&std::fs::read(&index_path)?)?;
        let entries = top["manifests"]
            .as_array_mut()
            .context("index.json without manifests")?;
        entries.retain(|m| m["annotations"][REF_NAME] != tag);
        entries.push(json!({
            "mediaType": OCI_INDEX,
            "digest": descriptor.digest,
            "size": descriptor.size,
            "annotations": {REF_NAME: tag},
        }));
        std::fs::write(&index_path, serde_json::to_vec(&top)?)?;
        Ok(descriptor)
    }

    /// The descriptor `index.json` names `tag`.
    pub fn manifest(&self, tag: &str) -> Result<Descriptor> {
        let path = self.dir.join("index.json");
        let top: Value = serde_json::from_slice(
            &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        )?;
        let entry = top["manifests"]
            .as_array()
            .context("index.json without manifests")?
            .iter()
            .find(|m| m["annotations"][REF_NAME] == tag)
            .with_context(|| format!("no {tag:?} in {}: {top}", path.display()))?;
        Descriptor::from_json(entry)
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex = digest
            .strip_prefix("sha256:")
            .with_context(|| format!("not a sha256 digest: {digest}"))?;
        Ok(self.dir.join("blobs/sha256").join(hex))
    }

    /// A blob's bytes, verified against its digest.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        ensure!(
            format!("sha256:{}", sha256_hex(&bytes)) == digest,
            "blob {} does not match its digest",
            path.display()
        );
        Ok(bytes)
    }

    /// A blob parsed as JSON (a manifest, index or config).
    pub fn json_blob(&self, digest: &str) -> Result<Value> {
        Ok(serde_json::from_slice(&self.blob(digest)?)?)
    }

    /// The layer digests of image manifest `digest`, in order.
    pub fn layers(&self, digest: &str) -> Result<Vec<String>> {
        let manifest = self.json_blob(digest)?;
        manifest["layers"]
            .as_array()
            .context("manifest without layers")?
            .iter()
            .map(|l| {
                l["digest"]
                    .as_str()
                    .map(str::to_string)
                    .context("layer without digest")
            })
            .collect()
    }

    /// The child manifests of index `digest`: `(architecture, descriptor)`.
    pub fn children(&self, digest: &str) -> Result<Vec<(String, Descriptor)>> {
        let index = self.json_blob(digest)?;
        index["manifests"]
            .as_array()
            .context("index without manifests")?
            .iter()
            .map(|m| {
                Ok((
                    m["platform"]["architecture"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    Descriptor::from_json(m)?,
                ))
            })
            .collect()
    }
}

/// Deterministic layer contents for image number `seed`: a large incompressible file, a small text
/// file, and a small JSON file, each in its own layer.
pub fn sample_layers(seed: u64, big_len: usize) -> Vec<LayerFile> {
    vec![
        LayerFile::new(
            "/data/blob.bin",
            crate::pseudo_random_bytes(big_len, seed * 7919 + 1),
        ),
        LayerFile::new(
            "/etc/arca-release",
            format!("arca test image {seed}\n").repeat(50),
        ),
        LayerFile::new(
            "/usr/share/arca/info.json",
            serde_json::to_vec(&json!({"seed": seed, "layers": 3})).expect("json"),
        ),
    ]
}

/// `skopeo` with an isolated home and plain HTTP towards `127.0.0.1` registries.
pub struct Skopeo(pub IsolatedClient);

impl Skopeo {
    /// Finds skopeo (see [`require_client`]).
    pub fn find(test: &str) -> Option<Skopeo> {
        let bin = require_client("skopeo", test)?;
        Some(Skopeo(IsolatedClient::new(bin).expect("temporary home")))
    }

    /// Runs skopeo with raw arguments.
    pub fn run(&self, args: &[&str]) -> Result<ClientOutput> {
        self.0.run(args)
    }

    /// `skopeo copy EXTRA.. SRC DEST` with plain HTTP on both sides and the given credentials
    /// (`user:password`; `None`: anonymous) for whichever side is a `docker://` reference.
    pub fn copy(
        &self,
        src: &str,
        dest: &str,
        creds: Option<&str>,
        extra: &[&str],
    ) -> Result<ClientOutput> {
        self.copy_with(&[], src, dest, creds, extra)
    }

    /// [`Skopeo::copy`] with `--debug`, whose stderr tells which blobs were reused (HEAD / mount).
    pub fn copy_debug(
        &self,
        src: &str,
        dest: &str,
        creds: Option<&str>,
        extra: &[&str],
    ) -> Result<ClientOutput> {
        self.copy_with(&["--debug"], src, dest, creds, extra)
    }

    fn copy_with(
        &self,
        global: &[&str],
        src: &str,
        dest: &str,
        creds: Option<&str>,
        extra: &[&str],
    ) -> Result<ClientOutput> {
        let mut args: Vec<String> = global.iter().map(|s| s.to_string()).collect();
        args.push("copy".into());
        args.extend(extra.iter().map(|s| s.to_string()));
        for (side, reference) in [("src", src), ("dest", dest)] {
            if reference.starts_with("docker://") {
                args.push(format!("--{side}-tls-verify=false"));
                match creds {
                    Some(creds) => args.push(format!("--{side}-creds={creds}")),
                    None => args.push(format!("--{side}-no-creds")),
                }
            }
        }
        args.push(src.into());
        args.push(dest.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args)
    }

    /// `skopeo inspect --raw docker://...`: the manifest bytes as the registry serves them.
    pub fn inspect_raw(&self, reference: &str, creds: Option<&str>) -> Result<ClientOutput> {
        let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
        let creds_arg;
        if let Some(creds) = creds {
            creds_arg = format!("--creds={creds}");
            args.push(&creds_arg);
        } else {
            args.push("--no-creds");
        }
        args.push(reference);
        self.run(&args)
    }

    /// `skopeo list-tags docker://...`: the tag names.
    pub fn list_tags(&self, repository: &str, creds: Option<&str>) -> Result<Vec<String>> {
        let mut args = vec!["list-tags", "--tls-verify=false"];
        let creds_arg;
        if let Some(creds) = creds {
            creds_arg = format!("--creds={creds}");
            args.push(&creds_arg);
        } else {
            args.push("--no-creds");
        }
        args.push(repository);
        let out = self.run(&args)?.ok()?;
        let value: Value = serde_json::from_str(&out.stdout)
            .with_context(|| format!("list-tags output is not JSON: {}", out.stdout))?;
        Ok(value["Tags"]
            .as_array()
            .context("list-tags without Tags")?
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect())
    }
}

/// Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1 with a random port and filesystem
/// storage in a temporary directory: the reference the client flows are checked against. Stopped when
/// dropped.
pub struct DistributionRegistry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`
    pub host: String,
}

impl DistributionRegistry {
    /// Starts the registry and waits until `/v2/` answers.
    pub fn start(bin: &Path) -> Result<DistributionRegistry> {
        let dir = tempfile::tempdir()?;
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let host = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                     delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
                    dir.path().join("storage").display()
                ),
            )?;
            let log = std::fs::File::create(dir.path().join("registry.log"))?;
            let mut child = Command::new(bin)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("spawning docker-registry")?;
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if child.try_wait()?.is_some() {
                    break; // port taken between the probe and the bind: try another
                }
                if std::net::TcpStream::connect(&host).is_ok() {
                    return Ok(DistributionRegistry { child, dir, host });
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("docker-registry did not start within 15 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        bail!(
            "docker-registry did not start; log:\n{}",
            std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        )
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for DistributionRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
