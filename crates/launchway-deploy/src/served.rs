//! Waiting for a committed change to serve: what `launchway/deploy` steps
//! (in `launchway run` and on the server) do after their commit. The I/O
//! edge: it reads the reconciler's status and history files.

use crate::reconcile::{self, SyncStatus};
use std::path::Path;
use std::time::{Duration, Instant};

/// The commit that last changed `env`'s files (its own and the shared
/// base) at `rev`.
pub fn env_revision(root: &Path, dir: &Path, rev: &str, env: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["log", "-n", "1", "--format=%H", rev, "--"])
        .arg(format!("./{}", dir.join(format!("{env}.yaml")).display()))
        .arg(format!("./{}", dir.join(format!("{env}.yml")).display()))
        .arg(format!("./{}", dir.join(crate::repo::BASE_FILE).display()))
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// An environment serving the revision waited for.
#[derive(Debug, Clone)]
pub struct Served {
    pub address: Option<String>,
    pub release: Option<String>,
    pub replicas: usize,
}

/// Waits until the reconciler keeping `data` serves `revision` of `env`
/// (Synced and Healthy), or its deployment failed, or `timeout` passed.
/// Where a deployment of `revision` stands: served (`Some`), not yet
/// (`None`), or failed or aborted (an error with the reason).
fn look(data: &Path, env: &str, revision: &str) -> Result<Option<Served>, String> {
    let short = &revision[..revision.len().min(12)];
    let st = reconcile::statuses(data)
        .into_iter()
        .find(|s| s.environment == env);
    if let Some(st) = &st
        && st.deployed_revision.as_deref() == Some(revision)
        && st.sync == SyncStatus::Synced
        && st.health == "Healthy"
    {
        return Ok(Some(Served {
            address: st.address.clone(),
            release: st.release.clone(),
            replicas: st.replicas.len(),
        }));
    }
    if let Some(h) = reconcile::history(data, env)
        .into_iter()
        .rev()
        .find(|h| h.revision.as_deref() == Some(revision))
        && (h.result == "failed" || h.result == "aborted")
    {
        let what = if h.result == "aborted" {
            "rollout"
        } else {
            "deployment"
        };
        return Err(format!(
            "the {what} of {short} to '{env}' {}: {} (what ran before keeps serving)",
            h.result, h.message
        ));
    }
    Ok(None)
}

/// Waits until `env` serves `revision` — after its whole progressive
/// rollout, if it has one — or, with `started_since` (Unix ms), until a
/// rollout that began after it is under way (its canary takes traffic, or
/// its preview answers): what `wait: started` asks for.
pub async fn wait_until_served(
    data: &Path,
    env: &str,
    revision: &str,
    started_since: Option<u64>,
    timeout: Duration,
) -> Result<Served, String> {
    let short = &revision[..revision.len().min(12)];
    let begun = Instant::now();
    loop {
        if let Some(s) = look(data, env, revision)? {
            return Ok(s);
        }
        if let Some(since) = started_since
            && let Some(r) = crate::local::read_rollout(data, env)
            && crate::local::rollout_is_live(&r.phase)
            && r.started_at >= since
            && (r.weight > 0 || r.preview.is_some())
        {
            let st = reconcile::statuses(data)
                .into_iter()
                .find(|s| s.environment == env);
            return Ok(Served {
                address: st.as_ref().and_then(|s| s.address.clone()),
                release: Some(r.canary.clone()),
                replicas: st.map_or(0, |s| s.replicas.len()),
            });
        }
        if begun.elapsed() > timeout {
            let st = reconcile::statuses(data)
                .into_iter()
                .find(|s| s.environment == env);
            return Err(format!(
                "'{env}' did not serve {short} within {} s; now: {}",
                timeout.as_secs(),
                st.map_or("no status yet".to_string(), |s| format!(
                    "{:?} {} — {}",
                    s.sync, s.health, s.message
                ))
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The ref the reconciler follows for `branch` (HEAD's branch when none).
pub fn tracked_ref(branch: Option<&str>) -> String {
    branch.map_or("HEAD".to_string(), |b| format!("refs/heads/{b}"))
}

/// What a deployment step logs about its commit.
pub fn committed_line(env: &str, branch: Option<&str>, committed: Option<&str>) -> String {
    match committed {
        Some(c) => format!(
            "committed {} to {}",
            &c[..c.len().min(12)],
            branch.unwrap_or("the checked-out branch")
        ),
        None => format!("'{env}' already has this; nothing to commit"),
    }
}

/// What a deployment step logs once its release serves.
/// How the progressive rollout that brought `release` in went, when one
/// did (finished after `since_ms`): its steps, weights and analyses, for
/// the deploy step's log and summary.
pub fn rollout_line(data: &Path, env: &str, since_ms: u64) -> Option<String> {
    let r = crate::local::read_rollout(data, env)?;
    if r.updated_at < since_ms {
        return None;
    }
    let mut tally: std::collections::BTreeMap<String, (u32, u32)> = Default::default();
    for m in &r.measurements {
        let e = tally.entry(m.template.clone()).or_default();
        if m.outcome == crate::analysis::Outcome::Successful {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let analyses: Vec<String> = tally
        .iter()
        .map(|(t, (ok, other))| format!("{t} {ok} passed, {other} not"))
        .collect();
    Some(format!(
        "rollout: {} of {} {} — {} ({} steps){}",
        r.strategy,
        &r.canary[..r.canary.len().min(12)],
        r.phase.to_lowercase(),
        r.message,
        r.steps,
        if analyses.is_empty() {
            String::new()
        } else {
            format!("; analysis: {}", analyses.join(", "))
        }
    ))
}

pub fn served_line(env: &str, s: &Served) -> String {
    format!(
        "'{env}' serves {} at {} ({} replica(s))",
        s.release.as_deref().unwrap_or("-"),
        s.address.as_deref().unwrap_or("-"),
        s.replicas
    )
}

/// [`crate::gitops::deploy`] off the async runtime's threads (git runs as
/// processes): the new commit (`None` when the file already said this) and
/// the revision the reconciler will report for `env`.
pub async fn commit_deploy(
    place: crate::gitops::Place,
    env: String,
    release: Option<String>,
    sets: Vec<(String, String)>,
    author: crate::gitops::Author,
) -> Result<(Option<String>, String), String> {
    tokio::task::spawn_blocking(move || {
        let committed = crate::gitops::deploy(&place, &env, release.as_deref(), &sets, &author)
            .map_err(|e| e.to_string())?;
        let rev = tracked_ref(place.branch.as_deref());
        let revision = env_revision(&place.root, &place.dir, &rev, &env)
            .ok_or_else(|| format!("cannot find '{env}' on {rev}"))?;
        Ok((committed, revision))
    })
    .await
    .map_err(|e| e.to_string())?
}
