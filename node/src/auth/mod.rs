//! Who is calling and what they may do: bearer tokens (only their sha256 is stored, in the replicated
//! state), roles, anonymous reads of registries that allow them, and the admin token every new node
//! creates on first start.

use std::io::Write;
use std::path::{Path, PathBuf};

use arca_protocol::api::TokenInfo;
use arca_protocol::{Command, Registry, Role, Sha256, Token};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use sha2::Digest;

use crate::meta::{Meta, ProposeError};

/// Why a caller was turned away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or credentials that match no token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A valid token whose role does not allow the operation.
    #[error("token {token} has role {role}, this needs {needed}")]
    Forbidden {
        /// The token's id.
        token: String,
        /// Its role.
        role: Role,
        /// The role needed.
        needed: Role,
    },
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credentials were sent.
    Anonymous,
    /// A valid token.
    Token(Token),
}

impl Caller {
    /// The token as the API shows it.
    pub fn info(&self) -> Option<TokenInfo> {
        match self {
            Caller::Anonymous => None,
            Caller::Token(token) => Some(token_info(token)),
        }
    }

    /// Allows the operation when the caller's role includes `needed`.
    pub fn require(&self, needed: Role) -> Result<(), AuthError> {
        match self {
            Caller::Anonymous => Err(AuthError::Unauthorized("authentication required")),
            Caller::Token(token) if token.role.allows(needed) => Ok(()),
            Caller::Token(token) => Err(AuthError::Forbidden {
                token: token.id.clone(),
                role: token.role,
                needed,
            }),
        }
    }

    /// Allows the operation on `registry` (which may not exist): like [`Caller::require`], except that
    /// anonymous reads of a registry that allows them pass.
    pub fn require_on(&self, registry: Option<&Registry>, needed: Role) -> Result<(), AuthError> {
        let anonymous_read =
            needed == Role::Read && registry.is_some_and(|r| r.allow_anonymous_read);
        match self {
            Caller::Anonymous if anonymous_read => Ok(()),
            _ => self.require(needed),
        }
    }
}

/// The public description of a token.
pub fn token_info(token: &Token) -> TokenInfo {
    TokenInfo {
        id: token.id.clone(),
        name: token.name.clone(),
        role: token.role,
        created_at: token.created_at,
    }
}

/// sha256 of a token secret, as stored.
pub fn hash_secret(secret: &str) -> Sha256 {
    Sha256(sha2::Sha256::digest(secret.as_bytes()).into())
}

/// A new token: its secret (shown once) and the record to store.
pub fn generate_token(name: &str, role: Role, now: u64) -> (String, Token) {
    let mut rng = rand::rng();
    let secret = format!("arca_{}", hex::encode(rng.random::<[u8; 24]>()));
    let token = Token {
        id: format!("tok_{}", hex::encode(rng.random::<[u8; 6]>())),
        name: name.to_string(),
        secret_sha256: hash_secret(&secret),
        role,
        created_at: now,
    };
    (secret, token)
}

/// What an `Authorization` header carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Basic base64(user:password)`: package managers send the token as the password.
    Basic {
        /// The user name (ignored: the token says who is calling).
        user: String,
        /// The password: an Arca token.
        password: String,
    },
    /// `Bearer <token>`.
    Bearer(String),
}

/// Parses the `Authorization` header, if any.
pub fn credentials(headers: &HeaderMap) -> Result<Option<Credentials>, AuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = AuthError::Unauthorized("malformed Authorization header");
    let (scheme, rest) = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .ok_or(malformed.clone())?;
    let rest = rest.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Ok(Some(Credentials::Bearer(rest.to_string()))),
        "basic" => {
            let decoded = STANDARD
                .decode(rest)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or(malformed.clone())?;
            let (user, password) = decoded.split_once(':').ok_or(malformed)?;
            Ok(Some(Credentials::Basic {
                user: user.to_string(),
                password: password.to_string(),
            }))
        }
        _ => Err(AuthError::Unauthorized(
            "the Authorization header must be 'Bearer <token>' or Basic with the token as password",
        )),
    }
}

/// The caller an Arca token secret belongs to.
pub fn caller_for_secret(meta: &Meta, secret: &str) -> Result<Caller, AuthError> {
    let hash = hash_secret(secret);
    meta.read(|state| state.token_by_secret(&hash).cloned())
        .map(Caller::Token)
        .ok_or(AuthError::Unauthorized("invalid or revoked token"))
}

/// Identifies the caller from `Authorization: Bearer <token>` or Basic credentials whose password is
/// a token.
pub fn authenticate(meta: &Meta, headers: &HeaderMap) -> Result<Caller, AuthError> {
    match credentials(headers)? {
        None => Ok(Caller::Anonymous),
        Some(
            Credentials::Bearer(secret)
            | Credentials::Basic {
                password: secret, ..
            },
        ) => caller_for_secret(meta, &secret),
    }
}

/// Why the admin token could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Reading or writing the token file failed.
    #[error("admin token file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The token could not be recorded.
    #[error("recording the admin token: {0}")]
    Propose(#[from] ProposeError),
}

/// Makes sure the admin token in `<data_dir>/admin.token` exists and is known to the cluster. On first
/// start a new token is generated; the file (mode 0600) is written before the token is recorded, so a
/// crash in between is repaired on the next start. Returns the file's path.
pub async fn ensure_admin_token(
    meta: &Meta,
    data_dir: &Path,
    now: u64,
) -> Result<PathBuf, BootstrapError> {
    let path = data_dir.join("admin.token");
    let io_error = |source| BootstrapError::Io {
        path: path.display().to_string(),
        source,
    };
    let secret = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().to_string(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let (secret, _) = generate_token("admin", Role::Admin, now);
            write_private_file(&path, &secret).map_err(io_error)?;
            tracing::info!(path = %path.display(), "created the admin token");
            secret
        }
        Err(error) => return Err(io_error(error)),
    };
    let hash = hash_secret(&secret);
    if meta.read(|state| state.token_by_secret(&hash).is_none()) {
        let (_, mut token) = generate_token("admin", Role::Admin, now);
        token.secret_sha256 = hash;
        meta.propose(Command::CreateToken { token }).await?;
    }
    Ok(path)
}

/// Writes `contents` (and a newline) to `path` readable by the owner only, durably: a temp file, fsync,
/// rename, fsync of the directory.
pub(crate) fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(".tmp");
    let temp = path.with_file_name(temp_name);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&temp)?;
    writeln!(file, "{contents}")?;
    file.sync_all()?;
    std::fs::rename(&temp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_protocol::PackageType;

    fn token(role: Role) -> Caller {
        Caller::Token(generate_token("t", role, 0).1)
    }

    fn registry(anonymous: bool) -> Registry {
        Registry {
            name: "r".into(),
            package_type: PackageType::Generic,
            description: String::new(),
            immutable: false,
            allow_anonymous_read: anonymous,
            allow_redeploy: false,
            created_at: 0,
            metadata: Default::default(),
            replication: Default::default(),
            kind: Default::default(),
            upstream: None,
            members: Vec::new(),
            publish_to: None,
            audit_downloads: false,
            cleanup: Default::default(),
        }
    }

    #[test]
    fn roles_and_anonymous_reads() {
        assert!(token(Role::Admin).require(Role::Write).is_ok());
        assert!(matches!(
            token(Role::Read).require(Role::Write),
            Err(AuthError::Forbidden { .. })
        ));
        assert!(matches!(
            Caller::Anonymous.require(Role::Read),
            Err(AuthError::Unauthorized(_))
        ));
        let open = registry(true);
        let closed = registry(false);
        assert!(
            Caller::Anonymous
                .require_on(Some(&open), Role::Read)
                .is_ok()
        );
        assert!(
            Caller::Anonymous
                .require_on(Some(&open), Role::Write)
                .is_err()
        );
        assert!(
            Caller::Anonymous
                .require_on(Some(&closed), Role::Read)
                .is_err()
        );
        assert!(Caller::Anonymous.require_on(None, Role::Read).is_err());
    }

    #[test]
    fn secrets_are_stored_hashed() {
        let (secret, token) = generate_token("ci", Role::Write, 5);
        assert!(secret.starts_with("arca_"));
        assert_eq!(token.secret_sha256, hash_secret(&secret));
        assert!(!format!("{token:?}").contains(&secret));
    }
}
