//! The upload API twine speaks (warehouse's "legacy" API): a multipart `POST` with
//! `:action=file_upload`, the core metadata as form fields and the distribution as the `content` file.
//!
//! The file streams into the chunk store (sha256 from the blob writer, blake2b-256 on the same pass)
//! and is refused, with nothing committed, when a digest the client sent does not match, when its
//! name does not fit the project and version, or when the file already exists (400 "File already
//! exists", which twine's `--skip-existing` recognises). A wheel's `METADATA` is stored beside it as
//! `<wheel>.metadata` (PEP 658).

use std::collections::BTreeMap;
use std::str::FromStr;

use arca_protocol::{BlobRef, Command, CommandError, Overwrite, Role};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use blake2::Digest;
use blake2::digest::consts::U32;

use super::model::{
    FileDetails, LIST_FIELDS, METADATA_SUFFIX, TEXT_FIELDS, field_attribute, file_attribute,
};
use super::names::{
    DistributionKind, is_valid_project, normalize_project, normalize_version, parse_distribution,
};
use super::wheel::read_metadata;
use super::{PypiError, open_registry, publish_target};
use crate::AppState;
use crate::blob::BlobWriter;
use crate::frontend::BlobCursor;
use crate::frontend::archive::{ArchiveHead, ArchiveKind};
use crate::frontend::{declared_length, discard_body};
use crate::meta::ProposeError;
use crate::meta::StateRead;

/// The most bytes all text fields of one upload may hold together.
const MAX_FORM_TEXT_BYTES: u64 = 16 * 1024 * 1024;
/// The form field carrying the distribution.
const CONTENT: &str = "content";

type Blake2b256 = blake2::Blake2b<U32>;

/// The text fields of the form, in order of arrival.
#[derive(Debug, Default)]
struct Form {
    fields: BTreeMap<String, Vec<String>>,
}

impl Form {
    /// The first non-empty value of `key`, trimmed.
    fn one(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)?
            .iter()
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
    }

    /// Every non-empty value of `key`.
    fn all(&self, key: &str) -> Vec<String> {
        self.fields
            .get(key)
            .map(|values| {
                values
                    .iter()
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The received distribution.
struct Content {
    filename: String,
    blob: BlobRef,
    blake2_256: String,
    /// The file's first bytes, to check that a source distribution is the archive it says.
    head: ArchiveHead,
}

fn multipart_error(error: multer::Error) -> PypiError {
    match error {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            PypiError::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
        }
        other => PypiError::bad_request(format!("malformed upload form: {other}")),
    }
}

/// True for the characters warehouse allows in distribution file names.
pub(super) fn is_valid_filename(filename: &str) -> bool {
    !filename.is_empty()
        && filename.len() <= 255
        && !filename.starts_with('.')
        && filename
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '!'))
}

/// Reads the form, streaming the distribution into the chunk store.
async fn read_form(
    state: &AppState,
    body: Body,
    boundary: String,
) -> Result<(Form, Option<Content>), PypiError> {
    let limit = state.config.max_upload_bytes;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limit.saturating_add(MAX_FORM_TEXT_BYTES))
            .per_field(MAX_FORM_TEXT_BYTES)
            .for_field(CONTENT, limit),
    );
    let mut multipart =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut form = Form::default();
    let mut content = None;
    let mut text_bytes = 0u64;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        if name != CONTENT {
            let text = field.text().await.map_err(multipart_error)?;
            text_bytes += text.len() as u64;
            if text_bytes > MAX_FORM_TEXT_BYTES {
                return Err(PypiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the form's fields exceed {MAX_FORM_TEXT_BYTES} bytes"),
                ));
            }
            form.fields.entry(name).or_default().push(text);
            continue;
        }
        if content.is_some() {
            return Err(PypiError::bad_request(
                "only one file may be uploaded at a time",
            ));
        }
        let filename = field
            .file_name()
            .map(str::to_string)
            .ok_or_else(|| PypiError::bad_request("the content field has no file name"))?;
        if !is_valid_filename(&filename) {
            return Err(PypiError::bad_request(format!(
                "invalid distribution file name {filename:?}"
            )));
        }
        let mut writer = BlobWriter::new(state.chunks.clone());
        let mut blake2 = Blake2b256::new();
        let mut head = ArchiveHead::default();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            blake2.update(&chunk);
            head.observe(&chunk);
            writer.write(&chunk).await?;
        }
        state.metrics.upload_bytes.inc_by(writer.size());
        content = Some(Content {
            filename,
            blob: writer.finish().await?,
            blake2_256: hex::encode(blake2.finalize()),
            head,
        });
    }
    Ok((form, content))
}

/// A digest field the client sent, checked against what was received.
fn check_digest(form: &Form, field: &str, actual: &str) -> Result<bool, PypiError> {
    match form.one(field) {
        None => Ok(false),
        Some(expected) if expected.eq_ignore_ascii_case(actual) => Ok(true),
        Some(_) => Err(PypiError::bad_request(
            "The digest supplied does not match a digest calculated from the uploaded file.",
        )),
    }
}

/// What the form and file say, checked: (project, version, kind).
fn check_upload(
    form: &Form,
    content: &Content,
) -> Result<(String, String, DistributionKind), PypiError> {
    let name = form
        .one("name")
        .filter(|n| is_valid_project(n))
        .ok_or_else(|| PypiError::bad_request("'' is an invalid value for Name."))?;
    let project = normalize_project(name);
    let raw_version = form.one("version").unwrap_or_default();
    let version = normalize_version(raw_version).ok_or_else(|| {
        PypiError::bad_request(format!("{raw_version:?} is an invalid value for Version."))
    })?;
    let filetype = form.one("filetype").unwrap_or_default();
    let kind = DistributionKind::from_filetype(filetype).ok_or_else(|| {
        PypiError::bad_request(format!("Invalid value for filetype: {filetype:?}."))
    })?;
    let filename = &content.filename;
    let parsed = parse_distribution(filename)
        .filter(|parsed| parsed.kind == kind)
        .ok_or_else(|| {
            PypiError::bad_request(format!(
                "Invalid distribution file {filename:?} for filetype {filetype}."
            ))
        })?;
    if normalize_project(&parsed.project) != project {
        return Err(PypiError::bad_request(format!(
            "Start filename for {project:?} with {:?}.",
            project.replace('-', "_")
        )));
    }
    if normalize_version(&parsed.version).as_deref() != Some(version.as_str()) {
        return Err(PypiError::bad_request(format!(
            "Version in filename should be {version:?} not {:?}.",
            parsed.version
        )));
    }
    let sha256_checked = check_digest(form, "sha256_digest", &content.blob.sha256.to_hex())?;
    let blake2_checked = check_digest(form, "blake2_256_digest", &content.blake2_256)?;
    if !(sha256_checked || blake2_checked) {
        return Err(PypiError::bad_request(
            "Include at least one message digest (sha256_digest or blake2_256_digest).",
        ));
    }
    Ok((project, version, kind))
}

/// The version attributes an upload sets.
fn attributes(form: &Form, content: &Content, kind: DistributionKind) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    for field in TEXT_FIELDS {
        if let Some(value) = form.one(field) {
            attributes.insert(field_attribute(field), value.to_string());
        }
    }
    for field in LIST_FIELDS {
        let values = form.all(field);
        if !values.is_empty() {
            attributes.insert(
                field_attribute(field),
                serde_json::Value::from(values).to_string(),
            );
        }
    }
    let python_version = form
        .one("pyversion")
        .map(str::to_string)
        .or_else(|| parse_distribution(&content.filename).map(|d| d.python_tag))
        .unwrap_or_default();
    let details = FileDetails {
        packagetype: kind.packagetype().to_string(),
        python_version,
        requires_python: form.one("requires_python").map(str::to_string),
        blake2_256: content.blake2_256.clone(),
    };
    if let Ok(json) = serde_json::to_string(&details) {
        attributes.insert(file_attribute(&content.filename), json);
    }
    attributes
}

/// Reads a stored wheel's `METADATA` and stores it as a blob.
async fn store_wheel_metadata(state: &AppState, wheel: &BlobRef) -> Result<BlobRef, PypiError> {
    let cursor = BlobCursor::new(state.chunks.clone(), wheel.clone());
    let metadata = crate::blocking::spawn(move || read_metadata(cursor))
        .await
        .map_err(PypiError::internal)?
        .map_err(|e| PypiError::bad_request(format!("Invalid wheel: {e}")))?;
    let mut writer = BlobWriter::new(state.chunks.clone());
    writer.write(&metadata).await?;
    Ok(writer.finish().await?)
}

/// `POST /pypi/<registry>/`: one distribution, stored in the registry's publish target (itself, or a
/// virtual registry's designated local member; a remote registry refuses it).
pub async fn upload(
    state: &AppState,
    registry: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, PypiError> {
    let checked = open_registry(state, headers, registry, Role::Write).and_then(|found| {
        let target = publish_target(state, &found)?;
        declared_length(state, headers).map_err(PypiError::from)?;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let boundary = multer::parse_boundary(content_type)
            .map_err(|_| PypiError::bad_request("the upload must be multipart/form-data"))?;
        Ok((target.name, boundary))
    });
    let (registry, boundary) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            if error.status != StatusCode::PAYLOAD_TOO_LARGE {
                discard_body(headers, body).await;
            }
            return Err(error);
        }
    };
    let (form, content) = read_form(state, body, boundary).await?;
    match form.one(":action") {
        Some("file_upload") => {}
        Some("submit") => {
            return Err(PypiError::new(
                StatusCode::GONE,
                "Project pre-registration is no longer required or supported, upload your files \
                 instead.",
            ));
        }
        other => {
            return Err(PypiError::bad_request(format!(
                "Invalid value for :action: {:?}.",
                other.unwrap_or_default()
            )));
        }
    }
    if form.one("protocol_version").is_some_and(|v| v != "1") {
        return Err(PypiError::bad_request("Unknown protocol version."));
    }
    let content =
        content.ok_or_else(|| PypiError::bad_request("Upload payload does not have a file."))?;
    let (project, version, kind) = check_upload(&form, &content)?;
    let (version, taken) = same_release(state, &registry, &project, &version, &content.filename)?;
    if let Some(existing) = taken {
        return Err(PypiError::bad_request(format!(
            "File already exists ({existing:?} is {:?} in other letter case).",
            content.filename
        )));
    }
    let metadata = match kind {
        DistributionKind::Wheel => Some(store_wheel_metadata(state, &content.blob).await?),
        DistributionKind::Sdist => {
            let archive = if content.filename.ends_with(".zip") {
                ArchiveKind::Zip
            } else {
                ArchiveKind::TarGz
            };
            content.head.check(archive).map_err(|e| {
                PypiError::bad_request(format!(
                    "Invalid distribution file {:?}: {e}.",
                    content.filename
                ))
            })?;
            None
        }
    };
    let at = state.now_ms();
    let registry = registry.as_str();
    let put = |filename: String, blob: BlobRef, attributes, overwrite| Command::PutFile {
        registry: registry.to_string(),
        package: project.clone(),
        version: version.clone(),
        filename,
        blob,
        attributes,
        tags: Vec::new(),
        overwrite,
        at,
    };
    let filename = content.filename.clone();
    // A wheel and its `.metadata` (PEP 658) commit together or not at all.
    let mut commands = vec![put(
        filename.clone(),
        content.blob.clone(),
        attributes(&form, &content, kind),
        Overwrite::RefuseFile,
    )];
    if let Some(metadata) = metadata {
        commands.push(put(
            format!("{filename}{METADATA_SUFFIX}"),
            metadata,
            BTreeMap::new(),
            Overwrite::Allow,
        ));
    }
    state
        .meta
        .propose(Command::Batch { commands })
        .await
        .map_err(|error| match error {
            ProposeError::Refused(CommandError::AlreadyExists(_) | CommandError::Conflict(_)) => {
                PypiError::bad_request(format!(
                    "File already exists ({filename:?}, with blake2_256 hash {:?}).",
                    content.blake2_256
                ))
            }
            other => other.into(),
        })?;
    tracing::info!(registry, project, version, filename, "pypi upload");
    Ok((StatusCode::OK, "OK\n").into_response())
}

/// The normal forms of the PEP 440 versions equal to `version`, itself first: its release with
/// trailing zeros added or dropped (`1`, `1.0`, `1.0.0`, `1.0.0.0` for any of them).
fn spellings_of(version: &str) -> Vec<String> {
    let Ok(parsed) = pep440_rs::Version::from_str(version) else {
        return vec![version.to_string()];
    };
    let release = parsed.release().to_vec();
    let significant = release
        .iter()
        .rposition(|part| *part != 0)
        .map_or(1, |last| last + 1);
    let mut spellings = vec![version.to_string()];
    for length in significant..=release.len().max(significant) + 2 {
        let mut padded = release[..significant.min(release.len())].to_vec();
        padded.resize(length, 0);
        let spelling = parsed.clone().with_release(padded).to_string();
        if !spellings.contains(&spelling) {
            spellings.push(spelling);
        }
    }
    spellings
}

/// The release an upload of `version` goes to: an existing one that PEP 440 counts as the same
/// version (`1.0` and `1.0.0`), else `version`; and the existing file of that release whose name
/// differs from `filename` only in letter case, if any (`Foo_Bar-1.0-…whl` beside
/// `foo_bar-1.0-…whl`: one file to pip).
fn same_release(
    state: &AppState,
    registry: &str,
    project: &str,
    version: &str,
    filename: &str,
) -> Result<(String, Option<String>), PypiError> {
    Ok(state.meta.read(|view| {
        // Stored versions are in their normal form, so the same version stored under another
        // spelling differs only in trailing zeros of its release: a few lookups, however many
        // releases the project has.
        let mut release = version.to_string();
        for spelling in spellings_of(version) {
            if view.has_version(registry, project, &spelling)? {
                release = spelling;
                break;
            }
        }
        let lookalike = view
            .version(registry, project, &release)?
            .and_then(|stored| {
                stored.files.into_keys().find(|existing| {
                    existing != filename && existing.eq_ignore_ascii_case(filename)
                })
            });
        Ok((release, lookalike))
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spellings_of_a_version_differ_in_trailing_zeros_only() {
        assert_eq!(spellings_of("1.0"), ["1.0", "1", "1.0.0", "1.0.0.0"]);
        assert_eq!(spellings_of("2.1rc1"), ["2.1rc1", "2.1.0rc1", "2.1.0.0rc1"]);
        assert_eq!(spellings_of("not a version"), ["not a version"]);
    }

    #[test]
    fn file_names_are_restricted() {
        assert!(is_valid_filename("dep_a-1.0+local-py3-none-any.whl"));
        assert!(!is_valid_filename("../x.whl"));
        assert!(!is_valid_filename("a b.tar.gz"));
        assert!(!is_valid_filename(".hidden.tar.gz"));
    }

    #[test]
    fn forms_give_first_non_empty_values() {
        let mut form = Form::default();
        form.fields
            .insert("summary".into(), vec![" ".into(), " hi ".into()]);
        form.fields.insert(
            "requires_dist".into(),
            vec!["a".into(), "".into(), "b>=1".into()],
        );
        assert_eq!(form.one("summary"), Some("hi"));
        assert_eq!(form.all("requires_dist"), ["a", "b>=1"]);
        assert_eq!(form.one("missing"), None);
    }
}
