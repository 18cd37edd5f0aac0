#!/usr/bin/env bash
# Control-plane benchmarks:
#  1. GET /api/runs/{id} of a run with 100 jobs under wrk at ~1,000 req/s
#     (10 connections, each waiting 10 ms between requests), p99 reported;
#     then the same without pacing (the server's ceiling).
#  2. Trigger to first step: POST /api/repos/{name}/dispatch until the
#     first step's process runs, on an idle server (20 runs, median and max).
# Needs wrk (Debian package `wrk`), git, python3, curl.
# Usage: bench/server.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p launchway
LW="$ROOT/target/release/launchway"
WORK=$(mktemp -d)
chmod 755 "$WORK"   # a root server's agent runs as another user, and lists its way to shared/
mkdir -m 777 "$WORK/shared"
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

# A repository with a 100-job run and a one-step run.
mkdir -p "$WORK/repo/.github/workflows"
cat > "$WORK/repo/.github/workflows/wide.yml" <<'EOF'
on: workflow_dispatch
jobs:
  shard:
    runs-on: linux
    strategy:
      matrix:
        i: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99]
    steps: [{run: "echo shard ${{ matrix.i }}"}]
EOF
cat > "$WORK/repo/.github/workflows/first.yml" <<EOF
on: workflow_dispatch
jobs:
  one:
    runs-on: linux
    steps: [{run: "date +%s.%N >> $WORK/shared/started.txt"}]
EOF
git -C "$WORK/repo" init -q -b main
git -C "$WORK/repo" add -A
git -C "$WORK/repo" -c user.name=bench -c user.email=bench@localhost commit -qm bench

"$LW" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" --agent-work-dir "$WORK/data.agent" --jobs 2 2> "$WORK/server.log" &
SERVER=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/server.log" && break; sleep 0.1; done
BASE=$(sed -n 's/.*listening on //p' "$WORK/server.log")
export LAUNCHWAY_SERVER=$BASE LAUNCHWAY_TOKEN=$(cat "$WORK/data/admin-token")
"$LW" repo add bench "$WORK/repo" > /dev/null
"$LW" dispatch bench .github/workflows/wide.yml > /dev/null
"$LW" logs 1 -f > /dev/null 2>&1
JOBS=$(curl -s -H "Authorization: Bearer $LAUNCHWAY_TOKEN" "$BASE/api/runs/1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')

cat > "$WORK/paced.lua" <<'EOF'
function delay() return 10 end
EOF
echo "== GET /api/runs/1 ($JOBS jobs), 10 connections pacing 10 ms (~1,000 req/s), 15 s"
wrk -t2 -c10 -d15s --latency -s "$WORK/paced.lua" -H "Authorization: Bearer $LAUNCHWAY_TOKEN" "$BASE/api/runs/1" \
  | grep -E "Requests/sec|  50%|  90%|  99%"
echo "== same, unpaced (throughput ceiling), 10 s"
wrk -t2 -c10 -d10s --latency -H "Authorization: Bearer $LAUNCHWAY_TOKEN" "$BASE/api/runs/1" \
  | grep -E "Requests/sec|  50%|  99%"

echo "== trigger to first step (idle server, 20 dispatches)"
python3 - "$BASE" "$LAUNCHWAY_TOKEN" "$WORK/shared/started.txt" <<'PY'
import json, os, statistics, sys, time, urllib.request
base, token, started = sys.argv[1:4]
lat = []
for i in range(20):
    before = len(open(started).read().split()) if os.path.exists(started) else 0
    req = urllib.request.Request(f"{base}/api/repos/bench/dispatch", method="POST",
        data=json.dumps({"workflow": ".github/workflows/first.yml"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    t0 = time.time()
    urllib.request.urlopen(req).read()
    while True:
        stamps = open(started).read().split() if os.path.exists(started) else []
        if len(stamps) > before:
            lat.append((float(stamps[-1]) - t0) * 1000)
            break
        time.sleep(0.002)
    time.sleep(0.5)  # idle between triggers
print(f"median {statistics.median(lat):.0f} ms, max {max(lat):.0f} ms (target < 200 ms)")
PY
