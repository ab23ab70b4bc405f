//! How results reach stdout: the `--format` choice, the [`Tabular`] and [`Row`] traits that give every
//! shown type its table form, the one [`emit`] function, and the small text formatters tables use.

use std::io::Write;

use anyhow::Result;
use arca_protocol::api::Page;
use clap::ValueEnum;
use comfy_table::Table;
use serde::Serialize;

/// The `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// Pretty-printed JSON of the API objects.
    Json,
    /// YAML of the API objects.
    Yaml,
}

/// Something with a text form for `--format table`.
pub trait Tabular {
    /// The text printed in table mode.
    fn table(&self) -> String;
}

/// A type shown as one row of a table; a value shows as a one-row table, a list as one row per item.
pub trait Row {
    /// Column titles.
    const HEADERS: &'static [&'static str];
    /// This value's cells, one per header.
    fn cells(&self) -> Vec<String>;
}

impl<T: Row> Tabular for T {
    fn table(&self) -> String {
        table(T::HEADERS, [self.cells()])
    }
}

impl<T: Row> Tabular for Vec<T> {
    fn table(&self) -> String {
        table(T::HEADERS, self.iter().map(Row::cells))
    }
}

impl<T: Row> Tabular for Page<T> {
    fn table(&self) -> String {
        let pages = self.total.div_ceil(self.page_size.max(1)).max(1);
        let position = if self.page == 0 {
            format!("{} in total", self.total)
        } else {
            format!("page {} of {} ({} in total)", self.page, pages, self.total)
        };
        let next = match &self.next_cursor {
            Some(cursor) => format!("; next page: --cursor {cursor}"),
            None => String::new(),
        };
        format!(
            "{}\n{position}{next}",
            table(T::HEADERS, self.items.iter().map(Row::cells)),
        )
    }
}

/// Prints `value` to stdout in `format`.
pub fn emit<T: Serialize + Tabular>(format: Format, value: &T) -> Result<()> {
    let text = match format {
        Format::Table => value.table(),
        Format::Json => serde_json::to_string_pretty(value)?,
        Format::Yaml => serde_yaml_ng::to_string(value)?,
    };
    writeln!(std::io::stdout().lock(), "{}", text.trim_end())?;
    Ok(())
}

/// A table with `headers` and `rows`, rendered as text.
pub fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(headers.iter().copied())
        .add_rows(rows);
    table.to_string()
}

/// What a delete removed; prints as `{"deleted": {...}}` or one line of text.
#[derive(Debug, Serialize)]
pub struct Deleted {
    /// The removed thing.
    pub deleted: Subject,
}

/// Something a command can delete.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// A registry.
    Registry { registry: String },
    /// A package with all its versions.
    Package { registry: String, package: String },
    /// One version of a package.
    Version {
        registry: String,
        package: String,
        version: String,
    },
    /// An API token.
    Token { id: String },
    /// A user or service account.
    User { name: String },
}

impl Tabular for Deleted {
    fn table(&self) -> String {
        match &self.deleted {
            Subject::Registry { registry } => format!("deleted registry {registry}"),
            Subject::Package { registry, package } => {
                format!("deleted package {package} from registry {registry}")
            }
            Subject::Version {
                registry,
                package,
                version,
            } => format!("deleted version {version} of package {package} from registry {registry}"),
            Subject::Token { id } => format!("revoked token {id}"),
            Subject::User { name } => format!("deleted user {name}"),
        }
    }
}

/// A byte count for humans (`3.00 MiB`).
pub fn bytes(count: u64) -> String {
    indicatif::HumanBytes(count).to_string()
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn timestamp(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let time = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14 22:13:20");
        assert_eq!(timestamp(4_107_542_399_000), "2100-02-28 23:59:59");
    }

    #[test]
    fn pages_show_their_position() {
        let page = Page {
            items: vec![Sample],
            page: 2,
            page_size: 2,
            total: 5,
            next_cursor: Some("abc".into()),
        };
        let text = page.table();
        assert!(text.contains("NAME") && text.contains("sample"), "{text}");
        assert!(
            text.ends_with("page 2 of 3 (5 in total); next page: --cursor abc"),
            "{text}"
        );
    }

    struct Sample;

    impl Row for Sample {
        const HEADERS: &'static [&'static str] = &["NAME"];
        fn cells(&self) -> Vec<String> {
            vec!["sample".into()]
        }
    }
}
