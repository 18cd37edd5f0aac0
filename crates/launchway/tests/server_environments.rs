//! Environments through `launchway serve`: the server's reconciler runs a
//! registered repository's environments; deploys are commits, made at once
//! for an unprotected environment and after another reviewer's approval
//! for a protected one; environment secrets reach the replicas; a killed
//! server's replicas are adopted by the next one.

#![allow(clippy::unwrap_used)]

mod common;
use common::server::{admin, get, start};
use common::{bin, commit_all};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::SERVICE_APP as APP;

fn cli(base: &str, token: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = bin()
        .args(args)
        .env("LAUNCHWAY_SERVER", base)
        .env("LAUNCHWAY_TOKEN", token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status(base: &str, token: &str, env: &str) -> Value {
    let (code, body) = get(&format!("{base}/api/repos/churn/environments"), Some(token));
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["environment"] == env)
        .cloned()
        .unwrap_or(Value::Null)
}

fn wait_status(base: &str, token: &str, env: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let st = status(base, token, env);
        if ok(&st) {
            return st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{env} never got there: {st}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn http(address: &str, path: &str) -> String {
    let (code, body) = get(&format!("{address}{path}"), None);
    assert_eq!(code, 200, "{body}");
    body
}

fn git_head(dir: &Path) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Stops the replicas a test leaves (the server keeps them on purpose):
/// their process ids come from the server's status.
struct StopReplicas(Vec<u64>);

impl Drop for StopReplicas {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

fn pids(st: &Value) -> Vec<u64> {
    st["replicas"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["pid"].as_u64()).collect())
        .unwrap_or_default()
}

#[test]
fn the_server_deploys_through_git_with_approvals_secrets_and_adoption() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("churn");
    let envs = repo.join("configs/environments");
    std::fs::create_dir_all(&envs).unwrap();
    std::fs::write(repo.join("app.py"), APP).unwrap();
    std::fs::write(repo.join("version.txt"), "v1\n").unwrap();
    std::fs::write(
        envs.join("_base.yaml"),
        "replicas: 1\nrun: {command: exec python3 app.py, health_path: /health}\n",
    )
    .unwrap();
    std::fs::write(envs.join("dev.yaml"), "environment: development\n").unwrap();
    std::fs::write(
        envs.join("prod.yaml"),
        "environment: production\nprotection:\n  required_reviewers: [deployer]\n  prevent_self_review: true\n",
    )
    .unwrap();
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(
        repo.join(".github/workflows/deploy.yml"),
        r#"on: workflow_dispatch
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - id: d
        uses: launchway/deploy@v1
        with:
          environment: dev
          branch: environments
      - run: python3 -c "import sys, urllib.request; print('answered', urllib.request.urlopen(sys.argv[1]).read().decode())" "${{ steps.d.outputs.url }}"
"#,
    )
    .unwrap();
    commit_all(&repo);
    let v1 = git_head(&repo);

    let data = tmp.path().join("data");
    let (server, base, token) = start(&data);
    let token = token.unwrap();
    let (code, _, err) = cli(
        &base,
        &token,
        &["repo", "add", "churn", repo.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let user_token = |name: &str| {
        assert!(admin(&data, &["user", "add", name, "--role", "deployer"]).0);
        let (ok, out, e) = admin(&data, &["token", "create", name]);
        assert!(ok, "{e}");
        out.split_whitespace()
            .find(|w| w.starts_with("lwt_"))
            .unwrap()
            .to_string()
    };
    let ana = user_token("ana");
    let bo = user_token("bo");
    let (code, _, err) = cli(
        &base,
        &token,
        &[
            "secret",
            "set",
            "churn",
            "DB_PASSWORD",
            "--env",
            "production",
        ],
        Some("s3cret-pw"),
    );
    assert_eq!(code, 0, "{err}");

    // Nothing deployed yet: the environments are known, nothing runs.
    let st = wait_status(&base, &token, "dev", |s| s["health"] == "Missing");
    assert_eq!(st["sync"], "Synced", "{st}");

    // An unprotected environment: the deploy is a commit at once, by ana.
    let (code, out, err) = cli(
        &base,
        &ana,
        &["deploy", "dev", "--release", &v1, "--repo", "churn"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deploy dev: committed"), "{out}");
    let dev = wait_status(&base, &token, "dev", |s| {
        s["sync"] == "Synced" && s["health"] == "Healthy" && s["release"] == v1.as_str()
    });
    let mut cleanup = StopReplicas(pids(&dev));
    assert_eq!(http(dev["address"].as_str().unwrap(), "/"), "v1");
    assert_eq!(
        http(dev["address"].as_str().unwrap(), "/secret"),
        "missing",
        "production's secret is not development's"
    );
    let author = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["log", "-1", "--format=%an|%s"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&author.stdout).trim(),
        format!("ana|deploy dev: release {}", &v1[..12])
    );

    // Through the server a deployer changes what runs, not how it runs
    // nor who approves: those keys are refused (and audited).
    for key in ["run.command=sh -c id", "protection.required_reviewers=[]"] {
        let (code, _, err) = cli(
            &base,
            &ana,
            &["deploy", "dev", "--set", key, "--repo", "churn"],
            None,
        );
        assert_eq!(code, 1, "{key}");
        assert!(err.contains("reviewed commit"), "{err}");
    }
    // Nor by rolling back to a commit off the tracked branch (one the
    // deployer controls), nor with a release that is not a commit.
    let stray = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["commit-tree", "HEAD^{tree}", "-m", "a stray commit"])
        .env("GIT_AUTHOR_NAME", "x")
        .env("GIT_AUTHOR_EMAIL", "x@x")
        .env("GIT_COMMITTER_NAME", "x")
        .env("GIT_COMMITTER_EMAIL", "x@x")
        .output()
        .unwrap();
    let stray = String::from_utf8_lossy(&stray.stdout).trim().to_string();
    let head_before = git_head(&repo);
    for (args, why) in [
        (
            vec!["rollback", "dev", "--to", stray.as_str()],
            "not an earlier revision",
        ),
        (
            vec!["deploy", "dev", "--release", "not-a-commit"],
            "is not a commit",
        ),
    ] {
        let mut args = args;
        args.extend(["--repo", "churn"]);
        let (code, _, err) = cli(&base, &ana, &args, None);
        assert_eq!(code, 1, "{args:?}");
        assert!(err.contains(why), "{err}");
    }
    assert_eq!(git_head(&repo), head_before, "nothing was committed");

    // A protected one waits for a reviewer; the requester may not approve.
    let (code, out, err) = cli(
        &base,
        &ana,
        &["promote", "dev", "prod", "--repo", "churn"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("waiting for a reviewer"), "{out}");
    // The reviewer sees what the change would do.
    assert!(out.contains(&format!("release: (unset) → {v1}")), "{out}");
    let id: String = out
        .split("--change ")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches('`')
        .to_string();
    let head_before = git_head(&repo);
    let (code, _, err) = cli(&base, &ana, &["approve", "--change", &id], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("self-review") || err.contains("prevent"),
        "{err}"
    );
    assert_eq!(git_head(&repo), head_before, "nothing was committed");
    let (code, out, err) = cli(&base, &bo, &["approve", "--change", &id], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("committed"), "{out}");
    let prod = wait_status(&base, &token, "prod", |s| {
        s["sync"] == "Synced" && s["health"] == "Healthy" && s["release"] == v1.as_str()
    });
    cleanup.0.extend(pids(&prod));
    let prod_address = prod["address"].as_str().unwrap().to_string();
    assert_eq!(
        http(&prod_address, "/secret"),
        "length 9",
        "the environment's secret reached the replica"
    );
    let (_, changes, _) = cli(&base, &token, &["changes", "--json"], None);
    let changes: Value = serde_json::from_str(&changes).unwrap();
    let change = &changes["changes"][0];
    assert_eq!(change["status"], "committed", "{change}");
    assert_eq!(change["requested_by"], "ana");
    assert_eq!(change["reviewed_by"], "bo");
    let (code, body) = get(
        &format!("{base}/api/repos/churn/environments/prod/history"),
        Some(&token),
    );
    assert_eq!(code, 200);
    let hist: Value = serde_json::from_str(&body).unwrap();
    let last = hist["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["result"], "succeeded", "{hist}");
    assert!(
        last["subject"]
            .as_str()
            .unwrap()
            .starts_with("promote dev to prod")
    );

    // Kill the server: the replicas keep serving; the next server adopts
    // them (same processes, same addresses) instead of starting more.
    drop(server);
    let replica = format!("http://127.0.0.1:{}", prod["replicas"][0]["port"]);
    assert_eq!(http(&replica, "/"), "v1");
    // The stable address too: it lives in the data plane, not the server.
    assert_eq!(http(&prod_address, "/"), "v1");
    let (_server, base, _) = start(&data);
    let prod2 = wait_status(&base, &token, "prod", |s| {
        s["health"] == "Healthy" && s["message"].as_str().unwrap_or("").contains("adopted")
    });
    assert_eq!(pids(&prod2), pids(&prod), "{prod2}");
    assert_eq!(prod2["address"].as_str(), Some(prod_address.as_str()));
    assert_eq!(http(&prod_address, "/secret"), "length 9");
    let dev2 = wait_status(&base, &token, "dev", |s| s["health"] == "Healthy");
    assert_eq!(pids(&dev2), pids(&dev), "{dev2}");

    // A workflow deploys through the server's reconciler: `launchway/deploy`
    // commits to the `environments` branch (created from the run's commit),
    // the reconciler follows that branch from then on, and the step waits
    // until the release serves — on the same address as before.
    let (code, out, err) = cli(
        &base,
        &token,
        &["dispatch", "churn", ".github/workflows/deploy.yml"],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let id: i64 = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    let start = Instant::now();
    let run = loop {
        let (_, body) = get(&format!("{base}/api/runs/{id}"), Some(&token));
        let run: Value = serde_json::from_str(&body).unwrap();
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            break run;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "{run}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let (_, logs) = get(&format!("{base}/api/runs/{id}/logs"), Some(&token));
    assert_eq!(run["status"], "success", "{run}\n{logs}");
    assert!(logs.contains("answered v1"), "{logs}");
    let head = git_head(&repo);
    let branch = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["log", "-1", "--format=%s|%P", "environments"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&branch.stdout).trim(),
        format!("deploy dev: release {}|{head}", &head[..12]),
        "main is untouched; the deploy commit sits on environments"
    );
    let dev3 = wait_status(&base, &token, "dev", |s| {
        s["release"] == head.as_str() && s["health"] == "Healthy"
    });
    assert_eq!(dev3["address"], dev["address"], "{dev3}");
    cleanup.0.extend(pids(&dev3));
}

#[test]
fn a_repository_registered_by_url_gets_its_deploy_commits_pushed_back() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let envs = work.join("configs/environments");
    std::fs::create_dir_all(&envs).unwrap();
    std::fs::write(work.join("app.py"), APP).unwrap();
    std::fs::write(work.join("version.txt"), "v1\n").unwrap();
    std::fs::write(
        envs.join("dev.yaml"),
        "replicas: 1\nrun: {command: exec python3 app.py}\n",
    )
    .unwrap();
    commit_all(&work);
    let v1 = git_head(&work);
    let origin = tmp.path().join("origin.git");
    assert!(
        std::process::Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(&work)
            .arg(&origin)
            .status()
            .unwrap()
            .success()
    );
    let data = tmp.path().join("data");
    let (_server, base, token) = start(&data);
    let token = token.unwrap();
    let url = format!("file://{}", origin.display());
    let (code, _, err) = cli(&base, &token, &["repo", "add", "churn", &url], None);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(
        &base,
        &token,
        &["deploy", "dev", "--release", &v1, "--repo", "churn"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("committed"), "{out}");
    // The commit is on the remote's branch, not only in the server's clone.
    let log = std::process::Command::new("git")
        .arg("-C")
        .arg(&origin)
        .args(["log", "-1", "--format=%s", "main"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&log.stdout).trim(),
        format!("deploy dev: release {}", &v1[..12])
    );
    let dev = wait_status(&base, &token, "dev", |s| {
        s["sync"] == "Synced" && s["health"] == "Healthy" && s["release"] == v1.as_str()
    });
    let _cleanup = StopReplicas(pids(&dev));
    assert_eq!(http(dev["address"].as_str().unwrap(), "/"), "v1");
}

/// A canary of a protected environment through the server: its state over
/// the API (`launchway rollout status --repo`); a viewer may not promote
/// it, nor may a deployer who is not one of its reviewers (walking around
/// the approval by steering the rollout); a reviewer may; the attempts
/// are in the audit log.
#[test]
fn a_canary_through_the_server_is_promoted_by_someone_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("churn");
    let envs = repo.join("configs/environments");
    std::fs::create_dir_all(&envs).unwrap();
    std::fs::write(repo.join("app.py"), APP).unwrap();
    std::fs::write(repo.join("version.txt"), "v1\n").unwrap();
    std::fs::write(
        envs.join("live.yaml"),
        "replicas: 1\nrun: {command: exec python3 app.py, health_path: /health}\nstrategy: {canary: {steps: [{set_weight: 50}, {pause: {}}, {set_weight: 100}]}}\nprotection: {required_reviewers: [bo]}\n",
    )
    .unwrap();
    commit_all(&repo);
    let v1 = git_head(&repo);
    let data = tmp.path().join("data");
    let (_server, base, token) = start(&data);
    let token = token.unwrap();
    let (code, _, err) = cli(
        &base,
        &token,
        &["repo", "add", "churn", repo.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let user_token = |name: &str, role: &str| {
        assert!(admin(&data, &["user", "add", name, "--role", role]).0);
        let (ok, out, e) = admin(&data, &["token", "create", name]);
        assert!(ok, "{e}");
        out.split_whitespace()
            .find(|w| w.starts_with("lwt_"))
            .unwrap()
            .to_string()
    };
    let ana = user_token("ana", "deployer");
    let bo = user_token("bo", "deployer");
    let vic = user_token("vic", "viewer");
    // A deploy by ana waits for bo, the reviewer.
    let deploy = |release: &str| {
        let (code, out, err) = cli(
            &base,
            &ana,
            &["deploy", "live", "--release", release, "--repo", "churn"],
            None,
        );
        assert_eq!(code, 0, "{err}");
        let id: String = out
            .split("--change ")
            .nth(1)
            .unwrap_or_else(|| panic!("{out}"))
            .trim()
            .trim_end_matches('`')
            .to_string();
        let (code, _, err) = cli(&base, &bo, &["approve", "--change", &id], None);
        assert_eq!(code, 0, "{err}");
    };
    deploy(&v1);
    let st = wait_status(&base, &token, "live", |s| {
        s["health"] == "Healthy" && s["release"] == v1.as_str()
    });
    let mut cleanup = StopReplicas(pids(&st));
    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    commit_all(&repo);
    let v2 = git_head(&repo);
    deploy(&v2);
    let start = Instant::now();
    loop {
        let (_, out, _) = cli(
            &base,
            &vic,
            &["rollout", "status", "live", "--repo", "churn", "--json"],
            None,
        );
        let r: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        if r["phase"] == "Paused" && r["weight"] == 50 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _, err) = cli(
        &base,
        &vic,
        &["rollout", "promote", "live", "--repo", "churn"],
        None,
    );
    assert_eq!(code, 1, "a viewer may not promote");
    assert!(
        err.contains("403") || err.to_lowercase().contains("deployer"),
        "{err}"
    );
    // A deployer who may not approve this environment may not steer its
    // rollout either.
    for act in ["promote", "abort"] {
        let (code, _, err) = cli(
            &base,
            &ana,
            &["rollout", act, "live", "--repo", "churn"],
            None,
        );
        assert_eq!(code, 1, "ana may not {act}");
        assert!(err.contains("bo"), "{err}");
    }
    let (code, out, err) = cli(
        &base,
        &bo,
        &["rollout", "promote", "live", "--repo", "churn"],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let st = wait_status(&base, &token, "live", |s| {
        s["health"] == "Healthy" && s["release"] == v2.as_str()
    });
    cleanup.0.extend(pids(&st));
    let (code, body) = get(&format!("{base}/api/audit"), Some(&token));
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("rollout.promote") && body.contains("denied") && body.contains("\"vic\""),
        "{body}"
    ); // The server's /metrics has the environment's traffic per revision.
    let (code, text) = get(&format!("{base}/metrics"), Some(&vic));
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains("launchway_proxy_requests{environment=\"churn/live\"")
            && text.contains("launchway_request_duration_seconds_bucket"),
        "{text}"
    );
}
