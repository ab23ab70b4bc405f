//! This node's recent history of which packages the applied commands changed: documents rendered
//! from a whole registry (a Debian `Packages` index) are brought up to date by re-reading only the
//! packages changed since they were rendered, instead of the whole registry. The history is kept in
//! memory, bounded, and is not replicated state: a reader it does not reach back far enough for
//! (after a restart, a snapshot installation, or a burst of changes) is told to read everything.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use arca_protocol::Changed;

/// How many changes the history keeps before it forgets the oldest.
const KEPT: usize = 1 << 16;

/// What changed in a registry since some applied log index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangesSince {
    /// These packages, and nothing else.
    Packages(BTreeSet<String>),
    /// Anything may have: read the whole registry again.
    Everything,
}

/// What changed anywhere after some applied log index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangedAnywhere {
    /// These packages (registry, package) and these whole registries, and nothing else.
    Some {
        /// Packages changed (registry, package): the versions changed, or `None` for any.
        packages: BTreeMap<(String, String), Option<BTreeSet<String>>>,
        /// Registries changed as a whole (created, deleted, their settings or policies).
        registries: BTreeSet<String>,
    },
    /// Anything may have: read everything again.
    Everything,
}

/// One change: the log index that made it, the registry (`None`: every registry), the package
/// (`None`: the whole registry) and the version (`None`: any of the package's).
#[derive(Debug)]
struct Change {
    index: u64,
    registry: Option<String>,
    package: Option<String>,
    version: Option<String>,
}

#[derive(Debug, Default)]
struct History {
    /// Every change after this index is in `changes` (and none at or before it may be asked for).
    complete_after: u64,
    /// The index of the last command recorded.
    last: u64,
    changes: VecDeque<Change>,
}

/// The recent changes this node applied, by log index.
#[derive(Debug, Default)]
pub struct PackageChanges {
    history: Mutex<History>,
}

impl PackageChanges {
    /// A history that knows nothing before `index` (the state as opened).
    pub fn starting_at(index: u64) -> PackageChanges {
        PackageChanges {
            history: Mutex::new(History {
                complete_after: index,
                last: index,
                changes: VecDeque::new(),
            }),
        }
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records what the command applied at `index` changed.
    pub fn record(&self, index: u64, changed: &[Changed<'_>]) {
        let mut history = self.history();
        history.last = history.last.max(index);
        for change in changed {
            let (registry, package, version) = match change {
                Changed::Package {
                    registry,
                    package,
                    version,
                } => (
                    Some(registry.to_string()),
                    Some(package.to_string()),
                    version.map(str::to_string),
                ),
                Changed::Registry(registry) => (Some(registry.to_string()), None, None),
                Changed::Everything => (None, None, None),
            };
            history.changes.push_back(Change {
                index,
                registry,
                package,
                version,
            });
        }
        while history.changes.len() > KEPT {
            if let Some(forgotten) = history.changes.pop_front() {
                history.complete_after = history.complete_after.max(forgotten.index);
            }
        }
    }

    /// Forgets everything before `index`: the state was replaced (a snapshot was installed).
    pub fn restart_at(&self, index: u64) {
        *self.history() = History {
            complete_after: index,
            last: index,
            changes: VecDeque::new(),
        };
    }

    /// The index of the last command recorded: a reader that has taken in every change up to it
    /// asks again with it.
    pub fn last(&self) -> u64 {
        self.history().last
    }

    /// What changed in `registry` after log index `after`, and the index that answer reaches.
    pub fn since(&self, registry: &str, after: u64) -> (ChangesSince, u64) {
        let history = self.history();
        if after < history.complete_after {
            return (ChangesSince::Everything, history.last);
        }
        let mut packages = BTreeSet::new();
        for change in history.changes.iter().rev() {
            if change.index <= after {
                break;
            }
            match (&change.registry, &change.package) {
                (Some(name), Some(package)) if name == registry => {
                    packages.insert(package.clone());
                }
                (Some(name), None) if name == registry => {
                    return (ChangesSince::Everything, history.last);
                }
                (None, _) => return (ChangesSince::Everything, history.last),
                _ => {}
            }
        }
        (ChangesSince::Packages(packages), history.last)
    }

    /// What changed in any registry after log index `after`, and the index that answer reaches.
    pub fn anywhere_since(&self, after: u64) -> (ChangedAnywhere, u64) {
        let history = self.history();
        if after < history.complete_after {
            return (ChangedAnywhere::Everything, history.last);
        }
        let mut packages: BTreeMap<(String, String), Option<BTreeSet<String>>> = BTreeMap::new();
        let mut registries = BTreeSet::new();
        for change in history.changes.iter().rev() {
            if change.index <= after {
                break;
            }
            match (&change.registry, &change.package) {
                (Some(registry), Some(package)) => {
                    let versions = packages
                        .entry((registry.clone(), package.clone()))
                        .or_insert_with(|| Some(BTreeSet::new()));
                    match (&change.version, versions) {
                        (Some(version), Some(versions)) => {
                            versions.insert(version.clone());
                        }
                        (None, versions) => *versions = None,
                        (Some(_), None) => {}
                    }
                }
                (Some(registry), None) => {
                    registries.insert(registry.clone());
                }
                (None, _) => return (ChangedAnywhere::Everything, history.last),
            }
        }
        (
            ChangedAnywhere::Some {
                packages,
                registries,
            },
            history.last,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package<'a>(registry: &'a str, package: &'a str) -> Changed<'a> {
        Changed::Package {
            registry,
            package,
            version: None,
        }
    }

    #[test]
    fn a_reader_learns_the_packages_changed_since_it_last_read() {
        let changes = PackageChanges::starting_at(10);
        changes.record(11, &[package("deb", "a"), package("other", "x")]);
        changes.record(12, &[package("deb", "b")]);
        let (since, reached) = changes.since("deb", 10);
        assert_eq!(
            since,
            ChangesSince::Packages(["a".to_string(), "b".to_string()].into())
        );
        assert_eq!(reached, 12);
        assert_eq!(
            changes.since("deb", 11).0,
            ChangesSince::Packages(["b".to_string()].into())
        );
        assert_eq!(
            changes.since("deb", 12).0,
            ChangesSince::Packages([].into())
        );
    }

    #[test]
    fn a_reader_of_every_registry_learns_packages_and_whole_registries() {
        let changes = PackageChanges::starting_at(10);
        assert_eq!(changes.anywhere_since(9).0, ChangedAnywhere::Everything);
        let version = |package, version| Changed::Package {
            registry: "npm",
            package,
            version: Some(version),
        };
        changes.record(11, &[package("deb", "a"), version("x", "1.0.0")]);
        changes.record(12, &[Changed::Registry("rpm"), version("x", "2.0.0")]);
        changes.record(13, &[version("y", "1.0.0"), package("npm", "y")]);
        let (since, reached) = changes.anywhere_since(10);
        assert_eq!(reached, 13);
        let versions = |names: &[&str]| Some(names.iter().map(|v| v.to_string()).collect());
        assert_eq!(
            since,
            ChangedAnywhere::Some {
                packages: [
                    (("deb".into(), "a".into()), None),
                    (("npm".into(), "x".into()), versions(&["1.0.0", "2.0.0"])),
                    (("npm".into(), "y".into()), None),
                ]
                .into(),
                registries: ["rpm".to_string()].into(),
            }
        );
        changes.record(14, &[Changed::Everything]);
        assert_eq!(changes.anywhere_since(13).0, ChangedAnywhere::Everything);
    }

    #[test]
    fn a_reader_from_before_what_is_kept_reads_everything() {
        let changes = PackageChanges::starting_at(10);
        assert_eq!(changes.since("deb", 9).0, ChangesSince::Everything);
        changes.record(11, &[Changed::Registry("deb")]);
        assert_eq!(changes.since("deb", 10).0, ChangesSince::Everything);
        assert_eq!(
            changes.since("other", 10).0,
            ChangesSince::Packages([].into())
        );
        changes.record(12, &[Changed::Everything]);
        assert_eq!(changes.since("other", 11).0, ChangesSince::Everything);
        changes.restart_at(20);
        assert_eq!(changes.since("other", 12).0, ChangesSince::Everything);
        for index in 21..21 + KEPT as u64 + 1 {
            changes.record(index, &[package("deb", "a")]);
        }
        assert_eq!(changes.since("deb", 20).0, ChangesSince::Everything);
        assert_eq!(
            changes.since("deb", 21 + KEPT as u64 - 1).0,
            ChangesSince::Packages(["a".to_string()].into())
        );
    }
}
