//! The part of the state machine that owns identities: users and service accounts, their role grants,
//! and the tokens' lifecycle (creation with an owner, rotation, revocation). Pure and deterministic
//! like the rest of [`MetaState`]: passwords arrive already hashed, times and ids come in the command.

use arca_protocol::identity::User;
use arca_protocol::{Command, CommandError, CommandOutcome, Sha256, Token};

use super::state::MetaState;

fn not_found(what: impl std::fmt::Display) -> CommandError {
    CommandError::NotFound(what.to_string())
}

impl MetaState {
    /// The user called `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// The token whose secret hashes to `secret_sha256`.
    pub fn token_by_secret(&self, secret_sha256: &Sha256) -> Option<&Token> {
        self.tokens
            .values()
            .find(|token| &token.secret_sha256 == secret_sha256)
    }

    /// Applies a command about users, grants or tokens; [`MetaState::apply`] hands them here.
    pub(super) fn apply_identity(&mut self, command: Command) -> CommandOutcome {
        match command {
            Command::CreateToken { token } => {
                if self.tokens.contains_key(&token.id) {
                    return Err(CommandError::AlreadyExists(format!("token {}", token.id)));
                }
                if let Some(owner) = &token.owner
                    && !self.users.contains_key(owner)
                {
                    return Err(not_found(format_args!("user {owner}")));
                }
                self.tokens.insert(token.id.clone(), token);
                Ok(())
            }
            Command::RevokeToken { id } => self
                .tokens
                .remove(&id)
                .map(drop)
                .ok_or_else(|| not_found(format_args!("token {id}"))),
            Command::RotateToken { id, secret_sha256 } => {
                let token = self
                    .tokens
                    .get_mut(&id)
                    .ok_or_else(|| not_found(format_args!("token {id}")))?;
                token.secret_sha256 = secret_sha256;
                Ok(())
            }
            Command::CreateUser { user } => {
                if self.users.contains_key(&user.name) {
                    return Err(CommandError::AlreadyExists(format!("user {}", user.name)));
                }
                self.users.insert(user.name.clone(), user);
                Ok(())
            }
            Command::UpdateUser {
                name,
                password_hash,
                disabled,
                at,
            } => {
                let user = self.user_mut(&name)?;
                if password_hash.is_some() && user.kind == arca_protocol::UserKind::Service {
                    return Err(CommandError::Invalid(format!(
                        "{name} is a service account: it has no password"
                    )));
                }
                if let Some(hash) = password_hash {
                    user.password_hash = Some(hash);
                }
                if let Some(disabled) = disabled {
                    user.disabled = disabled;
                }
                user.updated_at = at;
                Ok(())
            }
            Command::DeleteUser { name } => {
                self.users
                    .remove(&name)
                    .ok_or_else(|| not_found(format_args!("user {name}")))?;
                self.tokens
                    .retain(|_, token| token.owner.as_deref() != Some(name.as_str()));
                Ok(())
            }
            Command::GrantRole { user, grant, at } => {
                if let Some(registry) = &grant.registry
                    && !self.registries.contains_key(registry)
                {
                    return Err(not_found(format_args!("registry {registry}")));
                }
                let user = self.user_mut(&user)?;
                user.grants.insert(grant);
                user.updated_at = at;
                Ok(())
            }
            Command::RevokeRole { user, grant, at } => {
                let name = user;
                let user = self.user_mut(&name)?;
                if !user.grants.remove(&grant) {
                    return Err(not_found(format_args!("grant {grant} of user {name}")));
                }
                user.updated_at = at;
                Ok(())
            }
            other => Err(CommandError::Invalid(format!(
                "not an identity command: {other:?}"
            ))),
        }
    }

    /// Grants on a registry go with it: a registry created later under the same name starts with
    /// none.
    pub(super) fn forget_registry_grants(&mut self, registry: &str) {
        for user in self.users.values_mut() {
            user.grants
                .retain(|grant| grant.registry.as_deref() != Some(registry));
        }
    }

    fn user_mut(&mut self, name: &str) -> Result<&mut User, CommandError> {
        self.users
            .get_mut(name)
            .ok_or_else(|| not_found(format_args!("user {name}")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use arca_protocol::{Grant, Role, UserKind};

    use super::*;

    fn user(name: &str, kind: UserKind) -> User {
        User {
            name: name.into(),
            kind,
            password_hash: None,
            disabled: false,
            grants: BTreeSet::new(),
            created_at: 1,
            updated_at: 1,
        }
    }

    fn token(id: &str, owner: Option<&str>) -> Token {
        Token {
            id: id.into(),
            name: id.into(),
            secret_sha256: Sha256([id.len() as u8; 32]),
            scopes: vec![Grant::global(Role::Admin)],
            owner: owner.map(str::to_string),
            expires_at: None,
            created_at: 1,
        }
    }

    #[test]
    fn users_grants_and_owned_tokens() {
        let mut state = MetaState::default();
        state
            .apply(Command::CreateUser {
                user: user("alice", UserKind::Human),
            })
            .expect("created");
        assert!(matches!(
            state.apply(Command::CreateUser {
                user: user("alice", UserKind::Service)
            }),
            Err(CommandError::AlreadyExists(_))
        ));
        assert!(matches!(
            state.apply(Command::CreateToken {
                token: token("tok_x", Some("nobody"))
            }),
            Err(CommandError::NotFound(_))
        ));
        state
            .apply(Command::CreateToken {
                token: token("tok_alice", Some("alice")),
            })
            .expect("owned token");
        state
            .apply(Command::CreateToken {
                token: token("tok_free", None),
            })
            .expect("ownerless token");

        // A grant on a registry needs the registry.
        assert!(matches!(
            state.apply(Command::GrantRole {
                user: "alice".into(),
                grant: Grant::on("missing", Role::Read),
                at: 2
            }),
            Err(CommandError::NotFound(_))
        ));
        let global = Grant::global(Role::Write);
        state
            .apply(Command::GrantRole {
                user: "alice".into(),
                grant: global.clone(),
                at: 3,
            })
            .expect("granted");
        assert!(state.user("alice").expect("alice").grants.contains(&global));
        state
            .apply(Command::RevokeRole {
                user: "alice".into(),
                grant: global.clone(),
                at: 4,
            })
            .expect("revoked");
        assert!(matches!(
            state.apply(Command::RevokeRole {
                user: "alice".into(),
                grant: global,
                at: 5
            }),
            Err(CommandError::NotFound(_))
        ));

        // Rotation replaces the secret's hash.
        let new_hash = Sha256([9; 32]);
        state
            .apply(Command::RotateToken {
                id: "tok_alice".into(),
                secret_sha256: new_hash,
            })
            .expect("rotated");
        assert_eq!(
            state.token_by_secret(&new_hash).map(|t| t.id.as_str()),
            Some("tok_alice")
        );

        // Deleting the user takes its tokens with it, and only those.
        state
            .apply(Command::DeleteUser {
                name: "alice".into(),
            })
            .expect("deleted");
        assert!(state.user("alice").is_none());
        assert!(!state.tokens.contains_key("tok_alice"));
        assert!(state.tokens.contains_key("tok_free"));
    }

    #[test]
    fn service_accounts_have_no_password_and_users_can_be_disabled() {
        let mut state = MetaState::default();
        state
            .apply(Command::CreateUser {
                user: user("ci", UserKind::Service),
            })
            .expect("created");
        assert!(matches!(
            state.apply(Command::UpdateUser {
                name: "ci".into(),
                password_hash: Some("$argon2id$...".into()),
                disabled: None,
                at: 2
            }),
            Err(CommandError::Invalid(_))
        ));
        state
            .apply(Command::UpdateUser {
                name: "ci".into(),
                password_hash: None,
                disabled: Some(true),
                at: 3,
            })
            .expect("disabled");
        let ci = state.user("ci").expect("ci");
        assert!(ci.disabled && ci.password_hash.is_none());
        assert_eq!(ci.updated_at, 3);
    }
}
