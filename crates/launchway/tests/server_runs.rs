//! Runs through `launchway serve`, driven by the CLI as a user would:
//! register a repository, dispatch with inputs, follow logs live, trigger
//! from a git hook, refuse unsigned webhooks and under-privileged users,
//! cancel, re-run, and survive a SIGKILL of the server mid-run.

#![allow(clippy::unwrap_used)]

mod common;
use common::server::{admin, get, start};
use common::{bin, commit_all, git};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const WORKFLOWS: &[(&str, &str)] = &[
    (
        "ci.yml",
        r#"on:
  push: {branches: [main]}
  workflow_dispatch:
    inputs:
      who: {default: world}
jobs:
  hello:
    runs-on: ubuntu-latest
    steps:
      - run: for i in 1 2 3; do echo "hello ${{ inputs.who }} $i"; sleep 0.2; done
  after:
    needs: hello
    runs-on: ubuntu-latest
    steps: [{run: echo after-hello}]
"#,
    ),
    (
        "slow.yml",
        r#"on: workflow_dispatch
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: echo "slow-started pid=$$"; sleep 60; echo never
      - if: always()
        run: echo cleanup-ran
"#,
    ),
];

fn repo(dir: &Path) {
    std::fs::create_dir_all(dir.join(".github/workflows")).unwrap();
    for (name, text) in WORKFLOWS {
        std::fs::write(dir.join(".github/workflows").join(name), text).unwrap();
    }
    commit_all(dir);
}

/// The CLI against the server.
fn cli(base: &str, token: &str, args: &[&str]) -> (i32, String, String) {
    let out = bin()
        .args(args)
        .env("LAUNCHWAY_SERVER", base)
        .env("LAUNCHWAY_TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Registers `dir` as the repository `churn`; what the CLI printed.
fn add_repo(base: &str, token: &str, dir: &Path) -> String {
    let (code, out, err) = cli(
        base,
        token,
        &["repo", "add", "churn", dir.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    out
}

fn run_json(base: &str, token: &str, id: i64) -> Value {
    let (status, body) = get(&format!("{base}/api/runs/{id}"), Some(token));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(60), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn dispatch(base: &str, token: &str, workflow: &str, extra: &[&str]) -> i64 {
    let mut args = vec!["dispatch", "churn", workflow];
    args.extend(extra);
    let (code, out, err) = cli(base, token, &args);
    assert_eq!(code, 0, "{out}{err}");
    out.split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn dispatch_repo(base: &str, token: &str, repo: &str, workflow: &str) -> i64 {
    let (code, out, err) = cli(base, token, &["dispatch", repo, workflow]);
    assert_eq!(code, 0, "{out}{err}");
    out.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn dispatch_follow_hook_cancel_and_rerun_through_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("churn");
    repo(&repo_dir);
    let (_server, base, token) = start(&tmp.path().join("data"));
    let token = token.unwrap();

    let out = add_repo(&base, &token, &repo_dir);
    let secret = out
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap()
        .to_string();

    // workflow_dispatch with an input, followed live to the end.
    let first = dispatch(
        &base,
        &token,
        ".github/workflows/ci.yml",
        &["--input", "who=mona"],
    );
    let (code, out, err) = cli(&base, &token, &["logs", &first.to_string(), "-f"]);
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "hello | hello mona 1",
        "hello | hello mona 3",
        "after | after-hello",
    ] {
        assert!(out.contains(want), "{want} in:\n{out}");
    }
    assert!(err.contains(&format!("run {first} success")), "{err}");
    let run = run_json(&base, &token, first);
    assert_eq!(run["status"], "success");
    assert_eq!(run["event"], "workflow_dispatch");
    assert_eq!(run["actor"], "admin");
    assert_eq!(run["jobs"].as_array().unwrap().len(), 2);

    // Bad input is refused with the reason.
    let (code, _, err) = cli(
        &base,
        &token,
        &[
            "dispatch",
            "churn",
            ".github/workflows/ci.yml",
            "--input",
            "nope=1",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("422") && err.contains("unknown input 'nope'"),
        "{err}"
    );

    // A viewer may read but not dispatch.
    let data = tmp.path().join("data");
    assert!(admin(&data, &["user", "add", "vera", "--role", "viewer"]).0);
    let (ok, viewer_out, e) = admin(&data, &["token", "create", "vera"]);
    assert!(ok, "{e}");
    let viewer = viewer_out
        .split_whitespace()
        .find(|w| w.starts_with("lwt_"))
        .unwrap()
        .to_string();
    let (code, _, err) = cli(
        &base,
        &viewer,
        &["dispatch", "churn", ".github/workflows/ci.yml"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("403"), "{err}");
    let (code, out, _) = cli(&base, &viewer, &["runs", "--repo", "churn"]);
    assert_eq!(code, 0);
    assert!(out.contains("workflow_dispatch"), "{out}");

    // A commit, through the installed hook, queues a push run.
    let secret_file = tmp.path().join("secret");
    std::fs::write(&secret_file, &secret).unwrap();
    let (code, _, err) = cli(
        &base,
        &token,
        &[
            "hook",
            "install",
            "--repo",
            "churn",
            "--secret-file",
            secret_file.to_str().unwrap(),
            "-C",
            repo_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    std::fs::write(repo_dir.join("README.md"), "change\n").unwrap();
    git(&repo_dir, &["add", "-A"]);
    git(&repo_dir, &["commit", "-q", "-m", "second"]);
    let pushed = || -> Vec<Value> {
        let (_, body) = get(&format!("{base}/api/runs?repo=churn"), Some(&token));
        let v: Value = serde_json::from_str(&body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["event"] == "push")
            .cloned()
            .collect()
    };
    wait_until("the hook queued a push run", || !pushed().is_empty());
    let push = pushed()[0].clone();
    let head = std::process::Command::new("git")
        .args(["-C", repo_dir.to_str().unwrap(), "rev-parse", "HEAD"])
        .output()
        .unwrap();
    assert_eq!(push["sha"], String::from_utf8_lossy(&head.stdout).trim());
    assert_eq!(push["git_ref"], "refs/heads/main");

    // Unsigned or wrongly signed notifications start nothing.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let body = r#"{"ref":"refs/heads/main","after":"HEAD","repository":{"name":"churn"}}"#;
    for signature in [
        None,
        Some("sha256=00".to_string()),
        Some(launchway_server::webhook::sign(b"wrong", body.as_bytes())),
    ] {
        let mut req = agent
            .post(format!("{base}/api/hooks/git"))
            .header("X-GitHub-Event", "push");
        if let Some(s) = &signature {
            req = req.header("X-Hub-Signature-256", s);
        }
        let res = req.send(body).unwrap();
        assert_eq!(res.status().as_u16(), 401, "{signature:?}");
    }
    assert_eq!(pushed().len(), 1, "nothing ran");
    // Refusals write nothing: a 500 KB repository name, unsigned as it
    // must be, leaves the audit log as it was.
    let audit_len = || {
        let (_, audit) = get(&format!("{base}/api/audit"), Some(&token));
        audit.len()
    };
    let before = audit_len();
    let huge = format!(
        r#"{{"ref":"refs/heads/main","after":"HEAD","repository":{{"name":"{}"}}}}"#,
        "x".repeat(500_000)
    );
    for _ in 0..3 {
        let res = agent
            .post(format!("{base}/api/hooks/git"))
            .header("X-GitHub-Event", "push")
            .header(
                "X-Hub-Signature-256",
                &launchway_server::webhook::sign(b"wrong", huge.as_bytes()),
            )
            .send(&huge)
            .unwrap();
        assert_eq!(res.status().as_u16(), 401);
    }
    assert_eq!(
        audit_len(),
        before,
        "a refused webhook wrote to the audit log"
    );
    // A delivery GitHub sends again runs nothing twice.
    let head_sha = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let signed = format!(
        r#"{{"ref":"refs/heads/main","after":"{head_sha}","repository":{{"name":"churn"}}}}"#
    );
    let mut answers = Vec::new();
    for _ in 0..2 {
        let mut res = agent
            .post(format!("{base}/api/hooks/git"))
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
            .header(
                "X-Hub-Signature-256",
                &launchway_server::webhook::sign(secret.as_bytes(), signed.as_bytes()),
            )
            .send(&signed)
            .unwrap();
        answers.push((
            res.status().as_u16(),
            res.body_mut().read_to_string().unwrap(),
        ));
    }
    assert_eq!(answers[0].0, 202, "{answers:?}");
    assert_eq!(answers[1].0, 200, "{answers:?}");
    assert!(answers[1].1.contains("duplicate"), "{answers:?}");
    wait_until("the delivery queued one run", || pushed().len() == 2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pushed().len(), 2, "a redelivery ran again");

    // Cancel a running run: its always() step still runs.
    let slow = dispatch(&base, &token, ".github/workflows/slow.yml", &[]);
    wait_until("the slow run started", || {
        let (_, body) = get(&format!("{base}/api/runs/{slow}/logs"), Some(&token));
        body.contains("slow-started")
    });
    let (code, _, err) = cli(&base, &token, &["cancel", &slow.to_string()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&base, &token, &["logs", &slow.to_string(), "-f"]);
    assert_eq!(code, 1, "a cancelled run exits 1: {out}{err}");
    assert!(
        out.contains("slow | cleanup-ran") && !out.contains("slow | never"),
        "{out}"
    );
    assert_eq!(run_json(&base, &token, slow)["status"], "cancelled");
    let (code, _, err) = cli(&base, &token, &["cancel", &slow.to_string()]);
    assert_eq!(code, 1);
    assert!(err.contains("already finished"), "{err}");

    // Re-run the first run: same commit and inputs, a new run.
    let (code, out, err) = cli(&base, &token, &["rerun", &first.to_string()]);
    assert_eq!(code, 0, "{err}");
    let again: i64 = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    let (code, out, _) = cli(&base, &token, &["logs", &again.to_string(), "-f"]);
    assert_eq!(code, 0);
    assert!(out.contains("hello mona 2"), "{out}");
    let r = run_json(&base, &token, again);
    assert_eq!(r["rerun_of"], first);
    assert_eq!(r["sha"], run_json(&base, &token, first)["sha"]);

    // Metrics, and an audit trail that still verifies.
    let (status, metrics) = get(&format!("{base}/metrics"), Some(&token));
    assert_eq!(status, 200);
    assert!(
        metrics.contains("launchway_runs{status=\"cancelled\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("launchway_queue_depth 0"), "{metrics}");
    assert!(
        metrics.contains("launchway_job_duration_seconds_count"),
        "{metrics}"
    );
    let (_, audit) = get(&format!("{base}/api/audit"), Some(&token));
    let audit: Value = serde_json::from_str(&audit).unwrap();
    assert_eq!(audit["verify"]["ok"], true);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "repo.add",
        "run.dispatch",
        "hook.push",
        "run.cancel",
        "run.rerun",
    ] {
        assert!(actions.contains(&want), "{want}: {actions:?}");
    }
    let denied =
        audit["entries"].as_array().unwrap().iter().any(|e| {
            e["action"] == "run.dispatch" && e["actor"] == "vera" && e["outcome"] == "denied"
        });
    assert!(denied, "the refused dispatch is audited");
}

#[test]
fn a_run_interrupted_by_a_server_kill_ends_failed_and_keeps_its_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("churn");
    repo(&repo_dir);
    let data = tmp.path().join("data");
    let (server, base, token) = start(&data);
    let token = token.unwrap();
    add_repo(&base, &token, &repo_dir);
    let id = dispatch(&base, &token, ".github/workflows/slow.yml", &[]);
    // The step's own output line (the `##[command]` echo of its script,
    // which says `pid=$$`, can come in an earlier report).
    let pid_in = |body: &str| -> Option<u32> {
        body.lines()
            .filter(|l| !l.contains("##[command]"))
            .find_map(|l| l.split("slow-started pid=").nth(1))
            .and_then(|t| t.split_whitespace().next())
            .and_then(|p| p.parse().ok())
    };
    wait_until("the run started", || {
        let (_, body) = get(&format!("{base}/api/runs/{id}/logs"), Some(&token));
        pid_in(&body).is_some()
    });
    let (_, body) = get(&format!("{base}/api/runs/{id}/logs"), Some(&token));
    let step_pid: u32 = pid_in(&body).unwrap_or_else(|| panic!("{body}"));
    drop(server); // SIGKILL mid-step
    // Its agent goes with it, and so does the step (cancelled, then killed).
    let start_wait = Instant::now();
    while Path::new(&format!("/proc/{step_pid}")).exists() {
        assert!(
            start_wait.elapsed() < Duration::from_secs(20),
            "the step outlived the server"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The restarted server carries on with the run; its job died with
    // the local agent, which says so when it starts again.
    let (_server, base, _) = start(&data);
    let mut run = run_json(&base, &token, id);
    wait_until("the run ended", || {
        run = run_json(&base, &token, id);
        !matches!(run["status"].as_str(), Some("queued" | "running"))
    });
    assert_eq!(run["status"], "failure");
    assert!(
        run["message"]
            .as_str()
            .unwrap()
            .contains("started again while running this job"),
        "{run}"
    );
    let (_, logs) = get(&format!("{base}/api/runs/{id}/logs"), Some(&token));
    assert!(logs.contains("slow | slow-started"), "{logs}");
    // The queue still works after the restart.
    let next = dispatch(&base, &token, ".github/workflows/ci.yml", &[]);
    let (code, out, _) = cli(&base, &token, &["logs", &next.to_string(), "-f"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hello world 1"));
}

#[test]
fn protected_deployments_wait_for_an_allowed_reviewer_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("churn");
    std::fs::create_dir_all(repo_dir.join(".github/workflows")).unwrap();
    std::fs::create_dir_all(repo_dir.join("configs/environments")).unwrap();
    std::fs::write(
        repo_dir.join("configs/environments/production.yaml"),
        "environment: production\nprotection:\n  required_reviewers: [ana, deployer]\n  prevent_self_review: true\n",
    )
    .unwrap();
    let counter = common::shared_dir(tmp.path()).join("builds.txt");
    std::fs::write(
        repo_dir.join(".github/workflows/deploy.yml"),
        format!(
            r#"on: workflow_dispatch
jobs:
  build:
    runs-on: ubuntu-latest
    outputs: {{version: "${{{{ steps.v.outputs.version }}}}"}}
    steps:
      - id: v
        run: |
          echo built >> {}
          echo "version=1.2.3" >> "$GITHUB_OUTPUT"
  deploy-prod:
    needs: build
    runs-on: ubuntu-latest
    environment: production
    steps:
      - run: echo "deploying ${{{{ needs.build.outputs.version }}}}"
"#,
            counter.display()
        ),
    )
    .unwrap();
    commit_all(&repo_dir);
    let data = tmp.path().join("data");
    let (server, base, token) = start(&data);
    let token = token.unwrap();
    add_repo(&base, &token, &repo_dir);
    let user_token = |name: &str, role: &str| {
        assert!(admin(&data, &["user", "add", name, "--role", role]).0);
        let (ok, out, e) = admin(&data, &["token", "create", name]);
        assert!(ok, "{e}");
        out.split_whitespace()
            .find(|w| w.starts_with("lwt_"))
            .unwrap()
            .to_string()
    };
    let dev = user_token("dev", "developer");
    let ana = user_token("ana", "deployer");
    let bo = user_token("bo", "deployer");

    // Ana triggers the run herself.
    let id = dispatch(&base, &ana, ".github/workflows/deploy.yml", &[]);
    wait_until("the run waits for approval", || {
        run_json(&base, &token, id)["status"] == "waiting"
    });
    let run = run_json(&base, &token, id);
    assert!(
        run["message"]
            .as_str()
            .unwrap()
            .contains(&format!("launchway approve {id} --env production")),
        "{run}"
    );

    // The pending approval survives a restart.
    drop(server);
    let (_server, base, _) = start(&data);
    assert_eq!(run_json(&base, &token, id)["status"], "waiting");

    // Not allowed: a developer (role), ana herself (self-review).
    let id_s = id.to_string();
    let (code, _, err) = cli(&base, &dev, &["approve", &id_s, "--env", "production"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("403") && err.contains("deployer role"),
        "{err}"
    );
    let (code, _, err) = cli(&base, &ana, &["approve", &id_s, "--env", "production"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("403") && err.contains("prevents self-review"),
        "{err}"
    );
    let (code, _, err) = cli(&base, &bo, &["approve", &id_s, "--env", "staging"]);
    assert_eq!(code, 1);
    assert!(err.contains("409"), "{err}");

    // Bo (a deployer, listed through the role) approves: the run resumes
    // without building again, and the deployment gets the build's output.
    let (code, out, err) = cli(
        &base,
        &bo,
        &[
            "approve",
            &id_s,
            "--env",
            "production",
            "--comment",
            "ship it",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("approved"), "{out}");
    wait_until("the run resumes and ends", || {
        run_json(&base, &token, id)["status"] == "success"
    });
    let (_, logs) = get(&format!("{base}/api/runs/{id}/logs"), Some(&token));
    assert!(logs.contains("deploy-prod | deploying 1.2.3"), "{logs}");
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap(),
        "built\n",
        "the build ran once"
    );
    let run = run_json(&base, &token, id);
    assert!(
        run["jobs"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("reused from"),
        "{run}"
    );

    // The deployment record says what went where and who approved it.
    let (code, out, err) = cli(
        &base,
        &token,
        &["deployments", "--env", "production", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d[0]["run_id"], id);
    assert_eq!(d[0]["result"], "success");
    assert_eq!(d[0]["triggered_by"], "ana");
    assert_eq!(d[0]["approved_by"], "bo");
    assert_eq!(d[0]["sha"], run["sha"]);

    // A rejection fails the run; refusals and decisions are in the audit log.
    let second = dispatch(&base, &dev, ".github/workflows/deploy.yml", &[]);
    wait_until("second run waits", || {
        run_json(&base, &token, second)["status"] == "waiting"
    });
    let (code, _, err) = cli(
        &base,
        &ana,
        &[
            "reject",
            &second.to_string(),
            "--env",
            "production",
            "--comment",
            "not today",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let r = run_json(&base, &token, second);
    assert_eq!(r["status"], "failure");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("rejected by ana: not today"),
        "{r}"
    );
    let (_, audit) = get(&format!("{base}/api/audit"), Some(&token));
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let has = |actor: &str, action: &str, outcome: &str| {
        entries.iter().any(|e| {
            e["actor"] == actor
                && e["action"] == action
                && e["outcome"].as_str().unwrap().starts_with(outcome)
        })
    };
    assert!(has("dev", "deploy.approve", "denied"));
    assert!(has("ana", "deploy.approve", "denied"));
    assert!(has("bo", "deploy.approve", "approved"));
    assert!(has("ana", "deploy.reject", "rejected"));
}

#[test]
fn rerun_failed_runs_only_what_did_not_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("churn");
    std::fs::create_dir_all(repo_dir.join(".github/workflows")).unwrap();
    let marker = common::shared_dir(tmp.path()).join("fixed");
    let counter = common::shared_dir(tmp.path()).join("count.txt");
    std::fs::write(
        repo_dir.join(".github/workflows/flaky.yml"),
        format!(
            "on: workflow_dispatch\njobs:\n  ok:\n    runs-on: linux\n    steps: [{{run: echo ok >> {c}}}]\n  flaky:\n    runs-on: linux\n    steps: [{{run: test -f {m}}}]\n  after:\n    needs: [ok, flaky]\n    runs-on: linux\n    steps: [{{run: echo after}}]\n",
            c = counter.display(),
            m = marker.display()
        ),
    )
    .unwrap();
    commit_all(&repo_dir);
    let (_server, base, token) = start(&tmp.path().join("data"));
    let token = token.unwrap();
    add_repo(&base, &token, &repo_dir);
    let first = dispatch(&base, &token, ".github/workflows/flaky.yml", &[]);
    let (code, _, _) = cli(&base, &token, &["logs", &first.to_string(), "-f"]);
    assert_eq!(code, 1, "the first attempt fails");
    std::fs::write(&marker, "").unwrap();
    let (code, out, err) = cli(&base, &token, &["rerun", &first.to_string(), "--failed"]);
    assert_eq!(code, 0, "{err}");
    let again: i64 = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    let (code, out, _) = cli(&base, &token, &["logs", &again.to_string(), "-f"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("after | after"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap(),
        "ok\n",
        "'ok' was reused, not run again"
    );
}

/// Reads a log stream to its `end` event: the lines of `job`, and the status.
fn follow_sse(base: &str, token: &str, id: i64) -> (Vec<String>, String) {
    use std::io::BufRead;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let res = agent
        .get(format!("{base}/api/runs/{id}/logs?follow=true"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let reader = std::io::BufReader::new(res.into_body().into_reader());
    let (mut lines, mut event) = (Vec::new(), String::new());
    for l in reader.lines() {
        let l = l.unwrap();
        if let Some(e) = l.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(d) = l.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(d).unwrap();
            if event == "end" {
                return (lines, v["status"].as_str().unwrap().to_string());
            }
            lines.push(v["line"].as_str().unwrap().to_string());
        }
    }
    panic!("the stream ended without an 'end' event");
}

#[test]
fn fifty_runs_at_once_and_a_hundred_followers() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("churn");
    std::fs::create_dir_all(repo_dir.join(".github/workflows")).unwrap();
    std::fs::write(
        repo_dir.join(".github/workflows/n.yml"),
        "on:\n  workflow_dispatch:\n    inputs: {n: {required: true}}\njobs:\n  a:\n    runs-on: linux\n    outputs: {v: \"${{ steps.s.outputs.v }}\"}\n    steps:\n      - id: s\n        run: echo \"v=$(( ${{ inputs.n }} * 2 ))\" >> \"$GITHUB_OUTPUT\"\n  b:\n    needs: a\n    runs-on: linux\n    steps: [{run: 'echo \"n=${{ inputs.n }} doubled=${{ needs.a.outputs.v }}\"'}]\n",
    )
    .unwrap();
    std::fs::write(
        repo_dir.join(".github/workflows/chatty.yml"),
        "on: workflow_dispatch\njobs:\n  talk:\n    runs-on: linux\n    steps:\n      - run: for i in $(seq 1 300); do echo \"line-$i\"; if [ $((i % 50)) = 0 ]; then sleep 0.2; fi; done\n",
    )
    .unwrap();
    commit_all(&repo_dir);
    let (_server, base, token) = common::server::start_with(
        &tmp.path().join("data"),
        &["--parallel-runs", "4", "--jobs", "2"],
    );
    let token = token.unwrap();
    add_repo(&base, &token, &repo_dir);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post = |body: &str| -> i64 {
        let mut res = agent
            .post(format!("{base}/api/repos/churn/dispatch"))
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
        let v: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        v["id"].as_i64().unwrap()
    };

    // 100 followers join a chatty run as it starts; each gets every line, in order.
    let chatty = post(r#"{"workflow": ".github/workflows/chatty.yml"}"#);
    let followers: Vec<_> = (0..100)
        .map(|_| {
            let (base, token) = (base.clone(), token.clone());
            std::thread::spawn(move || follow_sse(&base, &token, chatty))
        })
        .collect();
    let want: Vec<String> = (1..=300).map(|i| format!("line-{i}")).collect();
    for f in followers {
        let (lines, status) = f.join().unwrap();
        assert_eq!(status, "success");
        let got: Vec<String> = lines
            .into_iter()
            .filter(|l| l.starts_with("line-"))
            .collect();
        assert_eq!(got, want);
    }

    // 50 runs triggered at once all complete with their own results.
    let ids: Vec<(i64, usize)> = (0..50)
        .map(|n| {
            (
                post(&format!(
                    r#"{{"workflow": ".github/workflows/n.yml", "inputs": {{"n": "{n}"}}}}"#
                )),
                n,
            )
        })
        .collect();
    wait_until("all 50 runs finish", || {
        let (_, body) = get(&format!("{base}/api/runs?limit=200"), Some(&token));
        let v: Value = serde_json::from_str(&body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] != "queued" && r["status"] != "running")
    });
    for (id, n) in ids {
        assert_eq!(run_json(&base, &token, id)["status"], "success", "run {id}");
        let (_, logs) = get(&format!("{base}/api/runs/{id}/logs?job=b"), Some(&token));
        assert!(
            logs.contains(&format!("n={n} doubled={}", n * 2)),
            "run {id}: {logs}"
        );
    }
}

#[test]
fn secrets_and_variables_per_repository_and_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("churn");
    std::fs::create_dir_all(repo_dir.join(".github/workflows")).unwrap();
    std::fs::write(
        repo_dir.join(".github/workflows/s.yml"),
        r#"on: workflow_dispatch
jobs:
  build:
    runs-on: linux
    steps:
      - run: echo "repo=${{ secrets.API_KEY }} env=[${{ secrets.DB_PASSWORD }}] level=${{ vars.LEVEL }}"
  deploy:
    needs: build
    runs-on: linux
    environment: staging
    steps:
      - run: echo "repo=${{ secrets.API_KEY }} env=${{ secrets.DB_PASSWORD }} level=${{ vars.LEVEL }}"
"#,
    )
    .unwrap();
    commit_all(&repo_dir);
    let data = tmp.path().join("data");
    let (_server, base, token) = start(&data);
    let token = token.unwrap();
    add_repo(&base, &token, &repo_dir);
    let set_secret = |name: &str, value: &str, env: Option<&str>| {
        let mut args = vec!["secret", "set", "churn", name];
        if let Some(e) = env {
            args.extend(["--env", e]);
        }
        let mut child = bin()
            .args(&args)
            .env("LAUNCHWAY_SERVER", &base)
            .env("LAUNCHWAY_TOKEN", &token)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{value}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    set_secret("API_KEY", "repo-key-7f3a9c", None);
    set_secret("DB_PASSWORD", "staging-pw-51e0d2", Some("staging"));
    let (code, _, err) = cli(
        &base,
        &token,
        &["var", "set", "churn", "LEVEL", "repo-level"],
    );
    assert_eq!(code, 0, "{err}");
    cli(
        &base,
        &token,
        &[
            "var",
            "set",
            "churn",
            "LEVEL",
            "staging-level",
            "--env",
            "staging",
        ],
    );
    // A secret's value never goes on a command line.
    let (code, _, err) = cli(&base, &token, &["secret", "set", "churn", "X", "inline"]);
    assert_eq!(code, 1);
    assert!(err.contains("standard input"), "{err}");

    let id = dispatch(&base, &token, ".github/workflows/s.yml", &[]);
    let (code, logs, _) = cli(&base, &token, &["logs", &id.to_string(), "-f"]);
    assert_eq!(code, 0, "{logs}");
    // The environment's secret and variable only reach the job that deploys there.
    assert!(
        logs.contains("build | repo=*** env=[] level=repo-level"),
        "{logs}"
    );
    assert!(
        logs.contains("deploy | repo=*** env=*** level=staging-level"),
        "{logs}"
    );
    assert!(!logs.contains("repo-key-7f3a9c") && !logs.contains("staging-pw-51e0d2"));

    // Listing shows names, never values; the database holds no clear text.
    let (_, out, _) = cli(&base, &token, &["secret", "list", "churn", "--json"]);
    assert!(
        out.contains("DB_PASSWORD") && out.contains("staging"),
        "{out}"
    );
    assert!(
        !out.contains("staging-pw-51e0d2") && !out.contains("\"value\""),
        "{out}"
    );
    let db = std::fs::read(data.join("server.db")).unwrap();
    let wal = std::fs::read(data.join("server.db-wal")).unwrap_or_default();
    for hay in [&db, &wal] {
        let hay = String::from_utf8_lossy(hay);
        assert!(!hay.contains("repo-key-7f3a9c") && !hay.contains("staging-pw-51e0d2"));
    }
    let (_, run_files, _) = cli(&base, &token, &["runs", "show", &id.to_string(), "--json"]);
    assert!(!run_files.contains("staging-pw-51e0d2"));
    // Deleting removes it from the next run.
    let (code, _, err) = cli(&base, &token, &["secret", "delete", "churn", "API_KEY"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&base, &token, &["secret", "delete", "churn", "API_KEY"]);
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
}

#[test]
fn polling_a_cloned_repository_and_schedules_start_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = tmp.path().join("upstream");
    std::fs::create_dir_all(upstream.join(".github/workflows")).unwrap();
    std::fs::write(
        upstream.join(".github/workflows/ci.yml"),
        "on:\n  push: {branches: [main]}\n  workflow_dispatch:\njobs:\n  a:\n    runs-on: linux\n    steps: [{run: echo pushed}]\n",
    )
    .unwrap();
    std::fs::write(
        upstream.join(".github/workflows/nightly.yml"),
        "on:\n  schedule: [{cron: '* * * * *'}]\njobs:\n  n:\n    runs-on: linux\n    steps: [{run: echo scheduled}]\n",
    )
    .unwrap();
    commit_all(&upstream);
    let (_server, base, token) =
        common::server::start_with(&tmp.path().join("data"), &["--poll-seconds", "1"]);
    let token = token.unwrap();
    // Registered by URL: the server clones it and polls the clone.
    let url = format!("file://{}", upstream.display());
    let (code, _, err) = cli(&base, &token, &["repo", "add", "upstream", &url]);
    assert_eq!(code, 0, "{err}");
    let runs = |event: &str| -> Vec<Value> {
        let (_, body) = get(&format!("{base}/api/runs?repo=upstream"), Some(&token));
        let v: Value = serde_json::from_str(&body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["event"] == event)
            .cloned()
            .collect()
    };
    // The schedule fires once per minute (`* * * * *`), not once per check.
    wait_until("the schedule fired", || !runs("schedule").is_empty());
    std::thread::sleep(Duration::from_millis(1500));
    let fired = runs("schedule");
    let mut minutes: Vec<i64> = fired
        .iter()
        .map(|r| r["created_ms"].as_i64().unwrap() / 60_000)
        .collect();
    minutes.dedup();
    assert_eq!(minutes.len(), fired.len(), "one run per minute: {fired:?}");
    assert_eq!(fired[0]["git_ref"], "refs/heads/main");
    // Nothing runs for what was already there; a new upstream commit does.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(runs("push").is_empty(), "the first poll only records refs");
    std::fs::write(upstream.join("x.txt"), "new\n").unwrap();
    git(&upstream, &["add", "-A"]);
    git(&upstream, &["commit", "-q", "-m", "new"]);
    wait_until("polling saw the new commit", || !runs("push").is_empty());
    let push = &runs("push")[0];
    let head = std::process::Command::new("git")
        .args(["-C", upstream.to_str().unwrap(), "rev-parse", "HEAD"])
        .output()
        .unwrap();
    assert_eq!(push["sha"], String::from_utf8_lossy(&head.stdout).trim());
    assert_eq!(push["actor"], "unknown");
    let id = push["id"].as_i64().unwrap();
    let (code, out, _) = cli(&base, &token, &["logs", &id.to_string(), "-f"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("a | pushed"), "{out}");
    // A dispatch on the cloned repository runs the newest upstream commit.
    let id = dispatch_repo(&base, &token, "upstream", ".github/workflows/ci.yml");
    let run = run_json(&base, &token, id);
    assert_eq!(run["sha"], push["sha"]);
    let (code, out, _) = cli(&base, &token, &["logs", &id.to_string(), "-f"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn artifacts_are_served_with_digests_and_retention_removes_files() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("churn");
    std::fs::create_dir_all(repo_dir.join(".github/workflows")).unwrap();
    std::fs::write(
        repo_dir.join(".github/workflows/a.yml"),
        r#"on: workflow_dispatch
jobs:
  train:
    runs-on: linux
    steps:
      - run: mkdir -p out/sub && echo weights > out/model.bin && printf 'v1' > out/sub/meta.txt
      - uses: actions/upload-artifact@v4
        with: {name: model, path: out}
"#,
    )
    .unwrap();
    commit_all(&repo_dir);
    let data = tmp.path().join("data");
    let (_server, base, token) = start(&data);
    let token = token.unwrap();
    add_repo(&base, &token, &repo_dir);
    let id = dispatch(&base, &token, ".github/workflows/a.yml", &[]);
    let (code, logs, _) = cli(&base, &token, &["logs", &id.to_string(), "-f"]);
    assert_eq!(code, 0, "{logs}");
    let (code, out, err) = cli(&base, &token, &["artifacts", &id.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("model") && out.contains("2 file(s)"), "{out}");
    let dest = tmp.path().join("dl");
    let (code, out, err) = cli(
        &base,
        &token,
        &[
            "artifacts",
            &id.to_string(),
            "--download",
            "model",
            "-o",
            dest.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sha256 verified"), "{out}");
    assert_eq!(
        std::fs::read_to_string(dest.join("model.bin")).unwrap(),
        "weights\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/meta.txt")).unwrap(),
        "v1"
    );
    // Only files the manifest lists are served: no way out of the artifact.
    for path in [
        format!("/api/runs/{id}/artifacts/model/..%2F..%2Frun.json"),
        format!("/api/runs/{id}/artifacts/model/../../run.json"),
        format!("/api/runs/{id}/artifacts/..%2Fartifact-manifests/model.json"),
        format!("/api/runs/{id}/artifacts/model/%2Fetc%2Fpasswd"),
        format!("/api/runs/{id}/artifacts/nope/model.bin"),
    ] {
        let (status, body) = get(&format!("{base}{path}"), Some(&token));
        assert!(matches!(status, 400 | 404), "{path}: {status} {body}");
        assert!(
            !body.contains("\"jobs\"") && !body.contains("root:"),
            "{path}: {body}"
        );
    }
    // Retention: the files go, the run's record stays.
    let (ok, out, err) = admin(&data, &["prune", "--older-than-days", "0"]);
    assert!(ok, "{err}");
    assert!(out.contains("removed the files of 1 run"), "{out}");
    let (status, _) = get(
        &format!("{base}/api/runs/{id}/artifacts/model/model.bin"),
        Some(&token),
    );
    assert_eq!(status, 404);
    assert_eq!(run_json(&base, &token, id)["status"], "success");
    let (_, logs) = get(&format!("{base}/api/runs/{id}/logs"), Some(&token));
    assert!(logs.is_empty(), "{logs}");
}

/// The same server on PostgreSQL (when `LAUNCHWAY_TEST_POSTGRES` names one;
/// `.ci/run` starts it): a dispatch runs and its logs follow.
#[test]
fn the_server_runs_on_postgresql_too() {
    let Ok(admin_url) = std::env::var("LAUNCHWAY_TEST_POSTGRES") else {
        eprintln!("LAUNCHWAY_TEST_POSTGRES is not set: PostgreSQL server test skipped");
        return;
    };
    let name = format!("lw_e2e_{}", std::process::id());
    let out = std::process::Command::new("psql")
        .arg(&admin_url)
        .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (prefix, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{prefix}/{name}");
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("churn");
    repo(&repo_dir);
    let (_server, base, token) =
        common::server::start_with(&tmp.path().join("data"), &["--database", &url]);
    let token = token.unwrap();
    add_repo(&base, &token, &repo_dir);
    let id = dispatch(
        &base,
        &token,
        ".github/workflows/ci.yml",
        &["--input", "who=pg"],
    );
    let (code, out, _) = cli(&base, &token, &["logs", &id.to_string(), "-f"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hello pg 3"), "{out}");
    let (_, metrics) = get(&format!("{base}/metrics"), Some(&token));
    assert!(
        metrics.contains("launchway_runs{status=\"success\"} 1"),
        "{metrics}"
    );
}
