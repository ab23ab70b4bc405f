//! Fixed-size content digests: the sha256 clients see, and the blake3 ids of stored chunks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A digest string that is not 64 lowercase-or-uppercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} digest {value:?}: expected 64 hex characters")]
pub struct DigestParseError {
    kind: &'static str,
    value: String,
}

/// Declares a 32-byte digest type that prints, parses and serialises as lowercase hex.
macro_rules! hex_digest {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The digest as lowercase hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", $kind, self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = DigestParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(s, &mut bytes).map_err(|_| DigestParseError {
                    kind: $kind,
                    value: s.chars().take(80).collect(),
                })?;
                Ok(Self(bytes))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(serializer)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = String::deserialize(deserializer)?;
                    text.parse().map_err(serde::de::Error::custom)
                } else {
                    <[u8; 32]>::deserialize(deserializer).map(Self)
                }
            }
        }
    };
}

hex_digest!(
    /// The sha256 of a whole blob: the digest package managers and users see.
    Sha256,
    "sha256"
);

hex_digest!(
    /// The blake3 hash of one stored chunk, which is also its name in the chunk store.
    ChunkId,
    "blake3"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_json_form() {
        let text = "ab".repeat(32);
        let digest: Sha256 = text.parse().expect("valid hex");
        assert_eq!(digest.to_string(), text);
        assert_eq!(
            serde_json::to_string(&digest).expect("serialises"),
            format!("\"{text}\"")
        );
        let back: Sha256 = serde_json::from_str(&format!("\"{text}\"")).expect("parses");
        assert_eq!(back, digest);
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        assert!("abc".parse::<Sha256>().is_err());
        assert!("zz".repeat(32).parse::<ChunkId>().is_err());
        assert!(serde_json::from_str::<Sha256>("\"12\"").is_err());
    }
}
