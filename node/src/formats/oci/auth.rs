//! Authentication of the OCI API: the Docker token flow and plain credentials.
//!
//! A request may carry HTTP Basic credentials (any user name and an Arca token as the password, or a
//! user's own name and password), an Arca token as a bearer token, or a short-lived registry token
//! issued by `GET /v2/token`. Registry tokens are signed with the cluster's token key (blake3 keyed
//! hash; see [`crate::secrets`]), so any node accepts them, and carry the
//! caller's subject (token id or user), an expiry and the repository scopes granted; the caller's
//! grants are still checked on every request, so revoking the Arca token (or disabling the user)
//! revokes every registry token issued from it.

use arca_protocol::{PackageType, Registry, Role};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::OciError;
use super::names::RepositoryName;
use crate::AppState;
use crate::auth::{AuthError, Caller, Credentials, caller_for_subject, credentials};
use crate::meta::StateRead;

/// Lifetime of issued registry tokens, in seconds.
pub const TOKEN_LIFETIME_SECS: u64 = 300;

/// The `service` this registry names in challenges and tokens.
const SERVICE: &str = "arca";

/// An operation on a repository, as token scopes name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read blobs, manifests, tags.
    Pull,
    /// Upload blobs and manifests.
    Push,
    /// Delete blobs, manifests, tags.
    Delete,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    fn role(self) -> Role {
        match self {
            Action::Pull => Role::Read,
            Action::Push | Action::Delete => Role::Write,
        }
    }
}

/// One granted scope of a registry token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository name (`<registry>/<path>`) or `catalog`.
    pub name: String,
    /// Granted actions.
    pub actions: Vec<String>,
}

/// The signed content of a registry token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    /// The Arca token id it was issued to; `None` for anonymous callers.
    sub: Option<String>,
    /// Expiry, unix seconds.
    exp: u64,
    /// What it grants.
    access: Vec<Grant>,
}

/// Signs and checks registry tokens with a key only the cluster's nodes know.
pub struct TokenSigner {
    key: [u8; 32],
}

impl TokenSigner {
    /// A signer with `key` (the cluster's token key).
    pub fn new(key: [u8; 32]) -> TokenSigner {
        TokenSigner { key }
    }

    fn sign(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mac = blake3::keyed_hash(&self.key, payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac.as_bytes()))
    }

    fn verify(&self, token: &str, now_secs: u64) -> Option<Claims> {
        let (payload, mac) = token.split_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = blake3::keyed_hash(&self.key, payload.as_bytes());
        // blake3::Hash compares in constant time.
        if expected != blake3::Hash::from_bytes(mac.try_into().ok()?) {
            return None;
        }
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.exp > now_secs).then_some(claims)
    }
}

/// Who is calling the OCI API and, for a registry token, which scopes it was granted.
#[derive(Debug, Clone)]
pub struct OciCaller {
    /// The caller.
    pub caller: Caller,
    /// `None` for direct credentials; the granted scopes for a registry token.
    pub grants: Option<Vec<Grant>>,
}

fn unauthorized(message: &'static str) -> AuthError {
    AuthError::unauthorized(message)
}

/// Identifies the caller from its `Authorization` header: a registry token a node of the cluster issued, or what
/// the rest of Arca accepts (an Arca token as bearer token or Basic password, a user's own password).
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<OciCaller, AuthError> {
    if let Some(Credentials::Bearer(token)) = credentials(headers)?
        && let Some(claims) = state.oci.signer.verify(&token, state.now_ms() / 1000)
    {
        let caller = match &claims.sub {
            None => Caller::Anonymous,
            Some(subject) => caller_for_subject(state, subject)?,
        };
        return Ok(OciCaller {
            caller,
            grants: Some(claims.access),
        });
    }
    Ok(OciCaller {
        caller: crate::auth::authenticate(state, headers)?,
        grants: None,
    })
}

/// The `WWW-Authenticate` challenge for a request needing `scope`.
pub fn challenge(state: &AppState, headers: &HeaderMap, scope: Option<String>) -> String {
    let origin = crate::http_server::public_origin(state.config.public_url.as_ref(), headers);
    let mut challenge = format!("Bearer realm=\"{origin}/v2/token\",service=\"{SERVICE}\"");
    if let Some(scope) = scope {
        challenge.push_str(&format!(",scope=\"{scope}\""));
    }
    challenge
}

/// The scope a challenge asks for. Reads ask for `pull,push` too: some clients (the ORAS SDK) reuse a
/// token after a 401 instead of asking again, so the first token should carry everything the caller
/// may do; the token endpoint grants only that.
fn repository_scope(name: &RepositoryName, action: Action) -> String {
    let actions = match action {
        Action::Pull | Action::Push => "pull,push",
        Action::Delete => "pull,push,delete",
    };
    format!("repository:{name}:{actions}")
}

impl OciCaller {
    /// The same caller acting on `target` where it was granted `original` (a push through a virtual
    /// registry lands in its publish target).
    pub fn acting_on(mut self, original: &RepositoryName, target: &RepositoryName) -> OciCaller {
        let (from, to) = (original.to_string(), target.to_string());
        for grant in self.grants.iter_mut().flatten() {
            if grant.kind == "repository" && grant.name == from {
                grant.name = to.clone();
            }
        }
        self
    }

    /// Checks that the caller may do `action` on repository `name` and returns its registry, which
    /// must be an OCI registry.
    pub fn authorize(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        name: &RepositoryName,
        action: Action,
    ) -> Result<Registry, OciError> {
        let to_error = |error: AuthError| match error {
            AuthError::Unauthorized(message) => {
                OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message).with_challenge(
                    challenge(state, headers, Some(repository_scope(name, action))),
                )
            }
            AuthError::Forbidden { .. } => {
                OciError::new(StatusCode::FORBIDDEN, "DENIED", error.to_string())
            }
            AuthError::Unavailable(_) => OciError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                error.to_string(),
            ),
            AuthError::Throttled(_) => OciError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                error.to_string(),
            ),
        };
        if let Some(grants) = &self.grants {
            let granted = grants.iter().any(|grant| {
                grant.kind == "repository"
                    && grant.name == name.to_string()
                    && grant
                        .actions
                        .iter()
                        .any(|a| a == action.as_str() || a == "*")
            });
            if !granted {
                let mut error = to_error(unauthorized(
                    "the registry token does not grant this action",
                ));
                error.challenge = error
                    .challenge
                    .map(|c| format!("{c},error=\"insufficient_scope\""));
                return Err(error);
            }
        }
        let registry = state
            .registry_for(&self.caller, &name.registry, action.role())
            .map_err(|error| match error.status {
                StatusCode::UNAUTHORIZED => to_error(unauthorized("authentication required")),
                StatusCode::FORBIDDEN => {
                    OciError::new(StatusCode::FORBIDDEN, "DENIED", error.message)
                }
                _ => OciError::name_unknown(&name.to_string()),
            })?;
        if !serves_oci(registry.package_type) {
            return Err(OciError::name_unknown(&name.to_string()));
        }
        Ok(registry)
    }

    /// Allows requests that need only some valid credentials (`/v2/`, the catalog).
    pub fn require_login(&self, state: &AppState, headers: &HeaderMap) -> Result<(), OciError> {
        match (&self.caller, &self.grants) {
            (Caller::Principal(_), _) | (Caller::Anonymous, Some(_)) => Ok(()),
            (Caller::Anonymous, None) => Err(OciError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            )
            .with_challenge(challenge(state, headers, None))),
        }
    }
}

/// Issues a registry token for the scopes requested in `query` (`scope=repository:NAME:ACTIONS`,
/// repeatable), granting only the actions the caller may do.
pub fn issue_token(state: &AppState, caller: &Caller, query: &str) -> serde_json::Value {
    let mut access = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != "scope" {
            continue;
        }
        for scope in value.split(' ') {
            let mut parts = scope.splitn(3, ':');
            let (Some(kind), Some(name), Some(actions)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let granted: Vec<String> = match (kind, RepositoryName::parse(name)) {
                ("repository", Ok(repository)) => actions
                    .split(',')
                    .filter(|action| {
                        let needed = match *action {
                            "pull" => Action::Pull,
                            "push" => Action::Push,
                            "delete" | "*" => Action::Delete,
                            _ => return false,
                        };
                        let registry = state
                            .meta
                            .read(|view| view.registry(&repository.registry))
                            .ok()
                            .flatten();
                        caller
                            .require_on(&repository.registry, registry.as_ref(), needed.role())
                            .is_ok()
                    })
                    .map(str::to_string)
                    .collect(),
                ("registry", _) if name == "catalog" && caller.require_login().is_ok() => {
                    vec!["*".to_string()]
                }
                _ => Vec::new(),
            };
            access.push(Grant {
                kind: kind.to_string(),
                name: name.to_string(),
                actions: granted,
            });
        }
    }
    let issued = state.now_ms() / 1000;
    let token = state.oci.signer.sign(&Claims {
        sub: caller.principal().map(|principal| principal.subject()),
        exp: issued + TOKEN_LIFETIME_SECS,
        access,
    });
    serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_LIFETIME_SECS,
        "issued_at": humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(issued)
        )
        .to_string(),
    })
}

/// Whether registries of `package_type` speak the OCI distribution API: `DOCKER` registries, and
/// `HELM` registries for charts pushed with `helm push oci://`.
pub fn serves_oci(package_type: PackageType) -> bool {
    matches!(package_type, PackageType::Docker | PackageType::Helm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering_and_expiry() {
        let signer = TokenSigner::new([1; 32]);
        let claims = Claims {
            sub: Some("tok_1".into()),
            exp: 1000,
            access: vec![Grant {
                kind: "repository".into(),
                name: "images/app".into(),
                actions: vec!["pull".into()],
            }],
        };
        let token = signer.sign(&claims);
        let verified = signer.verify(&token, 999).expect("valid");
        assert_eq!(verified.sub.as_deref(), Some("tok_1"));
        assert!(signer.verify(&token, 1000).is_none(), "expired");
        let (payload, mac) = token.split_once('.').expect("two parts");
        let forged_payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                access: vec![],
                ..claims
            })
            .expect("json"),
        );
        assert!(
            signer
                .verify(&format!("{forged_payload}.{mac}"), 0)
                .is_none()
        );
        assert!(
            TokenSigner::new([2; 32])
                .verify(&format!("{payload}.{mac}"), 0)
                .is_none()
        );
    }
}
