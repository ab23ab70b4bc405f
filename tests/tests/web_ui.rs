//! The web UI under `/ui/`: in Debian's headless chromium (driven by playwright-core, see
//! `tests/browser/web_ui.cjs`) as an admin and a viewer use it, with the real npm publishing through
//! the setup it shows; and over plain HTTP, the rules every page and form keeps: sessions that stand
//! for a token and end with it, CSRF values and origins checked on every post, the API's RBAC on
//! every page and action, anonymous browsing of registries that allow it, and nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use arca_tests::TestNode;
use arca_tests::clients::{in_ci, require_client, run_command};
use reqwest::Method;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

/// Creates user `name` with `PASSWORD` and `grant`.
async fn user(node: &TestNode, name: &str, grant: serde_json::Value) -> Result<()> {
    node.api_ok(
        &node.admin_token,
        Method::POST,
        "/api/v1/users",
        Some(json!({"name": name, "password": PASSWORD})),
    )
    .await?;
    node.api_ok(
        &node.admin_token,
        Method::PUT,
        &format!("/api/v1/users/{name}/roles"),
        Some(grant),
    )
    .await?;
    Ok(())
}

/// Where playwright-core was installed by `scripts/install-clients.sh`.
fn browser_clients() -> PathBuf {
    std::env::var_os("ARCA_BROWSER_CLIENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/arca-browser-clients"))
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_and_a_viewer_use_the_web_ui_in_a_real_browser() -> Result<()> {
    const TEST: &str = "an_admin_and_a_viewer_use_the_web_ui_in_a_real_browser";
    let (Some(chromium), Some(node_js), Some(_npm)) = (
        require_client("chromium", TEST),
        require_client("node", TEST),
        require_client("npm", TEST),
    ) else {
        return Ok(());
    };
    let playwright = browser_clients()
        .join("node_modules")
        .join("playwright-core");
    if !playwright.exists() {
        ensure!(
            !in_ci(),
            "{TEST}: playwright-core is not in {} and CI=true; `bash scripts/install-clients.sh` \
             installs it",
            playwright.display()
        );
        eprintln!("SKIPPED {TEST}: playwright-core is not installed");
        return Ok(());
    }
    let node = TestNode::start()?;
    user(&node, "alice", json!({"role": "admin"})).await?;
    user(&node, "victor", json!({"role": "viewer"})).await?;
    let screenshots = repository_root().join("target").join("web-ui-screenshots");
    let script = repository_root().join("tests/browser/web_ui.cjs");
    let mut command = Command::new(node_js);
    command
        .arg(&script)
        .env("ARCA_SERVER", &node.url)
        .env("ARCA_ADMIN_USER", "alice")
        .env("ARCA_VIEWER_USER", "victor")
        .env("ARCA_PASSWORD", PASSWORD)
        .env("ARCA_SCREENSHOTS", &screenshots)
        .env("ARCA_BROWSER_CLIENTS", browser_clients())
        .env("CHROMIUM", chromium);
    let output = run_command(&mut command)?;
    println!("{}", output.all());
    output.ok()?;
    for page in [
        "sign-in", "registry", "search", "version", "audit", "cluster", "access",
    ] {
        let shot = screenshots.join(format!("{page}.png"));
        let size = std::fs::metadata(&shot)
            .with_context(|| format!("screenshot {}", shot.display()))?
            .len();
        ensure!(size > 1000, "{} is only {size} bytes", shot.display());
    }
    Ok(())
}

/// A browser's view of the UI without the browser: cookies kept by hand, redirects not followed.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

/// An answer: status, `Location`, body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(base: &str) -> Result<Browser> {
        Ok(Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            base: base.to_string(),
            cookies: Vec::new(),
        })
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let Some((pair, _)) = value.to_str().unwrap_or_default().split_once(';') else {
                continue;
            };
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            self.cookies.retain(|(kept, _)| kept != name);
            if !value.is_empty() {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
    }

    async fn answer(&mut self, request: reqwest::RequestBuilder) -> Result<Answer> {
        let response = request.header(COOKIE, self.cookie_header()).send().await?;
        self.keep_cookies(&response);
        Ok(Answer {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_string),
            body: response.text().await?,
        })
    }

    async fn get(&mut self, path: &str) -> Result<Answer> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.answer(request).await
    }

    /// Posts `fields` as a form from the node's own origin.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Result<Answer> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(ORIGIN, &self.base)
            .form(fields);
        self.answer(request).await
    }

    /// The CSRF value the forms of `path` carry.
    async fn csrf(&mut self, path: &str) -> Result<String> {
        let page = self.get(path).await?;
        let marker = "name=\"csrf\" value=\"";
        let start = page.body.find(marker).context("no form on the page")? + marker.len();
        let end = page.body[start..].find('"').context("unterminated value")?;
        Ok(page.body[start..start + end].to_string())
    }

    async fn sign_in(&mut self, user: &str, password: &str) -> Result<Answer> {
        let csrf = self.csrf("/ui/").await?;
        self.post(
            "/ui/-/signin",
            &[("csrf", &csrf), ("user", user), ("password", password)],
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_csrf_and_rbac_hold_on_every_form_and_page() -> Result<()> {
    let node = TestNode::start()?;
    for (name, anonymous) in [("public", true), ("private", false)] {
        node.api_ok(
            &node.admin_token,
            Method::POST,
            "/api/v1/registries",
            Some(
                json!({"name": name, "package_type": "GENERIC", "allow_anonymous_read": anonymous}),
            ),
        )
        .await?;
        node.push_generic(name, "tool/1.0.0/tool.txt").await?;
    }

    user(&node, "alice", json!({"role": "admin"})).await?;
    user(
        &node,
        "victor",
        json!({"role": "viewer", "registry": "private"}),
    )
    .await?;

    // Browsers are sent from / to the UI; API clients are not.
    let mut anonymous = Browser::new(&node.url)?;
    let root = anonymous
        .answer(anonymous.http.get(&node.url).header("accept", "text/html"))
        .await?;
    ensure!(
        root.location.as_deref() == Some("/ui/"),
        "/ -> {:?}",
        root.location
    );
    ensure!(anonymous.get("/").await?.status == 404);

    // Anonymous: the registry that allows anonymous reads, down to its version page; nothing else.
    let home = anonymous.get("/ui/").await?;
    ensure!(home.status == 200 && home.body.contains("Sign in"));
    ensure!(home.body.contains("/ui/public") && !home.body.contains("/ui/private"));
    ensure!(anonymous.get("/ui/public/tool/1.0.0").await?.status == 200);
    for hidden in ["/ui/private", "/ui/private/tool", "/ui/private/tool/1.0.0"] {
        ensure!(anonymous.get(hidden).await?.status == 401, "{hidden}");
    }
    ensure!(anonymous.get("/ui/-/audit").await?.status == 401);
    let search = anonymous.get("/ui/-/search?q=tool").await?;
    ensure!(search.body.contains("/ui/public/tool/") && !search.body.contains("/ui/private/"));

    // A wrong password is refused, with the form's CSRF value or not.
    let refused = anonymous.sign_in("alice", "wrong").await?;
    ensure!(refused.status == 401, "wrong password: {}", refused.status);
    let forged_sign_in = anonymous
        .post(
            "/ui/-/signin",
            &[
                ("csrf", "made-up"),
                ("user", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await?;
    ensure!(forged_sign_in.status == 403);

    // A viewer of `private` reads it but may not quarantine there, whatever the form carries.
    let mut viewer = Browser::new(&node.url)?;
    let signed_in = viewer.sign_in("victor", PASSWORD).await?;
    ensure!(signed_in.status == 303, "sign-in: {}", signed_in.status);
    let cookie = viewer
        .cookies
        .iter()
        .find(|(name, _)| name == "arca_session")
        .context("no session cookie")?
        .clone();
    let page = viewer.get("/ui/private/tool/1.0.0").await?;
    ensure!(page.status == 200 && page.body.contains("victor"));
    ensure!(!page.body.contains("Quarantine") && !page.body.contains("section class=\"admin\""));
    let csrf = viewer.csrf("/ui/private/tool/1.0.0").await?;
    let quarantine = [
        ("csrf", csrf.as_str()),
        ("package", "tool"),
        ("version", "1.0.0"),
        ("reason", "viewer"),
    ];
    ensure!(
        viewer
            .post("/ui/-/r/private/quarantine", &quarantine)
            .await?
            .status
            == 403
    );
    ensure!(viewer.get("/ui/-/registries").await?.status == 403);

    // An admin's session: forms need its CSRF value and the node's own origin.
    let mut admin = Browser::new(&node.url)?;
    ensure!(admin.sign_in("alice", PASSWORD).await?.status == 303);
    let csrf = admin.csrf("/ui/private/tool/1.0.0").await?;
    let quarantine = [
        ("csrf", csrf.as_str()),
        ("package", "tool"),
        ("version", "1.0.0"),
        ("reason", "checked by hand"),
    ];
    let forged = admin
        .post(
            "/ui/-/r/private/quarantine",
            &[
                ("csrf", "0123456789abcdef0123456789abcdef"),
                ("package", "tool"),
                ("version", "1.0.0"),
            ],
        )
        .await?;
    ensure!(forged.status == 403, "forged CSRF value: {}", forged.status);
    let cross_origin = admin
        .answer(
            admin
                .http
                .post(format!("{}/ui/-/r/private/quarantine", node.url))
                .header(ORIGIN, "http://127.0.0.1:1")
                .form(&quarantine),
        )
        .await?;
    ensure!(
        cross_origin.status == 403,
        "another origin: {}",
        cross_origin.status
    );
    let done = admin
        .post("/ui/-/r/private/quarantine", &quarantine)
        .await?;
    ensure!(
        done.status == 303,
        "quarantine: {} {}",
        done.status,
        done.body
    );
    let explained = node
        .api_ok(
            &node.admin_token,
            Method::GET,
            "/api/v1/registries/private/firewall/explain?package=tool&version=1.0.0",
            None,
        )
        .await?;
    ensure!(
        explained["quarantine"]["reason"] == "checked by hand"
            && explained["quarantine"]["by"] == "alice",
        "{explained}"
    );

    // The audit trail names the user behind the form, with what was done (the detail is settled
    // after the answer, so it is waited for), and the refused posts.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let audit = node
            .api_ok(
                &node.admin_token,
                Method::GET,
                "/api/v1/audit?registry=private&action=quarantine",
                None,
            )
            .await?;
        let events = audit["events"].as_array().context("events")?;
        let recorded = events.iter().any(|e| {
            e["actor"] == "alice"
                && e["result"] == 303
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("quarantine tool@1.0.0: checked by hand"))
        });
        let refused = events.iter().filter(|e| e["result"] == 403).count();
        if recorded && refused >= 3 {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the audit trail lacks the quarantine or the 3 refused posts: {audit}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Policies are edited as the API takes them: malformed JSON is refused, a policy is stored.
    let csrf = admin.csrf("/ui/private").await?;
    let malformed = admin
        .post(
            "/ui/-/r/private/cleanup-policy",
            &[("csrf", &csrf), ("policy", "{\"rules\": [")],
        )
        .await?;
    ensure!(
        malformed.status == 400,
        "malformed policy: {}",
        malformed.status
    );
    let policy = r#"{"rules": [{"name": "old", "keep_last": 3}]}"#;
    let saved = admin
        .post(
            "/ui/-/r/private/cleanup-policy",
            &[("csrf", &csrf), ("policy", policy)],
        )
        .await?;
    ensure!(
        saved.status == 303,
        "cleanup policy: {} {}",
        saved.status,
        saved.body
    );
    let stored = node
        .api_ok(
            &node.admin_token,
            Method::GET,
            "/api/v1/registries/private/cleanup-policy",
            None,
        )
        .await?;
    ensure!(stored["rules"][0]["keep_last"] == 3, "{stored}");

    // Settings change in place: `private` opens to anonymous readers, and only its admin may.
    let viewer_csrf = viewer.csrf("/ui/").await?;
    let settings = [
        ("csrf", viewer_csrf.as_str()),
        ("description", "now public"),
        ("allow_anonymous_read", "on"),
    ];
    ensure!(
        viewer
            .post("/ui/-/r/private/settings", &settings)
            .await?
            .status
            == 403
    );
    let csrf = admin.csrf("/ui/private").await?;
    let settings = [
        ("csrf", csrf.as_str()),
        ("description", "now public"),
        ("allow_anonymous_read", "on"),
    ];
    let changed = admin.post("/ui/-/r/private/settings", &settings).await?;
    ensure!(
        changed.status == 303,
        "settings: {} {}",
        changed.status,
        changed.body
    );
    let opened = anonymous.get("/ui/private").await?;
    ensure!(opened.status == 200 && opened.body.contains("now public"));

    // Users and their roles: a viewer may not make one; an admin makes one who can sign in.
    let viewer_csrf = viewer.csrf("/ui/").await?;
    let refused = viewer
        .post(
            "/ui/-/users",
            &[
                ("csrf", &viewer_csrf),
                ("name", "mallory"),
                ("password", PASSWORD),
            ],
        )
        .await?;
    ensure!(
        refused.status == 403,
        "a viewer made a user: {}",
        refused.status
    );
    let csrf = admin.csrf("/ui/-/access").await?;
    let made = admin
        .post(
            "/ui/-/users",
            &[
                ("csrf", &csrf),
                ("name", "carol"),
                ("kind", "human"),
                ("password", PASSWORD),
            ],
        )
        .await?;
    ensure!(
        made.status == 303,
        "create user: {} {}",
        made.status,
        made.body
    );
    let granted = admin
        .post(
            "/ui/-/users/grants",
            &[
                ("csrf", &csrf),
                ("user", "carol"),
                ("role", "viewer"),
                ("registry", "private"),
                ("change", "grant"),
            ],
        )
        .await?;
    ensure!(
        granted.status == 303,
        "grant: {} {}",
        granted.status,
        granted.body
    );
    let mut carol = Browser::new(&node.url)?;
    ensure!(carol.sign_in("carol", PASSWORD).await?.status == 303);
    ensure!(carol.get("/ui/private/tool/1.0.0").await?.status == 200);
    ensure!(
        carol
            .get("/ui/-/access")
            .await?
            .body
            .contains("web session")
    );

    // Cleanup and garbage collection run as dry runs first, for admins only; a token made on the
    // Access page is revoked there.
    let csrf = admin.csrf("/ui/private").await?;
    let cleanup = admin
        .post(
            "/ui/-/r/private/cleanup",
            &[("csrf", &csrf), ("dry_run", "true")],
        )
        .await?;
    ensure!(
        cleanup.status == 200 && cleanup.body.contains("Cleanup of private (dry run)"),
        "cleanup: {} {}",
        cleanup.status,
        cleanup.body
    );
    let gc = admin
        .post("/ui/-/gc", &[("csrf", &csrf), ("dry_run", "true")])
        .await?;
    ensure!(
        gc.status == 200 && gc.body.contains("Garbage collection (dry run)"),
        "gc: {}",
        gc.status
    );
    let carol_csrf = carol.csrf("/ui/").await?;
    ensure!(
        carol
            .post("/ui/-/gc", &[("csrf", &carol_csrf), ("dry_run", "true")])
            .await?
            .status
            == 403
    );
    let made = admin
        .post(
            "/ui/-/tokens",
            &[
                ("csrf", &csrf),
                ("name", "ci"),
                ("role", "viewer"),
                ("registry", "private"),
            ],
        )
        .await?;
    ensure!(
        made.status == 200 && made.body.contains("not shown again"),
        "token: {}",
        made.status
    );
    let tokens = node
        .api_ok(&node.admin_token, Method::GET, "/api/v1/tokens", None)
        .await?;
    let id = tokens
        .as_array()
        .and_then(|tokens| tokens.iter().find(|t| t["name"] == "ci"))
        .and_then(|t| t["id"].as_str())
        .context("the token made on the Access page")?
        .to_string();
    let revoked = admin
        .post("/ui/-/tokens/revoke", &[("csrf", &csrf), ("id", &id)])
        .await?;
    ensure!(revoked.status == 303, "revoke: {}", revoked.status);
    let tokens = node
        .api_ok(&node.admin_token, Method::GET, "/api/v1/tokens", None)
        .await?;
    ensure!(!tokens.to_string().contains(&id), "{tokens}");

    // Through a virtual registry: its pages show the member that serves a package, and a reader
    // of the virtual registry alone finds and opens versions through it.
    node.api_ok(
        &node.admin_token,
        Method::POST,
        "/api/v1/registries",
        Some(json!({"name": "hidden", "package_type": "GENERIC"})),
    )
    .await?;
    node.push_generic("hidden", "gadget/2.0.0/gadget.txt")
        .await?;
    node.api_ok(
        &node.admin_token,
        Method::POST,
        "/api/v1/registries",
        Some(json!({"name": "front", "package_type": "GENERIC", "members": ["hidden"], "kind": "virtual"})),
    )
    .await?;
    user(
        &node,
        "vera",
        json!({"role": "viewer", "registry": "front"}),
    )
    .await?;
    let mut vera = Browser::new(&node.url)?;
    ensure!(vera.sign_in("vera", PASSWORD).await?.status == 303);
    ensure!(vera.get("/ui/hidden/gadget/2.0.0").await?.status == 403);
    let package = vera.get("/ui/front/gadget").await?;
    ensure!(
        package.status == 200
            && package.body.contains("Served from")
            && package.body.contains("/ui/front/gadget/2.0.0"),
        "{} {}",
        package.status,
        package.body
    );
    ensure!(vera.get("/ui/front/gadget/2.0.0").await?.status == 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let found = vera.get("/ui/-/search?q=gadget").await?;
        if found.body.contains("/ui/front/gadget/2.0.0") {
            ensure!(!found.body.contains("/ui/hidden/"), "{}", found.body);
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "search: {}",
            found.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Signing out revokes the session's token: the cookie no longer stands for anyone, anywhere.
    let csrf = viewer.csrf("/ui/").await?;
    ensure!(
        viewer
            .post("/ui/-/signout", &[("csrf", &csrf)])
            .await?
            .status
            == 303
    );
    ensure!(
        !viewer
            .cookies
            .iter()
            .any(|(name, _)| name == "arca_session")
    );
    let mut replay = Browser::new(&node.url)?;
    replay.cookies.push(cookie.clone());
    let stale = replay.get("/ui/-/access").await?;
    ensure!(
        stale.status == 401,
        "a signed-out session: {}",
        stale.status
    );
    ensure!(
        !replay
            .cookies
            .iter()
            .any(|(name, _)| name == "arca_session")
    );
    replay.cookies.push(cookie.clone());
    let ended = replay
        .post("/ui/-/signout", &[("csrf", "whatever")])
        .await?;
    ensure!(
        ended.status == 303
            && !replay
                .cookies
                .iter()
                .any(|(name, _)| name == "arca_session"),
        "signing out of an ended session: {}",
        ended.status
    );
    let api = node
        .api(&cookie.1, Method::GET, "/api/v1/registries", None)
        .await?;
    ensure!(api.0 == 401, "the session token still works: {}", api.0);

    // The cookie is for the UI only: the API does not read it.
    let mut api_with_cookie = Browser::new(&node.url)?;
    api_with_cookie
        .cookies
        .extend(admin.cookies.iter().cloned());
    let answer = api_with_cookie.get("/api/v1/registries").await?;
    ensure!(
        answer.status == 401,
        "the API took the session cookie: {}",
        answer.status
    );
    Ok(())
}
