//! Helm chart repositories under `/helm/<registry>/`: the classic layout `helm repo add` reads
//! (`index.yaml`, charts at `charts/<name>-<version>.tgz` with their `.prov` files) and ChartMuseum's
//! API that `helm cm-push` and CI scripts upload with (`POST /api/charts`, `DELETE
//! /api/charts/<name>/<version>`, `GET /api/charts[/<name>[/<version>]]`).
//!
//! Storage mapping: a chart is a package, a chart version a version whose files are the chart archive
//! and, when uploaded, its provenance file; `Chart.yaml` (as JSON) is a version attribute from which
//! `index.yaml` is rendered. An upload is read as helm loads a chart: a gzip'd tar whose every path
//! lies under the chart's directory, whose `Chart.yaml` names that chart and a SemVer version.
//!
//! Charts pushed with `helm push oci://<server>/<registry>` (the OCI front-end takes chart manifests
//! into HELM registries) are listed and served here too: the chart version is the manifest's tag,
//! its entry the config (`Chart.yaml` as JSON), its archive the content layer.
//!
//! Remote Helm registries proxy an upstream repository (its `index.yaml` a cached document, charts
//! fetched once from the URLs it lists); virtual ones serve their members' charts, the first member
//! holding a version giving its entry; uploads to a virtual registry land in its publish target.
//! Errors are Arca's own (`{"error": {"code", "message"}}`); a 401 challenges for Basic
//! credentials, which `helm repo add --username --password` sends (the password an Arca token).

mod remote;

use std::collections::BTreeMap;

use arca_protocol::{
    BlobRef, Command, CommandError, Overwrite, PackageType, Registry, RegistryKind, Role,
};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::{Caller, authenticate};
use crate::ecosystems::helm_oci;
use crate::frontend::archive::read_package_archive;
use crate::frontend::{
    ApiError, BlobCursor, read_small_blob, receive_blob, serve_file, unless_refused,
};
use crate::meta::{ProposeError, StateRead};
use crate::policy::firewall;
use crate::proxy;
use crate::usage::Download;

/// The version attribute holding the chart's `Chart.yaml`, as JSON.
const CHART: &str = "helm.chart";
/// The most a chart archive may unpack to.
const UNPACKED_LIMIT: u64 = 256 * 1024 * 1024;
/// The largest provenance file accepted.
const PROV_LIMIT: usize = 1024 * 1024;

/// Helm chart repositories at `/helm/<registry>/`.
pub struct Helm;

impl crate::frontend::FrontEnd for Helm {
    fn segment(&self) -> &'static str {
        "helm"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new().route(
            "/helm/{registry}/{*path}",
            any(crate::frontend::answering(route)),
        )
    }

    fn is_download(&self, path: &str) -> bool {
        path.contains("/charts/") && !path.contains("/api/charts")
    }
}

/// One request: the node, the caller and the registry it addresses.
struct Context<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    caller: Caller,
    registry: String,
}

impl Context<'_> {
    /// Checks that the caller may do what `needed` allows on the registry, a Helm registry.
    fn authorize(&self, needed: Role) -> Result<Registry, ApiError> {
        self.state
            .typed_registry(&self.caller, &self.registry, needed, PackageType::Helm)
    }

    /// The registry uploads land in (see [`AppState::write_target`]).
    fn write_target(&self) -> Result<Registry, ApiError> {
        self.state.write_target(&self.authorize(Role::Write)?)
    }
}

/// What a path under `/helm/<registry>/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Index,
    File(String),
    Upload,
    List,
    Chart(String),
    ChartVersion(String, String),
}

fn parse_endpoint(path: &str) -> Option<Endpoint> {
    Some(match path.split('/').collect::<Vec<_>>().as_slice() {
        ["index.yaml"] => Endpoint::Index,
        ["charts", file] if !file.is_empty() => Endpoint::File(file.to_string()),
        ["api", "charts"] => Endpoint::Upload,
        ["api", "charts", ""] => Endpoint::List,
        ["api", "charts", name] => Endpoint::Chart(name.to_string()),
        ["api", "charts", name, version] => {
            Endpoint::ChartVersion(name.to_string(), version.to_string())
        }
        _ => return None,
    })
}

async fn route(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (state, uri, headers) = (&state, &uri, &headers);
    let not_found = || ApiError::not_found(format!("no such endpoint {}", uri.path()));
    let (registry, path) =
        crate::frontend::registry_and_rest(uri.path(), "helm").ok_or_else(not_found)?;
    let endpoint = parse_endpoint(path).ok_or_else(not_found)?;
    let ctx = Context {
        state,
        headers,
        caller: authenticate(state, headers)?,
        registry: registry.to_string(),
    };
    let ctx = &ctx;
    match (endpoint, method) {
        (Endpoint::Index, Method::GET | Method::HEAD) => index(ctx).await,
        (Endpoint::File(file), Method::GET | Method::HEAD) => download(ctx, &file).await,
        (Endpoint::Upload, Method::POST) => {
            let (target, body) = unless_refused(ctx.write_target(), headers, body).await?;
            upload(ctx, &target, body).await
        }
        (Endpoint::Upload | Endpoint::List, Method::GET) => list(ctx, None).await,
        (Endpoint::Chart(name), Method::GET) => list(ctx, Some(&name)).await,
        (Endpoint::ChartVersion(name, version), Method::GET) => {
            let entries = entries(ctx, &ctx.authorize(Role::Read)?, Some(&name)).await?;
            entries
                .get(&name)
                .and_then(|versions| versions.get(&version))
                .map(|entry| axum::Json(entry.clone()).into_response())
                .ok_or_else(|| ApiError::not_found(format!("chart {name} {version} not found")))
        }
        (Endpoint::ChartVersion(name, version), Method::DELETE) => {
            let target = ctx.write_target()?;
            ctx.state
                .meta
                .propose(Command::DeleteVersion {
                    registry: target.name,
                    package: name,
                    version,
                })
                .await?;
            Ok(axum::Json(json!({ "deleted": true })).into_response())
        }
        (_, method) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "NOT_ALLOWED",
            format!("{method} is not supported on {}", uri.path()),
        )),
    }
}

/// The chart archive's file name.
fn chart_file(name: &str, version: &str) -> String {
    format!("{name}-{version}.tgz")
}

/// Every chart version through `registry` (of the chart `only`, when given), by chart and version:
/// its `index.yaml` entry, from the first member that has it. Entries' URLs point at this
/// registry's `charts/`.
async fn entries(
    ctx: &Context<'_>,
    registry: &Registry,
    only: Option<&str>,
) -> Result<BTreeMap<String, BTreeMap<String, Value>>, ApiError> {
    let mut all: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, registry) {
        let found = if member.kind == RegistryKind::Remote {
            match remote::entries(ctx.state, &member).await {
                Ok(mut found) => {
                    if let Some(name) = only {
                        found.retain(|chart, _| chart == name);
                    }
                    found
                }
                Err(error) => {
                    failure = Some(error);
                    continue;
                }
            }
        } else {
            stored_entries(ctx.state, &member, only).await?
        };
        for (name, versions) in found {
            let known = all.entry(name).or_default();
            for (version, mut entry) in versions {
                if let Some(fields) = entry.as_object_mut() {
                    let name = fields
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let url = format!("charts/{}", chart_file(name, &version));
                    fields.insert("urls".into(), json!([url]));
                }
                known.entry(version).or_insert(entry);
            }
        }
    }
    match failure {
        Some(error) if all.is_empty() => Err(error),
        _ => Ok(all),
    }
}

/// The entries a hosted registry renders from what its chart versions recorded, and from the charts
/// pushed into it over OCI: of every chart, or only of `only` (one package read, not the
/// registry's).
async fn stored_entries(
    state: &AppState,
    member: &Registry,
    only: Option<&str>,
) -> Result<BTreeMap<String, BTreeMap<String, Value>>, ApiError> {
    let names: Vec<String> = match only {
        Some(name) => vec![name.to_string()],
        None => state
            .meta
            .view()?
            .packages(&member.name, None, usize::MAX)?
            .into_iter()
            .map(|package| package.name)
            .collect(),
    };
    let mut all = BTreeMap::new();
    for name in names {
        let Some(contents) = state
            .meta
            .read(|view| view.package_contents(&member.name, &name))?
        else {
            continue;
        };
        let mut versions = BTreeMap::new();
        for (version, stored) in &contents.versions {
            let Some(Value::Object(mut entry)) = stored
                .attributes
                .get(CHART)
                .and_then(|json| serde_json::from_str(json).ok())
            else {
                continue;
            };
            let archive = stored.files.get(&chart_file(&name, version));
            if let Some(file) = archive {
                entry.insert("digest".into(), json!(file.sha256.to_hex()));
            }
            entry.insert("created".into(), json!(rfc3339(stored.created_at)));
            versions.insert(version.clone(), Value::Object(entry));
        }
        for (version, chart) in oci_charts(state, &contents).await? {
            let mut entry = chart.chart;
            entry.insert("digest".into(), json!(chart.archive.sha256.to_hex()));
            entry.insert("created".into(), json!(rfc3339(chart.created_at)));
            versions.entry(version).or_insert(Value::Object(entry));
        }
        if !versions.is_empty() {
            all.insert(name, versions);
        }
    }
    Ok(all)
}

fn rfc3339(unix_ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms);
    humantime::format_rfc3339_millis(at).to_string()
}

/// A chart pushed with `helm push oci://`: its `Chart.yaml` fields, its archive (the manifest's
/// content layer) and the manifest version holding it.
struct OciChart {
    chart: Map<String, Value>,
    archive: BlobRef,
    manifest_version: String,
    created_at: u64,
}

/// The charts of a package pushed over OCI, by chart version: each tag (helm tags a chart with its
/// version, `+` as `_`) of a chart manifest whose config names that version.
async fn oci_charts(
    state: &AppState,
    contents: &crate::meta::PackageContents,
) -> Result<BTreeMap<String, OciChart>, ApiError> {
    let mut charts = BTreeMap::new();
    for (tag, digest) in &contents.tags {
        let Some(version) = contents.versions.get(digest) else {
            continue;
        };
        let is_chart = version
            .manifest
            .as_ref()
            .and_then(|m| m.artifact_type.as_deref())
            == Some(helm_oci::CHART_CONFIG);
        let Some(file) = version
            .files
            .get(crate::meta::MANIFEST_FILE)
            .filter(|_| is_chart)
        else {
            continue;
        };
        let Some(manifest) = state.meta.read(|view| view.blob(&file.sha256))? else {
            continue;
        };
        let Some((config, layer)) =
            helm_oci::chart_digests(&read_small_blob(state, &manifest).await?)
        else {
            continue;
        };
        let (config, archive) = state.meta.read(|view| {
            Ok::<_, crate::meta::view::StoreError>((
                view.blob_by_digest(&config)?,
                view.blob_by_digest(&layer)?,
            ))
        })?;
        let (Some(config), Some(archive)) = (config, archive) else {
            continue;
        };
        let Ok(Value::Object(chart)) =
            serde_json::from_slice::<Value>(&read_small_blob(state, &config).await?)
        else {
            continue;
        };
        let Some(chart_version) = chart
            .get("version")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            continue;
        };
        if *tag != chart_version.replace('+', "_") {
            continue;
        }
        charts.insert(
            chart_version,
            OciChart {
                chart,
                archive,
                manifest_version: digest.clone(),
                created_at: version.created_at,
            },
        );
    }
    Ok(charts)
}

/// `GET /index.yaml`: rendered once per change of the metadata (see [`crate::frontend::rendered`]).
async fn index(ctx: &Context<'_>) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let yaml = ctx
        .state
        .render_once(&format!("helm.index/{}", registry.name), || {
            render_index(ctx, &registry)
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/x-yaml")], yaml).into_response())
}

/// `index.yaml` of `registry`.
async fn render_index(ctx: &Context<'_>, registry: &Registry) -> Result<bytes::Bytes, ApiError> {
    let entries: Map<String, Value> = entries(ctx, registry, None)
        .await?
        .into_iter()
        .map(|(name, versions)| {
            // Newest first, as helm writes its indexes.
            let mut versions: Vec<(String, Value)> = versions.into_iter().collect();
            versions.sort_by(|(a, _), (b, _)| newest_first(a, b));
            let list: Vec<Value> = versions.into_iter().map(|(_, entry)| entry).collect();
            (name, Value::Array(list))
        })
        .collect();
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ctx.state.now_ms());
    let document = json!({
        "apiVersion": "v1",
        "entries": entries,
        "generated": humantime::format_rfc3339_millis(now).to_string(),
    });
    let yaml = serde_yaml_ng::to_string(&document).map_err(ApiError::internal)?;
    Ok(yaml.into())
}

/// Orders two versions newest first (SemVer; what is not SemVer last, by text).
fn newest_first(a: &str, b: &str) -> std::cmp::Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => b.cmp(&a),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => b.cmp(a),
    }
}

/// `GET /api/charts[/<name>]`: ChartMuseum's listing, chart to its versions' entries.
async fn list(ctx: &Context<'_>, only: Option<&str>) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let entries = entries(ctx, &registry, only).await?;
    let listed = |versions: &BTreeMap<String, Value>| {
        let mut sorted: Vec<(&String, &Value)> = versions.iter().collect();
        sorted.sort_by(|(a, _), (b, _)| newest_first(a, b));
        Value::Array(sorted.into_iter().map(|(_, entry)| entry.clone()).collect())
    };
    match only {
        Some(name) => entries
            .get(name)
            .map(|versions| axum::Json(listed(versions)).into_response())
            .ok_or_else(|| ApiError::not_found(format!("chart {name} not found"))),
        None => {
            let all: Map<String, Value> = entries
                .iter()
                .map(|(name, versions)| (name.clone(), listed(versions)))
                .collect();
            Ok(axum::Json(Value::Object(all)).into_response())
        }
    }
}

/// The chart and version a chart or provenance file name stands for, split at the version's start
/// (a chart name may hold `-`, a SemVer version may too).
fn parse_file(file: &str) -> Option<(&str, &str, bool)> {
    let (stem, prov) = match file.strip_suffix(".tgz.prov") {
        Some(stem) => (stem, true),
        None => (file.strip_suffix(".tgz")?, false),
    };
    stem.match_indices('-').find_map(|(at, _)| {
        let (name, version) = (&stem[..at], &stem[at + 1..]);
        semver::Version::parse(version)
            .is_ok()
            .then_some((name, version, prov))
    })
}

/// `GET /charts/<name>-<version>.tgz[.prov]`: from the first member that has it (a remote member
/// fetches it), unless the firewall blocks the version.
async fn download(ctx: &Context<'_>, file: &str) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let (name, version, _) =
        parse_file(file).ok_or_else(|| ApiError::not_found(format!("no chart file {file}")))?;
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, &registry) {
        let now = ctx.state.now_ms();
        let held = firewall::check_member(&ctx.state.meta.view()?, &member, name, version, now)?;
        let found = if held {
            proxy::find_or_fetch_file(
                ctx.state,
                std::slice::from_ref(&member),
                (name, version, file),
                |_| None,
            )
            .await
            .map(|found| found.map(|(_, blob)| blob))
            .map_err(ApiError::from)
        } else if member.kind == RegistryKind::Remote {
            remote::chart(ctx.state, &member, name, version, file).await
        } else {
            oci_chart_archive(ctx.state, &member, name, version, file).await
        };
        match found {
            Ok(Some(blob)) => {
                let download = Download::of(&member.name, name, version, &ctx.caller);
                return Ok(serve_file(ctx.state, ctx.headers, &blob, Some(download)));
            }
            Ok(None) => {}
            Err(error) => failure = Some(error),
        }
    }
    Err(failure.unwrap_or_else(|| ApiError::not_found(format!("no chart file {file}"))))
}

/// The archive of chart `name` `version` pushed over OCI into the hosted `member` (no provenance
/// file: OCI charts carry none), unless the firewall blocks its manifest.
async fn oci_chart_archive(
    state: &AppState,
    member: &Registry,
    name: &str,
    version: &str,
    file: &str,
) -> Result<Option<BlobRef>, ApiError> {
    if file != chart_file(name, version) {
        return Ok(None);
    }
    let Some(contents) = state
        .meta
        .read(|view| view.package_contents(&member.name, name))?
    else {
        return Ok(None);
    };
    let Some(chart) = oci_charts(state, &contents).await?.remove(version) else {
        return Ok(None);
    };
    let now = state.now_ms();
    firewall::check_member(
        &state.meta.view()?,
        member,
        name,
        &chart.manifest_version,
        now,
    )?;
    Ok(Some(chart.archive))
}

/// The parts of an upload: the chart archive and, perhaps, its provenance file.
struct Uploaded {
    chart: BlobRef,
    prov: Option<BlobRef>,
}

/// Reads an upload: a multipart form (`chart`, and `prov`) or the chart archive as the whole body.
async fn receive(ctx: &Context<'_>, body: Body) -> Result<Uploaded, ApiError> {
    let content_type = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        let chart = receive_blob(ctx.state, ctx.headers, body, None).await?;
        return Ok(Uploaded { chart, prov: None });
    };
    let limit = ctx.state.config.max_upload_bytes;
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(limit.saturating_add(PROV_LIMIT as u64)));
    let mut form =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let (mut chart, mut prov) = (None, None);
    let form_error = |e: multer::Error| ApiError::invalid(format!("the upload form: {e}"));
    while let Some(mut field) = form.next_field().await.map_err(form_error)? {
        let slot = match field.name() {
            Some("chart") => &mut chart,
            Some("prov") => &mut prov,
            _ => continue,
        };
        let mut writer = crate::blob::BlobWriter::new(ctx.state.chunks.clone());
        while let Some(piece) = field.chunk().await.map_err(form_error)? {
            writer.write(&piece).await?;
        }
        *slot = Some(writer.finish().await?);
    }
    let chart = chart.ok_or_else(|| ApiError::invalid("the upload form has no chart field"))?;
    if prov.as_ref().is_some_and(|p| p.size > PROV_LIMIT as u64) {
        return Err(ApiError::invalid("the provenance file is too large"));
    }
    Ok(Uploaded { chart, prov })
}

/// Reads a stored chart archive as helm loads it: its `Chart.yaml`, checked.
async fn read_chart(state: &AppState, chart: &BlobRef) -> Result<Map<String, Value>, ApiError> {
    let cursor = BlobCursor::new(state.chunks.clone(), chart.clone());
    let read = crate::blocking::spawn(move || {
        read_package_archive(cursor, None, "Chart.yaml", UNPACKED_LIMIT)
    })
    .await
    .map_err(ApiError::internal)?;
    let invalid = |why: String| ApiError::invalid(format!("not a chart archive: {why}"));
    let archive = read.map_err(invalid)?;
    let yaml = archive
        .member
        .ok_or_else(|| invalid(format!("it has no {}/Chart.yaml", archive.root)))?;
    let Value::Object(chart) = serde_yaml_ng::from_slice::<Value>(&yaml)
        .map_err(|e| invalid(format!("Chart.yaml: {e}")))?
    else {
        return Err(invalid("Chart.yaml is not a mapping".into()));
    };
    let field = |key: &str| chart.get(key).and_then(Value::as_str).unwrap_or_default();
    if !matches!(field("apiVersion"), "v1" | "v2") {
        return Err(invalid("Chart.yaml's apiVersion must be v1 or v2".into()));
    }
    let name_ok = !field("name").is_empty()
        && field("name")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !field("name").starts_with('.');
    if !name_ok {
        return Err(invalid(format!(
            "chart name {:?} is not valid",
            field("name")
        )));
    }
    if field("name") != archive.root {
        return Err(invalid(format!(
            "Chart.yaml names {:?}, the archive's directory is {:?}",
            field("name"),
            archive.root
        )));
    }
    semver::Version::parse(field("version"))
        .map_err(|e| invalid(format!("version {:?} is not SemVer: {e}", field("version"))))?;
    Ok(chart)
}

/// `POST /api/charts`: stores a chart version (and its provenance file); 409 when it exists.
async fn upload(ctx: &Context<'_>, target: &Registry, body: Body) -> Result<Response, ApiError> {
    let uploaded = receive(ctx, body).await?;
    let chart = read_chart(ctx.state, &uploaded.chart).await?;
    let field = |key: &str| {
        chart
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (name, version) = (field("name"), field("version"));
    let mut attributes =
        BTreeMap::from([(CHART.to_string(), Value::Object(chart.clone()).to_string())]);
    if let Some(description) = chart.get("description").and_then(Value::as_str) {
        attributes.insert("description".into(), description.to_string());
    }
    let at = ctx.state.now_ms();
    let archive = chart_file(&name, &version);
    let put = |filename: String, blob: BlobRef, attributes, overwrite| Command::PutFile {
        registry: target.name.clone(),
        package: name.clone(),
        version: version.clone(),
        filename,
        blob,
        attributes,
        tags: Vec::new(),
        overwrite,
        at,
    };
    let mut commands = vec![put(
        archive.clone(),
        uploaded.chart,
        attributes,
        Overwrite::RefuseVersion,
    )];
    if let Some(prov) = uploaded.prov {
        commands.push(put(
            format!("{archive}.prov"),
            prov,
            BTreeMap::new(),
            Overwrite::Allow,
        ));
    }
    match ctx.state.meta.propose(Command::Batch { commands }).await {
        Ok(()) => Ok((StatusCode::CREATED, axum::Json(json!({ "saved": true }))).into_response()),
        Err(ProposeError::Refused(CommandError::AlreadyExists(_))) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            format!("{archive} already exists"),
        )),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_file_names_split_at_the_version() {
        assert_eq!(
            parse_file("my-chart-1.2.3.tgz"),
            Some(("my-chart", "1.2.3", false))
        );
        assert_eq!(
            parse_file("web-0.1.0-rc.1.tgz.prov"),
            Some(("web", "0.1.0-rc.1", true))
        );
        assert_eq!(parse_file("nochart.tgz"), None);
        assert_eq!(parse_file("x-1.0.tgz"), None);
        assert_eq!(parse_endpoint("index.yaml"), Some(Endpoint::Index));
        assert_eq!(parse_endpoint("api/charts"), Some(Endpoint::Upload));
        assert_eq!(
            parse_endpoint("api/charts/web/1.0.0"),
            Some(Endpoint::ChartVersion("web".into(), "1.0.0".into()))
        );
        assert_eq!(parse_endpoint("charts/../x"), None);
        assert!(newest_first("2.0.0", "10.0.0").is_gt());
    }
}
