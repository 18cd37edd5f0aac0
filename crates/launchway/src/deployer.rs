//! `launchway/deploy` in `launchway run`: the change is committed to the
//! environment's file, and this machine's reconciler (started in the
//! background when none runs) deploys it; the step waits until the
//! release serves or fails.

use crate::cmd_sync::{self, SyncArgs};
use launchway_deploy::gitops::{self, Author, Place};
use launchway_deploy::reconcile::{self, SyncStatus};
use launchway_runner::deployer::{DeployFuture, DeployOutcome, DeployRequest, Deployer};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct LocalDeployer {
    pub store: launchway_runner::store::Store,
}

/// `Name <email>` → an author (git's own identity when it does not parse).
pub fn author_of(actor: &str) -> Author {
    actor
        .split_once('<')
        .and_then(|(n, e)| {
            Some(Author {
                name: Some(n.trim().to_string()).filter(|n| !n.is_empty()),
                email: Some(e.strip_suffix('>')?.trim().to_string()),
            })
        })
        .unwrap_or_default()
}

/// The commit that last changed `env`'s files on `rev`.
pub fn env_revision(root: &Path, dir: &Path, rev: &str, env: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["log", "-n", "1", "--format=%H", rev, "--"])
        .arg(format!("./{}", dir.join(format!("{env}.yaml")).display()))
        .arg(format!("./{}", dir.join(format!("{env}.yml")).display()))
        .arg(format!("./{}", dir.join("_base.yaml").display()))
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// Commits the change; `None` when the file already says this.
pub fn commit(req: &DeployRequest) -> Result<Option<String>, String> {
    let place = Place {
        root: req.root.clone(),
        dir: req.dir.clone(),
        branch: req.branch.clone(),
        create_from: req.create_from.clone(),
    };
    match gitops::deploy(
        &place,
        &req.environment,
        req.release.as_deref(),
        &req.sets,
        &author_of(&req.actor),
    ) {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.contains("already has this") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Waits until `data`'s reconciler serves `revision` of `env` (or its
/// deployment failed).
pub async fn wait_until_served(
    data: &Path,
    env: &str,
    revision: &str,
    timeout: Duration,
) -> Result<DeployOutcome, String> {
    let start = Instant::now();
    loop {
        let st = reconcile::statuses(data)
            .into_iter()
            .find(|s| s.environment == env);
        if let Some(st) = &st
            && st.deployed_revision.as_deref() == Some(revision)
            && st.sync == SyncStatus::Synced
            && st.health == "Healthy"
        {
            return Ok(DeployOutcome {
                commit: None,
                revision: Some(revision.to_string()),
                url: st.address.clone(),
                log: vec![format!(
                    "'{env}' serves {} at {} ({} replica(s))",
                    st.release.as_deref().unwrap_or("-"),
                    st.address.as_deref().unwrap_or("-"),
                    st.replicas.len()
                )],
            });
        }
        if let Some(h) = reconcile::history(data, env)
            .into_iter()
            .rev()
            .find(|h| h.revision.as_deref() == Some(revision))
            && h.result == "failed"
        {
            return Err(format!(
                "the deployment of {} to '{env}' failed: {} (what ran before keeps serving)",
                &revision[..revision.len().min(12)],
                h.message
            ));
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "'{env}' did not serve {} within {} s; now: {}",
                &revision[..revision.len().min(12)],
                timeout.as_secs(),
                st.map_or("no status yet".to_string(), |s| format!(
                    "{:?} {} — {}",
                    s.sync, s.health, s.message
                ))
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Deployer for LocalDeployer {
    fn deploy(&self, req: DeployRequest) -> DeployFuture<'_> {
        Box::pin(async move {
            let r = req.clone();
            let committed = tokio::task::spawn_blocking(move || commit(&r))
                .await
                .map_err(|e| e.to_string())??;
            let mut log = vec![match &committed {
                Some(c) => format!(
                    "committed {} to {}",
                    &c[..c.len().min(12)],
                    req.branch.as_deref().unwrap_or("the checked-out branch")
                ),
                None => format!("'{}' already has this; nothing to commit", req.environment),
            }];
            let root = req
                .root
                .canonicalize()
                .map_err(|e| format!("{}: {e}", req.root.display()))?;
            let data = cmd_sync::data_dir(&self.store, &root);
            if let Some(pid) = cmd_sync::running(&data) {
                let tracked = std::fs::read_to_string(data.join("reconciler.pid"))
                    .unwrap_or_default()
                    .lines()
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                if tracked != req.branch.clone().unwrap_or_default() {
                    return Err(format!(
                        "the reconciler running for this repository (pid {pid}) tracks '{}', not '{}'; stop it with `launchway sync --stop -C {}`",
                        if tracked.is_empty() { "HEAD" } else { &tracked },
                        req.branch.as_deref().unwrap_or("HEAD"),
                        root.display()
                    ));
                }
            }
            let args = SyncArgs {
                root: root.clone(),
                dir: req.dir.clone(),
                branch: req.branch.clone(),
                envs: Vec::new(),
                listen: None,
                health_timeout: 120,
                interval: 10,
                detach: true,
                stop: false,
                now: false,
            };
            let pid = {
                let (args, root, data) = (args.clone(), root.clone(), data.clone());
                tokio::task::spawn_blocking(move || cmd_sync::detach(&args, &root, &data))
                    .await
                    .map_err(|e| e.to_string())??
            };
            log.push(format!("reconciler for {} (pid {pid})", root.display()));
            let rev = req
                .branch
                .as_ref()
                .map_or("HEAD".to_string(), |b| format!("refs/heads/{b}"));
            let revision = env_revision(&root, &req.dir, &rev, &req.environment)
                .ok_or_else(|| format!("cannot find '{}' on {rev}", req.environment))?;
            if !req.wait {
                return Ok(DeployOutcome {
                    commit: committed,
                    revision: Some(revision),
                    url: None,
                    log,
                });
            }
            let mut out =
                wait_until_served(&data, &req.environment, &revision, req.timeout).await?;
            log.append(&mut out.log);
            out.log = log;
            out.commit = committed;
            Ok(out)
        })
    }
}
