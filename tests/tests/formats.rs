//! Data written by one build loads in every later build: each data directory in
//! `tests/fixtures/formats/` (written by `scripts/make-format-fixture.sh` with the build of its
//! format) is opened by this build, and every artifact it holds reads back byte for byte.

use std::path::Path;

use arca_tests::{TestNode, http, sha256_hex};
use reqwest::StatusCode;

/// Unpacks a fixture into a fresh directory: its data directory and its list of what must read back.
fn unpack(fixture: &Path) -> (tempfile::TempDir, Vec<(String, String)>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::open(fixture).expect("fixture");
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(dir.path())
        .expect("unpack");
    let expected = std::fs::read_to_string(dir.path().join("expected.tsv")).expect("expected.tsv");
    let expected = expected
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(path, sha256)| (path.to_string(), sha256.to_string()))
        .collect();
    (dir, expected)
}

#[tokio::test]
async fn every_format_fixture_opens_with_every_artifact_intact() {
    let fixtures_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats");
    let mut fixtures: Vec<_> = std::fs::read_dir(&fixtures_dir)
        .expect("fixtures")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    fixtures.sort();
    assert!(
        !fixtures.is_empty(),
        "no fixtures in {}",
        fixtures_dir.display()
    );
    for fixture in fixtures {
        let (unpacked, expected) = unpack(&fixture);
        assert!(expected.len() >= 7, "{}: {expected:?}", fixture.display());
        let data = tempfile::TempDir::new_in(unpacked.path()).expect("dir");
        std::fs::remove_dir(data.path()).expect("empty dir");
        std::fs::rename(unpacked.path().join("data"), data.path()).expect("move data");
        let node = TestNode::start_in(data, &[], &[]).expect("node starts on the fixture");
        for (path, sha256) in &expected {
            let response = http()
                .get(format!("{}{path}", node.url))
                .bearer_auth(&node.admin_token)
                .header(
                    "Accept",
                    "application/vnd.oci.image.manifest.v1+json, application/octet-stream, */*",
                )
                .send()
                .await
                .expect("get");
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{}: {path}",
                fixture.display()
            );
            let body = response.bytes().await.expect("body");
            assert_eq!(&sha256_hex(&body), sha256, "{}: {path}", fixture.display());
        }
        let registries = http()
            .get(format!("{}/api/v1/registries", node.url))
            .bearer_auth(&node.admin_token)
            .send()
            .await
            .expect("registries")
            .json::<serde_json::Value>()
            .await
            .expect("json");
        let names: Vec<&str> = registries
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert_eq!(names, ["files", "images", "maven", "npm", "pypi"]);
        let user = http()
            .get(format!("{}/api/v1/whoami", node.url))
            .basic_auth("fixture-user", Some("fixture-password"))
            .send()
            .await
            .expect("whoami")
            .status();
        assert_eq!(user, StatusCode::OK, "the fixture's user logs in");
    }
}
