//! Accounts: tokens that can be listed, expire and say when they were last
//! used; users whose role changes, who can be disabled or removed — never
//! leaving the server without an enabled admin.

use super::{Store, StoreError};
use crate::auth::Role;
use serde::Serialize;
use sqlx::Row;

/// A token as an admin (or its owner) sees it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub user: String,
    pub label: String,
    pub created_ms: i64,
    /// 0: never used.
    pub last_used_ms: i64,
    /// 0: never expires.
    pub expires_ms: i64,
    pub revoked: bool,
}

/// A user with what an admin manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub name: String,
    pub role: Role,
    pub disabled: bool,
}

fn token_from_row(r: &sqlx::any::AnyRow) -> Result<TokenInfo, StoreError> {
    Ok(TokenInfo {
        id: r.try_get(0)?,
        user: r.try_get(1)?,
        label: r.try_get(2)?,
        created_ms: r.try_get(3)?,
        last_used_ms: r.try_get(4)?,
        expires_ms: r.try_get(5)?,
        revoked: r.try_get::<i64, _>(6)? != 0,
    })
}

const TOKEN_COLUMNS: &str =
    "SELECT id, user_name, label, created_ms, last_used_ms, expires_ms, revoked FROM tokens ";

impl Store {
    /// Tokens, newest first: every user's, or one user's.
    pub async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = match user {
            Some(u) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{TOKEN_COLUMNS}WHERE user_name = $1 ORDER BY id DESC"
                )))
                .bind(u)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{TOKEN_COLUMNS}ORDER BY id DESC"
                )))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(token_from_row).collect()
    }

    pub async fn token(&self, id: i64) -> Result<Option<TokenInfo>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{TOKEN_COLUMNS}WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Users with their state, by name.
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query("SELECT name, role, disabled FROM users ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.try_get(1)?;
                Ok(Account {
                    name: r.try_get(0)?,
                    role: role.parse().map_err(|_| StoreError::Corrupt(role))?,
                    disabled: r.try_get::<i64, _>(2)? != 0,
                })
            })
            .collect()
    }

    async fn account(&self, name: &str) -> Result<Account, StoreError> {
        self.accounts()
            .await?
            .into_iter()
            .find(|a| a.name == name)
            .ok_or_else(|| StoreError::NoUser(name.to_string()))
    }

    /// Refuses a change that would leave no enabled admin.
    async fn keep_an_admin(&self, name: &str, after: Option<&Account>) -> Result<(), StoreError> {
        let enabled_admin = |a: &Account| a.role == Role::Admin && !a.disabled;
        let others = self
            .accounts()
            .await?
            .into_iter()
            .filter(|a| a.name != name && enabled_admin(a))
            .count();
        if others == 0 && !after.is_some_and(enabled_admin) {
            return Err(StoreError::Invalid(format!(
                "'{name}' is the last enabled admin; make another user admin first"
            )));
        }
        Ok(())
    }

    pub async fn set_role(&self, name: &str, role: Role) -> Result<(), StoreError> {
        let mut a = self.account(name).await?;
        a.role = role;
        self.keep_an_admin(name, Some(&a)).await?;
        sqlx::query("UPDATE users SET role = $2 WHERE name = $1")
            .bind(name)
            .bind(role.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A disabled user's tokens stop working at once (and work again when
    /// the user is enabled, unless revoked or expired meanwhile).
    pub async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<(), StoreError> {
        let mut a = self.account(name).await?;
        a.disabled = disabled;
        self.keep_an_admin(name, Some(&a)).await?;
        sqlx::query("UPDATE users SET disabled = $2 WHERE name = $1")
            .bind(name)
            .bind(i64::from(disabled))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes a user and their tokens (what they did stays in the audit
    /// log and the runs' records).
    pub async fn delete_user(&self, name: &str) -> Result<(), StoreError> {
        self.account(name).await?;
        self.keep_an_admin(name, None).await?;
        let mut tx = self.pool().begin().await?;
        for table in ["tokens", "identities", "group_members", "repo_roles"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE user_name = $1"
            )))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Says that `value` (an email, a forge login) is `user` when a push
    /// names it. One value, one user.
    pub async fn add_identity(
        &self,
        user: &str,
        kind: IdentityKind,
        value: &str,
    ) -> Result<(), StoreError> {
        self.account(user).await?;
        let done =
            sqlx::query("INSERT INTO identities (kind, value, user_name) VALUES ($1, $2, $3)")
                .bind(kind.as_str())
                .bind(kind.normalize(value))
                .bind(user)
                .execute(self.pool())
                .await;
        match done {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Invalid(
                format!("{} '{value}' already belongs to a user", kind.as_str()),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn remove_identity(
        &self,
        user: &str,
        kind: IdentityKind,
        value: &str,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("DELETE FROM identities WHERE kind = $1 AND value = $2 AND user_name = $3")
                .bind(kind.as_str())
                .bind(kind.normalize(value))
                .bind(user)
                .execute(self.pool())
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!(
                "'{user}' has no {} '{value}'",
                kind.as_str()
            )));
        }
        Ok(())
    }

    /// A user's identities as (kind, value).
    pub async fn identities(&self, user: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, value FROM identities WHERE user_name = $1 ORDER BY kind, value",
        )
        .bind(user)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The enabled user an identity belongs to.
    pub async fn user_for_identity(
        &self,
        kind: IdentityKind,
        value: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT i.user_name FROM identities i JOIN users u ON u.name = i.user_name \
             WHERE i.kind = $1 AND i.value = $2 AND u.disabled = 0",
        )
        .bind(kind.as_str())
        .bind(kind.normalize(value))
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    pub async fn add_group_member(&self, group: &str, user: &str) -> Result<(), StoreError> {
        if !crate::valid_name(group) {
            return Err(crate::name_refused("group", group));
        }
        self.account(user).await?;
        sqlx::query(
            "INSERT INTO group_members (group_name, user_name) SELECT $1, $2 \
             WHERE NOT EXISTS (SELECT 1 FROM group_members WHERE group_name = $1 AND user_name = $2)",
        )
        .bind(group)
        .bind(user)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn remove_group_member(&self, group: &str, user: &str) -> Result<(), StoreError> {
        let done =
            sqlx::query("DELETE FROM group_members WHERE group_name = $1 AND user_name = $2")
                .bind(group)
                .bind(user)
                .execute(self.pool())
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("'{user}' is not in '{group}'")));
        }
        Ok(())
    }

    /// Groups and their members, by name.
    pub async fn groups(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT group_name, user_name FROM group_members ORDER BY group_name, user_name",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for r in &rows {
            out.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        Ok(out)
    }

    /// The groups `user` is in.
    pub async fn groups_of(&self, user: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT group_name FROM group_members WHERE user_name = $1 ORDER BY group_name",
        )
        .bind(user)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}

impl Store {
    /// Gives `user` `role` in `repo` in place of their global role (an
    /// admin stays admin everywhere; a repository role is never admin).
    pub async fn set_repo_role(
        &self,
        repo: &str,
        user: &str,
        role: Role,
    ) -> Result<(), StoreError> {
        if role == Role::Admin {
            return Err(StoreError::Invalid(
                "a repository role is viewer, developer or deployer (admin is global)".into(),
            ));
        }
        self.account(user).await?;
        if self.repo(repo).await?.is_none() {
            return Err(StoreError::NoRepo(repo.to_string()));
        }
        sqlx::query("DELETE FROM repo_roles WHERE repo = $1 AND user_name = $2")
            .bind(repo)
            .bind(user)
            .execute(self.pool())
            .await?;
        sqlx::query("INSERT INTO repo_roles (repo, user_name, role) VALUES ($1, $2, $3)")
            .bind(repo)
            .bind(user)
            .bind(role.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn remove_repo_role(&self, repo: &str, user: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM repo_roles WHERE repo = $1 AND user_name = $2")
            .bind(repo)
            .bind(user)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!(
                "'{user}' has no role of its own in '{repo}'"
            )));
        }
        Ok(())
    }

    /// `user`'s role in `repo`, when it has one of its own.
    pub async fn repo_role(&self, repo: &str, user: &str) -> Result<Option<Role>, StoreError> {
        let row = sqlx::query("SELECT role FROM repo_roles WHERE repo = $1 AND user_name = $2")
            .bind(repo)
            .bind(user)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            let role: String = r.try_get(0)?;
            role.parse().map_err(|_| StoreError::Corrupt(role))
        })
        .transpose()
    }

    /// Users with a role of their own in `repo`.
    pub async fn repo_roles(&self, repo: &str) -> Result<Vec<(String, Role)>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_name, role FROM repo_roles WHERE repo = $1 ORDER BY user_name",
        )
        .bind(repo)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.try_get(1)?;
                Ok((
                    r.try_get(0)?,
                    role.parse().map_err(|_| StoreError::Corrupt(role))?,
                ))
            })
            .collect()
    }
}

/// What a push may name its pusher by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    /// A git email (case-insensitive).
    Email,
    /// A forge or machine login (`pusher.name`, `sender.login`).
    Login,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Email => "email",
            IdentityKind::Login => "login",
        }
    }

    fn normalize(self, value: &str) -> String {
        match self {
            IdentityKind::Email => value.trim().to_ascii_lowercase(),
            IdentityKind::Login => value.trim().to_string(),
        }
    }
}

impl std::str::FromStr for IdentityKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "email" => Ok(IdentityKind::Email),
            "login" => Ok(IdentityKind::Login),
            other => Err(format!("unknown identity kind '{other}' (email or login)")),
        }
    }
}

/// A run whose pusher maps to no user has this actor: it blocks nobody
/// from reviewing (it could be anyone), and says so.
pub const UNKNOWN_ACTOR: &str = "unknown";

impl Store {
    /// Revokes the token with this value (a web session ending); `Ok`
    /// whether or not it was live.
    pub async fn revoke_token_value(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET revoked = 1 WHERE digest = $1")
            .bind(crate::auth::token_digest(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A one-time invite for `user`, valid until `expires_ms`: the code is
    /// returned once, only its digest is kept.
    pub async fn create_invite(
        &self,
        user: &str,
        by: &str,
        expires_ms: i64,
    ) -> Result<String, StoreError> {
        let code = crate::auth::generate_token().map_err(|e| StoreError::Random(e.to_string()))?;
        let done = sqlx::query(
            "INSERT INTO invites (digest, user_name, created_by, created_ms, expires_ms, used_ms) \
             SELECT $1, name, $3, $4, $5, 0 FROM users WHERE name = $2 AND disabled = 0",
        )
        .bind(crate::auth::token_digest(&code))
        .bind(user)
        .bind(by)
        .bind(crate::now_ms())
        .bind(expires_ms)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoUser(user.to_string()));
        }
        Ok(code)
    }

    /// The user an unused, unexpired invite is for, without using it.
    pub async fn invite_user(&self, code: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT user_name FROM invites WHERE digest = $1 AND used_ms = 0 AND expires_ms > $2",
        )
        .bind(crate::auth::token_digest(code))
        .bind(crate::now_ms())
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Uses an invite (once: a second use, or an expired one, gets `None`)
    /// and issues the user's personal token: (user, token).
    pub async fn redeem_invite(&self, code: &str) -> Result<Option<(String, String)>, StoreError> {
        let now = crate::now_ms();
        let row = sqlx::query(
            "UPDATE invites SET used_ms = $2 \
             WHERE digest = $1 AND used_ms = 0 AND expires_ms > $2 RETURNING user_name",
        )
        .bind(crate::auth::token_digest(code))
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user: String = row.try_get(0)?;
        let (_, token) = self.create_token(&user, "personal token (invite)").await?;
        Ok(Some((user, token)))
    }
}
