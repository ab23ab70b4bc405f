//! The metadata model every node holds in its state machine: registries, packages, versions, the files
//! of a version and the blobs behind them, and the tokens that authenticate callers.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cluster::ReplicationPolicy;
use crate::digest::{ChunkId, Sha256};

/// Key/value metadata attached to a registry, package or version.
pub type Metadata = BTreeMap<String, String>;

/// Which protocol a registry speaks. Serialised as its upper-case name; parsed case-insensitively, with
/// `OCI` as an alias of `DOCKER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PackageType {
    /// Arbitrary files under `/generic/`.
    Generic,
    /// OCI / Docker images and artifacts.
    Docker,
    /// Helm charts.
    Helm,
    /// npm packages.
    Npm,
    /// Python packages.
    Pypi,
    /// Maven artifacts.
    Maven,
    /// Go modules.
    Go,
    /// Cargo crates.
    Cargo,
    /// NuGet packages.
    Nuget,
    /// Ruby gems.
    Rubygems,
    /// PHP packages (Composer).
    Composer,
    /// Conda packages.
    Conda,
    /// Hugging Face model and dataset repositories.
    Huggingface,
    /// Debian packages (apt repositories).
    Debian,
    /// RPM packages (yum/dnf repositories).
    Rpm,
}

impl PackageType {
    /// Whether registries of this type sign their repository metadata with their own OpenPGP key
    /// (see [`SigningKey`]).
    pub fn signs_metadata(self) -> bool {
        matches!(self, PackageType::Debian | PackageType::Rpm)
    }

    /// Every package type, in display order.
    pub const ALL: [PackageType; 15] = [
        PackageType::Generic,
        PackageType::Docker,
        PackageType::Helm,
        PackageType::Npm,
        PackageType::Pypi,
        PackageType::Maven,
        PackageType::Go,
        PackageType::Cargo,
        PackageType::Nuget,
        PackageType::Rubygems,
        PackageType::Composer,
        PackageType::Conda,
        PackageType::Huggingface,
        PackageType::Debian,
        PackageType::Rpm,
    ];

    /// The upper-case name used in the API and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageType::Generic => "GENERIC",
            PackageType::Docker => "DOCKER",
            PackageType::Helm => "HELM",
            PackageType::Npm => "NPM",
            PackageType::Pypi => "PYPI",
            PackageType::Maven => "MAVEN",
            PackageType::Go => "GO",
            PackageType::Cargo => "CARGO",
            PackageType::Nuget => "NUGET",
            PackageType::Rubygems => "RUBYGEMS",
            PackageType::Composer => "COMPOSER",
            PackageType::Conda => "CONDA",
            PackageType::Huggingface => "HUGGINGFACE",
            PackageType::Debian => "DEBIAN",
            PackageType::Rpm => "RPM",
        }
    }
}

impl fmt::Display for PackageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<PackageType> for String {
    fn from(package_type: PackageType) -> String {
        package_type.as_str().to_string()
    }
}

impl TryFrom<String> for PackageType {
    type Error = UnknownPackageType;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

/// A package type name that Arca does not know.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown package type {0:?} (expected one of GENERIC, DOCKER, HELM, NPM, PYPI, MAVEN, GO, CARGO, NUGET, RUBYGEMS, COMPOSER, CONDA, HUGGINGFACE)"
)]
pub struct UnknownPackageType(pub String);

impl FromStr for PackageType {
    type Err = UnknownPackageType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        if upper == "OCI" {
            return Ok(PackageType::Docker);
        }
        PackageType::ALL
            .into_iter()
            .find(|t| t.as_str() == upper)
            .ok_or_else(|| UnknownPackageType(s.to_string()))
    }
}

/// One stored chunk of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// blake3 of the chunk's bytes.
    pub id: ChunkId,
    /// Length of the chunk in bytes.
    pub size: u32,
}

/// Immutable bytes: known to clients by sha256, stored as an ordered list of chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// sha256 of the whole blob.
    pub sha256: Sha256,
    /// Total length in bytes (the sum of the chunk sizes).
    pub size: u64,
    /// The chunks, in order (none when the bytes are [`BlobRef::inline`]).
    pub chunks: Vec<ChunkRef>,
    /// The bytes themselves, for a blob small enough to live in the metadata (no chunk file).
    #[serde(default)]
    pub inline: Option<Vec<u8>>,
}

/// A named registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// Unique name, used in every URL.
    pub name: String,
    /// The protocol it speaks.
    pub package_type: PackageType,
    /// Free text for humans.
    #[serde(default)]
    pub description: String,
    /// An immutable registry refuses to overwrite any existing version's files.
    #[serde(default)]
    pub immutable: bool,
    /// Reads without a token are allowed.
    #[serde(default)]
    pub allow_anonymous_read: bool,
    /// Released versions may be deployed again (Maven); off by default.
    #[serde(default)]
    pub allow_redeploy: bool,
    /// Creation time, unix milliseconds.
    pub created_at: u64,
    /// User metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// Which sites hold full copies of its blobs, and when they copy them.
    #[serde(default)]
    pub replication: ReplicationPolicy,
    /// Hosted, a caching proxy of an upstream, or one URL over other registries.
    #[serde(default)]
    pub kind: RegistryKind,
    /// Where a remote registry fetches from.
    #[serde(default)]
    pub upstream: Option<Upstream>,
    /// A virtual registry's members, in the order reads try them.
    #[serde(default)]
    pub members: Vec<String>,
    /// The local member a virtual registry's publishes go to.
    #[serde(default)]
    pub publish_to: Option<String>,
    /// Record every download (a GET of a file, blob, tarball or manifest) in the audit trail, not
    /// only the changes.
    #[serde(default)]
    pub audit_downloads: bool,
    /// Which versions cleanup deletes (see [`CleanupPolicy`]); empty by default.
    #[serde(default)]
    pub cleanup: CleanupPolicy,
    /// The dependency firewall's rules for this registry's versions; empty (allow all) by default.
    #[serde(default)]
    pub firewall: crate::firewall::FirewallPolicy,
}

/// What [`crate::Command::UpdateRegistry`] changes of a registry (and the body of `PATCH
/// /api/v1/registries/{name}`): each field given replaces the registry's; its name, package type
/// and kind never change. Through the API, an upstream without a password keeps the one stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryChanges {
    /// A new description.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether a pushed version may never change.
    #[serde(default)]
    pub immutable: Option<bool>,
    /// Whether anonymous callers may read.
    #[serde(default)]
    pub allow_anonymous_read: Option<bool>,
    /// Whether a version's files may be pushed again.
    #[serde(default)]
    pub allow_redeploy: Option<bool>,
    /// Whether downloads are recorded in the audit trail.
    #[serde(default)]
    pub audit_downloads: Option<bool>,
    /// A remote registry's new upstream.
    #[serde(default)]
    pub upstream: Option<Upstream>,
    /// A virtual registry's new members, in order.
    #[serde(default)]
    pub members: Option<Vec<String>>,
    /// A virtual registry's new publish target (an empty name: none).
    #[serde(default)]
    pub publish_to: Option<String>,
}

impl RegistryChanges {
    /// `registry` with these changes made.
    pub fn apply_to(&self, registry: &mut Registry) {
        if let Some(description) = &self.description {
            registry.description = description.clone();
        }
        if let Some(immutable) = self.immutable {
            registry.immutable = immutable;
        }
        if let Some(anonymous) = self.allow_anonymous_read {
            registry.allow_anonymous_read = anonymous;
        }
        if let Some(redeploy) = self.allow_redeploy {
            registry.allow_redeploy = redeploy;
        }
        if let Some(audit) = self.audit_downloads {
            registry.audit_downloads = audit;
        }
        if let Some(upstream) = &self.upstream {
            registry.upstream = Some(upstream.clone());
        }
        if let Some(members) = &self.members {
            registry.members = members.clone();
        }
        if let Some(target) = &self.publish_to {
            registry.publish_to = Some(target.clone()).filter(|target| !target.is_empty());
        }
    }
}

/// A registry's cleanup policy: a version is deleted when some rule says so and no exception of that
/// rule keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupPolicy {
    /// The rules, each evaluated on its own.
    #[serde(default)]
    pub rules: Vec<CleanupRule>,
}

/// One cleanup rule. It applies to the versions whose package and version names match its patterns;
/// its conditions (`keep_last`, `older_than_days`, `not_downloaded_days`) are ANDed, and a rule with
/// no condition deletes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupRule {
    /// Name shown in reports.
    pub name: String,
    /// Glob (`*`, `?`) over package names.
    #[serde(default = "any_pattern")]
    pub package_pattern: String,
    /// Glob (`*`, `?`) over version names.
    #[serde(default = "any_pattern")]
    pub version_pattern: String,
    /// Keep the newest N versions (by creation time) of each package; the older ones qualify.
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// Versions created more than this many days ago qualify.
    #[serde(default)]
    pub older_than_days: Option<u32>,
    /// Versions not downloaded (last access, else creation) for this many days qualify.
    #[serde(default)]
    pub not_downloaded_days: Option<u32>,
    /// Never delete a version a tag points at.
    #[serde(default = "default_true")]
    pub keep_tagged: bool,
    /// Globs (`*`, `?`) over tag names: a version a matching tag points at is kept (`latest`,
    /// `release-*`), whatever `keep_tagged` says.
    #[serde(default)]
    pub keep_tags: Vec<String>,
    /// `key:value` exceptions: a version whose metadata has one of them is kept.
    #[serde(default)]
    pub keep_metadata: Vec<String>,
}

impl Default for CleanupRule {
    fn default() -> Self {
        CleanupRule {
            name: String::new(),
            package_pattern: any_pattern(),
            version_pattern: any_pattern(),
            keep_last: None,
            older_than_days: None,
            not_downloaded_days: None,
            keep_tagged: true,
            keep_tags: Vec::new(),
            keep_metadata: Vec::new(),
        }
    }
}

fn any_pattern() -> String {
    "*".to_string()
}

fn default_true() -> bool {
    true
}

/// What a registry is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryKind {
    /// Hosted: holds what is published to it.
    #[default]
    Local,
    /// A caching proxy of an upstream registry.
    Remote,
    /// One URL over an ordered list of local and remote registries of the same type.
    Virtual,
}

impl RegistryKind {
    /// The kind's name in flags and output.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryKind::Local => "local",
            RegistryKind::Remote => "remote",
            RegistryKind::Virtual => "virtual",
        }
    }
}

impl fmt::Display for RegistryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The upstream of a remote registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// Base URL (`https://registry.npmjs.org`, `https://pypi.org`, `https://registry-1.docker.io`).
    pub url: String,
    /// User for Basic authentication upstream.
    #[serde(default)]
    pub username: Option<String>,
    /// Password or token for Basic authentication upstream (never shown by the API; kept sealed
    /// under the cluster's key, see the node's `secrets` module).
    #[serde(default)]
    pub password: Option<String>,
    /// Seconds a cached metadata document is served before the upstream is asked again.
    #[serde(default = "default_metadata_ttl")]
    pub metadata_ttl_seconds: u64,
}

/// Settings of a registry stored beside its record, set with
/// [`crate::Command::SetRegistrySettings`] (the registry record's own layout is fixed by the state
/// format).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrySettings {
    /// PEM CA certificates a remote registry's upstream is trusted by, besides the node's
    /// certificate store and `upstream_ca_file` (a private CA the upstream's certificate comes
    /// from).
    #[serde(default)]
    pub upstream_ca_pem: Option<String>,
    /// Nodes that hold the bytes of a push durably before it is acknowledged (in distinct sites
    /// when there are enough; `None`: 1, the node that took it).
    #[serde(default)]
    pub min_copies: Option<u32>,
}

/// The OpenPGP key a Debian or RPM registry signs its repository metadata with (`InRelease`,
/// `Release.gpg`, `repomd.xml.asc`), set with [`crate::Command::SetSigningKey`]. The secret half is
/// kept sealed under the cluster's key (see the node's `secrets` module) and never leaves a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    /// The secret key (armoured), sealed.
    pub sealed_secret: String,
    /// The public key, ASCII-armoured: what clients are given to verify with.
    pub public_key: String,
    /// The key's fingerprint, upper-case hex.
    pub fingerprint: String,
    /// When the key was made, unix milliseconds.
    pub created_at: u64,
}

fn default_metadata_ttl() -> u64 {
    300
}

/// A metadata document a remote registry fetched (a packument, an index page, maven-metadata.xml, a
/// tag's manifest), kept to be served again until its time to live runs out, and stale when the
/// upstream fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedDocument {
    /// The bytes, as fetched.
    pub blob: BlobRef,
    /// The upstream's `Content-Type`.
    pub content_type: String,
    /// When it was fetched, unix milliseconds.
    pub fetched_at: u64,
}

/// A file of a version: a name pointing at a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// sha256 of the blob holding the file's bytes.
    pub sha256: Sha256,
    /// Size in bytes.
    pub size: u64,
    /// When the file was committed, unix milliseconds.
    pub created_at: u64,
}

/// One version of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The version string.
    pub name: String,
    /// First commit time, unix milliseconds.
    pub created_at: u64,
    /// Last change time, unix milliseconds.
    pub updated_at: u64,
    /// Files by name.
    pub files: BTreeMap<String, FileEntry>,
    /// User metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// For OCI registries: what the version's manifest says (its file is `manifest`).
    #[serde(default)]
    pub manifest: Option<ManifestInfo>,
    /// Format attributes (npm's version manifest, deprecation, PyPI's requires-python, yanked...).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The dependency firewall's verdict and any quarantine or release; set by the state machine
    /// when the version is created and on every re-evaluation.
    #[serde(default)]
    pub firewall: Option<crate::firewall::VersionFirewall>,
    /// Its size: the distinct blobs of its files and, for an OCI manifest, the blobs it references.
    #[serde(default)]
    pub size: u64,
}

/// What the registry remembers of an OCI manifest, to check references and answer the referrers API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestInfo {
    /// The manifest's media type (OCI or Docker, image or index).
    pub media_type: String,
    /// `artifactType`, or for an image manifest without one, its config's media type.
    pub artifact_type: Option<String>,
    /// Digest of the manifest this one refers to (`subject`).
    pub subject: Option<String>,
    /// Blobs it references (config and layers), by digest.
    pub blobs: Vec<String>,
    /// Child manifests it references (an index), by digest.
    pub manifests: Vec<String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A package: a name within a registry. Its versions, tags and linked blobs are stored apart and
/// read through the state's read API; the package keeps their counts and what listings show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The package name.
    pub name: String,
    /// First commit time, unix milliseconds.
    pub created_at: u64,
    /// Last change time, unix milliseconds.
    pub updated_at: u64,
    /// User metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// How many versions it has.
    pub version_count: u64,
    /// The sum of its versions' sizes.
    pub size: u64,
    /// The most recently updated version, and when it was updated.
    pub latest: Option<(u64, String)>,
    /// The latest download of any of its versions, unix milliseconds.
    pub last_access: Option<u64>,
    /// Counts every change of the package, its versions and its tags: documents rendered from
    /// them (npm packuments, PyPI pages) are valid while it stays the same.
    pub generation: u64,
}

impl Package {
    /// A package with no versions yet, created at `at`.
    pub fn new(name: &str, at: u64) -> Package {
        Package {
            name: name.to_string(),
            created_at: at,
            updated_at: at,
            metadata: Metadata::new(),
            version_count: 0,
            size: 0,
            latest: None,
            last_access: None,
            generation: 0,
        }
    }

    /// The name of the most recently updated version.
    pub fn latest_version(&self) -> Option<&str> {
        self.latest.as_ref().map(|(_, name)| name.as_str())
    }
}

/// What a user or token may do. Shown as `viewer`, `contributor` and `admin`; `read` and `write` are
/// accepted as the older names of the first two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Read artifacts and metadata.
    #[serde(rename = "viewer", alias = "read")]
    Read,
    /// Read, publish and delete artifacts and metadata.
    #[serde(rename = "contributor", alias = "write")]
    Write,
    /// Everything, including registries, their policies, users and tokens.
    #[serde(rename = "admin")]
    Admin,
}

impl Role {
    /// True when this role includes everything `needed` allows.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "viewer" | "read" => Ok(Role::Read),
            "contributor" | "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?} (expected viewer, contributor or admin)"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Read => "viewer",
            Role::Write => "contributor",
            Role::Admin => "admin",
        })
    }
}

/// An API token. Only the sha256 of its secret is ever stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Public identifier, shown in listings and used to revoke.
    pub id: String,
    /// Human label.
    pub name: String,
    /// sha256 of the secret the caller presents.
    pub secret_sha256: Sha256,
    /// What the token may do; with an owner, only as far as the owner's grants allow too.
    pub scopes: Vec<crate::identity::Grant>,
    /// The user or service account the token acts for; `None` for tokens of their own (the admin
    /// token).
    pub owner: Option<String>,
    /// Unix milliseconds from which the token is refused; `None` for tokens that do not expire.
    pub expires_at: Option<u64>,
    /// Creation time, unix milliseconds.
    pub created_at: u64,
}

/// One entry of the audit trail: a request that changed something (or, for registries that audit
/// downloads, a download), who made it, from where and how it ended. Recorded through Raft and never
/// changed afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the trail, from 1, assigned by the state machine when the event is applied (a
    /// proposer sends 0).
    #[serde(default)]
    pub id: u64,
    /// When the request arrived, unix milliseconds, by the clock of the node that served it.
    pub at: u64,
    /// The name of the caller's token, or `anonymous`.
    pub actor: String,
    /// The id of the caller's token; `None` for anonymous callers.
    #[serde(default)]
    pub actor_id: Option<String>,
    /// The address the request came from (`unknown` when the server could not tell).
    pub source_ip: String,
    /// The HTTP method and the route template that served the request
    /// (`PUT /generic/{registry}/{package}/{version}/{filename}`).
    pub action: String,
    /// The registry the request addressed, when it names one.
    #[serde(default)]
    pub registry: Option<String>,
    /// The concrete request path.
    pub target: String,
    /// The HTTP status of the answer.
    pub result: u16,
    /// Why it ended as it did (the error message of a refusal, the rule of a policy decision).
    #[serde(default)]
    pub detail: Option<String>,
}

/// How much of the audit trail is kept: the newest `max_events`, and (when set) none older than
/// `max_age_days` before the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRetention {
    /// The most events kept.
    #[serde(default = "default_audit_events")]
    pub max_events: u64,
    /// Events older than this many days are dropped.
    #[serde(default)]
    pub max_age_days: Option<u32>,
}

/// The events the audit trail keeps unless told otherwise.
pub const DEFAULT_AUDIT_EVENTS: u64 = 100_000;

fn default_audit_events() -> u64 {
    DEFAULT_AUDIT_EVENTS
}

impl Default for AuditRetention {
    fn default() -> Self {
        AuditRetention {
            max_events: DEFAULT_AUDIT_EVENTS,
            max_age_days: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_types_parse_case_insensitively_with_the_oci_alias() {
        for (text, expected) in [
            ("\"GENERIC\"", PackageType::Generic),
            ("\"generic\"", PackageType::Generic),
            ("\"oci\"", PackageType::Docker),
            ("\"Docker\"", PackageType::Docker),
        ] {
            assert_eq!(
                serde_json::from_str::<PackageType>(text).expect(text),
                expected
            );
        }
        assert_eq!(
            serde_json::to_string(&PackageType::Pypi).expect("serialises"),
            "\"PYPI\""
        );
        assert!(serde_json::from_str::<PackageType>("\"TARBALL\"").is_err());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.allows(Role::Write));
        assert!(Role::Write.allows(Role::Read));
        assert!(!Role::Read.allows(Role::Write));
    }
}

/// A webhook: where the changes the event stream tells of are posted, as signed CloudEvents, set
/// with [`crate::Command::CreateWebhook`]. The audit trail is its outbox: `cursor` is the id of the
/// last audit event it has been given (or passed over), advanced through Raft as deliveries
/// succeed, so a delivery survives restarts and leader changes (at least once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Its name, unique in the cluster.
    pub name: String,
    /// Chosen when it is created: a webhook deleted and created again under the same name takes
    /// no progress of the old one.
    pub id: u64,
    /// Where events are posted (`http` or `https`).
    pub url: String,
    /// The signing secret, sealed under the cluster's key.
    pub sealed_secret: String,
    /// Only events of this registry (`None`: every registry, and changes of none).
    pub registry: Option<String>,
    /// Only events of these types (empty: every type).
    pub events: Vec<String>,
    /// False once disabled, by hand or after failing too often.
    pub enabled: bool,
    /// Why it was disabled, when it was.
    pub disabled_reason: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When, unix milliseconds.
    pub created_at: u64,
    /// The last audit event id delivered or passed over.
    pub cursor: u64,
    /// Attempts that failed in a row (0 after a success).
    pub failures: u32,
    /// How many deliveries were ever logged (the next one's number).
    pub logged: u64,
}

/// One attempt to post an event to a webhook, as its delivery log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// The event's id (`test-<time>` for a test event).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// When the attempt began, unix milliseconds.
    pub at: u64,
    /// The receiver's status code, when it answered.
    pub status: Option<u16>,
    /// What went wrong, when something did.
    pub error: Option<String>,
    /// How long the attempt took, milliseconds.
    pub duration_ms: u64,
    /// The node that made it.
    pub node_id: u64,
}

impl WebhookDelivery {
    /// True when the receiver took the event (a 2xx answer).
    pub fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// Downloads one node counted since its last flush, for one registry, day, package (and version)
/// and consumer: what [`crate::Command::RecordUsage`] adds to the usage figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTally {
    /// The day they happened on, in days since the unix epoch (UTC).
    pub day: u32,
    /// The registry that holds what was downloaded (a virtual registry's member, not the virtual
    /// registry asked).
    pub registry: String,
    /// The package (an OCI repository).
    pub package: String,
    /// The version downloaded; `None` for bytes that belong to no one version (OCI layers, which
    /// images share).
    pub version: Option<String>,
    /// Who downloaded: `anonymous`, `user:<name>`, `token:<name>` (a token of no user) or
    /// `user:<name>/token:<name>`.
    pub consumer: String,
    /// Whole downloads (a `200` answer; a ranged resumption adds bytes, not a download).
    pub downloads: u64,
    /// Bytes served.
    pub bytes: u64,
    /// The time of the last of them, unix milliseconds.
    pub last_at: u64,
}

/// The usage figures of something over some time: whole downloads and bytes served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCount {
    /// Whole downloads.
    pub downloads: u64,
    /// Bytes served.
    pub bytes: u64,
    /// When the last download (or byte) was served, unix milliseconds (0: never).
    pub last_at: u64,
}

impl UsageCount {
    /// Adds `other` to these figures.
    pub fn add(&mut self, other: &UsageCount) {
        self.downloads += other.downloads;
        self.bytes += other.bytes;
        self.last_at = self.last_at.max(other.last_at);
    }
}
