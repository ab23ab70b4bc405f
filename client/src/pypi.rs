//! Uploading Python distributions to PyPI registries, `/pypi/{registry}/`, the way twine does: one
//! `multipart/form-data` POST per file with `:action=file_upload`, the project and version (from the
//! file name: PEP 427 for wheels, `<name>-<version>.tar.gz` for sdists), the file type, the core
//! metadata fields read from the distribution (`*.dist-info/METADATA` of a wheel, `PKG-INFO` of an
//! sdist), the file's sha256 and the file itself as `content`, authenticated as `__token__`.

use std::path::Path;

use reqwest::Method;
use reqwest::multipart::{Form, Part};

use crate::archive::{tar_gz_member, zip_member};
use crate::client::Client;
use crate::error::ClientError;
use crate::generic::{file_body, sha256_file};
use crate::published::Published;

/// The user name twine sends with a token.
const TOKEN_USER: &str = "__token__";

/// What a distribution's file name says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Distribution {
    /// The project as spelled in the file name.
    name: String,
    version: String,
    /// `bdist_wheel` or `sdist`.
    filetype: &'static str,
    /// The wheel's Python tag (`py3`), `source` for an sdist.
    pyversion: String,
}

impl Distribution {
    /// Reads a distribution file name: a wheel (`{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`)
    /// or an sdist (`{name}-{version}.tar.gz` or `.zip`).
    fn parse(filename: &str) -> Result<Distribution, ClientError> {
        let refused = || {
            ClientError::Invalid(format!(
                "{filename:?} is neither a wheel ({{name}}-{{version}}-{{python}}-{{abi}}-{{platform}}.whl) \
                 nor an sdist ({{name}}-{{version}}.tar.gz)"
            ))
        };
        if let Some(stem) = filename.strip_suffix(".whl") {
            let parts: Vec<&str> = stem.split('-').collect();
            if !matches!(parts.len(), 5 | 6) || parts.iter().any(|part| part.is_empty()) {
                return Err(refused());
            }
            return Ok(Distribution {
                name: parts[0].to_string(),
                version: parts[1].to_string(),
                filetype: "bdist_wheel",
                pyversion: parts[parts.len() - 3].to_string(),
            });
        }
        let stem = filename
            .strip_suffix(".tar.gz")
            .or_else(|| filename.strip_suffix(".zip"))
            .ok_or_else(refused)?;
        match stem.rsplit_once('-') {
            Some((name, version)) if !name.is_empty() && !version.is_empty() => Ok(Distribution {
                name: name.to_string(),
                version: version.to_string(),
                filetype: "sdist",
                pyversion: "source".to_string(),
            }),
            _ => Err(refused()),
        }
    }

    /// True for a member path holding this distribution's core metadata.
    fn is_metadata(&self, path: &str) -> bool {
        let Some((top, file)) = path.split_once('/') else {
            return false;
        };
        match self.filetype {
            "bdist_wheel" => top.ends_with(".dist-info") && file == "METADATA",
            _ => file == "PKG-INFO",
        }
    }
}

/// The core metadata of the distribution at `path`, or `None` when it carries none.
fn read_metadata(path: &Path, dist: &Distribution) -> Result<Option<String>, ClientError> {
    let file = std::fs::File::open(path)?;
    let what = path.display().to_string();
    let wanted = |member: &str| dist.is_metadata(member);
    let data = if path.extension().is_some_and(|ext| ext == "gz") {
        tar_gz_member(std::io::BufReader::new(file), &what, wanted)?
    } else {
        zip_member(file, &what, wanted)?
    };
    Ok(data.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// The upload form fields of core metadata `text` (RFC 822 headers, then the description as body), as
/// twine names them: lower case with `_`, `Classifier` as `classifiers`, `Project-URL` as
/// `project_urls`. `Name` and `Version` are left out: the file name gives them.
fn metadata_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut lines = text.lines();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // A continuation of the previous header.
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim_start());
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = match key.trim().to_ascii_lowercase().as_str() {
            "classifier" => "classifiers".to_string(),
            "project-url" => "project_urls".to_string(),
            other => other.replace('-', "_"),
        };
        fields.push((key, value.trim().to_string()));
    }
    fields.retain(|(key, _)| !matches!(key.as_str(), "name" | "version"));
    let body = lines.collect::<Vec<_>>().join("\n");
    if !body.trim().is_empty() && !fields.iter().any(|(key, _)| key == "description") {
        fields.push(("description".to_string(), body));
    }
    fields
}

/// A project name in PEP 503 normal form, as the registry stores it.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

impl Client {
    /// Uploads the Python distribution (wheel or sdist) at `file` to the PyPI registry `registry`.
    pub async fn push_python(&self, registry: &str, file: &Path) -> Result<Published, ClientError> {
        let filename = file
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| {
                ClientError::Invalid(format!("{} has no usable file name", file.display()))
            })?
            .to_string();
        let dist = Distribution::parse(&filename)?;
        let metadata = {
            let (path, dist) = (file.to_path_buf(), dist.clone());
            tokio::task::spawn_blocking(move || read_metadata(&path, &dist))
                .await
                .map_err(|err| ClientError::Invalid(format!("reading metadata: {err}")))??
        };
        let sha256 = sha256_file(file, |_| {}).await?;
        let mut form = Form::new()
            .text(":action", "file_upload")
            .text("protocol_version", "1")
            .text("name", dist.name.clone())
            .text("version", dist.version.clone())
            .text("filetype", dist.filetype)
            .text("pyversion", dist.pyversion.clone())
            .text("sha256_digest", sha256.to_hex());
        for (key, value) in metadata.as_deref().map(metadata_fields).unwrap_or_default() {
            form = form.text(key, value);
        }
        let (body, length) = file_body(file, |_| {}).await?;
        let content = Part::stream_with_length(body, length)
            .file_name(filename.clone())
            .mime_str("application/octet-stream")?;
        let url = self.url(&["pypi", registry, ""])?;
        let request = self
            .request_basic(Method::POST, url, TOKEN_USER)
            .multipart(form.part("content", content));
        self.send(request).await?;
        Ok(Published {
            ecosystem: "python",
            registry: registry.to_string(),
            package: normalize(&dist.name),
            version: dist.version,
            files: vec![filename],
            tags: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_project_version_and_type() {
        let wheel = Distribution::parse("Dep_A-1.0.0-py3-none-any.whl").expect("wheel");
        assert_eq!(
            (wheel.name.as_str(), wheel.version.as_str(), wheel.filetype),
            ("Dep_A", "1.0.0", "bdist_wheel")
        );
        assert_eq!(wheel.pyversion, "py3");
        let built = Distribution::parse("a-2-1build-cp311-cp311-linux_x86_64.whl").expect("wheel");
        assert_eq!(built.pyversion, "cp311");
        let sdist = Distribution::parse("my-tool-0.1.tar.gz").expect("sdist");
        assert_eq!(
            (sdist.name.as_str(), sdist.version.as_str(), sdist.filetype),
            ("my-tool", "0.1", "sdist")
        );
        assert_eq!(sdist.pyversion, "source");
        for bad in [
            "a.whl",
            "a-1-py3-none.whl",
            "tool.tar.gz",
            "-1.tar.gz",
            "a-1.rpm",
        ] {
            assert!(
                Distribution::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn metadata_becomes_twine_fields() {
        let text = "Metadata-Version: 2.1\nName: dep-a\nVersion: 1.0\nSummary: A thing\n\
                    Classifier: A\nClassifier: B\nProject-URL: Home, http://x\n\
                    License: line one\n  line two\n\nLong text\nmore\n";
        let fields = metadata_fields(text);
        let get = |key: &str| -> Vec<&str> {
            fields
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("metadata_version"), ["2.1"]);
        assert_eq!(get("summary"), ["A thing"]);
        assert_eq!(get("classifiers"), ["A", "B"]);
        assert_eq!(get("project_urls"), ["Home, http://x"]);
        assert_eq!(get("license"), ["line one\nline two"]);
        assert_eq!(get("description"), ["Long text\nmore"]);
        assert!(get("name").is_empty() && get("version").is_empty());
    }

    #[test]
    fn names_normalise_like_pep_503() {
        assert_eq!(normalize("Dep_A"), "dep-a");
        assert_eq!(normalize("a.-_b"), "a-b");
    }
}
