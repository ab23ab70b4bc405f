//! The simple repository API: PEP 503 HTML and PEP 691 JSON (API version 1.1, PEP 700), chosen by
//! content negotiation on `Accept` or the `format` query parameter. Project pages carry `#sha256=`
//! fragments, `data-requires-python`, `data-yanked` (PEP 592) and the core metadata attributes of PEP
//! 658/714.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::PypiError;
use super::model::{Distribution, Project};

/// The simple API version served.
const API_VERSION: &str = "1.1";
/// PEP 691 JSON.
const JSON_V1: &str = "application/vnd.pypi.simple.v1+json";
/// PEP 691 HTML.
const HTML_V1: &str = "application/vnd.pypi.simple.v1+html";
/// PEP 503 HTML.
const TEXT_HTML: &str = "text/html";

/// The form an answer takes, with the media type it is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// HTML, as `text/html` or the PEP 691 HTML type.
    Html(&'static str),
    /// PEP 691 JSON.
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Html(media_type) => media_type,
            Format::Json => JSON_V1,
        }
    }

    /// The format a media type (or range) asks for.
    fn of(media_type: &str) -> Option<Format> {
        match media_type.to_ascii_lowercase().as_str() {
            JSON_V1 | "application/vnd.pypi.simple.latest+json" => Some(Format::Json),
            HTML_V1 | "application/vnd.pypi.simple.latest+html" => Some(Format::Html(HTML_V1)),
            TEXT_HTML | "text/*" | "*/*" => Some(Format::Html(TEXT_HTML)),
            _ => None,
        }
    }
}

/// Chooses the format: `format` in the query wins, then the `Accept` alternative with the highest
/// quality (the first of equals); no `Accept` gives HTML, an `Accept` naming nothing served gives 406.
pub fn negotiate(headers: &HeaderMap, query: Option<&str>) -> Result<Format, PypiError> {
    if let Some(requested) = query.and_then(|q| super::query_param(q, "format")) {
        return Format::of(&requested).ok_or_else(|| not_acceptable(&requested));
    }
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if accept.is_empty() {
        return Ok(Format::Html(TEXT_HTML));
    }
    let mut best: Option<(f32, Format)> = None;
    for alternative in accept.iter().flat_map(|v| v.split(',')) {
        let mut parts = alternative.split(';');
        let media_type = parts.next().unwrap_or_default().trim();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if let Some(format) = Format::of(media_type)
            && quality > 0.0
            && best.is_none_or(|(q, _)| quality > q)
        {
            best = Some((quality, format));
        }
    }
    best.map(|(_, format)| format)
        .ok_or_else(|| not_acceptable(&accept.join(", ")))
}

fn not_acceptable(requested: &str) -> PypiError {
    PypiError::new(
        StatusCode::NOT_ACCEPTABLE,
        format!("none of {requested} is served; ask for {JSON_V1}, {HTML_V1} or {TEXT_HTML}"),
    )
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Unix milliseconds as ISO 8601 UTC with microseconds, as PEP 700 and the JSON API write them.
pub fn iso_time(ms: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn answer(format: Format, body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

fn html_page(title: &str, links: &str) -> String {
    let title = escape(title);
    format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" \
         content=\"{API_VERSION}\">\n    <title>{title}</title>\n  </head>\n  <body>\n    \
         <h1>{title}</h1>\n{links}  </body>\n</html>\n"
    )
}

/// The root page: every project of the registry. `base` is the simple index's path
/// (`/pypi/<registry>/simple`).
pub fn root(format: Format, base: &str, projects: &[String]) -> Response {
    let body = match format {
        Format::Json => json!({
            "meta": {"api-version": API_VERSION},
            "projects": projects.iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
        })
        .to_string(),
        Format::Html(_) => {
            let links: String = projects
                .iter()
                .map(|name| {
                    let name = escape(name);
                    format!("    <a href=\"{base}/{name}/\">{name}</a><br />\n")
                })
                .collect();
            html_page("Simple index", &links)
        }
    };
    answer(format, body)
}

/// One file of a project page, as an HTML anchor.
fn anchor(file: &Distribution) -> String {
    let mut attributes = format!(
        "href=\"{}#sha256={}\"",
        escape(&file.url),
        file.sha256.to_hex()
    );
    if let Some(requires_python) = &file.requires_python {
        attributes.push_str(&format!(
            " data-requires-python=\"{}\"",
            escape(requires_python)
        ));
    }
    if let Some(reason) = &file.yanked {
        attributes.push_str(&format!(" data-yanked=\"{}\"", escape(reason)));
    }
    if let Some(metadata) = &file.core_metadata {
        let value = format!("sha256={}", metadata.to_hex());
        attributes.push_str(&format!(
            " data-dist-info-metadata=\"{value}\" data-core-metadata=\"{value}\""
        ));
    }
    format!("    <a {attributes}>{}</a><br />\n", escape(&file.filename))
}

/// One file of a project page, as PEP 691 JSON.
fn file_json(file: &Distribution) -> Value {
    let core_metadata = match &file.core_metadata {
        Some(sha256) => json!({"sha256": sha256.to_hex()}),
        None => Value::Bool(false),
    };
    let yanked = match file.yanked.as_deref() {
        None => Value::Bool(false),
        Some("") => Value::Bool(true),
        Some(reason) => Value::String(reason.to_string()),
    };
    let mut entry = json!({
        "filename": file.filename,
        "url": file.url,
        "hashes": {"sha256": file.sha256.to_hex()},
        "size": file.size,
        "upload-time": iso_time(file.uploaded_at),
        "yanked": yanked,
        "core-metadata": core_metadata,
        "dist-info-metadata": core_metadata,
    });
    if let Some(requires_python) = &file.requires_python {
        entry["requires-python"] = Value::String(requires_python.clone());
    }
    entry
}

/// A project's page: its files and (JSON) versions.
pub fn project(format: Format, project: &Project) -> Response {
    let body = match format {
        Format::Json => json!({
            "meta": {"api-version": API_VERSION},
            "name": project.name,
            "versions": project.releases.iter().map(|r| r.version.as_str()).collect::<Vec<_>>(),
            "files": project.files().map(file_json).collect::<Vec<_>>(),
        })
        .to_string(),
        Format::Html(_) => html_page(
            &format!("Links for {}", project.name),
            &project.files().map(anchor).collect::<String>(),
        ),
    };
    answer(format, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_protocol::Sha256;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn content_negotiation() {
        let pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
        assert_eq!(negotiate(&accept(pip), None), Ok(Format::Json));
        assert_eq!(
            negotiate(&HeaderMap::new(), None),
            Ok(Format::Html(TEXT_HTML))
        );
        assert_eq!(
            negotiate(
                &accept("text/html;q=0.5, application/vnd.pypi.simple.v1+html"),
                None
            ),
            Ok(Format::Html(HTML_V1))
        );
        assert_eq!(
            negotiate(&accept("application/vnd.pypi.simple.latest+json"), None),
            Ok(Format::Json)
        );
        assert_eq!(negotiate(&accept("*/*"), None), Ok(Format::Html(TEXT_HTML)));
        assert_eq!(
            negotiate(
                &accept("text/html"),
                Some("format=application/vnd.pypi.simple.v1%2Bjson")
            ),
            Ok(Format::Json)
        );
        assert_eq!(
            negotiate(&accept("application/json"), None).map_err(|e| e.status),
            Err(StatusCode::NOT_ACCEPTABLE)
        );
        assert!(negotiate(&accept("text/html;q=0"), None).is_err());
    }

    #[test]
    fn anchors_carry_fragments_and_escaped_attributes() {
        let file = Distribution {
            filename: "a-1.0-py3-none-any.whl".into(),
            url: "/pypi/r/files/a/1.0/a-1.0-py3-none-any.whl".into(),
            sha256: Sha256([0xab; 32]),
            size: 3,
            uploaded_at: 0,
            requires_python: Some(">=3.8, <4".into()),
            yanked: Some("bad \"release\"".into()),
            core_metadata: Some(Sha256([0xcd; 32])),
            details: None,
        };
        let html = anchor(&file);
        assert!(html.contains(&format!("#sha256={}\"", "ab".repeat(32))));
        assert!(html.contains("data-requires-python=\"&gt;=3.8, &lt;4\""));
        assert!(html.contains("data-yanked=\"bad &quot;release&quot;\""));
        assert!(html.contains(&format!(
            "data-core-metadata=\"sha256={}\"",
            "cd".repeat(32)
        )));
        let json = file_json(&file);
        assert_eq!(json["yanked"], "bad \"release\"");
        assert_eq!(json["requires-python"], ">=3.8, <4");
        assert_eq!(json["core-metadata"]["sha256"], "cd".repeat(32));
        assert_eq!(iso_time(1_500), "1970-01-01T00:00:01.500000Z");
    }
}
