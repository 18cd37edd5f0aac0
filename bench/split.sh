#!/usr/bin/env bash
# A canary's traffic split, side by side: wrk through `launchway proxy`
# (weights 95/5), nginx (`split_clients` 5%) and HAProxy (server weights
# 95/5), each in front of the same two nginx replicas answering a fixed
# body; throughput saturated and p99 at a steady ~2,000 req/s, against the
# stable replica directly. Then weight accuracy: 10,000 requests through
# `launchway proxy` at 5, 25, 50 and 100 percent, counting the canary's
# answers.
# Needs wrk, nginx and haproxy (Debian packages). Usage: bench/split.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for t in wrk nginx haproxy; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "install $t (apt-get install $t)" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
cargo build --release -q -p launchway
LW="$PWD/target/release/launchway"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$NGINX" -p "$WORK" -c nginx.conf -s stop 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/logs"
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
error_log $WORK/logs/error.log;
pid $WORK/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  server { listen 127.0.0.1:18281; location / { return 200 'stable'; } }
  server { listen 127.0.0.1:18282; location / { return 200 'canary'; } }
  upstream stable { server 127.0.0.1:18281; keepalive 64; }
  upstream canary { server 127.0.0.1:18282; keepalive 64; }
  split_clients "\${remote_addr}\${remote_port}\${request_id}" \$side { 5% canary; * stable; }
  server {
    listen 127.0.0.1:18283;
    location / { proxy_pass http://\$side; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
"$NGINX" -p "$WORK" -c nginx.conf
cat > "$WORK/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend split
  bind 127.0.0.1:18284
  default_backend replicas
backend replicas
  balance roundrobin
  http-reuse always
  server stable 127.0.0.1:18281 weight 95
  server canary 127.0.0.1:18282 weight 5
CONF
"$HAPROXY" -f "$WORK/haproxy.cfg" -db >/dev/null 2>&1 &
PIDS+=($!)
"$LW" proxy --listen 127.0.0.1:18285 --backend 127.0.0.1:18281=95 --backend 127.0.0.1:18282=5 2>/dev/null &
PIDS+=($!)
sleep 1
run() { wrk -t2 -c32 -d10s --latency "$1" | awk '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} END {print rps, p99}'; }
echo 'function delay() return 2 end' > "$WORK/paced.lua"
paced() { wrk -t1 -c4 -d10s --latency -s "$WORK/paced.lua" "$1" | awk '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} END {print rps, p99}'; }
ms() { python3 -c "import re,sys; n,u=re.match(r'([\d.]+)(\w+)', sys.argv[1]).groups(); print(float(n)*{'us':0.001,'ms':1,'s':1000}[u])" "$1"; }
echo "== saturated (2 threads, 32 connections, 10 s; 2 cores shared by wrk, replicas and proxy)"
declare -A RPS P99
for t in "direct 18281" "launchway 18285" "nginx 18283" "haproxy 18284"; do
  set -- $t
  read -r RPS[$1] P99[$1] < <(run "http://127.0.0.1:$2/")
  printf '%-10s %8.0f req/s  p99 %s\n' "$1" "${RPS[$1]}" "${P99[$1]}"
done
python3 -c "import sys; l,n,h=map(float,sys.argv[1:]); print(f'launchway/nginx throughput {l/n:.0%}, launchway/haproxy {l/h:.0%}')" "${RPS[launchway]}" "${RPS[nginx]}" "${RPS[haproxy]}"
echo "== p99 at ~2,000 req/s (not saturated)"
for t in "direct 18281" "launchway 18285" "nginx 18283" "haproxy 18284"; do
  set -- $t
  read -r r p < <(paced "http://127.0.0.1:$2/")
  P99[$1]=$(ms "$p")
  printf '%-10s p99 %.3f ms\n' "$1" "${P99[$1]}"
done
python3 -c "import sys; l,n,d=map(float,sys.argv[1:]); print(f'launchway p99 {l-n:+.3f} ms vs nginx, {l-d:+.3f} ms vs direct')" "${P99[launchway]}" "${P99[nginx]}" "${P99[direct]}"

echo "== weight accuracy through launchway proxy (10,000 requests per weight)"
for w in 5 25 50 100; do
  port=$((18290 + w % 90))
  if [ "$w" = 100 ]; then backends=(--backend 127.0.0.1:18282=1); else backends=(--backend "127.0.0.1:18281=$((100 - w))" --backend "127.0.0.1:18282=$w"); fi
  "$LW" proxy --listen "127.0.0.1:$port" "${backends[@]}" 2>/dev/null &
  p=$!
  sleep 0.5
  python3 - "$port" "$w" <<'PY'
import http.client, sys
port, w = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
canary = 0
for _ in range(10_000):
    c.request("GET", "/")
    canary += c.getresponse().read() == b"canary"
print(f"weight {w:3}%: {canary} of 10,000 to the canary (expected {w * 100}; off by {abs(canary - w * 100)})")
PY
  kill "$p"
done
