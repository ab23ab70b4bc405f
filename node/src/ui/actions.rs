//! What the UI's forms do: sign in and out, create and delete registries, set a registry's
//! metadata, run its cleanup, quarantine and release versions. Each goes through the same checks
//! as the API call it mirrors (mostly the same function), then sends the browser on with a 303; the
//! audit trail records it like the API call, with the detail given here.

use arca_protocol::api::CreateRegistryRequest;
use arca_protocol::{
    Command, MetadataTarget, PackageType, RegistryChanges, RegistryKind, Role, Upstream,
};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use maud::html;
use serde::Deserialize;

use super::{
    Checked, PageResult, SESSION_COOKIE, SESSION_SECONDS, SIGN_IN_COOKIE, UiError, Viewer, done,
    link, page, set_cookie,
};
use crate::AppState;
use crate::api::{ApiError, PathParams};
use crate::auth;

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

/// `POST /ui/-/signin`: a user name and password open a session of its own (a new session token);
/// a token (the user name may be empty) is the session.
pub async fn sign_in(
    State(state): State<AppState>,
    Checked { viewer, form }: Checked<SignIn>,
) -> PageResult {
    let with_token = form.user.trim().is_empty() || form.password.starts_with(auth::TOKEN_PREFIX);
    let checked = {
        let state = state.clone();
        let (user, password) = (form.user.clone(), form.password.clone());
        crate::blocking::spawn(move || {
            if with_token {
                auth::caller_for_secret(&state, &password)
            } else {
                auth::caller_for_password(&state, &user, &password)
            }
        })
        .await
        .map_err(ApiError::internal)?
    };
    let caller = match checked {
        Ok(caller) => caller,
        Err(error) => {
            let mut refused = UiError::from(error).into_response();
            refused
                .extensions_mut()
                .insert(crate::api::audit::AuditDetail(format!(
                    "web sign-in of {} refused",
                    if with_token {
                        "a token"
                    } else {
                        form.user.as_str()
                    }
                )));
            return Ok(refused);
        }
    };
    // A sign-in over a session (from a tab left open) ends that session.
    if let Some(token) = viewer
        .caller
        .principal()
        .and_then(|principal| principal.token.as_ref())
        .filter(|token| super::is_web_session(&token.name))
    {
        state
            .meta
            .propose(Command::RevokeToken {
                id: token.id.clone(),
            })
            .await?;
    }
    let (secret, who) = if with_token {
        let who = caller.principal().map(|p| p.name()).unwrap_or_default();
        (form.password, who)
    } else {
        let created = auth::issue::web_session_token(&state, &form.user).await?;
        (created.token, form.user)
    };
    let mut response = done("/ui/", Some(format!("{who} signed in to the web UI")));
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            Some(&secret),
            SESSION_SECONDS,
            viewer.secure,
        ),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, None, 0, viewer.secure),
    );
    Ok(response)
}

/// A form with no fields of its own.
#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// `POST /ui/-/signout`: ends the session; a session token the sign-in made is revoked.
pub async fn sign_out(
    State(state): State<AppState>,
    Checked { viewer, .. }: Checked<NoFields>,
) -> PageResult {
    let token = viewer
        .caller
        .principal()
        .and_then(|principal| principal.token.clone());
    let who = viewer.name().unwrap_or_default();
    if let Some(token) = token.filter(|token| super::is_web_session(&token.name)) {
        state
            .meta
            .propose(Command::RevokeToken { id: token.id })
            .await?;
    }
    let mut response = done("/ui/", Some(format!("{who} signed out of the web UI")));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, None, 0, viewer.secure),
    );
    Ok(response)
}

/// `GET /ui/-/registries`: the form that creates a registry (admins).
pub async fn new_registry_form(viewer: Viewer) -> PageResult {
    viewer.caller.require(Role::Admin)?;
    let content = html! {
        h1 { "New registry" }
        form.stacked method="post" action="/ui/-/registries" {
            (viewer.csrf_field())
            label for="name" { "Name" }
            input #name type="text" name="name" required pattern="[a-z0-9][a-z0-9._-]{0,63}" aria-describedby="name-hint";
            p.hint #name-hint { "Lower-case letters, digits, '.', '_' and '-'; it becomes part of every URL." }
            label for="package_type" { "Format" }
            select #package_type name="package_type" {
                @for package_type in PackageType::ALL { option value=(package_type) { (package_type) } }
            }
            fieldset {
                legend { "Kind" }
                @for (kind, hint) in [(RegistryKind::Local, "holds what is pushed to it"), (RegistryKind::Remote, "a caching proxy of an upstream registry"), (RegistryKind::Virtual, "one URL over other registries")] {
                    label.choice {
                        input type="radio" name="kind" value=(kind) checked[kind == RegistryKind::Local];
                        " " (kind) " — " (hint)
                    }
                }
            }
            label for="description" { "Description" }
            input #description type="text" name="description";
            label for="upstream" { "Upstream URL (remote)" }
            input #upstream type="url" name="upstream" placeholder="https://registry.npmjs.org";
            label for="upstream_username" { "Upstream user (remote, optional)" }
            input #upstream_username type="text" name="upstream_username" autocomplete="off";
            label for="upstream_password" { "Upstream password or token (remote, optional)" }
            input #upstream_password type="password" name="upstream_password" autocomplete="new-password";
            label for="members" { "Members, in order (virtual; comma-separated)" }
            input #members type="text" name="members";
            label for="publish_to" { "Publish to (virtual, optional)" }
            input #publish_to type="text" name="publish_to";
            label.choice { input type="checkbox" name="immutable" value="on"; " Immutable: a version, once pushed, never changes" }
            label.choice { input type="checkbox" name="allow_anonymous_read" value="on"; " Anonymous reads" }
            label.choice { input type="checkbox" name="allow_redeploy" value="on"; " Allow redeploying a version" }
            button type="submit" { "Create registry" }
        }
    };
    Ok(page(&viewer, "New registry", &[], content))
}

/// The fields of the new-registry form (checkboxes send `on` when ticked).
#[derive(Debug, Deserialize)]
pub struct NewRegistry {
    name: String,
    package_type: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    upstream: String,
    #[serde(default)]
    upstream_username: String,
    #[serde(default)]
    upstream_password: String,
    #[serde(default)]
    members: String,
    #[serde(default)]
    publish_to: String,
    #[serde(default)]
    immutable: Option<String>,
    #[serde(default)]
    allow_anonymous_read: Option<String>,
    #[serde(default)]
    allow_redeploy: Option<String>,
}

/// A text field, `None` when left empty.
fn given(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|text| !text.is_empty())
}

/// `POST /ui/-/registries`: creates the registry as `POST /api/v1/registries` does.
pub async fn create_registry(
    State(state): State<AppState>,
    Checked { viewer, form }: Checked<NewRegistry>,
) -> PageResult {
    let package_type: PackageType =
        form.package_type
            .parse()
            .map_err(|error: arca_protocol::model::UnknownPackageType| {
                ApiError::invalid(error.to_string())
            })?;
    let kind = match form.kind.as_str() {
        "" | "local" => RegistryKind::Local,
        "remote" => RegistryKind::Remote,
        "virtual" => RegistryKind::Virtual,
        other => return Err(ApiError::invalid(format!("unknown registry kind {other:?}")).into()),
    };
    let upstream = given(&form.upstream).map(|url| Upstream {
        url,
        username: given(&form.upstream_username),
        password: given(&form.upstream_password),
        metadata_ttl_seconds: 300,
    });
    let request = CreateRegistryRequest {
        name: form.name.trim().to_string(),
        package_type,
        description: form.description.trim().to_string(),
        immutable: form.immutable.is_some(),
        allow_anonymous_read: form.allow_anonymous_read.is_some(),
        allow_redeploy: form.allow_redeploy.is_some(),
        replication: Default::default(),
        kind,
        upstream,
        members: form.members.split(',').filter_map(given).collect(),
        publish_to: given(&form.publish_to),
        audit_downloads: false,
        upstream_ca_pem: None,
        min_copies: None,
    };
    let created = crate::api::registries::create_registry(&state, &viewer.caller, request).await?;
    Ok(done(
        &link(&[&created.name]),
        Some(format!(
            "created {} registry {} ({})",
            created.package_type, created.name, created.kind
        )),
    ))
}

/// The settings form of a registry page (checkboxes send `on` when ticked; the upstream and
/// member fields are there only for remote and virtual registries).
#[derive(Debug, Deserialize)]
pub struct RegistrySettingsForm {
    #[serde(default)]
    description: String,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default)]
    upstream_username: String,
    #[serde(default)]
    upstream_password: String,
    #[serde(default)]
    members: Option<String>,
    #[serde(default)]
    publish_to: Option<String>,
    #[serde(default)]
    immutable: Option<String>,
    #[serde(default)]
    allow_anonymous_read: Option<String>,
    #[serde(default)]
    allow_redeploy: Option<String>,
    #[serde(default)]
    audit_downloads: Option<String>,
}

/// `POST /ui/-/r/{registry}/settings`: changes the registry as `PATCH /api/v1/registries/{name}`
/// does.
pub async fn update_registry(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    Checked { viewer, form }: Checked<RegistrySettingsForm>,
) -> PageResult {
    let stored_ttl = state
        .registry_for(&viewer.caller, &name, Role::Read)?
        .upstream
        .map(|upstream| upstream.metadata_ttl_seconds);
    let changes = RegistryChanges {
        description: Some(form.description.trim().to_string()),
        immutable: Some(form.immutable.is_some()),
        allow_anonymous_read: Some(form.allow_anonymous_read.is_some()),
        allow_redeploy: Some(form.allow_redeploy.is_some()),
        audit_downloads: Some(form.audit_downloads.is_some()),
        upstream: form
            .upstream
            .as_deref()
            .and_then(given)
            .map(|url| Upstream {
                url,
                username: given(&form.upstream_username),
                password: given(&form.upstream_password),
                metadata_ttl_seconds: stored_ttl.unwrap_or(300),
            }),
        members: form
            .members
            .as_deref()
            .map(|members| members.split(',').filter_map(given).collect()),
        publish_to: form.publish_to.map(|target| target.trim().to_string()),
    };
    crate::api::registries::update_registry(&state, &viewer.caller, &name, changes).await?;
    Ok(done(
        &link(&[&name]),
        Some(format!("changed the settings of registry {name}")),
    ))
}

/// The delete form: the registry's name typed again.
#[derive(Debug, Deserialize)]
pub struct Confirm {
    #[serde(default)]
    confirm: String,
}

/// `POST /ui/-/r/{registry}/delete`: deletes the registry (admin) once its name was typed.
pub async fn delete_registry(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    Checked { viewer, form }: Checked<Confirm>,
) -> PageResult {
    state.registry_for(&viewer.caller, &name, Role::Admin)?;
    if form.confirm.trim() != name {
        return Err(
            ApiError::invalid(format!("type the registry's name, {name}, to delete it")).into(),
        );
    }
    state
        .meta
        .propose(Command::DeleteRegistry { name: name.clone() })
        .await?;
    Ok(done("/ui/", Some(format!("deleted registry {name}"))))
}

/// A metadata key and its new value (empty: remove the key).
#[derive(Debug, Deserialize)]
pub struct MetadataEntry {
    key: String,
    #[serde(default)]
    value: String,
}

/// `POST /ui/-/r/{registry}/metadata`: sets or removes one key of the registry's metadata (write).
pub async fn set_metadata(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    Checked { viewer, form }: Checked<MetadataEntry>,
) -> PageResult {
    state.registry_for(&viewer.caller, &name, Role::Write)?;
    let key = form.key.trim().to_string();
    arca_protocol::names::validate_metadata_key(&key)?;
    let target = MetadataTarget::Registry {
        registry: name.clone(),
    };
    let (command, detail) = if form.value.is_empty() {
        (
            Command::DeleteMetadata {
                target,
                keys: vec![key.clone()],
            },
            format!("removed metadata {key}"),
        )
    } else {
        arca_protocol::names::validate_metadata_value(&form.value)?;
        (
            Command::SetMetadata {
                target,
                entries: [(key.clone(), form.value.clone())].into(),
            },
            format!("set metadata {key}={}", form.value),
        )
    };
    state.meta.propose(command).await?;
    Ok(done(&link(&[&name]), Some(detail)))
}

/// A policy, as JSON.
#[derive(Debug, Deserialize)]
pub struct PolicyForm {
    policy: String,
}

/// `policy`, read as the JSON the API takes for `what`.
fn parse_policy<T: serde::de::DeserializeOwned>(policy: &str, what: &str) -> Result<T, UiError> {
    serde_json::from_str(policy)
        .map_err(|error| ApiError::invalid(format!("the {what} is not one: {error}")).into())
}

/// `POST /ui/-/r/{registry}/cleanup-policy`: replaces the cleanup policy (admin), as the API does.
pub async fn set_cleanup_policy(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    Checked { viewer, form }: Checked<PolicyForm>,
) -> PageResult {
    let policy = parse_policy(&form.policy, "cleanup policy")?;
    crate::api::cleanup::replace_policy(&state, &viewer.caller, &name, policy).await?;
    Ok(done(
        &link(&[&name]),
        Some(format!("replaced the cleanup policy of {name}")),
    ))
}

/// `POST /ui/-/r/{registry}/firewall-policy`: replaces the firewall policy (admin), as the API
/// does; the registry's versions are evaluated again.
pub async fn set_firewall_policy(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    Checked { viewer, form }: Checked<PolicyForm>,
) -> PageResult {
    let policy = parse_policy(&form.policy, "firewall policy")?;
    crate::api::firewall::replace_policy(&state, &viewer.caller, &name, policy).await?;
    Ok(done(
        &link(&[&name]),
        Some(format!("replaced the firewall policy of {name}")),
    ))
}

/// The version a quarantine or release names, and why.
#[derive(Debug, Deserialize)]
pub struct VersionAction {
    package: String,
    version: String,
    #[serde(default)]
    reason: String,
}

/// `POST /ui/-/r/{registry}/quarantine`.
pub async fn quarantine(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    form: Checked<VersionAction>,
) -> PageResult {
    quarantine_or_release(state, name, form, false).await
}

/// `POST /ui/-/r/{registry}/release`.
pub async fn release(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    form: Checked<VersionAction>,
) -> PageResult {
    quarantine_or_release(state, name, form, true).await
}

async fn quarantine_or_release(
    state: AppState,
    registry: String,
    Checked { viewer, form }: Checked<VersionAction>,
    release: bool,
) -> PageResult {
    let detail = crate::api::firewall::quarantine_or_release(
        &state,
        &viewer.caller,
        (&registry, &form.package, &form.version),
        &form.reason,
        release,
    )
    .await?;
    Ok(done(
        &link(&[&registry, &form.package, &form.version]),
        Some(detail),
    ))
}

/// Whether a run only reports.
#[derive(Debug, Deserialize)]
pub struct DryRun {
    #[serde(default)]
    dry_run: String,
}

/// `POST /ui/-/r/{registry}/cleanup`: runs the cleanup policy (a dry run unless `dry_run` is
/// `false`) and shows its report, with the button for the real run after a dry run.
pub async fn cleanup(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    Checked { viewer, form }: Checked<DryRun>,
) -> PageResult {
    let dry_run = form.dry_run != "false";
    let report =
        crate::api::cleanup::run_policy(state, &viewer.caller, name.clone(), dry_run).await?;
    let content = html! {
        h1 { "Cleanup of " (name) @if dry_run { " (dry run)" } }
        p { (report.planned.len()) " versions selected, " (report.deleted.len()) " deleted, " (report.refused.len()) " refused." }
        @if !report.planned.is_empty() {
            div.scroll { table {
                thead { tr { th { "Package" } th { "Version" } th { "Why" } } }
                tbody { @for planned in &report.planned {
                    tr { td { (planned.package) } td { (planned.version) } td { (planned.reason) } }
                } }
            } }
        }
        @for refused in &report.refused { p.error { (refused.planned.package) " " (refused.planned.version) ": " (refused.refused) } }
        @if dry_run && !report.planned.is_empty() {
            form method="post" action={ "/ui/-/r/" (name) "/cleanup" } {
                (viewer.csrf_field())
                input type="hidden" name="dry_run" value="false";
                button.danger type="submit" { "Delete these " (report.planned.len()) " versions" }
            }
        }
        p { a href=(link(&[&name])) { "Back to " (name) } }
    };
    let mut response = page(
        &viewer,
        "Cleanup",
        &[(name.as_str(), link(&[&name]))],
        content,
    );
    response
        .extensions_mut()
        .insert(crate::api::audit::AuditDetail(format!(
            "cleanup of {name}{}: {} selected, {} deleted",
            if dry_run { " (dry run)" } else { "" },
            report.planned.len(),
            report.deleted.len()
        )));
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}
