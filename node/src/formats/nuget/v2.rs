//! The NuGet v2 feed at `/nuget/<registry>/`, the OData (Atom) service `nuget.exe` 2.x reads: the
//! service document, `$metadata` (the `V2FeedPackage` entity and the `Search`,
//! `FindPackagesById` and `GetUpdates` functions, which tell the client it may call them),
//! `Packages(Id='<id>',Version='<version>')`, `Packages()` (filtered by id or "latest"),
//! `FindPackagesById()?id='<id>'`, `Search()` (and `$count`s), and `GetUpdates()`. Entries name
//! their package at `package/<id>/<version>`; feeds longer than a page link the next one.
//!
//! The mapped properties (`Id`, `Authors`, `Summary`, `LastUpdated`) are written where the
//! metadata's feed customization puts them: the entry's title, author, summary and updated.

use std::borrow::Cow;

use arca_protocol::{Registry, Role};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use quick_xml::escape::escape;

use super::{Context, Entry, compare_versions, entries, search_ids};
use crate::ecosystems::nuget_version;
use crate::frontend::{ApiError, percent_encode};

/// Entries per feed page.
const PAGE: usize = 100;

/// The `$metadata` document: the feed's entity type and functions.
const METADATA_DOCUMENT: &str = include_str!("v2_metadata.xml");

/// A v2 request, by its path under the registry's root and its query; `None` for what the feed
/// does not serve.
pub(super) async fn route(
    ctx: &Context<'_>,
    path: &str,
    query: Option<&str>,
) -> Result<Option<Response>, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let query = Query::parse(query.unwrap_or_default());
    let (path, count) = match path.strip_suffix("/$count") {
        Some(path) => (path, true),
        None => (path, false),
    };
    let feed = match path {
        "" => return Ok(Some(xml(service_document(ctx)))),
        "$metadata" => return Ok(Some(xml(METADATA_DOCUMENT.to_string()))),
        "Packages" | "Packages()" => {
            let ids = match query.filter().id {
                Some(id) => vec![id],
                None => search_ids(ctx.state, &registry, "").await?,
            };
            Feed {
                name: "Packages",
                entries: collect(ctx, &registry, &ids, |_| true).await?,
            }
        }
        "FindPackagesById()" | "FindPackagesById" => {
            let id = query.text("id").unwrap_or_default().to_ascii_lowercase();
            Feed {
                name: "FindPackagesById",
                entries: collect(ctx, &registry, &[id], |_| true).await?,
            }
        }
        "Search()" | "Search" => {
            let term = query.text("searchTerm").unwrap_or_default();
            let prerelease = query.flag("includePrerelease");
            let ids = search_ids(ctx.state, &registry, &term).await?;
            Feed {
                name: "Search",
                entries: collect(ctx, &registry, &ids, |e| {
                    e.listed && (prerelease || !e.is_prerelease())
                })
                .await?,
            }
        }
        "GetUpdates()" | "GetUpdates" => Feed {
            name: "GetUpdates",
            entries: updates(ctx, &registry, &query).await?,
        },
        _ => {
            let Some((id, version)) = entity_key(path) else {
                return Ok(None);
            };
            let key = nuget_version::normalize(&version).map(|v| v.to_ascii_lowercase());
            let all = v2_entries(ctx, &registry, &id).await?;
            let Some(entry) = all.iter().find(|entry| Some(entry.key()) == key) else {
                return Err(ApiError::not_found(format!("{id} {version} not found")));
            };
            let standing = Standing::of(&all, entry);
            let mut document = String::from(XML_DECLARATION);
            document.push_str(&entry_xml(ctx, entry, &standing, true));
            return Ok(Some(atom(document)));
        }
    };
    let feed = feed.filtered(&query);
    if count {
        return Ok(Some(
            (
                [(header::CONTENT_TYPE, "text/plain")],
                feed.entries.len().to_string(),
            )
                .into_response(),
        ));
    }
    Ok(Some(atom(feed.render(ctx, &query, path))))
}

const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";
const NAMESPACES: &str = "xmlns=\"http://www.w3.org/2005/Atom\" \
    xmlns:d=\"http://schemas.microsoft.com/ado/2007/08/dataservices\" \
    xmlns:m=\"http://schemas.microsoft.com/ado/2007/08/dataservices/metadata\"";

fn xml(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml;charset=utf-8")],
        body,
    )
        .into_response()
}

fn atom(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/atom+xml;charset=utf-8"),
            (
                header::HeaderName::from_static("dataserviceversion"),
                "2.0;",
            ),
        ],
        body,
    )
        .into_response()
}

fn service_document(ctx: &Context<'_>) -> String {
    format!(
        "{XML_DECLARATION}<service xml:base=\"{}/\" xmlns=\"http://www.w3.org/2007/app\" \
         xmlns:atom=\"http://www.w3.org/2005/Atom\"><workspace><atom:title>Default</atom:title>\
         <collection href=\"Packages\"><atom:title>Packages</atom:title></collection></workspace>\
         </service>\n",
        escape(ctx.base_url())
    )
}

/// `Packages(Id='<id>',Version='<version>')`'s id and version.
fn entity_key(path: &str) -> Option<(String, String)> {
    let inner = path.strip_prefix("Packages(")?.strip_suffix(')')?;
    let mut id = None;
    let mut version = None;
    for part in inner.split(',') {
        let (key, value) = part.split_once('=')?;
        let value = value
            .trim()
            .strip_prefix('\'')?
            .strip_suffix('\'')?
            .to_string();
        match key.trim() {
            "Id" => id = Some(value),
            "Version" => version = Some(value),
            _ => return None,
        }
    }
    Some((id?, version?))
}

/// The OData query options and function parameters of a request.
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(query: &str) -> Query {
        let pairs = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let decode = |text: &str| crate::frontend::percent_decode(&text.replace('+', " "));
                Some((decode(key)?, decode(value)?))
            })
            .collect();
        Query { pairs }
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A string parameter: `'text'` (a doubled `''` is one quote).
    fn text(&self, name: &str) -> Option<String> {
        let value = self.raw(name)?.trim();
        let inner = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or(value);
        Some(inner.replace("''", "'"))
    }

    fn flag(&self, name: &str) -> bool {
        self.raw(name).is_some_and(|v| v.trim() == "true")
    }

    fn number(&self, name: &str) -> Option<usize> {
        self.raw(name)?.trim().parse().ok()
    }

    /// What the `$filter` selects: clauses joined by ` and `, each `Id eq '<id>'` (or
    /// `tolower(Id) eq '<id>'`), `IsLatestVersion` or `IsAbsoluteLatestVersion`; other clauses
    /// select nothing less.
    fn filter(&self) -> Filter {
        let mut filter = Filter::default();
        for clause in self.raw("$filter").unwrap_or_default().split(" and ") {
            let clause = clause.trim().trim_start_matches('(').trim_end_matches(')');
            match clause {
                "IsLatestVersion" => filter.latest = true,
                "IsAbsoluteLatestVersion" => filter.absolute_latest = true,
                _ => {
                    let id = clause.split_once(" eq ").and_then(|(left, right)| {
                        let left = left.trim();
                        (left == "Id" || left == "tolower(Id)").then_some(())?;
                        let id = right.trim().strip_prefix('\'')?.strip_suffix('\'')?;
                        Some(id.replace("''", "'").to_ascii_lowercase())
                    });
                    if id.is_some() {
                        filter.id = id;
                    }
                }
            }
        }
        filter
    }
}

/// What a `$filter` selects.
#[derive(Debug, Default)]
struct Filter {
    id: Option<String>,
    latest: bool,
    absolute_latest: bool,
}

/// The "latest" flags of a version.
struct Latest;

impl Latest {
    /// `IsLatestVersion` and `IsAbsoluteLatestVersion` of `entry` among `all` (oldest first).
    fn flags(all: &[Entry], entry: &Entry) -> (bool, bool) {
        let listed = || all.iter().filter(|e| e.listed);
        let latest = listed().rfind(|e| !e.is_prerelease());
        let absolute = listed().next_back();
        (
            latest.is_some_and(|l| l.key() == entry.key()),
            absolute.is_some_and(|l| l.key() == entry.key()),
        )
    }
}

/// One entry with its "latest" flags.
struct FeedEntry {
    entry: Entry,
    standing: Standing,
}

/// Where a version stands among its package's: whether it is the latest (listed, not a
/// prerelease) and the absolute latest, and the package's downloads over every version.
struct Standing {
    latest: bool,
    absolute_latest: bool,
    package_downloads: u64,
}

impl Standing {
    fn of(all: &[Entry], entry: &Entry) -> Standing {
        let (latest, absolute_latest) = Latest::flags(all, entry);
        Standing {
            latest,
            absolute_latest,
            package_downloads: all.iter().map(|entry| entry.downloads).sum(),
        }
    }
}

struct Feed {
    name: &'static str,
    entries: Vec<FeedEntry>,
}

/// The entries of each of `ids` that `keep` keeps (each package's oldest first), with their
/// flags.
async fn collect(
    ctx: &Context<'_>,
    registry: &Registry,
    ids: &[String],
    keep: impl Fn(&Entry) -> bool,
) -> Result<Vec<FeedEntry>, ApiError> {
    let mut out = Vec::new();
    for id in ids {
        let all = v2_entries(ctx, registry, id).await?;
        for entry in all.iter().filter(|entry| keep(entry)) {
            out.push(FeedEntry {
                standing: Standing::of(&all, entry),
                entry: entry.clone(),
            });
        }
    }
    Ok(out)
}

/// The versions of `id` the v2 feed shows: SemVer 1.0 ones only (a pre-release of one
/// alphanumeric label), as one SemVer 2.0 version (`1.0.0-beta.1`) makes `nuget.exe` 2.x refuse the
/// whole feed.
async fn v2_entries(
    ctx: &Context<'_>,
    registry: &Registry,
    id: &str,
) -> Result<Vec<Entry>, ApiError> {
    let is_semver1 = |entry: &Entry| match entry.version.split_once('-') {
        None => true,
        Some((_, label)) => {
            label.starts_with(|c: char| c.is_ascii_alphabetic())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        }
    };
    Ok(entries(ctx, registry, &id.to_ascii_lowercase())
        .await?
        .into_iter()
        .filter(is_semver1)
        .collect())
}

/// `GetUpdates()?packageIds='A|B'&versions='1.0|2.0'&includePrerelease=&includeAllVersions=`: for
/// each package, its listed versions above the one given (only the newest unless all are asked).
async fn updates(
    ctx: &Context<'_>,
    registry: &Registry,
    query: &Query,
) -> Result<Vec<FeedEntry>, ApiError> {
    let ids = query.text("packageIds").unwrap_or_default();
    let versions = query.text("versions").unwrap_or_default();
    let (prerelease, all_versions) = (
        query.flag("includePrerelease"),
        query.flag("includeAllVersions"),
    );
    let mut out = Vec::new();
    for (id, current) in ids.split('|').zip(versions.split('|')) {
        let all = v2_entries(ctx, registry, id).await?;
        let newer: Vec<&Entry> = all
            .iter()
            .filter(|e| e.listed && (prerelease || !e.is_prerelease()))
            .filter(|e| compare_versions(&e.version, current).is_gt())
            .collect();
        let chosen: Vec<&Entry> = if all_versions {
            newer
        } else {
            newer.last().copied().into_iter().collect()
        };
        for entry in chosen {
            out.push(FeedEntry {
                standing: Standing::of(&all, entry),
                entry: entry.clone(),
            });
        }
    }
    Ok(out)
}

impl Feed {
    /// The feed as the `$filter` and `$orderby` options ask (`Version desc` lists each package's
    /// newest first; `Id` orders by id).
    fn filtered(mut self, query: &Query) -> Feed {
        let filter = query.filter();
        self.entries.retain(|FeedEntry { entry, standing }| {
            (!filter.latest || standing.latest)
                && (!filter.absolute_latest || standing.absolute_latest)
                && filter
                    .id
                    .as_ref()
                    .is_none_or(|id| *id == entry.metadata.id.to_ascii_lowercase())
        });
        let order = query.raw("$orderby").unwrap_or_default().trim().to_string();
        let id_of = |e: &FeedEntry| e.entry.metadata.id.to_ascii_lowercase();
        match order.as_str() {
            "Version desc" => self.entries.reverse(),
            "Id" | "Id asc" | "concat(Title,Id)" => self.entries.sort_by_key(id_of),
            "Id desc" => {
                self.entries.sort_by_key(id_of);
                self.entries.reverse();
            }
            _ => {}
        }
        self
    }

    /// The Atom feed: the page `$skip`/`$top` select (at most [`PAGE`] entries), and a link to
    /// the next page when there is more.
    fn render(&self, ctx: &Context<'_>, query: &Query, path: &str) -> String {
        let base = ctx.base_url();
        let skip = query.number("$skip").unwrap_or(0);
        let top = query.number("$top").unwrap_or(usize::MAX);
        let page_size = top.min(PAGE);
        let end = skip.saturating_add(page_size).min(self.entries.len());
        let page = self.entries.get(skip..end).unwrap_or_default();
        let updated = now_text(ctx);
        let mut out = format!(
            "{XML_DECLARATION}<feed xml:base=\"{base}/\" {NAMESPACES}>\
             <id>{base}/{name}</id><title type=\"text\">{name}</title>\
             <updated>{updated}</updated><link rel=\"self\" title=\"{name}\" href=\"{name}\" />",
            base = escape(&base),
            name = self.name,
        );
        for FeedEntry { entry, standing } in page {
            out.push_str(&entry_xml(ctx, entry, standing, false));
        }
        let asked_more = top > page_size && end < self.entries.len();
        if asked_more {
            let mut next: Vec<String> = query
                .pairs
                .iter()
                .filter(|(key, _)| key != "$skip" && key != "$top")
                .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
                .collect();
            next.push(format!("$skip={end}"));
            if top != usize::MAX {
                next.push(format!("$top={}", top - page_size));
            }
            out.push_str(&format!(
                "<link rel=\"next\" href=\"{}\" />",
                escape(format!("{base}/{path}?{}", next.join("&")))
            ));
        }
        out.push_str("</feed>\n");
        out
    }
}

fn now_text(ctx: &Context<'_>) -> String {
    date_text(ctx.state.now_ms())
}

fn date_text(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// The v2 `Dependencies` text: `id:range:framework` items joined by `|` (an empty group keeps
/// its framework: `::net45`).
fn dependencies_text(entry: &Entry) -> String {
    let mut items = Vec::new();
    for group in &entry.metadata.dependency_groups {
        let framework = group.target_framework.as_deref().unwrap_or_default();
        if group.dependencies.is_empty() {
            if !framework.is_empty() {
                items.push(format!("::{framework}"));
            }
            continue;
        }
        for dependency in &group.dependencies {
            items.push(if framework.is_empty() {
                format!("{}:{}", dependency.id, dependency.range)
            } else {
                format!("{}:{}:{framework}", dependency.id, dependency.range)
            });
        }
    }
    items.join("|")
}

/// One `<entry>`; `alone` makes it a document of its own (with the namespaces).
fn entry_xml(ctx: &Context<'_>, entry: &Entry, standing: &Standing, alone: bool) -> String {
    let base = ctx.base_url();
    let metadata = &entry.metadata;
    let key = format!("Packages(Id='{}',Version='{}')", metadata.id, entry.version);
    let created = date_text(entry.published_ms);
    // What nuget.org shows for an unlisted version, and what `nuget.exe` 2.x reads as unlisted.
    let published = if entry.listed {
        created.clone()
    } else {
        "1900-01-01T00:00:00Z".to_string()
    };
    let text = |name: &str, value: Option<&str>| match value {
        Some(value) if !value.is_empty() => format!("<d:{name}>{}</d:{name}>", escape(value)),
        _ => format!("<d:{name} m:null=\"true\" />"),
    };
    let typed = |name: &str, kind: &str, value: String| {
        format!("<d:{name} m:type=\"Edm.{kind}\">{value}</d:{name}>")
    };
    let properties = [
        text("Version", Some(&entry.version)),
        text("NormalizedVersion", Some(&entry.version)),
        text("Copyright", metadata.copyright.as_deref()),
        typed("Created", "DateTime", created.clone()),
        text("Dependencies", Some(&dependencies_text(entry))),
        text("Description", Some(&metadata.description)),
        typed(
            "DownloadCount",
            "Int32",
            standing.package_downloads.min(i32::MAX as u64).to_string(),
        ),
        text("IconUrl", metadata.icon_url.as_deref()),
        typed("IsLatestVersion", "Boolean", standing.latest.to_string()),
        typed(
            "IsAbsoluteLatestVersion",
            "Boolean",
            standing.absolute_latest.to_string(),
        ),
        typed("IsPrerelease", "Boolean", entry.is_prerelease().to_string()),
        typed("Listed", "Boolean", entry.listed.to_string()),
        typed("Published", "DateTime", published.clone()),
        text("PackageHash", entry.sha512.as_deref()),
        text(
            "PackageHashAlgorithm",
            entry.sha512.as_ref().map(|_| "SHA512"),
        ),
        typed("PackageSize", "Int64", entry.size.unwrap_or(0).to_string()),
        text("ProjectUrl", metadata.project_url.as_deref()),
        text("ReleaseNotes", metadata.release_notes.as_deref()),
        typed(
            "RequireLicenseAcceptance",
            "Boolean",
            metadata.require_license_acceptance.to_string(),
        ),
        text("Tags", metadata.tags.as_deref()),
        text("Title", metadata.title.as_deref()),
        typed(
            "VersionDownloadCount",
            "Int32",
            entry.downloads.min(i32::MAX as u64).to_string(),
        ),
        text("LicenseUrl", metadata.license_url.as_deref()),
    ]
    .concat();
    let namespaces: Cow<'_, str> = if alone {
        format!(" xml:base=\"{}/\" {NAMESPACES}", escape(&base)).into()
    } else {
        "".into()
    };
    format!(
        "<entry{namespaces}><id>{base}/{key}</id>\
         <category term=\"NuGetGallery.V2FeedPackage\" \
         scheme=\"http://schemas.microsoft.com/ado/2007/08/dataservices/scheme\" />\
         <link rel=\"edit\" title=\"V2FeedPackage\" href=\"{key}\" />\
         <title type=\"text\">{id}</title><summary type=\"text\">{summary}</summary>\
         <updated>{created}</updated><author><name>{authors}</name></author>\
         <link rel=\"edit-media\" title=\"V2FeedPackage\" href=\"{key}/$value\" />\
         <content type=\"application/zip\" src=\"{base}/package/{id}/{version}\" />\
         <m:properties>{properties}</m:properties></entry>",
        base = escape(&base),
        key = escape(&key),
        id = escape(&metadata.id),
        version = escape(&entry.version),
        summary = escape(metadata.summary.as_deref().unwrap_or_default()),
        authors = escape(&metadata.authors),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_queries_are_read() {
        assert_eq!(
            entity_key("Packages(Id='Arca.Greet',Version='1.0.0')"),
            Some(("Arca.Greet".into(), "1.0.0".into()))
        );
        assert_eq!(entity_key("Packages(Id='x')"), None);
        let query = Query::parse("id='Arca.Greet'&$filter=tolower(Id)%20eq%20'arca.greet'&$skip=5");
        assert_eq!(query.text("id").as_deref(), Some("Arca.Greet"));
        assert_eq!(query.filter().id.as_deref(), Some("arca.greet"));
        assert_eq!(query.number("$skip"), Some(5));
        let filter =
            Query::parse("$filter=(tolower(Id)%20eq%20'x')%20and%20IsLatestVersion").filter();
        assert!(filter.latest && !filter.absolute_latest);
        assert_eq!(filter.id.as_deref(), Some("x"));
    }
}
