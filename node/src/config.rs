//! The node's one [`Config`]: defaults that make a single node just run, overridden by a TOML file,
//! then by `ARCA_*` environment variables, then by command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a config.
    #[error("parsing config file {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: toml::de::Error,
    },
    /// An environment variable has a value that does not parse.
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        /// Variable name.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// Everything a node needs to know to run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds (`127.0.0.1:0` picks a free port).
    pub http: SocketAddr,
    /// Directory holding all state: metadata database, chunks, admin token.
    pub data_dir: PathBuf,
    /// This node's Raft id.
    pub node_id: u64,
    /// Largest accepted upload body, in bytes.
    pub max_upload_bytes: u64,
    /// Build a metadata snapshot after this many log entries.
    pub snapshot_every: u64,
    /// Bytes of verified chunks kept in memory.
    pub chunk_cache_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 7070)),
            data_dir: PathBuf::from("./arca-data"),
            node_id: 1,
            max_upload_bytes: 64 * 1024 * 1024 * 1024,
            snapshot_every: 5000,
            chunk_cache_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--http`
    pub http: Option<SocketAddr>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Builds the configuration: defaults, then `file`, then the environment (`ARCA_HTTP`,
    /// `ARCA_DATA_DIR`, `ARCA_NODE_ID`, `ARCA_MAX_UPLOAD_BYTES`, `ARCA_SNAPSHOT_EVERY`,
    /// `ARCA_CHUNK_CACHE_BYTES`), then `flags`.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: Overrides,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.display().to_string(),
                    source,
                })?
            }
            None => Config::default(),
        };
        env_override(&env, "ARCA_HTTP", &mut config.http)?;
        env_override(&env, "ARCA_DATA_DIR", &mut config.data_dir)?;
        env_override(&env, "ARCA_NODE_ID", &mut config.node_id)?;
        env_override(&env, "ARCA_MAX_UPLOAD_BYTES", &mut config.max_upload_bytes)?;
        env_override(&env, "ARCA_SNAPSHOT_EVERY", &mut config.snapshot_every)?;
        env_override(
            &env,
            "ARCA_CHUNK_CACHE_BYTES",
            &mut config.chunk_cache_bytes,
        )?;
        if let Some(http) = flags.http {
            config.http = http;
        }
        if let Some(data_dir) = flags.data_dir {
            config.data_dir = data_dir;
        }
        Ok(config)
    }
}

fn env_override<T>(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    target: &mut T,
) -> Result<(), ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    if let Some(value) = env(name) {
        *target = value.parse().map_err(|e: T::Err| ConfigError::Env {
            name,
            value: value.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_file_env_flags_in_that_order() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("arca.toml");
        std::fs::write(
            &file,
            "http = \"127.0.0.1:8080\"\ndata_dir = \"/srv/arca\"\nnode_id = 3\n",
        )
        .expect("write");
        let defaults = Config::load(None, |_| None, Overrides::default()).expect("defaults");
        assert_eq!(defaults, Config::default());
        assert_eq!(defaults.http, SocketAddr::from(([127, 0, 0, 1], 7070)));
        assert_eq!(defaults.data_dir, PathBuf::from("./arca-data"));
        let from_file = Config::load(Some(&file), |_| None, Overrides::default()).expect("file");
        assert_eq!(from_file.http.port(), 8080);
        assert_eq!(from_file.node_id, 3);
        let env = |name: &str| (name == "ARCA_HTTP").then(|| "127.0.0.1:9090".to_string());
        let from_env = Config::load(Some(&file), env, Overrides::default()).expect("env");
        assert_eq!(from_env.http.port(), 9090);
        assert_eq!(from_env.data_dir, PathBuf::from("/srv/arca"));
        let flags = Overrides {
            http: Some("127.0.0.1:1".parse().expect("addr")),
            data_dir: None,
        };
        assert_eq!(
            Config::load(Some(&file), env, flags)
                .expect("flags")
                .http
                .port(),
            1
        );
    }

    #[test]
    fn bad_values_are_reported() {
        let env = |name: &str| (name == "ARCA_NODE_ID").then(|| "one".to_string());
        assert!(matches!(
            Config::load(None, env, Overrides::default()),
            Err(ConfigError::Env {
                name: "ARCA_NODE_ID",
                ..
            })
        ));
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("arca.toml");
        std::fs::write(&file, "htp = 1").expect("write");
        assert!(matches!(
            Config::load(Some(&file), |_| None, Overrides::default()),
            Err(ConfigError::Parse { .. })
        ));
    }
}
