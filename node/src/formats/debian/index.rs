//! The `Packages` indexes of hosted Debian registries, kept up to date incrementally on each node.
//!
//! An index is one `(suite, component, architecture)` of a registry. Its packages are spread over
//! [`BUCKETS`] buckets by a hash of their name; each bucket keeps the names in it and its rendered
//! paragraphs, plain and as one gzip member (a `Packages.gz` is the members one after another, which
//! gzip readers take as one stream). When packages change (told by the node's change history,
//! [`crate::meta::changes`]), only their buckets are rendered and compressed again: a push costs a
//! bucket, not the index. The whole registry is read once per node start, or when the history does
//! not reach back far enough.
//!
//! Storage mapping (see the module above): a version's attribute `deb.control/<arch>` holds the
//! package's paragraph as served (with `Filename`, `Size` and hashes), and each attribute
//! `deb.dist/<suite>/<component>/<arch>` puts that build into an index.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::AppState;
use crate::frontend::ApiError;
use crate::meta::StateRead;
use crate::meta::changes::ChangesSince;
use crate::meta::view::ReadResult;

/// Buckets per index.
const BUCKETS: usize = 64;

/// The prefix of the attribute holding a build's paragraph (`deb.control/<arch>`).
pub const CONTROL: &str = "deb.control/";
/// The prefix of the attributes placing a build in an index (`deb.dist/<suite>/<component>/<arch>`).
pub const DIST: &str = "deb.dist/";

/// One index: a suite, a component and an architecture (`all` for architecture-independent
/// builds, which are served in every architecture's `Packages`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexKey {
    pub suite: String,
    pub component: String,
    pub architecture: String,
}

impl IndexKey {
    /// The key an attribute `deb.dist/<suite>/<component>/<arch>` names.
    pub fn of_attribute(attribute: &str) -> Option<IndexKey> {
        let mut parts = attribute.strip_prefix(DIST)?.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(suite), Some(component), Some(architecture), None) => Some(IndexKey {
                suite: suite.to_string(),
                component: component.to_string(),
                architecture: architecture.to_string(),
            }),
            _ => None,
        }
    }

    /// The attribute placing a build in this index.
    pub fn attribute(&self) -> String {
        format!(
            "{DIST}{}/{}/{}",
            self.suite, self.component, self.architecture
        )
    }
}

/// A `Packages` file as served: its parts, to be sent one after another.
#[derive(Debug, Clone, Default)]
pub struct Parts(pub Vec<Bytes>);

impl Parts {
    /// The total length.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|part| part.len() as u64).sum()
    }

    /// True when there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Bytes::is_empty)
    }

    /// The sha256 of the parts together.
    pub fn sha256(&self) -> String {
        let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
        for part in &self.0 {
            hasher.update(part);
        }
        hex::encode(hasher.finish())
    }

    /// The parts one after another in one buffer.
    pub fn concatenated(&self) -> Bytes {
        match self.0.as_slice() {
            [one] => one.clone(),
            parts => Bytes::from(parts.concat()),
        }
    }
}

/// A `Packages` file, plain and gzip'd.
#[derive(Debug, Clone, Default)]
pub struct Served {
    pub plain: Parts,
    pub gzip: Parts,
}

impl Served {
    /// `self` followed by `other` (a virtual registry's members; `all` builds after an
    /// architecture's own).
    pub fn extend(&mut self, other: Served) {
        self.plain.0.extend(other.plain.0);
        self.gzip.0.extend(other.gzip.0);
    }

    /// The gzip'd form, a valid (empty) gzip stream even when there is nothing in it.
    pub fn gzip_or_empty(&self) -> Parts {
        if !self.gzip.is_empty() {
            self.gzip.clone()
        } else {
            Parts(vec![gzip(b"")])
        }
    }
}

/// `data` as one gzip member.
pub fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 32),
        flate2::Compression::new(6),
    );
    // Writing into a Vec does not fail.
    let _ = encoder.write_all(data);
    Bytes::from(encoder.finish().unwrap_or_default())
}

#[derive(Debug, Default)]
struct Bucket {
    packages: BTreeSet<String>,
    plain: Bytes,
    gzip: Bytes,
    stale: bool,
}

#[derive(Debug)]
struct Index {
    buckets: Vec<Bucket>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            buckets: (0..BUCKETS).map(|_| Bucket::default()).collect(),
        }
    }
}

/// The bucket of package `name`.
fn bucket_of(name: &str) -> usize {
    let hash = blake3::hash(name.as_bytes());
    (u64::from_le_bytes(hash.as_bytes()[..8].try_into().unwrap_or_default()) % BUCKETS as u64)
        as usize
}

/// The indexes of one hosted registry.
#[derive(Debug, Default)]
struct Registry {
    /// The change history's index these indexes reflect (`None`: not read yet).
    synced: Option<u64>,
    indexes: BTreeMap<IndexKey, Index>,
    /// The indexes each package is in.
    placed: HashMap<String, BTreeSet<IndexKey>>,
}

/// The hosted Debian registries' indexes on this node.
#[derive(Debug, Default)]
pub struct HostedIndexes {
    registries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Registry>>>>,
}

/// What a hosted registry's suite holds: its components, each with its architectures.
pub type SuiteLayout = BTreeMap<String, BTreeSet<String>>;

impl HostedIndexes {
    fn registry(&self, name: &str) -> Arc<tokio::sync::Mutex<Registry>> {
        self.registries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// The components and architectures of `suite` in `registry`, brought up to date first.
    pub async fn layout(
        &self,
        state: &AppState,
        registry: &str,
        suite: &str,
    ) -> Result<SuiteLayout, ApiError> {
        let slot = self.registry(registry);
        let mut indexes = slot.lock().await;
        sync(state, registry, &mut indexes).await?;
        let mut layout = SuiteLayout::new();
        for key in indexes.indexes.keys().filter(|key| key.suite == suite) {
            layout
                .entry(key.component.clone())
                .or_default()
                .insert(key.architecture.clone());
        }
        Ok(layout)
    }

    /// The suites of `registry`.
    pub async fn suites(
        &self,
        state: &AppState,
        registry: &str,
    ) -> Result<BTreeSet<String>, ApiError> {
        let slot = self.registry(registry);
        let mut indexes = slot.lock().await;
        sync(state, registry, &mut indexes).await?;
        Ok(indexes
            .indexes
            .keys()
            .map(|key| key.suite.clone())
            .collect())
    }

    /// The `Packages` of `key`, brought up to date first (empty when nothing is in it).
    pub async fn served(
        &self,
        state: &AppState,
        registry: &str,
        key: &IndexKey,
    ) -> Result<Served, ApiError> {
        let slot = self.registry(registry);
        let mut indexes = slot.lock().await;
        sync(state, registry, &mut indexes).await?;
        let mut served = Served::default();
        if let Some(index) = indexes.indexes.get(key) {
            for bucket in index.buckets.iter().filter(|b| !b.plain.is_empty()) {
                served.plain.0.push(bucket.plain.clone());
                served.gzip.0.push(bucket.gzip.clone());
            }
        }
        Ok(served)
    }
}

/// Brings `indexes` of `registry` up to the node's applied state: the changed packages' buckets
/// (or, when the history does not tell, everything) are read and rendered again.
async fn sync(state: &AppState, registry: &str, indexes: &mut Registry) -> Result<(), ApiError> {
    let changes = state.meta.changes();
    let (changed, reached) = match indexes.synced {
        Some(synced) => changes.since(registry, synced),
        None => (ChangesSince::Everything, changes.last()),
    };
    if matches!(&changed, ChangesSince::Packages(packages) if packages.is_empty()) {
        indexes.synced = Some(reached);
        return Ok(());
    }
    let state = state.clone();
    let registry_name = registry.to_string();
    let mut taken = std::mem::take(indexes);
    let result = crate::blocking::spawn(move || {
        let view = state.meta.view()?;
        match changed {
            ChangesSince::Everything => {
                taken = Registry::default();
                let mut after: Option<String> = None;
                loop {
                    let page = view.package_names(&registry_name, after.as_deref(), 1000)?;
                    let Some(last) = page.last().cloned() else {
                        break;
                    };
                    for package in page {
                        place(&view, &registry_name, &mut taken, &package)?;
                    }
                    after = Some(last);
                }
            }
            ChangesSince::Packages(packages) => {
                for package in packages {
                    for key in taken.placed.remove(&package).unwrap_or_default() {
                        if let Some(index) = taken.indexes.get_mut(&key) {
                            let bucket = &mut index.buckets[bucket_of(&package)];
                            bucket.packages.remove(&package);
                            bucket.stale = true;
                        }
                    }
                    place(&view, &registry_name, &mut taken, &package)?;
                }
            }
        }
        render_stale(&view, &registry_name, &mut taken)?;
        taken.indexes.retain(|_, index| {
            index
                .buckets
                .iter()
                .any(|bucket| !bucket.packages.is_empty())
        });
        Ok::<_, crate::meta::view::StoreError>(taken)
    })
    .await;
    match result {
        Ok(Ok(mut rebuilt)) => {
            rebuilt.synced = Some(reached);
            *indexes = rebuilt;
            Ok(())
        }
        // Whatever was taken is lost with the failure: the next request reads everything.
        Ok(Err(error)) => Err(error.into()),
        Err(panicked) => Err(ApiError::internal(panicked)),
    }
}

/// Puts `package`'s builds into the buckets of the indexes they are in, marking them stale.
fn place(
    view: &impl StateRead,
    registry: &str,
    indexes: &mut Registry,
    package: &str,
) -> ReadResult<()> {
    let bucket = bucket_of(package);
    for version in view.versions(registry, package)? {
        for attribute in version.attributes.keys() {
            if let Some(key) = IndexKey::of_attribute(attribute) {
                let index = indexes.indexes.entry(key.clone()).or_default();
                index.buckets[bucket].packages.insert(package.to_string());
                index.buckets[bucket].stale = true;
                indexes
                    .placed
                    .entry(package.to_string())
                    .or_default()
                    .insert(key);
            }
        }
    }
    Ok(())
}

/// Renders every stale bucket again from the packages' versions.
fn render_stale(view: &impl StateRead, registry: &str, indexes: &mut Registry) -> ReadResult<()> {
    for (key, index) in &mut indexes.indexes {
        let attribute = key.attribute();
        let control = format!("{CONTROL}{}", key.architecture);
        for bucket in index.buckets.iter_mut().filter(|bucket| bucket.stale) {
            let mut text = String::new();
            for package in &bucket.packages {
                for version in view.versions(registry, package)? {
                    if version.attributes.contains_key(&attribute)
                        && let Some(paragraph) = version.attributes.get(&control)
                    {
                        text.push_str(paragraph);
                        text.push('\n');
                    }
                }
            }
            bucket.gzip = if text.is_empty() {
                Bytes::new()
            } else {
                gzip(text.as_bytes())
            };
            bucket.plain = Bytes::from(text);
            bucket.stale = false;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn index_keys_round_trip_through_attributes() {
        let key = IndexKey::of_attribute("deb.dist/stable/main/amd64").expect("a key");
        assert_eq!(key.attribute(), "deb.dist/stable/main/amd64");
        assert_eq!(IndexKey::of_attribute("deb.dist/stable/main"), None);
        assert_eq!(IndexKey::of_attribute("deb.control/amd64"), None);
    }

    #[test]
    fn gzip_members_one_after_another_read_as_one_stream() {
        let served = Served {
            plain: Parts(vec![Bytes::from("a\n"), Bytes::from("b\n")]),
            gzip: Parts(vec![gzip(b"a\n"), gzip(b"b\n")]),
        };
        let mut unpacked = String::new();
        flate2::read::MultiGzDecoder::new(&served.gzip.concatenated()[..])
            .read_to_string(&mut unpacked)
            .expect("gzip");
        assert_eq!(unpacked, "a\nb\n");
        assert_eq!(served.plain.len(), 4);
        let empty = Served::default().gzip_or_empty().concatenated();
        let mut nothing = String::new();
        flate2::read::GzDecoder::new(&empty[..])
            .read_to_string(&mut nothing)
            .expect("an empty gzip stream");
        assert!(nothing.is_empty());
        assert!(bucket_of("hello") < BUCKETS);
    }
}
