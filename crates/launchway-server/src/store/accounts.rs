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
        sqlx::query("DELETE FROM tokens WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
