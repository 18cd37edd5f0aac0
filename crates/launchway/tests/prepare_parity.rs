//! One run preparation: the same dispatch cases through `launchway run` and
//! through `launchway serve` give the same answers — inputs checked
//! (`choice`, `boolean`, `required`, unknown names) before anything runs or
//! is queued, short refs that name a tag resolved as tags, and
//! `ACTIONS_STEP_DEBUG` turning on `::debug::` lines.

#![allow(clippy::unwrap_used)]

mod common;
use common::server::{get, start};
use common::{bin, commit_all, git};
use std::path::Path;
use std::time::{Duration, Instant};

fn workflow(marker: &str) -> String {
    format!(
        r#"on:
  workflow_dispatch:
    inputs:
      level:
        type: choice
        options: [info, warn]
        default: info
      dry:
        type: boolean
        default: false
      who:
        required: true
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "{marker} ref=${{{{ github.ref }}}} level=${{{{ inputs.level }}}} who=${{{{ inputs.who }}}}"
          echo "::debug::debug-line-$((40+2))"
"#
    )
}

/// A repository whose tag `v1` holds an older workflow than `main`.
fn repo(dir: &Path) {
    std::fs::create_dir_all(dir.join(".github/workflows")).unwrap();
    std::fs::write(dir.join(".github/workflows/d.yml"), workflow("at-v1")).unwrap();
    commit_all(dir);
    git(dir, &["tag", "v1"]);
    std::fs::write(dir.join(".github/workflows/d.yml"), workflow("at-main")).unwrap();
    git(dir, &["commit", "-qam", "main moves on"]);
}

/// The cases: arguments, and what must be true of the outcome.
const CASES: &[(&[&str], Option<&str>, &[&str])] = &[
    // (extra arguments, refusal message or None, lines the log must hold)
    (
        &["--input", "who=ana"],
        None,
        &["at-main ref=refs/heads/main level=info who=ana"],
    ),
    (
        &["--input", "who=ana", "--ref", "v1"],
        None,
        // `launchway run` runs the checked-out commit as if pushed to the
        // ref (as act does); the server runs the tag's commit.
        &["ref=refs/tags/v1 level=info who=ana"],
    ),
    (
        &["--input", "who=ana", "--input", "level=loud"],
        Some("input 'level' must be one of info, warn, got 'loud'"),
        &[],
    ),
    (
        &["--input", "who=ana", "--input", "dry=yes"],
        Some("input 'dry' must be true or false, got 'yes'"),
        &[],
    ),
    (&[], Some("input 'who' is required"), &[]),
    (
        &["--input", "who=ana", "--input", "nope=1"],
        Some("unknown input 'nope'"),
        &[],
    ),
];

fn local(repo: &Path, home: &Path, extra: &[&str], debug: bool) -> (bool, String) {
    let mut c = bin();
    c.args(["run", "-v", "-e", "workflow_dispatch", "-C"])
        .arg(repo)
        .args(extra)
        .env("LAUNCHWAY_HOME", home);
    if debug {
        c.args(["--var", "ACTIONS_STEP_DEBUG=true"]);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn cli(base: &str, token: &str, args: &[&str]) -> (bool, String) {
    let out = bin()
        .args(args)
        .env("LAUNCHWAY_SERVER", base)
        .env("LAUNCHWAY_TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Dispatches through the server; the run's logs once it ended.
fn remote(base: &str, token: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["dispatch", "parity", ".github/workflows/d.yml"];
    args.extend(extra);
    let (ok, out) = cli(base, token, &args);
    if !ok {
        return (false, out);
    }
    let id: i64 = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    let start = Instant::now();
    loop {
        let (_, body) = get(&format!("{base}/api/runs/{id}"), Some(token));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let status = v["status"].as_str().unwrap_or("").to_string();
        if !matches!(status.as_str(), "queued" | "running") {
            let (_, logs) = cli(base, token, &["logs", &id.to_string()]);
            return (status == "success", format!("{logs}\n{body}"));
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "run {id} never ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dispatch_cases_behave_the_same_locally_and_on_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    repo(&dir);
    let home = tmp.path().join("home");
    let (_server, base, token) = start(&tmp.path().join("data"));
    let token = token.unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "parity", dir.to_str().unwrap()],
    );
    assert!(ok, "{out}");
    let runs_before = |base: &str| {
        let (_, body) = get(&format!("{base}/api/runs"), Some(&token));
        serde_json::from_str::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .map_or(0, Vec::len)
    };
    for (extra, refusal, lines) in CASES {
        let queued = runs_before(&base);
        for (path, (ok, out)) in [
            ("launchway run", local(&dir, &home, extra, false)),
            ("the server", remote(&base, &token, extra)),
        ] {
            match refusal {
                Some(msg) => {
                    assert!(!ok, "{path} accepted {extra:?}: {out}");
                    assert!(out.contains(msg), "{path} {extra:?}: {out}");
                }
                None => {
                    assert!(ok, "{path} {extra:?}: {out}");
                    for l in *lines {
                        assert!(out.contains(l), "{path} {extra:?}: no '{l}' in {out}");
                    }
                    assert!(!out.contains("debug-line-42"), "{path}: {out}");
                }
            }
        }
        if refusal.is_some() {
            assert_eq!(runs_before(&base), queued, "a refused dispatch was queued");
        }
    }
    // ACTIONS_STEP_DEBUG as a variable shows ::debug:: lines on both paths.
    let (ok, out) = local(&dir, &home, &["--input", "who=ana"], true);
    assert!(ok && out.contains("debug-line-42"), "{out}");
    let (ok, out) = cli(
        &base,
        &token,
        &["var", "set", "parity", "ACTIONS_STEP_DEBUG", "true"],
    );
    assert!(ok, "{out}");
    let (ok, out) = remote(&base, &token, &["--input", "who=ana"]);
    assert!(ok && out.contains("debug-line-42"), "{out}");
    let (ok, out) = remote(&base, &token, &["--input", "who=ana", "--ref", "v1"]);
    assert!(ok && out.contains("at-v1 ref=refs/tags/v1"), "{out}");
}
