//! Masking as strong as GitHub's runner: a step writes a secret in every
//! encoding the runner masks — base64 at each offset (Basic auth's
//! `user:secret` among them), URL-safe base64, JSON-escaped, URI-escaped,
//! XML-escaped, quoted — to its log, its step summary, an annotation's
//! message, title and file, and a job output handed to the next job.
//! None of the forms reaches the record, a log or any file, with
//! `launchway run` and through a server's agent (and its API).

#![allow(clippy::unwrap_used)]

mod common;
use common::server::{get, start_with_env};
use common::{bin, commit_all};
use std::path::Path;
use std::time::{Duration, Instant};

const SECRET: &str = "Pa55\"w/o+rd&'<x>-9137~end";

/// The encoder a step runs (committed as `forms.py`), and the test too:
/// one script, so both compute the same forms (Python's standard library).
const FORMS_PY: &str = r#"import base64, json, sys, urllib.parse
from xml.sax.saxutils import escape
s = sys.argv[1]
b = s.encode()
for name, v in [
    ("b64", base64.b64encode(b).decode()),
    ("b64-basic", base64.b64encode(b"user:" + b).decode()),
    ("b64-offset2", base64.b64encode(b"ab" + b).decode()),
    ("b64url", base64.urlsafe_b64encode(b).decode()),
    ("json", json.dumps(s)[1:-1]),
    ("uri", urllib.parse.quote(s, safe="")),
    ("xml", escape(s, {'"': "&quot;", "'": "&apos;"})),
    ("cmdline", s.replace('"', '\\"')),
]:
    print(name + "\t" + v)
"#;

/// The encodings by name.
fn forms() -> Vec<(String, String)> {
    let script = FORMS_PY;
    let out = std::process::Command::new("python3")
        .args(["-c", script, SECRET])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The part of an encoded form that must not survive: the base64 forms
/// carry bytes of their prefix at the edges, so their middle is checked.
fn core(name: &str, value: &str) -> String {
    if name.starts_with("b64") {
        value[4..value.len() - 4].to_string()
    } else {
        value.to_string()
    }
}

const WORKFLOW: &str = r#"on: [push, workflow_dispatch]
jobs:
  emit:
    runs-on: ubuntu-latest
    outputs:
      o: ${{ steps.s.outputs.basic }}
    steps:
      - uses: actions/checkout@v4
      - id: s
        env:
          S: ${{ secrets.PLANTED }}
        run: |
          python3 forms.py "$S" > forms.txt
          while IFS=$'\t' read -r name value; do
            echo "log $name=$value"
            echo "summary $name=$value" >> "$GITHUB_STEP_SUMMARY"
            echo "::notice::notice $name=$value"
          done < forms.txt
          b64=$(grep '^b64-basic' forms.txt | cut -f2)
          echo "::warning file=$b64,title=$b64::annotated"
          echo "basic=$b64" >> "$GITHUB_OUTPUT"
          echo "emitted $(wc -l < forms.txt) forms"
  after:
    needs: emit
    runs-on: ubuntu-latest
    steps:
      - run: echo "handed over [${{ needs.emit.outputs.o }}]"
"#;

fn repo(dir: &Path) {
    std::fs::create_dir_all(dir.join(".github/workflows")).unwrap();
    std::fs::write(dir.join(".github/workflows/ci.yml"), WORKFLOW).unwrap();
    std::fs::write(dir.join("forms.py"), FORMS_PY).unwrap();
    commit_all(dir);
}

fn assert_masked(what: &str, text: &str) {
    assert!(
        text.contains("emitted 8 forms"),
        "{what}: the step did not run:\n{text}"
    );
    for (name, value) in forms() {
        let c = core(&name, &value);
        assert!(
            !text.contains(&c),
            "{what}: the {name} form ({value}) got through:\n{text}"
        );
    }
    assert!(
        text.contains("handed over []"),
        "{what}: the output was handed over:\n{text}"
    );
}

#[test]
fn every_encoding_of_a_secret_is_masked_in_a_local_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    repo(&dir);
    let home = tmp.path().join("home");
    let out = bin()
        .args(["run", "--json", "-C"])
        .arg(&dir)
        .args(["-s", &format!("PLANTED={SECRET}")])
        .env("LAUNCHWAY_HOME", &home)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let mut logs = String::new();
    for e in std::fs::read_dir(home.join("runs/1/logs")).unwrap() {
        logs.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    assert_masked("the logs", &logs);
    // The record: summaries, annotations (message, title, file), outputs.
    assert!(stdout.contains("summary b64="), "{stdout}");
    for (name, value) in forms() {
        let c = core(&name, &value);
        assert!(
            !stdout.contains(&c),
            "record: the {name} form got through:\n{stdout}"
        );
        assert!(
            !stderr.contains(&c),
            "terminal: the {name} form got through"
        );
        let hits = common::files_holding(&home, &c, &["forms.txt"]);
        assert!(hits.is_empty(), "the {name} form is in {hits:?}");
    }
    assert!(
        stdout.contains("Skip output 'o' since it may contain secret"),
        "{stdout}"
    );
}

#[test]
fn every_encoding_of_a_secret_is_masked_through_a_server_on_sqlite() {
    masked_through_a_server(None);
}

#[test]
fn every_encoding_of_a_secret_is_masked_through_a_server_on_postgresql() {
    let Ok(url) = std::env::var("LAUNCHWAY_TEST_POSTGRES") else {
        eprintln!("LAUNCHWAY_TEST_POSTGRES is not set: skipped (CI sets it)");
        return;
    };
    masked_through_a_server(Some(common::server::fresh_postgres(&url)));
}

fn masked_through_a_server(database: Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    repo(&dir);
    let data = tmp.path().join("data");
    let env: Vec<(&str, &str)> = database
        .iter()
        .map(|d| ("LAUNCHWAY_DATABASE", d.as_str()))
        .collect();
    let (_server, base, token) = start_with_env(&data, &["--poll-seconds", "0"], &env);
    let token = token.unwrap();
    let cli = |args: &[&str], stdin: Option<&str>| {
        use std::io::Write;
        let mut child = bin()
            .args(args)
            .env("LAUNCHWAY_SERVER", &base)
            .env("LAUNCHWAY_TOKEN", &token)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    cli(&["repo", "add", "masked", dir.to_str().unwrap()], None);
    cli(&["secret", "set", "masked", "PLANTED"], Some(SECRET));
    let out = cli(&["dispatch", "masked", ".github/workflows/ci.yml"], None);
    let id: i64 = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    let start = Instant::now();
    let record = loop {
        let (_, body) = get(&format!("{base}/api/runs/{id}"), Some(&token));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if !matches!(v["status"].as_str(), Some("queued" | "running")) {
            break body;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (_, logs) = get(&format!("{base}/api/runs/{id}/logs"), Some(&token));
    assert_masked("the server's logs", &logs);
    assert!(record.contains("summary b64="), "{record}");
    for (name, value) in forms() {
        let c = core(&name, &value);
        assert!(
            !record.contains(&c),
            "API: the {name} form got through:\n{record}"
        );
        let hits = common::files_holding(&data, &c, &["forms.txt"]);
        assert!(hits.is_empty(), "the {name} form is in {hits:?}");
    }
}
