//! Jobs on agents: the control plane never executes workflow code.
//!
//! A server run's scheduler hands each job specification to a
//! [`RemoteExecutor`], which queues it in the store (secrets sealed) and
//! waits. Agents long-poll [`Hub::claim`]; the one whose labels match gets
//! the job — with its secrets, in memory, over its authenticated request —
//! under a lease it renews with every report. Reports (log lines, the
//! job's record, annotations) are written into the run's directory as if
//! the job ran here, so followers, the record and the API see no
//! difference. A job whose agent stops reporting past its lease fails with
//! a reason; a cancelled run's jobs are told to cancel on their next report.

use crate::sealed::MasterKey;
use crate::store::Store;
use crate::store::agents::Job;
use indexmap::IndexMap;
use launchway_runner::cancel::Cancel;
use launchway_runner::commands::Annotation;
use launchway_runner::job::JobEnd;
use launchway_runner::mask::Masker;
use launchway_runner::record::{JobRecord, JobResult, RunEvent};
use launchway_runner::spec::{Executor, JobFuture, JobSink, JobSpecification, labels_match};
use launchway_runner::store::slug;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How agents are dealt with.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// How long a job stays an agent's without a report from it.
    pub lease: Duration,
    /// Labels of hosted runners mapped to agent labels: a job asking for
    /// the key needs an agent with every mapped label (none: any agent).
    pub aliases: IndexMap<String, Vec<String>>,
    /// How long a claim waits for a job before answering "nothing".
    pub poll: Duration,
}

impl Default for AgentSettings {
    fn default() -> Self {
        let mut aliases = IndexMap::new();
        for hosted in [
            "ubuntu-latest",
            "ubuntu-24.04",
            "ubuntu-22.04",
            "ubuntu-20.04",
            "self-hosted",
            "linux",
        ] {
            aliases.insert(hosted.to_string(), Vec::new());
        }
        AgentSettings {
            lease: Duration::from_secs(30),
            aliases,
            poll: Duration::from_secs(25),
        }
    }
}

/// What an agent receives when it claims a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub job: i64,
    /// The server's run number (for artifacts and logs).
    pub run: i64,
    pub spec: JobSpecification,
    /// Seconds between reports the server expects (the lease is longer).
    pub heartbeat_seconds: u64,
}

/// One thing an agent reports about its job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    Event { event: RunEvent },
    Record { record: Box<JobRecord> },
    Annotation { annotation: Annotation },
}

/// The server's answer to a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportAnswer {
    /// The job was cancelled: stop it the way Ctrl-C would.
    pub cancel: bool,
}

fn seal_scope(job_row_key: &str) -> String {
    format!("job/{job_row_key}")
}

/// A job some executor in this process waits for.
struct LiveJob {
    key: String,
    sink: Arc<dyn JobSink>,
    masker: Masker,
    run_dir: PathBuf,
    logs: Mutex<HashMap<String, std::fs::File>>,
    done: Mutex<Option<tokio::sync::oneshot::Sender<JobEnd>>>,
    /// The server's copy of the repository (for the source pack).
    git_root: PathBuf,
    /// The run's source folder on the server (for deploy steps).
    source_dir: PathBuf,
    sha: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("job {0} is not assigned to this agent")]
    NotYours(i64),
    /// The job is held but this server does not wait for it (yet): it is
    /// restarting, or the job belongs to another server's run.
    #[error("job {0} is not followed by this server yet; try again")]
    NotHere(i64),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Other(String),
}

/// Where agents and the executors waiting for them meet.
pub struct Hub {
    store: Store,
    key: Arc<MasterKey>,
    settings: AgentSettings,
    queued: tokio::sync::Notify,
    live: Mutex<HashMap<i64, Arc<LiveJob>>>,
    /// The server process whose runs' jobs this hub hands out.
    owner: String,
}

impl Hub {
    pub fn new(
        store: Store,
        key: Arc<MasterKey>,
        settings: AgentSettings,
        owner: String,
    ) -> Arc<Hub> {
        Arc::new(Hub {
            store,
            key,
            settings,
            queued: tokio::sync::Notify::new(),
            live: Mutex::new(HashMap::new()),
            owner,
        })
    }

    pub fn settings(&self) -> &AgentSettings {
        &self.settings
    }

    /// When a lease taken or renewed now runs out.
    fn lease_until(&self) -> i64 {
        crate::now_ms() + i64::try_from(self.settings.lease.as_millis()).unwrap_or(30_000)
    }

    fn live(&self, id: i64) -> Result<Arc<LiveJob>, AgentError> {
        self.live
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned())
            .ok_or(AgentError::NotHere(id))
    }

    /// The job `id` if `agent` holds it.
    async fn held(&self, id: i64, agent: i64) -> Result<Job, AgentError> {
        match self.store.job(id).await? {
            Some(j) if j.agent_id == agent && j.status == "assigned" => Ok(j),
            _ => Err(AgentError::NotYours(id)),
        }
    }

    /// Waits (up to the poll interval) for a job this agent may run and
    /// assigns it; `None` when there was none.
    pub async fn claim(
        &self,
        agent: i64,
        session: &str,
        labels: &[String],
    ) -> Result<Option<Assignment>, AgentError> {
        // An agent that started again lost what its earlier process ran.
        if !session.is_empty() {
            let name = match self.store.agent(agent).await? {
                Some(a) => a.name,
                None => agent.to_string(),
            };
            let lost = self
                .store
                .lose_jobs_of_earlier_session(
                    agent,
                    session,
                    &format!(
                        "agent '{name}' started again while running this job (its earlier process stopped); the job failed"
                    ),
                )
                .await?;
            if lost > 0 {
                eprintln!("agent '{name}' started again: {lost} job(s) it was running are lost");
            }
        }
        let deadline = tokio::time::Instant::now() + self.settings.poll;
        loop {
            let notified = self.queued.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(a) = self.try_claim(agent, session, labels).await? {
                return Ok(Some(a));
            }
            // Other servers on the same database queue jobs too: look
            // again now and then even without a wake-up.
            let tick = tokio::time::sleep(Duration::from_millis(500));
            tokio::select! {
                () = &mut notified => {}
                () = tick => {}
                () = tokio::time::sleep_until(deadline) => return Ok(None),
            }
        }
    }

    async fn try_claim(
        &self,
        agent: i64,
        session: &str,
        labels: &[String],
    ) -> Result<Option<Assignment>, AgentError> {
        for job in self.store.queued_jobs_of(&self.owner, 200).await? {
            // Not followed yet (a restarted server taking its runs back).
            if self.live(job.id).is_err()
                || !labels_match(&job.labels, labels, &self.settings.aliases)
            {
                continue;
            }
            if !self
                .store
                .assign_job(job.id, agent, session, crate::now_ms(), self.lease_until())
                .await?
            {
                continue;
            }
            let spec = serde_json::from_str::<JobSpecification>(&job.spec)
                .map_err(|e| e.to_string())
                .and_then(|mut spec| {
                    if !job.secrets.is_empty() {
                        let clear = self
                            .key
                            .open(
                                &seal_scope(&format!("{}/{}", job.run_id, job.key)),
                                &job.secrets,
                            )
                            .map_err(|e| format!("cannot open the job's secrets: {e}"))?;
                        spec.secrets = serde_json::from_slice(&clear).map_err(|e| e.to_string())?;
                    }
                    Ok(spec)
                });
            let spec = match spec {
                Ok(spec) => spec,
                Err(e) => {
                    // Fails closed, with the reason, rather than handing out
                    // a job without its secrets.
                    let json = serde_json::to_string(&JobEnd::failed()).unwrap_or_default();
                    self.store
                        .finish_job(job.id, 0, &json, &e, crate::now_ms())
                        .await?;
                    continue;
                }
            };
            return Ok(Some(Assignment {
                job: job.id,
                run: job.run_id,
                spec,
                heartbeat_seconds: (self.settings.lease.as_secs() / 4).max(1),
            }));
        }
        Ok(None)
    }

    /// Takes an agent's reports about its job; renews the lease.
    pub async fn report(
        &self,
        agent: i64,
        id: i64,
        reports: Vec<Report>,
    ) -> Result<ReportAnswer, AgentError> {
        let Some(cancel) = self.store.renew_job(id, agent, self.lease_until()).await? else {
            return Err(AgentError::NotYours(id));
        };
        let live = self.live(id)?;
        for r in reports {
            match r {
                Report::Event { event } => live.event(event),
                Report::Record { mut record } => {
                    // The agent reports its own job only.
                    record.key.clone_from(&live.key);
                    live.sink.job(*record);
                }
                Report::Annotation { mut annotation } => {
                    annotation.message = live.masker.mask(&annotation.message);
                    annotation.title = annotation.title.map(|t| live.masker.mask(&t));
                    annotation.file = annotation.file.map(|t| live.masker.mask(&t));
                    annotation.job.clone_from(&live.key);
                    live.sink.annotate(annotation);
                }
            }
        }
        Ok(ReportAnswer { cancel })
    }

    /// The agent's job ended.
    pub async fn finish(&self, agent: i64, id: i64, end: JobEnd) -> Result<(), AgentError> {
        self.held(id, agent).await?;
        // A restarted server that has not taken the job back yet: the agent
        // asks again (its reports first).
        self.live(id)?;
        let json = serde_json::to_string(&end).unwrap_or_default();
        if !self
            .store
            .finish_job(id, agent, &json, "", crate::now_ms())
            .await?
        {
            return Err(AgentError::NotYours(id));
        }
        if let Ok(live) = self.live(id)
            && let Ok(mut d) = live.done.lock()
            && let Some(tx) = d.take()
        {
            let _ = tx.send(end);
        }
        Ok(())
    }

    /// Where the agent's job's repository and run live on this server.
    pub async fn job_paths(&self, agent: i64, id: i64) -> Result<JobPaths, AgentError> {
        self.held(id, agent).await?;
        let live = self.live(id)?;
        Ok(JobPaths {
            git_root: live.git_root.clone(),
            source_dir: live.source_dir.clone(),
            sha: live.sha.clone(),
            run_dir: live.run_dir.clone(),
            key: live.key.clone(),
        })
    }

    /// A job's lease ran out: fail it with the reason, which it returns
    /// (`None` when the job had ended meanwhile).
    async fn expire(&self, job: &Job) -> Result<Option<String>, AgentError> {
        let who = match self.store.agent(job.agent_id).await? {
            Some(a) => format!("agent '{}'", a.name),
            None => format!("agent {}", job.agent_id),
        };
        let secs = self.settings.lease.as_secs();
        let message = if job.message.is_empty() {
            format!(
                "{who} stopped responding while running this job (no report for {secs} s); the job failed"
            )
        } else {
            job.message.clone()
        };
        let json = serde_json::to_string(&JobEnd::failed()).unwrap_or_default();
        let ended = self
            .store
            .finish_job(job.id, 0, &json, &message, crate::now_ms())
            .await?;
        Ok(ended.then_some(message))
    }
}

/// Paths of a job's run on the server.
#[derive(Debug, Clone)]
pub struct JobPaths {
    pub git_root: PathBuf,
    pub source_dir: PathBuf,
    pub sha: String,
    pub run_dir: PathBuf,
    pub key: String,
}

impl LiveJob {
    /// A reported event: log lines are appended (masked again) to the
    /// job's log file exactly as the agent wrote them, so step byte ranges
    /// match; everything goes on to the run's live display.
    fn event(&self, ev: RunEvent) {
        let ev = match ev {
            RunEvent::Log { line, .. } => {
                let line = self.masker.mask(&line);
                if let Ok(mut logs) = self.logs.lock() {
                    let f = match logs.entry(self.key.clone()) {
                        std::collections::hash_map::Entry::Occupied(o) => Some(o.into_mut()),
                        std::collections::hash_map::Entry::Vacant(v) => {
                            let dir = self.run_dir.join("logs");
                            let _ = launchway_runner::private::dir(&dir);
                            // Appended to: a restarted server carries on
                            // with the log its predecessor wrote.
                            launchway_runner::private::append(
                                &dir.join(format!("{}.log", slug(&self.key))),
                            )
                            .ok()
                            .map(|f| v.insert(f))
                        }
                    };
                    if let Some(f) = f {
                        let _ = writeln!(f, "{line}");
                    }
                }
                RunEvent::Log {
                    key: self.key.clone(),
                    line,
                }
            }
            RunEvent::JobStarted { name, .. } => RunEvent::JobStarted {
                key: self.key.clone(),
                name,
            },
            RunEvent::StepStarted { index, name, .. } => RunEvent::StepStarted {
                key: self.key.clone(),
                index,
                name: self.masker.mask(&name),
            },
            RunEvent::StepFinished {
                index,
                conclusion,
                outcome,
                duration_ms,
                ..
            } => RunEvent::StepFinished {
                key: self.key.clone(),
                index,
                conclusion,
                outcome,
                duration_ms,
            },
            RunEvent::JobFinished {
                name,
                result,
                duration_ms,
                ..
            } => RunEvent::JobFinished {
                key: self.key.clone(),
                name,
                result,
                duration_ms,
            },
            // Run-level events are the scheduler's, never an agent's.
            _ => return,
        };
        self.sink.event(ev);
    }
}

/// Executes a server run's jobs on agents.
pub struct RemoteExecutor {
    pub hub: Arc<Hub>,
    /// The server's run number.
    pub run_id: i64,
    /// Where the runner keeps run records and logs.
    pub runner_store: launchway_runner::store::Store,
    pub git_root: PathBuf,
    pub source_dir: PathBuf,
    /// The run is carried on after a restart: a job that has a row already
    /// is taken back (its end, or its agent still running it), not queued
    /// again.
    pub carry_on: bool,
}

impl Executor for RemoteExecutor {
    fn execute(&self, spec: JobSpecification, sink: Arc<dyn JobSink>, cancel: Cancel) -> JobFuture {
        let hub = self.hub.clone();
        let run_id = self.run_id;
        let run_dir = self.runner_store.run_dir(spec.run);
        let git_root = self.git_root.clone();
        let source_dir = self.source_dir.clone();
        let carry_on = self.carry_on;
        Box::pin(async move {
            match run_remote(
                hub,
                run_id,
                run_dir,
                git_root,
                source_dir,
                spec,
                sink.clone(),
                cancel,
                carry_on,
            )
            .await
            {
                Ok(end) => end,
                Err((key, e)) => {
                    sink.annotate(error(&key, &format!("cannot run the job on an agent: {e}")));
                    JobEnd::failed()
                }
            }
        })
    }
}

fn error(key: &str, message: &str) -> Annotation {
    Annotation::error(key, message)
}

fn placeholder(spec: &JobSpecification, result: JobResult, message: String) -> JobRecord {
    JobRecord {
        key: spec.key.clone(),
        id: spec.job.clone(),
        name: spec.key.clone(),
        ordinal: spec.ordinal.clone(),
        needs: Vec::new(),
        result,
        started_at: None,
        duration_ms: 0,
        steps: Vec::new(),
        outputs: IndexMap::new(),
        environment: spec.environment.clone(),
        matrix: spec.matrix.clone(),
        message: Some(message),
        summary: String::new(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_remote(
    hub: Arc<Hub>,
    run_id: i64,
    run_dir: PathBuf,
    git_root: PathBuf,
    source_dir: PathBuf,
    mut spec: JobSpecification,
    sink: Arc<dyn JobSink>,
    cancel: Cancel,
    carry_on: bool,
) -> Result<JobEnd, (String, String)> {
    let key = spec.key.clone();
    let fail = |e: &dyn std::fmt::Display| (key.clone(), e.to_string());
    let masker = Masker::new();
    for m in spec.secrets.values() {
        masker.add(m);
    }
    // The secrets travel sealed; the rest of the specification is stored
    // as it is.
    let part = std::mem::take(&mut spec.secrets);
    let sealed = hub
        .key
        .seal(
            &seal_scope(&format!("{run_id}/{}", spec.key)),
            &serde_json::to_vec(&part).map_err(|e| fail(&e))?,
        )
        .map_err(|e| fail(&e))?;
    drop(part);
    let spec_json = serde_json::to_string(&spec).map_err(|e| fail(&e))?;
    let labels = crate::store::agents::normalize_labels(&spec.runs_on).map_err(|e| fail(&e))?;
    let retries = spec.agent_retries;
    let wanted = if labels.is_empty() {
        "any agent".to_string()
    } else {
        format!("an agent with labels {}", labels.join(", "))
    };
    let mut attempt = 0u32;
    // After a restart: the job's newest row, if the earlier process had
    // queued it.
    let mut earlier = if carry_on {
        hub.store
            .latest_job(run_id, &spec.key)
            .await
            .map_err(|e| fail(&e))?
    } else {
        None
    };
    if let Some(job) = &earlier
        && job.status == "done"
    {
        return Ok(serde_json::from_str(&job.result).unwrap_or_else(|_| JobEnd::failed()));
    }
    loop {
        let id = match earlier.take() {
            Some(job) => {
                // Its agent could not reach this server meanwhile.
                hub.store
                    .extend_job_lease(job.id, hub.lease_until())
                    .await
                    .map_err(|e| fail(&e))?;
                job.id
            }
            None => {
                let id = hub
                    .store
                    .enqueue_job(
                        run_id,
                        &spec.key,
                        &labels,
                        &spec_json,
                        &sealed,
                        crate::now_ms(),
                    )
                    .await
                    .map_err(|e| fail(&e))?;
                sink.job(placeholder(
                    &spec,
                    JobResult::Running,
                    format!("queued: waiting for {wanted}"),
                ));
                id
            }
        };
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let live = Arc::new(LiveJob {
            key: spec.key.clone(),
            sink: sink.clone(),
            masker: masker.clone(),
            run_dir: run_dir.clone(),
            logs: Mutex::new(HashMap::new()),
            done: Mutex::new(Some(tx)),
            git_root: git_root.clone(),
            source_dir: source_dir.clone(),
            sha: spec.source.sha.clone(),
        });
        if let Ok(mut m) = hub.live.lock() {
            m.insert(id, live);
        }
        let waited = wait(&hub, id, &spec, &sink, &cancel, &mut rx).await;
        if let Ok(mut m) = hub.live.lock() {
            m.remove(&id);
        }
        match waited {
            Waited::End(end) => return Ok(end),
            Waited::Lost(message) if attempt < retries && !cancel.is_cancelled() => {
                attempt += 1;
                // The lost attempt's log is kept beside the next one's.
                let log = run_dir
                    .join("logs")
                    .join(format!("{}.log", slug(&spec.key)));
                let _ = std::fs::rename(&log, log.with_extension(format!("attempt{attempt}.log")));
                let mut a = error(
                    &spec.key,
                    &format!(
                        "{message}; queued again (attempt {} of {}, LAUNCHWAY_AGENT_RETRIES)",
                        attempt + 1,
                        retries + 1
                    ),
                );
                a.level = launchway_runner::commands::Level::Warning;
                sink.annotate(a);
            }
            Waited::Lost(message) => {
                sink.annotate(error(&spec.key, &message));
                sink.job(placeholder(&spec, JobResult::Failure, message));
                sink.event(RunEvent::JobFinished {
                    key: spec.key.clone(),
                    name: spec.key.clone(),
                    result: JobResult::Failure,
                    duration_ms: 0,
                });
                return Ok(JobEnd::failed());
            }
        }
    }
}

/// How waiting for a job ended.
enum Waited {
    End(JobEnd),
    /// Its agent stopped reporting: the reason.
    Lost(String),
}

async fn wait(
    hub: &Arc<Hub>,
    id: i64,
    spec: &JobSpecification,
    sink: &Arc<dyn JobSink>,
    cancel: &Cancel,
    rx: &mut tokio::sync::oneshot::Receiver<JobEnd>,
) -> Waited {
    hub.queued.notify_waiters();
    let mut cancel_sent = false;
    loop {
        tokio::select! {
            end = &mut *rx => {
                return Waited::End(end.unwrap_or_else(|_| JobEnd::failed()));
            }
            () = cancel.cancelled(), if !cancel_sent => {
                cancel_sent = true;
                let _ = hub.store.request_job_cancel(id).await;
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let Ok(Some(job)) = hub.store.job(id).await else {
            continue;
        };
        match job.status.as_str() {
            "queued" if cancel_sent => {
                // Never handed out: it ends here.
                let end = JobEnd::cancelled();
                let json = serde_json::to_string(&end).unwrap_or_default();
                if let Ok(true) = hub
                    .store
                    .finish_job(id, 0, &json, "cancelled while queued", crate::now_ms())
                    .await
                {
                    sink.job(placeholder(
                        spec,
                        JobResult::Cancelled,
                        "cancelled before an agent took it".into(),
                    ));
                    sink.event(RunEvent::JobFinished {
                        key: spec.key.clone(),
                        name: spec.key.clone(),
                        result: JobResult::Cancelled,
                        duration_ms: 0,
                    });
                    return Waited::End(end);
                }
            }
            "assigned" if job.lease_until_ms < crate::now_ms() => {
                if let Ok(Some(message)) = hub.expire(&job).await {
                    return Waited::Lost(message);
                }
            }
            "done" => {
                // Ended elsewhere (another server, or a race with finish).
                if let Ok(end) = rx.try_recv() {
                    return Waited::End(end);
                }
                if !job.message.is_empty() {
                    sink.annotate(error(&spec.key, &job.message));
                }
                return Waited::End(
                    serde_json::from_str(&job.result).unwrap_or_else(|_| JobEnd::failed()),
                );
            }
            _ => {}
        }
    }
}
