//! The search box's language: words, and filters written `name:value` among them: `type:npm`,
//! `registry:tools`, `status:blocked`, `pushed:>2026-01-01` (also `>=`, `<`, `<=`, or a day), and
//! any other `key:value` for key:value metadata.

use std::ops::Bound;
use std::str::FromStr;

use arca_protocol::PackageType;

/// The firewall statuses a `status:` filter may name.
pub const STATUSES: [&str; 5] = ["allowed", "warn", "blocked", "quarantined", "released"];
/// A day, in milliseconds.
const DAY_MS: u64 = 24 * 3600 * 1000;

/// A query that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(String);

/// A query taken apart.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ParsedQuery {
    /// The words to look for, lower-cased, in the order given.
    pub words: Vec<String>,
    /// Only these package types (lower-case names); any, when empty.
    pub types: Vec<String>,
    /// Only these registries; any the caller may read, when empty.
    pub registries: Vec<String>,
    /// Only versions with one of these statuses; any, when empty.
    pub statuses: Vec<String>,
    /// Only versions with every one of these `key:value` (lower-cased).
    pub metadata: Vec<String>,
    /// Only versions pushed within each of these ranges (unix milliseconds).
    pub pushed: Vec<(Bound<u64>, Bound<u64>)>,
}

impl ParsedQuery {
    /// True when there is nothing to look for, only filters (or nothing at all).
    pub fn only_filters(&self) -> bool {
        self.words.is_empty()
    }
}

/// Takes `query` apart.
pub fn parse(query: &str) -> Result<ParsedQuery, QueryError> {
    let mut parsed = ParsedQuery::default();
    for token in query.split_whitespace() {
        let Some((key, value)) = token
            .split_once(':')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        else {
            parsed.words.push(token.to_lowercase());
            continue;
        };
        match key.to_lowercase().as_str() {
            "type" => {
                let package_type =
                    PackageType::from_str(value).map_err(|error| QueryError(error.to_string()))?;
                parsed.types.push(package_type.as_str().to_lowercase());
            }
            "registry" => parsed.registries.push(value.to_string()),
            "status" => {
                let status = value.to_lowercase();
                if !STATUSES.contains(&status.as_str()) {
                    return Err(QueryError(format!(
                        "status:{value}: the statuses are {}",
                        STATUSES.join(", ")
                    )));
                }
                parsed.statuses.push(status);
            }
            "pushed" => parsed.pushed.push(pushed_range(value)?),
            _ => parsed.metadata.push(token.to_lowercase()),
        }
    }
    Ok(parsed)
}

/// `>DATE`, `>=DATE`, `<DATE`, `<=DATE` or `DATE` (that whole day) as a range of unix
/// milliseconds; a date is `YYYY-MM-DD` or an RFC 3339 time.
fn pushed_range(value: &str) -> Result<(Bound<u64>, Bound<u64>), QueryError> {
    let (operator, date) = match value.find(|c: char| c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value, ""),
    };
    let (at, whole_day) = time_of(date).ok_or_else(|| {
        QueryError(format!(
            "pushed:{value}: a date as YYYY-MM-DD or an RFC 3339 time, after >, >=, < or <="
        ))
    })?;
    let end_of_day = at + if whole_day { DAY_MS } else { 1 };
    Ok(match operator {
        ">" => (Bound::Included(end_of_day), Bound::Unbounded),
        ">=" => (Bound::Included(at), Bound::Unbounded),
        "<" => (Bound::Unbounded, Bound::Excluded(at)),
        "<=" => (Bound::Unbounded, Bound::Excluded(end_of_day)),
        "" => (Bound::Included(at), Bound::Excluded(end_of_day)),
        _ => {
            return Err(QueryError(format!(
                "pushed:{value}: the comparisons are >, >=, < and <="
            )));
        }
    })
}

/// Unix milliseconds of `date`, and whether it named a whole day.
fn time_of(date: &str) -> Option<(u64, bool)> {
    let (text, whole_day) = if date.len() == 10 {
        (format!("{date}T00:00:00Z"), true)
    } else {
        (date.to_string(), false)
    };
    let time = humantime::parse_rfc3339_weak(&text).ok()?;
    let ms = time.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    Some((u64::try_from(ms).ok()?, whole_day))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN_1: u64 = 1_767_225_600_000;

    #[test]
    fn words_and_filters_are_told_apart() {
        let parsed =
            parse("Left PAD type:NPM registry:js status:Blocked team:Payments").expect("parses");
        assert_eq!(parsed.words, ["left", "pad"]);
        assert_eq!(parsed.types, ["npm"]);
        assert_eq!(parsed.registries, ["js"]);
        assert_eq!(parsed.statuses, ["blocked"]);
        assert_eq!(parsed.metadata, ["team:payments"]);
        assert!(parse("type:oci").expect("alias").types == ["docker"]);
        assert!(parse("type:zip").is_err());
        assert!(parse("status:fine").is_err());
        assert!(parse("status:").expect("a word").words == ["status:"]);
    }

    #[test]
    fn pushed_dates_become_ranges() {
        let range = |value: &str| parse(&format!("pushed:{value}")).map(|p| p.pushed[0]);
        assert_eq!(
            range(">2026-01-01"),
            Ok((Bound::Included(JAN_1 + DAY_MS), Bound::Unbounded))
        );
        assert_eq!(
            range(">=2026-01-01"),
            Ok((Bound::Included(JAN_1), Bound::Unbounded))
        );
        assert_eq!(
            range("<2026-01-01"),
            Ok((Bound::Unbounded, Bound::Excluded(JAN_1)))
        );
        assert_eq!(
            range("2026-01-01"),
            Ok((Bound::Included(JAN_1), Bound::Excluded(JAN_1 + DAY_MS)))
        );
        assert_eq!(
            range(">2026-01-01T00:00:00Z"),
            Ok((Bound::Included(JAN_1 + 1), Bound::Unbounded))
        );
        assert!(range(">yesterday").is_err());
        assert!(range("~2026-01-01").is_err());
    }
}
