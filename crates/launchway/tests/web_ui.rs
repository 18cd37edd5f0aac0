//! The web UI in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`), driven over WebDriver against a real `launchway
//! serve`: an invite makes a token and signs in; a run's log follows live
//! until it ends; the run's author is refused a review with the reason; a
//! viewer sees no approve button and a forged POST is refused (CSRF, then
//! role); a reviewer approves and the run continues; an environment's
//! rollback makes a commit; the audit log verifies. Every page is
//! screenshot into `target/ui-screenshots/` and checked with axe-core (from
//! npm) for serious accessibility violations.
//!
//! Runs when `LAUNCHWAY_TEST_BROWSER=1` (CI sets it; without chromium
//! then, the test fails rather than skip).

#![allow(clippy::unwrap_used)]

mod common;
use common::server::{admin, start};
use common::webdriver::Browser;
use common::{SERVICE_APP, commit_all};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn enabled() -> bool {
    if std::env::var("LAUNCHWAY_TEST_BROWSER").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped: set LAUNCHWAY_TEST_BROWSER=1 (needs chromium, chromium-driver and npm)");
    false
}

fn api(base: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = format!("Bearer {token}");
    let url = format!("{base}{path}");
    let mut res = match method {
        "GET" => agent.get(&url).header("Authorization", &auth).call(),
        _ => agent
            .post(&url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or_else(|| json!({})).to_string()),
    }
    .unwrap();
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn wait_run(base: &str, token: &str, id: i64, want: &[&str]) -> Value {
    let start = Instant::now();
    loop {
        let (_, v) = api(base, token, "GET", &format!("/api/runs/{id}"), None);
        if want.contains(&v["status"].as_str().unwrap_or("")) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "run {id} never reached {want:?}: {v}"
        );
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// axe-core from the npm registry, installed once under `target/`.
fn axe_source() -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("axe");
    let file = dir.join("node_modules/axe-core/axe.min.js");
    if !file.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "axe-core@4",
            ])
            .current_dir(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "npm install axe-core");
    }
    std::fs::read_to_string(file).unwrap()
}

/// Serious or critical accessibility violations on the current page.
fn axe(b: &Browser, axe: &str, page: &str) {
    b.run(axe, json!([]));
    let v = b.run_async(
        "const done = arguments[arguments.length - 1];
         axe.run(document, {resultTypes: ['violations']})
            .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.html).slice(0, 3)}))))
            .catch(e => done([{id: 'axe-error', help: String(e)}]));",
        json!([]),
    );
    assert_eq!(v, json!([]), "accessibility violations on {page}");
}

struct Shots(PathBuf);

impl Shots {
    fn take(&self, b: &Browser, name: &str) {
        b.screenshot(&self.0.join(format!("{name}.png")));
    }
}

#[test]
fn the_web_ui_in_chromium() {
    if !enabled() {
        return;
    }
    let axe_js = axe_source();
    let shots = Shots(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/ui-screenshots")
            .canonicalize()
            .unwrap_or_else(|_| {
                let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
                std::fs::create_dir_all(&p).unwrap();
                p.canonicalize().unwrap()
            }),
    );

    // A repository: a workflow that streams its log, one that deploys to a
    // protected environment, and an environment with two revisions.
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("web");
    let envs = repo.join("configs/environments");
    std::fs::create_dir_all(&envs).unwrap();
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(repo.join("app.py"), SERVICE_APP).unwrap();
    std::fs::write(repo.join("version.txt"), "v1\n").unwrap();
    std::fs::write(
        envs.join("_base.yaml"),
        "replicas: 1\nrun: {command: exec python3 app.py, health_path: /health}\n",
    )
    .unwrap();
    std::fs::write(envs.join("dev.yaml"), "env: {GREETING: first}\n").unwrap();
    std::fs::write(
        envs.join("production.yaml"),
        "protection:\n  required_reviewers: [rev, dev1]\n  prevent_self_review: true\n",
    )
    .unwrap();
    std::fs::write(
        repo.join(".github/workflows/live.yml"),
        r###"on:
  workflow_dispatch:
    inputs:
      greeting: {type: choice, options: [hello, hi], default: hello}
      loud: {type: boolean, default: false}
jobs:
  stream:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "greeting=${{ inputs.greeting }} loud=${{ inputs.loud }}"
          echo "::group::Preparing"
          printf '\033[32mready\033[0m\n'
          echo "::endgroup::"
          for i in $(seq 1 14); do echo "tick $i"; sleep 0.5; done
          echo "## Done <img src=x onerror=alert(1)>" >> "$GITHUB_STEP_SUMMARY"
"###,
    )
    .unwrap();
    std::fs::write(
        repo.join(".github/workflows/release.yml"),
        "on: workflow_dispatch\njobs:\n  ship:\n    runs-on: ubuntu-latest\n    environment: production\n    steps: [{run: echo shipped}]\n",
    )
    .unwrap();
    commit_all(&repo);
    std::fs::write(envs.join("dev.yaml"), "env: {GREETING: second}\n").unwrap();
    common::git(&repo, &["commit", "-qam", "dev: second greeting"]);

    let data = tmp.path().join("data");
    let (_server, base, token) = start(&data);
    let root = token.unwrap();
    let (code, v) = api(
        &base,
        &root,
        "POST",
        "/api/repos",
        Some(json!({"name": "web", "location": repo})),
    );
    assert_eq!(code, 201, "{v}");
    for (name, role) in [
        ("dev1", "deployer"),
        ("rev", "deployer"),
        ("view", "viewer"),
    ] {
        let (code, v) = api(
            &base,
            &root,
            "POST",
            "/api/users",
            Some(json!({"name": name, "role": role})),
        );
        assert_eq!(code, 201, "{v}");
    }
    let token_of = |name: &str| {
        let (ok, out, e) = admin(&data, &["token", "create", name]);
        assert!(ok, "{e}");
        out.split_whitespace()
            .find(|w| w.starts_with("lwt_"))
            .unwrap()
            .to_string()
    };
    let rev = token_of("rev");
    let view = token_of("view");
    // An invite from the server's machine (the admin CLI on its database).
    let (ok, out, e) = admin(&data, &["user", "invite", "view"]);
    assert!(ok, "{e}");
    assert!(out.contains("/invite/lwt_"), "{out}");

    let b = Browser::start();
    let sign_in = |token: &str| {
        b.goto(&format!("{base}/login"));
        b.type_into("#token", token);
        b.click("form.card button[type=submit]");
        b.find("header .who", 10);
    };
    let sign_out = || b.click("header .who button[type=submit]");

    // Not signed in: to the sign-in page.
    b.goto(&format!("{base}/runs"));
    b.find("#token", 10);
    assert!(b.url().contains("/login?next=/runs"), "{}", b.url());
    shots.take(&b, "01-sign-in");
    axe(&b, &axe_js, "sign-in");

    // An invite (API, admin) makes dev1's token and signs the browser in.
    let (code, inv) = api(&base, &root, "POST", "/api/users/dev1/invites", None);
    assert_eq!(code, 201, "{inv}");
    let link = format!("{base}{}", inv["path"].as_str().unwrap());
    b.goto(&link);
    shots.take(&b, "02-invite");
    b.click("form.card button[type=submit]");
    // A click does not wait for the next page: the token's element does.
    b.find("#new-token", 10);
    let dev1 = b.text_of("#new-token");
    assert!(dev1.starts_with("lwt_"), "{dev1}");
    shots.take(&b, "03-invite-token");
    // The link works once.
    b.goto(&link);
    assert!(
        b.text_of("main").contains("not valid"),
        "{}",
        b.text_of("main")
    );

    // A run started from the form with the workflow's inputs, its log
    // followed live until it ends.
    b.goto(&format!("{base}/runs"));
    b.click("p.run-workflow a");
    b.find("form.card select#input-greeting", 10);
    shots.take(&b, "04-dispatch-form");
    axe(&b, &axe_js, "dispatch form");
    b.run(
        "document.getElementById('input-greeting').value = 'hi';",
        json!([]),
    );
    b.click("#input-loud");
    b.click("form.card button[type=submit]");
    b.find("p.notice", 10);
    let live_id: i64 = b
        .url()
        .split("/runs/")
        .nth(1)
        .and_then(|r| r.split('?').next())
        .unwrap()
        .parse()
        .unwrap();
    wait_run(&base, &dev1, live_id, &["running"]);
    b.goto(&format!("{base}/runs/{live_id}"));
    b.find("pre.log[data-job='stream']", 20);
    // Lines arrive while the run still runs.
    b.wait_until(
        "const pre = document.querySelector(\"pre.log[data-job='stream']\");
         return !!pre && pre.textContent.includes('tick 3') && document.getElementById('run').dataset.live === 'true';",
        30,
        "live log lines while running",
    );
    let (_, mid) = api(&base, &dev1, "GET", &format!("/api/runs/{live_id}"), None);
    assert_eq!(mid["status"], "running", "{mid}");
    // The job's record says it runs (its "queued" placeholder is gone)
    // though its one step has not ended.
    assert!(mid["jobs"][0]["message"].is_null(), "{mid}");
    assert!(mid["jobs"][0]["started_at"].is_string(), "{mid}");
    // Groups fold, colours are spans, the summary is sanitised.
    assert_eq!(
        b.run(
            "return document.querySelectorAll(\"pre.log[data-job='stream'] details.group\").length > 0 && !!document.querySelector(\"pre.log .f2\")",
            json!([])
        ),
        json!(true)
    );
    shots.take(&b, "05-run-live");
    // The page follows to the end and shows the finished run.
    b.wait_until(
        "return document.querySelector('h1 .badge').dataset.status === 'success' && document.getElementById('run').dataset.live === 'false'",
        60,
        "the run page at the end",
    );
    assert!(b.text_of("pre.log").contains("tick 14"));
    assert!(
        b.text_of("pre.log").contains("greeting=hi loud=true"),
        "{}",
        b.text_of("pre.log")
    );
    assert!(b.all(".summary img").is_empty(), "an image tag got through");
    assert!(b.text_of(".summary").contains("Done"));
    shots.take(&b, "06-run-done");
    axe(&b, &axe_js, "run page");
    b.goto(&format!("{base}/runs"));
    b.find("table.runs", 10);
    shots.take(&b, "07-runs");
    axe(&b, &axe_js, "runs list");

    // A deployment waiting for production: its author may not approve it.
    let (code, run) = api(
        &base,
        &dev1,
        "POST",
        "/api/repos/web/dispatch",
        Some(json!({"workflow": ".github/workflows/release.yml"})),
    );
    assert_eq!(code, 201, "{run}");
    let rel = run["id"].as_i64().unwrap();
    wait_run(&base, &dev1, rel, &["waiting"]);
    b.goto(&format!("{base}/runs/{rel}"));
    b.find("section.review", 20);
    assert!(b.all("button.approve").is_empty());
    let why = b.text_of(".review .refusal");
    assert!(why.contains("self-review"), "{why}");
    shots.take(&b, "08-review-refused-author");
    sign_out();
    b.find("#token", 10);

    // A viewer: no approve button; forged posts are refused.
    sign_in(&view);
    b.goto(&format!("{base}/runs/{rel}"));
    b.find("section.review", 20);
    assert!(b.all("button.approve").is_empty());
    assert!(
        b.text_of(".review .refusal").contains("role"),
        "{}",
        b.text_of(".review")
    );
    let forged = b.run_async(
        "const done = arguments[arguments.length - 1];
         const id = arguments[0];
         const csrf = document.getElementById('run').dataset.csrf;
         const post = (token) => fetch('/runs/' + id + '/review', {method: 'POST', redirect: 'manual',
             headers: {'Content-Type': 'application/x-www-form-urlencoded'},
             body: new URLSearchParams({csrf: token, environment: 'production', decision: 'approve'})});
         const api = fetch('/api/runs/' + id + '/approve', {method: 'POST',
             headers: {'Content-Type': 'application/json'}, body: JSON.stringify({environment: 'production'})});
         Promise.all([post(''), post(csrf), api]).then(rs => done(rs.map(r => r.status)));",
        json!([rel]),
    );
    // No CSRF token: 403. With the viewer's own token the API's role check
    // refuses (the form answers with a notice, a redirect). The JSON API
    // through the session cookie without the header: 403.
    assert_eq!(forged[0], json!(403), "{forged}");
    assert_eq!(forged[2], json!(403), "{forged}");
    let (_, still) = api(&base, &root, "GET", &format!("/api/runs/{rel}"), None);
    assert_eq!(still["status"], "waiting", "{still}");
    shots.take(&b, "09-review-viewer");
    axe(&b, &axe_js, "run page with a review");
    sign_out();
    b.find("#token", 10);

    // The reviewer approves with a comment; the run continues.
    sign_in(&rev);
    b.goto(&format!("{base}/runs/{rel}"));
    b.type_into(".review textarea", "looks good");
    shots.take(&b, "10-review-dialog");
    b.click("button.approve");
    b.find("p.notice", 10);
    assert!(
        b.text_of("p.notice").contains("approved"),
        "{}",
        b.text_of("main")
    );
    wait_run(&base, &rev, rel, &["success"]);

    // Environments: the rollback shows what it commits, then commits it.
    b.goto(&format!("{base}/repos/web/environments"));
    b.find("#env-dev", 30);
    shots.take(&b, "11-environments");
    axe(&b, &axe_js, "environments");
    let before = git_log(&repo);
    b.click("#env-dev form button.danger");
    b.find("p.notice", 10);
    let notice = b.text_of("p.notice");
    assert!(notice.contains("committed"), "{notice}");
    let sha = notice.split_whitespace().last().unwrap().to_string();
    let after = git_log(&repo);
    assert_ne!(before, after);
    assert!(after.contains(&sha[..7]), "{after}");
    let dev_file = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["show", "HEAD:configs/environments/dev.yaml"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&dev_file.stdout).contains("first"),
        "the rollback restored the first greeting"
    );
    shots.take(&b, "12-environments-rolled-back");
    // A deploy to a protected environment becomes a change request that
    // shows what it will commit; its requester may not approve it.
    let head = git_head(&repo);
    b.type_into("#rel-production", &head);
    b.click("#env-production form[action$='/deploy'] button");
    // The page still shows the rollback's notice until the next one loads.
    b.wait_until(
        "const n = document.querySelector('p.notice'); return !!n && n.textContent.includes('waits for a reviewer');",
        10,
        "the change request's notice",
    );
    b.find(".change-request table.diff", 10);
    assert!(
        b.text_of(".change-request")
            .contains("deploy of production")
    );
    shots.take(&b, "13-change-request");
    b.click(".change-request button.approve");
    b.wait_until(
        "const n = document.querySelector('p.notice'); return !!n && !n.textContent.includes('waits for a reviewer');",
        10,
        "the refusal's notice",
    );
    let refused = b.text_of("p.notice");
    assert!(!refused.contains("committed"), "{refused}");
    assert!(
        refused.contains("rev"),
        "the refusal names the requester: {refused}"
    );
    let (_, waiting) = api(&base, &root, "GET", "/api/changes?status=waiting", None);
    assert_eq!(
        waiting["changes"].as_array().map(Vec::len),
        Some(1),
        "{waiting}"
    );
    sign_out();
    b.find("#token", 10);

    // The admin's audit log: every action above, and the chain verifies.
    sign_in(&root);
    b.goto(&format!("{base}/audit"));
    b.find("p.verified", 10);
    let audit = b.text_of("table.audit");
    for action in [
        "web.sign-in",
        "user.invite",
        "deploy.approve",
        "env.rollback",
    ] {
        assert!(
            audit.contains(action),
            "{action} missing from the audit log"
        );
    }
    shots.take(&b, "14-audit");
    axe(&b, &axe_js, "audit log");

    // On a phone's screen: the run page reads without sideways scrolling.
    b.resize(390, 844);
    b.goto(&format!("{base}/runs/{rel}"));
    b.find("section.job", 10);
    assert_eq!(
        b.run(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            json!([])
        ),
        json!(true),
        "the page is wider than a phone's screen"
    );
    shots.take(&b, "15-phone-run");
    axe(&b, &axe_js, "run page on a phone");
}

fn git_head(repo: &Path) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn git_log(repo: &Path) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["log", "--all", "--format=%h %s"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
