//! Usage figures in the replicated state: applying [`Command::RecordUsage`](arca_protocol::Command)
//! flushes, and reading the figures back. Nodes count downloads in memory and flush them here (see
//! the `usage` module at the crate's root); this module owns what a flush adds to:
//!
//! - [`Table::UsageVersions`]: each version's totals, and so its last download, which moves the
//!   version in the last-access index that cleanup's "not downloaded for" rule reads;
//! - [`Table::UsagePackages`]: each package's totals, the sum over its versions (what search
//!   ranks by, read in one lookup however many versions the package has);
//! - [`Table::UsageConsumers`]: each package's totals per consumer (user, service account, token);
//! - [`Table::UsageDays`], [`Table::UsageRegistryDays`], [`Table::UsageSiteDays`]: figures per day of
//!   each version, each registry and each site, kept for a number of days the flush carries.
//!
//! Totals go with their version (or package) when it is deleted; daily figures stay until they age
//! out, so a deleted package still counts in the days it was downloaded on.

use arca_protocol::Version;
use arca_protocol::model::{UsageCount, UsageTally};
use serde::{Deserialize, Serialize};

use super::apply::{Applier, access_key};
use super::keys::{self, Key};
use super::tables::Table;
use super::view::{ReadResult, Source, StateRead, child_key, package_key};

/// A millisecond count of one day.
pub const DAY_MS: u64 = 24 * 3600 * 1000;

/// The prefix of each node's last applied flush number in [`Table::Meta`] (`usage_batch/<node>`).
const BATCH: &str = "usage_batch/";

/// How many aged-out daily records one flush deletes from each daily table at most (the rest go
/// with the next flushes), so no one flush turns into a long write.
const PRUNE_PER_FLUSH: usize = 2_000;

/// A package's figures for one consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerRecord {
    /// The figures.
    pub count: UsageCount,
    /// The version the consumer downloaded last.
    pub last_version: Option<String>,
}

/// The day (since the unix epoch, UTC) of a time in unix milliseconds.
pub fn day_of(ms: u64) -> u32 {
    u32::try_from(ms / DAY_MS).unwrap_or(u32::MAX)
}

fn day_key(day: u32) -> Key {
    Key::new().number(u64::from(day))
}

/// The key of a version's (or, with `version` empty, a package's unattributed) figures of a day.
fn version_day_key(day: u32, registry: &str, package: &str, version: &str) -> Vec<u8> {
    day_key(day)
        .part(registry)
        .part(package)
        .part(version)
        .into_bytes()
}

fn consumer_key(registry: &str, package: &str, consumer: &str) -> Vec<u8> {
    keys::of(&[registry, package, consumer])
}

/// A version's total figures.
pub fn version_usage(
    view: &(impl StateRead + ?Sized),
    registry: &str,
    package: &str,
    version: &str,
) -> ReadResult<Option<UsageCount>> {
    view.get(Table::UsageVersions, &child_key(registry, package, version))
}

/// When a version was last downloaded, else when it was created: where it stands in the
/// last-access index, and what cleanup's "not downloaded for" rule looks at. A last access
/// recorded as a version attribute by builds before usage figures counts too.
pub fn access_time(
    view: &(impl StateRead + ?Sized),
    registry: &str,
    package: &str,
    version: &Version,
) -> ReadResult<u64> {
    let counted = version_usage(view, registry, package, &version.name)?.map_or(0, |u| u.last_at);
    let legacy = version
        .attributes
        .get(crate::proxy::LAST_ACCESS)
        .and_then(|at| at.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(version.created_at.max(counted).max(legacy))
}

/// The versions of `registry` last downloaded (else created) before `cutoff` (unix milliseconds),
/// longest idle first, from the last-access index: (package, version, that time), at most `limit`.
pub fn idle_versions(
    view: &(impl StateRead + ?Sized),
    registry: &str,
    cutoff: u64,
    limit: usize,
) -> ReadResult<Vec<(String, String, u64)>> {
    let range = (
        std::ops::Bound::Included(keys::of(&[registry])),
        std::ops::Bound::Excluded(Key::new().part(registry).number(cutoff).into_bytes()),
    );
    let mut found = Vec::new();
    for entry in view.range_raw(Table::LastAccess, &range)?.take(limit) {
        let key = entry?.0.value().to_vec();
        found.push((
            keys::text_part(&key, 2)?,
            keys::text_part(&key, 3)?,
            keys::number_part(&key, 1)?,
        ));
    }
    Ok(found)
}

/// Every version's total figures of a package, by version name.
pub fn package_versions_usage(
    view: &(impl StateRead + ?Sized),
    registry: &str,
    package: &str,
) -> ReadResult<Vec<(String, UsageCount)>> {
    of_package(view, Table::UsageVersions, registry, package)
}

/// The records of a table keyed (registry, package, name) under one package, by name.
fn of_package<T: serde::de::DeserializeOwned>(
    view: &(impl StateRead + ?Sized),
    table: Table,
    registry: &str,
    package: &str,
) -> ReadResult<Vec<(String, T)>> {
    view.scan::<T>(table, &package_key(registry, package), None, usize::MAX)?
        .into_iter()
        .map(|(key, record)| Ok((keys::text_part(&key, 2)?, record)))
        .collect()
}

/// How many times a package's versions were downloaded, all told (`0` when the view cannot say).
pub fn package_downloads(view: &(impl StateRead + ?Sized), registry: &str, package: &str) -> u64 {
    match view.get::<UsageCount>(Table::UsagePackages, &package_key(registry, package)) {
        Ok(count) => count.map_or(0, |count| count.downloads),
        Err(error) => {
            tracing::debug!(%error, registry, package, "reading a package's downloads");
            0
        }
    }
}

/// How many times a package's versions were downloaded on the days `from..=to`.
pub fn package_downloads_between(
    view: &(impl StateRead + ?Sized),
    registry: &str,
    package: &str,
    days: (u32, u32),
) -> ReadResult<u64> {
    let mut downloads = 0;
    version_days(view, days, &[registry, package], |row| {
        downloads += row.count.downloads;
    })?;
    Ok(downloads)
}

/// A package's consumers with their figures.
pub fn consumers(
    view: &(impl StateRead + ?Sized),
    registry: &str,
    package: &str,
) -> ReadResult<Vec<(String, ConsumerRecord)>> {
    of_package(view, Table::UsageConsumers, registry, package)
}

/// One day's figures of one version (`version` empty: a package's bytes of no one version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionDay {
    /// The day, since the unix epoch.
    pub day: u32,
    /// The registry.
    pub registry: String,
    /// The package.
    pub package: String,
    /// The version, or empty.
    pub version: String,
    /// The figures.
    pub count: UsageCount,
}

/// Every version's figures on the days `from..=to`, calling `each` with them in day, registry,
/// package and version order; `within` narrows them to one registry (and package).
pub fn version_days(
    view: &(impl StateRead + ?Sized),
    (from, to): (u32, u32),
    within: &[&str],
    mut each: impl FnMut(VersionDay),
) -> ReadResult<()> {
    for day in from..=to {
        let prefix = within
            .iter()
            .fold(day_key(day), |key, part| key.part(part))
            .into_bytes();
        for entry in view.range_raw(Table::UsageDays, &keys::range_after(&prefix, None))? {
            let (key, value) = entry?;
            let key = key.value();
            each(VersionDay {
                day,
                registry: keys::text_part(key, 1)?,
                package: keys::text_part(key, 2)?,
                version: keys::text_part(key, 3)?,
                count: super::tables::decode(value.value())?,
            });
        }
    }
    Ok(())
}

/// The figures of each day `from..=to` of a by-day table (registries or sites), as (day, name,
/// figures) in day and name order.
fn named_days(
    view: &(impl StateRead + ?Sized),
    table: Table,
    (from, to): (u32, u32),
) -> ReadResult<Vec<(u32, String, UsageCount)>> {
    let mut found = Vec::new();
    for day in from..=to {
        for (key, count) in
            view.scan::<UsageCount>(table, day_key(day).bytes(), None, usize::MAX)?
        {
            found.push((day, keys::text_part(&key, 1)?, count));
        }
    }
    Ok(found)
}

/// Each registry's figures on each of the days `from..=to`.
pub fn registry_days(
    view: &(impl StateRead + ?Sized),
    days: (u32, u32),
) -> ReadResult<Vec<(u32, String, UsageCount)>> {
    named_days(view, Table::UsageRegistryDays, days)
}

/// Each site's figures on each of the days `from..=to`.
pub fn site_days(
    view: &(impl StateRead + ?Sized),
    days: (u32, u32),
) -> ReadResult<Vec<(u32, String, UsageCount)>> {
    named_days(view, Table::UsageSiteDays, days)
}

impl Applier<'_> {
    /// Adds a node's flushed figures, once per flush number.
    pub(crate) fn record_usage(
        &mut self,
        node_id: u64,
        batch: u64,
        site: &str,
        tallies: Vec<UsageTally>,
        keep_days: u32,
    ) -> ReadResult<()> {
        let batch_name = format!("{BATCH}{node_id}");
        if batch <= self.counter(&batch_name)? {
            return Ok(());
        }
        self.set_scalar(&batch_name, &batch)?;
        let mut newest_day = 0;
        for tally in tallies {
            newest_day = newest_day.max(tally.day);
            self.add_tally(site, tally)?;
        }
        if let Some(first_kept) = newest_day.checked_sub(keep_days.max(1)) {
            for table in [
                Table::UsageDays,
                Table::UsageRegistryDays,
                Table::UsageSiteDays,
            ] {
                self.prune_days(table, first_kept)?;
            }
        }
        Ok(())
    }

    fn add_tally(&mut self, site: &str, tally: UsageTally) -> ReadResult<()> {
        let count = UsageCount {
            downloads: tally.downloads,
            bytes: tally.bytes,
            last_at: tally.last_at,
        };
        let (registry, package) = (tally.registry.as_str(), tally.package.as_str());
        let version = tally.version.as_deref().unwrap_or_default();
        self.add_count(
            Table::UsageDays,
            &version_day_key(tally.day, registry, package, version),
            &count,
        )?;
        self.add_count(
            Table::UsageRegistryDays,
            day_key(tally.day).part(registry).bytes(),
            &count,
        )?;
        self.add_count(
            Table::UsageSiteDays,
            day_key(tally.day).part(site).bytes(),
            &count,
        )?;
        let Some(mut record) = self.package(registry, package)? else {
            return Ok(());
        };
        let key = consumer_key(registry, package, &tally.consumer);
        let mut consumer = self
            .get::<ConsumerRecord>(Table::UsageConsumers, &key)?
            .unwrap_or_default();
        if tally.version.is_some() && tally.last_at >= consumer.count.last_at {
            consumer.last_version = tally.version.clone();
        }
        consumer.count.add(&count);
        self.put(Table::UsageConsumers, &key, &consumer)?;
        let Some(version) = tally.version.as_deref() else {
            return Ok(());
        };
        let Some(stored) = self.version(registry, package, version)? else {
            return Ok(());
        };
        let before = access_time(self, registry, package, &stored)?;
        self.add_count(
            Table::UsageVersions,
            &child_key(registry, package, version),
            &count,
        )?;
        self.add_count(
            Table::UsagePackages,
            &package_key(registry, package),
            &count,
        )?;
        let after = access_time(self, registry, package, &stored)?;
        if after != before {
            self.delete(
                Table::LastAccess,
                &access_key(registry, before, package, version),
            )?;
            self.put(
                Table::LastAccess,
                &access_key(registry, after, package, version),
                &(),
            )?;
        }
        if record.last_access.is_none_or(|seen| seen < tally.last_at) {
            record.last_access = Some(tally.last_at);
            self.put(Table::Packages, &package_key(registry, package), &record)?;
        }
        Ok(())
    }

    fn add_count(&mut self, table: Table, key: &[u8], count: &UsageCount) -> ReadResult<()> {
        let mut stored = self.get::<UsageCount>(table, key)?.unwrap_or_default();
        stored.add(count);
        self.put(table, key, &stored)
    }

    /// Deletes (some of) a daily table's records of days before `first_kept`.
    fn prune_days(&mut self, table: Table, first_kept: u32) -> ReadResult<()> {
        let range = (
            std::ops::Bound::Unbounded,
            std::ops::Bound::Excluded(day_key(first_kept).into_bytes()),
        );
        let mut old = Vec::new();
        for entry in self.range_raw(table, &range)?.take(PRUNE_PER_FLUSH) {
            old.push(entry?.0.value().to_vec());
        }
        for key in old {
            self.delete(table, &key)?;
        }
        Ok(())
    }

    /// Forgets a version's totals (the version is being removed).
    pub(crate) fn forget_version_usage(
        &mut self,
        registry: &str,
        package: &str,
        version: &str,
    ) -> ReadResult<()> {
        let key = child_key(registry, package, version);
        let Some(gone) = self.get::<UsageCount>(Table::UsageVersions, &key)? else {
            return Ok(());
        };
        self.delete(Table::UsageVersions, &key)?;
        let package_key = package_key(registry, package);
        if let Some(mut total) = self.get::<UsageCount>(Table::UsagePackages, &package_key)? {
            total.downloads = total.downloads.saturating_sub(gone.downloads);
            total.bytes = total.bytes.saturating_sub(gone.bytes);
            self.put(Table::UsagePackages, &package_key, &total)?;
        }
        Ok(())
    }

    /// Forgets a package's totals and consumers (the package is being removed).
    pub(crate) fn forget_package_usage(&mut self, registry: &str, package: &str) -> ReadResult<()> {
        self.delete(Table::UsagePackages, &package_key(registry, package))?;
        for key in self.scan_keys(
            Table::UsageConsumers,
            &package_key(registry, package),
            None,
            usize::MAX,
        )? {
            self.delete(Table::UsageConsumers, &key)?;
        }
        Ok(())
    }
}
