//! Who is calling and what they may do: bearer tokens (only their sha256 is stored, in the replicated
//! state) with scopes, an optional owner and an optional expiry; users and service accounts with role
//! grants (global or per registry); Basic credentials carrying a token or a real user's password;
//! anonymous reads of registries that allow them; and the admin token every new node creates on first
//! start. A token's effective permission is its scopes intersected with its owner's current grants.

pub mod issue;
pub mod password;
pub mod throttle;

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

use arca_protocol::api::{TokenInfo, WhoAmI};
use arca_protocol::identity::{any_allows, intersect};
use arca_protocol::{Command, CommandError, Grant, Registry, Role, Sha256, Token};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use sha2::Digest;

use crate::AppState;
use crate::meta::{Meta, ProposeError, StateRead};

/// Why a caller was turned away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or credentials that are not (or no longer) valid.
    #[error("{0}")]
    Unauthorized(Cow<'static, str>),
    /// Valid credentials whose grants do not allow the operation.
    #[error("{who} may not do what the {needed} role allows {}", match registry {
        Some(registry) => format!("on registry {registry}"),
        None => "across the whole server".to_string(),
    })]
    Forbidden {
        /// Who was refused (user or token name and the token id).
        who: String,
        /// The role needed.
        needed: Role,
        /// Where; `None` for a global operation.
        registry: Option<String>,
    },
    /// The credentials could not be checked: the metadata could not be read.
    #[error("credentials could not be checked: {0}")]
    Unavailable(String),
    /// Too many wrong passwords for this user name or from this address: not checked.
    #[error("too many failed logins for this user or from this address; try again in {0} s")]
    Throttled(u64),
}

impl From<crate::meta::StoreError> for AuthError {
    fn from(error: crate::meta::StoreError) -> Self {
        AuthError::Unavailable(error.to_string())
    }
}

impl AuthError {
    /// 401 with `message`.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        AuthError::Unauthorized(message.into())
    }
}

/// An authenticated identity and what it may do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user or service account acting, if any.
    pub user: Option<String>,
    /// The token presented, if any (a password login has none).
    pub token: Option<Token>,
    /// The effective grants: the token's scopes intersected with its owner's grants.
    pub grants: Vec<Grant>,
}

/// The prefix of a subject that names a user rather than a token id.
const USER_SUBJECT: &str = "user:";

impl Principal {
    /// The name audit trails and package managers show: the user's, else the token's.
    pub fn name(&self) -> String {
        self.user
            .clone()
            .or_else(|| self.token.as_ref().map(|t| t.name.clone()))
            .unwrap_or_default()
    }

    /// A stable subject that [`caller_for_subject`] resolves again: the token id, or `user:<name>`
    /// for a password login.
    pub fn subject(&self) -> String {
        match (&self.token, &self.user) {
            (Some(token), _) => token.id.clone(),
            (None, Some(user)) => format!("{USER_SUBJECT}{user}"),
            (None, None) => String::new(),
        }
    }

    fn describe(&self) -> String {
        match (&self.user, &self.token) {
            (Some(user), Some(token)) => format!("user {user} (token {})", token.id),
            (Some(user), None) => format!("user {user}"),
            (None, Some(token)) => format!("token {}", token.id),
            (None, None) => "this caller".to_string(),
        }
    }
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credentials were sent.
    Anonymous,
    /// Valid credentials.
    Principal(Principal),
}

impl Caller {
    /// The authenticated identity, if any.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Anonymous => None,
            Caller::Principal(principal) => Some(principal),
        }
    }

    /// Who the caller is and what it may do, as `GET /api/v1/whoami` shows it.
    pub fn whoami(&self) -> WhoAmI {
        let principal = self.principal();
        WhoAmI {
            token: principal.and_then(|p| p.token.as_ref()).map(token_info),
            user: principal.and_then(|p| p.user.clone()),
            grants: principal.map(|p| p.grants.clone()).unwrap_or_default(),
        }
    }

    /// Allows a global operation (creating registries, the cluster, gc, audit, users): only a
    /// global grant of `needed` or more does.
    pub fn require(&self, needed: Role) -> Result<(), AuthError> {
        self.check(None, needed)
    }

    /// Allows requests that only need some valid credentials.
    pub fn require_login(&self) -> Result<(), AuthError> {
        match self {
            Caller::Anonymous => Err(AuthError::unauthorized("authentication required")),
            Caller::Principal(_) => Ok(()),
        }
    }

    /// Allows the operation on the registry called `name` (`registry`: what it is, `None` when it
    /// does not exist): a global grant or one on that name of `needed` or more does, and anonymous
    /// reads of a registry that allows them pass. A caller without such a grant hears the same for
    /// a registry that exists and one that does not, so nobody learns which registries exist.
    pub fn require_on(
        &self,
        name: &str,
        registry: Option<&Registry>,
        needed: Role,
    ) -> Result<(), AuthError> {
        let anonymous_read =
            needed == Role::Read && registry.is_some_and(|r| r.allow_anonymous_read);
        match self {
            Caller::Anonymous if anonymous_read => Ok(()),
            _ => self.check(Some(name), needed),
        }
    }

    /// True when [`Caller::require_on`] would allow the operation.
    pub fn may(&self, registry: &Registry, needed: Role) -> bool {
        self.require_on(&registry.name, Some(registry), needed)
            .is_ok()
    }

    fn check(&self, registry: Option<&str>, needed: Role) -> Result<(), AuthError> {
        match self {
            Caller::Anonymous => Err(AuthError::unauthorized("authentication required")),
            Caller::Principal(p) if any_allows(&p.grants, registry, needed) => Ok(()),
            Caller::Principal(p) => Err(AuthError::Forbidden {
                who: p.describe(),
                needed,
                registry: registry.map(str::to_string),
            }),
        }
    }
}

/// The public description of a token.
pub fn token_info(token: &Token) -> TokenInfo {
    TokenInfo {
        id: token.id.clone(),
        name: token.name.clone(),
        owner: token.owner.clone(),
        scopes: token.scopes.clone(),
        expires_at: token.expires_at,
        created_at: token.created_at,
    }
}

/// sha256 of a token secret, as stored.
pub fn hash_secret(secret: &str) -> Sha256 {
    Sha256(sha2::Sha256::digest(secret.as_bytes()).into())
}

/// A new token secret and its stored hash.
pub fn new_secret() -> (String, Sha256) {
    let secret = format!(
        "{TOKEN_PREFIX}{}",
        hex::encode(rand::rng().random::<[u8; 24]>())
    );
    let hash = hash_secret(&secret);
    (secret, hash)
}

/// What a new token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    /// Label.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Grant>,
    /// The user it acts for.
    pub owner: Option<String>,
    /// When it stops working, unix milliseconds.
    pub expires_at: Option<u64>,
}

impl TokenSpec {
    /// A token of its own with one global role that does not expire.
    pub fn global(name: &str, role: Role) -> Self {
        TokenSpec {
            name: name.to_string(),
            scopes: vec![Grant::global(role)],
            owner: None,
            expires_at: None,
        }
    }

    /// A new token: its secret (shown once) and the record to store.
    pub fn generate(self, now: u64) -> (String, Token) {
        let (secret, secret_sha256) = new_secret();
        let token = Token {
            id: format!("tok_{}", hex::encode(rand::rng().random::<[u8; 6]>())),
            name: self.name,
            secret_sha256,
            scopes: self.scopes,
            owner: self.owner,
            expires_at: self.expires_at,
            created_at: now,
        };
        (secret, token)
    }
}

/// What an `Authorization` header carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Basic base64(user:password)`: the password is an Arca token (any user name) or the user's
    /// own password.
    Basic {
        /// The user name.
        user: String,
        /// A token or the user's password.
        password: String,
    },
    /// `Bearer <token>`.
    Bearer(String),
}

/// How every Arca token's secret starts.
pub const TOKEN_PREFIX: &str = "arca_";

/// Parses the `Authorization` header, if any.
pub fn credentials(headers: &HeaderMap) -> Result<Option<Credentials>, AuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = AuthError::unauthorized("malformed Authorization header");
    let value = value.to_str().map_err(|_| malformed.clone())?.trim();
    // Cargo sends its token as the whole header.
    if value.starts_with(TOKEN_PREFIX) && !value.contains(' ') {
        return Ok(Some(Credentials::Bearer(value.to_string())));
    }
    let (scheme, rest) = value.split_once(' ').ok_or(malformed.clone())?;
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
        _ => Err(AuthError::unauthorized(
            "the Authorization header must be 'Bearer <token>' or Basic with a token or the user's password",
        )),
    }
}

/// The caller a stored token stands for at `now` (unix milliseconds): refused once expired or when
/// its owner is gone or disabled; otherwise its scopes as far as its owner's grants allow.
pub fn caller_for_token(
    state: &(impl StateRead + ?Sized),
    token: &Token,
    now: u64,
) -> Result<Caller, AuthError> {
    if let Some(expires_at) = token.expires_at
        && expires_at <= now
    {
        return Err(AuthError::unauthorized(format!(
            "token {} expired at {}",
            token.id,
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(expires_at)
            )
        )));
    }
    let grants = match &token.owner {
        None => token.scopes.clone(),
        Some(owner) => {
            let user = state.user(owner)?.ok_or_else(|| {
                AuthError::unauthorized(format!("the owner of token {} was deleted", token.id))
            })?;
            if user.disabled {
                return Err(AuthError::unauthorized(format!("user {owner} is disabled")));
            }
            intersect(&token.scopes, &user.grant_list())
        }
    };
    Ok(Caller::Principal(Principal {
        user: token.owner.clone(),
        token: Some(token.clone()),
        grants,
    }))
}

/// The caller a user's own password login stands for (the password already checked).
fn caller_for_user(user: &arca_protocol::User) -> Result<Caller, AuthError> {
    if user.disabled {
        return Err(AuthError::unauthorized(format!(
            "user {} is disabled",
            user.name
        )));
    }
    Ok(Caller::Principal(Principal {
        user: Some(user.name.clone()),
        token: None,
        grants: user.grant_list(),
    }))
}

/// The caller an Arca token secret belongs to.
pub fn caller_for_secret(state: &AppState, secret: &str) -> Result<Caller, AuthError> {
    let hash = hash_secret(secret);
    let now = state.now_ms();
    let view = state.meta.view()?;
    match view.token_by_secret(&hash)? {
        Some(token) => caller_for_token(&view, &token, now),
        None => Err(AuthError::unauthorized("invalid or revoked token")),
    }
}

/// The caller a [`Principal::subject`] names, as it stands now (a revoked token, a deleted or
/// disabled user are refused).
pub fn caller_for_subject(state: &AppState, subject: &str) -> Result<Caller, AuthError> {
    let now = state.now_ms();
    let view = state.meta.view()?;
    match subject.strip_prefix(USER_SUBJECT) {
        Some(name) => view
            .user(name)?
            .ok_or_else(|| AuthError::unauthorized(format!("user {name} was deleted")))
            .and_then(|user| caller_for_user(&user)),
        None => view
            .token(subject)?
            .ok_or_else(|| {
                AuthError::unauthorized("the token behind these credentials was revoked")
            })
            .and_then(|token| caller_for_token(&view, &token, now)),
    }
}

/// A password check that found no argon2 turn: try again in a second (429).
fn busy(_: password::PasswordError) -> AuthError {
    AuthError::Throttled(1)
}

/// The caller a user name and password stand for, checked against the argon2 hash (through the
/// node's cache of recent verifications).
pub fn caller_for_password(
    state: &AppState,
    name: &str,
    password: &str,
) -> Result<Caller, AuthError> {
    let invalid = || AuthError::unauthorized("invalid user name, password or token");
    if let Err(wait) = state.logins.check(name) {
        return Err(AuthError::Throttled(wait.as_secs().max(1)));
    }
    let Some(user) = state.meta.read(|view| view.user(name))? else {
        // As much work, and the same answer, as a wrong password: neither time nor words tell
        // which names exist.
        state
            .passwords
            .refuse_unknown_user(password)
            .map_err(busy)?;
        state.logins.failed(name);
        return Err(invalid());
    };
    if !state.passwords.check(&user, password).map_err(busy)? {
        state.logins.failed(name);
        return Err(invalid());
    }
    state.logins.succeeded(name);
    caller_for_user(&user)
}

/// Identifies the caller from `Authorization: Bearer <token>`, or Basic credentials whose password
/// is a token (any user name) or the named user's own password.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, AuthError> {
    match credentials(headers)? {
        None => Ok(Caller::Anonymous),
        Some(Credentials::Bearer(secret)) => caller_for_secret(state, &secret),
        Some(Credentials::Basic { user, password }) => {
            let view = state.meta.view()?;
            if view.token_by_secret(&hash_secret(&password))?.is_some() {
                caller_for_secret(state, &password)
            } else {
                caller_for_password(state, &user, &password)
            }
        }
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
            let (secret, _) = new_secret();
            write_private_file(&path, &secret).map_err(io_error)?;
            tracing::info!(path = %path.display(), "created the admin token");
            secret
        }
        Err(error) => return Err(io_error(error)),
    };
    let hash = hash_secret(&secret);
    let (_, mut token) = TokenSpec::global("admin", Role::Admin).generate(now);
    token.secret_sha256 = hash;
    // A node that is joining may still be receiving the cluster's state (a snapshot of millions of
    // versions takes a while to install): the token is proposed again, unchanged, until this node
    // knows it (a proposal committed but not yet applied here is refused as a duplicate next time).
    let started = std::time::Instant::now();
    loop {
        let known = meta
            .read(|view| view.token_by_secret(&hash))
            .map_err(ProposeError::from)?;
        if known.is_some() {
            return Ok(path);
        }
        match meta
            .propose(Command::CreateToken {
                token: token.clone(),
            })
            .await
        {
            Ok(()) => {}
            Err(ProposeError::Refused(CommandError::AlreadyExists(_))) => {
                // Committed, not yet applied here.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(ProposeError::Unavailable(reason)) if started.elapsed() < ADMIN_TOKEN_PATIENCE => {
                tracing::info!(%reason, "the admin token is not recorded yet (catching up with the cluster); trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// How long a starting node keeps trying to record its admin token.
const ADMIN_TOKEN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3600);

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
    use crate::meta::testing::TestState;
    use arca_protocol::{PackageType, User, UserKind};

    fn caller(grants: Vec<Grant>) -> Caller {
        Caller::Principal(Principal {
            user: None,
            token: None,
            grants,
        })
    }

    fn registry(name: &str, anonymous: bool) -> Registry {
        Registry {
            name: name.into(),
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
            firewall: Default::default(),
        }
    }

    fn user(name: &str, grants: &[Grant], disabled: bool) -> User {
        User {
            name: name.into(),
            kind: UserKind::Human,
            password_hash: None,
            disabled,
            grants: grants.iter().cloned().collect(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn global_roles_and_anonymous_reads() {
        let admin = caller(vec![Grant::global(Role::Admin)]);
        assert!(admin.require(Role::Write).is_ok());
        assert!(matches!(
            caller(vec![Grant::global(Role::Read)]).require(Role::Write),
            Err(AuthError::Forbidden { .. })
        ));
        assert!(matches!(
            Caller::Anonymous.require(Role::Read),
            Err(AuthError::Unauthorized(_))
        ));
        let open = registry("r", true);
        let closed = registry("r", false);
        assert!(Caller::Anonymous.may(&open, Role::Read));
        assert!(!Caller::Anonymous.may(&open, Role::Write));
        assert!(!Caller::Anonymous.may(&closed, Role::Read));
        assert!(Caller::Anonymous.require_on("r", None, Role::Read).is_err());
    }

    #[test]
    fn registry_grants_allow_only_their_registry_and_no_global_operation() {
        let here = registry("here", false);
        let there = registry("there", false);
        let contributor_here = caller(vec![Grant::on("here", Role::Write)]);
        assert!(contributor_here.may(&here, Role::Write));
        assert!(contributor_here.may(&here, Role::Read));
        assert!(!contributor_here.may(&here, Role::Admin));
        assert!(!contributor_here.may(&there, Role::Read));
        let refused = contributor_here
            .require_on("there", Some(&there), Role::Read)
            .expect_err("other registry");
        assert!(refused.to_string().contains("registry there"), "{refused}");
        let missing = contributor_here
            .require_on("nowhere", None, Role::Read)
            .expect_err("a missing registry needs a global grant");
        assert_eq!(
            missing.to_string(),
            refused.to_string().replace("there", "nowhere"),
            "a missing registry and a forbidden one are refused alike"
        );
        assert!(
            contributor_here.require(Role::Read).is_err(),
            "a registry grant is not a global one"
        );
    }

    #[test]
    fn tokens_expire_and_are_capped_by_their_owner() {
        let state = TestState::new();
        let create = |user| state.apply(Command::CreateUser { user });
        create(user("alice", &[Grant::on("here", Role::Write)], false)).expect("alice");
        create(user("bob", &[Grant::global(Role::Admin)], true)).expect("bob");
        let here = registry("here", false);

        let (_, owned) = TokenSpec {
            name: "t".into(),
            scopes: vec![Grant::global(Role::Admin)],
            owner: Some("alice".into()),
            expires_at: Some(1_000),
        }
        .generate(0);
        let alice = caller_for_token(&state.view(), &owned, 999).expect("valid");
        assert!(alice.may(&here, Role::Write));
        assert!(
            !alice.may(&here, Role::Admin),
            "an admin scope does not lift the owner's grants"
        );
        assert!(alice.require(Role::Read).is_err());
        assert_eq!(alice.whoami().user.as_deref(), Some("alice"));
        assert_eq!(alice.whoami().grants, vec![Grant::on("here", Role::Write)]);

        let expired = caller_for_token(&state.view(), &owned, 1_000).expect_err("expired");
        assert!(expired.to_string().contains("expired"), "{expired}");

        // The owner's grants count as they are now.
        state
            .apply(Command::DeleteUser {
                name: "alice".into(),
            })
            .expect("deleted");
        state
            .apply(Command::CreateUser {
                user: user("alice", &[], false),
            })
            .expect("created again");
        assert!(
            !caller_for_token(&state.view(), &owned, 0)
                .expect("valid")
                .may(&here, Role::Read)
        );

        let (_, disabled) = TokenSpec {
            owner: Some("bob".into()),
            ..TokenSpec::global("b", Role::Admin)
        }
        .generate(0);
        let refused = caller_for_token(&state.view(), &disabled, 0).expect_err("disabled owner");
        assert!(refused.to_string().contains("disabled"), "{refused}");
        state
            .apply(Command::DeleteUser { name: "bob".into() })
            .expect("deleted");
        assert!(caller_for_token(&state.view(), &disabled, 0).is_err());

        // A token of its own is its scopes.
        let (_, free) = TokenSpec::global("admin", Role::Admin).generate(0);
        assert!(
            caller_for_token(&state.view(), &free, u64::MAX)
                .expect("no expiry")
                .require(Role::Admin)
                .is_ok()
        );
    }

    #[test]
    fn secrets_are_stored_hashed() {
        let (secret, token) = TokenSpec::global("ci", Role::Write).generate(5);
        assert!(secret.starts_with("arca_"));
        assert_eq!(token.secret_sha256, hash_secret(&secret));
        assert!(!format!("{token:?}").contains(&secret));
    }
}
