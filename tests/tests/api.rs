//! The management API over HTTP: registries, artifacts with paging, metadata on every level, tokens
//! and roles, and refusals of malformed or unauthorised requests in Arca's JSON error format.

use arca_tests::{TestNode, http};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Api<'a> {
    node: &'a TestNode,
    token: String,
}

impl Api<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = http()
            .request(method, format!("{}/api/v1{path}", self.node.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }
}

#[tokio::test]
async fn registries_artifacts_and_metadata() {
    let node = TestNode::start().expect("node");
    let api = Api {
        node: &node,
        token: node.admin_token.clone(),
    };
    let (status, created) = api
        .call(
            Method::POST,
            "/registries",
            Some(json!({"name": "tools", "package_type": "generic", "description": "build tools"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["package_type"], "GENERIC");
    assert_eq!(created["description"], "build tools");

    let (status, duplicate) = api
        .call(
            Method::POST,
            "/registries",
            Some(json!({"name": "tools", "package_type": "GENERIC"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(duplicate["error"]["code"], "ALREADY_EXISTS");

    for bad in [
        json!({"name": "../x", "package_type": "GENERIC"}),
        json!({"name": "ok", "package_type": "TARBALL"}),
        json!({"package_type": "GENERIC"}),
    ] {
        let (status, error) = api
            .call(Method::POST, "/registries", Some(bad.clone()))
            .await;
        assert!(status.is_client_error(), "{bad} gave {status}");
        assert_eq!(error["error"]["code"], "INVALID", "{bad}");
    }
    let malformed = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("post");
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let error: Value = malformed.json().await.expect("json error");
    assert_eq!(error["error"]["code"], "INVALID");

    for (package, version) in [("a", "1"), ("a", "2"), ("b", "1"), ("c", "1"), ("d", "1")] {
        let response = http()
            .put(format!(
                "{}/generic/tools/{package}/{version}/{package}.bin",
                node.url
            ))
            .bearer_auth(&node.admin_token)
            .body(format!("{package}{version}"))
            .send()
            .await
            .expect("put");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let (_, page1) = api
        .call(
            Method::GET,
            "/artifacts?registry=tools&page=1&page_size=3",
            None,
        )
        .await;
    let (_, page2) = api
        .call(
            Method::GET,
            "/artifacts?registry=tools&page=2&page_size=3",
            None,
        )
        .await;
    assert_eq!(page1["total"], 4);
    let names: Vec<&str> = page1["items"]
        .as_array()
        .expect("items")
        .iter()
        .chain(page2["items"].as_array().expect("items"))
        .map(|item| item["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert_eq!(page1["items"][0]["version_count"], 2);
    let (status, _) = api.call(Method::GET, "/artifacts?page=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, package) = api
        .call(Method::GET, "/registries/tools/packages/a", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(package["versions"].as_array().expect("versions").len(), 2);
    assert_eq!(package["versions"][0]["files"][0]["name"], "a.bin");

    for scope in [
        "/registries/tools",
        "/registries/tools/packages/a",
        "/registries/tools/packages/a/versions/2",
    ] {
        let path = format!("{scope}/metadata");
        let (status, set) = api
            .call(
                Method::PUT,
                &path,
                Some(json!({"metadata": {"owner": "build", "tier": "1"}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{scope}");
        assert_eq!(set["metadata"]["owner"], "build");
        let (_, after) = api
            .call(Method::DELETE, &path, Some(json!({"keys": ["tier"]})))
            .await;
        assert_eq!(after["metadata"], json!({"owner": "build"}), "{scope}");
        let (_, fetched) = api.call(Method::GET, &path, None).await;
        assert_eq!(fetched["metadata"], json!({"owner": "build"}), "{scope}");
        let (status, bad) = api
            .call(
                Method::PUT,
                &path,
                Some(json!({"metadata": {"bad key": "x"}})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{scope}");
        assert_eq!(bad["error"]["code"], "INVALID");
        let (_, cleared) = api.call(Method::DELETE, &path, None).await;
        assert_eq!(cleared["metadata"], json!({}), "{scope}");
    }
    api.call(
        Method::PUT,
        "/registries/tools/packages/b/metadata",
        Some(json!({"metadata": {"team": "build"}})),
    )
    .await;
    let (_, listed) = api
        .call(Method::GET, "/artifacts?registry=tools", None)
        .await;
    let b = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["name"] == "b")
        .expect("b listed");
    assert_eq!(
        b["metadata"],
        json!({"team": "build"}),
        "listings carry package metadata"
    );
    let (_, version) = api
        .call(Method::GET, "/registries/tools/packages/b/versions/1", None)
        .await;
    assert_eq!(
        version["attributes"],
        json!({}),
        "generic files record no format attributes"
    );
    let (status, _) = api
        .call(Method::GET, "/registries/tools/packages/zzz/metadata", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = api
        .call(
            Method::DELETE,
            "/registries/tools/packages/a/versions/1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, package) = api
        .call(Method::GET, "/registries/tools/packages/a", None)
        .await;
    assert_eq!(package["versions"].as_array().expect("versions").len(), 1);
    let (status, _) = api
        .call(
            Method::DELETE,
            "/registries/tools/packages/a/versions/1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = api.call(Method::DELETE, "/registries/tools", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.call(Method::GET, "/registries/tools", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tokens_roles_and_revocation() {
    let node = TestNode::start().expect("node");
    let admin = Api {
        node: &node,
        token: node.admin_token.clone(),
    };
    let (status, created) = admin
        .call(
            Method::POST,
            "/tokens",
            Some(json!({"name": "ci", "role": "write"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let writer = Api {
        node: &node,
        token: created["token"].as_str().expect("secret").to_string(),
    };
    let (status, me) = writer.call(Method::GET, "/whoami", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["token"]["name"], "ci");
    assert_eq!(
        me["token"]["scopes"],
        json!([{"role": "contributor", "registry": null}])
    );
    assert_eq!(
        me["grants"],
        json!([{"role": "contributor", "registry": null}])
    );

    let (status, refused) = writer
        .call(
            Method::POST,
            "/registries",
            Some(json!({"name": "x", "package_type": "GENERIC"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["error"]["code"], "FORBIDDEN");
    let (status, _) = writer.call(Method::GET, "/tokens", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, listed) = admin.call(Method::GET, "/tokens", None).await;
    let listed = listed.as_array().expect("tokens");
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|t| t.get("token").is_none() && t.get("secret_sha256").is_none())
    );

    let id = created["id"].as_str().expect("id");
    let (status, _) = admin
        .call(Method::DELETE, &format!("/tokens/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, error) = writer.call(Method::GET, "/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["error"]["code"], "UNAUTHORIZED");

    let anonymous = http()
        .get(format!("{}/api/v1/registries", node.url))
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let malformed_header = http()
        .get(format!("{}/api/v1/registries", node.url))
        .header("Authorization", "Token abc")
        .send()
        .await
        .expect("get");
    assert_eq!(malformed_header.status(), StatusCode::UNAUTHORIZED);

    let health: Value = http()
        .get(format!("{}/healthz", node.url))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    let metrics = http()
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            "arca_http_requests_total{method=\"GET\",route=\"/api/v1/whoami\",status=\"401\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("arca_raft_is_leader 1"));
}

#[tokio::test]
async fn config_file_settings_apply_and_flags_override_them() {
    let config_dir = tempfile::tempdir().expect("dir");
    let config = config_dir.path().join("arca.toml");
    // The file names another port and data directory; the harness's --http and --data-dir win.
    std::fs::write(
        &config,
        "http = \"127.0.0.1:1\"\ndata_dir = \"/nonexistent/arca\"\nmax_upload_bytes = 1000\n",
    )
    .expect("write config");
    let config = config.to_string_lossy().to_string();
    let node = TestNode::start_with_args(&["--config", &config]).expect("node");
    let api = Api {
        node: &node,
        token: node.admin_token.clone(),
    };
    let (status, _) = api
        .call(
            Method::POST,
            "/registries",
            Some(json!({"name": "files", "package_type": "GENERIC"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let too_big = http()
        .put(format!("{}/generic/files/a/1/a.bin", node.url))
        .bearer_auth(&node.admin_token)
        .body(vec![0u8; 2000])
        .send()
        .await
        .expect("put");
    assert_eq!(
        too_big.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "max_upload_bytes came from the file"
    );
    assert!(
        node.data_dir().join("meta").join("state.redb").exists(),
        "--data-dir overrode the file"
    );
}

#[tokio::test]
async fn admins_build_a_metadata_snapshot_on_demand() {
    let node = TestNode::start().expect("node");
    let api = Api {
        node: &node,
        token: node.admin_token.clone(),
    };
    let (status, _) = api
        .call(
            Method::POST,
            "/registries",
            Some(json!({"name": "files", "package_type": "GENERIC"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, built) = api.call(Method::POST, "/cluster/snapshot", None).await;
    assert_eq!(status, StatusCode::OK, "{built}");
    assert!(
        built["last_log_index"].as_u64().unwrap_or_default() >= 2,
        "{built}"
    );
    assert!(
        std::fs::read_dir(node.data_dir().join("meta"))
            .expect("meta dir")
            .filter_map(Result::ok)
            .any(|entry| entry.file_name().to_string_lossy().starts_with("snapshot-")),
        "the snapshot file is there"
    );
    let anonymous = http()
        .post(format!("{}/api/v1/cluster/snapshot", node.url))
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(anonymous, StatusCode::UNAUTHORIZED);
}
