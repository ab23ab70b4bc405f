//! The OpenPGP keys Debian and RPM registries sign their repository metadata with: made when such a
//! registry is created (and on each rotation), kept in the replicated state with the secret half
//! sealed under the cluster's key ([`crate::secrets`]), opened by the node that signs. Keys are
//! v4 Ed25519 (the EdDSA form GnuPG 2.2, apt's gpgv and rpm 4.18 read); signatures are SHA-512,
//! cleartext (`InRelease`) or detached and armoured (`Release.gpg`, `repomd.xml.asc`).

use arca_protocol::SigningKey;
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, KeyType,
    SecretKeyParamsBuilder, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{SignatureConfig, SignatureType};
use pgp::types::{KeyDetails, Password};

use crate::secrets::ClusterKeys;

/// Why a key could not be made, opened or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The OpenPGP library refused.
    #[error("OpenPGP: {0}")]
    OpenPgp(#[from] pgp::errors::Error),
    /// The sealed secret could not be opened.
    #[error(transparent)]
    Sealed(#[from] crate::secrets::SealError),
}

/// A key made for `registry`, its secret half sealed with `keys`, dated `created_at`.
pub fn generate(
    registry: &str,
    keys: &ClusterKeys,
    created_at: u64,
) -> Result<SigningKey, SigningError> {
    let params = SecretKeyParamsBuilder::default()
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(format!(
            "Arca registry {registry} <{registry}@arca.invalid>"
        ))
        .preferred_hash_algorithms([HashAlgorithm::Sha512, HashAlgorithm::Sha256][..].into())
        .build()
        .map_err(|e| pgp::errors::Error::Message {
            message: e.to_string(),
            backtrace: None,
        })?;
    let secret = params.generate(rand_08::thread_rng())?;
    let public = secret
        .to_public_key()
        .to_armored_string(ArmorOptions::default())?;
    Ok(SigningKey {
        sealed_secret: keys.seal(&secret.to_armored_string(ArmorOptions::default())?),
        public_key: public,
        fingerprint: hex::encode_upper(secret.fingerprint().as_bytes()),
        created_at,
    })
}

/// A registry's key, opened to sign with.
pub struct RepositoryKey {
    secret: SignedSecretKey,
}

impl RepositoryKey {
    /// Opens `stored` with the cluster's `keys`.
    pub fn open(stored: &SigningKey, keys: &ClusterKeys) -> Result<RepositoryKey, SigningError> {
        let armored = keys.open(&stored.sealed_secret)?;
        let (secret, _) = SignedSecretKey::from_string(&armored)?;
        Ok(RepositoryKey { secret })
    }

    /// `text` cleartext-signed (a Debian `InRelease`). Trailing spaces and tabs of each line are
    /// removed first: verifiers ignore them, so a signature over them would not verify.
    pub fn clearsign(&self, text: &str) -> Result<String, SigningError> {
        let text: String = text
            .split_inclusive('\n')
            .map(|line| {
                let (content, end) = line
                    .strip_suffix('\n')
                    .map_or((line, ""), |content| (content, "\n"));
                format!("{}{end}", content.trim_end_matches([' ', '\t']))
            })
            .collect();
        let config = self.config(SignatureType::Text);
        let message = CleartextSignedMessage::new(
            &text,
            config,
            &self.secret.primary_key,
            &Password::empty(),
        )?;
        Ok(message.to_armored_string(ArmorOptions::default())?)
    }

    /// A detached, armoured signature over `data` (`Release.gpg`, `repomd.xml.asc`).
    pub fn sign_detached(&self, data: &[u8]) -> Result<String, SigningError> {
        let signature = DetachedSignature::sign_binary_data(
            rand_08::thread_rng(),
            &self.secret.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha512,
            data,
        )?;
        Ok(signature.to_armored_string(ArmorOptions::default())?)
    }

    /// A v4 signature of `kind` by this key over SHA-512, dated now, naming its issuer.
    fn config(&self, kind: SignatureType) -> SignatureConfig {
        let mut config = SignatureConfig::v4(kind, self.secret.algorithm(), HashAlgorithm::Sha512);
        config.hashed_subpackets = vec![
            pgp::packet::Subpacket::regular(pgp::packet::SubpacketData::SignatureCreationTime(
                pgp::types::Timestamp::now(),
            )),
            pgp::packet::Subpacket::regular(pgp::packet::SubpacketData::IssuerFingerprint(
                self.secret.fingerprint(),
            )),
        ]
        .into_iter()
        .filter_map(Result::ok)
        .collect();
        config.unhashed_subpackets = pgp::packet::Subpacket::regular(
            pgp::packet::SubpacketData::IssuerKeyId(self.secret.legacy_key_id()),
        )
        .into_iter()
        .collect();
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgp::composed::SignedPublicKey;

    #[test]
    fn signatures_verify_under_the_public_key() {
        let keys = ClusterKeys::derive("test cluster key");
        let stored = generate("debs", &keys, 1).expect("generated");
        assert!(!stored.sealed_secret.contains("PRIVATE KEY"));
        assert_eq!(stored.fingerprint.len(), 40);
        let key = RepositoryKey::open(&stored, &keys).expect("opens");
        let (public, _) = SignedPublicKey::from_string(&stored.public_key).expect("public key");
        let text = "Origin: debs \nSuite: stable\n-dash\n";
        let (signed, _) = CleartextSignedMessage::from_string(&key.clearsign(text).expect("signs"))
            .expect("reads");
        signed
            .verify(&public)
            .expect("cleartext signature verifies");
        assert_eq!(
            signed.signed_text().replace("\r\n", "\n"),
            "Origin: debs\nSuite: stable\n-dash\n"
        );
        let (detached, _) =
            DetachedSignature::from_string(&key.sign_detached(text.as_bytes()).expect("signs"))
                .expect("reads");
        detached
            .verify(&public, text.as_bytes())
            .expect("detached signature verifies");
        assert!(detached.verify(&public, b"other").is_err());
        let other = ClusterKeys::derive("another cluster");
        assert!(RepositoryKey::open(&stored, &other).is_err());
    }
}
