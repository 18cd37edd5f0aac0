//! Keeping workflow code away from the control plane, by construction:
//! the agent process drops to an unprivileged user when started as root,
//! becomes non-dumpable (so jobs running as the same user cannot read its
//! memory or environment through `/proc`), and restricts itself with
//! Landlock so that neither it nor anything it starts can open the denied
//! paths (the server's data directory), reach into processes outside the
//! sandbox through `/proc` or signal them. Everything here happens before
//! the agent starts a thread.

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};
use std::path::{Path, PathBuf};

/// Why the agent or a launcher could not be confined (each refuses to go
/// on without its confinement).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("looking up user '{user}': {source}")]
    LookUp { user: String, source: nix::Error },
    #[error("no user '{0}' on this machine (create it: useradd --system {0})")]
    NoUser(String),
    #[error("user '{0}' is root; the agent needs an unprivileged user")]
    RootUser(String),
    #[error("--user {0} needs the agent to start as root")]
    NotRoot(String),
    #[error("{call}: {source}")]
    Sys {
        call: &'static str,
        source: nix::Error,
    },
    #[error("could not drop root privileges for good")]
    StillRoot,
    #[error("the process that started this agent is gone")]
    ParentGone,
    #[error("sandbox-exec: joining {}: {source}", path.display())]
    JoinCgroup {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    #[error("landlock: {}: {source}", path.display())]
    Rule {
        path: PathBuf,
        source: landlock::RulesetError,
    },
    #[error("this kernel does not enforce Landlock")]
    NotEnforced,
}

fn sys(call: &'static str) -> impl FnOnce(nix::Error) -> SandboxError {
    move |source| SandboxError::Sys { call, source }
}

/// The unprivileged user `name`.
fn user(name: &str) -> Result<nix::unistd::User, SandboxError> {
    let u = nix::unistd::User::from_name(name)
        .map_err(|source| SandboxError::LookUp {
            user: name.to_string(),
            source,
        })?
        .ok_or_else(|| SandboxError::NoUser(name.to_string()))?;
    if u.uid.is_root() {
        return Err(SandboxError::RootUser(name.to_string()));
    }
    Ok(u)
}

/// What the sandbox did, for the agent's start-up line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub user: Option<String>,
    pub landlock: &'static str,
}

/// The uid and primary gid of the unprivileged `user` an agent will run as.
pub fn lookup(name: &str) -> Result<(u32, u32), SandboxError> {
    let u = user(name)?;
    Ok((u.uid.as_raw(), u.gid.as_raw()))
}

/// Drops to `user` (when running as root): its uid, its primary group, no
/// supplementary groups.
pub fn drop_to(name: &str) -> Result<(), SandboxError> {
    use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
    if !Uid::effective().is_root() {
        return Err(SandboxError::NotRoot(name.to_string()));
    }
    let u = user(name)?;
    setgroups(&[u.gid]).map_err(sys("setgroups"))?;
    setgid(u.gid).map_err(sys("setgid"))?;
    setuid(u.uid).map_err(sys("setuid"))?;
    if setuid(Uid::from_raw(0)).is_ok() || Gid::effective().as_raw() != u.gid.as_raw() {
        return Err(SandboxError::StillRoot);
    }
    Ok(())
}

/// Makes this process non-dumpable: same-user processes can no longer
/// ptrace it or read its `/proc/<pid>/{mem,environ}`.
pub fn not_dumpable() -> Result<(), SandboxError> {
    nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE)"))
}

/// What `sandbox-exec` knows of the job its step belongs to.
#[derive(Debug, Clone)]
pub struct StepJob {
    /// The job's cgroup, to move into before any step starts.
    pub cgroup: Option<PathBuf>,
    /// The job's mark (see [`super::procs`]); empty: none.
    pub tracking_id: String,
    /// Restrict the step with the job's Landlock domain.
    pub landlock: bool,
}

impl Default for StepJob {
    fn default() -> Self {
        StepJob {
            cgroup: None,
            tracking_id: String::new(),
            landlock: true,
        }
    }
}

/// A job's sandbox half entered: the launcher is in the job's cgroup and
/// its Landlock rules are built, all but the job's own directory, which a
/// launcher started before its job is known learns last.
pub struct Prepared {
    kill_all: Option<std::fs::File>,
    rules: Option<Rules>,
}

/// Joins the job's cgroup and builds the Landlock rules that do not
/// depend on which job it is: everything but `deny` readable, `/tmp` and
/// `/dev` writable.
pub fn prepare(deny: &[PathBuf], job: &StepJob) -> Result<Prepared, SandboxError> {
    use std::io::Write;
    let mut kill_all = None;
    if let Some(cg) = &job.cgroup {
        std::fs::OpenOptions::new()
            .write(true)
            .open(cg.join("cgroup.procs"))
            .and_then(|mut f| f.write_all(b"0"))
            .map_err(|source| SandboxError::JoinCgroup {
                path: cg.clone(),
                source,
            })?;
        // Opened before Landlock closes the cgroup tree to this process
        // (and not inherited by the steps).
        kill_all = std::fs::OpenOptions::new()
            .write(true)
            .open(cg.join("cgroup.kill"))
            .ok();
    }
    let rules = if job.landlock {
        let mut writable = vec![PathBuf::from("/tmp"), PathBuf::from("/dev")];
        writable.retain(|w| w.exists());
        Some(Rules::new(deny, &writable, false)?)
    } else {
        None
    };
    Ok(Prepared { kill_all, rules })
}

impl Prepared {
    /// Grants `job_dir` (inside a denied path) and restricts this process
    /// for good. Returns the cgroup's `cgroup.kill`, to end the job with.
    pub fn finish(self, job_dir: &Path) -> Result<Option<std::fs::File>, SandboxError> {
        if let Some(rules) = self.rules {
            rules.grant(&[job_dir.to_path_buf()])?.restrict()?;
        }
        Ok(self.kill_all)
    }
}

/// Whether this kernel enforces Landlock (a ruleset can be created).
pub fn landlock_available() -> bool {
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(|r| r.create())
        .is_ok()
}

/// Asks for SIGTERM when the parent process dies; returns the parent's
/// pid (to notice a parent that died before this call).
pub fn exit_with_parent() -> Result<nix::unistd::Pid, SandboxError> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .map_err(sys("prctl(PR_SET_PDEATHSIG)"))?;
    let parent = nix::unistd::getppid();
    if parent.as_raw() == 1 {
        return Err(SandboxError::ParentGone);
    }
    Ok(parent)
}

/// The rules that give read access to everything under `root` except the
/// `denied` paths: each path from `root` down to a denied one is replaced
/// by its other children.
pub fn allowed_around(root: &Path, denied: &[PathBuf]) -> Vec<PathBuf> {
    if denied.iter().any(|d| root.starts_with(d)) {
        return Vec::new();
    }
    // Nothing denied lies below (nothing can lie below a file).
    if !denied.iter().any(|d| d.starts_with(root))
        || std::fs::symlink_metadata(root).is_ok_and(|m| !m.is_dir())
    {
        return vec![root.to_path_buf()];
    }
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(root) else {
        return out;
    };
    let mut children: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    children.sort();
    for c in children {
        out.extend(allowed_around(&c, denied));
    }
    out
}

/// A Landlock ruleset being built. Rules can be added until
/// [`Rules::restrict`], so the slow part (one rule per sibling along the
/// way to each denied path) can be done before a job is known.
pub struct Rules {
    created: landlock::RulesetCreated,
    abi: ABI,
    best_effort: bool,
}

impl Rules {
    /// Read and execute everywhere but `denied`, write only under
    /// `writable` (minus `denied`), no signals to processes outside (where
    /// the kernel scopes signals). Fails closed: a kernel without Landlock
    /// is an error unless `best_effort`.
    pub fn new(
        denied: &[PathBuf],
        writable: &[PathBuf],
        best_effort: bool,
    ) -> Result<Rules, SandboxError> {
        let abi = ABI::V5;
        let denied: Vec<PathBuf> = denied
            .iter()
            .map(|d| d.canonicalize().unwrap_or_else(|_| d.clone()))
            .collect();
        let read = AccessFs::from_read(abi);
        let all = AccessFs::from_all(abi);
        let ruleset = Ruleset::default()
            .set_compatibility(if best_effort {
                CompatLevel::BestEffort
            } else {
                CompatLevel::HardRequirement
            })
            .handle_access(all)?
            // Signal and abstract-socket scoping came with ABI 6; take it
            // when there.
            .set_compatibility(CompatLevel::BestEffort)
            .scope(Scope::Signal)?;
        let created = ruleset.create()?;
        let writable: Vec<PathBuf> = writable
            .iter()
            .map(|w| w.canonicalize().unwrap_or_else(|_| w.clone()))
            .collect();
        let mut rules = Rules {
            created,
            abi,
            best_effort,
        };
        for (p, access) in plan(Path::new("/"), &denied, &writable, read, all) {
            rules = rules.add(&p, access)?;
        }
        Ok(rules)
    }

    /// Adds a rule for `path` (skipped when it does not exist); a file
    /// gets only what applies to files.
    fn add(
        mut self,
        path: &Path,
        access: landlock::BitFlags<AccessFs>,
    ) -> Result<Rules, SandboxError> {
        let Ok(fd) = PathFd::new(path) else {
            return Ok(self);
        };
        // Of the descriptor just opened: no second walk of the path.
        let is_dir = rustix::fs::fstat(&fd)
            .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir());
        let access = if is_dir {
            access
        } else {
            access & AccessFs::from_file(self.abi)
        };
        self.created = self
            .created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|source| SandboxError::Rule {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(self)
    }

    /// Grants each path whole, even inside a denied one (a job's own
    /// directory).
    pub fn grant(mut self, granted: &[PathBuf]) -> Result<Rules, SandboxError> {
        let all = AccessFs::from_all(self.abi);
        for g in granted {
            let g = g.canonicalize().unwrap_or_else(|_| g.clone());
            self = self.add(&g, all)?;
        }
        Ok(self)
    }

    /// Restricts this process and everything it will start, for good.
    pub fn restrict(self) -> Result<&'static str, SandboxError> {
        let status = self.created.restrict_self()?;
        match status.ruleset {
            RulesetStatus::FullyEnforced => Ok("Landlock (fully enforced)"),
            RulesetStatus::PartiallyEnforced => Ok("Landlock (partially enforced by this kernel)"),
            RulesetStatus::NotEnforced if self.best_effort => {
                Ok("none (this kernel has no Landlock)")
            }
            RulesetStatus::NotEnforced => Err(SandboxError::NotEnforced),
        }
    }
}

/// The rules under `root`: directory listings everywhere (names are not
/// what is guarded; and a sandbox inside this one must list `root` to
/// build its own rules), `read` everywhere but `denied`, `all` under
/// `writable` but `denied`. One rule per path with the union of what it
/// is given: the siblings along the way to a denied path inside a
/// writable one (a work dir under /tmp) would otherwise come twice.
fn plan(
    root: &Path,
    denied: &[PathBuf],
    writable: &[PathBuf],
    read: landlock::BitFlags<AccessFs>,
    all: landlock::BitFlags<AccessFs>,
) -> std::collections::BTreeMap<PathBuf, landlock::BitFlags<AccessFs>> {
    let mut wanted = std::collections::BTreeMap::new();
    wanted.insert(root.to_path_buf(), AccessFs::ReadDir.into());
    for p in allowed_around(root, denied) {
        *wanted.entry(p).or_default() |= read;
    }
    for w in writable {
        for p in allowed_around(w, denied) {
            *wanted.entry(p).or_default() |= all;
        }
    }
    wanted
}

/// Restricts this process and everything it will start: read and execute
/// everywhere but `denied`, write only under `writable` (minus `denied`),
/// `granted` whole, no signals to or `/proc` access into processes
/// outside. Fails closed: a kernel without Landlock is an error unless
/// `best_effort`.
pub fn landlock(
    denied: &[PathBuf],
    writable: &[PathBuf],
    granted: &[PathBuf],
    best_effort: bool,
) -> Result<&'static str, SandboxError> {
    Rules::new(denied, writable, best_effort)?
        .grant(granted)?
        .restrict()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Over random trees and denied paths: no granted path is, or lies
        /// under or above, a denied one, and every file outside the denied
        /// paths is under some granted path.
        #[test]
        fn grants_cover_everything_but_the_denied(
            files in proptest::collection::vec("[ab]{1,2}(/[ab]{1,2}){0,3}", 1..12),
            denied in proptest::collection::vec("[ab]{1,2}(/[ab]{1,2}){0,2}", 1..3),
        ) {
            let d = tempfile::tempdir().unwrap();
            for f in &files {
                let p = d.path().join(f);
                if let Some(parent) = p.parent() { let _ = std::fs::create_dir_all(parent); }
                if !p.exists() { let _ = std::fs::write(&p, ""); }
            }
            let denied: Vec<PathBuf> = denied.iter().map(|x| d.path().join(x)).collect();
            let granted = allowed_around(d.path(), &denied);
            for g in &granted {
                // (A denied path below a file cannot exist.)
                for x in denied.iter().filter(|x| !x.ancestors().skip(1).any(|a| a.is_file())) {
                    prop_assert!(!g.starts_with(x) && !x.starts_with(g), "{} vs {}", g.display(), x.display());
                }
            }
            for f in &files {
                let p = d.path().join(f);
                if !p.is_file() || denied.iter().any(|x| p.starts_with(x)) { continue; }
                prop_assert!(granted.iter().any(|g| p.starts_with(g)), "{} not granted", p.display());
            }
        }
    }

    #[test]
    fn one_rule_per_path_with_what_each_is_given() {
        let d = tempfile::tempdir().unwrap();
        for p in ["tmp/agent/runs", "tmp/other", "etc"] {
            std::fs::create_dir_all(d.path().join(p)).unwrap();
        }
        std::fs::write(d.path().join("tmp/file"), "").unwrap();
        let (read, all) = (AccessFs::from_read(ABI::V5), AccessFs::from_all(ABI::V5));
        let denied = vec![d.path().join("tmp/agent")];
        let got = plan(d.path(), &denied, &[d.path().join("tmp")], read, all);
        let rel: Vec<(String, bool)> = got
            .iter()
            .map(|(p, a)| {
                let name = p
                    .strip_prefix(d.path())
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                (name, a.contains(AccessFs::WriteFile))
            })
            .collect();
        // The work dir's siblings in the writable /tmp come once, writable;
        // /etc readable only; the denied branch not at all; the root
        // listable only.
        assert_eq!(
            rel,
            [
                ("".to_string(), false),
                ("etc".to_string(), false),
                ("tmp/file".to_string(), true),
                ("tmp/other".to_string(), true),
            ]
        );
        assert_eq!(got[&d.path().to_path_buf()], AccessFs::ReadDir);
        assert_eq!(got[&d.path().join("etc")], read);
        assert_eq!(got[&d.path().join("tmp/other")], all);
    }

    #[test]
    fn everything_but_the_denied_branch() {
        let d = tempfile::tempdir().unwrap();
        for p in ["a/x", "a/secret/inner", "b"] {
            std::fs::create_dir_all(d.path().join(p)).unwrap();
        }
        std::fs::write(d.path().join("a/file"), "").unwrap();
        let denied = vec![d.path().join("a/secret")];
        let got = allowed_around(d.path(), &denied);
        let rel: Vec<String> = got
            .iter()
            .map(|p| {
                p.strip_prefix(d.path())
                    .unwrap()
                    .to_string_lossy()
                    .to_string()
            })
            .collect();
        assert_eq!(rel, ["a/file", "a/x", "b"]);
        assert!(allowed_around(&d.path().join("a/secret/inner"), &denied).is_empty());
        assert_eq!(
            allowed_around(&d.path().join("b"), &denied),
            vec![d.path().join("b")]
        );
    }
}
