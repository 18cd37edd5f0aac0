//! Workflow-level `concurrency` across `launchway run` processes: a lock
//! file per group in the data directory. A run that finds the group taken
//! waits, or with `cancel-in-progress` interrupts the holder (SIGINT, which
//! the other process turns into a cancellation) and then takes it.

use crate::cancel::Cancel;
use crate::context::hex;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Held for the whole run; dropping it releases the group.
#[derive(Debug)]
pub struct GroupLock {
    _lock: Flock<File>,
    pid_file: PathBuf,
}

impl Drop for GroupLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

fn paths(home: &Path, group: &str) -> (PathBuf, PathBuf) {
    let dir = home.join("concurrency");
    let id = hex(&Sha256::digest(group.as_bytes()));
    (
        dir.join(format!("{}.lock", &id[..24])),
        dir.join(format!("{}.pid", &id[..24])),
    )
}

fn try_lock(path: &Path) -> Result<Option<Flock<File>>, String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Some(l)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(format!("{}: {e}", path.display())),
    }
}

/// Takes the group, waiting as long as needed; `Ok(None)` when this run was
/// cancelled while it waited.
pub async fn acquire(
    home: &Path,
    group: &str,
    cancel_in_progress: bool,
    cancel: &Cancel,
    mut on_wait: impl FnMut(Option<u32>),
) -> Result<Option<GroupLock>, String> {
    let (lock_path, pid_file) = paths(home, group);
    if let Some(d) = lock_path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let mut signalled = false;
    let mut announced = false;
    loop {
        if let Some(lock) = try_lock(&lock_path)? {
            let _ = std::fs::write(&pid_file, std::process::id().to_string());
            return Ok(Some(GroupLock {
                _lock: lock,
                pid_file,
            }));
        }
        let holder = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        if !announced {
            on_wait(holder);
            announced = true;
        }
        if cancel_in_progress
            && !signalled
            && let Some(pid) = holder.and_then(|p| i32::try_from(p).ok())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
            signalled = true;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = cancel.cancelled() => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_holder_waits_until_released() {
        let d = tempfile::tempdir().unwrap();
        let c = Cancel::new();
        let first = acquire(d.path(), "g", false, &c, |_| {})
            .await
            .unwrap()
            .unwrap();
        let waited = std::cell::Cell::new(None);
        {
            let second = acquire(d.path(), "g", false, &c, |h| waited.set(Some(h)));
            tokio::pin!(second);
            let early = tokio::time::timeout(Duration::from_millis(250), &mut second).await;
            assert!(early.is_err(), "the group is held");
            drop(first);
            assert!(second.await.unwrap().is_some());
        }
        assert_eq!(waited.get(), Some(Some(std::process::id())));
        // Another group is independent.
        let other = acquire(d.path(), "other", false, &c, |_| {}).await.unwrap();
        assert!(other.is_some());
    }
}
