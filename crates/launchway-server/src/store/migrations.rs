//! Schema versions, applied in order at start, each in a transaction; the
//! applied versions are kept in `launchway_schema`.

use super::{Backend, StoreError};
use sqlx::AnyPool;

/// A schema step. `{serial}` stands for each backend's auto-numbered key
/// column type; everything else is SQL both accept.
struct Step {
    version: i64,
    sql: &'static str,
}

const STEPS: &[Step] = &[
    Step {
        version: 1,
        sql: "
        CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL);
        CREATE TABLE tokens (
            id {serial},
            user_name TEXT NOT NULL REFERENCES users(name),
            label TEXT NOT NULL,
            digest TEXT NOT NULL UNIQUE,
            revoked INTEGER NOT NULL);
        CREATE TABLE audit (
            seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT NOT NULL, source TEXT NOT NULL,
            outcome TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);",
    },
    Step {
        version: 2,
        sql: "
        CREATE TABLE repos (
            name TEXT PRIMARY KEY,
            location TEXT NOT NULL,
            webhook_secret TEXT NOT NULL,
            created_ms BIGINT NOT NULL);
        CREATE TABLE runs (
            id {serial},
            repo TEXT NOT NULL REFERENCES repos(name),
            workflow TEXT NOT NULL,
            event TEXT NOT NULL,
            git_ref TEXT NOT NULL,
            base_ref TEXT NOT NULL,
            action TEXT NOT NULL,
            sha TEXT NOT NULL,
            inputs TEXT NOT NULL,
            actor TEXT NOT NULL,
            status TEXT NOT NULL,
            message TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            started_ms BIGINT NOT NULL,
            finished_ms BIGINT NOT NULL,
            run_dir TEXT NOT NULL,
            rerun_of BIGINT NOT NULL);
        CREATE INDEX runs_status ON runs (status, id);
        CREATE INDEX runs_repo ON runs (repo, id);",
    },
    Step {
        version: 3,
        sql: "
        ALTER TABLE runs ADD COLUMN approved TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN resume_dir TEXT NOT NULL DEFAULT '';
        CREATE TABLE reviews (
            id {serial},
            run_id BIGINT NOT NULL REFERENCES runs(id),
            environment TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            approved INTEGER NOT NULL,
            comment TEXT NOT NULL,
            at_ms BIGINT NOT NULL);
        CREATE INDEX reviews_run ON reviews (run_id, environment, id);
        CREATE TABLE deployments (
            id {serial},
            run_id BIGINT NOT NULL REFERENCES runs(id),
            repo TEXT NOT NULL,
            environment TEXT NOT NULL,
            sha TEXT NOT NULL,
            git_ref TEXT NOT NULL,
            job TEXT NOT NULL,
            result TEXT NOT NULL,
            triggered_by TEXT NOT NULL,
            approved_by TEXT NOT NULL,
            at_ms BIGINT NOT NULL);
        CREATE INDEX deployments_env ON deployments (repo, environment, id);",
    },
    Step {
        version: 4,
        sql: "
        CREATE TABLE settings (
            repo TEXT NOT NULL REFERENCES repos(name),
            environment TEXT NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_ms BIGINT NOT NULL,
            PRIMARY KEY (repo, environment, kind, name));",
    },
    Step {
        version: 5,
        sql: "
        CREATE TABLE refs_seen (
            repo TEXT NOT NULL REFERENCES repos(name),
            ref TEXT NOT NULL,
            sha TEXT NOT NULL,
            PRIMARY KEY (repo, ref));
        CREATE TABLE schedule_fired (
            repo TEXT NOT NULL,
            workflow TEXT NOT NULL,
            minute BIGINT NOT NULL,
            PRIMARY KEY (repo, workflow, minute));",
    },
    Step {
        version: 6,
        sql: "
        CREATE TABLE changes (
            id {serial},
            repo TEXT NOT NULL REFERENCES repos(name),
            environment TEXT NOT NULL,
            kind TEXT NOT NULL,
            params TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            status TEXT NOT NULL,
            reviewed_by TEXT NOT NULL,
            comment TEXT NOT NULL,
            result TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            decided_ms BIGINT NOT NULL);
        CREATE INDEX changes_status ON changes (status, id);",
    },
    Step {
        version: 7,
        sql: "
        CREATE TABLE agent_registrations (
            id {serial},
            digest TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            expires_ms BIGINT NOT NULL,
            revoked INTEGER NOT NULL);
        CREATE TABLE agents (
            id {serial},
            name TEXT NOT NULL UNIQUE,
            labels TEXT NOT NULL,
            digest TEXT NOT NULL UNIQUE,
            version TEXT NOT NULL,
            disabled INTEGER NOT NULL,
            created_ms BIGINT NOT NULL,
            last_contact_ms BIGINT NOT NULL);
        CREATE TABLE jobs (
            id {serial},
            run_id BIGINT NOT NULL REFERENCES runs(id),
            job_key TEXT NOT NULL,
            labels TEXT NOT NULL,
            spec TEXT NOT NULL,
            secrets TEXT NOT NULL,
            status TEXT NOT NULL,
            agent_id BIGINT NOT NULL,
            lease_until_ms BIGINT NOT NULL,
            cancel_requested INTEGER NOT NULL,
            result TEXT NOT NULL,
            message TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            claimed_ms BIGINT NOT NULL,
            finished_ms BIGINT NOT NULL);
        CREATE INDEX jobs_status ON jobs (status, id);
        CREATE INDEX jobs_agent ON jobs (agent_id, status);",
    },
    Step {
        version: 8,
        sql: "
        ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN lease_until_ms BIGINT NOT NULL DEFAULT 0;",
    },
    Step {
        version: 9,
        sql: "CREATE TABLE server_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
    },
    Step {
        version: 10,
        // Which run of the agent process took the job: one that started
        // again no longer runs it.
        sql: "ALTER TABLE jobs ADD COLUMN agent_session TEXT NOT NULL DEFAULT '';",
    },
    Step {
        version: 11,
        // Webhook deliveries seen (`X-GitHub-Delivery`): a redelivery runs
        // nothing twice.
        sql: "CREATE TABLE hook_deliveries (id TEXT PRIMARY KEY, repo TEXT NOT NULL, at_ms BIGINT NOT NULL);
        CREATE INDEX hook_deliveries_at ON hook_deliveries (at_ms);",
    },
    Step {
        version: 12,
        // Each audit entry's HMAC under a key outside the database.
        sql: "ALTER TABLE audit ADD COLUMN mac TEXT NOT NULL DEFAULT '';",
    },
    Step {
        version: 13,
        // Tokens that expire and say when they were last used; users an
        // admin can disable.
        sql: "
        ALTER TABLE tokens ADD COLUMN created_ms BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE tokens ADD COLUMN last_used_ms BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE tokens ADD COLUMN expires_ms BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;",
    },
    Step {
        version: 14,
        // Who a push was (a forge login, an email) as a Launchway user;
        // teams that can be named as reviewers.
        sql: "
        CREATE TABLE identities (
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            user_name TEXT NOT NULL REFERENCES users(name),
            PRIMARY KEY (kind, value));
        CREATE TABLE group_members (
            group_name TEXT NOT NULL,
            user_name TEXT NOT NULL REFERENCES users(name),
            PRIMARY KEY (group_name, user_name));",
    },
    Step {
        version: 15,
        // A user's role in one repository, in place of their global one.
        sql: "
        CREATE TABLE repo_roles (
            repo TEXT NOT NULL REFERENCES repos(name),
            user_name TEXT NOT NULL REFERENCES users(name),
            role TEXT NOT NULL,
            PRIMARY KEY (repo, user_name));",
    },
    Step {
        version: 16,
        // One-time links an admin gives a new user, who makes a personal
        // token with it (only digests are kept).
        sql: "
        CREATE TABLE invites (
            digest TEXT PRIMARY KEY,
            user_name TEXT NOT NULL REFERENCES users(name),
            created_by TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            expires_ms BIGINT NOT NULL,
            used_ms BIGINT NOT NULL);",
    },
];

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
        let serial = match backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        // Built only from the constants above.
        let sql = sqlx::AssertSqlSafe(step.sql.replace("{serial}", serial));
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO launchway_schema (version) VALUES ($1)")
            .bind(step.version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}
