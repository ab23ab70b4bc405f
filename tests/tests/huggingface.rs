//! Hugging Face repositories end to end with the real `huggingface_hub` (HF_ENDPOINT pointed at
//! Arca, `HF_HUB_DISABLE_XET=1`, as `arca registry configure hf` writes them): a model uploaded
//! with `upload_folder` (a
//! weights file large enough to go through LFS, and regular files), tagged, and uploaded again
//! with the weights unchanged (their LFS object is not sent twice, and both commits keep one blob);
//! `hf_hub_download` and `snapshot_download` at a branch, a tag and a commit; a remote registry
//! over the hosted one and a virtual registry over both serve the same files; the firewall blocks
//! a commit; and commits that name what was never uploaded, or paths outside the repository, are
//! refused with the Hub's errors, storing nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::clients::{ClientOutput, require_client, run_command};
use arca_tests::remote::{create_registry, local_registry, remote_registry, virtual_registry};
use arca_tests::{TestNode, http};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `huggingface_hub` with a cache of its own, and the test's script for it.
struct HubClient {
    python: PathBuf,
    home: tempfile::TempDir,
}

impl HubClient {
    fn run(&self, node: &TestNode, registry: &str, args: &[&str]) -> Result<ClientOutput> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/hf_client.py");
        let mut command = Command::new(&self.python);
        command
            .arg(script)
            .args(args)
            .env("HF_ENDPOINT", format!("{}/hf/{registry}", node.url))
            .env("HF_TOKEN", &node.admin_token)
            .env("HF_HOME", self.home.path())
            .env("HF_HUB_DISABLE_XET", "1")
            .env("HF_HUB_DISABLE_TELEMETRY", "1")
            .env_remove("HF_HUB_OFFLINE");
        run_command(&mut command)
    }

    /// The last line the script printed.
    fn output(&self, node: &TestNode, registry: &str, args: &[&str]) -> Result<String> {
        let output = self.run(node, registry, args)?.ok()?;
        Ok(output.stdout.lines().last().unwrap_or_default().to_string())
    }
}

fn info(hub: &HubClient, node: &TestNode, registry: &str, revision: &str) -> Result<Value> {
    Ok(serde_json::from_str(&hub.output(
        node,
        registry,
        &["info", "acme/m1", "model", revision],
    )?)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huggingface_hub_uploads_and_downloads_through_hosted_remote_and_virtual_registries()
-> Result<()> {
    let test = "huggingface_hub_uploads_and_downloads_through_hosted_remote_and_virtual_registries";
    let Some(python) = require_client("arca-hf-python", test) else {
        return Ok(());
    };
    let hub = HubClient {
        python,
        home: tempfile::tempdir()?,
    };
    let node = TestNode::start_with(&[], &[("ARCA_USAGE_FLUSH_MS", "200")])?;
    create_registry(&node, local_registry("hf", "HUGGINGFACE")).await?;
    let work = tempfile::tempdir()?;
    let folder = work.path().join("m1");
    std::fs::create_dir_all(&folder)?;
    // 11 MiB of weights (the Hub's LFS threshold is 10 MiB), not compressible.
    let weights: Vec<u8> = (0..11 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(folder.join("model.safetensors"), &weights)?;
    std::fs::write(folder.join("README.md"), "# m1, first\n")?;
    std::fs::write(folder.join("config.json"), "{\"layers\": 2}\n")?;
    let folder_text = folder.to_str().context("a UTF-8 path")?;
    // The first upload with what `arca registry configure hf` wrote.
    let configured = node
        .cli_command(
            Some(&node.admin_token),
            &["registry", "configure", "hf", "--registry", "hf"],
        )
        .current_dir(work.path())
        .output()?;
    ensure!(
        configured.status.success(),
        "{}",
        String::from_utf8_lossy(&configured.stderr)
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/hf_client.py");
    let sourced = format!(
        ". ./hf.env && exec \"$0\" {} upload acme/m1 model {folder_text} first",
        script.display()
    );
    let mut command = Command::new("sh");
    command
        .args(["-c", &sourced])
        .arg(&hub.python)
        .current_dir(work.path())
        .env("HF_HOME", hub.home.path())
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_ENDPOINT")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_DISABLE_XET");
    let output = run_command(&mut command)?.ok()?;
    let first = output.stdout.lines().last().unwrap_or_default().to_string();
    hub.run(&node, "hf", &["tag", "acme/m1", "model", "v1", "main"])?
        .ok()?;
    std::fs::write(folder.join("README.md"), "# m1, second\n")?;
    let lfs_puts_before = lfs_puts(&node).await?;
    let second = hub.output(
        &node,
        "hf",
        &["upload", "acme/m1", "model", folder_text, "second"],
    )?;
    ensure!(
        lfs_puts(&node).await? == lfs_puts_before,
        "the unchanged weights were uploaded again"
    );
    ensure!(
        first.len() == 40 && second.len() == 40 && first != second,
        "{first} {second}"
    );

    let at_tag = info(&hub, &node, "hf", "v1")?;
    ensure!(at_tag["sha"] == first.as_str(), "{at_tag}");
    ensure!(
        at_tag["files"]
            == json!([
                ".gitattributes",
                "README.md",
                "config.json",
                "model.safetensors"
            ]),
        "{at_tag}"
    );
    ensure!(
        at_tag["tags"] == json!(["v1"]) && at_tag["branches"] == json!(["main"]),
        "{at_tag}"
    );
    ensure!(
        info(&hub, &node, "hf", "main")?["sha"] == second.as_str(),
        "main moved"
    );

    // Downloads at a branch, a tag and a commit.
    let downloaded = hub.output(
        &node,
        "hf",
        &["download", "acme/m1", "model", "main", "model.safetensors"],
    )?;
    ensure!(std::fs::read(&downloaded)? == weights, "the weights differ");
    let readme = hub.output(
        &node,
        "hf",
        &["download", "acme/m1", "model", &first, "README.md"],
    )?;
    ensure!(
        std::fs::read_to_string(&readme)? == "# m1, first\n",
        "README at the first commit"
    );
    let snapshot = work.path().join("snapshot");
    let snapshot_text = snapshot.to_str().context("a UTF-8 path")?;
    let pinned = hub.output(
        &node,
        "hf",
        &["snapshot", "acme/m1", "model", "v1", snapshot_text],
    )?;
    ensure!(pinned == first, "{pinned}");
    ensure!(
        std::fs::read_to_string(snapshot.join("README.md"))? == "# m1, first\n"
            && std::fs::read(snapshot.join("model.safetensors"))? == weights,
        "the snapshot at v1 differs"
    );

    // Both commits keep the weights as one blob.
    let blob_of = |commit: String| {
        let node = &node;
        async move {
            let version: Value = http()
                .get(format!(
                    "{}/api/v1/registries/hf/packages/models%2Facme%2Fm1/versions/{commit}",
                    node.url
                ))
                .bearer_auth(&node.admin_token)
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(version.to_string())
        }
    };
    let (old, new) = (
        blob_of(first.clone()).await?,
        blob_of(second.clone()).await?,
    );
    let digest = sha256_hex(&weights);
    ensure!(
        old.contains(&digest) && new.contains(&digest),
        "{old}\n{new}"
    );

    // A remote registry over the hosted one, and a virtual one over it and a local one.
    create_registry(
        &node,
        remote_registry(
            "hf-remote",
            "HUGGINGFACE",
            &format!("{}/hf/hf", node.url),
            &node.admin_token,
            60,
        ),
    )
    .await?;
    create_registry(&node, local_registry("hf-local", "HUGGINGFACE")).await?;
    create_registry(
        &node,
        virtual_registry(
            "hf-all",
            "HUGGINGFACE",
            &["hf-local", "hf-remote"],
            Some("hf-local"),
        ),
    )
    .await?;
    let through = hub.output(
        &node,
        "hf-all",
        &["download", "acme/m1", "model", "v1", "model.safetensors"],
    )?;
    ensure!(
        std::fs::read(&through)? == weights,
        "the weights through the virtual registry differ"
    );
    ensure!(
        info(&hub, &node, "hf-all", "main")?["sha"] == second.as_str(),
        "main through hf-all"
    );
    let cached = http()
        .get(format!(
            "{}/api/v1/registries/hf-remote/packages/models%2Facme%2Fm1/versions/{first}",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(
        cached.status() == StatusCode::OK,
        "the remote kept nothing: {}",
        cached.status()
    );

    // The firewall blocks a commit.
    let policy = http()
        .put(format!("{}/api/v1/registries/hf/firewall-policy", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "deny": [{ "package": "models/acme/m1", "version": first }] }))
        .send()
        .await?;
    ensure!(policy.status() == StatusCode::OK, "{}", policy.status());
    let blocked = http()
        .get(format!("{}/hf/hf/acme/m1/resolve/v1/config.json", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(
        blocked.status() == StatusCode::FORBIDDEN,
        "{}",
        blocked.status()
    );

    // The files the client downloaded count, and the Hub's repository info says so.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while info(&hub, &node, "hf", "main")?["downloads"].as_u64() < Some(1) {
        ensure!(std::time::Instant::now() < deadline, "no downloads counted");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // Commits naming what was never uploaded, or paths outside the repository, are refused and
    // main stays where it was; missing repositories, revisions and files get the Hub's codes.
    let commit_url = format!("{}/hf/hf/api/models/acme/m1/commit/main", node.url);
    let header_line = json!({ "key": "header", "value": { "summary": "bad" } });
    for (line, why) in [
        (
            json!({ "key": "lfsFile", "value": { "path": "w.bin", "algo": "sha256", "oid": "ab".repeat(32), "size": 5 } }),
            "was not uploaded",
        ),
        (
            json!({ "key": "file", "value": { "path": "../escape", "content": "aGk=", "encoding": "base64" } }),
            "invalid file path",
        ),
        (
            json!({ "key": "file", "value": { "path": "x", "content": "%%%" } }),
            "not base64",
        ),
    ] {
        let response = http()
            .post(&commit_url)
            .bearer_auth(&node.admin_token)
            .header("content-type", "application/x-ndjson")
            .body(format!("{header_line}\n{line}\n"))
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(
            status == StatusCode::BAD_REQUEST && text.contains(why),
            "{status} {text}"
        );
    }
    let anonymous = http()
        .post(&commit_url)
        .body(format!("{header_line}\n"))
        .send()
        .await?;
    ensure!(
        anonymous.status() == StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.status()
    );
    ensure!(
        info(&hub, &node, "hf", "main")?["sha"] == second.as_str(),
        "main moved"
    );
    for (path, code) in [
        ("api/models/acme/none", "RepoNotFound"),
        ("api/models/acme/m1/revision/nope", "RevisionNotFound"),
        ("acme/m1/resolve/main/missing.txt", "EntryNotFound"),
    ] {
        let response = http()
            .get(format!("{}/hf/hf/{path}", node.url))
            .bearer_auth(&node.admin_token)
            .send()
            .await?;
        let got = response
            .headers()
            .get("x-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        ensure!(
            response.status() == StatusCode::NOT_FOUND && got == code,
            "{path}: {got}"
        );
    }
    Ok(())
}

/// PUTs of LFS objects the node has answered.
async fn lfs_puts(node: &TestNode) -> Result<u64> {
    arca_tests::remote::request_count(node, "PUT", "/hf/{registry}/{*path}").await
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
