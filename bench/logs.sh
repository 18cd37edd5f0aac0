#!/usr/bin/env bash
# Log serving memory (issue 11): one run whose log is ~100 MB, then four
# viewers fetch it at once (plain) and four follow it from the start (SSE);
# the server's peak RSS before and during. Needs git, curl, python3.
# Usage: bench/logs.sh   (builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p launchway
LW="$PWD/target/release/launchway"
WORK=$(mktemp -d); chmod 755 "$WORK"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/repo/.github/workflows"
cat > "$WORK/repo/.github/workflows/big.yml" <<'YML'
on: workflow_dispatch
jobs:
  big:
    runs-on: linux
    steps:
      - run: yes "a log line of about sixty bytes, repeated to make a big log" | head -c 100000000
YML
git -C "$WORK/repo" init -q -b main && git -C "$WORK/repo" add -A
git -C "$WORK/repo" -c user.name=b -c user.email=b@l commit -qm big
"$LW" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" --agent-work-dir "$WORK/data.agent" --poll-seconds 0 2> "$WORK/server.log" &
SERVER=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/server.log" && break; sleep 0.1; done
BASE=$(sed -n 's/.*listening on //p' "$WORK/server.log")
export LAUNCHWAY_SERVER=$BASE LAUNCHWAY_TOKEN=$(cat "$WORK/data/admin-token")
"$LW" repo add big "$WORK/repo" > /dev/null
"$LW" dispatch big .github/workflows/big.yml > /dev/null
"$LW" logs 1 -f > /dev/null 2>&1 || true
rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$SERVER/status"; }
hwm() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$SERVER/status"; }
echo "log size: $(du -m "$WORK/data/server/runs/1/logs" | cut -f1) MB; server RSS idle: $(rss) MB (peak so far $(hwm) MB)"
for mode in plain follow; do
  q=""; [ "$mode" = follow ] && q="?follow=true"
  peak=0
  for i in 1 2 3 4; do curl -s -H "Authorization: Bearer $LAUNCHWAY_TOKEN" "$BASE/api/runs/1/logs$q" > /dev/null & done
  while [ "$(jobs -rp | grep -vc "^$SERVER$")" -gt 0 ]; do
    r=$(rss); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.05
  done
  echo "4 viewers ($mode): server RSS peak $peak MB"
done
