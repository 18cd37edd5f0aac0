//! A job instance as data: everything one job needs to run, prepared once
//! by the scheduler ([`JobSpecification::build`]) after the job's
//! environment gate passed, and executed by [`execute`] — in the same
//! process for `launchway run`, or by an agent that received it over the
//! wire from the server. The specification carries only this job's
//! secrets; whoever executes it reports through a [`JobSink`].

use crate::cancel::Cancel;
use crate::commands::Annotation;
use crate::deployer::Deployer;
use crate::job::{self, JobEnd};
use crate::mask::Masker;
use crate::process::Grace;
use crate::record::{JobRecord, RunEvent, RunRecord, RunStatus};
use crate::run::{Groups, RunConfig, Scope, Shared};
use crate::source::Source;
use crate::store::Store;
use indexmap::IndexMap;
use launchway_expr::Value;
use launchway_workflow::{Event, Workflow};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `launchway_expr::Value` as plain JSON on the wire.
mod json_value {
    use launchway_expr::Value;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
        v.to_json().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        Ok(Value::from_json(&serde_json::Value::deserialize(d)?))
    }
}

/// The commit a job runs, as the scheduler saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub repository: String,
    pub sha: String,
    /// The repository's folder inside its git repository ("" for the root).
    pub prefix: String,
    pub actor: String,
    pub commit_message: String,
    pub commit_author: (String, String),
    pub commit_timestamp: String,
}

impl SourceInfo {
    pub fn of(s: &Source) -> Self {
        SourceInfo {
            repository: s.repository.clone(),
            sha: s.sha.clone(),
            prefix: s.prefix.clone(),
            actor: s.actor.clone(),
            commit_message: s.commit_message.clone(),
            commit_author: s.commit_author.clone(),
            commit_timestamp: s.commit_timestamp.clone(),
        }
    }

    /// The same commit read from another clone (an agent's): `root` is that
    /// clone's work tree.
    pub fn at(&self, root: &std::path::Path) -> Source {
        let dir = if self.prefix.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&self.prefix)
        };
        Source {
            dir,
            git_root: Some(root.to_path_buf()),
            prefix: self.prefix.clone(),
            sha: self.sha.clone(),
            head_ref: None,
            dirty: false,
            repository: self.repository.clone(),
            actor: self.actor.clone(),
            commit_message: self.commit_message.clone(),
            commit_author: self.commit_author.clone(),
            commit_timestamp: self.commit_timestamp.clone(),
        }
    }
}

/// One job instance, ready to run anywhere.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpecification {
    /// The run's number in the runner's store (its directory).
    pub run: u64,
    pub source: SourceInfo,
    /// The ref the run is for (`github.ref`).
    pub git_ref: String,
    pub event_name: String,
    /// The workflow file the job is defined in (a called workflow's for
    /// jobs of reusable workflows), and its text.
    pub workflow_path: String,
    pub workflow_text: String,
    /// The job's id in that file, its key in the run (`build (3.11)`,
    /// `call / inner`) and its place in the run's job list.
    pub job: String,
    pub key: String,
    pub ordinal: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<serde_json::Value>,
    pub index: usize,
    pub total: usize,
    pub fail_fast: bool,
    /// `None`: unbounded.
    pub max_parallel: Option<usize>,
    /// `runs-on`, evaluated: the labels an agent must have.
    pub runs_on: Vec<String>,
    /// The deployment environment the job entered (its gate passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(with = "json_value")]
    pub github: Value,
    #[serde(with = "json_value")]
    pub needs: Value,
    #[serde(with = "json_value")]
    pub inputs: Value,
    /// `vars`, the environment's merged in.
    pub vars: IndexMap<String, String>,
    /// `secrets` as this job sees them: the repository's (or those passed
    /// to a called workflow), the environment's once its gate passed — and
    /// nothing else secret: every line is masked against these.
    pub secrets: IndexMap<String, String>,
    pub action_map: IndexMap<String, String>,
    /// Times to queue the job again when its agent is lost: job-level
    /// `env: {LAUNCHWAY_AGENT_RETRIES: N}` (a literal, at most 5; 0 without).
    #[serde(default)]
    pub agent_retries: u32,
    pub debug: bool,
    pub dry_run: bool,
    pub grace_interrupt_ms: u64,
    pub grace_terminate_ms: u64,
}

impl JobSpecification {
    /// The specification of one instance, as the scheduler knows it once
    /// the instance's gate passed. The one place a job is prepared.
    pub(crate) fn build(
        shared: &Shared,
        scope: &Scope,
        spec: &job::JobSpec,
        environment: Option<&str>,
    ) -> JobSpecification {
        let to_map = |v: &Value| -> IndexMap<String, String> {
            match v {
                Value::Object(o) => o
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_display_string()))
                    .collect(),
                _ => IndexMap::new(),
            }
        };
        let mut secrets = to_map(&scope.secrets);
        let mut vars = to_map(&spec.vars);
        if let Some(env) = environment {
            if let Some(extra) = shared.cfg.environment_secrets.get(env) {
                secrets.extend(extra.clone());
            }
            if let Some(extra) = shared.cfg.environment_vars.get(env) {
                vars.extend(extra.clone());
            }
        }
        let job = &scope.wf.jobs[&spec.id];
        let ctx = job::instance_ctx(shared, scope, spec);
        JobSpecification {
            run: shared.run_id,
            source: SourceInfo::of(&shared.cfg.source),
            git_ref: shared.cfg.event.git_ref.clone(),
            event_name: shared.cfg.event.name.clone(),
            workflow_path: scope.wf.path.clone(),
            workflow_text: scope.text.to_string(),
            job: spec.id.clone(),
            key: spec.key.clone(),
            ordinal: spec.ordinal.clone(),
            matrix: spec
                .matrix
                .as_ref()
                .map(|m| Value::Object(m.clone()).to_json()),
            index: spec.index,
            total: spec.total,
            fail_fast: spec.fail_fast,
            max_parallel: (spec.max_parallel != usize::MAX).then_some(spec.max_parallel),
            runs_on: job::runs_on_labels(job, &ctx),
            environment: environment.map(str::to_string),
            github: shared.github.clone(),
            needs: spec.needs.clone(),
            inputs: scope.inputs.clone(),
            vars,
            secrets,
            action_map: shared.cfg.action_map.clone(),
            agent_retries: job
                .env
                .get("LAUNCHWAY_AGENT_RETRIES")
                .and_then(|v| v.value.trim().parse::<u32>().ok())
                .map_or(0, |n| n.min(5)),
            debug: shared.cfg.debug,
            dry_run: shared.cfg.dry_run,
            grace_interrupt_ms: u64::try_from(shared.cfg.grace.interrupt.as_millis())
                .unwrap_or(u64::MAX),
            grace_terminate_ms: u64::try_from(shared.cfg.grace.terminate.as_millis())
                .unwrap_or(u64::MAX),
        }
    }

    /// Whether an agent with `labels` may run this job: every `runs-on`
    /// label (case-insensitive) is among them, after `aliases` (hosted
    /// labels such as `ubuntu-latest` → agent labels; a label mapped to
    /// nothing matches any agent).
    pub fn runs_on_agent(
        &self,
        labels: &[String],
        aliases: &IndexMap<String, Vec<String>>,
    ) -> bool {
        labels_match(&self.runs_on, labels, aliases)
    }
}

/// See [`JobSpecification::runs_on_agent`].
pub fn labels_match(
    wanted: &[String],
    labels: &[String],
    aliases: &IndexMap<String, Vec<String>>,
) -> bool {
    let has = |l: &str| labels.iter().any(|x| x.eq_ignore_ascii_case(l));
    wanted.iter().all(|w| {
        match aliases
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(w))
            .map(|(_, v)| v)
        {
            Some(mapped) => mapped.iter().all(|m| has(m)),
            None => has(w),
        }
    })
}

/// Where a job's progress goes while it runs: the scheduler's run record
/// and live display in-process, the server's run over the wire on an agent.
pub trait JobSink: Send + Sync {
    /// Live events (job and step starts and ends, masked log lines).
    fn event(&self, ev: RunEvent);
    /// The job's record, each time it changes.
    fn job(&self, rec: JobRecord);
    fn annotate(&self, a: Annotation);
}

pub type JobFuture = Pin<Box<dyn Future<Output = JobEnd> + Send>>;

/// Executes job specifications somewhere else (the server: on agents).
pub trait Executor: Send + Sync {
    fn execute(&self, spec: JobSpecification, sink: Arc<dyn JobSink>, cancel: Cancel) -> JobFuture;
}

/// Artifacts kept somewhere else than the run directory this job sees (on
/// an agent: the server's). The built-in artifact actions call these around
/// their work on the local run directory.
pub trait Artifacts: Send + Sync {
    /// `upload-artifact` wrote `dir` (the artifact `name`) and its manifest
    /// locally: send them where the run keeps artifacts.
    fn publish(
        &self,
        name: &str,
        dir: &std::path::Path,
        manifest: &serde_json::Value,
    ) -> Result<(), String>;
    /// Before `download-artifact` reads `artifacts_dir`: bring the run's
    /// artifacts there.
    fn fetch(&self, artifacts_dir: &std::path::Path) -> Result<(), String>;
}

/// What executing a specification needs from the machine it runs on.
pub struct JobHost {
    /// The store the job's run directory lives in (`runs/<spec.run>`).
    pub store: Store,
    /// The commit, readable on this machine.
    pub source: Source,
    pub sink: Arc<dyn JobSink>,
    pub deployer: Option<Arc<dyn Deployer>>,
    pub cancel: Cancel,
    /// The run's masker when the job runs in the scheduler's process (so an
    /// `add-mask` protects the rest of the run); a new one otherwise.
    pub masker: Option<Masker>,
    /// Where artifacts really live (none: the run directory).
    pub artifacts: Option<Arc<dyn Artifacts>>,
    /// What starts step processes (none: this process, as children; on an
    /// agent: the job's launcher, inside the job's sandbox).
    pub spawner: Option<Arc<dyn crate::process::Spawner>>,
    /// The runner's name (`RUNNER_NAME`; none: `launchway`).
    pub runner_name: Option<String>,
}

/// Runs one job instance from its specification. `wf` is the parsed
/// workflow when the caller has it (in-process); otherwise the
/// specification's text is loaded.
pub async fn execute(spec: JobSpecification, wf: Option<Arc<Workflow>>, host: JobHost) -> JobEnd {
    let wf = match wf {
        Some(wf) => wf,
        None => match crate::prepare::load_one(&spec.workflow_path, &spec.workflow_text) {
            Ok(wf) => Arc::new(wf),
            Err(b) => {
                let msg = format!("cannot load the job's workflow: {}", b.first_line());
                host.sink
                    .annotate(crate::run::error_annotation(&spec.key, &msg));
                return JobEnd::failed();
            }
        },
    };
    if !wf.jobs.contains_key(&spec.job) {
        let msg = format!("{} has no job '{}'", spec.workflow_path, spec.job);
        host.sink
            .annotate(crate::run::error_annotation(&spec.key, &msg));
        return JobEnd::failed();
    }
    let masker = host.masker.unwrap_or_default();
    for v in spec.secrets.values() {
        masker.add(v);
    }
    let cfg = RunConfig {
        store: host.store.clone(),
        source: host.source,
        event: Event {
            name: spec.event_name.clone(),
            git_ref: spec.git_ref.clone(),
            base_ref: None,
            action: None,
            changed_files: None,
        },
        payload: None,
        inputs: IndexMap::new(),
        secrets: spec.secrets.clone(),
        vars: spec.vars.clone(),
        job_filter: None,
        parallel: 1,
        cpu_aware: false,
        approve: Vec::new(),
        approver: None,
        grace: Grace {
            interrupt: Duration::from_millis(spec.grace_interrupt_ms),
            terminate: Duration::from_millis(spec.grace_terminate_ms),
        },
        events: None,
        cancel: host.cancel.clone(),
        debug: spec.debug,
        action_map: spec.action_map.clone(),
        dry_run: spec.dry_run,
        reuse: IndexMap::new(),
        environment_secrets: IndexMap::new(),
        environment_vars: IndexMap::new(),
        deployer: host.deployer,
        executor: None,
        continue_run: None,
        rules: None,
    };
    // The event payload lives in this machine's run directory (an agent's
    // differs from the server's).
    let run_dir = host.store.run_dir(spec.run);
    let mut github = spec.github.clone();
    let event_path = run_dir.join("event.json");
    if !event_path.exists() {
        let _ = crate::private::dir(&run_dir);
        let _ = crate::private::write(
            &event_path,
            github
                .get("event")
                .map(Value::to_json_pretty)
                .unwrap_or_default(),
        );
    }
    github.insert("event_path", Value::str(event_path.to_string_lossy()));
    let shared = Arc::new(Shared {
        run_dir,
        cfg,
        run_id: spec.run,
        masker,
        // Never saved: this job's record goes to the sink.
        record: Mutex::new(RunRecord {
            id: spec.run,
            workflow: String::new(),
            workflow_path: spec.workflow_path.clone(),
            event: spec.event_name.clone(),
            git_ref: spec.git_ref.clone(),
            sha: spec.source.sha.clone(),
            repository: spec.source.repository.clone(),
            status: RunStatus::Running,
            started_at: String::new(),
            duration_ms: 0,
            title: None,
            jobs: Vec::new(),
            annotations: Vec::new(),
        }),
        slots: Arc::new(tokio::sync::Semaphore::new(1)),
        active: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        admission: tokio::sync::Mutex::new(()),
        groups: Groups::default(),
        github,
        started: Instant::now(),
        last_save: Mutex::new(Instant::now()),
        sink: Some(host.sink),
        artifacts: host.artifacts,
        spawner: host.spawner,
        runner_name: host.runner_name.unwrap_or_else(|| "launchway".into()),
    });
    let scope = Scope {
        text: Arc::from(spec.workflow_text.as_str()),
        wf,
        inputs: spec.inputs.clone(),
        secrets: Value::Object(
            spec.secrets
                .iter()
                .map(|(k, v)| (k.clone(), Value::str(v)))
                .collect(),
        ),
        key_prefix: String::new(),
        depth: 0,
        ordinal: Vec::new(),
    };
    let inner = job::JobSpec {
        id: spec.job.clone(),
        key: spec.key.clone(),
        ordinal: spec.ordinal.clone(),
        matrix: spec
            .matrix
            .as_ref()
            .and_then(|m| match Value::from_json(m) {
                Value::Object(o) => Some(o),
                _ => None,
            }),
        index: spec.index,
        total: spec.total,
        fail_fast: spec.fail_fast,
        max_parallel: spec.max_parallel.unwrap_or(usize::MAX),
        needs: spec.needs.clone(),
        vars: Value::Object(
            spec.vars
                .iter()
                .map(|(k, v)| (k.clone(), Value::str(v)))
                .collect(),
        ),
    };
    job::run_job(
        &shared,
        &scope,
        inner,
        spec.environment.clone(),
        host.cancel,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_with_aliases() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut aliases = IndexMap::new();
        aliases.insert("ubuntu-latest".to_string(), Vec::new());
        aliases.insert("gpu-box".to_string(), l(&["gpu", "x64"]));
        assert!(labels_match(
            &l(&["ubuntu-latest"]),
            &l(&["linux"]),
            &aliases
        ));
        assert!(labels_match(
            &l(&["self-hosted", "GPU"]),
            &l(&["self-hosted", "gpu"]),
            &aliases
        ));
        assert!(!labels_match(&l(&["gpu"]), &l(&["linux"]), &aliases));
        assert!(labels_match(
            &l(&["gpu-box"]),
            &l(&["gpu", "x64", "linux"]),
            &aliases
        ));
        assert!(!labels_match(&l(&["gpu-box"]), &l(&["gpu"]), &aliases));
        assert!(labels_match(&[], &l(&["x"]), &aliases));
    }
}
