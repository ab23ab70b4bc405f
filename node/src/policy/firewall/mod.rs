//! The dependency firewall: evaluating a package version against its registry's [`FirewallPolicy`]
//! and the vulnerability database, keeping the verdict on the version, and refusing the versions it
//! blocks (and the ones an admin quarantined) to every download, copy and promotion.
//!
//! Where evaluation happens: inside the state machine's apply ([`reevaluation_for`] names what a
//! command makes the firewall look at, [`reevaluate`] does it), from replicated state and the
//! command's own time only, so every node stores the same verdict and no version is ever visible
//! without one. Creating a version (publish, remote cache fill, copy), changing its attributes or
//! the metadata of it or its package, changing the registry's policy, and importing advisories that
//! name its package all re-evaluate it. The age rule depends on the time of asking, so it is not part
//! of the stored verdict: [`current_verdict`] adds it when a version is checked, explained or
//! downloaded.
//!
//! Quarantine: a version is refused ([`refusal`]) while it is quarantined by hand, or while its
//! current verdict is BLOCKED — unless an admin released it. A release lifts a quarantine by hand and
//! overrides a BLOCKED verdict until an evaluation gives a verdict with a different status or
//! reasons (a new advisory, a policy change that objects differently); evaluations that give the same
//! verdict keep the release. Every change of a version's status is appended to the audit trail by
//! the state machine (actor `firewall`), with the rules and reasons.

pub mod osv;
pub mod versions;

use std::collections::{BTreeMap, BTreeSet};

use arca_protocol::firewall::{
    Advisory, FirewallPolicy, FirewallReason, FirewallStatus, FirewallVerdict, QuarantineRecord,
    Severity, VersionFirewall,
};
use arca_protocol::model::AuditEvent;
use arca_protocol::{
    Command, CommandError, MetadataTarget, Package, PackageType, Registry, RegistryKind, Version,
};

use self::versions::Ecosystem;
use crate::AppState;
use crate::meta::apply::{Applied, Applier};
use crate::meta::keys;
use crate::meta::tables::{Table, scalar};
use crate::meta::view::{ReadResult, StateRead, StoreError, child_key, package_key};
use crate::policy::cleanup::glob_match;

const DAY_MS: u64 = 24 * 3600 * 1000;

/// The key the advisories naming a package are indexed under: `<ecosystem>/<normalised name>`.
pub fn index_key(ecosystem: Ecosystem, name: &str) -> String {
    format!("{}/{}", ecosystem.as_str(), ecosystem.normalize_name(name))
}

/// The advisories indexed for `package` in `ecosystem` (to pass to [`evaluate`]).
pub fn advisories_for(
    view: &(impl StateRead + ?Sized),
    ecosystem: Option<Ecosystem>,
    package: &str,
) -> ReadResult<Vec<Advisory>> {
    match ecosystem {
        Some(ecosystem) => view.advisories_indexed(&index_key(ecosystem, package)),
        None => Ok(Vec::new()),
    }
}

/// Of `advisories` (those indexed for the package), the ones (not withdrawn) that affect `version`
/// of `package` in `ecosystem`, each with the versions that fix it.
pub fn matching<'a>(
    advisories: &'a [Advisory],
    ecosystem: Ecosystem,
    package: &str,
    version: &str,
) -> Vec<(&'a Advisory, Vec<String>)> {
    let wanted = ecosystem.normalize_name(package);
    advisories
        .iter()
        .filter(|a| !a.withdrawn)
        .filter_map(|advisory| {
            let hits: Vec<_> = advisory
                .affected
                .iter()
                .filter(|a| Ecosystem::parse(&a.ecosystem) == Some(ecosystem))
                .filter(|a| ecosystem.normalize_name(&a.name) == wanted)
                .filter(|a| versions::affects(ecosystem, a, version))
                .collect();
            (!hits.is_empty()).then(|| {
                let fixed = hits.iter().flat_map(|a| versions::fixed_versions(a));
                (advisory, fixed.collect())
            })
        })
        .collect()
}

/// How an import of `advisories` changes the database: how many would be added, replaced and left
/// unchanged (an advisory replaces a held copy unless that was modified as late or later).
pub fn classify_import(
    view: &(impl StateRead + ?Sized),
    advisories: &[Advisory],
) -> ReadResult<(u64, u64, u64)> {
    let (mut added, mut replaced, mut unchanged) = (0, 0, 0);
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for advisory in advisories {
        let held = match seen.get(advisory.id.as_str()) {
            Some(modified) => Some(*modified),
            None => view.advisory(&advisory.id)?.map(|a| a.modified),
        };
        match held {
            Some(modified) if modified >= advisory.modified => unchanged += 1,
            Some(_) => replaced += 1,
            None => added += 1,
        }
        if held.is_none_or(|modified| modified < advisory.modified) {
            seen.insert(&advisory.id, advisory.modified);
        }
    }
    Ok((added, replaced, unchanged))
}

/// Adds advisories to the database in the state machine, replacing a held copy unless it was
/// modified as late or later, and keeps the index of the packages they name.
pub fn import(applier: &mut Applier<'_>, advisories: Vec<Advisory>, at: u64) -> ReadResult<()> {
    for advisory in advisories {
        let held = applier.advisory(&advisory.id)?;
        if held
            .as_ref()
            .is_some_and(|held| held.modified >= advisory.modified)
        {
            continue;
        }
        for affected in held.iter().flat_map(|held| held.affected.iter()) {
            if let Some(ecosystem) = Ecosystem::parse(&affected.ecosystem) {
                let key = index_key(ecosystem, &affected.name);
                applier.delete(
                    Table::AdvisoryIndex,
                    &keys::of(&[key.as_str(), &advisory.id]),
                )?;
            }
        }
        for affected in &advisory.affected {
            if let Some(ecosystem) = Ecosystem::parse(&affected.ecosystem) {
                let key = index_key(ecosystem, &affected.name);
                applier.put(
                    Table::AdvisoryIndex,
                    &keys::of(&[key.as_str(), &advisory.id]),
                    &(),
                )?;
            }
        }
        if held.is_none() {
            let count = applier.counter(scalar::ADVISORY_COUNT)?;
            applier.set_scalar(scalar::ADVISORY_COUNT, &(count + 1))?;
        }
        applier.put(
            Table::Advisories,
            &keys::of(&[advisory.id.as_str()]),
            &advisory,
        )?;
    }
    applier.set_scalar(scalar::FIREWALL_LAST_IMPORT, &Some(at))
}

/// What is evaluated: a package version and what is known of it.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    /// The package name.
    pub package: &'a str,
    /// The version.
    pub version: &'a str,
    /// Its license (an SPDX expression), when known.
    pub license: Option<String>,
    /// Metadata of the version, then of its package.
    pub metadata: Vec<(&'a str, &'a str)>,
    /// When it entered the registry, unix milliseconds (`None`: it has not).
    pub created_at: Option<u64>,
}

impl<'a> Subject<'a> {
    /// A stored version of `package` in a registry of `package_type`.
    pub fn stored(package_type: PackageType, package: &'a Package, version: &'a Version) -> Self {
        Subject {
            package: &package.name,
            version: &version.name,
            license: license_of(package_type, version),
            metadata: version
                .metadata
                .iter()
                .chain(package.metadata.iter())
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            created_at: Some(version.created_at),
        }
    }
}

/// The license a version declares: the `license` metadata key when set by hand, else what its format
/// recorded (npm's `license`, PyPI's `license_expression`, `license` or `License ::` classifiers).
pub fn license_of(package_type: PackageType, version: &Version) -> Option<String> {
    if let Some(license) = version.metadata.get("license") {
        return Some(license.clone());
    }
    let text = |key: &str| {
        version
            .attributes
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("UNKNOWN"))
    };
    match package_type {
        PackageType::Npm => {
            let manifest: serde_json::Value =
                serde_json::from_str(version.attributes.get("npm.manifest")?).ok()?;
            match manifest.get("license")? {
                serde_json::Value::String(s) => Some(s.clone()),
                other => other.get("type")?.as_str().map(str::to_string),
            }
        }
        PackageType::Pypi => text("pypi.license_expression")
            .or_else(|| text("pypi.license").filter(|l| !l.contains('\n') && l.len() < 100))
            .or_else(|| {
                let classifiers: Vec<String> =
                    serde_json::from_str(version.attributes.get("pypi.classifiers")?).ok()?;
                classifiers.iter().find_map(|c| classifier_license(c))
            }),
        _ => text("license"),
    }
}

/// The SPDX id of a `License :: ...` trove classifier Arca knows.
fn classifier_license(classifier: &str) -> Option<String> {
    let name = classifier
        .strip_prefix("License :: ")?
        .rsplit(" :: ")
        .next()?;
    let spdx = match name {
        "MIT License" => "MIT",
        "Apache Software License" => "Apache-2.0",
        "BSD License" => "BSD-3-Clause",
        "ISC License (ISCL)" => "ISC",
        "Mozilla Public License 2.0 (MPL 2.0)" => "MPL-2.0",
        "GNU General Public License v3 (GPLv3)" => "GPL-3.0-only",
        "GNU General Public License v2 (GPLv2)" => "GPL-2.0-only",
        "GNU Affero General Public License v3" => "AGPL-3.0-only",
        "GNU Lesser General Public License v3 (LGPLv3)" => "LGPL-3.0-only",
        "The Unlicense (Unlicense)" => "Unlicense",
        "Python Software Foundation License" => "PSF-2.0",
        _ => return None,
    };
    Some(spdx.to_string())
}

fn reason(rule: &str, status: FirewallStatus, message: String) -> FirewallReason {
    FirewallReason {
        rule: rule.to_string(),
        status,
        message,
        advisory: None,
    }
}

/// What the policy's rules say of `subject`, the age rule included only when `now` is given. Each
/// objecting rule gives a reason; an exemption (an allow pattern or a `key:value` the metadata has)
/// comes first and turns every objection into ALLOWED.
pub fn evaluate(
    policy: &FirewallPolicy,
    advisories: &[Advisory],
    ecosystem: Option<Ecosystem>,
    subject: &Subject<'_>,
    now: Option<u64>,
) -> (FirewallStatus, Vec<FirewallReason>) {
    let mut reasons = Vec::new();
    if let (Some(rule), Some(ecosystem)) = (&policy.vulnerabilities, ecosystem) {
        for (advisory, fixed) in matching(advisories, ecosystem, subject.package, subject.version) {
            let severity = match advisory.severity {
                Severity::Unknown => rule.unknown_severity,
                known => known,
            };
            if severity < rule.min_severity {
                continue;
            }
            let mut message = format!("{} ({}", advisory.id, advisory.severity);
            if let Some(score) = &advisory.score {
                message.push_str(&format!(" {score}"));
            }
            message.push(')');
            if !advisory.summary.is_empty() {
                message.push_str(&format!(": {}", advisory.summary));
            }
            if !fixed.is_empty() {
                message.push_str(&format!("; fixed in {}", fixed.join(", ")));
            }
            reasons.push(FirewallReason {
                advisory: Some(advisory.id.clone()),
                ..reason("vulnerability", rule.action.status(), message)
            });
        }
    }
    if let Some(rule) = &policy.licenses {
        match &subject.license {
            Some(license) => {
                if let Some(problem) = license_problem(rule, license) {
                    reasons.push(reason("license", rule.action.status(), problem));
                }
            }
            None => {
                if let Some(action) = rule.unknown {
                    let message = "the license is unknown".to_string();
                    reasons.push(reason("license", action.status(), message));
                }
            }
        }
    }
    for pattern in &policy.deny {
        if glob_match(&pattern.package, subject.package)
            && glob_match(&pattern.version, subject.version)
        {
            let message = format!(
                "matches the deny pattern {}@{}",
                pattern.package, pattern.version
            );
            reasons.push(reason("deny", pattern.action.status(), message));
        }
    }
    if let (Some(rule), Some(now)) = (&policy.age, now) {
        let age = now.saturating_sub(subject.created_at.unwrap_or(now));
        if age < u64::from(rule.min_days) * DAY_MS {
            let message = format!(
                "published {} days ago (the policy wants at least {})",
                age / DAY_MS,
                rule.min_days
            );
            reasons.push(reason("age", rule.action.status(), message));
        }
    }
    if let Some(exemption) = exemption(policy, subject).filter(|_| !reasons.is_empty()) {
        for objection in &mut reasons {
            objection.message = format!("{} (overridden: {})", objection.message, exemption.rule);
            objection.status = FirewallStatus::Allowed;
        }
        reasons.insert(0, exemption);
    }
    let status = reasons.iter().map(|r| r.status).max().unwrap_or_default();
    (status, reasons)
}

/// Why `license` fails the rule, if it does. `A OR B` passes when one side passes; `A AND B` (and
/// `WITH` exceptions) when every part does.
fn license_problem(rule: &arca_protocol::firewall::LicenseRule, license: &str) -> Option<String> {
    let listed = |list: &[String], id: &str| list.iter().any(|l| l.eq_ignore_ascii_case(id));
    let cleaned = license.replace(['(', ')'], " ");
    let alternatives: Vec<Vec<&str>> = cleaned
        .split(" OR ")
        .map(|side| {
            side.split(" AND ")
                .flat_map(|part| part.split(" WITH ").take(1))
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .collect()
        })
        .collect();
    let passes = |ids: &Vec<&str>| {
        ids.iter()
            .all(|id| !listed(&rule.deny, id) && (rule.allow.is_empty() || listed(&rule.allow, id)))
    };
    if alternatives.iter().any(passes) {
        return None;
    }
    if alternatives
        .iter()
        .flatten()
        .any(|id| listed(&rule.deny, id))
    {
        Some(format!("the license {license} is denied"))
    } else {
        Some(format!("the license {license} is not on the allow list"))
    }
}

/// The allow pattern or `key:value` exemption that covers `subject`, if any.
fn exemption(policy: &FirewallPolicy, subject: &Subject<'_>) -> Option<FirewallReason> {
    if let Some(pattern) = policy.allow.iter().find(|p| {
        glob_match(&p.package, subject.package) && glob_match(&p.version, subject.version)
    }) {
        let message = format!(
            "allowed by the pattern {}@{}",
            pattern.package, pattern.version
        );
        return Some(reason("allow", FirewallStatus::Allowed, message));
    }
    policy.exemptions.iter().find_map(|pair| {
        let (key, value) = pair.split_once(':')?;
        subject
            .metadata
            .iter()
            .any(|(k, v)| *k == key && *v == value)
            .then(|| {
                let message = format!("exempt by the metadata {key}:{value}");
                reason("metadata", FirewallStatus::Allowed, message)
            })
    })
}

/// Checks a policy before it is stored.
pub fn validate(policy: &FirewallPolicy) -> Result<(), String> {
    if let Some(bad) = policy
        .exemptions
        .iter()
        .find(|e| e.split_once(':').is_none_or(|(k, _)| k.is_empty()))
    {
        return Err(format!("exemption {bad:?} is not key:value"));
    }
    let patterns = policy
        .deny
        .iter()
        .map(|p| &p.package)
        .chain(policy.allow.iter().map(|p| &p.package));
    if patterns.into_iter().any(|p| p.is_empty()) {
        return Err("a package pattern is empty".into());
    }
    Ok(())
}

/// The verdict in force at `now` for a stored version: its stored verdict, with the age rule
/// applied.
pub fn current_verdict(
    registry: &Registry,
    package: &Package,
    version: &Version,
    now: u64,
) -> FirewallVerdict {
    let stored = version
        .firewall
        .as_ref()
        .map(|f| f.verdict.clone())
        .unwrap_or_default();
    let Some(rule) = &registry.firewall.age else {
        return stored;
    };
    let subject = Subject::stored(registry.package_type, package, version);
    // Only the age rule, then the exemption over all reasons.
    let age_only = FirewallPolicy {
        age: Some(rule.clone()),
        ..FirewallPolicy::default()
    };
    let (_, age) = evaluate(&age_only, &[], None, &subject, Some(now));
    if age.is_empty() {
        return stored;
    }
    let exempt = exemption(&registry.firewall, &subject).is_some();
    let mut verdict = stored;
    for mut objection in age {
        if exempt {
            objection.status = FirewallStatus::Allowed;
        }
        verdict.reasons.push(objection);
    }
    verdict.status = verdict
        .reasons
        .iter()
        .map(|r| r.status)
        .max()
        .unwrap_or_default();
    verdict
}

/// Why downloads, copies and promotions of a stored version are refused at `now`, if they are.
pub fn stored_refusal(
    registry: &Registry,
    package: &Package,
    version: &Version,
    now: u64,
) -> Option<String> {
    let coordinate = format!("{}@{}", package.name, version.name);
    let firewall = version.firewall.as_ref();
    if let Some(q) = firewall.and_then(|f| f.quarantine.as_ref()) {
        return Some(format!(
            "{coordinate} is quarantined in {}: {} (by {})",
            registry.name, q.reason, q.by
        ));
    }
    if firewall.is_some_and(|f| f.release.is_some()) {
        return None;
    }
    let verdict = current_verdict(registry, package, version, now);
    blocked_message(&coordinate, &registry.name, &verdict)
}

fn blocked_message(coordinate: &str, registry: &str, verdict: &FirewallVerdict) -> Option<String> {
    (verdict.status == FirewallStatus::Blocked).then(|| {
        let reasons: Vec<String> = verdict
            .reasons
            .iter()
            .filter(|r| r.status == FirewallStatus::Blocked)
            .map(|r| format!("{}: {}", r.rule, r.message))
            .collect();
        format!(
            "{coordinate} is blocked by the dependency firewall of {registry} (scan {}): {}",
            verdict.scan_id,
            reasons.join("; ")
        )
    })
}

/// Why a download, copy or promotion is not served.
#[derive(Debug, thiserror::Error)]
pub enum Blocked {
    /// The firewall refuses it; the message is what clients are shown.
    #[error("{0}")]
    Refused(String),
    /// The state could not be read to decide.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The firewall's word on reading `version` of `package` from `member` (one registry of a read's
/// resolution order): `Ok(true)` when the member holds it and may serve it, `Ok(false)` when it does
/// not hold it and a remote member may fetch it (evaluated on the fly; a local member simply does
/// not have it), `Err` when it is refused.
pub fn check_member(
    view: &(impl StateRead + ?Sized),
    member: &Registry,
    package: &str,
    version: &str,
    now: u64,
) -> Result<bool, Blocked> {
    if let Some(v) = view.version(&member.name, package, version)?
        && let Some(p) = view.package(&member.name, package)?
    {
        let current = view.registry(&member.name)?;
        return match stored_refusal(current.as_ref().unwrap_or(member), &p, &v, now) {
            Some(message) => Err(Blocked::Refused(message)),
            None => Ok(true),
        };
    }
    if member.kind == RegistryKind::Remote {
        let verdict = evaluate_unstored(view, member, package, version, now, String::new())?;
        if let Some(message) =
            blocked_message(&format!("{package}@{version}"), &member.name, &verdict)
        {
            return Err(Blocked::Refused(message));
        }
    }
    Ok(false)
}

/// The firewall's word on reading `version` of `package` through `registry`: its members in
/// resolution order, up to the first that holds the version (or, being remote, could fetch it).
pub fn check_read(
    state: &AppState,
    registry: &Registry,
    package: &str,
    version: &str,
) -> Result<(), Blocked> {
    let now = state.now_ms();
    let members = crate::proxy::resolution_order(state, registry);
    let view = state.meta.view()?;
    for member in &members {
        if check_member(&view, member, package, version, now)?
            || member.kind == RegistryKind::Remote
        {
            return Ok(());
        }
    }
    Ok(())
}

/// Evaluates a coordinate the registry does not hold, at `now`.
pub fn evaluate_unstored(
    view: &(impl StateRead + ?Sized),
    registry: &Registry,
    package: &str,
    version: &str,
    now: u64,
    scan_id: String,
) -> ReadResult<FirewallVerdict> {
    let subject = Subject {
        package,
        version,
        license: None,
        metadata: Vec::new(),
        created_at: None,
    };
    let ecosystem = Ecosystem::of(registry.package_type);
    let advisories = advisories_for(view, ecosystem, package)?;
    let (status, reasons) = evaluate(
        &registry.firewall,
        &advisories,
        ecosystem,
        &subject,
        Some(now),
    );
    Ok(FirewallVerdict {
        status,
        reasons,
        scan_id,
        evaluated_at: now,
    })
}

/// What a command makes the firewall evaluate again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reevaluate {
    /// Nothing.
    Nothing,
    /// One version (`fresh`: a copy, whose quarantine and release do not carry over).
    Version {
        /// Registry.
        registry: String,
        /// Package.
        package: String,
        /// Version.
        version: String,
        /// A copy.
        fresh: bool,
    },
    /// Every version of a package.
    Package {
        /// Registry.
        registry: String,
        /// Package.
        package: String,
    },
    /// Every version of a registry.
    Registry(String),
    /// Every version of these `<ecosystem>/<normalised name>` packages, in every registry.
    Packages(BTreeSet<String>),
}

/// What `command` makes the firewall evaluate again once applied, and the command's time if it
/// carries one.
pub fn reevaluation_for(command: &Command) -> (Reevaluate, Option<u64>) {
    let version = |registry: &str, package: &str, version: &str, fresh| Reevaluate::Version {
        registry: registry.to_string(),
        package: package.to_string(),
        version: version.to_string(),
        fresh,
    };
    match command {
        Command::PutFile {
            registry,
            package,
            version: v,
            at,
            ..
        }
        | Command::SetAttributes {
            registry,
            package,
            version: v,
            at,
            ..
        } => (version(registry, package, v, false), Some(*at)),
        Command::PutManifest {
            registry,
            package,
            digest,
            at,
            ..
        } => (version(registry, package, digest, false), Some(*at)),
        Command::CopyVersion {
            to_registry,
            package,
            version: v,
            at,
            ..
        } => (version(to_registry, package, v, true), Some(*at)),
        Command::SetMetadata { target, .. } | Command::DeleteMetadata { target, .. } => {
            let what = match target {
                MetadataTarget::Registry { .. } => Reevaluate::Nothing,
                MetadataTarget::Package { registry, package } => Reevaluate::Package {
                    registry: registry.clone(),
                    package: package.clone(),
                },
                MetadataTarget::Version {
                    registry,
                    package,
                    version: v,
                } => version(registry, package, v, false),
            };
            (what, None)
        }
        Command::SetFirewallPolicy { registry, at, .. } => {
            (Reevaluate::Registry(registry.clone()), Some(*at))
        }
        Command::ImportAdvisories { advisories, at } => {
            let keys = advisories
                .iter()
                .flat_map(|a| a.affected.iter())
                .filter_map(|a| Some(index_key(Ecosystem::parse(&a.ecosystem)?, &a.name)))
                .collect();
            (Reevaluate::Packages(keys), Some(*at))
        }
        _ => (Reevaluate::Nothing, None),
    }
}

/// Evaluates what `what` names again, at the state machine's clock, storing the verdicts on the
/// versions. Returns an audit event for each version whose status changed (a new version counts as
/// changing from nothing; a new ALLOWED version is not reported).
pub fn reevaluate(applier: &mut Applier<'_>, what: Reevaluate) -> ReadResult<Vec<AuditEvent>> {
    let mut events = Vec::new();
    match what {
        Reevaluate::Nothing => {}
        Reevaluate::Version {
            registry,
            package,
            version,
            fresh,
        } => {
            if let Some(registry) = applier.registry(&registry)? {
                visit(
                    applier,
                    &registry,
                    &package,
                    Some(&version),
                    fresh,
                    &mut events,
                )?;
            }
        }
        Reevaluate::Package { registry, package } => {
            if let Some(registry) = applier.registry(&registry)? {
                visit(applier, &registry, &package, None, false, &mut events)?;
            }
        }
        Reevaluate::Registry(registry) => {
            if let Some(registry) = applier.registry(&registry)? {
                for package in applier.package_names(&registry.name, None, usize::MAX)? {
                    visit(applier, &registry, &package, None, false, &mut events)?;
                }
            }
        }
        Reevaluate::Packages(keys) => {
            for record in applier.registries()? {
                let Some(ecosystem) = Ecosystem::of(record.registry.package_type) else {
                    continue;
                };
                for package in applier.package_names(&record.registry.name, None, usize::MAX)? {
                    if keys.contains(&index_key(ecosystem, &package)) {
                        visit(
                            applier,
                            &record.registry,
                            &package,
                            None,
                            false,
                            &mut events,
                        )?;
                    }
                }
            }
        }
    }
    Ok(events)
}

/// Evaluates one version of `package` (or, with `only` unset, every version) of `registry`.
fn visit(
    applier: &mut Applier<'_>,
    registry: &Registry,
    package: &str,
    only: Option<&str>,
    fresh: bool,
    events: &mut Vec<AuditEvent>,
) -> ReadResult<()> {
    let Some(record) = applier.package(&registry.name, package)? else {
        return Ok(());
    };
    let ecosystem = Ecosystem::of(registry.package_type);
    let advisories = advisories_for(applier, ecosystem, package)?;
    let at = applier.counter(scalar::FIREWALL_CLOCK)?;
    let mut scans = applier.counter(scalar::FIREWALL_SCANS)?;
    let names = match only {
        Some(version) => vec![version.to_string()],
        None => applier.version_names(&registry.name, package)?,
    };
    let mut changed = false;
    for name in names {
        let Some(mut version) = applier.version(&registry.name, package, &name)? else {
            continue;
        };
        let (status, reasons) = {
            let subject = Subject::stored(registry.package_type, &record, &version);
            evaluate(&registry.firewall, &advisories, ecosystem, &subject, None)
        };
        scans += 1;
        let verdict = FirewallVerdict {
            status,
            reasons,
            scan_id: format!("scan-{scans}"),
            evaluated_at: at,
        };
        let previous = if fresh { None } else { version.firewall.take() };
        let before = previous.as_ref().map(|f| f.verdict.status);
        let same = previous
            .as_ref()
            .is_some_and(|f| f.verdict.status == status && f.verdict.reasons == verdict.reasons);
        let mut next = previous.unwrap_or_default();
        if !same {
            next.release = None;
        }
        next.verdict = verdict;
        if before.unwrap_or_default() != status {
            events.push(status_event(&registry.name, package, &name, &next.verdict));
            changed = true;
        }
        version.firewall = Some(next);
        applier.put(
            Table::Versions,
            &child_key(&registry.name, package, &name),
            &version,
        )?;
    }
    applier.set_scalar(scalar::FIREWALL_SCANS, &scans)?;
    if changed {
        let mut record = record;
        record.generation += 1;
        applier.put(
            Table::Packages,
            &package_key(&registry.name, package),
            &record,
        )?;
    }
    Ok(())
}

/// The audit action of a change of a version's firewall status.
pub const VERDICT_ACTION: &str = "FIREWALL evaluate";

fn status_event(
    registry: &str,
    package: &str,
    version: &str,
    verdict: &FirewallVerdict,
) -> AuditEvent {
    let reasons: Vec<String> = verdict
        .reasons
        .iter()
        .map(|r| format!("{} {}: {}", r.rule, r.status, r.message))
        .collect();
    AuditEvent {
        id: 0,
        at: verdict.evaluated_at,
        actor: "firewall".into(),
        actor_id: None,
        source_ip: "-".into(),
        action: VERDICT_ACTION.into(),
        registry: Some(registry.to_string()),
        target: format!("{registry}/{package}@{version}"),
        result: if verdict.status == FirewallStatus::Blocked {
            403
        } else {
            200
        },
        detail: Some(format!(
            "{} ({}){}{}",
            verdict.status,
            verdict.scan_id,
            if reasons.is_empty() { "" } else { ": " },
            reasons.join("; ")
        )),
    }
}

/// Quarantines (or, with `release`, releases) a stored version by hand.
pub fn set_quarantine(
    applier: &mut Applier<'_>,
    (registry, package, version): (&str, &str, &str),
    record: QuarantineRecord,
    release: bool,
) -> Applied {
    let Some(mut found) = applier.version(registry, package, version)? else {
        return Ok(Err(CommandError::NotFound(format!(
            "version {registry}/{package}/{version}"
        ))));
    };
    let firewall = found.firewall.get_or_insert_with(VersionFirewall::default);
    if release {
        firewall.quarantine = None;
        firewall.release = Some(record);
    } else {
        firewall.release = None;
        firewall.quarantine = Some(record);
    }
    applier.put(
        Table::Versions,
        &child_key(registry, package, version),
        &found,
    )?;
    if let Some(mut package_record) = applier.package(registry, package)? {
        package_record.generation += 1;
        applier.put(
            Table::Packages,
            &package_key(registry, package),
            &package_record,
        )?;
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests;
