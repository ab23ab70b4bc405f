//! Remote and virtual OCI registries with skopeo, against the CNCF distribution registry and a second
//! Arca node (which answers with the Docker token handshake) as upstreams.

use anyhow::{Context, Result, ensure};
use arca_tests::clients::require_client;
use arca_tests::oci::{DistributionRegistry, Layout, Skopeo, host_of, sample_layers};
use arca_tests::{TestNode, http};

async fn create_registry(node: &TestNode, body: serde_json::Value) -> Result<()> {
    let response = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&body)
        .send()
        .await?;
    ensure!(
        response.status().as_u16() == 201,
        "create registry: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(())
}

fn creds(node: &TestNode) -> String {
    format!("arca:{}", node.admin_token)
}

/// Pulls `reference` into a fresh layout and returns the manifest digest, checking every layer.
fn pull(skopeo: &Skopeo, reference: &str, creds: Option<&str>) -> Result<String> {
    let work = tempfile::tempdir()?;
    let out = Layout::open(&work.path().join("out"));
    skopeo
        .copy(
            reference,
            &out.reference("t"),
            creds,
            &["--preserve-digests"],
        )?
        .ok()
        .with_context(|| format!("pull {reference}"))?;
    let manifest = out.manifest("t")?;
    for layer in out.layers(&manifest.digest)? {
        out.blob(&layer).context("a pulled layer verifies")?;
    }
    Ok(manifest.digest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_pulled_through_remote_and_virtual_registries_and_survive_the_upstream()
-> Result<()> {
    let test = "images_are_pulled_through_remote_and_virtual_registries_and_survive_the_upstream";
    let (Some(skopeo), Some(umoci), Some(registry_bin)) = (
        Skopeo::find(test),
        require_client("umoci", test),
        require_client("docker-registry", test),
    ) else {
        return Ok(());
    };
    let upstream = DistributionRegistry::start(&registry_bin)?;
    let work = tempfile::tempdir()?;
    let layout = Layout::init(&umoci, &work.path().join("src"))?;
    let source = layout.build_image("v1", "amd64", &sample_layers(11, 1024 * 1024))?;
    skopeo
        .copy(
            &layout.reference("v1"),
            &format!("docker://{}/team/app:v1", upstream.host),
            None,
            &["--preserve-digests"],
        )?
        .ok()
        .context("push to the upstream")?;

    let node = TestNode::start()?;
    let creds = creds(&node);
    let host = host_of(&node.url).to_string();
    create_registry(
        &node,
        serde_json::json!({"name": "hub", "package_type": "DOCKER", "kind": "remote",
            "upstream": {"url": format!("http://{}", upstream.host), "metadata_ttl_seconds": 1}}),
    )
    .await?;
    create_registry(
        &node,
        serde_json::json!({"name": "hosted", "package_type": "DOCKER"}),
    )
    .await?;
    create_registry(
        &node,
        serde_json::json!({"name": "all", "package_type": "DOCKER", "kind": "virtual",
            "members": ["hosted", "hub"], "publish_to": "hosted"}),
    )
    .await?;

    // Through the remote, by tag and by digest.
    let by_tag = pull(
        &skopeo,
        &format!("docker://{host}/hub/team/app:v1"),
        Some(&creds),
    )?;
    assert_eq!(by_tag, source.digest);
    let by_digest = pull(
        &skopeo,
        &format!("docker://{host}/hub/team/app@{}", source.digest),
        Some(&creds),
    )?;
    assert_eq!(by_digest, source.digest);

    // A push to the virtual registry lands in its local member; pulls through it find both.
    let other = layout.build_image("v2", "amd64", &sample_layers(12, 512 * 1024))?;
    skopeo
        .copy(
            &layout.reference("v2"),
            &format!("docker://{host}/all/mine/tool:v2"),
            Some(&creds),
            &["--preserve-digests"],
        )?
        .ok()
        .context("push through the virtual registry")?;
    assert_eq!(
        pull(
            &skopeo,
            &format!("docker://{host}/hosted/mine/tool:v2"),
            Some(&creds)
        )?,
        other.digest
    );
    assert_eq!(
        pull(
            &skopeo,
            &format!("docker://{host}/all/mine/tool:v2"),
            Some(&creds)
        )?,
        other.digest
    );
    assert_eq!(
        pull(
            &skopeo,
            &format!("docker://{host}/all/team/app:v1"),
            Some(&creds)
        )?,
        source.digest
    );
    let tags = skopeo.list_tags(&format!("docker://{host}/all/team/app"), Some(&creds))?;
    assert!(tags.contains(&"v1".to_string()), "{tags:?}");

    // A remote registry takes no pushes.
    let refused = skopeo.copy(
        &layout.reference("v2"),
        &format!("docker://{host}/hub/team/app:v2"),
        Some(&creds),
        &[],
    )?;
    ensure!(!refused.success, "a push to a remote registry is refused");

    // With the upstream gone, the cached image is still served (the tag resolution stale).
    drop(upstream);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        pull(
            &skopeo,
            &format!("docker://{host}/hub/team/app:v1"),
            Some(&creds)
        )?,
        source.digest
    );
    let response = http()
        .get(format!("{}/v2/hub/team/app/manifests/v1", node.url))
        .bearer_auth(&node.admin_token)
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers().get("warning").is_some(),
        "served stale with a warning: {:?}",
        response.headers()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_follows_the_upstreams_token_handshake() -> Result<()> {
    let test = "a_remote_follows_the_upstreams_token_handshake";
    let (Some(skopeo), Some(umoci)) = (Skopeo::find(test), require_client("umoci", test)) else {
        return Ok(());
    };
    // The upstream is another Arca node: anonymous requests get `WWW-Authenticate: Bearer realm=...`,
    // and its token endpoint takes Basic credentials.
    let upstream = TestNode::start()?;
    create_registry(
        &upstream,
        serde_json::json!({"name": "up", "package_type": "DOCKER"}),
    )
    .await?;
    let work = tempfile::tempdir()?;
    let layout = Layout::init(&umoci, &work.path().join("src"))?;
    let source = layout.build_image("v1", "amd64", &sample_layers(13, 256 * 1024))?;
    let upstream_creds = creds(&upstream);
    skopeo
        .copy(
            &layout.reference("v1"),
            &format!("docker://{}/up/web:v1", host_of(&upstream.url)),
            Some(&upstream_creds),
            &["--preserve-digests"],
        )?
        .ok()
        .context("push to the upstream")?;

    let node = TestNode::start()?;
    create_registry(
        &node,
        serde_json::json!({"name": "mirror", "package_type": "DOCKER", "kind": "remote",
            "upstream": {"url": upstream.url, "username": "arca", "password": upstream.admin_token}}),
    )
    .await?;
    let pulled = pull(
        &skopeo,
        &format!("docker://{}/mirror/up/web:v1", host_of(&node.url)),
        Some(&creds(&node)),
    )?;
    assert_eq!(pulled, source.digest);
    Ok(())
}
