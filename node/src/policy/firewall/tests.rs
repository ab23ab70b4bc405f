//! Unit tests of the firewall's rules, verdict storage, re-evaluation and quarantine.

use std::collections::BTreeMap;

use arca_protocol::firewall::{
    AgeRule, DenyPattern, FirewallAction, LicenseRule, OsvAdvisory, VersionPattern,
    VulnerabilityRule,
};
use arca_protocol::{BlobRef, ChunkId, ChunkRef, Overwrite, Sha256};

use super::*;
use crate::meta::testing::TestState;

fn lodash_advisory(modified: &str, fixed: &str) -> Advisory {
    let osv: OsvAdvisory = serde_json::from_value(serde_json::json!({
        "id": "GHSA-35jh-r3h4-6jhm", "modified": modified,
        "summary": "Command Injection in lodash",
        "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}],
        "database_specific": {"severity": "HIGH"}
    }))
    .expect("OSV");
    osv::normalize(&osv).expect("normalized")
}

fn db() -> Vec<Advisory> {
    vec![lodash_advisory("2021-01-01T00:00:00Z", "4.17.21")]
}

fn subject<'a>(package: &'a str, version: &'a str) -> Subject<'a> {
    Subject {
        package,
        version,
        ..Subject::default()
    }
}

fn vulnerabilities(min: Severity, action: FirewallAction) -> FirewallPolicy {
    FirewallPolicy {
        vulnerabilities: Some(VulnerabilityRule {
            min_severity: min,
            action,
            unknown_severity: Severity::High,
        }),
        ..FirewallPolicy::default()
    }
}

#[test]
fn vulnerability_rule_honours_threshold_and_action() {
    let db = db();
    let npm = Some(Ecosystem::Npm);
    let block = vulnerabilities(Severity::High, FirewallAction::Block);
    let (status, reasons) = evaluate(&block, &db, npm, &subject("lodash", "4.17.20"), None);
    assert_eq!(status, FirewallStatus::Blocked);
    assert_eq!(reasons[0].advisory.as_deref(), Some("GHSA-35jh-r3h4-6jhm"));
    assert!(
        reasons[0].message.contains("fixed in 4.17.21"),
        "{reasons:?}"
    );
    let fixed = evaluate(&block, &db, npm, &subject("lodash", "4.17.21"), None);
    assert_eq!(fixed.0, FirewallStatus::Allowed);
    let critical_only = vulnerabilities(Severity::Critical, FirewallAction::Block);
    let below = evaluate(
        &critical_only,
        &db,
        npm,
        &subject("lodash", "4.17.20"),
        None,
    );
    assert_eq!(below.0, FirewallStatus::Allowed);
    let warn = vulnerabilities(Severity::Low, FirewallAction::Warn);
    let warned = evaluate(&warn, &db, npm, &subject("lodash", "4.17.20"), None);
    assert_eq!(warned.0, FirewallStatus::Warn);
    // Another ecosystem's registry is not affected by an npm advisory.
    let pypi = evaluate(
        &block,
        &db,
        Some(Ecosystem::PyPi),
        &subject("lodash", "4.17.20"),
        None,
    );
    assert_eq!(pypi.0, FirewallStatus::Allowed);
}

#[test]
fn license_rule_allow_deny_and_unknown() {
    let policy = |allow: &[&str], deny: &[&str], unknown| FirewallPolicy {
        licenses: Some(LicenseRule {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
            action: FirewallAction::Block,
            unknown,
        }),
        ..FirewallPolicy::default()
    };
    let with = |license: Option<&str>| Subject {
        license: license.map(str::to_string),
        ..subject("pkg", "1.0.0")
    };
    let check =
        |policy: &FirewallPolicy, license| evaluate(policy, &[], None, &with(license), None).0;
    let allow = policy(&["MIT", "Apache-2.0"], &[], None);
    assert_eq!(check(&allow, Some("mit")), FirewallStatus::Allowed);
    assert_eq!(check(&allow, Some("GPL-3.0-only")), FirewallStatus::Blocked);
    assert_eq!(
        check(&allow, Some("GPL-3.0-only OR MIT")),
        FirewallStatus::Allowed
    );
    assert_eq!(
        check(&allow, Some("(MIT AND GPL-3.0-only)")),
        FirewallStatus::Blocked
    );
    assert_eq!(
        check(&allow, None),
        FirewallStatus::Allowed,
        "unknown passes by default"
    );
    let deny = policy(&[], &["AGPL-3.0-only"], Some(FirewallAction::Warn));
    assert_eq!(check(&deny, Some("AGPL-3.0-only")), FirewallStatus::Blocked);
    assert_eq!(check(&deny, Some("BSD-3-Clause")), FirewallStatus::Allowed);
    assert_eq!(check(&deny, None), FirewallStatus::Warn);
}

#[test]
fn deny_allow_patterns_and_metadata_exemptions() {
    let policy = FirewallPolicy {
        deny: vec![DenyPattern {
            package: "evil-*".into(),
            version: "*".into(),
            action: FirewallAction::Block,
        }],
        allow: vec![VersionPattern {
            package: "evil-but-ok".into(),
            version: "2.*".into(),
        }],
        exemptions: vec!["approved:true".into()],
        ..FirewallPolicy::default()
    };
    let none: Vec<Advisory> = Vec::new();
    let status = |s: &Subject<'_>| evaluate(&policy, &none, None, s, None);
    assert_eq!(
        status(&subject("evil-pkg", "1.0")).0,
        FirewallStatus::Blocked
    );
    assert_eq!(status(&subject("good", "1.0")).0, FirewallStatus::Allowed);
    let (allowed, reasons) = status(&subject("evil-but-ok", "2.1"));
    assert_eq!(allowed, FirewallStatus::Allowed);
    assert_eq!(reasons[0].rule, "allow");
    assert!(reasons[1].message.contains("overridden"));
    assert_eq!(
        status(&subject("evil-but-ok", "1.0")).0,
        FirewallStatus::Blocked
    );
    let approved = Subject {
        metadata: vec![("approved", "true")],
        ..subject("evil-pkg", "1.0")
    };
    let (exempt, reasons) = status(&approved);
    assert_eq!(exempt, FirewallStatus::Allowed);
    assert_eq!(reasons[0].rule, "metadata");
    let not_approved = Subject {
        metadata: vec![("approved", "false")],
        ..subject("evil-pkg", "1.0")
    };
    assert_eq!(status(&not_approved).0, FirewallStatus::Blocked);
    assert!(validate(&policy).is_ok());
    let bad = FirewallPolicy {
        exemptions: vec!["approved".into()],
        ..FirewallPolicy::default()
    };
    assert!(validate(&bad).is_err());
}

#[test]
fn age_rule_needs_a_time() {
    let policy = FirewallPolicy {
        age: Some(AgeRule {
            min_days: 3,
            action: FirewallAction::Block,
        }),
        ..FirewallPolicy::default()
    };
    let young = Subject {
        created_at: Some(10 * DAY_MS),
        ..subject("pkg", "1.0")
    };
    let none: Vec<Advisory> = Vec::new();
    assert_eq!(
        evaluate(&policy, &none, None, &young, None).0,
        FirewallStatus::Allowed
    );
    let (status, reasons) = evaluate(&policy, &none, None, &young, Some(11 * DAY_MS));
    assert_eq!(status, FirewallStatus::Blocked);
    assert_eq!(reasons[0].rule, "age");
    assert_eq!(
        evaluate(&policy, &none, None, &young, Some(14 * DAY_MS)).0,
        FirewallStatus::Allowed
    );
}

#[test]
fn licenses_are_read_from_format_attributes() {
    let mut version = Version {
        name: "1.0.0".into(),
        created_at: 0,
        updated_at: 0,
        files: BTreeMap::new(),
        metadata: BTreeMap::new(),
        manifest: None,
        attributes: BTreeMap::from([(
            "npm.manifest".to_string(),
            r#"{"name":"x","license":"ISC"}"#.to_string(),
        )]),
        firewall: None,
        size: 0,
    };
    assert_eq!(
        license_of(PackageType::Npm, &version).as_deref(),
        Some("ISC")
    );
    version.attributes = BTreeMap::from([(
        "pypi.classifiers".to_string(),
        r#"["Programming Language :: Python", "License :: OSI Approved :: MIT License"]"#
            .to_string(),
    )]);
    assert_eq!(
        license_of(PackageType::Pypi, &version).as_deref(),
        Some("MIT")
    );
    version
        .attributes
        .insert("pypi.license".into(), "Apache-2.0".into());
    assert_eq!(
        license_of(PackageType::Pypi, &version).as_deref(),
        Some("Apache-2.0")
    );
    version.metadata.insert("license".into(), "MPL-2.0".into());
    assert_eq!(
        license_of(PackageType::Pypi, &version).as_deref(),
        Some("MPL-2.0")
    );
}

fn npm_registry(name: &str) -> Registry {
    Registry {
        name: name.into(),
        package_type: PackageType::Npm,
        description: String::new(),
        immutable: false,
        allow_anonymous_read: false,
        allow_redeploy: false,
        created_at: 1,
        metadata: BTreeMap::new(),
        replication: Default::default(),
        kind: Default::default(),
        upstream: None,
        members: Vec::new(),
        publish_to: None,
        audit_downloads: false,
        cleanup: Default::default(),
        firewall: vulnerabilities(Severity::High, FirewallAction::Block),
    }
}

fn publish(version: &str, at: u64) -> Command {
    Command::PutFile {
        registry: "npm".into(),
        package: "lodash".into(),
        version: version.into(),
        filename: format!("lodash-{version}.tgz"),
        blob: BlobRef {
            sha256: Sha256([1; 32]),
            size: 1,
            chunks: vec![ChunkRef {
                id: ChunkId([1; 32]),
                size: 1,
            }],
            inline: None,
        },
        attributes: BTreeMap::new(),
        tags: Vec::new(),
        overwrite: Overwrite::Allow,
        at,
    }
}

fn stored(meta: &TestState, version: &str) -> VersionFirewall {
    meta.view()
        .version("npm", "lodash", version)
        .expect("read")
        .and_then(|v| v.firewall)
        .expect("evaluated")
}

fn stored_parts(meta: &TestState, version: &str) -> (Registry, Package, Version) {
    let view = meta.view();
    (
        view.registry("npm").expect("read").expect("registry"),
        view.package("npm", "lodash")
            .expect("read")
            .expect("package"),
        view.version("npm", "lodash", version)
            .expect("read")
            .expect("version"),
    )
}

#[test]
fn the_state_machine_stores_verdicts_reevaluates_and_audits() {
    let meta = TestState::new();
    meta.apply(Command::CreateRegistry {
        registry: npm_registry("npm"),
    })
    .expect("registry");
    meta.apply(publish("4.17.20", 100)).expect("publish");
    meta.apply(publish("4.17.21", 101)).expect("publish");
    assert_eq!(
        stored(&meta, "4.17.20").verdict.status,
        FirewallStatus::Allowed,
        "no advisories yet"
    );

    meta.apply(Command::ImportAdvisories {
        advisories: vec![lodash_advisory("2021-01-01T00:00:00Z", "4.17.21")],
        at: 200,
    })
    .expect("import");
    let blocked = stored(&meta, "4.17.20");
    assert_eq!(blocked.verdict.status, FirewallStatus::Blocked);
    assert_eq!(blocked.verdict.evaluated_at, 200);
    assert_eq!(
        stored(&meta, "4.17.21").verdict.status,
        FirewallStatus::Allowed
    );
    let events = meta.newest_events(1);
    let event = events.first().expect("audited");
    assert_eq!(event.actor, "firewall");
    assert!(
        event
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("GHSA-35jh-r3h4-6jhm")
    );

    let (registry, package, version) = stored_parts(&meta, "4.17.20");
    let refusal = stored_refusal(&registry, &package, &version, 300);
    assert!(refusal.unwrap_or_default().contains("GHSA-35jh-r3h4-6jhm"));

    // A release overrides the verdict while re-evaluations agree with it.
    let record = |reason: &str| QuarantineRecord {
        by: "admin".into(),
        at: 400,
        reason: reason.into(),
    };
    meta.apply(Command::ReleaseVersion {
        registry: "npm".into(),
        package: "lodash".into(),
        version: "4.17.20".into(),
        record: record("accepted risk"),
    })
    .expect("release");
    meta.apply(publish("4.17.20", 500))
        .expect("re-publish re-evaluates");
    assert!(
        stored(&meta, "4.17.20").release.is_some(),
        "same verdict keeps the release"
    );
    let (registry, package, version) = stored_parts(&meta, "4.17.20");
    assert_eq!(stored_refusal(&registry, &package, &version, 600), None);

    // A newer copy of the advisory with another fix changes the reasons: the release ends.
    meta.apply(Command::ImportAdvisories {
        advisories: vec![lodash_advisory("2022-01-01T00:00:00Z", "4.17.22")],
        at: 700,
    })
    .expect("import");
    assert!(stored(&meta, "4.17.20").release.is_none());
    assert_eq!(
        stored(&meta, "4.17.21").verdict.status,
        FirewallStatus::Blocked
    );
    // An older copy changes nothing.
    let (_, _, unchanged) = classify_import(
        &meta.view(),
        &[lodash_advisory("2020-01-01T00:00:00Z", "1.0.0")],
    )
    .expect("read");
    assert_eq!(unchanged, 1);

    // Quarantine by hand refuses even an allowed version; a policy change re-evaluates everything.
    meta.apply(Command::SetFirewallPolicy {
        registry: "npm".into(),
        policy: FirewallPolicy::default(),
        at: 900,
    })
    .expect("policy");
    assert_eq!(
        stored(&meta, "4.17.21").verdict.status,
        FirewallStatus::Allowed
    );
    meta.apply(Command::QuarantineVersion {
        registry: "npm".into(),
        package: "lodash".into(),
        version: "4.17.21".into(),
        record: record("under review"),
    })
    .expect("quarantine");
    let (registry, package, version) = stored_parts(&meta, "4.17.21");
    let refusal = stored_refusal(&registry, &package, &version, 1000);
    assert!(refusal.unwrap_or_default().contains("under review"));
    assert!(matches!(
        meta.apply(Command::QuarantineVersion {
            registry: "npm".into(),
            package: "lodash".into(),
            version: "9.9.9".into(),
            record: record("x"),
        }),
        Err(CommandError::NotFound(_))
    ));
}
