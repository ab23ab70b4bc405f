//! RubyGems registries end to end with Debian's `gem` 3.3 and bundler 2.3: gems built with
//! `gem build` (one at two versions, one depending on it) pushed with `gem push` and `arca artifact
//! push gem`; `gem install` from Arca alone picks the newest version the dependency allows;
//! `gem yank` takes a version out and `bundle install` (compact index, credentials from `arca
//! registry configure gem`) resolves the one left; a remote registry over the hosted one and a
//! virtual registry over both serve the same bundle; the firewall blocks a version; and gems that
//! are not gems, or whose specification is broken, are refused in plain text, storing nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::clients::{ClientOutput, require_client, run_command};
use arca_tests::remote::{create_registry, local_registry, remote_registry, virtual_registry};
use arca_tests::{TestNode, http};
use reqwest::StatusCode;
use serde_json::json;

/// `gem` and `bundle` with a home, gem directory and bundle path of their own.
struct RubyClients {
    gem: PathBuf,
    bundle: PathBuf,
    home: tempfile::TempDir,
}

impl RubyClients {
    fn command(&self, program: &Path, dir: &Path, args: &[&str]) -> Command {
        let home = self.home.path();
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .env("HOME", home)
            .env("GEM_HOME", home.join("gems"))
            .env("GEM_PATH", home.join("gems"))
            .env("GEM_SPEC_CACHE", home.join("specs"))
            .env("BUNDLE_USER_HOME", home.join("bundle-home"))
            .env("BUNDLE_PATH", home.join("bundle"))
            .env("BUNDLE_DISABLE_VERSION_CHECK", "true")
            .env_remove("BUNDLE_GEMFILE")
            .env_remove("GEM_HOST_API_KEY")
            .env_remove("BUNDLE_USER_CONFIG");
        command
    }

    fn gem(&self, dir: &Path, args: &[&str], api_key: Option<&str>) -> Result<ClientOutput> {
        let mut command = self.command(&self.gem, dir, args);
        if let Some(key) = api_key {
            command.env("GEM_HOST_API_KEY", key);
        }
        run_command(&mut command)
    }

    fn bundle(&self, dir: &Path, args: &[&str]) -> Result<ClientOutput> {
        run_command(&mut self.command(&self.bundle, dir, args))
    }
}

/// Builds gem `name` `version` with `gem build`; its `describe` says `body` (Ruby), it depends on
/// `dependency` (name, requirement). Returns the `.gem`.
fn build_gem(
    ruby: &RubyClients,
    root: &Path,
    name: &str,
    version: &str,
    dependency: Option<(&str, &str)>,
    body: &str,
) -> Result<PathBuf> {
    let dir = root.join(format!("{name}-{version}-src"));
    std::fs::create_dir_all(dir.join("lib"))?;
    let module = name
        .split('_')
        .map(|part| part[..1].to_uppercase() + &part[1..])
        .collect::<String>();
    let require = dependency
        .map(|(dep, _)| format!("require \"{dep}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        dir.join(format!("lib/{name}.rb")),
        format!("{require}module {module}\n  def self.describe\n    {body}\n  end\nend\n"),
    )?;
    let add_dependency = dependency
        .map(|(dep, requirement)| format!("  s.add_dependency \"{dep}\", \"{requirement}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        dir.join(format!("{name}.gemspec")),
        format!(
            "Gem::Specification.new do |s|\n  s.name = \"{name}\"\n  s.version = \"{version}\"\n  \
             s.summary = \"arca test gem {name}\"\n  s.authors = [\"Arca\"]\n  s.license = \"MIT\"\n  \
             s.files = [\"lib/{name}.rb\"]\n  s.required_ruby_version = \">= 2.7\"\n{add_dependency}end\n"
        ),
    )?;
    ruby.gem(&dir, &["build", &format!("{name}.gemspec")], None)?
        .ok()?;
    Ok(dir.join(format!("{name}-{version}.gem")))
}

/// A Gemfile project using `arca_shout` from `source`.
fn project(root: &Path, label: &str, source: &str) -> Result<PathBuf> {
    let dir = root.join(format!("app-{label}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("Gemfile"),
        format!("source \"{source}\"\n\ngem \"arca_shout\"\n"),
    )?;
    Ok(dir)
}

/// Resolves afresh (no lock file), installs and runs `ArcaShout.describe` through bundler.
fn bundle_and_run(ruby: &RubyClients, app: &Path) -> Result<String> {
    let _ = std::fs::remove_file(app.join("Gemfile.lock"));
    ruby.bundle(app, &["install"])?.ok()?;
    let output = ruby
        .bundle(
            app,
            &[
                "exec",
                "ruby",
                "-e",
                "require \"arca_shout\"; puts ArcaShout.describe",
            ],
        )?
        .ok()?;
    Ok(output.stdout.trim().to_string())
}

fn clients(test: &str) -> Option<(PathBuf, PathBuf)> {
    Some((
        require_client("gem", test)?,
        require_client("bundle", test)?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gem_and_bundler_push_install_yank_and_resolve_through_hosted_remote_and_virtual()
-> Result<()> {
    let test = "gem_and_bundler_push_install_yank_and_resolve_through_hosted_remote_and_virtual";
    let Some((gem, bundle)) = clients(test) else {
        return Ok(());
    };
    let node = TestNode::start()?;
    create_registry(&node, local_registry("gems", "RUBYGEMS")).await?;
    let ruby = RubyClients {
        gem,
        bundle,
        home: tempfile::tempdir()?,
    };
    let work = tempfile::tempdir()?;
    let host = format!("{}/rubygems/gems", node.url);

    for version in ["1.0.0", "1.1.0"] {
        let built = build_gem(
            &ruby,
            work.path(),
            "arca_greet",
            version,
            None,
            &format!("\"hello {version}\""),
        )?;
        let file = built.to_str().context("a UTF-8 path")?;
        let pushed = ruby
            .gem(
                work.path(),
                &["push", "--host", &host, file],
                Some(&node.admin_token),
            )?
            .ok()?;
        ensure!(
            pushed
                .stdout
                .contains("Successfully registered gem: arca_greet"),
            "{}",
            pushed.describe()
        );
    }
    let shout = build_gem(
        &ruby,
        work.path(),
        "arca_shout",
        "1.0.0",
        Some(("arca_greet", "~> 1.0")),
        "ArcaGreet.describe.upcase",
    )?;
    let pushed = node.cli(&[
        "--format",
        "json",
        "artifact",
        "push",
        "gem",
        "gems",
        shout.to_str().context("a UTF-8 path")?,
    ]);
    ensure!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    // The compact index, as bundler reads it.
    let get = |path: &str| {
        let request = http()
            .get(format!("{}/rubygems/gems/{path}", node.url))
            .bearer_auth(&node.admin_token);
        async move {
            let response = request.send().await?;
            anyhow::Ok((response.status(), response.text().await?))
        }
    };
    let (status, info) = get("info/arca_shout").await?;
    ensure!(status == StatusCode::OK, "{status}: {info}");
    ensure!(
        info.starts_with("---\n1.0.0 arca_greet:~> 1.0|checksum:") && info.contains(",ruby:>= 2.7"),
        "{info}"
    );
    let (_, versions) = get("versions").await?;
    ensure!(versions.contains("\narca_greet 1.0.0,1.1.0 "), "{versions}");

    // The Marshal indexes `gem` falls back to load in Ruby as the objects they stand for.
    let bytes = |path: &str| {
        let request = http()
            .get(format!("{}/rubygems/gems/{path}", node.url))
            .bearer_auth(&node.admin_token);
        async move { anyhow::Ok(request.send().await?.error_for_status()?.bytes().await?) }
    };
    std::fs::write(work.path().join("specs"), bytes("specs.4.8.gz").await?)?;
    std::fs::write(
        work.path().join("gemspec"),
        bytes("quick/Marshal.4.8/arca_shout-1.0.0.gemspec.rz").await?,
    )?;
    let ruby_program = ruby.gem.with_file_name("ruby");
    let loaded = run_command(
        Command::new(&ruby_program)
            .current_dir(work.path())
            .args([
                "-rzlib",
                "-e",
                "p Marshal.load(Zlib.gunzip(File.binread('specs'))).map { |n, v, p| [n, v.to_s, p] }.sort\n\
                 s = Marshal.load(Zlib.inflate(File.binread('gemspec')))\n\
                 puts s.full_name, s.summary, s.required_ruby_version, s.dependencies.map(&:to_s).join(';')",
            ]),
    )?
    .ok()?;
    ensure!(
        loaded.stdout
            == "[[\"arca_greet\", \"1.0.0\", \"ruby\"], [\"arca_greet\", \"1.1.0\", \"ruby\"], \
                [\"arca_shout\", \"1.0.0\", \"ruby\"]]\narca_shout-1.0.0\narca test gem arca_shout\n\
                >= 2.7\narca_greet (~> 1.0)\n",
        "{}",
        loaded.describe()
    );

    // `gem install` from Arca alone: the newest arca_greet `~> 1.0` allows.
    let source = format!(
        "http://arca:{}@{}/rubygems/gems/",
        node.admin_token,
        node.url.trim_start_matches("http://")
    );
    let install_dir = work.path().join("installed");
    let install_dir_text = install_dir.to_str().context("a UTF-8 path")?;
    let installed = ruby
        .gem(
            work.path(),
            &[
                "install",
                "arca_shout",
                "--clear-sources",
                "--source",
                &source,
                "--install-dir",
                install_dir_text,
                "--no-document",
            ],
            None,
        )?
        .ok()?;
    ensure!(
        install_dir.join("gems/arca_greet-1.1.0").is_dir()
            && install_dir.join("gems/arca_shout-1.0.0").is_dir(),
        "{}",
        installed.describe()
    );

    // A yanked version leaves the index: bundler resolves 1.0.0, with the credentials `arca
    // registry configure gem` gave it.
    let yanked = ruby
        .gem(
            work.path(),
            &["yank", "arca_greet", "-v", "1.1.0", "--host", &host],
            Some(&node.admin_token),
        )?
        .ok()?;
    ensure!(
        yanked.stdout.contains("Successfully deleted gem"),
        "{}",
        yanked.describe()
    );
    let app = project(work.path(), "hosted", &host)?;
    let configured = node
        .cli_command(
            Some(&node.admin_token),
            &["registry", "configure", "gem", "--registry", "gems"],
        )
        .current_dir(&app)
        .output()?;
    ensure!(
        configured.status.success(),
        "{}",
        String::from_utf8_lossy(&configured.stderr)
    );
    ensure!(
        bundle_and_run(&ruby, &app)? == "HELLO 1.0.0",
        "bundler picked another arca_greet"
    );
    let lock = std::fs::read_to_string(app.join("Gemfile.lock"))?;
    ensure!(lock.contains("arca_greet (1.0.0)"), "{lock}");

    // A remote registry over the hosted one and a virtual registry over a local registry and the
    // remote serve the same bundle.
    create_registry(
        &node,
        remote_registry("gems-remote", "RUBYGEMS", &host, &node.admin_token, 60),
    )
    .await?;
    create_registry(&node, local_registry("gems-local", "RUBYGEMS")).await?;
    create_registry(
        &node,
        virtual_registry(
            "gems-all",
            "RUBYGEMS",
            &["gems-local", "gems-remote"],
            Some("gems-local"),
        ),
    )
    .await?;
    let through_virtual = project(
        work.path(),
        "virtual",
        &format!("{}/rubygems/gems-all", node.url),
    )?;
    std::fs::create_dir_all(through_virtual.join(".bundle"))?;
    std::fs::copy(
        app.join(".bundle/config"),
        through_virtual.join(".bundle/config"),
    )?;
    let _ = std::fs::remove_dir_all(ruby.home.path().join("bundle"));
    ensure!(bundle_and_run(&ruby, &through_virtual)? == "HELLO 1.0.0");
    let cached = http()
        .get(format!(
            "{}/api/v1/registries/gems-remote/packages/arca_greet",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(cached.status() == StatusCode::OK, "{}", cached.status());

    // The firewall blocks a denied version's download.
    let policy = http()
        .put(format!(
            "{}/api/v1/registries/gems/firewall-policy",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "deny": [{ "package": "arca_shout", "version": "1.0.0" }] }))
        .send()
        .await?;
    ensure!(policy.status() == StatusCode::OK, "{}", policy.status());
    let (status, body) = get("gems/arca_shout-1.0.0.gem").await?;
    ensure!(status == StatusCode::FORBIDDEN, "{status}: {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_that_are_not_valid_gems_are_refused_and_store_nothing() -> Result<()> {
    let node = TestNode::start()?;
    create_registry(&node, local_registry("gems", "RUBYGEMS")).await?;
    let push = |body: Vec<u8>, token: Option<String>| {
        let mut request = http()
            .post(format!("{}/rubygems/gems/api/v1/gems", node.url))
            .body(body);
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        async move {
            let response = request.send().await?;
            anyhow::Ok((response.status(), response.text().await?))
        }
    };
    let token = Some(node.admin_token.clone());
    let metadata = |version: &str| {
        format!(
            "--- !ruby/object:Gem::Specification\nname: broken\nversion: !ruby/object:Gem::Version\n  \
             version: {version}\nplatform: ruby\nsummary: x\n"
        )
    };
    let gem_of = |yaml: &str| -> Result<Vec<u8>> {
        let gz = |bytes: &[u8]| -> Result<Vec<u8>> {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(bytes)?;
            Ok(encoder.finish()?)
        };
        let mut tar = tar::Builder::new(Vec::new());
        for (name, bytes) in [
            ("metadata.gz", gz(yaml.as_bytes())?),
            ("data.tar.gz", gz(b"")?),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o444);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes.as_slice())?;
        }
        Ok(tar.into_inner()?)
    };
    for (body, why) in [
        (b"not a gem".to_vec(), "not valid"),
        (gem_of(&metadata("1.0 x|y"))?, "invalid version"),
        (gem_of("{{{ not yaml")?, "not YAML"),
    ] {
        let (status, text) = push(body, token.clone()).await?;
        ensure!(
            status == StatusCode::UNPROCESSABLE_ENTITY,
            "{why}: {status} {text}"
        );
        ensure!(
            text.contains(why) && !text.starts_with('{'),
            "{text:?} lacks {why:?}"
        );
    }
    let valid = gem_of(&metadata("1.0.0"))?;
    let (status, _) = push(valid.clone(), None).await?;
    ensure!(status == StatusCode::UNAUTHORIZED, "{status}");
    let info = |path: &str| {
        let request = http()
            .get(format!("{}/rubygems/gems/{path}", node.url))
            .bearer_auth(&node.admin_token);
        async move { anyhow::Ok(request.send().await?.status()) }
    };
    ensure!(
        info("info/broken").await? == StatusCode::NOT_FOUND,
        "a refused push stored something"
    );
    let (status, text) = push(valid.clone(), token.clone()).await?;
    ensure!(status == StatusCode::OK, "{status}: {text}");
    let (status, text) = push(valid, token).await?;
    ensure!(
        status == StatusCode::CONFLICT && text.contains("Repushing"),
        "{status}: {text}"
    );
    ensure!(info("info/broken").await? == StatusCode::OK);
    ensure!(info("quick/Marshal.4.8/broken-1.0.0.gemspec.rz").await? == StatusCode::OK);
    ensure!(info("specs.4.8.gz").await? == StatusCode::OK);
    Ok(())
}
