//! PyPI registries driven by the real Python clients: distributions built offline with `build`
//! (setuptools, no isolation), uploaded with twine, resolved and installed with pip, plus the simple
//! index (HTML and JSON), the core metadata files, the JSON API, yanking, and raw uploads that must be
//! refused. Each test starts its own node and creates its own PYPI registry; nothing but 127.0.0.1 is
//! contacted (pip runs with no configuration file, no find-links and only Arca as its index).
//!
//! A missing client fails the test under `CI=true` and skips it loudly elsewhere
//! (`bash scripts/install-clients.sh` installs twine, build and wheel).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::clients::{ClientOutput, in_ci, require_client, run_command};
use arca_tests::{TestNode, http, sha256_hex};
use reqwest::StatusCode;
use serde_json::{Value, json};

const REGISTRY: &str = "py";
const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

// ---------------------------------------------------------------------------------------------------
// Clients

/// twine, pip and a Python that can build distributions, each run with a temporary home and no
/// configuration that could point it anywhere but the node.
struct Python {
    twine: PathBuf,
    /// The Python with `build`, `setuptools` and `wheel` (the one next to twine when there is one).
    builder: PathBuf,
    /// The Python whose pip is under test.
    pip_python: PathBuf,
    home: tempfile::TempDir,
}

fn imports(python: &Path, modules: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Python {
    fn find(test: &str) -> Option<Python> {
        let twine = require_client("twine", test)?;
        let pip_python = require_client("python3", test)?;
        let beside_twine = std::fs::canonicalize(&twine)
            .ok()
            .and_then(|t| t.parent().map(|dir| dir.join("python3")));
        let builder = beside_twine
            .into_iter()
            .chain([pip_python.clone()])
            .find(|python| imports(python, "build, setuptools, wheel"));
        let Some(builder) = builder else {
            assert!(
                !in_ci(),
                "{test}: no python3 can import build, setuptools and wheel and CI=true; \
                 `bash scripts/install-clients.sh` installs them"
            );
            eprintln!("\n!!! SKIPPED {test}: no python3 with build, setuptools and wheel !!!\n");
            return None;
        };
        assert!(imports(&pip_python, "pip"), "{test}: python3 has no pip");
        Some(Python {
            twine,
            builder,
            pip_python,
            home: tempfile::tempdir().expect("temporary home"),
        })
    }

    /// A command with the isolated environment.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("XDG_CACHE_HOME", self.home.path().join(".cache"))
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_NO_INPUT", "1")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring");
        for name in [
            "PIP_FIND_LINKS",
            "PIP_INDEX_URL",
            "PIP_EXTRA_INDEX_URL",
            "PIP_TRUSTED_HOST",
            "TWINE_USERNAME",
            "TWINE_PASSWORD",
            "TWINE_REPOSITORY",
            "TWINE_REPOSITORY_URL",
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
        ] {
            command.env_remove(name);
        }
        command
    }

    /// `twine upload` of `files` to the node's registry with `token`.
    fn upload(
        &self,
        node: &TestNode,
        token: &str,
        files: &[&Path],
        extra: &[&str],
    ) -> Result<ClientOutput> {
        let mut command = self.command(&self.twine);
        command
            .args(["upload", "--non-interactive", "--disable-progress-bar"])
            .args([
                "--repository-url",
                &format!("{}/pypi/{REGISTRY}/", node.url),
            ])
            .args(["-u", "__token__", "-p", token])
            .args(extra)
            .args(files);
        run_command(&mut command)
    }

    /// `python3 -m pip ARGS`.
    fn pip(&self, args: &[&str]) -> Result<ClientOutput> {
        let mut command = self.command(&self.pip_python);
        command.args(["-m", "pip"]).args(args);
        run_command(&mut command)
    }

    /// Builds the sdist and wheel of `project` into `out`; returns (sdist, wheel).
    fn build(&self, project: &Project, out: &Path) -> Result<(PathBuf, PathBuf)> {
        let source = tempfile::tempdir()?;
        project.write(source.path())?;
        let mut command = self.command(&self.builder);
        command
            .args([
                "-m",
                "build",
                "--no-isolation",
                "--sdist",
                "--wheel",
                "--outdir",
            ])
            .arg(out)
            .arg(source.path());
        run_command(&mut command)?.ok()?;
        let module = project.name.replace('-', "_");
        let sdist = out.join(format!("{module}-{}.tar.gz", project.version));
        let wheel = out.join(format!("{module}-{}-py3-none-any.whl", project.version));
        ensure!(
            sdist.exists() && wheel.exists(),
            "build did not produce {} and {}: {:?}",
            sdist.display(),
            wheel.display(),
            std::fs::read_dir(out)?.collect::<Vec<_>>()
        );
        Ok((sdist, wheel))
    }

    /// The `METADATA` inside a wheel, read with Python's zipfile.
    fn wheel_metadata(&self, wheel: &Path, project: &Project) -> Result<Vec<u8>> {
        let member = format!(
            "{}-{}.dist-info/METADATA",
            project.name.replace('-', "_"),
            project.version
        );
        let output = self
            .command(&self.builder)
            .args([
                "-c",
                "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
            ])
            .arg(wheel)
            .arg(&member)
            .output()?;
        ensure!(
            output.status.success(),
            "reading {member} from {}",
            wheel.display()
        );
        Ok(output.stdout)
    }
}

/// A tiny setuptools project with one module.
struct Project {
    /// The name as written in pyproject.toml (`dep_a`: not normalised on purpose).
    name: String,
    version: String,
    requires_python: &'static str,
    dependencies: Vec<&'static str>,
}

impl Project {
    fn new(name: &str, version: &str) -> Project {
        Project {
            name: name.to_string(),
            version: version.to_string(),
            requires_python: "<4,>=3.8",
            dependencies: Vec::new(),
        }
    }

    fn write(&self, dir: &Path) -> Result<()> {
        let module = self.name.replace('-', "_");
        let dependencies = self
            .dependencies
            .iter()
            .map(|d| format!("{d:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            dir.join("pyproject.toml"),
            format!(
                "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
                 [project]\nname = \"{}\"\nversion = \"{}\"\ndescription = \"Arca test package {}\"\n\
                 requires-python = \"{}\"\ndependencies = [{dependencies}]\n\n\
                 [tool.setuptools]\npy-modules = [\"{module}\"]\n",
                self.name, self.version, self.name, self.requires_python
            ),
        )?;
        std::fs::write(
            dir.join(format!("{module}.py")),
            format!("VERSION = {:?}\n", self.version),
        )?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------
// Node helpers

async fn create_pypi_registry(node: &TestNode) {
    let response = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": REGISTRY, "package_type": "PYPI"}))
        .send()
        .await
        .expect("create registry");
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

/// The simple index URL with the token in it, as pip is given it.
fn index_url(node: &TestNode, token: &str) -> String {
    format!(
        "http://__token__:{token}@{}/pypi/{REGISTRY}/simple/",
        node.url.trim_start_matches("http://")
    )
}

/// `GET` with the admin token; returns status, content type and body.
async fn get(node: &TestNode, path: &str, accept: Option<&str>) -> (StatusCode, String, Vec<u8>) {
    let mut request = http()
        .get(format!("{}{path}", node.url))
        .basic_auth("__token__", Some(&node.admin_token));
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let response = request.send().await.expect("GET");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (
        status,
        content_type,
        response.bytes().await.expect("body").to_vec(),
    )
}

async fn get_json(node: &TestNode, path: &str) -> Value {
    let (status, _, body) = get(node, path, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

async fn artifact_count(node: &TestNode) -> u64 {
    let page: Value = http()
        .get(format!("{}/api/v1/artifacts?registry={REGISTRY}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("artifacts")
        .json()
        .await
        .expect("json");
    page["total"].as_u64().expect("total")
}

fn file_sha256(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).expect("read distribution"))
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("file name")
}

/// Names of the entries of a directory.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread")]
async fn twine_uploads_and_pip_resolves_a_dependency_between_two_packages() -> Result<()> {
    let test = "twine_uploads_and_pip_resolves_a_dependency_between_two_packages";
    let Some(python) = Python::find(test) else {
        return Ok(());
    };
    let node = TestNode::start()?;
    create_pypi_registry(&node).await;
    let dist = tempfile::tempdir()?;
    let dep = Project::new("dep_a", "1.0.0");
    let mut app = Project::new("app-b", "1.0.0");
    app.dependencies = vec!["dep-a>=1.0"];
    app.requires_python = ">=3.8";
    let (dep_sdist, dep_wheel) = python.build(&dep, dist.path())?;
    let (app_sdist, app_wheel) = python.build(&app, dist.path())?;

    python
        .upload(
            &node,
            &node.admin_token,
            &[&dep_sdist, &dep_wheel, &app_sdist, &app_wheel],
            &[],
        )?
        .ok()?;

    // Uploading an existing file again is refused the way PyPI refuses it (twine 6 allows
    // --skip-existing only towards pypi.org, so that flag is not exercised here).
    let again = python
        .upload(&node, &node.admin_token, &[&dep_sdist], &[])?
        .failed()?;
    ensure!(
        again.all().contains("File already exists"),
        "{}",
        again.describe()
    );

    // pip download and pip install resolve app-b's dependency from Arca, with credentials in the URL.
    let index = index_url(&node, &node.admin_token);
    let downloads = tempfile::tempdir()?;
    let downloads_dir = downloads.path().to_str().context("path")?;
    python
        .pip(&[
            "download",
            "--no-cache-dir",
            "--index-url",
            &index,
            "-d",
            downloads_dir,
            "app-b",
        ])?
        .ok()?;
    assert_eq!(
        entries(downloads.path()),
        [file_name(&app_wheel), file_name(&dep_wheel)]
    );
    for wheel in [&app_wheel, &dep_wheel] {
        assert_eq!(
            file_sha256(&downloads.path().join(file_name(wheel))),
            file_sha256(wheel)
        );
    }
    let target = tempfile::tempdir()?;
    let target_dir = target.path().to_str().context("path")?;
    let installed = python
        .pip(&[
            "install",
            "--no-cache-dir",
            "--index-url",
            &index,
            "--target",
            target_dir,
            "app-b",
        ])?
        .ok()?;
    let names = entries(target.path());
    for expected in [
        "app_b-1.0.0.dist-info",
        "app_b.py",
        "dep_a-1.0.0.dist-info",
        "dep_a.py",
    ] {
        ensure!(
            names.iter().any(|n| n == expected),
            "{expected} not installed: {names:?}\n{}",
            installed.describe()
        );
    }

    // Without credentials the registry answers 401 with a Basic challenge, and pip (not allowed to
    // prompt) finds nothing.
    let anonymous = format!("{}/pypi/{REGISTRY}/simple/", node.url);
    let refused = python
        .pip(&[
            "download",
            "--no-cache-dir",
            "--index-url",
            &anonymous,
            "-d",
            downloads_dir,
            "dep-a",
        ])?
        .failed()?;
    ensure!(
        refused.all().contains("No matching distribution"),
        "{}",
        refused.describe()
    );
    let unauthorized = http().get(format!("{anonymous}dep-a/")).send().await?;
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        unauthorized.headers()["www-authenticate"],
        "Basic realm=\"arca\""
    );

    // The simple index, HTML.
    let (status, content_type, root) = get(&node, &format!("/pypi/{REGISTRY}/simple/"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let root = String::from_utf8(root)?;
    assert!(
        root.contains(&format!("href=\"/pypi/{REGISTRY}/simple/dep-a/\"")),
        "{root}"
    );
    assert!(
        root.contains(&format!("href=\"/pypi/{REGISTRY}/simple/app-b/\"")),
        "{root}"
    );
    let project_path = format!("/pypi/{REGISTRY}/simple/dep-a/");
    let (_, _, page) = get(&node, &project_path, Some("text/html")).await;
    let page = String::from_utf8(page)?;
    let metadata = python.wheel_metadata(&dep_wheel, &dep)?;
    for file in [&dep_sdist, &dep_wheel] {
        let name = file_name(file);
        let href = format!(
            "href=\"/pypi/{REGISTRY}/files/dep-a/1.0.0/{name}#sha256={}\"",
            file_sha256(file)
        );
        let line = page
            .lines()
            .find(|line| line.contains(&href))
            .with_context(|| format!("no {href} in {page}"))?;
        assert!(
            line.contains("data-requires-python=\"&lt;4,&gt;=3.8\""),
            "{line}"
        );
        assert!(!line.contains("data-yanked"), "{line}");
        let core_metadata = format!("data-core-metadata=\"sha256={}\"", sha256_hex(&metadata));
        assert_eq!(line.contains(&core_metadata), file == &dep_wheel, "{line}");
    }
    // Other spellings of the name redirect to the normalised URL.
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .get(format!("{}/pypi/{REGISTRY}/simple/Dep_A/", node.url))
        .basic_auth("__token__", Some(&node.admin_token))
        .send()
        .await?;
    assert_eq!(redirect.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(redirect.headers()["location"], project_path.as_str());

    // The simple index, JSON (PEP 691), by Accept and by ?format=.
    let (status, content_type, body) = get(&node, &project_path, Some(SIMPLE_JSON)).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, SIMPLE_JSON)
    );
    let by_query = get(
        &node,
        &format!("{project_path}?format={}", SIMPLE_JSON.replace('+', "%2B")),
        Some("text/html"),
    )
    .await;
    assert_eq!(by_query.2, body);
    let simple: Value = serde_json::from_slice(&body)?;
    assert_eq!(simple["meta"]["api-version"], "1.1");
    assert_eq!(simple["name"], "dep-a");
    assert_eq!(simple["versions"], json!(["1.0.0"]));
    let files = simple["files"].as_array().context("files")?;
    assert_eq!(files.len(), 2, "{simple}");
    for file in files {
        let name = file["filename"].as_str().context("filename")?;
        let local = dist.path().join(name);
        assert_eq!(file["hashes"]["sha256"], file_sha256(&local));
        assert_eq!(file["requires-python"], "<4,>=3.8");
        assert_eq!(file["yanked"], false);
        let expected = if name.ends_with(".whl") {
            json!({"sha256": sha256_hex(&metadata)})
        } else {
            json!(false)
        };
        assert_eq!(file["core-metadata"], expected);
        assert_eq!(file["dist-info-metadata"], expected);
    }

    // The core metadata file is the wheel's METADATA.
    let (status, _, served) = get(
        &node,
        &format!(
            "/pypi/{REGISTRY}/files/dep-a/1.0.0/{}.metadata",
            file_name(&dep_wheel)
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, metadata);

    // The JSON API.
    let project = get_json(&node, &format!("/pypi/{REGISTRY}/pypi/app_b/json")).await;
    assert_eq!(project["info"]["version"], "1.0.0");
    assert_eq!(project["info"]["requires_python"], ">=3.8");
    assert_eq!(project["info"]["summary"], "Arca test package app-b");
    let requires = project["info"]["requires_dist"].to_string();
    assert!(requires.contains("dep-a>=1.0"), "{requires}");
    assert_eq!(project["urls"].as_array().map(Vec::len), Some(2));
    for file in project["releases"]["1.0.0"]
        .as_array()
        .context("releases")?
    {
        let name = file["filename"].as_str().context("filename")?;
        assert_eq!(
            file["digests"]["sha256"],
            file_sha256(&dist.path().join(name))
        );
        assert_eq!(
            file["digests"]["blake2b_256"].as_str().map(str::len),
            Some(64)
        );
        let packagetype = if name.ends_with(".whl") {
            "bdist_wheel"
        } else {
            "sdist"
        };
        assert_eq!(file["packagetype"], packagetype);
    }
    let release = get_json(&node, &format!("/pypi/{REGISTRY}/pypi/dep-a/1.0.0/json")).await;
    assert_eq!(release["info"]["version"], "1.0.0");
    assert_eq!(release["info"]["yanked"], false);
    let (status, _, _) = get(
        &node,
        &format!("/pypi/{REGISTRY}/pypi/dep-a/9.9/json"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pip_skips_yanked_releases_unless_pinned() -> Result<()> {
    let test = "pip_skips_yanked_releases_unless_pinned";
    let Some(python) = Python::find(test) else {
        return Ok(());
    };
    let node = TestNode::start()?;
    create_pypi_registry(&node).await;
    let dist = tempfile::tempdir()?;
    let mut wheels = Vec::new();
    for version in ["1.0.0", "1.1.0"] {
        let (_, wheel) = python.build(&Project::new("dep_a", version), dist.path())?;
        wheels.push(wheel);
    }
    let wheel_refs: Vec<&Path> = wheels.iter().map(PathBuf::as_path).collect();
    python
        .upload(&node, &node.admin_token, &wheel_refs, &[])?
        .ok()?;
    let index = index_url(&node, &node.admin_token);
    let install = |spec: &str| -> Result<Vec<String>> {
        let target = tempfile::tempdir()?;
        let dir = target.path().to_str().context("path")?;
        python
            .pip(&[
                "install",
                "--no-cache-dir",
                "--index-url",
                &index,
                "--target",
                dir,
                spec,
            ])?
            .ok()?;
        Ok(entries(target.path()))
    };
    assert!(install("dep-a")?.contains(&"dep_a-1.1.0.dist-info".to_string()));

    let yank_url = format!("{}/pypi/{REGISTRY}/yank/dep-a/1.1.0", node.url);
    let anonymous = http().post(&yank_url).send().await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let yanked = http()
        .post(format!("{yank_url}?reason=broken%20%3Cbuild%3E"))
        .basic_auth("__token__", Some(&node.admin_token))
        .send()
        .await?;
    assert_eq!(yanked.status(), StatusCode::OK, "{}", yanked.text().await?);

    let (_, _, page) = get(&node, &format!("/pypi/{REGISTRY}/simple/dep-a/"), None).await;
    let page = String::from_utf8(page)?;
    let line_of = |version: &str| {
        page.lines()
            .find(|l| l.contains(&format!("dep_a-{version}-py3")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line_of("1.1.0").contains("data-yanked=\"broken &lt;build&gt;\""),
        "{page}"
    );
    assert!(!line_of("1.0.0").contains("data-yanked"), "{page}");
    let (_, _, body) = get(
        &node,
        &format!("/pypi/{REGISTRY}/simple/dep-a/"),
        Some(SIMPLE_JSON),
    )
    .await;
    let simple: Value = serde_json::from_slice(&body)?;
    let yanked_flags: Vec<&Value> = simple["files"]
        .as_array()
        .context("files")?
        .iter()
        .map(|f| &f["yanked"])
        .collect();
    assert_eq!(yanked_flags, [&json!(false), &json!("broken <build>")]);

    // pip passes over the yanked release, but still installs it when pinned exactly (PEP 592).
    assert!(install("dep-a")?.contains(&"dep_a-1.0.0.dist-info".to_string()));
    assert!(install("dep-a==1.1.0")?.contains(&"dep_a-1.1.0.dist-info".to_string()));
    let project = get_json(&node, &format!("/pypi/{REGISTRY}/pypi/dep-a/json")).await;
    assert_eq!(project["info"]["version"], "1.0.0");
    let release = get_json(&node, &format!("/pypi/{REGISTRY}/pypi/dep-a/1.1.0/json")).await;
    assert_eq!(release["info"]["yanked"], true);
    assert_eq!(release["info"]["yanked_reason"], "broken <build>");

    let unyanked = http()
        .delete(&yank_url)
        .basic_auth("__token__", Some(&node.admin_token))
        .send()
        .await?;
    assert_eq!(unyanked.status(), StatusCode::OK);
    assert!(install("dep-a")?.contains(&"dep_a-1.1.0.dist-info".to_string()));
    Ok(())
}

/// A twine-style multipart upload body.
fn upload_form(boundary: &str, fields: &[(&str, &str)], filename: &str, content: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_uploads_that_do_not_check_out_are_refused_and_store_nothing() -> Result<()> {
    let node = TestNode::start()?;
    create_pypi_registry(&node).await;
    let content = arca_tests::sdist("dep_a", "1.0.0", false)?;
    let zip = arca_tests::sdist("dep_a", "1.0", true)?;
    let right = sha256_hex(&content);
    let wrong = sha256_hex(b"something else");
    let boundary = "arca-test-boundary";
    let post_bytes = |fields: Vec<(&'static str, String)>,
                      filename: &'static str,
                      content: &[u8],
                      auth: bool| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut request = http()
            .post(format!("{}/pypi/{REGISTRY}/", node.url))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(upload_form(boundary, &fields, filename, content));
        if auth {
            request = request.basic_auth("__token__", Some(&node.admin_token));
        }
        request.send()
    };
    let post = |fields, filename, auth| post_bytes(fields, filename, &content, auth);
    let fields = |digest: &str| {
        vec![
            (":action", "file_upload".to_string()),
            ("protocol_version", "1".to_string()),
            ("name", "dep_a".to_string()),
            ("version", "1.0.0".to_string()),
            ("filetype", "sdist".to_string()),
            ("pyversion", "source".to_string()),
            ("metadata_version", "2.1".to_string()),
            ("sha256_digest", digest.to_string()),
        ]
    };

    let mismatch = post(fields(&wrong), "dep_a-1.0.0.tar.gz", true).await?;
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    let text = mismatch.text().await?;
    assert!(
        text.starts_with("400 ") && text.contains("digest"),
        "{text}"
    );
    assert_eq!(
        artifact_count(&node).await,
        0,
        "a refused upload stored nothing"
    );

    let anonymous = post(fields(&right), "dep_a-1.0.0.tar.gz", false).await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let challenge = anonymous.headers()["www-authenticate"]
        .to_str()?
        .to_string();
    assert!(challenge.starts_with("Basic"), "{challenge}");

    let other_project = post(fields(&right), "other-1.0.0.tar.gz", true).await?;
    assert_eq!(other_project.status(), StatusCode::BAD_REQUEST);
    let other_version = post(fields(&right), "dep_a-2.0.tar.gz", true).await?;
    assert_eq!(other_version.status(), StatusCode::BAD_REQUEST);
    let not_a_wheel = {
        let mut wheel_fields = fields(&right);
        wheel_fields[4].1 = "bdist_wheel".to_string();
        post(wheel_fields, "dep_a-1.0.0-py3-none-any.whl", true).await?
    };
    assert_eq!(not_a_wheel.status(), StatusCode::BAD_REQUEST);
    assert!(not_a_wheel.text().await?.contains("Invalid wheel"));
    // A source distribution must be the archive its extension says.
    let text = b"not really a tarball".as_slice();
    for (filename, bytes) in [
        ("dep_a-1.0.0.tar.gz", text),
        ("dep_a-1.0.0.tar.gz", zip.as_slice()),
        ("dep_a-1.0.0.zip", content.as_slice()),
    ] {
        let response = post_bytes(fields(&sha256_hex(bytes)), filename, bytes, true).await?;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{filename}");
        let text = response.text().await?;
        assert!(text.contains("Invalid distribution file"), "{text}");
    }
    assert_eq!(artifact_count(&node).await, 0);

    let accepted = post(fields(&right), "dep_a-1.0.0.tar.gz", true).await?;
    assert_eq!(
        accepted.status(),
        StatusCode::OK,
        "{}",
        accepted.text().await?
    );
    assert_eq!(artifact_count(&node).await, 1);
    let again = post(fields(&right), "dep_a-1.0.0.tar.gz", true).await?;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(again.text().await?.contains("File already exists"));
    // The same name in other letter case is the same file to pip: refused.
    let shouting = post(fields(&right), "DEP_A-1.0.0.tar.gz", true).await?;
    assert_eq!(shouting.status(), StatusCode::BAD_REQUEST);
    assert!(shouting.text().await?.contains("File already exists"));
    // `1.0` is PEP 440's `1.0.0`: its file joins that release rather than making another.
    let mut short = fields(&sha256_hex(&zip));
    short[3].1 = "1.0".to_string();
    let joined = post_bytes(short, "dep_a-1.0.zip", &zip, true).await?;
    assert_eq!(joined.status(), StatusCode::OK, "{}", joined.text().await?);
    let project = get_json(&node, &format!("/pypi/{REGISTRY}/pypi/dep-a/json")).await;
    let releases: Vec<&String> = project["releases"]
        .as_object()
        .map(|releases| releases.keys().collect())
        .unwrap_or_default();
    assert_eq!(releases, ["1.0.0"], "{project}");
    let (status, _, _) = get(
        &node,
        &format!("/pypi/{REGISTRY}/files/dep-a/1.0.0/dep_a-1.0.zip"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The stored file is served with its digest.
    let (status, _, served) = get(
        &node,
        &format!("/pypi/{REGISTRY}/files/dep-a/1.0.0/dep_a-1.0.0.tar.gz"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, content);
    Ok(())
}
