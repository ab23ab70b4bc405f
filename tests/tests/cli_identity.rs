//! End-to-end tests of `arca user`, `arca role`, `arca token` (scopes, owners, expiry, rotation) and
//! `arca login --username` against a real `arca-node`: what each command prints in JSON, and that the
//! server then behaves accordingly.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use arca_protocol::api::{CreatedToken, TokenInfo, WhoAmI};
use arca_protocol::identity::{UserInfo, UserKind};
use arca_protocol::{Grant, Role};
use arca_tests::{TestNode, binary};
use serde_json::Value;

const PASSWORD: &str = "s3cret passphrase";

/// Runs `arca` against `node` with `token` (or none) and `input` on stdin, with its own HOME.
fn arca(node: &TestNode, token: Option<&str>, args: &[&str], input: &str) -> Output {
    let home = node.data_dir().join("cli-home");
    std::fs::create_dir_all(&home).expect("home");
    let mut command = Command::new(binary("arca"));
    command
        .args(args)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("ARCA_SERVER", &node.url)
        .env_remove("ARCA_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(token) = token {
        command.env("ARCA_TOKEN", token);
    }
    let mut child = command.spawn().expect("running arca");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("writing stdin");
    child.wait_with_output().expect("arca output")
}

/// `arca ... --format json` as `token`, which must succeed; its stdout parsed.
fn json_as(node: &TestNode, token: &str, args: &[&str], input: &str) -> Value {
    let args = [args, &["--format", "json"]].concat();
    let output = arca(node, Some(token), &args, input);
    assert!(
        output.status.success(),
        "arca {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

fn admin_json(node: &TestNode, args: &[&str]) -> Value {
    json_as(node, &node.admin_token, args, "")
}

/// `arca ...` as `token`, which must fail; its stderr.
fn fails(node: &TestNode, token: Option<&str>, args: &[&str], input: &str) -> String {
    let output = arca(node, token, args, input);
    assert_eq!(
        output.status.code(),
        Some(1),
        "arca {args:?} should fail:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stderr).expect("UTF-8")
}

macro_rules! typed {
    ($value:expr $(,)?) => {
        serde_json::from_value($value).expect("the CLI prints the API's JSON types")
    };
}

#[test]
fn users_roles_and_tokens_from_the_command_line() {
    let node = TestNode::start().expect("node starts");
    admin_json(
        &node,
        &["registry", "create", "team", "--package-type", "GENERIC"],
    );

    // A person with a password (from stdin) and a service account.
    let erin: UserInfo = typed!(json_as(
        &node,
        &node.admin_token,
        &["user", "create", "erin", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    ));
    assert_eq!(erin.kind, UserKind::Human);
    assert!(erin.has_password && !erin.disabled && erin.grants.is_empty());
    let bot: UserInfo = typed!(admin_json(&node, &["user", "create", "bot", "--service"]));
    assert_eq!(bot.kind, UserKind::Service);
    assert!(!bot.has_password);
    let users: Vec<UserInfo> = typed!(admin_json(&node, &["user", "list"]));
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, vec!["bot", "erin"]);

    // Roles: global viewer for erin, contributor on one registry for the bot.
    let erin: UserInfo = typed!(admin_json(
        &node,
        &["role", "grant", "viewer", "--user", "erin"]
    ));
    assert_eq!(erin.grants, vec![Grant::global(Role::Read)]);
    admin_json(
        &node,
        &[
            "role",
            "grant",
            "contributor",
            "--user",
            "bot",
            "--registry",
            "team",
        ],
    );
    let listed = admin_json(&node, &["role", "list", "--user", "bot"]);
    assert_eq!(
        listed["grants"],
        serde_json::json!([{"role": "contributor", "registry": "team"}])
    );
    // A role clap does not know is a usage error (exit code 2).
    let unknown = arca(
        &node,
        Some(&node.admin_token),
        &["role", "grant", "owner", "--user", "bot"],
        "",
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown role"));

    // A token for the bot, scoped and expiring; whoami through it shows the intersection.
    let created: CreatedToken = typed!(admin_json(
        &node,
        &[
            "token",
            "create",
            "--name",
            "deploy",
            "--user",
            "bot",
            "--scope",
            "team:admin",
            "--expires-in",
            "30d",
        ],
    ));
    assert_eq!(created.info.owner.as_deref(), Some("bot"));
    assert_eq!(created.info.scopes, vec![Grant::on("team", Role::Admin)]);
    let expires_at = created.info.expires_at.expect("expiry");
    assert!(
        expires_at > created.info.created_at + 29 * 24 * 3600 * 1000
            && expires_at <= created.info.created_at + 30 * 24 * 3600 * 1000 + 1000,
        "{created:?}"
    );
    let who: WhoAmI = typed!(json_as(&node, &created.token, &["whoami"], ""));
    assert_eq!(who.user.as_deref(), Some("bot"));
    assert_eq!(who.grants, vec![Grant::on("team", Role::Write)]);

    // Rotation: the old secret stops working, the new one works.
    let rotated: CreatedToken = typed!(admin_json(&node, &["token", "rotate", &created.info.id]));
    assert_eq!(rotated.info.id, created.info.id);
    let stderr = fails(&node, Some(&created.token), &["whoami"], "");
    assert!(stderr.contains("401"), "{stderr}");
    let tokens: Vec<TokenInfo> = typed!(admin_json(&node, &["token", "list"]));
    assert!(tokens.iter().any(|t| t.id == created.info.id));
    let _: WhoAmI = typed!(json_as(&node, &rotated.token, &["whoami"], ""));

    // Disabling the bot stops its token; enabling brings it back.
    let disabled: UserInfo = typed!(admin_json(&node, &["user", "disable", "bot"]));
    assert!(disabled.disabled);
    let stderr = fails(&node, Some(&rotated.token), &["whoami"], "");
    assert!(stderr.contains("disabled"), "{stderr}");
    admin_json(&node, &["user", "enable", "bot"]);
    let _: WhoAmI = typed!(json_as(&node, &rotated.token, &["whoami"], ""));

    // `arca login --username` trades the password for a token and saves it.
    let logged_in = arca(
        &node,
        None,
        &[
            "login",
            "--username",
            "erin",
            "--password-stdin",
            "--format",
            "json",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        logged_in.status.success(),
        "{}",
        String::from_utf8_lossy(&logged_in.stderr)
    );
    let who: WhoAmI = typed!(serde_json::from_slice(&logged_in.stdout).expect("JSON"));
    assert_eq!(who.user.as_deref(), Some("erin"));
    let saved = arca(&node, None, &["whoami", "--format", "json"], "");
    assert!(saved.status.success());
    let who: WhoAmI = typed!(serde_json::from_slice(&saved.stdout).expect("JSON"));
    assert_eq!(who.user.as_deref(), Some("erin"));
    assert_eq!(
        who.token.and_then(|t| t.owner).as_deref(),
        Some("erin"),
        "a login token owned by erin"
    );
    let stderr = fails(
        &node,
        None,
        &["login", "--username", "erin", "--password-stdin"],
        "wrong password\n",
    );
    assert!(stderr.contains("401"), "{stderr}");

    // Changing the password through the CLI; the old one no longer logs in.
    let stderr = fails(
        &node,
        Some(&node.admin_token),
        &["user", "passwd", "erin"],
        "",
    );
    assert!(stderr.contains("no password"), "{stderr}");
    let stderr = fails(
        &node,
        Some(&node.admin_token),
        &["user", "passwd", "erin"],
        "short\n",
    );
    assert!(stderr.contains("400") && stderr.contains("8"), "{stderr}");
    json_as(
        &node,
        &node.admin_token,
        &["user", "passwd", "erin"],
        "another long password\n",
    );
    let stderr = fails(
        &node,
        None,
        &["login", "--username", "erin", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(stderr.contains("401"), "{stderr}");

    // Revoking the role and deleting users; a deleted user's tokens go too.
    let erin: UserInfo = typed!(admin_json(
        &node,
        &["role", "revoke", "viewer", "--user", "erin"]
    ));
    assert!(erin.grants.is_empty());
    let deleted = admin_json(&node, &["user", "delete", "bot"]);
    assert_eq!(deleted["deleted"]["name"], "bot");
    let stderr = fails(&node, Some(&rotated.token), &["whoami"], "");
    assert!(stderr.contains("401"), "{stderr}");
    let stderr = fails(
        &node,
        Some(&node.admin_token),
        &["token", "revoke", &created.info.id],
        "",
    );
    assert!(stderr.contains("404"), "{stderr}");
}
