//! The OCI distribution API over raw HTTP, workflow by workflow as the distribution spec's conformance
//! suite groups them: pull, push (monolithic, POST+PUT, chunked with resumption, mount, cancel),
//! content discovery (tags, referrers, catalog) and content management (deletes), plus the Docker
//! token flow, anonymous reads, immutability and bad input.

use arca_tests::{TestNode, http, pseudo_random_bytes, sha256_hex};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

struct Registry<'a> {
    node: &'a TestNode,
    name: String,
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

impl<'a> Registry<'a> {
    async fn create(node: &'a TestNode, registry: &str, extra: Value) -> Registry<'a> {
        let mut body = json!({"name": registry, "package_type": "DOCKER"});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let response = http()
            .post(format!("{}/api/v1/registries", node.url))
            .bearer_auth(&node.admin_token)
            .json(&body)
            .send()
            .await
            .expect("create registry");
        assert_eq!(response.status(), StatusCode::CREATED);
        Registry {
            node,
            name: registry.to_string(),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.node.url)
        };
        http()
            .request(method, url)
            .basic_auth("arca", Some(&self.node.admin_token))
    }

    fn repo(&self, repository: &str) -> String {
        format!("/v2/{}/{repository}", self.name)
    }

    async fn push_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = digest(bytes);
        let response = self
            .request(
                Method::POST,
                &format!("{}/blobs/uploads/?digest={digest}", self.repo(repository)),
            )
            .body(bytes.to_vec())
            .send()
            .await
            .expect("monolithic upload");
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["docker-content-digest"], digest.as_str());
        digest
    }

    async fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        manifest: &Value,
    ) -> reqwest::Response {
        self.request(
            Method::PUT,
            &format!("{}/manifests/{reference}", self.repo(repository)),
        )
        .header("content-type", media_type)
        .body(serde_json::to_vec(manifest).expect("json"))
        .send()
        .await
        .expect("put manifest")
    }

    /// Pushes a config and one layer and an image manifest referencing them; returns the manifest's
    /// bytes and digest.
    async fn push_image(&self, repository: &str, tag: &str, seed: u64) -> (Vec<u8>, String) {
        let config =
            format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":{seed}}}").into_bytes();
        let layer = pseudo_random_bytes(4096 + seed as usize, seed);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.push_blob(repository, &config).await, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": self.push_blob(repository, &layer).await, "size": layer.len()}]
        });
        let bytes = serde_json::to_vec(&manifest).expect("json");
        let response = self
            .push_manifest(repository, tag, OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(
            response.headers()["docker-content-digest"],
            digest(&bytes).as_str()
        );
        (bytes.clone(), digest(&bytes))
    }
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("OCI error JSON");
    body["errors"][0]["code"]
        .as_str()
        .expect("errors[0].code")
        .to_string()
}

#[tokio::test]
async fn pull_and_push_workflows() {
    let node = TestNode::start().expect("node");
    let registry = Registry::create(&node, "team-images", json!({})).await;
    let base = registry
        .request(Method::GET, "/v2/")
        .send()
        .await
        .expect("base");
    assert_eq!(base.status(), StatusCode::OK);
    assert_eq!(
        base.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );

    let (manifest, manifest_digest) = registry.push_image("app/web", "1.2", 1).await;
    for reference in ["1.2", manifest_digest.as_str()] {
        let got = registry
            .request(
                Method::GET,
                &format!("{}/manifests/{reference}", registry.repo("app/web")),
            )
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .expect("get manifest");
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(
            got.headers()["docker-content-digest"],
            manifest_digest.as_str()
        );
        assert_eq!(
            got.bytes().await.expect("body").as_ref(),
            manifest.as_slice()
        );
        let head = registry
            .request(
                Method::HEAD,
                &format!("{}/manifests/{reference}", registry.repo("app/web")),
            )
            .send()
            .await
            .expect("head manifest");
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(
            head.headers()["content-length"],
            manifest.len().to_string().as_str()
        );
    }
    // Accept negotiation: a client that takes only Docker manifests does not get an OCI one.
    let refused = registry
        .request(
            Method::GET,
            &format!("{}/manifests/1.2", registry.repo("app/web")),
        )
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .expect("get");
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(refused).await, "MANIFEST_UNKNOWN");

    // POST then PUT, with the whole body in the PUT.
    let layer = pseudo_random_bytes(3 * 1024 * 1024 + 1, 9);
    let started = registry
        .request(
            Method::POST,
            &format!("{}/blobs/uploads/", registry.repo("app/web")),
        )
        .send()
        .await
        .expect("start");
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let location = started.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let put = registry
        .request(
            Method::PUT,
            &format!("{location}?digest={}", digest(&layer)),
        )
        .body(layer.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::CREATED);
    let blob_url = put.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let got = registry
        .request(Method::GET, &blob_url)
        .send()
        .await
        .expect("get blob");
    assert_eq!(
        got.headers()["docker-content-digest"],
        digest(&layer).as_str()
    );
    assert_eq!(got.bytes().await.expect("body").as_ref(), layer.as_slice());
    let ranged = registry
        .request(Method::GET, &blob_url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .expect("range");
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.bytes().await.expect("body").as_ref(), &layer[10..20]);

    // Chunked: PATCH parts with Content-Range, a part out of order (416), status, resumption.
    let chunked = pseudo_random_bytes(2 * 1024 * 1024 + 77, 10);
    let started = registry
        .request(
            Method::POST,
            &format!("{}/blobs/uploads/", registry.repo("app/api")),
        )
        .send()
        .await
        .expect("start");
    let mut location = started.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let (first, rest) = chunked.split_at(1024 * 1024);
    let patched = registry
        .request(Method::PATCH, &location)
        .header("content-range", format!("0-{}", first.len() - 1))
        .header("content-type", "application/octet-stream")
        .body(first.to_vec())
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), StatusCode::ACCEPTED);
    assert_eq!(
        patched.headers()["range"],
        format!("0-{}", first.len() - 1).as_str()
    );
    location = patched.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let out_of_order = registry
        .request(Method::PATCH, &location)
        .header("content-range", "5-10")
        .body(vec![0u8; 6])
        .send()
        .await
        .expect("patch");
    assert_eq!(out_of_order.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        out_of_order.headers()["range"],
        format!("0-{}", first.len() - 1).as_str()
    );
    let status = registry
        .request(Method::GET, &location)
        .send()
        .await
        .expect("status");
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        status.headers()["range"],
        format!("0-{}", first.len() - 1).as_str()
    );
    let patched = registry
        .request(Method::PATCH, &location)
        .header(
            "content-range",
            format!("{}-{}", first.len(), chunked.len() - 1),
        )
        .body(rest.to_vec())
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), StatusCode::ACCEPTED);
    let wrong = registry
        .request(
            Method::PUT,
            &format!("{location}?digest={}", digest(b"other")),
        )
        .send()
        .await
        .expect("put");
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(wrong).await, "DIGEST_INVALID");
    let blob_head = registry
        .request(
            Method::HEAD,
            &format!("{}/blobs/{}", registry.repo("app/api"), digest(&chunked)),
        )
        .send()
        .await
        .expect("head");
    assert_eq!(
        blob_head.status(),
        StatusCode::NOT_FOUND,
        "a failed upload links nothing"
    );

    // sha512 digests are verified too.
    let sha512_body = b"sha512 content".to_vec();
    let sha512 = {
        use sha2::Digest;
        format!("sha512:{}", hex::encode(sha2::Sha512::digest(&sha512_body)))
    };
    let uploaded = registry
        .request(
            Method::POST,
            &format!(
                "{}/blobs/uploads/?digest={sha512}",
                registry.repo("app/api")
            ),
        )
        .body(sha512_body.clone())
        .send()
        .await
        .expect("sha512 upload");
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let fetched = registry
        .request(
            Method::GET,
            &format!("{}/blobs/{sha512}", registry.repo("app/api")),
        )
        .send()
        .await
        .expect("get");
    assert_eq!(
        fetched.bytes().await.expect("body").as_ref(),
        sha512_body.as_slice()
    );

    // Cross-repository mount, then cancel of an upload session.
    let mounted = registry
        .request(
            Method::POST,
            &format!(
                "{}/blobs/uploads/?mount={}&from=team-images/app/web",
                registry.repo("other/copy"),
                digest(&layer)
            ),
        )
        .send()
        .await
        .expect("mount");
    assert_eq!(mounted.status(), StatusCode::CREATED);
    let not_mounted = registry
        .request(
            Method::POST,
            &format!(
                "{}/blobs/uploads/?mount={}&from=team-images/app/web",
                registry.repo("other/copy"),
                digest(b"never pushed")
            ),
        )
        .send()
        .await
        .expect("mount");
    assert_eq!(
        not_mounted.status(),
        StatusCode::ACCEPTED,
        "falls back to an upload session"
    );
    // Without `from` the registry does not look for the blob in other repositories (the spec lets
    // it): the answer is an upload session, as for a blob it cannot mount.
    let without_from = registry
        .request(
            Method::POST,
            &format!(
                "{}/blobs/uploads/?mount={}",
                registry.repo("other/elsewhere"),
                digest(&layer)
            ),
        )
        .send()
        .await
        .expect("mount without from");
    assert_eq!(without_from.status(), StatusCode::ACCEPTED);
    assert!(
        without_from.headers()["location"]
            .to_str()
            .expect("location")
            .contains("/blobs/uploads/"),
        "{:?}",
        without_from.headers()
    );
    let session = not_mounted.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let cancelled = registry
        .request(Method::DELETE, &session)
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancelled.status(), StatusCode::NO_CONTENT);
    let gone = registry
        .request(Method::GET, &session)
        .send()
        .await
        .expect("status");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(gone).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn manifests_need_their_references_and_indexes_their_children() {
    let node = TestNode::start().expect("node");
    let registry = Registry::create(&node, "images", json!({})).await;
    let missing = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(b"absent"), "size": 6},
        "layers": []
    });
    let refused = registry
        .push_manifest("app", "v1", OCI_MANIFEST, &missing)
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(refused).await, "MANIFEST_BLOB_UNKNOWN");

    let (amd64, amd64_digest) = registry.push_image("app", "amd64", 2).await;
    let (arm64, arm64_digest) = registry.push_image("app", "arm64", 3).await;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd64_digest, "size": amd64.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm64_digest, "size": arm64.len(), "platform": {"architecture": "arm64", "os": "linux"}}
        ]
    });
    let pushed = registry
        .push_manifest("app", "multi", OCI_INDEX, &index)
        .await;
    assert_eq!(pushed.status(), StatusCode::CREATED);
    let unknown_child = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest(b"no such manifest"), "size": 1}]
    });
    let refused = registry
        .push_manifest("app", "broken", OCI_INDEX, &unknown_child)
        .await;
    assert_eq!(error_code(refused).await, "MANIFEST_BLOB_UNKNOWN");

    let bad_json = registry
        .request(
            Method::PUT,
            &format!("{}/manifests/bad", registry.repo("app")),
        )
        .header("content-type", OCI_MANIFEST)
        .body("{not json")
        .send()
        .await
        .expect("put");
    assert_eq!(bad_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(bad_json).await, "MANIFEST_INVALID");
    let index_bytes = serde_json::to_vec(&index).expect("json");
    let wrong_digest = registry
        .request(
            Method::PUT,
            &format!("{}/manifests/{}", registry.repo("app"), digest(b"x")),
        )
        .header("content-type", OCI_INDEX)
        .body(index_bytes.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(error_code(wrong_digest).await, "DIGEST_INVALID");

    // Copying the index to another registry brings its children and their layers along, no bytes.
    Registry::create(&node, "release", json!({})).await;
    let copied = http()
        .post(format!(
            "{}/api/v1/registries/images/packages/app/versions/{}/copy",
            node.url,
            digest(&index_bytes)
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({"destination_registry": "release"}))
        .send()
        .await
        .expect("copy");
    assert_eq!(copied.status(), StatusCode::CREATED);
    let copied: Value = copied.json().await.expect("json");
    assert_eq!(copied["tags"], json!(["multi"]));
    let release = Registry {
        node: &node,
        name: "release".into(),
    };
    let child = release
        .request(
            Method::GET,
            &format!("{}/manifests/{arm64_digest}", release.repo("app")),
        )
        .send()
        .await
        .expect("get");
    assert_eq!(
        child.bytes().await.expect("body").as_ref(),
        arm64.as_slice()
    );
    let arm64_manifest: Value = serde_json::from_slice(&arm64).expect("json");
    let layer = arm64_manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer digest");
    let layer_blob = release
        .request(
            Method::GET,
            &format!("{}/blobs/{layer}", release.repo("app")),
        )
        .send()
        .await
        .expect("get");
    assert_eq!(layer_blob.status(), StatusCode::OK);
}

#[tokio::test]
async fn discovery_tags_referrers_and_catalog() {
    let node = TestNode::start().expect("node");
    let registry = Registry::create(&node, "images", json!({})).await;
    for tag in ["a", "b", "c", "d"] {
        registry.push_image("app", tag, 4).await;
    }
    registry.push_image("tools/lint", "latest", 5).await;
    let tags: Value = registry
        .request(Method::GET, &format!("{}/tags/list", registry.repo("app")))
        .send()
        .await
        .expect("tags")
        .json()
        .await
        .expect("json");
    assert_eq!(
        tags,
        json!({"name": "images/app", "tags": ["a", "b", "c", "d"]})
    );
    let page = registry
        .request(
            Method::GET,
            &format!("{}/tags/list?n=2&last=a", registry.repo("app")),
        )
        .send()
        .await
        .expect("tags");
    let link = page.headers()["link"].to_str().expect("link").to_string();
    assert_eq!(link, "</v2/images/app/tags/list?n=2&last=c>; rel=\"next\"");
    let page: Value = page.json().await.expect("json");
    assert_eq!(page["tags"], json!(["b", "c"]));

    let catalog: Value = registry
        .request(Method::GET, "/v2/_catalog")
        .send()
        .await
        .expect("catalog")
        .json()
        .await
        .expect("json");
    assert_eq!(
        catalog["repositories"],
        json!(["images/app", "images/tools/lint"])
    );

    // Referrers: an SBOM and a signature point at the image through `subject`.
    let (subject, subject_digest) = registry.push_image("app", "signed", 6).await;
    let empty = registry.push_blob("app", b"{}").await;
    for (artifact_type, seed) in [
        ("application/vnd.example.sbom", 1u8),
        ("application/vnd.example.signature", 2),
    ] {
        let payload = registry.push_blob("app", &[seed; 32]).await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": payload, "size": 32}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject.len()},
            "annotations": {"org.example.kind": artifact_type}
        });
        let bytes = serde_json::to_vec(&manifest).expect("json");
        let pushed = registry
            .push_manifest("app", &digest(&bytes), OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(pushed.status(), StatusCode::CREATED);
        assert_eq!(pushed.headers()["oci-subject"], subject_digest.as_str());
    }
    let referrers = registry
        .request(
            Method::GET,
            &format!("{}/referrers/{subject_digest}", registry.repo("app")),
        )
        .send()
        .await
        .expect("referrers");
    assert_eq!(referrers.headers()["content-type"], OCI_INDEX);
    let referrers: Value = referrers.json().await.expect("json");
    assert_eq!(
        referrers["manifests"].as_array().expect("manifests").len(),
        2
    );
    let filtered = registry
        .request(
            Method::GET,
            &format!(
                "{}/referrers/{subject_digest}?artifactType=application/vnd.example.sbom",
                registry.repo("app")
            ),
        )
        .send()
        .await
        .expect("referrers");
    assert_eq!(filtered.headers()["oci-filters-applied"], "artifactType");
    let filtered: Value = filtered.json().await.expect("json");
    assert_eq!(
        filtered["manifests"].as_array().expect("manifests").len(),
        1
    );
    assert_eq!(
        filtered["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );
    assert_eq!(
        filtered["manifests"][0]["annotations"]["org.example.kind"],
        "application/vnd.example.sbom"
    );
    let none: Value = registry
        .request(
            Method::GET,
            &format!("{}/referrers/{}", registry.repo("app"), digest(b"nothing")),
        )
        .send()
        .await
        .expect("referrers")
        .json()
        .await
        .expect("json");
    assert_eq!(none["manifests"], json!([]));
}

#[tokio::test]
async fn content_management_and_immutability() {
    let node = TestNode::start().expect("node");
    let registry = Registry::create(&node, "images", json!({})).await;
    let (_, first) = registry.push_image("app", "v1", 7).await;
    let (_, second) = registry.push_image("app", "v1", 8).await;
    assert_ne!(first, second, "a mutable registry moves the tag");

    let deleted_tag = registry
        .request(
            Method::DELETE,
            &format!("{}/manifests/v1", registry.repo("app")),
        )
        .send()
        .await
        .expect("delete tag");
    assert_eq!(deleted_tag.status(), StatusCode::ACCEPTED);
    let by_digest = registry
        .request(
            Method::GET,
            &format!("{}/manifests/{second}", registry.repo("app")),
        )
        .send()
        .await
        .expect("get");
    assert_eq!(
        by_digest.status(),
        StatusCode::OK,
        "deleting a tag keeps the manifest"
    );
    let deleted = registry
        .request(
            Method::DELETE,
            &format!("{}/manifests/{second}", registry.repo("app")),
        )
        .send()
        .await
        .expect("delete manifest");
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    let gone = registry
        .request(
            Method::GET,
            &format!("{}/manifests/{second}", registry.repo("app")),
        )
        .send()
        .await
        .expect("get");
    assert_eq!(error_code(gone).await, "MANIFEST_UNKNOWN");

    let layer = registry.push_blob("app", b"layer to delete").await;
    let removed = registry
        .request(
            Method::DELETE,
            &format!("{}/blobs/{layer}", registry.repo("app")),
        )
        .send()
        .await
        .expect("delete blob");
    assert_eq!(removed.status(), StatusCode::ACCEPTED);
    let missing = registry
        .request(
            Method::GET,
            &format!("{}/blobs/{layer}", registry.repo("app")),
        )
        .send()
        .await
        .expect("get");
    assert_eq!(error_code(missing).await, "BLOB_UNKNOWN");

    let frozen = Registry::create(&node, "frozen", json!({"immutable": true})).await;
    let (_, pinned) = frozen.push_image("app", "v1", 9).await;
    let (_, again) = frozen.push_image("app", "v1", 9).await;
    assert_eq!(
        pinned, again,
        "re-pushing the same manifest to a tag is allowed"
    );
    let config = b"{\"architecture\":\"arm64\"}".to_vec();
    let moved = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": frozen.push_blob("app", &config).await, "size": config.len()},
        "layers": []
    });
    let refused = frozen
        .push_manifest("app", "v1", OCI_MANIFEST, &moved)
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(refused).await, "DENIED");
}

#[tokio::test]
async fn token_flow_credentials_and_names() {
    let node = TestNode::start().expect("node");
    Registry::create(&node, "private", json!({})).await;
    let public = Registry::create(&node, "public", json!({"allow_anonymous_read": true})).await;
    let (manifest, _) = public.push_image("app", "v1", 11).await;

    // Anonymous: /v2/ challenges; the token endpoint issues an anonymous pull token for public
    // repositories, which then reads.
    let challenge = http()
        .get(format!("{}/v2/", node.url))
        .send()
        .await
        .expect("base");
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    let www = challenge.headers()["www-authenticate"]
        .to_str()
        .expect("challenge")
        .to_string();
    assert!(www.starts_with("Bearer realm=\"http://"), "{www}");
    assert!(www.contains("/v2/token\""), "{www}");
    let anonymous: Value = http()
        .get(format!(
            "{}/v2/token?service=arca&scope=repository:public/app:pull,push",
            node.url
        ))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = anonymous["token"].as_str().expect("token").to_string();
    let pulled = http()
        .get(format!("{}/v2/public/app/manifests/v1", node.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("pull");
    assert_eq!(
        pulled.bytes().await.expect("body").as_ref(),
        manifest.as_slice()
    );
    let pushed = http()
        .post(format!("{}/v2/public/app/blobs/uploads/", node.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("push");
    assert_eq!(
        pushed.status(),
        StatusCode::UNAUTHORIZED,
        "anonymous tokens never grant push"
    );
    let scope = pushed.headers()["www-authenticate"]
        .to_str()
        .expect("challenge")
        .to_string();
    assert!(
        scope.contains("scope=\"repository:public/app:pull,push\""),
        "{scope}"
    );

    // A private repository: no anonymous access, and a scoped token works only for its scope.
    let denied = http()
        .get(format!("{}/v2/private/app/tags/list", node.url))
        .send()
        .await
        .expect("get");
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(denied).await, "UNAUTHORIZED");
    let scoped: Value = http()
        .get(format!(
            "{}/v2/token?service=arca&scope=repository:private/app:pull,push",
            node.url
        ))
        .basic_auth("ci", Some(&node.admin_token))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let scoped = scoped["token"].as_str().expect("token").to_string();
    let allowed = http()
        .post(format!("{}/v2/private/app/blobs/uploads/", node.url))
        .bearer_auth(&scoped)
        .send()
        .await
        .expect("post");
    assert_eq!(allowed.status(), StatusCode::ACCEPTED);
    let other_repo = http()
        .post(format!("{}/v2/private/other/blobs/uploads/", node.url))
        .bearer_auth(&scoped)
        .send()
        .await
        .expect("post");
    assert_eq!(other_repo.status(), StatusCode::UNAUTHORIZED);
    let insufficient = other_repo.headers()["www-authenticate"]
        .to_str()
        .expect("challenge");
    assert!(
        insufficient.contains("error=\"insufficient_scope\""),
        "{insufficient}"
    );
    let wrong_password = http()
        .get(format!("{}/v2/", node.url))
        .basic_auth("ci", Some("arca_wrong"))
        .send()
        .await
        .expect("get");
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    let forged = http()
        .get(format!("{}/v2/private/app/tags/list", node.url))
        .bearer_auth(format!("{}x", &scoped))
        .send()
        .await
        .expect("get");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // Names that break the grammar, and repositories of registries that are not OCI registries.
    for path in [
        "/v2/private/UPPER/tags/list",
        "/v2/private/a..b/tags/list",
        "/v2/noslash/tags/list",
    ] {
        let response = http()
            .get(format!("{}{path}", node.url))
            .basic_auth("arca", Some(&node.admin_token))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(error_code(response).await, "NAME_INVALID", "{path}");
    }
    http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": "files", "package_type": "GENERIC"}))
        .send()
        .await
        .expect("create");
    let not_oci = http()
        .get(format!("{}/v2/files/app/tags/list", node.url))
        .basic_auth("arca", Some(&node.admin_token))
        .send()
        .await
        .expect("get");
    assert_eq!(error_code(not_oci).await, "NAME_UNKNOWN");
}

#[tokio::test]
async fn refused_pushes_are_answered_whole_and_bad_ranges_are_416() {
    let node = TestNode::start().expect("node");
    let registry = Registry::create(&node, "docker", json!({})).await;
    registry.push_image("app", "v1", 3).await;
    // An anonymous push of a large manifest: the client sees the 401 with its challenge (the body
    // is read and dropped first), not a broken pipe.
    for (user, password) in [(None, None), (Some("arca"), Some("not a token"))] {
        let mut request = http()
            .put(format!("{}{}/manifests/v2", node.url, registry.repo("app")))
            .header("content-type", OCI_MANIFEST)
            .body(vec![b' '; 3_900_000]);
        if let Some(user) = user {
            request = request.basic_auth(user, password);
        }
        let refused = request.send().await.expect("the 401 arrives");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(refused.headers().contains_key("www-authenticate"));
        assert_eq!(error_code(refused).await, "UNAUTHORIZED");
    }
    // A range that ends before it starts cannot be satisfied.
    let config = b"{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":3}";
    let inverted = registry
        .request(
            Method::GET,
            &format!("{}/blobs/{}", registry.repo("app"), digest(config)),
        )
        .header("range", "bytes=40-0")
        .send()
        .await
        .expect("get");
    assert_eq!(inverted.status(), StatusCode::RANGE_NOT_SATISFIABLE);
}

/// Sends `method` to `url` on `node` with the admin token as Basic password.
fn as_admin(node: &TestNode, method: Method, url: &str) -> RequestBuilder {
    let url = if url.starts_with("http") {
        url.to_string()
    } else {
        format!("{}{url}", node.url)
    };
    http()
        .request(method, url)
        .basic_auth("arca", Some(&node.admin_token))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_resumes_after_the_node_is_killed() {
    let mut node = TestNode::start().expect("node");
    Registry::create(&node, "images", json!({})).await;
    let layer = pseudo_random_bytes(9 * 1024 * 1024 + 123, 77);
    let (first, second) = layer.split_at(6 * 1024 * 1024);
    let started = as_admin(&node, Method::POST, "/v2/images/app/blobs/uploads/")
        .send()
        .await
        .expect("start");
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let session = started.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let part = as_admin(&node, Method::PATCH, &session)
        .header("content-type", "application/octet-stream")
        .header("content-range", format!("0-{}", first.len() - 1))
        .body(first.to_vec())
        .send()
        .await
        .expect("first part");
    assert_eq!(part.status(), StatusCode::ACCEPTED);

    // A crash between two parts: the session is still there, holding the first part.
    node.restart().expect("restart");
    let status = as_admin(&node, Method::GET, &session)
        .send()
        .await
        .expect("status");
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        status.headers()["range"],
        format!("0-{}", first.len() - 1).as_str()
    );
    let part = as_admin(&node, Method::PATCH, &session)
        .header("content-type", "application/octet-stream")
        .header(
            "content-range",
            format!("{}-{}", first.len(), layer.len() - 1),
        )
        .body(second.to_vec())
        .send()
        .await
        .expect("second part");
    assert_eq!(part.status(), StatusCode::ACCEPTED);
    let separator = if session.contains('?') { '&' } else { '?' };
    let done = as_admin(
        &node,
        Method::PUT,
        &format!("{session}{separator}digest={}", digest(&layer)),
    )
    .send()
    .await
    .expect("finish");
    assert_eq!(
        done.status(),
        StatusCode::CREATED,
        "{:?}",
        done.text().await
    );
    let fetched = as_admin(
        &node,
        Method::GET,
        &format!("/v2/images/app/blobs/{}", digest(&layer)),
    )
    .send()
    .await
    .expect("get")
    .bytes()
    .await
    .expect("body");
    assert_eq!(sha256_hex(&fetched), sha256_hex(&layer));
    // A finished session is gone, file and all.
    let saved = std::fs::read_dir(node.data_dir().join("uploads"))
        .expect("uploads dir")
        .count();
    assert_eq!(saved, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_caller_cannot_take_every_upload_session() {
    let node = TestNode::start().expect("node");
    Registry::create(&node, "images", json!({})).await;
    Registry::create(&node, "other", json!({})).await;
    let created: Value = http()
        .post(format!("{}/api/v1/tokens", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": "greedy", "role": "write"}))
        .send()
        .await
        .expect("create token")
        .json()
        .await
        .expect("token json");
    let greedy = created["token"].as_str().expect("secret").to_string();
    let start = |token: &str, registry: &str| {
        http()
            .post(format!("{}/v2/{registry}/app/blobs/uploads/", node.url))
            .basic_auth("arca", Some(token))
            .send()
    };
    for _ in 0..64 {
        let started = start(&greedy, "images").await.expect("start");
        assert_eq!(started.status(), StatusCode::ACCEPTED);
    }
    let refused = start(&greedy, "other").await.expect("start");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let error: Value = refused.json().await.expect("error json");
    assert_eq!(error["errors"][0]["code"], "TOOMANYREQUESTS", "{error}");
    // Everyone else still pushes.
    let other = start(&node.admin_token, "images").await.expect("start");
    assert_eq!(other.status(), StatusCode::ACCEPTED);
}
