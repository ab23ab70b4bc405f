//! `GET /api/v1/insights...`: usage figures, read from what every node's download counts add up to
//! in the replicated state ([`crate::meta::usage`]). Callers see the registries they may read (and
//! the members of virtual registries they may read); who downloaded a package is shown to the
//! registry's admins only, and bytes per site to callers with a cluster-wide grant.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, UNIX_EPOCH};

use arca_protocol::Role;
use arca_protocol::api::{
    ConsumerUsage, DayUsage, IdleVersion, IdleVersions, InsightsQuery, NamedUsage, PackageInsights,
    PackageUsage, TopPackages, UsageFigures, UsageOverview, VersionUsage,
};
use arca_protocol::model::UsageCount;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::search::readable_registries;
use super::{ApiError, QueryParams};
use crate::AppState;
use crate::auth::Caller;
use crate::meta::StateRead;
use crate::meta::usage::{self, DAY_MS, day_of};

/// Days counted when the query names none.
const DEFAULT_DAYS: u32 = 30;
/// The most days a query may span.
const MAX_DAYS: u32 = 366;
/// Entries answered when the query names no limit.
const DEFAULT_LIMIT: u32 = 20;
/// Idle versions answered when the query names no limit.
const DEFAULT_IDLE_LIMIT: u32 = 100;
/// The most entries a query may ask for.
const MAX_LIMIT: u32 = 1000;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/insights", get(overview))
        .route("/insights/packages", get(top_packages))
        .route("/insights/package", get(package))
        .route("/insights/idle", get(idle))
}

/// A query's days as (first, last) day numbers, today last.
fn day_span(state: &AppState, query: &InsightsQuery) -> Result<(u32, u32), ApiError> {
    let days = query.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::invalid(format!(
            "days must be between 1 and {MAX_DAYS}"
        )));
    }
    let today = day_of(state.now_ms());
    Ok((today.saturating_sub(days - 1), today))
}

fn limit_of(query: &InsightsQuery, default: u32) -> Result<usize, ApiError> {
    let limit = query.limit.unwrap_or(default);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok(limit as usize)
}

/// `YYYY-MM-DD` of a day number.
fn date(day: u32) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(u64::from(day) * DAY_MS);
    humantime::format_rfc3339_seconds(time).to_string()[..10].to_string()
}

fn figures(count: &UsageCount) -> UsageFigures {
    UsageFigures {
        downloads: count.downloads,
        bytes: count.bytes,
        last_download_at: (count.last_at > 0).then_some(count.last_at),
    }
}

fn day_usage(day: u32, count: &UsageCount) -> DayUsage {
    DayUsage {
        date: date(day),
        downloads: count.downloads,
        bytes: count.bytes,
    }
}

/// Most downloads first, then most bytes, then by name.
fn by_downloads(a: &UsageFigures, b: &UsageFigures) -> std::cmp::Ordering {
    b.downloads.cmp(&a.downloads).then(b.bytes.cmp(&a.bytes))
}

/// Figures by (day, name) summed by name, each with its days.
fn named(rows: Vec<(u32, String, UsageCount)>, keep: impl Fn(&str) -> bool) -> Vec<NamedUsage> {
    let mut by_name: BTreeMap<String, (UsageCount, Vec<DayUsage>)> = BTreeMap::new();
    for (day, name, count) in rows {
        if !keep(&name) {
            continue;
        }
        let (total, daily) = by_name.entry(name).or_default();
        total.add(&count);
        daily.push(day_usage(day, &count));
    }
    let mut named: Vec<NamedUsage> = by_name
        .into_iter()
        .map(|(name, (total, daily))| NamedUsage {
            name,
            figures: figures(&total),
            daily,
        })
        .collect();
    named.sort_by(|a, b| by_downloads(&a.figures, &b.figures));
    named
}

fn readable(allowed: &Option<Vec<String>>, registry: &str) -> bool {
    allowed
        .as_ref()
        .is_none_or(|names| names.binary_search_by(|n| n.as_str().cmp(registry)).is_ok())
}

async fn overview(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<InsightsQuery>,
) -> Result<Json<UsageOverview>, ApiError> {
    let span = day_span(&state, &query)?;
    let allowed = readable_registries(&state, &caller)?;
    let cluster_wide = caller.require(Role::Read).is_ok();
    let (registries, sites) = state.meta.read(|view| {
        let registries = usage::registry_days(view, span)?;
        let sites = match cluster_wide {
            true => usage::site_days(view, span)?,
            false => Vec::new(),
        };
        Ok((registries, sites))
    })?;
    Ok(Json(UsageOverview {
        from: date(span.0),
        to: date(span.1),
        registries: named(registries, |name| readable(&allowed, name)),
        sites: named(sites, |_| true),
    }))
}

async fn top_packages(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<InsightsQuery>,
) -> Result<Json<TopPackages>, ApiError> {
    let span = day_span(&state, &query)?;
    let limit = limit_of(&query, DEFAULT_LIMIT)?;
    let allowed = match &query.registry {
        Some(name) => {
            state.registry_for(&caller, name, Role::Read)?;
            Some(vec![name.clone()])
        }
        None => readable_registries(&state, &caller)?,
    };
    let within: Vec<&str> = query.registry.iter().map(String::as_str).collect();
    let mut packages: HashMap<(String, String), UsageCount> = HashMap::new();
    state.meta.read(|view| {
        usage::version_days(view, span, &within, |row| {
            if readable(&allowed, &row.registry) {
                packages
                    .entry((row.registry, row.package))
                    .or_default()
                    .add(&row.count);
            }
        })
    })?;
    let mut packages: Vec<PackageUsage> = packages
        .into_iter()
        .filter(|(_, count)| count.downloads > 0)
        .map(|((registry, package), count)| PackageUsage {
            registry,
            package,
            figures: figures(&count),
        })
        .collect();
    packages.sort_by(|a, b| {
        by_downloads(&a.figures, &b.figures)
            .then_with(|| (&a.registry, &a.package).cmp(&(&b.registry, &b.package)))
    });
    packages.truncate(limit);
    Ok(Json(TopPackages {
        from: date(span.0),
        to: date(span.1),
        packages,
    }))
}

/// The query's registry and package, which these figures need.
fn named_package(query: &InsightsQuery) -> Result<(&str, &str), ApiError> {
    match (&query.registry, &query.package) {
        (Some(registry), Some(package)) => Ok((registry, package)),
        _ => Err(ApiError::invalid("registry and package are required")),
    }
}

async fn package(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<InsightsQuery>,
) -> Result<Json<PackageInsights>, ApiError> {
    let span = day_span(&state, &query)?;
    let (registry, package) = named_package(&query)?;
    state.registry_for(&caller, registry, Role::Read)?;
    let admin = state.registry_for(&caller, registry, Role::Admin).is_ok();
    let (totals, recent, daily, consumers) = state
        .meta
        .read(|view| {
            if view.package(registry, package)?.is_none() {
                return Ok(None);
            }
            // Every version, downloaded or not.
            let mut totals: BTreeMap<String, UsageCount> = view
                .version_names(registry, package)?
                .into_iter()
                .map(|name| (name, UsageCount::default()))
                .collect();
            for (version, count) in usage::package_versions_usage(view, registry, package)? {
                totals.insert(version, count);
            }
            let mut recent: BTreeMap<String, UsageCount> = BTreeMap::new();
            let mut daily: BTreeMap<u32, UsageCount> = BTreeMap::new();
            usage::version_days(view, span, &[registry, package], |row| {
                daily.entry(row.day).or_default().add(&row.count);
                if !row.version.is_empty() {
                    recent.entry(row.version).or_default().add(&row.count);
                }
            })?;
            let consumers = match admin {
                true => usage::consumers(view, registry, package)?,
                false => Vec::new(),
            };
            Ok(Some((totals, recent, daily, consumers)))
        })?
        .ok_or_else(|| ApiError::not_found(format!("package {package} not found in {registry}")))?;
    let mut versions: Vec<VersionUsage> = totals
        .into_iter()
        .map(|(version, total)| VersionUsage {
            recent: figures(&recent.get(&version).copied().unwrap_or_default()),
            total: figures(&total),
            version,
        })
        .collect();
    versions.sort_by(|a, b| {
        by_downloads(&a.recent, &b.recent)
            .then_with(|| by_downloads(&a.total, &b.total))
            .then_with(|| a.version.cmp(&b.version))
    });
    let mut consumers: Vec<ConsumerUsage> = consumers
        .into_iter()
        .map(|(consumer, record)| ConsumerUsage {
            consumer,
            figures: figures(&record.count),
            last_version: record.last_version,
        })
        .collect();
    consumers.sort_by(|a, b| by_downloads(&a.figures, &b.figures));
    Ok(Json(PackageInsights {
        registry: registry.to_string(),
        package: package.to_string(),
        from: date(span.0),
        to: date(span.1),
        versions,
        daily: daily
            .iter()
            .map(|(day, count)| day_usage(*day, count))
            .collect(),
        consumers,
    }))
}

async fn idle(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<InsightsQuery>,
) -> Result<Json<IdleVersions>, ApiError> {
    let registry = query
        .registry
        .as_deref()
        .ok_or_else(|| ApiError::invalid("registry is required"))?;
    state.registry_for(&caller, registry, Role::Read)?;
    let days = query.days.unwrap_or(DEFAULT_DAYS);
    let limit = limit_of(&query, DEFAULT_IDLE_LIMIT)?;
    let cutoff = state.now_ms().saturating_sub(u64::from(days) * DAY_MS);
    let (found, truncated) = state.meta.read(|view| {
        let mut idle = usage::idle_versions(view, registry, cutoff, limit + 1)?;
        let truncated = idle.len() > limit;
        idle.truncate(limit);
        let mut found = Vec::with_capacity(idle.len());
        for (package, version, accessed) in idle {
            let Some(stored) = view.version(registry, &package, &version)? else {
                continue;
            };
            let last_download_at = (accessed > stored.created_at).then_some(accessed);
            found.push(IdleVersion {
                package,
                version,
                last_download_at,
                created_at: stored.created_at,
            });
        }
        Ok((found, truncated))
    })?;
    Ok(Json(IdleVersions {
        registry: registry.to_string(),
        days,
        versions: found,
        truncated,
    }))
}
