//! Every process a job starts ends with the job — and with the agent, even
//! one killed by SIGKILL, and even a process that left its process group
//! (`setsid`, a daemon that double-forks).
//!
//! Where the machine lets the agent manage a cgroup v2 subtree, each job
//! gets a cgroup of its own (`<own cgroup>/launchway-<work dir hash>/job-N`):
//! the step wrapper (`launchway sandbox-exec`) moves itself in before it
//! starts the step, so everything the step starts is in it and cannot leave
//! (the sandbox cannot write to the cgroup tree). The job's end, the
//! wrapper noticing its agent died, and the next agent's start each kill
//! the whole cgroup at once (`cgroup.kill`).
//!
//! Elsewhere, as GitHub's runner does, every step process carries
//! `LAUNCHWAY_TRACKING_ID=<agent>-<job>` in its environment and the same
//! three moments kill the processes of this user that carry it. That is
//! best effort: a process that rewrites its environment escapes it.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The variable that marks a job's processes.
pub const TRACKING_VAR: &str = "LAUNCHWAY_TRACKING_ID";

/// How an agent keeps track of its jobs' processes.
#[derive(Debug, Clone)]
pub struct Tracker {
    /// `<agent>`: the prefix of this agent's tracking ids.
    agent: String,
    /// The agent's cgroup subtree, when it has one.
    cgroup: Option<PathBuf>,
}

/// One job's processes.
#[derive(Debug)]
pub struct JobProcesses {
    pub tracking_id: String,
    pub cgroup: Option<PathBuf>,
}

impl Tracker {
    /// Sets the agent up, before it drops privileges or restricts itself:
    /// kills what a predecessor with the same work dir left, and prepares
    /// a cgroup subtree (handed to `owner` when the agent will run as that
    /// user) unless `use_cgroup` is false or the machine does not allow it.
    pub fn setup(work: &Path, owner: Option<(u32, u32)>, use_cgroup: bool) -> Tracker {
        let agent = agent_key(work);
        kill_marked(&format!("{TRACKING_VAR}={agent}-"), true);
        let cgroup = if use_cgroup {
            match own_subtree(&agent, owner) {
                Ok(dir) => Some(dir),
                Err(e) => {
                    eprintln!(
                        "agent: job processes are tracked by their environment ({e}); a cgroup v2 tree the agent can manage is surer"
                    );
                    None
                }
            }
        } else {
            None
        };
        Tracker { agent, cgroup }
    }

    /// The cgroup subtree the agent must be able to write (to create and
    /// remove its jobs' cgroups under its own Landlock rules).
    pub fn writable(&self) -> Option<PathBuf> {
        self.cgroup.clone()
    }

    /// What the start-up line says.
    pub fn describe(&self) -> String {
        match &self.cgroup {
            Some(d) => format!("a cgroup per job under {}", d.display()),
            None => format!("by {TRACKING_VAR} in their environment"),
        }
    }

    /// A new job's process set.
    pub fn job(&self, id: i64) -> JobProcesses {
        self.adopt(id, self.cgroup(&format!("job-{id}")))
    }

    /// A job's process set in a cgroup made earlier with [`Tracker::cgroup`]
    /// (a spare launcher's).
    pub fn adopt(&self, id: i64, cgroup: Option<PathBuf>) -> JobProcesses {
        JobProcesses {
            tracking_id: format!("{}-{id}", self.agent),
            cgroup,
        }
    }

    /// A new empty cgroup `name` (`job-…`: what a successor's start
    /// cleans up) in the agent's subtree; `None` without one.
    pub fn cgroup(&self, name: &str) -> Option<PathBuf> {
        let dir = self.cgroup.as_ref()?.join(name);
        // What an earlier attempt left under this name goes first.
        if dir.exists() {
            kill_cgroup(&dir);
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => Some(dir),
            Err(e) => {
                eprintln!("agent: cannot create {}: {e}", dir.display());
                None
            }
        }
    }
}

impl JobProcesses {
    /// Kills every process the job left; returns how many were found by
    /// their mark (with a cgroup, 0: they are not counted).
    pub fn end(&self) -> usize {
        // In a cgroup nothing can leave (the sandbox cannot write the
        // cgroup tree): no scan of every process's environment needed.
        if let Some(dir) = &self.cgroup {
            kill_cgroup(dir);
            return 0;
        }
        kill_marked(&format!("{TRACKING_VAR}={}\0", self.tracking_id), false)
    }
}

/// A short stable name for the agent working in `work`.
fn agent_key(work: &Path) -> String {
    use sha2::{Digest, Sha256};
    let abs = std::path::absolute(work).unwrap_or_else(|_| work.to_path_buf());
    let digest = Sha256::digest(abs.as_os_str().as_encoded_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Where cgroup v2 is mounted (from `/proc/self/mountinfo`).
fn cgroup2_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// This process's cgroup v2 path (`0::/…` in `/proc/self/cgroup`).
fn own_cgroup() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// Why the agent has no cgroup subtree of its own (it then tracks its
/// jobs' processes by their environment).
#[derive(Debug, thiserror::Error)]
enum CgroupError {
    #[error("no cgroup v2 mounted")]
    NoCgroup2,
    #[error("this process is in no cgroup v2")]
    NotInCgroup2,
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot move the agent into {}: {source}", path.display())]
    Join {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot hand {} to uid {uid}: {source}", path.display())]
    Hand {
        path: PathBuf,
        uid: u32,
        source: std::io::Error,
    },
}

/// Creates `<own cgroup>/launchway-<agent>`, kills the jobs a predecessor
/// left in it, and moves this process into its `agent` leaf (so that the
/// job cgroups and the agent share an ancestor it may write to).
fn own_subtree(agent: &str, owner: Option<(u32, u32)>) -> Result<PathBuf, CgroupError> {
    let mount = cgroup2_mount().ok_or(CgroupError::NoCgroup2)?;
    let own = own_cgroup().ok_or(CgroupError::NotInCgroup2)?;
    let mut parent = mount.clone();
    for part in own.split('/').filter(|p| !p.is_empty()) {
        parent.push(part);
    }
    // An agent started again from inside its own tree.
    let name = format!("launchway-{agent}");
    let base = if parent.ends_with(Path::new(&name).join("agent")) {
        parent.parent().map(Path::to_path_buf).unwrap_or(parent)
    } else {
        parent.join(&name)
    };
    // Trees other agents left here and no process uses any more go.
    if let Some(dir) = base.parent()
        && let Ok(rd) = std::fs::read_dir(dir)
    {
        for e in rd.flatten() {
            let p = e.path();
            if p != base
                && e.file_name().to_string_lossy().starts_with("launchway-")
                && p.join("cgroup.procs").exists()
                && !populated(&p)
            {
                remove_tree(&p);
            }
        }
    }
    if !base.join("cgroup.procs").exists() {
        std::fs::create_dir(&base).map_err(|source| CgroupError::Create {
            path: base.clone(),
            source,
        })?;
    }
    if let Ok(rd) = std::fs::read_dir(&base) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("job-") {
                kill_cgroup(&e.path());
            }
        }
    }
    let leaf = base.join("agent");
    if !leaf.join("cgroup.procs").exists() {
        std::fs::create_dir(&leaf).map_err(|source| CgroupError::Create {
            path: leaf.clone(),
            source,
        })?;
    }
    write_file(&leaf.join("cgroup.procs"), "0").map_err(|source| CgroupError::Join {
        path: leaf.clone(),
        source,
    })?;
    if let Some((uid, gid)) = owner {
        // Delegated as systemd does: the directory and the files that
        // create and move (the common ancestor's `cgroup.procs`).
        for p in [
            base.clone(),
            base.join("cgroup.procs"),
            base.join("cgroup.threads"),
            leaf.clone(),
            leaf.join("cgroup.procs"),
        ] {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).map_err(|source| {
                CgroupError::Hand {
                    path: p.clone(),
                    uid,
                    source,
                }
            })?;
        }
    }
    Ok(base)
}

fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(text.as_bytes())
}

/// Kills everything in the cgroup `dir` and removes it.
pub fn kill_cgroup(dir: &Path) {
    let kill_file = dir.join("cgroup.kill");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if kill_file.exists() {
            let _ = write_file(&kill_file, "1");
        } else {
            // Before Linux 5.14: one by one, until none is left.
            for pid in pids_in(dir) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        if !populated(dir) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::fs::remove_dir(dir);
}

/// Removes an empty cgroup tree, deepest first.
fn remove_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn pids_in(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn populated(dir: &Path) -> bool {
    match std::fs::read_to_string(dir.join("cgroup.events")) {
        Ok(t) => t.lines().any(|l| l == "populated 1"),
        Err(_) => !pids_in(dir).is_empty(),
    }
}

/// SIGKILLs every process (but this one) whose environment holds `mark`
/// (`VAR=value\0` for an exact value; with `prefix`, `VAR=start`), until
/// none is left; returns how many it killed.
pub fn kill_marked(mark: &str, prefix: bool) -> usize {
    let me = std::process::id();
    let needle = mark.as_bytes();
    let mut killed = 0;
    for _round in 0..50 {
        let mut found = 0;
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return killed;
        };
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(env) = std::fs::read(e.path().join("environ")) else {
                continue;
            };
            let hit = env.split(|b| *b == 0).any(|var| {
                if prefix {
                    var.starts_with(needle)
                } else {
                    // `mark` ends with the NUL that ends the variable.
                    needle.strip_suffix(b"\0").is_some_and(|n| var == n)
                }
            });
            if hit && let Ok(pid) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                found += 1;
            }
        }
        killed += found;
        if found == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_keys_are_stable_and_differ_by_work_dir() {
        let a = agent_key(Path::new("/srv/agent-a"));
        assert_eq!(a, agent_key(Path::new("/srv/agent-a")));
        assert_ne!(a, agent_key(Path::new("/srv/agent-b")));
        assert_eq!(a.len(), 12);
    }

    #[test]
    fn marked_processes_are_killed_and_others_are_not() {
        let mark = format!("test-{}-{}", std::process::id(), agent_key(Path::new("/x")));
        let spawn = |value: &str| {
            std::process::Command::new("sleep")
                .arg("30")
                .env(TRACKING_VAR, value)
                .spawn()
                .unwrap()
        };
        let mut exact = spawn(&format!("{mark}-7"));
        let mut other_job = spawn(&format!("{mark}-71"));
        // `spawn` returns once the child's exec has begun, a moment before
        // the kernel shows its new environment: wait until it does.
        for child in [&exact, &other_job] {
            let path = format!("/proc/{}/environ", child.id());
            for _ in 0..400 {
                if std::fs::read(&path)
                    .is_ok_and(|e| e.windows(mark.len()).any(|w| w == mark.as_bytes()))
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let n = kill_marked(&format!("{TRACKING_VAR}={mark}-7\0"), false);
        assert_eq!(n, 1);
        assert!(exact.wait().is_ok());
        assert!(
            other_job.try_wait().unwrap().is_none(),
            "another job's process was killed"
        );
        assert_eq!(kill_marked(&format!("{TRACKING_VAR}={mark}-"), true), 1);
        assert!(other_job.wait().is_ok());
    }
}
