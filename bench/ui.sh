#!/usr/bin/env bash
# Web UI benchmarks (issue 15):
#  1. The run page of a 100-job run: time to first byte (curl, 20 requests,
#     median) and time to interactive in headless Chromium (domInteractive
#     and load, 10 page loads, median).
#  2. The server's memory with 50 clients following a run's live log (the
#     SSE stream a browser's run page opens), against the same server idle.
#  3. Page weight: the HTML of that run page and the assets (target: under
#     200 KB of assets).
# Needs git, python3, chromium and chromedriver (Debian packages chromium,
# chromium-driver). Usage: bench/ui.sh   (builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p launchway
export LW="$PWD/target/release/launchway"
WORK=$(mktemp -d)
chmod 755 "$WORK"
export WORK
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
python3 - <<'PY'
import json, os, re, statistics, subprocess, threading, time, urllib.request

LW, WORK = os.environ["LW"], os.environ["WORK"]
repo = os.path.join(WORK, "repo")
os.makedirs(repo + "/.github/workflows")
matrix = ",".join(str(i) for i in range(100))
open(repo + "/.github/workflows/wide.yml", "w").write(
    "on: workflow_dispatch\njobs:\n  lint:\n    runs-on: linux\n    steps: [{run: echo lint}]\n"
    f"  shard:\n    needs: lint\n    runs-on: linux\n    strategy: {{matrix: {{i: [{matrix}]}}}}\n"
    "    steps: [{run: 'for n in $(seq 20); do echo \"shard ${{ matrix.i }} line $n\"; done'}]\n")
open(repo + "/.github/workflows/long.yml", "w").write(
    "on: workflow_dispatch\njobs:\n  talk:\n    runs-on: linux\n"
    "    steps: [{run: 'for n in $(seq 120); do echo \"line $n of a long log\"; sleep 0.25; done'}]\n")
for a in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@l", "commit", "-qm", "x"]):
    subprocess.run(["git", "-C", repo] + a, check=True)

data = os.path.join(WORK, "data")
log = open(WORK + "/serve.log", "w+")
p = subprocess.Popen([LW, "serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--poll-seconds", "0",
                      "--agent-work-dir", data + ".agent", "--jobs", "4"], stderr=log)
for _ in range(200):
    log.seek(0); m = re.search(r"listening on (http://\S+)", log.read())
    if m: break
    time.sleep(0.05)
base = m.group(1); token = open(data + "/admin-token").read().strip()

def api(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read() or b"null")

def wait(rid, want=("success", "failure", "cancelled")):
    while True:
        r = api("GET", f"/api/runs/{rid}")
        if r["status"] in want: return r
        time.sleep(0.2)

api("POST", "/api/repos", {"name": "bench", "location": repo})
wide = api("POST", "/api/repos/bench/dispatch", {"workflow": ".github/workflows/wide.yml"})["id"]
r = wait(wide)
assert r["status"] == "success" and len(r["jobs"]) == 101, r["status"]

# A session, as a browser gets one.
opener = urllib.request.build_opener(urllib.request.HTTPRedirectHandler())
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
res = urllib.request.build_opener(NoRedirect()).open
try:
    res(urllib.request.Request(base + "/login", data=f"token={token}".encode(), method="POST"))
except urllib.error.HTTPError as e:
    cookie = e.headers["Set-Cookie"].split(";")[0]

def ttfb(path):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", "Cookie: " + cookie, "-w", "%{time_starttransfer} %{size_download}",
                          base + path], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]) * 1000, int(out[1])
samples = [ttfb(f"/runs/{wide}") for _ in range(20)]
html_bytes = samples[0][1]
print(f"run page of a 100-job run (101 jobs, 2,100 log lines): TTFB median {statistics.median(s[0] for s in samples):.1f} ms, "
      f"max {max(s[0] for s in samples):.1f} ms (20 requests); HTML {html_bytes/1024:.0f} KiB")

# Time to interactive in Chromium.
port = 9599
drv = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def wd(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read())["value"]
for _ in range(100):
    try: wd("GET", "/status"); break
    except Exception: time.sleep(0.1)
sid = wd("POST", "/session", {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
    "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}}}})["sessionId"]
s = f"/session/{sid}"
wd("POST", s + "/url", {"url": base + "/login"})
wd("POST", s + "/cookie", {"cookie": {"name": "launchway_session", "value": cookie.split("=", 1)[1], "path": "/", "httpOnly": True}})
inter, load = [], []
for _ in range(10):
    wd("POST", s + "/url", {"url": f"{base}/runs/{wide}"})
    t = wd("POST", s + "/execute/sync", {"script": "const t = performance.timing; return [t.domInteractive - t.navigationStart, t.loadEventEnd - t.navigationStart];", "args": []})
    inter.append(t[0]); load.append(t[1])
print(f"  in Chromium: interactive median {statistics.median(inter):.0f} ms, load median {statistics.median(load):.0f} ms (10 loads)")
wd("DELETE", s)
drv.terminate()

# Memory with 50 live-log followers.
def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])
time.sleep(1)
idle = rss(p.pid)
long_id = api("POST", "/api/repos/bench/dispatch", {"workflow": ".github/workflows/long.yml"})["id"]
wait(long_id, ("running",))
got = [0] * 50
def follow(i):
    req = urllib.request.Request(f"{base}/api/runs/{long_id}/logs?follow=true", headers={"Cookie": cookie})
    with urllib.request.urlopen(req) as r:
        for line in r:
            if line.startswith(b"event: log"): got[i] += 1
threads = [threading.Thread(target=follow, args=(i,), daemon=True) for i in range(50)]
for t in threads: t.start()
peak = idle
t0 = time.time()
while time.time() - t0 < 20:
    peak = max(peak, rss(p.pid)); time.sleep(0.5)
print(f"server RSS: idle {idle/1024:.1f} MiB, with 50 followers of a live log {peak/1024:.1f} MiB "
      f"(+{(peak-idle)/1024:.1f} MiB, {(peak-idle)/50:.0f} KiB per follower); lines seen by each so far: min {min(got)}, max {max(got)}")

css = urllib.request.urlopen(base + "/assets/app.css").read()
js = urllib.request.urlopen(base + "/assets/app.js").read()
print(f"assets: app.css {len(css)/1024:.1f} KiB + app.js {len(js)/1024:.1f} KiB = {(len(css)+len(js))/1024:.1f} KiB (target < 200 KB); no fonts, images or third-party scripts")
api("POST", f"/api/runs/{long_id}/cancel")
p.terminate(); p.wait()
PY
