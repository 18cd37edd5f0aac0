//! Per-repository and per-environment secrets and variables. Secrets are
//! stored sealed (the store never sees them in clear); variables as they
//! are. Environment `""` means the whole repository.

use super::{Store, StoreError};
use sqlx::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Secret,
    Variable,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Variable => "variable",
        }
    }
}

/// A secret or variable as listed (for secrets, `value` is the sealed form
/// and never leaves the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub environment: String,
    pub name: String,
    pub value: String,
    pub updated_ms: i64,
}

impl Store {
    /// Creates or replaces a setting.
    pub async fn put_setting(
        &self,
        repo: &str,
        environment: &str,
        kind: Kind,
        name: &str,
        value: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM settings WHERE repo = $1 AND environment = $2 AND kind = $3 AND name = $4",
        )
        .bind(repo)
        .bind(environment)
        .bind(kind.as_str())
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO settings (repo, environment, kind, name, value, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(repo)
        .bind(environment)
        .bind(kind.as_str())
        .bind(name)
        .bind(value)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `false` when there was no such setting.
    pub async fn delete_setting(
        &self,
        repo: &str,
        environment: &str,
        kind: Kind,
        name: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM settings WHERE repo = $1 AND environment = $2 AND kind = $3 AND name = $4",
        )
        .bind(repo)
        .bind(environment)
        .bind(kind.as_str())
        .bind(name)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A repository's settings of one kind, by environment then name.
    pub async fn settings(&self, repo: &str, kind: Kind) -> Result<Vec<Setting>, StoreError> {
        let rows = sqlx::query(
            "SELECT environment, name, value, updated_ms FROM settings \
             WHERE repo = $1 AND kind = $2 ORDER BY environment, name",
        )
        .bind(repo)
        .bind(kind.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Setting {
                    environment: r.try_get(0)?,
                    name: r.try_get(1)?,
                    value: r.try_get(2)?,
                    updated_ms: r.try_get(3)?,
                })
            })
            .collect()
    }
}
