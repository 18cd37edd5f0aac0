//! Nothing secret outlives its job: after runs that pass, fail, time out
//! and are cancelled, no file under the data directory holds a secret in
//! clear, the job's temp directory (step scripts, runner command files) is
//! gone, and what the runner wrote is private (0600 files, 0700 dirs).

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{bin, commit_all};

const SECRET: &str = "pl4nted-S3cret-9137-value";

/// The secret reaches the step script, the environment, every runner file
/// and the job's outputs; `ending` decides how the job ends.
fn workflow(ending: &str) -> String {
    format!(
        r#"on: push
jobs:
  leak:
    runs-on: ubuntu-latest
    timeout-minutes: 0.05
    outputs:
      o: ${{{{ steps.s.outputs.token }}}}
    env:
      FROM_ENV: ${{{{ secrets.PLANTED }}}}
    steps:
      - id: s
        run: |
          echo "inline ${{{{ secrets.PLANTED }}}}"
          echo "token=$FROM_ENV" >> "$GITHUB_OUTPUT"
          echo "KEPT=$FROM_ENV" >> "$GITHUB_ENV"
          echo "st=$FROM_ENV" >> "$GITHUB_STATE"
          echo "summary $FROM_ENV" >> "$GITHUB_STEP_SUMMARY"
          echo "::notice title=$FROM_ENV::note $FROM_ENV"
      - run: |
          echo "second $KEPT"
          echo started > "$RUNNER_TEMP/../started"
          {ending}
      - if: always()
        run: echo "cleanup ${{{{ secrets.PLANTED }}}}"
"#
    )
}

fn assert_nothing_leaked(home: &Path) {
    let mut files = 0;
    for e in walk(home) {
        let meta = std::fs::symlink_metadata(&e).unwrap();
        if meta.is_file() {
            files += 1;
            let bytes = std::fs::read(&e).unwrap();
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "{} holds the secret in clear",
                e.display()
            );
        }
        let name = e.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            !(name == "temp" && e.parent().unwrap().parent().unwrap().ends_with("jobs")),
            "{} outlived its job",
            e.display()
        );
    }
    assert!(files > 3, "the run wrote nothing?");
    let run = home.join("runs/1");
    for p in [
        home.join("runs"),
        run.clone(),
        run.join("logs"),
        run.join("jobs/leak"),
    ] {
        let m = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o700, "{}", p.display());
    }
    for p in [
        run.join("run.json"),
        run.join("event.json"),
        run.join("logs/leak.log"),
    ] {
        let m = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o600, "{}", p.display());
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

fn run_case(ending: &str, expect: &str, interrupt: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(repo.join(".github/workflows/ci.yml"), workflow(ending)).unwrap();
    commit_all(&repo);
    let home = tmp.path().join("home");
    let child = bin()
        .args(["run", "--json", "-C"])
        .arg(&repo)
        .args(["-s", &format!("PLANTED={SECRET}")])
        .env("LAUNCHWAY_HOME", &home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if interrupt {
        let marker = home.join("runs/1/jobs/leak/started");
        for _ in 0..200 {
            if marker.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(marker.exists(), "the step never started");
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let recs: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(recs[0]["jobs"][0]["result"], expect, "{stderr}");
    assert!(!stderr.contains(SECRET));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET));
    assert_nothing_leaked(&home);
}

#[test]
fn a_job_that_passes_leaves_no_secret() {
    run_case("true", "success", false);
}

#[test]
fn a_job_that_fails_leaves_no_secret() {
    run_case("exit 3", "failure", false);
}

#[test]
fn a_job_that_times_out_leaves_no_secret() {
    run_case("sleep 30", "failure", false);
}

#[test]
fn a_cancelled_job_leaves_no_secret() {
    run_case("sleep 30", "cancelled", true);
}
