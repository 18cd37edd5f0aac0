//! Agents and the job queue.
//!
//! An admin issues a registration token (`lwr_…`); an agent exchanges it
//! for its own credential (`lwa_…`), stored as a digest like API tokens. A
//! job moves `queued` → `assigned` (to one agent, under a lease the agent
//! renews) → `done`. Claiming is one conditional `UPDATE`, so a job is
//! assigned exactly once however many agents and servers ask. A job's
//! secrets are sealed in its row while it waits and erased when it ends.

use super::{Store, StoreError};
use crate::auth;
use sqlx::Row;

/// Registration tokens start with this, agent credentials with `lwa_`.
pub const REGISTRATION_PREFIX: &str = "lwr_";
pub const AGENT_PREFIX: &str = "lwa_";

/// An agent as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Agent {
    pub id: i64,
    pub name: String,
    pub labels: Vec<String>,
    pub version: String,
    pub disabled: bool,
    pub created_ms: i64,
    pub last_contact_ms: i64,
}

/// A job row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Job {
    pub id: i64,
    pub run_id: i64,
    pub key: String,
    pub labels: Vec<String>,
    /// The job specification as JSON, without its secrets.
    #[serde(skip)]
    pub spec: String,
    /// The secrets, sealed (empty once the job ended).
    #[serde(skip)]
    pub secrets: String,
    pub status: String,
    pub agent_id: i64,
    pub lease_until_ms: i64,
    pub cancel_requested: bool,
    /// How it ended (a `JobEnd` as JSON), once `done`.
    pub result: String,
    pub message: String,
    pub created_ms: i64,
    pub claimed_ms: i64,
    pub finished_ms: i64,
}

macro_rules! job_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, run_id, job_key, labels, spec, secrets, status, agent_id, lease_until_ms, \
             cancel_requested, result, message, created_ms, claimed_ms, finished_ms FROM jobs ",
            $rest
        )
    };
}

fn labels_of(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn job_from_row(r: &sqlx::any::AnyRow) -> Result<Job, StoreError> {
    Ok(Job {
        id: r.try_get(0)?,
        run_id: r.try_get(1)?,
        key: r.try_get(2)?,
        labels: labels_of(&r.try_get::<String, _>(3)?),
        spec: r.try_get(4)?,
        secrets: r.try_get(5)?,
        status: r.try_get(6)?,
        agent_id: r.try_get(7)?,
        lease_until_ms: r.try_get(8)?,
        cancel_requested: r.try_get::<i64, _>(9)? != 0,
        result: r.try_get(10)?,
        message: r.try_get(11)?,
        created_ms: r.try_get(12)?,
        claimed_ms: r.try_get(13)?,
        finished_ms: r.try_get(14)?,
    })
}

fn agent_from_row(r: &sqlx::any::AnyRow) -> Result<Agent, StoreError> {
    Ok(Agent {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        labels: labels_of(&r.try_get::<String, _>(2)?),
        version: r.try_get(3)?,
        disabled: r.try_get::<i64, _>(4)? != 0,
        created_ms: r.try_get(5)?,
        last_contact_ms: r.try_get(6)?,
    })
}

const AGENT_COLUMNS: &str =
    "SELECT id, name, labels, version, disabled, created_ms, last_contact_ms FROM agents ";

fn token(prefix: &str) -> Result<String, StoreError> {
    let t = auth::generate_token().map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(format!("{prefix}{}", t.trim_start_matches("lwt_")))
}

/// A label list as stored: lower-case, comma-free, sorted, unique.
pub fn normalize_labels(labels: &[String]) -> Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = Vec::new();
    for l in labels {
        let l = l.trim().to_ascii_lowercase();
        if l.is_empty() {
            continue;
        }
        if l.len() > 64 || l.contains(',') || l.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!("label '{l}' is not valid")));
        }
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out.sort();
    Ok(out)
}

impl Store {
    /// Issues a registration token valid until `expires_ms`; its clear
    /// text is returned once.
    pub async fn create_registration(
        &self,
        label: &str,
        by: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(i64, String), StoreError> {
        let t = token(REGISTRATION_PREFIX)?;
        let row = sqlx::query(
            "INSERT INTO agent_registrations (digest, label, created_by, created_ms, expires_ms, revoked) \
             VALUES ($1, $2, $3, $4, $5, 0) RETURNING id",
        )
        .bind(auth::token_digest(&t))
        .bind(label)
        .bind(by)
        .bind(now_ms)
        .bind(expires_ms)
        .fetch_one(self.pool())
        .await?;
        Ok((row.try_get(0)?, t))
    }

    /// Registers an agent with a live registration token; returns it and
    /// its credential (shown once). With `replace`, an agent of that name
    /// gets the new credential (the old one stops working) — what an agent
    /// that lost its credential, or a server's own local agent, does.
    /// Whether a registration token may register an agent now.
    pub async fn registration_is_live(&self, token: &str, now_ms: i64) -> Result<bool, StoreError> {
        let live = sqlx::query(
            "SELECT id FROM agent_registrations WHERE digest = $1 AND revoked = 0 AND expires_ms > $2",
        )
        .bind(auth::token_digest(token))
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await?;
        Ok(live.is_some())
    }

    pub async fn register_agent(
        &self,
        registration: &str,
        name: &str,
        labels: &[String],
        version: &str,
        replace: bool,
        now_ms: i64,
    ) -> Result<(Agent, String), StoreError> {
        let live = sqlx::query(
            "SELECT id FROM agent_registrations WHERE digest = $1 AND revoked = 0 AND expires_ms > $2",
        )
        .bind(auth::token_digest(registration))
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await?;
        if live.is_none() {
            return Err(StoreError::Unauthorized);
        }
        if !crate::valid_name(name) {
            return Err(crate::name_refused("agent", name));
        }
        let labels = normalize_labels(labels)?;
        let credential = token(AGENT_PREFIX)?;
        if replace {
            let done = sqlx::query(
                "UPDATE agents SET labels = $2, digest = $3, version = $4, last_contact_ms = $5 \
                 WHERE name = $1 AND disabled = 0",
            )
            .bind(name)
            .bind(labels.join(","))
            .bind(auth::token_digest(&credential))
            .bind(version)
            .bind(now_ms)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 1 {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{AGENT_COLUMNS}WHERE name = $1"
                )))
                .bind(name)
                .fetch_one(self.pool())
                .await?;
                return Ok((agent_from_row(&row)?, credential));
            }
        }
        let row = sqlx::query(
            "INSERT INTO agents (name, labels, digest, version, disabled, created_ms, last_contact_ms) \
             VALUES ($1, $2, $3, $4, 0, $5, $5) RETURNING id",
        )
        .bind(name)
        .bind(labels.join(","))
        .bind(auth::token_digest(&credential))
        .bind(version)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::AgentExists(name.to_string())
            }
            e => StoreError::Db(e),
        })?;
        let id: i64 = row.try_get(0)?;
        Ok((
            Agent {
                id,
                name: name.to_string(),
                labels,
                version: version.to_string(),
                disabled: false,
                created_ms: now_ms,
                last_contact_ms: now_ms,
            },
            credential,
        ))
    }

    /// The enabled agent a credential belongs to.
    pub async fn authenticate_agent(&self, credential: &str) -> Result<Option<Agent>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, labels, version, disabled, created_ms, last_contact_ms FROM agents \
             WHERE digest = $1 AND disabled = 0",
        )
        .bind(auth::token_digest(credential))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    /// Records that an agent was heard from (and its current labels and
    /// version, which it states on every claim).
    pub async fn touch_agent(
        &self,
        id: i64,
        labels: Option<&[String]>,
        version: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        match (labels, version) {
            (Some(l), Some(v)) => {
                let l = normalize_labels(l)?;
                sqlx::query(
                    "UPDATE agents SET last_contact_ms = $2, labels = $3, version = $4 WHERE id = $1",
                )
                .bind(id)
                .bind(now_ms)
                .bind(l.join(","))
                .bind(v)
                .execute(self.pool())
                .await?;
            }
            _ => {
                sqlx::query("UPDATE agents SET last_contact_ms = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now_ms)
                    .execute(self.pool())
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{AGENT_COLUMNS}ORDER BY id")))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(agent_from_row).collect()
    }

    pub async fn agent(&self, id: i64) -> Result<Option<Agent>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{AGENT_COLUMNS}WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    /// Disables (or enables) an agent: a disabled agent's credential no
    /// longer authenticates.
    pub async fn set_agent_disabled(&self, id: i64, disabled: bool) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE agents SET disabled = $2 WHERE id = $1")
            .bind(id)
            .bind(i64::from(disabled))
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoAgent(id));
        }
        Ok(())
    }

    /// Queues a job for an agent.
    pub async fn enqueue_job(
        &self,
        run_id: i64,
        key: &str,
        labels: &[String],
        spec: &str,
        sealed_secrets: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO jobs (run_id, job_key, labels, spec, secrets, status, agent_id, \
             lease_until_ms, cancel_requested, result, message, created_ms, claimed_ms, finished_ms) \
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, 0, 0, '', '', $6, 0, 0) RETURNING id",
        )
        .bind(run_id)
        .bind(key)
        .bind(labels.join(","))
        .bind(spec)
        .bind(sealed_secrets)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Queued jobs of the runs `owner` (a server process) is running,
    /// oldest first: a server hands out only the jobs it follows, so an
    /// agent reports to the server that waits for its job.
    pub async fn queued_jobs_of(&self, owner: &str, limit: i64) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(job_select!(
            "WHERE status = 'queued' AND run_id IN \
             (SELECT id FROM runs WHERE owner = $1 AND status = 'running') ORDER BY id LIMIT $2"
        ))
        .bind(owner)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// The newest job row of a run's job instance (a lost attempt is
    /// followed by its retry).
    pub async fn latest_job(&self, run_id: i64, key: &str) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query(job_select!(
            "WHERE run_id = $1 AND job_key = $2 ORDER BY id DESC LIMIT 1"
        ))
        .bind(run_id)
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// The jobs `agent` took in an earlier `session` (it started again, so
    /// it no longer runs them) are lost at once: their lease ends now, with
    /// `message` as the reason. Returns how many.
    pub async fn lose_jobs_of_earlier_session(
        &self,
        agent: i64,
        session: &str,
        message: &str,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_until_ms = 0, message = $3 \
             WHERE agent_id = $1 AND status = 'assigned' AND agent_session <> $2 AND message = ''",
        )
        .bind(agent)
        .bind(session)
        .bind(message)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Gives a held job's agent until `lease_until_ms` to report again (a
    /// restarted server takes its jobs back: their agents could not reach
    /// it meanwhile).
    pub async fn extend_job_lease(&self, id: i64, lease_until_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET lease_until_ms = $2 \
             WHERE id = $1 AND status = 'assigned' AND lease_until_ms < $2 AND message = ''",
        )
        .bind(id)
        .bind(lease_until_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Assigns a queued job to an agent; `false` when someone else got it.
    pub async fn assign_job(
        &self,
        id: i64,
        agent: i64,
        session: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'assigned', agent_id = $2, claimed_ms = $3, lease_until_ms = $4, \
             agent_session = $5 WHERE id = $1 AND status = 'queued' AND cancel_requested = 0",
        )
        .bind(id)
        .bind(agent)
        .bind(now_ms)
        .bind(lease_until_ms)
        .bind(session)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query(job_select!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Jobs of a run, oldest first.
    pub async fn jobs_of_run(&self, run_id: i64) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(job_select!("WHERE run_id = $1 ORDER BY id"))
            .bind(run_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Jobs an agent holds now.
    pub async fn assigned_jobs(&self, agent: i64) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(job_select!(
            "WHERE agent_id = $1 AND status = 'assigned' ORDER BY id"
        ))
        .bind(agent)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Renews the lease of a job its agent is running; `None` when the job
    /// is no longer this agent's, else whether its cancellation was asked.
    pub async fn renew_job(
        &self,
        id: i64,
        agent: i64,
        lease_until_ms: i64,
    ) -> Result<Option<bool>, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_until_ms = $3 WHERE id = $1 AND agent_id = $2 AND status = 'assigned'",
        )
        .bind(id)
        .bind(agent)
        .bind(lease_until_ms)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(self.job(id).await?.map(|j| j.cancel_requested))
    }

    /// Ends a job with its result (a `JobEnd` as JSON) and erases its
    /// secrets; `false` when it had ended already. `agent` 0: whoever held it.
    pub async fn finish_job(
        &self,
        id: i64,
        agent: i64,
        result: &str,
        message: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'done', result = $3, message = $4, finished_ms = $5, secrets = '' \
             WHERE id = $1 AND status <> 'done' AND ($2 = 0 OR agent_id = $2)",
        )
        .bind(id)
        .bind(agent)
        .bind(result)
        .bind(message)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Asks for a job's cancellation (its agent learns it on its next
    /// heartbeat; a queued job is never handed out).
    pub async fn request_job_cancel(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends the jobs of runs that are no longer running (a server that
    /// stopped left them), erasing their secrets.
    pub async fn end_orphaned_jobs(&self, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'done', secrets = '', finished_ms = $1, \
             message = 'the run ended while the job was queued or running' \
             WHERE status <> 'done' AND run_id IN (SELECT id FROM runs WHERE status <> 'running')",
        )
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
