//! `container:` and `services:` with a real container engine (podman or
//! docker). No registry is reachable, so the image is built here: a
//! busybox root file system imported with `podman import`, whose default
//! command serves `/www` over HTTP on port 8080.
//!
//! `.ci/run` installs podman and sets `LAUNCHWAY_TEST_CONTAINERS=1`, which
//! makes a missing engine a failure; elsewhere these tests say why they
//! skip.

#![allow(clippy::unwrap_used)]

mod common;
use common::{bin, commit_all, step_log};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

const IMAGE: &str = "localhost/launchway-test:busybox";

/// The engine to use, with the test image imported; `None` skips.
fn engine() -> Option<&'static str> {
    static READY: OnceLock<Option<&'static str>> = OnceLock::new();
    *READY.get_or_init(|| {
        let required = std::env::var("LAUNCHWAY_TEST_CONTAINERS").is_ok_and(|v| v == "1");
        let works = |e: &str| {
            Command::new(e)
                .arg("info")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let Some(engine) = ["podman", "docker"].into_iter().find(|e| works(e)) else {
            assert!(
                !required,
                "LAUNCHWAY_TEST_CONTAINERS=1 but neither podman nor docker answers"
            );
            eprintln!("no container engine answers here: container tests skipped");
            return None;
        };
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).is_file());
        let Some(busybox) = busybox else {
            assert!(!required, "busybox (busybox-static) is not installed");
            eprintln!("busybox is not installed: container tests skipped");
            return None;
        };
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in ["bin", "tmp", "etc", "www"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::copy(busybox, r.join("bin/busybox")).unwrap();
        for applet in [
            "sh", "cat", "echo", "tail", "wget", "httpd", "sleep", "test", "env", "pwd", "ls",
            "true", "false", "printf",
        ] {
            std::os::unix::fs::symlink("busybox", r.join("bin").join(applet)).unwrap();
        }
        std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(r.join("www/index.html"), "served-by-the-service\n").unwrap();
        let tar = r.join("../rootfs.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(r)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap()
            .success();
        assert!(ok, "tar failed");
        let out = Command::new(engine)
            .args([
                "import",
                "--change",
                r#"CMD ["httpd","-f","-p","8080","-h","/www"]"#,
            ])
            .arg(&tar)
            .arg(IMAGE)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{engine} import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(engine)
    })
}

fn run(workflow: &str, extra: &[&str]) -> (tempfile::TempDir, Value, String) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(repo.join(".github/workflows/ci.yml"), workflow).unwrap();
    commit_all(&repo);
    let out = bin()
        .args(["run", "--json", "-C"])
        .arg(&repo)
        .args(extra)
        .env("LAUNCHWAY_HOME", tmp.path().join("home"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let recs: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    (tmp, recs[0].clone(), stderr)
}

fn logs(tmp: &tempfile::TempDir, job: &Value) -> Vec<(String, String)> {
    let run_dir = tmp.path().join("home/runs/1");
    job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                step_log(&run_dir, s),
            )
        })
        .collect()
}

/// Containers and networks a run left behind (by its label).
fn leftovers(engine: &str, run_label: &str) -> String {
    let ps = Command::new(engine)
        .args(["ps", "-a", "--filter"])
        .arg(format!("label=launchway.job={run_label}"))
        .args(["--format", "{{.Names}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&ps.stdout).trim().to_string()
}

#[test]
fn steps_run_in_the_job_container_and_reach_services_by_name() {
    let Some(engine) = engine() else { return };
    let (tmp, rec, stderr) = run(
        &format!(
            r#"on: push
jobs:
  in-container:
    runs-on: ubuntu-latest
    container:
      image: {IMAGE}
      env:
        FROM_CONTAINER_ENV: set-by-container-env
    services:
      web:
        image: {IMAGE}
        options: --health-cmd "wget -qO- http://127.0.0.1:8080/ >/dev/null" --health-interval 1s --health-retries 20
        ports: ["8080"]
    env:
      TOKEN: ${{{{ secrets.TOKEN }}}}
    outputs:
      where: ${{{{ steps.probe.outputs.where }}}}
    steps:
      - id: probe
        run: |
          test -x /bin/busybox && ! test -e /usr/bin/git
          echo "env=$FROM_CONTAINER_ENV token=$TOKEN shell=$0"
          echo "where=container" >> "$GITHUB_OUTPUT"
          echo "ADDED=from-github-env" >> "$GITHUB_ENV"
      - run: wget -qO- http://web:8080/
      - run: echo "added=$ADDED port=${{{{ job.services.web.ports['8080'] }}}} network=${{{{ job.container.network }}}}"
  after:
    needs: in-container
    runs-on: ubuntu-latest
    steps:
      - run: echo "got ${{{{ needs.in-container.outputs.where }}}}"
"#
        ),
        &["--secret", "TOKEN=tok-9f8e7d6c5b4a"],
    );
    assert_eq!(rec["status"], "success", "{stderr}\n{rec:#}");
    let job = &rec["jobs"][0];
    let steps = logs(&tmp, job);
    let names: Vec<&str> = steps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[0], "Initialize containers",
        "setup is its own step: {names:?}"
    );
    assert_eq!(names.last(), Some(&"Stop containers"));
    let probe = &steps[1].1;
    assert!(
        probe.contains("env=set-by-container-env token=*** shell="),
        "{probe}"
    );
    assert!(!probe.contains("tok-9f8e7d6c5b4a"), "the secret is masked");
    assert!(
        steps[2].1.contains("served-by-the-service"),
        "{}",
        steps[2].1
    );
    let ctx_line = &steps[3].1;
    assert!(
        ctx_line.contains("added=from-github-env port="),
        "{ctx_line}"
    );
    let port = ctx_line
        .split("port=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(port.parse::<u16>().is_ok(), "a host port: {ctx_line}");
    assert!(ctx_line.contains("network=lw-"), "{ctx_line}");
    let init = &steps[0].1;
    assert!(init.contains("Service 'web' is healthy."), "{init}");
    assert_eq!(job["outputs"]["where"], "container");
    let after = logs(&tmp, &rec["jobs"][1]);
    assert!(after[0].1.contains("got container"));
    assert_eq!(
        leftovers(engine, "in-container"),
        "",
        "everything is removed"
    );
}

#[test]
fn host_jobs_reach_services_on_published_ports() {
    let Some(engine) = engine() else { return };
    let (tmp, rec, stderr) = run(
        &format!(
            r#"on: push
jobs:
  host-with-service:
    runs-on: ubuntu-latest
    services:
      web:
        image: {IMAGE}
        ports: ["8080"]
    steps:
      - run: |
          python3 - <<'PY'
          import time, urllib.request
          for _ in range(50):
              try:
                  print(urllib.request.urlopen("http://127.0.0.1:${{{{ job.services.web.ports['8080'] }}}}/").read().decode())
                  break
              except OSError:
                  time.sleep(0.1)
          PY
"#
        ),
        &[],
    );
    assert_eq!(rec["status"], "success", "{stderr}\n{rec:#}");
    let steps = logs(&tmp, &rec["jobs"][0]);
    assert!(steps[1].1.contains("served-by-the-service"), "{steps:?}");
    assert_eq!(leftovers(engine, "host-with-service"), "");
}

#[test]
fn an_unhealthy_service_fails_the_job_before_any_step() {
    let Some(engine) = engine() else { return };
    let (tmp, rec, _) = run(
        &format!(
            r#"on: push
jobs:
  sick:
    runs-on: ubuntu-latest
    services:
      db:
        image: {IMAGE}
        options: --health-cmd false --health-interval 1s --health-retries 2
    steps:
      - run: echo must-not-run
      - if: always()
        run: echo must-not-run-either
"#
        ),
        &[],
    );
    assert_eq!(rec["status"], "failure");
    let job = &rec["jobs"][0];
    assert_eq!(job["result"], "failure");
    let steps = logs(&tmp, job);
    let names: Vec<&str> = steps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["Initialize containers", "Stop containers"],
        "no step runs"
    );
    assert!(
        steps[0]
            .1
            .contains("service 'db': its health check reports unhealthy"),
        "{}",
        steps[0].1
    );
    assert_eq!(leftovers(engine, "sick"), "");
}

#[test]
fn a_missing_image_is_a_clear_failure() {
    let Some(_) = engine() else { return };
    let (tmp, rec, _) = run(
        r#"on: push
jobs:
  nope:
    runs-on: ubuntu-latest
    container: localhost/launchway-test:does-not-exist
    steps:
      - run: echo must-not-run
"#,
        &[],
    );
    assert_eq!(rec["status"], "failure");
    let steps = logs(&tmp, &rec["jobs"][0]);
    assert!(
        steps[0]
            .1
            .contains("the job container (localhost/launchway-test:does-not-exist) did not start"),
        "{}",
        steps[0].1
    );
}

#[test]
fn without_an_engine_the_job_says_what_it_needs() {
    // A PATH with git and a shell but no container engine.
    let tmp = tempfile::tempdir().unwrap();
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    for tool in ["git", "sh", "bash"] {
        let found = ["/usr/bin", "/bin", "/usr/local/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.is_file());
        if let Some(p) = found {
            std::os::unix::fs::symlink(p, bin_dir.join(tool)).unwrap();
        }
    }
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(
        repo.join(".github/workflows/ci.yml"),
        "on: push\njobs:\n  c:\n    runs-on: ubuntu-latest\n    container: postgres:16\n    steps: [{run: echo x}]\n  empty-image:\n    runs-on: ubuntu-latest\n    container: ${{ '' }}\n    steps: [{run: echo on-the-host}]\n",
    )
    .unwrap();
    commit_all(&repo);
    let out = bin()
        .args(["run", "--json", "-C"])
        .arg(&repo)
        .env("LAUNCHWAY_HOME", tmp.path().join("home"))
        .env("PATH", &bin_dir)
        .output()
        .unwrap();
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &rec[0]["jobs"][0];
    assert_eq!(c["result"], "failure");
    let text = rec[0]["annotations"].to_string();
    assert!(
        text.contains("needs a container engine (docker or podman)"),
        "{text}"
    );
    // An empty image runs the job on the host, as on GitHub.
    let e = &rec[0]["jobs"][1];
    assert_eq!(e["result"], "success", "{e:#}");
}
