//! Conda channels end to end with the real py-rattler (the solver and installer of pixi and
//! rattler-build) and packages made by conda-package-handling: `.conda` packages at two versions and
//! a `.tar.bz2` package depending on the newer, uploaded with `arca artifact push conda`;
//! `repodata.json` and its `.zst`, which rattler reads; an environment solved from the channel alone
//! and installed, with the newest version the dependency allows, with the credentials `arca registry
//! configure conda` wrote; a remote channel over the hosted one and a virtual channel over both
//! serve the same environment; the firewall blocks a version; and packages that are not what they
//! say are refused, storing nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::clients::{ClientOutput, require_client, run_command};
use arca_tests::remote::{create_registry, local_registry, remote_registry, virtual_registry};
use arca_tests::{TestNode, http};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The Python with py-rattler and conda-package-handling, and the test's script for it.
struct CondaClient {
    python: PathBuf,
    home: tempfile::TempDir,
}

impl CondaClient {
    fn run(&self, args: &[&str], auth_file: Option<&Path>) -> Result<ClientOutput> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/conda_client.py");
        let mut command = Command::new(&self.python);
        command
            .arg(script)
            .args(args)
            .env("HOME", self.home.path())
            .env("RATTLER_CACHE_DIR", self.home.path().join("cache"))
            .env_remove("RATTLER_AUTH_FILE");
        if let Some(file) = auth_file {
            command.env("RATTLER_AUTH_FILE", file);
        }
        run_command(&mut command)
    }

    /// Builds `<name>-<version>-0.<extension>` (`conda` or `tar.bz2`) in `out`.
    fn build(
        &self,
        out: &Path,
        (name, version, extension): (&str, &str, &str),
        depends: Value,
    ) -> Result<PathBuf> {
        let out_text = out.to_str().context("a UTF-8 path")?;
        self.run(
            &[
                "build",
                out_text,
                name,
                version,
                "0",
                &depends.to_string(),
                &format!("{name} {version}"),
                extension,
            ],
            None,
        )?
        .ok()?;
        Ok(out.join(format!("{name}-{version}-0.{extension}")))
    }

    /// Solves and installs `spec` from `channel` into a fresh prefix: the solution and the prefix.
    fn install(&self, channel: &str, auth_file: &Path, spec: &str) -> Result<(String, PathBuf)> {
        let prefix = tempfile::tempdir()?.keep();
        let prefix_text = prefix.to_str().context("a UTF-8 path")?.to_string();
        let _ = std::fs::remove_dir_all(self.home.path().join("cache"));
        let output = self
            .run(&["install", channel, &prefix_text, spec], Some(auth_file))?
            .ok()?;
        Ok((output.stdout.trim().to_string(), prefix))
    }
}

/// rattler's credentials file: the admin token as a bearer token for the node's host.
fn auth_file(node: &TestNode, dir: &Path) -> Result<PathBuf> {
    let authority = node.url.trim_start_matches("http://");
    let host = authority.split(':').next().unwrap_or(authority);
    let token = json!({ "BearerToken": node.admin_token });
    let path = dir.join("rattler-auth.json");
    std::fs::write(&path, json!({ authority: token, host: token }).to_string())?;
    Ok(path)
}

fn push(node: &TestNode, registry: &str, package: &Path) -> Result<()> {
    let output = node.cli(&[
        "artifact",
        "push",
        "conda",
        registry,
        package.to_str().context("a UTF-8 path")?,
    ]);
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn clients(test: &str) -> Option<CondaClient> {
    let python = require_client("arca-conda-python", test)?;
    Some(CondaClient {
        python,
        home: tempfile::tempdir().ok()?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rattler_solves_and_installs_through_hosted_remote_and_virtual_channels() -> Result<()> {
    let test = "rattler_solves_and_installs_through_hosted_remote_and_virtual_channels";
    let Some(conda) = clients(test) else {
        return Ok(());
    };
    let node = TestNode::start()?;
    create_registry(&node, local_registry("conda", "CONDA")).await?;
    let work = tempfile::tempdir()?;
    for version in ["1.0", "1.1"] {
        let package = conda.build(work.path(), ("arca-a", version, "conda"), json!([]))?;
        push(&node, "conda", &package)?;
    }
    let b = conda.build(
        work.path(),
        ("arca-b", "1.0", "tar.bz2"),
        json!(["arca-a >=1.1"]),
    )?;
    push(&node, "conda", &b)?;

    let repodata: Value = http()
        .get(format!("{}/conda/conda/noarch/repodata.json", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .json()
        .await?;
    let zstd = http()
        .get(format!("{}/conda/conda/noarch/repodata.json.zst", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .bytes()
        .await?;
    let unpacked: Value = serde_json::from_slice(&zstd::decode_all(&zstd[..])?)?;
    ensure!(
        unpacked == repodata,
        "repodata.json.zst differs: {unpacked}"
    );
    ensure!(
        repodata["packages.conda"]["arca-a-1.1-0.conda"]["version"] == "1.1",
        "{repodata}"
    );
    let record = &repodata["packages"]["arca-b-1.0-0.tar.bz2"];
    ensure!(record["depends"] == json!(["arca-a >=1.1"]), "{repodata}");
    ensure!(
        record["sha256"].as_str().is_some_and(|s| s.len() == 64),
        "{record}"
    );
    ensure!(
        record["md5"].as_str().is_some_and(|s| s.len() == 32),
        "{record}"
    );

    // `arca registry configure conda` writes .condarc (the channel with the token) and rattler's
    // credentials file, which the install reads.
    let configured = node
        .cli_command(
            Some(&node.admin_token),
            &["registry", "configure", "conda", "--registry", "conda"],
        )
        .current_dir(work.path())
        .output()?;
    ensure!(
        configured.status.success(),
        "{}",
        String::from_utf8_lossy(&configured.stderr)
    );
    let condarc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(work.path().join(".condarc"))?)?;
    let channel = format!("{}/conda/conda", node.url);
    let with_token = channel.replacen("http://", &format!("http://arca:{}@", node.admin_token), 1);
    ensure!(
        condarc["channels"][0].as_str() == Some(with_token.as_str()),
        "{condarc:?}"
    );
    let (solution, prefix) = conda.install(
        &channel,
        &work.path().join("rattler-credentials.json"),
        "arca-b",
    )?;
    ensure!(solution == "arca-a 1.1\narca-b 1.0", "{solution}");
    ensure!(
        std::fs::read_to_string(prefix.join("share/arca/arca-a.txt"))? == "arca-a 1.1",
        "the installed arca-a is not 1.1"
    );

    // A remote channel over the hosted one and a virtual channel over a local one and the remote.
    create_registry(
        &node,
        remote_registry("conda-remote", "CONDA", &channel, &node.admin_token, 60),
    )
    .await?;
    create_registry(&node, local_registry("conda-local", "CONDA")).await?;
    create_registry(
        &node,
        virtual_registry(
            "conda-all",
            "CONDA",
            &["conda-local", "conda-remote"],
            Some("conda-local"),
        ),
    )
    .await?;
    let auth = auth_file(&node, work.path())?;
    let (solution, _) = conda.install(&format!("{}/conda/conda-all", node.url), &auth, "arca-b")?;
    ensure!(solution == "arca-a 1.1\narca-b 1.0", "{solution}");
    let cached = http()
        .get(format!(
            "{}/api/v1/registries/conda-remote/packages/arca-a",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(cached.status() == StatusCode::OK, "{}", cached.status());

    // The firewall blocks a denied version's package.
    let policy = http()
        .put(format!(
            "{}/api/v1/registries/conda/firewall-policy",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "deny": [{ "package": "arca-a", "version": "1.0" }] }))
        .send()
        .await?;
    ensure!(policy.status() == StatusCode::OK, "{}", policy.status());
    let blocked = http()
        .get(format!(
            "{}/conda/conda/noarch/arca-a-1.0-0.conda",
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

    // Packages that are not what they say are refused, and nothing is stored.
    let renamed = work.path().join("arca-z-9.9-0.tar.bz2");
    std::fs::copy(&b, &renamed)?;
    for (path, body, why) in [
        (
            "arca-z-9.9-0.tar.bz2",
            std::fs::read(&renamed)?,
            "names arca-b-1.0-0.tar.bz2",
        ),
        (
            "arca-y-1.0-0.conda",
            b"not a zip".to_vec(),
            "not a conda package",
        ),
        (
            "linux-64/arca-b-1.0-0.tar.bz2",
            std::fs::read(&b)?,
            "is for subdir",
        ),
        (
            "arca-x-1.0-0.tar.bz2",
            b"bz".to_vec(),
            "not a conda package",
        ),
    ] {
        let response = http()
            .put(format!("{}/conda/conda/{path}", node.url))
            .bearer_auth(&node.admin_token)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(
            status == StatusCode::BAD_REQUEST && text.contains(why),
            "{path}: {status} {text}"
        );
    }
    let anonymous = http()
        .put(format!("{}/conda/conda/arca-b-1.0-0.tar.bz2", node.url))
        .body(std::fs::read(&b)?)
        .send()
        .await?;
    ensure!(
        anonymous.status() == StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.status()
    );
    let again = http()
        .put(format!("{}/conda/conda/arca-b-1.0-0.tar.bz2", node.url))
        .bearer_auth(&node.admin_token)
        .body(std::fs::read(&b)?)
        .send()
        .await?;
    ensure!(again.status() == StatusCode::CONFLICT, "{}", again.status());
    let listed = http()
        .get(format!(
            "{}/api/v1/registries/conda/packages/arca-z",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(
        listed.status() == StatusCode::NOT_FOUND,
        "{}",
        listed.status()
    );
    Ok(())
}
