//! The part of the state machine that owns identities: users and service accounts, their role grants,
//! and the tokens' lifecycle (creation with an owner, rotation, revocation). Pure and deterministic
//! like the rest of [`super::apply`]: passwords arrive already hashed, times and ids come in the
//! command. Tokens are found by the hash of their secret through the `token_secrets` index.

use arca_protocol::identity::User;
use arca_protocol::{Command, CommandError, Sha256, Token};

use super::apply::{Applied, Applier};
use super::keys;
use super::tables::Table;
use super::view::{ReadResult, StateRead};

fn not_found(what: impl std::fmt::Display) -> CommandError {
    CommandError::NotFound(what.to_string())
}

fn user_key(name: &str) -> Vec<u8> {
    keys::of(&[name])
}

fn secret_key(secret_sha256: &Sha256) -> Vec<u8> {
    keys::of(&[secret_sha256.0])
}

impl Applier<'_> {
    fn put_token(&mut self, token: &Token) -> ReadResult<()> {
        self.put(Table::Tokens, &keys::of(&[token.id.as_str()]), token)?;
        self.put(
            Table::TokenSecrets,
            &secret_key(&token.secret_sha256),
            &token.id,
        )
    }

    fn remove_token(&mut self, token: &Token) -> ReadResult<()> {
        self.delete(Table::Tokens, &keys::of(&[token.id.as_str()]))?;
        self.delete(Table::TokenSecrets, &secret_key(&token.secret_sha256))?;
        Ok(())
    }

    /// Applies a command about users, grants or tokens; [`Applier::apply`] hands them here.
    pub(super) fn apply_identity(&mut self, command: Command) -> Applied {
        match command {
            Command::CreateToken { token } => {
                if self.token(&token.id)?.is_some() {
                    return Ok(Err(CommandError::AlreadyExists(format!(
                        "token {}",
                        token.id
                    ))));
                }
                if let Some(owner) = &token.owner
                    && self.user(owner)?.is_none()
                {
                    return Ok(Err(not_found(format_args!("user {owner}"))));
                }
                self.put_token(&token)?;
                Ok(Ok(()))
            }
            Command::RevokeToken { id } => match self.token(&id)? {
                Some(token) => {
                    self.remove_token(&token)?;
                    Ok(Ok(()))
                }
                None => Ok(Err(not_found(format_args!("token {id}")))),
            },
            Command::RotateToken { id, secret_sha256 } => {
                let Some(mut token) = self.token(&id)? else {
                    return Ok(Err(not_found(format_args!("token {id}"))));
                };
                self.delete(Table::TokenSecrets, &secret_key(&token.secret_sha256))?;
                token.secret_sha256 = secret_sha256;
                self.put_token(&token)?;
                Ok(Ok(()))
            }
            Command::CreateUser { user } => {
                if self.user(&user.name)?.is_some() {
                    return Ok(Err(CommandError::AlreadyExists(format!(
                        "user {}",
                        user.name
                    ))));
                }
                self.put(Table::Users, &user_key(&user.name), &user)?;
                Ok(Ok(()))
            }
            Command::UpdateUser {
                name,
                password_hash,
                disabled,
                at,
            } => self.change_user(&name, |user| {
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
            }),
            Command::DeleteUser { name } => {
                if !self.delete(Table::Users, &user_key(&name))? {
                    return Ok(Err(not_found(format_args!("user {name}"))));
                }
                for token in self.tokens()? {
                    if token.owner.as_deref() == Some(name.as_str()) {
                        self.remove_token(&token)?;
                    }
                }
                Ok(Ok(()))
            }
            Command::GrantRole { user, grant, at } => {
                if let Some(registry) = &grant.registry
                    && self.registry(registry)?.is_none()
                {
                    return Ok(Err(not_found(format_args!("registry {registry}"))));
                }
                self.change_user(&user, |user| {
                    user.grants.insert(grant);
                    user.updated_at = at;
                    Ok(())
                })
            }
            Command::RevokeRole { user, grant, at } => {
                let name = user.clone();
                self.change_user(&user, |user| {
                    if !user.grants.remove(&grant) {
                        return Err(not_found(format_args!("grant {grant} of user {name}")));
                    }
                    user.updated_at = at;
                    Ok(())
                })
            }
            other => Ok(Err(CommandError::Invalid(format!(
                "not an identity command: {other:?}"
            )))),
        }
    }

    fn change_user(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut User) -> Result<(), CommandError>,
    ) -> Applied {
        let Some(mut user) = self.user(name)? else {
            return Ok(Err(not_found(format_args!("user {name}"))));
        };
        if let Err(refused) = change(&mut user) {
            return Ok(Err(refused));
        }
        self.put(Table::Users, &user_key(name), &user)?;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use arca_protocol::{Grant, Role, UserKind};

    use super::*;
    use crate::meta::StateRead;
    use crate::meta::testing::TestState;

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
        let state = TestState::new();
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
        assert!(
            state
                .view()
                .user("alice")
                .expect("read")
                .expect("alice")
                .grants
                .contains(&global)
        );
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
            state
                .view()
                .token_by_secret(&new_hash)
                .expect("read")
                .map(|t| t.id),
            Some("tok_alice".to_string())
        );

        // Deleting the user takes its tokens with it, and only those.
        state
            .apply(Command::DeleteUser {
                name: "alice".into(),
            })
            .expect("deleted");
        assert!(state.view().user("alice").expect("read").is_none());
        assert!(state.view().token("tok_alice").expect("read").is_none());
        assert!(state.view().token("tok_free").expect("read").is_some());
    }

    #[test]
    fn service_accounts_have_no_password_and_users_can_be_disabled() {
        let state = TestState::new();
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
        let ci = state.view().user("ci").expect("read").expect("ci");
        assert!(ci.disabled && ci.password_hash.is_none());
        assert_eq!(ci.updated_at, 3);
    }
}
