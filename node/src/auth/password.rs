//! Passwords: argon2id hashing into PHC strings (done at the API edge, never in the state machine) and
//! verification with a short-lived in-memory cache, so that a package manager sending Basic
//! `user:password` on every request pays for argon2 once a minute rather than on every request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arca_protocol::User;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Longest password accepted (argon2 takes any length; this bounds the work per request).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// How long a successful verification is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// How many verifications are remembered at most.
const CACHE_ENTRIES: usize = 4096;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The password breaks the length rules.
    #[error(
        "a password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} bytes long, got {0} characters"
    )]
    Length(usize),
    /// argon2 refused (it does not for valid parameters).
    #[error("hashing the password: {0}")]
    Hash(String),
}

/// Checks the length rules.
pub fn validate(password: &str) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Length(chars));
    }
    Ok(())
}

/// The argon2id PHC string of `password`, with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    validate(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// True when `password` matches the PHC string `phc`.
pub fn verify(phc: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Runs CPU-heavy work without stalling the other tasks of a multi-threaded runtime.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// The hash unknown user names are checked against (made once, with the same parameters as real
/// ones, so the check costs the same).
static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A remembered successful verification.
#[derive(Debug)]
struct Verified {
    /// The PHC string it was checked against: a changed password misses the cache.
    phc: String,
    /// When it was checked.
    at: Instant,
}

/// Recent successful password verifications, keyed by a keyed hash of user name and password (the
/// key is random per process, so the cache holds nothing a password could be recovered from offline).
#[derive(Debug)]
pub struct PasswordCache {
    key: [u8; 32],
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], Verified>>,
}

impl Default for PasswordCache {
    fn default() -> Self {
        PasswordCache::with_ttl(CACHE_TTL)
    }
}

impl PasswordCache {
    /// A cache that remembers verifications for `ttl`.
    pub fn with_ttl(ttl: Duration) -> Self {
        PasswordCache {
            key: rand::rng().random(),
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn cache_key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(&(user.len() as u64).to_le_bytes());
        hasher.update(user.as_bytes());
        hasher.update(password.as_bytes());
        *hasher.finalize().as_bytes()
    }

    /// True when `password` is `user`'s password. Users without a password never match; disabled
    /// users are the caller's business.
    pub fn check(&self, user: &User, password: &str) -> bool {
        let Some(phc) = &user.password_hash else {
            return false;
        };
        let key = self.cache_key(&user.name, password);
        let now = Instant::now();
        let hit = self
            .entries
            .lock()
            .map(|entries| {
                entries
                    .get(&key)
                    .is_some_and(|v| &v.phc == phc && now.duration_since(v.at) < self.ttl)
            })
            .unwrap_or(false);
        if hit {
            return true;
        }
        if !blocking(|| verify(phc, password)) {
            return false;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_ENTRIES {
                entries.retain(|_, v| now.duration_since(v.at) < self.ttl);
                if entries.len() >= CACHE_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(
                key,
                Verified {
                    phc: phc.clone(),
                    at: now,
                },
            );
        }
        true
    }

    /// Does the work of checking `password` against a user's hash, for a user name that does not
    /// exist: a refusal then takes as long as a wrong password for a real user. Never matches.
    pub fn refuse_unknown_user(&self, password: &str) {
        let decoy = DECOY.get_or_init(|| hash("no user has this password").unwrap_or_default());
        blocking(|| verify(decoy, password));
    }

    /// How many verifications are remembered (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_protocol::UserKind;

    fn user(phc: Option<String>) -> User {
        User {
            name: "alice".into(),
            kind: UserKind::Human,
            password_hash: phc,
            disabled: false,
            grants: Default::default(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn hashes_are_argon2id_phc_strings_that_verify() {
        let phc = hash("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify(&phc, "correct horse"));
        assert!(!verify(&phc, "correct horsE"));
        assert!(!verify("not a phc string", "correct horse"));
        assert_ne!(hash("correct horse").expect("hash"), phc, "salted");
        assert!(matches!(hash("short"), Err(PasswordError::Length(5))));
    }

    #[test]
    fn the_cache_remembers_successes_only_for_the_same_hash_and_ttl() {
        let cache = PasswordCache::with_ttl(Duration::from_secs(60));
        let alice = user(Some(hash("password-one").expect("hash")));
        assert!(!cache.check(&alice, "wrong-password"));
        assert_eq!(cache.len(), 0, "failures are not remembered");
        assert!(cache.check(&alice, "password-one"));
        assert_eq!(cache.len(), 1);
        assert!(cache.check(&alice, "password-one"));
        // A new password: the remembered verification no longer counts.
        let changed = user(Some(hash("password-two").expect("hash")));
        assert!(!cache.check(&changed, "password-one"));
        assert!(cache.check(&changed, "password-two"));
        assert!(!cache.check(&user(None), "password-two"));
    }
}
