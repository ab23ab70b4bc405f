//! The configuration file `arca login` writes and later commands read: TOML with `server` and `token`,
//! at `$ARCA_CONFIG`, else `$XDG_CONFIG_HOME/arca/config.toml`, else `$HOME/.config/arca/config.toml`;
//! and [`write_private`], how every file holding a token is written.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Saved connection settings. Unknown keys are refused, so a file that is not this configuration (for
/// example a node's, which also answers to `ARCA_CONFIG`) is never read as one or overwritten.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Server URL.
    pub server: Option<String>,
    /// API token.
    pub token: Option<String>,
}

/// Where the configuration file lives, or `None` when no variable says.
fn path() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(path) = var("ARCA_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let config_dir = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(config_dir.join("arca").join("config.toml"))
}

impl Config {
    /// The saved configuration; empty when there is no file.
    pub fn load() -> Result<Config> {
        let Some(path) = path() else {
            return Ok(Config::default());
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes the configuration, readable by its owner only, and answers where.
    pub fn save(&self) -> Result<PathBuf> {
        let path = path().context(
            "no place for the configuration file: set ARCA_CONFIG, XDG_CONFIG_HOME or HOME",
        )?;
        let text = toml::to_string(self).context("encoding the configuration")?;
        write_private(&path, &text)?;
        Ok(path)
    }
}

/// Writes `text` to `path` (creating its directory), readable and writable by its owner only: every
/// file the CLI writes holds a token. An existing file is replaced and its mode tightened.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    // The mode above only applies to a new file; tighten an existing one too.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
