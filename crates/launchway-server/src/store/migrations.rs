//! Schema versions, applied in order at start. Each step is written for
//! both backends; the applied version is kept in `launchway_schema`.

use super::{Backend, StoreError};
use sqlx::AnyPool;

struct Step {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
}

const STEPS: &[Step] = &[Step {
    version: 1,
    sqlite: "
        CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL);
        CREATE TABLE tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_name TEXT NOT NULL REFERENCES users(name),
            label TEXT NOT NULL,
            digest TEXT NOT NULL UNIQUE,
            revoked INTEGER NOT NULL);
        CREATE TABLE audit (
            seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT NOT NULL, source TEXT NOT NULL,
            outcome TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);",
    postgres: "
        CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL);
        CREATE TABLE tokens (
            id BIGSERIAL PRIMARY KEY,
            user_name TEXT NOT NULL REFERENCES users(name),
            label TEXT NOT NULL,
            digest TEXT NOT NULL UNIQUE,
            revoked INTEGER NOT NULL);
        CREATE TABLE audit (
            seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT NOT NULL, source TEXT NOT NULL,
            outcome TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);",
}];

pub(super) async fn apply(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS launchway_schema (version BIGINT PRIMARY KEY)")
        .execute(pool)
        .await?;
    for step in STEPS {
        let mut tx = pool.begin().await?;
        let done = sqlx::query("SELECT version FROM launchway_schema WHERE version = $1")
            .bind(step.version)
            .fetch_optional(&mut *tx)
            .await?;
        if done.is_some() {
            continue;
        }
        let sql = match backend {
            Backend::Sqlite => step.sqlite,
            Backend::Postgres => step.postgres,
        };
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO launchway_schema (version) VALUES ($1)")
            .bind(step.version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}
