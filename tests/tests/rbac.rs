//! Access control as a matrix: every format's read and write endpoints and the management API, against
//! every kind of caller (anonymous, global and per-registry roles, expired, revoked and rotated tokens,
//! a disabled user's token, a user's own name and password over Basic), each asserting the exact
//! status and, for refusals, the format's own error shape. The table is data: a missing check in any
//! handler fails a row.

use std::collections::BTreeMap;
use std::time::Duration;

use arca_tests::{TestNode, http, pseudo_random_bytes, sha256_hex};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const PASSWORD: &str = "correct horse battery";

/// The registry each format's rows act on, and the one "another registry" grants name.
const GENERIC: &str = "gen";
const NPM: &str = "js";
const PYPI: &str = "py";
const MAVEN: &str = "mvn";
const OCI: &str = "img";
const OTHER: &str = "other";
const REGISTRIES: [(&str, &str); 6] = [
    (GENERIC, "GENERIC"),
    (NPM, "NPM"),
    (PYPI, "PYPI"),
    (MAVEN, "MAVEN"),
    (OCI, "DOCKER"),
    (OTHER, "GENERIC"),
];

/// How a caller authenticates.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

impl Auth {
    fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
        }
    }
}

/// What a caller may do with a registry in the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Refused as unauthenticated (401).
    Unauthenticated,
    /// Authenticated, may not even read it (403).
    Nothing,
    /// May read (writes 403).
    Read,
    /// May read and write, not administer.
    Write,
    /// Everything.
    Admin,
}

/// One kind of caller; `access` says what it may do on a format's registry (by registry name).
struct Principal {
    name: &'static str,
    auth: Box<dyn Fn(&str) -> Auth>,
    access: Box<dyn Fn(&str) -> Access>,
    /// A word every refusal's message must contain (an expired token says so).
    says: Option<&'static str>,
}

/// The error shape a surface answers refusals in.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `{"error": {"code", "message"}}`: the management API, generic and Maven registries.
    Api,
    /// `{"error": "..."}`.
    Npm,
    /// `text/plain` starting with the status code.
    Pypi,
    /// `{"errors": [{"code", "message"}]}` with `WWW-Authenticate` on 401.
    Oci,
}

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Read,
    Write,
    /// A global admin (creating registries).
    GlobalAdmin,
}

/// Builds an operation's request for caller number `n` (so writes never collide).
type BuildRequest = Box<dyn Fn(&TestNode, usize) -> RequestBuilder>;

/// One endpoint of the matrix.
struct Operation {
    name: &'static str,
    registry: &'static str,
    needs: Needs,
    success: StatusCode,
    shape: Shape,
    request: BuildRequest,
}

fn url(node: &TestNode, path: &str) -> String {
    format!("{}{path}", node.url)
}

async fn admin(node: &TestNode, method: Method, path: &str, body: Value) -> Value {
    let response = http()
        .request(method.clone(), url(node, &format!("/api/v1{path}")))
        .bearer_auth(&node.admin_token)
        .json(&body)
        .send()
        .await
        .expect("admin request");
    let status = response.status();
    let text = response.text().await.expect("body");
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A user with `grants` and a token it owns; returns the token's id and secret.
async fn user_with_token(
    node: &TestNode,
    name: &str,
    grants: &[Value],
    token: Value,
) -> (String, String) {
    admin(
        node,
        Method::POST,
        "/users",
        json!({"name": name, "password": PASSWORD}),
    )
    .await;
    for grant in grants {
        admin(
            node,
            Method::PUT,
            &format!("/users/{name}/roles"),
            grant.clone(),
        )
        .await;
    }
    let mut request = json!({"name": format!("{name}-token"), "owner": name});
    if let (Some(request), Some(extra)) = (request.as_object_mut(), token.as_object()) {
        request.extend(extra.clone());
    }
    let created = admin(node, Method::POST, "/tokens", request).await;
    (
        created["id"].as_str().expect("id").to_string(),
        created["token"].as_str().expect("secret").to_string(),
    )
}

/// The document `npm publish` sends for `name` `version`, with a real tarball.
fn npm_document(name: &str, version: &str) -> Value {
    let tarball = arca_tests::npm_tarball(name, version, 0).expect("in memory");
    let data = tarball.as_slice();
    json!({
        "_id": name,
        "name": name,
        "dist-tags": { "latest": version },
        "versions": { version: {
            "name": name,
            "version": version,
            "dist": {
                "integrity": format!("sha512-{}", STANDARD.encode(sha2::Sha512::digest(data))),
                "shasum": hex::encode(sha1::Sha1::digest(data)),
            },
        } },
        "_attachments": { format!("{name}-{version}.tgz"): {
            "content_type": "application/octet-stream",
            "data": STANDARD.encode(data),
            "length": data.len(),
        } },
    })
}

const BOUNDARY: &str = "arca-rbac-boundary";

/// The form `twine upload` sends for a source distribution of `demo` `version`.
fn pypi_upload(version: &str) -> Vec<u8> {
    let sdist = arca_tests::sdist("demo", version, false).expect("in memory");
    let content = sdist.as_slice();
    let filename = format!("demo-{version}.tar.gz");
    let mut body = Vec::new();
    for (name, value) in [
        (":action", "file_upload".to_string()),
        ("protocol_version", "1".to_string()),
        ("name", "demo".to_string()),
        ("version", version.to_string()),
        ("filetype", "sdist".to_string()),
        ("pyversion", "source".to_string()),
        ("metadata_version", "2.1".to_string()),
        ("sha256_digest", sha256_hex(content)),
    ] {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn oci_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// The image manifest every OCI row pushes or pulls: its config and layer are uploaded first.
fn oci_image() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = pseudo_random_bytes(2048, 7);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": oci_digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": oci_digest(&layer), "size": layer.len()}]
    }))
    .expect("json");
    (config, layer, manifest)
}

/// Content every read row reads, stored by the admin.
async fn seed(node: &TestNode) {
    for (name, package_type) in REGISTRIES {
        admin(
            node,
            Method::POST,
            "/registries",
            json!({"name": name, "package_type": package_type}),
        )
        .await;
    }
    let put = |path: String, body: Vec<u8>| {
        http()
            .put(url(node, &path))
            .bearer_auth(&node.admin_token)
            .body(body)
            .send()
    };
    let status =
        |response: reqwest::Result<reqwest::Response>| response.expect("seed request").status();
    assert_eq!(
        status(
            put(
                format!("/generic/{GENERIC}/tool/1/tool.bin"),
                b"tool".to_vec()
            )
            .await
        ),
        StatusCode::CREATED
    );
    for n in 0..PRINCIPALS {
        // One version per caller for the delete-version rows.
        assert_eq!(
            status(
                put(
                    format!("/generic/{GENERIC}/doomed/{n}/f.bin"),
                    b"x".to_vec()
                )
                .await
            ),
            StatusCode::CREATED
        );
    }
    let npm = http()
        .put(url(node, &format!("/npm/{NPM}/demo")))
        .bearer_auth(&node.admin_token)
        .json(&npm_document("demo", "1.0.0"))
        .send()
        .await;
    assert_eq!(status(npm), StatusCode::CREATED);
    let pypi = http()
        .post(url(node, &format!("/pypi/{PYPI}/")))
        .bearer_auth(&node.admin_token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(pypi_upload("1.0.0"))
        .send()
        .await;
    assert_eq!(status(pypi), StatusCode::OK);
    assert_eq!(
        status(
            put(
                format!("/maven/{MAVEN}/org/example/lib/1.0/lib-1.0.jar"),
                b"jar".to_vec()
            )
            .await
        ),
        StatusCode::CREATED
    );
    let (config, layer, manifest) = oci_image();
    for blob in [config, layer] {
        let response = http()
            .post(url(
                node,
                &format!("/v2/{OCI}/app/blobs/uploads/?digest={}", oci_digest(&blob)),
            ))
            .bearer_auth(&node.admin_token)
            .body(blob)
            .send()
            .await;
        assert_eq!(status(response), StatusCode::CREATED);
    }
    let response = http()
        .put(url(node, &format!("/v2/{OCI}/app/manifests/latest")))
        .bearer_auth(&node.admin_token)
        .header("content-type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .await;
    assert_eq!(status(response), StatusCode::CREATED);
}

/// How many principals the matrix has (each gets its own index for unique writes).
const PRINCIPALS: usize = 11;

fn operations() -> Vec<Operation> {
    let op = |name, registry, needs, success, shape, request: BuildRequest| Operation {
        name,
        registry,
        needs,
        success,
        shape,
        request,
    };
    vec![
        op(
            "generic GET",
            GENERIC,
            Needs::Read,
            StatusCode::OK,
            Shape::Api,
            Box::new(|node, _| {
                http().get(url(node, &format!("/generic/{GENERIC}/tool/1/tool.bin")))
            }),
        ),
        op(
            "generic PUT",
            GENERIC,
            Needs::Write,
            StatusCode::CREATED,
            Shape::Api,
            Box::new(|node, n| {
                http()
                    .put(url(
                        node,
                        &format!("/generic/{GENERIC}/tool/2.{n}/tool.bin"),
                    ))
                    .body("new")
            }),
        ),
        op(
            "npm packument GET",
            NPM,
            Needs::Read,
            StatusCode::OK,
            Shape::Npm,
            Box::new(|node, _| http().get(url(node, &format!("/npm/{NPM}/demo")))),
        ),
        op(
            "npm tarball GET",
            NPM,
            Needs::Read,
            StatusCode::OK,
            Shape::Npm,
            Box::new(|node, _| http().get(url(node, &format!("/npm/{NPM}/demo/-/demo-1.0.0.tgz")))),
        ),
        op(
            "npm publish",
            NPM,
            Needs::Write,
            StatusCode::CREATED,
            Shape::Npm,
            Box::new(|node, n| {
                http()
                    .put(url(node, &format!("/npm/{NPM}/demo")))
                    .json(&npm_document("demo", &format!("2.0.{n}")))
            }),
        ),
        op(
            "PyPI simple GET",
            PYPI,
            Needs::Read,
            StatusCode::OK,
            Shape::Pypi,
            Box::new(|node, _| http().get(url(node, &format!("/pypi/{PYPI}/simple/demo/")))),
        ),
        op(
            "PyPI file GET",
            PYPI,
            Needs::Read,
            StatusCode::OK,
            Shape::Pypi,
            Box::new(|node, _| {
                http().get(url(
                    node,
                    &format!("/pypi/{PYPI}/files/demo/1.0.0/demo-1.0.0.tar.gz"),
                ))
            }),
        ),
        op(
            "PyPI upload",
            PYPI,
            Needs::Write,
            StatusCode::OK,
            Shape::Pypi,
            Box::new(|node, n| {
                http()
                    .post(url(node, &format!("/pypi/{PYPI}/")))
                    .header(
                        "content-type",
                        format!("multipart/form-data; boundary={BOUNDARY}"),
                    )
                    .body(pypi_upload(&format!("2.0.{n}")))
            }),
        ),
        op(
            "Maven GET",
            MAVEN,
            Needs::Read,
            StatusCode::OK,
            Shape::Api,
            Box::new(|node, _| {
                http().get(url(
                    node,
                    &format!("/maven/{MAVEN}/org/example/lib/1.0/lib-1.0.jar"),
                ))
            }),
        ),
        op(
            "Maven PUT",
            MAVEN,
            Needs::Write,
            StatusCode::CREATED,
            Shape::Api,
            Box::new(|node, n| {
                http()
                    .put(url(
                        node,
                        &format!("/maven/{MAVEN}/org/example/lib/2.{n}/lib-2.{n}.jar"),
                    ))
                    .body(format!("jar {n}"))
            }),
        ),
        op(
            "OCI manifest GET",
            OCI,
            Needs::Read,
            StatusCode::OK,
            Shape::Oci,
            Box::new(|node, _| {
                http()
                    .get(url(node, &format!("/v2/{OCI}/app/manifests/latest")))
                    .header("accept", OCI_MANIFEST)
            }),
        ),
        op(
            "OCI blob upload",
            OCI,
            Needs::Write,
            StatusCode::CREATED,
            Shape::Oci,
            Box::new(|node, n| {
                let blob = format!("layer of caller {n}").into_bytes();
                http()
                    .post(url(
                        node,
                        &format!("/v2/{OCI}/app/blobs/uploads/?digest={}", oci_digest(&blob)),
                    ))
                    .body(blob)
            }),
        ),
        op(
            "OCI manifest PUT",
            OCI,
            Needs::Write,
            StatusCode::CREATED,
            Shape::Oci,
            Box::new(|node, n| {
                http()
                    .put(url(node, &format!("/v2/{OCI}/app/manifests/t{n}")))
                    .header("content-type", OCI_MANIFEST)
                    .body(oci_image().2)
            }),
        ),
        op(
            "API get registry",
            GENERIC,
            Needs::Read,
            StatusCode::OK,
            Shape::Api,
            Box::new(|node, _| http().get(url(node, &format!("/api/v1/registries/{GENERIC}")))),
        ),
        op(
            "API create registry",
            GENERIC,
            Needs::GlobalAdmin,
            StatusCode::CREATED,
            Shape::Api,
            Box::new(|node, n| {
                http()
                    .post(url(node, "/api/v1/registries"))
                    .json(&json!({"name": format!("made-by-{n}"), "package_type": "GENERIC"}))
            }),
        ),
        op(
            "API set metadata",
            GENERIC,
            Needs::Write,
            StatusCode::OK,
            Shape::Api,
            Box::new(|node, n| {
                http()
                    .put(url(node, &format!("/api/v1/registries/{GENERIC}/metadata")))
                    .json(&json!({"metadata": {format!("k{n}"): "v"}}))
            }),
        ),
        op(
            "API delete version",
            GENERIC,
            Needs::Write,
            StatusCode::NO_CONTENT,
            Shape::Api,
            Box::new(|node, n| {
                http().delete(url(
                    node,
                    &format!("/api/v1/registries/{GENERIC}/packages/doomed/versions/{n}"),
                ))
            }),
        ),
    ]
}

/// The status a caller with `access` gets for an operation that `needs`.
fn expected(access: Access, needs: Needs, success: StatusCode) -> StatusCode {
    match (access, needs) {
        (Access::Unauthenticated, _) => StatusCode::UNAUTHORIZED,
        (Access::Admin, _) => success,
        (_, Needs::GlobalAdmin) | (Access::Nothing, _) | (Access::Read, Needs::Write) => {
            StatusCode::FORBIDDEN
        }
        (Access::Read | Access::Write, Needs::Read) | (Access::Write, Needs::Write) => success,
    }
}

/// Checks that a refusal is in the surface's own error shape; returns its message.
fn refusal_message(
    shape: Shape,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> Result<String, String> {
    let json = || serde_json::from_str::<Value>(body).map_err(|e| format!("not JSON ({e})"));
    match shape {
        Shape::Api => {
            let value = json()?;
            let code = value["error"]["code"].as_str().ok_or("no error.code")?;
            let wanted = if status == StatusCode::UNAUTHORIZED {
                "UNAUTHORIZED"
            } else {
                "FORBIDDEN"
            };
            if code != wanted {
                return Err(format!("error.code {code}, expected {wanted}"));
            }
            Ok(value["error"]["message"]
                .as_str()
                .ok_or("no error.message")?
                .to_string())
        }
        Shape::Npm => Ok(json()?["error"]
            .as_str()
            .ok_or("no string error field")?
            .to_string()),
        Shape::Pypi => {
            if !body.starts_with(&format!("{} ", status.as_u16())) {
                return Err("does not start with the status code".into());
            }
            Ok(body.to_string())
        }
        Shape::Oci => {
            let value = json()?;
            let code = value["errors"][0]["code"]
                .as_str()
                .ok_or("no errors[0].code")?;
            let wanted = if status == StatusCode::UNAUTHORIZED {
                "UNAUTHORIZED"
            } else {
                "DENIED"
            };
            if code != wanted {
                return Err(format!("errors[0].code {code}, expected {wanted}"));
            }
            if status == StatusCode::UNAUTHORIZED {
                let challenge = headers
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .ok_or("401 without WWW-Authenticate")?;
                if !challenge.starts_with("Bearer realm=") {
                    return Err(format!("challenge {challenge}"));
                }
            }
            Ok(value["errors"][0]["message"]
                .as_str()
                .ok_or("no errors[0].message")?
                .to_string())
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_against_every_principal() {
    let node = TestNode::start().expect("node");
    seed(&node).await;
    let formats = [GENERIC, NPM, PYPI, MAVEN, OCI];
    let all = |access: Access| -> Box<dyn Fn(&str) -> Access> { Box::new(move |_| access) };

    // Per-registry users: a viewer, a contributor and a password user (contributor) for each
    // format's registry, all holding tokens scoped to everything (capped by their grants).
    let mut viewers = BTreeMap::new();
    let mut contributors = BTreeMap::new();
    for registry in formats {
        let (_, viewer) = user_with_token(
            &node,
            &format!("viewer-{registry}"),
            &[json!({"role": "viewer", "registry": registry})],
            json!({}),
        )
        .await;
        viewers.insert(registry, viewer);
        let (_, contributor) = user_with_token(
            &node,
            &format!("contributor-{registry}"),
            &[json!({"role": "contributor", "registry": registry})],
            json!({}),
        )
        .await;
        contributors.insert(registry, contributor);
    }
    let (_, global_viewer) = user_with_token(
        &node,
        "global-viewer",
        &[json!({"role": "viewer"})],
        json!({}),
    )
    .await;
    let (_, elsewhere) = user_with_token(
        &node,
        "contributor-elsewhere",
        &[json!({"role": "contributor", "registry": OTHER})],
        json!({}),
    )
    .await;
    let writer = [json!({"role": "write"})];
    let (_, expiring) =
        user_with_token(&node, "expiring", &writer, json!({"expires_in_seconds": 1})).await;
    let (revoked_id, revoked) = user_with_token(&node, "revoked", &writer, json!({})).await;
    admin(
        &node,
        Method::DELETE,
        &format!("/tokens/{revoked_id}"),
        Value::Null,
    )
    .await;
    let (rotated_id, rotated_old) = user_with_token(&node, "rotated", &writer, json!({})).await;
    let rotated = admin(
        &node,
        Method::POST,
        &format!("/tokens/{rotated_id}/rotate"),
        Value::Null,
    )
    .await;
    let rotated_new = rotated["token"].as_str().expect("new secret").to_string();
    let (_, disabled) = user_with_token(&node, "disabled", &writer, json!({})).await;
    admin(
        &node,
        Method::PATCH,
        "/users/disabled",
        json!({"disabled": true}),
    )
    .await;
    for registry in formats {
        let name = format!("basic-{registry}");
        admin(
            &node,
            Method::POST,
            "/users",
            json!({"name": name, "password": PASSWORD}),
        )
        .await;
        admin(
            &node,
            Method::PUT,
            &format!("/users/{name}/roles"),
            json!({"role": "contributor", "registry": registry}),
        )
        .await;
    }

    // The rotated token's new secret works; whoami shows owner and grants.
    let me: Value = http()
        .get(url(&node, "/api/v1/whoami"))
        .bearer_auth(&rotated_new)
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("json");
    assert_eq!(me["user"], "rotated");
    assert_eq!(
        me["grants"],
        json!([{"role": "contributor", "registry": null}])
    );
    assert_eq!(me["token"]["id"], rotated_id.as_str());

    let bearer = |secret: &str| Auth::Bearer(secret.to_string());
    let admin_token = node.admin_token.clone();
    let principals: Vec<Principal> = vec![
        Principal {
            name: "anonymous",
            auth: Box::new(|_| Auth::None),
            access: all(Access::Unauthenticated),
            says: None,
        },
        Principal {
            name: "global viewer",
            auth: Box::new(move |_| bearer(&global_viewer)),
            access: all(Access::Read),
            says: None,
        },
        Principal {
            name: "viewer on this registry only",
            auth: Box::new(move |r| bearer(&viewers[r])),
            access: all(Access::Read),
            says: None,
        },
        Principal {
            name: "contributor on another registry only",
            auth: Box::new(move |_| bearer(&elsewhere)),
            access: all(Access::Nothing),
            says: None,
        },
        Principal {
            name: "contributor on this registry",
            auth: Box::new(move |r| bearer(&contributors[r])),
            access: all(Access::Write),
            says: None,
        },
        Principal {
            name: "global admin",
            auth: Box::new(move |_| bearer(&admin_token)),
            access: all(Access::Admin),
            says: None,
        },
        Principal {
            name: "expired token",
            auth: Box::new(move |_| bearer(&expiring)),
            access: all(Access::Unauthenticated),
            says: Some("expired"),
        },
        Principal {
            name: "revoked token",
            auth: Box::new(move |_| bearer(&revoked)),
            access: all(Access::Unauthenticated),
            says: None,
        },
        Principal {
            name: "rotated token's old secret",
            auth: Box::new(move |_| bearer(&rotated_old)),
            access: all(Access::Unauthenticated),
            says: None,
        },
        Principal {
            name: "disabled user's token",
            auth: Box::new(move |_| bearer(&disabled)),
            access: all(Access::Unauthenticated),
            says: Some("disabled"),
        },
        Principal {
            name: "user's own name and password (Basic)",
            auth: Box::new(|r| Auth::Basic(format!("basic-{r}"), PASSWORD.to_string())),
            access: all(Access::Write),
            says: None,
        },
    ];
    assert_eq!(principals.len(), PRINCIPALS);
    // The token of `expiring` has run out by now.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let mut failures = Vec::new();
    let mut checked = 0;
    for operation in operations() {
        for (n, principal) in principals.iter().enumerate() {
            let auth = (principal.auth)(operation.registry);
            let want = expected(
                (principal.access)(operation.registry),
                operation.needs,
                operation.success,
            );
            let response = auth
                .apply((operation.request)(&node, n))
                .send()
                .await
                .expect("request");
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.text().await.unwrap_or_default();
            let row = format!("{} × {}", operation.name, principal.name);
            checked += 1;
            if status != want {
                failures.push(format!("{row}: {status}, expected {want}: {body}"));
                continue;
            }
            if status.is_success() {
                continue;
            }
            match refusal_message(operation.shape, status, &headers, &body) {
                Err(problem) => failures.push(format!("{row}: {problem}: {body}")),
                Ok(message) => {
                    if let Some(word) = principal.says
                        && !message.contains(word)
                    {
                        failures.push(format!("{row}: message {message:?} lacks {word:?}"));
                    }
                }
            }
        }
    }
    assert_eq!(checked, operations().len() * PRINCIPALS);
    assert!(
        failures.is_empty(),
        "{} of {checked} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_change_what_tokens_do_at_once_and_listings_follow_grants() {
    let node = TestNode::start().expect("node");
    for name in ["one", "two"] {
        admin(
            &node,
            Method::POST,
            "/registries",
            json!({"name": name, "package_type": "GENERIC"}),
        )
        .await;
    }
    let (_, token) = user_with_token(
        &node,
        "carol",
        &[json!({"role": "contributor", "registry": "one"})],
        json!({}),
    )
    .await;
    let get = |path: &str| {
        http()
            .get(url(&node, &format!("/api/v1{path}")))
            .bearer_auth(&token)
            .send()
    };
    let names = |listing: Value| -> Vec<String> {
        listing
            .as_array()
            .expect("list")
            .iter()
            .map(|r| r["name"].as_str().expect("name").to_string())
            .collect()
    };
    let listing: Value = get("/registries")
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(names(listing), vec!["one"]);
    let put = || {
        http()
            .put(url(&node, "/generic/one/p/1/f.bin"))
            .bearer_auth(&token)
            .body("x")
            .send()
    };
    assert_eq!(put().await.expect("put").status(), StatusCode::CREATED);

    // Revoking the user's grant takes effect on its token at once.
    admin(
        &node,
        Method::DELETE,
        "/users/carol/roles",
        json!({"role": "contributor", "registry": "one"}),
    )
    .await;
    assert_eq!(put().await.expect("put").status(), StatusCode::FORBIDDEN);
    let listing: Value = get("/registries")
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert!(names(listing).is_empty());

    // A token scoped narrower than its owner stays narrow.
    admin(
        &node,
        Method::PUT,
        "/users/carol/roles",
        json!({"role": "admin"}),
    )
    .await;
    let scoped = admin(
        &node,
        Method::POST,
        "/tokens",
        json!({"name": "ro", "owner": "carol", "scopes": [{"role": "viewer", "registry": "two"}]}),
    )
    .await;
    let scoped = scoped["token"].as_str().expect("secret").to_string();
    let me: Value = http()
        .get(url(&node, "/api/v1/whoami"))
        .bearer_auth(&scoped)
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("json");
    assert_eq!(me["grants"], json!([{"role": "viewer", "registry": "two"}]));
    let listing: Value = http()
        .get(url(&node, "/api/v1/registries"))
        .bearer_auth(&scoped)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(names(listing), vec!["two"]);

    // Users may mint tokens for themselves, never beyond what they hold.
    let carol_viewer = http()
        .post(url(&node, "/api/v1/tokens"))
        .bearer_auth(&scoped)
        .json(&json!({"name": "more", "owner": "carol", "role": "admin"}))
        .send()
        .await
        .expect("create");
    assert_eq!(carol_viewer.status(), StatusCode::FORBIDDEN);
    let body: Value = carol_viewer.json().await.expect("json");
    assert_eq!(body["error"]["code"], "FORBIDDEN");

    // Deleting the user takes its tokens with it.
    admin(&node, Method::DELETE, "/users/carol", Value::Null).await;
    let gone = get("/whoami").await.expect("whoami");
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn password_login_issues_a_twelve_hour_token_and_secrets_never_show() {
    let node = TestNode::start().expect("node");
    admin(
        &node,
        Method::POST,
        "/users",
        json!({"name": "dave", "password": PASSWORD}),
    )
    .await;
    admin(
        &node,
        Method::PUT,
        "/users/dave/roles",
        json!({"role": "viewer"}),
    )
    .await;
    let login = |password: &str| {
        http()
            .post(url(&node, "/api/v1/login"))
            .json(&json!({"username": "dave", "password": password}))
            .send()
    };
    let wrong = login("wrong password").await.expect("login");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.expect("json");
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let issued = login(PASSWORD).await.expect("login");
    assert_eq!(issued.status(), StatusCode::CREATED);
    let issued: Value = issued.json().await.expect("json");
    assert_eq!(issued["owner"], "dave");
    let expires_at = issued["expires_at"].as_u64().expect("expiry");
    let twelve_hours = 12 * 3600 * 1000;
    assert!(
        expires_at >= before + twelve_hours && expires_at < before + twelve_hours + 60_000,
        "{issued}"
    );
    let me: Value = http()
        .get(url(&node, "/api/v1/whoami"))
        .bearer_auth(issued["token"].as_str().expect("secret"))
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("json");
    assert_eq!(me["user"], "dave");
    assert_eq!(me["grants"], json!([{"role": "viewer", "registry": null}]));

    // npm login with the user's own password gets a login token of that user.
    admin(
        &node,
        Method::POST,
        "/registries",
        json!({"name": NPM, "package_type": "NPM"}),
    )
    .await;
    let npm_login = |password: &str| {
        http()
            .put(url(
                &node,
                &format!("/npm/{NPM}/-/user/org.couchdb.user:dave"),
            ))
            .json(&json!({"name": "dave", "password": password}))
            .send()
    };
    let refused = npm_login("wrong password").await.expect("npm login");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let refused: Value = refused.json().await.expect("npm error");
    assert!(refused["error"].is_string(), "{refused}");
    let logged_in = npm_login(PASSWORD).await.expect("npm login");
    assert_eq!(logged_in.status(), StatusCode::CREATED);
    let logged_in: Value = logged_in.json().await.expect("json");
    let npm_token = logged_in["token"].as_str().expect("token");
    assert_ne!(npm_token, PASSWORD);
    let whoami: Value = http()
        .get(url(&node, &format!("/npm/{NPM}/-/whoami")))
        .bearer_auth(npm_token)
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("json");
    assert_eq!(whoami["username"], "dave");

    // A service account has no password and cannot log in.
    let refused = http()
        .post(url(&node, "/api/v1/users"))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": "bot", "kind": "service", "password": PASSWORD}))
        .send()
        .await
        .expect("create");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    admin(
        &node,
        Method::POST,
        "/users",
        json!({"name": "bot", "kind": "service"}),
    )
    .await;
    let short = http()
        .patch(url(&node, "/api/v1/users/dave"))
        .bearer_auth(&node.admin_token)
        .json(&json!({"password": "short"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);

    // No answer carries a password or its hash.
    for path in ["/users", "/users/dave", "/tokens"] {
        let text = http()
            .get(url(&node, &format!("/api/v1{path}")))
            .bearer_auth(&node.admin_token)
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("text");
        assert!(
            !text.contains("argon2") && !text.contains(PASSWORD) && !text.contains("password_hash"),
            "{path}: {text}"
        );
    }

    // Changing the password ends Basic access with the old one at once (the verification cache
    // is keyed on the stored hash).
    let basic = |password: &str| {
        http()
            .get(url(&node, "/api/v1/whoami"))
            .basic_auth("dave", Some(password))
            .send()
    };
    assert_eq!(basic(PASSWORD).await.expect("get").status(), StatusCode::OK);
    admin(
        &node,
        Method::PATCH,
        "/users/dave",
        json!({"password": "a brand new password"}),
    )
    .await;
    assert_eq!(
        basic(PASSWORD).await.expect("get").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        basic("a brand new password").await.expect("get").status(),
        StatusCode::OK
    );
    // Users change their own password only by giving the current one.
    let own_change = |body: serde_json::Value| {
        http()
            .patch(url(&node, "/api/v1/users/dave"))
            .basic_auth("dave", Some("a brand new password"))
            .json(&body)
            .send()
    };
    let without = own_change(json!({"password": "yet another password"}));
    assert_eq!(
        without.await.expect("patch").status(),
        StatusCode::BAD_REQUEST
    );
    let wrong =
        own_change(json!({"password": "yet another password", "current_password": "a guess!!"}));
    assert_eq!(wrong.await.expect("patch").status(), StatusCode::FORBIDDEN);
    let right = own_change(
        json!({"password": "yet another password", "current_password": "a brand new password"}),
    );
    assert_eq!(right.await.expect("patch").status(), StatusCode::OK);
    assert_eq!(
        basic("yet another password").await.expect("get").status(),
        StatusCode::OK
    );
    // A name that does not exist is refused after as much work, and in the same words, as a
    // wrong password for one that does: neither tells which names exist.
    let refusal = |user: &'static str| {
        let node = &node;
        async move {
            let started = std::time::Instant::now();
            let response = http()
                .get(url(node, "/api/v1/whoami"))
                .basic_auth(user, Some("not the password"))
                .send()
                .await
                .expect("get");
            let elapsed = started.elapsed();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            (elapsed, response.text().await.expect("text"))
        }
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..5 {
        known.push(refusal("dave").await);
        unknown.push(refusal("nobody-by-this-name").await);
    }
    assert_eq!(known[0].1, unknown[0].1, "the same answer");
    let median = |runs: &mut Vec<(Duration, String)>| {
        runs.sort_by_key(|run| run.0);
        runs[runs.len() / 2].0
    };
    let (known, unknown) = (median(&mut known), median(&mut unknown));
    assert!(
        unknown * 2 >= known,
        "an unknown name is refused in {unknown:?}, a wrong password in {known:?}"
    );

    // User changes and logins are in the audit trail (recorded in batches: wait for them).
    let actions = [
        "POST /api/v1/users",
        "PUT /api/v1/users/{name}/roles",
        "PATCH /api/v1/users/{name}",
        "POST /api/v1/login",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = admin(&node, Method::GET, "/audit?limit=1000", Value::Null)
            .await
            .to_string();
        if actions.iter().all(|action| text.contains(action))
            || std::time::Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for action in actions {
        assert!(
            text.contains(action),
            "{action} missing from the audit trail"
        );
    }
    assert!(text.contains("user dave logged in"), "{text}");
    assert!(
        !text.contains(PASSWORD),
        "a password reached the audit trail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_throttled_per_name_and_answered_429() {
    let node = TestNode::start().expect("node");
    admin(
        &node,
        Method::POST,
        "/users",
        json!({"name": "frank", "password": PASSWORD}),
    )
    .await;
    let whoami = |user: &'static str, password: &'static str| {
        http()
            .get(url(&node, "/api/v1/whoami"))
            .basic_auth(user, Some(password))
            .send()
    };
    for _ in 0..10 {
        let guess = whoami("frank", "a wrong guess").await.expect("get");
        assert_eq!(guess.status(), StatusCode::UNAUTHORIZED);
    }
    // The name is throttled: even the right password is not checked now.
    let throttled = whoami("frank", PASSWORD).await.expect("get");
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = throttled.text().await.expect("text");
    assert!(body.contains("try again in"), "{body}");
    // Other names are not (this address is below its own limit), and tokens never are.
    let other = whoami("someone-else", "a wrong guess").await.expect("get");
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    let token = http()
        .get(url(&node, "/api/v1/whoami"))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("get");
    assert_eq!(token.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_does_not_tell_whether_a_registry_exists() {
    let node = TestNode::start().expect("node");
    for name in ["here", "priv"] {
        admin(
            &node,
            Method::POST,
            "/registries",
            json!({"name": name, "package_type": "GENERIC"}),
        )
        .await;
    }
    let (_, secret) = user_with_token(
        &node,
        "outsider",
        &[json!({"role": "contributor", "registry": "here"})],
        json!({}),
    )
    .await;
    let refusal = |registry: &'static str| {
        let request = http()
            .get(url(
                &node,
                &format!("/generic/{registry}/tool/1.0/tool.bin"),
            ))
            .bearer_auth(&secret);
        async move {
            let response = request.send().await.expect("get");
            let status = response.status();
            let body: Value = response.json().await.expect("error json");
            (
                status,
                body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    let (status, forbidden) = refusal("priv").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, missing) = refusal("nope").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(missing, forbidden.replace("priv", "nope"));
}
