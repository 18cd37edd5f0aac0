//! Validation diagnostics: each problem is found, at the right place.

#![allow(clippy::unwrap_used)]

use launchway_workflow::{Event, Severity, load};

fn codes(src: &str) -> Vec<(String, u32, u32)> {
    load("wf.yml", src)
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.code.to_string(), d.span.start.line, d.span.start.col))
        .collect()
}

#[test]
fn clean_workflow_has_no_diagnostics() {
    let src = r#"
name: CI
on:
  push: {branches: [main, 'releases/**']}
  pull_request: {types: [opened], paths-ignore: ['docs/**']}
  workflow_dispatch:
    inputs:
      level: {type: choice, options: [a, b], default: a}
  schedule: [{cron: '30 5 * * 1-5'}]
env: {A: "${{ github.sha }}"}
jobs:
  build:
    runs-on: ubuntu-latest
    outputs: {v: "${{ steps.x.outputs.v }}"}
    strategy: {matrix: {os: [a, b]}}
    steps:
      - id: x
        run: echo "v=1" >> "$GITHUB_OUTPUT"
      - uses: actions/checkout@v4
        with: {fetch-depth: 0}
      - if: ${{ failure() && hashFiles('x') != '' }}
        run: echo ${{ matrix.os }}
  test:
    needs: build
    if: needs.build.outputs.v == '1'
    runs-on: ubuntu-latest
    steps: [{run: "echo ${{ needs.build.result }}"}]
"#;
    let l = load("wf.yml", src);
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    let wf = l.workflow.unwrap();
    assert_eq!(wf.jobs.len(), 2);
    let push = Event {
        name: "push".into(),
        git_ref: "refs/heads/releases/v1".into(),
        ..Default::default()
    };
    assert!(wf.on.matches(&push));
    let other = Event {
        name: "push".into(),
        git_ref: "refs/heads/feature".into(),
        ..Default::default()
    };
    assert!(!wf.on.matches(&other));
}

#[test]
fn finds_each_problem_where_it_is() {
    let src = "on: push
jobs:
  a:
    runs_on: x
    runs-on: x
    needs: [b, nope]
    steps:
      - id: s
        run: echo ${{ env.X == }}
      - id: s
        run: echo
  b:
    needs: a
    if: ${{ env.FOO }}
    runs-on: x
    steps:
      - uses: actions/checkout
";
    let got = codes(src);
    let want = [
        ("unknown-key", 4, 5),
        ("needs", 6, 16),
        ("expression", 9, 32),
        ("duplicate-id", 10, 13),
        ("cycle", 3, 3),
        ("context", 14, 13),
        ("uses", 17, 15),
    ];
    for (code, line, col) in want {
        assert!(
            got.contains(&(code.to_string(), line, col)),
            "missing {code} at {line}:{col}; got {got:?}"
        );
    }
}

#[test]
fn globs_crons_and_filters() {
    let src = "on:
  push:
    branches: ['?bad']
    branches-ignore: [x]
  schedule:
    - cron: '61 * * * *'
jobs:
  a: {runs-on: x, steps: [{run: echo}]}
";
    let got = codes(src);
    assert!(
        got.iter().any(|(c, l, _)| c == "glob" && *l == 3),
        "{got:?}"
    );
    assert!(got.iter().any(|(c, _, _)| c == "filter"), "{got:?}");
    assert!(
        got.iter().any(|(c, l, _)| c == "cron" && *l == 6),
        "{got:?}"
    );
}

#[test]
fn block_scalar_expression_positions() {
    let src = "on: push
jobs:
  a:
    runs-on: x
    steps:
      - run: |
          echo one
          echo ${{ secrets.X || }}
";
    let got = codes(src);
    assert_eq!(got, vec![("expression".to_string(), 8, 33)]);
}

#[test]
fn garbage_never_panics() {
    for src in [
        "",
        ":",
        "- a",
        "on: [",
        "jobs: 5",
        "on: push\njobs: {a: 5}",
        "\t",
        "a: *x",
    ] {
        let _ = load("x.yml", src);
    }
}

#[test]
fn real_world_constructs_load_without_false_errors() {
    let src = include_str!("fixtures/realworld.yml");
    let l = load("realworld.yml", src);
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    let wf = l.workflow.unwrap();
    assert_eq!(wf.jobs.len(), 6);
    // The YAML anchor expanded into a real step.
    assert_eq!(
        wf.jobs["changes"].steps[0].uses.as_ref().unwrap().value,
        "actions/checkout@v4"
    );
}

#[test]
fn containers_and_services_are_typed_and_checked() {
    let src = r#"on: push
jobs:
  db:
    runs-on: ubuntu-latest
    container:
      image: node:20
      env: {NODE_ENV: "${{ secrets.MODE }}"}
      ports: [80]
      volumes: ["/data:/data"]
      options: --cpus 1
      credentials: {username: u, password: "${{ secrets.PW }}"}
    services:
      postgres:
        image: postgres:16
        ports: ["5432:5432"]
        options: >-
          --health-cmd pg_isready
      redis: redis:7
    steps: [{run: echo}]
"#;
    let l = load("wf.yml", src);
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    let wf = l.workflow.unwrap();
    let job = &wf.jobs["db"];
    let c = job.container.as_ref().unwrap();
    assert_eq!(c.image.value, "node:20");
    assert_eq!(c.ports[0].value, "80");
    assert!(c.credentials.is_some());
    assert_eq!(
        job.services.keys().collect::<Vec<_>>(),
        ["postgres", "redis"]
    );
    assert_eq!(job.services["redis"].image.value, "redis:7");

    let bad = r#"on: push
jobs:
  j:
    runs-on: ubuntu-latest
    container:
      imag: node:20
    services:
      db:
        image: "${{ steps.x.outputs.y }}"
        ports: {a: 1}
      "bad id": {image: x}
    steps: [{run: echo}]
"#;
    assert_eq!(
        codes(bad),
        [
            ("unknown-key".to_string(), 6, 7),
            ("missing-key".to_string(), 6, 7),
            ("context".to_string(), 9, 21),
            ("wrong-type".to_string(), 10, 16),
            ("invalid-id".to_string(), 11, 7),
        ]
    );
}

/// Issue 16.11: what GitHub's parser refuses, lint refuses too.
#[test]
fn what_github_refuses_is_refused() {
    let src = r#"
on:
  workflow_call:
    outputs:
      version: {description: no value}
permissions: {contents: writ, id-token: read, nope: read}
jobs:
  Build:
    runs-on: ubuntu-latest
    steps: [{run: "true"}]
  build:
    runs-on: ubuntu-latest
    strategy: {matrix: {os: []}}
    steps: [{run: "true"}]
  call:
    runs-on: ubuntu-latest
    uses: ./.github/workflows/other.yml
"#;
    let got = codes(src);
    for want in [
        ("missing-key", 5, 16),  // the output without a value
        ("wrong-value", 6, 25),  // contents: writ
        ("wrong-value", 6, 41),  // id-token: read
        ("unknown-key", 6, 47),  // nope
        ("duplicate-id", 11, 3), // build vs Build
        ("wrong-value", 13, 29), // os: []
        ("conflict", 15, 3),     // runs-on with uses
    ] {
        assert!(
            got.contains(&(want.0.to_string(), want.1, want.2)),
            "{want:?} not in {got:?}"
        );
    }
    let ok = codes(
        "on: push\npermissions: read-all\njobs:\n  a:\n    runs-on: x\n    permissions: {id-token: write, contents: read}\n    steps: [{run: 'true'}]\n",
    );
    assert!(ok.is_empty(), "{ok:?}");
    assert!(
        !codes(
            "on: push\npermissions: read-some\njobs:\n  a: {runs-on: x, steps: [{run: 'true'}]}\n"
        )
        .is_empty()
    );
}

/// Issue 16.11: `matrix.x` in a job with no matrix is null — a warning.
#[test]
fn matrix_in_a_job_without_one_is_warned_about() {
    let src = "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: 'echo ${{ matrix.os }}'}]\n  b:\n    runs-on: x\n    strategy: {matrix: {os: [l]}}\n    steps: [{run: 'echo ${{ matrix.os }}'}]\n";
    let l = load("wf.yml", src);
    let warnings: Vec<(&str, u32)> = l
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| (d.code, d.span.start.line))
        .collect();
    assert_eq!(warnings, [("matrix", 5)], "{:?}", l.diagnostics);
}

/// Issue 16.11: explicit YAML tags, which GitHub's reader refuses, at
/// their place; a quoted `!` is only text.
#[test]
fn explicit_tags_are_refused() {
    let got = codes(
        "on: push\njobs:\n  a:\n    runs-on: !!str ubuntu-latest\n    steps:\n      - run: !Ref echo hi\n      - !!map {run: 'true'}\n",
    );
    for want in [("yaml-tag", 4, 14), ("yaml-tag", 6, 14), ("yaml-tag", 7, 9)] {
        assert!(
            got.contains(&(want.0.to_string(), want.1, want.2)),
            "{want:?} not in {got:?}"
        );
    }
    assert!(
        codes("on: push\njobs:\n  a: {runs-on: x, steps: [{run: \"echo '!!str'\"}]}\n").is_empty()
    );
}

/// Issue 16.4: GitHub's parallel steps (`background`, `wait`, `wait-all`,
/// `cancel`, `parallel`) load as GitHub's schema has them, and what the
/// schema refuses is refused at its place.
#[test]
fn parallel_steps_follow_the_schema() {
    let ok = r#"on: push
jobs:
  a:
    runs-on: x
    steps:
      - id: server
        run: sleep 1
        background: true
      - id: probe
        uses: ./probe
        background: true
      - run: echo "${{ steps.server.outcome }}"
      - name: wait for it
        wait: [server]
        continue-on-error: true
      - wait-all:
      - id: svc
        run: sleep 30
        background: true
      - cancel: svc
      - parallel:
          - id: p1
            run: echo 1
          - run: echo 2
      - run: echo "${{ steps.p1.outcome }}"
"#;
    let loaded = load("wf.yml", ok);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let wf = loaded.workflow.unwrap();
    let steps = &wf.jobs["a"].steps;
    assert!(steps[0].background && steps[1].background && !steps[2].background);
    assert!(
        matches!(&steps[3].control, Some(launchway_workflow::Control::Wait(t)) if t[0].value == "server")
    );
    assert!(matches!(
        steps[4].control,
        Some(launchway_workflow::Control::WaitAll)
    ));
    assert!(
        matches!(&steps[6].control, Some(launchway_workflow::Control::Cancel(t)) if t.value == "svc")
    );
    assert!(
        matches!(&steps[7].control, Some(launchway_workflow::Control::Parallel(p)) if p.len() == 2)
    );

    let cases: &[(&str, (&str, u32, u32))] = &[
        // wait names a step that is not a background step
        (
            "      - id: s\n        run: x\n      - wait: s\n",
            ("steps", 8, 15),
        ),
        // cancel names nothing started earlier
        (
            "      - cancel: later\n      - id: later\n        run: x\n        background: true\n",
            ("steps", 6, 17),
        ),
        // a wait step takes no 'if' or 'run'
        (
            "      - wait-all:\n        if: always()\n",
            ("conflict", 7, 9),
        ),
        (
            "      - wait-all: true\n        run: x\n",
            ("conflict", 7, 9),
        ),
        // background is a plain boolean
        (
            "      - run: x\n        background: ${{ true }}\n",
            ("wrong-type", 7, 21),
        ),
        // a parallel block takes only its steps; no nesting, no wait inside
        (
            "      - name: n\n        parallel: [{run: x}]\n",
            ("conflict", 6, 9),
        ),
        (
            "      - parallel:\n          - parallel: [{run: x}]\n",
            ("conflict", 7, 23),
        ),
        (
            "      - parallel:\n          - wait-all:\n",
            ("conflict", 7, 13),
        ),
        ("      - parallel: []\n", ("missing-key", 6, 19)),
        ("      - wait: []\n", ("wrong-type", 6, 15)),
        // ids inside a parallel block share the job's namespace
        (
            "      - id: a\n        run: x\n      - parallel:\n          - id: a\n            run: y\n",
            ("duplicate-id", 9, 17),
        ),
    ];
    for (steps, want) in cases {
        let src = format!("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n{steps}");
        let got = codes(&src);
        assert!(
            got.contains(&(want.0.to_string(), want.1, want.2)),
            "{want:?} not in {got:?} for\n{src}"
        );
    }
    // Composite actions have no parallel steps (GitHub's action schema).
    let action = "runs:\n  using: composite\n  steps:\n    - run: x\n      shell: bash\n      background: true\n";
    let (_, diags) = launchway_workflow::action::load(action);
    assert!(
        diags
            .iter()
            .any(|d| d.code == "unknown-key" && d.span.start.line == 6),
        "{diags:?}"
    );
}

/// Script injection: text an outsider writes (an issue title, a branch
/// name) expanded into a `run:` script is flagged where it is, with the
/// safe form as the hint; a test of it (`contains(...)`, `==`) is not.
#[test]
fn untrusted_text_in_scripts_is_flagged() {
    let src = r#"on: [issues, pull_request_target]
jobs:
  triage:
    runs-on: x
    steps:
      - run: echo "${{ github.event.issue.title }}"
      - run: echo ${{ github.head_ref }} ${{ github.event.commits[0].message }}
      - run: echo "${{ contains(github.event.issue.body, 'bug') }} ${{ github.event.issue.title == 'x' }}"
      - env: {TITLE: "${{ github.event.issue.title }}"}
        run: echo "$TITLE"
      - run: echo "${{ github.event.pull_request.number }} ${{ github.event.issue.title || 'none' }}"
      - uses: actions/github-script@v7
        with:
          script: console.log("${{ github.event.comment.body }}")
"#;
    let loaded = load("wf.yml", src);
    let got: Vec<(u32, String)> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code == "injection")
        .map(|d| (d.span.start.line, d.message.clone()))
        .collect();
    let lines: Vec<u32> = got.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![6, 7, 7, 11, 14], "{got:?}");
    assert!(got[0].1.contains("github.event.issue.title"));
    assert!(got[2].1.contains("github.event.commits.*.message"));
    let hint = loaded
        .diagnostics
        .iter()
        .find(|d| d.code == "injection")
        .and_then(|d| d.hint.clone())
        .unwrap();
    assert!(
        hint.contains("env: {TITLE: ${{ github.event.issue.title }}}"),
        "{hint}"
    );
    assert!(
        loaded
            .diagnostics
            .iter()
            .all(|d| d.severity == Severity::Warning)
    );
}
