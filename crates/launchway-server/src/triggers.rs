//! Triggers that need no one to call in: polling repositories for moved
//! refs (what the git hook would have said), and `schedule` crons.
//!
//! Repositories registered by URL are cloned under the data dir and
//! fetched before each poll; local ones are read in place.

use crate::engine::{Engine, triggered, workflows};
use crate::store::{NewRun, Repo, Store};
use launchway_runner::source::Source;
use launchway_workflow::Event;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    launchway_runner::source::git(dir, args).map_err(|e| e.to_string())
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Whether a location is a URL to clone rather than a local path.
pub fn is_url(location: &str) -> bool {
    location.contains("://") || (location.contains('@') && location.contains(':'))
}

/// Clones a repository registered by URL into `dest`.
pub fn clone(url: &str, dest: &Path) -> Result<(), String> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let out = std::process::Command::new("git")
        .args(["clone", "-q", "--no-checkout", "--", url])
        .arg(dest)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cannot clone {url}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Brings a clone's branches and tags in line with its remote's (the
/// clone has no work tree, so its own branches can simply mirror them).
pub fn fetch(dir: &Path) -> Result<(), String> {
    git(
        dir,
        &[
            "fetch",
            "-q",
            "--prune",
            "--update-head-ok",
            "origin",
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        ],
    )
    .map(|_| ())
}

/// The branches and tags of a repository as `refs/heads/x` / `refs/tags/x`
/// → sha; for a clone, the remote's (after a fetch).
fn current_refs(dir: &Path, cloned: bool) -> Result<BTreeMap<String, String>, String> {
    if cloned {
        fetch(dir)?;
    }
    let text = git(
        dir,
        &[
            "for-each-ref",
            "--format=%(objectname) %(*objectname) %(refname)",
            "refs/heads",
            "refs/tags",
        ],
    )?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        let (Some(obj), Some(peeled), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        // Annotated tags point at their commit through the tag object.
        let sha = if peeled.is_empty() { obj } else { peeled };
        out.insert(name.to_string(), sha.to_string());
    }
    Ok(out)
}

/// The directory a repository's commits are read from.
pub fn checkout_dir(data_dir: &Path, repo: &Repo) -> std::path::PathBuf {
    if is_url(&repo.location) {
        data_dir.join("repos").join(&repo.name)
    } else {
        std::path::PathBuf::from(&repo.location)
    }
}

/// The checkout to read a repository's commits from, fetched first when
/// it is a clone (so a just-pushed commit is there).
pub async fn current_dir(data_dir: &Path, repo: &Repo) -> std::path::PathBuf {
    let dir = checkout_dir(data_dir, repo);
    if is_url(&repo.location) {
        let d = dir.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || fetch(&d)).await {
            eprintln!("{}: {e}", repo.name);
        }
    }
    dir
}

/// Queues the runs an event triggers at `sha`; returns their ids and the
/// workflow files that could not be read.
pub async fn queue_event(
    engine: &Engine,
    repo: &Repo,
    dir: &Path,
    mut event: Event,
    sha: &str,
    before: Option<&str>,
    actor: &str,
) -> Result<(Vec<i64>, Vec<String>), String> {
    let source = Source::open(dir, Some(sha), false).map_err(|e| e.to_string())?;
    event.changed_files = source.changed_files(event.base_ref.as_deref().or(before));
    let (selected, problems) = triggered(&source, &event);
    let mut ids = Vec::new();
    for (workflow, _) in selected {
        let new = NewRun {
            repo: repo.name.clone(),
            workflow,
            event: event.name.clone(),
            git_ref: event.git_ref.clone(),
            sha: source.sha.clone(),
            inputs: Default::default(),
            actor: actor.to_string(),
            rerun_of: 0,
            base_ref: event.base_ref.clone().unwrap_or_default(),
            action: event.action.clone().unwrap_or_default(),
            resume_dir: String::new(),
        };
        ids.push(engine.enqueue(&new).await.map_err(|e| e.to_string())?.id);
    }
    Ok((ids, problems))
}

/// One poll of one repository: a push event per moved branch or new tag.
/// The first poll of a repository only records what is there.
pub async fn poll_repo(
    engine: &Engine,
    store: &Store,
    data_dir: &Path,
    repo: &Repo,
) -> Result<Vec<i64>, String> {
    let cloned = is_url(&repo.location);
    let dir = checkout_dir(data_dir, repo);
    let now = tokio::task::block_in_place(|| current_refs(&dir, cloned))?;
    let seen = store
        .refs_seen(&repo.name)
        .await
        .map_err(|e| e.to_string())?;
    let first = seen.is_empty();
    store
        .set_refs_seen(&repo.name, &now)
        .await
        .map_err(|e| e.to_string())?;
    if first {
        return Ok(Vec::new());
    }
    let mut ids = Vec::new();
    for (r, sha) in &now {
        let before = seen.get(r);
        if before == Some(sha) {
            continue;
        }
        let event = Event {
            name: "push".into(),
            git_ref: r.clone(),
            base_ref: None,
            action: None,
            changed_files: None,
        };
        let before = before.map(String::as_str).filter(|b| *b != ZERO_SHA);
        let (queued, problems) =
            // A poll sees a commit, not who pushed it: the actor is unknown
            // (a commit's author is whatever its maker wrote).
            queue_event(
                engine,
                repo,
                &dir,
                event,
                sha,
                before,
                crate::store::accounts::UNKNOWN_ACTOR,
            )
            .await?;
        for p in problems {
            eprintln!("{}: {p}", repo.name);
        }
        ids.extend(queued);
    }
    Ok(ids)
}

/// Polls every repository every `interval`, forever.
pub async fn poll_loop(
    engine: Arc<Engine>,
    store: Store,
    data_dir: std::path::PathBuf,
    interval: Duration,
) {
    loop {
        match store.repos().await {
            Ok(repos) => {
                for repo in repos {
                    match poll_repo(&engine, &store, &data_dir, &repo).await {
                        Ok(ids) if !ids.is_empty() => {
                            eprintln!("{}: polling queued run(s) {ids:?}", repo.name);
                        }
                        Ok(_) => {}
                        Err(e) => eprintln!("{}: poll: {e}", repo.name),
                    }
                }
            }
            Err(e) => eprintln!("poll: {e}"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// UTC calendar fields of a Unix minute: (minute, hour, day, month, weekday 0=Sunday).
pub fn utc_fields(unix_minute: i64) -> (u32, u32, u32, u32, u32) {
    let days = unix_minute.div_euclid(1440);
    let in_day = unix_minute.rem_euclid(1440);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let _ = era;
    let weekday = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (
        (in_day % 60) as u32,
        (in_day / 60) as u32,
        day as u32,
        month as u32,
        weekday as u32,
    )
}

/// Queues the `schedule` runs due in `unix_minute` for one repository, at
/// its default branch's head.
pub async fn fire_schedules(
    engine: &Engine,
    store: &Store,
    data_dir: &Path,
    repo: &Repo,
    unix_minute: i64,
) -> Result<Vec<i64>, String> {
    let dir = checkout_dir(data_dir, repo);
    let source = Source::open(&dir, None, false).map_err(|e| e.to_string())?;
    let git_ref = source
        .head_ref
        .clone()
        .unwrap_or_else(|| "refs/heads/main".into());
    let (m, h, d, mo, wd) = utc_fields(unix_minute);
    let mut ids = Vec::new();
    for (f, wf) in workflows(&source).0 {
        let due = wf
            .on
            .events
            .get("schedule")
            .is_some_and(|t| t.crons.iter().any(|c| c.value.matches(m, h, d, mo, wd)));
        if !due
            || !store
                .claim_schedule(&repo.name, &f, unix_minute)
                .await
                .map_err(|e| e.to_string())?
        {
            continue;
        }
        let new = NewRun {
            repo: repo.name.clone(),
            workflow: f,
            event: "schedule".into(),
            git_ref: git_ref.clone(),
            sha: source.sha.clone(),
            inputs: Default::default(),
            actor: "schedule".into(),
            rerun_of: 0,
            base_ref: String::new(),
            action: String::new(),
            resume_dir: String::new(),
        };
        ids.push(engine.enqueue(&new).await.map_err(|e| e.to_string())?.id);
    }
    Ok(ids)
}

/// Evaluates the schedules at start (for the current minute) and at every
/// minute boundary after.
pub async fn schedule_loop(engine: Arc<Engine>, store: Store, data_dir: std::path::PathBuf) {
    loop {
        let now_ms = crate::now_ms();
        let minute = now_ms / 60_000;
        if let Ok(repos) = store.repos().await {
            for repo in repos {
                if let Err(e) = fire_schedules(&engine, &store, &data_dir, &repo, minute).await {
                    eprintln!("{}: schedule: {e}", repo.name);
                }
            }
        }
        let next = (minute + 1) * 60_000;
        let wait = u64::try_from(next - crate::now_ms()).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_fields_in_utc() {
        // 2026-11-27T18:30Z, a Friday.
        let m = 1_795_804_200 / 60;
        assert_eq!(utc_fields(m), (30, 18, 27, 11, 5));
        // The epoch: Thursday 1970-01-01 00:00.
        assert_eq!(utc_fields(0), (0, 0, 1, 1, 4));
        // A leap day: 2024-02-29T23:59Z, a Thursday.
        assert_eq!(utc_fields(1_709_251_140 / 60), (59, 23, 29, 2, 4));
    }

    #[test]
    fn urls_and_paths() {
        assert!(is_url("https://github.com/o/r.git"));
        assert!(is_url("file:///srv/r"));
        assert!(is_url("git@github.com:o/r.git"));
        assert!(!is_url("/srv/repos/r"));
    }
}
