//! The GitOps reconciler: the environment files at the tracked branch's
//! head are the desired state; the local runtime is the live state. On
//! every new commit and on an interval it compares the two per
//! environment, applies the difference, and records sync status
//! (Synced/OutOfSync), health, the revision deployed and a history of
//! deployments with the commit that caused each.
//!
//! Status and history are files under the reconciler's data directory
//! (`status/<env>.json`, `history/<env>.jsonl`), so the CLI, the server's
//! API and a later reconciler read the same truth.

use crate::config::{Environment, Target};
use crate::dataplane::DataPlane;
use crate::gitops::{Author, git};
use crate::local::{Health, LocalEnvironment};
use crate::tree::{self, Tree};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the reconciler follows.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// The repository (or a folder of it run as its own).
    pub root: PathBuf,
    /// The environment files' directory, relative to `root`.
    pub env_dir: PathBuf,
    /// The tracked branch (default: whatever HEAD is).
    pub branch: Option<String>,
    /// Reconcile only these environments (default: all).
    pub only: Vec<String>,
    /// The first stable address of an environment (later ones reuse
    /// whatever address it had).
    pub listen: BTreeMap<String, String>,
    /// The built-in model registry (pinned versions found there reach the
    /// service as `MODEL_PATH`).
    pub registry: Option<PathBuf>,
    /// Stop an environment whose file was deleted even when it is
    /// protected or when no environment file is left (off: those are
    /// refused and keep serving, as Argo CD's defaults do).
    pub prune: bool,
    /// Where the data plane serves every environment's metrics
    /// (Prometheus text at `/metrics`), if anywhere.
    pub metrics_listen: Option<String>,
}

impl Tracked {
    fn rev(&self) -> String {
        match &self.branch {
            Some(b) => format!("refs/heads/{b}"),
            None => "HEAD".into(),
        }
    }
}

/// Where a repository's environments keep their state under `home`
/// (the data dir's `environments/`): one directory per repository folder.
pub fn data_dir(home: &Path, root: &Path) -> PathBuf {
    use sha2::{Digest, Sha256};
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let digest = Sha256::digest(root.to_string_lossy().as_bytes());
    let name: String = root
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "repo".into())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    home.join(format!("{name}-{hex}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncStatus {
    Synced,
    OutOfSync,
    /// The reconciler does not apply this target.
    Unknown,
}

/// One environment as the reconciler last saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvStatus {
    pub environment: String,
    pub sync: SyncStatus,
    pub health: String,
    /// The commit that last changed the environment's files at the
    /// tracked head (what should run).
    pub revision: Option<String>,
    /// The revision of what runs.
    pub deployed_revision: Option<String>,
    pub release: Option<String>,
    /// The environment's stable address.
    pub address: Option<String>,
    pub replicas: Vec<ReplicaStatus>,
    pub message: String,
    pub self_heal: bool,
    pub target: String,
    /// Unix seconds.
    pub checked_at: u64,
    /// `running`, or `down`: no reconciler holds the data directory, so
    /// this is its last record plus what the data plane serves now.
    #[serde(default = "running_word")]
    pub reconciler: String,
    /// With the reconciler down: how many routed replicas accept
    /// connections right now (0: the service is down too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_replicas: Option<usize>,
    /// The model the replicas serve (`name@version`), when one is pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

fn running_word() -> String {
    "running".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub port: u16,
    pub pid: Option<u32>,
}

/// One deployment (or heal, or removal) in an environment's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub environment: String,
    pub revision: Option<String>,
    /// The commit's author and subject: who changed what.
    pub author: String,
    pub subject: String,
    pub release: Option<String>,
    /// `succeeded`, `failed`, `aborted` (a rollout), `healed`, `removed`,
    /// `invalid` or `prune-refused`.
    pub result: String,
    /// The model pinned (`name@version`), for a deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub message: String,
    pub started_at: u64,
    pub finished_at: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads the statuses the reconciler of `data` wrote, by environment.
pub fn statuses(data: &Path) -> Vec<EnvStatus> {
    let mut out: Vec<EnvStatus> = std::fs::read_dir(data.join("status"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect();
    out.sort_by(|a, b| a.environment.cmp(&b.environment));
    out
}

/// The statuses of `data`, told apart when no reconciler runs: then each
/// says `reconciler: down`, and whether its data plane still serves (the
/// replicas it routes to accept connections) or the service is down too.
pub fn observe(data: &Path) -> Vec<EnvStatus> {
    let mut list = statuses(data);
    if running(data).is_some() {
        return list;
    }
    let plane = crate::dataplane::status_blocking(data);
    for st in &mut list {
        st.reconciler = "down".into();
        let site = plane
            .as_ref()
            .and_then(|p| p.sites.iter().find(|s| s.environment == st.environment));
        let answering = site.map_or(0, |s| {
            s.backends
                .iter()
                .filter(|b| {
                    std::net::TcpStream::connect_timeout(&b.addr, Duration::from_millis(300))
                        .is_ok()
                })
                .count()
        });
        st.serving_replicas = Some(answering);
        let was = std::mem::take(&mut st.message);
        if answering > 0 {
            st.message = format!(
                "reconciler down: {answering} replica(s) keep serving at {} (last recorded: {was})",
                site.map(|s| s.address.to_string()).unwrap_or_default()
            );
        } else {
            st.health = "Unknown".into();
            st.message = if site.is_some() {
                format!(
                    "reconciler down and nothing answers behind the address (last recorded: {was})"
                )
            } else {
                format!(
                    "reconciler down and no data plane serves this environment (last recorded: {was})"
                )
            };
        }
    }
    list
}

/// An environment's deployment history, oldest first.
pub fn history(data: &Path, env: &str) -> Vec<HistoryEntry> {
    std::fs::read_to_string(data.join("history").join(format!("{env}.jsonl")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn append_history(data: &Path, entry: &HistoryEntry) {
    use std::io::Write;
    let dir = data.join("history");
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{}.jsonl", entry.environment)))
        && let Ok(line) = serde_json::to_string(entry)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn write_status(data: &Path, status: &EnvStatus) {
    let dir = data.join("status");
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(".{}.json", status.environment));
    if let Ok(bytes) = serde_json::to_vec_pretty(status)
        && std::fs::write(&tmp, bytes).is_ok()
    {
        let _ = std::fs::rename(tmp, dir.join(format!("{}.json", status.environment)));
    }
}

/// Where an environment's secrets come from, by the environment's name
/// as workflows use it (`environment:` in its file, else the file stem).
pub type SecretsFor = Box<
    dyn Fn(
            String,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = BTreeMap<String, String>> + Send>>
        + Send
        + std::marker::Sync,
>;

/// The name an environment's secrets are kept under.
pub fn secrets_name(env: &Environment) -> String {
    env.display_name.clone().unwrap_or_else(|| env.name.clone())
}

/// Locks held for a reconciler's life (released by the system if it dies).
pub struct Locks {
    _data: std::fs::File,
    _repo: Option<std::fs::File>,
}

fn try_lock_file(path: &Path) -> Result<Option<std::fs::File>, String> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(f.try_lock().is_ok().then_some(f))
}

/// One reconciler per data directory and per repository: a second one —
/// even with another data directory, say a `launchway sync` next to a
/// `launchway serve` — would run every environment twice.
/// `reconciler.pid` says who holds the lock and which branch it follows.
pub fn lock(data: &Path, root: &Path, branch: Option<&str>) -> Result<Locks, String> {
    std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let Some(data_lock) = try_lock_file(&data.join("reconciler.lock"))? else {
        let pid = running(data).map_or_else(String::new, |p| format!(" (pid {p})"));
        return Err(format!(
            "another reconciler{pid} already runs the environments kept in {}",
            data.display()
        ));
    };
    // The repository's own lock lives in its git dir (shared by every
    // data directory); its holder writes where its state is.
    let git_dir = crate::gitops::git(
        root,
        &["rev-parse", "--absolute-git-dir"],
        &crate::gitops::Author::default(),
    )
    .ok()
    .map(PathBuf::from);
    // Per folder: two services of one repository have a reconciler each.
    let key = {
        use sha2::{Digest, Sha256};
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let d = Sha256::digest(root.to_string_lossy().as_bytes());
        d[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let repo_lock = match &git_dir {
        Some(g) => {
            let path = g.join(format!("launchway-reconciler-{key}.lock"));
            match try_lock_file(&path)? {
                Some(f) => {
                    let _ = std::fs::write(
                        g.join(format!("launchway-reconciler-{key}.owner")),
                        format!("{}\n{}\n", std::process::id(), data.display()),
                    );
                    Some(f)
                }
                None => {
                    let owner = std::fs::read_to_string(
                        g.join(format!("launchway-reconciler-{key}.owner")),
                    )
                    .unwrap_or_default();
                    let mut lines = owner.lines();
                    let pid = lines.next().unwrap_or("?");
                    let dir = lines.next().unwrap_or("?");
                    return Err(format!(
                        "another reconciler (pid {pid}, state in {dir}) already runs the environments of {}; running both would start everything twice",
                        root.display()
                    ));
                }
            }
        }
        None => None,
    };
    std::fs::write(
        data.join("reconciler.pid"),
        format!("{}\n{}\n", std::process::id(), branch.unwrap_or("")),
    )
    .map_err(|e| e.to_string())?;
    Ok(Locks {
        _data: data_lock,
        _repo: repo_lock,
    })
}

/// The branch the reconciler of `data` follows (`None`: HEAD's).
pub fn tracked_branch(data: &Path) -> Option<String> {
    std::fs::read_to_string(data.join("reconciler.pid"))
        .ok()?
        .lines()
        .nth(1)
        .map(str::to_string)
        .filter(|b| !b.is_empty())
}

/// The process id of the reconciler holding `data`'s lock, if one does.
pub fn running(data: &Path) -> Option<u32> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(data.join("reconciler.lock"))
        .ok()?;
    match f.try_lock() {
        Ok(()) => None,
        Err(_) => std::fs::read_to_string(data.join("reconciler.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok(),
    }
}

/// What the reconciler saw of one environment that runs here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// What runs is what git says (release, command, replicas, config).
    pub runs_desired: bool,
    /// This revision's deployment already failed.
    pub failed_before: bool,
    /// Some replica is not running.
    pub drift: bool,
    pub self_heal: bool,
    /// A manual sync asked for this pass.
    pub forced: bool,
}

/// What to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Roll out what git says.
    Deploy,
    /// Leave the failed revision alone until a new commit or a manual sync.
    HoldFailed,
    /// Start the deployment over to heal drift (a manual sync, self-heal off).
    Redeploy,
    /// Nothing to apply: in sync, or self-heal restarting a replica, or
    /// drift shown until a sync.
    Observe,
}

/// The reconciler's decision for one environment. Pure.
pub fn plan(o: Observed) -> Action {
    if !o.runs_desired {
        return if o.failed_before && !o.forced {
            Action::HoldFailed
        } else {
            Action::Deploy
        };
    }
    if o.drift && o.forced && !o.self_heal {
        Action::Redeploy
    } else {
        Action::Observe
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Managed>>>;

/// An environment the reconciler runs.
struct Managed {
    local: Arc<LocalEnvironment>,
    deployed_revision: Option<String>,
    /// The revision whose deployment failed, and why (not retried until a
    /// new commit or a manual sync).
    failed: Option<(String, String)>,
    /// Drift already written to the history.
    drift_seen: bool,
    /// Why the last full pass left it out of sync (invalid commit, held
    /// failure, refused prune): shown until a pass says otherwise.
    reason: Option<String>,
    /// Its file has `protection:` rules (a deleted file is not pruned
    /// without the explicit prune setting).
    protected: bool,
}

pub struct Reconciler {
    tracked: Tracked,
    data: PathBuf,
    health_timeout: Duration,
    /// Each environment's slot: locked while it is reconciled (a rollout
    /// of one environment never holds up another's).
    envs: std::sync::Mutex<BTreeMap<String, Slot>>,
    /// The same environments' runtimes, reachable while a slot is busy
    /// (to stop everything without waiting for a rollout to end).
    locals: std::sync::Mutex<BTreeMap<String, Arc<LocalEnvironment>>>,
    wake: tokio::sync::Notify,
    /// Environments to heal or retry on the next pass (a manual sync).
    forced: std::sync::Mutex<Vec<String>>,
    secrets: SecretsFor,
    /// The process that holds the addresses and routes (not this one).
    plane: Arc<DataPlane>,
}

impl Reconciler {
    /// A reconciler whose environments have no secrets. `dataplane` is
    /// the `launchway` executable that runs the data plane.
    pub fn new(
        tracked: Tracked,
        data: PathBuf,
        health_timeout: Duration,
        dataplane: &Path,
    ) -> Arc<Reconciler> {
        Self::with_secrets(
            tracked,
            data,
            health_timeout,
            dataplane,
            Box::new(|_| Box::pin(async { BTreeMap::new() })),
        )
    }

    /// Where each environment's secrets come from (the server's sealed
    /// store); they reach the replicas as environment variables.
    pub fn with_secrets(
        tracked: Tracked,
        data: PathBuf,
        health_timeout: Duration,
        dataplane: &Path,
        secrets: SecretsFor,
    ) -> Arc<Reconciler> {
        Arc::new(Reconciler {
            plane: Arc::new(DataPlane::new(&data, dataplane)),
            tracked,
            data,
            health_timeout,
            envs: std::sync::Mutex::new(BTreeMap::new()),
            locals: std::sync::Mutex::new(BTreeMap::new()),
            wake: tokio::sync::Notify::new(),
            forced: std::sync::Mutex::new(Vec::new()),
            secrets,
        })
    }

    pub fn data(&self) -> &Path {
        &self.data
    }

    pub fn tracked(&self) -> &Tracked {
        &self.tracked
    }

    /// Look now (a new commit arrived).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A manual sync: heal drift and retry a failed deployment of `env`
    /// on the next pass, whatever the self-heal setting.
    pub fn force(&self, env: &str) {
        if let Ok(mut f) = self.forced.lock() {
            f.push(env.to_string());
        }
        self.wake();
    }

    /// Reconciles until `stop` resolves: at once, on every [`wake`], and
    /// every `interval`. The environments keep running afterwards unless
    /// `stop_replicas` (a later reconciler adopts them).
    ///
    /// [`wake`]: Reconciler::wake
    pub async fn run(
        self: Arc<Self>,
        interval: Duration,
        stop: impl std::future::Future<Output = ()>,
        stop_replicas: bool,
    ) {
        tokio::pin!(stop);
        self.plane.set_metrics(self.tracked.metrics_listen.clone());
        if let Err(e) = self.plane.ensure().await {
            eprintln!("data plane: {e}");
        }
        let mut last_head = None;
        let mut last_full = std::time::Instant::now();
        loop {
            // A new head is looked for often (cheap); a full pass also
            // runs on the interval to catch drift.
            let head = self.head();
            if head != last_head || last_full.elapsed() >= interval || self.has_forced() {
                last_head = head;
                last_full = std::time::Instant::now();
                self.reconcile_once().await;
            } else {
                self.refresh().await;
            }
            tokio::select! {
                () = &mut stop => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
        let slots: Vec<(String, Slot)> = self
            .envs
            .lock()
            .map(|mut m| std::mem::take(&mut *m).into_iter().collect())
            .unwrap_or_default();
        for (name, slot) in slots {
            if stop_replicas {
                // Stopping does not wait for a rollout: its new replicas die
                // with the task when this process exits.
                let local = match slot.try_lock() {
                    Ok(mut g) => g.take().map(|m| m.local),
                    Err(_) => self.locals.lock().ok().and_then(|l| l.get(&name).cloned()),
                };
                if let Some(l) = local {
                    l.shutdown().await;
                }
            } else if let Some(m) = slot.lock().await.take() {
                // Handing over to a successor: a rollout in progress ends first.
                m.local.release();
            }
        }
        if stop_replicas {
            self.plane.shutdown().await;
        } else {
            // The data plane keeps serving for a successor.
            self.plane.detach().await;
        }
    }

    fn slots(&self) -> Vec<(String, Slot)> {
        self.envs
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    fn slot(&self, name: &str) -> Option<Slot> {
        self.envs.lock().ok().map(|mut m| {
            m.entry(name.to_string())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(None)))
                .clone()
        })
    }

    fn has_forced(&self) -> bool {
        self.forced.lock().map(|f| !f.is_empty()).unwrap_or(false)
    }

    fn head(&self) -> Option<String> {
        git(
            &self.tracked.root,
            &["rev-parse", "-q", "--verify", &self.tracked.rev()],
            &Author::default(),
        )
        .ok()
    }

    /// Re-reads live state into the status files between full passes, so
    /// a killed replica shows as OutOfSync within a fraction of a second.
    async fn refresh(&self) {
        for (name, slot) in self.slots() {
            // One being reconciled writes its own status.
            let Ok(guard) = slot.try_lock() else {
                continue;
            };
            let Some(m) = guard.as_ref() else {
                continue;
            };
            let Some(mut st) = read_status(&self.data, &name) else {
                continue;
            };
            let fresh = self.live_status(&name, m, st.revision.clone(), st.self_heal, st.sync);
            if fresh.health != st.health
                || fresh.sync != st.sync
                || fresh.message != st.message
                || fresh.release != st.release
            {
                st = fresh;
                write_status(&self.data, &st);
            }
        }
    }

    /// One full pass over every environment at the tracked head: each is
    /// reconciled in its own task; one still busy (rolling out) is left
    /// to finish and looked at again on the next pass.
    pub async fn reconcile_once(self: &Arc<Self>) {
        let forced: Vec<String> = self
            .forced
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or_default();
        let Some(head) = self.head() else {
            return;
        };
        let tree = Tree::Rev {
            dir: self.tracked.root.clone(),
            rev: head.clone(),
        };
        let listed = match tree::environments(&tree, &self.tracked.env_dir) {
            // The head exists but the directory does not: no file is left
            // (the prune guard's case), not an error.
            Err(_)
                if git(
                    &self.tracked.root,
                    &[
                        "cat-file",
                        "-e",
                        &format!("{head}:./{}", self.tracked.env_dir.to_string_lossy()),
                    ],
                    &Author::default(),
                )
                .is_err() =>
            {
                Ok(Vec::new())
            }
            other => other,
        };
        let names: Vec<String> = match &listed {
            Ok(list) => list
                .iter()
                .map(|(n, _)| n.clone())
                .filter(|n| self.tracked.only.is_empty() || self.tracked.only.contains(n))
                .collect(),
            Err(_) => Vec::new(),
        };
        for name in &names {
            let Some(slot) = self.slot(name) else {
                continue;
            };
            let is_forced = forced.contains(name);
            let Ok(guard) = slot.try_lock_owned() else {
                if is_forced && let Ok(mut f) = self.forced.lock() {
                    f.push(name.clone());
                }
                continue;
            };
            let (this, tree, head, name) = (self.clone(), tree.clone(), head.clone(), name.clone());
            tokio::spawn(async move {
                let mut guard = guard;
                let st = this
                    .reconcile_env(&tree, &head, &name, is_forced, &mut guard)
                    .await;
                if let Some(m) = guard.as_mut() {
                    m.reason = (st.sync == SyncStatus::OutOfSync && m.local.drift().is_empty())
                        .then(|| st.message.clone());
                }
                write_status(&this.data, &st);
            });
        }
        match listed {
            Ok(all) => self.prune(&names, all.len(), &head).await,
            Err(e) => {
                // Could not tell which files exist: nothing is pruned.
                eprintln!(
                    "cannot list the environment files at {}: {e}; nothing is pruned",
                    short(&head)
                );
            }
        }
    }

    /// Why deleting `protected`'s file does not stop it, if it does not:
    /// with no environment file left at all (a deleted directory, a bad
    /// merge), or for a protected environment, only the explicit prune
    /// setting lets a deletion stop what serves.
    fn prune_refusal(&self, files_left: usize, protected: bool) -> Option<String> {
        if self.tracked.prune {
            return None;
        }
        if files_left == 0 {
            return Some("no environment file is left at the tracked head".into());
        }
        protected.then(|| "the environment is protected".into())
    }

    /// Environments whose file was deleted: their replicas stop (once a
    /// rollout in progress there has ended) — unless the prune guard
    /// refuses, which keeps them serving and says so in their status.
    async fn prune(self: &Arc<Self>, names: &[String], files_left: usize, head: &str) {
        let with_slot: Vec<(String, Slot)> = match self.envs.lock() {
            Ok(m) => m
                .iter()
                .filter(|(k, _)| !names.contains(k))
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect(),
            Err(_) => Vec::new(),
        };
        // Environments a predecessor left running whose file went while
        // no reconciler ran: taken into a slot (adopted) first.
        let mut left = Vec::new();
        for e in std::fs::read_dir(self.data.join("state"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let file = e.file_name().to_string_lossy().to_string();
            let Some(name) = file.strip_suffix(".json").filter(|n| !n.starts_with('.')) else {
                continue;
            };
            let known = self
                .envs
                .lock()
                .map(|m| m.contains_key(name))
                .unwrap_or(true);
            let ours = self.tracked.only.is_empty() || self.tracked.only.iter().any(|o| o == name);
            if !known && ours && !names.iter().any(|n| n == name) {
                left.push(name.to_string());
            }
        }
        for name in left {
            let Some(slot) = self.slot(&name) else {
                continue;
            };
            let mut g = slot.clone().lock_owned().await;
            if g.is_none() {
                match self.open(&name, None, None).await {
                    Ok(m) => {
                        if let Ok(mut l) = self.locals.lock() {
                            l.insert(name.clone(), m.local.clone());
                        }
                        *g = Some(m);
                    }
                    Err(e) => eprintln!("{name}: cannot take over what was left: {e}"),
                }
            }
            drop(g);
            self.prune_one(name, slot, files_left, head.to_string());
        }
        for (name, slot) in with_slot {
            self.prune_one(name, slot, files_left, head.to_string());
        }
    }

    fn prune_one(self: &Arc<Self>, name: String, slot: Slot, files_left: usize, head: String) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut g = slot.clone().lock_owned().await;
            let Some(m) = g.as_mut() else {
                return;
            };
            let (author, subject) = commit_info(&this.tracked.root, &head);
            if let Some(why) = this.prune_refusal(files_left, m.protected) {
                let msg = format!(
                    "its file was deleted at {}, but {why}: it keeps serving; `launchway sync --prune` (or the file back) decides",
                    short(&head)
                );
                if m.reason.as_deref() != Some(msg.as_str()) {
                    m.reason = Some(msg.clone());
                    append_history(
                        &this.data,
                        &HistoryEntry {
                            environment: name.clone(),
                            revision: Some(head.clone()),
                            author,
                            subject,
                            release: m.local.deployed_release(),
                            result: "prune-refused".into(),
                            model: None,
                            message: msg.clone(),
                            started_at: now(),
                            finished_at: now(),
                        },
                    );
                }
                let st = this.live_status(&name, m, None, true, SyncStatus::OutOfSync);
                write_status(&this.data, &st);
                return;
            }
            let Some(m) = g.take() else { return };
            if let Ok(mut envs) = this.envs.lock()
                && envs.get(&name).is_some_and(|s| Arc::ptr_eq(s, &slot))
            {
                envs.remove(&name);
            }
            if let Ok(mut l) = this.locals.lock() {
                l.remove(&name);
            }
            let started = now();
            m.local.shutdown().await;
            append_history(
                &this.data,
                &HistoryEntry {
                    environment: name.clone(),
                    revision: Some(head.clone()),
                    author,
                    subject,
                    release: None,
                    result: "removed".into(),
                    model: None,
                    message: "the environment's file was deleted; its replicas stopped".into(),
                    started_at: started,
                    finished_at: now(),
                },
            );
            let _ = std::fs::remove_file(this.data.join("status").join(format!("{name}.json")));
            let _ = std::fs::remove_file(this.data.join("state").join(format!("{name}.json")));
        });
    }

    async fn reconcile_env(
        &self,
        tree: &Tree,
        head: &str,
        name: &str,
        forced: bool,
        slot: &mut Option<Managed>,
    ) -> EnvStatus {
        let dir = &self.tracked.env_dir;
        let revision = crate::served::env_revision(&self.tracked.root, dir, head, name);
        if let Some(m) = slot.as_mut() {
            // This pass decides the reason anew.
            m.reason = None;
        }
        let loaded = match tree::load_environment(tree, dir, name) {
            Ok(l) => l,
            Err(e) => return self.plain(name, revision, SyncStatus::OutOfSync, &e.to_string()),
        };
        if let Some(d) = loaded
            .diagnostics
            .iter()
            .find(|d| d.diagnostic.severity == launchway_workflow::Severity::Error)
        {
            let msg = format!(
                "invalid at {}: {}:{}:{}: {}; what runs stays as it is",
                short(head),
                d.file,
                d.diagnostic.span.start.line,
                d.diagnostic.span.start.col,
                d.diagnostic.message
            );
            // Recorded once per revision: the history says why git and
            // what runs differ.
            let last = history(&self.data, name).pop();
            if last.is_none_or(|h| h.result != "invalid" || h.revision != revision) {
                let (author, subject) = revision
                    .as_deref()
                    .map(|r| commit_info(&self.tracked.root, r))
                    .unwrap_or_default();
                append_history(
                    &self.data,
                    &HistoryEntry {
                        environment: name.to_string(),
                        revision: revision.clone(),
                        author,
                        subject,
                        release: slot.as_ref().and_then(|m| m.local.deployed_release()),
                        result: "invalid".into(),
                        model: None,
                        message: msg.clone(),
                        started_at: now(),
                        finished_at: now(),
                    },
                );
            }
            return self.with_live(slot.as_ref(), name, revision, SyncStatus::OutOfSync, &msg);
        }
        let Some(env) = loaded.environment else {
            return self.plain(name, revision, SyncStatus::OutOfSync, "did not load");
        };
        if env.target != Target::Local {
            if let Some(m) = slot.take() {
                // Moved to another target: nothing of it runs here any more.
                if let Ok(mut l) = self.locals.lock() {
                    l.remove(name);
                }
                m.local.shutdown().await;
                let (author, subject) = commit_info(&self.tracked.root, head);
                append_history(
                    &self.data,
                    &HistoryEntry {
                        environment: name.to_string(),
                        revision: revision.clone(),
                        author,
                        subject,
                        release: None,
                        result: "removed".into(),
                        model: None,
                        message: format!(
                            "target changed to {}: the local replicas stopped",
                            env.target.as_str()
                        ),
                        started_at: now(),
                        finished_at: now(),
                    },
                );
                let _ = std::fs::remove_file(self.data.join("state").join(format!("{name}.json")));
            }
            return self.plain(
                name,
                revision,
                SyncStatus::Unknown,
                &format!(
                    "target {}: apply `launchway env render {name} --target kubernetes` with your cluster tooling",
                    env.target.as_str()
                ),
            );
        }
        if env.release.is_none() {
            // Nothing to run yet (Argo CD would say Missing).
            let mut st = self.with_live(
                slot.as_ref(),
                name,
                revision,
                SyncStatus::Synced,
                &format!("no release yet: `launchway deploy {name} --release REV`"),
            );
            if st.replicas.is_empty() {
                st.health = "Missing".into();
            }
            return st;
        }
        if slot.is_none() {
            match self.open(name, Some(&env), revision.as_deref()).await {
                Ok(m) => {
                    if let Ok(mut l) = self.locals.lock() {
                        l.insert(name.to_string(), m.local.clone());
                    }
                    *slot = Some(m);
                }
                Err(e) => return self.plain(name, revision, SyncStatus::OutOfSync, &e),
            }
        }
        let Some(m) = slot.as_mut() else {
            return self.plain(name, revision, SyncStatus::OutOfSync, "internal: lost");
        };
        m.local.set_self_heal(env.self_heal);
        m.protected = env.protection != crate::config::Protection::default();
        m.local.set_protected(m.protected);
        m.local
            .set_secrets((self.secrets)(secrets_name(&env)).await);
        let rev = revision.clone().unwrap_or_default();
        if m.local.has_warm_window() {
            // An earlier reconciler switched blue-green and died during
            // the warm window: it runs on to its end here, as it would
            // have there (`rollout undo` or a failed analysis still
            // switches back, and git is reverted).
            write_status(
                &self.data,
                &self
                    .live_status(name, m, revision.clone(), env.self_heal, SyncStatus::Synced)
                    .with_message("blue-green: the previous release stays warm".into()),
            );
            let green_is_head = m.local.runs(&env);
            let started = now();
            if let Some(result) = m.local.resume_warm_window(&env).await {
                let aborted = m.local.take_abort();
                match (&result, &aborted) {
                    (_, Some((why, on_failure))) => {
                        self.record(
                            name,
                            revision.as_deref(),
                            &env,
                            "aborted",
                            format!("switched back: {why}"),
                            started,
                        );
                        if green_is_head {
                            m.failed = Some((rev.clone(), format!("switched back: {why}")));
                        }
                        if *on_failure == crate::config::strategy::OnFailure::Revert {
                            self.revert(name, why);
                        }
                    }
                    (Ok(_), None) if green_is_head => {
                        m.deployed_revision = revision.clone();
                    }
                    _ => {}
                }
            }
        }
        let drift = m.local.drift();
        let observed = Observed {
            runs_desired: m.local.runs(&env),
            failed_before: m.failed.as_ref().is_some_and(|(r, _)| *r == rev),
            drift: !drift.is_empty(),
            self_heal: env.self_heal,
            forced,
        };
        let action = plan(observed);
        if action == Action::HoldFailed {
            let why = m
                .failed
                .as_ref()
                .map(|(_, w)| w.clone())
                .unwrap_or_default();
            return self
                .live_status(name, m, revision, env.self_heal, SyncStatus::OutOfSync)
                .with_message(format!("deployment of {} failed: {why}", short(&rev)));
        }
        if action == Action::Deploy {
            // Visible as OutOfSync/Progressing while it rolls out.
            write_status(
                &self.data,
                &self
                    .live_status(
                        name,
                        m,
                        revision.clone(),
                        env.self_heal,
                        SyncStatus::OutOfSync,
                    )
                    .with_message(format!("deploying {}", short(&rev))),
            );
            let started = now();
            let result = m.local.apply(&env, self.health_timeout).await;
            let (outcome, message) = match &result {
                Ok(_) => {
                    m.failed = None;
                    m.deployed_revision = revision.clone();
                    (
                        "succeeded",
                        format!("serving {}", env.release.clone().unwrap_or_default()),
                    )
                }
                Err(e) => {
                    m.failed = Some((rev.clone(), e.clone()));
                    ("failed", e.clone())
                }
            };
            let aborted = m.local.take_abort();
            self.record(
                name,
                revision.as_deref(),
                &env,
                if aborted.is_some() {
                    "aborted"
                } else {
                    outcome
                },
                message.clone(),
                started,
            );
            if let Some((why, crate::config::strategy::OnFailure::Revert)) = &aborted {
                // Git stays true: the reconciler commits the revert.
                self.revert(name, why);
            }
            let st = self.live_status(name, m, revision, env.self_heal, SyncStatus::Synced);
            return if result.is_err() {
                let mut st = st.with_message(format!(
                    "deployment of {} failed: {}",
                    short(&rev),
                    // The runtime's account says what serves meanwhile.
                    {
                        let local = m.local.status().message;
                        local
                            .strip_prefix("last deployment failed: ")
                            .map_or_else(|| local.clone(), str::to_string)
                    }
                ));
                st.sync = SyncStatus::OutOfSync;
                st
            } else {
                st
            };
        }
        // What runs is what git says; the processes may still have drifted.
        if m.deployed_revision != revision && m.deployed_revision.is_some() {
            // A new revision that asks for what already runs (a rollback
            // to it, a revert): synced without a rollout, and recorded.
            m.failed = None;
            m.local.settle();
            let message = format!(
                "already serving {}",
                env.release.clone().unwrap_or_default()
            );
            self.record(name, revision.as_deref(), &env, "succeeded", message, now());
        }
        m.deployed_revision = revision.clone();
        if !drift.is_empty() && (forced || env.self_heal) && !m.drift_seen {
            m.drift_seen = true;
            let message = format!("drift: {}; restarting", drift.join(", "));
            self.record(name, revision.as_deref(), &env, "healed", message, now());
        }
        if drift.is_empty() {
            m.drift_seen = false;
        }
        if action == Action::Redeploy {
            let _ = m.local.redeploy(&env, self.health_timeout).await;
        }
        self.live_status(name, m, revision, env.self_heal, SyncStatus::Synced)
    }

    /// Commits the revert of an aborted rollout on the tracked branch.
    fn revert(&self, name: &str, why: &str) {
        let mut place = crate::gitops::Place::new(&self.tracked.root, &self.tracked.env_dir);
        place.branch = self.tracked.branch.clone();
        place.registry = self.tracked.registry.clone();
        place.history = Some(self.data.clone());
        let author = Author {
            name: Some("Launchway".into()),
            email: Some("rollouts@launchway.invalid".into()),
        };
        match crate::gitops::revert_after_abort(&place, name, why, &author) {
            Ok(Some(commit)) => {
                eprintln!("{name}: reverted in git as {}", short(&commit));
                self.wake();
            }
            Ok(None) => {}
            Err(e) => eprintln!("{name}: the revert could not be committed: {e}"),
        }
    }

    /// What the data plane routes, per environment, with its counters.
    pub async fn plane_status(&self) -> Vec<launchway_proxy::plane::SiteStatus> {
        self.plane
            .call(&launchway_proxy::plane::Request::Status)
            .await
            .map(|r| r.sites)
            .unwrap_or_default()
    }

    /// Hands `rollout promote|abort` to `name`'s rollout in progress.
    pub fn rollout_command(
        &self,
        name: &str,
        c: crate::local::RolloutCommand,
    ) -> Result<(), String> {
        let local = self
            .locals
            .lock()
            .ok()
            .and_then(|l| l.get(name).cloned())
            .ok_or_else(|| format!("'{name}' does not run here"))?;
        local.command(c)
    }

    /// One entry of `name`'s history: who changed what (the revision's
    /// commit), what it runs, and how it went.
    fn record(
        &self,
        name: &str,
        revision: Option<&str>,
        env: &Environment,
        result: &str,
        message: String,
        started_at: u64,
    ) {
        let (author, subject) = revision
            .map(|r| commit_info(&self.tracked.root, r))
            .unwrap_or_default();
        append_history(
            &self.data,
            &HistoryEntry {
                environment: name.to_string(),
                revision: revision.map(str::to_string),
                author,
                subject,
                release: env.release.clone(),
                result: result.into(),
                model: model_of(env),
                message,
                started_at,
                finished_at: now(),
            },
        );
    }

    /// Opens an environment: its stable address as before (from the
    /// saved state), and the processes a previous reconciler left, when
    /// they still match.
    async fn open(
        &self,
        name: &str,
        env: Option<&Environment>,
        revision: Option<&str>,
    ) -> Result<Managed, String> {
        let saved = LocalEnvironment::saved_state(&self.data, name);
        let listen = saved
            .as_ref()
            .and_then(|s| s["address"].as_str().map(str::to_string))
            .or_else(|| self.tracked.listen.get(name).cloned())
            .unwrap_or_else(|| "127.0.0.1:0".into());
        let secrets = (self.secrets)(env.map_or_else(|| name.to_string(), secrets_name)).await;
        let local = match LocalEnvironment::start(
            name,
            &self.tracked.root,
            &self.data,
            &listen,
            secrets.clone(),
            self.plane.clone(),
        )
        .await
        {
            Ok(l) => l,
            // The old address is taken by something else: any port will do.
            Err(_) if listen != "127.0.0.1:0" => {
                LocalEnvironment::start(
                    name,
                    &self.tracked.root,
                    &self.data,
                    "127.0.0.1:0",
                    secrets,
                    self.plane.clone(),
                )
                .await?
            }
            Err(e) => return Err(e),
        };
        local.set_registry(self.tracked.registry.clone());
        let protected = match env {
            Some(e) => e.protection != crate::config::Protection::default(),
            None => saved.as_ref().is_some_and(|s| s["protected"] == true),
        };
        let adopted = local.adopt(env).await;
        local.set_protected(protected);
        let previous = read_status(&self.data, name).and_then(|s| s.deployed_revision);
        Ok(Managed {
            local,
            deployed_revision: if adopted {
                previous.or(revision.map(str::to_string))
            } else {
                None
            },
            failed: None,
            drift_seen: false,
            reason: None,
            protected,
        })
    }

    fn live_status(
        &self,
        name: &str,
        m: &Managed,
        revision: Option<String>,
        self_heal: bool,
        sync_if_clean: SyncStatus,
    ) -> EnvStatus {
        let st = m.local.status();
        let drift = m.local.drift();
        let (sync, message) = if !drift.is_empty() {
            let what = drift.join(", ");
            (
                SyncStatus::OutOfSync,
                if self_heal {
                    format!("drift: {what}; self-heal is restarting it")
                } else {
                    format!("drift: {what}; self-heal is off — `launchway sync {name}` heals it")
                },
            )
        } else {
            (
                sync_if_clean,
                m.reason.clone().unwrap_or_else(|| st.message.clone()),
            )
        };
        let health = if !drift.is_empty() && st.health == Health::Healthy {
            Health::Progressing
        } else {
            st.health
        };
        EnvStatus {
            environment: name.to_string(),
            sync,
            health: health.as_str().into(),
            revision,
            deployed_revision: m.deployed_revision.clone(),
            release: m.local.deployed_release(),
            address: Some(format!("http://{}", m.local.address())),
            replicas: m
                .local
                .replicas()
                .into_iter()
                .map(|(port, pid)| ReplicaStatus { port, pid })
                .collect(),
            message,
            self_heal,
            target: Target::Local.as_str().into(),
            checked_at: now(),
            reconciler: running_word(),
            serving_replicas: Some(m.local.in_rotation()),
            model: m.local.deployed_model(),
        }
    }

    /// A status with the live part when the environment runs here.
    fn with_live(
        &self,
        managed: Option<&Managed>,
        name: &str,
        revision: Option<String>,
        sync: SyncStatus,
        msg: &str,
    ) -> EnvStatus {
        match managed {
            Some(m) => {
                let mut st = self
                    .live_status(name, m, revision, true, sync)
                    .with_message(msg.into());
                st.sync = sync;
                st
            }
            None => self.plain(name, revision, sync, msg),
        }
    }

    fn plain(
        &self,
        name: &str,
        revision: Option<String>,
        sync: SyncStatus,
        msg: &str,
    ) -> EnvStatus {
        EnvStatus {
            environment: name.to_string(),
            sync,
            health: if sync == SyncStatus::Unknown {
                "Unknown"
            } else {
                "Degraded"
            }
            .into(),
            revision,
            deployed_revision: None,
            release: None,
            address: None,
            replicas: Vec::new(),
            message: msg.to_string(),
            self_heal: true,
            target: Target::Local.as_str().into(),
            checked_at: now(),
            reconciler: running_word(),
            serving_replicas: None,
            model: None,
        }
    }
}

impl EnvStatus {
    fn with_message(mut self, message: String) -> EnvStatus {
        self.message = message;
        self
    }
}

fn read_status(data: &Path, name: &str) -> Option<EnvStatus> {
    serde_json::from_slice(&std::fs::read(data.join("status").join(format!("{name}.json"))).ok()?)
        .ok()
}

/// `Name <email>` and the subject of a commit.
fn commit_info(root: &Path, rev: &str) -> (String, String) {
    git(
        root,
        &["log", "-n", "1", "--format=%an <%ae>%x00%s", rev],
        &Author::default(),
    )
    .ok()
    .and_then(|s| {
        let (a, b) = s.split_once('\0')?;
        Some((a.to_string(), b.to_string()))
    })
    .unwrap_or_default()
}

/// `name@version` of the model an environment pins.
fn model_of(env: &Environment) -> Option<String> {
    Some(format!(
        "{}@{}",
        env.config.get("MODEL_NAME")?,
        env.config.get("MODEL_VERSION")?
    ))
}

fn short(rev: &str) -> &str {
    &rev[..rev.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> impl Iterator<Item = Observed> {
        (0..32u8).map(|b| Observed {
            runs_desired: b & 1 != 0,
            failed_before: b & 2 != 0,
            drift: b & 4 != 0,
            self_heal: b & 8 != 0,
            forced: b & 16 != 0,
        })
    }

    #[test]
    fn every_observation_gets_the_action_git_asks_for() {
        for o in all() {
            let a = plan(o);
            // A change in git is always applied, except a revision that
            // already failed — retried only by hand.
            if !o.runs_desired {
                let expected = if o.failed_before && !o.forced {
                    Action::HoldFailed
                } else {
                    Action::Deploy
                };
                assert_eq!(a, expected, "{o:?}");
                continue;
            }
            // In sync with git: never a deployment.
            assert_ne!(a, Action::Deploy, "{o:?}");
            assert_ne!(a, Action::HoldFailed, "{o:?}");
            // Drift is healed behind git's back only by self-heal (the
            // runtime restarts the replica); with it off, only a sync redeploys.
            assert_eq!(
                a == Action::Redeploy,
                o.drift && o.forced && !o.self_heal,
                "{o:?}"
            );
        }
    }
}
