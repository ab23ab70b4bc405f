//! Maven repositories end to end: the real `mvn` (with Debian's packaged plugins, resolved from
//! `file:///usr/share/maven-repo`, never from the network) deploys releases and SNAPSHOTs into Arca,
//! and a second project resolves its dependency from Arca alone with checksum policy `fail`; the
//! registry's own `maven-metadata.xml` and checksums; release redeploys refused unless allowed; bad
//! input over raw HTTP (paths escaping the layout, wrong checksums, `Expect: 100-continue`);
//! SNAPSHOT cleanup; and deploy and resolve against a node serving HTTPS from a private CA.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use arca_tests::clients::{ClientOutput, require_client};
use arca_tests::oci::IsolatedClient;
use arca_tests::{TestNode, http, raw_http};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

const GROUP: &str = "org.example.arca";
const GROUP_PATH: &str = "org/example/arca";
const LIB: &str = "greeting-lib";

/// Plugins that exist in Debian's `/usr/share/maven-repo` (packages installed by
/// `scripts/install-clients.sh`).
const PLUGINS: &[(&str, &str)] = &[
    ("maven-resources-plugin", "3.3.0"),
    ("maven-compiler-plugin", "3.10.1"),
    ("maven-surefire-plugin", "2.22.3"),
    ("maven-jar-plugin", "3.3.0"),
    ("maven-install-plugin", "3.1.0"),
    ("maven-deploy-plugin", "3.0.0"),
];

async fn create_registry(node: &TestNode, body: Value) {
    let response = http()
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&body)
        .send()
        .await
        .expect("create registry");
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
}

async fn get(node: &TestNode, url: &str) -> reqwest::Response {
    http()
        .get(url)
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .expect("get")
}

async fn get_ok(node: &TestNode, url: &str) -> Vec<u8> {
    let response = get(node, url).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    response.bytes().await.expect("body").to_vec()
}

async fn put(node: &TestNode, url: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    http()
        .put(url)
        .bearer_auth(&node.admin_token)
        .body(body)
        .send()
        .await
        .expect("put")
}

async fn package_count(node: &TestNode, registry: &str) -> u64 {
    let page: Value = get(
        node,
        &format!("{}/api/v1/artifacts?registry={registry}", node.url),
    )
    .await
    .json()
    .await
    .expect("page");
    page["total"].as_u64().expect("total")
}

fn repo_url(node: &TestNode, registry: &str) -> String {
    format!("{}/maven/{registry}", node.url)
}

/// The text of every `<tag>` element of an XML document, in order.
fn elements(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(text, _)| text.to_string()))
        .collect()
}

/// Every checksum Arca serves for `url` matches the bytes it serves.
async fn assert_checksums(node: &TestNode, url: &str) {
    let bytes = get_ok(node, url).await;
    let expected = [
        ("md5", hex::encode(md5::Md5::digest(&bytes))),
        ("sha1", hex::encode(sha1::Sha1::digest(&bytes))),
        ("sha256", hex::encode(sha2::Sha256::digest(&bytes))),
        ("sha512", hex::encode(sha2::Sha512::digest(&bytes))),
    ];
    for (extension, digest) in expected {
        let served = get_ok(node, &format!("{url}.{extension}")).await;
        assert_eq!(
            String::from_utf8_lossy(&served).trim(),
            digest,
            "{extension} of {url}"
        );
    }
}

/// `mvn` with an isolated home, a local repository of its own and a settings file whose only
/// repositories are Debian's plugin directory (everything but `arca`) and Arca.
struct Maven {
    client: IsolatedClient,
    settings: PathBuf,
}

impl Maven {
    fn new(bin: PathBuf, token: &str) -> Maven {
        let client = IsolatedClient::new(bin).expect("temporary home");
        let settings = client.home().join("settings.xml");
        let local = client.home().join("m2-repository");
        let debian = "file:///usr/share/maven-repo";
        // The `debian` profile replaces central by the plugin directory (checksums are not packaged
        // there); the mirror catches every other repository except Arca's.
        let policy = "<checksumPolicy>ignore</checksumPolicy>";
        let repository = format!(
            "<id>central</id><url>{debian}</url><releases>{policy}</releases>\
             <snapshots><enabled>false</enabled></snapshots>"
        );
        let xml = format!(
            r#"<settings>
  <localRepository>{local}</localRepository>
  <servers><server><id>arca</id><username>mvn</username><password>{token}</password></server></servers>
  <mirrors><mirror><id>debian</id><mirrorOf>*,!arca</mirrorOf><url>{debian}</url></mirror></mirrors>
  <profiles><profile><id>debian</id>
    <repositories><repository>{repository}</repository></repositories>
    <pluginRepositories><pluginRepository>{repository}</pluginRepository></pluginRepositories>
  </profile></profiles>
  <activeProfiles><activeProfile>debian</activeProfile></activeProfiles>
</settings>
"#,
            local = local.display()
        );
        std::fs::write(&settings, xml).expect("settings.xml");
        Maven { client, settings }
    }

    fn run(&self, project: &Path, goals: &[&str]) -> ClientOutput {
        let settings = self.settings.display().to_string();
        let pom = project.join("pom.xml").display().to_string();
        let mut args = vec!["-B", "-ntp", "-s", &settings, "-f", &pom, "-DskipTests"];
        args.extend_from_slice(goals);
        self.client.run(&args).expect("running mvn")
    }
}

fn plugins_xml() -> String {
    PLUGINS
        .iter()
        .map(|(artifact, version)| {
            format!(
                "<plugin><groupId>org.apache.maven.plugins</groupId><artifactId>{artifact}</artifactId>\
                 <version>{version}</version></plugin>"
            )
        })
        .collect()
}

fn pom(artifact: &str, version: &str, extra: &str) -> String {
    format!(
        r#"<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>{GROUP}</groupId>
  <artifactId>{artifact}</artifactId>
  <version>{version}</version>
  <packaging>jar</packaging>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <build><plugins>{plugins}</plugins></build>
{extra}
</project>
"#,
        plugins = plugins_xml()
    )
}

/// A one-class library deploying to `repository`.
fn library(dir: &Path, version: &str, repository: &str) -> PathBuf {
    let project = dir.join(format!("lib-{version}"));
    let sources = project.join("src/main/java/org/example/arca");
    std::fs::create_dir_all(&sources).expect("sources");
    std::fs::write(
        sources.join("Greeting.java"),
        format!(
            "package org.example.arca;\npublic class Greeting {{\n  public static String hello() {{ return \"hello from {version}\"; }}\n}}\n"
        ),
    )
    .expect("Greeting.java");
    let distribution = format!(
        "<distributionManagement>\
         <repository><id>arca</id><url>{repository}</url></repository>\
         <snapshotRepository><id>arca</id><url>{repository}</url></snapshotRepository>\
         </distributionManagement>"
    );
    std::fs::write(project.join("pom.xml"), pom(LIB, version, &distribution)).expect("pom.xml");
    project
}

/// A one-class application that depends on the library (version `${lib.version}`), resolved only
/// from `repository`, with checksum policy `fail`.
fn consumer(dir: &Path, repository: &str) -> PathBuf {
    let project = dir.join("app");
    let sources = project.join("src/main/java/org/example/app");
    std::fs::create_dir_all(&sources).expect("sources");
    std::fs::write(
        sources.join("App.java"),
        "package org.example.app;\npublic class App {\n  public static void main(String[] args) { System.out.println(org.example.arca.Greeting.hello()); }\n}\n",
    )
    .expect("App.java");
    let policy = "<updatePolicy>always</updatePolicy><checksumPolicy>fail</checksumPolicy>";
    let extra = format!(
        "<dependencies><dependency><groupId>{GROUP}</groupId><artifactId>{LIB}</artifactId>\
         <version>${{lib.version}}</version></dependency></dependencies>\
         <repositories><repository><id>arca</id><url>{repository}</url>\
         <releases>{policy}</releases><snapshots><enabled>true</enabled>{policy}</snapshots>\
         </repository></repositories>"
    );
    std::fs::write(project.join("pom.xml"), pom("greeting-app", "1.0", &extra)).expect("pom.xml");
    project
}

fn assert_success(output: &ClientOutput, node: &TestNode) {
    assert!(
        output.success,
        "{}\n--- node log ---\n{}",
        output.describe(),
        node.log()
    );
    assert!(
        !output.all().contains("Failed to upload"),
        "mvn could not upload a checksum:\n{}",
        output.describe()
    );
}

#[tokio::test]
async fn mvn_deploys_releases_and_snapshots_and_a_consumer_resolves_only_from_arca() {
    let Some(mvn) = require_client("mvn", "mvn_deploys_releases_and_snapshots") else {
        return;
    };
    let node = TestNode::start().expect("node");
    create_registry(&node, json!({"name": "libs", "package_type": "MAVEN"})).await;
    let repository = repo_url(&node, "libs");
    let work = tempfile::tempdir().expect("work dir");
    let maven = Maven::new(mvn.clone(), &node.admin_token);

    let release = library(work.path(), "1.0", &repository);
    assert_success(&maven.run(&release, &["deploy"]), &node);
    let snapshot = library(work.path(), "1.1-SNAPSHOT", &repository);
    for _ in 0..2 {
        assert_success(&maven.run(&snapshot, &["deploy"]), &node);
    }

    let artifact = format!("{repository}/{GROUP_PATH}/{LIB}");
    let xml = String::from_utf8(get_ok(&node, &format!("{artifact}/maven-metadata.xml")).await)
        .expect("utf-8");
    assert_eq!(elements(&xml, "groupId"), [GROUP], "{xml}");
    assert_eq!(elements(&xml, "artifactId"), [LIB], "{xml}");
    assert_eq!(elements(&xml, "versions").len(), 1, "{xml}");
    assert_eq!(elements(&xml, "version"), ["1.0", "1.1-SNAPSHOT"], "{xml}");
    assert_eq!(elements(&xml, "latest"), ["1.1-SNAPSHOT"], "{xml}");
    assert_eq!(elements(&xml, "release"), ["1.0"], "{xml}");
    let last_updated = elements(&xml, "lastUpdated");
    assert!(
        last_updated.len() == 1 && last_updated[0].len() == 14,
        "{xml}"
    );

    let snapshot_dir = format!("{artifact}/1.1-SNAPSHOT");
    let xml = String::from_utf8(get_ok(&node, &format!("{snapshot_dir}/maven-metadata.xml")).await)
        .expect("utf-8");
    assert_eq!(elements(&xml, "version"), ["1.1-SNAPSHOT"], "{xml}");
    assert_eq!(elements(&xml, "buildNumber"), ["2"], "{xml}");
    let timestamp = elements(&xml, "timestamp").pop().expect("timestamp");
    let value = format!("1.1-{timestamp}-2");
    let mut extensions = elements(&xml, "extension");
    extensions.sort();
    assert_eq!(extensions, ["jar", "pom"], "{xml}");
    assert_eq!(
        elements(&xml, "value"),
        [value.clone(), value.clone()],
        "{xml}"
    );

    // Both builds are stored; the first one's files are still there.
    let version: Value = get(
        &node,
        &format!(
            "{}/api/v1/registries/libs/packages/{GROUP}:{LIB}/versions/1.1-SNAPSHOT",
            node.url
        ),
    )
    .await
    .json()
    .await
    .expect("version info");
    let files = version["files"].as_array().expect("files");
    assert_eq!(files.len(), 4, "{version}");

    // The deployed jar is the one mvn built, and every checksum matches what is served.
    let jar = format!("{artifact}/1.0/{LIB}-1.0.jar");
    let built = std::fs::read(release.join(format!("target/{LIB}-1.0.jar"))).expect("built jar");
    assert_eq!(get_ok(&node, &jar).await, built);
    for url in [
        jar.clone(),
        format!("{artifact}/1.0/{LIB}-1.0.pom"),
        format!("{artifact}/maven-metadata.xml"),
        format!("{snapshot_dir}/maven-metadata.xml"),
        format!("{snapshot_dir}/{LIB}-{value}.jar"),
        format!("{snapshot_dir}/{LIB}-{value}.pom"),
    ] {
        assert_checksums(&node, &url).await;
    }
    // A plain -SNAPSHOT name serves the newest build.
    assert_eq!(
        get_ok(&node, &format!("{snapshot_dir}/{LIB}-1.1-SNAPSHOT.jar")).await,
        get_ok(&node, &format!("{snapshot_dir}/{LIB}-{value}.jar")).await
    );

    // A second project builds against Arca only (fresh local repository, checksums enforced), with
    // the release and with the SNAPSHOT.
    let app = consumer(work.path(), &repository);
    for lib_version in ["1.0", "1.1-SNAPSHOT"] {
        let consumer_maven = Maven::new(mvn.clone(), &node.admin_token);
        let output =
            consumer_maven.run(&app, &[&format!("-Dlib.version={lib_version}"), "package"]);
        assert_success(&output, &node);
        let resolved = consumer_maven
            .client
            .home()
            .join(format!("m2-repository/{GROUP_PATH}/{LIB}/{lib_version}"));
        let names: Vec<String> = std::fs::read_dir(&resolved)
            .expect("the dependency was resolved into the local repository")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        // The resolver records where each file came from.
        let origins =
            std::fs::read_to_string(resolved.join("_remote.repositories")).unwrap_or_default();
        assert!(
            origins.lines().any(|l| l.contains(".jar>arca=")),
            "{lib_version} was not downloaded from Arca: {origins}\n{}",
            output.describe()
        );
        if lib_version.ends_with("-SNAPSHOT") {
            let newest = format!("{LIB}-{value}.jar");
            assert!(names.contains(&newest), "{newest} not in {names:?}");
        }
    }
}

#[tokio::test]
async fn releases_are_not_redeployed_unless_the_registry_allows_it() {
    let Some(mvn) = require_client("mvn", "releases_are_not_redeployed") else {
        return;
    };
    let node = TestNode::start().expect("node");
    create_registry(&node, json!({"name": "strict", "package_type": "MAVEN"})).await;
    create_registry(
        &node,
        json!({"name": "lenient", "package_type": "MAVEN", "allow_redeploy": true}),
    )
    .await;
    let work = tempfile::tempdir().expect("work dir");
    let maven = Maven::new(mvn, &node.admin_token);

    let strict = library(work.path(), "1.0", &repo_url(&node, "strict"));
    assert_success(&maven.run(&strict, &["deploy"]), &node);
    let jar_url = format!(
        "{}/{GROUP_PATH}/{LIB}/1.0/{LIB}-1.0.jar",
        repo_url(&node, "strict")
    );
    let first = get_ok(&node, &jar_url).await;
    let again = maven.run(&strict, &["deploy"]);
    assert!(!again.success, "redeploy succeeded:\n{}", again.describe());
    assert!(again.all().contains("409"), "{}", again.describe());
    assert_eq!(get_ok(&node, &jar_url).await, first, "the release changed");

    let lenient_dir = work.path().join("lenient");
    let lenient = library(&lenient_dir, "1.0", &repo_url(&node, "lenient"));
    for _ in 0..2 {
        assert_success(&maven.run(&lenient, &["deploy"]), &node);
    }
}

/// Sends a request head with `Expect: 100-continue`; returns the first answer, and when it is
/// `100 Continue`, sends the body and returns the final answer too.
fn expect_continue(url: &str, head: &str, body: &[u8]) -> (String, Option<String>) {
    let mut stream =
        std::net::TcpStream::connect(url.trim_start_matches("http://")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(head.as_bytes()).expect("head");
    let mut buffer = [0u8; 4096];
    let read = stream.read(&mut buffer).expect("first answer within 10 s");
    let first = String::from_utf8_lossy(&buffer[..read]).to_string();
    if !first.starts_with("HTTP/1.1 100") {
        return (first, None);
    }
    stream.write_all(body).expect("body");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    (first, Some(String::from_utf8_lossy(&rest).to_string()))
}

#[tokio::test]
async fn bad_paths_wrong_checksums_and_auth_are_refused_before_storing() {
    let node = TestNode::start().expect("node");
    create_registry(&node, json!({"name": "libs", "package_type": "MAVEN"})).await;
    let host = node.url.trim_start_matches("http://");
    let token = &node.admin_token;

    for path in [
        "org/../../etc/lib/1.0/lib-1.0.jar",
        "org/example/lib/1.0/../../../x/lib-1.0.jar",
        "org/%2e%2e/lib/1.0/lib-1.0.jar",
        "org%2F..%2Fx/lib/1.0/lib-1.0.jar",
        "org/example/lib/1.0/evil.sh",
        "org/example/lib/1.0/lib-1.1.jar",
        "lib/1.0/lib-1.0.jar",
        "org/example/lib/1.0/lib-1.0.pom%00",
    ] {
        let request = format!(
            "PUT /maven/libs/{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: 5\r\nConnection: close\r\n\r\nhello"
        );
        let (status, answer) = raw_http(&node.url, request.as_bytes()).expect("raw http");
        assert_eq!(status, 400, "{path}: {answer}");
    }
    assert_eq!(package_count(&node, "libs").await, 0);

    // A GENERIC registry is not a Maven repository.
    create_registry(&node, json!({"name": "files", "package_type": "GENERIC"})).await;
    let response = put(
        &node,
        &format!(
            "{}/org/example/lib/1.0/lib-1.0.jar",
            repo_url(&node, "files")
        ),
        "x",
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // A checksum upload is verified against the stored file; nothing else is stored for it.
    let jar = format!(
        "{}/org/example/lib/1.0/lib-1.0.jar",
        repo_url(&node, "libs")
    );
    assert_eq!(
        put(&node, &jar, "jar bytes").await.status(),
        StatusCode::CREATED
    );
    let sha1 = hex::encode(sha1::Sha1::digest(b"jar bytes"));
    let wrong = hex::encode(sha1::Sha1::digest(b"other bytes"));
    let response = put(&node, &format!("{jar}.sha1"), wrong).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("error body");
    assert_eq!(body["error"]["code"], "DIGEST_MISMATCH");
    assert_eq!(
        put(&node, &format!("{jar}.sha1"), "not a checksum")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put(
            &node,
            &format!("{jar}.sha1"),
            format!("{sha1}  lib-1.0.jar\n")
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    let md5 = hex::encode(md5::Md5::digest(b"jar bytes"));
    assert_eq!(
        put(&node, &format!("{jar}.md5"), md5).await.status(),
        StatusCode::CREATED
    );
    let missing = format!(
        "{}/org/example/lib/1.0/lib-1.0.pom.sha1",
        repo_url(&node, "libs")
    );
    assert_eq!(
        put(&node, &missing, sha1).await.status(),
        StatusCode::NOT_FOUND
    );
    // Client copies of maven-metadata.xml are accepted and replaced by the registry's own.
    let metadata = format!(
        "{}/org/example/lib/maven-metadata.xml",
        repo_url(&node, "libs")
    );
    assert_eq!(
        put(&node, &metadata, "<metadata/>").await.status(),
        StatusCode::CREATED
    );
    let xml = String::from_utf8(get_ok(&node, &metadata).await).expect("utf-8");
    assert_eq!(elements(&xml, "version"), ["1.0"], "{xml}");
    let version: Value = get(
        &node,
        &format!(
            "{}/api/v1/registries/libs/packages/org.example:lib/versions/1.0",
            node.url
        ),
    )
    .await
    .json()
    .await
    .expect("version info");
    assert_eq!(
        version["files"].as_array().map(Vec::len),
        Some(1),
        "{version}"
    );

    // A release file is not replaced.
    let response = put(&node, &jar, "other bytes").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(get_ok(&node, &jar).await, b"jar bytes");

    // Without credentials: 401 with a Basic challenge, answered before the body is asked for.
    let head = format!(
        "PUT /maven/libs/org/example/lib/1.1/lib-1.1.jar HTTP/1.1\r\nHost: {host}\r\n\
         Expect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
    );
    let (first, _) = expect_continue(&node.url, &head, b"hello");
    assert!(first.starts_with("HTTP/1.1 401"), "{first}");
    assert!(first.contains("Basic realm=\"arca\""), "{first}");
    // A release that exists: 409 before the body is asked for.
    let head = format!(
        "PUT /maven/libs/org/example/lib/1.0/lib-1.0.jar HTTP/1.1\r\nHost: {host}\r\n\
         Authorization: Bearer {token}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\
         Connection: close\r\n\r\n"
    );
    let (first, _) = expect_continue(&node.url, &head, b"hello");
    assert!(first.starts_with("HTTP/1.1 409"), "{first}");
    // With credentials: 100 Continue, then the upload.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("mvn:{token}"));
    let head = format!(
        "PUT /maven/libs/org/example/lib/1.1/lib-1.1.jar HTTP/1.1\r\nHost: {host}\r\n\
         Authorization: Basic {basic}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\
         Connection: close\r\n\r\n"
    );
    let (first, last) = expect_continue(&node.url, &head, b"hello");
    assert!(first.starts_with("HTTP/1.1 100"), "{first}");
    let last = last.expect("final answer");
    assert!(last.contains("HTTP/1.1 201"), "{first}{last}");
    assert_eq!(
        get_ok(
            &node,
            &format!(
                "{}/org/example/lib/1.1/lib-1.1.jar",
                repo_url(&node, "libs")
            )
        )
        .await,
        b"hello"
    );
}

#[tokio::test]
async fn snapshot_cleanup_keeps_the_newest_builds() {
    let node = TestNode::start().expect("node");
    create_registry(&node, json!({"name": "snaps", "package_type": "MAVEN"})).await;
    let response = http()
        .put(format!("{}/api/v1/registries/snaps/metadata", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"metadata": {"maven.snapshot.keep": "2"}}))
        .send()
        .await
        .expect("set metadata");
    assert_eq!(response.status(), StatusCode::OK);
    let dir = format!("{}/org/example/lib/1.0-SNAPSHOT", repo_url(&node, "snaps"));
    let file = |build: u32, extension: &str| {
        format!("{dir}/lib-1.0-20240101.00000{build}-{build}.{extension}")
    };
    for build in 1..=4 {
        for extension in ["jar", "pom"] {
            let body = format!("build {build} {extension}");
            let response = put(&node, &file(build, extension), body).await;
            assert_eq!(response.status(), StatusCode::CREATED);
        }
    }
    for build in 1..=2 {
        for extension in ["jar", "pom", "jar.sha1"] {
            let response = get(&node, &file(build, extension)).await;
            assert_eq!(
                response.status(),
                StatusCode::NOT_FOUND,
                "build {build} {extension}"
            );
        }
    }
    for build in 3..=4 {
        assert_eq!(
            get_ok(&node, &file(build, "jar")).await,
            format!("build {build} jar").as_bytes()
        );
        assert_checksums(&node, &file(build, "pom")).await;
    }
    let xml = String::from_utf8(get_ok(&node, &format!("{dir}/maven-metadata.xml")).await)
        .expect("utf-8");
    assert_eq!(elements(&xml, "buildNumber"), ["4"], "{xml}");
    assert_eq!(elements(&xml, "timestamp"), ["20240101.000004"], "{xml}");
    assert_eq!(
        get_ok(&node, &format!("{dir}/lib-1.0-SNAPSHOT.jar")).await,
        b"build 4 jar"
    );
    let version: Value = get(
        &node,
        &format!(
            "{}/api/v1/registries/snaps/packages/org.example:lib/versions/1.0-SNAPSHOT",
            node.url
        ),
    )
    .await
    .json()
    .await
    .expect("version info");
    assert_eq!(
        version["files"].as_array().map(Vec::len),
        Some(4),
        "{version}"
    );
}

/// Writes `.mvn/jvm.config` into `project`: the JVM that runs mvn trusts only the CA of `pki`
/// (from a PKCS#12 trust store made with keytool).
fn trust_only(project: &Path, pki: &arca_tests::pki::TestPki, keytool: &Path) {
    let store = pki.dir.path().join("trust.p12");
    if !store.exists() {
        let output = std::process::Command::new(keytool)
            .args([
                "-importcert",
                "-noprompt",
                "-alias",
                "arca-test-ca",
                "-file",
            ])
            .arg(pki.path("ca.pem"))
            .args(["-keystore"])
            .arg(&store)
            .args(["-storetype", "PKCS12", "-storepass", "changeit"])
            .output()
            .expect("running keytool");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let config = project.join(".mvn");
    std::fs::create_dir_all(&config).expect(".mvn");
    std::fs::write(
        config.join("jvm.config"),
        format!(
            "-Djavax.net.ssl.trustStore={} -Djavax.net.ssl.trustStoreType=PKCS12 \
             -Djavax.net.ssl.trustStorePassword=changeit\n",
            store.display()
        ),
    )
    .expect("jvm.config");
}

#[tokio::test]
async fn mvn_deploys_to_and_resolves_from_an_https_node() {
    let test = "mvn_deploys_to_and_resolves_from_an_https_node";
    let (Some(mvn), Some(keytool)) = (require_client("mvn", test), require_client("keytool", test))
    else {
        return;
    };
    let pki = arca_tests::pki::TestPki::new().expect("pki");
    let node = pki.https_node().expect("https node");
    let created = pki
        .client()
        .expect("client")
        .post(format!("{}/api/v1/registries", node.url))
        .bearer_auth(&node.admin_token)
        .json(&json!({"name": "libs", "package_type": "MAVEN"}))
        .send()
        .await
        .expect("create registry");
    assert_eq!(created.status(), StatusCode::CREATED);
    let repository = repo_url(&node, "libs");
    assert!(repository.starts_with("https://"), "{repository}");
    let work = tempfile::tempdir().expect("work dir");
    let release = library(work.path(), "1.0", &repository);
    trust_only(&release, &pki, &keytool);
    assert_success(
        &Maven::new(mvn.clone(), &node.admin_token).run(&release, &["deploy"]),
        &node,
    );
    let app = consumer(work.path(), &repository);
    trust_only(&app, &pki, &keytool);
    let consumer_maven = Maven::new(mvn, &node.admin_token);
    let output = consumer_maven.run(&app, &["-Dlib.version=1.0", "package"]);
    assert_success(&output, &node);
    let origins = std::fs::read_to_string(consumer_maven.client.home().join(format!(
        "m2-repository/{GROUP_PATH}/{LIB}/1.0/_remote.repositories"
    )))
    .unwrap_or_default();
    assert!(
        origins.lines().any(|l| l.contains(".jar>arca=")),
        "1.0 was not downloaded from Arca over HTTPS: {origins}\n{}",
        output.describe()
    );
}
