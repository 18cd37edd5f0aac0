//! act's own runner test suite (nektos/act `pkg/runner/runner_test.go`,
//! `TestRunEvent`), run through `launchway run` and judged by what GitHub
//! would do. Every row of act's table is here: the cases that need a
//! container image or a Docker action, or a remote action that cannot be
//! stood in for, are listed as skipped with the reason; every other case
//! must end as GitHub would end it. The test prints the table (run with
//! `--nocapture` to see it; `bench/README.md` has a copy).
//!
//! The cases are vendored under `tests/fixtures/act/` (MIT, see its
//! `LICENSE`; `vendor.sh` re-creates them from a checkout of act). Remote
//! actions the cases call are mapped in `.launchway/actions.yaml` to
//! stand-ins written here (`stand-ins/`).
//!
//! act runs its tests inside its own clone: the repository is
//! `nektos/act`, the actor `nektos/act`, and job containers have no
//! `$SHELL`. Each case's repository is set up the same way.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a case ends on GitHub.
#[derive(Clone, Copy)]
enum Github {
    /// Every job succeeds (or is skipped).
    Succeeds,
    /// These jobs fail (a matrix instance's key, or a job id).
    Fails(&'static [&'static str]),
    /// GitHub refuses the workflow; Launchway's error says this.
    Invalid(&'static str),
    /// Not run here, and why.
    Skip(&'static str),
}
use Github::*;

struct Case {
    dir: &'static str,
    event: &'static str,
    /// act's expected error ("" for none).
    act: &'static str,
    github: Github,
}

const IMAGE: &str = "needs a container image (job container or service)";
const DOCKER: &str = "a Docker container action";

const fn case(dir: &'static str, event: &'static str, act: &'static str, github: Github) -> Case {
    Case {
        dir,
        event,
        act,
        github,
    }
}

/// act's `TestRunEvent` table, in its order.
const CASES: &[Case] = &[
    case("shells/defaults", "push", "", Skip(IMAGE)),
    case("shells/pwsh", "push", "", Skip(IMAGE)),
    case("shells/bash", "push", "", Skip(IMAGE)),
    case("shells/python", "push", "", Skip(IMAGE)),
    case("shells/sh", "push", "", Skip(IMAGE)),
    case("local-action-docker-url", "push", "", Skip(DOCKER)),
    case("local-action-dockerfile", "push", "", Skip(DOCKER)),
    case(
        "local-action-via-composite-dockerfile",
        "push",
        "",
        Skip(DOCKER),
    ),
    case("local-action-js", "push", "", Succeeds),
    case("uses-composite", "push", "", Succeeds),
    case(
        "uses-composite-with-error",
        "push",
        "Job 'failing-composite-action' failed",
        Fails(&["failing-composite-action"]),
    ),
    case(
        "uses-composite-check-for-input-collision",
        "push",
        "",
        Succeeds,
    ),
    case(
        "uses-composite-check-for-input-shadowing",
        "push",
        "",
        Succeeds,
    ),
    case(
        "uses-nested-composite",
        "push",
        "",
        Skip("calls actions/setup-node@v3 to install Node 16"),
    ),
    case(
        "remote-action-composite-js-pre-with-defaults",
        "push",
        "",
        Skip("tests how act downloads a remote action"),
    ),
    case(
        "remote-action-composite-action-ref",
        "push",
        "",
        Skip("tests github.action_ref of a downloaded action"),
    ),
    case("uses-workflow", "push", "", Succeeds),
    case("uses-workflow", "pull_request", "", Succeeds),
    case("uses-docker-url", "push", "", Skip(DOCKER)),
    case("act-composite-env-test", "push", "", Succeeds),
    case("evalmatrix", "push", "", Succeeds),
    case("evalmatrixneeds", "push", "", Succeeds),
    case("evalmatrixneeds2", "push", "", Succeeds),
    case("evalmatrix-merge-map", "push", "", Succeeds),
    case("evalmatrix-merge-array", "push", "", Succeeds),
    case("issue-1195", "push", "", Succeeds),
    case("basic", "push", "", Skip(DOCKER)),
    case("fail", "push", "exit with `FAILURE`: 1", Skip(IMAGE)),
    case("runs-on", "push", "", Succeeds),
    case("checkout", "push", "", Succeeds),
    case("job-container", "push", "", Skip(IMAGE)),
    case("job-container-non-root", "push", "", Skip(IMAGE)),
    case(
        "job-container-invalid-credentials",
        "push",
        "failed to handle credentials",
        Skip(IMAGE),
    ),
    case("container-hostname", "push", "", Skip(IMAGE)),
    case("remote-action-docker", "push", "", Skip(DOCKER)),
    case("remote-action-docker-new-cache", "push", "", Skip(DOCKER)),
    case(
        "remote-action-js",
        "push",
        "",
        Skip("calls cloudposse/actions, a remote action with dependencies"),
    ),
    case("remote-action-js-node-user", "push", "", Skip(IMAGE)),
    case("matrix", "push", "", Succeeds),
    case("matrix-include-exclude", "push", "", Succeeds),
    case(
        "matrix-exitcode",
        "push",
        "Job 'test' failed",
        Fails(&["test (failure)"]),
    ),
    case("commands", "push", "", Succeeds),
    case("workdir", "push", "", Succeeds),
    case("defaults-run", "push", "", Succeeds),
    case("composite-fail-with-output", "push", "", Succeeds),
    case("issue-597", "push", "", Succeeds),
    case("issue-598", "push", "", Succeeds),
    case(
        "if-env-act",
        "push",
        "",
        Skip("tests env.ACT, which only act sets (on GitHub its second step fails)"),
    ),
    case("env-and-path", "push", "", Succeeds),
    case("environment-files", "push", "", Succeeds),
    case("GITHUB_STATE", "push", "", Succeeds),
    case("environment-files-parser-bug", "push", "", Succeeds),
    case(
        "non-existent-action",
        "push",
        "Job 'nopanic' failed",
        Fails(&["nopanic"]),
    ),
    case("outputs", "push", "", Succeeds),
    case("networking", "push", "", Succeeds),
    case("steps-context/conclusion", "push", "", Succeeds),
    case("steps-context/outcome", "push", "", Succeeds),
    case(
        "job-status-check",
        "push",
        "job 'fail' failed",
        Fails(&["fail"]),
    ),
    case(
        "if-expressions",
        "push",
        "Job 'mytest' failed",
        Fails(&["mytest"]),
    ),
    case(
        "actions-environment-and-context-tests",
        "push",
        "",
        Skip(DOCKER),
    ),
    case("uses-action-with-pre-and-post-step", "push", "", Succeeds),
    case("evalenv", "push", "", Succeeds),
    case("docker-action-custom-path", "push", "", Skip(DOCKER)),
    case("GITHUB_ENV-use-in-env-ctx", "push", "", Succeeds),
    case(
        "ensure-post-steps",
        "push",
        "Job 'second-post-step-should-fail' failed",
        Fails(&["second-post-step-should-fail"]),
    ),
    // act accepts workflow_call inputs without `type`; GitHub's schema
    // requires it, and Launchway refuses the workflow as GitHub does.
    case(
        "workflow_call_inputs",
        "workflow_call",
        "",
        Invalid("input 'required' needs a 'type'"),
    ),
    case("workflow_dispatch", "workflow_dispatch", "", Succeeds),
    case(
        "workflow_dispatch_no_inputs_mapping",
        "workflow_dispatch",
        "",
        Succeeds,
    ),
    case(
        "workflow_dispatch-scalar",
        "workflow_dispatch",
        "",
        Succeeds,
    ),
    case(
        "workflow_dispatch-scalar-composite-action",
        "workflow_dispatch",
        "",
        Succeeds,
    ),
    case("uses-workflow-defaults", "workflow_dispatch", "", Succeeds),
    case("job-needs-context-contains-result", "push", "", Succeeds),
    case("model/strategy", "push", "", Succeeds),
    case("model/container-volumes", "push", "", Skip(IMAGE)),
    case("path-handling", "push", "", Succeeds),
    case("do-not-leak-step-env-in-composite", "push", "", Succeeds),
    case("set-env-step-env-override", "push", "", Succeeds),
    case("set-env-new-env-file-per-step", "push", "", Succeeds),
    case(
        "no-panic-on-invalid-composite-action",
        "push",
        "jobs failed due to invalid action",
        Fails(&[
            "local-invalid-step",
            "local-missing-steps",
            "remote-invalid-step",
            "remote-missing-steps",
        ]),
    ),
    case(
        "stepsummary",
        "push",
        "",
        Skip("calls actions/github-script, a remote action with dependencies"),
    ),
    case("services", "push", "", Skip(IMAGE)),
    case("services-empty-image", "push", "", Succeeds),
    case("services-host-network", "push", "", Skip(IMAGE)),
    case("services-with-container", "push", "", Skip(IMAGE)),
    case(
        "mysql-service-container-with-health-check",
        "push",
        "",
        Skip(IMAGE),
    ),
    case("local-remote-action-overrides", "push", "", Succeeds),
    case("docker-action-host-env", "push", "", Skip(DOCKER)),
];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/act")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "nektos/act")
        .env("GIT_AUTHOR_EMAIL", "act@example.com")
        .env("GIT_COMMITTER_NAME", "nektos/act")
        .env("GIT_COMMITTER_EMAIL", "act@example.com")
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "git {args:?}");
}

/// A repository laid out as act's test directory (local actions are
/// `./<case>/…` and `./actions/…`), with the case's workflows in
/// `.github/workflows/`.
fn repository(root: &Path, dir: &str) -> Vec<PathBuf> {
    let data = fixture().join("testdata");
    let case_dir = data.join(dir);
    copy_dir(&case_dir, &root.join(dir));
    let mut workflows = Vec::new();
    let mut text = String::new();
    for e in std::fs::read_dir(&case_dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            text.push_str(&std::fs::read_to_string(&p).unwrap());
            workflows.push(p);
        }
    }
    // What the case calls besides its own directory.
    if text.contains("./.github/workflows/") {
        copy_dir(&data.join(".github"), &root.join(".github"));
    }
    if text.contains("./actions/") || text.contains("nektos/test-override") {
        copy_dir(&data.join("actions"), &root.join("testdata/actions"));
        copy_dir(&data.join("actions"), &root.join("actions"));
    }
    copy_dir(&fixture().join("stand-ins"), &root.join("stand-ins"));
    copy_dir(&fixture().join(".launchway"), &root.join(".launchway"));
    let wf_dir = root.join(".github/workflows");
    std::fs::create_dir_all(&wf_dir).unwrap();
    for p in &workflows {
        let name = format!("case-{}", p.file_name().unwrap().to_string_lossy());
        std::fs::copy(p, wf_dir.join(name)).unwrap();
    }
    git(root, &["init", "-q", "-b", "master"]);
    git(
        root,
        &["remote", "add", "origin", "https://github.com/nektos/act"],
    );
    git(root, &["config", "user.name", "nektos/act"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "act test case"]);
    workflows
}

/// Runs one case; `Ok` with what happened, or `Err` with why it does not
/// end as on GitHub.
fn run(c: &Case, work: &Path) -> Result<String, String> {
    let root = work.join("repo");
    let case_dir = fixture().join("testdata").join(c.dir);
    let workflows = repository(&root, c.dir);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_launchway"));
    cmd.args(["run", "--json", "-C"])
        .arg(&root)
        .args(["--event", c.event])
        .env("LAUNCHWAY_HOME", work.join("home"))
        .env_remove("GITHUB_ACTIONS")
        .env_remove("SHELL");
    // act reads only the case's own workflows: with one, the repository's
    // others (reusable ones it calls) must not start on their own.
    if let [only] = workflows.as_slice() {
        let name = format!("case-{}", only.file_name().unwrap().to_string_lossy());
        cmd.args(["-W", &format!(".github/workflows/{name}")]);
    }
    if case_dir.join("event.json").is_file() {
        cmd.arg("--event-file").arg(case_dir.join("event.json"));
    }
    if c.dir == "uses-workflow" {
        cmd.args(["--secret", "secret=keep_it_private"]);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let code = out.status.code().unwrap_or(-1);
    let tail = || stderr.lines().rev().take(25).collect::<Vec<_>>().join("\n");
    if let Invalid(msg) = c.github {
        return if code == 1 && stderr.contains(msg) {
            Ok("refused".into())
        } else {
            Err(format!(
                "exit {code}, expected the workflow refused ({msg})\n{}",
                tail()
            ))
        };
    }
    let records: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("exit {code}, no run record ({e})\n{}", tail()))?;
    let mut jobs: Vec<(String, String)> = Vec::new();
    for r in records.as_array().into_iter().flatten() {
        for j in r["jobs"].as_array().into_iter().flatten() {
            jobs.push((
                j["key"].as_str().unwrap_or("").to_string(),
                j["result"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    if jobs.is_empty() {
        return Err(format!("exit {code}: no job ran\n{}", tail()));
    }
    let failed: Vec<&str> = jobs
        .iter()
        .filter(|(_, r)| r == "failure")
        .map(|(k, _)| k.as_str())
        .collect();
    let want: &[&str] = match c.github {
        Fails(j) => j,
        _ => &[],
    };
    let mut failed_sorted = failed.clone();
    failed_sorted.sort_unstable();
    let mut want_sorted = want.to_vec();
    want_sorted.sort_unstable();
    let want_code = if want.is_empty() { 0 } else { 1 };
    if failed_sorted == want_sorted && code == want_code {
        Ok(if want.is_empty() {
            format!("{} jobs succeeded", jobs.len())
        } else {
            format!("failed: {}", failed.join(", "))
        })
    } else {
        Err(format!(
            "exit {code}; jobs {jobs:?}; expected failing {want:?}\n{}",
            tail()
        ))
    }
}

#[test]
fn act_runner_suite() {
    let results: Mutex<Vec<Option<Result<String, String>>>> =
        Mutex::new((0..CASES.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let tmp = tempfile::tempdir().unwrap();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(c) = CASES.get(i) else { break };
                    if matches!(c.github, Skip(_)) {
                        continue;
                    }
                    let work = tmp.path().join(i.to_string());
                    let r = run(c, &work);
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    let mut table = String::from(
        "| act case | event | act expects | GitHub | Launchway |\n|---|---|---|---|---|\n",
    );
    let (mut passed, mut skipped, mut failures) = (0, 0, Vec::new());
    for (c, r) in CASES.iter().zip(&results) {
        let github = match c.github {
            Succeeds => "succeeds".to_string(),
            Fails(j) => format!("fails ({})", j.join(", ")),
            Invalid(_) => "refuses the workflow".to_string(),
            Skip(_) => "—".to_string(),
        };
        let act = if c.act.is_empty() { "success" } else { c.act };
        let ours = match (c.github, r) {
            (Skip(why), _) => {
                skipped += 1;
                format!("skipped: {why}")
            }
            (_, Some(Ok(what))) => {
                passed += 1;
                format!("pass ({what})")
            }
            (_, Some(Err(e))) => {
                failures.push(format!("{} ({}): {e}", c.dir, c.event));
                "**FAIL**".to_string()
            }
            (_, None) => unreachable!("every case that is not skipped runs"),
        };
        table.push_str(&format!(
            "| {} | {} | {} | {github} | {ours} |\n",
            c.dir, c.event, act
        ));
    }
    println!("{table}");
    println!(
        "act's runner suite: {passed} pass, {} fail, {skipped} skipped of {}",
        failures.len(),
        CASES.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
