//! The agent `launchway serve` starts for itself: a separate process of
//! the same binary that takes the server's jobs like any other agent, and
//! cannot reach what the server guards — it runs as a dedicated
//! unprivileged user when the server runs as root, restricts itself with
//! Landlock from the data directory (and the master key file), gets a
//! minimal environment (none of the server's variables), and receives its
//! registration token on standard input. It is restarted if it dies, and
//! stopped (its jobs cancelled and reported) when the server stops.

use launchway_runner::cancel::Cancel;
use launchway_server::store::Store;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The user the local agent runs as when the server runs as root.
pub const DEFAULT_USER: &str = "launchway-agent";

/// Variables of the server's environment the agent may see (jobs need a
/// `PATH`, a locale and the proxies to reach package registries); nothing
/// else passes, so `LAUNCHWAY_*`, database URLs and keys never do.
const PASSED: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// The local agent's name: the host's and a digest of the server's data
/// dir, so two servers on one database keep apart and a restart keeps it.
pub fn name_for(data_dir: &std::path::Path) -> String {
    use sha2::Digest;
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "server".into());
    let d = sha2::Sha256::digest(data_dir.to_string_lossy().as_bytes());
    let tag: String = d.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let mut name = format!("local-{host}");
    name.truncate(50);
    format!("{name}-{tag}")
}

#[derive(Debug, Clone)]
pub struct Config {
    pub server: String,
    pub name: String,
    pub work_dir: PathBuf,
    pub max_jobs: usize,
    pub labels: Vec<String>,
    /// Paths the agent must never open.
    pub deny: Vec<PathBuf>,
    /// Run as this user (the server runs as root).
    pub user: Option<String>,
    /// More variables to pass (`--agent-env`).
    pub pass_env: Vec<String>,
}

/// Where the local agent works by default: beside the data dir (outside
/// it, since the data dir is what it must not reach); for a root server,
/// under /var/lib, where the agent's user can reach it.
pub fn default_work_dir(data_dir: &std::path::Path, as_root: bool) -> PathBuf {
    if as_root {
        let tag = launchway_runner::store::slug(&data_dir.to_string_lossy());
        return PathBuf::from("/var/lib/launchway-agent").join(tag);
    }
    let mut name = data_dir
        .file_name()
        .map_or_else(|| "launchway".into(), |n| n.to_string_lossy().to_string());
    name.push_str(".agent");
    data_dir.with_file_name(name)
}

/// Makes sure the agent's user exists (created as a system user without a
/// login when missing) and owns the work dir.
fn prepare_user(user: &str, work: &std::path::Path) -> Result<(), String> {
    use nix::unistd::{User, chown};
    let found = User::from_name(user).map_err(|e| format!("looking up user '{user}': {e}"))?;
    let u = match found {
        Some(u) => u,
        None => {
            let out = std::process::Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    user,
                ])
                .output()
                .map_err(|e| {
                    format!("useradd {user}: {e} (create the user, or pass --agent-user)")
                })?;
            // Another server may have created it at the same moment.
            let now = User::from_name(user).map_err(|e| e.to_string())?;
            match now {
                Some(u) => {
                    if out.status.success() {
                        eprintln!("created the system user '{user}' for the local agent");
                    }
                    u
                }
                None => {
                    return Err(format!(
                        "useradd {user}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
            }
        }
    };
    if let Some(parent) = work.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    launchway_runner::private::dir(work).map_err(|e| format!("{}: {e}", work.display()))?;
    chown(work, Some(u.uid), Some(u.gid)).map_err(|e| format!("chown {}: {e}", work.display()))?;
    Ok(())
}

/// The running local agent.
pub struct LocalAgent {
    stop: Cancel,
    task: tokio::task::JoinHandle<()>,
}

impl LocalAgent {
    /// Stops the agent: SIGTERM (its jobs are cancelled, their `always()`
    /// steps run, and they are reported), SIGKILL after `grace`.
    pub async fn stop(self, grace: Duration) {
        self.stop.cancel();
        let _ = tokio::time::timeout(grace + Duration::from_secs(2), self.task).await;
    }
}

/// Starts the local agent and keeps it running.
pub async fn start(db: Store, cfg: Config, grace: Duration) -> Result<LocalAgent, String> {
    if let Some(u) = &cfg.user {
        prepare_user(u, &cfg.work_dir)?;
    } else {
        launchway_runner::private::dir(&cfg.work_dir)
            .map_err(|e| format!("{}: {e}", cfg.work_dir.display()))?;
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let stop = Cancel::new();
    let s = stop.clone();
    let task = tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        while !s.is_cancelled() {
            let started = tokio::time::Instant::now();
            match run_once(&db, &cfg, &exe, &s, grace).await {
                Ok(()) if s.is_cancelled() => break,
                Ok(()) => eprintln!("the local agent exited; starting it again"),
                Err(e) => eprintln!("local agent: {e}"),
            }
            if started.elapsed() > Duration::from_secs(60) {
                backoff = Duration::from_secs(1);
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = s.cancelled() => break,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    });
    Ok(LocalAgent { stop, task })
}

async fn run_once(
    db: &Store,
    cfg: &Config,
    exe: &std::path::Path,
    stop: &Cancel,
    grace: Duration,
) -> Result<(), String> {
    let now = launchway_server::now_ms();
    let (_, token) = db
        .create_registration("local agent", "launchway serve", now, now + 5 * 60_000)
        .await
        .map_err(|e| e.to_string())?;
    let name = &cfg.name;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("agent")
        .args([
            "--server",
            &cfg.server,
            "--token-stdin",
            "--ephemeral",
            "--replace",
            "--exit-with-parent",
        ])
        .args(["--name", name])
        .arg("--work-dir")
        .arg(&cfg.work_dir)
        .args(["--max-jobs", &cfg.max_jobs.max(1).to_string()])
        .args(["--labels", &cfg.labels.join(",")]);
    for d in &cfg.deny {
        cmd.arg("--deny").arg(d);
    }
    if let Some(u) = &cfg.user {
        cmd.args(["--user", u]);
    }
    cmd.env_clear();
    for k in PASSED
        .iter()
        .copied()
        .chain(cfg.pass_env.iter().map(String::as_str))
    {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    for (k, v) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LC_") {
            cmd.env(k, v);
        }
    }
    cmd.env("HOME", &cfg.work_dir)
        .env("USER", cfg.user.as_deref().unwrap_or("launchway"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {} agent: {e}", exe.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(token.as_bytes())
            .await
            .map_err(|e| format!("handing the agent its token: {e}"))?;
    }
    drop(token);
    tokio::select! {
        status = child.wait() => {
            let status = status.map_err(|e| e.to_string())?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("the local agent stopped: {status}"))
            }
        }
        () = stop.cancelled() => {
            // Only the process started here, by its own pid.
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
            Ok(())
        }
    }
}
