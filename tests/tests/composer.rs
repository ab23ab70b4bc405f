//! Composer registries end to end with Debian's composer 2: package zips (one at two versions, one
//! depending on it and archived inside a top directory as Git hosts make them) uploaded with `arca
//! artifact push composer`; a project configured by `arca registry configure composer` installs
//! both from Arca alone, the newest version the constraint allows, and runs; a remote registry over
//! the hosted one and a virtual registry over both serve the same install; the firewall blocks a
//! version's dist; and zips that are no Composer package are refused, storing nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::clients::{ClientOutput, require_client, run_command};
use arca_tests::remote::{create_registry, local_registry, remote_registry, virtual_registry};
use arca_tests::{TestNode, http, zip_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A package zip of `name` whose class says `body`; `top` puts it in a top directory.
fn package_zip(
    root: &Path,
    name: &str,
    version: &str,
    require: Value,
    body: &str,
    top: bool,
) -> Result<PathBuf> {
    let (vendor, package) = name.split_once('/').context("vendor/name")?;
    let class = package[..1].to_uppercase() + &package[1..];
    let namespace = format!("Acme\\\\{class}");
    let manifest = json!({
        "name": name,
        "description": format!("arca test package {name}"),
        "license": "MIT",
        "require": require,
        "autoload": { "psr-4": { format!("Acme\\{class}\\"): "src/" } },
    });
    let prefix = if top {
        format!("{vendor}-{package}-abc123/")
    } else {
        String::new()
    };
    let php = format!(
        "<?php\nnamespace {};\n\nclass {class}\n{{\n    public static function say(): string\n    {{\n        {body}\n    }}\n}}\n",
        namespace.replace("\\\\", "\\")
    );
    let zip = zip_of(&[
        (
            &format!("{prefix}composer.json"),
            manifest.to_string().as_bytes(),
        ),
        (&format!("{prefix}src/{class}.php"), php.as_bytes()),
    ])?;
    let path = root.join(format!("{vendor}-{package}-{version}.zip"));
    std::fs::write(&path, zip)?;
    Ok(path)
}

/// composer with its own home and cache.
struct ComposerClient {
    program: PathBuf,
    home: tempfile::TempDir,
}

impl ComposerClient {
    fn run(&self, dir: &Path, args: &[&str]) -> Result<ClientOutput> {
        let mut command = Command::new(&self.program);
        command
            .args(args)
            .arg("--no-interaction")
            .current_dir(dir)
            .env("COMPOSER_HOME", self.home.path().join("home"))
            .env("COMPOSER_CACHE_DIR", self.home.path().join("cache"))
            .env("COMPOSER_ALLOW_SUPERUSER", "1")
            .env_remove("COMPOSER_AUTH");
        run_command(&mut command)
    }
}

/// A project requiring `acme/shout`, packagist.org switched off; `arca registry configure
/// composer` adds the registry and the credentials.
fn project(node: &TestNode, root: &Path, registry: &str) -> Result<PathBuf> {
    let dir = root.join(format!("app-{registry}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("composer.json"),
        json!({
            "name": "acme/app",
            "require": { "acme/shout": "^1.0" },
            "repositories": { "packagist.org": false },
        })
        .to_string(),
    )?;
    let configured = node
        .cli_command(
            Some(&node.admin_token),
            &["registry", "configure", "composer", "--registry", registry],
        )
        .current_dir(&dir)
        .output()?;
    ensure!(
        configured.status.success(),
        "{}",
        String::from_utf8_lossy(&configured.stderr)
    );
    Ok(dir)
}

fn install_and_run(composer: &ComposerClient, app: &Path) -> Result<String> {
    let _ = std::fs::remove_file(app.join("composer.lock"));
    let _ = std::fs::remove_dir_all(app.join("vendor"));
    composer.run(app, &["install"])?.ok()?;
    let output = run_command(Command::new("php").current_dir(app).args([
        "-r",
        "require 'vendor/autoload.php'; echo Acme\\Shout\\Shout::say();",
    ]))?
    .ok()?;
    Ok(output.stdout.trim().to_string())
}

fn push(node: &TestNode, registry: &str, zip: &Path, version: &str) -> Result<()> {
    let output = node.cli(&[
        "artifact",
        "push",
        "composer",
        registry,
        zip.to_str().context("a UTF-8 path")?,
        "--version",
        version,
    ]);
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composer_installs_through_hosted_remote_and_virtual_registries() -> Result<()> {
    let test = "composer_installs_through_hosted_remote_and_virtual_registries";
    let Some(program) = require_client("composer", test) else {
        return Ok(());
    };
    let node = TestNode::start()?;
    create_registry(&node, local_registry("php", "COMPOSER")).await?;
    let composer = ComposerClient {
        program,
        home: tempfile::tempdir()?,
    };
    let work = tempfile::tempdir()?;
    for version in ["1.0.0", "1.1.0"] {
        let zip = package_zip(
            work.path(),
            "acme/greet",
            version,
            json!({}),
            &format!("return 'hello {version}';"),
            false,
        )?;
        push(&node, "php", &zip, version)?;
    }
    let shout = package_zip(
        work.path(),
        "acme/shout",
        "1.0.0",
        json!({ "acme/greet": "^1.0" }),
        "return strtoupper(\\Acme\\Greet\\Greet::say());",
        true,
    )?;
    push(&node, "php", &shout, "1.0.0")?;

    // The repository as composer reads it.
    let get = |path: &str| {
        let request = http()
            .get(format!("{}/composer/{path}", node.url))
            .bearer_auth(&node.admin_token);
        async move {
            let response = request.send().await?;
            anyhow::Ok((
                response.status(),
                response.json::<Value>().await.unwrap_or(Value::Null),
            ))
        }
    };
    let (status, root) = get("php/packages.json").await?;
    ensure!(status == StatusCode::OK, "{status}");
    ensure!(
        root["metadata-url"] == format!("{}/composer/php/p2/%package%.json", node.url)
            && root["available-packages"] == json!(["acme/greet", "acme/shout"]),
        "{root}"
    );
    let (_, metadata) = get("php/p2/acme/greet.json").await?;
    let versions = metadata["packages"]["acme/greet"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(versions.len() == 2, "{metadata}");
    ensure!(
        versions
            .iter()
            .all(|v| v["dist"]["shasum"].as_str().is_some_and(|s| s.len() == 40)),
        "{metadata}"
    );

    let app = project(&node, work.path(), "php")?;
    ensure!(
        install_and_run(&composer, &app)? == "HELLO 1.1.0",
        "composer picked another acme/greet"
    );
    let lock: Value = serde_json::from_str(&std::fs::read_to_string(app.join("composer.lock"))?)?;
    let locked: Vec<String> = lock["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap_or(""),
                p["version"].as_str().unwrap_or("")
            )
        })
        .collect();
    ensure!(
        locked == ["acme/greet 1.1.0", "acme/shout 1.0.0"],
        "{locked:?}"
    );

    // A remote registry over the hosted one and a virtual registry over a local registry and the
    // remote serve the same install.
    create_registry(
        &node,
        remote_registry(
            "php-remote",
            "COMPOSER",
            &format!("{}/composer/php", node.url),
            &node.admin_token,
            60,
        ),
    )
    .await?;
    create_registry(&node, local_registry("php-local", "COMPOSER")).await?;
    create_registry(
        &node,
        virtual_registry(
            "php-all",
            "COMPOSER",
            &["php-local", "php-remote"],
            Some("php-local"),
        ),
    )
    .await?;
    let through_virtual = project(&node, work.path(), "php-all")?;
    let _ = std::fs::remove_dir_all(composer.home.path().join("cache"));
    ensure!(install_and_run(&composer, &through_virtual)? == "HELLO 1.1.0");
    let cached = http()
        .get(format!(
            "{}/api/v1/registries/php-remote/packages/acme%2Fgreet",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(cached.status() == StatusCode::OK, "{}", cached.status());

    // The firewall blocks a denied version's dist.
    let policy = http()
        .put(format!(
            "{}/api/v1/registries/php/firewall-policy",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "deny": [{ "package": "acme/greet", "version": "1.0.0" }] }))
        .send()
        .await?;
    ensure!(policy.status() == StatusCode::OK, "{}", policy.status());
    let blocked = http()
        .get(format!(
            "{}/composer/php/dist/acme/greet/1.0.0.zip",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(
        blocked.status() == StatusCode::FORBIDDEN,
        "{}",
        blocked.status()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zips_that_are_no_composer_package_are_refused_and_store_nothing() -> Result<()> {
    let node = TestNode::start()?;
    create_registry(&node, local_registry("php", "COMPOSER")).await?;
    let put = |path: &str, body: Vec<u8>, token: bool| {
        let mut request = http()
            .put(format!("{}/composer/php/packages/{path}", node.url))
            .body(body);
        if token {
            request = request.bearer_auth(&node.admin_token);
        }
        async move {
            let response = request.send().await?;
            let status = response.status();
            anyhow::Ok((status, response.text().await?))
        }
    };
    let manifest = |name: &str| json!({ "name": name }).to_string().into_bytes();
    for (path, body, why) in [
        (
            "acme/x/1.0.0",
            zip_of(&[("README.md", b"no manifest")])?,
            "no composer.json",
        ),
        (
            "acme/x/1.0.0",
            zip_of(&[("composer.json", &manifest("acme/other"))])?,
            "acme/other",
        ),
        (
            "acme/x/1.0.0",
            zip_of(&[("composer.json", b"{not json")])?,
            "not valid JSON",
        ),
        (
            "acme/x/1.0.0",
            zip_of(&[
                ("composer.json", &manifest("acme/x")),
                ("../evil.php", b"<?php"),
            ])?,
            "outside the archive",
        ),
        (
            "acme/x/latest",
            zip_of(&[("composer.json", &manifest("acme/x"))])?,
            "invalid version",
        ),
        (
            "Acme/x/1.0.0",
            zip_of(&[("composer.json", &manifest("Acme/x"))])?,
            "invalid package name",
        ),
        ("acme/x/1.0.0", b"not a zip".to_vec(), "not a zip"),
    ] {
        let (status, text) = put(path, body, true).await?;
        ensure!(status == StatusCode::BAD_REQUEST, "{why}: {status} {text}");
        ensure!(text.contains(why), "{text} lacks {why:?}");
    }
    let valid = zip_of(&[("composer.json", &manifest("acme/x"))])?;
    let (status, _) = put("acme/x/1.0.0", valid.clone(), false).await?;
    ensure!(status == StatusCode::UNAUTHORIZED, "{status}");
    let listed = http()
        .get(format!("{}/composer/php/p2/acme/x.json", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(
        listed.status() == StatusCode::NOT_FOUND,
        "a refused upload stored something"
    );
    let (status, text) = put("acme/x/1.0.0", valid.clone(), true).await?;
    ensure!(status == StatusCode::CREATED, "{status}: {text}");
    let (status, _) = put("acme/x/1.0.0", valid, true).await?;
    ensure!(status == StatusCode::CONFLICT, "{status}");
    Ok(())
}
