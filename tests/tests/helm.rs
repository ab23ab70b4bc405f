//! Helm chart repositories end to end with the real helm: charts packaged by `helm package` are
//! uploaded through ChartMuseum's API (raw body and multipart with a provenance file); `helm repo
//! add` with credentials, `helm repo update`, `helm search repo`, `helm pull` of an exact version,
//! and `helm dependency update` + `helm template` of a chart depending on another chart in Arca;
//! a remote registry over the hosted one and a virtual registry over both serve the same charts;
//! archives helm would not load are refused, storing nothing; a deleted version leaves the index.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::clients::{ClientOutput, require_client, run_command};
use arca_tests::remote::{create_registry, local_registry, remote_registry, virtual_registry};
use arca_tests::{TestNode, http};
use reqwest::StatusCode;
use serde_json::Value;

/// helm with its own configuration, cache and data directories.
struct HelmClient {
    program: PathBuf,
    home: tempfile::TempDir,
}

impl HelmClient {
    fn run(&self, dir: &Path, args: &[&str]) -> Result<ClientOutput> {
        let home = self.home.path();
        let mut command = Command::new(&self.program);
        command
            .args(args)
            .current_dir(dir)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"));
        run_command(&mut command)
    }
}

/// Writes a chart `name` `version` whose one template is a ConfigMap saying `greeting`, depending
/// on `dependencies` (YAML list items), and packages it with helm; returns the archive.
fn chart(
    helm: &HelmClient,
    root: &Path,
    name: &str,
    version: &str,
    dependencies: &str,
) -> Result<PathBuf> {
    let dir = root.join(format!("src-{name}-{version}")).join(name);
    std::fs::create_dir_all(dir.join("templates"))?;
    std::fs::write(
        dir.join("Chart.yaml"),
        format!(
            "apiVersion: v2\nname: {name}\nversion: {version}\ndescription: arca test chart {name}\n\
             type: application\n{dependencies}"
        ),
    )?;
    std::fs::write(
        dir.join("values.yaml"),
        format!("greeting: hello from {name}\n"),
    )?;
    std::fs::write(
        dir.join("templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}\ndata:\n  \
         greeting: {{ .Values.greeting | quote }}\n",
    )?;
    let out = root.join("packaged");
    std::fs::create_dir_all(&out)?;
    let mut package = vec![
        "package",
        dir.to_str().context("utf-8")?,
        "-d",
        out.to_str().context("utf-8")?,
    ];
    if !dependencies.is_empty() {
        // Fetches the dependencies from their repositories into charts/ first.
        package.push("--dependency-update");
    }
    helm.run(root, &package)?.ok()?;
    Ok(out.join(format!("{name}-{version}.tgz")))
}

/// `POST /helm/<registry>/api/charts` with `body`: the status.
async fn upload(
    node: &TestNode,
    registry: &str,
    body: reqwest::Body,
    form: Option<&str>,
) -> Result<StatusCode> {
    let mut request = http()
        .post(format!("{}/helm/{registry}/api/charts", node.url))
        .basic_auth("ci", Some(&node.admin_token))
        .body(body);
    if let Some(boundary) = form {
        request = request.header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        );
    }
    Ok(request.send().await?.status())
}

/// A multipart form with the chart and its provenance file, as `helm cm-push` sends.
fn chart_form(boundary: &str, chart_name: &str, chart: &[u8], prov: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, file, bytes) in [
        ("chart", chart_name.to_string(), chart),
        ("prov", format!("{chart_name}.prov"), prov),
    ] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
                 filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_repositories_serve_charts_through_hosted_remote_and_virtual() -> Result<()> {
    let test = "helm_repositories_serve_charts_through_hosted_remote_and_virtual";
    let Some(program) = require_client("helm", test) else {
        return Ok(());
    };
    let helm = HelmClient {
        program,
        home: tempfile::tempdir()?,
    };
    let node = TestNode::start()?;
    create_registry(&node, local_registry("charts", "HELM")).await?;
    let work = tempfile::tempdir()?;

    let base_1 = chart(&helm, work.path(), "base", "0.1.0", "")?;
    let base_2 = chart(&helm, work.path(), "base", "0.2.0", "")?;
    let base_1_bytes = std::fs::read(&base_1)?;
    ensure!(
        upload(&node, "charts", base_1_bytes.clone().into(), None).await? == StatusCode::CREATED
    );
    let boundary = "arca-helm-boundary";
    let form = chart_form(
        boundary,
        "base-0.2.0.tgz",
        &std::fs::read(&base_2)?,
        b"provenance",
    );
    ensure!(upload(&node, "charts", form.into(), Some(boundary)).await? == StatusCode::CREATED);
    // The same version again is 409.
    ensure!(
        upload(&node, "charts", base_1_bytes.clone().into(), None).await? == StatusCode::CONFLICT
    );
    let prov = http()
        .get(format!(
            "{}/helm/charts/charts/base-0.2.0.tgz.prov",
            node.url
        ))
        .basic_auth("ci", Some(&node.admin_token))
        .send()
        .await?;
    ensure!(prov.status() == StatusCode::OK && prov.bytes().await?.as_ref() == b"provenance");

    let url = format!("{}/helm/charts", node.url);
    helm.run(
        work.path(),
        &[
            "repo",
            "add",
            "arca",
            &url,
            "--username",
            "ci",
            "--password",
            &node.admin_token,
        ],
    )?
    .ok()?;
    let app = chart(
        &helm,
        work.path(),
        "app",
        "1.0.0",
        "dependencies:\n  - name: base\n    version: \"~0.1.0\"\n    repository: \"@arca\"\n",
    )?;
    ensure!(
        upload(&node, "charts", std::fs::read(&app)?.into(), None).await? == StatusCode::CREATED
    );
    helm.run(work.path(), &["repo", "update"])?.ok()?;
    let found = helm
        .run(work.path(), &["search", "repo", "arca/", "--versions"])?
        .ok()?;
    ensure!(
        found.stdout.contains("arca/base")
            && found.stdout.contains("0.2.0")
            && found.stdout.contains("0.1.0")
            && found.stdout.contains("arca/app"),
        "{}",
        found.describe()
    );
    let pulled = work.path().join("pulled");
    std::fs::create_dir_all(&pulled)?;
    std::fs::create_dir_all(&pulled)?;
    helm.run(
        work.path(),
        &[
            "pull",
            "arca/base",
            "--version",
            "0.1.0",
            "-d",
            pulled.to_str().context("utf-8")?,
        ],
    )?
    .ok()?;
    ensure!(std::fs::read(pulled.join("base-0.1.0.tgz"))? == base_1_bytes);

    // A chart depending on another chart in Arca: its dependency resolves (~0.1.0 picks 0.1.0),
    // and the templates of both render.
    let app_dir = work.path().join("src-app-1.0.0/app");
    helm.run(
        work.path(),
        &["dependency", "update", app_dir.to_str().context("utf-8")?],
    )?
    .ok()?;
    ensure!(app_dir.join("charts/base-0.1.0.tgz").exists());
    let rendered = helm
        .run(
            work.path(),
            &["template", "demo", app_dir.to_str().context("utf-8")?],
        )?
        .ok()?;
    ensure!(
        rendered.stdout.contains("hello from app") && rendered.stdout.contains("hello from base"),
        "{}",
        rendered.describe()
    );

    // A remote registry over the hosted one and a virtual registry over a local registry and the
    // remote: helm pulls through the virtual registry what only the upstream has.
    create_registry(
        &node,
        remote_registry("charts-remote", "HELM", &url, &node.admin_token, 60),
    )
    .await?;
    create_registry(&node, local_registry("charts-local", "HELM")).await?;
    create_registry(
        &node,
        virtual_registry(
            "charts-all",
            "HELM",
            &["charts-local", "charts-remote"],
            Some("charts-local"),
        ),
    )
    .await?;
    helm.run(
        work.path(),
        &[
            "repo",
            "add",
            "arca-all",
            &format!("{}/helm/charts-all", node.url),
            "--username",
            "ci",
            "--password",
            &node.admin_token,
        ],
    )?
    .ok()?;
    let through = work.path().join("through-virtual");
    std::fs::create_dir_all(&through)?;
    helm.run(
        work.path(),
        &[
            "pull",
            "arca-all/base",
            "--version",
            "0.1.0",
            "-d",
            through.to_str().context("utf-8")?,
        ],
    )?
    .ok()?;
    ensure!(std::fs::read(through.join("base-0.1.0.tgz"))? == base_1_bytes);
    // An upload through the virtual registry lands in its local member.
    let extra = chart(&helm, work.path(), "extra", "0.0.1", "")?;
    ensure!(
        upload(&node, "charts-all", std::fs::read(&extra)?.into(), None).await?
            == StatusCode::CREATED
    );
    let listed: Value = http()
        .get(format!("{}/helm/charts-local/api/charts", node.url))
        .basic_auth("ci", Some(&node.admin_token))
        .send()
        .await?
        .json()
        .await?;
    ensure!(listed.get("extra").is_some(), "{listed}");

    // ChartMuseum's listings of one chart and of one version.
    let get = |path: String| {
        http()
            .get(format!("{}/helm/charts/api/charts/{path}", node.url))
            .basic_auth("ci", Some(&node.admin_token))
            .send()
    };
    let versions: Value = get("base".into()).await?.json().await?;
    ensure!(
        versions.as_array().map(Vec::len) == Some(2) && versions[0]["version"] == "0.2.0",
        "{versions}"
    );
    let one: Value = get("base/0.1.0".into()).await?.json().await?;
    ensure!(
        one["version"] == "0.1.0" && one["digest"] == arca_tests::sha256_hex(&base_1_bytes),
        "{one}"
    );
    ensure!(get("base/9.9.9".into()).await?.status() == StatusCode::NOT_FOUND);

    // A deleted version leaves the index.
    let deleted = http()
        .delete(format!("{}/helm/charts/api/charts/base/0.2.0", node.url))
        .basic_auth("ci", Some(&node.admin_token))
        .send()
        .await?;
    ensure!(deleted.status() == StatusCode::OK, "{}", deleted.status());
    let index = http()
        .get(format!("{}/helm/charts/index.yaml", node.url))
        .basic_auth("ci", Some(&node.admin_token))
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        index.contains("version: 0.1.0") && !index.contains("version: 0.2.0"),
        "{index}"
    );
    Ok(())
}

/// An archive of `files` (path, text), paths written as given (even ones the client refuses).
fn archive(files: &[(&str, &str)]) -> Result<Vec<u8>> {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, t)| (*p, t.as_bytes())).collect();
    arca_tests::tar_gz(&files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_helm_would_not_load_are_refused_and_store_nothing() -> Result<()> {
    let node = TestNode::start()?;
    create_registry(&node, local_registry("charts", "HELM")).await?;
    let chart_yaml =
        |name: &str, version: &str| format!("apiVersion: v2\nname: {name}\nversion: {version}\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "Chart.yaml naming another chart than its directory",
            archive(&[("web/Chart.yaml", &chart_yaml("other", "1.0.0"))])?,
            "the archive's directory",
        ),
        (
            "a version that is not SemVer",
            archive(&[("web/Chart.yaml", &chart_yaml("web", "1.0"))])?,
            "not SemVer",
        ),
        (
            "a path out of the chart's directory",
            archive(&[
                ("web/Chart.yaml", &chart_yaml("web", "1.0.0")),
                ("web/../../etc/passwd", "x"),
            ])?,
            "outside web/",
        ),
        (
            "no Chart.yaml",
            archive(&[("web/values.yaml", "a: 1\n")])?,
            "no web/Chart.yaml",
        ),
        ("not gzip", b"plain text".to_vec(), "not a chart archive"),
    ];
    for (case, body, expected) in cases {
        let response = http()
            .post(format!("{}/helm/charts/api/charts", node.url))
            .basic_auth("ci", Some(&node.admin_token))
            .body(body)
            .send()
            .await?;
        ensure!(
            response.status() == StatusCode::BAD_REQUEST,
            "{case}: {}",
            response.status()
        );
        let answer: Value = response.json().await?;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        ensure!(message.contains(expected), "{case}: {answer}");
    }
    let listed: Value = http()
        .get(format!("{}/helm/charts/api/charts", node.url))
        .basic_auth("ci", Some(&node.admin_token))
        .send()
        .await?
        .json()
        .await?;
    ensure!(listed == serde_json::json!({}), "{listed}");
    let anonymous = http()
        .get(format!("{}/helm/charts/index.yaml", node.url))
        .send()
        .await?;
    ensure!(anonymous.status() == StatusCode::UNAUTHORIZED);
    Ok(())
}

/// `arca registry configure helm --global` adds the registry to helm's repositories, `arca artifact
/// push helm` uploads a packaged chart, and helm, with nothing but that file, finds and pulls it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arca_configures_helm_and_pushes_a_chart_it_pulls() -> Result<()> {
    let test = "arca_configures_helm_and_pushes_a_chart_it_pulls";
    let Some(program) = require_client("helm", test) else {
        return Ok(());
    };
    let helm = HelmClient {
        program,
        home: tempfile::tempdir()?,
    };
    let node = TestNode::start()?;
    create_registry(&node, local_registry("charts", "HELM")).await?;
    let work = tempfile::tempdir()?;
    let packaged = chart(&helm, work.path(), "pushed", "1.2.3", "")?;
    let arca = |args: &[&str]| -> Result<ClientOutput> {
        let mut command = Command::new(arca_tests::binary("arca"));
        command
            .args(args)
            .current_dir(work.path())
            .env("HOME", work.path())
            .env("HELM_CONFIG_HOME", helm.home.path().join("config"))
            .env("ARCA_SERVER", &node.url)
            .env("ARCA_TOKEN", &node.admin_token);
        run_command(&mut command)
    };
    arca(&[
        "registry",
        "configure",
        "helm",
        "--registry",
        "charts",
        "--global",
    ])?
    .ok()?;
    arca(&[
        "artifact",
        "push",
        "helm",
        "charts",
        packaged.to_str().context("utf-8")?,
    ])?
    .ok()?;
    helm.run(work.path(), &["repo", "update"])?.ok()?;
    let out = work.path().join("out");
    std::fs::create_dir_all(&out)?;
    helm.run(
        work.path(),
        &[
            "pull",
            "charts/pushed",
            "--version",
            "1.2.3",
            "-d",
            out.to_str().context("utf-8")?,
        ],
    )?
    .ok()?;
    ensure!(std::fs::read(out.join("pushed-1.2.3.tgz"))? == std::fs::read(&packaged)?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_pushed_over_oci_are_served_by_the_same_helm_registry() -> Result<()> {
    let test = "charts_pushed_over_oci_are_served_by_the_same_helm_registry";
    let Some(program) = require_client("helm", test) else {
        return Ok(());
    };
    let node = TestNode::start()?;
    create_registry(&node, local_registry("charts", "HELM")).await?;
    let helm = HelmClient {
        program,
        home: tempfile::tempdir()?,
    };
    let work = tempfile::tempdir()?;
    let authority = node.url.trim_start_matches("http://");

    // `helm push oci://` into the HELM registry.
    helm.run(
        work.path(),
        &[
            "registry",
            "login",
            authority,
            "--username",
            "arca",
            "--password",
            &node.admin_token,
            "--plain-http",
        ],
    )?
    .ok()?;
    let packaged = chart(&helm, work.path(), "ocichart", "0.3.0", "")?;
    helm.run(
        work.path(),
        &[
            "push",
            packaged.to_str().context("utf-8")?,
            &format!("oci://{authority}/charts"),
            "--plain-http",
        ],
    )?
    .ok()?;

    // The classic repository lists it and serves its archive, byte for byte.
    helm.run(
        work.path(),
        &[
            "repo",
            "add",
            "arca",
            &format!("{}/helm/charts", node.url),
            "--username",
            "arca",
            "--password",
            &node.admin_token,
        ],
    )?
    .ok()?;
    let found = helm
        .run(
            work.path(),
            &["search", "repo", "arca/ocichart", "--versions"],
        )?
        .ok()?;
    ensure!(found.stdout.contains("0.3.0"), "{}", found.describe());
    let pulled = work.path().join("pulled");
    std::fs::create_dir_all(&pulled)?;
    helm.run(
        work.path(),
        &[
            "pull",
            "arca/ocichart",
            "--version",
            "0.3.0",
            "-d",
            pulled.to_str().context("utf-8")?,
        ],
    )?
    .ok()?;
    ensure!(
        std::fs::read(pulled.join("ocichart-0.3.0.tgz"))? == std::fs::read(&packaged)?,
        "the classic download is not the pushed archive"
    );
    // And over OCI, as pushed.
    let over_oci = work.path().join("over-oci");
    std::fs::create_dir_all(&over_oci)?;
    helm.run(
        work.path(),
        &[
            "pull",
            &format!("oci://{authority}/charts/ocichart"),
            "--version",
            "0.3.0",
            "--plain-http",
            "-d",
            over_oci.to_str().context("utf-8")?,
        ],
    )?
    .ok()?;
    ensure!(over_oci.join("ocichart-0.3.0.tgz").is_file());

    // A HELM registry takes chart manifests only: an image manifest is refused.
    let config = b"{}";
    let config_digest = format!("sha256:{}", arca_tests::sha256_hex(config));
    let uploaded = http()
        .post(format!(
            "{}/v2/charts/image/blobs/uploads/?digest={config_digest}",
            node.url
        ))
        .basic_auth("arca", Some(&node.admin_token))
        .body(config.to_vec())
        .send()
        .await?;
    ensure!(
        uploaded.status() == StatusCode::CREATED,
        "{}",
        uploaded.status()
    );
    let image = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": 2 },
        "layers": [],
    });
    let refused = http()
        .put(format!("{}/v2/charts/image/manifests/latest", node.url))
        .basic_auth("arca", Some(&node.admin_token))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(serde_json::to_vec(&image)?)
        .send()
        .await?;
    ensure!(
        refused.status() == StatusCode::BAD_REQUEST,
        "{}",
        refused.status()
    );
    let answer: Value = refused.json().await?;
    ensure!(
        answer["errors"][0]["code"] == "MANIFEST_INVALID",
        "{answer}"
    );
    Ok(())
}
