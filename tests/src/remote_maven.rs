//! Helpers for tests of remote and virtual Maven registries: the real `mvn` with an isolated home and
//! a settings file whose only repositories are Debian's packaged plugins
//! (`file:///usr/share/maven-repo`, never the network) and Arca (server id `arca`), one-class library
//! projects that deploy to a repository URL, consumer projects that resolve one dependency from a
//! repository URL only (checksum policy `fail`), and reading `maven-metadata.xml`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::clients::ClientOutput;
use crate::oci::IsolatedClient;

/// The group of the test libraries.
pub const GROUP: &str = "org.example.arca";
/// [`GROUP`] as a repository path.
pub const GROUP_PATH: &str = "org/example/arca";

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

/// `mvn` with an isolated home, a local repository of its own (empty at first) and credentials
/// `mvn`/`token` for the server `arca`.
pub struct Maven {
    client: IsolatedClient,
    settings: PathBuf,
}

impl Maven {
    /// A fresh `mvn` environment authenticating to Arca with `token`.
    pub fn new(bin: PathBuf, token: &str) -> Result<Maven> {
        let client = IsolatedClient::new(bin)?;
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
        std::fs::write(&settings, xml).context("writing settings.xml")?;
        Ok(Maven { client, settings })
    }

    /// The local repository this environment resolves into.
    pub fn local_repository(&self) -> PathBuf {
        self.client.home().join("m2-repository")
    }

    /// Runs `mvn -B -ntp -s <settings> -f <project>/pom.xml -DskipTests <goals>`.
    pub fn run(&self, project: &Path, goals: &[&str]) -> Result<ClientOutput> {
        let settings = self.settings.display().to_string();
        let pom = project.join("pom.xml").display().to_string();
        let mut args = vec!["-B", "-ntp", "-s", &settings, "-f", &pom, "-DskipTests"];
        args.extend_from_slice(goals);
        self.client.run(&args)
    }

    /// The files `artifact` `version` resolved into the local repository, and whether the resolver
    /// recorded that its jar came from the repository `arca`.
    pub fn resolved(&self, artifact: &str, version: &str) -> (Vec<String>, bool) {
        let dir = self
            .local_repository()
            .join(format!("{GROUP_PATH}/{artifact}/{version}"));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let origins = std::fs::read_to_string(dir.join("_remote.repositories")).unwrap_or_default();
        let from_arca = origins.lines().any(|l| l.contains(".jar>arca="));
        (names, from_arca)
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

/// A `pom.xml` of `GROUP:artifact:version` (jar packaging, Java 17, Debian's plugin versions) with
/// `extra` inside `<project>`.
pub fn pom(artifact: &str, version: &str, extra: &str) -> String {
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

/// The Java package of a test library's one class, from its artifact id (`greeting-lib` ->
/// `org.example.arca.greeting_lib`).
pub fn java_package(artifact: &str) -> String {
    format!("{GROUP}.{}", artifact.replace('-', "_"))
}

/// A one-class library `artifact` `version` (class `<java_package>.Greeting`, method `hello()`)
/// deploying to `repository`, in `dir/<artifact>-<version>`.
pub fn library(dir: &Path, artifact: &str, version: &str, repository: &str) -> Result<PathBuf> {
    let project = dir.join(format!("{artifact}-{version}"));
    let package = java_package(artifact);
    let sources = project
        .join("src/main/java")
        .join(package.replace('.', "/"));
    std::fs::create_dir_all(&sources)?;
    std::fs::write(
        sources.join("Greeting.java"),
        format!(
            "package {package};\npublic class Greeting {{\n  public static String hello() {{ return \"hello from {artifact} {version}\"; }}\n}}\n"
        ),
    )?;
    let distribution = format!(
        "<distributionManagement>\
         <repository><id>arca</id><url>{repository}</url></repository>\
         <snapshotRepository><id>arca</id><url>{repository}</url></snapshotRepository>\
         </distributionManagement>"
    );
    std::fs::write(
        project.join("pom.xml"),
        pom(artifact, version, &distribution),
    )?;
    Ok(project)
}

/// A one-class application in `dir/<name>` that calls `artifact`'s `Greeting.hello()`, depending on
/// it at `version` (a version or a range such as `[1.0,)`), resolved only from `repository` with
/// checksum policy `fail` and update policy `always`.
pub fn consumer(
    dir: &Path,
    name: &str,
    repository: &str,
    artifact: &str,
    version: &str,
) -> Result<PathBuf> {
    let project = dir.join(name);
    let sources = project.join("src/main/java/org/example/app");
    std::fs::create_dir_all(&sources)?;
    std::fs::write(
        sources.join("App.java"),
        format!(
            "package org.example.app;\npublic class App {{\n  public static void main(String[] args) {{ System.out.println({}.Greeting.hello()); }}\n}}\n",
            java_package(artifact)
        ),
    )?;
    let policy = "<updatePolicy>always</updatePolicy><checksumPolicy>fail</checksumPolicy>";
    let extra = format!(
        "<dependencies><dependency><groupId>{GROUP}</groupId><artifactId>{artifact}</artifactId>\
         <version>{version}</version></dependency></dependencies>\
         <repositories><repository><id>arca</id><url>{repository}</url>\
         <releases>{policy}</releases><snapshots><enabled>true</enabled>{policy}</snapshots>\
         </repository></repositories>"
    );
    std::fs::write(project.join("pom.xml"), pom(name, "1.0", &extra))?;
    Ok(project)
}

/// The text of every `<tag>` element of an XML document, in order.
pub fn elements(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(text, _)| text.to_string()))
        .collect()
}
