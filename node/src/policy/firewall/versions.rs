//! Which versions an advisory affects: each OSV ecosystem's version order (semver for npm, Go and
//! crates.io; PEP 440 for PyPI; Maven's `ComparableVersion` order, shared with the Maven front-end;
//! NuGet's dotted numbers with a semver-style pre-release; `Gem::Version`'s order for RubyGems), package-name matching in that ecosystem's
//! spelling, and OSV's range evaluation over `introduced` / `fixed` / `last_affected` events.

use std::cmp::Ordering;
use std::str::FromStr;

use arca_protocol::PackageType;
use arca_protocol::firewall::{AffectedPackage, AffectedRange, RangeEvent};

use crate::ecosystems::pypi_names::normalize_project;
use crate::ecosystems::{crate_names, debian_version, gem_version, maven_version, rpm_version};

/// An OSV ecosystem Arca can match versions in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecosystem {
    /// `npm`.
    Npm,
    /// `PyPI`.
    PyPi,
    /// `Maven`.
    Maven,
    /// `Go`.
    Go,
    /// `crates.io`.
    CratesIo,
    /// `NuGet`.
    NuGet,
    /// `RubyGems`.
    RubyGems,
    /// `Packagist` (Composer).
    Packagist,
    /// `Debian` (every release: `Debian:12` and the like).
    Debian,
    /// RPM distributions: `Red Hat`, `AlmaLinux`, `Rocky Linux`, `openSUSE`, `SUSE` (with or
    /// without a `:release`).
    Rpm,
}

impl Ecosystem {
    /// The ecosystem whose advisories apply to a registry of `package_type`, if any.
    pub fn of(package_type: PackageType) -> Option<Ecosystem> {
        match package_type {
            PackageType::Npm => Some(Ecosystem::Npm),
            PackageType::Pypi => Some(Ecosystem::PyPi),
            PackageType::Maven => Some(Ecosystem::Maven),
            PackageType::Go => Some(Ecosystem::Go),
            PackageType::Cargo => Some(Ecosystem::CratesIo),
            PackageType::Nuget => Some(Ecosystem::NuGet),
            PackageType::Rubygems => Some(Ecosystem::RubyGems),
            PackageType::Composer => Some(Ecosystem::Packagist),
            PackageType::Debian => Some(Ecosystem::Debian),
            PackageType::Rpm => Some(Ecosystem::Rpm),
            PackageType::Generic
            | PackageType::Docker
            | PackageType::Helm
            | PackageType::Conda
            | PackageType::Huggingface => None,
        }
    }

    /// The ecosystem an OSV `ecosystem` field names (`Maven`, `PyPI`, `npm`...; a `:suffix`, as in
    /// `Debian:12`, names a release of the ecosystem before it).
    pub fn parse(name: &str) -> Option<Ecosystem> {
        match name {
            "npm" => Some(Ecosystem::Npm),
            "PyPI" => Some(Ecosystem::PyPi),
            "Maven" => Some(Ecosystem::Maven),
            "Go" => Some(Ecosystem::Go),
            "crates.io" => Some(Ecosystem::CratesIo),
            "NuGet" => Some(Ecosystem::NuGet),
            "RubyGems" => Some(Ecosystem::RubyGems),
            "Packagist" => Some(Ecosystem::Packagist),
            debian if debian == "Debian" || debian.starts_with("Debian:") => {
                Some(Ecosystem::Debian)
            }
            rpm if ["Red Hat", "AlmaLinux", "Rocky Linux", "openSUSE", "SUSE"]
                .iter()
                .any(|name| rpm == *name || rpm.starts_with(&format!("{name}:"))) =>
            {
                Some(Ecosystem::Rpm)
            }
            _ => None,
        }
    }

    /// The OSV spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::PyPi => "PyPI",
            Ecosystem::Maven => "Maven",
            Ecosystem::Go => "Go",
            Ecosystem::CratesIo => "crates.io",
            Ecosystem::NuGet => "NuGet",
            Ecosystem::RubyGems => "RubyGems",
            Ecosystem::Packagist => "Packagist",
            Ecosystem::Debian => "Debian",
            Ecosystem::Rpm => "Red Hat",
        }
    }

    /// A package name in the form names are compared in: PEP 503 for PyPI, case-folded for NuGet,
    /// crates.io's canonical spelling for crates, as written elsewhere.
    pub fn normalize_name(self, name: &str) -> String {
        match self {
            Ecosystem::PyPi => normalize_project(name),
            Ecosystem::NuGet => name.to_ascii_lowercase(),
            Ecosystem::CratesIo => crate_names::canonical(name),
            _ => name.to_string(),
        }
    }

    /// Orders two versions of this ecosystem; `None` when either cannot be read.
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Ecosystem::Npm | Ecosystem::Go | Ecosystem::CratesIo => compare_semver(a, b),
            Ecosystem::PyPi => {
                let x = pep440_rs::Version::from_str(a.trim()).ok()?;
                let y = pep440_rs::Version::from_str(b.trim()).ok()?;
                Some(x.cmp(&y))
            }
            Ecosystem::Maven => Some(maven_version::compare(a, b)),
            Ecosystem::NuGet => compare_nuget(a, b),
            Ecosystem::Packagist => compare_composer(a, b),
            Ecosystem::Debian => Some(debian_version::compare(a, b)),
            Ecosystem::Rpm => Some(rpm_version::compare(a, b)),
            // A gem version's `-<platform>` does not order it.
            Ecosystem::RubyGems => {
                let number = |v: &str| v.split('-').next().unwrap_or_default().to_string();
                Some(gem_version::compare(&number(a), &number(b)))
            }
        }
    }

    /// Whether `version` is a pre-release in this ecosystem (a semver pre-release, PEP 440's
    /// `a`/`b`/`rc`/`.dev`, a gem version with a letter, a Maven `-SNAPSHOT` or qualifier).
    pub fn is_prerelease(self, version: &str) -> bool {
        let version = version.trim();
        match self {
            Ecosystem::Npm | Ecosystem::Go | Ecosystem::CratesIo | Ecosystem::NuGet => version
                .trim_start_matches('v')
                .split('+')
                .next()
                .unwrap_or_default()
                .contains('-'),
            Ecosystem::PyPi => pep440_rs::Version::from_str(version)
                .map(|v| v.any_prerelease())
                .unwrap_or(false),
            Ecosystem::Maven => version.contains('-'),
            Ecosystem::Debian | Ecosystem::Rpm => version.contains('~'),
            Ecosystem::Packagist => composer_version(version).is_some_and(|(_, rank, _)| rank < 4),
            Ecosystem::RubyGems => version
                .split('-')
                .next()
                .unwrap_or_default()
                .bytes()
                .any(|b| b.is_ascii_alphabetic()),
        }
    }

    /// Whether `version` satisfies the requirement `range` in this ecosystem's syntax: PEP 440
    /// specifiers for PyPI (`>=1.0,<2`), Cargo/npm-style semver requirements otherwise (`^1.2`,
    /// `>=1.0, <2`, `~1.4`; a Go `v` is dropped). `None` when either cannot be read.
    pub fn satisfies(self, version: &str, range: &str) -> Option<bool> {
        match self {
            Ecosystem::PyPi => {
                let specifiers = pep440_rs::VersionSpecifiers::from_str(range.trim()).ok()?;
                let version = pep440_rs::Version::from_str(version.trim()).ok()?;
                Some(specifiers.contains(&version))
            }
            _ => {
                let requirement = semver::VersionReq::parse(range.trim()).ok()?;
                let version =
                    semver::Version::parse(version.trim().trim_start_matches('v')).ok()?;
                Some(requirement.matches(&version))
            }
        }
    }

    /// Whether `range` reads as a requirement in this ecosystem's syntax (see [`Self::satisfies`]).
    pub fn is_range(self, range: &str) -> bool {
        match self {
            Ecosystem::PyPi => pep440_rs::VersionSpecifiers::from_str(range.trim()).is_ok(),
            _ => semver::VersionReq::parse(range.trim()).is_ok(),
        }
    }

    /// True when `version` equals `listed` in this ecosystem (`1.0` and `1.0.0` are one PyPI or
    /// Maven version).
    fn same(self, version: &str, listed: &str) -> bool {
        version == listed || self.compare(version, listed) == Some(Ordering::Equal)
    }
}

/// Semver order; Go's `v` prefix is dropped.
fn compare_semver(a: &str, b: &str) -> Option<Ordering> {
    let parse = |v: &str| semver::Version::parse(v.trim().trim_start_matches('v')).ok();
    Some(parse(a)?.cmp_precedence(&parse(b)?))
}

/// A Composer version as it orders: up to four dotted numbers (a `v` dropped, missing ones zero),
/// the stability's rank (`dev` 0, `alpha`/`a` 1, `beta`/`b` 2, `RC` 3, stable 4, `patch`/`pl` 5)
/// and the number after it (`beta2` is 2).
fn composer_version(version: &str) -> Option<([u64; 4], u8, u64)> {
    let version = version
        .trim()
        .trim_start_matches(['v', 'V'])
        .to_ascii_lowercase();
    let (numbers, suffix) = match version.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => version.split_at(at),
        None => (version.as_str(), ""),
    };
    let mut parts = [0u64; 4];
    let mut count = 0;
    for (slot, part) in parts
        .iter_mut()
        .zip(numbers.trim_end_matches('.').split('.'))
    {
        *slot = part.parse().ok()?;
        count += 1;
    }
    if count == 0 || numbers.trim_end_matches('.').split('.').count() > 4 {
        return None;
    }
    let suffix = suffix.trim_start_matches(['-', '.', '_']);
    let stability = suffix.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let number = suffix[stability.len()..]
        .trim_start_matches('.')
        .parse()
        .unwrap_or(0);
    let rank = match stability {
        "" => 4,
        "dev" => 0,
        "alpha" | "a" => 1,
        "beta" | "b" => 2,
        "rc" => 3,
        "patch" | "pl" | "p" => 5,
        _ => return None,
    };
    Some((parts, rank, number))
}

/// Composer's version order (see [`composer_version`]).
fn compare_composer(a: &str, b: &str) -> Option<Ordering> {
    Some(composer_version(a)?.cmp(&composer_version(b)?))
}

/// NuGet order: up to four dotted numbers (missing ones are zero), then a release above any of its
/// pre-releases, which compare as semver pre-release identifiers (case-insensitively).
fn compare_nuget(a: &str, b: &str) -> Option<Ordering> {
    fn parse(v: &str) -> Option<([u64; 4], Option<semver::Prerelease>)> {
        let v = v.trim().split('+').next().unwrap_or_default();
        let (numbers, pre) = match v.split_once('-') {
            Some((numbers, pre)) => (
                numbers,
                Some(semver::Prerelease::new(&pre.to_ascii_lowercase()).ok()?),
            ),
            None => (v, None),
        };
        let mut parts = [0u64; 4];
        let mut count = 0;
        for (slot, part) in parts.iter_mut().zip(numbers.split('.')) {
            *slot = part.parse().ok()?;
            count += 1;
        }
        (count > 0 && numbers.split('.').count() <= 4).then_some((parts, pre))
    }
    let (x, x_pre) = parse(a)?;
    let (y, y_pre) = parse(b)?;
    Some(x.cmp(&y).then_with(|| match (x_pre, y_pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(p), Some(q)) => p.cmp(&q),
    }))
}

/// True when `affected` names `package` (in `ecosystem`'s spelling) and lists `version` or a range
/// holding it.
pub fn affects(ecosystem: Ecosystem, affected: &AffectedPackage, version: &str) -> bool {
    affected
        .versions
        .iter()
        .any(|listed| ecosystem.same(version, listed))
        || affected
            .ranges
            .iter()
            .any(|range| in_range(ecosystem, range, version))
}

/// OSV's evaluation of one range: walking the events in version order, `introduced` at or below the
/// version turns "affected" on, `fixed` at or below it and `last_affected` below it turn it off. A
/// version (or event) the ecosystem cannot read does not match.
pub fn in_range(ecosystem: Ecosystem, range: &AffectedRange, version: &str) -> bool {
    let compare = |a: &str, b: &str| {
        if range.semver {
            compare_semver(a, b)
        } else {
            ecosystem.compare(a, b)
        }
    };
    let point = |event: &RangeEvent| match event {
        RangeEvent::Introduced(v) | RangeEvent::Fixed(v) | RangeEvent::LastAffected(v) => v.clone(),
    };
    let mut events: Vec<&RangeEvent> = Vec::with_capacity(range.events.len());
    for event in &range.events {
        let at = point(event);
        if at != "0" && compare(&at, &at).is_none() {
            return false;
        }
        events.push(event);
    }
    // "0" sorts first; ties keep the advisory's order.
    events.sort_by(|a, b| match (point(a).as_str(), point(b).as_str()) {
        ("0", "0") => Ordering::Equal,
        ("0", _) => Ordering::Less,
        (_, "0") => Ordering::Greater,
        (x, y) => compare(x, y).unwrap_or(Ordering::Equal),
    });
    let mut affected = false;
    for event in events {
        match event {
            RangeEvent::Introduced(at) => {
                if at == "0" || compare(version, at).is_some_and(|o| o != Ordering::Less) {
                    affected = true;
                }
            }
            RangeEvent::Fixed(at) => {
                if compare(version, at).is_some_and(|o| o != Ordering::Less) {
                    affected = false;
                }
            }
            RangeEvent::LastAffected(at) => {
                if compare(version, at) == Some(Ordering::Greater) {
                    affected = false;
                }
            }
        }
    }
    affected && compare(version, version).is_some()
}

/// The versions that fix `affected`, for messages.
pub fn fixed_versions(affected: &AffectedPackage) -> Vec<String> {
    affected
        .ranges
        .iter()
        .flat_map(|r| r.events.iter())
        .filter_map(|e| match e {
            RangeEvent::Fixed(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_and_rpm_distributions_order_their_own_versions() {
        for (ecosystem, name, version, fixed) in [
            (Ecosystem::Debian, "Debian:12", "2.10-3", "2.10-4"),
            (
                Ecosystem::Rpm,
                "Red Hat:enterprise_linux:9",
                "1.0-1",
                "1.0-2",
            ),
            (
                Ecosystem::Rpm,
                "AlmaLinux:9",
                "1:1.0-1.el9",
                "1:1.0-1.el9_1",
            ),
        ] {
            assert_eq!(Ecosystem::parse(name), Some(ecosystem), "{name}");
            let affected = range(false, &[("introduced", "0"), ("fixed", fixed)]);
            assert!(in_range(ecosystem, &affected, version), "{name} {version}");
            assert!(!in_range(ecosystem, &affected, fixed), "{name} {fixed}");
        }
    }

    fn range(semver: bool, events: &[(&str, &str)]) -> AffectedRange {
        AffectedRange {
            semver,
            events: events
                .iter()
                .map(|(kind, v)| match *kind {
                    "introduced" => RangeEvent::Introduced(v.to_string()),
                    "fixed" => RangeEvent::Fixed(v.to_string()),
                    _ => RangeEvent::LastAffected(v.to_string()),
                })
                .collect(),
        }
    }

    #[test]
    fn npm_semver_ranges_with_fixed_and_last_affected() {
        let lodash = range(true, &[("introduced", "0"), ("fixed", "4.17.21")]);
        assert!(in_range(Ecosystem::Npm, &lodash, "4.17.20"));
        assert!(in_range(Ecosystem::Npm, &lodash, "1.0.0"));
        assert!(in_range(Ecosystem::Npm, &lodash, "4.17.21-beta.1"));
        assert!(!in_range(Ecosystem::Npm, &lodash, "4.17.21"));
        assert!(!in_range(Ecosystem::Npm, &lodash, "5.0.0"));
        assert!(!in_range(Ecosystem::Npm, &lodash, "not-a-version"));
        let last = range(
            false,
            &[("introduced", "1.2.0"), ("last_affected", "1.4.0")],
        );
        assert!(!in_range(Ecosystem::Npm, &last, "1.1.9"));
        assert!(in_range(Ecosystem::Npm, &last, "1.4.0"));
        assert!(!in_range(Ecosystem::Npm, &last, "1.4.1"));
        // Two windows, events given out of order.
        let two = range(
            false,
            &[
                ("introduced", "2.0.0"),
                ("fixed", "2.5.0"),
                ("introduced", "1.0.0"),
                ("fixed", "1.5.0"),
            ],
        );
        assert!(in_range(Ecosystem::Npm, &two, "1.2.0"));
        assert!(!in_range(Ecosystem::Npm, &two, "1.7.0"));
        assert!(in_range(Ecosystem::Npm, &two, "2.4.9"));
        assert!(!in_range(Ecosystem::Npm, &two, "2.5.0"));
    }

    #[test]
    fn pypi_ranges_follow_pep440() {
        let requests = range(false, &[("introduced", "2.3.0"), ("fixed", "2.31.0")]);
        assert!(in_range(Ecosystem::PyPi, &requests, "2.30.0"));
        assert!(in_range(Ecosystem::PyPi, &requests, "2.3"));
        assert!(
            in_range(Ecosystem::PyPi, &requests, "2.31.0rc1"),
            "a pre-release of the fix"
        );
        assert!(!in_range(Ecosystem::PyPi, &requests, "2.31"));
        assert!(!in_range(Ecosystem::PyPi, &requests, "2.31.0.post1"));
        assert!(!in_range(Ecosystem::PyPi, &requests, "2.2.1"));
        assert_eq!(
            Ecosystem::PyPi.normalize_name("Zope.Interface"),
            "zope-interface"
        );
    }

    #[test]
    fn maven_ranges_use_mavens_order() {
        let r = range(false, &[("introduced", "2.0-beta9"), ("fixed", "2.15.0")]);
        assert!(in_range(Ecosystem::Maven, &r, "2.14.1"));
        assert!(
            in_range(Ecosystem::Maven, &r, "2.0-rc1"),
            "rc is after beta"
        );
        assert!(!in_range(Ecosystem::Maven, &r, "2.0-alpha1"));
        assert!(!in_range(Ecosystem::Maven, &r, "2.15"), "2.15 == 2.15.0");
    }

    #[test]
    fn composer_versions_order_by_numbers_then_stability() {
        let ascending = [
            "1.0.0-dev",
            "v1.0.0-alpha2",
            "1.0.0-beta",
            "1.0.0-RC1",
            "1.0",
            "1.0.0.1",
            "1.0.1-pl1",
            "1.10",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(
                compare_composer(pair[0], pair[1]),
                Some(Ordering::Less),
                "{pair:?}"
            );
        }
        assert_eq!(compare_composer("v2.0", "2.0.0.0"), Some(Ordering::Equal));
        assert!(Ecosystem::Packagist.is_prerelease("2.0.0-beta1"));
        assert!(!Ecosystem::Packagist.is_prerelease("2.0.0"));
    }

    #[test]
    fn go_and_crates_and_nuget() {
        let go = range(true, &[("introduced", "0"), ("fixed", "0.17.0")]);
        assert!(in_range(Ecosystem::Go, &go, "v0.16.0"));
        assert!(!in_range(Ecosystem::Go, &go, "v0.17.0"));
        let crates = range(true, &[("introduced", "0.0.0-0"), ("fixed", "1.8.1")]);
        assert!(in_range(Ecosystem::CratesIo, &crates, "1.8.0"));
        let nuget = range(false, &[("introduced", "0"), ("fixed", "13.0.1")]);
        assert!(in_range(Ecosystem::NuGet, &nuget, "12.0.3"));
        assert!(in_range(Ecosystem::NuGet, &nuget, "13.0.1-beta1"));
        assert!(!in_range(Ecosystem::NuGet, &nuget, "13.0.1.0"));
        assert!(!in_range(Ecosystem::NuGet, &nuget, "13.0.2"));
    }

    #[test]
    fn explicit_versions_match_in_the_ecosystems_equality() {
        let affected = AffectedPackage {
            ecosystem: "PyPI".into(),
            name: "urllib3".into(),
            versions: vec!["1.26.16".into(), "2.0".into()],
            ranges: Vec::new(),
        };
        assert!(affects(Ecosystem::PyPi, &affected, "1.26.16"));
        assert!(affects(Ecosystem::PyPi, &affected, "2.0.0"));
        assert!(!affects(Ecosystem::PyPi, &affected, "1.26.17"));
    }
}
