#!/usr/bin/env bash
# Where an agent's per-step time goes (issue 10): one job of 100 `run: "true"`
# steps on external agents that differ in one thing each, against
# `launchway run`, alternating (5 rounds; N=… for more):
#   default    a launcher per job, its cgroup and Landlock domain
#   deny       the same, with the agent itself under Landlock (--deny)
#   user       the same, run as the unprivileged user launchway-agent
#              (root only; created when missing)
# BASE=/tmp puts the work dirs under /tmp (rules for each of its entries).
# Usage: bench/agent-variants.sh   (builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p launchway
export LW="$PWD/target/release/launchway"
if [ "$(id -u)" = 0 ] && ! id launchway-agent >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin launchway-agent
fi
python3 - <<'PY'
import json, os, pwd, re, statistics, subprocess, tempfile, time, urllib.request

LW = os.environ["LW"]
WORK = tempfile.mkdtemp(dir=os.environ.get("BASE", "/var/tmp")); os.chmod(WORK, 0o755)
procs = []
try:
    repo = os.path.join(WORK, "repo")
    wf = os.path.join(repo, ".github/workflows/steps.yml")
    os.makedirs(os.path.dirname(wf))
    steps = "\n".join('      - run: "true"' for _ in range(100))
    def set_label(label):
        open(wf, "w").write(f"on: [push, workflow_dispatch]\njobs:\n  many:\n    runs-on: {label}\n    steps:\n{steps}\n")
        subprocess.run(["git", "-C", repo, "add", "-A"], check=True)
        subprocess.run(["git", "-C", repo, "-c", "user.name=b", "-c", "user.email=b@l", "commit", "-qm", label], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    set_label("linux")
    data = os.path.join(WORK, "data")
    log = open(os.path.join(WORK, "server.log"), "w+")
    server = subprocess.Popen([LW, "serve", "--listen", "127.0.0.1:0", "--data-dir", data,
                               "--poll-seconds", "0", "--local-agent-jobs", "0"], stderr=log)
    procs.append(server)
    for _ in range(200):
        log.seek(0); m = re.search(r"listening on (http://\S+)", log.read())
        if m: break
        time.sleep(0.05)
    base, token = m.group(1), open(os.path.join(data, "admin-token")).read().strip()
    def api(method, path, body=None):
        req = urllib.request.Request(base + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"null")
    api("POST", "/api/repos", {"name": "bench", "location": repo})
    reg = api("POST", "/api/agent-registrations", {})["token"]
    variants = {"default": [], "deny": ["--deny", data]}
    if os.geteuid() == 0:
        variants["user"] = ["--user", "launchway-agent", "--deny", data]
    for name, extra in variants.items():
        wd = os.path.join(WORK, "agent-" + name); os.makedirs(wd)
        if name == "user":
            u = pwd.getpwnam("launchway-agent"); os.chown(wd, u.pw_uid, u.pw_gid)
        procs.append(subprocess.Popen([LW, "agent", "--server", base, "--token", reg, "--name", name,
                                       "--labels", name, "--work-dir", wd] + extra,
                                      stderr=subprocess.DEVNULL))
    def agent_job():
        rid = api("POST", "/api/repos/bench/dispatch", {"workflow": ".github/workflows/steps.yml"})["id"]
        while True:
            r = api("GET", f"/api/runs/{rid}")
            if r["status"] not in ("queued", "running"):
                assert r["status"] == "success", r
                return r["jobs"][0]["duration_ms"]
            time.sleep(0.05)
    homes = os.path.join(WORK, "homes"); os.makedirs(homes)
    def local_job(i):
        out = subprocess.run([LW, "run", "--json", "-C", repo, "-W", ".github/workflows/steps.yml"],
                             env=dict(os.environ, LAUNCHWAY_HOME=os.path.join(homes, str(i))),
                             capture_output=True, check=True)
        return json.loads(out.stdout)[0]["jobs"][0]["duration_ms"]
    res = {k: [] for k in list(variants) + ["local"]}
    for i in range(int(os.environ.get("N", "5"))):
        for name in variants:
            set_label(name)
            res[name].append(agent_job())
        set_label("linux")
        res["local"].append(local_job(i))
    local = statistics.median(res["local"]) / 100
    for k, v in res.items():
        ms = statistics.median(v) / 100
        print(f"{k:8} {ms:.2f} ms/step  {ms / local:.2f}x  (job ms: {v})")
finally:
    for p in procs: p.terminate()
    for p in procs: p.wait()
    subprocess.run(["rm", "-rf", WORK])
PY
