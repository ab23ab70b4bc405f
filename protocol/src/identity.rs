//! Identities and what they may do: users (people with a password, or service accounts that only hold
//! tokens), role grants (global or on one registry), the arithmetic that intersects a token's scopes
//! with its owner's grants, and the management API's JSON types for users, roles and logins.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::Role;

/// What kind of identity a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserKind {
    /// A person: logs in with a password.
    #[default]
    Human,
    /// A machine identity: no password, authenticates only with tokens.
    Service,
}

impl fmt::Display for UserKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserKind::Human => "human",
            UserKind::Service => "service",
        })
    }
}

/// A role, granted everywhere (`registry: None`) or on one registry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// The registry it applies to; `None` for every registry and the global operations. (Always
    /// serialised: grants are part of Raft commands, whose encoding has no optional fields.)
    #[serde(default)]
    pub registry: Option<String>,
}

impl Grant {
    /// `role` on every registry.
    pub fn global(role: Role) -> Grant {
        Grant {
            role,
            registry: None,
        }
    }

    /// `role` on `registry` only.
    pub fn on(registry: &str, role: Role) -> Grant {
        Grant {
            role,
            registry: Some(registry.to_string()),
        }
    }

    /// True when this grant allows what `needed` allows on `registry` (`None`: a global operation,
    /// which only a global grant allows).
    pub fn allows(&self, registry: Option<&str>, needed: Role) -> bool {
        self.role.allows(needed)
            && match (&self.registry, registry) {
                (None, _) => true,
                (Some(granted), Some(asked)) => granted == asked,
                (Some(_), None) => false,
            }
    }

    /// What both grants allow, if anything: the lower role on the narrower scope.
    pub fn meet(&self, other: &Grant) -> Option<Grant> {
        let registry = match (&self.registry, &other.registry) {
            (None, None) => None,
            (Some(r), None) | (None, Some(r)) => Some(r.clone()),
            (Some(a), Some(b)) if a == b => Some(a.clone()),
            (Some(_), Some(_)) => return None,
        };
        Some(Grant {
            role: self.role.min(other.role),
            registry,
        })
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.registry {
            None => write!(f, "{}", self.role),
            Some(registry) => write!(f, "{registry}:{}", self.role),
        }
    }
}

/// Parses `ROLE` (global) or `REGISTRY:ROLE`.
impl FromStr for Grant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.rsplit_once(':') {
            None => Ok(Grant::global(s.parse()?)),
            Some(("", _)) => Err(format!("scope {s:?} names no registry (REGISTRY:ROLE)")),
            Some((registry, role)) => Ok(Grant::on(registry, role.parse()?)),
        }
    }
}

/// True when any of `grants` allows `needed` on `registry`.
pub fn any_allows(grants: &[Grant], registry: Option<&str>, needed: Role) -> bool {
    grants.iter().any(|grant| grant.allows(registry, needed))
}

/// The grants that allow exactly what both `a` and `b` allow: `any_allows(&intersect(a, b), r, n)`
/// equals `any_allows(a, r, n) && any_allows(b, r, n)` for every registry and role.
pub fn intersect(a: &[Grant], b: &[Grant]) -> Vec<Grant> {
    let meets: BTreeSet<Grant> = a
        .iter()
        .flat_map(|x| b.iter().filter_map(|y| x.meet(y)))
        .collect();
    // Drop grants another one already covers.
    meets
        .iter()
        .filter(|g| {
            !meets
                .iter()
                .any(|other| other != *g && other.allows(g.registry.as_deref(), g.role))
        })
        .cloned()
        .collect()
}

/// A user or service account, as the replicated state holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique name (also the login name).
    pub name: String,
    /// Person or service account.
    pub kind: UserKind,
    /// The argon2id hash of the password as a PHC string; `None` for service accounts and users that
    /// cannot log in with a password.
    pub password_hash: Option<String>,
    /// A disabled user cannot log in and its tokens are refused.
    pub disabled: bool,
    /// What the user may do.
    pub grants: BTreeSet<Grant>,
    /// Creation time, unix milliseconds.
    pub created_at: u64,
    /// Last change, unix milliseconds.
    pub updated_at: u64,
}

impl User {
    /// The user's grants, as a list.
    pub fn grant_list(&self) -> Vec<Grant> {
        self.grants.iter().cloned().collect()
    }
}

/// A user as the API shows it: never its password or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Name.
    pub name: String,
    /// Person or service account.
    pub kind: UserKind,
    /// Whether a password is set.
    pub has_password: bool,
    /// Whether the user is disabled.
    pub disabled: bool,
    /// Granted roles.
    pub grants: Vec<Grant>,
    /// Creation time, unix milliseconds.
    pub created_at: u64,
    /// Last change, unix milliseconds.
    pub updated_at: u64,
}

impl From<&User> for UserInfo {
    fn from(user: &User) -> Self {
        UserInfo {
            name: user.name.clone(),
            kind: user.kind,
            has_password: user.password_hash.is_some(),
            disabled: user.disabled,
            grants: user.grant_list(),
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// `POST /api/v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateUserRequest {
    /// Name.
    pub name: String,
    /// Person (default) or service account.
    #[serde(default)]
    pub kind: UserKind,
    /// The password of a person; service accounts have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `PATCH /api/v1/users/{name}`: fields that are absent stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateUserRequest {
    /// A new password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The password now: needed when users change their own (an admin setting another user's
    /// password needs none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
    /// Disable or enable the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `POST /api/v1/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_use_the_new_names_and_accept_the_old_ones() {
        assert_eq!(
            serde_json::to_string(&Role::Read).expect("json"),
            "\"viewer\""
        );
        assert_eq!(
            serde_json::to_string(&Role::Write).expect("json"),
            "\"contributor\""
        );
        for (text, role) in [
            ("read", Role::Read),
            ("viewer", Role::Read),
            ("write", Role::Write),
            ("contributor", Role::Write),
            ("admin", Role::Admin),
        ] {
            assert_eq!(text.parse::<Role>(), Ok(role));
            assert_eq!(
                serde_json::from_str::<Role>(&format!("\"{text}\"")).expect(text),
                role
            );
        }
        assert!("owner".parse::<Role>().is_err());
    }

    #[test]
    fn grants_parse_and_scope() {
        let global: Grant = "viewer".parse().expect("global");
        assert_eq!(global, Grant::global(Role::Read));
        let scoped: Grant = "team-npm:contributor".parse().expect("scoped");
        assert_eq!(scoped, Grant::on("team-npm", Role::Write));
        assert_eq!(scoped.to_string(), "team-npm:contributor");
        assert!(":admin".parse::<Grant>().is_err());
        assert!("r:owner".parse::<Grant>().is_err());

        assert!(global.allows(Some("any"), Role::Read));
        assert!(global.allows(None, Role::Read));
        assert!(!global.allows(Some("any"), Role::Write));
        assert!(scoped.allows(Some("team-npm"), Role::Write));
        assert!(scoped.allows(Some("team-npm"), Role::Read));
        assert!(!scoped.allows(Some("other"), Role::Read));
        assert!(
            !scoped.allows(None, Role::Read),
            "a registry grant allows no global operation"
        );
    }

    #[test]
    fn intersection_allows_what_both_sides_allow() {
        let sides = [
            vec![],
            vec![Grant::global(Role::Admin)],
            vec![Grant::global(Role::Read)],
            vec![Grant::on("a", Role::Write)],
            vec![Grant::on("a", Role::Admin), Grant::on("b", Role::Read)],
            vec![Grant::global(Role::Read), Grant::on("b", Role::Write)],
        ];
        for a in &sides {
            for b in &sides {
                let both = intersect(a, b);
                for registry in [None, Some("a"), Some("b"), Some("c")] {
                    for role in [Role::Read, Role::Write, Role::Admin] {
                        assert_eq!(
                            any_allows(&both, registry, role),
                            any_allows(a, registry, role) && any_allows(b, registry, role),
                            "{a:?} ∩ {b:?} = {both:?} at {registry:?} {role}"
                        );
                    }
                }
            }
        }
        assert_eq!(
            intersect(
                &[Grant::global(Role::Admin)],
                &[Grant::global(Role::Read), Grant::on("b", Role::Write)]
            ),
            vec![Grant::global(Role::Read), Grant::on("b", Role::Write)]
        );
        assert_eq!(
            intersect(
                &[Grant::on("a", Role::Write)],
                &[Grant::on("b", Role::Write)]
            ),
            vec![]
        );
    }
}
