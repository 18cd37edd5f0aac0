//! Gates that hold, tried as an attacker would: protection rules come from
//! the repository's default branch, never from the commit being run, and
//! an environment is its file — an alias cannot shadow another file's
//! rules. Through a server (SQLite, and PostgreSQL when
//! `LAUNCHWAY_TEST_POSTGRES` is set) and with `launchway run`.

#![allow(clippy::unwrap_used)]

mod common;
use common::server::{cli, get, start_with_env};
use common::{bin, commit_all, git};
use std::path::Path;
use std::time::{Duration, Instant};

const PROD_SECRET: &str = "prod-only-secret-5521-qq";

const DEPLOY: &str = r#"on: workflow_dispatch
jobs:
  ship:
    runs-on: ubuntu-latest
    environment: production
    steps:
      - run: echo "deploying with [${{ secrets.PROD_TOKEN }}]" && echo "prod-job-ran"
"#;

const PROTECTED: &str = "protection:\n  required_reviewers: [ana]\n  branches: [main]\n";

fn wait_end(base: &str, token: &str, id: i64) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let (_, body) = get(&format!("{base}/api/runs/{id}"), Some(token));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if !matches!(v["status"].as_str(), Some("queued" | "running")) {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn repo_with(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn bypasses(database: Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("svc");
    repo_with(
        &dir,
        &[
            (".github/workflows/deploy.yml", DEPLOY),
            ("configs/environments/production.yaml", PROTECTED),
            ("configs/environments/dev.yaml", "replicas: 1\n"),
        ],
    );
    commit_all(&dir);
    // The attacker's branch drops the protection from the file.
    git(&dir, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(
        dir.join("configs/environments/production.yaml"),
        "replicas: 1\n",
    )
    .unwrap();
    git(&dir, &["commit", "-qam", "no more reviewers"]);
    git(&dir, &["checkout", "-q", "main"]);

    let mut env = Vec::new();
    if let Some(db) = &database {
        env.push(("LAUNCHWAY_DATABASE", db.as_str()));
    }
    let (_server, base, token) =
        start_with_env(&tmp.path().join("data"), &["--poll-seconds", "0"], &env);
    let token = token.unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "svc", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let (ok, out) = cli(
        &base,
        &token,
        &["secret", "set", "svc", "PROD_TOKEN", "--env", "production"],
        Some(PROD_SECRET),
    );
    assert!(ok, "{out}");

    // 1. A run of the attacker's branch is held by main's rules: the
    //    branch may not deploy to production at all.
    let (ok, out) = cli(
        &base,
        &token,
        &[
            "dispatch",
            "svc",
            ".github/workflows/deploy.yml",
            "--ref",
            "feature",
        ],
        None,
    );
    assert!(ok, "{out}");
    let id: i64 = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    let run = wait_end(&base, &token, id);
    let (_, logs) = get(&format!("{base}/api/runs/{id}/logs"), Some(&token));
    assert_eq!(run["status"], "failure", "{run}\n{logs}");
    assert!(
        run.to_string()
            .contains("is not allowed to deploy to environment 'production'"),
        "{run}"
    );
    assert!(
        run.to_string().contains(
            "protection rules from configs/environments/production.yaml on refs/heads/main"
        ),
        "{run}"
    );
    assert!(!logs.contains("prod-job-ran"), "{logs}");
    assert!(!logs.contains(PROD_SECRET));

    // 2. Shadowing: dev.yaml (unprotected) claims the name production.
    std::fs::write(
        dir.join("configs/environments/dev.yaml"),
        "environment: production\nreplicas: 1\n",
    )
    .unwrap();
    git(&dir, &["commit", "-qam", "dev is production now"]);
    let (ok, out) = cli(
        &base,
        &token,
        &["dispatch", "svc", ".github/workflows/deploy.yml"],
        None,
    );
    assert!(ok, "{out}");
    let id: i64 = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    let run = wait_end(&base, &token, id);
    let (_, logs) = get(&format!("{base}/api/runs/{id}/logs"), Some(&token));
    assert_eq!(run["status"], "failure", "{run}\n{logs}");
    assert!(
        run.to_string()
            .contains("`environment: production` is the name of"),
        "{run}"
    );
    assert!(!logs.contains("prod-job-ran"), "{logs}");
}

#[test]
fn protection_rules_cannot_be_walked_around_on_sqlite() {
    bypasses(None);
}

#[test]
fn protection_rules_cannot_be_walked_around_on_postgresql() {
    let Ok(url) = std::env::var("LAUNCHWAY_TEST_POSTGRES") else {
        eprintln!("LAUNCHWAY_TEST_POSTGRES is not set: skipped (CI sets it)");
        return;
    };
    bypasses(Some(common::server::fresh_postgres(&url)));
}

/// `launchway run` reads the rules from the default branch too, and says
/// which rules it applied and from where.
#[test]
fn a_local_run_says_which_rules_it_applied_and_from_where() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("svc");
    repo_with(
        &dir,
        &[
            (".github/workflows/deploy.yml", DEPLOY),
            ("configs/environments/production.yaml", PROTECTED),
        ],
    );
    commit_all(&dir);
    git(&dir, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(
        dir.join("configs/environments/production.yaml"),
        "replicas: 1\n",
    )
    .unwrap();
    git(&dir, &["commit", "-qam", "no more reviewers"]);
    let out = bin()
        .args([
            "run",
            "--json",
            "-W",
            ".github/workflows/deploy.yml",
            "--event",
            "workflow_dispatch",
            "-C",
        ])
        .arg(&dir)
        .env("LAUNCHWAY_HOME", tmp.path().join("home"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(
            "protection rules from configs/environments/production.yaml on refs/heads/main at"
        ),
        "{text}"
    );
    assert!(
        text.contains("refs/heads/feature is not allowed to deploy to environment 'production'"),
        "{text}"
    );
}

/// A deployment nobody reviews does not wait forever: past the approval
/// timeout the run ends as failed, saying why, and can no longer be
/// approved.
#[test]
fn an_unreviewed_deployment_expires() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("svc");
    repo_with(
        &dir,
        &[
            (".github/workflows/deploy.yml", DEPLOY),
            ("configs/environments/production.yaml", PROTECTED),
        ],
    );
    commit_all(&dir);
    let (_server, base, token) = start_with_env(
        &tmp.path().join("data"),
        &[
            "--poll-seconds",
            "0",
            "--approval-timeout-seconds",
            "2",
            "--run-lease-seconds",
            "3",
        ],
        &[],
    );
    let token = token.unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "svc", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let (ok, out) = cli(
        &base,
        &token,
        &["dispatch", "svc", ".github/workflows/deploy.yml"],
        None,
    );
    assert!(ok, "{out}");
    let id: i64 = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    let run = wait_end(&base, &token, id);
    assert_eq!(run["status"], "waiting", "{run}");
    let start = Instant::now();
    let run = loop {
        let (_, body) = get(&format!("{base}/api/runs/{id}"), Some(&token));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["status"] != "waiting" {
            break v;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(run["status"], "failure", "{run}");
    assert!(
        run["message"]
            .as_str()
            .unwrap()
            .contains("approval timeout"),
        "{run}"
    );
    let (ok, out) = cli(
        &base,
        &token,
        &["approve", &id.to_string(), "--env", "production"],
        None,
    );
    assert!(!ok, "{out}");
    assert!(out.contains("not waiting"), "{out}");
}

/// A push's actor is the Launchway user its pusher maps to (an identity),
/// so self-review holds for pushes; a group named as reviewer lets its
/// members approve; a push nobody maps is `unknown` and blocks no one.
#[test]
fn pushes_have_real_actors_and_groups_review_on_sqlite() {
    pushes_have_real_actors_and_groups_review(None);
}

#[test]
fn pushes_have_real_actors_and_groups_review_on_postgresql() {
    let Ok(url) = std::env::var("LAUNCHWAY_TEST_POSTGRES") else {
        eprintln!("LAUNCHWAY_TEST_POSTGRES is not set: skipped (CI sets it)");
        return;
    };
    pushes_have_real_actors_and_groups_review(Some(common::server::fresh_postgres(&url)));
}

fn pushes_have_real_actors_and_groups_review(database: Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("svc");
    repo_with(
        &dir,
        &[
            (
                ".github/workflows/deploy.yml",
                &DEPLOY.replace("on: workflow_dispatch", "on: [push, workflow_dispatch]"),
            ),
            (
                "configs/environments/production.yaml",
                "protection:\n  required_reviewers: [release-managers, ana]\n  prevent_self_review: true\n",
            ),
        ],
    );
    commit_all(&dir);
    let data = tmp.path().join("data");
    let mut env = Vec::new();
    if let Some(db) = &database {
        env.push(("LAUNCHWAY_DATABASE", db.as_str()));
    }
    let (_server, base, token) = start_with_env(&data, &["--poll-seconds", "0"], &env);
    let token = token.unwrap();
    // NUL bytes are a 400 on this backend too, before anything is read,
    // signed or not (PostgreSQL answered 500).
    for body in [
        r#"{"repository":{"name":"a\u0000b"}}"#,
        "{\"repository\":{\"name\":\"a\u{0}b\"}}",
    ] {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let res = agent
            .post(format!("{base}/api/hooks/git"))
            .header("Content-Type", "application/json")
            .header("X-GitHub-Event", "push")
            .header("X-Hub-Signature-256", "sha256=00")
            .send(body)
            .unwrap();
        assert_eq!(res.status().as_u16(), 400, "{body:?}");
    }
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "svc", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let secret = out
        .lines()
        .skip_while(|l| !l.contains("webhook secret"))
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let admin = |args: &[&str]| {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        let (ok, out) = cli(&base, &token, &all, None);
        assert!(ok, "{args:?}: {out}");
        out
    };
    admin(&["user", "add", "ana", "--role", "deployer"]);
    admin(&["user", "add", "bo", "--role", "deployer"]);
    admin(&["user", "identity", "add", "ana", "--login", "ana-gh"]);
    admin(&["group", "add-member", "release-managers", "bo"]);
    let token_of = |out: String| {
        out.split_whitespace()
            .find(|w| w.starts_with("lwt_"))
            .unwrap()
            .to_string()
    };
    let ana = token_of(admin(&["token", "create", "ana"]));
    let bo = token_of(admin(&["token", "create", "bo"]));
    let head = std::process::Command::new("git")
        .args(["-C", dir.to_str().unwrap(), "rev-parse", "HEAD"])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let push = |pusher: &str, delivery: &str| -> i64 {
        let body = format!(
            r#"{{"ref":"refs/heads/main","after":"{head}","repository":{{"name":"svc"}},"pusher":{{"name":"{pusher}"}}}}"#
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut res = agent
            .post(format!("{base}/api/hooks/git"))
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", delivery)
            .header(
                "X-Hub-Signature-256",
                &launchway_server::webhook::sign(secret.as_bytes(), body.as_bytes()),
            )
            .send(&body)
            .unwrap();
        let text = res.body_mut().read_to_string().unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["runs"][0].as_i64().unwrap_or_else(|| panic!("{text}"))
    };
    // Ana pushes: the run is hers; she may not approve it, bo (by his group) may.
    let id = push("ana-gh", "d-1");
    let run = wait_end(&base, &token, id);
    assert_eq!(
        (run["status"].as_str(), run["actor"].as_str()),
        (Some("waiting"), Some("ana")),
        "{run}"
    );
    let (ok, out) = cli(
        &base,
        &ana,
        &["approve", &id.to_string(), "--env", "production"],
        None,
    );
    assert!(!ok && out.contains("self-review"), "{out}");
    let (ok, out) = cli(
        &base,
        &bo,
        &["approve", &id.to_string(), "--env", "production"],
        None,
    );
    assert!(ok, "{out}");
    assert_eq!(wait_end(&base, &token, id)["status"], "success");
    // A pusher nobody maps: `unknown`, which blocks no one.
    let id = push("someone-else", "d-2");
    let run = wait_end(&base, &token, id);
    assert_eq!(run["actor"], "unknown", "{run}");
    let (ok, out) = cli(
        &base,
        &ana,
        &["approve", &id.to_string(), "--env", "production"],
        None,
    );
    assert!(ok, "{out}");
    assert_eq!(wait_end(&base, &token, id)["status"], "success");
}

/// A repository can be removed with what belongs to it — not while one of
/// its runs waits — and its name registered again, clean.
#[test]
fn a_repository_is_deleted_with_its_runs_and_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("svc");
    repo_with(
        &dir,
        &[
            (".github/workflows/deploy.yml", DEPLOY),
            ("configs/environments/production.yaml", PROTECTED),
        ],
    );
    commit_all(&dir);
    let data = tmp.path().join("data");
    let (_server, base, token) = start_with_env(&data, &["--poll-seconds", "0"], &[]);
    let token = token.unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "svc", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let (ok, out) = cli(
        &base,
        &token,
        &["secret", "set", "svc", "PROD_TOKEN", "--env", "production"],
        Some(PROD_SECRET),
    );
    assert!(ok, "{out}");
    let (ok, out) = cli(
        &base,
        &token,
        &["dispatch", "svc", ".github/workflows/deploy.yml"],
        None,
    );
    assert!(ok, "{out}");
    let id: i64 = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    let run = wait_end(&base, &token, id);
    assert_eq!(run["status"], "waiting", "{run}");
    // Not while a run waits.
    let (ok, out) = cli(&base, &token, &["repo", "delete", "svc"], None);
    assert!(!ok && out.contains("cancel them first"), "{out}");
    let (ok, out) = cli(&base, &token, &["cancel", &id.to_string()], None);
    assert!(ok, "{out}");
    let run_dir = run["run_dir"].as_str().unwrap_or("").to_string();
    let (ok, out) = cli(&base, &token, &["repo", "delete", "svc"], None);
    assert!(ok, "{out}");
    let (_, list) = cli(&base, &token, &["repo", "list"], None);
    assert!(!list.contains("svc"), "{list}");
    assert_eq!(get(&format!("{base}/api/runs/{id}"), Some(&token)).0, 404);
    if !run_dir.is_empty() {
        assert!(
            !std::path::Path::new(&run_dir).exists(),
            "{run_dir} outlived its repository"
        );
    }
    // The name is free again; nothing of the old one comes back.
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "svc", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let (_, secrets) = get(&format!("{base}/api/repos/svc/secrets"), Some(&token));
    assert!(!secrets.contains("PROD_TOKEN"), "{secrets}");
}

/// Changes through the API stay inside the rules, on SQLite and
/// PostgreSQL: `--set` of what runs, a rollback to a commit off the tracked
/// branch, a release that is no commit, and a rollback across a reviewed
/// change of the command are all refused, and nothing is committed.
fn changes_stay_inside_the_rules(database: Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("svc");
    repo_with(
        &dir,
        &[(
            "configs/environments/dev.yaml",
            "replicas: 1\nrun:\n  command: ./serve\n",
        )],
    );
    commit_all(&dir);
    // A reviewed change of the command, after the first commit.
    std::fs::write(
        dir.join("configs/environments/dev.yaml"),
        "replicas: 1\nrun:\n  command: ./serve --fast\n",
    )
    .unwrap();
    git(&dir, &["commit", "-qam", "reviewed: faster"]);
    let head = || {
        let out = std::process::Command::new("git")
            .args(["-C", dir.to_str().unwrap(), "rev-parse", "HEAD"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let stray = std::process::Command::new("git")
        .args([
            "-C",
            dir.to_str().unwrap(),
            "commit-tree",
            "HEAD^{tree}",
            "-m",
            "stray",
        ])
        .env("GIT_AUTHOR_NAME", "x")
        .env("GIT_AUTHOR_EMAIL", "x@x")
        .env("GIT_COMMITTER_NAME", "x")
        .env("GIT_COMMITTER_EMAIL", "x@x")
        .output()
        .unwrap();
    let stray = String::from_utf8_lossy(&stray.stdout).trim().to_string();
    let mut env = Vec::new();
    if let Some(db) = &database {
        env.push(("LAUNCHWAY_DATABASE", db.as_str()));
    }
    let (_server, base, token) =
        start_with_env(&tmp.path().join("data"), &["--poll-seconds", "0"], &env);
    let token = token.unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "svc", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let before = head();
    for (args, why) in [
        (
            vec!["deploy", "dev", "--set", "run.command=sh -c id"],
            "reviewed commit",
        ),
        (
            vec!["deploy", "dev", "--set", "environment=production"],
            "reviewed commit",
        ),
        (
            vec!["rollback", "dev", "--to", stray.as_str()],
            "not an earlier revision",
        ),
        (
            vec!["deploy", "dev", "--release", "not-a-commit"],
            "is not a commit",
        ),
        (vec!["rollback", "dev"], "would alter 'run'"),
    ] {
        let mut args = args;
        args.extend(["--repo", "svc"]);
        let (ok, out) = cli(&base, &token, &args, None);
        assert!(!ok && out.contains(why), "{args:?}: {out}");
    }
    assert_eq!(head(), before, "nothing was committed");
}

#[test]
fn changes_stay_inside_the_rules_on_sqlite() {
    changes_stay_inside_the_rules(None);
}

#[test]
fn changes_stay_inside_the_rules_on_postgresql() {
    let Ok(url) = std::env::var("LAUNCHWAY_TEST_POSTGRES") else {
        eprintln!("LAUNCHWAY_TEST_POSTGRES is not set: skipped (CI sets it)");
        return;
    };
    changes_stay_inside_the_rules(Some(common::server::fresh_postgres(&url)));
}
