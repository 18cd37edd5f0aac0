//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

pub mod server;
pub mod webdriver;

use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The `launchway` binary, isolated from the environment it runs in.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_launchway"));
    c.env_remove("GITHUB_ACTIONS").env("NO_COLOR", "1");
    c
}

/// `git` with a fixed identity.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Mona")
        .env("GIT_AUTHOR_EMAIL", "mona@example.com")
        .env("GIT_COMMITTER_NAME", "Mona")
        .env("GIT_COMMITTER_EMAIL", "mona@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `dir` a repository with everything in it committed on `main`.
pub fn commit_all(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "fixture"]);
}

/// A folder under `dir` that workflow steps may write to: on a server they
/// run as the local agent's user, inside a sandbox that only lets them
/// write where they were allowed (side effects tests look at go here).
pub fn shared_dir(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = dir.join("shared");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mode = std::fs::metadata(dir).unwrap().permissions().mode();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o755)).unwrap();
    d
}

/// A step's part of its job's log file.
pub fn step_log(run_dir: &Path, step: &Value) -> String {
    let Some(l) = step["log"].as_str() else {
        return String::new();
    };
    let bytes = std::fs::read(run_dir.join(l)).unwrap_or_default();
    let a = step["log_start"].as_u64().unwrap() as usize;
    let b = step["log_end"].as_u64().unwrap() as usize;
    String::from_utf8_lossy(&bytes[a..b]).into_owned()
}

/// A Python tool installed from PyPI into a virtualenv under the target
/// dir, once per target dir (`spec` as pip takes it); the venv's path.
pub fn pip_venv(name: &str, spec: &str) -> std::path::PathBuf {
    // Tests of one binary run on parallel threads: one makes it at a time.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if !venv.join(".ready").exists() {
        assert!(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .unwrap()
                .success()
        );
        let out = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", spec])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "installing {spec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(venv.join(".ready"), "").unwrap();
    }
    venv
}

/// A tiny HTTP service for deployment tests: `GET /` answers the release's
/// `version.txt`, `/health` "ok", `/secret` whether `DB_PASSWORD` reached
/// it (its length only); `version.txt` "broken" exits at start, `HANG`
/// set never answers.
pub const SERVICE_APP: &str = r#"import http.server, itertools, json, os, random, socketserver, sys, time
version = open("version.txt").read().strip()
fail_every = int(os.environ.get("FAIL_EVERY") or 0)
served = itertools.count(1)
if version == "broken":
    sys.exit(3)
if os.environ.get("HANG"):
    time.sleep(3600)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200
        if self.path == "/predict":
            # A model's answers: probabilities, shifted by SHIFT.
            p = min(1.0, random.random() * 0.5 + float(os.environ.get("SHIFT") or 0))
            body = json.dumps({"predictions": [{"p": p}]}).encode()
        elif self.path == "/secret":
            pw = os.environ.get("DB_PASSWORD")
            body = ("missing" if pw is None else f"length {len(pw)}").encode()
        else:
            body = b"ok" if self.path == "/health" else version.encode()
            if fail_every and self.path != "/health" and next(served) % fail_every == 0:
                status, body = 500, b"failed on purpose"
        self.send_response(status)
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

/// Every file under `dir` (whatever its owner, when run as root) holding
/// `needle`, but those named in `except`.
pub fn files_holding(dir: &Path, needle: &str, except: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file()
                && !except.iter().any(|x| p.ends_with(x))
                && std::fs::read(&p)
                    .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

/// One GET over a fresh connection: the body, or why it failed.
pub fn get(addr: &str, path: &str) -> Result<String, String> {
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

/// `launchway` with a home and a commit identity.
pub fn lw(home: &Path, repo: &Path, args: &[&str]) -> (bool, String, String) {
    let out = bin()
        .args(args)
        .arg("-C")
        .arg(repo)
        .env("LAUNCHWAY_HOME", home)
        .env("GIT_AUTHOR_NAME", "Mona")
        .env("GIT_AUTHOR_EMAIL", "mona@example.com")
        .env("GIT_COMMITTER_NAME", "Mona")
        .env("GIT_COMMITTER_EMAIL", "mona@example.com")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The reconciler's view of `env`.
pub fn status(home: &Path, repo: &Path, env: &str) -> Value {
    let (_, out, _) = lw(home, repo, &["env", "status", "--json"]);
    serde_json::from_str::<Value>(&out)
        .ok()
        .and_then(|v| {
            v.as_array()?
                .iter()
                .find(|s| s["environment"] == env)
                .cloned()
        })
        .unwrap_or(Value::Null)
}

/// Waits until `env`'s status satisfies `ok`; returns it.
pub fn wait_status(
    home: &Path,
    repo: &Path,
    env: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let st = status(home, repo, env);
        if ok(&st) {
            return st;
        }
        if start.elapsed() > Duration::from_secs(60) {
            // What the reconcilers said, for the failure message.
            for e in std::fs::read_dir(home.join("environments"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let log =
                    std::fs::read_to_string(e.path().join("reconciler.log")).unwrap_or_default();
                eprintln!("--- {}/reconciler.log\n{log}", e.path().display());
            }
            panic!("never {what}; last status: {st}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops the reconciler of a repository (`sync --stop`) when dropped.
pub struct Stop<'a>(pub &'a Path, pub &'a Path);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = lw(self.0, self.1, &["sync", "--stop"]);
    }
}

/// A port nothing listens on now (for a process the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
