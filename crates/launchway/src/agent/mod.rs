//! `launchway agent`: a runner process. It claims jobs whose `runs-on`
//! labels it has from a server, runs each from its specification in its
//! own work dir, streams the job's progress back (masked here, before it
//! leaves), and removes what the job left once it ended. Secrets arrive in
//! memory with the job and are never written here.

pub mod http;
pub mod launcher;
pub mod procs;
pub mod sandbox;
mod source;

use http::{Channel, ChannelError, encode};
use launchway_runner::cancel::Cancel;
use launchway_runner::commands::Annotation;
use launchway_runner::deployer::{
    DeployFuture, DeployOutcome, DeployRequest, Deployer, ModelRequest,
};
use launchway_runner::job::JobEnd;
use launchway_runner::record::{JobRecord, RunEvent};
use launchway_runner::spec::{Artifacts, JobHost, JobSink};
use launchway_runner::store::Store;
use launchway_server::agents::{Assignment, Report, ReportAnswer};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An agent's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub channel: Channel,
    pub work: PathBuf,
    pub labels: Vec<String>,
    pub max_jobs: usize,
    /// Run each step in a Landlock domain of its own job.
    pub sandbox_steps: bool,
    /// Where jobs' processes are kept track of (and killed at their end).
    pub tracker: procs::Tracker,
    /// This program, for `launchway sandbox-exec`.
    pub exe: PathBuf,
    /// The agent's name (`RUNNER_NAME` in its jobs).
    pub name: String,
    /// This run of the agent process (the server fails the jobs an earlier
    /// one took: nothing runs them any more).
    pub session: String,
}

/// Runs until `stop` is cancelled; then running jobs are cancelled (their
/// `always()` steps run) and reported before it returns.
pub async fn run(cfg: Config, stop: Cancel) {
    // What a killed predecessor left in the work dir goes first.
    let runs = cfg.work.join("runs");
    if runs.exists()
        && let Err(e) = std::fs::remove_dir_all(&runs)
    {
        eprintln!("agent: cannot clear {}: {e}", runs.display());
    }
    let cfg = Arc::new(cfg);
    let active: Arc<Mutex<HashMap<u64, usize>>> = Arc::default();
    let sources = Arc::new(tokio::sync::Mutex::new(()));
    let spares = Arc::new(launcher::Spares::start(
        cfg.exe.clone(),
        cfg.work.clone(),
        cfg.sandbox_steps,
        cfg.tracker.clone(),
        cfg.max_jobs,
    ));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..cfg.max_jobs.max(1) {
        let (cfg, stop, active, sources, spares) = (
            cfg.clone(),
            stop.clone(),
            active.clone(),
            sources.clone(),
            spares.clone(),
        );
        workers.spawn(async move { worker(cfg, stop, active, sources, spares).await });
    }
    while workers.join_next().await.is_some() {}
    let _ = tokio::task::spawn_blocking(move || spares.close()).await;
}

async fn worker(
    cfg: Arc<Config>,
    stop: Cancel,
    active: Arc<Mutex<HashMap<u64, usize>>>,
    sources: Arc<tokio::sync::Mutex<()>>,
    spares: Arc<launcher::Spares>,
) {
    let mut backoff = Duration::from_millis(500);
    while !stop.is_cancelled() {
        let channel = cfg.channel.clone();
        let body = json!({
            "labels": cfg.labels,
            "version": env!("CARGO_PKG_VERSION"),
            "session": cfg.session,
        });
        let claim = tokio::select! {
            r = tokio::task::spawn_blocking(move || {
                channel.post::<_, Assignment>("/api/agent/claim", &body)
            }) => r,
            () = stop.cancelled() => return,
        };
        match claim {
            Ok(Ok(Some(a))) => {
                backoff = Duration::from_millis(500);
                let run = a.spec.run;
                if let Ok(mut m) = active.lock() {
                    *m.entry(run).or_default() += 1;
                }
                execute(&cfg, a, &stop, &sources, &spares).await;
                let last = active.lock().is_ok_and(|mut m| {
                    let n = m.entry(run).or_default();
                    *n = n.saturating_sub(1);
                    *n == 0
                });
                if last {
                    let _ = std::fs::remove_dir_all(cfg.work.join("runs").join(run.to_string()));
                }
            }
            Ok(Ok(None)) => backoff = Duration::from_millis(500),
            Ok(Err(e)) => {
                eprintln!("agent: claiming a job: {e}");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(e) => {
                eprintln!("agent: {e}");
                return;
            }
        }
    }
}

/// Reports buffered between flushes; a newer record of the job replaces
/// the older one.
#[derive(Default)]
struct Outbox {
    reports: Vec<Report>,
}

struct RemoteSink {
    outbox: Mutex<Outbox>,
    wake: tokio::sync::Notify,
}

impl JobSink for RemoteSink {
    fn event(&self, ev: RunEvent) {
        self.push(Report::Event { event: ev });
    }
    fn job(&self, rec: JobRecord) {
        // The newest record replaces the older one and goes with the next
        // flush (a quarter second at most): waking the flusher for every
        // step's record sent a request per step, and the server's work on
        // each competed with the steps themselves (issue 10's overhead).
        if let Ok(mut o) = self.outbox.lock() {
            o.reports.retain(|r| !matches!(r, Report::Record { .. }));
            o.reports.push(Report::Record {
                record: Box::new(rec),
            });
        }
    }
    fn annotate(&self, a: Annotation) {
        self.push(Report::Annotation { annotation: a });
    }
}

impl RemoteSink {
    fn push(&self, r: Report) {
        let n = self.outbox.lock().map_or(0, |mut o| {
            o.reports.push(r);
            o.reports.len()
        });
        if n >= 500 {
            self.wake.notify_one();
        }
    }

    fn requeue(&self, mut older: Vec<Report>) {
        if let Ok(mut o) = self.outbox.lock() {
            older.append(&mut o.reports);
            o.reports = older;
        }
    }

    fn take(&self) -> Vec<Report> {
        self.outbox
            .lock()
            .map(|mut o| std::mem::take(&mut o.reports))
            .unwrap_or_default()
    }
}

/// The most a report request carries (the server takes up to 64 MiB; one
/// larger report goes alone).
const MAX_REPORT_BYTES: usize = 8 << 20;

/// Sends what the job reported, in requests of at most [`MAX_REPORT_BYTES`]
/// (an empty one is a heartbeat). Returns whether the server asked to cancel
/// — `Err(true)` when the job is no longer ours, `Err(false)` when the
/// server could not be reached — and the reports not sent, to send again
/// (nothing is sent twice).
async fn flush(
    channel: &Channel,
    job: i64,
    reports: Vec<Report>,
) -> (Result<bool, bool>, Vec<Report>) {
    let path = format!("/api/agent/jobs/{job}/report");
    let mut rest = reports;
    let mut cancel = false;
    loop {
        let mut size = 0;
        let mut n = 0;
        for r in &rest {
            let s = serde_json::to_vec(r).map_or(0, |v| v.len());
            if n > 0 && size + s > MAX_REPORT_BYTES {
                break;
            }
            size += s;
            n += 1;
        }
        let chunk: Vec<Report> = rest.drain(..n).collect();
        let (c, p) = (channel.clone(), path.clone());
        let body = json!({ "reports": chunk });
        let r = tokio::task::spawn_blocking(move || c.post::<_, ReportAnswer>(&p, &body)).await;
        let failed = match r {
            Ok(Ok(a)) => {
                cancel |= a.is_some_and(|a| a.cancel);
                None
            }
            Ok(Err(e)) if e.is_gone() => Some(true),
            Ok(Err(e)) => {
                eprintln!("agent: job {job}: reporting: {e}");
                Some(false)
            }
            Err(_) => Some(false),
        };
        if let Some(gone) = failed {
            let mut back = chunk;
            back.append(&mut rest);
            return (Err(gone), back);
        }
        if rest.is_empty() {
            return (Ok(cancel), Vec::new());
        }
    }
}

async fn execute(
    cfg: &Arc<Config>,
    a: Assignment,
    stopping: &Cancel,
    sources: &Arc<tokio::sync::Mutex<()>>,
    spares: &launcher::Spares,
) {
    let cancel = stopping.child();
    let job = a.job;
    let key = a.spec.key.clone();
    let run = a.spec.run;
    let sink = Arc::new(RemoteSink {
        outbox: Mutex::new(Outbox::default()),
        wake: tokio::sync::Notify::new(),
    });
    // Reports go out every quarter second (and at least every heartbeat);
    // the answer may ask for cancellation. The flusher is stopped between
    // two flushes, never during one, so reports arrive in order.
    let done = Cancel::new();
    let flusher = {
        let (sink, channel, cancel, done) = (
            sink.clone(),
            cfg.channel.clone(),
            cancel.clone(),
            done.clone(),
        );
        let beat = Duration::from_secs(a.heartbeat_seconds.max(1));
        tokio::spawn(async move {
            let mut last = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    () = sink.wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                    () = done.cancelled() => return,
                }
                let reports = sink.take();
                if reports.is_empty() && last.elapsed() < beat {
                    continue;
                }
                let (answer, unsent) = flush(&channel, job, reports).await;
                match answer {
                    Ok(true) => cancel.cancel(),
                    Ok(false) => {}
                    // Sent again with the next flush.
                    Err(false) => sink.requeue(unsent),
                    Err(true) => {
                        eprintln!("agent: job {job} is no longer this agent's; stopping it");
                        cancel.cancel();
                        return;
                    }
                }
                last = tokio::time::Instant::now();
            }
        })
    };
    // Each step starts from the job's launcher, inside its sandbox: the
    // spare one when it is ready (its cgroup becomes the job's), else one
    // started now, while the source is prepared.
    let spare = spares.take();
    let processes = match &spare {
        Some(s) => cfg.tracker.adopt(job, s.cgroup.clone()),
        None => cfg.tracker.job(job),
    };
    let launcher = Arc::new(launcher::Launcher::new(
        cfg.exe.clone(),
        cfg.work.clone(),
        sandbox::StepJob {
            cgroup: processes.cgroup.clone(),
            tracking_id: processes.tracking_id.clone(),
            landlock: cfg.sandbox_steps,
        },
        spare,
    ));
    launcher.prestart(Store::new(cfg.work.clone()).job_dir(run, &key));
    let source = {
        let _one_at_a_time = sources.lock().await;
        let (channel, work, info) = (cfg.channel.clone(), cfg.work.clone(), a.spec.source.clone());
        tokio::task::spawn_blocking(move || source::prepare(&channel, &work, job, &info))
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
    };
    let end = match source {
        Ok(source) => {
            let remote = Arc::new(Remote {
                channel: cfg.channel.clone(),
                job,
            });
            let host = JobHost {
                store: Store::new(cfg.work.clone()),
                source,
                sink: sink.clone(),
                deployer: Some(remote.clone()),
                cancel: cancel.clone(),
                masker: None,
                artifacts: Some(remote),
                runner_name: Some(cfg.name.clone()),
                spawner: Some(launcher.clone()),
            };
            launchway_runner::spec::execute(a.spec, None, host).await
        }
        Err(e) => {
            sink.annotate(Annotation::error(
                &key,
                &format!("the agent could not get the job's commit: {e}"),
            ));
            JobEnd::failed()
        }
    };
    // What the job left running goes with it, as on GitHub's runner.
    let left = tokio::task::spawn_blocking(move || {
        launcher.close();
        processes.end()
    })
    .await
    .unwrap_or(0);
    if left > 0 {
        eprintln!("agent: job {job}: killed {left} process(es) it left running");
    }
    done.cancel();
    let _ = flusher.await;
    // The last reports, then the end; a server that is briefly away gets
    // them when it answers again.
    // While the agent stops, a server that does not answer gets ten seconds.
    let attempts = if stopping.is_cancelled() { 5u32 } else { 60 };
    let mut reports = sink.take();
    for attempt in 0..attempts {
        let (answer, unsent) = flush(&cfg.channel, job, std::mem::take(&mut reports)).await;
        match answer {
            Ok(_) | Err(true) => break,
            Err(false) => {
                reports = unsent;
                reports.extend(sink.take());
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt.min(10) + 1)))
                    .await;
            }
        }
    }
    for attempt in 0..attempts {
        let channel = cfg.channel.clone();
        let path = format!("/api/agent/jobs/{job}/finish");
        let body = json!({ "end": end });
        let r = tokio::task::spawn_blocking(move || channel.post::<_, Value>(&path, &body)).await;
        match r {
            Ok(Ok(_)) => break,
            Ok(Err(e)) if e.is_gone() => break,
            Ok(Err(e)) => {
                eprintln!("agent: job {job}: reporting its end: {e}");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt.min(10) + 1)))
                    .await;
            }
            Err(_) => break,
        }
    }
    // Nothing of the job stays: its directory and log go.
    let store = Store::new(cfg.work.clone());
    let _ = std::fs::remove_dir_all(store.job_dir(run, &key));
    let _ = std::fs::remove_file(
        store
            .run_dir(run)
            .join(launchway_runner::store::job_log(&key)),
    );
}

/// The server, for the job's artifacts and deploy steps.
struct Remote {
    channel: Channel,
    job: i64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Artifacts for Remote {
    fn publish(&self, name: &str, dir: &Path, manifest: &Value) -> Result<(), String> {
        for f in manifest["files"].as_array().cloned().unwrap_or_default() {
            let rel = f["path"].as_str().unwrap_or("");
            let data = std::fs::read(dir.join(rel)).map_err(|e| format!("{rel}: {e}"))?;
            let path: Vec<String> = rel.split('/').map(encode).collect();
            self.channel
                .put_bytes(
                    &format!(
                        "/api/agent/jobs/{}/artifacts/{}/{}",
                        self.job,
                        encode(name),
                        path.join("/")
                    ),
                    &data,
                    false,
                )
                .map_err(|e| e.to_string())?;
        }
        let text = serde_json::to_vec(manifest).map_err(|e| e.to_string())?;
        self.channel
            .put_bytes(
                &format!("/api/agent/jobs/{}/manifests/{}", self.job, encode(name)),
                &text,
                true,
            )
            .map_err(|e| e.to_string())
    }

    fn fetch(&self, artifacts_dir: &Path) -> Result<(), String> {
        use sha2::Digest;
        let manifests: Vec<Value> = self
            .channel
            .get_json(&format!("/api/agent/jobs/{}/artifacts", self.job))
            .map_err(|e| e.to_string())?;
        for m in manifests {
            let name = m["name"].as_str().unwrap_or("");
            if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
                continue;
            }
            let dest = artifacts_dir.join(name);
            if dest.exists() {
                continue;
            }
            let tmp = artifacts_dir.join(format!(".{name}.partial"));
            let _ = std::fs::remove_dir_all(&tmp);
            for f in m["files"].as_array().cloned().unwrap_or_default() {
                let rel = f["path"].as_str().unwrap_or("");
                if rel.is_empty()
                    || rel
                        .split('/')
                        .any(|c| c.is_empty() || c == "." || c == "..")
                {
                    return Err(format!("artifact '{name}' lists a bad path '{rel}'"));
                }
                let path: Vec<String> = rel.split('/').map(encode).collect();
                let data = self
                    .channel
                    .get_bytes(&format!(
                        "/api/agent/jobs/{}/artifacts/{}/{}",
                        self.job,
                        encode(name),
                        path.join("/")
                    ))
                    .map_err(|e| format!("artifact '{name}' file '{rel}': {e}"))?;
                if f["sha256"].as_str() != Some(hex(&sha2::Sha256::digest(&data)).as_str()) {
                    return Err(format!(
                        "artifact '{name}' file '{rel}' does not match its digest"
                    ));
                }
                let target = tmp.join(rel);
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
                }
                std::fs::write(&target, &data).map_err(|e| e.to_string())?;
            }
            std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, &dest).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl Deployer for Remote {
    fn deploy(&self, r: DeployRequest) -> DeployFuture<'_> {
        let channel = self.channel.clone();
        let path = format!("/api/agent/jobs/{}/deploy", self.job);
        Box::pin(async move {
            let body = json!({
                "environment": r.environment,
                "directory": r.dir.to_string_lossy(),
                "release": r.release,
                "sets": r.sets,
                "branch": r.branch,
                "actor": r.actor,
                "wait": r.wait,
                "wait_started": r.wait_started,
                "timeout_ms": u64::try_from(r.timeout.as_millis()).unwrap_or(u64::MAX),
            });
            let answer =
                tokio::task::spawn_blocking(move || channel.post::<_, Value>(&path, &body))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e: ChannelError| e.to_string())?
                    .unwrap_or_default();
            let s = |k: &str| answer[k].as_str().map(str::to_string);
            Ok(DeployOutcome {
                commit: s("commit"),
                revision: s("revision"),
                url: s("url"),
                log: answer["log"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
    }

    fn register_model(&self, r: ModelRequest) -> Result<u64, String> {
        let body = match &r.file {
            Some(f) => std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?,
            None => Vec::new(),
        };
        let mut q = format!(
            "/api/agent/jobs/{}/models?name={}&aliases={}&source={}",
            self.job,
            encode(&r.name),
            encode(&r.aliases.join(",")),
            encode(&r.source)
        );
        if let Some(v) = r.version {
            q.push_str(&format!("&version={v}"));
        }
        let answer: Value = tokio::task::block_in_place(|| self.channel.post_bytes(&q, &body))
            .map_err(|e| e.to_string())?;
        answer["version"]
            .as_u64()
            .ok_or_else(|| "the server did not say which version it registered".to_string())
    }
}
