//! `/api/v1/registries`: create, list, get and delete registries; the signing keys of Debian and
//! RPM registries (made on creation, fetched, rotated).

use arca_protocol::api::{
    CreateRegistryRequest, RegistryInfo, SetRegistrySettingsRequest, SetReplicationRequest,
    SigningKeyInfo, UpstreamInfo,
};
use arca_protocol::names::validate_registry_name;
use arca_protocol::{Command, Registry, RegistryChanges, RegistryKind, RegistrySettings, Role};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};

use super::{ApiError, JsonBody, PathParams};
use crate::meta::tables::RegistryRecord;
use crate::meta::{ReadView, StateRead};
use crate::{AppState, auth::Caller};
use axum::Json;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/registries", get(list).post(create))
        .route(
            "/registries/{registry}",
            get(fetch).delete(remove).patch(update),
        )
        .route("/registries/{registry}/replication", put(set_replication))
        .route("/registries/{registry}/settings", put(set_settings))
        .route("/registries/{registry}/signing-key", get(signing_key))
        .route(
            "/registries/{registry}/signing-key/rotate",
            post(rotate_signing_key),
        )
}

/// How the API shows a registry, with the settings kept beside it.
pub fn registry_info(record: &RegistryRecord, settings: &RegistrySettings) -> RegistryInfo {
    let registry = &record.registry;
    RegistryInfo {
        name: registry.name.clone(),
        package_type: registry.package_type,
        description: registry.description.clone(),
        immutable: registry.immutable,
        allow_anonymous_read: registry.allow_anonymous_read,
        allow_redeploy: registry.allow_redeploy,
        created_at: registry.created_at,
        package_count: record.packages,
        metadata: registry.metadata.clone(),
        replication: registry.replication.clone(),
        kind: registry.kind,
        upstream: registry.upstream.as_ref().map(|upstream| UpstreamInfo {
            url: upstream.url.clone(),
            username: upstream.username.clone(),
            has_password: upstream.password.is_some(),
            metadata_ttl_seconds: upstream.metadata_ttl_seconds,
            ca_pem: settings.upstream_ca_pem.clone(),
        }),
        members: registry.members.clone(),
        publish_to: registry.publish_to.clone(),
        audit_downloads: registry.audit_downloads,
        min_copies: settings.min_copies.unwrap_or(1),
    }
}

fn info_of(state: &AppState, name: &str) -> Result<RegistryInfo, ApiError> {
    state
        .meta
        .read(|view| {
            let Some(record) = view.registry_record(name)? else {
                return Ok(None);
            };
            Ok(Some(registry_info(&record, &view.registry_settings(name)?)))
        })?
        .ok_or_else(|| ApiError::not_found(format!("registry {name} not found")))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateRegistryRequest>,
) -> Result<(StatusCode, Json<RegistryInfo>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(create_registry(&state, &caller, request).await?),
    ))
}

/// Creates a registry (admin), with its settings and, for Debian and RPM, its signing key.
pub async fn create_registry(
    state: &AppState,
    caller: &Caller,
    request: CreateRegistryRequest,
) -> Result<RegistryInfo, ApiError> {
    caller.require(Role::Admin)?;
    validate_registry_name(&request.name)?;
    if request.name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ApiError::invalid(format!(
            "registry name {:?}: new registry names are lower case (OCI repository names must \
             be, and `A` beside `a` reads as one registry)",
            request.name
        )));
    }
    if request.description.len() > 4096 {
        return Err(ApiError::invalid("description must be at most 4096 bytes"));
    }
    let registry = Registry {
        name: request.name.clone(),
        package_type: request.package_type,
        description: request.description,
        immutable: request.immutable,
        allow_anonymous_read: request.allow_anonymous_read,
        allow_redeploy: request.allow_redeploy,
        created_at: state.now_ms(),
        metadata: Default::default(),
        replication: request.replication,
        kind: request.kind,
        // The password is kept sealed under the cluster's key (see `crate::secrets`).
        upstream: request.upstream.map(|mut upstream| {
            upstream.password = upstream.password.map(|password| state.keys.seal(&password));
            upstream
        }),
        members: request.members,
        publish_to: request.publish_to,
        audit_downloads: request.audit_downloads,
        cleanup: Default::default(),
        firewall: Default::default(),
    };
    check_kind(&state.meta.view()?, &registry)?;
    let settings = checked_settings(
        state,
        &registry,
        RegistrySettings {
            upstream_ca_pem: request.upstream_ca_pem,
            min_copies: request.min_copies,
        },
    )?;
    let signs = registry.package_type.signs_metadata();
    let mut commands = vec![Command::CreateRegistry { registry }];
    if settings != RegistrySettings::default() {
        commands.push(Command::SetRegistrySettings {
            registry: request.name.clone(),
            settings,
        });
    }
    if signs {
        commands.push(new_signing_key(state, &request.name)?);
    }
    let command = match commands.len() {
        1 => commands.remove(0),
        _ => Command::Batch { commands },
    };
    state.meta.propose(command).await?;
    info_of(state, &request.name)
}

/// `PATCH /api/v1/registries/{registry}`: changes the registry's description, flags, upstream or
/// members (admin of the registry).
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(changes): JsonBody<RegistryChanges>,
) -> Result<Json<RegistryInfo>, ApiError> {
    Ok(Json(
        update_registry(&state, &caller, &name, changes).await?,
    ))
}

/// Changes registry `name` as `changes` say, after the checks its creation has: an upstream only
/// for a remote registry (without a password it keeps the stored one; a new one is sealed),
/// members only for a virtual one.
pub async fn update_registry(
    state: &AppState,
    caller: &Caller,
    name: &str,
    mut changes: RegistryChanges,
) -> Result<RegistryInfo, ApiError> {
    let registry = state.registry_for(caller, name, Role::Admin)?;
    if changes
        .description
        .as_ref()
        .is_some_and(|description| description.len() > 4096)
    {
        return Err(ApiError::invalid("description must be at most 4096 bytes"));
    }
    if changes.upstream.is_some() && registry.kind != RegistryKind::Remote {
        return Err(ApiError::invalid(format!(
            "registry {name} is {}: only a remote registry has an upstream",
            registry.kind
        )));
    }
    if (changes.members.is_some() || changes.publish_to.is_some())
        && registry.kind != RegistryKind::Virtual
    {
        return Err(ApiError::invalid(format!(
            "registry {name} is {}: only a virtual registry has members",
            registry.kind
        )));
    }
    if let Some(upstream) = &mut changes.upstream {
        upstream.password = match upstream.password.take() {
            Some(password) => Some(state.keys.seal(&password)),
            None => registry
                .upstream
                .as_ref()
                .and_then(|stored| stored.password.clone()),
        };
    }
    let mut changed = registry.clone();
    changes.apply_to(&mut changed);
    check_kind(&state.meta.view()?, &changed)?;
    state
        .meta
        .propose(Command::UpdateRegistry {
            name: name.to_string(),
            changes,
        })
        .await?;
    info_of(state, name)
}

/// `settings` for `registry`, checked: a CA bundle only for a remote registry and holding
/// certificates, copies the cluster's full nodes can hold (1 is kept as "none asked for").
fn checked_settings(
    state: &AppState,
    registry: &Registry,
    settings: RegistrySettings,
) -> Result<RegistrySettings, ApiError> {
    Ok(RegistrySettings {
        upstream_ca_pem: settings
            .upstream_ca_pem
            .map(|pem| checked_ca_bundle(registry, pem))
            .transpose()?,
        min_copies: settings
            .min_copies
            .map(|copies| checked_min_copies(state, copies))
            .transpose()?
            .filter(|copies| *copies > 1),
    })
}

/// `PUT /api/v1/registries/{registry}/settings`: replaces the settings kept beside the registry.
async fn set_settings(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(settings): JsonBody<SetRegistrySettingsRequest>,
) -> Result<Json<RegistryInfo>, ApiError> {
    let registry = state.registry_for(&caller, &name, Role::Admin)?;
    let settings = checked_settings(&state, &registry, settings)?;
    state
        .meta
        .propose(Command::SetRegistrySettings {
            registry: name.clone(),
            settings,
        })
        .await?;
    Ok(Json(info_of(&state, &name)?))
}

/// The most copies a registry may ask for.
const MAX_COPIES: u32 = 9;

/// A number of copies the cluster's full nodes can hold.
fn checked_min_copies(state: &AppState, copies: u32) -> Result<u32, ApiError> {
    if !(1..=MAX_COPIES).contains(&copies) {
        return Err(ApiError::invalid(format!(
            "min_copies must be between 1 and {MAX_COPIES}"
        )));
    }
    let full_nodes = state
        .meta
        .members()
        .iter()
        .filter(|(_, node)| node.role == arca_protocol::NodeRole::Full)
        .count();
    if copies as usize > full_nodes {
        return Err(ApiError::invalid(format!(
            "min_copies {copies}: the cluster has {full_nodes} full node(s) to hold copies"
        )));
    }
    Ok(copies)
}

/// A CA bundle for a remote registry's upstream: PEM holding at least one certificate.
fn checked_ca_bundle(registry: &Registry, pem: String) -> Result<String, ApiError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    if registry.kind != RegistryKind::Remote {
        return Err(ApiError::invalid(
            "upstream_ca_pem is for remote registries: only they have an upstream",
        ));
    }
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid(format!("upstream_ca_pem: {e}")))?;
    if certificates.is_empty() {
        return Err(ApiError::invalid(
            "upstream_ca_pem holds no PEM CERTIFICATE",
        ));
    }
    Ok(pem)
}

/// What each kind of registry needs: a remote an http(s) upstream, a virtual existing local or remote
/// members of its own type (and, to take publishes, a local one among them); a local neither.
fn check_kind(meta: &ReadView, registry: &Registry) -> Result<(), ApiError> {
    let kind = registry.kind;
    match kind {
        RegistryKind::Remote => {
            let upstream = registry
                .upstream
                .as_ref()
                .ok_or_else(|| ApiError::invalid("a remote registry needs an upstream"))?;
            let url = reqwest::Url::parse(&upstream.url)
                .map_err(|e| ApiError::invalid(format!("upstream {}: {e}", upstream.url)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ApiError::invalid(
                    "the upstream must be an http or https URL",
                ));
            }
        }
        RegistryKind::Virtual => {
            if registry.members.is_empty() {
                return Err(ApiError::invalid("a virtual registry needs members"));
            }
            for member in &registry.members {
                let found = meta
                    .registry(member)?
                    .ok_or_else(|| ApiError::invalid(format!("member {member} does not exist")))?;
                if found.package_type != registry.package_type
                    || found.kind == RegistryKind::Virtual
                {
                    return Err(ApiError::invalid(format!(
                        "member {member} must be a local or remote {} registry",
                        registry.package_type
                    )));
                }
            }
            if let Some(target) = &registry.publish_to {
                let local = registry.members.contains(target)
                    && meta
                        .registry(target)?
                        .is_some_and(|r| r.kind == RegistryKind::Local);
                if !local {
                    return Err(ApiError::invalid(format!(
                        "publish_to {target} must be one of the local members"
                    )));
                }
            }
        }
        RegistryKind::Local => {}
    }
    let stray = match kind {
        RegistryKind::Remote => !registry.members.is_empty() || registry.publish_to.is_some(),
        RegistryKind::Virtual => registry.upstream.is_some(),
        RegistryKind::Local => {
            registry.upstream.is_some()
                || !registry.members.is_empty()
                || registry.publish_to.is_some()
        }
    };
    if stray {
        return Err(ApiError::invalid(format!(
            "a {kind} registry takes {}",
            match kind {
                RegistryKind::Remote => "an upstream, not members",
                RegistryKind::Virtual => "members, not an upstream",
                RegistryKind::Local => "neither an upstream nor members",
            }
        )));
    }
    Ok(())
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<RegistryInfo>>, ApiError> {
    caller.require_login()?;
    Ok(Json(state.meta.read(|view| {
        view.registries()?
            .iter()
            .filter(|r| caller.may(&r.registry, Role::Read))
            .map(|r| Ok(registry_info(r, &view.registry_settings(&r.registry.name)?)))
            .collect()
    })?))
}

/// A new signing key for `registry`, as the command that sets it.
fn new_signing_key(state: &AppState, registry: &str) -> Result<Command, ApiError> {
    let key = crate::signing::generate(registry, &state.keys, state.now_ms())
        .map_err(ApiError::internal)?;
    Ok(Command::SetSigningKey {
        registry: registry.to_string(),
        key,
    })
}

/// The public half of `registry`'s signing key.
fn signing_key_info(state: &AppState, registry: &str) -> Result<SigningKeyInfo, ApiError> {
    let key = state.meta.view()?.signing_key(registry)?.ok_or_else(|| {
        ApiError::not_found(format!(
            "registry {registry} has no signing key (only Debian and RPM registries sign)"
        ))
    })?;
    Ok(SigningKeyInfo {
        fingerprint: key.fingerprint,
        created_at: key.created_at,
        public_key: key.public_key,
    })
}

/// `GET /registries/{registry}/signing-key`: the public key (readers of the registry may fetch
/// it, as apt and dnf do).
async fn signing_key(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<SigningKeyInfo>, ApiError> {
    state.registry_for(&caller, &name, Role::Read)?;
    Ok(Json(signing_key_info(&state, &name)?))
}

/// `POST /registries/{registry}/signing-key/rotate`: a new key replaces the old one; metadata is
/// signed with it from then on, so clients need the new public key.
async fn rotate_signing_key(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<SigningKeyInfo>, ApiError> {
    let registry = state.registry_for(&caller, &name, Role::Admin)?;
    if !registry.package_type.signs_metadata() {
        return Err(ApiError::invalid(format!(
            "registry {name} holds {} packages, whose metadata is not signed",
            registry.package_type
        )));
    }
    state.meta.propose(new_signing_key(&state, &name)?).await?;
    Ok(Json(signing_key_info(&state, &name)?))
}

async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<RegistryInfo>, ApiError> {
    state.registry_for(&caller, &name, Role::Read)?;
    Ok(Json(info_of(&state, &name)?))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.registry_for(&caller, &name, Role::Admin)?;
    state.meta.propose(Command::DeleteRegistry { name }).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_replication(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(policy): JsonBody<SetReplicationRequest>,
) -> Result<Json<RegistryInfo>, ApiError> {
    state.registry_for(&caller, &name, Role::Admin)?;
    state
        .meta
        .propose(Command::SetReplication {
            registry: name.clone(),
            policy,
        })
        .await?;
    Ok(Json(info_of(&state, &name)?))
}
