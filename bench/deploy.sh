#!/usr/bin/env bash
# Commit to new release serving, on the bundled example, with the local
# reconciler (`launchway sync --detach`): the time from `launchway deploy`
# (the commit) until the environment's stable address serves the new
# release, next to the service's own start-up (its setup command and the
# time its process needs to answer /health), measured the same way. Then,
# under wrk with three replicas: requests lost while the reconciler is
# killed (-9) and started again, and while one replica is killed (-9),
# for GET /health and for POST /predict.
#
#   bench/deploy.sh [ROUNDS]        (default 5; needs target/release/launchway and wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
LW=${LW:-$PWD/target/release/launchway}
ROUNDS=${1:-5}
work=$(mktemp -d)
export LAUNCHWAY_HOME=$work/home GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
trap '"$LW" sync --stop -C "$work/repo" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cp -r examples/churn-service "$work/repo"
cd "$work/repo"
rm -rf .venv dist model.json
git init -q -b main && git add -A && git commit -qm bench
PYTHONPATH=src python3 -m churn_service.train --data data/churn.csv --out "$work/model.json" >/dev/null
"$LW" model register ChurnPredictor "$work/model.json" --alias Staging >/dev/null

now() { date +%s.%N; }
# dev's release, deployed revision, sync and health, as the reconciler reports them.
status_of() {
  "$LW" env status --json | python3 -c "
import json, sys
s = [e for e in json.load(sys.stdin) if e['environment'] == 'dev']
s = s[0] if s else {}
print(s.get('release') or '-', s.get('deployed_revision') or '-', s.get('sync'), s.get('health'))"
}
# Waits until dev serves release $1 (or, with $2, the deployed revision $2).
wait_serving() {
  while :; do
    read -r rel rev sync health < <(status_of)
    if [ "$sync" = Synced ] && [ "$health" = Healthy ] && [ "$rel" = "$1" ] \
      && { [ -z "${2:-}" ] || [ "$rev" = "$2" ]; }; then
      return
    fi
    sleep 0.02
  done
}

"$LW" deploy dev --release HEAD >/dev/null
"$LW" sync --detach >/dev/null
wait_serving "$(git rev-parse HEAD~1)"

release_times=(); config_times=(); setup_times=(); start_times=()
for i in $(seq 1 "$ROUNDS"); do
  # A new release: a code commit, then the deploy commit.
  echo "# round $i" >> README.md
  git commit -qam "release $i"
  rel=$(git rev-parse HEAD)
  t0=$(now)
  "$LW" deploy dev --release HEAD >/dev/null
  wait_serving "$rel"
  t1=$(now)
  release_times+=("$(echo "$t1 - $t0" | bc)")
  # A configuration change of the same release (no setup).
  t0=$(now)
  "$LW" deploy dev --set "env.BENCH_ROUND=$i" >/dev/null
  wait_serving "$rel" "$(git rev-parse HEAD)"
  t1=$(now)
  config_times+=("$(echo "$t1 - $t0" | bc)")
  # The service's own start-up, measured alone: setup, then serve until /health answers.
  d=$(mktemp -d); git archive HEAD | tar -x -C "$d"
  t0=$(now); (cd "$d" && PYTHONPATH=src python3 -m churn_service.train --data data/churn.csv --out model.json >/dev/null); t1=$(now)
  setup_times+=("$(echo "$t1 - $t0" | bc)")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  t0=$(now)
  (cd "$d" && PYTHONPATH=src exec python3 -m churn_service serve --model model.json --port "$port" >/dev/null 2>&1) &
  pid=$!
  until python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)" 2>/dev/null; do sleep 0.01; done
  t1=$(now)
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$d"
  start_times+=("$(echo "$t1 - $t0" | bc)")
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %.3f s  min %.3f s  max %.3f s", a[int((NR+1)/2)], a[1], a[NR]}'; }
echo "rounds: $ROUNDS (replicas: 1, health check /health)"
echo "commit → new release serving:        $(stats "${release_times[@]}")"
echo "commit → config change serving:      $(stats "${config_times[@]}")"
echo "the service's setup (train, alone):  $(stats "${setup_times[@]}")"
echo "the service's start-up (alone):      $(stats "${start_times[@]}")"

# --- Under load: three replicas, wrk against the stable address. ---------
command -v wrk >/dev/null || { echo "wrk not installed: skipping the load measures"; exit 0; }
"$LW" deploy dev --set replicas=3 >/dev/null
wait_serving "$rel" "$(git rev-parse HEAD)"
addr=$("$LW" env status --json | python3 -c "import json,sys; print([e for e in json.load(sys.stdin) if e['environment']=='dev'][0]['address'])")
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"instances": [{"tenure_months": 2, "monthly_charges": 95.5, "support_calls": 4, "contract": "month-to-month", "has_fiber": 1}]}'
wrk.headers["Content-Type"] = "application/json"
LUA
# wrk's totals as "requests errors non2xx".
totals() {
  python3 -c '
import re, sys
t = sys.stdin.read()
req = int(re.search(r"(\d+) requests in", t).group(1))
err = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", t))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(req, err, int(m.group(1)) if m else 0)'
}
reconciler_pid() { head -n1 "$LAUNCHWAY_HOME"/environments/*/reconciler.pid; }
replica_pid() {
  "$LW" env status --json | python3 -c "import json,sys; print([e for e in json.load(sys.stdin) if e['environment']=='dev'][0]['replicas'][$1]['pid'])"
}
# $1: what, $2: wrk script ('' for GET /health), $3: the disruption (a function)
under_load() {
  local url="$addr/health" script=()
  if [ -n "$2" ]; then url="$addr/predict"; script=(-s "$2"); fi
  wrk -t2 -c8 -d10s --timeout 5s "${script[@]}" "$url" > "$work/wrk.out" 2>&1 &
  local w=$!
  sleep 2
  "$3"
  wait "$w"
  read -r req err non2xx < <(totals < "$work/wrk.out")
  printf '%-52s %7s requests, %s socket errors, %s non-2xx\n' "$1:" "$req" "$err" "$non2xx"
}
kill_and_restart_reconciler() {
  kill -9 "$(reconciler_pid)"
  sleep 3
  "$LW" sync --detach >/dev/null
}
kill_one_replica() {
  kill -9 "$(replica_pid 0)"
}
settle() { wait_serving "$rel"; sleep 1; }
under_load "reconciler killed -9 and restarted, GET" "" kill_and_restart_reconciler; settle
under_load "reconciler killed -9 and restarted, POST" "$work/post.lua" kill_and_restart_reconciler; settle
under_load "one of three replicas killed -9, GET" "" kill_one_replica; settle
under_load "one of three replicas killed -9, POST" "$work/post.lua" kill_one_replica; settle
