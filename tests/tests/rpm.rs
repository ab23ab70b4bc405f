//! RPM registries end to end with Debian's real `dnf` (and `rpmbuild` to make the packages):
//! packages built for the test (one requiring another by name and version, and a third by a file
//! it holds), uploaded with `arca artifact push rpm`; `dnf download --resolve` with `repo_gpgcheck`
//! on, through the `.repo` file `arca registry configure dnf` wrote, fetches the three through a
//! hosted registry, a remote one over a static repository made by `createrepo_c` (the peer), and a
//! virtual one; dnf refuses metadata signed by another key; the firewall blocks a version an
//! imported Red Hat OSV advisory names; and bad uploads are refused, storing nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use arca_tests::advisories::block_before;
use arca_tests::clients::{ClientOutput, require_client, run_command};
use arca_tests::remote::{create_registry, local_registry, remote_registry, virtual_registry};
use arca_tests::static_server::StaticServer;
use arca_tests::{TestNode, http, sha256_hex};
use reqwest::StatusCode;

/// Builds a noarch package with `rpmbuild` in `top`: its name, `[epoch:]version-release`, extra
/// spec lines (`Requires:`), and the file it installs.
fn build_rpm(top: &Path, name: &str, evr: &str, extra: &str, file: &str) -> Result<PathBuf> {
    let (epoch, rest) = match evr.split_once(':') {
        Some((epoch, rest)) => (format!("Epoch: {epoch}\n"), rest),
        None => (String::new(), evr),
    };
    let (version, release) = rest.split_once('-').context("version-release")?;
    let spec = top.join(format!("{name}.spec"));
    std::fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: {version}\nRelease: {release}\n{epoch}Summary: {name} for the RPM test\n\
             License: MIT\nBuildArch: noarch\nAutoReqProv: no\n{extra}\n%description\n{name}, built by Arca's tests.\n\n\
             %install\nmkdir -p %{{buildroot}}$(dirname {file})\necho {name} > %{{buildroot}}{file}\n\n%files\n{file}\n"
        ),
    )?;
    run_command(
        Command::new("rpmbuild")
            .arg("-bb")
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .arg(&spec),
    )?
    .ok()?;
    let rpm = top
        .join("RPMS/noarch")
        .join(format!("{name}-{version}-{release}.noarch.rpm"));
    ensure!(rpm.exists(), "rpmbuild made no {}", rpm.display());
    Ok(rpm)
}

/// A throwaway dnf root using the `.repo` files in `repos`.
struct Dnf {
    root: tempfile::TempDir,
    repos: PathBuf,
}

impl Dnf {
    fn new(repos: &Path) -> Result<Dnf> {
        Ok(Dnf {
            root: tempfile::tempdir()?,
            repos: repos.to_path_buf(),
        })
    }

    fn run(&self, repo: &str, args: &[&str]) -> Result<ClientOutput> {
        let mut command = Command::new("dnf");
        command
            .arg("-y")
            .arg(format!("--installroot={}", self.root.path().display()))
            .arg("--releasever=1")
            .arg(format!("--setopt=reposdir={}", self.repos.display()))
            .arg("--setopt=skip_if_unavailable=False")
            .arg("--setopt=proxy=")
            .arg("--disablerepo=*")
            .arg(format!("--enablerepo={repo}"))
            .args(args)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY");
        let output = run_command(&mut command);
        // gpgme leaves an agent for the root's keyring running; stop it.
        for keyring in glob_keyrings(self.root.path()) {
            let _ = Command::new("gpgconf")
                .arg("--homedir")
                .arg(keyring)
                .args(["--kill", "gpg-agent"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        output
    }

    /// `dnf download --resolve` of `packages` from `repo`: the files fetched, by name.
    fn download(&self, repo: &str, packages: &[&str]) -> Result<Vec<String>> {
        let destination = self.root.path().join("downloaded");
        let _ = std::fs::remove_dir_all(&destination);
        let mut args = vec![
            "download".to_string(),
            "--resolve".to_string(),
            format!("--destdir={}", destination.display()),
        ];
        args.extend(packages.iter().map(|p| p.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(repo, &args)?.ok()?;
        let mut names: Vec<String> = std::fs::read_dir(&destination)?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }
}

/// The GnuPG homes dnf made under `root` for its repositories' keys.
fn glob_keyrings(root: &Path) -> Vec<PathBuf> {
    let cache = root.join("var/cache/dnf");
    std::fs::read_dir(&cache)
        .map(|entries| {
            entries
                .filter_map(|entry| Some(entry.ok()?.path().join("pubring")))
                .filter(|path| path.exists())
                .collect()
        })
        .unwrap_or_default()
}

/// dnf, with the `.repo` of `repo` in `repos` changed to trust `key` alone, downloading a package.
fn dnf_with_key(repos: &Path, repo: &str, key: &str) -> Result<ClientOutput> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("key.asc"), key)?;
    let text = std::fs::read_to_string(repos.join(format!("{repo}.repo")))?;
    let gpgkey = text
        .lines()
        .find(|line| line.starts_with("gpgkey="))
        .context("a gpgkey line")?;
    std::fs::write(
        dir.path().join(format!("{repo}.repo")),
        text.replace(
            gpgkey,
            &format!("gpgkey=file://{}", dir.path().join("key.asc").display()),
        ),
    )?;
    Dnf::new(dir.path())?.run(
        repo,
        &["download", "--destdir=/nonexistent", "arca-rpm-app"],
    )
}

/// Writes the `.repo` for `registry` with `arca registry configure dnf` into `dir`.
fn configure_dnf(node: &TestNode, registry: &str, dir: &Path) -> Result<()> {
    let output = node
        .cli_command(
            Some(&node.admin_token),
            &["registry", "configure", "dnf", "--registry", registry],
        )
        .current_dir(dir)
        .output()?;
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn push(node: &TestNode, registry: &str, rpm: &Path) -> Result<std::process::Output> {
    Ok(node.cli(&[
        "artifact",
        "push",
        "rpm",
        registry,
        rpm.to_str().context("a UTF-8 path")?,
    ]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnf_downloads_signed_repositories_through_hosted_remote_and_virtual_registries()
-> Result<()> {
    let test = "dnf_downloads_signed_repositories_through_hosted_remote_and_virtual_registries";
    for client in ["dnf", "rpmbuild", "createrepo_c", "python3", "gpgconf"] {
        if require_client(client, test).is_none() {
            return Ok(());
        }
    }
    let top = tempfile::tempdir()?;
    let tool = build_rpm(
        top.path(),
        "arca-rpm-tool",
        "1:0.5-1",
        "",
        "/usr/bin/arca-tool",
    )?;
    let lib = build_rpm(
        top.path(),
        "arca-rpm-lib",
        "1.0-1",
        "",
        "/usr/share/arca/lib.txt",
    )?;
    let app = build_rpm(
        top.path(),
        "arca-rpm-app",
        "2.0-1",
        "Requires: arca-rpm-lib >= 1.0\nRequires: /usr/bin/arca-tool\n",
        "/usr/share/arca/app.txt",
    )?;
    let expected = vec![
        "arca-rpm-app-2.0-1.noarch.rpm".to_string(),
        "arca-rpm-lib-1.0-1.noarch.rpm".to_string(),
        "arca-rpm-tool-0.5-1.noarch.rpm".to_string(),
    ];

    let node = TestNode::start()?;
    create_registry(&node, local_registry("rpms", "RPM")).await?;
    for rpm in [&tool, &lib, &app] {
        let output = push(&node, "rpms", rpm)?;
        ensure!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // dnf resolves and fetches through the hosted registry, checking repomd.xml's signature.
    let repos = tempfile::tempdir()?;
    configure_dnf(&node, "rpms", repos.path())?;
    let dnf = Dnf::new(repos.path())?;
    ensure!(dnf.download("arca-rpms", &["arca-rpm-app"])? == expected);
    let fetched = dnf
        .root
        .path()
        .join("downloaded/arca-rpm-app-2.0-1.noarch.rpm");
    ensure!(sha256_hex(&std::fs::read(&fetched)?) == sha256_hex(&std::fs::read(&app)?));

    // Metadata signed by another key is refused: another registry's key, and this registry's own
    // key from before a rotation.
    let key_of = |registry: &'static str| {
        let url = format!("{}/rpm/{registry}/key.asc", node.url);
        let token = node.admin_token.clone();
        async move {
            Ok::<_, anyhow::Error>(
                http()
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await?
                    .text()
                    .await?,
            )
        }
    };
    create_registry(&node, local_registry("rpms-other", "RPM")).await?;
    let old_key = key_of("rpms").await?;
    let rotated = node.cli(&["registry", "signing-key", "rotate", "rpms"]);
    ensure!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    ensure!(key_of("rpms").await? != old_key);
    for key in [key_of("rpms-other").await?, old_key] {
        let refused = dnf_with_key(repos.path(), "arca-rpms", &key)?;
        ensure!(
            !refused.success && refused.stderr.contains("GPG"),
            "{}",
            refused.describe()
        );
    }
    ensure!(Dnf::new(repos.path())?.download("arca-rpms", &["arca-rpm-app"])? == expected);

    // A remote registry over a static repository made by createrepo_c, and a virtual one over it
    // and a local registry that takes its uploads.
    let mirror = tempfile::tempdir()?;
    std::fs::create_dir_all(mirror.path().join("Packages"))?;
    for rpm in [&tool, &lib] {
        std::fs::copy(
            rpm,
            mirror
                .path()
                .join("Packages")
                .join(rpm.file_name().context("a name")?),
        )?;
    }
    run_command(
        Command::new("createrepo_c")
            .arg("--no-database")
            .arg(mirror.path()),
    )?
    .ok()?;
    let server = StaticServer::start(mirror.path())?;
    create_registry(
        &node,
        remote_registry(
            "rpms-remote",
            "RPM",
            &format!("{}/", server.url),
            "unused",
            300,
        ),
    )
    .await?;
    create_registry(&node, local_registry("rpms-more", "RPM")).await?;
    create_registry(
        &node,
        virtual_registry(
            "rpms-all",
            "RPM",
            &["rpms-more", "rpms-remote"],
            Some("rpms-more"),
        ),
    )
    .await?;
    let output = push(&node, "rpms-all", &app)?;
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for registry in ["rpms-remote", "rpms-all"] {
        configure_dnf(&node, registry, repos.path())?;
    }
    let dnf = Dnf::new(repos.path())?;
    ensure!(
        dnf.download("arca-rpms-remote", &["arca-rpm-lib", "arca-rpm-tool"])?
            == expected[1..].to_vec()
    );
    ensure!(dnf.download("arca-rpms-all", &["arca-rpm-app"])? == expected);

    // The firewall blocks a version an imported advisory names.
    block_before(
        &node,
        "rpms",
        "RHSA-2099:0001",
        ("Red Hat:enterprise_linux:9", "arca-rpm-lib", "1.0-2"),
    )
    .await?;
    let blocked = http()
        .get(format!(
            "{}/rpm/rpms/Packages/arca-rpm-lib/arca-rpm-lib-1.0-1.noarch.rpm",
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
    ensure!(blocked.text().await?.contains("RHSA-2099:0001"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rpm_uploads_are_refused_and_store_nothing() -> Result<()> {
    let test = "bad_rpm_uploads_are_refused_and_store_nothing";
    if require_client("rpmbuild", test).is_none() {
        return Ok(());
    }
    let top = tempfile::tempdir()?;
    let good = build_rpm(
        top.path(),
        "arca-good",
        "1.0-1",
        "",
        "/usr/share/arca/good.txt",
    )?;
    let node = TestNode::start()?;
    create_registry(&node, local_registry("rpms", "RPM")).await?;
    let output = push(&node, "rpms", &good)?;
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let repomd = || async {
        Ok::<_, anyhow::Error>(
            http()
                .get(format!("{}/rpm/rpms/repodata/repomd.xml", node.url))
                .bearer_auth(&node.admin_token)
                .send()
                .await?
                .text()
                .await?,
        )
    };
    let before = repomd().await?;
    let bytes = std::fs::read(&good)?;
    let mut bad_header = bytes.clone();
    // The main header's magic, right after the signature header.
    let at = bytes
        .windows(4)
        .enumerate()
        .skip(100)
        .find(|(_, window)| *window == [0x8e, 0xad, 0xe8, 0x01])
        .map(|(at, _)| at)
        .context("a main header")?;
    bad_header[at] = 0;
    // A changed byte in the main header's data, which its signature header's digest catches.
    let mut tampered = bytes.clone();
    let summary = bytes
        .windows(16)
        .position(|window| window == b"for the RPM test")
        .context("the summary")?;
    tampered[summary] = b'F';
    for (what, body) in [
        ("not an rpm", b"\x7fELF not an rpm at all".to_vec()),
        ("cut short", bytes[..bytes.len().min(700)].to_vec()),
        ("a broken header", bad_header),
        ("a tampered header", tampered),
    ] {
        let response = http()
            .put(format!("{}/rpm/rpms/upload", node.url))
            .bearer_auth(&node.admin_token)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status == StatusCode::BAD_REQUEST, "{what}: {status} {text}");
    }
    ensure!(
        repomd().await? == before,
        "a refused upload changed the metadata"
    );
    let again = push(&node, "rpms", &good)?;
    ensure!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("409"));
    let anonymous = http()
        .get(format!("{}/rpm/rpms/repodata/repomd.xml", node.url))
        .send()
        .await?;
    ensure!(anonymous.status() == StatusCode::UNAUTHORIZED);
    Ok(())
}
