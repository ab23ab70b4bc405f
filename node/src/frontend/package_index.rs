//! Whole-registry index documents (a Debian `Packages`, an RPM `primary.xml`) of hosted
//! registries, kept up to date incrementally on each node.
//!
//! A front-end says what each version contributes: entries, each a piece of text under an index
//! key (`(suite, component, arch)` for Debian, the metadata file for RPM). An index's packages are
//! spread over [`BUCKETS`] buckets by a hash of their name; each bucket keeps the names in it and
//! its rendered entries, plain and as one gzip member (a `.gz` file is the members one after
//! another, which gzip readers take as one stream). When packages change (as the node's change
//! history, [`crate::meta::changes`], tells), only their buckets are rendered and compressed
//! again, on the next read: a push costs a bucket, not the index. The whole registry is read once
//! per node start, or when the history does not reach back far enough.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};

use arca_protocol::Version;
use bytes::Bytes;

use crate::AppState;
use crate::frontend::ApiError;
use crate::meta::StateRead;
use crate::meta::changes::ChangesSince;
use crate::meta::view::ReadResult;

/// Buckets per index.
const BUCKETS: usize = 64;

/// What a version contributes to the indexes: each entry's index and text.
pub type Entries<K> = fn(&Version) -> Vec<(K, String)>;

/// A file as served: its parts, to be sent one after another.
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

    /// The sha256 (hex) of the parts together.
    pub fn sha256(&self) -> String {
        let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
        for part in &self.0 {
            hasher.update(part);
        }
        hex::encode(hasher.finish())
    }

    /// The parts as a response body.
    pub fn into_body(self) -> axum::body::Body {
        axum::body::Body::from_stream(futures::stream::iter(
            self.0.into_iter().map(Ok::<Bytes, std::io::Error>),
        ))
    }
}

/// An index's entries, plain and gzip'd, and how many there are.
#[derive(Debug, Clone, Default)]
pub struct Served {
    pub plain: Parts,
    pub gzip: Parts,
    pub entries: u64,
}

impl Served {
    /// `self` followed by `other` (a virtual registry's members, say).
    pub fn extend(&mut self, other: Served) {
        self.plain.0.extend(other.plain.0);
        self.gzip.0.extend(other.gzip.0);
        self.entries += other.entries;
    }

    /// The entries between a header and a footer (an XML document's), plain and gzip'd.
    pub fn enclosed(self, header: &str, footer: &str) -> Served {
        let mut plain = vec![Bytes::from(header.to_string())];
        plain.extend(self.plain.0);
        plain.push(Bytes::from(footer.to_string()));
        let mut gzipped = vec![gzip(header.as_bytes())];
        gzipped.extend(self.gzip.0);
        gzipped.push(gzip(footer.as_bytes()));
        Served {
            plain: Parts(plain),
            gzip: Parts(gzipped),
            entries: self.entries,
        }
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

/// Index files recently served, by registry and SHA-256, for clients that read an older
/// description of the repository (a Debian `InRelease`, an RPM `repomd.xml`) than the index now is.
#[derive(Debug)]
pub struct KeptByHash {
    capacity: usize,
    kept: Mutex<std::collections::VecDeque<(String, String, Parts)>>,
}

impl KeptByHash {
    /// Keeps the last `capacity` files.
    pub fn new(capacity: usize) -> Self {
        KeptByHash {
            capacity,
            kept: Mutex::default(),
        }
    }

    /// Keeps `parts` of `registry` under `sha256`.
    pub fn remember(&self, registry: &str, sha256: &str, parts: &Parts) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept
            .iter()
            .any(|(name, hash, _)| name == registry && hash == sha256)
        {
            return;
        }
        kept.push_back((registry.to_string(), sha256.to_string(), parts.clone()));
        while kept.len() > self.capacity {
            kept.pop_front();
        }
    }

    /// The file of `registry` kept under `sha256`.
    pub fn get(&self, registry: &str, sha256: &str) -> Option<Parts> {
        self.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(name, hash, _)| name == registry && hash == sha256)
            .map(|(_, _, parts)| parts.clone())
    }
}

/// `plain` and its gzip'd form as [`Served`], compressed once per metadata change (under
/// `cache_key`), for a document read whole from elsewhere (a remote registry's upstream index).
pub async fn served_whole(
    state: &AppState,
    cache_key: &str,
    plain: Bytes,
    entries: u64,
) -> Result<Served, ApiError> {
    if plain.is_empty() {
        return Ok(Served::default());
    }
    let to_compress = plain.clone();
    let gzipped = state
        .render_once(cache_key, || async move {
            crate::blocking::spawn(move || gzip(&to_compress))
                .await
                .map_err(ApiError::internal)
        })
        .await?;
    Ok(Served {
        plain: Parts(vec![plain]),
        gzip: Parts(vec![gzipped]),
        entries,
    })
}

/// What the indexes of each remote registry's upstream list, by path (a Debian pool file, an RPM
/// package), as far as this node has read them. A registry deleted and created again under its
/// name starts afresh (entries are kept per registry and creation time).
#[derive(Debug)]
pub struct UpstreamFiles<T> {
    registries: Mutex<HashMap<(String, u64), HashMap<String, T>>>,
}

impl<T> Default for UpstreamFiles<T> {
    fn default() -> Self {
        UpstreamFiles {
            registries: Mutex::default(),
        }
    }
}

impl<T: Clone> UpstreamFiles<T> {
    /// What `registry`'s upstream lists at `path`.
    pub fn get(&self, registry: &arca_protocol::Registry, path: &str) -> Option<T> {
        self.registries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(registry.name.clone(), registry.created_at))?
            .get(path)
            .cloned()
    }

    /// Adds what one of `registry`'s upstream indexes lists.
    pub fn learn(&self, registry: &arca_protocol::Registry, listed: HashMap<String, T>) {
        self.registries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((registry.name.clone(), registry.created_at))
            .or_default()
            .extend(listed);
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
    entries: u64,
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
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    (u64::from_le_bytes(first) % BUCKETS as u64) as usize
}

/// The indexes of one hosted registry.
#[derive(Debug)]
struct Registry<K> {
    /// The change history's index these indexes reflect (`None`: not read yet).
    synced: Option<u64>,
    indexes: BTreeMap<K, Index>,
    /// The indexes each package is in.
    placed: HashMap<String, BTreeSet<K>>,
}

impl<K> Default for Registry<K> {
    fn default() -> Self {
        Registry {
            synced: None,
            indexes: BTreeMap::new(),
            placed: HashMap::new(),
        }
    }
}

/// The indexes of a front-end's hosted registries on this node.
pub struct PackageIndexes<K> {
    entries: Entries<K>,
    registries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Registry<K>>>>>,
}

impl<K> std::fmt::Debug for PackageIndexes<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PackageIndexes(..)")
    }
}

impl<K: Ord + Clone + Send + Sync + 'static> PackageIndexes<K> {
    /// Indexes of the entries `entries` says each version contributes.
    pub fn new(entries: Entries<K>) -> Self {
        PackageIndexes {
            entries,
            registries: Mutex::default(),
        }
    }

    fn registry(&self, name: &str) -> Arc<tokio::sync::Mutex<Registry<K>>> {
        self.registries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// The keys of `registry`'s indexes that hold entries, brought up to date first.
    pub async fn keys(&self, state: &AppState, registry: &str) -> Result<Vec<K>, ApiError> {
        let slot = self.registry(registry);
        let mut indexes = slot.lock().await;
        self.sync(state, registry, &mut indexes).await?;
        Ok(indexes.indexes.keys().cloned().collect())
    }

    /// The index `key` of `registry`, brought up to date first (empty when nothing is in it).
    pub async fn served(
        &self,
        state: &AppState,
        registry: &str,
        key: &K,
    ) -> Result<Served, ApiError> {
        let slot = self.registry(registry);
        let mut indexes = slot.lock().await;
        self.sync(state, registry, &mut indexes).await?;
        let mut served = Served::default();
        if let Some(index) = indexes.indexes.get(key) {
            for bucket in index.buckets.iter().filter(|b| !b.plain.is_empty()) {
                served.plain.0.push(bucket.plain.clone());
                served.gzip.0.push(bucket.gzip.clone());
                served.entries += bucket.entries;
            }
        }
        Ok(served)
    }

    /// Brings `indexes` of `registry` up to the node's applied state: the changed packages'
    /// buckets (or, when the history does not tell, everything) are read and rendered again.
    async fn sync(
        &self,
        state: &AppState,
        registry: &str,
        indexes: &mut Registry<K>,
    ) -> Result<(), ApiError> {
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
        let entries = self.entries;
        let mut taken = std::mem::take(indexes);
        let rebuilt = crate::blocking::spawn(move || {
            let view = state.meta.view()?;
            let updater = Updater {
                view: &view,
                registry: &registry_name,
                entries,
            };
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
                            updater.place(&mut taken, &package)?;
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
                        updater.place(&mut taken, &package)?;
                    }
                }
            }
            updater.render_stale(&mut taken)?;
            taken.indexes.retain(|_, index| {
                index
                    .buckets
                    .iter()
                    .any(|bucket| !bucket.packages.is_empty())
            });
            Ok::<_, crate::meta::view::StoreError>(taken)
        })
        .await;
        match rebuilt {
            Ok(Ok(mut rebuilt)) => {
                rebuilt.synced = Some(reached);
                *indexes = rebuilt;
                Ok(())
            }
            // What was taken is dropped with the failure: the next request reads everything.
            Ok(Err(error)) => Err(error.into()),
            Err(panicked) => Err(ApiError::internal(panicked)),
        }
    }
}

/// Reads packages of one registry into its indexes.
struct Updater<'a, V, K> {
    view: &'a V,
    registry: &'a str,
    entries: Entries<K>,
}

impl<V: StateRead, K: Ord + Clone> Updater<'_, V, K> {
    /// Puts `package` into the buckets of the indexes its versions have entries in, marking them
    /// stale.
    fn place(&self, indexes: &mut Registry<K>, package: &str) -> ReadResult<()> {
        let bucket = bucket_of(package);
        for version in self.view.versions(self.registry, package)? {
            for (key, _) in (self.entries)(&version) {
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
        Ok(())
    }

    /// Renders every stale bucket again from its packages' versions.
    fn render_stale(&self, indexes: &mut Registry<K>) -> ReadResult<()> {
        for (key, index) in &mut indexes.indexes {
            for bucket in index.buckets.iter_mut().filter(|bucket| bucket.stale) {
                let mut text = String::new();
                let mut count = 0;
                for package in &bucket.packages {
                    for version in self.view.versions(self.registry, package)? {
                        for (entry_key, entry) in (self.entries)(&version) {
                            if &entry_key == key {
                                text.push_str(&entry);
                                count += 1;
                            }
                        }
                    }
                }
                bucket.gzip = if text.is_empty() {
                    Bytes::new()
                } else {
                    gzip(text.as_bytes())
                };
                bucket.plain = Bytes::from(text);
                bucket.entries = count;
                bucket.stale = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_members_one_after_another_read_as_one_stream() {
        let served = Served {
            plain: Parts(vec![Bytes::from("a\n"), Bytes::from("b\n")]),
            gzip: Parts(vec![gzip(b"a\n"), gzip(b"b\n")]),
            entries: 2,
        }
        .enclosed("<x>\n", "</x>\n");
        let mut unpacked = String::new();
        flate2::read::MultiGzDecoder::new(&served.gzip.0.concat()[..])
            .read_to_string(&mut unpacked)
            .expect("gzip");
        assert_eq!(unpacked, "<x>\na\nb\n</x>\n");
        assert_eq!(served.plain.len(), unpacked.len() as u64);
        let empty = Served::default().gzip_or_empty().0.concat();
        let mut nothing = String::new();
        flate2::read::GzDecoder::new(&empty[..])
            .read_to_string(&mut nothing)
            .expect("an empty gzip stream");
        assert!(nothing.is_empty());
        assert!(bucket_of("hello") < BUCKETS);
    }
}
