//! The server's GitOps reconcilers: one per registered repository whose
//! tracked branch has environment files, started at boot (adopting the
//! replicas a previous server left) and for repositories added later.
//! Environment secrets come from the sealed store and reach the replicas.
//! Runs' `launchway/deploy` steps commit through them, and the API's
//! deploy, rollback and promote (after the target's approval rules).

use crate::engine::Engine;
use crate::store::{Repo, Store};
use launchway_deploy::gitops::Place;
use launchway_deploy::reconcile::{self, Reconciler, Tracked};
use launchway_deploy::served;
use launchway_deploy::tree::{self, Tree};
use launchway_runner::deployer::{DeployFuture, DeployOutcome, DeployRequest, Deployer};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where environment files live in a repository.
pub const ENV_DIR: &str = launchway_deploy::repo::DEFAULT_DIR;

/// Where a repository's environment protection rules are read from on
/// this server: the branch its reconciler tracks, else its default branch
/// — never the commit a run is for (see `launchway_runner::environments`).
pub fn rules_source(
    data_dir: &Path,
    repo: &Repo,
    fallback: &launchway_runner::source::Source,
) -> Result<launchway_runner::environments::RulesSource, launchway_runner::prepare::PrepareError> {
    let dir = crate::triggers::checkout_dir(data_dir, repo);
    let root = dir.canonicalize().unwrap_or_else(|_| dir.clone());
    let data = reconcile::data_dir(&data_dir.join("environments"), &root);
    let tracked = reconcile::tracked_branch(&data);
    launchway_runner::prepare::rules_source(&root, tracked.as_deref(), fallback)
}

struct Running {
    repo: String,
    branch: Option<String>,
    rec: Arc<Reconciler>,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
    _lock: reconcile::Locks,
}

pub struct Environments {
    engine: Arc<Engine>,
    store: Store,
    running: tokio::sync::Mutex<HashMap<PathBuf, Running>>,
    interval: Duration,
    /// The `launchway` executable that runs each data plane.
    dataplane: PathBuf,
    /// Deleted files of protected environments (or of all) stop them.
    prune: bool,
}

impl Environments {
    pub fn new(
        engine: Arc<Engine>,
        store: Store,
        interval: Duration,
        dataplane: PathBuf,
        prune: bool,
    ) -> Arc<Environments> {
        Arc::new(Environments {
            engine,
            store,
            running: tokio::sync::Mutex::new(HashMap::new()),
            interval,
            dataplane,
            prune,
        })
    }

    /// The server's built-in model registry.
    pub fn registry_dir(&self) -> PathBuf {
        self.engine.data_dir().join("models")
    }

    /// Where a repository's environments keep state on this server.
    pub fn data_for(&self, root: &Path) -> PathBuf {
        reconcile::data_dir(&self.engine.data_dir().join("environments"), root)
    }

    fn root_of(&self, repo: &Repo) -> PathBuf {
        let dir = crate::triggers::checkout_dir(self.engine.data_dir(), repo);
        dir.canonicalize().unwrap_or(dir)
    }

    /// Whether a reconciler of this server runs `repo`'s environments.
    pub async fn serves(&self, repo: &Repo) -> bool {
        let root = self.root_of(repo);
        self.running.lock().await.contains_key(&root)
    }

    /// Where changes of `repo`'s environments are committed: the branch
    /// its reconciler follows (the last one a deployment named; HEAD's by
    /// default), pushed back to the remote for a repository registered by URL.
    pub fn place(&self, repo: &Repo, branch: Option<Option<String>>) -> Place {
        let root = self.root_of(repo);
        let branch = branch.unwrap_or_else(|| reconcile::tracked_branch(&self.data_for(&root)));
        let history = Some(self.data_for(&root));
        Place {
            history,
            root,
            dir: ENV_DIR.into(),
            branch,
            create_from: None,
            registry: Some(self.registry_dir()),
            remote: crate::triggers::is_url(&repo.location).then(|| "origin".to_string()),
            frozen: Vec::new(),
            preview: None,
        }
    }

    /// The reconciler of `repo`, started when its tracked branch has
    /// environment files (or `branch` names one). `branch: Some(b)`
    /// switches the tracked branch (the replicas are adopted across).
    pub async fn ensure(
        &self,
        repo: &Repo,
        branch: Option<Option<String>>,
    ) -> Result<Option<(Arc<Reconciler>, PathBuf)>, String> {
        let root = self.root_of(repo);
        let data = self.data_for(&root);
        let mut running = self.running.lock().await;
        let want = match branch.clone() {
            Some(b) => b,
            None => match running.get(&root) {
                Some(r) => r.branch.clone(),
                None => reconcile::tracked_branch(&data),
            },
        };
        if let Some(r) = running.get(&root) {
            if r.branch == want {
                return Ok(Some((r.rec.clone(), data)));
            }
            // A new tracked branch: this reconciler steps down (its
            // replicas keep serving; the next one adopts them).
            if let Some(old) = running.remove(&root) {
                let _ = old.stop.send(());
                let _ = old.done.await;
            }
        }
        let rev = want
            .as_ref()
            .map_or("HEAD".to_string(), |b| format!("refs/heads/{b}"));
        let has_envs = tree::environments(
            &Tree::Rev {
                dir: root.clone(),
                rev: rev.clone(),
            },
            Path::new(ENV_DIR),
        )
        .is_ok_and(|l| !l.is_empty());
        if !has_envs && branch.is_none() {
            return Ok(None);
        }
        let lock = reconcile::lock(&data, &root, want.as_deref())?;
        let engine = self.engine.clone();
        let repo_name = repo.name.clone();
        let rec = Reconciler::with_secrets(
            Tracked {
                root: root.clone(),
                env_dir: ENV_DIR.into(),
                branch: want.clone(),
                only: Vec::new(),
                listen: BTreeMap::new(),
                registry: Some(self.registry_dir()),
                prune: self.prune,
                metrics_listen: None,
            },
            data.clone(),
            Duration::from_secs(120),
            &self.dataplane,
            Box::new(move |env_name| {
                let (engine, repo) = (engine.clone(), repo_name.clone());
                Box::pin(async move {
                    engine
                        .environment_secrets(&repo, &env_name)
                        .await
                        .unwrap_or_default()
                })
            }),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(rec.clone().run(
            self.interval,
            async move {
                let _ = rx.await;
            },
            false,
        ));
        running.insert(
            root,
            Running {
                repo: repo.name.clone(),
                branch: want,
                rec: rec.clone(),
                stop: tx,
                done,
                _lock: lock,
            },
        );
        Ok(Some((rec, data)))
    }

    /// Starts reconcilers for every repository with environments, now and
    /// whenever one is added (checked every few seconds).
    pub async fn watch(self: Arc<Self>) {
        loop {
            if let Ok(repos) = self.store.repos().await {
                for repo in repos {
                    if let Err(e) = self.ensure(&repo, None).await {
                        eprintln!("{}: environments: {e}", repo.name);
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }

    /// Every running reconciler, by repository name.
    pub async fn all(&self) -> Vec<(String, Arc<Reconciler>)> {
        let running = self.running.lock().await;
        running
            .values()
            .map(|r| (r.repo.clone(), r.rec.clone()))
            .collect()
    }

    /// A repository's reconciler and data directory, if it runs.
    pub async fn of_repo(&self, name: &str) -> Option<(Arc<Reconciler>, PathBuf)> {
        let running = self.running.lock().await;
        running
            .iter()
            .find(|(_, r)| r.repo == name)
            .map(|(root, r)| (r.rec.clone(), self.data_for(root)))
    }

    /// The repository checked out at `root`.
    async fn repo_at(&self, root: &Path) -> Result<Repo, String> {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        self.store
            .repos()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|r| self.root_of(r) == root)
            .ok_or_else(|| format!("{} is not a registered repository", root.display()))
    }
}

/// `launchway/deploy` steps of server runs.
pub struct ServerDeployer(pub Arc<Environments>);

impl Deployer for ServerDeployer {
    fn register_model(&self, r: launchway_runner::deployer::ModelRequest) -> Result<u64, String> {
        launchway_deploy::models::register_and_alias(
            &launchway_deploy::models::Registry::new(&self.0.registry_dir()),
            &r.name,
            r.file.as_deref(),
            r.version,
            &r.aliases,
            &r.source,
        )
    }

    fn deploy(&self, req: DeployRequest) -> DeployFuture<'_> {
        Box::pin(async move {
            if req.dir != Path::new(ENV_DIR) {
                return Err(format!(
                    "the server reconciles {ENV_DIR}; this step names {}",
                    req.dir.display()
                ));
            }
            let repo = self.0.repo_at(&req.root).await?;
            let mut place = self.0.place(&repo, Some(req.branch.clone()));
            place.create_from.clone_from(&req.create_from);
            let (committed, revision) = served::commit_deploy(
                place,
                req.environment.clone(),
                req.release.clone(),
                req.sets.clone(),
                launchway_deploy::gitops::Author::parse(&req.actor).unwrap_or_default(),
            )
            .await?;
            let (rec, data) = self
                .0
                .ensure(&repo, Some(req.branch.clone()))
                .await?
                .ok_or("no reconciler")?;
            rec.wake();
            let mut out = DeployOutcome {
                log: vec![served::committed_line(
                    &req.environment,
                    req.branch.as_deref(),
                    committed.as_deref(),
                )],
                commit: committed,
                revision: Some(revision.clone()),
                url: None,
            };
            if req.wait {
                let since = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                let s = served::wait_until_served(
                    &data,
                    &req.environment,
                    &revision,
                    req.wait_started.then_some(since),
                    req.timeout,
                )
                .await?;
                out.log.push(served::served_line(&req.environment, &s));
                out.log
                    .extend(served::rollout_line(&data, &req.environment, since));
                out.url = s.address;
            }
            Ok(out)
        })
    }
}
