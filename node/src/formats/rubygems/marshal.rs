//! Ruby's Marshal format (version 4.8), written only: the values the legacy RubyGems index files
//! hold (`specs.4.8.gz`, `quick/Marshal.4.8/*.gemspec.rz`). Every object is written out in full —
//! no symbol or object links — which `Marshal.load` reads the same.

/// A Ruby value as Marshal writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    /// A UTF-8 string.
    Str(String),
    Symbol(String),
    Array(Vec<Value>),
    /// A hash, in insertion order.
    Hash(Vec<(Value, Value)>),
    /// `o`: an object of `class` with instance variables (`@name`, value).
    Object(String, Vec<(String, Value)>),
    /// `U`: an object of `class` whose `marshal_dump` gave the value.
    UserMarshal(String, Box<Value>),
    /// `u`: an object of `class` whose `_dump` gave the bytes.
    UserDump(String, Vec<u8>),
}

impl Value {
    /// A `Gem::Version`.
    pub fn version(version: &str) -> Value {
        Value::UserMarshal(
            "Gem::Version".into(),
            Box::new(Value::Array(vec![Value::Str(version.into())])),
        )
    }

    /// A `Gem::Requirement` of `(operator, version)` pairs (`>= 0` when there are none).
    pub fn requirement(requirements: &[(String, String)]) -> Value {
        let pairs = if requirements.is_empty() {
            vec![(">=".to_string(), "0".to_string())]
        } else {
            requirements.to_vec()
        };
        let list = pairs
            .into_iter()
            .map(|(op, version)| Value::Array(vec![Value::Str(op), Value::version(&version)]))
            .collect();
        Value::UserMarshal(
            "Gem::Requirement".into(),
            Box::new(Value::Array(vec![Value::Array(list)])),
        )
    }

    /// A UTC `Time` at midnight of the day `unix_ms` falls in (what a gemspec's date is).
    pub fn date(unix_ms: u64) -> Value {
        let days = (unix_ms / 86_400_000) as i64;
        let (year, month, day) = civil_from_days(days);
        let high: u32 = (1 << 31)
            | (1 << 30)
            | (((year - 1900) as u32) << 14)
            | ((month - 1) << 10)
            | (day << 5);
        let mut bytes = high.to_le_bytes().to_vec();
        bytes.extend_from_slice(&0u32.to_le_bytes());
        Value::UserDump("Time".into(), bytes)
    }

    /// The Marshal stream of this value (`04 08` and the value).
    pub fn dump(&self) -> Vec<u8> {
        let mut out = vec![4, 8];
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Nil => out.push(b'0'),
            Value::Bool(true) => out.push(b'T'),
            Value::Bool(false) => out.push(b'F'),
            Value::Int(n) => {
                out.push(b'i');
                write_int(out, *n);
            }
            Value::Str(text) => {
                // `I"...` with the ivar `:E => true`: a UTF-8 string.
                out.extend_from_slice(b"I\"");
                write_bytes(out, text.as_bytes());
                out.push(6);
                write_symbol(out, "E");
                out.push(b'T');
            }
            Value::Symbol(name) => write_symbol(out, name),
            Value::Array(items) => {
                out.push(b'[');
                write_int(out, items.len() as i64);
                for item in items {
                    item.write(out);
                }
            }
            Value::Hash(pairs) => {
                out.push(b'{');
                write_int(out, pairs.len() as i64);
                for (key, value) in pairs {
                    key.write(out);
                    value.write(out);
                }
            }
            Value::Object(class, ivars) => {
                out.push(b'o');
                write_symbol(out, class);
                write_int(out, ivars.len() as i64);
                for (name, value) in ivars {
                    write_symbol(out, name);
                    value.write(out);
                }
            }
            Value::UserMarshal(class, value) => {
                out.push(b'U');
                write_symbol(out, class);
                value.write(out);
            }
            Value::UserDump(class, bytes) => {
                out.push(b'u');
                write_symbol(out, class);
                write_bytes(out, bytes);
            }
        }
    }
}

fn write_symbol(out: &mut Vec<u8>, name: &str) {
    out.push(b':');
    write_bytes(out, name.as_bytes());
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_int(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// Marshal's integer: small values in one byte, others as a length byte and little-endian bytes.
fn write_int(out: &mut Vec<u8>, n: i64) {
    match n {
        0 => out.push(0),
        1..=122 => out.push((n + 5) as u8),
        -123..=-1 => out.push(((n - 5) & 0xff) as u8),
        _ => {
            let mut bytes = Vec::new();
            let mut rest = n;
            loop {
                bytes.push((rest & 0xff) as u8);
                rest >>= 8;
                if (n > 0 && rest == 0) || (n < 0 && rest == -1) {
                    break;
                }
            }
            let len = bytes.len() as i8;
            out.push(if n > 0 { len as u8 } else { (-len) as u8 });
            out.extend_from_slice(&bytes);
        }
    }
}

/// The (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn integers_are_written_as_ruby_writes_them() {
        for (n, expected) in [
            (0, "00"),
            (4, "09"),
            (122, "7f"),
            (123, "01 7b"),
            (255, "01 ff"),
            (256, "02 00 01"),
            (70000, "03 70 11 01"),
            (-1, "fa"),
            (-124, "ff 84"),
            (-257, "fe ff fe"),
        ] {
            let mut out = Vec::new();
            write_int(&mut out, n);
            assert_eq!(hex(&out), expected, "{n}");
        }
    }

    #[test]
    fn gem_versions_and_times_match_rubys_own_dumps() {
        // Ruby: Marshal.dump(Gem::Version.new("1.0.0"))
        assert_eq!(
            hex(&Value::version("1.0.0").dump()),
            "04 08 55 3a 11 47 65 6d 3a 3a 56 65 72 73 69 6f 6e 5b 06 49 22 0a 31 2e 30 2e 30 06 \
             3a 06 45 54"
        );
        // 2024-01-01 UTC.
        assert_eq!(
            hex(&Value::date(1_704_067_200_000).dump()[2..]),
            "75 3a 09 54 69 6d 65 0d 20 00 1f c0 00 00 00 00"
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }
}
