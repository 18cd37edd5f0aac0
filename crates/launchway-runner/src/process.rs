//! Running one step's process: its own process group, stdout and stderr
//! read line by line, and GitHub's cancellation sequence (SIGINT, then
//! SIGTERM, then SIGKILL) on cancel or timeout. The process is this one's
//! child, or started by a [`Spawner`] (an agent's launcher inside the job's
//! sandbox) — the rest is the same.

use crate::cancel::Cancel;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    Code(i32),
    /// Killed by a signal we did not send.
    Signal(i32),
    Cancelled,
    TimedOut,
    SpawnFailed(String),
}

#[derive(Debug, Clone, Copy)]
pub struct Grace {
    /// After SIGINT, before SIGTERM.
    pub interrupt: Duration,
    /// After SIGTERM, before SIGKILL.
    pub terminate: Duration,
}

impl Default for Grace {
    fn default() -> Self {
        Grace {
            interrupt: Duration::from_millis(7500),
            terminate: Duration::from_millis(2500),
        }
    }
}

/// A step process some [`Spawner`] started.
pub struct Spawned {
    /// Its pid, also its process group's id.
    pub pid: u32,
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    pub stderr: Box<dyn AsyncRead + Send + Unpin>,
    /// Its wait status, once it ended.
    pub exit: tokio::sync::oneshot::Receiver<std::io::Result<std::process::ExitStatus>>,
}

/// Starts step processes somewhere other than as children of this process.
pub trait Spawner: Send + Sync {
    /// Starts `argv` (its program already resolved) in `cwd` with exactly
    /// `env`, stdin closed, in a process group of its own, for the job
    /// whose directory is `job_dir`.
    fn spawn(
        &self,
        job_dir: &Path,
        argv: &[String],
        cwd: &Path,
        env: &[(String, String)],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Spawned>> + Send>>;
}

/// A running step process, wherever it was started.
enum Child {
    Own(tokio::process::Child),
    Spawned {
        pid: u32,
        exit: tokio::sync::oneshot::Receiver<std::io::Result<std::process::ExitStatus>>,
        ended: bool,
    },
}

impl Child {
    async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        match self {
            Child::Own(c) => c.wait().await,
            Child::Spawned { exit, ended, .. } => {
                let r = exit.await.unwrap_or_else(|_| {
                    Err(std::io::Error::other("the step's launcher went away"))
                });
                *ended = true;
                r
            }
        }
    }
}

impl Drop for Child {
    /// As `kill_on_drop` for a child of this process.
    fn drop(&mut self) {
        if let Child::Spawned {
            pid, ended: false, ..
        } = self
        {
            signal_group(Some(*pid), Signal::SIGKILL);
        }
    }
}

pub struct Spec<'a> {
    pub argv: &'a [String],
    pub cwd: &'a Path,
    pub env: &'a [(String, String)],
    pub timeout: Option<Duration>,
    pub grace: Grace,
}

fn signal_group(pgid: Option<u32>, sig: Signal) {
    if let Some(id) = pgid.and_then(|p| i32::try_from(p).ok()) {
        let _ = killpg(Pid::from_raw(id), sig);
    }
}

/// Kills whatever is left in a process group (background processes a step
/// started), as GitHub's runner does when a job ends.
pub fn kill_group(pgid: u32) {
    signal_group(Some(pgid), Signal::SIGKILL);
}

/// The program's path: as given when it contains a `/`, else the first
/// executable file of that name on `path`.
fn resolve(prog: &str, path: Option<&str>) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    if prog.contains('/') {
        return prog.into();
    }
    path.into_iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(prog))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| prog.into())
}

async fn pump<R: AsyncRead + Unpin>(r: R, tx: mpsc::UnboundedSender<String>) {
    let mut lines = BufReader::new(r).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(l)) => {
                if tx.send(l).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            // Invalid UTF-8 or a read error: skip the line, keep reading.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => continue,
            Err(_) => return,
        }
    }
}

/// Runs the process, calling `on_line` for each output line. Returns the
/// exit and the process group id (to clean up background children later).
pub async fn run(
    spec: Spec<'_>,
    spawner: Option<(&dyn Spawner, &Path)>,
    cancel: &Cancel,
    mut on_line: impl FnMut(String),
) -> (Exit, Option<u32>) {
    let Some((prog, args)) = spec.argv.split_first() else {
        return (Exit::SpawnFailed("empty command".into()), None);
    };
    let path = spec
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    let resolved = resolve(prog, path);
    let not_started = |e: std::io::Error| {
        let msg = if e.kind() == std::io::ErrorKind::NotFound {
            format!("'{prog}' was not found on PATH")
        } else {
            format!("could not start '{prog}': {e}")
        };
        (Exit::SpawnFailed(msg), None)
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (mut child, pgid) = match spawner {
        Some((spawner, job_dir)) => {
            let mut argv = spec.argv.to_vec();
            argv[0] = resolved.to_string_lossy().into_owned();
            match spawner.spawn(job_dir, &argv, spec.cwd, spec.env).await {
                Ok(s) => {
                    tokio::spawn(pump(s.stdout, tx.clone()));
                    tokio::spawn(pump(s.stderr, tx.clone()));
                    let pid = s.pid;
                    (
                        Child::Spawned {
                            pid,
                            exit: s.exit,
                            ended: false,
                        },
                        Some(pid),
                    )
                }
                Err(e) => return not_started(e),
            }
        }
        None => {
            let mut cmd = Command::new(&resolved);
            cmd.args(args)
                .current_dir(spec.cwd)
                .env_clear()
                .envs(spec.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            let mut c = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => return not_started(e),
            };
            if let Some(out) = c.stdout.take() {
                tokio::spawn(pump(out, tx.clone()));
            }
            if let Some(err) = c.stderr.take() {
                tokio::spawn(pump(err, tx.clone()));
            }
            let pgid = c.id();
            (Child::Own(c), pgid)
        }
    };
    drop(tx);

    let deadline = spec.timeout.map(|t| tokio::time::Instant::now() + t);
    let sleep_until = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_until);
    let mut stopping: Option<Exit> = None;
    let status = loop {
        tokio::select! {
            Some(line) = rx.recv() => on_line(line),
            status = child.wait() => break status,
            () = &mut sleep_until, if stopping.is_none() => {
                stopping = Some(Exit::TimedOut);
                break stop(&mut child, pgid, spec.grace, &mut rx, &mut on_line).await;
            }
            () = cancel.cancelled(), if stopping.is_none() => {
                stopping = Some(Exit::Cancelled);
                break stop(&mut child, pgid, spec.grace, &mut rx, &mut on_line).await;
            }
        }
    };
    // Drain what is already written; background children may hold the pipe
    // open, so stop after a short silence instead of waiting for EOF.
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
        on_line(line);
    }
    if let Some(exit) = stopping {
        return (exit, pgid);
    }
    let exit = match status {
        Ok(s) => match s.code() {
            Some(c) => Exit::Code(c),
            None => {
                use std::os::unix::process::ExitStatusExt;
                Exit::Signal(s.signal().unwrap_or(0))
            }
        },
        Err(e) => Exit::SpawnFailed(e.to_string()),
    };
    (exit, pgid)
}

async fn stop(
    child: &mut Child,
    pgid: Option<u32>,
    grace: Grace,
    rx: &mut mpsc::UnboundedReceiver<String>,
    on_line: &mut impl FnMut(String),
) -> std::io::Result<std::process::ExitStatus> {
    for (sig, wait) in [
        (Signal::SIGINT, grace.interrupt),
        (Signal::SIGTERM, grace.terminate),
    ] {
        signal_group(pgid, sig);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                Some(line) = rx.recv() => on_line(line),
                s = child.wait() => return s,
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
    }
    signal_group(pgid, Signal::SIGKILL);
    child.wait().await
}
