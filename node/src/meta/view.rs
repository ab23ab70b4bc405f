//! The read API of the replicated state: what front-ends, policies and the replication worker ask of
//! it, answered from the state tables through a redb transaction.
//!
//! [`StateRead`] is the vocabulary (a registry, a package, a page of packages, a version, the tags of
//! a package, a blob by digest, a user, ...). It is implemented for every [`Source`] of table reads:
//! a [`ReadView`] over a read transaction (a consistent point-in-time view that never blocks the
//! apply loop and never sees half of a command), and the state machine's own write transaction while
//! it applies a command. Every answer is an owned value decoded from its record; every listing is a
//! range read over an index, so a page costs the same at a hundred entries and at ten million.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use arca_protocol::firewall::Advisory;
use arca_protocol::identity::User;
use arca_protocol::model::{AuditEvent, Metadata};
use arca_protocol::{
    BlobRef, CachedDocument, ChunkId, MetadataTarget, NodeInfo, Package, Registry,
    RegistrySettings, Sha256, SigningKey, Token, Version,
};
use openraft::{LogId, StoredMembership};
use redb::{AccessGuard, Database, ReadOnlyTable, ReadTransaction, ReadableDatabase};
use serde::de::DeserializeOwned;

use super::keys::{self, BadKey};
use super::tables::{BlobRecord, RecordError, RegistryRecord, Table, decode, scalar};

/// Why the state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (an I/O error, a corrupt page).
    #[error("metadata storage: {0}")]
    Storage(#[from] Box<redb::Error>),
    /// A record could not be decoded or encoded.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A stored key is malformed.
    #[error(transparent)]
    Key(#[from] BadKey),
}

macro_rules! storage_errors {
    ($($error:ty),*) => {$(
        impl From<$error> for StoreError {
            fn from(error: $error) -> Self {
                StoreError::Storage(Box::new(error.into()))
            }
        }
    )*};
}
storage_errors!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError
);

/// What reads return.
pub type ReadResult<T> = Result<T, StoreError>;

/// A range of encoded keys.
pub type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// A package with every version and tag: what a format renders its documents from (npm
/// packuments, PyPI pages, maven-metadata.xml), whether read from the state or built from an
/// upstream's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageContents {
    /// The package name.
    pub name: String,
    /// First commit time, unix milliseconds.
    pub created_at: u64,
    /// Last change time, unix milliseconds.
    pub updated_at: u64,
    /// User metadata.
    pub metadata: Metadata,
    /// Versions by name.
    pub versions: BTreeMap<String, Version>,
    /// Tags: tag to version.
    pub tags: BTreeMap<String, String>,
}

impl PackageContents {
    /// A package with no versions and no tags.
    pub fn empty(name: &str, created_at: u64, updated_at: u64) -> PackageContents {
        PackageContents {
            name: name.to_string(),
            created_at,
            updated_at,
            metadata: Metadata::new(),
            versions: BTreeMap::new(),
            tags: BTreeMap::new(),
        }
    }
}

/// Raw reads of the state tables.
pub trait Source {
    /// The record stored under `key`.
    fn get_raw(
        &self,
        table: Table,
        key: &[u8],
    ) -> ReadResult<Option<AccessGuard<'_, &'static [u8]>>>;

    /// The entries whose keys lie in `range`, in key order.
    fn range_raw(
        &self,
        table: Table,
        range: &KeyRange,
    ) -> ReadResult<redb::Range<'_, &'static [u8], &'static [u8]>>;
}

fn borrowed(range: &KeyRange) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        range.0.as_ref().map(Vec::as_slice),
        range.1.as_ref().map(Vec::as_slice),
    )
}

/// Reads through a read transaction; the tables are opened on first use.
pub struct ReadView {
    tables: Vec<OnceCell<ReadOnlyTable<&'static [u8], &'static [u8]>>>,
    txn: ReadTransaction,
    // Keeps the database open while the view lives, even when a snapshot has replaced it.
    _db: Arc<Database>,
}

impl ReadView {
    /// A view of the state in `db` as of now.
    pub fn open(db: Arc<Database>) -> ReadResult<ReadView> {
        Ok(ReadView {
            tables: Table::ALL.iter().map(|_| OnceCell::new()).collect(),
            txn: db.begin_read()?,
            _db: db,
        })
    }

    fn table(&self, table: Table) -> ReadResult<&ReadOnlyTable<&'static [u8], &'static [u8]>> {
        let cell = &self.tables[table as usize];
        if let Some(open) = cell.get() {
            return Ok(open);
        }
        let open = self.txn.open_table(table.definition())?;
        Ok(cell.get_or_init(|| open))
    }
}

impl Source for ReadView {
    fn get_raw(
        &self,
        table: Table,
        key: &[u8],
    ) -> ReadResult<Option<AccessGuard<'_, &'static [u8]>>> {
        Ok(self.table(table)?.get(key)?)
    }

    fn range_raw(
        &self,
        table: Table,
        range: &KeyRange,
    ) -> ReadResult<redb::Range<'_, &'static [u8], &'static [u8]>> {
        Ok(self.table(table)?.range::<&[u8]>(borrowed(range))?)
    }
}

/// The key of a registry.
pub fn registry_key(registry: &str) -> Vec<u8> {
    keys::of(&[registry])
}

/// The key of a package (also the prefix of its versions, tags and linked blobs).
pub fn package_key(registry: &str, package: &str) -> Vec<u8> {
    keys::of(&[registry, package])
}

/// The key of a version, tag or linked blob of a package: the package's key and one more part.
pub fn child_key(registry: &str, package: &str, child: &str) -> Vec<u8> {
    keys::of(&[registry, package, child])
}

/// The key of a blob record.
pub fn blob_key(sha256: &Sha256) -> Vec<u8> {
    keys::of(&[sha256.0])
}

/// The key of a chunk's reference count.
pub fn chunk_key(id: &ChunkId) -> Vec<u8> {
    keys::of(&[id.0])
}

/// The key of a (blob, node) or (node, blob) pair.
pub fn blob_node_key(sha256: &Sha256, node: u64) -> Vec<u8> {
    keys::Key::new().part(sha256.0).number(node).into_bytes()
}

/// The key of a (node, blob) pair.
pub fn node_blob_key(node: u64, sha256: &Sha256) -> Vec<u8> {
    keys::Key::new().number(node).part(sha256.0).into_bytes()
}

fn sha256_of(bytes: &[u8], key: &[u8]) -> ReadResult<Sha256> {
    let array: [u8; 32] = bytes.try_into().map_err(|_| BadKey::of(key))?;
    Ok(Sha256(array))
}

/// The vocabulary of reads, for every [`Source`].
pub trait StateRead: Source {
    /// The record under `key`, decoded.
    fn get<T: DeserializeOwned>(&self, table: Table, key: &[u8]) -> ReadResult<Option<T>> {
        match self.get_raw(table, key)? {
            Some(guard) => Ok(Some(decode(guard.value())?)),
            None => Ok(None),
        }
    }

    /// True when a record is stored under `key`.
    fn contains(&self, table: Table, key: &[u8]) -> ReadResult<bool> {
        Ok(self.get_raw(table, key)?.is_some())
    }

    /// Up to `limit` entries whose keys start with `prefix`, after the key `after` when given, as
    /// (key, record) pairs in key order.
    fn scan<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> ReadResult<Vec<(Vec<u8>, T)>> {
        let range = keys::range_after(prefix, after);
        let mut found = Vec::new();
        for entry in self.range_raw(table, &range)? {
            if found.len() >= limit {
                break;
            }
            let (key, value) = entry?;
            found.push((key.value().to_vec(), decode(value.value())?));
        }
        Ok(found)
    }

    /// The keys (not the records) of up to `limit` entries under `prefix`, after `after`.
    fn scan_keys(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> ReadResult<Vec<Vec<u8>>> {
        let range = keys::range_after(prefix, after);
        let mut found = Vec::new();
        for entry in self.range_raw(table, &range)? {
            if found.len() >= limit {
                break;
            }
            found.push(entry?.0.value().to_vec());
        }
        Ok(found)
    }

    /// A scalar of [`Table::Meta`].
    fn scalar<T: DeserializeOwned>(&self, name: &str) -> ReadResult<Option<T>> {
        self.get(Table::Meta, &keys::of(&[name]))
    }

    /// A counter of [`Table::Meta`] (0 when never set).
    fn counter(&self, name: &str) -> ReadResult<u64> {
        Ok(self.scalar::<u64>(name)?.unwrap_or(0))
    }

    /// The garbage-collection epoch of node `node_id`: how many collection steps that may remove
    /// chunks it has begun.
    fn gc_epoch(&self, node_id: u64) -> ReadResult<u64> {
        self.counter(&format!("{}{node_id}", scalar::GC_EPOCH))
    }

    /// The settings kept beside a registry's record (the defaults when none were set).
    fn registry_settings(&self, registry: &str) -> ReadResult<RegistrySettings> {
        Ok(self
            .scalar(&format!("{}{registry}", scalar::REGISTRY_SETTINGS))?
            .unwrap_or_default())
    }

    /// The key a Debian or RPM registry signs its metadata with.
    fn signing_key(&self, registry: &str) -> ReadResult<Option<SigningKey>> {
        self.scalar(&format!("{}{registry}", scalar::SIGNING_KEY))
    }

    /// The last log entry applied.
    fn last_applied(&self) -> ReadResult<Option<LogId<u64>>> {
        Ok(self
            .scalar::<Option<LogId<u64>>>(scalar::LAST_APPLIED)?
            .flatten())
    }

    /// The membership in force.
    fn membership(&self) -> ReadResult<StoredMembership<u64, NodeInfo>> {
        Ok(self.scalar(scalar::MEMBERSHIP)?.unwrap_or_default())
    }

    /// The registry called `name`.
    fn registry(&self, name: &str) -> ReadResult<Option<Registry>> {
        Ok(self.registry_record(name)?.map(|r| r.registry))
    }

    /// The registry called `name`, with its counts.
    fn registry_record(&self, name: &str) -> ReadResult<Option<RegistryRecord>> {
        self.get(Table::Registries, &registry_key(name))
    }

    /// Every registry, by name.
    fn registries(&self) -> ReadResult<Vec<RegistryRecord>> {
        Ok(self
            .scan::<RegistryRecord>(Table::Registries, &[], None, usize::MAX)?
            .into_iter()
            .map(|(_, record)| record)
            .collect())
    }

    /// A package of a registry.
    fn package(&self, registry: &str, package: &str) -> ReadResult<Option<Package>> {
        self.get(Table::Packages, &package_key(registry, package))
    }

    /// A package with all its versions and tags (O(versions of the package)).
    fn package_contents(
        &self,
        registry: &str,
        package: &str,
    ) -> ReadResult<Option<PackageContents>> {
        let Some(record) = self.package(registry, package)? else {
            return Ok(None);
        };
        let versions = self
            .versions(registry, package)?
            .into_iter()
            .map(|v| (v.name.clone(), v))
            .collect();
        Ok(Some(PackageContents {
            name: record.name,
            created_at: record.created_at,
            updated_at: record.updated_at,
            metadata: record.metadata,
            versions,
            tags: self.tags(registry, package)?,
        }))
    }

    /// Up to `limit` packages of `registry` by name, after the package `after` when given.
    fn packages(
        &self,
        registry: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ReadResult<Vec<Package>> {
        let after = after.map(|name| package_key(registry, name));
        Ok(self
            .scan::<Package>(
                Table::Packages,
                &registry_key(registry),
                after.as_deref(),
                limit,
            )?
            .into_iter()
            .map(|(_, package)| package)
            .collect())
    }

    /// The names of up to `limit` packages of `registry`, after `after`.
    fn package_names(
        &self,
        registry: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ReadResult<Vec<String>> {
        let after = after.map(|name| package_key(registry, name));
        self.scan_keys(
            Table::Packages,
            &registry_key(registry),
            after.as_deref(),
            limit,
        )?
        .iter()
        .map(|key| Ok(keys::text_part(key, 1)?))
        .collect()
    }

    /// A version of a package.
    fn version(&self, registry: &str, package: &str, version: &str) -> ReadResult<Option<Version>> {
        self.get(Table::Versions, &child_key(registry, package, version))
    }

    /// True when the version exists.
    fn has_version(&self, registry: &str, package: &str, version: &str) -> ReadResult<bool> {
        self.contains(Table::Versions, &child_key(registry, package, version))
    }

    /// Up to `limit` versions of a package by name, after the version `after` when given.
    fn versions_page(
        &self,
        registry: &str,
        package: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ReadResult<Vec<Version>> {
        let after = after.map(|name| child_key(registry, package, name));
        Ok(self
            .scan::<Version>(
                Table::Versions,
                &package_key(registry, package),
                after.as_deref(),
                limit,
            )?
            .into_iter()
            .map(|(_, version)| version)
            .collect())
    }

    /// Every version of a package, by name.
    fn versions(&self, registry: &str, package: &str) -> ReadResult<Vec<Version>> {
        self.versions_page(registry, package, None, usize::MAX)
    }

    /// The names of every version of a package.
    fn version_names(&self, registry: &str, package: &str) -> ReadResult<Vec<String>> {
        self.scan_keys(
            Table::Versions,
            &package_key(registry, package),
            None,
            usize::MAX,
        )?
        .iter()
        .map(|key| Ok(keys::text_part(key, 2)?))
        .collect()
    }

    /// The tags of a package: tag to version.
    fn tags(&self, registry: &str, package: &str) -> ReadResult<BTreeMap<String, String>> {
        self.first_tags(registry, package, usize::MAX)
    }

    /// The first `limit` tags of a package, by name: tag to version.
    fn first_tags(
        &self,
        registry: &str,
        package: &str,
        limit: usize,
    ) -> ReadResult<BTreeMap<String, String>> {
        self.scan::<String>(Table::Tags, &package_key(registry, package), None, limit)?
            .into_iter()
            .map(|(key, version)| Ok((keys::text_part(&key, 2)?, version)))
            .collect()
    }

    /// The version a tag points at.
    fn tag(&self, registry: &str, package: &str, tag: &str) -> ReadResult<Option<String>> {
        self.get(Table::Tags, &child_key(registry, package, tag))
    }

    /// The tags pointing at `version`.
    fn tags_of(&self, registry: &str, package: &str, version: &str) -> ReadResult<Vec<String>> {
        Ok(self
            .tags(registry, package)?
            .into_iter()
            .filter(|(_, target)| target == version)
            .map(|(tag, _)| tag)
            .collect())
    }

    /// True when `digest` is linked into the package (an OCI blob of the repository).
    fn package_has_blob(&self, registry: &str, package: &str, digest: &str) -> ReadResult<bool> {
        self.contains(Table::PackageBlobs, &child_key(registry, package, digest))
    }

    /// The digests linked into a package.
    fn package_blobs(&self, registry: &str, package: &str) -> ReadResult<Vec<String>> {
        self.scan_keys(
            Table::PackageBlobs,
            &package_key(registry, package),
            None,
            usize::MAX,
        )?
        .iter()
        .map(|key| Ok(keys::text_part(key, 2)?))
        .collect()
    }

    /// A blob by sha256.
    fn blob(&self, sha256: &Sha256) -> ReadResult<Option<BlobRef>> {
        Ok(self.blob_record(sha256)?.map(|record| record.blob))
    }

    /// A blob's record, with its reference count.
    fn blob_record(&self, sha256: &Sha256) -> ReadResult<Option<BlobRecord>> {
        self.get(Table::Blobs, &blob_key(sha256))
    }

    /// The blob an OCI-style digest (`sha256:<hex>` or an alias such as `sha512:<hex>`) names.
    fn blob_by_digest(&self, digest: &str) -> ReadResult<Option<BlobRef>> {
        let sha256 = match digest.strip_prefix("sha256:") {
            Some(hex) => match hex.parse() {
                Ok(sha256) => sha256,
                Err(_) => return Ok(None),
            },
            None => match self.get::<Sha256>(Table::DigestAliases, &keys::of(&[digest]))? {
                Some(sha256) => sha256,
                None => return Ok(None),
            },
        };
        self.blob(&sha256)
    }

    /// Every blob record, a page at a time: up to `limit` after the blob `after`.
    fn blobs_page(&self, after: Option<&Sha256>, limit: usize) -> ReadResult<Vec<BlobRecord>> {
        let after = after.map(blob_key);
        Ok(self
            .scan::<BlobRecord>(Table::Blobs, &[], after.as_deref(), limit)?
            .into_iter()
            .map(|(_, record)| record)
            .collect())
    }

    /// True when some live blob uses the chunk.
    fn chunk_referenced(&self, id: &ChunkId) -> ReadResult<bool> {
        self.contains(Table::ChunkRefs, &chunk_key(id))
    }

    /// True when `node` is recorded as holding every chunk of the blob.
    fn has_replica(&self, sha256: &Sha256, node: u64) -> ReadResult<bool> {
        self.contains(Table::Replicas, &blob_node_key(sha256, node))
    }

    /// The nodes recorded as holding the blob.
    fn replicas(&self, sha256: &Sha256) -> ReadResult<BTreeSet<u64>> {
        self.scan_keys(Table::Replicas, &keys::of(&[sha256.0]), None, usize::MAX)?
            .iter()
            .map(|key| Ok(keys::number_part(key, 1)?))
            .collect()
    }

    /// Up to `limit` blobs that full node `node` still has to copy, after `after`.
    fn pending(&self, node: u64, after: Option<&Sha256>, limit: usize) -> ReadResult<Vec<Sha256>> {
        let prefix = keys::Key::new().number(node).into_bytes();
        let after = after.map(|sha256| node_blob_key(node, sha256));
        self.scan_keys(Table::Pending, &prefix, after.as_deref(), limit)?
            .iter()
            .map(|key| {
                let parts = keys::parts(key)?;
                sha256_of(parts.get(1).map_or(&[][..], Vec::as_slice), key)
            })
            .collect()
    }

    /// How many blobs full node `node` still has to copy.
    fn pending_count(&self, node: u64) -> ReadResult<u64> {
        self.counter(&format!("{}{node}", scalar::PENDING_COUNT))
    }

    /// The user called `name`.
    fn user(&self, name: &str) -> ReadResult<Option<User>> {
        self.get(Table::Users, &keys::of(&[name]))
    }

    /// Every user, by name.
    fn users(&self) -> ReadResult<Vec<User>> {
        Ok(self
            .scan::<User>(Table::Users, &[], None, usize::MAX)?
            .into_iter()
            .map(|(_, user)| user)
            .collect())
    }

    /// The token with id `id`.
    fn token(&self, id: &str) -> ReadResult<Option<Token>> {
        self.get(Table::Tokens, &keys::of(&[id]))
    }

    /// Every token, by id.
    fn tokens(&self) -> ReadResult<Vec<Token>> {
        Ok(self
            .scan::<Token>(Table::Tokens, &[], None, usize::MAX)?
            .into_iter()
            .map(|(_, token)| token)
            .collect())
    }

    /// The token whose secret hashes to `secret_sha256`.
    fn token_by_secret(&self, secret_sha256: &Sha256) -> ReadResult<Option<Token>> {
        match self.get::<String>(Table::TokenSecrets, &keys::of(&[secret_sha256.0]))? {
            Some(id) => self.token(&id),
            None => Ok(None),
        }
    }

    /// When the join token whose secret hashes to `secret_sha256` expires.
    fn join_token(&self, secret_sha256: &Sha256) -> ReadResult<Option<u64>> {
        self.get(Table::JoinTokens, &keys::of(&[secret_sha256.0]))
    }

    /// A document a remote registry cached.
    fn cached(&self, registry: &str, key: &str) -> ReadResult<Option<CachedDocument>> {
        self.get(Table::Cached, &package_key(registry, key))
    }

    /// The keys of the documents `registry` cached that start with `prefix`.
    fn cached_keys(&self, registry: &str, prefix: &str) -> ReadResult<Vec<String>> {
        let mut found = Vec::new();
        for key in self.scan_keys(Table::Cached, &registry_key(registry), None, usize::MAX)? {
            let key = keys::text_part(&key, 1)?;
            if key.starts_with(prefix) {
                found.push(key);
            }
        }
        Ok(found)
    }

    /// An audit event by id.
    fn audit_event(&self, id: u64) -> ReadResult<Option<AuditEvent>> {
        self.get(Table::Audit, &keys::Key::new().number(id).into_bytes())
    }

    /// Up to `limit` audit events, oldest first, from the one at time `from.0` with id `from.1` or
    /// after, to time `until`.
    fn audit_page(
        &self,
        from: (u64, u64),
        until: u64,
        limit: usize,
    ) -> ReadResult<Vec<AuditEvent>> {
        let start = keys::Key::new().number(from.0).number(from.1).into_bytes();
        let end = keys::Key::new()
            .number(until.saturating_add(1))
            .into_bytes();
        let mut events = Vec::new();
        for entry in self.range_raw(
            Table::AuditTimes,
            &(Bound::Included(start), Bound::Excluded(end)),
        )? {
            if events.len() >= limit {
                break;
            }
            let id = keys::number_part(entry?.0.value(), 1)?;
            events.extend(self.audit_event(id)?);
        }
        Ok(events)
    }

    /// Ids of audit events recorded at times in `[since, until]`, newest first, at most `limit`.
    fn audit_ids_between(&self, since: u64, until: u64, limit: usize) -> ReadResult<Vec<u64>> {
        Ok(self
            .audit_ids_before(since, (until.saturating_add(1), 0), limit)?
            .into_iter()
            .map(|(_, id)| id)
            .collect())
    }

    /// Audit events (time and id) recorded at `since` or later and before the event at time
    /// `before.0` with id `before.1`, newest first, at most `limit`: the next `limit` of a walk
    /// back through the trail continues before the last one answered.
    fn audit_ids_before(
        &self,
        since: u64,
        before: (u64, u64),
        limit: usize,
    ) -> ReadResult<Vec<(u64, u64)>> {
        let start = keys::Key::new().number(since).into_bytes();
        let end = keys::Key::new()
            .number(before.0)
            .number(before.1)
            .into_bytes();
        let mut found = Vec::new();
        for entry in self
            .range_raw(
                Table::AuditTimes,
                &(Bound::Included(start), Bound::Excluded(end)),
            )?
            .rev()
        {
            if found.len() >= limit {
                break;
            }
            let key = entry?.0;
            found.push((
                keys::number_part(key.value(), 0)?,
                keys::number_part(key.value(), 1)?,
            ));
        }
        Ok(found)
    }

    /// The advisory with id `id`.
    fn advisory(&self, id: &str) -> ReadResult<Option<Advisory>> {
        self.get(Table::Advisories, &keys::of(&[id]))
    }

    /// The advisories indexed under `key` (`<ecosystem>/<normalised name>`).
    fn advisories_indexed(&self, key: &str) -> ReadResult<Vec<Advisory>> {
        let mut found = Vec::new();
        for entry in self.scan_keys(Table::AdvisoryIndex, &keys::of(&[key]), None, usize::MAX)? {
            if let Some(advisory) = self.advisory(&keys::text_part(&entry, 1)?)? {
                found.push(advisory);
            }
        }
        Ok(found)
    }

    /// The metadata map a target names.
    fn metadata(&self, target: &MetadataTarget) -> ReadResult<Option<Metadata>> {
        Ok(match target {
            MetadataTarget::Registry { registry } => self.registry(registry)?.map(|r| r.metadata),
            MetadataTarget::Package { registry, package } => {
                self.package(registry, package)?.map(|p| p.metadata)
            }
            MetadataTarget::Version {
                registry,
                package,
                version,
            } => self
                .version(registry, package, version)?
                .map(|v| v.metadata),
        })
    }
}

impl<S: Source + ?Sized> StateRead for S {}
