//! `launchway/deploy` in `launchway run`: the change is committed to the
//! environment's file, and this machine's reconciler (started in the
//! background when none runs) deploys it; the step waits until the
//! release serves or fails.

use crate::cmd_sync::{self, SyncArgs};
use launchway_deploy::gitops::Place;
use launchway_deploy::served;
use launchway_runner::deployer::{DeployFuture, DeployOutcome, DeployRequest, Deployer};

pub struct LocalDeployer {
    pub store: launchway_runner::store::Store,
}

/// The built-in model registry of this machine.
pub fn registry_dir(store: &launchway_runner::store::Store) -> std::path::PathBuf {
    store.home.join("models")
}

/// What a request commits, where.
pub fn place_of(req: &DeployRequest, store: &launchway_runner::store::Store) -> Place {
    Place {
        root: req.root.clone(),
        dir: req.dir.clone(),
        branch: req.branch.clone(),
        create_from: req.create_from.clone(),
        registry: Some(registry_dir(store)),
        remote: None,
        frozen: Vec::new(),
        preview: None,
        history: Some(crate::cmd_sync::data_dir(store, &req.root)),
    }
}

impl Deployer for LocalDeployer {
    fn register_model(&self, r: launchway_runner::deployer::ModelRequest) -> Result<u64, String> {
        launchway_deploy::models::register_and_alias(
            &launchway_deploy::models::Registry::new(&registry_dir(&self.store)),
            &r.name,
            r.file.as_deref(),
            r.version,
            &r.aliases,
            &r.source,
        )
    }

    fn deploy(&self, req: DeployRequest) -> DeployFuture<'_> {
        Box::pin(async move {
            let (committed, revision) = served::commit_deploy(
                place_of(&req, &self.store),
                req.environment.clone(),
                req.release.clone(),
                req.sets.clone(),
                launchway_deploy::gitops::Author::parse(&req.actor).unwrap_or_default(),
            )
            .await?;
            let mut log = vec![served::committed_line(
                &req.environment,
                req.branch.as_deref(),
                committed.as_deref(),
            )];
            let root = req
                .root
                .canonicalize()
                .map_err(|e| format!("{}: {e}", req.root.display()))?;
            let data = cmd_sync::data_dir(&self.store, &root);
            if let Some(pid) = launchway_deploy::reconcile::running(&data) {
                let tracked =
                    launchway_deploy::reconcile::tracked_branch(&data).unwrap_or_default();
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
                prune: false,
                metrics_listen: None,
            };
            let pid = {
                let (args, root, data) = (args.clone(), root.clone(), data.clone());
                tokio::task::spawn_blocking(move || cmd_sync::detach(&args, &root, &data))
                    .await
                    .map_err(|e| e.to_string())??
            };
            log.push(format!("reconciler for {} (pid {pid})", root.display()));
            let mut out = DeployOutcome {
                commit: committed,
                revision: Some(revision.clone()),
                url: None,
                log,
            };
            if req.wait {
                let since = now_ms();
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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
