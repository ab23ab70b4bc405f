//! `arca registry configure npm|pip|maven|cargo|helm|go|gem|composer|conda|nuget|hf|apt|dnf`: points a package manager at one registry of the
//! node with the server URL and token this command runs with, as `hc registry configure npm` does.
//!
//! npm gets `.npmrc` lines (`registry=` or `@scope:registry=`, and `//host/npm/R/:_authToken=`), pip a
//! `pip.conf` `index-url` with the token as Basic password and twine a `.pypirc` server `arca`, Maven a
//! `settings.xml` with the server `arca` and an active profile holding the repository, cargo a
//! `[registries.<registry>]` sparse index in `.cargo/config.toml` and the token in
//! `$CARGO_HOME/credentials.toml` (cargo reads tokens only there, never from the project), helm a
//! repository named after the registry in its `repositories.yaml` (what `helm repo add` writes), the go
//! command `GOPROXY` (and `GONOSUMDB`) in its env file (what `go env -w` writes), bundler the token for
//! the server's host in `.bundle/config` and `gem push` its key in `~/.gem/credentials`, composer a
//! repository in `composer.json` (or its global `config.json`) and `http-basic` credentials in
//! `auth.json`, conda the channel (with the token as Basic password, which conda reads from channel
//! URLs) first in `.condarc`'s `channels` and rattler (pixi, rattler-build) a bearer token for the
//! host in its credentials file, nuget and dotnet a `NuGet.Config` with the feed as the only
//! source and the token as its `ClearTextPassword`, `huggingface_hub` its `HF_ENDPOINT` and
//! `HF_TOKEN` (an `hf.env` to source; with `--global` the token in its token file), apt a
//! `sources.list` line with the registry's key as `signed-by` and the token in an `auth.conf`, dnf a
//! `.repo` file with `repo_gpgcheck` on, the registry's key as `gpgkey` and the token as password.
//! `--global` writes
//! the user's files in the home directory, `--project-level` (the default) files in the current
//! directory. INI-style files are merged key by key ([`IniFile`]); an existing `settings.xml` or
//! `NuGet.Config` is only replaced with `--force`. Every file is written by [`write_private`], as it holds the token.

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use arca_protocol::{PackageType, client_config};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::Context;
use super::config::write_private;
use super::output::{Format, Tabular, emit};

/// The server id the Maven files and `.pypirc` name the registry by.
const SERVER_ID: &str = client_config::MAVEN_SERVER_ID;
/// The user name pip and twine send with a token.
const PYPI_USER: &str = "__token__";

/// `arca registry configure` package managers.
#[derive(Debug, Subcommand)]
pub enum ConfigureCommand {
    /// Point npm at an npm registry (.npmrc)
    Npm {
        #[command(flatten)]
        target: Target,
        /// Use the registry for this scope only (`@myorg`)
        #[arg(long, value_name = "@ORG")]
        scope: Option<String>,
    },
    /// Point pip (pip.conf) and twine (.pypirc) at a PyPI registry
    Pip {
        #[command(flatten)]
        target: Target,
    },
    /// Point cargo at a Cargo registry (.cargo/config.toml, the token in credentials.toml)
    Cargo {
        #[command(flatten)]
        target: Target,
    },
    /// Add a Helm registry to helm's repositories (repositories.yaml)
    Helm {
        #[command(flatten)]
        target: Target,
    },
    /// Give bundler (.bundle/config) and, with --global, `gem push` (~/.gem/credentials) the
    /// token for a RubyGems registry
    Gem {
        #[command(flatten)]
        target: Target,
    },
    /// Add a Composer registry to composer.json's repositories (or composer's global config) and
    /// its credentials to auth.json
    Composer {
        #[command(flatten)]
        target: Target,
    },
    /// Put a Conda registry first in conda's channels (.condarc) and give rattler (pixi) the
    /// token (its credentials.json)
    Conda {
        #[command(flatten)]
        target: Target,
    },
    /// Make a NuGet registry the only source of nuget and dotnet, with the token (NuGet.Config)
    Nuget {
        #[command(flatten)]
        target: Target,
        /// Replace an existing NuGet.Config
        #[arg(long)]
        force: bool,
    },
    /// Point huggingface_hub at a Hugging Face registry (HF_ENDPOINT and HF_TOKEN)
    Hf {
        #[command(flatten)]
        target: Target,
    },
    /// Point apt at a Debian registry: a sources.list entry with the registry's signing key as
    /// `signed-by`, the key, and the token in an auth.conf (with --global, under /etc/apt)
    Apt {
        #[command(flatten)]
        target: Target,
        /// The suite (distribution) to install from
        #[arg(long)]
        suite: String,
        /// The components to install from
        #[arg(long, default_value = "main", value_delimiter = ',')]
        component: Vec<String>,
    },
    /// Point dnf (and yum) at an RPM registry: a .repo file with repo_gpgcheck on, the registry's
    /// key as gpgkey and the token as password (with --global, in /etc/yum.repos.d)
    Dnf {
        #[command(flatten)]
        target: Target,
    },
    /// Point the go command at a Go registry (GOPROXY in a go env file)
    Go {
        #[command(flatten)]
        target: Target,
        /// Module path patterns published to Arca only (GONOSUMDB: the public checksum
        /// database is not asked about them), e.g. `example.com/team/*`
        #[arg(long, value_name = "PATTERNS")]
        private: Option<String>,
    },
    /// Point Maven at a Maven registry (settings.xml)
    Maven {
        #[command(flatten)]
        target: Target,
        /// Replace an existing settings.xml
        #[arg(long)]
        force: bool,
    },
}

/// The registry to configure and where the files go.
#[derive(Debug, Args)]
pub struct Target {
    /// Registry name
    #[arg(long)]
    registry: String,
    /// Write the user's files in the home directory
    #[arg(long, conflicts_with = "project_level")]
    global: bool,
    /// Write the files in the current directory (the default)
    #[arg(long)]
    project_level: bool,
}

impl Target {
    /// The directory a file goes to: the home directory with `--global`, else the current one.
    fn directory(&self) -> Result<PathBuf> {
        if self.global {
            home()
        } else {
            std::env::current_dir().context("finding the current directory")
        }
    }
}

/// What a configure command wrote; hints for using it are printed with the table, or on stderr.
#[derive(Debug, Serialize)]
struct Configured {
    ecosystem: &'static str,
    registry: String,
    files: Vec<PathBuf>,
    #[serde(skip)]
    notes: Vec<String>,
}

impl Tabular for Configured {
    fn table(&self) -> String {
        let mut lines: Vec<String> = self
            .files
            .iter()
            .map(|file| format!("wrote {}", file.display()))
            .collect();
        lines.extend(self.notes.iter().cloned());
        lines.join("\n")
    }
}

impl ConfigureCommand {
    /// Checks that the registry exists with the right type, then writes the files.
    pub async fn run(self, context: &Context) -> Result<()> {
        let (target, expected) = match &self {
            ConfigureCommand::Npm { target, .. } => (target, PackageType::Npm),
            ConfigureCommand::Pip { target } => (target, PackageType::Pypi),
            ConfigureCommand::Maven { target, .. } => (target, PackageType::Maven),
            ConfigureCommand::Cargo { target } => (target, PackageType::Cargo),
            ConfigureCommand::Helm { target } => (target, PackageType::Helm),
            ConfigureCommand::Go { target, .. } => (target, PackageType::Go),
            ConfigureCommand::Gem { target } => (target, PackageType::Rubygems),
            ConfigureCommand::Composer { target } => (target, PackageType::Composer),
            ConfigureCommand::Conda { target } => (target, PackageType::Conda),
            ConfigureCommand::Nuget { target, .. } => (target, PackageType::Nuget),
            ConfigureCommand::Hf { target } => (target, PackageType::Huggingface),
            ConfigureCommand::Apt { target, .. } => (target, PackageType::Debian),
            ConfigureCommand::Dnf { target } => (target, PackageType::Rpm),
        };
        let client = &context.client;
        let token = client.token().context(
            "configuring a package manager needs a token: pass --token, set ARCA_TOKEN or run \
             `arca login`",
        )?;
        let registry = client.get_registry(&target.registry).await?;
        if registry.package_type != expected {
            bail!(
                "registry {} is a {} registry, not {expected}",
                registry.name,
                registry.package_type
            );
        }
        let configured = match &self {
            ConfigureCommand::Npm { target, scope } => {
                npm(context, target, token, scope.as_deref())?
            }
            ConfigureCommand::Pip { target } => pip(context, target, token)?,
            ConfigureCommand::Maven { target, force } => maven(context, target, token, *force)?,
            ConfigureCommand::Cargo { target } => cargo(context, target, token)?,
            ConfigureCommand::Helm { target } => helm(context, target, token)?,
            ConfigureCommand::Gem { target } => gem(context, target, token)?,
            ConfigureCommand::Composer { target } => composer(context, target, token)?,
            ConfigureCommand::Conda { target } => conda(context, target, token)?,
            ConfigureCommand::Nuget { target, force } => nuget(context, target, token, *force)?,
            ConfigureCommand::Hf { target } => hugging_face(context, target, token)?,
            ConfigureCommand::Apt {
                target,
                suite,
                component,
            } => apt(context, target, token, suite, component).await?,
            ConfigureCommand::Dnf { target } => dnf(context, target, token)?,
            ConfigureCommand::Go { target, private } => {
                go(context, target, token, private.as_deref())?
            }
        };
        if context.format != Format::Table {
            for note in &configured.notes {
                eprintln!("{note}");
            }
        }
        emit(context.format, &configured)
    }
}

/// The user's home directory.
fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set: cannot find the user's files for --global")
}

/// `<server>/<ecosystem>/<registry>/`.
fn registry_url(context: &Context, ecosystem: &str, registry: &str) -> Result<reqwest::Url> {
    Ok(context.client.url(&[ecosystem, registry, ""])?)
}

/// Merges `entries` (section, key, value) into the INI-style file at `path` and writes it.
fn merge_ini(path: &Path, separator: &str, entries: &[(Option<&str>, &str, String)]) -> Result<()> {
    let mut file = IniFile::load(path)?;
    for (section, key, value) in entries {
        file.set(*section, key, value, separator);
    }
    write_private(path, &file.text())
}

fn npm(context: &Context, target: &Target, token: &str, scope: Option<&str>) -> Result<Configured> {
    let url = registry_url(context, "npm", &target.registry)?;
    let registry_key = match scope {
        Some(scope) => {
            let scope = scope.strip_prefix('@').unwrap_or(scope);
            if scope.is_empty() || scope.contains(['/', '=', ' ']) {
                bail!("invalid scope {scope:?}: expected @name");
            }
            format!("@{scope}:registry")
        }
        None => "registry".to_string(),
    };
    // npm finds a registry's token by its URL without the scheme.
    let auth_key = format!(
        "{}:_authToken",
        url.as_str()
            .trim_start_matches(url.scheme())
            .trim_start_matches(':')
    );
    let path = target.directory()?.join(".npmrc");
    merge_ini(
        &path,
        "=",
        &[
            (None, &registry_key, url.to_string()),
            (None, &auth_key, token.to_string()),
        ],
    )?;
    Ok(Configured {
        ecosystem: "npm",
        registry: target.registry.clone(),
        files: vec![path],
        notes: vec![format!(
            "npm now uses {url}{}",
            scope.map(|s| format!(" for {s}")).unwrap_or_default()
        )],
    })
}

fn pip(context: &Context, target: &Target, token: &str) -> Result<Configured> {
    let mut index = context
        .client
        .url(&["pypi", &target.registry, "simple", ""])?;
    if index.set_username(PYPI_USER).is_err() || index.set_password(Some(token)).is_err() {
        bail!("cannot put credentials into {index}");
    }
    let pip_conf = if target.global {
        match std::env::var_os("XDG_CONFIG_HOME").filter(|dir| !dir.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => home()?.join(".config"),
        }
        .join("pip")
        .join("pip.conf")
    } else {
        target.directory()?.join("pip.conf")
    };
    merge_ini(
        &pip_conf,
        " = ",
        &[(Some("global"), "index-url", index.to_string())],
    )?;
    let pypirc = target.directory()?.join(".pypirc");
    let mut servers: Vec<String> = IniFile::load(&pypirc)?
        .get(Some("distutils"), "index-servers")
        .map(|list| list.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    if !servers.iter().any(|server| server == SERVER_ID) {
        servers.push(SERVER_ID.to_string());
    }
    let repository = registry_url(context, "pypi", &target.registry)?;
    merge_ini(
        &pypirc,
        " = ",
        &[
            (Some("distutils"), "index-servers", servers.join(" ")),
            (Some(SERVER_ID), "repository", repository.to_string()),
            (Some(SERVER_ID), "username", PYPI_USER.to_string()),
            (Some(SERVER_ID), "password", token.to_string()),
        ],
    )?;
    let notes = if target.global {
        vec![format!(
            "pip installs from {repository}simple/; upload with `twine upload -r {SERVER_ID} dist/*`"
        )]
    } else {
        vec![
            format!(
                "pip reads this pip.conf only when selected: export PIP_CONFIG_FILE={}",
                pip_conf.display()
            ),
            format!(
                "upload with `twine upload --config-file {} -r {SERVER_ID} dist/*`",
                pypirc.display()
            ),
        ]
    };
    Ok(Configured {
        ecosystem: "pip",
        registry: target.registry.clone(),
        files: vec![pip_conf, pypirc],
        notes,
    })
}

fn maven(context: &Context, target: &Target, token: &str, force: bool) -> Result<Configured> {
    let path = if target.global {
        home()?.join(".m2").join("settings.xml")
    } else {
        target.directory()?.join("settings.xml")
    };
    refuse_existing_xml(
        &path,
        force,
        &format!(
            "add a <server> with id {SERVER_ID} (password: the token) and a repository with id \
             {SERVER_ID} to it by hand"
        ),
    )?;
    let url = registry_url(context, "maven", &target.registry)?;
    let settings = client_config::maven_settings(url.as_str(), token);
    write_private(&path, &settings)?;
    let mut notes = Vec::new();
    if !target.global {
        notes.push(format!("use it with `mvn -s {} ...`", path.display()));
    }
    notes.push(format!(
        "to deploy, add to the pom:\n{}",
        client_config::maven_distribution(url.as_str())
    ));
    Ok(Configured {
        ecosystem: "maven",
        registry: target.registry.clone(),
        files: vec![path],
        notes,
    })
}

/// Refuses to overwrite `path` unless `force`: arca does not merge XML files.
fn refuse_existing_xml(path: &Path, force: bool, by_hand: &str) -> Result<()> {
    if path.exists() && !force {
        bail!(
            "{} exists and arca does not merge XML: {by_hand}, or pass --force to replace it",
            path.display()
        );
    }
    Ok(())
}

fn nuget(context: &Context, target: &Target, token: &str, force: bool) -> Result<Configured> {
    let url = registry_url(context, "nuget", &target.registry)?;
    let key = format!("{SERVER_ID}-{}", target.registry);
    // nuget.exe on Linux reads ~/.config/NuGet, dotnet ~/.nuget/NuGet.
    let paths = if target.global {
        let home = home()?;
        vec![
            home.join(".config").join("NuGet").join("NuGet.Config"),
            home.join(".nuget").join("NuGet").join("NuGet.Config"),
        ]
    } else {
        vec![target.directory()?.join("NuGet.Config")]
    };
    for path in &paths {
        refuse_existing_xml(
            path,
            force,
            &format!(
                "add the source {key} ({url}) with the credentials Username {SERVER_ID} and                  ClearTextPassword <token> to it by hand"
            ),
        )?;
    }
    let config = client_config::nuget_config(&key, url.as_str(), token);
    for path in &paths {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        write_private(path, &config)?;
    }
    let registry = target.registry.clone();
    let mut notes = vec![format!(
        "nuget and dotnet now restore from {url} alone; push with `nuget push <package.nupkg> \
         -Source {key} -ApiKey <token>` or `arca artifact push nuget {registry} <package.nupkg>`"
    )];
    if !target.global {
        notes.push(format!(
            "nuget reads it from the project directory, or with `-ConfigFile {}`",
            paths[0].display()
        ));
    }
    Ok(Configured {
        ecosystem: "nuget",
        registry,
        files: paths,
        notes,
    })
}

fn hugging_face(context: &Context, target: &Target, token: &str) -> Result<Configured> {
    let endpoint = context.client.url(&["hf", &target.registry])?;
    let endpoint = endpoint.as_str().trim_end_matches('/');
    let registry = target.registry.clone();
    let exports = format!(
        "export HF_ENDPOINT={endpoint}\n# Arca takes uploads through Git LFS, not Xet.\nexport HF_HUB_DISABLE_XET=1\n"
    );
    if target.global {
        // huggingface_hub reads the token from $HF_HOME/token (~/.cache/huggingface/token); the
        // endpoint only from the environment.
        let hf_home = match std::env::var_os("HF_HOME").filter(|dir| !dir.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => home()?.join(".cache").join("huggingface"),
        };
        std::fs::create_dir_all(&hf_home)
            .with_context(|| format!("creating {}", hf_home.display()))?;
        let token_file = hf_home.join("token");
        write_private(&token_file, token)?;
        return Ok(Configured {
            ecosystem: "huggingface",
            registry,
            files: vec![token_file],
            notes: vec![format!("also set, in your shell profile:\n{exports}")],
        });
    }
    let path = target.directory()?.join("hf.env");
    write_private(&path, &format!("{exports}export HF_TOKEN={token}\n"))?;
    Ok(Configured {
        ecosystem: "huggingface",
        registry,
        files: vec![path.clone()],
        notes: vec![format!(
            "run `. {}`, then huggingface_hub uploads to and downloads from {endpoint}",
            path.display()
        )],
    })
}

/// cargo's home: `$CARGO_HOME`, else `~/.cargo`.
fn cargo_home() -> Result<PathBuf> {
    match std::env::var_os("CARGO_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Ok(home()?.join(".cargo")),
    }
}

/// Sets `registries.<registry>.<key>` in the TOML file at `path`, keeping everything else in it as
/// it was (comments and layout included), and writes it.
fn merge_cargo_registry(path: &Path, registry: &str, entries: &[(&str, &str)]) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let mut document: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not TOML", path.display()))?;
    let registries = document
        .entry("registries")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .with_context(|| format!("{}: `registries` is not a table", path.display()))?;
    let section = registries
        .entry(registry)
        .or_insert(toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .with_context(|| format!("{}: `registries.{registry}` is not a table", path.display()))?;
    for (key, value) in entries {
        section.insert(key, toml_edit::value(*value));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_private(path, &document.to_string())
}

fn cargo(context: &Context, target: &Target, token: &str) -> Result<Configured> {
    let index = format!(
        "sparse+{}",
        context
            .client
            .url(&["cargo", &target.registry, "index", ""])?
    );
    let config = if target.global {
        cargo_home()?.join("config.toml")
    } else {
        target.directory()?.join(".cargo").join("config.toml")
    };
    let registry = target.registry.as_str();
    merge_cargo_registry(
        &config,
        registry,
        &[("index", &index), ("credential-provider", "cargo:token")],
    )?;
    let credentials = cargo_home()?.join("credentials.toml");
    merge_cargo_registry(&credentials, registry, &[("token", token)])?;
    Ok(Configured {
        ecosystem: "cargo",
        registry: registry.to_string(),
        files: vec![config, credentials],
        notes: vec![format!(
            "cargo now knows registry {registry}: depend with `{{ version = \"...\", registry = \
             \"{registry}\" }}`, publish with `cargo publish --registry {registry}`"
        )],
    })
}

/// helm's repository file: `$HELM_REPOSITORY_CONFIG`, else `$HELM_CONFIG_HOME/repositories.yaml`,
/// else `~/.config/helm/repositories.yaml` (`--global`); `./repositories.yaml` otherwise.
fn helm_repositories(target: &Target) -> Result<PathBuf> {
    if !target.global {
        return Ok(target.directory()?.join("repositories.yaml"));
    }
    let from_env = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    Ok(
        match (
            from_env("HELM_REPOSITORY_CONFIG"),
            from_env("HELM_CONFIG_HOME"),
        ) {
            (Some(file), _) => PathBuf::from(file),
            (None, Some(dir)) => PathBuf::from(dir).join("repositories.yaml"),
            (None, None) => match from_env("XDG_CONFIG_HOME") {
                Some(dir) => PathBuf::from(dir),
                None => home()?.join(".config"),
            }
            .join("helm")
            .join("repositories.yaml"),
        },
    )
}

fn helm(context: &Context, target: &Target, token: &str) -> Result<Configured> {
    let url = registry_url(context, "helm", &target.registry)?;
    let path = helm_repositories(target)?;
    let mut file: serde_yaml_ng::Value = match std::fs::read_to_string(&path) {
        Ok(text) => serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{} is not YAML", path.display()))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            serde_yaml_ng::from_str("apiVersion: \"\"\nrepositories: []\n")?
        }
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let entry: serde_yaml_ng::Value = serde_yaml_ng::to_value(serde_json::json!({
        "name": target.registry,
        "url": url.as_str().trim_end_matches('/'),
        "username": "arca",
        "password": token,
        "pass_credentials_all": false,
        "insecure_skip_tls_verify": false,
    }))?;
    let repositories = file
        .get_mut("repositories")
        .and_then(serde_yaml_ng::Value::as_sequence_mut)
        .with_context(|| format!("{}: `repositories` is not a list", path.display()))?;
    repositories.retain(|repository| {
        repository
            .get("name")
            .and_then(serde_yaml_ng::Value::as_str)
            != Some(target.registry.as_str())
    });
    repositories.push(entry);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_private(&path, &serde_yaml_ng::to_string(&file)?)?;
    let registry = target.registry.clone();
    let mut notes = vec![format!(
        "helm knows repository {registry}: `helm repo update`, then `helm install x {registry}/<chart>`"
    )];
    if !target.global {
        notes.push(format!(
            "pass `--repository-config {}` to helm to use it",
            path.display()
        ));
    }
    Ok(Configured {
        ecosystem: "helm",
        registry,
        files: vec![path],
        notes,
    })
}

/// Sets the JSON value at `keys` (objects made as needed) in the JSON file at `path`, and writes it.
fn merge_json(path: &Path, keys: &[&str], value: serde_json::Value) -> Result<()> {
    let mut file: serde_json::Value = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?,
        Ok(_) => serde_json::json!({}),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let mut slot = &mut file;
    for key in keys {
        let object = slot
            .as_object_mut()
            .with_context(|| format!("{}: {key} is not inside an object", path.display()))?;
        slot = object
            .entry(key.to_string())
            .or_insert_with(|| serde_json::json!({}));
    }
    *slot = value;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_private(path, &(serde_json::to_string_pretty(&file)? + "\n"))
}

/// composer's global home: `$COMPOSER_HOME`, else `$XDG_CONFIG_HOME/composer`, else
/// `~/.config/composer`.
fn composer_home() -> Result<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    Ok(match from_env("COMPOSER_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => match from_env("XDG_CONFIG_HOME") {
            Some(dir) => PathBuf::from(dir),
            None => home()?.join(".config"),
        }
        .join("composer"),
    })
}

fn composer(context: &Context, target: &Target, token: &str) -> Result<Configured> {
    let url = registry_url(context, "composer", &target.registry)?;
    // composer keys credentials by the URL's host, with its port when it names one.
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => bail!("the server URL has no host"),
    };
    let registry = target.registry.clone();
    let (auth, config) = if target.global {
        let home = composer_home()?;
        (home.join("auth.json"), home.join("config.json"))
    } else {
        let dir = target.directory()?;
        (dir.join("auth.json"), dir.join("composer.json"))
    };
    merge_json(
        &auth,
        &["http-basic", &host],
        serde_json::json!({ "username": SERVER_ID, "password": token }),
    )?;
    let mut repository = serde_json::json!({
        "type": "composer",
        "url": url.as_str().trim_end_matches('/'),
    });
    if url.scheme() == "http" {
        // composer refuses plain HTTP repositories unless told otherwise.
        repository["options"] = serde_json::json!({});
        merge_json(
            &config,
            &["config", "secure-http"],
            serde_json::json!(false),
        )?;
    }
    let key = format!("arca-{registry}");
    merge_json(&config, &["repositories", &key], repository)?;
    Ok(Configured {
        ecosystem: "composer",
        registry: registry.clone(),
        files: vec![auth, config],
        notes: vec![format!(
            "composer now knows repository {key}: `composer require vendor/name`; upload with \
             `arca artifact push composer {registry} <package.zip>`"
        )],
    })
}

/// The YAML mapping in the file at `path`; empty when there is none.
fn load_yaml(path: &Path) -> Result<serde_yaml_ng::Mapping> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{} is not a YAML mapping", path.display())),
        Ok(_) => Ok(serde_yaml_ng::Mapping::new()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(serde_yaml_ng::Mapping::new())
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes the YAML mapping `file` to `path`, creating its directory.
fn write_yaml(path: &Path, file: &serde_yaml_ng::Mapping) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_private(path, &serde_yaml_ng::to_string(file)?)
}

/// Merges `entries` into the YAML mapping at `path` (a bundler config, gem's credentials) and
/// writes it.
fn merge_yaml(path: &Path, entries: &[(String, String)]) -> Result<()> {
    let mut file = load_yaml(path)?;
    for (key, value) in entries {
        file.insert(key.clone().into(), value.clone().into());
    }
    write_yaml(path, &file)
}

fn conda(context: &Context, target: &Target, token: &str) -> Result<Configured> {
    let channel = registry_url(context, "conda", &target.registry)?;
    let host = channel
        .host_str()
        .context("the server URL has no host")?
        .to_string();
    let mut with_token = channel.clone();
    if with_token.set_username(SERVER_ID).is_err() || with_token.set_password(Some(token)).is_err()
    {
        bail!("cannot put credentials into {channel}");
    }
    let with_token = with_token.as_str().trim_end_matches('/').to_string();
    let (condarc, credentials) = if target.global {
        let home = home()?;
        (
            home.join(".condarc"),
            home.join(".rattler").join("credentials.json"),
        )
    } else {
        let dir = target.directory()?;
        (dir.join(".condarc"), dir.join("rattler-credentials.json"))
    };
    // The channel goes first; other channels stay after it, and an older entry for the same
    // channel (with another token) goes.
    let mut file = load_yaml(&condarc)?;
    let plain = channel.as_str().trim_end_matches('/');
    let same_channel = |entry: &str| {
        reqwest::Url::parse(entry).is_ok_and(|mut url| {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.as_str().trim_end_matches('/') == plain
        })
    };
    let mut channels = vec![serde_yaml_ng::Value::from(with_token)];
    if let Some(serde_yaml_ng::Value::Sequence(existing)) = file.get("channels") {
        channels.extend(
            existing
                .iter()
                .filter(|entry| !entry.as_str().is_some_and(same_channel))
                .cloned(),
        );
    }
    file.insert("channels".into(), serde_yaml_ng::Value::Sequence(channels));
    write_yaml(&condarc, &file)?;
    merge_json(
        &credentials,
        &[&host],
        serde_json::json!({ "BearerToken": token }),
    )?;
    let registry = target.registry.clone();
    let mut notes = vec![format!(
        "conda now installs from {plain} first; upload with `arca artifact push conda {registry}          <package>`"
    )];
    if !target.global {
        notes.push(format!(
            "use them with `export CONDARC={} RATTLER_AUTH_FILE={}`",
            condarc.display(),
            credentials.display()
        ));
    }
    Ok(Configured {
        ecosystem: "conda",
        registry,
        files: vec![condarc, credentials],
        notes,
    })
}

/// apt's files for a Debian registry: with `--global` `/etc/apt/sources.list.d/arca-<r>.list`,
/// `/etc/apt/keyrings/arca-<r>.asc` and `/etc/apt/auth.conf.d/arca-<r>.conf`; else the same three
/// in the current directory, for `apt-get -o Dir::Etc::SourceList=...`.
async fn apt(
    context: &Context,
    target: &Target,
    token: &str,
    suite: &str,
    components: &[String],
) -> Result<Configured> {
    let url = registry_url(context, "debian", &target.registry)?;
    let base = url.as_str().trim_end_matches('/').to_string();
    let key = context.client.signing_key(&target.registry).await?;
    let name = format!("arca-{}", target.registry);
    let (list, keyring, auth) = if target.global {
        let etc = Path::new("/etc/apt");
        (
            etc.join("sources.list.d").join(format!("{name}.list")),
            etc.join("keyrings").join(format!("{name}.asc")),
            etc.join("auth.conf.d").join(format!("{name}.conf")),
        )
    } else {
        let dir = target.directory()?;
        (
            dir.join(format!("{name}.list")),
            dir.join(format!("{name}.asc")),
            dir.join(format!("{name}-auth.conf")),
        )
    };
    for file in [&list, &keyring, &auth] {
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
    }
    std::fs::write(&keyring, &key.public_key)
        .with_context(|| format!("writing {}", keyring.display()))?;
    std::fs::write(
        &list,
        format!(
            "deb [signed-by={}] {base} {suite} {}\n",
            keyring.display(),
            components.join(" ")
        ),
    )
    .with_context(|| format!("writing {}", list.display()))?;
    // apt matches `machine` against the host, port and path the URL starts with; it sends
    // credentials over plain HTTP only to a machine written with its `http://`.
    let machine = match base.strip_prefix("https://") {
        Some(rest) => rest,
        None => base.as_str(),
    };
    write_private(
        &auth,
        &format!("machine {machine}/\nlogin {SERVER_ID}\npassword {token}\n"),
    )?;
    let mut notes = vec![format!(
        "apt now installs from {base} {suite}, signed by key {}; upload with `arca artifact push \
         debian {} <file.deb> --suite {suite}`",
        key.fingerprint, target.registry
    )];
    if !target.global {
        notes.push(format!(
            "use them with `apt-get -o Dir::Etc::SourceList={} -o Dir::Etc::SourceParts=/dev/null \
             -o Dir::Etc::netrc={} update`",
            list.display(),
            auth.display()
        ));
    }
    Ok(Configured {
        ecosystem: "apt",
        registry: target.registry.clone(),
        files: vec![list, keyring, auth],
        notes,
    })
}

/// dnf's `.repo` file for an RPM registry: `/etc/yum.repos.d/arca-<r>.repo` with `--global`, else
/// `arca-<r>.repo` in the current directory (for `dnf --setopt=reposdir=<dir>`). Metadata
/// signatures are checked (`repo_gpgcheck`); package signatures are the publishers' (`gpgcheck`
/// stays off: Arca does not re-sign packages).
fn dnf(context: &Context, target: &Target, token: &str) -> Result<Configured> {
    let url = registry_url(context, "rpm", &target.registry)?;
    let name = format!("arca-{}", target.registry);
    let file = if target.global {
        Path::new("/etc/yum.repos.d").join(format!("{name}.repo"))
    } else {
        target.directory()?.join(format!("{name}.repo"))
    };
    let repo = format!(
        "[{name}]\nname=Arca registry {registry}\nbaseurl={url}\nenabled=1\nrepo_gpgcheck=1\n\
         gpgcheck=0\ngpgkey={url}repodata/repomd.xml.key\nusername={SERVER_ID}\npassword={token}\n",
        registry = target.registry,
    );
    write_private(&file, &repo)?;
    let mut notes = vec![format!(
        "dnf now installs from {url} (repository {name}, metadata signatures checked); upload with \
         `arca artifact push rpm {} <file.rpm>`",
        target.registry
    )];
    if !target.global {
        notes.push(format!(
            "use it with `dnf --setopt=reposdir={} --repo={name} ...`",
            file.parent().unwrap_or(Path::new(".")).display()
        ));
    }
    Ok(Configured {
        ecosystem: "dnf",
        registry: target.registry.clone(),
        files: vec![file],
        notes,
    })
}

/// bundler's setting key for the credentials of `host` (`BUNDLE_127__0__0__1`: `.` as `__`, `-`
/// as `___`, upper case), which it uses for every source on that host.
fn bundler_host_key(host: &str) -> String {
    format!(
        "BUNDLE_{}",
        host.replace('-', "___")
            .replace('.', "__")
            .to_ascii_uppercase()
    )
}

fn gem(context: &Context, target: &Target, token: &str) -> Result<Configured> {
    let url = registry_url(context, "rubygems", &target.registry)?;
    let host = url
        .host_str()
        .context("the server URL has no host")?
        .to_string();
    let bundle_config = if target.global {
        match std::env::var_os("BUNDLE_USER_CONFIG").filter(|file| !file.is_empty()) {
            Some(file) => PathBuf::from(file),
            None => home()?.join(".bundle").join("config"),
        }
    } else {
        target.directory()?.join(".bundle").join("config")
    };
    merge_yaml(
        &bundle_config,
        &[(bundler_host_key(&host), format!("{SERVER_ID}:{token}"))],
    )?;
    let mut files = vec![bundle_config];
    let source = url.as_str().trim_end_matches('/').to_string();
    let registry = target.registry.clone();
    let mut notes = vec![format!(
        "bundler sends the token to {host}: put `source \"{source}\"` in the Gemfile"
    )];
    if target.global {
        // `gem push --host <source>` looks its key up by that exact string.
        let credentials = home()?.join(".gem").join("credentials");
        merge_yaml(&credentials, &[(source.clone(), token.to_string())])?;
        files.push(credentials);
        notes.push(format!("push with `gem push --host {source} <file.gem>`"));
    } else {
        notes.push(format!(
            "push with `GEM_HOST_API_KEY=<token> gem push --host {source} <file.gem>` or `arca \
             artifact push gem {registry} <file.gem>`"
        ));
    }
    Ok(Configured {
        ecosystem: "rubygems",
        registry,
        files,
        notes,
    })
}

/// The go command's env file (what `go env -w` writes): `$GOENV`, else
/// `$XDG_CONFIG_HOME/go/env`, else `~/.config/go/env` (`--global`); `./go.env` otherwise, which
/// the go command reads with `GOENV` pointing at it.
fn go_env_file(target: &Target) -> Result<PathBuf> {
    if !target.global {
        return Ok(target.directory()?.join("go.env"));
    }
    let from_env = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    Ok(match from_env("GOENV") {
        Some(file) => PathBuf::from(file),
        None => match from_env("XDG_CONFIG_HOME") {
            Some(dir) => PathBuf::from(dir),
            None => home()?.join(".config"),
        }
        .join("go")
        .join("env"),
    })
}

fn go(
    context: &Context,
    target: &Target,
    token: &str,
    private: Option<&str>,
) -> Result<Configured> {
    let mut proxy = context.client.url(&["go", &target.registry])?;
    if proxy.set_username(SERVER_ID).is_err() || proxy.set_password(Some(token)).is_err() {
        bail!("cannot put credentials into {proxy}");
    }
    let path = go_env_file(target)?;
    let mut entries = vec![(None, "GOPROXY", proxy.to_string())];
    if let Some(private) = private {
        entries.push((None, "GONOSUMDB", private.to_string()));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    merge_ini(&path, "=", &entries)?;
    let registry = target.registry.clone();
    let mut notes = vec![format!(
        "the go command now fetches modules through registry {registry}; publish with `arca \
         artifact push go {registry} <version> --dir <module>`"
    )];
    if !target.global {
        notes.push(format!("run `export GOENV={}` to use it", path.display()));
    }
    if private.is_none() {
        notes.push(
            "modules published only here are unknown to the public checksum database: name \
             them with --private (GONOSUMDB)"
                .to_string(),
        );
    }
    Ok(Configured {
        ecosystem: "go",
        registry,
        files: vec![path],
        notes,
    })
}

/// An INI-style file (`.npmrc`, `pip.conf`, `.pypirc`) as its lines, edited key by key so every line
/// this command does not set stays as it was. Lines before the first `[section]` header are the
/// section `None`; an indented line continues the value above it.
#[derive(Debug, Default)]
struct IniFile {
    lines: Vec<String>,
}

impl IniFile {
    /// The file at `path`; empty when there is none.
    fn load(path: &Path) -> Result<IniFile> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(IniFile::parse(&text)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(IniFile::default()),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn parse(text: &str) -> IniFile {
        IniFile {
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    /// The file's text, ending with a newline.
    fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }

    /// The name of a `[section]` header line.
    fn header(line: &str) -> Option<&str> {
        line.trim()
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .map(str::trim)
    }

    /// The key of a `key = value` line (not a comment, header or continuation).
    fn key(line: &str) -> Option<&str> {
        if line.starts_with([' ', '\t']) || line.trim_start().starts_with(['#', ';', '[']) {
            return None;
        }
        line.split_once('=').map(|(key, _)| key.trim())
    }

    fn is_continuation(line: &str) -> bool {
        line.starts_with([' ', '\t']) && !line.trim().is_empty()
    }

    /// The lines of `section` after its header, or `None` when it is missing.
    fn section(&self, section: Option<&str>) -> Option<Range<usize>> {
        let start = match section {
            None => 0,
            Some(name) => {
                self.lines
                    .iter()
                    .position(|line| Self::header(line) == Some(name))?
                    + 1
            }
        };
        let end = self.lines[start..]
            .iter()
            .position(|line| Self::header(line).is_some())
            .map_or(self.lines.len(), |offset| start + offset);
        Some(start..end)
    }

    /// The value of `key` in `section`, with its continuation lines.
    fn get(&self, section: Option<&str>, key: &str) -> Option<String> {
        let range = self.section(section)?;
        let at = range
            .clone()
            .find(|&i| Self::key(&self.lines[i]) == Some(key))?;
        let (_, first) = self.lines[at].split_once('=')?;
        let mut value = first.trim().to_string();
        for line in self.lines[at + 1..range.end]
            .iter()
            .take_while(|line| Self::is_continuation(line))
        {
            value.push('\n');
            value.push_str(line.trim());
        }
        Some(value)
    }

    /// Sets `key` in `section` to `value`: replaces the first line of that key (dropping further ones)
    /// or adds a line at the end of the section, adding the section when it is missing.
    fn set(&mut self, section: Option<&str>, key: &str, value: &str, separator: &str) {
        let line = format!("{key}{separator}{value}");
        let Some(range) = self.section(section) else {
            if self
                .lines
                .last()
                .is_some_and(|last| !last.trim().is_empty())
            {
                self.lines.push(String::new());
            }
            self.lines
                .push(format!("[{}]", section.unwrap_or_default()));
            self.lines.push(line);
            return;
        };
        let mut matches = range
            .clone()
            .filter(|&i| Self::key(&self.lines[i]) == Some(key));
        let Some(first) = matches.next() else {
            let mut at = range.end;
            while at > range.start && self.lines[at - 1].trim().is_empty() {
                at -= 1;
            }
            self.lines.insert(at, line);
            return;
        };
        let mut remove: Vec<usize> = matches.collect();
        // The continuation lines of every matching entry go too.
        let mut continuations = Vec::new();
        for &start in std::iter::once(&first).chain(&remove) {
            continuations.extend(
                (start + 1..range.end).take_while(|&i| Self::is_continuation(&self.lines[i])),
            );
        }
        remove.extend(continuations);
        remove.sort_unstable();
        for &i in remove.iter().rev() {
            self.lines.remove(i);
        }
        self.lines[first] = line;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_files_merge_key_by_key() {
        let mut file = IniFile::parse(
            "# mine\nregistry=http://old/\nsave-exact=true\n//old/:_authToken=x\n\n[section]\na = 1\n",
        );
        file.set(None, "registry", "http://new/", "=");
        file.set(None, "//new/:_authToken", "t", "=");
        file.set(Some("section"), "a", "2", " = ");
        file.set(Some("other"), "b", "3", " = ");
        assert_eq!(
            file.text(),
            "# mine\nregistry=http://new/\nsave-exact=true\n//old/:_authToken=x\n\
             //new/:_authToken=t\n\n[section]\na = 2\n\n[other]\nb = 3\n"
        );
    }

    #[test]
    fn ini_values_keep_continuations_until_replaced() {
        let mut file =
            IniFile::parse("[distutils]\nindex-servers =\n    pypi\n    test\n\n[pypi]\nx = 1\n");
        assert_eq!(
            file.get(Some("distutils"), "index-servers").as_deref(),
            Some("\npypi\ntest")
        );
        file.set(Some("distutils"), "index-servers", "pypi test arca", " = ");
        assert_eq!(
            file.text(),
            "[distutils]\nindex-servers = pypi test arca\n\n[pypi]\nx = 1\n"
        );
        assert_eq!(file.get(Some("missing"), "x"), None);
    }

    #[test]
    fn empty_files_get_their_first_lines() {
        let mut file = IniFile::default();
        file.set(None, "registry", "r", "=");
        file.set(Some("global"), "index-url", "u", " = ");
        assert_eq!(file.text(), "registry=r\n\n[global]\nindex-url = u\n");
    }
}
