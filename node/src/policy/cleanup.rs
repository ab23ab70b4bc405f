//! Cleanup policies: which versions of a registry its rules delete ([`plan`]), and a run that deletes
//! them through Raft ([`run`]). A dry run and a real run compute the same plan from the same state, so
//! the dry run lists exactly what the real run deletes. The chunks freed are removed later by
//! [`super::gc`].
//!
//! A rule applies to the versions whose package and version names match its globs. Its conditions are
//! ANDed: `keep_last` selects all but the newest N of a package's matching versions (by creation
//! time), `older_than_days` the ones created longer ago, `not_downloaded_days` the ones whose last
//! access (remote registries record it; otherwise the creation time) is older. A rule without a
//! condition selects nothing. A selected version is kept when the rule's exceptions cover it: a tag
//! points at it (`keep_tagged`), a tag matching one of the `keep_tags` globs points at it, or its metadata has one of the `keep_metadata` `key:value` pairs. A
//! version is deleted when some rule selects it and does not keep it; the first such rule is reported.
//! Each deletion is recorded in the audit trail with it (action [`CLEANUP_ACTION`], actor
//! `cleanup`, the rule in its detail), so the event stream and webhooks tell of it.

use std::collections::BTreeMap;

use arca_protocol::api::{CleanupReport, PlannedDeletion, RefusedDeletion};
use arca_protocol::model::{AuditEvent, CleanupPolicy, CleanupRule};
use arca_protocol::{Command, Version};

use crate::meta::usage::{self, DAY_MS, access_time};
use crate::meta::view::ReadResult;
use crate::meta::{Meta, ProposeError, StateRead, StoreError};

/// A version the policy deletes.
pub type Planned = PlannedDeletion;

/// Packages read per step of a plan.
const PAGE: usize = 1000;

/// Why a cleanup could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// The registry does not exist.
    #[error("registry {0} not found")]
    NotFound(String),
    /// The metadata could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The versions of `registry` its cleanup policy deletes at `now_ms`, in package and version order.
/// A rule that only looks at downloads reads the versions idle long enough from the last-access
/// index; the others go through the registry's packages a page at a time.
pub fn plan(
    view: &(impl StateRead + ?Sized),
    registry: &str,
    now_ms: u64,
) -> Result<Vec<Planned>, CleanupError> {
    let policy = view
        .registry(registry)?
        .ok_or_else(|| CleanupError::NotFound(registry.to_string()))?
        .cleanup;
    let mut chosen: BTreeMap<(String, String), Planned> = BTreeMap::new();
    for rule in &policy.rules {
        if rule.keep_last.is_none()
            && rule.older_than_days.is_none()
            && rule.not_downloaded_days.is_none()
        {
            continue;
        }
        let mut consider =
            |package: &str, versions: Vec<Version>, total: usize| -> ReadResult<()> {
                if versions.is_empty() {
                    return Ok(());
                }
                let tags = view.tags(registry, package)?;
                let accessed = versions
                    .iter()
                    .map(|v| Ok((v.name.clone(), access_time(view, registry, package, v)?)))
                    .collect::<ReadResult<BTreeMap<_, _>>>()?;
                let candidates = Candidates {
                    total,
                    tags: &tags,
                    accessed: &accessed,
                };
                for (version, reason) in rule_selects(rule, versions, &candidates, now_ms) {
                    chosen
                        .entry((package.to_string(), version.name.clone()))
                        .or_insert_with(|| Planned {
                            package: package.to_string(),
                            version: version.name,
                            rule: rule.name.clone(),
                            reason,
                        });
                }
                Ok(())
            };
        match (rule.keep_last, rule.not_downloaded_days) {
            (None, Some(days)) => {
                for (package, versions) in idle_versions(view, registry, now_ms, days)? {
                    let matching = matching_versions(rule, &package, versions);
                    let total = matching.len();
                    consider(&package, matching, total)?;
                }
            }
            _ => {
                let mut after: Option<String> = None;
                loop {
                    let names = view.package_names(registry, after.as_deref(), PAGE)?;
                    for package in &names {
                        let versions = view.versions(registry, package)?;
                        let matching = matching_versions(rule, package, versions);
                        let total = matching.len();
                        consider(package, matching, total)?;
                    }
                    match names.last() {
                        Some(last) if names.len() == PAGE => after = Some(last.clone()),
                        _ => break,
                    }
                }
            }
        }
    }
    Ok(chosen.into_values().collect())
}

/// The versions of `rule`'s packages whose names its version pattern matches.
fn matching_versions(rule: &CleanupRule, package: &str, versions: Vec<Version>) -> Vec<Version> {
    if !glob_match(&rule.package_pattern, package) {
        return Vec::new();
    }
    versions
        .into_iter()
        .filter(|v| glob_match(&rule.version_pattern, &v.name))
        .collect()
}

/// The versions of `registry` not downloaded (else not created) for more than `days` at `now_ms`,
/// by package, from the last-access index.
fn idle_versions(
    view: &(impl StateRead + ?Sized),
    registry: &str,
    now_ms: u64,
    days: u32,
) -> ReadResult<BTreeMap<String, Vec<Version>>> {
    let cutoff = now_ms.saturating_sub(u64::from(days) * DAY_MS);
    let mut found: BTreeMap<String, Vec<Version>> = BTreeMap::new();
    for (package, version, _) in usage::idle_versions(view, registry, cutoff, usize::MAX)? {
        if let Some(stored) = view.version(registry, &package, &version)? {
            found.entry(package).or_default().push(stored);
        }
    }
    Ok(found)
}

/// What a rule weighs a package's versions with: how many its patterns match, the package's tags,
/// and when each version was last downloaded (else created).
struct Candidates<'a> {
    total: usize,
    tags: &'a BTreeMap<String, String>,
    accessed: &'a BTreeMap<String, u64>,
}

/// The versions of a package that `rule` deletes, with the reason: of `versions` (those its
/// patterns match, `candidates.total` of them), all but the newest `keep_last`, and those created
/// or last downloaded longer ago than it says, unless a tag or metadata it keeps covers them.
fn rule_selects(
    rule: &CleanupRule,
    mut versions: Vec<Version>,
    candidates: &Candidates<'_>,
    now_ms: u64,
) -> Vec<(Version, String)> {
    // Newest first: by creation time, then by name.
    versions.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.name.cmp(&a.name))
    });
    let mut selected = Vec::new();
    for (index, version) in versions.into_iter().enumerate() {
        let mut reasons = Vec::new();
        if let Some(keep) = rule.keep_last {
            if index < keep as usize {
                continue;
            }
            reasons.push(format!(
                "not among the newest {keep} of {} versions (number {})",
                candidates.total,
                index + 1
            ));
        }
        if let Some(days) = rule.older_than_days {
            let age = now_ms.saturating_sub(version.created_at);
            if age <= u64::from(days) * DAY_MS {
                continue;
            }
            reasons.push(format!(
                "created {} days ago (more than {days})",
                age / DAY_MS
            ));
        }
        if let Some(days) = rule.not_downloaded_days {
            let accessed = candidates
                .accessed
                .get(&version.name)
                .copied()
                .unwrap_or(version.created_at);
            let idle = now_ms.saturating_sub(accessed);
            if idle <= u64::from(days) * DAY_MS {
                continue;
            }
            reasons.push(format!(
                "not downloaded for {} days (more than {days})",
                idle / DAY_MS
            ));
        }
        let kept_by_tag = candidates.tags.iter().any(|(tag, target)| {
            target == &version.name
                && (rule.keep_tagged || rule.keep_tags.iter().any(|p| glob_match(p, tag)))
        });
        if kept_by_tag {
            continue;
        }
        if rule
            .keep_metadata
            .iter()
            .any(|pair| metadata_matches(pair, &version))
        {
            continue;
        }
        let reason = reasons.join("; ");
        selected.push((version, reason));
    }
    selected
}

/// Whether a `key:value` exception (or a bare `key`: any value) covers the version's metadata.
fn metadata_matches(pair: &str, version: &Version) -> bool {
    match pair.split_once(':') {
        Some((key, value)) => {
            version.metadata.get(key.trim()).map(String::as_str) == Some(value.trim())
        }
        None => version.metadata.contains_key(pair.trim()),
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters and `?` any one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it currently stands for the end of.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Checks a policy before it is stored: named rules, non-empty patterns, `key:value` exceptions.
pub fn validate(policy: &CleanupPolicy) -> Result<(), String> {
    for (index, rule) in policy.rules.iter().enumerate() {
        if rule.name.trim().is_empty() {
            return Err(format!("rule {} has no name", index + 1));
        }
        if policy.rules[..index].iter().any(|r| r.name == rule.name) {
            return Err(format!("two rules are named {}", rule.name));
        }
        if rule.package_pattern.is_empty() || rule.version_pattern.is_empty() {
            return Err(format!("rule {}: patterns must not be empty", rule.name));
        }
        if let Some(bad) = rule.keep_metadata.iter().find(|pair| {
            pair.split(':')
                .next()
                .is_none_or(|key| key.trim().is_empty())
        }) {
            return Err(format!(
                "rule {}: keep_metadata {bad:?} is not key:value",
                rule.name
            ));
        }
    }
    Ok(())
}

/// The method part of the audit action of a deletion by cleanup.
pub const CLEANUP_ACTION: &str = "CLEANUP";

/// The audit event of the deletion of `planned` from `registry` at `at`.
fn deletion_event(registry: &str, planned: &PlannedDeletion, at: u64) -> AuditEvent {
    AuditEvent {
        id: 0,
        at,
        actor: "cleanup".to_string(),
        actor_id: None,
        source_ip: String::new(),
        action: format!(
            "{CLEANUP_ACTION} /api/v1/registries/{{registry}}/packages/{{package}}/versions/{{version}}"
        ),
        registry: Some(registry.to_string()),
        target: format!(
            "/api/v1/registries/{registry}/packages/{}/versions/{}",
            planned.package, planned.version
        ),
        result: 200,
        detail: Some(format!("cleanup rule {}", planned.rule)),
    }
}

/// Plans the cleanup of `registry` now and, unless `dry_run`, deletes what it plans, one
/// `CleanupVersion` each (with its audit event) (which an immutable registry accepts: retention by policy is the one deletion
/// it allows); a deletion the state machine refuses (the version went meanwhile) is reported as refused.
pub async fn run(
    meta: &Meta,
    now_ms: u64,
    registry: &str,
    dry_run: bool,
) -> Result<CleanupReport, CleanupError> {
    let planned = plan(&meta.view()?, registry, now_ms)?;
    let mut report = CleanupReport {
        registry: registry.to_string(),
        dry_run,
        planned: planned.clone(),
        deleted: Vec::new(),
        refused: Vec::new(),
    };
    if dry_run {
        return Ok(report);
    }
    for planned in planned {
        let command = Command::Batch {
            commands: vec![
                Command::RecordAudit {
                    events: vec![deletion_event(registry, &planned, now_ms)],
                },
                Command::CleanupVersion {
                    registry: registry.to_string(),
                    package: planned.package.clone(),
                    version: planned.version.clone(),
                    rule: planned.rule.clone(),
                },
            ],
        };
        match meta.propose(command).await {
            Ok(()) => {
                tracing::info!(
                    registry,
                    package = %planned.package,
                    version = %planned.version,
                    rule = %planned.rule,
                    "cleanup deleted a version"
                );
                report.deleted.push(planned);
            }
            Err(error @ (ProposeError::Refused(_) | ProposeError::Unavailable(_))) => {
                report.refused.push(RefusedDeletion {
                    planned,
                    refused: error.to_string(),
                });
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::testing::TestState;
    use crate::proxy::LAST_ACCESS;
    use arca_protocol::{BlobRef, ChunkId, ChunkRef, Overwrite, PackageType, Registry, Sha256};
    use std::collections::BTreeMap;

    const NOW: u64 = 1000 * DAY_MS;

    fn state(immutable: bool) -> TestState {
        let state = TestState::new();
        state
            .apply(Command::CreateRegistry {
                registry: Registry {
                    name: "files".into(),
                    package_type: PackageType::Generic,
                    description: String::new(),
                    immutable,
                    allow_anonymous_read: false,
                    allow_redeploy: false,
                    created_at: 1,
                    metadata: Default::default(),
                    replication: Default::default(),
                    kind: Default::default(),
                    upstream: None,
                    members: Vec::new(),
                    publish_to: None,
                    audit_downloads: false,
                    cleanup: Default::default(),
                    firewall: Default::default(),
                },
            })
            .expect("create");
        state
    }

    /// Puts `package/version`, created `days_ago` days before [`NOW`].
    fn put(state: &TestState, package: &str, version: &str, days_ago: u64) {
        let byte = version.len() as u8;
        state
            .apply(Command::PutFile {
                registry: "files".into(),
                package: package.into(),
                version: version.into(),
                filename: "f.bin".into(),
                blob: BlobRef {
                    sha256: Sha256([byte; 32]),
                    size: 1,
                    chunks: vec![ChunkRef {
                        id: ChunkId([byte; 32]),
                        size: 1,
                    }],
                    inline: None,
                },
                attributes: BTreeMap::new(),
                tags: Vec::new(),
                overwrite: Overwrite::Allow,
                at: NOW - days_ago * DAY_MS,
            })
            .expect("put");
    }

    fn set_policy(state: &TestState, rules: Vec<CleanupRule>) {
        state
            .apply(Command::SetCleanupPolicy {
                registry: "files".into(),
                policy: CleanupPolicy { rules },
            })
            .expect("set policy");
    }

    fn rule(name: &str) -> CleanupRule {
        CleanupRule {
            name: name.into(),
            ..Default::default()
        }
    }

    fn planned(state: &TestState) -> Vec<(String, String)> {
        plan(&state.view(), "files", NOW)
            .expect("plan")
            .into_iter()
            .map(|p| (p.package, p.version))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn glob_matches_stars_and_question_marks() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("1.*", "1.2.3"));
        assert!(!glob_match("1.*", "2.1"));
        assert!(glob_match("*-SNAPSHOT", "1.0-SNAPSHOT"));
        assert!(!glob_match("*-SNAPSHOT", "1.0"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("a*b*c", "aXXbYYbc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("lib-*", "lib-"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("**x", "x"));
    }

    #[test]
    fn no_policy_or_no_condition_deletes_nothing() {
        let state = state(false);
        put(&state, "tool", "1.0", 500);
        assert!(planned(&state).is_empty());
        set_policy(&state, vec![rule("nothing")]);
        assert!(planned(&state).is_empty());
        assert!(matches!(
            plan(&state.view(), "missing", NOW),
            Err(CleanupError::NotFound(_))
        ));
    }

    #[test]
    fn keep_last_counts_per_package_newest_by_creation() {
        let state = state(false);
        for (version, days) in [("1.0", 40), ("1.1", 30), ("1.2", 20), ("1.3", 10)] {
            put(&state, "tool", version, days);
        }
        // Created out of name order: 0.9 is the newest.
        put(&state, "lib", "0.9", 1);
        put(&state, "lib", "2.0", 5);
        put(&state, "lib", "3.0", 9);
        set_policy(
            &state,
            vec![CleanupRule {
                keep_last: Some(2),
                ..rule("last-two")
            }],
        );
        assert_eq!(
            planned(&state),
            pairs(&[("lib", "3.0"), ("tool", "1.0"), ("tool", "1.1")])
        );
        let first = &plan(&state.view(), "files", NOW).expect("plan")[0];
        assert_eq!(first.rule, "last-two");
        assert!(first.reason.contains("newest 2"), "{}", first.reason);
    }

    #[test]
    fn age_conditions_and_and_with_keep_last() {
        let state = state(false);
        for (version, days) in [("1.0", 100), ("1.1", 60), ("1.2", 20), ("1.3", 10)] {
            put(&state, "tool", version, days);
        }
        set_policy(
            &state,
            vec![CleanupRule {
                older_than_days: Some(30),
                ..rule("old")
            }],
        );
        assert_eq!(planned(&state), pairs(&[("tool", "1.0"), ("tool", "1.1")]));
        // ANDed: older than 30 days and not among the newest 3.
        set_policy(
            &state,
            vec![CleanupRule {
                older_than_days: Some(30),
                keep_last: Some(3),
                ..rule("old")
            }],
        );
        assert_eq!(planned(&state), pairs(&[("tool", "1.0")]));
    }

    #[test]
    fn not_downloaded_uses_counted_downloads_or_an_older_builds_last_access_else_creation() {
        let state = state(false);
        put(&state, "tool", "1.0", 200);
        put(&state, "tool", "1.1", 200);
        put(&state, "tool", "1.2", 10);
        state
            .apply(Command::SetAttributes {
                registry: "files".into(),
                package: "tool".into(),
                version: "1.1".into(),
                set: [(LAST_ACCESS.to_string(), (NOW - 5 * DAY_MS).to_string())].into(),
                remove: Vec::new(),
                at: NOW,
            })
            .expect("attributes");
        // A download counted by the usage figures keeps an old version too.
        put(&state, "tool", "1.3", 200);
        flush(&state, 1, usage::day_of(NOW - 5 * DAY_MS), Some("1.3"), 1);
        set_policy(
            &state,
            vec![CleanupRule {
                not_downloaded_days: Some(90),
                ..rule("idle")
            }],
        );
        assert_eq!(planned(&state), pairs(&[("tool", "1.0")]));
        let idle = usage::idle_versions(&state.view(), "files", NOW - 90 * DAY_MS, 10);
        let idle: Vec<_> = idle.expect("idle").into_iter().map(|(_, v, _)| v).collect();
        assert_eq!(idle, ["1.0"]);
    }

    /// A flush of `downloads` of `tool` `version` (`None`: layer bytes) on day `day`.
    fn flush(state: &TestState, batch: u64, day: u32, version: Option<&str>, downloads: u64) {
        state
            .apply(Command::RecordUsage {
                node_id: 1,
                batch,
                site: "eu".into(),
                tallies: vec![arca_protocol::model::UsageTally {
                    day,
                    registry: "files".into(),
                    package: "tool".into(),
                    version: version.map(str::to_string),
                    consumer: "user:ci".into(),
                    downloads,
                    bytes: downloads * 10,
                    last_at: u64::from(day) * DAY_MS,
                }],
                keep_days: 30,
            })
            .expect("usage");
    }

    #[test]
    fn usage_flushes_count_once_and_daily_figures_age_out() {
        let state = state(false);
        put(&state, "tool", "1.0", 10);
        let today = usage::day_of(NOW);
        flush(&state, 5, today - 40, Some("1.0"), 2);
        // The same flush again (its outcome was unclear), and an older one: neither counts.
        flush(&state, 5, today - 40, Some("1.0"), 2);
        flush(&state, 4, today - 40, Some("1.0"), 2);
        flush(&state, 6, today - 40, None, 0);
        let view = state.view();
        let total = usage::version_usage(&view, "files", "tool", "1.0").expect("read");
        assert_eq!(total.map(|t| (t.downloads, t.bytes)), Some((2, 20)));
        let consumers = usage::consumers(&view, "files", "tool").expect("read");
        assert_eq!(consumers.len(), 1);
        assert_eq!(consumers[0].0, "user:ci");
        assert_eq!(consumers[0].1.last_version.as_deref(), Some("1.0"));
        let sites = usage::site_days(&view, (today - 40, today)).expect("read");
        assert_eq!(sites.len(), 1);
        assert_eq!((sites[0].1.as_str(), sites[0].2.downloads), ("eu", 2));
        drop(view);
        // A flush 40 days later drops the daily figures older than 30 days; totals stay.
        flush(&state, 7, today, Some("1.0"), 1);
        let view = state.view();
        let mut days = Vec::new();
        usage::version_days(&view, (today - 40, today), &[], |row| days.push(row.day))
            .expect("read");
        assert_eq!(days, [today]);
        assert!(
            usage::registry_days(&view, (0, today - 1))
                .expect("read")
                .is_empty()
        );
        let total = usage::version_usage(&view, "files", "tool", "1.0").expect("read");
        assert_eq!(total.map(|t| t.downloads), Some(3));
        assert_eq!(usage::package_downloads(&view, "files", "tool"), 3);
        drop(view);
        // Deleting the version forgets its totals.
        state
            .apply(Command::DeleteVersion {
                registry: "files".into(),
                package: "tool".into(),
                version: "1.0".into(),
            })
            .expect("delete");
        let view = state.view();
        assert_eq!(
            usage::version_usage(&view, "files", "tool", "1.0").expect("read"),
            None
        );
        assert_eq!(usage::package_downloads(&view, "files", "tool"), 0);
        assert!(
            usage::consumers(&view, "files", "tool")
                .expect("read")
                .is_empty()
        );
    }

    #[test]
    fn patterns_choose_packages_and_versions() {
        let state = state(false);
        put(&state, "app", "1.0-SNAPSHOT", 50);
        put(&state, "app", "1.0", 50);
        put(&state, "lib", "1.0-SNAPSHOT", 50);
        set_policy(
            &state,
            vec![CleanupRule {
                package_pattern: "a*".into(),
                version_pattern: "*-SNAPSHOT".into(),
                older_than_days: Some(7),
                ..rule("snapshots")
            }],
        );
        assert_eq!(planned(&state), pairs(&[("app", "1.0-SNAPSHOT")]));
    }

    #[test]
    fn tagged_versions_are_kept_unless_the_rule_says_otherwise() {
        let state = state(false);
        put(&state, "tool", "1.0", 50);
        put(&state, "tool", "1.1", 40);
        state
            .apply(Command::SetTag {
                registry: "files".into(),
                package: "tool".into(),
                tag: "stable".into(),
                version: "1.0".into(),
            })
            .expect("tag");
        let old = CleanupRule {
            older_than_days: Some(30),
            ..rule("old")
        };
        set_policy(&state, vec![old.clone()]);
        assert_eq!(planned(&state), pairs(&[("tool", "1.1")]));
        set_policy(
            &state,
            vec![CleanupRule {
                keep_tagged: false,
                ..old.clone()
            }],
        );
        assert_eq!(planned(&state), pairs(&[("tool", "1.0"), ("tool", "1.1")]));
        // Tag patterns keep what they match, and only that.
        for (pattern, expected) in [
            ("st*", vec![("tool", "1.1")]),
            ("latest", vec![("tool", "1.0"), ("tool", "1.1")]),
        ] {
            set_policy(
                &state,
                vec![CleanupRule {
                    keep_tagged: false,
                    keep_tags: vec![pattern.into()],
                    ..old.clone()
                }],
            );
            assert_eq!(planned(&state), pairs(&expected), "{pattern}");
        }
    }

    #[test]
    fn metadata_exceptions_keep_versions() {
        let state = state(false);
        for (version, days) in [("1.0", 40), ("1.1", 30), ("1.2", 20), ("1.3", 10)] {
            put(&state, "tool", version, days);
        }
        for (version, value) in [("1.0", "true"), ("1.1", "false")] {
            state
                .apply(Command::SetMetadata {
                    target: arca_protocol::MetadataTarget::Version {
                        registry: "files".into(),
                        package: "tool".into(),
                        version: version.into(),
                    },
                    entries: [("approved".to_string(), value.to_string())].into(),
                })
                .expect("metadata");
        }
        set_policy(
            &state,
            vec![CleanupRule {
                keep_last: Some(2),
                keep_metadata: vec!["approved:true".into()],
                ..rule("last-two")
            }],
        );
        assert_eq!(planned(&state), pairs(&[("tool", "1.1")]));
        // A bare key keeps any value.
        set_policy(
            &state,
            vec![CleanupRule {
                keep_last: Some(2),
                keep_metadata: vec!["approved".into()],
                ..rule("last-two")
            }],
        );
        assert!(planned(&state).is_empty());
    }

    #[test]
    fn the_first_deleting_rule_is_reported_once() {
        let state = state(false);
        put(&state, "tool", "1.0", 100);
        put(&state, "tool", "1.1", 1);
        set_policy(
            &state,
            vec![
                CleanupRule {
                    older_than_days: Some(30),
                    keep_metadata: vec!["keep:yes".into()],
                    ..rule("old")
                },
                CleanupRule {
                    keep_last: Some(1),
                    ..rule("last")
                },
            ],
        );
        let plan = plan(&state.view(), "files", NOW).expect("plan");
        assert_eq!(plan.len(), 1);
        assert_eq!(
            (plan[0].version.as_str(), plan[0].rule.as_str()),
            ("1.0", "old")
        );
    }

    #[test]
    fn immutable_registries_accept_only_cleanup_deletions() {
        let state = state(true);
        put(&state, "tool", "1.0", 100);
        put(&state, "tool", "1.1", 1);
        set_policy(
            &state,
            vec![CleanupRule {
                keep_last: Some(1),
                ..rule("last")
            }],
        );
        assert_eq!(planned(&state), pairs(&[("tool", "1.0")]));
        let delete = Command::DeleteVersion {
            registry: "files".into(),
            package: "tool".into(),
            version: "1.0".into(),
        };
        assert!(state.apply(delete).is_err());
        let cleanup = Command::CleanupVersion {
            registry: "files".into(),
            package: "tool".into(),
            version: "1.0".into(),
            rule: "last".into(),
        };
        assert_eq!(state.apply(cleanup), Ok(()));
        assert!(planned(&state).is_empty());
    }

    #[test]
    fn validation_refuses_unnamed_duplicate_and_malformed_rules() {
        let ok = CleanupPolicy {
            rules: vec![CleanupRule {
                keep_last: Some(1),
                keep_metadata: vec!["approved:true".into()],
                ..rule("a")
            }],
        };
        assert!(validate(&ok).is_ok());
        assert!(
            validate(&CleanupPolicy {
                rules: vec![rule("")]
            })
            .is_err()
        );
        assert!(
            validate(&CleanupPolicy {
                rules: vec![rule("a"), rule("a")]
            })
            .is_err()
        );
        assert!(
            validate(&CleanupPolicy {
                rules: vec![CleanupRule {
                    keep_metadata: vec![":true".into()],
                    ..rule("a")
                }]
            })
            .is_err()
        );
    }
}
