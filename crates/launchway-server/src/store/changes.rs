//! Environment changes asked for through the server (deploy, rollback,
//! promote): committed at once, or held for the target environment's
//! reviewers and committed when one approves.

use super::{Store, StoreError};
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub id: i64,
    pub repo: String,
    pub environment: String,
    /// `deploy`, `rollback` or `promote`.
    pub kind: String,
    /// The change's parameters (release, settings, revision, source environment).
    pub params: serde_json::Value,
    pub requested_by: String,
    /// `waiting`, `committed`, `rejected` or `failed`.
    pub status: String,
    pub reviewed_by: String,
    pub comment: String,
    /// The commit made, or why none could be.
    pub result: String,
    pub created_ms: i64,
    pub decided_ms: i64,
}

/// The columns, in the order [`row`] reads them (a macro so queries stay
/// static strings).
macro_rules! columns {
    () => {
        "id, repo, environment, kind, params, requested_by, status, reviewed_by, \
         comment, result, created_ms, decided_ms"
    };
}

fn row(r: &sqlx::any::AnyRow) -> Result<Change, StoreError> {
    let params: String = r.try_get(4)?;
    Ok(Change {
        id: r.try_get(0)?,
        repo: r.try_get(1)?,
        environment: r.try_get(2)?,
        kind: r.try_get(3)?,
        params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
        requested_by: r.try_get(5)?,
        status: r.try_get(6)?,
        reviewed_by: r.try_get(7)?,
        comment: r.try_get(8)?,
        result: r.try_get(9)?,
        created_ms: r.try_get(10)?,
        decided_ms: r.try_get(11)?,
    })
}

impl Store {
    /// Records a change, waiting; returns its id.
    pub async fn add_change(
        &self,
        repo: &str,
        environment: &str,
        kind: &str,
        params: &serde_json::Value,
        requested_by: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO changes (repo, environment, kind, params, requested_by, status, \
             reviewed_by, comment, result, created_ms, decided_ms) \
             VALUES ($1, $2, $3, $4, $5, 'waiting', '', '', '', $6, 0) RETURNING id",
        )
        .bind(repo)
        .bind(environment)
        .bind(kind)
        .bind(params.to_string())
        .bind(requested_by)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn change(&self, id: i64) -> Result<Option<Change>, StoreError> {
        let r = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM changes WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        r.as_ref().map(row).transpose()
    }

    /// The newest changes first, optionally only those in `status`.
    pub async fn changes(&self, status: Option<&str>) -> Result<Vec<Change>, StoreError> {
        let rows = match status {
            Some(s) => {
                sqlx::query(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM changes WHERE status = $1 ORDER BY id DESC LIMIT 200"
                ))
                .bind(s)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM changes ORDER BY id DESC LIMIT 200"
                ))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(row).collect()
    }

    /// Decides a waiting change; `false` when it was no longer waiting
    /// (someone decided first).
    pub async fn decide_change(
        &self,
        id: i64,
        status: &str,
        reviewed_by: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE changes SET status = $1, reviewed_by = $2, comment = $3, decided_ms = $4 \
             WHERE id = $5 AND status = 'waiting'",
        )
        .bind(status)
        .bind(reviewed_by)
        .bind(comment)
        .bind(now_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records what an approved change did (`committed` + the commit, or
    /// `failed` + why).
    pub async fn finish_change(
        &self,
        id: i64,
        status: &str,
        result: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE changes SET status = $1, result = $2 WHERE id = $3")
            .bind(status)
            .bind(result)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
