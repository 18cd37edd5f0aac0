//! A run: the DAG scheduler over jobs, matrix instances, fail-fast and
//! max-parallel, concurrency groups, environments, and the run record.

use crate::cancel::Cancel;
use crate::commands::Annotation;
use crate::context::{Ctx, Status};
use crate::environments;
use crate::job::{self, JobEnd, JobSpec};
use crate::mask::Masker;
use crate::process::Grace;
use crate::record::{JobRecord, JobResult, RunEvent, RunRecord, RunStatus};
use crate::source::Source;
use crate::store::{Store, now_rfc3339};
use indexmap::IndexMap;
use launchway_expr::{Condition, Value};
use launchway_workflow::matrix::{self, Combination};
use launchway_workflow::{Event, Job, JobSecrets, Workflow, graph};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{Notify, Semaphore, mpsc};

/// Asks a person at a terminal to approve a deployment.
pub type Approver = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// Everything a run needs from its caller.
#[derive(Clone)]
pub struct RunConfig {
    pub store: Store,
    pub source: Source,
    pub event: Event,
    /// The event payload (`github.event`); built from git when absent.
    pub payload: Option<Value>,
    pub inputs: IndexMap<String, String>,
    pub secrets: IndexMap<String, String>,
    pub vars: IndexMap<String, String>,
    /// Run only this job and what it needs.
    pub job_filter: Option<String>,
    /// The most jobs at once.
    pub parallel: usize,
    /// Past the number of cores, start a job only when a core is idle (see
    /// [`admit`]); off when the user set the number of jobs.
    pub cpu_aware: bool,
    /// Environments approved up front (`--approve ENV`).
    pub approve: Vec<String>,
    pub approver: Option<Approver>,
    pub grace: Grace,
    pub events: Option<mpsc::UnboundedSender<RunEvent>>,
    pub cancel: Cancel,
    pub debug: bool,
    /// `owner/repo@ref` → local path, from `.launchway/actions.yaml`.
    pub action_map: IndexMap<String, String>,
    /// Plan only: evaluate triggers, conditions, matrices and environment
    /// gates, but treat every step as succeeding without running it.
    pub dry_run: bool,
    /// Top-level jobs an earlier attempt of this run already finished
    /// (re-running failed jobs, resuming after an approval): they do not
    /// run again; their result and outputs feed the jobs that need them.
    pub reuse: IndexMap<String, ReusedJob>,
    /// Secrets and variables of deployment environments, by environment
    /// name: a job sees them only once its environment's protection rules
    /// have passed (after the approval).
    pub environment_secrets: IndexMap<String, IndexMap<String, String>>,
    pub environment_vars: IndexMap<String, IndexMap<String, String>>,
    /// Where `launchway/deploy` steps deploy (none: they fail).
    pub deployer: Option<Arc<dyn crate::deployer::Deployer>>,
    /// Where jobs execute (none: in this process).
    pub executor: Option<Arc<dyn crate::spec::Executor>>,
    /// Where environment protection rules are read from
    /// ([`crate::prepare::rules_source`]); none: a job with an environment
    /// fails (fails closed).
    pub rules: Option<crate::environments::RulesSource>,
    /// Carry on with a run whose scheduler stopped (a server restarted):
    /// its record is kept and added to, and its jobs go to the executor
    /// again, which knows the ones that ended or are still running.
    pub continue_run: Option<Continuation>,
}

/// A run to carry on with: its number in the store, and how long it had
/// been going (for its duration).
#[derive(Debug, Clone, Copy)]
pub struct Continuation {
    pub run: u64,
    pub elapsed: std::time::Duration,
}

/// A job taken from an earlier attempt.
#[derive(Debug, Clone)]
pub struct ReusedJob {
    pub result: JobResult,
    pub outputs: IndexMap<String, String>,
    /// Its records in that attempt (one per matrix instance), shown again.
    pub records: Vec<crate::record::JobRecord>,
    /// Which attempt it came from, for the record's message.
    pub from: String,
}

impl ReusedJob {
    /// The jobs of an earlier attempt's record that succeeded, by id (every
    /// matrix instance must have succeeded).
    pub fn successes(rec: &crate::record::RunRecord, from: &str) -> IndexMap<String, ReusedJob> {
        let mut out: IndexMap<String, ReusedJob> = IndexMap::new();
        let mut failed: Vec<&str> = Vec::new();
        for j in &rec.jobs {
            // Jobs of called workflows (`caller/inner`) go with their caller.
            if j.key.contains('/') {
                continue;
            }
            if j.result != JobResult::Success {
                failed.push(&j.id);
                continue;
            }
            let e = out.entry(j.id.clone()).or_insert_with(|| ReusedJob {
                result: JobResult::Success,
                outputs: IndexMap::new(),
                records: Vec::new(),
                from: from.to_string(),
            });
            e.outputs.extend(j.outputs.clone());
            e.records.push(j.clone());
        }
        out.retain(|id, _| !failed.contains(&id.as_str()));
        out
    }
}

/// State shared by every job of one run.
pub(crate) struct Shared {
    pub cfg: RunConfig,
    pub run_id: u64,
    pub run_dir: PathBuf,
    pub masker: Masker,
    pub record: Mutex<RunRecord>,
    pub slots: Arc<Semaphore>,
    /// Jobs executing now (for [`admit`]).
    pub active: Arc<std::sync::atomic::AtomicUsize>,
    /// One job at a time decides whether a core is free (so a crowd of
    /// waiting jobs does not all see the same idle core).
    pub admission: tokio::sync::Mutex<()>,
    pub groups: Groups,
    pub github: Value,
    pub started: Instant,
    pub last_save: Mutex<Instant>,
    /// For a job executed from its specification: where its progress goes
    /// (instead of this record and channel).
    pub sink: Option<Arc<dyn crate::spec::JobSink>>,
    /// Where artifacts really live (none: the run directory).
    pub artifacts: Option<Arc<dyn crate::spec::Artifacts>>,
    /// What starts step processes (none: this process).
    pub spawner: Option<Arc<dyn crate::process::Spawner>>,
    /// `runner.name` / `RUNNER_NAME`: the agent's name, or `launchway`.
    pub runner_name: String,
}

impl crate::spec::JobSink for Shared {
    fn event(&self, ev: RunEvent) {
        self.emit(ev);
    }
    fn job(&self, rec: JobRecord) {
        self.save_job(rec);
    }
    fn annotate(&self, a: Annotation) {
        Shared::annotate(self, a);
    }
}

impl Shared {
    pub fn emit(&self, ev: RunEvent) {
        if let Some(s) = &self.sink {
            return s.event(ev);
        }
        if let Some(tx) = &self.cfg.events {
            let _ = tx.send(ev);
        }
    }

    pub fn annotate(&self, a: Annotation) {
        if let Some(s) = &self.sink {
            return s.annotate(a);
        }
        if let Ok(mut r) = self.record.lock() {
            r.annotations.push(a);
        }
    }

    /// Updates a job in the run record. The file is rewritten when a job
    /// starts or ends and at most every 250 ms in between.
    pub fn save_job(&self, job: JobRecord) {
        if let Some(s) = &self.sink {
            return s.job(job);
        }
        let Ok(mut r) = self.record.lock() else {
            return;
        };
        let urgent = job.result != JobResult::Running || !r.jobs.iter().any(|j| j.key == job.key);
        match r.jobs.iter_mut().find(|j| j.key == job.key) {
            Some(slot) => *slot = job,
            None => {
                let at = r.jobs.partition_point(|j| j.ordinal <= job.ordinal);
                r.jobs.insert(at, job);
            }
        }
        let Ok(mut last) = self.last_save.lock() else {
            return;
        };
        if urgent || last.elapsed() >= std::time::Duration::from_millis(250) {
            let _ = self.cfg.store.save(&r);
            *last = Instant::now();
        }
    }
}

/// A job's place among those executing; it leaves when dropped.
pub(crate) struct Admitted {
    _permit: tokio::sync::OwnedSemaphorePermit,
    active: Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.active
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// CPU time counters from `/proc/stat`: (idle, total) in clock ticks.
fn cpu_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let idle = n.get(3)? + n.get(4).copied().unwrap_or(0);
    Some((idle, n.iter().take(8).sum()))
}

/// Whether about a core has been idle over the last `window`: the share of
/// idle CPU time, times the cores. `None` where it cannot be read.
async fn a_core_is_free(cores: usize, window: std::time::Duration) -> Option<bool> {
    let (idle0, total0) = cpu_ticks()?;
    tokio::time::sleep(window).await;
    let (idle1, total1) = cpu_ticks()?;
    let total = total1.saturating_sub(total0);
    if total == 0 {
        return Some(true);
    }
    #[allow(clippy::cast_precision_loss)]
    let free = (idle1.saturating_sub(idle0) as f64 / total as f64) * cores as f64;
    Some(free >= 0.8)
}

/// Waits until a job may start: a slot under `--jobs`, and — past as many
/// jobs as there are cores — a core that has been idle over the last
/// 20 ms (one waiting job decides at a time). Jobs that mostly wait (sleeping, on the network, on
/// a service) then do not hold a core's slot hostage, and CPU-bound jobs
/// still run a core each. `None` when cancelled while waiting.
pub(crate) async fn admit(shared: &Shared, cancel: &Cancel) -> Option<Admitted> {
    use std::sync::atomic::Ordering;
    let permit = tokio::select! {
        p = shared.slots.clone().acquire_owned() => p.ok()?,
        () = cancel.cancelled() => return None,
    };
    let cores = if shared.cfg.cpu_aware {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        usize::MAX
    };
    let _turn = if shared.active.load(Ordering::SeqCst) < cores {
        None
    } else {
        Some(tokio::select! {
            g = shared.admission.lock() => g,
            () = cancel.cancelled() => return None,
        })
    };
    loop {
        if shared.active.load(Ordering::SeqCst) < cores {
            break;
        }
        let free = tokio::select! {
            f = a_core_is_free(cores, std::time::Duration::from_millis(20)) => f,
            () = cancel.cancelled() => return None,
        };
        // Checked again: another job may have started meanwhile.
        if free.is_none_or(|f| f) {
            break;
        }
    }
    shared.active.fetch_add(1, Ordering::SeqCst);
    Some(Admitted {
        _permit: permit,
        active: shared.active.clone(),
    })
}

/// Concurrency groups within the run: at most one running job per group;
/// with `queue: single` (the default) one pending job, a newer one
/// cancelling the older; with `queue: max` every pending job waits its
/// turn, in order. `cancel-in-progress` cancels the running one.
#[derive(Default)]
pub(crate) struct Groups {
    state: Mutex<HashMap<String, GroupState>>,
    changed: Notify,
}

#[derive(Default)]
struct GroupState {
    running: Option<(u64, Cancel)>,
    pending: std::collections::VecDeque<(u64, Cancel)>,
    next_ticket: u64,
}

pub(crate) struct GroupGuard<'a> {
    groups: &'a Groups,
    name: String,
    ticket: u64,
}

impl Drop for GroupGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.groups.state.lock()
            && let Some(g) = s.get_mut(&self.name)
            && g.running.as_ref().is_some_and(|(t, _)| *t == self.ticket)
        {
            g.running = None;
        }
        self.groups.changed.notify_waiters();
    }
}

impl Groups {
    /// Waits for the group; `None` when this job was cancelled while waiting.
    pub async fn acquire<'a>(
        &'a self,
        name: &str,
        cancel_in_progress: bool,
        queue_all: bool,
        me: &Cancel,
    ) -> Option<GroupGuard<'a>> {
        let ticket = {
            let mut s = self.state.lock().ok()?;
            let g = s.entry(name.to_string()).or_default();
            g.next_ticket += 1;
            let t = g.next_ticket;
            if cancel_in_progress && let Some((_, c)) = &g.running {
                c.cancel();
            }
            if !queue_all {
                for (_, c) in g.pending.drain(..) {
                    c.cancel();
                }
            }
            g.pending.push_back((t, me.clone()));
            t
        };
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.state.lock().ok()?;
                let g = s.get_mut(name)?;
                if me.is_cancelled() {
                    g.pending.retain(|(t, _)| *t != ticket);
                    drop(s);
                    self.changed.notify_waiters();
                    return None;
                }
                if g.running.is_none() && g.pending.front().is_some_and(|(t, _)| *t == ticket) {
                    g.pending.pop_front();
                    g.running = Some((ticket, me.clone()));
                    return Some(GroupGuard {
                        groups: self,
                        name: name.to_string(),
                        ticket,
                    });
                }
            }
            tokio::select! {
                () = &mut notified => {}
                () = me.cancelled() => {}
            }
        }
    }
}

/// The result of a job id (all its matrix instances together).
#[derive(Debug, Clone)]
pub(crate) struct JobOutcome {
    pub result: JobResult,
    pub outputs: IndexMap<String, String>,
}

/// One workflow's jobs within a run; reusable workflows get a scope of their own.
#[derive(Clone)]
pub(crate) struct Scope {
    pub wf: Arc<Workflow>,
    /// The workflow file's text (what an agent loads the job from).
    pub text: Arc<str>,
    pub inputs: Value,
    pub secrets: Value,
    /// `caller / ` for jobs of a called workflow.
    pub key_prefix: String,
    pub depth: usize,
    /// The caller job's ordinal, for sorting jobs of called workflows.
    pub ordinal: Vec<usize>,
}

impl Scope {
    pub fn ordinal(&self, id: &str, index: usize) -> Vec<usize> {
        let mut o = self.ordinal.clone();
        o.push(self.wf.jobs.get_index_of(id).unwrap_or(usize::MAX));
        o.push(index);
        o
    }
}

/// Runs one workflow to completion and returns its record.
pub async fn run_workflow(cfg: RunConfig, wf: Workflow) -> Result<RunRecord, String> {
    let (run_id, earlier) = match cfg.continue_run {
        Some(c) => {
            let rec = cfg
                .store
                .load(c.run)
                .map_err(|e| format!("cannot read the record of run {} to carry on: {e}", c.run))?;
            (c.run, Some((rec, c.elapsed)))
        }
        None => (
            cfg.store
                .allocate_run()
                .map_err(|e| format!("cannot create a run record: {e}"))?,
            None,
        ),
    };
    let run_dir = cfg.store.run_dir(run_id);
    let masker = Masker::new();
    for v in cfg
        .secrets
        .values()
        .chain(cfg.environment_secrets.values().flat_map(|m| m.values()))
    {
        masker.add(v);
    }
    let inputs =
        crate::prepare::inputs(&wf, &cfg.event.name, &cfg.inputs).map_err(|e| e.to_string())?;
    let github = crate::github::github_context(&cfg, &wf, run_id, &run_dir, &inputs);
    let (record, started) = match earlier {
        Some((mut rec, elapsed)) => {
            rec.status = RunStatus::Running;
            let started = Instant::now()
                .checked_sub(elapsed)
                .unwrap_or_else(Instant::now);
            (rec, started)
        }
        None => (
            RunRecord {
                id: run_id,
                workflow: wf.display_name().to_string(),
                workflow_path: wf.path.clone(),
                event: cfg.event.name.clone(),
                git_ref: cfg.event.git_ref.clone(),
                sha: cfg.source.sha.clone(),
                repository: cfg.source.repository.clone(),
                status: RunStatus::Running,
                started_at: now_rfc3339(),
                duration_ms: 0,
                title: None,
                jobs: Vec::new(),
                annotations: Vec::new(),
            },
            Instant::now(),
        ),
    };
    cfg.store
        .save(&record)
        .map_err(|e| format!("cannot write the run record: {e}"))?;
    let shared = Arc::new(Shared {
        slots: Arc::new(Semaphore::new(cfg.parallel.max(1))),
        active: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        admission: tokio::sync::Mutex::new(()),
        cfg,
        run_id,
        run_dir,
        masker,
        record: Mutex::new(record),
        groups: Groups::default(),
        github,
        started,
        last_save: Mutex::new(Instant::now()),
        sink: None,
        artifacts: None,
        spawner: None,
        runner_name: "launchway".into(),
    });
    shared.emit(RunEvent::RunStarted {
        run: run_id,
        workflow: wf.display_name().to_string(),
    });
    let secrets = Value::Object(
        shared
            .cfg
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), Value::str(v)))
            .collect(),
    );
    // run-name and workflow-level concurrency see github, inputs and vars.
    let mut top = Value::object();
    top.insert("github", shared.github.clone());
    top.insert("inputs", inputs.clone());
    top.insert("vars", vars_context(&shared));
    let top = Ctx::new(top);
    if let Some(rn) = &wf.run_name
        && let Ok(title) = launchway_expr::interpolate(&rn.value, &top)
        && let Ok(mut r) = shared.record.lock()
    {
        r.title = Some(shared.masker.mask(&title));
    }
    let mut group_lock = None;
    if let Some(c) = &wf.concurrency {
        let group = launchway_expr::interpolate(&c.group.value, &top)
            .map_err(|e| format!("concurrency: {e}"))?;
        let cip = c
            .cancel_in_progress
            .as_ref()
            .is_some_and(|s| job::eval_bool(&s.value, &top).unwrap_or(false));
        let sh = shared.clone();
        let g = group.clone();
        group_lock = crate::concurrency::acquire(
            &shared.cfg.store.home,
            &repository_of(&shared),
            &group,
            cip,
            c.queue_all,
            &shared.cfg.cancel,
            move |holder| {
                sh.emit(RunEvent::Notice {
                    message: format!(
                        "waiting for concurrency group '{g}'{}{}",
                        holder
                            .map(|p| format!(" (held by process {p})"))
                            .unwrap_or_default(),
                        if cip {
                            "; cancelling the run in progress"
                        } else {
                            ""
                        }
                    ),
                });
            },
        )
        .await?;
    }
    let text: Arc<str> = Arc::from(shared.cfg.source.read_file(&wf.path).unwrap_or_default());
    let scope = Scope {
        wf: Arc::new(wf),
        text,
        inputs,
        secrets,
        key_prefix: String::new(),
        depth: 0,
        ordinal: Vec::new(),
    };
    let outcomes = if group_lock.is_some() || scope.wf.concurrency.is_none() {
        run_graph(&shared, &scope, shared.cfg.job_filter.clone()).await
    } else {
        IndexMap::new()
    };
    drop(group_lock);
    let status = if shared.cfg.cancel.is_cancelled() {
        RunStatus::Cancelled
    } else {
        match JobResult::combine(outcomes.values().map(|o| o.result)) {
            JobResult::Failure => RunStatus::Failure,
            JobResult::Cancelled => RunStatus::Cancelled,
            JobResult::Waiting => RunStatus::Waiting,
            _ => RunStatus::Success,
        }
    };
    let rec = {
        let mut r = shared
            .record
            .lock()
            .map_err(|_| "run record lock poisoned".to_string())?;
        r.status = status;
        r.duration_ms = elapsed_ms(shared.started);
        let _ = shared.cfg.store.save(&r);
        r.clone()
    };
    shared.emit(RunEvent::RunFinished {
        run: run_id,
        status,
    });
    Ok(rec)
}

pub(crate) fn elapsed_ms(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs the jobs of one scope as a DAG: each job starts as soon as its own
/// `needs` are done.
pub(crate) fn run_graph<'a>(
    shared: &'a Arc<Shared>,
    scope: &'a Scope,
    only: Option<String>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = IndexMap<String, JobOutcome>> + Send + 'a>>
{
    Box::pin(run_graph_inner(shared, scope, only))
}

async fn run_graph_inner(
    shared: &Arc<Shared>,
    scope: &Scope,
    only: Option<String>,
) -> IndexMap<String, JobOutcome> {
    let wf = scope.wf.clone();
    let selected: Vec<String> = match &only {
        Some(id) => {
            let mut v = graph::ancestors(&wf, id);
            v.push(id.clone());
            wf.jobs.keys().filter(|k| v.contains(k)).cloned().collect()
        }
        None => wf.jobs.keys().cloned().collect(),
    };
    let mut done: IndexMap<String, JobOutcome> = IndexMap::new();
    let mut started: Vec<String> = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let mut reused_any = false;
        for id in &selected {
            if started.contains(id) {
                continue;
            }
            let job = &wf.jobs[id];
            let ready = job
                .needs
                .iter()
                .all(|n| done.contains_key(&n.value) || !wf.jobs.contains_key(&n.value));
            if !ready {
                continue;
            }
            started.push(id.clone());
            if scope.depth == 0
                && let Some(r) = shared.cfg.reuse.get(id)
            {
                for rec in &r.records {
                    let mut rec = rec.clone();
                    rec.message = Some(format!("reused from {}", r.from));
                    for s in &mut rec.steps {
                        s.log = None;
                    }
                    shared.emit(RunEvent::JobFinished {
                        key: rec.key.clone(),
                        name: rec.name.clone(),
                        result: rec.result,
                        duration_ms: 0,
                    });
                    shared.save_job(rec);
                }
                done.insert(
                    id.clone(),
                    JobOutcome {
                        result: r.result,
                        outputs: r.outputs.clone(),
                    },
                );
                reused_any = true;
                continue;
            }
            let needs: IndexMap<String, JobOutcome> = job
                .needs
                .iter()
                .filter_map(|n| done.get(&n.value).map(|o| (n.value.clone(), o.clone())))
                .collect();
            let ancestors: Vec<JobResult> = graph::ancestors(&wf, id)
                .iter()
                .filter_map(|a| done.get(a).map(|o| o.result))
                .collect();
            let shared = shared.clone();
            let scope = scope.clone();
            let id = id.clone();
            tasks.spawn(async move {
                let outcome = run_job_node(&shared, &scope, &id, needs, ancestors).await;
                (id, outcome)
            });
        }
        // A reused job may have made others ready: look again first.
        if reused_any {
            continue;
        }
        match tasks.join_next().await {
            Some(Ok((id, outcome))) => {
                done.insert(id, outcome);
            }
            Some(Err(e)) => {
                // A panicking job task: record it as a failure rather than hang.
                if let Some(id) = started.iter().find(|s| !done.contains_key(*s)).cloned() {
                    shared.annotate(Annotation::error(
                        &id,
                        &format!("internal error in job '{id}': {e}"),
                    ));
                    done.insert(
                        id,
                        JobOutcome {
                            result: JobResult::Failure,
                            outputs: IndexMap::new(),
                        },
                    );
                }
            }
            None => break,
        }
    }
    done
}

/// `needs` (and, for called workflows, `jobs`): result and outputs per job.
pub(crate) fn needs_context(needs: &IndexMap<String, JobOutcome>) -> Value {
    let mut v = Value::object();
    for (id, o) in needs {
        let mut n = Value::object();
        n.insert("result", Value::str(o.result.as_str()));
        n.insert(
            "outputs",
            Value::Object(
                o.outputs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::str(v)))
                    .collect(),
            ),
        );
        v.insert(id.clone(), n);
    }
    v
}

fn vars_context(shared: &Shared) -> Value {
    Value::Object(
        shared
            .cfg
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), Value::str(v)))
            .collect(),
    )
}

fn job_level_ctx(shared: &Shared, scope: &Scope, needs: &IndexMap<String, JobOutcome>) -> Ctx {
    let mut c = Value::object();
    c.insert("github", shared.github.clone());
    c.insert("needs", needs_context(needs));
    c.insert("vars", vars_context(shared));
    c.insert("inputs", scope.inputs.clone());
    Ctx::new(c)
}

fn skipped_record(
    scope: &Scope,
    key: &str,
    job: &Job,
    name: String,
    message: Option<String>,
) -> JobRecord {
    JobRecord {
        key: key.to_string(),
        id: job.id.clone(),
        name,
        ordinal: scope.ordinal(&job.id, 0),
        needs: job
            .needs
            .iter()
            .map(|n| format!("{}{}", scope.key_prefix, n.value))
            .collect(),
        result: JobResult::Skipped,
        started_at: None,
        duration_ms: 0,
        steps: Vec::new(),
        outputs: IndexMap::new(),
        environment: None,
        matrix: None,
        message,
        summary: String::new(),
    }
}

/// A job id: its `if`, its matrix, and every instance.
async fn run_job_node(
    shared: &Arc<Shared>,
    scope: &Scope,
    id: &str,
    needs: IndexMap<String, JobOutcome>,
    ancestors: Vec<JobResult>,
) -> JobOutcome {
    let job = &scope.wf.jobs[id];
    let key = format!("{}{id}", scope.key_prefix);
    let mut ctx = job_level_ctx(shared, scope, &needs);
    ctx.status = Status {
        success: ancestors.iter().all(|r| *r == JobResult::Success),
        failure: ancestors.contains(&JobResult::Failure),
        cancelled: shared.cfg.cancel.is_cancelled(),
    };
    let display = job.name.as_ref().map_or_else(
        || id.to_string(),
        |n| launchway_expr::interpolate(&n.value, &ctx).unwrap_or_else(|_| n.value.clone()),
    );
    let fail = |message: String| {
        let mut rec = skipped_record(scope, &key, job, display.clone(), Some(message.clone()));
        rec.result = JobResult::Failure;
        shared.annotate(error_annotation(&key, &message));
        shared.emit(RunEvent::JobFinished {
            key: key.clone(),
            name: display.clone(),
            result: JobResult::Failure,
            duration_ms: 0,
        });
        shared.save_job(rec);
        JobOutcome {
            result: JobResult::Failure,
            outputs: IndexMap::new(),
        }
    };
    // A job held behind a waiting job waits too.
    if ancestors.contains(&JobResult::Waiting) {
        let mut rec = skipped_record(
            scope,
            &key,
            job,
            display.clone(),
            Some("waiting for an upstream approval".into()),
        );
        rec.result = JobResult::Waiting;
        shared.save_job(rec);
        return JobOutcome {
            result: JobResult::Waiting,
            outputs: IndexMap::new(),
        };
    }
    let cond = job.if_.as_ref().map_or("", |s| s.value.as_str());
    let run_it = match Condition::parse(cond) {
        Ok(c) => match c.evaluate(&ctx) {
            Ok(b) => b,
            Err(e) => return fail(format!("job '{id}' if: {e}")),
        },
        Err(e) => return fail(format!("job '{id}' if: {e}")),
    };
    if !run_it {
        shared.save_job(skipped_record(scope, &key, job, display.clone(), None));
        shared.emit(RunEvent::JobFinished {
            key: key.clone(),
            name: display,
            result: JobResult::Skipped,
            duration_ms: 0,
        });
        return JobOutcome {
            result: JobResult::Skipped,
            outputs: IndexMap::new(),
        };
    }

    let combos: Vec<Option<Combination>> =
        match job.strategy.as_ref().and_then(|s| s.matrix.as_ref()) {
            Some(spec) => match matrix::expand(spec, &ctx) {
                Ok(c) => c.into_iter().map(Some).collect(),
                Err(e) => return fail(format!("job '{id}' matrix: {e}")),
            },
            None => vec![None],
        };
    let strategy = job.strategy.clone().unwrap_or_default();
    let fail_fast = match &strategy.fail_fast {
        Some(s) => job::eval_bool(&s.value, &ctx).unwrap_or(true),
        None => true,
    };
    let max_parallel = match &strategy.max_parallel {
        Some(s) => launchway_expr::evaluate_template(&s.value, &ctx)
            .map(|v| v.to_number())
            .ok()
            .filter(|n| *n >= 1.0)
            .map_or(usize::MAX, |n| {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let n = n as usize;
                n
            }),
        None => usize::MAX,
    };
    let total = combos.len();
    let matrix_cancel = shared.cfg.cancel.child();
    let local_slots = Arc::new(Semaphore::new(max_parallel.min(total).max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, combo) in combos.into_iter().enumerate() {
        let inst_key = match &combo {
            Some(c) if total > 1 || !c.is_empty() => format!("{key} {}", matrix::display_suffix(c)),
            _ => key.clone(),
        };
        let spec = JobSpec {
            id: id.to_string(),
            key: inst_key,
            ordinal: scope.ordinal(id, index),
            matrix: combo,
            index,
            total,
            fail_fast,
            max_parallel,
            needs: needs_context(&needs),
            vars: vars_context(shared),
        };
        let shared = shared.clone();
        let scope = scope.clone();
        let cancel = matrix_cancel.child();
        let matrix_cancel = matrix_cancel.clone();
        // Taking max-parallel slots here, in matrix order, starts instances
        // in the order GitHub does.
        let Ok(local) = local_slots.clone().acquire_owned().await else {
            break;
        };
        tasks.spawn(async move {
            let _local = local;
            if cancel.is_cancelled() {
                let end = JobEnd::cancelled();
                job::record_cancelled_before_start(&shared, &scope, &spec);
                return end;
            }
            let end = run_instance(&shared, &scope, spec, cancel).await;
            if fail_fast && end.result == JobResult::Failure {
                matrix_cancel.cancel();
            }
            end
        });
    }
    let mut results = Vec::new();
    let mut outputs = IndexMap::new();
    while let Some(r) = tasks.join_next().await {
        let end = r.unwrap_or_else(|_| JobEnd {
            result: JobResult::Failure,
            outputs: IndexMap::new(),
        });
        // Matrix outputs: the last instance to finish that set a value wins, as on GitHub.
        for (k, v) in &end.outputs {
            if !v.is_empty() || !outputs.contains_key(k) {
                outputs.insert(k.clone(), v.clone());
            }
        }
        results.push(end.result);
    }
    let result = JobResult::combine(results);
    JobOutcome { result, outputs }
}

pub(crate) fn error_annotation(job: &str, message: &str) -> Annotation {
    Annotation::error(job, message)
}

/// One job instance: environment gate, concurrency group, slot, then steps
/// (or a called workflow).
async fn run_instance(
    shared: &Arc<Shared>,
    scope: &Scope,
    spec: JobSpec,
    cancel: Cancel,
) -> JobEnd {
    let job = &scope.wf.jobs[&spec.id];
    let ctx = job::instance_ctx(shared, scope, &spec);

    // Environment protection: approval before anything of the job runs.
    let mut environment = None;
    if let Some(env) = &job.environment {
        let name = match launchway_expr::interpolate(&env.name.value, &ctx) {
            Ok(n) => n,
            Err(e) => {
                return job::fail_before_start(shared, scope, &spec, &format!("environment: {e}"));
            }
        };
        // Without a source of rules nothing enters an environment.
        let Some(r) = &shared.cfg.rules else {
            return job::fail_before_start(
                shared,
                scope,
                &spec,
                &format!("environment '{name}': no source of protection rules was given"),
            );
        };
        let (rules_src, from) = (&r.source, r.from.clone());
        match environments::protection(rules_src, &name) {
            Err(e) => {
                return job::fail_before_start(
                    shared,
                    scope,
                    &spec,
                    &format!("environment '{name}': {e}"),
                );
            }
            Ok(Some(rules)) => {
                let p = rules.protection;
                let mut note = Annotation::error(
                    &spec.key,
                    &format!(
                        "environment '{name}': protection rules from {} on {from}",
                        rules.file
                    ),
                );
                note.level = crate::commands::Level::Notice;
                shared.annotate(note);
                match p.allows_ref(&shared.cfg.event.git_ref) {
                    Ok(true) => {}
                    Ok(false) => {
                        return job::fail_before_start(
                            shared,
                            scope,
                            &spec,
                            &format!(
                                "{} is not allowed to deploy to environment '{name}' (allowed: {})",
                                shared.cfg.event.git_ref,
                                p.branches.join(", ")
                            ),
                        );
                    }
                    Err(e) => {
                        return job::fail_before_start(
                            shared,
                            scope,
                            &spec,
                            &format!("environment '{name}': {e}"),
                        );
                    }
                }
                if p.needs_approval() {
                    let pre = shared
                        .cfg
                        .approve
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case(&name));
                    let asked = !pre
                        && shared
                            .cfg
                            .approver
                            .as_ref()
                            .is_some_and(|ask| ask(&name, &spec.key));
                    if !(pre || asked) {
                        return job::wait_for_approval(shared, scope, &spec, &name, &p);
                    }
                }
                if p.wait_timer_minutes > 0 {
                    let wait = std::time::Duration::from_secs(p.wait_timer_minutes * 60);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = cancel.cancelled() => {}
                    }
                }
            }
            Ok(None) => {
                let mut note = Annotation::error(
                    &spec.key,
                    &format!(
                        "environment '{name}': no file in {} on {from}; unprotected",
                        environments::CONFIG_DIR
                    ),
                );
                note.level = crate::commands::Level::Notice;
                shared.annotate(note);
            }
        }
        environment = Some(name);
    }

    // Concurrency group (job level).
    let _group = match &job.concurrency {
        Some(c) => {
            let group = launchway_expr::interpolate(&c.group.value, &ctx)
                .unwrap_or_else(|_| c.group.value.clone());
            let cip = c
                .cancel_in_progress
                .as_ref()
                .is_some_and(|s| job::eval_bool(&s.value, &ctx).unwrap_or(false));
            let Some(local) = shared
                .groups
                .acquire(&group, cip, c.queue_all, &cancel)
                .await
            else {
                job::record_cancelled_before_start(shared, scope, &spec);
                return JobEnd::cancelled();
            };
            // …and across `launchway run` processes of the same repository.
            let sh = shared.clone();
            let (g, key) = (group.clone(), spec.key.clone());
            let across = crate::concurrency::acquire(
                &shared.cfg.store.home,
                &repository_of(shared),
                &group,
                cip,
                c.queue_all,
                &cancel,
                move |holder| {
                    sh.emit(RunEvent::Notice {
                        message: format!(
                            "job '{key}' waits for concurrency group '{g}'{}",
                            holder
                                .map(|p| format!(" (held by process {p})"))
                                .unwrap_or_default()
                        ),
                    });
                },
            )
            .await;
            match across {
                Ok(Some(lock)) => Some((local, lock)),
                Ok(None) => {
                    job::record_cancelled_before_start(shared, scope, &spec);
                    return JobEnd::cancelled();
                }
                Err(e) => {
                    return job::fail_before_start(
                        shared,
                        scope,
                        &spec,
                        &format!("concurrency group '{group}': {e}"),
                    );
                }
            }
        }
        None => None,
    };

    if let Some(uses) = &job.uses {
        return crate::reusable::call(shared, scope, &spec, uses, ctx, cancel).await;
    }
    let Some(_slot) = admit(shared, &cancel).await else {
        return JobEnd::cancelled();
    };
    let spec = crate::spec::JobSpecification::build(shared, scope, &spec, environment.as_deref());
    let sink: Arc<dyn crate::spec::JobSink> = shared.clone();
    match &shared.cfg.executor {
        Some(ex) => ex.execute(spec, sink, cancel).await,
        None => {
            let host = crate::spec::JobHost {
                store: shared.cfg.store.clone(),
                source: shared.cfg.source.clone(),
                sink,
                deployer: shared.cfg.deployer.clone(),
                cancel,
                masker: Some(shared.masker.clone()),
                artifacts: None,
                spawner: None,
                runner_name: None,
            };
            crate::spec::execute(spec, Some(scope.wf.clone()), host).await
        }
    }
}

/// The repository concurrency groups belong to (`github.repository`).
fn repository_of(shared: &Shared) -> String {
    shared
        .github
        .get("repository")
        .map(Value::to_display_string)
        .unwrap_or_default()
}

/// Secrets for a called workflow: inherited or mapped.
pub(crate) fn called_secrets(job: &Job, scope: &Scope, ctx: &Ctx) -> Value {
    match &job.secrets {
        Some(JobSecrets::Inherit) => scope.secrets.clone(),
        Some(JobSecrets::Map(m)) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Value::str(launchway_expr::interpolate(&v.value, ctx).unwrap_or_default()),
                    )
                })
                .collect(),
        ),
        None => Value::object(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn groups_cancel_older_pending_and_in_progress() {
        let g = Groups::default();
        let a = Cancel::new();
        let guard_a = g.acquire("x", false, false, &a).await.unwrap();
        let b = Cancel::new();
        let c = Cancel::new();
        let gb = g.acquire("x", false, false, &b);
        tokio::pin!(gb);
        // b waits behind a.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), &mut gb)
                .await
                .is_err()
        );
        // c arrives with cancel-in-progress: cancels the running a and pending b.
        let gc = g.acquire("x", true, false, &c);
        tokio::pin!(gc);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), &mut gc)
                .await
                .is_err()
        );
        assert!(a.is_cancelled());
        assert!(gb.await.is_none());
        drop(guard_a);
        assert!(gc.await.is_some());
    }

    /// `queue: max`: nobody is cancelled; the pending jobs run in order.
    #[tokio::test]
    async fn a_queued_group_runs_every_pending_job_in_order() {
        let g = Groups::default();
        let (a, b, c) = (Cancel::new(), Cancel::new(), Cancel::new());
        let guard_a = g.acquire("q", false, true, &a).await.unwrap();
        let gb = g.acquire("q", false, true, &b);
        let gc = g.acquire("q", false, true, &c);
        tokio::pin!(gb);
        tokio::pin!(gc);
        let short = std::time::Duration::from_millis(20);
        assert!(tokio::time::timeout(short, &mut gb).await.is_err());
        assert!(tokio::time::timeout(short, &mut gc).await.is_err());
        assert!(!b.is_cancelled() && !c.is_cancelled());
        drop(guard_a);
        let guard_b = tokio::time::timeout(std::time::Duration::from_secs(1), &mut gb)
            .await
            .unwrap()
            .unwrap();
        // c still waits: b runs first.
        assert!(tokio::time::timeout(short, &mut gc).await.is_err());
        drop(guard_b);
        assert!(
            tokio::time::timeout(std::time::Duration::from_secs(1), gc)
                .await
                .unwrap()
                .is_some()
        );
    }
}
