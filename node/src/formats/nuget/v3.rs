//! The NuGet v3 resources under `/nuget/<registry>/v3/`: the service index (`index.json`), the
//! package base address (`flatcontainer/<id>/index.json`, `.../<version>/<id>.<version>.nupkg` and
//! `<id>.nuspec`), registration indexes and leaves (`registration/<id>/index.json`, one page
//! inlined, and `registration/<id>/<version>.json`) and the search query service (`search`). Push
//! is the v2 endpoint (`PackagePublish/2.0.0`).

use arca_protocol::Role;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Context, Entry, entries, find_package, nupkg_file, package, search_ids};
use crate::ecosystems::nuget_version;
use crate::frontend::{ApiError, BlobCursor};

/// The v3 resources, by the path under `v3/`.
pub(super) async fn route(
    ctx: &Context<'_>,
    path: &[&str],
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no such v3 resource {}", path.join("/")));
    match path {
        ["index.json"] => service_index(ctx),
        ["flatcontainer", id, "index.json"] => flat_versions(ctx, id).await,
        ["flatcontainer", id, version, file] => flat_file(ctx, id, version, file).await,
        ["registration", id, "index.json"] => registration_index(ctx, id).await,
        ["registration", id, leaf] => {
            let version = leaf.strip_suffix(".json").ok_or_else(not_found)?;
            registration_leaf(ctx, id, version).await
        }
        ["search"] => search(ctx, query).await,
        _ => Err(not_found()),
    }
}

fn json_response(document: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.to_string(),
    )
        .into_response()
}

/// `v3/index.json`: where each resource is, under every type name the clients look for.
fn service_index(ctx: &Context<'_>) -> Result<Response, ApiError> {
    ctx.authorize(Role::Read)?;
    let base = ctx.base_url();
    let mut resources = Vec::new();
    let mut add = |id: String, types: &[&str], comment: &str| {
        for kind in types {
            resources.push(json!({ "@id": id, "@type": kind, "comment": comment }));
        }
    };
    add(
        format!("{base}/v3/flatcontainer/"),
        &["PackageBaseAddress/3.0.0"],
        "Package contents (.nupkg and .nuspec)",
    );
    add(
        format!("{base}/v3/registration/"),
        &[
            "RegistrationsBaseUrl",
            "RegistrationsBaseUrl/3.0.0-rc",
            "RegistrationsBaseUrl/3.0.0-beta",
            "RegistrationsBaseUrl/3.4.0",
            "RegistrationsBaseUrl/3.6.0",
            "RegistrationsBaseUrl/Versioned",
        ],
        "Package metadata",
    );
    add(
        format!("{base}/v3/search"),
        &[
            "SearchQueryService",
            "SearchQueryService/3.0.0-rc",
            "SearchQueryService/3.0.0-beta",
            "SearchQueryService/3.5.0",
        ],
        "Search",
    );
    add(
        format!("{base}/api/v2/package"),
        &["PackagePublish/2.0.0"],
        "Push and unlist",
    );
    Ok(json_response(
        &json!({ "version": "3.0.0", "resources": resources }),
    ))
}

/// The versions of `id` through the caller's registry; 404 when there are none.
async fn versions_of(ctx: &Context<'_>, id: &str) -> Result<Vec<Entry>, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let found = entries(ctx, &registry, &id.to_ascii_lowercase()).await?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!("package {id} not found")));
    }
    Ok(found)
}

/// `flatcontainer/<id>/index.json`: every version, listed or not, lower-cased.
async fn flat_versions(ctx: &Context<'_>, id: &str) -> Result<Response, ApiError> {
    let versions: Vec<String> = versions_of(ctx, id).await?.iter().map(Entry::key).collect();
    Ok(json_response(&json!({ "versions": versions })))
}

/// `flatcontainer/<id>/<version>/<id>.<version>.nupkg` or `<id>.nuspec`.
async fn flat_file(
    ctx: &Context<'_>,
    id: &str,
    version: &str,
    file: &str,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("{id} {version}: no file {file}"));
    let (id, version) = (
        id.to_ascii_lowercase(),
        nuget_version::normalize(version)
            .ok_or_else(not_found)?
            .to_ascii_lowercase(),
    );
    if file.eq_ignore_ascii_case(&nupkg_file(&id, &version)) {
        return super::download(ctx, &id, &version).await;
    }
    if !file.eq_ignore_ascii_case(&format!("{id}.nuspec")) {
        return Err(not_found());
    }
    let registry = ctx.authorize(Role::Read)?;
    let (_, blob) = find_package(ctx, &registry, &id, &version)
        .await?
        .ok_or_else(not_found)?;
    let chunks = ctx.state.chunks.clone();
    let nuspec =
        crate::blocking::spawn(move || package::nuspec_bytes(BlobCursor::new(chunks, blob)))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/xml")], nuspec).into_response())
}

/// A dependency range in interval notation (a bare version is a minimum: `1.0` is `[1.0, )`).
fn interval(range: &str) -> String {
    let range = range.trim();
    if range.is_empty() {
        "(, )".to_string()
    } else if range.starts_with(['[', '(']) {
        range.to_string()
    } else {
        format!("[{range}, )")
    }
}

/// A version's catalog entry, as registration leaves inline it.
fn catalog_entry(base: &str, entry: &Entry) -> Value {
    let metadata = &entry.metadata;
    let id = &metadata.id;
    let lower = id.to_ascii_lowercase();
    let key = entry.key();
    let registration = format!("{base}/v3/registration/{lower}");
    let groups: Vec<Value> = entry
        .metadata
        .dependency_groups
        .iter()
        .enumerate()
        .map(|(n, group)| {
            let dependencies: Vec<Value> = group
                .dependencies
                .iter()
                .map(|dependency| {
                    json!({
                        "@id": format!("{registration}/{key}.json#dependencygroup/{n}/{}", dependency.id.to_ascii_lowercase()),
                        "@type": "PackageDependency",
                        "id": dependency.id,
                        "range": interval(&dependency.range),
                        "registration": format!("{base}/v3/registration/{}/index.json", dependency.id.to_ascii_lowercase()),
                    })
                })
                .collect();
            let mut group_json = json!({
                "@id": format!("{registration}/{key}.json#dependencygroup/{n}"),
                "@type": "PackageDependencyGroup",
                "dependencies": dependencies,
            });
            if let Some(framework) = &group.target_framework {
                group_json["targetFramework"] = json!(framework);
            }
            group_json
        })
        .collect();
    let tags: Vec<&str> = metadata
        .tags
        .as_deref()
        .unwrap_or_default()
        .split([' ', ','])
        .filter(|tag| !tag.is_empty())
        .collect();
    let mut catalog = json!({
        "@id": format!("{registration}/{key}.json#catalogEntry"),
        "@type": "PackageDetails",
        "id": id,
        "version": entry.version,
        "authors": metadata.authors,
        "description": metadata.description,
        "dependencyGroups": groups,
        "listed": entry.listed,
        "packageContent": package_content(base, &lower, &key),
        "published": published(entry),
        "requireLicenseAcceptance": metadata.require_license_acceptance,
        "tags": tags,
        "title": metadata.title.clone().unwrap_or_default(),
        "summary": metadata.summary.clone().unwrap_or_default(),
        "licenseUrl": metadata.license_url.clone().unwrap_or_default(),
        "licenseExpression": metadata.license.clone().unwrap_or_default(),
        "projectUrl": metadata.project_url.clone().unwrap_or_default(),
        "iconUrl": metadata.icon_url.clone().unwrap_or_default(),
    });
    // Not in nuget.org's documents: what a remote Arca registry checks the package against.
    if let (Some(hash), Some(size)) = (&entry.sha512, entry.size) {
        catalog["packageHash"] = json!(hash);
        catalog["packageHashAlgorithm"] = json!("SHA512");
        catalog["packageSize"] = json!(size);
    }
    catalog
}

fn package_content(base: &str, id: &str, version: &str) -> String {
    format!(
        "{base}/v3/flatcontainer/{id}/{version}/{}",
        nupkg_file(id, version)
    )
}

/// When `entry` was published, RFC 3339.
fn published(entry: &Entry) -> String {
    humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(entry.published_ms),
    )
    .to_string()
}

/// `registration/<id>/index.json`: one page holding every version, each leaf inlined.
async fn registration_index(ctx: &Context<'_>, id: &str) -> Result<Response, ApiError> {
    let found = versions_of(ctx, id).await?;
    let base = ctx.base_url();
    let lower = id.to_ascii_lowercase();
    let index = format!("{base}/v3/registration/{lower}/index.json");
    let leaves: Vec<Value> = found
        .iter()
        .map(|entry| {
            json!({
                "@id": format!("{base}/v3/registration/{lower}/{}.json", entry.key()),
                "@type": "Package",
                "catalogEntry": catalog_entry(&base, entry),
                "packageContent": package_content(&base, &lower, &entry.key()),
                "registration": index,
            })
        })
        .collect();
    let (lower_bound, upper_bound) = match (found.first(), found.last()) {
        (Some(first), Some(last)) => (first.key(), last.key()),
        _ => return Err(ApiError::not_found(format!("package {id} not found"))),
    };
    Ok(json_response(&json!({
        "@id": index,
        "@type": ["catalog:CatalogRoot", "PackageRegistration", "catalog:Permalink"],
        "count": 1,
        "items": [{
            "@id": format!("{index}#page/{lower_bound}/{upper_bound}"),
            "@type": "catalog:CatalogPage",
            "count": leaves.len(),
            "items": leaves,
            "lower": lower_bound,
            "upper": upper_bound,
            "parent": index,
        }],
    })))
}

/// `registration/<id>/<version>.json`: one version's leaf.
async fn registration_leaf(
    ctx: &Context<'_>,
    id: &str,
    version: &str,
) -> Result<Response, ApiError> {
    let key = nuget_version::normalize(version)
        .map(|v| v.to_ascii_lowercase())
        .ok_or_else(|| ApiError::not_found(format!("{id} {version} not found")))?;
    let found = versions_of(ctx, id).await?;
    let entry = found
        .iter()
        .find(|entry| entry.key() == key)
        .ok_or_else(|| ApiError::not_found(format!("{id} {version} not found")))?;
    let base = ctx.base_url();
    let lower = id.to_ascii_lowercase();
    Ok(json_response(&json!({
        "@id": format!("{base}/v3/registration/{lower}/{key}.json"),
        "@type": ["Package", "http://schema.nuget.org/catalog#Permalink"],
        "catalogEntry": catalog_entry(&base, entry),
        "listed": entry.listed,
        "packageContent": package_content(&base, &lower, &key),
        "published": published(entry),
        "registration": format!("{base}/v3/registration/{lower}/index.json"),
    })))
}

/// The value of `name` in a query string, percent-decoded (`+` as space).
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| crate::frontend::percent_decode(&value.replace('+', " ")))?
    })
}

/// `search?q=&skip=&take=&prerelease=`: the packages whose id, title, tags or description hold
/// `q`, each with its listed versions and the latest one.
async fn search(ctx: &Context<'_>, query: Option<&str>) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let term = query_value(query, "q").unwrap_or_default();
    let number = |name: &str, default: usize| {
        query_value(query, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (skip, take) = (number("skip", 0), number("take", 20).min(1000));
    let prerelease = query_value(query, "prerelease").is_some_and(|v| v == "true");
    let base = ctx.base_url();
    let mut data = Vec::new();
    let mut total = 0usize;
    for id in search_ids(ctx.state, &registry, &term).await? {
        let visible: Vec<Entry> = entries(ctx, &registry, &id)
            .await?
            .into_iter()
            .filter(|entry| entry.listed && (prerelease || !entry.is_prerelease()))
            .collect();
        let Some(latest) = visible.last() else {
            continue;
        };
        total += 1;
        if total <= skip || data.len() >= take {
            continue;
        }
        let metadata = &latest.metadata;
        let index = format!("{base}/v3/registration/{id}/index.json");
        data.push(json!({
            "@id": index,
            "@type": "Package",
            "registration": index,
            "id": metadata.id,
            "version": latest.version,
            "description": metadata.description,
            "summary": metadata.summary.clone().unwrap_or_default(),
            "title": metadata.title.clone().unwrap_or_else(|| metadata.id.clone()),
            "authors": metadata.authors.split(',').map(str::trim).collect::<Vec<_>>(),
            "tags": metadata.tags.as_deref().unwrap_or_default().split_whitespace().collect::<Vec<_>>(),
            "totalDownloads": visible.iter().map(|entry| entry.downloads).sum::<u64>(),
            "verified": false,
            "versions": visible.iter().map(|entry| json!({
                "version": entry.version,
                "downloads": entry.downloads,
                "@id": format!("{base}/v3/registration/{id}/{}.json", entry.key()),
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(json_response(&json!({ "totalHits": total, "data": data })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_intervals_and_queries_decode() {
        assert_eq!(interval("1.0"), "[1.0, )");
        assert_eq!(interval("[1.0,2.0)"), "[1.0,2.0)");
        assert_eq!(interval(""), "(, )");
        assert_eq!(
            query_value(Some("q=arca+greet&take=5"), "q").as_deref(),
            Some("arca greet")
        );
        assert_eq!(query_value(Some("q=a%2Fb"), "q").as_deref(), Some("a/b"));
        assert_eq!(query_value(Some("take=5"), "q"), None);
    }
}
