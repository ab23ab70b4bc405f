//! End-to-end tests of the `arca` CLI against a real `arca-node`: registries, pushing and pulling
//! generic files, listing with pages, copying and deleting versions, metadata, output formats, `login`
//! and tokens. Each test starts its own node.

use std::path::Path;
use std::process::Output;

use arca_protocol::api::{
    CreatedToken, MetadataBody, PackageInfo, PackageSummary, Page, RegistryInfo, TokenInfo,
    VersionInfo, WhoAmI,
};
use arca_protocol::{Grant, PackageType, Role};
use arca_tests::{TestNode, pseudo_random_bytes, sha256_hex};
use serde_json::{Value, json};

/// The command's stdout, after checking that it succeeded.
fn stdout(args: &[&str], output: Output) -> String {
    assert!(
        output.status.success(),
        "arca {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Runs `arca` with the admin token and answers its stdout; the command must succeed.
fn ok(node: &TestNode, args: &[&str]) -> String {
    stdout(args, node.cli(args))
}

/// Runs `arca ... --format json` with the admin token and parses its stdout.
fn json_of(node: &TestNode, args: &[&str]) -> Value {
    let args = [args, &["--format", "json"]].concat();
    let text = ok(node, &args);
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("arca {args:?}: {err}:\n{text}"))
}

/// Runs `arca` with `token` (or none); the command must fail with exit code 1. Answers stderr.
fn fails(node: &TestNode, token: Option<&str>, args: &[&str]) -> String {
    let output = node.cli_with_token(token, args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "arca {args:?} should fail:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8(output.stderr).expect("stderr is UTF-8");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

/// Decodes a JSON value into an API type (a macro, as this crate does not depend on serde itself).
macro_rules! typed {
    ($value:expr $(,)?) => {
        serde_json::from_value($value).expect("the CLI prints the API's JSON types")
    };
}

fn create_generic(node: &TestNode, name: &str) {
    ok(
        node,
        &["registry", "create", name, "--package-type", "GENERIC"],
    );
}

/// Writes `len` pseudo-random bytes to `dir/name` and answers them.
fn write_file(dir: &Path, name: &str, len: usize, seed: u64) -> Vec<u8> {
    let bytes = pseudo_random_bytes(len, seed);
    std::fs::write(dir.join(name), &bytes).expect("write test file");
    bytes
}

fn push(node: &TestNode, registry: &str, file: &Path, package: &str, version: &str) -> Value {
    let file = file.to_str().expect("UTF-8 temp path");
    json_of(
        node,
        &[
            "artifact",
            "push",
            "generic",
            registry,
            file,
            "--package",
            package,
            "--version",
            version,
        ],
    )
}

#[test]
fn registries_are_created_listed_shown_and_deleted() {
    let node = TestNode::start().expect("node starts");

    let created: RegistryInfo = typed!(json_of(
        &node,
        &[
            "registry",
            "create",
            "releases",
            "--package-type",
            "generic",
            "--description",
            "release builds",
            "--immutable",
        ],
    ));
    assert_eq!(created.name, "releases");
    assert_eq!(created.package_type, PackageType::Generic);
    assert_eq!(created.description, "release builds");
    assert!(created.immutable);
    assert!(!created.allow_anonymous_read);
    assert_eq!(created.package_count, 0);

    ok(
        &node,
        &[
            "reg",
            "create",
            "public",
            "--package-type",
            "GENERIC",
            "--allow-anonymous-read",
        ],
    );

    let listed: Vec<RegistryInfo> = typed!(json_of(&node, &["registry", "list"]));
    let mut names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["public", "releases"]);

    let table = ok(&node, &["registry", "list"]);
    for expected in [
        "NAME",
        "TYPE",
        "releases",
        "public",
        "GENERIC",
        "release builds",
    ] {
        assert!(
            table.contains(expected),
            "{expected:?} missing from:\n{table}"
        );
    }

    let shown: RegistryInfo = typed!(json_of(&node, &["reg", "get", "public"]));
    assert_eq!(shown.name, "public");
    assert!(shown.allow_anonymous_read);

    let deleted = json_of(&node, &["registry", "delete", "public"]);
    assert_eq!(
        deleted,
        json!({"deleted": {"kind": "registry", "registry": "public"}})
    );
    let table = ok(&node, &["registry", "delete", "releases"]);
    assert!(table.contains("deleted registry releases"), "{table}");

    let stderr = fails(
        &node,
        Some(&node.admin_token),
        &["registry", "get", "public"],
    );
    assert!(
        stderr.contains("404") && stderr.contains("NOT_FOUND"),
        "{stderr}"
    );
    let listed: Vec<RegistryInfo> = typed!(json_of(&node, &["registry", "list"]));
    assert!(listed.is_empty(), "{listed:?}");
}

#[test]
fn a_registry_is_changed_in_place_and_what_does_not_fit_its_kind_is_refused() {
    let node = TestNode::start().expect("node");
    create_generic(&node, "files");
    let changed = json_of(
        &node,
        &[
            "registry",
            "update",
            "files",
            "--description",
            "build outputs",
            "--immutable",
            "true",
            "--allow-anonymous-read",
            "true",
        ],
    );
    assert_eq!(changed["description"], "build outputs");
    assert_eq!(changed["immutable"], true);
    assert_eq!(changed["allow_anonymous_read"], true);
    assert_eq!(changed["allow_redeploy"], false, "not given: unchanged");
    let again = json_of(
        &node,
        &["registry", "update", "files", "--immutable", "false"],
    );
    assert_eq!(again["immutable"], false);
    assert_eq!(again["description"], "build outputs");
    let refused = fails(
        &node,
        Some(&node.admin_token),
        &[
            "registry",
            "update",
            "files",
            "--upstream",
            "https://example.invalid",
        ],
    );
    assert!(
        refused.contains("only a remote registry has an upstream"),
        "{refused}"
    );

    // A remote registry's upstream changes; its password stays unless a new one is given.
    let output = node
        .cli_command(
            Some(&node.admin_token),
            &[
                "registry",
                "create",
                "proxy",
                "--package-type",
                "NPM",
                "--upstream",
                "http://127.0.0.1:9/a",
                "--upstream-user",
                "u",
                "--upstream-password-env",
                "UPSTREAM_SECRET",
                "--metadata-ttl",
                "60",
            ],
        )
        .env("UPSTREAM_SECRET", "s3cret")
        .output()
        .expect("arca");
    assert!(output.status.success(), "{output:?}");
    let moved = json_of(
        &node,
        &[
            "registry",
            "update",
            "proxy",
            "--upstream",
            "http://127.0.0.1:9/b",
            "--upstream-user",
            "u",
        ],
    );
    assert_eq!(moved["upstream"]["url"], "http://127.0.0.1:9/b");
    assert_eq!(moved["upstream"]["has_password"], true);
    assert_eq!(moved["upstream"]["metadata_ttl_seconds"], 60);
    let refused = fails(
        &node,
        Some(&node.admin_token),
        &["registry", "update", "proxy", "--members", "files"],
    );
    assert!(
        refused.contains("only a virtual registry has members"),
        "{refused}"
    );
}

#[test]
fn a_large_file_is_pushed_and_pulled_back_intact() {
    let node = TestNode::start().expect("node starts");
    create_generic(&node, "files");
    let dir = tempfile::tempdir().expect("temp dir");
    let content = write_file(dir.path(), "tool.bin", 3 * 1024 * 1024 + 123, 7);
    let source = dir.path().join("tool.bin");

    let pushed = push(&node, "files", &source, "org-tool", "1.0.0");
    assert_eq!(pushed["registry"], "files");
    assert_eq!(pushed["package"], "org-tool");
    assert_eq!(pushed["version"], "1.0.0");
    assert_eq!(pushed["filename"], "tool.bin");
    assert_eq!(pushed["size"], content.len() as u64);
    assert_eq!(pushed["sha256"], sha256_hex(&content));

    // Into a directory: DEST/FILENAME. Piped stderr means no progress bar.
    let out_dir = tempfile::tempdir().expect("temp dir");
    let dest = out_dir.path().to_str().expect("UTF-8 temp path");
    let args = [
        "artifact",
        "pull",
        "generic",
        "files",
        "org-tool/1.0.0/tool.bin",
        dest,
    ];
    let output = node.cli(&args);
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&args, output);
    let pulled = std::fs::read(out_dir.path().join("tool.bin")).expect("pulled file");
    assert!(pulled == content, "pulled bytes differ from pushed bytes");

    // Into a directory that does not exist yet, named with a trailing slash: created.
    let missing = format!("{dest}/downloads/nested/");
    ok(
        &node,
        &[
            "artifact",
            "pull",
            "generic",
            "files",
            "org-tool/1.0.0/tool.bin",
            &missing,
        ],
    );
    let pulled = std::fs::read(out_dir.path().join("downloads/nested/tool.bin"))
        .expect("pulled into the created directory");
    assert!(pulled == content, "pulled bytes differ from pushed bytes");

    // Into an explicit path, with a name chosen at push time.
    ok(
        &node,
        &[
            "art",
            "push",
            "generic",
            "files",
            source.to_str().expect("UTF-8 temp path"),
            "--package",
            "org-tool",
            "--version",
            "1.0.0",
            "--filename",
            "renamed.bin",
        ],
    );
    let target = out_dir.path().join("copy.bin");
    let answer = json_of(
        &node,
        &[
            "artifact",
            "pull",
            "generic",
            "files",
            "org-tool/1.0.0/renamed.bin",
            target.to_str().expect("UTF-8 temp path"),
        ],
    );
    assert_eq!(answer["size"], content.len() as u64);
    assert!(std::fs::read(&target).expect("pulled file") == content);

    let version: VersionInfo = typed!(json_of(
        &node,
        &[
            "artifact",
            "get",
            "org-tool",
            "--registry",
            "files",
            "--version",
            "1.0.0"
        ],
    ));
    let mut files: Vec<&str> = version.files.iter().map(|f| f.name.as_str()).collect();
    files.sort_unstable();
    assert_eq!(files, ["renamed.bin", "tool.bin"]);
    assert!(
        version
            .files
            .iter()
            .all(|f| f.sha256.to_hex() == sha256_hex(&content))
    );

    let stderr = fails(
        &node,
        Some(&node.admin_token),
        &[
            "artifact",
            "pull",
            "generic",
            "files",
            "org-tool/1.0.0/missing.bin",
            dest,
        ],
    );
    assert!(stderr.contains("404"), "{stderr}");
    assert!(!out_dir.path().join("missing.bin").exists());
}

#[test]
fn artifacts_are_listed_page_by_page() {
    let node = TestNode::start().expect("node starts");
    create_generic(&node, "files");
    create_generic(&node, "other");
    let dir = tempfile::tempdir().expect("temp dir");
    write_file(dir.path(), "a.txt", 1000, 1);
    let file = dir.path().join("a.txt");
    for package in ["alpha", "beta", "gamma"] {
        push(&node, "files", &file, package, "1.0");
    }
    push(&node, "files", &file, "beta", "2.0");
    push(&node, "other", &file, "elsewhere", "0.1");

    let mut seen = Vec::new();
    for (page, expected) in [("1", 2), ("2", 1)] {
        let listing: Page<PackageSummary> = typed!(json_of(
            &node,
            &[
                "artifact",
                "list",
                "--registry",
                "files",
                "--page",
                page,
                "--page-size",
                "2",
            ],
        ));
        assert_eq!(listing.total, 3);
        assert_eq!(listing.page_size, 2);
        assert_eq!(listing.items.len(), expected, "page {page}: {listing:?}");
        assert!(listing.items.iter().all(|p| p.registry == "files"));
        seen.extend(listing.items);
    }
    let mut names: Vec<&str> = seen.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    let beta = seen.iter().find(|p| p.name == "beta").expect("beta listed");
    assert_eq!(beta.version_count, 2);
    assert_eq!(beta.size, 2000);

    let all: Page<PackageSummary> = typed!(json_of(&node, &["artifact", "list"]));
    assert_eq!(all.total, 4);

    let table = ok(&node, &["art", "list", "--registry", "files"]);
    for expected in ["PACKAGE", "alpha", "beta", "gamma", "(3 in total)"] {
        assert!(
            table.contains(expected),
            "{expected:?} missing from:\n{table}"
        );
    }
    assert!(!table.contains("elsewhere"), "{table}");

    // A usage error: clap's exit code 2, before any request.
    let output = node.cli(&["artifact", "list", "--page-size", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("page-size"));
}

#[test]
fn versions_are_copied_and_deleted() {
    let node = TestNode::start().expect("node starts");
    create_generic(&node, "staging");
    create_generic(&node, "prod");
    let dir = tempfile::tempdir().expect("temp dir");
    let content = write_file(dir.path(), "app.tar", 50_000, 3);
    let file = dir.path().join("app.tar");
    push(&node, "staging", &file, "team-app", "1.0");
    push(&node, "staging", &file, "team-app", "2.0");

    let copy: VersionInfo = typed!(json_of(
        &node,
        &["artifact", "copy", "staging/team-app/1.0", "prod"],
    ));
    assert_eq!(copy.registry, "prod");
    assert_eq!(copy.package, "team-app");
    assert_eq!(copy.version, "1.0");
    assert_eq!(copy.files.len(), 1);
    assert_eq!(copy.files[0].sha256.to_hex(), sha256_hex(&content));

    let in_prod: PackageInfo = typed!(json_of(
        &node,
        &["artifact", "get", "team-app", "--registry", "prod"],
    ));
    let versions: Vec<&str> = in_prod
        .versions
        .iter()
        .map(|v| v.version.as_str())
        .collect();
    assert_eq!(versions, ["1.0"]);
    let table = ok(
        &node,
        &["artifact", "get", "team-app", "--registry", "prod"],
    );
    assert!(
        table.contains("VERSION") && table.contains("1.0"),
        "{table}"
    );

    let deleted = json_of(
        &node,
        &[
            "artifact",
            "delete",
            "team-app",
            "--registry",
            "staging",
            "--version",
            "1.0",
        ],
    );
    assert_eq!(
        deleted,
        json!({"deleted": {"kind": "version", "registry": "staging", "package": "team-app", "version": "1.0"}})
    );
    let left: PackageInfo = typed!(json_of(
        &node,
        &["artifact", "get", "team-app", "--registry", "staging"],
    ));
    let versions: Vec<&str> = left.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["2.0"]);
    fails(
        &node,
        Some(&node.admin_token),
        &[
            "artifact",
            "get",
            "team-app",
            "--registry",
            "staging",
            "--version",
            "1.0",
        ],
    );

    let line = ok(
        &node,
        &["artifact", "delete", "team-app", "--registry", "staging"],
    );
    assert!(line.contains("deleted package team-app"), "{line}");
    let stderr = fails(
        &node,
        Some(&node.admin_token),
        &["artifact", "get", "team-app", "--registry", "staging"],
    );
    assert!(stderr.contains("404"), "{stderr}");

    // The copy does not depend on the source.
    let out = dir.path().join("back.tar");
    ok(
        &node,
        &[
            "artifact",
            "pull",
            "generic",
            "prod",
            "team-app/1.0/app.tar",
            out.to_str().expect("UTF-8 temp path"),
        ],
    );
    assert!(std::fs::read(&out).expect("pulled") == content);

    let stderr = fails(
        &node,
        Some(&node.admin_token),
        &["artifact", "copy", "staging-only", "prod"],
    );
    assert!(stderr.contains("REGISTRY/PACKAGE/VERSION"), "{stderr}");
}

#[test]
fn metadata_round_trips_on_registries_packages_and_versions() {
    let node = TestNode::start().expect("node starts");
    create_generic(&node, "files");
    let dir = tempfile::tempdir().expect("temp dir");
    write_file(dir.path(), "f.bin", 100, 5);
    push(&node, "files", &dir.path().join("f.bin"), "lib", "1.0");

    let keys = |body: MetadataBody| body.metadata.into_iter().collect::<Vec<_>>();
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());

    // Registry.
    let set: MetadataBody = typed!(json_of(
        &node,
        &[
            "registry",
            "metadata",
            "set",
            "--registry",
            "files",
            "--metadata",
            "team:infra,url:https://example.test:8443/x",
        ],
    ));
    assert_eq!(
        keys(set),
        [
            pair("team", "infra"),
            pair("url", "https://example.test:8443/x")
        ]
    );
    let got: MetadataBody = typed!(json_of(
        &node,
        &["registry", "metadata", "get", "--registry", "files"],
    ));
    assert_eq!(got.metadata.len(), 2);
    let shown: RegistryInfo = typed!(json_of(&node, &["registry", "get", "files"]));
    assert_eq!(
        shown.metadata.get("team").map(String::as_str),
        Some("infra")
    );
    let after: MetadataBody = typed!(json_of(
        &node,
        &[
            "registry",
            "metadata",
            "delete",
            "--registry",
            "files",
            "--metadata",
            "url:ignored"
        ],
    ));
    assert_eq!(keys(after), [pair("team", "infra")]);
    let table = ok(
        &node,
        &["registry", "metadata", "get", "--registry", "files"],
    );
    assert!(
        table.contains("KEY") && table.contains("team") && table.contains("infra"),
        "{table}"
    );

    // Package.
    let set: MetadataBody = typed!(json_of(
        &node,
        &[
            "artifact",
            "metadata",
            "set",
            "--registry",
            "files",
            "--package",
            "lib",
            "--metadata",
            "owner:alice,tier:gold",
        ],
    ));
    assert_eq!(keys(set), [pair("owner", "alice"), pair("tier", "gold")]);
    let after: MetadataBody = typed!(json_of(
        &node,
        &[
            "artifact",
            "metadata",
            "delete",
            "--registry",
            "files",
            "--package",
            "lib"
        ],
    ));
    assert!(after.metadata.is_empty(), "{after:?}");

    // Version.
    let version_args = [
        "--registry",
        "files",
        "--package",
        "lib",
        "--version",
        "1.0",
    ];
    let set: MetadataBody = typed!(json_of(
        &node,
        &[
            &["artifact", "metadata", "set"],
            &version_args[..],
            &["--metadata", "approved:yes,build:42"]
        ]
        .concat(),
    ));
    assert_eq!(keys(set), [pair("approved", "yes"), pair("build", "42")]);
    let got: MetadataBody = typed!(json_of(
        &node,
        &[&["artifact", "metadata", "get"], &version_args[..]].concat(),
    ));
    assert_eq!(keys(got), [pair("approved", "yes"), pair("build", "42")]);
    let version: VersionInfo = typed!(json_of(
        &node,
        &[
            "artifact",
            "get",
            "lib",
            "--registry",
            "files",
            "--version",
            "1.0"
        ],
    ));
    assert_eq!(
        version.metadata.get("build").map(String::as_str),
        Some("42")
    );
    let after: MetadataBody = typed!(json_of(
        &node,
        &[
            &["artifact", "metadata", "delete"],
            &version_args[..],
            &["--metadata", "approved"]
        ]
        .concat(),
    ));
    assert_eq!(keys(after), [pair("build", "42")]);
    let package_meta: MetadataBody = typed!(json_of(
        &node,
        &[
            "artifact",
            "metadata",
            "get",
            "--registry",
            "files",
            "--package",
            "lib"
        ],
    ));
    assert!(
        package_meta.metadata.is_empty(),
        "version keys stay on the version"
    );

    let stderr = fails(
        &node,
        Some(&node.admin_token),
        &[
            "registry",
            "metadata",
            "set",
            "--registry",
            "files",
            "--metadata",
            ":novalue",
        ],
    );
    assert!(stderr.contains("key is empty"), "{stderr}");
}

#[test]
fn yaml_output_parses_as_yaml() {
    let node = TestNode::start().expect("node starts");
    create_generic(&node, "files");
    let text = ok(&node, &["registry", "get", "files", "--format", "yaml"]);
    let value: Value = serde_yaml_ng::from_str(&text).expect("valid YAML");
    let info: RegistryInfo = typed!(value);
    assert_eq!(info.name, "files");
    assert_eq!(info.package_type, PackageType::Generic);

    let text = ok(&node, &["--format", "yaml", "registry", "list"]);
    let list: Vec<RegistryInfo> =
        typed!(serde_yaml_ng::from_str::<Value>(&text).expect("valid YAML"));
    assert_eq!(list.len(), 1);
}

#[test]
fn login_saves_server_and_token_for_later_commands() {
    let node = TestNode::start().expect("node starts");
    let output = node.cli_with_token(
        None,
        &[
            "login",
            "--server",
            &node.url,
            "--token",
            &node.admin_token,
            "--format",
            "json",
        ],
    );
    let who: WhoAmI = typed!(
        serde_json::from_str(&stdout(&["login"], output)).expect("login prints whoami JSON"),
    );
    assert_eq!(
        who.token.map(|t| t.scopes),
        Some(vec![Grant::global(Role::Admin)])
    );

    let config = node.data_dir().join("cli-home/.config/arca/config.toml");
    let text = std::fs::read_to_string(&config).expect("config written");
    assert!(
        text.contains(&node.admin_token) && text.contains(&node.url),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config)
            .expect("config")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // No ARCA_TOKEN now: the saved token is used.
    let args = ["whoami", "--format", "json"];
    let who: WhoAmI = typed!(
        serde_json::from_str(&stdout(&args, node.cli_with_token(None, &args))).expect("JSON"),
    );
    assert!(who.token.is_some(), "{who:?}");
    let args = [
        "registry",
        "create",
        "after-login",
        "--package-type",
        "GENERIC",
    ];
    stdout(&args, node.cli_with_token(None, &args));

    // A token that the server does not know is refused at login, and nothing is overwritten.
    let stderr = fails(&node, None, &["login", "--token", "not-a-token"]);
    assert!(
        stderr.to_lowercase().contains("unauthorized") || stderr.contains("401"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&config).expect("config"), text);
}

#[test]
fn a_wrong_token_is_refused() {
    let node = TestNode::start().expect("node starts");
    let stderr = fails(&node, Some("definitely-wrong"), &["registry", "list"]);
    assert!(
        stderr.contains("401") && stderr.to_lowercase().contains("unauthorized"),
        "{stderr}"
    );
}

#[test]
fn created_tokens_work_with_their_role_until_revoked() {
    let node = TestNode::start().expect("node starts");
    create_generic(&node, "files");

    let created: CreatedToken = typed!(json_of(
        &node,
        &["token", "create", "ci", "--role", "write"],
    ));
    assert_eq!(created.info.name, "ci");
    assert_eq!(created.info.scopes, vec![Grant::global(Role::Write)]);
    let secret = created.token.as_str();
    // A name is optional: the token is labelled with when it was made.
    let unnamed: CreatedToken = typed!(json_of(&node, &["token", "create", "--role", "read"]));
    assert!(
        unnamed.info.name.starts_with("token-"),
        "{}",
        unnamed.info.name
    );

    let listed: Vec<TokenInfo> = typed!(json_of(&node, &["token", "list"]));
    assert!(
        listed
            .iter()
            .any(|t| t.id == created.info.id && t.scopes == created.info.scopes)
    );
    let table = ok(&node, &["token", "list"]);
    assert!(
        table.contains(&created.info.id) && !table.contains(secret),
        "{table}"
    );

    // The new token pushes (write) ...
    let dir = tempfile::tempdir().expect("temp dir");
    write_file(dir.path(), "w.bin", 2048, 9);
    let path = dir.path().join("w.bin");
    let args = [
        "artifact",
        "push",
        "generic",
        "files",
        path.to_str().expect("UTF-8 temp path"),
        "--package",
        "p",
        "--version",
        "1",
    ];
    stdout(&args, node.cli_with_token(Some(secret), &args));
    let who_args = ["whoami", "--format", "json"];
    let who: WhoAmI = typed!(
        serde_json::from_str(&stdout(
            &who_args,
            node.cli_with_token(Some(secret), &who_args)
        ))
        .expect("JSON"),
    );
    assert_eq!(who.token.map(|t| t.id), Some(created.info.id.clone()));

    // ... but may not administer.
    let stderr = fails(
        &node,
        Some(secret),
        &["registry", "create", "nope", "--package-type", "GENERIC"],
    );
    assert!(stderr.contains("403"), "{stderr}");

    let revoked = json_of(&node, &["token", "revoke", &created.info.id]);
    assert_eq!(
        revoked,
        json!({"deleted": {"kind": "token", "id": created.info.id}})
    );
    let stderr = fails(&node, Some(secret), &["registry", "list"]);
    assert!(stderr.contains("401"), "{stderr}");
}
