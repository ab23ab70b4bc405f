//! The indexes RubyGems clients read, rendered from what hosted registries stored: the compact
//! index bundler and `gem` 3.x use (`versions`, `info/<gem>`, `names`), and the legacy Marshal
//! indexes `gem` falls back to (`specs.4.8.gz`, `latest_specs.4.8.gz`, `prerelease_specs.4.8.gz`,
//! `quick/Marshal.4.8/<gem>-<version>.gemspec.rz`).

use std::collections::BTreeMap;
use std::io::Write;

use arca_protocol::Registry;

use super::Context;
use super::gem_file::{DependencyKind, GemSpec};
use super::marshal::Value;
use crate::frontend::TextError;
use crate::meta::StateRead;

/// The version attribute holding the gem's specification, as JSON.
pub const SPEC: &str = "rubygems.spec";
/// The version attribute set when the version is yanked.
pub const YANKED: &str = "rubygems.yanked";
/// The RubyGems version a specification says built it (what `gem build` 3.3 writes).
const RUBYGEMS_VERSION: &str = "3.3.15";

/// A gem version a hosted registry holds and has not yanked.
#[derive(Debug, Clone)]
pub struct StoredGem {
    pub spec: GemSpec,
    /// sha256 of the `.gem`, hex.
    pub checksum: String,
    /// When it was pushed, unix milliseconds.
    pub created_at: u64,
}

/// The gems `member` holds (of the gem `only`, when given), by name, each gem's versions in the
/// order they were pushed; yanked versions left out.
pub fn stored_gems(
    ctx: &Context<'_>,
    member: &Registry,
    only: Option<&str>,
) -> Result<BTreeMap<String, Vec<StoredGem>>, TextError> {
    let view = ctx.state.meta.view()?;
    let names: Vec<String> = match only {
        Some(name) => vec![name.to_string()],
        None => view
            .packages(&member.name, None, usize::MAX)?
            .into_iter()
            .map(|package| package.name)
            .collect(),
    };
    let mut gems = BTreeMap::new();
    for name in names {
        let Some(contents) = view.package_contents(&member.name, &name)? else {
            continue;
        };
        let mut versions: Vec<StoredGem> = contents
            .versions
            .values()
            .filter(|version| !version.attributes.contains_key(YANKED))
            .filter_map(|version| {
                let spec: GemSpec = serde_json::from_str(version.attributes.get(SPEC)?).ok()?;
                let file = version.files.get(&format!("{}.gem", spec.full_name()))?;
                Some(StoredGem {
                    checksum: file.sha256.to_hex(),
                    created_at: version.created_at,
                    spec,
                })
            })
            .collect();
        versions.sort_by_key(|gem| gem.created_at);
        if !versions.is_empty() {
            gems.insert(name, versions);
        }
    }
    Ok(gems)
}

/// A requirement list as the compact index writes it: `op version` pairs, sorted as text, joined
/// by `&`.
fn requirement_text(requirements: &[(String, String)]) -> String {
    let mut pairs: Vec<String> = requirements
        .iter()
        .map(|(op, version)| format!("{op} {version}"))
        .collect();
    pairs.sort();
    pairs.join("&")
}

/// The `info/<gem>` line of one version: `<version> <dep>:<req>,...|checksum:<sha256>[,ruby:...][,rubygems:...]`.
pub fn info_line(gem: &StoredGem) -> String {
    let spec = &gem.spec;
    let dependencies: Vec<String> = spec
        .dependencies
        .iter()
        .filter(|dependency| dependency.kind == DependencyKind::Runtime)
        .map(|dependency| {
            let requirements = if dependency.requirements.is_empty() {
                ">= 0".to_string()
            } else {
                requirement_text(&dependency.requirements)
            };
            format!("{}:{requirements}", dependency.name)
        })
        .collect();
    let mut line = format!(
        "{} {}|checksum:{}",
        spec.full_version(),
        dependencies.join(","),
        gem.checksum
    );
    if !spec.required_ruby_version.is_empty() {
        line.push_str(&format!(
            ",ruby:{}",
            requirement_text(&spec.required_ruby_version)
        ));
    }
    if !spec.required_rubygems_version.is_empty() {
        line.push_str(&format!(
            ",rubygems:{}",
            requirement_text(&spec.required_rubygems_version)
        ));
    }
    line
}

/// An `info/<gem>` file of `lines`.
pub fn info_body<'a>(lines: impl IntoIterator<Item = &'a String>) -> String {
    let mut body = String::from("---\n");
    for line in lines {
        body.push_str(line);
        body.push('\n');
    }
    body
}

/// The `versions` lines of a hosted registry's gems: `<gem> <version>,... <md5 of its info file>`.
pub fn versions_lines(gems: &BTreeMap<String, Vec<StoredGem>>) -> String {
    let mut out = String::new();
    for (name, versions) in gems {
        let lines: Vec<String> = versions.iter().map(info_line).collect();
        let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(
            info_body(&lines).as_bytes(),
        ));
        let listed: Vec<String> = versions.iter().map(|gem| gem.spec.full_version()).collect();
        out.push_str(&format!("{name} {} {md5}\n", listed.join(",")));
    }
    out
}

/// Which of the Marshal spec lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecList {
    /// `specs.4.8.gz`: every release.
    Released,
    /// `latest_specs.4.8.gz`: the newest release of each gem (and platform).
    Latest,
    /// `prerelease_specs.4.8.gz`: every pre-release.
    Prerelease,
}

impl SpecList {
    pub fn of_file(file: &str) -> Option<SpecList> {
        match file {
            "specs.4.8.gz" => Some(SpecList::Released),
            "latest_specs.4.8.gz" => Some(SpecList::Latest),
            "prerelease_specs.4.8.gz" => Some(SpecList::Prerelease),
            _ => None,
        }
    }
}

/// The gzip'd Marshal list of `[name, Gem::Version, platform]` of `which`.
pub fn spec_list(
    gems: &BTreeMap<String, Vec<StoredGem>>,
    which: SpecList,
) -> Result<Vec<u8>, TextError> {
    let mut entries: Vec<(&str, &str, &str)> = Vec::new();
    for (name, versions) in gems {
        let mut newest: BTreeMap<&str, &GemSpec> = BTreeMap::new();
        for gem in versions {
            let spec = &gem.spec;
            match which {
                SpecList::Released if !spec.is_prerelease() => {
                    entries.push((name, &spec.number, &spec.platform));
                }
                SpecList::Prerelease if spec.is_prerelease() => {
                    entries.push((name, &spec.number, &spec.platform));
                }
                SpecList::Latest if !spec.is_prerelease() => {
                    let kept = newest.entry(&spec.platform).or_insert(spec);
                    if crate::ecosystems::gem_version::compare(&spec.number, &kept.number).is_gt() {
                        *kept = spec;
                    }
                }
                _ => {}
            }
        }
        entries.extend(
            newest
                .values()
                .map(|spec| (name.as_str(), spec.number.as_str(), spec.platform.as_str())),
        );
    }
    let list = Value::Array(
        entries
            .into_iter()
            .map(|(name, number, platform)| {
                Value::Array(vec![
                    Value::Str(name.into()),
                    Value::version(number),
                    Value::Str(platform.into()),
                ])
            })
            .collect(),
    );
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&list.dump()).map_err(TextError::internal)?;
    gzip.finish().map_err(TextError::internal)
}

/// `quick/Marshal.4.8/<gem>-<version>.gemspec.rz`: the zlib'd Marshal of the `Gem::Specification`
/// (its `_dump`: the 19 fields `Gem::Specification._load` reads).
pub fn gemspec_rz(gem: &StoredGem) -> Result<Vec<u8>, TextError> {
    let spec = &gem.spec;
    let strings =
        |list: &[String]| Value::Array(list.iter().map(|s| Value::Str(s.clone())).collect());
    let optional = |text: &Option<String>| text.clone().map_or(Value::Nil, Value::Str);
    let dependencies = spec
        .dependencies
        .iter()
        .map(|dependency| {
            Value::Object(
                "Gem::Dependency".into(),
                vec![
                    ("@name".into(), Value::Str(dependency.name.clone())),
                    (
                        "@requirement".into(),
                        Value::requirement(&dependency.requirements),
                    ),
                    (
                        "@type".into(),
                        Value::Symbol(
                            match dependency.kind {
                                DependencyKind::Runtime => "runtime",
                                DependencyKind::Development => "development",
                            }
                            .into(),
                        ),
                    ),
                    ("@prerelease".into(), Value::Bool(false)),
                ],
            )
        })
        .collect();
    let email = match spec.email.as_slice() {
        [] => Value::Nil,
        [one] => Value::Str(one.clone()),
        many => strings(many),
    };
    let fields = Value::Array(vec![
        Value::Str(RUBYGEMS_VERSION.into()),
        Value::Int(4),
        Value::Str(spec.name.clone()),
        Value::version(&spec.number),
        Value::date(gem.created_at),
        Value::Str(spec.summary.clone()),
        Value::requirement(&spec.required_ruby_version),
        Value::requirement(&spec.required_rubygems_version),
        Value::Str(spec.platform.clone()),
        Value::Array(dependencies),
        Value::Str(String::new()),
        email,
        strings(&spec.authors),
        optional(&spec.description),
        optional(&spec.homepage),
        Value::Bool(true),
        Value::Str(spec.platform.clone()),
        strings(&spec.licenses),
        Value::Hash(
            spec.metadata
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
                .collect(),
        ),
    ]);
    let specification = Value::UserDump("Gem::Specification".into(), fields.dump());
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&specification.dump())
        .map_err(TextError::internal)?;
    zlib.finish().map_err(TextError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::rubygems::gem_file::GemDependency;

    fn gem() -> StoredGem {
        StoredGem {
            spec: GemSpec {
                name: "foo".into(),
                number: "0.1.0".into(),
                platform: "ruby".into(),
                summary: "Foo".into(),
                description: None,
                authors: vec!["A".into()],
                email: Vec::new(),
                homepage: None,
                licenses: vec!["MIT".into()],
                metadata: BTreeMap::new(),
                dependencies: vec![
                    GemDependency {
                        name: "bar".into(),
                        requirements: vec![(">=".into(), "1.0".into()), ("<".into(), "2".into())],
                        kind: DependencyKind::Runtime,
                    },
                    GemDependency {
                        name: "rspec".into(),
                        requirements: Vec::new(),
                        kind: DependencyKind::Development,
                    },
                ],
                required_ruby_version: vec![(">=".into(), "2.7".into())],
                required_rubygems_version: Vec::new(),
            },
            checksum: "ab".repeat(32),
            created_at: 1_704_067_200_000,
        }
    }

    #[test]
    fn info_lines_follow_the_compact_index_format() {
        assert_eq!(
            info_line(&gem()),
            format!(
                "0.1.0 bar:< 2&>= 1.0|checksum:{},ruby:>= 2.7",
                "ab".repeat(32)
            )
        );
        let gems = BTreeMap::from([("foo".to_string(), vec![gem()])]);
        let versions = versions_lines(&gems);
        assert!(versions.starts_with("foo 0.1.0 "), "{versions}");
        assert_eq!(
            versions.trim_end().rsplit(' ').next().map(str::len),
            Some(32)
        );
    }

    #[test]
    fn the_gemspec_is_ruby_marshal_of_a_specification() {
        let mut inflated = Vec::new();
        let compressed = gemspec_rz(&gem()).expect("rendered");
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(compressed.as_slice()),
            &mut inflated,
        )
        .expect("zlib");
        // `u :Gem::Specification <len>` then the nested stream of a 19-element array.
        assert!(inflated.starts_with(b"\x04\x08u:\x17Gem::Specification"));
        let nested = inflated
            .windows(3)
            .position(|w| w == b"\x04\x08[")
            .expect("nested stream");
        assert_eq!(inflated[nested + 3], 19 + 5);
    }
}
