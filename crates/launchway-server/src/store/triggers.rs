//! What the pollers remember: the refs each repository had at the last
//! poll, and which scheduled minutes already fired (so two servers, or a
//! restart within the minute, never start a schedule twice).

use super::{Store, StoreError};
use sqlx::Row;
use std::collections::BTreeMap;

impl Store {
    /// ref → sha at the last poll (empty before the first one).
    pub async fn refs_seen(&self, repo: &str) -> Result<BTreeMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT ref, sha FROM refs_seen WHERE repo = $1")
            .bind(repo)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Replaces what was seen with `refs`.
    pub async fn set_refs_seen(
        &self,
        repo: &str,
        refs: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM refs_seen WHERE repo = $1")
            .bind(repo)
            .execute(&mut *tx)
            .await?;
        for (r, sha) in refs {
            sqlx::query("INSERT INTO refs_seen (repo, ref, sha) VALUES ($1, $2, $3)")
                .bind(repo)
                .bind(r)
                .bind(sha)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims a scheduled minute for a workflow; `false` if it already fired.
    pub async fn claim_schedule(
        &self,
        repo: &str,
        workflow: &str,
        minute: i64,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("INSERT INTO schedule_fired (repo, workflow, minute) VALUES ($1, $2, $3)")
                .bind(repo)
                .bind(workflow)
                .bind(minute)
                .execute(self.pool())
                .await;
        match done {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a webhook delivery; `false` when it was seen before (within
    /// a week: older ids are forgotten).
    pub async fn first_delivery(
        &self,
        id: &str,
        repo: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM hook_deliveries WHERE at_ms < $1")
            .bind(now_ms - 7 * 24 * 3600 * 1000)
            .execute(self.pool())
            .await?;
        let done = sqlx::query("INSERT INTO hook_deliveries (id, repo, at_ms) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(repo)
            .bind(now_ms)
            .execute(self.pool())
            .await;
        match done {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
