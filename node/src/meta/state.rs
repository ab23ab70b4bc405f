//! The replicated metadata state and the deterministic function that applies a [`Command`] to it.
//!
//! Everything here is pure: the same commands in the same order give the same state on every node. A
//! refused command leaves the state untouched.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use arca_protocol::model::{AuditEvent, Metadata};
use arca_protocol::{
    BlobRef, CachedDocument, Command, CommandError, CommandOutcome, MetadataTarget, Overwrite,
    Package, Registry, Sha256, Token, Version,
};
use serde::{Deserialize, Serialize};

use crate::policy::firewall::{self, FirewallDb};

/// A registry and its packages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryState {
    /// The registry's settings and metadata.
    pub registry: Registry,
    /// Packages by name.
    pub packages: BTreeMap<String, Package>,
}

/// All metadata a node holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaState {
    /// Registries by name.
    pub registries: BTreeMap<String, RegistryState>,
    /// Every blob any file refers to, by sha256.
    pub blobs: BTreeMap<Sha256, BlobRef>,
    /// API tokens by id.
    pub tokens: BTreeMap<String, Token>,
    /// Users and service accounts by name.
    #[serde(default)]
    pub users: BTreeMap<String, arca_protocol::User>,
    /// Blobs known by a digest other than their sha256 (`sha512:...`), to their sha256.
    pub digest_aliases: BTreeMap<String, Sha256>,
    /// Join tokens: the sha256 of each secret, to when it expires (unix milliseconds).
    pub join_tokens: BTreeMap<Sha256, u64>,
    /// The nodes known to hold every chunk of a blob.
    pub replicas: BTreeMap<Sha256, BTreeSet<u64>>,
    /// Metadata documents remote registries fetched: by registry, then by the front-end's key.
    pub cached: BTreeMap<String, BTreeMap<String, CachedDocument>>,
    /// The audit trail, oldest first, at most [`AUDIT_RETENTION`] events.
    #[serde(default)]
    pub audit: VecDeque<AuditEvent>,
    /// The id the next audit event gets (ids count from 1 and are never reused).
    #[serde(default)]
    pub next_audit_id: u64,
    /// The dependency firewall's vulnerability database.
    #[serde(default)]
    pub firewall: FirewallDb,
}

/// How many audit events the state keeps; older ones are dropped as new ones arrive.
pub const AUDIT_RETENTION: usize = 100_000;

fn not_found(what: impl std::fmt::Display) -> CommandError {
    CommandError::NotFound(what.to_string())
}

impl MetaState {
    /// The registry called `name`.
    pub fn registry(&self, name: &str) -> Option<&RegistryState> {
        self.registries.get(name)
    }

    /// A package of a registry.
    pub fn package(&self, registry: &str, package: &str) -> Option<&Package> {
        self.registries.get(registry)?.packages.get(package)
    }

    /// A version of a package.
    pub fn version(&self, registry: &str, package: &str, version: &str) -> Option<&Version> {
        self.package(registry, package)?.versions.get(version)
    }

    /// The blob an OCI-style digest (`sha256:<hex>` or an alias such as `sha512:<hex>`) names.
    pub fn blob_by_digest(&self, digest: &str) -> Option<&BlobRef> {
        let sha256 = match digest.strip_prefix("sha256:") {
            Some(hex) => hex.parse().ok()?,
            None => *self.digest_aliases.get(digest)?,
        };
        self.blobs.get(&sha256)
    }

    /// Applies one command. On error nothing has changed. The dependency firewall then evaluates
    /// again what the command changed (see [`crate::policy::firewall`]).
    pub fn apply(&mut self, command: Command) -> CommandOutcome {
        let (reevaluate, at) = firewall::reevaluation_for(&command);
        self.apply_command(command)?;
        if let Some(at) = at {
            self.firewall.clock = self.firewall.clock.max(at);
        }
        let events = firewall::reevaluate(self, reevaluate);
        if !events.is_empty() {
            self.record_audit(events, AUDIT_RETENTION);
        }
        Ok(())
    }

    fn apply_command(&mut self, command: Command) -> CommandOutcome {
        self.refuse_changes_to_immutable(&command)?;
        match command {
            Command::CreateRegistry { registry } => {
                if self.registries.contains_key(&registry.name) {
                    return Err(CommandError::AlreadyExists(format!(
                        "registry {}",
                        registry.name
                    )));
                }
                self.registries.insert(
                    registry.name.clone(),
                    RegistryState {
                        registry,
                        packages: BTreeMap::new(),
                    },
                );
                Ok(())
            }
            Command::DeleteRegistry { name } => {
                self.cached.remove(&name);
                self.forget_registry_grants(&name);
                self.registries
                    .remove(&name)
                    .map(drop)
                    .ok_or_else(|| not_found(format_args!("registry {name}")))
            }
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
                let state = self.registry_mut(&registry)?;
                let immutable = state.registry.immutable;
                let existing_version = state
                    .packages
                    .get(&package)
                    .and_then(|p| p.versions.get(&version));
                let existing_file = existing_version.and_then(|v| v.files.get(&filename));
                if immutable && existing_file.is_some() {
                    return Err(CommandError::Conflict(format!(
                        "registry {registry} is immutable: {package}/{version}/{filename} already exists"
                    )));
                }
                match overwrite {
                    Overwrite::RefuseVersion if existing_version.is_some() => {
                        return Err(CommandError::AlreadyExists(format!(
                            "version {package}/{version}"
                        )));
                    }
                    Overwrite::RefuseFile if existing_file.is_some() => {
                        return Err(CommandError::AlreadyExists(format!(
                            "file {package}/{version}/{filename}"
                        )));
                    }
                    _ => {}
                }
                let entry = arca_protocol::FileEntry {
                    sha256: blob.sha256,
                    size: blob.size,
                    created_at: at,
                };
                let package_entry = touch_package(&mut state.packages, &package, at);
                let version_entry = touch_version(package_entry, &version, at);
                version_entry.files.insert(filename, entry);
                version_entry.attributes.extend(attributes);
                for tag in tags {
                    package_entry.tags.insert(tag, version.clone());
                }
                self.blobs.entry(blob.sha256).or_insert(blob);
                Ok(())
            }
            Command::SetTag {
                registry,
                package,
                tag,
                version,
            } => {
                let package_entry = self
                    .registry_mut(&registry)?
                    .packages
                    .get_mut(&package)
                    .filter(|p| p.versions.contains_key(&version))
                    .ok_or_else(|| not_found(format_args!("version {package}/{version}")))?;
                package_entry.tags.insert(tag, version);
                Ok(())
            }
            Command::SetAttributes {
                registry,
                package,
                version,
                set,
                remove,
                at,
            } => {
                let version_entry = self
                    .registry_mut(&registry)?
                    .packages
                    .get_mut(&package)
                    .and_then(|p| p.versions.get_mut(&version))
                    .ok_or_else(|| not_found(format_args!("version {package}/{version}")))?;
                for key in &remove {
                    version_entry.attributes.remove(key);
                }
                version_entry.attributes.extend(set);
                version_entry.updated_at = at;
                Ok(())
            }
            Command::DeleteFile {
                registry,
                package,
                version,
                filename,
                at,
            } => {
                let state = self.registry_mut(&registry)?;
                let package_entry = state
                    .packages
                    .get_mut(&package)
                    .ok_or_else(|| not_found(format_args!("package {package}")))?;
                let version_entry = package_entry
                    .versions
                    .get_mut(&version)
                    .ok_or_else(|| not_found(format_args!("version {package}/{version}")))?;
                version_entry.files.remove(&filename).ok_or_else(|| {
                    not_found(format_args!("file {package}/{version}/{filename}"))
                })?;
                version_entry.updated_at = at;
                package_entry.updated_at = at;
                if version_entry.files.is_empty() {
                    package_entry.versions.remove(&version);
                }
                if package_entry.versions.is_empty() {
                    state.packages.remove(&package);
                }
                Ok(())
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
                let state = self.registry_mut(&registry)?;
                let package_entry = state
                    .packages
                    .get_mut(&package)
                    .ok_or_else(|| not_found(format_args!("package {package}")))?;
                package_entry
                    .versions
                    .remove(&version)
                    .ok_or_else(|| not_found(format_args!("version {package}/{version}")))?;
                package_entry.tags.retain(|_, target| target != &version);
                if package_entry.versions.is_empty() && package_entry.blobs.is_empty() {
                    state.packages.remove(&package);
                }
                Ok(())
            }
            Command::DeletePackage { registry, package } => self
                .registry_mut(&registry)?
                .packages
                .remove(&package)
                .map(drop)
                .ok_or_else(|| not_found(format_args!("package {package}"))),
            Command::CopyVersion {
                from_registry,
                package,
                version,
                to_registry,
                at,
            } => self.copy_version(&from_registry, &package, &version, &to_registry, at),
            Command::SetMetadata { target, entries } => {
                self.metadata_mut(&target)?.extend(entries);
                Ok(())
            }
            Command::DeleteMetadata { target, keys } => {
                let metadata = self.metadata_mut(&target)?;
                if keys.is_empty() {
                    metadata.clear();
                } else {
                    for key in &keys {
                        metadata.remove(key);
                    }
                }
                Ok(())
            }
            Command::LinkBlob {
                registry,
                package,
                digest,
                blob,
                at,
            } => {
                let state = self.registry_mut(&registry)?;
                let package_entry = state
                    .packages
                    .entry(package.clone())
                    .or_insert_with(|| new_package(&package, at));
                package_entry.blobs.insert(digest.clone());
                if !digest.starts_with("sha256:") {
                    self.digest_aliases.insert(digest, blob.sha256);
                }
                self.blobs.entry(blob.sha256).or_insert(blob);
                Ok(())
            }
            Command::UnlinkBlob {
                registry,
                package,
                digest,
            } => {
                let state = self.registry_mut(&registry)?;
                let package_entry = state
                    .packages
                    .get_mut(&package)
                    .filter(|p| p.blobs.contains(&digest))
                    .ok_or_else(|| not_found(format_args!("blob {digest} in {package}")))?;
                package_entry.blobs.remove(&digest);
                if package_entry.versions.is_empty() && package_entry.blobs.is_empty() {
                    state.packages.remove(&package);
                }
                Ok(())
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
                let state = self.registry_mut(&registry)?;
                let immutable = state.registry.immutable;
                // A remote registry records manifests as its upstream serves them; what they
                // reference arrives when it is first pulled.
                let checked = state.registry.kind != arca_protocol::RegistryKind::Remote;
                let existing = state.packages.get(&package);
                for reference in manifest.blobs.iter().filter(|_| checked) {
                    if !existing.is_some_and(|p| p.blobs.contains(reference)) {
                        return Err(CommandError::MissingReference(format!("blob {reference}")));
                    }
                }
                for reference in manifest.manifests.iter().filter(|_| checked) {
                    if !existing.is_some_and(|p| p.versions.contains_key(reference)) {
                        return Err(CommandError::MissingReference(format!(
                            "manifest {reference}"
                        )));
                    }
                }
                if let Some(tag) = &tag {
                    let current = existing.and_then(|p| p.tags.get(tag));
                    if immutable && current.is_some_and(|target| target != &digest) {
                        return Err(CommandError::Conflict(format!(
                            "registry {registry} is immutable: tag {tag} already points at {}",
                            current.map(String::as_str).unwrap_or_default()
                        )));
                    }
                }
                let file = arca_protocol::FileEntry {
                    sha256: blob.sha256,
                    size: blob.size,
                    created_at: at,
                };
                let package_entry = touch_package(&mut state.packages, &package, at);
                let version = touch_version(package_entry, &digest, at);
                version.files = BTreeMap::from([(MANIFEST_FILE.to_string(), file)]);
                version.manifest = Some(manifest);
                if let Some(tag) = tag {
                    package_entry.tags.insert(tag, digest);
                }
                self.blobs.entry(blob.sha256).or_insert(blob);
                Ok(())
            }
            Command::DeleteTag {
                registry,
                package,
                tag,
            } => {
                let state = self.registry_mut(&registry)?;
                if state.registry.immutable {
                    return Err(CommandError::Conflict(format!(
                        "registry {registry} is immutable: tags cannot be removed"
                    )));
                }
                state
                    .packages
                    .get_mut(&package)
                    .and_then(|p| p.tags.remove(&tag))
                    .map(drop)
                    .ok_or_else(|| not_found(format_args!("tag {package}:{tag}")))
            }
            command @ (Command::CreateToken { .. }
            | Command::RevokeToken { .. }
            | Command::RotateToken { .. }
            | Command::CreateUser { .. }
            | Command::UpdateUser { .. }
            | Command::DeleteUser { .. }
            | Command::GrantRole { .. }
            | Command::RevokeRole { .. }) => self.apply_identity(command),
            Command::SetReplication { registry, policy } => {
                let state = self
                    .registries
                    .get_mut(&registry)
                    .ok_or_else(|| not_found(format_args!("registry {registry}")))?;
                state.registry.replication = policy;
                Ok(())
            }
            Command::CreateJoinToken {
                secret_sha256,
                expires_at,
            } => {
                self.join_tokens.insert(secret_sha256, expires_at);
                Ok(())
            }
            Command::RecordReplicas { node_id, blobs } => {
                for blob in blobs {
                    if self.blobs.contains_key(&blob) {
                        self.replicas.entry(blob).or_default().insert(node_id);
                    }
                }
                Ok(())
            }
            Command::CacheDocument {
                registry,
                key,
                document,
            } => {
                if !self.registries.contains_key(&registry) {
                    return Err(not_found(format_args!("registry {registry}")));
                }
                self.cached
                    .entry(registry)
                    .or_default()
                    .insert(key, document);
                Ok(())
            }
            Command::ForgetNode { node_id } => {
                self.replicas.retain(|_, holders| {
                    holders.remove(&node_id);
                    !holders.is_empty()
                });
                Ok(())
            }
            Command::RecordAudit { events } => {
                self.record_audit(events, AUDIT_RETENTION);
                Ok(())
            }
            Command::SetCleanupPolicy { registry, policy } => {
                self.registry_mut(&registry)?.registry.cleanup = policy;
                Ok(())
            }
            Command::SetFirewallPolicy {
                registry, policy, ..
            } => {
                self.registry_mut(&registry)?.registry.firewall = policy;
                Ok(())
            }
            Command::ImportAdvisories { advisories, at } => {
                self.firewall.import(advisories, at);
                Ok(())
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

    /// Appends audit events, numbering them, and keeps only the newest `retention`.
    fn record_audit(&mut self, events: Vec<AuditEvent>, retention: usize) {
        for mut event in events {
            self.next_audit_id = self.next_audit_id.max(1);
            event.id = self.next_audit_id;
            self.next_audit_id += 1;
            self.audit.push_back(event);
        }
        while self.audit.len() > retention {
            self.audit.pop_front();
        }
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
    ) -> CommandOutcome {
        let source_registry = self
            .registries
            .get(from_registry)
            .ok_or_else(|| not_found(format_args!("registry {from_registry}")))?;
        let source_package = source_registry
            .packages
            .get(package)
            .filter(|p| p.versions.contains_key(version))
            .ok_or_else(|| {
                not_found(format_args!("version {from_registry}/{package}/{version}"))
            })?;
        let source_type = source_registry.registry.package_type;
        // The version itself, then every child manifest it references, transitively.
        let mut copies: Vec<Version> = Vec::new();
        let mut pending = vec![version.to_string()];
        while let Some(name) = pending.pop() {
            if copies.iter().any(|v| v.name == name) {
                continue;
            }
            let found = source_package
                .versions
                .get(&name)
                .ok_or_else(|| CommandError::MissingReference(format!("manifest {name}")))?;
            if let Some(manifest) = &found.manifest {
                pending.extend(manifest.manifests.iter().cloned());
            }
            copies.push(found.clone());
        }
        let tags: Vec<String> = source_package
            .tags
            .iter()
            .filter(|(_, target)| target.as_str() == version)
            .map(|(tag, _)| tag.clone())
            .collect();
        let destination = self.registry_mut(to_registry)?;
        if destination.registry.package_type != source_type {
            return Err(CommandError::Invalid(format!(
                "registry {to_registry} holds {} packages, not {source_type}",
                destination.registry.package_type
            )));
        }
        let existing = destination.packages.get(package);
        if destination.registry.immutable {
            let version_exists = existing.is_some_and(|p| p.versions.contains_key(version));
            let tag_moves = existing.is_some_and(|p| {
                tags.iter()
                    .any(|tag| p.tags.get(tag).is_some_and(|target| target != version))
            });
            if version_exists || tag_moves {
                return Err(CommandError::Conflict(format!(
                    "registry {to_registry} is immutable: {package}/{version} already exists"
                )));
            }
        }
        let package_entry = touch_package(&mut destination.packages, package, at);
        for copy in copies {
            if let Some(manifest) = &copy.manifest {
                package_entry.blobs.extend(manifest.blobs.iter().cloned());
            }
            package_entry.versions.insert(
                copy.name.clone(),
                Version {
                    created_at: at,
                    updated_at: at,
                    ..copy
                },
            );
        }
        for tag in tags {
            package_entry.tags.insert(tag, version.to_string());
        }
        Ok(())
    }

    /// An immutable registry keeps what it holds: nothing is deleted from it (deleting and pushing
    /// again would be an overwrite) and no tag that exists moves to another version. Writes of new
    /// files and versions, and identical re-tags, pass; overwrites are refused where they happen.
    fn refuse_changes_to_immutable(&self, command: &Command) -> CommandOutcome {
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
            _ => return Ok(()),
        };
        let Some(state) = self
            .registries
            .get(registry)
            .filter(|r| r.registry.immutable)
        else {
            return Ok(());
        };
        match change {
            None => Err(CommandError::Conflict(format!(
                "registry {registry} is immutable: nothing can be deleted from it"
            ))),
            Some((package, tags, version)) => {
                let current = state.packages.get(package).map(|p| &p.tags);
                match tags.iter().find(|tag| {
                    current
                        .and_then(|t| t.get(*tag))
                        .is_some_and(|target| target != version)
                }) {
                    Some(tag) => Err(CommandError::Conflict(format!(
                        "registry {registry} is immutable: tag {tag} of {package} cannot move"
                    ))),
                    None => Ok(()),
                }
            }
        }
    }

    fn registry_mut(&mut self, name: &str) -> Result<&mut RegistryState, CommandError> {
        self.registries
            .get_mut(name)
            .ok_or_else(|| not_found(format_args!("registry {name}")))
    }

    /// The metadata map a target names.
    pub fn metadata(&self, target: &MetadataTarget) -> Result<&Metadata, CommandError> {
        match target {
            MetadataTarget::Registry { registry } => self
                .registry(registry)
                .map(|r| &r.registry.metadata)
                .ok_or_else(|| not_found(format_args!("registry {registry}"))),
            MetadataTarget::Package { registry, package } => self
                .package(registry, package)
                .map(|p| &p.metadata)
                .ok_or_else(|| not_found(format_args!("package {registry}/{package}"))),
            MetadataTarget::Version {
                registry,
                package,
                version,
            } => self
                .version(registry, package, version)
                .map(|v| &v.metadata)
                .ok_or_else(|| not_found(format_args!("version {registry}/{package}/{version}"))),
        }
    }

    fn metadata_mut(&mut self, target: &MetadataTarget) -> Result<&mut Metadata, CommandError> {
        match target {
            MetadataTarget::Registry { registry } => {
                Ok(&mut self.registry_mut(registry)?.registry.metadata)
            }
            MetadataTarget::Package { registry, package } => self
                .registry_mut(registry)?
                .packages
                .get_mut(package)
                .map(|p| &mut p.metadata)
                .ok_or_else(|| not_found(format_args!("package {registry}/{package}"))),
            MetadataTarget::Version {
                registry,
                package,
                version,
            } => self
                .registry_mut(registry)?
                .packages
                .get_mut(package)
                .and_then(|p| p.versions.get_mut(version))
                .map(|v| &mut v.metadata)
                .ok_or_else(|| not_found(format_args!("version {registry}/{package}/{version}"))),
        }
    }
}

/// The file name under which an OCI version keeps its manifest.
pub const MANIFEST_FILE: &str = "manifest";

/// The package `name`, created if new, marked as changed at `at`.
fn touch_package<'a>(
    packages: &'a mut BTreeMap<String, Package>,
    name: &str,
    at: u64,
) -> &'a mut Package {
    let package = packages
        .entry(name.to_string())
        .or_insert_with(|| new_package(name, at));
    package.updated_at = at;
    package
}

/// The version `name` of `package`, created if new, marked as changed at `at`.
fn touch_version<'a>(package: &'a mut Package, name: &str, at: u64) -> &'a mut Version {
    let version = package
        .versions
        .entry(name.to_string())
        .or_insert_with(|| new_version(name, at));
    version.updated_at = at;
    version
}

fn new_package(name: &str, at: u64) -> Package {
    Package {
        name: name.to_string(),
        created_at: at,
        updated_at: at,
        versions: BTreeMap::new(),
        metadata: Metadata::new(),
        tags: BTreeMap::new(),
        blobs: Default::default(),
    }
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_protocol::{ChunkId, ChunkRef, PackageType};

    fn registry(name: &str, immutable: bool) -> Command {
        Command::CreateRegistry {
            registry: Registry {
                name: name.into(),
                package_type: PackageType::Generic,
                description: String::new(),
                immutable,
                allow_anonymous_read: false,
                allow_redeploy: false,
                created_at: 1,
                metadata: Metadata::new(),
                replication: Default::default(),
                kind: Default::default(),
                upstream: None,
                members: Vec::new(),
                publish_to: None,
                audit_downloads: false,
                cleanup: Default::default(),
                firewall: Default::default(),
            },
        }
    }

    fn blob(byte: u8) -> BlobRef {
        BlobRef {
            sha256: Sha256([byte; 32]),
            size: 3,
            chunks: vec![ChunkRef {
                id: ChunkId([byte; 32]),
                size: 3,
            }],
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

    #[test]
    fn immutable_registry_refuses_overwrite_but_mutable_allows_it() {
        let mut state = MetaState::default();
        state.apply(registry("frozen", true)).expect("create");
        state.apply(registry("open", false)).expect("create");
        state.apply(put("frozen", "1.0", 1)).expect("first put");
        let before = state.clone();
        assert!(matches!(
            state.apply(put("frozen", "1.0", 2)),
            Err(CommandError::Conflict(_))
        ));
        assert_eq!(state, before, "a refused command changes nothing");
        assert!(
            state.apply(put("frozen", "1.0", 1)).is_err(),
            "even identical bytes are an overwrite"
        );
        state.apply(put("open", "1.0", 1)).expect("put");
        state.apply(put("open", "1.0", 2)).expect("overwrite");
        let file = &state.version("open", "tool", "1.0").expect("version").files["tool.bin"];
        assert_eq!(file.sha256, Sha256([2; 32]));
    }

    #[test]
    fn immutable_registries_refuse_deletes_and_tag_moves() {
        let mut state = MetaState::default();
        state.apply(registry("frozen", true)).expect("create");
        state.apply(put("frozen", "1.0", 1)).expect("put");
        state.apply(put("frozen", "2.0", 2)).expect("put");
        state
            .apply(Command::SetTag {
                registry: "frozen".into(),
                package: "tool".into(),
                tag: "stable".into(),
                version: "1.0".into(),
            })
            .expect("a new tag");
        let before = state.clone();
        let refused = [
            Command::DeleteFile {
                registry: "frozen".into(),
                package: "tool".into(),
                version: "1.0".into(),
                filename: "tool.bin".into(),
                at: 11,
            },
            Command::DeleteVersion {
                registry: "frozen".into(),
                package: "tool".into(),
                version: "1.0".into(),
            },
            Command::DeletePackage {
                registry: "frozen".into(),
                package: "tool".into(),
            },
            Command::UnlinkBlob {
                registry: "frozen".into(),
                package: "tool".into(),
                digest: "sha256:00".into(),
            },
            Command::SetTag {
                registry: "frozen".into(),
                package: "tool".into(),
                tag: "stable".into(),
                version: "2.0".into(),
            },
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
        assert_eq!(state, before);
        state
            .apply(Command::SetTag {
                registry: "frozen".into(),
                package: "tool".into(),
                tag: "stable".into(),
                version: "1.0".into(),
            })
            .expect("re-tagging the same version is no move");
    }

    #[test]
    fn deleting_the_last_file_removes_version_and_package() {
        let mut state = MetaState::default();
        state.apply(registry("r", false)).expect("create");
        state.apply(put("r", "1.0", 1)).expect("put");
        state
            .apply(Command::DeleteFile {
                registry: "r".into(),
                package: "tool".into(),
                version: "1.0".into(),
                filename: "tool.bin".into(),
                at: 11,
            })
            .expect("delete");
        assert!(state.package("r", "tool").is_none());
    }

    #[test]
    fn copy_shares_blobs_and_checks_package_type() {
        let mut state = MetaState::default();
        state.apply(registry("a", false)).expect("create");
        state.apply(registry("b", false)).expect("create");
        state.apply(put("a", "1.0", 7)).expect("put");
        state
            .apply(Command::CopyVersion {
                from_registry: "a".into(),
                package: "tool".into(),
                version: "1.0".into(),
                to_registry: "b".into(),
                at: 20,
            })
            .expect("copy");
        let copied = state.version("b", "tool", "1.0").expect("copied");
        assert_eq!(copied.files["tool.bin"].sha256, Sha256([7; 32]));
        assert_eq!(state.blobs.len(), 1, "no bytes or blob records duplicated");
        assert!(matches!(
            state.apply(Command::CopyVersion {
                from_registry: "a".into(),
                package: "tool".into(),
                version: "9.9".into(),
                to_registry: "b".into(),
                at: 20,
            }),
            Err(CommandError::NotFound(_))
        ));
    }

    #[test]
    fn metadata_set_and_delete_on_every_level() {
        let mut state = MetaState::default();
        state.apply(registry("r", false)).expect("create");
        state.apply(put("r", "1.0", 1)).expect("put");
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
            state
                .apply(Command::SetMetadata {
                    target: target.clone(),
                    entries,
                })
                .expect("set");
            state
                .apply(Command::DeleteMetadata {
                    target: target.clone(),
                    keys: vec!["tier".into()],
                })
                .expect("delete");
            let metadata = state.metadata(&target).expect("target exists");
            assert_eq!(metadata.len(), 1);
            assert_eq!(metadata["owner"], "platform");
        }
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
    fn audit_events_are_numbered_in_order_and_the_oldest_dropped_beyond_retention() {
        let mut state = MetaState::default();
        state
            .apply(Command::RecordAudit {
                events: vec![audit_event("/a"), audit_event("/b")],
            })
            .expect("recorded");
        let ids: Vec<u64> = state.audit.iter().map(|e| e.id).collect();
        assert_eq!(
            ids,
            vec![1, 2],
            "ids count from 1, whatever the proposer sent"
        );
        assert_eq!(state.audit[1].target, "/b");
        assert_eq!(state.next_audit_id, 3);

        // The same commands applied to another state give the same trail (deterministic).
        let mut replica = MetaState::default();
        replica
            .apply(Command::RecordAudit {
                events: vec![audit_event("/a"), audit_event("/b")],
            })
            .expect("recorded");
        assert_eq!(replica, state);

        // Retention keeps the newest; ids are never reused after the oldest are dropped.
        state.record_audit((0..5).map(|i| audit_event(&format!("/c{i}"))).collect(), 4);
        let ids: Vec<u64> = state.audit.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![4, 5, 6, 7]);
        assert_eq!(state.audit.back().map(|e| e.target.as_str()), Some("/c4"));
        assert_eq!(state.next_audit_id, 8);

        // The real retention, through apply.
        let mut full = MetaState::default();
        for batch in 0..11 {
            let events = (0..10_000)
                .map(|i| audit_event(&format!("/{batch}/{i}")))
                .collect();
            full.apply(Command::RecordAudit { events })
                .expect("recorded");
        }
        assert_eq!(full.audit.len(), AUDIT_RETENTION);
        assert_eq!(full.audit.front().map(|e| e.id), Some(10_001));
        assert_eq!(full.audit.back().map(|e| e.id), Some(110_000));
        assert_eq!(full.next_audit_id, 110_001);
    }
}
