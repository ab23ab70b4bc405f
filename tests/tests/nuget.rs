//! NuGet feeds end to end with Debian's `nuget` 2.8 (mono), which speaks the v2 feed: packages made
//! by `nuget pack` (Arca.Words at two versions, Arca.Greet depending on the newer) and a SemVer 2.0
//! pre-release of Arca.Greet (which the v2 feed must leave out) pushed with `nuget push` and `arca artifact push nuget`; a project
//! configured by `arca registry configure nuget` (a private feed: every read authenticated with the
//! token from NuGet.Config) installs Arca.Greet and the dependency the `.nuspec` asks for; the v3
//! documents (service index, flat container, registration, search) agree with what was pushed;
//! `nuget delete` unlists; a remote registry over the feed's v3 service index and a virtual
//! registry over both serve the same install; the firewall blocks a version; and packages that are
//! not what they say are refused with the reason `nuget` prints, storing nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::clients::{ClientOutput, require_client, run_command};
use arca_tests::remote::{create_registry, local_registry, remote_registry, virtual_registry};
use arca_tests::{TestNode, http, zip_of};
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest as _;

/// `nuget` with a home of its own (its machine cache would otherwise answer installs).
struct NuGetClient {
    program: PathBuf,
    home: tempfile::TempDir,
}

impl NuGetClient {
    /// Runs `nuget` with `args` in `dir`. Debian's mono now and then aborts while shutting down
    /// (an assertion in `mono-threads.c`, SIGABRT) after the command has done its work: a push
    /// that says it was pushed then counts as done; any other command runs once more, and a push
    /// run again that the feed refuses as already there (409) counts as done too.
    fn run(&self, dir: &Path, args: &[&str]) -> Result<ClientOutput> {
        let run_once = || {
            let mut command = Command::new(&self.program);
            command
                .args(args)
                .arg("-NonInteractive")
                .current_dir(dir)
                .env("HOME", self.home.path())
                .env("XDG_CONFIG_HOME", self.home.path().join(".config"));
            run_command(&mut command)
        };
        let mut output = run_once()?;
        let aborted_at_exit =
            matches!(output.code, None | Some(134)) && output.stderr.contains("mono-threads.c");
        if aborted_at_exit {
            if output.stdout.contains("Your package was pushed") {
                output.success = true;
            } else {
                output = run_once()?;
                let pushed_before = args.first() == Some(&"push")
                    && format!("{}{}", output.stdout, output.stderr).contains("409");
                output.success |= pushed_before;
            }
        }
        Ok(output)
    }

    /// `nuget pack`s `<id>.<version>.nupkg` into `dir`: one content file holding `<id> <version>`,
    /// depending on `dependencies` (id, range).
    fn pack(
        &self,
        dir: &Path,
        id: &str,
        version: &str,
        dependencies: &[(&str, &str)],
    ) -> Result<PathBuf> {
        let source = dir.join(format!("src-{id}-{version}"));
        std::fs::create_dir_all(&source)?;
        std::fs::write(source.join("note.txt"), format!("{id} {version}"))?;
        let dependencies: String = dependencies
            .iter()
            .map(|(id, range)| format!("<dependency id=\"{id}\" version=\"{range}\" />"))
            .collect();
        std::fs::write(
            source.join(format!("{id}.nuspec")),
            format!(
                "<?xml version=\"1.0\"?>\n<package xmlns=\"http://schemas.microsoft.com/packaging/2010/07/nuspec.xsd\">\
                 <metadata><id>{id}</id><version>{version}</version><authors>Arca tests</authors>\
                 <description>{id}, made by the NuGet test.</description><tags>arca test</tags>\
                 <dependencies>{dependencies}</dependencies></metadata>\
                 <files><file src=\"note.txt\" target=\"content/{id}.txt\" /></files></package>\n"
            ),
        )?;
        self.run(
            &source,
            &[
                "pack",
                &format!("{id}.nuspec"),
                "-OutputDirectory",
                dir.to_str().context("a UTF-8 path")?,
            ],
        )?
        .ok()?;
        Ok(dir.join(format!("{id}.{version}.nupkg")))
    }
}

fn clients(test: &str) -> Option<NuGetClient> {
    Some(NuGetClient {
        program: require_client("nuget", test)?,
        home: tempfile::tempdir().ok()?,
    })
}

async fn get_json(node: &TestNode, path: &str) -> Result<Value> {
    let response = http()
        .get(format!("{}{path}", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(
        response.status() == StatusCode::OK,
        "{path}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

/// `arca registry configure nuget` in `dir` (replacing the NuGet.Config there).
fn configure(node: &TestNode, dir: &Path, registry: &str) -> Result<()> {
    let output = node
        .cli_command(
            Some(&node.admin_token),
            &[
                "registry",
                "configure",
                "nuget",
                "--registry",
                registry,
                "--force",
            ],
        )
        .current_dir(dir)
        .output()?;
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Installs `id` (its latest version) into a fresh `out` in `dir`; the installed package folders.
fn install(nuget: &NuGetClient, dir: &Path, id: &str) -> Result<Vec<String>> {
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(nuget.home.path().join(".local/share/NuGet"));
    nuget
        .run(
            dir,
            &[
                "install",
                id,
                "-ConfigFile",
                "NuGet.Config",
                "-OutputDirectory",
                "out",
            ],
        )?
        .ok()?;
    let mut installed: Vec<String> = std::fs::read_dir(&out)?
        .filter_map(|entry| Some(entry.ok()?.file_name().to_str()?.to_string()))
        .collect();
    installed.sort();
    Ok(installed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nuget_pushes_and_installs_through_hosted_remote_and_virtual_feeds() -> Result<()> {
    let test = "nuget_pushes_and_installs_through_hosted_remote_and_virtual_feeds";
    let Some(nuget) = clients(test) else {
        return Ok(());
    };
    let node = TestNode::start_with(&[], &[("ARCA_USAGE_FLUSH_MS", "200")])?;
    create_registry(&node, local_registry("nuget", "NUGET")).await?;
    let work = tempfile::tempdir()?;
    let dir = work.path();
    let words_old = nuget.pack(dir, "Arca.Words", "1.0.0", &[])?;
    let words = nuget.pack(dir, "Arca.Words", "1.1.0", &[])?;
    let greet = nuget.pack(dir, "Arca.Greet", "1.0.0", &[("Arca.Words", "[1.1.0, )")])?;
    // nuget 2.8 packs no SemVer 2.0 version: this one is zipped by hand.
    let beta = dir.join("Arca.Greet.2.0.0-beta.1.nupkg");
    std::fs::write(
        &beta,
        zip_of(&[(
            "Arca.Greet.nuspec",
            b"<package><metadata><id>Arca.Greet</id><version>2.0.0-beta.1</version>\
              <authors>Arca tests</authors><description>A SemVer 2.0 pre-release.</description>\
              </metadata></package>",
        )])?,
    )?;

    configure(&node, dir, "nuget")?;
    let config = std::fs::read_to_string(dir.join("NuGet.Config"))?;
    ensure!(config.contains(&node.admin_token), "{config}");
    // `nuget push` with the source's name from the config; the rest with the CLI.
    nuget
        .run(
            dir,
            &[
                "push",
                "Arca.Words.1.0.0.nupkg",
                "-Source",
                "arca-nuget",
                "-ApiKey",
                &node.admin_token,
                "-ConfigFile",
                "NuGet.Config",
            ],
        )?
        .ok()?;
    for package in [&words, &greet, &beta] {
        let output = node.cli(&[
            "artifact",
            "push",
            "nuget",
            "nuget",
            package.to_str().context("a UTF-8 path")?,
        ]);
        ensure!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // The latest release and the lowest version its dependency allows.
    let installed = install(&nuget, dir, "Arca.Greet")?;
    ensure!(
        installed == ["Arca.Greet.1.0.0", "Arca.Words.1.1.0"],
        "{installed:?}"
    );
    ensure!(
        std::fs::read_to_string(dir.join("out/Arca.Greet.1.0.0/content/Arca.Greet.txt"))?
            == "Arca.Greet 1.0.0",
        "the installed content differs"
    );
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    nuget
        .run(
            dir,
            &[
                "install",
                "Arca.Words",
                "-Version",
                "1.0",
                "-ConfigFile",
                "NuGet.Config",
                "-OutputDirectory",
                "out",
            ],
        )?
        .ok()?;
    ensure!(
        out.join("Arca.Words.1.0.0").is_dir(),
        "Arca.Words 1.0 was not installed"
    );

    // The v3 documents.
    let index = get_json(&node, "/nuget/nuget/v3/index.json").await?;
    let base = index["resources"]
        .as_array()
        .and_then(|resources| {
            resources
                .iter()
                .find(|r| r["@type"] == "PackageBaseAddress/3.0.0")
        })
        .and_then(|r| r["@id"].as_str())
        .context("no PackageBaseAddress")?
        .to_string();
    let path_of = |url: &str| url.trim_start_matches(&node.url).to_string();
    let versions = get_json(&node, &format!("{}arca.words/index.json", path_of(&base))).await?;
    ensure!(
        versions["versions"] == json!(["1.0.0", "1.1.0"]),
        "{versions}"
    );
    let nuspec = http()
        .get(format!("{base}arca.greet/1.0.0/arca.greet.nuspec"))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .text()
        .await?;
    ensure!(nuspec.contains("<id>Arca.Greet</id>"), "{nuspec}");
    let registration =
        get_json(&node, "/nuget/nuget/v3/registration/arca.greet/index.json").await?;
    let leaves = &registration["items"][0]["items"];
    let release = &leaves[0]["catalogEntry"];
    ensure!(release["version"] == "1.0.0", "{registration}");
    ensure!(
        release["dependencyGroups"][0]["dependencies"][0]["range"] == "[1.1.0, )",
        "{release}"
    );
    ensure!(
        leaves[1]["catalogEntry"]["version"] == "2.0.0-beta.1",
        "{registration}"
    );
    let content = http()
        .get(
            release["packageContent"]
                .as_str()
                .context("no packageContent")?,
        )
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .bytes()
        .await?;
    ensure!(
        content == std::fs::read(&greet)?,
        "the flat container's nupkg differs"
    );
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&content));
    ensure!(release["packageHash"] == hash.as_str(), "{release}");
    // Search shows the downloads the usage figures counted (the nupkg was just fetched).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let search = loop {
        let search = get_json(&node, "/nuget/nuget/v3/search?q=greet").await?;
        let counted = search["data"][0]["versions"]
            .as_array()
            .and_then(|versions| versions.iter().find(|v| v["version"] == "1.0.0"))
            .and_then(|v| v["downloads"].as_u64())
            .unwrap_or(0);
        if counted >= 1 && search["data"][0]["totalDownloads"].as_u64() >= Some(counted) {
            break search;
        }
        ensure!(std::time::Instant::now() < deadline, "{search}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    ensure!(
        search["totalHits"] == 1 && search["data"][0]["version"] == "1.0.0",
        "{search}"
    );
    // Words of the description find it too (the search index reads the .nuspec).
    let described = get_json(&node, "/nuget/nuget/v3/search?q=made%20nuget").await?;
    ensure!(
        described["data"]
            .as_array()
            .is_some_and(|data| data.iter().any(|p| p["id"] == "Arca.Greet")),
        "{described}"
    );
    let search = get_json(&node, "/nuget/nuget/v3/search?q=greet&prerelease=true").await?;
    ensure!(search["data"][0]["version"] == "2.0.0-beta.1", "{search}");

    // `nuget delete` unlists: the version leaves searches and "latest", and stays installable.
    nuget
        .run(
            dir,
            &[
                "delete",
                "Arca.Words",
                "1.1.0",
                "-Source",
                "arca-nuget",
                "-ApiKey",
                &node.admin_token,
                "-ConfigFile",
                "NuGet.Config",
            ],
        )?
        .ok()?;
    // Its one download is the real client's install of it above.
    let search = get_json(&node, "/nuget/nuget/v3/search?q=words").await?;
    ensure!(
        search["data"][0]["versions"]
            == json!([{
                "version": "1.0.0",
                "downloads": 1,
                "@id": format!("{}/nuget/nuget/v3/registration/arca.words/1.0.0.json", node.url),
            }]),
        "{search}"
    );
    let leaf = get_json(&node, "/nuget/nuget/v3/registration/arca.words/1.1.0.json").await?;
    ensure!(leaf["listed"] == false, "{leaf}");
    let installed = install(&nuget, dir, "Arca.Greet")?;
    ensure!(
        installed == ["Arca.Greet.1.0.0", "Arca.Words.1.1.0"],
        "{installed:?}"
    );

    // A remote registry over the feed's v3 service index, and a virtual registry over it and a
    // local one.
    create_registry(
        &node,
        remote_registry(
            "nuget-remote",
            "NUGET",
            &format!("{}/nuget/nuget/v3/index.json", node.url),
            &node.admin_token,
            60,
        ),
    )
    .await?;
    create_registry(&node, local_registry("nuget-local", "NUGET")).await?;
    create_registry(
        &node,
        virtual_registry(
            "nuget-all",
            "NUGET",
            &["nuget-local", "nuget-remote"],
            Some("nuget-local"),
        ),
    )
    .await?;
    configure(&node, dir, "nuget-all")?;
    let installed = install(&nuget, dir, "Arca.Greet")?;
    ensure!(
        installed == ["Arca.Greet.1.0.0", "Arca.Words.1.1.0"],
        "{installed:?}"
    );
    let cached = get_json(&node, "/api/v1/registries/nuget-remote/packages/arca.greet").await?;
    ensure!(cached.to_string().contains("1.0.0"), "{cached}");

    // The firewall blocks a denied version's package.
    let policy = http()
        .put(format!(
            "{}/api/v1/registries/nuget/firewall-policy",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .json(&json!({ "deny": [{ "package": "arca.words", "version": "1.0.0" }] }))
        .send()
        .await?;
    ensure!(policy.status() == StatusCode::OK, "{}", policy.status());
    let blocked = http()
        .get(format!("{}/nuget/nuget/package/Arca.Words/1.0.0", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(
        blocked.status() == StatusCode::FORBIDDEN,
        "{}",
        blocked.status()
    );

    // Packages that are not what they say are refused, with the reason nuget prints, and nothing
    // is stored. nuget itself refuses to send what it cannot read, so the one it sends has the
    // package parts it looks for and a manifest named after another id.
    let nuspec = |id: &str, version: &str, description: &str| {
        format!(
            "<package><metadata><id>{id}</id><version>{version}</version><authors>a</authors>\
             {description}</metadata></package>"
        )
    };
    let misnamed = zip_of(&[
        (
            "_rels/.rels",
            b"<?xml version=\"1.0\" encoding=\"utf-8\"?><Relationships \
              xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
              <Relationship Type=\"http://schemas.microsoft.com/packaging/2010/07/manifest\" \
              Target=\"/Other.nuspec\" Id=\"R1\" /></Relationships>",
        ),
        (
            "[Content_Types].xml",
            b"<?xml version=\"1.0\" encoding=\"utf-8\"?><Types \
              xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
              <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\" />\
              <Default Extension=\"nuspec\" ContentType=\"application/octet\" /></Types>",
        ),
        (
            "Other.nuspec",
            nuspec("Arca.Bad", "1.0.0", "<description>d</description>").as_bytes(),
        ),
    ])?;
    std::fs::write(dir.join("misnamed.nupkg"), misnamed)?;
    let refused = nuget
        .run(
            dir,
            &[
                "push",
                "misnamed.nupkg",
                "-Source",
                "arca-nuget-all",
                "-ApiKey",
                &node.admin_token,
                "-ConfigFile",
                "NuGet.Config",
            ],
        )?
        .failed()?;
    ensure!(
        refused.all().contains("not named after the id"),
        "{}",
        refused.describe()
    );
    let described = "<description>d</description>";
    for (name, bytes, why) in [
        (
            "bad version",
            zip_of(&[(
                "Arca.Bad.nuspec",
                nuspec("Arca.Bad", "1.x", described).as_bytes(),
            )])?,
            "is not a NuGet version",
        ),
        (
            "no description",
            zip_of(&[(
                "Arca.Bad.nuspec",
                nuspec("Arca.Bad", "1.0.0", "").as_bytes(),
            )])?,
            "has no <description>",
        ),
        (
            "bad id",
            zip_of(&[(
                "..Bad.nuspec",
                nuspec("..Bad", "1.0.0", described).as_bytes(),
            )])?,
            "not a valid package id",
        ),
        (
            "no manifest",
            zip_of(&[("readme.txt", b"hello")])?,
            "has no .nuspec",
        ),
        ("not a zip", b"not a zip".to_vec(), "not a zip archive"),
    ] {
        let response = http()
            .put(format!("{}/nuget/nuget-all/api/v2/package", node.url))
            .header("X-NuGet-ApiKey", &node.admin_token)
            .multipart(reqwest::multipart::Form::new().part(
                "package",
                reqwest::multipart::Part::bytes(bytes).file_name("package"),
            ))
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(
            status == StatusCode::BAD_REQUEST && text.contains(why),
            "{name}: {status} {text}"
        );
    }
    // Through the virtual registry into its publish target, once.
    let push_words = || {
        nuget.run(
            dir,
            &[
                "push",
                "Arca.Words.1.0.0.nupkg",
                "-Source",
                "arca-nuget-all",
                "-ApiKey",
                &node.admin_token,
                "-ConfigFile",
                "NuGet.Config",
            ],
        )
    };
    push_words()?.ok()?;
    let again = push_words()?.failed()?;
    ensure!(
        again.all().contains("already exists"),
        "{}",
        again.describe()
    );
    let anonymous = http()
        .put(format!("{}/nuget/nuget/api/v2/package", node.url))
        .body(std::fs::read(&words_old)?)
        .send()
        .await?;
    ensure!(
        anonymous.status() == StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.status()
    );
    let stored = http()
        .get(format!(
            "{}/api/v1/registries/nuget-local/packages/arca.bad",
            node.url
        ))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    ensure!(
        stored.status() == StatusCode::NOT_FOUND,
        "{}",
        stored.status()
    );
    Ok(())
}
