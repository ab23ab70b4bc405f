//! Documents rendered from a package's versions (npm packuments, PyPI project pages): rendered once
//! per change of the package and kept, as bytes with an entity tag, until it changes again.
//!
//! A package's record counts every change of the package, its versions and its tags (its
//! `generation`), so a document is looked up by that count: a request reads the package record (one
//! small read), finds the bytes rendered for its generation, and serves them without touching the
//! versions. A change makes a new generation; its documents are rendered by the first request that
//! wants them, and the old ones leave the bounded cache in time.
//!
//! Remote registries' upstream documents are kept here parsed too, by the digest of the bytes they
//! were parsed from ([`Documents::parsed`]): a packument of thousands of versions takes a tenth of
//! a second to parse, and a cold install reads each one at least twice (for the packument, then for
//! the tarball it names).

use std::any::Any;
use std::sync::Arc;

use arca_protocol::Sha256;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

/// What a document is: which package, at which generation, rendered how (the format's variant and
/// anything else the bytes depend on, such as the base URL links are made from).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentKey {
    /// The registry.
    pub registry: String,
    /// The package.
    pub package: String,
    /// The package's generation the document was rendered from.
    pub generation: u64,
    /// The rendering: the document kind and what else it depends on.
    pub variant: String,
}

/// A rendered document, plain and gzip-compressed (package managers ask for gzip: a packument of
/// thousands of versions shrinks twentyfold).
#[derive(Debug)]
pub struct Rendered {
    /// The bytes served.
    pub bytes: Bytes,
    /// The same, gzip-compressed.
    pub gzipped: Bytes,
    /// Its entity tag, quoted.
    pub etag: String,
    /// The entity tag of the compressed form (another representation, another tag).
    pub gzipped_etag: String,
}

impl Rendered {
    fn new(bytes: Vec<u8>) -> Rendered {
        let hash = blake3::hash(&bytes).to_hex();
        let etag = format!("\"{}\"", &hash[..32]);
        let gzipped_etag = format!("\"{}-gzip\"", &hash[..32]);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        // Writing to a Vec cannot fail.
        let gzipped = std::io::Write::write_all(&mut encoder, &bytes)
            .and_then(|()| encoder.finish())
            .unwrap_or_default();
        Rendered {
            bytes: Bytes::from(bytes),
            gzipped: Bytes::from(gzipped),
            etag,
            gzipped_etag,
        }
    }

    /// The document as an answer of `content_type` (gzip-compressed when the request accepts it),
    /// or 304 when the request's `If-None-Match` names it already.
    pub fn respond(&self, request: &HeaderMap, content_type: &'static str) -> Response {
        let gzip = !self.gzipped.is_empty() && accepts(request, header::ACCEPT_ENCODING, "gzip");
        let etag = if gzip { &self.gzipped_etag } else { &self.etag };
        let unchanged = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| tag.trim() == etag || tag.trim() == "*");
        let mut response = if unchanged {
            StatusCode::NOT_MODIFIED.into_response()
        } else if gzip {
            self.gzipped.clone().into_response()
        } else {
            self.bytes.clone().into_response()
        };
        let headers = response.headers_mut();
        if gzip {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        headers.insert(
            header::VARY,
            HeaderValue::from_static("Accept, Accept-Encoding"),
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(etag) = HeaderValue::from_str(etag) {
            headers.insert(header::ETAG, etag);
        }
        response
    }
}

/// True when the request's `header` (an `Accept`-style list) names `item` without `q=0`.
pub fn accepts(request: &HeaderMap, header: header::HeaderName, item: &str) -> bool {
    let refused = |param: &str| {
        param
            .strip_prefix("q=")
            .and_then(|q| q.trim().parse::<f32>().ok())
            == Some(0.0)
    };
    request
        .get_all(header)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|listed| {
            let mut parts = listed.split(';').map(str::trim);
            parts.next() == Some(item) && !parts.any(refused)
        })
}

/// The node's rendered documents, bounded in bytes.
pub struct Documents {
    cache: foyer_memory::Cache<DocumentKey, Arc<Rendered>>,
    parsed: foyer_memory::Cache<ParsedKey, Parsed>,
}

/// What an upstream document was parsed into, and from which bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ParsedKey {
    /// What was parsed, and anything else the parse depends on (`npm packument <name>`, say).
    pub what: String,
    /// The sha256 of the bytes parsed.
    pub sha256: Sha256,
}

/// A parsed document (of the type its [`ParsedKey::what`] says) and the size of its source.
#[derive(Clone)]
struct Parsed {
    value: Arc<dyn Any + Send + Sync>,
    source_bytes: usize,
}

/// Parsed documents' memory, per byte of their source (JSON trees take several times the text).
const PARSED_WEIGHT_PER_BYTE: usize = 4;

impl Documents {
    /// A cache keeping up to `bytes` of rendered documents.
    pub fn new(bytes: usize) -> Documents {
        let cache = foyer_memory::CacheBuilder::new(bytes.max(1))
            .with_weighter(|key: &DocumentKey, document: &Arc<Rendered>| {
                document.bytes.len()
                    + document.gzipped.len()
                    + key.variant.len()
                    + key.package.len()
            })
            .build();
        let parsed = foyer_memory::CacheBuilder::new(bytes.max(1))
            .with_weighter(|key: &ParsedKey, parsed: &Parsed| {
                parsed.source_bytes.saturating_mul(PARSED_WEIGHT_PER_BYTE) + key.what.len()
            })
            .build();
        Documents { cache, parsed }
    }

    /// The document `key` names, as `parse` makes it from its `source_bytes` bytes when it is not
    /// kept (or was kept as another type).
    pub async fn parsed<T, E, F>(
        &self,
        key: ParsedKey,
        source_bytes: usize,
        parse: F,
    ) -> Result<Arc<T>, E>
    where
        T: Any + Send + Sync,
        F: Future<Output = Result<T, E>>,
    {
        if let Some(kept) = self.parsed.get(&key)
            && let Ok(value) = kept.value().value.clone().downcast::<T>()
        {
            return Ok(value);
        }
        let value = Arc::new(parse.await?);
        self.parsed.insert(
            key,
            Parsed {
                value: value.clone(),
                source_bytes,
            },
        );
        Ok(value)
    }

    /// The document `key` names, rendered by `render` when it is not kept.
    pub fn get_or_render<E>(
        &self,
        key: DocumentKey,
        render: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Arc<Rendered>, E> {
        if let Some(kept) = self.cache.get(&key) {
            return Ok(kept.value().clone());
        }
        let rendered = Arc::new(Rendered::new(render()?));
        self.cache.insert(key, rendered.clone());
        Ok(rendered)
    }
}

impl Default for Documents {
    fn default() -> Self {
        Documents::new(64 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(generation: u64) -> DocumentKey {
        DocumentKey {
            registry: "r".into(),
            package: "p".into(),
            generation,
            variant: "full".into(),
        }
    }

    #[tokio::test]
    async fn an_upstream_document_is_parsed_once_per_content() {
        let documents = Documents::new(1 << 20);
        let key = |byte: u8| ParsedKey {
            what: "test document".into(),
            sha256: Sha256([byte; 32]),
        };
        let parses = std::sync::atomic::AtomicUsize::new(0);
        let parses = &parses;
        let parse = |text: &'static str| async move {
            parses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok::<_, ()>(text.to_string())
        };
        let first = documents.parsed(key(1), 3, parse("one")).await;
        let again = documents.parsed(key(1), 3, parse("other")).await;
        assert_eq!(first.expect("parsed").as_str(), "one");
        assert_eq!(
            again.expect("kept").as_str(),
            "one",
            "kept, not parsed again"
        );
        let changed = documents.parsed(key(2), 3, parse("two")).await;
        assert_eq!(changed.expect("parsed").as_str(), "two");
        // Kept as another type: parsed again, as the type asked for.
        let number = documents
            .parsed(key(2), 3, async { Ok::<_, ()>(2u32) })
            .await;
        assert_eq!(*number.expect("parsed"), 2);
        assert_eq!(parses.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn a_document_is_rendered_once_per_generation_and_answers_304_to_its_tag() {
        let documents = Documents::new(1 << 20);
        let mut renders = 0;
        let mut render = |text: &str| {
            renders += 1;
            Ok::<_, ()>(text.as_bytes().to_vec())
        };
        let first = documents
            .get_or_render(key(1), || render("one"))
            .expect("rendered");
        let again = documents
            .get_or_render(key(1), || render("other"))
            .expect("kept");
        assert_eq!(again.bytes, "one", "the kept bytes are served");
        let next = documents
            .get_or_render(key(2), || render("two"))
            .expect("rendered");
        assert_eq!(next.bytes, "two");
        assert_ne!(first.etag, next.etag);
        assert_eq!(renders, 2);

        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, first.etag.parse().expect("header"));
        assert_eq!(
            first.respond(&request, "application/json").status(),
            StatusCode::NOT_MODIFIED
        );
        let fresh = next.respond(&request, "application/json");
        assert_eq!(fresh.status(), StatusCode::OK);
        assert_eq!(fresh.headers()[header::ETAG], next.etag.as_str());
        assert!(fresh.headers().get(header::CONTENT_ENCODING).is_none());

        request.insert(
            header::ACCEPT_ENCODING,
            "deflate, gzip".parse().expect("header"),
        );
        let compressed = next.respond(&request, "application/json");
        assert_eq!(compressed.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(
            compressed.headers()[header::ETAG],
            next.gzipped_etag.as_str()
        );
        request.insert(
            header::IF_NONE_MATCH,
            next.gzipped_etag.parse().expect("header"),
        );
        let revalidated = next.respond(&request, "application/json");
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
        let mut plain = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&next.gzipped[..]),
            &mut plain,
        )
        .expect("gzip");
        assert_eq!(plain, "two");
    }
}
