//! TLS both ways, with a certificate authority the test makes (as a company's private CA, or the
//! one of a TLS-inspecting proxy, would be): a node serving HTTPS from `--tls-cert`/`--tls-key`, a
//! remote registry whose upstream is that node (trusted through the node's `--upstream-ca-file`, the
//! registry's own CA bundle, or the system's store as `SSL_CERT_FILE` names it, refused with the TLS
//! cause said when none trusts it), the `arca` CLI, npm, pip, skopeo and docker against the HTTPS
//! node (verifying its certificate), and the plain-HTTP port that redirects to it. (mvn over HTTPS is in
//! `maven.rs`.)

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use arca_tests::pki::TestPki;
use arca_tests::remote::{create_registry, create_registry_with};
use arca_tests::{TestNode, pseudo_random_bytes, sha256_hex};

/// A remote generic registry `name` over `upstream`'s registry `up`.
fn remote(name: &str, upstream: &TestNode) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "package_type": "GENERIC",
        "kind": "remote",
        "upstream": {
            "url": format!("{}/generic/up", upstream.url),
            "username": "arca",
            "password": upstream.admin_token,
        },
    })
}

async fn get(node: &TestNode, path: &str) -> Result<(u16, Vec<u8>)> {
    let response = arca_tests::http()
        .get(format!("{}/generic/{path}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.bytes().await?.to_vec()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstreams_signed_by_a_private_ca_are_trusted_only_when_configured() -> Result<()> {
    let pki = TestPki::new()?;
    let upstream = pki.https_node()?;
    ensure!(upstream.url.starts_with("https://"), "{}", upstream.url);
    let client = pki.client()?;
    create_registry_with(
        &client,
        &upstream,
        serde_json::json!({"name": "up", "package_type": "GENERIC"}),
    )
    .await?;
    let body = pseudo_random_bytes(300_000, 7);
    let pushed = client
        .put(format!("{}/generic/up/tool/1.0/tool.bin", upstream.url))
        .bearer_auth(&upstream.admin_token)
        .body(body.clone())
        .send()
        .await?;
    ensure!(
        pushed.status() == 201,
        "push over HTTPS: {}",
        pushed.status()
    );
    // Plain HTTP to the HTTPS port gets nothing served.
    let plain = upstream.url.replacen("https://", "http://", 1);
    let refused = arca_tests::http()
        .get(format!("{plain}/generic/up/tool/1.0/tool.bin"))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "plain HTTP must not be served: {refused:?}"
    );

    // Not trusted: the client hears why, at once (a refused certificate is not retried), and so
    // does the node's log.
    let untrusting = TestNode::start()?;
    create_registry(&untrusting, remote("mirror", &upstream)).await?;
    let started = Instant::now();
    let (status, answer) = get(&untrusting, "mirror/tool/1.0/tool.bin").await?;
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer.contains("UnknownIssuer") && answer.contains("upstream_ca_file"),
        "the answer says the TLS cause: {answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not retried for {:?}",
        started.elapsed()
    );
    assert!(
        untrusting.log().contains("UnknownIssuer"),
        "the log says it too"
    );

    // Trusted for one upstream: a remote registry created with its CA (`arca registry create
    // --upstream-ca-file`) fetches where the node as a whole does not trust the upstream.
    let ca = pki.path("ca.pem");
    let mut create = untrusting.cli_command(
        Some(&untrusting.admin_token),
        &[
            "registry",
            "create",
            "mirror-ca",
            "--package-type",
            "GENERIC",
            "--upstream",
            &format!("{}/generic/up", upstream.url),
            "--upstream-user",
            "arca",
            "--upstream-password-env",
            "UPSTREAM_TOKEN",
            "--upstream-ca-file",
            &ca,
        ],
    );
    let created = create
        .env("UPSTREAM_TOKEN", &upstream.admin_token)
        .output()?;
    ensure!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let (status, fetched) = get(&untrusting, "mirror-ca/tool/1.0/tool.bin").await?;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&fetched));
    assert_eq!(sha256_hex(&fetched), sha256_hex(&body));
    let shown: serde_json::Value = serde_json::from_slice(
        &untrusting
            .cli(&["--format", "json", "registry", "get", "mirror-ca"])
            .stdout,
    )?;
    assert_eq!(shown["upstream"]["ca_pem"], pki.ca_pem.as_str(), "{shown}");
    assert_eq!(shown["upstream"]["has_password"], true, "{shown}");
    // A remote created without the CA is given it later (`arca registry settings`).
    create_registry(&untrusting, remote("mirror-late", &upstream)).await?;
    let (status, _) = get(&untrusting, "mirror-late/tool/1.0/tool.bin").await?;
    assert_eq!(status, 502);
    let set = untrusting.cli(&[
        "--format",
        "json",
        "registry",
        "settings",
        "mirror-late",
        "--upstream-ca-file",
        &ca,
    ]);
    ensure!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    // (The failed fetch is joined by requests for half a second after it ended.)
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, fetched) = get(&untrusting, "mirror-late/tool/1.0/tool.bin").await?;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&fetched));
    // Something that is not a PEM certificate is refused when the registry is created.
    let refused = arca_tests::http()
        .post(format!("{}/api/v1/registries", untrusting.url))
        .bearer_auth(&untrusting.admin_token)
        .json(&serde_json::json!({
            "name": "mirror-bad",
            "package_type": "GENERIC",
            "kind": "remote",
            "upstream": {"url": format!("{}/generic/up", upstream.url)},
            "upstream_ca_pem": "not a certificate",
        }))
        .send()
        .await?;
    assert_eq!(refused.status(), 400);

    // Trusted through --upstream-ca-file, and through the system's store (SSL_CERT_FILE).
    let with_file = TestNode::start_with_args(&["--upstream-ca-file", &ca])?;
    let with_store = TestNode::start_with(&[], &[("SSL_CERT_FILE", &ca)])?;
    for node in [&with_file, &with_store] {
        create_registry(node, remote("mirror", &upstream)).await?;
        let (status, fetched) = get(node, "mirror/tool/1.0/tool.bin").await?;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&fetched));
        assert_eq!(sha256_hex(&fetched), sha256_hex(&body));
    }
    Ok(())
}

/// Runs `arca` against `node` with `SSL_CERT_FILE` set to `ca` (or unset).
fn cli(node: &TestNode, ca: Option<&Path>, args: &[&str]) -> std::process::Output {
    let mut command = node.cli_command(Some(&node.admin_token), args);
    command
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    if let Some(ca) = ca {
        command.env("SSL_CERT_FILE", ca);
    }
    command.output().expect("running arca")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_works_against_an_https_node_whose_ca_the_system_store_holds() -> Result<()> {
    let pki = TestPki::new()?;
    let node = pki.https_node()?;
    let ca = pki.dir.path().join("ca.pem");
    let listed = cli(&node, Some(&ca), &["registry", "list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let untrusted = cli(&node, None, &["registry", "list"]);
    assert!(!untrusted.status.success(), "an unknown CA is refused");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart() -> Result<()> {
    let pki = TestPki::new()?;
    let node = pki.https_node()?;
    let client = pki.client()?;
    let served = client.get(format!("{}/healthz", node.url)).send().await?;
    ensure!(served.status().is_success(), "{}", served.status());
    // Renewed by a CA the client does not know: once the files change, the node serves the new
    // certificate, and this client refuses it.
    let renewed = TestPki::new()?;
    std::fs::copy(renewed.path("server.pem"), pki.path("server.pem"))?;
    std::fs::copy(renewed.path("server.key"), pki.path("server.key"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A new client each time: a pooled connection would keep the old session.
        let fresh = pki.client()?;
        if fresh
            .get(format!("{}/healthz", node.url))
            .send()
            .await
            .is_err()
        {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the renewed certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let renewed_client = renewed.client()?;
    let served = renewed_client
        .get(format!("{}/healthz", node.url))
        .send()
        .await?;
    ensure!(served.status().is_success(), "{}", served.status());
    Ok(())
}

/// The `realm` of the OCI challenge `node` answers an anonymous `/v2/` with: an absolute URL, so
/// its scheme is the one the node believes the client used.
async fn token_realm(client: &reqwest::Client, node: &TestNode) -> Result<String> {
    let challenged = client.get(format!("{}/v2/", node.url)).send().await?;
    ensure!(challenged.status() == 401, "{}", challenged.status());
    let challenge = challenged
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok(challenge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_redirected_to_https_and_absolute_urls_say_https() -> Result<()> {
    let pki = TestPki::new()?;
    let node = pki.https_node_with(&["--http-redirect", "127.0.0.1:0"])?;
    let redirect = std::fs::read_to_string(node.data_dir().join("http-redirect.addr"))?;
    let https_port = node.url.rsplit(':').next().unwrap_or_default().to_string();
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // Every method keeps its method and body through a 308.
    for method in [reqwest::Method::GET, reqwest::Method::PUT] {
        let answered = no_follow
            .request(
                method.clone(),
                format!("http://{}/generic/files/a/1/a.txt?x=1", redirect.trim()),
            )
            .send()
            .await?;
        ensure!(answered.status() == 308, "{method}: {}", answered.status());
        let location = answered
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        ensure!(
            location == format!("https://127.0.0.1:{https_port}/generic/files/a/1/a.txt?x=1"),
            "{location}"
        );
    }
    // Following it reaches the HTTPS node.
    let client = pki.client()?;
    let followed = client
        .get(format!("http://{}/healthz", redirect.trim()))
        .send()
        .await?;
    ensure!(followed.status().is_success(), "{}", followed.status());
    ensure!(followed.url().scheme() == "https", "{}", followed.url());
    // Absolute URLs the node writes name HTTPS, and a client cannot talk it out of that.
    let realm = token_realm(&client, &node).await?;
    ensure!(realm.contains("realm=\"https://"), "{realm}");
    let mut claims_plain = reqwest::header::HeaderMap::new();
    claims_plain.insert("x-forwarded-proto", "http".parse()?);
    let claiming = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes())?)
        .default_headers(claims_plain)
        .build()?;
    let realm = token_realm(&claiming, &node).await?;
    ensure!(realm.contains("realm=\"https://"), "{realm}");
    Ok(())
}

/// Runs `command` and fails with everything it printed unless it succeeded.
fn succeed(command: &mut std::process::Command) -> Result<arca_tests::clients::ClientOutput> {
    arca_tests::clients::run_command(command)?.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_pip_and_skopeo_work_against_an_https_node() -> Result<()> {
    use arca_tests::clients::{build_wheel, require_client};
    let test = "npm_pip_and_skopeo_work_against_an_https_node";
    let (Some(npm), Some(python), Some(skopeo), Some(umoci)) = (
        require_client("npm", test),
        require_client("python3", test),
        require_client("skopeo", test),
        require_client("umoci", test),
    ) else {
        return Ok(());
    };
    let pki = TestPki::new()?;
    let node = pki.https_node()?;
    let client = pki.client()?;
    for (name, kind) in [("js", "NPM"), ("py", "PYPI"), ("images", "DOCKER")] {
        create_registry_with(
            &client,
            &node,
            serde_json::json!({"name": name, "package_type": kind}),
        )
        .await?;
    }
    let ca = pki.path("ca.pem");
    let host = node.url.trim_start_matches("https://").to_string();
    let work = tempfile::tempdir()?;
    let home = work.path();

    // npm: publish, then install into a fresh project; the tarball URL the node writes is https.
    let registry = format!("https://{host}/npm/js/");
    std::fs::write(
        home.join(".npmrc"),
        format!(
            "registry={registry}\n//{host}/npm/js/:_authToken={}\ncafile={ca}\n",
            node.admin_token
        ),
    )?;
    let npm_command = |dir: &Path, args: &[&str]| {
        let mut command = std::process::Command::new(&npm);
        for (key, _) in std::env::vars_os() {
            let lower = key.to_string_lossy().to_ascii_lowercase();
            if lower.starts_with("npm_config_") {
                command.env_remove(&key);
            }
        }
        command
            .args(args)
            .current_dir(dir)
            .env("HOME", home)
            .env("npm_config_userconfig", home.join(".npmrc"))
            .env("npm_config_cache", dir.join(".npm-cache"))
            .env("npm_config_update_notifier", "false")
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false");
        command
    };
    let package = home.join("greeting");
    std::fs::create_dir_all(&package)?;
    std::fs::write(
        package.join("package.json"),
        r#"{"name":"greeting","version":"1.0.0","main":"index.js"}"#,
    )?;
    std::fs::write(package.join("index.js"), "module.exports = 'hello';\n")?;
    succeed(&mut npm_command(&package, &["publish"]))?;
    let app = home.join("app");
    std::fs::create_dir_all(&app)?;
    std::fs::write(
        app.join("package.json"),
        r#"{"name":"app","version":"1.0.0"}"#,
    )?;
    succeed(&mut npm_command(&app, &["install", "greeting@1.0.0"]))?;
    ensure!(app.join("node_modules/greeting/index.js").exists());
    let lock = std::fs::read_to_string(app.join("package-lock.json"))?;
    ensure!(
        lock.contains(&format!(
            "https://{host}/npm/js/greeting/-/greeting-1.0.0.tgz"
        )),
        "the lockfile records the https tarball URL: {lock}"
    );

    // pip: a wheel pushed with the CLI (which trusts SSL_CERT_FILE), downloaded with --cert.
    let wheel = build_wheel(&python, home, "tlsdemo", "1.0")?;
    let mut push = node.cli_command(
        Some(&node.admin_token),
        &[
            "artifact",
            "push",
            "python",
            "py",
            &wheel.display().to_string(),
        ],
    );
    succeed(push.env("SSL_CERT_FILE", &ca))?;
    let downloads = home.join("downloads");
    let index = format!(
        "https://__token__:{}@{host}/pypi/py/simple/",
        node.admin_token
    );
    succeed(
        std::process::Command::new(&python)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--cert",
                &ca,
                "--index-url",
            ])
            .arg(&index)
            .args(["tlsdemo==1.0", "-d"])
            .arg(&downloads)
            .env("HOME", home)
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_NO_INPUT", "1")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env_remove("PIP_FIND_LINKS")
            .env_remove("PIP_INDEX_URL")
            // Bundles named in the environment would win over --cert (requests takes
            // REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE before the session's own setting).
            .env_remove("PIP_CERT")
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE"),
    )?;
    ensure!(downloads.join("tlsdemo-1.0-py3-none-any.whl").exists());

    // skopeo (the containers/image library docker-compatible tools share): push and pull with
    // certificate verification on, trusting the CA from a cert directory.
    let certs = home.join("certs");
    std::fs::create_dir_all(&certs)?;
    std::fs::copy(&ca, certs.join("ca.crt"))?;
    let layout = arca_tests::oci::Layout::init(&umoci, &home.join("layout"))?;
    layout.build_image("v1", "amd64", &arca_tests::oci::sample_layers(3, 300_000))?;
    let creds = format!("arca:{}", node.admin_token);
    let remote_image = format!("docker://{host}/images/app:v1");
    let certs_dir = certs.display().to_string();
    let skopeo_home = home.join("skopeo-home");
    std::fs::create_dir_all(&skopeo_home)?;
    let skopeo_run = |args: &[&str]| {
        succeed(
            std::process::Command::new(&skopeo)
                .args(args)
                .env("HOME", &skopeo_home),
        )
    };
    skopeo_run(&[
        "copy",
        "--dest-cert-dir",
        &certs_dir,
        "--dest-creds",
        &creds,
        &layout.reference("v1"),
        &remote_image,
    ])?;
    let pulled = home.join("pulled");
    skopeo_run(&[
        "copy",
        "--src-cert-dir",
        &certs_dir,
        "--src-creds",
        &creds,
        &remote_image,
        &format!("oci:{}:v1", pulled.display()),
    ])?;
    let original = layout.manifest("v1")?;
    let copy = arca_tests::oci::Layout::open(&pulled).manifest("v1")?;
    ensure!(original.digest == copy.digest, "{original:?} != {copy:?}");
    // Without the CA, verification refuses the node.
    let refused = arca_tests::clients::run_command(
        std::process::Command::new(&skopeo)
            .args(["inspect", "--creds", &creds, &remote_image])
            .env("HOME", &skopeo_home)
            .env("SSL_CERT_FILE", "/dev/null"),
    )?;
    ensure!(!refused.success, "{}", refused.describe());
    Ok(())
}

/// A Docker daemon of the test's own (its own data root and socket; VFS storage, no iptables, no
/// bridge) that trusts the given registries' CAs: it sees a directory of the test's as
/// `/etc/docker` (bind-mounted in a mount namespace of its own, so the machine's is untouched),
/// with `certs.d/<host:port>/ca.crt` in it. Stopped when dropped.
struct Dockerd {
    child: std::process::Child,
    socket: std::path::PathBuf,
}

impl Dockerd {
    fn start(dockerd: &Path, dir: &Path, trusted: &[(&str, &Path)]) -> Result<Dockerd> {
        let etc = dir.join("etc-docker");
        std::fs::create_dir_all(&etc)?;
        for (host, ca) in trusted {
            let certs = etc.join("certs.d").join(host);
            std::fs::create_dir_all(&certs)?;
            std::fs::copy(ca, certs.join("ca.crt"))?;
        }
        let socket = dir.join("docker.sock");
        let script = format!(
            "mkdir -p /etc/docker && mount --bind {etc} /etc/docker && exec {dockerd} \
             --storage-driver vfs --iptables=false --bridge=none --data-root {root} \
             --exec-root {exec} --pidfile {pid} -H unix://{socket}",
            etc = etc.display(),
            dockerd = dockerd.display(),
            root = dir.join("root").display(),
            exec = dir.join("exec").display(),
            pid = dir.join("docker.pid").display(),
            socket = socket.display(),
        );
        let log = std::fs::File::create(dir.join("dockerd.log"))?;
        let child = std::process::Command::new("unshare")
            .args(["--mount", "sh", "-c", &script])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let daemon = Dockerd { child, socket };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !daemon.socket.exists() {
            ensure!(
                Instant::now() < deadline,
                "dockerd did not start: {}",
                std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(daemon)
    }

    fn docker(&self, docker: &Path, config: &Path, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(docker);
        command
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", config);
        command
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop the containerd it started.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_logs_in_pushes_and_pulls_over_https() -> Result<()> {
    use arca_tests::clients::require_client;
    let test = "docker_logs_in_pushes_and_pulls_over_https";
    let (Some(dockerd), Some(docker)) = (
        require_client("dockerd", test),
        require_client("docker", test),
    ) else {
        return Ok(());
    };
    let pki = TestPki::new()?;
    let node = pki.https_node()?;
    create_registry_with(
        &pki.client()?,
        &node,
        serde_json::json!({"name": "images", "package_type": "DOCKER"}),
    )
    .await?;
    let host = node.url.trim_start_matches("https://").to_string();
    let work = tempfile::tempdir()?;
    let ca = std::path::PathBuf::from(pki.path("ca.pem"));
    let daemon = Dockerd::start(
        &dockerd,
        &work.path().join("daemon"),
        &[(host.as_str(), ca.as_path())],
    )?;
    let config = work.path().join("docker-config");
    std::fs::create_dir_all(&config)?;
    let docker_run = |args: &[&str]| succeed(&mut daemon.docker(&docker, &config, args));

    // An image from a plain tarball (no registry of Docker Hub's is asked).
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(&rootfs)?;
    std::fs::write(rootfs.join("hello.txt"), pseudo_random_bytes(200_000, 5))?;
    let tarball = work.path().join("rootfs.tar");
    succeed(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    )?;
    let image = format!("{host}/images/app:v1");
    let tarball = tarball.display().to_string();
    docker_run(&["import", &tarball, &image])?;

    let mut login = daemon.docker(
        &docker,
        &config,
        &["login", &host, "--username", "arca", "--password-stdin"],
    );
    login.stdin(std::process::Stdio::piped());
    let mut child = login
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(node.admin_token.as_bytes())?;
    }
    let logged_in = child.wait_with_output()?;
    ensure!(
        logged_in.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&logged_in.stderr)
    );
    let pushed = docker_run(&["push", &image])?;
    ensure!(
        pushed.all().contains("digest: sha256:"),
        "{}",
        pushed.describe()
    );
    docker_run(&["rmi", &image])?;
    let pulled = docker_run(&["pull", &image])?;
    ensure!(
        pulled.all().contains("Downloaded newer image"),
        "{}",
        pulled.describe()
    );
    Ok(())
}
