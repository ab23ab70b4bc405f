//! Raft commands: the only way metadata changes. Each is a log entry that every node applies in the same
//! order with the same result; anything non-deterministic (time, generated ids) is decided by the proposer
//! and carried inside the command.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cluster::ReplicationPolicy;
use crate::digest::Sha256;
use crate::model::{
    AuditEvent, BlobRef, CachedDocument, CleanupPolicy, ManifestInfo, Registry, RegistryChanges,
    RegistrySettings, SigningKey, Token, UsageTally, Webhook, WebhookDelivery,
};

/// Where a metadata operation applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataTarget {
    /// A registry.
    Registry {
        /// Registry name.
        registry: String,
    },
    /// A package.
    Package {
        /// Registry name.
        registry: String,
        /// Package name.
        package: String,
    },
    /// One version of a package.
    Version {
        /// Registry name.
        registry: String,
        /// Package name.
        package: String,
        /// Version.
        version: String,
    },
}

/// A metadata change, as replicated through Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create a registry; fails if the name is taken.
    CreateRegistry {
        /// The new registry.
        registry: Registry,
    },
    /// Delete a registry with all its packages.
    DeleteRegistry {
        /// Registry name.
        name: String,
    },
    /// Put one file into a version, creating the package and version as needed, merge format
    /// attributes into the version and point tags at it, all at once. Immutable registries refuse to
    /// replace an existing file; `overwrite` may refuse more.
    PutFile {
        /// Registry name.
        registry: String,
        /// Package name.
        package: String,
        /// Version.
        version: String,
        /// File name within the version.
        filename: String,
        /// The stored bytes.
        blob: BlobRef,
        /// Format attributes to set on the version (npm's manifest, PyPI's requires-python, ...).
        attributes: BTreeMap<String, String>,
        /// Tags to point at the version (npm dist-tags).
        tags: Vec<String>,
        /// What may already exist.
        overwrite: Overwrite,
        /// Commit time, unix milliseconds.
        at: u64,
    },
    /// Point a tag at an existing version (npm dist-tags).
    SetTag {
        /// Registry name.
        registry: String,
        /// Package name.
        package: String,
        /// The tag.
        tag: String,
        /// The version it points at.
        version: String,
    },
    /// Set and remove format attributes of a version (npm deprecation, PyPI yanking).
    SetAttributes {
        /// Registry name.
        registry: String,
        /// Package name.
        package: String,
        /// Version.
        version: String,
        /// Attributes to set.
        set: BTreeMap<String, String>,
        /// Attributes to remove.
        remove: Vec<String>,
        /// Change time, unix milliseconds.
        at: u64,
    },
    /// Remove one file from a version; an emptied version and package disappear with it.
    DeleteFile {
        /// Registry name.
        registry: String,
        /// Package name.
        package: String,
        /// Version.
        version: String,
        /// File name.
        filename: String,
        /// Change time, unix milliseconds.
        at: u64,
    },
    /// Delete a version with all its files.
    DeleteVersion {
        /// Registry name.
        registry: String,
        /// Package name.
        package: String,
        /// Version.
        version: String,
    },
    /// Delete a version because cleanup rule `rule` selected it: like [`Command::DeleteVersion`], and the
    /// one deletion an immutable registry accepts (its retention is policy, not an ad-hoc change).
    CleanupVersion {
        /// Registry name.
        registry: String,
        /// Package name.
        package: String,
        /// Version.
        version: String,
        /// The cleanup rule that selected it.
        rule: String,
    },
    /// Delete a package with all its versions.
    DeletePackage {
        /// Registry name.
        registry: String,
        /// Package name.
        package: String,
    },
    /// Copy a version's files (references to the same blobs) into another registry.
    CopyVersion {
        /// Source registry.
        from_registry: String,
        /// Package name.
        package: String,
        /// Version.
        version: String,
        /// Destination registry.
        to_registry: String,
        /// Copy time, unix milliseconds.
        at: u64,
    },
    /// Set metadata keys.
    SetMetadata {
        /// What to change.
        target: MetadataTarget,
        /// Keys and values to set.
        entries: BTreeMap<String, String>,
    },
    /// Remove metadata keys; keys that are absent are ignored.
    DeleteMetadata {
        /// What to change.
        target: MetadataTarget,
        /// Keys to remove.
        keys: Vec<String>,
    },
    /// Make a stored blob available in a package under a digest (an OCI layer upload or mount).
    LinkBlob {
        /// Registry name.
        registry: String,
        /// Package (repository) name.
        package: String,
        /// The digest clients use (`sha256:...` or `sha512:...`).
        digest: String,
        /// The stored bytes.
        blob: BlobRef,
        /// Time, unix milliseconds.
        at: u64,
    },
    /// Remove a blob from a package.
    UnlinkBlob {
        /// Registry name.
        registry: String,
        /// Package (repository) name.
        package: String,
        /// The blob's digest.
        digest: String,
    },
    /// Store an OCI manifest as the version named by its digest, optionally pointing a tag at it.
    /// Every blob and child manifest it references must already be in the package; an immutable
    /// registry refuses to move an existing tag.
    PutManifest {
        /// Registry name.
        registry: String,
        /// Package (repository) name.
        package: String,
        /// The manifest's digest: the version name.
        digest: String,
        /// What the manifest references and says.
        manifest: ManifestInfo,
        /// The manifest's bytes.
        blob: BlobRef,
        /// A tag to point at it.
        tag: Option<String>,
        /// Time, unix milliseconds.
        at: u64,
    },
    /// Remove a tag.
    DeleteTag {
        /// Registry name.
        registry: String,
        /// Package (repository) name.
        package: String,
        /// The tag.
        tag: String,
    },
    /// Create an API token.
    CreateToken {
        /// The token (its secret hashed).
        token: Token,
    },
    /// Revoke an API token.
    RevokeToken {
        /// The token's id.
        id: String,
    },
    /// Give a token a new secret; the old one stops working.
    RotateToken {
        /// The token's id.
        id: String,
        /// sha256 of the new secret.
        secret_sha256: Sha256,
    },
    /// Create a user or service account; fails if the name is taken.
    CreateUser {
        /// The new user (its password already hashed by the proposer).
        user: crate::identity::User,
    },
    /// Change a user's password hash or disabled flag; `None` leaves a field as it is.
    UpdateUser {
        /// User name.
        name: String,
        /// The new argon2id PHC string.
        password_hash: Option<String>,
        /// Disable or enable.
        disabled: Option<bool>,
        /// Change time, unix milliseconds.
        at: u64,
    },
    /// Delete a user together with the tokens it owns.
    DeleteUser {
        /// User name.
        name: String,
    },
    /// Grant a user a role (globally or on one registry).
    GrantRole {
        /// User name.
        user: String,
        /// The grant.
        grant: crate::identity::Grant,
        /// Change time, unix milliseconds.
        at: u64,
    },
    /// Take a grant away from a user.
    RevokeRole {
        /// User name.
        user: String,
        /// The grant.
        grant: crate::identity::Grant,
        /// Change time, unix milliseconds.
        at: u64,
    },
    /// Replace a registry's replication policy.
    SetReplication {
        /// Registry name.
        registry: String,
        /// The new policy.
        policy: ReplicationPolicy,
    },
    /// Allow nodes presenting the secret that hashes to `secret_sha256` to join until `expires_at`.
    CreateJoinToken {
        /// sha256 of the token's secret.
        secret_sha256: Sha256,
        /// Unix milliseconds after which the token is refused.
        expires_at: u64,
    },
    /// A node holds every chunk of these blobs.
    RecordReplicas {
        /// The node.
        node_id: u64,
        /// The blobs, by sha256.
        blobs: Vec<Sha256>,
    },
    /// A remote registry fetched (or fetched again) a metadata document.
    CacheDocument {
        /// Registry name.
        registry: String,
        /// What the document is, in the front-end's own terms (`packument/lodash`).
        key: String,
        /// The document.
        document: CachedDocument,
    },
    /// A node left the cluster: forget the replicas it held.
    ForgetNode {
        /// The node.
        node_id: u64,
    },
    /// Append events to the audit trail. The state machine numbers them and drops the oldest beyond
    /// its retention; it never refuses them.
    RecordAudit {
        /// The events, in the order they happened on the proposing node (their ids are ignored).
        events: Vec<AuditEvent>,
    },
    /// Replace a registry's cleanup policy.
    SetCleanupPolicy {
        /// Registry name.
        registry: String,
        /// The new policy.
        policy: CleanupPolicy,
    },
    /// Replace a registry's firewall policy and re-evaluate its versions.
    SetFirewallPolicy {
        /// Registry name.
        registry: String,
        /// The new policy.
        policy: crate::firewall::FirewallPolicy,
        /// Change time, unix milliseconds (the re-evaluations' time).
        at: u64,
    },
    /// Add advisories to the vulnerability database (replacing older copies of the same ids) and
    /// re-evaluate the versions of the packages they name.
    ImportAdvisories {
        /// The advisories, normalised.
        advisories: Vec<crate::firewall::Advisory>,
        /// Import time, unix milliseconds.
        at: u64,
    },
    /// Quarantine a version by hand: it cannot be downloaded, copied or promoted.
    QuarantineVersion {
        /// Registry name.
        registry: String,
        /// Package name.
        package: String,
        /// Version.
        version: String,
        /// Who, when and why.
        record: crate::firewall::QuarantineRecord,
    },
    /// Release a version: lifts a quarantine by hand and overrides a BLOCKED verdict until an
    /// evaluation gives other reasons.
    ReleaseVersion {
        /// Registry name.
        registry: String,
        /// Package name.
        package: String,
        /// Version.
        version: String,
        /// Who, when and why.
        record: crate::firewall::QuarantineRecord,
    },
    /// Several commands applied in order, all or nothing: when one is refused, none takes effect.
    /// A change that takes more than one command (a file and its metadata document, an OCI index
    /// with its children, a change and its audit event) travels as one batch, so no failure in
    /// between leaves half of it.
    Batch {
        /// The commands.
        commands: Vec<Command>,
    },
    /// Sets the answer of an audit event that was committed with its change before the request was
    /// answered (when the answer differs from the one recorded then): the newest event at `at` of
    /// `actor_id` on `target`.
    SettleAudit {
        /// The event's time.
        at: u64,
        /// The event's caller.
        actor_id: Option<String>,
        /// The event's request path.
        target: String,
        /// The HTTP status the request was answered with.
        result: u16,
        /// Why it ended as it did.
        detail: Option<String>,
    },
    /// Sets how much of the audit trail is kept, and drops what falls outside it now (the age
    /// counted back from `at`).
    SetAuditRetention {
        /// What is kept.
        retention: crate::model::AuditRetention,
        /// Change time, unix milliseconds.
        at: u64,
    },
    /// A command that makes chunks written on one node part of the state (a pushed file, an OCI
    /// blob or manifest, a cached document), applied only while that node's garbage collection
    /// has not begun a step since the chunks were seen held there: otherwise the step may have
    /// removed them, and the command is refused with [`CommandError::Retry`].
    Fenced {
        /// Where the chunks were written, and the collection epoch seen there.
        fence: ChunkFence,
        /// The command.
        command: Box<Command>,
    },
    /// A node's garbage collection begins a step that may remove chunks: every [`Command::Fenced`]
    /// that saw the node's earlier epoch is refused from here on.
    AdvanceGcEpoch {
        /// The collecting node.
        node_id: u64,
    },
    /// Replace a registry's settings (those kept beside its record).
    SetRegistrySettings {
        /// Registry name.
        registry: String,
        /// The settings.
        settings: RegistrySettings,
    },
    /// Replace the OpenPGP key a Debian or RPM registry signs its metadata with (made when the
    /// registry is created, and again on each rotation).
    SetSigningKey {
        /// Registry name.
        registry: String,
        /// The key, its secret half sealed.
        key: SigningKey,
    },
    /// Create a webhook; fails if the name is taken. Its cursor starts at the newest audit event,
    /// so it is given what happens from then on.
    CreateWebhook {
        /// The webhook.
        webhook: Webhook,
    },
    /// Delete a webhook and its delivery log.
    DeleteWebhook {
        /// Its name.
        name: String,
    },
    /// Enable a webhook (forgetting its failures) or disable it.
    SetWebhookEnabled {
        /// Its name.
        name: String,
        /// Enabled or not.
        enabled: bool,
        /// Why it is disabled, when it is.
        reason: Option<String>,
    },
    /// The outcome of deliveries to a webhook: attempts to log, the cursor to advance to, the
    /// failure count. Ignored when the webhook is gone or is another one of the same name.
    RecordWebhookDeliveries {
        /// Its name.
        name: String,
        /// Its id.
        id: u64,
        /// The last audit event id delivered or passed over (the cursor only moves forward).
        cursor: u64,
        /// The attempts, oldest first.
        deliveries: Vec<WebhookDelivery>,
        /// Attempts that have now failed in a row (`None`: unchanged, for test deliveries).
        failures: Option<u32>,
        /// Disable it, for this reason.
        disable: Option<String>,
    },
    /// Downloads a node counted since its last flush, added to the usage figures. A batch whose
    /// number is not above the last one applied from the same node is ignored, so a flush retried
    /// after an unclear outcome is not counted twice.
    RecordUsage {
        /// The node that counted them.
        node_id: u64,
        /// The flush's number, rising with every flush of the node (across restarts too).
        batch: u64,
        /// The node's site.
        site: String,
        /// The figures.
        tallies: Vec<UsageTally>,
        /// How many days of daily figures are kept: older days are dropped as newer ones arrive.
        keep_days: u32,
    },
    /// Change a registry's description, flags, upstream or members.
    UpdateRegistry {
        /// Registry name.
        name: String,
        /// What changes.
        changes: RegistryChanges,
    },
    /// [`Command::SettleAudit`] of the one event committed with a change: the newest event at `at`
    /// of `actor_id` on `target` whose result is still `recorded` (the answer the change usually
    /// gets), so that a refused request of the same caller on the same path in the same
    /// millisecond is never taken for it.
    SettleAuditEvent {
        /// The event's time.
        at: u64,
        /// The event's caller.
        actor_id: Option<String>,
        /// The event's request path.
        target: String,
        /// The result it was committed with.
        recorded: u16,
        /// The HTTP status the request was answered with.
        result: u16,
        /// Why it ended as it did.
        detail: Option<String>,
    },
}

/// What an applied command changed among packages: one package of a registry, or everything a
/// registry holds (or may render: its settings, members or firewall policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed<'a> {
    /// One package.
    Package {
        /// Its registry.
        registry: &'a str,
        /// Its name.
        package: &'a str,
        /// The one version changed (its files, attributes, metadata, firewall record, whether it
        /// exists, a tag moved onto it), when the command changed no other (the version a moved
        /// tag left is not counted: what shows tags reads them again); `None`: any of the
        /// package's versions and tags may have changed.
        version: Option<&'a str>,
    },
    /// A whole registry.
    Registry(&'a str),
    /// Every registry (firewall advisories, which any registry's verdicts read).
    Everything,
}

/// The garbage-collection epoch of the node that wrote a command's new chunks, read while the
/// chunks were held there against collection (see [`Command::Fenced`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkFence {
    /// The node that wrote the chunks.
    pub node_id: u64,
    /// Its collection epoch then.
    pub gc_epoch: u64,
}

impl Command {
    /// What applying this command changes among packages (nothing for commands about users,
    /// tokens, replicas and the audit trail).
    pub fn changed(&self) -> Vec<Changed<'_>> {
        fn whole<'a>(registry: &'a str, package: &'a str) -> Changed<'a> {
            Changed::Package {
                registry,
                package,
                version: None,
            }
        }
        fn one<'a>(registry: &'a str, package: &'a str, version: &'a str) -> Changed<'a> {
            Changed::Package {
                registry,
                package,
                version: Some(version),
            }
        }
        match self {
            Command::PutFile {
                registry,
                package,
                version,
                ..
            }
            | Command::SetTag {
                registry,
                package,
                version,
                ..
            }
            | Command::SetAttributes {
                registry,
                package,
                version,
                ..
            }
            | Command::DeleteFile {
                registry,
                package,
                version,
                ..
            }
            | Command::DeleteVersion {
                registry,
                package,
                version,
            }
            | Command::CleanupVersion {
                registry,
                package,
                version,
                ..
            }
            | Command::QuarantineVersion {
                registry,
                package,
                version,
                ..
            }
            | Command::ReleaseVersion {
                registry,
                package,
                version,
                ..
            }
            | Command::PutManifest {
                registry,
                package,
                digest: version,
                ..
            } => vec![one(registry, package, version)],
            Command::DeletePackage { registry, package }
            | Command::LinkBlob {
                registry, package, ..
            }
            | Command::UnlinkBlob {
                registry, package, ..
            }
            | Command::DeleteTag {
                registry, package, ..
            } => vec![whole(registry, package)],
            Command::CopyVersion {
                package,
                version,
                to_registry,
                ..
            } => vec![one(to_registry, package, version)],
            Command::SetMetadata { target, .. } | Command::DeleteMetadata { target, .. } => {
                vec![match target {
                    MetadataTarget::Registry { registry } => Changed::Registry(registry),
                    MetadataTarget::Package { registry, package } => whole(registry, package),
                    MetadataTarget::Version {
                        registry,
                        package,
                        version,
                    } => one(registry, package, version),
                }]
            }
            Command::CreateRegistry { registry } => vec![Changed::Registry(&registry.name)],
            Command::DeleteRegistry { name: registry }
            | Command::SetReplication { registry, .. }
            | Command::CacheDocument { registry, .. }
            | Command::SetCleanupPolicy { registry, .. }
            | Command::SetFirewallPolicy { registry, .. }
            | Command::SetRegistrySettings { registry, .. }
            | Command::UpdateRegistry { name: registry, .. }
            | Command::SetSigningKey { registry, .. } => vec![Changed::Registry(registry)],
            Command::ImportAdvisories { .. } => vec![Changed::Everything],
            Command::Batch { commands } => commands.iter().flat_map(Command::changed).collect(),
            Command::Fenced { command, .. } => command.changed(),
            Command::CreateToken { .. }
            | Command::RevokeToken { .. }
            | Command::RotateToken { .. }
            | Command::CreateUser { .. }
            | Command::UpdateUser { .. }
            | Command::DeleteUser { .. }
            | Command::GrantRole { .. }
            | Command::RevokeRole { .. }
            | Command::CreateJoinToken { .. }
            | Command::RecordReplicas { .. }
            | Command::ForgetNode { .. }
            | Command::RecordAudit { .. }
            | Command::SettleAudit { .. }
            | Command::SettleAuditEvent { .. }
            | Command::SetAuditRetention { .. }
            | Command::AdvanceGcEpoch { .. }
            | Command::CreateWebhook { .. }
            | Command::DeleteWebhook { .. }
            | Command::SetWebhookEnabled { .. }
            | Command::RecordWebhookDeliveries { .. }
            | Command::RecordUsage { .. } => Vec::new(),
        }
    }

    /// The blobs this command carries (and so makes part of the state when applied), inline ones
    /// included: a batch's and a fenced command's, too.
    pub fn blobs(&self) -> Vec<&BlobRef> {
        self.blobs_by_registry()
            .into_iter()
            .map(|(_, blob)| blob)
            .collect()
    }

    /// [`Command::blobs`], each with the registry it goes into.
    pub fn blobs_by_registry(&self) -> Vec<(&str, &BlobRef)> {
        match self {
            Command::PutFile { registry, blob, .. }
            | Command::LinkBlob { registry, blob, .. }
            | Command::PutManifest { registry, blob, .. } => vec![(registry, blob)],
            Command::CacheDocument {
                registry, document, ..
            } => vec![(registry, &document.blob)],
            Command::Batch { commands } => commands
                .iter()
                .flat_map(Command::blobs_by_registry)
                .collect(),
            Command::Fenced { command, .. } => command.blobs_by_registry(),
            _ => Vec::new(),
        }
    }
}

/// What a [`Command::PutFile`] may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Overwrite {
    /// Replace an existing file (unless the registry is immutable).
    Allow,
    /// Refuse when the file already exists (PyPI, Maven releases).
    RefuseFile,
    /// Refuse when the version already exists (npm).
    RefuseVersion,
}

/// Why a command was refused. A refused command changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CommandError {
    /// Something the command names does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Something the command would create already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The command conflicts with the current state (for example an immutable registry).
    #[error("{0}")]
    Conflict(String),
    /// The command is not valid as given.
    #[error("{0}")]
    Invalid(String),
    /// Something the command refers to (a blob, a child manifest) is not there.
    #[error("{0} is not in this repository")]
    MissingReference(String),
    /// The command raced with the cluster's own upkeep (garbage collection) and changed nothing;
    /// the same request sent again succeeds.
    #[error("{0}")]
    Retry(String),
}

/// What applying a command produced.
pub type CommandOutcome = Result<(), CommandError>;
