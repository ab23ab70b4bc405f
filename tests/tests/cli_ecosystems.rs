//! The `arca` CLI with package ecosystems end to end: `arca registry configure npm|pip|maven` writes
//! (and merges) the clients' files, `arca artifact push npm|python|maven` publishes from local files,
//! and the real npm and pip then fetch those packages using nothing but the files `configure` wrote;
//! `arca artifact list` shows every ecosystem's packages with their type.
//!
//! Every client runs with a temporary HOME, config and cache, and talks only to the node on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::clients::{ClientOutput, require_client, run_command};
use arca_tests::{TestNode, binary, http, sha256_hex};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The `arca` CLI run in `dir` against `node` with the admin token, with the same isolated HOME as
/// [`TestNode::cli`].
fn arca_in(node: &TestNode, dir: &Path, args: &[&str]) -> Result<ClientOutput> {
    let home = cli_home(node);
    std::fs::create_dir_all(&home)?;
    let mut command = Command::new(binary("arca"));
    command
        .args(args)
        .current_dir(dir)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("ARCA_SERVER", &node.url)
        .env("ARCA_TOKEN", &node.admin_token);
    run_command(&mut command)
}

/// The HOME the CLI runs with.
fn cli_home(node: &TestNode) -> PathBuf {
    node.data_dir().join("cli-home")
}

/// `arca ... --format json` in `dir`, parsed.
fn arca_json(node: &TestNode, dir: &Path, args: &[&str]) -> Result<Value> {
    let output = arca_in(node, dir, &[args, &["--format", "json"]].concat())?.ok()?;
    serde_json::from_str(&output.stdout).with_context(|| format!("not JSON: {}", output.stdout))
}

fn create_registry(node: &TestNode, name: &str, package_type: &str) -> Result<()> {
    let dir = node.data_dir();
    arca_in(
        node,
        dir,
        &["registry", "create", name, "--package-type", package_type],
    )?
    .ok()?;
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn mode(path: &Path) -> Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

/// `//127.0.0.1:PORT/npm/<registry>/`
fn npm_auth_prefix(node: &TestNode, registry: &str) -> String {
    format!("{}/npm/{registry}/", node.url.trim_start_matches("http:"))
}

#[tokio::test]
async fn configure_writes_and_merges_client_files() -> Result<()> {
    let node = TestNode::start()?;
    create_registry(&node, "js", "NPM")?;
    create_registry(&node, "py", "PYPI")?;
    create_registry(&node, "mvn", "MAVEN")?;
    let project = tempfile::tempdir()?;
    let dir = project.path();
    let npmrc = dir.join(".npmrc");
    std::fs::write(
        &npmrc,
        "# keep me\nsave-exact=true\nregistry=http://old.example/\n",
    )?;
    let token = &node.admin_token;
    let url = format!("{}/npm/js/", node.url);
    let auth = format!("{}:_authToken={token}", npm_auth_prefix(&node, "js"));

    // Project level (the default): the registry line is replaced, the others kept.
    let answer = arca_json(
        &node,
        dir,
        &["registry", "configure", "npm", "--registry", "js"],
    )?;
    assert_eq!(
        answer,
        json!({ "ecosystem": "npm", "registry": "js", "files": [npmrc.canonicalize()?] })
    );
    let text = read(&npmrc)?;
    assert_eq!(
        text,
        format!("# keep me\nsave-exact=true\nregistry={url}\n{auth}\n")
    );

    // A scope adds its own line; running again changes nothing else and repeats no line.
    arca_in(
        &node,
        dir,
        &[
            "reg",
            "configure",
            "npm",
            "--registry",
            "js",
            "--scope",
            "@org",
            "--project-level",
        ],
    )?
    .ok()?;
    arca_in(
        &node,
        dir,
        &[
            "reg",
            "configure",
            "npm",
            "--registry",
            "js",
            "--scope",
            "@org",
        ],
    )?
    .ok()?;
    assert_eq!(
        read(&npmrc)?,
        format!("# keep me\nsave-exact=true\nregistry={url}\n{auth}\n@org:registry={url}\n")
    );

    // Global: the user's ~/.npmrc, owner-only.
    let table = arca_in(
        &node,
        dir,
        &["reg", "configure", "npm", "--registry", "js", "--global"],
    )?
    .ok()?
    .stdout;
    let global = cli_home(&node).join(".npmrc");
    assert!(table.contains(&global.display().to_string()), "{table}");
    assert_eq!(read(&global)?, format!("registry={url}\n{auth}\n"));
    assert_eq!(mode(&global)?, 0o600);

    // --global and --project-level exclude each other; a registry of another type is refused.
    let both = [
        "reg",
        "configure",
        "npm",
        "--registry",
        "js",
        "--global",
        "--project-level",
    ];
    arca_in(&node, dir, &both)?.failed()?;
    let wrong = arca_in(&node, dir, &["reg", "configure", "pip", "--registry", "js"])?.failed()?;
    assert!(wrong.stderr.contains("not PYPI"), "{}", wrong.describe());

    // pip: pip.conf with the token in the index URL and a .pypirc for twine, project and global.
    let pip = arca_in(&node, dir, &["reg", "configure", "pip", "--registry", "py"])?.ok()?;
    assert!(
        pip.stdout.contains("PIP_CONFIG_FILE="),
        "{}",
        pip.describe()
    );
    let host = node.url.trim_start_matches("http://");
    let index = format!("http://__token__:{token}@{host}/pypi/py/simple/");
    assert_eq!(
        read(&dir.join("pip.conf"))?,
        format!("[global]\nindex-url = {index}\n")
    );
    let pypirc = format!(
        "[distutils]\nindex-servers = arca\n\n[arca]\nrepository = {}/pypi/py/\n\
         username = __token__\npassword = {token}\n",
        node.url
    );
    assert_eq!(read(&dir.join(".pypirc"))?, pypirc);
    let home = cli_home(&node);
    std::fs::write(
        home.join(".pypirc"),
        "[distutils]\nindex-servers =\n    pypi\n\n[pypi]\nusername = me\n",
    )?;
    arca_in(
        &node,
        dir,
        &["reg", "configure", "pip", "--registry", "py", "--global"],
    )?
    .ok()?;
    assert_eq!(
        read(&home.join(".config/pip/pip.conf"))?,
        format!("[global]\nindex-url = {index}\n")
    );
    let merged = read(&home.join(".pypirc"))?;
    assert!(
        merged.starts_with("[distutils]\nindex-servers = pypi arca\n\n[pypi]\nusername = me\n"),
        "{merged}"
    );
    assert_eq!(mode(&home.join(".pypirc"))?, 0o600);

    // Maven: settings.xml with the server and an active profile; never overwritten without --force.
    let maven = arca_in(
        &node,
        dir,
        &["reg", "configure", "maven", "--registry", "mvn"],
    )?
    .ok()?;
    assert!(
        maven.stdout.contains("<distributionManagement>") && maven.stdout.contains("mvn -s"),
        "{}",
        maven.describe()
    );
    let settings = read(&dir.join("settings.xml"))?;
    let repository = format!("<url>{}/maven/mvn/</url>", node.url);
    for expected in [
        "<id>arca</id>",
        "<username>arca</username>",
        &format!("<password>{token}</password>"),
        "<activeByDefault>true</activeByDefault>",
        &repository,
        "<snapshots><enabled>true</enabled></snapshots>",
        "<pluginRepository>",
    ] {
        assert!(
            settings.contains(expected),
            "{expected} missing:\n{settings}"
        );
    }
    let refused = arca_in(
        &node,
        dir,
        &["reg", "configure", "maven", "--registry", "mvn"],
    )?;
    let refused = refused.failed()?;
    assert!(refused.stderr.contains("--force"), "{}", refused.describe());
    let forced = arca_json(
        &node,
        dir,
        &["reg", "configure", "maven", "--registry", "mvn", "--force"],
    )?;
    assert_eq!(
        forced["files"][0],
        json!(dir.join("settings.xml").canonicalize()?)
    );
    Ok(())
}

/// npm with a temporary HOME and cache and no user or global config: only a project `.npmrc` in the
/// directory it runs in can point it anywhere.
fn npm(bin: &Path, home: &Path, dir: &Path, args: &[&str]) -> Result<ClientOutput> {
    let mut command = Command::new(bin);
    for (key, _) in std::env::vars_os() {
        let lower = key.to_string_lossy().to_ascii_lowercase();
        if lower.starts_with("npm_config_") || lower == "npm_token" {
            command.env_remove(&key);
        }
    }
    command
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("npm_config_userconfig", home.join("no-user-npmrc"))
        .env("npm_config_globalconfig", home.join("no-global-npmrc"))
        .env("npm_config_cache", home.join("cache"))
        .env("npm_config_update_notifier", "false")
        .env("npm_config_audit", "false")
        .env("npm_config_fund", "false");
    run_command(&mut command)
}

/// `npm pack` of a one-file package `name`; answers the tarball's path.
fn npm_pack(bin: &Path, home: &Path, dir: &Path, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let manifest = json!({ "name": name, "version": "1.0.0", "main": "index.js",
                           "description": "made by cli_ecosystems" });
    std::fs::write(dir.join("package.json"), manifest.to_string())?;
    std::fs::write(
        dir.join("index.js"),
        format!("module.exports = {name:?};\n"),
    )?;
    npm(bin, home, dir, &["pack"])?.ok()?;
    let tarball = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "tgz"))
        .context("npm pack made no .tgz")?;
    Ok(tarball)
}

/// A minimal wheel and sdist of `arca_cli_demo` 1.0.0, written by Python's zipfile and tarfile.
fn python_distributions(python: &Path, out: &Path) -> Result<(PathBuf, PathBuf)> {
    let script = r#"
import io, sys, tarfile, zipfile
out = sys.argv[1]
metadata = "Metadata-Version: 2.1\nName: arca-cli-demo\nVersion: 1.0.0\nSummary: pushed by arca\n\nLong text.\n"
info = "arca_cli_demo-1.0.0.dist-info/"
with zipfile.ZipFile(out + "/arca_cli_demo-1.0.0-py3-none-any.whl", "w") as wheel:
    wheel.writestr("arca_cli_demo/__init__.py", "VALUE = 1\n")
    wheel.writestr(info + "METADATA", metadata)
    wheel.writestr(info + "WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    wheel.writestr(info + "RECORD", "")
with tarfile.open(out + "/arca_cli_demo-1.0.0.tar.gz", "w:gz") as sdist:
    for name, text in [("PKG-INFO", metadata), ("arca_cli_demo/__init__.py", "VALUE = 1\n")]:
        data = text.encode()
        member = tarfile.TarInfo("arca_cli_demo-1.0.0/" + name)
        member.size = len(data)
        sdist.addfile(member, io.BytesIO(data))
"#;
    let out_text = out.to_str().context("temporary path is not UTF-8")?;
    run_ok(python, &["-c", script, out_text])?;
    Ok((
        out.join("arca_cli_demo-1.0.0-py3-none-any.whl"),
        out.join("arca_cli_demo-1.0.0.tar.gz"),
    ))
}

/// Runs `program` and insists that it succeeds.
fn run_ok(program: &Path, args: &[&str]) -> Result<ClientOutput> {
    run_command(Command::new(program).args(args))?.ok()
}

/// An authenticated GET on the node: status and body.
async fn get(node: &TestNode, path: &str) -> Result<(StatusCode, Vec<u8>)> {
    let response = http()
        .get(format!("{}{path}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    Ok((response.status(), response.bytes().await?.to_vec()))
}

#[tokio::test]
async fn clients_fetch_what_arca_pushed_using_the_configured_files() -> Result<()> {
    const TEST: &str = "clients_fetch_what_arca_pushed_using_the_configured_files";
    let Some(npm_bin) = require_client("npm", TEST) else {
        return Ok(());
    };
    let Some(pip_bin) = require_client("pip", TEST) else {
        return Ok(());
    };
    let Some(python) = require_client("python3", TEST) else {
        return Ok(());
    };
    let node = TestNode::start()?;
    create_registry(&node, "js", "NPM")?;
    create_registry(&node, "py", "PYPI")?;
    create_registry(&node, "mvn", "MAVEN")?;
    let work = tempfile::tempdir()?;
    let home = work.path().join("home");
    std::fs::create_dir_all(&home)?;

    // npm: pack two packages (one scoped), push them with arca, install them with only the .npmrc
    // `configure` wrote.
    let plain = npm_pack(&npm_bin, &home, &work.path().join("plain"), "arca-cli-demo")?;
    let scoped = npm_pack(
        &npm_bin,
        &home,
        &work.path().join("scoped"),
        "@arca-test/util",
    )?;
    let pushed = arca_json(
        &node,
        work.path(),
        &[
            "artifact",
            "push",
            "npm",
            "js",
            plain.to_str().context("path")?,
        ],
    )?;
    assert_eq!(pushed["package"], "arca-cli-demo");
    assert_eq!(pushed["version"], "1.0.0");
    assert_eq!(pushed["tags"], json!(["latest"]));
    let table = arca_in(
        &node,
        work.path(),
        &[
            "art",
            "push",
            "npm",
            "js",
            scoped.to_str().context("path")?,
            "--tag",
            "beta",
        ],
    )?
    .ok()?
    .stdout;
    assert!(
        table.contains("@arca-test/util") && table.contains("beta"),
        "{table}"
    );
    let consumer = work.path().join("consumer");
    std::fs::create_dir_all(&consumer)?;
    std::fs::write(
        consumer.join("package.json"),
        json!({ "name": "consumer", "version": "1.0.0", "private": true }).to_string(),
    )?;
    arca_in(
        &node,
        &consumer,
        &["reg", "configure", "npm", "--registry", "js"],
    )?
    .ok()?;
    arca_in(
        &node,
        &consumer,
        &[
            "reg",
            "configure",
            "npm",
            "--registry",
            "js",
            "--scope",
            "@arca-test",
        ],
    )?
    .ok()?;
    npm(
        &npm_bin,
        &home,
        &consumer,
        &["install", "arca-cli-demo", "@arca-test/util@beta"],
    )?
    .ok()?;
    for installed in ["arca-cli-demo", "@arca-test/util"] {
        let manifest = read(
            &consumer
                .join("node_modules")
                .join(installed)
                .join("package.json"),
        )?;
        assert!(manifest.contains("\"1.0.0\""), "{installed}: {manifest}");
    }
    let package = arca_json(
        &node,
        work.path(),
        &["artifact", "get", "@arca-test/util", "--registry", "js"],
    )?;
    assert_eq!(package["versions"][0]["tags"], json!(["beta"]));
    // What npm recorded for the version travels with it: its manifest, as published.
    let manifest: Value = serde_json::from_str(
        package["versions"][0]["attributes"]["npm.manifest"]
            .as_str()
            .expect("npm.manifest attribute"),
    )?;
    assert_eq!(manifest["name"], "@arca-test/util");

    // Python: push a wheel and an sdist with arca, download the wheel with pip using the pip.conf
    // `configure` wrote.
    let dists = work.path().join("dists");
    std::fs::create_dir_all(&dists)?;
    let (wheel, sdist) = python_distributions(&python, &dists)?;
    let pushed = arca_json(
        &node,
        work.path(),
        &[
            "artifact",
            "push",
            "python",
            "py",
            wheel.to_str().context("path")?,
            sdist.to_str().context("path")?,
        ],
    )?;
    assert_eq!(pushed[0]["package"], "arca-cli-demo");
    assert_eq!(pushed[1]["files"], json!(["arca_cli_demo-1.0.0.tar.gz"]));
    let (status, body) = get(&node, "/pypi/py/pypi/arca-cli-demo/json").await?;
    ensure!(status == StatusCode::OK, "JSON API: {status}");
    let release: Value = serde_json::from_slice(&body)?;
    assert_eq!(release["info"]["summary"], "pushed by arca");
    assert_eq!(
        release["urls"].as_array().map(Vec::len),
        Some(2),
        "{release}"
    );
    let pip_dir = work.path().join("pip-project");
    std::fs::create_dir_all(&pip_dir)?;
    arca_in(
        &node,
        &pip_dir,
        &["reg", "configure", "pip", "--registry", "py"],
    )?
    .ok()?;
    let downloads = work.path().join("downloads");
    let mut command = Command::new(&pip_bin);
    for name in [
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_FIND_LINKS",
        "PIP_TRUSTED_HOST",
    ] {
        command.env_remove(name);
    }
    command
        .args([
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "arca-cli-demo==1.0.0",
            "-d",
        ])
        .arg(&downloads)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("PIP_CONFIG_FILE", pip_dir.join("pip.conf"))
        .env("PIP_NO_INPUT", "1")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring");
    run_command(&mut command)?.ok()?;
    let fetched = std::fs::read(downloads.join("arca_cli_demo-1.0.0-py3-none-any.whl"))?;
    assert_eq!(sha256_hex(&fetched), sha256_hex(&std::fs::read(&wheel)?));

    // Maven: push a jar with a generated POM and one with a given POM; the layout serves them.
    let jar = work.path().join("demo.jar");
    let jar_bytes = b"PK\x03\x04 not really a jar".to_vec();
    std::fs::write(&jar, &jar_bytes)?;
    let coordinates = ["--group", "org.example", "--artifact", "demo"];
    let pushed = arca_json(
        &node,
        work.path(),
        &[
            &["artifact", "push", "maven", "mvn", "demo.jar"][..],
            &coordinates,
            &["--version", "1.0"],
        ]
        .concat(),
    )?;
    assert_eq!(pushed["package"], "org.example:demo");
    assert_eq!(pushed["files"], json!(["demo-1.0.jar", "demo-1.0.pom"]));
    let pom = work.path().join("pom.xml");
    std::fs::write(
        &pom,
        "<project><modelVersion>4.0.0</modelVersion><groupId>org.example</groupId>\
         <artifactId>demo</artifactId><version>1.1</version><name>given</name></project>\n",
    )?;
    arca_in(
        &node,
        work.path(),
        &[
            &["artifact", "push", "maven", "mvn", "demo.jar"][..],
            &coordinates,
            &["--version", "1.1", "--pom", "pom.xml"],
        ]
        .concat(),
    )?
    .ok()?;
    let base = "/maven/mvn/org/example/demo";
    let (status, body) = get(&node, &format!("{base}/1.0/demo-1.0.jar")).await?;
    assert_eq!((status, body), (StatusCode::OK, jar_bytes.clone()));
    let (status, body) = get(&node, &format!("{base}/1.0/demo-1.0.pom")).await?;
    let generated = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::OK);
    assert!(
        generated.contains("<artifactId>demo</artifactId>"),
        "{generated}"
    );
    let (_, body) = get(&node, &format!("{base}/1.1/demo-1.1.pom")).await?;
    assert!(String::from_utf8_lossy(&body).contains("<name>given</name>"));
    let (status, body) = get(&node, &format!("{base}/maven-metadata.xml")).await?;
    let metadata = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::OK);
    for version in ["<version>1.0</version>", "<version>1.1</version>"] {
        assert!(metadata.contains(version), "{version} missing:\n{metadata}");
    }

    // The listing shows every ecosystem's packages with their registry's type.
    let listing = arca_json(&node, work.path(), &["artifact", "list"])?;
    let mut seen: Vec<(String, String)> = listing["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|item| {
            (
                item["package_type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                item["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("MAVEN".to_string(), "org.example:demo".to_string()),
            ("NPM".to_string(), "@arca-test/util".to_string()),
            ("NPM".to_string(), "arca-cli-demo".to_string()),
            ("PYPI".to_string(), "arca-cli-demo".to_string()),
        ]
    );
    let table = arca_in(&node, work.path(), &["artifact", "list"])?
        .ok()?
        .stdout;
    assert!(table.contains("TYPE") && table.contains("MAVEN"), "{table}");
    Ok(())
}
