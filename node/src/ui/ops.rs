//! Operations pages: the cluster (nodes, sites, roles, leader, lag) with garbage collection (a dry
//! run first), the audit log with its filters (admins), and access: users and their grants (admins),
//! tokens with their scopes and expiry, created and revoked here.

use arca_protocol::api::{AuditQuery, CreateTokenRequest, GcRequest};
use arca_protocol::identity::{CreateUserRequest, UserKind};
use arca_protocol::model::AuditEvent;
use arca_protocol::{Command, Grant, Role};
use axum::extract::State;
use maud::{Markup, html};
use serde::Deserialize;

use super::{Checked, PageResult, Viewer, copyable, done, page, time_element};
use crate::AppState;
use crate::api::{ApiError, QueryParams};
use crate::meta::StateRead;

/// `GET /ui/-/cluster`: the members as the leader sees them, and garbage collection (admins).
pub async fn cluster(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    viewer.caller.require(Role::Admin)?;
    let status = state.meta.cluster_status().await;
    let content = html! {
        h1 { "Cluster" }
        dl.facts {
            dt { "Leader" } dd { @match status.leader { Some(leader) => { "node " (leader) } None => { "none: writes wait for a quorum" } } }
            dt { "Term" } dd { (status.term) }
            dt { "Committed" } dd { (status.commit_index) }
            dt { "Answered by" } dd { "node " (status.answered_by) }
        }
        div.scroll { table {
            thead { tr { th { "Node" } th { "Site" } th { "Membership" } th { "Role" } th { "HTTP" } th.num { "Lag" } } }
            tbody { @for node in &status.nodes {
                tr {
                    td { (node.id) @if status.leader == Some(node.id) { " (leader)" } }
                    td { (node.site) }
                    td { (node.membership) }
                    td { (format!("{:?}", node.role).to_lowercase()) }
                    td { code { (node.http) } }
                    td.num { @match node.lag { Some(lag) => { (lag) } None => { "—" } } }
                }
            } }
        } }
        section aria-labelledby="gc-title" {
            h2 #gc-title { "Garbage collection" }
            p { "Removes chunks no blob references any more, once older than the grace period. Start with a dry run." }
            (gc_form(&viewer, true))
        }
    };
    Ok(page(&viewer, "Cluster", &[], content))
}

fn gc_form(viewer: &Viewer, dry_run: bool) -> Markup {
    html! {
        form.inline method="post" action="/ui/-/gc" {
            (viewer.csrf_field())
            input type="hidden" name="dry_run" value=(dry_run);
            @if dry_run { button type="submit" { "Garbage collection: dry run" } }
            @else { button.danger type="submit" { "Collect garbage now" } }
        }
    }
}

/// Whether a run only reports.
#[derive(Debug, Deserialize)]
pub struct GcForm {
    #[serde(default)]
    dry_run: String,
}

/// `POST /ui/-/gc`: one collection (a dry run unless `dry_run` is `false`), and its report.
pub async fn garbage_collection(
    State(state): State<AppState>,
    Checked { viewer, form }: Checked<GcForm>,
) -> PageResult {
    let dry_run = form.dry_run != "false";
    let request = GcRequest {
        dry_run,
        ..GcRequest::default()
    };
    let report = crate::api::gc::collect(state, &viewer.caller, request).await?;
    let content = html! {
        h1 { "Garbage collection" @if dry_run { " (dry run)" } }
        dl.facts {
            dt { "Chunks listed" } dd { (report.scanned) }
            dt { "Referenced" } dd { (report.referenced) }
            dt { @if dry_run { "Would remove" } @else { "Removed" } } dd { (report.removed) " (" (super::size(report.removed_bytes)) ")" }
            dt { "Kept in the grace period" } dd { (report.kept_in_grace) }
        }
        @if dry_run && report.removed > 0 { (gc_form(&viewer, false)) }
        p { a href="/ui/-/cluster" { "Back to the cluster" } }
    };
    let mut response = page(&viewer, "Garbage collection", &[], content);
    response
        .extensions_mut()
        .insert(crate::api::audit::AuditDetail(format!(
            "garbage collection{}: {} chunks ({} bytes) {}",
            if dry_run { " (dry run)" } else { "" },
            report.removed,
            report.removed_bytes,
            if dry_run { "to remove" } else { "removed" }
        )));
    Ok(response)
}

/// `GET /ui/-/audit?registry=&actor=&action=&since=`: the audit log, newest first (admins).
pub async fn audit(
    State(state): State<AppState>,
    viewer: Viewer,
    QueryParams(mut query): QueryParams<AuditQuery>,
) -> PageResult {
    for field in [
        &mut query.registry,
        &mut query.actor,
        &mut query.action,
        &mut query.since,
        &mut query.until,
    ] {
        if field
            .as_deref()
            .is_some_and(|value| value.trim().is_empty())
        {
            *field = None;
        }
    }
    query.limit = Some(query.limit.unwrap_or(100));
    let events = crate::api::audit::find_events(&state, &viewer.caller, &query)?;
    let value = |field: &Option<String>| field.clone().unwrap_or_default();
    let content = html! {
        h1 { "Audit log" }
        form.filters method="get" action="/ui/-/audit" {
            label { "Registry " input type="text" name="registry" value=(value(&query.registry)); }
            label { "Actor " input type="text" name="actor" value=(value(&query.actor)); }
            label { "Action contains " input type="text" name="action" value=(value(&query.action)); }
            label { "Since " input type="text" name="since" placeholder="1h, 2026-12-01T00:00:00Z" value=(value(&query.since)); }
            button type="submit" { "Filter" }
        }
        @if events.is_empty() { p { "No event matches." } } @else { (audit_table(&events)) }
    };
    Ok(page(&viewer, "Audit log", &[], content))
}

/// Audit events as a table.
pub fn audit_table(events: &[AuditEvent]) -> Markup {
    html! {
        div.scroll { table.audit {
            thead { tr { th { "When" } th { "Who" } th { "Action" } th { "Target" } th.num { "Result" } th { "Detail" } } }
            tbody { @for event in events {
                tr {
                    td { (time_element(event.at)) }
                    td { (event.actor) }
                    td { code { (event.action) } }
                    td { code { (event.target) } }
                    td.num { (event.result) }
                    td { (event.detail.as_deref().unwrap_or_default()) }
                }
            } }
        } }
    }
}

/// `GET /ui/-/access`: users (admins) and tokens, with the form that creates a token.
pub async fn access(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    access_page(&state, &viewer, None)
}

fn access_page(state: &AppState, viewer: &Viewer, created: Option<(String, String)>) -> PageResult {
    viewer.caller.require_login()?;
    let admin = viewer.is(Role::Admin);
    let users = if admin {
        state.meta.read(|view| view.users())?
    } else {
        Vec::new()
    };
    let tokens = crate::api::tokens::visible_tokens(state, &viewer.caller)?;
    let own_user = viewer.caller.principal().and_then(|p| p.user.clone());
    let content = html! {
        h1 { "Access" }
        @if let Some((name, secret)) = &created {
            div.notice role="status" {
                p { "Token " strong { (name) } " was created. Copy it now: it is not shown again." }
                (copyable("Token", secret))
            }
        }
        @if admin {
            section aria-labelledby="users-title" {
                h2 #users-title { "Users" }
                div.scroll { table {
                    thead { tr { th { "Name" } th { "Kind" } th { "Grants" } th { "Status" } } }
                    tbody { @for user in &users {
                        tr {
                            td { (user.name) }
                            td { (user.kind) }
                            td { (user.grants.iter().map(Grant::to_string).collect::<Vec<_>>().join(", ")) }
                            td { @if user.disabled { "disabled" } @else { "active" } }
                        }
                    } }
                } }
                h3 { "New user" }
                form.stacked #new-user method="post" action="/ui/-/users" {
                    (viewer.csrf_field())
                    label for="user-name" { "Name" }
                    input #user-name type="text" name="name" required maxlength="64";
                    label for="user-kind" { "Kind" }
                    select #user-kind name="kind" {
                        option value="human" { "person (signs in with a password)" }
                        option value="service" { "service account (tokens only)" }
                    }
                    label for="user-password" { "Password (people)" }
                    input #user-password type="password" name="password" autocomplete="new-password";
                    button type="submit" { "Create user" }
                }
                h3 { "Grant or revoke a role" }
                form.stacked #grant method="post" action="/ui/-/users/grants" {
                    (viewer.csrf_field())
                    label for="grant-user" { "User" }
                    select #grant-user name="user" { @for user in &users { option value=(user.name) { (user.name) } } }
                    label for="grant-role" { "Role" }
                    select #grant-role name="role" { @for role in [Role::Read, Role::Write, Role::Admin] { option value=(role) { (role) } } }
                    label for="grant-registry" { "On registry (empty: every registry)" }
                    input #grant-registry type="text" name="registry";
                    fieldset {
                        legend { "Change" }
                        label.choice { input type="radio" name="change" value="grant" checked; " grant" }
                        label.choice { input type="radio" name="change" value="revoke"; " revoke" }
                    }
                    button type="submit" { "Apply" }
                }
            }
        }
        section aria-labelledby="tokens-title" {
            h2 #tokens-title { "Tokens" }
            div.scroll { table {
                thead { tr { th { "Name" } th { "Id" } th { "Owner" } th { "Scopes" } th { "Expires" } th { span.hidden { "Revoke" } } } }
                tbody { @for token in &tokens {
                    tr {
                        td { (token.name) }
                        td { code { (token.id) } }
                        td { (token.owner.as_deref().unwrap_or("—")) }
                        td { (token.scopes.iter().map(Grant::to_string).collect::<Vec<_>>().join(", ")) }
                        td { @match token.expires_at { Some(at) => { (time_element(at)) } None => { "never" } } }
                        td {
                            form.inline method="post" action="/ui/-/tokens/revoke" {
                                (viewer.csrf_field())
                                input type="hidden" name="id" value=(token.id);
                                button.danger type="submit" aria-label={ "Revoke token " (token.name) } { "Revoke" }
                            }
                        }
                    }
                } }
            } }
            h3 { "New token" }
            form.stacked #new-token method="post" action="/ui/-/tokens" {
                (viewer.csrf_field())
                label for="token-name" { "Name" }
                input #token-name type="text" name="name" required maxlength="128";
                label for="token-role" { "Role" }
                select #token-role name="role" {
                    @for role in [Role::Read, Role::Write, Role::Admin] { option value=(role) { (role) } }
                }
                label for="token-registry" { "Only on registry (empty: every registry)" }
                input #token-registry type="text" name="registry";
                label for="token-days" { "Expires after (days; empty: never)" }
                input #token-days type="number" name="expires_in_days" min="1" max="3650";
                @if let (false, Some(user)) = (admin, &own_user) {
                    p.hint { "The token acts for " (user) " and never does more than " (user) " may." }
                }
                button type="submit" { "Create token" }
            }
        }
    };
    Ok(page(viewer, "Access", &[], content))
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct NewToken {
    name: String,
    role: String,
    #[serde(default)]
    registry: String,
    #[serde(default)]
    expires_in_days: String,
}

/// `POST /ui/-/tokens`: creates a token as `POST /api/v1/tokens` does (a user's own token is owned
/// by the user) and shows its secret once.
pub async fn create_token(
    State(state): State<AppState>,
    Checked { viewer, form }: Checked<NewToken>,
) -> PageResult {
    let role: Role = form
        .role
        .parse()
        .map_err(|_| ApiError::invalid(format!("unknown role {:?}", form.role)))?;
    let registry = Some(form.registry.trim().to_string()).filter(|r| !r.is_empty());
    let expires_in_seconds = match form.expires_in_days.trim() {
        "" => None,
        days => Some(
            days.parse::<u64>()
                .map_err(|_| ApiError::invalid("expiry must be a number of days"))?
                .saturating_mul(86_400),
        ),
    };
    let owner = if viewer.is(Role::Admin) {
        None
    } else {
        viewer.caller.principal().and_then(|p| p.user.clone())
    };
    let request = CreateTokenRequest {
        name: form.name.trim().to_string(),
        role: None,
        owner,
        expires_in_seconds,
        scopes: Some(vec![Grant { role, registry }]),
    };
    let created = crate::api::tokens::create_token(&state, &viewer.caller, request).await?;
    let detail = format!("created token {} ({})", created.info.name, created.info.id);
    let mut response = access_page(&state, &viewer, Some((created.info.name, created.token)))?;
    response
        .extensions_mut()
        .insert(crate::api::audit::AuditDetail(detail));
    Ok(response)
}

/// The new-user form.
#[derive(Debug, Deserialize)]
pub struct NewUser {
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    password: String,
}

/// `POST /ui/-/users`: creates a user or service account (admin), as `POST /api/v1/users` does.
pub async fn create_user(
    State(state): State<AppState>,
    Checked { viewer, form }: Checked<NewUser>,
) -> PageResult {
    let kind = match form.kind.as_str() {
        "" | "human" => UserKind::Human,
        "service" => UserKind::Service,
        other => return Err(ApiError::invalid(format!("unknown user kind {other:?}")).into()),
    };
    let request = CreateUserRequest {
        name: form.name.trim().to_string(),
        kind,
        password: Some(form.password).filter(|password| !password.is_empty()),
    };
    let created = crate::api::users::create_user(&state, &viewer.caller, request).await?;
    Ok(done(
        "/ui/-/access",
        Some(format!("created {} {}", created.kind, created.name)),
    ))
}

/// A role to grant or revoke.
#[derive(Debug, Deserialize)]
pub struct GrantForm {
    user: String,
    role: String,
    #[serde(default)]
    registry: String,
    change: String,
}

/// `POST /ui/-/users/grants`: grants or revokes a role, as `PUT|DELETE /api/v1/users/{name}/roles`
/// do (a global admin any, a registry's admin those on it).
pub async fn change_grant(
    State(state): State<AppState>,
    Checked { viewer, form }: Checked<GrantForm>,
) -> PageResult {
    let role: Role = form.role.parse().map_err(ApiError::invalid)?;
    let grant = Grant {
        role,
        registry: Some(form.registry.trim().to_string()).filter(|r| !r.is_empty()),
    };
    let detail = format!("{} {grant} of {}", form.change, form.user);
    let revoke = match form.change.as_str() {
        "grant" => false,
        "revoke" => true,
        other => return Err(ApiError::invalid(format!("unknown change {other:?}")).into()),
    };
    crate::api::users::change_grant(
        &state,
        &viewer.caller,
        form.user,
        grant,
        |user, grant, at| {
            if revoke {
                Command::RevokeRole { user, grant, at }
            } else {
                Command::GrantRole { user, grant, at }
            }
        },
    )
    .await?;
    Ok(done("/ui/-/access", Some(detail)))
}

/// The token to revoke.
#[derive(Debug, Deserialize)]
pub struct RevokeToken {
    id: String,
}

/// `POST /ui/-/tokens/revoke`: revokes a token (its owner, or an admin).
pub async fn revoke_token(
    State(state): State<AppState>,
    Checked { viewer, form }: Checked<RevokeToken>,
) -> PageResult {
    crate::api::tokens::revoke_token(&state, &viewer.caller, form.id.clone()).await?;
    Ok(done(
        "/ui/-/access",
        Some(format!("revoked token {}", form.id)),
    ))
}
