//! Deploying to Maven repositories, `/maven/{registry}/`, the way `mvn deploy` lays files out: the file
//! and its POM (the one given, or a minimal generated one) are `PUT` under
//! `{group path}/{artifactId}/{version}/{artifactId}-{version}[-{classifier}].{extension}`, each
//! followed by its `.sha1`. The registry generates `maven-metadata.xml` itself.

use std::path::Path;

use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, HeaderValue};
use sha2::Digest;

use crate::client::Client;
use crate::error::ClientError;
use crate::generic::{digest_file, file_body};
use crate::published::Published;

/// Where an artifact goes: its coordinates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MavenCoordinates {
    /// `groupId`, dotted (`org.example`).
    pub group: String,
    /// `artifactId`.
    pub artifact: String,
    /// Version.
    pub version: String,
    /// Classifier (`sources`, `javadoc`), if any.
    pub classifier: Option<String>,
}

impl MavenCoordinates {
    /// The repository path segments of this version's directory.
    fn directory(&self) -> Vec<&str> {
        let mut segments: Vec<&str> = self.group.split('.').collect();
        segments.extend([self.artifact.as_str(), self.version.as_str()]);
        segments
    }

    /// The file name of this artifact with `extension`, and with the classifier when `classified`.
    fn filename(&self, extension: &str, classified: bool) -> String {
        match self.classifier.as_deref().filter(|_| classified) {
            Some(classifier) => format!(
                "{}-{}-{classifier}.{extension}",
                self.artifact, self.version
            ),
            None => format!("{}-{}.{extension}", self.artifact, self.version),
        }
    }

    /// The smallest POM Maven accepts for these coordinates, with `packaging`.
    fn minimal_pom(&self, packaging: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <project xmlns=\"http://maven.apache.org/POM/4.0.0\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xsi:schemaLocation=\"http://maven.apache.org/POM/4.0.0 \
             https://maven.apache.org/xsd/maven-4.0.0.xsd\">\n  \
             <modelVersion>4.0.0</modelVersion>\n  \
             <groupId>{}</groupId>\n  <artifactId>{}</artifactId>\n  \
             <version>{}</version>\n  <packaging>{}</packaging>\n</project>\n",
            xml_escape(&self.group),
            xml_escape(&self.artifact),
            xml_escape(&self.version),
            xml_escape(packaging)
        )
    }
}

pub use arca_protocol::client_config::xml_escape;

/// The Maven extension of a local file name (`jar`, `tar.gz`).
fn extension(path: &Path) -> Result<String, ClientError> {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    if name.ends_with(".tar.gz") {
        return Ok("tar.gz".to_string());
    }
    path.extension()
        .and_then(|ext| ext.to_str())
        .filter(|ext| !ext.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            ClientError::Invalid(format!(
                "{} has no extension to deploy it with",
                path.display()
            ))
        })
}

/// What to upload as the POM.
enum Pom {
    /// A local file.
    File(std::path::PathBuf),
    /// Generated text.
    Text(String),
}

impl Client {
    /// `PUT` of one file into `directory`, then of its `.sha1`.
    async fn put_maven_file(
        &self,
        registry: &str,
        directory: &[&str],
        filename: &str,
        body: reqwest::Body,
        length: u64,
        sha1: String,
    ) -> Result<(), ClientError> {
        let url = |name: &str| self.url(&[&["maven", registry][..], directory, &[name]].concat());
        let request = self
            .request(Method::PUT, url(filename)?)
            .header(CONTENT_LENGTH, HeaderValue::from(length))
            .body(body);
        self.send(request).await?;
        let checksum = format!("{filename}.sha1");
        self.send(self.request(Method::PUT, url(&checksum)?).body(sha1))
            .await?;
        Ok(())
    }

    /// Deploys the file at `file` as `coordinates` to the Maven registry `registry`, with the POM at
    /// `pom` (a minimal generated POM when `None`, none at all when the file is itself the POM).
    pub async fn push_maven(
        &self,
        registry: &str,
        file: &Path,
        coordinates: &MavenCoordinates,
        pom: Option<&Path>,
    ) -> Result<Published, ClientError> {
        let extension = extension(file)?;
        let directory = coordinates.directory();
        let filename = coordinates.filename(&extension, true);
        let sha1 = hex::encode(digest_file::<sha1::Sha1>(file, |_| {}).await?);
        let (body, length) = file_body(file, |_| {}).await?;
        self.put_maven_file(registry, &directory, &filename, body, length, sha1)
            .await?;
        let mut files = vec![filename];
        let is_pom = extension == "pom" && coordinates.classifier.is_none();
        let pom = match pom {
            Some(path) => Some(Pom::File(path.to_path_buf())),
            None if is_pom => None,
            None => {
                let packaging = if coordinates.classifier.is_some() {
                    "jar"
                } else {
                    &extension
                };
                Some(Pom::Text(coordinates.minimal_pom(packaging)))
            }
        };
        if let Some(pom) = pom {
            let pom_name = coordinates.filename("pom", false);
            let (body, length, sha1) = match pom {
                Pom::File(path) => {
                    let sha1 = hex::encode(digest_file::<sha1::Sha1>(&path, |_| {}).await?);
                    let (body, length) = file_body(&path, |_| {}).await?;
                    (body, length, sha1)
                }
                Pom::Text(text) => {
                    let sha1 = hex::encode(sha1::Sha1::digest(text.as_bytes()));
                    let length = text.len() as u64;
                    (reqwest::Body::from(text), length, sha1)
                }
            };
            self.put_maven_file(registry, &directory, &pom_name, body, length, sha1)
                .await?;
            files.push(pom_name);
        }
        Ok(Published {
            ecosystem: "maven",
            registry: registry.to_string(),
            package: format!("{}:{}", coordinates.group, coordinates.artifact),
            version: coordinates.version.clone(),
            files,
            tags: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinates(classifier: Option<&str>) -> MavenCoordinates {
        MavenCoordinates {
            group: "org.example".into(),
            artifact: "lib".into(),
            version: "1.0".into(),
            classifier: classifier.map(str::to_string),
        }
    }

    #[test]
    fn files_follow_the_maven_layout() {
        let plain = coordinates(None);
        assert_eq!(plain.directory(), ["org", "example", "lib", "1.0"]);
        assert_eq!(plain.filename("jar", true), "lib-1.0.jar");
        let sources = coordinates(Some("sources"));
        assert_eq!(sources.filename("jar", true), "lib-1.0-sources.jar");
        assert_eq!(sources.filename("pom", false), "lib-1.0.pom");
        assert_eq!(extension(Path::new("x/a.tar.gz")).expect("ext"), "tar.gz");
        assert!(extension(Path::new("noext")).is_err());
    }

    #[test]
    fn generated_poms_carry_the_coordinates() {
        let pom = MavenCoordinates {
            group: "a&b".into(),
            ..coordinates(None)
        }
        .minimal_pom("jar");
        assert!(pom.contains("<groupId>a&amp;b</groupId>"), "{pom}");
        assert!(pom.contains("<artifactId>lib</artifactId>"), "{pom}");
        assert!(pom.contains("<packaging>jar</packaging>"), "{pom}");
    }
}
