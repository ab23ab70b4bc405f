//! The deterministic function that applies a [`Command`] to the state tables, inside the state
//! machine's write transaction.
//!
//! Everything here is pure over the tables and the command: the same commands in the same order
//! give the same tables on every node. An [`Applier`] reads through the same vocabulary as every
//! other reader ([`StateRead`]) and writes through a few typed helpers that keep the derived data in
//! step with the records: package and registry counts, version sizes, the package's generation,
//! blob and chunk reference counts (a blob nobody references any more is forgotten, with its
//! replicas), the blobs each full node still has to copy, and the indexes. A refused command returns
//! its [`CommandError`]; the caller then drops the transaction, so a refusal leaves nothing behind,
//! and a [`Command::Batch`] is all or nothing the same way.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};

use arca_protocol::model::{AuditEvent, AuditRetention, Metadata};
use arca_protocol::{
    BlobRef, CachedDocument, Command, CommandError, MetadataTarget, NodeInfo, NodeRole, Overwrite,
    Package, Registry, RegistryKind, ReplicationPolicy, Sha256, Version,
};
use openraft::StoredMembership;
use redb::{AccessGuard, ReadableTable, WriteTransaction};
use serde::Serialize;

use super::keys::{self, Key};
use super::tables::{BlobRecord, RegistryRecord, Table, encode, scalar};
use super::usage::access_time;
use super::view::{
    KeyRange, ReadResult, Source, StateRead, StoreError, blob_key, blob_node_key, child_key,
    chunk_key, node_blob_key, package_key, registry_key,
};
use crate::policy::firewall;

/// How many audit events the state keeps unless told otherwise; older ones are dropped as new ones
/// arrive.
pub const AUDIT_RETENTION: u64 = arca_protocol::model::DEFAULT_AUDIT_EVENTS;

/// The file name under which an OCI version keeps its manifest.
pub const MANIFEST_FILE: &str = "manifest";

/// The outcome of applying: `Err` is a storage failure (the node cannot go on), `Ok(Err)` a refusal.
pub type Applied = Result<Result<(), CommandError>, StoreError>;

fn not_found(what: impl std::fmt::Display) -> CommandError {
    CommandError::NotFound(what.to_string())
}

type WriteTable<'txn> = redb::Table<'txn, &'static [u8], &'static [u8]>;

/// Applies commands within one write transaction.
pub struct Applier<'txn> {
    txn: &'txn WriteTransaction,
    tables: Vec<OnceCell<WriteTable<'txn>>>,
    full_nodes: Option<Vec<(u64, String)>>,
}

impl Source for Applier<'_> {
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
        let borrowed = (
            range.0.as_ref().map(Vec::as_slice),
            range.1.as_ref().map(Vec::as_slice),
        );
        Ok(self.table(table)?.range::<&[u8]>(borrowed)?)
    }
}

impl<'txn> Applier<'txn> {
    /// An applier writing into `txn`.
    pub fn new(txn: &'txn WriteTransaction) -> Applier<'txn> {
        Applier {
            txn,
            tables: Table::ALL.iter().map(|_| OnceCell::new()).collect(),
            full_nodes: None,
        }
    }

    fn table(&self, table: Table) -> ReadResult<&WriteTable<'txn>> {
        let cell = &self.tables[table as usize];
        if let Some(open) = cell.get() {
            return Ok(open);
        }
        let open = self.txn.open_table(table.definition())?;
        Ok(cell.get_or_init(|| open))
    }

    fn table_mut(&mut self, table: Table) -> ReadResult<&mut WriteTable<'txn>> {
        self.table(table)?;
        self.tables[table as usize].get_mut().ok_or_else(|| {
            StoreError::Storage(Box::new(redb::Error::Corrupted(format!(
                "table {} did not open",
                table.name()
            ))))
        })
    }

    /// Stores `value` under `key`.
    pub fn put<T: Serialize>(&mut self, table: Table, key: &[u8], value: &T) -> ReadResult<()> {
        let bytes = encode(value)?;
        self.table_mut(table)?.insert(key, bytes.as_slice())?;
        Ok(())
    }

    /// Removes what is stored under `key`; true when something was.
    pub fn delete(&mut self, table: Table, key: &[u8]) -> ReadResult<bool> {
        Ok(self.table_mut(table)?.remove(key)?.is_some())
    }

    /// Sets a scalar of [`Table::Meta`].
    pub fn set_scalar<T: Serialize>(&mut self, name: &str, value: &T) -> ReadResult<()> {
        self.put(Table::Meta, &keys::of(&[name]), value)
    }

    /// Adds `delta` to a counter of [`Table::Meta`] (never below zero).
    fn add_counter(&mut self, name: &str, delta: i64) -> ReadResult<()> {
        let current = self.counter(name)?;
        let next = current.saturating_add_signed(delta);
        self.set_scalar(name, &next)
    }

    /// Records the membership in force (applied from a membership log entry), counting a join for
    /// every node it adds.
    pub fn set_membership(
        &mut self,
        membership: &StoredMembership<u64, NodeInfo>,
    ) -> ReadResult<()> {
        let before: BTreeSet<u64> = self
            .membership()?
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .collect();
        let joined: Vec<u64> = membership
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .filter(|id| !before.contains(id))
            .collect();
        for node in joined {
            self.add_counter(&format!("{}{node}", scalar::JOINED), 1)?;
        }
        self.full_nodes = None;
        self.set_scalar(scalar::MEMBERSHIP, membership)
    }

    /// The full nodes of the membership, with their sites.
    fn full_nodes(&mut self) -> ReadResult<Vec<(u64, String)>> {
        if let Some(nodes) = &self.full_nodes {
            return Ok(nodes.clone());
        }
        let membership = self.membership()?;
        let nodes: Vec<(u64, String)> = membership
            .membership()
            .nodes()
            .filter(|(_, node)| node.role == NodeRole::Full)
            .map(|(id, node)| (*id, node.site.clone()))
            .collect();
        self.full_nodes = Some(nodes.clone());
        Ok(nodes)
    }

    /// Applies one command. The firewall then evaluates again what the command changed (see
    /// [`crate::policy::firewall`]) and records the changes of status in the audit trail.
    pub fn apply(&mut self, command: Command) -> Applied {
        let command = match command {
            Command::Fenced { fence, command } => {
                let epoch = self.gc_epoch(fence.node_id)?;
                if epoch != fence.gc_epoch {
                    return Ok(Err(CommandError::Retry(format!(
                        "garbage collection on node {} began a step while this write was on its \
                         way (epoch {} then, {epoch} now) and may have taken its bytes: nothing \
                         was written; send it again",
                        fence.node_id, fence.gc_epoch
                    ))));
                }
                *command
            }
            command => command,
        };
        let (reevaluate, at) = firewall::reevaluation_for(&command);
        if let Err(refused) = self.apply_command(command)? {
            return Ok(Err(refused));
        }
        if let Some(at) = at {
            let clock = self.counter(scalar::FIREWALL_CLOCK)?.max(at);
            self.set_scalar(scalar::FIREWALL_CLOCK, &clock)?;
        }
        let events = firewall::reevaluate(self, reevaluate)?;
        if !events.is_empty() {
            self.record_audit(events)?;
        }
        Ok(Ok(()))
    }

    fn apply_command(&mut self, command: Command) -> Applied {
        if let Err(refused) = self.refuse_changes_to_immutable(&command)? {
            return Ok(Err(refused));
        }
        match command {
            Command::Batch { commands } => {
                for command in commands {
                    if let Err(refused) = self.apply(command)? {
                        return Ok(Err(refused));
                    }
                }
                Ok(Ok(()))
            }
            Command::CreateRegistry { registry } => {
                if self.registry_record(&registry.name)?.is_some() {
                    return Ok(Err(CommandError::AlreadyExists(format!(
                        "registry {}",
                        registry.name
                    ))));
                }
                let key = registry_key(&registry.name);
                self.put(
                    Table::Registries,
                    &key,
                    &RegistryRecord {
                        registry,
                        packages: 0,
                        versions: 0,
                        size: 0,
                    },
                )?;
                Ok(Ok(()))
            }
            Command::DeleteRegistry { name } => self.delete_registry(&name),
            Command::PutFile {
                registry,
                package,
                version,
                filename,
                blob,
                attributes,
                tags,
                overwrite,
                at,
            } => {
                let Some(record) = self.registry_record(&registry)? else {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                };
                let existing_version = self.version(&registry, &package, &version)?;
                let existing_file = existing_version
                    .as_ref()
                    .and_then(|v| v.files.get(&filename));
                if record.registry.immutable && existing_file.is_some() {
                    return Ok(Err(CommandError::Conflict(format!(
                        "registry {registry} is immutable: {package}/{version}/{filename} already exists"
                    ))));
                }
                match overwrite {
                    Overwrite::RefuseVersion if existing_version.is_some() => {
                        return Ok(Err(CommandError::AlreadyExists(format!(
                            "version {package}/{version}"
                        ))));
                    }
                    Overwrite::RefuseFile if existing_file.is_some() => {
                        return Ok(Err(CommandError::AlreadyExists(format!(
                            "file {package}/{version}/{filename}"
                        ))));
                    }
                    _ => {}
                }
                let replaced = existing_file.map(|file| file.sha256);
                self.reference_blob(&record.registry, &blob)?;
                let mut entry = existing_version.unwrap_or_else(|| new_version(&version, at));
                entry.files.insert(
                    filename,
                    arca_protocol::FileEntry {
                        sha256: blob.sha256,
                        size: blob.size,
                        created_at: at,
                    },
                );
                entry.attributes.extend(attributes);
                entry.updated_at = at;
                self.store_version(&registry, &package, entry, at)?;
                if let Some(old) = replaced {
                    self.unreference_blob(&old)?;
                }
                for tag in tags {
                    self.put(Table::Tags, &child_key(&registry, &package, &tag), &version)?;
                }
                Ok(Ok(()))
            }
            Command::SetTag {
                registry,
                package,
                tag,
                version,
            } => {
                if self.registry_record(&registry)?.is_none() {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                }
                if !self.has_version(&registry, &package, &version)? {
                    return Ok(Err(not_found(format_args!("version {package}/{version}"))));
                }
                self.put(Table::Tags, &child_key(&registry, &package, &tag), &version)?;
                self.touch_package(&registry, &package, None)?;
                Ok(Ok(()))
            }
            Command::SetAttributes {
                registry,
                package,
                version,
                set,
                remove,
                at,
            } => {
                if self.registry_record(&registry)?.is_none() {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                }
                let Some(mut entry) = self.version(&registry, &package, &version)? else {
                    return Ok(Err(not_found(format_args!("version {package}/{version}"))));
                };
                for key in &remove {
                    entry.attributes.remove(key);
                }
                entry.attributes.extend(set);
                entry.updated_at = at;
                self.store_version(&registry, &package, entry, at)?;
                Ok(Ok(()))
            }
            Command::DeleteFile {
                registry,
                package,
                version,
                filename,
                at,
            } => {
                if self.registry_record(&registry)?.is_none() {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                }
                if self.package(&registry, &package)?.is_none() {
                    return Ok(Err(not_found(format_args!("package {package}"))));
                }
                let Some(mut entry) = self.version(&registry, &package, &version)? else {
                    return Ok(Err(not_found(format_args!("version {package}/{version}"))));
                };
                let Some(file) = entry.files.remove(&filename) else {
                    return Ok(Err(not_found(format_args!(
                        "file {package}/{version}/{filename}"
                    ))));
                };
                if entry.files.is_empty() {
                    // Removing the version takes its last file's reference with it.
                    self.remove_version(&registry, &package, &version)?;
                } else {
                    entry.updated_at = at;
                    self.store_version(&registry, &package, entry, at)?;
                    self.unreference_blob(&file.sha256)?;
                }
                self.touch_package(&registry, &package, Some(at))?;
                self.remove_package_if_empty(&registry, &package)?;
                Ok(Ok(()))
            }
            Command::DeleteVersion {
                registry,
                package,
                version,
            }
            | Command::CleanupVersion {
                registry,
                package,
                version,
                ..
            } => {
                if self.registry_record(&registry)?.is_none() {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                }
                if self.package(&registry, &package)?.is_none() {
                    return Ok(Err(not_found(format_args!("package {package}"))));
                }
                if !self.remove_version(&registry, &package, &version)? {
                    return Ok(Err(not_found(format_args!("version {package}/{version}"))));
                }
                self.touch_package(&registry, &package, None)?;
                self.remove_package_if_empty(&registry, &package)?;
                Ok(Ok(()))
            }
            Command::DeletePackage { registry, package } => {
                if self.registry_record(&registry)?.is_none() {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                }
                if self.package(&registry, &package)?.is_none() {
                    return Ok(Err(not_found(format_args!("package {package}"))));
                }
                self.remove_package(&registry, &package)?;
                Ok(Ok(()))
            }
            Command::CopyVersion {
                from_registry,
                package,
                version,
                to_registry,
                at,
            } => self.copy_version(&from_registry, &package, &version, &to_registry, at),
            Command::SetMetadata { target, entries } => {
                self.change_metadata(&target, |metadata| metadata.extend(entries))
            }
            Command::DeleteMetadata { target, keys } => self.change_metadata(&target, |metadata| {
                if keys.is_empty() {
                    metadata.clear();
                } else {
                    for key in &keys {
                        metadata.remove(key);
                    }
                }
            }),
            Command::LinkBlob {
                registry,
                package,
                digest,
                blob,
                at,
            } => {
                let Some(record) = self.registry_record(&registry)? else {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                };
                if self.package(&registry, &package)?.is_none() {
                    self.create_package(&registry, &package, at)?;
                }
                if !digest.starts_with("sha256:") {
                    self.put(
                        Table::DigestAliases,
                        &keys::of(&[digest.as_str()]),
                        &blob.sha256,
                    )?;
                }
                let link = child_key(&registry, &package, &digest);
                if !self.contains(Table::PackageBlobs, &link)? {
                    self.put(Table::PackageBlobs, &link, &())?;
                    self.reference_blob(&record.registry, &blob)?;
                }
                Ok(Ok(()))
            }
            Command::UnlinkBlob {
                registry,
                package,
                digest,
            } => {
                if self.registry_record(&registry)?.is_none() {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                }
                if !self.unlink_blob(&registry, &package, &digest)? {
                    return Ok(Err(not_found(format_args!("blob {digest} in {package}"))));
                }
                self.remove_package_if_empty(&registry, &package)?;
                Ok(Ok(()))
            }
            Command::PutManifest {
                registry,
                package,
                digest,
                manifest,
                blob,
                tag,
                at,
            } => {
                let Some(record) = self.registry_record(&registry)? else {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                };
                // A remote registry records manifests as its upstream serves them; what they
                // reference arrives when it is first pulled.
                if record.registry.kind != RegistryKind::Remote {
                    for reference in &manifest.blobs {
                        if !self.package_has_blob(&registry, &package, reference)? {
                            return Ok(Err(CommandError::MissingReference(format!(
                                "blob {reference}"
                            ))));
                        }
                    }
                    for reference in &manifest.manifests {
                        if !self.has_version(&registry, &package, reference)? {
                            return Ok(Err(CommandError::MissingReference(format!(
                                "manifest {reference}"
                            ))));
                        }
                    }
                }
                if let Some(tag) = &tag {
                    let current = self.tag(&registry, &package, tag)?;
                    if record.registry.immutable
                        && current.as_ref().is_some_and(|target| target != &digest)
                    {
                        return Ok(Err(CommandError::Conflict(format!(
                            "registry {registry} is immutable: tag {tag} already points at {}",
                            current.unwrap_or_default()
                        ))));
                    }
                }
                self.reference_blob(&record.registry, &blob)?;
                let existing = self.version(&registry, &package, &digest)?;
                let replaced: Vec<Sha256> = existing
                    .iter()
                    .flat_map(|v| v.files.values().map(|f| f.sha256))
                    .collect();
                let mut entry = existing.unwrap_or_else(|| new_version(&digest, at));
                entry.files = BTreeMap::from([(
                    MANIFEST_FILE.to_string(),
                    arca_protocol::FileEntry {
                        sha256: blob.sha256,
                        size: blob.size,
                        created_at: at,
                    },
                )]);
                entry.manifest = Some(manifest);
                entry.updated_at = at;
                self.store_version(&registry, &package, entry, at)?;
                for old in replaced {
                    self.unreference_blob(&old)?;
                }
                if let Some(tag) = tag {
                    self.put(Table::Tags, &child_key(&registry, &package, &tag), &digest)?;
                }
                Ok(Ok(()))
            }
            Command::DeleteTag {
                registry,
                package,
                tag,
            } => {
                let Some(record) = self.registry_record(&registry)? else {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                };
                if record.registry.immutable {
                    return Ok(Err(CommandError::Conflict(format!(
                        "registry {registry} is immutable: tags cannot be removed"
                    ))));
                }
                if !self.delete(Table::Tags, &child_key(&registry, &package, &tag))? {
                    return Ok(Err(not_found(format_args!("tag {package}:{tag}"))));
                }
                self.touch_package(&registry, &package, None)?;
                Ok(Ok(()))
            }
            command @ (Command::CreateToken { .. }
            | Command::RevokeToken { .. }
            | Command::RotateToken { .. }
            | Command::CreateUser { .. }
            | Command::UpdateUser { .. }
            | Command::DeleteUser { .. }
            | Command::GrantRole { .. }
            | Command::RevokeRole { .. }) => self.apply_identity(command),
            Command::UpdateRegistry { name, changes } => {
                self.registry_change(&name, |registry| changes.apply_to(registry))
            }
            Command::SetReplication { registry, policy } => {
                let changed = self.registry_change(&registry, |r| r.replication = policy)?;
                if changed.is_ok() {
                    self.add_counter(scalar::REPLICATION_EPOCH, 1)?;
                }
                Ok(changed)
            }
            Command::CreateJoinToken {
                secret_sha256,
                expires_at,
            } => {
                self.put(
                    Table::JoinTokens,
                    &keys::of(&[secret_sha256.0]),
                    &expires_at,
                )?;
                Ok(Ok(()))
            }
            Command::RecordReplicas { node_id, blobs } => {
                let was_behind = self.counter(&pending_counter(node_id))? > 0;
                for blob in blobs {
                    if !self.contains(Table::Blobs, &blob_key(&blob))? {
                        continue;
                    }
                    self.put(Table::Replicas, &blob_node_key(&blob, node_id), &())?;
                    self.put(Table::NodeReplicas, &node_blob_key(node_id, &blob), &())?;
                    if self.delete(Table::Pending, &node_blob_key(node_id, &blob))? {
                        self.add_counter(&pending_counter(node_id), -1)?;
                    }
                }
                if was_behind && self.counter(&pending_counter(node_id))? == 0 {
                    self.record_caught_up(node_id)?;
                }
                Ok(Ok(()))
            }
            Command::CacheDocument {
                registry,
                key,
                document,
            } => {
                let Some(record) = self.registry_record(&registry)? else {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                };
                let document_key = package_key(&registry, &key);
                let replaced = self.get::<CachedDocument>(Table::Cached, &document_key)?;
                self.reference_blob(&record.registry, &document.blob)?;
                self.put(Table::Cached, &document_key, &document)?;
                if let Some(old) = replaced {
                    self.unreference_blob(&old.blob.sha256)?;
                }
                Ok(Ok(()))
            }
            Command::ForgetNode { node_id } => {
                self.forget_node(node_id)?;
                Ok(Ok(()))
            }
            Command::AdvanceGcEpoch { node_id } => {
                self.add_counter(&format!("{}{node_id}", scalar::GC_EPOCH), 1)?;
                Ok(Ok(()))
            }
            Command::SetRegistrySettings { registry, settings } => {
                if self.registry_record(&registry)?.is_none() {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                }
                self.set_scalar(
                    &format!("{}{registry}", scalar::REGISTRY_SETTINGS),
                    &settings,
                )?;
                Ok(Ok(()))
            }
            Command::SetSigningKey { registry, key } => {
                if self.registry_record(&registry)?.is_none() {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                }
                self.set_scalar(&format!("{}{registry}", scalar::SIGNING_KEY), &key)?;
                Ok(Ok(()))
            }
            Command::CreateWebhook { webhook } => self.create_webhook(webhook),
            Command::DeleteWebhook { name } => self.delete_webhook(&name),
            Command::SetWebhookEnabled {
                name,
                enabled,
                reason,
            } => self.set_webhook_enabled(&name, enabled, reason),
            Command::RecordWebhookDeliveries {
                name,
                id,
                cursor,
                deliveries,
                failures,
                disable,
            } => self.record_webhook_deliveries(&name, id, cursor, deliveries, failures, disable),
            Command::RecordUsage {
                node_id,
                batch,
                site,
                tallies,
                keep_days,
            } => {
                self.record_usage(node_id, batch, &site, tallies, keep_days)?;
                Ok(Ok(()))
            }
            Command::Fenced { fence, command } => self.apply(Command::Fenced { fence, command }),
            Command::RecordAudit { events } => {
                self.record_audit(events)?;
                Ok(Ok(()))
            }
            Command::SetAuditRetention { retention, at } => {
                self.set_scalar(scalar::AUDIT_RETENTION, &retention)?;
                self.retain_audit(at)?;
                Ok(Ok(()))
            }
            Command::SettleAudit {
                at,
                actor_id,
                target,
                result,
                detail,
            } => self.settle_audit((at, &actor_id, &target), None, result, detail),
            Command::SettleAuditEvent {
                at,
                actor_id,
                target,
                recorded,
                result,
                detail,
            } => self.settle_audit((at, &actor_id, &target), Some(recorded), result, detail),
            Command::SetCleanupPolicy { registry, policy } => {
                self.registry_change(&registry, |r| r.cleanup = policy)
            }
            Command::SetFirewallPolicy {
                registry, policy, ..
            } => self.registry_change(&registry, |r| r.firewall = policy),
            Command::ImportAdvisories { advisories, at } => {
                firewall::import(self, advisories, at)?;
                Ok(Ok(()))
            }
            Command::QuarantineVersion {
                registry,
                package,
                version,
                record,
            } => firewall::set_quarantine(self, (&registry, &package, &version), record, false),
            Command::ReleaseVersion {
                registry,
                package,
                version,
                record,
            } => firewall::set_quarantine(self, (&registry, &package, &version), record, true),
        }
    }
}

/// The method part of the audit action recording that a full node holds every blob its site's
/// replication policy wants (after having had some to copy).
pub const REPLICATED_ACTION: &str = "REPLICATED";

impl Applier<'_> {
    /// Records in the audit trail that full node `node_id` has copied every blob it had to: each
    /// version whose push came before this event is held at its site.
    fn record_caught_up(&mut self, node_id: u64) -> ReadResult<()> {
        let site = self
            .full_nodes()?
            .into_iter()
            .find(|(id, _)| *id == node_id)
            .map(|(_, site)| site)
            .unwrap_or_default();
        let event = AuditEvent {
            id: 0,
            at: self.counter(scalar::FIREWALL_CLOCK)?,
            actor: "replication".to_string(),
            actor_id: None,
            source_ip: "-".to_string(),
            action: format!("{REPLICATED_ACTION} /cluster/sites/{{site}}/nodes/{{node}}"),
            registry: None,
            target: format!("/cluster/sites/{site}/nodes/{node_id}"),
            result: 200,
            detail: Some(format!(
                "node {node_id} at site {site} holds every blob its site's replication policy wants"
            )),
        };
        self.record_audit(vec![event])
    }
}

/// The counter of blobs `node` still has to copy.
fn pending_counter(node: u64) -> String {
    format!("{}{node}", scalar::PENDING_COUNT)
}

fn new_version(name: &str, at: u64) -> Version {
    Version {
        name: name.to_string(),
        created_at: at,
        updated_at: at,
        files: BTreeMap::new(),
        metadata: Metadata::new(),
        manifest: None,
        attributes: BTreeMap::new(),
        firewall: None,
        size: 0,
    }
}

/// The key of a version in the last-access index.
pub fn access_key(registry: &str, time: u64, package: &str, version: &str) -> Vec<u8> {
    Key::new()
        .part(registry)
        .number(time)
        .part(package)
        .part(version)
        .into_bytes()
}

impl Applier<'_> {
    /// Changes a registry's settings.
    /// Sets the result and detail of the newest audit event at `at` of `actor_id` on `target`
    /// (whose result is `recorded`, when given).
    fn settle_audit(
        &mut self,
        (at, actor_id, target): (u64, &Option<String>, &str),
        recorded: Option<u16>,
        result: u16,
        detail: Option<String>,
    ) -> Applied {
        let prefix = Key::new().number(at).into_bytes();
        let times = self.scan_keys(Table::AuditTimes, &prefix, None, usize::MAX)?;
        for time_key in times.iter().rev() {
            let id_key = Key::new()
                .number(keys::number_part(time_key, 1)?)
                .into_bytes();
            let Some(mut event) = self.get::<AuditEvent>(Table::Audit, &id_key)? else {
                continue;
            };
            if event.actor_id == *actor_id
                && event.target == target
                && recorded.is_none_or(|recorded| event.result == recorded)
            {
                event.result = result;
                event.detail = detail;
                self.put(Table::Audit, &id_key, &event)?;
                break;
            }
        }
        Ok(Ok(()))
    }

    fn registry_change(&mut self, name: &str, change: impl FnOnce(&mut Registry)) -> Applied {
        let Some(mut record) = self.registry_record(name)? else {
            return Ok(Err(not_found(format_args!("registry {name}"))));
        };
        change(&mut record.registry);
        self.put(Table::Registries, &registry_key(name), &record)?;
        Ok(Ok(()))
    }

    fn change_metadata(
        &mut self,
        target: &MetadataTarget,
        change: impl FnOnce(&mut Metadata),
    ) -> Applied {
        match target {
            MetadataTarget::Registry { registry } => {
                self.registry_change(registry, |r| change(&mut r.metadata))
            }
            MetadataTarget::Package { registry, package } => {
                let Some(mut record) = self.package(registry, package)? else {
                    return Ok(Err(not_found(format_args!("package {registry}/{package}"))));
                };
                change(&mut record.metadata);
                record.generation += 1;
                self.put(Table::Packages, &package_key(registry, package), &record)?;
                Ok(Ok(()))
            }
            MetadataTarget::Version {
                registry,
                package,
                version,
            } => {
                let Some(mut record) = self.version(registry, package, version)? else {
                    return Ok(Err(not_found(format_args!(
                        "version {registry}/{package}/{version}"
                    ))));
                };
                change(&mut record.metadata);
                self.put(
                    Table::Versions,
                    &child_key(registry, package, version),
                    &record,
                )?;
                self.touch_package(registry, package, None)?;
                Ok(Ok(()))
            }
        }
    }

    fn add_to_registry(
        &mut self,
        registry: &str,
        packages: i64,
        versions: i64,
        size: i64,
    ) -> ReadResult<()> {
        if let Some(mut record) = self.registry_record(registry)? {
            record.packages = record.packages.saturating_add_signed(packages);
            record.versions = record.versions.saturating_add_signed(versions);
            record.size = record.size.saturating_add_signed(size);
            self.put(Table::Registries, &registry_key(registry), &record)?;
        }
        if packages != 0 {
            self.add_counter(scalar::PACKAGE_COUNT, packages)?;
        }
        if versions != 0 {
            self.add_counter(scalar::VERSION_COUNT, versions)?;
        }
        Ok(())
    }

    fn create_package(&mut self, registry: &str, package: &str, at: u64) -> ReadResult<Package> {
        let record = Package::new(package, at);
        self.put(Table::Packages, &package_key(registry, package), &record)?;
        self.add_to_registry(registry, 1, 0, 0)?;
        Ok(record)
    }

    /// Marks a package as changed (and, with `at`, updated at that time).
    fn touch_package(&mut self, registry: &str, package: &str, at: Option<u64>) -> ReadResult<()> {
        if let Some(mut record) = self.package(registry, package)? {
            record.generation += 1;
            if let Some(at) = at {
                record.updated_at = at;
            }
            self.put(Table::Packages, &package_key(registry, package), &record)?;
        }
        Ok(())
    }

    /// The size of a version: its files' blobs plus, for OCI, each distinct blob its manifest
    /// references.
    fn version_size(&self, version: &Version) -> ReadResult<u64> {
        let mut blobs = BTreeMap::new();
        for file in version.files.values() {
            blobs.insert(file.sha256, file.size);
        }
        for digest in version.manifest.iter().flat_map(|m| m.blobs.iter()) {
            if let Some(blob) = self.blob_by_digest(digest)? {
                blobs.insert(blob.sha256, blob.size);
            }
        }
        Ok(blobs.values().sum())
    }

    /// Stores a new or changed version, keeping its package (created if new, updated at `at`),
    /// registry counts and the last-access index in step.
    fn store_version(
        &mut self,
        registry: &str,
        package: &str,
        mut version: Version,
        at: u64,
    ) -> ReadResult<()> {
        let key = child_key(registry, package, &version.name);
        let previous = self.version(registry, package, &version.name)?;
        version.size = self.version_size(&version)?;
        let mut record = match self.package(registry, package)? {
            Some(record) => record,
            None => self.create_package(registry, package, at)?,
        };
        let (old_size, new_version) = match &previous {
            Some(old) => (old.size, 0),
            None => (0, 1),
        };
        record.version_count += new_version as u64;
        record.size = record.size.saturating_sub(old_size) + version.size;
        record.updated_at = at;
        record.generation += 1;
        let candidate = (version.updated_at, version.name.clone());
        if record
            .latest
            .as_ref()
            .is_none_or(|latest| &candidate >= latest)
        {
            record.latest = Some(candidate);
        }
        let old_access = match &previous {
            Some(old) => Some(access_time(self, registry, package, old)?),
            None => None,
        };
        let new_access = access_time(self, registry, package, &version)?;
        if old_access != Some(new_access) {
            if let Some(old) = old_access {
                self.delete(
                    Table::LastAccess,
                    &access_key(registry, old, package, &version.name),
                )?;
            }
            self.put(
                Table::LastAccess,
                &access_key(registry, new_access, package, &version.name),
                &(),
            )?;
        }
        self.put(Table::Packages, &package_key(registry, package), &record)?;
        self.put(Table::Versions, &key, &version)?;
        let size_change = version.size as i64 - old_size as i64;
        self.add_to_registry(registry, 0, new_version, size_change)
    }

    /// Removes a version with its files' references, the tags pointing at it and its index entries.
    /// False when there was no such version. The package stays (see
    /// [`Applier::remove_package_if_empty`]).
    fn remove_version(&mut self, registry: &str, package: &str, version: &str) -> ReadResult<bool> {
        let Some(removed) = self.version(registry, package, version)? else {
            return Ok(false);
        };
        self.delete(Table::Versions, &child_key(registry, package, version))?;
        let accessed = access_time(self, registry, package, &removed)?;
        self.delete(
            Table::LastAccess,
            &access_key(registry, accessed, package, version),
        )?;
        self.forget_version_usage(registry, package, version)?;
        for (tag, target) in self.tags(registry, package)? {
            if target == version {
                self.delete(Table::Tags, &child_key(registry, package, &tag))?;
            }
        }
        for file in removed.files.values() {
            self.unreference_blob(&file.sha256)?;
        }
        if let Some(mut record) = self.package(registry, package)? {
            record.version_count = record.version_count.saturating_sub(1);
            record.size = record.size.saturating_sub(removed.size);
            record.generation += 1;
            if record.latest_version() == Some(version) {
                record.latest = self
                    .versions(registry, package)?
                    .into_iter()
                    .map(|v| (v.updated_at, v.name))
                    .max();
            }
            self.put(Table::Packages, &package_key(registry, package), &record)?;
        }
        self.add_to_registry(registry, 0, -1, -(removed.size as i64))?;
        Ok(true)
    }

    /// Removes a package that has no versions and no linked blobs left.
    fn remove_package_if_empty(&mut self, registry: &str, package: &str) -> ReadResult<()> {
        let Some(record) = self.package(registry, package)? else {
            return Ok(());
        };
        if record.version_count == 0 && self.package_blobs(registry, package)?.is_empty() {
            self.remove_package(registry, package)?;
        }
        Ok(())
    }

    /// Removes a package with every version, tag and linked blob.
    fn remove_package(&mut self, registry: &str, package: &str) -> ReadResult<()> {
        for version in self.versions(registry, package)? {
            self.delete(
                Table::Versions,
                &child_key(registry, package, &version.name),
            )?;
            let accessed = access_time(self, registry, package, &version)?;
            self.delete(
                Table::LastAccess,
                &access_key(registry, accessed, package, &version.name),
            )?;
            self.forget_version_usage(registry, package, &version.name)?;
            for file in version.files.values() {
                self.unreference_blob(&file.sha256)?;
            }
            self.add_to_registry(registry, 0, -1, -(version.size as i64))?;
        }
        for tag in self.tags(registry, package)?.into_keys() {
            self.delete(Table::Tags, &child_key(registry, package, &tag))?;
        }
        for digest in self.package_blobs(registry, package)? {
            self.unlink_blob(registry, package, &digest)?;
        }
        self.forget_package_usage(registry, package)?;
        if self.delete(Table::Packages, &package_key(registry, package))? {
            self.add_to_registry(registry, -1, 0, 0)?;
        }
        Ok(())
    }

    /// Removes a blob's link from a package; false when it was not linked.
    fn unlink_blob(&mut self, registry: &str, package: &str, digest: &str) -> ReadResult<bool> {
        if !self.delete(Table::PackageBlobs, &child_key(registry, package, digest))? {
            return Ok(false);
        }
        if let Some(blob) = self.blob_by_digest(digest)? {
            self.unreference_blob(&blob.sha256)?;
        }
        Ok(true)
    }

    /// Counts a new reference to `blob` from `registry` (recording the blob when new), and makes
    /// it pending at every full node that the registry's policy copies eagerly to and that does
    /// not hold it yet. Inline blobs live in the metadata and are never pending.
    fn reference_blob(&mut self, registry: &Registry, blob: &BlobRef) -> ReadResult<()> {
        let key = blob_key(&blob.sha256);
        match self.blob_record(&blob.sha256)? {
            Some(mut record) => {
                record.references += 1;
                self.put(Table::Blobs, &key, &record)?;
            }
            None => {
                self.put(
                    Table::Blobs,
                    &key,
                    &BlobRecord {
                        blob: blob.clone(),
                        references: 1,
                    },
                )?;
                self.add_counter(scalar::BLOB_COUNT, 1)?;
                let chunks: BTreeSet<_> = blob.chunks.iter().map(|c| c.id).collect();
                for chunk in chunks {
                    let count = self
                        .get::<u64>(Table::ChunkRefs, &chunk_key(&chunk))?
                        .unwrap_or(0);
                    self.put(Table::ChunkRefs, &chunk_key(&chunk), &(count + 1))?;
                }
            }
        }
        if blob.inline.is_none() {
            self.make_pending(&registry.replication, &blob.sha256)?;
        }
        Ok(())
    }

    /// Makes a blob pending at the full nodes `policy` copies eagerly to that neither hold it nor
    /// already wait for it.
    fn make_pending(&mut self, policy: &ReplicationPolicy, sha256: &Sha256) -> ReadResult<()> {
        for (node, site) in self.full_nodes()? {
            if !policy.copies_eagerly_to(&site) || self.has_replica(sha256, node)? {
                continue;
            }
            let key = node_blob_key(node, sha256);
            if !self.contains(Table::Pending, &key)? {
                self.put(Table::Pending, &key, &())?;
                self.add_counter(&pending_counter(node), 1)?;
            }
        }
        Ok(())
    }

    /// Counts a reference to a blob gone. At zero the blob is forgotten: its record, its chunks'
    /// references, its replicas and what was pending for it.
    fn unreference_blob(&mut self, sha256: &Sha256) -> ReadResult<()> {
        let key = blob_key(sha256);
        let Some(mut record) = self.blob_record(sha256)? else {
            return Ok(());
        };
        if record.references > 1 {
            record.references -= 1;
            return self.put(Table::Blobs, &key, &record);
        }
        self.delete(Table::Blobs, &key)?;
        self.add_counter(scalar::BLOB_COUNT, -1)?;
        let chunks: BTreeSet<_> = record.blob.chunks.iter().map(|c| c.id).collect();
        for chunk in chunks {
            let chunk_key = chunk_key(&chunk);
            match self.get::<u64>(Table::ChunkRefs, &chunk_key)? {
                Some(count) if count > 1 => self.put(Table::ChunkRefs, &chunk_key, &(count - 1))?,
                _ => {
                    self.delete(Table::ChunkRefs, &chunk_key)?;
                }
            }
        }
        for node in self.replicas(sha256)? {
            self.delete(Table::Replicas, &blob_node_key(sha256, node))?;
            self.delete(Table::NodeReplicas, &node_blob_key(node, sha256))?;
        }
        for (node, _) in self.full_nodes()? {
            if self.delete(Table::Pending, &node_blob_key(node, sha256))? {
                self.add_counter(&pending_counter(node), -1)?;
            }
        }
        Ok(())
    }

    /// Forgets what a node that left held and had still to copy.
    fn forget_node(&mut self, node: u64) -> ReadResult<()> {
        let prefix = Key::new().number(node).into_bytes();
        for key in self.scan_keys(Table::NodeReplicas, &prefix, None, usize::MAX)? {
            let parts = keys::parts(&key)?;
            if let Some(sha) = parts
                .get(1)
                .and_then(|p| <[u8; 32]>::try_from(p.as_slice()).ok())
            {
                self.delete(Table::Replicas, &blob_node_key(&Sha256(sha), node))?;
            }
            self.delete(Table::NodeReplicas, &key)?;
        }
        for key in self.scan_keys(Table::Pending, &prefix, None, usize::MAX)? {
            self.delete(Table::Pending, &key)?;
        }
        self.set_scalar(&pending_counter(node), &0u64)
    }

    /// Appends audit events, numbering them, then applies the retention (the age counted back from
    /// the newest of them).
    pub(crate) fn record_audit(&mut self, events: Vec<AuditEvent>) -> ReadResult<()> {
        let mut next = self.counter(scalar::NEXT_AUDIT_ID)?.max(1);
        let mut count = self.counter(scalar::AUDIT_COUNT)?;
        let newest = events.iter().map(|e| e.at).max();
        for mut event in events {
            event.id = next;
            next += 1;
            count += 1;
            let id_key = Key::new().number(event.id).into_bytes();
            let time_key = Key::new().number(event.at).number(event.id).into_bytes();
            self.put(Table::Audit, &id_key, &event)?;
            self.put(Table::AuditTimes, &time_key, &())?;
        }
        self.set_scalar(scalar::NEXT_AUDIT_ID, &next)?;
        self.set_scalar(scalar::AUDIT_COUNT, &count)?;
        if let Some(newest) = newest {
            self.retain_audit(newest)?;
        }
        Ok(())
    }

    /// Drops the oldest audit events beyond the retention's count, and those older than its age
    /// before `now`.
    fn retain_audit(&mut self, now: u64) -> ReadResult<()> {
        let retention: AuditRetention = self.scalar(scalar::AUDIT_RETENTION)?.unwrap_or_default();
        let mut count = self.counter(scalar::AUDIT_COUNT)?;
        while count > retention.max_events {
            let Some((key, event)) = self.scan::<AuditEvent>(Table::Audit, &[], None, 1)?.pop()
            else {
                break;
            };
            self.delete(Table::Audit, &key)?;
            let time_key = Key::new().number(event.at).number(event.id).into_bytes();
            self.delete(Table::AuditTimes, &time_key)?;
            count -= 1;
        }
        if let Some(days) = retention.max_age_days {
            let cutoff = now.saturating_sub(u64::from(days) * 24 * 3600 * 1000);
            let end = Key::new().number(cutoff).into_bytes();
            let range = (std::ops::Bound::Unbounded, std::ops::Bound::Excluded(end));
            let old: Vec<Vec<u8>> = self
                .range_raw(Table::AuditTimes, &range)?
                .map(|entry| entry.map(|(key, _)| key.value().to_vec()))
                .collect::<Result<_, _>>()?;
            for time_key in old {
                let id = keys::number_part(&time_key, 1)?;
                self.delete(Table::Audit, &Key::new().number(id).into_bytes())?;
                self.delete(Table::AuditTimes, &time_key)?;
                count = count.saturating_sub(1);
            }
        }
        self.set_scalar(scalar::AUDIT_COUNT, &count)
    }

    fn delete_registry(&mut self, name: &str) -> Applied {
        if self.registry_record(name)?.is_none() {
            return Ok(Err(not_found(format_args!("registry {name}"))));
        }
        let registry_prefix = registry_key(name);
        for key in self.scan_keys(Table::Cached, &registry_prefix, None, usize::MAX)? {
            if let Some(document) = self.get::<CachedDocument>(Table::Cached, &key)? {
                self.delete(Table::Cached, &key)?;
                self.unreference_blob(&document.blob.sha256)?;
            }
        }
        self.forget_registry_grants(name)?;
        for package in self.package_names(name, None, usize::MAX)? {
            self.remove_package(name, &package)?;
        }
        self.delete(Table::Registries, &registry_prefix)?;
        for kept_beside in [scalar::REGISTRY_SETTINGS, scalar::SIGNING_KEY] {
            self.delete(Table::Meta, &keys::of(&[&format!("{kept_beside}{name}")]))?;
        }
        Ok(Ok(()))
    }

    /// Copies a version (and, for an OCI index, the manifests it references) into another registry of
    /// the same package type; OCI blobs the copies reference are linked there too. No bytes move.
    fn copy_version(
        &mut self,
        from_registry: &str,
        package: &str,
        version: &str,
        to_registry: &str,
        at: u64,
    ) -> Applied {
        let Some(source) = self.registry(from_registry)? else {
            return Ok(Err(not_found(format_args!("registry {from_registry}"))));
        };
        if !self.has_version(from_registry, package, version)? {
            return Ok(Err(not_found(format_args!(
                "version {from_registry}/{package}/{version}"
            ))));
        }
        // The version itself, then every child manifest it references, transitively.
        let mut copies: Vec<Version> = Vec::new();
        let mut waiting = vec![version.to_string()];
        while let Some(name) = waiting.pop() {
            if copies.iter().any(|v| v.name == name) {
                continue;
            }
            let Some(found) = self.version(from_registry, package, &name)? else {
                return Ok(Err(CommandError::MissingReference(format!(
                    "manifest {name}"
                ))));
            };
            if let Some(manifest) = &found.manifest {
                waiting.extend(manifest.manifests.iter().cloned());
            }
            copies.push(found);
        }
        let tags = self.tags_of(from_registry, package, version)?;
        let Some(destination) = self.registry(to_registry)? else {
            return Ok(Err(not_found(format_args!("registry {to_registry}"))));
        };
        if destination.package_type != source.package_type {
            return Ok(Err(CommandError::Invalid(format!(
                "registry {to_registry} holds {} packages, not {}",
                destination.package_type, source.package_type
            ))));
        }
        if destination.immutable {
            let version_exists = self.has_version(to_registry, package, version)?;
            let current = self.tags(to_registry, package)?;
            let tag_moves = tags
                .iter()
                .any(|tag| current.get(tag).is_some_and(|target| target != version));
            if version_exists || tag_moves {
                return Ok(Err(CommandError::Conflict(format!(
                    "registry {to_registry} is immutable: {package}/{version} already exists"
                ))));
            }
        }
        for copy in copies {
            for digest in copy.manifest.iter().flat_map(|m| m.blobs.iter()) {
                let link = child_key(to_registry, package, digest);
                if self.contains(Table::PackageBlobs, &link)? {
                    continue;
                }
                if let Some(blob) = self.blob_by_digest(digest)? {
                    if self.package(to_registry, package)?.is_none() {
                        self.create_package(to_registry, package, at)?;
                    }
                    self.put(Table::PackageBlobs, &link, &())?;
                    self.reference_blob(&destination, &blob)?;
                }
            }
            let replaced: Vec<Sha256> = self
                .version(to_registry, package, &copy.name)?
                .iter()
                .flat_map(|v| v.files.values().map(|f| f.sha256))
                .collect();
            for file in copy.files.values() {
                if let Some(blob) = self.blob(&file.sha256)? {
                    self.reference_blob(&destination, &blob)?;
                }
            }
            let copied = Version {
                created_at: at,
                updated_at: at,
                ..copy
            };
            self.store_version(to_registry, package, copied, at)?;
            for old in replaced {
                self.unreference_blob(&old)?;
            }
        }
        for tag in tags {
            self.put(
                Table::Tags,
                &child_key(to_registry, package, &tag),
                &version,
            )?;
        }
        Ok(Ok(()))
    }

    /// An immutable registry keeps what it holds: nothing is deleted from it (deleting and pushing
    /// again would be an overwrite) and no tag that exists moves to another version. Writes of new
    /// files and versions, and identical re-tags, pass; overwrites are refused where they happen.
    fn refuse_changes_to_immutable(&self, command: &Command) -> Applied {
        let (registry, change) = match command {
            Command::DeleteFile { registry, .. }
            | Command::DeleteVersion { registry, .. }
            | Command::DeletePackage { registry, .. }
            | Command::UnlinkBlob { registry, .. } => (registry, None),
            Command::SetTag {
                registry,
                package,
                tag,
                version,
            } => (
                registry,
                Some((package, std::slice::from_ref(tag), version)),
            ),
            Command::PutFile {
                registry,
                package,
                tags,
                version,
                ..
            } => (registry, Some((package, tags.as_slice(), version))),
            _ => return Ok(Ok(())),
        };
        if !self.registry(registry)?.is_some_and(|r| r.immutable) {
            return Ok(Ok(()));
        }
        let Some((package, tags, version)) = change else {
            return Ok(Err(CommandError::Conflict(format!(
                "registry {registry} is immutable: nothing can be deleted from it"
            ))));
        };
        for tag in tags {
            if self
                .tag(registry, package, tag)?
                .is_some_and(|target| &target != version)
            {
                return Ok(Err(CommandError::Conflict(format!(
                    "registry {registry} is immutable: tag {tag} of {package} cannot move"
                ))));
            }
        }
        Ok(Ok(()))
    }

    /// Grants on a registry go with it: a registry created later under the same name starts with
    /// none.
    fn forget_registry_grants(&mut self, registry: &str) -> ReadResult<()> {
        for mut user in self.users()? {
            let before = user.grants.len();
            user.grants
                .retain(|grant| grant.registry.as_deref() != Some(registry));
            if user.grants.len() != before {
                self.put(Table::Users, &keys::of(&[user.name.as_str()]), &user)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arca_protocol::{ChunkFence, ChunkId, ChunkRef, PackageType, ReplicationPolicy};

    use super::*;
    use crate::meta::testing::TestState;

    fn registry(name: &str, immutable: bool) -> Command {
        let mut registry: Registry = serde_json::from_value(serde_json::json!({
            "name": name,
            "package_type": PackageType::Generic,
            "created_at": 1,
        }))
        .expect("registry");
        registry.immutable = immutable;
        Command::CreateRegistry { registry }
    }

    fn blob(byte: u8) -> BlobRef {
        BlobRef {
            sha256: Sha256([byte; 32]),
            size: 3,
            chunks: vec![ChunkRef {
                id: ChunkId([byte; 32]),
                size: 3,
            }],
            inline: None,
        }
    }

    fn put(registry: &str, version: &str, byte: u8) -> Command {
        Command::PutFile {
            registry: registry.into(),
            package: "tool".into(),
            version: version.into(),
            filename: "tool.bin".into(),
            blob: blob(byte),
            attributes: BTreeMap::new(),
            tags: Vec::new(),
            overwrite: Overwrite::Allow,
            at: 10,
        }
    }

    fn delete_version(registry: &str, version: &str) -> Command {
        Command::DeleteVersion {
            registry: registry.into(),
            package: "tool".into(),
            version: version.into(),
        }
    }

    #[test]
    fn immutable_registry_refuses_overwrite_but_mutable_allows_it() {
        let state = TestState::new();
        assert_eq!(state.apply(registry("frozen", true)), Ok(()));
        assert_eq!(state.apply(registry("open", false)), Ok(()));
        assert_eq!(state.apply(put("frozen", "1.0", 1)), Ok(()));
        let before = state.digest();
        assert!(matches!(
            state.apply(put("frozen", "1.0", 2)),
            Err(CommandError::Conflict(_))
        ));
        assert_eq!(state.digest(), before, "a refused command changes nothing");
        assert!(
            state.apply(put("frozen", "1.0", 1)).is_err(),
            "even identical bytes are an overwrite"
        );
        assert_eq!(state.apply(put("open", "1.0", 1)), Ok(()));
        assert_eq!(state.apply(put("open", "1.0", 2)), Ok(()));
        let version = state.view().version("open", "tool", "1.0").expect("read");
        let file = &version.expect("version").files["tool.bin"];
        assert_eq!(file.sha256, Sha256([2; 32]));
    }

    #[test]
    fn immutable_registries_refuse_deletes_and_tag_moves() {
        let state = TestState::new();
        assert_eq!(state.apply(registry("frozen", true)), Ok(()));
        assert_eq!(state.apply(put("frozen", "1.0", 1)), Ok(()));
        assert_eq!(state.apply(put("frozen", "2.0", 2)), Ok(()));
        let tag = |version: &str| Command::SetTag {
            registry: "frozen".into(),
            package: "tool".into(),
            tag: "stable".into(),
            version: version.into(),
        };
        assert_eq!(state.apply(tag("1.0")), Ok(()));
        let before = state.digest();
        let refused = [
            Command::DeleteFile {
                registry: "frozen".into(),
                package: "tool".into(),
                version: "1.0".into(),
                filename: "tool.bin".into(),
                at: 11,
            },
            delete_version("frozen", "1.0"),
            Command::DeletePackage {
                registry: "frozen".into(),
                package: "tool".into(),
            },
            Command::UnlinkBlob {
                registry: "frozen".into(),
                package: "tool".into(),
                digest: "sha256:00".into(),
            },
            tag("2.0"),
            Command::PutFile {
                registry: "frozen".into(),
                package: "tool".into(),
                version: "2.0".into(),
                filename: "extra.bin".into(),
                blob: blob(3),
                attributes: BTreeMap::new(),
                tags: vec!["stable".into()],
                overwrite: Overwrite::Allow,
                at: 12,
            },
        ];
        for command in refused {
            assert!(
                matches!(state.apply(command.clone()), Err(CommandError::Conflict(_))),
                "{command:?}"
            );
        }
        assert_eq!(state.digest(), before);
        assert_eq!(
            state.apply(tag("1.0")),
            Ok(()),
            "re-tagging the same version is no move"
        );
    }

    #[test]
    fn deleting_the_last_file_removes_version_package_and_tags() {
        let state = TestState::new();
        assert_eq!(state.apply(registry("r", false)), Ok(()));
        assert_eq!(state.apply(put("r", "1.0", 1)), Ok(()));
        assert_eq!(
            state.apply(Command::SetTag {
                registry: "r".into(),
                package: "tool".into(),
                tag: "latest".into(),
                version: "1.0".into(),
            }),
            Ok(())
        );
        assert_eq!(
            state.apply(Command::DeleteFile {
                registry: "r".into(),
                package: "tool".into(),
                version: "1.0".into(),
                filename: "tool.bin".into(),
                at: 11,
            }),
            Ok(())
        );
        let view = state.view();
        assert!(view.package("r", "tool").expect("read").is_none());
        assert!(view.tags("r", "tool").expect("read").is_empty());
        assert_eq!(view.counter(scalar::BLOB_COUNT).expect("read"), 0);
        assert_eq!(view.counter(scalar::PACKAGE_COUNT).expect("read"), 0);
        let record = view.registry_record("r").expect("read").expect("registry");
        assert_eq!((record.packages, record.versions, record.size), (0, 0, 0));
    }

    #[test]
    fn packages_and_registries_keep_their_counts_sizes_and_latest_version() {
        let state = TestState::new();
        assert_eq!(state.apply(registry("r", false)), Ok(()));
        for (version, byte) in [("1.0", 1), ("1.1", 2), ("2.0", 3)] {
            let mut command = put("r", version, byte);
            if let Command::PutFile { at, .. } = &mut command {
                *at = u64::from(byte) * 10;
            }
            assert_eq!(state.apply(command), Ok(()));
        }
        let package = state
            .view()
            .package("r", "tool")
            .expect("read")
            .expect("package");
        assert_eq!(package.version_count, 3);
        assert_eq!(package.size, 9);
        assert_eq!(package.latest_version(), Some("2.0"));
        assert_eq!(state.apply(delete_version("r", "2.0")), Ok(()));
        let view = state.view();
        let package = view.package("r", "tool").expect("read").expect("package");
        assert_eq!((package.version_count, package.size), (2, 6));
        assert_eq!(package.latest_version(), Some("1.1"), "the next newest");
        let record = view.registry_record("r").expect("read").expect("registry");
        assert_eq!((record.packages, record.versions, record.size), (1, 2, 6));
        assert_eq!(view.counter(scalar::VERSION_COUNT).expect("read"), 2);
    }

    #[test]
    fn copy_shares_blobs_and_checks_package_type() {
        let state = TestState::new();
        assert_eq!(state.apply(registry("a", false)), Ok(()));
        assert_eq!(state.apply(registry("b", false)), Ok(()));
        assert_eq!(state.apply(put("a", "1.0", 7)), Ok(()));
        let copy = |version: &str| Command::CopyVersion {
            from_registry: "a".into(),
            package: "tool".into(),
            version: version.into(),
            to_registry: "b".into(),
            at: 20,
        };
        assert_eq!(state.apply(copy("1.0")), Ok(()));
        let view = state.view();
        let copied = view
            .version("b", "tool", "1.0")
            .expect("read")
            .expect("copied");
        assert_eq!(copied.files["tool.bin"].sha256, Sha256([7; 32]));
        assert_eq!(
            view.counter(scalar::BLOB_COUNT).expect("read"),
            1,
            "one blob record"
        );
        let record = view
            .blob_record(&Sha256([7; 32]))
            .expect("read")
            .expect("blob");
        assert_eq!(record.references, 2);
        assert!(matches!(
            state.apply(copy("9.9")),
            Err(CommandError::NotFound(_))
        ));
        // Deleting the original keeps the copy's bytes referenced.
        assert_eq!(state.apply(delete_version("a", "1.0")), Ok(()));
        assert!(
            state
                .view()
                .chunk_referenced(&ChunkId([7; 32]))
                .expect("read")
        );
    }

    #[test]
    fn metadata_set_and_delete_on_every_level() {
        let state = TestState::new();
        assert_eq!(state.apply(registry("r", false)), Ok(()));
        assert_eq!(state.apply(put("r", "1.0", 1)), Ok(()));
        let targets = [
            MetadataTarget::Registry {
                registry: "r".into(),
            },
            MetadataTarget::Package {
                registry: "r".into(),
                package: "tool".into(),
            },
            MetadataTarget::Version {
                registry: "r".into(),
                package: "tool".into(),
                version: "1.0".into(),
            },
        ];
        for target in targets {
            let entries = BTreeMap::from([
                ("owner".to_string(), "platform".to_string()),
                ("tier".to_string(), "gold".to_string()),
            ]);
            let set = Command::SetMetadata {
                target: target.clone(),
                entries,
            };
            assert_eq!(state.apply(set), Ok(()));
            let delete = Command::DeleteMetadata {
                target: target.clone(),
                keys: vec!["tier".into()],
            };
            assert_eq!(state.apply(delete), Ok(()));
            let metadata = state
                .view()
                .metadata(&target)
                .expect("read")
                .expect("target exists");
            assert_eq!(metadata.len(), 1);
            assert_eq!(metadata["owner"], "platform");
        }
    }

    #[test]
    fn a_batch_is_all_or_nothing() {
        let state = TestState::new();
        assert_eq!(state.apply(registry("r", false)), Ok(()));
        let before = state.digest();
        let batch = Command::Batch {
            commands: vec![put("r", "1.0", 1), delete_version("r", "9.9")],
        };
        assert!(matches!(state.apply(batch), Err(CommandError::NotFound(_))));
        assert_eq!(state.digest(), before, "the first command was undone too");
        let batch = Command::Batch {
            commands: vec![
                put("r", "1.0", 1),
                Command::SetTag {
                    registry: "r".into(),
                    package: "tool".into(),
                    tag: "latest".into(),
                    version: "1.0".into(),
                },
            ],
        };
        assert_eq!(state.apply(batch), Ok(()));
        assert_eq!(
            state
                .view()
                .tag("r", "tool", "latest")
                .expect("read")
                .as_deref(),
            Some("1.0")
        );
    }

    #[test]
    fn a_fenced_write_applies_only_while_its_nodes_collection_epoch_is_unchanged() {
        let state = TestState::new();
        assert_eq!(state.apply(registry("r", false)), Ok(()));
        let fenced = |command, gc_epoch| Command::Fenced {
            fence: ChunkFence {
                node_id: 2,
                gc_epoch,
            },
            command: Box::new(command),
        };
        assert_eq!(state.view().gc_epoch(2).expect("read"), 0);
        assert_eq!(state.apply(fenced(put("r", "1.0", 1), 0)), Ok(()));
        // Node 2 begins a collection step; node 3's epoch is its own.
        let advance = |node_id| Command::AdvanceGcEpoch { node_id };
        assert_eq!(state.apply(advance(2)), Ok(()));
        assert_eq!(state.apply(advance(3)), Ok(()));
        assert_eq!(state.view().gc_epoch(2).expect("read"), 1);
        let before = state.digest();
        let late = state.apply(fenced(put("r", "2.0", 2), 0));
        assert!(matches!(late, Err(CommandError::Retry(_))), "{late:?}");
        // Inside a batch (as a request's audit event carries it), the whole batch is refused.
        let batch = Command::Batch {
            commands: vec![
                fenced(put("r", "2.0", 2), 0),
                Command::RecordAudit {
                    events: vec![audit_event("r/tool/2.0")],
                },
            ],
        };
        assert!(matches!(state.apply(batch), Err(CommandError::Retry(_))));
        assert_eq!(
            state.digest(),
            before,
            "a refused fenced write changes nothing"
        );
        assert_eq!(state.apply(fenced(put("r", "2.0", 2), 1)), Ok(()));
        assert!(state.view().has_version("r", "tool", "2.0").expect("read"));
    }

    fn audit_event(target: &str) -> AuditEvent {
        AuditEvent {
            id: 0,
            at: 5,
            actor: "ci".into(),
            actor_id: Some("tok_1".into()),
            source_ip: "127.0.0.1".into(),
            action: "PUT /generic/{registry}/{package}/{version}/{filename}".into(),
            registry: Some("r".into()),
            target: target.into(),
            result: 201,
            detail: None,
        }
    }

    #[test]
    fn a_settled_event_is_the_one_committed_with_the_change_not_a_refusal_beside_it() {
        let state = TestState::new();
        let committed = audit_event("/ui/-/r/r/quarantine");
        let refused = AuditEvent {
            result: 403,
            detail: Some("CSRF check failed".into()),
            ..audit_event("/ui/-/r/r/quarantine")
        };
        // The change's event commits first; a refusal of the same millisecond is flushed after.
        let record = |events| state.apply(Command::RecordAudit { events });
        assert_eq!(record(vec![committed]), Ok(()));
        assert_eq!(record(vec![refused]), Ok(()));
        let settle = Command::SettleAuditEvent {
            at: 5,
            actor_id: Some("tok_1".into()),
            target: "/ui/-/r/r/quarantine".into(),
            recorded: 201,
            result: 303,
            detail: Some("quarantine tool@1.0".into()),
        };
        assert_eq!(state.apply(settle), Ok(()));
        let events = state.newest_events(10);
        assert_eq!(events[0].result, 403, "the refusal stays as it was");
        assert_eq!(events[0].detail.as_deref(), Some("CSRF check failed"));
        assert_eq!(events[1].result, 303);
        assert_eq!(events[1].detail.as_deref(), Some("quarantine tool@1.0"));
    }

    #[test]
    fn audit_events_are_numbered_in_order_and_the_oldest_dropped_beyond_retention() {
        let state = TestState::new();
        let record = |events| state.apply(Command::RecordAudit { events });
        assert_eq!(record(vec![audit_event("/a"), audit_event("/b")]), Ok(()));
        let newest = |limit| state.newest_events(limit);
        let ids: Vec<u64> = newest(10).iter().map(|e| e.id).collect();
        assert_eq!(
            ids,
            vec![2, 1],
            "ids count from 1, whatever the proposer sent"
        );
        assert_eq!(newest(1)[0].target, "/b");

        // The same commands applied to another state give the same trail (deterministic).
        let replica = TestState::new();
        let events = vec![audit_event("/a"), audit_event("/b")];
        assert_eq!(replica.apply(Command::RecordAudit { events }), Ok(()));
        assert_eq!(replica.digest(), state.digest());

        // The retention keeps the newest; ids are never reused after the oldest are dropped.
        for batch in 0..11 {
            let events = (0..10_000)
                .map(|i| audit_event(&format!("/{batch}/{i}")))
                .collect();
            assert_eq!(record(events), Ok(()));
        }
        let view = state.view();
        assert_eq!(
            view.counter(scalar::AUDIT_COUNT).expect("read"),
            AUDIT_RETENTION
        );
        let oldest = view
            .scan::<AuditEvent>(Table::Audit, &[], None, 1)
            .expect("read");
        assert_eq!(oldest[0].1.id, 110_003 - AUDIT_RETENTION);
        assert_eq!(newest(1)[0].id, 110_002);
        let window = view.audit_ids_between(5, 5, 3).expect("read");
        assert_eq!(
            window,
            vec![110_002, 110_001, 110_000],
            "by time, newest first"
        );
    }

    #[test]
    fn audit_retention_by_age_drops_events_older_than_it_before_the_newest() {
        let state = TestState::new();
        const DAY: u64 = 24 * 3600 * 1000;
        let at = |time: u64, target: &str| AuditEvent {
            at: time,
            ..audit_event(target)
        };
        let record = |events| state.apply(Command::RecordAudit { events });
        assert_eq!(
            record(vec![at(DAY, "/old"), at(3 * DAY, "/recent")]),
            Ok(())
        );
        let retention = AuditRetention {
            max_events: 10,
            max_age_days: Some(1),
        };
        let set = Command::SetAuditRetention {
            retention,
            at: 3 * DAY + 1,
        };
        assert_eq!(state.apply(set), Ok(()));
        let kept: Vec<String> = state
            .newest_events(10)
            .into_iter()
            .map(|e| e.target)
            .collect();
        assert_eq!(kept, ["/recent"]);
        assert_eq!(record(vec![at(5 * DAY, "/newest")]), Ok(()));
        let kept: Vec<String> = state
            .newest_events(10)
            .into_iter()
            .map(|e| e.target)
            .collect();
        assert_eq!(kept, ["/newest"], "a day before the newest event");
        let view = state.view();
        assert_eq!(view.counter(scalar::AUDIT_COUNT).expect("read"), 1);
    }

    #[test]
    fn full_nodes_at_eager_sites_get_pending_blobs_until_they_record_them() {
        let state = TestState::new();
        let node = |site: &str| NodeInfo {
            site: site.into(),
            ..NodeInfo::default()
        };
        let membership = openraft::Membership::new(
            vec![std::collections::BTreeSet::from([1, 2])],
            BTreeMap::from([(1, node("eu")), (2, node("us"))]),
        );
        let db = memory_membership(&state, membership);
        assert!(db.is_ok());
        assert_eq!(state.apply(registry("r", false)), Ok(()));
        let only_eu: ReplicationPolicy =
            serde_json::from_str("{\"sites\":[\"eu\"],\"mode\":\"eager\"}").expect("policy");
        assert_eq!(
            state.apply(Command::SetReplication {
                registry: "r".into(),
                policy: only_eu,
            }),
            Ok(())
        );
        assert_eq!(state.apply(put("r", "1.0", 1)), Ok(()));
        let view = state.view();
        assert_eq!(
            view.pending(1, None, 10).expect("read"),
            vec![Sha256([1; 32])]
        );
        assert!(
            view.pending(2, None, 10).expect("read").is_empty(),
            "us is not eager"
        );
        assert_eq!(view.pending_count(1).expect("read"), 1);
        assert_eq!(
            state.apply(Command::RecordReplicas {
                node_id: 1,
                blobs: vec![Sha256([1; 32])],
            }),
            Ok(())
        );
        let view = state.view();
        assert!(view.pending(1, None, 10).expect("read").is_empty());
        assert_eq!(view.pending_count(1).expect("read"), 0);
        assert_eq!(view.replicas(&Sha256([1; 32])).expect("read"), [1].into());
        // A blob nobody references takes its replicas with it.
        assert_eq!(state.apply(delete_version("r", "1.0")), Ok(()));
        assert!(
            state
                .view()
                .replicas(&Sha256([1; 32]))
                .expect("read")
                .is_empty()
        );
    }

    /// Records `membership` in the state, as a membership log entry would.
    fn memory_membership(
        state: &TestState,
        membership: openraft::Membership<u64, NodeInfo>,
    ) -> Result<(), StoreError> {
        state.with_applier(|applier| {
            applier.set_membership(&StoredMembership::new(None, membership))
        })
    }
}
