//! The tables the replicated state lives in, one redb table each, and the records stored in them.
//!
//! Every table maps an order-preserving composite key ([`super::keys`]) to a bincode-encoded record,
//! so that listings are range reads and a snapshot can copy any table without knowing its types. The
//! layout is part of the data directory's format ([`STATE_FORMAT`]): a change of a table, a key or a
//! record is a new format, with a migration from the one before (see [`super::format`]).
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | a name (`last_applied`, `membership`, counters) | the value |
//! | `registries` | registry | [`RegistryRecord`] |
//! | `packages` | registry, package | [`Package`] |
//! | `versions` | registry, package, version | [`Version`] |
//! | `tags` | registry, package, tag | version name |
//! | `package_blobs` | registry, package, digest | nothing (OCI blobs linked into a repository) |
//! | `blobs` | sha256 | [`BlobRecord`] (the blob and how many references it has) |
//! | `digest_aliases` | digest (`sha512:...`) | sha256 |
//! | `chunk_refs` | chunk id | how many live blobs use the chunk |
//! | `replicas` | sha256, node | nothing (the node holds every chunk of the blob) |
//! | `node_replicas` | node, sha256 | nothing (the same, by node) |
//! | `pending` | node, sha256 | nothing (a full node still to copy a blob its site's policy wants) |
//! | `tokens` | token id | [`Token`](arca_protocol::Token) |
//! | `token_secrets` | sha256 of the secret | token id |
//! | `users` | user name | [`User`](arca_protocol::User) |
//! | `join_tokens` | sha256 of the secret | expiry, unix ms |
//! | `cached` | registry, document key | [`CachedDocument`](arca_protocol::CachedDocument) |
//! | `audit` | event id | [`AuditEvent`](arca_protocol::model::AuditEvent) |
//! | `audit_times` | time, event id | nothing |
//! | `advisories` | advisory id | [`Advisory`](arca_protocol::firewall::Advisory) |
//! | `advisory_index` | `<ecosystem>/<name>`, advisory id | nothing |
//! | `last_access` | registry, last download (else creation) time, package, version | nothing |
//! | `webhooks` | webhook name | [`Webhook`](arca_protocol::model::Webhook) |
//! | `webhook_deliveries` | webhook name, number | [`WebhookDelivery`](arca_protocol::model::WebhookDelivery) (the last [`WEBHOOK_LOG`]) |
//! | `usage_versions` | registry, package, version | [`UsageCount`](arca_protocol::model::UsageCount): the version's downloads |
//! | `usage_packages` | registry, package | [`UsageCount`](arca_protocol::model::UsageCount): the sum over its versions |
//! | `usage_consumers` | registry, package, consumer | [`ConsumerRecord`](super::usage::ConsumerRecord) |
//! | `usage_days` | day, registry, package, version (empty: no one version) | [`UsageCount`](arca_protocol::model::UsageCount) |
//! | `usage_registry_days` | day, registry | [`UsageCount`](arca_protocol::model::UsageCount) |
//! | `usage_site_days` | day, site | [`UsageCount`](arca_protocol::model::UsageCount) |
//!
//! A table added after a format was released is created empty when a database of that format
//! opens (its data had none of its records), so adding one is not a new format.

use arca_protocol::{BlobRef, Registry};
use redb::TableDefinition;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The format of the state database this build writes. Format 1 is the first with the state in
/// tables; a data directory without a format number is older (see [`super::format`]).
pub const STATE_FORMAT: u32 = 1;

/// A redb table of the state: encoded keys to encoded records.
pub type Definition = TableDefinition<'static, &'static [u8], &'static [u8]>;

macro_rules! tables {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// The tables of the state.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Table {
            $($(#[$doc])* $variant,)*
        }

        impl Table {
            /// Every table, in a fixed order (the order snapshots write them in).
            pub const ALL: &'static [Table] = &[$(Table::$variant,)*];

            /// The table's name in the database.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Table::$variant => $name,)*
                }
            }
        }
    };
}

tables! {
    /// Scalars: the applied log id, the membership, the format, counters.
    Meta => "meta",
    /// Registries.
    Registries => "registries",
    /// Packages.
    Packages => "packages",
    /// Versions.
    Versions => "versions",
    /// Tags.
    Tags => "tags",
    /// Blobs linked into OCI repositories.
    PackageBlobs => "package_blobs",
    /// Blobs with their reference counts.
    Blobs => "blobs",
    /// Digests other than sha256.
    DigestAliases => "digest_aliases",
    /// Chunk reference counts.
    ChunkRefs => "chunk_refs",
    /// Who holds each blob.
    Replicas => "replicas",
    /// What each node holds.
    NodeReplicas => "node_replicas",
    /// What each full node still has to copy.
    Pending => "pending",
    /// API tokens.
    Tokens => "tokens",
    /// API tokens by the hash of their secret.
    TokenSecrets => "token_secrets",
    /// Users and service accounts.
    Users => "users",
    /// Join tokens.
    JoinTokens => "join_tokens",
    /// Documents remote registries cached.
    Cached => "cached",
    /// The audit trail.
    Audit => "audit",
    /// The audit trail by time.
    AuditTimes => "audit_times",
    /// The firewall's advisories.
    Advisories => "advisories",
    /// The advisories naming each package.
    AdvisoryIndex => "advisory_index",
    /// Versions by when they were last downloaded (or created), for cleanup.
    LastAccess => "last_access",
    /// Webhooks.
    Webhooks => "webhooks",
    /// The delivery log of each webhook.
    WebhookDeliveries => "webhook_deliveries",
    /// Each version's download totals.
    UsageVersions => "usage_versions",
    /// Each package's download totals (the sum over its versions).
    UsagePackages => "usage_packages",
    /// Each package's download totals per consumer.
    UsageConsumers => "usage_consumers",
    /// Downloads of each version per day.
    UsageDays => "usage_days",
    /// Downloads from each registry per day.
    UsageRegistryDays => "usage_registry_days",
    /// Downloads served at each site per day.
    UsageSiteDays => "usage_site_days",
}

/// How many delivery attempts each webhook's log keeps.
pub const WEBHOOK_LOG: u64 = 200;

impl Table {
    /// The table's redb definition.
    pub const fn definition(self) -> Definition {
        TableDefinition::new(self.name())
    }

    /// The table called `name`.
    pub fn named(name: &str) -> Option<Table> {
        Table::ALL.iter().copied().find(|t| t.name() == name)
    }
}

/// Names of the scalars in [`Table::Meta`].
pub mod scalar {
    /// The format of the state ([`super::STATE_FORMAT`]).
    pub const FORMAT: &str = "format";
    /// The last log id applied.
    pub const LAST_APPLIED: &str = "last_applied";
    /// The membership in force.
    pub const MEMBERSHIP: &str = "membership";
    /// The id the next audit event gets.
    pub const NEXT_AUDIT_ID: &str = "next_audit_id";
    /// How many audit events are kept.
    pub const AUDIT_COUNT: &str = "audit_count";
    /// What the audit trail keeps ([`arca_protocol::model::AuditRetention`]).
    pub const AUDIT_RETENTION: &str = "audit_retention";
    /// The firewall's clock: the latest command time seen.
    pub const FIREWALL_CLOCK: &str = "firewall_clock";
    /// Firewall evaluations made so far.
    pub const FIREWALL_SCANS: &str = "firewall_scans";
    /// When advisories were last imported.
    pub const FIREWALL_LAST_IMPORT: &str = "firewall_last_import";
    /// How many advisories are held.
    pub const ADVISORY_COUNT: &str = "advisory_count";
    /// How many blob records exist.
    pub const BLOB_COUNT: &str = "blob_count";
    /// How many packages exist, over all registries.
    pub const PACKAGE_COUNT: &str = "package_count";
    /// How many versions exist, over all registries.
    pub const VERSION_COUNT: &str = "version_count";
    /// Raised whenever a replication policy changes: full nodes then check everything again.
    pub const REPLICATION_EPOCH: &str = "replication_epoch";
    /// Prefix of the per-node counts of blobs pending (`pending_count/<node>`).
    pub const PENDING_COUNT: &str = "pending_count/";
    /// Prefix of the per-node counts of how often the node joined the membership (`joined/<node>`):
    /// blobs referenced while it was not a member were never made pending for it.
    pub const JOINED: &str = "joined/";
    /// Prefix of the per-node garbage-collection epochs (`gc_epoch/<node>`, see
    /// [`arca_protocol::Command::Fenced`]).
    pub const GC_EPOCH: &str = "gc_epoch/";
    /// Prefix of the registries' settings (`registry_settings/<registry>`, see
    /// [`arca_protocol::RegistrySettings`]).
    pub const REGISTRY_SETTINGS: &str = "registry_settings/";
    /// Prefix of the signing keys of Debian and RPM registries (`signing_key/<registry>`, see
    /// [`arca_protocol::SigningKey`]).
    pub const SIGNING_KEY: &str = "signing_key/";
}

/// A registry and what it holds, in numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryRecord {
    /// The registry's settings and metadata.
    pub registry: Registry,
    /// How many packages it has.
    pub packages: u64,
    /// How many versions its packages have.
    pub versions: u64,
    /// The sum of its versions' sizes.
    pub size: u64,
}

/// A blob and the number of references to it (files of versions, links into OCI repositories,
/// cached documents). A blob whose count falls to zero is forgotten, with its replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    /// The blob.
    pub blob: BlobRef,
    /// References to it.
    pub references: u64,
}

/// Why a stored record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not a record of the expected type.
    #[error("decoding a {what} record: {source}")]
    Decode {
        /// The record's type.
        what: &'static str,
        /// The cause.
        source: bincode::error::DecodeError,
    },
    /// The record could not be encoded.
    #[error("encoding a {what} record: {source}")]
    Encode {
        /// The record's type.
        what: &'static str,
        /// The cause.
        source: bincode::error::EncodeError,
    },
}

/// Encodes a record.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, RecordError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|source| {
        RecordError::Encode {
            what: std::any::type_name::<T>(),
            source,
        }
    })
}

/// Decodes a record.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RecordError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|source| RecordError::Decode {
            what: std::any::type_name::<T>(),
            source,
        })
}
