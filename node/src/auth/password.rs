//! Passwords: argon2id hashing into PHC strings (done at the API edge, never in the state machine) and
//! verification with a short-lived in-memory cache, so that a package manager sending Basic
//! `user:password` on every request pays for argon2 once a minute rather than on every request.
//! At most [`CONCURRENT_HASHES`] argon2 runs at once (each holds 19 MiB): more wait up to
//! [`HASH_WAIT`] for a turn, then are refused as [`PasswordError::Busy`] (429), so a flood of
//! password checks from many addresses cannot take the node's memory.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
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

/// argon2 runs (hashes and verifications) at once on a node.
pub const CONCURRENT_HASHES: usize = 4;

/// How long a password check waits for its turn before it is refused.
pub const HASH_WAIT: Duration = Duration::from_secs(2);

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
    /// Every argon2 turn stayed taken for [`HASH_WAIT`].
    #[error("too many password checks at once on this node; retry in a moment")]
    Busy,
}

/// The node's argon2 turns: at most [`CONCURRENT_HASHES`] runs at once.
#[derive(Debug, Default)]
struct Turns {
    taken: Mutex<usize>,
    freed: Condvar,
}

impl Turns {
    /// Runs argon2 `work` in a turn (blocking while it waits for one, at most [`HASH_WAIT`]).
    fn run<T>(&self, work: impl FnOnce() -> T) -> Result<T, PasswordError> {
        let deadline = Instant::now() + HASH_WAIT;
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        while *taken >= CONCURRENT_HASHES {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PasswordError::Busy);
            }
            taken = self
                .freed
                .wait_timeout(taken, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *taken += 1;
        drop(taken);
        /// Gives the turn back however `work` ends.
        struct Release<'a>(&'a Turns);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                let mut taken = self.0.taken.lock().unwrap_or_else(|p| p.into_inner());
                *taken -= 1;
                self.0.freed.notify_one();
            }
        }
        let _release = Release(self);
        Ok(work())
    }
}

/// Checks the length rules.
pub fn validate(password: &str) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Length(chars));
    }
    Ok(())
}

/// The argon2id PHC string of `password`, with a fresh random salt (no turn taken: see
/// [`PasswordCache::hash`]).
fn hash_now(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// True when `password` matches the PHC string `phc` (no turn taken).
fn verify_now(phc: &str, password: &str) -> bool {
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
    turns: Turns,
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
            turns: Turns::default(),
        }
    }

    /// The argon2id PHC string of `password`, with a fresh random salt, in one of the node's
    /// argon2 turns (blocking while it waits: call it off the async workers).
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        validate(password)?;
        self.turns.run(|| hash_now(password))?
    }

    fn cache_key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(&(user.len() as u64).to_le_bytes());
        hasher.update(user.as_bytes());
        hasher.update(password.as_bytes());
        *hasher.finalize().as_bytes()
    }

    /// True when `password` is `user`'s password. Users without a password never match; disabled
    /// users are the caller's business. [`PasswordError::Busy`] when no argon2 turn came.
    pub fn check(&self, user: &User, password: &str) -> Result<bool, PasswordError> {
        let Some(phc) = &user.password_hash else {
            return Ok(false);
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
            return Ok(true);
        }
        if !blocking(|| self.turns.run(|| verify_now(phc, password)))? {
            return Ok(false);
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
        Ok(true)
    }

    /// Does the work of checking `password` against a user's hash, for a user name that does not
    /// exist: a refusal then takes as long as a wrong password for a real user. Never matches.
    pub fn refuse_unknown_user(&self, password: &str) -> Result<(), PasswordError> {
        blocking(|| {
            self.turns.run(|| {
                let decoy =
                    DECOY.get_or_init(|| hash_now("no user has this password").unwrap_or_default());
                verify_now(decoy, password);
            })
        })
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
        let cache = PasswordCache::default();
        let hash = |password: &str| cache.hash(password);
        let verify = |phc: &str, password: &str| -> Result<bool, PasswordError> {
            Ok(verify_now(phc, password))
        };
        let phc = hash("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify(&phc, "correct horse").expect("a turn"));
        assert!(!verify(&phc, "correct horsE").expect("a turn"));
        assert!(!verify("not a phc string", "correct horse").expect("a turn"));
        assert_ne!(hash("correct horse").expect("hash"), phc, "salted");
        assert!(matches!(hash("short"), Err(PasswordError::Length(5))));
    }

    #[test]
    fn the_cache_remembers_successes_only_for_the_same_hash_and_ttl() {
        let cache = PasswordCache::with_ttl(Duration::from_secs(60));
        let hash = |password: &str| cache.hash(password);
        let alice = user(Some(hash("password-one").expect("hash")));
        assert!(!cache.check(&alice, "wrong-password").expect("a turn"));
        assert_eq!(cache.len(), 0, "failures are not remembered");
        assert!(cache.check(&alice, "password-one").expect("a turn"));
        assert_eq!(cache.len(), 1);
        assert!(cache.check(&alice, "password-one").expect("a turn"));
        // A new password: the remembered verification no longer counts.
        let changed = user(Some(hash("password-two").expect("hash")));
        assert!(!cache.check(&changed, "password-one").expect("a turn"));
        assert!(cache.check(&changed, "password-two").expect("a turn"));
        assert!(!cache.check(&user(None), "password-two").expect("a turn"));
    }

    #[test]
    fn at_most_a_few_argon2_runs_at_once_and_the_rest_are_refused_in_time() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let turns = Turns::default();
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let outcomes: Vec<Result<(), PasswordError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..3 * CONCURRENT_HASHES)
                .map(|_| {
                    scope.spawn(|| {
                        turns.run(|| {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(HASH_WAIT + Duration::from_millis(300));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().expect("worker"))
                .collect()
        });
        assert_eq!(most.load(Ordering::SeqCst), CONCURRENT_HASHES);
        let refused = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Err(PasswordError::Busy)))
            .count();
        assert_eq!(
            refused,
            2 * CONCURRENT_HASHES,
            "those that waited longer than HASH_WAIT"
        );
    }
}
