//! End-to-end behaviour of the `launchway` command: cancellation, the seed
//! pipeline's routing, lint output and exit codes.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{bin, commit_all, step_log};

fn repo_with(workflow: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(repo.join(".github/workflows/ci.yml"), workflow).unwrap();
    commit_all(&repo);
    tmp
}

#[test]
fn ctrl_c_cancels_running_steps_and_still_runs_always_steps() {
    let tmp = repo_with(
        r#"on: push
jobs:
  long:
    runs-on: ubuntu-latest
    steps:
      - run: |
          trap 'echo "step got SIGINT"; exit 130' INT
          echo started
          for i in $(seq 1 300); do sleep 0.1; done
      - run: echo "must not run"
      - if: always()
        run: echo "cleanup after cancel"
  later:
    needs: long
    runs-on: ubuntu-latest
    steps: [{run: echo later}]
"#,
    );
    let home = tmp.path().join("home");
    let child = bin()
        .args(["run", "--json", "-C"])
        .arg(tmp.path().join("repo"))
        .env("LAUNCHWAY_HOME", &home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the step is running, then press Ctrl-C.
    let log = home.join("runs/1/logs/long.log");
    for _ in 0..100 {
        let started = std::fs::read_to_string(&log).is_ok_and(|t| t.contains("started"));
        if started {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rec = &recs[0];
    assert_eq!(rec["status"], "cancelled");
    let long = &rec["jobs"][0];
    assert_eq!(long["result"], "cancelled");
    let steps: Vec<&str> = long["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["conclusion"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["cancelled", "skipped", "success"]);
    assert_eq!(rec["jobs"][1]["result"], "skipped");
    let first = step_log(&home.join("runs/1"), &long["steps"][0]);
    assert!(
        first.contains("step got SIGINT"),
        "the step receives SIGINT first:\n{first}"
    );
    let last = step_log(&home.join("runs/1"), &long["steps"][2]);
    assert!(last.contains("cleanup after cancel"));
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/churn-service")
}

fn plan(args: &[&str]) -> (i32, Value, String) {
    let home = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["run", "--dry-run", "--dirty", "--json", "-C"])
        .arg(example())
        .args(args)
        .env("LAUNCHWAY_HOME", home.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn results(v: &Value) -> Vec<(String, String)> {
    v[0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["key"].as_str().unwrap().to_string(),
                j["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn seed_pipeline_push_to_main_runs_everything_and_waits_for_production() {
    let (code, v, err) = plan(&["--event", "push", "--ref", "main"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v[0]["status"], "waiting");
    assert_eq!(
        results(&v),
        pairs(&[
            ("test", "success"),
            ("security-scan", "success"),
            ("build-and-push", "success"),
            ("deploy-dev", "success"),
            ("deploy-prod", "waiting"),
        ])
    );
    // With approval the production job runs too.
    let (_, v, err) = plan(&[
        "--event",
        "push",
        "--ref",
        "main",
        "--approve",
        "production",
    ]);
    assert_eq!(
        results(&v)[4],
        ("deploy-prod".to_string(), "success".to_string()),
        "{err}"
    );
}

#[test]
fn seed_pipeline_push_to_develop_tests_but_does_not_build_or_deploy() {
    let (code, v, err) = plan(&["--event", "push", "--ref", "develop"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        results(&v),
        pairs(&[
            ("test", "success"),
            ("security-scan", "success"),
            ("build-and-push", "skipped"),
            ("deploy-dev", "skipped"),
            ("deploy-prod", "skipped"),
        ])
    );
}

#[test]
fn seed_pipeline_pull_request_tests_but_does_not_build_or_deploy() {
    let (code, v, err) = plan(&[
        "--event",
        "pull_request",
        "--ref",
        "feature/better-model",
        "--base",
        "main",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v[0]["git_ref"], "refs/heads/feature/better-model");
    assert_eq!(
        results(&v),
        pairs(&[
            ("test", "success"),
            ("security-scan", "success"),
            ("build-and-push", "skipped"),
            ("deploy-dev", "skipped"),
            ("deploy-prod", "skipped"),
        ])
    );
}

#[test]
fn seed_pipeline_ignores_other_branches_and_bases() {
    let (code, v, err) = plan(&["--event", "push", "--ref", "feature/x"]);
    assert_eq!((code, v.clone()), (0, Value::Null), "{err}");
    assert!(
        err.contains("no workflow runs for push on refs/heads/feature/x"),
        "{err}"
    );
    let (_, v, err) = plan(&[
        "--event",
        "pull_request",
        "--ref",
        "feature/x",
        "--base",
        "develop",
    ]);
    assert_eq!(v, Value::Null, "{err}");
}

#[test]
fn runs_and_logs_read_records_back() {
    let tmp = repo_with(
        "on: push\njobs:\n  hello:\n    runs-on: x\n    steps:\n      - run: echo hello-from-the-log\n",
    );
    let home = tmp.path().join("home");
    let st = bin()
        .args(["run", "-C"])
        .arg(tmp.path().join("repo"))
        .env("LAUNCHWAY_HOME", &home)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let runs = bin()
        .args(["runs", "--json"])
        .env("LAUNCHWAY_HOME", &home)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(v[0]["status"], "success");
    let table = bin()
        .args(["runs"])
        .env("LAUNCHWAY_HOME", &home)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("success"));
    let logs = bin()
        .args(["logs", "1", "hello"])
        .env("LAUNCHWAY_HOME", &home)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains("hello-from-the-log"), "{text}");
    let missing = bin()
        .args(["logs", "9"])
        .env("LAUNCHWAY_HOME", &home)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    // With a server in the environment, `--local` still reads this machine's.
    for args in [
        &["runs", "--local", "--json"][..],
        &["logs", "1", "--local"],
    ] {
        let out = bin()
            .args(args)
            .env("LAUNCHWAY_HOME", &home)
            .env("LAUNCHWAY_SERVER", "http://127.0.0.1:9")
            .env("LAUNCHWAY_TOKEN", "lwt_x")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("success") || text.contains("hello-from-the-log"),
            "{text}"
        );
    }
}

#[test]
fn workflow_errors_stop_the_run_with_a_located_message() {
    let tmp = repo_with(
        "on: push\njobs:\n  a:\n    runs-on: x\n    needs: ghost\n    steps: [{run: echo}]\n",
    );
    let out = bin()
        .args(["run", "-C"])
        .arg(tmp.path().join("repo"))
        .env("LAUNCHWAY_HOME", tmp.path().join("h"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(".github/workflows/ci.yml:5:12"), "{err}");
    assert!(err.contains("needs 'ghost', which does not exist"), "{err}");
}

fn lint_fixture(name: &str) -> (i32, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint");
    let out = bin()
        .current_dir(&dir)
        .args(["lint", name])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn lint_reports_every_problem_with_source_and_hint() {
    let (code, out) = lint_fixture("broken.yml");
    assert_eq!(code, 1);
    insta::assert_snapshot!(out);
}

#[test]
fn lint_accepts_a_clean_workflow() {
    let (code, out) = lint_fixture("clean.yml");
    assert_eq!(code, 0, "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn lint_json_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint");
    let out = bin()
        .current_dir(&dir)
        .args(["lint", "--json", "broken.yml"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &v[0];
    assert_eq!(first["file"], "broken.yml");
    assert!(first["line"].as_u64().unwrap() > 0);
    assert!(v.as_array().unwrap().iter().any(|d| d["code"] == "cycle"));
}

/// `lint --format sarif` (issue 16): one result per diagnostic, its code
/// as the rule, its position as the region, for code scanning; the same
/// diagnostics as `--format json`.
#[test]
fn lint_sarif_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint");
    let run = |args: &[&str]| {
        bin()
            .current_dir(&dir)
            .arg("lint")
            .args(args)
            .arg("broken.yml")
            .output()
            .unwrap()
    };
    let sarif: Value = serde_json::from_slice(&run(&["--format", "sarif"]).stdout).unwrap();
    let json: Value = serde_json::from_slice(&run(&["--format", "json"]).stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let diags = json.as_array().unwrap();
    assert_eq!(results.len(), diags.len());
    for (r, d) in results.iter().zip(diags) {
        assert_eq!(r["ruleId"], d["code"]);
        assert_eq!(r["level"], d["severity"]);
        let region = &r["locations"][0]["physicalLocation"]["region"];
        assert_eq!(region["startLine"], d["line"]);
        assert_eq!(region["startColumn"], d["column"]);
        let rule =
            &sarif["runs"][0]["tool"]["driver"]["rules"][r["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], r["ruleId"]);
    }
    // --json is --format json; naming both is refused.
    assert_eq!(run(&["--json", "--format", "sarif"]).status.code(), Some(2));
}

fn spawn_run(repo: &Path, home: &Path) -> std::process::Child {
    bin()
        .args(["run", "--json", "--kill-grace", "0.2", "-C"])
        .arg(repo)
        .env("LAUNCHWAY_HOME", home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(path: &Path, text: &str) {
    for _ in 0..100 {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(text)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never contained {text}", path.display());
}

#[test]
fn workflow_concurrency_queues_runs_across_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let order = tmp.path().join("order.txt");
    let wf = format!(
        "on: push\nconcurrency: deploy-${{{{ github.ref }}}}\njobs:\n  d:\n    runs-on: x\n    steps:\n      - run: |\n          echo start-${{{{ github.run_id }}}} >> {0}\n          sleep 1\n          echo end-${{{{ github.run_id }}}} >> {0}\n",
        order.display()
    );
    let t = repo_with(&wf);
    let repo = t.path().join("repo");
    let home = tmp.path().join("home");
    let a = spawn_run(&repo, &home);
    wait_for(&order, "start-1");
    let b = spawn_run(&repo, &home);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    assert!(
        String::from_utf8_lossy(&b.stderr)
            .contains("waiting for concurrency group 'deploy-refs/heads/main'")
    );
    assert_eq!(
        std::fs::read_to_string(&order).unwrap(),
        "start-1\nend-1\nstart-2\nend-2\n"
    );
}

#[test]
fn workflow_concurrency_cancel_in_progress_interrupts_the_older_run() {
    let tmp = tempfile::tempdir().unwrap();
    let order = tmp.path().join("order.txt");
    let wf = format!(
        "on: push\nconcurrency: {{group: deploy, cancel-in-progress: true}}\njobs:\n  d:\n    runs-on: x\n    steps:\n      - run: |\n          echo start-${{{{ github.run_id }}}} >> {0}\n          sleep 1.5\n          echo end-${{{{ github.run_id }}}} >> {0}\n",
        order.display()
    );
    let t = repo_with(&wf);
    let repo = t.path().join("repo");
    let home = tmp.path().join("home");
    let a = spawn_run(&repo, &home);
    wait_for(&order, "start-1");
    let b = spawn_run(&repo, &home);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ra: Value = serde_json::from_slice(&a.stdout).unwrap();
    let rb: Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(
        ra[0]["status"],
        "cancelled",
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(
        rb[0]["status"],
        "success",
        "{}",
        String::from_utf8_lossy(&b.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&order).unwrap(),
        "start-1\nstart-2\nend-2\n"
    );
}

#[test]
fn job_concurrency_groups_span_processes_and_cancel_only_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    let order = tmp.path().join("order.txt");
    let wf = format!(
        "on: push\njobs:\n  deploy:\n    runs-on: x\n    concurrency: {{group: prod, cancel-in-progress: true}}\n    steps:\n      - run: |\n          echo deploy-start-${{{{ github.run_id }}}} >> {0}\n          sleep 2\n          echo deploy-end-${{{{ github.run_id }}}} >> {0}\n  build:\n    runs-on: x\n    steps:\n      - run: sleep 1.5; echo build-end-${{{{ github.run_id }}}} >> {0}\n",
        order.display()
    );
    let t = repo_with(&wf);
    let repo = t.path().join("repo");
    let home = tmp.path().join("home");
    let a = spawn_run(&repo, &home);
    wait_for(&order, "deploy-start-1");
    let b = spawn_run(&repo, &home);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ra: Value = serde_json::from_slice(&a.stdout).unwrap();
    let rb: Value = serde_json::from_slice(&b.stdout).unwrap();
    let result = |r: &Value, job: &str| {
        r[0]["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == job)
            .map(|j| j["result"].as_str().unwrap().to_string())
            .unwrap()
    };
    // Only the job in the group was cancelled; the older run's other job finished.
    assert_eq!(result(&ra, "deploy"), "cancelled", "{ra:#}");
    assert_eq!(result(&ra, "build"), "success");
    assert_eq!(result(&rb, "deploy"), "success", "{rb:#}");
    let text = std::fs::read_to_string(&order).unwrap();
    assert!(text.contains("build-end-1"), "{text}");
    assert!(!text.contains("deploy-end-1"), "{text}");
    let second = text.find("deploy-start-2").unwrap();
    assert!(text.find("deploy-start-1").unwrap() < second);
    assert!(text.contains("deploy-end-2"));
}

#[test]
fn workflow_flag_picks_one_file_and_secrets_file_feeds_secrets() {
    let tmp = repo_with(
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo \"from ci.yml $TOKEN\"\n        env: {TOKEN: \"${{ secrets.TOKEN }}\"}\n",
    );
    let repo = tmp.path().join("repo");
    std::fs::write(
        repo.join(".github/workflows/other.yml"),
        "on: push\njobs:\n  b:\n    runs-on: x\n    steps: [{run: echo other}]\n",
    )
    .unwrap();
    commit_all(&repo);
    let env = tmp.path().join("secrets.env");
    std::fs::write(&env, "TOKEN=from-the-file\n").unwrap();
    let out = bin()
        .args([
            "run",
            "--json",
            "-W",
            ".github/workflows/ci.yml",
            "--secrets-file",
        ])
        .arg(&env)
        .arg("-C")
        .arg(&repo)
        .env("LAUNCHWAY_HOME", tmp.path().join("home"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "only ci.yml ran");
    assert_eq!(v[0]["jobs"][0]["key"], "a");
    let log = step_log(
        &tmp.path().join("home/runs/1"),
        &v[0]["jobs"][0]["steps"][0],
    );
    assert!(log.contains("from ci.yml ***"), "{log}");
    assert!(!log.contains("from-the-file"));
}

fn help(args: &[&str]) -> String {
    let mut cmd = bin();
    for v in [
        "LAUNCHWAY_HOME",
        "LAUNCHWAY_SERVER",
        "LAUNCHWAY_TOKEN",
        "LAUNCHWAY_AGENT_TOKEN",
        "LAUNCHWAY_DATABASE",
    ] {
        cmd.env_remove(v);
    }
    let out = cmd.args(args).arg("--help").output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn agent_help() {
    insta::assert_snapshot!(help(&["agent"]));
}

#[test]
fn agents_help() {
    insta::assert_snapshot!(help(&["agents"]));
}

#[test]
fn serve_help_groups_the_agent_options() {
    let text = help(&["serve"]);
    let agents = text.split("Agents:").nth(1).expect("an Agents heading");
    insta::assert_snapshot!(agents.trim_end());
}

/// `launchway … | head`: a reader that stops early ends the output
/// quietly (exit 141, as a shell expects), never with a panic message.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    // The workspace's SBOM: far more than a pipe holds.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut child = bin()
        .arg("sbom")
        .arg(&root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is read.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}

/// A step that fails under `continue-on-error` shows as failed in the run's
/// output (GitHub marks it red too) while the job succeeds (issue 16.12).
#[test]
fn a_step_that_failed_under_continue_on_error_shows_failed() {
    let repo = repo_with(
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: exit 1\n        continue-on-error: true\n      - run: echo after\n",
    );
    let home = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["run", "-C"])
        .arg(repo.path().join("repo"))
        .env("LAUNCHWAY_HOME", home.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("✗ Run exit 1 (continue-on-error)")),
        "{err}"
    );
    assert!(err.lines().any(|l| l.contains("✓ Run echo after")), "{err}");
}

/// Issue 16.12: a composite action's inner steps and the step itself are
/// each printed once, the step under its own name when it ends.
#[test]
fn a_composite_step_is_printed_once_under_its_own_name() {
    let dir = repo_with(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - uses: ./act\n      - run: echo after\n",
    );
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("act")).unwrap();
    std::fs::write(
        repo.join("act/action.yml"),
        "name: c\nruns:\n  using: composite\n  steps:\n    - run: echo one\n      shell: bash\n    - name: second inner\n      run: echo two\n      shell: bash\n",
    )
    .unwrap();
    common::git(&repo, &["add", "-A"]);
    common::git(&repo, &["commit", "-qm", "action"]);
    let home = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("run")
        .arg("-C")
        .arg(&repo)
        .env("LAUNCHWAY_HOME", home.path())
        .output()
        .unwrap();
    // The progress lines go to standard error.
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let steps: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("[a]   "))
        .map(|l| {
            l.trim_start_matches("[a]   ")
                .rsplit_once(" (")
                .map_or(l, |x| x.0)
        })
        .collect();
    assert_eq!(
        steps,
        [
            "✓ Run actions/checkout@v4",
            "✓ ./act / Run echo one",
            "✓ ./act / second inner",
            "✓ Run ./act",
            "✓ Run echo after"
        ],
        "{text}"
    );
}

/// The server options are global in the help, but a command that never
/// talks to a server refuses them on its command line (an ambient
/// LAUNCHWAY_SERVER is fine).
#[test]
fn server_options_are_refused_where_they_mean_nothing() {
    for (args, flag) in [
        (&["run", "--server", "http://127.0.0.1:9"][..], "--server"),
        (&["lint", "--token", "lwt_x"][..], "--token"),
        (&["scan", "--ca-file", "/dev/null", "."][..], "--ca-file"),
    ] {
        let out = bin()
            .args(args)
            .env_remove("LAUNCHWAY_SERVER")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "{flag} has no meaning for `launchway {}`",
                args[0]
            )),
            "{err}"
        );
    }
    let dir = repo_with("on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: 'true'}]\n");
    let out = bin()
        .args(["lint"])
        .current_dir(dir.path().join("repo"))
        .env("LAUNCHWAY_SERVER", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The launcher's own command line is refused, not guessed at, when its
/// arguments do not fit one of its two shapes (a job's, a spare's).
#[test]
fn sandbox_exec_refuses_arguments_it_cannot_use() {
    for (args, says) in [
        (
            &["--deny", "/nonexistent"][..],
            "one of --job-dir and --standby",
        ),
        (
            &["--deny", "/nonexistent", "--standby", "--job-dir", "/x"][..],
            "one of --job-dir and --standby",
        ),
        (
            &["--deny", "/nonexistent", "--standby", "--track", "a-1"][..],
            "--track goes with --job-dir",
        ),
        (&["--deny", "/nonexistent", "--bogus"][..], "usage:"),
    ] {
        let out = bin()
            .arg("sandbox-exec")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
