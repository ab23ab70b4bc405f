//! Go module registries end to end with the real go command (1.23): modules published with `arca
//! artifact push go` (one at two versions, one with an upper-case path element that the proxy URLs
//! case-encode), a program importing both built from Arca alone with minimal version selection
//! picking the version the dependency graph needs; `go list -m -versions` reads the list; a remote
//! registry over the hosted one and a virtual registry over both serve the same build;
//! `arca registry configure go` writes the env file the go command reads; the firewall blocks a
//! version; and module zips the go command would not extract are refused as plain text, storing
//! nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::clients::{ClientOutput, require_client, run_command};
use arca_tests::pki::TestPki;
use arca_tests::remote::{
    create_registry, create_registry_with, local_registry, remote_registry, virtual_registry,
};
use arca_tests::{TestNode, http, zip_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The go command with its own module cache, build cache and home, trusting the test's CA (the go
/// command sends credentials only over HTTPS).
struct GoClient {
    program: PathBuf,
    home: tempfile::TempDir,
    ca: PathBuf,
}

impl GoClient {
    fn new(program: PathBuf, pki: &TestPki) -> Result<GoClient> {
        Ok(GoClient {
            program,
            home: tempfile::tempdir()?,
            ca: pki.dir.path().join("ca.pem"),
        })
    }

    /// `go args` in `dir` through `proxy` (a GOPROXY URL), or through the env file `GOENV` names
    /// when `proxy` is `None`.
    fn run(
        &self,
        dir: &Path,
        proxy: Option<&str>,
        env_file: Option<&Path>,
        args: &[&str],
    ) -> Result<ClientOutput> {
        let home = self.home.path();
        let mut command = Command::new(&self.program);
        command
            .args(args)
            .current_dir(dir)
            .env("HOME", home)
            .env("GOPATH", home.join("gopath"))
            .env("GOMODCACHE", home.join("modcache"))
            .env("GOCACHE", home.join("cache"))
            .env("GOFLAGS", "-mod=mod")
            .env("GONOSUMDB", "example.com")
            .env("GOSUMDB", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GOTELEMETRY", "off")
            .env("SSL_CERT_FILE", &self.ca)
            .env_remove("GOPROXY")
            .env_remove("GOPRIVATE")
            .env_remove("GONOPROXY");
        match (proxy, env_file) {
            (Some(proxy), _) => {
                command.env("GOPROXY", proxy).env("GOENV", "off");
            }
            (None, Some(file)) => {
                command.env("GOENV", file);
            }
            (None, None) => {
                command.env("GOENV", "off");
            }
        }
        run_command(&mut command)
    }

    /// Empties the module cache (module files are read-only, as the go command leaves them).
    fn clean_cache(&self, dir: &Path) -> Result<()> {
        self.run(dir, Some("off"), None, &["clean", "-modcache"])?
            .ok()?;
        Ok(())
    }
}

/// Writes module `path` whose package `name` has `body` as its Go code, requiring `requires`.
fn module(root: &Path, path: &str, version: &str, requires: &str, body: &str) -> Result<PathBuf> {
    let dir = root.join(format!("{}-{version}", path.replace('/', "_")));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("go.mod"),
        format!("module {path}\n\ngo 1.21\n{requires}"),
    )?;
    let package = path.rsplit('/').next().context("a path")?;
    std::fs::write(
        dir.join(format!("{package}.go")),
        format!("package {package}\n\n{body}\n"),
    )?;
    std::fs::write(dir.join("README.md"), "test module\n")?;
    Ok(dir)
}

/// Writes the program: it requires greet v1.0.0 and shout v1.0.0 (which requires greet v1.1.0).
fn program(root: &Path) -> Result<PathBuf> {
    let dir = root.join("app");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("go.mod"),
        "module example.com/app\n\ngo 1.21\n\nrequire (\n\texample.com/greet v1.0.0\n\t\
         example.com/Team/shout v1.0.0\n)\n",
    )?;
    std::fs::write(
        dir.join("main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/Team/shout\"\n\t\"example.com/greet\"\n)\n\n\
         func main() { fmt.Println(greet.Hello(), \"/\", shout.Shout()) }\n",
    )?;
    Ok(dir)
}

/// Resolves afresh (no go.sum) and runs the program: what it prints.
fn build_and_run(
    go: &GoClient,
    app: &Path,
    proxy: Option<&str>,
    env_file: Option<&Path>,
) -> Result<String> {
    let _ = std::fs::remove_file(app.join("go.sum"));
    let output = go.run(app, proxy, env_file, &["run", "."])?.ok()?;
    Ok(output.stdout.trim().to_string())
}

/// The GOPROXY URL of `registry` on the HTTPS `node` with the admin token as the Basic password.
fn proxy_url(node: &TestNode, registry: &str) -> String {
    let authority = node.url.trim_start_matches("https://");
    format!(
        "https://arca:{}@{authority}/go/{registry}",
        node.admin_token
    )
}

/// `arca` on the HTTPS `node`, trusting the test's CA.
fn cli(node: &TestNode, pki: &TestPki, args: &[&str]) -> Command {
    let mut command = node.cli_command(Some(&node.admin_token), args);
    command.env("SSL_CERT_FILE", pki.dir.path().join("ca.pem"));
    command
}

fn push(
    node: &TestNode,
    pki: &TestPki,
    registry: &str,
    version: &str,
    dir: &Path,
) -> Result<Value> {
    let dir = dir.to_str().context("a UTF-8 path")?;
    let output = cli(
        node,
        pki,
        &[
            "--format", "json", "artifact", "push", "go", registry, version, "--dir", dir,
        ],
    )
    .output()?;
    ensure!(
        output.status.success(),
        "push failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

async fn get(
    client: &reqwest::Client,
    node: &TestNode,
    path: &str,
) -> Result<(StatusCode, String)> {
    let response = client
        .get(format!("{}{path}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    Ok((response.status(), response.text().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_builds_through_hosted_remote_and_virtual_registries_with_minimal_version_selection()
-> Result<()> {
    let test =
        "go_builds_through_hosted_remote_and_virtual_registries_with_minimal_version_selection";
    let Some(program_path) = require_client("go", test) else {
        return Ok(());
    };
    let pki = TestPki::new()?;
    let node = pki.https_node_with(&["--upstream-ca-file", &pki.path("ca.pem")])?;
    let client = pki.client()?;
    create_registry_with(&client, &node, local_registry("gomods", "GO")).await?;
    let work = tempfile::tempdir()?;
    let go = GoClient::new(program_path.clone(), &pki)?;

    for version in ["v1.0.0", "v1.1.0"] {
        let dir = module(
            work.path(),
            "example.com/greet",
            version,
            "",
            &format!("func Hello() string {{ return \"hello {version}\" }}"),
        )?;
        let published = push(&node, &pki, "gomods", version, &dir)?;
        ensure!(published["package"] == "example.com/greet", "{published}");
    }
    let shout = module(
        work.path(),
        "example.com/Team/shout",
        "v1.0.0",
        "\nrequire example.com/greet v1.1.0\n",
        "import (\n\t\"strings\"\n\n\t\"example.com/greet\"\n)\n\n\
         func Shout() string { return strings.ToUpper(greet.Hello()) }",
    )?;
    push(&node, &pki, "gomods", "v1.0.0", &shout)?;

    // The proxy protocol, case-encoded: the upper-case element is `!team`.
    let (status, list) = get(&client, &node, "/go/gomods/example.com/greet/@v/list").await?;
    ensure!(
        status == StatusCode::OK && list == "v1.0.0\nv1.1.0\n",
        "{status}: {list:?}"
    );
    let (status, info) = get(
        &client,
        &node,
        "/go/gomods/example.com/!team/shout/@v/v1.0.0.info",
    )
    .await?;
    ensure!(status == StatusCode::OK, "{status}: {info}");
    let info: Value = serde_json::from_str(&info)?;
    ensure!(
        info["Version"] == "v1.0.0" && info["Time"].is_string(),
        "{info}"
    );
    let (status, go_mod) = get(
        &client,
        &node,
        "/go/gomods/example.com/!team/shout/@v/v1.0.0.mod",
    )
    .await?;
    ensure!(
        status == StatusCode::OK && go_mod.contains("require example.com/greet v1.1.0"),
        "{go_mod}"
    );
    let (status, latest) = get(&client, &node, "/go/gomods/example.com/greet/@latest").await?;
    ensure!(
        status == StatusCode::OK && latest.contains("v1.1.0"),
        "{status}: {latest}"
    );
    let (status, _) = get(&client, &node, "/go/gomods/example.com/Team/shout/@v/list").await?;
    ensure!(
        status == StatusCode::NOT_FOUND,
        "an unencoded upper case is not a path: {status}"
    );

    // Minimal version selection: the program asks for greet v1.0.0, shout needs v1.1.0, so v1.1.0
    // it is.
    let app = program(work.path())?;
    let hosted = proxy_url(&node, "gomods");
    ensure!(
        build_and_run(&go, &app, Some(&hosted), None)? == "hello v1.1.0 / HELLO V1.1.0",
        "minimal version selection picked another greet"
    );
    let versions = go
        .run(
            &app,
            Some(&hosted),
            None,
            &["list", "-m", "-versions", "example.com/greet"],
        )?
        .ok()?;
    ensure!(
        versions.stdout.trim() == "example.com/greet v1.0.0 v1.1.0",
        "{}",
        versions.describe()
    );

    // `arca registry configure go` writes the env file the go command reads its GOPROXY from.
    let configured = cli(
        &node,
        &pki,
        &[
            "registry",
            "configure",
            "go",
            "--registry",
            "gomods",
            "--private",
            "example.com",
        ],
    )
    .current_dir(work.path())
    .output()?;
    ensure!(
        configured.status.success(),
        "{}",
        String::from_utf8_lossy(&configured.stderr)
    );
    let env_file = work.path().join("go.env");
    let env_text = std::fs::read_to_string(&env_file)?;
    ensure!(env_text.contains("GONOSUMDB=example.com"), "{env_text}");
    go.clean_cache(&app)?;
    ensure!(build_and_run(&go, &app, None, Some(&env_file))? == "hello v1.1.0 / HELLO V1.1.0");

    // A remote registry over the hosted one (Basic credentials upstream) and a virtual registry
    // over a local registry and the remote serve the same build, with nothing cached by go.
    create_registry_with(
        &client,
        &node,
        remote_registry(
            "gomods-remote",
            "GO",
            &format!("{}/go/gomods", node.url),
            &node.admin_token,
            60,
        ),
    )
    .await?;
    create_registry_with(&client, &node, local_registry("gomods-local", "GO")).await?;
    create_registry_with(
        &client,
        &node,
        virtual_registry(
            "gomods-all",
            "GO",
            &["gomods-local", "gomods-remote"],
            Some("gomods-local"),
        ),
    )
    .await?;
    go.clean_cache(&app)?;
    let through_virtual = proxy_url(&node, "gomods-all");
    ensure!(
        build_and_run(&go, &app, Some(&through_virtual), None)? == "hello v1.1.0 / HELLO V1.1.0"
    );
    let (status, cached) = get(
        &client,
        &node,
        "/api/v1/registries/gomods-remote/packages/example.com%2Fgreet",
    )
    .await?;
    ensure!(
        status == StatusCode::OK && cached.contains("v1.1.0"),
        "{status}: {cached}"
    );
    // Publishing through the virtual registry lands in its local member.
    let extra = module(
        work.path(),
        "example.com/extra",
        "v0.1.0",
        "",
        "func X() {}",
    )?;
    push(&node, &pki, "gomods-all", "v0.1.0", &extra)?;
    let (status, _) = get(
        &client,
        &node,
        "/go/gomods-local/example.com/extra/@v/v0.1.0.mod",
    )
    .await?;
    ensure!(status == StatusCode::OK, "{status}");

    // The firewall blocks a denied version: 403 in plain text, and a go command with nothing cached
    // cannot build.
    let policy = client
        .put(format!(
            "{}/api/v1/registries/gomods/firewall-policy",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "deny": [{ "package": "example.com/greet", "version": "v1.1.0" }] }))
        .send()
        .await?;
    ensure!(policy.status() == StatusCode::OK, "{}", policy.status());
    let (status, body) = get(&client, &node, "/go/gomods/example.com/greet/@v/v1.1.0.zip").await?;
    ensure!(
        status == StatusCode::FORBIDDEN && !body.starts_with('{'),
        "{status}: {body}"
    );
    go.clean_cache(&app)?;
    let _ = std::fs::remove_file(app.join("go.sum"));
    let refused = go.run(&app, Some(&hosted), None, &["run", "."])?.failed()?;
    ensure!(refused.all().contains("403"), "{}", refused.describe());
    go.clean_cache(&app)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_zips_the_go_command_would_not_extract_are_refused_and_store_nothing() -> Result<()>
{
    let node = TestNode::start()?;
    create_registry(&node, local_registry("gomods", "GO")).await?;
    let put = |path: &str, body: Vec<u8>, token: Option<&str>| {
        let mut request = http()
            .put(format!("{}/go/gomods/{path}", node.url))
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await?;
            let status = response.status();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            anyhow::Ok((status, challenge, response.text().await?))
        }
    };
    let token = Some(node.admin_token.as_str());
    let go_mod: &[u8] = b"module example.com/hi\n\ngo 1.21\n";
    let refusals: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "example.com/hi/@v/v1.0.0.zip",
            zip_of(&[
                ("example.com/hi@v1.0.0/go.mod", go_mod),
                ("example.com/hi@v1.0.0/../../evil.go", b"package x"),
            ])?,
            "invalid path element",
        ),
        (
            "example.com/hi/@v/v1.0.0.zip",
            zip_of(&[(
                "example.com/hi@v1.0.0/go.mod",
                b"module example.com/other\n",
            )])?,
            "declares module",
        ),
        (
            "example.com/hi/@v/v1.0.0.zip",
            zip_of(&[("other.com/x@v1.0.0/go.mod", go_mod)])?,
            "is not under",
        ),
        (
            "example.com/hi/@v/v2.0.0.zip",
            zip_of(&[("example.com/hi@v2.0.0/go.mod", go_mod)])?,
            "does not match module path",
        ),
        (
            "example.com/hi/@v/v1.0.0.zip",
            b"not a zip".to_vec(),
            "not a zip",
        ),
        ("example.com/hi/@v/1.0.0.zip", Vec::new(), "starts with v"),
        (
            "Example.com/hi/@v/v1.0.0.zip",
            Vec::new(),
            "invalid escaped module path",
        ),
    ];
    for (path, body, why) in refusals {
        let (status, _, text) = put(path, body, token).await?;
        ensure!(
            status == StatusCode::BAD_REQUEST,
            "{path} ({why}): {status} {text}"
        );
        ensure!(
            text.contains(why) && !text.starts_with('{'),
            "{path}: {text:?} lacks {why:?}"
        );
    }
    let valid = zip_of(&[
        ("example.com/hi@v1.0.0/go.mod", go_mod),
        ("example.com/hi@v1.0.0/hi.go", b"package hi\n"),
    ])?;
    let (status, challenge, _) = put("example.com/hi/@v/v1.0.0.zip", valid.clone(), None).await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED && challenge.starts_with("Basic"),
        "{status} {challenge:?}"
    );
    // Nothing of the refused uploads was stored.
    let (status, body) = get(&http(), &node, "/go/gomods/example.com/hi/@v/list").await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status}: {body}");

    let (status, _, text) = put("example.com/hi/@v/v1.0.0.zip", valid.clone(), token).await?;
    ensure!(status == StatusCode::CREATED, "{status}: {text}");
    let (status, _, text) = put("example.com/hi/@v/v1.0.0.zip", valid, token).await?;
    ensure!(
        status == StatusCode::CONFLICT && text.contains("already exists"),
        "{status}: {text}"
    );
    let (status, list) = get(&http(), &node, "/go/gomods/example.com/hi/@v/list").await?;
    ensure!(
        status == StatusCode::OK && list == "v1.0.0\n",
        "{status}: {list:?}"
    );
    let (status, go_mod_served) =
        get(&http(), &node, "/go/gomods/example.com/hi/@v/v1.0.0.mod").await?;
    ensure!(
        status == StatusCode::OK && go_mod_served.as_bytes() == go_mod,
        "{go_mod_served:?}"
    );
    let (status, _) = get(&http(), &node, "/go/gomods/example.com/hi/@v/v1.0.1.info").await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status}");
    Ok(())
}
