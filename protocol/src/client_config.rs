//! Configuration files of package managers that both `arca registry configure` (which writes them)
//! and the web UI's "Set up client" (which shows them) produce: Maven's `settings.xml` and the
//! `distributionManagement` a pom deploys with, and NuGet's `NuGet.Config`.

/// The id Maven's files name the registry's server and repository by.
pub const MAVEN_SERVER_ID: &str = "arca";

/// `text` with XML's special characters escaped.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A `settings.xml` whose active profile resolves from `url` (releases and snapshots, plugins too)
/// and whose server [`MAVEN_SERVER_ID`] signs in with `password`.
pub fn maven_settings(url: &str, password: &str) -> String {
    let (url, password) = (xml_escape(url), xml_escape(password));
    let id = MAVEN_SERVER_ID;
    let repository = |element: &str| {
        format!(
            "        <{element}>\n          <id>{id}</id>\n          <url>{url}</url>\n          \
             <releases><enabled>true</enabled></releases>\n          \
             <snapshots><enabled>true</enabled></snapshots>\n        </{element}>\n"
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <settings xmlns=\"http://maven.apache.org/SETTINGS/1.0.0\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://maven.apache.org/SETTINGS/1.0.0 \
         https://maven.apache.org/xsd/settings-1.0.0.xsd\">\n  \
         <servers>\n    <server>\n      <id>{id}</id>\n      <username>arca</username>\n      \
         <password>{password}</password>\n    </server>\n  </servers>\n  \
         <profiles>\n    <profile>\n      <id>{id}</id>\n      \
         <activation><activeByDefault>true</activeByDefault></activation>\n      \
         <repositories>\n{}      </repositories>\n      \
         <pluginRepositories>\n{}      </pluginRepositories>\n    </profile>\n  </profiles>\n  \
         <activeProfiles>\n    <activeProfile>{id}</activeProfile>\n  </activeProfiles>\n\
         </settings>\n",
        repository("repository"),
        repository("pluginRepository"),
    )
}

/// The `distributionManagement` of a pom that deploys releases and snapshots to `url`.
pub fn maven_distribution(url: &str) -> String {
    let url = xml_escape(url);
    let id = MAVEN_SERVER_ID;
    format!(
        "<distributionManagement>\n  <repository>\n    <id>{id}</id>\n    <url>{url}</url>\n  \
         </repository>\n  <snapshotRepository>\n    <id>{id}</id>\n    <url>{url}</url>\n  \
         </snapshotRepository>\n</distributionManagement>"
    )
}

/// A `NuGet.Config` whose only package source is `url`, named `key`, signing in as `arca` with
/// `password`.
pub fn nuget_config(key: &str, url: &str, password: &str) -> String {
    let (key, url, password) = (xml_escape(key), xml_escape(url), xml_escape(password));
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <configuration>\n  <packageSources>\n    <clear />\n    \
         <add key=\"{key}\" value=\"{url}\" />\n  </packageSources>\n  \
         <packageSourceCredentials>\n    <{key}>\n      \
         <add key=\"Username\" value=\"arca\" />\n      \
         <add key=\"ClearTextPassword\" value=\"{password}\" />\n    </{key}>\n  \
         </packageSourceCredentials>\n</configuration>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_in_the_xml() {
        let settings = maven_settings("http://h/maven/r?a=1&b=2", "p<w>");
        assert!(settings.contains("<url>http://h/maven/r?a=1&amp;b=2</url>"));
        assert!(settings.contains("<password>p&lt;w&gt;</password>"));
        let config = nuget_config("arca-r", "http://h/nuget/r/v3/index.json", "t\"k");
        assert!(config.contains("value=\"t&quot;k\""));
        assert!(config.contains("<arca-r>"));
    }
}
