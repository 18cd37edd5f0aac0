//! `launchway sync`: the GitOps reconciler on this machine, in the
//! foreground or detached, for one repository's environments.

use clap::Args;
use launchway_deploy::reconcile::{self, Reconciler, Tracked};
use launchway_deploy::repo;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args, Clone)]
pub struct SyncArgs {
    /// The repository (default: the current directory).
    #[arg(short = 'C', default_value = ".")]
    pub root: PathBuf,
    /// Where the environment files are, relative to the repository.
    #[arg(long, default_value = repo::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// The branch whose head is the desired state (default: HEAD's).
    #[arg(long)]
    pub branch: Option<String>,
    /// Only these environments (default: every file in the directory).
    pub envs: Vec<String>,
    /// The environment's first stable address (one environment only;
    /// port 0: any free port). Later runs keep the address it got.
    #[arg(long)]
    pub listen: Option<String>,
    /// How long new replicas have to answer their health check (seconds).
    #[arg(long, default_value_t = 60)]
    pub health_timeout: u64,
    /// A full comparison of git and what runs at least this often
    /// (seconds); new commits are seen within a quarter of a second.
    #[arg(long, default_value_t = 10)]
    pub interval: u64,
    /// Run in the background (the environments keep serving after this
    /// command returns); `--stop` ends it.
    #[arg(long, conflicts_with = "stop")]
    pub detach: bool,
    /// Stop the background reconciler and its environments.
    #[arg(long)]
    pub stop: bool,
    /// Let a deleted environment file stop its environment even when it
    /// is protected or no environment file is left (off: refused, it
    /// keeps serving and its status says why).
    #[arg(long, conflicts_with_all = ["stop", "now"])]
    pub prune: bool,
    /// Serve every environment's per-revision metrics (requests, errors,
    /// latency histogram; Prometheus text at /metrics) on this address.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["stop", "now"])]
    pub metrics_listen: Option<String>,
    /// Heal drift and retry a failed deployment now, even with self-heal
    /// off (talks to the running reconciler).
    #[arg(long, conflicts_with_all = ["stop", "detach"])]
    pub now: bool,
}

/// The reconciler's directory for a repository folder.
pub fn data_dir(store: &launchway_runner::store::Store, root: &Path) -> PathBuf {
    reconcile::data_dir(&store.home.join("environments"), root)
}

pub fn main(args: &SyncArgs, store: &launchway_runner::store::Store) -> u8 {
    let root = match args.root.canonicalize() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: {e}", args.root.display());
            return 1;
        }
    };
    let data = data_dir(store, &root);
    if args.stop {
        return stop(&data);
    }
    if args.now {
        return request_now(&data, &args.envs);
    }
    if args.detach {
        return match detach(args, &root, &data) {
            Ok(pid) => {
                println!(
                    "reconciler running in the background (pid {pid}); `launchway env status -C {}` shows the environments, `launchway sync --stop -C {}` stops them",
                    args.root.display(),
                    args.root.display()
                );
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        };
    }
    crate::cmd_serve::block_on(foreground(
        args.clone(),
        root,
        data,
        crate::deployer::registry_dir(store),
    ))
}

async fn foreground(
    args: SyncArgs,
    root: PathBuf,
    data: PathBuf,
    registry: PathBuf,
) -> Result<(), String> {
    let lock = reconcile::lock(&data, &root, args.branch.as_deref()).map_err(|e| {
        format!(
            "{e}; `launchway sync --stop -C {}` stops it",
            args.root.display()
        )
    })?;
    let mut listen = std::collections::BTreeMap::new();
    if let Some(l) = &args.listen {
        if args.envs.len() != 1 {
            return Err("--listen needs exactly one environment".into());
        }
        listen.insert(args.envs[0].clone(), l.clone());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find launchway itself: {e}"))?;
    let rec = Reconciler::new(
        Tracked {
            root: root.clone(),
            env_dir: args.dir.clone(),
            branch: args.branch.clone(),
            only: args.envs.clone(),
            listen,
            registry: Some(registry),
            prune: args.prune,
            metrics_listen: args.metrics_listen.clone(),
        },
        data.clone(),
        Duration::from_secs(args.health_timeout),
        &exe,
    );
    tokio::spawn(report_changes(data.clone()));
    tokio::spawn(watch_requests(rec.clone(), data.clone()));
    rec.run(
        Duration::from_secs(args.interval.max(1)),
        crate::cmd_serve::shutdown_signal(),
        true,
    )
    .await;
    let _ = std::fs::remove_file(data.join("reconciler.pid"));
    eprintln!("reconciler stopped; the environments' replicas stopped");
    drop(lock);
    Ok(())
}

/// Prints each environment's status when it changes.
async fn report_changes(data: PathBuf) {
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    loop {
        for st in reconcile::statuses(&data) {
            let line = format!(
                "{}: {:?} {} — {}{}",
                st.environment,
                st.sync,
                st.health,
                st.message,
                st.address
                    .as_deref()
                    .map_or_else(String::new, |a| format!(" (at {a})"))
            );
            if last.get(&st.environment) != Some(&line) {
                eprintln!("{line}");
                last.insert(st.environment.clone(), line);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `launchway sync --now` drops a request file the reconciler picks up.
async fn watch_requests(rec: std::sync::Arc<Reconciler>, data: PathBuf) {
    let dir = data.join("requests");
    loop {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let _ = std::fs::remove_file(e.path());
                use launchway_deploy::local::RolloutCommand;
                let command = [
                    (".promote-full", RolloutCommand::PromoteFull),
                    (".promote", RolloutCommand::Promote),
                    (".abort", RolloutCommand::Abort),
                    (".undo", RolloutCommand::Undo),
                ]
                .into_iter()
                .find_map(|(suffix, c)| Some((name.strip_suffix(suffix)?, c)));
                if let Some(env) = name.strip_suffix(".sync") {
                    rec.force(env);
                } else if let Some((env, c)) = command
                    && let Err(e) = rec.rollout_command(env, c)
                {
                    eprintln!("{env}: {e}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn request_now(data: &Path, envs: &[String]) -> u8 {
    if reconcile::running(data).is_none() {
        eprintln!("error: no reconciler runs for this repository (launchway sync --detach)");
        return 1;
    }
    let names: Vec<String> = if envs.is_empty() {
        reconcile::statuses(data)
            .into_iter()
            .map(|s| s.environment)
            .collect()
    } else {
        envs.to_vec()
    };
    let dir = data.join("requests");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: {}: {e}", dir.display());
        return 1;
    }
    for n in &names {
        if n.contains('/') || n.contains("..") {
            eprintln!("error: '{n}' is not an environment name");
            return 1;
        }
        let _ = std::fs::write(dir.join(format!("{n}.sync")), "");
    }
    println!("sync requested: {}", names.join(", "));
    0
}

/// Starts `launchway sync` in its own process group, output to
/// `<data>/reconciler.log`; returns once it holds the lock.
pub fn detach(args: &SyncArgs, root: &Path, data: &Path) -> Result<u32, String> {
    if let Some(pid) = reconcile::running(data) {
        return Ok(pid);
    }
    std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join("reconciler.log"))
        .map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find launchway itself: {e}"))?;
    let mut c = std::process::Command::new(exe);
    c.arg("sync")
        .arg("-C")
        .arg(root)
        .arg("--dir")
        .arg(&args.dir)
        .args(["--health-timeout", &args.health_timeout.to_string()])
        .args(["--interval", &args.interval.to_string()]);
    if let Some(b) = &args.branch {
        c.args(["--branch", b]);
    }
    if let Some(l) = &args.listen {
        c.args(["--listen", l]);
    }
    if args.prune {
        c.arg("--prune");
    }
    if let Some(m) = &args.metrics_listen {
        c.args(["--metrics-listen", m]);
    }
    c.args(&args.envs);
    use std::os::unix::process::CommandExt;
    let child = c
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the reconciler: {e}"))?;
    let pid = child.id();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if reconcile::running(data) == Some(pid) {
            return Ok(pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "the reconciler did not start; see {}",
        data.join("reconciler.log").display()
    ))
}

fn stop(data: &Path) -> u8 {
    let Some(pid) = reconcile::running(data) else {
        // A reconciler that died left its environments serving: stop them.
        let left = crate::cmd_serve::block_on(async {
            let n = launchway_deploy::local::stop_all_left(data).await;
            let plane = launchway_deploy::dataplane::shutdown_blocking(data);
            if n > 0 || plane {
                println!(
                    "no reconciler runs for this repository; stopped {n} replica(s) it left{}",
                    if plane { " and its data plane" } else { "" }
                );
            } else {
                println!("no reconciler runs for this repository");
            }
            Ok(())
        });
        return left;
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let start = std::time::Instant::now();
    while reconcile::running(data).is_some() {
        if start.elapsed() > Duration::from_secs(30) {
            eprintln!("error: the reconciler (pid {pid}) did not stop within 30 s");
            return 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("stopped the reconciler (pid {pid}) and its environments");
    0
}
