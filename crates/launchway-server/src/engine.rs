//! Runs queued runs: a fixed number of workers claim runs from the store
//! and execute them with the workflow runner, each in its own run
//! directory under the server's data dir, where logs are written as they
//! happen (so a follower, or a restarted server, reads them from disk).

use crate::store::{NewRun, Run, RunStatus, Store};
use launchway_runner::cancel::Cancel;
use launchway_runner::prepare;
use launchway_runner::record::{RunEvent, RunStatus as RunnerStatus};
use launchway_runner::source::Source;
use launchway_runner::{RunConfig, run_workflow};
use launchway_workflow::{Event, Workflow};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Vars = indexmap::IndexMap<String, String>;

/// How the engine runs things.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where run directories go (`<dir>/runs/N`).
    pub data_dir: PathBuf,
    /// Runs executed at the same time.
    pub parallel_runs: usize,
    /// Jobs at the same time within one run.
    pub jobs_per_run: usize,
    /// How jobs are handed to agents.
    pub agents: crate::agents::AgentSettings,
    /// How long a run stays this server's without it renewing the lease
    /// (renewed at a third of it); past it, any server on the database
    /// ends the run as failed.
    pub run_lease: Duration,
    /// This server's identity across restarts (kept in its data dir): at
    /// start, the runs an earlier process of it held are over at once.
    pub instance: String,
    /// How long a run may wait for an approval before it ends as failed.
    pub approval_timeout: Duration,
}

/// GitHub's: a deployment review waits 30 days.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

pub struct Engine {
    store: Store,
    cfg: EngineConfig,
    runner_store: launchway_runner::store::Store,
    /// Cancellation handles of the runs in progress here.
    running: Mutex<HashMap<i64, Cancel>>,
    wake: tokio::sync::Notify,
    /// Set at shutdown: workers take no new run.
    stopping: std::sync::atomic::AtomicBool,
    /// This server process, as the owner of the runs it executes.
    owner: String,
    metrics: Arc<crate::api::metrics::Metrics>,
    key: Arc<crate::sealed::MasterKey>,
    /// Where `launchway/deploy` steps deploy (the server's reconcilers).
    deployer: std::sync::OnceLock<Arc<dyn launchway_runner::deployer::Deployer>>,
    /// Where jobs run: always on agents, through this hub — the control
    /// plane executes no workflow step itself.
    hub: Arc<crate::agents::Hub>,
}

/// What a secret is sealed under: its repository, environment and name.
pub fn secret_scope(repo: &str, environment: &str, name: &str) -> String {
    if environment.is_empty() {
        format!("repo/{repo}/secret/{name}")
    } else {
        format!("repo/{repo}/env/{environment}/secret/{name}")
    }
}

/// Removes the files (logs, artifacts) of finished runs older than
/// `days`; the runs' records stay. Returns how many runs were pruned.
pub async fn prune(store: &Store, days: u64) -> Result<usize, String> {
    let cutoff =
        crate::now_ms() - i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    let runs = store
        .expired_runs(cutoff)
        .await
        .map_err(|e| e.to_string())?;
    for run in &runs {
        let dir = std::path::Path::new(&run.run_dir);
        // Only ever a directory the runner made: `…/runs/<number>`.
        let shaped = dir.parent().and_then(|p| p.file_name()) == Some(std::ffi::OsStr::new("runs"))
            && dir
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if shaped && dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        store
            .clear_run_dir(run.id)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(runs.len())
}

/// Prunes once a day (and at start).
pub async fn retention_loop(store: Store, days: u64) {
    loop {
        match prune(&store, days).await {
            Ok(0) => {}
            Ok(n) => eprintln!("retention: removed the files of {n} run(s) older than {days} days"),
            Err(e) => eprintln!("retention: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(86_400)).await;
    }
}

/// The workflow files of a commit that load without errors, and a line
/// for each one that does not (its first error, with its position).
pub fn workflows(source: &Source) -> (Vec<(String, Workflow)>, Vec<String>) {
    let w = prepare::workflows(source);
    (
        w.ok,
        w.broken.iter().map(prepare::Broken::first_line).collect(),
    )
}

/// The workflow files of a commit that an event triggers.
pub fn triggered(source: &Source, event: &Event) -> (Vec<(String, Workflow)>, Vec<String>) {
    let w = prepare::workflows(source);
    let problems = w.broken.iter().map(prepare::Broken::first_line).collect();
    (w.triggered(event), problems)
}

impl Engine {
    pub fn new(store: Store, cfg: EngineConfig, key: crate::sealed::MasterKey) -> Arc<Engine> {
        let key = Arc::new(key);
        let owner = {
            let mut b = [0u8; 8];
            let _ = getrandom::fill(&mut b);
            format!("{}:{}-{}", cfg.instance, std::process::id(), crate::hex(&b))
        };
        let hub = crate::agents::Hub::new(
            store.clone(),
            key.clone(),
            cfg.agents.clone(),
            owner.clone(),
        );
        Arc::new(Engine {
            runner_store: launchway_runner::store::Store::new(cfg.data_dir.clone()),
            store,
            cfg,
            running: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            owner,
            metrics: Arc::default(),
            key,
            deployer: std::sync::OnceLock::new(),
            hub,
        })
    }

    /// Where agents claim this engine's jobs.
    pub fn hub(&self) -> Arc<crate::agents::Hub> {
        self.hub.clone()
    }

    /// Where runs' deploy steps go.
    pub fn deployer(&self) -> Option<Arc<dyn launchway_runner::deployer::Deployer>> {
        self.deployer.get().cloned()
    }

    /// An environment's secrets in clear, for its replicas.
    pub async fn environment_secrets(
        &self,
        repo: &str,
        environment: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, String> {
        let (_, _, env_secrets, _) = self.settings(repo).await?;
        Ok(env_secrets
            .get(environment)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    /// Sets where runs' `launchway/deploy` steps deploy (once).
    pub fn set_deployer(&self, d: Arc<dyn launchway_runner::deployer::Deployer>) {
        let _ = self.deployer.set(d);
    }

    /// Where runs, and clones of repositories registered by URL, live.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.cfg.data_dir
    }

    pub fn key(&self) -> Arc<crate::sealed::MasterKey> {
        self.key.clone()
    }

    /// The repository's secrets and variables: repository-wide ones, and
    /// per environment.
    #[allow(clippy::type_complexity)]
    async fn settings(
        &self,
        repo: &str,
    ) -> Result<
        (
            Vars,
            Vars,
            indexmap::IndexMap<String, Vars>,
            indexmap::IndexMap<String, Vars>,
        ),
        String,
    > {
        use crate::store::settings::Kind;
        let (mut secrets, mut vars) = (Vars::new(), Vars::new());
        let (mut env_secrets, mut env_vars) =
            (indexmap::IndexMap::new(), indexmap::IndexMap::new());
        for s in self
            .store
            .settings(repo, Kind::Secret)
            .await
            .map_err(|e| e.to_string())?
        {
            let clear = self
                .key
                .open(&secret_scope(repo, &s.environment, &s.name), &s.value)
                .map_err(|e| format!("secret {}: {e}", s.name))?;
            let clear = String::from_utf8_lossy(&clear).into_owned();
            if s.environment.is_empty() {
                secrets.insert(s.name, clear);
            } else {
                env_secrets
                    .entry(s.environment)
                    .or_insert_with(Vars::new)
                    .insert(s.name, clear);
            }
        }
        for v in self
            .store
            .settings(repo, Kind::Variable)
            .await
            .map_err(|e| e.to_string())?
        {
            if v.environment.is_empty() {
                vars.insert(v.name, v.value);
            } else {
                env_vars
                    .entry(v.environment)
                    .or_insert_with(Vars::new)
                    .insert(v.name, v.value);
            }
        }
        Ok((secrets, vars, env_secrets, env_vars))
    }

    pub fn metrics(&self) -> Arc<crate::api::metrics::Metrics> {
        self.metrics.clone()
    }

    /// Where the runner keeps a run's record and logs.
    pub fn runner_store(&self) -> &launchway_runner::store::Store {
        &self.runner_store
    }

    /// When a run lease taken or renewed now runs out.
    fn lease_until(&self) -> i64 {
        crate::now_ms() + i64::try_from(self.cfg.run_lease.as_millis()).unwrap_or(30_000)
    }

    /// Ends runs whose server stopped renewing their lease (it died), and
    /// the jobs of runs that are over.
    async fn sweep(&self) -> Result<(), crate::store::StoreError> {
        let n = self.store.fail_interrupted(crate::now_ms()).await?;
        if n > 0 {
            eprintln!("{n} run(s) were in progress on a server that stopped; marked failed");
        }
        self.store.end_orphaned_jobs(crate::now_ms()).await?;
        let timeout = self.cfg.approval_timeout;
        let waited = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let secs = timeout.as_secs();
        let took = if secs >= 86_400 && secs.is_multiple_of(86_400) {
            format!("{} days", secs / 86_400)
        } else {
            format!("{secs} s")
        };
        let expired = self
            .store
            .expire_waiting(
                crate::now_ms().saturating_sub(waited),
                &format!(
                    "nobody reviewed the deployment within {took} (the approval timeout); it did not happen"
                ),
                crate::now_ms(),
            )
            .await?;
        for id in expired {
            eprintln!("run {id}: its approval wait expired after {took}");
        }
        Ok(())
    }

    /// Starts the workers. Runs this server's previous process left in
    /// progress are carried on; another server's runs whose lease lapsed
    /// are marked failed, now and whenever a lease lapses — several servers
    /// can share one database.
    pub async fn start(self: &Arc<Engine>) -> Result<(), crate::store::StoreError> {
        // What this server's previous process was running is carried on:
        // jobs that ended meanwhile keep their results, jobs still running
        // on agents are waited for, the rest runs now.
        let mine = self
            .store
            .take_over_runs(&self.cfg.instance, &self.owner, self.lease_until())
            .await?;
        if !mine.is_empty() {
            eprintln!(
                "carrying on with {} run(s) in progress when the server stopped",
                mine.len()
            );
        }
        for run in mine {
            let me = self.clone();
            tokio::spawn(async move { me.run_to_end(run, true).await });
        }
        let n = self
            .store
            .fail_interrupted_of(crate::now_ms(), &self.cfg.instance, &self.owner)
            .await?;
        if n > 0 {
            eprintln!("{n} run(s) were in progress when the server stopped; marked failed");
        }
        self.sweep().await?;
        let me = self.clone();
        tokio::spawn(async move {
            let every = (me.cfg.run_lease / 3).max(Duration::from_millis(200));
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = me.store.renew_run_leases(&me.owner, me.lease_until()).await {
                    eprintln!("renewing run leases: {e}");
                }
                if let Err(e) = me.sweep().await {
                    eprintln!("ending runs of stopped servers: {e}");
                }
            }
        });
        for _ in 0..self.cfg.parallel_runs.max(1) {
            let me = self.clone();
            tokio::spawn(async move { me.work().await });
        }
        Ok(())
    }

    /// Tells the workers there is something in the queue.
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Queues a run and wakes a worker.
    pub async fn enqueue(&self, new: &NewRun) -> Result<Run, crate::store::StoreError> {
        let run = self.store.enqueue(new, crate::now_ms()).await?;
        tracing::info!(
            target: "launchway::run",
            "run {} queued: {} {} on {} ({}, by {})",
            run.id,
            run.repo,
            run.workflow,
            run.git_ref,
            run.event,
            run.actor
        );
        self.wake();
        Ok(run)
    }

    /// Cancels a queued or running run; `false` when it had already ended.
    pub async fn cancel(&self, id: i64) -> Result<bool, crate::store::StoreError> {
        if self.store.cancel_queued(id, crate::now_ms()).await? {
            return Ok(true);
        }
        let handle = self.running.lock().ok().and_then(|m| m.get(&id).cloned());
        match handle {
            Some(c) => {
                c.cancel();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Runs in progress in this process.
    pub fn in_progress(&self) -> usize {
        self.running.lock().map_or(0, |m| m.len())
    }

    /// Stops taking runs and cancels the ones in progress the way Ctrl-C
    /// does (their `always()` steps run); waits up to `grace` for them to
    /// end. Returns how many were still going.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let handles: Vec<Cancel> = self
            .running
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for c in &handles {
            c.cancel();
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.in_progress() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.in_progress()
    }

    async fn work(self: Arc<Engine>) {
        loop {
            if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            // Register interest before looking, so a wake in between is not lost.
            let notified = self.wake.notified();
            match self
                .store
                .claim_next(crate::now_ms(), &self.owner, self.lease_until())
                .await
            {
                Ok(Some(run)) => self.run_to_end(run, false).await,
                Ok(None) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
                Err(e) => {
                    eprintln!("queue: {e}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }

    /// Executes a run this process owns (`carry_on`: taken back after a
    /// restart) and records its end.
    async fn run_to_end(&self, run: Run, carry_on: bool) {
        let id = run.id;
        tracing::info!(
            target: "launchway::run",
            "run {id} {}: {} {} on {} ({}, by {})",
            if carry_on { "carried on" } else { "started" },
            run.repo,
            run.workflow,
            run.git_ref,
            run.event,
            run.actor
        );
        let (status, message) = self.execute(run, carry_on).await;
        tracing::info!(
            target: "launchway::run",
            "run {id} ended {}{}",
            status.as_str(),
            if message.is_empty() { String::new() } else { format!(": {message}") }
        );
        match self
            .store
            .finish_owned_run(id, &self.owner, status, &message, crate::now_ms())
            .await
        {
            Ok(true) => {}
            Ok(false) => eprintln!(
                "run {id}: its lease had lapsed and another server ended it; its end here is not recorded"
            ),
            Err(e) => eprintln!("run {id}: cannot record its end: {e}"),
        }
    }

    /// One record per environment job this attempt ran to an end.
    async fn record_deployments(&self, run: &Run, rec: &launchway_runner::record::RunRecord) {
        use launchway_runner::record::JobResult;
        for j in &rec.jobs {
            let Some(env) = &j.environment else { continue };
            let reused = j
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("reused from"));
            if reused
                || !matches!(
                    j.result,
                    JobResult::Success | JobResult::Failure | JobResult::Cancelled
                )
            {
                continue;
            }
            let approved_by = self
                .store
                .reviews(run.id, env)
                .await
                .ok()
                .and_then(|r| r.into_iter().find(|r| r.approved))
                .map(|r| r.by)
                .unwrap_or_default();
            let d = crate::store::Deployment {
                run_id: run.id,
                repo: run.repo.clone(),
                environment: env.clone(),
                sha: run.sha.clone(),
                git_ref: run.git_ref.clone(),
                job: j.key.clone(),
                result: j.result.as_str().to_string(),
                triggered_by: run.actor.clone(),
                approved_by,
                at_ms: crate::now_ms(),
            };
            if let Err(e) = self.store.add_deployment(&d).await {
                eprintln!("run {}: cannot record the deployment: {e}", run.id);
            }
        }
    }

    async fn execute(&self, run: Run, carry_on: bool) -> (RunStatus, String) {
        // The runner's run to carry on with (none: the earlier process
        // stopped before it had one, so the run starts over).
        let continuation = if carry_on && !run.run_dir.is_empty() {
            let number = std::path::Path::new(&run.run_dir)
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|n| self.runner_store.run_dir(*n) == std::path::Path::new(&run.run_dir));
            match number {
                Some(n) => Some(launchway_runner::Continuation {
                    run: n,
                    elapsed: Duration::from_millis(
                        u64::try_from(crate::now_ms() - run.started_ms).unwrap_or(0),
                    ),
                }),
                None => {
                    return (
                        RunStatus::Failure,
                        format!(
                            "the server restarted and cannot carry on with the run in {}",
                            run.run_dir
                        ),
                    );
                }
            }
        } else {
            None
        };
        let repo = match self.store.repo(&run.repo).await {
            Ok(Some((r, _))) => r,
            Ok(None) => return (RunStatus::Failure, format!("no repository '{}'", run.repo)),
            Err(e) => return (RunStatus::Failure, e.to_string()),
        };
        let dir = crate::triggers::checkout_dir(&self.cfg.data_dir, &repo);
        let source = match Source::open(&dir, Some(&run.sha), false) {
            Ok(s) => s,
            Err(e) => return (RunStatus::Failure, format!("{}: {e}", repo.location)),
        };
        let rules = match crate::environments::rules_source(&self.cfg.data_dir, &repo, &source) {
            Ok(r) => r,
            Err(e) => return (RunStatus::Failure, e.to_string()),
        };
        let wf = match prepare::workflow(&source, &run.workflow, &run.git_ref) {
            Ok(wf) => wf,
            Err(e) => return (RunStatus::Failure, e.to_string()),
        };
        let action_map = match prepare::action_map(&source) {
            Ok(m) => m,
            Err(e) => return (RunStatus::Failure, e.to_string()),
        };
        let base_ref = (!run.base_ref.is_empty()).then_some(run.base_ref.as_str());
        let event = prepare::event(
            &source,
            &run.event,
            &run.git_ref,
            base_ref,
            (!run.action.is_empty()).then_some(run.action.as_str()),
            base_ref,
        );
        let cancel = Cancel::new();
        if let Ok(mut m) = self.running.lock() {
            m.insert(run.id, cancel.clone());
        }
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            cancel.cancel();
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // The run directory is known once the runner allocates it.
        let recorder = {
            let store = self.store.clone();
            let runner_store = self.runner_store.clone();
            let id = run.id;
            tokio::spawn(async move {
                while let Some(ev) = rx.recv().await {
                    if let RunEvent::RunStarted { run, .. } = ev {
                        let dir = runner_store.run_dir(run);
                        let _ = store.set_run_dir(id, &dir.to_string_lossy()).await;
                    }
                }
            })
        };
        let (mut secrets, vars, environment_secrets, environment_vars) =
            match self.settings(&run.repo).await {
                Ok(x) => x,
                Err(e) => return (RunStatus::Failure, e),
            };
        secrets
            .entry("GITHUB_TOKEN".to_string())
            .or_insert_with(String::new);
        // Resuming (after an approval) or re-running failed jobs: what the
        // earlier attempt finished is reused.
        let reuse = if run.resume_dir.is_empty() {
            Default::default()
        } else {
            let path = std::path::Path::new(&run.resume_dir).join("run.json");
            match std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str::<launchway_runner::record::RunRecord>(&t).ok())
            {
                Some(rec) => launchway_runner::ReusedJob::successes(&rec, "an earlier attempt"),
                None => {
                    return (
                        RunStatus::Failure,
                        format!("cannot read the earlier attempt {}", path.display()),
                    );
                }
            }
        };
        let debug = prepare::step_debug(false, &secrets, &vars);
        let executor: Arc<dyn launchway_runner::spec::Executor> =
            Arc::new(crate::agents::RemoteExecutor {
                hub: self.hub.clone(),
                run_id: run.id,
                runner_store: self.runner_store.clone(),
                git_root: source
                    .git_root
                    .clone()
                    .unwrap_or_else(|| source.dir.clone()),
                source_dir: source.dir.clone(),
                carry_on,
            });
        let cfg = RunConfig {
            store: self.runner_store.clone(),
            source,
            event,
            payload: None,
            inputs: run.inputs.clone().into_iter().collect(),
            secrets,
            vars,
            job_filter: None,
            parallel: self.cfg.jobs_per_run.max(1),
            // Jobs go to agents: each agent knows its own machine.
            cpu_aware: false,
            approve: run
                .approved
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
            approver: None,
            grace: Default::default(),
            events: Some(tx),
            cancel: cancel.clone(),
            debug,
            action_map,
            dry_run: false,
            reuse,
            environment_secrets,
            environment_vars,
            deployer: self.deployer.get().cloned(),
            executor: Some(executor),
            continue_run: continuation,
            rules: Some(rules),
        };
        let result = run_workflow(cfg, wf).await;
        let _ = recorder.await;
        if let Ok(mut m) = self.running.lock() {
            m.remove(&run.id);
        }
        match result {
            Ok(rec) => {
                for j in &rec.jobs {
                    if j.started_at.is_some() {
                        self.metrics
                            .jobs
                            .observe(Duration::from_millis(j.duration_ms));
                    }
                }
                let status = match rec.status {
                    RunnerStatus::Success => RunStatus::Success,
                    RunnerStatus::Failure | RunnerStatus::Running => RunStatus::Failure,
                    RunnerStatus::Cancelled => RunStatus::Cancelled,
                    RunnerStatus::Waiting => RunStatus::Waiting,
                };
                self.record_deployments(&run, &rec).await;
                let waiting: Vec<&str> = rec
                    .jobs
                    .iter()
                    .filter(|j| j.result == launchway_runner::record::JobResult::Waiting)
                    .filter_map(|j| j.environment.as_deref())
                    .collect();
                let message = if let Some(env) = waiting.first() {
                    format!(
                        "waiting for approval to deploy to '{env}' (launchway approve {} --env {env})",
                        run.id
                    )
                } else {
                    rec.annotations
                        .iter()
                        .find(|a| a.level == launchway_runner::commands::Level::Error)
                        .map(|a| a.message.lines().next().unwrap_or("").to_string())
                        .unwrap_or_default()
                };
                (status, message)
            }
            Err(e) => (RunStatus::Failure, e),
        }
    }
}
