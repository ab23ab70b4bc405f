//! Debian registries end to end with the machine's real `apt-get`, run against Arca as its only
//! source in a throwaway root, with signature checking on (the registry's key as `signed-by`, as
//! `arca registry configure apt` writes it): real packages of the machine's own distribution
//! (`hello` and the packages it needs, fetched by `scripts/install-clients.sh`) and packages built
//! with `dpkg-deb` (one depending on another, in two components), uploaded with `arca artifact push
//! debian`; `apt-get update` and `apt-get install --download-only` resolve and fetch them through a
//! hosted registry, a remote one over it, a remote one over a static mirror laid out as Debian's
//! (its Release listing the plain `Packages` it serves only as `.xz`) and a virtual one; a rotated
//! key makes apt refuse the repository until it is given the new key; the firewall blocks a
//! version an imported Debian OSV advisory names; and bad uploads are refused, storing nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::advisories::block_before;
use arca_tests::clients::{ClientOutput, in_ci, require_client, run_command};
use arca_tests::remote::{create_registry, local_registry, remote_registry, virtual_registry};
use arca_tests::static_server::StaticServer;
use arca_tests::{TestNode, http, raw_http, sha256_hex};
use reqwest::StatusCode;

/// The real packages the test installs: `hello` and every package it needs, as
/// `scripts/install-clients.sh` fetched them (the machine's own distribution's).
fn real_packages(test: &str) -> Option<Vec<PathBuf>> {
    let dir = PathBuf::from(
        std::env::var("ARCA_DEBIAN_PACKAGES").unwrap_or("/opt/arca-debian-packages".into()),
    );
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|e| e == "deb"))
                .collect()
        })
        .unwrap_or_default();
    debs.sort();
    if debs.iter().any(|deb| file_name(deb).starts_with("hello_")) {
        return Some(debs);
    }
    if in_ci() {
        panic!(
            "{test}: {} lacks the test's packages; `bash scripts/install-clients.sh` fetches them",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED {test}: {} lacks the test's packages",
        dir.display()
    );
    None
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
}

/// The name apt gives a package file in its cache (the epoch's `:` escaped).
fn cached_name(path: &Path) -> String {
    file_name(path).replace(':', "%3a")
}

/// Builds `<name>_<version>_all.deb` in `out` with `dpkg-deb`, its control file holding `extra`
/// fields.
fn build_deb(out: &Path, name: &str, version: &str, extra: &str) -> Result<PathBuf> {
    let root = out.join(format!("{name}-{version}"));
    std::fs::create_dir_all(root.join("DEBIAN"))?;
    std::fs::create_dir_all(root.join(format!("usr/share/doc/{name}")))?;
    std::fs::write(
        root.join(format!("usr/share/doc/{name}/README")),
        format!("{name} {version}\n"),
    )?;
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Arca <arca@example.invalid>\n{extra}Description: {name} for the Debian test\n A package built by the test.\n"
        ),
    )?;
    let deb = out.join(format!("{name}_{version}_all.deb"));
    run_command(
        Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(&root)
            .arg(&deb),
    )?
    .ok()?;
    Ok(deb)
}

/// A throwaway apt root using only the files `arca registry configure apt` wrote in `config`.
struct Apt {
    root: tempfile::TempDir,
    list: PathBuf,
    auth: PathBuf,
}

impl Apt {
    fn new(config: &Path, registry: &str) -> Result<Apt> {
        let root = tempfile::tempdir()?;
        for dir in [
            "etc/apt/preferences.d",
            "etc/apt/apt.conf.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
        ] {
            std::fs::create_dir_all(root.path().join(dir))?;
        }
        std::fs::write(root.path().join("var/lib/dpkg/status"), "")?;
        Ok(Apt {
            root,
            list: config.join(format!("arca-{registry}.list")),
            auth: config.join(format!("arca-{registry}-auth.conf")),
        })
    }

    fn run(&self, args: &[&str]) -> Result<ClientOutput> {
        let root = self.root.path().display();
        let options = [
            format!("Dir={root}"),
            format!("Dir::State::status={root}/var/lib/dpkg/status"),
            format!("Dir::Etc::SourceList={}", self.list.display()),
            "Dir::Etc::SourceParts=/dev/null".into(),
            format!("Dir::Etc::netrc={}", self.auth.display()),
            "Dir::Etc::Parts=/dev/null".into(),
            "Debug::NoLocking=1".into(),
            "APT::Sandbox::User=root".into(),
            "Acquire::http::Proxy=DIRECT".into(),
            "Acquire::Retries=0".into(),
        ];
        let mut command = Command::new("apt-get");
        for option in &options {
            command.arg("-o").arg(option);
        }
        command
            .args(args)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env("DEBIAN_FRONTEND", "noninteractive");
        run_command(&mut command)
    }

    /// `apt-get update`, then `install --download-only` of `packages`: the files fetched.
    fn download(&self, packages: &[&str]) -> Result<Vec<PathBuf>> {
        let _ = std::fs::remove_dir_all(self.root.path().join("var/cache/apt/archives"));
        std::fs::create_dir_all(self.root.path().join("var/cache/apt/archives/partial"))?;
        let update = self.run(&["update"])?.ok()?;
        ensure!(
            !update.stderr.contains("W:") && !update.stdout.contains("Ign:"),
            "apt-get update warned: {}",
            update.describe()
        );
        let mut args = vec!["install", "-y", "--download-only"];
        args.extend(packages);
        self.run(&args)?.ok()?;
        let mut fetched: Vec<PathBuf> =
            std::fs::read_dir(self.root.path().join("var/cache/apt/archives"))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|e| e == "deb"))
                .collect();
        fetched.sort();
        Ok(fetched)
    }
}

/// Writes apt's files for `registry` into a new directory with `arca registry configure apt`.
fn configure_apt(node: &TestNode, registry: &str, components: &str) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let output = node
        .cli_command(
            Some(&node.admin_token),
            &[
                "registry",
                "configure",
                "apt",
                "--registry",
                registry,
                "--suite",
                "stable",
                "--component",
                components,
            ],
        )
        .current_dir(dir.path())
        .output()?;
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(dir)
}

fn push(
    node: &TestNode,
    registry: &str,
    deb: &Path,
    component: &str,
) -> Result<std::process::Output> {
    Ok(node.cli(&[
        "artifact",
        "push",
        "debian",
        registry,
        deb.to_str().context("a UTF-8 path")?,
        "--suite",
        "stable",
        "--component",
        component,
    ]))
}

fn pushed(node: &TestNode, registry: &str, deb: &Path, component: &str) -> Result<()> {
    let output = push(node, registry, deb, component)?;
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The names of `files`, sorted.
fn names(files: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = files
        .iter()
        .filter_map(|file| file.file_name()?.to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    Ok(sha256_hex(&std::fs::read(a)?) == sha256_hex(&std::fs::read(b)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_installs_signed_packages_through_hosted_remote_and_virtual_registries() -> Result<()> {
    let test = "apt_installs_signed_packages_through_hosted_remote_and_virtual_registries";
    for client in ["apt-get", "dpkg-deb", "xz", "python3"] {
        if require_client(client, test).is_none() {
            return Ok(());
        }
    }
    let Some(real) = real_packages(test) else {
        return Ok(());
    };
    let node = TestNode::start()?;
    create_registry(&node, local_registry("debs", "DEBIAN")).await?;
    let built = tempfile::tempdir()?;
    let lib = build_deb(built.path(), "arca-demo-lib", "1.0-1", "")?;
    let app = build_deb(
        built.path(),
        "arca-demo-app",
        "2:1.5~rc1-1",
        "Depends: arca-demo-lib (>= 1.0)\n",
    )?;
    for deb in &real {
        pushed(&node, "debs", deb, "main")?;
    }
    pushed(&node, "debs", &lib, "main")?;
    pushed(&node, "debs", &app, "extra")?;
    let hello = real
        .iter()
        .find(|deb| file_name(deb).starts_with("hello_"))
        .context("hello")?
        .clone();

    // apt resolves and fetches through the hosted registry, checking its signature; what it
    // fetches is what was pushed, byte for byte.
    let config = configure_apt(&node, "debs", "main,extra")?;
    let apt = Apt::new(config.path(), "debs")?;
    let fetched = apt.download(&["hello", "arca-demo-app"])?;
    let sources: Vec<PathBuf> = real
        .iter()
        .cloned()
        .chain([lib.clone(), app.clone()])
        .collect();
    let mut expected: Vec<String> = sources.iter().map(|deb| cached_name(deb)).collect();
    expected.sort();
    ensure!(
        names(&fetched) == expected,
        "fetched {:?}, expected {expected:?}",
        names(&fetched)
    );
    for file in &fetched {
        let source = sources
            .iter()
            .find(|source| cached_name(source) == file_name(file))
            .context("a source for every fetched file")?;
        ensure!(
            same_bytes(file, source)?,
            "{} differs from what was pushed",
            file_name(file)
        );
    }

    // The public key is the same through the API, the CLI and the stable URL.
    let served_key = http()
        .get(format!("{}/debian/debs/key.asc", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .text()
        .await?;
    let cli_key = node.cli(&["registry", "signing-key", "get", "debs", "--public"]);
    ensure!(String::from_utf8_lossy(&cli_key.stdout) == served_key);
    ensure!(served_key == std::fs::read_to_string(config.path().join("arca-debs.asc"))?);

    // After a rotation, apt refuses the repository with the old key and accepts the new one.
    let rotated = node.cli(&["registry", "signing-key", "rotate", "debs"]);
    ensure!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let refused = apt.run(&["update"])?;
    ensure!(
        refused.stderr.contains("NO_PUBKEY")
            || refused.stderr.contains("not signed")
            || !refused.success,
        "apt accepted a Release signed by another key: {}",
        refused.describe()
    );
    let config = configure_apt(&node, "debs", "main,extra")?;
    let apt = Apt::new(config.path(), "debs")?;
    ensure!(apt.download(&["arca-demo-app"])?.len() == 2);

    // A remote registry over the hosted one, and a virtual one over the remote and another local
    // registry that takes its publishes.
    create_registry(
        &node,
        remote_registry(
            "debs-remote",
            "DEBIAN",
            &format!("{}/debian/debs", node.url),
            &node.admin_token,
            300,
        ),
    )
    .await?;
    create_registry(&node, local_registry("debs-more", "DEBIAN")).await?;
    create_registry(
        &node,
        virtual_registry(
            "debs-all",
            "DEBIAN",
            &["debs-more", "debs-remote"],
            Some("debs-more"),
        ),
    )
    .await?;
    let extra = build_deb(
        built.path(),
        "arca-demo-extra",
        "0.1",
        "Depends: arca-demo-app\n",
    )?;
    pushed(&node, "debs-all", &extra, "main")?;
    let more = http()
        .get(format!(
            "{}/debian/debs-more/dists/stable/main/binary-amd64/Packages",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .text()
        .await?;
    ensure!(more.contains("Package: arca-demo-extra"), "{more}");
    for registry in ["debs-remote", "debs-all"] {
        let config = configure_apt(&node, registry, "main,extra")?;
        let apt = Apt::new(config.path(), registry)?;
        let wanted: &[&str] = if registry == "debs-all" {
            &["hello", "arca-demo-extra"]
        } else {
            &["hello"]
        };
        let fetched = apt.download(wanted)?;
        ensure!(
            fetched.len() == real.len() + if registry == "debs-all" { 3 } else { 0 },
            "{registry}: {:?}",
            names(&fetched)
        );
        let fetched_hello = fetched
            .iter()
            .find(|file| file_name(file).starts_with("hello_"))
            .context("hello fetched")?;
        ensure!(same_bytes(fetched_hello, &hello)?);
    }

    // A remote registry over a static mirror laid out as Debian's own: its Release lists the plain
    // Packages' hash, but the mirror serves only Packages.xz.
    let mirror = tempfile::tempdir()?;
    let get = |path: String| {
        let url = format!("{}/debian/debs/{path}", node.url);
        let token = node.admin_token.clone();
        async move {
            let response = http().get(url).bearer_auth(token).send().await?;
            ensure!(response.status() == StatusCode::OK, "{}", response.status());
            Ok::<_, anyhow::Error>(response.bytes().await?)
        }
    };
    let packages = get("dists/stable/main/binary-amd64/Packages".into()).await?;
    for filename in String::from_utf8_lossy(&packages)
        .lines()
        .filter_map(|line| line.strip_prefix("Filename: "))
    {
        let path = mirror.path().join(filename);
        std::fs::create_dir_all(path.parent().context("a directory")?)?;
        std::fs::write(path, get(filename.to_string()).await?)?;
    }
    let index = mirror.path().join("dists/stable/main/binary-amd64");
    std::fs::create_dir_all(&index)?;
    let mut xz = Command::new("xz")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(&mut xz.stdin.take().context("xz's stdin")?, &packages)?;
    let packages_xz = xz.wait_with_output()?.stdout;
    std::fs::write(index.join("Packages.xz"), &packages_xz)?;
    std::fs::write(
        mirror.path().join("dists/stable/Release"),
        format!(
            "Origin: Mirror\nSuite: stable\nCodename: stable\nDate: Sat, 05 Dec 2026 00:00:00 UTC\n\
             Architectures: amd64\nComponents: main\n\
             SHA256:\n {} {} main/binary-amd64/Packages\n {} {} main/binary-amd64/Packages.xz\n",
            sha256_hex(&packages),
            packages.len(),
            sha256_hex(&packages_xz),
            packages_xz.len()
        ),
    )?;
    let server = StaticServer::start(mirror.path())?;
    create_registry(
        &node,
        remote_registry("debs-mirror", "DEBIAN", &server.url, "unused", 300),
    )
    .await?;
    let config = configure_apt(&node, "debs-mirror", "main")?;
    let fetched = Apt::new(config.path(), "debs-mirror")?.download(&["hello"])?;
    ensure!(fetched.len() == real.len(), "{:?}", names(&fetched));

    // The firewall blocks a version an imported Debian advisory names.
    block_before(
        &node,
        "debs",
        "DEBIAN-CVE-2099-0001",
        ("Debian:12", "hello", "2.10-4"),
    )
    .await?;
    let hello_path = {
        let packages = http()
            .get(format!(
                "{}/debian/debs/dists/stable/main/binary-amd64/Packages",
                node.url
            ))
            .bearer_auth(&node.admin_token)
            .send()
            .await?
            .text()
            .await?;
        packages
            .split("\n\n")
            .find(|paragraph| paragraph.starts_with("Package: hello\n"))
            .and_then(|paragraph| {
                paragraph
                    .lines()
                    .find_map(|line| line.strip_prefix("Filename: "))
            })
            .context("hello is listed")?
            .to_string()
    };
    let blocked = http()
        .get(format!("{}/debian/debs/{hello_path}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(
        blocked.status() == StatusCode::FORBIDDEN,
        "{}",
        blocked.status()
    );
    ensure!(blocked.text().await?.contains("DEBIAN-CVE-2099-0001"));
    let refused = apt.run(&["install", "-y", "--download-only", "hello"])?;
    ensure!(
        !refused.success && refused.stderr.contains("403"),
        "{}",
        refused.describe()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_and_store_nothing() -> Result<()> {
    let test = "bad_uploads_are_refused_and_store_nothing";
    if require_client("dpkg-deb", test).is_none() {
        return Ok(());
    }
    let node = TestNode::start()?;
    create_registry(&node, local_registry("debs", "DEBIAN")).await?;
    let built = tempfile::tempdir()?;
    let good = build_deb(built.path(), "arca-good", "1.0", "")?;
    pushed(&node, "debs", &good, "main")?;
    let packages = || async {
        Ok::<_, anyhow::Error>(
            http()
                .get(format!(
                    "{}/debian/debs/dists/stable/main/binary-amd64/Packages",
                    node.url
                ))
                .bearer_auth(&node.admin_token)
                .send()
                .await?
                .text()
                .await?,
        )
    };
    let before = packages().await?;

    // Not a .deb, a cut-short one, and one whose control file lacks its version.
    let bytes = std::fs::read(&good)?;
    let broken_control = {
        let root = built.path().join("broken");
        std::fs::create_dir_all(root.join("DEBIAN"))?;
        std::fs::write(
            root.join("DEBIAN/control"),
            "Package: arca-broken\nArchitecture: all\nMaintainer: x\nDescription: y\n",
        )?;
        let deb = built.path().join("broken.deb");
        // dpkg-deb refuses such a control file itself; --nocheck builds it anyway.
        run_command(
            Command::new("dpkg-deb")
                .args(["--nocheck", "--build"])
                .arg(&root)
                .arg(&deb),
        )?
        .ok()?;
        std::fs::read(&deb)?
    };
    let uploads: [(&str, Vec<u8>); 3] = [
        ("not an ar archive", b"PK\x03\x04 a zip, not a deb".to_vec()),
        ("cut short", bytes[..bytes.len() / 3].to_vec()),
        ("no Version", broken_control),
    ];
    for (what, body) in uploads {
        let response = http()
            .put(format!("{}/debian/debs/upload/stable/main", node.url))
            .bearer_auth(&node.admin_token)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status == StatusCode::BAD_REQUEST, "{what}: {status} {text}");
        ensure!(text.contains("\"code\""), "{what}: {text}");
    }
    ensure!(
        packages().await? == before,
        "a refused upload changed the index"
    );

    // The same file again into the same suite is a conflict; into another suite it is added there;
    // other bytes under the same name are refused.
    let again = push(&node, "debs", &good, "main")?;
    ensure!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("409"));
    let other_suite = node.cli(&[
        "artifact",
        "push",
        "debian",
        "debs",
        good.to_str().context("utf-8")?,
        "--suite",
        "testing",
    ]);
    ensure!(
        other_suite.status.success(),
        "{}",
        String::from_utf8_lossy(&other_suite.stderr)
    );
    let testing = http()
        .get(format!(
            "{}/debian/debs/dists/testing/main/binary-amd64/Packages",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .text()
        .await?;
    ensure!(testing.contains("Package: arca-good"), "{testing}");
    let impostor_dir = tempfile::tempdir()?;
    let impostor = build_deb(impostor_dir.path(), "arca-good", "1.0", "Depends: other\n")?;
    let conflict = push(&node, "debs", &impostor, "contrib")?;
    ensure!(
        !conflict.status.success()
            && String::from_utf8_lossy(&conflict.stderr).contains("other contents")
    );

    // Reads need credentials (apt's Basic ones), and paths outside the repository are not served.
    let anonymous = http()
        .get(format!("{}/debian/debs/dists/stable/InRelease", node.url))
        .send()
        .await?;
    ensure!(anonymous.status() == StatusCode::UNAUTHORIZED);
    ensure!(
        anonymous
            .headers()
            .get_all("www-authenticate")
            .iter()
            .any(|value| value.to_str().is_ok_and(|v| v.starts_with("Basic")))
    );
    for path in [
        "pool/../../../api/v1/registries",
        "dists/stable/../../key.asc",
        "dists/unknown/InRelease",
    ] {
        let request = format!(
            "GET /debian/debs/{path} HTTP/1.1\r\nHost: arca\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            node.admin_token
        );
        let (status, answer) = raw_http(&node.url, request.as_bytes())?;
        ensure!(status == 404, "{path}: {answer}");
    }
    Ok(())
}
