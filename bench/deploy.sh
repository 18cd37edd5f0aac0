#!/usr/bin/env bash
# Commit to new release serving, on the bundled example, with the local
# reconciler (`launchway sync --detach`): the time from `launchway deploy`
# (the commit) until the environment's stable address serves the new
# release, next to the service's own start-up (its setup command and the
# time its process needs to answer /health), measured the same way.
#
#   bench/deploy.sh [ROUNDS]        (default 5; needs target/release/launchway)
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
  "$LW" deploy dev --set "bench_round=$i" >/dev/null
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
