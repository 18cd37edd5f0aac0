//! Conformance tests written from GitHub's documentation: each fixture under
//! `tests/fixtures/conformance/<name>/` is a repository with workflows and an
//! `expect.json` giving the exact job results, outputs, step conclusions,
//! log lines and annotations a run must produce.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{commit_all, step_log};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else if e.file_name() != "expect.json" {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn logs_of(home: &Path, run: u64, job: &Value) -> String {
    let dir = home.join("runs").join(run.to_string());
    job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| step_log(&dir, s))
        .collect()
}

fn check(name: &str) {
    let dir = fixtures().join(name);
    let expect: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_dir(&dir, &repo);
    commit_all(&repo);
    let home = tmp.path().join("home");
    for (i, run) in expect["runs"].as_array().unwrap().iter().enumerate() {
        let args: Vec<String> = run["args"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        let out = Command::new(env!("CARGO_BIN_EXE_launchway"))
            .args(["run", "--json", "-C"])
            .arg(&repo)
            .args(&args)
            .env("LAUNCHWAY_HOME", &home)
            .env_remove("GITHUB_ACTIONS")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want_exit = run["exit"].as_i64().unwrap_or(0);
        assert_eq!(
            i64::from(out.status.code().unwrap_or(-1)),
            want_exit,
            "{name} run {i}: exit code\nstderr:\n{stderr}"
        );
        if let Some(s) = run["stderr"].as_array() {
            for want in s {
                assert!(
                    stderr.contains(want.as_str().unwrap()),
                    "{name} run {i}: stderr lacks {want}\n{stderr}"
                );
            }
        }
        if run.get("status").is_none() {
            continue;
        }
        let records: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{name}: bad JSON ({e}): {}\n{stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        let rec = &records[0];
        let id = rec["id"].as_u64().unwrap();
        assert_eq!(
            rec["status"], run["status"],
            "{name} run {i}: status\n{stderr}"
        );
        let jobs = rec["jobs"].as_array().unwrap();
        let got: serde_json::Map<String, Value> = jobs
            .iter()
            .map(|j| (j["key"].as_str().unwrap().to_string(), j["result"].clone()))
            .collect();
        assert_eq!(
            Value::Object(got),
            run["jobs"],
            "{name} run {i}: job results\n{stderr}"
        );
        let job = |key: &str| {
            jobs.iter()
                .find(|j| j["key"] == key)
                .unwrap_or_else(|| panic!("{name}: no job {key}"))
        };
        if let Some(o) = run["outputs"].as_object() {
            for (k, want) in o {
                assert_eq!(&job(k)["outputs"], want, "{name} run {i}: outputs of {k}");
            }
        }
        if let Some(o) = run["steps"].as_object() {
            for (k, want) in o {
                let got: Vec<Value> = job(k)["steps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["conclusion"].clone())
                    .collect();
                assert_eq!(
                    &Value::Array(got),
                    want,
                    "{name} run {i}: step conclusions of {k}"
                );
            }
        }
        if let Some(o) = run["outcomes"].as_object() {
            for (k, want) in o {
                let got: Vec<Value> = job(k)["steps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["outcome"].clone())
                    .collect();
                assert_eq!(
                    &Value::Array(got),
                    want,
                    "{name} run {i}: step outcomes of {k}"
                );
            }
        }
        if let Some(o) = run["logs"].as_object() {
            for (k, want) in o {
                let text = logs_of(&home, id, job(k));
                let mut at = 0;
                for line in want.as_array().unwrap() {
                    let line = line.as_str().unwrap();
                    match text[at..].find(line) {
                        Some(p) => at += p + line.len(),
                        None => panic!(
                            "{name} run {i}: job {k} log lacks (in order) {line:?}\n--- log ---\n{text}"
                        ),
                    }
                }
            }
        }
        if let Some(o) = run["summary"].as_object() {
            for (k, want) in o {
                let s = job(k)["summary"].as_str().unwrap_or("");
                assert!(
                    s.contains(want.as_str().unwrap()),
                    "{name}: summary of {k} is {s:?}"
                );
            }
        }
        if let Some(a) = run["annotations"].as_array() {
            let all = rec["annotations"].to_string();
            for want in a {
                assert!(
                    all.contains(want.as_str().unwrap()),
                    "{name}: annotations lack {want}: {all}"
                );
            }
        }
        if let Some(a) = run["absent"].as_array() {
            let mut everything = rec.to_string();
            for j in jobs {
                everything.push_str(&logs_of(&home, id, j));
            }
            everything.push_str(&stderr);
            for s in a {
                assert!(
                    !everything.contains(s.as_str().unwrap()),
                    "{name}: {s} leaked into the record or logs"
                );
            }
        }
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(&stringify!($name).replace('_', "-"));
            }
        )*
    };
}

conformance!(
    dag_needs,
    skip_propagation,
    step_status_functions,
    continue_on_error,
    job_continue_on_error,
    step_timeout,
    job_timeout,
    env_precedence,
    shells,
    runner_files,
    workflow_commands,
    secret_masking,
    matrix_include_exclude,
    matrix_fail_fast,
    matrix_outputs,
    concurrency_groups,
    push_filters,
    pull_request_filters,
    dispatch_inputs,
    composite_action,
    reusable_workflow,
    artifacts,
    cache,
    hash_files,
    environment_approval,
    job_filter,
    expressions_in_workflow,
    remote_action_error,
    node_action,
    security_actions,
    invalid_workflow_isolated,
    yaml_flow_dedent,
    post_step_failure,
    schema_2026,
    defaults_expressions,
    unsecure_commands,
    composite_details,
    template_keys,
    event_payload,
    parallel_steps,
);
