//! The trust boundary, tried as an attacker would: workflow code pushed by
//! a developer runs on the server's local agent and tries to read the
//! server's master key, database and environment, another job's temp dir
//! and another repository's workspace — all fail, on SQLite and on
//! PostgreSQL. Afterwards no planted secret is found in clear anywhere in
//! the data dir or the agent's work dir, after runs that pass, fail, time
//! out and are cancelled.

#![allow(clippy::unwrap_used)]

mod common;
use common::server::{Server, cli, get, start_with_env};
use common::{bin, commit_all};
use std::path::Path;
use std::time::{Duration, Instant};

const SECRET: &str = "planted-secret-9931-xq";
const ENV_MARK: &str = "planted-env-7781-zz";
const TEMP_MARK: &str = "planted-temp-4411-yy";
const WS_MARK: &str = "planted-ws-5512-ww";

fn repo(dir: &Path, workflow: &str) {
    std::fs::create_dir_all(dir.join(".github/workflows")).unwrap();
    std::fs::write(dir.join(".github/workflows/w.yml"), workflow).unwrap();
    commit_all(dir);
}

fn dispatch(base: &str, token: &str, repo: &str) -> i64 {
    let (ok, out) = cli(
        base,
        token,
        &["dispatch", repo, ".github/workflows/w.yml"],
        None,
    );
    assert!(ok, "{out}");
    out.split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn status(base: &str, token: &str, id: i64) -> String {
    let (_, body) = get(&format!("{base}/api/runs/{id}"), Some(token));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["status"].as_str().unwrap_or("").to_string()
}

fn wait_end(base: &str, token: &str, id: i64) -> String {
    let start = Instant::now();
    loop {
        let s = status(base, token, id);
        if !matches!(s.as_str(), "queued" | "running") {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "run {id} never ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn logs(base: &str, token: &str, id: i64) -> String {
    cli(base, token, &["logs", &id.to_string()], None).1
}

fn trust_boundary(database: Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let agent_work = tmp.path().join("data.agent");
    let keys = tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key_hex: String = (0..64)
        .map(|i| b"0123456789abcdef"[(i * 7 + 3) % 16] as char)
        .collect();
    let key_file = keys.join("master.key");
    std::fs::write(&key_file, &key_hex).unwrap();
    let env_key: String = (0..64)
        .map(|i| b"0123456789abcdef"[(i * 5 + 1) % 16] as char)
        .collect();
    // A folder both jobs can write to, to take turns.
    let sync = tmp.path().join("sync");
    std::fs::create_dir_all(&sync).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sync, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let alpha = tmp.path().join("alpha");
    repo(
        &alpha,
        &format!(
            r#"on: workflow_dispatch
jobs:
  hold:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: |
          echo "planted-temp-$((4400+11))-yy" > "$RUNNER_TEMP/secret.txt"
          echo "planted-ws-$((5500+12))-ww" > ws-secret.txt
          echo "uses ${{{{ secrets.PLANTED }}}}"
          sleep 600 &
          echo $! > {sync}/alpha-sleeper
          touch {sync}/alpha-ready
          for i in $(seq 1 600); do [ -e {sync}/beta-done ] && break; sleep 0.1; done
          echo alpha-done
"#,
            sync = sync.display()
        ),
    );
    let beta = tmp.path().join("beta");
    repo(
        &beta,
        &format!(
            r#"on: workflow_dispatch
jobs:
  probe:
    runs-on: ubuntu-latest
    steps:
      - run: |
          for i in $(seq 1 600); do [ -e {sync}/alpha-ready ] && break; sleep 0.1; done
          echo probing
          cat {data}/master.key {key_file} {data}/server.db 2>&1 | head -c 300 || true
          cat /proc/$SERVER_PID/environ 2>&1 | tr '\0' '\n' | head -50 || true
          cat /proc/$SERVER_PID/cmdline 2>&1 | tr '\0' ' ' || true
          env
          ls -R {work} 2>&1 | head -20 || true
          cat {work}/runs/*/jobs/hold/temp/secret.txt 2>&1 || true
          cat {work}/runs/*/jobs/hold/work/*/*/ws-secret.txt 2>&1 || true
          find {work} {data} -name secret.txt 2>/dev/null | xargs cat 2>&1 | head || true
          kill -0 $SERVER_PID 2>&1 && echo "SIGNALLED-$((40+2))-SERVER" || true
          kill -0 "$(cat {sync}/alpha-sleeper)" 2>&1 && echo "SIGNALLED-$((40+3))-OTHER-JOB" || true
          test -r "$GITHUB_EVENT_PATH" && echo "EVENT-$((1+1))-READABLE"
          echo probe-done
          touch {sync}/beta-done
        env:
          SERVER_PID: ${{{{ vars.SERVER_PID }}}}
"#,
            sync = sync.display(),
            data = data.display(),
            key_file = key_file.display(),
            work = agent_work.display(),
        ),
    );
    let key_arg = key_file.display().to_string();
    let extra_ref = ["--master-key-file", key_arg.as_str(), "--poll-seconds", "0"];
    // The database URL (with its password) goes the way the README says:
    // in the environment, never on the command line.
    let mut env = vec![
        ("LAUNCHWAY_MASTER_KEY", env_key.as_str()),
        ("LAUNCHWAY_PLANTED", ENV_MARK),
    ];
    if let Some(db) = &database {
        env.push(("LAUNCHWAY_DATABASE", db.as_str()));
    }
    let (server, base, token): (Server, String, Option<String>) =
        start_with_env(&data, &extra_ref, &env);
    let token = token.unwrap();
    let server_pid = server.0.id().to_string();
    for (name, dir) in [("alpha", &alpha), ("beta", &beta)] {
        let (ok, out) = cli(
            &base,
            &token,
            &["repo", "add", name, dir.to_str().unwrap()],
            None,
        );
        assert!(ok, "{out}");
        let (ok, out) = cli(
            &base,
            &token,
            &["secret", "set", name, "PLANTED"],
            Some(SECRET),
        );
        assert!(ok, "{out}");
    }
    let (ok, out) = cli(
        &base,
        &token,
        &["var", "set", "beta", "SERVER_PID", &server_pid],
        None,
    );
    assert!(ok, "{out}");
    let a = dispatch(&base, &token, "alpha");
    let b = dispatch(&base, &token, "beta");
    assert_eq!(
        wait_end(&base, &token, b),
        "success",
        "{}",
        logs(&base, &token, b)
    );
    assert_eq!(
        wait_end(&base, &token, a),
        "success",
        "{}",
        logs(&base, &token, a)
    );
    let probe = logs(&base, &token, b);
    eprintln!("{probe}");
    assert!(
        probe.contains("probing") && probe.contains("probe-done"),
        "{probe}"
    );
    for leak in [
        key_hex.as_str(),
        env_key.as_str(),
        ENV_MARK,
        TEMP_MARK,
        WS_MARK,
        SECRET,
        "SQLite format",
        "LAUNCHWAY_DATABASE",
        "launchway:launchway@",
        "LAUNCHWAY_MASTER_KEY",
        "SIGNALLED-42-SERVER",
        "SIGNALLED-43-OTHER-JOB",
    ] {
        assert!(
            !probe.contains(leak),
            "the probe reached '{leak}':\n{probe}"
        );
    }
    assert!(logs(&base, &token, a).contains("alpha-done"));

    // Runs that fail, time out and are cancelled use the secret too.
    let cases = tmp.path().join("cases");
    repo(
        &cases,
        r#"on: workflow_dispatch
jobs:
  fails:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ secrets.PLANTED }}" > "$RUNNER_TEMP/x"; exit 3
  times-out:
    runs-on: ubuntu-latest
    timeout-minutes: 0.05
    steps:
      - run: echo "${{ secrets.PLANTED }}" > "$RUNNER_TEMP/x"; sleep 30
"#,
    );
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "cases", cases.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    cli(
        &base,
        &token,
        &["secret", "set", "cases", "PLANTED"],
        Some(SECRET),
    );
    let c = dispatch(&base, &token, "cases");
    assert_eq!(wait_end(&base, &token, c), "failure");
    // Cancelled mid-step: the alpha workflow waits for a file that never comes.
    std::fs::remove_file(sync.join("beta-done")).unwrap();
    let d = dispatch(&base, &token, "alpha");
    let start = Instant::now();
    while !logs(&base, &token, d).contains("uses ***") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            logs(&base, &token, d)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, out) = cli(&base, &token, &["cancel", &d.to_string()], None);
    assert!(ok, "{out}");
    assert_eq!(wait_end(&base, &token, d), "cancelled");
    // Nothing of the jobs stays in the agent's work dir, and the secret is
    // nowhere in clear.
    let start = Instant::now();
    while agent_work
        .join("runs")
        .read_dir()
        .is_ok_and(|mut r| r.next().is_some())
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "jobs left files in the agent's work dir"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for dir in [&data, &agent_work] {
        for needle in [SECRET, TEMP_MARK, WS_MARK] {
            let hits = common::files_holding(dir, needle, &[]);
            assert!(hits.is_empty(), "'{needle}' in clear in {hits:?}");
        }
    }
    drop(server);
}

#[test]
fn workflow_code_cannot_reach_the_control_plane_on_sqlite() {
    trust_boundary(None);
}

#[test]
fn workflow_code_cannot_reach_the_control_plane_on_postgresql() {
    let Ok(url) = std::env::var("LAUNCHWAY_TEST_POSTGRES") else {
        eprintln!("LAUNCHWAY_TEST_POSTGRES is not set: skipped (CI sets it)");
        return;
    };
    trust_boundary(Some(common::server::fresh_postgres(&url)));
}

/// An agent process the test started, killed (by its pid) when dropped.
struct AgentProc(std::process::Child);

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A new agent registration token, made by the admin through the CLI.
fn registration_token(base: &str, token: &str) -> String {
    let (ok, out) = cli(base, token, &["agents", "token"], None);
    assert!(ok, "{out}");
    out.split_whitespace()
        .find(|w| w.starts_with("lwr_"))
        .unwrap_or_else(|| panic!("no registration token in: {out}"))
        .to_string()
}

fn start_agent(base: &str, registration: &str, name: &str, labels: &str, work: &Path) -> AgentProc {
    let child = bin()
        .args([
            "agent",
            "--server",
            base,
            "--name",
            name,
            "--labels",
            labels,
            "--max-jobs",
            "3",
        ])
        .arg("--work-dir")
        .arg(work)
        .env("LAUNCHWAY_AGENT_TOKEN", registration)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    AgentProc(child)
}

fn run_record(base: &str, token: &str, id: i64) -> serde_json::Value {
    let (_, body) = get(&format!("{base}/api/runs/{id}"), Some(token));
    serde_json::from_str(&body).unwrap()
}

/// One server, three agents with different labels, 30 jobs: each runs
/// exactly once, on an agent that has its labels. Then `kill -9` of an
/// agent mid-job ends that job with a clear reason, leaves none of its
/// processes running, and does not disturb a job on another agent.
#[test]
fn thirty_jobs_on_three_agents_and_one_agent_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = common::shared_dir(tmp.path());
    let dir = tmp.path().join("fleet");
    repo(
        &dir,
        &format!(
            r#"on: workflow_dispatch
jobs:
  gpu:
    strategy: {{matrix: {{i: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}}}
    runs-on: [self-hosted, gpu]
    steps:
      - run: echo "$RUNNER_NAME" >> {s}/gpu-${{{{ matrix.i }}}}
  arm:
    strategy: {{matrix: {{i: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}}}
    runs-on: {{labels: [linux, arm]}}
    steps:
      - run: echo "$RUNNER_NAME" >> {s}/arm-${{{{ matrix.i }}}}
  any:
    strategy: {{matrix: {{i: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}}}
    runs-on: ubuntu-latest
    steps:
      - run: echo "$RUNNER_NAME" >> {s}/any-${{{{ matrix.i }}}}
"#,
            s = shared.display()
        ),
    );
    let (_server, base, token) = start_with_env(
        &tmp.path().join("data"),
        &[
            "--local-agent-jobs",
            "0",
            "--agent-lease-seconds",
            "3",
            "--jobs",
            "8",
        ],
        &[],
    );
    let token = token.unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "fleet", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let registration = registration_token(&base, &token);
    let labels = [
        ("gpu-box", "linux,gpu"),
        ("arm-box", "linux,arm"),
        ("plain", "linux"),
    ];
    let mut agents: Vec<AgentProc> = labels
        .iter()
        .map(|(name, l)| start_agent(&base, &registration, name, l, &tmp.path().join(name)))
        .collect();
    let id = dispatch(&base, &token, "fleet");
    assert_eq!(
        wait_end(&base, &token, id),
        "success",
        "{}",
        logs(&base, &token, id)
    );
    let rec = run_record(&base, &token, id);
    assert_eq!(rec["jobs"].as_array().unwrap().len(), 30, "{rec}");
    for (kind, allowed) in [
        ("gpu", &["gpu-box"][..]),
        ("arm", &["arm-box"][..]),
        ("any", &["gpu-box", "arm-box", "plain"][..]),
    ] {
        for i in 1..=10 {
            let ran = std::fs::read_to_string(shared.join(format!("{kind}-{i}"))).unwrap();
            let lines: Vec<&str> = ran.lines().collect();
            assert_eq!(
                lines.len(),
                1,
                "{kind}-{i} ran {} times: {ran}",
                lines.len()
            );
            assert!(
                allowed.contains(&lines[0]),
                "{kind}-{i} ran on {}",
                lines[0]
            );
        }
    }
    let (ok, list) = cli(&base, &token, &["agents"], None);
    assert!(
        ok && list.contains("gpu-box") && list.contains("idle"),
        "{list}"
    );

    // kill -9 of the arm agent while it runs a job; the gpu agent's job
    // goes on.
    let dir2 = tmp.path().join("victim");
    repo(
        &dir2,
        &format!(
            r#"on: workflow_dispatch
jobs:
  victim:
    runs-on: [linux, arm]
    steps:
      - run: |
          setsid sh -c 'echo $$ > {s}/victim-daemon.pid; exec sleep 300' > /dev/null 2>&1 < /dev/null &
          sleep 300 &
          echo $! > {s}/victim.pid
          wait
  resilient:
    runs-on: [linux, arm]
    env:
      LAUNCHWAY_AGENT_RETRIES: 1
    steps:
      - run: |
          if [ -e {s}/resilient-first ]; then echo "second-attempt-on-$RUNNER_NAME"; exit 0; fi
          touch {s}/resilient-first
          sleep 300
  bystander:
    runs-on: [linux, gpu]
    steps:
      - run: |
          touch {s}/bystander-started
          for i in $(seq 1 600); do [ -e {s}/release ] && break; sleep 0.1; done
          echo bystander-finished
"#,
            s = shared.display()
        ),
    );
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "victim", dir2.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let v = dispatch(&base, &token, "victim");
    let start = Instant::now();
    while !(shared.join("victim.pid").exists()
        && shared.join("bystander-started").exists()
        && shared.join("resilient-first").exists())
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the jobs never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid_in = |f: &str| -> i32 {
        std::fs::read_to_string(shared.join(f))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (sleeper, daemon) = (pid_in("victim.pid"), pid_in("victim-daemon.pid"));
    let mut arm = agents.remove(1);
    arm.0.kill().unwrap(); // SIGKILL, by the pid this test started
    arm.0.wait().unwrap();
    // The step's processes die with their agent, the one that left its
    // process group and session too.
    let start = Instant::now();
    while alive(sleeper) || alive(daemon) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the step outlived its agent"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The job fails with the reason once the lease runs out; the other goes on.
    let start = Instant::now();
    loop {
        let rec = run_record(&base, &token, v);
        let victim = rec["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["key"] == "victim")
            .cloned()
            .unwrap_or_default();
        if victim["result"] == "failure" {
            let msg = victim["message"].as_str().unwrap_or("");
            assert!(
                msg.contains("arm-box") && msg.contains("stopped responding"),
                "{victim}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{rec}");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::write(shared.join("release"), "").unwrap();
    // The job that asked for a retry is queued again and runs on the next
    // agent with its labels.
    let _arm2 = start_agent(
        &base,
        &registration,
        "arm-box-2",
        "linux,arm",
        &tmp.path().join("arm2"),
    );
    assert_eq!(wait_end(&base, &token, v), "failure");
    let rec = run_record(&base, &token, v);
    let bystander = rec["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["key"] == "bystander")
        .cloned()
        .unwrap();
    assert_eq!(bystander["result"], "success", "{rec}");
    let resilient = rec["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["key"] == "resilient")
        .cloned()
        .unwrap();
    assert_eq!(resilient["result"], "success", "{rec}");
    let all = logs(&base, &token, v);
    assert!(all.contains("bystander-finished"), "{all}");
    assert!(all.contains("second-attempt-on-arm-box-2"), "{all}");
    assert!(
        rec["annotations"]
            .to_string()
            .contains("queued again (attempt 2 of 2"),
        "{rec}"
    );
    drop(agents);
}

/// Whether a process runs (a zombie does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// What a job leaves running — a daemon in its own session included —
/// lives on to the job's next step, as on GitHub, and ends with the job:
/// with a cgroup per job where the agent can manage one, and by its
/// tracking mark where it cannot.
#[test]
fn a_jobs_processes_end_with_the_job_however_they_hide() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = common::shared_dir(tmp.path());
    let dir = tmp.path().join("hide");
    repo(
        &dir,
        &format!(
            r#"on: workflow_dispatch
jobs:
  leaves:
    runs-on: linux
    steps:
      - run: setsid sh -c 'echo $$ > {s}/daemon.pid; exec sleep 300' > /dev/null 2>&1 < /dev/null &
      - run: |
          for i in $(seq 1 50); do [ -s {s}/daemon.pid ] && break; sleep 0.1; done
          kill -0 "$(cat {s}/daemon.pid)" && echo daemon-alive-in-next-step
          echo "in cgroup $(grep '^0::' /proc/self/cgroup)"
"#,
            s = shared.display()
        ),
    );
    let (_server, base, token) =
        start_with_env(&tmp.path().join("data"), &["--local-agent-jobs", "0"], &[]);
    let token = token.unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "hide", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let registration = registration_token(&base, &token);
    let root = nix::unistd::Uid::effective().is_root();
    for (name, no_cgroup) in [("with-cgroups", false), ("by-mark", true)] {
        let mut cmd = bin();
        // Restricted as a server's own agent is: Landlock, and (as root)
        // another user — its cgroup tree must stay writable to it.
        let off_limits = tmp.path().join("off-limits");
        std::fs::create_dir_all(&off_limits).unwrap();
        let work = tmp.path().join(name);
        std::fs::create_dir_all(&work).unwrap();
        cmd.args([
            "agent", "--server", &base, "--name", name, "--labels", "linux",
        ]);
        if root {
            let _ = std::process::Command::new("useradd")
                .args(["--system", "--no-create-home", "launchway-agent"])
                .output();
            let out = std::process::Command::new("id")
                .args(["-u", "launchway-agent"])
                .output()
                .unwrap();
            let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
            std::os::unix::fs::chown(&work, Some(uid), None).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            cmd.args(["--user", "launchway-agent"]);
        }
        cmd.arg("--deny")
            .arg(&off_limits)
            .arg("--work-dir")
            .arg(&work)
            .env("LAUNCHWAY_AGENT_TOKEN", &registration)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if no_cgroup {
            cmd.env("LAUNCHWAY_AGENT_NO_CGROUP", "1");
        }
        let mut agent = AgentProc(cmd.spawn().unwrap());
        let mut first = String::new();
        {
            use std::io::BufRead;
            let stderr = agent.0.stderr.take().unwrap();
            let mut reader = std::io::BufReader::new(stderr);
            reader.read_line(&mut first).unwrap();
            std::thread::spawn(move || for _ in reader.lines() {});
        }
        // As root on a machine with cgroup v2 (CI), the cgroup way is the
        // one tested here.
        let cgroup_v2 = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(" - cgroup2 ");
        let want = if no_cgroup || !(root && cgroup_v2) {
            "by LAUNCHWAY_TRACKING_ID"
        } else {
            "a cgroup per job"
        };
        assert!(first.contains(want), "{first}");
        let id = dispatch(&base, &token, "hide");
        assert_eq!(
            wait_end(&base, &token, id),
            "success",
            "{}",
            logs(&base, &token, id)
        );
        let text = logs(&base, &token, id);
        assert!(text.contains("daemon-alive-in-next-step"), "{text}");
        if want == "a cgroup per job" {
            assert!(
                text.contains("/job-"),
                "the step ran outside its job's cgroup: {text}"
            );
        }
        let daemon: i32 = std::fs::read_to_string(shared.join("daemon.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::remove_file(shared.join("daemon.pid")).unwrap();
        let start = Instant::now();
        while alive(daemon) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{name}: the daemon outlived its job"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(agent);
    }
}

/// SIGTERM of the server cancels running jobs as Ctrl-C does (the
/// `always()` step runs on the agent and is reported) and the server exits
/// within a bounded time, with a log follower attached.
#[test]
fn sigterm_cancels_running_jobs_promptly_whatever_followers_are_attached() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("slow");
    repo(
        &dir,
        r#"on: workflow_dispatch
jobs:
  slow:
    runs-on: linux
    steps:
      - run: echo slow-started; sleep 120
      - if: always()
        run: echo "cleanup-$((1+1))-ran"
"#,
    );
    let data = tmp.path().join("data");
    let (mut server, base, token) = start_with_env(&data, &["--poll-seconds", "0"], &[]);
    let token = token.unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "slow", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let id = dispatch(&base, &token, "slow");
    let start = Instant::now();
    while !logs(&base, &token, id).contains("slow | slow-started") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            logs(&base, &token, id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut follower = bin()
        .args(["logs", &id.to_string(), "-f"])
        .env("LAUNCHWAY_SERVER", &base)
        .env("LAUNCHWAY_TOKEN", &token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = server.0.id().to_string();
    let t0 = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the server did not stop within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let _ = follower.kill();
    let _ = follower.wait();
    drop(server);
    // The run ended cancelled, its always() step ran; a new server says so.
    let (_server, base, _) = start_with_env(&data, &["--poll-seconds", "0"], &[]);
    let (_, body) = get(&format!("{base}/api/runs/{id}"), Some(&token));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "cancelled", "{v}");
    let text = logs(&base, &token, id);
    assert!(text.contains("cleanup-2-ran"), "{text}");
}

/// Two servers on one PostgreSQL: starting the second does not fail the
/// first one's running run (it renews its lease); when a server is killed,
/// the other ends its run once the lease lapses, and goes on taking runs.
#[test]
fn two_servers_on_one_database_respect_each_others_runs() {
    let Ok(admin_url) = std::env::var("LAUNCHWAY_TEST_POSTGRES") else {
        eprintln!("LAUNCHWAY_TEST_POSTGRES is not set: skipped (CI sets it)");
        return;
    };
    let db = common::server::fresh_postgres(&admin_url);
    let tmp = tempfile::tempdir().unwrap();
    let shared = common::shared_dir(tmp.path());
    let dir = tmp.path().join("slow");
    repo(
        &dir,
        &format!(
            r#"on: workflow_dispatch
jobs:
  wait:
    runs-on: linux
    steps:
      - run: |
          touch {s}/started-$GITHUB_RUN_ID
          for i in $(seq 1 600); do [ -e {s}/release ] && break; sleep 0.1; done
          echo released
"#,
            s = shared.display()
        ),
    );
    let env = [("LAUNCHWAY_DATABASE", db.as_str())];
    // Servers of one database share its master key.
    let key_file = tmp.path().join("master.key");
    std::fs::write(&key_file, "ab".repeat(32)).unwrap();
    let key_arg = key_file.display().to_string();
    let args = [
        "--run-lease-seconds",
        "2",
        "--poll-seconds",
        "0",
        "--master-key-file",
        &key_arg,
    ];
    let (a, base_a, token) = start_with_env(&tmp.path().join("a"), &args, &env);
    let token = token.unwrap();
    let (ok, out) = cli(
        &base_a,
        &token,
        &["repo", "add", "slow", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let first = dispatch(&base_a, &token, "slow");
    let wait_started = |n: usize| {
        let start = Instant::now();
        loop {
            let count = std::fs::read_dir(&shared)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("started-"))
                .count();
            if count >= n {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "no run started");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_started(1);
    // A server with another key is refused.
    let other = common::bin()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--local-agent-jobs",
            "0",
            "--data-dir",
        ])
        .arg(tmp.path().join("c"))
        .env("LAUNCHWAY_DATABASE", &db)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        !other.status.success() && err.contains("another master key"),
        "{err}"
    );
    // A second server on the same database: the first one's run goes on.
    let (b, base_b, _) = start_with_env(&tmp.path().join("b"), &args, &env);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(status(&base_b, &token, first), "running");
    std::fs::write(shared.join("release"), "").unwrap();
    assert_eq!(wait_end(&base_b, &token, first), "success");
    // Server B goes; a run starts on A; B comes back; A is killed: B ends
    // A's run when its lease lapses, and runs the next one.
    drop(b);
    std::fs::remove_file(shared.join("release")).unwrap();
    let second = dispatch(&base_a, &token, "slow");
    wait_started(2);
    let (_b, base_b, _) = start_with_env(&tmp.path().join("b"), &args, &env);
    drop(a);
    let ended = wait_end(&base_b, &token, second);
    assert_eq!(ended, "failure");
    let (_, body) = get(&format!("{base_b}/api/runs/{second}"), Some(&token));
    assert!(
        body.contains("the server stopped while the run was in progress"),
        "{body}"
    );
    std::fs::write(shared.join("release"), "").unwrap();
    let third = dispatch(&base_b, &token, "slow");
    assert_eq!(wait_end(&base_b, &token, third), "success");
}

/// An agent finishes its job across a restart of its server (`kill -9`,
/// then the same server again, while the job runs and ends): the job runs
/// once, its log holds what the agent sent before and after, and the job
/// after it runs on its outputs.
#[test]
fn an_agent_finishes_its_job_across_a_server_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = common::shared_dir(tmp.path());
    let dir = tmp.path().join("restart");
    repo(
        &dir,
        &format!(
            r#"on: workflow_dispatch
jobs:
  first:
    runs-on: linux
    outputs:
      word: ${{{{ steps.s.outputs.word }}}}
    steps:
      - run: echo before-restart; echo x >> {s}/first-ran
      - id: s
        run: |
          touch {s}/waiting
          for i in $(seq 1 600); do [ -e {s}/go ] && break; sleep 0.1; done
          echo after-restart
          echo "word=kept-across" >> "$GITHUB_OUTPUT"
  second:
    needs: first
    runs-on: linux
    steps:
      - run: echo "got ${{{{ needs.first.outputs.word }}}}"; echo x >> {s}/second-ran
"#,
            s = shared.display()
        ),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--local-agent-jobs",
        "0",
        "--poll-seconds",
        "0",
        "--listen",
        &listen,
    ];
    let data = tmp.path().join("data");
    let (server, base, token) = start_with_env(&data, &args, &[]);
    let token = token.unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "restart", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let registration = registration_token(&base, &token);
    let _agent = start_agent(
        &base,
        &registration,
        "steady",
        "linux",
        &tmp.path().join("w"),
    );
    let id = dispatch(&base, &token, "restart");
    let start = Instant::now();
    while !shared.join("waiting").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The server dies mid-job; the job ends while it is away.
    drop(server);
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(shared.join("go"), "").unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let (_server, base, _) = start_with_env(&data, &args, &[]);
    assert_eq!(
        wait_end(&base, &token, id),
        "success",
        "{}",
        logs(&base, &token, id)
    );
    let text = logs(&base, &token, id);
    for want in ["before-restart", "after-restart", "got kept-across"] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    for (f, n) in [("first-ran", 1), ("second-ran", 1)] {
        let lines = std::fs::read_to_string(shared.join(f)).unwrap();
        assert_eq!(lines.lines().count(), n, "{f}: {lines}");
    }
    let rec = run_record(&base, &token, id);
    let jobs = rec["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{rec}");
    assert!(jobs.iter().all(|j| j["result"] == "success"), "{rec}");
}

/// A chatty step through an agent loses no log line: a 3 MB line and
/// 50,000 short ones (more than one report request holds) all arrive, in
/// order, and step ranges still point at the right bytes.
#[test]
fn a_chatty_step_loses_no_log_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("chatty");
    repo(
        &dir,
        r#"on: workflow_dispatch
jobs:
  talk:
    runs-on: linux
    steps:
      - run: head -c 3000000 /dev/zero | tr '\0' x; echo
      - run: seq 1 50000
      - run: echo "last-$((40+2))"
"#,
    );
    let (_server, base, token) =
        start_with_env(&tmp.path().join("data"), &["--poll-seconds", "0"], &[]);
    let token = token.unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "chatty", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let id = dispatch(&base, &token, "chatty");
    assert_eq!(wait_end(&base, &token, id), "success");
    let text = logs(&base, &token, id);
    assert!(text.contains(&"x".repeat(3_000_000)), "the long line");
    let numbers: Vec<u32> = text
        .lines()
        .filter_map(|l| l.strip_prefix("talk | ")?.trim().parse().ok())
        .collect();
    assert_eq!(numbers, (1..=50_000).collect::<Vec<u32>>());
    // Pages of it, streamed: skip the lines before, stop after the limit
    // (a 3 MB line counts once, whatever pieces it travels in).
    let lines_before: usize = text.lines().position(|l| l == "talk | 1000").unwrap();
    let (_, page) = get(
        &format!("{base}/api/runs/{id}/logs?offset={lines_before}&limit=3"),
        Some(&token),
    );
    assert_eq!(page, "talk | 1000\ntalk | 1001\ntalk | 1002\n");
    let long_at = text.lines().position(|l| l.len() > 1000).unwrap();
    let (_, page) = get(
        &format!("{base}/api/runs/{id}/logs?offset={long_at}&limit=2"),
        Some(&token),
    );
    let got: Vec<&str> = page.lines().collect();
    assert_eq!(got.len(), 2, "{}", &page[..page.len().min(200)]);
    assert_eq!(got[0].len(), "talk | ".len() + 3_000_000);
    // The step's byte range in the server's copy of the log is its own.
    let rec = run_record(&base, &token, id);
    let run_dir = tmp.path().join("data/server/runs/1");
    let part = common::step_log(&run_dir, &rec["jobs"][0]["steps"][2]);
    assert!(
        part.contains("last-42") && !part.contains("50000"),
        "{part}"
    );
}

fn raw(method: &str, url: &str, token: &str, body: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = format!("Bearer {token}");
    let mut res = match (method, body) {
        ("GET", _) => agent.get(url).header("Authorization", &auth).call(),
        ("PUT", b) => agent
            .put(url)
            .header("Authorization", &auth)
            .send(b.unwrap_or("").as_bytes()),
        (_, b) => agent
            .post(url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(b.unwrap_or("{}")),
    }
    .unwrap();
    let status = res.status().as_u16();
    (status, res.body_mut().read_to_string().unwrap_or_default())
}

/// The job channel, tried by a rogue agent and by wrong credentials: an
/// agent gets only its job's own secrets (never another environment's), a
/// protected environment's job is not handed out before its approval, an
/// agent cannot touch another agent's job, paths cannot leave an
/// artifact, user tokens and agent credentials do not open each other's
/// routes, and a disabled agent is refused.
#[test]
fn a_rogue_agent_cannot_walk_around_the_channel() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gated");
    std::fs::create_dir_all(dir.join("configs/environments")).unwrap();
    std::fs::write(
        dir.join("configs/environments/production.yaml"),
        "environment: production\nprotection:\n  required_reviewers: [admin]\n",
    )
    .unwrap();
    repo(
        &dir,
        r#"on: workflow_dispatch
jobs:
  build:
    runs-on: linux
    steps: [{run: "echo ${{ secrets.REPO_S }}"}]
  deploy:
    needs: build
    runs-on: linux
    environment: production
    steps: [{run: "echo ${{ secrets.PROD_S }}"}]
"#,
    );
    let (_server, base, token) =
        start_with_env(&tmp.path().join("data"), &["--local-agent-jobs", "0"], &[]);
    let token = token.unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "gated", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    cli(
        &base,
        &token,
        &["secret", "set", "gated", "REPO_S"],
        Some("repo-secret-3141"),
    );
    let (ok, out) = cli(
        &base,
        &token,
        &["secret", "set", "gated", "PROD_S", "--env", "production"],
        Some("prod-secret-2718"),
    );
    assert!(ok, "{out}");
    let reg = registration_token(&base, &token);
    let register = |name: &str| -> String {
        let (s, body) = raw(
            "POST",
            &format!("{base}/api/agents/register"),
            &reg,
            Some(&format!(r#"{{"name": "{name}", "labels": ["linux"]}}"#)),
        );
        assert_eq!(s, 201, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["token"].as_str().unwrap().to_string()
    };
    let (a, b) = (register("rogue-a"), register("rogue-b"));
    // An unknown registration token registers nothing.
    let (s, _) = raw(
        "POST",
        &format!("{base}/api/agents/register"),
        &format!("lwr_{}", "0".repeat(64)),
        Some(r#"{"name": "x"}"#),
    );
    assert_eq!(s, 401);

    let run = dispatch(&base, &token, "gated");
    let (s, body) = raw(
        "POST",
        &format!("{base}/api/agent/claim"),
        &a,
        Some(r#"{"labels": ["linux"]}"#),
    );
    assert_eq!(s, 200, "{body}");
    let assignment: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(assignment["spec"]["job"], "build");
    assert_eq!(assignment["spec"]["secrets"]["REPO_S"], "repo-secret-3141");
    assert!(
        !body.contains("prod-secret-2718"),
        "another environment's secret reached the agent: {body}"
    );
    let job = assignment["job"].as_i64().unwrap();

    // Agent B cannot touch A's job.
    for (method, path, body) in [
        (
            "POST",
            format!("/api/agent/jobs/{job}/report"),
            Some(r#"{"reports": []}"#),
        ),
        (
            "POST",
            format!("/api/agent/jobs/{job}/finish"),
            Some(r#"{"end": {"result": "success", "outputs": {}}}"#),
        ),
        ("GET", format!("/api/agent/jobs/{job}/source"), None),
        ("GET", format!("/api/agent/jobs/{job}/artifacts"), None),
        (
            "PUT",
            format!("/api/agent/jobs/{job}/artifacts/out/f.txt"),
            Some("x"),
        ),
    ] {
        let (s, text) = raw(method, &format!("{base}{path}"), &b, body);
        assert_eq!(s, 409, "{method} {path}: {text}");
    }
    // Paths cannot leave an artifact, even for the job's own agent.
    for bad in [
        "/out/..%2F..%2Frun.json",
        "/..%2Fx/f",
        "/out/a%2F..%2F..%2Fb",
    ] {
        let (s, text) = raw(
            "PUT",
            &format!("{base}/api/agent/jobs/{job}/artifacts{bad}"),
            &a,
            Some("x"),
        );
        assert!(s == 422 || s == 404, "{bad}: {s} {text}");
    }
    // User tokens and agent credentials do not open each other's routes.
    let (s, _) = raw(
        "POST",
        &format!("{base}/api/agent/claim"),
        &token,
        Some("{}"),
    );
    assert_eq!(s, 401);
    let (s, _) = raw("GET", &format!("{base}/api/runs"), &a, None);
    assert_eq!(s, 401);

    // The build ends; the production job waits for its approval and is not
    // handed out meanwhile.
    let (s, text) = raw(
        "POST",
        &format!("{base}/api/agent/jobs/{job}/finish"),
        &a,
        Some(r#"{"end": {"result": "success", "outputs": {}}}"#),
    );
    assert_eq!(s, 204, "{text}");
    assert_eq!(wait_end(&base, &token, run), "waiting");
    let (s, body) = raw(
        "POST",
        &format!("{base}/api/agent/claim"),
        &b,
        Some(r#"{"labels": ["linux"]}"#),
    );
    assert_eq!(s, 204, "a gated job was handed out: {body}");

    // A disabled agent is refused.
    let (_, list) = cli(&base, &token, &["agents", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id_a = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "rogue-a")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["agents", "disable", &id_a.to_string()],
        None,
    );
    assert!(ok, "{out}");
    let (s, _) = raw("POST", &format!("{base}/api/agent/claim"), &a, Some("{}"));
    assert_eq!(s, 401);
}

/// The pids of this agent's spare launchers (`sandbox-exec --standby`
/// with its work dir), by their command lines.
fn spares_of(work: &Path) -> Vec<i32> {
    let want = work.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.iter().any(|a| a == "sandbox-exec")
                && args.iter().any(|a| a == "--standby")
                && args.contains(&want)
                && alive(*pid)
        })
        .collect()
}

/// The `n` spare launchers of the agent working in `work`, once they have
/// been waiting a moment (their rules built).
fn wait_for_spares(work: &Path, n: usize) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let mut now = spares_of(work);
        if now.len() == n {
            std::thread::sleep(Duration::from_millis(700));
            let mut later = spares_of(work);
            now.sort_unstable();
            later.sort_unstable();
            if later == now {
                return now;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not {n} spare launchers for {}: {:?}",
            work.display(),
            spares_of(work)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many of a log's lines are `text`, as a step printed it.
fn printed(log: &str, text: &str) -> usize {
    log.lines()
        .filter(|l| l.rsplit_once(" | ").is_some_and(|(_, t)| t == text))
        .count()
}

/// Each of a run's three jobs tried to read the other two's temp files
/// while they existed, and was refused each time.
fn kept_apart(log: &str) {
    assert_eq!(
        printed(log, "other: mine"),
        0,
        "a job read another's temp dir:\n{log}"
    );
    let refused = log
        .lines()
        .filter(|l| l.contains("| other: ") && l.contains("Permission denied"))
        .count();
    assert_eq!(refused, 6, "{log}");
}

/// The launchers a run's jobs ran on, from their `launcher=PID standby=…`
/// lines: (pid, whether it had been a spare).
fn launchers(log: &str) -> Vec<(i32, bool)> {
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find("launcher=")? + "launcher=".len()..];
            let (pid, rest) = rest.split_once(' ')?;
            Some((pid.parse().ok()?, rest.contains("--standby")))
        })
        .collect()
}

/// An agent keeps a launcher ready before it has a job — one per job it
/// can run at once — with its cgroup joined and its Landlock rules built,
/// so a job's first step does not wait for them. A job given a spare is
/// confined as one given a launcher of its own: the agent's credential and
/// the work dir stay out of reach. Spares that died waiting, or that were
/// built before a directory appeared beside the work dir (which their
/// rules do not cover), are not used: the jobs start launchers of their
/// own and see the directory. The agent's stop takes its spares and their
/// cgroups with it.
#[test]
fn spare_launchers_confine_their_jobs_stay_current_and_end_with_the_agent() {
    // Not under /tmp, where the other tests make entries all the time:
    // each would (rightly) outdate the spares, and no job would get one.
    let quiet = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spares");
    std::fs::create_dir_all(&quiet).unwrap();
    let tmp = tempfile::tempdir_in(&quiet).unwrap();
    let work = tmp.path().join("agent");
    let later = tmp.path().join("later");
    let dir = tmp.path().join("repo");
    repo(
        &dir,
        &format!(
            r#"on: workflow_dispatch
jobs:
  probe:
    strategy:
      matrix:
        n: [1, 2, 3]
    runs-on: linux
    steps:
      - run: |
          echo "launcher=$PPID standby=$(tr '\0' ' ' < /proc/$PPID/cmdline | grep -o -- --standby)"
          cat {work}/agent.json 2>&1 | head -c 200 || true
          echo intruder > {work}/planted 2>&1 || echo "work dir not writable"
          echo mine > "$RUNNER_TEMP/own" && cat "$RUNNER_TEMP/own"
          cat {later}/note.txt 2>&1 || true
          # The other two jobs' temp files, while they exist: not readable.
          for i in $(seq 100); do [ "$(find {work} -path '*/temp/own' 2>/dev/null | wc -l)" -ge 3 ] && break; sleep 0.1; done
          for f in $(find {work} -path '*/temp/own' 2>/dev/null); do
            [ "$(realpath "$f")" = "$(realpath "$RUNNER_TEMP/own")" ] || cat "$f" 2>&1 | sed 's/^/other: /'
          done
          sleep 1
"#,
            work = work.display(),
            later = later.display(),
        ),
    );
    let (_server, base, token) = start_with_env(
        &tmp.path().join("data"),
        &[
            "--local-agent-jobs",
            "0",
            "--poll-seconds",
            "0",
            "--jobs",
            "3",
        ],
        &[],
    );
    let token = token.unwrap();
    let (ok, out) = cli(
        &base,
        &token,
        &["repo", "add", "spare", dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    let registration = registration_token(&base, &token);
    // --max-jobs 3: three spares.
    let mut agent = start_agent(&base, &registration, "spare-box", "linux", &work);
    let credential = {
        let start = Instant::now();
        loop {
            if let Ok(t) = std::fs::read_to_string(work.join("agent.json"))
                && t.contains("lwa_")
            {
                break t;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no credential");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let lwa = credential
        .split('"')
        .find(|w| w.starts_with("lwa_"))
        .unwrap()
        .to_string();

    // 1. Three jobs at once, each on a spare of its own, confined.
    wait_for_spares(&work, 3);
    let id = dispatch(&base, &token, "spare");
    assert_eq!(wait_end(&base, &token, id), "success");
    let log = logs(&base, &token, id);
    let ran_on = launchers(&log);
    assert_eq!(ran_on.len(), 3, "{log}");
    assert!(
        ran_on.iter().all(|(_, spare)| *spare),
        "a job did not run on a spare launcher:\n{log}"
    );
    let mut pids: Vec<i32> = ran_on.iter().map(|(p, _)| *p).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "two jobs shared a launcher:\n{log}");
    assert!(
        !log.contains(&lwa),
        "a job read the agent's credential:\n{log}"
    );
    assert_eq!(printed(&log, "work dir not writable"), 3, "{log}");
    kept_apart(&log);
    assert!(!work.join("planted").exists());
    assert_eq!(printed(&log, "mine"), 3, "{log}");

    // 2. Spares that died waiting (killed here, by their pids): the jobs
    // start launchers of their own.
    let doomed = wait_for_spares(&work, 3);
    for pid in &doomed {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    let id = dispatch(&base, &token, "spare");
    let end = wait_end(&base, &token, id);
    let log = logs(&base, &token, id);
    assert_eq!(end, "success", "{log}");
    assert_eq!(printed(&log, "mine"), 3, "{log}");
    for (pid, _) in launchers(&log) {
        assert!(!doomed.contains(&pid), "a job ran on a dead spare:\n{log}");
    }
    kept_apart(&log);

    // 3. A directory made after the spares were built: they are
    // outdated, and the jobs see the directory.
    let outdated = wait_for_spares(&work, 3);
    std::fs::create_dir(&later).unwrap();
    std::fs::write(later.join("note.txt"), "made-after-the-spare\n").unwrap();
    let id = dispatch(&base, &token, "spare");
    assert_eq!(wait_end(&base, &token, id), "success");
    let log = logs(&base, &token, id);
    assert_eq!(printed(&log, "made-after-the-spare"), 3, "{log}");
    for (pid, _) in launchers(&log) {
        assert!(
            !outdated.contains(&pid),
            "a job ran on an outdated spare:\n{log}"
        );
    }
    kept_apart(&log);

    // 4. The agent's stop ends its spares, and their cgroups go.
    let spares = wait_for_spares(&work, 3);
    let cgroups: Vec<String> = spares
        .iter()
        .filter_map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
                .filter(|p| p.contains("job-spare-"))
        })
        .collect();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(agent.0.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = agent.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    for pid in spares {
        assert!(!alive(pid), "a spare launcher outlived its agent");
    }
    if !cgroups.is_empty() {
        let mount = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find_map(|l| {
                let (left, right) = l.split_once(" - ")?;
                (right.split_whitespace().next()? == "cgroup2")
                    .then(|| left.split_whitespace().nth(4).map(str::to_string))?
            })
            .unwrap();
        for cg in cgroups {
            let path = Path::new(&mount).join(cg.trim_start_matches('/'));
            assert!(!path.exists(), "{} was left behind", path.display());
        }
    }
}
