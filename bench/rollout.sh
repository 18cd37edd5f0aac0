#!/usr/bin/env bash
# How fast a failing canary stops getting traffic: a small service whose
# canary fails one request in five, a builtin error-rate analysis every
# second, steady load from a client; reports the analysis' decision to
# the data plane's last canary route (abort_routed_ms) and the whole
# rollout's timeline (`launchway rollout status --json`).
#
#   bench/rollout.sh        (needs target/release/launchway)
set -euo pipefail
cd "$(dirname "$0")/.."
LW=${LW:-$PWD/target/release/launchway}
work=$(mktemp -d)
export LAUNCHWAY_HOME=$work/home GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
trap '"$LW" sync --stop -C "$work/repo" >/dev/null 2>&1 || true; kill $LOAD 2>/dev/null || true; rm -rf "$work"' EXIT
LOAD=
mkdir -p "$work/repo/configs/environments" && cd "$work/repo"
cat > app.py <<'PY'
import http.server, itertools, os, socketserver
fail_every = int(os.environ.get("FAIL_EVERY") or 0)
served = itertools.count(1)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200
        if fail_every and self.path != "/health" and next(served) % fail_every == 0:
            status = 500
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
S(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
PY
cat > configs/environments/live.yaml <<'YAML'
replicas: 2
run: {command: exec python3 app.py, health_path: /health}
strategy:
  canary:
    steps: [{set_weight: 20}, {pause: {duration: 60s}}, {set_weight: 100}]
    analysis: {templates: [errors]}
    on_failure: hold
analysis_templates:
  errors: {metric: error_rate, interval: 1s, count: 100, failure_limit: 0, success_condition: result < 0.05}
YAML
git init -q -b main && git add -A && git commit -qm app
"$LW" deploy live --release HEAD >/dev/null
"$LW" sync --detach >/dev/null
addr=""
until [ -n "$addr" ]; do
  addr=$("$LW" env status --json | python3 -c "import json,sys; s=[e for e in json.load(sys.stdin) if e['environment']=='live' and e['health']=='Healthy']; print(s[0]['address'] if s else '')")
  sleep 0.2
done
python3 - "$addr" <<'PY' &
import sys, time, urllib.request
while True:
    try:
        urllib.request.urlopen(sys.argv[1] + "/", timeout=2).read()
    except Exception:
        pass
    time.sleep(0.002)
PY
LOAD=$!
printf 'env: {FAIL_EVERY: "5"}\n' >> configs/environments/live.yaml
git commit -qam "a canary failing one request in five"
until "$LW" rollout status live --json 2>/dev/null | grep -q '"Aborted"'; do sleep 0.1; done
"$LW" rollout status live --json > "$work/rollout.json"
python3 - "$work/rollout.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
failed = [m for m in r["measurements"] if m["outcome"] == "Failed"][0]
after = (failed["at"] - r["started_at"]) / 1000
print(f"first failing measurement {after:.2f} s after the canary started ({failed['value']})")
print(f"analysis decided -> no canary traffic: {r['abort_routed_ms']:.2f} ms (target < 100 ms)")
print("measurements: " + ", ".join(f"{m['outcome']} {m['value']}" for m in r["measurements"]))
PY
