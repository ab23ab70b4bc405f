//! Search over every registry: a tantivy index of this node's versions in `<data>/search/`, kept
//! current from the replicated state, and the ranked, filtered, permission-checked queries it
//! answers (`GET /api/v1/search`, npm's `/-/v1/search`).
//!
//! - **What is indexed.** One document per version: the package name (tokenized, and normalized
//!   whole for exact matches), the version, the description and keywords, a README where the
//!   ecosystem keeps one, file names, tags, OCI annotations, key:value metadata, the firewall's
//!   status and when it was pushed ([`document`]).
//! - **Kept current.** Each node indexes what its own applied state says: an indexer follows the
//!   packages the applied commands changed ([`crate::meta::changes`]) and re-reads just those, a
//!   registry changed as a whole at most every [`REGISTRY_REINDEX_EVERY`]; each commit records the
//!   applied log index it reflects. After a restart that index is compared with the state's: if
//!   they differ (changes came while the node was down, or a snapshot replaced the state), the
//!   index is rebuilt from the state in the background while the old one keeps answering.
//! - **Ranking.** BM25 over the fields, a name match weighing most, an exact name most of all;
//!   typos of one letter (two in long words) forgiven in names; the last word matched as a prefix
//!   (type-ahead); newer versions a little ahead; one hit per package, its best version.
//! - **Meaning.** With a word-embedding model (`search_embeddings`), each query word is also
//!   matched by the model's words nearest it in meaning, weighted below a match of the word itself
//!   ([`meaning`]).
//! - **Permissions.** A query names the registries its caller may read; nothing else is ever
//!   matched.

pub mod document;
pub mod meaning;
pub mod query;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arca_protocol::api::SearchHit;
use arca_protocol::model::Version;
use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, TantivyDocument, Value,
};
use tantivy::{DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader, Term};

use self::document::{SHOWN_DESCRIPTION, VersionText, normalized_name, version_text};
use self::meaning::{Embeddings, EmbeddingsError};
use self::query::ParsedQuery;
use crate::meta::changes::ChangedAnywhere;
use crate::meta::{Meta, ReadView, StateRead, StoreError};

/// The index's layout; an index of another is rebuilt.
const SCHEMA_VERSION: &str = "4";
/// The file in the index directory that names its layout.
const SCHEMA_FILE: &str = "arca-schema";
/// Memory the writer buffers documents in before it writes a segment.
const WRITER_MEMORY: usize = 64 * 1024 * 1024;
/// How long the indexer waits for changes before looking again.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// A registry changed as a whole (its policies, a remote registry's cached documents) is indexed
/// again at most this often.
pub const REGISTRY_REINDEX_EVERY: Duration = Duration::from_secs(30);
/// Packages read per page while indexing a whole registry.
const PACKAGE_PAGE: usize = 1000;
/// The most hits a query answers.
pub const MAX_LIMIT: usize = 100;
/// Versions looked at per hit wanted, to find that many distinct packages.
const VERSIONS_PER_HIT: usize = 5;
/// The most versions one query looks at.
const MAX_VERSIONS_LOOKED_AT: usize = 2000;
/// How much a version newer by a month counts over an old one, at most (a factor on the score).
const RECENCY_WEIGHT: f32 = 0.25;
/// How much downloads lift a package: its score is multiplied by `1 + this × log10(1 + downloads)`
/// (×1.3 for a thousand downloads, ×1.6 for a million).
const DOWNLOADS_WEIGHT: f32 = 0.1;
/// Versions of one package whose scores differ by less than this fraction match as well (the
/// newest of them is the package's hit).
const SAME_SCORE: f32 = 0.02;
/// Boosts of the kinds of match.
const EXACT_NAME_BOOST: f32 = 8.0;
const NAME_BOOST: f32 = 3.0;
const NAME_PREFIX_BOOST: f32 = 1.5;
const FUZZY_BOOST: f32 = 0.8;
const SUMMARY_BOOST: f32 = 1.5;
const VERSION_BOOST: f32 = 2.0;
/// What a match by meaning weighs against a match of the word itself (times the similarity).
const MEANING_WEIGHT: f32 = 0.5;

/// Why the index could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The index failed.
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The index directory could not be used.
    #[error("search index directory: {0}")]
    Io(#[from] std::io::Error),
    /// The index directory could not be opened.
    #[error("search index directory: {0}")]
    Directory(#[from] tantivy::directory::error::OpenDirectoryError),
    /// The state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The query cannot be understood.
    #[error(transparent)]
    Query(#[from] query::QueryError),
    /// The embedding model cannot be used.
    #[error(transparent)]
    Embeddings(#[from] EmbeddingsError),
    /// The task answering the query failed.
    #[error("search task: {0}")]
    Task(String),
}

/// The fields of a version's document.
#[derive(Debug, Clone, Copy)]
struct Fields {
    /// `registry \0 package`: what a package's documents are deleted by.
    package_key: Field,
    /// `registry \0 package \0 version`: what a version's document is deleted by.
    version_key: Field,
    registry: Field,
    package_type: Field,
    package: Field,
    version: Field,
    name: Field,
    name_exact: Field,
    summary: Field,
    description: Field,
    body: Field,
    metadata: Field,
    status: Field,
    /// Each tag pointing at the version, whole: which documents hold a tag's word (a tag that
    /// moves away is taken out of the version it left).
    tag: Field,
    pushed: Field,
}

impl Fields {
    fn schema() -> (Schema, Fields) {
        let mut builder = Schema::builder();
        let fields = Fields {
            package_key: builder.add_text_field("package_key", STRING),
            version_key: builder.add_text_field("version_key", STRING),
            registry: builder.add_text_field("registry", STRING | STORED),
            package_type: builder.add_text_field("type", STRING | STORED),
            package: builder.add_text_field("package", STORED),
            version: builder.add_text_field("version", STRING | STORED),
            name: builder.add_text_field("name", TEXT),
            name_exact: builder.add_text_field("name_exact", STRING),
            summary: builder.add_text_field("summary", TEXT),
            description: builder.add_text_field("description", STORED),
            body: builder.add_text_field("body", TEXT),
            metadata: builder.add_text_field("metadata", STRING),
            status: builder.add_text_field("status", STRING | STORED),
            tag: builder.add_text_field("tag", STRING),
            pushed: builder.add_u64_field("pushed", INDEXED | FAST | STORED),
        };
        (builder.build(), fields)
    }
}

fn package_key(registry: &str, package: &str) -> String {
    format!("{registry}\0{package}")
}

fn version_key(registry: &str, package: &str, version: &str) -> String {
    format!("{registry}\0{package}\0{version}")
}

/// The words of `text` as the index's default tokenizer makes them: runs of letters and digits,
/// lower-cased.
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The search index of one node.
pub struct SearchIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    /// The applied log index the last commit reflects.
    indexed_to: AtomicU64,
    /// The word-embedding model queries are widened with, when the node has one.
    embeddings: Option<Embeddings>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("indexed_to", &self.indexed_to.load(Ordering::Relaxed))
            .finish()
    }
}

impl SearchIndex {
    /// Opens the index in `dir` (made, or made again when it has another layout or cannot be
    /// opened: it is derived from the state, which rebuilds it), its queries widened by meaning
    /// with `embeddings` when given.
    pub fn open(dir: &Path, embeddings: Option<Embeddings>) -> Result<SearchIndex, SearchError> {
        let marker = dir.join(SCHEMA_FILE);
        let current = std::fs::read_to_string(&marker).is_ok_and(|v| v.trim() == SCHEMA_VERSION);
        if !current && dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        let (reader, writer, indexed_to) = match Self::open_parts(dir) {
            Ok(parts) => parts,
            Err(error) => {
                tracing::warn!(%error, dir = %dir.display(), "the search index cannot be opened; building it again");
                std::fs::remove_dir_all(dir)?;
                Self::open_parts(dir)?
            }
        };
        std::fs::write(&marker, SCHEMA_VERSION)?;
        Ok(SearchIndex {
            reader,
            writer: Mutex::new(writer),
            fields: Fields::schema().1,
            indexed_to: AtomicU64::new(indexed_to),
            embeddings,
        })
    }

    /// The reader, the writer and the applied log index of the index in `dir`.
    fn open_parts(dir: &Path) -> Result<(IndexReader, IndexWriter, u64), SearchError> {
        std::fs::create_dir_all(dir)?;
        let directory = tantivy::directory::MmapDirectory::open(dir)?;
        let index = Index::open_or_create(directory, Fields::schema().0)?;
        let writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let indexed_to = index
            .load_metas()?
            .payload
            .and_then(|payload| payload.parse().ok())
            .unwrap_or(0);
        Ok((reader, writer, indexed_to))
    }

    /// The applied log index the index reflects.
    pub fn indexed_to(&self) -> u64 {
        self.indexed_to.load(Ordering::Acquire)
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The document of `version` of `package` in `registry`.
    fn document(
        &self,
        registry: &str,
        package_type: &str,
        package: &str,
        version: &Version,
        tags: &[String],
    ) -> TantivyDocument {
        let f = self.fields;
        let VersionText {
            description,
            keywords,
            body,
            metadata,
            statuses,
        } = version_text(version, tags);
        let mut doc = TantivyDocument::default();
        doc.add_text(f.package_key, package_key(registry, package));
        doc.add_text(f.version_key, version_key(registry, package, &version.name));
        doc.add_text(f.registry, registry);
        doc.add_text(f.package_type, package_type);
        doc.add_text(f.package, package);
        doc.add_text(f.version, &version.name);
        doc.add_text(f.name, package);
        doc.add_text(f.name_exact, normalized_name(package));
        doc.add_text(f.summary, &description);
        doc.add_text(f.summary, keywords.join(" "));
        doc.add_text(
            f.description,
            description
                .chars()
                .take(SHOWN_DESCRIPTION)
                .collect::<String>(),
        );
        for text in body {
            doc.add_text(f.body, text);
        }
        for pair in metadata {
            doc.add_text(f.metadata, pair);
        }
        for status in statuses {
            doc.add_text(f.status, status);
        }
        for tag in tags {
            doc.add_text(f.tag, tag);
        }
        doc.add_u64(f.pushed, version.created_at);
        doc
    }

    /// Replaces the documents of `package` of `registry` with what `view` says it holds.
    fn index_package(
        &self,
        writer: &IndexWriter,
        view: &ReadView,
        registry: &str,
        package_type: &str,
        package: &str,
    ) -> Result<u64, SearchError> {
        writer.delete_term(Term::from_field_text(
            self.fields.package_key,
            &package_key(registry, package),
        ));
        let mut tags_by_version: HashMap<String, Vec<String>> = HashMap::new();
        for (tag, version) in view.tags(registry, package)? {
            tags_by_version.entry(version).or_default().push(tag);
        }
        let mut added = 0;
        for version in view.versions(registry, package)? {
            let tags = tags_by_version.remove(&version.name).unwrap_or_default();
            writer.add_document(self.document(registry, package_type, package, &version, &tags))?;
            added += 1;
        }
        Ok(added)
    }

    /// Replaces the documents of `registry` with what `view` says it holds (none, when it is gone).
    fn index_registry(
        &self,
        writer: &IndexWriter,
        view: &ReadView,
        registry: &str,
    ) -> Result<u64, SearchError> {
        writer.delete_term(Term::from_field_text(self.fields.registry, registry));
        let Some(record) = view.registry(registry)? else {
            return Ok(0);
        };
        let package_type = record.package_type.as_str().to_lowercase();
        let mut after: Option<String> = None;
        let mut added = 0;
        loop {
            let page = view.packages(registry, after.as_deref(), PACKAGE_PAGE)?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.name.clone());
            for package in &page {
                added +=
                    self.index_package(writer, view, registry, &package_type, &package.name)?;
            }
            if page.len() < PACKAGE_PAGE {
                break;
            }
        }
        Ok(added)
    }

    /// Commits what was written as reflecting applied log index `reached`, and lets queries see it.
    fn commit(&self, writer: &mut IndexWriter, reached: u64) -> Result<(), SearchError> {
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&reached.to_string());
        prepared.commit()?;
        self.reader.reload()?;
        self.indexed_to.store(reached, Ordering::Release);
        Ok(())
    }

    /// Builds the whole index again from `view`, which reflects log index `reached`.
    fn rebuild(&self, view: &ReadView, reached: u64) -> Result<u64, SearchError> {
        let started = Instant::now();
        let mut writer = self.writer();
        writer.delete_all_documents()?;
        let mut added = 0;
        for record in view.registries()? {
            added += self.index_registry(&writer, view, &record.registry.name)?;
        }
        self.commit(&mut writer, reached)?;
        tracing::info!(
            versions = added,
            seconds = started.elapsed().as_secs_f64(),
            "search index rebuilt"
        );
        Ok(added)
    }

    /// Replaces the documents of `versions` of `package` of `registry` with what `view` says, and
    /// of the versions a tag of the package has moved away from since they were indexed.
    fn index_versions(
        &self,
        writer: &IndexWriter,
        view: &ReadView,
        (registry, package_type, package): (&str, &str, &str),
        versions: &BTreeSet<String>,
    ) -> Result<(), SearchError> {
        let tags = view.tags(registry, package)?;
        let mut versions = versions.clone();
        versions.extend(self.versions_tags_left(registry, package, &tags)?);
        for name in &versions {
            writer.delete_term(Term::from_field_text(
                self.fields.version_key,
                &version_key(registry, package, name),
            ));
            let Some(version) = view.version(registry, package, name)? else {
                continue;
            };
            let own: Vec<String> = tags
                .iter()
                .filter(|(_, target)| **target == version.name)
                .map(|(tag, _)| tag.clone())
                .collect();
            writer.add_document(self.document(registry, package_type, package, &version, &own))?;
        }
        Ok(())
    }

    /// The versions of `package` whose documents (as last committed) hold one of `tags` that now
    /// points at another version.
    fn versions_tags_left(
        &self,
        registry: &str,
        package: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<BTreeSet<String>, SearchError> {
        let mut left = BTreeSet::new();
        if tags.is_empty() {
            return Ok(left);
        }
        let searcher = self.reader.searcher();
        let in_package =
            Term::from_field_text(self.fields.package_key, &package_key(registry, package));
        for (tag, target) in tags {
            let query = BooleanQuery::new(vec![
                (
                    Occur::Must,
                    Box::new(TermQuery::new(in_package.clone(), IndexRecordOption::Basic))
                        as Box<dyn Query>,
                ),
                (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(self.fields.tag, tag),
                        IndexRecordOption::Basic,
                    )),
                ),
            ]);
            for address in searcher.search(&query, &DocSetCollector)? {
                let doc: TantivyDocument = searcher.doc(address)?;
                if let Some(version) = doc.get_first(self.fields.version).and_then(|v| v.as_str())
                    && version != target
                {
                    left.insert(version.to_string());
                }
            }
        }
        Ok(left)
    }

    /// Takes in what changed: `packages` (the versions changed, or all), and the `registries`
    /// changed as a whole.
    fn update(
        &self,
        view: &ReadView,
        packages: &BTreeMap<(String, String), Option<BTreeSet<String>>>,
        registries: &BTreeSet<String>,
        reached: u64,
    ) -> Result<(), SearchError> {
        let mut writer = self.writer();
        let mut types: HashMap<String, Option<String>> = HashMap::new();
        for registry in registries {
            self.index_registry(&writer, view, registry)?;
        }
        for ((registry, package), versions) in packages {
            if registries.contains(registry) {
                continue;
            }
            let package_type = match types.get(registry) {
                Some(known) => known.clone(),
                None => {
                    let found = view
                        .registry(registry)?
                        .map(|r| r.package_type.as_str().to_lowercase());
                    types.insert(registry.clone(), found.clone());
                    found
                }
            };
            match (package_type, versions) {
                (Some(package_type), Some(versions)) => self.index_versions(
                    &writer,
                    view,
                    (registry, &package_type, package),
                    versions,
                )?,
                (Some(package_type), None) => {
                    self.index_package(&writer, view, registry, &package_type, package)?;
                }
                (None, _) => {
                    writer.delete_term(Term::from_field_text(
                        self.fields.package_key,
                        &package_key(registry, package),
                    ));
                }
            }
        }
        self.commit(&mut writer, reached)
    }

    /// Keeps the index current with `meta`'s applied state, for as long as the node runs.
    pub async fn run(self: Arc<Self>, meta: Meta) {
        let mut after = self.indexed_to();
        // An index from before the state the node opened on is rebuilt (the changes in between
        // are not known: `anywhere_since` says everything); so is one ahead of the state (the
        // data directory was put back from a copy) and an empty one.
        let mut rebuild = after == 0 || after > meta.changes().last();
        let mut deferred: BTreeSet<String> = BTreeSet::new();
        let mut reindexed: HashMap<String, Instant> = HashMap::new();
        let mut changes = meta.watch();
        loop {
            let (changed, reached) = meta.changes().anywhere_since(after);
            if matches!(changed, ChangedAnywhere::Everything) {
                rebuild = true;
            }
            let due: BTreeSet<String> = deferred
                .iter()
                .filter(|r| {
                    reindexed
                        .get(*r)
                        .is_none_or(|at| at.elapsed() >= REGISTRY_REINDEX_EVERY)
                })
                .cloned()
                .collect();
            if reached == after && !rebuild && due.is_empty() {
                let _ = tokio::time::timeout(IDLE_WAIT, changes.changed()).await;
                continue;
            }
            let (mut packages, mut registries) = match changed {
                ChangedAnywhere::Some {
                    packages,
                    registries,
                } => (packages, registries),
                ChangedAnywhere::Everything => Default::default(),
            };
            // A registry indexed whole a moment ago waits; its packages' own changes do not.
            for registry in std::mem::take(&mut registries) {
                let recent = reindexed
                    .get(&registry)
                    .is_some_and(|at| at.elapsed() < REGISTRY_REINDEX_EVERY);
                if recent {
                    deferred.insert(registry);
                } else {
                    registries.insert(registry);
                }
            }
            for registry in &due {
                deferred.remove(registry);
                registries.insert(registry.clone());
            }
            packages.retain(|(registry, _), _| !registries.contains(registry));
            let index = self.clone();
            let view = match meta.view() {
                Ok(view) => view,
                Err(error) => {
                    tracing::warn!(%error, "search index: reading the state");
                    tokio::time::sleep(IDLE_WAIT).await;
                    continue;
                }
            };
            let whole = rebuild;
            let work_registries = registries.clone();
            // The index claims only what it took in: while a registry waits, its position stays.
            let claimed = if deferred.is_empty() {
                reached
            } else {
                after.min(reached)
            };
            let outcome = crate::blocking::spawn(move || {
                if whole {
                    index.rebuild(&view, reached).map(drop)
                } else {
                    index.update(&view, &packages, &work_registries, claimed)
                }
            })
            .await;
            match outcome {
                Ok(Ok(())) => {
                    after = reached;
                    if rebuild {
                        rebuild = false;
                        deferred.clear();
                    }
                    for registry in registries {
                        reindexed.insert(registry, Instant::now());
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "search index: taking in changes");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "search index: the indexing task failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// The best `limit` packages after `offset` matching `parsed` among `readable` registries
    /// (`None`: every registry), each with its best version, and how many versions match. A
    /// package's `downloads` (registry, package) lift it among those found.
    pub fn search(
        &self,
        parsed: &ParsedQuery,
        readable: Option<&[String]>,
        (offset, limit): (usize, usize),
        downloads: impl Fn(&str, &str) -> u64,
    ) -> Result<(Vec<SearchHit>, u64), SearchError> {
        if readable.is_some_and(<[String]>::is_empty) {
            return Ok((Vec::new(), 0));
        }
        let query = self.query(parsed, readable);
        let searcher = self.reader.searcher();
        let wanted = ((offset + limit) * VERSIONS_PER_HIT).clamp(1, MAX_VERSIONS_LOOKED_AT);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let recency = TopDocs::with_limit(wanted).tweak_score(move |segment: &SegmentReader| {
            let pushed = segment.fast_fields().u64("pushed").ok();
            move |doc: DocId, score: Score| {
                let at = pushed
                    .as_ref()
                    .and_then(|column| column.first(doc))
                    .unwrap_or(0);
                let age_days = now.saturating_sub(at) as f32 / 86_400_000.0;
                let base = if score > 0.0 { score } else { 1.0 };
                base * (1.0 + RECENCY_WEIGHT / (1.0 + age_days / 30.0))
            }
        });
        let (top, total) = searcher.search(&query, &(recency, Count))?;
        let f = self.fields;
        // One hit per package: its best version, the newest of those that match as well.
        let mut hits: Vec<SearchHit> = Vec::new();
        let mut by_package: HashMap<String, usize> = HashMap::new();
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let text = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let hit = SearchHit {
                registry: text(f.registry),
                package_type: text(f.package_type),
                package: text(f.package),
                version: text(f.version),
                description: text(f.description),
                status: text(f.status),
                pushed_at: doc
                    .get_first(f.pushed)
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0),
                score,
            };
            match by_package.get(&package_key(&hit.registry, &hit.package)) {
                Some(&at) => {
                    let kept = &mut hits[at];
                    let as_good = hit.score >= kept.score * (1.0 - SAME_SCORE);
                    if as_good && hit.pushed_at > kept.pushed_at {
                        *kept = SearchHit {
                            score: kept.score.max(hit.score),
                            ..hit
                        };
                    }
                }
                None => {
                    by_package.insert(package_key(&hit.registry, &hit.package), hits.len());
                    hits.push(hit);
                }
            }
        }
        for hit in &mut hits {
            let downloads = downloads(&hit.registry, &hit.package) as f32;
            hit.score *= 1.0 + DOWNLOADS_WEIGHT * (1.0 + downloads).log10();
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        let hits = hits.into_iter().skip(offset).take(limit).collect();
        Ok((hits, total as u64))
    }

    /// [`SearchIndex::search`] off the async workers, with each package's downloads read from
    /// `meta`'s usage figures.
    pub async fn find(
        self: Arc<Self>,
        meta: Meta,
        parsed: ParsedQuery,
        readable: Option<Vec<String>>,
        page: (usize, usize),
    ) -> Result<(Vec<SearchHit>, u64), SearchError> {
        crate::blocking::spawn(move || {
            let view = meta.view()?;
            let downloads = |registry: &str, package: &str| {
                crate::meta::usage::package_downloads(&view, registry, package)
            };
            self.search(&parsed, readable.as_deref(), page, downloads)
        })
        .await
        .map_err(|error| SearchError::Task(error.to_string()))?
    }

    /// The packages matching `words` among `members` (a registry's resolution order), best first,
    /// as a package manager's own search answers through that registry: one hit per package name,
    /// an earlier member's package hiding a later one's. Reading through the registry is what the
    /// caller was allowed, so its members are searched whatever the caller may read of them
    /// directly. Also how many versions matched.
    pub async fn find_in_members(
        self: Arc<Self>,
        meta: Meta,
        members: Vec<String>,
        words: Vec<String>,
        page: (usize, usize),
    ) -> Result<(Vec<SearchHit>, u64), SearchError> {
        let parsed = ParsedQuery {
            words,
            registries: members.clone(),
            ..ParsedQuery::default()
        };
        let (hits, total) = self.find(meta, parsed, None, page).await?;
        let mut chosen: Vec<(usize, SearchHit)> = Vec::new();
        for hit in hits {
            let rank = members
                .iter()
                .position(|member| *member == hit.registry)
                .unwrap_or(usize::MAX);
            match chosen
                .iter_mut()
                .find(|(_, kept)| kept.package == hit.package)
            {
                Some((kept_rank, kept)) if rank < *kept_rank => {
                    *kept_rank = rank;
                    *kept = hit;
                }
                Some(_) => {}
                None => chosen.push((rank, hit)),
            }
        }
        Ok((chosen.into_iter().map(|(_, hit)| hit).collect(), total))
    }

    /// The tantivy query of `parsed` within `readable`.
    fn query(&self, parsed: &ParsedQuery, readable: Option<&[String]>) -> Box<dyn Query> {
        let f = self.fields;
        let term = |field: Field, text: &str| Term::from_field_text(field, text);
        let exact = |field: Field, text: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(term(field, text), IndexRecordOption::Basic))
        };
        let scored = |field: Field, text: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                term(field, text),
                IndexRecordOption::WithFreqs,
            ))
        };
        let boosted = |query: Box<dyn Query>, boost: f32| -> Box<dyn Query> {
            Box::new(BoostQuery::new(query, boost))
        };
        let any_of = |queries: Vec<Box<dyn Query>>| -> Box<dyn Query> {
            Box::new(BooleanQuery::new(
                queries.into_iter().map(|q| (Occur::Should, q)).collect(),
            ))
        };
        let mut must: Vec<Box<dyn Query>> = Vec::new();
        let last = parsed.words.len().saturating_sub(1);
        for (position, word) in parsed.words.iter().enumerate() {
            let mut alternatives: Vec<Box<dyn Query>> = vec![
                boosted(exact(f.version, word), VERSION_BOOST),
                boosted(
                    exact(f.name_exact, &normalized_name(word)),
                    EXACT_NAME_BOOST,
                ),
            ];
            let mut parts: Vec<Box<dyn Query>> = Vec::new();
            let pieces = words_of(word);
            let last_piece = pieces.len().saturating_sub(1);
            for (index, piece) in pieces.iter().enumerate() {
                let mut matches = vec![
                    boosted(scored(f.name, piece), NAME_BOOST),
                    boosted(scored(f.summary, piece), SUMMARY_BOOST),
                    scored(f.body, piece),
                ];
                let typos = match piece.chars().count() {
                    0..=3 => 0,
                    4..=7 => 1,
                    _ => 2,
                };
                for (near, similarity) in self.embeddings.iter().flat_map(|e| e.neighbours(piece)) {
                    let weight = similarity * MEANING_WEIGHT;
                    matches.push(boosted(scored(f.name, &near), NAME_BOOST * weight));
                    matches.push(boosted(scored(f.summary, &near), SUMMARY_BOOST * weight));
                }
                if typos > 0 {
                    matches.push(boosted(
                        Box::new(FuzzyTermQuery::new(term(f.name, piece), typos, true)),
                        FUZZY_BOOST,
                    ));
                }
                if position == last && index == last_piece {
                    matches.push(boosted(
                        Box::new(FuzzyTermQuery::new_prefix(term(f.name, piece), 0, true)),
                        NAME_PREFIX_BOOST,
                    ));
                    matches.push(boosted(
                        Box::new(FuzzyTermQuery::new_prefix(term(f.summary, piece), 0, true)),
                        FUZZY_BOOST,
                    ));
                }
                parts.push(any_of(matches));
            }
            if !parts.is_empty() {
                alternatives.push(Box::new(BooleanQuery::new(
                    parts.into_iter().map(|q| (Occur::Must, q)).collect(),
                )));
            }
            must.push(any_of(alternatives));
        }
        let mut filters: Vec<Box<dyn Query>> = Vec::new();
        if let Some(readable) = readable {
            filters.push(any_of(
                readable.iter().map(|r| exact(f.registry, r)).collect(),
            ));
        }
        if !parsed.registries.is_empty() {
            filters.push(any_of(
                parsed
                    .registries
                    .iter()
                    .map(|r| exact(f.registry, r))
                    .collect(),
            ));
        }
        if !parsed.types.is_empty() {
            filters.push(any_of(
                parsed
                    .types
                    .iter()
                    .map(|t| exact(f.package_type, t))
                    .collect(),
            ));
        }
        if !parsed.statuses.is_empty() {
            filters.push(any_of(
                parsed.statuses.iter().map(|s| exact(f.status, s)).collect(),
            ));
        }
        for pair in &parsed.metadata {
            filters.push(exact(f.metadata, pair));
        }
        for (lower, upper) in &parsed.pushed {
            let bound = |b: &Bound<u64>| b.map(|at| Term::from_field_u64(f.pushed, at));
            filters.push(Box::new(RangeQuery::new(bound(lower), bound(upper))));
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if must.is_empty() {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        clauses.extend(must.into_iter().map(|q| (Occur::Must, q)));
        if parsed.words.len() > 1 {
            let whole = normalized_name(&parsed.words.join("-"));
            clauses.push((
                Occur::Should,
                boosted(exact(f.name_exact, &whole), EXACT_NAME_BOOST),
            ));
        }
        // Filters must match but add nothing to the score.
        clauses.extend(filters.into_iter().map(|q| (Occur::Must, boosted(q, 0.0))));
        Box::new(BooleanQuery::new(clauses))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_that_cannot_be_opened_is_made_again() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("search");
        drop(SearchIndex::open(&path, None).expect("made"));
        std::fs::write(path.join("meta.json"), b"{not json").expect("spoiled");
        let index = SearchIndex::open(&path, None).expect("made again");
        assert_eq!(index.indexed_to(), 0);
    }
}
