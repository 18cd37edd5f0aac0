//! The GitOps reconciler on this machine (`launchway sync`): environments
//! run from their committed config — releases switched behind the stable
//! address with no failed request (also under wrk), a release that never
//! gets healthy not switched to, drift healed (or, with self-heal off,
//! shown until a sync), and a killed reconciler replaced by one that
//! adopts the replicas it left, never running two on one port.

#![allow(clippy::unwrap_used)]

mod common;
use common::free_port;
use common::{Stop, bin, commit_all, get, git, lw, status, wait_status};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::SERVICE_APP as APP;

/// Deploys the current commit to `env` (a commit on top of it); returns
/// the release (that commit).
fn deploy_with(home: &Path, repo: &Path, env: &str) -> String {
    let release = head(repo);
    let (ok, _, err) = lw(home, repo, &["deploy", env, "--release", "HEAD"]);
    assert!(ok, "{err}");
    release
}

fn serving(st: &Value, release: &str) -> bool {
    st["sync"] == "Synced" && st["health"] == "Healthy" && st["release"].as_str() == Some(release)
}

fn head(repo: &Path) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn pids(st: &Value) -> Vec<u64> {
    st["replicas"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["pid"].as_u64()).collect())
        .unwrap_or_default()
}

/// The processes on this machine that say they are a replica of `env`
/// (read from /proc; nothing is signalled).
fn replica_processes(env: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        let marker = format!("LAUNCHWAY_ENVIRONMENT={env}");
        let python = std::fs::read_to_string(e.path().join("cmdline"))
            .unwrap_or_default()
            .contains("app.py");
        if python && environ.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

/// Every reconciler log under `home` (for a failure's message).
fn reconciler_logs(home: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![home.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "reconciler.log") {
                out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    out
}

/// A repository with the test app and `dev.yaml` (plus `extra` lines).
fn app_repo(root: &Path, env: &str, replicas: u32, extra: &str) -> PathBuf {
    let repo = root.join("repo");
    std::fs::create_dir_all(repo.join("configs/environments")).unwrap();
    std::fs::write(repo.join("app.py"), APP).unwrap();
    std::fs::write(repo.join("version.txt"), "v1\n").unwrap();
    std::fs::write(
        repo.join(format!("configs/environments/{env}.yaml")),
        format!("environment: development\nreplicas: {replicas}\nrun: {{command: exec python3 app.py, health_path: /health}}\n{extra}"),
    )
    .unwrap();
    commit_all(&repo);
    repo
}

/// The id of the reconciler `sync --detach` started (from its pid file).
fn reconciler_pid(home: &Path) -> u32 {
    for e in std::fs::read_dir(home.join("environments"))
        .unwrap()
        .flatten()
    {
        if let Ok(t) = std::fs::read_to_string(e.path().join("reconciler.pid")) {
            return t.lines().next().unwrap().parse().unwrap();
        }
    }
    panic!("no reconciler.pid under {}", home.display());
}

fn kill(pid: u64, signal: &str) {
    assert!(
        std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// Steady load on `addr` from a few threads: (stop flag, failures, bodies seen, threads).
#[allow(clippy::type_complexity)]
fn load(
    addr: &str,
) -> (
    Arc<AtomicBool>,
    Arc<AtomicUsize>,
    Arc<Mutex<Vec<String>>>,
    Vec<std::thread::JoinHandle<()>>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let threads = (0..4)
        .map(|_| {
            let (stop, failed, seen, addr) =
                (stop.clone(), failed.clone(), seen.clone(), addr.to_string());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match get(&addr, "/") {
                        Ok(v) => seen.lock().unwrap().push(v),
                        Err(e) => {
                            eprintln!("request failed: {e}");
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    (stop, failed, seen, threads)
}

#[test]
fn releases_switch_without_failed_requests_and_replicas_heal() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(tmp.path(), "dev", 2, "");
    let v1 = deploy_with(&home, &repo, "dev");

    // In the foreground, as a person would run it.
    let mut sync = bin()
        .args(["sync", "dev", "--health-timeout", "20", "-C"])
        .arg(&repo)
        .env("LAUNCHWAY_HOME", &home)
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = sync.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("[sync] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let st = wait_status(&home, &repo, "dev", "served v1", |s| serving(s, &v1));
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    assert_eq!(get(&addr, "/").unwrap(), "v1");
    assert_eq!(st["deployed_revision"].as_str(), Some(head(&repo).as_str()));
    let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(line.starts_with("dev: "), "{line}");

    let (stop, failed, seen, threads) = load(&addr);

    // A new commit, deployed through git: served with no failed request.
    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-qam", "v2"]);
    let v2 = deploy_with(&home, &repo, "dev");
    wait_status(&home, &repo, "dev", "served v2", |s| serving(s, &v2));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(seen.lock().unwrap().last().map(String::as_str), Some("v2"));

    // A release that never gets healthy is not switched to: the deployment
    // is marked failed with the reason, the old release keeps serving.
    std::fs::write(repo.join("version.txt"), "broken\n").unwrap();
    git(&repo, &["commit", "-qam", "broken"]);
    let broken = deploy_with(&home, &repo, "dev");
    let broken_commit = head(&repo);
    let st = wait_status(&home, &repo, "dev", "failed", |s| {
        s["revision"].as_str() == Some(broken_commit.as_str())
            && s["message"].as_str().unwrap_or("").contains("failed")
    });
    assert_eq!(st["sync"], "OutOfSync", "{st}");
    assert!(st["message"].as_str().unwrap().contains("exited"), "{st}");
    assert_eq!(st["release"].as_str(), Some(v2.as_str()), "{st}");
    assert_eq!(
        get(&addr, "/").unwrap(),
        "v2",
        "the old release keeps serving"
    );
    let (_, hist, _) = lw(&home, &repo, &["env", "history", "dev", "--json"]);
    let hist: Value = serde_json::from_str(&hist).unwrap();
    let results: Vec<(&str, &str)> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["result"].as_str().unwrap(),
                h["subject"].as_str().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("succeeded", format!("deploy dev: release {}", &v1[..12])),
        ("succeeded", format!("deploy dev: release {}", &v2[..12])),
        ("failed", format!("deploy dev: release {}", &broken[..12])),
    ];
    let expected: Vec<(&str, &str)> = expected.iter().map(|(a, b)| (*a, b.as_str())).collect();
    assert_eq!(results, expected);
    assert!(
        hist[0]["author"]
            .as_str()
            .unwrap()
            .contains("mona@example.com")
    );

    // A rollback is a commit too: v2's config again, served.
    let (ok, _, err) = lw(&home, &repo, &["rollback", "dev"]);
    assert!(ok, "{err}");
    let st = wait_status(&home, &repo, "dev", "rolled back", |s| {
        s["revision"].as_str() == Some(head(&repo).as_str()) && s["sync"] == "Synced"
    });
    assert_eq!(st["release"].as_str(), Some(v2.as_str()));

    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no request failed");
    assert!(seen.lock().unwrap().len() > 50);

    // A killed replica is restarted (self-heal is on by default); the
    // environment answers throughout. (Its id comes from the status.)
    let before = pids(&st);
    assert_eq!(before.len(), 2, "{st}");
    kill(before[0], "-KILL");
    let st = wait_status(&home, &repo, "dev", "healed", |s| {
        let now = pids(s);
        now.len() == 2
            && !now.contains(&before[0])
            && s["sync"] == "Synced"
            && s["health"] == "Healthy"
    });
    assert_eq!(st["health"], "Healthy");
    for _ in 0..20 {
        assert_eq!(get(&addr, "/").unwrap(), "v2");
    }

    // Each replica's output is kept.
    let (_, logs, _) = lw(&home, &repo, &["env", "logs", "dev"]);
    assert!(
        logs.contains("replica-0 | serving v1 on port") && logs.contains("serving v2"),
        "{logs}"
    );

    // Ctrl-C stops the reconciler and the replicas.
    kill(u64::from(sync.id()), "-INT");
    let status = sync.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(get(&addr, "/").is_err(), "nothing listens any more");
}

#[test]
fn drift_without_self_heal_shows_until_a_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(tmp.path(), "manual", 1, "self_heal: false\n");
    let v1 = deploy_with(&home, &repo, "manual");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "manual", "served", |s| serving(s, &v1));
    // A second reconciler for the same repository — even with another
    // data directory — is refused: it would run everything twice.
    let (ok, _, err) = lw(&tmp.path().join("other-home"), &repo, &["sync"]);
    assert!(!ok);
    assert!(
        err.contains("already runs the environments of") && err.contains("twice"),
        "{err}"
    );
    let before = pids(&st);
    kill(before[0], "-KILL");
    wait_status(&home, &repo, "manual", "out of sync", |s| {
        s["sync"] == "OutOfSync"
    });
    // Whatever self-heal says, a dead replica leaves the route.
    let st = wait_status(&home, &repo, "manual", "out of rotation", |s| {
        s["serving_replicas"] == 0
    });
    assert!(
        st["message"].as_str().unwrap().contains("self-heal is off"),
        "{st}"
    );
    // It stays so: nothing restarts it behind git's back.
    std::thread::sleep(Duration::from_secs(2));
    let st = status(&home, &repo, "manual");
    assert_eq!(st["sync"], "OutOfSync", "{st}");
    // A manual sync heals it.
    let (ok, _, err) = lw(&home, &repo, &["sync", "--now", "manual"]);
    assert!(ok, "{err}");
    let st = wait_status(&home, &repo, "manual", "healed", |s| serving(s, &v1));
    assert!(!pids(&st).contains(&before[0]));
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    assert_eq!(get(&addr, "/").unwrap(), "v1");

    // Deleting the environment's file (a commit) stops its replicas
    // (another environment file remains: not the "delete everything" guard).
    std::fs::write(
        repo.join("configs/environments/other.yaml"),
        "run: {command: exec python3 app.py}\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["rm", "-q", "configs/environments/manual.yaml"]);
    git(&repo, &["commit", "-qm", "retire manual"]);
    let start = Instant::now();
    while status(&home, &repo, "manual") != Value::Null || !replica_processes("manual").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the environment was not removed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "its address is closed"
    );
    let (_, hist, _) = lw(&home, &repo, &["env", "history", "manual", "--json"]);
    let hist: Value = serde_json::from_str(&hist).unwrap();
    let last = hist.as_array().unwrap().last().unwrap();
    assert_eq!(last["result"], "removed", "{hist}");
    assert_eq!(last["subject"], "retire manual", "{hist}");
}

#[test]
fn a_killed_reconciler_is_replaced_by_one_that_adopts_its_replicas() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(tmp.path(), "adopt", 2, "");
    let v1 = deploy_with(&home, &repo, "adopt");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "adopt", "served", |s| serving(s, &v1));
    let addr = st["address"].as_str().unwrap().to_string();
    let before = pids(&st);

    // SIGKILL: no chance to clean up; the replicas keep running.
    kill(u64::from(reconciler_pid(&home)), "-KILL");
    std::thread::sleep(Duration::from_millis(300));
    let ports: Vec<u64> = st["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["port"].as_u64().unwrap())
        .collect();
    assert_eq!(get(&format!("127.0.0.1:{}", ports[0]), "/").unwrap(), "v1");

    // A new reconciler adopts them: same processes, same address, no
    // second deployment.
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "adopt", "adopted", |s| {
        serving(s, &v1) && s["message"].as_str().unwrap_or("").contains("adopted")
    });
    assert_eq!(pids(&st), before, "{st}");
    assert_eq!(st["address"].as_str(), Some(addr.as_str()));
    assert_eq!(get(addr.trim_start_matches("http://"), "/").unwrap(), "v1");
    let mut running = replica_processes("adopt");
    running.sort_unstable();
    let mut expected = before.clone();
    expected.sort_unstable();
    assert_eq!(running, expected, "exactly the adopted replicas run");

    // Killed again, and git changes while no reconciler runs: the next one
    // does not adopt stale replicas; it stops them and starts the new
    // release — never two processes for one replica.
    kill(u64::from(reconciler_pid(&home)), "-KILL");
    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-qam", "v2"]);
    let v2 = deploy_with(&home, &repo, "adopt");
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "adopt", "served v2", |s| serving(s, &v2));
    assert_eq!(get(addr.trim_start_matches("http://"), "/").unwrap(), "v2");
    let now = pids(&st);
    assert!(now.iter().all(|p| !before.contains(p)), "{st}");
    let start = Instant::now();
    loop {
        let mut running = replica_processes("adopt");
        running.sort_unstable();
        let mut expected = now.clone();
        expected.sort_unstable();
        if running == expected {
            break;
        }
        if start.elapsed() > Duration::from_secs(10) {
            for e in std::fs::read_dir(home.join("environments"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let log =
                    std::fs::read_to_string(e.path().join("reconciler.log")).unwrap_or_default();
                eprintln!("--- {}/reconciler.log\n{log}", e.path().display());
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "stale replicas still run: {running:?} vs {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// wrk's totals: (requests, errors of any kind, non-2xx/3xx responses).
fn wrk_totals(out: &str) -> (u64, u64, u64) {
    let mut requests = 0;
    let mut errors = 0;
    let mut non2xx = 0;
    for line in out.lines() {
        let l = line.trim();
        if let Some(n) = l
            .split(" requests in ")
            .next()
            .filter(|_| l.contains(" requests in "))
        {
            requests = n.trim().parse().unwrap_or(0);
        }
        if let Some(rest) = l.strip_prefix("Socket errors:") {
            errors += rest
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
        if let Some(rest) = l.strip_prefix("Non-2xx or 3xx responses:") {
            non2xx = rest.trim().parse().unwrap_or(0);
        }
    }
    (requests, errors, non2xx)
}

#[test]
fn deploying_and_rolling_back_under_wrk_loses_no_request() {
    let wrk = std::process::Command::new("wrk").arg("--version").output();
    assert!(
        wrk.is_ok(),
        "wrk is needed (apt-get install wrk; .ci/run installs it)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(tmp.path(), "steady", 2, "");
    let v1 = deploy_with(&home, &repo, "steady");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "steady", "served", |s| serving(s, &v1));
    let url = format!("{}/", st["address"].as_str().unwrap());
    let load = std::process::Command::new("wrk")
        .args(["-t2", "-c8", "-d12s", "--timeout", "5s", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-qam", "v2"]);
    let v2 = deploy_with(&home, &repo, "steady");
    wait_status(&home, &repo, "steady", "served v2", |s| serving(s, &v2));
    std::thread::sleep(Duration::from_secs(1));
    let (ok, _, err) = lw(&home, &repo, &["rollback", "steady"]);
    assert!(ok, "{err}");
    let rolled = head(&repo);
    wait_status(&home, &repo, "steady", "rolled back", |s| {
        serving(s, &v1) && s["revision"].as_str() == Some(rolled.as_str())
    });
    let out = load.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    let (requests, errors, non2xx) = wrk_totals(&text);
    assert!(requests > 1000, "wrk made too few requests:\n{text}");
    assert_eq!((errors, non2xx), (0, 0), "requests were lost:\n{text}");
    let (_, hist, _) = lw(&home, &repo, &["env", "history", "steady", "--json"]);
    let hist: Value = serde_json::from_str(&hist).unwrap();
    assert_eq!(hist.as_array().unwrap().len(), 3, "{hist}");
    assert!(
        hist[2]["subject"]
            .as_str()
            .unwrap()
            .starts_with("rollback steady"),
        "{hist}"
    );
}

#[test]
fn one_environment_stuck_in_a_rollout_does_not_hold_up_another() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(tmp.path(), "fast", 1, "");
    // `slow` never answers its health check (its replicas hang at start).
    std::fs::write(
        repo.join("configs/environments/slow.yaml"),
        "replicas: 1\nenv: {HANG: \"yes\"}\nrun: {command: exec python3 app.py}\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "slow"]);
    let (ok, _, err) = lw(&home, &repo, &["deploy", "slow", "--release", "HEAD"]);
    assert!(ok, "{err}");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(
        &home,
        &repo,
        &["sync", "--detach", "--health-timeout", "60"],
    );
    assert!(ok, "{out}{err}");
    wait_status(&home, &repo, "slow", "rolling out", |s| {
        s["message"].as_str().unwrap_or("").starts_with("deploying")
    });
    // While slow waits for its health check, fast deploys and serves.
    let started = Instant::now();
    let v1 = deploy_with(&home, &repo, "fast");
    let st = wait_status(&home, &repo, "fast", "served", |s| serving(s, &v1));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "fast waited for slow"
    );
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    assert_eq!(get(&addr, "/").unwrap(), "v1");
    let slow = status(&home, &repo, "slow");
    assert!(
        slow["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("deploying"),
        "{slow}"
    );
    // Stopping does not wait for the stuck rollout, and leaves nothing behind.
    let started = Instant::now();
    let (ok, _, err) = lw(&home, &repo, &["sync", "--stop"]);
    assert!(ok, "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let start = Instant::now();
    while !(replica_processes("slow").is_empty() && replica_processes("fast").is_empty()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "replicas outlived the reconciler"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Replicas get a clean environment: what their file and secrets say,
/// `PORT`, and a short allow-list — not the starter's tokens, master key
/// or cloud credentials.
#[test]
fn replicas_get_a_clean_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(tmp.path(), "clean", 1, "log_level: debug\n");
    let v1 = deploy_with(&home, &repo, "clean");
    let _stop = Stop(&home, &repo);
    let out = bin()
        .args(["sync", "--detach", "-C"])
        .arg(&repo)
        .env("LAUNCHWAY_HOME", &home)
        .env("LAUNCHWAY_TOKEN", "lwt_leaked-token-7731")
        .env("LAUNCHWAY_MASTER_KEY", "ab".repeat(32))
        .env("AWS_SECRET_ACCESS_KEY", "leaked-cloud-credential-7731")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = wait_status(&home, &repo, "clean", "served", |s| serving(s, &v1));
    let replicas = pids(&st);
    assert!(!replicas.is_empty(), "{st}");
    for pid in replicas {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let vars: Vec<String> = environ
            .split(|b| *b == 0)
            .map(|v| String::from_utf8_lossy(v).to_string())
            .collect();
        for leak in [
            "LAUNCHWAY_TOKEN=",
            "LAUNCHWAY_MASTER_KEY=",
            "AWS_SECRET_ACCESS_KEY=",
            "LAUNCHWAY_HOME=",
        ] {
            assert!(
                !vars.iter().any(|v| v.starts_with(leak)),
                "{leak} reached the replica: {vars:?}"
            );
        }
        for want in [
            "PORT=",
            "PATH=",
            "LOG_LEVEL=debug",
            "LAUNCHWAY_ENVIRONMENT=clean",
        ] {
            assert!(
                vars.iter().any(|v| v.starts_with(want)),
                "{want} missing: {vars:?}"
            );
        }
    }
}

/// The data plane outlives the reconciler: `kill -9` of `sync` and a new
/// one started under wrk loses no request; meanwhile `env status` says
/// the reconciler is down and the replicas still serve.
#[test]
fn the_stable_address_outlives_a_killed_reconciler() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(tmp.path(), "steady", 2, "");
    let v1 = deploy_with(&home, &repo, "steady");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "steady", "served", |s| serving(s, &v1));
    let address = st["address"].as_str().unwrap().to_string();
    let before = pids(&st);
    let load = std::process::Command::new("wrk")
        .args([
            "-t2",
            "-c8",
            "-d8s",
            "--timeout",
            "5s",
            &format!("{address}/"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk is needed (apt-get install wrk; .ci/run installs it)");
    std::thread::sleep(Duration::from_secs(1));
    kill(u64::from(reconciler_pid(&home)), "-KILL");
    std::thread::sleep(Duration::from_millis(1500));
    let down = status(&home, &repo, "steady");
    assert_eq!(down["reconciler"], "down", "{down}");
    assert_eq!(down["serving_replicas"], 2, "{down}");
    assert!(
        down["message"]
            .as_str()
            .unwrap()
            .starts_with("reconciler down: 2 replica(s) keep serving"),
        "{down}"
    );
    let (_, table, _) = lw(&home, &repo, &["env", "status"]);
    assert!(table.contains("no reconciler runs now"), "{table}");
    std::thread::sleep(Duration::from_secs(2));
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "steady", "adopted", |s| {
        serving(s, &v1) && s["reconciler"] == "running"
    });
    assert_eq!(st["address"].as_str(), Some(address.as_str()));
    assert_eq!(pids(&st), before, "the same replicas serve: {st}");
    let out = load.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    let (requests, errors, non2xx) = wrk_totals(&text);
    assert!(requests > 1000, "wrk made too few requests:\n{text}");
    assert_eq!(
        (errors, non2xx),
        (0, 0),
        "requests were lost while the reconciler was away:\n{text}"
    );
}

/// A reconciler killed while a release that never gets healthy starts:
/// its successor keeps the old replicas serving (never stops them first),
/// stops the half-started ones, retries and fails truthfully — under
/// load, with no failed request and never more processes than the two
/// releases' replicas.
#[test]
fn a_reconciler_killed_mid_rollout_never_stops_what_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(tmp.path(), "crash", 2, "");
    let v1 = deploy_with(&home, &repo, "crash");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach", "--health-timeout", "4"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "crash", "served", |s| serving(s, &v1));
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let mut old = pids(&st);
    old.sort_unstable();
    let (stop_load, failed, _, threads) = load(&addr);
    // The new configuration's replicas hang before they listen.
    let file = repo.join("configs/environments/crash.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}HANG: \"yes\"\n")).unwrap();
    git(
        &repo,
        &["commit", "-qam", "a release that never gets healthy"],
    );
    let start = Instant::now();
    while replica_processes("crash").len() < 4 {
        assert!(start.elapsed() < Duration::from_secs(30), "never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(u64::from(reconciler_pid(&home)), "-KILL");
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach", "--health-timeout", "4"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "crash", "failed again", |s| {
        s["reconciler"] == "running"
            && s["message"]
                .as_str()
                .unwrap_or("")
                .contains("keeps serving (2 replica(s))")
    });
    assert_eq!(st["health"], "Healthy", "{st}");
    assert_eq!(st["sync"], "OutOfSync", "{st}");
    let mut now = pids(&st);
    now.sort_unstable();
    assert_eq!(now, old, "the old replicas serve on: {st}");
    // Settled: exactly the old replicas run (the half-started ones of the
    // killed reconciler and the retry's are all stopped).
    let start = Instant::now();
    loop {
        let mut running = replica_processes("crash");
        assert!(running.len() <= 4, "{running:?}");
        running.sort_unstable();
        if running == old {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{running:?} vs {old:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_load.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0, "requests failed");
    assert_eq!(get(&addr, "/").unwrap(), "v1");
    let (_, hist, _) = lw(&home, &repo, &["env", "history", "crash", "--json"]);
    let hist: Value = serde_json::from_str(&hist).unwrap();
    assert_eq!(
        hist.as_array().unwrap().last().unwrap()["result"],
        "failed",
        "{hist}"
    );
}

/// The prune guard: deleting a protected environment's file, or every
/// environment file, does not stop what serves (Argo CD's prune off,
/// `allowEmpty: false`); the refusal shows in status and history and
/// stays. An explicit `--prune` lets the deletions through — also for a
/// reconciler that finds them gone when it starts.
#[test]
fn deleting_a_protected_or_every_environment_file_needs_explicit_prune() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(tmp.path(), "dev", 1, "");
    std::fs::write(
        repo.join("configs/environments/prod.yaml"),
        "replicas: 1\nrun: {command: exec python3 app.py, health_path: /health}\nprotection: {required_reviewers: [release-managers]}\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "prod"]);
    let release = head(&repo);
    let (ok, _, err) = lw(&home, &repo, &["deploy", "dev", "--release", &release]);
    assert!(ok, "{err}");
    let (ok, _, err) = lw(
        &home,
        &repo,
        &["deploy", "prod", "--release", &release, "--approve", "prod"],
    );
    assert!(ok, "{err}");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let prod = wait_status(&home, &repo, "prod", "served", |s| serving(s, &release));
    let dev = wait_status(&home, &repo, "dev", "served", |s| serving(s, &release));
    let prod_addr = prod["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let dev_addr = dev["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();

    git(&repo, &["rm", "-q", "configs/environments/prod.yaml"]);
    git(&repo, &["commit", "-qm", "drop prod"]);
    let st = wait_status(&home, &repo, "prod", "refused", |s| {
        s["message"]
            .as_str()
            .unwrap_or("")
            .contains("the environment is protected")
    });
    assert_eq!(st["sync"], "OutOfSync", "{st}");
    // The reason stays (it is not overwritten by the next refresh).
    std::thread::sleep(Duration::from_secs(1));
    let st = status(&home, &repo, "prod");
    assert!(
        st["message"].as_str().unwrap().contains("keeps serving"),
        "{st}"
    );
    assert_eq!(get(&prod_addr, "/").unwrap(), "v1");
    let (_, hist, _) = lw(&home, &repo, &["env", "history", "prod", "--json"]);
    let hist: Value = serde_json::from_str(&hist).unwrap();
    assert_eq!(
        hist.as_array().unwrap().last().unwrap()["result"],
        "prune-refused",
        "{hist}"
    );

    // Every file gone (the directory deleted): nothing stops.
    git(&repo, &["rm", "-rq", "configs/environments"]);
    git(&repo, &["commit", "-qm", "oops"]);
    wait_status(&home, &repo, "dev", "refused", |s| {
        s["message"]
            .as_str()
            .unwrap_or("")
            .contains("no environment file is left")
    });
    assert_eq!(get(&dev_addr, "/").unwrap(), "v1");
    assert_eq!(get(&prod_addr, "/").unwrap(), "v1");
    assert_eq!(replica_processes("dev").len(), 1);
    assert_eq!(replica_processes("prod").len(), 1);

    // The operator means it: a reconciler with --prune (started after the
    // deletions, so it finds what was left) stops both.
    kill(u64::from(reconciler_pid(&home)), "-KILL");
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach", "--prune"]);
    assert!(ok, "{out}{err}");
    let start = Instant::now();
    while !(replica_processes("dev").is_empty() && replica_processes("prod").is_empty()) {
        assert!(start.elapsed() < Duration::from_secs(20), "not pruned");
        std::thread::sleep(Duration::from_millis(100));
    }
    let start = Instant::now();
    while status(&home, &repo, "prod") != Value::Null {
        assert!(start.elapsed() < Duration::from_secs(10), "status left");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, hist, _) = lw(&home, &repo, &["env", "history", "prod", "--json"]);
    let hist: Value = serde_json::from_str(&hist).unwrap();
    assert_eq!(
        hist.as_array().unwrap().last().unwrap()["result"],
        "removed",
        "{hist}"
    );
}

/// Rollback goes to the last version that served, never to one that
/// failed — not even when run twice — and status and history show the
/// model that serves.
#[test]
fn rollback_goes_to_the_last_version_that_served() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let weights = tmp.path().join("weights.json");
    std::fs::write(&weights, "{\"w\": 1}").unwrap();
    let out = bin()
        .args(["model", "register", "Churn"])
        .arg(&weights)
        .env("LAUNCHWAY_HOME", &home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let repo = app_repo(tmp.path(), "rb", 1, "model_name: Churn\nmodel_version: 1\n");
    let v1 = deploy_with(&home, &repo, "rb");
    let good = head(&repo);
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach", "--health-timeout", "5"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "rb", "served", |s| serving(s, &v1));
    assert_eq!(st["model"], "Churn@1", "{st}");

    // A release that cannot start: it fails, v1 keeps serving.
    std::fs::write(repo.join("version.txt"), "broken\n").unwrap();
    git(&repo, &["commit", "-qam", "broken"]);
    deploy_with(&home, &repo, "rb");
    let bad = head(&repo);
    wait_status(&home, &repo, "rb", "failed", |s| {
        s["message"].as_str().unwrap_or("").contains("failed")
    });
    let (ok, _, err) = lw(&home, &repo, &["rollback", "rb", "--to", &bad]);
    assert!(!ok);
    assert!(err.contains("was deployed and failed"), "{err}");
    let (ok, _, err) = lw(&home, &repo, &["rollback", "rb"]);
    assert!(ok, "{err}");
    let rolled = head(&repo);
    let st = wait_status(&home, &repo, "rb", "rolled back", |s| {
        serving(s, &v1) && s["revision"].as_str() == Some(rolled.as_str())
    });
    assert!(!st["message"].as_str().unwrap().contains("failed"), "{st}");
    // Again: the only earlier versions are the failed one and what runs.
    let (ok, _, err) = lw(&home, &repo, &["rollback", "rb"]);
    assert!(!ok, "flipped back to the failed version");
    assert!(
        err.contains("no earlier version") && err.contains("failed"),
        "{err}"
    );
    assert_eq!(head(&repo), rolled, "nothing was committed");
    let (_, hist, _) = lw(&home, &repo, &["env", "history", "rb", "--json"]);
    let hist: Value = serde_json::from_str(&hist).unwrap();
    let hist = hist.as_array().unwrap();
    assert_eq!(hist[0]["model"], "Churn@1", "{hist:?}");
    assert_eq!(
        hist.iter()
            .map(|h| h["result"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["succeeded", "failed", "succeeded"]
    );
    let _ = good;
    // A hand edit that pins a model version the registry lacks is not
    // deployed (it would serve without its model); what runs stays.
    let file = repo.join("configs/environments/rb.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("model_version: 1", "model_version: 999"),
    )
    .unwrap();
    git(
        &repo,
        &["commit", "-qam", "pin a model that does not exist"],
    );
    let st = wait_status(&home, &repo, "rb", "refused", |s| {
        s["message"]
            .as_str()
            .unwrap_or("")
            .contains("no version 999")
    });
    assert_eq!(st["sync"], "OutOfSync", "{st}");
    assert_eq!(st["model"], "Churn@1", "{st}");
}

/// A tag written by hand in `release:` is pinned to its commit when the
/// reconciler reads it: a tag that moves is a change, deployed and
/// recorded. A deploy to a branch the reconciler does not follow says so.
#[test]
fn a_moved_tag_is_noticed_and_an_unfollowed_branch_is_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(tmp.path(), "tagged", 1, "release: v1\n");
    git(&repo, &["tag", "v1"]);
    let first = head(&repo);
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach", "--interval", "1"]);
    assert!(ok, "{out}{err}");
    wait_status(&home, &repo, "tagged", "served", |s| serving(s, &first));
    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-qam", "v2"]);
    git(&repo, &["tag", "-f", "v1"]);
    let second = head(&repo);
    let st = wait_status(&home, &repo, "tagged", "moved", |s| serving(s, &second));
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    assert_eq!(get(&addr, "/").unwrap(), "v2");
    let (_, hist, _) = lw(&home, &repo, &["env", "history", "tagged", "--json"]);
    let hist: Value = serde_json::from_str(&hist).unwrap();
    assert_eq!(hist.as_array().unwrap().len(), 2, "{hist}");

    let (ok, _, err) = lw(
        &home,
        &repo,
        &[
            "deploy",
            "tagged",
            "--set",
            "replicas=2",
            "--branch",
            "environments",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("warning: the reconciler here follows") && err.contains("not 'environments'"),
        "{err}"
    );
}

fn dataplane_pid(home: &Path) -> u32 {
    for e in std::fs::read_dir(home.join("environments"))
        .unwrap()
        .flatten()
    {
        if let Ok(t) = std::fs::read_to_string(e.path().join("dataplane.pid")) {
            return t.trim().parse().unwrap();
        }
    }
    panic!("no dataplane.pid under {}", home.display());
}

/// Status and history follow every transition, and each reason stays
/// until the state changes: an invalid commit (what runs stays), scale to
/// zero and back, a data plane killed outright (started again on the same
/// address), a move to another target (the local replicas stop).
#[test]
fn status_and_history_follow_every_transition() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(tmp.path(), "life", 1, "");
    let v1 = deploy_with(&home, &repo, "life");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "life", "served", |s| serving(s, &v1));
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let file = repo.join("configs/environments/life.yaml");
    let edit = |from: &str, to: &str, msg: &str| {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(from), "{text}");
        std::fs::write(&file, text.replacen(from, to, 1)).unwrap();
        git(&repo, &["commit", "-qam", msg]);
    };
    let last = || {
        let (_, hist, _) = lw(&home, &repo, &["env", "history", "life", "--json"]);
        let hist: Value = serde_json::from_str(&hist).unwrap();
        hist.as_array().unwrap().last().unwrap().clone()
    };

    edit("replicas: 1", "replicas: -3", "invalid");
    wait_status(&home, &repo, "life", "invalid", |s| {
        s["sync"] == "OutOfSync"
            && s["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("invalid at")
    });
    std::thread::sleep(Duration::from_secs(1));
    let st = status(&home, &repo, "life");
    assert!(
        st["message"].as_str().unwrap().starts_with("invalid at"),
        "the reason stays: {st}"
    );
    assert_eq!(last()["result"], "invalid");
    assert_eq!(get(&addr, "/").unwrap(), "v1", "what runs stays");

    edit("replicas: -3", "replicas: 0", "scale to zero");
    let st = wait_status(&home, &repo, "life", "scaled to zero", |s| {
        s["sync"] == "Synced" && s["replicas"].as_array().is_some_and(Vec::is_empty)
    });
    assert_eq!(st["health"], "Healthy", "{st}");
    assert!(replica_processes("life").is_empty());
    assert!(
        get(&addr, "/").unwrap_err().contains("503"),
        "nothing serves"
    );

    edit("replicas: 0", "replicas: 1", "scale up");
    wait_status(&home, &repo, "life", "scaled up", |s| {
        s["sync"] == "Synced"
            && s["health"] == "Healthy"
            && s["replicas"].as_array().is_some_and(|r| r.len() == 1)
    });
    assert_eq!(get(&addr, "/").unwrap(), "v1");

    // The data plane killed outright: the reconciler starts another on
    // the same address and routes it again.
    kill(u64::from(dataplane_pid(&home)), "-KILL");
    let start = Instant::now();
    while get(&addr, "/").ok().as_deref() != Some("v1") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the address never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    edit(
        "replicas: 1",
        "replicas: 1\ntarget: kubernetes\nimage: x/y:1",
        "to the cluster",
    );
    let st = wait_status(&home, &repo, "life", "moved", |s| s["sync"] == "Unknown");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("target kubernetes"),
        "{st}"
    );
    let start = Instant::now();
    while !replica_processes("life").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "local replicas left running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let h = last();
    assert_eq!(h["result"], "removed", "{h}");
    assert!(
        h["message"].as_str().unwrap().contains("target changed"),
        "{h}"
    );
}

const CANARY: &str = "strategy:
  canary:
    steps:
      - set_weight: 20
      - pause: {duration: 1s}
      - analysis: {templates: [error-rate]}
      - set_weight: 50
      - pause: {duration: 1s}
      - set_weight: 100
    stable_replicas: 1
analysis_templates:
  error-rate:
    metric: error_rate
    interval: 1s
    count: 2
    failure_limit: 0
    success_condition: result < 0.05
";

/// A canary under steady load: 20% → analysis → 50% → 100%, no request
/// lost, both releases answering along the way. Then a canary that fails
/// 20% of its requests is aborted by its analysis: traffic back to stable,
/// the canary stopped, and git reverted by the reconciler (with the
/// reason in the message), so git says what runs.
#[test]
fn a_canary_goes_to_100_under_load_and_a_failing_one_is_aborted_and_reverted() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(tmp.path(), "shop", 2, CANARY);
    let v1 = deploy_with(&home, &repo, "shop");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "shop", "served", |s| serving(s, &v1));
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let (stop_load, failed, seen, threads) = load(&addr);

    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-qam", "v2"]);
    let v2 = deploy_with(&home, &repo, "shop");
    // The tester's header reaches the canary while it runs.
    let start = Instant::now();
    loop {
        let (_, out, _) = lw(&home, &repo, &["rollout", "status", "shop", "--json"]);
        let r: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        if r["canary"] == v2.as_str() && r["weight"] == 20 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{out}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // stable_replicas: 1 — one stable replica and the canary while it runs.
    let start = Instant::now();
    while replica_processes("shop").len() != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            replica_processes("shop")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Launchway-Canary: always\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.ends_with("v2"), "{text}");
    let st = wait_status(&home, &repo, "shop", "promoted", |s| serving(s, &v2));
    assert_eq!(pids(&st).len(), 2, "the full replica count: {st}");
    stop_load.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0, "requests were lost");
    let bodies = seen.lock().unwrap();
    assert!(bodies.iter().any(|b| b == "v1") && bodies.iter().any(|b| b == "v2"));
    drop(bodies);
    let (_, out, _) = lw(&home, &repo, &["rollout", "status", "shop", "--json"]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["phase"], "Promoted", "{r}");
    // Per-revision traffic from the data plane: the new release takes it all.
    let t = r["traffic"].as_array().unwrap();
    assert_eq!(t.len(), 1, "{r}");
    assert_eq!(t[0]["weight"], 100, "{r}");
    assert!(t[0]["latency_p99"].as_f64().is_some(), "{r}");
    assert!(
        r["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["outcome"] == "Successful"),
        "{r}"
    );

    // A canary that fails one request in five.
    let (stop_load, _, seen, threads) = load(&addr);
    let file = repo.join("configs/environments/shop.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}env: {{FAIL_EVERY: \"5\"}}\n")).unwrap();
    git(&repo, &["commit", "-qam", "fail one in five"]);
    let bad = head(&repo);
    let start = Instant::now();
    let reverted = loop {
        let subject = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["log", "-1", "--format=%H %s"])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&subject.stdout).trim().to_string();
        if line.contains("rollout aborted") {
            break line;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never reverted: {line}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(reverted.contains("error-rate"), "{reverted}");
    let revert = reverted.split(' ').next().unwrap().to_string();
    let st = wait_status(&home, &repo, "shop", "reverted", |s| {
        serving(s, &v2) && s["revision"].as_str() == Some(revert.as_str())
    });
    assert_eq!(pids(&st).len(), 2, "{st}");
    stop_load.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    drop(seen);
    let (_, hist, _) = lw(&home, &repo, &["env", "history", "shop", "--json"]);
    let hist: Value = serde_json::from_str(&hist).unwrap();
    let aborted = hist
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["result"] == "aborted")
        .unwrap_or_else(|| panic!("{hist}"));
    assert_eq!(aborted["revision"], bad.as_str(), "{hist}");
    // Exactly the stable replicas run: the canary is gone.
    let start = Instant::now();
    while replica_processes("shop").len() != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            replica_processes("shop")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A reconciler killed mid-rollout: the data plane keeps the canary's
/// share, the next reconciler takes the canary over and resumes at the
/// same step (here an indefinite pause), and `rollout promote` finishes
/// it — no request lost throughout.
#[test]
fn a_canary_resumes_at_its_step_after_the_reconciler_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(
        tmp.path(),
        "paused",
        2,
        "strategy: {canary: {steps: [{set_weight: 20}, {pause: {}}, {set_weight: 100}]}}\n",
    );
    let v1 = deploy_with(&home, &repo, "paused");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "paused", "served", |s| serving(s, &v1));
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let (stop_load, failed, seen, threads) = load(&addr);
    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-qam", "v2"]);
    let v2 = deploy_with(&home, &repo, "paused");
    let rollout = || {
        let (_, out, _) = lw(&home, &repo, &["rollout", "status", "paused", "--json"]);
        serde_json::from_str::<Value>(&out).unwrap_or(Value::Null)
    };
    let start = Instant::now();
    while rollout()["phase"] != "Paused" {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", rollout());
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = replica_processes("paused");
    assert_eq!(before.len(), 3, "2 stable + 1 canary");
    kill(u64::from(reconciler_pid(&home)), "-KILL");
    std::thread::sleep(Duration::from_millis(500));
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let start = Instant::now();
    loop {
        let r = rollout();
        if r["phase"] == "Paused" && r["message"].as_str().unwrap_or("").contains("paused") {
            assert_eq!(r["step"], 1, "{r}");
            assert_eq!(r["weight"], 20, "{r}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut now = replica_processes("paused");
    now.sort_unstable();
    let mut was = before.clone();
    was.sort_unstable();
    assert_eq!(now, was, "the same processes, canary included");
    let (ok, out, err) = lw(&home, &repo, &["rollout", "promote", "paused"]);
    assert!(ok, "{out}{err}");
    wait_status(&home, &repo, "paused", "promoted", |s| serving(s, &v2));
    stop_load.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0, "requests were lost");
    assert!(seen.lock().unwrap().iter().any(|b| b == "v2"));
    let (ok, _, err) = lw(&home, &repo, &["rollout", "promote", "paused"]);
    assert!(!ok && err.contains("no rollout is in progress"), "{err}");
}

/// Blue-green under load: the new release answers at its preview address
/// while the stable address keeps the old one; `rollout promote` switches
/// at once; `rollout undo` while the old release is warm switches back
/// instantly (the same old processes, nothing started) and git is
/// reverted. No request lost.
#[test]
fn blue_green_previews_switches_and_undoes_instantly() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(
        tmp.path(),
        "bg",
        2,
        "strategy: {blue_green: {auto_promote: false, scale_down_delay: 60s}}\n",
    );
    let v1 = deploy_with(&home, &repo, "bg");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "bg", "served", |s| serving(s, &v1));
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let mut blue = pids(&st);
    blue.sort_unstable();
    let (stop_load, failed, seen, threads) = load(&addr);
    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-qam", "v2"]);
    deploy_with(&home, &repo, "bg");
    let rollout = || {
        let (_, out, _) = lw(&home, &repo, &["rollout", "status", "bg", "--json"]);
        serde_json::from_str::<Value>(&out).unwrap_or(Value::Null)
    };
    let start = Instant::now();
    let preview = loop {
        let r = rollout();
        if r["phase"] == "Paused" && r["strategy"] == "blue-green" {
            break r["preview"]
                .as_str()
                .unwrap()
                .trim_start_matches("http://")
                .to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{r}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        get(&preview, "/").unwrap(),
        "v2",
        "the preview answers the new release"
    );
    assert_eq!(
        get(&addr, "/").unwrap(),
        "v1",
        "the stable address does not, yet"
    );
    let (ok, out, err) = lw(&home, &repo, &["rollout", "promote", "bg"]);
    assert!(ok, "{out}{err}");
    let start = Instant::now();
    while rollout()["phase"] != "Switched" {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", rollout());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(&addr, "/").unwrap(), "v2");
    let mut warm = replica_processes("bg");
    warm.sort_unstable();
    assert!(
        blue.iter().all(|p| warm.contains(p)),
        "blue stays warm: {warm:?}"
    );

    let (ok, out, err) = lw(&home, &repo, &["rollout", "undo", "bg"]);
    assert!(ok, "{out}{err}");
    let start = Instant::now();
    while get(&addr, "/").ok().as_deref() != Some("v1") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "not switched back"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let switched_back = start.elapsed();
    let start = Instant::now();
    let reverted = loop {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["log", "-1", "--format=%H %s"])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if line.contains("rollout aborted") && line.contains("undone") {
            break line;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never reverted: {line}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let revert = reverted.split(' ').next().unwrap().to_string();
    let st = wait_status(&home, &repo, "bg", "back on blue", |s| {
        serving(s, &v1) && s["revision"].as_str() == Some(revert.as_str())
    });
    let mut now = pids(&st);
    now.sort_unstable();
    assert_eq!(now, blue, "the same blue processes serve again");
    stop_load.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0, "requests were lost");
    assert!(seen.lock().unwrap().iter().any(|b| b == "v2"));
    assert!(switched_back < Duration::from_secs(2), "{switched_back:?}");
    let start = Instant::now();
    while replica_processes("bg").len() != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "green left running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A real Prometheus (Debian's) scrapes the data plane's per-revision
/// metrics; a canary's `prometheus` analysis queries it and aborts a
/// canary that fails one request in five.
#[test]
fn a_prometheus_analysis_aborts_a_failing_canary() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let metrics = free_port();
    let prom_port = free_port();
    let strategy = format!(
        "strategy:
  canary:
    steps:
      - set_weight: 50
      - analysis: {{templates: [errors]}}
      - set_weight: 100
    on_failure: hold
analysis_templates:
  errors:
    provider: prometheus
    address: http://127.0.0.1:{prom_port}
    query: sum(rate(launchway_proxy_errors{{revision=\"{{{{canary}}}}\"}}[10s])) / sum(rate(launchway_proxy_requests{{revision=\"{{{{canary}}}}\"}}[10s]))
    interval: 2s
    count: 3
    failure_limit: 0
    inconclusive_limit: 10
    success_condition: result < 0.05
"
    );
    let repo = app_repo(tmp.path(), "prom", 1, &strategy);
    let v1 = deploy_with(&home, &repo, "prom");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(
        &home,
        &repo,
        &[
            "sync",
            "--detach",
            "--metrics-listen",
            &format!("127.0.0.1:{metrics}"),
        ],
    );
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "prom", "served", |s| serving(s, &v1));
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    std::fs::write(
        tmp.path().join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: launchway\n    static_configs: [{{targets: ['127.0.0.1:{metrics}']}}]\n"
        ),
    )
    .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _prometheus = Kill(
        std::process::Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                tmp.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is needed (apt-get install prometheus; .ci/run installs it)"),
    );
    // Prometheus up and scraping the data plane before the canary starts.
    let start = Instant::now();
    while !get(&format!("127.0.0.1:{prom_port}"), "/api/v1/query?query=up")
        .is_ok_and(|b| b.contains("\"1\"]"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Prometheus never scraped"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (stop_load, _, _, threads) = load(&addr);
    // The metrics endpoint serves per-revision counters and latency.
    let text = get(&format!("127.0.0.1:{metrics}"), "/metrics").unwrap();
    assert!(
        text.contains("launchway_request_duration_seconds_bucket{environment=\"prom\""),
        "{text}"
    );
    let file = repo.join("configs/environments/prom.yaml");
    let body = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{body}env: {{FAIL_EVERY: \"5\"}}\n")).unwrap();
    git(&repo, &["commit", "-qam", "fail one in five"]);
    let start = Instant::now();
    let r = loop {
        let (_, out, _) = lw(&home, &repo, &["rollout", "status", "prom", "--json"]);
        let r: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        if r["phase"] == "Aborted" {
            break r;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "{r}");
        std::thread::sleep(Duration::from_millis(200));
    };
    stop_load.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let failed = r["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["outcome"] == "Failed")
        .unwrap_or_else(|| panic!("{r}"));
    let value: f64 = failed["value"].as_str().unwrap().parse().unwrap();
    assert!((0.1..0.3).contains(&value), "about one in five: {r}");
    let st = wait_status(&home, &repo, "prom", "held", |s| s["health"] == "Degraded");
    assert!(st["message"].as_str().unwrap().contains("held"), "{st}");
    assert_eq!(get(&addr, "/").unwrap(), "v1", "stable serves");
}

/// Model-aware analysis: the canary's answers are compared with the
/// stable's (population stability index of the predicted probabilities);
/// a model whose predictions shifted is aborted, though it never fails a
/// request.
#[test]
fn a_canary_whose_predictions_drift_is_aborted() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(
        tmp.path(),
        "model",
        1,
        "strategy:
  canary:
    steps: [{set_weight: 50}, {analysis: {templates: [drift]}}, {set_weight: 100}]
    on_failure: hold
analysis_templates:
  drift:
    metric: prediction_drift
    json_path: $.predictions[*].p
    interval: 2s
    count: 1
    inconclusive_limit: 10
    success_condition: result < 0.1
",
    );
    let v1 = deploy_with(&home, &repo, "model");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "model", "served", |s| serving(s, &v1));
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (stop, failures, addr) = (stop.clone(), failures.clone(), addr.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if get(&addr, "/predict").is_err() {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    let file = repo.join("configs/environments/model.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}env: {{SHIFT: \"0.4\"}}\n")).unwrap();
    git(&repo, &["commit", "-qam", "a model that predicts higher"]);
    let start = Instant::now();
    let r = loop {
        let (_, out, _) = lw(&home, &repo, &["rollout", "status", "model", "--json"]);
        let r: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        if r["phase"] == "Aborted" {
            break r;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{r}");
        std::thread::sleep(Duration::from_millis(100));
    };
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(failures.load(Ordering::SeqCst), 0, "no request failed");
    let failed = r["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["outcome"] == "Failed")
        .unwrap_or_else(|| panic!("{r}"));
    let psi: f64 = failed["value"].as_str().unwrap().parse().unwrap();
    assert!(psi > 0.25, "a large shift: {r}");
    // Held: nothing retries it by itself; `rollout retry` runs it again.
    let (ok, out, err) = lw(&home, &repo, &["rollout", "retry", "model"]);
    assert!(ok, "{out}{err}");
    let start = Instant::now();
    loop {
        let (_, out, _) = lw(&home, &repo, &["rollout", "status", "model", "--json"]);
        let again: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        if again["started_at"] != r["started_at"] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not retried: {again}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `launchway/deploy` with `wait: started`: the step ends once the
/// canary takes its share (the pipeline does not sit through the pauses),
/// saying so; the rollout goes on and is promoted by hand.
#[test]
fn a_deploy_step_can_wait_only_until_the_rollout_started() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(
        tmp.path(),
        "web",
        1,
        "strategy: {canary: {steps: [{set_weight: 50}, {pause: {}}, {set_weight: 100}]}}\n",
    );
    let v1 = deploy_with(&home, &repo, "web");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    wait_status(&home, &repo, "web", "served", |s| serving(s, &v1));
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(
        repo.join(".github/workflows/deploy.yml"),
        "on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: launchway/deploy@v1\n        with:\n          environment: web\n          wait: started\n",
    )
    .unwrap();
    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "v2 and its pipeline"]);
    let v2 = head(&repo);
    let out = bin()
        .args(["run", "--json", "-C"])
        .arg(&repo)
        .env("LAUNCHWAY_HOME", &home)
        .env("GIT_AUTHOR_NAME", "Mona")
        .env("GIT_AUTHOR_EMAIL", "mona@example.com")
        .env("GIT_COMMITTER_NAME", "Mona")
        .env("GIT_COMMITTER_EMAIL", "mona@example.com")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, status, _) = lw(&home, &repo, &["rollout", "status", "web", "--json"]);
    let r: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(r["phase"], "Paused", "the step returned mid-rollout: {r}");
    assert_eq!(r["canary"], v2.as_str(), "{r}");
    let (ok, out, err) = lw(&home, &repo, &["rollout", "promote", "web"]);
    assert!(ok, "{out}{err}");
    wait_status(&home, &repo, "web", "promoted", |s| serving(s, &v2));
}

/// A blue-green rollout waiting for its promotion survives a killed
/// reconciler: the next one takes the green replicas and the preview
/// address over and waits on; the promotion then switches as usual.
#[test]
fn a_blue_green_rollout_resumes_after_the_reconciler_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(
        tmp.path(),
        "bgr",
        1,
        "strategy: {blue_green: {auto_promote: false, scale_down_delay: 60s}}\n",
    );
    let v1 = deploy_with(&home, &repo, "bgr");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let st = wait_status(&home, &repo, "bgr", "served", |s| serving(s, &v1));
    let blue = replica_processes("bgr");
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-qam", "v2"]);
    let v2 = deploy_with(&home, &repo, "bgr");
    let rollout = || {
        let (_, out, _) = lw(&home, &repo, &["rollout", "status", "bgr", "--json"]);
        serde_json::from_str::<Value>(&out).unwrap_or(Value::Null)
    };
    let start = Instant::now();
    while rollout()["phase"] != "Paused" {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", rollout());
        std::thread::sleep(Duration::from_millis(50));
    }
    let preview = rollout()["preview"].as_str().unwrap().to_string();
    let mut before = replica_processes("bgr");
    before.sort_unstable();
    assert_eq!(before.len(), 2, "blue and green");
    kill(u64::from(reconciler_pid(&home)), "-KILL");
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let start = Instant::now();
    loop {
        let r = rollout();
        if r["phase"] == "Paused"
            && r["message"].as_str().unwrap_or("").contains("promote")
            && r["started_at"].as_u64().is_some()
        {
            assert_eq!(r["preview"].as_str(), Some(preview.as_str()), "{r}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut now = replica_processes("bgr");
    now.sort_unstable();
    assert_eq!(now, before, "the same blue and green processes");
    assert_eq!(get(&addr, "/").unwrap(), "v1");
    assert_eq!(
        get(preview.trim_start_matches("http://"), "/").unwrap(),
        "v2"
    );
    let (ok, out, err) = lw(&home, &repo, &["rollout", "promote", "bgr"]);
    assert!(ok, "{out}{err}");
    let start = Instant::now();
    while rollout()["phase"] != "Switched" {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", rollout());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(&addr, "/").unwrap(), "v2");
    // Killed again during the warm window: the successor keeps the
    // previous release warm (the same process), and `rollout undo` still
    // switches back at once — with git reverted, so it says what runs.
    kill(u64::from(reconciler_pid(&home)), "-KILL");
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let start = Instant::now();
    loop {
        let r = rollout();
        if r["phase"] == "Switched" && r["message"].as_str().unwrap_or("").contains("resumed") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(45),
            "{r}\n{}",
            reconciler_logs(&home)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut now = replica_processes("bgr");
    now.sort_unstable();
    assert_eq!(now, before, "blue still warm, green serving");
    assert_eq!(get(&addr, "/").unwrap(), "v2");
    wait_status(&home, &repo, "bgr", "green serves", |s| serving(s, &v2));
    let (ok, out, err) = lw(&home, &repo, &["rollout", "undo", "bgr"]);
    assert!(ok, "{out}{err}");
    let start = Instant::now();
    while get(&addr, "/").ok().as_deref() != Some("v1") {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", rollout());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The same blue process answers: no start-up was needed.
    let start = Instant::now();
    while replica_processes("bgr") != blue {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?} vs {blue:?}",
            replica_processes("bgr")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The revert commit follows the switch back (the reconciler makes it
    // once the window's task has ended).
    let start = Instant::now();
    loop {
        let log = std::process::Command::new("git")
            .args(["-C", repo.to_str().unwrap(), "log", "-1", "--format=%s"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&log.stdout).to_string();
        if log.contains("rollback bgr: rollout aborted") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{log}\n{}",
            reconciler_logs(&home)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_status(&home, &repo, "bgr", "reverted and synced", |s| {
        serving(s, &v1) && s["sync"] == "Synced"
    });
}

/// A warm window that outlives its reconciler ends on time under the
/// next one: the previous release stops when `scale_down_delay` is up.
#[test]
fn a_resumed_warm_window_ends_on_time() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = app_repo(
        tmp.path(),
        "bgw",
        1,
        "strategy: {blue_green: {auto_promote: true, scale_down_delay: 8s}}\n",
    );
    let v1 = deploy_with(&home, &repo, "bgw");
    let _stop = Stop(&home, &repo);
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    wait_status(&home, &repo, "bgw", "served", |s| serving(s, &v1));
    let blue = replica_processes("bgw");
    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-qam", "v2"]);
    let v2 = deploy_with(&home, &repo, "bgw");
    let rollout = || {
        let (_, out, _) = lw(&home, &repo, &["rollout", "status", "bgw", "--json"]);
        serde_json::from_str::<Value>(&out).unwrap_or(Value::Null)
    };
    let start = Instant::now();
    while rollout()["phase"] != "Switched" {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", rollout());
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(u64::from(reconciler_pid(&home)), "-KILL");
    let (ok, out, err) = lw(&home, &repo, &["sync", "--detach"]);
    assert!(ok, "{out}{err}");
    let start = Instant::now();
    loop {
        let r = rollout();
        if r["message"].as_str().unwrap_or("").contains("resumed") {
            assert!(
                blue.iter().all(|p| replica_processes("bgw").contains(p)),
                "blue kept warm: {r}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(8), "{r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let start = Instant::now();
    while rollout()["phase"] != "Promoted" {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", rollout());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(blue.iter().all(|p| !replica_processes("bgw").contains(p)));
    wait_status(&home, &repo, "bgw", "green serves", |s| {
        serving(s, &v2) && s["sync"] == "Synced"
    });
}
