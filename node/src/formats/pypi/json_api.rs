//! PyPI's JSON API: `/pypi/<project>/json` (the latest release's `info`, every release's files, the
//! latest release's `urls`) and `/pypi/<project>/<version>/json` (one release).

use serde_json::{Map, Value, json};

use super::index::iso_time;
use super::model::{Distribution, LIST_FIELDS, Project, Release, TEXT_FIELDS};

/// `info` of a release. `project_url` is the project's JSON API page without `json`.
fn info(project: &Project, release: &Release, project_url: &str) -> Value {
    let mut info = Map::new();
    for field in TEXT_FIELDS {
        info.insert(field.to_string(), json!(release.text(field)));
    }
    for field in LIST_FIELDS {
        let values = release.list(field);
        info.insert(
            field.to_string(),
            if values.is_empty() {
                Value::Null
            } else {
                json!(values)
            },
        );
    }
    info.insert("name".into(), json!(project.display_name()));
    info.insert("version".into(), json!(release.version));
    info.insert("description".into(), json!(""));
    info.insert("yanked".into(), json!(release.yanked.is_some()));
    info.insert("yanked_reason".into(), json!(release.yanked));
    info.insert("package_url".into(), json!(project_url));
    info.insert("project_url".into(), json!(project_url));
    info.insert(
        "release_url".into(),
        json!(format!("{project_url}{}/", release.version)),
    );
    Value::Object(info)
}

fn file(file: &Distribution) -> Value {
    let details = file.details.as_ref();
    let upload_time = iso_time(file.uploaded_at);
    json!({
        "filename": file.filename,
        "url": file.url,
        "size": file.size,
        "digests": {
            "sha256": file.sha256.to_hex(),
            "blake2b_256": details.map(|d| d.blake2_256.as_str()).filter(|d| !d.is_empty()),
            "md5": null,
        },
        "md5_digest": null,
        "packagetype": details.map(|d| d.packagetype.as_str()),
        "python_version": details.map(|d| d.python_version.as_str()),
        "requires_python": file.requires_python,
        "has_sig": false,
        "comment_text": null,
        "downloads": -1,
        "upload_time": upload_time.get(..19),
        "upload_time_iso_8601": upload_time,
        "yanked": file.yanked.is_some(),
        "yanked_reason": file.yanked,
    })
}

fn files(release: &Release) -> Value {
    Value::Array(release.files.iter().map(file).collect())
}

/// `/pypi/<project>/json`; `None` when the project has no release.
pub fn project(project: &Project, project_url: &str) -> Option<Value> {
    let latest = project.latest()?;
    let releases: Map<String, Value> = project
        .releases
        .iter()
        .map(|release| (release.version.clone(), files(release)))
        .collect();
    Some(json!({
        "info": info(project, latest, project_url),
        "last_serial": 0,
        "releases": releases,
        "urls": files(latest),
        "vulnerabilities": [],
    }))
}

/// `/pypi/<project>/<version>/json`.
pub fn release(project: &Project, release: &Release, project_url: &str) -> Value {
    json!({
        "info": info(project, release, project_url),
        "last_serial": 0,
        "urls": files(release),
        "vulnerabilities": [],
    })
}
