//! Unit tests of the library against a one-shot fake HTTP server: URL encoding, error decoding, the
//! cluster and replication routes, and the streaming push and pull of generic files with their
//! checksums.

use std::path::Path;

use arca_protocol::api::{ClusterStatus, JoinTokenInfo, RegistryInfo};
use arca_protocol::{PackageType, ReplicaSites, ReplicationMode, ReplicationPolicy, Sha256};
use sha2::Digest;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::{Client, ClientError, GenericFile, UploadedFile};

/// A request as the fake server saw it.
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// Serves one request with `response` (status line, headers, body) and hands back what it received.
async fn serve_once(response: Vec<u8>) -> (String, oneshot::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.expect("accept");
        let mut reader = BufReader::new(socket);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.expect("read head");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.expect("read body");
        let mut socket = reader.into_inner();
        socket.write_all(&response).await.expect("write answer");
        socket.shutdown().await.expect("close");
        let _ = tx.send(Seen { head, body });
    });
    (url, rx)
}

fn answer(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn sha256(bytes: &[u8]) -> Sha256 {
    Sha256(sha2::Sha256::digest(bytes).into())
}

fn file() -> GenericFile {
    GenericFile {
        registry: "files".into(),
        package: "org/tool".into(),
        version: "1.0".into(),
        filename: "tool bin".into(),
    }
}

#[test]
fn urls_encode_each_segment() {
    let client = Client::new("http://example.test:7070/prefix/", None).expect("client");
    assert_eq!(client.server(), "http://example.test:7070/prefix");
    let url = client.url(&["a/b", "c%d", "e f"]).expect("url");
    assert_eq!(
        url.as_str(),
        "http://example.test:7070/prefix/a%2Fb/c%25d/e%20f"
    );
    assert!(Client::new("ftp://example.test", None).is_err());
    assert!(Client::new("not a url", None).is_err());
}

#[tokio::test]
async fn error_answers_become_api_errors() {
    let body = br#"{"error":{"code":"UNAUTHORIZED","message":"bad token"}}"#;
    let (url, seen) = serve_once(answer("401 Unauthorized", &[], body)).await;
    let client = Client::new(&url, Some("secret".into())).expect("client");
    match client.get_package("files", "org/tool").await {
        Err(ClientError::Api {
            status,
            code,
            message,
        }) => assert_eq!(
            (status, &*code, &*message),
            (401, "UNAUTHORIZED", "bad token")
        ),
        other => panic!("expected an API error, got {other:?}"),
    }
    let seen = seen.await.expect("request");
    assert!(
        seen.head
            .starts_with("GET /api/v1/registries/files/packages/org%2Ftool HTTP/1.1"),
        "{}",
        seen.head
    );
    assert!(
        seen.head.contains("authorization: Bearer secret"),
        "{}",
        seen.head
    );

    let (url, _seen) = serve_once(answer("502 Bad Gateway", &[], b"upstream down")).await;
    let client = Client::new(&url, None).expect("client");
    match client.list_registries().await {
        Err(err @ ClientError::Api { .. }) => {
            assert_eq!(err.to_string(), "502 BAD_GATEWAY: upstream down")
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Answers one request with `reply` as JSON and hands back the request line and the body it received.
async fn round_trip<T, F>(reply: &impl serde::Serialize, call: F) -> (T, String, Vec<u8>)
where
    F: AsyncFnOnce(Client) -> Result<T, ClientError>,
{
    let reply = serde_json::to_vec(reply).expect("json");
    let (url, seen) = serve_once(answer("200 OK", &[], &reply)).await;
    let answer = call(Client::new(&url, None).expect("client"))
        .await
        .expect("answer");
    let seen = seen.await.expect("request");
    let request_line = seen.head.lines().next().unwrap_or_default().to_string();
    (answer, request_line, seen.body)
}

#[tokio::test]
async fn cluster_routes_send_their_method_path_and_body() {
    let status = ClusterStatus {
        answered_by: 1,
        leader: Some(1),
        term: 2,
        commit_index: 9,
        nodes: Vec::new(),
    };
    let (answer, line, _) = round_trip(&status, async |client| client.cluster_status().await).await;
    assert_eq!(
        (answer, &*line),
        (status.clone(), "GET /api/v1/cluster HTTP/1.1")
    );

    let token = JoinTokenInfo {
        token: "arca-join-v1:f:s".into(),
        expires_at: 5,
    };
    let (answer, line, body) =
        round_trip(&token, async |client| client.create_join_token(600).await).await;
    assert_eq!(answer.token, token.token);
    assert_eq!(line, "POST /api/v1/cluster/join-tokens HTTP/1.1");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json body");
    assert_eq!(body, serde_json::json!({"ttl_seconds": 600}));

    let (_, line, _) = round_trip(&status, async |client| client.promote_node(3).await).await;
    assert_eq!(line, "POST /api/v1/cluster/nodes/3/promote HTTP/1.1");
    let (_, line, _) = round_trip(&status, async |client| client.remove_node(4).await).await;
    assert_eq!(line, "DELETE /api/v1/cluster/nodes/4 HTTP/1.1");
}

#[tokio::test]
async fn set_replication_puts_the_policy() {
    let policy = ReplicationPolicy {
        sites: ReplicaSites::Only(vec!["eu".into(), "us".into()]),
        mode: ReplicationMode::OnDemand,
    };
    let info = RegistryInfo {
        name: "my files".into(),
        package_type: PackageType::Generic,
        description: String::new(),
        immutable: false,
        allow_anonymous_read: false,
        allow_redeploy: false,
        created_at: 0,
        package_count: 0,
        metadata: Default::default(),
        replication: policy.clone(),
        kind: Default::default(),
        upstream: None,
        members: Vec::new(),
        publish_to: None,
        audit_downloads: false,
        min_copies: 1,
    };
    let (answer, line, body) = round_trip(&info, async |client| {
        client.set_replication("my files", &policy).await
    })
    .await;
    assert_eq!(answer, info);
    assert_eq!(
        line,
        "PUT /api/v1/registries/my%20files/replication HTTP/1.1"
    );
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json body");
    assert_eq!(
        body,
        serde_json::json!({"sites": ["eu", "us"], "mode": "on-demand"})
    );
}

#[tokio::test]
async fn push_streams_the_file_with_length_and_checksum() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("tool.bin");
    let content: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&source, &content).expect("write source");
    let digest = sha256(&content);
    let pushed = UploadedFile {
        registry: "files".into(),
        package: "org/tool".into(),
        version: "1.0".into(),
        filename: "tool bin".into(),
        size: content.len() as u64,
        sha256: digest,
    };
    let reply = serde_json::to_vec(&pushed).expect("json");
    let (url, seen) = serve_once(answer("201 Created", &[], &reply)).await;
    let client = Client::new(&url, None).expect("client");

    let hashed = crate::sha256_file(&source, |_| {}).await.expect("hash");
    assert_eq!(hashed, digest);
    let answer = client
        .push_generic(&file(), &source, Some(hashed), |_| {})
        .await
        .expect("push");
    assert_eq!(answer, pushed);

    let seen = seen.await.expect("request");
    assert!(
        seen.head
            .starts_with("PUT /generic/files/org%2Ftool/1.0/tool%20bin HTTP/1.1"),
        "{}",
        seen.head
    );
    assert!(
        seen.head
            .contains(&format!("content-length: {}", content.len()))
    );
    assert!(!seen.head.contains("transfer-encoding"), "{}", seen.head);
    assert!(seen.head.contains(&format!("x-checksum-sha256: {digest}")));
    assert_eq!(seen.body, content);
}

async fn pull(announced: Sha256, content: &[u8], dest: &Path) -> Result<u64, ClientError> {
    let headers = [("x-checksum-sha256", announced.to_hex())];
    let (url, _seen) = serve_once(answer("200 OK", &headers, content)).await;
    let client = Client::new(&url, None).expect("client");
    client.pull_generic(&file(), dest, |_| {}).await
}

#[tokio::test]
async fn pull_verifies_the_checksum_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let content = b"hello, arca".repeat(1000);
    let dest = dir.path().join("out.bin");

    let size = pull(sha256(&content), &content, &dest).await.expect("pull");
    assert_eq!(size, content.len() as u64);
    assert_eq!(std::fs::read(&dest).expect("read back"), content);

    let other = dir.path().join("bad.bin");
    let err = pull(sha256(b"something else"), &content, &other)
        .await
        .expect_err("mismatch is refused");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["out.bin"], "no partial or refused file remains");
}
