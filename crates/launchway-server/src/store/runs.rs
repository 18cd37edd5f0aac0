//! Repositories and the run queue.
//!
//! A run moves `queued` → `running` → `success` | `failure` | `cancelled` |
//! `waiting` (a job waits for an approval). Claiming is one conditional
//! `UPDATE`, so any number of workers (or servers on one PostgreSQL) never
//! start the same run twice.

use super::{Store, StoreError};
use sqlx::Row;
use std::collections::BTreeMap;

/// The run columns in [`run_from_row`]'s order.
macro_rules! run_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, repo, workflow, event, git_ref, sha, inputs, actor, status, message, \
             created_ms, started_ms, finished_ms, run_dir, rerun_of, base_ref, action, approved, \
             resume_dir FROM runs ",
            $rest
        )
    };
}

/// A registered repository; its webhook secret never leaves the store
/// unsealed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Repo {
    pub name: String,
    /// A local path to a git repository (or a clone the server keeps).
    pub location: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Success,
    Failure,
    Cancelled,
    Waiting,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failure => "failure",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Waiting => "waiting",
        }
    }

    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Success,
        RunStatus::Failure,
        RunStatus::Cancelled,
        RunStatus::Waiting,
    ];

    /// Whether nothing more will happen to the run.
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<RunStatus, String> {
        RunStatus::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown run status '{s}' (one of: {})",
                    RunStatus::ALL.map(RunStatus::as_str).join(", ")
                )
            })
    }
}

/// A run as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Run {
    pub id: i64,
    pub repo: String,
    pub workflow: String,
    pub event: String,
    pub git_ref: String,
    pub sha: String,
    pub inputs: BTreeMap<String, String>,
    pub actor: String,
    pub status: RunStatus,
    pub message: String,
    pub created_ms: i64,
    pub started_ms: i64,
    pub finished_ms: i64,
    /// Where the runner keeps the run's record and logs ('' until started).
    #[serde(skip)]
    pub run_dir: String,
    /// The run this one repeats (0 for none).
    pub rerun_of: i64,
    /// For pull requests: the branch merged into, and the activity type.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub base_ref: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub action: String,
    /// Environments approved for this run (comma-separated).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub approved: String,
    /// The earlier attempt whose finished jobs this one reuses.
    #[serde(skip)]
    pub resume_dir: String,
}

/// What a trigger asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub repo: String,
    pub workflow: String,
    pub event: String,
    pub git_ref: String,
    pub sha: String,
    pub inputs: BTreeMap<String, String>,
    pub actor: String,
    pub rerun_of: i64,
    pub base_ref: String,
    pub action: String,
    /// An earlier attempt's run directory whose successful jobs are reused
    /// (`rerun --failed`); empty to run everything.
    pub resume_dir: String,
}

/// An environment job that finished: what went where, approved by whom.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Deployment {
    pub run_id: i64,
    pub repo: String,
    pub environment: String,
    pub sha: String,
    pub git_ref: String,
    pub job: String,
    pub result: String,
    pub triggered_by: String,
    /// Empty when the environment needs no review.
    pub approved_by: String,
    pub at_ms: i64,
}

/// Filters for listing runs.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub repo: Option<String>,
    pub status: Option<RunStatus>,
    pub limit: i64,
}

fn run_from_row(r: &sqlx::any::AnyRow) -> Result<Run, StoreError> {
    let inputs: String = r.try_get(6)?;
    let status: String = r.try_get(8)?;
    Ok(Run {
        id: r.try_get(0)?,
        repo: r.try_get(1)?,
        workflow: r.try_get(2)?,
        event: r.try_get(3)?,
        git_ref: r.try_get(4)?,
        sha: r.try_get(5)?,
        inputs: serde_json::from_str(&inputs).map_err(|_| StoreError::Corrupt(inputs))?,
        actor: r.try_get(7)?,
        status: status.parse().map_err(|_| StoreError::Corrupt(status))?,
        message: r.try_get(9)?,
        created_ms: r.try_get(10)?,
        started_ms: r.try_get(11)?,
        finished_ms: r.try_get(12)?,
        run_dir: r.try_get(13)?,
        rerun_of: r.try_get(14)?,
        base_ref: r.try_get(15)?,
        action: r.try_get(16)?,
        approved: r.try_get(17)?,
        resume_dir: r.try_get(18)?,
    })
}

impl Store {
    pub async fn add_repo(
        &self,
        name: &str,
        location: &str,
        sealed_secret: &str,
        now_ms: i64,
    ) -> Result<Repo, StoreError> {
        if !crate::valid_name(name) {
            return Err(crate::name_refused("repository", name));
        }
        let done = sqlx::query(
            "INSERT INTO repos (name, location, webhook_secret, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(location)
        .bind(sealed_secret)
        .bind(now_ms)
        .execute(self.pool())
        .await;
        match done {
            Ok(_) => Ok(Repo {
                name: name.to_string(),
                location: location.to_string(),
                created_ms: now_ms,
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::RepoExists(name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a repository with its runs (their records, jobs, reviews
    /// and deployments), settings, waiting changes and roles, in one
    /// transaction; refused while one of its runs is queued, running or
    /// waiting. Returns the removed runs' directories (for the caller to
    /// delete).
    pub async fn delete_repo(&self, name: &str) -> Result<Vec<String>, StoreError> {
        if self.repo(name).await?.is_none() {
            return Err(StoreError::NoRepo(name.to_string()));
        }
        let mut tx = self.pool().begin().await?;
        let busy = sqlx::query(
            "SELECT COUNT(*) FROM runs WHERE repo = $1 AND status IN ('queued', 'running', 'waiting')",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        let busy: i64 = busy.try_get(0)?;
        if busy > 0 {
            return Err(StoreError::RepoBusy {
                repo: name.to_string(),
                runs: busy,
            });
        }
        let dirs = sqlx::query("SELECT run_dir FROM runs WHERE repo = $1 AND run_dir <> ''")
            .bind(name)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        for sql in [
            "DELETE FROM jobs WHERE run_id IN (SELECT id FROM runs WHERE repo = $1)",
            "DELETE FROM reviews WHERE run_id IN (SELECT id FROM runs WHERE repo = $1)",
            "DELETE FROM deployments WHERE run_id IN (SELECT id FROM runs WHERE repo = $1)",
            "DELETE FROM runs WHERE repo = $1",
            "DELETE FROM settings WHERE repo = $1",
            "DELETE FROM refs_seen WHERE repo = $1",
            "DELETE FROM schedule_fired WHERE repo = $1",
            "DELETE FROM changes WHERE repo = $1",
            "DELETE FROM repo_roles WHERE repo = $1",
            "DELETE FROM hook_deliveries WHERE repo = $1",
            "DELETE FROM repos WHERE name = $1",
        ] {
            sqlx::query(sql).bind(name).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(dirs)
    }

    /// Replaces a repository's sealed webhook secret.
    pub async fn set_webhook_secret(&self, name: &str, sealed: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE repos SET webhook_secret = $2 WHERE name = $1")
            .bind(name)
            .bind(sealed)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoRepo(name.to_string()));
        }
        Ok(())
    }

    pub async fn repos(&self) -> Result<Vec<Repo>, StoreError> {
        let rows = sqlx::query("SELECT name, location, created_ms FROM repos ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Repo {
                    name: r.try_get(0)?,
                    location: r.try_get(1)?,
                    created_ms: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// A repository and its sealed webhook secret.
    pub async fn repo(&self, name: &str) -> Result<Option<(Repo, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT name, location, created_ms, webhook_secret FROM repos WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok((
                Repo {
                    name: r.try_get(0)?,
                    location: r.try_get(1)?,
                    created_ms: r.try_get(2)?,
                },
                r.try_get(3)?,
            ))
        })
        .transpose()
    }

    /// Queues a run; returns it as stored.
    pub async fn enqueue(&self, new: &NewRun, now_ms: i64) -> Result<Run, StoreError> {
        let inputs = serde_json::to_string(&new.inputs).unwrap_or_else(|_| "{}".into());
        let row = sqlx::query(
            "INSERT INTO runs (repo, workflow, event, git_ref, sha, inputs, actor, status, message, \
             created_ms, started_ms, finished_ms, run_dir, rerun_of, base_ref, action, resume_dir) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', '', $8, 0, 0, '', $9, $10, $11, $12) \
             RETURNING id",
        )
        .bind(&new.repo)
        .bind(&new.workflow)
        .bind(&new.event)
        .bind(&new.git_ref)
        .bind(&new.sha)
        .bind(&inputs)
        .bind(&new.actor)
        .bind(now_ms)
        .bind(new.rerun_of)
        .bind(&new.base_ref)
        .bind(&new.action)
        .bind(&new.resume_dir)
        .fetch_one(self.pool())
        .await?;
        let id: i64 = row.try_get(0)?;
        self.run(id).await?.ok_or(StoreError::NoRun(id))
    }

    pub async fn run(&self, id: i64) -> Result<Option<Run>, StoreError> {
        let row = sqlx::query(run_select!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Newest first.
    pub async fn runs(&self, f: &RunFilter) -> Result<Vec<Run>, StoreError> {
        let limit = if f.limit <= 0 { 100 } else { f.limit.min(1000) };
        let rows = sqlx::query(run_select!(
            "WHERE ($1 = '' OR repo = $1) AND ($2 = '' OR status = $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(f.repo.clone().unwrap_or_default())
        .bind(f.status.map_or("", RunStatus::as_str))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Takes the oldest queued run for a worker, if any.
    /// Claims the oldest queued run for `owner` (a server process), under a
    /// lease until `lease_until_ms` that the owner renews while it runs.
    pub async fn claim_next(
        &self,
        now_ms: i64,
        owner: &str,
        lease_until_ms: i64,
    ) -> Result<Option<Run>, StoreError> {
        loop {
            let next =
                sqlx::query("SELECT id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1")
                    .fetch_optional(self.pool())
                    .await?;
            let Some(row) = next else {
                return Ok(None);
            };
            let id: i64 = row.try_get(0)?;
            let done = sqlx::query(
                "UPDATE runs SET status = 'running', started_ms = $2, owner = $3, lease_until_ms = $4 \
                 WHERE id = $1 AND status = 'queued'",
            )
            .bind(id)
            .bind(now_ms)
            .bind(owner)
            .bind(lease_until_ms)
            .execute(self.pool())
            .await?;
            // Another worker won this one: look again.
            if done.rows_affected() == 1 {
                return self.run(id).await;
            }
        }
    }

    pub async fn set_run_dir(&self, id: i64, dir: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET run_dir = $2 WHERE id = $1")
            .bind(id)
            .bind(dir)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn finish_run(
        &self,
        id: i64,
        status: RunStatus,
        message: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET status = $2, message = $3, finished_ms = $4 WHERE id = $1")
            .bind(id)
            .bind(status.as_str())
            .bind(message)
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends a run `owner` holds; `false` when it no longer does (its lease
    /// ran out and another server ended it: that verdict stands).
    pub async fn finish_owned_run(
        &self,
        id: i64,
        owner: &str,
        status: RunStatus,
        message: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET status = $2, message = $3, finished_ms = $4 \
             WHERE id = $1 AND owner = $5 AND status = 'running'",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(message)
        .bind(now_ms)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends the lease of every run `owner` is running.
    pub async fn renew_run_leases(
        &self,
        owner: &str,
        lease_until_ms: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET lease_until_ms = $2 WHERE owner = $1 AND status = 'running'",
        )
        .bind(owner)
        .bind(lease_until_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Cancels a run that is queued or waiting for an approval; `false`
    /// if it is running or over.
    pub async fn cancel_queued(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'cancelled', message = 'cancelled before it started', \
             finished_ms = $2 WHERE id = $1 AND status IN ('queued', 'waiting')",
        )
        .bind(id)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// At start: runs a previous server process left `running` were
    /// interrupted; they end as failures (their logs stay).
    pub async fn fail_interrupted(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.fail_interrupted_of(now_ms, "", "").await
    }

    /// As [`Store::fail_interrupted`], and also (at a server's start) the
    /// runs an earlier process of the same server `instance` held, lease or
    /// not: that process is gone. `me` is the new process's owner id.
    pub async fn fail_interrupted_of(
        &self,
        now_ms: i64,
        instance: &str,
        me: &str,
    ) -> Result<u64, StoreError> {
        // Only runs whose server stopped renewing their lease: another
        // server's live runs on the same database are left alone.
        let done = sqlx::query(
            "UPDATE runs SET status = 'failure', \
             message = 'the server stopped while the run was in progress', finished_ms = $1 \
             WHERE status = 'running' AND (lease_until_ms < $1 \
               OR ($2 <> '' AND owner LIKE $2 || ':%' AND owner <> $3))",
        )
        .bind(now_ms)
        .bind(instance)
        .bind(me)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// At a server's start: the runs an earlier process of the same server
    /// `instance` was running become `me`'s (under a new lease), to carry
    /// on with. Another server's runs are left alone.
    pub async fn take_over_runs(
        &self,
        instance: &str,
        me: &str,
        lease_until_ms: i64,
    ) -> Result<Vec<Run>, StoreError> {
        let rows = sqlx::query(run_select!(
            "WHERE status = 'running' AND owner LIKE $1 || ':%' AND owner <> $2 ORDER BY id"
        ))
        .bind(instance)
        .bind(me)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let run = run_from_row(row)?;
            let done = sqlx::query(
                "UPDATE runs SET owner = $2, lease_until_ms = $3 \
                 WHERE id = $1 AND status = 'running' AND owner LIKE $4 || ':%' AND owner <> $2",
            )
            .bind(run.id)
            .bind(me)
            .bind(lease_until_ms)
            .bind(instance)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 1 {
                out.push(run);
            }
        }
        Ok(out)
    }

    /// Ends the runs that have waited for an approval since before
    /// `cutoff_ms`: nobody reviewed them in time (GitHub: 30 days).
    /// Returns their ids.
    pub async fn expire_waiting(
        &self,
        cutoff_ms: i64,
        message: &str,
        now_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query("SELECT id FROM runs WHERE status = 'waiting' AND finished_ms < $1")
            .bind(cutoff_ms)
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::new();
        for row in rows {
            let id: i64 = row.try_get(0)?;
            let done = sqlx::query(
                "UPDATE runs SET status = 'failure', message = $2, finished_ms = $3 \
                 WHERE id = $1 AND status = 'waiting'",
            )
            .bind(id)
            .bind(message)
            .bind(now_ms)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 1 {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// A waiting run goes back to the queue with one more environment
    /// approved, to resume from its last attempt; `false` if it was not
    /// waiting (someone else acted first).
    pub async fn resume_approved(&self, id: i64, environment: &str) -> Result<bool, StoreError> {
        let Some(run) = self.run(id).await? else {
            return Err(StoreError::NoRun(id));
        };
        let mut approved: Vec<&str> = run.approved.split(',').filter(|e| !e.is_empty()).collect();
        if !approved.contains(&environment) {
            approved.push(environment);
        }
        let done = sqlx::query(
            "UPDATE runs SET status = 'queued', approved = $2, resume_dir = run_dir, message = '' \
             WHERE id = $1 AND status = 'waiting'",
        )
        .bind(id)
        .bind(approved.join(","))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a review of a pending deployment.
    pub async fn add_review(
        &self,
        run_id: i64,
        environment: &str,
        review: &crate::approval::Review,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reviews (run_id, environment, reviewer, approved, comment, at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(run_id)
        .bind(environment)
        .bind(&review.by)
        .bind(i32::from(review.approved))
        .bind(review.comment.clone().unwrap_or_default())
        .bind(review.at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Reviews of a run's deployment to an environment, oldest first.
    pub async fn reviews(
        &self,
        run_id: i64,
        environment: &str,
    ) -> Result<Vec<crate::approval::Review>, StoreError> {
        let rows = sqlx::query(
            "SELECT reviewer, approved, comment, at_ms FROM reviews \
             WHERE run_id = $1 AND environment = $2 ORDER BY id",
        )
        .bind(run_id)
        .bind(environment)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let comment: String = r.try_get(2)?;
                Ok(crate::approval::Review {
                    by: r.try_get(0)?,
                    approved: r.try_get::<i32, _>(1)? != 0,
                    comment: (!comment.is_empty()).then_some(comment),
                    at_ms: r.try_get(3)?,
                })
            })
            .collect()
    }

    pub async fn add_deployment(&self, d: &Deployment) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO deployments (run_id, repo, environment, sha, git_ref, job, result, \
             triggered_by, approved_by, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(d.run_id)
        .bind(&d.repo)
        .bind(&d.environment)
        .bind(&d.sha)
        .bind(&d.git_ref)
        .bind(&d.job)
        .bind(&d.result)
        .bind(&d.triggered_by)
        .bind(&d.approved_by)
        .bind(d.at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deployments, newest first.
    pub async fn deployments(
        &self,
        repo: Option<&str>,
        environment: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Deployment>, StoreError> {
        let rows = sqlx::query(
            "SELECT run_id, repo, environment, sha, git_ref, job, result, triggered_by, approved_by, \
             at_ms FROM deployments WHERE ($1 = '' OR repo = $1) AND ($2 = '' OR environment = $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(repo.unwrap_or(""))
        .bind(environment.unwrap_or(""))
        .bind(if limit <= 0 { 100 } else { limit.min(1000) })
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Deployment {
                    run_id: r.try_get(0)?,
                    repo: r.try_get(1)?,
                    environment: r.try_get(2)?,
                    sha: r.try_get(3)?,
                    git_ref: r.try_get(4)?,
                    job: r.try_get(5)?,
                    result: r.try_get(6)?,
                    triggered_by: r.try_get(7)?,
                    approved_by: r.try_get(8)?,
                    at_ms: r.try_get(9)?,
                })
            })
            .collect()
    }

    /// Finished runs older than `cutoff_ms` that still have files.
    pub async fn expired_runs(&self, cutoff_ms: i64) -> Result<Vec<Run>, StoreError> {
        let rows = sqlx::query(run_select!(
            "WHERE run_dir <> '' AND finished_ms > 0 AND finished_ms < $1 \
             AND status IN ('success', 'failure', 'cancelled') ORDER BY id"
        ))
        .bind(cutoff_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Forgets a run's files (its record stays).
    pub async fn clear_run_dir(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET run_dir = '', resume_dir = '' WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// How many runs are in each status (for `/metrics`).
    pub async fn run_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM runs GROUP BY status")
            .fetch_all(self.pool())
            .await?;
        let mut out: BTreeMap<String, i64> = RunStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
        for r in &rows {
            out.insert(r.try_get(0)?, r.try_get(1)?);
        }
        Ok(out)
    }
}
