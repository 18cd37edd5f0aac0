//! The server's database: SQLite by default, PostgreSQL for teams, behind
//! one API. Queries are written once in the SQL both understand (`$N`
//! placeholders, in order of first use); only the schema differs per backend.

pub mod accounts;
pub mod agents;
pub mod changes;
mod migrations;
mod runs;
pub mod settings;
mod triggers;

pub use runs::{Deployment, NewRun, Repo, Run, RunFilter, RunStatus};

use crate::audit::{self, Entry, Event};
use crate::auth::{self, Role};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

/// The audit columns in [`entry_from_row`]'s order, as a literal so queries
/// stay static strings.
macro_rules! audit_select {
    ($rest:literal) => {
        concat!(
            "SELECT seq, at_ms, actor, action, target, source, outcome, prev, hash, mac FROM audit ",
            $rest
        )
    };
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL '{0}' is not supported: use sqlite://PATH or postgres://USER@HOST/DB")]
    Url(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("user '{0}' already exists")]
    UserExists(String),
    #[error("no user '{0}'")]
    NoUser(String),
    #[error("no token {0}")]
    NoToken(i64),
    #[error("repository '{0}' is already registered")]
    RepoExists(String),
    #[error("no repository '{0}'")]
    NoRepo(String),
    #[error("no run {0}")]
    NoRun(i64),
    #[error("the database holds an unknown role '{0}'")]
    Corrupt(String),
    #[error("no randomness available: {0}")]
    Random(String),
    #[error("an agent named '{0}' is already registered")]
    AgentExists(String),
    #[error("no agent {0}")]
    NoAgent(i64),
    #[error("the registration token is unknown, expired or revoked")]
    Unauthorized,
    #[error("{0}")]
    Invalid(String),
    #[error("'{repo}' has {runs} run(s) queued, running or waiting: cancel them first")]
    RepoBusy { repo: String, runs: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A user as the API sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Signs audit entries and keeps the checkpoint (set once the master
    /// key is known).
    anchor: std::sync::Arc<std::sync::OnceLock<crate::audit::Anchor>>,
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let mut options = AnyPoolOptions::new().max_connections(8);
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    // Writers wait for each other instead of failing.
                    sqlx::query("PRAGMA busy_timeout = 10000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let store = Store {
            pool,
            backend,
            anchor: Default::default(),
        };
        migrations::apply(&store.pool, backend).await?;
        Ok(store)
    }

    /// A value the servers of this database share (`None` when unset).
    pub async fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM server_meta WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<String, _>(0))
            .transpose()
            .map_err(Into::into)
    }

    /// Sets a shared value unless one is set already; returns the value
    /// that holds (the first writer's).
    pub async fn meta_init(&self, name: &str, value: &str) -> Result<String, StoreError> {
        let _ = sqlx::query(
            "INSERT INTO server_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(self.meta(name).await?.unwrap_or_default())
    }

    /// Whether the database answers, for `/healthz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// On a first start (no users yet), creates `admin` and returns its
    /// token — the only time it is shown.
    pub async fn bootstrap_admin(&self) -> Result<Option<String>, StoreError> {
        if !self.users().await?.is_empty() {
            return Ok(None);
        }
        self.add_user("admin", Role::Admin).await?;
        let (_, token) = self.create_token("admin", "first start").await?;
        Ok(Some(token))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn add_user(&self, name: &str, role: Role) -> Result<User, StoreError> {
        if !crate::valid_name(name) {
            return Err(crate::name_refused("user", name));
        }
        // Names runs use for actors that are no user.
        if ["unknown", "schedule", "poll", "system"].contains(&name.to_ascii_lowercase().as_str()) {
            return Err(StoreError::Invalid(format!(
                "'{name}' is reserved (runs use it for actors that are no user)"
            )));
        }
        let done = sqlx::query("INSERT INTO users (name, role) VALUES ($1, $2)")
            .bind(name)
            .bind(role.as_str())
            .execute(&self.pool)
            .await;
        match done {
            Ok(_) => Ok(User {
                name: name.to_string(),
                role,
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::UserExists(name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query("SELECT name, role FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Issues a token for `user`; the clear text is returned once and only
    /// its digest is stored.
    pub async fn create_token(&self, user: &str, label: &str) -> Result<(i64, String), StoreError> {
        self.create_token_until(user, label, 0).await
    }

    /// As [`Store::create_token`], valid until `expires_ms` (0: never).
    pub async fn create_token_until(
        &self,
        user: &str,
        label: &str,
        expires_ms: i64,
    ) -> Result<(i64, String), StoreError> {
        let token = auth::generate_token().map_err(|e| StoreError::Random(e.to_string()))?;
        let row = sqlx::query(
            "INSERT INTO tokens (user_name, label, digest, revoked, created_ms, last_used_ms, expires_ms) \
             SELECT name, $2, $3, 0, $4, 0, $5 FROM users WHERE name = $1 RETURNING id",
        )
        .bind(user)
        .bind(label)
        .bind(auth::token_digest(&token))
        .bind(crate::now_ms())
        .bind(expires_ms)
        .fetch_optional(&self.pool)
        .await?;
        let row = row.ok_or_else(|| StoreError::NoUser(user.to_string()))?;
        Ok((row.try_get::<i64, _>(0)?, token))
    }

    pub async fn revoke_token(&self, id: i64) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE tokens SET revoked = 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoToken(id));
        }
        Ok(())
    }

    /// The user a presented token belongs to, if it is live.
    /// Live means: not revoked, not expired, its user not disabled.
    /// Records when it was last used (to the minute).
    pub async fn authenticate(&self, token: &str) -> Result<Option<User>, StoreError> {
        let now = crate::now_ms();
        let digest = auth::token_digest(token);
        let row = sqlx::query(
            "SELECT u.name, u.role, t.id, t.last_used_ms FROM tokens t \
             JOIN users u ON u.name = t.user_name \
             WHERE t.digest = $1 AND t.revoked = 0 AND u.disabled = 0 \
             AND (t.expires_ms = 0 OR t.expires_ms > $2)",
        )
        .bind(&digest)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        // A write only once a minute per token, not on every request.
        let last: i64 = row.try_get(3)?;
        if last < now - 60_000 {
            sqlx::query("UPDATE tokens SET last_used_ms = $2 WHERE id = $1")
                .bind(row.try_get::<i64, _>(2)?)
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        user_from_row(&row).map(Some)
    }

    /// Appends to the audit chain. Concurrent writers race for the next
    /// sequence number; the loser sees a unique violation and retries.
    pub async fn audit(&self, at_ms: i64, event: Event) -> Result<Entry, StoreError> {
        let event = event.bounded();
        loop {
            let last = self.last_audit().await?;
            // A signed log stays signed: without the key, nothing is added.
            if self.anchor.get().is_none() && last.as_ref().is_some_and(|e| !e.mac.is_empty()) {
                return Err(StoreError::Invalid(
                    "the audit log is signed and this process has no master key (--master-key-file, LAUNCHWAY_MASTER_KEY or master.key in the data dir); nothing was changed".into(),
                ));
            }
            let mut entry = audit::append(last.as_ref(), at_ms, event.clone());
            if let Some(a) = self.anchor.get() {
                entry.mac = a.mac(&entry.hash);
            }
            let done = sqlx::query(
                "INSERT INTO audit (seq, at_ms, actor, action, target, source, outcome, prev, hash, mac) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(entry.seq as i64)
            .bind(entry.at_ms)
            .bind(&entry.event.actor)
            .bind(&entry.event.action)
            .bind(&entry.event.target)
            .bind(&entry.event.source)
            .bind(&entry.event.outcome)
            .bind(&entry.prev)
            .bind(&entry.hash)
            .bind(&entry.mac)
            .execute(&self.pool)
            .await;
            match done {
                Ok(_) => {
                    if let Some(a) = self.anchor.get() {
                        a.advance(&entry);
                    }
                    return Ok(entry);
                }
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The newest audit entry (its hash is what an operator compares).
    pub async fn audit_head(&self) -> Result<Option<Entry>, StoreError> {
        self.last_audit().await
    }

    async fn last_audit(&self) -> Result<Option<Entry>, StoreError> {
        let row = sqlx::query(audit_select!("ORDER BY seq DESC LIMIT 1"))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(entry_from_row).transpose()?)
    }

    /// From now on, audit entries are signed and the checkpoint kept
    /// (once per store; later calls change nothing).
    pub fn anchor_audit(&self, anchor: crate::audit::Anchor) {
        let _ = self.anchor.set(anchor);
    }

    /// The anchor audit entries are signed with, if set.
    pub fn audit_anchor(&self) -> Option<&crate::audit::Anchor> {
        self.anchor.get()
    }

    /// The whole audit log, oldest first.
    pub async fn audit_log(&self) -> Result<Vec<Entry>, StoreError> {
        let rows = sqlx::query(audit_select!("ORDER BY seq"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(entry_from_row).collect::<Result<_, _>>()?)
    }

    /// Direct SQL, for tests that play the attacker.
    #[doc(hidden)]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

fn entry_from_row(r: &sqlx::any::AnyRow) -> Result<Entry, sqlx::Error> {
    Ok(Entry {
        seq: r.try_get::<i64, _>(0)? as u64,
        at_ms: r.try_get(1)?,
        event: Event {
            actor: r.try_get(2)?,
            action: r.try_get(3)?,
            target: r.try_get(4)?,
            source: r.try_get(5)?,
            outcome: r.try_get(6)?,
        },
        prev: r.try_get(7)?,
        hash: r.try_get(8)?,
        mac: r.try_get(9)?,
    })
}

fn user_from_row(r: &sqlx::any::AnyRow) -> Result<User, StoreError> {
    let name: String = r.try_get(0)?;
    let role: String = r.try_get(1)?;
    let role = role.parse().map_err(|_| StoreError::Corrupt(role))?;
    Ok(User { name, role })
}
