//! `arca registry fw audit` end to end: a real node with a firewall policy and OSV advisories for
//! lodash 4.17.20 (npm), requests 2.19.1 (PyPI) and log4j-core 2.14.1 (Maven), and the real CLI
//! auditing every lockfile and manifest fixture under `tests/fixtures/lockfiles/`: the JSON shows
//! each exact coordinate's verdict and the unresolved dependencies, the table shows the rows, and
//! the exit code is 1 exactly when something is BLOCKED.

use std::path::{Path, PathBuf};
use std::process::Output;

use arca_tests::{TestNode, http};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A fixture's path.
fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/lockfiles")
        .join(relative)
}

/// What auditing one fixture must show.
struct Case {
    file: &'static str,
    registry: &'static str,
    exact: usize,
    unresolved: usize,
    blocked: &'static [&'static str],
    warned: &'static [&'static str],
}

const NPM_BLOCKED: &[&str] = &["lodash@4.17.20"];
const NPM_WARNED: &[&str] = &["debug@2.6.9"];
const PYPI_BLOCKED: &[&str] = &["requests@2.19.1"];
const PYPI_WARNED: &[&str] = &["urllib3@1.23"];
const MAVEN_BLOCKED: &[&str] = &["org.apache.logging.log4j:log4j-core@2.14.1"];

const CASES: &[Case] = &[
    Case {
        file: "npm/v1/package-lock.json",
        registry: "npm",
        exact: 23,
        unresolved: 0,
        blocked: NPM_BLOCKED,
        warned: NPM_WARNED,
    },
    Case {
        file: "npm/v2/package-lock.json",
        registry: "npm",
        exact: 25,
        unresolved: 0,
        blocked: NPM_BLOCKED,
        warned: NPM_WARNED,
    },
    Case {
        file: "npm/v3/package-lock.json",
        registry: "npm",
        exact: 25,
        unresolved: 0,
        blocked: NPM_BLOCKED,
        warned: NPM_WARNED,
    },
    Case {
        file: "npm/v3/package.json",
        registry: "npm",
        exact: 6,
        unresolved: 3,
        blocked: NPM_BLOCKED,
        warned: NPM_WARNED,
    },
    Case {
        file: "pnpm/v6/pnpm-lock.yaml",
        registry: "npm",
        exact: 24,
        unresolved: 0,
        blocked: NPM_BLOCKED,
        warned: NPM_WARNED,
    },
    Case {
        file: "pnpm/v9/pnpm-lock.yaml",
        registry: "npm",
        exact: 24,
        unresolved: 0,
        blocked: NPM_BLOCKED,
        warned: NPM_WARNED,
    },
    Case {
        file: "yarn/classic/yarn.lock",
        registry: "npm",
        exact: 23,
        unresolved: 0,
        blocked: NPM_BLOCKED,
        warned: NPM_WARNED,
    },
    Case {
        file: "yarn/berry/yarn.lock",
        registry: "npm",
        exact: 43,
        unresolved: 0,
        blocked: NPM_BLOCKED,
        warned: NPM_WARNED,
    },
    Case {
        file: "python/pip/requirements.txt",
        registry: "pypi",
        exact: 7,
        unresolved: 3,
        blocked: PYPI_BLOCKED,
        warned: PYPI_WARNED,
    },
    Case {
        file: "python/pep621/pyproject.toml",
        registry: "pypi",
        exact: 6,
        unresolved: 5,
        blocked: PYPI_BLOCKED,
        warned: &[],
    },
    Case {
        file: "python/poetry/pyproject.toml",
        registry: "pypi",
        exact: 5,
        unresolved: 3,
        blocked: PYPI_BLOCKED,
        warned: &["urllib3@1.26.18"],
    },
    Case {
        file: "python/poetry/poetry.lock",
        registry: "pypi",
        exact: 7,
        unresolved: 1,
        blocked: PYPI_BLOCKED,
        warned: PYPI_WARNED,
    },
    Case {
        file: "python/pipenv/Pipfile.lock",
        registry: "pypi",
        exact: 8,
        unresolved: 1,
        blocked: PYPI_BLOCKED,
        warned: PYPI_WARNED,
    },
    Case {
        file: "jvm/maven/pom.xml",
        registry: "maven",
        exact: 6,
        unresolved: 4,
        blocked: MAVEN_BLOCKED,
        warned: &[],
    },
    Case {
        file: "jvm/gradle/build.gradle",
        registry: "maven",
        exact: 8,
        unresolved: 4,
        blocked: MAVEN_BLOCKED,
        warned: &[],
    },
    Case {
        file: "jvm/gradle-kts/build.gradle.kts",
        registry: "maven",
        exact: 8,
        unresolved: 2,
        blocked: MAVEN_BLOCKED,
        warned: &[],
    },
];

/// Sends an admin request with a JSON body and checks its status.
async fn admin_json(node: &TestNode, method: reqwest::Method, path: &str, body: Value) {
    let response = http()
        .request(method, format!("{}/api/v1/{path}", node.url))
        .bearer_auth(&node.admin_token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{path}: {status} {text}");
}

/// An OSV advisory in the shape osv.dev and the GitHub Advisory Database publish.
fn advisory(
    id: &str,
    alias: &str,
    summary: &str,
    severity: &str,
    (ecosystem, name): (&str, &str),
    (range, introduced, fixed): (&str, &str, &str),
) -> Value {
    json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2024-03-01T00:00:00Z",
        "published": "2021-05-06T16:05:51Z",
        "aliases": [alias],
        "summary": summary,
        "affected": [{
            "package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{
                "type": range,
                "events": [{"introduced": introduced}, {"fixed": fixed}]
            }]
        }],
        "database_specific": {"severity": severity, "github_reviewed": true}
    })
}

/// A node with npm, PyPI and Maven registries whose policy blocks HIGH advisories and warns on one
/// package each, and a database holding one advisory per ecosystem.
async fn node_with_policy() -> TestNode {
    let node = TestNode::start().expect("node");
    for (name, package_type, warned) in [
        ("npm", "NPM", Some("debug")),
        ("pypi", "PYPI", Some("urllib3")),
        ("maven", "MAVEN", None),
    ] {
        admin_json(
            &node,
            reqwest::Method::POST,
            "registries",
            json!({"name": name, "package_type": package_type}),
        )
        .await;
        let deny: Vec<Value> = warned
            .into_iter()
            .map(|package| json!({"package": package, "action": "warn"}))
            .collect();
        admin_json(
            &node,
            reqwest::Method::PUT,
            &format!("registries/{name}/firewall-policy"),
            json!({
                "vulnerabilities": {"min_severity": "HIGH", "action": "block"},
                "deny": deny
            }),
        )
        .await;
    }
    let advisories = vec![
        advisory(
            "GHSA-35jh-r3h4-6jhm",
            "CVE-2021-23337",
            "Command Injection in lodash",
            "HIGH",
            ("npm", "lodash"),
            ("SEMVER", "0", "4.17.21"),
        ),
        advisory(
            "GHSA-x84v-xcm2-53pg",
            "CVE-2018-18074",
            "Insufficiently Protected Credentials in Requests",
            "HIGH",
            ("PyPI", "requests"),
            ("ECOSYSTEM", "0", "2.20.0"),
        ),
        advisory(
            "GHSA-jfh8-c2jp-5v3q",
            "CVE-2021-44228",
            "Remote code injection in Log4j",
            "CRITICAL",
            ("Maven", "org.apache.logging.log4j:log4j-core"),
            ("ECOSYSTEM", "2.13.0", "2.15.0"),
        ),
    ];
    admin_json(
        &node,
        reqwest::Method::POST,
        "firewall/db",
        json!({ "advisories": advisories }),
    )
    .await;
    node
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `arca registry fw audit` on a fixture.
fn audit(node: &TestNode, file: &Path, registry: &str, json: bool) -> Output {
    let file = file.to_str().expect("UTF-8 path");
    let mut args = vec![
        "registry",
        "fw",
        "audit",
        "--file",
        file,
        "--registry",
        registry,
    ];
    if json {
        args.extend(["--format", "json"]);
    }
    node.cli(&args)
}

/// `name@version` of every result with `status`.
fn with_status(report: &Value, status: &str) -> Vec<String> {
    let mut found: Vec<String> = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["verdict"]["status"] == status)
        .map(|r| {
            format!(
                "{}@{}",
                r["name"].as_str().unwrap_or(""),
                r["version"].as_str().unwrap_or("")
            )
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn every_fixture_is_audited_and_blocked_packages_fail_the_command() {
    let node = node_with_policy().await;
    for case in CASES {
        let path = fixture(case.file);
        let output = audit(&node, &path, case.registry, true);
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}: a BLOCKED package fails the audit\n{stdout}\n{stderr}",
            case.file
        );
        assert!(
            stderr.contains("are BLOCKED by registry"),
            "{}: {stderr}",
            case.file
        );
        let report: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|err| panic!("{}: {err}\n{stdout}", case.file));
        assert_eq!(report["registry"], case.registry);
        assert_eq!(
            report["results"].as_array().map(Vec::len),
            Some(case.exact),
            "{}: one verdict per exact coordinate",
            case.file
        );
        assert_eq!(
            report["unresolved"].as_array().map(Vec::len),
            Some(case.unresolved),
            "{}",
            case.file
        );
        assert_eq!(
            with_status(&report, "BLOCKED"),
            case.blocked,
            "{}",
            case.file
        );
        assert_eq!(with_status(&report, "WARN"), case.warned, "{}", case.file);
        let summary = &report["summary"];
        assert_eq!(summary["blocked"], case.blocked.len(), "{}", case.file);
        assert_eq!(
            summary["allowed"],
            case.exact - case.blocked.len() - case.warned.len(),
            "{}",
            case.file
        );
        let blocked = report["results"]
            .as_array()
            .and_then(|results| results.iter().find(|r| r["verdict"]["status"] == "BLOCKED"))
            .expect("a blocked result");
        let reason = &blocked["verdict"]["reasons"][0];
        assert_eq!(reason["rule"], "vulnerability", "{}", case.file);
        assert!(
            reason["advisory"]
                .as_str()
                .is_some_and(|id| id.starts_with("GHSA-")),
            "{}: {reason}",
            case.file
        );

        let table = audit(&node, &path, case.registry, false);
        let (stdout, stderr) = (text(&table.stdout), text(&table.stderr));
        assert_eq!(table.status.code(), Some(1), "{}: {stderr}", case.file);
        let (name, version) = case.blocked[0].rsplit_once('@').expect("name@version");
        let row = stdout
            .lines()
            .find(|line| line.contains(&format!(" {name} ")) && line.contains("BLOCKED"))
            .unwrap_or_else(|| panic!("{}: no BLOCKED row for {name}:\n{stdout}", case.file));
        assert!(row.contains(version) && row.contains("GHSA-"), "{row}");
        assert!(
            stdout.contains("PACKAGE") && stdout.contains("REASON"),
            "{stdout}"
        );
        if case.unresolved > 0 {
            assert!(stdout.contains("UNRESOLVED"), "{}:\n{stdout}", case.file);
        }
        assert!(
            stdout.contains(&format!(
                "{} blocked, {} unresolved",
                case.blocked.len(),
                case.unresolved
            )),
            "{}:\n{stdout}",
            case.file
        );
    }
}

#[tokio::test]
async fn clean_files_pass_and_bad_input_is_refused_clearly() {
    let node = node_with_policy().await;
    let dir = tempfile::tempdir().expect("temp dir");

    // Nothing blocked: exit 0, even with warnings and unresolved ranges.
    let clean = dir.path().join("requirements.txt");
    std::fs::write(&clean, "certifi==2023.7.22\nurllib3==1.23\nDjango>=4.2\n").expect("write");
    let output = audit(&node, &clean, "pypi", true);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(with_status(&report, "ALLOWED"), ["certifi@2023.7.22"]);
    assert_eq!(with_status(&report, "WARN"), ["urllib3@1.23"]);
    assert_eq!(report["unresolved"][0]["name"], "django");
    assert_eq!(report["kind"], "requirements.txt");

    // A long lockfile goes in several requests, and every verdict comes back.
    let long = dir.path().join("requirements-long.txt");
    let mut lines: Vec<String> = (0..1_200).map(|i| format!("pkg-{i:04}==1.0.{i}")).collect();
    lines.push("requests==2.19.1".into());
    std::fs::write(&long, lines.join("\n")).expect("write");
    let output = audit(&node, &long, "pypi", true);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["results"].as_array().map(Vec::len), Some(1_201));
    assert_eq!(report["summary"]["allowed"], 1_200);
    assert_eq!(with_status(&report, "BLOCKED"), ["requests@2.19.1"]);
    assert_eq!(report["results"][1_199]["name"], "pkg-1199");

    // A file of another ecosystem than the registry's.
    let output = audit(&node, &fixture("jvm/maven/pom.xml"), "npm", false);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("registry npm holds NPM packages but"),
        "{}",
        text(&output.stderr)
    );

    // A malformed lockfile names the file and line.
    let broken = dir.path().join("package-lock.json");
    std::fs::write(&broken, "{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n").expect("write");
    let output = audit(&node, &broken, "npm", false);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("package-lock.json:4: invalid JSON"),
        "{stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "nothing is printed for a broken file"
    );

    // An unknown file name, unless --kind says what it is.
    let odd = dir.path().join("deps.lst");
    std::fs::write(&odd, "requests==2.19.1\n").expect("write");
    let output = audit(&node, &odd, "pypi", false);
    assert!(
        text(&output.stderr).contains("not a supported lockfile or manifest"),
        "{}",
        text(&output.stderr)
    );
    let odd_path = odd.to_str().expect("UTF-8 path");
    let output = node.cli(&[
        "registry",
        "fw",
        "audit",
        "--file",
        odd_path,
        "--registry",
        "pypi",
        "--kind",
        "requirements.txt",
    ]);
    assert_eq!(output.status.code(), Some(1), "requests 2.19.1 is blocked");

    // A registry that does not exist, and a caller without access to it.
    let output = audit(&node, &clean, "missing", false);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("missing"),
        "{}",
        text(&output.stderr)
    );
    let response = http()
        .post(format!(
            "{}/api/v1/registries/pypi/firewall/check",
            node.url
        ))
        .json(&json!({"packages": [{"name": "requests", "version": "2.19.1"}]}))
        .send()
        .await
        .expect("anonymous check");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
