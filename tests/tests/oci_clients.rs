//! The OCI Distribution API driven by real clients: images built offline with umoci and moved with
//! skopeo (single images, multi-arch indexes, Docker v2 schema 2), Helm charts with helm, and artifacts
//! with referrers with the ORAS Python SDK. Each test starts its own node and creates its own DOCKER
//! registries. The same client flows also run against Debian's `docker-registry` (the CNCF
//! distribution) so a failure can be told apart from a harness or client problem.
//!
//! A missing client fails the test under `CI=true` and skips it loudly elsewhere
//! (`bash scripts/install-clients.sh` installs them all).

use std::path::Path;

use anyhow::{Context, Result, ensure};
use arca_tests::oci::{
    ClientOutput, DistributionRegistry, IsolatedClient, LayerFile, Layout, OCI_INDEX, OCI_MANIFEST,
    Skopeo, host_of, require_client, require_oras_python, run, sample_layers,
};
use arca_tests::{TestNode, http};
use reqwest::StatusCode;
use serde_json::{Value, json};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

// ---------------------------------------------------------------------------------------------------
// Node helpers

async fn create_registry(node: &TestNode, body: Value) {
    let response = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&body)
        .send()
        .await
        .expect("create registry");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "POST /api/v1/registries {body}: {text}"
    );
}

async fn create_token(node: &TestNode, name: &str, role: &str) -> String {
    let created: Value = http()
        .post(format!("{}/api/v1/tokens", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": name, "role": role}))
        .send()
        .await
        .expect("create token")
        .json()
        .await
        .expect("token json");
    created["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {created}"))
        .to_string()
}

async fn metric(node: &TestNode, name: &str) -> u64 {
    let text = http()
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
}

/// `GET /api/v1/registries/{registry}/packages/{package}` (package percent-encoded).
async fn package_info(node: &TestNode, registry: &str, package: &str) -> (StatusCode, Value) {
    let response = http()
        .get(format!(
            "{}/api/v1/registries/{registry}/packages/{}",
            node.url,
            package.replace('/', "%2F")
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("package info");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The versions (manifest digests) of a package, from the management API.
async fn versions_of(node: &TestNode, registry: &str, package: &str) -> Vec<Value> {
    let (status, info) = package_info(node, registry, package).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "GET package {registry}/{package}: {info}"
    );
    info["versions"].as_array().cloned().unwrap_or_default()
}

/// The node log's last lines, for failure messages.
fn log_tail(node: &TestNode) -> String {
    let log = node.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Unwraps a flow's result; on failure panics with the error chain and the node's log tail.
fn check<T>(node: &TestNode, result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e:#}\n--- node log (tail) ---\n{}", log_tail(node)))
}

fn creds(token: &str) -> String {
    format!("arca:{token}")
}

// ---------------------------------------------------------------------------------------------------
// Client flows, shared by the Arca tests and the reference-registry test

/// What a single-image round trip pushed.
struct RoundTrip {
    manifest_digest: String,
    layers: Vec<String>,
}

/// Builds an image with umoci, pushes it with skopeo to `host/repository:tag`, checks the served
/// manifest bytes and the tag list, pulls it back by digest into a fresh layout and compares digests.
fn skopeo_round_trip(
    skopeo: &Skopeo,
    umoci: &Path,
    host: &str,
    repository: &str,
    tag: &str,
    creds: Option<&str>,
) -> Result<RoundTrip> {
    let work = tempfile::tempdir()?;
    let layout = Layout::init(umoci, &work.path().join("src"))?;
    let source = layout.build_image(tag, "amd64", &sample_layers(1, 1024 * 1024))?;
    ensure!(source.media_type == OCI_MANIFEST, "umoci made {source:?}");
    let source_layers = layout.layers(&source.digest)?;
    ensure!(source_layers.len() >= 2, "only {source_layers:?}");

    let remote = format!("docker://{host}/{repository}");
    skopeo
        .copy(
            &layout.reference(tag),
            &format!("{remote}:{tag}"),
            creds,
            &["--preserve-digests"],
        )?
        .ok()
        .context("push oci layout -> registry")?;

    let raw = skopeo
        .inspect_raw(&format!("{remote}:{tag}"), creds)?
        .ok()
        .context("inspect --raw by tag")?;
    ensure!(
        raw.stdout.as_bytes() == layout.blob(&source.digest)?.as_slice(),
        "the registry serves other manifest bytes than were pushed:\nserved: {}\npushed: {}",
        raw.stdout,
        String::from_utf8_lossy(&layout.blob(&source.digest)?)
    );

    let out = Layout::open(&work.path().join("out"));
    skopeo
        .copy(
            &format!("{remote}@{}", source.digest),
            &out.reference(tag),
            creds,
            &["--preserve-digests"],
        )?
        .ok()
        .context("pull by digest registry -> oci layout")?;
    let pulled = out.manifest(tag)?;
    ensure!(
        pulled.digest == source.digest,
        "round trip changed the manifest digest: pushed {}, pulled {}",
        source.digest,
        pulled.digest
    );
    let pulled_layers = out.layers(&pulled.digest)?;
    ensure!(
        pulled_layers == source_layers,
        "layers differ: pushed {source_layers:?}, pulled {pulled_layers:?}"
    );
    for layer in &pulled_layers {
        out.blob(layer).context("pulled layer verifies")?;
    }

    let tags = skopeo.list_tags(&remote, creds)?;
    ensure!(
        tags.iter().any(|t| t == tag),
        "list-tags {remote}: {tags:?} lacks {tag}"
    );
    Ok(RoundTrip {
        manifest_digest: source.digest,
        layers: source_layers,
    })
}

/// Pushes an image as a Docker v2 schema 2 manifest (`--format v2s2`) and pulls it back by digest
/// into a `dir:` layout (which keeps the manifest as served). Returns the manifest digest.
fn skopeo_docker_v2s2(
    skopeo: &Skopeo,
    umoci: &Path,
    host: &str,
    repository: &str,
    tag: &str,
    creds: Option<&str>,
) -> Result<String> {
    let work = tempfile::tempdir()?;
    let layout = Layout::init(umoci, &work.path().join("src"))?;
    layout.build_image("src", "amd64", &sample_layers(3, 256 * 1024))?;
    let remote = format!("docker://{host}/{repository}");
    skopeo
        .copy(
            &layout.reference("src"),
            &format!("{remote}:{tag}"),
            creds,
            &["--format", "v2s2"],
        )?
        .ok()
        .context("push as docker v2s2")?;
    let raw = skopeo
        .inspect_raw(&format!("{remote}:{tag}"), creds)?
        .ok()?;
    let manifest: Value = serde_json::from_str(&raw.stdout)?;
    ensure!(
        manifest["mediaType"] == DOCKER_MANIFEST,
        "served manifest is not docker v2s2: {}",
        raw.stdout
    );
    let digest = format!("sha256:{}", arca_tests::sha256_hex(raw.stdout.as_bytes()));
    let dir = work.path().join("dir");
    skopeo
        .copy(
            &format!("{remote}@{digest}"),
            &format!("dir:{}", dir.display()),
            creds,
            &[],
        )?
        .ok()
        .context("pull docker v2s2 by digest")?;
    let pulled = std::fs::read(dir.join("manifest.json"))?;
    ensure!(
        pulled == raw.stdout.as_bytes(),
        "docker v2s2 manifest changed on the way back"
    );
    Ok(digest)
}

/// What a multi-arch round trip pushed.
struct MultiArch {
    index_digest: String,
    children: Vec<(String, String)>,
}

/// Builds amd64 and arm64 images and an index over them in one layout, pushes the index with
/// `skopeo copy --all`, checks the served index bytes, pulls it back by digest with `--all` and
/// compares the index and both child manifest digests.
fn skopeo_multi_arch(
    skopeo: &Skopeo,
    umoci: &Path,
    host: &str,
    repository: &str,
    tag: &str,
    creds: Option<&str>,
) -> Result<MultiArch> {
    let work = tempfile::tempdir()?;
    let layout = Layout::init(umoci, &work.path().join("src"))?;
    layout.build_image("amd64", "amd64", &sample_layers(10, 300 * 1024))?;
    layout.build_image("arm64", "arm64", &sample_layers(11, 300 * 1024))?;
    let index = layout.build_index(tag, &[("amd64", "amd64"), ("arm64", "arm64")])?;
    let children = layout.children(&index.digest)?;
    ensure!(children.len() == 2, "index children: {children:?}");
    // skopeo itself reads the layout's index and both platforms.
    skopeo
        .run(&["inspect", "--raw", &layout.reference(tag)])?
        .ok()
        .context("skopeo reads the built index")?;

    let remote = format!("docker://{host}/{repository}");
    skopeo
        .copy(
            &layout.reference(tag),
            &format!("{remote}:{tag}"),
            creds,
            &["--all", "--preserve-digests"],
        )?
        .ok()
        .context("push index with --all")?;
    let raw = skopeo
        .inspect_raw(&format!("{remote}:{tag}"), creds)?
        .ok()?;
    ensure!(
        raw.stdout.as_bytes() == layout.blob(&index.digest)?.as_slice(),
        "the registry serves other index bytes than were pushed:\nserved: {}",
        raw.stdout
    );
    for (arch, child) in &children {
        let child_raw = skopeo
            .inspect_raw(&format!("{remote}@{}", child.digest), creds)?
            .ok()
            .with_context(|| format!("child manifest {arch}"))?;
        ensure!(
            child_raw.stdout.as_bytes() == layout.blob(&child.digest)?.as_slice(),
            "child {arch} served with other bytes"
        );
    }

    let out = Layout::open(&work.path().join("out"));
    skopeo
        .copy(
            &format!("{remote}@{}", index.digest),
            &out.reference(tag),
            creds,
            &["--all", "--preserve-digests"],
        )?
        .ok()
        .context("pull index by digest with --all")?;
    let pulled = out.manifest(tag)?;
    ensure!(
        pulled.digest == index.digest && pulled.media_type == OCI_INDEX,
        "index changed: pushed {index:?}, pulled {pulled:?}"
    );
    let pulled_children = out.children(&pulled.digest)?;
    ensure!(
        pulled_children == children,
        "children differ: pushed {children:?}, pulled {pulled_children:?}"
    );
    for (arch, child) in &pulled_children {
        for layer in out.layers(&child.digest)? {
            out.blob(&layer)
                .with_context(|| format!("layer {layer} of {arch}"))?;
        }
    }
    Ok(MultiArch {
        index_digest: index.digest,
        children: children
            .into_iter()
            .map(|(arch, d)| (arch, d.digest))
            .collect(),
    })
}

/// Packages a chart, logs in, pushes it to `oci://host/<namespace>`, pulls it back into another
/// directory and compares the archive bytes. Returns the pushed manifest digest.
fn helm_round_trip(
    helm: &IsolatedClient,
    host: &str,
    namespace: &str,
    creds: Option<(&str, &str)>,
) -> Result<String> {
    let work = tempfile::tempdir()?;
    let chart = work.path().join("demo");
    std::fs::create_dir_all(chart.join("templates"))?;
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: demo\nversion: 0.3.1\nappVersion: \"1.2\"\ndescription: Arca test chart\n",
    )?;
    std::fs::write(chart.join("values.yaml"), "replicas: 2\n")?;
    std::fs::write(
        chart.join("templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata:\n  replicas: \"{{ .Values.replicas }}\"\n",
    )?;
    let packaged = work.path().join("pkg");
    helm.run(&[
        "package",
        &chart.to_string_lossy(),
        "-d",
        &packaged.to_string_lossy(),
    ])?
    .ok()
    .context("helm package")?;
    let archive = packaged.join("demo-0.3.1.tgz");

    if let Some((user, password)) = creds {
        helm.run(&[
            "registry",
            "login",
            host,
            "--username",
            user,
            "--password",
            password,
            "--insecure",
            "--plain-http",
        ])?
        .ok()
        .context("helm registry login")?;
    }
    let pushed = helm
        .run(&[
            "push",
            &archive.to_string_lossy(),
            &format!("oci://{host}/{namespace}"),
            "--plain-http",
        ])?
        .ok()
        .context("helm push")?;
    let digest = pushed
        .all()
        .lines()
        .find_map(|l| l.trim().strip_prefix("Digest: ").map(str::to_string))
        .with_context(|| format!("no Digest in helm push output:\n{}", pushed.describe()))?;

    let out = work.path().join("out");
    std::fs::create_dir_all(&out)?;
    helm.run(&[
        "pull",
        &format!("oci://{host}/{namespace}/demo"),
        "--version",
        "0.3.1",
        "--plain-http",
        "-d",
        &out.to_string_lossy(),
    ])?
    .ok()
    .context("helm pull")?;
    let original = std::fs::read(&archive)?;
    let pulled = std::fs::read(out.join("demo-0.3.1.tgz")).context("pulled chart archive")?;
    ensure!(
        original == pulled,
        "helm pull gave other bytes ({} vs {} bytes)",
        pulled.len(),
        original.len()
    );
    let shown = helm
        .run(&[
            "show",
            "chart",
            &format!("oci://{host}/{namespace}/demo"),
            "--version",
            "0.3.1",
            "--plain-http",
        ])?
        .ok()
        .context("helm show chart")?;
    ensure!(
        shown.stdout.contains("name: demo"),
        "helm show chart: {}",
        shown.stdout
    );
    Ok(digest)
}

/// Pushes with the ORAS Python SDK: a subject artifact tagged `v1`, a referrer whose artifactType comes
/// from its config media type (tag `sig`), and a referrer with an explicit `artifactType` and the
/// empty config (tag `sbom`); pulls the subject back. Prints one JSON object.
const ORAS_SCRIPT: &str = r#"
import hashlib, json, os, sys
import oras.client, oras.oci

host, repo, user, password, workdir = sys.argv[1:6]
os.chdir(workdir)
client = oras.client.OrasClient(hostname=host, insecure=True)
if password:
    client.auth.set_basic_auth(user, password)
target = f"{host}/{repo}"

def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()

def raw_manifest(tag):
    container = client.get_container(f"{target}:{tag}")
    r = client.do_request(f"http://{container.manifest_url()}", "GET",
                          headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 200, (tag, r.status_code, r.text)
    return r.content

with open("payload.txt", "w") as f:
    f.write("arca payload\n" * 100)
with open("signature.bin", "wb") as f:
    f.write(b"not really a signature\n")
with open("sbom.json", "w") as f:
    json.dump({"spdxVersion": "SPDX-2.3", "name": "arca-demo"}, f)
with open("sigconfig.json", "w") as f:
    f.write("{}")
with open("empty.json", "w") as f:
    f.write("{}")

pushed = client.push(target=f"{target}:v1", files=["payload.txt:application/vnd.arca.payload.v1"],
                     manifest_annotations={"org.opencontainers.image.title": "demo"},
                     disable_path_validation=True, quiet=True)
subject_bytes = raw_manifest("v1")
subject = oras.oci.Subject(mediaType="application/vnd.oci.image.manifest.v1+json",
                           digest=digest(subject_bytes), size=len(subject_bytes))

sig = client.push(target=f"{target}:sig", files=["signature.bin:application/vnd.arca.signature.blob"],
                  manifest_config="sigconfig.json:application/vnd.arca.signature.v1+json",
                  subject=subject, disable_path_validation=True, quiet=True)
sig_bytes = raw_manifest("sig")

container = client.get_container(f"{target}:sbom")
layer = oras.oci.NewLayer("sbom.json", media_type="application/spdx+json", is_dir=False)
client._check_200_response(client.upload_blob("sbom.json", container, layer))
empty = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"{}"), "size": 2}
client._check_200_response(client.upload_blob("empty.json", container, dict(empty)))
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.arca.sbom.v1", "config": empty, "layers": [layer],
            "subject": {"mediaType": subject.mediaType, "digest": subject.digest, "size": subject.size}}
sbom = client.upload_manifest(manifest, container)
client._check_200_response(sbom)
sbom_bytes = raw_manifest("sbom")

os.makedirs("pulled", exist_ok=True)
files = client.pull(target=f"{target}:v1", outdir="pulled")
with open("payload.txt", "rb") as a, open(os.path.join("pulled", "payload.txt"), "rb") as b:
    assert a.read() == b.read(), "pulled payload differs"

print(json.dumps({
    "subject": {"digest": subject.digest, "size": subject.size,
                "put_digest": pushed.headers.get("Docker-Content-Digest")},
    "signature": {"digest": digest(sig_bytes), "size": len(sig_bytes),
                  "put_digest": sig.headers.get("Docker-Content-Digest"),
                  "oci_subject": sig.headers.get("OCI-Subject")},
    "sbom": {"digest": digest(sbom_bytes), "size": len(sbom_bytes),
             "put_digest": sbom.headers.get("Docker-Content-Digest"),
             "oci_subject": sbom.headers.get("OCI-Subject")},
    "pulled": [os.path.basename(f) for f in files],
}))
"#;

/// Runs [`ORAS_SCRIPT`] against `host/repository` and returns its JSON report.
fn oras_push(host: &str, repository: &str, user: &str, password: Option<&str>) -> Result<Value> {
    let work = tempfile::tempdir()?;
    let python = arca_tests::oci::which("python3").context("python3")?;
    let out = run(
        &python,
        &[
            "-c",
            ORAS_SCRIPT,
            host,
            repository,
            user,
            password.unwrap_or(""),
            &work.path().to_string_lossy(),
        ],
        &[("HOME", work.path())],
    )?
    .ok()
    .context("ORAS Python SDK push")?;
    let report: Value = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("ORAS script output is not JSON:\n{}", out.describe()))?;
    for part in ["subject", "signature", "sbom"] {
        ensure!(
            report[part]["put_digest"] == report[part]["digest"],
            "{part}: Docker-Content-Digest on the manifest PUT answer ({}) is not the digest of the \
             served manifest ({})",
            report[part]["put_digest"],
            report[part]["digest"]
        );
    }
    Ok(report)
}

/// The Skopeo and umoci clients, or `None` (loud skip) outside CI.
fn skopeo_and_umoci(test: &str) -> Option<(Skopeo, std::path::PathBuf)> {
    let skopeo = Skopeo::find(test)?;
    let umoci = require_client("umoci", test)?;
    Some((skopeo, umoci))
}

// ---------------------------------------------------------------------------------------------------
// The harness itself and the reference registry

#[test]
fn umoci_layouts_are_readable_by_skopeo() {
    let Some((skopeo, umoci)) = skopeo_and_umoci("umoci_layouts_are_readable_by_skopeo") else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let layout = Layout::init(&umoci, &work.path().join("layout")).expect("init");
    let image = layout
        .build_image("v1", "arm64", &sample_layers(5, 64 * 1024))
        .expect("image");
    let inspected = skopeo
        .run(&["inspect", &layout.reference("v1")])
        .and_then(ClientOutput::ok)
        .expect("skopeo inspect oci:");
    let info: Value = serde_json::from_str(&inspected.stdout).expect("json");
    assert_eq!(info["Digest"], image.digest);
    assert_eq!(info["Architecture"], "arm64");
    assert_eq!(info["Os"], "linux");
    assert_eq!(
        info["Layers"].as_array().expect("layers").len(),
        3,
        "{info}"
    );

    // Same content, same digests: the builder is deterministic.
    let again = Layout::init(&umoci, &work.path().join("again")).expect("init");
    let image_again = again
        .build_image("v1", "arm64", &sample_layers(5, 64 * 1024))
        .expect("image");
    assert_eq!(
        layout.layers(&image.digest).expect("layers"),
        again.layers(&image_again.digest).expect("layers")
    );

    layout
        .build_image("amd64", "amd64", &[LayerFile::new("/a", "a")])
        .expect("amd64");
    let index = layout
        .build_index("multi", &[("v1", "arm64"), ("amd64", "amd64")])
        .expect("index");
    let raw = skopeo
        .run(&["inspect", "--raw", &layout.reference("multi")])
        .and_then(ClientOutput::ok)
        .expect("inspect index");
    assert_eq!(
        format!("sha256:{}", arca_tests::sha256_hex(raw.stdout.as_bytes())),
        index.digest
    );
    for arch in ["arm64", "amd64"] {
        let chosen = skopeo
            .run(&[
                "--override-arch",
                arch,
                "inspect",
                &layout.reference("multi"),
            ])
            .and_then(ClientOutput::ok)
            .expect("inspect per platform");
        let info: Value = serde_json::from_str(&chosen.stdout).expect("json");
        assert_eq!(info["Architecture"], arch);
    }
}

/// The same client flows against the CNCF distribution registry: if this passes and an Arca test
/// fails, the difference is Arca's.
#[tokio::test]
async fn client_flows_work_against_the_reference_registry() {
    let test = "client_flows_work_against_the_reference_registry";
    let Some((skopeo, umoci)) = skopeo_and_umoci(test) else {
        return;
    };
    let Some(registry_bin) = require_client("docker-registry", test) else {
        return;
    };
    let registry = DistributionRegistry::start(&registry_bin).expect("docker-registry");
    let host = registry.host.clone();
    let fail = |e: anyhow::Error| -> ! {
        panic!("{e:#}\n--- docker-registry log ---\n{}", registry.log())
    };

    skopeo_round_trip(&skopeo, &umoci, &host, "team-images/app/web", "v1", None)
        .unwrap_or_else(|e| fail(e));
    skopeo_docker_v2s2(
        &skopeo,
        &umoci,
        &host,
        "team-images/app/web",
        "v1-docker",
        None,
    )
    .unwrap_or_else(|e| fail(e));
    skopeo_multi_arch(&skopeo, &umoci, &host, "team-images/app/multi", "1.0", None)
        .unwrap_or_else(|e| fail(e));
    if let Some(helm) = require_client("helm", test) {
        let helm = IsolatedClient::new(helm).expect("home");
        helm_round_trip(&helm, &host, "team-images/charts", Some(("arca", "unused")))
            .unwrap_or_else(|e| fail(e));
    }
    if require_oras_python(test) {
        oras_push(&host, "team-images/artifacts/demo", "arca", None).unwrap_or_else(|e| fail(e));
    }
}

// ---------------------------------------------------------------------------------------------------
// Arca

#[tokio::test]
async fn skopeo_push_pull_round_trip_by_tag_and_digest() {
    let Some((skopeo, umoci)) = skopeo_and_umoci("skopeo_push_pull_round_trip_by_tag_and_digest")
    else {
        return;
    };
    let node = TestNode::start().expect("node");
    create_registry(
        &node,
        json!({"name": "team-images", "package_type": "DOCKER"}),
    )
    .await;
    let token = create_token(&node, "ci", "write").await;
    let host = host_of(&node.url);

    let pushed = check(
        &node,
        skopeo_round_trip(
            &skopeo,
            &umoci,
            host,
            "team-images/app/web",
            "v1",
            Some(&creds(&token)),
        ),
    );
    let docker_digest = check(
        &node,
        skopeo_docker_v2s2(
            &skopeo,
            &umoci,
            host,
            "team-images/app/web",
            "v1-docker",
            Some(&creds(&token)),
        ),
    );

    // The management API shows the repository as a package whose versions are manifest digests.
    let page: Value = http()
        .get(format!(
            "{}/api/v1/artifacts?registry=team-images",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("artifacts")
        .json()
        .await
        .expect("json");
    assert!(
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|p| p["name"] == "app/web"),
        "app/web missing from {page}"
    );
    let versions = versions_of(&node, "team-images", "app/web").await;
    for (digest, tag) in [
        (&pushed.manifest_digest, "v1"),
        (&docker_digest, "v1-docker"),
    ] {
        let version = versions
            .iter()
            .find(|v| v["version"] == digest.as_str())
            .unwrap_or_else(|| panic!("version {digest} missing from {versions:?}"));
        assert!(
            version["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == tag)),
            "version {digest} does not carry tag {tag}: {version}"
        );
    }

    // The blobs are served by digest on the plain HTTP API too, with Basic auth (token as password).
    for layer in &pushed.layers {
        let response = http()
            .head(format!("{}/v2/team-images/app/web/blobs/{layer}", node.url))
            .basic_auth("arca", Some(&token))
            .send()
            .await
            .expect("head blob");
        assert_eq!(response.status(), StatusCode::OK, "HEAD blob {layer}");
        assert_eq!(
            response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok()),
            Some(layer.as_str()),
            "HEAD blob {layer} Docker-Content-Digest"
        );
    }
    let catalog: Value = http()
        .get(format!("{}/v2/_catalog", node.url))
        .basic_auth("arca", Some(&node.admin_token))
        .send()
        .await
        .expect("catalog")
        .json()
        .await
        .expect("catalog json");
    assert!(
        catalog["repositories"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r == "team-images/app/web")),
        "catalog: {catalog}"
    );
}

#[tokio::test]
async fn skopeo_multi_arch_index_round_trip() {
    let Some((skopeo, umoci)) = skopeo_and_umoci("skopeo_multi_arch_index_round_trip") else {
        return;
    };
    let node = TestNode::start().expect("node");
    create_registry(
        &node,
        json!({"name": "team-images", "package_type": "DOCKER"}),
    )
    .await;
    let host = host_of(&node.url);
    let multi = check(
        &node,
        skopeo_multi_arch(
            &skopeo,
            &umoci,
            host,
            "team-images/app/multi",
            "1.0",
            Some(&creds(&node.admin_token)),
        ),
    );
    let versions = versions_of(&node, "team-images", "app/multi").await;
    let listed: Vec<&str> = versions
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert!(
        listed.contains(&multi.index_digest.as_str()),
        "index {} not a version: {listed:?}",
        multi.index_digest
    );
    for (arch, digest) in &multi.children {
        assert!(
            listed.contains(&digest.as_str()),
            "{arch} manifest {digest} not a version: {listed:?}"
        );
    }
}

#[tokio::test]
async fn shared_layer_is_stored_once_across_repositories() {
    let Some((skopeo, umoci)) = skopeo_and_umoci("shared_layer_is_stored_once_across_repositories")
    else {
        return;
    };
    let node = TestNode::start().expect("node");
    create_registry(
        &node,
        json!({"name": "team-images", "package_type": "DOCKER"}),
    )
    .await;
    let host = host_of(&node.url);
    let creds = creds(&node.admin_token);
    let big = 6 * 1024 * 1024;

    // Two images sharing their first (large, incompressible) layer, differing in the others.
    let work = tempfile::tempdir().expect("tempdir");
    let layout = Layout::init(&umoci, &work.path().join("src")).expect("layout");
    let mut first = sample_layers(20, big);
    let mut second = sample_layers(20, big);
    first[1] = LayerFile::new("/etc/arca-release", "first image\n");
    second[1] = LayerFile::new("/etc/arca-release", "second image\n");
    let one = layout.build_image("one", "amd64", &first).expect("one");
    let two = layout.build_image("two", "amd64", &second).expect("two");
    let shared = layout.layers(&one.digest).expect("layers")[0].clone();
    assert_eq!(shared, layout.layers(&two.digest).expect("layers")[0]);
    let shared_size = layout.blob(&shared).expect("blob").len() as u64;
    assert!(shared_size > big as u64 / 2, "layer is {shared_size} bytes");

    check(
        &node,
        skopeo
            .copy(
                &layout.reference("one"),
                &format!("docker://{host}/team-images/app/one:1"),
                Some(&creds),
                &[],
            )
            .and_then(ClientOutput::ok),
    );
    let before = metric(&node, "arca_chunk_bytes_written_total").await;
    assert!(
        before >= shared_size,
        "after the first push only {before} bytes were written (layer: {shared_size})"
    );

    let second_push = check(
        &node,
        skopeo
            .copy_debug(
                &layout.reference("two"),
                &format!("docker://{host}/team-images/other/two:1"),
                Some(&creds),
                &[],
            )
            .and_then(ClientOutput::ok),
    );
    let after = metric(&node, "arca_chunk_bytes_written_total").await;
    assert!(
        after - before < shared_size / 4,
        "pushing an image that shares a {shared_size}-byte layer to another repository wrote {} new \
         bytes: the chunk store should keep that layer once",
        after - before
    );
    // skopeo found the layer present in the target repository (HEAD 200) or mounted it from the first
    // (POST ...?mount=&from=), and did not upload it again.
    let reused = second_push.stderr.lines().any(|l| {
        l.contains(&format!("Skipping blob {shared}"))
            || (l.contains(&shared) && l.contains("already present"))
    });
    assert!(
        reused,
        "skopeo uploaded the shared layer {shared} again instead of reusing it (HEAD in the target \
         repository or cross-repository mount):\n{}",
        second_push
            .stderr
            .lines()
            .filter(|l| l.contains(&shared[7..19]) || l.contains("mount"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Both images pull back whole.
    for (repository, image) in [("app/one:1", &one), ("other/two:1", &two)] {
        let out = Layout::open(&work.path().join(repository.replace(['/', ':'], "_")));
        check(
            &node,
            skopeo
                .copy(
                    &format!("docker://{host}/team-images/{repository}"),
                    &out.reference("x"),
                    Some(&creds),
                    &[],
                )
                .and_then(ClientOutput::ok),
        );
        assert_eq!(out.manifest("x").expect("pulled").digest, image.digest);
        out.blob(&shared).expect("shared layer verifies");
    }
}

#[tokio::test]
async fn anonymous_private_and_read_only_access() {
    let Some((skopeo, umoci)) = skopeo_and_umoci("anonymous_private_and_read_only_access") else {
        return;
    };
    let node = TestNode::start().expect("node");
    create_registry(
        &node,
        json!({"name": "public-images", "package_type": "DOCKER", "allow_anonymous_read": true}),
    )
    .await;
    create_registry(
        &node,
        json!({"name": "team-images", "package_type": "DOCKER"}),
    )
    .await;
    let host = host_of(&node.url);
    let admin = creds(&node.admin_token);
    let reader = creds(&create_token(&node, "reader", "read").await);

    let work = tempfile::tempdir().expect("tempdir");
    let layout = Layout::init(&umoci, &work.path().join("src")).expect("layout");
    let image = layout
        .build_image("v1", "amd64", &sample_layers(30, 128 * 1024))
        .expect("image");
    for registry in ["public-images", "team-images"] {
        check(
            &node,
            skopeo
                .copy(
                    &layout.reference("v1"),
                    &format!("docker://{host}/{registry}/app/web:v1"),
                    Some(&admin),
                    &[],
                )
                .and_then(ClientOutput::ok),
        );
    }

    // Anonymous pull from the public registry works without credentials.
    let anonymous_out = Layout::open(&work.path().join("anonymous"));
    check(
        &node,
        skopeo
            .copy(
                &format!("docker://{host}/public-images/app/web:v1"),
                &anonymous_out.reference("v1"),
                None,
                &[],
            )
            .and_then(ClientOutput::ok)
            .context("anonymous pull from a registry with allow_anonymous_read"),
    );
    assert_eq!(
        anonymous_out.manifest("v1").expect("pulled").digest,
        image.digest
    );

    // Anonymous pull from the private registry is refused.
    let refused = check(
        &node,
        skopeo
            .copy(
                &format!("docker://{host}/team-images/app/web:v1"),
                &Layout::open(&work.path().join("refused")).reference("v1"),
                None,
                &[],
            )
            .and_then(ClientOutput::failed)
            .context("anonymous pull from a private registry"),
    );
    let message = refused.stderr.to_lowercase();
    assert!(
        message.contains("unauthorized") || message.contains("authentication required"),
        "anonymous pull from a private registry failed for another reason:\n{}",
        refused.describe()
    );

    // Anonymous push to the public registry is refused too.
    check(
        &node,
        skopeo
            .copy(
                &layout.reference("v1"),
                &format!("docker://{host}/public-images/app/web:anonymous"),
                None,
                &[],
            )
            .and_then(ClientOutput::failed)
            .context("anonymous push to a registry with allow_anonymous_read"),
    );

    // A read-only token pulls but cannot push.
    let reader_out = Layout::open(&work.path().join("reader"));
    check(
        &node,
        skopeo
            .copy(
                &format!("docker://{host}/team-images/app/web:v1"),
                &reader_out.reference("v1"),
                Some(&reader),
                &[],
            )
            .and_then(ClientOutput::ok)
            .context("pull with a read token"),
    );
    let denied = check(
        &node,
        skopeo
            .copy(
                &layout.reference("v1"),
                &format!("docker://{host}/team-images/app/web:from-reader"),
                Some(&reader),
                &[],
            )
            .and_then(ClientOutput::failed)
            .context("push with a read token"),
    );
    let message = denied.stderr.to_lowercase();
    assert!(
        ["denied", "unauthorized", "forbidden", "401", "403"]
            .iter()
            .any(|w| message.contains(w)),
        "push with a read token failed for another reason:\n{}",
        denied.describe()
    );
    let tags = check(
        &node,
        skopeo.list_tags(
            &format!("docker://{host}/team-images/app/web"),
            Some(&admin),
        ),
    );
    assert_eq!(tags, ["v1"], "refused pushes left tags behind");

    // The raw handshake the clients used: 401 with a Bearer challenge, then the token endpoint.
    let challenge = http()
        .get(format!("{}/v2/", node.url))
        .send()
        .await
        .expect("GET /v2/");
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    let header = challenge
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        header.starts_with(&format!("Bearer realm=\"{}/v2/token\"", node.url))
            && header.contains("service=\"arca\""),
        "WWW-Authenticate: {header}"
    );
    let scope = "repository:team-images/app/web:pull";
    let token: Value = http()
        .get(format!("{}/v2/token?service=arca&scope={scope}", node.url))
        .basic_auth("arca", reader.strip_prefix("arca:"))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let bearer = token["token"].as_str().expect("token field");
    assert_eq!(token["access_token"], bearer, "{token}");
    assert!(
        token["expires_in"].as_u64().is_some_and(|s| s > 0),
        "{token}"
    );
    let tags: Value = http()
        .get(format!("{}/v2/team-images/app/web/tags/list", node.url))
        .bearer_auth(bearer)
        .send()
        .await
        .expect("tags")
        .json()
        .await
        .expect("tags json");
    assert_eq!(tags["tags"], json!(["v1"]), "{tags}");
}

#[tokio::test]
async fn immutable_registry_refuses_moving_a_tag() {
    let Some((skopeo, umoci)) = skopeo_and_umoci("immutable_registry_refuses_moving_a_tag") else {
        return;
    };
    let node = TestNode::start().expect("node");
    create_registry(
        &node,
        json!({"name": "release", "package_type": "DOCKER", "immutable": true}),
    )
    .await;
    let host = host_of(&node.url);
    let admin = creds(&node.admin_token);
    let work = tempfile::tempdir().expect("tempdir");
    let layout = Layout::init(&umoci, &work.path().join("src")).expect("layout");
    let first = layout
        .build_image("first", "amd64", &sample_layers(40, 64 * 1024))
        .expect("first");
    let second = layout
        .build_image("second", "amd64", &sample_layers(41, 64 * 1024))
        .expect("second");
    assert_ne!(first.digest, second.digest);
    let target = format!("docker://{host}/release/app/web:1.0");

    check(
        &node,
        skopeo
            .copy(&layout.reference("first"), &target, Some(&admin), &[])
            .and_then(ClientOutput::ok),
    );
    let refused = check(
        &node,
        skopeo
            .copy(&layout.reference("second"), &target, Some(&admin), &[])
            .and_then(ClientOutput::failed)
            .context("pushing another image to an existing tag of an immutable registry"),
    );
    let message = refused.stderr.to_lowercase();
    assert!(
        message.contains("manifest")
            && ["denied", "immutable", "conflict"]
                .iter()
                .any(|w| message.contains(w)),
        "the push failed, but not as a refused manifest:\n{}",
        refused.describe()
    );
    let served = check(
        &node,
        skopeo
            .inspect_raw(&target, Some(&admin))
            .and_then(ClientOutput::ok),
    );
    assert_eq!(
        format!(
            "sha256:{}",
            arca_tests::sha256_hex(served.stdout.as_bytes())
        ),
        first.digest,
        "the tag moved in an immutable registry"
    );
    // A new tag is fine.
    check(
        &node,
        skopeo
            .copy(
                &layout.reference("second"),
                &format!("docker://{host}/release/app/web:1.1"),
                Some(&admin),
                &[],
            )
            .and_then(ClientOutput::ok),
    );
}

#[tokio::test]
async fn helm_chart_push_and_pull() {
    let Some(helm) = require_client("helm", "helm_chart_push_and_pull") else {
        return;
    };
    let helm = IsolatedClient::new(helm).expect("home");
    let node = TestNode::start().expect("node");
    create_registry(
        &node,
        json!({"name": "team-images", "package_type": "DOCKER"}),
    )
    .await;
    let token = create_token(&node, "helm", "write").await;
    let host = host_of(&node.url);
    let digest = check(
        &node,
        helm_round_trip(&helm, host, "team-images/charts", Some(("arca", &token))),
    );
    let versions = versions_of(&node, "team-images", "charts/demo").await;
    let version = versions
        .iter()
        .find(|v| v["version"] == digest.as_str())
        .unwrap_or_else(|| panic!("chart manifest {digest} not a version: {versions:?}"));
    assert!(
        version["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "0.3.1")),
        "{version}"
    );

    // Without the login (fresh home) the private chart cannot be pulled.
    let stranger = IsolatedClient::new(helm.bin.clone()).expect("home");
    let out = tempfile::tempdir().expect("tempdir");
    let refused = stranger
        .run(&[
            "pull",
            &format!("oci://{host}/team-images/charts/demo"),
            "--version",
            "0.3.1",
            "--plain-http",
            "-d",
            &out.path().to_string_lossy(),
        ])
        .expect("helm");
    assert!(
        !refused.success,
        "anonymous helm pull: {}",
        refused.describe()
    );
}

#[tokio::test]
async fn oras_artifacts_with_referrers() {
    let test = "oras_artifacts_with_referrers";
    if !require_oras_python(test) {
        return;
    }
    let node = TestNode::start().expect("node");
    create_registry(
        &node,
        json!({"name": "team-images", "package_type": "DOCKER"}),
    )
    .await;
    let token = create_token(&node, "oras", "write").await;
    let host = host_of(&node.url);
    let report = check(
        &node,
        oras_push(host, "team-images/artifacts/demo", "arca", Some(&token)),
    );
    let subject = report["subject"]["digest"].as_str().expect("subject");
    for referrer in ["signature", "sbom"] {
        assert_eq!(
            report[referrer]["oci_subject"], subject,
            "the PUT of a manifest with a subject must answer `OCI-Subject: <subject digest>`: {report}"
        );
    }
    assert_eq!(report["pulled"], json!(["payload.txt"]), "{report}");

    let referrers_url = format!(
        "{}/v2/team-images/artifacts/demo/referrers/{subject}",
        node.url
    );
    let response = http()
        .get(&referrers_url)
        .basic_auth("arca", Some(&token))
        .send()
        .await
        .expect("referrers");
    assert_eq!(response.status(), StatusCode::OK, "GET {referrers_url}");
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(OCI_INDEX)),
        "referrers content-type: {:?}",
        response.headers().get("content-type")
    );
    let index: Value = response.json().await.expect("referrers json");
    assert_eq!(index["mediaType"], OCI_INDEX, "{index}");
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 2, "{index}");
    for (referrer, artifact_type) in [
        ("signature", "application/vnd.arca.signature.v1+json"),
        ("sbom", "application/vnd.arca.sbom.v1"),
    ] {
        let entry = manifests
            .iter()
            .find(|m| m["digest"] == report[referrer]["digest"])
            .unwrap_or_else(|| panic!("{referrer} missing from referrers {index}"));
        assert_eq!(entry["mediaType"], OCI_MANIFEST, "{entry}");
        assert_eq!(entry["size"], report[referrer]["size"], "{entry}");
        assert_eq!(
            entry["artifactType"], artifact_type,
            "{referrer}: artifactType (explicit, or the config media type when absent): {entry}"
        );
    }

    let filtered = http()
        .get(format!(
            "{referrers_url}?artifactType=application/vnd.arca.sbom.v1"
        ))
        .basic_auth("arca", Some(&token))
        .send()
        .await
        .expect("filtered referrers");
    assert_eq!(filtered.status(), StatusCode::OK);
    assert_eq!(
        filtered
            .headers()
            .get("oci-filters-applied")
            .and_then(|v| v.to_str().ok()),
        Some("artifactType"),
        "a filtered referrers answer must carry `OCI-Filters-Applied: artifactType`"
    );
    let filtered: Value = filtered.json().await.expect("json");
    let digests: Vec<&Value> = filtered["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| &m["digest"])
        .collect();
    assert_eq!(digests, [&report["sbom"]["digest"]], "{filtered}");

    // A digest nothing refers to: an empty index, not 404.
    let none = http()
        .get(format!(
            "{}/v2/team-images/artifacts/demo/referrers/sha256:{}",
            node.url,
            "0".repeat(64)
        ))
        .basic_auth("arca", Some(&token))
        .send()
        .await
        .expect("empty referrers");
    assert_eq!(none.status(), StatusCode::OK);
    let none: Value = none.json().await.expect("json");
    assert_eq!(none["manifests"], json!([]), "{none}");
}
