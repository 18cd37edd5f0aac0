//! `launchway sync ENV`: an environment run on this machine from its
//! committed config — releases switched behind the stable address with
//! no failed request, a release that never gets healthy not switched to,
//! a killed replica restarted.

#![allow(clippy::unwrap_used)]

mod common;
use common::{bin, commit_all, git};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const APP: &str = r#"import http.server, os, socketserver, sys, time
version = open("version.txt").read().strip()
if version == "broken":
    sys.exit(3)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok" if self.path == "/health" else version.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
print(f"serving {version} on port {os.environ['PORT']}", flush=True)
S(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// One GET over a fresh connection: the body, or why it failed.
fn get(addr: &str, path: &str) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    if !text
        .lines()
        .next()
        .is_some_and(|l| l.starts_with("HTTP/1.") && l.contains(" 200 "))
    {
        return Err(text.lines().next().unwrap_or("").to_string());
    }
    Ok(text.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

fn deploy(repo: &Path) {
    let out = bin()
        .args(["deploy", "dev", "--release", "HEAD", "-C"])
        .arg(repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_for(rx: &mpsc::Receiver<String>, what: &str) -> String {
    let start = Instant::now();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60).saturating_sub(start.elapsed()))
            .unwrap_or_else(|_| panic!("never saw {what}"));
        if line.contains(what) {
            return line;
        }
    }
}

#[test]
fn releases_switch_without_failed_requests_and_replicas_heal() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("configs/environments")).unwrap();
    std::fs::write(repo.join("app.py"), APP).unwrap();
    std::fs::write(repo.join("version.txt"), "v1\n").unwrap();
    std::fs::write(
        repo.join("configs/environments/dev.yaml"),
        "environment: development\nreplicas: 2\nrun: {command: python3 app.py, health_path: /health}\n",
    )
    .unwrap();
    commit_all(&repo);
    deploy(&repo);

    let mut sync = bin()
        .args([
            "sync",
            "dev",
            "--interval",
            "1",
            "--health-timeout",
            "20",
            "-C",
        ])
        .arg(&repo)
        .env("LAUNCHWAY_HOME", tmp.path().join("home"))
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
    let addr = wait_for(&rx, "at http://")
        .rsplit("http://")
        .next()
        .unwrap()
        .to_string();
    wait_for(&rx, "Healthy");
    assert_eq!(get(&addr, "/").unwrap(), "v1");

    // Steady load while releases change.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, failed, seen, addr) =
                (stop.clone(), failed.clone(), seen.clone(), addr.clone());
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

    // A new commit, deployed through git: served with no failed request.
    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-qam", "v2"]);
    deploy(&repo);
    wait_for(&rx, "Healthy");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(seen.lock().unwrap().last().map(String::as_str), Some("v2"));

    // A release that never gets healthy is not switched to.
    std::fs::write(repo.join("version.txt"), "broken\n").unwrap();
    git(&repo, &["commit", "-qam", "broken"]);
    deploy(&repo);
    let line = wait_for(&rx, "deployment failed");
    assert!(line.contains("exited"), "{line}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        get(&addr, "/").unwrap(),
        "v2",
        "the old release keeps serving"
    );
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no request failed");
    assert!(seen.lock().unwrap().len() > 50);

    // A killed replica is restarted; the environment answers throughout.
    // (Its process id comes from the runtime's state file.)
    let state_file = tmp.path().join("home/environments/state/dev.json");
    let pids = || -> Vec<u64> {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap_or_default())
                .unwrap_or_default();
        v["replicas"]
            .as_array()
            .map(|rs| rs.iter().filter_map(|r| r["pid"].as_u64()).collect())
            .unwrap_or_default()
    };
    let before = pids();
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", &before[0].to_string()])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    loop {
        let now = pids();
        if now.len() == 2 && !now.contains(&before[0]) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the replica was not restarted: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..20 {
        assert_eq!(get(&addr, "/").unwrap(), "v2");
    }

    // Each replica's output is kept.
    let logs = bin()
        .args(["env", "logs", "dev", "-C"])
        .arg(&repo)
        .env("LAUNCHWAY_HOME", tmp.path().join("home"))
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.contains("replica-0 | serving v1 on port") && logs.contains("serving v2"),
        "{logs}"
    );

    // Ctrl-C stops the replicas.
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &sync.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = sync.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(get(&addr, "/").is_err(), "nothing listens any more");
}
