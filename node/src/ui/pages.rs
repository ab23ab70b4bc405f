//! The pages people browse: the registry list (with the sign-in form), a registry with its packages
//! and "Set up client", a package with its versions, a version with everything known of it, and
//! search. Lists are read a page at a time by key from the indexed state (`?after=` continues after
//! the last name shown), so a page costs the same at any depth and any registry size.

use std::collections::BTreeMap;

use arca_protocol::api::SearchQuery;
use arca_protocol::{PackageType, Registry, RegistryKind, Role, Version};
use axum::extract::State;
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    PageResult, UiError, Viewer, copyable, link, page, query_value, setup, size, time_element,
};
use crate::AppState;
use crate::api::{PathParams, QueryParams};
use crate::meta::{StateRead, usage};

/// Rows per page of a list.
const PAGE_ROWS: usize = 50;
/// Audit events looked at, newest first, for a version's history.
const AUDIT_LOOKBACK: usize = 5_000;
/// Versions of a repository looked at for a manifest's referrers.
const REFERRER_LOOKBACK: usize = 10_000;
/// The longest attribute value shown in full.
const SHOWN_ATTRIBUTE: usize = 400;

/// `?after=`: continue a list after this name.
#[derive(Debug, Default, Deserialize)]
pub struct After {
    #[serde(default)]
    after: Option<String>,
}

/// The "next page" link of a list whose last shown row is `last`.
fn next_link(base: &str, more: bool, last: Option<&str>) -> Markup {
    html! {
        @if let (true, Some(last)) = (more, last) {
            p.pager { a rel="next" href={ (base) "?after=" (query_value(last)) } { "Next page →" } }
        }
    }
}

/// `GET /ui/`: the registries the viewer may read, and the sign-in form for anonymous viewers.
pub async fn home(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let records = state.meta.read(|view| view.registries())?;
    let visible: Vec<_> = records
        .into_iter()
        .filter(|record| viewer.caller.may(&record.registry, Role::Read))
        .collect();
    let content = html! {
        @if viewer.name().is_none() {
            section #signin aria-labelledby="signin-title" {
                h2 #signin-title { "Sign in" }
                form.signin method="post" action="/ui/-/signin" {
                    (viewer.csrf_field())
                    label for="user" { "User name" }
                    input #user type="text" name="user" autocomplete="username";
                    label for="password" { "Password or token" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    p.hint { "With a token, the user name may stay empty." }
                    button type="submit" { "Sign in" }
                }
            }
        }
        div.heading {
            h1 { "Registries" }
            @if viewer.is(Role::Admin) {
                a.button href="/ui/-/registries" { "New registry" }
            }
        }
        @if visible.is_empty() {
            p { "No registry to show. " @if viewer.name().is_none() { "Sign in to see the registries you may read." } }
        } @else {
            div.scroll { table {
                thead { tr { th { "Name" } th { "Format" } th { "Kind" } th.num { "Packages" } th.num { "Versions" } th.num { "Size" } th { "Replication" } } }
                tbody {
                    @for record in &visible {
                        @let registry = &record.registry;
                        tr {
                            td { a href=(link(&[&registry.name])) { (registry.name) } }
                            td { (registry.package_type) }
                            td { (registry.kind) }
                            td.num { (record.packages) }
                            td.num { (record.versions) }
                            td.num { (size(record.size)) }
                            td { (registry.replication.mode) " → " (registry.replication.sites) }
                        }
                    }
                }
            } }
        }
    };
    Ok(page(&viewer, "Registries", &[], content))
}

/// `GET /ui/{registry}`: what the registry is, its packages a page at a time, and how to set up
/// its clients.
pub async fn registry(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(name): PathParams<String>,
    QueryParams(after): QueryParams<After>,
) -> PageResult {
    state.registry_for(&viewer.caller, &name, Role::Read)?;
    let (record, settings, packages) = state.meta.read(|view| {
        let record = view.registry_record(&name)?;
        let settings = view.registry_settings(&name)?;
        let packages = view.packages(&name, after.after.as_deref(), PAGE_ROWS + 1)?;
        Ok((record, settings, packages))
    })?;
    let record = record.ok_or_else(|| {
        UiError::from(crate::api::ApiError::not_found(format!(
            "registry {name} not found"
        )))
    })?;
    let registry = &record.registry;
    let more = packages.len() > PAGE_ROWS;
    let packages = &packages[..packages.len().min(PAGE_ROWS)];
    let admin = viewer.caller.may(registry, Role::Admin);
    let base = link(&[&name]);
    let content = html! {
        div.heading {
            h1 { (name) }
            span.badge { (registry.package_type) }
            span.badge { (registry.kind) }
        }
        @if !registry.description.is_empty() { p.description { (registry.description) } }
        dl.facts {
            @if let Some(upstream) = &registry.upstream {
                dt { "Upstream" } dd { code { (upstream.url) } " (metadata kept " (upstream.metadata_ttl_seconds) " s)" }
            }
            @if !registry.members.is_empty() {
                dt { "Members" } dd { @for (i, member) in registry.members.iter().enumerate() { @if i > 0 { ", " } a href=(link(&[member])) { (member) } } }
            }
            @if let Some(target) = &registry.publish_to { dt { "Publishes to" } dd { a href=(link(&[target])) { (target) } } }
            dt { "Packages" } dd { (record.packages) " packages, " (record.versions) " versions, " (size(record.size)) }
            dt { "Replication" } dd { (registry.replication.mode) " to " (registry.replication.sites) "; " (settings.min_copies.unwrap_or(1)) " copies before a push is acknowledged" }
            dt { "Immutable" } dd { (yes_no(registry.immutable)) }
            dt { "Anonymous reads" } dd { (yes_no(registry.allow_anonymous_read)) }
            dt { "Redeploy" } dd { (yes_no(registry.allow_redeploy)) }
            dt { "Created" } dd { (time_element(registry.created_at)) }
        }
        section aria-labelledby="packages-title" {
            h2 #packages-title { "Packages" }
            @if registry.kind == RegistryKind::Virtual {
                p { "A virtual registry holds nothing itself: its packages are its members' (listed above), and "
                    code { (link(&[&name])) "/<package>" } " shows the member that serves a package." }
            } @else if packages.is_empty() {
                p { "No packages" @if after.after.is_some() { " after this point" } "." }
            } @else {
                div.scroll { table {
                    thead { tr { th { "Package" } th { "Latest" } th.num { "Versions" } th.num { "Size" } th { "Updated" } } }
                    tbody {
                        @for package in packages {
                            tr {
                                td { a href=(link(&[&name, &package.name])) { (package.name) } }
                                td { @if let Some(latest) = package.latest_version() { a href=(link(&[&name, &package.name, latest])) { (short_version(latest)) } } }
                                td.num { (package.version_count) }
                                td.num { (size(package.size)) }
                                td { (time_element(package.updated_at)) }
                            }
                        }
                    }
                } }
                (next_link(&base, more, packages.last().map(|p| p.name.as_str())))
            }
        }
        section #setup aria-labelledby="setup-title" {
            h2 #setup-title { "Set up client" }
            p { "Replace " code { "$ARCA_TOKEN" } " with a token of yours (" a href="/ui/-/access" { "create one" } ")." }
            @for step in setup::guide(registry.package_type, &viewer.origin, &name) {
                (copyable(&step.label, &step.text))
            }
        }
        (metadata_section(&registry.metadata))
        section aria-labelledby="policies-title" {
            h2 #policies-title { "Policies" }
            h3 { "Cleanup" }
            pre { code { (pretty(&registry.cleanup)) } }
            h3 { "Dependency firewall" }
            pre { code { (pretty(&registry.firewall)) } }
        }
        @if admin {
            section.admin aria-labelledby="admin-title" {
                h2 #admin-title { "Administration" }
                form.stacked #settings method="post" action={ "/ui/-/r/" (name) "/settings" } {
                    (viewer.csrf_field())
                    label for="settings-description" { "Description" }
                    input #settings-description type="text" name="description" value=(registry.description);
                    @if let Some(upstream) = &registry.upstream {
                        label for="settings-upstream" { "Upstream URL" }
                        input #settings-upstream type="url" name="upstream" value=(upstream.url);
                        label for="settings-upstream-user" { "Upstream user" }
                        input #settings-upstream-user type="text" name="upstream_username" value=(upstream.username.as_deref().unwrap_or_default()) autocomplete="off";
                        label for="settings-upstream-password" { "Upstream password (empty: keep the stored one)" }
                        input #settings-upstream-password type="password" name="upstream_password" autocomplete="new-password";
                    }
                    @if registry.kind == arca_protocol::RegistryKind::Virtual {
                        label for="settings-members" { "Members, in order (comma-separated)" }
                        input #settings-members type="text" name="members" value=(registry.members.join(","));
                        label for="settings-publish-to" { "Publish to (empty: none)" }
                        input #settings-publish-to type="text" name="publish_to" value=(registry.publish_to.as_deref().unwrap_or_default());
                    }
                    label.choice { input type="checkbox" name="immutable" value="on" checked[registry.immutable]; " Immutable" }
                    label.choice { input type="checkbox" name="allow_anonymous_read" value="on" checked[registry.allow_anonymous_read]; " Anonymous reads" }
                    label.choice { input type="checkbox" name="allow_redeploy" value="on" checked[registry.allow_redeploy]; " Allow redeploying a version" }
                    label.choice { input type="checkbox" name="audit_downloads" value="on" checked[registry.audit_downloads]; " Record downloads in the audit trail" }
                    button type="submit" { "Save settings" }
                }
                form.inline method="post" action={ "/ui/-/r/" (name) "/metadata" } {
                    (viewer.csrf_field())
                    label for="meta-key" { "Metadata key" }
                    input #meta-key type="text" name="key" required;
                    label for="meta-value" { "Value (empty removes the key)" }
                    input #meta-value type="text" name="value";
                    button type="submit" { "Save metadata" }
                }
                form.inline method="post" action={ "/ui/-/r/" (name) "/cleanup" } {
                    (viewer.csrf_field())
                    input type="hidden" name="dry_run" value="true";
                    button type="submit" { "Cleanup: dry run" }
                }
                @for (path, id, label, policy) in [("cleanup-policy", "cleanup-policy", "Cleanup policy", pretty(&registry.cleanup)), ("firewall-policy", "firewall-policy", "Dependency firewall policy", pretty(&registry.firewall))] {
                    form.stacked method="post" action={ "/ui/-/r/" (name) "/" (path) } {
                        (viewer.csrf_field())
                        label for=(id) { (label) " (JSON, as the API takes it)" }
                        textarea id=(id) name="policy" rows="8" spellcheck="false" { (policy) }
                        button type="submit" { "Save " (label.to_lowercase()) }
                    }
                }
                form.inline.danger method="post" action={ "/ui/-/r/" (name) "/delete" } {
                    (viewer.csrf_field())
                    label for="confirm" { "Type the registry's name to delete it" }
                    input #confirm type="text" name="confirm" required;
                    button.danger type="submit" { "Delete registry" }
                }
            }
        }
    };
    Ok(page(
        &viewer,
        &name,
        &[(name.as_str(), base.clone())],
        content,
    ))
}

/// `GET /ui/{registry}/{package}`: the package, its tags and its versions a page at a time.
pub async fn package(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams((registry_name, name)): PathParams<(String, String)>,
    QueryParams(after): QueryParams<After>,
) -> PageResult {
    let registry = state.registry_for(&viewer.caller, &registry_name, Role::Read)?;
    let holder = holder(&state, &registry, &name, None)?;
    let source = holder.name.as_str();
    let (package, tags, versions, downloads) = state.meta.read(|view| {
        let package = view.package(source, &name)?;
        // A page of tags: an OCI repository may have very many.
        let tags = view.first_tags(source, &name, PAGE_ROWS + 1)?;
        let versions = view.versions_page(source, &name, after.after.as_deref(), PAGE_ROWS + 1)?;
        let downloads = usage::package_downloads(view, source, &name);
        Ok((package, tags, versions, downloads))
    })?;
    let package = package.ok_or_else(|| {
        UiError::from(crate::api::ApiError::not_found(format!(
            "package {registry_name}/{name} not found"
        )))
    })?;
    let more = versions.len() > PAGE_ROWS;
    let versions = &versions[..versions.len().min(PAGE_ROWS)];
    let mut tags_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (tag, target) in &tags {
        tags_of
            .entry(target.as_str())
            .or_default()
            .push(tag.as_str());
    }
    let base = link(&[&registry_name, &name]);
    let content = html! {
        div.heading {
            h1 { (name) }
            span.badge { (registry.package_type) }
        }
        dl.facts {
            (served_from(&registry_name, source))
            @if let Some(latest) = package.latest_version() { dt { "Latest" } dd { a href=(link(&[&registry_name, &name, latest])) { (latest) } } }
            dt { "Versions" } dd { (package.version_count) " (" (size(package.size)) ")" }
            dt { "Downloads" } dd { (downloads) }
            dt { "Created" } dd { (time_element(package.created_at)) }
            dt { "Updated" } dd { (time_element(package.updated_at)) }
        }
        @if !tags.is_empty() {
            section aria-labelledby="tags-title" {
                h2 #tags-title { "Tags" }
                ul.tags {
                    @for (tag, target) in tags.iter().take(PAGE_ROWS) {
                        li { span.tag { (tag) } " → " a href=(link(&[&registry_name, &name, target])) { (short_version(target)) } }
                    }
                }
                @if tags.len() > PAGE_ROWS { p { "More tags are not shown; each version's page lists its own." } }
            }
        }
        section aria-labelledby="versions-title" {
            h2 #versions-title { "Versions" }
            div.scroll { table {
                thead { tr { th { "Version" } th { "Tags" } th.num { "Size" } th { "Firewall" } th { "Pushed" } } }
                tbody {
                    @for version in versions {
                        tr {
                            td { a href=(link(&[&registry_name, &name, &version.name])) { (short_version(&version.name)) } }
                            td { @for tag in tags_of.get(version.name.as_str()).into_iter().flatten() { span.tag { (tag) } " " } }
                            td.num { (size(version.size)) }
                            td { (status_badge(version)) }
                            td { (time_element(version.created_at)) }
                        }
                    }
                }
            } }
            (next_link(&base, more, versions.last().map(|v| v.name.as_str())))
        }
        (metadata_section(&package.metadata))
    };
    Ok(page(
        &viewer,
        &name,
        &[
            (registry_name.as_str(), link(&[&registry_name])),
            (name.as_str(), base.clone()),
        ],
        content,
    ))
}

/// What the version page shows beside the version itself.
struct VersionDetails {
    package: arca_protocol::Package,
    version: Version,
    tags: Vec<String>,
    downloads: Option<arca_protocol::model::UsageCount>,
    /// Where each file's bytes are, as shown.
    replicas: BTreeMap<String, String>,
    referrers: Vec<Version>,
    audit: Vec<arca_protocol::model::AuditEvent>,
}

/// `GET /ui/{registry}/{package}/{version}`: files, tags, metadata, the format's details, the
/// firewall's verdict (with quarantine and release for admins), downloads, replicas and history.
pub async fn version(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams((registry_name, package, name)): PathParams<(String, String, String)>,
) -> PageResult {
    let through = state.registry_for(&viewer.caller, &registry_name, Role::Read)?;
    // Through a virtual registry, the member that serves the version: its records, its policy.
    let registry = holder(&state, &through, &package, Some(&name))?;
    let source = registry.name.clone();
    let sees_audit = viewer.is(Role::Admin);
    // Where bytes are is the cluster's business: shown to callers with a cluster-wide grant.
    let sees_nodes = viewer.is(Role::Read);
    let details = state.meta.read(|view| {
        let (Some(package_record), Some(version)) = (
            view.package(&source, &package)?,
            view.version(&source, &package, &name)?,
        ) else {
            return Ok(None);
        };
        let tags = view.tags_of(&source, &package, &name)?;
        let downloads = usage::version_usage(view, &source, &package, &name)?;
        let mut replicas = BTreeMap::new();
        for (file, entry) in &version.files {
            let inline = view
                .blob(&entry.sha256)?
                .is_some_and(|blob| blob.inline.is_some());
            let placement = if inline {
                "every node (kept in the metadata)".to_string()
            } else {
                let nodes: Vec<String> = view
                    .replicas(&entry.sha256)?
                    .iter()
                    .map(|node| format!("node {node}"))
                    .collect();
                if nodes.is_empty() {
                    "none recorded yet".to_string()
                } else {
                    nodes.join(", ")
                }
            };
            replicas.insert(file.clone(), placement);
        }
        let referrers = if registry.package_type == PackageType::Docker {
            referrers(view, &source, &package, &name)?
        } else {
            Vec::new()
        };
        let audit = if sees_audit {
            history(view, &source, &package, &name)?
        } else {
            Vec::new()
        };
        Ok(Some(VersionDetails {
            package: package_record,
            version,
            tags,
            downloads,
            replicas,
            referrers,
            audit,
        }))
    })?;
    let details = details.ok_or_else(|| {
        UiError::from(crate::api::ApiError::not_found(format!(
            "version {registry_name}/{package}/{name} not found"
        )))
    })?;
    let admin = viewer.caller.may(&registry, Role::Admin);
    let version = &details.version;
    let now = state.now_ms();
    let verdict =
        crate::policy::firewall::current_verdict(&registry, &details.package, version, now);
    let blocked =
        crate::policy::firewall::stored_refusal(&registry, &details.package, version, now);
    let firewall = version.firewall.clone().unwrap_or_default();
    let readme = crate::search::document::readme(version);
    let description = crate::search::document::version_text(version, &details.tags).description;
    let content = html! {
        div.heading {
            h1 { (package) " " span.version { (short_version(&name)) } }
            span.badge { (registry.package_type) }
            (status_badge(version))
        }
        @if !description.is_empty() { p.description { (description) } }
        (copyable("Install", &setup::install_line(registry.package_type, &viewer.origin, &registry_name, (&package, &name), version.files.keys().next().map(String::as_str))))
        dl.facts {
            (served_from(&registry_name, &source))
            dt { "Version" } dd { code { (name) } }
            dt { "Size" } dd { (size(version.size)) }
            dt { "Pushed" } dd { (time_element(version.created_at)) }
            dt { "Updated" } dd { (time_element(version.updated_at)) }
            dt { "Downloads" } dd {
                @match &details.downloads {
                    Some(figures) => { (figures.downloads) " (" (size(figures.bytes)) " served)" @if figures.last_at > 0 { ", last " (time_element(figures.last_at)) } }
                    None => { "none counted" }
                }
            }
            @if !details.tags.is_empty() {
                dt { "Tags" } dd { @for tag in &details.tags { span.tag { (tag) } " " } }
            }
            @if registry.package_type == PackageType::Maven {
                dt { "Coordinates" } dd { code { (package) ":" (name) } }
            }
        }
        section aria-labelledby="firewall-title" {
            h2 #firewall-title { "Dependency firewall" }
            p { "Status: " strong.status { (verdict.status) } @if let Some(refusal) = &blocked { " — downloads are refused: " (refusal) } }
            @if verdict.reasons.is_empty() {
                p { "No rule applies." }
            } @else {
                ul.reasons { @for reason in &verdict.reasons { li { strong { (reason.status) } " " (reason.rule) ": " (reason.message) } } }
            }
            @if let Some(record) = &firewall.quarantine { p { "Quarantined by " (record.by) " at " (time_element(record.at)) ": " (record.reason) } }
            @if let Some(record) = &firewall.release { p { "Released by " (record.by) " at " (time_element(record.at)) ": " (record.reason) } }
            @if admin {
                div.actions {
                    @for (action, label, class) in [("quarantine", "Quarantine", "danger"), ("release", "Release", "")] {
                        form.inline method="post" action={ "/ui/-/r/" (source) "/" (action) } {
                            (viewer.csrf_field())
                            input type="hidden" name="package" value=(package);
                            input type="hidden" name="version" value=(name);
                            label for={ (action) "-reason" } { "Reason" }
                            input id={ (action) "-reason" } type="text" name="reason";
                            button class=(class) type="submit" { (label) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="files-title" {
            h2 #files-title { "Files" }
            div.scroll { table {
                thead { tr { th { "File" } th.num { "Size" } th { "sha256" } @if sees_nodes { th { "On nodes" } } } }
                tbody {
                    @for (file, entry) in &version.files {
                        tr {
                            td { (file) }
                            td.num { (size(entry.size)) }
                            td { code.digest { (entry.sha256) } }
                            @if sees_nodes { td { (details.replicas.get(file).map(String::as_str).unwrap_or_default()) } }
                        }
                    }
                }
            } }
        }
        @if let Some(manifest) = &version.manifest {
            section aria-labelledby="manifest-title" {
                h2 #manifest-title { "Manifest" }
                dl.facts {
                    dt { "Media type" } dd { code { (manifest.media_type) } }
                    @if let Some(kind) = &manifest.artifact_type { dt { "Artifact type" } dd { code { (kind) } } }
                    @if let Some(subject) = &manifest.subject { dt { "Refers to" } dd { a href=(link(&[&registry_name, &package, subject])) { (short_version(subject)) } } }
                }
                @if !manifest.blobs.is_empty() {
                    h3 { "Config and layers" }
                    ul.digests { @for blob in &manifest.blobs { li { code.digest { (blob) } } } }
                }
                @if !manifest.manifests.is_empty() {
                    h3 { "Platform manifests" }
                    ul.digests { @for child in &manifest.manifests { li { a href=(link(&[&registry_name, &package, child])) { code.digest { (child) } } } } }
                }
                @if !manifest.annotations.is_empty() {
                    h3 { "Annotations" }
                    (key_values(manifest.annotations.iter()))
                }
            }
        }
        @if registry.package_type == PackageType::Docker {
            section aria-labelledby="referrers-title" {
                h2 #referrers-title { "Referrers" }
                @if details.referrers.is_empty() {
                    p { "No signature, SBOM or other artifact refers to this manifest." }
                } @else {
                    ul { @for referrer in &details.referrers {
                        li {
                            a href=(link(&[&registry_name, &package, &referrer.name])) { code.digest { (short_version(&referrer.name)) } }
                            " " (referrer.manifest.as_ref().and_then(|m| m.artifact_type.clone()).unwrap_or_default())
                        }
                    } }
                }
            }
        }
        @if let Some(readme) = readme {
            section aria-labelledby="readme-title" {
                h2 #readme-title { "README" }
                pre.readme { (readme) }
            }
        }
        (metadata_section(&version.metadata))
        @if !version.attributes.is_empty() {
            section aria-labelledby="attributes-title" {
                h2 #attributes-title { "Format details" }
                (key_values(version.attributes.iter()))
            }
        }
        @if sees_audit {
            section aria-labelledby="history-title" {
                h2 #history-title { "History" }
                @if details.audit.is_empty() {
                    p { "No recorded request names this version among the last " (AUDIT_LOOKBACK) " audit events." }
                } @else {
                    (super::ops::audit_table(&details.audit))
                }
            }
        }
    };
    Ok(page(
        &viewer,
        &format!("{package} {name}"),
        &[
            (registry_name.as_str(), link(&[&registry_name])),
            (package.as_str(), link(&[&registry_name, &package])),
            (
                short_version(&name),
                link(&[&registry_name, &package, &name]),
            ),
        ],
        content,
    ))
}

/// The registry whose records a page of `registry` shows for `package` (and `version` of it, when
/// given): itself, or for a virtual registry the first member, in resolution order, that holds it.
fn holder(
    state: &AppState,
    registry: &Registry,
    package: &str,
    version: Option<&str>,
) -> Result<Registry, UiError> {
    if registry.kind != RegistryKind::Virtual {
        return Ok(registry.clone());
    }
    for member in crate::proxy::resolution_order(state, registry) {
        let holds = state.meta.read(|view| match version {
            Some(version) => view.has_version(&member.name, package, version),
            None => Ok(view.package(&member.name, package)?.is_some()),
        })?;
        if holds {
            return Ok(member);
        }
    }
    Ok(registry.clone())
}

/// The fact that a page of virtual registry `shown` shows member `source`'s records.
fn served_from(shown: &str, source: &str) -> Markup {
    html! {
        @if shown != source {
            dt { "Served from" } dd { "member " a href=(link(&[source])) { (source) } }
        }
    }
}

/// The manifests of `repository` whose subject is `digest` (among its first versions).
fn referrers(
    view: &(impl StateRead + ?Sized),
    registry: &str,
    repository: &str,
    digest: &str,
) -> Result<Vec<Version>, crate::meta::StoreError> {
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    let mut seen = 0;
    while seen < REFERRER_LOOKBACK {
        let page = view.versions_page(registry, repository, after.as_deref(), 1_000)?;
        let Some(last) = page.last() else { break };
        after = Some(last.name.clone());
        seen += page.len();
        found.extend(page.into_iter().filter(|version| {
            version.manifest.as_ref().and_then(|m| m.subject.as_deref()) == Some(digest)
        }));
    }
    Ok(found)
}

/// Recent audit events of `registry` that name the version (in their path or detail).
fn history(
    view: &(impl StateRead + ?Sized),
    registry: &str,
    package: &str,
    version: &str,
) -> Result<Vec<arca_protocol::model::AuditEvent>, crate::meta::StoreError> {
    let mut events = Vec::new();
    for id in view.audit_ids_between(0, u64::MAX, AUDIT_LOOKBACK)? {
        let Some(event) = view.audit_event(id)? else {
            continue;
        };
        if event.registry.as_deref() != Some(registry) {
            continue;
        }
        if names_version(&event, package, version) {
            events.push(event);
        }
        if events.len() >= PAGE_ROWS {
            break;
        }
    }
    Ok(events)
}

/// Whether an audit event is about `version` of `package`: its path has the package's last name
/// segment and a segment that is the version or a file of it (`name-1.0.0.tgz`), or its detail
/// names `package@version`.
fn names_version(event: &arca_protocol::model::AuditEvent, package: &str, version: &str) -> bool {
    let last_name = package.rsplit('/').next().unwrap_or(package);
    let segments: Vec<&str> = event.target.split('/').collect();
    // A file of the version: `<name>-<version>` then `.`, `-` or `_` and no digit (`1.0` is not
    // `1.0.0`).
    let file_prefix = format!("{last_name}-{version}");
    let is_file = |segment: &str| {
        segment.strip_prefix(&file_prefix).is_some_and(|rest| {
            let mut rest = rest.chars();
            matches!(rest.next(), Some('.' | '-' | '_'))
                && rest.next().is_some_and(|c| !c.is_ascii_digit())
        })
    };
    let in_path = segments.iter().any(|segment| segment.ends_with(last_name))
        && segments
            .iter()
            .any(|segment| *segment == version || is_file(segment));
    let named = format!("{package}@{version}");
    let in_detail = event.detail.as_deref().is_some_and(|detail| {
        detail.match_indices(&named).any(|(at, _)| {
            matches!(
                detail[at + named.len()..].chars().next(),
                None | Some(':' | ' ' | ',')
            )
        })
    });
    in_path || in_detail
}

/// `?q=&offset=` of the search page.
#[derive(Debug, Default, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    offset: Option<u32>,
}

/// `GET /ui/-/search?q=`: the search API's hits among what the viewer may read.
pub async fn search(
    State(state): State<AppState>,
    viewer: Viewer,
    QueryParams(form): QueryParams<SearchForm>,
) -> PageResult {
    let offset = form.offset.unwrap_or(0);
    let results = if form.q.trim().is_empty() {
        None
    } else {
        Some(
            crate::api::search::find(
                &state,
                &viewer.caller,
                SearchQuery {
                    q: form.q.clone(),
                    registry: None,
                    limit: Some(PAGE_ROWS as u32),
                    offset: Some(offset),
                },
            )
            .await?,
        )
    };
    // A hit in a registry the viewer reads only through a virtual one links through that one.
    let mut through: BTreeMap<String, String> = BTreeMap::new();
    if let Some(results) = &results {
        let registries = state.meta.read(|view| view.registries())?;
        for hit in &results.hits {
            let direct = registries.iter().any(|r| {
                r.registry.name == hit.registry && viewer.caller.may(&r.registry, Role::Read)
            });
            if direct || through.contains_key(&hit.registry) {
                continue;
            }
            if let Some(virtual_registry) = registries.iter().find(|r| {
                r.registry.kind == RegistryKind::Virtual
                    && r.registry.members.contains(&hit.registry)
                    && viewer.caller.may(&r.registry, Role::Read)
            }) {
                through.insert(hit.registry.clone(), virtual_registry.registry.name.clone());
            }
        }
    }
    let shown = |registry: &str| {
        through
            .get(registry)
            .cloned()
            .unwrap_or_else(|| registry.to_string())
    };
    let content = html! {
        h1 { "Search" }
        form.search-page role="search" method="get" action="/ui/-/search" {
            label for="search-q" { "Words, and filters such as " code { "type:npm" } ", " code { "registry:R" } ", " code { "status:blocked" } ", " code { "key:value" } }
            input #search-q type="search" name="q" value=(form.q);
            button type="submit" { "Search" }
        }
        @if let Some(results) = &results {
            p.count { (results.total_versions) " matching versions" }
            @if results.hits.is_empty() {
                p { "Nothing found that you may read." }
            } @else {
                ol.hits start=(offset + 1) {
                    @for hit in &results.hits {
                        li {
                            @let registry = shown(&hit.registry);
                            a.hit href=(link(&[&registry, &hit.package, &hit.version])) { (hit.package) " " span.version { (short_version(&hit.version)) } }
                            " in " a href=(link(&[&registry])) { (registry) }
                            " " span.badge { (hit.package_type) } " " span.status { (hit.status) }
                            @if !hit.description.is_empty() { p.description { (hit.description) } }
                        }
                    }
                }
                @if results.hits.len() == PAGE_ROWS {
                    p.pager { a rel="next" href={ "/ui/-/search?q=" (query_value(&form.q)) "&offset=" (offset + PAGE_ROWS as u32) } { "More results →" } }
                }
            }
        }
    };
    Ok(page(&viewer, "Search", &[], content))
}

/// A version name as shown: an OCI digest cut to its first twelve hex digits.
pub fn short_version(name: &str) -> &str {
    match name.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name.get(..7 + 12).unwrap_or(name)
        }
        _ => name,
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The firewall's word on a version, as a badge.
fn status_badge(version: &Version) -> Markup {
    let firewall = version.firewall.as_ref();
    let (word, class) = match firewall {
        Some(f) if f.quarantine.is_some() && f.release.is_none() => ("quarantined", "blocked"),
        Some(f) if f.release.is_some() => ("released", "allowed"),
        Some(f) => match f.verdict.status {
            arca_protocol::firewall::FirewallStatus::Blocked => ("blocked", "blocked"),
            arca_protocol::firewall::FirewallStatus::Warn => ("warn", "warn"),
            arca_protocol::firewall::FirewallStatus::Allowed => ("allowed", "allowed"),
        },
        None => ("allowed", "allowed"),
    };
    html! { span class={ "status " (class) } { (word) } }
}

/// A table of key:value pairs, long values cut.
fn key_values<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> Markup {
    html! {
        div.scroll { table.kv {
            tbody {
                @for (key, value) in pairs {
                    tr {
                        th scope="row" { (key) }
                        td { @if value.len() > SHOWN_ATTRIBUTE {
                            details { summary { (value.chars().take(120).collect::<String>()) "…" } pre { (value) } }
                        } @else { (value) } }
                    }
                }
            }
        } }
    }
}

/// The key:value metadata of a registry, package or version.
fn metadata_section(metadata: &arca_protocol::model::Metadata) -> Markup {
    html! {
        section aria-labelledby="metadata-title" {
            h2 #metadata-title { "Metadata" }
            @if metadata.is_empty() { p { "No key:value metadata." } } @else { (key_values(metadata.iter())) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_shortened_and_other_names_are_not_cut() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(short_version(&digest), "sha256:abababababab");
        assert_eq!(short_version("sha256:aaaaaaaaaaaé"), "sha256:aaaaaaaaaaaé");
        assert_eq!(short_version("1.0.0"), "1.0.0");
    }

    fn event(target: &str, detail: Option<&str>) -> arca_protocol::model::AuditEvent {
        arca_protocol::model::AuditEvent {
            id: 1,
            at: 0,
            actor: "a".into(),
            actor_id: None,
            source_ip: "127.0.0.1".into(),
            action: "PUT".into(),
            registry: Some("r".into()),
            target: target.into(),
            result: 201,
            detail: detail.map(str::to_string),
        }
    }

    #[test]
    fn a_versions_history_is_the_events_that_name_it() {
        let tarball = event("/npm/r/ui-demo/-/ui-demo-1.0.0.tgz", None);
        assert!(names_version(&tarball, "ui-demo", "1.0.0"));
        assert!(!names_version(&tarball, "ui-demo", "1.0"));
        let generic = event("/generic/r/tool/1.0.0/tool.txt", None);
        assert!(names_version(&generic, "tool", "1.0.0"));
        assert!(!names_version(&generic, "tool", "1.0.1"));
        let quarantine = event("/ui/-/r/r/quarantine", Some("quarantine tool@1.0.0: why"));
        assert!(names_version(&quarantine, "tool", "1.0.0"));
        assert!(!names_version(&quarantine, "tool", "1.0"));
    }
}
