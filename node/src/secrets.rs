//! Keys only the cluster's nodes hold, derived from the cluster CA's private key: every node receives
//! that key when it joins and keeps it in its `cluster/` directory, and the replicated state never
//! holds it. [`ClusterKeys`] signs OCI registry tokens (so any node accepts a token any node issued)
//! and seals the secrets the replicated state must keep, such as upstream passwords: a copy of the
//! metadata, its Raft log or a snapshot reveals none of them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// What a sealed value starts with (a value without it was stored by a build that did not seal).
const SEALED_PREFIX: &str = "sealed:v1:";

/// A sealed value that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Not valid base64, too short, or not sealed under this cluster's key.
    #[error("a sealed secret cannot be opened: {0}")]
    Unreadable(&'static str),
}

/// The keys of one cluster.
pub struct ClusterKeys {
    token_key: [u8; 32],
    form_key: [u8; 32],
    sealing: LessSafeKey,
}

impl std::fmt::Debug for ClusterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKeys(..)")
    }
}

impl ClusterKeys {
    /// The keys derived from `ca_key` (the cluster CA's private key, PEM).
    pub fn derive(ca_key: &str) -> ClusterKeys {
        let material = ca_key.trim().as_bytes();
        let token_key = blake3::derive_key("arca 2026 oci registry token signing", material);
        let sealing = blake3::derive_key("arca 2026 sealing secrets in replicated state", material);
        let form_key = blake3::derive_key("arca 2026 web ui form values", material);
        ClusterKeys {
            token_key,
            form_key,
            sealing: LessSafeKey::new(
                UnboundKey::new(&CHACHA20_POLY1305, &sealing)
                    .expect("a 32-byte key is a valid ChaCha20-Poly1305 key"),
            ),
        }
    }

    /// The key registry tokens are signed with.
    pub fn token_key(&self) -> &[u8; 32] {
        &self.token_key
    }

    /// The value the web UI's forms carry for a session whose token secret is `secret`: keyed, so
    /// that it tells nothing of the secret, and the same on every node.
    pub fn form_value(&self, secret: &str) -> String {
        let mac = blake3::keyed_hash(&self.form_key, secret.as_bytes());
        hex::encode(&mac.as_bytes()[..16])
    }

    /// `secret` sealed (ChaCha20-Poly1305 under a random nonce), as text to store.
    pub fn seal(&self, secret: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // The system's random source does not fail on the platforms Arca runs on; a zero nonce
        // would still seal (only its uniqueness across seals would be lost).
        let _ = SystemRandom::new().fill(&mut nonce);
        let mut sealed = secret.as_bytes().to_vec();
        if self
            .sealing
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .is_err()
        {
            // Only inputs over 256 GiB are refused.
            return String::new();
        }
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(stored))
    }

    /// The secret in `stored`: opened when sealed, as it is when stored by a build that did not seal.
    pub fn open(&self, stored: &str) -> Result<String, SealError> {
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_string());
        };
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SealError::Unreadable("not base64"))?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Unreadable("too short"));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| SealError::Unreadable("bad nonce"))?;
        let mut sealed = sealed.to_vec();
        let opened = self
            .sealing
            .open_in_place(nonce, Aad::empty(), &mut sealed)
            .map_err(|_| SealError::Unreadable("sealed under another cluster's key, or damaged"))?;
        String::from_utf8(opened.to_vec()).map_err(|_| SealError::Unreadable("not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_under_the_same_cluster_key() {
        let keys =
            ClusterKeys::derive("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n");
        let sealed = keys.seal("hunter2");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, keys.seal("hunter2"), "a fresh nonce each time");
        assert_eq!(keys.open(&sealed).expect("open"), "hunter2");
        // The PEM as written to disk (trimmed) derives the same keys.
        let reloaded =
            ClusterKeys::derive("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----");
        assert_eq!(reloaded.open(&sealed).expect("open"), "hunter2");
        assert_eq!(reloaded.token_key(), keys.token_key());
        let other = ClusterKeys::derive("another cluster");
        assert!(other.open(&sealed).is_err());
        assert_ne!(other.token_key(), keys.token_key());
        // A value stored before sealing existed is read as it is.
        assert_eq!(keys.open("plain").expect("plain"), "plain");
        let middle = SEALED_PREFIX.len() + (sealed.len() - SEALED_PREFIX.len()) / 2;
        let swapped = if sealed.as_bytes()[middle] == b'A' {
            "B"
        } else {
            "A"
        };
        let mut damaged = sealed.clone();
        damaged.replace_range(middle..middle + 1, swapped);
        assert!(keys.open(&damaged).is_err());
    }
}
