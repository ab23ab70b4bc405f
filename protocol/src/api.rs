//! JSON bodies of the management API under `/api/v1`, shared by the server and the typed client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cluster::{NodeRole, ReplicationPolicy};
use crate::digest::Sha256;
use crate::model::{AuditEvent, Metadata, PackageType, RegistryKind, Role, Upstream};

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A machine-readable code and a human message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code, e.g. `NOT_FOUND`, `UNAUTHORIZED`, `CONFLICT`, `INVALID`.
    pub code: String,
    /// What went wrong, for humans.
    pub message: String,
}

/// `POST /api/v1/registries`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRegistryRequest {
    /// Registry name.
    pub name: String,
    /// Package type.
    pub package_type: PackageType,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Refuse overwrites of existing versions.
    #[serde(default)]
    pub immutable: bool,
    /// Allow reads without a token.
    #[serde(default)]
    pub allow_anonymous_read: bool,
    /// Allow released versions to be deployed again (Maven).
    #[serde(default)]
    pub allow_redeploy: bool,
    /// Which sites hold full copies, eagerly or on demand (default: every site, eagerly).
    #[serde(default)]
    pub replication: ReplicationPolicy,
    /// `local` (default), `remote` (needs `upstream`) or `virtual` (needs `members`).
    #[serde(default)]
    pub kind: RegistryKind,
    /// A remote registry's upstream.
    #[serde(default)]
    pub upstream: Option<Upstream>,
    /// A virtual registry's members, in resolution order.
    #[serde(default)]
    pub members: Vec<String>,
    /// The local member a virtual registry publishes to.
    #[serde(default)]
    pub publish_to: Option<String>,
    /// Record every download in the audit trail, not only changes.
    #[serde(default)]
    pub audit_downloads: bool,
    /// PEM CA certificates a remote registry's upstream is trusted by (a private CA), besides the
    /// node's certificate store and `upstream_ca_file`.
    #[serde(default)]
    pub upstream_ca_pem: Option<String>,
    /// Nodes that must hold a push's bytes before it is acknowledged (default 1; a cluster of
    /// three sites is best served with 2).
    #[serde(default)]
    pub min_copies: Option<u32>,
}

/// A registry as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryInfo {
    /// Registry name.
    pub name: String,
    /// Package type.
    pub package_type: PackageType,
    /// Description.
    pub description: String,
    /// Immutable flag.
    pub immutable: bool,
    /// Anonymous read flag.
    pub allow_anonymous_read: bool,
    /// Redeploy flag.
    #[serde(default)]
    pub allow_redeploy: bool,
    /// Creation time, unix milliseconds.
    pub created_at: u64,
    /// Number of packages.
    pub package_count: u64,
    /// Metadata.
    pub metadata: Metadata,
    /// Replication policy.
    #[serde(default)]
    pub replication: ReplicationPolicy,
    /// Local, remote or virtual.
    #[serde(default)]
    pub kind: RegistryKind,
    /// A remote registry's upstream (without its password).
    #[serde(default)]
    pub upstream: Option<UpstreamInfo>,
    /// A virtual registry's members.
    #[serde(default)]
    pub members: Vec<String>,
    /// The local member a virtual registry publishes to.
    #[serde(default)]
    pub publish_to: Option<String>,
    /// Whether downloads are recorded in the audit trail.
    #[serde(default)]
    pub audit_downloads: bool,
    /// Nodes that hold a push's bytes before it is acknowledged.
    #[serde(default = "one")]
    pub min_copies: u32,
}

/// The answer of `POST /api/v1/cluster/snapshot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The last log entry the snapshot holds.
    pub last_log_index: u64,
}

/// A remote registry's upstream as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamInfo {
    /// Base URL.
    pub url: String,
    /// User for upstream authentication, if any.
    pub username: Option<String>,
    /// Whether a password is set (it is never shown).
    pub has_password: bool,
    /// Seconds cached metadata is fresh.
    pub metadata_ttl_seconds: u64,
    /// CA certificates the upstream is trusted by besides the node's store (PEM), if any.
    #[serde(default)]
    pub ca_pem: Option<String>,
}

fn one() -> u32 {
    1
}

/// `PUT /api/v1/registries/{registry}/settings`: the settings kept beside a registry, replaced as
/// a whole (a field left out is cleared).
pub type SetRegistrySettingsRequest = crate::model::RegistrySettings;

/// `GET /api/v1/registries/{registry}/signing-key` (and the answer of `POST .../rotate`): the
/// public half of the key a Debian or RPM registry signs its metadata with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyInfo {
    /// The key's fingerprint, upper-case hex.
    pub fingerprint: String,
    /// When it was made, unix milliseconds.
    pub created_at: u64,
    /// The public key, ASCII-armoured.
    pub public_key: String,
}

/// `PUT /api/v1/registries/{registry}/replication`: the registry's new replication policy.
pub type SetReplicationRequest = ReplicationPolicy;

/// Paging parameters (`?page=&page_size=`); pages count from 1.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PageQuery {
    /// Page number, from 1.
    #[serde(default = "default_page")]
    pub page: u64,
    /// Items per page (1-1000).
    #[serde(default = "default_page_size")]
    pub page_size: u64,
}

fn default_page() -> u64 {
    1
}

fn default_page_size() -> u64 {
    50
}

impl Default for PageQuery {
    fn default() -> Self {
        PageQuery {
            page: default_page(),
            page_size: default_page_size(),
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// This page's number, from 1.
    pub page: u64,
    /// Items per page.
    pub page_size: u64,
    /// Items in all pages.
    pub total: u64,
    /// Where the next page starts: pass it as `cursor` to get it (a page by cursor costs the same
    /// however deep it is). Absent on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// A package in a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageSummary {
    /// Registry name.
    pub registry: String,
    /// Package name.
    pub name: String,
    /// The most recently updated version.
    pub latest_version: Option<String>,
    /// Number of versions.
    pub version_count: u64,
    /// Sum of the sizes of all versions (shared content counted in each version).
    pub size: u64,
    /// Last change, unix milliseconds.
    pub updated_at: u64,
    /// The package's key:value metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// For what a remote registry cached: the upstream URL the latest version came from.
    #[serde(default)]
    pub origin: Option<String>,
    /// For what a remote registry cached: the last time any version was served, unix milliseconds
    /// (recorded at most hourly).
    #[serde(default)]
    pub last_access: Option<u64>,
}

/// A package with its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageInfo {
    /// Registry name.
    pub registry: String,
    /// Package name.
    pub name: String,
    /// Creation time, unix milliseconds.
    pub created_at: u64,
    /// Last change, unix milliseconds.
    pub updated_at: u64,
    /// Versions, oldest first.
    pub versions: Vec<VersionInfo>,
    /// Metadata.
    pub metadata: Metadata,
}

/// A version with its files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Registry name.
    pub registry: String,
    /// Package name.
    pub package: String,
    /// Version.
    pub version: String,
    /// Creation time, unix milliseconds.
    pub created_at: u64,
    /// Last change, unix milliseconds.
    pub updated_at: u64,
    /// Files.
    pub files: Vec<FileInfo>,
    /// Metadata.
    pub metadata: Metadata,
    /// Tags pointing at this version (OCI), sorted.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Size of this version: its files and, for OCI, every distinct blob its manifest references.
    #[serde(default)]
    pub size: u64,
    /// What the package format recorded for this version (npm's manifest and deprecation, PyPI's
    /// requires-python and yanked state, Maven checksums, ...).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A file of a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content.
    pub sha256: Sha256,
    /// Commit time, unix milliseconds.
    pub created_at: u64,
}

/// `GET /api/v1/resolve`: the one version a tag, version, `latest` or range picks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedVersion {
    /// The registry asked.
    pub registry: String,
    /// The registry holding the version (a member, when the registry asked is virtual).
    pub member: String,
    /// Package name.
    pub package: String,
    /// The version picked.
    pub version: String,
    /// Tags pointing at it, sorted.
    pub tags: Vec<String>,
    /// Creation time, unix milliseconds.
    pub created_at: u64,
    /// Its key:value metadata.
    pub metadata: Metadata,
    /// Its files, with where to download them.
    pub files: Vec<ResolvedFile>,
}

/// A file of a resolved version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedFile {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content.
    pub sha256: Sha256,
    /// Where to GET it (the management API's file route, with the caller's credentials).
    pub url: String,
}

/// `POST .../versions/{version}/deployments`: a deployment of the version to an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRequest {
    /// Where it was deployed (`prod`, `eu-staging`).
    pub environment: String,
}

/// A version's last deployment to an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The environment.
    pub environment: String,
    /// When it was recorded, unix milliseconds.
    pub at: u64,
    /// Who recorded it.
    pub by: String,
}

/// `PUT .../metadata`: keys to set. Also the answer of `GET .../metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataBody {
    /// Keys and values.
    pub metadata: BTreeMap<String, String>,
}

/// `DELETE .../metadata`: keys to remove (all keys when empty).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeleteMetadataRequest {
    /// Keys to remove.
    #[serde(default)]
    pub keys: Vec<String>,
}

/// `POST .../versions/{version}/copy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyVersionRequest {
    /// Where to copy the version.
    pub destination_registry: String,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateTokenRequest {
    /// Human label.
    pub name: String,
    /// A global role: shorthand for `scopes: [{"role": ...}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The user or service account the token acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Lifetime in seconds; absent for a token that does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<u64>,
    /// What the token may do (with an owner, capped by the owner's grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<crate::identity::Grant>>,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Token id.
    pub id: String,
    /// Label.
    pub name: String,
    /// The user or service account it acts for.
    pub owner: Option<String>,
    /// What it may do (with an owner, capped by the owner's grants).
    pub scopes: Vec<crate::identity::Grant>,
    /// Unix milliseconds from which it is refused.
    pub expires_at: Option<u64>,
    /// Creation time, unix milliseconds.
    pub created_at: u64,
}

/// The answer to `POST /api/v1/tokens`: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The token's public description.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The secret to send as `Authorization: Bearer <token>`.
    pub token: String,
}

/// `GET /api/v1/whoami`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The caller's token, or `None` for anonymous callers and password logins.
    pub token: Option<TokenInfo>,
    /// The user the caller acts as, if any.
    #[serde(default)]
    pub user: Option<String>,
    /// What the caller may do now: the token's scopes intersected with its owner's grants.
    #[serde(default)]
    pub grants: Vec<crate::identity::Grant>,
}

/// The answer to a generic upload (`PUT /generic/...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedFile {
    /// Registry name.
    pub registry: String,
    /// Package name.
    pub package: String,
    /// Version.
    pub version: String,
    /// File name.
    pub filename: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content as the server computed it.
    pub sha256: Sha256,
}

/// `GET /api/v1/cluster`: the cluster as its leader sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node that answered.
    pub answered_by: u64,
    /// The leader's id, when one is known.
    pub leader: Option<u64>,
    /// The current Raft term.
    pub term: u64,
    /// The leader's last committed log index.
    pub commit_index: u64,
    /// Every member.
    pub nodes: Vec<ClusterNodeStatus>,
}

/// `GET /api/v1/events?after=&limit=&registry=&wait_seconds=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsQuery {
    /// The cursor: answer events after this one (`next` of the previous answer; 0 or none: from
    /// the oldest kept).
    pub after: Option<u64>,
    /// The most events answered (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Only events of this registry.
    pub registry: Option<String>,
    /// When nothing is new, wait this long (at most 30 s) for the next change before answering.
    pub wait_seconds: Option<u64>,
}

/// One change, as a CloudEvent 1.0 in JSON (structured mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: String,
    /// The event's id: the audit event's, unique and increasing across the cluster.
    pub id: String,
    /// `/registries/<registry>`, or `/cluster` for changes of no registry.
    pub source: String,
    /// `io.arca.artifact.pushed`, `io.arca.artifact.deleted`, `io.arca.artifact.quarantined`,
    /// `io.arca.artifact.released`, `io.arca.artifact.deployed`, `io.arca.artifact.cleaned`
    /// (deleted by a cleanup policy), `io.arca.tag.moved`,
    /// `io.arca.registry.changed`, `io.arca.admin.changed` (and `io.arca.webhook.test`, posted
    /// to a webhook when asked).
    #[serde(rename = "type")]
    pub kind: String,
    /// When the change was requested, RFC 3339.
    pub time: String,
    /// The path the change was made at.
    pub subject: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// The audit event: who, from where, what, how it ended.
    pub data: crate::model::AuditEvent,
}

/// The answer of `GET /api/v1/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventList {
    /// The events, oldest first.
    pub events: Vec<CloudEvent>,
    /// The cursor to ask after next time (past events the caller may not see, too).
    pub next: u64,
}

/// `GET /api/v1/storage`: where the answering node keeps its chunks, and the move of its local
/// chunks into an object store, when one began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageStatus {
    /// `local` (the chunk directory under the data directory) or `s3://<bucket>/<prefix>`.
    pub backend: String,
    /// The move of local chunks into the bucket, when the node has local chunks to move or moved
    /// them.
    pub migration: Option<MigrationStatus>,
}

/// How the move of a node's local chunks into its bucket goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationStatus {
    /// The bucket the chunks move into.
    pub target: String,
    /// `waiting` (not asked for yet), `running`, `finished`, or `failed` (asked again, it resumes).
    pub state: String,
    /// Fan-out prefixes (of 256) moved.
    pub prefixes_done: u16,
    /// Chunks moved since the node started.
    pub moved_chunks: u64,
    /// Their bytes.
    pub moved_bytes: u64,
    /// Local chunks that failed verification and were left where they are (the scrub replaces
    /// them with a peer's copy).
    pub corrupt_chunks: u64,
    /// Why the last run stopped, when it failed.
    pub error: Option<String>,
}

/// `POST /api/v1/storage/migrate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateRequest {
    /// The bucket to move into, `s3://<bucket>/<prefix>`: the one the node is configured with.
    pub to: String,
}

/// `GET /api/v1/cluster/scrub`: the background scrub of the node that answered, which reads every
/// chunk it holds, checks its blake3 hash, and replaces a damaged one with a peer's good copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubStatus {
    /// The node that answered (each node scrubs its own chunks).
    pub node_id: u64,
    /// The rate passes read at, bytes per second (0: no passes but those asked for, unthrottled).
    pub bytes_per_second: u64,
    /// True while a pass runs.
    pub running: bool,
    /// When the running (or else the last) pass began, unix milliseconds.
    pub pass_started_at: Option<u64>,
    /// When the last pass ended, unix milliseconds.
    pub last_pass_finished_at: Option<u64>,
    /// Passes completed since the node started.
    pub passes: u64,
    /// Chunks read and checked since the node started.
    pub chunks_checked: u64,
    /// Bytes read and checked since the node started.
    pub bytes_checked: u64,
    /// Chunks whose bytes no longer matched their hash.
    pub corrupt: u64,
    /// Corrupt chunks replaced with a peer's verified copy.
    pub repaired: u64,
    /// Corrupt chunks no peer could give back (their blobs need another copy).
    pub unrepairable: u64,
}

/// One member in [`ClusterStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterNodeStatus {
    /// Node id.
    pub id: u64,
    /// Site.
    pub site: String,
    /// `voter` or `learner`.
    pub membership: String,
    /// Full replica or cache node.
    pub role: NodeRole,
    /// HTTP address.
    pub http: String,
    /// Inter-node QUIC address.
    pub quic: String,
    /// The last log index the leader knows this node holds.
    pub matched_index: Option<u64>,
    /// Log entries this node is behind the leader's last entry (None when the leader has no view).
    pub lag: Option<u64>,
}

/// `POST /api/v1/cluster/join-tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateJoinTokenRequest {
    /// How long the token may be used, in seconds (default one hour).
    #[serde(default = "default_join_token_ttl")]
    pub ttl_seconds: u64,
}

fn default_join_token_ttl() -> u64 {
    3600
}

/// A new join token: pass it to `arca-node --join-token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinTokenInfo {
    /// The token (CA fingerprint and secret).
    pub token: String,
    /// When it stops working, unix milliseconds.
    pub expires_at: u64,
}

/// `GET /api/v1/audit`: which events to answer, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Only events at or after this time: unix milliseconds, an RFC 3339 time, or a duration before
    /// now (`1h`, `30m`).
    #[serde(default)]
    pub since: Option<String>,
    /// Only events at or before this time, in the same forms as `since`.
    #[serde(default)]
    pub until: Option<String>,
    /// Only events of this caller: a token name, a token id, or `anonymous`.
    #[serde(default)]
    pub actor: Option<String>,
    /// Only events addressing this registry.
    #[serde(default)]
    pub registry: Option<String>,
    /// Only events whose action contains this text (case-insensitive), e.g. `DELETE` or `/generic/`.
    #[serde(default)]
    pub action: Option<String>,
    /// At most this many events (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The answer of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditList {
    /// The matching events, newest first.
    pub events: Vec<AuditEvent>,
}

/// How long unreferenced chunks are kept by default before garbage collection may remove them.
pub const DEFAULT_GC_GRACE_SECONDS: u64 = 3600;

/// `POST /api/v1/gc`: every field may be left out (and so may the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcRequest {
    /// Count what would be removed, remove nothing.
    pub dry_run: bool,
    /// Unreferenced chunks younger than this many seconds are kept (default: an hour).
    pub grace_seconds: u64,
}

impl Default for GcRequest {
    fn default() -> Self {
        GcRequest {
            dry_run: false,
            grace_seconds: DEFAULT_GC_GRACE_SECONDS,
        }
    }
}

/// What one garbage collection found and did on the node that ran it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// Chunk files listed.
    pub scanned: u64,
    /// Of those, the ones a referenced blob uses.
    pub referenced: u64,
    /// Unreferenced chunks removed (in a dry run: that would have been).
    pub removed: u64,
    /// Their bytes.
    pub removed_bytes: u64,
    /// Unreferenced chunks kept: younger than the grace period, or held by an upload in flight.
    pub kept_in_grace: u64,
    /// Whether nothing was removed on purpose.
    pub dry_run: bool,
    /// On an object store several nodes share, where removed chunks wait in a trash for the next
    /// collection: trashed chunks deleted for good (in the trash for the grace period, still
    /// unreferenced).
    #[serde(default)]
    pub purged: u64,
    /// Trashed chunks put back because a version took them up after they were trashed.
    #[serde(default)]
    pub restored: u64,
}

/// `POST /api/v1/registries/{registry}/cleanup?dry_run=true|false`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupQuery {
    /// List what would be deleted, delete nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// A version a cleanup policy selects for deletion, the rule that selects it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedDeletion {
    /// Package name.
    pub package: String,
    /// Version.
    pub version: String,
    /// The name of the rule that selects it.
    pub rule: String,
    /// Why the rule selects it.
    pub reason: String,
}

/// A planned deletion that was not carried out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedDeletion {
    /// What was planned.
    #[serde(flatten)]
    pub planned: PlannedDeletion,
    /// Why it was not deleted.
    pub refused: String,
}

/// What one cleanup run (or dry run) of a registry planned and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupReport {
    /// Registry name.
    pub registry: String,
    /// Whether nothing was deleted on purpose.
    pub dry_run: bool,
    /// Every version the policy selects, in package and version order.
    pub planned: Vec<PlannedDeletion>,
    /// The ones deleted (empty in a dry run).
    pub deleted: Vec<PlannedDeletion>,
    /// The ones refused (an immutable registry refuses all; in a dry run too, since the real run would).
    pub refused: Vec<RefusedDeletion>,
}

/// `POST /api/v1/webhooks`: a new webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRequest {
    /// Its name: 1-64 letters, digits, `.`, `_` and `-`.
    pub name: String,
    /// Where events are posted (`http` or `https`).
    pub url: String,
    /// The signing secret (`whsec_<base64>` as Standard Webhooks libraries make them, or any
    /// string of 16 to 256 bytes); `None`: the node makes one and answers it once.
    #[serde(default)]
    pub secret: Option<String>,
    /// Only events of this registry (`None`: every registry, and changes of none; admins only).
    #[serde(default)]
    pub registry: Option<String>,
    /// Only events of these types (`io.arca.artifact.pushed` or just `artifact.pushed`; empty:
    /// every type).
    #[serde(default)]
    pub events: Vec<String>,
}

/// A webhook as the API shows it (never its secret, except the one the node made, once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookInfo {
    /// Its name.
    pub name: String,
    /// Where events are posted.
    pub url: String,
    /// Only events of this registry (`None`: all).
    pub registry: Option<String>,
    /// Only events of these types (empty: all).
    pub events: Vec<String>,
    /// False once disabled.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When, unix milliseconds.
    pub created_at: u64,
    /// The last event id delivered or passed over (the `after` cursor of `GET /api/v1/events`).
    pub cursor: u64,
    /// Attempts that failed in a row.
    pub failures: u32,
    /// The secret the node made for it: in the answer to its creation only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `PATCH /api/v1/webhooks/{name}`: enable or disable a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookUpdate {
    /// Enabled (which forgets its failures) or not.
    pub enabled: bool,
}

/// `GET /api/v1/webhooks/{name}/deliveries`: the newest attempts first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveriesQuery {
    /// At most this many (1 to 1000; default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `GET /api/v1/search`: what to look for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// Words, and filters among them: `type:npm`, `registry:R`, `status:blocked`,
    /// `pushed:>2026-01-01`, any other `key:value` for metadata.
    #[serde(default)]
    pub q: String,
    /// Only this registry (as `registry:R` in `q`).
    #[serde(default)]
    pub registry: Option<String>,
    /// At most this many hits (1 to 100; default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Hits to skip (for the next page).
    #[serde(default)]
    pub offset: Option<u32>,
}

/// One package a search found, with its best-matching version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// Its registry.
    pub registry: String,
    /// The registry's package type, lower-case (`npm`, `docker`, ...).
    pub package_type: String,
    /// The package.
    pub package: String,
    /// The version that matched best.
    pub version: String,
    /// Its description (the start of it).
    pub description: String,
    /// The firewall's word on it: `allowed`, `warn`, `blocked`, `quarantined` or `released`.
    pub status: String,
    /// When it was pushed, unix milliseconds.
    pub pushed_at: u64,
    /// How well it matched (higher is better; comparable within one answer only).
    pub score: f32,
}

/// The answer of `GET /api/v1/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// The packages found, best first.
    pub hits: Vec<SearchHit>,
    /// How many versions matched (a package may have several).
    pub total_versions: u64,
    /// The applied log index the answering node's index reflects (a change applied after it is
    /// not searchable there yet).
    pub indexed_to: u64,
}

/// `GET /api/v1/insights...`: which figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsightsQuery {
    /// Only this registry (required where a package is named, and for idle versions).
    #[serde(default)]
    pub registry: Option<String>,
    /// The package (`/api/v1/insights/package`).
    #[serde(default)]
    pub package: Option<String>,
    /// The figures of the last this many days, today included (1 to 366; default 30). For idle
    /// versions: not downloaded for more than this many days.
    #[serde(default)]
    pub days: Option<u32>,
    /// At most this many entries (1 to 1000; default 20, idle versions 100).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The figures of something: whole downloads, bytes served, the last time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageFigures {
    /// Whole downloads.
    pub downloads: u64,
    /// Bytes served.
    pub bytes: u64,
    /// When the last download was, unix milliseconds (`None`: never).
    pub last_download_at: Option<u64>,
}

/// The figures of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayUsage {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Whole downloads.
    pub downloads: u64,
    /// Bytes served.
    pub bytes: u64,
}

/// The figures of a registry or a site over the days asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedUsage {
    /// The registry's or site's name.
    pub name: String,
    /// Its figures over the days.
    #[serde(flatten)]
    pub figures: UsageFigures,
    /// Day by day (days without downloads left out).
    pub daily: Vec<DayUsage>,
}

/// `GET /api/v1/insights`: the cluster's figures over the days asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageOverview {
    /// The first day counted, `YYYY-MM-DD`.
    pub from: String,
    /// The last (today), `YYYY-MM-DD`.
    pub to: String,
    /// Each registry the caller may read that was downloaded from, most downloads first.
    pub registries: Vec<NamedUsage>,
    /// Bytes served at each site (for callers with a cluster-wide grant; empty otherwise).
    pub sites: Vec<NamedUsage>,
}

/// A package among the most downloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageUsage {
    /// Its registry.
    pub registry: String,
    /// The package.
    pub package: String,
    /// Its figures over the days asked.
    #[serde(flatten)]
    pub figures: UsageFigures,
}

/// `GET /api/v1/insights/packages`: the most downloaded packages over the days asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopPackages {
    /// The first day counted, `YYYY-MM-DD`.
    pub from: String,
    /// The last (today), `YYYY-MM-DD`.
    pub to: String,
    /// Most downloads first.
    pub packages: Vec<PackageUsage>,
}

/// One version's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionUsage {
    /// The version.
    pub version: String,
    /// Since it was pushed (or cached).
    pub total: UsageFigures,
    /// Over the days asked.
    pub recent: UsageFigures,
}

/// One consumer of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerUsage {
    /// `anonymous`, `user:<name>`, `token:<name>` or `user:<name>/token:<name>`.
    pub consumer: String,
    /// Its figures since it first downloaded the package.
    #[serde(flatten)]
    pub figures: UsageFigures,
    /// The version it downloaded last.
    pub last_version: Option<String>,
}

/// `GET /api/v1/insights/package`: one package's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageInsights {
    /// The registry.
    pub registry: String,
    /// The package.
    pub package: String,
    /// The first day counted, `YYYY-MM-DD`.
    pub from: String,
    /// The last (today), `YYYY-MM-DD`.
    pub to: String,
    /// Every version's figures, most downloaded over the days asked first.
    pub versions: Vec<VersionUsage>,
    /// The package's figures day by day (days without downloads left out).
    pub daily: Vec<DayUsage>,
    /// Who downloaded it, most downloads first (shown to the registry's admins only; empty for
    /// other callers).
    pub consumers: Vec<ConsumerUsage>,
}

/// A version nobody downloaded for the days asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleVersion {
    /// The package.
    pub package: String,
    /// The version.
    pub version: String,
    /// When it was last downloaded, unix milliseconds (`None`: never).
    pub last_download_at: Option<u64>,
    /// When it was pushed (or cached), unix milliseconds.
    pub created_at: u64,
}

/// `GET /api/v1/insights/idle`: versions of a registry not downloaded (nor pushed) for more than
/// the days asked, what a cleanup rule `not_downloaded_days` deletes; longest idle first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleVersions {
    /// The registry.
    pub registry: String,
    /// Idle for more than this many days.
    pub days: u32,
    /// The versions, longest idle first.
    pub versions: Vec<IdleVersion>,
    /// True when there are more than `limit`.
    pub truncated: bool,
}
