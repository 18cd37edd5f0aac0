//! `concurrency` groups across `launchway run` processes (workflow-level
//! and job-level groups share one namespace per repository, as on GitHub):
//! a lock file per group in the data directory.
//!
//! Beside the lock, small files say who holds the group, who waits for it,
//! and who was asked to give it up. At most one run waits: a newer waiter
//! replaces the older one, which ends cancelled. With `cancel-in-progress`
//! the waiter asks the holder to cancel; the holder watches for that
//! request and cancels exactly what holds the group (the run, or the job).

use crate::cancel::Cancel;
use crate::context::hex;
use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often holders and waiters look at the group's files.
const POLL: Duration = Duration::from_millis(100);

/// Held while the run (or job) runs; dropping it releases the group.
#[derive(Debug)]
pub struct GroupLock {
    _lock: Flock<File>,
    files: Files,
    watcher: tokio::task::JoinHandle<()>,
}

impl Drop for GroupLock {
    fn drop(&mut self) {
        self.watcher.abort();
        let _ = std::fs::remove_file(&self.files.holder);
        let _ = std::fs::remove_file(&self.files.cancel);
    }
}

#[derive(Debug, Clone)]
struct Files {
    lock: PathBuf,
    /// "pid token" of the holder.
    holder: PathBuf,
    /// The token of the one waiter.
    pending: PathBuf,
    /// A holder's token: a request that it cancel.
    cancel: PathBuf,
}

fn files(home: &Path, repository: &str, group: &str) -> Files {
    let dir = home.join("concurrency");
    let id = hex(&Sha256::digest(format!("{repository}\n{group}").as_bytes()));
    let f = |ext: &str| dir.join(format!("{}.{ext}", &id[..24]));
    Files {
        lock: f("lock"),
        holder: f("holder"),
        pending: f("pending"),
        cancel: f("cancel"),
    }
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

/// A token unique to this acquisition: "pid time-count".
fn token() -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{} {nanos:x}-{n}", std::process::id())
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Takes the group for `cancel`'s owner, waiting as long as needed.
/// `Ok(None)` when the owner was cancelled while it waited, or a newer
/// waiter replaced it. `on_wait` hears once about the holder's process.
pub async fn acquire(
    home: &Path,
    repository: &str,
    group: &str,
    cancel_in_progress: bool,
    queue_all: bool,
    cancel: &Cancel,
    mut on_wait: impl FnMut(Option<u32>),
) -> Result<Option<GroupLock>, String> {
    let f = files(home, repository, group);
    if let Some(d) = f.lock.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let me = token();
    let mut announced = false;
    let mut asked = false;
    loop {
        if let Some(lock) = try_lock(&f.lock)? {
            std::fs::write(&f.holder, &me).map_err(|e| format!("{}: {e}", f.holder.display()))?;
            let _ = std::fs::remove_file(&f.cancel);
            if read(&f.pending).as_deref() == Some(me.as_str()) {
                let _ = std::fs::remove_file(&f.pending);
            }
            let watcher = {
                let (cancel_file, cancel, me) = (f.cancel.clone(), cancel.clone(), me.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(POLL).await;
                        if read(&cancel_file).as_deref() == Some(me.as_str()) {
                            let _ = std::fs::remove_file(&cancel_file);
                            cancel.cancel();
                            return;
                        }
                    }
                })
            };
            return Ok(Some(GroupLock {
                _lock: lock,
                files: f,
                watcher,
            }));
        }
        if !announced {
            // This run is now the one waiting; an older waiter gives way
            // (with `queue: max` every waiter keeps waiting).
            if !queue_all {
                std::fs::write(&f.pending, &me)
                    .map_err(|e| format!("{}: {e}", f.pending.display()))?;
            }
            let holder = read(&f.holder).and_then(|h| h.split(' ').next()?.parse().ok());
            on_wait(holder);
            announced = true;
        } else if !queue_all && read(&f.pending).as_deref() != Some(me.as_str()) {
            return Ok(None);
        }
        if cancel_in_progress
            && !asked
            && let Some(holder) = read(&f.holder)
        {
            std::fs::write(&f.cancel, holder)
                .map_err(|e| format!("{}: {e}", f.cancel.display()))?;
            asked = true;
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = cancel.cancelled() => {
                if read(&f.pending).as_deref() == Some(me.as_str()) {
                    let _ = std::fs::remove_file(&f.pending);
                }
                return Ok(None);
            }
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
        let first = acquire(d.path(), "repo", "g", false, false, &c, |_| {})
            .await
            .unwrap()
            .unwrap();
        let waited = std::cell::Cell::new(None);
        {
            let second = acquire(d.path(), "repo", "g", false, false, &c, |h| {
                waited.set(Some(h))
            });
            tokio::pin!(second);
            let early = tokio::time::timeout(Duration::from_millis(250), &mut second).await;
            assert!(early.is_err(), "the group is held");
            drop(first);
            assert!(second.await.unwrap().is_some());
        }
        assert_eq!(waited.get(), Some(Some(std::process::id())));
        // Another group is independent.
        let other = acquire(d.path(), "repo", "other", false, false, &c, |_| {})
            .await
            .unwrap();
        assert!(other.is_some());
        // The same group name in another repository is another group.
        let elsewhere = acquire(d.path(), "fork", "g", false, false, &c, |_| {})
            .await
            .unwrap();
        assert!(elsewhere.is_some());
    }

    #[tokio::test]
    async fn a_newer_waiter_replaces_the_older_and_cancel_in_progress_cancels_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let holder_cancel = Cancel::new();
        let held = acquire(d.path(), "r", "g", false, false, &holder_cancel, |_| {})
            .await
            .unwrap()
            .unwrap();
        let (c1, c2) = (Cancel::new(), Cancel::new());
        let older = tokio::spawn({
            let p = d.path().to_path_buf();
            async move {
                acquire(&p, "r", "g", false, false, &c1, |_| {})
                    .await
                    .unwrap()
                    .is_some()
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let newer = tokio::spawn({
            let p = d.path().to_path_buf();
            async move {
                acquire(&p, "r", "g", true, false, &c2, |_| {})
                    .await
                    .unwrap()
                    .map(|_| ())
            }
        });
        // The older waiter gives way…
        assert!(!older.await.unwrap());
        // …and the holder is asked to cancel, through its own token.
        tokio::time::timeout(Duration::from_secs(5), holder_cancel.cancelled())
            .await
            .unwrap();
        drop(held);
        assert!(newer.await.unwrap().is_some());
    }
}
