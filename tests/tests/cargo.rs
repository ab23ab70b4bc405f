//! Cargo registries end to end with the machine's own cargo: crates published with `cargo publish`
//! (one depending on another, one at two versions) and a third project built from Arca alone, the
//! newest compatible version picked; `cargo yank` and `--undo` change what a fresh resolution picks;
//! `cargo search` and `cargo owner --list` answer; a remote registry over the hosted one and a
//! virtual registry over both serve the same build; and `.crate` files that cargo would not unpack
//! (a manifest naming another crate, a path out of the crate's directory) are refused with cargo's
//! error shape, storing nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::clients::{ClientOutput, require_client, run_command};
use arca_tests::remote::{create_registry, local_registry, remote_registry, virtual_registry};
use arca_tests::{TestNode, http};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// cargo with its own home (its registry caches) and the registries `arca` and `arca-all`.
struct CargoClient {
    program: PathBuf,
    home: tempfile::TempDir,
    token: String,
}

impl CargoClient {
    fn new(program: PathBuf, node: &TestNode) -> Result<CargoClient> {
        let home = tempfile::tempdir()?;
        let config = format!(
            "[registries.arca]\nindex = \"sparse+{url}/cargo/crates/index/\"\n\
             credential-provider = \"cargo:token\"\n\
             [registries.arca-all]\nindex = \"sparse+{url}/cargo/crates-all/index/\"\n\
             credential-provider = \"cargo:token\"\n\
             [net]\nretry = 0\n",
            url = node.url
        );
        std::fs::write(home.path().join("config.toml"), config)?;
        Ok(CargoClient {
            program,
            home,
            token: node.admin_token.clone(),
        })
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Result<ClientOutput> {
        let mut command = Command::new(&self.program);
        command
            .args(args)
            .current_dir(dir)
            .env("CARGO_HOME", self.home.path())
            .env("CARGO_REGISTRIES_ARCA_TOKEN", &self.token)
            .env("CARGO_REGISTRIES_ARCA_ALL_TOKEN", &self.token)
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("CARGO_INCREMENTAL")
            .env_remove("RUSTC_WRAPPER");
        run_command(&mut command)
    }
}

/// Writes a library crate `name` `version` whose `describe()` says `body`, with `dependencies`.
fn library(
    root: &Path,
    name: &str,
    version: &str,
    dependencies: &str,
    body: &str,
) -> Result<PathBuf> {
    let dir = root.join(format!("{name}-{version}"));
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\
             description = \"arca test crate {name}\"\nlicense = \"MIT\"\n\n\
             [dependencies]\n{dependencies}"
        ),
    )?;
    std::fs::write(
        dir.join("src/lib.rs"),
        format!("pub fn describe() -> String {{ {body} }}\n"),
    )?;
    Ok(dir)
}

/// Writes a binary project printing `arca_dep_b::describe()`, its dependency from `registry`.
fn application(root: &Path, registry: &str) -> Result<PathBuf> {
    let dir = root.join(format!("app-{registry}"));
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\narca_dep_b = {{ version = \"0.1\", registry = \"{registry}\" }}\n"
        ),
    )?;
    std::fs::write(
        dir.join("src/main.rs"),
        "fn main() { println!(\"{}\", arca_dep_b::describe()); }\n",
    )?;
    Ok(dir)
}

/// Resolves afresh (no lock file) and runs the application: what it prints.
fn build_and_run(cargo: &CargoClient, app: &Path) -> Result<String> {
    let _ = std::fs::remove_file(app.join("Cargo.lock"));
    let output = cargo.run(app, &["run", "--quiet"])?.ok()?;
    Ok(output.stdout.trim().to_string())
}

async fn get_json(node: &TestNode, path: &str) -> Result<(StatusCode, Value)> {
    let response = http()
        .get(format!("{}{path}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_publishes_resolves_yanks_and_builds_through_hosted_remote_and_virtual() -> Result<()>
{
    let test = "cargo_publishes_resolves_yanks_and_builds_through_hosted_remote_and_virtual";
    let Some(program) = require_client("cargo", test) else {
        return Ok(());
    };
    let node = TestNode::start()?;
    create_registry(&node, local_registry("crates", "CARGO")).await?;
    let cargo = CargoClient::new(program, &node)?;
    let work = tempfile::tempdir()?;

    let config = get_json(&node, "/cargo/crates/index/config.json").await?.1;
    ensure!(config["auth-required"] == true, "{config}");
    ensure!(
        config["dl"] == format!("{}/cargo/crates/api/v1/crates", node.url),
        "{config}"
    );

    for version in ["1.0.0", "1.1.0"] {
        let dir = library(
            work.path(),
            "arca-dep-a",
            version,
            "",
            &format!("\"{version}\".to_string()"),
        )?;
        cargo
            .run(&dir, &["publish", "--registry", "arca", "--no-verify"])?
            .ok()?;
    }
    let dep_b = library(
        work.path(),
        "arca_dep_b",
        "0.1.0",
        "arca-dep-a = { version = \"1.0\", registry = \"arca\" }\n",
        "format!(\"b uses a {}\", arca_dep_a::describe())",
    )?;
    // Verified: cargo builds it against arca-dep-a fetched from Arca before publishing.
    cargo
        .run(&dep_b, &["publish", "--registry", "arca"])?
        .ok()?;

    // The index lists both versions in cargo's line format, with the dependency.
    let index = http()
        .get(format!("{}/cargo/crates/index/ar/ca/arca_dep_b", node.url))
        .header("authorization", &node.admin_token)
        .send()
        .await?
        .text()
        .await?;
    let line: Value = serde_json::from_str(index.trim())?;
    ensure!(
        line["name"] == "arca_dep_b" && line["vers"] == "0.1.0",
        "{line}"
    );
    ensure!(
        line["deps"][0]["name"] == "arca-dep-a" && line["deps"][0]["req"] == "^1.0",
        "{line}"
    );

    let app = application(work.path(), "arca")?;
    ensure!(build_and_run(&cargo, &app)? == "b uses a 1.1.0");

    // A yanked version is not picked by a fresh resolution; unyanked, it is again.
    cargo
        .run(
            work.path(),
            &[
                "yank",
                "--registry",
                "arca",
                "--version",
                "1.1.0",
                "arca-dep-a",
            ],
        )?
        .ok()?;
    ensure!(build_and_run(&cargo, &app)? == "b uses a 1.0.0");
    cargo
        .run(
            work.path(),
            &[
                "yank",
                "--undo",
                "--registry",
                "arca",
                "--version",
                "1.1.0",
                "arca-dep-a",
            ],
        )?
        .ok()?;
    ensure!(build_and_run(&cargo, &app)? == "b uses a 1.1.0");

    let found = cargo
        .run(work.path(), &["search", "--registry", "arca", "arca-dep"])?
        .ok()?;
    ensure!(
        found.stdout.contains("arca-dep-a = \"1.1.0\"") && found.stdout.contains("arca_dep_b"),
        "{}",
        found.describe()
    );
    // From the search index: words of the description (the last one a prefix) find both.
    let (_, found) = get_json(&node, "/cargo/crates/api/v1/crates?q=test%20cra").await?;
    ensure!(found["meta"]["total"] == 2, "{found}");
    let owners = cargo
        .run(
            work.path(),
            &["owner", "--list", "--registry", "arca", "arca-dep-a"],
        )?
        .ok()?;
    ensure!(owners.stdout.contains("admin"), "{}", owners.describe());

    // Publishing a version again is refused (cargo sees it in the index first; the server's own
    // refusal is checked with raw requests below).
    let again = work.path().join("arca-dep-a-1.0.0");
    let refused = cargo
        .run(&again, &["publish", "--registry", "arca", "--no-verify"])?
        .failed()?;
    ensure!(
        refused.all().contains("already exists"),
        "{}",
        refused.describe()
    );

    // A remote registry over the hosted one (Basic credentials upstream) and a virtual registry over
    // a local registry and the remote serve the same build.
    create_registry(
        &node,
        remote_registry(
            "crates-remote",
            "CARGO",
            &format!("{}/cargo/crates/index/", node.url),
            &node.admin_token,
            60,
        ),
    )
    .await?;
    create_registry(&node, local_registry("crates-local", "CARGO")).await?;
    create_registry(
        &node,
        virtual_registry(
            "crates-all",
            "CARGO",
            &["crates-local", "crates-remote"],
            Some("crates-local"),
        ),
    )
    .await?;
    let through_virtual = application(work.path(), "arca-all")?;
    ensure!(build_and_run(&cargo, &through_virtual)? == "b uses a 1.1.0");
    // The remote recorded what it fetched.
    let (status, cached) = get_json(
        &node,
        "/api/v1/registries/crates-remote/packages/arca-dep-a",
    )
    .await?;
    ensure!(status == StatusCode::OK, "{status}: {cached}");
    ensure!(cached.to_string().contains("1.1.0"), "{cached}");
    // Publishing through the virtual registry lands in its local member.
    let extra = library(work.path(), "arca-extra", "0.1.0", "", "String::new()")?;
    cargo
        .run(
            &extra,
            &["publish", "--registry", "arca-all", "--no-verify"],
        )?
        .ok()?;
    let (status, _) =
        get_json(&node, "/api/v1/registries/crates-local/packages/arca-extra").await?;
    ensure!(status == StatusCode::OK, "{status}");

    // The firewall blocks a denied version: its download is 403 in cargo's shape, and a cargo with
    // nothing cached cannot fetch it.
    let policy = http()
        .put(format!(
            "{}/api/v1/registries/crates/firewall-policy",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "deny": [{ "package": "arca-dep-a", "version": "1.1.0" }] }))
        .send()
        .await?;
    ensure!(policy.status() == StatusCode::OK, "{}", policy.status());
    let blocked = http()
        .get(format!(
            "{}/cargo/crates/api/v1/crates/arca-dep-a/1.1.0/download",
            node.url
        ))
        .header("authorization", &node.admin_token)
        .send()
        .await?;
    ensure!(
        blocked.status() == StatusCode::FORBIDDEN,
        "{}",
        blocked.status()
    );
    let answer: Value = blocked.json().await?;
    ensure!(answer["errors"][0]["detail"].is_string(), "{answer}");
    let fresh = CargoClient::new(cargo.program.clone(), &node)?;
    let _ = std::fs::remove_file(app.join("Cargo.lock"));
    let refused = fresh.run(&app, &["fetch"])?.failed()?;
    ensure!(refused.all().contains("403"), "{}", refused.describe());
    Ok(())
}

/// The body `cargo publish` sends: the metadata and the `.crate`, each after its u32 length.
fn publish_body(name: &str, version: &str, crate_file: &[u8]) -> Vec<u8> {
    let metadata = serde_json::to_vec(&json!({
        "name": name, "vers": version, "deps": [], "features": {}, "authors": [],
        "description": null, "license": "MIT",
    }))
    .expect("in memory");
    let mut body = Vec::new();
    body.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
    body.extend_from_slice(&metadata);
    body.extend_from_slice(&(crate_file.len() as u32).to_le_bytes());
    body.extend_from_slice(crate_file);
    body
}

/// An archive of `files` (path, text), paths written as given (even ones the client refuses).
fn crate_file(files: &[(&str, &str)]) -> Result<Vec<u8>> {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, t)| (*p, t.as_bytes())).collect();
    arca_tests::tar_gz(&files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crates_cargo_would_not_unpack_are_refused_and_store_nothing() -> Result<()> {
    let node = TestNode::start()?;
    create_registry(&node, local_registry("crates", "CARGO")).await?;
    let manifest = |name: &str| format!("[package]\nname = \"{name}\"\nversion = \"1.0.0\"\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a manifest naming another crate",
            publish_body(
                "evil",
                "1.0.0",
                &crate_file(&[("evil-1.0.0/Cargo.toml", &manifest("other"))])?,
            ),
            "Cargo.toml says other",
        ),
        (
            "a path out of the crate's directory",
            publish_body(
                "evil",
                "1.0.0",
                &crate_file(&[
                    ("evil-1.0.0/Cargo.toml", &manifest("evil")),
                    ("evil-1.0.0/../../etc/passwd", "x"),
                ])?,
            ),
            "outside evil-1.0.0/",
        ),
        (
            "a .crate that is not gzip",
            publish_body("evil", "1.0.0", b"plain bytes"),
            "not gzip",
        ),
        (
            "a crate name cargo refuses",
            publish_body("1evil", "1.0.0", b""),
            "invalid crate name",
        ),
        (
            "a body shorter than it says",
            publish_body("evil", "1.0.0", b"")[..6].to_vec(),
            "ends before",
        ),
    ];
    for (case, body, expected) in cases {
        let response = http()
            .put(format!("{}/cargo/crates/api/v1/crates/new", node.url))
            .header("authorization", &node.admin_token)
            .body(body)
            .send()
            .await?;
        ensure!(
            response.status() == StatusCode::BAD_REQUEST,
            "{case}: {}",
            response.status()
        );
        let answer: Value = response.json().await?;
        let detail = answer["errors"][0]["detail"].as_str().unwrap_or_default();
        ensure!(detail.contains(expected), "{case}: {answer}");
    }
    let (status, listed) = get_json(&node, "/api/v1/artifacts?registry=crates").await?;
    ensure!(status == StatusCode::OK, "{status}");
    ensure!(listed["items"] == json!([]), "{listed}");

    // A good crate goes in once; the same version again, or with build metadata, is refused.
    let good = |version: &str| -> Result<Vec<u8>> {
        let root = format!("good-{version}");
        Ok(publish_body(
            "good",
            version,
            &crate_file(&[(
                &format!("{root}/Cargo.toml"),
                &format!("[package]\nname = \"good\"\nversion = \"{version}\"\n"),
            )])?,
        ))
    };
    for (version, status) in [
        ("1.0.0", StatusCode::OK),
        ("1.0.0", StatusCode::CONFLICT),
        ("1.0.0+build", StatusCode::CONFLICT),
    ] {
        let response = http()
            .put(format!("{}/cargo/crates/api/v1/crates/new", node.url))
            .header("authorization", &node.admin_token)
            .body(good(version)?)
            .send()
            .await?;
        ensure!(
            response.status() == status,
            "{version}: {}",
            response.status()
        );
    }

    // Without a token: 401 with cargo's challenge.
    let anonymous = http()
        .get(format!("{}/cargo/crates/index/config.json", node.url))
        .send()
        .await?;
    ensure!(anonymous.status() == StatusCode::UNAUTHORIZED);
    ensure!(anonymous.headers()["www-authenticate"] == "Cargo");
    Ok(())
}

/// `arca registry configure cargo --global` writes cargo's files (the index in config.toml, the
/// token in credentials.toml), `arca artifact push cargo --dir` packages and publishes a crate, and
/// cargo, with nothing but those files, builds a project that depends on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arca_configures_cargo_and_pushes_a_crate_it_builds_with() -> Result<()> {
    let test = "arca_configures_cargo_and_pushes_a_crate_it_builds_with";
    let Some(cargo_program) = require_client("cargo", test) else {
        return Ok(());
    };
    let node = TestNode::start()?;
    create_registry(&node, local_registry("crates", "CARGO")).await?;
    let work = tempfile::tempdir()?;
    let home = work.path().join("home");
    let cargo_home = home.join(".cargo");
    std::fs::create_dir_all(&cargo_home)?;
    // An existing config keeps what it had.
    std::fs::write(cargo_home.join("config.toml"), "# mine\n[net]\nretry = 0\n")?;
    let arca = |args: &[&str]| -> Result<ClientOutput> {
        let mut command = Command::new(arca_tests::binary("arca"));
        command
            .args(args)
            .current_dir(work.path())
            .env("HOME", &home)
            .env("CARGO_HOME", &cargo_home)
            .env("ARCA_SERVER", &node.url)
            .env("ARCA_TOKEN", &node.admin_token);
        run_command(&mut command)
    };
    arca(&[
        "registry",
        "configure",
        "cargo",
        "--registry",
        "crates",
        "--global",
    ])?
    .ok()?;
    let config = std::fs::read_to_string(cargo_home.join("config.toml"))?;
    ensure!(
        config.contains("# mine") && config.contains("retry = 0"),
        "{config}"
    );
    ensure!(
        config.contains(&format!("sparse+{}/cargo/crates/index/", node.url)),
        "{config}"
    );
    let credentials = std::fs::read_to_string(cargo_home.join("credentials.toml"))?;
    ensure!(credentials.contains(&node.admin_token), "{credentials}");

    let lib = library(
        work.path(),
        "pushed-lib",
        "0.3.0",
        "",
        "\"pushed\".to_string()",
    )?;
    let output = arca(&[
        "artifact",
        "push",
        "cargo",
        "crates",
        "--dir",
        lib.to_str().context("utf-8 path")?,
        "--format",
        "json",
    ])?
    .ok()?;
    let published: Value = serde_json::from_str(&output.stdout)?;
    ensure!(
        published["files"] == json!(["pushed-lib-0.3.0.crate"]),
        "{published}"
    );

    let app = work.path().join("uses-pushed");
    std::fs::create_dir_all(app.join("src"))?;
    std::fs::write(
        app.join("Cargo.toml"),
        "[package]\nname = \"uses-pushed\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\npushed-lib = { version = \"0.3\", registry = \"crates\" }\n",
    )?;
    std::fs::write(
        app.join("src/main.rs"),
        "fn main() { println!(\"{}\", pushed_lib::describe()); }\n",
    )?;
    let mut run = Command::new(cargo_program);
    run.args(["run", "--quiet"])
        .current_dir(&app)
        .env("HOME", &home)
        .env("CARGO_HOME", &cargo_home)
        .env("CARGO_TARGET_DIR", app.join("target"))
        .env_remove("RUSTC_WRAPPER");
    let ran = run_command(&mut run)?.ok()?;
    ensure!(ran.stdout.trim() == "pushed", "{}", ran.describe());
    Ok(())
}

/// The firewall's vulnerability rule blocks the crate versions an OSV advisory of the crates.io
/// ecosystem affects — the advisory naming the crate in its other spelling (`_` for `-`), as
/// crates.io names are compared — while the fixed version downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_osv_advisory_blocks_the_affected_crate_versions() -> Result<()> {
    let node = TestNode::start()?;
    create_registry(&node, local_registry("crates", "CARGO")).await?;
    for version in ["1.0.0", "1.1.0"] {
        let root = format!("arca-vuln-{version}");
        let manifest = format!("[package]\nname = \"arca-vuln\"\nversion = \"{version}\"\n");
        let body = publish_body(
            "arca-vuln",
            version,
            &crate_file(&[(&format!("{root}/Cargo.toml"), &manifest)])?,
        );
        let published = http()
            .put(format!("{}/cargo/crates/api/v1/crates/new", node.url))
            .header("authorization", &node.admin_token)
            .body(body)
            .send()
            .await?;
        ensure!(
            published.status() == StatusCode::OK,
            "{}",
            published.status()
        );
    }
    let policy = http()
        .put(format!(
            "{}/api/v1/registries/crates/firewall-policy",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "vulnerabilities": { "min_severity": "HIGH", "action": "block" } }))
        .send()
        .await?;
    ensure!(policy.status() == StatusCode::OK, "{}", policy.status());

    let advisories = tempfile::tempdir()?;
    std::fs::write(
        advisories.path().join("RUSTSEC-2099-0001.json"),
        serde_json::to_vec(&json!({
            "id": "RUSTSEC-2099-0001",
            "modified": "2099-01-02T00:00:00Z",
            "published": "2099-01-01T00:00:00Z",
            "summary": "arca_vuln runs what it is given",
            "severity": [{ "type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" }],
            "affected": [{
                "package": { "ecosystem": "crates.io", "name": "arca_vuln" },
                "ranges": [{ "type": "SEMVER", "events": [{ "introduced": "0" }, { "fixed": "1.1.0" }] }],
            }],
        }))?,
    )?;
    let imported = node.cli(&[
        "fw",
        "db",
        "import",
        advisories.path().to_str().context("utf-8")?,
    ]);
    ensure!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let download = |version: &'static str| {
        http()
            .get(format!(
                "{}/cargo/crates/api/v1/crates/arca-vuln/{version}/download",
                node.url
            ))
            .header("authorization", &node.admin_token)
            .send()
    };
    let blocked = download("1.0.0").await?;
    ensure!(
        blocked.status() == StatusCode::FORBIDDEN,
        "{}",
        blocked.status()
    );
    let answer: Value = blocked.json().await?;
    ensure!(answer.to_string().contains("RUSTSEC-2099-0001"), "{answer}");
    ensure!(download("1.1.0").await?.status() == StatusCode::OK);
    Ok(())
}
