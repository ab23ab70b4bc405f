//! What a connection may cost a node before its requests are served: a client that trickles its
//! header lines is disconnected after the header-read timeout, an upload whose body goes silent is
//! refused after the body idle timeout, one source address holds a bounded number of connections
//! (more are answered 429), and `X-Forwarded-For`/`X-Forwarded-Proto` count
//! only from the proxies the node is told to trust (the audit trail shows the real client then).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use arca_tests::{TestNode, http};
use futures::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn address(node: &TestNode) -> &str {
    node.url.trim_start_matches("http://")
}

/// Sends `request` on `stream` and reads the answer's status line.
async fn status_of(stream: &mut TcpStream, request: &str) -> Result<u16> {
    stream.write_all(request.as_bytes()).await?;
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .context("no answer within 10 s")??;
    let text = String::from_utf8_lossy(&answer[..read]);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status in {text:?}"))
}

/// Waits until the node closes `stream` (a read ends or fails), for at most `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Result<Duration> {
    let started = Instant::now();
    let mut buffer = vec![0; 1024];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return Ok(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => bail!("still open after {limit:?}"),
        }
    }
}

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: arca\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_its_header_lines_is_disconnected() -> Result<()> {
    let node = TestNode::start_with(&[], &[("ARCA_HEADER_READ_TIMEOUT_MS", "1000")])?;
    // A whole request within the time is served.
    let mut prompt = TcpStream::connect(address(&node)).await?;
    ensure!(status_of(&mut prompt, HEALTHZ).await? == 200);
    // ...and the connection, idle afterwards, is closed after the same time.
    closed_within(&mut prompt, Duration::from_secs(5)).await?;

    // One header line every 200 ms, forever: the node hangs up once the head took a second.
    let mut slow = TcpStream::connect(address(&node)).await?;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: arca\r\n")
        .await?;
    let started = Instant::now();
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return started.elapsed();
            }
            let mut probe = [0; 64];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
            {
                return started.elapsed();
            }
        }
    };
    let held = tokio::time::timeout(Duration::from_secs(10), trickle)
        .await
        .context("a trickling client was held for 10 s")?;
    ensure!(
        held >= Duration::from_millis(900),
        "hung up after {held:?}, before the timeout"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_address_holds_a_bounded_number_of_connections() -> Result<()> {
    let node = TestNode::start_with(&[], &[("ARCA_MAX_CONNECTIONS_PER_SOURCE", "4")])?;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(address(&node)).await?;
        ensure!(status_of(&mut stream, HEALTHZ).await? == 200);
        held.push(stream);
    }
    let mut over = TcpStream::connect(address(&node)).await?;
    ensure!(
        status_of(&mut over, HEALTHZ).await? == 429,
        "a fifth connection is refused"
    );
    closed_within(&mut over, Duration::from_secs(5)).await?;
    // A place given back is taken again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = TcpStream::connect(address(&node)).await?;
        match status_of(&mut again, HEALTHZ).await? {
            200 => break,
            429 if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            status => bail!("after a connection closed: {status}"),
        }
    }
    Ok(())
}

/// Creates registry `name` on `node` sending `X-Forwarded-For: forwarded_for`, and gives the
/// source address the audit trail recorded for it.
async fn recorded_source(node: &TestNode, name: &str, forwarded_for: &str) -> Result<String> {
    let created = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .header("x-forwarded-for", forwarded_for)
        .json(&serde_json::json!({"name": name, "package_type": "GENERIC"}))
        .send()
        .await?;
    ensure!(created.status() == 201, "{}", created.status());
    let trail: Value = http()
        .get(format!("{}/api/v1/audit?registry={name}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .json()
        .await?;
    trail["events"]
        .as_array()
        .and_then(|events| events.first())
        .and_then(|event| event["source_ip"].as_str())
        .map(str::to_string)
        .with_context(|| format!("no event for {name} in {trail}"))
}

/// The OCI challenge's realm, whose scheme is the one the node believes the client used.
async fn realm_claiming(node: &TestNode, proto: &str) -> Result<String> {
    let challenged = http()
        .get(format!("{}/v2/", node.url))
        .header("x-forwarded-proto", proto)
        .send()
        .await?;
    Ok(challenged
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_count_only_from_trusted_proxies() -> Result<()> {
    // 127.0.0.1 is not among the trusted: what it claims is ignored.
    let direct = TestNode::start_with_args(&["--trusted-proxy", "10.0.0.0/8"])?;
    let source = recorded_source(&direct, "direct", "198.51.100.9").await?;
    ensure!(source == "127.0.0.1", "an untrusted peer's claim: {source}");
    let realm = realm_claiming(&direct, "https").await?;
    ensure!(realm.contains("realm=\"http://"), "{realm}");

    // Behind a trusted proxy (127.0.0.1 here), the client is the right-most address that is not a
    // proxy: what the client itself wrote further left is not believed.
    let proxied = TestNode::start_with(
        &["--trusted-proxy", "127.0.0.1"],
        &[("ARCA_MAX_CONNECTIONS_PER_SOURCE", "2")],
    )?;
    let source = recorded_source(&proxied, "proxied", "203.0.113.1, 198.51.100.9").await?;
    ensure!(source == "198.51.100.9", "behind a trusted proxy: {source}");
    let realm = realm_claiming(&proxied, "https").await?;
    ensure!(realm.contains("realm=\"https://"), "{realm}");
    // A proxy carries many clients' connections: its own address is not limited.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(address(&proxied)).await?;
        ensure!(status_of(&mut stream, HEALTHZ).await? == 200);
        held.push(stream);
    }
    Ok(())
}

/// With a public URL configured, absolute URLs in answers (the OCI token realm, npm tarball URLs)
/// are built from it, not from what the request's `Host` and `X-Forwarded-Proto` claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_urls_follow_the_configured_public_url() -> Result<()> {
    use base64::Engine;
    let node = TestNode::start_with_args(&["--public-url", "https://registry.example.test/arca/"])?;
    let realm = realm_claiming(&node, "http").await?;
    ensure!(
        realm.contains("realm=\"https://registry.example.test/arca/v2/token\""),
        "{realm}"
    );
    let created = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&serde_json::json!({"name": "js", "package_type": "NPM"}))
        .send()
        .await?;
    ensure!(created.status() == 201, "{}", created.status());
    let tarball = arca_tests::npm_tarball("urls", "1.0.0", 0)?;
    let published = http()
        .put(format!("{}/npm/js/urls", node.url))
        .bearer_auth(&node.admin_token)
        .json(&serde_json::json!({
            "name": "urls",
            "versions": { "1.0.0": { "name": "urls", "version": "1.0.0" } },
            "_attachments": { "urls-1.0.0.tgz": {
                "data": base64::engine::general_purpose::STANDARD.encode(&tarball),
            } },
        }))
        .send()
        .await?;
    ensure!(published.status() == 201, "{}", published.status());
    let packument: Value = http()
        .get(format!("{}/npm/js/urls", node.url))
        .bearer_auth(&node.admin_token)
        .header("host", "attacker.example")
        .header("x-forwarded-proto", "http")
        .send()
        .await?
        .json()
        .await?;
    let url = &packument["versions"]["1.0.0"]["dist"]["tarball"];
    ensure!(
        url == "https://registry.example.test/arca/npm/js/urls/-/urls-1.0.0.tgz",
        "{url}"
    );
    Ok(())
}

/// Creates the generic registry `files` on `node`.
async fn create_files_registry(node: &TestNode) -> Result<()> {
    let created = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&serde_json::json!({"name": "files", "package_type": "GENERIC"}))
        .send()
        .await?;
    ensure!(created.status() == 201, "{}", created.status());
    Ok(())
}

/// Starts `PUT /generic/files/<path>` of `length` bytes on a new connection, sending the head only.
async fn start_upload(node: &TestNode, path: &str, length: usize) -> Result<TcpStream> {
    let mut stream = TcpStream::connect(address(node)).await?;
    let head = format!(
        "PUT /generic/files/{path} HTTP/1.1\r\nHost: arca\r\nAuthorization: Bearer {}\r\n\
         Content-Length: {length}\r\n\r\n",
        node.admin_token
    );
    stream.write_all(head.as_bytes()).await?;
    Ok(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_stalls_mid_body_is_refused_and_one_that_trickles_is_not() -> Result<()> {
    let node = TestNode::start_with(&[], &[("ARCA_BODY_IDLE_TIMEOUT_MS", "1000")])?;
    create_files_registry(&node).await?;

    // Sends a tenth of what it announced, then nothing: refused once the body has been silent
    // for a second, and the connection is let go.
    let mut stalled = start_upload(&node, "big/1.0/big.bin", 1_000_000).await?;
    stalled.write_all(&vec![7u8; 100_000]).await?;
    let started = Instant::now();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut answer))
        .await
        .context("a stalled upload was held for 10 s")??;
    let text = String::from_utf8_lossy(&answer[..read]).to_string();
    ensure!(text.starts_with("HTTP/1.1 400"), "{text}");
    ensure!(text.contains("sent nothing"), "{text}");
    ensure!(
        started.elapsed() >= Duration::from_millis(900),
        "refused after {:?}, before the limit",
        started.elapsed()
    );

    // Slow but steady (a part every 300 ms for 2 s) is fine.
    let mut steady = start_upload(&node, "slow/1.0/slow.bin", 70_000).await?;
    for _ in 0..7 {
        steady.write_all(&[1u8; 10_000]).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ensure!(status_of(&mut steady, "").await? == 201);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_passwords_from_many_addresses_keeps_memory_flat() -> Result<()> {
    // Many addresses: as seen through a trusted proxy, each request from another client, so the
    // per-address login throttle never stops them; only the bound on argon2 runs does.
    let node = TestNode::start_with_args(&["--trusted-proxy", "127.0.0.1"])?;
    let before = node.peak_memory().context("peak memory")?;
    let client = http();
    let whoami = format!("{}/api/v1/whoami", node.url);
    let requests = futures::stream::iter(0..400u32)
        .map(move |i| {
            let client = client.clone();
            let url = whoami.clone();
            async move {
                client
                    .get(url)
                    .basic_auth(format!("nobody{i}"), Some(format!("wrong-password-{i}")))
                    .header(
                        "x-forwarded-for",
                        format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
                    )
                    .send()
                    .await
                    .map(|response| response.status().as_u16())
            }
        })
        .buffer_unordered(64);
    let flood = tokio::spawn(requests.collect::<Vec<_>>());
    // A caller with a token is answered meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let answered = http()
        .get(format!("{}/api/v1/whoami", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(answered.status() == 200, "{}", answered.status());
    let waited = started.elapsed();
    let statuses = flood.await?;
    for status in &statuses {
        let status = status.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(
            *status == 401 || *status == 429,
            "a wrong password answered {status}"
        );
    }
    ensure!(
        waited < Duration::from_secs(2),
        "a token request waited {waited:?}"
    );
    let after = node.peak_memory().context("peak memory")?;
    let grown = after.saturating_sub(before);
    ensure!(
        grown < 200 << 20,
        "peak memory grew by {} MiB (from {} MiB) under 400 wrong passwords",
        grown >> 20,
        before >> 20
    );
    eprintln!(
        "peak memory {} MiB -> {} MiB; {} refused as busy",
        before >> 20,
        after >> 20,
        statuses.iter().filter(|s| matches!(s, Ok(429))).count()
    );
    Ok(())
}

/// `count` uploads of `mib` MiB each (distinct bytes, made before any is sent so that all go at
/// full speed at once); answers their statuses and the node's peak memory growth.
async fn parallel_uploads(node: &TestNode, count: u64, mib: usize) -> Result<(Vec<u16>, u64)> {
    let bodies: Vec<bytes::Bytes> = (0..count)
        .map(|i| arca_tests::pseudo_random_bytes(mib << 20, i + 1).into())
        .collect();
    let before = node.peak_memory().context("peak memory")?;
    let uploads = bodies.iter().enumerate().map(|(i, body)| {
        http()
            .put(format!("{}/generic/files/big-{i}/1.0/big.bin", node.url))
            .bearer_auth(&node.admin_token)
            .body(body.clone())
            .send()
    });
    let mut statuses = Vec::new();
    for answered in futures::future::join_all(uploads).await {
        statuses.push(answered?.status().as_u16());
    }
    let after = node.peak_memory().context("peak memory")?;
    Ok((statuses, after.saturating_sub(before)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_uploads_at_once_wait_their_turn_and_memory_stays_bounded() -> Result<()> {
    let node = TestNode::start_with(&[], &[("ARCA_MAX_CONCURRENT_UPLOADS", "2")])?;
    create_files_registry(&node).await?;
    let (statuses, grown) = parallel_uploads(&node, 24, 24).await?;
    ensure!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    eprintln!(
        "24 parallel 24 MiB uploads, 2 at a time: peak grew {} MiB",
        grown >> 20
    );
    ensure!(
        grown < 160 << 20,
        "peak memory grew by {} MiB with two uploads buffering at a time",
        grown >> 20
    );
    Ok(())
}

/// Started with a low soft open-file limit (256), the node raises it towards 65,536 (as far as the
/// hard limit allows), so idle connections cannot use up its descriptors before the per-source cap
/// and the timeouts act.
#[test]
fn the_node_raises_its_open_file_limit_at_start() -> Result<()> {
    let data_dir = tempfile::tempdir()?;
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -Sn 256 && exec \"$0\" \"$@\"")
        .arg(arca_tests::binary("arca-node"))
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["--http", "127.0.0.1:0", "--quic", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let limits = format!("/proc/{}/limits", child.id());
    let addr_file = data_dir.path().join("http.addr");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !addr_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&limits);
    let _ = child.kill();
    let _ = child.wait();
    let text = text?;
    ensure!(addr_file.exists(), "the node did not start");
    let line = text
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .context("no open-file limit")?;
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|word| match word {
            "unlimited" => Some(u64::MAX),
            number => number.parse().ok(),
        })
        .collect();
    let [soft, hard] = numbers[..] else {
        bail!("unexpected limits line {line:?}");
    };
    ensure!(soft == hard.min(65_536), "soft {soft}, hard {hard}");
    Ok(())
}
